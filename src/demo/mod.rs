//! `bantin demo`: sample Vietnamese content written for the project, so a newcomer sees
//! real categories and articles at once. Times are relative to the moment it is loaded;
//! a few articles are scheduled minutes ahead to show scheduled publication. Two lists
//! and a handful of subscribers (at the reserved `.example` domain) show the newsletter side.

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

/// The demo lists, as the admin API takes them: a morning digest of everything and a
/// weekly one for the economy.
pub fn lists() -> Vec<Value> {
    vec![
        serde_json::json!({
            "name": "Bản tin sáng",
            "description": "Tin mới nhất của Hiệp Hòa, mỗi sáng lúc 6 giờ.",
            "schedule": "daily 06:00",
        }),
        serde_json::json!({
            "name": "Kinh tế tuần này",
            "description": "Tin kinh tế trong tuần, sáng thứ Hai.",
            "categories": ["tin-tuc/kinh-te"],
            "schedule": "weekly mon 07:00",
        }),
    ]
}

/// Demo subscribers of the morning list: (address, name).
pub const SUBSCRIBERS: [(&str, &str); 5] = [
    ("nguyen.van.an@hiephoa.example", "Nguyễn Văn An"),
    ("tran.thi.binh@hiephoa.example", "Trần Thị Bình"),
    ("le.minh.chau@bacgiang.example", "Lê Minh Châu"),
    ("pham.thu.dung@bacgiang.example", "Phạm Thu Dung"),
    ("hoang.gia.huy@hiephoa.example", "Hoàng Gia Huy"),
];

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

    #[test]
    fn demo_lists_and_subscribers_parse() {
        let defaults = crate::domain::audience::ListDefaults {
            timezone: chrono_tz::Asia::Ho_Chi_Minh,
            language: crate::config::Language::Vi,
            from_name: "bantin".into(),
            from_address: "bantin@hiephoa.example".into(),
        };
        let slugs: Vec<String> = lists()
            .iter()
            .map(|l| crate::domain::audience::ListInput::from_json(l, &defaults).unwrap().slug.to_string())
            .collect();
        assert_eq!(slugs, ["ban-tin-sang", "kinh-te-tuan-nay"]);
        for (address, _) in SUBSCRIBERS {
            crate::domain::email::EmailAddress::parse(address).unwrap();
        }
    }
}
