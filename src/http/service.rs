//! What the server runs for each connection. A request for a prerendered feed that is in
//! the cache (the bulk of the traffic: feed readers polling, thousands a second) is
//! answered from the cache directly, with the same response and the same request metrics
//! as through the router; everything else goes through the router. The router's own path
//! for such a request (route matching, the tracking middleware, the path and query
//! extractors, the connection's address) was a sixth of the server's CPU when answering
//! 304s. A layer added to the router does not see the requests answered here: add it
//! here too if feeds need it.

use std::convert::Infallible;
use std::future::{Ready, ready};
use std::net::SocketAddr;
use std::task::{Context, Poll};

use axum::Router;
use axum::extract::{ConnectInfo, Request};
use axum::response::Response;
use axum::routing::future::RouteFuture;
use axum::serve::{IncomingStream, Listener};
use futures_util::future::Either;
use tower_service::Service;

use super::{AppState, feeds};

/// Makes a [`ConnectionService`] for each accepted connection.
#[derive(Clone)]
pub struct MakeService {
    state: AppState,
    router: Router,
}

impl MakeService {
    pub fn new(state: AppState) -> MakeService {
        MakeService { router: super::router(state.clone()), state }
    }
}

impl<L: Listener<Addr = SocketAddr>> Service<IncomingStream<'_, L>> for MakeService {
    type Response = ConnectionService;
    type Error = Infallible;
    type Future = Ready<Result<ConnectionService, Infallible>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, stream: IncomingStream<'_, L>) -> Self::Future {
        let (state, router) = (self.state.clone(), self.router.clone());
        ready(Ok(ConnectionService { state, router, peer: *stream.remote_addr() }))
    }
}

/// Answers one connection's requests: from the feed cache when it can, else the router.
#[derive(Clone)]
pub struct ConnectionService {
    state: AppState,
    router: Router,
    peer: SocketAddr,
}

impl Service<Request> for ConnectionService {
    type Response = Response;
    type Error = Infallible;
    type Future = Either<Ready<Result<Response, Infallible>>, RouteFuture<Infallible>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        // The router is always ready.
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, mut request: Request) -> Self::Future {
        if let Some(response) = feeds::from_cache(&self.state, &request) {
            return Either::Left(ready(Ok(response)));
        }
        request.extensions_mut().insert(ConnectInfo(self.peer));
        Either::Right(self.router.call(request))
    }
}
