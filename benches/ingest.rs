//! Ingest benchmark: posts N generated Vietnamese articles (~3 KB of content each)
//! through the batch API (`POST /api/v1/articles`) of the real `bantin serve` binary and
//! reports articles/s and the server's peak memory.
//!
//! Target: 100,000 articles into SQLite at ≥ 5,000 articles/s on a 2-core machine with
//! the server's peak RSS under 300 MB; the PostgreSQL figure is reported too.
//!
//! Settings (environment):
//! - `BENCH_DATABASE_URL`: `postgres://…` (a fresh `bench_<random>` database is created
//!   on that server for each run and dropped afterwards) or `sqlite://…`; default: a
//!   SQLite file in a temp dir.
//! - `BENCH_ARTICLES` (default 100000), `BENCH_BATCH` (default 500, at most 1000),
//!   `BENCH_CONCURRENCY` (requests in flight, default 2).
//!
//! Run with `cargo bench --bench ingest` (or `bash bench/ingest.sh` for both backends).

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc as std_mpsc;
use std::time::{Duration, Instant};

use chrono::{DateTime, FixedOffset, TimeZone, Utc};
use serde::Serialize;
use serde_json::Value;
use tokio::sync::{Mutex, mpsc};

#[path = "support/postgres.rs"]
mod postgres;
#[path = "support/vietnamese.rs"]
mod vietnamese;
use vietnamese::{AUTHORS, CATEGORIES, SENTENCES, TITLES};

const BIN: &str = env!("CARGO_BIN_EXE_bantin");
/// Content size aimed at, in bytes of UTF-8.
const CONTENT_BYTES: usize = 3_000;

const TAGS: [&str; 16] = [
    "đảng bộ",
    "nông thôn mới",
    "giao thông",
    "môi trường",
    "học sinh",
    "y tế cơ sở",
    "doanh nghiệp",
    "lúa gạo",
    "bóng đá",
    "lễ hội",
    "du lịch",
    "việc làm",
    "an ninh",
    "văn hóa",
    "xây dựng",
    "khuyến nông",
];

const PLACES: [&str; 8] =
    ["Hiệp Hòa", "Bắc Giang", "Lục Nam", "Yên Thế", "Tân Yên", "Việt Yên", "Lạng Giang", "Sơn Động"];

struct Settings {
    database_url: Option<String>,
    articles: usize,
    batch: usize,
    concurrency: usize,
}

fn env_usize(name: &str, default: usize) -> usize {
    match std::env::var(name) {
        Ok(v) if !v.trim().is_empty() => {
            v.trim().replace('_', "").parse().unwrap_or_else(|_| panic!("{name}={v:?} is not a number"))
        }
        _ => default,
    }
}

impl Settings {
    fn from_env() -> Settings {
        let s = Settings {
            database_url: std::env::var("BENCH_DATABASE_URL").ok().filter(|v| !v.trim().is_empty()),
            articles: env_usize("BENCH_ARTICLES", 100_000),
            batch: env_usize("BENCH_BATCH", 500),
            concurrency: env_usize("BENCH_CONCURRENCY", 2),
        };
        assert!(s.articles > 0, "BENCH_ARTICLES must be positive");
        assert!((1..=1000).contains(&s.batch), "BENCH_BATCH must be 1..=1000 (the API's batch limit)");
        assert!(s.concurrency > 0, "BENCH_CONCURRENCY must be positive");
        s
    }
}

/// splitmix64: a tiny deterministic generator, seeded per article.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

#[derive(Serialize)]
struct ArticleJson<'a> {
    id: String,
    title: String,
    category: &'a [&'a str; 2],
    author: &'a str,
    tags: [&'a str; 2],
    summary: String,
    content_html: String,
    published_at: String,
}

/// Article number `n` (1-based), the same on every run.
fn article(n: usize, base: DateTime<FixedOffset>) -> ArticleJson<'static> {
    let mut rng = Rng(n as u64 ^ 0x6261_6E74_696E);
    let head = TITLES[rng.below(TITLES.len())];
    let place = PLACES[rng.below(PLACES.len())];
    let first_tag = rng.below(TAGS.len());
    let second_tag = (first_tag + 1 + rng.below(TAGS.len() - 1)) % TAGS.len();
    let mut content = String::with_capacity(CONTENT_BYTES + 600);
    content.push_str(&format!("<p>({place}) Bài số {n}: {}</p>", SENTENCES[rng.below(SENTENCES.len())]));
    while content.len() < CONTENT_BYTES {
        content.push_str("<p>");
        for i in 0..3 {
            if i > 0 {
                content.push(' ');
            }
            content.push_str(SENTENCES[rng.below(SENTENCES.len())]);
        }
        content.push_str("</p>");
    }
    let summary =
        format!("{place}: {} {}", SENTENCES[rng.below(SENTENCES.len())], SENTENCES[rng.below(SENTENCES.len())]);
    let published_at = base - chrono::Duration::seconds(30 * n as i64);
    ArticleJson {
        id: format!("bench-{n:06}"),
        title: format!("{head} tại {place} (bài {n})"),
        category: &CATEGORIES[n % CATEGORIES.len()],
        author: AUTHORS[(n * 7 + rng.below(3)) % AUTHORS.len()],
        tags: [TAGS[first_tag], TAGS[second_tag]],
        summary,
        content_html: content,
        published_at: published_at.to_rfc3339(),
    }
}

/// One request body: articles `first..first + count` (1-based).
struct Batch {
    count: usize,
    body: Vec<u8>,
    content_bytes: usize,
}

fn batch_body(first: usize, count: usize, base: DateTime<FixedOffset>) -> Batch {
    let items: Vec<ArticleJson> = (first..first + count).map(|n| article(n, base)).collect();
    let content_bytes = items.iter().map(|a| a.content_html.len()).sum();
    let body = serde_json::to_vec(&items).expect("articles serialize");
    assert!(
        body.len() <= 2 * 1024 * 1024,
        "a batch body of {} bytes is over the API's 2 MB limit; lower BENCH_BATCH",
        body.len()
    );
    Batch { count, body, content_bytes }
}

/// The newest `published_at`: a fixed time (so runs are alike) unless that is not in the
/// past on this machine's clock.
fn published_base() -> DateTime<FixedOffset> {
    let tz = FixedOffset::east_opt(7 * 3600).expect("UTC+7");
    let fixed = tz.with_ymd_and_hms(2026, 11, 1, 7, 0, 0).single().expect("a valid date");
    let hour_ago = (Utc::now() - chrono::Duration::hours(1)).with_timezone(&tz);
    fixed.min(hour_ago)
}

/// A `bantin` command with none of the caller's BANTIN_* settings, run in `dir` (so no
/// stray ./bantin.toml is read).
fn bantin(dir: &Path, database_url: &str) -> Command {
    let mut cmd = Command::new(BIN);
    for (key, _) in std::env::vars_os() {
        if key.to_string_lossy().starts_with("BANTIN_") {
            cmd.env_remove(key);
        }
    }
    cmd.current_dir(dir)
        .env("BANTIN_DATABASE_URL", database_url)
        .env("BANTIN_DATA_DIR", dir.join("data"))
        .env("BANTIN_LISTEN", "127.0.0.1:0")
        .env("RUST_LOG", "warn,bantin::cli=info")
        .env_remove("RUST_LOG_STYLE");
    cmd
}

/// The server child; killed if the bench panics before stopping it.
struct Server {
    child: Option<Child>,
    pid: u32,
    /// The thread draining the server's stderr; it ends when the server exits.
    log_reader: Option<std::thread::JoinHandle<()>>,
    /// Lines the server logged above INFO once it was serving.
    warnings: Arc<AtomicUsize>,
}

/// Warning and error lines of the server echoed in full; the rest are only counted.
const SHOWN_WARNINGS: usize = 5;

impl Server {
    /// Stops the server with SIGTERM and waits for it; returns how many warning and
    /// error lines it logged while serving.
    fn stop(&mut self) -> usize {
        self.terminate();
        if let Some(reader) = self.log_reader.take() {
            let _ = reader.join();
        }
        self.warnings.load(Ordering::Relaxed)
    }

    fn terminate(&mut self) {
        let Some(mut child) = self.child.take() else {
            return;
        };
        let _ = Command::new("kill").args(["-TERM", &self.pid.to_string()]).status();
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            match child.try_wait() {
                Ok(Some(status)) => {
                    if !status.success() {
                        eprintln!("bench: bantin exited with {status} after SIGTERM");
                    }
                    return;
                }
                Ok(None) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(50)),
                _ => {
                    eprintln!("bench: bantin did not stop within 30 s of SIGTERM; killing it");
                    let _ = child.kill();
                    let _ = child.wait();
                    return;
                }
            }
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// Starts `bantin --log-format json serve` and returns it with its bound address, once
/// it logs "bantin is serving". Its stderr is drained by a thread for as long as it runs;
/// lines above INFO are echoed.
fn start_server(dir: &Path, database_url: &str) -> (Server, String) {
    let mut child = bantin(dir, database_url)
        .args(["--log-format", "json", "serve"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {BIN}: {e}"));
    let pid = child.id();
    let stderr = child.stderr.take().expect("piped stderr");
    let (ready_tx, ready_rx) = std_mpsc::channel::<Result<String, String>>();
    let warnings = Arc::new(AtomicUsize::new(0));
    let counter = warnings.clone();
    let log_reader = std::thread::spawn(move || {
        let mut ready_tx = Some(ready_tx);
        let mut early = Vec::new();
        for line in BufReader::new(stderr).lines() {
            let Ok(line) = line else { break };
            let parsed: Option<Value> = serde_json::from_str(&line).ok();
            let field = |name: &str| parsed.as_ref().and_then(|v| v["fields"][name].as_str()).map(str::to_owned);
            if let Some(tx) = &ready_tx {
                if field("message").as_deref() == Some("bantin is serving") {
                    let address = field("address").unwrap_or_default();
                    let _ = tx.send(Ok(address));
                    ready_tx = None;
                    continue;
                }
                early.push(line.clone());
            }
            let level = parsed.as_ref().and_then(|v| v["level"].as_str()).unwrap_or("?");
            if level != "INFO" && level != "DEBUG" && level != "TRACE" {
                let seen = counter.fetch_add(1, Ordering::Relaxed) + 1;
                if seen <= SHOWN_WARNINGS {
                    eprintln!("[bantin] {line}");
                } else if seen == SHOWN_WARNINGS + 1 {
                    eprintln!("[bantin] (further warnings are counted, not shown)");
                }
            }
        }
        if let Some(tx) = ready_tx {
            let _ = tx.send(Err(early.join("\n")));
        }
    });
    let server = Server { child: Some(child), pid, log_reader: Some(log_reader), warnings };
    match ready_rx.recv_timeout(Duration::from_secs(120)) {
        Ok(Ok(address)) if !address.is_empty() => (server, address),
        Ok(Ok(_)) => panic!("bantin logged \"bantin is serving\" without an address"),
        Ok(Err(log)) => panic!("bantin serve exited before serving; its log:\n{log}"),
        Err(_) => panic!("bantin serve did not log \"bantin is serving\" within 120 s"),
    }
}

fn create_token(dir: &Path, database_url: &str) -> String {
    let out = bantin(dir, database_url)
        .args(["token", "create", "--name", "bench"])
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("cannot run {BIN}: {e}"));
    assert!(
        out.status.success(),
        "bantin token create failed ({}): {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    let token = String::from_utf8(out.stdout).expect("the token is UTF-8").trim().to_owned();
    assert!(!token.is_empty(), "bantin token create printed nothing");
    token
}

/// A `kB` line of /proc/<pid>/status, in MiB.
fn proc_status_mb(pid: u32, key: &str) -> f64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_else(|e| panic!("cannot read /proc/{pid}/status: {e}"));
    let kb: f64 = status
        .lines()
        .find_map(|l| l.strip_prefix(key)?.strip_prefix(':'))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no {key} in /proc/{pid}/status"));
    kb / 1024.0
}

/// User + system CPU seconds of a process (`self` or a pid), from /proc/…/stat.
fn cpu_seconds(pid: &str, ticks_per_second: f64) -> f64 {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return f64::NAN;
    };
    // Fields after the command name, which is in parentheses and may hold spaces.
    let rest = &stat[stat.rfind(')').map_or(0, |i| i + 2)..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| fields.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
    // utime and stime are fields 14 and 15 of stat, 12 and 13 here (state is 3 → 0).
    (ticks(11) + ticks(12)) / ticks_per_second
}

fn clock_ticks() -> f64 {
    Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(100.0)
}

/// What one worker saw.
#[derive(Default)]
struct WorkerStats {
    requests: usize,
    articles: usize,
    last_done: Option<Instant>,
    latencies: Vec<Duration>,
}

/// Posts batches from `rx` until it is empty; panics on any response that is not a 200
/// whose summary counts every item as new.
async fn worker(
    client: reqwest::Client,
    url: String,
    auth: String,
    rx: Arc<Mutex<mpsc::Receiver<Batch>>>,
) -> WorkerStats {
    let mut stats = WorkerStats::default();
    loop {
        let Some(batch) = rx.lock().await.recv().await else {
            return stats;
        };
        let sent = Instant::now();
        let response = client
            .post(&url)
            .header("authorization", &auth)
            .header("content-type", "application/json")
            .body(batch.body)
            .send()
            .await
            .unwrap_or_else(|e| panic!("POST {url} failed: {e}"));
        let status = response.status();
        let body = response.bytes().await.unwrap_or_else(|e| panic!("reading the response failed: {e}"));
        let done = Instant::now();
        let excerpt = || String::from_utf8_lossy(&body[..body.len().min(2000)]).into_owned();
        assert_eq!(status.as_u16(), 200, "POST {url} answered {status}: {}", excerpt());
        let json: Value =
            serde_json::from_slice(&body).unwrap_or_else(|e| panic!("the response is not JSON ({e}): {}", excerpt()));
        let summary = &json["summary"];
        let count = |k: &str| summary[k].as_u64();
        assert!(
            count("new") == Some(batch.count as u64)
                && count("updated") == Some(0)
                && count("unchanged") == Some(0)
                && count("failed") == Some(0),
            "expected all {} items new, got summary {summary}; response: {}",
            batch.count,
            excerpt()
        );
        stats.requests += 1;
        stats.articles += batch.count;
        stats.last_done = Some(done);
        stats.latencies.push(done - sent);
    }
}

struct Outcome {
    seconds: f64,
    requests: usize,
    latencies: Vec<Duration>,
    body_bytes: usize,
    content_bytes: usize,
    server_cpu: f64,
    client_cpu: f64,
}

async fn run_load(settings: &Settings, address: &str, token: &str, pid: u32) -> Outcome {
    let ticks = clock_ticks();
    let batches = settings.articles.div_ceil(settings.batch);
    let queue = (settings.concurrency * 2).max(2);
    let (tx, rx) = mpsc::channel::<Batch>(queue);
    let (total_articles, batch_size) = (settings.articles, settings.batch);
    let sizes = Arc::new(std::sync::Mutex::new((0usize, 0usize)));
    let producer_sizes = sizes.clone();
    // Bodies are built just ahead of use, in a thread of their own, kept off the timed
    // request path; the bounded channel holds at most `queue` of them.
    let producer = std::thread::spawn(move || {
        let base = published_base();
        for b in 0..batches {
            let first = b * batch_size + 1;
            let count = batch_size.min(total_articles - b * batch_size);
            let batch = batch_body(first, count, base);
            {
                let mut s = producer_sizes.lock().expect("sizes");
                s.0 += batch.body.len();
                s.1 += batch.content_bytes;
            }
            if tx.blocking_send(batch).is_err() {
                return;
            }
        }
    });
    // Start the clock once the first bodies are ready.
    while rx.len() < queue.min(batches) && !producer.is_finished() {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    // The crate builds reqwest with `rustls-no-provider`: a client (even for plain http)
    // needs a process-wide crypto provider; ring is the one bantin itself installs.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let client =
        reqwest::Client::builder().no_proxy().timeout(Duration::from_secs(300)).build().expect("an HTTP client");
    let url = format!("http://{address}/api/v1/articles");
    let auth = format!("Bearer {token}");
    let rx = Arc::new(Mutex::new(rx));
    let server_cpu_before = cpu_seconds(&pid.to_string(), ticks);
    let client_cpu_before = cpu_seconds("self", ticks);
    let start = Instant::now();
    let workers: Vec<_> = (0..settings.concurrency)
        .map(|_| tokio::spawn(worker(client.clone(), url.clone(), auth.clone(), rx.clone())))
        .collect();
    let mut stats = Vec::new();
    for w in workers {
        match w.await {
            Ok(s) => stats.push(s),
            Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
            Err(e) => panic!("a worker failed: {e}"),
        }
    }
    let server_cpu = cpu_seconds(&pid.to_string(), ticks) - server_cpu_before;
    let client_cpu = cpu_seconds("self", ticks) - client_cpu_before;
    producer.join().expect("the producer thread");
    let end = stats.iter().filter_map(|s| s.last_done).max().expect("at least one request");
    let articles: usize = stats.iter().map(|s| s.articles).sum();
    assert_eq!(articles, settings.articles, "every article was posted");
    let (body_bytes, content_bytes) = *sizes.lock().expect("sizes");
    let mut latencies: Vec<Duration> = stats.iter().flat_map(|s| s.latencies.clone()).collect();
    latencies.sort();
    Outcome {
        seconds: (end - start).as_secs_f64(),
        requests: stats.iter().map(|s| s.requests).sum(),
        latencies,
        body_bytes,
        content_bytes,
        server_cpu,
        client_cpu,
    }
}

fn main() {
    let settings = Settings::from_env();
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("a tokio runtime");
    let dir = tempfile::Builder::new().prefix("bantin-bench-").tempdir().expect("a temp dir");
    let (backend, database_url, pg_database) = match &settings.database_url {
        Some(url) if url.starts_with("postgres://") || url.starts_with("postgresql://") => {
            let (name, db_url) = runtime.block_on(postgres::create_pg_database(url));
            ("postgres", db_url, Some((url.clone(), name)))
        }
        Some(url) if url.starts_with("sqlite:") => ("sqlite", url.clone(), None),
        Some(url) => panic!("BENCH_DATABASE_URL={url:?}: use sqlite://… or postgres://…"),
        None => ("sqlite", format!("sqlite://{}", dir.path().join("bantin.db").display()), None),
    };
    let shown_url = match url::Url::parse(&database_url) {
        Ok(mut u) if u.password().is_some() => {
            let _ = u.set_password(Some("***"));
            u.to_string()
        }
        _ => database_url.clone(),
    };
    eprintln!(
        "bench ingest: {backend} at {shown_url}; {} articles, batches of {}, {} in flight",
        settings.articles, settings.batch, settings.concurrency
    );

    let token = create_token(dir.path(), &database_url);
    let (mut server, address) = start_server(dir.path(), &database_url);
    eprintln!("bench ingest: bantin (pid {}) serving on {address}", server.pid);
    let outcome = runtime.block_on(run_load(&settings, &address, &token, server.pid));
    let peak_mb = proc_status_mb(server.pid, "VmHWM");
    let rss_mb = proc_status_mb(server.pid, "VmRSS");
    let warnings = server.stop();
    if let Some((admin_url, name)) = &pg_database {
        runtime.block_on(postgres::drop_pg_database(admin_url, name));
    }

    let rate = settings.articles as f64 / outcome.seconds;
    let pct = |p: f64| {
        let l = &outcome.latencies;
        l[((l.len() - 1) as f64 * p).round() as usize].as_secs_f64() * 1000.0
    };
    println!();
    println!(
        "{:<9} {:>9} {:>6} {:>12} {:>8} {:>11} {:>20}",
        "backend", "articles", "batch", "concurrency", "seconds", "articles/s", "server peak RSS MB"
    );
    println!(
        "{:<9} {:>9} {:>6} {:>12} {:>8.2} {:>11.0} {:>20.1}",
        backend, settings.articles, settings.batch, settings.concurrency, outcome.seconds, rate, peak_mb
    );
    println!(
        "  server RSS after the run {rss_mb:.1} MB; {} requests, latency ms p50 {:.0} p90 {:.0} max {:.0}",
        outcome.requests,
        pct(0.5),
        pct(0.9),
        pct(1.0)
    );
    println!(
        "  sent {:.1} MB of JSON ({:.0} bytes/article, content_html {:.0} bytes/article), {:.1} MB/s",
        outcome.body_bytes as f64 / 1e6,
        outcome.body_bytes as f64 / settings.articles as f64,
        outcome.content_bytes as f64 / settings.articles as f64,
        outcome.body_bytes as f64 / 1e6 / outcome.seconds
    );
    println!(
        "  CPU during the run: bantin {:.1} s ({:.0}% of one core), bench client {:.1} s (incl. body generation)",
        outcome.server_cpu,
        100.0 * outcome.server_cpu / outcome.seconds,
        outcome.client_cpu
    );
    if warnings > 0 {
        println!(
            "  bantin logged {warnings} warning/error line(s) while serving (the first {SHOWN_WARNINGS} are shown above)"
        );
    }
    println!("ingest {backend}: {rate:.0} articles/s, peak {peak_mb:.0} MB");
}
