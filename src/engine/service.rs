//! The tower [`Layer`] and [`Service`] that mount an engine in front of an inner service.

use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::Bytes;
use http::{Request, Response};
use http_body::Body;
use http_body_util::Full;
use pin_project_lite::pin_project;
use tower_layer::Layer;
use tower_service::Service;

use super::{Engine, EngineHandler, ResponseBody};

/// A [`Layer`] that answers Engine.IO requests with an [`Engine`] and passes the rest on.
pub struct EngineLayer<H: EngineHandler> {
    engine: Arc<Engine<H>>,
}

impl<H: EngineHandler> EngineLayer<H> {
    /// A layer serving `engine`.
    pub fn new(engine: Arc<Engine<H>>) -> Self {
        Self { engine }
    }
}

impl<H: EngineHandler> Clone for EngineLayer<H> {
    fn clone(&self) -> Self {
        Self {
            engine: self.engine.clone(),
        }
    }
}

impl<H: EngineHandler> std::fmt::Debug for EngineLayer<H> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EngineLayer").finish_non_exhaustive()
    }
}

impl<S, H: EngineHandler> Layer<S> for EngineLayer<H> {
    type Service = EngineService<S, H>;
    fn layer(&self, inner: S) -> Self::Service {
        EngineService {
            inner,
            engine: self.engine.clone(),
        }
    }
}

/// The [`Service`] built by [`EngineLayer`].
pub struct EngineService<S, H: EngineHandler> {
    inner: S,
    engine: Arc<Engine<H>>,
}

impl<S: Clone, H: EngineHandler> Clone for EngineService<S, H> {
    fn clone(&self) -> Self {
        Self {
            inner: self.inner.clone(),
            engine: self.engine.clone(),
        }
    }
}

impl<S, H: EngineHandler> std::fmt::Debug for EngineService<S, H> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EngineService").finish_non_exhaustive()
    }
}

impl<S, H: EngineHandler> EngineService<S, H> {
    /// The engine behind this service.
    pub fn engine(&self) -> &Arc<Engine<H>> {
        &self.engine
    }
}

impl<H: EngineHandler> EngineService<NotFound, H> {
    /// A service that answers only Engine.IO requests and 404 for everything else.
    pub fn standalone(engine: Arc<Engine<H>>) -> Self {
        Self {
            inner: NotFound,
            engine,
        }
    }
}

impl<S, H, ReqBody, ResBody> Service<Request<ReqBody>> for EngineService<S, H>
where
    S: Service<Request<ReqBody>, Response = Response<ResBody>>,
    H: EngineHandler,
    ReqBody: Body + Send + 'static,
    ReqBody::Data: Send,
    ReqBody::Error: std::fmt::Display,
    ResBody: Body<Data = Bytes>,
{
    type Response = Response<ResponseBody<ResBody>>;
    type Error = S::Error;
    type Future = ResponseFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request<ReqBody>) -> Self::Future {
        if self.engine.matches(req.uri().path()) {
            ResponseFuture {
                kind: FutKind::Engine {
                    fut: Box::pin(self.engine.clone().handle(req)),
                },
            }
        } else {
            ResponseFuture {
                kind: FutKind::Inner {
                    fut: self.inner.call(req),
                },
            }
        }
    }
}

type EngineFuture = Pin<Box<dyn Future<Output = Response<Full<Bytes>>> + Send>>;

pin_project! {
    /// The future of [`EngineService`].
    pub struct ResponseFuture<F> {
        #[pin]
        kind: FutKind<F>,
    }
}

pin_project! {
    #[project = FutProj]
    enum FutKind<F> {
        Inner { #[pin] fut: F },
        Engine { fut: EngineFuture },
    }
}

impl<F, B, E> Future for ResponseFuture<F>
where
    F: Future<Output = Result<Response<B>, E>>,
{
    type Output = Result<Response<ResponseBody<B>>, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match self.project().kind.project() {
            FutProj::Inner { fut } => fut.poll(cx).map_ok(|res| res.map(ResponseBody::inner)),
            FutProj::Engine { fut } => fut
                .as_mut()
                .poll(cx)
                .map(|res| Ok(res.map(ResponseBody::engine))),
        }
    }
}

/// An inner service that answers 404 to everything: for an engine served on its own.
#[derive(Debug, Clone, Copy, Default)]
pub struct NotFound;

impl<B> Service<Request<B>> for NotFound {
    type Response = Response<Full<Bytes>>;
    type Error = Infallible;
    type Future = std::future::Ready<Result<Self::Response, Infallible>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, _: Request<B>) -> Self::Future {
        let mut res = Response::new(Full::new(Bytes::new()));
        *res.status_mut() = http::StatusCode::NOT_FOUND;
        std::future::ready(Ok(res))
    }
}
