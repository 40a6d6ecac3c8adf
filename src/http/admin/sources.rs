//! Background sources: their state (read-only, as configured in bantin.toml), with
//! pause and resume.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::{get, post};
use serde_json::json;

use super::super::{ApiError, AppState, RouteTable};
use super::session::AdminForm;
use super::{Admin, render, see_other};

pub(super) fn routes(table: RouteTable) -> RouteTable {
    table
        .route("/admin/sources", get(index))
        .route("/admin/sources/{name}/pause", post(pause))
        .route("/admin/sources/{name}/resume", post(resume))
}

async fn index(State(state): State<AppState>, admin: Admin) -> Result<Response, ApiError> {
    let sources = state.sources.views().await?;
    let context = json!({"nav": "sources", "sources": sources});
    Ok(render(&state, &admin, "web/admin/sources.html", StatusCode::OK, context))
}

async fn set_paused(state: &AppState, admin: &Admin, name: &str, paused: bool) -> Result<Response, ApiError> {
    if !state.sources.set_paused(name, paused).await? {
        return Err(ApiError::NotFound(format!("no source named {name:?}")));
    }
    let action = if paused { "source.pause" } else { "source.resume" };
    state.audience.audit(&admin.actor(), action, name, json!({})).await;
    Ok(see_other("/admin/sources"))
}

async fn pause(
    State(state): State<AppState>,
    Path(name): Path<String>,
    AdminForm { admin, .. }: AdminForm,
) -> Result<Response, ApiError> {
    set_paused(&state, &admin, &name, true).await
}

async fn resume(
    State(state): State<AppState>,
    Path(name): Path<String>,
    AdminForm { admin, .. }: AdminForm,
) -> Result<Response, ApiError> {
    set_paused(&state, &admin, &name, false).await
}
