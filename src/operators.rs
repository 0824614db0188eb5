//! Broadcast operators: choose sockets by room, then emit to them or act on them.

use std::sync::Arc;
use std::time::Duration;

use futures_util::future::join_all;
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::adapter::{BroadcastOptions, Room};
use crate::engine::Sid;
use crate::errors::{AckError, DisconnectReason};
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

/// The result of one socket's ack in a broadcast with acks.
pub type SocketAck<R> = (Sid, Result<R, AckError>);

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
    /// once and its frames shared by all receivers. Returns how many sockets took it.
    pub async fn emit<T: Serialize + ?Sized>(
        self,
        event: &str,
        data: &T,
    ) -> Result<usize, EncodeError> {
        let parser = self.ns.shared().config.parser;
        let enc = parser.event(self.ns.path(), event, data, None, false)?;
        Ok(self.ns.deliver(&enc, &self.opts))
    }

    /// Emits an event with several arguments (`data` serializes to an array).
    pub async fn emit_args<T: Serialize + ?Sized>(
        self,
        event: &str,
        data: &T,
    ) -> Result<usize, EncodeError> {
        let parser = self.ns.shared().config.parser;
        let enc = parser.event(self.ns.path(), event, data, None, true)?;
        Ok(self.ns.deliver(&enc, &self.opts))
    }

    /// Emits an event and collects every selected socket's ack within the timeout (the
    /// operator's, else the configured `ack_timeout`). One ack id serves the whole
    /// broadcast, so the packet is still encoded once.
    pub async fn emit_with_ack<T: Serialize + ?Sized, R: DeserializeOwned>(
        self,
        event: &str,
        data: &T,
    ) -> Result<Vec<SocketAck<R>>, EncodeError> {
        let shared = self.ns.shared();
        let timeout = self.timeout.unwrap_or(shared.config.ack_timeout);
        let id = self.ns.next_ack_id();
        let enc = shared
            .config
            .parser
            .event(self.ns.path(), event, data, Some(id), false)?;
        let mut waiting = Vec::new();
        for socket in self.matching() {
            let rx = socket.register_ack(id);
            match socket.send_encoded(&enc) {
                Ok(()) => waiting.push((socket, rx)),
                Err(e) => {
                    socket.forget_ack(id);
                    tracing::debug!(sid = %socket.id(), error = %e, "broadcast with ack: emit failed");
                }
            }
        }
        let results = join_all(waiting.into_iter().map(|(socket, rx)| async move {
            let r = match tokio::time::timeout(timeout, rx).await {
                Ok(Ok(args)) => args.deserialize::<R>().map_err(AckError::from),
                Ok(Err(_)) => Err(AckError::Disconnected),
                Err(_) => {
                    socket.forget_ack(id);
                    Err(AckError::Timeout)
                }
            };
            (socket.id(), r)
        }))
        .await;
        Ok(results)
    }

    fn matching(&self) -> Vec<Arc<crate::socket::Socket>> {
        let mut out = Vec::new();
        self.ns.adapter().for_each(&self.opts, &mut |sid| {
            if let Some(s) = self.ns.get_socket(sid) {
                out.push(s);
            }
        });
        out
    }

    /// The selected sockets.
    pub fn sockets(&self) -> Vec<SocketRef> {
        self.matching().into_iter().map(SocketRef).collect()
    }

    /// Makes every selected socket join rooms.
    pub fn join(self, rooms: impl IntoRooms) {
        let rooms = rooms.into_rooms();
        for s in self.matching() {
            self.ns.adapter().join(s.id(), &rooms);
        }
    }

    /// Makes every selected socket leave rooms.
    pub fn leave(self, rooms: impl IntoRooms) {
        let rooms = rooms.into_rooms();
        for s in self.matching() {
            self.ns.adapter().leave(s.id(), &rooms);
        }
    }

    /// Disconnects every selected socket from the namespace.
    pub fn disconnect(self) {
        for s in self.matching() {
            s.disconnect_with(DisconnectReason::ServerNamespaceDisconnect);
        }
    }
}
