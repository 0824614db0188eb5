//! A benchmark server written the way the README teaches, with typed payloads: handlers
//! taking `Data<Msg>` for a `#[derive(Deserialize, Serialize)]` struct, the runtime
//! `#[tokio::main]` builds, `axum::serve`, and the README's "Serving" advice (a listen backlog
//! of 4096, `TCP_NODELAY`). `scripts/bench.sh` runs it as the row `typed`; the events are those
//! of `examples/bench_value.rs`. The load generator's payload is `{"t":"<digits>","pad":"…"}`.
//!
//! `cargo run --release --example bench_typed -- 127.0.0.1:3100`

use axum::serve::ListenerExt;
use serde::{Deserialize, Serialize};
use tower_socketio::{AckSender, Bin, Binary, Data, SocketIo, SocketRef, TryData};

#[derive(Debug, Deserialize, Serialize)]
struct Msg {
    t: String,
    pad: String,
}

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let addr: std::net::SocketAddr = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:3100".into())
        .parse()
        .expect("address");
    let (layer, io) = SocketIo::new_layer();
    io.ns("/", |socket: SocketRef| {
        socket.on("echo", |s: SocketRef, Data(msg): Data<Msg>| {
            s.emit("echo", &msg).ok();
        });
        socket.on(
            "join",
            |s: SocketRef, Data(room): Data<Option<String>>, ack: AckSender| {
                s.join(room.unwrap_or_else(|| "bench".into()));
                ack.send_args(&[0u8; 0]).ok();
            },
        );
        socket.on("leave", |s: SocketRef, Data(room): Data<String>| {
            s.leave(room)
        });
        // A binary broadcast carries a placeholder where the struct would be.
        socket.on(
            "bcast",
            |s: SocketRef, TryData(msg): TryData<Msg>, Bin(bins): Bin| async move {
                let to = s.within("bench");
                match (bins.into_iter().next(), msg) {
                    (Some(b), _) => to.emit("bcast", &Binary(b)).await.ok(),
                    (None, Ok(msg)) => to.emit("bcast", &msg).await.ok(),
                    (None, Err(_)) => None,
                };
            },
        );
        socket.on(
            "bcast-room",
            |s: SocketRef, Data((room, msg)): Data<(String, Msg)>| async move {
                s.within(room).emit("bcast-room", &msg).await.ok();
            },
        );
    });
    let app = axum::Router::new().layer(layer);
    let socket = tokio::net::TcpSocket::new_v4()?;
    socket.set_reuseaddr(true)?;
    socket.bind(addr)?;
    let listener = socket.listen(4096)?.tap_io(|tcp| {
        tcp.set_nodelay(true).ok();
    });
    println!("ready tower-socketio (typed Data<Msg>) on {addr}");
    axum::serve(listener, app).await
}
