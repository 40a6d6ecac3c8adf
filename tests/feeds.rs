//! Feeds against the real application: every format parsed back with feed-rs and the
//! rss/atom_syndication parsers, freshness, conditional requests, compression, paging,
//! WebSub, sanitization and restarts. Runs on both backends.

mod common;

use std::io::Read;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::TestApp;
use rss::validation::Validate;
use serde_json::{Value, json};

const FORMATS: [&str; 3] = ["rss", "atom", "json"];

async fn post(app: &TestApp, body: Value) {
    let (status, response) = app.post_articles(body.to_string()).await;
    assert!(status == 200 || status == 201, "{status} {response}");
}

/// Polls a feed until `check` holds (the builder works in the background), or fails.
async fn feed_until(app: &TestApp, path: &str, check: impl Fn(&feed_rs::model::Feed) -> bool) -> feed_rs::model::Feed {
    for _ in 0..100 {
        let response = app.get(path).await;
        if response.status() == 200 {
            let bytes = response.bytes().await.unwrap();
            let feed = feed_rs::parser::parse(&bytes[..]).unwrap_or_else(|e| panic!("{path} does not parse: {e}"));
            if check(&feed) {
                return feed;
            }
        }
        tokio::time::sleep(Duration::from_millis(30)).await;
    }
    panic!("{path} never reached the expected state");
}

fn titles(feed: &feed_rs::model::Feed) -> Vec<String> {
    feed.entries.iter().map(|e| e.title.as_ref().map(|t| t.content.clone()).unwrap_or_default()).collect()
}

fn sample_articles() -> Value {
    json!([
        {"id": "k1", "title": "Giá vải thiều tăng mạnh", "category": ["Tin Tức", "Kinh tế"], "author": "Trần Thị Mai",
         "summary": "Thương lái đổ về vườn.", "content_html": "<p>Giá vải <b>tăng</b>.</p><img src=\"/anh/vai.jpg\">",
         "image": "https://hiephoa.example/anh/vai.png", "published_at": "2026-11-20T07:00:00+07:00", "tags": ["nông sản"]},
        {"id": "k2", "title": "Chợ phiên Thắng & \"đặc sản\" <ngày Tết> 🎉", "category": ["Tin Tức", "Kinh tế"],
         "content_html": "<p>Đoạn có ]]> và <script>alert(1)</script><a href=\"javascript:x()\" onclick=\"y()\">link</a></p>",
         "published_at": "2026-11-21T07:00:00+07:00"},
        {"id": "x1", "title": "Trường THCS Đoan Bái đạt chuẩn quốc gia", "category": ["Tin Tức", "Xã hội"], "author": "Trần Thị Mai",
         "published_at": "2026-11-22T07:00:00+07:00"},
        {"id": "d1", "title": "Lễ hội đình Lỗ Hạnh", "category": ["Đời sống", "Văn hóa"], "published_at": "2026-11-19T07:00:00+07:00",
         "content_text": "Rước kiệu.\n\nĐấu vật."}
    ])
}

both_backends!(every_format_parses_back_with_items_ids_dates_and_vietnamese_text, |backend| async move {
    let Some(app) = TestApp::spawn(backend).await else { return };
    post(&app, sample_articles()).await;
    for format in FORMATS {
        let feed = feed_until(&app, &format!("/feeds/tin-tuc.{format}"), |f| f.entries.len() == 3).await;
        // Newest first; the category feed holds its descendants' articles.
        assert_eq!(titles(&feed)[0], "Trường THCS Đoan Bái đạt chuẩn quốc gia", "{format}");
        assert_eq!(titles(&feed)[1], "Chợ phiên Thắng & \"đặc sản\" <ngày Tết> 🎉", "{format}");
        let first = &feed.entries[2];
        assert_eq!(
            first.id,
            format!("tag:tin.hiephoa.example,{}:k1", chrono::Utc::now().format("%Y-%m-%d")),
            "{format}"
        );
        assert_eq!(first.published.unwrap().to_rfc3339(), "2026-11-20T00:00:00+00:00", "{format}");
        assert_eq!(first.authors[0].name, "Trần Thị Mai", "{format}");
        let content = first.content.as_ref().and_then(|c| c.body.clone()).unwrap_or_default();
        assert!(content.contains("Giá vải <b>tăng</b>"), "{format}: {content}");
        assert!(
            content.contains("src=\"https://tin.hiephoa.example/anh/vai.jpg\""),
            "{format}: relative URL made absolute: {content}"
        );
        let tricky = feed.entries[1].content.as_ref().and_then(|c| c.body.clone()).unwrap_or_default();
        assert!(tricky.contains("Đoạn có ]]&gt; và"), "{format}: ]]> survives as HTML text: {tricky}");
        for banned in ["<script", "javascript:", "onclick"] {
            assert!(!tricky.contains(banned), "{format}: {banned} in {tricky}");
        }
        let title = feed.title.as_ref().unwrap().content.clone();
        assert_eq!(title, "bantin — Tin Tức", "{format}");
    }
    let author = feed_until(&app, "/feeds/authors/tran-thi-mai.atom", |f| f.entries.len() == 2).await;
    assert_eq!(titles(&author)[0], "Trường THCS Đoan Bái đạt chuẩn quốc gia");
    let all = feed_until(&app, "/feeds/all.json", |f| f.entries.len() == 4).await;
    assert_eq!(titles(&all)[3], "Lễ hội đình Lỗ Hạnh");
});

both_backends!(documents_are_valid_by_the_rss_and_atom_parsers_including_empty_feeds, |backend| async move {
    let Some(app) = TestApp::spawn(backend).await else { return };
    post(&app, sample_articles()).await;
    // A category with only a scheduled article exists but has no items yet.
    post(
        &app,
        json!({"id": "later", "title": "Sắp đăng", "category": ["Thể thao"], "published_at": "2030-01-01T00:00:00Z"}),
    )
    .await;
    feed_until(&app, "/feeds/all.rss", |f| f.entries.len() == 4).await;
    for path in ["all", "tin-tuc", "tin-tuc/kinh-te", "the-thao", "authors/tran-thi-mai"] {
        let rss_bytes = app.get(&format!("/feeds/{path}.rss")).await.bytes().await.unwrap();
        let channel = rss::Channel::read_from(&rss_bytes[..]).unwrap_or_else(|e| panic!("{path}.rss: {e}"));
        channel.validate().unwrap_or_else(|e| panic!("{path}.rss invalid: {e:?}"));
        assert!(String::from_utf8_lossy(&rss_bytes).contains("<atom:link rel=\"self\""));
        let atom_bytes = app.get(&format!("/feeds/{path}.atom")).await.bytes().await.unwrap();
        atom_syndication::Feed::read_from(&atom_bytes[..]).unwrap_or_else(|e| panic!("{path}.atom: {e}"));
        let json_doc: Value = app.get(&format!("/feeds/{path}.json")).await.json().await.unwrap();
        assert_eq!(json_doc["version"], "https://jsonfeed.org/version/1.1");
        for item in json_doc["items"].as_array().unwrap() {
            assert!(item["id"].is_string() && (item["content_html"].is_string() || item["content_text"].is_string()));
        }
    }
    let empty = app.get("/feeds/the-thao.atom").await.bytes().await.unwrap();
    assert_eq!(atom_syndication::Feed::read_from(&empty[..]).unwrap().entries().len(), 0);
});

both_backends!(conditional_requests_and_compression, |backend| async move {
    let Some(app) = TestApp::spawn(backend).await else { return };
    post(&app, sample_articles()).await;
    feed_until(&app, "/feeds/all.atom", |f| f.entries.len() == 4).await;
    let plain = app
        .client
        .get(format!("{}/feeds/all.atom", app.address))
        .header("Accept-Encoding", "identity")
        .send()
        .await
        .unwrap();
    assert_eq!(plain.headers()["content-type"], "application/atom+xml; charset=utf-8");
    assert_eq!(plain.headers()["vary"], "Accept-Encoding");
    assert_eq!(plain.headers()["cache-control"], "public, max-age=300");
    let etag = plain.headers()["etag"].to_str().unwrap().to_owned();
    let last_modified = plain.headers()["last-modified"].to_str().unwrap().to_owned();
    let identity = plain.bytes().await.unwrap();

    let url = format!("{}/feeds/all.atom", app.address);
    let not_modified = app.client.get(&url).header("If-None-Match", &etag).send().await.unwrap();
    assert_eq!(not_modified.status(), 304);
    assert_eq!(not_modified.headers()["etag"], etag.as_str());
    let by_date = app.client.get(&url).header("If-Modified-Since", &last_modified).send().await.unwrap();
    assert_eq!(by_date.status(), 304);
    let stale = app.client.get(&url).header("If-None-Match", "\"0000\"").send().await.unwrap();
    assert_eq!(stale.status(), 200);
    let head = app.client.head(&url).send().await.unwrap();
    assert_eq!(head.status(), 200);
    assert!(head.bytes().await.unwrap().is_empty());

    // Compressed variants appear once the build is compressed.
    let mut seen = (false, false);
    for _ in 0..100 {
        let br = app.client.get(&url).header("Accept-Encoding", "gzip, br").send().await.unwrap();
        if br.headers().get("content-encoding").is_some_and(|v| v == "br") {
            assert_ne!(br.headers()["etag"], etag.as_str());
            let mut decoded = Vec::new();
            brotli::Decompressor::new(&br.bytes().await.unwrap()[..], 4096).read_to_end(&mut decoded).unwrap();
            assert_eq!(decoded, identity);
            seen.0 = true;
        }
        let gz = app.client.get(&url).header("Accept-Encoding", "gzip;q=1, br;q=0").send().await.unwrap();
        if gz.headers().get("content-encoding").is_some_and(|v| v == "gzip") {
            let gz_etag = gz.headers()["etag"].to_str().unwrap().to_owned();
            let mut decoded = Vec::new();
            flate2::read::GzDecoder::new(&gz.bytes().await.unwrap()[..]).read_to_end(&mut decoded).unwrap();
            assert_eq!(decoded, identity);
            let again = app.client.get(&url).header("If-None-Match", &gz_etag).send().await.unwrap();
            assert_eq!(again.status(), 304);
            seen.1 = true;
        }
        if seen == (true, true) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(30)).await;
    }
    assert_eq!(seen, (true, true), "brotli and gzip variants");
});

both_backends!(cached_feeds_are_answered_as_the_router_answers_them, |backend| async move {
    let Some(app) = TestApp::spawn(backend).await else { return };
    post(&app, sample_articles()).await;
    feed_until(&app, "/feeds/tin-tuc.atom", |f| f.entries.len() == 3).await;
    // Built and compressed: the cache holds every variant from here on.
    let direct = format!("{}/feeds/tin-tuc.atom", app.address);
    for _ in 0..100 {
        let br = app.client.get(&direct).header("Accept-Encoding", "br").send().await.unwrap();
        if br.headers().get("content-encoding").is_some() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(30)).await;
    }
    let plain = app.get("/feeds/tin-tuc.atom").await;
    let etag = plain.headers()["etag"].to_str().unwrap().to_owned();
    let last_modified = plain.headers()["last-modified"].to_str().unwrap().to_owned();
    // The same feed by a path the cache path leaves to the router (percent-encoded "t"):
    // the router's handler must answer exactly alike.
    let routed = format!("{}/feeds/%74in-tuc.atom", app.address);
    let variants: [(&str, &str, &str); 6] = [
        ("GET", "", ""),
        ("GET", "If-None-Match", etag.as_str()),
        ("GET", "If-Modified-Since", last_modified.as_str()),
        ("GET", "Accept-Encoding", "gzip"),
        ("GET", "Accept-Encoding", "br;q=1, gzip;q=0.5"),
        ("HEAD", "Accept-Encoding", "br"),
    ];
    for (method, name, value) in variants {
        let mut answers = Vec::new();
        for url in [&direct, &routed] {
            let mut request = app.client.request(method.parse().unwrap(), url.as_str());
            if !name.is_empty() {
                request = request.header(name, value);
            }
            let response = request.send().await.unwrap();
            let status = response.status();
            let mut headers: Vec<(String, String)> = response
                .headers()
                .iter()
                .filter(|(n, _)| *n != "date")
                .map(|(n, v)| (n.to_string(), v.to_str().unwrap().to_owned()))
                .collect();
            headers.sort();
            answers.push((status, headers, response.bytes().await.unwrap()));
        }
        assert_eq!(answers[0], answers[1], "{method} with {name}: {value}");
    }
    // Both paths are counted under the feed route.
    let metrics = app.get("/metrics").await.text().await.unwrap();
    let counted = |status: &str| {
        let line =
            format!("bantin_http_requests_total{{method=\"GET\",route=\"/feeds/{{*path}}\",status=\"{status}\"}} ");
        metrics.lines().find_map(|l| l.strip_prefix(line.as_str())).map(|n| n.parse::<u64>().unwrap()).unwrap_or(0)
    };
    assert!(counted("304") >= 4, "{metrics}");
});

both_backends!(feeds_follow_updates_retractions_and_moves, |backend| async move {
    let Some(app) = TestApp::spawn(backend).await else { return };
    post(&app, sample_articles()).await;
    feed_until(&app, "/feeds/tin-tuc/kinh-te.rss", |f| f.entries.len() == 2).await;
    let before = app.get("/feeds/tin-tuc/kinh-te.rss").await.headers()["last-modified"].to_str().unwrap().to_owned();
    // Retracting the newest item: gone from the feed, and Last-Modified does not go back.
    let response =
        app.client.delete(format!("{}/api/v1/articles/k2", app.address)).bearer_auth(&app.token).send().await.unwrap();
    assert_eq!(response.status(), 200);
    feed_until(&app, "/feeds/tin-tuc/kinh-te.rss", |f| f.entries.len() == 1).await;
    let after = app.get("/feeds/tin-tuc/kinh-te.rss").await.headers()["last-modified"].to_str().unwrap().to_owned();
    let parse = |s: &str| chrono::DateTime::parse_from_rfc2822(s).unwrap();
    assert!(parse(&after) >= parse(&before), "{after} < {before}");
    // Moving k1 to Đời sống › Văn hóa takes it out of Tin Tức and into Đời sống.
    post(&app, json!({"id": "k1", "title": "Giá vải thiều tăng mạnh", "category": ["Đời sống", "Văn hóa"], "published_at": "2026-11-20T07:00:00+07:00"})).await;
    feed_until(&app, "/feeds/tin-tuc/kinh-te.rss", |f| f.entries.is_empty()).await;
    feed_until(&app, "/feeds/doi-song.rss", |f| titles(f).contains(&"Giá vải thiều tăng mạnh".to_owned())).await;
    // An update shows the new title, under the same id.
    post(&app, json!({"id": "k1", "title": "Giá vải thiều tăng kỷ lục", "category": ["Đời sống", "Văn hóa"], "published_at": "2026-11-20T07:00:00+07:00"})).await;
    let feed =
        feed_until(&app, "/feeds/doi-song.atom", |f| titles(f).contains(&"Giá vải thiều tăng kỷ lục".to_owned())).await;
    assert_eq!(feed.entries.iter().filter(|e| e.id.ends_with(":k1")).count(), 1);
});

both_backends!(unknown_feeds_get_a_404_page_linking_to_the_index, |backend| async move {
    let Some(app) = TestApp::spawn(backend).await else { return };
    for path in [
        "/feeds/khong-co.rss",
        "/feeds/all.xml",
        "/feeds/authors/ai-do.atom",
        "/feeds/Tin-Tuc.rss",
        "/feeds/..%2Fetc.rss",
    ] {
        let response = app.get(path).await;
        assert_eq!(response.status(), 404, "{path}");
        assert!(response.text().await.unwrap().contains("/feeds\""), "{path}");
    }
    assert_eq!(app.get("/feeds/all.rss?before=nonsense").await.status(), 400);
});

both_backends!(walking_the_paged_archive_returns_every_article_once, |backend| async move {
    let Some(app) = TestApp::spawn_with(backend, |c| c.feed_items = 5).await else { return };
    let articles: Vec<Value> = (0..23)
        .map(|i| {
            json!({"id": format!("p{i:02}"), "title": format!("Bài {i}"), "category": ["Tin Tức"],
            "published_at": format!("2026-11-{:02}T08:00:00+07:00", 1 + i % 20)})
        })
        .collect();
    post(&app, Value::from(articles)).await;
    feed_until(&app, "/feeds/tin-tuc.json", |f| f.entries.len() == 5).await;
    let mut seen = Vec::new();
    let mut next = Some(format!("{}/feeds/tin-tuc.json", app.address));
    let mut pages = 0;
    while let Some(url) = next {
        let page: Value = app.client.get(&url).send().await.unwrap().json().await.unwrap();
        seen.extend(page["items"].as_array().unwrap().iter().map(|i| i["id"].as_str().unwrap().to_owned()));
        next = page["next_url"].as_str().map(|u| u.replace("https://tin.hiephoa.example", &app.address));
        pages += 1;
        if pages == 2 {
            // New articles arriving while a reader walks back do not shift older pages.
            post(&app, json!([{"id": "new1", "title": "Mới", "category": ["Tin Tức"]}, {"id": "new2", "title": "Mới 2", "category": ["Tin Tức"]}])).await;
        }
    }
    assert_eq!(pages, 5);
    let mut unique = seen.clone();
    unique.sort();
    unique.dedup();
    assert_eq!(unique.len(), seen.len(), "no repeats: {seen:?}");
    assert_eq!(seen.len(), 23, "no gaps: {seen:?}");
    // The Atom document links the next page too.
    let atom = app.get("/feeds/tin-tuc.atom").await.bytes().await.unwrap();
    let feed = atom_syndication::Feed::read_from(&atom[..]).unwrap();
    assert!(feed.links().iter().any(|l| l.rel() == "next" && l.href().contains("?before=")));
});

both_backends!(rebuilt_feeds_are_announced_to_websub_hubs, |backend| async move {
    let received: Arc<Mutex<Vec<String>>> = Arc::default();
    let sink = received.clone();
    let hub = axum::Router::new().route(
        "/hub",
        axum::routing::post(move |body: String| {
            let sink = sink.clone();
            async move {
                sink.lock().unwrap().push(body);
                axum::http::StatusCode::NO_CONTENT
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let hub_url = format!("http://{}/hub", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, hub).await });
    let hub_for_config = hub_url.clone();
    let Some(app) = TestApp::spawn_with(backend, move |c| c.websub_hubs = vec![hub_for_config]).await else { return };
    post(&app, json!({"id": "w1", "title": "Tin nóng", "category": ["Tin Tức", "Kinh tế"]})).await;
    let expected = "hub.mode=publish&hub.url=https%3A%2F%2Ftin.hiephoa.example%2Ffeeds%2Ftin-tuc%2Fkinh-te.atom";
    for _ in 0..200 {
        if received.lock().unwrap().iter().any(|b| b == expected) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    let bodies = received.lock().unwrap().clone();
    assert!(bodies.iter().any(|b| b == expected), "{bodies:?}");
    let response = app.get("/feeds/tin-tuc/kinh-te.atom").await;
    let link = response.headers()["link"].to_str().unwrap().to_owned();
    assert!(link.contains(&format!("<{hub_url}>; rel=\"hub\"")) && link.contains("rel=\"self\""), "{link}");
    let body = response.text().await.unwrap();
    assert!(body.contains(&format!("<link rel=\"hub\" href=\"{hub_url}\"/>")), "{body}");
});

both_backends!(a_restart_serves_the_persisted_documents_without_rebuilding, |backend| async move {
    let Some(app) = TestApp::spawn(backend).await else { return };
    post(&app, sample_articles()).await;
    feed_until(&app, "/feeds/all.rss", |f| f.entries.len() == 4).await;
    // Wait until the compressed variants (and so the persisted rows) exist, for the
    // document checked after the restart too: under load the compressor may reach it in
    // a later round than tin-tuc's.
    for path in ["/feeds/tin-tuc.rss", "/feeds/all.rss"] {
        for _ in 0..100 {
            let r =
                app.client.get(format!("{}{path}", app.address)).header("Accept-Encoding", "br").send().await.unwrap();
            if r.headers().get("content-encoding").is_some() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(30)).await;
        }
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    let etag = app.get("/feeds/all.rss").await.headers()["etag"].to_str().unwrap().to_owned();
    let db = app.stop().await;
    let app = TestApp::start(db, |_| {}).await.unwrap();
    let response =
        app.client.get(format!("{}/feeds/all.rss", app.address)).header("Accept-Encoding", "br").send().await.unwrap();
    assert_eq!(response.headers()["content-encoding"], "br", "served compressed at once");
    let metrics = app.get("/metrics").await.text().await.unwrap();
    assert!(metrics.contains("bantin_feed_builds_total 0"), "{metrics}");
    assert_eq!(app.get("/feeds/all.rss").await.headers()["etag"], etag.as_str());
});

both_backends!(the_index_page_and_opml_list_every_feed, |backend| async move {
    let Some(app) = TestApp::spawn(backend).await else { return };
    post(&app, sample_articles()).await;
    let html = app
        .client
        .get(format!("{}/feeds", app.address))
        .header("Accept-Language", "en-US,en;q=0.9")
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    // minijinja escapes "/" in HTML as &#x2f;, which browsers read back as "/".
    let html = html.replace("&#x2f;", "/");
    assert!(html.contains("<link rel=\"alternate\" type=\"application/rss+xml\""), "{html}");
    assert!(html.contains("https://tin.hiephoa.example/feeds/tin-tuc/kinh-te.atom"));
    assert!(html.contains("For site owners"));
    assert!(html.contains("&lt;link rel=&quot;alternate&quot;"), "snippet escaped: {html}");
    let vi = app.get("/feeds").await.text().await.unwrap();
    assert!(vi.contains("Nguồn tin RSS") && vi.contains("Kinh tế"));
    let opml = app.get("/feeds.opml").await;
    assert_eq!(opml.headers()["content-type"], "text/x-opml; charset=utf-8");
    let text = opml.text().await.unwrap();
    assert!(text.contains("<opml version=\"2.0\">"));
    assert!(text.contains("xmlUrl=\"https://tin.hiephoa.example/feeds/tin-tuc/kinh-te.rss\""));
    assert!(text.contains("xmlUrl=\"https://tin.hiephoa.example/feeds/authors/tran-thi-mai.rss\""));
});

/// Every feed of the demo data and of edge-case articles passes the RSS validator and the
/// Atom and JSON Feed parsers.
async fn assert_every_feed_valid(app: &TestApp) {
    let mut paths = vec!["all".to_owned()];
    paths.extend(app.store.categories().await.unwrap().into_iter().map(|c| c.path));
    paths.extend(app.store.authors().await.unwrap().into_iter().map(|a| format!("authors/{}", a.slug)));
    for path in paths {
        let rss_bytes = app.get(&format!("/feeds/{path}.rss")).await.bytes().await.unwrap();
        let channel = rss::Channel::read_from(&rss_bytes[..]).unwrap_or_else(|e| panic!("{path}.rss: {e}"));
        channel.validate().unwrap_or_else(|e| panic!("{path}.rss invalid: {e:?}"));
        for format in FORMATS {
            let bytes = app.get(&format!("/feeds/{path}.{format}")).await.bytes().await.unwrap();
            feed_rs::parser::parse(&bytes[..]).unwrap_or_else(|e| panic!("{path}.{format}: {e}"));
        }
        let atom = app.get(&format!("/feeds/{path}.atom")).await.bytes().await.unwrap();
        atom_syndication::Feed::read_from(&atom[..]).unwrap_or_else(|e| panic!("{path}.atom: {e}"));
    }
}

both_backends!(the_demo_data_and_edge_cases_make_valid_feeds, |backend| async move {
    let Some(app) = TestApp::spawn(backend).await else { return };
    let demo = bantin::demo::articles(chrono::Utc::now(), chrono_tz::Asia::Ho_Chi_Minh).unwrap();
    post(&app, Value::from(demo)).await;
    let long = "<p>Đoạn văn rất dài về nông thôn mới. </p>".repeat(5_000);
    post(&app, json!([
        {"id": "e1", "title": "Kí tự điều khiển \u{1}\u{8} và emoji 🐃", "content_html": "<p>a\u{B}b</p>", "category": ["Biên"]},
        {"id": "e2", "title": "Không tác giả, không tóm tắt, không ảnh", "category": ["Biên"]},
        {"id": "e3", "title": "Rất dài", "content_html": long, "category": ["Biên", "Dài"], "author": "O'Brien & \"Hà\""},
        {"id": "e4", "title": "<script>alert('x')</script> ]]> &amp;", "content_html": "<style>p{}</style><svg onload=x()><p onclick=\"y\">z</p></svg>", "category": ["Biên"]}
    ])).await;
    feed_until(&app, "/feeds/all.rss", |f| f.entries.len() == 31).await;
    assert_every_feed_valid(&app).await;
    let body = app.get("/feeds/bien.atom").await.text().await.unwrap();
    assert!(
        !body.contains("<script") && !body.contains("onload") && !body.contains("onclick") && !body.contains("<style"),
        "{body}"
    );
    assert!(!body.contains('\u{1}') && !body.contains('\u{B}'));
});

/// Reads one HTTP/1.1 response with a Content-Length from `stream`, slowly: small reads
/// with pauses, so the server's socket fills and its sends resume part way through.
async fn read_response_slowly(stream: &mut tokio::net::TcpStream, buffered: &mut Vec<u8>) -> (String, Vec<u8>) {
    use tokio::io::AsyncReadExt;
    let mut chunk = [0u8; 2048];
    let head_end = loop {
        if let Some(end) = buffered.windows(4).position(|w| w == b"\r\n\r\n") {
            break end + 4;
        }
        let n = stream.read(&mut chunk).await.unwrap();
        assert!(n > 0, "the connection closed inside a response head");
        buffered.extend_from_slice(&chunk[..n]);
    };
    let head = String::from_utf8(buffered[..head_end].to_vec()).unwrap();
    let length: usize = head
        .lines()
        .find_map(|line| line.to_ascii_lowercase().strip_prefix("content-length:").map(|v| v.trim().parse().unwrap()))
        .expect("a Content-Length");
    buffered.drain(..head_end);
    let mut reads = 0;
    while buffered.len() < length {
        let n = stream.read(&mut chunk).await.unwrap();
        assert!(n > 0, "the connection closed after {} of {length} body bytes", buffered.len());
        buffered.extend_from_slice(&chunk[..n]);
        reads += 1;
        if reads % 8 == 0 {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    }
    let body = buffered.drain(..length).collect();
    (head, body)
}

both_backends!(large_feeds_reach_slow_and_pipelining_readers_whole, |backend| async move {
    let Some(app) = TestApp::spawn(backend).await else { return };
    // 40 articles of ~120 KB: a document larger than the most a socket buffer holds
    // (tcp_wmem's 4 MB), which the server sends from file-backed memory (sendfile), so
    // with a slow reader its sends stop part way and resume where they stopped.
    let paragraph = "Người dân xã Hòa Sơn phấn khởi khi con đường bê tông mới về tới thôn. ".repeat(1_500);
    for batch in 0..4 {
        let articles: Vec<Value> = (0..10)
            .map(|i| {
                json!({"id": format!("big-{batch}-{i}"), "title": format!("Bài dài số {batch}-{i}"),
                       "category": ["Tin Tức", "Kinh tế"], "content_html": format!("<p>{paragraph}</p>"),
                       "published_at": "2026-11-20T07:00:00+07:00"})
            })
            .collect();
        post(&app, Value::Array(articles)).await;
    }
    feed_until(&app, "/feeds/all.rss", |f| f.entries.len() == 40).await;
    let url = format!("{}/feeds/all.rss", app.address);
    let reference = app.client.get(&url).header("Accept-Encoding", "identity").send().await.unwrap();
    let reference = reference.bytes().await.unwrap();
    assert!(reference.len() > 4_500_000, "a large document: {} bytes", reference.len());
    // Compressing megabytes (brotli, unoptimised test build) and the compressor's pacing
    // after a burst take seconds: wait up to a minute.
    let mut gzip_seen = false;
    for _ in 0..600 {
        let gz = app.client.head(&url).header("Accept-Encoding", "gzip").send().await.unwrap();
        if gz.headers().get("content-encoding").is_some_and(|v| v == "gzip") {
            gzip_seen = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(gzip_seen, "the gzip variant is built");

    // A reader with a small receive buffer sends three requests at once on one connection.
    use tokio::io::AsyncWriteExt;
    let address: std::net::SocketAddr = app.address.trim_start_matches("http://").parse().unwrap();
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.set_recv_buffer_size(4096).unwrap();
    let mut stream = socket.connect(address).await.unwrap();
    let host = address.to_string();
    let requests = format!(
        "GET /feeds/all.rss HTTP/1.1\r\nHost: {host}\r\n\r\n\
         GET /feeds/all.rss HTTP/1.1\r\nHost: {host}\r\nAccept-Encoding: gzip\r\n\r\n\
         GET /feeds/all.rss HTTP/1.1\r\nHost: {host}\r\n\r\n"
    );
    stream.write_all(requests.as_bytes()).await.unwrap();
    let mut buffered = Vec::new();
    let (head, first) = read_response_slowly(&mut stream, &mut buffered).await;
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    assert_eq!(first, reference, "the identity body, byte for byte");
    let (head, second) = read_response_slowly(&mut stream, &mut buffered).await;
    assert!(head.to_ascii_lowercase().contains("content-encoding: gzip"), "{head}");
    let mut decoded = Vec::new();
    flate2::read::GzDecoder::new(&second[..]).read_to_end(&mut decoded).unwrap();
    assert_eq!(decoded, reference, "the gzip body decodes to the same document");
    let (_, third) = read_response_slowly(&mut stream, &mut buffered).await;
    assert_eq!(third, reference);
    assert!(buffered.is_empty(), "nothing after the third response");
});
