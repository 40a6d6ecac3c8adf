//! CSV import (an uploaded file into a chosen list, marked confirmed or sent opt-in
//! emails, with a per-row report) and CSV export (all subscribers or one list's).

use axum::extract::multipart::MultipartError;
use axum::extract::{DefaultBodyLimit, Multipart, Query, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use chrono::Utc;
use serde::Deserialize;
use serde_json::{Value, json};

use super::super::download::csv_export;
use super::super::{ApiError, AppState, RouteTable};
use super::{Admin, form_error, render};
use crate::audience::csv::{ImportError, ImportMode};
use crate::domain::FieldError;
use crate::store::audience::MailingList;

/// Largest CSV file accepted through the page (about half a million rows); bigger
/// files go through `bantin subscribers import`.
const MAX_IMPORT_BYTES: usize = 50 * 1024 * 1024;

pub(super) fn routes(table: RouteTable) -> RouteTable {
    table
        .route("/admin/import", get(import_form).post(import).layer(DefaultBodyLimit::max(MAX_IMPORT_BYTES)))
        .route("/admin/export", get(export_form))
        .route("/admin/export.csv", get(export))
}

fn list_options(lists: &[MailingList]) -> Vec<Value> {
    lists.iter().map(|l| json!({"slug": l.slug, "name": l.name})).collect()
}

async fn import_page(
    state: &AppState,
    admin: &Admin,
    status: StatusCode,
    chosen: Option<&str>,
    mode: &str,
    error: Option<&FieldError>,
) -> Result<Response, ApiError> {
    let lists = state.store.lists().await?;
    let context = json!({
        "nav": "import", "lists": list_options(&lists), "list": chosen, "mode": mode, "error": error.map(form_error),
    });
    Ok(render(state, admin, "web/admin/import.html", status, context))
}

async fn import_form(State(state): State<AppState>, admin: Admin) -> Result<Response, ApiError> {
    import_page(&state, &admin, StatusCode::OK, None, "confirmed", None).await
}

/// The upload's fields; the file is held in memory (the route's body limit bounds it).
#[derive(Default)]
struct ImportUpload {
    csrf: Option<String>,
    list: String,
    mode: String,
    file: Vec<u8>,
}

fn upload_error(e: MultipartError) -> ApiError {
    if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
        ApiError::PayloadTooLarge { limit: MAX_IMPORT_BYTES }
    } else {
        ApiError::BadRequest(FieldError::new("file", format!("the upload cannot be read: {}", e.body_text())))
    }
}

async fn read_upload(mut multipart: Multipart) -> Result<ImportUpload, ApiError> {
    let mut upload = ImportUpload::default();
    while let Some(field) = multipart.next_field().await.map_err(upload_error)? {
        match field.name().unwrap_or_default() {
            "csrf" => upload.csrf = Some(field.text().await.map_err(upload_error)?),
            "list" => upload.list = field.text().await.map_err(upload_error)?,
            "mode" => upload.mode = field.text().await.map_err(upload_error)?,
            "file" => upload.file = field.bytes().await.map_err(upload_error)?.to_vec(),
            _ => {}
        }
    }
    Ok(upload)
}

/// The form again, with what was chosen and why the import did not start.
async fn refused(
    state: &AppState,
    admin: &Admin,
    upload: &ImportUpload,
    error: FieldError,
) -> Result<Response, ApiError> {
    let chosen = Some(upload.list.trim()).filter(|l| !l.is_empty());
    import_page(state, admin, StatusCode::UNPROCESSABLE_ENTITY, chosen, &upload.mode, Some(&error)).await
}

async fn import(State(state): State<AppState>, admin: Admin, multipart: Multipart) -> Result<Response, ApiError> {
    let upload = read_upload(multipart).await?;
    admin.check_csrf(upload.csrf.as_deref())?;
    let mode = match upload.mode.as_str() {
        "confirmed" => ImportMode::Confirmed,
        "opt_in" => ImportMode::OptIn,
        other => {
            return refused(
                &state,
                &admin,
                &upload,
                FieldError::new("mode", format!("{other:?} is not confirmed or opt_in")),
            )
            .await;
        }
    };
    let Some(list) = state.store.list(upload.list.trim()).await? else {
        return refused(&state, &admin, &upload, FieldError::new("list", "choose the list to import into")).await;
    };
    if upload.file.is_empty() {
        return refused(&state, &admin, &upload, FieldError::new("file", "choose a CSV file to import")).await;
    }
    let report = match state.audience.import_csv(&upload.file[..], &list, mode, &mut |_| {}).await {
        Ok(report) => report,
        Err(ImportError::File(message)) => {
            return refused(&state, &admin, &upload, FieldError::new("file", message)).await;
        }
        Err(ImportError::Store(e)) => return Err(e.into()),
    };
    let detail = json!({
        "mode": upload.mode, "rows": report.rows, "created": report.created, "merged": report.merged,
        "failed": report.failed, "duplicates": report.duplicates,
    });
    state.audience.audit(&admin.actor(), "subscribers.import", &list.slug, detail).await;
    let context = json!({
        "nav": "import", "list": {"slug": list.slug, "name": list.name}, "report": report, "summary": report.to_string(),
    });
    Ok(render(&state, &admin, "web/admin/import_report.html", StatusCode::OK, context))
}

async fn export_form(State(state): State<AppState>, admin: Admin) -> Result<Response, ApiError> {
    let lists = state.store.lists().await?;
    let context = json!({"nav": "export", "lists": list_options(&lists)});
    Ok(render(&state, &admin, "web/admin/export.html", StatusCode::OK, context))
}

#[derive(Deserialize)]
struct ExportParams {
    list: Option<String>,
}

async fn export(
    State(state): State<AppState>,
    admin: Admin,
    Query(params): Query<ExportParams>,
) -> Result<Response, ApiError> {
    let list = match params.list.as_deref().map(str::trim).filter(|s| !s.is_empty()) {
        Some(slug) => Some(
            state
                .store
                .list(slug)
                .await?
                .ok_or_else(|| ApiError::Invalid(FieldError::new("list", format!("there is no list {slug:?}"))))?,
        ),
        None => None,
    };
    let scope = list.as_ref().map_or("all", |l| l.slug.as_str());
    let filename = format!("subscribers-{scope}-{}.csv", Utc::now().format("%Y%m%d"));
    let disposition = HeaderValue::from_str(&format!("attachment; filename=\"{filename}\""))
        .map_err(|e| ApiError::Unexpected(e.into()))?;
    let body = csv_export(state.audience.clone(), list.as_ref().map(|l| l.id), admin.actor(), scope.to_owned());
    let mut response = body.into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("text/csv; charset=utf-8"));
    headers.insert(header::CONTENT_DISPOSITION, disposition);
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(response)
}
