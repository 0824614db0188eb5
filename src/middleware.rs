//! Per-socket event middleware (the reference server's `socket.use`): async functions that
//! see each incoming event before its handler, in the order they were added, and may let it
//! through (possibly changed) or refuse it.

use std::future::Future;
use std::sync::Arc;

use serde::Serialize;

use crate::handler::BoxFuture;
use crate::parser::{Args, EncodeError, Parser};

/// An incoming event as event middlewares see it.
#[derive(Debug, Clone)]
pub struct IncomingEvent {
    /// The event name; a middleware may rename the event.
    pub name: String,
    /// The arguments.
    pub args: Args,
    /// Whether the client asked for an ack.
    pub wants_ack: bool,
    pub(crate) parser: Parser,
}

impl IncomingEvent {
    /// Replaces the arguments with `data` (one argument), serialized as the socket's parser
    /// would have received it.
    pub fn set_data<T: Serialize + ?Sized>(&mut self, data: &T) -> Result<(), EncodeError> {
        let p = self.parser.event_packet("/", &self.name, data, false)?;
        self.args = Args::from_event(&p);
        Ok(())
    }
}

/// Why a middleware refused an event. The client gets it as the ack answer
/// `{"error": message}` when it asked for an ack, else as an `error` event `{"message"}`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventRejection(pub String);

impl<T: Into<String>> From<T> for EventRejection {
    fn from(m: T) -> Self {
        EventRejection(m.into())
    }
}

/// A middleware with its type erased.
pub(crate) type EventMiddleware =
    Arc<dyn Fn(IncomingEvent) -> BoxFuture<Result<IncomingEvent, EventRejection>> + Send + Sync>;

pub(crate) fn boxed<F, Fut>(f: F) -> EventMiddleware
where
    F: Fn(IncomingEvent) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<IncomingEvent, EventRejection>> + Send + 'static,
{
    Arc::new(move |ev| Box::pin(f(ev)))
}
