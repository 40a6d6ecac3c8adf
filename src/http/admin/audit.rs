//! The audit log of admin actions, newest first, a page at a time.

use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::get;
use serde::Deserialize;
use serde_json::json;

use super::super::{ApiError, AppState, RouteTable};
use super::{Admin, PAGE_ROWS, render};
use crate::domain::FieldError;

pub(super) fn routes(table: RouteTable) -> RouteTable {
    table.route("/admin/audit", get(audit_log))
}

#[derive(Deserialize)]
struct AuditParams {
    before: Option<String>,
}

async fn audit_log(
    State(state): State<AppState>,
    admin: Admin,
    Query(params): Query<AuditParams>,
) -> Result<Response, ApiError> {
    let before = match params.before.as_deref().map(str::trim).filter(|s| !s.is_empty()) {
        Some(raw) => Some(raw.parse::<i64>().map_err(|_| {
            ApiError::BadRequest(FieldError::new("before", format!("{raw:?} is not an audit entry id")))
        })?),
        None => None,
    };
    let mut entries = state.store.audit_log(before, PAGE_ROWS as i64 + 1).await?;
    let more = entries.len() > PAGE_ROWS;
    entries.truncate(PAGE_ROWS);
    let older = entries.last().filter(|_| more).map(|last| format!("/admin/audit?before={}", last.id));
    let rows: Vec<_> = entries
        .iter()
        .map(|e| {
            json!({"occurred_at": e.occurred_at, "actor": e.actor, "action": e.action, "subject": e.subject,
                   "detail": e.detail.to_string()})
        })
        .collect();
    let context = json!({"nav": "audit", "entries": rows, "older": older, "paged": before.is_some()});
    Ok(render(&state, &admin, "web/admin/audit.html", StatusCode::OK, context))
}
