//! Hardening, connection churn (issue #6): thousands of clients connect, join rooms, send an
//! acked event and leave (by DISCONNECT, by engine close, by dropping the TCP connection,
//! over WebSocket and polling). Afterwards every internal map is back to zero (sessions,
//! namespace sockets, rooms) and the process RSS has not grown past a generous bound.
//! Alone in its test binary so that no other test moves the RSS reading.

mod common;
mod hardening_util;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use futures_util::SinkExt;
use tokio_tungstenite::tungstenite::Message as Ws;
use tower_socketio::{AckSender, Data, SocketIo, SocketRef};

use common::{TestServer, within};
use hardening_util::{Polling, Raw, eventually_or, rss_kib};

/// Clients at once.
const CONCURRENCY: usize = 32;
/// Cycles before the first RSS reading (allocator arenas, buffers and caches warm up).
const WARM_UP: usize = 600;
/// Cycles measured.
const CYCLES: usize = 3_000;
/// Allowed RSS growth over the measured cycles.
const MAX_GROWTH_KIB: u64 = 30 * 1024;

#[derive(Default)]
struct Counts {
    connects: AtomicUsize,
    disconnects: AtomicUsize,
}

async fn server() -> (TestServer, SocketIo, Arc<Counts>) {
    let (layer, io) = SocketIo::builder()
        .ping_interval(Duration::from_secs(30))
        .ping_timeout(Duration::from_secs(30))
        .build_layer();
    let counts = Arc::new(Counts::default());
    let c = counts.clone();
    io.ns("/", move |socket: SocketRef| {
        c.connects.fetch_add(1, Ordering::Relaxed);
        let c2 = c.clone();
        socket.on_disconnect(move || {
            c2.disconnects.fetch_add(1, Ordering::Relaxed);
        });
        socket.join(["churn".to_owned(), format!("room-{}", socket.id())]);
        socket.on(
            "echo",
            |Data(v): Data<serde_json::Value>, ack: AckSender| {
                ack.send(&v).ok();
            },
        );
    });
    (common::serve_layer(layer).await, io, counts)
}

/// One client's life, in one of five ways.
async fn cycle(server: &TestServer, n: usize) {
    match n % 5 {
        // WebSocket, leaves with a DISCONNECT and a close frame.
        0 => {
            let (mut raw, _) = Raw::joined(server).await;
            raw.assert_alive(1).await;
            raw.send("1").await;
            let _ = raw.ws.close(None).await;
            raw.closed().await;
        }
        // WebSocket, leaves with an Engine.IO close packet.
        1 => {
            let (mut raw, _) = Raw::joined(server).await;
            raw.assert_alive(1).await;
            raw.ws.send(Ws::text("1")).await.expect("close packet");
            raw.closed().await;
        }
        // WebSocket, the TCP connection just dropped.
        2 => {
            let (mut raw, _) = Raw::joined(server).await;
            raw.assert_alive(1).await;
            drop(raw);
        }
        // WebSocket, dropped in the middle of a binary packet.
        3 => {
            let (mut raw, _) = Raw::joined(server).await;
            raw.send(r#"51-["echo",{"_placeholder":true,"num":0}]"#)
                .await;
            drop(raw);
        }
        // Polling, leaves with a close packet.
        _ => {
            let polling = Polling::open(server).await;
            polling.join().await;
            polling.assert_alive(1).await;
            polling.push("1").await;
        }
    }
}

/// Runs `count` cycles, `CONCURRENCY` at a time.
async fn churn(server: &Arc<TestServer>, count: usize) {
    let next = Arc::new(AtomicUsize::new(0));
    let mut workers = Vec::new();
    for _ in 0..CONCURRENCY {
        let (server, next) = (server.clone(), next.clone());
        workers.push(tokio::spawn(async move {
            loop {
                let n = next.fetch_add(1, Ordering::Relaxed);
                if n >= count {
                    break;
                }
                cycle(&server, n).await;
            }
        }));
    }
    for w in workers {
        w.await.expect("churn worker");
    }
}

/// Waits until the server holds nothing for any client.
async fn settled(io: &SocketIo, counts: &Counts, total: usize) {
    let gone = || {
        io.connection_count() == 0
            && counts.disconnects.load(Ordering::Relaxed) == total
            && io.of("/").is_some_and(|ns| ns.sockets().is_empty())
    };
    eventually_or(Duration::from_secs(20), gone, || {
        format!(
            "{} engine sessions, {} of {total} disconnects, {} sockets in /",
            io.connection_count(),
            counts.disconnects.load(Ordering::Relaxed),
            io.of("/").map_or(0, |ns| ns.sockets().len())
        )
    })
    .await;
    let rooms = io
        .of("/")
        .expect("namespace /")
        .rooms()
        .await
        .expect("rooms");
    assert!(rooms.is_empty(), "rooms left behind: {}", rooms.len());
    assert_eq!(counts.connects.load(Ordering::Relaxed), total);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn churn_leaves_nothing_behind() {
    let (server, io, counts) = server().await;
    let server = Arc::new(server);
    within(
        Duration::from_secs(120),
        "warm-up churn",
        churn(&server, WARM_UP),
    )
    .await;
    settled(&io, &counts, WARM_UP).await;
    let before = rss_kib();

    within(Duration::from_secs(240), "churn", churn(&server, CYCLES)).await;
    settled(&io, &counts, WARM_UP + CYCLES).await;
    let after = rss_kib();

    if let (Some(before), Some(after)) = (before, after) {
        eprintln!("RSS {before} KiB -> {after} KiB over {CYCLES} connections");
        assert!(
            after <= before + MAX_GROWTH_KIB,
            "RSS grew by {} KiB over {CYCLES} connections (bound {MAX_GROWTH_KIB} KiB)",
            after - before
        );
    }
    // The server still serves.
    let (mut raw, _) = Raw::joined(&server).await;
    raw.assert_alive(7).await;
}
