//! Socket.IO interop with the official npm `socket.io-client` (v4): namespaces, middlewares,
//! the handshake, extractors, ordering, acks, binary, disconnects and graceful shutdown, each
//! over polling only, WebSocket only, and polling upgraded to WebSocket.
//!
//! The client scenarios live in `tests/clients/sio/client.mjs`; each prints a JSON result as
//! its last line. The tests check both that result and what the server handlers recorded.
//!
//! Without node these tests print a loud skip notice and pass, unless
//! `TSIO_REQUIRE_SERVICES=1`, where they fail.

mod common;

use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::sync::mpsc;
use tower_socketio::{
    AckError, AckSender, Bin, Binary, ConnectRejection, Data, DisconnectReason, Event, Extension,
    Handshake, MaybeExtension, SocketIo, SocketRef, State, TryData,
};

use common::{Mode, SCRIPT, ScriptOutput, TestServer, step, within};

common::per_transport!(
    namespaces,
    middleware,
    handshake,
    events,
    ordering,
    acks,
    binary,
    client_disconnect,
    server_disconnect,
    transport_close,
    connect_timeout,
);

mod shutdown {
    #[tokio::test]
    async fn polling() {
        super::shutdown(super::Mode::Polling).await
    }
    #[tokio::test]
    async fn websocket() {
        super::shutdown(super::Mode::WebSocket).await
    }
    #[tokio::test]
    async fn upgrade() {
        super::shutdown(super::Mode::Upgrade).await
    }
}

// ------------------------------------------------------------------ helpers

type Tx = mpsc::UnboundedSender<Value>;
type Rx = mpsc::UnboundedReceiver<Value>;

fn rec(tx: &Tx, v: Value) {
    let _ = tx.send(v);
}

/// Everything recorded so far.
fn drain(rx: &mut Rx) -> Vec<Value> {
    let mut out = Vec::new();
    while let Ok(v) = rx.try_recv() {
        out.push(v);
    }
    out
}

/// Receives until `pred` matches (within the step limit); returns everything received.
async fn recv_until(rx: &mut Rx, what: &str, pred: impl Fn(&Value) -> bool) -> Vec<Value> {
    let mut seen = Vec::new();
    let res = tokio::time::timeout(common::STEP, async {
        while let Some(v) = rx.recv().await {
            let hit = pred(&v);
            seen.push(v);
            if hit {
                return;
            }
        }
    })
    .await;
    assert!(res.is_ok(), "timed out waiting for {what}; got {seen:?}");
    seen
}

fn reason(r: DisconnectReason) -> &'static str {
    r.as_str()
}

fn result_json(out: ScriptOutput, what: &str) -> Value {
    let stdout = out.expect_success(what);
    let line = stdout
        .lines()
        .rev()
        .find(|l| !l.trim().is_empty())
        .unwrap_or_else(|| panic!("{what} printed nothing"));
    serde_json::from_str(line).unwrap_or_else(|e| panic!("{what}: bad JSON ({e}): {line}"))
}

/// Runs `client.mjs <url> <mode> <scenario>`; `None` when node is missing (skipped).
async fn client(test: &str, server: &TestServer, mode: Mode, scenario: &str) -> Option<Value> {
    let node = common::node(test, "socket.io-client")?;
    let out = common::run_node(
        &node,
        "sio/client.mjs",
        &[&server.base_url(), mode.arg(), scenario],
        SCRIPT,
    )
    .await;
    Some(result_json(
        out,
        &format!("socket.io-client {scenario} ({mode:?})"),
    ))
}

fn assert_transport(res: &Value, mode: Mode) {
    assert_eq!(
        res["transport"],
        mode.final_transport(),
        "final transport in {mode:?}: {res}"
    );
}

/// Records `(ns, reason)` when the socket leaves.
fn record_disconnect(socket: &SocketRef, tx: &Tx) {
    let tx = tx.clone();
    socket.on_disconnect(move |s: SocketRef, r: DisconnectReason| {
        rec(
            &tx,
            json!({"disconnect": s.ns(), "reason": reason(r), "sid": s.id().to_string()}),
        );
    });
}

fn is_disconnect(v: &Value, ns: &str) -> bool {
    v["disconnect"] == ns
}

// ------------------------------------------------------------------ namespaces

async fn namespaces(mode: Mode) {
    let (layer, io) = SocketIo::builder().build_layer();
    let (tx, mut rx) = mpsc::unbounded_channel();
    let who = |socket: SocketRef, ack: AckSender| {
        ack.send(&json!({"ns": socket.ns(), "engine": socket.engine_id().to_string()}))
            .ok();
    };
    let on_connect = move |socket: SocketRef| {
        rec(&tx, json!({"connect": socket.ns()}));
        socket.on("who", who);
    };
    io.ns("/", on_connect.clone());
    io.ns("admin", on_connect.clone()); // normalized to "/admin"
    io.dyn_ns("/tenant/{id}", on_connect.clone());
    io.dyn_ns_fn(|p: &str| p.starts_with("/dyn-"), on_connect);
    let server = common::serve_layer(layer).await;
    let Some(res) = client("namespaces", &server, mode, "namespaces").await else {
        return;
    };

    for err in [&res["unknownErr"], &res["tooDeepErr"]] {
        assert_eq!(err["message"], "Invalid namespace", "{res}");
    }
    assert_eq!(res["sameManager"], true, "{res}");
    let engine_id = res["engineId"].as_str().expect("engine id");
    for ns in ["/", "/admin", "/tenant/42", "/tenant/7", "/dyn-abc"] {
        assert_eq!(res["who"][ns]["ns"], ns, "{res}");
        assert_eq!(
            res["who"][ns]["engine"], engine_id,
            "every namespace shares one engine connection: {res}"
        );
    }
    assert_eq!(res["again"]["ns"], "/", "{res}");
    assert_transport(&res, mode);

    let mut connects: Vec<String> = drain(&mut rx)
        .iter()
        .filter_map(|v| v["connect"].as_str().map(str::to_owned))
        .collect();
    connects.sort();
    assert_eq!(
        connects,
        ["/", "/admin", "/dyn-abc", "/tenant/42", "/tenant/7"],
        "each namespace connected exactly once"
    );
    assert!(io.of("/tenant/42").is_some());
    assert!(io.of("/nope").is_none());
    assert!(io.of("/tenant/1/x").is_none());
}

// ------------------------------------------------------------------ middlewares

#[derive(Debug, Deserialize)]
#[allow(dead_code)]
struct StrictAuth {
    token: String,
}

async fn middleware(mode: Mode) {
    let (layer, io) = SocketIo::builder().build_layer();
    let (tx, mut rx) = mpsc::unbounded_channel();
    let hello = |socket: SocketRef, ack: AckSender| {
        ack.send(&socket.ns()).ok();
    };

    let (t0, t1, t2, t3) = (tx.clone(), tx.clone(), tx.clone(), tx.clone());
    io.ns("/", move |socket: SocketRef, Data(auth): Data<Value>| {
        rec(&t0, json!(format!("connect:{}", auth["token"])));
        socket.on("hello", hello);
    })
    .with(move |Data(_): Data<Value>| {
        rec(&t1, json!("mw1"));
        Ok::<(), ConnectRejection>(())
    })
    .with(move || {
        let t2 = t2.clone();
        async move {
            tokio::time::sleep(Duration::from_millis(30)).await;
            rec(&t2, json!("mw2 (async)"));
            Ok::<(), ConnectRejection>(())
        }
    })
    .with(move |_s: SocketRef| {
        rec(&t3, json!("mw3"));
        Ok::<(), &str>(())
    });

    let (t0, t1) = (tx.clone(), tx.clone());
    io.ns("/guarded", move |socket: SocketRef| {
        rec(&t0, json!("guarded:connect"));
        socket.on("hello", hello);
    })
    .with(move |Data(auth): Data<Value>| {
        rec(&t1, json!(format!("guard:{}", auth["token"])));
        if auth["token"] == "ok" {
            Ok(())
        } else {
            Err(ConnectRejection::new("nope").with_data(json!({"code": 42, "why": "bad token"})))
        }
    });

    let (t0, t1) = (tx.clone(), tx.clone());
    io.ns("/strict", move || rec(&t0, json!("strict:connect")))
        .with(move |Data(_): Data<StrictAuth>| {
            rec(&t1, json!("strict:middleware"));
            Ok::<(), ConnectRejection>(())
        });

    let (t0, t1) = (tx.clone(), tx.clone());
    io.ns("/later", move || rec(&t0, json!("later:connect")))
        .with(move || {
            let t1 = t1.clone();
            async move {
                tokio::time::sleep(Duration::from_millis(20)).await;
                rec(&t1, json!("later:middleware"));
                Err::<(), String>("refused later".to_owned())
            }
        });

    let server = common::serve_layer(layer).await;
    let Some(res) = client("middleware", &server, mode, "middleware").await else {
        return;
    };

    assert_eq!(
        res["guardedErr"],
        json!({"message": "nope", "data": {"code": 42, "why": "bad token"}}),
        "{res}"
    );
    assert_eq!(res["guardedAck"], "/guarded", "{res}");
    let strict = res["strictErr"]["message"].as_str().unwrap_or_default();
    assert!(
        strict.contains("deserialize") && strict.contains("StrictAuth"),
        "an extractor failure in a middleware refuses with its message: {res}"
    );
    assert_eq!(res["laterErr"]["message"], "refused later", "{res}");
    assert_eq!(res["laterErr"]["data"], Value::Null, "{res}");
    assert_eq!(res["mainAck"], "/", "{res}");
    assert_transport(&res, mode);

    assert_eq!(
        drain(&mut rx),
        vec![
            json!("mw1"),
            json!("mw2 (async)"),
            json!("mw3"),
            json!("connect:\"main\""),
            json!("guard:\"bad\""),
            json!("guard:\"ok\""),
            json!("guarded:connect"),
            json!("later:middleware"),
        ],
        "middlewares in order; refused connections never reach their connect handler"
    );
}

// ------------------------------------------------------------------ handshake

#[derive(Debug, Deserialize)]
struct TokenAuth {
    token: String,
}

fn handshake_json(hs: &Handshake) -> Value {
    json!({
        "header": hs.headers.get("x-tsio-test").and_then(|v| v.to_str().ok()),
        "query": hs.query,
        "path": hs.url.path(),
        "urlQuery": hs.url.query(),
        "auth": hs.auth.as_deref().map(|a| serde_json::from_str::<Value>(a).expect("auth is JSON")),
        "address": hs.address.map(|a| a.ip().to_string()),
        "issued": hs.issued.duration_since(SystemTime::UNIX_EPOCH).unwrap().as_millis() as u64,
        "transport": format!("{:?}", hs.transport),
    })
}

async fn handshake(mode: Mode) {
    let (layer, io) = SocketIo::builder().build_layer();
    let (tx, mut rx) = mpsc::unbounded_channel();
    io.ns(
        "/",
        move |socket: SocketRef, hs: Handshake, Data(auth): Data<TokenAuth>| {
            rec(
                &tx,
                json!({"token": auth.token, "hs": handshake_json(&hs), "sid": socket.id().to_string()}),
            );
            socket.on("handshake", |hs: Handshake, ack: AckSender| {
                ack.send(&handshake_json(&hs)).ok();
            });
        },
    );
    let server = common::serve_layer(layer).await;
    let before = SystemTime::now();
    let Some(res) = client("handshake", &server, mode, "handshake").await else {
        return;
    };
    let after = SystemTime::now();

    let recorded = drain(&mut rx);
    assert_eq!(recorded.len(), 1, "{recorded:?}");
    let at_connect = &recorded[0];
    assert_eq!(at_connect["token"], "t1");
    assert_eq!(
        at_connect["sid"], res["id"],
        "socket id as the client sees it"
    );
    for hs in [&at_connect["hs"], &res["seen"]] {
        assert_eq!(hs["header"], "hello", "{hs}");
        let query = hs["query"].as_array().expect("query");
        for pair in [json!(["foo", "bar"]), json!(["EIO", "4"])] {
            assert!(query.contains(&pair), "{pair} in {hs}");
        }
        assert_eq!(hs["path"], "/socket.io/", "{hs}");
        assert!(
            hs["urlQuery"].as_str().unwrap_or("").contains("foo=bar"),
            "{hs}"
        );
        assert_eq!(hs["auth"], json!({"token": "t1"}), "{hs}");
        assert_eq!(hs["address"], "127.0.0.1", "{hs}");
        let ms = |t: SystemTime| {
            t.duration_since(SystemTime::UNIX_EPOCH)
                .unwrap()
                .as_millis() as u64
        };
        let issued = hs["issued"].as_u64().expect("issued");
        assert!(
            ms(before) <= issued + 5 && issued <= ms(after),
            "issued {issued} within the test"
        );
    }
    let first = match mode {
        Mode::WebSocket => "WebSocket",
        _ => "Polling",
    };
    assert_eq!(at_connect["hs"]["transport"], first);
    // the extractor in an event handler sees the transport of the moment
    assert_eq!(
        res["seenLater"]["transport"],
        match mode {
            Mode::Polling => "Polling",
            _ => "WebSocket",
        },
        "{res}"
    );
    assert_transport(&res, mode);
}

// ------------------------------------------------------------------ events and extractors

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
struct Msg {
    text: String,
    n: u32,
}

#[derive(Debug, Clone)]
struct AppState {
    label: String,
}

#[derive(Debug, Clone)]
struct UserName(String);

async fn events(mode: Mode) {
    let (layer, io) = SocketIo::builder()
        .with_state(AppState {
            label: "from state".into(),
        })
        .build_layer();
    let (tx, mut rx) = mpsc::unbounded_channel();
    io.ns("/", move |socket: SocketRef, Data(auth): Data<Value>| {
        let name = auth["name"].as_str().unwrap_or("?").to_owned();
        socket.extensions().insert(UserName(name));
        let t = tx.clone();
        socket.on_any(move |event: &str, data: &Value| {
            rec(&t, json!({"any": event, "data": data}));
        });
        let t = tx.clone();
        socket.on_any_outgoing(move |event: &str, data: &Value| {
            rec(&t, json!({"outgoing": event, "data": data}));
        });
        socket.emit("welcome", &"hello").ok();

        let t = tx.clone();
        socket.on("typed", move |socket: SocketRef, Data(msg): Data<Msg>| {
            rec(&t, json!({"typed": msg}));
            socket.emit("echo", &msg).ok();
        });
        let t = tx.clone();
        socket.on(
            "multi",
            move |Data((a, b, c)): Data<(u32, String, bool)>| {
                rec(&t, json!({"multi": [a, b, c]}));
            },
        );
        let t = tx.clone();
        socket.on("zero", move || rec(&t, json!("zero")));
        let t = tx.clone();
        socket.on("zero_data", move |Data(()): Data<()>| {
            rec(&t, json!("zero_data"))
        });
        let t = tx.clone();
        socket.on("try", move |TryData(r): TryData<Msg>| {
            let v = match r {
                Ok(m) => json!({"try_ok": m}),
                Err(e) => json!({"try_err": e.to_string()}),
            };
            rec(&t, v);
        });
        let t = tx.clone();
        socket.on("strict", move |Data(m): Data<Msg>, ack: AckSender| {
            rec(&t, json!({"strict_called": m}));
            ack.send(&"should not happen").ok();
        });
        let t = tx.clone();
        socket.on_fallback(
            move |Event(name): Event, Data(v): Data<Value>, ack: AckSender| {
                rec(&t, json!({"fallback": name, "data": v}));
                ack.send(&json!({"event": name, "data": v})).ok();
            },
        );
        socket.on("state", |State(s): State<AppState>, ack: AckSender| {
            ack.send(&s.label).ok();
        });
        socket.on(
            "ext",
            |Extension(u): Extension<UserName>, ack: AckSender| {
                ack.send(&u.0).ok();
            },
        );
        socket.on(
            "maybe",
            |MaybeExtension(n): MaybeExtension<u64>,
             MaybeExtension(u): MaybeExtension<UserName>,
             ack: AckSender| {
                ack.send(&json!([n, u.map(|u| u.0)])).ok();
            },
        );
        let t = tx.clone();
        socket.on(
            "missing_ext",
            move |Extension(n): Extension<u64>, ack: AckSender| {
                rec(&t, json!({"missing_ext_called": n}));
                ack.send(&n).ok();
            },
        );
        socket.on("done", |ack: AckSender| {
            ack.send(&"bye").ok();
        });
    });
    let server = common::serve_layer(layer).await;
    let Some(res) = client("events", &server, mode, "events").await else {
        return;
    };

    let err = res["strictAck"]["error"].as_str().unwrap_or_default();
    assert!(
        err.contains("deserialize"),
        "a Data<T> that fails answers the ack with {{error}}: {res}"
    );
    assert_eq!(
        res["fallback"],
        json!({"event": "something_else", "data": {"x": 1}})
    );
    assert_eq!(res["state"], "from state");
    assert_eq!(res["ext"], "alice");
    assert_eq!(res["maybe"], json!([null, "alice"]));
    let err = res["missingExt"]["error"].as_str().unwrap_or_default();
    assert!(err.contains("extension"), "{res}");
    assert_eq!(res["echoed"], json!({"text": "hi", "n": 7}));
    assert_eq!(res["welcomed"], "hello");
    assert_eq!(res["last"], "bye");
    assert_transport(&res, mode);

    let recorded = drain(&mut rx);
    let (any, rest): (Vec<&Value>, Vec<&Value>) =
        recorded.iter().partition(|v| v.get("any").is_some());
    let any_names: Vec<&str> = any.iter().map(|v| v["any"].as_str().unwrap()).collect();
    assert_eq!(
        any_names,
        [
            "typed",
            "multi",
            "zero",
            "zero_data",
            "try",
            "try",
            "strict",
            "strict",
            "something_else",
            "state",
            "ext",
            "maybe",
            "missing_ext",
            "done"
        ],
        "on_any sees every incoming event, handled or not"
    );
    assert_eq!(any[0]["data"], json!({"text": "hi", "n": 7}));
    assert_eq!(any[1]["data"], json!([1, "two", true]));
    let (outgoing, handled): (Vec<&Value>, Vec<&Value>) =
        rest.into_iter().partition(|v| v.get("outgoing").is_some());
    assert_eq!(
        outgoing,
        [
            &json!({"outgoing": "welcome", "data": "hello"}),
            &json!({"outgoing": "echo", "data": {"text": "hi", "n": 7}}),
        ],
        "on_any_outgoing sees emits (not acks)"
    );
    let try_err = handled[4]["try_err"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    assert!(try_err.contains("invalid type"), "{handled:?}");
    assert_eq!(
        handled,
        [
            &json!({"typed": {"text": "hi", "n": 7}}),
            &json!({"multi": [1, "two", true]}),
            &json!("zero"),
            &json!("zero_data"),
            &json!({"try_err": try_err}),
            &json!({"try_ok": {"text": "ok", "n": 1}}),
            &json!({"fallback": "something_else", "data": {"x": 1}}),
        ],
        "handlers in order; Data<T> failures skip the handler"
    );
}

// ------------------------------------------------------------------ ordering

async fn ordering(mode: Mode) {
    let (layer, io) = SocketIo::builder().build_layer();
    let seen = Arc::new(Mutex::new(Vec::<u32>::new()));
    let seen2 = seen.clone();
    io.ns("/", move |socket: SocketRef| {
        let seen = seen2.clone();
        async move {
            socket.emit("welcome", &"hi").ok();
            // handlers registered late: events that arrive meanwhile must wait for them
            tokio::time::sleep(Duration::from_millis(100)).await;
            let s = seen.clone();
            socket.on("seq", move |Data(n): Data<u32>| {
                let s = s.clone();
                async move {
                    s.lock().unwrap().push(n);
                    tokio::task::yield_now().await;
                }
            });
            let s = seen.clone();
            socket.on("sync", move |ack: AckSender| {
                ack.send(&s.lock().unwrap().len()).ok();
            });
            socket.on(
                "burst",
                |socket: SocketRef, Data(n): Data<u32>, ack: AckSender| {
                    for i in 0..n {
                        socket.emit("down", &i).ok();
                    }
                    ack.send(&n).ok();
                },
            );
        }
    });
    let server = common::serve_layer(layer).await;
    let Some(res) = client("ordering", &server, mode, "ordering").await else {
        return;
    };

    assert_eq!(res["sent"], 210, "{res}");
    assert_eq!(res["handled"], 210, "{res}");
    assert_eq!(
        *seen.lock().unwrap(),
        (0..210).collect::<Vec<u32>>(),
        "every event handled, in order"
    );
    assert_eq!(res["burst"], 200);
    assert_eq!(
        res["down"],
        json!((0..200).collect::<Vec<u32>>()),
        "server emits arrive in order"
    );
    assert_eq!(
        res["firstPackets"],
        json!(["type:0", "event:welcome"]),
        "the CONNECT reply precedes what the connect handler emits: {res}"
    );
    assert_eq!(res["atWelcome"]["connected"], true, "{res}");
    assert!(res["atWelcome"]["id"].is_string(), "{res}");
    assert_transport(&res, mode);
}

// ------------------------------------------------------------------ acks

fn ack_result<R: Serialize>(r: Result<R, AckError>) -> Value {
    match r {
        Ok(v) => json!({"ok": v}),
        Err(AckError::Timeout) => json!({"err": "timeout"}),
        Err(AckError::Decode(e)) => json!({"err": "decode", "msg": e.to_string()}),
        Err(AckError::Disconnected) => json!({"err": "disconnected"}),
        Err(e) => json!({"err": "other", "msg": e.to_string()}),
    }
}

async fn acks(mode: Mode) {
    let (layer, io) = SocketIo::builder().build_layer();
    let (tx, mut rx) = mpsc::unbounded_channel();
    io.ns("/", move |socket: SocketRef| {
        socket.on("sum", |Data((a, b)): Data<(i64, i64)>, ack: AckSender| {
            ack.send(&(a + b)).ok();
        });
        socket.on("pair", |ack: AckSender| {
            ack.send_args(&(1, "a")).ok();
        });
        let t = tx.clone();
        socket.on("maybe_ack", move |Data(n): Data<u32>, ack: AckSender| {
            rec(&t, json!({"n": n, "requested": ack.requested()}));
            ack.send(&n).ok(); // a no-op when not requested
        });
        let t = tx.clone();
        socket.on("server_acks", move |socket: SocketRef, ack: AckSender| {
            let t = t.clone();
            async move {
                let answer = socket
                    .emit_with_ack::<_, (Value,)>("ask", &(json!({"q": 21}),))
                    .await
                    .map(|(v,)| v);
                let multi = socket
                    .emit_with_ack::<_, (u32, String)>("ask_multi", &(1,))
                    .await;
                let bad = socket.emit_with_ack::<_, (u32,)>("ask_bad", &(0,)).await;
                let ignored = socket
                    .emit_with_ack_timeout::<_, (Value,)>(
                        "ignored",
                        &("x",),
                        Duration::from_millis(300),
                    )
                    .await;
                let v = json!({
                    "answer": ack_result(answer),
                    "multi": ack_result(multi),
                    "bad": ack_result(bad),
                    "ignored": ack_result(ignored),
                });
                rec(&t, v.clone());
                ack.send(&v).ok();
            }
        });
    });
    let server = common::serve_layer(layer).await;
    let Some(res) = client("acks", &server, mode, "acks").await else {
        return;
    };

    assert_eq!(res["sum"], 3, "{res}");
    assert_eq!(res["pair"], json!([1, "a"]), "send_args spreads: {res}");
    assert_eq!(res["withAck"], 2, "{res}");
    assert_eq!(res["ignored"], json!(["x"]), "{res}");
    let server_side = &res["server"];
    assert_eq!(
        server_side["answer"],
        json!({"ok": {"answer": 42}}),
        "{res}"
    );
    assert_eq!(server_side["multi"], json!({"ok": [2, "b"]}), "{res}");
    assert_eq!(server_side["bad"]["err"], "decode", "{res}");
    assert_eq!(server_side["ignored"], json!({"err": "timeout"}), "{res}");
    assert_transport(&res, mode);

    let recorded = drain(&mut rx);
    assert_eq!(
        recorded[..2],
        [
            json!({"n": 1, "requested": false}),
            json!({"n": 2, "requested": true})
        ],
        "{recorded:?}"
    );
    assert_eq!(&recorded[2], server_side);
}

// ------------------------------------------------------------------ binary

#[derive(Debug, Deserialize)]
struct Upload {
    name: String,
    data: Binary,
}

#[derive(Debug, Deserialize)]
struct Nested {
    a: NestedInner,
}

#[derive(Debug, Deserialize)]
struct NestedInner {
    list: (Binary, String, Binary),
}

#[derive(Debug, Serialize)]
struct Outgoing {
    name: String,
    data: Binary,
    tail: String,
}

fn b(bin: &Binary) -> Vec<u8> {
    bin.0.to_vec()
}

async fn binary(mode: Mode) {
    let (layer, io) = SocketIo::builder().build_layer();
    let (tx, mut rx) = mpsc::unbounded_channel();
    io.ns("/", move |socket: SocketRef| {
        let t = tx.clone();
        socket.on("bin_top", move |Data(d): Data<Binary>| {
            rec(&t, json!({"bin_top": b(&d)}));
        });
        let t = tx.clone();
        socket.on("bin_struct_in", move |Data(u): Data<Upload>| {
            rec(&t, json!({"bin_struct_in": [u.name, b(&u.data)]}));
        });
        let t = tx.clone();
        socket.on("bin_u8", move |Data(d): Data<Binary>| {
            rec(&t, json!({"bin_u8": b(&d)}));
        });
        let t = tx.clone();
        socket.on(
            "bin_multi",
            move |Data((x, s, y)): Data<(Binary, String, Binary)>, Bin(atts): Bin| {
                let atts: Vec<Vec<u8>> = atts.iter().map(|a| a.to_vec()).collect();
                rec(&t, json!({"bin_multi": [b(&x), s, b(&y)], "atts": atts}));
            },
        );
        let t = tx.clone();
        socket.on("bin_nested", move |Data(n): Data<Nested>| {
            let (x, s, y) = n.a.list;
            rec(&t, json!({"bin_nested": [b(&x), s, b(&y)]}));
        });
        socket.on("bin_ack", |Data(d): Data<Binary>, ack: AckSender| {
            let mut v = b(&d);
            v.reverse();
            ack.send(&Binary::from(v)).ok();
        });
        let t = tx.clone();
        socket.on("bin_start", move |socket: SocketRef, ack: AckSender| {
            let t = t.clone();
            async move {
                let out = Outgoing {
                    name: "srv".into(),
                    data: Binary::from(vec![0u8, 255, 128]),
                    tail: "end".into(),
                };
                socket.emit("bin_struct", &out).ok();
                let r = socket
                    .emit_with_ack::<_, (Binary,)>("bin_ask", &("give",))
                    .await;
                rec(&t, json!({"bin_ask": ack_result(r.map(|(x,)| b(&x)))}));
                ack.send(&"started").ok();
            }
        });
        socket.on("done", |ack: AckSender| {
            ack.send(&"bye").ok();
        });
    });
    let server = common::serve_layer(layer).await;
    let Some(res) = client("binary", &server, mode, "binary").await else {
        return;
    };

    assert_eq!(
        res["binAck"],
        json!({"kind": "Buffer", "bytes": [12, 11, 10]}),
        "{res}"
    );
    assert_eq!(res["started"], "started");
    assert_eq!(
        res["fromServer"],
        json!({"name": "srv", "data": {"kind": "Buffer", "bytes": [0, 255, 128]}, "tail": "end"}),
        "{res}"
    );
    assert_eq!(res["last"], "bye");
    assert_transport(&res, mode);
    assert_eq!(
        drain(&mut rx),
        vec![
            json!({"bin_top": [1, 2, 3]}),
            json!({"bin_struct_in": ["file.bin", [4, 5, 6]]}),
            json!({"bin_u8": [7, 8]}),
            json!({"bin_multi": [[1], "mid", [2, 2]], "atts": [[1], [2, 2]]}),
            json!({"bin_nested": [[0], "x", [255, 254]]}),
            json!({"bin_ask": {"ok": [9, 8, 7]}}),
        ]
    );
}

// ------------------------------------------------------------------ disconnects

async fn client_disconnect(mode: Mode) {
    let (layer, io) = SocketIo::builder().build_layer();
    let (tx, mut rx) = mpsc::unbounded_channel();
    let on_connect = move |socket: SocketRef| {
        socket.join("lobby");
        record_disconnect(&socket, &tx);
        let t = tx.clone();
        socket.on_disconnecting(move |s: SocketRef, r: DisconnectReason| {
            let rooms: Vec<String> = s.rooms().iter().map(|r| r.to_string()).collect();
            rec(
                &t,
                json!({"disconnecting": s.ns(), "reason": reason(r), "lobby": rooms.contains(&"lobby".to_owned())}),
            );
        });
        socket.on("ping", |ack: AckSender| {
            ack.send(&"pong").ok();
        });
        let t = tx.clone();
        socket.on("pending_ack", move |socket: SocketRef| {
            let t = t.clone();
            async move {
                let r = socket
                    .emit_with_ack_timeout::<_, (Value,)>("never", &(1,), Duration::from_secs(10))
                    .await;
                rec(&t, json!({"pending_ack": ack_result(r)}));
            }
        });
    };
    io.ns("/", on_connect.clone());
    io.ns("/admin", on_connect);
    let server = common::serve_layer(layer).await;
    let Some(res) = client("client_disconnect", &server, mode, "client_disconnect").await else {
        return;
    };
    assert_eq!(res["afterAdmin"], "pong", "{res}");
    assert_eq!(res["connected"], json!([false, false]));
    assert_transport(&res, mode);

    let mut seen = recv_until(&mut rx, "the main socket's disconnect", |v| {
        is_disconnect(v, "/")
    })
    .await;
    // the waiting handler resumes after the disconnect handler ran
    if !seen.iter().any(|v| v.get("pending_ack").is_some()) {
        seen.extend(
            recv_until(&mut rx, "the failed ack", |v| {
                v.get("pending_ack").is_some()
            })
            .await,
        );
    }
    let (pending, lifecycle): (Vec<Value>, Vec<Value>) = seen
        .into_iter()
        .map(|mut v| {
            if let Some(o) = v.as_object_mut() {
                o.remove("sid");
            }
            v
        })
        .partition(|v| v.get("pending_ack").is_some());
    assert_eq!(
        pending,
        [json!({"pending_ack": {"err": "disconnected"}})],
        "an ack pending at disconnect fails with Disconnected"
    );
    let cnd = "client namespace disconnect";
    assert_eq!(
        lifecycle,
        vec![
            json!({"disconnecting": "/admin", "reason": cnd, "lobby": true}),
            json!({"disconnect": "/admin", "reason": cnd}),
            json!({"disconnecting": "/", "reason": cnd, "lobby": true}),
            json!({"disconnect": "/", "reason": cnd}),
        ]
    );
    assert_eq!(io.sockets().len(), 0);
}

async fn server_disconnect(mode: Mode) {
    let (layer, io) = SocketIo::builder().build_layer();
    let (tx, mut rx) = mpsc::unbounded_channel();
    let on_connect = move |socket: SocketRef| {
        record_disconnect(&socket, &tx);
        socket.on("ping", |ack: AckSender| {
            ack.send(&"pong").ok();
        });
        socket.on("kick", |socket: SocketRef| socket.disconnect());
    };
    io.ns("/", on_connect.clone());
    io.ns("/admin", on_connect);
    let server = common::serve_layer(layer).await;
    let Some(res) = client("server_disconnect", &server, mode, "server_disconnect").await else {
        return;
    };
    assert_eq!(res["reason"], "io server disconnect", "{res}");
    assert_eq!(res["afterKick"], "pong", "{res}");
    assert_eq!(res["adminConnected"], false, "{res}");
    assert_eq!(
        res["attempts"], 0,
        "no reconnection after a server disconnect"
    );
    assert_transport(&res, mode);
    let seen = recv_until(&mut rx, "the main socket's disconnect", |v| {
        is_disconnect(v, "/")
    })
    .await;
    let reasons: Vec<(&str, &str)> = seen
        .iter()
        .map(|v| {
            (
                v["disconnect"].as_str().unwrap(),
                v["reason"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        reasons,
        [
            ("/admin", "server namespace disconnect"),
            ("/", "client namespace disconnect")
        ]
    );
}

/// The client process is killed while connected: the server sees a transport close.
async fn transport_close(mode: Mode) {
    let Some(node) = common::node("transport_close", "socket.io-client") else {
        return;
    };
    let (layer, io) = SocketIo::builder()
        // long enough that only the closed transport can explain a disconnect
        .ping_interval(Duration::from_secs(20))
        .ping_timeout(Duration::from_secs(20))
        .build_layer();
    let (tx, mut rx) = mpsc::unbounded_channel();
    io.ns("/", move |socket: SocketRef| {
        record_disconnect(&socket, &tx);
        socket.on("ping", |ack: AckSender| {
            ack.send(&"pong").ok();
        });
    });
    let server = common::serve_layer(layer).await;
    let script = common::clients_dir().join("sio/client.mjs");
    let modules = node.modules.to_str().unwrap().to_owned();
    let mut child = tokio::process::Command::new(&node.bin)
        .arg(&script)
        .args([server.base_url().as_str(), mode.arg(), "kill"])
        .current_dir(common::clients_dir())
        .env("NODE_PATH", &modules)
        .env("TSIO_NODE_MODULES", &modules)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::inherit())
        .kill_on_drop(true)
        .spawn()
        .expect("start node");
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let line = step("the client's connected line", lines.next_line())
        .await
        .expect("read stdout")
        .expect("the client exited before connecting");
    let hello: Value = serde_json::from_str(&line).expect("JSON line");
    assert_eq!(hello["connected"], true, "{hello}");
    assert_transport(&hello, mode);
    assert_eq!(io.sockets().len(), 1);
    child.kill().await.expect("kill the client");
    let seen = recv_until(&mut rx, "the disconnect after the kill", |v| {
        is_disconnect(v, "/")
    })
    .await;
    // Over polling the pending GET is dropped, which the reference calls a transport
    // error (differential case close_polling_get_aborted).
    let want = match mode {
        Mode::Polling => "transport error",
        Mode::WebSocket | Mode::Upgrade => "transport close",
    };
    assert_eq!(seen.last().unwrap()["reason"], want, "{seen:?}");
    assert_eq!(io.sockets().len(), 0);
}

/// `io.close(grace)`, as the reference's `io.close()`: no DISCONNECT, the client sees the
/// transport close and tries to reconnect, and the closed server refuses its handshakes;
/// the server-side reason is `ServerShuttingDown`; `close` returns.
async fn shutdown(mode: Mode) {
    let Some(node) = common::node("shutdown", "socket.io-client") else {
        return;
    };
    let (layer, io) = SocketIo::builder().build_layer();
    let (tx, mut rx) = mpsc::unbounded_channel();
    let (ready_tx, mut ready_rx) = mpsc::unbounded_channel::<()>();
    let on_connect = move |socket: SocketRef| {
        record_disconnect(&socket, &tx);
        let ready = ready_tx.clone();
        socket.on("ready", move || {
            let _ = ready.send(());
        });
    };
    io.ns("/", on_connect.clone());
    io.ns("/admin", on_connect);
    let server = common::serve_layer(layer).await;
    let url = server.base_url();
    let run = tokio::spawn(async move {
        common::run_node(
            &node,
            "sio/client.mjs",
            &[&url, mode.arg(), "shutdown"],
            SCRIPT,
        )
        .await
    });
    step("the client's ready event", ready_rx.recv())
        .await
        .expect("ready");
    assert_eq!(io.connection_count(), 1);
    if matches!(mode, Mode::Polling) {
        // The close must find the client's poll waiting in the server. Between two polls
        // the client would meet a refused poll instead and report a transport error, as it
        // does with the reference. The POST that carried `ready` is done by now (this
        // runtime has one thread), so the one request parked is the GET.
        server
            .parked(1, "the client's GET waits in the server")
            .await;
    }
    within(
        Duration::from_secs(5),
        "io.close(3 s) returns",
        io.close(Duration::from_secs(3)),
    )
    .await;
    assert_eq!(io.connection_count(), 0, "every session closed");
    let res = result_json(
        within(SCRIPT, "the client script", run)
            .await
            .expect("client task"),
        "socket.io-client shutdown",
    );
    assert_eq!(res["mainReason"], "transport close", "{res}");
    assert_eq!(res["adminReason"], "transport close", "{res}");
    assert_eq!(res["refused"], 2, "reconnection attempts refused: {res}");
    assert!(res["attempts"].as_u64() >= Some(2), "{res}");
    assert_eq!(res["connected"], json!([false, false]));
    assert_transport(&res, mode);
    let mut reasons: Vec<(String, String)> = drain(&mut rx)
        .iter()
        .map(|v| {
            (
                v["disconnect"].as_str().unwrap().to_owned(),
                v["reason"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    reasons.sort();
    assert_eq!(
        reasons,
        [
            ("/".to_owned(), "server shutting down".to_owned()),
            ("/admin".to_owned(), "server shutting down".to_owned())
        ]
    );
}

/// An Engine.IO connection that joins no namespace is closed after `connect_timeout`; one that
/// joined stays.
async fn connect_timeout(mode: Mode) {
    let Some(node) = common::node("connect_timeout", "engine.io-client") else {
        return;
    };
    let (layer, io) = SocketIo::builder()
        .connect_timeout(Duration::from_millis(300))
        .build_layer();
    io.ns("/", |_s: SocketRef| {});
    let server = common::serve_layer(layer).await;
    let out = common::run_node(
        &node,
        "sio/engine_only.mjs",
        &[&server.base_url(), mode.arg()],
        SCRIPT,
    )
    .await;
    let res = result_json(out, &format!("engine.io-client connect timeout ({mode:?})"));
    assert!(res["idle"]["closed"].is_string(), "idle closed: {res}");
    let after = res["idle"]["closedAfterMs"]
        .as_u64()
        .expect("closedAfterMs");
    assert!(
        (250..4000).contains(&after),
        "closed by the connect timeout, not at once: {res}"
    );
    assert_eq!(res["joined"]["closed"], Value::Null, "{res}");
    assert!(
        res["joined"]["connectReply"]
            .as_str()
            .is_some_and(|m| m.starts_with("0{\"sid\":")),
        "{res}"
    );
    assert_eq!(res["joined"]["transport"], mode.final_transport(), "{res}");
}
