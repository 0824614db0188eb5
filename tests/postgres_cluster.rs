//! The Postgres adapter in a mixed cluster: two Rust servers and one Node.js socket.io server
//! with `@socket.io/postgres-adapter`, on one real PostgreSQL, with `socket.io-client`
//! sockets on each, plus a `@socket.io/postgres-emitter`. Then faults: our database
//! connections cut under running servers, garbage on the channel, a killed node.
//!
//! Each test uses its own channel prefix and attachments table (the database is shared).
#![cfg(feature = "postgres")]

mod common;

use std::process::Stdio;
use std::time::Duration;

use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader, Lines};
use tokio::process::{Child, ChildStdin, ChildStdout};
use tower_socketio::adapter::postgres::{PostgresAdapterConfig, PostgresLink};
use tower_socketio::server_event::ServerAck;
use tower_socketio::{AckSender, Binary, Data, SocketData, SocketIo, SocketRef};

/// How long a condition may take to come true (a loaded 2-core machine, polling clients).
const WAIT: Duration = Duration::from_secs(15);

/// The PostgreSQL to use: `TSIO_POSTGRES_URL`, else the local default if it answers.
async fn pg_url(test: &str) -> Option<String> {
    let url = std::env::var("TSIO_POSTGRES_URL")
        .ok()
        .filter(|u| !u.is_empty())
        .unwrap_or_else(|| "postgres://postgres@127.0.0.1:5432/test".into());
    let config: tokio_postgres::Config = url.parse().expect("TSIO_POSTGRES_URL parses");
    match config.connect(tokio_postgres::NoTls).await {
        Ok((client, conn)) => {
            drop(client);
            drop(conn);
            Some(url)
        }
        Err(e) => common::missing_service(test, &format!("PostgreSQL at {url} ({e})")),
    }
}

/// A lower-case identifier unique to this test run.
fn unique(what: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    format!(
        "tsio_{what}_{:x}_{:x}",
        std::process::id(),
        nanos & 0xffff_ffff
    )
}

/// `url` with an `application_name`, so a test can find (and cut) a node's connections.
fn with_app(url: &str, app: &str) -> String {
    let sep = if url.contains('?') { '&' } else { '?' };
    format!("{url}{sep}application_name={app}")
}

/// This test's channel prefix and attachments table; the table is dropped at the end, pass
/// or fail.
struct Names {
    url: String,
    prefix: String,
    table: String,
}

impl Names {
    fn new(url: &str) -> Self {
        Self {
            url: url.to_owned(),
            prefix: unique("ch"),
            table: unique("att"),
        }
    }
}

impl Drop for Names {
    fn drop(&mut self) {
        let url = self.url.clone();
        let sql = format!("DROP TABLE IF EXISTS {}", self.table);
        // Drop runs inside the test's runtime: a thread of its own may block.
        let _ = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("runtime");
            rt.block_on(async move {
                if let Ok((client, conn)) = url
                    .parse::<tokio_postgres::Config>()
                    .expect("url")
                    .connect(tokio_postgres::NoTls)
                    .await
                {
                    tokio::spawn(conn);
                    let _ = client.batch_execute(&sql).await;
                }
            });
        })
        .join();
    }
}

struct RustNode {
    io: SocketIo,
    server: common::TestServer,
    notes: tokio::sync::mpsc::UnboundedReceiver<Vec<Value>>,
    _link: PostgresLink,
}

fn config(names: &Names) -> PostgresAdapterConfig {
    PostgresAdapterConfig {
        channel_prefix: names.prefix.clone(),
        table_name: names.table.clone(),
        heartbeat_interval: Duration::from_millis(500),
        heartbeat_timeout: Duration::from_secs(2),
        requests_timeout: Duration::from_secs(3),
        cleanup_interval: Duration::from_secs(2),
        ..PostgresAdapterConfig::default()
    }
}

async fn rust_node(url: &str, names: &Names, name: &'static str, app: &str) -> RustNode {
    let link = PostgresLink::connect(&with_app(url, app), config(names))
        .await
        .expect("connect to postgres");
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
    let (tx, notes) = tokio::sync::mpsc::unbounded_channel();
    io.on_server_event("note", move |Data(args): Data<Value>| {
        // One argument is itself, several an array.
        let _ = tx.send(match args {
            Value::Array(list) => list,
            Value::Null => Vec::new(),
            one => vec![one],
        });
    });
    link.wait_listening().await;
    let server = common::serve_layer(layer).await;
    RustNode {
        io,
        server,
        notes,
        _link: link,
    }
}

struct Driver {
    child: Child,
    stdin: ChildStdin,
    lines: Lines<BufReader<ChildStdout>>,
}

impl Driver {
    async fn start(
        node: &common::Node,
        url: &str,
        names: &Names,
        r1: &RustNode,
        r2: &RustNode,
    ) -> Self {
        let mut child = tokio::process::Command::new(&node.bin)
            .arg(common::clients_dir().join("postgres/cluster.mjs"))
            .args([
                url,
                &names.prefix,
                &names.table,
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
        Self {
            stdin: child.stdin.take().expect("stdin"),
            lines: BufReader::new(child.stdout.take().expect("stdout")).lines(),
            child,
        }
    }

    async fn read(&mut self) -> Value {
        let line = common::within(WAIT, "cluster script output", self.lines.next_line())
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

    /// What each client received since the last clear.
    async fn report(&mut self) -> Value {
        self.cmd(json!({"cmd": "report"})).await["received"].clone()
    }

    /// Waits until every client in `want` got exactly as many events as listed, then
    /// returns what they got and clears it. Events from Node servers may come in any order
    /// (Node's adapter does not keep them), so callers compare sorted lists there.
    async fn collect(&mut self, want: &[(&str, usize)]) -> Value {
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            let got = self.report().await;
            if want.iter().all(|(c, n)| events(&got, c).len() >= *n) {
                for (c, n) in want {
                    assert_eq!(events(&got, c).len(), *n, "{c} got too much: {got}");
                }
                self.cmd(json!({"cmd": "clear"})).await;
                return got;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "timed out waiting for {want:?}: {got}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    async fn node_count(&mut self) -> u64 {
        self.cmd(json!({"cmd": "node-count"})).await["count"]
            .as_u64()
            .expect("count")
    }
}

fn events(received: &Value, client: &str) -> Vec<Value> {
    received[client].as_array().cloned().unwrap_or_default()
}

fn sorted(mut v: Vec<Value>) -> Vec<Value> {
    v.sort_by_key(|e| e.to_string());
    v
}

fn ev(name: &str, arg: Value) -> Value {
    json!([name, arg])
}

/// Polls `f` until it returns `Some`, failing after [`WAIT`].
async fn until<T>(what: &str, mut f: impl AsyncFnMut() -> Option<T>) -> T {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        if let Some(v) = f().await {
            return v;
        }
        assert!(tokio::time::Instant::now() < deadline, "timed out: {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Waits until both Rust nodes and the Node node count three servers.
async fn wait_for_three(r1: &RustNode, r2: &RustNode, d: &mut Driver) {
    until("every Rust node counts 3 servers", async || {
        let a = r1.io.server_count().await.ok()?;
        let b = r2.io.server_count().await.ok()?;
        (a == 3 && b == 3).then_some(())
    })
    .await;
    let deadline = tokio::time::Instant::now() + WAIT;
    while d.node_count().await != 3 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the Node node does not count 3 servers"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn admin(url: &str) -> tokio_postgres::Client {
    let config: tokio_postgres::Config = url.parse().expect("url");
    let (client, conn) = config
        .connect(tokio_postgres::NoTls)
        .await
        .expect("admin connection");
    tokio::spawn(conn);
    client
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mixed_cluster_with_node() {
    let test = "postgres mixed_cluster_with_node";
    let Some(url) = pg_url(test).await else {
        return;
    };
    let Some(node) = common::node(test, "@socket.io/postgres-adapter") else {
        return;
    };
    let names = Names::new(&url);
    let r1 = rust_node(&url, &names, "rust1", &unique("app")).await;
    let mut r2 = rust_node(&url, &names, "rust2", &unique("app")).await;
    let mut d = Driver::start(&node, &url, &names, &r1, &r2).await;
    let ready = d.read().await;
    assert_eq!(ready["ready"], json!(true), "{ready}");
    let ids = ready["ids"].clone();
    wait_for_three(&r1, &r2, &mut d).await;
    let main1 = || r1.io.of("/").expect("ns");
    let main2 = || r2.io.of("/").expect("ns");

    // A Rust io.emit reaches every socket on every server, once.
    assert_eq!(main1().emit("from-rust", &"all").await.expect("emit"), 1);
    let got = d.collect(&[("a1", 1), ("b1", 1), ("c1", 1)]).await;
    for c in ["a1", "b1", "c1"] {
        assert_eq!(
            events(&got, c),
            vec![ev("from-rust", json!("all"))],
            "{c}: {got}"
        );
    }

    // Rooms, except, local, from Rust; then a fence from the same sender: what came
    // before it has arrived.
    main2().to("r2").emit("to-r2", &1).await.expect("emit");
    main1()
        .except("r2")
        .emit("except-r2", &2)
        .await
        .expect("emit");
    main1().local().emit("local", &3).await.expect("emit");
    main1().emit("fence", &0).await.expect("emit");
    let got = d.collect(&[("a1", 3), ("b1", 2), ("c1", 2)]).await;
    assert_eq!(
        events(&got, "a1"),
        vec![
            ev("except-r2", json!(2)),
            ev("local", json!(3)),
            ev("fence", json!(0))
        ],
        "{got}"
    );
    assert_eq!(
        sorted(events(&got, "b1")),
        sorted(vec![ev("to-r2", json!(1)), ev("fence", json!(0))]),
        "{got}"
    );
    assert_eq!(
        events(&got, "c1"),
        vec![ev("except-r2", json!(2)), ev("fence", json!(0))],
        "{got}"
    );

    // From Node: all, room, except, binary, a payload over the NOTIFY threshold.
    d.cmd(json!({"cmd": "node-emit"})).await;
    d.cmd(json!({"cmd": "node-to-r2"})).await;
    d.cmd(json!({"cmd": "node-except-r2"})).await;
    d.cmd(json!({"cmd": "node-binary"})).await;
    d.cmd(json!({"cmd": "node-big"})).await;
    let got = d.collect(&[("a1", 4), ("b1", 4), ("c1", 4)]).await;
    let bin = json!({"bin": [7, 8, 9]});
    let big = json!({"long": 9000, "head": "nnnnnnnnnn"});
    assert_eq!(
        sorted(events(&got, "a1")),
        sorted(vec![
            ev("from-node", json!("all")),
            ev("from-node-except", json!("x")),
            ev("from-node-bin", bin.clone()),
            ev("from-node-big", big.clone()),
        ]),
        "{got}"
    );
    assert_eq!(
        sorted(events(&got, "b1")),
        sorted(vec![
            ev("from-node", json!("all")),
            ev("from-node-r2", json!("r2")),
            ev("from-node-bin", bin.clone()),
            ev("from-node-big", big.clone()),
        ]),
        "{got}"
    );

    // Binary and a long payload from Rust reach the Node server's client too.
    main2()
        .emit("from-rust-bin", &Binary::from(vec![1u8, 2]))
        .await
        .expect("emit");
    main2()
        .emit("from-rust-big", &"r".repeat(9000))
        .await
        .expect("emit");
    let got = d.collect(&[("a1", 2), ("b1", 2), ("c1", 2)]).await;
    for c in ["a1", "b1", "c1"] {
        assert_eq!(
            sorted(events(&got, c)),
            sorted(vec![
                ev("from-rust-bin", json!({"bin": [1, 2]})),
                ev("from-rust-big", json!({"long": 9000, "head": "rrrrrrrrrr"})),
            ]),
            "{c}: {got}"
        );
    }

    // One sender's broadcasts keep their order, inline and attached ones mixed, even when
    // emitted without waiting for each other.
    let sequence: Vec<_> = (0..30u32)
        .map(|i| {
            let op = main1();
            async move {
                if i % 5 == 2 {
                    op.emit_args("seq", &(i, Binary::from(vec![i as u8]))).await
                } else if i % 7 == 3 {
                    op.emit_args("seq", &(i, "s".repeat(8500))).await
                } else {
                    op.emit_args("seq", &(i,)).await
                }
            }
        })
        .collect();
    for r in futures_util::future::join_all(sequence).await {
        r.expect("emit in sequence");
    }
    let got = d.collect(&[("a1", 30), ("b1", 30), ("c1", 30)]).await;
    let order = |c: &str| -> Vec<u64> {
        events(&got, c)
            .iter()
            .map(|e| e[1].as_u64().expect("seq number"))
            .collect()
    };
    let want: Vec<u64> = (0..30).collect();
    let mut local = order("a1");
    assert_eq!(order("b1"), local, "order through PostgreSQL, Rust to Rust");
    local.sort_unstable();
    assert_eq!(local, want);
    let mut at_node = order("c1");
    at_node.sort_unstable();
    assert_eq!(at_node, want, "everything reached the Node server");

    // socket.broadcast() from a client on Rust 1: everyone else, on every server.
    d.cmd(json!({"cmd": "client-broadcast", "from": "a1"}))
        .await;
    let got = d.collect(&[("a1", 0), ("b1", 1), ("c1", 1)]).await;
    for c in ["b1", "c1"] {
        assert_eq!(
            events(&got, c),
            vec![ev("from-client", json!("a1"))],
            "{c}: {got}"
        );
    }

    // The emitter (no `nsp` in its messages): plain, room, binary, long.
    d.cmd(json!({"cmd": "emitter-all"})).await;
    d.cmd(json!({"cmd": "emitter-r2"})).await;
    d.cmd(json!({"cmd": "emitter-binary"})).await;
    d.cmd(json!({"cmd": "emitter-big"})).await;
    let got = d.collect(&[("a1", 3), ("b1", 4)]).await;
    let emitted = vec![
        ev("from-emitter", json!("all")),
        ev("from-emitter-bin", json!({"bin": [4, 5]})),
        ev(
            "from-emitter-big",
            json!({"long": 9000, "head": "eeeeeeeeee"}),
        ),
    ];
    assert_eq!(sorted(events(&got, "a1")), sorted(emitted.clone()), "{got}");
    let mut for_b1 = emitted;
    for_b1.push(ev("from-emitter-r2", json!("r2")));
    assert_eq!(sorted(events(&got, "b1")), sorted(for_b1), "{got}");
    // Node's adapter drops them: the Node server's client got none (checked again below,
    // when everything later has arrived).
    assert!(events(&got, "c1").is_empty(), "{got}");

    // Server-side events without ack: Node -> Rust, emitter -> Rust, Rust -> Node.
    d.cmd(json!({"cmd": "node-note"})).await;
    d.cmd(json!({"cmd": "emitter-note"})).await;
    for _ in 0..2 {
        let args = common::within(WAIT, "server-side event on rust2", r2.notes.recv())
            .await
            .expect("notes");
        assert!(
            args == vec![json!("from node"), json!(1)] || args == vec![json!("from emitter")],
            "{args:?}"
        );
    }
    r1.io
        .server_side_emit("note", &("from rust1",))
        .await
        .expect("server-side emit");
    until(
        "the Node server got rust1's server-side event",
        async || {
            let got = d.cmd(json!({"cmd": "server-events"})).await;
            got["serverEvents"]
                .as_array()?
                .contains(&json!(["from rust1"]))
                .then_some(())
        },
    )
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

    // Broadcast with acks across the cluster, both ways.
    let acks = main1()
        .timeout(Duration::from_secs(3))
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
    d.collect(&[("a1", 2), ("b1", 2), ("c1", 2)]).await;

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

    // Joining and leaving rooms across the cluster, from Node, Rust and the emitter.
    d.cmd(json!({"cmd": "node-join-r3"})).await;
    main2().within("r2").join("r4").await.expect("join");
    d.cmd(json!({"cmd": "emitter-join", "room": ids["c1"], "join": "r5"}))
        .await;
    until("r3 joined everywhere, r4 by b1", async || {
        let rooms = main1().rooms().await.ok()?;
        ["r3", "r4"]
            .iter()
            .all(|r| rooms.iter().any(|x| x == r))
            .then_some(())
    })
    .await;
    until("rust sockets in r3", async || {
        (r1.io.of("/")?.within("r3").sockets().len() == 1
            && r2.io.of("/")?.within("r3").sockets().len() == 1)
            .then_some(())
    })
    .await;
    d.cmd(json!({"cmd": "node-leave-r3"})).await;
    until("b1 left r3", async || {
        r2.io
            .of("/")?
            .within("r3")
            .sockets()
            .is_empty()
            .then_some(())
    })
    .await;
    d.cmd(json!({"cmd": "node-to-r3"})).await;
    main1()
        .to("r4")
        .emit("in-r4", &"b1 only")
        .await
        .expect("emit");
    let got = d.collect(&[("a1", 1), ("b1", 1), ("c1", 1)]).await;
    assert_eq!(events(&got, "a1"), vec![ev("in-r3", json!("yes"))], "{got}");
    assert_eq!(
        events(&got, "b1"),
        vec![ev("in-r4", json!("b1 only"))],
        "{got}"
    );
    assert_eq!(events(&got, "c1"), vec![ev("in-r3", json!("yes"))], "{got}");
    // The emitter's join has no `nsp`: Node drops it, so c1 never joined r5.
    let rooms = main1().rooms().await.expect("rooms");
    for r in ["r1", "r2", "r3", "r4"] {
        assert!(rooms.iter().any(|x| x == r), "{r} missing from {rooms:?}");
    }
    assert!(!rooms.iter().any(|x| x == "r5"), "{rooms:?}");
    assert_eq!(r1.io.server_count().await.expect("count"), 3);

    // Garbage on the channel and in the table is skipped; the cluster goes on.
    d.cmd(json!({"cmd": "garbage"})).await;
    main2().emit("after-garbage", &1).await.expect("emit");
    d.cmd(json!({"cmd": "node-emit", "ev": "after-garbage", "arg": 2}))
        .await;
    let got = d.collect(&[("a1", 2), ("b1", 2), ("c1", 2)]).await;
    for c in ["a1", "b1", "c1"] {
        assert_eq!(
            sorted(events(&got, c)),
            vec![ev("after-garbage", json!(1)), ev("after-garbage", json!(2))],
            "{c}: {got}"
        );
    }

    // The attachments table does not grow without bound: rows older than the cleanup
    // interval are deleted by the Rust nodes (Node's cleanup runs every 30 s only).
    until("old attachments deleted", async || {
        let rows = d.cmd(json!({"cmd": "rows"})).await["rows"].as_u64()?;
        (rows == 0).then_some(())
    })
    .await;

    // Disconnecting a remote socket: b1 (on Rust 2) from Rust 1, then one on Rust 1 from
    // Node.
    let b1_id = ids["b1"].as_str().expect("id").to_owned();
    main1()
        .within(b1_id.as_str())
        .disconnect()
        .await
        .expect("disconnect");
    d.cmd(json!({"cmd": "node-disconnect", "room": ids["a1"]}))
        .await;
    let got = d.collect(&[("a1", 1), ("b1", 1)]).await;
    assert_eq!(
        events(&got, "a1"),
        vec![json!(["#disconnect", "io server disconnect"])]
    );
    assert_eq!(
        events(&got, "b1"),
        vec![json!(["#disconnect", "io server disconnect"])]
    );
    assert!(r1.io.sockets().is_empty() && r2.io.sockets().is_empty());

    // The Node process dies without a word: the Rust nodes drop it after the heartbeat
    // timeout, and fetch without waiting for it.
    d.child.kill().await.expect("kill node");
    until("the dead node is dropped", async || {
        (r1.io.server_count().await.ok()? == 2).then_some(())
    })
    .await;
    let started = std::time::Instant::now();
    let fetched = main1()
        .fetch_sockets()
        .await
        .expect("fetch after a node died");
    assert!(fetched.is_empty(), "sockets of a dead process: {fetched:?}");
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "waited for the dead node"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn survives_dropped_database_connections() {
    let test = "postgres survives_dropped_database_connections";
    let Some(url) = pg_url(test).await else {
        return;
    };
    let Some(node) = common::node(test, "@socket.io/postgres-adapter") else {
        return;
    };
    let names = Names::new(&url);
    let app1 = unique("app");
    let r1 = rust_node(&url, &names, "rust1", &app1).await;
    let r2 = rust_node(&url, &names, "rust2", &unique("app")).await;
    let mut d = Driver::start(&node, &url, &names, &r1, &r2).await;
    let ready = d.read().await;
    assert_eq!(ready["ready"], json!(true), "{ready}");
    wait_for_three(&r1, &r2, &mut d).await;

    // Cut both of rust1's connections (listening and publishing), as an outage or a
    // restart would.
    let admin = admin(&url).await;
    let cut = admin
        .query(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = $1",
            &[&app1],
        )
        .await
        .expect("terminate");
    assert_eq!(cut.len(), 2, "rust1 holds two connections");

    // rust1 comes back by itself: what Node emits reaches rust1's client, what rust1 emits
    // reaches Node's client.
    let main1 = || r1.io.of("/").expect("ns");
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let _ = main1().emit("probe-rust", &1).await;
        d.cmd(json!({"cmd": "node-emit", "ev": "probe-node", "arg": 1}))
            .await;
        let got = d.report().await;
        d.cmd(json!({"cmd": "clear"})).await;
        let has = |c: &str, e: &str| events(&got, c).iter().any(|x| x[0] == e);
        for c in ["a1", "b1", "c1"] {
            assert!(!has(c, "#disconnect"), "{c} was disconnected: {got}");
        }
        if has("c1", "probe-rust") && has("a1", "probe-node") {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "rust1 did not come back; last round: {got}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(
        admin
            .query(
                "SELECT 1 FROM pg_stat_activity WHERE application_name = $1",
                &[&app1]
            )
            .await
            .expect("activity")
            .len(),
        2,
        "rust1 reconnected both connections"
    );

    // No client noticed.
    let connected = d.cmd(json!({"cmd": "connected"})).await;
    assert_eq!(
        connected["connected"],
        json!({"a1": true, "b1": true, "c1": true})
    );
    let got = d.report().await;
    for c in ["a1", "b1", "c1"] {
        assert!(
            events(&got, c).iter().all(|e| e[0] != "#disconnect"),
            "{c} was disconnected: {got}"
        );
    }
    assert_eq!(r1.io.sockets().len(), 1);
    // And the whole cluster is known again.
    until("rust1 counts 3 servers again", async || {
        (r1.io.server_count().await.ok()? == 3).then_some(())
    })
    .await;
    let fetched = main1()
        .fetch_sockets()
        .await
        .expect("fetch after reconnecting");
    assert_eq!(fetched.len(), 3, "{fetched:?}");
}

/// A PostgreSQL server of this test's own (initdb in a temporary directory, its own port),
/// so that it can be stopped and started again. As root it runs as the `postgres` user.
struct PrivatePg {
    bin: std::path::PathBuf,
    dir: std::path::PathBuf,
    port: u16,
    as_root: bool,
    child: Option<Child>,
}

impl PrivatePg {
    async fn new(test: &str, port: u16) -> Option<Self> {
        let mut bins: Vec<std::path::PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
            .map(|d| d.flatten().map(|e| e.path().join("bin")).collect())
            .unwrap_or_default();
        bins.retain(|b| b.join("initdb").is_file() && b.join("postgres").is_file());
        bins.sort();
        let Some(bin) = bins.pop() else {
            return common::missing_service(
                test,
                "PostgreSQL server binaries (/usr/lib/postgresql/*/bin)",
            );
        };
        let as_root = std::process::Command::new("id")
            .arg("-u")
            .output()
            .is_ok_and(|o| o.stdout.starts_with(b"0\n"));
        let dir = std::env::temp_dir().join(format!("tsio-pg-{port}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("data dir");
        let mut pg = Self {
            bin,
            dir,
            port,
            as_root,
            child: None,
        };
        if as_root {
            let ok = std::process::Command::new("chown")
                .args(["postgres:", pg.dir.to_str().expect("utf-8")])
                .status()
                .is_ok_and(|s| s.success());
            assert!(ok, "chown the data dir to postgres");
        }
        let data = pg.dir.join("data");
        let status = pg
            .command("initdb")
            .args([
                "-D",
                data.to_str().expect("utf-8"),
                "-U",
                "postgres",
                "--auth=trust",
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .status()
            .await
            .expect("run initdb");
        assert!(status.success(), "initdb failed");
        pg.start().await;
        Some(pg)
    }

    /// A server binary, run as `postgres` when we are root (initdb and postgres refuse root).
    fn command(&self, program: &str) -> tokio::process::Command {
        let path = self.bin.join(program);
        if self.as_root {
            let mut c = tokio::process::Command::new("setpriv");
            c.args(["--reuid=postgres", "--regid=postgres", "--init-groups"])
                .arg(path);
            c
        } else {
            tokio::process::Command::new(path)
        }
    }

    fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }

    async fn start(&mut self) {
        let data = self.dir.join("data");
        let child = self
            .command("postgres")
            .args(["-D", data.to_str().expect("utf-8")])
            .args(["-p", &self.port.to_string()])
            .args(["-k", self.dir.to_str().expect("utf-8")])
            .args(["-c", "listen_addresses=127.0.0.1", "-c", "fsync=off"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .expect("start postgres");
        self.child = Some(child);
        let url = self.url();
        until("the private PostgreSQL accepts connections", async || {
            let config: tokio_postgres::Config = url.parse().ok()?;
            config.connect(tokio_postgres::NoTls).await.ok().map(drop)
        })
        .await;
    }

    /// A fast shutdown (SIGINT): every session is ended, as in a restart.
    async fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            if let Some(pid) = child.id() {
                let _ = std::process::Command::new("kill")
                    .args(["-INT", &pid.to_string()])
                    .status();
            }
            let _ = common::within(WAIT, "postgres shutdown", child.wait()).await;
        }
    }
}

impl Drop for PrivatePg {
    fn drop(&mut self) {
        if let Some(pid) = self.child.as_ref().and_then(Child::id) {
            let _ = std::process::Command::new("kill")
                .args(["-INT", &pid.to_string()])
                .status();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn survives_a_postgres_restart() {
    let test = "postgres survives_a_postgres_restart";
    let Some(node) = common::node(test, "socket.io-client") else {
        return;
    };
    let port = 25_432 + (std::process::id() % 1000) as u16;
    let Some(mut pg) = PrivatePg::new(test, port).await else {
        return;
    };
    let url = pg.url();
    let names = Names::new(&url);
    let r1 = rust_node(&url, &names, "rust1", &unique("app")).await;
    let r2 = rust_node(&url, &names, "rust2", &unique("app")).await;
    until("both Rust nodes see each other", async || {
        (r1.io.server_count().await.ok()? == 2).then_some(())
    })
    .await;
    // One client on rust 2 that reports what it gets (and prints READY on every connect).
    let mut child = tokio::process::Command::new(&node.bin)
        .arg(common::clients_dir().join("cluster/listen.mjs"))
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
        common::within(WAIT, "listener output", lines.next_line())
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

    // PostgreSQL goes away: cluster emits fail clearly, local sockets stay.
    pg.stop().await;
    until("a publish without PostgreSQL fails", async || {
        main1().emit("tick", &2).await.is_err().then_some(())
    })
    .await;
    assert_eq!(r2.io.sockets().len(), 1, "local sockets kept");

    // PostgreSQL is back: both connections come back by themselves, broadcasts resume, and
    // the nodes know each other again.
    pg.start().await;
    // Until rust2 listens again, what rust1 publishes is lost (NOTIFY is not queued for
    // a closed session): emit until one arrives.
    let deadline = tokio::time::Instant::now() + WAIT;
    for n in 3.. {
        assert!(
            tokio::time::Instant::now() < deadline,
            "broadcasts do not cross the cluster again"
        );
        if main1().emit("tick", &n).await.is_err() {
            tokio::time::sleep(Duration::from_millis(100)).await;
            continue;
        }
        // Lines::next_line is cancel-safe: a line that comes later is read below.
        if let Ok(line) = tokio::time::timeout(Duration::from_millis(500), next()).await {
            assert!(line.starts_with("tick "), "the client reconnected: {line}");
            break;
        }
    }
    main1()
        .emit("tick", &1000)
        .await
        .expect("emit after recovery");
    loop {
        let line = next().await;
        assert!(line.starts_with("tick "), "the client reconnected: {line}");
        if line == "tick 1000" {
            break;
        }
    }
    // A request waits for every node it knows; until rust2 listens again it cannot answer,
    // so the first fetches may time out. Then they work again.
    until("fetch across the cluster works again", async || {
        let sockets = main1().fetch_sockets().await.ok()?;
        (sockets.len() == 1).then_some(())
    })
    .await;
    assert_eq!(r1.io.server_count().await.expect("count"), 2);
}
