//! HTTP long-polling: GET carries packets to the client, POST carries them in.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use bytes::{Buf, Bytes, BytesMut};
use http::{HeaderValue, Request, Response, header};
use http_body::Body;
use http_body_util::{BodyExt, Full};

use super::packet::{CLOSE, Incoming, NOOP, PONG, SEPARATOR, decode_payload};
use super::{
    CloseReason, Engine, EngineConfig, EngineError, EngineHandler, EngineProtocol, Session, v3,
};

/// Marks a polling request as in flight; if the request is dropped before it finishes (the
/// client went away), the session closes.
struct InFlight<'a, D> {
    session: &'a Session<D>,
    flag: &'a AtomicBool,
    done: bool,
}

impl<'a, D> InFlight<'a, D> {
    /// Claims the flag; a second concurrent request is a protocol error that closes the
    /// session, as the reference server does.
    fn claim(session: &'a Session<D>, flag: &'a AtomicBool) -> Result<Self, EngineError> {
        if flag.swap(true, Ordering::AcqRel) {
            tracing::debug!(sid = %session.id(), "overlapping polling request");
            session.close(CloseReason::TransportError);
            return Err(EngineError::TransportRefused);
        }
        Ok(Self {
            session,
            flag,
            done: false,
        })
    }
}

impl<D> Drop for InFlight<'_, D> {
    fn drop(&mut self) {
        self.flag.store(false, Ordering::Release);
        if !self.done {
            // The reference counts a request closed before its answer as a transport error.
            tracing::debug!(sid = %self.session.id(), "polling request abandoned");
            self.session.close(CloseReason::TransportError);
        }
    }
}

pub(crate) fn text_response(body: Bytes) -> Response<Full<Bytes>> {
    let mut res = Response::new(Full::new(body));
    res.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=UTF-8"),
    );
    res
}

/// How often a poll pending during an upgrade probe is released with a noop (the
/// reference's upgrade check interval).
const PROBE_CHECK: std::time::Duration = std::time::Duration::from_millis(100);

/// A long-polling GET: waits for packets, then answers with as many as fit in `max_payload`.
pub(crate) async fn get<D>(
    config: &EngineConfig,
    session: Arc<Session<D>>,
    encoding: Option<Encoding>,
) -> Response<Full<Bytes>> {
    let mut guard = match InFlight::claim(&session, &session.get_busy) {
        Ok(g) => g,
        Err(e) => return e.into_response(),
    };
    // A server close that came before this GET: the reference releases such a poll with a
    // noop before the close packet.
    let closed_before = session.is_closed();
    let frames = loop {
        let ready = session.outbox_ready.notified();
        // An upgrade can complete while this poll waits (a client that sends `5` without
        // waiting for `3probe`): from then on the queue is the WebSocket's, not this poll's.
        if session.transport() != super::TransportKind::Polling {
            guard.done = true;
            return EngineError::BadRequest.into_response();
        }
        let frames = session.drain_polling(config.max_payload);
        let closed = session.is_closed();
        if !frames.is_empty() || closed {
            break (frames, closed);
        }
        if session.probing.load(Ordering::Acquire) {
            // An upgrade is being probed: as the reference, release this poll with a noop
            // at the next check (every 100 ms) so the client can finish the upgrade; if it
            // finished meanwhile, polling is over for this sid.
            let _ = tokio::time::timeout(PROBE_CHECK, ready).await;
            if session.transport() != super::TransportKind::Polling {
                guard.done = true;
                return EngineError::BadRequest.into_response();
            }
            let frames = session.drain_polling(config.max_payload);
            if frames.is_empty() {
                break (vec![NOOP], false);
            }
            break (frames, session.is_closed());
        }
        ready.await;
    };
    let (mut frames, closed) = frames;
    // The close packet goes alone, in a response after the last frames: clients handle a
    // close at once but the packets before it a tick later, so sharing a response would
    // let the close overtake them (a DISCONNECT would read as a lost transport).
    let close = closed && frames.is_empty() && session.buffered() == 0;
    if close {
        match session.close_reason() {
            // The client's own close: its pending poll is released with a noop, as the
            // reference does; the client knows it closed.
            Some(CloseReason::ClientClose) => frames.push(NOOP),
            _ => {
                if closed_before {
                    frames.push(NOOP);
                }
                frames.push(CLOSE);
            }
        }
    }
    let mut body = BytesMut::new();
    let mut binary = false;
    match session.protocol() {
        EngineProtocol::V4 => {
            for (i, f) in frames.iter().enumerate() {
                if i > 0 {
                    body.extend_from_slice(&[SEPARATOR]);
                }
                f.write_polling(&mut body);
            }
        }
        EngineProtocol::V3 if !session.polling_b64() && v3::has_binary(&frames) => {
            v3::write_binary_payload(&frames, &mut body);
            binary = true;
        }
        EngineProtocol::V3 => v3::write_text_payload(&frames, &mut body),
    }
    if close {
        session.close_sent.store(true, Ordering::Release);
        session.signal.notify_one();
    }
    guard.done = true;
    drop(guard);
    let mut body = body.freeze();
    let compressed = config
        .http_compression
        .filter(|threshold| body.len() >= *threshold)
        .and(encoding)
        .and_then(|e| compress(&body, e).map(|b| (e, b)));
    if let Some((_, b)) = &compressed {
        body = b.clone();
    }
    let mut res = if binary {
        let mut res = Response::new(Full::new(body));
        res.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/octet-stream"),
        );
        res
    } else {
        text_response(body)
    };
    if let Some((e, _)) = compressed {
        let h = res.headers_mut();
        h.insert(header::CONTENT_ENCODING, HeaderValue::from_static(e.name()));
        h.insert(header::VARY, HeaderValue::from_static("Accept-Encoding"));
    }
    res
}

/// A content coding the client accepts for polling responses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Encoding {
    Gzip,
    Deflate,
}

impl Encoding {
    fn name(self) -> &'static str {
        match self {
            Encoding::Gzip => "gzip",
            Encoding::Deflate => "deflate",
        }
    }
}

/// gzip if the client accepts it, else deflate, else nothing.
pub(crate) fn accepted_encoding(headers: &http::HeaderMap) -> Option<Encoding> {
    let accept = headers.get(header::ACCEPT_ENCODING)?.to_str().ok()?;
    let offers = |name: &str| {
        accept.split(',').any(|t| {
            let mut parts = t.trim().split(';');
            parts
                .next()
                .is_some_and(|n| n.trim().eq_ignore_ascii_case(name))
                && !parts.any(|p| p.trim().replace(' ', "") == "q=0")
        })
    };
    if offers("gzip") {
        Some(Encoding::Gzip)
    } else if offers("deflate") {
        Some(Encoding::Deflate)
    } else {
        None
    }
}

#[cfg(feature = "compression")]
fn compress(body: &[u8], encoding: Encoding) -> Option<Bytes> {
    use std::io::Write;
    let level = flate2::Compression::fast();
    let out = match encoding {
        Encoding::Gzip => {
            let mut e = flate2::write::GzEncoder::new(Vec::with_capacity(body.len() / 2), level);
            e.write_all(body).ok()?;
            e.finish().ok()?
        }
        Encoding::Deflate => {
            let mut e =
                flate2::write::DeflateEncoder::new(Vec::with_capacity(body.len() / 2), level);
            e.write_all(body).ok()?;
            e.finish().ok()?
        }
    };
    Some(Bytes::from(out))
}

#[cfg(not(feature = "compression"))]
fn compress(_: &[u8], _: Encoding) -> Option<Bytes> {
    None
}

/// Decodes a POST body as the session's protocol frames it.
fn decode_body<D>(
    session: &Session<D>,
    body: Bytes,
    binary: bool,
) -> Result<Vec<Incoming>, super::DecodeError> {
    match session.protocol() {
        EngineProtocol::V4 => decode_payload(body),
        EngineProtocol::V3 if binary => v3::decode_binary_payload(body),
        EngineProtocol::V3 => v3::decode_text_payload(body),
    }
}

/// A POST: reads the body within `max_payload` and hands each packet to the handler in order.
pub(crate) async fn post<H, B>(
    engine: &Arc<Engine<H>>,
    session: Arc<Session<H::Data>>,
    req: Request<B>,
) -> Result<Response<Full<Bytes>>, EngineError>
where
    H: EngineHandler,
    B: Body + Send + 'static,
    B::Data: Send,
    B::Error: std::fmt::Display,
{
    let mut guard = InFlight::claim(&session, &session.post_busy)?;
    let max = engine.config().max_payload;
    let fail = |reason: CloseReason, e: EngineError| {
        session.close(reason);
        Err(e)
    };
    let binary_type = req
        .headers()
        .get(header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(b"application/octet-stream"));
    let v3 = session.protocol() == EngineProtocol::V3;
    if binary_type && !v3 {
        // Engine.IO v4 sends binary as base64 text; a binary body is not a v4 client.
        tracing::debug!(sid = %session.id(), "binary polling body refused");
        guard.done = true;
        return fail(CloseReason::TransportError, EngineError::TransportRefused);
    }
    let declared = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > max as u64) {
        tracing::debug!(sid = %session.id(), "polling body over max_payload (declared)");
        guard.done = true;
        return fail(CloseReason::TransportError, EngineError::PayloadTooLarge);
    }
    // A body that never completes would hold the session's POST slot forever: give it as
    // long as a heartbeat round.
    let limit = engine.config().ping_interval + engine.config().ping_timeout;
    let body = match tokio::time::timeout(limit, read_limited(req.into_body(), max)).await {
        Ok(Ok(b)) => b,
        Ok(Err(ReadError::TooLarge)) => {
            tracing::debug!(sid = %session.id(), "polling body over max_payload");
            guard.done = true;
            return fail(CloseReason::TransportError, EngineError::PayloadTooLarge);
        }
        Ok(Err(ReadError::Body(e))) => {
            tracing::debug!(sid = %session.id(), error = %e, "polling body failed");
            guard.done = true;
            return fail(CloseReason::TransportError, EngineError::BadRequest);
        }
        Err(_) => {
            tracing::debug!(sid = %session.id(), "polling body not completed in time");
            guard.done = true;
            return fail(CloseReason::TransportError, EngineError::BadRequest);
        }
    };
    guard.done = true;
    // As the reference: a payload that does not decode closes the session ("parse error"),
    // and the POST itself is answered as read.
    let packets = decode_body(&session, body, binary_type).unwrap_or_else(|e| {
        tracing::debug!(sid = %session.id(), error = %e, "bad polling payload");
        session.close(CloseReason::ParseError);
        Vec::new()
    });
    let v4_pong = |p: &Incoming| !v3 && matches!(p, Incoming::Pong { probe: false });
    if packets.iter().any(|p| !v4_pong(p))
        && !v3
        && session.refresh_pong_due(engine.config().ping_timeout)
    {
        // The session task takes up the extended deadline.
        session.signal.notify_one();
    }
    for packet in packets {
        if session.is_closed() {
            break;
        }
        match packet {
            Incoming::Message(msg) => {
                if let Some(gate) = engine.handler().on_message(&session, msg) {
                    gate.await;
                }
            }
            Incoming::Pong { probe: false } if !v3 => {
                session.pong.store(true, Ordering::Release);
                session.signal.notify_one();
            }
            Incoming::Ping { probe: false } if v3 => {
                session.send_control(PONG);
                session.pong.store(true, Ordering::Release);
                session.signal.notify_one();
            }
            Incoming::Ping { .. } | Incoming::Pong { .. } => {
                // A heartbeat in the wrong direction: the reference closes the session.
                tracing::debug!(sid = %session.id(), "invalid heartbeat direction");
                session.close(CloseReason::TransportError);
            }
            Incoming::Close => session.close(CloseReason::ClientClose),
            Incoming::Noop => {}
            other => {
                tracing::debug!(sid = %session.id(), packet = ?other, "unexpected packet over polling, ignored");
            }
        }
    }
    drop(guard);
    let mut res = Response::new(Full::new(Bytes::from_static(b"ok")));
    res.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static("text/html"));
    Ok(res)
}

enum ReadError<E> {
    TooLarge,
    Body(E),
}

/// Reads a body, giving up as soon as it passes `max` bytes: nothing larger is ever buffered.
async fn read_limited<B>(body: B, max: usize) -> Result<Bytes, ReadError<B::Error>>
where
    B: Body,
{
    let mut body = std::pin::pin!(body);
    let mut first: Option<Bytes> = None;
    let mut buf = BytesMut::new();
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(ReadError::Body)?;
        let Ok(mut data) = frame.into_data() else {
            continue;
        };
        let len = data.remaining();
        let have = first.as_ref().map_or(0, Bytes::len) + buf.len();
        if have + len > max {
            return Err(ReadError::TooLarge);
        }
        let chunk = data.copy_to_bytes(len);
        match first.take() {
            None if buf.is_empty() => first = Some(chunk),
            Some(f) => {
                buf.extend_from_slice(&f);
                buf.extend_from_slice(&chunk);
            }
            None => buf.extend_from_slice(&chunk),
        }
    }
    Ok(first.unwrap_or_else(|| buf.freeze()))
}
