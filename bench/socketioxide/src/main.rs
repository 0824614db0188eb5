//! The socketioxide server of `scripts/bench.sh`, written the way socketioxide's documentation
//! teaches (`SocketIo::new_layer`, `Data<serde_json::Value>` handlers, `#[tokio::main]`,
//! `axum::serve`), with the events of `examples/bench_server.rs`:
//!
//! - `echo`: the argument goes back to the sender as `echo`;
//! - `join`: the socket joins the room given as argument (`bench` without one) and answers the
//!   client's ack;
//! - `leave`: the socket leaves the room given as argument;
//! - `bcast`: the argument is broadcast to the room `bench` as `bcast`, the sender included
//!   (an `rmpv::Value`, which socketioxide's documentation names for generic binary data);
//! - `bcast-room` `(room, payload)`: the payload is broadcast to that room as `bcast-room`.
//!
//! Listens with a backlog of 4096 and `TCP_NODELAY`, as the other benchmark servers.
//! Usage: `socketioxide-bench 127.0.0.1:3300`

use axum::serve::ListenerExt;
use serde_json::Value;
use socketioxide::{
    extract::{AckSender, Data, SocketRef, TryData},
    SocketIo,
};

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let addr: std::net::SocketAddr = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:3300".into())
        .parse()
        .expect("address");
    let (layer, io) = SocketIo::new_layer();
    io.ns("/", async |socket: SocketRef| {
        socket.on("echo", async |s: SocketRef, Data::<Value>(d)| {
            s.emit("echo", &d).ok();
        });
        socket.on(
            "join",
            async |s: SocketRef, TryData::<String>(room), ack: AckSender| {
                s.join(room.unwrap_or_else(|_| "bench".into()));
                ack.send(&()).ok();
            },
        );
        socket.on("leave", async |s: SocketRef, Data::<String>(room)| {
            s.leave(room);
        });
        socket.on("bcast", async |s: SocketRef, Data::<rmpv::Value>(d)| {
            s.within("bench").emit("bcast", &d).await.ok();
        });
        socket.on(
            "bcast-room",
            async |s: SocketRef, Data::<(String, Value)>((room, d))| {
                s.within(room).emit("bcast-room", &d).await.ok();
            },
        );
    });
    let app = axum::Router::new().layer(layer);
    let socket = tokio::net::TcpSocket::new_v4()?;
    socket.set_reuseaddr(true)?;
    socket.bind(addr)?;
    let listener = socket.listen(4096)?.tap_io(|tcp| {
        let _ = tcp.set_nodelay(true);
    });
    println!("ready socketioxide on {addr}");
    axum::serve(listener, app).await
}
