//! The smallest Socket.IO server: every event is sent back to its sender, acks answered.
//!
//! `cargo run --example echo`, then point a socket.io client at `http://127.0.0.1:3000`.

use tower_socketio::{AckSender, DataArgs, Event, SocketIo, SocketRef, Value};

#[tokio::main]
async fn main() -> std::io::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .init();
    let (layer, io) = SocketIo::new_layer();
    io.ns("/", |socket: SocketRef| {
        // Any event, its arguments as they came (binary data at any depth included), goes back
        // to its sender; an ack gets the same arguments.
        socket.on_fallback(
            |socket: SocketRef,
             Event(event): Event,
             DataArgs(args): DataArgs<Vec<Value>>,
             ack: AckSender| {
                socket.emit_args(&event, &args).ok();
                ack.send_args(&args).ok();
            },
        );
    });
    let app = axum::Router::new().layer(layer);
    let addr = std::env::var("ADDR").unwrap_or_else(|_| "127.0.0.1:3000".into());
    let listener = tokio::net::TcpListener::bind(&addr).await?;
    println!("socket.io echo on http://{addr}");
    axum::serve(listener, app).await
}
