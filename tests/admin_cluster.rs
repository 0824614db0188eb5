//! The Admin UI on a cluster of two of our servers (Redis adapter, real Redis): each reports
//! under its own server id, the dashboard connected to one sees and commands the sockets of
//! the other (`tests/clients/admin/cluster.mjs`).
#![cfg(all(feature = "admin", feature = "redis"))]

mod common;

use std::time::Duration;

use serde_json::{Value, json};
use tower_socketio::adapter::redis::{RedisAdapterConfig, RedisLink};
use tower_socketio::admin::AdminOptions;
use tower_socketio::{SocketData, SocketIo, SocketRef};

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

struct RustNode {
    io: SocketIo,
    server: common::TestServer,
    _link: RedisLink,
}

async fn node(url: &str, key: &str, id: &str) -> RustNode {
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
        socket
            .extensions()
            .insert(SocketData(json!({ "server": "rust" })));
    });
    io.instrument(AdminOptions::new().server_id(id))
        .expect("instrument");
    link.wait_subscribed().await;
    let server = common::serve_router(axum::Router::new().layer(layer)).await;
    RustNode {
        io,
        server,
        _link: link,
    }
}

async fn run(test: &str, mixed: bool) {
    let Some(url) = redis_url(test).await else {
        return;
    };
    let Some(nodejs) = common::node(test, "@socket.io/redis-adapter") else {
        return;
    };
    let key = format!("tsio-admin-{}", tower_socketio::engine::Sid::new());
    let r1 = node(&url, &key, "rust-1").await;
    let r2 = node(&url, &key, "rust-2").await;
    let (u1, u2) = (r1.server.base_url(), r2.server.base_url());
    let mut args = vec![u1.as_str(), u2.as_str()];
    if mixed {
        args.extend([url.as_str(), key.as_str()]);
    }
    let out = common::run_node(&nodejs, "admin/cluster.mjs", &args, Duration::from_secs(90)).await;
    let stdout = out.expect_success("admin cluster script");
    let line = stdout
        .lines()
        .find_map(|l| l.strip_prefix("RESULT "))
        .unwrap_or_else(|| panic!("no RESULT line:\n{stdout}"));
    let all: Value = serde_json::from_str(line).expect("RESULT is JSON");
    let servers = if mixed {
        json!(["node-1", "rust-1", "rust-2"])
    } else {
        json!(["rust-1", "rust-2"])
    };
    let runs: &[(&str, &str)] = if mixed {
        &[
            ("rust", "rust"),
            ("adminOnNode", "rust"),
            ("adminOnRust", "node"),
        ]
    } else {
        &[("rust", "rust")]
    };
    for (run, socket_server) in runs {
        let r = &all[run];
        assert_eq!(r["servers"], servers, "{run}: {r}");
        assert_eq!(r["connectedEvent"], json!("/"), "{run}: {r}");
        assert_eq!(r["listed"]["nsp"], json!("/"), "{run}: {r}");
        assert_eq!(
            r["listed"]["data"],
            json!({ "server": socket_server }),
            "{run}: {r}"
        );
        assert_eq!(r["listed"]["hasHandshake"], json!(true), "{run}: {r}");
        assert_eq!(r["listed"]["clientId"], json!(true), "{run}: {r}");
        assert_eq!(r["listed"]["transport"], json!("websocket"), "{run}: {r}");
        assert_eq!(r["cmd"], json!([1, "two"]), "{run}: {r}");
        assert_eq!(r["disconnect"], json!("io server disconnect"), "{run}: {r}");
    }
    r1.io.close(Duration::from_secs(2)).await;
    r2.io.close(Duration::from_secs(2)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admin_sees_and_commands_every_server_of_the_cluster() {
    run("admin_sees_and_commands_every_server_of_the_cluster", false).await;
}

/// A Node server instrumented by the package itself in the same cluster: one dashboard shows
/// the Rust and the Node servers, whichever it is connected to.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admin_in_a_mixed_cluster_with_an_instrumented_node_server() {
    run(
        "admin_in_a_mixed_cluster_with_an_instrumented_node_server",
        true,
    )
    .await;
}
