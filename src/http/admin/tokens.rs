//! API tokens: the list (names and public ids, never secrets), create — the plaintext is
//! shown on that one page only — and revoke.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::{get, post};
use chrono::Utc;
use serde_json::{Value, json};

use super::super::{ApiError, AppState, RouteTable};
use super::session::AdminForm;
use super::{Admin, form_error, render, see_other};
use crate::domain::FieldError;
use crate::domain::text::clean_line;
use crate::domain::token::NewToken;

const MAX_TOKEN_NAME_CHARS: usize = 100;

pub(super) fn routes(table: RouteTable) -> RouteTable {
    table.route("/admin/tokens", get(index).post(create)).route("/admin/tokens/{id}/revoke", post(revoke))
}

async fn tokens_page(
    state: &AppState,
    admin: &Admin,
    status: StatusCode,
    created: Option<Value>,
    error: Option<&FieldError>,
) -> Result<Response, ApiError> {
    let tokens = state.store.api_tokens().await?;
    let context = json!({"nav": "tokens", "tokens": tokens, "created": created, "error": error.map(form_error)});
    Ok(render(state, admin, "web/admin/tokens.html", status, context))
}

async fn index(State(state): State<AppState>, admin: Admin) -> Result<Response, ApiError> {
    tokens_page(&state, &admin, StatusCode::OK, None, None).await
}

async fn create(State(state): State<AppState>, AdminForm { admin, form }: AdminForm) -> Result<Response, ApiError> {
    let name = clean_line(form.text("name"));
    if name.is_empty() || name.chars().count() > MAX_TOKEN_NAME_CHARS {
        let error = FieldError::new("name", format!("must be 1 to {MAX_TOKEN_NAME_CHARS} characters"));
        return tokens_page(&state, &admin, StatusCode::UNPROCESSABLE_ENTITY, None, Some(&error)).await;
    }
    let token = NewToken::generate()?;
    let id = state.store.create_api_token(&name, &token.public_id, &token.secret_hash, Utc::now()).await?;
    let detail = json!({"name": name});
    state.audience.audit(&admin.actor(), "token.create", &id.to_string(), detail).await;
    let created = json!({"name": name, "plaintext": token.plaintext});
    tokens_page(&state, &admin, StatusCode::OK, Some(created), None).await
}

async fn revoke(
    State(state): State<AppState>,
    Path(id): Path<String>,
    AdminForm { admin, .. }: AdminForm,
) -> Result<Response, ApiError> {
    let id: i64 = id
        .trim()
        .parse()
        .map_err(|_| ApiError::BadRequest(FieldError::new("id", format!("{id:?} is not a token id"))))?;
    if !state.store.revoke_api_token(id, Utc::now()).await? {
        return Err(ApiError::NotFound(format!("no unrevoked token {id}")));
    }
    state.audience.audit(&admin.actor(), "token.revoke", &id.to_string(), json!({})).await;
    Ok(see_other("/admin/tokens"))
}
