//! Socket.IO under a custom path, beside an app of its own.
//!
//! `cargo run --example custom_path`, then connect with
//! `io("http://127.0.0.1:3000", { path: "/realtime/" })`.

use axum::{Router, routing::get};
use tower_socketio::{AckSender, Data, SocketIo, SocketRef};

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let (layer, io) = SocketIo::builder().path("/realtime").build_layer();
    io.ns("/", |socket: SocketRef| {
        socket.on("hello", |Data(name): Data<String>, ack: AckSender| {
            ack.send(&format!("hello, {name}")).ok();
        });
    });
    // Everything outside /realtime/ is the app's.
    let app = Router::new()
        .route("/", get(|| async { "the app" }))
        .route("/socket.io/", get(|| async { "not Socket.IO here" }))
        .layer(layer);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:3000").await?;
    println!("socket.io on http://127.0.0.1:3000/realtime/");
    axum::serve(listener, app).await
}
