//! Background sources: inbox folders and upstream feeds, polled by `bantin serve`. Every
//! article they bring goes through the [`Ingestor`], exactly like one pushed to the API.
//! Each source's state (last run, items, last error, failures, validators, next poll)
//! is stored, so the admin UI, the API and `bantin sources list` show it, and several
//! instances share the work: the database hands each due source to one of them.

pub mod decode;
pub mod feed;
pub mod fetch;
pub mod inbox;

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::Serialize;
use tokio::sync::Semaphore;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use url::Url;

use crate::config::Config;
use crate::domain::source::{MAX_INTERVAL, SourceLocation, SourceSpec};
use crate::ingest::{Ingestor, ItemError};
use crate::store::sources::{PAUSED_BY_ADMIN, SourceRow, SourceRun, SourceState};
use crate::store::{Change, Store, StoreError};
use fetch::{AddressPolicy, Fetched, Fetcher};

/// Sources polled at the same time.
const CONCURRENCY: usize = 16;
/// Sources claimed per round.
const CLAIM_BATCH: i64 = 64;
/// Longest sleep between checks for due sources.
const MAX_IDLE: Duration = Duration::from_secs(1);
/// Longest wait after failures, whatever the interval.
const MAX_BACKOFF: Duration = Duration::from_secs(12 * 3600);

/// A configured source with its stored state (none before its first run), as the admin
/// UI, the API and the CLI show it.
#[derive(Clone, Debug, Serialize)]
pub struct SourceView {
    pub name: String,
    pub kind: &'static str,
    pub location: String,
    pub interval_seconds: u64,
    /// The configured category path, e.g. "tin-tuc/kinh-te".
    pub category: Option<String>,
    pub item_categories: bool,
    pub state: Option<SourceState>,
}

/// What polling one source came to.
struct Outcome {
    items_found: i64,
    items_stored: i64,
    /// A failure of the source (unreachable, malformed, refused).
    failure: Option<String>,
    /// Something to show that is not the source's failure (refused items, bad files).
    warning: Option<String>,
    retry_after: Option<Duration>,
    ttl: Option<Duration>,
    validators: (Option<String>, Option<String>),
}

impl Outcome {
    fn failed(message: String, retry_after: Option<Duration>, state: &SourceState) -> Outcome {
        Outcome {
            items_found: 0,
            items_stored: 0,
            failure: Some(message),
            warning: None,
            retry_after,
            ttl: None,
            validators: (state.etag.clone(), state.last_modified.clone()),
        }
    }
}

pub struct Sources {
    specs: Vec<SourceSpec>,
    store: Arc<dyn Store>,
    ingestor: Ingestor,
    fetcher: Fetcher,
    max_failures: u32,
    /// How long a claimed source is held: longer than one poll can take.
    lease: Duration,
    sightings: inbox::Sightings,
}

impl Sources {
    pub fn new(config: &Config, store: Arc<dyn Store>, ingestor: Ingestor) -> anyhow::Result<Sources> {
        let timeout = Duration::from_secs(u64::from(config.sources_timeout_seconds));
        let policy = AddressPolicy { allow_private: config.sources_allow_private };
        let user_agent = format!("bantin/{} (+{})", env!("CARGO_PKG_VERSION"), config.base_url);
        let fetcher = Fetcher::new(policy, timeout, config.sources_max_bytes as usize, &user_agent)?;
        Ok(Sources {
            specs: config.sources.clone(),
            store,
            ingestor,
            fetcher,
            max_failures: config.sources_max_failures,
            lease: timeout * 2 + Duration::from_secs(60),
            sightings: inbox::Sightings::default(),
        })
    }

    /// Makes the stored sources match the configuration.
    pub async fn sync(&self) -> Result<(), StoreError> {
        let rows: Vec<SourceRow> = self
            .specs
            .iter()
            .map(|s| SourceRow { name: s.name.to_string(), kind: s.location.kind(), location: s.location.display() })
            .collect();
        self.store.sync_sources(&rows, Utc::now()).await
    }

    /// Every configured source with its state.
    pub async fn views(&self) -> Result<Vec<SourceView>, StoreError> {
        source_views(&self.specs, self.store.as_ref()).await
    }

    /// Pauses or resumes a configured source; `false` when there is no such source.
    pub async fn set_paused(&self, name: &str, paused: bool) -> Result<bool, StoreError> {
        if !self.specs.iter().any(|s| s.name.as_str() == name) {
            return Ok(false);
        }
        self.sync_if_missing(name).await?;
        self.store.set_source_paused(name, paused.then_some(PAUSED_BY_ADMIN), Utc::now()).await
    }

    async fn sync_if_missing(&self, name: &str) -> Result<(), StoreError> {
        if !self.store.source_states().await?.iter().any(|s| s.name == name) {
            self.sync().await?;
        }
        Ok(())
    }

    /// Runs until `shutdown`: polls each source when it is due.
    pub async fn run(self: Arc<Self>, shutdown: CancellationToken) {
        if self.specs.is_empty() {
            return;
        }
        loop {
            let error = tokio::select! {
                _ = shutdown.cancelled() => return,
                Err(e) = self.poll_forever() => e,
            };
            tracing::warn!(error = %error, "polling sources failed; retrying");
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = tokio::time::sleep(MAX_IDLE) => {}
            }
        }
    }

    /// Polls due sources, then sleeps until the next is due; returns only on an error.
    async fn poll_forever(self: &Arc<Self>) -> Result<Infallible, StoreError> {
        self.sync().await?;
        loop {
            self.run_due(Utc::now()).await?;
            let pause = match self.store.next_source_due().await? {
                Some(due) => (due - Utc::now()).to_std().unwrap_or(Duration::ZERO).min(MAX_IDLE),
                None => MAX_IDLE,
            };
            tokio::time::sleep(pause).await;
        }
    }

    /// Polls every source due at `now` (claimed so no other instance polls it too),
    /// several at once; returns how many were polled.
    pub async fn run_due(self: &Arc<Self>, now: DateTime<Utc>) -> Result<usize, StoreError> {
        let lease_until = now + chrono::Duration::from_std(self.lease).unwrap_or(chrono::Duration::hours(1));
        // Each source once per round, even when `now` is ahead of the clock.
        let round_start = Utc::now();
        let mut polled = 0;
        loop {
            let claimed = self.store.claim_due_sources(now, round_start, lease_until, CLAIM_BATCH).await?;
            if claimed.is_empty() {
                return Ok(polled);
            }
            polled += claimed.len();
            let permits = Arc::new(Semaphore::new(CONCURRENCY));
            let mut polls = JoinSet::new();
            for state in claimed {
                let sources = self.clone();
                let permits = permits.clone();
                polls.spawn(async move {
                    let _permit = permits.acquire_owned().await;
                    sources.poll_and_record(state).await
                });
            }
            while let Some(done) = polls.join_next().await {
                match done {
                    Ok(result) => result?,
                    Err(e) => tracing::error!(error = %e, "a source poll panicked"),
                }
            }
        }
    }

    async fn poll_and_record(&self, state: SourceState) -> Result<(), StoreError> {
        // A source dropped from the configuration since the claim is left alone.
        let Some(spec) = self.specs.iter().find(|s| s.name.as_str() == state.name) else { return Ok(()) };
        let outcome = match &spec.location {
            SourceLocation::Feed(url) => self.poll_feed(spec, url, &state).await,
            SourceLocation::Inbox(dir) => self.poll_inbox(dir, &state).await,
        };
        let run = self.run_record(spec, &state, outcome, Utc::now());
        if let Some(error) = &run.error {
            tracing::warn!(source = %spec.name, error = %error, failures = run.consecutive_failures, "source run");
        }
        if run.pause {
            tracing::warn!(source = %spec.name, failures = run.consecutive_failures, "source paused after failures");
        }
        self.store.finish_source_run(&state.name, &run).await
    }

    /// The stored record of a run, with the next poll: the interval (or the feed's ttl)
    /// after a success, a doubling backoff (or the server's Retry-After) after failures.
    fn run_record(&self, spec: &SourceSpec, state: &SourceState, outcome: Outcome, now: DateTime<Utc>) -> SourceRun {
        let failures = if outcome.failure.is_some() { state.consecutive_failures.saturating_add(1) } else { 0 };
        let wait = if failures > 0 {
            let doubling = 2u32.saturating_pow(failures.unsigned_abs().min(16));
            let backoff = spec.interval.saturating_mul(doubling).min(MAX_BACKOFF);
            backoff.max(outcome.retry_after.unwrap_or_default().min(MAX_INTERVAL))
        } else {
            spec.interval.max(outcome.ttl.unwrap_or_default().min(MAX_INTERVAL))
        };
        let (etag, last_modified) = outcome.validators;
        SourceRun {
            finished_at: now,
            items_found: outcome.items_found,
            items_stored: outcome.items_stored,
            failed: outcome.failure.is_some(),
            error: outcome.failure.or(outcome.warning),
            consecutive_failures: failures,
            pause: failures >= i32::try_from(self.max_failures).unwrap_or(i32::MAX),
            etag,
            last_modified,
            next_poll_at: now + chrono::Duration::from_std(wait).unwrap_or(chrono::Duration::hours(1)),
        }
    }

    async fn poll_feed(&self, spec: &SourceSpec, url: &Url, state: &SourceState) -> Outcome {
        let document = match self.fetcher.fetch(url, state.etag.as_deref(), state.last_modified.as_deref()).await {
            Ok(Fetched::NotModified) => {
                return Outcome {
                    items_found: 0,
                    items_stored: 0,
                    failure: None,
                    warning: None,
                    retry_after: None,
                    ttl: None,
                    validators: (state.etag.clone(), state.last_modified.clone()),
                };
            }
            Ok(Fetched::Document(document)) => document,
            Err(failure) => return Outcome::failed(failure.message, failure.retry_after, state),
        };
        let parse_spec = spec.clone();
        let parsed = tokio::task::spawn_blocking(move || {
            let feed = feed::parse_document(&document.body, document.content_type.as_deref(), &document.url)?;
            let items = feed::feed_items(&feed, &parse_spec, &document.url);
            Ok::<_, String>((items, document.etag, document.last_modified))
        })
        .await
        .unwrap_or_else(|e| Err(format!("parsing stopped: {e}")));
        let (items, etag, last_modified) = match parsed {
            Ok(parsed) => parsed,
            Err(message) => return Outcome::failed(message, None, state),
        };
        let items_found = (items.articles.len() + items.skipped.len()) as i64;
        let mut refused = items.skipped;
        let mut stored = 0;
        for chunk in items.articles.chunks(crate::ingest::MAX_BATCH) {
            let reports = match self.ingestor.ingest(chunk).await {
                Ok(reports) => reports,
                Err(e) => return Outcome::failed(format!("storing articles failed: {e}"), None, state),
            };
            for report in reports {
                match report.outcome {
                    Ok(done) if done.change != Change::Unchanged => stored += 1,
                    Ok(_) => {}
                    Err(ItemError::Invalid(e)) => refused.push(format!("{}: {e}", report.id.unwrap_or_default())),
                    Err(ItemError::Storage(e)) => {
                        return Outcome::failed(format!("storing articles failed: {e}"), None, state);
                    }
                }
            }
        }
        let warning =
            (!refused.is_empty()).then(|| format!("{} item(s) refused: {}", refused.len(), refused.join("; ")));
        Outcome {
            items_found,
            items_stored: stored,
            failure: None,
            warning,
            retry_after: None,
            ttl: items.ttl,
            validators: (etag, last_modified),
        }
    }

    async fn poll_inbox(&self, dir: &std::path::Path, state: &SourceState) -> Outcome {
        match inbox::scan(dir, &self.ingestor, &self.sightings).await {
            Ok(scan) => Outcome {
                items_found: scan.items_found,
                items_stored: scan.items_stored,
                failure: None,
                warning: (!scan.failed_files.is_empty()).then(|| {
                    format!("{} file(s) moved to failed/: {}", scan.failed_files.len(), scan.failed_files.join("; "))
                }),
                retry_after: None,
                ttl: None,
                validators: (None, None),
            },
            Err(message) => Outcome::failed(message, None, state),
        }
    }
}

/// The configured sources with their stored state, in configuration order.
pub async fn source_views(specs: &[SourceSpec], store: &dyn Store) -> Result<Vec<SourceView>, StoreError> {
    let states = store.source_states().await?;
    Ok(specs
        .iter()
        .map(|spec| SourceView {
            name: spec.name.to_string(),
            kind: spec.location.kind(),
            location: spec.location.display(),
            interval_seconds: spec.interval.as_secs(),
            category: spec.category.as_ref().map(|c| c.full_slug_path()),
            item_categories: spec.item_categories,
            state: states
                .iter()
                .find(|s| s.name == spec.name.as_str() && s.location == spec.location.display())
                .cloned(),
        })
        .collect())
}
