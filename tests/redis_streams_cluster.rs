//! The Redis Streams adapter in a mixed cluster: two Rust servers and one Node.js socket.io
//! server with `@socket.io/redis-streams-adapter`, on one real Redis, connection state
//! recovery on everywhere, `socket.io-client` sockets on each (WebSocket and polling).
//! Every cluster operation both ways, recovery across servers (Rust→Node, Node→Rust,
//! Rust→Rust), a killed node; then a Redis restart, a capped stream, an undecodable entry
//! and expiring sessions.
#![cfg(feature = "redis-streams")]

mod common;

use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader, Lines};
use tokio::process::{Child, ChildStdin, ChildStdout};
use tower_socketio::adapter::RecoveryConfig;
use tower_socketio::adapter::redis::streams::{RedisStreamsConfig, RedisStreamsLink};
use tower_socketio::server_event::ServerAck;
use tower_socketio::{AckSender, Binary, Data, SocketData, SocketIo, SocketRef};

/// The Redis to use: `TSIO_REDIS_URL`, else the local default if it answers.
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

/// A stream name / channel prefix no other test (or helper) uses.
fn unique() -> String {
    format!("tsio-streams-{}", tower_socketio::engine::Sid::new())
}

fn config(name: &str) -> RedisStreamsConfig {
    RedisStreamsConfig {
        stream_name: name.to_owned(),
        channel_prefix: name.to_owned(),
        session_key_prefix: format!("{name}:session:"),
        requests_timeout: Duration::from_secs(3),
        block_time: Duration::from_millis(500),
        ..RedisStreamsConfig::default()
    }
}

const WINDOW: Duration = Duration::from_secs(30);

struct RustNode {
    io: SocketIo,
    server: common::TestServer,
    _link: RedisStreamsLink,
    server_events: Arc<Mutex<Vec<Value>>>,
}

async fn rust_node(url: &str, cfg: RedisStreamsConfig, name: &'static str) -> RustNode {
    rust_node_with(url, cfg, name, WINDOW).await
}

/// A Rust server whose recovery window is `window`.
async fn rust_node_with(
    url: &str,
    cfg: RedisStreamsConfig,
    name: &'static str,
    window: Duration,
) -> RustNode {
    let link = RedisStreamsLink::connect(url, cfg)
        .await
        .expect("connect to redis");
    let (layer, io) = SocketIo::builder()
        .adapter(link.factory())
        .connection_state_recovery(RecoveryConfig {
            max_disconnection_duration: window,
            ..RecoveryConfig::default()
        })
        .build_layer();
    io.ns("/", |socket: SocketRef| {
        if !socket.recovered() {
            let client = socket
                .auth()
                .and_then(|a| serde_json::from_str::<Value>(a).ok())
                .map(|a| a["name"].clone())
                .unwrap_or(Value::Null);
            socket
                .extensions()
                .insert(SocketData(json!({ "name": client, "server": "rust" })));
        }
        socket.on(
            "join",
            |s: SocketRef, Data(room): Data<String>, ack: AckSender| {
                s.join(room);
                ack.send(&true).ok();
            },
        );
        socket.on(
            "bcast",
            |s: SocketRef, Data((ev, arg)): Data<(String, Value)>| async move {
                s.broadcast().emit(&ev, &arg).await.ok();
            },
        );
    });
    let server_events = Arc::new(Mutex::new(Vec::new()));
    let seen = server_events.clone();
    io.on_server_event(
        "ping-servers",
        move |Data(arg): Data<String>, ack: ServerAck| {
            seen.lock().expect("lock").push(json!(arg.clone()));
            ack.send(&format!("pong from {name}: {arg}")).ok();
        },
    );
    link.wait_subscribed().await;
    let server = common::serve_layer(layer).await;
    RustNode {
        io,
        server,
        _link: link,
        server_events,
    }
}

struct Driver {
    child: Child,
    stdin: ChildStdin,
    lines: Lines<BufReader<ChildStdout>>,
}

/// An event as a client saw it: its name and arguments, without the recovery offset; and
/// that offset, when the last argument is a stream entry id.
fn split_offset(ev: &Value) -> (Value, Option<String>) {
    let mut items = ev.as_array().cloned().unwrap_or_default();
    let offset = items
        .last()
        .and_then(Value::as_str)
        .filter(|s| is_entry_id(s))
        .map(str::to_owned);
    if offset.is_some() {
        items.pop();
    }
    (Value::Array(items), offset)
}

fn is_entry_id(s: &str) -> bool {
    s.split_once('-').is_some_and(|(a, b)| {
        !a.is_empty()
            && !b.is_empty()
            && a.bytes().all(|c| c.is_ascii_digit())
            && b.bytes().all(|c| c.is_ascii_digit())
    })
}

impl Driver {
    async fn start(
        node: &common::Node,
        url: &str,
        name: &str,
        r1: &RustNode,
        r2: &RustNode,
    ) -> (Self, Value) {
        let mut child = tokio::process::Command::new(&node.bin)
            .arg(common::clients_dir().join("streams/cluster.mjs"))
            .args([
                url,
                name,
                name,
                &r1.server.base_url(),
                &r2.server.base_url(),
            ])
            .current_dir(common::clients_dir())
            .env("NODE_PATH", &node.modules)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true)
            .spawn()
            .expect("start node");
        let mut d = Driver {
            stdin: child.stdin.take().expect("stdin"),
            lines: BufReader::new(child.stdout.take().expect("stdout")).lines(),
            child,
        };
        let ready = d.read().await;
        assert_eq!(ready["ready"], json!(true), "{ready}");
        (d, ready)
    }

    async fn read(&mut self) -> Value {
        let line = common::within(
            Duration::from_secs(15),
            "cluster script output",
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

    /// Waits until each client has received exactly the events listed (offsets aside),
    /// then clears every list. Returns the offsets each client saw, in order.
    async fn expect(&mut self, want: &[(&str, Vec<Value>)]) -> Vec<Vec<String>> {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let got = self.cmd(json!({"cmd": "report"})).await["received"].clone();
            let seen: Vec<(Vec<Value>, Vec<String>)> = want
                .iter()
                .map(|(c, _)| {
                    let (evs, offs): (Vec<Value>, Vec<Option<String>>) = got[*c]
                        .as_array()
                        .cloned()
                        .unwrap_or_default()
                        .iter()
                        .map(split_offset)
                        .unzip();
                    (evs, offs.into_iter().flatten().collect())
                })
                .collect();
            if want.iter().zip(&seen).all(|((_, w), (s, _))| w == s) {
                self.cmd(json!({"cmd": "clear"})).await;
                return seen.into_iter().map(|(_, o)| o).collect();
            }
            if Instant::now() > deadline {
                panic!("expected {want:?}, clients got {got}");
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

fn ev(name: &str, args: &[Value]) -> Value {
    let mut v = vec![json!(name)];
    v.extend_from_slice(args);
    Value::Array(v)
}

/// Polls `check` until it holds, or panics with `what` after 10 s.
async fn eventually<F, Fut>(what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + Duration::from_secs(10);
    while !check().await {
        assert!(Instant::now() < deadline, "timed out: {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn redis_conn(url: &str) -> redis::aio::MultiplexedConnection {
    redis::Client::open(url)
        .expect("redis url")
        .get_multiplexed_async_connection()
        .await
        .expect("redis connection")
}

/// Waits until the session of `pid` is saved in Redis (the server saves it as the socket
/// leaves; a client that came back earlier would not find it).
async fn session_saved(url: &str, name: &str, pid: &str) {
    session_saved_for(url, name, pid, WINDOW).await;
}

async fn session_saved_for(url: &str, name: &str, pid: &str, window: Duration) {
    let mut conn = redis_conn(url).await;
    let key = format!("{name}:session:{pid}");
    eventually(&format!("session {key} saved"), || {
        let mut conn = conn.clone();
        let key = key.clone();
        async move {
            redis::cmd("EXISTS")
                .arg(&key)
                .query_async::<i64>(&mut conn)
                .await
                .unwrap_or(0)
                == 1
        }
    })
    .await;
    let ttl: i64 = redis::cmd("PTTL")
        .arg(&key)
        .query_async(&mut conn)
        .await
        .expect("pttl");
    assert!(
        ttl > 0 && ttl <= window.as_millis() as i64,
        "session {key} must expire within the window, pttl {ttl}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mixed_streams_cluster_with_node() {
    let test = "mixed_streams_cluster_with_node";
    let Some(url) = redis_url(test).await else {
        return;
    };
    let Some(node) = common::node(test, "@socket.io/redis-streams-adapter") else {
        return;
    };
    let name = unique();
    let r1 = rust_node(&url, config(&name), "rust1").await;
    let r2 = rust_node(&url, config(&name), "rust2").await;
    let (mut d, ready) = Driver::start(&node, &url, &name, &r1, &r2).await;
    let ids = ready["ids"].clone();
    let main1 = || r1.io.of("/").expect("ns");
    let main2 = || r2.io.of("/").expect("ns");
    let all3 = |e: Value| {
        vec![
            ("a1", vec![e.clone()]),
            ("b1", vec![e.clone()]),
            ("c1", vec![e]),
        ]
    };

    // A Rust io.emit reaches every socket on every server once, with a stream entry id as
    // offset (connection state recovery is on).
    assert_eq!(main1().emit("from-rust", &"all").await.expect("emit"), 1);
    let offsets = d.expect(&all3(ev("from-rust", &[json!("all")]))).await;
    assert!(offsets.iter().all(|o| o.len() == 1), "offsets: {offsets:?}");
    assert!(
        offsets.windows(2).all(|w| w[0] == w[1]),
        "one entry, one offset: {offsets:?}"
    );

    // Rooms, except, local, from Rust.
    main2().to("r2").emit("to-r2", &1).await.expect("emit");
    main1()
        .except("r2")
        .emit("except-r2", &2)
        .await
        .expect("emit");
    main1().local().emit("local", &3).await.expect("emit");
    d.expect(&[
        (
            "a1",
            vec![ev("except-r2", &[json!(2)]), ev("local", &[json!(3)])],
        ),
        ("b1", vec![ev("to-r2", &[json!(1)])]),
        ("c1", vec![ev("except-r2", &[json!(2)])]),
    ])
    .await;

    // From Node: local (delivered at once, so on its own), then all, room, except, binary.
    d.cmd(json!({"cmd": "node-local"})).await;
    d.expect(&[
        ("a1", vec![]),
        ("b1", vec![]),
        ("c1", vec![ev("from-node-local", &[json!("here")])]),
    ])
    .await;
    for c in ["node-emit", "node-to-r2", "node-except-r2", "node-binary"] {
        d.cmd(json!({"cmd": c})).await;
    }
    let bin = json!({"bin": [7, 8, 9]});
    d.expect(&[
        (
            "a1",
            vec![
                ev("from-node", &[json!("all")]),
                ev("from-node-except", &[json!("x")]),
                ev("from-node-bin", std::slice::from_ref(&bin)),
            ],
        ),
        (
            "b1",
            vec![
                ev("from-node", &[json!("all")]),
                ev("from-node-r2", &[json!("r2")]),
                ev("from-node-bin", std::slice::from_ref(&bin)),
            ],
        ),
        (
            "c1",
            vec![
                ev("from-node", &[json!("all")]),
                ev("from-node-except", &[json!("x")]),
                ev("from-node-bin", std::slice::from_ref(&bin)),
            ],
        ),
    ])
    .await;

    // A volatile broadcast crosses the stream but carries no offset (not worth recovering,
    // as in Node).
    main1().volatile().emit("vol", &1).await.expect("emit");
    let offsets = d.expect(&all3(ev("vol", &[json!(1)]))).await;
    assert!(
        offsets.iter().all(Vec::is_empty),
        "volatile offsets: {offsets:?}"
    );
    d.cmd(json!({"cmd": "node-volatile"})).await;
    let offsets = d.expect(&all3(ev("from-node-vol", &[json!(2)]))).await;
    assert!(
        offsets.iter().all(Vec::is_empty),
        "volatile offsets: {offsets:?}"
    );

    // Binary from Rust reaches the Node server's client as a Buffer.
    main2()
        .emit("from-rust-bin", &Binary::from(vec![1u8, 2]))
        .await
        .expect("emit");
    d.expect(&all3(ev("from-rust-bin", &[json!({"bin": [1, 2]})])))
        .await;

    // socket.broadcast() from a client on Rust 1 (except its own id): everyone else.
    d.cmd(json!({"cmd": "client-broadcast", "from": "a1"}))
        .await;
    d.expect(&[
        ("a1", vec![]),
        ("b1", vec![ev("from-client", &[json!("a1")])]),
        ("c1", vec![ev("from-client", &[json!("a1")])]),
    ])
    .await;

    // fetch_sockets across the cluster, both ways, with per-socket data.
    let mut fetched = main1().fetch_sockets().await.expect("fetch");
    fetched.sort_by(|a, b| a.id.cmp(&b.id));
    let mut want: Vec<String> = ["a1", "b1", "c1"]
        .iter()
        .map(|c| ids[c].as_str().expect("id").to_owned())
        .collect();
    want.sort();
    assert_eq!(
        fetched.iter().map(|s| s.id.clone()).collect::<Vec<_>>(),
        want
    );
    let c1 = fetched.iter().find(|s| s.id == ids["c1"]).expect("c1");
    assert_eq!(c1.data, json!({"name": "c1", "server": "node"}));
    assert!(c1.rooms.contains(&"r1".to_owned()), "{c1:?}");
    let node_view = d.cmd(json!({"cmd": "node-fetch"})).await;
    let b1 = node_view["fetched"]
        .as_array()
        .expect("fetched")
        .iter()
        .find(|s| s["id"] == ids["b1"])
        .cloned()
        .expect("b1 seen from node");
    assert_eq!(b1["data"], json!({"name": "b1", "server": "rust"}));
    assert!(
        b1["rooms"]
            .as_array()
            .expect("rooms")
            .contains(&json!("r2")),
        "{b1}"
    );
    assert_eq!(node_view["fetched"].as_array().map(Vec::len), Some(3));

    // Broadcast with acks across the cluster, both ways.
    let acks = main1()
        .timeout(Duration::from_secs(2))
        .emit_with_ack::<_, (String,)>("ask", &("q",))
        .await
        .expect("acks");
    let mut answers: Vec<String> = acks.into_iter().map(|(_, r)| r.expect("ack").0).collect();
    answers.sort();
    assert_eq!(answers, vec!["ack from a1", "ack from b1", "ack from c1"]);
    let node_acks = d.cmd(json!({"cmd": "node-acks"})).await;
    assert_eq!(
        node_acks["acks"],
        json!(["ack from a1", "ack from b1", "ack from c1"])
    );
    let ask = ev("ask", &[json!("q")]);
    d.expect(&[
        ("a1", vec![ask.clone(), ask.clone()]),
        ("b1", vec![ask.clone(), ask.clone()]),
        ("c1", vec![ask.clone(), ask]),
    ])
    .await;

    // Server-side events with and without acks, both ways.
    let mut answers: Vec<String> = r1
        .io
        .server_side_emit_with_ack::<_, String>("ping-servers", &("hi",))
        .await
        .expect("server-side")
        .into_iter()
        .map(|v| v.expect("a string answer"))
        .collect();
    answers.sort();
    assert_eq!(answers, vec!["pong from node: hi", "pong from rust2: hi"]);
    let node_answers = d.cmd(json!({"cmd": "node-server-side"})).await;
    assert_eq!(
        node_answers["answers"],
        json!(["pong from rust1: hi", "pong from rust2: hi"])
    );
    r2.io
        .server_side_emit("ping-servers", &("from rust2",))
        .await
        .expect("server-side without ack");
    d.cmd(json!({"cmd": "node-server-side-noack"})).await;
    let mut node_seen = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let got = d.cmd(json!({"cmd": "server-events"})).await;
        node_seen.extend(got["events"].as_array().cloned().unwrap_or_default());
        if node_seen.len() >= 2 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "node server events: {node_seen:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    node_seen.sort_by_key(|v| v.to_string());
    assert_eq!(
        node_seen,
        vec![
            json!(["ping-servers", "from rust2"]),
            json!(["ping-servers", "hi"])
        ]
    );
    eventually("rust1 got the no-ack events of rust2 and node", || async {
        let seen = r1.server_events.lock().expect("lock").clone();
        seen.contains(&json!("from rust2")) && seen.contains(&json!("no ack"))
    })
    .await;
    assert!(
        !r2.server_events
            .lock()
            .expect("lock")
            .contains(&json!("from rust2")),
        "a server-side event reached its own sender"
    );

    // Joining and leaving rooms across the cluster, both ways.
    d.cmd(json!({"cmd": "node-join", "in": "r1", "room": "r3"}))
        .await;
    main2().within("r2").join("r4").await.expect("join");
    // Each server applies a join as it reads it from the stream: probe until it holds.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        d.cmd(json!({"cmd": "node-to", "room": "r3", "event": "probe-r3", "arg": 1}))
            .await;
        main1().to("r4").emit("probe-r4", &1).await.expect("emit");
        tokio::time::sleep(Duration::from_millis(100)).await;
        let got = d.cmd(json!({"cmd": "report"})).await["received"].clone();
        let has = |c: &str, e: &str| {
            got[c]
                .as_array()
                .is_some_and(|l| l.iter().any(|x| x[0] == json!(e)))
        };
        if ["a1", "b1", "c1"].iter().all(|c| has(c, "probe-r3")) && has("b1", "probe-r4") {
            break;
        }
        assert!(Instant::now() < deadline, "remote joins not applied: {got}");
    }
    d.cmd(json!({"cmd": "clear"})).await;
    // A Node emit is appended after its command returns, a Rust one before: Rust first,
    // so the order in the stream is known.
    main1()
        .to("r4")
        .emit("in-r4", &"b1 only")
        .await
        .expect("emit");
    d.cmd(json!({"cmd": "node-to", "room": "r3", "event": "in-r3", "arg": "yes"}))
        .await;
    d.expect(&[
        ("a1", vec![ev("in-r3", &[json!("yes")])]),
        (
            "b1",
            vec![
                ev("in-r4", &[json!("b1 only")]),
                ev("in-r3", &[json!("yes")]),
            ],
        ),
        ("c1", vec![ev("in-r3", &[json!("yes")])]),
    ])
    .await;
    d.cmd(json!({"cmd": "node-leave", "in": "r1", "room": "r3"}))
        .await;
    main1().within("r1").leave("r4").await.expect("leave");
    eventually("leaves applied everywhere", || async {
        main1()
            .fetch_sockets()
            .await
            .map(|all| {
                all.iter()
                    .all(|s| !s.rooms.iter().any(|r| r == "r3" || r == "r4"))
            })
            .unwrap_or(false)
    })
    .await;
    assert_eq!(r1.io.server_count().await.expect("count"), 3);
    assert_eq!(d.cmd(json!({"cmd": "node-count"})).await["count"], json!(3));

    // Connection state recovery across servers. Rust -> Node: a1 leaves rust 1; broadcasts
    // to its room come from rust 2 and node meanwhile; it comes back on node.
    // The last packet a1 gets before it goes is its own socket's emit, a string: it carries
    // an offset too (the newest entry delivered), so the client does not take "hello" for one.
    let a1_id = ids["a1"].as_str().expect("id");
    r1.io
        .sockets()
        .into_iter()
        .find(|s| s.id().as_str() == a1_id)
        .expect("a1 on rust 1")
        .emit("direct", &"hello")
        .expect("direct emit");
    let offsets = d
        .expect(&[("a1", vec![ev("direct", &[json!("hello")])])])
        .await;
    assert_eq!(offsets[0].len(), 1, "a socket's own emit carries an offset");
    let cut = d.cmd(json!({"cmd": "cut", "client": "a1"})).await;
    assert_eq!(cut["offset"].as_str(), Some(offsets[0][0].as_str()));
    session_saved(&url, &name, cut["pid"].as_str().expect("pid")).await;
    main2().to("r1").emit("missed", &1).await.expect("emit");
    main2().to("r2").emit("not-for-a1", &0).await.expect("emit");
    d.cmd(json!({"cmd": "node-to", "room": "r1", "event": "missed", "arg": 2}))
        .await;
    d.expect(&[
        (
            "b1",
            vec![
                ev("missed", &[json!(1)]),
                ev("not-for-a1", &[json!(0)]),
                ev("missed", &[json!(2)]),
            ],
        ),
        (
            "c1",
            vec![ev("missed", &[json!(1)]), ev("missed", &[json!(2)])],
        ),
    ])
    .await;
    let back = d
        .cmd(json!({"cmd": "reconnect", "client": "a1", "to": "node"}))
        .await;
    assert_eq!(back["recovered"], json!(true), "{back}");
    assert_eq!(back["id"], ids["a1"]);
    d.expect(&[(
        "a1",
        vec![ev("missed", &[json!(1)]), ev("missed", &[json!(2)])],
    )])
    .await;
    // Its rooms came along: r1 and r4... left; r1 still reaches it, on node.
    main1().to("r1").emit("after", &"a1").await.expect("emit");
    d.expect(&all3(ev("after", &[json!("a1")]))).await;

    // Node -> Rust: c1 (a Node socket id) leaves node and comes back on rust 2.
    let cut = d.cmd(json!({"cmd": "cut", "client": "c1"})).await;
    session_saved(&url, &name, cut["pid"].as_str().expect("pid")).await;
    main1()
        .to("r1")
        .emit("missed-c1", &"x")
        .await
        .expect("emit");
    d.cmd(json!({"cmd": "node-binary"})).await;
    d.expect(&[
        (
            "a1",
            vec![
                ev("missed-c1", &[json!("x")]),
                ev("from-node-bin", std::slice::from_ref(&bin)),
            ],
        ),
        (
            "b1",
            vec![
                ev("missed-c1", &[json!("x")]),
                ev("from-node-bin", std::slice::from_ref(&bin)),
            ],
        ),
    ])
    .await;
    let back = d
        .cmd(json!({"cmd": "reconnect", "client": "c1", "to": "r2"}))
        .await;
    assert_eq!(back["recovered"], json!(true), "{back}");
    assert_eq!(back["id"], ids["c1"]);
    d.expect(&[(
        "c1",
        vec![
            ev("missed-c1", &[json!("x")]),
            ev("from-node-bin", std::slice::from_ref(&bin)),
        ],
    )])
    .await;
    let c1_id = ids["c1"].as_str().expect("id");
    let on_r2 = r2
        .io
        .sockets()
        .into_iter()
        .find(|s| s.id().as_str() == c1_id)
        .expect("c1 now on rust 2");
    assert!(on_r2.recovered());
    assert_eq!(
        on_r2.extensions().get::<SocketData>().map(|d| d.0),
        Some(json!({"name": "c1", "server": "node"})),
        "its data came along"
    );

    // Rust -> Rust: b1 (polling) leaves rust 2 and comes back on rust 1.
    let cut = d.cmd(json!({"cmd": "cut", "client": "b1"})).await;
    session_saved(&url, &name, cut["pid"].as_str().expect("pid")).await;
    main1().to("r2").emit("missed-b1", &1).await.expect("emit");
    main2().emit("missed-b1", &2).await.expect("emit");
    d.expect(&[
        ("a1", vec![ev("missed-b1", &[json!(2)])]),
        ("c1", vec![ev("missed-b1", &[json!(2)])]),
    ])
    .await;
    let back = d
        .cmd(json!({"cmd": "reconnect", "client": "b1", "to": "r1"}))
        .await;
    assert_eq!(back["recovered"], json!(true), "{back}");
    assert_eq!(back["id"], ids["b1"]);
    d.expect(&[(
        "b1",
        vec![ev("missed-b1", &[json!(1)]), ev("missed-b1", &[json!(2)])],
    )])
    .await;
    // Rooms came along (r2), and nothing is replayed twice.
    main2()
        .to("r2")
        .emit("still-r2", &true)
        .await
        .expect("emit");
    d.expect(&[
        ("a1", vec![]),
        ("b1", vec![ev("still-r2", &[json!(true)])]),
        ("c1", vec![]),
    ])
    .await;

    // Disconnecting remote sockets, both ways: b1 (now on rust 1) from node, a1 (on node)
    // from rust 2.
    let b1_id = ids["b1"].as_str().expect("id").to_owned();
    let a1_id = ids["a1"].as_str().expect("id").to_owned();
    d.cmd(json!({"cmd": "node-disconnect", "in": b1_id})).await;
    main2()
        .within(a1_id.as_str())
        .disconnect()
        .await
        .expect("disconnect");
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let c = d.cmd(json!({"cmd": "connected"})).await["connected"].clone();
        if c == json!({"a1": false, "b1": false, "c1": true}) {
            break;
        }
        assert!(Instant::now() < deadline, "remote disconnects: {c}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // The Node process dies: the Rust servers stop counting it at once, and requests do
    // not wait for it.
    d.child.start_kill().expect("kill node");
    let _ = d.child.wait().await;
    eventually("a dead node leaves the count", || async {
        r1.io.server_count().await.ok() == Some(2)
    })
    .await;
    let started = Instant::now();
    main1()
        .fetch_sockets()
        .await
        .expect("fetch without the dead node");
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "waited for the dead node"
    );
    let answers = r1
        .io
        .server_side_emit_with_ack::<_, String>("ping-servers", &("alone",))
        .await
        .expect("server-side")
        .into_iter()
        .map(|v| v.expect("a string answer"))
        .collect::<Vec<_>>();
    assert_eq!(answers, vec!["pong from rust2: alone"]);
    let _: () = redis::cmd("DEL")
        .arg(&name)
        .query_async(&mut redis_conn(&url).await)
        .await
        .expect("del");
}

/// Starts a private redis-server on `port`; `None` if there is no redis-server binary.
async fn private_redis(test: &str, port: u16) -> Option<Child> {
    let bin = ["/usr/bin/redis-server", "/usr/local/bin/redis-server"]
        .into_iter()
        .find(|p| std::path::Path::new(p).is_file());
    let Some(bin) = bin else {
        return common::missing_service(test, "the redis-server binary");
    };
    let child = tokio::process::Command::new(bin)
        .args([
            "--port",
            &port.to_string(),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("start redis-server");
    for _ in 0..100 {
        if tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .is_ok()
        {
            return Some(child);
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("redis-server on {port} did not start");
}

/// A socket.io-client on `url` whose output lines are read by the test.
struct Listener {
    _child: Child,
    lines: Lines<BufReader<ChildStdout>>,
}

impl Listener {
    async fn start(node: &common::Node, url: &str) -> Self {
        let mut child = tokio::process::Command::new(&node.bin)
            .arg(common::clients_dir().join("streams/listen.mjs"))
            .arg(url)
            .current_dir(common::clients_dir())
            .env("NODE_PATH", &node.modules)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true)
            .spawn()
            .expect("start node");
        let lines = BufReader::new(child.stdout.take().expect("stdout")).lines();
        let mut l = Self {
            _child: child,
            lines,
        };
        assert_eq!(l.next().await, "READY");
        l
    }

    async fn next(&mut self) -> String {
        common::within(
            Duration::from_secs(15),
            "listener output",
            self.lines.next_line(),
        )
        .await
        .expect("read")
        .expect("listener ended")
    }

    /// Reads ticks until `tick <n>`; any disconnection fails the test.
    async fn until_tick(&mut self, n: u64) {
        loop {
            let line = self.next().await;
            assert!(line.starts_with("tick "), "{line}");
            if line == format!("tick {n}") {
                return;
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn streams_survive_a_redis_restart() {
    let test = "streams_survive_a_redis_restart";
    let Some(node) = common::node(test, "socket.io-client") else {
        return;
    };
    // A private Redis: the shared one is never restarted.
    let port = 17_379 + (std::process::id() % 1000) as u16;
    let Some(mut redis) = private_redis(test, port).await else {
        return;
    };
    let url = format!("redis://127.0.0.1:{port}");
    let name = unique();
    let r1 = rust_node(&url, config(&name), "rust1").await;
    let r2 = rust_node(&url, config(&name), "rust2").await;
    let mut listener = Listener::start(&node, &r2.server.base_url()).await;
    let main1 = || r1.io.of("/").expect("ns");
    main1()
        .emit("tick", &1)
        .await
        .expect("emit before the outage");
    listener.until_tick(1).await;

    // Redis goes away: cluster emits fail clearly, the servers keep their clients.
    redis.kill().await.expect("kill redis");
    let _ = redis.wait().await;
    eventually("emits fail without redis", || async {
        main1().emit("tick", &2).await.is_err()
    })
    .await;
    assert!(
        r1.io.server_count().await.is_err(),
        "a request without redis must fail"
    );
    assert_eq!(r2.io.sockets().len(), 1, "local sockets kept");

    // Redis is back (empty): every connection comes back, the readers read on, and
    // broadcasts reach the client again, which never lost its connection.
    let _redis = private_redis(test, port).await.expect("restart redis");
    eventually("the cluster is back", || async {
        main1().emit("tick", &3).await.is_ok() && r1.io.server_count().await.ok() == Some(2)
    })
    .await;
    main1()
        .emit("tick", &1000)
        .await
        .expect("emit after recovery");
    listener.until_tick(1000).await;
    assert_eq!(r2.io.sockets().len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn streams_skip_bad_entries_and_stay_capped() {
    let test = "streams_skip_bad_entries_and_stay_capped";
    let Some(url) = redis_url(test).await else {
        return;
    };
    let Some(node) = common::node(test, "socket.io-client") else {
        return;
    };
    let name = unique();
    let max_len = 50;
    let cfg = RedisStreamsConfig {
        max_len,
        ..config(&name)
    };
    let r1 = rust_node(&url, cfg.clone(), "rust1").await;
    let r2 = rust_node(&url, cfg, "rust2").await;
    let mut listener = Listener::start(&node, &r2.server.base_url()).await;
    let main1 = || r1.io.of("/").expect("ns");

    // Entries no server can use, written straight to the stream: each is logged and
    // skipped, and the readers go on.
    let mut conn = redis_conn(&url).await;
    let bad: [&[(&str, &str)]; 6] = [
        &[
            ("uid", "x"),
            ("nsp", "/"),
            ("type", "3"),
            ("data", "!!not base64!!"),
        ],
        &[
            ("uid", "x"),
            ("nsp", "/"),
            ("type", "3"),
            ("data", "{not json"),
        ],
        &[
            ("uid", "x"),
            ("nsp", "/"),
            ("type", "3"),
            ("data", r#"{"packet":5}"#),
        ],
        &[
            ("uid", "x"),
            ("nsp", "/"),
            ("type", "three"),
            ("data", "{}"),
        ],
        &[
            ("uid", "x"),
            ("nsp", "/"),
            ("type", "3"),
            ("data", "gqZwYWNr"),
        ],
        &[("garbage", "only")],
    ];
    for fields in bad {
        let mut cmd = redis::cmd("XADD");
        cmd.arg(&name).arg("*");
        for (k, v) in fields {
            cmd.arg(*k).arg(*v);
        }
        let _: String = cmd.query_async(&mut conn).await.expect("xadd");
    }
    main1()
        .emit("tick", &1)
        .await
        .expect("emit after bad entries");
    listener.until_tick(1).await;

    // The stream stays about `max_len` long (trimming is approximate: whole macro nodes of
    // 100 entries go at once).
    for i in 2..=400u64 {
        main1().emit("tick", &i).await.expect("emit");
    }
    listener.until_tick(400).await;
    let len: usize = redis::cmd("XLEN")
        .arg(&name)
        .query_async(&mut conn)
        .await
        .expect("xlen");
    assert!(len <= max_len + 100, "stream not capped: {len} entries");
    let _: () = redis::cmd("DEL")
        .arg(&name)
        .query_async(&mut conn)
        .await
        .expect("del");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn streams_refuse_expired_sessions_and_trimmed_offsets() {
    let test = "streams_refuse_expired_sessions_and_trimmed_offsets";
    let Some(url) = redis_url(test).await else {
        return;
    };
    let Some(node) = common::node(test, "@socket.io/redis-streams-adapter") else {
        return;
    };
    let name = unique();
    let window = Duration::from_secs(5);
    let cfg = RedisStreamsConfig {
        max_len: 10,
        ..config(&name)
    };
    let r1 = rust_node_with(&url, cfg.clone(), "rust1", window).await;
    let r2 = rust_node_with(&url, cfg, "rust2", window).await;
    let (mut d, ready) = Driver::start(&node, &url, &name, &r1, &r2).await;
    let ids = ready["ids"].clone();
    let main1 = || r1.io.of("/").expect("ns");
    main1().emit("hello", &1).await.expect("emit");
    let hello = ev("hello", &[json!(1)]);
    d.expect(&[
        ("a1", vec![hello.clone()]),
        ("b1", vec![hello.clone()]),
        ("c1", vec![hello]),
    ])
    .await;

    let mut conn = redis_conn(&url).await;

    // The stream moved past the client's offset (trimmed to about 10 entries): it comes back
    // as a new socket rather than with a gap, though its session is still there.
    let cut = d.cmd(json!({"cmd": "cut", "client": "b1"})).await;
    let (pid, offset) = (
        cut["pid"].as_str().expect("pid").to_owned(),
        cut["offset"].as_str().expect("offset").to_owned(),
    );
    session_saved_for(&url, &name, &pid, window).await;
    for i in 0..150 {
        main1().to("nobody").emit("filler", &i).await.expect("emit");
    }
    let at: Vec<redis::Value> = redis::cmd("XRANGE")
        .arg(&name)
        .arg(&offset)
        .arg(&offset)
        .query_async(&mut conn)
        .await
        .expect("xrange");
    assert!(at.is_empty(), "offset {offset} not trimmed yet");
    let exists: i64 = redis::cmd("EXISTS")
        .arg(format!("{name}:session:{pid}"))
        .query_async(&mut conn)
        .await
        .expect("exists");
    assert_eq!(
        exists, 1,
        "the session expired first: the machine is too slow for this test"
    );
    let back = d
        .cmd(json!({"cmd": "reconnect", "client": "b1", "to": "r2"}))
        .await;
    assert_eq!(back["recovered"], json!(false), "{back}");
    assert_ne!(back["id"], ids["b1"]);

    // The session expires with the window: the client comes back as a new socket.
    let cut = d.cmd(json!({"cmd": "cut", "client": "a1"})).await;
    let pid = cut["pid"].as_str().expect("pid").to_owned();
    session_saved_for(&url, &name, &pid, window).await;
    let key = format!("{name}:session:{pid}");
    eventually("the session expired", || {
        let mut conn = conn.clone();
        let key = key.clone();
        async move {
            redis::cmd("EXISTS")
                .arg(&key)
                .query_async::<i64>(&mut conn)
                .await
                .unwrap_or(1)
                == 0
        }
    })
    .await;
    let back = d
        .cmd(json!({"cmd": "reconnect", "client": "a1", "to": "r1"}))
        .await;
    assert_eq!(back["recovered"], json!(false), "{back}");
    assert_ne!(back["id"], ids["a1"]);
    let _: () = redis::cmd("DEL")
        .arg(&name)
        .query_async(&mut conn)
        .await
        .expect("del");
}

#[tokio::test]
async fn connect_fails_fast_and_clearly() {
    use tower_socketio::adapter::redis::RedisConnectError;
    // Refused: a port nothing listens on (bound, then released).
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("free port")
        .port();
    let got = common::within(
        Duration::from_secs(5),
        "connect to a closed port",
        RedisStreamsLink::connect(
            &format!("redis://127.0.0.1:{port}"),
            RedisStreamsConfig::default(),
        ),
    )
    .await;
    assert!(
        matches!(got, Err(RedisConnectError::Connect { .. })),
        "{got:?}"
    );
    // Silent: a listener that never answers.
    let silent = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = silent.local_addr().expect("addr");
    let cfg = RedisStreamsConfig {
        connect_timeout: Duration::from_millis(300),
        ..RedisStreamsConfig::default()
    };
    let got = common::within(
        Duration::from_secs(5),
        "connect to a silent listener",
        RedisStreamsLink::connect(&format!("redis://{addr}"), cfg),
    )
    .await;
    assert!(
        matches!(got, Err(RedisConnectError::Timeout { .. })),
        "{got:?}"
    );
}

/// Two Rust servers with the msgpack parser: binary and mixed arguments cross the stream and
/// come back in a recovered session's replay.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn msgpack_parser_across_the_stream() {
    let test = "msgpack_parser_across_the_stream";
    let Some(url) = redis_url(test).await else {
        return;
    };
    let Some(node) = common::node(test, "socket.io-msgpack-parser") else {
        return;
    };
    let name = unique();
    let mut nodes = Vec::new();
    for _ in 0..2 {
        let link = RedisStreamsLink::connect(&url, config(&name))
            .await
            .expect("connect");
        let (layer, io) = SocketIo::builder()
            .parser(tower_socketio::parser::Parser::MsgPack)
            .adapter(link.factory())
            .connection_state_recovery(RecoveryConfig {
                max_disconnection_duration: WINDOW,
                ..RecoveryConfig::default()
            })
            .build_layer();
        io.ns("/", |_: SocketRef| {});
        link.wait_subscribed().await;
        nodes.push((io, common::serve_layer(layer).await, link));
    }
    let mut child = tokio::process::Command::new(&node.bin)
        .arg(common::clients_dir().join("streams/msgpack.mjs"))
        .arg(nodes[1].1.base_url())
        .current_dir(common::clients_dir())
        .env("NODE_PATH", &node.modules)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .kill_on_drop(true)
        .spawn()
        .expect("start node");
    let mut stdin = child.stdin.take().expect("stdin");
    let mut lines = BufReader::new(child.stdout.take().expect("stdout")).lines();
    let mut next = async || -> String {
        common::within(Duration::from_secs(15), "client output", lines.next_line())
            .await
            .expect("read")
            .expect("client ended")
    };
    let ready = next().await;
    let id = ready.strip_prefix("READY ").expect(&ready).to_owned();
    let main1 = || nodes[0].0.of("/").expect("ns");
    main1()
        .emit_args("ev", &(1, "two", Binary::from(vec![1u8, 2])))
        .await
        .expect("emit");
    let line = next().await;
    let got: Value = serde_json::from_str(line.strip_prefix("EV ").expect(&line)).expect("json");
    let (got, offset) = split_offset(&got);
    assert_eq!(got, json!(["ev", 1, "two", {"bin": [1, 2]}]));
    assert!(offset.is_some(), "{line}");

    stdin.write_all(b"cut\n").await.expect("cut");
    let cut = next().await;
    let pid = cut.strip_prefix("CUT ").expect(&cut).to_owned();
    session_saved(&url, &name, &pid).await;
    main1()
        .emit_args(
            "missed",
            &(Binary::from(vec![9u8]), json!({"k": [true, null]})),
        )
        .await
        .expect("emit");
    stdin
        .write_all(format!("to {}\n", nodes[0].1.base_url()).as_bytes())
        .await
        .expect("to");
    // The replay follows the CONNECT reply at once: the client may print it before the
    // line its `connect` continuation prints.
    let mut two = [next().await, next().await];
    two.sort();
    assert_eq!(two[0], format!("BACK {id} true"), "{two:?}");
    let got: Value =
        serde_json::from_str(two[1].strip_prefix("EV ").unwrap_or_default()).expect("json");
    assert_eq!(
        split_offset(&got).0,
        json!(["missed", {"bin": [9]}, {"k": [true, null]}])
    );
    let _: () = redis::cmd("DEL")
        .arg(&name)
        .query_async(&mut redis_conn(&url).await)
        .await
        .expect("del");
}
