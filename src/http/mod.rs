//! The HTTP side: each area has its own `router()`, merged here.

mod admin;
mod articles;
mod audience_api;
mod auth;
mod digests;
mod download;
pub mod error;
mod feeds;
pub mod form;
mod ops;
mod public;
mod runs_api;
mod service;
mod sources_api;
pub mod throttle;

use std::sync::Arc;
use std::time::Instant;

use axum::Router;
use axum::extract::{DefaultBodyLimit, MatchedPath, Request, State};
use axum::http::Method;
use axum::middleware::{self, Next};
use axum::response::Response;
use axum::routing::MethodRouter;

use tokio::sync::Notify;

use crate::audience::Audience;
use crate::config::Config;
use crate::digest::Digests;
use crate::feeds::builder::FeedBuilder;
use crate::ingest::Ingestor;
use crate::metrics::Metrics;
use crate::sources::Sources;
use crate::store::Store;

pub use articles::MAX_BODY_BYTES;
pub use error::ApiError;
pub use service::MakeService;

/// What every handler reaches, behind one `Arc`: axum clones the state for each request
/// (the router, the middleware, each extractor), so a clone is one counter, not eleven.
#[derive(Clone)]
pub struct AppState(Arc<Shared>);

impl AppState {
    pub fn new(shared: Shared) -> AppState {
        AppState(Arc::new(shared))
    }
}

impl std::ops::Deref for AppState {
    type Target = Shared;

    fn deref(&self) -> &Shared {
        &self.0
    }
}

pub struct Shared {
    pub config: Arc<Config>,
    pub store: Arc<dyn Store>,
    pub ingestor: Ingestor,
    pub metrics: Arc<Metrics>,
    pub feeds: Arc<FeedBuilder>,
    /// Woken when publication events were written outside the ingest path (retractions).
    pub published: Arc<Notify>,
    pub audience: Arc<Audience>,
    pub digests: Arc<Digests>,
    pub sources: Arc<Sources>,
    pub throttles: Arc<throttle::Throttles>,
}

/// Routes as they are added to the router, so tests can list every path the service
/// answers from the router's own construction rather than from a hand-kept list.
pub struct RouteTable {
    router: Router<AppState>,
    paths: Vec<&'static str>,
}

impl RouteTable {
    fn new() -> RouteTable {
        RouteTable { router: Router::new(), paths: Vec::new() }
    }

    pub(crate) fn route(mut self, path: &'static str, handlers: MethodRouter<AppState>) -> RouteTable {
        self.paths.push(path);
        self.router = self.router.route(path, handlers);
        self
    }

    pub(crate) fn layer_last(mut self, layer: DefaultBodyLimit) -> RouteTable {
        self.router = self.router.layer(layer);
        self
    }
}

fn route_table() -> RouteTable {
    let table = ops::routes(RouteTable::new());
    let table = feeds::routes(table);
    let table = public::routes(table);
    let table = digests::routes(table);
    let table = admin::routes(table);
    let table = audience_api::routes(table);
    let table = runs_api::routes(table);
    let table = sources_api::routes(table);
    articles::routes(table)
}

/// Every route path the service answers, e.g. `/api/v1/articles/{id}`.
pub fn route_paths() -> Vec<&'static str> {
    route_table().paths
}

pub fn router(state: AppState) -> Router {
    route_table()
        .router
        .route_layer(middleware::from_fn_with_state(state.clone(), track))
        .fallback(not_found)
        .with_state(state)
}

async fn not_found(State(state): State<AppState>, request: Request) -> ApiError {
    state.metrics.record_request(request.method(), "unmatched", 404);
    ApiError::NotFound("no such page".into())
}

/// Counts and logs each request by its route pattern (never the raw path, which may
/// carry a token in later routes).
async fn track(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let method = request.method().clone();
    let matched = request.extensions().get::<MatchedPath>().cloned();
    let route = matched.as_ref().map_or("", MatchedPath::as_str);
    let started = Instant::now();
    let response = next.run(request).await;
    record(&state, &method, route, &response, started);
    response
}

/// Counts and logs one answered request.
fn record(state: &AppState, method: &Method, route: &str, response: &Response, started: Instant) {
    let status = response.status().as_u16();
    state.metrics.record_request(method, route, status);
    tracing::debug!(%method, route, status, elapsed_ms = started.elapsed().as_secs_f64() * 1000.0, "request");
}
