//! Connection state recovery, ours against the reference: the same official client script
//! (`socket.io-client`, over WebSocket and long-polling, JSON and msgpack parsers) runs against the Node reference
//! server (socket.io 4.8 with `connectionStateRecovery`, `tests/clients/recovery/ref_server.mjs`)
//! and against ours with the same handlers, in the same test; the two transcripts must match.
//!
//! Each run: connect (the connect handler emits to the socket), join `r1`, set data, a
//! `socket.emit` of one string, a broadcast; then the connection is cut one way; while the
//! client is away the server emits to its room, to everyone, to another room, to the
//! socket's id and binary to its room; then the client connects again. Compared: the
//! disconnect reason on both sides, whether the client was recovered with the same id,
//! rooms and data, and every event it received (each must end with an offset).
#![cfg(feature = "msgpack")] // its cases run with both parsers

mod common;

use std::process::Stdio;
use std::time::Duration;

use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader, Lines};
use tokio::process::{Child, ChildStdin, ChildStdout};
use tokio::sync::mpsc;
use tower_socketio::adapter::RecoveryConfig;
use tower_socketio::parser::Parser;
use tower_socketio::{AckSender, Binary, Data, DisconnectReason, SocketIo, SocketRef, State};

// Long enough that a loaded machine does not time a live client out by accident.
const PING_INTERVAL: Duration = Duration::from_millis(1000);
const PING_TIMEOUT: Duration = Duration::from_millis(1500);
const WINDOW: Duration = Duration::from_secs(20);
/// Payload strings of the script; any other string ending an event is an offset.
const PAYLOADS: &[&str] = &["welcome", "hello-echo"];

#[derive(Clone)]
struct Reasons(mpsc::UnboundedSender<String>);

/// Our server with the handlers of `ref_server.mjs`.
fn rust_server(
    parser: Parser,
) -> (
    tower_socketio::SocketIoLayer,
    SocketIo,
    mpsc::UnboundedReceiver<String>,
) {
    let (tx, rx) = mpsc::unbounded_channel();
    let (layer, io) = SocketIo::builder()
        .ping_interval(PING_INTERVAL)
        .ping_timeout(PING_TIMEOUT)
        .connection_state_recovery(RecoveryConfig {
            max_disconnection_duration: WINDOW,
            ..RecoveryConfig::default()
        })
        .with_state(Reasons(tx))
        .parser(parser)
        .build_layer();
    io.ns("/", |socket: SocketRef| {
        socket.emit("hello", "welcome").ok();
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
        socket.on(
            "echo",
            |s: SocketRef, Data(v): Data<String>, ack: AckSender| {
                s.emit("echo", &v).ok();
                ack.send(&true).ok();
            },
        );
        socket.on("warmup", |s: SocketRef, ack: AckSender| async move {
            s.nsp().emit("warm", &0).await.ok();
            ack.send(&true).ok();
        });
        socket.on("cut", |s: SocketRef, Data(how): Data<String>| {
            match how.as_str() {
                "conn-close" => s.close_connection(),
                "server-disconnect" => s.disconnect(),
                _ => {}
            }
        });
        socket.on_disconnect(|reason: DisconnectReason, State(r): State<Reasons>| {
            let _ = r.0.send(reason.as_str().to_owned());
        });
    });
    (layer, io, rx)
}

/// What ours emits while the client is away: the same as `ref_server.mjs`'s burst.
async fn rust_burst(io: &SocketIo, sid: &str) {
    let ns = io.of("/").expect("main namespace");
    for i in 0..3 {
        ns.clone().to("r1").emit("room", &i).await.expect("room");
        ns.clone().emit("all", &i).await.expect("all");
        ns.clone().to("r2").emit("other", &i).await.expect("other");
        ns.clone()
            .to(sid.to_owned())
            .emit("direct", &i)
            .await
            .expect("direct");
        ns.clone()
            .to("r1")
            .emit_args("bin", &(Binary(vec![1u8, 2, 3].into()), i))
            .await
            .expect("bin");
    }
}

/// The events a recovered client must get after coming back, in order: what it missed,
/// then the connect handler's emit.
fn expected_second_phase() -> Vec<Value> {
    let mut v = Vec::new();
    for i in 0..3 {
        v.push(json!(["room", i, "<offset>"]));
        v.push(json!(["all", i, "<offset>"]));
        v.push(json!(["direct", i, "<offset>"]));
        v.push(json!(["bin", {"bin": [1, 2, 3]}, i, "<offset>"]));
    }
    v.push(json!(["hello", "welcome", "<offset>"]));
    v
}

/// What one run saw.
#[derive(Debug, PartialEq)]
struct Transcript {
    server_reason: String,
    client_reason: Value,
    client_active: Value,
    recovered: Value,
    same_id: Value,
    data: Value,
    rooms: Value,
    first: Vec<Value>,
    second: Vec<Value>,
}

struct Client {
    _child: Child,
    stdin: ChildStdin,
    lines: Lines<BufReader<ChildStdout>>,
}

impl Client {
    fn start(node: &common::Node, url: &str, run: Run<'_>) -> Self {
        let mut child = tokio::process::Command::new(&node.bin)
            .arg(common::clients_dir().join("recovery/compare_client.mjs"))
            .args([url, run.transport, run.cut, run.parser])
            .current_dir(common::clients_dir())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true)
            .spawn()
            .expect("start the client");
        let stdin = child.stdin.take().expect("stdin");
        let lines = BufReader::new(child.stdout.take().expect("stdout")).lines();
        Self {
            _child: child,
            stdin,
            lines,
        }
    }

    /// The next line, which must start with `prefix`; its JSON after the prefix.
    async fn expect(&mut self, prefix: &str) -> Value {
        let line = common::within(Duration::from_secs(20), prefix, self.lines.next_line())
            .await
            .expect("client stdout")
            .unwrap_or_else(|| panic!("client ended before {prefix}"));
        let rest = line
            .strip_prefix(prefix)
            .unwrap_or_else(|| panic!("expected {prefix}, got {line}"));
        serde_json::from_str(rest.trim()).expect("client json")
    }

    async fn go(&mut self) {
        self.stdin.write_all(b"GO\n").await.expect("GO");
        self.stdin.flush().await.expect("flush");
    }
}

/// Replaces each event's trailing offset by `"<offset>"` and checks that every event has
/// one and that no offset repeats.
fn normalize(events: &[Value], phase: &str, seen: &mut Vec<String>) -> Vec<Value> {
    events
        .iter()
        .filter(|e| e["phase"] == phase)
        .map(|e| {
            let mut args = e["args"].as_array().cloned().unwrap_or_default();
            match args.last().and_then(Value::as_str) {
                Some(s) if !PAYLOADS.contains(&s) => {
                    assert!(!seen.contains(&s.to_owned()), "offset {s} given twice");
                    seen.push(s.to_owned());
                    args.pop();
                    args.push(json!("<offset>"));
                }
                _ => {}
            }
            let mut out = vec![e["event"].clone()];
            out.extend(args);
            Value::Array(out)
        })
        .collect()
}

/// Runs the client against a server; `away` is called once the server saw the disconnect,
/// with the socket id, and must emit the burst.
async fn run_client<F, Fut>(
    node: &common::Node,
    url: &str,
    run: Run<'_>,
    reasons: &mut mpsc::UnboundedReceiver<String>,
    away: F,
) -> Transcript
where
    F: FnOnce(String) -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    let mut client = Client::start(node, url, run);
    let ready = client.expect("READY ").await;
    let sid = ready["id"].as_str().expect("id").to_owned();
    let gone = client.expect("AWAY ").await;
    let server_reason = common::within(
        Duration::from_secs(10),
        "the server-side disconnect",
        reasons.recv(),
    )
    .await
    .expect("reason");
    away(sid).await;
    client.go().await;
    let res = client.expect("RESULT ").await;
    let events = res["events"].as_array().cloned().unwrap_or_default();
    let mut seen = Vec::new();
    Transcript {
        server_reason,
        client_reason: gone["reason"].clone(),
        client_active: gone["active"].clone(),
        recovered: res["recovered"].clone(),
        same_id: res["sameId"].clone(),
        data: res["data"].clone(),
        rooms: res["rooms"].clone(),
        first: normalize(&events, "first", &mut seen),
        second: normalize(&events, "second", &mut seen),
    }
}

async fn against_rust(node: &common::Node, run: Run<'_>) -> Transcript {
    let parser = match run.parser {
        "msgpack" => Parser::MsgPack,
        _ => Parser::Json,
    };
    let (layer, io, mut reasons) = rust_server(parser);
    let srv = common::serve_layer(layer).await;
    let io2 = io.clone();
    run_client(node, &srv.base_url(), run, &mut reasons, |sid| async move {
        rust_burst(&io2, &sid).await
    })
    .await
}

async fn against_node(node: &common::Node, run: Run<'_>) -> Transcript {
    let mut server = tokio::process::Command::new(&node.bin)
        .arg(common::clients_dir().join("recovery/ref_server.mjs"))
        .args([
            WINDOW.as_millis().to_string(),
            PING_INTERVAL.as_millis().to_string(),
            PING_TIMEOUT.as_millis().to_string(),
            run.parser.to_owned(),
        ])
        .current_dir(common::clients_dir())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .kill_on_drop(true)
        .spawn()
        .expect("start the reference server");
    let mut stdin = server.stdin.take().expect("stdin");
    let mut lines = BufReader::new(server.stdout.take().expect("stdout")).lines();
    let first: Value = serde_json::from_str(
        &common::within(Duration::from_secs(10), "reference port", lines.next_line())
            .await
            .expect("stdout")
            .expect("a line"),
    )
    .expect("json");
    let url = format!("http://127.0.0.1:{}", first["port"]);
    // The server's lines: disconnect reasons to `reasons`, burst acknowledgements to `bursts`.
    let (tx, mut reasons) = mpsc::unbounded_channel();
    let (btx, mut bursts) = mpsc::unbounded_channel::<()>();
    tokio::spawn(async move {
        while let Ok(Some(line)) = lines.next_line().await {
            let v: Value = serde_json::from_str(&line).unwrap_or(Value::Null);
            if let Some(r) = v["disconnect"].as_str() {
                let _ = tx.send(r.to_owned());
            } else if v["burst"] == true {
                let _ = btx.send(());
            }
        }
    });
    let t = run_client(node, &url, run, &mut reasons, |sid| async move {
        let cmd = format!("{}\n", json!({"cmd": "burst", "sid": sid}));
        stdin.write_all(cmd.as_bytes()).await.expect("burst");
        stdin.flush().await.expect("flush");
        common::within(Duration::from_secs(10), "the burst", bursts.recv())
            .await
            .expect("burst done");
    })
    .await;
    drop(server);
    t
}

/// One way to run the scenario.
#[derive(Debug, Clone, Copy)]
struct Run<'a> {
    parser: &'a str,
    transport: &'a str,
    cut: &'a str,
}

/// Runs both servers with the same cut; asserts they agree, and returns our transcript.
async fn compare(run: Run<'_>) -> Option<Transcript> {
    let Run {
        parser,
        transport,
        cut,
    } = run;
    let node = common::node(
        &format!("recovery_vs_node_{parser}_{transport}_{cut}"),
        "socket.io-msgpack-parser",
    )?;
    let (mut reference, mut ours) =
        tokio::join!(against_node(&node, run), against_rust(&node, run));
    if cut == "bad-ping" && transport == "polling" {
        // The client learns of the close from its pending GET ("transport close") or from
        // the refused POST ("transport error"), whichever comes first: a race with either
        // server. The server-side reason, which decides recovery, is still compared.
        for t in [&mut reference, &mut ours] {
            assert!(
                t.client_reason == "transport close" || t.client_reason == "transport error",
                "{t:?}"
            );
            t.client_reason = Value::Null;
        }
    }
    assert_eq!(
        ours, reference,
        "{run:?}: ours (left) differs from the reference server (right)"
    );
    // Every event before the cut carries an offset too: the connect handler's emit and the
    // single-string socket.emit included.
    assert_eq!(
        ours.first,
        vec![
            json!(["hello", "welcome", "<offset>"]),
            json!(["echo", "hello-echo", "<offset>"]),
            json!(["warm", 0, "<offset>"]),
        ],
        "{transport}/{cut}: first phase"
    );
    Some(ours)
}

async fn recovers(run: Run<'_>, reason: &str) {
    let Run { transport, cut, .. } = run;
    let Some(t) = compare(run).await else {
        return;
    };
    assert_eq!(t.server_reason, reason);
    assert_eq!(t.recovered, json!(true), "{transport}/{cut}: not recovered");
    assert_eq!(t.same_id, json!(true));
    assert_eq!(t.data, json!("kept-data"));
    assert_eq!(t.rooms, json!(["r1"]));
    assert_eq!(t.second, expected_second_phase(), "missed packets");
}

async fn refused(run: Run<'_>, reason: &str) {
    let Run { transport, cut, .. } = run;
    let Some(t) = compare(run).await else {
        return;
    };
    assert_eq!(t.server_reason, reason);
    assert_eq!(t.recovered, json!(false), "{transport}/{cut}: recovered");
    assert_eq!(t.same_id, json!(false));
    assert_eq!(t.data, Value::Null);
    assert_eq!(t.rooms, json!([]));
    assert_eq!(t.second, vec![json!(["hello", "welcome", "<offset>"])]);
}

macro_rules! case {
    ($name:ident, $check:ident, $transport:literal, $cut:literal, $reason:literal) => {
        case!($name, $check, "json", $transport, $cut, $reason);
    };
    ($name:ident, $check:ident, $parser:literal, $transport:literal, $cut:literal, $reason:literal) => {
        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn $name() {
            let run = Run {
                parser: $parser,
                transport: $transport,
                cut: $cut,
            };
            $check(run, $reason).await;
        }
    };
}

case!(
    client_close_websocket,
    recovers,
    "websocket",
    "close",
    "transport close"
);
case!(
    client_close_polling,
    recovers,
    "polling",
    "close",
    "transport close"
);
case!(
    network_cut_websocket,
    recovers,
    "websocket",
    "destroy",
    "transport close"
);
case!(
    ping_timeout_websocket,
    recovers,
    "websocket",
    "mute",
    "ping timeout"
);
case!(
    ping_timeout_polling,
    recovers,
    "polling",
    "mute",
    "ping timeout"
);
case!(
    forced_close_websocket,
    recovers,
    "websocket",
    "conn-close",
    "forced close"
);
case!(
    forced_close_polling,
    recovers,
    "polling",
    "conn-close",
    "forced close"
);
case!(
    transport_error_websocket,
    recovers,
    "websocket",
    "bad-ping",
    "transport error"
);
case!(
    transport_error_polling,
    recovers,
    "polling",
    "bad-ping",
    "transport error"
);
case!(
    server_disconnect_websocket,
    refused,
    "websocket",
    "server-disconnect",
    "server namespace disconnect"
);
case!(
    server_disconnect_polling,
    refused,
    "polling",
    "server-disconnect",
    "server namespace disconnect"
);
case!(
    client_disconnect_websocket,
    refused,
    "websocket",
    "client-disconnect",
    "client namespace disconnect"
);
case!(
    client_disconnect_polling,
    refused,
    "polling",
    "client-disconnect",
    "client namespace disconnect"
);
case!(
    msgpack_forced_close_websocket,
    recovers,
    "msgpack",
    "websocket",
    "conn-close",
    "forced close"
);
case!(
    msgpack_client_close_polling,
    recovers,
    "msgpack",
    "polling",
    "close",
    "transport close"
);
case!(
    msgpack_server_disconnect_websocket,
    refused,
    "msgpack",
    "websocket",
    "server-disconnect",
    "server namespace disconnect"
);
