//! Golden files: a fixed data set rendered in each format must match the files in
//! tests/golden byte for byte. After an intended change, regenerate them with
//! `UPDATE_GOLDEN=1 cargo test --test golden` and review the diff.

use bantin::feeds::{FeedFormat, FeedItem, FeedKey, FeedMeta, FeedPage};
use chrono::{DateTime, Utc};

fn at(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
}

fn page() -> FeedPage {
    let meta = FeedMeta {
        key: FeedKey::Category("tin-tuc/kinh-te".into()),
        title: "Tin Hiệp Hòa — Kinh tế".into(),
        description: "Bài mới trong mục Tin Tức › Kinh tế của Tin Hiệp Hòa".into(),
        language: "vi".into(),
        base_url: "https://tin.hiephoa.example".into(),
        site_url: "https://hiephoa.example".into(),
        site_name: "Tin Hiệp Hòa".into(),
        hubs: vec!["https://hub.example/".into()],
        ttl_minutes: 5,
        id: "tag:tin.hiephoa.example,2026:feeds/tin-tuc/kinh-te".into(),
        timezone: chrono_tz::Asia::Ho_Chi_Minh,
    };
    let items = vec![
        FeedItem {
            id: "tag:tin.hiephoa.example,2026-11-25:hiephoa-2013-0412".into(),
            title: "Hiệp Hòa sau 2 năm tăng cường củng cố nền nếp sinh hoạt Đảng".into(),
            url: "https://hiephoa.example/tin-tuc/kinh-te/hiep-hoa-sau-2-nam".into(),
            summary: Some("Đảng bộ huyện Hiệp Hoà hiện có 75 chi, đảng bộ trực thuộc với 7.600 đảng viên.".into()),
            content_html: "<p>Đảng bộ huyện Hiệp Hoà hiện có 75 chi…</p><p>Theo đó, ngày 11/7/2011…</p>".into(),
            image: Some("https://hiephoa.example/anh/dang-bo.jpg".into()),
            author: Some("Phương Nhung".into()),
            category: Some(("Kinh tế".into(), "tin-tuc/kinh-te".into())),
            tags: vec!["đảng bộ".into()],
            published: at("2026-11-25T08:00:00+07:00"),
            updated: at("2026-11-25T09:30:00+07:00"),
        },
        FeedItem {
            id: "tag:tin.hiephoa.example,2026-11-24:k2".into(),
            title: "Chợ phiên & \"đặc sản\" <Tết> 'xưa' 🎉".into(),
            url: "https://hiephoa.example/tin-tuc/kinh-te/cho-phien?a=1&b=2".into(),
            summary: None,
            content_html: "<p>Có ]]> ở giữa &amp; cuối ]]></p>".into(),
            image: None,
            author: None,
            category: Some(("Kinh tế".into(), "tin-tuc/kinh-te".into())),
            tags: vec![],
            published: at("2026-11-24T06:15:00+07:00"),
            updated: at("2026-11-24T06:15:00+07:00"),
        },
        FeedItem {
            id: "tag:tin.hiephoa.example,2026-11-23:k3".into(),
            title: "Bài không có nội dung".into(),
            url: "https://hiephoa.example/tin-tuc/kinh-te/k3".into(),
            summary: None,
            content_html: String::new(),
            image: Some("https://hiephoa.example/anh/k3.png?w=800".into()),
            author: Some("Trần Thị Mai".into()),
            category: None,
            tags: vec!["a & b".into(), "<c>".into()],
            published: at("2026-11-23T23:59:59+07:00"),
            updated: at("2026-11-23T23:59:59+07:00"),
        },
    ];
    FeedPage {
        meta,
        items,
        updated: at("2026-11-25T09:30:00+07:00"),
        this_cursor: None,
        next_cursor: Some("1795482000000000-3".into()),
    }
}

#[test]
fn rendered_documents_match_the_golden_files() {
    let page = page();
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden");
    for format in FeedFormat::ALL {
        let rendered = format.render(&page);
        let path = dir.join(format!("tin-tuc-kinh-te.{}", format.extension()));
        if std::env::var_os("UPDATE_GOLDEN").is_some() {
            std::fs::write(&path, &rendered).unwrap();
        }
        let golden = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        assert_eq!(rendered, golden, "{} differs; UPDATE_GOLDEN=1 regenerates it", path.display());
        // And each golden document parses back with its items.
        let feed = feed_rs::parser::parse(rendered.as_bytes()).unwrap();
        assert_eq!(feed.entries.len(), 3);
        assert_eq!(feed.entries[1].title.as_ref().unwrap().content, "Chợ phiên & \"đặc sản\" <Tết> 'xưa' 🎉");
    }
}
