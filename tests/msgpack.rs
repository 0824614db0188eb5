//! The msgpack parser against npm's `socket.io-client` with `socket.io-msgpack-parser`, over
//! both transports.
#![cfg(feature = "msgpack")]

mod common;

use std::time::Duration;

use serde::{Deserialize, Serialize};
use tower_socketio::parser::Parser;
use tower_socketio::{AckSender, Binary, Data, DataArgs, SocketIo, SocketRef, Value};

#[derive(Serialize, Deserialize)]
struct File {
    name: String,
    data: Binary,
}

async fn run(transport: &str) {
    let Some(node) = common::node("msgpack", "socket.io-msgpack-parser") else {
        return;
    };
    let (layer, io) = SocketIo::builder().parser(Parser::MsgPack).build_layer();
    io.ns("/", |socket: SocketRef| {
        socket.on(
            "hello",
            |s: SocketRef, Data((a, b)): Data<(serde_json::Value, String)>, ack: AckSender| {
                let token = s
                    .auth()
                    .and_then(|a| serde_json::from_str::<serde_json::Value>(a).ok())
                    .map(|v| v["token"].clone());
                ack.send(&serde_json::json!({ "got": [a, b], "token": token }))
                    .ok();
            },
        );
        socket.on("bin", |Data(f): Data<File>, ack: AckSender| {
            ack.send(&File {
                name: format!("{}!", f.name),
                data: f.data,
            })
            .ok();
        });
        socket.on("push", |s: SocketRef| {
            s.emit_args(
                "pushed",
                &(
                    "x",
                    File {
                        name: "p".into(),
                        data: Binary::from(vec![9u8; 4]),
                    },
                ),
            )
            .ok();
        });
        // `Value` keeps msgpack's inline binary at any depth, and key order.
        socket.on(
            "relay",
            |DataArgs(args): DataArgs<Vec<Value>>, ack: AckSender| {
                ack.send_args(&args).ok();
            },
        );
        socket.on("ask-me", |s: SocketRef, ack: AckSender| async move {
            let (n,): (u32,) = s.emit_with_ack("ask", &(21,)).await.unwrap_or((0,));
            ack.send(&n).ok();
        });
    });
    io.ns("/admin", |socket: SocketRef| {
        socket.on(
            "echo",
            |Data(v): Data<serde_json::Value>, ack: AckSender| {
                ack.send(&v).ok();
            },
        );
    });
    let srv = common::serve_layer(layer).await;
    common::run_node(
        &node,
        "msgpack/client.mjs",
        &[&srv.base_url(), transport],
        Duration::from_secs(20),
    )
    .await
    .expect_success("msgpack client");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn msgpack_over_websocket() {
    run("websocket").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn msgpack_over_polling() {
    run("polling").await;
}
