//! A relay: every event a client sends, in any namespace, with any arguments (binary data at
//! any depth included), goes to the other clients of that namespace, unchanged. When the
//! sender asks for an ack, the relay asks the receivers for one too and answers the sender
//! with the arguments of the first receiver that answered (none when nobody did), so a
//! callback on one client is answered by a callback on another.
//!
//! `cargo run --example relay`, then connect two socket.io clients to
//! `http://127.0.0.1:3000/any-namespace`.

use tower_socketio::{AckSender, DataArgs, Event, SocketIo, SocketIoLayer, SocketRef, Value};

/// The relay's layer and server handle: one handler for every namespace.
pub fn relay_layer() -> (SocketIoLayer, SocketIo) {
    let (layer, io) = SocketIo::new_layer();
    io.dyn_ns_fn(|_path| true, on_connect);
    (layer, io)
}

fn on_connect(socket: SocketRef) {
    socket.on_fallback(relay_event);
}

/// Forwards one event, its argument list as it came: `DataArgs<Vec<Value>>` tells
/// `f()` from `f(null)` and `f([1, 2])` from `f(1, 2)`, and keeps binary data in place.
async fn relay_event(
    socket: SocketRef,
    Event(event): Event,
    DataArgs(args): DataArgs<Vec<Value>>,
    ack: AckSender,
) {
    let others = socket.broadcast();
    if !ack.requested() {
        if let Err(e) = others.emit_args(&event, &args).await {
            tracing::warn!(%event, error = %e, "relay failed");
        }
        return;
    }
    let answer: Vec<Value> = match others.emit_with_ack::<_, Vec<Value>>(&event, &args).await {
        Ok(answers) => answers
            .into_iter()
            .find_map(|(_, r)| r.ok())
            .unwrap_or_default(),
        Err(e) => {
            tracing::warn!(%event, error = %e, "relay failed");
            Vec::new()
        }
    };
    ack.send_args(&answer).ok();
}

#[allow(dead_code)] // the tests include this file for `relay_layer` alone
#[tokio::main]
async fn main() -> std::io::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .init();
    let (layer, _io) = relay_layer();
    let app = axum::Router::new().layer(layer);
    let addr = std::env::var("ADDR").unwrap_or_else(|_| "127.0.0.1:3000".into());
    let listener = tokio::net::TcpListener::bind(&addr).await?;
    println!("socket.io relay on http://{addr}");
    axum::serve(listener, app).await
}
