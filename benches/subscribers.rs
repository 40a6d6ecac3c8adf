//! Subscriber benchmarks: (1) import of a generated CSV of N subscribers (default
//! 1,000,000: Vietnamese names with diacritics, varied domains, a few duplicates and bad
//! rows) through `Audience::import_csv` into a fresh database, reporting rows/s and the
//! peak memory of the import; (2) admin search through `store.search_subscribers` on that
//! database: a mix of query kinds, each run many times, with p50/p95/p99 per kind.
//!
//! Targets (issue 4): import into SQLite at ≥ 20,000 rows/s with peak RSS under 200 MB;
//! search p95 under 50 ms at 1,000,000 subscribers on SQLite and PostgreSQL.
//!
//! Settings (environment):
//! - `BENCH_DATABASE_URL`: `postgres://…` (a fresh `bench_<random>` database is created on
//!   that server and dropped afterwards) or `sqlite://…` (a file; with
//!   `BENCH_SKIP=import` an already loaded one is searched again); default: a SQLite file
//!   in a temp dir. `BENCH_KEEP_DATABASE=1` keeps the PostgreSQL database, which
//!   `BENCH_SKIP=import` with its URL searches again.
//! - `BENCH_SUBSCRIBERS` (rows in the main CSV, default 1000000), `BENCH_SEARCH_ROUNDS`
//!   (each round runs every query of the mix once, default 30), `BENCH_SKIP`
//!   (`import` or `search`).
//!
//! Run with `cargo bench --bench subscribers` (or `bash bench/subscribers.sh` for both
//! backends).

#[path = "support/postgres.rs"]
mod postgres;

use std::collections::BTreeMap;
use std::io::BufWriter;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bantin::audience::Audience;
use bantin::audience::csv::{ImportMode, ImportReport};
use bantin::config::{Config, DatabaseUrl};
use bantin::domain::audience::{ListInput, SubscriberStatus};
use bantin::store::audience::{MailingList, SubscriberQuery};
use bantin::store::{self, Store};
use bantin::templates::Templates;
use serde_json::json;

/// Rows an admin page shows.
const PAGE: i64 = 50;

/// Surnames with roughly their share of the population (per mille).
const SURNAMES: [(&str, u32); 24] = [
    ("Nguyễn", 380),
    ("Trần", 110),
    ("Lê", 95),
    ("Phạm", 70),
    ("Hoàng", 50),
    ("Huỳnh", 40),
    ("Phan", 45),
    ("Vũ", 39),
    ("Võ", 30),
    ("Đặng", 21),
    ("Bùi", 20),
    ("Đỗ", 14),
    ("Hồ", 13),
    ("Ngô", 13),
    ("Dương", 10),
    ("Lý", 5),
    ("Trịnh", 8),
    ("Đinh", 8),
    ("Lương", 6),
    ("Mai", 6),
    ("Tạ", 4),
    ("Chu", 4),
    ("Lâm", 5),
    ("Quách", 4),
];

const MIDDLE_NAMES: [&str; 20] = [
    "Văn", "Thị", "Đức", "Minh", "Ngọc", "Thanh", "Hữu", "Quốc", "Thu", "Hoàng", "Xuân", "Kim", "Anh", "Gia", "Bảo",
    "Phương", "Công", "Thùy", "Mỹ", "Trọng",
];

const GIVEN_NAMES: [&str; 48] = [
    "An", "Anh", "Bình", "Chi", "Cường", "Dũng", "Duy", "Giang", "Hà", "Hải", "Hạnh", "Hiếu", "Hoa", "Hùng", "Huy",
    "Hương", "Khánh", "Lan", "Linh", "Long", "Mai", "Minh", "Nam", "Nga", "Ngân", "Nhung", "Phong", "Phúc", "Quân",
    "Quang", "Sơn", "Tâm", "Thảo", "Thắng", "Trang", "Trung", "Tuấn", "Tùng", "Uyên", "Việt", "Vy", "Yến", "Khoa",
    "Đạt", "Lộc", "Hậu", "Thư", "Nhi",
];

/// Mail domains with their share (per mille); the rest go to a long tail of small ones.
const DOMAINS: [(&str, u32); 14] = [
    ("gmail.com", 560),
    ("yahoo.com", 70),
    ("yahoo.com.vn", 60),
    ("hotmail.com", 45),
    ("outlook.com", 35),
    ("icloud.com", 20),
    ("fpt.com.vn", 12),
    ("vnpt.vn", 10),
    ("viettel.com.vn", 10),
    ("vnu.edu.vn", 8),
    ("hust.edu.vn", 6),
    ("bacgiang.gov.vn", 4),
    ("hiephoa.gov.vn", 1),
    ("zing.vn", 9),
];

const TAIL_WORDS: [&str; 12] = [
    "xaydung",
    "nongsan",
    "vantai",
    "dulich",
    "thuongmai",
    "cokhi",
    "inan",
    "duoc",
    "maymac",
    "giaoduc",
    "phanmem",
    "nhuataphong",
];

const PROVINCES: [&str; 8] =
    ["Bắc Giang", "Hà Nội", "Bắc Ninh", "Thái Nguyên", "Lạng Sơn", "Hải Phòng", "TP Hồ Chí Minh", "Đà Nẵng"];

/// A duplicate address (another case of an earlier row) every this many rows.
const DUPLICATE_EVERY: usize = 997;
/// A malformed address every this many rows.
const BAD_ADDRESS_EVERY: usize = 1_999;
/// A row with a missing field every this many rows.
const SHORT_ROW_EVERY: usize = 49_999;

struct Settings {
    database_url: Option<String>,
    subscribers: usize,
    search_rounds: usize,
    skip_import: bool,
    skip_search: bool,
    keep_database: bool,
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
        let skip = std::env::var("BENCH_SKIP").unwrap_or_default();
        let skipped: Vec<&str> = skip.split(',').map(str::trim).filter(|s| !s.is_empty()).collect();
        for s in &skipped {
            assert!(matches!(*s, "import" | "search"), "BENCH_SKIP={skip:?}: use import and/or search");
        }
        let s = Settings {
            database_url: std::env::var("BENCH_DATABASE_URL").ok().filter(|v| !v.trim().is_empty()),
            subscribers: env_usize("BENCH_SUBSCRIBERS", 1_000_000),
            search_rounds: env_usize("BENCH_SEARCH_ROUNDS", 30),
            skip_import: skipped.contains(&"import"),
            skip_search: skipped.contains(&"search"),
            keep_database: !std::env::var("BENCH_KEEP_DATABASE").unwrap_or_default().is_empty(),
        };
        assert!(s.subscribers >= 1_000, "BENCH_SUBSCRIBERS must be at least 1000");
        s
    }
}

/// splitmix64: a tiny deterministic generator, seeded per row.
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

    /// An item of a per-mille weighted table; past the weights' sum, `None`.
    fn weighted<'a>(&mut self, table: &[(&'a str, u32)]) -> Option<&'a str> {
        let mut roll = self.below(1000) as u32;
        for (item, weight) in table {
            if roll < *weight {
                return Some(item);
            }
            roll -= weight;
        }
        None
    }
}

/// The ASCII form of a name part as people type it in addresses ("Đức" → "duc").
fn ascii(part: &str) -> String {
    deunicode::deunicode(part).to_lowercase()
}

/// Person `n` (1-based) of the generated population: the same on every run.
struct Person {
    name: String,
    email: String,
    language: &'static str,
    province: &'static str,
}

fn person(n: usize) -> Person {
    let mut rng = Rng(n as u64 ^ 0x7375_6273_6372);
    let surname = rng.weighted(&SURNAMES).unwrap_or("Nguyễn");
    let middle = MIDDLE_NAMES[rng.below(MIDDLE_NAMES.len())];
    let given = GIVEN_NAMES[rng.below(GIVEN_NAMES.len())];
    let name = format!("{surname} {middle} {given}");
    // A bijection of the row number, so every address is distinct but not sequential.
    let tag = (n as u64 * 7_919) % 10_000_019;
    let local = match rng.below(5) {
        0 => format!("{}.{}{tag}", ascii(given), ascii(surname)),
        1 => format!("{}{}{}{tag}", ascii(surname), ascii(middle), ascii(given)),
        2 => format!("{}{}{}{tag}", &ascii(surname)[..1], &ascii(middle)[..1], ascii(given)),
        3 => format!("{}_{}{}", ascii(given), ascii(surname), 1960 + tag % 50 + 100 * (tag / 50)),
        _ => format!("{}{tag}", ascii(given)),
    };
    let domain = match rng.weighted(&DOMAINS) {
        Some(d) => d.to_owned(),
        None => format!("{}{}.com.vn", TAIL_WORDS[rng.below(TAIL_WORDS.len())], rng.below(3_000)),
    };
    let language = match rng.below(20) {
        0 => "en",
        1..=9 => "vi",
        _ => "",
    };
    Person { name, email: format!("{local}@{domain}"), language, province: PROVINCES[rng.below(PROVINCES.len())] }
}

/// What the generated main CSV holds besides good rows.
#[derive(Default)]
struct Generated {
    duplicates: u64,
    bad: u64,
}

/// Writes the main CSV of `rows` rows (plus the header), with a column other tools
/// export that bantin does not know ("tinh_thanh", a province).
fn write_main_csv(path: &Path, rows: usize) -> Generated {
    let file = std::fs::File::create(path).expect("create the CSV");
    // Flexible: a few rows are short on purpose.
    let mut csv = csv::WriterBuilder::new().flexible(true).from_writer(BufWriter::with_capacity(1 << 20, file));
    csv.write_record(["email", "name", "language", "tinh_thanh"]).expect("write");
    let mut generated = Generated::default();
    for n in 1..=rows {
        if n % SHORT_ROW_EVERY == 0 {
            let p = person(n);
            csv.write_record([p.email.as_str(), p.name.as_str()]).expect("write");
            generated.bad += 1;
        } else if n % BAD_ADDRESS_EVERY == 0 {
            let p = person(n);
            let bad = match n % 3 {
                0 => p.email.replacen('@', " @", 1),
                1 => p.email.replace('@', ".at."),
                _ => format!("{}@", p.email),
            };
            csv.write_record([bad.as_str(), p.name.as_str(), p.language, p.province]).expect("write");
            generated.bad += 1;
        } else if n % DUPLICATE_EVERY == 0 && n > 500 {
            let earlier = n - 500;
            let p = person(earlier);
            csv.write_record([p.email.to_uppercase().as_str(), p.name.as_str(), p.language, p.province])
                .expect("write");
            // When the earlier row was a bad one, this address is new.
            if earlier % SHORT_ROW_EVERY != 0 && earlier % BAD_ADDRESS_EVERY != 0 {
                generated.duplicates += 1;
            }
        } else {
            let p = person(n);
            csv.write_record([p.email.as_str(), p.name.as_str(), p.language, p.province]).expect("write");
        }
    }
    csv.flush().expect("flush the CSV");
    generated
}

/// A CSV of every `step`-th person of the main file: people who are on a second list.
fn write_subset_csv(path: &Path, rows: usize, step: usize) -> usize {
    let file = std::fs::File::create(path).expect("create the CSV");
    let mut csv = csv::Writer::from_writer(BufWriter::with_capacity(1 << 20, file));
    csv.write_record(["email", "name"]).expect("write");
    let mut written = 0;
    for n in (step..=rows).step_by(step) {
        if n % SHORT_ROW_EVERY == 0 || n % BAD_ADDRESS_EVERY == 0 || n % DUPLICATE_EVERY == 0 {
            continue;
        }
        let p = person(n);
        csv.write_record([p.email.as_str(), p.name.as_str()]).expect("write");
        written += 1;
    }
    csv.flush().expect("flush the CSV");
    written
}

/// A `kB` line of /proc/self/status, in MiB.
fn status_mb(key: &str) -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").expect("read /proc/self/status");
    let kb: f64 = status
        .lines()
        .find_map(|l| l.strip_prefix(key)?.strip_prefix(':'))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no {key} in /proc/self/status"));
    kb / 1024.0
}

/// Resets VmHWM to the current RSS, so the peak measured is the import's own.
fn reset_peak_rss() {
    if let Err(e) = std::fs::write("/proc/self/clear_refs", "5") {
        eprintln!("bench: cannot reset the peak RSS ({e}); it includes the CSV generation");
    }
}

/// Gives a share of the subscribers the statuses a real list has after some years
/// (unsubscribed, waiting for confirmation, bounced, blocklisted): no store method
/// writes statuses in bulk, so this is plain SQL, the same on both backends.
async fn age_statuses(url: &DatabaseUrl) {
    const SQL: &str = "UPDATE subscribers SET status = CASE \
        WHEN id % 1000 < 80 THEN 'unsubscribed' WHEN id % 1000 < 120 THEN 'unconfirmed' \
        WHEN id % 1000 < 130 THEN 'bounced' ELSE 'blocklisted' END \
        WHERE id % 1000 < 132";
    match url {
        DatabaseUrl::Sqlite(u) => {
            let pool = sqlx::SqlitePool::connect(u).await.expect("open the SQLite file");
            sqlx::query(SQL).execute(&pool).await.expect("set statuses");
            pool.close().await;
        }
        DatabaseUrl::Postgres(u) => {
            let pool = sqlx::PgPool::connect(u).await.expect("connect to PostgreSQL");
            sqlx::query(SQL).execute(&pool).await.expect("set statuses");
            // What autovacuum does shortly after a bulk change in production.
            sqlx::query("ANALYZE").execute(&pool).await.expect("ANALYZE");
            pool.close().await;
        }
    }
}

fn list_input(audience: &Audience, slug: &str, name: &str) -> ListInput {
    let value = json!({ "slug": slug, "name": name, "schedule": "0 7 * * *" });
    ListInput::from_json(&value, &audience.list_defaults()).expect("a valid list")
}

async fn ensure_list(audience: &Audience, slug: &str, name: &str) -> MailingList {
    if let Some(list) = audience.store.list(slug).await.expect("read lists") {
        return list;
    }
    audience.store.create_list(&list_input(audience, slug, name), chrono::Utc::now()).await.expect("create a list")
}

struct Timed {
    report: ImportReport,
    seconds: f64,
    /// CPU time of the whole process (every thread) during the import: less noisy than
    /// the wall time on a shared machine.
    cpu_seconds: f64,
    peak_mb: f64,
}

/// User plus system CPU time of this process so far, from /proc/self/stat (in ticks of
/// 1/100 s, as Linux reports them to processes).
fn cpu_seconds() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").expect("read /proc/self/stat");
    // Fields after the command name (which may hold spaces, so split after its `)`).
    let fields: Vec<&str> =
        stat.rsplit_once(')').map(|(_, rest)| rest).unwrap_or_default().split_whitespace().collect();
    let ticks = |i: usize| fields.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
    // utime and stime are fields 14 and 15 of the line, 12 and 13 after the name.
    (ticks(11) + ticks(12)) / 100.0
}

async fn timed_import(audience: &Audience, path: &Path, list: &MailingList) -> Timed {
    let file = std::fs::File::open(path).expect("open the CSV");
    let reader = std::io::BufReader::with_capacity(1 << 16, file);
    reset_peak_rss();
    let cpu_before = cpu_seconds();
    let start = Instant::now();
    let mut next_note = 100_000;
    let mut progress = |rows: u64| {
        if rows >= next_note {
            eprintln!(
                "bench subscribers: {rows} rows, {:.0} rows/s, RSS {:.0} MB",
                rows as f64 / start.elapsed().as_secs_f64(),
                status_mb("VmRSS")
            );
            next_note += 100_000;
        }
    };
    let report =
        audience.import_csv(reader, list, ImportMode::Confirmed, &mut progress).await.expect("the import runs");
    Timed {
        seconds: start.elapsed().as_secs_f64(),
        cpu_seconds: cpu_seconds() - cpu_before,
        peak_mb: status_mb("VmHWM"),
        report,
    }
}

/// Loads the main file into one list and two subsets into two more (a quarter of the
/// people and a fiftieth); prints the figures.
async fn import(audience: &Audience, dir: &Path, settings: &Settings, backend: &str) {
    let rows = settings.subscribers;
    let main_csv = dir.join("subscribers.csv");
    let started = Instant::now();
    let generated = write_main_csv(&main_csv, rows);
    let bytes = std::fs::metadata(&main_csv).expect("the CSV").len();
    eprintln!(
        "bench subscribers: wrote {rows} rows ({:.1} MB; {} duplicates, {} bad) in {:.1} s",
        bytes as f64 / 1e6,
        generated.duplicates,
        generated.bad,
        started.elapsed().as_secs_f64()
    );
    let main = ensure_list(audience, "ban-tin-sang", "Bản tin sáng").await;
    let quarter = ensure_list(audience, "the-thao", "Thể thao").await;
    let fiftieth = ensure_list(audience, "nong-nghiep", "Nông nghiệp").await;

    let timed = timed_import(audience, &main_csv, &main).await;
    let r = &timed.report;
    assert_eq!(r.rows, rows as u64, "every row was read");
    assert_eq!(r.failed, generated.bad, "exactly the bad rows failed: {:?}", &r.errors[..r.errors.len().min(5)]);
    assert_eq!(r.duplicates, generated.duplicates, "exactly the repeated addresses were duplicates");
    assert_eq!(r.created, rows as u64 - generated.bad - generated.duplicates, "the rest were created");
    let rate = rows as f64 / timed.seconds;

    let mut merges = Vec::new();
    for (list, step) in [(&quarter, 4), (&fiftieth, 50)] {
        let path = dir.join(format!("{}.csv", list.slug));
        let written = write_subset_csv(&path, rows, step);
        let t = timed_import(audience, &path, list).await;
        assert_eq!(t.report.merged, written as u64, "every row of {} was a known address", list.slug);
        merges.push((list.slug.clone(), written, t));
    }

    println!();
    println!(
        "{:<9} {:>9} {:>9} {:>7} {:>9} {:>8} {:>10} {:>8} {:>13}",
        "backend", "rows", "created", "dupes", "failed", "seconds", "rows/s", "CPU s", "peak RSS MB"
    );
    println!(
        "{:<9} {:>9} {:>9} {:>7} {:>9} {:>8.1} {:>10.0} {:>8.1} {:>13.1}",
        backend, r.rows, r.created, r.duplicates, r.failed, timed.seconds, rate, timed.cpu_seconds, timed.peak_mb
    );
    for (slug, written, t) in &merges {
        println!(
            "  merge of {written} known addresses into {slug}: {:.1} s ({:.1} s CPU), {:.0} rows/s, peak RSS {:.1} MB",
            t.seconds,
            t.cpu_seconds,
            *written as f64 / t.seconds,
            t.peak_mb
        );
    }
    println!("  CSV {:.1} MB; warnings: {:?}", bytes as f64 / 1e6, r.warnings);
    println!(
        "import {backend}: {rate:.0} rows/s, peak {:.0} MB, {:.0} µs CPU a row",
        timed.peak_mb,
        timed.cpu_seconds * 1e6 / rows as f64
    );
}

/// One kind of admin search, and the queries of that kind a round runs.
struct QueryKind {
    name: &'static str,
    queries: Vec<SubscriberQuery>,
}

fn query(text: Option<&str>, list_id: Option<i64>, status: Option<SubscriberStatus>) -> SubscriberQuery {
    SubscriberQuery { text: text.map(str::to_owned), list_id, status, before_id: None, limit: PAGE }
}

/// The mix: what admins type (whole addresses, parts of them, domains, names with and
/// without diacritics, two letters, common and rare words), alone and with list and
/// status filters, on the first page and deep in the keyset pages.
async fn query_kinds(store: &Arc<dyn Store>, rows: usize, lists: &[MailingList; 3]) -> Vec<QueryKind> {
    let [main, quarter, fiftieth] = lists;
    let picks: Vec<Person> = [17, rows / 3 + 5, rows / 2 + 1, rows - 3, 4_242].into_iter().map(person).collect();
    let active = Some(SubscriberStatus::Active);
    let bounced = Some(SubscriberStatus::Bounced);
    let mut kinds = vec![
        QueryKind { name: "exact email", queries: picks.iter().map(|p| query(Some(&p.email), None, None)).collect() },
        QueryKind {
            name: "email fragment",
            queries: picks
                .iter()
                .map(|p| {
                    let local = p.email.split('@').next().unwrap_or_default();
                    query(Some(&local[local.len().saturating_sub(7)..]), None, None)
                })
                .collect(),
        },
        QueryKind {
            name: "domain",
            queries: vec![
                query(Some("@gmail.com"), None, None),
                query(Some("yahoo.com.vn"), None, None),
                query(Some("@hiephoa.gov.vn"), None, None),
                query(Some("nongsan17.com.vn"), None, None),
                query(Some("@vnu.edu.vn"), Some(fiftieth.id), None),
            ],
        },
        QueryKind {
            name: "name, diacritics",
            queries: vec![
                query(Some("Nguyễn Thị"), None, None),
                query(Some("Hoàng Đức"), None, None),
                query(Some("Trịnh Hồng Nhung"), None, None),
                query(Some("quách bảo uyên"), None, None),
                query(Some("Thùy Linh"), Some(quarter.id), active),
            ],
        },
        QueryKind {
            name: "2 characters",
            queries: vec![
                query(Some("an"), None, None),
                query(Some("hà"), None, None),
                query(Some("vy"), Some(main.id), None),
                query(Some("Đỗ"), None, bounced),
                query(Some("qz"), None, None),
            ],
        },
        QueryKind {
            name: "common term",
            queries: vec![
                query(Some("nguyen"), None, None),
                query(Some("gmail"), None, active),
                query(Some("thi"), Some(quarter.id), None),
                query(Some("văn"), Some(fiftieth.id), None),
                query(Some(".com"), None, bounced),
            ],
        },
        QueryKind {
            name: "rare term",
            queries: vec![
                query(Some("khong-ai-co"), None, None),
                query(Some("quach.bao"), None, None),
                query(Some("100%_"), None, None),
                query(Some("tuan.lam"), Some(quarter.id), None),
                query(Some("hiephoa"), None, Some(SubscriberStatus::Blocklisted)),
            ],
        },
        QueryKind {
            name: "filters only",
            queries: vec![
                query(None, None, None),
                query(None, Some(quarter.id), None),
                query(None, Some(fiftieth.id), active),
                query(None, None, bounced),
                query(None, None, Some(SubscriberStatus::Blocklisted)),
            ],
        },
    ];
    // Deep pages: the cursor an admin reaches after paging 20 times through a common
    // search, and one near the oldest subscribers.
    let mut deep = Vec::new();
    for base in [
        query(Some("nguyen"), None, None),
        query(None, Some(quarter.id), active),
        query(Some("gmail"), None, None),
        query(Some("Trần"), Some(main.id), None),
    ] {
        let mut page = base.clone();
        for _ in 0..20 {
            let found = store.search_subscribers(&page).await.expect("search");
            let Some(last) = found.last() else { break };
            page.before_id = Some(last.id);
        }
        deep.push(page);
    }
    let oldest = (rows / 200) as i64;
    deep.push(SubscriberQuery { before_id: Some(oldest), ..query(Some("thị"), None, None) });
    kinds.push(QueryKind { name: "deep page", queries: deep });
    kinds
}

fn percentile(sorted: &[Duration], p: f64) -> f64 {
    sorted[((sorted.len() - 1) as f64 * p).round() as usize].as_secs_f64() * 1000.0
}

async fn search(store: &Arc<dyn Store>, settings: &Settings, backend: &str, lists: &[MailingList; 3]) {
    let total: i64 = store.subscriber_counts().await.expect("counts").iter().map(|c| c.count).sum();
    let kinds = query_kinds(store, settings.subscribers, lists).await;
    // One warm-up round, as an admin's second search finds the cache warm too.
    for kind in &kinds {
        for q in &kind.queries {
            store.search_subscribers(q).await.expect("search");
        }
    }
    let mut latencies: BTreeMap<&str, Vec<Duration>> = BTreeMap::new();
    let mut slowest: BTreeMap<&str, (Duration, String)> = BTreeMap::new();
    for _ in 0..settings.search_rounds {
        for kind in &kinds {
            for q in &kind.queries {
                let start = Instant::now();
                let found = store.search_subscribers(q).await.expect("search");
                let took = start.elapsed();
                assert!(found.len() as i64 <= PAGE, "a page holds at most {PAGE}");
                latencies.entry(kind.name).or_default().push(took);
                let worst = slowest.entry(kind.name).or_insert((Duration::ZERO, String::new()));
                if took > worst.0 {
                    *worst = (took, describe(q));
                }
            }
        }
    }
    println!();
    println!("search {backend}, {total} subscribers, {} rounds, pages of {PAGE}: latency ms", settings.search_rounds);
    println!("{:<18} {:>7} {:>7} {:>7} {:>7} {:>7}  slowest query", "kind", "runs", "p50", "p95", "p99", "max");
    let mut all = Vec::new();
    for kind in &kinds {
        let mut l = latencies.remove(kind.name).unwrap_or_default();
        l.sort();
        println!(
            "{:<18} {:>7} {:>7.2} {:>7.2} {:>7.2} {:>7.2}  {}",
            kind.name,
            l.len(),
            percentile(&l, 0.5),
            percentile(&l, 0.95),
            percentile(&l, 0.99),
            percentile(&l, 1.0),
            slowest[kind.name].1
        );
        all.extend(l);
    }
    all.sort();
    println!(
        "{:<18} {:>7} {:>7.2} {:>7.2} {:>7.2} {:>7.2}",
        "all",
        all.len(),
        percentile(&all, 0.5),
        percentile(&all, 0.95),
        percentile(&all, 0.99),
        percentile(&all, 1.0)
    );
    println!(
        "search {backend}: p50 {:.1} ms, p95 {:.1} ms, p99 {:.1} ms",
        percentile(&all, 0.5),
        percentile(&all, 0.95),
        percentile(&all, 0.99)
    );
}

fn describe(q: &SubscriberQuery) -> String {
    let mut parts = Vec::new();
    if let Some(t) = &q.text {
        parts.push(format!("{t:?}"));
    }
    if let Some(l) = q.list_id {
        parts.push(format!("list {l}"));
    }
    if let Some(s) = q.status {
        parts.push(s.as_str().to_owned());
    }
    if let Some(b) = q.before_id {
        parts.push(format!("before {b}"));
    }
    parts.join(", ")
}

fn main() {
    let settings = Settings::from_env();
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("a tokio runtime");
    let dir = tempfile::Builder::new().prefix("bantin-bench-").tempdir().expect("a temp dir");
    let (backend, database_url, pg_database) = match &settings.database_url {
        // With BENCH_SKIP=import the URL names a database a previous run kept.
        Some(url) if (url.starts_with("postgres://") || url.starts_with("postgresql://")) && settings.skip_import => {
            ("postgres", DatabaseUrl::Postgres(url.clone()), None)
        }
        Some(url) if url.starts_with("postgres://") || url.starts_with("postgresql://") => {
            let (name, db_url) = runtime.block_on(postgres::create_pg_database(url));
            ("postgres", DatabaseUrl::Postgres(db_url), Some((url.clone(), name)))
        }
        Some(url) if url.starts_with("sqlite:") => ("sqlite", DatabaseUrl::Sqlite(url.clone()), None),
        Some(url) => panic!("BENCH_DATABASE_URL={url:?}: use sqlite://… or postgres://…"),
        None => {
            assert!(!settings.skip_import, "BENCH_SKIP=import needs BENCH_DATABASE_URL");
            let url = format!("sqlite://{}", dir.path().join("bantin.db").display());
            ("sqlite", DatabaseUrl::Sqlite(url), None)
        }
    };
    eprintln!("bench subscribers: {backend} at {}; {} rows", database_url.redacted(), settings.subscribers);
    runtime.block_on(async {
        let mut config = Config::defaults();
        config.database_url = database_url.clone();
        config.data_dir = dir.path().join("data");
        let store = store::connect(&database_url).await.expect("open and migrate the database");
        let templates = Arc::new(Templates::load(None).expect("the embedded templates"));
        let audience = Audience::new(&config, store.clone(), templates).await.expect("the audience");
        if !settings.skip_import {
            import(&audience, dir.path(), &settings, backend).await;
            age_statuses(&database_url).await;
        }
        if !settings.skip_search {
            let mut lists = Vec::new();
            for slug in ["ban-tin-sang", "the-thao", "nong-nghiep"] {
                lists.push(store.list(slug).await.expect("read lists").expect("the bench lists exist; import first"));
            }
            let lists: [MailingList; 3] = lists.try_into().expect("three lists");
            search(&store, &settings, backend, &lists).await;
        }
    });
    if let Some((admin_url, name)) = &pg_database {
        if settings.keep_database {
            eprintln!("bench subscribers: kept the database {name} (BENCH_KEEP_DATABASE)");
        } else {
            runtime.block_on(postgres::drop_pg_database(admin_url, name));
        }
    }
}
