//! Operational endpoints: health and metrics.

use axum::Json;
use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;
use axum::routing::get;
use serde_json::{Value, json};

use super::error::ApiError;
use super::{AppState, RouteTable};

/// The OpenAPI document kept in the repository, served as is.
const OPENAPI: &str = include_str!("../../api/openapi.json");

pub fn routes(table: RouteTable) -> RouteTable {
    table.route("/healthz", get(healthz)).route("/metrics", get(metrics)).route("/api/v1/openapi.json", get(openapi))
}

async fn openapi() -> impl IntoResponse {
    ([(header::CONTENT_TYPE, "application/json")], OPENAPI)
}

async fn healthz(State(state): State<AppState>) -> Result<Json<Value>, ApiError> {
    if let Err(e) = state.store.ping().await {
        tracing::warn!(error = %e, "health check: the database does not answer");
        return Err(ApiError::Unavailable);
    }
    Ok(Json(json!({ "status": "ok", "database": state.store.backend() })))
}

async fn metrics(State(state): State<AppState>) -> impl IntoResponse {
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")], state.metrics.render())
}
