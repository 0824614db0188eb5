//! Extractors of server-side context: app state, per-socket data, the handshake.

use super::{Context, ExtractError, FromContext};
pub use crate::socket::Handshake;

/// App-wide state registered with
/// [`SocketIoBuilder::with_state`](crate::SocketIoBuilder::with_state), cloned out.
#[derive(Debug, Clone)]
pub struct State<T>(pub T);

impl<T: Clone + Send + Sync + 'static> FromContext for State<T> {
    fn from_context(cx: &Context<'_>) -> Result<Self, ExtractError> {
        cx.socket
            .namespace()
            .shared()
            .state
            .get::<T>()
            .map(State)
            .ok_or(ExtractError::MissingState(std::any::type_name::<T>()))
    }
}

/// A value from the socket's own store ([`Socket::extensions`](crate::Socket::extensions)),
/// cloned out. Without one the extraction fails (see [the module docs](crate::extract));
/// [`MaybeExtension`] accepts its absence.
#[derive(Debug, Clone)]
pub struct Extension<T>(pub T);

impl<T: Clone + Send + Sync + 'static> FromContext for Extension<T> {
    fn from_context(cx: &Context<'_>) -> Result<Self, ExtractError> {
        cx.socket
            .extensions()
            .get::<T>()
            .map(Extension)
            .ok_or(ExtractError::MissingExtension(std::any::type_name::<T>()))
    }
}

/// Like [`Extension`], but `None` when the socket holds no such value.
#[derive(Debug, Clone)]
pub struct MaybeExtension<T>(pub Option<T>);

impl<T: Clone + Send + Sync + 'static> FromContext for MaybeExtension<T> {
    fn from_context(cx: &Context<'_>) -> Result<Self, ExtractError> {
        Ok(MaybeExtension(cx.socket.extensions().get::<T>()))
    }
}

impl FromContext for Handshake {
    fn from_context(cx: &Context<'_>) -> Result<Self, ExtractError> {
        Ok(cx.socket.handshake())
    }
}
