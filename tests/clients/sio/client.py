"""python-socketio (PyPI) client scenarios against the servers of tests/sio_python.rs.

`python client.py <base-url> <polling|websocket|upgrade> <scenario>`; the last stdout line is
a JSON object with what the client observed. Failures and timeouts exit non-zero.
"""
import json
import os
import sys
import threading

import socketio

TRANSPORTS = {
    "polling": ["polling"],
    "websocket": ["websocket"],
    "upgrade": ["polling", "websocket"],
}


def fail(msg):
    sys.stderr.write(f"FAIL: {msg}\n")
    sys.stderr.flush()
    os._exit(2)


def watchdog(seconds=20):
    t = threading.Timer(seconds, lambda: fail(f"watchdog: no result after {seconds} s"))
    t.daemon = True
    t.start()


def done(result):
    print(json.dumps(result), flush=True)
    os._exit(0)


def wait(event, what, timeout=5):
    if not event.wait(timeout):
        fail(f"timed out waiting for {what}")


def byte_list(b):
    return {"type": type(b).__name__, "bytes": list(b) if isinstance(b, (bytes, bytearray)) else b}


def basic(url, mode):
    """Auth, events and acks both ways, binary both ways, client disconnect."""
    sio = socketio.Client(reconnection=False)
    got = {}
    welcome = threading.Event()
    bin_struct = threading.Event()
    admin_echo = threading.Event()

    @sio.on("welcome")
    def on_welcome(data):
        got["welcome"] = data
        welcome.set()

    @sio.on("bin_struct")
    def on_bin_struct(data):
        got["bin_struct"] = {"name": data["name"], "data": byte_list(data["data"])}
        bin_struct.set()

    @sio.on("echo", namespace="/admin")
    def on_admin_echo(data):
        got["admin_echo"] = data
        admin_echo.set()

    @sio.on("ask")
    def on_ask(data):
        return {"answer": data["q"] * 2}

    @sio.on("ask_multi")
    def on_ask_multi(n):
        return (n + 1, "b")

    @sio.on("bin_ask")
    def on_bin_ask(data):
        return bytes([9, 8, 7])

    sio.connect(
        url,
        auth={"name": "py"},
        transports=TRANSPORTS[mode],
        namespaces=["/", "/admin"],
        wait_timeout=5,
    )
    wait(welcome, "welcome")
    sio.emit("typed", {"text": "hi", "n": 7})
    sio.emit("multi", (1, "two", True))
    sio.emit("bin_top", bytes([1, 2, 3]))
    sio.emit("bin_struct_in", {"name": "file.bin", "data": bytes([4, 5, 6])})
    sio.emit("to_admin", "hello admin", namespace="/admin")
    result = {
        "sid": sio.get_sid("/"),
        "adminSid": sio.get_sid("/admin"),
        "welcome": got["welcome"],
        "sum": sio.call("sum", (1, 2), timeout=5),
        "pair": list(sio.call("pair", timeout=5)),
        "binAck": byte_list(sio.call("bin_ack", bytes([10, 11, 12]), timeout=5)),
        "whoAdmin": sio.call("who", namespace="/admin", timeout=5),
        "server": sio.call("server_acks", timeout=5),
    }
    wait(bin_struct, "bin_struct")
    wait(admin_echo, "the /admin echo")
    result["binStruct"] = got["bin_struct"]
    result["adminEcho"] = got["admin_echo"]
    result["transport"] = sio.transport()
    # Client.disconnect() queues a DISCONNECT per namespace and closes the WebSocket at once,
    # racing its own writer thread (the server then sees a transport close). Send the
    # DISCONNECTs first and give them time to leave, so the server's reason is deterministic.
    for ns in list(sio.namespaces):
        sio._send_packet(sio.packet_class(socketio.packet.DISCONNECT, namespace=ns))
    threading.Event().wait(0.2)
    sio.disconnect()
    sio.wait()  # returns once the connection is down
    done(result)


def server_disconnect(url, mode):
    """The server disconnects the socket: the client sees `io server disconnect`."""
    sio = socketio.Client(reconnection=True, reconnection_delay=0.05, reconnection_delay_max=0.05)
    gone = threading.Event()
    got = {}

    @sio.event
    def disconnect(reason):
        got["reason"] = reason
        gone.set()

    connects = []

    @sio.event
    def connect():
        connects.append(1)

    sio.connect(url, transports=TRANSPORTS[mode], wait_timeout=5)
    transport = sio.transport()
    sio.emit("kick")
    wait(gone, "the disconnect")
    threading.Event().wait(0.3)
    done({
        "reason": got["reason"],
        "connected": sio.connected,
        "connects": len(connects),
        "transport": transport,
    })


if __name__ == "__main__":
    watchdog()
    if len(sys.argv) != 4 or sys.argv[2] not in TRANSPORTS:
        fail(f"usage: {sys.argv[0]} <base-url> <polling|websocket|upgrade> <scenario>")
    url, mode, scenario = sys.argv[1:]
    scenarios = {"basic": basic, "server_disconnect": server_disconnect}
    if scenario not in scenarios:
        fail(f"unknown scenario {scenario}")
    try:
        scenarios[scenario](url, mode)
    except Exception as e:  # noqa: BLE001 - report anything as a failure
        import traceback

        traceback.print_exc()
        fail(repr(e))
