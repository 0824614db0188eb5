//! tower-socketio: a Socket.IO v5 / Engine.IO v4 server for tower and axum.
//!
//! Mount a [`SocketIoLayer`] on an axum `Router` (or any tower stack); it answers requests
//! under `/socket.io/` and passes every other request to your app. Handlers are closures
//! whose arguments are extractors, as in axum.
//!
//! ```no_run
//! use axum::{Router, routing::get};
//! use serde::{Deserialize, Serialize};
//! use tower_socketio::{AckSender, Data, SocketIo, SocketRef};
//!
//! #[derive(Debug, Clone, Serialize, Deserialize)]
//! struct ChatMsg {
//!     room: String,
//!     text: String,
//! }
//!
//! #[derive(Debug, Deserialize)]
//! struct Auth {
//!     name: String,
//! }
//!
//! #[tokio::main]
//! async fn main() -> std::io::Result<()> {
//!     let (layer, io) = SocketIo::builder().build_layer();
//!     // The connect handler's extractors run before the client is accepted: a client
//!     // without a valid `auth` (`{name}`) gets a `connect_error` with the reason.
//!     // `Data<Option<Auth>>` or `TryData<Auth>` would accept it.
//!     io.ns("/", |socket: SocketRef, Data(auth): Data<Auth>| {
//!         socket.extensions().insert(auth.name);
//!         socket.on("join", |socket: SocketRef, Data(room): Data<String>| {
//!             socket.join(room);
//!         });
//!         socket.on(
//!             "chat",
//!             |socket: SocketRef, Data(msg): Data<ChatMsg>, ack: AckSender| async move {
//!                 socket.to(msg.room.clone()).emit("chat", &msg).await.ok();
//!                 ack.send(&"ok").ok();
//!             },
//!         );
//!     });
//!     let app = Router::new()
//!         .route("/", get(|| async { "hello" }))
//!         .layer(layer);
//!     let listener = tokio::net::TcpListener::bind("127.0.0.1:3000").await?;
//!     axum::serve(listener, app).await
//! }
//! ```
//!
//! # Arguments
//! Events and acks carry any number of arguments. [`Data<T>`] takes the only argument (all
//! of them as a tuple when there are several); [`DataArgs<T>`] takes the argument list as
//! it is, so `f()`, `f(null)`, `f([1, 2])` and `f(1, 2)` stay apart. [`Value`] holds any
//! argument, binary data included at any depth, and goes back out unchanged: with
//! `DataArgs<Vec<Value>>`, [`Socket::emit_args`] and [`Socket::emit_with_ack`] a handler
//! forwards any event (see `examples/relay.rs`).
//!
//! # Ordering
//! Packets of one client are handled in arrival order. Each event handler starts in that
//! order and runs up to its first pending `.await` before the next packet is looked at; only
//! the rest of an `async` handler runs concurrently with later events. The connect handler
//! (with its middlewares) runs to completion before any later packet of that client is
//! handled, so events are never lost to handlers registered late; the CONNECT reply is
//! queued before the connect handler runs, so whatever it emits reaches the client after
//! the reply, as with the reference server.
//!
//! # Layers
//! - [`engine`]: Engine.IO v4, usable alone.
//! - [`parser`]: Socket.IO packets and their wire format.
//! - [`adapter`]: rooms, and how a broadcast finds its sockets.
//! - [`server_event`]: events between the servers of a cluster, with their handlers.
//! - `admin` (feature `admin`): the official Socket.IO Admin UI, through one observer hook.
//! - the rest (this module): namespaces, sockets, extractors, handlers, broadcasting.
//! - `emitter` (feature `redis` or `postgres`): publish into a cluster from a process that is not a server.
#![warn(missing_docs)]

pub mod adapter;
#[cfg(feature = "admin")]
pub mod admin;
#[cfg(any(feature = "redis", feature = "postgres"))]
pub mod emitter;
pub mod engine;
pub mod extract;
pub mod handler;
pub mod parser;
pub mod server_event;

mod ack;
mod client;
#[cfg(any(feature = "redis", feature = "postgres"))]
mod cluster;
mod config;
mod errors;
mod extensions;
mod instrument;
mod io;
mod middleware;
mod ns;
mod operators;
mod socket;

pub use ack::{AckFuture, AckSender};
pub use client::SocketIoHandler;
pub use config::SocketIoConfig;
pub use errors::{AckError, DisconnectReason, EmitError};
pub use extensions::Extensions;
pub use extract::{
    Bin, Data, DataArgs, Event, Extension, Handshake, MaybeExtension, State, TryData,
};
pub use handler::ConnectRejection;
pub use io::{NamespaceHandle, SocketIo, SocketIoBuilder, SocketIoLayer, SocketIoService};
pub use middleware::{EventRejection, IncomingEvent};
pub use ns::Namespace;
pub use operators::{BroadcastError, BroadcastOperators, IntoRooms, SocketAck};
pub use parser::{Binary, Value};
pub use socket::{Socket, SocketData, SocketRef};
