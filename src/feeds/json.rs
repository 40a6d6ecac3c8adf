//! JSON Feed 1.1.

use chrono::{DateTime, SecondsFormat, Utc};
use chrono_tz::Tz;
use serde::Serialize;

use super::{FeedFormat, FeedPage};

#[derive(Serialize)]
struct Author<'a> {
    name: &'a str,
}

#[derive(Serialize)]
struct Hub<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    url: &'a str,
}

#[derive(Serialize)]
struct Item<'a> {
    id: &'a str,
    url: &'a str,
    title: &'a str,
    #[serde(skip_serializing_if = "str::is_empty")]
    content_html: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    content_text: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    summary: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    image: Option<&'a str>,
    date_published: String,
    date_modified: String,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    authors: Vec<Author<'a>>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    tags: Vec<&'a str>,
}

#[derive(Serialize)]
struct Feed<'a> {
    version: &'static str,
    title: &'a str,
    home_page_url: &'a str,
    feed_url: String,
    description: &'a str,
    language: &'a str,
    authors: [Author<'a>; 1],
    #[serde(skip_serializing_if = "Vec::is_empty")]
    hubs: Vec<Hub<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    next_url: Option<String>,
    items: Vec<Item<'a>>,
}

fn rfc3339(t: DateTime<Utc>, tz: Tz) -> String {
    t.with_timezone(&tz).to_rfc3339_opts(SecondsFormat::Secs, false)
}

pub fn render(page: &FeedPage) -> String {
    let meta = &page.meta;
    let tz = meta.timezone;
    let items = page
        .items
        .iter()
        .map(|item| Item {
            id: &item.id,
            url: &item.url,
            title: &item.title,
            content_html: &item.content_html,
            // JSON Feed needs content_html or content_text on every item.
            content_text: item.content_html.is_empty().then_some(item.summary.as_deref().unwrap_or(&item.title)),
            summary: item.summary.as_deref(),
            image: item.image.as_deref(),
            date_published: rfc3339(item.published, tz),
            date_modified: rfc3339(item.updated.max(item.published), tz),
            authors: item.author.as_deref().map(|name| Author { name }).into_iter().collect(),
            tags: item
                .category
                .as_ref()
                .map(|(name, _)| name.as_str())
                .into_iter()
                .chain(item.tags.iter().map(String::as_str))
                .collect(),
        })
        .collect();
    let feed = Feed {
        version: "https://jsonfeed.org/version/1.1",
        title: &meta.title,
        home_page_url: page.alternate_url(),
        feed_url: page.self_url(FeedFormat::Json),
        description: &meta.description,
        language: &meta.language,
        authors: [Author { name: &meta.site_name }],
        hubs: meta.hubs.iter().map(|url| Hub { kind: "WebSub", url }).collect(),
        next_url: page.next_cursor.as_deref().map(|c| page.page_url(FeedFormat::Json, Some(c))),
        items,
    };
    let mut out = serde_json::to_string(&feed).unwrap_or_else(|_| String::from("{}"));
    out.push('\n');
    out
}
