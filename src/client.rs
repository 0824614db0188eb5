//! One Engine.IO session seen from Socket.IO: its sockets (one per namespace), its packet
//! decoder, and the [`EngineHandler`] that routes packets to namespaces and sockets.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use crate::engine::{
    CloseReason, EngineHandler, EngineProtocol, Gate, Message, Session, Str, TransportKind,
};
use crate::errors::DisconnectReason;
use crate::handler::BoxFuture;
use crate::io::IoInner;
use crate::parser::{Body, Decoder, Packet, Parser, query_to_auth};
use crate::socket::Socket;

/// Socket.IO's data inside each Engine.IO session.
#[derive(Default)]
pub struct Client {
    sockets: Mutex<Vec<Arc<Socket>>>,
    decoder: Mutex<Option<Decoder>>,
    /// Counts binary packets started, so a timer can tell whether "its" packet is done.
    partials: AtomicU64,
    /// Protocol v4: the implicit connect to `/` when it did not finish at once; the client's
    /// first packets wait for it.
    pending_connect: Mutex<Option<tokio::task::JoinHandle<()>>>,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client").finish_non_exhaustive()
    }
}

impl Client {
    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<Arc<Socket>>> {
        self.sockets.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn socket(&self, ns: &str) -> Option<Arc<Socket>> {
        self.lock().iter().find(|s| s.ns() == ns).cloned()
    }

    /// Adds a socket; returns the one it replaces on the same namespace.
    pub(crate) fn add_socket(&self, socket: Arc<Socket>) -> Option<Arc<Socket>> {
        let mut g = self.lock();
        let old = g
            .iter()
            .position(|s| s.ns() == socket.ns())
            .map(|i| g.swap_remove(i));
        g.push(socket);
        old
    }

    pub(crate) fn remove_socket(&self, socket: &Socket) {
        self.lock().retain(|s| !std::ptr::eq(&**s, socket));
    }

    pub(crate) fn take_all(&self) -> Vec<Arc<Socket>> {
        std::mem::take(&mut *self.lock())
    }
}

/// The Socket.IO layer as the engine's handler. Public only because it names the service
/// type; it has no API of its own.
#[derive(Clone)]
pub struct SocketIoHandler {
    pub(crate) io: Arc<IoInner>,
}

impl std::fmt::Debug for SocketIoHandler {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SocketIoHandler").finish_non_exhaustive()
    }
}

impl SocketIoHandler {
    /// A client sent a packet that does not decode: as the reference, the server closes the
    /// connection, and its sockets leave for that reason (the engine's close).
    fn reject(&self, session: &Arc<Session<Client>>, error: &dyn std::fmt::Display) {
        tracing::warn!(sid = %session.id(), %error, "invalid packet, closing the connection");
        session.close(CloseReason::ServerClose);
    }

    /// A packet the connection's state does not allow (an event, ack or DISCONNECT for a
    /// namespace not joined, a second CONNECT to one joined): the reference closes the
    /// connection.
    fn invalid_state(&self, session: &Arc<Session<Client>>, what: &str) {
        tracing::debug!(sid = %session.id(), what, "packet in an invalid state, closing the connection");
        session.close(CloseReason::ServerClose);
    }

    fn start_attachment_timer(&self, session: &Arc<Session<Client>>) {
        let generation = session.data.partials.fetch_add(1, Ordering::AcqRel) + 1;
        let weak = Arc::downgrade(session);
        let timeout = self.io.shared.config.attachment_timeout;
        tokio::spawn(async move {
            tokio::time::sleep(timeout).await;
            let Some(session) = weak.upgrade() else {
                return;
            };
            let pending = session
                .data
                .decoder
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .as_ref()
                .is_some_and(Decoder::is_pending);
            if pending && session.data.partials.load(Ordering::Acquire) == generation {
                tracing::warn!(sid = %session.id(), "binary packet not completed in time");
                for s in session.data.take_all() {
                    s.close(DisconnectReason::ParseError);
                }
                session.close(CloseReason::TransportError);
            }
        });
    }

    fn dispatch(&self, session: &Arc<Session<Client>>, packet: Packet) -> Option<Gate> {
        let Packet { ns, id, body } = packet;
        match body {
            Body::Connect(auth) => {
                if session.protocol() == EngineProtocol::V3
                    && session.data.socket(ns.as_str()).is_some()
                {
                    // A v4 client joins each namespace once (`/` without asking); the
                    // reference server treats a second CONNECT as a broken client.
                    tracing::debug!(sid = %session.id(), ns = %truncate(&ns), "CONNECT to a namespace already joined, ignored");
                    return None;
                }
                if session.data.socket(ns.as_str()).is_some() {
                    self.invalid_state(session, "CONNECT to a namespace already joined");
                    return None;
                }
                let Some(namespace) = self.io.namespace(ns.as_str()) else {
                    tracing::debug!(sid = %session.id(), ns = %truncate(&ns), "connect to unknown namespace");
                    let enc = self.io.shared.config.parser.connect_error(
                        ns.as_str(),
                        "Invalid namespace",
                        None,
                    );
                    let _ = session.send_all(enc.frames(), enc.len());
                    return None;
                };
                gate(Box::pin(namespace.connect(session.clone(), auth)))
            }
            Body::Disconnect => {
                match session.data.socket(ns.as_str()) {
                    Some(s) => s.close(DisconnectReason::ClientNamespaceDisconnect),
                    None => self.invalid_state(session, "DISCONNECT for a namespace not joined"),
                }
                None
            }
            Body::Event { name, args } => match session.data.socket(ns.as_str()) {
                Some(s) => s.receive_event(name, args, id).and_then(gate),
                None => {
                    self.invalid_state(session, "event for a namespace not joined");
                    None
                }
            },
            Body::Ack(args) => {
                match (session.data.socket(ns.as_str()), id) {
                    (Some(s), Some(id)) => s.dispatch_ack(id, args),
                    (Some(_), None) => {}
                    (None, _) => self.invalid_state(session, "ack for a namespace not joined"),
                }
                None
            }
        }
    }
}

/// Query parameters of the handshake that belong to Engine.IO, not to the application: they
/// stay out of a v4 client's auth.
const ENGINE_QUERY: &[&str] = &["EIO", "transport", "t", "b64", "sid", "j"];

/// Runs the connect flow inline as far as it goes; if it must wait, spawns it and returns a
/// gate that holds the client's next packets until it is done.
fn gate(fut: BoxFuture) -> Option<Gate> {
    let handle = crate::handler::run_or_spawn(fut)?;
    Some(Box::pin(async move {
        let _ = handle.await;
    }))
}

fn truncate(s: &str) -> &str {
    let mut end = s.len().min(64);
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

impl SocketIoHandler {
    /// Protocol v4 (Engine.IO v3): the client is in `/` from the start, as if it had sent a
    /// CONNECT whose auth is its handshake query (Engine.IO parameters left out).
    fn connect_main(&self, session: &Arc<Session<Client>>) {
        if self.io.shared.config.parser != Parser::Json {
            tracing::warn!(sid = %session.id(), "Engine.IO v3 client refused: it needs the JSON parser");
            session.close(CloseReason::ServerClose);
            return;
        }
        let Some(namespace) = self.io.namespace("/") else {
            // The reference server always has `/`. Without it, say nothing: a v2 client
            // reads an error on `/` as an error of every namespace it joins.
            tracing::debug!(sid = %session.id(), "no `/` namespace for a v3 client to join");
            return;
        };
        let query = session.request_parts().uri.query().unwrap_or("");
        let auth = Str::from(query_to_auth(query, ENGINE_QUERY));
        let fut: BoxFuture = Box::pin(namespace.connect(session.clone(), Some(auth)));
        if let Some(handle) = crate::handler::run_or_spawn(fut) {
            *session
                .data
                .pending_connect
                .lock()
                .unwrap_or_else(|e| e.into_inner()) = Some(handle);
        }
    }

    /// Decodes one message and dispatches the packet it completes.
    fn process(&self, session: &Arc<Session<Client>>, msg: Message) -> Option<Gate> {
        let (decoded, started) = {
            let mut guard = session
                .data
                .decoder
                .lock()
                .unwrap_or_else(|e| e.into_inner());
            let decoder = guard.get_or_insert_with(|| {
                self.io
                    .shared
                    .config
                    .parser
                    .decoder(self.io.shared.config.decode_limits())
                    .with_protocol(session.protocol().into())
            });
            let was_pending = decoder.is_pending();
            let decoded = match msg {
                Message::Text(t) => decoder.decode_text(t),
                Message::Binary(b) => decoder.decode_binary(b),
            };
            (decoded, !was_pending && decoder.is_pending())
        };
        match decoded {
            Err(e) => {
                self.reject(session, &e);
                None
            }
            Ok(None) => {
                if started {
                    self.start_attachment_timer(session);
                }
                None
            }
            Ok(Some(packet)) => self.dispatch(session, packet),
        }
    }
}

impl EngineHandler for SocketIoHandler {
    type Data = Client;

    fn on_open(&self, session: &Arc<Session<Client>>) {
        if let Some(i) = self.io.shared.instrument.get() {
            i.connection_opened(session.transport() == TransportKind::Polling);
        }
        // A client that joins no namespace in time is closed, as the reference does.
        session.close_unless_claimed(self.io.shared.config.connect_timeout);
        // After the deadline is set, so that joining `/` at once cancels it.
        if session.protocol() == EngineProtocol::V3 {
            self.connect_main(session);
        }
    }

    fn on_message(&self, session: &Arc<Session<Client>>, msg: Message) -> Option<Gate> {
        if let Some(i) = self.io.shared.instrument.get() {
            i.message_received(match &msg {
                Message::Text(t) => t.len(),
                Message::Binary(b) => b.len(),
            });
        }
        let pending = session
            .data
            .pending_connect
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take()
            .filter(|h| !h.is_finished());
        if let Some(connect) = pending {
            // The implicit connect to `/` is still running (v4): this message, and with the
            // gate every later one, waits until the connect handler has returned.
            let this = self.clone();
            let session = session.clone();
            return Some(Box::pin(async move {
                let _ = connect.await;
                if let Some(gate) = this.process(&session, msg) {
                    gate.await;
                }
            }));
        }
        self.process(session, msg)
    }

    fn on_upgrade(&self, session: &Arc<Session<Client>>) {
        if let Some(i) = self.io.shared.instrument.get() {
            i.connection_upgraded();
            for s in session.data.lock().iter() {
                i.transport_upgraded(s);
            }
        }
    }

    fn on_close(&self, session: &Arc<Session<Client>>, reason: CloseReason) {
        if let Some(i) = self.io.shared.instrument.get() {
            i.connection_closed(reason, session.transport() == TransportKind::Polling);
        }
        let reason = if self.io.shared.shutting_down.load(Ordering::Acquire) {
            DisconnectReason::ServerShuttingDown
        } else {
            reason.into()
        };
        for s in session.data.take_all() {
            s.close(reason);
        }
    }
}
