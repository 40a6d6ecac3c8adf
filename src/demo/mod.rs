//! `bantin demo`: sample Vietnamese content written for the project, so a newcomer sees
//! real categories and articles at once. Times are relative to the moment it is loaded;
//! a few articles are scheduled minutes ahead to show scheduled publication.

use chrono::{DateTime, Duration, SecondsFormat, Utc};
use chrono_tz::Tz;
use serde_json::Value;

const ARTICLES: &str = include_str!("articles.json");

/// The demo articles with their `{{T-90}}` / `{{T+5}}` placeholders (minutes from now)
/// turned into times in the site's zone.
pub fn articles(now: DateTime<Utc>, tz: Tz) -> anyhow::Result<Vec<Value>> {
    let mut items: Vec<Value> = serde_json::from_str(ARTICLES)?;
    for item in &mut items {
        let Some(Value::String(placeholder)) = item.get("published_at") else {
            continue;
        };
        let minutes: i64 = placeholder
            .trim_start_matches("{{T")
            .trim_end_matches("}}")
            .parse()
            .map_err(|_| anyhow::anyhow!("bad demo time placeholder {placeholder:?}"))?;
        let at = (now + Duration::minutes(minutes)).with_timezone(&tz);
        item["published_at"] = Value::String(at.to_rfc3339_opts(SecondsFormat::Secs, false));
    }
    Ok(items)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn demo_articles_all_parse_and_some_are_scheduled() {
        let now = Utc::now();
        let tz = chrono_tz::Asia::Ho_Chi_Minh;
        let items = articles(now, tz).unwrap();
        assert_eq!(items.len(), 30);
        let mut scheduled = 0;
        for item in &items {
            let a = crate::domain::ArticleInput::from_json(item, tz).unwrap();
            if a.published_at.unwrap() > now {
                scheduled += 1;
            }
            assert!(a.category.unwrap().segments().len() == 2);
        }
        assert_eq!(scheduled, 3);
    }
}
