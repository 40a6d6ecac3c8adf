//! Feed routes: `/feeds/{path}.{rss,atom,json}` served from prerendered bytes with ETag,
//! Last-Modified, 304s and content negotiation; `/feeds` (HTML index) and `/feeds.opml`.

use std::sync::LazyLock;
use std::time::Instant;

use axum::body::Body;
use axum::extract::{Path, Query, Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use chrono::{DateTime, Utc};
use serde::Deserialize;
use serde_json::json;

use super::{AppState, RouteTable};
use crate::config::Language;
use crate::domain::text::escape_html;
use crate::feeds::cache::FeedDocument;
use crate::feeds::{FeedFormat, FeedKey, decode_cursor, opml};

/// The route of every feed document.
const FEED_ROUTE: &str = "/feeds/{*path}";

pub fn routes(table: RouteTable) -> RouteTable {
    table.route("/feeds", get(index)).route("/feeds.opml", get(opml_document)).route(FEED_ROUTE, get(feed))
}

#[derive(Deserialize)]
struct FeedQuery {
    before: Option<String>,
}

/// The content codings a request accepts, by `Accept-Encoding` (q=0 refuses).
fn accepts(headers: &HeaderMap, coding: &str) -> bool {
    let Some(value) = headers.get(header::ACCEPT_ENCODING).and_then(|v| v.to_str().ok()) else { return false };
    value.split(',').any(|part| {
        let mut pieces = part.split(';');
        let name = pieces.next().unwrap_or_default().trim();
        let refused = pieces.any(|p| {
            let p = p.trim();
            p.strip_prefix("q=").and_then(|q| q.trim().parse::<f32>().ok()).is_some_and(|q| q <= 0.0)
        });
        (name.eq_ignore_ascii_case(coding) || name == "*") && !refused
    })
}

/// True when the client's copy is current: If-None-Match decides when present (any of
/// the document's encodings matches), otherwise If-Modified-Since.
fn not_modified(headers: &HeaderMap, digest: &str, last_modified: DateTime<Utc>) -> bool {
    if let Some(tags) = headers.get(header::IF_NONE_MATCH).and_then(|v| v.to_str().ok()) {
        return tags.split(',').map(str::trim).any(|tag| {
            let tag = tag.trim_start_matches("W/").trim_matches('"');
            tag == "*" || tag.strip_prefix(digest).is_some_and(|rest| matches!(rest, "" | "-gzip" | "-br"))
        });
    }
    headers
        .get(header::IF_MODIFIED_SINCE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| DateTime::parse_from_rfc2822(v).ok())
        .is_some_and(|since| last_modified.timestamp() <= since.timestamp())
}

fn feed_response(
    state: &AppState,
    headers: &HeaderMap,
    doc: &FeedDocument,
    format: FeedFormat,
    key: &FeedKey,
) -> Response {
    let h = &doc.headers;
    let (body, coding, etag) = match (&doc.brotli, &doc.gzip) {
        (Some(br), _) if accepts(headers, "br") => (br.clone(), Some("br"), &h.etag_brotli),
        (_, Some(gz)) if accepts(headers, "gzip") => (gz.clone(), Some("gzip"), &h.etag_gzip),
        _ => (doc.body.clone(), None, &h.etag_identity),
    };
    let link = h.link.clone().unwrap_or_else(|| state.feeds.link_header(key, format));
    // Headers inserted into a map sized for them: the hot path of every feed request.
    let fresh = !not_modified(headers, &doc.digest, doc.last_modified);
    let mut response = Response::new(if fresh { Body::from(body) } else { Body::empty() });
    let out = response.headers_mut();
    out.reserve(8);
    out.insert(header::ETAG, etag.clone());
    out.insert(header::LAST_MODIFIED, h.last_modified.clone());
    out.insert(header::CACHE_CONTROL, state.feeds.cache_control().clone());
    out.insert(header::VARY, HeaderValue::from_static("Accept-Encoding"));
    out.insert(header::LINK, link);
    if !fresh {
        *response.status_mut() = StatusCode::NOT_MODIFIED;
        return response;
    }
    out.insert(header::CONTENT_TYPE, HeaderValue::from_static(format.content_type()));
    if let Some(coding) = coding {
        out.insert(header::CONTENT_ENCODING, HeaderValue::from_static(coding));
    }
    response
}

fn not_found_page(state: &AppState) -> Response {
    let vi = state.config.language == Language::Vi;
    let (title, text) = if vi {
        ("Không tìm thấy nguồn tin", "Không có chuyên mục hay tác giả này. Xem danh sách các nguồn tin tại")
    } else {
        ("Feed not found", "There is no such category or author. See every feed at")
    };
    let page = format!(
        "<!doctype html><html lang=\"{}\"><head><meta charset=\"utf-8\"><title>{title}</title></head>\
         <body><h1>{title}</h1><p>{text} <a href=\"{base}/feeds\">{base}/feeds</a>.</p></body></html>",
        state.config.language.code(),
        base = escape_html(&state.config.base_url)
    );
    (StatusCode::NOT_FOUND, Html(page)).into_response()
}

/// The format and feed a path under `/feeds/` names, as in `tin-tuc/kinh-te.rss`.
fn feed_of(path: &str) -> Option<(FeedFormat, FeedKey)> {
    let (stem, ext) = path.rsplit_once('.')?;
    Some((FeedFormat::from_extension(ext)?, FeedKey::from_url_path(stem)?))
}

/// The hot path, taken before the router (see `service.rs`): a GET or HEAD of a feed's
/// newest items that is in the cache, answered as [`feed`] would answer it and counted
/// under the same route. `None` leaves the request to the router: anything else, a
/// query, a percent-encoded path, a feed not built yet.
pub(super) fn from_cache(state: &AppState, request: &Request) -> Option<Response> {
    let method = request.method();
    if !(method == Method::GET || method == Method::HEAD) || request.uri().query().is_some() {
        return None;
    }
    let path = request.uri().path().strip_prefix("/feeds/")?;
    if path.contains('%') {
        return None;
    }
    // Timed from here: requests left to the router are timed there.
    let started = Instant::now();
    let (format, key) = feed_of(path)?;
    let doc = state.feeds.cache().get(&key, format)?;
    let response = feed_response(state, request.headers(), &doc, format, &key);
    super::record(state, method, FEED_ROUTE, &response, started);
    Some(response)
}

async fn feed(
    State(state): State<AppState>,
    Path(path): Path<String>,
    Query(query): Query<FeedQuery>,
    request: Request,
) -> Response {
    // Read the headers in place: the HeaderMap extractor would copy them on every request.
    let headers = request.headers();
    let Some((format, key)) = feed_of(&path) else { return not_found_page(&state) };
    if let Some(before) = query.before {
        return archive_page(&state, headers, key, format, &before).await;
    }
    match state.feeds.document(&key, format).await {
        Ok(Some(doc)) => feed_response(&state, headers, &doc, format, &key),
        Ok(None) => not_found_page(&state),
        Err(e) => super::ApiError::from(e).into_response(),
    }
}

/// An older page (RFC 5005 paged feed): built on request, keyed by a position, so new
/// articles never shift it.
async fn archive_page(
    state: &AppState,
    headers: &HeaderMap,
    key: FeedKey,
    format: FeedFormat,
    before: &str,
) -> Response {
    let Some(cursor) = decode_cursor(before) else {
        return (StatusCode::BAD_REQUEST, "invalid before= position").into_response();
    };
    match state.feeds.page(&key, Some(cursor)).await {
        Ok(Some(page)) => {
            let body = format.render(&page);
            let doc = FeedDocument::new(body, page.updated, 0);
            feed_response(state, headers, &doc, format, &key)
        }
        Ok(None) => not_found_page(state),
        Err(e) => super::ApiError::from(e).into_response(),
    }
}

async fn opml_document(State(state): State<AppState>) -> Response {
    let result =
        async { Ok::<_, crate::store::StoreError>((state.store.categories().await?, state.store.authors().await?)) };
    match result.await {
        Ok((categories, authors)) => {
            let c = &state.config;
            let body = opml::render(&c.site_name, &c.base_url, &c.site_url, &categories, &authors, Utc::now());
            ([(header::CONTENT_TYPE, "text/x-opml; charset=utf-8")], body).into_response()
        }
        Err(e) => super::ApiError::from(e).into_response(),
    }
}

#[derive(Deserialize)]
struct IndexQuery {
    lang: Option<String>,
}

/// vi or en: `?lang=`, else the first of them in Accept-Language, else the site's.
pub(super) fn page_language(query: Option<&str>, headers: &HeaderMap, default: Language) -> Language {
    if let Some(lang) = query.and_then(Language::parse) {
        return lang;
    }
    let accept = headers.get(header::ACCEPT_LANGUAGE).and_then(|v| v.to_str().ok()).unwrap_or_default();
    accept
        .split(',')
        .filter_map(|part| part.split(';').next())
        .filter_map(|tag| Language::parse(tag.trim().split('-').next().unwrap_or_default()))
        .next()
        .unwrap_or(default)
}

static TEMPLATES: LazyLock<minijinja::Environment<'static>> = LazyLock::new(|| {
    let mut env = minijinja::Environment::new();
    env.add_template("feeds.html", include_str!("../../templates/web/feeds.html")).expect("the feeds template parses");
    env
});

async fn index(State(state): State<AppState>, Query(query): Query<IndexQuery>, headers: HeaderMap) -> Response {
    let listing =
        async { Ok::<_, crate::store::StoreError>((state.store.categories().await?, state.store.authors().await?)) };
    let (categories, authors) = match listing.await {
        Ok(found) => found,
        Err(e) => return super::ApiError::from(e).into_response(),
    };
    let c = &state.config;
    let links = |key: &FeedKey| {
        json!({
            "rss": key.url(&c.base_url, FeedFormat::Rss),
            "atom": key.url(&c.base_url, FeedFormat::Atom),
            "json": key.url(&c.base_url, FeedFormat::Json),
        })
    };
    let with_links = |mut v: serde_json::Value, key: &FeedKey| {
        if let (Some(obj), serde_json::Value::Object(l)) = (v.as_object_mut(), links(key)) {
            obj.extend(l);
        }
        v
    };
    let categories: Vec<_> = categories
        .iter()
        .map(|cat| {
            let name = cat.names.last().cloned().unwrap_or_default();
            let title = format!("{} — {name}", c.site_name);
            with_links(
                json!({"name": name, "title": title, "depth": cat.names.len() - 1}),
                &FeedKey::Category(cat.path.clone()),
            )
        })
        .collect();
    let authors: Vec<_> =
        authors.iter().map(|a| with_links(json!({"name": a.name}), &FeedKey::Author(a.slug.clone()))).collect();
    let lang = page_language(query.lang.as_deref(), &headers, c.language);
    let t = match lang {
        Language::Vi => json!({
            "lang": "vi", "title": "Nguồn tin RSS", "all": "Tất cả bài viết", "authors": "Tác giả",
            "intro": "Theo dõi từng chuyên mục bằng trình đọc tin (Feedly, Inoreader, Miniflux, Thunderbird…): chép một đường dẫn RSS, Atom hoặc JSON Feed vào trình đọc.",
            "opml_title": "Tất cả trong một tệp", "opml": "tệp OPML để nhập mọi nguồn tin vào trình đọc một lần.",
            "snippet_title": "Cho chủ trang web", "snippet": "Chép đoạn mã này vào thẻ <head> của trang để trình duyệt và trình đọc tin tự tìm thấy nguồn tin:",
        }),
        Language::En => json!({
            "lang": "en", "title": "Feeds", "all": "All articles", "authors": "Authors",
            "intro": "Follow any category in a feed reader (Feedly, Inoreader, Miniflux, Thunderbird…): copy an RSS, Atom or JSON Feed link into it.",
            "opml_title": "All in one file", "opml": "an OPML file to import every feed into a reader at once.",
            "snippet_title": "For site owners", "snippet": "Paste this into your pages' <head> so browsers and feed readers find the feeds:",
        }),
    };
    let all = links(&FeedKey::All);
    let snippet = format!(
        "<link rel=\"alternate\" type=\"application/rss+xml\" title=\"{name}\" href=\"{}\">\n\
         <link rel=\"alternate\" type=\"application/atom+xml\" title=\"{name}\" href=\"{}\">\n\
         <link rel=\"alternate\" type=\"application/feed+json\" title=\"{name}\" href=\"{}\">",
        all["rss"].as_str().unwrap_or_default(),
        all["atom"].as_str().unwrap_or_default(),
        all["json"].as_str().unwrap_or_default(),
        name = escape_html(&c.site_name),
    );
    let context = json!({
        "t": t, "site_name": c.site_name, "all": all, "categories": categories, "authors": authors,
        "opml": format!("{}/feeds.opml", c.base_url), "snippet": snippet,
    });
    let rendered = TEMPLATES.get_template("feeds.html").and_then(|tpl| tpl.render(context));
    match rendered {
        Ok(html) => {
            let mut response = Html(html).into_response();
            response.headers_mut().insert(header::VARY, HeaderValue::from_static("Accept-Language"));
            response
        }
        Err(e) => super::ApiError::Unexpected(anyhow::anyhow!("rendering /feeds: {e}")).into_response(),
    }
}
