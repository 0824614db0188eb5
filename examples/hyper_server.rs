//! Socket.IO on plain hyper, without axum: the layer wraps any tower service, here one that
//! answers 404, served by hyper-util's connection builder (with upgrades, for WebSocket).
//!
//! `cargo run --example hyper_server`.

use std::convert::Infallible;

use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use hyper_util::service::TowerToHyperService;
use tower::ServiceBuilder;
use tower_socketio::{Data, SocketIo, SocketRef};

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let (layer, io) = SocketIo::new_layer();
    io.ns("/", |socket: SocketRef| {
        socket.on(
            "echo",
            |socket: SocketRef, Data(v): Data<serde_json::Value>| {
                socket.emit("echo", &v).ok();
            },
        );
    });
    // Any tower service can sit behind the layer; this one answers 404 to everything.
    let service = ServiceBuilder::new().layer(layer).service_fn(|_req| async {
        let mut res = http::Response::new(http_body_util::Full::new(bytes::Bytes::new()));
        *res.status_mut() = http::StatusCode::NOT_FOUND;
        Ok::<_, Infallible>(res)
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:3000").await?;
    println!("socket.io (plain hyper) on http://127.0.0.1:3000");
    loop {
        let (tcp, _) = listener.accept().await?;
        let service = TowerToHyperService::new(service.clone());
        tokio::spawn(async move {
            let conn = auto::Builder::new(TokioExecutor::new());
            if let Err(e) = conn
                .serve_connection_with_upgrades(TokioIo::new(tcp), service)
                .await
            {
                eprintln!("connection error: {e}");
            }
        });
    }
}
