//! The engine: its sessions, request routing and each session's task.

use std::sync::{Arc, Mutex};

use bytes::Bytes;
use http::{Method, Request, Response, header};
use http_body::Body;
use http_body_util::Full;
use tokio::time::{Instant, sleep_until};

use super::packet::PING;
use super::ws::WsStream;
use super::{
    CloseReason, EngineConfig, EngineError, EngineHandler, EngineProtocol, Session, Sid, SidMap,
    TransportKind, polling, ws,
};

/// What a request asks for, read from its query string.
#[derive(Debug, Default)]
pub(crate) struct Query<'a> {
    pub eio: Option<&'a str>,
    pub transport: Option<&'a str>,
    pub sid: Option<&'a str>,
    /// v3: the client wants binary as base64 text.
    pub b64: Option<&'a str>,
}

impl<'a> Query<'a> {
    pub(crate) fn parse(q: Option<&'a str>) -> Self {
        let mut out = Query::default();
        for pair in q.unwrap_or("").split('&') {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            match k {
                "EIO" => out.eio = Some(v),
                "transport" => out.transport = Some(v),
                "sid" => out.sid = Some(v),
                "b64" => out.b64 = Some(v),
                _ => {}
            }
        }
        out
    }

    /// Whether `b64` is set (the reference server tests it for truthiness).
    pub(crate) fn b64(&self) -> bool {
        self.b64.is_some_and(|v| !v.is_empty())
    }
}

/// An Engine.IO server: the sessions it holds and the handler it reports to.
///
/// Share it as `Arc<Engine<H>>`; [`EngineLayer`](super::EngineLayer) mounts it in a tower stack.
pub struct Engine<H: EngineHandler> {
    config: EngineConfig,
    handler: H,
    sessions: Mutex<SidMap<Arc<Session<H::Data>>>>,
    /// The open packet after the sid, for a session that may upgrade and for one that may
    /// not: the same for every session, so written once.
    open_tails: [String; 2],
    /// Set by [`close_all`](Self::close_all): handshakes are refused from then on.
    closing: std::sync::atomic::AtomicBool,
}

impl<H: EngineHandler> std::fmt::Debug for Engine<H> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Engine")
            .field("config", &self.config)
            .field("sessions", &self.session_count())
            .finish()
    }
}

impl<H: EngineHandler> Engine<H> {
    /// A new engine reporting to `handler`.
    pub fn new(handler: H, config: EngineConfig) -> Arc<Self> {
        let open_tails = [false, true].map(|upgradable| open_tail(&config, upgradable));
        Arc::new(Self {
            config,
            handler,
            sessions: Mutex::new(SidMap::default()),
            open_tails,
            closing: std::sync::atomic::AtomicBool::new(false),
        })
    }

    /// The settings in force.
    pub fn config(&self) -> &EngineConfig {
        &self.config
    }

    /// The handler.
    pub fn handler(&self) -> &H {
        &self.handler
    }

    /// The open session with this id.
    pub fn session(&self, sid: Sid) -> Option<Arc<Session<H::Data>>> {
        self.lock().get(&sid).cloned()
    }

    /// Number of open sessions.
    pub fn session_count(&self) -> usize {
        self.lock().len()
    }

    /// Shuts the engine down, as the reference's `engine.close()`: refuses handshakes from
    /// now on ([`EngineError::ShuttingDown`]) and closes every session with
    /// [`CloseReason::ServerClose`]. A WebSocket gets its closing handshake and a waiting
    /// long-poll GET the close packet; a polling session with no GET waiting is forgotten
    /// at once (its next request gets `Session ID unknown`) instead of being kept for the
    /// close packet. Either way the client sees a lost transport and reconnects.
    pub fn close_all(&self) {
        self.closing
            .store(true, std::sync::atomic::Ordering::Release);
        let all: Vec<_> = self.lock().values().cloned().collect();
        for s in all {
            if s.transport() == TransportKind::Polling
                && !s.get_busy.load(std::sync::atomic::Ordering::Acquire)
            {
                // Nothing is owed: no GET will carry a close packet.
                s.close_sent
                    .store(true, std::sync::atomic::Ordering::Release);
            }
            s.close(CloseReason::ServerClose);
            self.forget_if_closed(&s);
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, SidMap<Arc<Session<H::Data>>>> {
        self.sessions.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Removes a closed polling session from the map at once, instead of when its task next
    /// runs, unless it still owes the client the close packet (a server close).
    fn forget_if_closed(&self, session: &Arc<Session<H::Data>>) {
        let Some(reason) = session.close_reason() else {
            return;
        };
        let owed = reason == CloseReason::ServerClose
            && !session
                .close_sent
                .load(std::sync::atomic::Ordering::Acquire);
        if owed {
            return;
        }
        let mut map = self.lock();
        if map
            .get(&session.id())
            .is_some_and(|s| Arc::ptr_eq(s, session))
        {
            map.remove(&session.id());
        }
    }

    /// Whether `path` is one this engine answers.
    pub(crate) fn matches(&self, path: &str) -> bool {
        let base = self.config.path.as_str();
        match path.strip_prefix(base) {
            Some(rest) => rest.is_empty() || rest.starts_with('/') || base.ends_with('/'),
            None => false,
        }
    }

    /// Answers one Engine.IO HTTP request.
    pub(crate) async fn handle<B>(self: Arc<Self>, req: Request<B>) -> Response<Full<Bytes>>
    where
        B: Body + Send + 'static,
        B::Data: Send,
        B::Error: std::fmt::Display,
    {
        let upgrade = ws::is_upgrade_request(&req);
        match self.route(req).await {
            Ok(res) => res,
            Err(e) => {
                tracing::debug!(error = %e, "engine.io request refused");
                if upgrade {
                    e.into_upgrade_response()
                } else {
                    e.into_response()
                }
            }
        }
    }

    async fn route<B>(
        self: &Arc<Self>,
        req: Request<B>,
    ) -> Result<Response<Full<Bytes>>, EngineError>
    where
        B: Body + Send + 'static,
        B::Data: Send,
        B::Error: std::fmt::Display,
    {
        let q = Query::parse(req.uri().query());
        let transport = match q.transport {
            Some("polling") if self.config.transports.polling => TransportKind::Polling,
            Some("websocket") if self.config.transports.websocket => TransportKind::WebSocket,
            _ => return Err(EngineError::TransportUnknown),
        };
        let upgrade = ws::is_upgrade_request(&req);
        let Some(sid) = q.sid else {
            if req.method() != Method::GET {
                return Err(EngineError::BadHandshakeMethod);
            }
            let protocol = match q.eio {
                Some("4") => EngineProtocol::V4,
                Some("3") if self.config.allow_eio3 => EngineProtocol::V3,
                _ => return Err(EngineError::UnsupportedProtocolVersion),
            };
            let b64 = q.b64();
            if transport == TransportKind::WebSocket && !upgrade {
                return Err(EngineError::BadRequest);
            }
            if self.closing.load(std::sync::atomic::Ordering::Acquire) {
                return Err(EngineError::ShuttingDown);
            }
            self.check_allowed(&req)?;
            return match transport {
                TransportKind::Polling => Ok(self.open_polling(req, protocol, b64)),
                TransportKind::WebSocket => {
                    ws::accept(req, self.clone(), ws::Accepted::Open { protocol, b64 })
                }
            };
        };
        let session = Sid::parse(sid)
            .and_then(|sid| self.session(sid))
            .inspect(|s| {
                if s.pong_overdue() {
                    s.close(CloseReason::PingTimeout);
                }
            })
            // A session closed for any reason but the server's (which still owes the client
            // its close packet) is gone, even if its task has not removed it yet.
            .filter(|s| {
                s.close_reason()
                    .is_none_or(|r| r == CloseReason::ServerClose)
            })
            .ok_or(EngineError::UnknownSid)?;
        match transport {
            TransportKind::WebSocket if upgrade => {
                self.check_allowed(&req)?;
                let upgradable = self.config.allow_upgrades
                    && session.transport() == TransportKind::Polling
                    && !session.is_closed()
                    && !session
                        .upgrading
                        .swap(true, std::sync::atomic::Ordering::AcqRel);
                if upgradable {
                    let b64 = q.b64();
                    ws::accept(req, self.clone(), ws::Accepted::Upgrade(session, b64))
                } else {
                    // The reference server completes the handshake and then closes: some
                    // clients treat a plain 400 here as fatal for the whole session.
                    tracing::debug!(sid = %session.id(), "refusing a second WebSocket for a session");
                    ws::accept(req, self.clone(), ws::Accepted::Refuse)
                }
            }
            TransportKind::Polling if session.transport() == TransportKind::Polling => {
                let res = match *req.method() {
                    Method::GET => {
                        let encoding = polling::accepted_encoding(req.headers());
                        Ok(polling::get(&self.config, session.clone(), encoding).await)
                    }
                    Method::POST => polling::post(self, session.clone(), req).await,
                    _ => Err(EngineError::BadRequest),
                };
                // Before the answer leaves: a request that follows it must not find a
                // session this one closed.
                self.forget_if_closed(&session);
                res
            }
            _ => Err(EngineError::BadRequest),
        }
    }

    fn check_allowed<B>(&self, req: &Request<B>) -> Result<(), EngineError> {
        let Some(hook) = &self.config.allow_request else {
            return Ok(());
        };
        // The hook takes `Parts`; rebuild a body-less view of the request for it.
        let mut view = Request::new(());
        *view.method_mut() = req.method().clone();
        *view.uri_mut() = req.uri().clone();
        *view.version_mut() = req.version();
        *view.headers_mut() = req.headers().clone();
        let (parts, ()) = view.into_parts();
        hook(&parts).map_err(EngineError::Forbidden)
    }

    fn open_polling<B>(
        self: &Arc<Self>,
        req: Request<B>,
        protocol: EngineProtocol,
        b64: bool,
    ) -> Response<Full<Bytes>> {
        let (parts, _body) = req.into_parts();
        let session = self.register(parts, TransportKind::Polling, protocol, b64);
        let open = self.open_packet(session.id(), true);
        tokio::spawn(self.clone().run_session(session.clone(), None));
        self.handler.on_open(&session);
        let body = match protocol {
            EngineProtocol::V4 => Bytes::from(open),
            EngineProtocol::V3 => {
                let mut out = bytes::BytesMut::new();
                super::v3::write_text_payload(
                    &[super::Frame::Text(super::Str::from(open))],
                    &mut out,
                );
                out.freeze()
            }
        };
        polling::text_response(body)
    }

    pub(crate) fn register(
        &self,
        parts: http::request::Parts,
        transport: TransportKind,
        protocol: EngineProtocol,
        b64: bool,
    ) -> Arc<Session<H::Data>> {
        let session = Arc::new(Session::new(
            Sid::new(),
            H::Data::default(),
            owned_parts(parts),
            transport,
            self.config.max_buffered_packets,
            protocol,
            b64,
        ));
        self.lock().insert(session.id(), session.clone());
        tracing::debug!(sid = %session.id(), transport = transport.as_str(), ?protocol, "engine session opened");
        session
    }

    /// The open packet (v3 as v4: the reference sends `maxPayload` to both). Only a polling
    /// session may upgrade.
    pub(crate) fn open_packet(&self, sid: Sid, polling: bool) -> String {
        let upgradable = polling && self.config.allow_upgrades && self.config.transports.websocket;
        let tail = &self.open_tails[usize::from(upgradable)];
        // The sid is URL-safe base64: nothing in it to escape.
        let mut out = String::with_capacity(10 + sid.as_str().len() + tail.len());
        out.push_str("0{\"sid\":\"");
        out.push_str(sid.as_str());
        out.push('"');
        out.push_str(tail);
        out
    }

    /// The session's task: heartbeat while polling, all I/O once on WebSocket, and clean-up.
    pub(crate) async fn run_session(
        self: Arc<Self>,
        session: Arc<Session<H::Data>>,
        mut socket: Option<WsStream>,
    ) {
        let mut hb = Heartbeat::new(&self.config, session.protocol(), session.started);
        let reason = loop {
            if let Some(stream) = socket.take() {
                break ws::run(&self, &session, stream, &mut hb).await;
            }
            match idle_polling(&session, &mut hb).await {
                Ok(stream) => socket = Some(stream),
                Err(reason) => break reason,
            }
        };
        session.close(reason);
        if reason == CloseReason::ServerClose && session.transport() == TransportKind::Polling {
            // As the reference server does: keep the session until a GET has carried what
            // was queued and the close packet, so the client learns it was closed on purpose.
            let deadline = Instant::now() + self.config.ping_interval + self.config.ping_timeout;
            while !session
                .close_sent
                .load(std::sync::atomic::Ordering::Acquire)
            {
                let signal = session.signal.notified();
                if session
                    .close_sent
                    .load(std::sync::atomic::Ordering::Acquire)
                {
                    break;
                }
                if tokio::time::timeout_at(deadline, signal).await.is_err() {
                    break;
                }
            }
        }
        self.lock().remove(&session.id());
        let reason = session.close_reason().unwrap_or(reason);
        tracing::debug!(sid = %session.id(), reason = reason.as_str(), "engine session closed");
        self.handler.on_close(&session, reason);
    }
}

/// The open packet's fields after the sid, closing brace included.
fn open_tail(config: &EngineConfig, upgradable: bool) -> String {
    #[derive(serde::Serialize)]
    #[serde(rename_all = "camelCase")]
    struct Tail<'a> {
        upgrades: &'a [&'a str],
        ping_interval: u128,
        ping_timeout: u128,
        max_payload: usize,
    }
    let tail = Tail {
        upgrades: if upgradable { &["websocket"] } else { &[] },
        ping_interval: config.ping_interval.as_millis(),
        ping_timeout: config.ping_timeout.as_millis(),
        max_payload: config.max_payload,
    };
    let json = serde_json::to_string(&tail).expect("open packet serializes"); // ok: plain struct
    // `{"upgrades":...}` -> `,"upgrades":...}`
    format!(",{}", &json[1..])
}

/// The request parts with their header values and URI copied out of the connection's
/// read buffer: hyper hands them out as slices of it, and one kept header would keep the
/// whole buffer (kilobytes) alive for the session's life. Header names are copies already
/// (hyper parses them into static or owned names), so they move over as they are.
fn owned_parts(mut parts: http::request::Parts) -> http::request::Parts {
    let mut headers = http::HeaderMap::with_capacity(parts.headers.len());
    let mut last = None;
    for (name, value) in std::mem::take(&mut parts.headers) {
        // `None`: another value of the header before it.
        last = name.or(last);
        let (Some(name), Ok(mut v)) = (&last, http::HeaderValue::from_bytes(value.as_bytes()))
        else {
            continue;
        };
        v.set_sensitive(value.is_sensitive());
        headers.append(name, v);
    }
    parts.headers = headers;
    // The usual origin form (`/socket.io/?EIO=4...`) is copied as it is; anything else goes
    // through its text.
    let uri = match (parts.uri.scheme(), parts.uri.path_and_query()) {
        (None, Some(pq)) => http::Uri::try_from(pq.as_str()),
        _ => parts.uri.to_string().parse(),
    };
    if let Ok(uri) = uri {
        parts.uri = uri;
    }
    // Extensions may hold slices of the buffer too (hyper's header-case map, ...): keep
    // only the client address.
    let address = parts
        .extensions
        .get::<axum::extract::ConnectInfo<std::net::SocketAddr>>()
        .copied();
    parts.extensions = http::Extensions::new();
    if let Some(address) = address {
        parts.extensions.insert(address);
    }
    parts
}

/// Waits on a polling session until it closes or a WebSocket upgrade is handed over.
async fn idle_polling<D>(
    session: &Session<D>,
    hb: &mut Heartbeat,
) -> Result<WsStream, CloseReason> {
    loop {
        let signal = session.signal.notified();
        if let Some(r) = session.close_reason() {
            return Err(r);
        }
        if let Some(stream) = session
            .handoff
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take()
        {
            return Ok(stream);
        }
        if session
            .pong
            .swap(false, std::sync::atomic::Ordering::AcqRel)
        {
            hb.on_pong(session);
        }
        hb.sync(session);
        tokio::select! {
            _ = signal => {}
            _ = sleep_until(hb.due(session)) => hb.on_timer(session)?,
        }
    }
}

/// The heartbeat of a session.
///
/// v4, server-initiated: a ping every `ping_interval`, the first one an interval after the
/// handshake, and a close when no pong comes within `ping_timeout` of a ping being queued.
///
/// v3, client-initiated: the client pings every `ping_interval` and the server answers each
/// ping with a pong (where the ping is read); the session closes when no ping comes within
/// `ping_interval + ping_timeout` of the handshake or of the last ping.
#[derive(Debug)]
pub(crate) struct Heartbeat {
    pub deadline: Instant,
    awaiting_pong: bool,
    client_pings: bool,
    interval: std::time::Duration,
    timeout: std::time::Duration,
}

impl Heartbeat {
    fn new(config: &EngineConfig, protocol: EngineProtocol, start: Instant) -> Self {
        let client_pings = protocol == EngineProtocol::V3;
        let first = if client_pings {
            config.ping_interval + config.ping_timeout
        } else {
            config.ping_interval
        };
        Self {
            deadline: start + first,
            awaiting_pong: false,
            client_pings,
            interval: config.ping_interval,
            timeout: config.ping_timeout,
        }
    }

    /// The client's side of the heartbeat arrived: a pong (v4) or a ping (v3).
    pub(crate) fn on_pong<D>(&mut self, session: &Session<D>) {
        session.set_pong_due(None);
        if self.client_pings {
            self.deadline = Instant::now() + self.interval + self.timeout;
        } else if self.awaiting_pong {
            self.awaiting_pong = false;
            self.deadline = Instant::now() + self.interval;
        }
    }

    /// Takes up a pong deadline a packet extended (see [`Session::refresh_pong_due`]).
    pub(crate) fn sync<D>(&mut self, session: &Session<D>) {
        if self.awaiting_pong {
            if let Some(due) = session.pong_due() {
                self.deadline = self.deadline.max(due);
            }
        }
    }

    /// A packet other than a pong arrived (v4): a pending ping's timeout starts again, once.
    pub(crate) fn on_packet<D>(&mut self, session: &Session<D>) {
        if !self.client_pings && session.refresh_pong_due(self.timeout) {
            self.sync(session);
        }
    }

    /// When the session's timer must fire next: the heartbeat's deadline, or the session's
    /// claim deadline ([`Session::close_unless_claimed`]) when that comes first.
    pub(crate) fn due<D>(&self, session: &Session<D>) -> Instant {
        session
            .claim_due()
            .map_or(self.deadline, |claim| claim.min(self.deadline))
    }

    /// The timer fired: close an unclaimed session whose claim deadline passed; at the
    /// heartbeat's deadline, ping, or give up if the last ping went unanswered.
    pub(crate) fn on_timer<D>(&mut self, session: &Session<D>) -> Result<(), CloseReason> {
        let now = Instant::now();
        if session.claim_due().is_some_and(|due| due <= now) {
            tracing::debug!(sid = %session.id(), "session not claimed in time");
            session.claim();
            session.close(CloseReason::ServerClose);
            return Ok(());
        }
        if now < self.deadline {
            // A claim deadline that was cancelled after the timer was set.
            return Ok(());
        }
        if self.awaiting_pong || self.client_pings {
            return Err(CloseReason::PingTimeout);
        }
        session.send_control(PING);
        self.awaiting_pong = true;
        // From when the ping was due, not from when this timer got to run: no grace.
        self.deadline += self.timeout;
        session.ping_sent(self.deadline);
        Ok(())
    }
}

pub(crate) fn header_has_token(value: Option<&header::HeaderValue>, token: &str) -> bool {
    value
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|t| t.trim().eq_ignore_ascii_case(token)))
}

#[cfg(test)]
mod tests {
    use super::owned_parts;
    use bytes::Bytes;

    /// What a session keeps of its request must not point into the connection's read buffer
    /// (here `buf`, as hyper hands out slices of it), and must still say the same.
    #[test]
    fn owned_parts_copy_values_and_uri_out_of_the_read_buffer() {
        let buf = Bytes::from_static(b"/socket.io/?EIO=4&transport=websocket|a|b|secret|x-y");
        let slice = |r: std::ops::Range<usize>| buf.slice(r);
        let inside = |s: &[u8]| buf.as_ptr_range().contains(&s.as_ptr());
        let value = |r| http::HeaderValue::from_maybe_shared(slice(r)).expect("valid value");
        let mut secret = value(42..48);
        secret.set_sensitive(true);
        let (mut parts, ()) = http::Request::builder()
            .uri(http::Uri::from_maybe_shared(slice(0..37)).expect("valid uri"))
            .body(())
            .expect("valid request")
            .into_parts();
        parts.headers.append("x-multi", value(38..39));
        parts.headers.append("x-multi", value(40..41));
        parts.headers.append(http::header::COOKIE, secret);
        assert!(inside(parts.uri.path().as_bytes()));

        let owned = owned_parts(parts);
        assert_eq!(owned.uri, "/socket.io/?EIO=4&transport=websocket");
        assert!(!inside(owned.uri.path().as_bytes()));
        let multi: Vec<_> = owned.headers.get_all("x-multi").iter().collect();
        assert_eq!(multi, ["a", "b"]);
        assert!(multi.iter().all(|v| !inside(v.as_bytes())));
        let cookie = &owned.headers[http::header::COOKIE];
        assert_eq!(cookie, "secret");
        assert!(cookie.is_sensitive());
        assert!(!inside(cookie.as_bytes()));
    }
}
