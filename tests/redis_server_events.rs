//! Server-side events in every namespace, in a mixed cluster on one real Redis: two Rust
//! servers and one Node.js socket.io server with `@socket.io/redis-adapter`
//! (`tests/clients/cluster/server_events.mjs`). Emits with and without acks go both ways in
//! `/` and `/custom`; handlers are `async`, use extractors, see whether an answer is wanted,
//! and reach their namespace's sockets.
#![cfg(feature = "redis")]

mod common;

use std::process::Stdio;
use std::time::Duration;

use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader, Lines};
use tokio::process::{Child, ChildStdin, ChildStdout};
use tokio::sync::mpsc;
use tower_socketio::adapter::redis::{RedisAdapterConfig, RedisLink};
use tower_socketio::server_event::ServerAck;
use tower_socketio::{BroadcastOperators, Data, SocketIo, SocketRef, State};

async fn redis_url(test: &str) -> Option<String> {
    let url = std::env::var("TSIO_REDIS_URL")
        .ok()
        .filter(|u| !u.is_empty())
        .unwrap_or_else(|| "redis://127.0.0.1:6379".into());
    let hostport = url
        .trim_start_matches("redis://")
        .trim_end_matches('/')
        .to_owned();
    match tokio::net::TcpStream::connect(&hostport).await {
        Ok(_) => Some(url),
        Err(_) => common::missing_service(test, &format!("Redis at {url}")),
    }
}

/// Every server-side event a Rust node handled: `{server, nsp, args, withAck}`.
#[derive(Clone)]
struct Calls(mpsc::UnboundedSender<Value>);

struct RustNode {
    io: SocketIo,
    server: common::TestServer,
    _link: RedisLink,
}

async fn rust_node(url: &str, key: &str, name: &'static str, calls: Calls) -> RustNode {
    let link = RedisLink::connect(
        url,
        RedisAdapterConfig {
            key: key.to_owned(),
            requests_timeout: Duration::from_secs(3),
            ..RedisAdapterConfig::default()
        },
    )
    .await
    .expect("connect to redis");
    let (layer, io) = SocketIo::builder()
        .adapter(link.factory())
        .ack_timeout(Duration::from_secs(3))
        .with_state(calls)
        .build_layer();
    for nsp in ["/", "/custom"] {
        io.ns(nsp, |_: SocketRef| {}).on_server_event(
            "ping-servers",
            move |Data(args): Data<Value>,
                  ack: ServerAck,
                  ns: BroadcastOperators,
                  State(calls): State<Calls>| async move {
                let _ = calls.0.send(json!({
                    "server": name, "nsp": nsp, "args": args, "withAck": ack.requested()
                }));
                // An answer after an await: the handler is a real async one.
                tokio::task::yield_now().await;
                // The namespace at hand: tell this server's own sockets of it.
                ns.local().emit("relayed", &args).await.ok();
                ack.send(&format!("{name} {nsp}: {args}")).ok();
            },
        );
    }
    link.wait_subscribed().await;
    let server = common::serve_layer(layer).await;
    RustNode {
        io,
        server,
        _link: link,
    }
}

struct Driver {
    _child: Child,
    stdin: ChildStdin,
    lines: Lines<BufReader<ChildStdout>>,
}

impl Driver {
    async fn read(&mut self) -> Value {
        let line = common::within(
            Duration::from_secs(20),
            "script output",
            self.lines.next_line(),
        )
        .await
        .expect("read script output")
        .expect("script ended");
        serde_json::from_str(&line).unwrap_or_else(|_| panic!("not json: {line}"))
    }

    async fn cmd(&mut self, cmd: Value) -> Value {
        let mut line = cmd.to_string();
        line.push('\n');
        self.stdin
            .write_all(line.as_bytes())
            .await
            .expect("write command");
        let answer = self.read().await;
        assert!(answer.get("error").is_none(), "{cmd} failed: {answer}");
        answer
    }

    /// Waits until the Node server has recorded `n` calls and its client on the Rust
    /// server `m` events; returns them.
    async fn calls(&mut self, n: usize, m: usize) -> (Vec<Value>, Vec<Value>) {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        let (mut calls, mut received) = (Vec::new(), Vec::new());
        loop {
            let r = self.cmd(json!({"cmd": "report"})).await;
            calls.extend(r["calls"].as_array().cloned().unwrap_or_default());
            received.extend(r["received"].as_array().cloned().unwrap_or_default());
            if (calls.len() >= n && received.len() >= m) || tokio::time::Instant::now() > deadline {
                return (calls, received);
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

/// The next `n` calls the Rust nodes handled, sorted by server.
async fn rust_calls(rx: &mut mpsc::UnboundedReceiver<Value>, n: usize) -> Vec<Value> {
    let mut out = Vec::new();
    for _ in 0..n {
        out.push(
            common::within(
                Duration::from_secs(10),
                "a Rust server-side call",
                rx.recv(),
            )
            .await
            .expect("call"),
        );
    }
    out.sort_by_key(|v| v["server"].as_str().unwrap_or("").to_owned());
    out
}

fn sorted(mut v: Vec<String>) -> Vec<String> {
    v.sort();
    v
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_side_events_in_every_namespace_with_node() {
    let test = "server_side_events_in_every_namespace_with_node";
    let Some(url) = redis_url(test).await else {
        return;
    };
    let Some(node) = common::node(test, "@socket.io/redis-adapter") else {
        return;
    };
    let key = format!("tsio-sse-{}", tower_socketio::engine::Sid::new());
    let (tx, mut rx) = mpsc::unbounded_channel();
    let r1 = rust_node(&url, &key, "rust1", Calls(tx.clone())).await;
    let _r2 = rust_node(&url, &key, "rust2", Calls(tx)).await;
    let mut child = tokio::process::Command::new(&node.bin)
        .arg(common::clients_dir().join("cluster/server_events.mjs"))
        .args([&url, &key, "3", &r1.server.base_url()])
        .current_dir(common::clients_dir())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .kill_on_drop(true)
        .spawn()
        .expect("start node");
    let mut d = Driver {
        stdin: child.stdin.take().expect("stdin"),
        lines: BufReader::new(child.stdout.take().expect("stdout")).lines(),
        _child: child,
    };
    assert_eq!(d.read().await["ready"], json!(true));
    let custom = || r1.io.of("/custom").expect("/custom");

    // Node asks in /custom and waits: both Rust servers answer, each handler saw a
    // callback (withAck), and rust1 told its own /custom socket.
    let answers = d
        .cmd(json!({"cmd": "emit-ack", "nsp": "/custom", "args": ["hi", 2]}))
        .await;
    assert_eq!(
        answers["answers"],
        json!([r#"rust1 /custom: ["hi",2]"#, r#"rust2 /custom: ["hi",2]"#]),
    );
    assert_eq!(
        rust_calls(&mut rx, 2).await,
        vec![
            json!({"server": "rust1", "nsp": "/custom", "args": ["hi", 2], "withAck": true}),
            json!({"server": "rust2", "nsp": "/custom", "args": ["hi", 2], "withAck": true}),
        ]
    );

    // Node emits in /custom without waiting: no callback on our side.
    d.cmd(json!({"cmd": "emit", "nsp": "/custom", "args": ["x"]}))
        .await;
    assert_eq!(
        rust_calls(&mut rx, 2).await,
        vec![
            json!({"server": "rust1", "nsp": "/custom", "args": "x", "withAck": false}),
            json!({"server": "rust2", "nsp": "/custom", "args": "x", "withAck": false}),
        ]
    );

    // Rust asks in /custom: Node's handler gets a callback, rust2 answers too.
    let answers: Vec<String> = custom()
        .server_side_emit_with_ack::<_, String>("ping-servers", &("yo", 1))
        .await
        .expect("server-side emit with ack")
        .into_iter()
        .map(|a| a.expect("a string answer"))
        .collect();
    assert_eq!(
        sorted(answers),
        vec![
            r#"node /custom: ["yo",1]"#.to_owned(),
            r#"rust2 /custom: ["yo",1]"#.to_owned()
        ]
    );
    assert_eq!(
        rust_calls(&mut rx, 1).await,
        vec![json!({"server": "rust2", "nsp": "/custom", "args": ["yo", 1], "withAck": true})]
    );

    // Rust emits in /custom without an ack: Node's handler gets no callback.
    custom()
        .server_side_emit("ping-servers", &("z",))
        .await
        .expect("server-side emit");
    assert_eq!(
        rust_calls(&mut rx, 1).await,
        vec![json!({"server": "rust2", "nsp": "/custom", "args": "z", "withAck": false})]
    );
    let (calls, received) = d.calls(2, 2).await;
    assert_eq!(
        calls,
        vec![
            json!({"nsp": "/custom", "args": ["yo", 1], "withAck": true}),
            json!({"nsp": "/custom", "args": ["z"], "withAck": false}),
        ]
    );
    // rust1's /custom socket heard of the two events rust1 received (not of its own).
    assert_eq!(
        received,
        vec![json!(["relayed", ["hi", 2]]), json!(["relayed", "x"])]
    );

    // The main namespace, through the SocketIo shortcut: only `/` handlers run.
    let answers: Vec<String> = r1
        .io
        .server_side_emit_with_ack::<_, String>("ping-servers", &["main"])
        .await
        .expect("server-side emit with ack in /")
        .into_iter()
        .map(|a| a.expect("a string answer"))
        .collect();
    assert_eq!(
        sorted(answers),
        vec![
            r#"node /: ["main"]"#.to_owned(),
            r#"rust2 /: "main""#.to_owned()
        ]
    );
    assert_eq!(
        rust_calls(&mut rx, 1).await,
        vec![json!({"server": "rust2", "nsp": "/", "args": "main", "withAck": true})]
    );
    let answers = d
        .cmd(json!({"cmd": "emit-ack", "nsp": "/", "args": []}))
        .await;
    assert_eq!(
        answers["answers"],
        json!(["rust1 /: null", "rust2 /: null"])
    );
    rust_calls(&mut rx, 2).await;
    let (calls, _) = d.calls(1, 0).await;
    assert_eq!(
        calls,
        vec![json!({"nsp": "/", "args": ["main"], "withAck": true})]
    );
    assert!(
        rx.try_recv().is_err(),
        "a handler ran twice or in the wrong namespace"
    );
}

/// Arguments that are not a list are refused before anything is sent.
#[tokio::test]
async fn server_side_emit_needs_an_argument_list() {
    let (_layer, io) = SocketIo::builder().build_layer();
    io.ns("/", |_: SocketRef| {});
    assert!(io.server_side_emit("ev", &"not a list").await.is_err());
    assert!(io.server_side_emit("ev", &()).await.is_ok());
    let alone: Vec<Result<Value, _>> = io
        .server_side_emit_with_ack("ev", &(1, 2))
        .await
        .expect("alone");
    assert!(alone.is_empty(), "no other server, no answer");
}

/// With connection state recovery on, a socket's own emits go through the adapter, but the
/// Redis adapter keeps them off Redis: no other server has that socket. A broadcast to a
/// room, sent after them, is published as usual.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn own_socket_emits_stay_off_redis() {
    use futures_util::{SinkExt, StreamExt};
    use tokio_tungstenite::tungstenite::Message;

    let test = "own_socket_emits_stay_off_redis";
    let Some(url) = redis_url(test).await else {
        return;
    };
    let key = format!("tsio-own-{}", tower_socketio::engine::Sid::new());
    // Everything published under the key, as it is published.
    let mut sniffer = redis::Client::open(url.as_str())
        .expect("redis url")
        .get_async_pubsub()
        .await
        .expect("sniffer");
    sniffer
        .psubscribe(format!("{key}#*"))
        .await
        .expect("psubscribe");
    let link = RedisLink::connect(
        &url,
        RedisAdapterConfig {
            key: key.clone(),
            ..RedisAdapterConfig::default()
        },
    )
    .await
    .expect("connect to redis");
    let (layer, io) = SocketIo::builder()
        .adapter(link.factory())
        .connection_state_recovery(tower_socketio::adapter::RecoveryConfig::default())
        .build_layer();
    io.ns("/", |s: SocketRef| {
        s.emit("hello", "own").ok();
        s.emit_args("hello", &(1, 2)).ok();
        s.on("control", |s: SocketRef| async move {
            s.nsp().to("elsewhere").emit("control", &1).await.ok();
        });
    });
    link.wait_subscribed().await;
    let server = common::serve_layer(layer).await;
    let (mut ws, _) =
        tokio_tungstenite::connect_async(server.ws_url("/socket.io/?EIO=4&transport=websocket"))
            .await
            .expect("websocket");
    let open = loop {
        match common::step("the open packet", ws.next()).await {
            Some(Ok(Message::Text(t))) => break t.to_string(),
            Some(Ok(_)) => continue,
            other => panic!("websocket ended: {other:?}"),
        }
    };
    assert!(open.starts_with('0'), "open packet: {open}");
    ws.send(Message::text("40")).await.expect("CONNECT");
    let mut texts = Vec::new();
    while texts.len() < 3 {
        match common::step("a frame", ws.next()).await {
            Some(Ok(Message::Text(t))) => texts.push(t.to_string()),
            Some(Ok(_)) => {}
            other => panic!("websocket ended: {other:?}"),
        }
    }
    assert!(texts[0].starts_with("40{"), "{texts:?}");
    // The classic Redis adapter keeps no packets (as Node's): no offsets, but a pid.
    assert!(texts[0].contains(r#""pid":"#), "{texts:?}");
    assert_eq!(texts[1], r#"42["hello","own"]"#);
    assert_eq!(texts[2], r#"42["hello",1,2]"#);
    ws.send(Message::text(r#"42["control"]"#))
        .await
        .expect("control");
    let mut published = Vec::new();
    let mut messages = sniffer.on_message();
    while !published
        .iter()
        .any(|c: &String| c.ends_with("#elsewhere#"))
    {
        let msg = common::step("the control broadcast on Redis", messages.next())
            .await
            .expect("sniffer open");
        published.push(msg.get_channel_name().to_owned());
    }
    assert_eq!(
        published,
        vec![format!("{key}#/#elsewhere#")],
        "only the room broadcast was published"
    );
}
