//! Storage of background sources' state. `next_poll_at` doubles as the claim: a poller
//! moves it past the poll's end before polling, so among several instances one polls
//! each source; the run's outcome then sets the real next time.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::Serialize;

use super::StoreError;

/// Why a source is paused.
pub const PAUSED_BY_ADMIN: &str = "admin";
pub const PAUSED_AFTER_FAILURES: &str = "failures";

/// A source's stored state.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct SourceState {
    pub name: String,
    pub kind: String,
    pub location: String,
    pub paused: bool,
    pub paused_reason: Option<String>,
    pub last_run_at: Option<DateTime<Utc>>,
    pub last_success_at: Option<DateTime<Utc>>,
    pub items_found: i64,
    pub items_stored: i64,
    pub last_error: Option<String>,
    pub consecutive_failures: i32,
    #[serde(skip)]
    pub etag: Option<String>,
    #[serde(skip)]
    pub last_modified: Option<String>,
    pub next_poll_at: DateTime<Utc>,
}

/// A configured source as the store keys it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SourceRow {
    pub name: String,
    pub kind: &'static str,
    pub location: String,
}

/// What one run of a source found, written when it ends.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SourceRun {
    pub finished_at: DateTime<Utc>,
    pub items_found: i64,
    pub items_stored: i64,
    /// The source failed (and `error` says why).
    pub failed: bool,
    /// A failure, or what went wrong without the source failing (refused items).
    pub error: Option<String>,
    pub consecutive_failures: i32,
    /// Pause the source (after too many failures in a row).
    pub pause: bool,
    pub etag: Option<String>,
    pub last_modified: Option<String>,
    pub next_poll_at: DateTime<Utc>,
}

#[async_trait]
pub trait SourceStore: Send + Sync {
    /// Makes the stored sources those configured: new ones are due at once, a moved one
    /// (another URL or folder) starts afresh, and ones no longer configured are dropped.
    async fn sync_sources(&self, sources: &[SourceRow], now: DateTime<Utc>) -> Result<(), StoreError>;
    /// Every stored source, by name.
    async fn source_states(&self) -> Result<Vec<SourceState>, StoreError>;
    /// Claims up to `limit` unpaused sources due at `now` and not run since `round_start`,
    /// holding each until `lease_until`.
    async fn claim_due_sources(
        &self,
        now: DateTime<Utc>,
        round_start: DateTime<Utc>,
        lease_until: DateTime<Utc>,
        limit: i64,
    ) -> Result<Vec<SourceState>, StoreError>;
    /// The earliest time an unpaused source is due.
    async fn next_source_due(&self) -> Result<Option<DateTime<Utc>>, StoreError>;
    async fn finish_source_run(&self, name: &str, run: &SourceRun) -> Result<(), StoreError>;
    /// Pauses (with a reason) or resumes a source; a resumed source is due at once with
    /// its failures forgotten. `false` when there is no such source.
    async fn set_source_paused(
        &self,
        name: &str,
        paused_reason: Option<&str>,
        now: DateTime<Utc>,
    ) -> Result<bool, StoreError>;
}

macro_rules! source_store_impl {
    ($store:ty, $db:ty, $claim_lock:literal) => {
        const _: () = {
            use async_trait::async_trait;
            use chrono::{DateTime, Utc};
            use sqlx::Row;

            use $crate::store::StoreError;
            use $crate::store::sources::*;

            type DbRow = <$db as sqlx::Database>::Row;

            const COLUMNS: &str = "name, kind, location, paused, paused_reason, last_run_at, last_success_at, items_found, \
                 items_stored, last_error, consecutive_failures, etag, last_modified, next_poll_at";

            fn state_from_row(row: &DbRow) -> Result<SourceState, StoreError> {
                Ok(SourceState {
                    name: row.try_get("name")?,
                    kind: row.try_get("kind")?,
                    location: row.try_get("location")?,
                    paused: row.try_get("paused")?,
                    paused_reason: row.try_get("paused_reason")?,
                    last_run_at: row.try_get("last_run_at")?,
                    last_success_at: row.try_get("last_success_at")?,
                    items_found: row.try_get("items_found")?,
                    items_stored: row.try_get("items_stored")?,
                    last_error: row.try_get("last_error")?,
                    consecutive_failures: row.try_get("consecutive_failures")?,
                    etag: row.try_get("etag")?,
                    last_modified: row.try_get("last_modified")?,
                    next_poll_at: row.try_get("next_poll_at")?,
                })
            }

            #[async_trait]
            impl SourceStore for $store {
                async fn sync_sources(&self, sources: &[SourceRow], now: DateTime<Utc>) -> Result<(), StoreError> {
                    let mut tx = self.begin_write().await?;
                    for source in sources {
                        sqlx::query(
                            "INSERT INTO sources (name, kind, location, next_poll_at) VALUES ($1, $2, $3, $4) \
                             ON CONFLICT (name) DO UPDATE SET kind = excluded.kind, location = excluded.location, \
                             etag = NULL, last_modified = NULL, consecutive_failures = 0, next_poll_at = excluded.next_poll_at \
                             WHERE sources.kind <> excluded.kind OR sources.location <> excluded.location",
                        )
                        .bind(&source.name)
                        .bind(source.kind)
                        .bind(&source.location)
                        .bind(now)
                        .execute(&mut *tx)
                        .await?;
                    }
                    let stored: Vec<String> = sqlx::query_scalar("SELECT name FROM sources").fetch_all(&mut *tx).await?;
                    for name in stored.iter().filter(|n| !sources.iter().any(|s| &s.name == *n)) {
                        sqlx::query("DELETE FROM sources WHERE name = $1").bind(name).execute(&mut *tx).await?;
                    }
                    tx.commit().await?;
                    Ok(())
                }

                async fn source_states(&self) -> Result<Vec<SourceState>, StoreError> {
                    let rows = sqlx::query(sqlx::AssertSqlSafe(format!("SELECT {COLUMNS} FROM sources ORDER BY name")))
                        .fetch_all(&self.pool)
                        .await?;
                    rows.iter().map(state_from_row).collect()
                }

                async fn claim_due_sources(
                    &self,
                    now: DateTime<Utc>,
                    round_start: DateTime<Utc>,
                    lease_until: DateTime<Utc>,
                    limit: i64,
                ) -> Result<Vec<SourceState>, StoreError> {
                    let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
                        "UPDATE sources SET next_poll_at = $2 WHERE name IN (SELECT name FROM sources \
                         WHERE NOT paused AND next_poll_at <= $1 AND (last_run_at IS NULL OR last_run_at < $4) \
                         ORDER BY next_poll_at LIMIT $3{}) RETURNING {COLUMNS}",
                        $claim_lock
                    )))
                    .bind(now)
                    .bind(lease_until)
                    .bind(limit)
                    .bind(round_start)
                    .fetch_all(self.writer())
                    .await?;
                    let mut claimed = rows.iter().map(state_from_row).collect::<Result<Vec<_>, _>>()?;
                    claimed.sort_by(|a, b| a.name.cmp(&b.name));
                    Ok(claimed)
                }

                async fn next_source_due(&self) -> Result<Option<DateTime<Utc>>, StoreError> {
                    Ok(sqlx::query_scalar("SELECT MIN(next_poll_at) FROM sources WHERE NOT paused")
                        .fetch_one(&self.pool)
                        .await?)
                }

                async fn finish_source_run(&self, name: &str, run: &SourceRun) -> Result<(), StoreError> {
                    sqlx::query(
                        "UPDATE sources SET last_run_at = $2, \
                         last_success_at = CASE WHEN $11 THEN last_success_at ELSE $2 END, \
                         items_found = $4, items_stored = $5, last_error = $3, consecutive_failures = $6, \
                         paused = (paused OR $7), \
                         paused_reason = CASE WHEN $7 AND NOT paused THEN 'failures' ELSE paused_reason END, \
                         etag = $8, last_modified = $9, next_poll_at = $10 WHERE name = $1",
                    )
                    .bind(name)
                    .bind(run.finished_at)
                    .bind(run.error.as_deref())
                    .bind(run.items_found)
                    .bind(run.items_stored)
                    .bind(run.consecutive_failures)
                    .bind(run.pause)
                    .bind(run.etag.as_deref())
                    .bind(run.last_modified.as_deref())
                    .bind(run.next_poll_at)
                    .bind(run.failed)
                    .execute(self.writer())
                    .await?;
                    Ok(())
                }

                async fn set_source_paused(
                    &self,
                    name: &str,
                    paused_reason: Option<&str>,
                    now: DateTime<Utc>,
                ) -> Result<bool, StoreError> {
                    let done = match paused_reason {
                        Some(reason) => {
                            sqlx::query("UPDATE sources SET paused = TRUE, paused_reason = $2 WHERE name = $1")
                                .bind(name)
                                .bind(reason)
                                .execute(self.writer())
                                .await?
                        }
                        None => {
                            sqlx::query(
                                "UPDATE sources SET paused = FALSE, paused_reason = NULL, consecutive_failures = 0, \
                                 next_poll_at = $2 WHERE name = $1",
                            )
                            .bind(name)
                            .bind(now)
                            .execute(self.writer())
                            .await?
                        }
                    };
                    Ok(done.rows_affected() == 1)
                }
            }
        };
    };
}

pub(super) use source_store_impl;
