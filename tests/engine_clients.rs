//! Engine.IO interop: the official clients (npm `engine.io-client`, python-engineio's
//! `engineio.Client`) against an echo server built on the engine.
//!
//! The client scripts live in `tests/clients/engine/`; each prints one JSON line with what it
//! observed. The tests also check what the server saw: opens, messages (with the transport
//! they came over) and close reasons.
//!
//! Without node or python these tests print a loud skip notice and pass, unless
//! `TSIO_REQUIRE_SERVICES=1`, where they fail.

mod common;

use std::sync::Arc;
use std::time::Duration;

use futures_util::future::join_all;
use serde_json::{Value, json};
use tokio::sync::mpsc;
use tower_socketio::engine::{
    CloseReason, Engine, EngineConfig, EngineHandler, EngineLayer, Frame, Gate, Message, Session,
    TransportKind,
};

use common::{SCRIPT, ScriptOutput, TestServer, step};

#[derive(Debug, Clone, PartialEq)]
enum Event {
    Open(String),
    Message(String, TransportKind, Message),
    Close(String, CloseReason),
}

/// Echoes every message; on the text `close me` it sends `bye` and closes the session.
struct Echo {
    events: mpsc::UnboundedSender<Event>,
}

impl EngineHandler for Echo {
    type Data = ();

    fn on_open(&self, session: &Arc<Session<()>>) {
        let _ = self.events.send(Event::Open(session.id().to_string()));
    }

    fn on_message(&self, session: &Arc<Session<()>>, msg: Message) -> Option<Gate> {
        let _ = self.events.send(Event::Message(
            session.id().to_string(),
            session.transport(),
            msg.clone(),
        ));
        match msg {
            Message::Text(t) if t.as_str() == "close me" => {
                let _ = session.send(Frame::message("bye"));
                session.close(CloseReason::ServerClose);
            }
            Message::Text(t) => {
                let _ = session.send(Frame::message(&t));
            }
            Message::Binary(b) => {
                let _ = session.send(Frame::binary(b));
            }
        }
        None
    }

    fn on_close(&self, session: &Arc<Session<()>>, reason: CloseReason) {
        let _ = self
            .events
            .send(Event::Close(session.id().to_string(), reason));
    }
}

struct Server {
    server: TestServer,
    events: mpsc::UnboundedReceiver<Event>,
}

async fn start(config: EngineConfig) -> Server {
    let (tx, rx) = mpsc::unbounded_channel();
    let engine = Engine::new(Echo { events: tx }, config);
    let server = common::serve_layer(EngineLayer::new(engine)).await;
    Server { server, events: rx }
}

fn echo_config() -> EngineConfig {
    EngineConfig::builder()
        .ping_interval(Duration::from_secs(10))
        .ping_timeout(Duration::from_secs(10))
        .build()
}

/// Short pings; the timeout leaves room for client processes on a busy machine, and is still
/// well inside the 2 s the heartbeat scripts stay idle, so an unanswered ping closes the
/// session before they check it.
fn heartbeat_config() -> EngineConfig {
    EngineConfig::builder()
        .ping_interval(Duration::from_millis(300))
        .ping_timeout(Duration::from_millis(1000))
        .build()
}

impl Server {
    /// Every event of the one session the client opened, up to and including its close.
    async fn session_events(&mut self) -> Vec<Event> {
        let mut out = Vec::new();
        loop {
            let ev = step("server-side session events", self.events.recv())
                .await
                .expect("event channel closed");
            let last = matches!(ev, Event::Close(..));
            out.push(ev);
            if last {
                break;
            }
        }
        let Event::Open(sid) = &out[0] else {
            panic!("the first event must be the open: {out:?}");
        };
        for ev in &out[1..] {
            let s = match ev {
                Event::Open(s) => panic!("a second session opened ({s}): {out:?}"),
                Event::Message(s, ..) | Event::Close(s, _) => s,
            };
            assert_eq!(s, sid, "events of another session: {out:?}");
        }
        out
    }
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

fn messages_of(events: &[Event]) -> Vec<(TransportKind, Message)> {
    events
        .iter()
        .filter_map(|e| match e {
            Event::Message(_, t, m) => Some((*t, m.clone())),
            _ => None,
        })
        .collect()
}

fn close_of(events: &[Event]) -> CloseReason {
    match events.last() {
        Some(Event::Close(_, r)) => *r,
        other => panic!("no close event: {other:?}"),
    }
}

fn echoed() -> Value {
    json!([{ "text": "hello ☃" }, { "binary": [1, 2, 3, 255] }])
}

fn echo_messages(transport: TransportKind) -> Vec<(TransportKind, Message)> {
    vec![
        (transport, Message::Text("hello ☃".into())),
        (
            transport,
            Message::Binary(bytes::Bytes::from_static(&[1, 2, 3, 255])),
        ),
    ]
}

// ==========================================================================================
// Node.js: engine.io-client

async fn node_script(
    test: &str,
    config: EngineConfig,
    script: &str,
    args: &[&str],
) -> Option<(Value, Vec<Event>)> {
    let node = common::node(test, "engine.io-client")?;
    let mut server = start(config).await;
    let url = server.server.base_url();
    let mut all = vec![url.as_str()];
    all.extend_from_slice(args);
    let out = common::run_node(&node, &format!("engine/{script}"), &all, SCRIPT).await;
    let json = result_json(out, &format!("node {script} {args:?}"));
    Some((json, server.session_events().await))
}

#[tokio::test]
async fn node_client_polling_then_upgrade() {
    let Some((res, events)) = node_script(
        "node_client_polling_then_upgrade",
        echo_config(),
        "echo.mjs",
        &["upgrade"],
    )
    .await
    else {
        return;
    };
    assert_eq!(res["openedOn"], "polling");
    assert_eq!(res["transport"], "websocket");
    assert_eq!(res["echoes"], echoed());
    assert_eq!(res["closeReason"], "forced close");
    assert_eq!(
        messages_of(&events),
        echo_messages(TransportKind::WebSocket)
    );
    // engine.io-client closes a WebSocket without a close packet, as with the reference.
    assert_eq!(close_of(&events), CloseReason::TransportClose);
}

#[tokio::test]
async fn node_client_websocket_only() {
    let Some((res, events)) = node_script(
        "node_client_websocket_only",
        echo_config(),
        "echo.mjs",
        &["websocket"],
    )
    .await
    else {
        return;
    };
    assert_eq!(res["openedOn"], "websocket");
    assert_eq!(res["transport"], "websocket");
    assert_eq!(res["echoes"], echoed());
    assert_eq!(
        messages_of(&events),
        echo_messages(TransportKind::WebSocket)
    );
    assert_eq!(close_of(&events), CloseReason::TransportClose);
}

#[tokio::test]
async fn node_client_polling_only() {
    let Some((res, events)) = node_script(
        "node_client_polling_only",
        echo_config(),
        "echo.mjs",
        &["polling"],
    )
    .await
    else {
        return;
    };
    assert_eq!(res["openedOn"], "polling");
    assert_eq!(res["transport"], "polling");
    assert_eq!(res["echoes"], echoed());
    assert_eq!(messages_of(&events), echo_messages(TransportKind::Polling));
    // Over polling the client POSTs a close packet.
    assert_eq!(close_of(&events), CloseReason::ClientClose);
}

#[tokio::test]
async fn node_client_sees_server_close() {
    for mode in ["upgrade", "websocket", "polling"] {
        let Some((res, events)) = node_script(
            "node_client_sees_server_close",
            echo_config(),
            "server_close.mjs",
            &[mode],
        )
        .await
        else {
            return;
        };
        // What was queued before the close arrives first; then the client sees the close.
        assert_eq!(res["messages"], json!(["bye"]), "{mode}: {res}");
        assert_eq!(res["closeReason"], "transport close", "{mode}: {res}");
        assert_eq!(close_of(&events), CloseReason::ServerClose, "{mode}");
    }
}

#[tokio::test]
async fn node_client_heartbeat_keeps_session_alive() {
    // Both modes at once; 2 s idle is six ping intervals, and more than interval + timeout.
    let runs = join_all(["upgrade", "polling"].map(|mode| async move {
        let run = node_script(
            "node_client_heartbeat_keeps_session_alive",
            heartbeat_config(),
            "heartbeat.mjs",
            &[mode, "2000"],
        )
        .await;
        (mode, run)
    }))
    .await;
    for (mode, run) in runs {
        let Some((res, events)) = run else {
            return;
        };
        let pings = res["pings"].as_u64().expect("pings");
        assert!(pings >= 3, "{mode}: only {pings} pings in 2 s: {res}");
        assert_eq!(res["echoes"], json!([{ "text": "still there?" }]), "{mode}");
        assert_eq!(messages_of(&events).len(), 1, "{mode}: {events:?}");
        let want = match mode {
            "polling" => CloseReason::ClientClose,
            _ => CloseReason::TransportClose,
        };
        assert_eq!(close_of(&events), want, "{mode}");
    }
}

// ==========================================================================================
// Python: python-engineio

async fn python_script(
    test: &str,
    config: EngineConfig,
    script: &str,
    args: &[&str],
) -> Option<(Value, Vec<Event>)> {
    let python = common::python(test, "engineio")?;
    let mut server = start(config).await;
    let url = server.server.base_url();
    let mut all = vec![url.as_str()];
    all.extend_from_slice(args);
    let out = common::run_python(&python, &format!("engine/{script}"), &all, SCRIPT).await;
    let json = result_json(out, &format!("python {script} {args:?}"));
    Some((json, server.session_events().await))
}

/// python-engineio queues a close packet and closes its WebSocket at once: whichever the
/// server sees first decides the reason.
fn python_ws_close(reason: CloseReason) {
    assert!(
        matches!(
            reason,
            CloseReason::ClientClose | CloseReason::TransportClose
        ),
        "{reason:?}"
    );
}

#[tokio::test]
async fn python_client_polling_then_upgrade() {
    let Some((res, events)) = python_script(
        "python_client_polling_then_upgrade",
        echo_config(),
        "echo.py",
        &["upgrade"],
    )
    .await
    else {
        return;
    };
    assert_eq!(res["transport"], "websocket");
    assert_eq!(res["echoes"], echoed());
    assert_eq!(res["closeReason"], "client disconnect");
    assert_eq!(
        messages_of(&events),
        echo_messages(TransportKind::WebSocket)
    );
    python_ws_close(close_of(&events));
}

#[tokio::test]
async fn python_client_websocket_only() {
    let Some((res, events)) = python_script(
        "python_client_websocket_only",
        echo_config(),
        "echo.py",
        &["websocket"],
    )
    .await
    else {
        return;
    };
    assert_eq!(res["transport"], "websocket");
    assert_eq!(res["echoes"], echoed());
    assert_eq!(
        messages_of(&events),
        echo_messages(TransportKind::WebSocket)
    );
    python_ws_close(close_of(&events));
}

#[tokio::test]
async fn python_client_polling_only() {
    let Some((res, events)) = python_script(
        "python_client_polling_only",
        echo_config(),
        "echo.py",
        &["polling"],
    )
    .await
    else {
        return;
    };
    assert_eq!(res["transport"], "polling");
    assert_eq!(res["echoes"], echoed());
    assert_eq!(res["closeReason"], "client disconnect");
    assert_eq!(messages_of(&events), echo_messages(TransportKind::Polling));
    assert_eq!(close_of(&events), CloseReason::ClientClose);
}

#[tokio::test]
async fn python_client_sees_server_close() {
    // Over polling the close packet arrives ("server disconnect"); over WebSocket the
    // reference server, like this one, just closes the socket ("transport error" to this
    // client).
    for (mode, reason) in [
        ("polling", "server disconnect"),
        ("websocket", "transport error"),
        ("upgrade", "transport error"),
    ] {
        let Some((res, events)) = python_script(
            "python_client_sees_server_close",
            echo_config(),
            "server_close.py",
            &[mode],
        )
        .await
        else {
            return;
        };
        assert_eq!(res["messages"], json!(["bye"]), "{mode}: {res}");
        assert_eq!(res["closeReason"], reason, "{mode}: {res}");
        assert_eq!(close_of(&events), CloseReason::ServerClose, "{mode}");
    }
}

#[tokio::test]
async fn python_client_heartbeat_keeps_session_alive() {
    let runs = join_all(["upgrade", "polling"].map(|mode| async move {
        let run = python_script(
            "python_client_heartbeat_keeps_session_alive",
            heartbeat_config(),
            "heartbeat.py",
            &[mode, "2"],
        )
        .await;
        (mode, run)
    }))
    .await;
    for (mode, run) in runs {
        let Some((res, events)) = run else {
            return;
        };
        assert_eq!(res["pingInterval"], json!(0.3), "{mode}: {res}");
        assert_eq!(res["echoes"], json!([{ "text": "still there?" }]), "{mode}");
        assert_eq!(res["closeReason"], "client disconnect", "{mode}");
        assert_eq!(messages_of(&events).len(), 1, "{mode}: {events:?}");
        match mode {
            "polling" => assert_eq!(close_of(&events), CloseReason::ClientClose),
            _ => python_ws_close(close_of(&events)),
        }
    }
}
