//! The ingest API: `POST /api/v1/articles` (one object or an array),
//! `GET` and `DELETE /api/v1/articles/{id}`.

use axum::Json;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{DefaultBodyLimit, Path, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use chrono::SecondsFormat;
use serde_json::{Value, json};

use super::auth::ApiClient;
use super::error::ApiError;
use super::{AppState, RouteTable};
use crate::domain::FieldError;
use crate::domain::json::BorrowedJson;
use crate::ingest::{ItemError, ItemReport, MAX_BATCH};
use crate::store::{Article, Change, Retraction};

/// Largest request body accepted.
pub const MAX_BODY_BYTES: usize = 2 * 1024 * 1024;

/// The body limit applies to this area's routes only, so it is added last.
pub fn routes(table: RouteTable) -> RouteTable {
    table
        .route("/api/v1/articles", post(ingest))
        .route("/api/v1/articles/{id}", get(show).delete(retract))
        .layer_last(DefaultBodyLimit::max(MAX_BODY_BYTES))
}

fn report_json(index: Option<usize>, report: &ItemReport) -> Value {
    let mut item = json!({ "id": report.id });
    if let Some(i) = index {
        item["index"] = json!(i);
    }
    match &report.outcome {
        Ok(done) => {
            item["outcome"] = json!(done.change.as_str());
            item["status"] = json!(done.status.as_str());
        }
        Err(ItemError::Invalid(e)) => {
            item["outcome"] = json!("failed");
            item["error"] = json!(e.error);
            item["field"] = json!(e.field);
        }
        Err(ItemError::Storage(e)) => {
            tracing::error!(id = report.id.as_deref().unwrap_or(""), error = %e, "storing an article failed");
            item["outcome"] = json!("failed");
            item["error"] = json!("internal error while storing this article");
            item["field"] = Value::Null;
        }
    }
    item
}

async fn ingest(
    State(state): State<AppState>,
    client: ApiClient,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let body = body.map_err(|rejection| match rejection.status() {
        StatusCode::PAYLOAD_TOO_LARGE => ApiError::PayloadTooLarge { limit: MAX_BODY_BYTES },
        _ => ApiError::BadRequest(FieldError::general(rejection.body_text())),
    })?;
    // Parsed straight from the body: the articles' strings are not copied before cleaning.
    let value = BorrowedJson::parse(&body)
        .map_err(|e| ApiError::BadRequest(FieldError::general(format!("malformed JSON: {e}"))))?;
    let items = if let BorrowedJson::Array(items) = &value { items.len() } else { 1 };
    tracing::info!(token = client.token_id, items, "articles received");
    match value {
        BorrowedJson::Array(items) => ingest_batch(&state, &items).await,
        single => ingest_one(&state, single).await,
    }
}

async fn ingest_one(state: &AppState, value: BorrowedJson<'_>) -> Result<Response, ApiError> {
    let report = state.ingestor.ingest_parsed(std::slice::from_ref(&value)).await?.remove(0);
    let body = report_json(None, &report);
    match report.outcome {
        Ok(done) if done.change == Change::New => {
            let location = format!("/api/v1/articles/{}", url_segment(report.id.as_deref().unwrap_or_default()));
            Ok((StatusCode::CREATED, [(header::LOCATION, location)], Json(body)).into_response())
        }
        Ok(_) => Ok((StatusCode::OK, Json(body)).into_response()),
        Err(ItemError::Invalid(e)) => Err(ApiError::Invalid(e)),
        Err(ItemError::Storage(e)) => Err(e.into()),
    }
}

async fn ingest_batch(state: &AppState, items: &[BorrowedJson<'_>]) -> Result<Response, ApiError> {
    if items.is_empty() {
        return Err(ApiError::Invalid(FieldError::general("the array holds no articles")));
    }
    if items.len() > MAX_BATCH {
        return Err(ApiError::Invalid(FieldError::general(format!(
            "a batch holds at most {MAX_BATCH} articles, this one has {}",
            items.len()
        ))));
    }
    let reports = state.ingestor.ingest_parsed(items).await?;
    let mut counts = [0usize; 4];
    for report in &reports {
        let slot = match &report.outcome {
            Ok(done) => done.change as usize,
            Err(_) => 3,
        };
        counts[slot] += 1;
    }
    let results: Vec<Value> = reports.iter().enumerate().map(|(i, r)| report_json(Some(i), r)).collect();
    let body = json!({
        "summary": { "new": counts[0], "updated": counts[1], "unchanged": counts[2], "failed": counts[3] },
        "results": results,
    });
    let status = if counts[3] == reports.len() { StatusCode::UNPROCESSABLE_ENTITY } else { StatusCode::OK };
    Ok((status, Json(body)).into_response())
}

/// Percent-encodes a source id for use as one path segment.
fn url_segment(id: &str) -> String {
    url::form_urlencoded::byte_serialize(id.as_bytes()).collect::<String>().replace('+', "%20")
}

fn article_json(state: &AppState, a: &Article) -> Value {
    let tz = state.config.timezone;
    let time = |t: chrono::DateTime<chrono::Utc>| t.with_timezone(&tz).to_rfc3339_opts(SecondsFormat::AutoSi, false);
    json!({
        "id": a.source_id,
        "title": a.title,
        "url": a.url,
        "category": a.category.as_ref().map(|c| &c.names),
        "category_path": a.category.as_ref().map(|c| &c.path),
        "author": a.author.as_ref().map(|x| &x.name),
        "author_slug": a.author.as_ref().map(|x| &x.slug),
        "summary": a.summary,
        "content_html": a.content_html,
        "image": a.image,
        "tags": a.tags,
        "published_at": time(a.published_at),
        "updated_at": time(a.updated_at),
        "created_at": time(a.created_at),
        "status": a.status.as_str(),
        "content_hash": a.content_hash,
    })
}

async fn show(
    State(state): State<AppState>,
    _client: ApiClient,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let article = state.store.article(&id).await?.ok_or_else(|| not_found(&id))?;
    Ok(Json(article_json(&state, &article)))
}

fn not_found(id: &str) -> ApiError {
    ApiError::NotFound(format!("no article with id {id:?}"))
}

async fn retract(
    State(state): State<AppState>,
    _client: ApiClient,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    match state.store.retract_article(&id, chrono::Utc::now()).await? {
        Retraction::NotFound => return Err(not_found(&id)),
        Retraction::Retracted { event: true } => state.metrics.record_events(crate::store::EventKind::Retracted, 1),
        Retraction::Retracted { event: false } | Retraction::AlreadyRetracted => {}
    }
    let article = state.store.article(&id).await?.ok_or_else(|| not_found(&id))?;
    Ok(Json(article_json(&state, &article)))
}
