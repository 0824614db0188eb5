//! A benchmark server written the way the README teaches: handlers taking
//! `Data<serde_json::Value>`, the runtime `#[tokio::main]` builds, `axum::serve`, and the
//! README's "Serving" advice (a listen backlog of 4096, `TCP_NODELAY`). `scripts/bench.sh`
//! runs it as the row `ours`; `examples/bench_typed.rs` is the same with a typed struct and
//! `examples/bench_server.rs` the hand-tuned server.
//!
//! Events (the same in every benchmark server): `echo` sends the argument back as `echo`;
//! `join` joins the room given (`bench` without one) and answers the ack; `leave` leaves the
//! room given; `bcast` broadcasts the argument (or its binary attachment) to `bench`, sender
//! included; `bcast-room (room, payload)` broadcasts the payload to that room.
//!
//! `cargo run --release --example bench_value -- 127.0.0.1:3100`
//! (`BENCH_RUNTIME=current_thread` for a current-thread runtime)

use axum::serve::ListenerExt;
use serde_json::Value;
use tower_socketio::{AckSender, Bin, Binary, Data, SocketIo, SocketRef};

fn main() -> std::io::Result<()> {
    // The runtime `#[tokio::main]` builds; with `BENCH_RUNTIME=current_thread`, the one
    // `#[tokio::main(flavor = "current_thread")]` builds (the row `ours-ct` of
    // scripts/bench.sh).
    let mut runtime = match std::env::var("BENCH_RUNTIME").as_deref() {
        Ok("current_thread") => tokio::runtime::Builder::new_current_thread(),
        _ => tokio::runtime::Builder::new_multi_thread(),
    };
    runtime.enable_all().build()?.block_on(serve())
}

async fn serve() -> std::io::Result<()> {
    let addr: std::net::SocketAddr = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:3100".into())
        .parse()
        .expect("address");
    let (layer, io) = SocketIo::new_layer();
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
        socket.on("leave", |s: SocketRef, Data(room): Data<String>| {
            s.leave(room)
        });
        socket.on(
            "bcast",
            |s: SocketRef, Data(d): Data<Value>, Bin(bins): Bin| async move {
                let to = s.within("bench");
                match bins.into_iter().next() {
                    Some(b) => to.emit("bcast", &Binary(b)).await.ok(),
                    None => to.emit("bcast", &d).await.ok(),
                };
            },
        );
        socket.on(
            "bcast-room",
            |s: SocketRef, Data((room, d)): Data<(String, Value)>| async move {
                s.within(room).emit("bcast-room", &d).await.ok();
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
    println!("ready tower-socketio (Data<Value>) on {addr}");
    axum::serve(listener, app).await
}
