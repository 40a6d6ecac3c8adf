//! Subscriber CSV import and export. Import is forgiving about the file and strict about
//! each row: a BOM, header case, common column names from other tools (Mailchimp's
//! "Email Address", "First Name"/"Last Name") and unknown columns are handled with a
//! warning; a row with a bad address, broken quoting or text that is not UTF-8 is reported
//! with its line number while the good rows are written, in batches.

use std::collections::{HashSet, VecDeque};
use std::io::Read;

use chrono::Utc;
use serde::Serialize;
use serde_json::{Map, Value};

use super::Audience;
use crate::config::Language;
use crate::domain::audience::{SubscriberStatus, SubscriptionStatus, parse_email, parse_subscriber_name};
use crate::store::StoreError;
use crate::store::audience::{MailingList, Merge, Merged, NewSubscriber};

/// Rows written per transaction. Large, because each SQLite commit flushes the trigram
/// index's pending terms into a new segment that must later be merged, and writes every
/// page of the address index it touched (at a million subscribers, nearly all of them)
/// to the WAL and then to the file. 40,000 rows a commit hold the write lock a few
/// seconds, and keep an import of a million under 200 MB.
const BATCH_ROWS: usize = 40_000;
/// Rows read between two yields to the runtime while a batch is being written.
const YIELD_EVERY: u64 = 256;
/// Row errors kept in the report; beyond this they are only counted.
const MAX_REPORTED_ERRORS: usize = 1_000;
/// Subscribers read per query during export.
const EXPORT_PAGE: i64 = 2_000;

pub const EXPORT_COLUMNS: [&str; 8] =
    ["email", "name", "language", "status", "lists", "created_at", "confirmed_at", "attributes"];

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Column {
    Email,
    Name,
    FirstName,
    LastName,
    Language,
    Attributes,
    /// Written by our own export; not taken from an import (the --list and the import
    /// mode decide), but not reported as unknown either.
    Ignored,
    Unknown,
}

fn column(header: &str) -> Column {
    let h = header.trim().trim_start_matches('\u{feff}').trim().to_lowercase().replace(['-', '_'], " ");
    match h.as_str() {
        "email" | "email address" | "e mail" | "mail" => Column::Email,
        "name" | "full name" | "họ tên" | "ho ten" => Column::Name,
        "first name" | "firstname" => Column::FirstName,
        "last name" | "lastname" => Column::LastName,
        "language" | "lang" => Column::Language,
        "attributes" | "attribs" => Column::Attributes,
        "id" | "status" | "lists" | "created at" | "confirmed at" => Column::Ignored,
        _ => Column::Unknown,
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct RowError {
    /// 1-based line in the file.
    pub line: u64,
    pub error: String,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct ImportReport {
    pub rows: u64,
    pub created: u64,
    pub merged: u64,
    pub failed: u64,
    /// The same address twice in the file: the first row counts.
    pub duplicates: u64,
    pub confirmations_sent: u64,
    pub warnings: Vec<String>,
    /// The first [`MAX_REPORTED_ERRORS`] row errors.
    pub errors: Vec<RowError>,
}

impl ImportReport {
    fn fail(&mut self, line: u64, error: String) {
        self.failed += 1;
        if self.errors.len() < MAX_REPORTED_ERRORS {
            self.errors.push(RowError { line, error });
        }
    }
}

impl std::fmt::Display for ImportReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} rows: {} new, {} merged, {} duplicates in the file, {} failed",
            self.rows, self.created, self.merged, self.duplicates, self.failed
        )?;
        if self.confirmations_sent > 0 {
            write!(f, "; {} confirmation emails sent", self.confirmations_sent)?;
        }
        Ok(())
    }
}

/// Why a whole file was refused (nothing was written).
#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    #[error("{0}")]
    File(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// How an import treats the people in it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ImportMode {
    /// They agreed elsewhere: active at once.
    Confirmed,
    /// Each new address gets a confirmation email and stays unconfirmed until it clicks.
    OptIn,
}

struct Columns {
    email: usize,
    name: Option<usize>,
    first: Option<usize>,
    last: Option<usize>,
    language: Option<usize>,
    attributes: Option<usize>,
}

fn field(record: &csv::ByteRecord, index: Option<usize>) -> Result<&str, String> {
    match index.and_then(|i| record.get(i)) {
        Some(bytes) => std::str::from_utf8(bytes)
            .map_err(|_| "is not UTF-8 text: save the file as CSV UTF-8 and import it again".to_owned()),
        None => Ok(""),
    }
}

fn parse_row(record: &csv::ByteRecord, columns: &Columns, language: Language) -> Result<NewSubscriber, String> {
    let email = parse_email("email", field(record, Some(columns.email))?).map_err(|e| e.to_string())?;
    let mut name = field(record, columns.name)?.to_owned();
    if name.trim().is_empty() {
        name = format!("{} {}", field(record, columns.first)?.trim(), field(record, columns.last)?.trim());
    }
    let name = parse_subscriber_name("name", unguard_formula(&name)).map_err(|e| e.to_string())?;
    let language = match field(record, columns.language)?.trim() {
        "" => language,
        raw => Language::parse(raw).ok_or_else(|| format!("language: {raw:?} is not vi or en"))?,
    };
    let attributes = match field(record, columns.attributes)?.trim() {
        "" => Map::new(),
        raw => match serde_json::from_str::<Value>(raw) {
            Ok(Value::Object(map)) => map,
            _ => return Err("attributes: must be a JSON object".into()),
        },
    };
    Ok(NewSubscriber { email, name, language, status: SubscriberStatus::Active, attributes, list_ids: Vec::new() })
}

/// The input as the CSV reader reads it, noting where its line-end bytes are. The csv
/// crate counts a CRLF file's lines one too low (rust-csv #395), and the byte offset it
/// gives a row may point at the line end before it, so a row's line is found from its
/// offset: skip the line-end bytes there, then count the `\n`s before. Line ends behind
/// the current row are dropped as it goes, so memory stays small.
struct LineEnds<R> {
    inner: R,
    read: u64,
    /// Offsets of `\r` and `\n` bytes not yet passed, and whether each is a `\n`.
    ahead: VecDeque<(u64, bool)>,
    passed: u64,
}

impl<R> LineEnds<R> {
    fn new(inner: R) -> LineEnds<R> {
        LineEnds { inner, read: 0, ahead: VecDeque::new(), passed: 0 }
    }

    /// The 1-based line of the row that csv says starts at `byte`.
    fn line_at(&mut self, byte: u64) -> u64 {
        let mut start = byte;
        while let Some(&(at, newline)) = self.ahead.front() {
            if at > start {
                break;
            }
            if at == start {
                start += 1;
            }
            self.passed += u64::from(newline);
            self.ahead.pop_front();
        }
        self.passed + 1
    }
}

impl<R: Read> Read for LineEnds<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        for i in memchr::memchr2_iter(b'\r', b'\n', &buf[..n]) {
            self.ahead.push_back((self.read + i as u64, buf[i] == b'\n'));
        }
        self.read += n as u64;
        Ok(n)
    }
}

/// A row's read error without csv's own position (its line is wrong for CRLF files).
fn read_error(e: &csv::Error) -> String {
    match e.kind() {
        csv::ErrorKind::Io(io) => io.to_string(),
        csv::ErrorKind::Utf8 { err, .. } => format!("field {} is not UTF-8 text", err.field() + 1),
        csv::ErrorKind::UnequalLengths { expected_len, len, .. } => {
            format!("has {len} fields but the header has {expected_len}")
        }
        _ => e.to_string(),
    }
}

impl Audience {
    /// Imports subscribers into `list`. `progress` is told the rows read so far.
    pub async fn import_csv(
        &self,
        input: impl Read,
        list: &MailingList,
        mode: ImportMode,
        progress: &mut (dyn FnMut(u64) + Send),
    ) -> Result<ImportReport, ImportError> {
        let mut reader = csv::ReaderBuilder::new().flexible(true).has_headers(true).from_reader(LineEnds::new(input));
        let headers =
            reader.byte_headers().map_err(|e| ImportError::File(format!("cannot read the header row: {e}")))?;
        let mut report = ImportReport::default();
        let mut found: Vec<(usize, Column)> = Vec::new();
        for (i, raw) in headers.iter().enumerate() {
            let text = String::from_utf8_lossy(raw);
            match column(&text) {
                Column::Unknown => {
                    report.warnings.push(format!("column {:?} is not known and was ignored", text.trim()))
                }
                c => found.push((i, c)),
            }
        }
        let find = |c: Column| found.iter().find(|(_, f)| *f == c).map(|(i, _)| *i);
        let Some(email) = find(Column::Email) else {
            return Err(ImportError::File(
                "the file has no email column: the first row must name the columns, e.g. email,name".into(),
            ));
        };
        let header_len = headers.len();
        let columns = Columns {
            email,
            name: find(Column::Name),
            first: find(Column::FirstName),
            last: find(Column::LastName),
            language: find(Column::Language),
            attributes: find(Column::Attributes),
        };
        let status = match mode {
            ImportMode::Confirmed => SubscriberStatus::Active,
            ImportMode::OptIn => SubscriberStatus::Unconfirmed,
        };
        let mut seen = Fingerprints::default();
        let mut batch: Vec<NewSubscriber> = Vec::with_capacity(BATCH_ROWS);
        // The batch being written while the next one is read: the database works on its
        // own thread, so reading and parsing the file takes no time of its own.
        let mut writing: Option<Writing> = None;
        let mut record = csv::ByteRecord::new();
        loop {
            if writing.is_some() && report.rows % YIELD_EVERY == 0 {
                // On a single-threaded runtime the write only moves on when this yields.
                tokio::task::yield_now().await;
            }
            let before = reader.position().byte();
            match reader.read_byte_record(&mut record) {
                Ok(false) => break,
                Ok(true) => {}
                Err(e) => {
                    report.rows += 1;
                    let byte = e.position().map_or(before, csv::Position::byte);
                    let line = reader.get_mut().line_at(byte);
                    report.fail(line, format!("cannot be read: {}", read_error(&e)));
                    continue;
                }
            }
            let byte = record.position().map_or(before, csv::Position::byte);
            let line = reader.get_mut().line_at(byte);
            report.rows += 1;
            if record.len() != header_len {
                report.fail(line, format!("has {} fields but the header has {header_len}", record.len()));
                continue;
            }
            match parse_row(&record, &columns, list_language(list)) {
                Ok(mut row) => {
                    if !seen.insert(&row.email.key()) {
                        report.duplicates += 1;
                        continue;
                    }
                    row.status = status;
                    row.list_ids = vec![list.id];
                    batch.push(row);
                }
                Err(error) => report.fail(line, error),
            }
            if batch.len() >= BATCH_ROWS {
                if let Some(previous) = writing.take() {
                    self.finish_batch(previous, mode, &mut report).await?;
                }
                writing = Some(self.start_batch(std::mem::replace(&mut batch, Vec::with_capacity(BATCH_ROWS)), mode));
                seen.settle();
                progress(report.rows);
            }
        }
        if let Some(previous) = writing.take() {
            self.finish_batch(previous, mode, &mut report).await?;
        }
        if !batch.is_empty() {
            let last = self.start_batch(batch, mode);
            self.finish_batch(last, mode, &mut report).await?;
        }
        progress(report.rows);
        Ok(report)
    }

    /// Starts writing a batch (in its own transaction) on a task of its own.
    fn start_batch(&self, batch: Vec<NewSubscriber>, mode: ImportMode) -> Writing {
        let store = self.store.clone();
        let now = Utc::now();
        let subscription = match mode {
            ImportMode::Confirmed => SubscriptionStatus::Active,
            ImportMode::OptIn => SubscriptionStatus::Unconfirmed,
        };
        let task = tokio::spawn(async move { store.merge_subscribers(&batch, subscription, now).await });
        Writing { task, now }
    }

    /// Waits for a batch to be written, counts it and sends the confirmations it calls for.
    async fn finish_batch(
        &self,
        writing: Writing,
        mode: ImportMode,
        report: &mut ImportReport,
    ) -> Result<(), ImportError> {
        let merged = match writing.task.await {
            Ok(merged) => merged?,
            Err(e) => std::panic::resume_unwind(e.into_panic()),
        };
        for m in &merged {
            match m.merge {
                Merge::Created => report.created += 1,
                Merge::Merged => report.merged += 1,
            }
            if mode == ImportMode::OptIn && m.status == SubscriberStatus::Unconfirmed {
                match self.send_confirmation(m.id, writing.now).await {
                    Ok(()) => report.confirmations_sent += 1,
                    Err(e) => {
                        tracing::warn!(subscriber_id = m.id, error = format!("{e:#}"), "confirmation email not sent")
                    }
                }
            }
        }
        Ok(())
    }

    /// One page of the export of every subscriber (of one list): CSV text, with the
    /// header row when `after` is 0, for subscribers with ids above `after`. Pages are
    /// written out one by one, so an export of a million rows never sits in memory.
    pub async fn export_page(&self, list_id: Option<i64>, after: i64) -> anyhow::Result<ExportPage> {
        let mut writer = csv::Writer::from_writer(Vec::new());
        if after == 0 {
            writer.write_record(EXPORT_COLUMNS)?;
        }
        let page = self.store.export_subscribers(list_id, after, EXPORT_PAGE).await?;
        for detail in &page {
            let s = &detail.subscriber;
            let lists: Vec<&str> = detail
                .subscriptions
                .iter()
                .filter(|sub| sub.status != SubscriptionStatus::Unsubscribed)
                .map(|sub| sub.list.as_str())
                .collect();
            writer.write_record([
                s.email.as_str(),
                &guard_formula(&s.name),
                s.language.as_str(),
                s.status.as_str(),
                &lists.join(" "),
                &s.created_at.to_rfc3339(),
                &s.confirmed_at.map(|t| t.to_rfc3339()).unwrap_or_default(),
                &Value::Object(s.attributes.clone()).to_string(),
            ])?;
        }
        let csv = writer.into_inner().map_err(|e| anyhow::anyhow!("cannot write the CSV: {}", e.error()))?;
        let next = page.last().map(|d| d.subscriber.id).filter(|_| page.len() as i64 == EXPORT_PAGE);
        Ok(ExportPage { csv, rows: page.len() as u64, next })
    }
}

/// A batch being written, and the time it is written as.
struct Writing {
    task: tokio::task::JoinHandle<Result<Vec<Merged>, StoreError>>,
    now: chrono::DateTime<Utc>,
}

/// A page of a CSV export, and where the next one starts.
pub struct ExportPage {
    pub csv: Vec<u8>,
    pub rows: u64,
    /// The `after` for the next page; `None` when this was the last.
    pub next: Option<i64>,
}

/// Text a spreadsheet would run as a formula (`=HYPERLINK(…)`, `+`, `-`, `@`) gets a
/// leading `'` in exports, as OWASP advises; an import takes it off again, so an exported
/// file imports back unchanged.
fn guard_formula(text: &str) -> std::borrow::Cow<'_, str> {
    if text.starts_with(['=', '+', '-', '@', '\t', '\r']) { format!("'{text}").into() } else { text.into() }
}

fn unguard_formula(text: &str) -> &str {
    match text.strip_prefix('\'') {
        Some(rest) if rest.starts_with(['=', '+', '-', '@', '\t', '\r']) => rest,
        _ => text,
    }
}

/// The addresses already read, as 128-bit fingerprints (a million addresses as strings
/// take about 100 MB, as fingerprints 16 MB; two addresses sharing one is about as likely
/// as 1 in 10^26): a sorted vector of those of the batches written, and a set of those of
/// the batch being read. A hash set of them all would need 35 MB at a million, and 53 MB
/// for the moment it grows.
#[derive(Default)]
struct Fingerprints {
    settled: Vec<u128>,
    recent: HashSet<u128>,
}

impl Fingerprints {
    /// Adds the address; `false` when it was there already.
    fn insert(&mut self, key: &str) -> bool {
        let print = address_fingerprint(key);
        self.settled.binary_search(&print).is_err() && self.recent.insert(print)
    }

    /// Moves the recent fingerprints into the sorted vector.
    fn settle(&mut self) {
        self.settled.reserve_exact(self.recent.len());
        self.settled.extend(self.recent.drain());
        self.settled.sort_unstable();
    }
}

fn address_fingerprint(key: &str) -> u128 {
    use std::hash::{Hash, Hasher};
    let half = |salt: u8| {
        let mut hasher = std::hash::DefaultHasher::new();
        salt.hash(&mut hasher);
        key.hash(&mut hasher);
        hasher.finish()
    };
    (u128::from(half(1)) << 64) | u128::from(half(2))
}

fn list_language(list: &MailingList) -> Language {
    Language::parse(&list.language).unwrap_or(Language::Vi)
}

#[cfg(test)]
mod tests {
    use super::LineEnds;

    /// The line of every record, as the import reports it.
    fn lines(input: &str) -> Vec<u64> {
        let mut reader =
            csv::ReaderBuilder::new().flexible(true).has_headers(true).from_reader(LineEnds::new(input.as_bytes()));
        let mut record = csv::ByteRecord::new();
        let mut lines = Vec::new();
        while reader.read_byte_record(&mut record).unwrap() {
            let byte = record.position().unwrap().byte();
            lines.push(reader.get_mut().line_at(byte));
        }
        lines
    }

    #[test]
    fn rows_are_numbered_by_their_line_in_the_file_for_lf_and_crlf() {
        let lf = "\u{feff}email,name\na@x.vn,An\n\nb@x.vn,\"Bình\nhai dòng\"\nc@x.vn,Chi\n";
        assert_eq!(lines(lf), [2, 4, 6]);
        assert_eq!(lines(&lf.replace('\n', "\r\n")), [2, 4, 6]);
        assert_eq!(lines("email\r\na@x.vn\r\nb@x.vn"), [2, 3], "no line end after the last row");
    }

    #[test]
    fn an_address_is_seen_once_whether_its_batch_was_written_or_not() {
        let mut seen = super::Fingerprints::default();
        assert!(seen.insert("a@x.vn") && seen.insert("b@x.vn"));
        assert!(!seen.insert("a@x.vn"));
        seen.settle();
        assert!(!seen.insert("b@x.vn"), "a written batch");
        assert!(seen.insert("c@x.vn") && !seen.insert("c@x.vn"));
        seen.settle();
        assert_eq!(seen.settled.len(), 3);
        assert!(seen.recent.is_empty());
    }

    #[test]
    fn names_a_spreadsheet_would_run_are_exported_guarded_and_imported_back_unchanged() {
        for name in ["=HYPERLINK(\"http://x\")", "+84 912", "-1", "@SUM(A1)"] {
            let exported = super::guard_formula(name);
            assert!(exported.starts_with('\''), "{exported}");
            assert_eq!(super::unguard_formula(&exported), name);
        }
        assert_eq!(super::guard_formula("Lê Thị Hoa"), "Lê Thị Hoa");
        assert_eq!(super::unguard_formula("'Tuấn"), "'Tuấn", "a quote before ordinary text is the name's own");
    }
}
