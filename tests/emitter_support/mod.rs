//! Shared by the emitter tests: calls written as data (the Node scripts replay the same
//! descriptions), applied to our emitter or to a Rust server node, and a mixed cluster
//! (a Rust node and a Node node of one adapter kind, `socket.io-client` sockets on both) in
//! which an emitter must act exactly as a server node does.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::process::Stdio;
use std::time::Duration;

use rmpv::Value as Mp;
use serde::Serialize;
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader, Lines};
use tokio::process::{Child, ChildStdin, ChildStdout};
use tower_socketio::adapter::AdapterFactory;
use tower_socketio::emitter::{Emitter, EmitterError};
use tower_socketio::{AckSender, Binary, Data, DataArgs, SocketIo, SocketRef};

use crate::common;

/// A call's arguments as the test wrote them (JSON, map keys in order, `{"$bin": [...]}` for
/// binary), serialized as a Rust caller would pass them.
pub struct Arg<'a>(pub &'a Mp);

impl Serialize for Arg<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::{SerializeMap, SerializeSeq};
        match self.0 {
            Mp::Map(entries) => {
                if let [(k, Mp::Array(bytes))] = entries.as_slice() {
                    if k.as_str() == Some("$bin") {
                        let bytes: Vec<u8> = bytes
                            .iter()
                            .map(|b| b.as_u64().unwrap_or(0) as u8)
                            .collect();
                        return Binary::from(bytes).serialize(s);
                    }
                }
                let mut m = s.serialize_map(Some(entries.len()))?;
                for (k, v) in entries {
                    m.serialize_entry(k.as_str().unwrap_or(""), &Arg(v))?;
                }
                m.end()
            }
            Mp::Array(items) => {
                let mut seq = s.serialize_seq(Some(items.len()))?;
                for v in items {
                    seq.serialize_element(&Arg(v))?;
                }
                seq.end()
            }
            Mp::Integer(i) => match i.as_u64() {
                Some(u) => s.serialize_u64(u),
                None => s.serialize_i64(i.as_i64().unwrap_or(0)),
            },
            Mp::F64(f) => s.serialize_f64(*f),
            Mp::String(v) => s.serialize_str(v.as_str().unwrap_or("")),
            Mp::Boolean(b) => s.serialize_bool(*b),
            _ => s.serialize_unit(),
        }
    }
}

pub fn field<'a>(v: &'a Mp, name: &str) -> Option<&'a Mp> {
    v.as_map()?
        .iter()
        .find(|(k, _)| k.as_str() == Some(name))
        .map(|(_, v)| v)
}

pub fn text<'a>(v: &'a Mp, name: &str) -> &'a str {
    field(v, name).and_then(Mp::as_str).unwrap_or("")
}

pub fn strings(v: &Mp) -> Vec<String> {
    match v {
        Mp::Array(items) => items
            .iter()
            .map(|r| r.as_str().unwrap_or("").to_owned())
            .collect(),
        other => vec![other.as_str().unwrap_or("").to_owned()],
    }
}

/// `to`/`except` steps: each one a room or a list of rooms, applied in order.
pub fn steps<'a>(call: &'a Mp, name: &str) -> &'a [Mp] {
    field(call, name)
        .and_then(Mp::as_array)
        .map_or(&[], Vec::as_slice)
}

/// Parses calls written as JSON text, keeping map keys in order.
pub fn parse_calls(calls: &str) -> Vec<Mp> {
    match serde_json::from_str::<Mp>(calls).expect("calls parse") {
        Mp::Array(items) => items,
        _ => panic!("calls must be an array"),
    }
}

/// Every kind of call, with arguments that exercise every msgpack width and JSON escape: what
/// the byte-for-byte tests replay on both sides.
pub fn every_call_kind() -> String {
    let long: String = "abcdefghij🎉".repeat(30);
    let array: Vec<u32> = (0..20).collect();
    let object: String = (0..20)
        .rev()
        .map(|i| format!("\"k{i}\":{i}"))
        .collect::<Vec<_>>()
        .join(",");
    let bin300: Vec<u32> = (0..300).map(|i| i % 256).collect();
    format!(
        r#"[
        {{"op":"emit","event":"plain","args":[]}},
        {{"op":"emit","event":"one","args":["hello"]}},
        {{"op":"emit","event":"multi","args":[1,"two",{{"zeta":[1,2.5,null,true],"alpha":"x"}},false,-3,-200,300,70000,-40000,4294967296,-4294967296,1.5,0.1,2.0]}},
        {{"op":"emit","event":"bin","args":[{{"$bin":[1,2,3]}},{{"file":{{"$bin":[255,0]}},"name":"f.bin"}}]}},
        {{"op":"emit","event":"big","args":["{long}",{array:?},{{{object}}},{{"$bin":{bin300:?}}}]}},
        {{"op":"emit","event":"ünï","args":["日本語 ✓","quote\" back\\ nl\n ctl\u0001 del\u007f \u2028"]}},
        {{"to":["r1"],"op":"emit","event":"room","args":[1]}},
        {{"to":[["r1","r2"]],"op":"emit","event":"rooms","args":[2]}},
        {{"to":["r1","r1"],"op":"emit","event":"dup","args":[3]}},
        {{"to":["r1"],"except":[["r2","r3"]],"op":"emit","event":"except","args":[4]}},
        {{"except":["r2"],"op":"emit","event":"except-only","args":[]}},
        {{"nsp":"/chat","op":"emit","event":"chat","args":["c"]}},
        {{"nsp":"admin","to":["x"],"op":"emit","event":"noslash","args":[]}},
        {{"op":"join","rooms":["r9"]}},
        {{"to":["r1"],"op":"join","rooms":["a","b"]}},
        {{"except":["x"],"op":"leave","rooms":["r1"]}},
        {{"op":"disconnect","close":false}},
        {{"to":["r1"],"except":["r2"],"op":"disconnect","close":true}},
        {{"nsp":"/chat","op":"sse","event":"hello","args":[1,{{"b":"c","a":[2,0.5]}}]}},
        {{"op":"sse","event":"esc","args":["quote\" back\\ nl\n ctl\u0001 del\u007f ü 🎉 \u2028"]}},
        {{"op":"sse","event":"bin","args":[{{"$bin":[1,2]}}]}}
    ]"#
    )
}

/// Applies a call to our emitter.
pub async fn emitter_call(root: &Emitter, call: &Mp) -> Result<(), EmitterError> {
    let nsp = field(call, "nsp").and_then(Mp::as_str).unwrap_or("/");
    let args = field(call, "args")
        .cloned()
        .unwrap_or(Mp::Array(Vec::new()));
    if text(call, "op") == "sse" {
        return root
            .of(nsp)
            .server_side_emit(text(call, "event"), &Arg(&args))
            .await;
    }
    let mut e = root.of(nsp);
    for r in steps(call, "to") {
        e = e.to(strings(r));
    }
    for r in steps(call, "except") {
        e = e.except(strings(r));
    }
    match text(call, "op") {
        "emit" => e.emit_args(text(call, "event"), &Arg(&args)).await,
        "join" => {
            e.sockets_join(strings(field(call, "rooms").expect("rooms")))
                .await
        }
        "leave" => {
            e.sockets_leave(strings(field(call, "rooms").expect("rooms")))
                .await
        }
        "disconnect" => {
            let close = field(call, "close").and_then(Mp::as_bool).unwrap_or(false);
            e.disconnect_sockets(close).await
        }
        op => panic!("unknown op {op}"),
    }
}

/// Applies a call to a Rust server node (its own operators, through our Redis adapter).
pub async fn server_call(io: &SocketIo, call: &Mp) {
    let nsp = field(call, "nsp").and_then(Mp::as_str).unwrap_or("/");
    let mut op = io.of(nsp).expect("namespace");
    for r in steps(call, "to") {
        op = op.to(strings(r));
    }
    for r in steps(call, "except") {
        op = op.except(strings(r));
    }
    let args = field(call, "args")
        .cloned()
        .unwrap_or(Mp::Array(Vec::new()));
    match text(call, "op") {
        "emit" => {
            op.emit_args(text(call, "event"), &Arg(&args))
                .await
                .expect("server emit");
        }
        "join" => op
            .join(strings(field(call, "rooms").expect("rooms")))
            .await
            .expect("server join"),
        "leave" => op
            .leave(strings(field(call, "rooms").expect("rooms")))
            .await
            .expect("server leave"),
        "disconnect" => {
            if field(call, "close").and_then(Mp::as_bool).unwrap_or(false) {
                op.disconnect_and_close().await.expect("server disconnect");
            } else {
                op.disconnect().await.expect("server disconnect");
            }
        }
        op => panic!("unknown op {op}"),
    }
}

/// A Rust server node: `/` and `/chat` with a `join` handler, server-side events recorded.
pub struct RustNode {
    pub io: SocketIo,
    pub server: common::TestServer,
    pub server_events: tokio::sync::mpsc::UnboundedReceiver<Value>,
    _keep: Box<dyn std::any::Any + Send>,
}

/// Starts a Rust node with this adapter; `ready` resolves when the adapter is subscribed
/// (before clients come), `keep` is whatever must live as long as the node (its link).
pub async fn rust_node<F: std::future::Future<Output = ()>>(
    factory: AdapterFactory,
    ready: impl FnOnce() -> F,
    keep: Box<dyn std::any::Any + Send>,
) -> RustNode {
    let (layer, io) = SocketIo::builder().adapter(factory).build_layer();
    for nsp in ["/", "/chat"] {
        io.ns(nsp, |socket: SocketRef| {
            socket.on(
                "join",
                |s: SocketRef, Data(room): Data<String>, ack: AckSender| {
                    s.join(room);
                    ack.send(&true).ok();
                },
            );
        });
    }
    let (tx, server_events) = tokio::sync::mpsc::unbounded_channel();
    for ev in ["hello", "job"] {
        let tx = tx.clone();
        io.on_server_event(ev, move |DataArgs(args): DataArgs<Vec<Value>>| {
            let mut all = vec![json!("/"), json!(ev)];
            all.extend(args);
            let _ = tx.send(Value::Array(all));
        });
    }
    ready().await;
    let server = common::serve_layer(layer).await;
    RustNode {
        io,
        server,
        server_events,
        _keep: keep,
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
}

const MAIN: &[&str] = &["a", "b", "c", "d", "e", "f", "g", "h"];
const CHAT: &[&str] = &["a_chat", "c_chat"];

/// Who did an operation: a server node (Rust or Node) or the emitter.
#[derive(Debug, Clone, Copy)]
enum Source {
    Rust,
    Node,
    Emitter,
}

struct Cluster {
    rust: RustNode,
    driver: Driver,
    emitter: Emitter,
    ids: Value,
    fences: usize,
}

impl Cluster {
    async fn run(&mut self, source: Source, call: &Mp) {
        match source {
            Source::Rust => server_call(&self.rust.io, call).await,
            Source::Emitter => emitter_call(&self.emitter, call).await.expect("emitter"),
            Source::Node => {
                let call: Value =
                    serde_json::from_str(&serde_json::to_string(call).expect("call json"))
                        .expect("call value");
                self.driver.cmd(json!({"cmd": "node", "call": call})).await;
            }
        }
    }

    /// Runs `call` from `source`, then a fence event from the same source to `clients` of
    /// `nsp`: what each client got before its fence (messages from one source arrive in
    /// order), fence excluded.
    async fn observe(&mut self, source: Source, call: &Mp, nsp: &str, clients: &[&str]) -> Value {
        self.run(source, call).await;
        self.fences += 1;
        let fence = format!("fence-{}", self.fences);
        // Binary, so that with the Postgres adapters it takes the same path (the attachments
        // table) as a binary call before it, and Node's adapter cannot let it overtake.
        let fence_call = parse_calls(&format!(
            r#"[{{"nsp":"{nsp}","op":"emit","event":"{fence}","args":[{{"$bin":[0]}}]}}]"#
        ));
        self.run(source, &fence_call[0]).await;
        let got = self
            .driver
            .cmd(json!({"cmd": "wait", "event": fence, "clients": clients}))
            .await;
        let mut received = got["received"].clone();
        for list in received.as_object_mut().expect("received").values_mut() {
            list.as_array_mut()
                .expect("events")
                .retain(|e| e[0] != json!(fence));
        }
        received
    }

    /// Rooms of every socket of `nsp`, cluster-wide, by client name.
    async fn rooms(&mut self, nsp: &str) -> BTreeMap<String, Vec<String>> {
        let got = self.driver.cmd(json!({"cmd": "fetch", "nsp": nsp})).await;
        let by_id = got["sockets"].as_object().expect("sockets").clone();
        let mut out = BTreeMap::new();
        for (name, id) in self.ids.as_object().expect("ids") {
            if let Some(rooms) = by_id.get(id.as_str().expect("id")) {
                let rooms: Vec<String> = rooms
                    .as_array()
                    .expect("rooms")
                    .iter()
                    .filter_map(|r| r.as_str())
                    .filter(|r| *r != id.as_str().unwrap_or(""))
                    .map(str::to_owned)
                    .collect();
                out.insert(name.clone(), rooms);
            }
        }
        out
    }

    fn id(&self, name: &str) -> String {
        self.ids[name].as_str().expect("id").to_owned()
    }
}

/// Names of the clients that received something.
fn receivers(received: &Value) -> Vec<String> {
    received
        .as_object()
        .expect("received")
        .iter()
        .filter(|(_, v)| !v.as_array().expect("events").is_empty())
        .map(|(k, _)| k.clone())
        .collect()
}

/// Drives a mixed cluster: `rust` and a Node server (`cluster.mjs` with the Node adapter
/// `adapter` names, e.g. `["redis", url, key]`), `socket.io-client` sockets on both. Every
/// operation of `emitter` must deliver what the same operation from either server node
/// delivers, and its joins, leaves and disconnects must act on both servers.
pub async fn mixed_cluster(
    node: &common::Node,
    adapter: &[String],
    rust: RustNode,
    emitter: Emitter,
) {
    let mut child = tokio::process::Command::new(&node.bin)
        .arg(common::clients_dir().join("emitter/cluster.mjs"))
        .arg(rust.server.base_url())
        .args(adapter)
        .current_dir(common::clients_dir())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .kill_on_drop(true)
        .spawn()
        .expect("start node");
    let mut driver = Driver {
        stdin: child.stdin.take().expect("stdin"),
        lines: BufReader::new(child.stdout.take().expect("stdout")).lines(),
        _child: child,
    };
    let ready = driver.read().await;
    assert_eq!(ready["ready"], json!(true), "{ready}");
    let mut c = Cluster {
        rust,
        driver,
        emitter,
        ids: ready["ids"].clone(),
        fences: 0,
    };

    // Emits: what the clients get from the emitter equals what they get when a server node,
    // Rust or Node, does the same.
    let cases: &[(&str, &[&str])] = &[
        (r#"{"op":"emit","event":"all","args":[]}"#, MAIN),
        (
            r#"{"op":"emit","event":"multi","args":[1,"two",{"z":1,"a":[true,null,2.5]},-7]}"#,
            MAIN,
        ),
        (
            r#"{"op":"emit","event":"bin","args":[{"$bin":[1,2,3]},{"name":"f","data":{"$bin":[0,255]}}]}"#,
            MAIN,
        ),
        (
            r#"{"to":["r2"],"op":"emit","event":"r2","args":["x"]}"#,
            &["b", "d"],
        ),
        (
            r#"{"to":[["r1","r2"]],"except":["r2"],"op":"emit","event":"r1-not-r2","args":["y"]}"#,
            &["a", "c"],
        ),
        (
            r#"{"nsp":"/chat","to":["r1"],"op":"emit","event":"chat","args":["z"]}"#,
            CHAT,
        ),
    ];
    for (text, expected) in cases {
        let call = &parse_calls(&format!("[{text}]"))[0];
        let nsp = field(call, "nsp").and_then(Mp::as_str).unwrap_or("/");
        let clients = if nsp == "/" { MAIN } else { CHAT };
        let from_emitter = c.observe(Source::Emitter, call, nsp, clients).await;
        let from_rust = c.observe(Source::Rust, call, nsp, clients).await;
        let from_node = c.observe(Source::Node, call, nsp, clients).await;
        assert_eq!(from_emitter, from_rust, "{text}: emitter vs Rust server");
        assert_eq!(from_emitter, from_node, "{text}: emitter vs Node server");
        assert_eq!(
            receivers(&from_emitter),
            *expected,
            "{text}: {from_emitter}"
        );
    }

    // Join and leave: the emitter's selection changes the same sockets' rooms, on both
    // servers, as a server node's does.
    let join = |room: &str| {
        parse_calls(&format!(
            r#"[{{"to":["r1"],"except":["r2"],"op":"join","rooms":["{room}"]}}]"#
        ))
    };
    let before = c.rooms("/").await;
    c.observe(Source::Emitter, &join("j-emitter")[0], "/", MAIN)
        .await;
    c.observe(Source::Rust, &join("j-rust")[0], "/", MAIN).await;
    c.observe(Source::Node, &join("j-node")[0], "/", MAIN).await;
    let after = c.rooms("/").await;
    let members = |rooms: &BTreeMap<String, Vec<String>>, room: &str| -> Vec<String> {
        rooms
            .iter()
            .filter(|(_, r)| r.iter().any(|x| x == room))
            .map(|(n, _)| n.clone())
            .collect()
    };
    assert_eq!(members(&after, "j-emitter"), ["a", "c"], "{after:?}");
    assert_eq!(members(&after, "j-emitter"), members(&after, "j-rust"));
    assert_eq!(members(&after, "j-emitter"), members(&after, "j-node"));
    assert!(members(&before, "j-emitter").is_empty());
    // An emit to the joined room reaches exactly them.
    let to_joined =
        &parse_calls(r#"[{"to":["j-emitter"],"op":"emit","event":"joined","args":[]}]"#)[0];
    let got = c.observe(Source::Emitter, to_joined, "/", MAIN).await;
    assert_eq!(receivers(&got), ["a", "c"], "{got}");
    let leave = |room: &str| {
        parse_calls(&format!(
            r#"[{{"to":["{room}"],"op":"leave","rooms":["{room}","r1"]}}]"#
        ))
    };
    c.observe(Source::Emitter, &leave("j-emitter")[0], "/", MAIN)
        .await;
    c.observe(Source::Rust, &leave("j-rust")[0], "/", MAIN)
        .await;
    c.observe(Source::Node, &leave("j-node")[0], "/", MAIN)
        .await;
    let left = c.rooms("/").await;
    for room in ["j-emitter", "j-rust", "j-node"] {
        assert!(
            members(&left, room).is_empty(),
            "{room} still has members: {left:?}"
        );
    }
    assert_eq!(left["a"], Vec::<String>::new(), "a left r1 too: {left:?}");
    assert_eq!(left["c"], Vec::<String>::new(), "c left r1 too: {left:?}");
    assert_eq!(left["b"], ["r1", "r2"], "{left:?}");

    // Server-side events reach the servers' handlers, Rust and Node, with the arguments a
    // server node's server-side emit carries.
    let sse = &parse_calls(r#"[{"op":"sse","event":"hello","args":[1,{"k":"v"}]}]"#)[0];
    c.run(Source::Emitter, sse).await;
    let rust_got = common::within(
        Duration::from_secs(10),
        "server-side event on the Rust node",
        c.rust.server_events.recv(),
    )
    .await
    .expect("event");
    let node_got = c
        .driver
        .cmd(json!({"cmd": "server-events", "count": 1}))
        .await;
    c.rust
        .io
        .server_side_emit("hello", &(json!(1), json!({"k": "v"})))
        .await
        .expect("server-side emit from the Rust node");
    let node_from_rust = c
        .driver
        .cmd(json!({"cmd": "server-events", "count": 1}))
        .await;
    assert_eq!(rust_got, json!(["/", "hello", 1, {"k": "v"}]));
    assert_eq!(node_got["events"], json!([rust_got]), "{node_got}");
    assert_eq!(node_from_rust["events"], node_got["events"]);

    // Disconnects: the emitter's victims (b on Rust, d on Node) see what a server node's
    // victims (g on Rust, h on Node, same polling transport) see; with `close`, e and f
    // against a and c.
    let victims = |ids: &[String], close: bool| {
        parse_calls(&format!(
            r#"[{{"to":[{ids:?}],"op":"disconnect","close":{close}}}]"#
        ))
    };
    for (close, by_emitter, by_server) in [
        (false, ["b", "d"], ["g", "h"]),
        (true, ["e", "f"], ["a", "c"]),
    ] {
        let ids = |names: [&str; 2]| names.map(|n| c.id(n)).to_vec();
        let (em, sv) = (ids(by_emitter), ids(by_server));
        c.run(Source::Emitter, &victims(&em, close)[0]).await;
        c.run(Source::Rust, &victims(&sv, close)[0]).await;
        let all: Vec<&str> = by_emitter.iter().chain(&by_server).copied().collect();
        let seen = c
            .driver
            .cmd(json!({"cmd": "wait", "event": "disconnect", "clients": all}))
            .await;
        let reason = |n: &str| {
            seen["received"][n]
                .as_array()
                .expect("events")
                .last()
                .cloned()
        };
        for (e, s) in by_emitter.iter().zip(&by_server) {
            assert_eq!(reason(e), reason(s), "close={close}: {e} vs {s}: {seen:?}");
            assert_eq!(reason(e).expect("reason")[0], json!("disconnect"));
        }
        let left = c.rooms("/").await;
        for n in by_emitter.iter().chain(&by_server) {
            assert!(!left.contains_key(*n), "{n} still connected: {left:?}");
        }
    }
    let left = c.rooms("/").await;
    assert!(left.is_empty(), "{left:?}");
    assert!(c.rust.io.of("/").expect("ns").sockets().is_empty());
    let _ = c.driver.stdin.write_all(b"{\"cmd\":\"exit\"}\n").await;
}
