//! The cluster node of `scripts/bench.sh`'s `cluster` scenario: `examples/bench_value.rs`
//! (README style, `Data<serde_json::Value>`, `#[tokio::main]`, `axum::serve`) with a Redis
//! adapter, the way the README sets it up. Several of these on one Redis form a cluster.
//!
//! `BENCH_ADAPTER` picks the adapter: `pubsub` (default) is the Redis pub/sub adapter
//! (`RedisLink`), `streams` the Redis Streams adapter (`RedisStreamsLink`, needs the
//! feature `redis-streams`). `BENCH_REDIS_KEY` (default `socket.io`) is the pub/sub key
//! prefix, or the stream name and channel prefix, so a run shares no channel or stream with
//! anything else on that Redis.
//!
//! `cargo run --release --features redis --example bench_cluster -- 127.0.0.1:3100`
//! `BENCH_ADAPTER=streams cargo run --release --features redis-streams --example bench_cluster -- 127.0.0.1:3100`
//! (Redis at `REDIS_URL`, default `redis://127.0.0.1:6379`)

use axum::serve::ListenerExt;
use serde_json::Value;
use tower_socketio::adapter::AdapterFactory;
use tower_socketio::adapter::redis::{RedisAdapterConfig, RedisLink};
use tower_socketio::{AckSender, Data, SocketIo, SocketRef};

/// The link of this node, kept alive for the life of the server.
enum Link {
    PubSub(RedisLink),
    #[cfg(feature = "redis-streams")]
    Streams(tower_socketio::adapter::redis::streams::RedisStreamsLink),
}

impl Link {
    async fn connect(
        kind: &str,
        url: &str,
        key: Option<String>,
    ) -> Result<Self, Box<dyn std::error::Error>> {
        match kind {
            "pubsub" => {
                let mut config = RedisAdapterConfig::default();
                if let Some(key) = key {
                    config.key = key;
                }
                Ok(Link::PubSub(RedisLink::connect(url, config).await?))
            }
            #[cfg(feature = "redis-streams")]
            "streams" => {
                use tower_socketio::adapter::redis::streams::{
                    RedisStreamsConfig, RedisStreamsLink,
                };
                let mut config = RedisStreamsConfig::default();
                if let Some(key) = key {
                    config.session_key_prefix = format!("{key}:session:");
                    config.stream_name = key.clone();
                    config.channel_prefix = key;
                }
                Ok(Link::Streams(RedisStreamsLink::connect(url, config).await?))
            }
            other => Err(format!(
                "BENCH_ADAPTER={other:?}: expected pubsub, or streams (built with --features redis-streams)"
            )
            .into()),
        }
    }

    fn factory(&self) -> AdapterFactory {
        match self {
            Link::PubSub(link) => link.factory(),
            #[cfg(feature = "redis-streams")]
            Link::Streams(link) => link.factory(),
        }
    }

    async fn wait_subscribed(&self) {
        match self {
            Link::PubSub(link) => link.wait_subscribed().await,
            #[cfg(feature = "redis-streams")]
            Link::Streams(link) => link.wait_subscribed().await,
        }
    }
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let addr: std::net::SocketAddr = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:3100".into())
        .parse()?;
    let url = std::env::var("REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into());
    let kind = std::env::var("BENCH_ADAPTER").unwrap_or_else(|_| "pubsub".into());
    let link = Link::connect(&kind, &url, std::env::var("BENCH_REDIS_KEY").ok()).await?;
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
    println!("ready tower-socketio cluster node ({kind}) on {addr}");
    axum::serve(listener, app).await?;
    Ok(())
}
