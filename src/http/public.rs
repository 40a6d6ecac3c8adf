//! Public pages for readers: subscribe, confirm, preference centre, unsubscribe (with the
//! RFC 8058 one-click POST). Pages are in Vietnamese or English (`?lang=`, the subscriber's
//! or list's language, Accept-Language). Tokens are signed links; an unknown or altered one
//! gets a plain 404 page.

use std::net::SocketAddr;

use axum::extract::{ConnectInfo, Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use chrono::Utc;
use serde::Deserialize;
use serde_json::{Value, json};

use super::form::FormData;
use super::{AppState, RouteTable};
use crate::config::Language;
use crate::domain::audience::parse_subscriber_name;
use crate::domain::email::EmailAddress;
use crate::domain::link::LinkPurpose;
use crate::store::CategoryRef;
use crate::store::audience::{ListChoice, MailingList, SubscribeOutcome, SubscriberDetail};

pub(super) fn routes(table: RouteTable) -> RouteTable {
    table
        .route("/subscribe", get(subscribe_form).post(subscribe))
        .route("/confirm/{token}", get(confirm))
        .route("/preferences/{token}", get(preferences).post(save_preferences))
        .route("/unsubscribe/{token}", get(unsubscribe_page).post(unsubscribe))
}

#[derive(Deserialize)]
struct PageQuery {
    lang: Option<String>,
    list: Option<String>,
}

/// Renders a page; on a template failure, a 500 that says nothing more.
pub(super) fn page(state: &AppState, name: &str, lang: Language, status: StatusCode, mut context: Value) -> Response {
    if let Some(map) = context.as_object_mut() {
        map.insert("site_name".into(), state.config.site_name.clone().into());
    }
    match state.audience.templates.render(name, lang, context) {
        Ok(html) => {
            let mut response = (status, Html(html)).into_response();
            let headers = response.headers_mut();
            headers.insert(header::VARY, HeaderValue::from_static("Accept-Language"));
            headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
            headers.insert(header::REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
            response
        }
        Err(e) => super::ApiError::Unexpected(e).into_response(),
    }
}

/// A page with a heading and a sentence, both from the translations.
fn notice(state: &AppState, lang: Language, status: StatusCode, heading: &str, message: &str, link: Value) -> Response {
    let t = state.audience.templates.strings(lang);
    let context = json!({"heading": t[heading], "message": t[message], "link": link});
    page(state, "web/notice.html", lang, status, context)
}

fn not_found(state: &AppState, lang: Language) -> Response {
    notice(state, lang, StatusCode::NOT_FOUND, "not_found_title", "not_found", Value::Null)
}

fn language_of(query: Option<&str>, headers: &HeaderMap, fallback: Language) -> Language {
    super::feeds::page_language(query, headers, fallback)
}

/// Categories a list offers for narrowing: its own (with their names), or the top-level
/// ones when it covers everything.
fn list_categories(list: &MailingList, categories: &[CategoryRef]) -> Vec<Value> {
    categories
        .iter()
        .filter(|c| if list.categories.is_empty() { !c.path.contains('/') } else { list.categories.contains(&c.path) })
        .map(|c| json!({"path": c.path, "name": c.names.join(" › ")}))
        .collect()
}

/// Whether `path` is one of the list's categories or below one (any path for a list
/// that covers everything).
fn within(list: &MailingList, path: &str) -> bool {
    list.categories.is_empty()
        || list
            .categories
            .iter()
            .any(|c| path == c || path.strip_prefix(c.as_str()).is_some_and(|r| r.starts_with('/')))
}

async fn subscribe_form(State(state): State<AppState>, Query(query): Query<PageQuery>, headers: HeaderMap) -> Response {
    let lang = language_of(query.lang.as_deref(), &headers, state.config.language);
    render_subscribe(&state, lang, StatusCode::OK, None, "", "", query.list.as_deref()).await
}

async fn render_subscribe(
    state: &AppState,
    lang: Language,
    status: StatusCode,
    error: Option<String>,
    email: &str,
    name: &str,
    checked: Option<&str>,
) -> Response {
    let found =
        async { Ok::<_, crate::store::StoreError>((state.store.lists().await?, state.store.categories().await?)) };
    let (lists, categories) = match found.await {
        Ok(found) => found,
        Err(e) => return super::ApiError::from(e).into_response(),
    };
    let only_one = lists.len() == 1;
    let lists: Vec<Value> = lists
        .iter()
        .map(|l| {
            json!({
                "slug": l.slug, "name": l.name, "description": l.description,
                "checked": only_one || checked == Some(l.slug.as_str()),
                "categories": list_categories(l, &categories),
            })
        })
        .collect();
    let context = json!({"lists": lists, "error": error, "email": email, "name": name});
    page(state, "web/subscribe.html", lang, status, context)
}

async fn subscribe(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    form: FormData,
) -> Response {
    let lang = language_of(form.get("lang"), &headers, state.config.language);
    let t = state.audience.templates.strings(lang);
    if !state.throttles.subscribe_ip.allow(&peer.ip().to_string()) {
        return notice(&state, lang, StatusCode::TOO_MANY_REQUESTS, "subscribe_title", "too_many", Value::Null);
    }
    let check_inbox = || notice(&state, lang, StatusCode::OK, "check_inbox_title", "check_inbox", Value::Null);
    // Only bots fill the hidden field; they get the same answer and nothing happens.
    if !form.text("website").is_empty() {
        return check_inbox();
    }
    let email = match EmailAddress::parse(form.text("email")) {
        Ok(email) => email,
        Err(reason) => {
            let error = format!("{} {reason}", t["email"].as_str().unwrap_or("Email"));
            return render_subscribe(
                &state,
                lang,
                StatusCode::UNPROCESSABLE_ENTITY,
                Some(error),
                form.text("email"),
                form.text("name"),
                None,
            )
            .await;
        }
    };
    let name = match parse_subscriber_name("name", form.text("name")) {
        Ok(name) => name,
        Err(e) => {
            return render_subscribe(
                &state,
                lang,
                StatusCode::UNPROCESSABLE_ENTITY,
                Some(e.to_string()),
                email.as_str(),
                "",
                None,
            )
            .await;
        }
    };
    let lists = match state.store.lists().await {
        Ok(lists) => lists,
        Err(e) => return super::ApiError::from(e).into_response(),
    };
    let wanted = form.all("lists");
    let chosen: Vec<&MailingList> = if lists.len() == 1 && wanted.is_empty() {
        lists.iter().collect()
    } else {
        lists.iter().filter(|l| wanted.contains(&l.slug.as_str())).collect()
    };
    if chosen.is_empty() {
        let error = t["choose_a_list"].as_str().map(str::to_owned);
        return render_subscribe(&state, lang, StatusCode::UNPROCESSABLE_ENTITY, error, email.as_str(), &name, None)
            .await;
    }
    let categories = form.all("categories");
    let choices: Vec<ListChoice> = chosen
        .iter()
        .map(|l| ListChoice {
            list_id: l.id,
            categories: categories.iter().filter(|p| within(l, p)).map(|p| (*p).to_owned()).collect(),
        })
        .collect();
    // Past the per-address limit the form still says "check your inbox", but nothing
    // is written or sent.
    if !state.throttles.subscribe_email.allow(&email.key()) {
        return check_inbox();
    }
    let now = Utc::now();
    match state.store.subscribe(&email, &name, lang, &choices, crate::audience::CONFIRM_INTERVAL, now).await {
        Ok(SubscribeOutcome::Recorded { subscriber_id, confirm: true }) => {
            state.audience.send_confirmation_later(subscriber_id);
        }
        Ok(_) => {}
        Err(e) => return super::ApiError::from(e).into_response(),
    }
    check_inbox()
}

/// The subscriber a token of `purpose` names, or the 404 page.
async fn subscriber_for(
    state: &AppState,
    token: &str,
    purpose: LinkPurpose,
    lang: Language,
) -> Result<(crate::domain::link::Link, SubscriberDetail), Response> {
    let Some(link) = state.audience.verify(token, purpose, Utc::now()) else {
        return Err(not_found(state, lang));
    };
    match state.store.subscriber(link.subscriber_id).await {
        Ok(Some(detail)) => Ok((link, detail)),
        Ok(None) => Err(not_found(state, lang)),
        Err(e) => Err(super::ApiError::from(e).into_response()),
    }
}

fn subscriber_language(detail: &SubscriberDetail, query: Option<&str>, fallback: Language) -> Language {
    query.and_then(Language::parse).or_else(|| Language::parse(&detail.subscriber.language)).unwrap_or(fallback)
}

async fn confirm(
    State(state): State<AppState>,
    Path(token): Path<String>,
    Query(query): Query<PageQuery>,
    headers: HeaderMap,
) -> Response {
    let lang = language_of(query.lang.as_deref(), &headers, state.config.language);
    let (_, detail) = match subscriber_for(&state, &token, LinkPurpose::Confirm, lang).await {
        Ok(found) => found,
        Err(response) => return response,
    };
    let lang = subscriber_language(&detail, query.lang.as_deref(), lang);
    let id = detail.subscriber.id;
    match state.store.confirm_subscriber(id, Utc::now()).await {
        Ok(true) => {
            let t = state.audience.templates.strings(lang);
            let link = json!({"href": state.audience.preferences_url(id), "text": t["manage_link"]});
            notice(&state, lang, StatusCode::OK, "confirmed_title", "confirmed", link)
        }
        Ok(false) => not_found(&state, lang),
        Err(e) => super::ApiError::from(e).into_response(),
    }
}

async fn preferences(
    State(state): State<AppState>,
    Path(token): Path<String>,
    Query(query): Query<PageQuery>,
    headers: HeaderMap,
) -> Response {
    let lang = language_of(query.lang.as_deref(), &headers, state.config.language);
    match subscriber_for(&state, &token, LinkPurpose::Preferences, lang).await {
        Ok((_, detail)) => {
            let lang = subscriber_language(&detail, query.lang.as_deref(), lang);
            render_preferences(&state, &detail, lang, false).await
        }
        Err(response) => response,
    }
}

async fn render_preferences(state: &AppState, detail: &SubscriberDetail, lang: Language, saved: bool) -> Response {
    let found =
        async { Ok::<_, crate::store::StoreError>((state.store.lists().await?, state.store.categories().await?)) };
    let (lists, categories) = match found.await {
        Ok(found) => found,
        Err(e) => return super::ApiError::from(e).into_response(),
    };
    let lists: Vec<Value> = lists
        .iter()
        .map(|l| {
            let subscription = detail
                .subscriptions
                .iter()
                .find(|s| s.list_id == l.id && s.status != crate::domain::audience::SubscriptionStatus::Unsubscribed);
            let chosen: &[String] = subscription.map_or(&[], |s| &s.categories);
            let cats: Vec<Value> = list_categories(l, &categories)
                .into_iter()
                .map(|mut c| {
                    let checked = c["path"].as_str().is_some_and(|p| chosen.iter().any(|x| x == p));
                    c["checked"] = checked.into();
                    c
                })
                .collect();
            json!({"slug": l.slug, "name": l.name, "description": l.description, "checked": subscription.is_some(), "categories": cats})
        })
        .collect();
    let context = json!({
        "email": detail.subscriber.email, "lists": lists, "language": detail.subscriber.language, "saved": saved,
    });
    page(state, "web/preferences.html", lang, StatusCode::OK, context)
}

async fn save_preferences(
    State(state): State<AppState>,
    Path(token): Path<String>,
    Query(query): Query<PageQuery>,
    headers: HeaderMap,
    form: FormData,
) -> Response {
    let lang = language_of(query.lang.as_deref(), &headers, state.config.language);
    let (_, detail) = match subscriber_for(&state, &token, LinkPurpose::Preferences, lang).await {
        Ok(found) => found,
        Err(response) => return response,
    };
    let lists = match state.store.lists().await {
        Ok(lists) => lists,
        Err(e) => return super::ApiError::from(e).into_response(),
    };
    let everything_off = form.get("action") == Some("unsubscribe_all");
    let wanted = form.all("lists");
    let categories = form.all("categories");
    let choices: Vec<ListChoice> = if everything_off {
        Vec::new()
    } else {
        lists
            .iter()
            .filter(|l| wanted.contains(&l.slug.as_str()))
            .map(|l| ListChoice {
                list_id: l.id,
                categories: categories
                    .iter()
                    .filter_map(|c| c.split_once(':'))
                    .filter(|(slug, path)| *slug == l.slug && within(l, path))
                    .map(|(_, path)| path.to_owned())
                    .collect(),
            })
            .collect()
    };
    let language = form.get("language").and_then(Language::parse).unwrap_or(lang);
    let id = detail.subscriber.id;
    if let Err(e) = state.store.save_preferences(id, &choices, language, Utc::now()).await {
        return super::ApiError::from(e).into_response();
    }
    match state.store.subscriber(id).await {
        Ok(Some(detail)) => render_preferences(&state, &detail, language, true).await,
        Ok(None) => not_found(&state, lang),
        Err(e) => super::ApiError::from(e).into_response(),
    }
}

async fn unsubscribe_page(
    State(state): State<AppState>,
    Path(token): Path<String>,
    Query(query): Query<PageQuery>,
    headers: HeaderMap,
) -> Response {
    let lang = language_of(query.lang.as_deref(), &headers, state.config.language);
    let (link, detail) = match subscriber_for(&state, &token, LinkPurpose::Unsubscribe, lang).await {
        Ok(found) => found,
        Err(response) => return response,
    };
    let lang = subscriber_language(&detail, query.lang.as_deref(), lang);
    let list_name = match link.list_id {
        Some(id) => match state.store.lists().await {
            Ok(lists) => lists.into_iter().find(|l| l.id == id).map(|l| l.name),
            Err(e) => return super::ApiError::from(e).into_response(),
        },
        None => None,
    };
    let context = json!({
        "email": detail.subscriber.email, "list_name": list_name,
        "preferences_url": state.audience.preferences_url(detail.subscriber.id),
    });
    page(&state, "web/unsubscribe.html", lang, StatusCode::OK, context)
}

/// The button on the page, and mail clients' one-click POST (`List-Unsubscribe=One-Click`,
/// RFC 8058), which carries no cookie and no other field.
async fn unsubscribe(
    State(state): State<AppState>,
    Path(token): Path<String>,
    Query(query): Query<PageQuery>,
    headers: HeaderMap,
) -> Response {
    let lang = language_of(query.lang.as_deref(), &headers, state.config.language);
    let (link, detail) = match subscriber_for(&state, &token, LinkPurpose::Unsubscribe, lang).await {
        Ok(found) => found,
        Err(response) => return response,
    };
    let lang = subscriber_language(&detail, query.lang.as_deref(), lang);
    match state.store.unsubscribe(detail.subscriber.id, link.list_id, Utc::now()).await {
        Ok(_) => {
            let t = state.audience.templates.strings(lang);
            let link = json!({"href": state.audience.preferences_url(detail.subscriber.id), "text": t["manage_link"]});
            notice(&state, lang, StatusCode::OK, "unsubscribed_title", "unsubscribed", link)
        }
        Err(e) => super::ApiError::from(e).into_response(),
    }
}
