"""Connects, sends a text and a binary message, waits for both echoes, then disconnects."""
import eio_lib

eio_lib.watchdog()
url, mode = eio_lib.args()
c = eio_lib.Client()
c.connect(url, mode)
transport = c.eio.transport()
c.eio.send("hello ☃")
c.eio.send(bytes([1, 2, 3, 255]))
echoes = [c.next_message(), c.next_message()]
c.disconnect()
eio_lib.done({
    "transport": transport,
    "echoes": echoes,
    "closeReason": c.next_disconnect(),
})
