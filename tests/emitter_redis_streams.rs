//! The Redis Streams emitter against the real thing: for every kind of call it writes the
//! stream entries and pub/sub messages that `@socket.io/redis-streams-adapter` itself writes
//! for the same operation on a Node server (there is no Node emitter of this kind), it drives
//! a mixed cluster (a Rust server with our Redis Streams adapter, a Node server with
//! `@socket.io/redis-streams-adapter`, `socket.io-client` sockets on both) exactly as a server
//! node's own operations do, and an unreachable Redis is an error, never a hang.
#![cfg(feature = "redis-streams")]

mod common;
mod emitter_support;

use std::process::Stdio;
use std::time::Duration;

use futures_util::StreamExt;
use rmpv::Value as Mp;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tower_socketio::adapter::redis::streams::{RedisStreamsConfig, RedisStreamsLink};
use tower_socketio::emitter::{Emitter, EmitterError, RedisStreamsEmitterConfig};

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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn drives_a_mixed_streams_cluster_like_a_server_node() {
    let test = "drives_a_mixed_streams_cluster_like_a_server_node";
    let Some(url) = redis_url(test).await else {
        return;
    };
    let Some(node) = common::node(test, "@socket.io/redis-streams-adapter") else {
        return;
    };
    let name = format!(
        "tsio-emitter-streams-{}",
        tower_socketio::engine::Sid::new()
    );
    let link = RedisStreamsLink::connect(
        &url,
        RedisStreamsConfig {
            stream_name: name.clone(),
            channel_prefix: name.clone(),
            block_time: Duration::from_millis(500),
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
    let emitter = Emitter::redis_streams(
        &url,
        RedisStreamsEmitterConfig {
            stream_name: name.clone(),
            channel_prefix: name.clone(),
            ..Default::default()
        },
    )
    .await
    .expect("emitter connects");
    let adapter = ["redis-streams".to_owned(), url.clone(), name.clone()];
    emitter_support::mixed_cluster(&node, &adapter, rust, emitter).await;
    let mut conn = redis::Client::open(url.as_str())
        .expect("url")
        .get_multiplexed_async_connection()
        .await
        .expect("redis");
    let _: () = redis::cmd("DEL")
        .arg(&name)
        .query_async(&mut conn)
        .await
        .expect("del");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_connection_is_an_error() {
    // A port nothing listens on: bound, then released.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("free port")
        .port();
    let got = common::within(
        Duration::from_secs(10),
        "connect to a closed port",
        Emitter::redis_streams(
            &format!("redis://127.0.0.1:{port}"),
            RedisStreamsEmitterConfig::default(),
        ),
    )
    .await;
    assert!(
        matches!(got, Err(EmitterError::Unreachable { .. })),
        "{got:?}"
    );
}

/// A stream name and channel prefix of this test alone.
fn unique_names() -> (String, String) {
    let id = tower_socketio::engine::Sid::new();
    (
        format!("tsio-emitter-stream-{id}"),
        format!("tsio-emitter-prefix-{id}"),
    )
}

async fn emitter(url: &str, stream: &str, prefix: &str) -> Emitter {
    Emitter::redis_streams(
        url,
        RedisStreamsEmitterConfig {
            stream_name: stream.to_owned(),
            channel_prefix: prefix.to_owned(),
            ..Default::default()
        },
    )
    .await
    .expect("emitter connects")
}

/// The entries of a stream after `after` (exclusive), as (id, fields).
async fn entries_after(
    conn: &mut redis::aio::MultiplexedConnection,
    stream: &str,
    after: &str,
) -> Vec<(String, Vec<(String, String)>)> {
    let reply: Vec<(String, Vec<(String, String)>)> = redis::cmd("XRANGE")
        .arg(stream)
        .arg(format!("({after}"))
        .arg("+")
        .query_async(conn)
        .await
        .expect("XRANGE");
    reply
}

/// Waits until the stream holds `n` entries after `after`.
async fn wait_entries(
    conn: &mut redis::aio::MultiplexedConnection,
    stream: &str,
    after: &str,
    n: usize,
    what: &str,
) -> Vec<(String, Vec<(String, String)>)> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let got = entries_after(conn, stream, after).await;
        if got.len() >= n {
            assert_eq!(got.len(), n, "{what}: more entries than calls");
            return got;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{what}: {} of {n} entries",
            got.len()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn field<'a>(fields: &'a [(String, String)], name: &str) -> &'a str {
    fields
        .iter()
        .find(|(k, _)| k == name)
        .map_or("", |(_, v)| v.as_str())
}

/// A pub/sub message decoded, with its `uid` replaced by `uid`.
fn with_uid(payload: &[u8], uid: &str) -> Mp {
    let mut rd = payload;
    let mut v = rmpv::decode::read_value(&mut rd).expect("msgpack");
    if let Mp::Map(entries) = &mut v {
        for (k, val) in entries.iter_mut() {
            if k.as_str() == Some("uid") {
                *val = Mp::from(uid);
            }
        }
    }
    v
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn writes_what_the_node_adapter_writes() {
    let test = "writes_what_the_node_adapter_writes";
    let Some(url) = redis_url(test).await else {
        return;
    };
    let Some(node) = common::node(test, "@socket.io/redis-streams-adapter") else {
        return;
    };
    let (stream, prefix) = unique_names();
    let calls = emitter_support::parse_calls(&emitter_support::every_call_kind());
    let is_sse = |c: &Mp| emitter_support::text(c, "op") == "sse";
    let appended = calls.iter().filter(|c| !is_sse(c)).count();
    let published = calls.len() - appended;

    let client = redis::Client::open(url.as_str()).expect("url");
    let mut conn = client
        .get_multiplexed_async_connection()
        .await
        .expect("redis");
    let mut pubsub = client.get_async_pubsub().await.expect("subscriber");
    pubsub
        .psubscribe(format!("{prefix}#*"))
        .await
        .expect("psubscribe");
    let mut messages = pubsub.into_on_message();
    let mut next_message = async || -> (String, Vec<u8>) {
        let msg = common::within(Duration::from_secs(10), "pub/sub message", messages.next())
            .await
            .expect("subscription open");
        (
            msg.get_channel_name().to_owned(),
            msg.get_payload_bytes().to_vec(),
        )
    };

    // The Node server does each call: what its adapter writes.
    let mut child = tokio::process::Command::new(&node.bin)
        .arg(common::clients_dir().join("emitter/streams_calls.mjs"))
        .args([&url, &stream, &prefix])
        .current_dir(common::clients_dir())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .kill_on_drop(true)
        .spawn()
        .expect("start node");
    let mut stdin = child.stdin.take().expect("stdin");
    let mut lines = BufReader::new(child.stdout.take().expect("stdout")).lines();
    let line = serde_json::to_string(&Mp::Array(calls.clone())).expect("calls json") + "\n";
    stdin.write_all(line.as_bytes()).await.expect("calls");
    let applied = common::within(Duration::from_secs(15), "node applies", lines.next_line())
        .await
        .expect("read");
    assert_eq!(applied.as_deref(), Some("applied"));
    let node_entries = wait_entries(&mut conn, &stream, "0-0", appended, "node").await;
    let mut node_messages = Vec::new();
    for _ in 0..published {
        node_messages.push(next_message().await);
    }
    let _ = stdin.write_all(b"exit\n").await;
    let _ = child.wait().await;

    // Ours, for the same calls.
    let last = node_entries
        .last()
        .map_or("0-0".to_owned(), |(id, _)| id.clone());
    let ours = emitter(&url, &stream, &prefix).await;
    for call in &calls {
        emitter_support::emitter_call(&ours, call)
            .await
            .expect("emitter call");
    }
    let our_entries = wait_entries(&mut conn, &stream, &last, appended, "ours").await;
    let mut our_messages = Vec::new();
    for _ in 0..published {
        our_messages.push(next_message().await);
    }

    let stream_calls = calls.iter().filter(|c| !is_sse(c));
    for (call, ((_, node), (_, ours))) in stream_calls.zip(node_entries.iter().zip(&our_entries)) {
        let names = |f: &[(String, String)]| f.iter().map(|(k, _)| k.clone()).collect::<Vec<_>>();
        assert_eq!(names(ours), names(node), "fields of {call}");
        assert_eq!(field(ours, "uid"), "emitter", "{call}");
        assert_ne!(field(node, "uid"), "emitter");
        for name in ["nsp", "type", "data"] {
            assert_eq!(field(ours, name), field(node, name), "{name} of {call}");
        }
    }
    let sse_calls = calls.iter().filter(|c| is_sse(c));
    for (call, ((nc, nb), (oc, ob))) in sse_calls.zip(node_messages.iter().zip(&our_messages)) {
        assert_eq!(oc, nc, "channel of {call}");
        let mut rd = ob.as_slice();
        let as_sent = rmpv::decode::read_value(&mut rd).expect("msgpack");
        assert_eq!(as_sent, with_uid(ob, "emitter"), "uid of {call}");
        assert_eq!(with_uid(ob, "u"), with_uid(nb, "u"), "message of {call}");
    }
    let _ = redis::cmd("DEL")
        .arg(&stream)
        .query_async::<()>(&mut conn)
        .await;
}
