//! A socket: one client's connection to one namespace.

mod dispatch;
mod emit;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, SystemTime};

use serde::Serialize;
use serde::de::DeserializeOwned;
use tokio::sync::oneshot;

use crate::ack::AckFuture;
use crate::adapter::{PersistedSession, Room};
use crate::client::Client;
use crate::engine::{CloseReason, Session, Sid, Str, TransportKind};
use crate::errors::{DisconnectReason, EmitError};
use crate::extensions::Extensions;
use crate::extract::{Context, Kind};
use crate::handler::{BoxedHandler, Handler, boxed, run_or_spawn};
use crate::middleware::{EventMiddleware, EventRejection, IncomingEvent};
use crate::ns::Namespace;
use crate::operators::{BroadcastOperators, IntoRooms};
use crate::parser::{Args, Parser};

/// Observer of a socket's incoming or outgoing events: sees the event name and its data.
type AnyObserver = Arc<dyn Fn(&str, &serde_json::Value) + Send + Sync>;

/// One client's membership of one namespace, with its handlers, rooms and data.
///
/// Handlers get it as [`SocketRef`]; it is also reachable from the server handle.
pub struct Socket {
    id: Sid,
    ns: Arc<Namespace>,
    pub(crate) session: Arc<Session<Client>>,
    auth: Option<Str>,
    /// The private id a client presents to recover this socket (connection state recovery).
    pid: Option<Sid>,
    recovered: bool,
    connected: AtomicBool,
    handlers: RwLock<Handlers>,
    acks: Mutex<HashMap<u64, oneshot::Sender<Args>>>,
    extensions: Extensions,
}

#[derive(Default)]
struct Handlers {
    /// By event name. A list, not a map: a socket has a handful of handlers, and comparing
    /// a few names costs less than hashing one (this is looked up for every event, and
    /// filled on every connection).
    events: Vec<(Box<str>, BoxedHandler)>,
    fallback: Option<BoxedHandler>,
    disconnect: Option<BoxedHandler>,
    disconnecting: Option<BoxedHandler>,
    any_incoming: Vec<AnyObserver>,
    any_outgoing: Vec<AnyObserver>,
    middlewares: Vec<EventMiddleware>,
}

impl std::fmt::Debug for Socket {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Socket")
            .field("id", &self.id)
            .field("ns", &self.ns.path())
            .field("connected", &self.connected())
            .finish()
    }
}

/// A handle to a [`Socket`], the extractor handlers use to reach their socket.
#[derive(Debug, Clone)]
pub struct SocketRef(pub(crate) Arc<Socket>);

impl std::ops::Deref for SocketRef {
    type Target = Arc<Socket>;
    fn deref(&self) -> &Arc<Socket> {
        &self.0
    }
}

impl crate::extract::FromContext for SocketRef {
    fn from_context(cx: &Context<'_>) -> Result<Self, crate::extract::ExtractError> {
        Ok(SocketRef(cx.socket.clone()))
    }
}

/// Per-socket data that other servers of a cluster can read (Node's `socket.data`): keep it
/// in the socket's [`extensions`](Socket::extensions); `fetch_sockets` carries it. A socket
/// without one shows `{}`, as Node's `socket.data` starts; so does `SocketData::default()`.
#[derive(Debug, Clone, PartialEq)]
pub struct SocketData(pub serde_json::Value);

impl Default for SocketData {
    fn default() -> Self {
        SocketData(serde_json::Value::Object(serde_json::Map::new()))
    }
}

fn httpdate(t: SystemTime) -> String {
    let secs = t
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    format!("{secs}")
}

/// What the client presented when it connected.
#[derive(Debug, Clone)]
pub struct Handshake {
    /// Request headers of the Engine.IO handshake.
    pub headers: http::HeaderMap,
    /// The handshake URL (path and query).
    pub url: http::Uri,
    /// Query parameters of the handshake URL, in order, as they appear (not
    /// percent-decoded).
    pub query: Vec<(String, String)>,
    /// The auth payload of the namespace CONNECT, as JSON text.
    pub auth: Option<String>,
    /// The client's address, when the server was started with connect info
    /// (`into_make_service_with_connect_info::<SocketAddr>()`).
    pub address: Option<SocketAddr>,
    /// When the Engine.IO session opened.
    pub issued: SystemTime,
    /// The transport at the time of the call.
    pub transport: TransportKind,
}

impl Socket {
    pub(crate) fn new(
        ns: Arc<Namespace>,
        session: Arc<Session<Client>>,
        auth: Option<Str>,
        restored: Option<&mut PersistedSession>,
    ) -> Self {
        let recovery = ns.shared().config.recovery.is_some();
        let (id, pid, extensions, recovered) = match restored {
            Some(r) => (r.sid, Some(r.pid), r.data.take(), true),
            None => (
                Sid::new(),
                recovery.then(Sid::new),
                Extensions::new(),
                false,
            ),
        };
        Self {
            id,
            ns,
            session,
            auth,
            pid,
            recovered,
            connected: AtomicBool::new(false),
            handlers: RwLock::new(Handlers::default()),
            acks: Mutex::new(HashMap::new()),
            extensions,
        }
    }

    /// Whether this socket was recovered: same id, rooms and data as before a short
    /// disconnection, with the broadcasts it missed delivered (connection state recovery).
    pub fn recovered(&self) -> bool {
        self.recovered
    }

    pub(crate) fn pid(&self) -> Option<Sid> {
        self.pid
    }

    /// The socket id (distinct from the Engine.IO session id, as in the reference server).
    pub fn id(&self) -> Sid {
        self.id
    }

    /// The namespace path.
    pub fn ns(&self) -> &str {
        self.ns.path()
    }

    /// Whether the socket is still connected to its namespace.
    pub fn connected(&self) -> bool {
        self.connected.load(Ordering::Acquire)
    }

    /// The socket's own typed data store.
    pub fn extensions(&self) -> &Extensions {
        &self.extensions
    }

    /// The auth payload the client sent with CONNECT, as JSON text.
    pub fn auth(&self) -> Option<&str> {
        self.auth.as_ref().map(|a| a.as_str())
    }

    pub(crate) fn auth_raw(&self) -> Option<&Str> {
        self.auth.as_ref()
    }

    /// The Engine.IO session id under this socket.
    pub fn engine_id(&self) -> Sid {
        self.session.id()
    }

    /// The current transport.
    pub fn transport(&self) -> TransportKind {
        self.session.transport()
    }

    /// The HTTP request parts of the Engine.IO handshake.
    pub fn req_parts(&self) -> &http::request::Parts {
        self.session.request_parts()
    }

    /// The handshake details.
    pub fn handshake(&self) -> Handshake {
        let parts = self.session.request_parts();
        let query = parts
            .uri
            .query()
            .unwrap_or("")
            .split('&')
            .filter(|p| !p.is_empty())
            .map(|p| {
                let (k, v) = p.split_once('=').unwrap_or((p, ""));
                (k.to_owned(), v.to_owned())
            })
            .collect();
        Handshake {
            headers: parts.headers.clone(),
            url: parts.uri.clone(),
            query,
            auth: self.auth().map(str::to_owned),
            address: parts
                .extensions
                .get::<axum::extract::ConnectInfo<SocketAddr>>()
                .map(|c| c.0),
            issued: self.session.issued(),
            transport: self.transport(),
        }
    }

    /// How the cluster sees this socket (for `fetch_sockets`).
    pub(crate) fn info(&self) -> crate::adapter::SocketInfo {
        let h = self.handshake();
        let headers: serde_json::Map<String, serde_json::Value> = h
            .headers
            .iter()
            .filter_map(|(k, v)| Some((k.as_str().to_owned(), v.to_str().ok()?.into())))
            .collect();
        let query: serde_json::Map<String, serde_json::Value> = h
            .query
            .iter()
            .map(|(k, v)| (k.clone(), v.clone().into()))
            .collect();
        let issued = h
            .issued
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as u64);
        let auth = h
            .auth
            .as_deref()
            .and_then(|a| serde_json::from_str(a).ok())
            .unwrap_or_else(|| serde_json::json!({}));
        let own = self.id.as_str().to_owned();
        let mut rooms: Vec<String> = vec![own.clone()];
        rooms.extend(
            self.rooms()
                .into_iter()
                .map(|r| r.into_owned())
                .filter(|r| *r != own),
        );
        crate::adapter::SocketInfo {
            id: own,
            rooms,
            ns: self.ns().to_owned(),
            handshake: serde_json::json!({
                "headers": headers,
                "time": httpdate(h.issued),
                "address": h.address.map(|a| a.ip().to_string()),
                "xdomain": h.headers.contains_key(http::header::ORIGIN),
                "secure": false,
                "issued": issued,
                "url": h.url.to_string(),
                "query": query,
                "auth": auth,
            }),
            data: {
                let data = self.extensions.get::<SocketData>().unwrap_or_default().0;
                match self.ns.instrument() {
                    Some(i) => i.shared_data(self, data),
                    None => data,
                }
            },
        }
    }

    pub(crate) fn parser(&self) -> Parser {
        self.ns.shared().config.parser
    }

    pub(crate) fn namespace(&self) -> &Arc<Namespace> {
        &self.ns
    }

    fn handlers_mut(&self) -> std::sync::RwLockWriteGuard<'_, Handlers> {
        self.handlers.write().unwrap_or_else(|e| e.into_inner())
    }

    fn handlers(&self) -> std::sync::RwLockReadGuard<'_, Handlers> {
        self.handlers.read().unwrap_or_else(|e| e.into_inner())
    }

    /// Registers the handler of an event, replacing any previous one.
    pub fn on<H: Handler<M>, M>(&self, event: impl Into<String>, handler: H) {
        let event: String = event.into();
        let handler = boxed(handler);
        let mut h = self.handlers_mut();
        match h.events.iter_mut().find(|(name, _)| **name == *event) {
            Some((_, old)) => *old = handler,
            None => h.events.push((event.into_boxed_str(), handler)),
        }
    }

    /// Removes the handler of an event.
    pub fn off(&self, event: &str) {
        self.handlers_mut()
            .events
            .retain(|(name, _)| **name != *event);
    }

    /// Registers a catch-all handler for events that have no handler of their own
    /// (use the [`Event`](crate::extract::Event) extractor for the name).
    pub fn on_fallback<H: Handler<M>, M>(&self, handler: H) {
        self.handlers_mut().fallback = Some(boxed(handler));
    }

    /// Registers the handler called once the socket has left its namespace (extract the
    /// [`DisconnectReason`]).
    pub fn on_disconnect<H: Handler<M>, M>(&self, handler: H) {
        self.handlers_mut().disconnect = Some(boxed(handler));
    }

    /// Registers the handler called as the socket is leaving, while its rooms are still
    /// readable.
    pub fn on_disconnecting<H: Handler<M>, M>(&self, handler: H) {
        self.handlers_mut().disconnecting = Some(boxed(handler));
    }

    /// Adds an event middleware (Node's `socket.use`): it sees each incoming event before
    /// its handler, after the middlewares added before it, and returns it (possibly changed)
    /// or refuses it. While middlewares run, the socket's later packets wait, so events keep
    /// their order.
    pub fn use_middleware<F, Fut>(&self, f: F)
    where
        F: Fn(IncomingEvent) -> Fut + Send + Sync + 'static,
        Fut: std::future::Future<Output = Result<IncomingEvent, EventRejection>> + Send + 'static,
    {
        self.handlers_mut()
            .middlewares
            .push(crate::middleware::boxed(f));
    }

    /// Observes every incoming event that passed the event middlewares, before its handler
    /// runs (also when it has none): its name, and its data as `Data<serde_json::Value>`
    /// would see it (binary attachments as their placeholders).
    pub fn on_any<F: Fn(&str, &serde_json::Value) + Send + Sync + 'static>(&self, f: F) {
        self.handlers_mut().any_incoming.push(Arc::new(f));
    }

    /// Observes every event emitted through this socket's own `emit*` methods (name, and
    /// the data as serialized to JSON); broadcasts that reach this socket are not seen.
    pub fn on_any_outgoing<F: Fn(&str, &serde_json::Value) + Send + Sync + 'static>(&self, f: F) {
        self.handlers_mut().any_outgoing.push(Arc::new(f));
    }

    /// Emits an event with one argument (any `Serialize`; [`Binary`](crate::Binary) values
    /// inside become attachments).
    ///
    /// With connection state recovery on, the emit is a broadcast to the socket's own room,
    /// as in the reference server: it carries an offset and is kept for replay, and a client
    /// whose queue is full is disconnected (recoverably, so it gets the packet back on
    /// reconnection) instead of the call failing with [`EmitError::Send`].
    pub fn emit<T: Serialize + ?Sized>(&self, event: &str, data: &T) -> Result<(), EmitError> {
        self.emit_inner(event, data, false)
    }

    /// Emits an event with several arguments: `data` must serialize to an array (a tuple),
    /// whose elements become the arguments. `&()` sends none.
    pub fn emit_args<T: Serialize + ?Sized>(&self, event: &str, data: &T) -> Result<(), EmitError> {
        self.emit_inner(event, data, true)
    }

    /// Emits an event with an ack and waits for the client's answer, within the configured
    /// `ack_timeout`. Both sides are argument lists, as with [`emit_args`](Self::emit_args):
    /// `args` serializes to an array whose elements become the arguments (`&(a, b)`, `&(a,)`
    /// for one, `&()` for none); the answer `R` is the list the client's callback was called
    /// with (`(String,)`, `(u32, bool)`, `Vec<Value>`, ...), so `cb(1, 2)` and `cb([1, 2])`
    /// stay apart.
    ///
    /// ```no_run
    /// # async fn f(socket: tower_socketio::SocketRef) -> Result<(), tower_socketio::AckError> {
    /// let (answer,): (String,) = socket.emit_with_ack("question", &("why?", 42)).await?;
    /// # Ok(()) }
    /// ```
    pub fn emit_with_ack<T: Serialize + ?Sized, R: DeserializeOwned>(
        &self,
        event: &str,
        args: &T,
    ) -> AckFuture<R> {
        self.emit_with_ack_timeout(event, args, self.ns.shared().config.ack_timeout)
    }

    /// Like [`emit_with_ack`](Self::emit_with_ack) with its own timeout.
    pub fn emit_with_ack_timeout<T: Serialize + ?Sized, R: DeserializeOwned>(
        &self,
        event: &str,
        args: &T,
        timeout: Duration,
    ) -> AckFuture<R> {
        self.emit_with_ack_inner(event, args, timeout)
    }

    /// Joins rooms.
    pub fn join(&self, rooms: impl IntoRooms) {
        self.ns.change_rooms(self.id, &rooms.into_rooms(), true);
    }

    /// Leaves rooms.
    pub fn leave(&self, rooms: impl IntoRooms) {
        self.ns.change_rooms(self.id, &rooms.into_rooms(), false);
    }

    /// The rooms this socket is in, its own id first.
    pub fn rooms(&self) -> Vec<Room> {
        self.ns.adapter().socket_rooms(self.id)
    }

    /// Targets sockets in these rooms, except this one even when it is in them (Node's
    /// `socket.to`).
    pub fn to(&self, rooms: impl IntoRooms) -> BroadcastOperators {
        self.broadcast().to(rooms)
    }

    /// Targets sockets in these rooms, this one included when it is in them (Node's
    /// `socket.nsp.in(rooms)`); [`to`](Self::to) leaves this socket out.
    pub fn within(&self, rooms: impl IntoRooms) -> BroadcastOperators {
        BroadcastOperators::new(self.ns.clone()).to(rooms)
    }

    /// Targets every socket of the namespace, this one included (Node's `socket.nsp`).
    pub fn nsp(&self) -> BroadcastOperators {
        BroadcastOperators::new(self.ns.clone())
    }

    /// Targets every socket of the namespace except this one.
    pub fn broadcast(&self) -> BroadcastOperators {
        BroadcastOperators::new(self.ns.clone()).except_sid(self.id)
    }

    /// Targets every socket of the namespace except those in these rooms (and this one).
    pub fn except(&self, rooms: impl IntoRooms) -> BroadcastOperators {
        self.broadcast().except(rooms)
    }

    /// Leaves the namespace: the client gets a DISCONNECT, the disconnect handler runs with
    /// [`DisconnectReason::ServerNamespaceDisconnect`].
    pub fn disconnect(self: &Arc<Self>) {
        self.disconnect_with(DisconnectReason::ServerNamespaceDisconnect);
    }

    /// Closes the Engine.IO connection under this socket without a Socket.IO DISCONNECT,
    /// as Node's `socket.conn.close()`. Every socket of the connection (one per namespace)
    /// leaves with [`DisconnectReason::ForcedClose`] once the engine has closed; the client
    /// sees `transport close` and reconnects by itself. With connection state recovery on,
    /// `forced close` is a recoverable reason: the client comes back with the same socket
    /// id, rooms and data, and gets every packet it missed.
    ///
    /// To make the client leave for good instead, use [`disconnect`](Self::disconnect).
    pub fn close_connection(&self) {
        self.session.close(CloseReason::ServerClose);
    }

    /// Disconnects every socket of this socket's connection (each gets a DISCONNECT, with
    /// [`DisconnectReason::ServerNamespaceDisconnect`]), then closes the connection: Node's
    /// `socket.disconnect(true)`.
    pub(crate) fn disconnect_all_and_close(&self) {
        for s in self.session.data.take_all() {
            s.disconnect();
        }
        self.session.close(CloseReason::ServerClose);
    }

    pub(crate) fn disconnect_with(self: &Arc<Self>, reason: DisconnectReason) {
        if self.connected() {
            let enc = self.parser().disconnect(self.ns());
            let _ = self.send_encoded(&enc);
        }
        self.close(reason);
    }

    /// Marks the socket connected and registered; called once the middlewares accepted it.
    pub(crate) fn set_connected(&self) {
        self.connected.store(true, Ordering::Release);
    }

    /// Leaves the namespace for `reason`: `disconnecting`, rooms dropped, pending acks
    /// failed, `disconnect`, then every handler dropped (they may hold `SocketRef`s).
    pub(crate) fn close(self: &Arc<Self>, reason: DisconnectReason) {
        if !self.connected.swap(false, Ordering::AcqRel) {
            return;
        }
        tracing::debug!(sid = %self.id, ns = self.ns(), %reason, "socket disconnected");
        let (disconnecting, disconnect) = {
            let h = self.handlers();
            (h.disconnecting.clone(), h.disconnect.clone())
        };
        if let Some(h) = disconnecting {
            self.run_lifecycle(&h, reason);
        }
        if let Some(pid) = self.pid.filter(|_| reason.is_recoverable()) {
            let own = self.id.as_str();
            let session = PersistedSession {
                sid: self.id,
                pid,
                rooms: self
                    .rooms()
                    .into_iter()
                    .filter(|r| r.as_ref() != own)
                    .collect(),
                data: self.extensions.take(),
            };
            let ns = self.ns.clone();
            run_or_spawn(Box::pin(async move {
                ns.adapter().persist_session(session).await;
            }));
        }
        let observed = self.ns.instrument().map(|i| (i, self.rooms()));
        self.ns.remove_socket(self);
        self.session.data.remove_socket(self);
        self.lock_acks().clear();
        if let Some((i, rooms)) = observed {
            i.socket_disconnected(self, reason, &rooms);
        }
        if let Some(h) = disconnect {
            self.run_lifecycle(&h, reason);
        }
        *self.handlers_mut() = Handlers::default();
    }

    fn run_lifecycle(self: &Arc<Self>, h: &BoxedHandler, reason: DisconnectReason) {
        let cx = Context::new(self, Kind::Disconnect { reason });
        match h(&cx) {
            Ok(Some(fut)) => {
                run_or_spawn(fut);
            }
            Ok(None) => {}
            Err(e) => tracing::warn!(sid = %self.id, error = %e, "disconnect handler skipped"),
        }
    }
}
