//! The Redis pub/sub backend (feature `redis`): what `@socket.io/redis-emitter` 5.x
//! publishes, byte for byte, for servers running `@socket.io/redis-adapter` or our
//! [`RedisLink`](crate::adapter::redis::RedisLink).

use std::time::Duration;

use super::backend::{Action, Backend, Operation};
use super::{Emitter, EmitterError};
use crate::adapter::BoxFuture;
use crate::cluster::redis as wire;

/// Settings of a Redis emitter.
#[derive(Debug, Clone)]
pub struct RedisEmitterConfig {
    /// Prefix of every channel: the `key` the servers' Redis adapters use. Default
    /// `socket.io`.
    pub key: String,
    /// The longest connecting, or publishing one message, may take before it is an
    /// [`EmitterError::Timeout`]. Default 5 s.
    pub timeout: Duration,
}

impl Default for RedisEmitterConfig {
    fn default() -> Self {
        Self {
            key: "socket.io".into(),
            timeout: Duration::from_secs(5),
        }
    }
}

struct RedisBackend {
    conn: RedisConn,
    key: String,
}

impl Emitter {
    /// Connects to Redis (`redis://host:port[/db]`, `rediss://` with TLS if the `redis`
    /// crate is built with it) and returns an emitter on the main namespace.
    ///
    /// Fails with [`EmitterError::Unreachable`] for a bad URL or a refused connection, and
    /// with [`EmitterError::Timeout`] when Redis does not answer within `config.timeout`.
    /// Afterwards the connection is re-established by itself after an outage; meanwhile each
    /// publish fails within `config.timeout`.
    pub async fn redis(url: &str, config: RedisEmitterConfig) -> Result<Emitter, EmitterError> {
        let conn = RedisConn::open(url, &format!("key {:?}", config.key), config.timeout).await?;
        Ok(Emitter::with_backend(RedisBackend {
            conn,
            key: config.key,
        }))
    }
}

/// One Redis connection of an emitter backend, every command bounded by a timeout.
pub(super) struct RedisConn {
    conn: redis::aio::ConnectionManager,
    service: String,
    timeout: Duration,
}

impl RedisConn {
    /// Connects within `timeout`; `what` names the keys used (for messages).
    pub(super) async fn open(
        url: &str,
        what: &str,
        timeout: Duration,
    ) -> Result<Self, EmitterError> {
        let service = format!("redis at {} ({what})", without_password(url));
        let unreachable = |e: redis::RedisError| EmitterError::Unreachable {
            service: service.clone(),
            message: e.to_string(),
        };
        let client = redis::Client::open(url).map_err(unreachable)?;
        // Each attempt is bounded, and so are the attempts together; a reconnection after an
        // outage retries a little, in the background.
        let manager = redis::aio::ConnectionManagerConfig::new()
            .set_connection_timeout(Some(timeout))
            .set_response_timeout(Some(timeout))
            .set_number_of_retries(2)
            .set_max_delay(Duration::from_secs(1));
        let conn = tokio::time::timeout(
            timeout,
            redis::aio::ConnectionManager::new_with_config(client, manager),
        )
        .await
        .map_err(|_| EmitterError::Timeout {
            service: service.clone(),
            timeout,
        })?
        .map_err(unreachable)?;
        Ok(Self {
            conn,
            service,
            timeout,
        })
    }

    /// Runs one command (a `PUBLISH`, an `XADD`) within the timeout. Commands of one
    /// connection reach Redis in the order they are run.
    pub(super) async fn run(&self, cmd: &redis::Cmd) -> Result<(), EmitterError> {
        let mut conn = self.conn.clone();
        match tokio::time::timeout(self.timeout, cmd.query_async::<redis::Value>(&mut conn)).await {
            Ok(Ok(_)) => Ok(()),
            Ok(Err(e)) => {
                tracing::warn!(service = %self.service, error = %e, "emitter: redis command failed");
                Err(EmitterError::Unreachable {
                    service: self.service.clone(),
                    message: e.to_string(),
                })
            }
            Err(_) => {
                tracing::warn!(service = %self.service, timeout = ?self.timeout, "emitter: redis command timed out");
                Err(EmitterError::Timeout {
                    service: self.service.clone(),
                    timeout: self.timeout,
                })
            }
        }
    }

    pub(super) fn service(&self) -> &str {
        &self.service
    }
}

/// The URL for messages: user and password left out.
fn without_password(url: &str) -> String {
    match (url.split_once("://"), url.rsplit_once('@')) {
        (Some((scheme, _)), Some((_, host))) => format!("{scheme}://***@{host}"),
        _ => url.to_owned(),
    }
}

impl RedisBackend {
    /// The channel and bytes `@socket.io/redis-emitter` publishes for this operation.
    fn encode(&self, op: Operation<'_>) -> (String, Vec<u8>) {
        let key = &self.key;
        let request = || wire::request_channel(key, op.nsp);
        match op.action {
            Action::Emit { event, args } => (
                wire::broadcast_channel(&wire::namespace_channel(key, op.nsp), op.rooms),
                wire::emitter_broadcast(op.nsp, &event, args, op.rooms, op.except),
            ),
            Action::Join(rooms) => (
                request(),
                wire::emitter_rooms_request(wire::REMOTE_JOIN, op.rooms, op.except, &rooms),
            ),
            Action::Leave(rooms) => (
                request(),
                wire::emitter_rooms_request(wire::REMOTE_LEAVE, op.rooms, op.except, &rooms),
            ),
            Action::Disconnect { close } => (
                request(),
                wire::emitter_disconnect_request(op.rooms, op.except, close),
            ),
            Action::ServerSideEmit { data } => (request(), wire::emitter_server_side_emit(data)),
        }
    }
}

impl Backend for RedisBackend {
    fn publish<'a>(&'a self, op: Operation<'a>) -> BoxFuture<'a, Result<(), EmitterError>> {
        let (channel, bytes) = self.encode(op);
        Box::pin(async move {
            let mut cmd = redis::cmd("PUBLISH");
            cmd.arg(channel).arg(bytes);
            self.conn.run(&cmd).await
        })
    }

    fn describe(&self) -> String {
        self.conn.service().to_owned()
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn messages_never_show_a_password() {
        assert_eq!(
            super::without_password("redis://user:secret@10.0.0.1:6379/2"),
            "redis://***@10.0.0.1:6379/2"
        );
        assert_eq!(
            super::without_password("redis://127.0.0.1:6379"),
            "redis://127.0.0.1:6379"
        );
    }
}
