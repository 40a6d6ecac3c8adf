//! The feed builder: consumes publication events and rebuilds only the affected feeds
//! (the article's category and its ancestors, its author, `all`, before and after a move),
//! in all three formats. Documents are swapped into the cache as soon as they are
//! rendered; compression, persistence and WebSub announcements follow off the hot path.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use super::cache::{FeedCache, FeedDocument};
use super::sanitize::sanitize_html;
use super::websub::WebSub;
use super::{FeedFormat, FeedItem, FeedKey, FeedMeta, FeedPage, encode_cursor, tag_specific};
use crate::config::{Config, Language};
use crate::metrics::Metrics;
use crate::store::{Article, FeedCursor, PublicationEvent, Store, StoreError};

/// How often the builder looks for events written by other processes.
const POLL: Duration = Duration::from_millis(250);
/// How long an id skipped by the event log (a transaction not yet committed) is watched.
const GAP_WATCH: Duration = Duration::from_secs(30);
/// Least time between two compression rounds: under a burst of publications the
/// identity documents stay fresh while compression (the costly part) runs at most this
/// often, on the newest build of each document.
const COMPRESS_INTERVAL: Duration = Duration::from_millis(1000);
/// Under a burst of publications the builder (and the compressor) would start a round as
/// soon as the last one ends and take a whole core from the writers. A round starts no
/// sooner than this many times its predecessor's cost after that one ended, so the builder
/// uses at most a sixth of a core, and the next round covers everything published
/// meanwhile with one build per feed. An isolated publication, after a quiet moment or
/// right after a burst, is built at once.
const PAUSE_PER_ROUND: u32 = 5;
/// Events in one builder round that make it a burst, paced as above.
const BURST_EVENTS: usize = 100;
/// The longest such pause, so feeds keep moving during a long burst.
const MAX_PAUSE: Duration = Duration::from_secs(5);
/// Most events read before the feeds they touch are rebuilt: a long backlog (after a
/// restart) still shows progress in the feeds.
const REBUILD_AFTER_EVENTS: usize = 20_000;
/// Sanitized contents kept; the cache is cleared when it grows past this.
const SANITIZED_CAPACITY: usize = 20_000;

pub struct FeedBuilder {
    store: Arc<dyn Store>,
    config: Arc<Config>,
    cache: Arc<FeedCache>,
    metrics: Arc<Metrics>,
    websub: WebSub,
    /// Article id → (content hash, sanitized HTML): sanitizing is the costly step.
    sanitized: Mutex<HashMap<i64, (String, Arc<str>)>>,
    /// Builds waiting for compression, the newest per document: a burst of rebuilds
    /// compresses (and persists) only the last one of each.
    to_compress: Mutex<HashMap<(FeedKey, FeedFormat), FeedDocument>>,
    compress_wakeup: Notify,
    /// Host for tag URIs.
    tag_authority: String,
    /// `public, max-age=<feed_max_age>`.
    cache_control: axum::http::HeaderValue,
}

impl FeedBuilder {
    pub fn new(
        store: Arc<dyn Store>,
        config: Arc<Config>,
        cache: Arc<FeedCache>,
        metrics: Arc<Metrics>,
    ) -> FeedBuilder {
        let tag_authority = url::Url::parse(&config.base_url)
            .ok()
            .and_then(|u| u.host_str().map(str::to_owned))
            .unwrap_or_else(|| "localhost".to_owned());
        let websub = WebSub::new(config.websub_hubs.clone(), metrics.clone());
        let cache_control = axum::http::HeaderValue::from_str(&format!("public, max-age={}", config.feed_max_age))
            .unwrap_or_else(|_| axum::http::HeaderValue::from_static("public"));
        FeedBuilder {
            store,
            config,
            cache,
            metrics,
            websub,
            sanitized: Mutex::new(HashMap::new()),
            to_compress: Mutex::new(HashMap::new()),
            compress_wakeup: Notify::new(),
            cache_control,
            tag_authority,
        }
    }

    /// The Cache-Control value of every feed response.
    pub fn cache_control(&self) -> &axum::http::HeaderValue {
        &self.cache_control
    }

    pub fn cache(&self) -> &Arc<FeedCache> {
        &self.cache
    }

    pub fn hubs(&self) -> &[String] {
        self.websub.hubs()
    }

    /// `Link: <hub>; rel="hub", <self>; rel="self"` for one document.
    pub fn link_header(&self, key: &FeedKey, format: FeedFormat) -> axum::http::HeaderValue {
        let mut links: Vec<String> = self.hubs().iter().map(|hub| format!("<{hub}>; rel=\"hub\"")).collect();
        links.push(format!("<{}>; rel=\"self\"", key.url(&self.config.base_url, format)));
        axum::http::HeaderValue::from_str(&links.join(", "))
            .unwrap_or_else(|_| axum::http::HeaderValue::from_static(""))
    }

    /// Loads the persisted documents into memory and returns the event id to resume
    /// from: the oldest build's, so anything newer than some document is replayed.
    pub async fn load(&self) -> Result<i64, StoreError> {
        let stored = self.store.feed_documents().await?;
        let mut resume_from: Option<i64> = None;
        for doc in stored {
            if let Some((key, format, mut doc)) = FeedDocument::from_stored(doc) {
                resume_from = Some(resume_from.map_or(doc.built_through, |r| r.min(doc.built_through)));
                doc.headers.link = Some(self.link_header(&key, format));
                self.cache.put(key, format, doc);
            }
        }
        match resume_from {
            Some(id) => Ok(id),
            None => self.store.latest_event_id().await,
        }
    }

    fn meta(&self, key: &FeedKey, names: &[String]) -> FeedMeta {
        let c = &self.config;
        let vi = c.language == Language::Vi;
        let (title, description) = match key {
            FeedKey::All => (
                c.site_name.clone(),
                if vi {
                    format!("Tin mới nhất từ {}", c.site_name)
                } else {
                    format!("Latest news from {}", c.site_name)
                },
            ),
            FeedKey::Category(_) => (
                format!("{} — {}", c.site_name, names.last().map(String::as_str).unwrap_or_default()),
                if vi {
                    format!("Bài mới trong mục {} của {}", names.join(" › "), c.site_name)
                } else {
                    format!("New articles in {} from {}", names.join(" › "), c.site_name)
                },
            ),
            FeedKey::Author(_) => (
                format!("{} — {}", c.site_name, names.join("")),
                if vi {
                    format!("Bài mới của {} trên {}", names.join(""), c.site_name)
                } else {
                    format!("New articles by {} on {}", names.join(""), c.site_name)
                },
            ),
        };
        FeedMeta {
            id: format!("tag:{},2026:feeds/{}", self.tag_authority, key.url_path()),
            key: key.clone(),
            title,
            description,
            language: c.language.code().to_owned(),
            base_url: c.base_url.clone(),
            site_url: c.site_url.clone(),
            site_name: c.site_name.clone(),
            hubs: c.websub_hubs.clone(),
            ttl_minutes: (c.feed_max_age / 60).max(1),
            timezone: c.timezone,
        }
    }

    /// Display names for a feed, or `None` when no such category or author exists.
    async fn names(&self, key: &FeedKey) -> Result<Option<Vec<String>>, StoreError> {
        Ok(match key {
            FeedKey::All => Some(Vec::new()),
            FeedKey::Category(path) => {
                self.store.categories().await?.into_iter().find(|c| &c.path == path).map(|c| c.names)
            }
            FeedKey::Author(slug) => {
                self.store.authors().await?.into_iter().find(|a| &a.slug == slug).map(|a| vec![a.name])
            }
        })
    }

    fn sanitized(&self, article: &Article) -> Arc<str> {
        let mut cache = self.sanitized.lock().unwrap_or_else(|p| p.into_inner());
        if let Some((hash, html)) = cache.get(&article.id)
            && *hash == article.content_hash
        {
            return html.clone();
        }
        let html: Arc<str> = sanitize_html(&article.content_html, &article.url).into();
        if cache.len() >= SANITIZED_CAPACITY {
            cache.clear();
        }
        cache.insert(article.id, (article.content_hash.clone(), html.clone()));
        html
    }

    fn item(&self, article: &Article) -> FeedItem {
        FeedItem {
            id: format!(
                "tag:{},{}:{}",
                self.tag_authority,
                article.created_at.format("%Y-%m-%d"),
                tag_specific(&article.source_id)
            ),
            title: article.title.clone(),
            url: article.url.clone(),
            summary: article.summary.clone(),
            content_html: self.sanitized(article).to_string(),
            image: article.image.clone(),
            author: article.author.as_ref().map(|a| a.name.clone()),
            category: article.category.as_ref().map(|c| (c.names.last().cloned().unwrap_or_default(), c.path.clone())),
            tags: article.tags.clone(),
            published: article.published_at,
            updated: article.updated_at,
        }
    }

    /// The feed's newest items (or, with `before`, the page after that position), or
    /// `None` for an unknown category or author.
    pub async fn page(&self, key: &FeedKey, before: Option<FeedCursor>) -> Result<Option<FeedPage>, StoreError> {
        let Some(names) = self.names(key).await? else { return Ok(None) };
        let limit = self.config.feed_items;
        let mut articles = self.store.feed_page(&key.storage_key(), limit as i64 + 1, before).await?;
        let more = articles.len() > limit;
        articles.truncate(limit);
        let next_cursor = more
            .then(|| {
                articles.last().map(|a| encode_cursor(FeedCursor { published_at: a.published_at, article_id: a.id }))
            })
            .flatten();
        let items: Vec<FeedItem> = articles.iter().map(|a| self.item(a)).collect();
        let updated = items.iter().map(|i| i.updated.max(i.published)).max().unwrap_or(DateTime::UNIX_EPOCH);
        Ok(Some(FeedPage {
            meta: self.meta(key, &names),
            items,
            updated,
            this_cursor: before.map(encode_cursor),
            next_cursor,
        }))
    }

    /// The document to serve: from memory, or built now when this feed was never built.
    pub async fn document(&self, key: &FeedKey, format: FeedFormat) -> Result<Option<Arc<FeedDocument>>, StoreError> {
        if let Some(doc) = self.cache.get(key, format) {
            return Ok(Some(doc));
        }
        let built_through = self.store.latest_event_id().await?;
        if !self.rebuild(key, built_through).await? {
            return Ok(None);
        }
        Ok(self.cache.get(key, format))
    }

    /// Renders the feed in every format and swaps the documents in; compression,
    /// persistence and the hub announcement follow in the background. False when the
    /// feed does not exist.
    pub async fn rebuild(&self, key: &FeedKey, built_through: i64) -> Result<bool, StoreError> {
        let started = Instant::now();
        let Some(page) = self.page(key, None).await? else { return Ok(false) };
        let mut fresh = Vec::with_capacity(3);
        for format in FeedFormat::ALL {
            let body = format.render(&page);
            let digest = super::cache::digest(body.as_bytes());
            let previous = self.cache.get(key, format);
            if previous.as_ref().is_some_and(|p| p.digest == digest) {
                continue;
            }
            // Last-Modified only moves forward: a retraction can leave older items only.
            let last_modified = match &previous {
                Some(p) if p.last_modified >= page.updated => Utc::now().max(p.last_modified),
                _ => page.updated,
            };
            let mut doc = FeedDocument::with_digest(body, digest, last_modified, built_through);
            doc.headers.link = Some(self.link_header(key, format));
            // File-backed before the copy queued for compression, so the compressed build
            // shares this mapping instead of making a second one of the same bytes.
            doc.file_back();
            self.cache.put(key.clone(), format, doc.clone());
            fresh.push((format, doc));
        }
        self.metrics.record_feed_build(started.elapsed());
        if fresh.is_empty() {
            return Ok(true);
        }
        let mut queue = self.to_compress.lock().unwrap_or_else(|p| p.into_inner());
        for (format, doc) in fresh {
            queue.insert((key.clone(), format), doc);
        }
        drop(queue);
        self.compress_wakeup.notify_one();
        Ok(true)
    }

    /// Compresses, persists and announces queued builds until `shutdown`, then once more
    /// so nothing built is left unsaved.
    async fn compress_queued(&self, shutdown: CancellationToken) {
        loop {
            let round = Instant::now();
            let batch: Vec<_> = self.to_compress.lock().unwrap_or_else(|p| p.into_inner()).drain().collect();
            let mut urls = Vec::with_capacity(batch.len());
            for ((key, format), doc) in batch {
                let Ok(doc) = tokio::task::spawn_blocking(move || doc.compressed()).await else { continue };
                if let Some(stored) = doc.to_stored(&key, format)
                    && let Err(e) = self.store.save_feed_document(&stored).await
                {
                    tracing::warn!(feed = key.storage_key(), error = %e, "saving a feed document failed");
                }
                self.cache.put(key.clone(), format, doc);
                urls.push(key.url(&self.config.base_url, format));
            }
            self.websub.announce(urls);
            if shutdown.is_cancelled() && self.to_compress.lock().unwrap_or_else(|p| p.into_inner()).is_empty() {
                return;
            }
            let spent = round.elapsed();
            tokio::select! {
                _ = shutdown.cancelled() => {}
                _ = self.compress_wakeup.notified() => {}
            }
            let next_round = COMPRESS_INTERVAL.max(spent + pause_after(spent));
            tokio::select! {
                _ = shutdown.cancelled() => {}
                _ = tokio::time::sleep(next_round.saturating_sub(round.elapsed())) => {}
            }
        }
    }

    /// The feeds a batch of events touches.
    async fn affected(&self, events: &[PublicationEvent]) -> Result<BTreeSet<FeedKey>, StoreError> {
        let mut categories = BTreeSet::new();
        let mut authors = BTreeSet::new();
        for e in events {
            categories.extend([e.category_id, e.previous_category_id].into_iter().flatten());
            authors.extend([e.author_id, e.previous_author_id].into_iter().flatten());
        }
        let categories: Vec<i64> = categories.into_iter().collect();
        let authors: Vec<i64> = authors.into_iter().collect();
        let mut keys: BTreeSet<FeedKey> = self
            .store
            .feed_keys_of(&categories, &authors)
            .await?
            .iter()
            .filter_map(|k| FeedKey::from_storage_key(k))
            .collect();
        keys.insert(FeedKey::All);
        Ok(keys)
    }

    /// Consumes events until `shutdown`: wakes on `wakeup` (events written by this
    /// process) or every POLL (events from other processes).
    pub async fn run(self: Arc<Self>, mut cursor: i64, wakeup: Arc<Notify>, shutdown: CancellationToken) {
        let compressor = tokio::spawn({
            let this = self.clone();
            let shutdown = shutdown.clone();
            async move { this.compress_queued(shutdown).await }
        });
        let mut gaps: BTreeMap<i64, Instant> = BTreeMap::new();
        loop {
            let round = Instant::now();
            let events = match self.catch_up(&mut cursor, &mut gaps).await {
                Ok(events) => events,
                Err(e) => {
                    tracing::warn!(error = %e, "feed builder: reading events failed; retrying");
                    0
                }
            };
            // Only a burst is paced: a round of a few events (slow or not) never delays
            // the next publication.
            let spent = if events >= BURST_EVENTS { round.elapsed() } else { Duration::ZERO };
            tokio::select! {
                _ = shutdown.cancelled() => {
                    let _ = compressor.await;
                    return;
                }
                _ = wakeup.notified() => {}
                _ = tokio::time::sleep(POLL) => {}
            }
            // Only a wakeup after a burst's round waits here, and only while the burst
            // goes on: a publication after it (breaking news after an import) is built
            // at once, not after the rest of the pause.
            let pause = (spent + pause_after(spent)).saturating_sub(round.elapsed());
            if !pause.is_zero() && self.burst_goes_on(cursor).await {
                tokio::select! {
                    _ = shutdown.cancelled() => {}
                    _ = tokio::time::sleep(pause) => {}
                }
            }
        }
    }

    /// True when a burst's worth of events waits after `cursor` (or the log cannot be read).
    async fn burst_goes_on(&self, cursor: i64) -> bool {
        self.store.latest_event_id().await.map_or(true, |latest| latest - cursor >= BURST_EVENTS as i64)
    }

    /// Processes every event after `cursor`, and any earlier id that was skipped while its
    /// transaction was still open (PostgreSQL hands out ids before commit).
    /// Each affected feed is rebuilt once for all the events read (up to
    /// REBUILD_AFTER_EVENTS of them), not once per page of events: after a burst paced
    /// by the run loop, one round covers many batches with one build per feed.
    /// Returns how many events it handled.
    pub async fn catch_up(&self, cursor: &mut i64, gaps: &mut BTreeMap<i64, Instant>) -> Result<usize, StoreError> {
        let mut handled = 0;
        // Read up to here; `cursor` moves once the feeds these events touch are rebuilt.
        let mut read_through = *cursor;
        let mut affected: BTreeSet<FeedKey> = BTreeSet::new();
        let mut unbuilt = 0;
        loop {
            let mut events = self.store.events_after(read_through, 1000).await?;
            if !gaps.is_empty() {
                let ids: Vec<i64> = gaps.keys().copied().collect();
                let late = self.store.events_by_id(&ids).await?;
                for e in &late {
                    gaps.remove(&e.id);
                }
                gaps.retain(|_, seen| seen.elapsed() < GAP_WATCH);
                events.extend(late);
            }
            let full_batch = events.len() >= 1000;
            if !events.is_empty() {
                handled += events.len();
                unbuilt += events.len();
                events.sort_by_key(|e| e.id);
                let start = read_through;
                let mut expected = start + 1;
                for e in events.iter().filter(|e| e.id > start) {
                    for missing in expected..e.id {
                        gaps.insert(missing, Instant::now());
                    }
                    expected = e.id + 1;
                    read_through = e.id;
                }
                affected.extend(self.affected(&events).await?);
            }
            if !full_batch || unbuilt >= REBUILD_AFTER_EVENTS {
                for key in std::mem::take(&mut affected) {
                    self.rebuild(&key, read_through).await?;
                }
                *cursor = read_through;
                unbuilt = 0;
            }
            if !full_batch {
                return Ok(handled);
            }
        }
    }
}

/// How long to rest after a round of work that took `spent`.
fn pause_after(spent: Duration) -> Duration {
    (spent * PAUSE_PER_ROUND).min(MAX_PAUSE)
}
