//! WebSocket: the handshake, the upgrade probe, and the I/O loop of a WebSocket session.

use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use bytes::Bytes;
use futures_util::{FutureExt, SinkExt, StreamExt};
use http::{HeaderValue, Request, Response, StatusCode, header};
use http_body_util::Full;
use hyper_util::rt::TokioIo;
use tokio::time::{sleep_until, timeout};
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::handshake::derive_accept_key;
use tokio_tungstenite::tungstenite::protocol::{Role, WebSocketConfig};
use tokio_tungstenite::tungstenite::{self, Message as WsMessage};

use super::handler::Gate;
use super::packet::{DecodeError, Frame, Incoming, PONG, PONG_PROBE, Str, decode_text};
use super::server::{Heartbeat, header_has_token};
use super::{
    CloseReason, Engine, EngineError, EngineHandler, EngineProtocol, Message, Session,
    TransportKind, v3,
};

/// A server-side WebSocket over an upgraded hyper connection. Boxed: it moves from the
/// handshake into the session task (through the session, after an upgrade), and every
/// future it passes through would otherwise keep a slot of its size for the session's life.
pub(crate) type WsStream = Box<WebSocketStream<TokioIo<hyper::upgrade::Upgraded>>>;

/// Messages held while a [`Gate`] is pending, at most; more is a client flooding a session
/// whose handler has not finished, and closes it.
const MAX_HELD: usize = 1024;

/// What to do once the WebSocket handshake completes.
pub(crate) enum Accepted<D> {
    /// A new session directly on WebSocket, with its protocol and (v3) whether the client
    /// wants binary as base64.
    Open { protocol: EngineProtocol, b64: bool },
    /// Probe and upgrade this polling session; (v3) whether this WebSocket wants base64.
    Upgrade(Arc<Session<D>>, bool),
    /// Complete the handshake, then close: the sid is not upgradable.
    Refuse,
}

pub(crate) fn is_upgrade_request<B>(req: &Request<B>) -> bool {
    header_has_token(req.headers().get(header::UPGRADE), "websocket")
        && header_has_token(req.headers().get(header::CONNECTION), "upgrade")
}

fn ws_config<H: EngineHandler>(engine: &Engine<H>) -> WebSocketConfig {
    let max = engine.config().max_payload;
    let mut c = WebSocketConfig::default();
    c.read_buffer_size = engine.config().ws_read_buffer_size;
    // Frames fed between two flushes are written in chunks of this size: a batch of small
    // frames costs one write, not one per frame.
    c.write_buffer_size = 16 * 1024;
    c.max_message_size = Some(max);
    c.max_frame_size = Some(max);
    c
}

/// Answers the handshake with 101 and spawns what follows.
pub(crate) fn accept<H, B>(
    mut req: Request<B>,
    engine: Arc<Engine<H>>,
    then: Accepted<H::Data>,
) -> Result<Response<Full<Bytes>>, EngineError>
where
    H: EngineHandler,
    B: Send + 'static,
{
    let headers = req.headers();
    let key = headers
        .get(header::SEC_WEBSOCKET_KEY)
        .ok_or(EngineError::BadRequest)?;
    if headers
        .get(header::SEC_WEBSOCKET_VERSION)
        .is_none_or(|v| v.as_bytes() != b"13")
    {
        return Err(EngineError::BadRequest);
    }
    let accept = derive_accept_key(key.as_bytes());
    let Ok(accept) = HeaderValue::from_str(&accept) else {
        return Err(EngineError::BadRequest);
    };
    let on_upgrade = hyper::upgrade::on(&mut req);
    let (parts, _body) = req.into_parts();
    let config = ws_config(&engine);
    tokio::spawn(async move {
        let upgraded = match on_upgrade.await {
            Ok(u) => u,
            Err(e) => {
                tracing::debug!(error = %e, "websocket upgrade failed");
                if let Accepted::Upgrade(s, _) = &then {
                    s.upgrading.store(false, Ordering::Release);
                }
                return;
            }
        };
        let stream = Box::new(
            WebSocketStream::from_raw_socket(TokioIo::new(upgraded), Role::Server, Some(config))
                .await,
        );
        match then {
            Accepted::Open { protocol, b64 } => {
                let session = engine.register(parts, TransportKind::WebSocket, protocol, b64);
                session.send_control(Frame::Text(engine.open_packet(session.id(), false).into()));
                engine.handler().on_open(&session);
                engine.run_session(session, Some(stream)).await;
            }
            Accepted::Upgrade(session, b64) => probe(&engine, session, stream, b64).await,
            Accepted::Refuse => {
                let mut stream = stream;
                let _ = WebSocketStream::close(&mut stream, None).await;
            }
        }
    });
    let mut res = Response::new(Full::new(Bytes::new()));
    *res.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
    let h = res.headers_mut();
    h.insert(header::UPGRADE, HeaderValue::from_static("websocket"));
    h.insert(header::CONNECTION, HeaderValue::from_static("Upgrade"));
    h.insert(header::SEC_WEBSOCKET_ACCEPT, accept);
    Ok(res)
}

/// The upgrade: `2probe` answered by `3probe`, the pending GET released with a noop, then `5`
/// switches the session to this WebSocket, all within `upgrade_timeout`.
async fn probe<H: EngineHandler>(
    engine: &Arc<Engine<H>>,
    session: Arc<Session<H::Data>>,
    mut stream: WsStream,
    b64: bool,
) {
    let sid = session.id();
    let outcome = timeout(engine.config().upgrade_timeout, async {
        let mut probed = false;
        loop {
            // The session may close while the probe runs (the client's close over polling,
            // the server's): the reference then closes the probing WebSocket too.
            let msg = tokio::select! {
                msg = stream.next() => msg,
                _ = closed(&session) => return false,
            };
            let Some(msg) = msg else { return false };
            let text = match msg {
                Ok(WsMessage::Text(t)) => t,
                Ok(WsMessage::Ping(_) | WsMessage::Pong(_)) => continue,
                Ok(_) | Err(_) => return false,
            };
            match decode_text(text) {
                Ok(Incoming::Ping { probe: true }) if !probed => {
                    if stream
                        .send(frame_to_ws(PONG_PROBE, WsFraming::V4))
                        .await
                        .is_err()
                    {
                        return false;
                    }
                    // Polls are released with a noop from now on; it is never queued, so
                    // it cannot reach the WebSocket.
                    session.probing.store(true, Ordering::Release);
                    session.outbox_ready.notify_waiters();
                    probed = true;
                }
                Ok(Incoming::Upgrade) if probed => return true,
                other => {
                    tracing::debug!(%sid, packet = ?other, "unexpected packet during upgrade");
                    return false;
                }
            }
        }
    })
    .await;
    if outcome == Ok(true) && !session.is_closed() {
        // The switch is visible to every request from here on: a GET that follows `5` sees it.
        session.set_ws_b64(b64);
        session.set_websocket();
        session.probing.store(false, Ordering::Release);
        *session.handoff.lock().unwrap_or_else(|e| e.into_inner()) = Some(stream);
        session.upgrading.store(false, Ordering::Release);
        session.signal.notify_one();
        // A poll waiting for its noop learns that polling is over.
        session.outbox_ready.notify_waiters();
        tracing::debug!(%sid, "upgraded to websocket");
        engine.handler().on_upgrade(&session);
    } else {
        session.probing.store(false, Ordering::Release);
        session.upgrading.store(false, Ordering::Release);
        tracing::debug!(%sid, timed_out = outcome.is_err(), "upgrade abandoned");
        let _ = timeout(CLOSE_GRACE, WebSocketStream::close(&mut stream, None)).await;
    }
}

/// How frames go on one WebSocket.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum WsFraming {
    /// Engine.IO v4: binary frames carry the message bytes alone.
    V4,
    /// Engine.IO v3: binary frames start with the packet type byte `4`.
    V3,
    /// Engine.IO v3 for a client that asked for base64: binary as `b4<base64>` text.
    V3Base64,
}

impl WsFraming {
    fn of<D>(session: &Session<D>) -> Self {
        match session.protocol() {
            EngineProtocol::V4 => Self::V4,
            EngineProtocol::V3 if session.ws_b64() => Self::V3Base64,
            EngineProtocol::V3 => Self::V3,
        }
    }

    /// Decodes a data message; `None` for control messages.
    fn decode(self, msg: WsMessage) -> Option<Result<Incoming, DecodeError>> {
        Some(match (msg, self) {
            (WsMessage::Text(t), Self::V4) => decode_text(t),
            (WsMessage::Text(t), _) => v3::decode_text_packet(t),
            (WsMessage::Binary(b), Self::V4) => Ok(Incoming::Message(Message::Binary(b))),
            (WsMessage::Binary(b), _) => v3::decode_binary_packet(b),
            _ => return None,
        })
    }
}

fn frame_to_ws(frame: Frame, framing: WsFraming) -> WsMessage {
    match (frame, framing) {
        (Frame::Text(s), _) => WsMessage::Text(s),
        (Frame::Binary(b), WsFraming::V4) => WsMessage::Binary(b),
        (Frame::Binary(b), WsFraming::V3) => WsMessage::Binary(v3::binary_message(&b)),
        (Frame::Binary(b), WsFraming::V3Base64) => {
            WsMessage::Text(Str::from(v3::base64_message(&b)))
        }
    }
}

fn close_reason_of(e: &tungstenite::Error) -> CloseReason {
    match e {
        tungstenite::Error::ConnectionClosed
        | tungstenite::Error::AlreadyClosed
        | tungstenite::Error::Io(_)
        | tungstenite::Error::Protocol(
            tungstenite::error::ProtocolError::ResetWithoutClosingHandshake,
        ) => CloseReason::TransportClose,
        _ => CloseReason::TransportError,
    }
}

/// Writes every queued frame, then flushes once: one syscall for a whole batch. Whether
/// frames queued behind a [`Session::write_apart`] mark are left for a later write.
async fn write_batch<D>(
    session: &Session<D>,
    stream: &mut WsStream,
    batch: &mut VecDeque<Frame>,
    framing: WsFraming,
) -> Result<bool, tungstenite::Error> {
    let more = session.drain_all(batch);
    if batch.is_empty() {
        return Ok(false);
    }
    for frame in batch.drain(..) {
        stream.feed(frame_to_ws(frame, framing)).await?;
    }
    stream.flush().await?;
    Ok(more)
}

/// The I/O loop of a session on WebSocket; returns why it ended.
pub(crate) async fn run<H: EngineHandler>(
    engine: &Arc<Engine<H>>,
    session: &Arc<Session<H::Data>>,
    mut stream: WsStream,
    hb: &mut Heartbeat,
) -> CloseReason {
    let mut batch = VecDeque::new();
    let mut gate: Option<Gate> = None;
    let mut held: VecDeque<Message> = VecDeque::new();
    let framing = WsFraming::of(session);
    // One timer for the whole session, moved when the heartbeat's deadline moves: a timer
    // made per loop turn would enter and leave the timer wheel once per message.
    let timer = sleep_until(hb.due(session));
    tokio::pin!(timer);
    let reason = loop {
        let due = hb.due(session);
        if timer.deadline() != due {
            timer.as_mut().reset(due);
        }
        if let Some(reason) = session.close_reason() {
            if reason == CloseReason::ServerClose {
                let _ = tokio::time::timeout(CLOSE_GRACE, async {
                    while let Ok(true) =
                        write_batch(session, &mut stream, &mut batch, framing).await
                    {
                    }
                })
                .await;
            }
            break reason;
        }
        let ready = std::future::poll_fn(|cx| session.doorbell.poll_rung(cx));
        tokio::select! {

            () = async { if let Some(g) = gate.as_mut() { g.await } }, if gate.is_some() => {
                gate = None;
                while gate.is_none() {
                    let Some(msg) = held.pop_front() else { break };
                    gate = engine.handler().on_message(session, msg);
                }
            }
            () = ready => {
                // A peer that stops reading blocks this write: the session must still close
                // (by policy or by heartbeat) instead of waiting on it forever.
                let outcome = tokio::select! {
                    // The write first: it almost always completes at once, and then the
                    // other two are never polled (waiting on `closed` takes the Notify's
                    // lock twice).
                    biased;
                    r = write_batch(session, &mut stream, &mut batch, framing) => match r {
                        Ok(false) => None,
                        Ok(true) => {
                            // The rest goes on a later tick, as the reference's would: the
                            // peer gets a chance to read the first write on its own.
                            session.doorbell.ring();
                            tokio::task::yield_now().await;
                            None
                        }
                        Err(e) => {
                            tracing::debug!(sid = %session.id(), error = %e, "websocket write failed");
                            Some(close_reason_of(&e))
                        }
                    },
                    // Closed meanwhile: the top of the loop flushes what is queued (a
                    // DISCONNECT must reach the client before the close), bounded, and ends.
                    _ = closed(session) => None,
                    () = timer.as_mut() => hb.on_timer(session).err(),
                };
                if let Some(reason) = outcome {
                    break reason;
                }
            }
            () = timer.as_mut() => {
                if let Err(reason) = hb.on_timer(session) {
                    break reason;
                }
            }
            msg = stream.next() => {
                session.doorbell.disarm();
                // Take every message already received before writing anything: replies
                // to a burst then leave in one write instead of one write each.
                let mut next = Some(msg);
                let mut taken = 0;
                let mut ended = None;
                while let Some(msg) = next.take() {
                    let r = match msg {
                        None => Some(CloseReason::TransportClose),
                        Some(Err(e)) => {
                            tracing::debug!(sid = %session.id(), error = %e, "websocket read failed");
                            Some(close_reason_of(&e))
                        }
                        Some(Ok(m)) => take(engine, session, hb, framing, &mut gate, &mut held, m),
                    };
                    if r.is_some() {
                        ended = r;
                        break;
                    }
                    taken += 1;
                    if taken < READ_BATCH {
                        next = stream.next().now_or_never();
                    }
                }
                if let Some(reason) = ended {
                    break reason;
                }
            }
        }
    };
    session.close(reason);
    // The closing handshake (RFC 6455 5.5.1): our Close frame, or the answer to the
    // client's, flushed before the connection is dropped. A courtesy a peer that does not
    // read cannot have, hence the bound.
    let _ = tokio::time::timeout(CLOSE_GRACE, async {
        let _ = WebSocketStream::close(&mut stream, None).await;
        // Drive the connection until the peer's Close (or its end) is read, so ours is on
        // the wire before the TCP connection goes.
        while let Some(Ok(_)) = stream.next().await {}
    })
    .await;
    reason
}

/// Messages taken from one read before the loop looks at its other work again.
const READ_BATCH: usize = 64;

/// Hands one received WebSocket message on; `Some(reason)` ends the session.
fn take<H: EngineHandler>(
    engine: &Arc<Engine<H>>,
    session: &Arc<Session<H::Data>>,
    hb: &mut Heartbeat,
    framing: WsFraming,
    gate: &mut Option<Gate>,
    held: &mut VecDeque<Message>,
    msg: WsMessage,
) -> Option<CloseReason> {
    if matches!(msg, WsMessage::Close(_)) {
        return Some(CloseReason::TransportClose);
    }
    let incoming = match framing.decode(msg) {
        Some(Ok(Incoming::Pong { probe: false })) if framing == WsFraming::V4 => {
            hb.on_pong(session);
            return None;
        }
        Some(Ok(p)) => {
            hb.on_packet(session);
            p
        }
        Some(Err(e)) => {
            tracing::debug!(sid = %session.id(), error = %e, "bad engine.io packet");
            return Some(CloseReason::ParseError);
        }
        None => return None,
    };
    match incoming {
        Incoming::Message(m) if gate.is_some() => {
            if held.len() >= MAX_HELD {
                tracing::debug!(sid = %session.id(), "too many messages held behind a pending handler");
                return Some(CloseReason::TransportError);
            }
            held.push_back(m);
        }
        Incoming::Message(m) => *gate = engine.handler().on_message(session, m),
        Incoming::Pong { probe: false } if framing == WsFraming::V4 => hb.on_pong(session),
        Incoming::Ping { probe: false } if framing != WsFraming::V4 => {
            session.send_control(PONG);
            hb.on_pong(session);
        }
        Incoming::Close => return Some(CloseReason::ClientClose),
        Incoming::Ping { probe: false } | Incoming::Pong { probe: false } => {
            // A heartbeat in the wrong direction: the reference closes the session.
            tracing::debug!(sid = %session.id(), "invalid heartbeat direction");
            return Some(CloseReason::TransportError);
        }
        other => {
            tracing::trace!(sid = %session.id(), packet = ?other, "ignored packet on websocket");
        }
    }
    None
}

/// How long the closing handshake may take before the connection is just dropped.
const CLOSE_GRACE: std::time::Duration = std::time::Duration::from_secs(1);

/// Resolves once the session is closed, with its reason.
async fn closed<D>(session: &Session<D>) -> CloseReason {
    loop {
        let signal = session.signal.notified();
        if let Some(reason) = session.close_reason() {
            return reason;
        }
        signal.await;
    }
}
