"""Shared bits of the python-engineio client test scripts.

Each script prints one JSON line with what it observed; the Rust test checks it.
Usage of every script: python <script> <base-url> <upgrade|websocket|polling>
"""
import json
import os
import queue
import sys
import threading
import time

import engineio

TRANSPORTS = {
    "upgrade": ["polling", "websocket"],
    "websocket": ["websocket"],
    "polling": ["polling"],
}


def args():
    if len(sys.argv) < 3 or sys.argv[2] not in TRANSPORTS:
        fail("usage: %s <base-url> <upgrade|websocket|polling>" % sys.argv[0])
    return sys.argv[1], sys.argv[2]


def fail(msg):
    print("FAIL: %s" % msg, file=sys.stderr, flush=True)
    os._exit(1)


def watchdog(seconds=15):
    """Kills the script if it has not finished after `seconds`."""
    t = threading.Timer(seconds, lambda: fail("no result after %s s" % seconds))
    t.daemon = True
    t.start()


class Client:
    """An engineio.Client whose events land in queues the script can wait on."""

    def __init__(self):
        self.eio = engineio.Client(handle_sigint=False, request_timeout=5)
        self.messages = queue.Queue()
        self.disconnects = queue.Queue()
        self.eio.on("message", self._on_message)
        self.eio.on("disconnect", self._on_disconnect)

    def _on_message(self, data):
        if isinstance(data, (bytes, bytearray)):
            self.messages.put({"binary": list(data)})
        else:
            self.messages.put({"text": data})

    def _on_disconnect(self, reason=None):
        self.disconnects.put(reason)

    def connect(self, url, mode):
        self.eio.connect(url, transports=TRANSPORTS[mode], engineio_path="engine.io")

    def disconnect(self):
        """Disconnects once the client's writer is idle.

        python-engineio's write loop exits as soon as the state leaves 'connected', so a close
        packet queued while it is still finishing an earlier POST is never sent (the server
        then only notices at the next ping timeout). Waiting until every queued packet is
        written avoids that client-side race.
        """
        self.eio.queue.join()
        time.sleep(0.1)
        self.eio.disconnect()

    def next_message(self, timeout=5):
        try:
            return self.messages.get(timeout=timeout)
        except queue.Empty:
            fail("no message within %s s" % timeout)

    def next_disconnect(self, timeout=5):
        try:
            return self.disconnects.get(timeout=timeout)
        except queue.Empty:
            fail("no disconnect within %s s" % timeout)


def done(result):
    print(json.dumps(result), flush=True)
    os._exit(0)
