//! The Postgres adapter (feature `postgres`): many servers as one through PostgreSQL's
//! LISTEN/NOTIFY, wire-compatible with npm's `@socket.io/postgres-adapter` 0.5 and
//! `@socket.io/postgres-emitter` 0.1, so a Rust server joins a Node.js socket.io cluster as
//! an equal member and takes what any emitter publishes. The protocol is written down in
//! `docs/postgres-protocol.md`.
//!
//! ```no_run
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! use tower_socketio::SocketIo;
//! use tower_socketio::adapter::postgres::{PostgresAdapterConfig, PostgresLink};
//!
//! let link = PostgresLink::connect(
//!     "postgres://postgres@127.0.0.1:5432/app",
//!     PostgresAdapterConfig::default(),
//! )
//! .await?;
//! let (layer, io) = SocketIo::builder().adapter(link.factory()).build_layer();
//! io.ns("/", |_: tower_socketio::SocketRef| {});
//! link.wait_listening().await; // before accepting clients
//! # Ok(()) }
//! ```
//!
//! One [`PostgresLink`] per server holds two connections: one that LISTENs on the channel
//! of every namespace (and reads the attachments table), one that publishes, in order. Both
//! reconnect by themselves after PostgreSQL restarts or drops them; meanwhile local sockets
//! are served as usual and cluster operations fail with [`AdapterError::Link`]. After the
//! listening connection comes back, it LISTENs again and greets the cluster, so every node
//! announces itself anew.
//!
//! Nodes count each other by heartbeat, as Node's adapter does: a node is every sender
//! heard from within [`PostgresAdapterConfig::heartbeat_timeout`]; a node not heard from yet
//! is not waited for, and a node that dies is dropped after that timeout.
//!
//! Unlike Node's adapter, which may reorder them, one server's broadcasts reach the other
//! servers in the order they were emitted, attachments included. Messages of
//! `@socket.io/postgres-emitter` 0.1 that lack the top-level `nsp` (every one it sends) are
//! taken as messages of the namespace whose channel they came on (`/` for the emitter's
//! default); Node's adapter drops them.

mod inbound;
mod link;
mod nodes;

use std::collections::HashSet;
use std::sync::{Arc, Mutex, OnceLock, Weak};
use std::time::Duration;

use rmpv::Value;
use tokio::sync::mpsc;
use tokio::time::Instant;

pub use link::{PostgresLink, PostgresLinkError};

use super::{
    AckStream, Adapter, AdapterError, BoxFuture, BroadcastOptions, LocalAdapter, LocalNamespace,
    Room, SocketInfo,
};
use crate::cluster::postgres as wire;
use crate::cluster::requests::Pending;
use crate::cluster::values::{ack_args, get, get_str, opts_value, packet_value};
use crate::parser::EventPacket;

/// Settings of the Postgres adapter; the defaults are those of Node's adapter.
#[derive(Debug, Clone)]
pub struct PostgresAdapterConfig {
    /// Prefix of the NOTIFY channel of each namespace (`<prefix>#<nsp>`), as Node's
    /// `channelPrefix`. Default `socket.io`.
    pub channel_prefix: String,
    /// The attachments table, as Node's `tableName`: created when missing, written into
    /// unquoted (so folded to lower case) and therefore limited to letters, digits, `_`, `$`
    /// and one `.` between a schema and a table. Default `socket_io_attachments`.
    pub table_name: String,
    /// Messages whose JSON has this many bytes or more go through the attachments table, as
    /// Node's `payloadThreshold`. PostgreSQL refuses a NOTIFY payload of 8000 bytes or more.
    /// Default 8000.
    pub payload_threshold: usize,
    /// How often rows older than this are deleted from the attachments table, as Node's
    /// `cleanupInterval`. Default 30 s.
    pub cleanup_interval: Duration,
    /// Longest silence before this server sends a heartbeat, as Node's `heartbeatInterval`.
    /// Default 5 s.
    pub heartbeat_interval: Duration,
    /// A node silent for this long is dropped from the cluster, as Node's
    /// `heartbeatTimeout`. Default 10 s.
    pub heartbeat_timeout: Duration,
    /// Time to wait for the other servers' answers (fetch sockets, rooms, ack counts), as
    /// Node's default. Default 5 s.
    pub requests_timeout: Duration,
}

impl Default for PostgresAdapterConfig {
    fn default() -> Self {
        Self {
            channel_prefix: "socket.io".into(),
            table_name: "socket_io_attachments".into(),
            payload_threshold: 8000,
            cleanup_interval: Duration::from_secs(30),
            heartbeat_interval: Duration::from_secs(5),
            heartbeat_timeout: Duration::from_secs(10),
            requests_timeout: Duration::from_secs(5),
        }
    }
}

/// What the link keeps per namespace: ids, channel, known nodes, pending requests.
struct NsState {
    nsp: String,
    uid: String,
    channel: String,
    local: OnceLock<Weak<dyn LocalNamespace>>,
    pending: Pending<Value>,
    nodes: nodes::Nodes,
    /// When this server last published on the channel (a heartbeat is due after a silence).
    last_publish: Mutex<Instant>,
}

impl NsState {
    fn local(&self) -> Option<Arc<dyn LocalNamespace>> {
        self.local.get().and_then(Weak::upgrade)
    }

    /// A message of this namespace from this server.
    fn message(&self, kind: u64, data: Option<Value>) -> Value {
        wire::message(kind, data, &self.uid, &self.nsp)
    }

    fn published(&self) {
        *self.last_publish.lock().unwrap_or_else(|e| e.into_inner()) = Instant::now();
    }

    fn silent_for(&self) -> Duration {
        self.last_publish
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .elapsed()
    }

    /// Waits for one answer from each node of `missing` (a node dropped meanwhile is no
    /// longer waited for), handing every message of the request to `f`, which tells whether
    /// it is its sender's answer.
    async fn gather(
        &self,
        rx: &mut mpsc::UnboundedReceiver<Value>,
        mut missing: HashSet<String>,
        deadline: Instant,
        mut f: impl FnMut(&Value) -> bool,
    ) -> Result<(), AdapterError> {
        let mut dropped = self.nodes.watch_dropped();
        while !missing.is_empty() {
            tokio::select! {
                answer = tokio::time::timeout_at(deadline, rx.recv()) => match answer {
                    Ok(Some(v)) => {
                        if f(&v) {
                            if let Some(uid) = get_str(&v, "uid") {
                                missing.remove(uid);
                            }
                        }
                    }
                    Ok(None) | Err(_) => {
                        tracing::warn!(ns = %self.nsp, missing = missing.len(), "cluster request timed out");
                        return Err(AdapterError::Timeout);
                    }
                },
                _ = dropped.changed() => missing.retain(|uid| self.nodes.is_alive(uid)),
            }
        }
        Ok(())
    }
}

/// The adapter of one namespace: rooms in a [`LocalAdapter`], the rest over PostgreSQL.
pub struct PostgresAdapter {
    local: LocalAdapter,
    link: Arc<link::LinkInner>,
    ns: Arc<NsState>,
}

impl std::fmt::Debug for PostgresAdapter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PostgresAdapter")
            .field("nsp", &self.ns.nsp)
            .field("uid", &self.ns.uid)
            .finish_non_exhaustive()
    }
}

impl Drop for PostgresAdapter {
    fn drop(&mut self) {
        // Tell the others at once rather than after the heartbeat timeout.
        self.link
            .send(&self.ns, self.ns.message(wire::ADAPTER_CLOSE, None));
    }
}

fn link_err(e: impl std::fmt::Display) -> AdapterError {
    AdapterError::Link(e.to_string())
}

fn map(entries: Vec<(&str, Value)>) -> Value {
    Value::Map(
        entries
            .into_iter()
            .map(|(k, v)| (Value::from(k), v))
            .collect(),
    )
}

fn json_value(v: serde_json::Value) -> Value {
    rmpv::ext::to_value(v).unwrap_or(Value::Nil)
}

impl PostgresAdapter {
    async fn publish(&self, kind: u64, data: Value) -> Result<(), AdapterError> {
        self.link
            .publish(&self.ns, self.ns.message(kind, Some(data)))
            .await
    }

    /// Joins or leaves rooms here at once and tells the other servers (which skip our own
    /// echo, as every message of ours).
    async fn remote_rooms(
        &self,
        ns: &dyn LocalNamespace,
        opts: BroadcastOptions,
        rooms: Vec<Room>,
        join: bool,
    ) -> Result<(), AdapterError> {
        ns.rooms_op(&opts, &rooms, join);
        if opts.local {
            return Ok(());
        }
        let rooms = Value::Array(rooms.iter().map(|r| Value::from(r.as_ref())).collect());
        let kind = if join {
            wire::SOCKETS_JOIN
        } else {
            wire::SOCKETS_LEAVE
        };
        self.publish(
            kind,
            map(vec![("opts", opts_value(&opts, None)), ("rooms", rooms)]),
        )
        .await
    }

    /// Asks every live node for its sockets matching `opts`.
    async fn remote_sockets(
        &self,
        opts: &BroadcastOptions,
    ) -> Result<Vec<SocketInfo>, AdapterError> {
        let others = self.ns.nodes.alive();
        if others.is_empty() {
            return Ok(Vec::new());
        }
        let mut request = self.ns.pending.start();
        self.publish(
            wire::FETCH_SOCKETS,
            map(vec![
                ("opts", opts_value(opts, None)),
                ("requestId", Value::from(request.id.as_str())),
            ]),
        )
        .await?;
        let deadline = Instant::now() + self.link.config.requests_timeout;
        let mut out = Vec::new();
        self.ns
            .gather(&mut request.rx, others, deadline, |v| {
                let data = get(v, "data");
                if get(v, "type").and_then(Value::as_u64) != Some(wire::FETCH_SOCKETS_RESPONSE) {
                    return false;
                }
                if let Some(Value::Array(sockets)) = data.and_then(|d| get(d, "sockets")) {
                    for s in sockets {
                        let json: serde_json::Value =
                            rmpv::ext::from_value(s.clone()).unwrap_or_default();
                        if let Ok(mut info) = serde_json::from_value::<SocketInfo>(json) {
                            info.ns = self.ns.nsp.clone();
                            out.push(info);
                        }
                    }
                }
                true
            })
            .await?;
        Ok(out)
    }
}

impl Adapter for PostgresAdapter {
    fn init(&self, ns: Weak<dyn LocalNamespace>) {
        let _ = self.ns.local.set(ns);
        self.link.register(self.ns.clone());
    }
    crate::adapter::rooms_in_local_adapter!(local);

    fn broadcast<'a>(
        &'a self,
        ns: &'a dyn LocalNamespace,
        packet: EventPacket,
        opts: BroadcastOptions,
    ) -> BoxFuture<'a, Result<usize, AdapterError>> {
        Box::pin(async move {
            let n = ns.deliver(&self.frame_broadcast(ns, &packet, &opts), &opts);
            if !opts.local && !self.local.targets_one_local_socket(&opts) {
                let args = packet.args_values().map_err(link_err)?;
                let data = map(vec![
                    ("packet", packet_value(&self.ns.nsp, &packet.event, args)),
                    ("opts", opts_value(&opts, None)),
                ]);
                self.publish(wire::BROADCAST, data).await?;
            }
            Ok(n)
        })
    }

    fn broadcast_with_ack<'a>(
        &'a self,
        ns: &'a dyn LocalNamespace,
        packet: EventPacket,
        opts: BroadcastOptions,
        timeout: Duration,
    ) -> BoxFuture<'a, Result<AckStream, AdapterError>> {
        Box::pin(async move {
            let (tx, rx) = mpsc::unbounded_channel();
            let mut expected = ns.deliver_with_ack(&packet, &opts, timeout, tx.clone());
            if opts.local {
                return Ok(AckStream { expected, rx });
            }
            let others = self.ns.nodes.alive();
            if others.is_empty() {
                return Ok(AckStream { expected, rx });
            }
            let mut request = self.ns.pending.start();
            let args = packet.args_values().map_err(link_err)?;
            let data = map(vec![
                ("packet", packet_value(&self.ns.nsp, &packet.event, args)),
                ("requestId", Value::from(request.id.as_str())),
                ("opts", opts_value(&opts, Some(timeout.as_millis() as u64))),
            ]);
            self.publish(wire::BROADCAST, data).await?;
            // First every other node's client count, then acks as they come; acks that
            // overtake a count are passed on at once.
            let parser = ns.parser();
            let forward = move |v: &Value, tx: &mpsc::UnboundedSender<_>| {
                let data = get(v, "data");
                let _ = tx.send((None, ack_args(parser, data.and_then(|d| get(d, "packet")))));
            };
            let deadline = Instant::now() + timeout.min(self.link.config.requests_timeout);
            let counted = self
                .ns
                .gather(&mut request.rx, others, deadline, |v| {
                    match get(v, "type").and_then(Value::as_u64) {
                        Some(wire::BROADCAST_CLIENT_COUNT) => {
                            expected += get(v, "data")
                                .and_then(|d| get(d, "clientCount"))
                                .and_then(Value::as_u64)
                                .unwrap_or(0) as usize;
                            true
                        }
                        Some(wire::BROADCAST_ACK) => {
                            forward(v, &tx);
                            false
                        }
                        _ => false,
                    }
                })
                .await;
            if counted.is_err() {
                tracing::warn!("broadcast with ack: not every server gave its count");
            }
            // The rest of the acks arrive later: forward them until the timeout.
            request.listen_until(
                self.ns.clone(),
                |ns| &ns.pending,
                Instant::now() + timeout,
                move |v| {
                    if get(&v, "type").and_then(Value::as_u64) == Some(wire::BROADCAST_ACK) {
                        forward(&v, &tx);
                    }
                },
            );
            Ok(AckStream { expected, rx })
        })
    }

    fn fetch_sockets<'a>(
        &'a self,
        ns: &'a dyn LocalNamespace,
        opts: BroadcastOptions,
    ) -> BoxFuture<'a, Result<Vec<SocketInfo>, AdapterError>> {
        Box::pin(async move {
            let mut out = ns.socket_infos(&opts);
            if !opts.local {
                out.extend(self.remote_sockets(&opts).await?);
            }
            Ok(out)
        })
    }

    fn add_sockets<'a>(
        &'a self,
        ns: &'a dyn LocalNamespace,
        opts: BroadcastOptions,
        rooms: Vec<Room>,
    ) -> BoxFuture<'a, Result<(), AdapterError>> {
        Box::pin(async move { self.remote_rooms(ns, opts, rooms, true).await })
    }

    fn del_sockets<'a>(
        &'a self,
        ns: &'a dyn LocalNamespace,
        opts: BroadcastOptions,
        rooms: Vec<Room>,
    ) -> BoxFuture<'a, Result<(), AdapterError>> {
        Box::pin(async move { self.remote_rooms(ns, opts, rooms, false).await })
    }

    fn disconnect_sockets<'a>(
        &'a self,
        ns: &'a dyn LocalNamespace,
        opts: BroadcastOptions,
        close: bool,
    ) -> BoxFuture<'a, Result<(), AdapterError>> {
        Box::pin(async move {
            ns.disconnect(&opts, close);
            if opts.local {
                return Ok(());
            }
            self.publish(
                wire::DISCONNECT_SOCKETS,
                map(vec![
                    ("opts", opts_value(&opts, None)),
                    ("close", Value::Boolean(close)),
                ]),
            )
            .await
        })
    }

    /// Node's protocol has no room-list request: the rooms of the other servers are those
    /// of their sockets, fetched as [`fetch_sockets`](Adapter::fetch_sockets) does.
    fn all_rooms<'a>(
        &'a self,
        ns: &'a dyn LocalNamespace,
    ) -> BoxFuture<'a, Result<Vec<Room>, AdapterError>> {
        let _ = ns;
        Box::pin(async move {
            let mut rooms: std::collections::BTreeSet<String> = self
                .local
                .rooms()
                .into_iter()
                .map(|r| r.into_owned())
                .collect();
            for socket in self.remote_sockets(&BroadcastOptions::default()).await? {
                rooms.extend(socket.rooms.into_iter().filter(|r| *r != socket.id));
            }
            Ok(rooms.into_iter().map(Room::Owned).collect())
        })
    }

    fn server_side_emit<'a>(
        &'a self,
        ns: &'a dyn LocalNamespace,
        event: String,
        args: Vec<serde_json::Value>,
        timeout: Option<Duration>,
    ) -> BoxFuture<'a, Result<Vec<serde_json::Value>, AdapterError>> {
        let _ = ns;
        Box::pin(async move {
            let mut packet = vec![Value::from(event)];
            packet.extend(args.into_iter().map(json_value));
            let packet = Value::Array(packet);
            let Some(timeout) = timeout else {
                return self
                    .publish(wire::SERVER_SIDE_EMIT, map(vec![("packet", packet)]))
                    .await
                    .map(|()| Vec::new());
            };
            let others = self.ns.nodes.alive();
            if others.is_empty() {
                return Ok(Vec::new());
            }
            let mut request = self.ns.pending.start();
            self.publish(
                wire::SERVER_SIDE_EMIT,
                map(vec![
                    ("requestId", Value::from(request.id.as_str())),
                    ("packet", packet),
                ]),
            )
            .await?;
            let mut answers = Vec::new();
            self.ns
                .gather(&mut request.rx, others, Instant::now() + timeout, |v| {
                    if get(v, "type").and_then(Value::as_u64)
                        != Some(wire::SERVER_SIDE_EMIT_RESPONSE)
                    {
                        return false;
                    }
                    let answer = get(v, "data")
                        .and_then(|d| get(d, "packet"))
                        .and_then(|p| rmpv::ext::from_value(p.clone()).ok())
                        .unwrap_or_default();
                    answers.push(answer);
                    true
                })
                .await?;
            Ok(answers)
        })
    }

    fn server_count(&self) -> BoxFuture<'_, Result<usize, AdapterError>> {
        Box::pin(async move { Ok(1 + self.ns.nodes.alive().len()) })
    }
}
