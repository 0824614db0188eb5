"""Asks the server to close the session ("close me"); reports what arrived and how it closed."""
import time

import eio_lib

eio_lib.watchdog()
url, mode = eio_lib.args()
c = eio_lib.Client()
c.connect(url, mode)
transport = c.eio.transport()
# Let the long-polling GET reach the server first.
time.sleep(0.1)
c.eio.send("close me")
reason = c.next_disconnect()
# Message handlers run on their own threads: give a message sent before the close a moment.
messages = []
try:
    messages.append(c.messages.get(timeout=1)["text"])
except eio_lib.queue.Empty:
    pass
while not c.messages.empty():
    messages.append(c.messages.get()["text"])
eio_lib.done({"transport": transport, "messages": messages, "closeReason": reason})
