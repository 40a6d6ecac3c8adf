//! SQLite: the embedded default. One file, WAL, a busy timeout, and a single-connection
//! write pool so this process's writers queue in order instead of polling the lock.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::Mutex;
use std::time::Duration;

use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{Sqlite, SqliteConnection, SqlitePool, Transaction};
use tokio_util::sync::CancellationToken;

use super::StoreError;
use super::audience::audience_store_impl;
use super::digests::digest_store_impl;
use super::queries::shared_store_impl;
use super::sources::source_store_impl;

pub struct SqliteStore {
    /// Readers.
    pool: SqlitePool,
    /// The one writer of this process.
    write_pool: SqlitePool,
    /// "category:<path>" / "author:<slug>" → id, for names already in the database.
    names: Mutex<HashMap<String, i64>>,
    /// Stops the WAL checkpointer when the store goes.
    checkpointer: CancellationToken,
}

impl Drop for SqliteStore {
    fn drop(&mut self) {
        self.checkpointer.cancel();
    }
}

/// WAL pages after which the writer checkpoints at commit itself (SQLite's default is
/// 1,000): only a safety net, as the checkpointer normally keeps the WAL far shorter.
const WRITER_AUTOCHECKPOINT_PAGES: &str = "16384";
/// A WAL file larger than this (after a burst of writes) is cut back to it when the WAL
/// starts over.
const WAL_SIZE_LIMIT_BYTES: &str = "67108864";
/// How often the checkpointer copies committed WAL pages into the database file.
const CHECKPOINT_EVERY: Duration = Duration::from_millis(500);

/// WAL frames not yet copied into the database file below which the checkpointer waits
/// (SQLite's own default for a writer): an isolated publication is not followed by a
/// checkpoint and its fsync; a burst of writes is checkpointed every CHECKPOINT_EVERY.
const CHECKPOINT_AT_FRAMES: u32 = 1_000;

/// WAL frames written but not yet checkpointed, read from the wal-index header in the
/// `-shm` file (https://sqlite.org/walformat.html: `mxFrame` at byte 16, `nBackfill` at
/// byte 96, native byte order). Read without SQLite's locks, so only a hint for when to
/// checkpoint; `None` when the file cannot be read, and the checkpointer then runs.
fn frames_waiting(shm: &Path) -> Option<u32> {
    use std::io::Read;
    let mut header = [0u8; 100];
    std::fs::File::open(shm).ok()?.read_exact(&mut header).ok()?;
    let word = |at: usize| header[at..at + 4].try_into().ok().map(u32::from_ne_bytes);
    Some(word(16)?.saturating_sub(word(96)?))
}

/// WAL frames (pages) past which a checkpoint also tries to restart the WAL: the WAL
/// starts over from its beginning only when a writer begins with every frame already
/// copied, which a PASSIVE checkpoint under a steady stream of writes rarely achieves.
const RESTART_AT_FRAMES: i64 = 4_096;

/// Copies committed pages from the WAL into the database file every CHECKPOINT_EVERY,
/// on a connection of its own, until `stop`. With SQLite's default the writer did this
/// inside every thousandth page's commit (with an fsync of the database file): a fifth
/// of the single writer's time under a burst of writes, now spent on another thread
/// while the writer goes on. A PASSIVE checkpoint never blocks the writer or readers.
/// When the WAL has grown past RESTART_AT_FRAMES, a RESTART checkpoint follows; this
/// connection has no busy timeout, so it gives up at once (and counts as one more
/// PASSIVE) when the writer is in a transaction, and otherwise holds the writer back
/// only while it copies the few pages written since, so the next transaction writes the
/// WAL from its start. The database stays as crash-safe as before: a checkpoint only
/// moves pages that are already committed and synced in the WAL.
async fn checkpoint_until(pool: SqlitePool, shm: PathBuf, stop: CancellationToken) {
    loop {
        tokio::select! {
            _ = stop.cancelled() => break,
            _ = tokio::time::sleep(CHECKPOINT_EVERY) => {}
        }
        if frames_waiting(&shm).is_some_and(|frames| frames < CHECKPOINT_AT_FRAMES) {
            continue;
        }
        let passive: Result<(i64, i64, i64), _> =
            sqlx::query_as("PRAGMA wal_checkpoint(PASSIVE)").fetch_one(&pool).await;
        match passive {
            Ok((_, frames, _)) if frames >= RESTART_AT_FRAMES => {
                if let Err(e) = sqlx::query("PRAGMA wal_checkpoint(RESTART)").execute(&pool).await {
                    tracing::debug!(error = %e, "WAL restart failed; the next checkpoint tries again");
                }
            }
            Ok(_) => {}
            Err(e) => tracing::debug!(error = %e, "WAL checkpoint failed; the writer checkpoints at its own limit"),
        }
    }
    pool.close().await;
}

impl SqliteStore {
    const BACKEND: &'static str = "sqlite";
    /// Multi-row statements bind `?`: sqlx binds a numbered parameter (`$7`) by asking
    /// SQLite for its name, a scan of the statement's parameter list per bind, which made
    /// binding a 500-row insert (7,000 parameters) cost more than running it.
    const NUMBERED_BINDS: bool = false;

    pub async fn connect(url: &str) -> Result<SqliteStore, StoreError> {
        let options = SqliteConnectOptions::from_str(url)?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Normal)
            .busy_timeout(Duration::from_secs(10))
            .foreign_keys(true);
        if let Some(dir) = options.get_filename().parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir)
                .map_err(|e| StoreError::Setup(format!("cannot create the folder {}: {e}", dir.display())))?;
        }
        // The writer gets a 64 MB page cache (the default is 2 MB): bulk imports insert
        // into the address and trigram indexes at random places, which at a million
        // subscribers is three times faster when their pages stay in memory.
        // Its statement journal (each statement's undo copy of the pages it changes, kept
        // inside a transaction) stays in memory too: once one statement had spilled it to a
        // temp file, every later insert wrote its pages there.
        let write_options = options
            .clone()
            .pragma("cache_size", "-65536")
            .pragma("temp_store", "memory")
            .pragma("wal_autocheckpoint", WRITER_AUTOCHECKPOINT_PAGES)
            .pragma("journal_size_limit", WAL_SIZE_LIMIT_BYTES);
        let write_pool = SqlitePoolOptions::new().max_connections(1).connect_with(write_options).await?;
        let pool = SqlitePoolOptions::new().max_connections(4).connect_with(options.clone()).await?;
        let mut shm = options.get_filename().as_os_str().to_owned();
        shm.push("-shm");
        let checkpoint_options = options.busy_timeout(Duration::ZERO);
        let checkpoint_pool = SqlitePoolOptions::new().max_connections(1).connect_with(checkpoint_options).await?;
        let checkpointer = CancellationToken::new();
        tokio::spawn(checkpoint_until(checkpoint_pool, PathBuf::from(shm), checkpointer.clone()));
        Ok(SqliteStore { pool, write_pool, names: Mutex::default(), checkpointer })
    }

    /// The pool writes go through.
    fn writer(&self) -> &SqlitePool {
        &self.write_pool
    }

    async fn run_migrations(&self) -> Result<(), StoreError> {
        sqlx::migrate!("migrations/sqlite").run(&self.write_pool).await?;
        Ok(())
    }

    /// `BEGIN IMMEDIATE` takes the write lock up front: a deferred transaction that reads
    /// before it writes fails with SQLITE_BUSY when another process committed in between.
    async fn begin_write(&self) -> Result<Transaction<'static, Sqlite>, StoreError> {
        Ok(self.write_pool.begin_with("BEGIN IMMEDIATE").await?)
    }
}

shared_store_impl!(SqliteStore, SqliteConnection);
audience_store_impl!(SqliteStore, SqliteConnection, Sqlite);
// Senders claim deliveries under the single writer.
digest_store_impl!(SqliteStore, SqliteConnection, Sqlite, "");
source_store_impl!(SqliteStore, Sqlite, "");
