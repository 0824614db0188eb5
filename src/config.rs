//! Settings of the Socket.IO layer.

use std::time::Duration;

use crate::adapter::RecoveryConfig;
use crate::engine::EngineConfig;
use crate::parser::{DecodeLimits, Parser};

/// Socket.IO settings, with the Engine.IO settings under them. Defaults are those of the
/// reference server where it has one.
#[derive(Debug, Clone)]
pub struct SocketIoConfig {
    /// The Engine.IO settings; the path defaults to `/socket.io`.
    pub engine: EngineConfig,
    /// Time a client has to join a namespace after the handshake. Default 45 s.
    pub connect_timeout: Duration,
    /// Default time to wait for an acknowledgement. Default 5 s.
    pub ack_timeout: Duration,
    /// Attachments one binary packet may carry. Default 16.
    pub max_attachments: usize,
    /// Time a binary packet may take to receive all its attachments. Default 10 s.
    pub attachment_timeout: Duration,
    /// The wire format. Default JSON.
    pub parser: Parser,
    /// Connection state recovery; off (`None`) by default.
    pub recovery: Option<RecoveryConfig>,
}

impl Default for SocketIoConfig {
    fn default() -> Self {
        Self {
            engine: EngineConfig::builder().path("/socket.io").build(),
            connect_timeout: Duration::from_secs(45),
            ack_timeout: Duration::from_secs(5),
            max_attachments: 16,
            attachment_timeout: Duration::from_secs(10),
            parser: Parser::default(),
            recovery: None,
        }
    }
}

impl SocketIoConfig {
    pub(crate) fn decode_limits(&self) -> DecodeLimits {
        DecodeLimits {
            max_attachments: self.max_attachments,
            max_attachment_bytes: self.engine.max_payload,
        }
    }
}
