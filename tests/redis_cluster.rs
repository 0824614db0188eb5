//! The Redis adapter in a mixed cluster: two Rust servers and one Node.js socket.io server
//! with `@socket.io/redis-adapter`, on one real Redis, with `socket.io-client` sockets on
//! each, plus a `@socket.io/redis-emitter`. And a Redis restart under running servers.
#![cfg(feature = "redis")]

mod common;

use std::process::Stdio;
use std::time::Duration;

use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader, Lines};
use tokio::process::{Child, ChildStdin, ChildStdout};
use tower_socketio::adapter::redis::{RedisAdapterConfig, RedisLink};
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

fn unique_key() -> String {
    format!("tsio-test-{}", tower_socketio::engine::Sid::new())
}

struct RustNode {
    io: SocketIo,
    server: common::TestServer,
    _link: RedisLink,
}

async fn rust_node(url: &str, key: &str, name: &'static str) -> RustNode {
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
    let (layer, io) = SocketIo::builder().adapter(link.factory()).build_layer();
    io.ns("/", |socket: SocketRef| {
        let client = socket
            .auth()
            .and_then(|a| serde_json::from_str::<Value>(a).ok())
            .map(|a| a["name"].clone())
            .unwrap_or(Value::Null);
        socket
            .extensions()
            .insert(SocketData(json!({ "name": client, "server": "rust" })));
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
    io.on_server_event(
        "ping-servers",
        move |Data(arg): Data<String>, ack: ServerAck| {
            ack.send(&format!("pong from {name}: {arg}")).ok();
        },
    );
    link.wait_subscribed().await;
    let server = common::serve_layer(layer).await;
    RustNode {
        io,
        server,
        _link: link,
    }
}

/// How long a cluster-wide change may take to be seen (Redis round trips on a loaded
/// machine).
const STEP_WAIT: Duration = Duration::from_secs(10);

struct Driver {
    _child: Child,
    stdin: ChildStdin,
    lines: Lines<BufReader<ChildStdout>>,
}

impl Driver {
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

    /// Events each client received since the last call, as (event, first argument), once
    /// each client named in `expect` has at least its count (deliveries relayed through
    /// Redis and polling land when they land: wait for them, with a deadline).
    async fn received(&mut self, expect: &[(&str, usize)]) -> Value {
        let deadline = tokio::time::Instant::now() + STEP_WAIT;
        let r = loop {
            let r = self.cmd(json!({"cmd": "report"})).await;
            let all_in = expect
                .iter()
                .all(|(c, n)| events(&r["received"], c).len() >= *n);
            if all_in {
                break r;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "timed out waiting for {expect:?}: {r}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        };
        self.cmd(json!({"cmd": "clear"})).await;
        r["received"].clone()
    }
}

fn events(received: &Value, client: &str) -> Vec<Value> {
    received[client].as_array().cloned().unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mixed_cluster_with_node() {
    let test = "mixed_cluster_with_node";
    let Some(url) = redis_url(test).await else {
        return;
    };
    let Some(node) = common::node(test, "@socket.io/redis-adapter") else {
        return;
    };
    let key = unique_key();
    let r1 = rust_node(&url, &key, "rust1").await;
    let r2 = rust_node(&url, &key, "rust2").await;
    let mut child = tokio::process::Command::new(&node.bin)
        .arg(common::clients_dir().join("cluster/cluster.mjs"))
        .args([&url, &key, &r1.server.base_url(), &r2.server.base_url()])
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
        _child: child,
    };
    let ready = d.read().await;
    assert_eq!(ready["ready"], json!(true), "{ready}");
    let ids = ready["ids"].clone();
    let ev = |name: &str, arg: Value| json!([name, arg]);

    // A Rust io.emit reaches every socket on every server, once.
    let main1 = || r1.io.of("/").expect("ns");
    let main2 = || r2.io.of("/").expect("ns");
    assert_eq!(main1().emit("from-rust", &"all").await.expect("emit"), 1);
    let got = d.received(&[("a1", 1), ("b1", 1), ("c1", 1)]).await;
    for c in ["a1", "b1", "c1"] {
        assert_eq!(
            events(&got, c),
            vec![ev("from-rust", json!("all"))],
            "{c}: {got}"
        );
    }

    // Rooms, except, local, from Rust.
    main2().to("r2").emit("to-r2", &1).await.expect("emit");
    main1()
        .except("r2")
        .emit("except-r2", &2)
        .await
        .expect("emit");
    main1().local().emit("local", &3).await.expect("emit");
    let got = d.received(&[("a1", 2), ("b1", 1), ("c1", 1)]).await;
    assert_eq!(
        events(&got, "a1"),
        vec![ev("except-r2", json!(2)), ev("local", json!(3))],
        "{got}"
    );
    assert_eq!(events(&got, "b1"), vec![ev("to-r2", json!(1))], "{got}");
    assert_eq!(events(&got, "c1"), vec![ev("except-r2", json!(2))], "{got}");

    // From Node: all, room, except, binary.
    d.cmd(json!({"cmd": "node-emit"})).await;
    d.cmd(json!({"cmd": "node-to-r2"})).await;
    d.cmd(json!({"cmd": "node-except-r2"})).await;
    d.cmd(json!({"cmd": "node-binary"})).await;
    let got = d.received(&[("a1", 3), ("b1", 3)]).await;
    let bin = json!({"bin": [7, 8, 9]});
    assert_eq!(
        events(&got, "a1"),
        vec![
            ev("from-node", json!("all")),
            ev("from-node-except", json!("x")),
            ev("from-node-bin", bin.clone())
        ],
        "{got}"
    );
    assert_eq!(
        events(&got, "b1"),
        vec![
            ev("from-node", json!("all")),
            ev("from-node-r2", json!("r2")),
            ev("from-node-bin", bin.clone())
        ],
        "{got}"
    );

    // Binary from Rust reaches the Node server's client as a Buffer.
    main2()
        .emit("from-rust-bin", &Binary::from(vec![1u8, 2]))
        .await
        .expect("emit");
    let got = d.received(&[("a1", 1), ("b1", 1), ("c1", 1)]).await;
    for c in ["a1", "b1", "c1"] {
        assert_eq!(
            events(&got, c),
            vec![ev("from-rust-bin", json!({"bin": [1, 2]}))],
            "{c}: {got}"
        );
    }

    // socket.broadcast() from a client on Rust 1: everyone else, on every server.
    d.cmd(json!({"cmd": "client-broadcast", "from": "a1"}))
        .await;
    let got = d.received(&[("b1", 1), ("c1", 1)]).await;
    assert!(events(&got, "a1").is_empty(), "{got}");
    for c in ["b1", "c1"] {
        assert_eq!(
            events(&got, c),
            vec![ev("from-client", json!("a1"))],
            "{c}: {got}"
        );
    }

    // The emitter.
    d.cmd(json!({"cmd": "emitter-all"})).await;
    d.cmd(json!({"cmd": "emitter-r2"})).await;
    let got = d.received(&[("a1", 1), ("b1", 2)]).await;
    assert_eq!(
        events(&got, "a1"),
        vec![ev("from-emitter", json!("all"))],
        "{got}"
    );
    assert_eq!(
        events(&got, "b1"),
        vec![
            ev("from-emitter", json!("all")),
            ev("from-emitter-r2", json!("r2"))
        ],
        "{got}"
    );

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
    d.received(&[]).await;

    // Server-side events with acks, both ways.
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

    // Joining rooms across the cluster, both ways, then a room list.
    d.cmd(json!({"cmd": "node-join-r3"})).await;
    let has_room = |room: &'static str| {
        let ns = main1();
        async move {
            ns.rooms()
                .await
                .is_ok_and(|rooms| rooms.iter().any(|r| r == room))
        }
    };
    common::wait_until(STEP_WAIT, "r3 is known to the cluster", || has_room("r3")).await;
    d.cmd(json!({"cmd": "node-to-r3"})).await;
    main2().within("r2").join("r4").await.expect("join");
    common::wait_until(STEP_WAIT, "r4 is known to the cluster", || has_room("r4")).await;
    main1()
        .to("r4")
        .emit("in-r4", &"b1 only")
        .await
        .expect("emit");
    let got = d.received(&[("a1", 1), ("b1", 2), ("c1", 1)]).await;
    assert_eq!(events(&got, "a1"), vec![ev("in-r3", json!("yes"))], "{got}");
    assert_eq!(
        events(&got, "b1"),
        vec![ev("in-r3", json!("yes")), ev("in-r4", json!("b1 only"))],
        "{got}"
    );
    assert_eq!(events(&got, "c1"), vec![ev("in-r3", json!("yes"))], "{got}");
    let rooms = main1().rooms().await.expect("rooms");
    for r in ["r1", "r2", "r3", "r4"] {
        assert!(rooms.iter().any(|x| x == r), "{r} missing from {rooms:?}");
    }
    assert_eq!(r1.io.server_count().await.expect("count"), 3);

    // Disconnecting a remote socket: b1 (on Rust 2) from Rust 1.
    let b1_id = ids["b1"].as_str().expect("id").to_owned();
    main1()
        .within(b1_id.as_str())
        .disconnect()
        .await
        .expect("disconnect");
    common::wait_until(STEP_WAIT, "b1 has left rust2", || {
        let gone = r2.io.sockets().iter().all(|s| s.id().as_str() != b1_id);
        async move { gone }
    })
    .await;
    // The Node process (the Node server and every client) dies: the Rust servers answer
    // fetch requests without it, at once.
    let _ = d.stdin.write_all(b"{\"cmd\":\"exit\"}\n").await;
    let _ = d._child.wait().await;
    // Its clients' connections to the Rust servers close with it; each server notices
    // when it next reads them, so wait for that, not for a fixed time.
    common::wait_until(STEP_WAIT, "the dead process's sockets are gone", || {
        let gone = r1.io.sockets().is_empty() && r2.io.sockets().is_empty();
        async move { gone }
    })
    .await;
    let started = std::time::Instant::now();
    let fetched = common::within(
        Duration::from_secs(5),
        "fetch without the dead node",
        main1().fetch_sockets(),
    )
    .await
    .expect("fetch after a node died");
    assert!(fetched.is_empty(), "sockets of a dead process: {fetched:?}");
    assert!(
        started.elapsed() < Duration::from_secs(4),
        "waited for the dead node"
    );
    assert_eq!(r1.io.server_count().await.expect("count"), 2);
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn survives_a_redis_restart() {
    let test = "survives_a_redis_restart";
    let Some(node) = common::node(test, "socket.io-client") else {
        return;
    };
    let port = 16_379 + (std::process::id() % 1000) as u16;
    let Some(mut redis) = private_redis(test, port).await else {
        return;
    };
    let url = format!("redis://127.0.0.1:{port}");
    let key = unique_key();
    let r1 = rust_node(&url, &key, "rust1").await;
    let r2 = rust_node(&url, &key, "rust2").await;
    // One client on rust 2 that reports what it gets.
    let script = common::clients_dir().join("cluster/listen.mjs");
    let mut child = tokio::process::Command::new(&node.bin)
        .arg(&script)
        .arg(r2.server.base_url())
        .current_dir(common::clients_dir())
        .env("NODE_PATH", &node.modules)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .kill_on_drop(true)
        .spawn()
        .expect("start node");
    let mut lines = BufReader::new(child.stdout.take().expect("stdout")).lines();
    let mut next = async || -> String {
        common::within(
            Duration::from_secs(15),
            "listener output",
            lines.next_line(),
        )
        .await
        .expect("read")
        .expect("listener ended")
    };
    assert_eq!(next().await, "READY");
    let main1 = || r1.io.of("/").expect("ns");
    main1()
        .emit("tick", &1)
        .await
        .expect("emit before the outage");
    assert_eq!(next().await, "tick 1");

    // Redis goes away: cluster emits fail clearly, the servers keep running.
    redis.kill().await.expect("kill redis");
    let _ = redis.wait().await;
    // Wait until the servers notice (a request, which has no side effect, fails).
    common::wait_until(STEP_WAIT, "the outage is noticed", || {
        let io = r1.io.clone();
        async move { io.server_count().await.is_err() }
    })
    .await;
    assert!(
        main1().emit("tick", &2).await.is_err(),
        "publish without redis must fail"
    );
    assert!(
        r1.io.server_count().await.is_err(),
        "a request without redis must fail"
    );
    assert_eq!(r2.io.sockets().len(), 1, "local sockets kept");

    // Redis is back: the link reconnects and resubscribes, cluster broadcasts resume.
    let _redis = private_redis(test, port).await.expect("restart redis");
    let mut delivered = false;
    for i in 3..60 {
        tokio::time::sleep(Duration::from_millis(250)).await;
        if main1().emit("tick", &i).await.is_ok() && r1.io.server_count().await.unwrap_or(0) == 2 {
            main1()
                .emit("tick", &1000)
                .await
                .expect("emit after recovery");
            delivered = true;
            break;
        }
    }
    assert!(delivered, "the cluster did not come back");
    loop {
        let line = next().await;
        if line == "tick 1000" {
            break;
        }
        assert!(line.starts_with("tick "), "{line}");
    }
}
