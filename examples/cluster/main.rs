//! The chat demo on several servers joined through Redis (feature `redis`).
//!
//! `cargo run --example cluster --features redis -- 3` starts 3 servers on ports 3001..3003
//! against the Redis at `REDIS_URL` (default `redis://127.0.0.1:6379`). Open the chat on
//! two different ports: messages, rooms and typing hints cross servers. A Node.js server
//! with `@socket.io/redis-adapter` (key `socket.io`) can join the same cluster.
//!
//! Nicknames are checked per server in this demo (the check is the app's state, not
//! the adapter's).

use std::net::SocketAddr;

use tower_socketio::adapter::redis::{RedisAdapterConfig, RedisLink};

#[path = "../chat/app.rs"]
#[allow(dead_code)]
mod app;

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
    let base: u16 = std::env::var("BASE_PORT")
        .ok()
        .and_then(|p| p.parse().ok())
        .unwrap_or(3001);
    let redis = std::env::var("REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into());
    let mut servers = Vec::new();
    for i in 0..nodes {
        // One link per server: each counts as one node of the cluster.
        let link = RedisLink::connect(&redis, RedisAdapterConfig::default()).await?;
        let factory = link.factory();
        let (app, _io) = app::router_with(|b| b.adapter(factory));
        link.wait_subscribed().await;
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", base + i)).await?;
        println!("node {i}: chat on http://{}", listener.local_addr()?);
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
