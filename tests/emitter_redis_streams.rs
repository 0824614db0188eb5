//! The Redis Streams emitter against the real thing: it drives a mixed cluster (a Rust
//! server with our Redis Streams adapter, a Node server with
//! `@socket.io/redis-streams-adapter`, `socket.io-client` sockets on both) exactly as a
//! server node's own operations do, and an unreachable Redis is an error, never a hang.
#![cfg(feature = "redis-streams")]

mod common;
mod emitter_support;

use std::time::Duration;

use tower_socketio::adapter::redis::streams::{RedisStreamsConfig, RedisStreamsLink};
use tower_socketio::emitter::{Emitter, EmitterError, RedisStreamsEmitterConfig};

/// The Redis to use: `TSIO_REDIS_URL`, else the local default if it answers.
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn drives_a_mixed_streams_cluster_like_a_server_node() {
    let test = "drives_a_mixed_streams_cluster_like_a_server_node";
    let Some(url) = redis_url(test).await else {
        return;
    };
    let Some(node) = common::node(test, "@socket.io/redis-streams-adapter") else {
        return;
    };
    let name = format!(
        "tsio-emitter-streams-{}",
        tower_socketio::engine::Sid::new()
    );
    let link = RedisStreamsLink::connect(
        &url,
        RedisStreamsConfig {
            stream_name: name.clone(),
            channel_prefix: name.clone(),
            block_time: Duration::from_millis(500),
            ..Default::default()
        },
    )
    .await
    .expect("connect to redis");
    let waiting = link.clone();
    let rust = emitter_support::rust_node(
        link.factory(),
        || async move { waiting.wait_subscribed().await },
        Box::new(link),
    )
    .await;
    let emitter = Emitter::redis_streams(
        &url,
        RedisStreamsEmitterConfig {
            stream_name: name.clone(),
            channel_prefix: name.clone(),
            ..Default::default()
        },
    )
    .await
    .expect("emitter connects");
    let adapter = ["redis-streams".to_owned(), url.clone(), name.clone()];
    emitter_support::mixed_cluster(&node, &adapter, rust, emitter).await;
    let mut conn = redis::Client::open(url.as_str())
        .expect("url")
        .get_multiplexed_async_connection()
        .await
        .expect("redis");
    let _: () = redis::cmd("DEL")
        .arg(&name)
        .query_async(&mut conn)
        .await
        .expect("del");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_connection_is_an_error() {
    // A port nothing listens on: bound, then released.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("free port")
        .port();
    let got = common::within(
        Duration::from_secs(10),
        "connect to a closed port",
        Emitter::redis_streams(
            &format!("redis://127.0.0.1:{port}"),
            RedisStreamsEmitterConfig::default(),
        ),
    )
    .await;
    assert!(
        matches!(got, Err(EmitterError::Unreachable { .. })),
        "{got:?}"
    );
}
