//! Background sources against real components on both backends: upstream feeds served by
//! a local HTTP server in the test (fixtures in tests/fixtures/sources: RSS with CDATA,
//! Atom with xhtml, JSON Feed, RSS 1.0 and 0.91, windows-1258 and ISO-8859-1 text,
//! malformed XML; and in code: ETag/304, 500, 503 with Retry-After, a slow server, an
//! oversized body, redirects), inbox folders with good, bad and half-written files, the
//! address guard, the API, the admin page and `bantin sources list`.

mod common;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::extract::{Path as UrlPath, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use bantin::app::Services;
use bantin::config::Config;
use bantin::domain::source::SourceSpec;
use bantin::sources::Sources;
use bantin::store::Store;
use bantin::store::sources::SourceState;
use chrono::Utc;
use common::{Backend, TestDatabase};

const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/sources");

/// The upstream web server: fixture files and misbehaving routes, counting requests.
#[derive(Clone, Default)]
struct Upstream {
    hits: Arc<Mutex<HashMap<String, usize>>>,
    not_modified: Arc<AtomicUsize>,
    /// Which version of `/etag.xml` is served.
    version: Arc<AtomicUsize>,
}

impl Upstream {
    async fn start() -> (Upstream, SocketAddr) {
        let upstream = Upstream::default();
        let app = Router::new()
            .route("/etag.xml", get(etag_feed))
            .route("/error", get(|| async { (StatusCode::INTERNAL_SERVER_ERROR, "boom").into_response() }))
            .route(
                "/busy",
                get(|| async {
                    (StatusCode::SERVICE_UNAVAILABLE, [(header::RETRY_AFTER, "7200")], "busy").into_response()
                }),
            )
            .route(
                "/slow",
                get(|| async {
                    tokio::time::sleep(Duration::from_secs(5)).await;
                    "late"
                }),
            )
            .route("/huge", get(|| async { ([(header::CONTENT_TYPE, "application/rss+xml")], "x".repeat(300_000)) }))
            .route("/to-file", get(|| async { redirect("file:///etc/passwd") }))
            .route("/to-metadata", get(|| async { redirect("http://169.254.169.254/latest/meta-data/") }))
            .route("/loop", get(|| async { redirect("/loop") }))
            .route("/mislabelled-1258.xml", get(mislabelled))
            .route("/gzip.xml", get(gzipped))
            .route("/{file}", get(fixture))
            .with_state(upstream.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        (upstream, address)
    }

    fn count(&self, path: &str) {
        *self.hits.lock().unwrap().entry(path.to_owned()).or_default() += 1;
    }

    fn hits(&self, path: &str) -> usize {
        self.hits.lock().unwrap().get(path).copied().unwrap_or(0)
    }
}

fn redirect(to: &'static str) -> Response {
    (StatusCode::FOUND, [(header::LOCATION, to)]).into_response()
}

async fn fixture(State(upstream): State<Upstream>, UrlPath(file): UrlPath<String>) -> Response {
    upstream.count(&file);
    let Ok(body) = std::fs::read(Path::new(FIXTURES).join(&file)) else {
        return StatusCode::NOT_FOUND.into_response();
    };
    let content_type = match file.as_str() {
        "feed.json" => "application/feed+json",
        "latin1.xml" => "application/rss+xml; charset=ISO-8859-1",
        "atom-xhtml.xml" => "application/atom+xml",
        _ => "application/rss+xml",
    };
    ([(header::CONTENT_TYPE, content_type)], body).into_response()
}

/// The windows-1258 file behind a server default that claims UTF-8.
async fn mislabelled() -> Response {
    let body = std::fs::read(Path::new(FIXTURES).join("legacy-1258.xml")).unwrap();
    ([(header::CONTENT_TYPE, "text/xml; charset=utf-8")], body).into_response()
}

/// The RSS 0.91 fixture compressed, as servers send it to clients that accept gzip.
async fn gzipped(headers: HeaderMap) -> Response {
    use std::io::Write;
    let accepted = headers.get(header::ACCEPT_ENCODING).and_then(|v| v.to_str().ok()).unwrap_or_default();
    assert!(accepted.contains("gzip"), "the poller asks for gzip: {accepted:?}");
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    encoder.write_all(&std::fs::read(Path::new(FIXTURES).join("rss091.xml")).unwrap()).unwrap();
    let body = encoder.finish().unwrap();
    ([(header::CONTENT_TYPE, "application/rss+xml"), (header::CONTENT_ENCODING, "gzip")], body).into_response()
}

/// A feed with validators: 304 when the client has the current version.
async fn etag_feed(State(upstream): State<Upstream>, headers: HeaderMap) -> Response {
    upstream.count("etag.xml");
    let version = upstream.version.load(Ordering::SeqCst);
    let etag = format!("\"v{version}\"");
    if headers.get(header::IF_NONE_MATCH).and_then(|v| v.to_str().ok()) == Some(etag.as_str()) {
        upstream.not_modified.fetch_add(1, Ordering::SeqCst);
        return StatusCode::NOT_MODIFIED.into_response();
    }
    let title = if version == 0 {
        "Điện lực thông báo lịch cắt điện"
    } else {
        "Điện lực đổi lịch cắt điện"
    };
    let body = format!(
        "<?xml version=\"1.0\"?><rss version=\"2.0\"><channel><title>Điện lực</title><link>https://dien.example/</link>\
         <description>x</description><item><title>{title}</title><guid>dl-1</guid>\
         <link>https://dien.example/lich.html</link><pubDate>Tue, 24 Nov 2026 07:00:00 +0700</pubDate>\
         <description>Lịch chi tiết.</description></item></channel></rss>"
    );
    ([(header::ETAG, etag), (header::LAST_MODIFIED, "Tue, 24 Nov 2026 00:00:00 GMT".to_owned())], body).into_response()
}

fn feed(name: &str, url: String, extra: &str) -> SourceSpec {
    let text = format!("kind = \"feed\"\nname = \"{name}\"\nurl = \"{url}\"\ninterval = \"1m\"\n{extra}");
    SourceSpec::from_toml(&text.parse().unwrap()).unwrap()
}

fn inbox(name: &str, path: &Path) -> SourceSpec {
    let text = format!("kind = \"inbox\"\nname = \"{name}\"\npath = \"{}\"\ninterval = \"1s\"\n", path.display());
    SourceSpec::from_toml(&text.parse().unwrap()).unwrap()
}

struct Setup {
    _db: TestDatabase,
    store: Arc<dyn Store>,
    sources: Arc<Sources>,
}

impl Setup {
    async fn new(backend: Backend, specs: Vec<SourceSpec>, configure: impl FnOnce(&mut Config)) -> Option<Setup> {
        let db = TestDatabase::new(backend).await?;
        let store = db.store().await;
        let mut config = common::test_config(&db);
        config.sources = specs;
        config.sources_allow_private = true;
        configure(&mut config);
        let services = Services::with_store(&config, store.clone());
        let sources = Arc::new(Sources::new(&config, store.clone(), services.ingestor).unwrap());
        sources.sync().await.unwrap();
        Some(Setup { _db: db, store, sources })
    }

    /// Polls every unpaused source, as if all were due.
    async fn poll(&self) -> usize {
        self.sources.run_due(Utc::now() + chrono::Duration::days(3)).await.unwrap()
    }

    async fn state(&self, name: &str) -> SourceState {
        self.store.source_states().await.unwrap().into_iter().find(|s| s.name == name).expect("a stored source")
    }

    async fn events(&self) -> usize {
        self.store.events_after(0, 1_000_000).await.unwrap().len()
    }
}

both_backends!(rss_with_cdata_duplicates_relative_links_and_entities, |backend| async move {
    let (_upstream, at) = Upstream::start().await;
    let spec = feed("kinh-te", format!("http://{at}/rss-cdata.xml"), "category = [\"Tin Tức\", \"Kinh tế\"]");
    let Some(setup) = Setup::new(backend, vec![spec], |_| {}).await else { return };
    assert_eq!(setup.poll().await, 1);

    let state = setup.state("kinh-te").await;
    assert_eq!(state.last_error, None);
    assert_eq!(
        (state.items_found, state.items_stored),
        (2, 2),
        "a repeated guid and a repeated link are one item each"
    );
    assert!(
        state.next_poll_at >= Utc::now() + chrono::Duration::minutes(29),
        "the feed's ttl of 30 minutes is honoured"
    );

    let a = setup.store.article("kinh-te:kt-0001").await.unwrap().expect("the guid is the id");
    assert_eq!(a.title, "Giá lúa tăng & nông dân phấn khởi");
    assert_eq!(a.url, format!("http://{at}/tin-tuc/kinh-te/gia-lua-tang.html"));
    assert_eq!(a.category.as_ref().unwrap().path, "tin-tuc/kinh-te");
    assert_eq!(a.tags, vec!["Nông nghiệp"]);
    assert_eq!(a.image.as_deref(), Some("https://cdn.hiephoa.example/lua.jpg"));
    assert_eq!(a.summary.as_deref(), Some("Giá lúa tăng mạnh."));
    assert!(a.content_html.contains(&format!("src=\"http://{at}/anh/lua.jpg\"")), "{}", a.content_html);
    assert!(
        a.content_html.contains(&format!("href=\"http://{at}/tin-tuc/kinh-te/chi-tiet.html\"")),
        "{}",
        a.content_html
    );
    assert!(!a.content_html.contains("script"), "{}", a.content_html);
    assert_eq!(a.published_at.to_rfc3339(), "2026-11-25T01:00:00+00:00");

    let b = setup.store.article("kinh-te:https://hiephoa.example/tin-tuc/kinh-te/tra-vinh.html").await.unwrap();
    let b = b.expect("an item without a guid is known by its link");
    assert_eq!(b.title, "Trà Vinh: &amp; giữ nguyên, AT&T", "entities are decoded once");
    assert!(b.content_html.contains("&lt;b&gt;") && !b.content_html.contains("<b>"), "{}", b.content_html);
    assert!(Utc::now() - b.published_at < chrono::Duration::minutes(5), "no date: the time it was first stored");

    // Polled again unchanged: nothing is written.
    let events = setup.events().await;
    setup.poll().await;
    assert_eq!(setup.events().await, events);
    let state = setup.state("kinh-te").await;
    assert_eq!((state.items_found, state.items_stored), (2, 0));
    let again = setup.store.article("kinh-te:https://hiephoa.example/tin-tuc/kinh-te/tra-vinh.html").await.unwrap();
    assert_eq!(again.unwrap().published_at, b.published_at, "an undated item keeps its first time");
});

both_backends!(atom_json_feed_rss1_and_rss091_are_read, |backend| async move {
    let (_upstream, at) = Upstream::start().await;
    let specs = vec![
        feed("van-hoa", format!("http://{at}/atom-xhtml.xml"), "map = \"item-categories\""),
        feed("the-thao", format!("http://{at}/feed.json"), "map = \"item-categories\"\ncategory = [\"Thể thao\"]"),
        feed("thong-bao", format!("http://{at}/rss1.rdf"), ""),
        feed("tin-cu", format!("http://{at}/rss091.xml"), ""),
        feed("nen-gzip", format!("http://{at}/gzip.xml"), ""),
    ];
    let Some(setup) = Setup::new(backend, specs, |_| {}).await else { return };
    assert_eq!(setup.poll().await, 5);
    for name in ["van-hoa", "the-thao", "thong-bao", "tin-cu", "nen-gzip"] {
        assert_eq!(setup.state(name).await.last_error, None, "{name}");
    }

    let atom = setup.store.article("van-hoa:tag:hiephoa.example,2026:le-hoi").await.unwrap().unwrap();
    assert_eq!(atom.title, "Lễ hội đình Lỗ Hạnh & du khách", "an html title becomes text, decoded once");
    assert_eq!(atom.url, format!("http://{at}/van-hoa/le-hoi-dinh-lo-hanh.html"), "xml:base and the feed URL");
    assert_eq!(atom.category.as_ref().unwrap().path, "van-hoa/le-hoi");
    assert_eq!(atom.author.as_ref().unwrap().name, "Đỗ Thu Hà");
    assert!(atom.content_html.contains("<strong>lễ hội</strong>"), "{}", atom.content_html);
    assert!(atom.content_html.contains(&format!("src=\"http://{at}/van-hoa/anh/kieu.jpg\"")), "{}", atom.content_html);
    let undated = setup.store.article("van-hoa:tag:hiephoa.example,2026:khong-ngay").await.unwrap().unwrap();
    assert_eq!(undated.content_html, "<p>Không có ngày đăng.</p>");

    let json = setup.store.article("the-thao:tt-1").await.unwrap().unwrap();
    assert_eq!(json.category.as_ref().unwrap().path, "the-thao/bong-da", "the item's first tag is its category path");
    assert_eq!(json.tags, vec!["Phong trào"]);
    let untagged = setup.store.article("the-thao:tt-2").await.unwrap().unwrap();
    assert_eq!(untagged.category.as_ref().unwrap().path, "the-thao", "the configured category when the item has none");
    assert_eq!(untagged.url, format!("http://{at}/the-thao/cau-long.html"));

    let rss1 = setup.store.article("thong-bao:https://hiephoa.example/thong-bao/lich-tiep-dan.html").await.unwrap();
    assert_eq!(rss1.unwrap().title, "Lịch tiếp công dân tháng 12");
    let rss091 = setup.store.article("tin-cu:https://hiephoa.example/tin-tuc/cau-moi.html").await.unwrap();
    assert_eq!(rss091.unwrap().title, "Khánh thành cầu mới");
    let gzip = setup.store.article("nen-gzip:https://hiephoa.example/tin-tuc/cau-moi.html").await.unwrap();
    assert!(gzip.unwrap().content_html.contains("Cây cầu nối hai xã."), "a gzip body is decompressed");
});

both_backends!(legacy_encodings_are_decoded, |backend| async move {
    let (_upstream, at) = Upstream::start().await;
    let specs = vec![
        feed("bac-giang", format!("http://{at}/legacy-1258.xml"), ""),
        feed("bac-giang-utf8-header", format!("http://{at}/mislabelled-1258.xml"), ""),
        feed("cafe", format!("http://{at}/latin1.xml"), ""),
    ];
    let Some(setup) = Setup::new(backend, specs, |_| {}).await else { return };
    setup.poll().await;
    for name in ["bac-giang", "bac-giang-utf8-header"] {
        let article = setup.store.article(&format!("{name}:bg-1258-1")).await.unwrap().expect(name);
        assert_eq!(article.title, "Người dân Việt Nam đón Tết ấm áp", "{name}: windows-1258, composed to NFC");
        assert!(article.content_html.contains("văn hóa được tổ chức"), "{}", article.content_html);
    }
    let cafe = setup.store.article("cafe:cafe-1").await.unwrap().unwrap();
    assert_eq!(cafe.title, "Crème brûlée à la française");
});

both_backends!(conditional_get_costs_nothing_and_changes_update_the_article, |backend| async move {
    let (upstream, at) = Upstream::start().await;
    let Some(setup) = Setup::new(backend, vec![feed("dien-luc", format!("http://{at}/etag.xml"), "")], |_| {}).await
    else {
        return;
    };
    setup.poll().await;
    assert_eq!(setup.state("dien-luc").await.items_stored, 1);
    let events = setup.events().await;

    setup.poll().await;
    assert_eq!(upstream.not_modified.load(Ordering::SeqCst), 1, "the stored ETag was sent back");
    let state = setup.state("dien-luc").await;
    assert_eq!((state.items_found, state.items_stored, state.last_error.as_deref()), (0, 0, None));
    assert_eq!(setup.events().await, events, "a 304 writes no article and no event");

    upstream.version.store(1, Ordering::SeqCst);
    setup.poll().await;
    let article = setup.store.article("dien-luc:dl-1").await.unwrap().unwrap();
    assert_eq!(article.title, "Điện lực đổi lịch cắt điện", "changed content updates the article");
    assert_eq!(setup.events().await, events + 1, "one update event");
    assert_eq!(upstream.hits("etag.xml"), 3);
});

both_backends!(each_bad_source_has_a_clear_error_and_the_others_go_on, |backend| async move {
    let (_upstream, at) = Upstream::start().await;
    let specs = vec![
        feed("hong", format!("http://{at}/malformed.xml"), ""),
        feed("loi-500", format!("http://{at}/error"), ""),
        feed("ban", format!("http://{at}/busy"), ""),
        feed("cham", format!("http://{at}/slow"), ""),
        feed("qua-lon", format!("http://{at}/huge"), ""),
        feed("sang-file", format!("http://{at}/to-file"), ""),
        feed("sang-metadata", format!("http://{at}/to-metadata"), ""),
        feed("vong-lap", format!("http://{at}/loop"), ""),
        feed("metadata", "http://169.254.169.254/latest/meta-data/".into(), ""),
        feed("khong-co", format!("http://{at}/khong-co.xml"), ""),
        feed("tot", format!("http://{at}/rss091.xml"), ""),
    ];
    let Some(setup) = Setup::new(backend, specs, |config| {
        config.sources_timeout_seconds = 1;
        config.sources_max_bytes = 100_000;
    })
    .await
    else {
        return;
    };
    assert_eq!(setup.poll().await, 11);
    let expected = [
        ("hong", "not a feed"),
        ("loi-500", "HTTP 500"),
        ("ban", "HTTP 503"),
        ("cham", "time limit"),
        ("qua-lon", "larger than the limit of 100000 bytes"),
        ("sang-file", "only http and https"),
        ("sang-metadata", "169.254.169.254 is refused"),
        ("vong-lap", "redirects"),
        ("metadata", "link-local or cloud metadata"),
        ("khong-co", "HTTP 404"),
    ];
    for (name, phrase) in expected {
        let state = setup.state(name).await;
        let error = state.last_error.clone().unwrap_or_default();
        assert!(error.contains(phrase), "{name}: {error:?} should say {phrase:?}");
        assert_eq!(state.consecutive_failures, 1, "{name}");
        assert!(state.last_success_at.is_none(), "{name}");
    }
    let busy = setup.state("ban").await;
    assert!(busy.next_poll_at >= Utc::now() + chrono::Duration::seconds(7000), "Retry-After: 7200 is honoured");
    let good = setup.state("tot").await;
    assert_eq!((good.last_error, good.items_stored), (None, 1));
    assert!(setup.store.article("tot:https://hiephoa.example/tin-tuc/cau-moi.html").await.unwrap().is_some());
});

both_backends!(private_addresses_are_refused_unless_allowed, |backend| async move {
    let (upstream, at) = Upstream::start().await;
    let specs = vec![
        feed("loopback", format!("http://{at}/rss091.xml"), ""),
        feed("localhost", format!("http://localhost:{}/rss091.xml", at.port()), ""),
    ];
    let Some(setup) = Setup::new(backend, specs, |config| config.sources_allow_private = false).await else { return };
    setup.poll().await;
    let literal = setup.state("loopback").await.last_error.unwrap_or_default();
    assert!(literal.contains("127.0.0.1 is refused: a private, loopback"), "{literal}");
    let resolved = setup.state("localhost").await.last_error.unwrap_or_default();
    assert!(resolved.contains("localhost resolves to") && resolved.contains("refused"), "{resolved}");
    assert_eq!(upstream.hits("rss091.xml"), 0, "no request reached the server");
});

both_backends!(failures_back_off_then_pause_until_resumed, |backend| async move {
    let (_upstream, at) = Upstream::start().await;
    let Some(setup) =
        Setup::new(backend, vec![feed("loi", format!("http://{at}/error"), "")], |c| c.sources_max_failures = 3).await
    else {
        return;
    };
    setup.poll().await;
    let first = setup.state("loi").await;
    assert!(first.next_poll_at >= Utc::now() + chrono::Duration::seconds(110), "twice the 1m interval");
    setup.poll().await;
    let second = setup.state("loi").await;
    assert!(second.next_poll_at >= Utc::now() + chrono::Duration::seconds(230), "four times the interval");
    assert!(!second.paused);
    setup.poll().await;
    let third = setup.state("loi").await;
    assert!(third.paused, "paused after 3 failures in a row");
    assert_eq!((third.paused_reason.as_deref(), third.consecutive_failures), (Some("failures"), 3));
    assert_eq!(setup.poll().await, 0, "a paused source is not polled");

    assert!(setup.sources.set_paused("loi", false).await.unwrap());
    let resumed = setup.state("loi").await;
    assert!(!resumed.paused && resumed.consecutive_failures == 0);
    assert_eq!(setup.poll().await, 1, "polled again once resumed");
    assert!(!setup.sources.set_paused("khong-co", true).await.unwrap(), "an unknown source");
});

both_backends!(inbox_ingests_settled_files_and_sets_bad_ones_aside, |backend| async move {
    let folder = tempfile::tempdir().unwrap();
    let dir = folder.path().join("inbox");
    let Some(setup) = Setup::new(backend, vec![inbox("hop-thu", &dir)], |_| {}).await else { return };
    std::fs::create_dir_all(&dir).unwrap();
    let good = r#"{"id": "inbox-1", "title": "Bài từ hộp thư", "category": ["Tin Tức"], "content_text": "Nội dung."}"#;
    std::fs::write(dir.join("good.json"), good).unwrap();
    std::fs::write(dir.join("bad.json"), "{\"id\": \"inbox-2\", \"title\": ").unwrap();
    std::fs::write(dir.join("mixed.jsonl"), "{\"id\": \"inbox-3\", \"title\": \"Dòng tốt\"}\n{\"id\": \"inbox-4\"}\n")
        .unwrap();
    std::fs::write(dir.join("le-hoi.md"), "---\ntitle: Lễ hội làng\ncategory: [Đời sống]\n---\nNội dung **đậm**.\n")
        .unwrap();
    let whole = r#"{"id": "inbox-5", "title": "Tệp ghi dở"}"#;
    std::fs::write(dir.join("partial.json"), &whole[..12]).unwrap();
    std::fs::write(dir.join(".hidden.json"), good).unwrap();
    std::fs::write(dir.join("upload.json.part"), good).unwrap();

    setup.poll().await;
    assert!(setup.store.article("inbox-1").await.unwrap().is_none(), "a file seen once may still be growing");
    assert!(dir.join("good.json").exists());

    std::fs::write(dir.join("partial.json"), &whole[..25]).unwrap();
    setup.poll().await;
    assert!(setup.store.article("inbox-1").await.unwrap().is_some());
    assert!(setup.store.article("inbox-3").await.unwrap().is_some(), "the good line of a mixed file");
    assert_eq!(
        setup.store.article("le-hoi").await.unwrap().unwrap().content_html,
        "<p>Nội dung <strong>đậm</strong>.</p>"
    );
    assert!(dir.join("processed/good.json").exists() && dir.join("processed/le-hoi.md").exists());
    assert!(dir.join("failed/bad.json").exists());
    let bad_error = std::fs::read_to_string(dir.join("failed/bad.json.error.txt")).unwrap();
    assert!(bad_error.contains("malformed JSON"), "{bad_error}");
    let mixed_error = std::fs::read_to_string(dir.join("failed/mixed.jsonl.error.txt")).unwrap();
    assert!(mixed_error.contains("line 2 (id inbox-4): title: is required"), "{mixed_error}");
    assert!(dir.join("partial.json").exists(), "still growing between the scans: left alone");
    let state = setup.state("hop-thu").await;
    assert_eq!((state.items_found, state.items_stored), (4, 3), "good, mixed (2 lines) and le-hoi; bad.json has none");
    let warning = state.last_error.unwrap_or_default();
    assert!(warning.contains("2 file(s) moved to failed/") && warning.contains("bad.json"), "{warning}");
    assert_eq!(state.consecutive_failures, 0, "bad files are not the inbox failing");

    std::fs::write(dir.join("partial.json"), whole).unwrap();
    setup.poll().await;
    setup.poll().await;
    assert_eq!(setup.store.article("inbox-5").await.unwrap().unwrap().title, "Tệp ghi dở");
    assert!(dir.join("processed/partial.json").exists());
    assert!(dir.join(".hidden.json").exists() && dir.join("upload.json.part").exists(), "temporary names are not read");

    // The same name again goes beside the first copy.
    std::fs::write(dir.join("good.json"), good).unwrap();
    setup.poll().await;
    setup.poll().await;
    assert!(dir.join("processed/good-2.json").exists());
});

both_backends!(an_inbox_that_cannot_be_used_is_a_failure_in_its_state, |backend| async move {
    let folder = tempfile::tempdir().unwrap();
    let file = folder.path().join("not-a-folder");
    std::fs::write(&file, "x").unwrap();
    let Some(setup) = Setup::new(backend, vec![inbox("hong", &file)], |_| {}).await else { return };
    setup.poll().await;
    let state = setup.state("hong").await;
    assert_eq!(state.consecutive_failures, 1);
    assert!(state.last_error.unwrap_or_default().contains("cannot create"));
});

/// The real service with one source, fetching from the local upstream.
async fn service_with(backend: Backend, spec: SourceSpec) -> Option<common::TestApp> {
    common::TestApp::spawn_with(backend, |config| {
        config.sources = vec![spec];
        config.sources_allow_private = true;
    })
    .await
}

/// The page at `url` once it holds `needle` (the service polls in the background), or
/// as it is after ten seconds.
async fn wait_for_page(client: &reqwest::Client, url: &str, cookie: Option<&str>, needle: &str) -> String {
    let mut page = String::new();
    for _ in 0..100 {
        let request = client.get(url);
        let request = match cookie {
            Some(cookie) => request.header("Cookie", cookie),
            None => request,
        };
        page = request.send().await.unwrap().text().await.unwrap_or_default();
        if page.contains(needle) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    page
}

both_backends!(the_service_polls_publishes_and_shows_its_sources, |backend| async move {
    let (_upstream, at) = Upstream::start().await;
    let spec = feed("kinh-te", format!("http://{at}/rss-cdata.xml"), "category = [\"Tin Tức\", \"Kinh tế\"]");
    let Some(app) = service_with(backend, spec).await else { return };
    // The article appears in the category feed like one pushed to the API.
    let feed =
        wait_for_page(&app.client, &format!("{}/feeds/tin-tuc/kinh-te.json", app.address), None, "nông dân").await;
    assert!(feed.contains("Giá lúa tăng"), "the upstream item reached the feed: {feed}");

    let response = app.client.get(format!("{}/api/v1/sources", app.address)).send().await.unwrap();
    assert_eq!(response.status(), 401, "the API needs a token");
    let body: serde_json::Value = app
        .client
        .get(format!("{}/api/v1/sources", app.address))
        .bearer_auth(&app.token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let source = &body["sources"][0];
    assert_eq!(source["name"], "kinh-te");
    assert_eq!(source["kind"], "feed");
    assert_eq!(source["category"], "tin-tuc/kinh-te");
    assert_eq!(source["state"]["items_found"], 2);
    assert_eq!(source["state"]["paused"], false);
    assert!(source["state"].get("etag").is_none(), "validators stay inside");
});

both_backends!(admins_see_sources_and_pause_them_with_csrf, |backend| async move {
    let (_upstream, at) = Upstream::start().await;
    let spec = feed("kinh-te", format!("http://{at}/error"), "");
    let Some(app) = service_with(backend, spec).await else { return };
    let password = "mật khẩu đủ dài";
    let hash = bantin::domain::admin::hash_password(password).unwrap();
    app.store.create_admin("lan", &hash, Utc::now()).await.unwrap();
    let client = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
    let login = client
        .post(format!("{}/admin/login", app.address))
        .form(&[("username", "lan"), ("password", password)])
        .send()
        .await
        .unwrap();
    assert_eq!(login.status(), 303);
    let cookie = login.headers()[header::SET_COOKIE].to_str().unwrap().split(';').next().unwrap().to_owned();

    let anonymous = client.get(format!("{}/admin/sources", app.address)).send().await.unwrap();
    assert_eq!(anonymous.status(), 303, "anonymous: to the login page");
    let page = wait_for_page(&client, &format!("{}/admin/sources", app.address), Some(&cookie), "HTTP 500").await;
    assert!(page.contains("kinh-te") && page.contains("HTTP 500"), "the state and its last error: {page}");
    let csrf_at = page.find("name=\"csrf\" value=\"").unwrap() + 19;
    let csrf = page[csrf_at..].split('"').next().unwrap().to_owned();

    let post = |path: &'static str, csrf: Option<String>| {
        let request = client.post(format!("{}{path}", app.address)).header("Cookie", &cookie);
        let request = match csrf {
            Some(csrf) => request.form(&[("csrf", csrf)]),
            None => request,
        };
        async move { request.send().await.unwrap().status() }
    };
    assert_eq!(post("/admin/sources/kinh-te/pause", None).await, 403, "no CSRF token");
    assert_eq!(post("/admin/sources/kinh-te/pause", Some(csrf.clone())).await, 303);
    let state = app.store.source_states().await.unwrap().remove(0);
    assert_eq!((state.paused, state.paused_reason.as_deref()), (true, Some("admin")));
    assert_eq!(post("/admin/sources/khong-co/resume", Some(csrf.clone())).await, 404);
    assert_eq!(post("/admin/sources/kinh-te/resume", Some(csrf)).await, 303);
    assert!(!app.store.source_states().await.unwrap().remove(0).paused);
});

#[test]
fn sources_list_prints_the_configured_sources() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("bantin.toml"),
        "[[sources]]\nkind = \"inbox\"\npath = \"data/inbox\"\n\n[[sources]]\nkind = \"feed\"\n\
         url = \"https://example.vn/rss/kinh-te.rss\"\ncategory = [\"Tin Tức\", \"Kinh tế\"]\ninterval = \"5m\"\n",
    )
    .unwrap();
    let bantin = |args: &[&str]| {
        let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_bantin"));
        cmd.current_dir(dir.path()).args(args).stdin(std::process::Stdio::null());
        for (key, _) in std::env::vars().filter(|(k, _)| k.starts_with("BANTIN_")) {
            cmd.env_remove(key);
        }
        cmd.output().unwrap()
    };
    let out = bantin(&["sources", "list"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let table = String::from_utf8(out.stdout).unwrap();
    let lines: Vec<&str> = table.lines().collect();
    assert!(lines[0].starts_with("NAME") && lines[0].contains("LAST ERROR"), "{table}");
    assert!(lines[1].starts_with("inbox-data-inbox") && lines[1].contains("never run"), "{table}");
    assert!(lines[2].starts_with("example-vn-rss-kinh-te-rss") && lines[2].contains("https://example.vn"), "{table}");

    let json = bantin(&["sources", "list", "--json"]);
    let value: serde_json::Value = serde_json::from_slice(&json.stdout).unwrap();
    assert_eq!(value["sources"][1]["interval_seconds"], 300);

    let out = bantin(&["sources", "pause", "khong-co"]);
    assert_eq!(out.status.code(), Some(2));
    let out = bantin(&["sources", "pause", "inbox-data-inbox"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let table = String::from_utf8(bantin(&["sources", "list"]).stdout).unwrap();
    assert!(table.lines().nth(1).unwrap().contains("paused (admin)"), "{table}");

    std::fs::write(dir.path().join("bantin.toml"), "[[sources]]\nkind = \"feed\"\nurl = \"ftp://x.vn/a\"\n").unwrap();
    let out = bantin(&["sources", "list"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("sources[1].url in bantin.toml"));
}
