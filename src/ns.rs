//! Namespaces: the connect flow, the sockets of each namespace, and local delivery.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, RwLock, Weak};

use std::time::Duration;

use futures_util::future::join_all;
use tokio::sync::{mpsc, oneshot};

use crate::adapter::{AckItem, Adapter, BroadcastOptions, LocalNamespace, SocketInfo};
use crate::client::Client;
use crate::config::SocketIoConfig;
use crate::engine::{SendError, Session, Sid, SidMap, Str};
use crate::errors::AckError;
use crate::extensions::Extensions;
use crate::extract::{Context, Kind};
use crate::handler::{BoxedConnectHandler, BoxedMiddleware, ConnectRejection};
use crate::parser::Encoded;
use crate::parser::{EventPacket, Parser};
use crate::server_event::BoxedServerEventHandler;
use crate::socket::Socket;

/// What every namespace of one server shares.
pub(crate) struct Shared {
    pub config: SocketIoConfig,
    pub state: Extensions,
    pub adapter: crate::adapter::AdapterFactory,
    pub shutting_down: AtomicBool,
    /// The server handle's state, for the `SocketIo` extractor (weak: the handle owns the
    /// namespaces, which own this).
    pub io: std::sync::Weak<crate::io::IoInner>,
    /// The observer, when the server is instrumented (admin UI).
    pub instrument: crate::instrument::InstrumentSlot,
}

impl std::fmt::Debug for Shared {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Shared")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

/// A namespace: its connect handler and middlewares, its sockets and their rooms.
pub struct Namespace {
    path: Str,
    handler: BoxedConnectHandler,
    middlewares: RwLock<Vec<BoxedMiddleware>>,
    sockets: RwLock<SidMap<Arc<Socket>>>,
    server_handlers: RwLock<HashMap<String, BoxedServerEventHandler>>,
    adapter: Box<dyn Adapter>,
    /// This namespace, for what needs an `Arc` of it from `&self` (server-side events).
    me: Weak<Namespace>,
    ack_ids: AtomicU64,
    shared: Arc<Shared>,
}

impl std::fmt::Debug for Namespace {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Namespace")
            .field("path", &self.path())
            .field("sockets", &self.socket_count())
            .finish()
    }
}

impl Namespace {
    pub(crate) fn new(
        path: Str,
        handler: BoxedConnectHandler,
        middlewares: Vec<BoxedMiddleware>,
        shared: Arc<Shared>,
    ) -> Arc<Self> {
        let ns = Arc::new_cyclic(|me| Self {
            adapter: (shared.adapter)(path.as_str()),
            path,
            handler,
            middlewares: RwLock::new(middlewares),
            sockets: RwLock::new(SidMap::default()),
            server_handlers: RwLock::new(HashMap::new()),
            me: me.clone(),
            ack_ids: AtomicU64::new(0),
            shared,
        });
        let weak: std::sync::Weak<dyn LocalNamespace> =
            Arc::downgrade(&(ns.clone() as Arc<dyn LocalNamespace>));
        ns.adapter.init(weak);
        ns
    }

    /// The namespace path.
    pub fn path(&self) -> &str {
        self.path.as_str()
    }

    /// Number of connected sockets.
    pub fn socket_count(&self) -> usize {
        self.read().len()
    }

    pub(crate) fn shared(&self) -> &Arc<Shared> {
        &self.shared
    }

    pub(crate) fn adapter(&self) -> &dyn Adapter {
        &*self.adapter
    }

    pub(crate) fn handler(&self) -> &BoxedConnectHandler {
        &self.handler
    }

    pub(crate) fn middlewares(&self) -> Vec<BoxedMiddleware> {
        self.middlewares
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    pub(crate) fn on_server_event(&self, event: String, handler: BoxedServerEventHandler) {
        self.server_handlers
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .insert(event, handler);
    }

    /// The server-side event handlers, for a namespace made from this one as a template.
    pub(crate) fn server_handlers(&self) -> HashMap<String, BoxedServerEventHandler> {
        self.server_handlers
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    pub(crate) fn add_middleware(&self, mw: BoxedMiddleware) {
        self.middlewares
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .push(mw);
    }

    /// The observer, when the server is instrumented.
    pub(crate) fn instrument(&self) -> Option<&Arc<dyn crate::instrument::Instrument>> {
        self.shared.instrument.get()
    }

    /// Makes socket `sid` join or leave rooms, telling the observer which rooms changed.
    pub(crate) fn change_rooms(&self, sid: Sid, rooms: &[crate::adapter::Room], join: bool) {
        let Some(i) = self.instrument().filter(|i| i.events()) else {
            return self.apply_rooms(sid, rooms, join);
        };
        let before = self.adapter.socket_rooms(sid);
        self.apply_rooms(sid, rooms, join);
        let mut changed: Vec<crate::adapter::Room> = Vec::new();
        for r in rooms {
            if r.as_ref() != sid.as_str() && before.contains(r) != join && !changed.contains(r) {
                changed.push(r.clone());
            }
        }
        if !changed.is_empty() {
            i.rooms_changed(self.path(), sid, &changed, join);
        }
    }

    fn apply_rooms(&self, sid: Sid, rooms: &[crate::adapter::Room], join: bool) {
        if join {
            self.adapter.join(sid, rooms);
        } else {
            self.adapter.leave(sid, rooms);
        }
    }

    /// A fresh ack id, unique within the namespace so one id can serve a whole broadcast.
    pub(crate) fn next_ack_id(&self) -> u64 {
        self.ack_ids.fetch_add(1, Ordering::Relaxed)
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, SidMap<Arc<Socket>>> {
        self.sockets.read().unwrap_or_else(|e| e.into_inner())
    }

    pub(crate) fn all_sockets(&self) -> Vec<Arc<Socket>> {
        self.read().values().cloned().collect()
    }

    pub(crate) fn remove_socket(&self, socket: &Socket) {
        self.sockets
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&socket.id());
        self.adapter.remove_socket(socket.id());
    }

    /// The connect flow: middlewares in order, then the connect handler's extractors (a
    /// failing one refuses the connection, as a middleware would), then the CONNECT reply,
    /// then the connect handler. The caller holds the client's later packets until this returns, so no event
    /// can arrive before the handler has registered its `on` handlers.
    pub(crate) async fn connect(self: Arc<Self>, session: Arc<Session<Client>>, auth: Option<Str>) {
        let mut restored = match (&self.shared.config.recovery, &auth) {
            (Some(_), Some(auth)) => self.restore(auth.as_str()).await,
            _ => None,
        };
        let socket = Arc::new(Socket::new(
            self.clone(),
            session.clone(),
            auth,
            restored.as_mut().map(|r| &mut r.session),
        ));
        let parser = self.shared.config.parser;
        let protocol = crate::parser::SocketIoProtocol::from(session.protocol());
        let skip_middlewares = restored.is_some()
            && self
                .shared
                .config
                .recovery
                .is_some_and(|r| r.skip_middlewares);
        let middlewares = if skip_middlewares {
            Vec::new()
        } else {
            self.middlewares()
        };
        for mw in middlewares {
            let verdict = {
                let cx = Context::new(
                    &socket,
                    Kind::Connect {
                        auth: socket.auth_raw(),
                    },
                );
                mw(&cx)
            };
            let result = match verdict {
                Ok(fut) => fut.await,
                Err(e) => Err(ConnectRejection::new(e.to_string())),
            };
            if let Err(rej) = result {
                tracing::debug!(ns = self.path(), message = %rej.message, "connection refused by middleware");
                self.refuse(&session, protocol, &rej);
                return;
            }
        }
        // Extract the connect handler's arguments before anything is sent: the client must
        // not be told it is connected to a socket whose handler could not run.
        let prepared = {
            let cx = Context::new(
                &socket,
                Kind::Connect {
                    auth: socket.auth_raw(),
                },
            );
            (self.handler)(&cx)
        };
        let run = match prepared {
            Ok(run) => run,
            Err(e) => {
                let rej = ConnectRejection::new(e.to_string());
                tracing::warn!(ns = self.path(), error = %e, "connection refused: an extractor of the connect handler failed");
                self.refuse(&session, protocol, &rej);
                return;
            }
        };
        self.sockets
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .insert(socket.id(), socket.clone());
        self.adapter.add_socket(socket.id());
        if let Some(r) = &restored {
            self.adapter.join(socket.id(), &r.session.rooms);
        }
        socket.set_connected();
        session.claim();
        if let Some(old) = session.data.add_socket(socket.clone()) {
            old.close(crate::errors::DisconnectReason::ClientNamespaceDisconnect);
        }
        if session.is_closed() {
            socket.close(crate::errors::DisconnectReason::TransportClose);
            return;
        }
        let pid = socket.pid();
        let enc = parser.connect_for(
            protocol,
            self.path(),
            socket.id().as_str(),
            pid.as_ref().map(Sid::as_str),
        );
        let _ = socket.send_encoded(&enc);
        // What the socket missed goes right after the reply, before anything new.
        for missed in restored.iter().flat_map(|r| &r.missed) {
            if let Err(e) = socket.send_encoded(missed) {
                tracing::warn!(sid = %socket.id(), error = %e, "could not replay a missed packet");
                break;
            }
        }
        // The reply (and what it replays) is written before what the connect handler emits.
        session.write_apart();
        tracing::debug!(sid = %socket.id(), ns = self.path(), "socket connected");
        if let Some(i) = self.instrument() {
            i.socket_connected(&socket);
        }
        if let Some(fut) = run() {
            fut.await;
        }
    }

    /// Refuses a connection with a CONNECT_ERROR (an ERROR for protocol v4 clients).
    fn refuse(
        &self,
        session: &Session<Client>,
        protocol: crate::parser::SocketIoProtocol,
        rej: &ConnectRejection,
    ) {
        let enc = self.shared.config.parser.connect_error_for(
            protocol,
            self.path(),
            &rej.message,
            rej.data.as_ref(),
        );
        let _ = session.send_all(enc.frames(), enc.len());
    }

    /// Looks up the session a reconnecting client asks back (`pid` and `offset` in its
    /// auth payload).
    async fn restore(&self, auth: &str) -> Option<crate::adapter::RestoredSession> {
        #[derive(serde::Deserialize)]
        struct Recovery {
            pid: Option<String>,
            offset: Option<String>,
        }
        let r: Recovery = serde_json::from_str(auth).ok()?;
        let (pid, offset) = (r.pid?, r.offset?);
        let restored = self.adapter.restore_session(&pid, &offset).await;
        tracing::debug!(
            ns = self.path(),
            recovered = restored.is_some(),
            "connection state recovery"
        );
        restored
    }

    /// Queues one encoded packet to every local socket the options select; returns how many
    /// took it. A receiver whose queue is full is disconnected (unless the broadcast is
    /// volatile, where it just misses the packet): it never blocks the others, and never
    /// misses a packet silently.
    fn deliver_local(&self, enc: &Encoded, opts: &BroadcastOptions) -> usize {
        let sockets = self.read();
        let mut delivered = 0;
        // Only an observer that wants events pays for the list of receivers.
        let watch = self.instrument().filter(|i| i.events());
        let mut receivers = Vec::new();
        self.adapter.for_each(opts, &mut |sid| {
            let Some(s) = sockets.get(&sid) else { return };
            match s.session.send_all(enc.frames(), enc.len()) {
                Ok(()) => {
                    delivered += 1;
                    if watch.is_some() {
                        receivers.push(sid);
                    }
                }
                Err(SendError::Full) if opts.volatile => {}
                Err(SendError::Full) => {
                    tracing::warn!(sid = %sid, "slow client: outgoing queue full, disconnecting");
                    s.session.close(crate::engine::CloseReason::TransportError);
                }
                Err(SendError::Closed) => {}
            }
        });
        if let Some(i) = self.instrument().filter(|_| delivered > 0) {
            let bytes = crate::instrument::encoded_bytes(enc);
            i.packets_sent(delivered * enc.len(), delivered * bytes);
        }
        if let Some(i) = watch.filter(|_| !receivers.is_empty()) {
            i.broadcast_sent(self.path(), &receivers, enc);
        }
        delivered
    }
}

impl LocalNamespace for Namespace {
    fn path(&self) -> &str {
        self.path.as_str()
    }

    fn parser(&self) -> Parser {
        self.shared.config.parser
    }

    fn deliver(&self, packet: &Encoded, opts: &BroadcastOptions) -> usize {
        self.deliver_local(packet, opts)
    }

    fn deliver_with_ack(
        &self,
        packet: &EventPacket,
        opts: &BroadcastOptions,
        timeout: Duration,
        tx: mpsc::UnboundedSender<AckItem>,
    ) -> usize {
        let id = self.next_ack_id();
        let enc = self.parser().encode_event(packet, Some(id), None);
        let mut waiting = Vec::new();
        for socket in self.matching(opts) {
            let rx = socket.register_ack(id);
            match socket.send_encoded(&enc) {
                Ok(()) => waiting.push((socket, rx)),
                Err(e) => {
                    socket.forget_ack(id);
                    tracing::debug!(sid = %socket.id(), error = %e, "broadcast with ack: emit failed");
                }
            }
        }
        let n = waiting.len();
        if n > 0 {
            tokio::spawn(async move {
                join_all(waiting.into_iter().map(|(socket, rx)| {
                    let tx = tx.clone();
                    async move {
                        let r = match tokio::time::timeout(timeout, rx).await {
                            Ok(Ok(args)) => Ok(args),
                            Ok(Err(_)) => Err(AckError::Disconnected),
                            Err(_) => {
                                socket.forget_ack(id);
                                Err(AckError::Timeout)
                            }
                        };
                        let _ = tx.send((Some(socket.id()), r));
                    }
                }))
                .await;
            });
        }
        n
    }

    fn socket_infos(&self, opts: &BroadcastOptions) -> Vec<SocketInfo> {
        self.matching(opts).into_iter().map(|s| s.info()).collect()
    }

    fn disconnect(&self, opts: &BroadcastOptions, close: bool) {
        for s in self.matching(opts) {
            if close {
                s.disconnect_all_and_close();
            } else {
                s.disconnect();
            }
        }
    }

    fn rooms_op(&self, opts: &BroadcastOptions, rooms: &[crate::adapter::Room], join: bool) {
        let mut sids = Vec::new();
        self.adapter.for_each(opts, &mut |s| sids.push(s));
        for sid in sids {
            self.change_rooms(sid, rooms, join);
        }
    }

    fn rooms(&self) -> Vec<crate::adapter::Room> {
        self.adapter.rooms()
    }

    fn recovery(&self) -> Option<crate::adapter::RecoveryConfig> {
        self.shared.config.recovery
    }

    fn server_event(
        &self,
        event: &str,
        args: &[serde_json::Value],
        ack: Option<oneshot::Sender<serde_json::Value>>,
    ) {
        let handler = self
            .server_handlers
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(event)
            .cloned();
        let (Some(handler), Some(ns)) = (handler, self.me.upgrade()) else {
            // As in the reference server: no handler, no answer.
            tracing::debug!(ns = self.path(), event, "no handler for server-side event");
            return;
        };
        crate::server_event::run(&ns, &handler, event, args, ack);
    }
}

impl Namespace {
    /// The local sockets the options select.
    pub(crate) fn matching(&self, opts: &BroadcastOptions) -> Vec<Arc<Socket>> {
        let sockets = self.read();
        let mut out = Vec::new();
        self.adapter.for_each(opts, &mut |sid| {
            if let Some(s) = sockets.get(&sid) {
                out.push(s.clone());
            }
        });
        out
    }
}
