//! Shared by the `rooms_*` tests: a server whose namespaces let clients join and leave rooms,
//! and a line-based driver for the Node script `tests/clients/rooms/driver.mjs` (many
//! socket.io-client sockets, each recording every event it receives).
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader, Lines};
use tokio::process::{Child, ChildStdin, ChildStdout};
use tokio::sync::mpsc;
use tower_socketio::{AckSender, Data, DisconnectReason, SocketIo, SocketRef};

use crate::common::{self, Node};

/// Limit for one driver command (connects, acks, fences).
pub const CMD: Duration = Duration::from_secs(30);

/// Room names of a socket as strings.
pub fn room_names(s: &SocketRef) -> Vec<String> {
    s.rooms().into_iter().map(|r| r.into_owned()).collect()
}

/// What a socket's lifecycle handlers saw: `(sid, "disconnecting" | "disconnect", reason,
/// rooms at that moment)`.
pub type Lifecycle = (String, &'static str, DisconnectReason, Vec<String>);

/// Registers the room handlers on a socket: `join`, `leave` (rooms as an array, the ack gets
/// the socket's rooms after the change) and `rooms`; lifecycle observations go to `life`.
pub fn room_handlers(socket: &SocketRef, life: Option<mpsc::UnboundedSender<Lifecycle>>) {
    socket.on(
        "join",
        |s: SocketRef, Data(rooms): Data<Vec<String>>, ack: AckSender| {
            s.join(rooms);
            let _ = ack.send(&room_names(&s));
        },
    );
    socket.on(
        "leave",
        |s: SocketRef, Data(rooms): Data<Vec<String>>, ack: AckSender| {
            s.leave(rooms);
            let _ = ack.send(&room_names(&s));
        },
    );
    socket.on("rooms", |s: SocketRef, ack: AckSender| {
        let _ = ack.send(&room_names(&s));
    });
    if let Some(life) = life {
        let l2 = life.clone();
        socket.on_disconnecting(move |s: SocketRef, reason: DisconnectReason| {
            let _ = l2.send((s.id().to_string(), "disconnecting", reason, room_names(&s)));
        });
        socket.on_disconnect(move |s: SocketRef, reason: DisconnectReason| {
            let _ = life.send((s.id().to_string(), "disconnect", reason, room_names(&s)));
        });
    }
}

/// A server with namespaces `/` and `/other`, both with [`room_handlers`].
pub async fn room_server(
    builder: tower_socketio::SocketIoBuilder,
) -> (
    common::TestServer,
    SocketIo,
    mpsc::UnboundedReceiver<Lifecycle>,
) {
    let (layer, io) = builder.build_layer();
    let (tx, rx) = mpsc::unbounded_channel();
    for ns in ["/", "/other"] {
        let tx = tx.clone();
        io.ns(ns, move |s: SocketRef| room_handlers(&s, Some(tx.clone())));
    }
    let server = common::serve_layer(layer).await;
    (server, io, rx)
}

/// The local socket `sid` of namespace `ns`.
pub fn socket_of(io: &SocketIo, ns: &str, sid: &str) -> SocketRef {
    io.of(ns)
        .unwrap_or_else(|| panic!("namespace {ns}"))
        .sockets()
        .into_iter()
        .find(|s| s.id().as_str() == sid)
        .unwrap_or_else(|| panic!("no socket {sid} in {ns}"))
}

/// A running `driver.mjs`.
pub struct Driver {
    child: Child,
    stdin: ChildStdin,
    lines: Lines<BufReader<ChildStdout>>,
    stderr: Arc<Mutex<String>>,
    req: u64,
    /// Name -> socket id, for every socket opened.
    pub sids: BTreeMap<String, String>,
}

impl Driver {
    /// Starts a Node script of `tests/clients/rooms` against `base_url`.
    pub async fn start(node: &Node, script: &str, args: &[&str]) -> Driver {
        let path = common::clients_dir().join("rooms").join(script);
        let modules = node.modules.to_str().expect("utf-8 path");
        let mut child = tokio::process::Command::new(&node.bin)
            .arg(path)
            .args(args)
            .current_dir(common::clients_dir())
            .env("NODE_PATH", modules)
            .env("TSIO_NODE_MODULES", modules)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start node: {e}"));
        let stdin = child.stdin.take().expect("stdin");
        let lines = BufReader::new(child.stdout.take().expect("stdout")).lines();
        let mut err = child.stderr.take().expect("stderr");
        let stderr = Arc::new(Mutex::new(String::new()));
        let sink = stderr.clone();
        tokio::spawn(async move {
            let mut buf = [0u8; 4096];
            while let Ok(n) = err.read(&mut buf).await {
                if n == 0 {
                    break;
                }
                sink.lock()
                    .unwrap()
                    .push_str(&String::from_utf8_lossy(&buf[..n]));
            }
        });
        Driver {
            child,
            stdin,
            lines,
            stderr,
            req: 0,
            sids: BTreeMap::new(),
        }
    }

    fn stderr(&self) -> String {
        self.stderr.lock().unwrap().clone()
    }

    /// Sends a raw line (no reply expected).
    pub async fn send_line(&mut self, line: &str) {
        self.stdin
            .write_all(format!("{line}\n").as_bytes())
            .await
            .expect("write to driver");
        self.stdin.flush().await.expect("flush driver stdin");
    }

    /// The next stdout line, within `limit`.
    pub async fn next_line(&mut self, limit: Duration, what: &str) -> String {
        match tokio::time::timeout(limit, self.lines.next_line()).await {
            Ok(Ok(Some(l))) => l,
            Ok(other) => panic!(
                "driver ended while waiting for {what}: {other:?}\n--- stderr ---\n{}",
                self.stderr()
            ),
            Err(_) => panic!(
                "timed out after {limit:?} waiting for {what}\n--- stderr ---\n{}",
                self.stderr()
            ),
        }
    }

    /// The next stdout line as JSON.
    pub async fn next_json(&mut self, limit: Duration, what: &str) -> Value {
        let line = self.next_line(limit, what).await;
        serde_json::from_str(&line).unwrap_or_else(|e| panic!("bad driver line {line:?}: {e}"))
    }

    /// Sends a command and returns its reply; panics on an error reply.
    pub async fn call(&mut self, mut cmd: Value) -> Value {
        self.try_call(&mut cmd)
            .await
            .unwrap_or_else(|e| panic!("driver command {cmd} failed: {e}"))
    }

    /// Sends a command and returns its reply, or the error it reported.
    pub async fn try_call(&mut self, cmd: &mut Value) -> Result<Value, String> {
        self.req += 1;
        let req = self.req;
        cmd["req"] = json!(req);
        let line = cmd.to_string();
        self.send_line(&line).await;
        loop {
            let v = self.next_json(CMD, &format!("reply to {line}")).await;
            if v["req"] == json!(req) {
                return match v.get("error") {
                    Some(e) => Err(e.as_str().unwrap_or_default().to_owned()),
                    None => Ok(v),
                };
            }
            assert!(v.get("error").is_none(), "driver error: {v}");
        }
    }

    /// Opens a socket; returns its id.
    pub async fn open(&mut self, name: &str, transport: &str, ns: &str) -> String {
        self.open_with(name, transport, ns, "answer").await
    }

    /// Opens a socket with an ack mode (`answer` or `silent`); returns its id.
    pub async fn open_with(&mut self, name: &str, transport: &str, ns: &str, ack: &str) -> String {
        let r = self
            .call(
                json!({"cmd": "open", "name": name, "transport": transport, "ns": ns, "ack": ack}),
            )
            .await;
        let sid = r["sid"].as_str().expect("sid").to_owned();
        self.sids.insert(name.to_owned(), sid.clone());
        sid
    }

    /// Opens a socket that answers each `event` it receives by emitting `got` with the
    /// event's `n`; returns its id.
    pub async fn open_echo(&mut self, name: &str, transport: &str, event: &str) -> String {
        let r = self
            .call(json!({"cmd": "open", "name": name, "transport": transport, "ns": "/", "echo": event}))
            .await;
        let sid = r["sid"].as_str().expect("sid").to_owned();
        self.sids.insert(name.to_owned(), sid.clone());
        sid
    }

    /// The socket `name` emits `event` with `args`, waiting for the server's ack; returns its
    /// first argument.
    pub async fn emit_ack(&mut self, name: &str, event: &str, args: Value) -> Value {
        let r = self
            .call(json!({"cmd": "emit", "name": name, "event": event, "args": args, "ack": true}))
            .await;
        r["ack"].clone()
    }

    /// The socket `name` joins `rooms`; returns its rooms as the server reports them.
    pub async fn join(&mut self, name: &str, rooms: &[&str]) -> Vec<String> {
        let ack = self.emit_ack(name, "join", json!([rooms])).await;
        serde_json::from_value(ack).expect("rooms")
    }

    /// The socket `name` leaves `rooms`; returns its rooms as the server reports them.
    pub async fn leave(&mut self, name: &str, rooms: &[&str]) -> Vec<String> {
        let ack = self.emit_ack(name, "leave", json!([rooms])).await;
        serde_json::from_value(ack).expect("rooms")
    }

    /// Waits until each of `names` received `event` with first argument `value`.
    pub async fn wait(&mut self, names: &[&str], event: &str, value: Value) {
        self.call(json!({"cmd": "wait", "names": names, "event": event, "value": value}))
            .await;
    }

    /// Waits until each of `names` disconnected; returns the client-side reasons.
    pub async fn wait_disconnect(&mut self, names: &[&str]) -> BTreeMap<String, String> {
        let r = self
            .call(json!({"cmd": "wait_disconnect", "names": names}))
            .await;
        serde_json::from_value(r["reasons"].clone()).expect("reasons")
    }

    /// Everything every socket recorded, by name.
    pub async fn summary(&mut self) -> BTreeMap<String, Value> {
        let r = self.call(json!({"cmd": "summary"})).await;
        serde_json::from_value(r["clients"].clone()).expect("clients")
    }

    /// The events socket `name` recorded whose name is `event`: their first arguments.
    pub async fn received(&mut self, event: &str) -> BTreeMap<String, Vec<Value>> {
        self.summary()
            .await
            .into_iter()
            .map(|(name, c)| {
                let got = c["events"]
                    .as_array()
                    .expect("events")
                    .iter()
                    .filter(|e| e[0] == json!(event))
                    .map(|e| e[1].clone())
                    .collect();
                (name, got)
            })
            .collect()
    }

    /// Forgets every recorded event.
    pub async fn clear(&mut self) {
        self.call(json!({"cmd": "clear"})).await;
    }

    /// The socket `name` disconnects itself.
    pub async fn close(&mut self, name: &str) {
        self.call(json!({"cmd": "close", "name": name})).await;
    }

    /// Closes every socket and waits for the script to exit 0.
    pub async fn exit(mut self) {
        self.call(json!({"cmd": "exit"})).await;
        let status = common::within(CMD, "driver exit", self.child.wait())
            .await
            .expect("wait driver");
        assert!(
            status.success(),
            "driver exited with {status}\n{}",
            self.stderr()
        );
    }
}
