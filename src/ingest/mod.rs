//! The one path every article takes into bantin, whatever its source (HTTP API, file
//! import, demo): parse and clean, resolve the URL, fingerprint, write with its event.

pub mod files;

use std::sync::Arc;

use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use serde_json::Value;
use tokio::sync::Notify;

use crate::domain::json::BorrowedJson;
use crate::domain::{ArticleInput, ArticleStatus, FieldError, Slug};
use crate::metrics::Metrics;
use crate::store::{PreparedArticle, Store, StoreError, Upserted};

/// Most articles accepted in one batch.
pub const MAX_BATCH: usize = 1_000;

/// Why one item was not stored.
#[derive(Debug)]
pub enum ItemError {
    Invalid(FieldError),
    Storage(StoreError),
}

/// The outcome for one item of a batch, in input order.
#[derive(Debug)]
pub struct ItemReport {
    /// The source's id when the item had a readable one.
    pub id: Option<String>,
    pub outcome: Result<Upserted, ItemError>,
}

#[derive(Clone)]
pub struct Ingestor {
    store: Arc<dyn Store>,
    base_url: String,
    timezone: Tz,
    metrics: Arc<Metrics>,
    /// Woken when a scheduled article arrives, so the publisher can set its timer.
    scheduled: Arc<Notify>,
    /// Woken when publication events were written, so the feeds are rebuilt at once.
    published: Arc<Notify>,
}

impl Ingestor {
    pub fn new(
        store: Arc<dyn Store>,
        base_url: &str,
        timezone: Tz,
        metrics: Arc<Metrics>,
        scheduled: Arc<Notify>,
        published: Arc<Notify>,
    ) -> Ingestor {
        Ingestor { store, base_url: base_url.trim_end_matches('/').to_owned(), timezone, metrics, scheduled, published }
    }

    /// Parses one article and fills in what the source left out.
    pub fn prepare(&self, value: &BorrowedJson<'_>) -> Result<PreparedArticle, FieldError> {
        let input = ArticleInput::from_parsed(value, self.timezone)?;
        let url = match &input.url {
            Some(url) => url.to_string(),
            None => self.default_url(&input),
        };
        let content_hash = input.content_hash();
        Ok(PreparedArticle { input, url, content_hash })
    }

    /// Base URL + category path + title slug, like the source sites' own addresses.
    fn default_url(&self, input: &ArticleInput) -> String {
        let slug = Slug::from_name(&input.title)
            .or_else(|| Slug::from_name(&input.source_id))
            .map_or_else(|| "bai-viet".to_owned(), |s| s.to_string());
        match &input.category {
            Some(path) => format!("{}/{}/{slug}", self.base_url, path.full_slug_path()),
            None => format!("{}/{slug}", self.base_url),
        }
    }

    /// Stores a batch: valid items are written (in one transaction when they all
    /// succeed), invalid ones are reported, each with its field and reason.
    pub async fn ingest(&self, values: &[Value]) -> Result<Vec<ItemReport>, StoreError> {
        self.ingest_at(values, Utc::now()).await
    }

    pub async fn ingest_at(&self, values: &[Value], now: DateTime<Utc>) -> Result<Vec<ItemReport>, StoreError> {
        let parsed: Vec<BorrowedJson<'_>> = values.iter().map(BorrowedJson::from).collect();
        self.ingest_parsed_at(&parsed, now).await
    }

    /// Like [`Ingestor::ingest`], for articles parsed into [`BorrowedJson`] values (the ingest API).
    pub async fn ingest_parsed(&self, values: &[BorrowedJson<'_>]) -> Result<Vec<ItemReport>, StoreError> {
        self.ingest_parsed_at(values, Utc::now()).await
    }

    async fn ingest_parsed_at(
        &self,
        values: &[BorrowedJson<'_>],
        now: DateTime<Utc>,
    ) -> Result<Vec<ItemReport>, StoreError> {
        // Each item's slot: an index into `valid`, or why it was refused.
        let mut valid = Vec::with_capacity(values.len());
        let mut slots = Vec::with_capacity(values.len());
        for value in values {
            match self.prepare(value) {
                Ok(prepared) => {
                    slots.push(Ok(valid.len()));
                    valid.push(prepared);
                }
                Err(e) => slots.push(Err(e)),
            }
        }
        let mut written: Vec<Option<Result<Upserted, StoreError>>> = if valid.is_empty() {
            Vec::new()
        } else {
            self.store.upsert_articles(&valid, now).await?.into_iter().map(Some).collect()
        };
        let reports: Vec<ItemReport> = slots
            .into_iter()
            .zip(values)
            .map(|(slot, value)| match slot {
                Ok(k) => ItemReport {
                    id: Some(valid[k].input.source_id.clone()),
                    outcome: written[k]
                        .take()
                        .unwrap_or_else(|| Err(StoreError::Corrupt("the store skipped an item".into())))
                        .map_err(ItemError::Storage),
                },
                Err(e) => ItemReport { id: raw_id(value), outcome: Err(ItemError::Invalid(e)) },
            })
            .collect();
        let mut any_scheduled = false;
        let mut any_event = false;
        for report in &reports {
            match &report.outcome {
                Ok(done) => {
                    self.metrics.record_ingest(Some(done.change));
                    if let Some(kind) = done.event {
                        self.metrics.record_events(kind, 1);
                        any_event = true;
                    }
                    any_scheduled |= done.status == ArticleStatus::Scheduled;
                }
                Err(_) => self.metrics.record_ingest(None),
            }
        }
        if any_scheduled {
            self.scheduled.notify_one();
        }
        if any_event {
            self.published.notify_one();
        }
        Ok(reports)
    }
}

/// The id as the source wrote it, for reporting an item that failed validation.
fn raw_id(value: &BorrowedJson<'_>) -> Option<String> {
    match value.get("id")? {
        BorrowedJson::String(s) => Some(s.to_string()),
        BorrowedJson::Number(n) => Some(n.to_string()),
        _ => None,
    }
}
