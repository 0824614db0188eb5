//! Rooms and the adapter that keeps them.
//!
//! An [`Adapter`] knows which socket of a namespace is in which room, and picks the sockets a
//! broadcast reaches. [`LocalAdapter`], the default, keeps this in memory for one server.
//! Every socket is implicitly in the room named by its own id.
//!
//! # Plugging in a cluster adapter
//! Give the builder an [`AdapterFactory`] (`SocketIoBuilder::adapter`). The adapter keeps a
//! [`LocalAdapter`] for room membership on this server and overrides the `async` cluster
//! methods of [`Adapter`]: publish the [`EventPacket`] of a broadcast to the other servers
//! (and deliver it locally through [`LocalNamespace::deliver`]), gather their socket
//! counts and acks, answer their requests through the [`LocalNamespace`] handle that
//! [`Adapter::init`] hands over. Handlers never see the adapter's type.

mod local;
#[cfg(feature = "postgres")]
pub mod postgres;
mod recovery;
#[cfg(feature = "redis")]
pub mod redis;

use std::borrow::Cow;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Weak};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio::sync::{mpsc, oneshot};

use crate::engine::Sid;
use crate::errors::AckError;
use crate::parser::{Args, Encoded, EventPacket, Parser};

pub use local::LocalAdapter;
pub(crate) use recovery::RecoveryStore;
pub use recovery::{PersistedSession, RecoveryConfig, RestoredSession};

/// A room name.
pub type Room = Cow<'static, str>;

/// Which sockets a broadcast or a bulk operation targets.
#[derive(Debug, Clone, Default)]
pub struct BroadcastOptions {
    /// Rooms whose sockets are included; empty means every socket of the namespace.
    pub rooms: Vec<Room>,
    /// Rooms whose sockets are excluded.
    pub except: Vec<Room>,
    /// A socket excluded on its own (the sender of `socket.broadcast()`).
    pub except_sid: Option<Sid>,
    /// Stay on this server, even with a cluster adapter.
    pub local: bool,
    /// Drop the packet for sockets that cannot take it now instead of failing them.
    pub volatile: bool,
}

/// A boxed future, as the adapter's cluster methods return.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// A cluster operation failed.
#[derive(Debug, thiserror::Error)]
pub enum AdapterError {
    /// Other servers did not answer in time.
    #[error("the cluster did not answer in time")]
    Timeout,
    /// The link to the cluster failed.
    #[error("cluster link failed: {0}")]
    Link(String),
}

/// A socket as any server of the cluster describes it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SocketInfo {
    /// The socket id.
    pub id: String,
    /// Its rooms, its own id included.
    pub rooms: Vec<String>,
    /// Its namespace.
    #[serde(default)]
    pub ns: String,
    /// Its handshake, as the reference server describes it (`headers`, `time`, `address`,
    /// `issued`, `url`, `query`, `auth`).
    #[serde(default)]
    pub handshake: serde_json::Value,
    /// Its [`SocketData`](crate::SocketData), `{}` when it has none (as Node's `socket.data`
    /// starts).
    #[serde(default)]
    pub data: serde_json::Value,
}

/// One answer of a broadcast with acks: the socket (when it is on this server) and its ack.
pub type AckItem = (Option<Sid>, Result<Args, AckError>);

/// The acks of a broadcast: how many receivers to expect, and their answers as they come.
#[derive(Debug)]
pub struct AckStream {
    /// Number of sockets the packet reached, cluster-wide.
    pub expected: usize,
    /// The answers; ends when every expected answer (or its timeout) is in.
    pub rx: mpsc::UnboundedReceiver<AckItem>,
}

/// What an adapter may ask of this server's side of a namespace.
pub trait LocalNamespace: Send + Sync + 'static {
    /// The namespace path.
    fn path(&self) -> &str;
    /// The wire format in use.
    fn parser(&self) -> Parser;
    /// Queues a packet to the local sockets the options select; returns how many took it.
    fn deliver(&self, packet: &Encoded, opts: &BroadcastOptions) -> usize;
    /// Emits to the local sockets selected, with an ack id, sending each answer (or timeout)
    /// into `tx`; returns how many sockets it reached.
    fn deliver_with_ack(
        &self,
        packet: &EventPacket,
        opts: &BroadcastOptions,
        timeout: Duration,
        tx: mpsc::UnboundedSender<AckItem>,
    ) -> usize;
    /// Describes the local sockets selected.
    fn socket_infos(&self, opts: &BroadcastOptions) -> Vec<SocketInfo>;
    /// Disconnects the local sockets selected; with `close`, their whole connection.
    fn disconnect(&self, opts: &BroadcastOptions, close: bool);
    /// Makes the local sockets selected join (`join`) or leave rooms.
    fn rooms_op(&self, opts: &BroadcastOptions, rooms: &[Room], join: bool);
    /// The local rooms (socket-id rooms excluded).
    fn rooms(&self) -> Vec<Room>;
    /// Runs this server's handler of a server-side event another server emitted. When that
    /// server waits for an answer, `ack` carries it back (once); it is dropped unanswered
    /// when the handler gives none or there is no handler (the sender then times out, as
    /// with the reference server).
    fn server_event(
        &self,
        event: &str,
        args: &[serde_json::Value],
        ack: Option<oneshot::Sender<serde_json::Value>>,
    );
    /// [`server_event`](Self::server_event) for a sender that waits: runs the handler now
    /// and resolves to its answer, or to `None` once it is clear no answer will come (no
    /// handler, or the handler dropped its ack). Spawn it; publish the answer when it comes.
    fn server_event_with_ack(
        &self,
        event: &str,
        args: &[serde_json::Value],
    ) -> BoxFuture<'static, Option<serde_json::Value>> {
        let (tx, rx) = oneshot::channel();
        self.server_event(event, args, Some(tx));
        Box::pin(async move { rx.await.ok() })
    }
    /// The connection state recovery settings of the server, `None` when it is off: a
    /// cluster adapter that keeps sessions and offsets itself (Redis Streams) needs them.
    fn recovery(&self) -> Option<RecoveryConfig> {
        None
    }
}

/// Keeps room membership for one namespace, finds the sockets a broadcast reaches, and
/// carries operations to the other servers of a cluster.
///
/// The room methods are synchronous and never block on I/O: they run on the hot path of
/// every broadcast. The cluster methods are `async`; their default bodies act on this
/// server alone, which is all the in-memory [`LocalAdapter`] needs. A cluster adapter (Redis,
/// ...) keeps a [`LocalAdapter`] for the room methods and overrides the cluster methods to
/// also reach the other servers; it gets a handle to the namespace in [`init`](Self::init)
/// for what other servers ask of it.
pub trait Adapter: Send + Sync + 'static {
    /// Called once the namespace exists, with a handle to it.
    fn init(&self, ns: Weak<dyn LocalNamespace>) {
        let _ = ns;
    }
    /// Registers a socket (with no rooms but its own id).
    fn add_socket(&self, sid: Sid);
    /// Adds a socket to rooms.
    fn join(&self, sid: Sid, rooms: &[Room]);
    /// Removes a socket from rooms.
    fn leave(&self, sid: Sid, rooms: &[Room]);
    /// Forgets a socket and all its rooms.
    fn remove_socket(&self, sid: Sid);
    /// The rooms a socket is in, its own id first.
    fn socket_rooms(&self, sid: Sid) -> Vec<Room>;
    /// Calls `f` once for each local socket the options select.
    fn for_each(&self, opts: &BroadcastOptions, f: &mut dyn FnMut(Sid));
    /// Every local room with at least one socket (socket-id rooms excluded).
    fn rooms(&self) -> Vec<Room>;
    /// Number of local sockets.
    fn socket_count(&self) -> usize;

    /// Frames an event that asks for no ack, for delivery to the local sockets `opts`
    /// selects (the default [`broadcast`](Self::broadcast) uses it). The default frames it
    /// as it is. An adapter with connection state recovery gives it an offset (an extra
    /// last argument, which the client keeps as the point to recover from) and keeps it for
    /// replay, unless it is volatile. It runs on the hot path: no I/O, no blocking.
    fn frame_broadcast(
        &self,
        ns: &dyn LocalNamespace,
        packet: &EventPacket,
        opts: &BroadcastOptions,
    ) -> Encoded {
        let _ = opts;
        ns.parser().encode_event(packet, None, None)
    }

    /// Broadcasts an event; returns how many local sockets took it.
    ///
    /// With connection state recovery on, every emit of a socket to its own client comes
    /// here too, with `opts.rooms` holding only the socket's id, as the reference server
    /// routes a socket's emits through its adapter: so every packet a recoverable client
    /// receives carries an offset. Those calls come from a synchronous `Socket::emit`: the
    /// future is polled once at once and spawned if it is not done, so an adapter that
    /// awaits before delivering must keep their order itself (decide the order before the
    /// first `.await`).
    fn broadcast<'a>(
        &'a self,
        ns: &'a dyn LocalNamespace,
        packet: EventPacket,
        opts: BroadcastOptions,
    ) -> BoxFuture<'a, Result<usize, AdapterError>> {
        Box::pin(async move { Ok(ns.deliver(&self.frame_broadcast(ns, &packet, &opts), &opts)) })
    }

    /// Broadcasts an event with an ack id and streams the answers.
    fn broadcast_with_ack<'a>(
        &'a self,
        ns: &'a dyn LocalNamespace,
        packet: EventPacket,
        opts: BroadcastOptions,
        timeout: Duration,
    ) -> BoxFuture<'a, Result<AckStream, AdapterError>> {
        Box::pin(async move {
            let (tx, rx) = mpsc::unbounded_channel();
            let expected = ns.deliver_with_ack(&packet, &opts, timeout, tx);
            Ok(AckStream { expected, rx })
        })
    }

    /// Describes the selected sockets, cluster-wide.
    fn fetch_sockets<'a>(
        &'a self,
        ns: &'a dyn LocalNamespace,
        opts: BroadcastOptions,
    ) -> BoxFuture<'a, Result<Vec<SocketInfo>, AdapterError>> {
        Box::pin(async move { Ok(ns.socket_infos(&opts)) })
    }

    /// Makes the selected sockets join rooms, cluster-wide.
    fn add_sockets<'a>(
        &'a self,
        ns: &'a dyn LocalNamespace,
        opts: BroadcastOptions,
        rooms: Vec<Room>,
    ) -> BoxFuture<'a, Result<(), AdapterError>> {
        Box::pin(async move {
            ns.rooms_op(&opts, &rooms, true);
            Ok(())
        })
    }

    /// Makes the selected sockets leave rooms, cluster-wide.
    fn del_sockets<'a>(
        &'a self,
        ns: &'a dyn LocalNamespace,
        opts: BroadcastOptions,
        rooms: Vec<Room>,
    ) -> BoxFuture<'a, Result<(), AdapterError>> {
        Box::pin(async move {
            ns.rooms_op(&opts, &rooms, false);
            Ok(())
        })
    }

    /// Disconnects the selected sockets, cluster-wide.
    fn disconnect_sockets<'a>(
        &'a self,
        ns: &'a dyn LocalNamespace,
        opts: BroadcastOptions,
        close: bool,
    ) -> BoxFuture<'a, Result<(), AdapterError>> {
        Box::pin(async move {
            ns.disconnect(&opts, close);
            Ok(())
        })
    }

    /// Emits a server-side event to the other servers of the cluster (never to clients);
    /// with `timeout`, collects one answer per other server. Alone, there is nobody to tell.
    fn server_side_emit<'a>(
        &'a self,
        ns: &'a dyn LocalNamespace,
        event: String,
        args: Vec<serde_json::Value>,
        timeout: Option<Duration>,
    ) -> BoxFuture<'a, Result<Vec<serde_json::Value>, AdapterError>> {
        let _ = (ns, event, args, timeout);
        Box::pin(async { Ok(Vec::new()) })
    }

    /// Every room of the namespace, cluster-wide.
    fn all_rooms<'a>(
        &'a self,
        ns: &'a dyn LocalNamespace,
    ) -> BoxFuture<'a, Result<Vec<Room>, AdapterError>> {
        let _ = ns;
        Box::pin(async move { Ok(self.rooms()) })
    }

    /// Keeps the state of a socket that left for a recoverable reason (connection state
    /// recovery). The default forgets it.
    fn persist_session(&self, session: PersistedSession) -> BoxFuture<'_, ()> {
        drop(session);
        Box::pin(async {})
    }

    /// Gives back the state of the socket whose private id is `pid`, with every broadcast
    /// it missed after `offset`, if it can be recovered. The default recovers nothing.
    fn restore_session<'a>(
        &'a self,
        pid: &'a str,
        offset: &'a str,
    ) -> BoxFuture<'a, Option<RestoredSession>> {
        let _ = (pid, offset);
        Box::pin(async { None })
    }

    /// Number of servers in the cluster.
    fn server_count(&self) -> BoxFuture<'_, Result<usize, AdapterError>> {
        Box::pin(async { Ok(1) })
    }
}

/// The room methods of [`Adapter`], answered by a [`LocalAdapter`] field: room membership is
/// per server, so every cluster adapter keeps it in one and only adds the cluster methods.
#[cfg(any(feature = "redis", feature = "postgres"))]
macro_rules! rooms_in_local_adapter {
    ($field:ident) => {
        fn add_socket(&self, sid: $crate::engine::Sid) {
            self.$field.add_socket(sid);
        }
        fn join(&self, sid: $crate::engine::Sid, rooms: &[$crate::adapter::Room]) {
            self.$field.join(sid, rooms);
        }
        fn leave(&self, sid: $crate::engine::Sid, rooms: &[$crate::adapter::Room]) {
            self.$field.leave(sid, rooms);
        }
        fn remove_socket(&self, sid: $crate::engine::Sid) {
            self.$field.remove_socket(sid);
        }
        fn socket_rooms(&self, sid: $crate::engine::Sid) -> Vec<$crate::adapter::Room> {
            self.$field.socket_rooms(sid)
        }
        fn for_each(
            &self,
            opts: &$crate::adapter::BroadcastOptions,
            f: &mut dyn FnMut($crate::engine::Sid),
        ) {
            self.$field.for_each(opts, f);
        }
        fn rooms(&self) -> Vec<$crate::adapter::Room> {
            self.$field.rooms()
        }
        fn socket_count(&self) -> usize {
            self.$field.socket_count()
        }
    };
}
#[cfg(any(feature = "redis", feature = "postgres"))]
pub(crate) use rooms_in_local_adapter;

/// Makes the adapter of each namespace.
pub type AdapterFactory = Arc<dyn Fn(&str) -> Box<dyn Adapter> + Send + Sync>;

/// The default factory: a [`LocalAdapter`] per namespace.
pub fn local_factory() -> AdapterFactory {
    Arc::new(|_| Box::new(LocalAdapter::new()))
}

/// A factory of [`LocalAdapter`]s with connection state recovery.
pub fn recovery_factory(config: RecoveryConfig) -> AdapterFactory {
    Arc::new(move |_| Box::new(LocalAdapter::with_recovery(config)))
}
