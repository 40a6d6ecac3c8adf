//! Storage: one trait, one implementation per backend (SQLite by default, PostgreSQL for
//! several instances), picked by the database URL's scheme. Migrations are embedded, one
//! folder per backend.

pub mod audience;
pub mod digests;
mod postgres;
mod queries;
pub mod sources;
mod sqlite;
mod subscriber_search;

use std::sync::Arc;

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use crate::config::DatabaseUrl;
use crate::domain::{ArticleInput, ArticleStatus};

pub use audience::AudienceStore;
pub use digests::DigestStore;
pub use postgres::PgStore;
pub use sources::SourceStore;
pub use sqlite::SqliteStore;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
    #[error("migration failed: {0}")]
    Migration(#[from] sqlx::migrate::MigrateError),
    #[error("cannot prepare the database: {0}")]
    Setup(String),
    #[error("unexpected data in the database: {0}")]
    Corrupt(String),
    /// A unique name or address is taken.
    #[error("{0}")]
    Conflict(String),
}

/// An article ready to be written: the cleaned input, its resolved URL and fingerprint.
#[derive(Clone, Debug)]
pub struct PreparedArticle {
    pub input: ArticleInput,
    pub url: String,
    pub content_hash: String,
}

/// What writing one article did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Change {
    New,
    Updated,
    Unchanged,
}

impl Change {
    pub fn as_str(self) -> &'static str {
        match self {
            Change::New => "new",
            Change::Updated => "updated",
            Change::Unchanged => "unchanged",
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Upserted {
    pub change: Change,
    pub status: ArticleStatus,
    pub event: Option<EventKind>,
}

/// Result of retracting an article by its source id.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Retraction {
    NotFound,
    AlreadyRetracted,
    /// `event` is true when the article was visible, so feeds must drop it.
    Retracted {
        event: bool,
    },
}

/// What a publication event says happened to an article's visibility.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum EventKind {
    /// Became visible (new, scheduled time reached, or re-posted after retraction).
    Published,
    /// Visible before and after, content changed.
    Updated,
    /// Visible before, not any more.
    Retracted,
}

impl EventKind {
    pub const ALL: [EventKind; 3] = [EventKind::Published, EventKind::Updated, EventKind::Retracted];

    pub fn as_str(self) -> &'static str {
        match self {
            EventKind::Published => "published",
            EventKind::Updated => "updated",
            EventKind::Retracted => "retracted",
        }
    }

    pub fn parse(s: &str) -> Option<EventKind> {
        EventKind::ALL.into_iter().find(|k| k.as_str() == s)
    }

    /// The event a change of status calls for, if any: only visibility matters.
    pub fn for_transition(before: Option<ArticleStatus>, after: ArticleStatus) -> Option<EventKind> {
        let was_visible = before == Some(ArticleStatus::Published);
        let is_visible = after == ArticleStatus::Published;
        match (was_visible, is_visible) {
            (false, true) => Some(EventKind::Published),
            (true, true) => Some(EventKind::Updated),
            (true, false) => Some(EventKind::Retracted),
            (false, false) => None,
        }
    }
}

/// One row of the publication log that feeds and digests consume. The category and
/// author before the change are kept so a move rebuilds both the old and new feeds.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PublicationEvent {
    pub id: i64,
    pub article_id: i64,
    pub kind: EventKind,
    pub category_id: Option<i64>,
    pub author_id: Option<i64>,
    pub previous_category_id: Option<i64>,
    pub previous_author_id: Option<i64>,
    pub occurred_at: DateTime<Utc>,
}

#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct CategoryRef {
    #[serde(skip)]
    pub id: i64,
    pub path: String,
    pub names: Vec<String>,
}

#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct AuthorRef {
    #[serde(skip)]
    pub id: i64,
    pub name: String,
    pub slug: String,
}

/// An article as stored.
#[derive(Clone, Debug, PartialEq)]
pub struct Article {
    pub id: i64,
    pub source_id: String,
    pub title: String,
    pub url: String,
    pub summary: Option<String>,
    pub content_html: String,
    pub image: Option<String>,
    pub category: Option<CategoryRef>,
    pub author: Option<AuthorRef>,
    pub tags: Vec<String>,
    pub published_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub created_at: DateTime<Utc>,
    pub status: ArticleStatus,
    pub content_hash: String,
}

/// Position in a feed, for paging back through older items: items strictly older than
/// this (published_at, then article id) come next.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FeedCursor {
    pub published_at: DateTime<Utc>,
    pub article_id: i64,
}

/// A prerendered feed document as persisted, so a restart serves it without a rebuild.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoredFeedDocument {
    pub feed_key: String,
    pub format: String,
    pub body: Vec<u8>,
    pub gzip: Vec<u8>,
    pub brotli: Vec<u8>,
    pub etag: String,
    pub last_modified: DateTime<Utc>,
    /// The last publication event this build reflects.
    pub built_through: i64,
}

/// Everything bantin keeps. Writes that change what is visible also write their
/// publication event, in the same transaction.
#[async_trait]
pub trait Store: AudienceStore + DigestStore + SourceStore + Send + Sync + 'static {
    /// "sqlite" or "postgres".
    fn backend(&self) -> &'static str;
    async fn migrate(&self) -> Result<(), StoreError>;
    async fn ping(&self) -> Result<(), StoreError>;

    /// Writes a batch in one transaction; when an item fails, each item is written in a
    /// transaction of its own, so the failure leaves the others in place. `now` decides
    /// what is published or scheduled.
    async fn upsert_articles(
        &self,
        items: &[PreparedArticle],
        now: DateTime<Utc>,
    ) -> Result<Vec<Result<Upserted, StoreError>>, StoreError>;
    async fn article(&self, source_id: &str) -> Result<Option<Article>, StoreError>;
    async fn retract_article(&self, source_id: &str, now: DateTime<Utc>) -> Result<Retraction, StoreError>;
    /// Publishes scheduled articles whose time has come, with their events; returns how many.
    async fn publish_due(&self, now: DateTime<Utc>) -> Result<u64, StoreError>;
    /// The earliest time a scheduled article is due.
    async fn next_scheduled_at(&self) -> Result<Option<DateTime<Utc>>, StoreError>;
    /// Events with an id above `after_id`, oldest first.
    async fn events_after(&self, after_id: i64, limit: i64) -> Result<Vec<PublicationEvent>, StoreError>;

    async fn create_api_token(
        &self,
        name: &str,
        public_id: &str,
        secret_hash: &str,
        now: DateTime<Utc>,
    ) -> Result<i64, StoreError>;
    /// The stored hash of an unrevoked token, by its public id.
    async fn api_token_hash(&self, public_id: &str) -> Result<Option<(i64, String)>, StoreError>;

    /// Newest visible articles of a feed ("all", "category:<path>", "author:<slug>"),
    /// newest first; with `before`, the page after that position.
    async fn feed_page(
        &self,
        feed_key: &str,
        limit: i64,
        before: Option<FeedCursor>,
    ) -> Result<Vec<Article>, StoreError>;
    /// Every category, ordered by path (so parents come before children).
    async fn categories(&self) -> Result<Vec<CategoryRef>, StoreError>;
    async fn authors(&self) -> Result<Vec<AuthorRef>, StoreError>;
    /// Feed keys touched by a change to these categories (with their ancestors) and authors.
    async fn feed_keys_of(&self, category_ids: &[i64], author_ids: &[i64]) -> Result<Vec<String>, StoreError>;
    async fn latest_event_id(&self) -> Result<i64, StoreError>;
    /// Events with these ids that exist (by now), for ids skipped earlier as not yet committed.
    async fn events_by_id(&self, ids: &[i64]) -> Result<Vec<PublicationEvent>, StoreError>;
    async fn save_feed_document(&self, doc: &StoredFeedDocument) -> Result<(), StoreError>;
    async fn feed_documents(&self) -> Result<Vec<StoredFeedDocument>, StoreError>;
}

/// Opens the database the URL names and applies the migrations.
pub async fn connect(url: &DatabaseUrl) -> Result<Arc<dyn Store>, StoreError> {
    let store: Arc<dyn Store> = match url {
        DatabaseUrl::Sqlite(url) => Arc::new(SqliteStore::connect(url).await?),
        DatabaseUrl::Postgres(url) => Arc::new(PgStore::connect(url).await?),
    };
    store.migrate().await?;
    Ok(store)
}

#[cfg(test)]
mod tests {
    use super::*;
    use ArticleStatus::*;

    #[test]
    fn only_visibility_changes_make_events() {
        assert_eq!(EventKind::for_transition(None, Published), Some(EventKind::Published));
        assert_eq!(EventKind::for_transition(None, Scheduled), None);
        assert_eq!(EventKind::for_transition(Some(Scheduled), Published), Some(EventKind::Published));
        assert_eq!(EventKind::for_transition(Some(Retracted), Published), Some(EventKind::Published));
        assert_eq!(EventKind::for_transition(Some(Published), Published), Some(EventKind::Updated));
        assert_eq!(EventKind::for_transition(Some(Published), Scheduled), Some(EventKind::Retracted));
        assert_eq!(EventKind::for_transition(Some(Scheduled), Scheduled), None);
    }
}
