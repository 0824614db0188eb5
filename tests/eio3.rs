//! Engine.IO v3 / Socket.IO protocol v4 (`allow_eio3`), as `socket.io-client` 2.x speaks it.
//!
//! - With the official client (npm `socket.io-client@2`, installed as `socket.io-client-v2`),
//!   over polling only, WebSocket only and polling upgraded to WebSocket: the implicit join of
//!   `/` with the query as auth, custom namespaces with query auth, events and acks both ways,
//!   binary both ways (as binary payloads/frames and, with `forceBase64`, as base64 text),
//!   the client-initiated heartbeat, refusals seen as `error` events, disconnects both ways.
//!   The scenarios live in `tests/clients/eio3/client.mjs`.
//! - On the wire, by hand: the v3 polling framing (lengths in UTF-16 code units, the binary
//!   payload format), pings answered with pongs, the ping timeout, v3 WebSocket binary
//!   frames, and `EIO=3` refused with code 5 when `allow_eio3` is off.
//!
//! Without node the client tests print a loud skip notice and pass, unless
//! `TSIO_REQUIRE_SERVICES=1`, where they fail.

mod common;

use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::Message as Ws;
use tower_socketio::{
    AckError, AckSender, Binary, ConnectRejection, Data, DisconnectReason, SocketIo, SocketRef,
};

use common::{Mode, SCRIPT, ScriptOutput, TestServer, step, within};

common::per_transport!(
    events,
    namespaces,
    refused,
    binary,
    binary_base64,
    heartbeat,
    client_disconnect,
    server_disconnect,
);

// ------------------------------------------------------------------ the server

type Tx = mpsc::UnboundedSender<Value>;
type Rx = mpsc::UnboundedReceiver<Value>;

fn rec(tx: &Tx, v: Value) {
    let _ = tx.send(v);
}

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

fn b(bin: &Binary) -> Vec<u8> {
    bin.0.to_vec()
}

fn record_disconnect(socket: &SocketRef, tx: &Tx) {
    let tx = tx.clone();
    socket.on_disconnect(move |s: SocketRef, r: DisconnectReason| {
        rec(&tx, json!({"disconnect": s.ns(), "reason": r.as_str()}));
    });
}

#[derive(Debug, serde::Serialize)]
struct Outgoing {
    name: String,
    data: Binary,
    tail: String,
}

/// The server every client scenario runs against: `/` (refusing `token=nope`), `/admin`
/// (wanting `token=secret`), `/data` (refusing with data).
async fn server(tx: &Tx, heartbeat: Option<Duration>) -> (TestServer, SocketIo) {
    let mut builder = SocketIo::builder().allow_eio3(true);
    if let Some(d) = heartbeat {
        builder = builder.ping_interval(d).ping_timeout(d);
    }
    let (layer, io) = builder.build_layer();

    let t = tx.clone();
    io.ns("/", move |socket: SocketRef, Data(auth): Data<Value>| {
        rec(&t, json!({"connect": "/", "auth": auth.clone()}));
        record_disconnect(&socket, &t);
        socket
            .emit("welcome", &json!({"auth": auth, "ns": socket.ns()}))
            .ok();
        socket.on("echo", |socket: SocketRef, Data(d): Data<Value>| {
            socket.emit("echo", &d).ok();
        });
        socket.on("multi", |Data(d): Data<Value>, ack: AckSender| {
            ack.send(&d).ok();
        });
        socket.on("who", |socket: SocketRef, ack: AckSender| {
            ack.send(&json!({"ns": socket.ns(), "auth": socket.auth()}))
                .ok();
        });
        let t2 = t.clone();
        socket.on(
            "server_ask",
            move |socket: SocketRef, Data(n): Data<u32>| {
                let t2 = t2.clone();
                async move {
                    let r = socket
                        .emit_with_ack::<_, Vec<Value>>("ask", &(n,))
                        .await
                        .map_err(|e| e.to_string());
                    rec(&t2, json!({"ask": format!("{r:?}")}));
                    socket.emit("asked", &r.unwrap_or_default()).ok();
                }
            },
        );
        let t2 = t.clone();
        socket.on("seq", move |Data(i): Data<u32>| {
            rec(&t2, json!({"seq": i}));
        });
        socket.on("sync", |socket: SocketRef, ack: AckSender| {
            for i in 0..50 {
                socket.emit("down", &i).ok();
            }
            ack.send(&"synced").ok();
        });
        socket.on(
            "bin",
            |Data((d, obj)): Data<(Binary, Value)>, ack: AckSender| {
                let mut v = b(&d);
                v.reverse();
                let _ = obj;
                ack.send(&Binary::from(v)).ok();
            },
        );
        socket.on("bin_len", |Data(d): Data<Binary>, ack: AckSender| {
            ack.send(&d.0.len()).ok();
        });
        let t2 = t.clone();
        socket.on("bin_start", move |socket: SocketRef, ack: AckSender| {
            let t2 = t2.clone();
            async move {
                let out = Outgoing {
                    name: "srv é😀".into(),
                    data: Binary::from(vec![0u8, 255, 128]),
                    tail: "end".into(),
                };
                socket.emit("bin_back", &out).ok();
                let r = socket
                    .emit_with_ack::<_, (Binary, Vec<u8>)>(
                        "bin_ask",
                        &(Binary::from(vec![5u8, 6]),),
                    )
                    .await;
                let res = match r {
                    Ok((x, echoed)) => json!({"ok": [b(&x), echoed]}),
                    Err(AckError::Timeout) => json!({"err": "timeout"}),
                    Err(e) => json!({"err": e.to_string()}),
                };
                rec(&t2, json!({"bin_ask": res.clone()}));
                ack.send(&res).ok();
            }
        });
        socket.on("disconnect_me", |socket: SocketRef| socket.disconnect());
    })
    .with(|Data(auth): Data<Value>| {
        if auth["token"] == "nope" {
            Err(ConnectRejection::new("not authorized"))
        } else {
            Ok(())
        }
    });

    let t = tx.clone();
    io.ns(
        "/admin",
        move |socket: SocketRef, Data(auth): Data<Value>| {
            rec(&t, json!({"connect": "/admin", "auth": auth}));
            record_disconnect(&socket, &t);
            socket.on("who", |socket: SocketRef, ack: AckSender| {
                ack.send(&json!({"ns": socket.ns(), "auth": socket.auth()}))
                    .ok();
            });
        },
    )
    .with(|Data(auth): Data<Value>| {
        if auth["token"] == "secret" {
            Ok(())
        } else {
            Err(ConnectRejection::new("wrong token"))
        }
    });

    io.ns("/data", |_s: SocketRef| {})
        .with(|| Err::<(), _>(ConnectRejection::new("refused").with_data(json!({"code": 42}))));

    (common::serve_layer(layer).await, io)
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

/// Runs `eio3/client.mjs <url> <mode> <scenario> [flag]`; `None` when node is missing.
async fn client(
    test: &str,
    server: &TestServer,
    mode: Mode,
    scenario: &str,
    flag: Option<&str>,
) -> Option<Value> {
    let node = common::node(test, "socket.io-client-v2")?;
    let base = server.base_url();
    let mut args = vec![base.as_str(), mode.arg(), scenario];
    args.extend(flag);
    let out = common::run_node(&node, "eio3/client.mjs", &args, SCRIPT).await;
    Some(result_json(
        out,
        &format!("socket.io-client v2 {scenario} ({mode:?})"),
    ))
}

const TEXT: &str = "héllo wörld 😀 €";

// ------------------------------------------------------------------ client scenarios

async fn events(mode: Mode) {
    let (tx, mut rx) = mpsc::unbounded_channel();
    let (server, _io) = server(&tx, None).await;
    let Some(res) = client("eio3 events", &server, mode, "events", None).await else {
        return;
    };
    let auth = json!({"token": "t0", "name": "ann é"});
    assert_eq!(res["welcomed"], json!({"auth": auth, "ns": "/"}), "{res}");
    assert_eq!(res["echo"], json!({"text": TEXT, "n": 7}), "{res}");
    assert_eq!(res["multi"], json!([[1, "two", {"three": 3}]]), "{res}");
    assert_eq!(res["asked"], json!([42, TEXT]), "{res}");
    assert_eq!(res["count"], "synced", "{res}");
    assert_eq!(res["down"], json!((0..50).collect::<Vec<_>>()), "{res}");
    assert_eq!(res["last"], json!(["after", TEXT]), "{res}");
    assert_eq!(res["transport"], mode.final_transport(), "{res}");
    let seen = drain(&mut rx);
    assert_eq!(seen[0], json!({"connect": "/", "auth": auth}), "{seen:?}");
    let seqs: Vec<u64> = seen.iter().filter_map(|v| v["seq"].as_u64()).collect();
    assert_eq!(seqs, (0..50).collect::<Vec<_>>(), "in order: {seen:?}");
}

async fn namespaces(mode: Mode) {
    let (tx, mut rx) = mpsc::unbounded_channel();
    let (server, _io) = server(&tx, None).await;
    let Some(res) = client("eio3 namespaces", &server, mode, "namespaces", None).await else {
        return;
    };
    // `auth` is the raw JSON text the socket holds.
    let auth = |v: &Value| -> Value {
        serde_json::from_str(v["auth"].as_str().unwrap_or("null")).unwrap_or(Value::Null)
    };
    for who in [&res["who"], &res["whoAgain"]] {
        assert_eq!(who["ns"], "/admin", "{res}");
        assert_eq!(auth(who), json!({"token": "secret", "lang": "fr"}), "{res}");
    }
    assert_eq!(res["mainWho"]["ns"], "/", "{res}");
    assert_eq!(auth(&res["mainWho"]), json!({}), "{res}");
    // v4 refusals: the data when there is some, else the message; unknown namespaces as
    // the reference server words them.
    assert_eq!(res["badErr"], "wrong token", "{res}");
    assert_eq!(res["dataErr"], json!({"code": 42}), "{res}");
    assert_eq!(
        res["nopeErr"],
        json!({"message": "Invalid namespace"}),
        "{res}"
    );
    assert_eq!(res["badConnected"], false, "{res}");
    assert_eq!(res["sameEngine"], true, "{res}");
    assert_eq!(res["transport"], mode.final_transport(), "{res}");
    let connects: Vec<Value> = drain(&mut rx)
        .into_iter()
        .filter(|v| v["connect"] == "/admin")
        .collect();
    assert_eq!(
        connects,
        vec![json!({"connect": "/admin", "auth": {"token": "secret", "lang": "fr"}})]
    );
}

async fn refused(mode: Mode) {
    let (tx, mut rx) = mpsc::unbounded_channel();
    let (server, _io) = server(&tx, None).await;
    let Some(res) = client("eio3 refused", &server, mode, "refused", None).await else {
        return;
    };
    assert_eq!(res["err"], "not authorized", "{res}");
    assert_eq!(res["connectedEver"], false, "{res}");
    assert!(
        drain(&mut rx).iter().all(|v| v["connect"].is_null()),
        "the connect handler never ran"
    );
}

async fn binary_with(mode: Mode, flag: Option<&str>) {
    let (tx, mut rx) = mpsc::unbounded_channel();
    let (server, _io) = server(&tx, None).await;
    let Some(res) = client("eio3 binary", &server, mode, "binary", flag).await else {
        return;
    };
    assert_eq!(
        res["binAck"],
        json!({"kind": "Buffer", "bytes": [3, 2, 1]}),
        "{res}"
    );
    assert_eq!(
        res["fromServer"],
        json!({"name": "srv é😀", "data": {"kind": "Buffer", "bytes": [0, 255, 128]}, "tail": "end"}),
        "{res}"
    );
    assert_eq!(res["asked"], json!({"ok": [[9, 8, 7], [5, 6]]}), "{res}");
    assert_eq!(res["bigLen"], 3000, "{res}");
    assert_eq!(
        res["afterUpgrade"],
        json!({"kind": "Buffer", "bytes": [0, 255]}),
        "{res}"
    );
    assert_eq!(res["transport"], mode.final_transport(), "{res}");
    let asks: Vec<Value> = drain(&mut rx)
        .into_iter()
        .filter(|v| !v["bin_ask"].is_null())
        .collect();
    assert_eq!(asks, vec![json!({"bin_ask": {"ok": [[9, 8, 7], [5, 6]]}})]);
}

async fn binary(mode: Mode) {
    binary_with(mode, None).await
}

async fn binary_base64(mode: Mode) {
    binary_with(mode, Some("base64")).await
}

async fn heartbeat(mode: Mode) {
    let (tx, mut rx) = mpsc::unbounded_channel();
    let (server, _io) = server(&tx, Some(Duration::from_millis(300))).await;
    let Some(res) = client("eio3 heartbeat", &server, mode, "heartbeat", None).await else {
        return;
    };
    assert_eq!(res["pingInterval"], 300, "{res}");
    let pongs = res["pongs"].as_u64().unwrap_or(0);
    assert!(pongs >= 5, "each ping answered, many rounds: {res}");
    assert!(
        res["pings"].as_u64().unwrap_or(0) >= pongs,
        "pongs answer pings: {res}"
    );
    assert_eq!(res["disconnected"], Value::Null, "{res}");
    assert_eq!(res["alive"], "alive", "{res}");
    assert_eq!(res["transport"], mode.final_transport(), "{res}");
    // The script's exit may close the transport; nothing else may end the socket.
    let seen = drain(&mut rx);
    assert!(
        seen.iter()
            .all(|v| v["disconnect"].is_null() || v["reason"] == "transport close"),
        "no disconnect while the client pings: {seen:?}"
    );
}

async fn client_disconnect(mode: Mode) {
    let (tx, mut rx) = mpsc::unbounded_channel();
    let (server, _io) = server(&tx, None).await;
    let Some(res) = client(
        "eio3 client_disconnect",
        &server,
        mode,
        "client_disconnect",
        None,
    )
    .await
    else {
        return;
    };
    assert_eq!(res["mainStill"], "still", "{res}");
    assert_eq!(res["transport"], mode.final_transport(), "{res}");
    let seen = recv_until(&mut rx, "the disconnect of /", |v| v["disconnect"] == "/").await;
    let disconnects: Vec<&Value> = seen.iter().filter(|v| !v["disconnect"].is_null()).collect();
    assert_eq!(
        disconnects,
        vec![
            &json!({"disconnect": "/admin", "reason": "client namespace disconnect"}),
            &json!({"disconnect": "/", "reason": "client namespace disconnect"}),
        ],
        "{seen:?}"
    );
}

async fn server_disconnect(mode: Mode) {
    let (tx, mut rx) = mpsc::unbounded_channel();
    let (server, _io) = server(&tx, None).await;
    let Some(res) = client(
        "eio3 server_disconnect",
        &server,
        mode,
        "server_disconnect",
        None,
    )
    .await
    else {
        return;
    };
    assert_eq!(res["reason"], "io server disconnect", "{res}");
    assert_eq!(res["transport"], mode.final_transport(), "{res}");
    recv_until(&mut rx, "the server-side disconnect", |v| {
        v == &json!({"disconnect": "/", "reason": "server namespace disconnect"})
    })
    .await;
}

// ------------------------------------------------------------------ on the wire

fn http() -> reqwest::Client {
    reqwest::Client::new()
}

/// A raw v3 polling session.
struct Polling {
    base: String,
}

impl Polling {
    /// Handshakes with `EIO=3` (and `extra` query parameters); returns the session and the
    /// open packet's JSON.
    async fn open(server: &TestServer, extra: &str) -> (Self, Value) {
        let url = server.http_url(&format!("/socket.io/?EIO=3&transport=polling{extra}"));
        let res = step("handshake", http().get(&url).send())
            .await
            .expect("handshake");
        assert_eq!(res.status(), 200);
        let body = res.text().await.expect("body");
        let (len, open) = body.split_once(':').expect("a v3 payload");
        assert_eq!(len.parse::<usize>().ok(), Some(open.len()), "{body}");
        let json: Value =
            serde_json::from_str(open.strip_prefix('0').expect("open")).expect("json");
        let sid = json["sid"].as_str().expect("sid").to_owned();
        let base = server.http_url(&format!(
            "/socket.io/?EIO=3&transport=polling&sid={sid}{extra}"
        ));
        (Self { base }, json)
    }

    async fn get(&self) -> (String, Vec<u8>) {
        let res = step("GET", http().get(&self.base).send())
            .await
            .expect("GET");
        assert_eq!(res.status(), 200);
        let ct = res
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_owned();
        (ct, res.bytes().await.expect("body").to_vec())
    }

    async fn get_text(&self) -> String {
        let (ct, body) = self.get().await;
        assert!(ct.starts_with("text/plain"), "{ct}");
        String::from_utf8(body).expect("utf-8")
    }

    async fn post(&self, body: Vec<u8>, binary: bool) -> u16 {
        let ct = if binary {
            "application/octet-stream"
        } else {
            "text/plain;charset=UTF-8"
        };
        step(
            "POST",
            http()
                .post(&self.base)
                .header("content-type", ct)
                .body(body)
                .send(),
        )
        .await
        .expect("POST")
        .status()
        .as_u16()
    }
}

/// `<UTF-16 length>:<packet>`.
fn framed(packet: &str) -> String {
    format!("{}:{packet}", packet.encode_utf16().count())
}

#[tokio::test]
async fn eio3_refused_when_off() {
    let (layer, io) = SocketIo::builder().build_layer();
    io.ns("/", |_s: SocketRef| {});
    let server = common::serve_layer(layer).await;
    for transport in ["polling", "websocket"] {
        let url = server.http_url(&format!("/socket.io/?EIO=3&transport={transport}"));
        let res = step("handshake", http().get(&url).send())
            .await
            .expect("handshake");
        assert_eq!(res.status(), 400, "{transport}");
        let body: Value = serde_json::from_slice(&res.bytes().await.expect("body")).expect("json");
        assert_eq!(
            body,
            json!({"code": 5, "message": "Unsupported protocol version"})
        );
    }
    // EIO=4 still works, and EIO=2 is refused even with allow_eio3.
    let url = server.http_url("/socket.io/?EIO=4&transport=polling");
    assert_eq!(http().get(&url).send().await.expect("GET").status(), 200);
    let (layer, _io) = SocketIo::builder().allow_eio3(true).build_layer();
    let server = common::serve_layer(layer).await;
    let url = server.http_url("/socket.io/?EIO=2&transport=polling");
    let res = http().get(&url).send().await.expect("GET");
    assert_eq!(res.status(), 400);
}

#[tokio::test]
async fn polling_framing_on_the_wire() {
    let (tx, mut rx) = mpsc::unbounded_channel();
    let (server, _io) = server(&tx, None).await;
    let (p, open) = Polling::open(&server, "&token=raw").await;
    // The reference sends maxPayload to v3 clients too (differential case
    // v3_handshake_polling).
    assert_eq!(open["maxPayload"], json!(1_000_000), "{open}");
    assert_eq!(open["upgrades"], json!(["websocket"]));
    // `/` is joined without a CONNECT: its reply (no payload) then the connect handler's emit.
    let first = p.get_text().await;
    let welcome = r#"42["welcome",{"auth":{"token":"raw"},"ns":"/"}]"#;
    assert!(
        first == framed("40") + &framed(welcome) || first == framed("40"),
        "{first}"
    );
    if first == framed("40") {
        assert_eq!(p.get_text().await, framed(welcome));
    }
    // Client-initiated heartbeat: a ping is answered by a pong.
    assert_eq!(p.post(b"1:2".to_vec(), false).await, 200);
    assert_eq!(p.get_text().await, "1:3");
    // Lengths count UTF-16 code units both ways.
    let echo = format!(r#"42["echo",{}]"#, json!(TEXT));
    assert_eq!(
        p.post((framed(&echo) + &framed("2")).into_bytes(), false)
            .await,
        200
    );
    let got = p.get_text().await;
    assert!(
        got == framed(&echo) + "1:3" || got == framed(&echo),
        "UTF-16 lengths: {got}"
    );
    if got == framed(&echo) {
        assert_eq!(p.get_text().await, "1:3");
    }
    // A binary event in the binary payload format; the ack comes back the same way.
    let mut body = Vec::new();
    let head = r#"451-0["bin",{"_placeholder":true,"num":0},{"t":"é"}]"#;
    body.push(0u8);
    body.extend(head.len().to_string().bytes().map(|d| d - b'0'));
    body.push(0xff);
    body.extend_from_slice(head.as_bytes());
    body.extend_from_slice(&[1, 4, 0xff, 4, 1, 2, 3]);
    assert_eq!(p.post(body, true).await, 200);
    let (ct, got) = p.get().await;
    assert_eq!(ct, "application/octet-stream");
    let ack = r#"461-0[{"_placeholder":true,"num":0}]"#;
    let mut want = vec![0u8];
    want.extend(ack.len().to_string().bytes().map(|d| d - b'0'));
    want.push(0xff);
    want.extend_from_slice(ack.as_bytes());
    want.extend_from_slice(&[1, 4, 0xff, 4, 3, 2, 1]);
    assert_eq!(got, want);
    // A text payload may carry binary as base64; this client takes binary payloads back.
    let body = framed(r#"451-1["bin",{"_placeholder":true,"num":0},{}]"#) + "6:b4CQg=";
    assert_eq!(p.post(body.into_bytes(), false).await, 200);
    let (ct, got) = p.get().await;
    assert_eq!(ct, "application/octet-stream");
    let ack = r#"461-1[{"_placeholder":true,"num":0}]"#;
    let mut want = vec![0u8];
    want.extend(ack.len().to_string().bytes().map(|d| d - b'0'));
    want.push(0xff);
    want.extend_from_slice(ack.as_bytes());
    want.extend_from_slice(&[1, 3, 0xff, 4, 8, 9]);
    assert_eq!(got, want);
    // Malformed framing closes the session (the POST itself is answered, as the
    // reference does: differential case v3_polling_messages).
    assert_eq!(p.post(b"9:4abc".to_vec(), false).await, 200);
    recv_until(&mut rx, "the disconnect", |v| !v["disconnect"].is_null()).await;
}

#[tokio::test]
async fn base64_polling_on_the_wire() {
    let (tx, _rx) = mpsc::unbounded_channel();
    let (server, _io) = server(&tx, None).await;
    let (p, _) = Polling::open(&server, "&b64=1").await;
    let mut first = p.get_text().await;
    if first == framed("40") {
        first = p.get_text().await;
    }
    assert!(first.contains("welcome"), "{first}");
    let body = framed(r#"451-0["bin",{"_placeholder":true,"num":0},{}]"#) + "6:b4AQI=";
    assert_eq!(p.post(body.into_bytes(), false).await, 200);
    // b64=1: binary stays base64 text, never the binary payload format.
    let got = p.get_text().await;
    let ack = r#"461-0[{"_placeholder":true,"num":0}]"#;
    assert_eq!(got, framed(ack) + "6:b4AgE=");
}

#[tokio::test]
async fn ping_timeout_on_the_wire() {
    let (tx, mut rx) = mpsc::unbounded_channel();
    let (server, _io) = server(&tx, Some(Duration::from_millis(200))).await;
    let (p, _) = Polling::open(&server, "").await;
    let mut got = p.get_text().await;
    if got == framed("40") {
        got = p.get_text().await;
    }
    assert!(got.contains("welcome"), "{got}");
    // The server never pings a v3 client: the next GET waits until the session times out
    // for want of client pings (ping_interval + ping_timeout) and carries the close.
    let started = std::time::Instant::now();
    let closing = within(Duration::from_secs(3), "the close", p.get_text()).await;
    assert_eq!(closing, "1:1");
    let waited = started.elapsed();
    assert!(
        waited >= Duration::from_millis(300),
        "no close before the client's ping is due: {waited:?}"
    );
    recv_until(&mut rx, "ping timeout", |v| {
        v == &json!({"disconnect": "/", "reason": "ping timeout"})
    })
    .await;
}

#[tokio::test]
async fn websocket_on_the_wire() {
    let (tx, mut rx) = mpsc::unbounded_channel();
    let (server, _io) = server(&tx, None).await;
    let url = server.ws_url("/socket.io/?EIO=3&transport=websocket&token=ws");
    let (mut ws, _) = step("WebSocket handshake", tokio_tungstenite::connect_async(url))
        .await
        .expect("WebSocket handshake");
    let open = next(&mut ws).await;
    let open = open.to_text().expect("text").to_owned();
    assert!(
        open.starts_with("0{") && open.contains("\"maxPayload\":1000000"),
        "{open}"
    );
    assert_eq!(next(&mut ws).await, Ws::text("40"));
    let welcome = next(&mut ws).await;
    assert!(
        welcome.to_text().expect("text").contains("\"ws\""),
        "{welcome}"
    );
    // `/` is joined already: a CONNECT to it is ignored (no second reply, no second
    // connect handler), and the ping behind it is answered.
    ws.send(Ws::text("40")).await.expect("connect");
    ws.send(Ws::text("2")).await.expect("ping");
    assert_eq!(next(&mut ws).await, Ws::text("3"));
    // v3 binary frames start with the packet type byte 4, both ways.
    ws.send(Ws::text(r#"451-7["bin",{"_placeholder":true,"num":0},{}]"#))
        .await
        .expect("send");
    ws.send(Ws::binary(vec![4u8, 1, 2, 3])).await.expect("send");
    assert_eq!(
        next(&mut ws).await,
        Ws::text(r#"461-7[{"_placeholder":true,"num":0}]"#)
    );
    assert_eq!(next(&mut ws).await, Ws::binary(vec![4u8, 3, 2, 1]));
    // A binary frame without the type byte is a protocol error.
    ws.send(Ws::text(r#"451-8["bin",{"_placeholder":true,"num":0},{}]"#))
        .await
        .expect("send");
    ws.send(Ws::binary(vec![9u8, 9])).await.expect("send");
    let connects = drain(&mut rx)
        .iter()
        .filter(|v| !v["connect"].is_null())
        .count();
    assert_eq!(connects, 1, "one connect handler run");
    match step("close", ws.next()).await {
        Some(Ok(Ws::Close(_)) | Err(_)) | None => {}
        Some(Ok(other)) => panic!("expected the close, got {other:?}"),
    }
}

type WsStream =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

async fn next(ws: &mut WsStream) -> Ws {
    match step("a frame", ws.next()).await {
        Some(Ok(m)) => m,
        other => panic!("connection ended: {other:?}"),
    }
}
