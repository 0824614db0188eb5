//! Engine.IO v4 (and v3 with [`EngineConfig::allow_eio3`]): the transport layer under
//! Socket.IO, usable on its own.
//!
//! [`EngineLayer`] mounts an [`Engine`] in a tower stack. It answers requests under its path
//! (default `/engine.io/`) with long-polling, WebSocket and the upgrade between them, and passes
//! every other request to the inner service. An [`EngineHandler`] sees each session open,
//! each message, and the close with its [`CloseReason`].
//!
//! Each session has one task: it sends heartbeats, and once the session is on WebSocket it
//! reads, dispatches and writes, flushing queued frames in batches. Messages of one session are
//! handed to the handler in arrival order.

mod body;
mod config;
mod error;
mod handler;
mod packet;
mod polling;
mod server;
mod service;
mod session;
mod sid;
mod v3;
mod ws;

pub use body::ResponseBody;
pub(crate) use config::normalize_path;
pub use config::{AllowRequest, EngineConfig, EngineConfigBuilder, Transports};
pub use error::EngineError;
pub use handler::{EngineHandler, Gate};
#[doc(hidden)]
pub use packet::fuzz_decode_payload;
pub use packet::{DecodeError, Frame, Message, MessageBuf, Str};
pub use server::Engine;
pub use service::{EngineLayer, EngineService, NotFound, ResponseFuture};
pub use session::{CloseReason, EngineProtocol, SendError, Session, TransportKind};
pub use sid::{InvalidSid, Sid};
pub(crate) use sid::{SidMap, SidSet};
