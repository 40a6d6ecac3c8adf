//! A JSON value whose strings borrow from the text it was parsed from: the ingest API
//! reads a batch of articles (up to 2 MB, mostly HTML) into this instead of a
//! `serde_json::Value`, so each string is not copied into a value tree first (strings
//! with escapes are unescaped into owned ones). A `serde_json::Value` converts into one
//! without copying, so every source of articles goes through the same validation.

use std::borrow::Cow;
use std::fmt;

use serde::de::{Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::{Number, Value};

#[derive(Clone, Debug, PartialEq)]
pub enum BorrowedJson<'a> {
    Null,
    Bool(bool),
    Number(Number),
    String(Cow<'a, str>),
    Array(Vec<BorrowedJson<'a>>),
    /// Members in the order written; see [`BorrowedJson::get`] for repeated names.
    Object(Vec<(Cow<'a, str>, BorrowedJson<'a>)>),
}

impl<'a> BorrowedJson<'a> {
    /// Parses JSON text; strings without escapes borrow from `text`.
    pub fn parse(text: &'a [u8]) -> serde_json::Result<BorrowedJson<'a>> {
        serde_json::from_slice(text)
    }

    /// A member of an object, `None` for a missing one or when this is not an object.
    /// A name written twice counts with its last value, as in `serde_json::Value`.
    pub fn get(&self, name: &str) -> Option<&BorrowedJson<'a>> {
        match self {
            BorrowedJson::Object(members) => members.iter().rev().find(|(k, _)| k == name).map(|(_, v)| v),
            _ => None,
        }
    }

    /// The names of an object's members in sorted order, each once (the order a
    /// `serde_json::Value` object lists them in); empty for anything else.
    pub fn keys(&self) -> Vec<&str> {
        let mut keys: Vec<&str> = match self {
            BorrowedJson::Object(members) => members.iter().map(|(k, _)| k.as_ref()).collect(),
            _ => Vec::new(),
        };
        keys.sort_unstable();
        keys.dedup();
        keys
    }

    /// "a string", "an array"…, for error messages.
    pub fn type_name(&self) -> &'static str {
        match self {
            BorrowedJson::Null => "null",
            BorrowedJson::Bool(_) => "a boolean",
            BorrowedJson::Number(_) => "a number",
            BorrowedJson::String(_) => "a string",
            BorrowedJson::Array(_) => "an array",
            BorrowedJson::Object(_) => "an object",
        }
    }
}

impl<'a> From<&'a Value> for BorrowedJson<'a> {
    fn from(value: &'a Value) -> BorrowedJson<'a> {
        match value {
            Value::Null => BorrowedJson::Null,
            Value::Bool(b) => BorrowedJson::Bool(*b),
            Value::Number(n) => BorrowedJson::Number(n.clone()),
            Value::String(s) => BorrowedJson::String(Cow::Borrowed(s)),
            Value::Array(items) => BorrowedJson::Array(items.iter().map(BorrowedJson::from).collect()),
            Value::Object(members) => BorrowedJson::Object(
                members.iter().map(|(k, v)| (Cow::Borrowed(k.as_str()), BorrowedJson::from(v))).collect(),
            ),
        }
    }
}

impl<'de> Deserialize<'de> for BorrowedJson<'de> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<BorrowedJson<'de>, D::Error> {
        deserializer.deserialize_any(BorrowedJsonVisitor)
    }
}

struct BorrowedJsonVisitor;

impl<'de> Visitor<'de> for BorrowedJsonVisitor {
    type Value = BorrowedJson<'de>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_bool<E>(self, v: bool) -> Result<BorrowedJson<'de>, E> {
        Ok(BorrowedJson::Bool(v))
    }

    fn visit_i64<E>(self, v: i64) -> Result<BorrowedJson<'de>, E> {
        Ok(BorrowedJson::Number(v.into()))
    }

    fn visit_u64<E>(self, v: u64) -> Result<BorrowedJson<'de>, E> {
        Ok(BorrowedJson::Number(v.into()))
    }

    fn visit_f64<E>(self, v: f64) -> Result<BorrowedJson<'de>, E> {
        Ok(Number::from_f64(v).map_or(BorrowedJson::Null, BorrowedJson::Number))
    }

    fn visit_borrowed_str<E>(self, v: &'de str) -> Result<BorrowedJson<'de>, E> {
        Ok(BorrowedJson::String(Cow::Borrowed(v)))
    }

    fn visit_str<E>(self, v: &str) -> Result<BorrowedJson<'de>, E> {
        Ok(BorrowedJson::String(Cow::Owned(v.to_owned())))
    }

    fn visit_string<E>(self, v: String) -> Result<BorrowedJson<'de>, E> {
        Ok(BorrowedJson::String(Cow::Owned(v)))
    }

    fn visit_unit<E>(self) -> Result<BorrowedJson<'de>, E> {
        Ok(BorrowedJson::Null)
    }

    fn visit_none<E>(self) -> Result<BorrowedJson<'de>, E> {
        Ok(BorrowedJson::Null)
    }

    fn visit_some<D: Deserializer<'de>>(self, deserializer: D) -> Result<BorrowedJson<'de>, D::Error> {
        BorrowedJson::deserialize(deserializer)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<BorrowedJson<'de>, A::Error> {
        let mut items = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(1024));
        while let Some(item) = seq.next_element()? {
            items.push(item);
        }
        Ok(BorrowedJson::Array(items))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<BorrowedJson<'de>, A::Error> {
        let mut members = Vec::with_capacity(map.size_hint().unwrap_or(0).min(64));
        while let Some(key) = map.next_key::<BorrowedJson<'de>>()? {
            let BorrowedJson::String(key) = key else {
                return Err(serde::de::Error::custom("object keys must be strings"));
            };
            members.push((key, map.next_value()?));
        }
        Ok(BorrowedJson::Object(members))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// Back to a `serde_json::Value` (whose objects are sorted), to compare with one.
    fn to_value(j: &BorrowedJson<'_>) -> Value {
        match j {
            BorrowedJson::Null => Value::Null,
            BorrowedJson::Bool(b) => Value::Bool(*b),
            BorrowedJson::Number(n) => Value::Number(n.clone()),
            BorrowedJson::String(s) => Value::String(s.to_string()),
            BorrowedJson::Array(items) => Value::Array(items.iter().map(to_value).collect()),
            BorrowedJson::Object(members) => {
                Value::Object(members.iter().map(|(k, v)| (k.to_string(), to_value(v))).collect())
            }
        }
    }

    #[test]
    fn parses_like_serde_json_and_borrows_plain_strings() {
        let text = br#"[{"id": 7, "title": "Ti\u00eau \"\u0111\u1ec1\"", "content_html": "<p>Hi\u1ec7p H\u00f2a</p>",
            "x": null, "y": [true, 1.5, -2], "z": {}}, "Kinh t\u1ebf", "Kinh te"]"#;
        let parsed = BorrowedJson::parse(text).unwrap();
        let value: Value = serde_json::from_slice(text).unwrap();
        assert_eq!(to_value(&parsed), value);
        assert_eq!(to_value(&BorrowedJson::from(&value)), value);
        let BorrowedJson::Array(items) = &parsed else { panic!("an array") };
        assert!(matches!(&items[1], BorrowedJson::String(Cow::Owned(s)) if s == "Kinh tế"));
        assert!(matches!(&items[2], BorrowedJson::String(Cow::Borrowed("Kinh te"))));
        assert!(matches!(items[0].get("title"), Some(BorrowedJson::String(Cow::Owned(t))) if t == "Tiêu \"đề\""));
        assert_eq!(items[0].keys(), ["content_html", "id", "title", "x", "y", "z"]);
        assert_eq!(items[0].get("y").map(BorrowedJson::type_name), Some("an array"));
    }

    #[test]
    fn a_repeated_name_keeps_its_last_value_like_serde_json() {
        let text = br#"{"b": 1, "a": 2, "b": "x"}"#;
        let parsed = BorrowedJson::parse(text).unwrap();
        let value: Value = serde_json::from_slice(text).unwrap();
        assert_eq!(value, json!({"a": 2, "b": "x"}));
        assert_eq!(parsed.get("b"), Some(&BorrowedJson::String(Cow::Borrowed("x"))));
        assert_eq!(parsed.keys(), ["a", "b"]);
    }

    #[test]
    fn malformed_text_is_an_error() {
        for text in [&b"{"[..], b"[1,]", b"{\"a\" 1}", b"\xff", b""] {
            assert!(BorrowedJson::parse(text).is_err(), "{:?}", String::from_utf8_lossy(text));
        }
    }
}
