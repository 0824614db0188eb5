//! Handler traits, implemented for closures of up to eight extractor arguments by one macro.
//!
//! A handler is a closure whose arguments all implement
//! [`FromContext`]. It may be synchronous or `async`; middlewares
//! return `Result<(), E>` (or a future of it) where `E: Into<ConnectRejection>`.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context as TaskContext, Poll, Waker};

use crate::extract::{Context, ExtractError, FromContext};

/// A boxed handler future.
pub(crate) type BoxFuture<T = ()> = Pin<Box<dyn Future<Output = T> + Send + 'static>>;

/// A handler with its argument types erased.
pub(crate) type BoxedHandler =
    Arc<dyn Fn(&Context<'_>) -> Result<Option<BoxFuture>, ExtractError> + Send + Sync>;

/// A handler whose arguments are extracted, ready to run.
pub(crate) type Prepared = Box<dyn FnOnce() -> Option<BoxFuture> + Send>;

/// A connect handler with its argument types erased: extraction first (it may refuse the
/// connection), the call once the CONNECT reply is out.
pub(crate) type BoxedConnectHandler =
    Arc<dyn Fn(&Context<'_>) -> Result<Prepared, ExtractError> + Send + Sync>;

/// A middleware with its argument types erased.
pub(crate) type BoxedMiddleware = Arc<
    dyn Fn(&Context<'_>) -> Result<BoxFuture<Result<(), ConnectRejection>>, ExtractError>
        + Send
        + Sync,
>;

#[doc(hidden)]
pub mod markers {
    /// Marks a synchronous handler.
    #[derive(Debug)]
    pub struct Sync;
    /// Marks an `async` handler.
    #[derive(Debug)]
    pub struct Async;
}

/// A refused connection: the client gets a `connect_error` with this message and data.
#[derive(Debug, Clone, PartialEq)]
pub struct ConnectRejection {
    /// The message the client's `connect_error` carries.
    pub message: String,
    /// Optional data beside the message.
    pub data: Option<serde_json::Value>,
}

impl ConnectRejection {
    /// A rejection with a message.
    pub fn new(message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
            data: None,
        }
    }
    /// Adds data the client sees as `err.data`.
    pub fn with_data(mut self, data: serde_json::Value) -> Self {
        self.data = Some(data);
        self
    }
}

impl From<&str> for ConnectRejection {
    fn from(m: &str) -> Self {
        Self::new(m)
    }
}
impl From<String> for ConnectRejection {
    fn from(m: String) -> Self {
        Self::new(m)
    }
}

/// A connect, event or disconnect handler: a closure of extractors, sync or `async`.
#[diagnostic::on_unimplemented(
    message = "this closure is not a Socket.IO handler",
    note = "a handler is a closure, sync or async, returning `()`, whose arguments (at most 8) all implement `FromContext`",
    note = "to refuse a connection, return `Err` from a connect middleware (`io.ns(..).with(..)`); a failing extractor of a connect handler refuses it too"
)]
pub trait Handler<M>: Clone + Send + Sync + 'static {
    /// Extracts the arguments and runs the handler up to its future.
    #[doc(hidden)]
    fn call(&self, cx: &Context<'_>) -> Result<Option<BoxFuture>, ExtractError>;

    /// Extracts the arguments; the handler runs when the returned closure is called.
    #[doc(hidden)]
    fn prepare(&self, cx: &Context<'_>) -> Result<Prepared, ExtractError>;
}

/// A connect middleware: runs before the connect handler and may refuse the connection.
#[diagnostic::on_unimplemented(
    message = "this closure is not a Socket.IO connect middleware",
    note = "a middleware is a closure, sync or async, returning `Result<(), E>` with `E: Into<ConnectRejection>`, whose arguments all implement `FromContext`"
)]
pub trait Middleware<M>: Clone + Send + Sync + 'static {
    /// Extracts the arguments and returns the middleware's verdict.
    #[doc(hidden)]
    fn call(
        &self,
        cx: &Context<'_>,
    ) -> Result<BoxFuture<Result<(), ConnectRejection>>, ExtractError>;
}

macro_rules! impl_handlers {
    ($($ty:ident),*) => {
        #[allow(non_snake_case, unused_variables)]
        impl<F, $($ty,)*> Handler<(markers::Sync, $($ty,)*)> for F
        where
            F: Fn($($ty),*) + Clone + Send + Sync + 'static,
            $($ty: FromContext,)*
        {
            fn call(&self, cx: &Context<'_>) -> Result<Option<BoxFuture>, ExtractError> {
                $(let $ty = $ty::from_context(cx)?;)*
                (self)($($ty),*);
                Ok(None)
            }

            fn prepare(&self, cx: &Context<'_>) -> Result<Prepared, ExtractError> {
                $(let $ty = $ty::from_context(cx)?;)*
                let f = self.clone();
                Ok(Box::new(move || {
                    f($($ty),*);
                    None
                }))
            }
        }

        #[allow(non_snake_case, unused_variables)]
        impl<F, Fut, $($ty,)*> Handler<(markers::Async, $($ty,)*)> for F
        where
            F: Fn($($ty),*) -> Fut + Clone + Send + Sync + 'static,
            Fut: Future<Output = ()> + Send + 'static,
            $($ty: FromContext,)*
        {
            fn call(&self, cx: &Context<'_>) -> Result<Option<BoxFuture>, ExtractError> {
                $(let $ty = $ty::from_context(cx)?;)*
                Ok(Some(Box::pin((self)($($ty),*))))
            }

            fn prepare(&self, cx: &Context<'_>) -> Result<Prepared, ExtractError> {
                $(let $ty = $ty::from_context(cx)?;)*
                let f = self.clone();
                Ok(Box::new(move || Some(Box::pin(f($($ty),*)) as BoxFuture)))
            }
        }

        #[allow(non_snake_case, unused_variables)]
        impl<F, E, $($ty,)*> Middleware<(markers::Sync, $($ty,)*)> for F
        where
            F: Fn($($ty),*) -> Result<(), E> + Clone + Send + Sync + 'static,
            E: Into<ConnectRejection>,
            $($ty: FromContext,)*
        {
            fn call(&self, cx: &Context<'_>)
                -> Result<BoxFuture<Result<(), ConnectRejection>>, ExtractError>
            {
                $(let $ty = $ty::from_context(cx)?;)*
                let r = (self)($($ty),*).map_err(Into::into);
                Ok(Box::pin(std::future::ready(r)))
            }
        }

        #[allow(non_snake_case, unused_variables)]
        impl<F, Fut, E, $($ty,)*> Middleware<(markers::Async, $($ty,)*)> for F
        where
            F: Fn($($ty),*) -> Fut + Clone + Send + Sync + 'static,
            Fut: Future<Output = Result<(), E>> + Send + 'static,
            E: Into<ConnectRejection>,
            $($ty: FromContext,)*
        {
            fn call(&self, cx: &Context<'_>)
                -> Result<BoxFuture<Result<(), ConnectRejection>>, ExtractError>
            {
                $(let $ty = $ty::from_context(cx)?;)*
                let fut = (self)($($ty),*);
                Ok(Box::pin(async move { fut.await.map_err(Into::into) }))
            }
        }
    };
}

impl_handlers!();
impl_handlers!(T1);
impl_handlers!(T1, T2);
impl_handlers!(T1, T2, T3);
impl_handlers!(T1, T2, T3, T4);
impl_handlers!(T1, T2, T3, T4, T5);
impl_handlers!(T1, T2, T3, T4, T5, T6);
impl_handlers!(T1, T2, T3, T4, T5, T6, T7);
impl_handlers!(T1, T2, T3, T4, T5, T6, T7, T8);

pub(crate) fn boxed<H: Handler<M>, M>(h: H) -> BoxedHandler {
    Arc::new(move |cx| h.call(cx))
}

pub(crate) fn boxed_connect<H: Handler<M>, M>(h: H) -> BoxedConnectHandler {
    Arc::new(move |cx| h.prepare(cx))
}

pub(crate) fn boxed_middleware<H: Middleware<M>, M>(h: H) -> BoxedMiddleware {
    Arc::new(move |cx| h.call(cx))
}

/// Polls `fut` once where we stand; if it is not finished, spawns the rest.
///
/// Handlers of one socket thus start in arrival order and run up to their first pending
/// `.await` before the next packet is looked at; only what comes after that runs
/// concurrently. Most handlers finish at once and cost no task at all.
pub(crate) fn run_or_spawn(mut fut: BoxFuture) -> Option<tokio::task::JoinHandle<()>> {
    let mut cx = TaskContext::from_waker(Waker::noop());
    match fut.as_mut().poll(&mut cx) {
        Poll::Ready(()) => None,
        Poll::Pending => Some(tokio::spawn(fut)),
    }
}
