//! Errors of the Socket.IO layer.

use crate::engine;
use crate::parser::EncodeError;

/// An emit could not be queued.
#[derive(Debug, thiserror::Error)]
pub enum EmitError {
    /// The data did not serialize.
    #[error(transparent)]
    Encode(#[from] EncodeError),
    /// The receiver's queue is full (a slow client) or its connection is closed.
    #[error(transparent)]
    Send(#[from] engine::SendError),
    /// The socket has left its namespace.
    #[error("the socket is disconnected")]
    Disconnected,
}

/// An acknowledgement did not arrive as expected.
#[derive(Debug, thiserror::Error)]
pub enum AckError {
    /// No answer within the timeout.
    #[error("ack timed out")]
    Timeout,
    /// The answer did not deserialize into the expected type.
    #[error("ack data did not deserialize: {0}")]
    Decode(#[from] serde_json::Error),
    /// The socket disconnected before answering.
    #[error("the socket disconnected before acknowledging")]
    Disconnected,
    /// The emit itself failed.
    #[error(transparent)]
    Emit(#[from] EmitError),
}

/// Why a socket left its namespace, as the reference server words it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DisconnectReason {
    /// The connection closed (`transport close`).
    TransportClose,
    /// The connection failed or broke the protocol (`transport error`).
    TransportError,
    /// The client stopped answering pings (`ping timeout`).
    PingTimeout,
    /// The client sent something that is not an Engine.IO packet, or a binary packet that
    /// never completed (`parse error`). A Socket.IO packet that does not decode closes the
    /// connection instead, as in the reference ([`ForcedClose`](Self::ForcedClose)).
    ParseError,
    /// The client left the namespace (`client namespace disconnect`).
    ClientNamespaceDisconnect,
    /// The server called `disconnect` (`server namespace disconnect`).
    ServerNamespaceDisconnect,
    /// The server is shutting down (`server shutting down`).
    ServerShuttingDown,
    /// The server closed the connection under the socket without a DISCONNECT
    /// (`forced close`, Node's `socket.conn.close()`): see
    /// [`Socket::close_connection`](crate::Socket::close_connection).
    ForcedClose,
}

impl DisconnectReason {
    /// The reason as text.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::TransportClose => "transport close",
            Self::TransportError => "transport error",
            Self::PingTimeout => "ping timeout",
            Self::ParseError => "parse error",
            Self::ClientNamespaceDisconnect => "client namespace disconnect",
            Self::ServerNamespaceDisconnect => "server namespace disconnect",
            Self::ServerShuttingDown => "server shutting down",
            Self::ForcedClose => "forced close",
        }
    }
}

impl DisconnectReason {
    /// Whether a socket that left for this reason may be recovered, as in the reference
    /// server: the connection was lost or cut under the socket (`transport close`,
    /// `transport error`, `ping timeout`, `forced close`, `server shutting down`), not
    /// left on purpose with a DISCONNECT (`client namespace disconnect`,
    /// `server namespace disconnect`) nor dropped for a broken packet (`parse error`).
    pub fn is_recoverable(self) -> bool {
        matches!(
            self,
            Self::TransportClose
                | Self::TransportError
                | Self::PingTimeout
                | Self::ServerShuttingDown
                | Self::ForcedClose
        )
    }
}

impl std::fmt::Display for DisconnectReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl From<engine::CloseReason> for DisconnectReason {
    fn from(r: engine::CloseReason) -> Self {
        match r {
            engine::CloseReason::PingTimeout => Self::PingTimeout,
            engine::CloseReason::TransportError => Self::TransportError,
            engine::CloseReason::ParseError => Self::ParseError,
            engine::CloseReason::ServerClose => Self::ForcedClose,
            engine::CloseReason::TransportClose | engine::CloseReason::ClientClose => {
                Self::TransportClose
            }
        }
    }
}
