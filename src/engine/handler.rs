//! The trait through which the engine hands sessions and messages to the layer above.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use super::{CloseReason, Message, Session};

/// A future that must finish before the session's next message is handed over.
///
/// The engine keeps reading and answering heartbeats meanwhile, and holds the messages that
/// arrive (up to a bound) until it completes.
pub type Gate = Pin<Box<dyn Future<Output = ()> + Send + 'static>>;

/// Receives what happens to Engine.IO sessions.
///
/// Every method is called from the session's own task or request, in the order things
/// happen on that session: `on_open` first, then messages in arrival order, then `on_close`
/// exactly once.
pub trait EngineHandler: Send + Sync + 'static {
    /// Data kept inside each session, created when it opens.
    type Data: Default + Send + Sync + 'static;

    /// A session opened; the open packet is already queued.
    fn on_open(&self, session: &Arc<Session<Self::Data>>);

    /// A message arrived. Return a [`Gate`] to hold the session's following messages until it
    /// completes; return `None` to take the next one at once.
    fn on_message(&self, session: &Arc<Session<Self::Data>>, msg: Message) -> Option<Gate>;

    /// The session switched from long-polling to WebSocket. Default: nothing.
    fn on_upgrade(&self, session: &Arc<Session<Self::Data>>) {
        let _ = session;
    }

    /// The session closed; it is already gone from the engine.
    fn on_close(&self, session: &Arc<Session<Self::Data>>, reason: CloseReason);
}
