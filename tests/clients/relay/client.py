"""python-socketio (PyPI) clients talking through a relay server: two clients per namespace
send each other events with any argument list (none, None, a list, several, bytes at any
depth, dict key order) and acks with any argument list, both ways.

`python client.py <base-url> <polling|websocket|upgrade>`; the last stdout line is a JSON
object with what the clients saw. The same script runs against our relay and Node's, and the
Rust test compares the two results.
"""
import json
import os
import sys
import threading

import engineio.payload
import socketio

# python-engineio refuses a polling response of more than 16 packets ("Unexpected packet from
# server"); both servers put every queued packet in one response, as Engine.IO allows, and
# this test queues more than that.
engineio.payload.Payload.max_decode_packets = 256

TRANSPORTS = {
    "polling": ["polling"],
    "websocket": ["websocket"],
    "upgrade": ["polling", "websocket"],
}

LISTS = [
    [],
    [None],
    [[1, 2]],
    [1, 2],
    ["text", 1.5, True, {"z": 1, "a": 2, "m": {"y": None, "b": []}}],
    [bytes([1, 2, 3])],
    [{"z": 1, "a": [bytes([0x1E, 0]), {"deep": [[bytes([255])]]}]}, "mid", b"", [b"\x07", b"\x08"]],
]

NAMESPACES = ["/", "/relay-ns/42"]


def fail(msg):
    sys.stderr.write(f"FAIL: {msg}\n")
    sys.stderr.flush()
    os._exit(2)


def show(v):
    def enc(x):
        if isinstance(x, (bytes, bytearray)):
            return {"$bin": list(x)}
        if isinstance(x, list):
            return [enc(i) for i in x]
        if isinstance(x, dict):
            return {k: enc(i) for k, i in x.items()}
        return x

    return json.dumps(enc(v), separators=(",", ":"))


class Peer:
    """One client in one namespace, recording every event it gets and answering acks."""

    def __init__(self, url, mode, nsp):
        self.nsp = nsp
        self.seen = []
        self.lock = threading.Lock()
        self.changed = threading.Condition(self.lock)
        self.sio = socketio.Client(reconnection=False)
        self.sio.on("*", self.on_any, namespace=nsp)
        self.sio.connect(url, namespaces=[nsp], transports=TRANSPORTS[mode], wait_timeout=5)

    def on_any(self, event, *args):
        with self.lock:
            self.seen.append(f"{event} {show(list(args))}")
            self.changed.notify_all()
        i = int(event.split("-")[2])
        # The handler's return value is the ack answer: a tuple is the argument list.
        return tuple(reversed(LISTS[i]))

    def wait_seen(self, n, what):
        with self.lock:
            if not self.changed.wait_for(lambda: len(self.seen) >= n, timeout=5):
                fail(f"{what}: got {len(self.seen)}/{n}: {self.seen}")

    def emit(self, event, args, callback=None):
        # `data` as a tuple is the argument list (an empty tuple: no argument).
        self.sio.emit(event, tuple(args), namespace=self.nsp, callback=callback)


def exchange(src, dst, tag):
    dst.seen.clear()
    for i, l in enumerate(LISTS):
        src.emit(f"{tag}-ev-{i}", l)
    replies = [None] * len(LISTS)
    got = threading.Semaphore(0)
    for i, l in enumerate(LISTS):
        def cb(*reply, i=i):
            replies[i] = show(list(reply))
            got.release()

        src.emit(f"{tag}-ask-{i}", l, cb)
    for _ in LISTS:
        if not got.acquire(timeout=5):
            fail(f"{tag}: ack replies missing: {replies}; receiver saw {dst.seen}")
    dst.wait_seen(2 * len(LISTS), tag)
    sent = [show(l) for l in LISTS]
    ok = all(
        f"{tag}-ev-{i} {sent[i]}" in dst.seen and f"{tag}-ask-{i} {sent[i]}" in dst.seen
        for i in range(len(LISTS))
    ) and all(r == show(list(reversed(LISTS[i]))) for i, r in enumerate(replies))
    return {"ok": ok, "seen": sorted(dst.seen), "replies": replies}


def main():
    url, mode = sys.argv[1], sys.argv[2]
    # Generous: python-socketio over long-polling on a loaded 2-core machine is slow, and
    # every step below has its own 5 s bound.
    t = threading.Timer(55, lambda: fail("watchdog: no result after 55 s"))
    t.daemon = True
    t.start()
    result = {}
    for nsp in NAMESPACES:
        a, c = Peer(url, mode, nsp), Peer(url, mode, nsp)
        result[nsp] = {"there": exchange(a, c, "a2c"), "back": exchange(c, a, "c2a")}
        a.sio.disconnect()
        c.sio.disconnect()
    print(json.dumps(result), flush=True)
    os._exit(0)


main()
