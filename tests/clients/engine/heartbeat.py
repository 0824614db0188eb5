"""Stays connected across several short ping intervals (answering the server's pings), then
checks the session still echoes and disconnects."""
import sys
import time

import eio_lib

eio_lib.watchdog()
url, mode = eio_lib.args()
wait = float(sys.argv[3]) if len(sys.argv) > 3 else 1.5
c = eio_lib.Client()
c.connect(url, mode)
time.sleep(wait)
if not c.disconnects.empty():
    eio_lib.fail("disconnected while idle: %s" % c.disconnects.get())
c.eio.send("still there?")
echo = c.next_message()
transport = c.eio.transport()
c.disconnect()
eio_lib.done({
    "transport": transport,
    "pingInterval": c.eio.ping_interval,
    "echoes": [echo],
    "closeReason": c.next_disconnect(),
})
