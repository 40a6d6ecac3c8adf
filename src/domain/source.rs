//! Background sources as `bantin.toml` names them (`[[sources]]`): an inbox folder or an
//! upstream feed, each parsed once at start so a bad entry stops start-up with its place.

use std::path::PathBuf;
use std::time::Duration;

use url::Url;

use super::category::{CategoryPath, Slug};

/// Longest source name: it prefixes the ids of the articles a feed brings in.
pub const MAX_NAME_CHARS: usize = 60;
/// Shortest interval between two polls of one source.
pub const MIN_INTERVAL: Duration = Duration::from_secs(1);
/// Longest interval (and the cap on a feed's `ttl`, `Retry-After` and backoff).
pub const MAX_INTERVAL: Duration = Duration::from_secs(24 * 3600);
pub const DEFAULT_FEED_INTERVAL: Duration = Duration::from_secs(15 * 60);
pub const DEFAULT_INBOX_INTERVAL: Duration = Duration::from_secs(5);

/// A source's name: lowercase letters, digits and hyphens, unique among the sources. It
/// keys the stored state and appears in URLs (`/admin/sources/{name}/pause`).
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
#[serde(transparent)]
pub struct SourceName(String);

impl SourceName {
    pub fn parse(raw: &str) -> Result<SourceName, String> {
        let name = raw.trim();
        let valid = !name.is_empty()
            && name.len() <= MAX_NAME_CHARS
            && name.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
            && !name.starts_with('-');
        if valid {
            Ok(SourceName(name.to_owned()))
        } else {
            Err(format!(
                "{raw:?} is not a source name: use 1 to {MAX_NAME_CHARS} lowercase letters, digits and hyphens"
            ))
        }
    }

    /// A name made from a feed URL or an inbox path, e.g. `example-vn-rss-kinh-te-rss`.
    fn derived(prefix: &str, from: &str) -> SourceName {
        let slug = Slug::from_name(from).map_or_else(|| "source".to_owned(), |s| s.to_string());
        let mut name = format!("{prefix}{slug}");
        if name.len() > MAX_NAME_CHARS {
            name.truncate(MAX_NAME_CHARS);
            while name.ends_with('-') {
                name.pop();
            }
        }
        SourceName(name)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for SourceName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// Where a source's articles come from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SourceLocation {
    /// A folder watched for `.json`, `.jsonl` and `.md` files.
    Inbox(PathBuf),
    /// An RSS, Atom or JSON Feed document over http(s).
    Feed(Url),
}

impl SourceLocation {
    pub fn kind(&self) -> &'static str {
        match self {
            SourceLocation::Inbox(_) => "inbox",
            SourceLocation::Feed(_) => "feed",
        }
    }

    /// The folder or URL as shown to admins and logs, without any password in the URL.
    pub fn display(&self) -> String {
        match self {
            SourceLocation::Inbox(path) => path.display().to_string(),
            SourceLocation::Feed(url) if url.password().is_some() => {
                let mut shown = url.clone();
                let _ = shown.set_password(Some("***"));
                shown.to_string()
            }
            SourceLocation::Feed(url) => url.to_string(),
        }
    }
}

/// One configured source.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SourceSpec {
    pub name: SourceName,
    pub location: SourceLocation,
    /// The category every item of a feed goes to; with `item_categories`, only for items
    /// that name none.
    pub category: Option<CategoryPath>,
    /// Take each feed item's own category (`map = "item-categories"`).
    pub item_categories: bool,
    /// Time between polls (a feed's `ttl` may lengthen it).
    pub interval: Duration,
}

const KEYS: [&str; 7] = ["kind", "name", "path", "url", "category", "map", "interval"];

/// A `[[sources]]` entry that is wrong: the key and why.
#[derive(Debug, PartialEq, Eq)]
pub struct SourceError {
    pub key: String,
    pub reason: String,
}

fn source_err(key: &'static str, reason: impl Into<String>) -> SourceError {
    SourceError { key: key.to_owned(), reason: reason.into() }
}

fn string<'a>(table: &'a toml::Table, key: &'static str) -> Result<Option<&'a str>, SourceError> {
    match table.get(key) {
        None => Ok(None),
        Some(toml::Value::String(s)) => Ok(Some(s.as_str())),
        Some(other) => Err(source_err(key, format!("must be a string, not {}", other.type_str()))),
    }
}

impl SourceSpec {
    /// Parses one `[[sources]]` table.
    pub fn from_toml(table: &toml::Table) -> Result<SourceSpec, SourceError> {
        if let Some(key) = table.keys().find(|k| !KEYS.contains(&k.as_str())) {
            return Err(SourceError { key: key.clone(), reason: format!("unknown key (known: {})", KEYS.join(", ")) });
        }
        let kind = string(table, "kind")?.ok_or_else(|| source_err("kind", "is required: \"inbox\" or \"feed\""))?;
        let location = match kind {
            "inbox" => {
                if table.contains_key("url") {
                    return Err(source_err("url", "an inbox has a path, not a url"));
                }
                let path = string(table, "path")?.map(str::trim).filter(|p| !p.is_empty());
                SourceLocation::Inbox(PathBuf::from(
                    path.ok_or_else(|| source_err("path", "is required for an inbox"))?,
                ))
            }
            "feed" => {
                if table.contains_key("path") {
                    return Err(source_err("path", "a feed has a url, not a path"));
                }
                let raw = string(table, "url")?.ok_or_else(|| source_err("url", "is required for a feed"))?;
                SourceLocation::Feed(parse_feed_url(raw).map_err(|r| source_err("url", r))?)
            }
            other => return Err(source_err("kind", format!("{other:?} is not a kind of source; use inbox or feed"))),
        };
        let name = match string(table, "name")? {
            Some(raw) => SourceName::parse(raw).map_err(|r| source_err("name", r))?,
            None => match &location {
                SourceLocation::Inbox(path) => SourceName::derived("inbox-", &path.display().to_string()),
                SourceLocation::Feed(url) => {
                    let host_and_path = format!("{}{}", url.host_str().unwrap_or_default(), url.path());
                    SourceName::derived("", &host_and_path)
                }
            },
        };
        let category = match table.get("category") {
            None => None,
            Some(toml::Value::Array(items)) => {
                let names = items
                    .iter()
                    .map(|v| v.as_str().ok_or_else(|| source_err("category", "must hold names (strings)")))
                    .collect::<Result<Vec<_>, _>>()?;
                Some(CategoryPath::parse(names).map_err(|r| source_err("category", r))?)
            }
            Some(toml::Value::String(s)) => {
                Some(CategoryPath::parse([s.as_str()]).map_err(|r| source_err("category", r))?)
            }
            Some(other) => {
                return Err(source_err(
                    "category",
                    format!("must be a path of names like [\"Tin Tức\", \"Kinh tế\"], not {}", other.type_str()),
                ));
            }
        };
        let item_categories = match string(table, "map")? {
            None => false,
            Some("item-categories") => true,
            Some(other) => return Err(source_err("map", format!("{other:?} is not known; use \"item-categories\""))),
        };
        if item_categories && matches!(location, SourceLocation::Inbox(_)) {
            return Err(source_err("map", "applies to feeds; inbox files name their own category"));
        }
        if category.is_some() && matches!(location, SourceLocation::Inbox(_)) {
            return Err(source_err("category", "applies to feeds; inbox files name their own category"));
        }
        let interval = match string(table, "interval")? {
            Some(raw) => parse_interval(raw).map_err(|r| source_err("interval", r))?,
            None if matches!(location, SourceLocation::Inbox(_)) => DEFAULT_INBOX_INTERVAL,
            None => DEFAULT_FEED_INTERVAL,
        };
        Ok(SourceSpec { name, location, category, item_categories, interval })
    }
}

/// An upstream feed's URL: http or https with a host, nothing else.
pub fn parse_feed_url(raw: &str) -> Result<Url, String> {
    let url = Url::parse(raw.trim()).map_err(|e| format!("{raw:?} is not a URL ({e})"))?;
    if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
        return Err(format!("{raw:?} must be an http or https URL"));
    }
    Ok(url)
}

/// "90s", "5m", "1h30m", "2h": whole seconds, minutes and hours.
pub fn parse_interval(raw: &str) -> Result<Duration, String> {
    let bad = || format!("{raw:?} is not an interval like \"30s\", \"5m\" or \"1h30m\"");
    let text = raw.trim();
    if text.is_empty() {
        return Err(bad());
    }
    let mut total = 0u64;
    let mut digits = String::new();
    for c in text.chars() {
        if c.is_ascii_digit() {
            digits.push(c);
            continue;
        }
        let unit = match c {
            's' => 1,
            'm' => 60,
            'h' => 3600,
            _ => return Err(bad()),
        };
        let n: u64 = digits.parse().map_err(|_| bad())?;
        total = total.saturating_add(n.saturating_mul(unit));
        digits.clear();
    }
    if !digits.is_empty() {
        return Err(bad());
    }
    let interval = Duration::from_secs(total);
    if interval < MIN_INTERVAL || interval > MAX_INTERVAL {
        return Err(format!("{raw:?} must be from 1s to 24h"));
    }
    Ok(interval)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(text: &str) -> Result<SourceSpec, SourceError> {
        SourceSpec::from_toml(&text.parse::<toml::Table>().unwrap())
    }

    #[test]
    fn the_issue_example_parses() {
        let feed = spec(
            "kind = \"feed\"\nurl = \"https://example.vn/rss/kinh-te.rss\"\ncategory = [\"Tin Tức\", \"Kinh tế\"]\ninterval = \"5m\"",
        )
        .unwrap();
        assert_eq!(feed.name.as_str(), "example-vn-rss-kinh-te-rss");
        assert_eq!(feed.interval, Duration::from_secs(300));
        assert_eq!(feed.category.unwrap().full_slug_path(), "tin-tuc/kinh-te");
        let inbox = spec("kind = \"inbox\"\npath = \"data/inbox\"").unwrap();
        assert_eq!(inbox.name.as_str(), "inbox-data-inbox");
        assert_eq!(inbox.location, SourceLocation::Inbox(PathBuf::from("data/inbox")));
        let mapped =
            spec("kind = \"feed\"\nname = \"vnx\"\nurl = \"http://x.vn/f\"\nmap = \"item-categories\"").unwrap();
        assert!(mapped.item_categories);
        let private = spec("kind = \"feed\"\nname = \"cms\"\nurl = \"https://bantin:s3cret@cms.example/rss\"").unwrap();
        assert_eq!(private.location.display(), "https://bantin:***@cms.example/rss");
    }

    #[test]
    fn bad_entries_name_the_key() {
        let cases = [
            ("kind = \"ftp\"", "kind"),
            ("url = \"https://x.vn\"", "kind"),
            ("kind = \"feed\"\nurl = \"ftp://x.vn/a\"", "url"),
            ("kind = \"feed\"\nurl = \"file:///etc/passwd\"", "url"),
            ("kind = \"feed\"", "url"),
            ("kind = \"inbox\"", "path"),
            ("kind = \"feed\"\nurl = \"https://x.vn\"\ninterval = \"soon\"", "interval"),
            ("kind = \"feed\"\nurl = \"https://x.vn\"\ninterval = \"0s\"", "interval"),
            ("kind = \"feed\"\nurl = \"https://x.vn\"\nname = \"Tin Tức\"", "name"),
            ("kind = \"feed\"\nurl = \"https://x.vn\"\nmap = \"tags\"", "map"),
            ("kind = \"feed\"\nurl = \"https://x.vn\"\ncategory = 3", "category"),
            ("kind = \"feed\"\nurl = \"https://x.vn\"\ncolour = \"red\"", "colour"),
        ];
        for (text, key) in cases {
            assert_eq!(spec(text).unwrap_err().key, key, "{text}");
        }
    }

    #[test]
    fn intervals() {
        assert_eq!(parse_interval("90s"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_interval("1h30m"), Ok(Duration::from_secs(5400)));
        assert!(parse_interval("25h").is_err());
        assert!(parse_interval("5").is_err());
        assert!(parse_interval("m").is_err());
    }
}
