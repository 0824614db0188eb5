//! The Redis adapter (feature `redis`): many servers as one, wire-compatible with npm's
//! `@socket.io/redis-adapter` v8 (classic pub/sub) and `@socket.io/redis-emitter` v5, so a
//! Rust server can join a Node.js socket.io cluster and take what any emitter publishes.
//!
//! ```no_run
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! use tower_socketio::SocketIo;
//! use tower_socketio::adapter::redis::{RedisAdapterConfig, RedisLink};
//!
//! let link = RedisLink::connect("redis://127.0.0.1:6379", RedisAdapterConfig::default()).await?;
//! let (layer, io) = SocketIo::builder().adapter(link.factory()).build_layer();
//! io.ns("/", |_: tower_socketio::SocketRef| {});
//! link.wait_subscribed().await; // before accepting clients
//! # Ok(()) }
//! ```
//!
//! One [`RedisLink`] per server holds one subscriber connection (Node counts the servers of a
//! cluster by the subscribers of each request channel) and one publishing connection. Both
//! reconnect by themselves after a Redis restart; meanwhile local sockets are served as
//! usual, cluster operations fail with [`AdapterError::Link`] or time out with
//! [`AdapterError::Timeout`], and the subscriptions are renewed on reconnection.
//!
//! Sharded pub/sub (`createShardedAdapter`) is a different protocol and is not spoken here.

mod link;
mod pubsub;
#[cfg(feature = "redis-streams")]
pub mod streams;

use std::sync::{Arc, OnceLock, Weak};
use std::time::Duration;

use rmpv::Value;
use tokio::sync::mpsc;

pub use link::{RedisConnectError, RedisLink};

use super::{
    AckStream, Adapter, AdapterError, BoxFuture, BroadcastOptions, LocalAdapter, LocalNamespace,
    Room, SocketInfo,
};
use crate::cluster::redis as wire;
use crate::cluster::requests::Pending;
use crate::cluster::values::{self as values, ack_args, get, opts_json, opts_value, packet_value};
use crate::parser::EventPacket;

/// Settings of the Redis adapter.
#[derive(Debug, Clone)]
pub struct RedisAdapterConfig {
    /// Prefix of every channel, as the Node adapter's `key`. Default `socket.io`.
    pub key: String,
    /// Time to wait for the other servers' answers. Default 5 s (as Node's
    /// `requestsTimeout`).
    pub requests_timeout: Duration,
    /// Longest wait for each step of [`RedisLink::connect`] (TCP connect and handshake of
    /// each connection) before it fails with [`RedisConnectError::Timeout`]; a refused
    /// connection fails at once. Default 5 s.
    pub connect_timeout: Duration,
}

impl Default for RedisAdapterConfig {
    fn default() -> Self {
        Self {
            key: "socket.io".into(),
            requests_timeout: Duration::from_secs(5),
            connect_timeout: Duration::from_secs(5),
        }
    }
}

/// What the link keeps per namespace: ids, channels, pending requests and the namespace.
struct NsState {
    nsp: String,
    uid: String,
    channels: wire::Channels,
    local: OnceLock<Weak<dyn LocalNamespace>>,
    /// Requests waiting for answers.
    pending: Pending<Value>,
}

impl NsState {
    fn local(&self) -> Option<Arc<dyn LocalNamespace>> {
        self.local.get().and_then(Weak::upgrade)
    }
}

/// The adapter of one namespace: rooms in a [`LocalAdapter`], the rest over Redis.
pub struct RedisAdapter {
    local: LocalAdapter,
    link: Arc<link::LinkInner>,
    ns: Arc<NsState>,
}

impl std::fmt::Debug for RedisAdapter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisAdapter")
            .field("nsp", &self.ns.nsp)
            .field("uid", &self.ns.uid)
            .finish_non_exhaustive()
    }
}

fn link_err(e: impl std::fmt::Display) -> AdapterError {
    AdapterError::Link(e.to_string())
}

impl RedisAdapter {
    /// Servers other than this one, counted as Node counts them: subscribers of the
    /// request channel.
    async fn others(&self) -> Result<usize, AdapterError> {
        Ok(self
            .link
            .numsub(&self.ns.channels.request)
            .await?
            .saturating_sub(1))
    }

    async fn publish_request(&self, body: serde_json::Value) -> Result<(), AdapterError> {
        let bytes = serde_json::to_vec(&body).map_err(link_err)?;
        self.link.publish(&self.ns.channels.request, bytes).await
    }
}

impl Adapter for RedisAdapter {
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
                let msg = Value::Array(vec![
                    Value::from(self.ns.uid.as_str()),
                    packet_value(&self.ns.nsp, &packet.event, args),
                    opts_value(&opts, None),
                ]);
                let channel = self.ns.channels.broadcast_for(&opts);
                self.link.publish(&channel, values::encode(&msg)).await?;
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
            let others = self.others().await?;
            if others == 0 {
                return Ok(AckStream { expected, rx });
            }
            let mut request = self.ns.pending.start();
            let args = packet.args_values().map_err(link_err)?;
            let timeout_ms = timeout.as_millis() as u64;
            let msg = Value::Map(vec![
                (Value::from("uid"), Value::from(self.ns.uid.as_str())),
                (Value::from("requestId"), Value::from(request.id.as_str())),
                (Value::from("type"), Value::from(wire::BROADCAST)),
                (
                    Value::from("packet"),
                    packet_value(&self.ns.nsp, &packet.event, args),
                ),
                (Value::from("opts"), opts_value(&opts, Some(timeout_ms))),
            ]);
            self.link
                .publish(&self.ns.channels.request, values::encode(&msg))
                .await?;
            // First every other server's client count, then acks as they come: acks that
            // overtake a count are kept in order.
            let deadline =
                tokio::time::Instant::now() + timeout.min(self.link.config.requests_timeout);
            let mut counts = 0;
            let parser = ns.parser();
            while counts < others {
                match tokio::time::timeout_at(deadline, request.rx.recv()).await {
                    Ok(Some(v)) => match get(&v, "type").and_then(Value::as_u64) {
                        Some(wire::BROADCAST_CLIENT_COUNT) => {
                            counts += 1;
                            expected += get(&v, "clientCount").and_then(Value::as_u64).unwrap_or(0)
                                as usize;
                        }
                        Some(wire::BROADCAST_ACK) => {
                            let _ = tx.send((None, ack_args(parser, get(&v, "packet"))));
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
            // The rest of the acks arrive later: forward them until the timeout.
            request.listen_until(
                self.ns.clone(),
                |ns| &ns.pending,
                tokio::time::Instant::now() + timeout,
                move |v| {
                    if get(&v, "type").and_then(Value::as_u64) == Some(wire::BROADCAST_ACK) {
                        let _ = tx.send((None, ack_args(parser, get(&v, "packet"))));
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
            self.publish_request(serde_json::json!({
                "uid": self.ns.uid,
                "requestId": request.id,
                "type": wire::REMOTE_FETCH,
                "opts": opts_json(&opts),
            }))
            .await?;
            for answer in request
                .collect(others, self.link.config.requests_timeout)
                .await?
            {
                if let Some(Value::Array(sockets)) = get(&answer, "sockets") {
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
        Box::pin(async move { self.remote_rooms(ns, opts, rooms, wire::REMOTE_JOIN).await })
    }

    fn del_sockets<'a>(
        &'a self,
        ns: &'a dyn LocalNamespace,
        opts: BroadcastOptions,
        rooms: Vec<Room>,
    ) -> BoxFuture<'a, Result<(), AdapterError>> {
        Box::pin(async move { self.remote_rooms(ns, opts, rooms, wire::REMOTE_LEAVE).await })
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
            self.publish_request(serde_json::json!({
                "uid": self.ns.uid,
                "type": wire::REMOTE_DISCONNECT,
                "opts": opts_json(&opts),
                "close": close,
            }))
            .await
        })
    }

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
            let others = self.others().await?;
            if others > 0 {
                let mut request = self.ns.pending.start();
                self.publish_request(serde_json::json!({
                    "uid": self.ns.uid,
                    "requestId": request.id,
                    "type": wire::ALL_ROOMS,
                }))
                .await?;
                for answer in request
                    .collect(others, self.link.config.requests_timeout)
                    .await?
                {
                    if let Some(Value::Array(list)) = get(&answer, "rooms") {
                        rooms.extend(list.iter().filter_map(|r| r.as_str().map(str::to_owned)));
                    }
                }
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
            let mut data = vec![serde_json::Value::from(event)];
            data.extend(args);
            let Some(timeout) = timeout else {
                self.publish_request(serde_json::json!({
                    "uid": self.ns.uid,
                    "type": wire::SERVER_SIDE_EMIT,
                    "data": data,
                }))
                .await?;
                return Ok(Vec::new());
            };
            let others = self.others().await?;
            if others == 0 {
                return Ok(Vec::new());
            }
            let mut request = self.ns.pending.start();
            self.publish_request(serde_json::json!({
                "uid": self.ns.uid,
                "requestId": request.id,
                "type": wire::SERVER_SIDE_EMIT,
                "data": data,
            }))
            .await?;
            Ok(request
                .collect(others, timeout)
                .await?
                .into_iter()
                .map(|v| {
                    get(&v, "data")
                        .and_then(|d| rmpv::ext::from_value(d.clone()).ok())
                        .unwrap_or_default()
                })
                .collect())
        })
    }

    fn server_count(&self) -> BoxFuture<'_, Result<usize, AdapterError>> {
        Box::pin(async move { Ok(self.link.numsub(&self.ns.channels.request).await?.max(1)) })
    }
}

impl RedisAdapter {
    /// Joins or leaves rooms here at once and asks the other servers to do the same; our
    /// own echo of the request is then skipped by uid.
    async fn remote_rooms(
        &self,
        ns: &dyn LocalNamespace,
        opts: BroadcastOptions,
        rooms: Vec<Room>,
        kind: u64,
    ) -> Result<(), AdapterError> {
        ns.rooms_op(&opts, &rooms, kind == wire::REMOTE_JOIN);
        if opts.local {
            return Ok(());
        }
        self.publish_request(serde_json::json!({
            "uid": self.ns.uid,
            "type": kind,
            "opts": opts_json(&opts),
            "rooms": rooms.iter().map(|r| r.as_ref()).collect::<Vec<_>>(),
        }))
        .await
    }
}
