//! Rooms and the adapter that keeps them.
//!
//! An [`Adapter`] knows which socket of a namespace is in which room, and picks the sockets a
//! broadcast reaches. [`LocalAdapter`], the default, keeps this in memory for one server.
//! Every socket is implicitly in the room named by its own id.

mod local;

use std::borrow::Cow;

use crate::engine::Sid;

pub use local::LocalAdapter;

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

/// Keeps room membership for one namespace and finds the sockets a broadcast reaches.
///
/// Methods are synchronous and never block on I/O: they run on the hot path of every
/// broadcast.
pub trait Adapter: Send + Sync + 'static {
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
    /// Every room with at least one socket (socket-id rooms excluded).
    fn rooms(&self) -> Vec<Room>;
    /// Number of sockets known to the adapter.
    fn socket_count(&self) -> usize;
}
