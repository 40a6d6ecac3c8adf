//! The HTTP side: each area has its own `router()`, merged here.

mod articles;
mod auth;
pub mod error;
mod ops;

use std::sync::Arc;
use std::time::Instant;

use axum::Router;
use axum::extract::{MatchedPath, Request, State};
use axum::middleware::{self, Next};
use axum::response::Response;

use crate::config::Config;
use crate::ingest::Ingestor;
use crate::metrics::Metrics;
use crate::store::Store;

pub use articles::MAX_BODY_BYTES;
pub use error::ApiError;

#[derive(Clone)]
pub struct AppState {
    pub config: Arc<Config>,
    pub store: Arc<dyn Store>,
    pub ingestor: Ingestor,
    pub metrics: Arc<Metrics>,
}

pub fn router(state: AppState) -> Router {
    Router::new()
        .merge(ops::router())
        .merge(articles::router())
        .route_layer(middleware::from_fn_with_state(state.clone(), track))
        .fallback(not_found)
        .with_state(state)
}

async fn not_found(State(state): State<AppState>, request: Request) -> ApiError {
    state
        .metrics
        .record_request(request.method().as_str(), "unmatched", 404);
    ApiError::NotFound("no such page".into())
}

/// Counts and logs each request by its route pattern (never the raw path, which may
/// carry a token in later routes).
async fn track(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let method = request.method().clone();
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map(|p| p.as_str().to_owned())
        .unwrap_or_default();
    let started = Instant::now();
    let response = next.run(request).await;
    let status = response.status().as_u16();
    state
        .metrics
        .record_request(method.as_str(), &route, status);
    tracing::debug!(%method, route, status, elapsed_ms = started.elapsed().as_secs_f64() * 1000.0, "request");
    response
}
