//! The Admin UI's namespace against the reference: `tests/clients/admin/scenario.mjs` drives
//! one scenario (an admin client, sockets connecting, joining rooms, events, every command)
//! against a Node server with `@socket.io/admin-ui`'s `instrument()` and against ours, and
//! the two transcripts (every admin event in order, ids and dates normalized) must match.
//! Malformed commands go to ours only (the reference acts on them) and must change nothing.
#![cfg(feature = "admin")]

mod common;

use std::time::Duration;

use serde_json::Value;
use tower_socketio::admin::{AdminAuth, AdminMode, AdminOptions};
use tower_socketio::{AckSender, Data, SocketIo, SocketRef};

/// The app the scenario expects, the same as the script's reference server.
fn app(socket: SocketRef) {
    socket.on("join", |s: SocketRef, Data(room): Data<String>| {
        s.join(room)
    });
    socket.on("leave", |s: SocketRef, Data(room): Data<String>| {
        s.leave(room)
    });
    socket.on(
        "hello",
        |s: SocketRef, Data(args): Data<Vec<Value>>, ack: AckSender| {
            s.emit_args("hi", &args).ok();
            ack.send(&"ok").ok();
        },
    );
}

const HASH: &str = "$2b$10$heqvAkYMez.Va6Et2uXInOnkCT6/uQj1brkrbyG3LpopDklcq7ZOS";

async fn ours(scenario: &str) -> (common::TestServer, SocketIo) {
    let (layer, io) = SocketIo::builder().build_layer();
    io.ns("/", app);
    io.ns("/other", app);
    let mut options = AdminOptions::new().server_id("srv-test");
    match scenario {
        "readonly" => options = options.read_only(true),
        "prod" => options = options.mode(AdminMode::Production),
        "auth" => options = options.auth(AdminAuth::basic("admin", HASH).expect("valid hash")),
        _ => {}
    }
    io.instrument(options).expect("instrument");
    let server = common::serve_router(axum::Router::new().layer(layer)).await;
    (server, io)
}

async fn transcript(node: &common::Node, target: &str, scenario: &str) -> Value {
    let out = common::run_node(
        node,
        "admin/scenario.mjs",
        &[target, scenario],
        Duration::from_secs(60),
    )
    .await;
    let stdout = out.expect_success(&format!("admin scenario {scenario} against {target}"));
    let line = stdout
        .lines()
        .find_map(|l| l.strip_prefix("RESULT "))
        .unwrap_or_else(|| panic!("no RESULT line:\n{stdout}"));
    serde_json::from_str(line).expect("RESULT is JSON")
}

fn diff(reference: &Value, ours: &Value) -> String {
    let (r, o) = (
        serde_json::to_string_pretty(reference).unwrap_or_default(),
        serde_json::to_string_pretty(ours).unwrap_or_default(),
    );
    let first = r
        .lines()
        .zip(o.lines())
        .position(|(a, b)| a != b)
        .unwrap_or(0);
    let around = |s: &str| {
        s.lines()
            .skip(first.saturating_sub(8))
            .take(20)
            .collect::<Vec<_>>()
            .join("\n")
    };
    format!(
        "first difference at line {first}\n--- reference ---\n{}\n--- ours ---\n{}",
        around(&r),
        around(&o)
    )
}

async fn compare(scenario: &str) {
    let test = format!("admin_{scenario}");
    let Some(node) = common::node(&test, "@socket.io/admin-ui") else {
        return;
    };
    let reference = transcript(&node, "ref", scenario).await;
    let (server, io) = ours(scenario).await;
    let ours = transcript(&node, &server.base_url(), scenario).await;
    assert!(
        reference == ours,
        "scenario {scenario}: our admin namespace differs from the reference\n{}",
        diff(&reference, &ours)
    );
    io.close(Duration::from_secs(2)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admin_development_mode_matches_reference() {
    compare("dev").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admin_read_only_matches_reference() {
    compare("readonly").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admin_production_mode_matches_reference() {
    compare("prod").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admin_basic_auth_matches_reference() {
    compare("auth").await;
}

#[tokio::test]
async fn admin_refuses_a_password_that_is_not_a_bcrypt_hash() {
    assert!(AdminAuth::basic("admin", "changeit").is_err());
    assert!(AdminAuth::basic("admin", HASH).is_ok());
    let (_layer, io) = SocketIo::builder().build_layer();
    io.instrument(AdminOptions::new())
        .expect("first instrument");
    assert!(
        io.instrument(AdminOptions::new()).is_err(),
        "a second instrument must fail"
    );
}
