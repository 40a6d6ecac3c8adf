//! Subscribers: search (email or name, `%` and `_` literal) filtered by list and status
//! with keyset pagination by id, a detail page with the edit form, blocklist and erase.

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::{get, post};
use chrono::Utc;
use serde::Deserialize;
use serde_json::{Value, json};

use super::super::{ApiError, AppState, RouteTable};
use super::session::AdminForm;
use super::{Admin, PAGE_ROWS, form_error, render, see_other};
use crate::domain::FieldError;
use crate::domain::audience::{
    SubscriberStatus, SubscriptionStatus, parse_attributes, parse_language, parse_subscriber_name,
    parse_subscriber_status,
};
use crate::store::audience::{ListChoice, MailingList, SubscriberDetail, SubscriberQuery};

pub(super) fn routes(table: RouteTable) -> RouteTable {
    table
        .route("/admin/subscribers", get(search))
        .route("/admin/subscribers/{id}", get(view).post(update))
        .route("/admin/subscribers/{id}/blocklist", post(blocklist))
        .route("/admin/subscribers/{id}/delete", get(delete_form).post(delete))
}

#[derive(Deserialize)]
struct SearchParams {
    q: Option<String>,
    list: Option<String>,
    status: Option<String>,
    before: Option<String>,
}

/// A query value, `None` when absent or blank (the form sends blank selects).
fn given(value: &Option<String>) -> Option<&str> {
    value.as_deref().map(str::trim).filter(|v| !v.is_empty())
}

fn parse_id(field: &str, raw: &str) -> Result<i64, ApiError> {
    raw.trim()
        .parse::<i64>()
        .ok()
        .filter(|id| *id > 0)
        .ok_or_else(|| ApiError::BadRequest(FieldError::new(field, format!("{raw:?} is not a subscriber id"))))
}

async fn search(
    State(state): State<AppState>,
    admin: Admin,
    Query(params): Query<SearchParams>,
) -> Result<Response, ApiError> {
    let lists = state.store.lists().await?;
    let list = match given(&params.list) {
        Some(slug) => Some(
            lists
                .iter()
                .find(|l| l.slug == slug)
                .ok_or_else(|| ApiError::Invalid(FieldError::new("list", format!("there is no list {slug:?}"))))?,
        ),
        None => None,
    };
    let status = given(&params.status)
        .map(|raw| parse_subscriber_status("status", raw))
        .transpose()
        .map_err(ApiError::Invalid)?;
    let before = given(&params.before).map(|raw| parse_id("before", raw)).transpose()?;
    let text = given(&params.q).map(str::to_owned);
    // One row more than shown tells whether an older page exists.
    let query = SubscriberQuery {
        text: text.clone(),
        list_id: list.map(|l| l.id),
        status,
        before_id: before,
        limit: PAGE_ROWS as i64 + 1,
    };
    let mut found = state.store.search_subscribers(&query).await?;
    let more = found.len() > PAGE_ROWS;
    found.truncate(PAGE_ROWS);
    let older = match found.last() {
        Some(last) if more => {
            let mut next = url::form_urlencoded::Serializer::new(String::new());
            for (key, value) in [
                ("q", text.as_deref()),
                ("list", list.map(|l| l.slug.as_str())),
                ("status", status.map(SubscriberStatus::as_str)),
            ] {
                if let Some(value) = value {
                    next.append_pair(key, value);
                }
            }
            next.append_pair("before", &last.id.to_string());
            Some(format!("/admin/subscribers?{}", next.finish()))
        }
        _ => None,
    };
    let context = json!({
        "nav": "subscribers",
        "q": text,
        "list": list.map(|l| &l.slug),
        "status": status.map(SubscriberStatus::as_str),
        "lists": lists.iter().map(|l| json!({"slug": l.slug, "name": l.name})).collect::<Vec<_>>(),
        "statuses": SubscriberStatus::ALL.iter().map(|s| s.as_str()).collect::<Vec<_>>(),
        "subscribers": found,
        "older": older,
        "paged": before.is_some(),
    });
    Ok(render(&state, &admin, "web/admin/subscribers.html", StatusCode::OK, context))
}

async fn found(state: &AppState, raw_id: &str) -> Result<SubscriberDetail, ApiError> {
    let id = parse_id("id", raw_id)?;
    state.store.subscriber(id).await?.ok_or_else(|| ApiError::NotFound(format!("no subscriber {id}")))
}

async fn detail_page(
    state: &AppState,
    admin: &Admin,
    status: StatusCode,
    detail: &SubscriberDetail,
    error: Option<&FieldError>,
    attributes_text: Option<&str>,
) -> Result<Response, ApiError> {
    let lists = state.store.lists().await?;
    let subscribed = |l: &MailingList| {
        detail.subscriptions.iter().any(|s| s.list_id == l.id && s.status != SubscriptionStatus::Unsubscribed)
    };
    let choices: Vec<Value> =
        lists.iter().map(|l| json!({"slug": l.slug, "name": l.name, "checked": subscribed(l)})).collect();
    let attributes = match attributes_text {
        Some(text) => text.to_owned(),
        None => serde_json::to_string_pretty(&detail.subscriber.attributes).unwrap_or_default(),
    };
    let context = json!({
        "nav": "subscribers",
        "subscriber": detail.subscriber,
        "subscriptions": detail.subscriptions,
        "attributes": attributes,
        "lists": choices,
        "statuses": SubscriberStatus::ALL.iter().map(|s| s.as_str()).collect::<Vec<_>>(),
        "error": error.map(form_error),
    });
    Ok(render(state, admin, "web/admin/subscriber.html", status, context))
}

async fn view(State(state): State<AppState>, admin: Admin, Path(id): Path<String>) -> Result<Response, ApiError> {
    let detail = found(&state, &id).await?;
    detail_page(&state, &admin, StatusCode::OK, &detail, None, None).await
}

/// The edit form's fields, parsed; the error names the field.
struct SubscriberEdit {
    name: String,
    language: crate::config::Language,
    status: SubscriberStatus,
    attributes: serde_json::Map<String, Value>,
    list_slugs: Vec<String>,
}

fn parse_edit(form: &super::super::form::FormData) -> Result<SubscriberEdit, FieldError> {
    let attributes_text = form.text("attributes").trim();
    let attributes = if attributes_text.is_empty() {
        serde_json::Map::new()
    } else {
        let value: Value = serde_json::from_str(attributes_text)
            .map_err(|e| FieldError::new("attributes", format!("is not valid JSON: {e}")))?;
        parse_attributes("attributes", Some(&value))?
    };
    Ok(SubscriberEdit {
        name: parse_subscriber_name("name", form.text("name"))?,
        language: parse_language("language", form.text("language"))?,
        status: parse_subscriber_status("status", form.text("status"))?,
        attributes,
        list_slugs: form.all("lists").into_iter().map(str::to_owned).collect(),
    })
}

/// The subscription status a list added by an admin starts in, given the subscriber's.
fn added_subscription_status(status: SubscriberStatus) -> SubscriptionStatus {
    match status {
        SubscriberStatus::Active => SubscriptionStatus::Active,
        SubscriberStatus::Unconfirmed => SubscriptionStatus::Unconfirmed,
        _ => SubscriptionStatus::Unsubscribed,
    }
}

async fn update(
    State(state): State<AppState>,
    Path(id): Path<String>,
    AdminForm { admin, form }: AdminForm,
) -> Result<Response, ApiError> {
    let detail = found(&state, &id).await?;
    let edit = match parse_edit(&form) {
        Ok(edit) => edit,
        Err(e) => {
            let typed = Some(form.text("attributes"));
            return detail_page(&state, &admin, StatusCode::UNPROCESSABLE_ENTITY, &detail, Some(&e), typed).await;
        }
    };
    let lists = state.store.lists().await?;
    let choices: Vec<ListChoice> =
        lists.iter().filter(|l| edit.list_slugs.contains(&l.slug)).map(|l| detail.keeping_categories(l.id)).collect();
    let subscriber_id = detail.subscriber.id;
    let now = Utc::now();
    state.store.update_subscriber(subscriber_id, &edit.name, edit.language, edit.status, &edit.attributes, now).await?;
    state.store.set_subscriptions(subscriber_id, &choices, added_subscription_status(edit.status), now).await?;
    let kept: Vec<&str> =
        lists.iter().filter(|l| choices.iter().any(|c| c.list_id == l.id)).map(|l| l.slug.as_str()).collect();
    let audit = json!({"status": edit.status.as_str(), "language": edit.language.code(), "lists": kept});
    state.audience.audit(&admin.actor(), "subscriber.update", &subscriber_id.to_string(), audit).await;
    Ok(see_other(&format!("/admin/subscribers/{subscriber_id}")))
}

async fn blocklist(
    State(state): State<AppState>,
    Path(id): Path<String>,
    AdminForm { admin, .. }: AdminForm,
) -> Result<Response, ApiError> {
    let detail = found(&state, &id).await?;
    let s = &detail.subscriber;
    let language = crate::config::Language::parse(&s.language).unwrap_or(state.config.language);
    state
        .store
        .update_subscriber(s.id, &s.name, language, SubscriberStatus::Blocklisted, &s.attributes, Utc::now())
        .await?;
    let audit = json!({"previous_status": s.status.as_str()});
    state.audience.audit(&admin.actor(), "subscriber.blocklist", &s.id.to_string(), audit).await;
    Ok(see_other(&format!("/admin/subscribers/{}", s.id)))
}

async fn delete_form(
    State(state): State<AppState>,
    admin: Admin,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let detail = found(&state, &id).await?;
    let context = json!({"nav": "subscribers", "subscriber": detail.subscriber});
    Ok(render(&state, &admin, "web/admin/subscriber_delete.html", StatusCode::OK, context))
}

async fn delete(
    State(state): State<AppState>,
    Path(id): Path<String>,
    AdminForm { admin, .. }: AdminForm,
) -> Result<Response, ApiError> {
    let detail = found(&state, &id).await?;
    let id = detail.subscriber.id;
    if state.store.delete_subscriber(id).await? {
        // The address is personal data being erased: the log keeps the id only.
        state.audience.audit(&admin.actor(), "subscriber.delete", &id.to_string(), json!({})).await;
    }
    Ok(see_other("/admin/subscribers"))
}
