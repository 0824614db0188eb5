//! Per-socket event middleware (`Socket::use_middleware`, Node's `socket.use`) against
//! `socket.io-client`: order, refusal with and without ack, changed events, async
//! middlewares keeping the events' order.

mod common;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{Value, json};
use tower_socketio::{AckSender, Data, EventRejection, SocketIo, SocketRef};

async fn run(transport: &str) {
    let Some(node) = common::node("event_middleware", "socket.io-client") else {
        return;
    };
    let (layer, io) = SocketIo::new_layer();
    io.ns("/", |socket: SocketRef| {
        let seen: Arc<Mutex<Vec<String>>> = Arc::default();
        let trail = seen.clone();
        socket.use_middleware(move |ev| {
            let trail = trail.clone();
            async move {
                trail
                    .lock()
                    .expect("lock")
                    .push(format!("first:{}", ev.name));
                // An async middleware: a pending await must not let later events pass.
                tokio::time::sleep(Duration::from_millis(1)).await;
                Ok(ev)
            }
        });
        let trail = seen.clone();
        socket.use_middleware(move |mut ev| {
            let trail = trail.clone();
            async move {
                trail
                    .lock()
                    .expect("lock")
                    .push(format!("second:{}", ev.name));
                match ev.name.as_str() {
                    "secret" => return Err(EventRejection::from("not allowed")),
                    "old-name" => ev.name = "new-name".into(),
                    "double" => {
                        let n: u64 = ev.args.deserialize().map_err(|e| e.to_string())?;
                        ev.set_data(&(n * 2)).map_err(|e| e.to_string())?;
                    }
                    _ => {}
                }
                Ok(ev)
            }
        });
        socket.on("secret", |ack: AckSender| {
            ack.send(&"handler must not run").ok();
        });
        socket.on("double", |Data(n): Data<u64>, ack: AckSender| {
            ack.send(&n).ok();
        });
        socket.on("new-name", |Data(v): Data<String>, ack: AckSender| {
            ack.send(&format!("renamed {v}")).ok();
        });
        let order: Arc<Mutex<Vec<u64>>> = Arc::default();
        let o = order.clone();
        socket.on("seq", move |Data(i): Data<u64>| {
            o.lock().expect("lock").push(i);
        });
        let o = order.clone();
        socket.on("order", move |ack: AckSender| {
            let got = o.lock().expect("lock").clone();
            let expect: Vec<u64> = (0..50).collect();
            ack.send(&(got == expect)).ok();
        });
    });
    let srv = common::serve_layer(layer).await;
    let out = common::run_node(
        &node,
        "middleware/client.mjs",
        &[&srv.base_url(), transport],
        Duration::from_secs(20),
    )
    .await
    .expect_success("middleware client");
    let v: Value = serde_json::from_str(out.trim()).expect("json");
    assert_eq!(v["refused"], json!({"error": "not allowed"}), "{v}");
    assert_eq!(v["errors"], json!([{"message": "not allowed"}]), "{v}");
    assert_eq!(v["changed"], json!(42), "{v}");
    assert_eq!(v["renamed"], json!("renamed x"), "{v}");
    assert_eq!(
        v["order"],
        json!(true),
        "events reordered by an async middleware: {v}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn event_middleware_websocket() {
    run("websocket").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn event_middleware_polling() {
    run("polling").await;
}
