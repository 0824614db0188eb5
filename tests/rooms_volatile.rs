//! The slow-client policy of broadcasts (see `deliver_local` in `src/ns.rs`): a receiver whose
//! outgoing queue is full is disconnected, unless the broadcast is `volatile()`, where it only
//! misses the packet. Either way the other receivers get every packet.
//!
//! The slow receiver is a raw WebSocket client from Rust with a tiny TCP receive buffer that
//! stops reading once connected; the fast ones are socket.io-client sockets from Node (two
//! polling, two WebSocket) that report each packet back, so the server sends the next one only
//! when they have the previous one and their own queues never fill.

mod common;
mod rooms_support;

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio::net::{TcpSocket, TcpStream};
use tokio::sync::mpsc;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Message;
use tower_socketio::{Data, DisconnectReason, SocketIo, SocketRef};

use common::{TestServer, step, within};
use rooms_support::{Driver, Lifecycle, room_handlers};

const FAST: [(&str, &str); 4] = [
    ("p1", "polling"),
    ("w1", "websocket"),
    ("p2", "polling"),
    ("w2", "websocket"),
];
const PAYLOAD: usize = 64 * 1024;
/// Broadcasts after which the slow client must have fallen behind (about 25 MB in all,
/// far above what the kernel buffers of one loopback connection hold).
const MAX_ROUNDS: u64 = 400;
/// Broadcasts the slow client must miss before the test stops sending.
const MISSES: u64 = 8;

type Ws = WebSocketStream<TcpStream>;

/// A Socket.IO client over a raw WebSocket with a tiny receive buffer; returns it with its
/// socket id once connected to `/`. It reads nothing more until the caller does.
async fn slow_client(server: &TestServer) -> (Ws, String) {
    let sock = TcpSocket::new_v4().expect("socket");
    sock.set_recv_buffer_size(4096).expect("SO_RCVBUF");
    let tcp = step("tcp connect", sock.connect(server.addr))
        .await
        .expect("connect");
    let url = server.ws_url("/socket.io/?EIO=4&transport=websocket");
    let (mut ws, _) = step("ws handshake", tokio_tungstenite::client_async(url, tcp))
        .await
        .expect("ws handshake");
    let open = next_text(&mut ws).await;
    assert!(open.starts_with('0'), "engine open: {open}");
    ws.send(Message::text("40")).await.expect("send CONNECT");
    let connect = next_text(&mut ws).await;
    let body = connect.strip_prefix("40").expect("socket CONNECT reply");
    let v: Value = serde_json::from_str(body).expect("connect json");
    (ws, v["sid"].as_str().expect("sid").to_owned())
}

async fn next_text(ws: &mut Ws) -> String {
    loop {
        match step("websocket message", ws.next()).await {
            Some(Ok(Message::Text(t))) => return t.to_string(),
            Some(Ok(_)) => continue,
            other => panic!("websocket ended: {other:?}"),
        }
    }
}

struct Setup {
    _server: TestServer,
    io: SocketIo,
    driver: Driver,
    life: mpsc::UnboundedReceiver<Lifecycle>,
    got: mpsc::UnboundedReceiver<(String, u64)>,
    slow: Ws,
    slow_sid: String,
}

async fn setup(test: &str) -> Option<Setup> {
    let node = common::node(test, "socket.io-client")?;
    let (layer, io) = SocketIo::builder()
        .max_buffered_packets(4)
        .ping_interval(Duration::from_secs(300))
        .build_layer();
    let (life_tx, life) = mpsc::unbounded_channel();
    let (got_tx, got) = mpsc::unbounded_channel();
    io.ns("/", move |s: SocketRef| {
        room_handlers(&s, Some(life_tx.clone()));
        let got_tx = got_tx.clone();
        s.on("got", move |s: SocketRef, Data(n): Data<u64>| {
            let _ = got_tx.send((s.id().to_string(), n));
        });
    });
    let server = common::serve_layer(layer).await;
    let mut driver = Driver::start(&node, "driver.mjs", &[&server.base_url()]).await;
    for (name, transport) in FAST {
        driver.open_echo(name, transport, "big").await;
    }
    let (slow, slow_sid) = slow_client(&server).await;
    Some(Setup {
        _server: server,
        io,
        driver,
        life,
        got,
        slow,
        slow_sid,
    })
}

/// Broadcasts numbered 64 KiB events to the whole namespace, each once every fast client
/// has reported the previous one, until the slow client has missed [`MISSES`] of them.
/// Returns how many were sent.
async fn flood(s: &mut Setup, volatile: bool) -> u64 {
    let fast: BTreeSet<String> = s.driver.sids.values().cloned().collect();
    let pad = "x".repeat(PAYLOAD);
    let mut missed = 0;
    for n in 1..=MAX_ROUNDS {
        let op = s.io.of("/").expect("/");
        let op = if volatile { op.volatile() } else { op };
        let reached = op
            .emit("big", &json!({ "n": n, "pad": pad }))
            .await
            .expect("broadcast");
        match reached {
            5 => {}
            4 => missed += 1,
            _ => panic!("broadcast {n} reached {reached} sockets, expected 5 or 4"),
        }
        let mut pending = fast.clone();
        while !pending.is_empty() {
            let (sid, got) = within(
                Duration::from_secs(10),
                &format!("fast clients to report broadcast {n} (missing {pending:?})"),
                s.got.recv(),
            )
            .await
            .expect("got channel");
            assert_eq!(got, n, "{sid} reported {got} while {n} was the latest");
            assert!(pending.remove(&sid), "{sid} reported {n} twice");
        }
        if missed >= MISSES {
            return n;
        }
    }
    panic!("the slow client never fell behind in {MAX_ROUNDS} broadcasts of {PAYLOAD} bytes");
}

/// Every fast client got every broadcast, once, in order, and is still connected.
async fn check_fast(d: &mut Driver, sent: u64) {
    let s = d.summary().await;
    for (name, _) in FAST {
        let ns: Vec<u64> = s[name]["events"]
            .as_array()
            .expect("events")
            .iter()
            .filter(|e| e[0] == json!("big"))
            .map(|e| {
                assert_eq!(e[1]["pad"], json!({ "$strlen": PAYLOAD }));
                e[1]["n"].as_u64().expect("n")
            })
            .collect();
        assert_eq!(ns, (1..=sent).collect::<Vec<_>>(), "{name}");
        assert_eq!(s[name]["connected"], json!(true), "{name}");
        assert_eq!(s[name]["disconnects"], json!([]), "{name}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rooms_non_volatile_broadcast_drops_the_slow_client_and_keeps_the_others_whole() {
    let Some(mut s) =
        setup("rooms_non_volatile_broadcast_drops_the_slow_client_and_keeps_the_others_whole")
            .await
    else {
        return;
    };
    // `flood` checks that from some broadcast on the slow socket is no longer reached.
    let sent = flood(&mut s, false).await;
    check_fast(&mut s.driver, sent).await;
    // No fast socket left (the slow one may or may not have yet, see the next test).
    while let Ok((sid, what, reason, _)) = s.life.try_recv() {
        assert_eq!(sid, s.slow_sid, "a fast socket left ({what}, {reason})");
    }
    s.driver.exit().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rooms_non_volatile_broadcast_disconnects_the_slow_client() {
    let Some(mut s) = setup("rooms_non_volatile_broadcast_disconnects_the_slow_client").await
    else {
        return;
    };
    let sent = flood(&mut s, false).await;
    // The slow socket leaves with a transport error (and only it), while its peer is
    // still there, not reading.
    let mut seen = BTreeMap::new();
    for _ in 0..2 {
        let (sid, what, reason, _) = within(
            Duration::from_secs(10),
            "the slow socket's disconnect handlers",
            s.life.recv(),
        )
        .await
        .expect("lifecycle");
        assert_eq!(
            sid, s.slow_sid,
            "only the slow socket leaves ({what}, {reason})"
        );
        assert_eq!(reason, DisconnectReason::TransportError);
        seen.insert(what, reason);
    }
    assert_eq!(seen.len(), 2, "disconnecting and disconnect: {seen:?}");
    assert!(
        s.io.sockets().iter().all(|x| x.id().as_str() != s.slow_sid),
        "the slow socket is gone"
    );
    assert_eq!(s.io.sockets().len(), 4);
    check_fast(&mut s.driver, sent).await;
    assert!(s.life.try_recv().is_err(), "no other socket left");
    drop(s.slow);
    s.driver.exit().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rooms_volatile_broadcast_skips_the_slow_client_without_disconnecting_it() {
    let Some(mut s) =
        setup("rooms_volatile_broadcast_skips_the_slow_client_without_disconnecting_it").await
    else {
        return;
    };
    let sent = flood(&mut s, true).await;
    assert!(s.life.try_recv().is_err(), "nobody left");
    let slow = rooms_support::socket_of(&s.io, "/", &s.slow_sid);
    assert!(slow.connected(), "the slow socket stays connected");
    check_fast(&mut s.driver, sent).await;

    // The slow client catches up: it reads what was queued for it (some broadcasts
    // missing, the rest in order, none twice), then gets a volatile `fence` once its queue
    // has room again.
    let mut ws = s.slow;
    let reader = tokio::spawn(async move {
        let mut ns = Vec::new();
        loop {
            let text = next_text(&mut ws).await;
            let Some(body) = text.strip_prefix("42") else {
                continue;
            };
            let v: Value = serde_json::from_str(body).expect("event json");
            match v[0].as_str() {
                Some("big") => ns.push(v[1]["n"].as_u64().expect("n")),
                Some("fence") => return (ns, ws),
                _ => panic!("unexpected event {text:.80}"),
            }
        }
    });
    let io = s.io.clone();
    let fencer = tokio::spawn(async move {
        loop {
            io.of("/")
                .unwrap()
                .volatile()
                .emit("fence", &0)
                .await
                .unwrap();
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    });
    let (ns, _ws) = within(
        Duration::from_secs(30),
        "the slow client to catch up",
        reader,
    )
    .await
    .expect("reader");
    fencer.abort();
    assert!(!ns.is_empty(), "the slow client got the first broadcasts");
    assert!(
        ns.windows(2).all(|w| w[0] < w[1]),
        "in order, none twice: {ns:?}"
    );
    assert!(
        (ns.len() as u64) <= sent - MISSES,
        "it missed at least {MISSES} of {sent}: got {}",
        ns.len()
    );
    assert!(ns.iter().all(|n| (1..=sent).contains(n)));
    assert!(slow.connected(), "still connected after catching up");
    assert!(s.life.try_recv().is_err(), "nobody left");
    s.driver.exit().await;
}
