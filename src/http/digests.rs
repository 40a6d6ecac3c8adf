//! Public "view in browser" pages of digest runs: what the run held for every reader
//! of the list, without anyone's personal links.

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use chrono_tz::Tz;

use super::{AppState, RouteTable};
use crate::config::Language;
use crate::store::digests::RunStatus;

pub(super) fn routes(table: RouteTable) -> RouteTable {
    table.route("/digests/{run_id}", get(view))
}

async fn view(State(state): State<AppState>, Path(run_id): Path<String>, headers: HeaderMap) -> Response {
    let not_found = || (StatusCode::NOT_FOUND, "no such digest").into_response();
    let Ok(run_id) = run_id.parse::<i64>() else { return not_found() };
    let found = async {
        let Some((run, content)) = state.store.run_content(run_id, state.config.digest_items).await? else {
            return Ok(None);
        };
        Ok::<_, crate::store::StoreError>(state.store.list(&run.list).await?.map(|list| (run, content, list)))
    };
    let (run, content, list) = match found.await {
        Ok(Some(found)) => found,
        Ok(None) => return not_found(),
        Err(e) => return super::ApiError::from(e).into_response(),
    };
    if matches!(run.status, RunStatus::Skipped | RunStatus::Cancelled) {
        return not_found();
    }
    let lang = Language::parse(&list.language).unwrap_or(state.config.language);
    let lang = super::feeds::page_language(None, &headers, lang);
    let tz: Tz = list.timezone.parse().unwrap_or(state.config.timezone);
    let context = state.digests.page_context(&list, &content, lang, run.scheduled_at.with_timezone(&tz));
    match state.audience.templates.render("email/digest.html", lang, context) {
        Ok(html) => Html(html).into_response(),
        Err(e) => super::ApiError::Unexpected(e).into_response(),
    }
}
