//! Digest runs in the admin REST API (bearer token): a list's recent runs with their
//! delivery counts, a run started now, one run, and cancelling one. Documented in
//! api/openapi.json; starting and cancelling are written to the audit log.

use axum::Json;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use chrono::Utc;
use serde::Deserialize;
use serde_json::{Value, json};

use super::audience_api::{actor, given, list_not_found, positive, query};
use super::auth::ApiClient;
use super::error::ApiError;
use super::{AppState, RouteTable};
use crate::store::digests::DigestRun;

const DEFAULT_RUNS: i64 = 20;
const MAX_RUNS: i64 = 200;

pub(super) fn routes(table: RouteTable) -> RouteTable {
    table
        .route("/api/v1/lists/{slug}/runs", get(list_runs).post(run_now))
        .route("/api/v1/runs/{id}", get(show_run))
        .route("/api/v1/runs/{id}/cancel", post(cancel))
}

#[derive(Deserialize)]
struct RunsParams {
    limit: Option<String>,
}

async fn list_runs(
    State(state): State<AppState>,
    _client: ApiClient,
    Path(slug): Path<String>,
    params: Result<Query<RunsParams>, QueryRejection>,
) -> Result<Json<Value>, ApiError> {
    let params = query(params)?;
    let limit = match given(&params.limit) {
        Some(raw) => positive("limit", raw)?.min(MAX_RUNS),
        None => DEFAULT_RUNS,
    };
    let list = state.store.list(&slug).await?.ok_or_else(|| list_not_found(&slug))?;
    let runs = state.store.runs(Some(list.id), limit).await?;
    Ok(Json(json!({ "runs": runs })))
}

/// Starts a run now; its deliveries are queued before the answer, the worker sends them.
async fn run_now(
    State(state): State<AppState>,
    client: ApiClient,
    Path(slug): Path<String>,
) -> Result<Response, ApiError> {
    let list = state.store.list(&slug).await?.ok_or_else(|| list_not_found(&slug))?;
    let run = state.digests.start_now(&list, Utc::now()).await?;
    let detail = json!({"run": run.id, "queued": run.queued});
    state.audience.audit(&actor(&client), "digest.run", &format!("list:{}", list.slug), detail).await;
    let location = format!("/api/v1/runs/{}", run.id);
    Ok((StatusCode::ACCEPTED, [(header::LOCATION, location)], Json(json!(run))).into_response())
}

async fn found(state: &AppState, raw: &str) -> Result<DigestRun, ApiError> {
    let not_found = || ApiError::NotFound(format!("no digest run with the id {raw:?}"));
    let id = raw.parse::<i64>().map_err(|_| not_found())?;
    state.store.run(id).await?.ok_or_else(not_found)
}

async fn show_run(
    State(state): State<AppState>,
    _client: ApiClient,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    Ok(Json(json!(found(&state, &id).await?)))
}

/// Cancels a pending or sending run: its queued deliveries are not sent (those in
/// flight finish). A finished run is a conflict.
async fn cancel(
    State(state): State<AppState>,
    client: ApiClient,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let run = found(&state, &id).await?;
    if !state.store.cancel_run(run.id, Utc::now()).await? {
        return Err(ApiError::Conflict(format!("run {} is already {}", run.id, run.status.as_str())));
    }
    let detail = json!({"list": run.list, "sent": run.sent});
    state.audience.audit(&actor(&client), "digest.cancel", &format!("run:{}", run.id), detail).await;
    Ok(Json(json!(found(&state, &id).await?)))
}
