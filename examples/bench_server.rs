//! The benchmark server for `scripts/bench.sh`: tower-socketio implementing the benchmark
//! events, as a user would write them.
//!
//! - `echo`: the arguments go back to the sender as `echo`;
//! - `join`: the socket joins the room given as argument, `bench` without one, and answers
//!   the client's ack if it asked for one;
//! - `leave`: the socket leaves the room given as argument;
//! - `bcast`: the argument (or its binary attachment) is broadcast to the room `bench` as
//!   `bcast`, the sender included;
//! - `bcast-room` `(room, payload)`: the payload is broadcast to that room as `bcast-room`,
//!   the sender included (the rooms-churn senders are in no room).
//!
//! One thread (a current-thread tokio runtime, pinned by the script with `taskset`); the
//! listener is bound with a backlog of 4096 and sets `TCP_NODELAY`, as the other benchmark
//! servers (`tokio::net::TcpListener::bind` would use a backlog of 128 and drop SYNs under
//! connection bursts).
//!
//! `cargo run --release --example bench_server -- 127.0.0.1:3100`
//!
//! To measure what the Admin UI costs: build with `--features admin` and set
//! `BENCH_ADMIN=production` (stats only) or `BENCH_ADMIN=development` (every event reported);
//! without `BENCH_ADMIN` the server is not instrumented.

use std::net::SocketAddr;

use axum::serve::ListenerExt;
use serde_json::value::RawValue;
use tower_socketio::{AckSender, Bin, Binary, Data, SocketIo, SocketRef};

fn main() -> std::io::Result<()> {
    let addr: SocketAddr = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:3100".into())
        .parse()
        .expect("address");
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    rt.block_on(async move {
        let (layer, io) = SocketIo::new_layer();
        io.ns("/", |socket: SocketRef| {
            // The payload is kept as raw JSON: the server forwards it without building a tree.
            socket.on("echo", |s: SocketRef, Data(d): Data<Box<RawValue>>| {
                let _ = s.emit("echo", &d);
            });
            socket.on(
                "join",
                |s: SocketRef, Data(room): Data<Option<String>>, ack: AckSender| {
                    match room {
                        Some(room) => s.join(room),
                        None => s.join("bench"),
                    }
                    let _ = ack.send_args(&[0u8; 0]);
                },
            );
            socket.on("leave", |s: SocketRef, Data(room): Data<String>| {
                s.leave(room);
            });
            socket.on(
                "bcast",
                |s: SocketRef, Data(d): Data<Box<RawValue>>, Bin(bins): Bin| async move {
                    let to = s.within("bench");
                    let _ = match bins.into_iter().next() {
                        Some(b) => to.emit("bcast", &Binary(b)).await,
                        None => to.emit("bcast", &d).await,
                    };
                },
            );
            socket.on(
                "bcast-room",
                |s: SocketRef, Data((room, d)): Data<(String, Box<RawValue>)>| async move {
                    let _ = s.within(room).emit("bcast-room", &d).await;
                },
            );
        });
        instrument(&io);
        let app = axum::Router::new().layer(layer);
        let socket = tokio::net::TcpSocket::new_v4()?;
        socket.set_reuseaddr(true)?;
        socket.bind(addr)?;
        // TCP_NODELAY on every connection, as Node and the raw server have it.
        let listener = socket.listen(4096)?.tap_io(|tcp| {
            let _ = tcp.set_nodelay(true);
        });
        println!("ready tower-socketio on {addr}");
        axum::serve(listener, app).await
    })
}

/// Instruments the server for the Admin UI when `BENCH_ADMIN` asks for it.
#[cfg(feature = "admin")]
fn instrument(io: &SocketIo) {
    use tower_socketio::admin::{AdminMode, AdminOptions};
    let mode = match std::env::var("BENCH_ADMIN").as_deref() {
        Ok("production") => AdminMode::Production,
        Ok("development") => AdminMode::Development,
        _ => return,
    };
    io.instrument(AdminOptions::new().mode(mode))
        .expect("instrument");
    println!("admin UI instrumented ({mode:?})");
}

#[cfg(not(feature = "admin"))]
fn instrument(_io: &SocketIo) {
    if std::env::var_os("BENCH_ADMIN").is_some() {
        eprintln!("BENCH_ADMIN needs the admin feature");
    }
}
