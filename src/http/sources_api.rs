//! `GET /api/v1/sources`: the configured background sources and their state.

use axum::Json;
use axum::extract::State;
use axum::routing::get;
use serde_json::{Value, json};

use super::auth::ApiClient;
use super::error::ApiError;
use super::{AppState, RouteTable};

pub(super) fn routes(table: RouteTable) -> RouteTable {
    table.route("/api/v1/sources", get(sources))
}

async fn sources(State(state): State<AppState>, _client: ApiClient) -> Result<Json<Value>, ApiError> {
    Ok(Json(json!({ "sources": state.sources.views().await? })))
}
