//! The Redis pub/sub backend (feature `redis`): what `@socket.io/redis-emitter` 5.x
//! publishes, byte for byte, for servers running `@socket.io/redis-adapter` or our
//! [`RedisLink`](crate::adapter::redis::RedisLink).

use std::time::Duration;

use redis::AsyncCommands;

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
    conn: redis::aio::ConnectionManager,
    service: String,
    config: RedisEmitterConfig,
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
        let service = format!("redis at {} (key {:?})", without_password(url), config.key);
        let unreachable = |e: redis::RedisError| EmitterError::Unreachable {
            service: service.clone(),
            message: e.to_string(),
        };
        let client = redis::Client::open(url).map_err(unreachable)?;
        // Each attempt is bounded, and so are the attempts together; a reconnection after an
        // outage retries a little, in the background.
        let manager = redis::aio::ConnectionManagerConfig::new()
            .set_connection_timeout(Some(config.timeout))
            .set_response_timeout(Some(config.timeout))
            .set_number_of_retries(2)
            .set_max_delay(Duration::from_secs(1));
        let conn = tokio::time::timeout(
            config.timeout,
            redis::aio::ConnectionManager::new_with_config(client, manager),
        )
        .await
        .map_err(|_| EmitterError::Timeout {
            service: service.clone(),
            timeout: config.timeout,
        })?
        .map_err(unreachable)?;
        Ok(Emitter::with_backend(RedisBackend {
            conn,
            service,
            config,
        }))
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
        let key = &self.config.key;
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
            let mut conn = self.conn.clone();
            let timeout = self.config.timeout;
            match tokio::time::timeout(timeout, conn.publish::<_, _, ()>(&channel, bytes)).await {
                Ok(Ok(())) => Ok(()),
                Ok(Err(e)) => {
                    tracing::warn!(channel, error = %e, "emitter: redis publish failed");
                    Err(EmitterError::Unreachable {
                        service: self.service.clone(),
                        message: e.to_string(),
                    })
                }
                Err(_) => {
                    tracing::warn!(channel, ?timeout, "emitter: redis publish timed out");
                    Err(EmitterError::Timeout {
                        service: self.service.clone(),
                        timeout,
                    })
                }
            }
        })
    }

    fn describe(&self) -> String {
        self.service.clone()
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
