//! Feed freshness benchmark against the real `bantin serve` binary on SQLite.
//!
//! For each archive size (default 1,000 and 100,000 articles): a fresh SQLite database in
//! a temp dir, `bantin token create`, `bantin serve` on 127.0.0.1, the archive preloaded
//! through the batch API (500 articles of ~3 KB Vietnamese HTML per request, 2 in flight,
//! 12 two-level categories, 20 authors, all published in the past), then a wait until
//! the feed builder has settled (documents stable, server CPU idle). Then, SAMPLES times:
//! POST one new published article (category ["Tin Tức", "Kinh tế"], one of the authors)
//! and measure from its 2xx response until every affected document — all, tin-tuc,
//! tin-tuc/kinh-te and authors/<slug>, each as .rss, .atom and .json — contains it (its
//! source id ends the tag: URI id). The 12 documents are polled concurrently about every
//! millisecond with If-None-Match (304 until the document changes), so polling stays
//! cheap for the server.
//!
//! Targets (from the issue): p99 ≤ 50 ms on SQLite, and the same cost for an archive of
//! 1,000 as of 100,000 articles.
//!
//! Settings (environment):
//! - `BENCH_ARCHIVE`: archive sizes, comma separated (default "1000,100000").
//! - `BENCH_SAMPLES` (default 200), `BENCH_GAP_MS` (pause after each sample, default 1000:
//!   isolated publications; shorter gaps overlap a publication with the compression of
//!   the previous one's documents).
//! - `BENCH_CONTENT_BYTES` (default 3000: /feeds/all.rss is then about 200 KB).
//! - `BENCH_MODE=serve`: start the server with `BENCH_ARCHIVE` (default 1000) articles in
//!   `BENCH_DIR` (required), listening on `BENCH_LISTEN` (default 127.0.0.1:0), wait
//!   until /feeds/all.rss is stable, print `address=`, `pid=`, `feed=`, `bytes=` and
//!   `etag=` lines and exit, leaving the server running (the caller stops it). Used by
//!   `bench/feeds.sh` for the wrk comparison with nginx.
//!
//! Run with `cargo bench --bench feeds_live` (or `bash bench/feeds.sh` for the whole set).

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bantin::domain::Slug;
use chrono::{SecondsFormat, Utc};
use serde_json::{Value, json};
use tokio::sync::Semaphore;
use tokio::task::JoinSet;

#[path = "support/vietnamese.rs"]
mod vietnamese;
use vietnamese::{AUTHORS, CATEGORIES, SENTENCES, TITLES, content};

const BIN: &str = env!("CARGO_BIN_EXE_bantin");
/// Largest request body the server takes is 2 MB; batches stay under this.
const MAX_BODY: usize = 1_800_000;

const TAGS: [&str; 8] =
    ["nông thôn mới", "giao thông", "môi trường", "doanh nghiệp", "lúa gạo", "lễ hội", "việc làm", "khuyến nông"];

fn env_usize(name: &str, default: usize) -> usize {
    match std::env::var(name) {
        Ok(v) if !v.trim().is_empty() => {
            v.trim().replace('_', "").parse().unwrap_or_else(|_| panic!("{name}={v:?} is not a number"))
        }
        _ => default,
    }
}

fn article(
    source_id: &str,
    n: usize,
    category: [&str; 2],
    author: &str,
    published_at: Option<String>,
    bytes: usize,
) -> Value {
    let mut v = json!({
        "id": source_id,
        "title": format!("{} ({})", TITLES[n % TITLES.len()], n),
        "category": category,
        "author": author,
        "summary": SENTENCES[n % SENTENCES.len()],
        "content_html": content(n, bytes),
        "tags": [TAGS[n % TAGS.len()], TAGS[(n + 3) % TAGS.len()]],
    });
    if let Some(t) = published_at {
        v["published_at"] = json!(t);
    }
    v
}

/// A `bantin` command with a clean environment pointed at `dir`.
fn bantin(dir: &Path, listen: &str) -> Command {
    with_env(Command::new(BIN), dir, listen)
}

/// `bantin` run through `setpriv --pdeathsig TERM` when available, so the server gets
/// SIGTERM if this process dies before stopping it (a killed or timed-out run).
fn tied_bantin(dir: &Path, listen: &str) -> Command {
    const SETPRIV: &str = "/usr/bin/setpriv";
    if !Path::new(SETPRIV).exists() {
        return bantin(dir, listen);
    }
    let mut cmd = Command::new(SETPRIV);
    cmd.args(["--pdeathsig", "TERM", BIN]);
    with_env(cmd, dir, listen)
}

fn with_env(mut cmd: Command, dir: &Path, listen: &str) -> Command {
    cmd.current_dir(dir);
    for (key, _) in std::env::vars() {
        if key.starts_with("BANTIN_") || key == "RUST_LOG" {
            cmd.env_remove(key);
        }
    }
    cmd.env("BANTIN_DATA_DIR", dir.join("data"))
        .env("BANTIN_DATABASE_URL", format!("sqlite://{}", dir.join("data/bantin.db").display()))
        .env("BANTIN_LISTEN", listen)
        .env("BANTIN_FEED_ITEMS", "50");
    if !listen.ends_with(":0") {
        cmd.env("BANTIN_BASE_URL", format!("http://{listen}"));
    }
    cmd
}

struct Server {
    child: Child,
    address: String,
    token: String,
    client: reqwest::Client,
}

impl Server {
    /// Creates a token, starts `serve` with its log in `dir/server.log`, and waits for the
    /// address it logs. A `tied` server is stopped when this process dies.
    fn start(dir: &Path, listen: &str, tied: bool) -> Server {
        let out = bantin(dir, listen)
            .args(["token", "create", "--name", "bench"])
            .stdin(Stdio::null())
            .output()
            .expect("run bantin token create");
        assert!(out.status.success(), "token create failed: {}", String::from_utf8_lossy(&out.stderr));
        let token = String::from_utf8_lossy(&out.stdout).trim().to_owned();
        let log_path = dir.join("server.log");
        let log = std::fs::File::create(&log_path).expect("create the server log");
        let mut command = if tied { tied_bantin(dir, listen) } else { bantin(dir, listen) };
        let child = command
            .args(["--log-format", "json", "serve"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("start bantin serve");
        let started = Instant::now();
        let address = loop {
            let text = std::fs::read_to_string(&log_path).unwrap_or_default();
            let found = text.lines().find_map(|line| {
                let v: Value = serde_json::from_str(line).ok()?;
                (v["fields"]["message"] == "bantin is serving")
                    .then(|| v["fields"]["address"].as_str().map(str::to_owned))?
            });
            if let Some(address) = found {
                break address;
            }
            assert!(started.elapsed() < Duration::from_secs(60), "serve did not log its address:\n{text}");
            std::thread::sleep(Duration::from_millis(20));
        };
        assert!(address.starts_with("127.0.0.1:"), "only loopback is used, got {address}");
        bantin::install_crypto_provider();
        let client = reqwest::Client::builder()
            .pool_max_idle_per_host(64)
            .tcp_nodelay(true)
            .build()
            .expect("build the HTTP client");
        Server { child, address, token, client }
    }

    fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.address)
    }

    /// Server CPU time so far (user + system), in clock ticks.
    fn cpu_ticks(&self) -> u64 {
        let stat = std::fs::read_to_string(format!("/proc/{}/stat", self.child.id())).unwrap_or_default();
        let after = stat.rsplit_once(')').map(|(_, rest)| rest).unwrap_or_default();
        let fields: Vec<&str> = after.split_whitespace().collect();
        // Fields 14 and 15 of stat; `after` starts at field 3.
        fields.get(11).and_then(|u| u.parse::<u64>().ok()).unwrap_or(0)
            + fields.get(12).and_then(|s| s.parse::<u64>().ok()).unwrap_or(0)
    }

    fn peak_rss_mb(&self) -> f64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id())).unwrap_or_default();
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmHWM:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
            .map_or(0.0, |kb| kb / 1024.0)
    }

    /// (feeds rebuilt, seconds spent rebuilding) from /metrics.
    async fn feed_builds(&self) -> (f64, f64) {
        let text = match self.client.get(self.url("/metrics")).send().await {
            Ok(r) => r.text().await.unwrap_or_default(),
            Err(_) => String::new(),
        };
        let value = |name: &str| {
            text.lines()
                .find_map(|l| l.strip_prefix(name).and_then(|rest| rest.strip_prefix(' ')))
                .and_then(|v| v.trim().parse::<f64>().ok())
                .unwrap_or(0.0)
        };
        (value("bantin_feed_builds_total"), value("bantin_feed_build_seconds_total"))
    }

    async fn post(&self, body: Vec<u8>) -> (u16, Value) {
        let response = self
            .client
            .post(self.url("/api/v1/articles"))
            .bearer_auth(&self.token)
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await
            .expect("POST /api/v1/articles");
        let status = response.status().as_u16();
        (status, response.json().await.unwrap_or(Value::Null))
    }

    /// Stops the server with SIGTERM and waits for it.
    fn stop(mut self) {
        let _ = Command::new("kill").args(["-TERM", &self.child.id().to_string()]).status();
        let started = Instant::now();
        loop {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            if started.elapsed() > Duration::from_secs(30) {
                let _ = self.child.kill();
                let _ = self.child.wait();
                eprintln!("bantin did not stop on SIGTERM within 30 s; killed");
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

/// Posts `n` articles, published in the past (the newest one hour ago, one minute apart),
/// `batch` per request, 2 requests in flight. Returns the newest one's source id.
async fn preload(server: &Arc<Server>, n: usize, content_bytes: usize) -> String {
    let per_article = content_bytes + 500;
    let batch = (MAX_BODY / per_article).clamp(1, 500);
    let newest = Utc::now() - chrono::Duration::hours(1);
    let started = Instant::now();
    let permits = Arc::new(Semaphore::new(2));
    let mut tasks = JoinSet::new();
    for first in (0..n).step_by(batch) {
        let items: Vec<Value> = (first..(first + batch).min(n))
            .map(|i| {
                let published = newest - chrono::Duration::minutes((n - 1 - i) as i64);
                article(
                    &format!("arch-{i:06}"),
                    i,
                    CATEGORIES[i % CATEGORIES.len()],
                    AUTHORS[(i * 7 + i / 12) % AUTHORS.len()],
                    Some(published.to_rfc3339_opts(SecondsFormat::Secs, true)),
                    content_bytes,
                )
            })
            .collect();
        let body = serde_json::to_vec(&items).unwrap();
        let permit = permits.clone().acquire_owned().await.unwrap();
        let server = server.clone();
        tasks.spawn(async move {
            let (status, response) = server.post(body).await;
            drop(permit);
            assert_eq!(status, 200, "batch at {first}: {response}");
            assert_eq!(response["summary"]["failed"], 0, "batch at {first}: {response}");
        });
    }
    while let Some(done) = tasks.join_next().await {
        done.expect("a preload request panicked");
    }
    let secs = started.elapsed().as_secs_f64();
    println!(
        "  preloaded {n} articles ({content_bytes} B content, {batch}/request) in {secs:.1} s ({:.0}/s)",
        n as f64 / secs
    );
    format!("arch-{:06}", n - 1)
}

/// One polled document: its path, the last ETag seen, and its last body size.
struct Doc {
    path: String,
    etag: Option<String>,
    bytes: usize,
}

/// GETs a document with If-None-Match; `Some(body)` when it changed.
async fn fetch(client: &reqwest::Client, url: &str, etag: Option<&str>) -> (Option<String>, Option<Vec<u8>>) {
    let mut request = client.get(url);
    if let Some(tag) = etag {
        request = request.header("if-none-match", tag);
    }
    let response = request.send().await.expect("GET a feed");
    let status = response.status().as_u16();
    let new_tag = response.headers().get("etag").and_then(|v| v.to_str().ok()).map(str::to_owned);
    match status {
        304 => (new_tag, None),
        200 => (new_tag, Some(response.bytes().await.expect("feed body").to_vec())),
        other => panic!("GET {url}: {other}"),
    }
}

/// `:source_id` followed by the end of the tag URI, in any of the three formats.
fn holds(body: &[u8], source_id: &str) -> bool {
    let needle = format!(":{source_id}");
    let finder = memchr::memmem::Finder::new(needle.as_bytes());
    finder.find_iter(body).any(|i| matches!(body.get(i + needle.len()), Some(b'<' | b'"')))
}

/// Waits until the documents stop changing and the server's CPU is idle, and the "all"
/// feed holds `newest`.
async fn settle(server: &Arc<Server>, docs: &mut [Doc], newest: &str) {
    let started = Instant::now();
    let mut stable_since = Instant::now();
    let mut ticks = (Instant::now(), server.cpu_ticks());
    let mut has_newest = false;
    loop {
        let mut changed = false;
        for doc in docs.iter_mut() {
            let (tag, body) = fetch(&server.client, &server.url(&doc.path), doc.etag.as_deref()).await;
            if let Some(body) = body {
                changed |= doc.etag != tag;
                doc.bytes = body.len();
                if doc.path == "/feeds/all.json" {
                    has_newest = holds(&body, newest);
                }
            }
            doc.etag = tag;
        }
        if changed {
            stable_since = Instant::now();
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
        let now_ticks = server.cpu_ticks();
        let idle = if ticks.0.elapsed() >= Duration::from_secs(1) {
            let busy = (now_ticks - ticks.1) as f64 / ticks.0.elapsed().as_secs_f64();
            ticks = (Instant::now(), now_ticks);
            busy < 5.0 // clock ticks are 1/100 s: under 5% of one core
        } else {
            false
        };
        if has_newest && idle && stable_since.elapsed() >= Duration::from_secs(2) {
            println!("  builder settled after {:.1} s", started.elapsed().as_secs_f64());
            return;
        }
        assert!(started.elapsed() < Duration::from_secs(1200), "the feed builder did not settle in 20 minutes");
    }
}

fn affected_docs(author_slug: &str) -> Vec<Doc> {
    let mut docs = Vec::new();
    for stem in ["all".to_owned(), "tin-tuc".to_owned(), "tin-tuc/kinh-te".to_owned(), format!("authors/{author_slug}")]
    {
        for ext in ["rss", "atom", "json"] {
            docs.push(Doc { path: format!("/feeds/{stem}.{ext}"), etag: None, bytes: 0 });
        }
    }
    docs
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

struct Stats {
    p50: f64,
    p90: f64,
    p99: f64,
    max: f64,
    mean: f64,
}

fn stats(values: &[f64]) -> Stats {
    let mut v = values.to_vec();
    v.sort_by(f64::total_cmp);
    Stats {
        p50: percentile(&v, 50.0),
        p90: percentile(&v, 90.0),
        p99: percentile(&v, 99.0),
        max: v.last().copied().unwrap_or(f64::NAN),
        mean: v.iter().sum::<f64>() / v.len().max(1) as f64,
    }
}

struct Outcome {
    archive: usize,
    fresh: Vec<f64>,
    first_doc: Vec<f64>,
    post: Vec<f64>,
    misses: usize,
    /// Per feed (all, tin-tuc, tin-tuc/kinh-te, author): when its last format held the article.
    per_feed: [Vec<f64>; 4],
    cpu_ms_per_publication: f64,
    rebuild_ms: f64,
    rss_mb: f64,
    doc_bytes: usize,
}

async fn freshness_run(archive: usize, samples: usize, gap: Duration, content_bytes: usize) -> Outcome {
    println!("== archive of {archive} articles");
    let dir = tempfile::tempdir().expect("temp dir");
    let server = Arc::new(Server::start(dir.path(), "127.0.0.1:0", true));
    println!("  bantin serving on {} (SQLite in {})", server.address, dir.path().display());
    let newest = preload(&server, archive, content_bytes).await;

    // The docs of every author's feed the samples touch, polled during the settle wait.
    let slugs: Vec<String> =
        AUTHORS.iter().map(|a| Slug::from_name(a).expect("author names have slugs").to_string()).collect();
    let mut docs_by_author: Vec<Vec<Doc>> = slugs.iter().map(|s| affected_docs(s)).collect();
    {
        let mut all: Vec<Doc> = docs_by_author.iter_mut().flat_map(|d| d.drain(..)).collect();
        all.sort_by(|a, b| a.path.cmp(&b.path));
        all.dedup_by(|a, b| a.path == b.path);
        settle(&server, &mut all, &newest).await;
        for (slug, docs) in slugs.iter().zip(docs_by_author.iter_mut()) {
            *docs = affected_docs(slug);
            for doc in docs.iter_mut() {
                if let Some(known) = all.iter().find(|d| d.path == doc.path) {
                    doc.etag = known.etag.clone();
                    doc.bytes = known.bytes;
                }
            }
        }
    }
    println!("  sampling: {samples} publications (server pid {})", server.child.id());
    let builds_before = server.feed_builds().await;
    let ticks_before = server.cpu_ticks();
    let sampling_started = Instant::now();
    let doc_bytes = docs_by_author[0].iter().find(|d| d.path == "/feeds/all.rss").map_or(0, |d| d.bytes);

    let mut fresh = Vec::with_capacity(samples);
    let mut first_doc = Vec::with_capacity(samples);
    let mut post = Vec::with_capacity(samples);
    let mut misses = 0;
    let mut per_feed: [Vec<f64>; 4] = Default::default();
    for s in 0..samples {
        let author_index = s % AUTHORS.len();
        let source_id = format!("fresh-{archive}-{s:04}");
        let body = serde_json::to_vec(&article(
            &source_id,
            archive + s,
            ["Tin Tức", "Kinh tế"],
            AUTHORS[author_index],
            None,
            content_bytes,
        ))
        .unwrap();
        let docs = &mut docs_by_author[author_index];
        // The feeds all, tin-tuc and tin-tuc/kinh-te change with every sample: carry their
        // latest ETags over from whichever author's list saw them last.
        let sent = Instant::now();
        let (status, response) = server.post(body).await;
        let acked = Instant::now();
        assert!(status == 201 || status == 200, "POST {source_id}: {status} {response}");
        post.push((acked - sent).as_secs_f64() * 1000.0);

        let mut pending: Vec<usize> = (0..docs.len()).collect();
        let mut first: Option<f64> = None;
        let mut last = 0.0f64;
        let mut feed_last = [0.0f64; 4];
        let deadline = acked + Duration::from_secs(10);
        while !pending.is_empty() {
            let mut round = JoinSet::new();
            for &i in &pending {
                let client = server.client.clone();
                let url = server.url(&docs[i].path);
                let etag = docs[i].etag.clone();
                round.spawn(async move {
                    let (tag, body) = fetch(&client, &url, etag.as_deref()).await;
                    (i, tag, body, Instant::now())
                });
            }
            let mut still = Vec::new();
            while let Some(done) = round.join_next().await {
                let (i, tag, body, at) = done.expect("a poll panicked");
                docs[i].etag = tag;
                let seen = match body {
                    Some(body) => {
                        docs[i].bytes = body.len();
                        holds(&body, &source_id)
                    }
                    None => false,
                };
                if seen {
                    let ms = (at - acked).as_secs_f64() * 1000.0;
                    first = Some(first.map_or(ms, |f: f64| f.min(ms)));
                    last = last.max(ms);
                    feed_last[i / 3] = feed_last[i / 3].max(ms);
                } else {
                    still.push(i);
                }
            }
            pending = still;
            if Instant::now() > deadline {
                eprintln!("  sample {s}: {} document(s) still without {source_id} after 10 s", pending.len());
                misses += 1;
                break;
            }
            if !pending.is_empty() {
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
        }
        if pending.is_empty() {
            fresh.push(last);
            first_doc.push(first.unwrap_or(last));
            for (k, ms) in feed_last.iter().enumerate() {
                per_feed[k].push(*ms);
            }
        }
        // Share the ETags of the feeds every sample touches with the other authors' lists.
        let shared: Vec<(String, Option<String>)> =
            docs.iter().filter(|d| !d.path.contains("/authors/")).map(|d| (d.path.clone(), d.etag.clone())).collect();
        for other in docs_by_author.iter_mut() {
            for doc in other.iter_mut() {
                if let Some((_, tag)) = shared.iter().find(|(p, _)| *p == doc.path) {
                    doc.etag = tag.clone();
                }
            }
        }
        tokio::time::sleep(gap).await;
    }
    let builds_after = server.feed_builds().await;
    let cpu_ms_per_publication = (server.cpu_ticks() - ticks_before) as f64 * 10.0 / samples as f64;
    let builds = builds_after.0 - builds_before.0;
    let rebuild_ms = if builds > 0.0 { (builds_after.1 - builds_before.1) * 1000.0 / builds } else { f64::NAN };
    println!(
        "  sampling took {:.1} s; server CPU {cpu_ms_per_publication:.0} ms per publication; {builds} feed rebuilds, \
         {rebuild_ms:.2} ms each on average (query + render of 3 formats, from /metrics)",
        sampling_started.elapsed().as_secs_f64()
    );
    let rss_mb = server.peak_rss_mb();
    match Arc::try_unwrap(server) {
        Ok(server) => server.stop(),
        Err(_) => panic!("the server handle is still shared"),
    }
    Outcome { archive, fresh, first_doc, post, misses, per_feed, cpu_ms_per_publication, rebuild_ms, rss_mb, doc_bytes }
}

async fn serve_mode() {
    let dir = PathBuf::from(std::env::var("BENCH_DIR").expect("BENCH_MODE=serve needs BENCH_DIR"));
    let archive = env_usize("BENCH_ARCHIVE", 1000);
    let content_bytes = env_usize("BENCH_CONTENT_BYTES", 3000);
    let listen = std::env::var("BENCH_LISTEN").unwrap_or_else(|_| "127.0.0.1:0".to_owned());
    assert!(listen.starts_with("127.0.0.1:"), "BENCH_LISTEN must be a loopback address");
    let server = Arc::new(Server::start(&dir, &listen, false));
    let newest = preload(&server, archive, content_bytes).await;
    let mut docs = vec![
        Doc { path: "/feeds/all.rss".into(), etag: None, bytes: 0 },
        Doc { path: "/feeds/all.json".into(), etag: None, bytes: 0 },
    ];
    settle(&server, &mut docs, &newest).await;
    println!("address={}", server.address);
    println!("pid={}", server.child.id());
    println!("feed=/feeds/all.rss");
    println!("bytes={}", docs[0].bytes);
    println!("etag={}", docs[0].etag.as_deref().unwrap_or_default());
    // The server keeps running: the caller stops it (SIGTERM to the pid above).
}

fn main() {
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("tokio runtime");
    if std::env::var("BENCH_MODE").is_ok_and(|m| m == "serve") {
        runtime.block_on(serve_mode());
        return;
    }
    let archives: Vec<usize> = std::env::var("BENCH_ARCHIVE")
        .unwrap_or_else(|_| "1000,100000".to_owned())
        .split(',')
        .map(|s| s.trim().replace('_', "").parse().unwrap_or_else(|_| panic!("BENCH_ARCHIVE: {s:?} is not a number")))
        .collect();
    let samples = env_usize("BENCH_SAMPLES", 200);
    let gap = Duration::from_millis(env_usize("BENCH_GAP_MS", 1000) as u64);
    let content_bytes = env_usize("BENCH_CONTENT_BYTES", 3000);
    println!(
        "freshness: {samples} publications per archive, {} ms apart, SQLite, 12 documents polled every ~1 ms",
        gap.as_millis()
    );
    let mut outcomes = Vec::new();
    for archive in archives {
        let outcome = runtime.block_on(freshness_run(archive, samples, gap, content_bytes));
        outcomes.push(outcome);
    }
    println!();
    println!("freshness (ms from the ingest API's 2xx until all 12 affected documents hold the article)");
    println!(
        "{:>9} {:>8} {:>8} {:>8} {:>8} {:>8} {:>8} | {:>14} | {:>12} {:>12} | {:>8} {:>9}",
        "archive",
        "samples",
        "p50",
        "p90",
        "p99",
        "max",
        "mean",
        "first doc p50",
        "POST p50",
        "POST p99",
        "misses",
        "peak RSS"
    );
    for o in &outcomes {
        let f = stats(&o.fresh);
        let first = stats(&o.first_doc);
        let p = stats(&o.post);
        println!(
            "{:>9} {:>8} {:>8.1} {:>8.1} {:>8.1} {:>8.1} {:>8.1} | {:>14.1} | {:>12.1} {:>12.1} | {:>8} {:>7.0}MB",
            o.archive,
            o.fresh.len(),
            f.p50,
            f.p90,
            f.p99,
            f.max,
            f.mean,
            first.p50,
            p.p50,
            p.p99,
            o.misses,
            o.rss_mb
        );
    }
    println!();
    println!("per feed: p50 / p99 ms until its last format held the article (the builder rebuilds them in this order)");
    println!(
        "{:>9} {:>16} {:>16} {:>16} {:>16} | {:>11} {:>14}",
        "archive", "all", "tin-tuc", "tin-tuc/kinh-te", "authors/…", "rebuild ms", "CPU ms/publ."
    );
    for o in &outcomes {
        let cell = |v: &Vec<f64>| {
            let s = stats(v);
            format!("{:.1} / {:.1}", s.p50, s.p99)
        };
        println!(
            "{:>9} {:>16} {:>16} {:>16} {:>16} | {:>11.2} {:>14.0}",
            o.archive,
            cell(&o.per_feed[0]),
            cell(&o.per_feed[1]),
            cell(&o.per_feed[2]),
            cell(&o.per_feed[3]),
            o.rebuild_ms,
            o.cpu_ms_per_publication
        );
    }
    for o in &outcomes {
        let f = stats(&o.fresh);
        println!(
            "freshness archive={} p99={:.1}ms target<=50ms {} (all.rss {} bytes)",
            o.archive,
            f.p99,
            if f.p99 <= 50.0 && o.misses == 0 { "MET" } else { "MISSED" },
            o.doc_bytes
        );
    }
}
