//! The admin REST API for lists and subscribers (bearer token), documented in
//! api/openapi.json. Every write is recorded in the audit log under the token's id.

use axum::Json;
use axum::body::Bytes;
use axum::extract::rejection::{BytesRejection, QueryRejection};
use axum::extract::{DefaultBodyLimit, Path, Query, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use chrono::{SecondsFormat, Utc};
use serde::Deserialize;
use serde_json::{Map, Value, json};

use super::auth::ApiClient;
use super::download;
use super::error::ApiError;
use super::{AppState, RouteTable};
use crate::audience::admin::AddError;
use crate::audience::csv::{ImportError, ImportMode};
use crate::config::Language;
use crate::domain::FieldError;
use crate::domain::audience::{
    SubscriberInput, SubscriberPatch, SubscriberStatus, SubscriptionStatus, parse_email, parse_subscriber_status,
};
use crate::domain::schedule::Schedule;
use crate::store::audience::{ListChoice, MailingList, SubscriberQuery};

/// Largest CSV body `POST /api/v1/subscribers/import` takes.
pub const MAX_IMPORT_BYTES: usize = 50 * 1024 * 1024;
/// Largest JSON body of the other routes.
const MAX_JSON_BYTES: usize = 64 * 1024;
const DEFAULT_PAGE: i64 = 50;
const MAX_PAGE: i64 = 500;
/// Upcoming digest times shown with a list.
const NEXT_RUNS: usize = 5;

pub(super) fn routes(table: RouteTable) -> RouteTable {
    table
        .route("/api/v1/lists", get(lists).post(create_list))
        .route("/api/v1/lists/{slug}", get(show_list).patch(update_list).delete(delete_list))
        .route("/api/v1/subscribers", get(search_subscribers).post(create_subscriber))
        .route("/api/v1/subscribers/import", post(import).layer(DefaultBodyLimit::max(MAX_IMPORT_BYTES)))
        .route("/api/v1/subscribers/export", get(export))
        .route("/api/v1/subscribers/{id}", get(show_subscriber).patch(update_subscriber).delete(delete_subscriber))
}

pub(super) fn actor(client: &ApiClient) -> String {
    format!("api:token-{}", client.token_id)
}

fn body_bytes(body: Result<Bytes, BytesRejection>, limit: usize) -> Result<Bytes, ApiError> {
    body.map_err(|rejection| match rejection.status() {
        StatusCode::PAYLOAD_TOO_LARGE => ApiError::PayloadTooLarge { limit },
        _ => ApiError::BadRequest(FieldError::general(rejection.body_text())),
    })
}

fn json_body(body: Result<Bytes, BytesRejection>) -> Result<Value, ApiError> {
    let body = body_bytes(body, MAX_JSON_BYTES)?;
    if body.len() > MAX_JSON_BYTES {
        return Err(ApiError::PayloadTooLarge { limit: MAX_JSON_BYTES });
    }
    serde_json::from_slice(&body).map_err(|e| ApiError::BadRequest(FieldError::general(format!("malformed JSON: {e}"))))
}

pub(super) fn query<T>(query: Result<Query<T>, QueryRejection>) -> Result<T, ApiError> {
    query.map(|Query(q)| q).map_err(|e| ApiError::BadRequest(FieldError::general(e.body_text())))
}

pub(super) fn list_not_found(slug: &str) -> ApiError {
    ApiError::NotFound(format!("no list with the slug {slug:?}"))
}

/// A list as the API shows it, with its next digest times in its own time zone.
fn list_json(list: &MailingList) -> Value {
    let mut value = json!(list);
    let tz = list.timezone.parse::<chrono_tz::Tz>().unwrap_or(chrono_tz::UTC);
    let next_runs: Vec<String> = match Schedule::parse(&list.schedule) {
        Ok(schedule) => schedule
            .next_runs(Utc::now(), tz, NEXT_RUNS)
            .iter()
            .map(|t| t.to_rfc3339_opts(SecondsFormat::Secs, false))
            .collect(),
        Err(_) => Vec::new(),
    };
    value["next_runs"] = json!(next_runs);
    value
}

/// The fields of a list an admin writes, as `ListInput::from_json` reads them.
fn list_input_json(list: &MailingList) -> Map<String, Value> {
    Map::from_iter([
        ("slug".to_owned(), json!(list.slug)),
        ("name".to_owned(), json!(list.name)),
        ("description".to_owned(), json!(list.description)),
        ("categories".to_owned(), json!(list.categories)),
        ("schedule".to_owned(), json!(list.schedule)),
        ("timezone".to_owned(), json!(list.timezone)),
        ("language".to_owned(), json!(list.language)),
        ("from_name".to_owned(), json!(list.from_name)),
        ("from_address".to_owned(), json!(list.from_address)),
        ("double_opt_in".to_owned(), json!(list.double_opt_in)),
    ])
}

async fn lists(State(state): State<AppState>, _client: ApiClient) -> Result<Json<Value>, ApiError> {
    let lists = state.store.lists().await?;
    Ok(Json(json!({ "lists": lists.iter().map(list_json).collect::<Vec<_>>() })))
}

async fn create_list(
    State(state): State<AppState>,
    client: ApiClient,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let value = json_body(body)?;
    let input = state.audience.parse_list(&value).await?.map_err(ApiError::Invalid)?;
    let list = state.store.create_list(&input, Utc::now()).await?;
    state
        .audience
        .audit(&actor(&client), "list.create", &format!("list:{}", list.slug), json!({"name": list.name}))
        .await;
    let location = format!("/api/v1/lists/{}", list.slug);
    Ok((StatusCode::CREATED, [(header::LOCATION, location)], Json(list_json(&list))).into_response())
}

async fn show_list(
    State(state): State<AppState>,
    _client: ApiClient,
    Path(slug): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let list = state.store.list(&slug).await?.ok_or_else(|| list_not_found(&slug))?;
    Ok(Json(list_json(&list)))
}

/// Merges the given fields into the list's current form and parses the whole again,
/// so a partial edit is held to every rule a new list is.
async fn update_list(
    State(state): State<AppState>,
    client: ApiClient,
    Path(slug): Path<String>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<Value>, ApiError> {
    let patch = json_body(body)?;
    let Value::Object(patch) = patch else {
        return Err(ApiError::Invalid(FieldError::general("a list must be a JSON object")));
    };
    let current = state.store.list(&slug).await?.ok_or_else(|| list_not_found(&slug))?;
    let mut merged = list_input_json(&current);
    merged.extend(patch.clone());
    let input = state.audience.parse_list(&Value::Object(merged)).await?.map_err(ApiError::Invalid)?;
    let list = state.store.update_list(&slug, &input, Utc::now()).await?.ok_or_else(|| list_not_found(&slug))?;
    let fields: Vec<&String> = patch.keys().collect();
    state.audience.audit(&actor(&client), "list.update", &format!("list:{slug}"), json!({"fields": fields})).await;
    Ok(Json(list_json(&list)))
}

async fn delete_list(
    State(state): State<AppState>,
    client: ApiClient,
    Path(slug): Path<String>,
) -> Result<StatusCode, ApiError> {
    if !state.store.delete_list(&slug).await? {
        return Err(list_not_found(&slug));
    }
    state.audience.audit(&actor(&client), "list.delete", &format!("list:{slug}"), json!({})).await;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Deserialize)]
struct SearchParams {
    email: Option<String>,
    q: Option<String>,
    list: Option<String>,
    status: Option<String>,
    before: Option<String>,
    limit: Option<String>,
}

/// A filter left empty (`?status=`) is no filter.
pub(super) fn given(value: &Option<String>) -> Option<&str> {
    value.as_deref().map(str::trim).filter(|v| !v.is_empty())
}

pub(super) fn positive(field: &str, raw: &str) -> Result<i64, ApiError> {
    match raw.parse::<i64>() {
        Ok(n) if n > 0 => Ok(n),
        _ => Err(ApiError::Invalid(FieldError::new(field, format!("{raw:?} is not a positive whole number")))),
    }
}

/// Newest first, a page at a time; `next` is the URL of the following page.
async fn search_subscribers(
    State(state): State<AppState>,
    _client: ApiClient,
    params: Result<Query<SearchParams>, QueryRejection>,
) -> Result<Json<Value>, ApiError> {
    let params = query(params)?;
    let list = match given(&params.list) {
        Some(slug) => Some(state.store.list(slug).await?.ok_or_else(|| {
            ApiError::Invalid(FieldError::new("list", format!("there is no list with the slug {slug:?}")))
        })?),
        None => None,
    };
    let status = given(&params.status)
        .map(|raw| parse_subscriber_status("status", raw))
        .transpose()
        .map_err(ApiError::Invalid)?;
    let limit = match given(&params.limit) {
        Some(raw) => positive("limit", raw)?.min(MAX_PAGE),
        None => DEFAULT_PAGE,
    };
    let before_id = given(&params.before).map(|raw| positive("before", raw)).transpose()?;
    if let Some(raw) = given(&params.email) {
        // An exact address: at most one subscriber, so no further page.
        let email = parse_email("email", raw).map_err(ApiError::Invalid)?;
        let found = state.store.subscriber_by_email(&email).await?.filter(|detail| {
            status.is_none_or(|s| detail.subscriber.status == s)
                && list.as_ref().is_none_or(|l| detail.subscriptions.iter().any(|ss| ss.list_id == l.id))
                && before_id.is_none_or(|b| detail.subscriber.id < b)
        });
        let subscribers: Vec<Value> = found.iter().map(|d| json!(d.subscriber)).collect();
        return Ok(Json(json!({ "subscribers": subscribers, "next": null })));
    }
    let search = SubscriberQuery {
        text: given(&params.q).map(str::to_owned),
        list_id: list.as_ref().map(|l| l.id),
        status,
        before_id,
        limit,
    };
    let page = state.store.search_subscribers(&search).await?;
    let next = match page.last() {
        Some(last) if page.len() as i64 == limit => {
            let mut url = url::form_urlencoded::Serializer::new(String::new());
            for (key, value) in [("q", &params.q), ("list", &params.list), ("status", &params.status)] {
                if let Some(value) = given(value) {
                    url.append_pair(key, value);
                }
            }
            url.append_pair("limit", &limit.to_string()).append_pair("before", &last.id.to_string());
            Some(format!("/api/v1/subscribers?{}", url.finish()))
        }
        _ => None,
    };
    Ok(Json(json!({ "subscribers": page, "next": next })))
}

fn subscriber_id(raw: &str) -> Result<i64, ApiError> {
    raw.parse::<i64>().map_err(|_| subscriber_not_found(raw))
}

fn subscriber_not_found(id: &str) -> ApiError {
    ApiError::NotFound(format!("no subscriber with the id {id:?}"))
}

async fn subscriber_json(state: &AppState, id: i64) -> Result<Value, ApiError> {
    let detail = state.store.subscriber(id).await?.ok_or_else(|| subscriber_not_found(&id.to_string()))?;
    Ok(json!(detail))
}

async fn create_subscriber(
    State(state): State<AppState>,
    client: ApiClient,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let value = json_body(body)?;
    let input = SubscriberInput::from_json(&value, SubscriberStatus::Unconfirmed).map_err(ApiError::Invalid)?;
    let added = match state.audience.add_subscriber(&input, Utc::now()).await {
        Ok(added) => added,
        Err(AddError::UnknownList(slug)) => {
            return Err(ApiError::Invalid(FieldError::new(
                "lists",
                format!("there is no list with the slug {slug:?}"),
            )));
        }
        Err(AddError::Exists(id)) => {
            let body = json!({"error": "a subscriber with this address exists", "field": "email", "id": id});
            return Ok((StatusCode::CONFLICT, Json(body)).into_response());
        }
        Err(AddError::Store(e)) => return Err(e.into()),
    };
    if added.confirm {
        state.audience.send_confirmation_later(added.id);
    }
    let lists: Vec<&str> = input.lists.iter().map(|s| s.as_str()).collect();
    let detail = json!({"lists": lists, "status": input.status.as_str(), "confirmation": added.confirm});
    state.audience.audit(&actor(&client), "subscriber.create", &format!("subscriber:{}", added.id), detail).await;
    let location = format!("/api/v1/subscribers/{}", added.id);
    Ok((StatusCode::CREATED, [(header::LOCATION, location)], Json(subscriber_json(&state, added.id).await?))
        .into_response())
}

async fn show_subscriber(
    State(state): State<AppState>,
    _client: ApiClient,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    Ok(Json(subscriber_json(&state, subscriber_id(&id)?).await?))
}

/// Changes the fields given. `lists` replaces the set: lists left out are unsubscribed,
/// new ones join with the subscriber's standing; no confirmation email is sent. Status
/// `active` confirms their waiting subscriptions, `unsubscribed` ends them all.
async fn update_subscriber(
    State(state): State<AppState>,
    client: ApiClient,
    Path(id): Path<String>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<Value>, ApiError> {
    let id = subscriber_id(&id)?;
    let patch = SubscriberPatch::from_json(&json_body(body)?).map_err(ApiError::Invalid)?;
    let current = state.store.subscriber(id).await?.ok_or_else(|| subscriber_not_found(&id.to_string()))?;
    let lists = match &patch.lists {
        Some(slugs) => Some(state.audience.lists_named(slugs).await?.map_err(|slug| {
            ApiError::Invalid(FieldError::new("lists", format!("there is no list with the slug {slug:?}")))
        })?),
        None => None,
    };
    let s = &current.subscriber;
    let status = patch.status.unwrap_or(s.status);
    let language = patch.language.or_else(|| Language::parse(&s.language)).unwrap_or(state.audience.language());
    let now = Utc::now();
    let name = patch.name.as_deref().unwrap_or(&s.name);
    let attributes = patch.attributes.as_ref().unwrap_or(&s.attributes);
    if !state.store.update_subscriber(id, name, language, status, attributes, now).await? {
        return Err(subscriber_not_found(&id.to_string()));
    }
    if let Some(lists) = &lists {
        let kept: Vec<ListChoice> = lists.iter().map(|l| current.keeping_categories(l.id)).collect();
        let joining = match status {
            SubscriberStatus::Active => SubscriptionStatus::Active,
            SubscriberStatus::Unconfirmed => SubscriptionStatus::Unconfirmed,
            _ => SubscriptionStatus::Unsubscribed,
        };
        state.store.set_subscriptions(id, &kept, joining, now).await?;
    }
    // A status given applies to the subscriptions as well: confirmed on every list, or
    // off every list.
    match patch.status {
        Some(SubscriberStatus::Active) => {
            state.store.confirm_subscriber(id, now).await?;
        }
        Some(SubscriberStatus::Unsubscribed) => {
            state.store.unsubscribe(id, None, now).await?;
        }
        _ => {}
    }
    let fields: Vec<&str> = [
        ("name", patch.name.is_some()),
        ("language", patch.language.is_some()),
        ("status", patch.status.is_some()),
        ("attributes", patch.attributes.is_some()),
        ("lists", patch.lists.is_some()),
    ]
    .into_iter()
    .filter_map(|(field, given)| given.then_some(field))
    .collect();
    let detail = json!({"fields": fields, "status": status.as_str()});
    state.audience.audit(&actor(&client), "subscriber.update", &format!("subscriber:{id}"), detail).await;
    Ok(Json(subscriber_json(&state, id).await?))
}

/// Erases the subscriber; the audit entry keeps the id, not the address.
async fn delete_subscriber(
    State(state): State<AppState>,
    client: ApiClient,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    let id = subscriber_id(&id)?;
    if !state.store.delete_subscriber(id).await? {
        return Err(subscriber_not_found(&id.to_string()));
    }
    state.audience.audit(&actor(&client), "subscriber.delete", &format!("subscriber:{id}"), json!({})).await;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Deserialize)]
struct ImportParams {
    list: Option<String>,
    mode: Option<String>,
}

async fn import(
    State(state): State<AppState>,
    client: ApiClient,
    params: Result<Query<ImportParams>, QueryRejection>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<Value>, ApiError> {
    let params = query(params)?;
    let slug = given(&params.list).ok_or_else(|| ApiError::Invalid(FieldError::new("list", "is required")))?;
    let list = state.store.list(slug).await?.ok_or_else(|| {
        ApiError::Invalid(FieldError::new("list", format!("there is no list with the slug {slug:?}")))
    })?;
    let mode = match given(&params.mode) {
        None | Some("optin") => ImportMode::OptIn,
        Some("confirmed") => ImportMode::Confirmed,
        Some(other) => {
            return Err(ApiError::Invalid(FieldError::new(
                "mode",
                format!("{other:?} is not a mode: use confirmed or optin"),
            )));
        }
    };
    let body = body_bytes(body, MAX_IMPORT_BYTES)?;
    let report = match state.audience.import_csv(&body[..], &list, mode, &mut |_| {}).await {
        Ok(report) => report,
        Err(ImportError::File(reason)) => return Err(ApiError::Invalid(FieldError::new("body", reason))),
        Err(ImportError::Store(e)) => return Err(e.into()),
    };
    let detail = json!({
        "mode": if mode == ImportMode::Confirmed { "confirmed" } else { "optin" },
        "rows": report.rows, "created": report.created, "merged": report.merged, "failed": report.failed,
    });
    state.audience.audit(&actor(&client), "subscribers.import", &format!("list:{}", list.slug), detail).await;
    Ok(Json(json!(report)))
}

#[derive(Deserialize)]
struct ExportParams {
    list: Option<String>,
}

/// Exporting personal data is recorded in the audit log like a write.
async fn export(
    State(state): State<AppState>,
    client: ApiClient,
    params: Result<Query<ExportParams>, QueryRejection>,
) -> Result<Response, ApiError> {
    let params = query(params)?;
    let list = match given(&params.list) {
        Some(slug) => Some(state.store.list(slug).await?.ok_or_else(|| {
            ApiError::Invalid(FieldError::new("list", format!("there is no list with the slug {slug:?}")))
        })?),
        None => None,
    };
    let name = list.as_ref().map_or("all", |l| l.slug.as_str());
    let disposition = format!("attachment; filename=\"subscribers-{name}.csv\"");
    let headers =
        [(header::CONTENT_TYPE, "text/csv; charset=utf-8".to_owned()), (header::CONTENT_DISPOSITION, disposition)];
    let subject = format!("list:{name}");
    let body = download::csv_export(state.audience.clone(), list.as_ref().map(|l| l.id), actor(&client), subject);
    Ok((headers, body).into_response())
}
