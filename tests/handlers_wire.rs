//! Handlers on the wire, against the Node reference server in the same run: a raw WebSocket
//! client performs the same steps on our server and on `tests/clients/handlers/ref_server.mjs`
//! (the same handlers written for Node) and the frames must match. Covered: `emit_with_ack`
//! with 0, 1 and 2 arguments (`42N["q"]`, `42N["q",1,"b"]`) and ack replies read as their
//! argument list (`[]`, `[null]`, `[[1,2]]`, `[1,2]` stay apart); `socket.data` as `{}` in
//! fetches; a connect handler whose `Data<Auth>` extractor fails refusing the connection
//! with a CONNECT_ERROR before any CONNECT reply, shaped as Node's middleware refusal; a
//! refusal with data. The `SocketIo` and namespace (`BroadcastOperators`) extractors serve
//! the fetches.

mod common;
#[path = "support/node_server.rs"]
mod node_server;

use std::sync::{Arc, Mutex};

use futures_util::{SinkExt, StreamExt};
use serde::Deserialize;
use serde_json::{Value as Json, json};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message as Ws;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};
use tower_socketio::{
    BroadcastOperators, ConnectRejection, Data, DataArgs, SocketIo, SocketRef, Value,
};

use common::{Mode, SCRIPT, step};
use node_server::NodeServer;

struct Raw {
    ws: WebSocketStream<MaybeTlsStream<TcpStream>>,
}

impl Raw {
    async fn open(base: &str) -> Self {
        let url = format!(
            "{}/socket.io/?EIO=4&transport=websocket",
            base.replace("http://", "ws://")
        );
        let (ws, _) = step("WebSocket handshake", tokio_tungstenite::connect_async(url))
            .await
            .expect("WebSocket handshake");
        let mut raw = Self { ws };
        let open = raw.next().await;
        assert!(open.starts_with("0{"), "Engine.IO OPEN first: {open}");
        raw
    }

    async fn send(&mut self, packet: &str) {
        step("send", self.ws.send(Ws::text(format!("4{packet}"))))
            .await
            .expect("send");
    }

    /// The next Engine.IO message without its `4`, pings answered.
    async fn next(&mut self) -> String {
        loop {
            match step("the next frame", self.ws.next()).await {
                Some(Ok(Ws::Text(t))) => {
                    let t = t.as_str();
                    if t == "2" {
                        self.ws.send(Ws::text("3")).await.expect("pong");
                        continue;
                    }
                    return t.strip_prefix('4').unwrap_or(t).to_owned();
                }
                Some(Ok(Ws::Binary(_) | Ws::Ping(_) | Ws::Pong(_) | Ws::Frame(_))) => {}
                other => panic!("connection ended while waiting for a message: {other:?}"),
            }
        }
    }
}

/// A CONNECT reply with its sid replaced, so two servers' replies compare.
fn normalize(frame: &str) -> String {
    match frame.find("{\"sid\":") {
        Some(i) if frame.starts_with('0') => format!("{}{{\"sid\":\"*\"}}", &frame[..i]),
        _ => frame.to_owned(),
    }
}

/// The steps, the same for both servers; returns every frame received, normalized.
async fn script(base: &str) -> Vec<String> {
    let mut got = Vec::new();
    let mut raw = Raw::open(base).await;
    raw.send("0").await;
    got.push(normalize(&raw.next().await));
    // emit_with_ack with the trigger's argument list; the raw client answers with a list.
    for (i, (args, reply)) in [
        ("", "[]"),
        (",1,\"b\"", "[1,2]"),
        (",[1,2]", "[[1,2]]"),
        (",null", "[null]"),
    ]
    .into_iter()
    .enumerate()
    {
        raw.send(&format!("2[\"trigger\"{args}]")).await;
        let q = raw.next().await;
        got.push(q.clone());
        let id = q
            .strip_prefix('2')
            .and_then(|r| r.split('[').next())
            .unwrap_or_else(|| panic!("step {i}: an event with an ack id expected, got {q}"));
        raw.send(&format!("3{id}{reply}")).await;
        got.push(raw.next().await);
    }
    raw.send("2[\"fetch\"]").await;
    got.push(raw.next().await);
    raw.send("2[\"fetch_io\"]").await;
    got.push(raw.next().await);
    // A connect refused for missing auth: the refusal comes first, no CONNECT before it.
    raw.send("0/auth,").await;
    got.push(raw.next().await);
    raw.send("0/auth,{\"name\":\"x\"}").await;
    got.push(normalize(&raw.next().await));
    got.push(raw.next().await);
    raw.send("0/data,").await;
    got.push(raw.next().await);
    got
}

#[derive(Deserialize)]
struct Auth {
    name: String,
}

fn our_server(io: &SocketIo) {
    io.ns("/", |socket: SocketRef| {
        socket.on(
            "trigger",
            |socket: SocketRef, DataArgs(args): DataArgs<Vec<Value>>| async move {
                match socket.emit_with_ack::<_, Vec<Value>>("q", &args).await {
                    Ok(reply) => socket.emit("reply", &reply),
                    Err(e) => socket.emit("reply", &json!({ "error": e.to_string() })),
                }
                .ok();
            },
        );
        socket.on(
            "fetch",
            |socket: SocketRef, nsp: BroadcastOperators| async move {
                let infos = nsp.fetch_sockets().await.unwrap_or_default();
                let data: Vec<&Json> = infos.iter().map(|i| &i.data).collect();
                socket.emit("fetched", &data).ok();
            },
        );
        socket.on("fetch_io", |socket: SocketRef, io: SocketIo| async move {
            let Some(nsp) = io.of(socket.ns()) else {
                return;
            };
            let infos = nsp.fetch_sockets().await.unwrap_or_default();
            let data: Vec<&Json> = infos.iter().map(|i| &i.data).collect();
            socket.emit("fetched", &data).ok();
        });
    });
    // The README's pattern: `Data<Auth>` in the connect handler.
    io.ns("/auth", |socket: SocketRef, Data(auth): Data<Auth>| {
        socket.emit("hello", &auth.name).ok();
    });
    io.ns("/data", |_: SocketRef| {})
        .with(|| Err::<(), _>(ConnectRejection::new("refused").with_data(json!({"code": 7}))));
}

common::per_transport!(auth_refusal_with_a_real_client);

/// The crate docs' `Data<Auth>` connect handler with socket.io-client: without auth the
/// client gets `connect_error` (the extractor's message, no data) as from Node's middleware;
/// with auth it connects and the handler runs.
async fn auth_refusal_with_a_real_client(mode: Mode) {
    let Some(node) = common::node("auth_refusal_with_a_real_client", "socket.io") else {
        return;
    };
    let (layer, io) = SocketIo::new_layer();
    our_server(&io);
    let server = common::serve_layer(layer).await;
    let reference = NodeServer::start(&node, "handlers/ref_server.mjs").await;
    let run = |url: String| {
        let node = node.clone();
        async move {
            let out = common::run_node(
                &node,
                "handlers/auth_client.mjs",
                &[&url, mode.arg()],
                SCRIPT,
            )
            .await
            .expect_success(&format!("auth client ({mode:?}) on {url}"));
            let line = out
                .lines()
                .rev()
                .find(|l| !l.trim().is_empty())
                .unwrap_or("")
                .to_owned();
            let mut v: Json = serde_json::from_str(&line).expect("result JSON");
            let raw = v["rawMessage"].take();
            (v, raw)
        }
    };
    let (ours, message) = run(server.base_url()).await;
    let (theirs, _) = run(reference.url.clone()).await;
    assert_eq!(ours, theirs, "ours {ours}, Node {theirs}");
    assert_eq!(ours["hello"], "ann");
    assert!(
        message
            .as_str()
            .is_some_and(|m| m.contains("expected struct Auth")),
        "the extractor's message reaches the client: {message}"
    );
}

#[tokio::test]
async fn handlers_match_the_reference_server() {
    let Some(node) = common::node("handlers_match_the_reference_server", "socket.io") else {
        return;
    };
    let logs = logs();

    let (layer, io) = SocketIo::new_layer();
    our_server(&io);
    let server = common::serve_layer(layer).await;
    let reference = NodeServer::start(&node, "handlers/ref_server.mjs").await;

    let ours = script(&server.base_url()).await;
    let theirs = script(&reference.url).await;
    assert_eq!(ours.len(), theirs.len());
    for (i, (a, b)) in ours.iter().zip(&theirs).enumerate() {
        if b.starts_with("4/auth,") {
            // The message is each server's own; the shape must be Node's.
            let shape = |f: &str| {
                let v: Json = serde_json::from_str(&f["4/auth,".len()..])
                    .unwrap_or_else(|e| panic!("CONNECT_ERROR payload {f}: {e}"));
                let keys: Vec<String> = v.as_object().expect("object").keys().cloned().collect();
                (keys, v["message"].is_string())
            };
            assert!(a.starts_with("4/auth,"), "frame {i}: ours {a}, Node {b}");
            assert_eq!(shape(a), shape(b), "frame {i}: ours {a}, Node {b}");
            assert!(
                a.contains("expected struct Auth"),
                "the extractor's message: {a}"
            );
            continue;
        }
        assert_eq!(
            a, b,
            "frame {i} differs: ours {a}, Node {b}\nours {ours:#?}\nNode {theirs:#?}"
        );
    }
    // The wire itself, as Node sent it.
    assert_eq!(theirs[1], "20[\"q\"]");
    assert_eq!(theirs[3], "21[\"q\",1,\"b\"]");
    assert_eq!(theirs[9], "2[\"fetched\",[{}]]");
    let text = logs.text();
    assert!(
        text.contains("connection refused: an extractor of the connect handler failed"),
        "a tracing event for the refusal: {text}"
    );
}

/// What the server logged, from every test of this file: one global subscriber, as a
/// thread-scoped one misses events whose callsites another test thread registered first.
fn logs() -> LogBuf {
    static LOGS: std::sync::OnceLock<LogBuf> = std::sync::OnceLock::new();
    LOGS.get_or_init(|| {
        let logs = LogBuf::default();
        let writer = logs.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_writer(move || writer.clone())
            .with_ansi(false)
            .finish();
        let _ = tracing::subscriber::set_global_default(subscriber);
        logs
    })
    .clone()
}

/// A `tracing` writer into a shared buffer.
#[derive(Clone, Default)]
struct LogBuf(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for LogBuf {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl LogBuf {
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
    }
}
