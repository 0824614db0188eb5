//! Socket.IO interop with python-socketio (PyPI `socketio.Client`): connect with auth to two
//! namespaces, events and acks both ways, binary both ways, client and server disconnects;
//! over polling only, WebSocket only, and polling upgraded to WebSocket.
//!
//! The client lives in `tests/clients/sio/client.py`; it prints a JSON result as its last
//! line. Without the venv of `scripts/test.sh` these tests print a loud skip notice and
//! pass, unless `TSIO_REQUIRE_SERVICES=1`, where they fail.

mod common;

use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use tokio::sync::mpsc;
use tower_socketio::{AckError, AckSender, Binary, Data, DisconnectReason, SocketIo, SocketRef};

use common::{Mode, SCRIPT, ScriptOutput, TestServer};

common::per_transport!(basic, server_disconnect);

type Tx = mpsc::UnboundedSender<Value>;
type Rx = mpsc::UnboundedReceiver<Value>;

fn rec(tx: &Tx, v: Value) {
    let _ = tx.send(v);
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

fn result_json(out: ScriptOutput, what: &str) -> Value {
    let stdout = out.expect_success(what);
    let line = stdout
        .lines()
        .rev()
        .find(|l| !l.trim().is_empty())
        .unwrap_or_else(|| panic!("{what} printed nothing"));
    serde_json::from_str(line).unwrap_or_else(|e| panic!("{what}: bad JSON ({e}): {line}"))
}

/// Runs `client.py <url> <mode> <scenario>`; `None` when python-socketio is missing.
async fn client(test: &str, server: &TestServer, mode: Mode, scenario: &str) -> Option<Value> {
    let python = common::python(test, "socketio")?;
    let out = common::run_python(
        &python,
        "sio/client.py",
        &[&server.base_url(), mode.arg(), scenario],
        SCRIPT,
    )
    .await;
    Some(result_json(
        out,
        &format!("python-socketio {scenario} ({mode:?})"),
    ))
}

fn ack_result<R: Serialize>(r: Result<R, AckError>) -> Value {
    match r {
        Ok(v) => json!({"ok": v}),
        Err(AckError::Timeout) => json!({"err": "timeout"}),
        Err(e) => json!({"err": e.to_string()}),
    }
}

fn record_disconnect(socket: &SocketRef, tx: &Tx) {
    let tx = tx.clone();
    socket.on_disconnect(move |s: SocketRef, r: DisconnectReason| {
        rec(&tx, json!({"disconnect": s.ns(), "reason": r.as_str()}));
    });
}

#[derive(Debug, Deserialize, Serialize)]
struct Msg {
    text: String,
    n: u32,
}

#[derive(Debug, Deserialize)]
struct Upload {
    name: String,
    data: Binary,
}

#[derive(Debug, Serialize)]
struct Outgoing {
    name: String,
    data: Binary,
}

fn bytes(b: &Binary) -> Vec<u8> {
    b.0.to_vec()
}

async fn basic(mode: Mode) {
    let (layer, io) = SocketIo::builder().build_layer();
    let (tx, mut rx) = mpsc::unbounded_channel();
    let t = tx.clone();
    io.ns("/", move |socket: SocketRef, Data(auth): Data<Value>| {
        rec(&t, json!({"auth": auth, "sid": socket.id().to_string()}));
        record_disconnect(&socket, &t);
        socket.emit("welcome", &json!({"hello": auth["name"]})).ok();
        let t2 = t.clone();
        socket.on("typed", move |Data(m): Data<Msg>| {
            rec(&t2, json!({"typed": m}))
        });
        let t2 = t.clone();
        socket.on(
            "multi",
            move |Data((a, b, c)): Data<(u32, String, bool)>| rec(&t2, json!({"multi": [a, b, c]})),
        );
        let t2 = t.clone();
        socket.on("bin_top", move |Data(d): Data<Binary>| {
            rec(&t2, json!({"bin_top": bytes(&d)}))
        });
        let t2 = t.clone();
        socket.on("bin_struct_in", move |Data(u): Data<Upload>| {
            rec(&t2, json!({"bin_struct_in": [u.name, bytes(&u.data)]}))
        });
        socket.on("sum", |Data((a, b)): Data<(i64, i64)>, ack: AckSender| {
            ack.send(&(a + b)).ok();
        });
        socket.on("pair", |ack: AckSender| {
            ack.send_args(&(1, "a")).ok();
        });
        socket.on("bin_ack", |Data(d): Data<Binary>, ack: AckSender| {
            let mut v = bytes(&d);
            v.reverse();
            ack.send(&Binary::from(v)).ok();
        });
        socket.on(
            "server_acks",
            |socket: SocketRef, ack: AckSender| async move {
                let answer = socket
                    .emit_with_ack::<_, (Value,)>("ask", &(json!({"q": 21}),))
                    .await
                    .map(|(v,)| v);
                let multi = socket
                    .emit_with_ack::<_, (u32, String)>("ask_multi", &(1,))
                    .await;
                let bin = socket
                    .emit_with_ack::<_, (Binary,)>("bin_ask", &("give",))
                    .await
                    .map(|(b,)| bytes(&b));
                let out = Outgoing {
                    name: "srv".into(),
                    data: Binary::from(vec![0u8, 255, 128]),
                };
                socket.emit("bin_struct", &out).ok();
                ack.send(&json!({
                    "answer": ack_result(answer),
                    "multi": ack_result(multi),
                    "bin": ack_result(bin),
                }))
                .ok();
            },
        );
    });
    let t = tx.clone();
    io.ns("/admin", move |socket: SocketRef| {
        record_disconnect(&socket, &t);
        socket.on("who", |socket: SocketRef, ack: AckSender| {
            ack.send(&socket.ns()).ok();
        });
        let t2 = t.clone();
        socket.on(
            "to_admin",
            move |socket: SocketRef, Data(s): Data<String>| {
                rec(&t2, json!({"to_admin": s}));
                socket.emit("echo", &s).ok();
            },
        );
    });
    let server = common::serve_layer(layer).await;
    let Some(res) = client("basic", &server, mode, "basic").await else {
        return;
    };

    assert_eq!(res["welcome"], json!({"hello": "py"}), "{res}");
    assert_eq!(res["sum"], 3, "{res}");
    assert_eq!(res["pair"], json!([1, "a"]), "{res}");
    assert_eq!(
        res["binAck"],
        json!({"type": "bytes", "bytes": [12, 11, 10]}),
        "{res}"
    );
    assert_eq!(res["whoAdmin"], "/admin", "{res}");
    assert_eq!(
        res["server"],
        json!({
            "answer": {"ok": {"answer": 42}},
            "multi": {"ok": [2, "b"]},
            "bin": {"ok": [9, 8, 7]},
        }),
        "{res}"
    );
    assert_eq!(
        res["binStruct"],
        json!({"name": "srv", "data": {"type": "bytes", "bytes": [0, 255, 128]}}),
        "{res}"
    );
    assert_eq!(res["adminEcho"], "hello admin", "{res}");
    assert_eq!(res["transport"], mode.final_transport(), "{res}");

    // the client disconnected both namespaces
    let mut seen = recv_until(&mut rx, "the first disconnect", |v| {
        v.get("disconnect").is_some()
    })
    .await;
    seen.extend(
        recv_until(&mut rx, "the second disconnect", |v| {
            v.get("disconnect").is_some()
        })
        .await,
    );
    let (disconnects, events): (Vec<Value>, Vec<Value>) = seen
        .into_iter()
        .partition(|v| v.get("disconnect").is_some());
    assert_eq!(
        events,
        vec![
            json!({"auth": {"name": "py"}, "sid": res["sid"]}),
            json!({"typed": {"text": "hi", "n": 7}}),
            json!({"multi": [1, "two", true]}),
            json!({"bin_top": [1, 2, 3]}),
            json!({"bin_struct_in": ["file.bin", [4, 5, 6]]}),
            json!({"to_admin": "hello admin"}),
        ]
    );
    let mut disconnects: Vec<String> = disconnects
        .iter()
        .map(|v| format!("{} {}", v["disconnect"], v["reason"]))
        .collect();
    disconnects.sort();
    assert_eq!(
        disconnects,
        [
            "\"/\" \"client namespace disconnect\"",
            "\"/admin\" \"client namespace disconnect\""
        ]
    );
}

async fn server_disconnect(mode: Mode) {
    let (layer, io) = SocketIo::builder()
        .ping_interval(Duration::from_secs(10))
        .build_layer();
    let (tx, mut rx) = mpsc::unbounded_channel();
    io.ns("/", move |socket: SocketRef| {
        record_disconnect(&socket, &tx);
        socket.on("kick", |socket: SocketRef| socket.disconnect());
    });
    let server = common::serve_layer(layer).await;
    let Some(res) = client("server_disconnect", &server, mode, "server_disconnect").await else {
        return;
    };
    // python-socketio's wording of `io server disconnect` (Client.reason.SERVER_DISCONNECT)
    assert_eq!(res["reason"], "server disconnect", "{res}");
    assert_eq!(res["connected"], false, "{res}");
    assert_eq!(res["connects"], 1, "no reconnection: {res}");
    assert_eq!(res["transport"], mode.final_transport(), "{res}");
    let seen = recv_until(&mut rx, "the disconnect", |v| v.get("disconnect").is_some()).await;
    assert_eq!(
        seen,
        [json!({"disconnect": "/", "reason": "server namespace disconnect"})]
    );
}
