//! Rooms and broadcasting (issue #4) against real `socket.io-client` sockets from Node,
//! polling-only and websocket-only sockets mixed in every test.
//!
//! The Node side is `tests/clients/rooms/driver.mjs`: it opens sockets on command, records
//! every event each one receives, and reports them; the server side broadcasts through
//! `SocketIo` and the operators, then every test fences with a last broadcast to everyone and
//! checks exactly who got what, exactly once, in order.
//!
//! Without node and socket.io-client these tests print a loud skip notice and pass, unless
//! `TSIO_REQUIRE_SERVICES=1`, where they fail.

mod common;
mod rooms_support;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::time::Duration;

use base64::Engine as _;
use serde::Serialize;
use serde_json::{Value, json};
use tower_socketio::{AckError, Binary, DisconnectReason, SocketIo};

use rooms_support::{Driver, Lifecycle, room_server, socket_of};

const CLIENT: &str = "socket.io-client";

fn set<I: IntoIterator<Item = S>, S: Into<String>>(it: I) -> BTreeSet<String> {
    it.into_iter().map(Into::into).collect()
}

async fn ns_rooms(io: &SocketIo, ns: &str) -> BTreeSet<String> {
    io.of(ns)
        .expect("namespace")
        .rooms()
        .await
        .expect("rooms")
        .into_iter()
        .map(|r| r.into_owned())
        .collect()
}

async fn next_life(rx: &mut tokio::sync::mpsc::UnboundedReceiver<Lifecycle>) -> Lifecycle {
    common::step("lifecycle handler", rx.recv())
        .await
        .expect("lifecycle channel open")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rooms_join_leave_and_cleanup_on_disconnect() {
    let Some(node) = common::node("rooms_join_leave_and_cleanup_on_disconnect", CLIENT) else {
        return;
    };
    let (server, io, mut life) = room_server(SocketIo::builder()).await;
    let mut d = Driver::start(&node, "driver.mjs", &[&server.base_url()]).await;
    let a = d.open("a", "polling", "/").await;
    let b = d.open("b", "websocket", "/").await;
    let c = d.open("c", "websocket", "/").await;

    // A fresh socket is in its own room only.
    assert_eq!(d.emit_ack("a", "rooms", json!([])).await, json!([a]));
    assert!(
        ns_rooms(&io, "/").await.is_empty(),
        "id rooms are not listed"
    );

    let rooms = d.join("a", &["r1", "r2"]).await;
    assert_eq!(rooms[0], a, "own id first: {rooms:?}");
    assert_eq!(set(rooms.clone()), set([a.as_str(), "r1", "r2"]));
    // Joining twice, or joining one's own id, changes nothing.
    let again = d.join("a", &["r1", a.as_str()]).await;
    assert_eq!(set(again.clone()), set(rooms.clone()));
    assert_eq!(again.len(), 3, "no duplicate rooms: {again:?}");
    // The server-side view agrees.
    let sa = socket_of(&io, "/", &a);
    assert_eq!(set(rooms_support::room_names(&sa)), set(rooms));

    let rooms = d.leave("a", &["r1", "never-joined"]).await;
    assert_eq!(set(rooms), set([a.as_str(), "r2"]));
    d.join("b", &["r2", "r3"]).await;
    d.join("c", &["r4"]).await;
    assert_eq!(ns_rooms(&io, "/").await, set(["r2", "r3", "r4"]));

    // The client leaves: `disconnecting` still sees its rooms, `disconnect` sees none.
    d.close("a").await;
    let l = next_life(&mut life).await;
    assert_eq!(
        (l.0.as_str(), l.1, l.2),
        (
            a.as_str(),
            "disconnecting",
            DisconnectReason::ClientNamespaceDisconnect
        )
    );
    assert_eq!(set(l.3), set([a.as_str(), "r2"]));
    let l = next_life(&mut life).await;
    assert_eq!((l.0.as_str(), l.1), (a.as_str(), "disconnect"));
    assert!(l.3.is_empty(), "rooms after leaving: {:?}", l.3);
    assert_eq!(
        ns_rooms(&io, "/").await,
        set(["r2", "r3", "r4"]),
        "b keeps r2"
    );

    // The server disconnects b: same order, and the client hears "io server disconnect".
    socket_of(&io, "/", &b).disconnect();
    let l = next_life(&mut life).await;
    assert_eq!(
        (l.0.as_str(), l.1, l.2),
        (
            b.as_str(),
            "disconnecting",
            DisconnectReason::ServerNamespaceDisconnect
        )
    );
    assert_eq!(set(l.3), set([b.as_str(), "r2", "r3"]));
    let l = next_life(&mut life).await;
    assert_eq!((l.0.as_str(), l.1), (b.as_str(), "disconnect"));
    assert!(l.3.is_empty());
    let reasons = d.wait_disconnect(&["b"]).await;
    assert_eq!(reasons["b"], "io server disconnect");
    assert_eq!(ns_rooms(&io, "/").await, set(["r4"]));

    // The connection of c drops (the whole driver exits): its rooms go too.
    d.exit().await;
    let l = next_life(&mut life).await;
    assert_eq!((l.0.as_str(), l.1), (c.as_str(), "disconnecting"));
    assert_eq!(set(l.3), set([c.as_str(), "r4"]));
    let l = next_life(&mut life).await;
    assert_eq!((l.0.as_str(), l.1), (c.as_str(), "disconnect"));
    assert!(ns_rooms(&io, "/").await.is_empty());
    assert!(io.sockets().is_empty());
}

/// One broadcast of the operators test: what it did, how many it should reach, and who.
struct Case {
    n: u64,
    label: &'static str,
    reached: usize,
    expect: &'static [&'static str],
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rooms_operators_reach_exactly_the_right_sockets() {
    let Some(node) = common::node("rooms_operators_reach_exactly_the_right_sockets", CLIENT) else {
        return;
    };
    let (server, io, _life) = room_server(SocketIo::builder()).await;
    let mut d = Driver::start(&node, "driver.mjs", &[&server.base_url()]).await;
    // Namespace "/": p* poll, w* use WebSocket. "/other" has sockets in rooms of the same
    // names, which no broadcast in "/" may reach.
    let main = ["p1", "w1", "p2", "w2", "p3"];
    for name in main {
        let t = if name.starts_with('p') {
            "polling"
        } else {
            "websocket"
        };
        d.open(name, t, "/").await;
    }
    d.open("o1", "polling", "/other").await;
    d.open("o2", "websocket", "/other").await;
    d.join("p1", &["A"]).await;
    d.join("w1", &["A", "B"]).await;
    d.join("p2", &["B"]).await;
    d.join("w2", &["C"]).await;
    d.join("o1", &["A", "B", "C"]).await;
    let sid = d.sids.clone();
    let (p1, w1) = (
        socket_of(&io, "/", &sid["p1"]),
        socket_of(&io, "/", &sid["w1"]),
    );
    let root = || io.of("/").expect("/");

    let mut cases = Vec::new();
    let mut n = 0;
    macro_rules! case {
        ($label:expr, $expect:expr, $op:expr) => {{
            n += 1;
            let reached = $op
                .emit("m", &json!({ "n": n, "label": $label }))
                .await
                .expect($label);
            cases.push(Case { n, label: $label, reached, expect: $expect });
        }};
    }
    case!("io.to(A)", &["p1", "w1"], io.to("A").unwrap());
    case!(
        "io.to([A, B])",
        &["p1", "w1", "p2"],
        io.to(["A", "B"]).unwrap()
    );
    case!("io.to(A).to(A)", &["p1", "w1"], io.to("A").unwrap().to("A"));
    case!(
        "io.to([A, sid(p1)])",
        &["p1", "w1"],
        io.to(vec![String::from("A"), sid["p1"].clone()]).unwrap()
    );
    case!("of(/).except(A)", &["p2", "w2", "p3"], root().except("A"));
    case!(
        "io.to(B).except(A)",
        &["p2"],
        io.to("B").unwrap().except("A")
    );
    case!("of(/).within(B)", &["w1", "p2"], root().within("B"));
    case!("w1.broadcast()", &["p1", "p2", "w2", "p3"], w1.broadcast());
    case!("w1.to(A)", &["p1"], w1.to("A"));
    case!("w1.to([A, B])", &["p1", "p2"], w1.to(["A", "B"]));
    case!("w1.within(A)", &["p1", "w1"], w1.within("A"));
    case!("p1.except(B)", &["w2", "p3"], p1.except("B"));
    case!("io.to(sid(w2))", &["w2"], io.to(sid["w2"].clone()).unwrap());
    case!("p1.to(sid(w2))", &["w2"], p1.to(sid["w2"].as_str()));
    case!("p1.to(sid(p1))", &[], p1.to(sid["p1"].as_str()));
    case!("io.to(C).local()", &["w2"], io.to("C").unwrap().local());
    case!("io.to(nobody)", &[], io.to("nobody").unwrap());
    case!(
        "io.to(sid of /other)",
        &[],
        io.to(sid["o1"].clone()).unwrap()
    );
    case!(
        "of(/other).to(A)",
        &["o1"],
        io.of("/other").unwrap().to("A")
    );
    case!("of(/)", &["p1", "w1", "p2", "w2", "p3"], root());
    // `io.emit` goes to "/" only.
    n += 1;
    let reached = io
        .emit("m", &json!({ "n": n, "label": "io.emit" }))
        .await
        .unwrap();
    cases.push(Case {
        n,
        label: "io.emit",
        reached,
        expect: &["p1", "w1", "p2", "w2", "p3"],
    });

    // Fence: after this, every earlier broadcast has arrived (one connection keeps order).
    root().emit("fence", &1).await.unwrap();
    io.of("/other").unwrap().emit("fence", &1).await.unwrap();
    let everyone = ["p1", "w1", "p2", "w2", "p3", "o1", "o2"];
    d.wait(&everyone, "fence", json!(1)).await;
    let got = d.received("m").await;

    let mut failures = Vec::new();
    for c in &cases {
        if c.reached != c.expect.len() {
            failures.push(format!(
                "{}: emit reported {} receivers, expected {}",
                c.label,
                c.reached,
                c.expect.len()
            ));
        }
    }
    for name in everyone {
        let want: Vec<u64> = cases
            .iter()
            .filter(|c| c.expect.contains(&name))
            .map(|c| c.n)
            .collect();
        let have: Vec<u64> = got[name]
            .iter()
            .map(|v| v["n"].as_u64().expect("n"))
            .collect();
        if want != have {
            let label = |n: &u64| cases.iter().find(|c| c.n == *n).map_or("?", |c| c.label);
            failures.push(format!(
                "{name}: got {:?}, expected {:?}",
                have.iter().map(label).collect::<Vec<_>>(),
                want.iter().map(label).collect::<Vec<_>>()
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "wrong deliveries:\n{}",
        failures.join("\n")
    );
    d.exit().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rooms_emit_with_ack_collects_answers_and_timeouts() {
    let Some(node) = common::node("rooms_emit_with_ack_collects_answers_and_timeouts", CLIENT)
    else {
        return;
    };
    let (server, io, _life) = room_server(SocketIo::builder()).await;
    let mut d = Driver::start(&node, "driver.mjs", &[&server.base_url()]).await;
    d.open_with("a1", "polling", "/", "answer").await;
    d.open_with("a2", "websocket", "/", "answer").await;
    d.open_with("s1", "polling", "/", "silent").await;
    d.open_with("s2", "websocket", "/", "silent").await;
    d.open_with("x", "websocket", "/", "answer").await;
    for name in ["a1", "a2", "s1", "s2"] {
        d.join(name, &["acks"]).await;
    }
    let by_sid: HashMap<String, String> =
        d.sids.iter().map(|(n, s)| (s.clone(), n.clone())).collect();

    let results = common::within(
        Duration::from_secs(10),
        "emit_with_ack to a room",
        io.to("acks")
            .unwrap()
            .timeout(Duration::from_millis(1500))
            .emit_with_ack::<_, (Value,)>("ask", &(json!({"q": 42}),)),
    )
    .await
    .expect("broadcast");
    assert_eq!(
        results.len(),
        4,
        "one result per socket in the room: {results:?}"
    );
    let mut seen = BTreeMap::new();
    for (sid, r) in results {
        let sid = sid.expect("local sockets come with their id").to_string();
        let name = by_sid
            .get(&sid)
            .cloned()
            .unwrap_or_else(|| panic!("unknown sid {sid}"));
        let outcome = match r {
            Ok((v,)) => {
                assert_eq!(v["from"], json!(name), "ack of {name} answered by {v}");
                assert_eq!(v["event"], json!("ask"));
                assert_eq!(v["args"], json!([{"q": 42}]));
                "ok"
            }
            Err(AckError::Timeout) => "timeout",
            Err(e) => panic!("{name}: unexpected ack error {e:?}"),
        };
        assert!(
            seen.insert(name.clone(), outcome).is_none(),
            "{name} answered twice"
        );
    }
    let want: BTreeMap<String, &str> = [
        ("a1", "ok"),
        ("a2", "ok"),
        ("s1", "timeout"),
        ("s2", "timeout"),
    ]
    .into_iter()
    .map(|(n, o)| (n.to_owned(), o))
    .collect();
    assert_eq!(seen, want);

    // A sender's broadcast with acks skips the sender; nobody selected means no results.
    let a1 = socket_of(&io, "/", &d.sids["a1"]);
    let results = common::step(
        "socket.to(room).emit_with_ack",
        a1.to("acks")
            .timeout(Duration::from_millis(800))
            .emit_with_ack::<_, (Value,)>("ask2", &(1,)),
    )
    .await
    .expect("broadcast");
    let mut got: Vec<(String, bool)> = results
        .into_iter()
        .map(|(sid, r)| (by_sid[&sid.unwrap().to_string()].clone(), r.is_ok()))
        .collect();
    got.sort();
    assert_eq!(
        got,
        vec![
            ("a2".into(), true),
            ("s1".into(), false),
            ("s2".into(), false)
        ]
    );
    let none = common::step(
        "emit_with_ack to an empty room",
        io.to("empty")
            .unwrap()
            .emit_with_ack::<_, (Value,)>("ask3", &(1,)),
    )
    .await
    .expect("broadcast");
    assert!(none.is_empty());

    io.emit("fence", &1).await.unwrap();
    d.wait(&["a1", "a2", "s1", "s2", "x"], "fence", json!(1))
        .await;
    let asks = d.received("ask").await;
    for name in ["a1", "a2", "s1", "s2"] {
        assert_eq!(asks[name], vec![json!({"q": 42})], "{name}");
    }
    assert!(asks["x"].is_empty(), "x is not in the room");
    let asks2 = d.received("ask2").await;
    assert!(asks2["a1"].is_empty(), "the sender is excluded");
    d.exit().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rooms_sockets_fetch_join_leave_disconnect_on_selections() {
    let Some(node) = common::node(
        "rooms_sockets_fetch_join_leave_disconnect_on_selections",
        CLIENT,
    ) else {
        return;
    };
    let (server, io, mut life) = room_server(SocketIo::builder()).await;
    let mut d = Driver::start(&node, "driver.mjs", &[&server.base_url()]).await;
    let p1 = d.open("p1", "polling", "/").await;
    let w1 = d.open("w1", "websocket", "/").await;
    let p2 = d.open("p2", "polling", "/").await;
    let w2 = d.open("w2", "websocket", "/").await;
    d.open("o1", "websocket", "/other").await;
    d.join("p1", &["g"]).await;
    d.join("w1", &["g", "solo"]).await;
    d.join("w2", &["other"]).await;
    d.join("o1", &["g", "h"]).await;
    let root = || io.of("/").expect("/");

    let ids: BTreeSet<String> = root()
        .to("g")
        .sockets()
        .iter()
        .map(|s| s.id().to_string())
        .collect();
    assert_eq!(ids, set([p1.as_str(), w1.as_str()]));
    assert_eq!(io.sockets().len(), 4, "io.sockets() is the main namespace");
    assert_eq!(io.of("/other").unwrap().sockets().len(), 1);

    let mut infos = root().to("g").fetch_sockets().await.expect("fetch");
    infos.sort_by(|a, b| a.id.cmp(&b.id));
    let mut want = vec![
        (p1.clone(), set([p1.as_str(), "g"])),
        (w1.clone(), set([w1.as_str(), "g", "solo"])),
    ];
    want.sort();
    let have: Vec<(String, BTreeSet<String>)> = infos
        .iter()
        .map(|i| (i.id.clone(), set(i.rooms.clone())))
        .collect();
    assert_eq!(have, want);
    assert!(infos.iter().all(|i| i.ns == "/"), "{infos:?}");
    for i in &infos {
        assert_eq!(i.rooms[0], i.id, "own id first");
    }
    let all = root().except("g").fetch_sockets().await.unwrap();
    assert_eq!(
        set(all.iter().map(|i| i.id.clone())),
        set([p2.as_str(), w2.as_str()])
    );

    // join/leave on a selection, seen by the clients themselves.
    root().to("g").join(["h", "k"]).await.unwrap();
    assert_eq!(
        set(d.join("p1", &[]).await),
        set([p1.as_str(), "g", "h", "k"])
    );
    assert_eq!(
        set(d.join("w1", &[]).await),
        set([w1.as_str(), "g", "solo", "h", "k"])
    );
    assert_eq!(set(d.join("p2", &[]).await), set([p2.as_str()]));
    root().to("h").leave("g").await.unwrap();
    root().to(w1.clone()).leave("solo").await.unwrap();
    assert_eq!(ns_rooms(&io, "/").await, set(["h", "k", "other"]));
    assert_eq!(
        ns_rooms(&io, "/other").await,
        set(["g", "h"]),
        "/other untouched"
    );

    // disconnect on a selection: only those, with the server's reason on both sides.
    root().to("h").disconnect().await.unwrap();
    let reasons = d.wait_disconnect(&["p1", "w1"]).await;
    assert_eq!(reasons["p1"], "io server disconnect");
    assert_eq!(reasons["w1"], "io server disconnect");
    let mut gone = BTreeSet::new();
    for _ in 0..4 {
        let l = next_life(&mut life).await;
        assert_eq!(l.2, DisconnectReason::ServerNamespaceDisconnect);
        if l.1 == "disconnecting" {
            assert!(l.3.contains(&"h".to_owned()), "{l:?}");
        } else {
            assert!(l.3.is_empty(), "{l:?}");
        }
        gone.insert(l.0);
    }
    assert_eq!(gone, set([p1.as_str(), w1.as_str()]));
    assert_eq!(ns_rooms(&io, "/").await, set(["other"]));
    io.emit("fence", &1).await.unwrap();
    io.of("/other").unwrap().emit("fence", &1).await.unwrap();
    d.wait(&["p2", "w2", "o1"], "fence", json!(1)).await;
    let s = d.summary().await;
    for name in ["p2", "w2", "o1"] {
        assert_eq!(s[name]["connected"], json!(true), "{name} stays");
        assert_eq!(s[name]["disconnects"], json!([]), "{name}");
    }
    for name in ["p1", "w1"] {
        assert_eq!(
            s[name]["disconnects"],
            json!(["io server disconnect"]),
            "once: {name}"
        );
    }
    d.exit().await;
}

#[derive(Serialize)]
struct Blob<'a> {
    name: &'a str,
    data: Binary,
    parts: Vec<Binary>,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rooms_binary_broadcast_reaches_everyone_as_buffers() {
    let Some(node) = common::node("rooms_binary_broadcast_reaches_everyone_as_buffers", CLIENT)
    else {
        return;
    };
    let (server, io, _life) = room_server(SocketIo::builder()).await;
    let mut d = Driver::start(&node, "driver.mjs", &[&server.base_url()]).await;
    let members = ["p1", "w1", "p2", "w2"];
    for name in members {
        let t = if name.starts_with('p') {
            "polling"
        } else {
            "websocket"
        };
        d.open(name, t, "/").await;
        d.join(name, &["bin"]).await;
    }
    d.open("out", "polling", "/").await;

    let data: Vec<u8> = (0..=255u8).cycle().take(3000).collect();
    let blob = Blob {
        name: "blob",
        data: Binary(data.clone().into()),
        parts: vec![Binary(vec![0u8, 1, 2].into()), Binary(Vec::new().into())],
    };
    let reached = io.to("bin").unwrap().emit("blob", &blob).await.unwrap();
    assert_eq!(reached, 4);
    // And from a socket: everyone in the room but the sender.
    let w1 = socket_of(&io, "/", &d.sids["w1"]);
    let reached = w1.to("bin").emit("blob", &blob).await.unwrap();
    assert_eq!(reached, 3);

    io.emit("fence", &1).await.unwrap();
    let everyone = ["p1", "w1", "p2", "w2", "out"];
    d.wait(&everyone, "fence", json!(1)).await;
    let got = d.received("blob").await;
    let b64 = |b: &[u8]| base64::engine::general_purpose::STANDARD.encode(b);
    let want_one = json!({
        "name": "blob",
        "data": {"$bin": b64(&data), "$type": "Buffer"},
        "parts": [
            {"$bin": b64(&[0, 1, 2]), "$type": "Buffer"},
            {"$bin": "", "$type": "Buffer"},
        ],
    });
    for name in members {
        let n = if name == "w1" { 1 } else { 2 };
        assert_eq!(got[name], vec![want_one.clone(); n], "{name}");
    }
    assert!(got["out"].is_empty());
    d.exit().await;
}
