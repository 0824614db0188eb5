//! Engine.IO v4 on the wire: raw HTTP and WebSocket requests against a real server, checked
//! against what the reference Node.js `engine.io` server answers.

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::Message as Ws;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};
use tower_socketio::engine::{
    CloseReason, Engine, EngineConfig, EngineHandler, EngineLayer, Frame, Gate, Message, Session,
    Sid, TransportKind,
};

use common::{STEP, TestServer, step};

// ------------------------------------------------------------------------------------------
// The server under test: an echo handler that reports every event to the test.

#[derive(Debug)]
enum Event {
    Open(String),
    Message(String, Message),
    Close(String, CloseReason),
}

struct Recorder {
    events: mpsc::UnboundedSender<Event>,
}

impl EngineHandler for Recorder {
    type Data = ();

    fn on_open(&self, session: &Arc<Session<()>>) {
        let _ = self.events.send(Event::Open(session.id().to_string()));
    }

    fn on_message(&self, session: &Arc<Session<()>>, msg: Message) -> Option<Gate> {
        let echo = match &msg {
            Message::Text(t) => Frame::message(t),
            Message::Binary(b) => Frame::binary(b.clone()),
        };
        let _ = session.send(echo);
        let _ = self
            .events
            .send(Event::Message(session.id().to_string(), msg));
        None
    }

    fn on_close(&self, session: &Arc<Session<()>>, reason: CloseReason) {
        let _ = self
            .events
            .send(Event::Close(session.id().to_string(), reason));
    }
}

type WsClient = WebSocketStream<MaybeTlsStream<TcpStream>>;

struct Harness {
    server: TestServer,
    engine: Arc<Engine<Recorder>>,
    events: mpsc::UnboundedReceiver<Event>,
    http: reqwest::Client,
}

/// Heartbeat settings too long to interfere with tests that are not about heartbeat.
fn quiet() -> tower_socketio::engine::EngineConfigBuilder {
    EngineConfig::builder()
        .ping_interval(Duration::from_secs(30))
        .ping_timeout(Duration::from_secs(30))
}

/// Short heartbeat for the tests that are about it.
fn fast_heartbeat() -> tower_socketio::engine::EngineConfigBuilder {
    EngineConfig::builder()
        .ping_interval(Duration::from_millis(300))
        .ping_timeout(Duration::from_millis(200))
}

async fn start(config: EngineConfig) -> Harness {
    let (tx, rx) = mpsc::unbounded_channel();
    let engine = Engine::new(Recorder { events: tx }, config);
    let server = common::serve_layer(EngineLayer::new(engine.clone())).await;
    let http = reqwest::Client::builder()
        .no_proxy()
        .timeout(STEP)
        .build()
        .expect("reqwest client");
    Harness {
        server,
        engine,
        events: rx,
        http,
    }
}

fn polling(sid: &str) -> String {
    format!("EIO=4&transport=polling&sid={sid}")
}

fn websocket(sid: &str) -> String {
    format!("EIO=4&transport=websocket&sid={sid}")
}

impl Harness {
    fn url(&self, query: &str) -> String {
        self.server.http_url(&format!("/engine.io/?{query}"))
    }

    async fn get(&self, query: &str) -> (u16, String) {
        let res = step("GET", self.http.get(self.url(query)).send())
            .await
            .expect("GET failed");
        let status = res.status().as_u16();
        (status, res.text().await.expect("GET body"))
    }

    async fn post(&self, query: &str, body: impl Into<reqwest::Body>) -> (u16, String) {
        let res = step(
            "POST",
            self.http
                .post(self.url(query))
                .header("content-type", "text/plain;charset=UTF-8")
                .body(body)
                .send(),
        )
        .await
        .expect("POST failed");
        let status = res.status().as_u16();
        (status, res.text().await.expect("POST body"))
    }

    /// Opens a polling session; returns its sid and the open packet's JSON.
    async fn open_polling(&self) -> (String, Value) {
        let (status, body) = self.get("EIO=4&transport=polling").await;
        assert_eq!(status, 200, "handshake failed: {body}");
        let json = body
            .strip_prefix('0')
            .unwrap_or_else(|| panic!("open packet expected, got {body:?}"));
        let open: Value = serde_json::from_str(json).expect("open packet JSON");
        let sid = open["sid"].as_str().expect("sid").to_owned();
        (sid, open)
    }

    /// A long-polling GET that must succeed.
    async fn poll(&self, sid: &str) -> String {
        let (status, body) = self.get(&polling(sid)).await;
        assert_eq!(status, 200, "poll failed: {body}");
        body
    }

    /// A polling GET started in the background (it stays pending until the server writes).
    fn poll_later(&self, sid: &str) -> tokio::task::JoinHandle<(u16, String)> {
        let req = self.http.get(self.url(&polling(sid)));
        tokio::spawn(async move {
            let res = req.send().await.expect("background GET failed");
            let status = res.status().as_u16();
            (status, res.text().await.expect("GET body"))
        })
    }

    /// A POST that must be accepted.
    async fn push(&self, sid: &str, body: impl Into<reqwest::Body>) {
        let (status, text) = self.post(&polling(sid), body).await;
        assert_eq!((status, text.as_str()), (200, "ok"), "POST refused");
    }

    /// Waits for the handler to see a session open; returns its sid.
    async fn opened(&mut self) -> String {
        loop {
            match step("session open event", self.events.recv()).await {
                Some(Event::Open(s)) => return s,
                Some(_) => {}
                None => panic!("event channel closed"),
            }
        }
    }

    /// Waits for the handler to see `sid` close.
    async fn close_of(&mut self, sid: &str) -> CloseReason {
        loop {
            match step("session close event", self.events.recv()).await {
                Some(Event::Close(s, reason)) if s == sid => return reason,
                Some(_) => {}
                None => panic!("event channel closed"),
            }
        }
    }

    /// Waits for the handler to receive a message on `sid`.
    async fn message_of(&mut self, sid: &str) -> Message {
        loop {
            match step("message event", self.events.recv()).await {
                Some(Event::Message(s, m)) if s == sid => return m,
                Some(Event::Close(s, r)) if s == sid => panic!("{sid} closed ({r:?})"),
                Some(_) => {}
                None => panic!("event channel closed"),
            }
        }
    }

    /// Asserts that no close was reported so far.
    fn assert_no_close(&mut self) {
        while let Ok(ev) = self.events.try_recv() {
            if let Event::Close(s, r) = ev {
                panic!("session {s} closed unexpectedly: {r:?}");
            }
        }
    }

    fn session(&self, sid: &str) -> Option<Arc<Session<()>>> {
        self.engine.session(Sid::parse(sid)?)
    }

    /// Asserts the sid is unknown to the server, over the wire.
    async fn assert_gone(&self, sid: &str) {
        let (status, body) = self.get(&polling(sid)).await;
        assert_error(status, &body, 400, 1, "Session ID unknown");
    }

    async fn ws(&self, query: &str) -> WsClient {
        let url = self.server.ws_url(&format!("/engine.io/?{query}"));
        let (ws, res) = step("websocket connect", tokio_tungstenite::connect_async(url))
            .await
            .expect("websocket handshake failed");
        assert_eq!(res.status().as_u16(), 101);
        ws
    }

    /// Opens a session directly over WebSocket; returns the socket, sid and open packet.
    async fn open_ws(&self) -> (WsClient, String, Value) {
        let mut ws = self.ws("EIO=4&transport=websocket").await;
        let text = ws_text(&mut ws).await;
        let open: Value = serde_json::from_str(
            text.strip_prefix('0')
                .unwrap_or_else(|| panic!("open packet expected, got {text:?}")),
        )
        .expect("open packet JSON");
        let sid = open["sid"].as_str().expect("sid").to_owned();
        (ws, sid, open)
    }

    /// Opens a polling session and upgrades it to WebSocket.
    async fn open_upgraded(&self) -> (WsClient, String) {
        let (sid, _) = self.open_polling().await;
        let get = self.poll_later(&sid);
        let mut ws = self.ws(&websocket(&sid)).await;
        ws_send(&mut ws, "2probe").await;
        assert_eq!(ws_text(&mut ws).await, "3probe");
        assert_eq!(step("GET released", get).await.unwrap(), (200, "6".into()));
        ws_send(&mut ws, "5").await;
        // An echo proves the server switched.
        ws_send(&mut ws, "4upgraded").await;
        assert_eq!(ws_text(&mut ws).await, "4upgraded");
        (ws, sid)
    }
}

fn assert_error(status: u16, body: &str, want_status: u16, code: u8, message: &str) {
    assert_eq!(status, want_status, "status (body {body:?})");
    let json: Value = serde_json::from_str(body)
        .unwrap_or_else(|e| panic!("error body is not JSON ({e}): {body:?}"));
    assert_eq!(json, json!({ "code": code, "message": message }));
}

/// A refused WebSocket handshake, worded as the reference's: 400 and the message alone.
fn assert_upgrade_error(status: u16, body: &str, message: &str) {
    assert_eq!((status, body), (400, message));
}

fn is_sid(s: &str) -> bool {
    s.len() == 22
        && s.bytes()
            .all(|c| c.is_ascii_alphanumeric() || c == b'-' || c == b'_')
}

// ------------------------------------------------------------------------------------------
// WebSocket client helpers.

async fn ws_send(ws: &mut WsClient, text: &str) {
    step("websocket send", ws.send(Ws::text(text)))
        .await
        .expect("websocket send failed");
}

/// The next data message (control frames skipped).
async fn ws_next(ws: &mut WsClient) -> Ws {
    loop {
        match step("websocket message", ws.next()).await {
            Some(Ok(Ws::Ping(_) | Ws::Pong(_))) => {}
            Some(Ok(m)) => return m,
            Some(Err(e)) => panic!("websocket error: {e}"),
            None => panic!("websocket ended"),
        }
    }
}

async fn ws_text(ws: &mut WsClient) -> String {
    match ws_next(ws).await {
        Ws::Text(t) => t.to_string(),
        other => panic!("text frame expected, got {other:?}"),
    }
}

/// Waits until the server closes the WebSocket; returns the text frames received before.
async fn ws_closed(ws: &mut WsClient) -> Vec<String> {
    let mut texts = Vec::new();
    loop {
        match step("websocket close", ws.next()).await {
            None | Some(Ok(Ws::Close(_))) | Some(Err(_)) => return texts,
            Some(Ok(Ws::Text(t))) => texts.push(t.to_string()),
            Some(Ok(_)) => {}
        }
    }
}

// ------------------------------------------------------------------------------------------
// Raw HTTP, for what a high-level client hides: missing headers, streamed bodies, hang-ups.

struct RawResponse {
    status: u16,
    body: String,
}

async fn raw_connect(server: &TestServer) -> TcpStream {
    step("tcp connect", TcpStream::connect(server.addr))
        .await
        .expect("tcp connect")
}

async fn raw_write(stream: &mut TcpStream, data: &[u8]) {
    step("tcp write", stream.write_all(data))
        .await
        .expect("tcp write");
}

/// Reads one HTTP/1.1 response with a `Content-Length` (all the engine writes).
async fn raw_read(stream: &mut TcpStream) -> RawResponse {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    let head_end = loop {
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
        let n = step("response head", stream.read(&mut chunk))
            .await
            .expect("read response");
        assert!(n > 0, "connection closed before a response head");
        buf.extend_from_slice(&chunk[..n]);
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).into_owned();
    let status: u16 = head
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("bad status line: {head}"));
    let len: usize = head
        .lines()
        .find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.eq_ignore_ascii_case("content-length")
                .then(|| v.trim().parse().ok())?
        })
        .unwrap_or(0);
    while buf.len() < head_end + len {
        let n = step("response body", stream.read(&mut chunk))
            .await
            .expect("read body");
        assert!(n > 0, "connection closed inside a response body");
        buf.extend_from_slice(&chunk[..n]);
    }
    RawResponse {
        status,
        body: String::from_utf8_lossy(&buf[head_end..head_end + len]).into_owned(),
    }
}

/// A WebSocket handshake request for `query`, with extra header lines.
fn ws_handshake_request(server: &TestServer, query: &str, extra: &str) -> String {
    format!(
        "GET /engine.io/?{query} HTTP/1.1\r\nHost: {}\r\nConnection: Upgrade\r\n\
         Upgrade: websocket\r\nSec-WebSocket-Version: 13\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n{extra}\r\n",
        server.addr
    )
}

// ==========================================================================================
// Handshake

#[tokio::test]
async fn handshake_over_polling() {
    let config = EngineConfig::builder()
        .ping_interval(Duration::from_millis(25_000))
        .ping_timeout(Duration::from_millis(20_000))
        .max_payload(12_345)
        .build();
    let mut h = start(config).await;
    let res = step(
        "handshake",
        h.http.get(h.url("EIO=4&transport=polling")).send(),
    )
    .await
    .unwrap();
    assert_eq!(res.status().as_u16(), 200);
    let ctype = res.headers()["content-type"].to_str().unwrap().to_owned();
    assert!(ctype.starts_with("text/plain"), "content-type {ctype}");
    let body = res.text().await.unwrap();
    let open: Value = serde_json::from_str(body.strip_prefix('0').expect("open packet")).unwrap();
    let sid = open["sid"].as_str().unwrap();
    assert!(is_sid(sid), "sid {sid:?} is not 22 url-safe characters");
    assert_eq!(
        open,
        json!({
            "sid": sid,
            "upgrades": ["websocket"],
            "pingInterval": 25_000,
            "pingTimeout": 20_000,
            "maxPayload": 12_345,
        })
    );
    assert!(h.session(sid).is_some());
    assert_eq!(h.opened().await, sid, "the handler saw the open");
    // Two handshakes never share a sid.
    let (other, _) = h.open_polling().await;
    assert_ne!(other, sid);
}

#[tokio::test]
async fn handshake_over_websocket() {
    let h = start(quiet().max_payload(5_000).build()).await;
    let (mut ws, sid, open) = h.open_ws().await;
    assert!(is_sid(&sid), "sid {sid:?}");
    assert_eq!(
        open,
        json!({
            "sid": sid,
            "upgrades": [],
            "pingInterval": 30_000,
            "pingTimeout": 30_000,
            "maxPayload": 5_000,
        })
    );
    assert_eq!(
        h.session(&sid).expect("session").transport(),
        TransportKind::WebSocket
    );
    ws_send(&mut ws, "4hi").await;
    assert_eq!(ws_text(&mut ws).await, "4hi");
}

// ==========================================================================================
// Errors

#[tokio::test]
async fn error_transport_unknown() {
    let h = start(quiet().build()).await;
    for query in [
        "EIO=4",
        "EIO=4&transport=foo",
        "EIO=4&transport=__proto__",
        "EIO=4&transport=",
    ] {
        let (status, body) = h.get(query).await;
        assert_error(status, &body, 400, 0, "Transport unknown");
    }
    let (status, body) = h.post("EIO=4&transport=foo", "4x").await;
    assert_error(status, &body, 400, 0, "Transport unknown");
    // A transport the configuration disables is unknown too.
    let h = start(quiet().transports(false, true).build()).await;
    let (status, body) = h.get("EIO=4&transport=polling").await;
    assert_error(status, &body, 400, 0, "Transport unknown");
}

#[tokio::test]
async fn error_unknown_sid() {
    let h = start(quiet().build()).await;
    let absent = Sid::new().to_string();
    for sid in [absent.as_str(), "abc", "../../etc/passwd", ""] {
        let (status, body) = h.get(&polling(sid)).await;
        assert_error(status, &body, 400, 1, "Session ID unknown");
    }
    let (status, body) = h.post(&polling(&absent), "4x").await;
    assert_error(status, &body, 400, 1, "Session ID unknown");
    // Over a WebSocket upgrade too.
    let mut tcp = raw_connect(&h.server).await;
    raw_write(
        &mut tcp,
        ws_handshake_request(&h.server, &websocket(&absent), "").as_bytes(),
    )
    .await;
    let res = raw_read(&mut tcp).await;
    assert_upgrade_error(res.status, &res.body, "Session ID unknown");
}

#[tokio::test]
async fn error_bad_handshake_method() {
    let h = start(quiet().build()).await;
    let (status, body) = h.post("EIO=4&transport=polling", "").await;
    assert_error(status, &body, 400, 2, "Bad handshake method");
    let res = step(
        "PUT",
        h.http.put(h.url("EIO=4&transport=polling")).body("").send(),
    )
    .await
    .unwrap();
    let status = res.status().as_u16();
    assert_error(
        status,
        &res.text().await.unwrap(),
        400,
        2,
        "Bad handshake method",
    );
    assert_eq!(h.engine.session_count(), 0);
}

#[tokio::test]
async fn error_websocket_without_upgrade_header() {
    let h = start(quiet().build()).await;
    let (status, body) = h.get("EIO=4&transport=websocket").await;
    assert_error(status, &body, 400, 3, "Bad request");
    assert_eq!(h.engine.session_count(), 0);
}

#[tokio::test]
async fn error_unsupported_protocol_version() {
    let h = start(quiet().build()).await;
    for query in [
        "transport=polling",
        "EIO=3&transport=polling",
        "EIO=5&transport=polling",
        "EIO=&transport=polling",
    ] {
        let (status, body) = h.get(query).await;
        assert_error(status, &body, 400, 5, "Unsupported protocol version");
    }
    // Direct WebSocket handshakes check it as well.
    let mut tcp = raw_connect(&h.server).await;
    raw_write(
        &mut tcp,
        ws_handshake_request(&h.server, "EIO=3&transport=websocket", "").as_bytes(),
    )
    .await;
    let res = raw_read(&mut tcp).await;
    assert_upgrade_error(res.status, &res.body, "Unsupported protocol version");
    assert_eq!(h.engine.session_count(), 0);
}

fn deny_marked() -> EngineConfig {
    quiet()
        .allow_request(|parts| {
            if parts.headers.contains_key("x-deny") {
                Err("denied by test".into())
            } else {
                Ok(())
            }
        })
        .build()
}

#[tokio::test]
async fn allow_request_refuses_handshake() {
    let h = start(deny_marked()).await;
    let res = step(
        "refused handshake",
        h.http
            .get(h.url("EIO=4&transport=polling"))
            .header("x-deny", "1")
            .send(),
    )
    .await
    .unwrap();
    let status = res.status().as_u16();
    assert_error(status, &res.text().await.unwrap(), 403, 4, "denied by test");

    // A direct WebSocket handshake is refused before the 101.
    let mut tcp = raw_connect(&h.server).await;
    raw_write(
        &mut tcp,
        ws_handshake_request(&h.server, "EIO=4&transport=websocket", "x-deny: 1\r\n").as_bytes(),
    )
    .await;
    let res = raw_read(&mut tcp).await;
    assert_upgrade_error(res.status, &res.body, "denied by test");
    assert_eq!(h.engine.session_count(), 0);

    // Without the mark both pass: the hook is what refused.
    h.open_polling().await;
    h.open_ws().await;
}

#[tokio::test]
async fn allow_request_refuses_upgrade() {
    let h = start(deny_marked()).await;
    let (sid, _) = h.open_polling().await;
    let mut tcp = raw_connect(&h.server).await;
    raw_write(
        &mut tcp,
        ws_handshake_request(&h.server, &websocket(&sid), "x-deny: 1\r\n").as_bytes(),
    )
    .await;
    let res = raw_read(&mut tcp).await;
    assert_upgrade_error(res.status, &res.body, "denied by test");
    // The polling session is untouched.
    h.push(&sid, "4still here").await;
    assert_eq!(h.poll(&sid).await, "4still here");
    assert_eq!(h.session(&sid).unwrap().transport(), TransportKind::Polling);
}

// ==========================================================================================
// Polling

#[tokio::test]
async fn polling_text_and_binary_both_directions() {
    let mut h = start(quiet().build()).await;
    let (sid, _) = h.open_polling().await;

    h.push(&sid, "4héllo").await;
    assert_eq!(h.message_of(&sid).await, Message::Text("héllo".into()));
    assert_eq!(h.poll(&sid).await, "4héllo");

    h.push(&sid, "bAQL/").await;
    assert_eq!(
        h.message_of(&sid).await,
        Message::Binary(Bytes::from_static(&[1, 2, 0xff]))
    );
    assert_eq!(h.poll(&sid).await, "bAQL/");

    // Server to client, queued by the application.
    let session = h.session(&sid).unwrap();
    session.send(Frame::binary(vec![0u8, 1, 2, 3])).unwrap();
    assert_eq!(h.poll(&sid).await, "bAAECAw==");
    session.send(Frame::message("")).unwrap();
    assert_eq!(h.poll(&sid).await, "4");
}

#[tokio::test]
async fn polling_payload_joined_by_record_separator() {
    let mut h = start(quiet().build()).await;
    let (sid, _) = h.open_polling().await;
    h.push(&sid, "4a\x1ebAQI=\x1e4\x1e4c").await;
    assert_eq!(h.message_of(&sid).await, Message::Text("a".into()));
    assert_eq!(
        h.message_of(&sid).await,
        Message::Binary(Bytes::from_static(&[1, 2]))
    );
    assert_eq!(h.message_of(&sid).await, Message::Text("".into()));
    assert_eq!(h.message_of(&sid).await, Message::Text("c".into()));
    // The four echoes were queued before this GET, and come back in one payload.
    assert_eq!(h.poll(&sid).await, "4a\x1ebAQI=\x1e4\x1e4c");
}

#[tokio::test]
async fn polling_get_never_exceeds_max_payload() {
    let max = 100;
    let h = start(quiet().max_payload(max).build()).await;
    let (sid, _) = h.open_polling().await;
    let session = h.session(&sid).unwrap();
    let sent: Vec<String> = (0..20)
        .map(|i| format!("message-{i:02}-xxxxxxxxxx"))
        .collect();
    for m in &sent {
        session.send(Frame::message(m)).unwrap();
    }
    let mut received = Vec::new();
    let mut gets = 0;
    while received.len() < sent.len() {
        let body = h.poll(&sid).await;
        gets += 1;
        assert!(
            body.len() <= max,
            "GET #{gets} is {} bytes, over max_payload {max}: {body:?}",
            body.len()
        );
        for p in body.split('\x1e') {
            received.push(p.strip_prefix('4').expect("message packet").to_owned());
        }
    }
    assert_eq!(received, sent);
    // 20 packets of 22 bytes do not fit one response, but several fit each one.
    assert!(
        gets > 1 && gets < sent.len(),
        "{gets} GETs for {} packets",
        sent.len()
    );
}

#[tokio::test]
async fn polling_post_over_max_payload_by_content_length() {
    let h = start(quiet().max_payload(1_000).build()).await;
    let (sid, _) = h.open_polling().await;
    // The head alone, declaring too much: the answer must not wait for a body.
    let mut tcp = raw_connect(&h.server).await;
    let head = format!(
        "POST /engine.io/?{} HTTP/1.1\r\nHost: {}\r\nContent-Type: text/plain;charset=UTF-8\r\n\
         Content-Length: 1001\r\n\r\n",
        polling(&sid),
        h.server.addr
    );
    raw_write(&mut tcp, head.as_bytes()).await;
    let res = raw_read(&mut tcp).await;
    assert_eq!(res.status, 413);

    // Exactly max_payload is fine (on another session, the reference server closes none,
    // this one may).
    let (sid, _) = h.open_polling().await;
    let body = format!("4{}", "x".repeat(999));
    h.push(&sid, body.clone()).await;
    assert_eq!(h.poll(&sid).await, body);
}

#[tokio::test]
async fn polling_post_streamed_over_max_payload() {
    let h = start(quiet().max_payload(1_000).build()).await;
    let (sid, _) = h.open_polling().await;
    let mut tcp = raw_connect(&h.server).await;
    let head = format!(
        "POST /engine.io/?{} HTTP/1.1\r\nHost: {}\r\nContent-Type: text/plain;charset=UTF-8\r\n\
         Transfer-Encoding: chunked\r\n\r\n",
        polling(&sid),
        h.server.addr
    );
    raw_write(&mut tcp, head.as_bytes()).await;
    // 1 200 bytes in three chunks, and the body never ends: a server that buffered the whole
    // body before checking would never answer.
    let chunk = format!("190\r\n4{}\r\n", "y".repeat(399));
    for _ in 0..3 {
        raw_write(&mut tcp, chunk.as_bytes()).await;
    }
    let res = raw_read(&mut tcp).await;
    assert_eq!(res.status, 413);
}

#[tokio::test]
async fn polling_octet_stream_post_closes_session() {
    let mut h = start(quiet().build()).await;
    let (sid, _) = h.open_polling().await;
    let res = step(
        "binary POST",
        h.http
            .post(h.url(&polling(&sid)))
            .header("content-type", "application/octet-stream")
            .body(vec![4u8, 1, 2, 3])
            .send(),
    )
    .await
    .unwrap();
    assert_eq!(res.status().as_u16(), 400);
    assert_eq!(h.close_of(&sid).await, CloseReason::TransportError);
    h.assert_gone(&sid).await;
}

#[tokio::test]
async fn polling_garbage_body_closes_session() {
    let mut h = start(quiet().build()).await;
    let (sid, _) = h.open_polling().await;
    // As the reference (differential case polling_bad_post_closes): the POST is answered,
    // the session closes with a parse error.
    let (status, _) = h.post(&polling(&sid), "abc").await;
    assert_eq!(status, 200);
    assert_eq!(h.close_of(&sid).await, CloseReason::ParseError);
    h.assert_gone(&sid).await;
}

#[tokio::test]
async fn polling_concurrent_gets_close_session() {
    let mut h = start(quiet().build()).await;
    let (sid, _) = h.open_polling().await;
    let first = h.poll_later(&sid);
    h.server
        .parked(1, "the first GET waits in the server")
        .await;
    let (status, _) = h.get(&polling(&sid)).await;
    assert_eq!(status, 400, "an overlapping GET must be refused");
    assert_eq!(h.close_of(&sid).await, CloseReason::TransportError);
    // The first GET is released with the close packet.
    let (status, body) = step("first GET", first).await.unwrap();
    assert_eq!((status, body.as_str()), (200, "1"));
    h.assert_gone(&sid).await;
}

#[tokio::test]
async fn polling_concurrent_posts_close_session() {
    let mut h = start(quiet().build()).await;
    let (sid, _) = h.open_polling().await;
    // The first POST sends half of its chunked body and holds the rest.
    let mut tcp = raw_connect(&h.server).await;
    let head = format!(
        "POST /engine.io/?{} HTTP/1.1\r\nHost: {}\r\nContent-Type: text/plain;charset=UTF-8\r\n\
         Transfer-Encoding: chunked\r\n\r\n3\r\n4ab\r\n",
        polling(&sid),
        h.server.addr
    );
    raw_write(&mut tcp, head.as_bytes()).await;
    h.server
        .parked(1, "the first POST waits for the rest of its body")
        .await;
    let (status, _) = h.post(&polling(&sid), "4second").await;
    assert_eq!(status, 400, "an overlapping POST must be refused");
    assert_eq!(h.close_of(&sid).await, CloseReason::TransportError);
    h.assert_gone(&sid).await;
    // Neither body reached the handler.
    h.assert_no_close();
    while let Ok(ev) = h.events.try_recv() {
        assert!(!matches!(ev, Event::Message(..)), "unexpected {ev:?}");
    }
}

#[tokio::test]
async fn polling_client_vanishing_mid_get_closes_session() {
    let mut h = start(quiet().build()).await;
    let (sid, _) = h.open_polling().await;
    let mut tcp = raw_connect(&h.server).await;
    let req = format!(
        "GET /engine.io/?{} HTTP/1.1\r\nHost: {}\r\n\r\n",
        polling(&sid),
        h.server.addr
    );
    raw_write(&mut tcp, req.as_bytes()).await;
    h.server.parked(1, "the GET waits in the server").await;
    drop(tcp);
    // The reference's word for it (differential case close_polling_get_aborted).
    assert_eq!(h.close_of(&sid).await, CloseReason::TransportError);
    h.assert_gone(&sid).await;
}

// ==========================================================================================
// Upgrade

#[tokio::test]
async fn upgrade_polling_to_websocket() {
    let mut h = start(quiet().build()).await;
    let (sid, open) = h.open_polling().await;
    assert_eq!(open["upgrades"], json!(["websocket"]));
    h.push(&sid, "4before").await;
    assert_eq!(h.poll(&sid).await, "4before");

    // A GET waits while the client probes the WebSocket.
    let get = h.poll_later(&sid);
    let mut ws = h.ws(&websocket(&sid)).await;
    ws_send(&mut ws, "2probe").await;
    assert_eq!(ws_text(&mut ws).await, "3probe");
    // The waiting GET is released with a noop so the client can pause polling.
    assert_eq!(step("GET released", get).await.unwrap(), (200, "6".into()));
    assert_eq!(
        h.session(&sid).unwrap().transport(),
        TransportKind::Polling,
        "the switch happens on `5`, not on the probe"
    );

    // What the application sends between probe and upgrade comes over the WebSocket.
    h.session(&sid)
        .unwrap()
        .send(Frame::message("during"))
        .unwrap();
    ws_send(&mut ws, "5").await;
    assert_eq!(ws_text(&mut ws).await, "4during");
    assert_eq!(
        h.session(&sid).unwrap().transport(),
        TransportKind::WebSocket
    );

    ws_send(&mut ws, "4after").await;
    assert_eq!(ws_text(&mut ws).await, "4after");
    step("send binary", ws.send(Ws::binary(vec![9u8, 8, 7])))
        .await
        .unwrap();
    assert_eq!(ws_next(&mut ws).await, Ws::binary(vec![9u8, 8, 7]));
    h.assert_no_close();
}

#[tokio::test]
async fn get_after_upgrade_is_bad_request() {
    let mut h = start(quiet().build()).await;
    let (mut ws, sid) = h.open_upgraded().await;
    let (status, body) = h.get(&polling(&sid)).await;
    assert_error(status, &body, 400, 3, "Bad request");
    let (status, body) = h.post(&polling(&sid), "4late").await;
    assert_error(status, &body, 400, 3, "Bad request");
    // The session carries on over the WebSocket.
    ws_send(&mut ws, "4ok").await;
    assert_eq!(ws_text(&mut ws).await, "4ok");
    h.assert_no_close();
}

#[tokio::test]
async fn get_waiting_when_the_upgrade_completes_is_refused_at_once() {
    // A client that sends `2probe` and `5` without waiting for `3probe` (the official
    // Socket.IO suite's upgrade test does) while a GET waits. Found by that suite: the probe
    // woke the GET, the switch came before it ran, and the GET then waited on, took the
    // first ping meant for the WebSocket, and the session died of a ping timeout.
    let mut h = start(fast_heartbeat().build()).await;
    let (sid, _) = h.open_polling().await;
    let get = h.poll_later(&sid);
    h.server.parked(1, "the GET waits in the server").await;
    let mut ws = h.ws(&websocket(&sid)).await;
    // In one write, so the server reads both at once (this test's runtime has one thread:
    // the switch then happens before the woken GET runs).
    step("feed 2probe", ws.feed(Ws::text("2probe")))
        .await
        .unwrap();
    step("feed 5", ws.feed(Ws::text("5"))).await.unwrap();
    step("flush", ws.flush()).await.unwrap();
    let (status, body) = step("GET answered", get).await.unwrap();
    assert_error(status, &body, 400, 3, "Bad request");
    assert_eq!(ws_text(&mut ws).await, "3probe");
    assert_eq!(
        ws_text(&mut ws).await,
        "2",
        "the first ping comes over the WebSocket"
    );
    ws_send(&mut ws, "3").await;
    ws_send(&mut ws, "4still").await;
    assert_eq!(ws_text(&mut ws).await, "4still");
    h.assert_no_close();
}

#[tokio::test]
async fn second_websocket_on_upgraded_session_is_refused() {
    let mut h = start(quiet().build()).await;
    let (mut ws, sid) = h.open_upgraded().await;
    let mut second = h.ws(&websocket(&sid)).await;
    // The handshake completed (101, checked by `ws`), then the server closes it.
    ws_send(&mut second, "2probe").await;
    let got = ws_closed(&mut second).await;
    assert!(
        !got.iter().any(|t| t == "3probe"),
        "a second WebSocket must not be probed: {got:?}"
    );
    ws_send(&mut ws, "4first").await;
    assert_eq!(ws_text(&mut ws).await, "4first");
    h.assert_no_close();
}

#[tokio::test]
async fn second_websocket_on_websocket_session_is_refused() {
    let mut h = start(quiet().build()).await;
    let (mut ws, sid, _) = h.open_ws().await;
    let mut second = h.ws(&websocket(&sid)).await;
    ws_send(&mut second, "2probe").await;
    let got = ws_closed(&mut second).await;
    assert!(!got.iter().any(|t| t == "3probe"), "{got:?}");
    ws_send(&mut ws, "4first").await;
    assert_eq!(ws_text(&mut ws).await, "4first");
    h.assert_no_close();
}

#[tokio::test]
async fn upgrade_timeout_cancels_unfinished_probe() {
    let mut h = start(quiet().upgrade_timeout(Duration::from_millis(300)).build()).await;
    let (sid, _) = h.open_polling().await;
    let get = h.poll_later(&sid);
    let mut ws = h.ws(&websocket(&sid)).await;
    ws_send(&mut ws, "2probe").await;
    assert_eq!(ws_text(&mut ws).await, "3probe");
    assert_eq!(step("GET released", get).await.unwrap(), (200, "6".into()));
    // No `5`: the server gives up on the upgrade and closes this WebSocket.
    ws_closed(&mut ws).await;
    assert_eq!(h.session(&sid).unwrap().transport(), TransportKind::Polling);
    // The session works on polling...
    h.push(&sid, "4still polling").await;
    assert_eq!(h.poll(&sid).await, "4still polling");
    h.assert_no_close();
    // ...and may try the upgrade again.
    let get = h.poll_later(&sid);
    let mut ws = h.ws(&websocket(&sid)).await;
    ws_send(&mut ws, "2probe").await;
    assert_eq!(ws_text(&mut ws).await, "3probe");
    assert_eq!(step("GET released", get).await.unwrap(), (200, "6".into()));
    ws_send(&mut ws, "5").await;
    ws_send(&mut ws, "4upgraded").await;
    assert_eq!(ws_text(&mut ws).await, "4upgraded");
}

// ==========================================================================================
// Heartbeat (ping interval 300 ms, ping timeout 200 ms)

#[tokio::test]
async fn heartbeat_first_ping_after_one_interval() {
    let h = start(fast_heartbeat().build()).await;
    let (sid, _) = h.open_polling().await;
    let t = Instant::now();
    assert_eq!(h.poll(&sid).await, "2");
    let waited = t.elapsed();
    // Not at once: the interval runs from the handshake (which happened before `t`).
    assert!(
        waited >= Duration::from_millis(150),
        "first ping came after {waited:?}, expected about 300 ms"
    );

    let (mut ws, _, _) = h.open_ws().await;
    let t = Instant::now();
    assert_eq!(ws_text(&mut ws).await, "2");
    let waited = t.elapsed();
    assert!(
        waited >= Duration::from_millis(150),
        "first ping came after {waited:?}"
    );
}

#[tokio::test]
async fn heartbeat_pongs_keep_polling_session_alive() {
    let mut h = start(fast_heartbeat().build()).await;
    let (sid, _) = h.open_polling().await;
    // Five rounds take well over ping_interval + ping_timeout.
    for _ in 0..5 {
        assert_eq!(h.poll(&sid).await, "2");
        h.push(&sid, "3").await;
    }
    h.assert_no_close();
    h.push(&sid, "4alive").await;
    let mut body = h.poll(&sid).await;
    while body == "2" {
        h.push(&sid, "3").await;
        body = h.poll(&sid).await;
    }
    assert!(
        body.split('\x1e').any(|p| p == "4alive"),
        "echo expected, got {body:?}"
    );
    h.assert_no_close();
}

#[tokio::test]
async fn heartbeat_pongs_keep_websocket_session_alive() {
    let mut h = start(fast_heartbeat().build()).await;
    let (mut ws, _sid, _) = h.open_ws().await;
    for _ in 0..5 {
        assert_eq!(ws_text(&mut ws).await, "2");
        ws_send(&mut ws, "3").await;
    }
    ws_send(&mut ws, "4alive").await;
    loop {
        match ws_text(&mut ws).await.as_str() {
            "2" => ws_send(&mut ws, "3").await,
            "4alive" => break,
            other => panic!("unexpected {other:?}"),
        }
    }
    h.assert_no_close();
}

#[tokio::test]
async fn heartbeat_missing_pong_closes_polling_session() {
    let mut h = start(fast_heartbeat().build()).await;
    let (sid, _) = h.open_polling().await;
    assert_eq!(h.poll(&sid).await, "2");
    // No pong: the next GET is released with a close packet when the timeout fires.
    assert_eq!(h.poll(&sid).await, "1");
    assert_eq!(h.close_of(&sid).await, CloseReason::PingTimeout);
    h.assert_gone(&sid).await;
}

#[tokio::test]
async fn heartbeat_missing_pong_closes_websocket_session() {
    let mut h = start(fast_heartbeat().build()).await;
    let (mut ws, sid, _) = h.open_ws().await;
    assert_eq!(ws_text(&mut ws).await, "2");
    ws_closed(&mut ws).await;
    assert_eq!(h.close_of(&sid).await, CloseReason::PingTimeout);
    h.assert_gone(&sid).await;
}

// ==========================================================================================
// Close reasons, as the handler sees them

#[tokio::test]
async fn close_reason_client_close() {
    let mut h = start(quiet().build()).await;
    let (sid, _) = h.open_polling().await;
    h.push(&sid, "1").await;
    assert_eq!(h.close_of(&sid).await, CloseReason::ClientClose);
    h.assert_gone(&sid).await;

    let (mut ws, sid, _) = h.open_ws().await;
    ws_send(&mut ws, "1").await;
    ws_closed(&mut ws).await;
    assert_eq!(h.close_of(&sid).await, CloseReason::ClientClose);
}

#[tokio::test]
async fn close_reason_transport_close() {
    let mut h = start(quiet().build()).await;
    // WebSocket dropped without a closing handshake.
    let (ws, sid, _) = h.open_ws().await;
    drop(ws);
    assert_eq!(h.close_of(&sid).await, CloseReason::TransportClose);
    // WebSocket closed with a close frame.
    let (mut ws, sid, _) = h.open_ws().await;
    step("close", ws.close(None)).await.unwrap();
    assert_eq!(h.close_of(&sid).await, CloseReason::TransportClose);
    // An upgraded session whose WebSocket goes away.
    let (ws, sid) = h.open_upgraded().await;
    drop(ws);
    assert_eq!(h.close_of(&sid).await, CloseReason::TransportClose);
    // A polling GET abandoned: see polling_client_vanishing_mid_get_closes_session.
}

#[tokio::test]
async fn close_reason_parse_error() {
    let mut h = start(quiet().build()).await;
    // Polling: an unknown packet type (the POST itself is answered, as the reference does).
    let (sid, _) = h.open_polling().await;
    let (status, _) = h.post(&polling(&sid), "9").await;
    assert_eq!(status, 200);
    assert_eq!(h.close_of(&sid).await, CloseReason::ParseError);
    // Polling: bad base64.
    let (sid, _) = h.open_polling().await;
    let (status, _) = h.post(&polling(&sid), "b!!!").await;
    assert_eq!(status, 200);
    assert_eq!(h.close_of(&sid).await, CloseReason::ParseError);
    // WebSocket: see ws_invalid_packet_closes_session.
}

#[tokio::test]
async fn close_reason_transport_error() {
    let mut h = start(quiet().build()).await;
    // A ping from an Engine.IO v4 client: the heartbeat's wrong direction.
    let (sid, _) = h.open_polling().await;
    let (status, _) = h.post(&polling(&sid), "2").await;
    assert_eq!(status, 200);
    assert_eq!(h.close_of(&sid).await, CloseReason::TransportError);
}

#[tokio::test]
async fn close_reason_server_close_polling() {
    let mut h = start(quiet().build()).await;
    let (sid, _) = h.open_polling().await;
    let get = h.poll_later(&sid);
    h.server.parked(1, "the GET waits in the server").await;
    h.session(&sid).unwrap().close(CloseReason::ServerClose);
    assert_eq!(step("GET released", get).await.unwrap(), (200, "1".into()));
    assert_eq!(h.close_of(&sid).await, CloseReason::ServerClose);
    h.assert_gone(&sid).await;
}

#[tokio::test]
async fn close_reason_server_close_websocket() {
    let mut h = start(quiet().build()).await;
    let (mut ws, sid, _) = h.open_ws().await;
    let session = h.session(&sid).unwrap();
    session.send(Frame::message("bye")).unwrap();
    session.close(CloseReason::ServerClose);
    let got = ws_closed(&mut ws).await;
    assert_eq!(got, vec!["4bye".to_owned()], "queued message flushed first");
    assert_eq!(h.close_of(&sid).await, CloseReason::ServerClose);
}

/// The reference server keeps a polling session closed by the server until the client's
/// GETs have received what was queued and then the close packet.
#[tokio::test]
async fn server_close_reaches_polling_client_without_pending_get() {
    let mut h = start(quiet().build()).await;
    let (sid, _) = h.open_polling().await;
    let session = h.session(&sid).unwrap();
    session.send(Frame::message("bye")).unwrap();
    session.close(CloseReason::ServerClose);
    // As the reference server: the queued message first, the close packet in a later
    // response (clients handle a close at once and the packets before it a tick later),
    // behind a noop (differential case close_server_polling_after_message).
    let (status, body) = h.get(&polling(&sid)).await;
    assert_eq!(
        (status, body.as_str()),
        (200, "4bye"),
        "the next GET must carry the queued message"
    );
    let (status, body) = h.get(&polling(&sid)).await;
    assert_eq!(
        (status, body.as_str()),
        (200, "6\u{1e}1"),
        "the GET after it must carry the close packet"
    );
    assert_eq!(h.close_of(&sid).await, CloseReason::ServerClose);
}

// ==========================================================================================
// WebSocket limits

#[tokio::test]
async fn ws_message_over_max_payload_closes_session() {
    let mut h = start(quiet().max_payload(100).build()).await;
    let (mut ws, sid, _) = h.open_ws().await;
    ws_send(&mut ws, &format!("4{}", "x".repeat(99))).await;
    assert_eq!(
        ws_text(&mut ws).await.len(),
        100,
        "max_payload itself is fine"
    );
    ws_send(&mut ws, &format!("4{}", "x".repeat(200))).await;
    ws_closed(&mut ws).await;
    assert_eq!(h.close_of(&sid).await, CloseReason::TransportError);
    h.assert_gone(&sid).await;
}

#[tokio::test]
async fn ws_invalid_packet_closes_session() {
    let mut h = start(quiet().build()).await;
    let (mut ws, sid, _) = h.open_ws().await;
    ws_send(&mut ws, "9").await;
    ws_closed(&mut ws).await;
    assert_eq!(h.close_of(&sid).await, CloseReason::ParseError);
    h.assert_gone(&sid).await;
}
