//! An upstream feed document (RSS 0.9x/1.0/2.0, Atom, JSON Feed, parsed by feed-rs) to
//! article JSON for the ingest path: ids from the item's guid (or its link), relative
//! links made absolute against the feed's base, the category from the configuration or
//! the item, and each item once even when the document repeats it.

use std::collections::HashSet;
use std::time::Duration;

use feed_rs::model::{Entry, Feed, Text};
use serde_json::{Map, Value, json};
use sha2::{Digest, Sha256};
use url::Url;

use super::decode::{decode_document, decode_html_entities};
use crate::domain::article::{MAX_ID_CHARS, MAX_TAGS};
use crate::domain::source::SourceSpec;
use crate::feeds::sanitize::sanitize_html;

/// Characters of a summary used as the title of an item that has none.
const TITLE_FROM_SUMMARY_CHARS: usize = 120;

/// What a feed document holds for the ingest path.
#[derive(Debug)]
pub struct FeedItems {
    /// Article JSON, one per distinct item.
    pub articles: Vec<Value>,
    /// Items passed over, each with why (no id and no link, no title).
    pub skipped: Vec<String>,
    /// The feed's `ttl`: poll no more often than this.
    pub ttl: Option<Duration>,
}

/// Decodes and parses a fetched document.
pub fn parse_document(body: &[u8], content_type: Option<&str>, base: &Url) -> Result<Feed, String> {
    let text = decode_document(body, content_type);
    feed_rs::parser::Builder::new()
        .base_uri(Some(base.as_str()))
        // An item without a guid keeps an empty id, so its link identifies it (the
        // default would hash the title, making a corrected title a new article).
        .id_generator(|_, _, _| String::new())
        .build()
        .parse(text.as_bytes())
        .map_err(|e| format!("not a feed feed-rs can read (RSS, Atom or JSON Feed): {e}"))
}

/// The articles of a parsed feed, for `spec`, with links resolved against `base`.
pub fn feed_items(feed: &Feed, spec: &SourceSpec, base: &Url) -> FeedItems {
    let mut articles = Vec::with_capacity(feed.entries.len());
    let mut skipped = Vec::new();
    let mut seen_ids = HashSet::new();
    let mut seen_links = HashSet::new();
    for (i, entry) in feed.entries.iter().enumerate() {
        let link = item_link(entry, base);
        let guid = entry.id.trim();
        let key = if guid.is_empty() { link.as_ref().map(Url::as_str) } else { Some(guid) };
        let Some(key) = key else {
            skipped.push(format!("item {}: has neither a guid/id nor a link", i + 1));
            continue;
        };
        // The same item twice in one document: by its id first, then by its link.
        if !seen_ids.insert(key.to_owned()) || link.as_ref().is_some_and(|l| !seen_links.insert(l.to_string())) {
            continue;
        }
        match article(entry, spec, base, key, link.as_ref()) {
            Ok(value) => articles.push(value),
            Err(why) => skipped.push(format!("item {} ({key}): {why}", i + 1)),
        }
    }
    let ttl = feed.ttl.map(|minutes| Duration::from_secs(u64::from(minutes) * 60));
    FeedItems { articles, skipped, ttl }
}

/// The bantin id of an item: the source's name and the item's key, hashed when long.
pub fn article_id(source: &str, key: &str) -> String {
    let id = format!("{source}:{key}");
    if id.chars().count() <= MAX_ID_CHARS {
        return id;
    }
    format!("{source}:sha256-{}", hex::encode(Sha256::digest(key.as_bytes())))
}

/// The item's page: its alternate link (or first link without a rel), made absolute.
fn item_link(entry: &Entry, base: &Url) -> Option<Url> {
    let link = entry
        .links
        .iter()
        .find(|l| l.rel.as_deref() == Some("alternate"))
        .or_else(|| entry.links.iter().find(|l| l.rel.is_none()))?;
    absolute_http(&link.href, base)
}

fn absolute_http(href: &str, base: &Url) -> Option<Url> {
    let url = base.join(href.trim()).ok()?;
    matches!(url.scheme(), "http" | "https").then_some(url)
}

/// Plain text of a feed text construct: HTML is stripped and its entities decoded once.
fn is_plain(text: &Text) -> bool {
    text.content_type.ty() == "text" && text.content_type.subty() == "plain"
}

fn plain(text: &Text) -> String {
    if is_plain(text) {
        return text.content.trim().to_owned();
    }
    let stripped = ammonia::Builder::empty().clean(&text.content).to_string();
    decode_html_entities(&stripped).trim().to_owned()
}

fn html(text: &Text) -> String {
    if is_plain(text) {
        return crate::domain::text::paragraphs_from_text(&text.content);
    }
    text.content.clone()
}

fn article(entry: &Entry, spec: &SourceSpec, base: &Url, key: &str, link: Option<&Url>) -> Result<Value, String> {
    let summary_text = entry.summary.as_ref().map(plain).filter(|s| !s.is_empty());
    let title = match entry.title.as_ref().map(plain).filter(|t| !t.is_empty()) {
        Some(title) => title,
        None => summary_text
            .as_deref()
            .map(|s| s.chars().take(TITLE_FROM_SUMMARY_CHARS).collect::<String>())
            .ok_or("has no title and no summary to make one from")?,
    };
    // Relative links and images in the content are resolved against the item's page,
    // or the feed's base when the item has none.
    let content_base = link.unwrap_or(base);
    let (content, summary) = match (entry.content.as_ref().and_then(|c| c.body.as_deref()), &entry.summary) {
        (Some(body), _) => (Some(sanitize_html(body, content_base.as_str())), summary_text),
        (None, Some(summary)) => (Some(sanitize_html(&html(summary), content_base.as_str())), None),
        (None, None) => (None, None),
    };
    let mut article = Map::new();
    article.insert("id".into(), json!(article_id(spec.name.as_str(), key)));
    article.insert("title".into(), json!(title));
    if let Some(link) = link {
        article.insert("url".into(), json!(link.as_str()));
    }
    let (category, tags) = categories(entry, spec);
    if let Some(category) = category {
        article.insert("category".into(), json!(category));
    }
    if !tags.is_empty() {
        article.insert("tags".into(), json!(tags));
    }
    if let Some(author) = entry.authors.iter().map(|a| a.name.trim()).find(|n| !n.is_empty()) {
        article.insert("author".into(), json!(author));
    }
    if let Some(summary) = summary {
        article.insert("summary".into(), json!(summary));
    }
    if let Some(content) = content.filter(|c| !c.trim().is_empty()) {
        article.insert("content_html".into(), json!(content));
    }
    if let Some(image) = image(entry, content_base) {
        article.insert("image".into(), json!(image.as_str()));
    }
    // Without a date the item keeps the time bantin first stored it.
    if let Some(published) = entry.published.or(entry.updated) {
        article.insert("published_at".into(), json!(published.to_rfc3339()));
    }
    if let Some(updated) = entry.updated {
        article.insert("updated_at".into(), json!(updated.to_rfc3339()));
    }
    Ok(Value::Object(article))
}

/// The configured category, or with `map = "item-categories"` the item's first category
/// (a path when written "Tin Tức/Kinh tế" or "Tin Tức › Kinh tế"); the item's other
/// categories become tags.
fn categories(entry: &Entry, spec: &SourceSpec) -> (Option<Vec<String>>, Vec<String>) {
    let mut names: Vec<String> = entry
        .categories
        .iter()
        .map(|c| decode_html_entities(c.label.as_deref().unwrap_or(&c.term)).trim().to_owned())
        .filter(|n| !n.is_empty())
        .collect();
    let configured = spec.category.as_ref().map(|c| c.names().map(str::to_owned).collect::<Vec<_>>());
    let category = if spec.item_categories && !names.is_empty() {
        let first = names.remove(0);
        let path: Vec<String> =
            first.split(['/', '›', '>', '»']).map(str::trim).filter(|s| !s.is_empty()).map(str::to_owned).collect();
        Some(path)
    } else {
        configured
    };
    names.dedup();
    names.truncate(MAX_TAGS);
    (category, names)
}

/// A picture of the item: Media RSS content or thumbnail, or an image enclosure.
fn image(entry: &Entry, base: &Url) -> Option<Url> {
    let from_media = entry.media.iter().find_map(|m| {
        m.content
            .iter()
            .find(|c| c.content_type.as_ref().is_none_or(|t| t.ty() == "image"))
            .and_then(|c| c.url.clone())
            .or_else(|| m.thumbnails.first().and_then(|t| absolute_http(&t.image.uri, base)))
    });
    from_media.filter(|u| matches!(u.scheme(), "http" | "https")).or_else(|| {
        entry
            .links
            .iter()
            .filter(|l| l.rel.as_deref() == Some("enclosure"))
            .find(|l| l.media_type.as_deref().is_some_and(|t| t.starts_with("image/")))
            .and_then(|l| absolute_http(&l.href, base))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_keys_are_hashed_into_the_id_limit() {
        assert_eq!(article_id("vnx", "https://x.vn/a"), "vnx:https://x.vn/a");
        let long = format!("https://x.vn/{}", "a".repeat(300));
        let id = article_id("vnx", &long);
        assert!(id.starts_with("vnx:sha256-") && id.len() <= MAX_ID_CHARS, "{id}");
    }
}
