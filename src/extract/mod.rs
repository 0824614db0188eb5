//! Extractors: the typed arguments of handlers.
//!
//! Every handler argument implements [`FromContext`]. A handler takes them in any order;
//! each is built from the [`Context`] of the call (the socket, and the connect auth, the
//! event and its arguments, or the disconnect reason). An extractor that fails skips the
//! handler and logs the failure (a `tracing` warning). In an event handler, a client that
//! asked for an ack gets `{"error": message}`. In a connect handler, the connection is
//! refused before the CONNECT reply, with a CONNECT_ERROR carrying the message (the client
//! sees `connect_error`), as a middleware's refusal. Use [`TryData`] or `Data<Option<T>>` to
//! handle bad or missing data yourself.

mod data;
mod socket;

use std::sync::Arc;

use crate::engine::Str;
use crate::errors::DisconnectReason;
use crate::parser::Args;
use crate::socket::Socket;

pub use data::{Bin, Data, DataArgs, Event, TryData};
pub use socket::{Extension, Handshake, MaybeExtension, State};

/// What an extractor sees: the socket, and what the call is about.
pub struct Context<'a> {
    pub(crate) socket: &'a Arc<Socket>,
    pub(crate) kind: Kind<'a>,
}

impl std::fmt::Debug for Context<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Context")
            .field("socket", &self.socket.id())
            .finish_non_exhaustive()
    }
}

#[derive(Debug)]
pub(crate) enum Kind<'a> {
    Connect {
        auth: Option<&'a Str>,
    },
    Event {
        name: &'a str,
        args: &'a Args,
        ack: Option<u64>,
    },
    Disconnect {
        reason: DisconnectReason,
    },
}

impl<'a> Context<'a> {
    pub(crate) fn new(socket: &'a Arc<Socket>, kind: Kind<'a>) -> Self {
        Self { socket, kind }
    }

    /// The socket the call is about.
    pub fn socket(&self) -> &Arc<Socket> {
        self.socket
    }
}

/// Why an extractor could not build its value.
#[derive(Debug, thiserror::Error)]
pub enum ExtractError {
    /// The data did not deserialize into the requested type.
    #[error("data did not deserialize: {0}")]
    Data(#[from] serde_json::Error),
    /// The extractor does not apply to this kind of handler (an `AckSender` in a connect
    /// handler, `Data` in a disconnect handler, ...).
    #[error("{0} is not available in this handler")]
    NotAvailable(&'static str),
    /// No app-wide state of this type was registered with the builder.
    #[error("no state of type {0}")]
    MissingState(&'static str),
    /// The socket holds no extension of this type.
    #[error("no socket extension of type {0}")]
    MissingExtension(&'static str),
}

/// A value that a handler can take as an argument.
#[diagnostic::on_unimplemented(
    message = "`{Self}` cannot be a Socket.IO handler argument",
    label = "not an extractor",
    note = "handler arguments must implement `FromContext`: `SocketRef`, `Data<T>`, `DataArgs<T>`, `TryData<T>`, `Bin`, `AckSender`, `State<T>`, `Extension<T>`, `MaybeExtension<T>`, `Event`, `Handshake`, `DisconnectReason`, `SocketIo`, `BroadcastOperators` (the namespace)",
    note = "`Data<T>` needs `T: serde::de::DeserializeOwned`; `State<T>` and `Extension<T>` need `T: Clone`"
)]
pub trait FromContext: Sized + Send + 'static {
    /// Builds the value, or says why it cannot.
    fn from_context(cx: &Context<'_>) -> Result<Self, ExtractError>;
}

impl FromContext for DisconnectReason {
    fn from_context(cx: &Context<'_>) -> Result<Self, ExtractError> {
        match cx.kind {
            Kind::Disconnect { reason } => Ok(reason),
            _ => Err(ExtractError::NotAvailable("DisconnectReason")),
        }
    }
}
