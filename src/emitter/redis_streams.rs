//! The Redis Streams backend (feature `redis-streams`): messages as
//! `@socket.io/redis-streams-adapter` 0.3 servers (Node's, or our
//! [`RedisStreamsLink`](crate::adapter::redis::streams::RedisStreamsLink)) write them, so
//! every server of such a cluster acts on them as on another server's.
//!
//! Emits, joins, leaves and disconnects are stream entries (`XADD ... MAXLEN ~`), read by
//! every server in order and kept for connection state recovery like any broadcast: a client
//! that was away when an emitter's event went out gets it when it is recovered. Server-side
//! events go over pub/sub, as the servers send them. There is no Node emitter of this kind;
//! the messages are those of a server node whose `uid` is `emitter`.

use std::time::Duration;

use rmpv::Value;

use super::backend::{Action, Backend, Operation};
use super::redis::RedisConn;
use super::{Emitter, EmitterError};
use crate::adapter::{BoxFuture, BroadcastOptions, Room};
use crate::cluster::redis_streams as wire;
use crate::cluster::values::opts_value;

/// Settings of a Redis Streams emitter: the servers' adapter settings it must match.
#[derive(Debug, Clone)]
pub struct RedisStreamsEmitterConfig {
    /// The stream the servers read (their `stream_name` / Node's `streamName`). Default
    /// `socket.io`.
    pub stream_name: String,
    /// Prefix of the servers' pub/sub channels (`channel_prefix` / `channelPrefix`), for
    /// server-side events. Default `socket.io`.
    pub channel_prefix: String,
    /// Length the stream is trimmed to, approximately, at each append: the servers'
    /// `max_len` / `maxLen`. Default 10 000.
    pub max_len: usize,
    /// The longest connecting, or publishing one message, may take before it is an
    /// [`EmitterError::Timeout`]. Default 5 s.
    pub timeout: Duration,
}

impl Default for RedisStreamsEmitterConfig {
    fn default() -> Self {
        Self {
            stream_name: "socket.io".into(),
            channel_prefix: "socket.io".into(),
            max_len: 10_000,
            timeout: Duration::from_secs(5),
        }
    }
}

struct StreamsBackend {
    conn: RedisConn,
    config: RedisStreamsEmitterConfig,
}

impl Emitter {
    /// Connects to Redis (`redis://host:port[/db]`) and returns an emitter on the main
    /// namespace, for a cluster joined by the Redis Streams adapter.
    ///
    /// Fails with [`EmitterError::Unreachable`] for a bad URL or a refused connection, and
    /// with [`EmitterError::Timeout`] when Redis does not answer within `config.timeout`.
    /// Afterwards the connection is re-established by itself after an outage; meanwhile each
    /// publish fails within `config.timeout`.
    pub async fn redis_streams(
        url: &str,
        config: RedisStreamsEmitterConfig,
    ) -> Result<Emitter, EmitterError> {
        let what = format!("stream {:?}", config.stream_name);
        let conn = RedisConn::open(url, &what, config.timeout).await?;
        Ok(Emitter::with_backend(StreamsBackend { conn, config }))
    }
}

fn rooms_value(rooms: &[Room]) -> Value {
    Value::Array(rooms.iter().map(|r| Value::from(r.as_ref())).collect())
}

impl StreamsBackend {
    /// The command that carries this operation.
    fn encode(&self, op: Operation<'_>) -> redis::Cmd {
        let cfg = &self.config;
        let opts = || {
            opts_value(
                &BroadcastOptions {
                    rooms: op.rooms.to_vec(),
                    except: op.except.to_vec(),
                    ..BroadcastOptions::default()
                },
                None,
            )
        };
        let entry = |kind: u64, data: Value| {
            let data = wire::entry_data(&data);
            wire::xadd(
                &cfg.stream_name,
                cfg.max_len,
                wire::EMITTER_UID,
                op.nsp,
                kind,
                &data,
            )
        };
        match op.action {
            Action::Emit { event, args } => entry(
                wire::BROADCAST,
                wire::map(vec![
                    ("packet", wire::packet(&event, args)),
                    ("opts", opts()),
                ]),
            ),
            Action::Join(rooms) => entry(
                wire::SOCKETS_JOIN,
                wire::map(vec![("opts", opts()), ("rooms", rooms_value(&rooms))]),
            ),
            Action::Leave(rooms) => entry(
                wire::SOCKETS_LEAVE,
                wire::map(vec![("opts", opts()), ("rooms", rooms_value(&rooms))]),
            ),
            Action::Disconnect { close } => entry(
                wire::DISCONNECT_SOCKETS,
                wire::map(vec![("opts", opts()), ("close", Value::from(close))]),
            ),
            Action::ServerSideEmit { data } => {
                let message = wire::message(
                    wire::SERVER_SIDE_EMIT,
                    wire::map(vec![("packet", Value::Array(data))]),
                    wire::EMITTER_UID,
                    op.nsp,
                );
                let mut cmd = redis::cmd("PUBLISH");
                cmd.arg(format!("{}#{}#", cfg.channel_prefix, op.nsp))
                    .arg(message);
                cmd
            }
        }
    }
}

impl Backend for StreamsBackend {
    fn publish<'a>(&'a self, op: Operation<'a>) -> BoxFuture<'a, Result<(), EmitterError>> {
        let cmd = self.encode(op);
        Box::pin(async move { self.conn.run(&cmd).await })
    }

    fn describe(&self) -> String {
        self.conn.service().to_owned()
    }
}
