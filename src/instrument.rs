//! The one hook through which an observer (the admin UI, `admin` feature) sees what the
//! server does: sockets coming and going, rooms, transport upgrades, events.
//!
//! A server holds at most one observer, set once. Every call site first loads it (one
//! atomic read); without an observer nothing else happens, and the per-event calls also
//! ask [`Instrument::events`] first, so an observer that does not want events costs no
//! per-event work.

use std::sync::Arc;

use crate::adapter::Room;
use crate::engine::{CloseReason, Sid};
use crate::errors::DisconnectReason;
use crate::parser::Args;
use crate::socket::Socket;

/// What happens on the server, as an observer sees it. Every method is called on the path
/// of the thing observed, so it must be quick and must not block.
pub(crate) trait Instrument: Send + Sync + 'static {
    /// Whether the per-event reports are wanted: [`event_received`](Self::event_received),
    /// [`event_sent`](Self::event_sent), [`broadcast_sent`](Self::broadcast_sent) and
    /// [`rooms_changed`](Self::rooms_changed).
    fn events(&self) -> bool;

    /// A socket joined its namespace; the CONNECT reply is queued, the connect handler has
    /// not run yet.
    fn socket_connected(&self, socket: &Arc<Socket>);

    /// A socket left its namespace for `reason`; `rooms` are the rooms it was in, its own
    /// id first.
    fn socket_disconnected(&self, socket: &Socket, reason: DisconnectReason, rooms: &[Room]);

    /// Socket `sid` of namespace `ns` joined (`joined`) or left these rooms; only rooms whose
    /// membership changed are listed. Only called when [`events`](Self::events) is true.
    fn rooms_changed(&self, ns: &str, sid: Sid, rooms: &[Room], joined: bool);

    /// The Engine.IO connection under `socket` upgraded to WebSocket.
    fn transport_upgraded(&self, socket: &Socket);

    /// An Engine.IO connection opened (`polling` tells its first transport).
    fn connection_opened(&self, polling: bool);

    /// An Engine.IO connection upgraded from long-polling to WebSocket.
    fn connection_upgraded(&self);

    /// An Engine.IO connection closed; `polling` tells whether it never upgraded.
    fn connection_closed(&self, reason: CloseReason, polling: bool);

    /// An Engine.IO message of `bytes` bytes arrived.
    fn message_received(&self, bytes: usize);

    /// `packets` Engine.IO messages holding `bytes` bytes of data were queued to clients.
    fn packets_sent(&self, packets: usize, bytes: usize);

    /// A broadcast packet was queued to these sockets of namespace `ns`.
    fn broadcast_sent(&self, ns: &str, sids: &[Sid], packet: &crate::parser::Encoded);

    /// The data other servers of the cluster see for `socket` (its `SocketData`, or `null`),
    /// possibly with the observer's own entries added.
    fn shared_data(&self, socket: &Socket, data: serde_json::Value) -> serde_json::Value;

    /// A socket received an event (after its middlewares accepted it).
    fn event_received(&self, socket: &Socket, name: &str, args: &Args);

    /// A socket emitted an event; `args` is the JSON array of its arguments.
    fn event_sent(&self, socket: &Socket, name: &str, args: serde_json::Value);
}

/// The observer slot every namespace shares.
pub(crate) type InstrumentSlot = std::sync::OnceLock<Arc<dyn Instrument>>;

/// The data bytes of an encoded packet's frames (without the Engine.IO type character), as
/// the reference counts them.
pub(crate) fn encoded_bytes(enc: &crate::parser::Encoded) -> usize {
    enc.frames()
        .map(|f| match f {
            crate::engine::Frame::Text(t) => t.len().saturating_sub(1),
            crate::engine::Frame::Binary(b) => b.len(),
        })
        .sum()
}
