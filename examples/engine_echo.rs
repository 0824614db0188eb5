//! An Engine.IO-only server: every message is sent back to its sender.
//!
//! `cargo run --example engine_echo` then connect an engine.io client to
//! `http://127.0.0.1:3000/engine.io/`.

use std::sync::Arc;

use tower_socketio::engine::{
    CloseReason, Engine, EngineConfig, EngineHandler, EngineLayer, Frame, Gate, Message, Session,
};

struct Echo;

impl EngineHandler for Echo {
    type Data = ();

    fn on_open(&self, session: &Arc<Session<()>>) {
        tracing::info!(sid = %session.id(), "open");
    }

    fn on_message(&self, session: &Arc<Session<()>>, msg: Message) -> Option<Gate> {
        let frame = match msg {
            Message::Text(t) => Frame::message(&t),
            Message::Binary(b) => Frame::binary(b),
        };
        if let Err(e) = session.send(frame) {
            tracing::warn!(sid = %session.id(), error = %e, "echo dropped");
        }
        None
    }

    fn on_close(&self, session: &Arc<Session<()>>, reason: CloseReason) {
        tracing::info!(sid = %session.id(), reason = reason.as_str(), "close");
    }
}

#[tokio::main]
async fn main() -> std::io::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "info,tower_socketio=debug".into()),
        )
        .init();
    let engine = Engine::new(Echo, EngineConfig::default());
    let app = axum::Router::new()
        .route("/", axum::routing::get(|| async { "engine.io echo" }))
        .layer(EngineLayer::new(engine));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:3000").await?;
    println!("engine.io echo on http://127.0.0.1:3000/engine.io/");
    axum::serve(listener, app).await
}
