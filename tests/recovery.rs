//! Connection state recovery with the official `socket.io-client`: a client that loses its
//! connection and comes back within the window gets its id, rooms and data back and every
//! broadcast it missed, in order, once; one that comes back too late starts afresh.

mod common;

use std::process::Stdio;
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::sync::mpsc;
use tower_socketio::adapter::RecoveryConfig;
use tower_socketio::{AckSender, Data, DisconnectReason, SocketIo, SocketRef};

#[derive(Clone)]
struct Tx(mpsc::UnboundedSender<DisconnectReason>);

/// A server with recovery on: `join`, `set`/`get` per-socket data, `rooms`, `warmup`
/// (a broadcast to everyone), and a disconnect reason channel.
fn server(
    window: Duration,
) -> (
    tower_socketio::SocketIoLayer,
    SocketIo,
    mpsc::UnboundedReceiver<DisconnectReason>,
) {
    let (tx, rx) = mpsc::unbounded_channel();
    let (layer, io) = SocketIo::builder()
        .ping_interval(Duration::from_millis(300))
        .ping_timeout(Duration::from_millis(300))
        .connection_state_recovery(RecoveryConfig {
            max_disconnection_duration: window,
            ..RecoveryConfig::default()
        })
        .with_state(Tx(tx))
        .build_layer();
    io.ns("/", |socket: SocketRef| {
        socket.on(
            "join",
            |s: SocketRef, Data(room): Data<String>, ack: AckSender| {
                s.join(room);
                ack.send(&true).ok();
            },
        );
        socket.on("set", |s: SocketRef, Data(v): Data<String>| {
            s.extensions().insert(v);
        });
        socket.on("get", |s: SocketRef, ack: AckSender| {
            ack.send(&s.extensions().get::<String>()).ok();
        });
        socket.on("rooms", |s: SocketRef, ack: AckSender| {
            let mut rooms: Vec<String> = s
                .rooms()
                .into_iter()
                .skip(1)
                .map(|r| r.into_owned())
                .collect();
            rooms.sort();
            ack.send(&rooms).ok();
        });
        socket.on("ping-me", |ack: AckSender| {
            ack.send(&"pong").ok();
        });
        socket.on("warmup", |s: SocketRef, ack: AckSender| async move {
            s.nsp().emit("warm", &0).await.ok();
            ack.send(&true).ok();
        });
        socket.on_disconnect(
            |reason: DisconnectReason, tower_socketio::State(tx): tower_socketio::State<Tx>| {
                let _ = tx.0.send(reason);
            },
        );
    });
    (layer, io, rx)
}

struct Outcome {
    recovered: bool,
    same_id: bool,
    data: serde_json::Value,
    rooms: serde_json::Value,
    /// (event, first argument) of every event after the warm-up.
    events: Vec<(String, serde_json::Value)>,
}

/// Runs the client, cuts its connection the given way, broadcasts while it is away (after
/// `away` more), and returns what it saw on coming back.
async fn scenario(
    transport: &str,
    cut: &str,
    window: Duration,
    away: Duration,
) -> Option<(Outcome, DisconnectReason)> {
    let test = format!("recovery_{transport}_{cut}");
    let node = common::node(&test, "socket.io-client")?;
    let (layer, io, mut reasons) = server(window);
    let srv = common::serve_layer(layer).await;
    let delay = (away.as_millis() + 300).to_string();
    let mut child = tokio::process::Command::new(&node.bin)
        .arg(common::clients_dir().join("recovery/client.mjs"))
        .args([&srv.base_url(), transport, cut, "x"])
        .current_dir(common::clients_dir())
        .env("NODE_PATH", &node.modules)
        .env("RECONNECT_DELAY", &delay)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .kill_on_drop(true)
        .spawn()
        .expect("start node");
    let mut lines = BufReader::new(child.stdout.take().expect("stdout")).lines();
    let ready = common::within(Duration::from_secs(10), "client READY", lines.next_line())
        .await
        .expect("read stdout")
        .expect("client output");
    assert!(ready.starts_with("READY "), "unexpected: {ready}");
    // The server notices the loss (for `mute`, after a missed pong).
    let reason = common::within(
        Duration::from_secs(5),
        "server-side disconnect",
        reasons.recv(),
    )
    .await
    .expect("disconnect reason");
    tokio::time::sleep(away).await;
    let main = io.of("/").expect("main namespace");
    for i in 0..5 {
        main.clone()
            .to("r1")
            .emit("room", &i)
            .await
            .expect("emit to room");
        main.clone().emit("all", &i).await.expect("emit to all");
        main.clone()
            .to("r2")
            .emit("other", &i)
            .await
            .expect("emit to another room");
    }
    let result = common::within(Duration::from_secs(15), "client RESULT", lines.next_line())
        .await
        .expect("read stdout")
        .expect("client output");
    let json: serde_json::Value = serde_json::from_str(
        result
            .strip_prefix("RESULT ")
            .unwrap_or_else(|| panic!("unexpected: {result}")),
    )
    .expect("json");
    let events = json["events"]
        .as_array()
        .expect("events")
        .iter()
        .map(|e| {
            (
                e["event"].as_str().unwrap_or("").to_owned(),
                e["args"][0].clone(),
            )
        })
        .filter(|(e, _)| e != "warm")
        .collect();
    drop(io);
    Some((
        Outcome {
            recovered: json["recovered"].as_bool().unwrap_or(false),
            same_id: json["sameId"].as_bool().unwrap_or(false),
            data: json["data"].clone(),
            rooms: json["rooms"].clone(),
            events,
        },
        reason,
    ))
}

fn expected_events() -> Vec<(String, serde_json::Value)> {
    (0..5)
        .flat_map(|i| {
            [
                ("room".to_owned(), serde_json::json!(i)),
                ("all".to_owned(), serde_json::json!(i)),
            ]
        })
        .collect()
}

async fn recovers(transport: &str, cut: &str, reason: DisconnectReason) {
    let Some((out, got_reason)) = scenario(
        transport,
        cut,
        Duration::from_secs(10),
        Duration::from_millis(200),
    )
    .await
    else {
        return;
    };
    assert_eq!(got_reason, reason);
    assert!(out.recovered, "not recovered");
    assert!(out.same_id, "socket id changed");
    assert_eq!(out.data, serde_json::json!("kept-data"));
    assert_eq!(out.rooms, serde_json::json!(["r1"]));
    assert_eq!(
        out.events,
        expected_events(),
        "missed events, in order, exactly once"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn recovers_after_transport_close_websocket() {
    recovers("websocket", "close", DisconnectReason::TransportClose).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn recovers_after_transport_close_polling() {
    recovers("polling", "close", DisconnectReason::TransportClose).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn recovers_after_network_cut_websocket() {
    recovers("websocket", "destroy", DisconnectReason::TransportClose).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn recovers_after_ping_timeout() {
    recovers("websocket", "mute", DisconnectReason::PingTimeout).await;
}

/// The client's offset is its last packet, which may be far older than the moment the
/// connection died: it must still be kept for the whole window.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn recovers_when_the_last_packet_is_older_than_a_heartbeat() {
    recovers("websocket", "quiet-close", DisconnectReason::TransportClose).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn expired_session_connects_afresh() {
    let Some((out, _)) = scenario(
        "websocket",
        "close",
        Duration::from_millis(300),
        Duration::from_millis(700),
    )
    .await
    else {
        return;
    };
    assert!(!out.recovered, "recovered after the window");
    assert!(!out.same_id, "kept the id after the window");
    assert_eq!(out.data, serde_json::Value::Null);
    assert_eq!(out.rooms, serde_json::json!([]));
    assert!(
        out.events.iter().all(|(e, _)| e != "room"),
        "replayed packets into a fresh socket: {:?}",
        out.events
    );
}

#[test]
fn recovery_config_defaults() {
    let c = RecoveryConfig::default();
    assert_eq!(c.max_disconnection_duration, Duration::from_secs(120));
    assert!(c.skip_middlewares);
    let _ = Arc::new(c);
}
