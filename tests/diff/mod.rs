//! The differential wire harness: one scripted session, written once against [`Wire`], is
//! run against the reference Node.js server (`tests/clients/diff/server.mjs`: engine.io 6.6 /
//! socket.io 4.8 from `tests/clients/node_modules`, on its own port) and against ours
//! ([`ours`], the same behaviour written with tower-socketio), and the two transcripts are
//! compared line by line after ids are normalized.
//!
//! Everything on the wire is raw: HTTP requests are written by hand on a fresh TCP
//! connection each (so a request can be left half-sent, or dropped), WebSockets are
//! tokio-tungstenite clients that record every frame, close frames included. No client
//! library hides anything.
//!
//! A test file declares cases with [`diff_case!`]; where we differ from the reference on
//! purpose, [`DELIBERATE`] (the one place) names the case and says why, and the case then
//! checks that the difference is still there (so the table stays true).
#![allow(dead_code)]

pub mod ours;

use std::collections::HashMap;
use std::future::Future;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;
use tokio::task::JoinHandle;
use tokio_tungstenite::tungstenite::Message as WsMsg;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

use crate::common;

/// Where we differ from the reference on purpose: `(case, why)`. A case listed here must
/// still differ (else the entry is stale and the case fails); every other case must match.
/// `docs/deliberate-differences.md` lists the same entries for users.
pub const DELIBERATE: &[(&str, &str)] = &[
    (
        "connect_over_polling",
        "a connection's packets are handled in arrival order across namespaces: a CONNECT to \
         another namespace is answered before an event on `/` that came after it; the \
         reference answers the event first (its CONNECT runs its middlewares on a later tick)",
    ),
    (
        "handshake_errors_websocket",
        "a WebSocket handshake with a missing or unsupported EIO is refused with HTTP 400 before \
         the 101; the reference completes the WebSocket handshake first and then writes an HTTP \
         400 into the open WebSocket stream",
    ),
    (
        "close_websocket_client_packet",
        "the close packet `1` received over WebSocket closes the session, as the protocol and \
         the official Engine.IO test suites say; the reference 6.6 ignores it there",
    ),
    (
        "close_reason_polling_client",
        "an Engine.IO handler is told `client close` when the client sent the close packet; the \
         reference reports `transport close` (Socket.IO maps both to `transport close`)",
    ),
    (
        "polling_post_too_large",
        "a polling POST over max_payload is answered 413 and also closes the session (a client \
         that sends more than the limit it was given is broken or hostile); the reference \
         answers 413 and keeps the session",
    ),
    (
        "close_polling_post_in_flight",
        "a POST still being read when its session closes is answered (200 once read); the \
         reference destroys its connection without an answer, which a tower service cannot do",
    ),
    (
        "upgrade_get_waiting_at_switch",
        "a GET still waiting when the upgrade completes is answered 400 (Bad request), as a GET          that comes after the switch; the reference answers it 200 with the close packet `1`.          Which of the two a GET sent right after `5` meets is a race in both servers, and the          official Socket.IO suite expects 400 for it",
    ),
];

/// What both servers are configured with.
#[derive(Debug, Clone, Copy)]
pub struct Config {
    /// `true`: Socket.IO on `/socket.io/`; `false`: Engine.IO alone on `/engine.io/`.
    pub sio: bool,
    pub ping_interval: u64,
    pub ping_timeout: u64,
    pub max_payload: usize,
    pub upgrade_timeout: u64,
    pub allow_eio3: bool,
    pub msgpack: bool,
}

impl Config {
    /// Engine.IO alone, heartbeat slow enough to stay out of a case's way.
    pub const ENGINE: Config = Config {
        sio: false,
        ping_interval: 10_000,
        ping_timeout: 5_000,
        max_payload: 1_000,
        upgrade_timeout: 10_000,
        allow_eio3: false,
        msgpack: false,
    };
    /// Socket.IO with the JSON parser.
    pub const SIO: Config = Config {
        sio: true,
        max_payload: 100_000,
        ..Self::ENGINE
    };
    /// With `allowEIO3`.
    pub const fn eio3(mut self) -> Self {
        self.allow_eio3 = true;
        self
    }
    /// With the msgpack parser (Socket.IO).
    pub const fn msgpack(mut self) -> Self {
        self.msgpack = true;
        self
    }
    /// With this heartbeat, in milliseconds.
    pub const fn heartbeat(mut self, interval: u64, timeout: u64) -> Self {
        self.ping_interval = interval;
        self.ping_timeout = timeout;
        self
    }
    /// With this upgrade timeout, in milliseconds.
    pub const fn upgrade_timeout(mut self, ms: u64) -> Self {
        self.upgrade_timeout = ms;
        self
    }

    fn json(&self) -> String {
        serde_json::json!({
            "layer": if self.sio { "sio" } else { "engine" },
            "pingInterval": self.ping_interval,
            "pingTimeout": self.ping_timeout,
            "maxPayload": self.max_payload,
            "upgradeTimeout": self.upgrade_timeout,
            "allowEIO3": self.allow_eio3,
            "msgpack": self.msgpack,
        })
        .to_string()
    }

    fn path(&self) -> &'static str {
        if self.sio {
            "/socket.io/"
        } else {
            "/engine.io/"
        }
    }
}

/// A running server of either side.
pub struct Target {
    pub addr: std::net::SocketAddr,
    pub path: &'static str,
    waiting: Waiting,
    _guard: Box<dyn std::any::Any + Send>,
}

/// How many requests a server holds unanswered (a long-poll GET waiting, a POST whose body is
/// still coming): what [`Wire::settle`] waits on.
#[derive(Clone)]
enum Waiting {
    /// Ours: the test server's count of parked requests.
    Counter(Arc<std::sync::atomic::AtomicUsize>),
    /// The reference: its count, served on a port of its own (`diff/server.mjs`).
    Probe(std::net::SocketAddr),
}

impl Waiting {
    async fn count(&self) -> usize {
        match self {
            Self::Counter(c) => c.load(std::sync::atomic::Ordering::Acquire),
            Self::Probe(addr) => {
                let Ok(mut tcp) = TcpStream::connect(addr).await else {
                    return 0;
                };
                let req = "GET / HTTP/1.1\r\nhost: probe\r\nconnection: close\r\n\r\n";
                let mut out = String::new();
                if tcp.write_all(req.as_bytes()).await.is_err()
                    || tcp.read_to_string(&mut out).await.is_err()
                {
                    return 0;
                }
                out.split("\r\n\r\n")
                    .nth(1)
                    .and_then(|b| b.trim().parse().ok())
                    .unwrap_or(0)
            }
        }
    }
}

/// Starts the reference server; `None` (with the skip notice) when Node is missing.
pub async fn start_node(test: &str, config: &Config) -> Option<Target> {
    let package = if config.sio { "socket.io" } else { "engine.io" };
    let node = common::node(test, package)?;
    let mut child = tokio::process::Command::new(&node.bin)
        .arg(common::clients_dir().join("diff/server.mjs"))
        .arg(config.json())
        .current_dir(common::clients_dir())
        .env("NODE_PATH", &node.modules)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .kill_on_drop(true)
        .spawn()
        .expect("start node diff/server.mjs");
    let mut lines = BufReader::new(child.stdout.take().expect("stdout")).lines();
    let line = common::within(
        Duration::from_secs(20),
        "node server start",
        lines.next_line(),
    )
    .await
    .expect("read node stdout")
    .expect("node server printed its port");
    let v: serde_json::Value = serde_json::from_str(&line).expect("port line");
    let port = v["port"].as_u64().expect("port") as u16;
    let probe = v["probe"].as_u64().expect("probe port") as u16;
    Some(Target {
        addr: ([127, 0, 0, 1], port).into(),
        path: config.path(),
        waiting: Waiting::Probe(([127, 0, 0, 1], probe).into()),
        _guard: Box::new((child, lines)),
    })
}

/// Starts our server with the same behaviour.
pub async fn start_ours(config: &Config) -> Target {
    let server = ours::serve(config).await;
    Target {
        addr: server.addr,
        path: config.path(),
        waiting: Waiting::Counter(server.parked_counter()),
        _guard: Box::new(server),
    }
}

/// A frame received on a WebSocket, as a transcript shows it.
fn show_ws(m: &WsMsg) -> Option<String> {
    Some(match m {
        WsMsg::Text(t) => format!("text {}", t.as_str()),
        WsMsg::Binary(b) => match show_msgpack(b) {
            Some(v) => format!("msgpack {v}"),
            None => format!("binary {}", hex(b)),
        },
        WsMsg::Close(Some(f)) => format!("close {} {:?}", u16::from(f.code), f.reason.as_str()),
        WsMsg::Close(None) => "close (no code)".to_owned(),
        WsMsg::Ping(_) | WsMsg::Pong(_) | WsMsg::Frame(_) => return None,
    })
}

/// A Socket.IO msgpack packet as sorted JSON (binary as `<bin ..>`), so that the key order
/// each encoder picks does not count as a difference; `None` for anything else.
#[cfg(feature = "msgpack")]
fn show_msgpack(b: &[u8]) -> Option<String> {
    let mut rd = b;
    let v = rmpv::decode::read_value(&mut rd).ok()?;
    if !rd.is_empty() || !v.is_map() {
        return None;
    }
    fn to_json(v: &rmpv::Value) -> serde_json::Value {
        use rmpv::Value as V;
        match v {
            V::Nil => serde_json::Value::Null,
            V::Boolean(b) => (*b).into(),
            V::Integer(i) => i
                .as_i64()
                .map(Into::into)
                .or_else(|| i.as_u64().map(Into::into))
                .unwrap_or_default(),
            V::F32(f) => (*f as f64).into(),
            V::F64(f) => (*f).into(),
            V::String(s) => s.as_str().unwrap_or("<bad utf-8>").into(),
            V::Binary(b) => format!("<bin {}>", hex(b)).into(),
            V::Array(a) => a.iter().map(to_json).collect(),
            // notepack writes `undefined` (an absent `pid`, say) as ext 0: absent here.
            V::Map(m) => m
                .iter()
                .filter(|(_, v)| !matches!(v, V::Ext(0, d) if d.as_slice() == [0]))
                .map(|(k, v)| {
                    (
                        k.as_str().map_or_else(|| k.to_string(), str::to_owned),
                        to_json(v),
                    )
                })
                .collect::<serde_json::Map<_, _>>()
                .into(),
            V::Ext(t, d) => format!("<ext {t} {}>", hex(d)).into(),
        }
    }
    Some(to_json(&v).to_string())
}

#[cfg(not(feature = "msgpack"))]
fn show_msgpack(_: &[u8]) -> Option<String> {
    None
}

/// Encodes a JSON value as msgpack, turning `"<bin 01 02>"` strings back into binary: the
/// way a case writes a msgpack packet.
#[cfg(feature = "msgpack")]
pub fn msgpack(v: &serde_json::Value) -> Vec<u8> {
    fn from_json(v: &serde_json::Value) -> rmpv::Value {
        use serde_json::Value as J;
        match v {
            J::Null => rmpv::Value::Nil,
            J::Bool(b) => (*b).into(),
            J::Number(n) => n
                .as_i64()
                .map(rmpv::Value::from)
                .or_else(|| n.as_u64().map(rmpv::Value::from))
                .unwrap_or_else(|| rmpv::Value::from(n.as_f64().unwrap_or(0.0))),
            J::String(s) => match s.strip_prefix("<bin").and_then(|r| r.strip_suffix('>')) {
                Some(h) => rmpv::Value::Binary(
                    h.split_whitespace()
                        .map(|x| u8::from_str_radix(x, 16).expect("hex"))
                        .collect(),
                ),
                None => s.as_str().into(),
            },
            J::Array(a) => rmpv::Value::Array(a.iter().map(from_json).collect()),
            J::Object(o) => rmpv::Value::Map(
                o.iter()
                    .map(|(k, v)| (k.as_str().into(), from_json(v)))
                    .collect(),
            ),
        }
    }
    let mut out = Vec::new();
    rmpv::encode::write_value(&mut out, &from_json(v)).expect("encode msgpack");
    out
}

fn hex(b: &[u8]) -> String {
    b.iter()
        .map(|x| format!("{x:02x}"))
        .collect::<Vec<_>>()
        .join(" ")
}

/// An HTTP response as a transcript shows it.
#[derive(Debug, Clone)]
pub struct HttpReply {
    pub status: u16,
    pub content_type: String,
    pub body: Vec<u8>,
}

impl HttpReply {
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// One scripted client session against one server, recording a transcript.
///
/// `{sid}` in a query is replaced by the Engine.IO sid of the last handshake.
pub struct Wire {
    target_addr: std::net::SocketAddr,
    waiting: Waiting,
    path: &'static str,
    transcript: Arc<Mutex<Vec<String>>>,
    /// The sid of the last handshake.
    pub sid: String,
    /// The Engine.IO revision of the last handshake (3 or 4).
    pub eio: u8,
    pending: HashMap<String, JoinHandle<Result<HttpReply, String>>>,
    partial: HashMap<String, TcpStream>,
    ws: HashMap<String, Ws>,
}

impl Wire {
    fn new(target: &Target, transcript: Arc<Mutex<Vec<String>>>) -> Self {
        Self {
            target_addr: target.addr,
            waiting: target.waiting.clone(),
            path: target.path,
            transcript,
            sid: String::new(),
            eio: 4,
            pending: HashMap::new(),
            partial: HashMap::new(),
            ws: HashMap::new(),
        }
    }

    /// Adds a line to the transcript.
    pub fn record(&self, line: impl Into<String>) {
        self.transcript.lock().unwrap().push(line.into());
    }

    fn target(&self, query: &str) -> String {
        format!("{}?{}", self.path, query.replace("{sid}", &self.sid))
    }

    fn show_body(&self, body: &[u8]) -> String {
        match std::str::from_utf8(body) {
            Ok(s) if self.eio == 3 && looks_like_v3_payload(s) => show_v3_payload(s),
            Ok(s) => s.to_owned(),
            Err(_) => format!("binary {}", hex(body)),
        }
    }

    fn show(&self, r: &Result<HttpReply, String>) -> String {
        match r {
            Ok(r) => format!(
                "{} [{}] {}",
                r.status,
                r.content_type,
                self.show_body(&r.body)
            ),
            Err(e) => format!("failed: {e}"),
        }
    }

    /// One raw HTTP request; records and returns the reply.
    pub async fn http(
        &mut self,
        method: &str,
        query: &str,
        content_type: Option<&str>,
        body: &[u8],
    ) -> Result<HttpReply, String> {
        let target = self.target(query);
        let r = raw_http(self.target_addr, method, &target, content_type, body).await;
        self.record(format!(
            "{method} ?{query} {} -> {}",
            show_sent(body),
            self.show(&r)
        ));
        r
    }

    /// A polling GET.
    pub async fn get(&mut self, query: &str) -> Result<HttpReply, String> {
        self.http("GET", query, None, b"").await
    }

    /// A polling POST with a text body.
    pub async fn post(&mut self, query: &str, body: &str) -> Result<HttpReply, String> {
        self.http(
            "POST",
            query,
            Some("text/plain;charset=UTF-8"),
            body.as_bytes(),
        )
        .await
    }

    /// The polling handshake of Engine.IO `eio` (`extra` is appended to the query); keeps
    /// the sid for `{sid}`.
    pub async fn handshake(&mut self, eio: u8, extra: &str) -> Result<HttpReply, String> {
        self.eio = eio;
        let r = self
            .get(&format!("EIO={eio}&transport=polling{extra}"))
            .await;
        if let Ok(r) = &r {
            if let Some(sid) = find_key(&r.text(), "sid").into_iter().next() {
                self.sid = sid;
            }
        }
        r
    }

    /// Starts a request in the background (its own connection); [`Wire::join`] records it.
    pub fn spawn_http(&mut self, name: &str, method: &str, query: &str, body: &str) {
        let target = self.target(query);
        let addr = self.target_addr;
        let method = method.to_owned();
        let body = body.as_bytes().to_vec();
        let ct = (method == "POST").then_some("text/plain;charset=UTF-8");
        self.record(format!(
            "{method} ?{query} {} (in background as {name})",
            show_sent(&body)
        ));
        let task = tokio::spawn(async move { raw_http(addr, &method, &target, ct, &body).await });
        self.pending.insert(name.to_owned(), task);
    }

    /// A polling GET in the background.
    pub fn spawn_get(&mut self, name: &str, query: &str) {
        self.spawn_http(name, "GET", query, "");
    }

    /// Waits for a background request and records its reply.
    pub async fn join(&mut self, name: &str) -> Result<HttpReply, String> {
        let task = self
            .pending
            .remove(name)
            .expect("no such background request");
        let r = common::step("background request", task)
            .await
            .unwrap_or_else(|e| Err(e.to_string()));
        self.record(format!("{name} -> {}", self.show(&r)));
        r
    }

    /// Drops a background request's connection before its reply.
    pub fn abort(&mut self, name: &str) {
        if let Some(t) = self.pending.remove(name) {
            t.abort();
        }
        self.record(format!("{name} connection dropped"));
    }

    /// Sends the head of a POST declaring `declared` bytes and the first `part` of its body,
    /// and leaves it in flight.
    pub async fn post_partial(&mut self, name: &str, query: &str, declared: usize, part: &str) {
        let target = self.target(query);
        let mut tcp = TcpStream::connect(self.target_addr).await.expect("connect");
        let head = format!(
            "POST {target} HTTP/1.1\r\nHost: {}\r\nContent-Type: text/plain;charset=UTF-8\r\nContent-Length: {declared}\r\nConnection: close\r\n\r\n{part}",
            self.target_addr
        );
        tcp.write_all(head.as_bytes()).await.expect("write");
        self.record(format!(
            "POST ?{query} declaring {declared} bytes, sent {part:?} (in flight as {name})"
        ));
        self.partial.insert(name.to_owned(), tcp);
    }

    /// Sends the rest of an in-flight POST and records the reply.
    pub async fn post_finish(&mut self, name: &str, rest: &str) -> Result<HttpReply, String> {
        let mut tcp = self.partial.remove(name).expect("no such POST");
        let r = async {
            tcp.write_all(rest.as_bytes())
                .await
                .map_err(|e| e.to_string())?;
            read_reply(&mut tcp).await
        };
        let r = common::within(common::STEP, "POST reply", r).await;
        self.record(format!(
            "{name} finished with {rest:?} -> {}",
            self.show(&r)
        ));
        r
    }

    /// Drops an in-flight POST's connection.
    pub fn post_abort(&mut self, name: &str) {
        self.partial.remove(name);
        self.record(format!("{name} connection dropped"));
    }

    /// Opens a WebSocket (`query` as for HTTP); records the handshake's outcome.
    pub async fn ws_open(&mut self, name: &str, query: &str) -> bool {
        let url = format!("ws://{}{}", self.target_addr, self.target(query));
        let req = url.into_client_request().expect("ws request");
        let r = common::step("websocket handshake", tokio_tungstenite::connect_async(req)).await;
        match r {
            Ok((ws, resp)) => {
                self.record(format!("WS {name} ?{query} -> {}", resp.status().as_u16()));
                self.ws.insert(name.to_owned(), ws);
                true
            }
            Err(tokio_tungstenite::tungstenite::Error::Http(resp)) => {
                let body = resp.body().clone().unwrap_or_default();
                let ct = resp
                    .headers()
                    .get("content-type")
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or("")
                    .to_owned();
                self.record(format!(
                    "WS {name} ?{query} -> refused {} [{ct}] {}",
                    resp.status().as_u16(),
                    String::from_utf8_lossy(&body)
                ));
                false
            }
            Err(e) => {
                self.record(format!(
                    "WS {name} ?{query} -> failed: {}",
                    short_ws_error(&e)
                ));
                false
            }
        }
    }

    /// A WebSocket session's handshake: opens it and reads the open packet.
    pub async fn ws_handshake(&mut self, name: &str, eio: u8, extra: &str) -> Option<String> {
        self.eio = eio;
        if !self
            .ws_open(name, &format!("EIO={eio}&transport=websocket{extra}"))
            .await
        {
            return None;
        }
        let open = self.ws_recv(name).await?;
        if let Some(sid) = find_key(&open, "sid").into_iter().next() {
            self.sid = sid;
        }
        Some(open)
    }

    /// Sends a text frame.
    pub async fn ws_send(&mut self, name: &str, text: &str) {
        self.record(format!("WS {name} -> text {text}"));
        let ws = self.ws.get_mut(name).expect("no such websocket");
        if let Err(e) = ws.send(WsMsg::text(text)).await {
            self.record(format!("WS {name} send failed: {}", short_ws_error(&e)));
        }
    }

    /// Sends a binary frame.
    pub async fn ws_send_bin(&mut self, name: &str, data: &[u8]) {
        let shown = show_msgpack(data).map_or_else(
            || format!("binary {}", hex(data)),
            |v| format!("msgpack {v}"),
        );
        self.record(format!("WS {name} -> {shown}"));
        let ws = self.ws.get_mut(name).expect("no such websocket");
        if let Err(e) = ws.send(WsMsg::binary(data.to_vec())).await {
            self.record(format!("WS {name} send failed: {}", short_ws_error(&e)));
        }
    }

    /// Starts the closing handshake from the client side (close frame 1000).
    pub async fn ws_close(&mut self, name: &str) {
        self.record(format!("WS {name} -> close 1000"));
        let ws = self.ws.get_mut(name).expect("no such websocket");
        let _ = ws.close(None).await;
    }

    /// Drops the connection without a closing handshake.
    pub fn ws_drop(&mut self, name: &str) {
        self.record(format!("WS {name} connection dropped"));
        self.ws.remove(name);
    }

    /// The next data or close frame (within the step limit); records it. `None` when the
    /// connection ended or nothing came.
    pub async fn ws_recv(&mut self, name: &str) -> Option<String> {
        self.ws_recv_within(name, common::STEP).await
    }

    /// [`Wire::ws_recv`] with its own limit; "nothing" is recorded when it passes.
    pub async fn ws_recv_within(&mut self, name: &str, limit: Duration) -> Option<String> {
        let ws = self.ws.get_mut(name).expect("no such websocket");
        let got = tokio::time::timeout(limit, async {
            loop {
                match ws.next().await {
                    Some(Ok(m)) => {
                        if let Some(s) = show_ws(&m) {
                            return Some(Ok(s));
                        }
                    }
                    Some(Err(e)) => return Some(Err(short_ws_error(&e))),
                    None => return None,
                }
            }
        })
        .await;
        match got {
            Ok(Some(Ok(s))) => {
                self.record(format!("WS {name} <- {s}"));
                s.strip_prefix("text ").map(str::to_owned)
            }
            Ok(Some(Err(e))) => {
                self.record(format!("WS {name} <- error: {e}"));
                None
            }
            Ok(None) => {
                self.record(format!("WS {name} <- end"));
                None
            }
            Err(_) => {
                self.record(format!("WS {name} <- nothing within {limit:?}"));
                None
            }
        }
    }

    /// Receives until the connection ends (or nothing more comes within the step limit);
    /// records every frame.
    pub async fn ws_until_end(&mut self, name: &str) {
        for _ in 0..64 {
            let ws = self.ws.get_mut(name).expect("no such websocket");
            let got = tokio::time::timeout(common::STEP, ws.next()).await;
            match got {
                Ok(Some(Ok(m))) => {
                    if let Some(s) = show_ws(&m) {
                        self.record(format!("WS {name} <- {s}"));
                    }
                }
                Ok(Some(Err(e))) => {
                    self.record(format!("WS {name} <- error: {}", short_ws_error(&e)));
                    return;
                }
                Ok(None) => {
                    self.record(format!("WS {name} <- end"));
                    // Let go of the TCP connection too, as a browser would.
                    self.ws.remove(name);
                    return;
                }
                Err(_) => {
                    self.record(format!("WS {name} still open after {:?}", common::STEP));
                    return;
                }
            }
        }
        panic!("websocket {name} did not end");
    }

    /// Waits until every background request still running (a long-poll GET, a partly sent
    /// POST) has reached the server and waits there, so that the next step comes after it.
    /// The protocol gives a client no way to see that; each server counts its unanswered
    /// requests for the harness.
    pub async fn settle(&self) {
        let running = self.pending.values().filter(|t| !t.is_finished()).count();
        let want = running + self.partial.len();
        common::wait_until(
            common::STEP,
            "the background requests wait in the server",
            || async { self.waiting.count().await >= want },
        )
        .await;
    }

    /// Waits `ms` of protocol time (a heartbeat interval, an upgrade timeout) that the case
    /// is about; recorded so both transcripts show it.
    pub async fn wait(&self, ms: u64) {
        self.record(format!("(wait {ms} ms)"));
        tokio::time::sleep(Duration::from_millis(ms)).await;
    }
}

fn short_ws_error(e: &tokio_tungstenite::tungstenite::Error) -> String {
    use tokio_tungstenite::tungstenite::Error;
    match e {
        Error::ConnectionClosed | Error::AlreadyClosed => "closed".into(),
        Error::Io(_) => "io error".into(),
        Error::Protocol(p) => format!("protocol: {p}"),
        other => other.to_string(),
    }
}

fn show_sent(body: &[u8]) -> String {
    if body.is_empty() {
        String::new()
    } else {
        format!("<{}>", String::from_utf8_lossy(body))
    }
}

/// A v3 text payload: `<len>:<packet>` repeated.
fn looks_like_v3_payload(s: &str) -> bool {
    let digits = s.bytes().take_while(u8::is_ascii_digit).count();
    digits > 0 && s.as_bytes().get(digits) == Some(&b':')
}

/// Shows a v3 payload packet by packet (the length prefixes depend on id lengths, which
/// differ between servers; whether each is right is shown instead).
fn show_v3_payload(s: &str) -> String {
    let mut out = Vec::new();
    let mut rest = s;
    while !rest.is_empty() {
        let Some((len, tail)) = rest.split_once(':') else {
            out.push(format!("junk {rest:?}"));
            break;
        };
        let Ok(n) = len.parse::<usize>() else {
            out.push(format!("junk {rest:?}"));
            break;
        };
        // Lengths count UTF-16 units in v3; the harness only sends ASCII.
        let take: String = tail.chars().take(n).collect();
        let used = take.len();
        out.push(format!("v3[{take}]"));
        rest = &tail[used..];
    }
    out.join(" ")
}

/// Every string value of `"key":"..."` in `text`.
fn find_key(text: &str, key: &str) -> Vec<String> {
    let pat = format!("\"{key}\":\"");
    let mut out = Vec::new();
    let mut rest = text;
    while let Some(i) = rest.find(&pat) {
        let after = &rest[i + pat.len()..];
        if let Some(end) = after.find('"') {
            out.push(after[..end].to_owned());
            rest = &after[end..];
        } else {
            break;
        }
    }
    out
}

async fn raw_http(
    addr: std::net::SocketAddr,
    method: &str,
    target: &str,
    content_type: Option<&str>,
    body: &[u8],
) -> Result<HttpReply, String> {
    let go = async {
        let mut tcp = TcpStream::connect(addr).await.map_err(|e| e.to_string())?;
        let mut head =
            format!("{method} {target} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n");
        if let Some(ct) = content_type {
            head.push_str(&format!("Content-Type: {ct}\r\n"));
        }
        if method != "GET" || !body.is_empty() {
            head.push_str(&format!("Content-Length: {}\r\n", body.len()));
        }
        head.push_str("\r\n");
        let mut req = head.into_bytes();
        req.extend_from_slice(body);
        tcp.write_all(&req).await.map_err(|e| e.to_string())?;
        read_reply(&mut tcp).await
    };
    common::within(common::SCRIPT, "HTTP reply", go).await
}

/// Reads a whole `Connection: close` response.
async fn read_reply(tcp: &mut TcpStream) -> Result<HttpReply, String> {
    let mut buf = Vec::new();
    if let Err(e) = tcp.read_to_end(&mut buf).await {
        if buf.is_empty() {
            return Err(format!("connection failed: {}", e.kind()));
        }
    }
    if buf.is_empty() {
        return Err("connection closed without a response".into());
    }
    let Some(split) = buf.windows(4).position(|w| w == b"\r\n\r\n") else {
        return Err("truncated response".into());
    };
    let head = String::from_utf8_lossy(&buf[..split]).into_owned();
    let mut raw_body = buf[split + 4..].to_vec();
    let mut lines = head.split("\r\n");
    let status = lines
        .next()
        .and_then(|l| l.split(' ').nth(1))
        .and_then(|s| s.parse().ok())
        .ok_or("bad status line")?;
    let mut content_type = String::new();
    let mut chunked = false;
    for l in lines {
        let Some((k, v)) = l.split_once(':') else {
            continue;
        };
        let (k, v) = (k.trim().to_ascii_lowercase(), v.trim());
        if k == "content-type" {
            content_type = v.to_owned();
        }
        if k == "transfer-encoding" && v.eq_ignore_ascii_case("chunked") {
            chunked = true;
        }
    }
    if chunked {
        raw_body = dechunk(&raw_body);
    }
    Ok(HttpReply {
        status,
        content_type,
        body: raw_body,
    })
}

fn dechunk(mut b: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    while let Some(nl) = b.windows(2).position(|w| w == b"\r\n") {
        let size = std::str::from_utf8(&b[..nl])
            .ok()
            .and_then(|s| usize::from_str_radix(s.split(';').next().unwrap_or("").trim(), 16).ok())
            .unwrap_or(0);
        if size == 0 {
            break;
        }
        let start = nl + 2;
        let end = (start + size).min(b.len());
        out.extend_from_slice(&b[start..end]);
        b = b.get(end + 2..).unwrap_or(&[]);
    }
    out
}

/// Replaces every id the servers chose (engine and socket ids, recovery pids) by `<idN>` in
/// order of first appearance, so transcripts of both servers compare.
fn normalize(lines: &[String]) -> Vec<String> {
    let mut ids: Vec<String> = Vec::new();
    let mut out = Vec::new();
    for l in lines {
        for key in ["sid", "pid"] {
            for id in find_key(l, key) {
                if !id.is_empty() && !ids.contains(&id) {
                    ids.push(id);
                }
            }
        }
        let mut l = l.clone();
        for (i, id) in ids.iter().enumerate() {
            l = l.replace(id.as_str(), &format!("<id{i}>"));
        }
        out.push(l);
    }
    out
}

/// Runs `case` against the reference and against ours with `config`, then compares.
pub async fn run<F, Fut>(name: &str, config: Config, case: F)
where
    F: Fn(Wire) -> Fut,
    Fut: Future<Output = ()>,
{
    let Some(node) = start_node(name, &config).await else {
        return;
    };
    let ours = start_ours(&config).await;
    // Both at once: the cases wait on protocol timers, and the two servers are independent.
    let (theirs, mine) = tokio::join!(transcript(&node, &case), transcript(&ours, &case));
    let (theirs, mine) = (normalize(&theirs), normalize(&mine));
    let deliberate = DELIBERATE
        .iter()
        .find(|(c, _)| *c == name)
        .map(|(_, why)| *why);
    let shown = render(&theirs, &mine);
    match deliberate {
        None => assert!(
            theirs == mine,
            "{name}: our server differs from the reference\n{shown}"
        ),
        Some(why) => {
            assert!(
                theirs != mine,
                "{name} is listed as a deliberate difference ({why}) but now matches the reference: remove it from DELIBERATE and docs/deliberate-differences.md\n{shown}"
            );
            eprintln!("{name}: deliberate difference ({why})\n{shown}");
        }
    }
    eprintln!("{name}: {} transcript lines compared", theirs.len());
}

async fn transcript<F, Fut>(target: &Target, case: &F) -> Vec<String>
where
    F: Fn(Wire) -> Fut,
    Fut: Future<Output = ()>,
{
    let lines = Arc::new(Mutex::new(Vec::new()));
    common::within(
        Duration::from_secs(60),
        "diff case",
        case(Wire::new(target, lines.clone())),
    )
    .await;
    lines.lock().unwrap().clone()
}

fn render(theirs: &[String], mine: &[String]) -> String {
    let mut s = String::new();
    let n = theirs.len().max(mine.len());
    for i in 0..n {
        let a = theirs.get(i).map_or("", String::as_str);
        let b = mine.get(i).map_or("", String::as_str);
        if a == b {
            s.push_str(&format!("  = {a}\n"));
        } else {
            s.push_str(&format!("  reference: {a}\n  ours:      {b}\n"));
        }
    }
    s
}

/// Declares one test per case: `diff_case!(name, config, |w| async move { ... })`.
#[macro_export]
macro_rules! diff_case {
    ($name:ident, $config:expr, $case:expr) => {
        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn $name() {
            $crate::diff::run(stringify!($name), $config, $case).await;
        }
    };
}
