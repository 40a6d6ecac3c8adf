//! Feeds: RSS 2.0, Atom 1.0 and JSON Feed 1.1 for "all", every category (with its
//! descendants) and every author, prerendered by the builder and served from memory.

pub mod atom;
pub mod builder;
pub mod cache;
pub mod json;
pub mod opml;
pub mod rss;
pub mod sanitize;
pub mod websub;
pub mod xml;

use chrono::{DateTime, Utc};
use chrono_tz::Tz;

use crate::domain::Slug;
use crate::store::FeedCursor;

pub const GENERATOR: &str = "bantin";
pub const GENERATOR_VERSION: &str = env!("CARGO_PKG_VERSION");

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum FeedFormat {
    Rss,
    Atom,
    Json,
}

impl FeedFormat {
    pub const ALL: [FeedFormat; 3] = [FeedFormat::Rss, FeedFormat::Atom, FeedFormat::Json];

    pub fn extension(self) -> &'static str {
        match self {
            FeedFormat::Rss => "rss",
            FeedFormat::Atom => "atom",
            FeedFormat::Json => "json",
        }
    }

    pub fn content_type(self) -> &'static str {
        match self {
            FeedFormat::Rss => "application/rss+xml; charset=utf-8",
            FeedFormat::Atom => "application/atom+xml; charset=utf-8",
            FeedFormat::Json => "application/feed+json; charset=utf-8",
        }
    }

    /// The media type without parameters, for `type=` attributes.
    pub fn media_type(self) -> &'static str {
        self.content_type().split(';').next().unwrap_or_default()
    }

    pub fn from_extension(ext: &str) -> Option<FeedFormat> {
        FeedFormat::ALL.into_iter().find(|f| f.extension() == ext)
    }

    pub fn render(self, page: &FeedPage) -> String {
        match self {
            FeedFormat::Rss => rss::render(page),
            FeedFormat::Atom => atom::render(page),
            FeedFormat::Json => json::render(page),
        }
    }
}

/// Which feed.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum FeedKey {
    All,
    /// A category path such as "tin-tuc/kinh-te": the category and its descendants.
    Category(String),
    Author(String),
}

impl FeedKey {
    /// The key stored with feed entries and documents.
    pub fn storage_key(&self) -> String {
        match self {
            FeedKey::All => "all".to_owned(),
            FeedKey::Category(path) => format!("category:{path}"),
            FeedKey::Author(slug) => format!("author:{slug}"),
        }
    }

    pub fn from_storage_key(key: &str) -> Option<FeedKey> {
        if key == "all" {
            return Some(FeedKey::All);
        }
        if let Some(path) = key.strip_prefix("category:") {
            return Some(FeedKey::Category(path.to_owned()));
        }
        key.strip_prefix("author:").map(|slug| FeedKey::Author(slug.to_owned()))
    }

    /// The path after `/feeds/` without the extension: "all", "tin-tuc/kinh-te", "authors/x".
    pub fn url_path(&self) -> String {
        match self {
            FeedKey::All => "all".to_owned(),
            FeedKey::Category(path) => path.clone(),
            FeedKey::Author(slug) => format!("authors/{slug}"),
        }
    }

    /// Parses the path after `/feeds/` (without the extension); every segment must be a slug.
    pub fn from_url_path(path: &str) -> Option<FeedKey> {
        if path == "all" {
            return Some(FeedKey::All);
        }
        if let Some(slug) = path.strip_prefix("authors/") {
            return Slug::parse(slug).map(|s| FeedKey::Author(s.to_string()));
        }
        let valid = !path.is_empty() && path.split('/').all(|segment| Slug::parse(segment).is_some());
        valid.then(|| FeedKey::Category(path.to_owned()))
    }

    pub fn url(&self, base_url: &str, format: FeedFormat) -> String {
        format!("{base_url}/feeds/{}.{}", self.url_path(), format.extension())
    }
}

/// Encodes a feed position for `?before=` links: microseconds, a dash, the article id.
pub fn encode_cursor(cursor: FeedCursor) -> String {
    format!("{}-{}", cursor.published_at.timestamp_micros(), cursor.article_id)
}

pub fn decode_cursor(s: &str) -> Option<FeedCursor> {
    let (micros, id) = s.split_once('-')?;
    Some(FeedCursor {
        published_at: DateTime::from_timestamp_micros(micros.parse().ok()?)?,
        article_id: id.parse().ok()?,
    })
}

/// What a feed says about itself.
#[derive(Clone, Debug)]
pub struct FeedMeta {
    pub key: FeedKey,
    pub title: String,
    pub description: String,
    pub language: String,
    pub base_url: String,
    pub site_url: String,
    pub site_name: String,
    pub hubs: Vec<String>,
    pub ttl_minutes: u32,
    /// Atom feed id, a tag URI that never changes.
    pub id: String,
    pub timezone: Tz,
}

/// One item, ready to render: its content is already sanitized.
#[derive(Clone, Debug)]
pub struct FeedItem {
    /// A tag URI that never changes when the title or URL does.
    pub id: String,
    pub title: String,
    pub url: String,
    pub summary: Option<String>,
    pub content_html: String,
    pub image: Option<String>,
    pub author: Option<String>,
    /// The category's name and path, if any.
    pub category: Option<(String, String)>,
    pub tags: Vec<String>,
    pub published: DateTime<Utc>,
    pub updated: DateTime<Utc>,
}

/// One document's worth: the feed, its items, and paging links.
#[derive(Clone, Debug)]
pub struct FeedPage {
    pub meta: FeedMeta,
    pub items: Vec<FeedItem>,
    /// When the document was last changed: the newest change among its items.
    pub updated: DateTime<Utc>,
    /// `?before=` of this page, when it is an archive page.
    pub this_cursor: Option<String>,
    /// `?before=` of the next (older) page, when there is one.
    pub next_cursor: Option<String>,
}

impl FeedPage {
    pub fn self_url(&self, format: FeedFormat) -> String {
        self.page_url(format, self.this_cursor.as_deref())
    }

    pub fn page_url(&self, format: FeedFormat, cursor: Option<&str>) -> String {
        let url = self.meta.key.url(&self.meta.base_url, format);
        match cursor {
            Some(c) => format!("{url}?before={c}"),
            None => url,
        }
    }

    /// The site's own page for this feed.
    pub fn alternate_url(&self) -> &str {
        &self.meta.site_url
    }
}

/// A MIME type for an image URL, from its extension.
pub fn image_type(url: &str) -> &'static str {
    let path = url.split(['?', '#']).next().unwrap_or_default().to_ascii_lowercase();
    match path.rsplit('.').next() {
        Some("png") => "image/png",
        Some("gif") => "image/gif",
        Some("webp") => "image/webp",
        Some("avif") => "image/avif",
        Some("svg") => "image/svg+xml",
        _ => "image/jpeg",
    }
}

/// Percent-encodes what a tag URI's specific part may not hold.
pub fn tag_specific(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~:/!$&'()*+,;=@".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn feed_paths_round_trip() {
        for path in ["all", "tin-tuc", "tin-tuc/kinh-te", "authors/phuong-nhung"] {
            assert_eq!(FeedKey::from_url_path(path).unwrap().url_path(), path);
        }
        for bad in ["", "Tin-Tuc", "tin-tuc/", "../etc", "authors/", "a//b"] {
            assert!(FeedKey::from_url_path(bad).is_none(), "{bad}");
        }
        let key = FeedKey::Category("tin-tuc/kinh-te".into());
        assert_eq!(FeedKey::from_storage_key(&key.storage_key()), Some(key));
    }

    #[test]
    fn cursors_round_trip() {
        let c = FeedCursor {
            published_at: DateTime::from_timestamp_micros(1_764_032_400_123_456).unwrap(),
            article_id: 42,
        };
        assert_eq!(decode_cursor(&encode_cursor(c)), Some(c));
        assert!(decode_cursor("x-1").is_none());
    }
}
