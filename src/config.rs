//! Settings from `bantin.toml` and `BANTIN_*` environment variables (the environment wins),
//! validated once at start. Each bad setting is reported in one line naming it.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use chrono_tz::Tz;
use url::Url;

use crate::domain::email::EmailAddress;
use crate::domain::source::SourceSpec;
use crate::mail::DkimSigner;

pub const DEFAULT_CONFIG_FILE: &str = "bantin.toml";

/// Which database backend, picked by the URL scheme.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DatabaseUrl {
    Sqlite(String),
    Postgres(String),
}

impl DatabaseUrl {
    pub fn parse(s: &str) -> Result<DatabaseUrl, String> {
        if s.starts_with("sqlite:") {
            Ok(DatabaseUrl::Sqlite(s.to_owned()))
        } else if s.starts_with("postgres://") || s.starts_with("postgresql://") {
            Url::parse(s).map_err(|e| format!("is not a valid URL ({e})"))?;
            Ok(DatabaseUrl::Postgres(s.to_owned()))
        } else {
            Err("must start with sqlite:// (a file) or postgres:// (a server)".into())
        }
    }

    pub fn as_str(&self) -> &str {
        match self {
            DatabaseUrl::Sqlite(s) | DatabaseUrl::Postgres(s) => s,
        }
    }

    /// The URL without any password, for logs.
    pub fn redacted(&self) -> String {
        match Url::parse(self.as_str()) {
            Ok(mut url) if url.password().is_some() => {
                let _ = url.set_password(Some("***"));
                url.to_string()
            }
            _ => self.as_str().to_owned(),
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Language {
    Vi,
    En,
}

impl Language {
    pub fn parse(s: &str) -> Option<Language> {
        match s.trim().to_ascii_lowercase().as_str() {
            "vi" => Some(Language::Vi),
            "en" => Some(Language::En),
            _ => None,
        }
    }

    pub fn code(self) -> &'static str {
        match self {
            Language::Vi => "vi",
            Language::En => "en",
        }
    }
}

#[derive(Clone, Debug)]
pub struct Config {
    pub database_url: DatabaseUrl,
    pub listen: SocketAddr,
    /// Public base URL without a trailing slash, e.g. `https://tin.hiephoa.example`.
    pub base_url: String,
    pub smtp_url: Option<Url>,
    pub language: Language,
    pub timezone: Tz,
    /// Folder for the SQLite file's default location, the outbox and other local state.
    pub data_dir: PathBuf,
    /// The news site's name, used in feed titles ("Tin Hiệp Hòa — Kinh tế").
    pub site_name: String,
    /// The news site's home page, the feeds' rel="alternate" link.
    pub site_url: String,
    /// Items in each feed document.
    pub feed_items: usize,
    /// Cache-Control max-age of feed responses, in seconds; also the RSS ttl.
    pub feed_max_age: u32,
    /// WebSub hubs every rebuilt feed is announced to.
    pub websub_hubs: Vec<String>,
    /// Folder whose files replace the embedded templates of the same name.
    pub templates_dir: Option<PathBuf>,
    /// A missed digest run older than this (minutes) is skipped, not sent late.
    pub digest_grace_minutes: u32,
    /// Articles listed in one digest; the rest are an "and N more" link.
    pub digest_items: usize,
    /// Digests sent at once (and SMTP connections kept open).
    pub smtp_connections: u32,
    /// Messages per second at most; 0 = no limit.
    pub smtp_rate: u32,
    /// Tries per delivery before it fails for good (4xx replies and connection errors).
    pub delivery_attempts: u32,
    /// How long a claimed delivery stays with its sender unless renewed; after a crash,
    /// it is sent again once this has passed. A live sender renews it at half this length.
    pub delivery_lease_seconds: u32,
    /// Wait before the first retry of a delivery (4xx reply, connection error), in
    /// seconds; doubled for each further attempt, up to an hour.
    pub delivery_retry_seconds: u32,
    /// Mailbox named in List-Unsubscribe next to the one-click link, as
    /// `<mailto:…?subject=unsubscribe-{token}>`.
    pub list_unsubscribe_mailto: Option<EmailAddress>,
    /// Signs every message when `dkim_key_file`, `dkim_selector` and `dkim_domain` are set.
    pub dkim: Option<Arc<DkimSigner>>,
    /// Background sources (`[[sources]]` in the file): inbox folders and upstream feeds.
    pub sources: Vec<SourceSpec>,
    /// Let upstream feeds be fetched from private and loopback addresses (an intranet
    /// CMS); link-local and cloud metadata addresses stay refused.
    pub sources_allow_private: bool,
    /// Longest time one feed request may take, in seconds.
    pub sources_timeout_seconds: u32,
    /// Largest feed body read (after decompression), in bytes.
    pub sources_max_bytes: u32,
    /// Consecutive failures after which a source is paused until an admin resumes it.
    pub sources_max_failures: u32,
}

/// A setting that stops start-up: its name and why.
#[derive(Debug, thiserror::Error)]
#[error("invalid setting {setting}: {reason}")]
pub struct ConfigError {
    pub setting: String,
    pub reason: String,
}

/// One setting: its key in the file and its environment variable.
struct Setting {
    key: &'static str,
    env: &'static str,
}

const SETTINGS: [Setting; 28] = [
    Setting { key: "database_url", env: "BANTIN_DATABASE_URL" },
    Setting { key: "listen", env: "BANTIN_LISTEN" },
    Setting { key: "base_url", env: "BANTIN_BASE_URL" },
    Setting { key: "smtp_url", env: "BANTIN_SMTP_URL" },
    Setting { key: "language", env: "BANTIN_LANGUAGE" },
    Setting { key: "timezone", env: "BANTIN_TIMEZONE" },
    Setting { key: "data_dir", env: "BANTIN_DATA_DIR" },
    Setting { key: "site_name", env: "BANTIN_SITE_NAME" },
    Setting { key: "site_url", env: "BANTIN_SITE_URL" },
    Setting { key: "feed_items", env: "BANTIN_FEED_ITEMS" },
    Setting { key: "feed_max_age", env: "BANTIN_FEED_MAX_AGE" },
    Setting { key: "websub_hubs", env: "BANTIN_WEBSUB_HUBS" },
    Setting { key: "templates_dir", env: "BANTIN_TEMPLATES_DIR" },
    Setting { key: "digest_grace_minutes", env: "BANTIN_DIGEST_GRACE_MINUTES" },
    Setting { key: "digest_items", env: "BANTIN_DIGEST_ITEMS" },
    Setting { key: "smtp_connections", env: "BANTIN_SMTP_CONNECTIONS" },
    Setting { key: "smtp_rate", env: "BANTIN_SMTP_RATE" },
    Setting { key: "delivery_attempts", env: "BANTIN_DELIVERY_ATTEMPTS" },
    Setting { key: "delivery_lease_seconds", env: "BANTIN_DELIVERY_LEASE_SECONDS" },
    Setting { key: "delivery_retry_seconds", env: "BANTIN_DELIVERY_RETRY_SECONDS" },
    Setting { key: "list_unsubscribe_mailto", env: "BANTIN_LIST_UNSUBSCRIBE_MAILTO" },
    Setting { key: "dkim_key_file", env: "BANTIN_DKIM_KEY_FILE" },
    Setting { key: "dkim_selector", env: "BANTIN_DKIM_SELECTOR" },
    Setting { key: "dkim_domain", env: "BANTIN_DKIM_DOMAIN" },
    Setting { key: "sources_allow_private", env: "BANTIN_SOURCES_ALLOW_PRIVATE" },
    Setting { key: "sources_timeout", env: "BANTIN_SOURCES_TIMEOUT" },
    Setting { key: "sources_max_bytes", env: "BANTIN_SOURCES_MAX_BYTES" },
    Setting { key: "sources_max_failures", env: "BANTIN_SOURCES_MAX_FAILURES" },
];

/// The file's `[[sources]]` array, one line per mistake naming the entry and key.
fn parse_sources(value: &toml::Value, file_name: &str) -> Result<Vec<SourceSpec>, ConfigError> {
    let toml::Value::Array(entries) = value else {
        return Err(err(&format!("sources in {file_name}"), "must be [[sources]] tables"));
    };
    let mut sources: Vec<SourceSpec> = Vec::with_capacity(entries.len());
    for (i, entry) in entries.iter().enumerate() {
        let place = |key: &str| format!("sources[{}].{key} in {file_name}", i + 1);
        let table =
            entry.as_table().ok_or_else(|| err(&format!("sources[{}] in {file_name}", i + 1), "must be a table"))?;
        let spec = SourceSpec::from_toml(table).map_err(|e| err(&place(&e.key), e.reason))?;
        if sources.iter().any(|s| s.name == spec.name) {
            return Err(err(&place("name"), format!("{} names two sources; give each a distinct name", spec.name)));
        }
        sources.push(spec);
    }
    Ok(sources)
}

fn parse_bool(raw: &RawSettings, key: &str) -> Result<bool, ConfigError> {
    match raw.get(key) {
        None => Ok(false),
        Some((origin, v)) => match v.trim().to_ascii_lowercase().as_str() {
            "true" | "1" | "yes" => Ok(true),
            "false" | "0" | "no" | "" => Ok(false),
            _ => Err(err(origin, format!("{v:?} is not true or false"))),
        },
    }
}

/// Raw values with where each came from, so errors can name the place.
struct RawSettings {
    values: HashMap<&'static str, (String, String)>,
}

impl RawSettings {
    fn get(&self, key: &str) -> Option<(&str, &str)> {
        self.values.get(key).map(|(origin, v)| (origin.as_str(), v.as_str()))
    }

    /// A setting given with a value that is not blank.
    fn given(&self, key: &str) -> Option<(&str, &str)> {
        self.get(key).map(|(origin, v)| (origin, v.trim())).filter(|(_, v)| !v.is_empty())
    }
}

fn err(setting: &str, reason: impl Into<String>) -> ConfigError {
    ConfigError { setting: setting.to_owned(), reason: reason.into() }
}

fn read_file(path: &Path, required: bool) -> Result<toml::Table, ConfigError> {
    let name = path.display().to_string();
    let text = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(e) if !required && e.kind() == std::io::ErrorKind::NotFound => {
            return Ok(toml::Table::new());
        }
        Err(e) => return Err(err("--config", format!("cannot read {name}: {e}"))),
    };
    text.parse::<toml::Table>().map_err(|e| {
        let line = e.span().map(|s| text[..s.start].lines().count().max(1)).unwrap_or(1);
        err(&format!("in {name} line {line}"), e.message().trim().to_owned())
    })
}

impl Config {
    /// Loads the file (`path`, or `bantin.toml` when it exists) and applies the environment.
    pub fn load(path: Option<&Path>, env: &HashMap<String, String>) -> Result<Config, ConfigError> {
        let file_path = path.unwrap_or(Path::new(DEFAULT_CONFIG_FILE));
        let table = read_file(file_path, path.is_some())?;
        let file_name = file_path.display().to_string();
        let mut values = HashMap::new();
        let mut sources = Vec::new();
        for (key, value) in &table {
            if key == "sources" {
                sources = parse_sources(value, &file_name)?;
                continue;
            }
            let Some(setting) = SETTINGS.iter().find(|s| s.key == key) else {
                let known: Vec<&str> = SETTINGS.iter().map(|s| s.key).collect();
                return Err(err(
                    &format!("{key} in {file_name}"),
                    format!("unknown setting (known: {})", known.join(", ")),
                ));
            };
            let origin = format!("{key} in {file_name}");
            let text = toml_setting(value).map_err(|reason| err(&origin, reason))?;
            values.insert(setting.key, (origin, text));
        }
        for setting in &SETTINGS {
            if let Some(v) = env.get(setting.env) {
                values.insert(setting.key, (setting.env.to_owned(), v.clone()));
            }
        }
        let mut config = Config::from_raw(&RawSettings { values })?;
        config.sources = sources;
        Ok(config)
    }

    /// Settings with the defaults only, as on a fresh machine.
    pub fn defaults() -> Config {
        Config::from_raw(&RawSettings { values: HashMap::new() }).expect("the defaults are valid")
    }

    fn from_raw(raw: &RawSettings) -> Result<Config, ConfigError> {
        let data_dir = PathBuf::from(raw.get("data_dir").map_or("data", |(_, v)| v));
        let database_url = match raw.get("database_url") {
            Some((origin, v)) => DatabaseUrl::parse(v.trim()).map_err(|r| err(origin, r))?,
            None => DatabaseUrl::Sqlite(format!("sqlite://{}", data_dir.join("bantin.db").display())),
        };
        let listen = match raw.get("listen") {
            Some((origin, v)) => v
                .trim()
                .parse()
                .map_err(|_| err(origin, format!("{v:?} is not an address and port like 127.0.0.1:8080")))?,
            None => SocketAddr::from(([127, 0, 0, 1], 8080)),
        };
        let base_url = match raw.get("base_url") {
            Some((origin, v)) => parse_base_url(v).map_err(|r| err(origin, r))?,
            None => format!("http://{listen}"),
        };
        let smtp_url = match raw.get("smtp_url") {
            Some((_, v)) if v.trim().is_empty() => None,
            Some((origin, v)) => Some(parse_smtp_url(v).map_err(|r| err(origin, r))?),
            None => None,
        };
        let language = match raw.get("language") {
            Some((origin, v)) => {
                Language::parse(v).ok_or_else(|| err(origin, format!("{v:?} is not a language; use vi or en")))?
            }
            None => Language::Vi,
        };
        let timezone = match raw.get("timezone") {
            Some((origin, v)) => v
                .trim()
                .parse::<Tz>()
                .map_err(|_| err(origin, format!("{v:?} is not an IANA time zone like Asia/Ho_Chi_Minh")))?,
            None => chrono_tz::Asia::Ho_Chi_Minh,
        };
        let site_name = match raw.get("site_name") {
            Some((origin, v)) if v.trim().is_empty() => return Err(err(origin, "must not be empty")),
            Some((_, v)) => crate::domain::text::clean_line(v),
            None => "bantin".to_owned(),
        };
        let site_url = match raw.get("site_url") {
            Some((origin, v)) => parse_base_url(v).map_err(|r| err(origin, r))?,
            None => base_url.clone(),
        };
        let feed_items = parse_number(raw, "feed_items", 50, 1..=1000)?;
        let feed_max_age = parse_number(raw, "feed_max_age", 300, 0..=86_400)?;
        let websub_hubs = match raw.get("websub_hubs") {
            Some((origin, v)) => v
                .split(',')
                .map(str::trim)
                .filter(|h| !h.is_empty())
                .map(|h| parse_base_url(h).map_err(|r| err(origin, r)))
                .collect::<Result<_, _>>()?,
            None => Vec::new(),
        };
        let templates_dir = match raw.get("templates_dir") {
            Some((_, v)) if v.trim().is_empty() => None,
            Some((origin, v)) if !Path::new(v.trim()).is_dir() => {
                return Err(err(origin, format!("{v:?} is not a folder")));
            }
            Some((_, v)) => Some(PathBuf::from(v.trim())),
            None => None,
        };
        let digest_grace_minutes = parse_number(raw, "digest_grace_minutes", 360, 0..=10_080)?;
        let digest_items = parse_number(raw, "digest_items", 20, 1..=200)? as usize;
        let smtp_connections = parse_number(raw, "smtp_connections", 4, 1..=64)?;
        let smtp_rate = parse_number(raw, "smtp_rate", 0, 0..=100_000)?;
        let delivery_attempts = parse_number(raw, "delivery_attempts", 8, 1..=50)?;
        let delivery_lease_seconds = parse_number(raw, "delivery_lease_seconds", 300, 1..=86_400)?;
        let delivery_retry_seconds = parse_number(raw, "delivery_retry_seconds", 15, 1..=3_600)?;
        let list_unsubscribe_mailto = match raw.given("list_unsubscribe_mailto") {
            Some((origin, v)) => Some(parse_mailto_address(v).map_err(|r| err(origin, r))?),
            None => None,
        };
        let dkim = parse_dkim(raw)?;
        let sources_allow_private = parse_bool(raw, "sources_allow_private")?;
        let sources_timeout_seconds = parse_number(raw, "sources_timeout", 30, 1..=600)?;
        let sources_max_bytes = parse_number(raw, "sources_max_bytes", 10 * 1024 * 1024, 1024..=1024 * 1024 * 1024)?;
        let sources_max_failures = parse_number(raw, "sources_max_failures", 10, 1..=1000)?;
        Ok(Config {
            database_url,
            listen,
            base_url,
            smtp_url,
            language,
            timezone,
            data_dir,
            site_name,
            site_url,
            feed_items: feed_items as usize,
            feed_max_age,
            websub_hubs,
            templates_dir,
            digest_grace_minutes,
            digest_items,
            smtp_connections,
            smtp_rate,
            delivery_attempts,
            delivery_lease_seconds,
            delivery_retry_seconds,
            list_unsubscribe_mailto,
            dkim,
            sources: Vec::new(),
            sources_allow_private,
            sources_timeout_seconds,
            sources_max_bytes,
            sources_max_failures,
        })
    }
}

/// The key file, selector and domain go together: one alone is a mistake, not "off".
fn parse_dkim(raw: &RawSettings) -> Result<Option<Arc<DkimSigner>>, ConfigError> {
    let key_file = raw.given("dkim_key_file");
    let selector = raw.given("dkim_selector");
    let domain = raw.given("dkim_domain");
    let name = |key: &str| {
        let setting = SETTINGS.iter().find(|s| s.key == key).expect("a known setting");
        format!("{} ({})", setting.key, setting.env)
    };
    let Some((key_origin, key_file)) = key_file else {
        if let Some((origin, _)) = selector.or(domain) {
            return Err(err(origin, format!("signs nothing without {}", name("dkim_key_file"))));
        }
        return Ok(None);
    };
    let (Some((selector_origin, selector)), Some((domain_origin, domain))) = (selector, domain) else {
        let missing = if selector.is_none() { "dkim_selector" } else { "dkim_domain" };
        return Err(err(&name(missing), format!("is required with {key_origin}")));
    };
    let label = |c: char| c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '.';
    if !selector.chars().all(label) {
        return Err(err(selector_origin, format!("{selector:?} is not a DNS name like mail2026")));
    }
    if !domain.contains('.') || !domain.chars().all(label) {
        return Err(err(domain_origin, format!("{domain:?} is not a domain like news.example")));
    }
    let signer = DkimSigner::load(Path::new(key_file), selector, &domain.to_ascii_lowercase())
        .map_err(|reason| err(key_origin, reason))?;
    Ok(Some(Arc::new(signer)))
}

/// An address that goes into a `mailto:` URI as it is.
fn parse_mailto_address(v: &str) -> Result<EmailAddress, String> {
    let address = EmailAddress::parse(v)?;
    if address.as_str().contains(['?', '&', '#', '%', '/']) {
        return Err(format!("{v:?} must not contain ?, &, #, % or /"));
    }
    Ok(address)
}

/// A value from the file as text: strings as they are, integers in decimal, arrays of
/// strings joined with commas (as the environment variable takes them).
fn toml_setting(value: &toml::Value) -> Result<String, String> {
    match value {
        toml::Value::String(s) => Ok(s.clone()),
        toml::Value::Integer(i) => Ok(i.to_string()),
        toml::Value::Boolean(b) => Ok(b.to_string()),
        toml::Value::Array(items) => items
            .iter()
            .map(|v| v.as_str().map(str::to_owned).ok_or_else(|| format!("must hold strings, not {}", v.type_str())))
            .collect::<Result<Vec<_>, _>>()
            .map(|v| v.join(",")),
        other => Err(format!("must be a string, not {}", other.type_str())),
    }
}

fn parse_number(
    raw: &RawSettings,
    key: &str,
    default: u32,
    range: std::ops::RangeInclusive<u32>,
) -> Result<u32, ConfigError> {
    let Some((origin, v)) = raw.get(key) else { return Ok(default) };
    match v.trim().parse::<u32>() {
        Ok(n) if range.contains(&n) => Ok(n),
        _ => Err(err(origin, format!("{v:?} is not a whole number from {} to {}", range.start(), range.end()))),
    }
}

fn parse_base_url(v: &str) -> Result<String, String> {
    let url = Url::parse(v.trim()).map_err(|e| format!("{v:?} is not a URL ({e})"))?;
    if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
        return Err(format!("{v:?} must be an http or https URL"));
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err(format!("{v:?} must not have a query or fragment"));
    }
    Ok(url.as_str().trim_end_matches('/').to_owned())
}

fn parse_smtp_url(v: &str) -> Result<Url, String> {
    // The message never repeats the value: it may hold a password.
    let url = Url::parse(v.trim()).map_err(|e| format!("is not a URL ({e})"))?;
    if !matches!(url.scheme(), "smtp" | "smtps") || url.host_str().is_none() {
        return Err("must look like smtp://host:port or smtps://user:password@host".into());
    }
    Ok(url)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    #[test]
    fn defaults_match_the_design() {
        let c = Config::defaults();
        assert_eq!(c.database_url, DatabaseUrl::Sqlite("sqlite://data/bantin.db".into()));
        assert_eq!(c.listen.to_string(), "127.0.0.1:8080");
        assert_eq!(c.base_url, "http://127.0.0.1:8080");
        assert!(c.smtp_url.is_none());
        assert_eq!(c.language, Language::Vi);
        assert_eq!(c.timezone, chrono_tz::Asia::Ho_Chi_Minh);
    }

    #[test]
    fn environment_overrides_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("b.toml");
        std::fs::write(&file, "listen = \"0.0.0.0:9000\"\nlanguage = \"en\"\n").unwrap();
        let c = Config::load(Some(&file), &env(&[("BANTIN_LANGUAGE", "vi")])).unwrap();
        assert_eq!(c.listen.to_string(), "0.0.0.0:9000");
        assert_eq!(c.language, Language::Vi);
    }

    #[test]
    fn a_missing_config_file_is_an_error_only_when_named() {
        assert!(Config::load(Some(Path::new("/nonexistent/bantin.toml")), &env(&[])).is_err());
    }

    #[test]
    fn bad_settings_are_named() {
        let cases = [
            ("BANTIN_LISTEN", "localhost"),
            ("BANTIN_DATABASE_URL", "mysql://x"),
            ("BANTIN_BASE_URL", "ftp://x"),
            ("BANTIN_SMTP_URL", "http://x"),
            ("BANTIN_LANGUAGE", "fr"),
            ("BANTIN_TIMEZONE", "Mars/Olympus"),
            ("BANTIN_DELIVERY_RETRY_SECONDS", "0"),
        ];
        for (name, value) in cases {
            let e = Config::from_raw(&RawSettings {
                values: [(SETTINGS.iter().find(|s| s.env == name).unwrap().key, (name.to_owned(), value.to_owned()))]
                    .into_iter()
                    .collect(),
            })
            .unwrap_err();
            assert_eq!(e.setting, name);
            assert!(!e.to_string().contains('\n'));
        }
    }

    #[test]
    fn smtp_password_is_not_echoed() {
        let e = Config::from_raw(&RawSettings {
            values: [("smtp_url", ("BANTIN_SMTP_URL".to_owned(), "http://u:s3cret@x".to_owned()))]
                .into_iter()
                .collect(),
        })
        .unwrap_err();
        assert!(!e.to_string().contains("s3cret"));
    }

    fn raw(pairs: &[(&str, &str)]) -> RawSettings {
        let values = pairs
            .iter()
            .map(|(env, value)| {
                let setting = SETTINGS.iter().find(|s| s.env == *env).unwrap();
                (setting.key, (env.to_string(), value.to_string()))
            })
            .collect();
        RawSettings { values }
    }

    #[test]
    fn dkim_settings_go_together_and_the_key_must_load() {
        let dir = tempfile::tempdir().unwrap();
        let not_a_key = dir.path().join("dkim.pem");
        std::fs::write(&not_a_key, "-----BEGIN PRIVATE KEY-----\nc2VjcmV0LWJ5dGVz\n-----END PRIVATE KEY-----\n")
            .unwrap();
        let file = not_a_key.to_str().unwrap();
        let cases: [(&[(&str, &str)], &str); 5] = [
            (&[("BANTIN_DKIM_SELECTOR", "s1")], "BANTIN_DKIM_SELECTOR"),
            (
                &[("BANTIN_DKIM_KEY_FILE", file), ("BANTIN_DKIM_DOMAIN", "news.example")],
                "dkim_selector (BANTIN_DKIM_SELECTOR)",
            ),
            (
                &[
                    ("BANTIN_DKIM_KEY_FILE", file),
                    ("BANTIN_DKIM_SELECTOR", "s1"),
                    ("BANTIN_DKIM_DOMAIN", "news example"),
                ],
                "BANTIN_DKIM_DOMAIN",
            ),
            (
                &[
                    ("BANTIN_DKIM_KEY_FILE", file),
                    ("BANTIN_DKIM_SELECTOR", "s1"),
                    ("BANTIN_DKIM_DOMAIN", "news.example"),
                ],
                "BANTIN_DKIM_KEY_FILE",
            ),
            (
                &[
                    ("BANTIN_DKIM_KEY_FILE", "/nonexistent/k.pem"),
                    ("BANTIN_DKIM_SELECTOR", "s1"),
                    ("BANTIN_DKIM_DOMAIN", "news.example"),
                ],
                "BANTIN_DKIM_KEY_FILE",
            ),
        ];
        for (pairs, setting) in cases {
            let e = Config::from_raw(&raw(pairs)).unwrap_err();
            assert_eq!(e.setting, setting, "{e}");
            assert!(!e.to_string().contains("c2VjcmV0"), "the key file is not echoed: {e}");
        }
        assert!(Config::from_raw(&raw(&[("BANTIN_DKIM_KEY_FILE", " ")])).unwrap().dkim.is_none(), "blank is off");
    }

    #[test]
    fn the_unsubscribe_mailbox_is_a_plain_address() {
        let c = Config::from_raw(&raw(&[("BANTIN_LIST_UNSUBSCRIBE_MAILTO", "unsubscribe@news.example")])).unwrap();
        assert_eq!(c.list_unsubscribe_mailto.unwrap().as_str(), "unsubscribe@news.example");
        for bad in ["news.example", "a?b@news.example", "Hủy <huy@news.example>"] {
            let e = Config::from_raw(&raw(&[("BANTIN_LIST_UNSUBSCRIBE_MAILTO", bad)])).unwrap_err();
            assert_eq!(e.setting, "BANTIN_LIST_UNSUBSCRIBE_MAILTO", "{bad}");
        }
    }

    #[test]
    fn sources_are_read_from_the_file_and_their_mistakes_named() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("b.toml");
        std::fs::write(
            &file,
            "sources_allow_private = true\n[[sources]]\nkind = \"inbox\"\npath = \"data/inbox\"\n\n\
             [[sources]]\nkind = \"feed\"\nurl = \"https://example.vn/rss/kinh-te.rss\"\ninterval = \"5m\"\n",
        )
        .unwrap();
        let c = Config::load(Some(&file), &HashMap::new()).unwrap();
        assert_eq!(c.sources.len(), 2);
        assert!(c.sources_allow_private);
        assert_eq!(c.sources[1].name.as_str(), "example-vn-rss-kinh-te-rss");
        std::fs::write(&file, "[[sources]]\nkind = \"feed\"\nurl = \"gopher://x\"\n").unwrap();
        let e = Config::load(Some(&file), &HashMap::new()).unwrap_err();
        assert!(e.setting.starts_with("sources[1].url in "), "{e}");
        std::fs::write(
            &file,
            "[[sources]]\nkind = \"inbox\"\npath = \"a\"\n[[sources]]\nkind = \"inbox\"\npath = \"a\"\n",
        )
        .unwrap();
        let e = Config::load(Some(&file), &HashMap::new()).unwrap_err();
        assert!(e.setting.starts_with("sources[2].name in "), "{e}");
        std::fs::write(&file, "").unwrap();
        let e = Config::load(Some(&file), &env(&[("BANTIN_SOURCES_ALLOW_PRIVATE", "maybe")])).unwrap_err();
        assert_eq!(e.setting, "BANTIN_SOURCES_ALLOW_PRIVATE");
    }

    #[test]
    fn unknown_keys_and_wrong_types_in_the_file_are_named() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("b.toml");
        std::fs::write(&file, "listne = \"x\"\n").unwrap();
        let e = Config::load(Some(&file), &HashMap::new()).unwrap_err();
        assert!(e.setting.starts_with("listne"), "{e}");
        std::fs::write(&file, "listen = 8080\n").unwrap();
        let e = Config::load(Some(&file), &HashMap::new()).unwrap_err();
        assert!(e.setting.starts_with("listen"), "{e}");
        std::fs::write(&file, "listen = \"x\n").unwrap();
        let e = Config::load(Some(&file), &HashMap::new()).unwrap_err();
        assert!(e.setting.contains("line 1"), "{e}");
    }
}
