//! An article as a source sends it, parsed and cleaned field by field so that every
//! rejection names the field and the reason.

use chrono::{DateTime, NaiveDate, NaiveDateTime, TimeZone, Utc};
use chrono_tz::Tz;
use serde_json::Value;
use sha2::{Digest, Sha256};
use url::Url;

use super::category::{CategoryName, CategoryPath};
use super::json::BorrowedJson;
use super::text::{clean_line, clean_text, paragraphs_from_text};

pub const MAX_TITLE_CHARS: usize = 1_000;
pub const MAX_ID_CHARS: usize = 200;
pub const MAX_SUMMARY_CHARS: usize = 10_000;
pub const MAX_CONTENT_BYTES: usize = 2 * 1024 * 1024;
pub const MAX_URL_CHARS: usize = 2_048;
pub const MAX_TAGS: usize = 50;
pub const MAX_TAG_CHARS: usize = 100;

const KNOWN_FIELDS: [&str; 12] = [
    "id",
    "title",
    "url",
    "category",
    "author",
    "summary",
    "content_html",
    "content_text",
    "image",
    "published_at",
    "updated_at",
    "tags",
];

/// Why an input was refused, and which field (if one) is to blame.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct FieldError {
    pub field: Option<String>,
    pub error: String,
}

impl FieldError {
    pub fn new(field: &str, error: impl Into<String>) -> FieldError {
        FieldError { field: Some(field.to_owned()), error: error.into() }
    }

    pub fn general(error: impl Into<String>) -> FieldError {
        FieldError { field: None, error: error.into() }
    }
}

impl std::fmt::Display for FieldError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.field {
            Some(field) => write!(f, "{field}: {}", self.error),
            None => f.write_str(&self.error),
        }
    }
}

/// Whether an article is visible in feeds and digests.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ArticleStatus {
    Published,
    /// `published_at` is in the future; it becomes published at that time.
    Scheduled,
    Retracted,
}

impl ArticleStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            ArticleStatus::Published => "published",
            ArticleStatus::Scheduled => "scheduled",
            ArticleStatus::Retracted => "retracted",
        }
    }

    pub fn parse(s: &str) -> Option<ArticleStatus> {
        match s {
            "published" => Some(ArticleStatus::Published),
            "scheduled" => Some(ArticleStatus::Scheduled),
            "retracted" => Some(ArticleStatus::Retracted),
            _ => None,
        }
    }
}

/// A validated, cleaned article from a source (API, file, feed).
#[derive(Clone, Debug, PartialEq)]
pub struct ArticleInput {
    pub source_id: String,
    pub title: String,
    pub url: Option<Url>,
    pub category: Option<CategoryPath>,
    pub author: Option<CategoryName>,
    pub summary: Option<String>,
    pub content_html: String,
    pub image: Option<Url>,
    pub published_at: Option<DateTime<Utc>>,
    pub updated_at: Option<DateTime<Utc>>,
    pub tags: Vec<String>,
}

/// An optional string field; `null` counts as absent.
fn opt_str<'j>(obj: &'j BorrowedJson<'_>, field: &str) -> Result<Option<&'j str>, FieldError> {
    match obj.get(field) {
        None | Some(BorrowedJson::Null) => Ok(None),
        Some(BorrowedJson::String(s)) => Ok(Some(s.as_ref())),
        Some(other) => Err(FieldError::new(field, format!("must be a string, not {}", other.type_name()))),
    }
}

fn limit_chars(field: &str, value: String, max: usize) -> Result<String, FieldError> {
    if value.chars().count() > max {
        return Err(FieldError::new(field, format!("must be at most {max} characters")));
    }
    Ok(value)
}

fn opt_url(obj: &BorrowedJson<'_>, field: &str) -> Result<Option<Url>, FieldError> {
    let Some(raw) = opt_str(obj, field)? else {
        return Ok(None);
    };
    let raw = raw.trim();
    if raw.is_empty() {
        return Ok(None);
    }
    if raw.chars().count() > MAX_URL_CHARS {
        return Err(FieldError::new(field, format!("must be at most {MAX_URL_CHARS} characters")));
    }
    let url = Url::parse(raw).map_err(|e| FieldError::new(field, format!("is not a valid URL ({e})")))?;
    if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
        return Err(FieldError::new(field, "must be an absolute http or https URL"));
    }
    Ok(Some(url))
}

/// Parses a time: RFC 3339 with an offset, or a local date and time (taken in the site's
/// time zone), or a bare date (midnight local time). Kept to microseconds, as both
/// databases store them.
pub fn parse_time(raw: &str, tz: Tz) -> Option<DateTime<Utc>> {
    let raw = raw.trim();
    let utc = if let Ok(t) = DateTime::parse_from_rfc3339(raw) {
        t.with_timezone(&Utc)
    } else {
        let naive = ["%Y-%m-%dT%H:%M:%S%.f", "%Y-%m-%d %H:%M:%S%.f", "%Y-%m-%dT%H:%M", "%Y-%m-%d %H:%M"]
            .iter()
            .find_map(|f| NaiveDateTime::parse_from_str(raw, f).ok())
            .or_else(|| NaiveDate::parse_from_str(raw, "%Y-%m-%d").ok().and_then(|d| d.and_hms_opt(0, 0, 0)))?;
        tz.from_local_datetime(&naive).earliest()?.with_timezone(&Utc)
    };
    DateTime::from_timestamp_micros(utc.timestamp_micros())
}

fn opt_time(obj: &BorrowedJson<'_>, field: &str, tz: Tz) -> Result<Option<DateTime<Utc>>, FieldError> {
    let Some(raw) = opt_str(obj, field)? else {
        return Ok(None);
    };
    parse_time(raw, tz).map(Some).ok_or_else(|| {
        FieldError::new(field, format!("{raw:?} is not a date; use RFC 3339, e.g. 2026-11-25T08:00:00+07:00"))
    })
}

fn source_id(obj: &BorrowedJson<'_>) -> Result<String, FieldError> {
    let id = match obj.get("id") {
        None | Some(BorrowedJson::Null) => return Err(FieldError::new("id", "is required")),
        Some(BorrowedJson::String(s)) => clean_line(s),
        Some(BorrowedJson::Number(n)) if n.is_u64() || n.is_i64() => n.to_string(),
        Some(other) => {
            return Err(FieldError::new("id", format!("must be a string, not {}", other.type_name())));
        }
    };
    if id.is_empty() {
        return Err(FieldError::new("id", "must not be empty"));
    }
    limit_chars("id", id, MAX_ID_CHARS)
}

fn category(obj: &BorrowedJson<'_>) -> Result<Option<CategoryPath>, FieldError> {
    let names: Vec<&str> = match obj.get("category") {
        None | Some(BorrowedJson::Null) => return Ok(None),
        Some(BorrowedJson::String(s)) => vec![s.as_ref()],
        Some(BorrowedJson::Array(items)) => items
            .iter()
            .map(|v| match v {
                BorrowedJson::String(s) => Ok(s.as_ref()),
                other => Err(FieldError::new("category", format!("names must be strings, not {}", other.type_name()))),
            })
            .collect::<Result<_, _>>()?,
        Some(other) => {
            return Err(FieldError::new(
                "category",
                format!("must be an array of names like [\"Tin Tức\", \"Kinh tế\"], not {}", other.type_name()),
            ));
        }
    };
    CategoryPath::parse(names).map(Some).map_err(|e| FieldError::new("category", e))
}

fn author(obj: &BorrowedJson<'_>) -> Result<Option<CategoryName>, FieldError> {
    let Some(raw) = opt_str(obj, "author")? else {
        return Ok(None);
    };
    if clean_line(raw).is_empty() {
        return Ok(None);
    }
    CategoryName::parse(raw).map(Some).map_err(|e| FieldError::new("author", e.replace("category name", "author name")))
}

fn tags(obj: &BorrowedJson<'_>) -> Result<Vec<String>, FieldError> {
    let items = match obj.get("tags") {
        None | Some(BorrowedJson::Null) => return Ok(Vec::new()),
        Some(BorrowedJson::Array(items)) => items,
        Some(other) => {
            return Err(FieldError::new("tags", format!("must be an array of strings, not {}", other.type_name())));
        }
    };
    let mut tags: Vec<String> = Vec::with_capacity(items.len());
    for item in items {
        let BorrowedJson::String(s) = item else {
            return Err(FieldError::new("tags", format!("tags must be strings, not {}", item.type_name())));
        };
        let tag = limit_chars("tags", clean_line(s), MAX_TAG_CHARS)?;
        if !tag.is_empty() && !tags.contains(&tag) {
            tags.push(tag);
        }
    }
    if tags.len() > MAX_TAGS {
        return Err(FieldError::new("tags", format!("at most {MAX_TAGS} tags")));
    }
    Ok(tags)
}

/// `s` without leading and trailing white space, copied only when there is some.
fn trimmed(s: String) -> String {
    match s.trim() {
        t if t.len() == s.len() => s,
        t => t.to_owned(),
    }
}

fn content_html(obj: &BorrowedJson<'_>) -> Result<String, FieldError> {
    let html = opt_str(obj, "content_html")?;
    let text = opt_str(obj, "content_text")?;
    let content = match (html, text) {
        (Some(_), Some(_)) => {
            return Err(FieldError::new("content_text", "give content_html or content_text, not both"));
        }
        (Some(html), None) => trimmed(clean_text(html)),
        (None, Some(text)) => paragraphs_from_text(&clean_text(text)),
        (None, None) => String::new(),
    };
    if content.len() > MAX_CONTENT_BYTES {
        let field = if html.is_some() { "content_html" } else { "content_text" };
        return Err(FieldError::new(field, "must be at most 2 MB"));
    }
    Ok(content)
}

impl ArticleInput {
    /// Parses one article object. `tz` is the site's time zone, used for dates written
    /// without an offset.
    pub fn from_json(value: &Value, tz: Tz) -> Result<ArticleInput, FieldError> {
        ArticleInput::from_parsed(&BorrowedJson::from(value), tz)
    }

    /// Like [`ArticleInput::from_json`], for an article parsed into a [`BorrowedJson`] (the
    /// ingest API's way, which does not copy the strings of the request body first).
    pub fn from_parsed(value: &BorrowedJson<'_>, tz: Tz) -> Result<ArticleInput, FieldError> {
        let BorrowedJson::Object(_) = value else {
            return Err(FieldError::general(format!("an article must be a JSON object, not {}", value.type_name())));
        };
        let obj = value;
        if let Some(unknown) = obj.keys().into_iter().find(|k| !KNOWN_FIELDS.contains(k)) {
            return Err(FieldError::new(
                unknown,
                format!("is not an article field (known: {})", KNOWN_FIELDS.join(", ")),
            ));
        }
        let source_id = source_id(obj)?;
        let title = clean_line(opt_str(obj, "title")?.ok_or_else(|| FieldError::new("title", "is required"))?);
        if title.is_empty() {
            return Err(FieldError::new("title", "must not be empty"));
        }
        let title = limit_chars("title", title, MAX_TITLE_CHARS)?;
        let summary = opt_str(obj, "summary")?.map(|s| trimmed(clean_text(s))).filter(|s| !s.is_empty());
        let summary = summary.map(|s| limit_chars("summary", s, MAX_SUMMARY_CHARS)).transpose()?;
        Ok(ArticleInput {
            url: opt_url(obj, "url")?,
            category: category(obj)?,
            author: author(obj)?,
            summary,
            content_html: content_html(obj)?,
            image: opt_url(obj, "image")?,
            published_at: opt_time(obj, "published_at", tz)?,
            updated_at: opt_time(obj, "updated_at", tz)?,
            tags: tags(obj)?,
            source_id,
            title,
        })
    }

    /// A fingerprint of what the source sent. Posting the same article twice gives the
    /// same hash, so nothing changes; `updated_at` is left out because some sources bump
    /// it on every export.
    pub fn content_hash(&self) -> String {
        let mut h = Sha256::new();
        let mut field = |name: &str, value: &str| {
            h.update(name.as_bytes());
            h.update([0]);
            h.update((value.len() as u64).to_le_bytes());
            h.update(value.as_bytes());
        };
        field("title", &self.title);
        field("url", self.url.as_ref().map_or("", Url::as_str));
        let category: Vec<&str> = self.category.iter().flat_map(|c| c.names()).collect();
        field("category", &category.join("\u{1F}"));
        field("author", self.author.as_ref().map_or("", |a| a.name.as_str()));
        field("summary", self.summary.as_deref().unwrap_or(""));
        field("content", &self.content_html);
        field("image", self.image.as_ref().map_or("", Url::as_str));
        field("published_at", &self.published_at.map(|t| t.to_rfc3339()).unwrap_or_default());
        field("tags", &self.tags.join("\u{1F}"));
        hex::encode(h.finalize())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const TZ: Tz = chrono_tz::Asia::Ho_Chi_Minh;

    fn err(v: Value) -> FieldError {
        ArticleInput::from_json(&v, TZ).unwrap_err()
    }

    #[test]
    fn a_full_article_parses() {
        let a = ArticleInput::from_json(
            &json!({
                "id": "hiephoa-2013-0412",
                "title": "  Hiệp Hòa sau 2 năm\n tăng cường ",
                "url": "https://hiephoa.example/tin-tuc/kinh-te/hiep-hoa",
                "category": ["Tin Tức", "Kinh tế"],
                "author": "Phương Nhung",
                "summary": "Tóm tắt",
                "content_text": "Đoạn một.\n\nĐoạn hai.",
                "image": "https://hiephoa.example/anh.jpg",
                "published_at": "2026-11-25T08:00:00+07:00",
                "tags": ["đảng bộ", "đảng bộ", " "]
            }),
            TZ,
        )
        .unwrap();
        assert_eq!(a.title, "Hiệp Hòa sau 2 năm tăng cường");
        assert_eq!(a.category.unwrap().full_slug_path(), "tin-tuc/kinh-te");
        assert_eq!(a.author.unwrap().slug.as_str(), "phuong-nhung");
        assert_eq!(a.content_html, "<p>Đoạn một.</p><p>Đoạn hai.</p>");
        assert_eq!(a.published_at.unwrap().to_rfc3339(), "2026-11-25T01:00:00+00:00");
        assert_eq!(a.tags, vec!["đảng bộ"]);
    }

    #[test]
    fn bad_fields_are_named() {
        let cases = [
            (json!({"title": "x"}), "id"),
            (json!({"id": "a"}), "title"),
            (json!({"id": "a", "title": "   "}), "title"),
            (json!({"id": "a", "title": "x".repeat(1001)}), "title"),
            (json!({"id": true, "title": "x"}), "id"),
            (json!({"id": "a", "title": 5}), "title"),
            (json!({"id": "a", "title": "x", "url": "notaurl"}), "url"),
            (json!({"id": "a", "title": "x", "url": "javascript:alert(1)"}), "url"),
            (json!({"id": "a", "title": "x", "image": "ftp://x/y"}), "image"),
            (json!({"id": "a", "title": "x", "published_at": "hôm qua"}), "published_at"),
            (json!({"id": "a", "title": "x", "published_at": "2026-13-45T00:00:00Z"}), "published_at"),
            (json!({"id": "a", "title": "x", "category": ["Tin Tức", ""]}), "category"),
            (json!({"id": "a", "title": "x", "category": []}), "category"),
            (json!({"id": "a", "title": "x", "category": 3}), "category"),
            (json!({"id": "a", "title": "x", "tags": "a,b"}), "tags"),
            (json!({"id": "a", "title": "x", "tags": [1]}), "tags"),
            (json!({"id": "a", "title": "x", "content_html": "<p>a</p>", "content_text": "a"}), "content_text"),
            (json!({"id": "a", "title": "x", "categroy": ["Tin Tức"]}), "categroy"),
        ];
        for (input, field) in cases {
            let e = err(input.clone());
            assert_eq!(e.field.as_deref(), Some(field), "{input} gave {e:?}");
        }
        assert_eq!(err(json!([1])).field, None);
    }

    #[test]
    fn times_without_offset_are_site_local() {
        let t = parse_time("2026-11-25 08:00", TZ).unwrap();
        assert_eq!(t.to_rfc3339(), "2026-11-25T01:00:00+00:00");
        let d = parse_time("2026-11-25", TZ).unwrap();
        assert_eq!(d.to_rfc3339(), "2026-11-24T17:00:00+00:00");
        let z = parse_time("2026-11-25T01:00:00.1234567Z", TZ).unwrap();
        assert_eq!(z.timestamp_subsec_nanos(), 123_456_000);
    }

    #[test]
    fn hash_ignores_updated_at_but_not_content() {
        let base = json!({"id": "a", "title": "Tiêu đề", "content_html": "<p>a</p>"});
        let a = ArticleInput::from_json(&base, TZ).unwrap();
        let mut with_updated = base.clone();
        with_updated["updated_at"] = json!("2026-11-25T08:00:00+07:00");
        let b = ArticleInput::from_json(&with_updated, TZ).unwrap();
        assert_eq!(a.content_hash(), b.content_hash());
        let mut changed = base.clone();
        changed["content_html"] = json!("<p>b</p>");
        let c = ArticleInput::from_json(&changed, TZ).unwrap();
        assert_ne!(a.content_hash(), c.content_hash());
        // Decomposed input hashes like composed input.
        let d = ArticleInput::from_json(
            &json!({"id": "a", "title": "Tie\u{302}u đe\u{302}\u{300}", "content_html": "<p>a</p>"}),
            TZ,
        )
        .unwrap();
        assert_eq!(a.content_hash(), d.content_hash());
    }
}
