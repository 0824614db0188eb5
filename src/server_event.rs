//! Server-side events: events between the servers of a cluster, in one namespace, never seen
//! by clients (Node's `serverSideEmit` / `serverSideEmitWithAck` and `io.of(nsp).on(...)`).
//!
//! A handler is a closure, sync or `async`, whose arguments are extractors, as for socket
//! events: [`Data`], [`DataArgs`], [`TryData`], [`State`], [`Event`], the namespace as
//! [`BroadcastOperators`], the server as [`SocketIo`](crate::SocketIo), and [`ServerAck`] to
//! answer a sender that waits for one.
//! Register it with [`NamespaceHandle::on_server_event`](crate::NamespaceHandle::on_server_event);
//! emit with [`BroadcastOperators::server_side_emit`] and
//! [`BroadcastOperators::server_side_emit_with_ack`].
//!
//! ```
//! use tower_socketio::server_event::ServerAck;
//! use tower_socketio::{BroadcastOperators, Data, SocketIo, SocketRef};
//!
//! # fn setup() -> SocketIo {
//! let (_layer, io) = SocketIo::new_layer();
//! io.ns("/custom", |_: SocketRef| {}).on_server_event(
//!     "who-is-there",
//!     |Data(from): Data<String>, ack: ServerAck, ns: BroadcastOperators| async move {
//!         // Tell this server's sockets of /custom, then answer if the sender waits.
//!         let here = ns.sockets().len();
//!         ns.local().emit("asked", &from).await.ok();
//!         ack.send(&here).ok();
//!     },
//! );
//! # io }
//! # async fn ask(io: SocketIo) -> Result<(), tower_socketio::BroadcastError> {
//! // On another server: one answer per other server of the cluster.
//! let Some(custom) = io.of("/custom") else {
//!     return Ok(()); // no such namespace on this server
//! };
//! let counts = custom
//!     .server_side_emit_with_ack::<_, usize>("who-is-there", &("server-2",))
//!     .await?;
//! # Ok(()) }
//! ```

use std::cell::Cell;
use std::future::Future;
use std::sync::Arc;

use serde::Serialize;
use serde::de::DeserializeOwned;
use tokio::sync::oneshot;

use crate::extract::{Data, DataArgs, Event, ExtractError, State, TryData};
use crate::handler::{BoxFuture, markers, run_or_spawn};
use crate::ns::Namespace;
use crate::operators::BroadcastOperators;

/// What the extractors of a server-side event handler see: the namespace, the event and its
/// arguments, and the way back to a sender that waits for an answer.
pub struct ServerEventContext<'a> {
    ns: &'a Arc<Namespace>,
    event: &'a str,
    args: &'a [serde_json::Value],
    ack: Cell<Option<oneshot::Sender<serde_json::Value>>>,
}

impl std::fmt::Debug for ServerEventContext<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServerEventContext")
            .field("ns", &self.ns.path())
            .field("event", &self.event)
            .finish_non_exhaustive()
    }
}

impl ServerEventContext<'_> {
    /// The namespace path.
    pub fn ns(&self) -> &str {
        self.ns.path()
    }

    /// The event name.
    pub fn event(&self) -> &str {
        self.event
    }

    /// The event's arguments.
    pub fn args(&self) -> &[serde_json::Value] {
        self.args
    }
}

/// A value that a server-side event handler can take as an argument.
#[diagnostic::on_unimplemented(
    message = "`{Self}` cannot be a server-side event handler argument",
    label = "not a server-side event extractor",
    note = "server-side event handler arguments must implement `FromServerEvent`: `Data<T>`, `DataArgs<T>`, `TryData<T>`, `State<T>`, `Event`, `BroadcastOperators` (the namespace), `SocketIo`, `ServerAck`"
)]
pub trait FromServerEvent: Sized + Send + 'static {
    /// Builds the value, or says why it cannot.
    fn from_server_event(cx: &ServerEventContext<'_>) -> Result<Self, ExtractError>;
}

/// The arguments as one value, as [`Data`] reads a socket event's: none is `null`, one is
/// itself, several are an array (a tuple).
fn merged(args: &[serde_json::Value]) -> serde_json::Value {
    match args {
        [] => serde_json::Value::Null,
        [one] => one.clone(),
        many => serde_json::Value::Array(many.to_vec()),
    }
}

impl<T: DeserializeOwned + Send + 'static> FromServerEvent for Data<T> {
    fn from_server_event(cx: &ServerEventContext<'_>) -> Result<Self, ExtractError> {
        Ok(Data(serde_json::from_value(merged(cx.args))?))
    }
}

/// The argument list as it is, as for a socket event.
impl<T: DeserializeOwned + Send + 'static> FromServerEvent for DataArgs<T> {
    fn from_server_event(cx: &ServerEventContext<'_>) -> Result<Self, ExtractError> {
        Ok(DataArgs(crate::parser::deserialize_values(cx.args)?))
    }
}

/// The server handle, as for socket handlers.
impl FromServerEvent for crate::SocketIo {
    fn from_server_event(cx: &ServerEventContext<'_>) -> Result<Self, ExtractError> {
        crate::SocketIo::from_shared(cx.ns.shared())
    }
}

impl<T: DeserializeOwned + Send + 'static> FromServerEvent for TryData<T> {
    fn from_server_event(cx: &ServerEventContext<'_>) -> Result<Self, ExtractError> {
        Ok(TryData(serde_json::from_value(merged(cx.args))))
    }
}

impl<T: Clone + Send + Sync + 'static> FromServerEvent for State<T> {
    fn from_server_event(cx: &ServerEventContext<'_>) -> Result<Self, ExtractError> {
        cx.ns
            .shared()
            .state
            .get::<T>()
            .map(State)
            .ok_or(ExtractError::MissingState(std::any::type_name::<T>()))
    }
}

impl FromServerEvent for Event {
    fn from_server_event(cx: &ServerEventContext<'_>) -> Result<Self, ExtractError> {
        Ok(Event(cx.event.to_owned()))
    }
}

/// The namespace the event came in: emit to its sockets, or server-side events back.
impl FromServerEvent for BroadcastOperators {
    fn from_server_event(cx: &ServerEventContext<'_>) -> Result<Self, ExtractError> {
        Ok(BroadcastOperators::new(cx.ns.clone()))
    }
}

/// Answers the server that sent the event, when it waits for an answer
/// ([`server_side_emit_with_ack`](BroadcastOperators::server_side_emit_with_ack), Node's
/// `serverSideEmitWithAck`). A handler that drops it unanswered sends nothing: the sender
/// then times out, as with a Node handler that never calls its callback.
#[derive(Debug)]
pub struct ServerAck(Option<oneshot::Sender<serde_json::Value>>);

impl ServerAck {
    /// Whether the sender waits for an answer (Node's handler sees a callback as its last
    /// argument only then).
    pub fn requested(&self) -> bool {
        self.0.is_some()
    }

    /// Answers with one value (the sender gets one value per server, as in the reference).
    /// Does nothing when no answer was asked for.
    pub fn send<T: Serialize + ?Sized>(self, data: &T) -> Result<(), serde_json::Error> {
        let value = serde_json::to_value(data)?;
        if let Some(tx) = self.0 {
            let _ = tx.send(value);
        }
        Ok(())
    }
}

impl FromServerEvent for ServerAck {
    fn from_server_event(cx: &ServerEventContext<'_>) -> Result<Self, ExtractError> {
        Ok(ServerAck(cx.ack.take()))
    }
}

/// A server-side event handler: a closure of [`FromServerEvent`] extractors, sync or `async`.
#[diagnostic::on_unimplemented(
    message = "this closure is not a server-side event handler",
    note = "a server-side event handler is a closure, sync or async, returning `()`, whose arguments (at most 8) all implement `FromServerEvent`"
)]
pub trait ServerEventHandler<M>: Clone + Send + Sync + 'static {
    /// Extracts the arguments and runs the handler up to its future.
    #[doc(hidden)]
    fn call(&self, cx: &ServerEventContext<'_>) -> Result<Option<BoxFuture>, ExtractError>;
}

macro_rules! impl_server_event_handlers {
    ($($ty:ident),*) => {
        #[allow(non_snake_case, unused_variables)]
        impl<F, $($ty,)*> ServerEventHandler<(markers::Sync, $($ty,)*)> for F
        where
            F: Fn($($ty),*) + Clone + Send + Sync + 'static,
            $($ty: FromServerEvent,)*
        {
            fn call(&self, cx: &ServerEventContext<'_>) -> Result<Option<BoxFuture>, ExtractError> {
                $(let $ty = $ty::from_server_event(cx)?;)*
                (self)($($ty),*);
                Ok(None)
            }
        }

        #[allow(non_snake_case, unused_variables)]
        impl<F, Fut, $($ty,)*> ServerEventHandler<(markers::Async, $($ty,)*)> for F
        where
            F: Fn($($ty),*) -> Fut + Clone + Send + Sync + 'static,
            Fut: Future<Output = ()> + Send + 'static,
            $($ty: FromServerEvent,)*
        {
            fn call(&self, cx: &ServerEventContext<'_>) -> Result<Option<BoxFuture>, ExtractError> {
                $(let $ty = $ty::from_server_event(cx)?;)*
                Ok(Some(Box::pin((self)($($ty),*))))
            }
        }
    };
}

impl_server_event_handlers!();
impl_server_event_handlers!(T1);
impl_server_event_handlers!(T1, T2);
impl_server_event_handlers!(T1, T2, T3);
impl_server_event_handlers!(T1, T2, T3, T4);
impl_server_event_handlers!(T1, T2, T3, T4, T5);
impl_server_event_handlers!(T1, T2, T3, T4, T5, T6);
impl_server_event_handlers!(T1, T2, T3, T4, T5, T6, T7);
impl_server_event_handlers!(T1, T2, T3, T4, T5, T6, T7, T8);

/// A server-side event handler with its argument types erased.
pub(crate) type BoxedServerEventHandler =
    Arc<dyn Fn(&ServerEventContext<'_>) -> Result<Option<BoxFuture>, ExtractError> + Send + Sync>;

pub(crate) fn boxed<H: ServerEventHandler<M>, M>(h: H) -> BoxedServerEventHandler {
    Arc::new(move |cx| h.call(cx))
}

/// Runs `handler` for one server-side event; `ack` is the way back to a sender that waits.
pub(crate) fn run(
    ns: &Arc<Namespace>,
    handler: &BoxedServerEventHandler,
    event: &str,
    args: &[serde_json::Value],
    ack: Option<oneshot::Sender<serde_json::Value>>,
) {
    let cx = ServerEventContext {
        ns,
        event,
        args,
        ack: Cell::new(ack),
    };
    match handler(&cx) {
        Ok(Some(fut)) => {
            run_or_spawn(fut);
        }
        Ok(None) => {}
        Err(e) => {
            tracing::warn!(ns = ns.path(), event, error = %e, "server-side event handler skipped");
        }
    }
}

/// The argument list of a server-side emit: `args` serializes to an array (a tuple) whose
/// elements are the arguments; `()` is none.
pub(crate) fn arg_list<T: Serialize + ?Sized>(
    args: &T,
) -> Result<Vec<serde_json::Value>, serde_json::Error> {
    match serde_json::to_value(args)? {
        serde_json::Value::Array(list) => Ok(list),
        serde_json::Value::Null => Ok(Vec::new()),
        _ => Err(<serde_json::Error as serde::ser::Error>::custom(
            "server-side event arguments must serialize to a list (a tuple, array or `()`)",
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn argument_lists() {
        assert_eq!(arg_list(&()).unwrap(), Vec::<serde_json::Value>::new());
        assert_eq!(arg_list(&("a", 1)).unwrap(), vec![json!("a"), json!(1)]);
        assert_eq!(arg_list(&[[1, 2]]).unwrap(), vec![json!([1, 2])]);
        assert!(arg_list(&"one").is_err());
        assert!(arg_list(&json!({"k": 1})).is_err());
    }

    #[test]
    fn data_reads_arguments_as_socket_events_do() {
        assert_eq!(merged(&[]), serde_json::Value::Null);
        assert_eq!(merged(&[json!(1)]), json!(1));
        assert_eq!(merged(&[json!(1), json!("b")]), json!([1, "b"]));
    }
}
