//! The Redis emitter against the real thing: the bytes it publishes equal
//! `@socket.io/redis-emitter`'s for the same calls, it drives a mixed cluster (a Rust server
//! with our Redis adapter, a Node server with `@socket.io/redis-adapter`, `socket.io-client`
//! sockets on both) exactly as a server node's own operations do, and an unreachable Redis
//! is an error, never a hang.
#![cfg(feature = "redis")]

mod common;
mod emitter_support;

use std::process::Stdio;
use std::time::Duration;

use futures_util::StreamExt;
use tokio::io::AsyncWriteExt;
use tokio::process::Child;
use tower_socketio::adapter::redis::{RedisAdapterConfig, RedisLink};
use tower_socketio::emitter::{Emitter, EmitterError, RedisEmitterConfig};

use emitter_support::{emitter_call, parse_calls};

/// The Redis to use: `TSIO_REDIS_URL`, else the local default if it answers.
async fn redis_url(test: &str) -> Option<String> {
    let url = std::env::var("TSIO_REDIS_URL")
        .ok()
        .filter(|u| !u.is_empty())
        .unwrap_or_else(|| "redis://127.0.0.1:6379".into());
    let hostport = url
        .trim_start_matches("redis://")
        .trim_end_matches('/')
        .to_owned();
    match tokio::net::TcpStream::connect(&hostport).await {
        Ok(_) => Some(url),
        Err(_) => common::missing_service(test, &format!("Redis at {url}")),
    }
}

fn unique_key() -> String {
    format!("tsio-emitter-{}", tower_socketio::engine::Sid::new())
}

async fn emitter(url: &str, key: &str) -> Emitter {
    Emitter::redis(
        url,
        RedisEmitterConfig {
            key: key.to_owned(),
            ..Default::default()
        },
    )
    .await
    .expect("emitter connects")
}

/// Subscribes to every channel of `key` and returns the next `n` messages (channel, bytes).
struct Capture {
    rx: tokio::sync::mpsc::UnboundedReceiver<(String, Vec<u8>)>,
    task: tokio::task::JoinHandle<()>,
}

impl Capture {
    async fn start(url: &str, key: &str) -> Capture {
        let client = redis::Client::open(url).expect("redis url");
        let mut pubsub = client.get_async_pubsub().await.expect("subscriber");
        pubsub
            .psubscribe(format!("{key}*"))
            .await
            .expect("psubscribe");
        let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
        let task = tokio::spawn(async move {
            let mut stream = pubsub.into_on_message();
            while let Some(msg) = stream.next().await {
                let channel = msg.get_channel_name().to_owned();
                let _ = tx.send((channel, msg.get_payload_bytes().to_vec()));
            }
        });
        Capture { rx, task }
    }

    async fn take(&mut self, n: usize, what: &str) -> Vec<(String, Vec<u8>)> {
        let mut out = Vec::with_capacity(n);
        while out.len() < n {
            let msg = common::within(Duration::from_secs(10), what, self.rx.recv())
                .await
                .expect("capture open");
            out.push(msg);
        }
        out
    }
}

impl Drop for Capture {
    fn drop(&mut self) {
        self.task.abort();
    }
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|b| format!("{b:02x}")).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn publishes_the_bytes_of_node_redis_emitter() {
    let test = "publishes_the_bytes_of_node_redis_emitter";
    let Some(url) = redis_url(test).await else {
        return;
    };
    let Some(node) = common::node(test, "@socket.io/redis-emitter") else {
        return;
    };
    let key = unique_key();
    let calls_text = emitter_support::every_call_kind();
    let calls = parse_calls(&calls_text);
    let mut capture = Capture::start(&url, &key).await;

    // Node's emitter first: its messages, in order.
    let mut child = tokio::process::Command::new(&node.bin)
        .arg(common::clients_dir().join("emitter/calls.mjs"))
        .args([&url, &key])
        .current_dir(common::clients_dir())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .kill_on_drop(true)
        .spawn()
        .expect("start node");
    let mut stdin = child.stdin.take().expect("stdin");
    stdin
        .write_all(calls_text.as_bytes())
        .await
        .expect("write calls");
    drop(stdin);
    let node_msgs = capture
        .take(calls.len(), "messages of the Node emitter")
        .await;
    let status = common::within(Duration::from_secs(10), "node exits", child.wait())
        .await
        .expect("node");
    assert!(status.success(), "node emitter script failed");

    // Ours, for the same calls.
    let ours = emitter(&url, &key).await;
    for call in &calls {
        emitter_call(&ours, call).await.expect("emitter call");
    }
    let our_msgs = capture.take(calls.len(), "messages of our emitter").await;

    for ((call, (nc, nb)), (oc, ob)) in calls.iter().zip(&node_msgs).zip(&our_msgs) {
        assert_eq!(oc, nc, "channel of {call}");
        assert_eq!(
            hex(ob),
            hex(nb),
            "bytes of {call}\nours: {}\nnode: {}",
            String::from_utf8_lossy(ob),
            String::from_utf8_lossy(nb)
        );
    }
    // Nothing more from either.
    assert!(capture.rx.try_recv().is_err(), "extra messages");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refuses_reserved_events_and_fails_fast_without_redis() {
    let test = "refuses_reserved_events_and_fails_fast_without_redis";
    // A port nothing listens on: a refused connection is an error, not a hang.
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        l.local_addr().expect("addr").port()
    };
    let started = std::time::Instant::now();
    let err = Emitter::redis(
        &format!("redis://127.0.0.1:{port}"),
        RedisEmitterConfig {
            timeout: Duration::from_secs(2),
            ..Default::default()
        },
    )
    .await
    .expect_err("nothing listens there");
    assert!(
        matches!(
            err,
            EmitterError::Unreachable { .. } | EmitterError::Timeout { .. }
        ),
        "{err:?}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(4),
        "{:?}",
        started.elapsed()
    );
    assert!(
        Emitter::redis("not a url", RedisEmitterConfig::default())
            .await
            .is_err()
    );

    let Some(url) = redis_url(test).await else {
        return;
    };
    let e = emitter(&url, &unique_key()).await;
    for ev in ["connect", "disconnect", "connect_error", "disconnecting"] {
        assert!(
            matches!(e.emit(ev, &1).await, Err(EmitterError::ReservedEvent(_))),
            "{ev} must be refused"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_that_never_answers_is_a_timeout_not_a_hang() {
    // Accepts connections and never says a word.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    let silent = tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((conn, _)) = listener.accept().await {
            held.push(conn);
        }
    });
    let started = std::time::Instant::now();
    let result = Emitter::redis(
        &format!("redis://{addr}"),
        RedisEmitterConfig {
            timeout: Duration::from_secs(1),
            ..Default::default()
        },
    )
    .await;
    let elapsed = started.elapsed();
    silent.abort();
    let err = result.expect_err("a silent server is not Redis");
    assert!(
        matches!(
            err,
            EmitterError::Timeout { .. } | EmitterError::Unreachable { .. }
        ),
        "{err:?}"
    );
    assert!(elapsed < Duration::from_secs(3), "took {elapsed:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn publish_fails_within_the_timeout_when_redis_goes_away() {
    let test = "publish_fails_within_the_timeout_when_redis_goes_away";
    let port = 17_379 + (std::process::id() % 1000) as u16;
    let Some(mut redis) = private_redis(test, port).await else {
        return;
    };
    let url = format!("redis://127.0.0.1:{port}");
    let e = Emitter::redis(
        &url,
        RedisEmitterConfig {
            timeout: Duration::from_secs(1),
            ..Default::default()
        },
    )
    .await
    .expect("connect");
    e.emit("tick", &1).await.expect("emit while up");
    redis.kill().await.expect("kill redis");
    let _ = redis.wait().await;
    let started = std::time::Instant::now();
    assert!(e.emit("tick", &2).await.is_err(), "publish without redis");
    assert!(e.emit("tick", &3).await.is_err(), "publish without redis");
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "{:?}",
        started.elapsed()
    );
    // Redis is back: the emitter reconnects by itself.
    let _redis = private_redis(test, port).await.expect("restart redis");
    let mut ok = false;
    for _ in 0..40 {
        if e.emit("tick", &4).await.is_ok() {
            ok = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    assert!(ok, "the emitter did not reconnect");
}

/// Starts a private redis-server on `port`; `None` if there is no redis-server binary.
async fn private_redis(test: &str, port: u16) -> Option<Child> {
    let bin = ["/usr/bin/redis-server", "/usr/local/bin/redis-server"]
        .into_iter()
        .find(|p| std::path::Path::new(p).is_file());
    let Some(bin) = bin else {
        return common::missing_service(test, "the redis-server binary");
    };
    let child = tokio::process::Command::new(bin)
        .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
        .args(["--save", "", "--appendonly", "no"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("start redis-server");
    for _ in 0..100 {
        if tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .is_ok()
        {
            return Some(child);
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("redis-server on {port} did not start");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn drives_a_mixed_cluster_like_a_server_node() {
    let test = "drives_a_mixed_cluster_like_a_server_node";
    let Some(url) = redis_url(test).await else {
        return;
    };
    let Some(node) = common::node(test, "@socket.io/redis-adapter") else {
        return;
    };
    let key = unique_key();
    let link = RedisLink::connect(
        &url,
        RedisAdapterConfig {
            key: key.clone(),
            ..Default::default()
        },
    )
    .await
    .expect("connect to redis");
    let waiting = link.clone();
    let rust = emitter_support::rust_node(
        link.factory(),
        || async move { waiting.wait_subscribed().await },
        Box::new(link),
    )
    .await;
    let adapter = ["redis".to_owned(), url.clone(), key.clone()];
    emitter_support::mixed_cluster(&node, &adapter, rust, emitter(&url, &key).await).await;
}
