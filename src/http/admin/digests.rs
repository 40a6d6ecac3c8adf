//! A list's digest in the admin UI: its recent runs with their counts (cancel a running
//! one), run now, a preview for a subscriber or a sample reader, and a test send to an
//! address. Shown on the list's edit page; every action is a POSTed form with its CSRF
//! token and is written to the audit log.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::post;
use chrono::Utc;
use chrono_tz::Tz;
use serde_json::{Value, json};

use super::super::{ApiError, AppState, RouteTable};
use super::lists::{Outcome, edit_page, found, local_time};
use super::session::AdminForm;
use super::{render, see_other, text};
use crate::domain::FieldError;
use crate::domain::email::EmailAddress;
use crate::store::StoreError;
use crate::store::audience::{MailingList, SubscriberDetail};
use crate::store::digests::{DigestRun, RunStatus};

/// Runs listed on a list's page and on the dashboard.
pub(super) const RECENT_RUNS: i64 = 10;

pub(super) fn routes(table: RouteTable) -> RouteTable {
    table
        .route("/admin/lists/{slug}/run", post(run_now))
        .route("/admin/lists/{slug}/preview", post(preview))
        .route("/admin/lists/{slug}/test", post(send_test))
        .route("/admin/runs/{id}/cancel", post(cancel))
}

/// A run as the pages show it, its time in `tz`.
pub(super) fn run_row(run: &DigestRun, tz: Tz) -> Value {
    json!({
        "id": run.id,
        "list": run.list,
        "when": local_time(run.scheduled_at.with_timezone(&tz)),
        "status": run.status.as_str(),
        "queued": run.queued,
        "sent": run.sent,
        "failed": run.failed,
        "skipped": run.skipped,
        "running": matches!(run.status, RunStatus::Pending | RunStatus::Sending),
        "viewable": matches!(run.status, RunStatus::Sending | RunStatus::Done),
    })
}

fn list_tz(state: &AppState, list: &MailingList) -> Tz {
    list.timezone.parse().unwrap_or(state.config.timezone)
}

/// The digest part of a list's edit page: its recent runs.
pub(super) async fn panel(state: &AppState, list: &MailingList) -> Result<Value, ApiError> {
    let tz = list_tz(state, list);
    let runs = state.store.runs(Some(list.id), RECENT_RUNS).await?;
    Ok(json!({ "runs": runs.iter().map(|r| run_row(r, tz)).collect::<Vec<_>>() }))
}

async fn run_now(
    State(state): State<AppState>,
    Path(slug): Path<String>,
    AdminForm { admin, .. }: AdminForm,
) -> Result<Response, ApiError> {
    let list = found(&state, &slug).await?;
    match state.digests.start_now(&list, Utc::now()).await {
        Ok(run) => {
            let detail = json!({"run": run.id, "queued": run.queued});
            state.audience.audit(&admin.actor(), "digest.run", &list.slug, detail).await;
            Ok(see_other(&format!("/admin/lists/{}/edit", list.slug)))
        }
        Err(StoreError::Conflict(_)) => {
            let error = FieldError::general(text(&state, "admin_run_exists"));
            edit_page(&state, &admin, StatusCode::CONFLICT, &list, Outcome::Refused(&error)).await
        }
        Err(e) => Err(e.into()),
    }
}

async fn cancel(
    State(state): State<AppState>,
    Path(id): Path<String>,
    AdminForm { admin, .. }: AdminForm,
) -> Result<Response, ApiError> {
    let not_found = || ApiError::NotFound(format!("no digest run {id:?}"));
    let run_id = id.parse::<i64>().map_err(|_| not_found())?;
    let run = state.store.run(run_id).await?.ok_or_else(not_found)?;
    let list = found(&state, &run.list).await?;
    if !state.store.cancel_run(run.id, Utc::now()).await? {
        let error = FieldError::general(text(&state, "admin_run_finished"));
        return edit_page(&state, &admin, StatusCode::CONFLICT, &list, Outcome::Refused(&error)).await;
    }
    let detail = json!({"list": list.slug, "sent": run.sent});
    state.audience.audit(&admin.actor(), "digest.cancel", &format!("run:{}", run.id), detail).await;
    Ok(see_other(&format!("/admin/lists/{}/edit", list.slug)))
}

/// The subscriber named in the form's `email` field, on this list; blank is the sample
/// reader. The inner error is the form's fault.
async fn chosen_reader(
    state: &AppState,
    list: &MailingList,
    email: &str,
) -> Result<Result<Option<SubscriberDetail>, FieldError>, ApiError> {
    if email.trim().is_empty() {
        return Ok(Ok(None));
    }
    let address = match EmailAddress::parse(email) {
        Ok(address) => address,
        Err(e) => return Ok(Err(FieldError::new("email", e))),
    };
    let Some(detail) = state.store.subscriber_by_email(&address).await? else {
        return Ok(Err(FieldError::new("email", text(state, "admin_reader_unknown"))));
    };
    if !detail.subscriptions.iter().any(|s| s.list_id == list.id) {
        return Ok(Err(FieldError::new("email", text(state, "admin_reader_not_on_list"))));
    }
    Ok(Ok(Some(detail)))
}

/// The rendered digest in a sandboxed frame, its text part, and a form to mail it.
async fn preview(
    State(state): State<AppState>,
    Path(slug): Path<String>,
    AdminForm { admin, form }: AdminForm,
) -> Result<Response, ApiError> {
    let list = found(&state, &slug).await?;
    let email = form.text("email");
    let reader = match chosen_reader(&state, &list, email).await? {
        Ok(reader) => reader,
        Err(error) => {
            return edit_page(&state, &admin, StatusCode::UNPROCESSABLE_ENTITY, &list, Outcome::Refused(&error)).await;
        }
    };
    let preview = state.digests.preview(&list, reader.as_ref(), Utc::now()).await?;
    let tz = list_tz(&state, &list);
    let context = json!({
        "nav": "lists",
        "list": {"slug": list.slug, "name": list.name},
        "reader": reader.as_ref().map(|r| &r.subscriber.email),
        "email": email.trim(),
        "since": local_time(preview.since.with_timezone(&tz)),
        "total": preview.total,
        "subject": preview.mail.subject,
        "html": preview.mail.html.as_str(),
        "text": preview.mail.text.as_str(),
    });
    Ok(render(&state, &admin, "web/admin/list_preview.html", StatusCode::OK, context))
}

/// Mails one preview to the address in `to`: not a delivery, so no count and no cursor
/// changes.
async fn send_test(
    State(state): State<AppState>,
    Path(slug): Path<String>,
    AdminForm { admin, form }: AdminForm,
) -> Result<Response, ApiError> {
    let list = found(&state, &slug).await?;
    let to = EmailAddress::parse(form.text("to")).map_err(|e| FieldError::new("to", e));
    let chosen = match to {
        Ok(to) => chosen_reader(&state, &list, form.text("email")).await?.map(|reader| (to, reader)),
        Err(error) => Err(error),
    };
    let (to, reader) = match chosen {
        Ok(chosen) => chosen,
        Err(error) => {
            return edit_page(&state, &admin, StatusCode::UNPROCESSABLE_ENTITY, &list, Outcome::Refused(&error)).await;
        }
    };
    let detail = json!({"subscriber": reader.as_ref().map(|r| r.subscriber.id)});
    match state.digests.send_test(&list, reader.as_ref(), &to, Utc::now()).await? {
        Ok(_) => {
            state.audience.audit(&admin.actor(), "digest.test", &list.slug, detail).await;
            let notice = format!("{} {to}", text(&state, "admin_test_sent"));
            edit_page(&state, &admin, StatusCode::OK, &list, Outcome::Notice(notice)).await
        }
        Err(e) => {
            tracing::warn!(list = list.slug, error = %e, "test digest not sent");
            let error = FieldError::new("to", format!("{} {e}", text(&state, "admin_test_failed")));
            edit_page(&state, &admin, StatusCode::BAD_GATEWAY, &list, Outcome::Refused(&error)).await
        }
    }
}
