//! The benchmark server for `scripts/bench.sh`: tower-socketio implementing the benchmark
//! events, as a user would write them.
//!
//! - `echo`: the arguments go back to the sender as `echo`;
//! - `join`: the socket joins the room `bench`;
//! - `bcast`: the argument (or its binary attachment) is broadcast to the room `bench` as
//!   `bcast`, the sender included.
//!
//! One thread (a current-thread tokio runtime, pinned by the script with `taskset`); the
//! listener is bound with a backlog of 4096 and sets `TCP_NODELAY`, as the other benchmark
//! servers (`tokio::net::TcpListener::bind` would use a backlog of 128 and drop SYNs under
//! connection bursts).
//!
//! `cargo run --release --example bench_server -- 127.0.0.1:3100`

use std::net::SocketAddr;

use axum::serve::ListenerExt;
use serde_json::value::RawValue;
use tower_socketio::{Bin, Binary, Data, SocketIo, SocketRef};

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
            socket.on("join", |s: SocketRef| s.join("bench"));
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
        });
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
