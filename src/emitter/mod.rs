//! The [`Emitter`]: publish into a Socket.IO cluster from any Rust process, without being a
//! server (a worker, a cron job, a CLI).
//!
//! An emitter speaks the wire format of a cluster adapter, so every server of the cluster,
//! ours or Node's, acts on what it sends as on a message from another server. It needs a
//! `tokio` runtime and the adapter's service, nothing else: no axum, no listening socket.
//!
//! ```no_run
//! # async fn run() -> Result<(), tower_socketio::emitter::EmitterError> {
//! use tower_socketio::emitter::{Emitter, RedisEmitterConfig};
//!
//! let emitter = Emitter::redis("redis://127.0.0.1:6379", RedisEmitterConfig::default()).await?;
//! emitter.emit("tick", &1).await?; // every client of `/`, on every server
//! emitter.to("room1").except("room2").emit_args("job", &("done", 42)).await?;
//! emitter.of("/admin").within("ops").sockets_join("alerts").await?;
//! emitter.of("/admin").to("banned").disconnect_sockets(true).await?;
//! # Ok(()) }
//! ```
//!
//! Backends, each behind the cargo feature of the adapter it speaks to:
//! - `redis`: Redis pub/sub, as `@socket.io/redis-adapter` and our
//!   [`RedisLink`](crate::adapter::redis::RedisLink) listen; byte for byte what
//!   `@socket.io/redis-emitter` 5.x publishes for the same calls
//!   ([`Emitter::redis`]).
//! - `postgres`: PostgreSQL NOTIFY (and the attachments table), as
//!   `@socket.io/postgres-adapter` and our
//!   [`PostgresLink`](crate::adapter::postgres::PostgresLink) listen; the messages of
//!   `@socket.io/postgres-emitter` 0.1 plus the top-level `nsp` it forgets, without which
//!   Node's servers would drop them ([`Emitter::postgres`]).
//! - `redis-streams`: the Redis stream (and pub/sub, for server-side events) of
//!   `@socket.io/redis-streams-adapter` 0.3 and our
//!   [`RedisStreamsLink`](crate::adapter::redis::streams::RedisStreamsLink), as those servers
//!   write it ([`Emitter::redis_streams`]); its emits are kept in the stream for connection
//!   state recovery like any broadcast.
//!
//! Like Node's emitters, an emitter publishes and forgets: it gets no answer and cannot wait
//! for acks, it has no `volatile`/`compress` flags, and what it sends reaches the servers
//! subscribed at that moment.

mod backend;
#[cfg(feature = "postgres")]
mod postgres;
#[cfg(feature = "redis")]
mod redis;
#[cfg(feature = "redis-streams")]
mod redis_streams;

use std::sync::Arc;

use serde::Serialize;

use crate::adapter::Room;
use crate::operators::IntoRooms;
use crate::parser::EncodeError;

use backend::{Action, Backend, Operation};
#[cfg(feature = "postgres")]
pub use postgres::PostgresEmitterConfig;
#[cfg(feature = "redis")]
pub use redis::RedisEmitterConfig;
#[cfg(feature = "redis-streams")]
pub use redis_streams::RedisStreamsEmitterConfig;

/// Event names an emitter refuses, as Node's emitters do: they name moments of a socket's life.
const RESERVED_EVENTS: &[&str] = &[
    "connect",
    "connect_error",
    "disconnect",
    "disconnecting",
    "newListener",
    "removeListener",
];

/// Publishes events and room operations into a Socket.IO cluster.
///
/// An emitter is a namespace (`/` unless [`of`](Self::of) says otherwise) plus a selection of
/// sockets ([`to`](Self::to), [`within`](Self::within), [`except`](Self::except)); each
/// of those returns a new emitter and leaves this one as it was, and every clone shares the
/// same connection. The final calls ([`emit`](Self::emit), [`emit_args`](Self::emit_args),
/// [`sockets_join`](Self::sockets_join), [`sockets_leave`](Self::sockets_leave),
/// [`disconnect_sockets`](Self::disconnect_sockets),
/// [`server_side_emit`](Self::server_side_emit)) publish one message each, in the order they
/// are awaited.
#[derive(Clone)]
#[must_use = "an emitter does nothing until emit, sockets_join, sockets_leave, disconnect_sockets or server_side_emit is called"]
pub struct Emitter {
    backend: Arc<dyn Backend>,
    nsp: Arc<str>,
    rooms: Vec<Room>,
    except: Vec<Room>,
}

impl std::fmt::Debug for Emitter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Emitter")
            .field("backend", &self.backend.describe())
            .field("nsp", &self.nsp)
            .field("rooms", &self.rooms)
            .field("except", &self.except)
            .finish()
    }
}

/// An emitter could not publish.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum EmitterError {
    /// The service could not be reached, or refused the message.
    #[error("{service}: {message}")]
    Unreachable {
        /// The service (address and channel prefix).
        service: String,
        /// What went wrong.
        message: String,
    },
    /// Connecting, or publishing one message, took longer than the configured timeout.
    #[error("{service}: no answer within {timeout:?}")]
    Timeout {
        /// The service (address and channel prefix).
        service: String,
        /// The timeout that passed.
        timeout: std::time::Duration,
    },
    /// The event name is one servers reserve (`connect`, `disconnect`, ...).
    #[error("\"{0}\" is a reserved event name")]
    ReservedEvent(String),
    /// The data did not serialize.
    #[error(transparent)]
    Encode(#[from] EncodeError),
}

impl Emitter {
    /// An emitter on the main namespace `/` that publishes through `backend`.
    fn with_backend(backend: impl Backend) -> Self {
        Self {
            backend: Arc::new(backend),
            nsp: Arc::from("/"),
            rooms: Vec::new(),
            except: Vec::new(),
        }
    }

    /// This emitter for another namespace (a missing leading `/` is added), with no rooms
    /// selected.
    pub fn of(&self, nsp: &str) -> Emitter {
        let nsp = if nsp.starts_with('/') {
            Arc::from(nsp)
        } else {
            Arc::from(format!("/{nsp}"))
        };
        Self {
            backend: self.backend.clone(),
            nsp,
            rooms: Vec::new(),
            except: Vec::new(),
        }
    }

    /// Adds rooms to target: sockets in any of them. A room given twice counts once.
    pub fn to(&self, rooms: impl IntoRooms) -> Emitter {
        let mut e = self.clone();
        add_unique(&mut e.rooms, rooms);
        e
    }

    /// Same as [`to`](Self::to) (Node's `in`).
    pub fn within(&self, rooms: impl IntoRooms) -> Emitter {
        self.to(rooms)
    }

    /// Excludes sockets in any of these rooms.
    pub fn except(&self, rooms: impl IntoRooms) -> Emitter {
        let mut e = self.clone();
        add_unique(&mut e.except, rooms);
        e
    }

    /// Emits an event with one argument to the selected sockets. [`Binary`](crate::Binary)
    /// values inside `data` reach clients as binary.
    pub async fn emit<T: Serialize + ?Sized>(
        &self,
        event: &str,
        data: &T,
    ) -> Result<(), EmitterError> {
        self.emit_inner(event, data, false).await
    }

    /// Emits an event with any number of arguments: `data` serializes to an array (a tuple,
    /// a `Vec`, `()` for none) whose elements become the arguments.
    pub async fn emit_args<T: Serialize + ?Sized>(
        &self,
        event: &str,
        data: &T,
    ) -> Result<(), EmitterError> {
        self.emit_inner(event, data, true).await
    }

    async fn emit_inner<T: Serialize + ?Sized>(
        &self,
        event: &str,
        data: &T,
        spread: bool,
    ) -> Result<(), EmitterError> {
        if RESERVED_EVENTS.contains(&event) {
            return Err(EmitterError::ReservedEvent(event.to_owned()));
        }
        let args = backend::args(data, spread)?;
        self.publish(Action::Emit {
            event: event.to_owned(),
            args,
        })
        .await
    }

    /// Makes the selected sockets join rooms, on every server.
    pub async fn sockets_join(&self, rooms: impl IntoRooms) -> Result<(), EmitterError> {
        self.publish(Action::Join(rooms.into_rooms())).await
    }

    /// Makes the selected sockets leave rooms, on every server.
    pub async fn sockets_leave(&self, rooms: impl IntoRooms) -> Result<(), EmitterError> {
        self.publish(Action::Leave(rooms.into_rooms())).await
    }

    /// Disconnects the selected sockets from the namespace; with `close`, closes their
    /// whole connections too.
    pub async fn disconnect_sockets(&self, close: bool) -> Result<(), EmitterError> {
        self.publish(Action::Disconnect { close }).await
    }

    /// Sends an event to the servers of the namespace themselves (their server-side event
    /// handlers), with any number of arguments as in [`emit_args`](Self::emit_args). No
    /// answer comes back (Node's emitters take no ack either); the room selection does not
    /// apply. The arguments travel as JSON: binary arrives as Node's
    /// `{"type":"Buffer","data":[...]}`.
    pub async fn server_side_emit<T: Serialize + ?Sized>(
        &self,
        event: &str,
        args: &T,
    ) -> Result<(), EmitterError> {
        let mut data = vec![rmpv::Value::from(event)];
        data.extend(backend::args(args, true)?);
        self.publish(Action::ServerSideEmit { data }).await
    }

    async fn publish(&self, action: Action) -> Result<(), EmitterError> {
        self.backend
            .publish(Operation {
                nsp: &self.nsp,
                rooms: &self.rooms,
                except: &self.except,
                action,
            })
            .await
    }
}

fn add_unique(to: &mut Vec<Room>, rooms: impl IntoRooms) {
    for room in rooms.into_rooms() {
        if !to.contains(&room) {
            to.push(room);
        }
    }
}
