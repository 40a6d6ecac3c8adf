//! Feed rendering benchmark: `FeedFormat::render` of one 50-item page with about 3 KB of
//! Vietnamese HTML content per item, in each format (RSS 2.0, Atom 1.0, JSON Feed 1.1).
//!
//! Target (from the issue): at least 5× the items/s of Python's feedgen rendering the
//! same items in the same run (`bench/feedgen_bench.py`; feedgen ≈ 46,000 items/s on the
//! 2-core bench machine, so ≥ 230,000 items/s per format).
//!
//! Settings (environment):
//! - `BENCH_SECONDS` (default 2): minimum timed seconds per format and round.
//! - `BENCH_ROUNDS` (default 3): rounds over the three formats; the median is reported.
//! - `BENCH_ITEMS_OUT`: when set, the same page (meta and 50 items) is written there as
//!   JSON, so `bench/feedgen_bench.py` renders identical data.
//!
//! Run with `cargo bench --bench feeds_render` (or `bash bench/feeds.sh` for the whole set).

use std::hint::black_box;
use std::time::{Duration, Instant};

use bantin::feeds::{FeedFormat, FeedItem, FeedKey, FeedMeta, FeedPage, tag_specific};
use chrono::{DateTime, SecondsFormat, TimeZone, Utc};
use serde_json::json;

#[path = "support/vietnamese.rs"]
mod vietnamese;
use vietnamese::{SENTENCES, TITLES, content};

const ITEMS: usize = 50;
/// Content size aimed at, in bytes of UTF-8.
const CONTENT_BYTES: usize = 3_000;

const CATEGORIES: [(&str, &str); 6] = [
    ("Kinh tế", "tin-tuc/kinh-te"),
    ("Xã hội", "tin-tuc/xa-hoi"),
    ("Y tế", "doi-song/y-te"),
    ("Giáo dục", "doi-song/giao-duc"),
    ("Lễ hội", "van-hoa/le-hoi"),
    ("Bóng đá", "the-thao/bong-da"),
];

const AUTHORS: [&str; 5] = ["Phương Nhung", "Nguyễn Văn An", "Trần Thị Bích", "Lê Minh Hoàng", "Phạm Thu Hà"];

const TAGS: [&str; 6] = ["nông thôn mới", "giao thông", "doanh nghiệp", "lúa gạo", "lễ hội", "y tế cơ sở"];

fn page() -> FeedPage {
    let base_url = "https://tin.hiephoa.example";
    let newest: DateTime<Utc> = Utc.with_ymd_and_hms(2026, 11, 25, 1, 0, 0).unwrap();
    let items: Vec<FeedItem> = (0..ITEMS)
        .map(|i| {
            let source_id = format!("hiephoa-2026-{:04}", 5000 - i);
            let (cat_name, cat_path) = CATEGORIES[i % CATEGORIES.len()];
            let title = format!("{} tại xã Đoan Bái ({})", TITLES[i % TITLES.len()], i + 1);
            let published = newest - chrono::Duration::minutes(37 * i as i64);
            FeedItem {
                id: format!("tag:tin.hiephoa.example,2026-11-25:{}", tag_specific(&source_id)),
                url: format!("{base_url}/{cat_path}/{}", source_id),
                summary: Some(format!("{} {}", SENTENCES[i % SENTENCES.len()], SENTENCES[(i + 4) % SENTENCES.len()])),
                content_html: content(i, CONTENT_BYTES),
                image: (i % 2 == 0).then(|| format!("{base_url}/anh/2026/11/{source_id}.jpg")),
                author: Some(AUTHORS[i % AUTHORS.len()].to_owned()),
                category: Some((cat_name.to_owned(), cat_path.to_owned())),
                tags: vec![TAGS[i % TAGS.len()].to_owned(), TAGS[(i + 2) % TAGS.len()].to_owned()],
                published,
                updated: published + chrono::Duration::minutes(5),
                title,
            }
        })
        .collect();
    let updated = items.iter().map(|i| i.updated).max().unwrap();
    FeedPage {
        meta: FeedMeta {
            key: FeedKey::All,
            title: "Tin Hiệp Hòa".into(),
            description: "Tin mới nhất từ Tin Hiệp Hòa".into(),
            language: "vi".into(),
            base_url: base_url.into(),
            site_url: base_url.into(),
            site_name: "Tin Hiệp Hòa".into(),
            hubs: Vec::new(),
            ttl_minutes: 5,
            id: "tag:tin.hiephoa.example,2026:feeds/all".into(),
            timezone: chrono_tz::Asia::Ho_Chi_Minh,
        },
        items,
        updated,
        this_cursor: None,
        next_cursor: None,
    }
}

/// The page as JSON for `bench/feedgen_bench.py`.
fn export(page: &FeedPage, path: &str) {
    let time = |t: DateTime<Utc>| t.to_rfc3339_opts(SecondsFormat::Secs, true);
    let items: Vec<_> = page
        .items
        .iter()
        .map(|i| {
            json!({
                "id": i.id, "title": i.title, "url": i.url, "summary": i.summary,
                "content_html": i.content_html, "image": i.image, "author": i.author,
                "category": i.category.as_ref().map(|(name, path)| json!({"name": name, "path": path})),
                "tags": i.tags, "published": time(i.published), "updated": time(i.updated),
            })
        })
        .collect();
    let m = &page.meta;
    let doc = json!({
        "meta": {
            "id": m.id, "title": m.title, "description": m.description, "language": m.language,
            "site_url": m.site_url, "site_name": m.site_name, "ttl": m.ttl_minutes,
            "self_rss": page.self_url(FeedFormat::Rss), "self_atom": page.self_url(FeedFormat::Atom),
            "updated": time(page.updated),
        },
        "items": items,
    });
    std::fs::write(path, serde_json::to_vec(&doc).unwrap()).unwrap_or_else(|e| panic!("writing {path}: {e}"));
    eprintln!("wrote the {} items to {path}", page.items.len());
}

/// A format, its document size, and (renders, seconds) per round.
type FormatSamples = (FeedFormat, usize, Vec<(u64, f64)>);

fn main() {
    let seconds: f64 = std::env::var("BENCH_SECONDS").ok().and_then(|v| v.trim().parse().ok()).unwrap_or(2.0);
    let min_time = Duration::from_secs_f64(seconds);
    let rounds = std::env::var("BENCH_ROUNDS").ok().and_then(|v| v.trim().parse::<usize>().ok()).unwrap_or(3).max(1);
    let page = page();
    let content_total: usize = page.items.iter().map(|i| i.content_html.len()).sum();
    if let Ok(path) = std::env::var("BENCH_ITEMS_OUT")
        && !path.trim().is_empty()
    {
        export(&page, &path);
    }
    println!(
        "render: {} items, {:.0} bytes of content per item on average, {rounds} rounds of ≥ {seconds} s per format \
         (median round shown)",
        page.items.len(),
        content_total as f64 / page.items.len() as f64
    );
    println!(
        "{:<6} {:>10} {:>12} {:>14} {:>14} {:>10} {:>10}",
        "format", "doc bytes", "renders", "items/s", "best items/s", "µs/doc", "MB/s"
    );
    // Warm up (allocator, caches) and check each output once.
    let mut samples: Vec<FormatSamples> = Vec::new();
    for format in FeedFormat::ALL {
        let sample = format.render(&page);
        assert!(sample.contains("hiephoa-2026-5000"), "{format:?} output misses the first item");
        for _ in 0..50 {
            black_box(format.render(black_box(&page)));
        }
        samples.push((format, sample.len(), Vec::new()));
    }
    // Rounds interleave the formats, so a burst of other load on the machine does not
    // land on one format only; the median round is reported.
    for _ in 0..rounds {
        for (format, _, runs) in samples.iter_mut() {
            let mut renders = 0u64;
            let started = Instant::now();
            let elapsed = loop {
                for _ in 0..50 {
                    black_box(format.render(black_box(&page)));
                }
                renders += 50;
                let elapsed = started.elapsed();
                if elapsed >= min_time {
                    break elapsed;
                }
            };
            runs.push((renders, elapsed.as_secs_f64()));
        }
    }
    let items = page.items.len() as f64;
    for (format, bytes, mut runs) in samples {
        runs.sort_by(|a, b| (a.0 as f64 / a.1).total_cmp(&(b.0 as f64 / b.1)));
        let (renders, secs) = runs[runs.len() / 2];
        let (best_renders, best_secs) = runs[runs.len() - 1];
        println!(
            "{:<6} {:>10} {:>12} {:>14.0} {:>14.0} {:>10.1} {:>10.0}",
            format.extension(),
            bytes,
            renders,
            renders as f64 * items / secs,
            best_renders as f64 * items / best_secs,
            secs * 1e6 / renders as f64,
            (renders as f64 * bytes as f64) / secs / 1e6,
        );
    }
}
