//! Helpers of the hardening tests (`tests/hardening_*.rs`): a Socket.IO server that records
//! what happens to its sockets, a Socket.IO client over tokio-tungstenite, a hand-rolled
//! WebSocket client that can send what a library refuses to (fragments, bad UTF-8, reserved
//! opcodes), a `tracing` capture and the process RSS.
#![allow(dead_code)]

use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::Message as Ws;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};
use tower_socketio::{AckSender, Bin, Data, DisconnectReason, SocketIo, SocketRef, TryData};

use crate::common::{self, STEP, TestServer, step};

pub type WsStream = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// What the server saw, in order.
#[derive(Debug, Clone, PartialEq)]
pub enum Seen {
    /// A socket joined `/`; `auth` is what `TryData<Value>` made of its auth (`Ok` value or
    /// `Err` message).
    Connect {
        sid: String,
        auth: Result<Value, String>,
    },
    /// A socket left, with the reason's wire name.
    Disconnect { sid: String, reason: String },
    /// The `try` handler ran: `Ok(value)` or the deserialization error.
    Try(Result<Value, String>),
}

pub struct SioServer {
    pub server: TestServer,
    pub io: SocketIo,
    pub seen: mpsc::UnboundedReceiver<Seen>,
}

impl SioServer {
    /// The next record, within [`STEP`].
    pub async fn next(&mut self) -> Seen {
        step("a server-side record", self.seen.recv())
            .await
            .expect("record channel open")
    }

    /// The next disconnect record (other records skipped).
    pub async fn disconnect(&mut self) -> (String, String) {
        loop {
            if let Seen::Disconnect { sid, reason } = self.next().await {
                return (sid, reason);
            }
        }
    }

    /// Asserts nothing was recorded yet (no disconnect, no handler call).
    pub fn assert_quiet(&mut self) {
        if let Ok(s) = self.seen.try_recv() {
            panic!("unexpected server-side record {s:?}");
        }
    }
}

/// Heartbeat settings too long to interfere with the tests not about it.
pub fn quiet() -> tower_socketio::SocketIoBuilder {
    SocketIo::builder()
        .ping_interval(Duration::from_secs(30))
        .ping_timeout(Duration::from_secs(30))
}

/// A server whose `/` records connects (with the auth as `TryData<Value>`) and disconnects,
/// answers `echo` (`Data<Value>`) with an ack, and records and answers `try`
/// (`TryData<Value>`): `{"ok": value}` or `{"err": message}`; `bin` acks the lengths of the
/// attachments; `join` joins the room it names.
pub async fn sio_server(builder: tower_socketio::SocketIoBuilder) -> SioServer {
    let (layer, io) = builder.build_layer();
    let (tx, rx) = mpsc::unbounded_channel();
    io.ns(
        "/",
        move |socket: SocketRef, TryData(auth): TryData<Value>| {
            let _ = tx.send(Seen::Connect {
                sid: socket.id().to_string(),
                auth: auth.map_err(|e| e.to_string()),
            });
            let dtx = tx.clone();
            socket.on_disconnect(move |s: SocketRef, r: DisconnectReason| {
                let _ = dtx.send(Seen::Disconnect {
                    sid: s.id().to_string(),
                    reason: r.as_str().to_owned(),
                });
            });
            socket.on("echo", |Data(v): Data<Value>, ack: AckSender| {
                ack.send(&v).ok();
            });
            let ttx = tx.clone();
            socket.on("try", move |TryData(v): TryData<Value>, ack: AckSender| {
                let r = v.map_err(|e| e.to_string());
                let answer = match &r {
                    Ok(v) => json!({ "ok": v }),
                    Err(e) => json!({ "err": e }),
                };
                let _ = ttx.send(Seen::Try(r));
                ack.send(&answer).ok();
            });
            socket.on("bin", |Bin(b): Bin, ack: AckSender| {
                ack.send(&b.iter().map(|x| x.len()).collect::<Vec<_>>())
                    .ok();
            });
            socket.on(
                "join",
                |socket: SocketRef, Data(room): Data<String>, ack: AckSender| {
                    socket.join(room);
                    ack.send(&"joined").ok();
                },
            );
        },
    );
    SioServer {
        server: common::serve_layer(layer).await,
        io,
        seen: rx,
    }
}

/// An Engine.IO v4 WebSocket connection speaking Socket.IO by hand.
pub struct Raw {
    pub ws: WsStream,
}

impl Raw {
    /// Opens the connection and reads the Engine.IO OPEN packet.
    pub async fn open(server: &TestServer) -> Self {
        let url = server.ws_url("/socket.io/?EIO=4&transport=websocket");
        let (ws, _) = step("WebSocket handshake", tokio_tungstenite::connect_async(url))
            .await
            .expect("WebSocket handshake");
        let mut raw = Self { ws };
        let open = raw.next_text().await;
        assert!(open.starts_with("0{"), "Engine.IO OPEN first: {open}");
        raw
    }

    /// Opens the connection and joins `/`; returns it with its socket id.
    pub async fn joined(server: &TestServer) -> (Self, String) {
        let mut raw = Self::open(server).await;
        let sid = raw.join().await;
        (raw, sid)
    }

    /// Sends one Engine.IO message carrying the Socket.IO packet `packet`.
    pub async fn send(&mut self, packet: &str) {
        step("send", self.ws.send(Ws::text(format!("4{packet}"))))
            .await
            .expect("send");
    }

    /// Sends one binary frame (an attachment).
    pub async fn send_binary(&mut self, data: Vec<u8>) {
        step("send binary", self.ws.send(Ws::binary(data)))
            .await
            .expect("send binary");
    }

    /// The next Engine.IO message (without its `4`), answering pings meanwhile.
    pub async fn next_text(&mut self) -> String {
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

    /// Joins `/`; returns the socket id.
    pub async fn join(&mut self) -> String {
        self.send("0").await;
        let reply = self.next_text().await;
        let sid = reply
            .strip_prefix('0')
            .and_then(|j| serde_json::from_str::<Value>(j).ok())
            .and_then(|v| v["sid"].as_str().map(str::to_owned));
        sid.unwrap_or_else(|| panic!("CONNECT reply expected, got {reply}"))
    }

    /// Waits for the server to close the connection; returns the messages received meanwhile.
    pub async fn closed(&mut self) -> Vec<String> {
        let mut got = Vec::new();
        let res = tokio::time::timeout(STEP, async {
            loop {
                match self.ws.next().await {
                    None | Some(Err(_)) | Some(Ok(Ws::Close(_))) => return,
                    Some(Ok(Ws::Text(t))) if t.as_str() == "2" => {
                        let _ = self.ws.send(Ws::text("3")).await;
                    }
                    Some(Ok(Ws::Text(t))) => got.push(t.as_str().to_owned()),
                    Some(Ok(_)) => {}
                }
            }
        })
        .await;
        assert!(res.is_ok(), "the connection stayed open; got {got:?}");
        got
    }

    /// An `echo` ack round trip with ack id `n`: the connection works.
    pub async fn assert_alive(&mut self, n: u32) {
        self.send(&format!("2{n}[\"echo\",\"still here\"]")).await;
        assert_eq!(
            self.next_text().await,
            format!("3{n}[\"still here\"]"),
            "the connection keeps working"
        );
    }
}

// ------------------------------------------------------------------------------------------
// A hand-rolled WebSocket client.

/// WebSocket opcodes.
pub const CONTINUATION: u8 = 0x0;
pub const TEXT: u8 = 0x1;
pub const BINARY: u8 = 0x2;
pub const CLOSE: u8 = 0x8;
pub const PING: u8 = 0x9;

/// One masked client frame; `first_byte` is FIN/RSV/opcode as sent.
pub fn frame_raw(first_byte: u8, payload: &[u8]) -> Vec<u8> {
    let mask = [0x12u8, 0x34, 0x56, 0x78];
    let mut out = Vec::with_capacity(payload.len() + 14);
    out.push(first_byte);
    let len = payload.len();
    if len < 126 {
        out.push(0x80 | len as u8);
    } else if len <= 0xffff {
        out.push(0x80 | 126);
        out.extend_from_slice(&(len as u16).to_be_bytes());
    } else {
        out.push(0x80 | 127);
        out.extend_from_slice(&(len as u64).to_be_bytes());
    }
    out.extend_from_slice(&mask);
    out.extend(payload.iter().enumerate().map(|(i, b)| b ^ mask[i % 4]));
    out
}

/// A masked frame with FIN set or not.
pub fn frame(fin: bool, opcode: u8, payload: &[u8]) -> Vec<u8> {
    frame_raw(if fin { 0x80 } else { 0 } | opcode, payload)
}

/// A WebSocket over a plain TCP stream, frames written and read by hand.
pub struct RawWs {
    pub tcp: TcpStream,
    buf: Vec<u8>,
}

/// How a [`RawWs`] ended.
#[derive(Debug, PartialEq, Eq)]
pub enum Ending {
    /// A close frame, with its status code.
    Close(Option<u16>),
    /// The TCP connection ended (EOF or reset) without a close frame.
    Eof,
}

impl RawWs {
    /// Handshakes on `path_and_query`; panics unless the answer is 101.
    pub async fn connect(server: &TestServer, path_and_query: &str) -> Self {
        let mut tcp = step("tcp connect", TcpStream::connect(server.addr))
            .await
            .expect("tcp connect");
        let req = format!(
            "GET {path_and_query} HTTP/1.1\r\nHost: {}\r\nConnection: Upgrade\r\n\
             Upgrade: websocket\r\nSec-WebSocket-Version: 13\r\n\
             Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n",
            server.addr
        );
        step("handshake write", tcp.write_all(req.as_bytes()))
            .await
            .expect("write handshake");
        let mut buf = Vec::new();
        let head_end = loop {
            if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                break i + 4;
            }
            let mut chunk = [0u8; 1024];
            let n = step("handshake read", tcp.read(&mut chunk))
                .await
                .expect("read handshake");
            assert!(n > 0, "connection closed during the handshake");
            buf.extend_from_slice(&chunk[..n]);
        };
        let head = String::from_utf8_lossy(&buf[..head_end]).into_owned();
        assert!(head.starts_with("HTTP/1.1 101"), "101 expected: {head}");
        buf.drain(..head_end);
        Self { tcp, buf }
    }

    /// Opens an Engine.IO session over `/socket.io/` and reads its OPEN packet.
    pub async fn open_engine(server: &TestServer) -> Self {
        let mut ws = Self::connect(server, "/socket.io/?EIO=4&transport=websocket").await;
        let (op, open) = ws.read_frame().await.expect("OPEN packet");
        assert_eq!(op, TEXT);
        assert!(open.starts_with(b"0{"), "OPEN packet first");
        ws
    }

    /// Writes bytes as they are.
    pub async fn write(&mut self, data: &[u8]) -> std::io::Result<()> {
        step("raw websocket write", self.tcp.write_all(data)).await
    }

    /// Writes a text message in one frame.
    pub async fn send_text(&mut self, text: &str) {
        self.write(&frame(true, TEXT, text.as_bytes()))
            .await
            .expect("write text frame");
    }

    async fn fill(&mut self, want: usize) -> bool {
        while self.buf.len() < want {
            let mut chunk = [0u8; 4096];
            match step("raw websocket read", self.tcp.read(&mut chunk)).await {
                Ok(0) | Err(_) => return false,
                Ok(n) => self.buf.extend_from_slice(&chunk[..n]),
            }
        }
        true
    }

    /// The next frame from the server (unmasked): opcode and payload; `None` at EOF.
    pub async fn read_frame(&mut self) -> Option<(u8, Vec<u8>)> {
        if !self.fill(2).await {
            return None;
        }
        let op = self.buf[0] & 0x0f;
        let (len, head) = match self.buf[1] & 0x7f {
            126 => {
                if !self.fill(4).await {
                    return None;
                }
                (u16::from_be_bytes([self.buf[2], self.buf[3]]) as usize, 4)
            }
            127 => {
                if !self.fill(10).await {
                    return None;
                }
                let mut b = [0u8; 8];
                b.copy_from_slice(&self.buf[2..10]);
                (u64::from_be_bytes(b) as usize, 10)
            }
            n => (n as usize, 2),
        };
        if !self.fill(head + len).await {
            return None;
        }
        let payload = self.buf[head..head + len].to_vec();
        self.buf.drain(..head + len);
        Some((op, payload))
    }

    /// The next text message, answering Engine.IO pings.
    pub async fn read_text(&mut self) -> String {
        loop {
            match self.read_frame().await {
                Some((TEXT, p)) if p == b"2" => self.send_text("3").await,
                Some((TEXT, p)) => return String::from_utf8(p).expect("UTF-8 from the server"),
                Some((PING, _)) => {}
                other => panic!("text frame expected, got {other:?}"),
            }
        }
    }

    /// Reads until the server closes; returns how, and the text messages before.
    pub async fn ending(&mut self) -> (Ending, Vec<String>) {
        let mut texts = Vec::new();
        loop {
            match self.read_frame().await {
                None => return (Ending::Eof, texts),
                Some((CLOSE, p)) => {
                    let code = (p.len() >= 2).then(|| u16::from_be_bytes([p[0], p[1]]));
                    return (Ending::Close(code), texts);
                }
                Some((TEXT, p)) => texts.push(String::from_utf8_lossy(&p).into_owned()),
                Some(_) => {}
            }
        }
    }
}

// ------------------------------------------------------------------------------------------
// Logs and memory.

/// A `tracing` writer into a shared buffer, to check what the server logged.
#[derive(Clone, Default)]
pub struct LogBuf(Arc<Mutex<Vec<u8>>>);

impl Write for LogBuf {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl LogBuf {
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap_or_else(|e| e.into_inner())).into_owned()
    }

    /// A subscriber writing into this buffer at `level` and above; set it as the thread's
    /// default in a current-thread test so the server's tasks log here.
    pub fn subscriber(&self, level: tracing::Level) -> impl tracing::Subscriber + Send + Sync {
        let writer = self.clone();
        tracing_subscriber::fmt()
            .with_writer(move || writer.clone())
            .with_ansi(false)
            .with_max_level(level)
            .finish()
    }
}

/// The resident set size of this process, in KiB (Linux), or `None` elsewhere.
pub fn rss_kib() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
}

/// Polls `cond` every 20 ms until it holds, failing after `limit` with `what`.
pub async fn eventually(limit: Duration, what: &str, cond: impl FnMut() -> bool) {
    eventually_or(limit, cond, || format!("waiting until {what}")).await;
}

/// As [`eventually`], with the failure message built when it fails (to show the state then).
pub async fn eventually_or(
    limit: Duration,
    mut cond: impl FnMut() -> bool,
    describe: impl Fn() -> String,
) {
    let deadline = tokio::time::Instant::now() + limit;
    while !cond() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out after {limit:?}: {}",
            describe()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

// ------------------------------------------------------------------------------------------
// A Socket.IO client over HTTP long-polling, by hand.

/// A long-polling session on `/socket.io/`.
pub struct Polling {
    pub http: reqwest::Client,
    pub base: String,
    pub sid: String,
}

/// An HTTP client for the tests: no proxy, every request bounded by [`STEP`].
pub fn http_client() -> reqwest::Client {
    reqwest::Client::builder()
        .no_proxy()
        .timeout(STEP)
        .build()
        .expect("reqwest client")
}

impl Polling {
    /// Handshakes; panics unless the answer is an OPEN packet.
    pub async fn open(server: &TestServer) -> Self {
        let http = http_client();
        let base = server.http_url("/socket.io/?EIO=4&transport=polling");
        let res = step("polling handshake", http.get(&base).send())
            .await
            .expect("polling handshake");
        assert_eq!(res.status().as_u16(), 200);
        let body = res.text().await.expect("handshake body");
        let open: Value =
            serde_json::from_str(body.strip_prefix('0').expect("OPEN packet")).expect("OPEN JSON");
        let sid = open["sid"].as_str().expect("sid").to_owned();
        Self { http, base, sid }
    }

    pub fn url(&self) -> String {
        format!("{}&sid={}", self.base, self.sid)
    }

    /// A GET; status and body.
    pub async fn get(&self) -> (u16, String) {
        let res = step("polling GET", self.http.get(self.url()).send())
            .await
            .expect("polling GET");
        let status = res.status().as_u16();
        (status, res.text().await.expect("GET body"))
    }

    /// A POST of `body` as text; status and body.
    pub async fn post(&self, body: impl Into<reqwest::Body>) -> (u16, String) {
        let res = step(
            "polling POST",
            self.http
                .post(self.url())
                .header("content-type", "text/plain;charset=UTF-8")
                .body(body)
                .send(),
        )
        .await
        .expect("polling POST");
        let status = res.status().as_u16();
        (status, res.text().await.expect("POST body"))
    }

    /// A POST that must be accepted.
    pub async fn push(&self, body: impl Into<reqwest::Body>) {
        assert_eq!(
            self.post(body).await,
            (200, "ok".to_owned()),
            "POST refused"
        );
    }

    /// The packets of the next GET (which must succeed), pings answered and left out.
    pub async fn packets(&self) -> Vec<String> {
        loop {
            let (status, body) = self.get().await;
            assert_eq!(status, 200, "GET failed: {body}");
            let packets: Vec<String> = body
                .split('\x1e')
                .filter(|p| *p != "2")
                .map(str::to_owned)
                .collect();
            if body.split('\x1e').any(|p| p == "2") {
                self.push("3").await;
            }
            if !packets.is_empty() {
                return packets;
            }
        }
    }

    /// Joins `/`; returns the socket id.
    pub async fn join(&self) -> String {
        self.push("40").await;
        let packets = self.packets().await;
        let reply = packets[0].strip_prefix("40").expect("CONNECT reply");
        let v: Value = serde_json::from_str(reply).expect("CONNECT reply JSON");
        v["sid"].as_str().expect("sid").to_owned()
    }

    /// An `echo` ack round trip with ack id `n`.
    pub async fn assert_alive(&self, n: u32) {
        self.push(format!("42{n}[\"echo\",\"polling\"]")).await;
        assert_eq!(
            self.packets().await,
            vec![format!("43{n}[\"polling\"]")],
            "the polling connection keeps working"
        );
    }
}
