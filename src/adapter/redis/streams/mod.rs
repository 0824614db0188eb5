//! The Redis Streams adapter (feature `redis-streams`): many servers as one through a Redis
//! stream, wire-compatible with npm's `@socket.io/redis-streams-adapter` 0.3, with
//! connection state recovery across servers.
//!
//! ```no_run
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! use tower_socketio::SocketIo;
//! use tower_socketio::adapter::RecoveryConfig;
//! use tower_socketio::adapter::redis::streams::{RedisStreamsConfig, RedisStreamsLink};
//!
//! let link = RedisStreamsLink::connect("redis://127.0.0.1:6379", RedisStreamsConfig::default()).await?;
//! let (layer, io) = SocketIo::builder()
//!     .adapter(link.factory())
//!     .connection_state_recovery(RecoveryConfig::default())
//!     .build_layer();
//! io.ns("/", |_: tower_socketio::SocketRef| {});
//! link.wait_subscribed().await; // before accepting clients
//! # Ok(()) }
//! ```
//!
//! Broadcasts without ack and remote join/leave/disconnect are appended to one stream
//! (`XADD ... MAXLEN ~ max_len`), which every server reads (`XREAD BLOCK`) and delivers in
//! stream order, its own entries included: a server that loses Redis for a while reads on
//! from where it stopped when Redis comes back. Requests (fetch sockets, server-side events,
//! broadcasts with acks) and their answers go over pub/sub, as msgpack. See
//! `docs/redis-streams-protocol.md` for every message.
//!
//! **Connection state recovery** works across servers: every packet a client gets carries
//! the stream entry id it came from as its offset; a socket that leaves for a recoverable
//! reason is saved in Redis (`<session_key_prefix><pid>`, expiring after
//! `max_disconnection_duration`), and whichever server the client reconnects to takes the
//! session back once and replays, from the stream, every broadcast to its rooms after its
//! offset. Sessions saved by Node servers are restored here and the other way round.
//!
//! **Never share a `channel_prefix` with the classic Redis adapter**
//! ([`RedisLink`](super::RedisLink)): both use `<prefix>#<nsp>#`, and a classic Node server
//! crashes on the messages this adapter publishes there.
//!
//! The number of servers is counted as Node 0.3 counts it: subscribers of
//! `<channel_prefix>#<nsp>#` (one subscriber connection per server). A server that dies
//! closes its connection with it and leaves the count at once; requests then stop waiting
//! for it. (Node 0.3.1 lists `heartbeatInterval`/`heartbeatTimeout` among its options but
//! never uses them, so neither does this adapter; nothing of the kind is on the wire.)
//! Everything the cluster asks of `all_rooms` is answered from this server alone, as Node's
//! adapter does.

mod link;
mod session;

use std::sync::{Arc, OnceLock, Weak};
use std::time::Duration;

use rmpv::Value;
use tokio::sync::mpsc;

pub use link::RedisStreamsLink;

use super::link_err;
use crate::adapter::{
    AckStream, Adapter, AdapterError, BoxFuture, BroadcastOptions, LocalAdapter, LocalNamespace,
    PersistedSession, RestoredSession, Room, SocketInfo,
};
use crate::cluster::redis_streams as wire;
use crate::cluster::requests::Pending;
use crate::cluster::values::{ack_args, opts_value};
use crate::parser::{Encoded, EventPacket};

/// Settings of the Redis Streams adapter; the defaults are those of the Node adapter.
#[derive(Debug, Clone)]
pub struct RedisStreamsConfig {
    /// The stream every server appends to and reads. Default `socket.io`.
    pub stream_name: String,
    /// Prefix of the pub/sub channels (`<prefix>#<nsp>#`, `<prefix>#<nsp>#<uid>#`).
    /// Default `socket.io`. Never the key of a classic Redis adapter on the same Redis.
    pub channel_prefix: String,
    /// Length the stream is trimmed to, approximately (`MAXLEN ~`), at each append.
    /// Default 10 000. A disconnected client whose offset was trimmed away reconnects as
    /// a new socket.
    pub max_len: usize,
    /// Most entries read per `XREAD`. Default 100.
    pub read_count: usize,
    /// How long one `XREAD` blocks waiting for entries. Default 5 s.
    pub block_time: Duration,
    /// Prefix of the keys sessions are saved under (connection state recovery).
    /// Default `sio:session:`.
    pub session_key_prefix: String,
    /// Time to wait for the other servers' answers (fetch sockets, server-side events
    /// with acks, client counts of broadcasts with acks). Default 5 s, as Node's.
    pub requests_timeout: Duration,
    /// Longest each step of [`RedisStreamsLink::connect`] may take. Default 5 s.
    pub connect_timeout: Duration,
}

impl Default for RedisStreamsConfig {
    fn default() -> Self {
        Self {
            stream_name: "socket.io".into(),
            channel_prefix: "socket.io".into(),
            max_len: 10_000,
            read_count: 100,
            block_time: Duration::from_secs(5),
            session_key_prefix: "sio:session:".into(),
            requests_timeout: Duration::from_secs(5),
            connect_timeout: Duration::from_secs(5),
        }
    }
}

/// What the link keeps per namespace.
struct NsState {
    nsp: String,
    uid: String,
    /// `<prefix>#<nsp>#`: requests to every server, and how servers are counted.
    public: String,
    /// `<prefix>#<nsp>#<uid>#`: answers to this server.
    private: String,
    local: OnceLock<Weak<dyn LocalNamespace>>,
    pending: Pending<Value>,
}

impl NsState {
    fn local(&self) -> Option<Arc<dyn LocalNamespace>> {
        self.local.get().and_then(Weak::upgrade)
    }

    /// Where answers to the server `uid` go.
    fn response_channel(&self, prefix: &str, uid: &str) -> String {
        format!("{prefix}#{}#{uid}#", self.nsp)
    }
}

/// The adapter of one namespace: rooms in a [`LocalAdapter`], the rest over Redis.
pub struct RedisStreamsAdapter {
    local: LocalAdapter,
    link: Arc<link::LinkInner>,
    ns: Arc<NsState>,
}

impl std::fmt::Debug for RedisStreamsAdapter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisStreamsAdapter")
            .field("nsp", &self.ns.nsp)
            .field("uid", &self.ns.uid)
            .finish_non_exhaustive()
    }
}

impl RedisStreamsAdapter {
    /// Servers other than this one: subscribers of the public channel, as Node counts.
    async fn others(&self) -> Result<usize, AdapterError> {
        Ok(self.link.numsub(&self.ns.public).await?.saturating_sub(1))
    }

    async fn publish(&self, kind: u64, data: Value) -> Result<(), AdapterError> {
        let bytes = wire::message(kind, data, &self.ns.uid, &self.ns.nsp);
        self.link.publish(&self.ns.public, bytes).await
    }

    async fn append(&self, kind: u64, data: &Value) -> Result<String, AdapterError> {
        self.link
            .xadd(&self.ns.uid, &self.ns.nsp, kind, &wire::entry_data(data))
            .await
    }

    /// Applies a join/leave/disconnect here at once, then appends it for the others (our
    /// own entry is skipped when read back, as Node does).
    async fn remote_op(
        &self,
        opts: &BroadcastOptions,
        kind: u64,
        rest: (&str, Value),
    ) -> Result<(), AdapterError> {
        if opts.local {
            return Ok(());
        }
        let data = wire::map(vec![("opts", opts_value(opts, None)), rest]);
        self.append(kind, &data).await.map(drop)
    }
}

impl Adapter for RedisStreamsAdapter {
    fn init(&self, ns: Weak<dyn LocalNamespace>) {
        let _ = self.ns.local.set(ns);
        self.link.register(self.ns.clone());
    }
    crate::adapter::rooms_in_local_adapter!(local);

    /// Frames a packet for local delivery without appending it (socket emits and broadcasts
    /// go through [`broadcast`](Adapter::broadcast) instead). With recovery on, its offset is
    /// the newest entry already delivered here, which every packet queued before it is at or
    /// before; a Node server accepts it too.
    fn frame_broadcast(
        &self,
        ns: &dyn LocalNamespace,
        packet: &EventPacket,
        opts: &BroadcastOptions,
    ) -> Encoded {
        let offset = match ns.recovery() {
            Some(_) if !opts.volatile => self.link.delivered(),
            _ => None,
        };
        ns.parser().encode_event(packet, None, offset.as_deref())
    }

    /// Appends the broadcast to the stream and returns once this server's reader has
    /// delivered it here (with its entry id as offset when recovery is on), so that every
    /// server delivers in stream order. Without Redis it is delivered here alone and the
    /// error returned.
    fn broadcast<'a>(
        &'a self,
        ns: &'a dyn LocalNamespace,
        packet: EventPacket,
        opts: BroadcastOptions,
    ) -> BoxFuture<'a, Result<usize, AdapterError>> {
        Box::pin(async move {
            let plain = || ns.deliver(&ns.parser().encode_event(&packet, None, None), &opts);
            if opts.local {
                return Ok(plain());
            }
            let data = wire::broadcast_data(&packet, &opts, None).map_err(link_err)?;
            match self.append(wire::BROADCAST, &data).await {
                Ok(id) => Ok(self
                    .link
                    .own_delivered(&id, self.link.config.requests_timeout)
                    .await),
                Err(e) => {
                    plain();
                    Err(e)
                }
            }
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
            let others = self.others().await?;
            if others == 0 {
                return Ok(AckStream { expected, rx });
            }
            let mut request = self.ns.pending.start();
            let data = wire::broadcast_data(
                &packet,
                &opts,
                Some((&request.id, timeout.as_millis() as u64)),
            )
            .map_err(link_err)?;
            self.publish(wire::BROADCAST, data).await?;
            // First every other server's client count, then acks as they come; acks that
            // overtake a count are kept in order.
            let deadline =
                tokio::time::Instant::now() + timeout.min(self.link.config.requests_timeout);
            let parser = ns.parser();
            let mut counts = 0;
            while counts < others {
                match tokio::time::timeout_at(deadline, request.rx.recv()).await {
                    Ok(Some(v)) => match link::response_kind(&v) {
                        Some(wire::BROADCAST_CLIENT_COUNT) => {
                            counts += 1;
                            expected += link::response_data(&v, "clientCount")
                                .and_then(Value::as_u64)
                                .unwrap_or(0) as usize;
                        }
                        Some(wire::BROADCAST_ACK) => {
                            let _ = tx
                                .send((None, ack_args(parser, link::response_data(&v, "packet"))));
                        }
                        _ => {}
                    },
                    Ok(None) | Err(_) => {
                        tracing::warn!(
                            got = counts,
                            expected = others,
                            "broadcast with ack: not every server gave its count"
                        );
                        break;
                    }
                }
            }
            request.listen_until(
                self.ns.clone(),
                |ns| &ns.pending,
                tokio::time::Instant::now() + timeout,
                move |v| {
                    if link::response_kind(&v) == Some(wire::BROADCAST_ACK) {
                        let _ =
                            tx.send((None, ack_args(parser, link::response_data(&v, "packet"))));
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
            if opts.local {
                return Ok(out);
            }
            let others = self.others().await?;
            if others == 0 {
                return Ok(out);
            }
            let mut request = self.ns.pending.start();
            let data = wire::map(vec![
                ("opts", opts_value(&opts, None)),
                ("requestId", Value::from(request.id.as_str())),
            ]);
            self.publish(wire::FETCH_SOCKETS, data).await?;
            for answer in request
                .collect(others, self.link.config.requests_timeout)
                .await?
            {
                if let Some(Value::Array(sockets)) = link::response_data(&answer, "sockets") {
                    for s in sockets {
                        let json: serde_json::Value =
                            rmpv::ext::from_value(s.clone()).unwrap_or_default();
                        if let Ok(mut info) = serde_json::from_value::<SocketInfo>(json) {
                            info.ns = self.ns.nsp.clone();
                            out.push(info);
                        }
                    }
                }
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
        Box::pin(async move {
            ns.rooms_op(&opts, &rooms, true);
            self.remote_op(&opts, wire::SOCKETS_JOIN, ("rooms", rooms_value(&rooms)))
                .await
        })
    }

    fn del_sockets<'a>(
        &'a self,
        ns: &'a dyn LocalNamespace,
        opts: BroadcastOptions,
        rooms: Vec<Room>,
    ) -> BoxFuture<'a, Result<(), AdapterError>> {
        Box::pin(async move {
            ns.rooms_op(&opts, &rooms, false);
            self.remote_op(&opts, wire::SOCKETS_LEAVE, ("rooms", rooms_value(&rooms)))
                .await
        })
    }

    fn disconnect_sockets<'a>(
        &'a self,
        ns: &'a dyn LocalNamespace,
        opts: BroadcastOptions,
        close: bool,
    ) -> BoxFuture<'a, Result<(), AdapterError>> {
        Box::pin(async move {
            ns.disconnect(&opts, close);
            self.remote_op(
                &opts,
                wire::DISCONNECT_SOCKETS,
                ("close", Value::from(close)),
            )
            .await
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
            for a in args {
                packet.push(rmpv::ext::to_value(a).map_err(link_err)?);
            }
            let Some(timeout) = timeout else {
                let data = wire::map(vec![("packet", Value::Array(packet))]);
                return self
                    .publish(wire::SERVER_SIDE_EMIT, data)
                    .await
                    .map(|_| Vec::new());
            };
            let others = self.others().await?;
            if others == 0 {
                return Ok(Vec::new());
            }
            let mut request = self.ns.pending.start();
            let data = wire::map(vec![
                ("requestId", Value::from(request.id.as_str())),
                ("packet", Value::Array(packet)),
            ]);
            self.publish(wire::SERVER_SIDE_EMIT, data).await?;
            Ok(request
                .collect(others, timeout)
                .await?
                .into_iter()
                .map(|v| {
                    link::response_data(&v, "packet")
                        .and_then(|d| rmpv::ext::from_value(d.clone()).ok())
                        .unwrap_or_default()
                })
                .collect())
        })
    }

    fn persist_session(&self, session: PersistedSession) -> BoxFuture<'_, ()> {
        Box::pin(async move {
            let Some(recovery) = self.ns.local().and_then(|l| l.recovery()) else {
                return;
            };
            session::persist(&self.link, session, recovery.max_disconnection_duration).await;
        })
    }

    fn restore_session<'a>(
        &'a self,
        pid: &'a str,
        offset: &'a str,
    ) -> BoxFuture<'a, Option<RestoredSession>> {
        Box::pin(async move {
            let local = self.ns.local()?;
            session::restore(&self.link, &*local, pid, offset).await
        })
    }

    fn server_count(&self) -> BoxFuture<'_, Result<usize, AdapterError>> {
        Box::pin(async move { Ok(self.link.numsub(&self.ns.public).await?.max(1)) })
    }
}

fn rooms_value(rooms: &[Room]) -> Value {
    Value::Array(rooms.iter().map(|r| Value::from(r.as_ref())).collect())
}
