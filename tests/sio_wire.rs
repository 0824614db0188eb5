//! Socket.IO on the wire, with a raw WebSocket client (tokio-tungstenite): invalid packets
//! close the offending connection (logged, disconnect reason `parse error`) while other
//! connections keep working; a client that stops answering pings leaves with `ping timeout`;
//! the CONNECT reply precedes what the connect handler emits; events sent right behind the
//! CONNECT wait for the handlers an async connect handler registers late.

mod common;

use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio::net::TcpStream;
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::Message as Ws;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};
use tower_socketio::{AckSender, Data, DisconnectReason, SocketIo, SocketRef};

use common::{STEP, TestServer, step};

type WsStream = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// An Engine.IO v4 WebSocket connection speaking Socket.IO by hand.
struct Raw {
    ws: WsStream,
}

impl Raw {
    /// Opens the connection and reads the Engine.IO OPEN packet.
    async fn open(server: &TestServer) -> Self {
        let url = server.ws_url("/socket.io/?EIO=4&transport=websocket");
        let (ws, _) = step("WebSocket handshake", tokio_tungstenite::connect_async(url))
            .await
            .expect("WebSocket handshake");
        let mut raw = Self { ws };
        let open = raw.next_text().await;
        assert!(open.starts_with("0{"), "Engine.IO OPEN first: {open}");
        raw
    }

    /// Sends one Engine.IO message carrying the Socket.IO packet `packet`.
    async fn send(&mut self, packet: &str) {
        step("send", self.ws.send(Ws::text(format!("4{packet}"))))
            .await
            .expect("send");
    }

    /// The next Engine.IO message (without its `4`), answering pings meanwhile.
    async fn next_text(&mut self) -> String {
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
    async fn join(&mut self) -> String {
        self.send("0").await;
        let reply = self.next_text().await;
        let sid = reply
            .strip_prefix("0")
            .and_then(|j| serde_json::from_str::<Value>(j).ok())
            .and_then(|v| v["sid"].as_str().map(str::to_owned));
        sid.unwrap_or_else(|| panic!("CONNECT reply expected, got {reply}"))
    }

    /// Waits for the server to close the connection; returns the messages received meanwhile.
    async fn closed(&mut self) -> Vec<String> {
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
}

/// A `tracing` writer into a shared buffer, to check what the server logged.
#[derive(Clone, Default)]
struct LogBuf(Arc<Mutex<Vec<u8>>>);

impl Write for LogBuf {
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

type Tx = mpsc::UnboundedSender<Value>;

fn record_disconnect(socket: &SocketRef, tx: &Tx) {
    let tx = tx.clone();
    socket.on_disconnect(move |s: SocketRef, r: DisconnectReason| {
        let _ = tx.send(json!({"sid": s.id().to_string(), "reason": r.as_str()}));
    });
}

/// A server whose `/` records disconnects and answers `echo` acks.
async fn echo_server(
    builder: tower_socketio::SocketIoBuilder,
) -> (TestServer, mpsc::UnboundedReceiver<Value>) {
    let (layer, io) = builder.build_layer();
    let (tx, rx) = mpsc::unbounded_channel();
    io.ns("/", move |socket: SocketRef| {
        record_disconnect(&socket, &tx);
        socket.on("echo", |Data(v): Data<Value>, ack: AckSender| {
            ack.send(&v).ok();
        });
    });
    (common::serve_layer(layer).await, rx)
}

/// `echo` with an ack round trip on a healthy connection.
async fn assert_alive(raw: &mut Raw, n: u32) {
    raw.send(&format!("2{n}[\"echo\",\"still here\"]")).await;
    assert_eq!(
        raw.next_text().await,
        format!("3{n}[\"still here\"]"),
        "the other connection keeps working"
    );
}

/// Each invalid packet closes its connection with `parse error`, is logged, and leaves the
/// other connection alone.
#[tokio::test]
async fn invalid_packets_close_only_their_connection() {
    let logs = LogBuf::default();
    let writer = logs.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_writer(move || writer.clone())
        .with_ansi(false)
        .with_max_level(tracing::Level::WARN)
        .finish();
    // the test runtime is single-threaded: the server's tasks log on this thread
    let _guard = tracing::subscriber::set_default(subscriber);

    let (server, mut disconnects) = echo_server(SocketIo::builder()).await;
    let mut bystander = Raw::open(&server).await;
    bystander.join().await;

    let bad: &[&str] = &[
        "2abc",                                   // EVENT, payload not JSON
        "abc",                                    // unknown packet type
        "4abc",                                   // CONNECT_ERROR is server-only
        "4{\"message\":\"x\"}",                   // likewise, well-formed
        "2[]",                                    // EVENT without a name
        "2[true,\"x\"]",                          // EVENT name not a string
        "2[\"disconnect\"]",                      // reserved event name
        "2[\"connect\",1]",                       // reserved event name
        "2123456789012345678901234567890[\"x\"]", // ack id of 30 digits
        "2{\"not\":\"an array\"}",                // EVENT payload not an array
        "3[1]x",                                  // trailing garbage
    ];
    for (i, packet) in bad.iter().enumerate() {
        let mut victim = Raw::open(&server).await;
        let sid = victim.join().await;
        victim.send(packet).await;
        let got = victim.closed().await;
        assert!(
            got.iter()
                .all(|m| !m.starts_with("42") && !m.starts_with("43")),
            "{packet}: nothing answered before the close: {got:?}"
        );
        let d = step("the victim's disconnect", disconnects.recv())
            .await
            .expect("disconnect record");
        assert_eq!(
            d,
            json!({"sid": sid, "reason": "forced close"}),
            "{packet}: its socket leaves with `parse error`"
        );
        assert_alive(&mut bystander, i as u32).await;
    }
    let logged = logs.text().matches("invalid packet").count();
    assert_eq!(
        logged,
        bad.len(),
        "one warning per invalid packet:\n{}",
        logs.text()
    );
}

/// A binary event whose attachment is replaced by a text packet, and a binary frame nobody
/// announced, also close the connection.
#[tokio::test]
async fn broken_binary_sequences_close_the_connection() {
    let (server, mut disconnects) = echo_server(SocketIo::builder()).await;
    let mut bystander = Raw::open(&server).await;
    bystander.join().await;

    // text while an attachment is expected
    let mut victim = Raw::open(&server).await;
    let sid = victim.join().await;
    victim
        .send("51-[\"echo\",{\"_placeholder\":true,\"num\":0}]")
        .await;
    victim.send("2[\"echo\",1]").await;
    victim.closed().await;
    let d = step("disconnect", disconnects.recv()).await.unwrap();
    assert_eq!(d, json!({"sid": sid, "reason": "forced close"}));
    assert_alive(&mut bystander, 1).await;

    // a binary frame with no binary packet pending
    let mut victim = Raw::open(&server).await;
    let sid = victim.join().await;
    step("send", victim.ws.send(Ws::binary(vec![1u8, 2, 3])))
        .await
        .unwrap();
    victim.closed().await;
    let d = step("disconnect", disconnects.recv()).await.unwrap();
    assert_eq!(d, json!({"sid": sid, "reason": "forced close"}));
    assert_alive(&mut bystander, 2).await;

    // a placeholder naming an attachment that does not exist
    let mut victim = Raw::open(&server).await;
    let sid = victim.join().await;
    victim
        .send("51-[\"echo\",{\"_placeholder\":true,\"num\":5}]")
        .await;
    victim.closed().await;
    let d = step("disconnect", disconnects.recv()).await.unwrap();
    assert_eq!(d, json!({"sid": sid, "reason": "forced close"}));
    assert_alive(&mut bystander, 3).await;
}

/// A client that stops answering pings leaves with `ping timeout`; one that answers stays.
#[tokio::test]
async fn silent_client_times_out() {
    let (server, mut disconnects) = echo_server(
        SocketIo::builder()
            .ping_interval(Duration::from_millis(100))
            .ping_timeout(Duration::from_millis(150)),
    )
    .await;
    let mut alive = Raw::open(&server).await;
    let alive_sid = alive.join().await;
    let mut silent = Raw::open(&server).await;
    let silent_sid = silent.join().await;
    // `silent` is never read again, so it never answers a ping; `alive` keeps answering.
    let d = tokio::select! {
        d = disconnects.recv() => d.expect("disconnect record"),
        // answers pings until the select ends (no request in flight when cancelled)
        _ = async {
            let m = alive.next_text().await;
            panic!("unexpected message {m}");
        } => unreachable!(),
        _ = tokio::time::sleep(STEP) => panic!("no ping timeout"),
    };
    assert_eq!(d, json!({"sid": silent_sid, "reason": "ping timeout"}));
    // the answering client lived through several ping rounds and is still there
    let until = tokio::time::Instant::now() + Duration::from_millis(400);
    let mut i = 1000;
    while tokio::time::Instant::now() < until {
        assert_alive(&mut alive, i).await;
        tokio::time::sleep(Duration::from_millis(50)).await;
        i += 1;
    }
    assert!(disconnects.try_recv().is_err(), "{alive_sid} must stay");
    drop(silent);
}

/// On the wire: the CONNECT reply comes before what the connect handler emits, and events
/// sent right behind the CONNECT (before its reply) reach handlers that the async connect
/// handler registers only after a sleep, in order.
#[tokio::test]
async fn connect_reply_first_and_early_events_wait() {
    let (layer, io) = SocketIo::builder().build_layer();
    let seen = Arc::new(Mutex::new(Vec::<u32>::new()));
    let seen2 = seen.clone();
    io.ns("/", move |socket: SocketRef| {
        let seen = seen2.clone();
        async move {
            socket.emit("welcome", &"hi").ok();
            tokio::time::sleep(Duration::from_millis(100)).await;
            socket.on("seq", move |Data(n): Data<u32>| {
                seen.lock().unwrap().push(n);
            });
            socket.on("count", |ack: AckSender| {
                ack.send(&"counted").ok();
            });
        }
    });
    let server = common::serve_layer(layer).await;
    let mut raw = Raw::open(&server).await;
    raw.send("0").await;
    for i in 0..20 {
        raw.send(&format!("2[\"seq\",{i}]")).await;
    }
    raw.send("27[\"count\"]").await;
    let first = raw.next_text().await;
    assert!(
        first.starts_with("0{\"sid\":"),
        "CONNECT reply first: {first}"
    );
    assert_eq!(raw.next_text().await, "2[\"welcome\",\"hi\"]");
    assert_eq!(raw.next_text().await, "37[\"counted\"]");
    assert_eq!(*seen.lock().unwrap(), (0..20).collect::<Vec<u32>>());
}
