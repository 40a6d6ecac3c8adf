//! Lists (newsletters): index, create, edit (with the schedule's next runs) and delete.
//! The form is turned into the same JSON object the API takes, so both parse a list the
//! same way ([`ListInput::from_json`]).

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::get;
use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use serde_json::{Map, Value, json};

use super::super::form::FormData;
use super::super::{ApiError, AppState, RouteTable};
use super::session::AdminForm;
use super::{Admin, form_error, render, see_other};
use crate::domain::FieldError;
use crate::domain::audience::ListInput;
use crate::domain::schedule::Schedule;
use crate::store::StoreError;
use crate::store::audience::MailingList;

pub(super) fn routes(table: RouteTable) -> RouteTable {
    table
        .route("/admin/lists", get(index).post(create))
        .route("/admin/lists/new", get(new_form))
        .route("/admin/lists/{slug}/edit", get(edit_form).post(update))
        .route("/admin/lists/{slug}/delete", get(delete_form).post(delete))
}

const TEXT_FIELDS: [&str; 8] =
    ["name", "slug", "description", "schedule", "timezone", "language", "from_name", "from_address"];

/// The form as the API's list object: blank fields left out so the defaults apply.
fn list_object(form: &FormData) -> Value {
    let mut map = Map::new();
    for field in TEXT_FIELDS {
        let value = form.text(field);
        if !value.trim().is_empty() {
            map.insert(field.into(), value.into());
        }
    }
    map.insert("categories".into(), form.all("categories").into());
    map.insert("double_opt_in".into(), form.has("double_opt_in").into());
    Value::Object(map)
}

/// What the form shows for a stored list.
fn list_values(list: &MailingList) -> Value {
    json!({
        "name": list.name, "slug": list.slug, "description": list.description, "categories": list.categories,
        "schedule": list.schedule, "timezone": list.timezone, "language": list.language,
        "from_name": list.from_name, "from_address": list.from_address, "double_opt_in": list.double_opt_in,
    })
}

/// A time in a list's time zone, as the admin reads it.
pub(super) fn local_time(at: DateTime<Tz>) -> String {
    at.format("%a %Y-%m-%d %H:%M (%Z)").to_string()
}

/// The next five runs of a schedule in its time zone, as the admin reads them.
fn next_runs(schedule: &str, timezone: &str) -> Vec<String> {
    match (Schedule::parse(schedule), timezone.parse::<Tz>()) {
        (Ok(schedule), Ok(tz)) => schedule.next_runs(Utc::now(), tz, 5).into_iter().map(local_time).collect(),
        _ => Vec::new(),
    }
}

/// The edit page of a stored list, with a message after an action on its digest.
pub(super) async fn edit_page(
    state: &AppState,
    admin: &Admin,
    status: StatusCode,
    list: &MailingList,
    outcome: Outcome<'_>,
) -> Result<Response, ApiError> {
    form_page(state, admin, status, Some(list), list_values(list), outcome).await
}

/// What the page reports besides the form: nothing, a done action, or a refusal.
pub(super) enum Outcome<'a> {
    Shown,
    Notice(String),
    Refused(&'a FieldError),
}

async fn form_page(
    state: &AppState,
    admin: &Admin,
    status: StatusCode,
    editing: Option<&MailingList>,
    values: Value,
    outcome: Outcome<'_>,
) -> Result<Response, ApiError> {
    let categories: Vec<Value> = state
        .store
        .categories()
        .await?
        .iter()
        .map(|c| json!({"path": c.path, "name": c.names.join(" › "), "depth": c.path.matches('/').count()}))
        .collect();
    let runs =
        next_runs(values["schedule"].as_str().unwrap_or_default(), values["timezone"].as_str().unwrap_or_default());
    let digest = match editing {
        Some(list) => super::digests::panel(state, list).await?,
        None => Value::Null,
    };
    let (notice, error) = match outcome {
        Outcome::Shown => (None, None),
        Outcome::Notice(notice) => (Some(notice), None),
        Outcome::Refused(error) => (None, Some(form_error(error))),
    };
    let context = json!({
        "nav": "lists",
        "editing": editing.map(|l| &l.slug),
        "list": values,
        "categories": categories,
        "next_runs": runs,
        "digest": digest,
        "notice": notice,
        "error": error,
    });
    Ok(render(state, admin, "web/admin/list_form.html", status, context))
}

async fn index(State(state): State<AppState>, admin: Admin) -> Result<Response, ApiError> {
    let lists = state.store.lists().await?;
    let counts = state.store.list_counts().await?;
    let rows: Vec<Value> = lists
        .iter()
        .map(|l| {
            let count = counts.iter().find(|c| c.slug == l.slug);
            json!({
                "slug": l.slug, "name": l.name, "schedule": l.schedule, "timezone": l.timezone,
                "language": l.language, "categories": l.categories, "double_opt_in": l.double_opt_in,
                "active": count.map_or(0, |c| c.active), "unconfirmed": count.map_or(0, |c| c.unconfirmed),
            })
        })
        .collect();
    Ok(render(&state, &admin, "web/admin/lists.html", StatusCode::OK, json!({"nav": "lists", "lists": rows})))
}

async fn new_form(State(state): State<AppState>, admin: Admin) -> Result<Response, ApiError> {
    let defaults = state.audience.list_defaults();
    let values = json!({
        "schedule": "daily 06:00", "timezone": defaults.timezone.name(), "language": defaults.language.code(),
        "from_name": defaults.from_name, "from_address": defaults.from_address, "double_opt_in": true, "categories": [],
    });
    form_page(&state, &admin, StatusCode::OK, None, values, Outcome::Shown).await
}

/// The form again with what was typed and why it was refused.
async fn refused(
    state: &AppState,
    admin: &Admin,
    status: StatusCode,
    editing: Option<&MailingList>,
    form: &FormData,
    error: FieldError,
) -> Result<Response, ApiError> {
    let mut values = list_object(form);
    values["double_opt_in"] = form.has("double_opt_in").into();
    form_page(state, admin, status, editing, values, Outcome::Refused(&error)).await
}

async fn create(State(state): State<AppState>, AdminForm { admin, form }: AdminForm) -> Result<Response, ApiError> {
    let input = match ListInput::from_json(&list_object(&form), &state.audience.list_defaults()) {
        Ok(input) => input,
        Err(e) => return refused(&state, &admin, StatusCode::UNPROCESSABLE_ENTITY, None, &form, e).await,
    };
    match state.store.create_list(&input, Utc::now()).await {
        Ok(list) => {
            state.audience.audit(&admin.actor(), "list.create", &list.slug, json!({"name": list.name})).await;
            Ok(see_other(&format!("/admin/lists/{}/edit", list.slug)))
        }
        Err(StoreError::Conflict(message)) => {
            refused(&state, &admin, StatusCode::CONFLICT, None, &form, FieldError::new("slug", message)).await
        }
        Err(e) => Err(e.into()),
    }
}

pub(super) async fn found(state: &AppState, slug: &str) -> Result<MailingList, ApiError> {
    state.store.list(slug).await?.ok_or_else(|| ApiError::NotFound(format!("no list {slug:?}")))
}

async fn edit_form(
    State(state): State<AppState>,
    admin: Admin,
    Path(slug): Path<String>,
) -> Result<Response, ApiError> {
    let list = found(&state, &slug).await?;
    edit_page(&state, &admin, StatusCode::OK, &list, Outcome::Shown).await
}

async fn update(
    State(state): State<AppState>,
    Path(slug): Path<String>,
    AdminForm { admin, form }: AdminForm,
) -> Result<Response, ApiError> {
    let list = found(&state, &slug).await?;
    let input = match ListInput::from_json(&list_object(&form), &state.audience.list_defaults()) {
        Ok(input) => input,
        Err(e) => return refused(&state, &admin, StatusCode::UNPROCESSABLE_ENTITY, Some(&list), &form, e).await,
    };
    match state.store.update_list(&list.slug, &input, Utc::now()).await {
        Ok(Some(updated)) => {
            let detail = json!({"slug": updated.slug, "name": updated.name});
            state.audience.audit(&admin.actor(), "list.update", &list.slug, detail).await;
            Ok(see_other(&format!("/admin/lists/{}/edit", updated.slug)))
        }
        Ok(None) => Err(ApiError::NotFound(format!("no list {slug:?}"))),
        Err(StoreError::Conflict(message)) => {
            let error = FieldError::new("slug", message);
            refused(&state, &admin, StatusCode::CONFLICT, Some(&list), &form, error).await
        }
        Err(e) => Err(e.into()),
    }
}

async fn delete_form(
    State(state): State<AppState>,
    admin: Admin,
    Path(slug): Path<String>,
) -> Result<Response, ApiError> {
    let list = found(&state, &slug).await?;
    let counts = state.store.list_counts().await?;
    let count = counts.iter().find(|c| c.slug == list.slug);
    let context = json!({
        "nav": "lists", "slug": list.slug, "name": list.name,
        "subscribers": count.map_or(0, |c| c.active + c.unconfirmed),
    });
    Ok(render(&state, &admin, "web/admin/list_delete.html", StatusCode::OK, context))
}

async fn delete(
    State(state): State<AppState>,
    Path(slug): Path<String>,
    AdminForm { admin, .. }: AdminForm,
) -> Result<Response, ApiError> {
    let list = found(&state, &slug).await?;
    if state.store.delete_list(&list.slug).await? {
        state.audience.audit(&admin.actor(), "list.delete", &list.slug, json!({"name": list.name})).await;
    }
    Ok(see_other("/admin/lists"))
}
