//! HTTP errors the engine answers with, worded as the reference server words them.

use bytes::Bytes;
use http::{Response, StatusCode, header};
use http_body_util::Full;

/// Why the engine refused an HTTP request.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EngineError {
    /// Code 0: missing or unknown `transport`.
    #[error("Transport unknown")]
    TransportUnknown,
    /// Code 1: the `sid` names no open session.
    #[error("Session ID unknown")]
    UnknownSid,
    /// Code 2: a handshake that is not a GET.
    #[error("Bad handshake method")]
    BadHandshakeMethod,
    /// Code 3: anything else malformed.
    #[error("Bad request")]
    BadRequest,
    /// Code 4: refused by the `allow_request` hook, with its message.
    #[error("{0}")]
    Forbidden(String),
    /// Code 5: missing or unsupported `EIO` version.
    #[error("Unsupported protocol version")]
    UnsupportedProtocolVersion,
    /// A body larger than `max_payload` (HTTP 413).
    #[error("Payload too large")]
    PayloadTooLarge,
    /// The polling transport refused the request of an open session (a second GET or POST
    /// while one is in flight, a binary body from an Engine.IO v4 client): HTTP 400 with an
    /// empty body, as the reference's transport answers.
    #[error("Request refused by the polling transport")]
    TransportRefused,
    /// A handshake after [`Engine::close_all`](super::Engine::close_all): HTTP 503 with an
    /// empty body. Clients take it as a failed attempt and retry with their backoff, so a
    /// load balancer can send them to another node.
    #[error("Server shutting down")]
    ShuttingDown,
}

impl EngineError {
    /// The numeric code of the JSON error body, if any.
    pub fn code(&self) -> Option<u8> {
        Some(match self {
            Self::TransportUnknown => 0,
            Self::UnknownSid => 1,
            Self::BadHandshakeMethod => 2,
            Self::BadRequest => 3,
            Self::Forbidden(_) => 4,
            Self::UnsupportedProtocolVersion => 5,
            Self::PayloadTooLarge | Self::TransportRefused | Self::ShuttingDown => return None,
        })
    }

    /// The answer to a refused WebSocket handshake, as the reference words it: HTTP 400
    /// whatever the reason (a refusal by `allow_request` included) and the message alone as
    /// `text/html`, not the JSON body of polling errors.
    pub(crate) fn into_upgrade_response(self) -> Response<Full<Bytes>> {
        let status = match self {
            Self::ShuttingDown => StatusCode::SERVICE_UNAVAILABLE,
            _ => StatusCode::BAD_REQUEST,
        };
        let mut res = Response::new(Full::new(Bytes::from(self.to_string())));
        *res.status_mut() = status;
        res.headers_mut().insert(
            header::CONTENT_TYPE,
            header::HeaderValue::from_static("text/html"),
        );
        res
    }

    pub(crate) fn into_response(self) -> Response<Full<Bytes>> {
        let status = match self {
            Self::Forbidden(_) => StatusCode::FORBIDDEN,
            Self::PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            Self::ShuttingDown => StatusCode::SERVICE_UNAVAILABLE,
            _ => StatusCode::BAD_REQUEST,
        };
        let body = match self.code() {
            Some(code) => {
                let json = serde_json::json!({ "code": code, "message": self.to_string() });
                Bytes::from(json.to_string())
            }
            None => Bytes::new(),
        };
        let mut res = Response::new(Full::new(body));
        *res.status_mut() = status;
        if self.code().is_some() {
            res.headers_mut().insert(
                header::CONTENT_TYPE,
                header::HeaderValue::from_static("application/json"),
            );
        }
        res
    }
}
