//! The Postgres backend (feature `postgres`): the messages of `@socket.io/postgres-emitter`
//! 0.1 for servers running `@socket.io/postgres-adapter` or our
//! [`PostgresLink`](crate::adapter::postgres::PostgresLink), with the top-level `nsp` that
//! Node's emitter leaves out (Node's adapter drops its messages without it; with it, Node's
//! and our servers both act on them). Binary and long messages go through the attachments
//! table, as the adapters do; the servers delete old rows.

use std::time::Duration;

use rmpv::Value;

use super::backend::{Action, Backend, Operation};
use super::{Emitter, EmitterError};
use crate::adapter::{BoxFuture, BroadcastOptions};
use crate::cluster::postgres::{self as wire, EMITTER_UID};
use crate::cluster::postgres_conn::{self, Publisher, valid_table_name};
use crate::cluster::values::{opts_value, packet_value};

/// Settings of a Postgres emitter; channel prefix, table and threshold must be those of the
/// servers' adapters.
#[derive(Debug, Clone)]
pub struct PostgresEmitterConfig {
    /// Prefix of the NOTIFY channel of each namespace (`<prefix>#<nsp>`). Default
    /// `socket.io`.
    pub channel_prefix: String,
    /// The attachments table (created when missing). Default `socket_io_attachments`.
    pub table_name: String,
    /// Messages whose JSON has this many bytes or more go through the attachments table.
    /// Default 8000.
    pub payload_threshold: usize,
    /// The longest connecting, or publishing one message, may take before it is an
    /// [`EmitterError::Timeout`]. Default 5 s.
    pub timeout: Duration,
}

impl Default for PostgresEmitterConfig {
    fn default() -> Self {
        Self {
            channel_prefix: "socket.io".into(),
            table_name: "socket_io_attachments".into(),
            payload_threshold: 8000,
            timeout: Duration::from_secs(5),
        }
    }
}

struct PostgresBackend {
    publisher: Publisher,
    config: PostgresEmitterConfig,
    service: String,
}

impl Emitter {
    /// Connects to PostgreSQL (`postgres://user@host:port/db`, without TLS), creates the
    /// attachments table when it is missing, and returns an emitter on the main namespace.
    ///
    /// Fails with [`EmitterError::Unreachable`] for a bad URL or table name or a refused
    /// connection, and with [`EmitterError::Timeout`] when PostgreSQL does not answer within
    /// `config.timeout`. Afterwards the connection is reopened by itself after an outage;
    /// meanwhile each publish fails.
    pub async fn postgres(
        url: &str,
        config: PostgresEmitterConfig,
    ) -> Result<Emitter, EmitterError> {
        let service = format!(
            "postgres at {} (channel prefix {:?})",
            without_password(url),
            config.channel_prefix
        );
        let unreachable = |message: String| EmitterError::Unreachable {
            service: service.clone(),
            message,
        };
        let mut pg: tokio_postgres::Config = url
            .parse()
            .map_err(|e: tokio_postgres::Error| unreachable(e.to_string()))?;
        if !valid_table_name(&config.table_name) {
            return Err(unreachable(format!(
                "invalid attachments table name {:?}",
                config.table_name
            )));
        }
        pg.connect_timeout(config.timeout);
        let connector = postgres_conn::connector(pg, tokio_postgres::NoTls);
        let publisher = tokio::time::timeout(
            config.timeout,
            Publisher::start(connector, config.table_name.clone()),
        )
        .await
        .map_err(|_| EmitterError::Timeout {
            service: service.clone(),
            timeout: config.timeout,
        })?
        .map_err(|e| unreachable(e.to_string()))?;
        Ok(Emitter::with_backend(PostgresBackend {
            publisher,
            config,
            service,
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

fn map(entries: Vec<(&str, Value)>) -> Value {
    Value::Map(
        entries
            .into_iter()
            .map(|(k, v)| (Value::from(k), v))
            .collect(),
    )
}

impl PostgresBackend {
    /// The channel and message for this operation: `{type, data, uid: "emitter", nsp}`.
    fn encode(&self, op: Operation<'_>) -> (String, Value) {
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
        let rooms = |rooms: Vec<crate::adapter::Room>| {
            Value::Array(rooms.iter().map(|r| Value::from(r.as_ref())).collect())
        };
        let (kind, data) = match op.action {
            Action::Emit { event, args } => (
                wire::BROADCAST,
                map(vec![
                    ("packet", packet_value(op.nsp, &event, args)),
                    ("opts", opts()),
                ]),
            ),
            Action::Join(r) => (
                wire::SOCKETS_JOIN,
                map(vec![("opts", opts()), ("rooms", rooms(r))]),
            ),
            Action::Leave(r) => (
                wire::SOCKETS_LEAVE,
                map(vec![("opts", opts()), ("rooms", rooms(r))]),
            ),
            Action::Disconnect { close } => (
                wire::DISCONNECT_SOCKETS,
                map(vec![("opts", opts()), ("close", Value::Boolean(close))]),
            ),
            Action::ServerSideEmit { data } => (
                wire::SERVER_SIDE_EMIT,
                map(vec![("packet", Value::Array(data))]),
            ),
        };
        (
            wire::channel(&self.config.channel_prefix, op.nsp),
            wire::message(kind, Some(data), EMITTER_UID, op.nsp),
        )
    }
}

impl Backend for PostgresBackend {
    fn publish<'a>(&'a self, op: Operation<'a>) -> BoxFuture<'a, Result<(), EmitterError>> {
        let (channel, msg) = self.encode(op);
        let out = wire::encode(&msg, self.config.payload_threshold);
        // Queued now, so messages leave in the order the caller awaits them.
        let done = self.publisher.publish(channel, out);
        Box::pin(async move {
            match tokio::time::timeout(self.config.timeout, done).await {
                Ok(Ok(Ok(()))) => Ok(()),
                Ok(Ok(Err(message))) => {
                    tracing::warn!(service = %self.service, error = %message, "emitter: postgres publish failed");
                    Err(EmitterError::Unreachable {
                        service: self.service.clone(),
                        message,
                    })
                }
                Ok(Err(_)) => Err(EmitterError::Unreachable {
                    service: self.service.clone(),
                    message: "publishing task gone".into(),
                }),
                // The message stays queued and may still go out once PostgreSQL answers.
                Err(_) => Err(EmitterError::Timeout {
                    service: self.service.clone(),
                    timeout: self.config.timeout,
                }),
            }
        })
    }

    fn describe(&self) -> String {
        self.service.clone()
    }
}
