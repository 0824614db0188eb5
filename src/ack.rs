//! Acknowledgements: answering a client's ack, and awaiting the client's answer to ours.

use std::future::Future;
use std::marker::PhantomData;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context as TaskContext, Poll};
use std::time::Duration;

use serde::Serialize;
use serde::de::DeserializeOwned;
use tokio::sync::oneshot;

use crate::errors::{AckError, EmitError};
use crate::extract::{Context, ExtractError, FromContext, Kind};
use crate::parser::Args;
use crate::socket::Socket;

/// Answers the client's acknowledgement callback for the event being handled.
///
/// If the client did not ask for an ack, sending does nothing.
#[derive(Debug, Clone)]
pub struct AckSender {
    socket: Arc<Socket>,
    id: Option<u64>,
}

impl AckSender {
    /// Whether the client asked for an ack.
    pub fn requested(&self) -> bool {
        self.id.is_some()
    }

    /// Answers with one argument (the client's callback gets `data`).
    pub fn send<T: Serialize + ?Sized>(self, data: &T) -> Result<(), EmitError> {
        self.send_inner(data, false)
    }

    /// Answers with any number of arguments: `data` must serialize to an array (a tuple, a
    /// `Vec`), whose elements become the callback's arguments (`&()` for none).
    pub fn send_args<T: Serialize + ?Sized>(self, data: &T) -> Result<(), EmitError> {
        self.send_inner(data, true)
    }

    fn send_inner<T: Serialize + ?Sized>(self, data: &T, spread: bool) -> Result<(), EmitError> {
        let Some(id) = self.id else { return Ok(()) };
        let enc = self
            .socket
            .parser()
            .ack(self.socket.ns(), id, data, spread)?;
        self.socket.send_encoded(&enc)
    }
}

impl FromContext for AckSender {
    fn from_context(cx: &Context<'_>) -> Result<Self, ExtractError> {
        match cx.kind {
            Kind::Event { ack, .. } => Ok(AckSender {
                socket: cx.socket.clone(),
                id: ack,
            }),
            _ => Err(ExtractError::NotAvailable("AckSender")),
        }
    }
}

/// The answer to an [`emit_with_ack`](crate::Socket::emit_with_ack): resolves to the
/// arguments of the client's ack, deserialized as one list into `R` (a tuple of exactly
/// that many elements, or a `Vec`), or an error on timeout, disconnect or a reply of another
/// shape.
#[must_use = "an ack future does nothing unless awaited"]
pub struct AckFuture<R> {
    inner: Pin<Box<dyn Future<Output = Result<Args, AckError>> + Send>>,
    _r: PhantomData<fn() -> R>,
}

impl<R> std::fmt::Debug for AckFuture<R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AckFuture").finish_non_exhaustive()
    }
}

impl<R: DeserializeOwned> AckFuture<R> {
    pub(crate) fn new(rx: oneshot::Receiver<Args>, timeout: Duration) -> Self {
        Self {
            inner: Box::pin(async move {
                match tokio::time::timeout(timeout, rx).await {
                    Ok(Ok(args)) => Ok(args),
                    Ok(Err(_)) => Err(AckError::Disconnected),
                    Err(_) => Err(AckError::Timeout),
                }
            }),
            _r: PhantomData,
        }
    }

    pub(crate) fn failed(e: AckError) -> Self {
        Self {
            inner: Box::pin(std::future::ready(Err(e))),
            _r: PhantomData,
        }
    }
}

impl<R: DeserializeOwned> Future for AckFuture<R> {
    type Output = Result<R, AckError>;
    fn poll(mut self: Pin<&mut Self>, cx: &mut TaskContext<'_>) -> Poll<Self::Output> {
        self.inner
            .as_mut()
            .poll(cx)
            .map(|r| r.and_then(|args| Ok(args.deserialize_list::<R>()?)))
    }
}
