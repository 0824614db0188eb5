//! The chat demo on several servers joined through Redis (feature `redis`) or PostgreSQL
//! (feature `postgres`).
//!
//! `cargo run --example cluster --features redis -- 3` starts 3 servers on ports 3001..3003
//! against the Redis at `REDIS_URL` (default `redis://127.0.0.1:6379`);
//! `cargo run --example cluster --features postgres -- 3 postgres` (or `ADAPTER=postgres`)
//! joins them through the PostgreSQL at `DATABASE_URL` (default
//! `postgres://postgres@127.0.0.1:5432/postgres`). Open the chat on two different ports:
//! messages, rooms and typing hints cross servers. A Node.js server with
//! `@socket.io/redis-adapter` (key `socket.io`) or `@socket.io/postgres-adapter` (channel
//! prefix `socket.io`) can join the same cluster.
//!
//! `cargo run --example cluster --features redis-streams -- 3 streams` (or `ADAPTER=streams`)
//! joins them through a Redis stream instead (`@socket.io/redis-streams-adapter`, stream and
//! channel prefix `socket.io-streams`, so it never meets a classic cluster on the same
//! Redis), with connection state recovery across servers: a browser that loses its server
//! and comes back through another one keeps its socket id and rooms, and gets every message
//! it missed. (Only [`SocketData`](tower_socketio::SocketData) crosses servers with a
//! session; this chat keeps its nickname in a typed extension, which stays on the server
//! that set it.)
//!
//! Nicknames are checked per server in this demo (the check is the app's state, not
//! the adapter's).

use std::net::SocketAddr;

use tower_socketio::adapter::AdapterFactory;

#[path = "../chat/app.rs"]
#[allow(dead_code)]
mod app;

/// The adapter of one server: a link of its own (each link counts as one node), its
/// factory, and what keeps the link alive.
async fn adapter(
    kind: &str,
) -> Result<(AdapterFactory, Box<dyn std::any::Any + Send>), Box<dyn std::error::Error>> {
    match kind {
        #[cfg(feature = "redis")]
        "redis" => {
            use tower_socketio::adapter::redis::{RedisAdapterConfig, RedisLink};
            let url =
                std::env::var("REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into());
            let link = RedisLink::connect(&url, RedisAdapterConfig::default()).await?;
            Ok((link.factory(), Box::new(link)))
        }
        #[cfg(feature = "redis-streams")]
        "streams" => {
            use tower_socketio::adapter::redis::streams::{RedisStreamsConfig, RedisStreamsLink};
            let url =
                std::env::var("REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into());
            let config = RedisStreamsConfig {
                stream_name: "socket.io-streams".into(),
                channel_prefix: "socket.io-streams".into(),
                ..RedisStreamsConfig::default()
            };
            let link = RedisStreamsLink::connect(&url, config).await?;
            Ok((link.factory(), Box::new(link)))
        }
        #[cfg(feature = "postgres")]
        "postgres" => {
            use tower_socketio::adapter::postgres::{PostgresAdapterConfig, PostgresLink};
            let url = std::env::var("DATABASE_URL")
                .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into());
            let link = PostgresLink::connect(&url, PostgresAdapterConfig::default()).await?;
            Ok((link.factory(), Box::new(link)))
        }
        other => Err(format!(
            "adapter {other:?} is not available: build with --features redis, redis-streams or postgres"
        )
        .into()),
    }
}

/// Waits until the link has joined the cluster for every namespace created so far.
async fn wait_ready(link: &(dyn std::any::Any + Send)) {
    #[cfg(feature = "redis")]
    if let Some(link) = link.downcast_ref::<tower_socketio::adapter::redis::RedisLink>() {
        link.wait_subscribed().await;
    }
    #[cfg(feature = "redis-streams")]
    if let Some(link) =
        link.downcast_ref::<tower_socketio::adapter::redis::streams::RedisStreamsLink>()
    {
        link.wait_subscribed().await;
    }
    #[cfg(feature = "postgres")]
    if let Some(link) = link.downcast_ref::<tower_socketio::adapter::postgres::PostgresLink>() {
        link.wait_listening().await;
    }
    let _ = link;
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "info,tower_socketio=info".into()),
        )
        .init();
    let nodes: u16 = std::env::args()
        .nth(1)
        .and_then(|n| n.parse().ok())
        .unwrap_or(2);
    let kind = std::env::args()
        .nth(2)
        .or_else(|| std::env::var("ADAPTER").ok())
        .unwrap_or_else(|| {
            if cfg!(feature = "redis") {
                "redis".into()
            } else {
                "postgres".into()
            }
        });
    let base: u16 = std::env::var("BASE_PORT")
        .ok()
        .and_then(|p| p.parse().ok())
        .unwrap_or(3001);
    let mut servers = Vec::new();
    for i in 0..nodes {
        let (factory, link) = adapter(&kind).await?;
        let (app, _io) = app::router_with(|b| b.adapter(factory));
        wait_ready(&*link).await;
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", base + i)).await?;
        println!(
            "node {i} ({kind}): chat on http://{}",
            listener.local_addr()?
        );
        servers.push(tokio::spawn(async move {
            let _link = link;
            axum::serve(
                listener,
                app.into_make_service_with_connect_info::<SocketAddr>(),
            )
            .await
        }));
    }
    for s in servers {
        s.await??;
    }
    Ok(())
}
