//! Extractors of what the client sent: data, binary attachments, the event name.

use bytes::Bytes;
use serde::de::DeserializeOwned;

use super::{Context, ExtractError, FromContext, Kind};

fn deserialize<T: DeserializeOwned>(cx: &Context<'_>) -> Result<T, ExtractError> {
    match &cx.kind {
        Kind::Event { args, .. } => Ok(args.deserialize()?),
        Kind::Connect { auth } => Ok(serde_json::from_str(auth.map_or("null", |a| a.as_str()))?),
        Kind::Disconnect { .. } => Err(ExtractError::NotAvailable("Data")),
    }
}

/// The data the client sent, deserialized into `T`.
///
/// In an event handler: the event's only argument, or all of them as a tuple when there are
/// several (`Data<(String, u32)>`), or `null` when there are none: convenient for events
/// of one argument, but it cannot tell `f()` from `f(null)` nor `f([1, 2])` from `f(1, 2)`;
/// [`DataArgs`] can. In a connect handler or middleware: the auth payload (`null` when
/// absent).
///
/// When `T` does not deserialize, an event handler is skipped (and a client that asked for
/// an ack gets `{"error": message}`), and a connect handler refuses the connection with a
/// CONNECT_ERROR carrying the message. Take `Data<Option<T>>` or [`TryData`] to accept
/// missing or bad data.
#[derive(Debug, Clone)]
pub struct Data<T>(pub T);

impl<T: DeserializeOwned + Send + 'static> FromContext for Data<T> {
    fn from_context(cx: &Context<'_>) -> Result<Self, ExtractError> {
        deserialize(cx).map(Data)
    }
}

/// Like [`Data`], but the handler runs either way and gets the deserialization error.
/// In a connect handler, this accepts a client whose auth is missing or malformed.
#[derive(Debug)]
pub struct TryData<T>(pub Result<T, serde_json::Error>);

impl<T: DeserializeOwned + Send + 'static> FromContext for TryData<T> {
    fn from_context(cx: &Context<'_>) -> Result<Self, ExtractError> {
        match deserialize(cx) {
            Ok(v) => Ok(TryData(Ok(v))),
            Err(ExtractError::Data(e)) => Ok(TryData(Err(e))),
            Err(e) => Err(e),
        }
    }
}

/// The whole argument list of an event, deserialized as one sequence into `T`, whatever
/// its length: a tuple of exactly that many arguments (`DataArgs<()>` for none,
/// `DataArgs<(String,)>` for one, `DataArgs<(String, u32)>` for two), or a `Vec` of any
/// number (`DataArgs<Vec<Value>>`, with [`Value`](crate::Value) keeping binary data
/// wherever it is). `f()`, `f(null)`, `f([1, 2])` and `f(1, 2)` all stay apart; a tuple of
/// the wrong length fails the extraction, as [`Data`] does. The same list shape as
/// [`Socket::emit_args`](crate::Socket::emit_args) sends and as ack replies are read in.
/// Only in event handlers.
#[derive(Debug, Clone)]
pub struct DataArgs<T>(pub T);

impl<T: DeserializeOwned + Send + 'static> FromContext for DataArgs<T> {
    fn from_context(cx: &Context<'_>) -> Result<Self, ExtractError> {
        match &cx.kind {
            Kind::Event { args, .. } => Ok(DataArgs(args.deserialize_list()?)),
            _ => Err(ExtractError::NotAvailable("DataArgs")),
        }
    }
}

/// The binary attachments of the event, in order (empty for a plain event).
#[derive(Debug, Clone)]
pub struct Bin(pub Vec<Bytes>);

impl FromContext for Bin {
    fn from_context(cx: &Context<'_>) -> Result<Self, ExtractError> {
        match &cx.kind {
            Kind::Event { args, .. } => Ok(Bin(args.attachments().to_vec())),
            _ => Err(ExtractError::NotAvailable("Bin")),
        }
    }
}

/// The name of the event being handled (useful in a catch-all handler).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event(pub String);

impl FromContext for Event {
    fn from_context(cx: &Context<'_>) -> Result<Self, ExtractError> {
        match &cx.kind {
            Kind::Event { name, .. } => Ok(Event((*name).to_owned())),
            _ => Err(ExtractError::NotAvailable("Event")),
        }
    }
}
