//! Lists (newsletters), subscribers and subscriptions as admins and readers describe them,
//! parsed field by field so every rejection names the field and the reason.

use chrono_tz::Tz;
use serde_json::{Map, Value};

use super::article::FieldError;
use super::category::Slug;
use super::email::EmailAddress;
use super::schedule::Schedule;
use super::text::{clean_line, clean_text};
use crate::config::Language;

pub const MAX_LIST_NAME_CHARS: usize = 200;
pub const MAX_DESCRIPTION_CHARS: usize = 2_000;
pub const MAX_SUBSCRIBER_NAME_CHARS: usize = 200;
pub const MAX_ATTRIBUTES_BYTES: usize = 8 * 1024;

macro_rules! string_enum {
    ($(#[$meta:meta])* $name:ident { $($variant:ident = $text:literal),+ $(,)? }) => {
        $(#[$meta])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize)]
        #[serde(rename_all = "lowercase")]
        pub enum $name { $($variant),+ }

        impl $name {
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            pub fn as_str(self) -> &'static str {
                match self { $($name::$variant => $text),+ }
            }

            pub fn parse(s: &str) -> Option<$name> {
                $name::ALL.iter().copied().find(|v| v.as_str() == s.trim())
            }

            pub fn expected() -> String {
                $name::ALL.iter().map(|v| v.as_str()).collect::<Vec<_>>().join(", ")
            }
        }
    };
}

string_enum!(
    /// Where a subscriber stands overall. Only `active` subscribers are mailed digests;
    /// `bounced` and `blocklisted` are never mailed again, whatever anyone submits.
    SubscriberStatus {
        Unconfirmed = "unconfirmed",
        Active = "active",
        Unsubscribed = "unsubscribed",
        Bounced = "bounced",
        Blocklisted = "blocklisted",
    }
);

string_enum!(
    /// One subscriber's standing on one list.
    SubscriptionStatus {
        Unconfirmed = "unconfirmed",
        Active = "active",
        Unsubscribed = "unsubscribed",
    }
);

impl SubscriberStatus {
    /// Statuses that nothing a reader does can lift.
    pub fn is_barred(self) -> bool {
        matches!(self, SubscriberStatus::Bounced | SubscriberStatus::Blocklisted)
    }
}

/// Defaults a new list takes from the site's settings.
#[derive(Clone, Debug)]
pub struct ListDefaults {
    pub timezone: Tz,
    pub language: Language,
    pub from_name: String,
    pub from_address: String,
}

/// A list as created or replaced.
#[derive(Clone, Debug, PartialEq)]
pub struct ListInput {
    pub slug: Slug,
    pub name: String,
    pub description: String,
    /// Category paths ("tin-tuc/kinh-te"); empty means every category.
    pub categories: Vec<String>,
    pub schedule: Schedule,
    pub timezone: Tz,
    pub language: Language,
    pub from_name: String,
    pub from_address: EmailAddress,
    pub double_opt_in: bool,
    /// Send a digest even when nothing is new.
    pub send_empty: bool,
}

const LIST_FIELDS: [&str; 11] = [
    "slug",
    "name",
    "description",
    "categories",
    "schedule",
    "timezone",
    "language",
    "from_name",
    "from_address",
    "double_opt_in",
    "send_empty",
];

fn object<'a>(value: &'a Value, what: &str) -> Result<&'a Map<String, Value>, FieldError> {
    value.as_object().ok_or_else(|| FieldError::general(format!("a {what} must be a JSON object")))
}

fn reject_unknown(map: &Map<String, Value>, known: &[&str]) -> Result<(), FieldError> {
    match map.keys().find(|k| !known.contains(&k.as_str())) {
        Some(k) => Err(FieldError::new(k, format!("unknown field (known: {})", known.join(", ")))),
        None => Ok(()),
    }
}

fn optional_str<'a>(map: &'a Map<String, Value>, field: &str) -> Result<Option<&'a str>, FieldError> {
    match map.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(_) => Err(FieldError::new(field, "must be a string")),
    }
}

/// A one-line text field: cleaned, limited in length, required or not.
fn line(map: &Map<String, Value>, field: &str, max_chars: usize) -> Result<Option<String>, FieldError> {
    let Some(raw) = optional_str(map, field)? else { return Ok(None) };
    let cleaned = clean_line(raw);
    if cleaned.chars().count() > max_chars {
        return Err(FieldError::new(field, format!("is longer than {max_chars} characters")));
    }
    Ok((!cleaned.is_empty()).then_some(cleaned))
}

pub fn parse_language(field: &str, raw: &str) -> Result<Language, FieldError> {
    Language::parse(raw).ok_or_else(|| FieldError::new(field, format!("{raw:?} is not a language: use vi or en")))
}

/// A category path as the API writes it: slugs joined by `/`.
pub fn parse_category_path(field: &str, raw: &str) -> Result<String, FieldError> {
    let path = raw.trim().trim_matches('/');
    if path.is_empty() || path.split('/').any(|s| Slug::parse(s).is_none()) {
        return Err(FieldError::new(field, format!("{raw:?} is not a category path like tin-tuc/kinh-te")));
    }
    Ok(path.to_owned())
}

pub fn parse_category_paths(field: &str, value: Option<&Value>) -> Result<Vec<String>, FieldError> {
    let items = match value {
        None | Some(Value::Null) => return Ok(Vec::new()),
        Some(Value::Array(items)) => items,
        Some(_) => return Err(FieldError::new(field, "must be an array of category paths")),
    };
    let mut paths = Vec::with_capacity(items.len());
    for item in items {
        let raw = item.as_str().ok_or_else(|| FieldError::new(field, "must be an array of category paths"))?;
        let path = parse_category_path(field, raw)?;
        if !paths.contains(&path) {
            paths.push(path);
        }
    }
    Ok(paths)
}

impl ListInput {
    pub fn from_json(value: &Value, defaults: &ListDefaults) -> Result<ListInput, FieldError> {
        let map = object(value, "list")?;
        reject_unknown(map, &LIST_FIELDS)?;
        let name = line(map, "name", MAX_LIST_NAME_CHARS)?.ok_or_else(|| FieldError::new("name", "is required"))?;
        let slug = match optional_str(map, "slug")? {
            Some(raw) => Slug::parse(raw.trim())
                .ok_or_else(|| FieldError::new("slug", "must be lowercase letters, digits and single dashes"))?,
            None => Slug::from_name(&name)
                .ok_or_else(|| FieldError::new("name", "must contain a letter or digit to make a slug from"))?,
        };
        let description = match optional_str(map, "description")? {
            Some(raw) => clean_text(raw),
            None => String::new(),
        };
        if description.chars().count() > MAX_DESCRIPTION_CHARS {
            return Err(FieldError::new("description", format!("is longer than {MAX_DESCRIPTION_CHARS} characters")));
        }
        let schedule = Schedule::parse(optional_str(map, "schedule")?.unwrap_or("daily 06:00"))
            .map_err(|e| FieldError::new("schedule", e))?;
        let timezone = match optional_str(map, "timezone")? {
            Some(raw) => raw.trim().parse::<Tz>().map_err(|_| {
                FieldError::new("timezone", format!("{raw:?} is not a time zone like Asia/Ho_Chi_Minh"))
            })?,
            None => defaults.timezone,
        };
        let language = match optional_str(map, "language")? {
            Some(raw) => parse_language("language", raw)?,
            None => defaults.language,
        };
        let from_name = line(map, "from_name", MAX_LIST_NAME_CHARS)?.unwrap_or_else(|| defaults.from_name.clone());
        let from_address = optional_str(map, "from_address")?.unwrap_or(&defaults.from_address);
        let from_address =
            EmailAddress::parse(from_address).map_err(|e| FieldError::new("from_address", format!("address {e}")))?;
        let flag = |field: &str, default: bool| match map.get(field) {
            None | Some(Value::Null) => Ok(default),
            Some(Value::Bool(b)) => Ok(*b),
            Some(_) => Err(FieldError::new(field, "must be true or false")),
        };
        let double_opt_in = flag("double_opt_in", true)?;
        let send_empty = flag("send_empty", false)?;
        Ok(ListInput {
            slug,
            name,
            description,
            categories: parse_category_paths("categories", map.get("categories"))?,
            schedule,
            timezone,
            language,
            from_name,
            from_address,
            double_opt_in,
            send_empty,
        })
    }
}

/// A subscriber as an admin adds or imports them.
#[derive(Clone, Debug, PartialEq)]
pub struct SubscriberInput {
    pub email: EmailAddress,
    pub name: String,
    pub language: Option<Language>,
    pub status: SubscriberStatus,
    pub lists: Vec<Slug>,
    pub attributes: Map<String, Value>,
}

const SUBSCRIBER_FIELDS: [&str; 6] = ["email", "name", "language", "status", "lists", "attributes"];

pub fn parse_email(field: &str, raw: &str) -> Result<EmailAddress, FieldError> {
    EmailAddress::parse(raw).map_err(|e| FieldError::new(field, format!("address {e}")))
}

pub fn parse_subscriber_name(field: &str, raw: &str) -> Result<String, FieldError> {
    let name = clean_line(raw);
    if name.chars().count() > MAX_SUBSCRIBER_NAME_CHARS {
        return Err(FieldError::new(field, format!("is longer than {MAX_SUBSCRIBER_NAME_CHARS} characters")));
    }
    Ok(name)
}

pub fn parse_subscriber_status(field: &str, raw: &str) -> Result<SubscriberStatus, FieldError> {
    SubscriberStatus::parse(raw).ok_or_else(|| {
        FieldError::new(field, format!("{raw:?} is not a status: use one of {}", SubscriberStatus::expected()))
    })
}

pub fn parse_list_slugs(field: &str, value: Option<&Value>) -> Result<Vec<Slug>, FieldError> {
    let items = match value {
        None | Some(Value::Null) => return Ok(Vec::new()),
        Some(Value::Array(items)) => items,
        Some(_) => return Err(FieldError::new(field, "must be an array of list slugs")),
    };
    let mut slugs = Vec::with_capacity(items.len());
    for item in items {
        let slug = item
            .as_str()
            .and_then(|s| Slug::parse(s.trim()))
            .ok_or_else(|| FieldError::new(field, format!("{item} is not a list slug")))?;
        if !slugs.contains(&slug) {
            slugs.push(slug);
        }
    }
    Ok(slugs)
}

pub fn parse_attributes(field: &str, value: Option<&Value>) -> Result<Map<String, Value>, FieldError> {
    match value {
        None | Some(Value::Null) => Ok(Map::new()),
        Some(Value::Object(map)) if value.is_some_and(|v| v.to_string().len() <= MAX_ATTRIBUTES_BYTES) => {
            Ok(map.clone())
        }
        Some(Value::Object(_)) => Err(FieldError::new(field, format!("is larger than {MAX_ATTRIBUTES_BYTES} bytes"))),
        Some(_) => Err(FieldError::new(field, "must be a JSON object")),
    }
}

impl SubscriberInput {
    /// `default_status` applies when the input names none.
    pub fn from_json(value: &Value, default_status: SubscriberStatus) -> Result<SubscriberInput, FieldError> {
        let map = object(value, "subscriber")?;
        reject_unknown(map, &SUBSCRIBER_FIELDS)?;
        let email =
            parse_email("email", optional_str(map, "email")?.ok_or_else(|| FieldError::new("email", "is required"))?)?;
        let name = parse_subscriber_name("name", optional_str(map, "name")?.unwrap_or_default())?;
        let language = optional_str(map, "language")?.map(|raw| parse_language("language", raw)).transpose()?;
        let status = match optional_str(map, "status")? {
            Some(raw) => parse_subscriber_status("status", raw)?,
            None => default_status,
        };
        Ok(SubscriberInput {
            email,
            name,
            language,
            status,
            lists: parse_list_slugs("lists", map.get("lists"))?,
            attributes: parse_attributes("attributes", map.get("attributes"))?,
        })
    }
}

/// An admin's partial edit of a subscriber: only the fields given change. The address
/// is the subscriber's identity and cannot be edited.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct SubscriberPatch {
    pub name: Option<String>,
    pub language: Option<Language>,
    pub status: Option<SubscriberStatus>,
    pub attributes: Option<Map<String, Value>>,
    /// The full set of lists, replacing the current one.
    pub lists: Option<Vec<Slug>>,
}

const PATCH_FIELDS: [&str; 5] = ["name", "language", "status", "lists", "attributes"];

impl SubscriberPatch {
    pub fn from_json(value: &Value) -> Result<SubscriberPatch, FieldError> {
        let map = object(value, "subscriber")?;
        if map.contains_key("email") {
            return Err(FieldError::new("email", "cannot be changed: delete the subscriber and add the new address"));
        }
        reject_unknown(map, &PATCH_FIELDS)?;
        let present = |field: &str| map.get(field).is_some_and(|v| !v.is_null());
        Ok(SubscriberPatch {
            name: optional_str(map, "name")?.map(|raw| parse_subscriber_name("name", raw)).transpose()?,
            language: optional_str(map, "language")?.map(|raw| parse_language("language", raw)).transpose()?,
            status: optional_str(map, "status")?.map(|raw| parse_subscriber_status("status", raw)).transpose()?,
            attributes: present("attributes")
                .then(|| parse_attributes("attributes", map.get("attributes")))
                .transpose()?,
            lists: present("lists").then(|| parse_list_slugs("lists", map.get("lists"))).transpose()?,
        })
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn defaults() -> ListDefaults {
        ListDefaults {
            timezone: chrono_tz::Asia::Ho_Chi_Minh,
            language: Language::Vi,
            from_name: "Tin Hiệp Hòa".into(),
            from_address: "bantin@hiephoa.example".into(),
        }
    }

    #[test]
    fn a_list_takes_the_site_defaults() {
        let list = ListInput::from_json(&json!({"name": "Bản tin sáng"}), &defaults()).unwrap();
        assert_eq!(list.slug.as_str(), "ban-tin-sang");
        assert_eq!(list.schedule.as_str(), "0 6 * * *");
        assert_eq!(list.language, Language::Vi);
        assert!(list.double_opt_in);
        assert!(list.categories.is_empty());
    }

    #[test]
    fn list_errors_name_the_field() {
        for (input, field) in [
            (json!({}), "name"),
            (json!({"name": "x", "slug": "Bad Slug"}), "slug"),
            (json!({"name": "x", "schedule": "0 6 * * 9"}), "schedule"),
            (json!({"name": "x", "timezone": "Mars/Base"}), "timezone"),
            (json!({"name": "x", "language": "fr"}), "language"),
            (json!({"name": "x", "from_address": "a@b.vn\r\nBcc: c@d.vn"}), "from_address"),
            (json!({"name": "x", "categories": ["Tin Tức"]}), "categories"),
            (json!({"name": "x", "double_opt_in": "yes"}), "double_opt_in"),
            (json!({"name": "x", "colour": "red"}), "colour"),
        ] {
            let err = ListInput::from_json(&input, &defaults()).unwrap_err();
            assert_eq!(err.field.as_deref(), Some(field), "{input}");
        }
    }

    #[test]
    fn subscribers_parse_at_the_edge() {
        let s = SubscriberInput::from_json(
            &json!({"email": " Lan@Example.VN ", "name": "Lan <b>", "lists": ["ban-tin-sang"], "status": "active"}),
            SubscriberStatus::Unconfirmed,
        )
        .unwrap();
        assert_eq!(s.email.as_str(), "Lan@example.vn");
        assert_eq!(s.name, "Lan <b>");
        assert_eq!(s.status, SubscriberStatus::Active);
        let err = SubscriberInput::from_json(&json!({"email": "x"}), SubscriberStatus::Active).unwrap_err();
        assert_eq!(err.field.as_deref(), Some("email"));
        let err = SubscriberInput::from_json(&json!({"email": "a@b.vn", "status": "vip"}), SubscriberStatus::Active)
            .unwrap_err();
        assert_eq!(err.field.as_deref(), Some("status"));
    }

    #[test]
    fn a_patch_changes_only_what_it_names() {
        let patch = SubscriberPatch::from_json(&json!({"name": " Lan ", "lists": []})).unwrap();
        assert_eq!(patch.name.as_deref(), Some("Lan"));
        assert_eq!(patch.lists, Some(Vec::new()));
        assert_eq!((patch.language, patch.status, patch.attributes), (None, None, None));
        for (input, field) in [
            (json!({"email": "b@c.vn"}), "email"),
            (json!({"status": "vip"}), "status"),
            (json!({"attributes": [1]}), "attributes"),
            (json!({"lists": "ban-tin-sang"}), "lists"),
            (json!({"name": 5}), "name"),
            (json!({"colour": "red"}), "colour"),
        ] {
            let err = SubscriberPatch::from_json(&input).unwrap_err();
            assert_eq!(err.field.as_deref(), Some(field), "{input}");
        }
    }
}
