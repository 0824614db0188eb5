//! The relay example (`examples/relay.rs`) with real clients: socket.io-client over
//! polling, WebSocket and upgrade, and python-socketio. Two clients per namespace send each
//! other events and acks with every shape of argument list (none, `null`, an array, several,
//! binary at any depth, ordered keys) through the relay; the same client script also runs
//! against the same relay written for the Node reference server, and both results must be
//! identical, text for text.

mod common;
#[path = "support/node_server.rs"]
mod node_server;
#[path = "../examples/relay.rs"]
#[allow(dead_code)]
mod relay;

use common::{Mode, SCRIPT, ScriptOutput};
use node_server::NodeServer;

common::per_transport!(node_clients, python_clients);

fn last_line(out: ScriptOutput, what: &str) -> String {
    let stdout = out.expect_success(what);
    stdout
        .lines()
        .rev()
        .find(|l| !l.trim().is_empty())
        .unwrap_or_else(|| panic!("{what} printed nothing"))
        .to_owned()
}

fn check(ours: &str, reference: &str, mode: Mode, clients: &str) {
    let v: serde_json::Value = serde_json::from_str(ours).expect("result JSON");
    for nsp in ["/", "/relay-ns/42"] {
        for dir in ["there", "back"] {
            assert_eq!(
                v[nsp][dir]["ok"], true,
                "{clients} ({mode:?}) through our relay, {nsp} {dir}: {ours}"
            );
        }
    }
    assert_eq!(
        ours, reference,
        "{clients} ({mode:?}): our relay and Node's differ"
    );
}

async fn node_clients(mode: Mode) {
    let Some(node) = common::node("relay::node_clients", "socket.io") else {
        return;
    };
    let (layer, _io) = relay::relay_layer();
    let server = common::serve_layer(layer).await;
    let reference = NodeServer::start(&node, "relay/node_relay.mjs").await;
    let run = |url: String| {
        let node = node.clone();
        async move {
            let out =
                common::run_node(&node, "relay/client.mjs", &[&url, mode.arg()], SCRIPT).await;
            last_line(out, &format!("relay client ({mode:?}) on {url}"))
        }
    };
    let ours = run(server.base_url()).await;
    let theirs = run(reference.url.clone()).await;
    let v: serde_json::Value = serde_json::from_str(&ours).expect("result JSON");
    assert_eq!(v["transport"], mode.final_transport(), "{ours}");
    check(&ours, &theirs, mode, "socket.io-client");
}

/// The Python script's own watchdog is 55 s (long-polling on a loaded machine is slow).
const PYTHON_SCRIPT: std::time::Duration = std::time::Duration::from_secs(60);

async fn python_clients(mode: Mode) {
    let Some(python) = common::python("relay::python_clients", "socketio") else {
        return;
    };
    let Some(node) = common::node("relay::python_clients", "socket.io") else {
        return;
    };
    let (layer, _io) = relay::relay_layer();
    let server = common::serve_layer(layer).await;
    let reference = NodeServer::start(&node, "relay/node_relay.mjs").await;
    let run = |url: String| {
        let python = python.clone();
        async move {
            let out = common::run_python(
                &python,
                "relay/client.py",
                &[&url, mode.arg()],
                PYTHON_SCRIPT,
            )
            .await;
            last_line(out, &format!("python relay client ({mode:?}) on {url}"))
        }
    };
    let ours = run(server.base_url()).await;
    let theirs = run(reference.url.clone()).await;
    check(&ours, &theirs, mode, "python-socketio");
}
