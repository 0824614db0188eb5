//! One Engine.IO session: its outgoing queue, state flags and close signal.
//!
//! A session is shared (`Arc`) between its task (heartbeat and WebSocket I/O), the polling
//! requests that carry it, and the handler. Everything here is lock-free or holds a
//! `std::sync::Mutex` for a few instructions, never across an `.await`.

use std::collections::VecDeque;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU8, AtomicU64, Ordering};
use std::task::{Context, Poll};
use std::time::SystemTime;

use futures_util::task::AtomicWaker;

use http::request::Parts;
use tokio::sync::Notify;

use super::Sid;
use super::packet::Frame;

/// The transport a session currently uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TransportKind {
    /// HTTP long-polling.
    Polling,
    /// WebSocket.
    WebSocket,
}

impl TransportKind {
    /// The name used on the wire (`polling`, `websocket`).
    pub fn as_str(self) -> &'static str {
        match self {
            TransportKind::Polling => "polling",
            TransportKind::WebSocket => "websocket",
        }
    }
}

/// The Engine.IO protocol revision a session speaks, from the `EIO` query parameter of its
/// handshake.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EngineProtocol {
    /// Engine.IO v3 (`socket.io-client` 2.x), accepted only with
    /// [`EngineConfig::allow_eio3`](super::EngineConfig::allow_eio3): the client pings and the
    /// server answers, polling payloads are length-prefixed, binary frames carry a type byte.
    V3,
    /// Engine.IO v4, the current revision.
    V4,
}

/// Why a session closed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum CloseReason {
    /// The connection went away (TCP closed, request abandoned, WebSocket closed).
    TransportClose = 1,
    /// The client broke the protocol (bad packet, overlapping polling requests, oversized data).
    TransportError = 2,
    /// No pong within `ping_timeout` of a ping.
    PingTimeout = 3,
    /// The server closed the session.
    ServerClose = 4,
    /// The client sent a close packet.
    ClientClose = 5,
    /// The client sent something that is not an Engine.IO packet.
    ParseError = 6,
}

impl CloseReason {
    fn from_u8(v: u8) -> Option<Self> {
        Some(match v {
            1 => Self::TransportClose,
            2 => Self::TransportError,
            3 => Self::PingTimeout,
            4 => Self::ServerClose,
            5 => Self::ClientClose,
            6 => Self::ParseError,
            _ => return None,
        })
    }
    /// The reason as the reference server words it.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::TransportClose => "transport close",
            Self::TransportError => "transport error",
            Self::PingTimeout => "ping timeout",
            Self::ServerClose => "forced close",
            Self::ClientClose => "client close",
            Self::ParseError => "parse error",
        }
    }
}

/// A frame could not be queued.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SendError {
    /// The session's outgoing queue holds `max_buffered_packets` already: the client is not
    /// reading fast enough.
    #[error("the session's outgoing queue is full")]
    Full,
    /// The session is closed.
    #[error("the session is closed")]
    Closed,
}

const POLLING: u8 = 0;
const WEBSOCKET: u8 = 1;

/// Frames waiting to be written.
#[derive(Default)]
struct Outbox {
    frames: VecDeque<Frame>,
    /// How many frames at the front go out in a write of their own (0: no mark).
    apart: usize,
}

/// Wakes the WebSocket task of a session: frames were queued, or the session closed.
///
/// One waker registered per turn of the task's loop and a flag, where a [`Notify`] would
/// take its lock twice per turn (register, deregister) and once per queued frame: this is
/// on the path of every message and of every broadcast delivery.
#[derive(Default)]
pub(crate) struct Doorbell {
    waker: AtomicWaker,
    rung: AtomicBool,
}

impl Doorbell {
    pub(crate) fn ring(&self) {
        // Only the ring that raises the flag wakes: until the task takes the flag down it
        // is scheduled already or will look at the flag after registering. A broadcast
        // burst rings each receiver many times before its task runs once.
        if !self.rung.swap(true, Ordering::AcqRel) {
            self.waker.wake();
        }
    }

    /// Forgets the registered waker: what the task queues for itself while it runs (replies
    /// to the messages it reads) must not schedule it once more; it looks at the flag on its
    /// next turn anyway.
    pub(crate) fn disarm(&self) {
        drop(self.waker.take());
    }

    /// Ready once since the last time it was ready, if [`ring`](Self::ring) was called.
    pub(crate) fn poll_rung(&self, cx: &mut Context<'_>) -> Poll<()> {
        if self.rung.swap(false, Ordering::AcqRel) {
            return Poll::Ready(());
        }
        self.waker.register(cx.waker());
        // A ring between the swap and the registration would have found no waker.
        if self.rung.swap(false, Ordering::AcqRel) {
            Poll::Ready(())
        } else {
            Poll::Pending
        }
    }
}

/// An Engine.IO session, with the handler's per-session data `D`.
pub struct Session<D> {
    id: Sid,
    /// Data the handler keeps for this session (the Socket.IO layer keeps its namespaces here).
    pub data: D,
    parts: Parts,
    issued: SystemTime,
    /// When the session was registered: the heartbeat counts from here, not from when its
    /// task first runs.
    pub(crate) started: tokio::time::Instant,
    /// While a server ping waits for its pong: when the pong is due, in milliseconds since
    /// `started` (0: none pending). Requests check it, so a timed-out session is refused at
    /// its deadline even before its task's timer has run.
    pong_due_ms: AtomicU64,
    /// The pending ping's timeout was already extended by a packet (once per ping).
    ping_refreshed: AtomicBool,
    /// When the session closes unless the handler claims it first, in milliseconds since
    /// `started` (0: no such deadline). See [`Session::close_unless_claimed`].
    claim_due_ms: AtomicU64,
    transport: AtomicU8,
    pub(crate) upgrading: AtomicBool,
    pub(crate) get_busy: AtomicBool,
    pub(crate) post_busy: AtomicBool,
    /// A heartbeat arrived over polling for the session task to account: a pong (v4) or a
    /// ping (v3).
    pub(crate) pong: AtomicBool,
    protocol: EngineProtocol,
    /// v3: the client asked for binary as base64 at the handshake (`b64=1`): what polling uses.
    polling_b64: bool,
    /// v3: the same for the WebSocket the session runs on (set from its own request).
    ws_b64: AtomicBool,
    /// A polling GET has carried the close packet to the client.
    pub(crate) close_sent: AtomicBool,
    /// An upgrade probe was answered: polling GETs are released with a noop (never queued,
    /// so it cannot reach the WebSocket) until the upgrade completes or is abandoned.
    pub(crate) probing: AtomicBool,
    close_reason: AtomicU8,
    outbox: Mutex<Outbox>,
    max_buffered: usize,
    /// Wakes the pending GET when frames are queued.
    pub(crate) outbox_ready: Notify,
    /// Wakes the WebSocket task when frames are queued or the session closes.
    pub(crate) doorbell: Doorbell,
    /// Wakes the session task: pong, close, upgrade hand-over.
    pub(crate) signal: Notify,
    /// The WebSocket an upgrade hands to the session task.
    pub(crate) handoff: Mutex<Option<super::ws::WsStream>>,
}

impl<D> std::fmt::Debug for Session<D> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Session")
            .field("id", &self.id)
            .field("transport", &self.transport())
            .field("closed", &self.close_reason())
            .finish()
    }
}

impl<D> Session<D> {
    pub(crate) fn new(
        id: Sid,
        data: D,
        parts: Parts,
        transport: TransportKind,
        max_buffered: usize,
        protocol: EngineProtocol,
        b64: bool,
    ) -> Self {
        Self {
            id,
            data,
            parts,
            issued: SystemTime::now(),
            started: tokio::time::Instant::now(),
            pong_due_ms: AtomicU64::new(0),
            ping_refreshed: AtomicBool::new(false),
            claim_due_ms: AtomicU64::new(0),
            transport: AtomicU8::new(match transport {
                TransportKind::Polling => POLLING,
                TransportKind::WebSocket => WEBSOCKET,
            }),
            upgrading: AtomicBool::new(false),
            get_busy: AtomicBool::new(false),
            post_busy: AtomicBool::new(false),
            pong: AtomicBool::new(false),
            protocol,
            polling_b64: b64,
            ws_b64: AtomicBool::new(b64),
            close_sent: AtomicBool::new(false),
            probing: AtomicBool::new(false),
            close_reason: AtomicU8::new(0),
            outbox: Mutex::new(Outbox::default()),
            max_buffered,
            outbox_ready: Notify::new(),
            doorbell: Doorbell::default(),
            signal: Notify::new(),
            handoff: Mutex::new(None),
        }
    }

    /// The session id.
    pub fn id(&self) -> Sid {
        self.id
    }

    /// The HTTP request that opened the session (method, URI, headers, extensions such as
    /// axum's `ConnectInfo`).
    pub fn request_parts(&self) -> &Parts {
        &self.parts
    }

    /// The Engine.IO protocol revision the client speaks.
    pub fn protocol(&self) -> EngineProtocol {
        self.protocol
    }

    /// v3 only: whether binary must go as base64 text over polling.
    pub(crate) fn polling_b64(&self) -> bool {
        self.polling_b64
    }

    /// v3 only: whether binary must go as base64 text over the session's WebSocket.
    pub(crate) fn ws_b64(&self) -> bool {
        self.ws_b64.load(Ordering::Acquire)
    }

    pub(crate) fn set_ws_b64(&self, b64: bool) {
        self.ws_b64.store(b64, Ordering::Release);
    }

    /// When the session was opened.
    pub fn issued(&self) -> SystemTime {
        self.issued
    }

    /// The current transport.
    pub fn transport(&self) -> TransportKind {
        match self.transport.load(Ordering::Acquire) {
            POLLING => TransportKind::Polling,
            _ => TransportKind::WebSocket,
        }
    }

    pub(crate) fn set_websocket(&self) {
        self.transport.store(WEBSOCKET, Ordering::Release);
    }

    /// Why the session closed, or `None` while it is open.
    pub fn close_reason(&self) -> Option<CloseReason> {
        CloseReason::from_u8(self.close_reason.load(Ordering::Acquire))
    }

    /// Whether the session is closed or closing.
    pub fn is_closed(&self) -> bool {
        self.close_reason.load(Ordering::Acquire) != 0
    }

    /// Queues one frame.
    pub fn send(&self, frame: Frame) -> Result<(), SendError> {
        self.send_all(std::iter::once(frame), 1)
    }

    /// Queues several frames back to back, all or none, so no other frame comes between them
    /// (a Socket.IO packet and its binary attachments). `count` is the number of frames.
    pub fn send_all(
        &self,
        frames: impl IntoIterator<Item = Frame>,
        count: usize,
    ) -> Result<(), SendError> {
        {
            let mut q = self.lock_outbox();
            if self.is_closed() {
                return Err(SendError::Closed);
            }
            if q.frames.len() + count > self.max_buffered {
                return Err(SendError::Full);
            }
            // One push per frame: `extend` takes VecDeque's general path here (~100
            // instructions for a packet and its attachment, on every broadcast delivery).
            for frame in frames {
                q.frames.push_back(frame);
            }
        }
        self.wake_writer();
        Ok(())
    }

    /// Queues a frame whatever the bound: control packets must never be lost.
    pub(crate) fn send_control(&self, frame: Frame) {
        self.lock_outbox().frames.push_back(frame);
        self.wake_writer();
    }

    /// Wakes whoever writes the queue: the WebSocket task, or a pending GET. Once on
    /// WebSocket no GET is served again (one waiting at the switch was released then).
    fn wake_writer(&self) {
        self.doorbell.ring();
        if self.transport() == TransportKind::Polling {
            self.outbox_ready.notify_one();
        }
    }

    /// Over WebSocket, the frames queued so far leave in a write of their own, and what is
    /// queued after them on a later turn of the session task. The reference's transport
    /// writes a CONNECT reply alone and the connect handler's emits a tick later; clients
    /// and test suites that take one message per read rely on it. A long-polling payload
    /// carries everything queued, as the reference's does.
    pub(crate) fn write_apart(&self) {
        let mut q = self.lock_outbox();
        q.apart = q.frames.len();
    }

    /// `at` in milliseconds since `started`, never 0 (which means "none").
    fn ms_since_start(&self, at: tokio::time::Instant) -> u64 {
        u64::try_from(at.saturating_duration_since(self.started).as_millis())
            .unwrap_or(u64::MAX)
            .max(1)
    }

    fn instant_of_ms(&self, ms: u64) -> Option<tokio::time::Instant> {
        // A deadline no instant can hold (a timeout of `Duration::MAX`) is no deadline.
        (ms != 0)
            .then(|| {
                self.started
                    .checked_add(std::time::Duration::from_millis(ms))
            })
            .flatten()
    }

    /// The session task closes the session (as [`CloseReason::ServerClose`]) `after` this
    /// call, unless [`claim`](Self::claim) is called first: the handler's deadline for a
    /// client to do something with its session. Kept by the session task's own timer, so it
    /// costs no task or timer of its own.
    pub(crate) fn close_unless_claimed(&self, after: std::time::Duration) {
        // Past any instant (`Duration::MAX`): never.
        let ms = tokio::time::Instant::now()
            .checked_add(after)
            .map_or(0, |at| self.ms_since_start(at));
        self.claim_due_ms.store(ms, Ordering::Release);
    }

    /// Cancels [`close_unless_claimed`](Self::close_unless_claimed).
    pub(crate) fn claim(&self) {
        self.claim_due_ms.store(0, Ordering::Release);
    }

    /// When the session closes unless claimed, if it does.
    pub(crate) fn claim_due(&self) -> Option<tokio::time::Instant> {
        self.instant_of_ms(self.claim_due_ms.load(Ordering::Acquire))
    }

    /// A ping was queued: the pong is due at `due`; `None` when it came.
    pub(crate) fn set_pong_due(&self, due: Option<tokio::time::Instant>) {
        let ms = due.map_or(0, |d| self.ms_since_start(d));
        self.pong_due_ms.store(ms, Ordering::Release);
    }

    /// A ping was just queued: its timeout may be extended once again.
    pub(crate) fn ping_sent(&self, due: tokio::time::Instant) {
        self.ping_refreshed.store(false, Ordering::Release);
        self.set_pong_due(Some(due));
    }

    /// A packet other than a pong arrived: while a pong is awaited, the reference gives the
    /// client a fresh `timeout` from now, once per ping. Whether it did.
    pub(crate) fn refresh_pong_due(&self, timeout: std::time::Duration) -> bool {
        if self.pong_due_ms.load(Ordering::Acquire) == 0
            || self.ping_refreshed.swap(true, Ordering::AcqRel)
        {
            return false;
        }
        self.set_pong_due(Some(tokio::time::Instant::now() + timeout));
        true
    }

    /// When the awaited pong is due, if one is.
    pub(crate) fn pong_due(&self) -> Option<tokio::time::Instant> {
        self.instant_of_ms(self.pong_due_ms.load(Ordering::Acquire))
    }

    /// Whether a ping went unanswered past its timeout.
    pub(crate) fn pong_overdue(&self) -> bool {
        let due = self.pong_due_ms.load(Ordering::Acquire);
        due != 0 && self.started.elapsed().as_millis() >= u128::from(due)
    }

    /// Number of frames waiting to be written.
    pub fn buffered(&self) -> usize {
        self.lock_outbox().frames.len()
    }

    /// Closes the session. The first reason wins; the session task then cleans up and tells
    /// the handler.
    pub fn close(&self, reason: CloseReason) {
        if self
            .close_reason
            .compare_exchange(0, reason as u8, Ordering::AcqRel, Ordering::Acquire)
            .is_ok()
        {
            tracing::debug!(sid = %self.id, reason = reason.as_str(), "engine session closing");
            // Everyone waiting (the session task, an upgrade probe, a pending GET), and a
            // permit for whoever looks next.
            self.signal.notify_waiters();
            self.signal.notify_one();
            self.outbox_ready.notify_waiters();
            self.outbox_ready.notify_one();
            self.doorbell.ring();
        }
    }

    /// Moves the queued frames into `out`: all of them, or those up to a
    /// [`write_apart`](Self::write_apart) mark. Whether frames were left behind the mark.
    pub(crate) fn drain_all(&self, out: &mut VecDeque<Frame>) -> bool {
        let mut q = self.lock_outbox();
        let apart = std::mem::take(&mut q.apart);
        if apart > 0 && apart < q.frames.len() {
            out.extend(q.frames.drain(..apart));
            return true;
        }
        if out.is_empty() {
            std::mem::swap(&mut q.frames, out);
        } else {
            out.extend(q.frames.drain(..));
        }
        false
    }

    /// Takes queued frames up to `max_bytes` of polling payload (always at least one).
    pub(crate) fn drain_polling(&self, max_bytes: usize) -> Vec<Frame> {
        let v3 = self.protocol == EngineProtocol::V3;
        let mut guard = self.lock_outbox();
        guard.apart = 0;
        let q = &mut guard.frames;
        let mut total = 0;
        let mut out = Vec::new();
        while let Some(f) = q.front() {
            let len = if v3 {
                super::v3::polling_len(f)
            } else {
                f.polling_len() + usize::from(!out.is_empty())
            };
            if !out.is_empty() && total + len > max_bytes {
                break;
            }
            total += len;
            if let Some(f) = q.pop_front() {
                out.push(f);
            }
        }
        if q.is_empty() && q.capacity() > 64 {
            q.shrink_to(0);
        }
        out
    }

    fn lock_outbox(&self) -> std::sync::MutexGuard<'_, Outbox> {
        // A poisoned queue only means a panic elsewhere; the data is still a valid queue.
        self.outbox.lock().unwrap_or_else(|e| e.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::sync::atomic::AtomicUsize;
    use std::task::{Wake, Waker};
    use std::time::Duration;

    struct CountingWaker(AtomicUsize);

    impl Wake for CountingWaker {
        fn wake(self: Arc<Self>) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }

    #[test]
    fn doorbell_wakes_once_per_turn_and_never_loses_a_ring() {
        let bell = Doorbell::default();
        let count = Arc::new(CountingWaker(AtomicUsize::new(0)));
        let waker = Waker::from(count.clone());
        let mut cx = Context::from_waker(&waker);
        let wakes = || count.0.load(Ordering::SeqCst);

        assert!(bell.poll_rung(&mut cx).is_pending());
        // A burst: the first ring wakes, the rest find the flag up.
        for _ in 0..5 {
            bell.ring();
        }
        assert_eq!(wakes(), 1);
        assert!(bell.poll_rung(&mut cx).is_ready());
        assert!(bell.poll_rung(&mut cx).is_pending());

        // Rings while the task runs disarmed wake nobody, and its next look finds them.
        bell.disarm();
        bell.ring();
        bell.ring();
        assert_eq!(wakes(), 1);
        assert!(bell.poll_rung(&mut cx).is_ready());

        // Registered again: the next burst wakes once more.
        assert!(bell.poll_rung(&mut cx).is_pending());
        bell.ring();
        bell.ring();
        assert_eq!(wakes(), 2);
    }

    fn session() -> Session<()> {
        let (parts, ()) = http::Request::new(()).into_parts();
        Session::new(
            Sid::new(),
            (),
            parts,
            TransportKind::WebSocket,
            16,
            EngineProtocol::V4,
            false,
        )
    }

    /// A claim deadline too far to represent (`connect_timeout(Duration::MAX)`, "never") is
    /// no deadline, not a panic on every connection.
    #[test]
    fn a_claim_deadline_beyond_any_instant_is_none() {
        let s = session();
        s.close_unless_claimed(Duration::MAX);
        assert_eq!(s.claim_due(), None);
        s.close_unless_claimed(Duration::from_secs(45));
        let due = s.claim_due().expect("a deadline");
        assert!(due > tokio::time::Instant::now() + Duration::from_secs(44));
        s.claim();
        assert_eq!(s.claim_due(), None);
    }
}
