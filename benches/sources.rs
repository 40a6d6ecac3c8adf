//! Sources benchmark: 1,000 upstream RSS feeds of 20 items each, served by a local HTTP
//! server in a child process (this binary with the argument `serve`), polled by bantin's
//! source poller into a fresh SQLite database: wall time and CPU (user + system, of the
//! poller's process only) for the first full poll, which stores 20,000 articles, and for
//! a second poll where every feed answers 304 to the stored ETag.
//!
//! Settings (environment): `BENCH_FEEDS` (default 1000), `BENCH_ITEMS` (default 20).
//! Run with `cargo bench --bench sources` or `bash bench/sources.sh`.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use bantin::app::Services;
use bantin::config::Config;
use bantin::domain::source::SourceSpec;
use bantin::sources::Sources;
use chrono::{Duration as Span, TimeZone, Utc};

#[path = "support/vietnamese.rs"]
mod vietnamese;
use vietnamese::{AUTHORS, TITLES, content};

fn setting(name: &str, default: usize) -> usize {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

/// One feed document: `items` items of about 1.5 KB of HTML each.
fn feed_document(feed: usize, items: usize) -> String {
    let mut xml = format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<rss version=\"2.0\" \
         xmlns:content=\"http://purl.org/rss/1.0/modules/content/\"><channel>\
         <title>Trang tin số {feed}</title><link>https://xa-{feed}.example/</link>\
         <description>Tin tức của xã số {feed}</description>\n"
    );
    let start = Utc.with_ymd_and_hms(2026, 11, 1, 0, 0, 0).unwrap();
    for i in 0..items {
        let n = feed * items + i;
        let published = start + Span::minutes(n as i64);
        xml.push_str(&format!(
            "<item><title>{} ({feed}-{i})</title><link>/tin-tuc/bai-{i}.html</link>\
             <guid isPermaLink=\"false\">xa-{feed}-bai-{i}</guid><pubDate>{}</pubDate>\
             <dc:creator xmlns:dc=\"http://purl.org/dc/elements/1.1/\">{}</dc:creator>\
             <category>Tin xã</category><description><![CDATA[<p>Tóm tắt bài {i}.</p>]]></description>\
             <content:encoded><![CDATA[{}]]></content:encoded></item>\n",
            TITLES[n % TITLES.len()],
            published.to_rfc2822(),
            AUTHORS[n % AUTHORS.len()],
            content(n, 1_500),
        ));
    }
    xml.push_str("</channel></rss>\n");
    xml
}

/// The upstream server: prints its address on stdout, then serves until killed.
fn serve(feeds: usize, items: usize) {
    let runtime = tokio::runtime::Runtime::new().expect("a runtime");
    runtime.block_on(async {
        let documents: Arc<Vec<String>> = Arc::new((0..feeds).map(|f| feed_document(f, items)).collect());
        let app = Router::new().route("/feeds/{n}", get(document)).with_state(documents);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("a port");
        println!("{}", listener.local_addr().expect("an address"));
        axum::serve(listener, app).await.expect("serve");
    });
}

async fn document(State(documents): State<Arc<Vec<String>>>, Path(n): Path<String>, headers: HeaderMap) -> Response {
    let Some(body) = n.trim_end_matches(".xml").parse::<usize>().ok().and_then(|n| documents.get(n)) else {
        return StatusCode::NOT_FOUND.into_response();
    };
    let etag = format!("\"{n}-v1\"");
    if headers.get(header::IF_NONE_MATCH).and_then(|v| v.to_str().ok()) == Some(etag.as_str()) {
        return StatusCode::NOT_MODIFIED.into_response();
    }
    ([(header::CONTENT_TYPE, "application/rss+xml; charset=utf-8".to_owned()), (header::ETAG, etag)], body.clone())
        .into_response()
}

/// CPU time (user + system) this process has used so far.
fn cpu_time() -> Duration {
    let mut usage = std::mem::MaybeUninit::<libc::rusage>::zeroed();
    // SAFETY: getrusage fills the struct it is given.
    let usage = unsafe {
        libc::getrusage(libc::RUSAGE_SELF, usage.as_mut_ptr());
        usage.assume_init()
    };
    let time = |t: libc::timeval| Duration::from_secs(t.tv_sec as u64) + Duration::from_micros(t.tv_usec as u64);
    time(usage.ru_utime) + time(usage.ru_stime)
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let feeds = setting("BENCH_FEEDS", 1_000);
    let items = setting("BENCH_ITEMS", 20);
    if args.iter().any(|a| a == "serve") {
        serve(feeds, items);
        return;
    }
    let mut server = Command::new(std::env::current_exe().expect("this binary"))
        .arg("serve")
        .stdout(Stdio::piped())
        .spawn()
        .expect("start the upstream server");
    let mut line = String::new();
    BufReader::new(server.stdout.take().expect("its stdout")).read_line(&mut line).expect("its address");
    let address = line.trim().to_owned();

    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("a runtime");
    runtime.block_on(poll_twice(&address, feeds, items));
    let _ = server.kill();
    let _ = server.wait();
}

async fn poll_twice(address: &str, feeds: usize, items: usize) {
    let dir = tempfile::tempdir().expect("a temp dir");
    let mut config = Config::defaults();
    config.database_url =
        bantin::config::DatabaseUrl::Sqlite(format!("sqlite://{}", dir.path().join("bench.db").display()));
    config.sources_allow_private = true;
    config.sources = (0..feeds)
        .map(|n| {
            let text = format!("kind = \"feed\"\nname = \"xa-{n}\"\nurl = \"http://{address}/feeds/{n}.xml\"\ninterval = \"1h\"\ncategory = [\"Tin xã\"]");
            SourceSpec::from_toml(&text.parse().expect("TOML")).expect("a source")
        })
        .collect();
    let services = Services::open(&config).await.expect("the database");
    let store = services.store.clone();
    let sources = Arc::new(Sources::new(&config, store.clone(), services.ingestor).expect("the poller"));
    sources.sync().await.expect("sync");
    println!("sources bench: {feeds} feeds x {items} items, SQLite, {} polls at once", 16);

    for (round, label) in [(0, "first poll (all new)"), (2, "second poll (all 304)")] {
        let now = Utc::now() + Span::hours(round);
        let (cpu, started) = (cpu_time(), Instant::now());
        let polled = sources.run_due(now).await.expect("poll");
        let (wall, cpu) = (started.elapsed(), cpu_time() - cpu);
        let states = store.source_states().await.expect("states");
        let failed: Vec<_> = states.iter().filter(|s| s.last_error.is_some()).collect();
        let found: i64 = states.iter().map(|s| s.items_found).sum();
        let stored: i64 = states.iter().map(|s| s.items_stored).sum();
        assert_eq!(polled, feeds, "every feed is polled");
        assert!(failed.is_empty(), "failed sources: {:?}", failed.first());
        println!(
            "{label}: {feeds} feeds in {:.2} s wall ({:.0} feeds/s), CPU {:.2} s ({:.0}% of one core), \
             {found} items read, {stored} stored",
            wall.as_secs_f64(),
            feeds as f64 / wall.as_secs_f64(),
            cpu.as_secs_f64(),
            100.0 * cpu.as_secs_f64() / wall.as_secs_f64(),
        );
    }
    let articles = store.events_after(0, i64::MAX).await.expect("events").len();
    println!("publication events written: {articles}");
}
