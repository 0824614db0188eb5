//! The server handle, its builder, and the tower layer that mounts it.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock, RwLock, Weak};
use std::time::Duration;

use http::request::Parts;
use serde::Serialize;
use serde::de::DeserializeOwned;
use tower_layer::Layer;

use crate::adapter::{AdapterFactory, RecoveryConfig, local_factory, recovery_factory};
use crate::client::SocketIoHandler;
use crate::config::SocketIoConfig;
use crate::engine::{Engine, EngineLayer, EngineService, Str};
use crate::errors::DisconnectReason;
use crate::extensions::Extensions;
use crate::extract::{Context, ExtractError, FromContext};
use crate::handler::{Handler, Middleware, boxed_connect, boxed_middleware};
use crate::ns::{Namespace, Shared};
use crate::operators::BroadcastError;
use crate::operators::{BroadcastOperators, IntoRooms};
use crate::server_event::ServerEventHandler;
use crate::socket::SocketRef;

type Predicate = Arc<dyn Fn(&str) -> bool + Send + Sync>;

/// A family of namespaces created on demand when a client connects to a matching path.
struct DynamicNs {
    matches: Predicate,
    template: Arc<Namespace>,
}

pub(crate) struct IoInner {
    pub(crate) shared: Arc<Shared>,
    namespaces: RwLock<HashMap<Box<str>, Arc<Namespace>>>,
    dynamic: RwLock<Vec<DynamicNs>>,
    engine: OnceLock<Weak<Engine<SocketIoHandler>>>,
}

impl IoInner {
    /// Every namespace created so far (registered or dynamic).
    #[cfg_attr(not(feature = "admin"), allow(dead_code))] // used by the admin UI
    pub(crate) fn namespaces(&self) -> Vec<Arc<Namespace>> {
        self.namespaces
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .values()
            .cloned()
            .collect()
    }

    /// Number of open Engine.IO sessions.
    #[cfg_attr(not(feature = "admin"), allow(dead_code))] // used by the admin UI
    pub(crate) fn connection_count(&self) -> usize {
        self.engine
            .get()
            .and_then(Weak::upgrade)
            .map_or(0, |e| e.session_count())
    }

    /// The namespace at `path`, creating it from a dynamic family if one matches.
    pub(crate) fn namespace(&self, path: &str) -> Option<Arc<Namespace>> {
        if let Some(ns) = self
            .namespaces
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(path)
        {
            return Some(ns.clone());
        }
        let template = self
            .dynamic
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .find(|d| (d.matches)(path))
            .map(|d| d.template.clone())?;
        let mut map = self.namespaces.write().unwrap_or_else(|e| e.into_inner());
        let ns = map.entry(path.into()).or_insert_with(|| {
            tracing::debug!(ns = path, "dynamic namespace created");
            let ns = Namespace::new(
                Str::from(path),
                template.handler().clone(),
                template.middlewares(),
                self.shared.clone(),
            );
            for (event, handler) in template.server_handlers() {
                ns.on_server_event(event, handler);
            }
            ns
        });
        Some(ns.clone())
    }
}

/// The Socket.IO server handle: register namespaces, broadcast, shut down. Cheap to clone.
#[derive(Clone)]
pub struct SocketIo {
    inner: Arc<IoInner>,
    engine: Arc<Engine<SocketIoHandler>>,
}

impl std::fmt::Debug for SocketIo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SocketIo")
            .field("sessions", &self.engine.session_count())
            .finish_non_exhaustive()
    }
}

/// A registered namespace, to add connect middlewares to.
#[derive(Debug, Clone)]
pub struct NamespaceHandle(Arc<Namespace>);

impl NamespaceHandle {
    #[cfg_attr(not(feature = "admin"), allow(dead_code))] // used by the admin UI
    pub(crate) fn namespace(&self) -> &Arc<Namespace> {
        &self.0
    }

    /// Adds a connect middleware; middlewares run in the order they were added, before the
    /// connect handler, and the first refusal ends the connection attempt.
    pub fn with<Mw: Middleware<M>, M>(self, middleware: Mw) -> Self {
        self.0.add_middleware(boxed_middleware(middleware));
        self
    }

    /// Handles a server-side event that another server of the cluster emits in this
    /// namespace (Node's `io.of(nsp).on(event, ...)` for `serverSideEmit`), replacing any
    /// previous handler of that event. The handler is a closure, sync or `async`, of
    /// [`FromServerEvent`](crate::server_event::FromServerEvent) extractors: `Data<T>` for
    /// the arguments, [`ServerAck`](crate::server_event::ServerAck) to answer a sender that
    /// waits, `BroadcastOperators` for this namespace, `State<T>`, `Event`. On a family of
    /// dynamic namespaces, every namespace of the family created afterwards gets it:
    /// register it before serving clients.
    pub fn on_server_event<H: ServerEventHandler<M>, M>(
        self,
        event: impl Into<String>,
        handler: H,
    ) -> Self {
        self.0
            .on_server_event(event.into(), crate::server_event::boxed(handler));
        self
    }
}

/// Handlers extract the server handle, so they need not capture it (a handle captured in
/// a handler stored in the server would keep the server alive).
impl FromContext for SocketIo {
    fn from_context(cx: &Context<'_>) -> Result<Self, ExtractError> {
        SocketIo::from_shared(cx.socket().namespace().shared())
    }
}

impl SocketIo {
    /// The handle, from what every namespace shares (fails once the server is dropped).
    pub(crate) fn from_shared(shared: &Shared) -> Result<SocketIo, ExtractError> {
        let not_available = || ExtractError::NotAvailable("SocketIo");
        let inner = shared.io.upgrade().ok_or_else(not_available)?;
        let engine = inner
            .engine
            .get()
            .and_then(Weak::upgrade)
            .ok_or_else(not_available)?;
        Ok(SocketIo { inner, engine })
    }
}

impl SocketIo {
    #[cfg_attr(not(feature = "admin"), allow(dead_code))] // used by the admin UI
    pub(crate) fn inner(&self) -> &Arc<IoInner> {
        &self.inner
    }

    /// A builder with the default settings.
    pub fn builder() -> SocketIoBuilder {
        SocketIoBuilder::default()
    }

    /// A layer and handle with the default settings.
    pub fn new_layer() -> (SocketIoLayer, SocketIo) {
        Self::builder().build_layer()
    }

    /// Registers the namespace `path` with its connect handler (replacing any previous one).
    pub fn ns<H: Handler<M>, M>(&self, path: impl Into<String>, handler: H) -> NamespaceHandle {
        let path = normalize(path.into());
        let ns = Namespace::new(
            Str::from(path.clone()),
            boxed_connect(handler),
            Vec::new(),
            self.inner.shared.clone(),
        );
        self.inner
            .namespaces
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .insert(path.into_boxed_str(), ns.clone());
        NamespaceHandle(ns)
    }

    /// Registers a family of namespaces by pattern: `{name}` matches one path segment
    /// (`/tenant/{id}` matches `/tenant/42`). Each matching path becomes its own namespace
    /// the first time a client connects to it (or [`of`](Self::of) names it), and stays.
    pub fn dyn_ns<H: Handler<M>, M>(&self, pattern: &str, handler: H) -> NamespaceHandle {
        let pattern: Vec<String> = normalize(pattern.to_owned())
            .split('/')
            .map(str::to_owned)
            .collect();
        self.dyn_ns_fn(
            move |path: &str| {
                let segs: Vec<&str> = path.split('/').collect();
                segs.len() == pattern.len()
                    && segs.iter().zip(&pattern).all(|(s, p)| {
                        if p.starts_with('{') && p.ends_with('}') {
                            !s.is_empty()
                        } else {
                            s == p
                        }
                    })
            },
            handler,
        )
    }

    /// Registers a family of namespaces by predicate over the path.
    pub fn dyn_ns_fn<F, H, M>(&self, matches: F, handler: H) -> NamespaceHandle
    where
        F: Fn(&str) -> bool + Send + Sync + 'static,
        H: Handler<M>,
    {
        let template = Namespace::new(
            Str::from_static("<dynamic>"),
            boxed_connect(handler),
            Vec::new(),
            self.inner.shared.clone(),
        );
        self.inner
            .dynamic
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .push(DynamicNs {
                matches: Arc::new(matches),
                template: template.clone(),
            });
        NamespaceHandle(template)
    }

    /// Operators on the namespace `path`, if it is registered or a dynamic family matches
    /// it (which creates it, as a client connecting would).
    pub fn of(&self, path: &str) -> Option<BroadcastOperators> {
        self.inner
            .namespace(&normalize(path.to_owned()))
            .map(BroadcastOperators::new)
    }

    fn main_ns(&self) -> Option<BroadcastOperators> {
        self.of("/")
    }

    /// Emits to every socket of the main namespace `/`.
    pub async fn emit<T: Serialize + ?Sized>(
        &self,
        event: &str,
        data: &T,
    ) -> Result<usize, BroadcastError> {
        match self.main_ns() {
            Some(op) => op.emit(event, data).await,
            None => Ok(0),
        }
    }

    /// Targets rooms of the main namespace `/`.
    pub fn to(&self, rooms: impl IntoRooms) -> Option<BroadcastOperators> {
        self.main_ns().map(|op| op.to(rooms))
    }

    /// Sockets of the main namespace `/`.
    pub fn sockets(&self) -> Vec<SocketRef> {
        self.main_ns().map(|op| op.sockets()).unwrap_or_default()
    }

    /// Handles a server-side event in the main namespace `/`: the same as
    /// [`NamespaceHandle::on_server_event`] on `/` (nothing happens when `/` is not
    /// registered).
    pub fn on_server_event<H: ServerEventHandler<M>, M>(
        &self,
        event: impl Into<String>,
        handler: H,
    ) {
        if let Some(ns) = self.inner.namespace("/") {
            NamespaceHandle(ns).on_server_event(event, handler);
        }
    }

    /// Emits a server-side event to the other servers of the cluster in the main
    /// namespace `/`: [`BroadcastOperators::server_side_emit`] on `/`.
    pub async fn server_side_emit<T: Serialize + ?Sized>(
        &self,
        event: &str,
        args: &T,
    ) -> Result<(), BroadcastError> {
        match self.main_ns() {
            Some(op) => op.server_side_emit(event, args).await,
            None => Ok(()),
        }
    }

    /// Emits a server-side event in the main namespace `/` and waits for every other
    /// server's answer: [`BroadcastOperators::server_side_emit_with_ack`] on `/`.
    pub async fn server_side_emit_with_ack<T: Serialize + ?Sized, R: DeserializeOwned>(
        &self,
        event: &str,
        args: &T,
    ) -> Result<Vec<Result<R, crate::AckError>>, BroadcastError> {
        match self.main_ns() {
            Some(op) => op.server_side_emit_with_ack(event, args).await,
            None => Ok(Vec::new()),
        }
    }

    /// Number of servers in the cluster (1 without a cluster adapter).
    pub async fn server_count(&self) -> Result<usize, crate::adapter::AdapterError> {
        match self.inner.namespace("/") {
            Some(ns) => ns.adapter().server_count().await,
            None => Ok(1),
        }
    }

    /// Number of open Engine.IO sessions (connections).
    pub fn connection_count(&self) -> usize {
        self.engine.session_count()
    }

    /// Shuts the server down as the reference's `io.close()`: every socket leaves with
    /// [`DisconnectReason::ServerShuttingDown`] without a DISCONNECT packet, then every
    /// Engine.IO session is closed and new handshakes are refused (HTTP 503). Clients see a
    /// lost transport and reconnect with their backoff, to this address or, behind a load
    /// balancer, to another node; with connection state recovery and a cluster adapter that
    /// keeps sessions (Redis Streams), they recover there, as `server shutting down` is a
    /// recoverable reason. To make clients leave for good instead, disconnect their sockets
    /// first ([`BroadcastOperators::disconnect`]).
    ///
    /// Returns once every session is gone or `grace` has passed (a WebSocket peer that does
    /// not answer the closing handshake is waited for up to `grace`).
    pub async fn close(&self, grace: Duration) {
        self.inner
            .shared
            .shutting_down
            .store(true, Ordering::Release);
        let namespaces: Vec<_> = self
            .inner
            .namespaces
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .values()
            .cloned()
            .collect();
        for ns in namespaces {
            for s in ns.all_sockets() {
                s.close(DisconnectReason::ServerShuttingDown);
            }
        }
        self.engine.close_all();
        let deadline = tokio::time::Instant::now() + grace;
        while self.engine.session_count() > 0 && tokio::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
}

fn normalize(mut path: String) -> String {
    if !path.starts_with('/') {
        path.insert(0, '/');
    }
    path
}

/// Builds a [`SocketIo`] server and its [`SocketIoLayer`]. Every setting starts at its
/// documented default (see [`SocketIoConfig`]).
pub struct SocketIoBuilder {
    config: SocketIoConfig,
    state: Extensions,
    adapter: Option<AdapterFactory>,
}

impl Default for SocketIoBuilder {
    fn default() -> Self {
        Self {
            config: SocketIoConfig::default(),
            state: Extensions::new(),
            adapter: None,
        }
    }
}

impl std::fmt::Debug for SocketIoBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SocketIoBuilder")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl SocketIoBuilder {
    /// Adds app-wide state, read by handlers with the [`State`](crate::extract::State)
    /// extractor. One value per type.
    pub fn with_state<T: Clone + Send + Sync + 'static>(self, state: T) -> Self {
        self.state.insert(state);
        self
    }
    /// Path to answer. Default `/socket.io`.
    pub fn path(mut self, path: impl Into<String>) -> Self {
        self.config.engine.path = crate::engine::normalize_path(path.into());
        self
    }
    /// Time between pings. Default 25 s.
    pub fn ping_interval(mut self, d: Duration) -> Self {
        self.config.engine.ping_interval = d;
        self
    }
    /// Time to answer a ping. Default 20 s.
    pub fn ping_timeout(mut self, d: Duration) -> Self {
        self.config.engine.ping_timeout = d;
        self
    }
    /// Time an upgrade may take. Default 10 s.
    pub fn upgrade_timeout(mut self, d: Duration) -> Self {
        self.config.engine.upgrade_timeout = d;
        self
    }
    /// Largest message or polling body, in bytes; also bounds the attachments of one packet.
    /// Default 1 000 000.
    pub fn max_payload(mut self, bytes: usize) -> Self {
        self.config.engine.max_payload = bytes.max(16);
        self
    }
    /// Bound of each connection's outgoing queue, in frames. Default 256.
    pub fn max_buffered_packets(mut self, n: usize) -> Self {
        self.config.engine.max_buffered_packets = n.max(1);
        self
    }
    /// Accepted transports. Default both.
    pub fn transports(mut self, polling: bool, websocket: bool) -> Self {
        self.config.engine.transports = crate::engine::Transports { polling, websocket };
        self
    }
    /// Compresses long-polling responses of at least `threshold` bytes with gzip or deflate
    /// when the client accepts it (feature `compression`). Default off. WebSocket
    /// permessage-deflate is not available: tokio-tungstenite does not implement it.
    pub fn http_compression(mut self, threshold: usize) -> Self {
        self.config.engine.http_compression = Some(threshold);
        self
    }
    /// Whether polling may upgrade to WebSocket. Default true.
    pub fn allow_upgrades(mut self, allow: bool) -> Self {
        self.config.engine.allow_upgrades = allow;
        self
    }
    /// A hook over the request parts of handshakes and upgrades; `Err(msg)` refuses (HTTP 403
    /// on polling, 400 on WebSocket, as the reference). Check `Origin` here: CORS does not
    /// protect WebSocket upgrades.
    pub fn allow_request<F>(mut self, f: F) -> Self
    where
        F: Fn(&Parts) -> Result<(), String> + Send + Sync + 'static,
    {
        self.config.engine.allow_request = Some(Arc::new(f));
        self
    }
    /// Accepts clients of Engine.IO v3 / Socket.IO protocol v4 (`socket.io-client` 2.x), as the
    /// reference server's `allowEIO3`: they join `/` at once, other namespaces with their
    /// query as auth. Needs the JSON parser. Default false.
    pub fn allow_eio3(mut self, allow: bool) -> Self {
        self.config.engine.allow_eio3 = allow;
        self
    }
    /// Time a client has to join a namespace. Default 45 s.
    pub fn connect_timeout(mut self, d: Duration) -> Self {
        self.config.connect_timeout = d;
        self
    }
    /// Default time to wait for acks. Default 5 s.
    pub fn ack_timeout(mut self, d: Duration) -> Self {
        self.config.ack_timeout = d;
        self
    }
    /// Attachments one binary packet may carry. Default 16.
    pub fn max_attachments(mut self, n: usize) -> Self {
        self.config.max_attachments = n;
        self
    }
    /// Time a binary packet may take to complete. Default 10 s.
    pub fn attachment_timeout(mut self, d: Duration) -> Self {
        self.config.attachment_timeout = d;
        self
    }
    /// The adapter each namespace gets (default: the in-memory
    /// [`LocalAdapter`](crate::adapter::LocalAdapter)). See [`adapter`](crate::adapter) for
    /// how a cluster adapter plugs in.
    pub fn adapter(mut self, factory: AdapterFactory) -> Self {
        self.adapter = Some(factory);
        self
    }
    /// Turns on connection state recovery, as the reference server's
    /// `connectionStateRecovery`: every event without ack sent to a client (broadcasts and
    /// a socket's own emits alike) carries an offset as its last argument, and a client that
    /// lost its connection (not one that disconnected on purpose, see
    /// [`DisconnectReason::is_recoverable`]) and reconnects within
    /// `max_disconnection_duration` gets back its socket id, rooms and data, and every
    /// packet it missed. With the default adapter; a custom adapter must implement
    /// `frame_broadcast`/`persist_session`/`restore_session` itself.
    pub fn connection_state_recovery(mut self, config: RecoveryConfig) -> Self {
        self.config.recovery = Some(config);
        self
    }
    /// The wire format (default JSON). Clients must use the same parser.
    pub fn parser(mut self, parser: crate::parser::Parser) -> Self {
        self.config.parser = parser;
        self
    }
    /// Replaces the whole configuration.
    pub fn config(mut self, config: SocketIoConfig) -> Self {
        self.config = config;
        self
    }

    /// Builds the layer to mount and the handle to use.
    pub fn build_layer(self) -> (SocketIoLayer, SocketIo) {
        let inner = Arc::new_cyclic(|io| IoInner {
            shared: Arc::new(Shared {
                config: self.config.clone(),
                state: self.state,
                adapter: self.adapter.unwrap_or_else(|| match self.config.recovery {
                    Some(r) => recovery_factory(r),
                    None => local_factory(),
                }),
                shutting_down: AtomicBool::new(false),
                io: io.clone(),
                instrument: OnceLock::new(),
            }),
            namespaces: RwLock::new(HashMap::new()),
            dynamic: RwLock::new(Vec::new()),
            engine: OnceLock::new(),
        });
        let engine = Engine::new(SocketIoHandler { io: inner.clone() }, self.config.engine);
        let _ = inner.engine.set(Arc::downgrade(&engine));
        let io = SocketIo {
            inner,
            engine: engine.clone(),
        };
        (SocketIoLayer(EngineLayer::new(engine)), io)
    }
}

/// The tower [`Layer`] serving Socket.IO under its path and passing other requests on.
#[derive(Debug, Clone)]
pub struct SocketIoLayer(EngineLayer<SocketIoHandler>);

/// The service [`SocketIoLayer`] builds around an inner service `S`.
pub type SocketIoService<S> = EngineService<S, SocketIoHandler>;

impl<S> Layer<S> for SocketIoLayer {
    type Service = SocketIoService<S>;
    fn layer(&self, inner: S) -> Self::Service {
        self.0.layer(inner)
    }
}

impl SocketIoLayer {
    /// A service answering only Socket.IO requests (404 for the rest), for servers without
    /// an app of their own.
    pub fn into_standalone(self) -> SocketIoService<crate::engine::NotFound> {
        self.0.layer(crate::engine::NotFound)
    }
}
