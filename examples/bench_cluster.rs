//! The cluster node of `scripts/bench.sh`'s `cluster` scenario: `examples/bench_value.rs`
//! (README style, `Data<serde_json::Value>`, `#[tokio::main]`, `axum::serve`) with the Redis
//! adapter, the way the README sets it up. Several of these on one Redis form a cluster; the
//! key prefix comes from `BENCH_REDIS_KEY` (default `socket.io`) so a run does not share
//! channels with anything else on that Redis.
//!
//! `cargo run --release --features redis --example bench_cluster -- 127.0.0.1:3100`
//! (Redis at `REDIS_URL`, default `redis://127.0.0.1:6379`)

use axum::serve::ListenerExt;
use serde_json::Value;
use tower_socketio::adapter::redis::{RedisAdapterConfig, RedisLink};
use tower_socketio::{AckSender, Data, SocketIo, SocketRef};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let addr: std::net::SocketAddr = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:3100".into())
        .parse()?;
    let url = std::env::var("REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into());
    let mut config = RedisAdapterConfig::default();
    if let Ok(key) = std::env::var("BENCH_REDIS_KEY") {
        config.key = key;
    }
    let link = RedisLink::connect(&url, config).await?;
    let (layer, io) = SocketIo::builder().adapter(link.factory()).build_layer();
    io.ns("/", |socket: SocketRef| {
        socket.on("echo", |s: SocketRef, Data(d): Data<Value>| {
            s.emit("echo", &d).ok();
        });
        socket.on(
            "join",
            |s: SocketRef, Data(room): Data<Option<String>>, ack: AckSender| {
                s.join(room.unwrap_or_else(|| "bench".into()));
                ack.send_args(&[0u8; 0]).ok();
            },
        );
        socket.on("bcast", |s: SocketRef, Data(d): Data<Value>| async move {
            s.within("bench").emit("bcast", &d).await.ok();
        });
    });
    // Subscribed before accepting clients, so that every node counts this one.
    link.wait_subscribed().await;
    let app = axum::Router::new().layer(layer);
    let socket = tokio::net::TcpSocket::new_v4()?;
    socket.set_reuseaddr(true)?;
    socket.bind(addr)?;
    let listener = socket.listen(4096)?.tap_io(|tcp| {
        tcp.set_nodelay(true).ok();
    });
    println!("ready tower-socketio cluster node on {addr}");
    axum::serve(listener, app).await?;
    Ok(())
}
