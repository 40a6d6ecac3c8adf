//! The admin web UI at /admin: login, dashboard, lists, subscribers, import and export,
//! API tokens and the audit log. Server-rendered `.html` templates (so everything printed
//! is escaped); every page needs a session, every POST its CSRF token.

mod audit;
mod dashboard;
mod digests;
mod lists;
mod session;
mod sources;
mod subscribers;
mod tokens;
mod transfer;

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use serde_json::{Value, json};

use super::{AppState, RouteTable};
use crate::domain::FieldError;

pub(super) use session::Admin;

pub(super) fn routes(table: RouteTable) -> RouteTable {
    let table = session::routes(table);
    let table = dashboard::routes(table);
    let table = lists::routes(table);
    let table = digests::routes(table);
    let table = subscribers::routes(table);
    let table = transfer::routes(table);
    let table = tokens::routes(table);
    let table = sources::routes(table);
    audit::routes(table)
}

/// Rows per page of the subscriber search and the audit log.
const PAGE_ROWS: usize = 50;

/// Renders an admin page in the site language, with the session's CSRF token for its forms.
fn render(state: &AppState, admin: &Admin, template: &str, status: StatusCode, mut context: Value) -> Response {
    if let Some(map) = context.as_object_mut() {
        map.insert("admin".into(), json!({"username": admin.username, "csrf": admin.csrf_token}));
    }
    framed_page(state, template, status, context)
}

/// A page that other sites may not frame (so no one can trick an admin into clicking).
fn framed_page(state: &AppState, template: &str, status: StatusCode, mut context: Value) -> Response {
    let invalid = context.get("error").and_then(|e| e.get("field")).cloned().unwrap_or(Value::Null);
    if let Some(map) = context.as_object_mut() {
        map.insert("invalid".into(), invalid);
    }
    let mut response = super::public::page(state, template, state.config.language, status, context);
    let headers = response.headers_mut();
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    headers.insert(header::CONTENT_SECURITY_POLICY, HeaderValue::from_static("frame-ancestors 'none'"));
    response
}

/// After a successful POST: show the result page with a GET.
fn see_other(path: &str) -> Response {
    Redirect::to(path).into_response()
}

/// A form error as the templates show it: the sentence, and the field to mark (`invalid`).
fn form_error(error: &FieldError) -> Value {
    json!({"field": error.field, "message": error.to_string()})
}

/// The translation `key` in the site language.
fn text(state: &AppState, key: &str) -> String {
    state.audience.templates.strings(state.config.language)[key].as_str().unwrap_or(key).to_owned()
}
