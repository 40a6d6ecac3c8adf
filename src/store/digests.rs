//! Storage of digest runs and deliveries. A run is unique per (list, scheduled time), a
//! delivery per (run, subscriber); senders claim deliveries with a lease that a crashed
//! sender's successor takes over once it expires. Each subscription's `sent_through` says
//! up to when articles have been sent to it, and moves only with a sent delivery.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::Serialize;

use super::{Article, StoreError};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum RunStatus {
    Pending,
    Sending,
    Done,
    Cancelled,
    Skipped,
}

impl RunStatus {
    pub const ALL: [RunStatus; 5] =
        [RunStatus::Pending, RunStatus::Sending, RunStatus::Done, RunStatus::Cancelled, RunStatus::Skipped];

    pub fn as_str(self) -> &'static str {
        match self {
            RunStatus::Pending => "pending",
            RunStatus::Sending => "sending",
            RunStatus::Done => "done",
            RunStatus::Cancelled => "cancelled",
            RunStatus::Skipped => "skipped",
        }
    }

    pub fn parse(s: &str) -> Option<RunStatus> {
        RunStatus::ALL.into_iter().find(|r| r.as_str() == s)
    }
}

/// A run with its deliveries counted by status.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct DigestRun {
    pub id: i64,
    #[serde(skip)]
    pub list_id: i64,
    pub list: String,
    pub scheduled_at: DateTime<Utc>,
    pub window_end: DateTime<Utc>,
    pub status: RunStatus,
    pub created_at: DateTime<Utc>,
    pub finished_at: Option<DateTime<Utc>>,
    pub queued: i64,
    pub sent: i64,
    pub failed: i64,
    pub skipped: i64,
}

/// A delivery a sender holds the lease on.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClaimedDelivery {
    pub id: i64,
    pub run_id: i64,
    pub list_id: i64,
    pub subscriber_id: i64,
    /// Including this one.
    pub attempts: i32,
    pub window_end: DateTime<Utc>,
    pub scheduled_at: DateTime<Utc>,
}

/// A claimed delivery to close: sent, or nothing to send (`sent = false`), with the number
/// of articles it held.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Closing {
    pub delivery: ClaimedDelivery,
    pub sent: bool,
    pub articles: i64,
}

/// What a subscription is due in a run.
#[derive(Clone, Debug, PartialEq)]
pub struct DigestContent {
    /// Newest first, at most the limit asked for.
    pub articles: Vec<Article>,
    /// All the new articles, including those past the limit.
    pub total: i64,
}

#[async_trait]
pub trait DigestStore: Send + Sync {
    /// Creates the run for (list, scheduled time) unless one exists; its id when created.
    async fn create_run(
        &self,
        list_id: i64,
        scheduled_at: DateTime<Utc>,
        window_end: DateTime<Utc>,
        status: RunStatus,
        now: DateTime<Utc>,
    ) -> Result<Option<i64>, StoreError>;
    async fn run_exists(&self, list_id: i64, scheduled_at: DateTime<Utc>) -> Result<bool, StoreError>;
    async fn run(&self, id: i64) -> Result<Option<DigestRun>, StoreError>;
    /// Newest first, of one list or of all.
    async fn runs(&self, list_id: Option<i64>, limit: i64) -> Result<Vec<DigestRun>, StoreError>;
    async fn pending_runs(&self) -> Result<Vec<i64>, StoreError>;
    /// Queues one delivery per active subscriber of an active subscription, and marks the
    /// run as sending, in one transaction; `None` when another instance did it first.
    async fn enqueue_run(&self, run_id: i64, now: DateTime<Utc>) -> Result<Option<u64>, StoreError>;
    /// Claims up to `limit` due deliveries (queued and due, or with an expired lease).
    async fn claim_deliveries(
        &self,
        now: DateTime<Utc>,
        lease_until: DateTime<Utc>,
        limit: i64,
    ) -> Result<Vec<ClaimedDelivery>, StoreError>;
    /// The articles that became visible in (subscription cursor, window_end] in the list's
    /// categories narrowed by the subscriber's, still visible.
    async fn digest_content(
        &self,
        subscriber_id: i64,
        list_id: i64,
        window_end: DateTime<Utc>,
        limit: usize,
    ) -> Result<DigestContent, StoreError>;
    /// What a run holds for the public "view in browser" page: the list's articles that
    /// became visible since the list's previous run (not personalised).
    async fn run_content(&self, run_id: i64, limit: usize) -> Result<Option<(DigestRun, DigestContent)>, StoreError>;
    /// Visible articles that became visible in (since, until] in these category paths and
    /// below (none = every category), newest first, at most `limit` listed.
    async fn articles_between(
        &self,
        paths: &[String],
        since: DateTime<Utc>,
        until: DateTime<Utc>,
        limit: usize,
    ) -> Result<DigestContent, StoreError>;
    /// Sent (or nothing to send: `sent = false`): the delivery is closed and the
    /// subscription's cursor moves to the run's window end, in one transaction.
    async fn close_delivery(
        &self,
        delivery: &ClaimedDelivery,
        sent: bool,
        articles: i64,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        self.close_deliveries(&[Closing { delivery: delivery.clone(), sent, articles }], now).await
    }
    /// [`DigestStore::close_delivery`] for several deliveries, all in one transaction.
    async fn close_deliveries(&self, closings: &[Closing], now: DateTime<Utc>) -> Result<(), StoreError>;
    /// Back to the queue, to be tried at `next_attempt_at` (cancelled if its run was).
    async fn retry_delivery(
        &self,
        delivery_id: i64,
        next_attempt_at: DateTime<Utc>,
        error: &str,
    ) -> Result<(), StoreError>;
    /// Failed for good; with `bounce`, the subscriber is marked bounced and not mailed again.
    async fn fail_delivery(&self, delivery: &ClaimedDelivery, error: &str, bounce: bool) -> Result<(), StoreError>;
    /// Extends to `lease_until` the leases of these claims that are still held: not
    /// closed, and not claimed again by another sender since (which counted an attempt).
    /// Returns the ids of the claims still held.
    async fn renew_leases(
        &self,
        claims: &[ClaimedDelivery],
        lease_until: DateTime<Utc>,
    ) -> Result<Vec<i64>, StoreError>;
    /// Gives back claims that were not tried (at shutdown, or deferred), still held as
    /// `renew_leases` tells, without counting an attempt, so nothing stays claimed.
    /// Deliveries of a cancelled run are cancelled instead.
    async fn release_deliveries(&self, claims: &[ClaimedDelivery]) -> Result<(), StoreError>;
    /// Marks sending runs with nothing left queued or in flight as done.
    async fn complete_runs(&self, now: DateTime<Utc>) -> Result<u64, StoreError>;
    /// Cancels a run and its queued deliveries; `false` when it is already finished.
    async fn cancel_run(&self, run_id: i64, now: DateTime<Utc>) -> Result<bool, StoreError>;
    /// Deliveries queued or in flight, for /metrics.
    async fn queue_depth(&self) -> Result<i64, StoreError>;
}

macro_rules! digest_store_impl {
    ($store:ty, $conn:ty, $db:ty, $claim_lock:literal) => {
        const _: () = {
            use std::collections::{BTreeMap, HashMap};

            use async_trait::async_trait;
            use chrono::{DateTime, Utc};
            use sqlx::{QueryBuilder, Row};

            use $crate::store::StoreError;
            use $crate::store::digests::*;
            use $crate::store::queries::{DIGEST_ARTICLES_HEAD, parse_string_list};

            type DbRow = <$db as sqlx::Database>::Row;

            const RUN_SELECT: &str = "SELECT r.id, r.list_id, l.slug, r.scheduled_at, r.window_end, r.status, r.created_at, r.finished_at, \
                 (SELECT COUNT(*) FROM deliveries d WHERE d.run_id = r.id AND d.status IN ('queued', 'sending')) AS queued, \
                 (SELECT COUNT(*) FROM deliveries d WHERE d.run_id = r.id AND d.status = 'sent') AS sent, \
                 (SELECT COUNT(*) FROM deliveries d WHERE d.run_id = r.id AND d.status = 'failed') AS failed, \
                 (SELECT COUNT(*) FROM deliveries d WHERE d.run_id = r.id AND d.status IN ('skipped', 'cancelled')) AS skipped \
                 FROM digest_runs r JOIN lists l ON l.id = r.list_id";

            /// Claims named in one statement: two binds each, well under either backend's limit.
            const CLAIMS_PER_STATEMENT: usize = 500;

            /// `(id = ? AND attempts = ?) OR …`: each claim by its delivery and the attempt
            /// it counted, so a delivery another sender claimed since is not matched.
            fn push_claims(q: &mut QueryBuilder<$db>, claims: &[ClaimedDelivery]) {
                q.push("(");
                for (i, claim) in claims.iter().enumerate() {
                    if i > 0 {
                        q.push(" OR ");
                    }
                    q.push("(id = ").push_bind(claim.id).push(" AND attempts = ").push_bind(claim.attempts).push(")");
                }
                q.push(")");
            }

            /// `id, id, …)`: the rest of an `IN (` list.
            fn push_ids(q: &mut QueryBuilder<$db>, ids: impl Iterator<Item = i64>) {
                let mut sep = q.separated(", ");
                for id in ids {
                    sep.push_bind(id);
                }
                q.push(")");
            }

            fn run_from_row(row: &DbRow) -> Result<DigestRun, StoreError> {
                let status: String = row.try_get("status")?;
                Ok(DigestRun {
                    id: row.try_get("id")?,
                    list_id: row.try_get("list_id")?,
                    list: row.try_get("slug")?,
                    scheduled_at: row.try_get("scheduled_at")?,
                    window_end: row.try_get("window_end")?,
                    status: RunStatus::parse(&status).ok_or_else(|| StoreError::Corrupt(format!("run status {status:?}")))?,
                    created_at: row.try_get("created_at")?,
                    finished_at: row.try_get("finished_at")?,
                    queued: row.try_get("queued")?,
                    sent: row.try_get("sent")?,
                    failed: row.try_get("failed")?,
                    skipped: row.try_get("skipped")?,
                })
            }

            impl $store {
                /// Visible articles that became visible in (since, until] in these category
                /// paths (and below; none = every category), newest first.
                async fn articles_between(
                    conn: &mut $conn,
                    paths: &[String],
                    since: DateTime<Utc>,
                    until: DateTime<Utc>,
                    limit: usize,
                ) -> Result<DigestContent, StoreError> {
                    let mut q = QueryBuilder::<$db>::new(DIGEST_ARTICLES_HEAD);
                    q.push_bind(since).push(" AND occurred_at <= ").push_bind(until).push(")");
                    if !paths.is_empty() {
                        q.push(" AND (");
                        for (i, path) in paths.iter().enumerate() {
                            if i > 0 {
                                q.push(" OR ");
                            }
                            q.push("c.path = ").push_bind(path.clone()).push(" OR c.path LIKE ").push_bind(format!("{path}/%"));
                        }
                        q.push(")");
                    }
                    q.push(" ORDER BY a.published_at DESC, a.id DESC");
                    let rows = q.build().fetch_all(&mut *conn).await?;
                    let total = rows.len() as i64;
                    let articles = rows.iter().take(limit).map(Self::article_from_row).collect::<Result<_, _>>()?;
                    Ok(DigestContent { articles, total })
                }
            }

            #[async_trait]
            impl DigestStore for $store {
                async fn create_run(
                    &self,
                    list_id: i64,
                    scheduled_at: DateTime<Utc>,
                    window_end: DateTime<Utc>,
                    status: RunStatus,
                    now: DateTime<Utc>,
                ) -> Result<Option<i64>, StoreError> {
                    Ok(sqlx::query_scalar(
                        "INSERT INTO digest_runs (list_id, scheduled_at, window_end, status, created_at, finished_at) \
                         VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (list_id, scheduled_at) DO NOTHING RETURNING id",
                    )
                    .bind(list_id)
                    .bind(scheduled_at)
                    .bind(window_end)
                    .bind(status.as_str())
                    .bind(now)
                    .bind((status == RunStatus::Skipped).then_some(now))
                    .fetch_optional(self.writer())
                    .await?)
                }

                async fn run_exists(&self, list_id: i64, scheduled_at: DateTime<Utc>) -> Result<bool, StoreError> {
                    let found: Option<i64> = sqlx::query_scalar("SELECT id FROM digest_runs WHERE list_id = $1 AND scheduled_at = $2")
                        .bind(list_id)
                        .bind(scheduled_at)
                        .fetch_optional(&self.pool)
                        .await?;
                    Ok(found.is_some())
                }

                async fn run(&self, id: i64) -> Result<Option<DigestRun>, StoreError> {
                    let row = sqlx::query(sqlx::AssertSqlSafe(format!("{RUN_SELECT} WHERE r.id = $1")))
                        .bind(id)
                        .fetch_optional(&self.pool)
                        .await?;
                    row.as_ref().map(run_from_row).transpose()
                }

                async fn runs(&self, list_id: Option<i64>, limit: i64) -> Result<Vec<DigestRun>, StoreError> {
                    let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
                        "{RUN_SELECT} WHERE ($1 IS NULL OR r.list_id = $1) ORDER BY r.scheduled_at DESC, r.id DESC LIMIT $2"
                    )))
                    .bind(list_id)
                    .bind(limit)
                    .fetch_all(&self.pool)
                    .await?;
                    rows.iter().map(run_from_row).collect()
                }

                async fn pending_runs(&self) -> Result<Vec<i64>, StoreError> {
                    Ok(sqlx::query_scalar("SELECT id FROM digest_runs WHERE status = 'pending' ORDER BY id")
                        .fetch_all(&self.pool)
                        .await?)
                }

                async fn enqueue_run(&self, run_id: i64, now: DateTime<Utc>) -> Result<Option<u64>, StoreError> {
                    let mut tx = self.begin_write().await?;
                    let Some(list_id): Option<i64> = sqlx::query_scalar(
                        "UPDATE digest_runs SET status = 'sending' WHERE id = $1 AND status = 'pending' RETURNING list_id",
                    )
                    .bind(run_id)
                    .fetch_optional(&mut *tx)
                    .await?
                    else {
                        return Ok(None);
                    };
                    let queued = sqlx::query(
                        "INSERT INTO deliveries (run_id, subscriber_id, status, next_attempt_at) \
                         SELECT $1, ss.subscriber_id, 'queued', $3 FROM subscriptions ss \
                         JOIN subscribers s ON s.id = ss.subscriber_id \
                         WHERE ss.list_id = $2 AND ss.status = 'active' AND s.status = 'active' \
                         ON CONFLICT (run_id, subscriber_id) DO NOTHING",
                    )
                    .bind(run_id)
                    .bind(list_id)
                    .bind(now)
                    .execute(&mut *tx)
                    .await?
                    .rows_affected();
                    tx.commit().await?;
                    Ok(Some(queued))
                }

                async fn claim_deliveries(&self, now: DateTime<Utc>, lease_until: DateTime<Utc>, limit: i64) -> Result<Vec<ClaimedDelivery>, StoreError> {
                    // Each kind from its own partial index, in the index's order (due time,
                    // lease end), so a claim reads what it takes, not the deliveries sent before.
                    let rows = sqlx::query(concat!(
                        "UPDATE deliveries SET status = 'sending', lease_until = $2, attempts = attempts + 1 WHERE id IN (",
                        "SELECT id FROM (SELECT id FROM deliveries WHERE status = 'sending' AND lease_until < $1 ",
                        "ORDER BY lease_until, id LIMIT $3", $claim_lock, ") AS expired UNION ALL ",
                        "SELECT id FROM (SELECT id FROM deliveries WHERE status = 'queued' AND next_attempt_at <= $1 ",
                        "ORDER BY next_attempt_at, id LIMIT $3", $claim_lock, ") AS due ORDER BY id LIMIT $3) ",
                        "RETURNING id, run_id, subscriber_id, attempts"
                    ))
                    .bind(now)
                    .bind(lease_until)
                    .bind(limit)
                    .fetch_all(self.writer())
                    .await?;
                    let mut runs: HashMap<i64, (i64, DateTime<Utc>, DateTime<Utc>)> = HashMap::new();
                    let run_ids: std::collections::BTreeSet<i64> =
                        rows.iter().map(|r| r.try_get("run_id")).collect::<Result<_, _>>()?;
                    if !run_ids.is_empty() {
                        let mut q = QueryBuilder::<$db>::new("SELECT id, list_id, window_end, scheduled_at FROM digest_runs WHERE id IN (");
                        push_ids(&mut q, run_ids.iter().copied());
                        for run in q.build().fetch_all(&self.pool).await? {
                            runs.insert(run.try_get("id")?, (run.try_get("list_id")?, run.try_get("window_end")?, run.try_get("scheduled_at")?));
                        }
                    }
                    let mut claimed = Vec::with_capacity(rows.len());
                    for row in &rows {
                        let run_id: i64 = row.try_get("run_id")?;
                        let (list_id, window_end, scheduled_at) =
                            *runs.get(&run_id).ok_or_else(|| StoreError::Corrupt(format!("delivery of a missing run {run_id}")))?;
                        claimed.push(ClaimedDelivery {
                            id: row.try_get("id")?,
                            run_id,
                            list_id,
                            subscriber_id: row.try_get("subscriber_id")?,
                            attempts: row.try_get("attempts")?,
                            window_end,
                            scheduled_at,
                        });
                    }
                    claimed.sort_by_key(|d| d.id);
                    Ok(claimed)
                }

                async fn digest_content(&self, subscriber_id: i64, list_id: i64, window_end: DateTime<Utc>, limit: usize) -> Result<DigestContent, StoreError> {
                    let mut conn = self.pool.acquire().await?;
                    let row = sqlx::query(
                        "SELECT COALESCE(ss.sent_through, ss.created_at) AS since, ss.categories AS chosen, l.categories AS covered \
                         FROM subscriptions ss JOIN lists l ON l.id = ss.list_id WHERE ss.subscriber_id = $1 AND ss.list_id = $2",
                    )
                    .bind(subscriber_id)
                    .bind(list_id)
                    .fetch_optional(&mut *conn)
                    .await?;
                    let Some(row) = row else { return Ok(DigestContent { articles: Vec::new(), total: 0 }) };
                    let since: DateTime<Utc> = row.try_get("since")?;
                    let chosen = parse_string_list(row.try_get("chosen")?)?;
                    let covered = parse_string_list(row.try_get("covered")?)?;
                    let paths = if chosen.is_empty() { covered } else { chosen };
                    <$store>::articles_between(&mut conn, &paths, since, window_end, limit).await
                }

                async fn articles_between(&self, paths: &[String], since: DateTime<Utc>, until: DateTime<Utc>, limit: usize) -> Result<DigestContent, StoreError> {
                    let mut conn = self.pool.acquire().await?;
                    <$store>::articles_between(&mut conn, paths, since, until, limit).await
                }

                async fn run_content(&self, run_id: i64, limit: usize) -> Result<Option<(DigestRun, DigestContent)>, StoreError> {
                    let Some(run) = self.run(run_id).await? else { return Ok(None) };
                    let mut conn = self.pool.acquire().await?;
                    let row = sqlx::query(
                        "SELECT l.categories, l.created_at, (SELECT MAX(p.window_end) FROM digest_runs p WHERE p.list_id = l.id \
                         AND p.window_end < $2 AND p.status <> 'skipped') AS previous FROM lists l WHERE l.id = $1",
                    )
                    .bind(run.list_id)
                    .bind(run.window_end)
                    .fetch_one(&mut *conn)
                    .await?;
                    let paths = parse_string_list(row.try_get("categories")?)?;
                    let previous: Option<DateTime<Utc>> = row.try_get("previous")?;
                    let since = previous.unwrap_or(row.try_get("created_at")?);
                    let content = <$store>::articles_between(&mut conn, &paths, since, run.window_end, limit).await?;
                    Ok(Some((run, content)))
                }

                async fn close_deliveries(&self, closings: &[Closing], now: DateTime<Utc>) -> Result<(), StoreError> {
                    if closings.is_empty() {
                        return Ok(());
                    }
                    // One statement per outcome and count, and per list and window end:
                    // the deliveries of a run mostly share both.
                    let mut outcomes: BTreeMap<(bool, i64), Vec<i64>> = BTreeMap::new();
                    let mut cursors: BTreeMap<(i64, DateTime<Utc>), Vec<i64>> = BTreeMap::new();
                    for closing in closings {
                        let delivery = &closing.delivery;
                        outcomes.entry((closing.sent, closing.articles)).or_default().push(delivery.id);
                        cursors.entry((delivery.list_id, delivery.window_end)).or_default().push(delivery.subscriber_id);
                    }
                    let mut tx = self.begin_write().await?;
                    for ((sent, articles), ids) in &outcomes {
                        for chunk in ids.chunks(CLAIMS_PER_STATEMENT) {
                            let mut q = QueryBuilder::<$db>::new("UPDATE deliveries SET status = ");
                            q.push_bind(if *sent { "sent" } else { "skipped" })
                                .push(", articles = ")
                                .push_bind(*articles)
                                .push(", sent_at = ")
                                .push_bind(sent.then_some(now))
                                .push(", lease_until = NULL, last_error = NULL WHERE id IN (");
                            push_ids(&mut q, chunk.iter().copied());
                            q.build().execute(&mut *tx).await?;
                        }
                    }
                    for ((list_id, window_end), subscribers) in &cursors {
                        for chunk in subscribers.chunks(CLAIMS_PER_STATEMENT) {
                            let mut q = QueryBuilder::<$db>::new("UPDATE subscriptions SET sent_through = ");
                            q.push_bind(*window_end)
                                .push(" WHERE list_id = ")
                                .push_bind(*list_id)
                                .push(" AND (sent_through IS NULL OR sent_through < ")
                                .push_bind(*window_end)
                                .push(") AND subscriber_id IN (");
                            push_ids(&mut q, chunk.iter().copied());
                            q.build().execute(&mut *tx).await?;
                        }
                    }
                    tx.commit().await?;
                    Ok(())
                }

                async fn retry_delivery(&self, delivery_id: i64, next_attempt_at: DateTime<Utc>, error: &str) -> Result<(), StoreError> {
                    sqlx::query("UPDATE deliveries SET status = CASE WHEN (SELECT r.status FROM digest_runs r WHERE r.id = deliveries.run_id) = 'cancelled' \
                         THEN 'cancelled' ELSE 'queued' END, lease_until = NULL, next_attempt_at = $2, last_error = $3 WHERE id = $1")
                        .bind(delivery_id)
                        .bind(next_attempt_at)
                        .bind(error)
                        .execute(self.writer())
                        .await?;
                    Ok(())
                }

                async fn fail_delivery(&self, delivery: &ClaimedDelivery, error: &str, bounce: bool) -> Result<(), StoreError> {
                    let mut tx = self.begin_write().await?;
                    sqlx::query("UPDATE deliveries SET status = 'failed', lease_until = NULL, last_error = $2 WHERE id = $1")
                        .bind(delivery.id)
                        .bind(error)
                        .execute(&mut *tx)
                        .await?;
                    if bounce {
                        sqlx::query("UPDATE subscribers SET status = 'bounced' WHERE id = $1 AND status = 'active'")
                            .bind(delivery.subscriber_id)
                            .execute(&mut *tx)
                            .await?;
                    }
                    tx.commit().await?;
                    Ok(())
                }

                async fn renew_leases(&self, claims: &[ClaimedDelivery], lease_until: DateTime<Utc>) -> Result<Vec<i64>, StoreError> {
                    let mut held = Vec::with_capacity(claims.len());
                    for chunk in claims.chunks(CLAIMS_PER_STATEMENT) {
                        let mut q = QueryBuilder::<$db>::new("UPDATE deliveries SET lease_until = ");
                        q.push_bind(lease_until).push(" WHERE status = 'sending' AND ");
                        push_claims(&mut q, chunk);
                        q.push(" RETURNING id");
                        for row in q.build().fetch_all(self.writer()).await? {
                            held.push(row.try_get("id")?);
                        }
                    }
                    Ok(held)
                }

                async fn release_deliveries(&self, claims: &[ClaimedDelivery]) -> Result<(), StoreError> {
                    for chunk in claims.chunks(CLAIMS_PER_STATEMENT) {
                        let mut q = QueryBuilder::<$db>::new(
                            "UPDATE deliveries SET status = CASE WHEN (SELECT r.status FROM digest_runs r WHERE r.id = deliveries.run_id) = 'cancelled' \
                             THEN 'cancelled' ELSE 'queued' END, lease_until = NULL, attempts = attempts - 1 WHERE status = 'sending' AND ",
                        );
                        push_claims(&mut q, chunk);
                        q.build().execute(self.writer()).await?;
                    }
                    Ok(())
                }

                async fn complete_runs(&self, now: DateTime<Utc>) -> Result<u64, StoreError> {
                    Ok(sqlx::query(
                        "UPDATE digest_runs SET status = 'done', finished_at = $1 WHERE status = 'sending' AND NOT EXISTS \
                         (SELECT 1 FROM deliveries d WHERE d.run_id = digest_runs.id AND d.status IN ('queued', 'sending'))",
                    )
                    .bind(now)
                    .execute(self.writer())
                    .await?
                    .rows_affected())
                }

                async fn cancel_run(&self, run_id: i64, now: DateTime<Utc>) -> Result<bool, StoreError> {
                    let mut tx = self.begin_write().await?;
                    let done = sqlx::query(
                        "UPDATE digest_runs SET status = 'cancelled', finished_at = $2 WHERE id = $1 AND status IN ('pending', 'sending')",
                    )
                    .bind(run_id)
                    .bind(now)
                    .execute(&mut *tx)
                    .await?;
                    if done.rows_affected() == 0 {
                        return Ok(false);
                    }
                    sqlx::query("UPDATE deliveries SET status = 'cancelled' WHERE run_id = $1 AND status = 'queued'")
                        .bind(run_id)
                        .execute(&mut *tx)
                        .await?;
                    tx.commit().await?;
                    Ok(true)
                }

                async fn queue_depth(&self) -> Result<i64, StoreError> {
                    // Counted from the two partial indexes (the columns tested are always
                    // set in those states), not from every delivery ever made.
                    Ok(sqlx::query_scalar(
                        "SELECT (SELECT COUNT(*) FROM deliveries WHERE status = 'queued' AND next_attempt_at IS NOT NULL) \
                         + (SELECT COUNT(*) FROM deliveries WHERE status = 'sending' AND lease_until IS NOT NULL)",
                    )
                        .fetch_one(&self.pool)
                        .await?)
                }
            }
        };
    };
}

pub(super) use digest_store_impl;
