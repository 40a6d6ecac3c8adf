//! Inbox folders: article files (`.json`, `.jsonl`, `.md`, read as `bantin import`
//! reads them) dropped into the folder are ingested, then moved to `processed/`, or to
//! `failed/` with `NAME.error.txt` beside them. A file is read only once two scans saw
//! the same size and modification time, so one still being written is left alone; hidden
//! and temporary names (`.x.json`, `x.json.part`) are not article files and never read.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::SystemTime;

use crate::ingest::files::{self, EXTENSIONS};
use crate::ingest::{Ingestor, ItemError};
use crate::store::Change;

pub const PROCESSED: &str = "processed";
pub const FAILED: &str = "failed";
/// Articles written per transaction.
const CHUNK: usize = 500;

/// What a file looked like when last seen: its size and modification time.
type Sighting = (u64, SystemTime);

/// Files seen by earlier scans, across every inbox.
#[derive(Default)]
pub struct Sightings(Mutex<HashMap<PathBuf, Sighting>>);

/// What one scan did.
#[derive(Debug, Default)]
pub struct InboxScan {
    pub items_found: i64,
    pub items_stored: i64,
    /// One line per file moved to failed/.
    pub failed_files: Vec<String>,
}

fn is_article_file(path: &Path) -> bool {
    let Some(name) = path.file_name().and_then(|n| n.to_str()) else { return false };
    let extension = path.extension().and_then(|e| e.to_str()).unwrap_or_default().to_ascii_lowercase();
    !name.starts_with(['.', '~', '#']) && EXTENSIONS.contains(&extension.as_str())
}

/// Files whose size and time have not changed since the previous scan, by name.
fn settled_files(dir: &Path, sightings: &Sightings) -> std::io::Result<Vec<PathBuf>> {
    let mut present = HashMap::new();
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let path = entry.path();
        let meta = entry.metadata()?;
        if meta.is_file() && is_article_file(&path) {
            present.insert(path, (meta.len(), meta.modified()?));
        }
    }
    let mut seen = sightings.0.lock().unwrap_or_else(|e| e.into_inner());
    seen.retain(|path, _| !path.starts_with(dir) || present.contains_key(path));
    let mut settled = Vec::new();
    for (path, now) in present {
        if seen.insert(path.clone(), now) == Some(now) {
            settled.push(path);
        }
    }
    settled.sort();
    Ok(settled)
}

/// Scans `dir` once. An `Err` means the folder itself could not be used (or the
/// database failed): the source failed, and its files stay where they are.
pub async fn scan(dir: &Path, ingestor: &Ingestor, sightings: &Sightings) -> Result<InboxScan, String> {
    for sub in ["", PROCESSED, FAILED] {
        std::fs::create_dir_all(dir.join(sub))
            .map_err(|e| format!("cannot create {}: {e}", dir.join(sub).display()))?;
    }
    let files = settled_files(dir, sightings).map_err(|e| format!("cannot read the folder {}: {e}", dir.display()))?;
    let mut scan = InboxScan::default();
    for path in files {
        let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        let read_path = path.clone();
        let items = tokio::task::spawn_blocking(move || files::read(&read_path))
            .await
            .map_err(|e| format!("reading {name} stopped: {e}"))?;
        let errors = match items {
            Ok(items) => {
                scan.items_found += items.len() as i64;
                ingest_file(ingestor, &items, &mut scan).await?
            }
            Err(error) => vec![error],
        };
        let moved = if errors.is_empty() {
            move_to(&path, &dir.join(PROCESSED), None)
        } else {
            scan.failed_files.push(format!("{name}: {}", errors.join("; ")));
            move_to(&path, &dir.join(FAILED), Some(&errors))
        };
        moved.map_err(|e| format!("cannot move {name} out of the inbox: {e}"))?;
        sightings.0.lock().unwrap_or_else(|e| e.into_inner()).remove(&path);
    }
    Ok(scan)
}

/// Ingests a file's items; returns each refused item's place and reason.
async fn ingest_file(
    ingestor: &Ingestor,
    items: &[files::FileItem],
    scan: &mut InboxScan,
) -> Result<Vec<String>, String> {
    let mut errors = Vec::new();
    for chunk in items.chunks(CHUNK) {
        let split = files::split(chunk);
        errors.extend(split.unreadable.iter().map(|(locator, e)| format!("{locator}: {e}")));
        let reports = ingestor.ingest(&split.values).await.map_err(|e| format!("storing articles failed: {e}"))?;
        for (report, locator) in reports.iter().zip(split.locators) {
            match &report.outcome {
                Ok(done) if done.change != Change::Unchanged => scan.items_stored += 1,
                Ok(_) => {}
                Err(ItemError::Invalid(e)) => {
                    let id = report.id.as_deref().map(|id| format!(" (id {id})")).unwrap_or_default();
                    errors.push(format!("{locator}{id}: {e}"));
                }
                Err(ItemError::Storage(e)) => return Err(format!("storing articles failed: {e}")),
            }
        }
    }
    Ok(errors)
}

/// Moves `path` into `folder` under a free name; with errors, writes them beside it.
fn move_to(path: &Path, folder: &Path, errors: Option<&[String]>) -> std::io::Result<()> {
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let (stem, extension) = match name.rsplit_once('.') {
        Some((stem, ext)) => (stem.to_owned(), format!(".{ext}")),
        None => (name.clone(), String::new()),
    };
    let mut target = folder.join(&name);
    let mut n = 1;
    while target.exists() {
        n += 1;
        target = folder.join(format!("{stem}-{n}{extension}"));
    }
    std::fs::rename(path, &target)?;
    if let Some(errors) = errors {
        let mut report = target.into_os_string();
        report.push(".error.txt");
        std::fs::write(report, format!("{}\n", errors.join("\n")))?;
    }
    Ok(())
}
