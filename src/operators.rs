//! Broadcast operators: choose sockets by room, then emit to them or act on them.

use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::adapter::{AdapterError, BroadcastOptions, LocalNamespace, Room, SocketInfo};
use crate::engine::Sid;
use crate::errors::AckError;
use crate::ns::Namespace;
use crate::parser::EncodeError;
use crate::socket::SocketRef;

/// Room names, from one or many.
pub trait IntoRooms {
    /// The rooms.
    fn into_rooms(self) -> Vec<Room>;
}

impl IntoRooms for &str {
    fn into_rooms(self) -> Vec<Room> {
        vec![Room::Owned(self.to_owned())]
    }
}
impl IntoRooms for String {
    fn into_rooms(self) -> Vec<Room> {
        vec![Room::Owned(self)]
    }
}
impl IntoRooms for &String {
    fn into_rooms(self) -> Vec<Room> {
        vec![Room::Owned(self.clone())]
    }
}
impl IntoRooms for Room {
    fn into_rooms(self) -> Vec<Room> {
        vec![self]
    }
}
impl IntoRooms for Sid {
    fn into_rooms(self) -> Vec<Room> {
        vec![Room::Owned(self.as_str().to_owned())]
    }
}
impl<T: IntoRooms> IntoRooms for Vec<T> {
    fn into_rooms(self) -> Vec<Room> {
        self.into_iter().flat_map(IntoRooms::into_rooms).collect()
    }
}
impl<T: IntoRooms, const N: usize> IntoRooms for [T; N] {
    fn into_rooms(self) -> Vec<Room> {
        self.into_iter().flat_map(IntoRooms::into_rooms).collect()
    }
}

/// A selection of sockets in one namespace, built by chaining, then used by one final call:
/// [`emit`](Self::emit), [`emit_with_ack`](Self::emit_with_ack), [`sockets`](Self::sockets),
/// [`join`](Self::join), [`leave`](Self::leave) or [`disconnect`](Self::disconnect).
#[derive(Debug, Clone)]
#[must_use = "operators do nothing until emit, join, leave, sockets or disconnect is called"]
pub struct BroadcastOperators {
    ns: Arc<Namespace>,
    opts: BroadcastOptions,
    timeout: Option<Duration>,
}

/// One socket's answer in a broadcast with acks: the socket (`None` when on another server)
/// and its ack.
pub type SocketAck<R> = (Option<Sid>, Result<R, AckError>);

/// As a handler argument: every socket of the handler's namespace (what
/// `io.of(socket.ns())` gives, and [`Socket::nsp`](crate::Socket::nsp)), so handlers need not
/// capture a namespace.
impl crate::extract::FromContext for BroadcastOperators {
    fn from_context(
        cx: &crate::extract::Context<'_>,
    ) -> Result<Self, crate::extract::ExtractError> {
        Ok(BroadcastOperators::new(cx.socket().namespace().clone()))
    }
}

impl BroadcastOperators {
    pub(crate) fn new(ns: Arc<Namespace>) -> Self {
        Self {
            ns,
            opts: BroadcastOptions::default(),
            timeout: None,
        }
    }

    /// Adds rooms to target (sockets in any of them).
    pub fn to(mut self, rooms: impl IntoRooms) -> Self {
        self.opts.rooms.extend(rooms.into_rooms());
        self
    }

    /// Same as [`to`](Self::to).
    pub fn within(self, rooms: impl IntoRooms) -> Self {
        self.to(rooms)
    }

    /// Excludes sockets in these rooms.
    pub fn except(mut self, rooms: impl IntoRooms) -> Self {
        self.opts.except.extend(rooms.into_rooms());
        self
    }

    pub(crate) fn except_sid(mut self, sid: Sid) -> Self {
        self.opts.except_sid = Some(sid);
        self
    }

    /// Keeps the operation on this server, even with a cluster adapter.
    pub fn local(mut self) -> Self {
        self.opts.local = true;
        self
    }

    /// Drops the packet for receivers whose queue is full instead of disconnecting them.
    pub fn volatile(mut self) -> Self {
        self.opts.volatile = true;
        self
    }

    /// The time to wait for acks in [`emit_with_ack`](Self::emit_with_ack).
    pub fn timeout(mut self, d: Duration) -> Self {
        self.timeout = Some(d);
        self
    }

    /// Emits an event with one argument to every selected socket. The packet is encoded
    /// once and its frames shared by all receivers. Returns how many local sockets took it.
    pub async fn emit<T: Serialize + ?Sized>(
        self,
        event: &str,
        data: &T,
    ) -> Result<usize, BroadcastError> {
        self.emit_inner(event, data, false).await
    }

    /// Emits an event with several arguments (`data` serializes to an array).
    pub async fn emit_args<T: Serialize + ?Sized>(
        self,
        event: &str,
        data: &T,
    ) -> Result<usize, BroadcastError> {
        self.emit_inner(event, data, true).await
    }

    async fn emit_inner<T: Serialize + ?Sized>(
        self,
        event: &str,
        data: &T,
        spread: bool,
    ) -> Result<usize, BroadcastError> {
        let packet = self
            .ns
            .parser()
            .event_packet(self.ns.path(), event, data, spread)?;
        Ok(self
            .ns
            .adapter()
            .broadcast(&*self.ns, packet, self.opts)
            .await?)
    }

    /// Emits an event and collects every selected socket's ack within the timeout (the
    /// operator's, else the configured `ack_timeout`). One ack id serves the whole
    /// broadcast, so the packet is still encoded once. As with
    /// [`Socket::emit_with_ack`](crate::Socket::emit_with_ack), `args` is the argument list
    /// (`&(a, b)`, `&(a,)`, `&()`) and each answer `R` the list of that socket's ack
    /// arguments. Each answer comes with its socket (`None` for a socket on another server
    /// of a cluster; the Node adapters forward only the first argument of a remote ack); a
    /// socket that does not answer in time gives [`AckError::Timeout`].
    pub async fn emit_with_ack<T: Serialize + ?Sized, R: DeserializeOwned>(
        self,
        event: &str,
        args: &T,
    ) -> Result<Vec<SocketAck<R>>, BroadcastError> {
        let timeout = self.timeout.unwrap_or(self.ns.shared().config.ack_timeout);
        let packet = self
            .ns
            .parser()
            .event_packet(self.ns.path(), event, args, true)?;
        let mut stream = self
            .ns
            .adapter()
            .broadcast_with_ack(&*self.ns, packet, self.opts, timeout)
            .await?;
        let mut out = Vec::with_capacity(stream.expected);
        // Every answer, local or remote, arrives within `timeout`; the margin covers the
        // cluster's own delays.
        let deadline = tokio::time::Instant::now() + timeout + Duration::from_millis(500);
        while out.len() < stream.expected {
            match tokio::time::timeout_at(deadline, stream.rx.recv()).await {
                Ok(Some((sid, r))) => {
                    out.push((sid, r.and_then(|a| Ok(a.deserialize_list::<R>()?))));
                }
                Ok(None) => break,
                Err(_) => {
                    let missing = stream.expected - out.len();
                    out.extend((0..missing).map(|_| (None, Err(AckError::Timeout))));
                    break;
                }
            }
        }
        Ok(out)
    }

    /// The selected sockets on this server.
    pub fn sockets(&self) -> Vec<SocketRef> {
        self.ns
            .matching(&self.opts)
            .into_iter()
            .map(SocketRef)
            .collect()
    }

    /// Describes the selected sockets, cluster-wide.
    pub async fn fetch_sockets(self) -> Result<Vec<SocketInfo>, AdapterError> {
        self.ns.adapter().fetch_sockets(&*self.ns, self.opts).await
    }

    /// Makes every selected socket join rooms.
    pub async fn join(self, rooms: impl IntoRooms) -> Result<(), AdapterError> {
        self.ns
            .adapter()
            .add_sockets(&*self.ns, self.opts, rooms.into_rooms())
            .await
    }

    /// Makes every selected socket leave rooms.
    pub async fn leave(self, rooms: impl IntoRooms) -> Result<(), AdapterError> {
        self.ns
            .adapter()
            .del_sockets(&*self.ns, self.opts, rooms.into_rooms())
            .await
    }

    /// Disconnects every selected socket from the namespace.
    pub async fn disconnect(self) -> Result<(), AdapterError> {
        self.ns
            .adapter()
            .disconnect_sockets(&*self.ns, self.opts, false)
            .await
    }

    /// Disconnects every selected socket and closes its whole connection.
    pub async fn disconnect_and_close(self) -> Result<(), AdapterError> {
        self.ns
            .adapter()
            .disconnect_sockets(&*self.ns, self.opts, true)
            .await
    }

    /// Emits a server-side event to the other servers of the cluster, in this namespace
    /// (Node's `serverSideEmit`): their handlers registered with
    /// [`NamespaceHandle::on_server_event`](crate::NamespaceHandle::on_server_event) run;
    /// clients never see it, and the selection (rooms, except) is ignored. `args` is the
    /// argument list: a tuple or array of its elements, `&()` for none. Alone, there is
    /// nobody to tell: it does nothing.
    pub async fn server_side_emit<T: Serialize + ?Sized>(
        self,
        event: &str,
        args: &T,
    ) -> Result<(), BroadcastError> {
        let args = crate::server_event::arg_list(args).map_err(EncodeError)?;
        self.ns
            .adapter()
            .server_side_emit(&*self.ns, event.to_owned(), args, None)
            .await?;
        Ok(())
    }

    /// Like [`server_side_emit`](Self::server_side_emit), and waits for one answer from
    /// every other server of the cluster (Node's `serverSideEmitWithAck`), within the
    /// operator's [`timeout`](Self::timeout) or else the configured `ack_timeout`. Each
    /// answer is deserialized into `R` on its own. A server that does not answer in time
    /// fails the whole call with [`AdapterError::Timeout`]; alone, the answer list is empty.
    pub async fn server_side_emit_with_ack<T: Serialize + ?Sized, R: DeserializeOwned>(
        self,
        event: &str,
        args: &T,
    ) -> Result<Vec<Result<R, AckError>>, BroadcastError> {
        let timeout = self.timeout.unwrap_or(self.ns.shared().config.ack_timeout);
        let args = crate::server_event::arg_list(args).map_err(EncodeError)?;
        let answers = self
            .ns
            .adapter()
            .server_side_emit(&*self.ns, event.to_owned(), args, Some(timeout))
            .await?;
        Ok(answers
            .into_iter()
            .map(|v| serde_json::from_value(v).map_err(AckError::Decode))
            .collect())
    }

    /// Every room of the namespace, cluster-wide (the selection is ignored).
    pub async fn rooms(self) -> Result<Vec<Room>, AdapterError> {
        self.ns.adapter().all_rooms(&*self.ns).await
    }
}

/// A broadcast failed.
#[derive(Debug, thiserror::Error)]
pub enum BroadcastError {
    /// The data did not serialize.
    #[error(transparent)]
    Encode(#[from] EncodeError),
    /// The cluster could not be reached.
    #[error(transparent)]
    Adapter(#[from] AdapterError),
}
