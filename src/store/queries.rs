//! The SQL both backends share. SQLite and PostgreSQL accept the same statements here
//! (`$n` parameters, `ON CONFLICT`, `RETURNING`, partial indexes), so the queries are
//! written once and stamped onto each backend's store by `shared_store_impl!`. What
//! differs between the backends (connecting, migrations, how a write transaction begins)
//! lives in `sqlite.rs` and `postgres.rs`.

use chrono::{DateTime, Utc};

use crate::domain::ArticleStatus;

use std::collections::HashMap;

use super::{EventKind, PreparedArticle, StoreError};

pub(super) fn status_at(published_at: DateTime<Utc>, now: DateTime<Utc>) -> ArticleStatus {
    if published_at <= now { ArticleStatus::Published } else { ArticleStatus::Scheduled }
}

pub(super) fn parse_status(s: &str) -> Result<ArticleStatus, StoreError> {
    ArticleStatus::parse(s).ok_or_else(|| StoreError::Corrupt(format!("unknown article status {s:?}")))
}

pub(super) fn parse_event_kind(s: &str) -> Result<EventKind, StoreError> {
    EventKind::parse(s).ok_or_else(|| StoreError::Corrupt(format!("unknown event kind {s:?}")))
}

pub(super) fn parse_string_list(s: &str) -> Result<Vec<String>, StoreError> {
    serde_json::from_str(s).map_err(|e| StoreError::Corrupt(format!("bad JSON list {s:?}: {e}")))
}

pub(super) fn string_list(items: &[String]) -> String {
    serde_json::Value::from(items).to_string()
}

/// Scheduled articles published per transaction, so one large backlog does not hold
/// the write lock for long.
pub(super) const PUBLISH_BATCH: i64 = 500;

/// `SELECT <article columns> FROM articles a …joins…` followed by the given clauses.
macro_rules! article_query {
    ($($rest:literal),*) => {
        concat!(
            "SELECT a.id, a.source_id, a.title, a.url, a.summary, a.content_html, a.image, \
             a.tags, a.published_at, a.updated_at, a.created_at, a.status, a.content_hash, \
             c.id AS category_id, c.path AS category_path, c.names AS category_names, \
             au.id AS author_id, au.name AS author_name, au.slug AS author_slug ",
            $($rest),*
        )
    };
}

pub(super) const ARTICLE_BY_SOURCE_ID: &str = article_query!(
    "FROM articles a LEFT JOIN categories c ON c.id = a.category_id LEFT JOIN authors au ON au.id = a.author_id ",
    "WHERE a.source_id = $1"
);

pub(super) const FEED_PAGE: &str = article_query!(
    "FROM feed_entries f JOIN articles a ON a.id = f.article_id ",
    "LEFT JOIN categories c ON c.id = a.category_id LEFT JOIN authors au ON au.id = a.author_id ",
    "WHERE f.feed_key = $1 ORDER BY f.published_at DESC, f.article_id DESC LIMIT $2"
);

pub(super) const FEED_PAGE_BEFORE: &str = article_query!(
    "FROM feed_entries f JOIN articles a ON a.id = f.article_id ",
    "LEFT JOIN categories c ON c.id = a.category_id LEFT JOIN authors au ON au.id = a.author_id ",
    "WHERE f.feed_key = $1 AND (f.published_at < $3 OR (f.published_at = $3 AND f.article_id < $4)) ",
    "ORDER BY f.published_at DESC, f.article_id DESC LIMIT $2"
);

/// Start of a digest's article query: the window and category filter follow, as binds.
pub(super) const DIGEST_ARTICLES_HEAD: &str = article_query!(
    "FROM articles a LEFT JOIN categories c ON c.id = a.category_id LEFT JOIN authors au ON au.id = a.author_id ",
    "WHERE a.status = 'published' AND a.id IN (SELECT article_id FROM publication_events WHERE kind = 'published' AND occurred_at > "
);

/// A category path or an author, to be found or created.
pub(super) enum NameRef<'a> {
    Category(&'a crate::domain::CategoryPath),
    Author(&'a crate::domain::CategoryName),
}

/// The feeds a visible article belongs to: all, its category and every ancestor, its author.
pub(super) fn article_feed_keys(input: &crate::domain::ArticleInput) -> Vec<String> {
    let mut keys = vec!["all".to_owned()];
    if let Some(path) = &input.category {
        keys.extend((1..=path.segments().len()).map(|depth| format!("category:{}", path.slug_path(depth))));
    }
    if let Some(author) = &input.author {
        keys.push(format!("author:{}", author.slug));
    }
    keys
}

/// `INSERT INTO feed_entries … VALUES ($3, $1, $2), ($4, $1, $2), …` for 1 to 10 rows
/// (all, up to 8 category levels, an author): $1 is the article, $2 its time.
static INSERT_FEED_ENTRIES: std::sync::LazyLock<Vec<String>> = std::sync::LazyLock::new(|| {
    (1..=10)
        .map(|rows| {
            let values: Vec<String> = (0..rows).map(|i| format!("(${}, $1, $2)", i + 3)).collect();
            format!("INSERT INTO feed_entries (feed_key, article_id, published_at) VALUES {}", values.join(", "))
        })
        .collect()
});

pub(super) fn insert_feed_entries_sql(rows: usize) -> Result<sqlx::AssertSqlSafe<&'static str>, StoreError> {
    INSERT_FEED_ENTRIES
        .get(rows.wrapping_sub(1))
        .map(|sql| sqlx::AssertSqlSafe(sql.as_str()))
        .ok_or_else(|| StoreError::Corrupt(format!("an article in {rows} feeds")))
}

/// Most bind parameters in one multi-row statement: well under SQLite's limit (32,766)
/// and PostgreSQL's (65,535).
pub(super) const MAX_BINDS: usize = 8_000;

/// Columns of `INSERT_ARTICLES`, bound in this order for each row.
pub(super) const INSERT_ARTICLES: (&str, usize) = (
    "INSERT INTO articles (source_id, title, url, summary, content_html, image, category_id, author_id, tags, \
     published_at, updated_at, created_at, status, content_hash)",
    14,
);
/// A new article's event: the previous category and author stay NULL.
pub(super) const INSERT_NEW_EVENTS: (&str, usize) =
    ("INSERT INTO publication_events (article_id, kind, category_id, author_id, occurred_at)", 5);
pub(super) const INSERT_FEED_ENTRY_ROWS: (&str, usize) =
    ("INSERT INTO feed_entries (feed_key, article_id, published_at)", 3);

/// One batch item's values as the articles table takes them, resolved once.
pub(super) struct ArticleRow<'a> {
    pub item: &'a PreparedArticle,
    pub category_id: Option<i64>,
    pub author_id: Option<i64>,
    /// The tags as a JSON list.
    pub tags: String,
    /// For a new row: the source's time, else now.
    pub published_at: DateTime<Utc>,
    pub status: ArticleStatus,
}

impl<'a> ArticleRow<'a> {
    /// `names` maps "category:<path>" and "author:<slug>" to ids (see `ensure_names`).
    pub fn new(
        item: &'a PreparedArticle,
        names: &HashMap<String, i64>,
        now: DateTime<Utc>,
    ) -> Result<ArticleRow<'a>, StoreError> {
        let name_id =
            |key: String| names.get(&key).copied().ok_or_else(|| StoreError::Corrupt(format!("{key} was not created")));
        let input = &item.input;
        let published_at = input.published_at.unwrap_or(now);
        Ok(ArticleRow {
            item,
            category_id: input
                .category
                .as_ref()
                .map(|p| name_id(format!("category:{}", p.full_slug_path())))
                .transpose()?,
            author_id: input.author.as_ref().map(|a| name_id(format!("author:{}", a.slug))).transpose()?,
            tags: string_list(&input.tags),
            published_at,
            status: status_at(published_at, now),
        })
    }
}

/// `<head> VALUES ($1, …, $n), ($n+1, …), … <tail>` for `rows` rows of `columns` values:
/// one statement (and one round trip to the database) for many rows. Without `numbered`,
/// the parameters are `?`, bound in the same order.
pub(super) fn multi_row_sql(
    (head, columns): (&str, usize),
    rows: usize,
    tail: &str,
    numbered: bool,
) -> sqlx::AssertSqlSafe<String> {
    use std::fmt::Write;
    let mut sql = String::with_capacity(head.len() + tail.len() + 16 + rows * columns * 8);
    sql.push_str(head);
    sql.push_str(" VALUES ");
    for row in 0..rows {
        sql.push_str(if row == 0 { "(" } else { ", (" });
        for column in 0..columns {
            sql.push_str(if column == 0 { "" } else { ", " });
            if numbered {
                let _ = write!(sql, "${}", row * columns + column + 1);
            } else {
                sql.push('?');
            }
        }
        sql.push(')');
    }
    sql.push_str(tail);
    sqlx::AssertSqlSafe(sql)
}

/// Feed keys of a category and all its ancestors, given the category's id.
pub(super) const CATEGORY_FEED_KEYS: &str = "SELECT 'category:' || anc.path FROM categories c \
    JOIN categories anc ON c.path = anc.path OR c.path LIKE anc.path || '/%' WHERE c.id = $1";

macro_rules! shared_store_impl {
    ($store:ty, $conn:ty) => {
        const _: () = {
            use std::collections::{BTreeMap, HashMap};

            use async_trait::async_trait;
            use chrono::{DateTime, Utc};
            use sqlx::Row;

            use $crate::domain::{ArticleStatus, CategoryName, CategoryPath};
            use $crate::store::queries::{
                ARTICLE_BY_SOURCE_ID, ArticleRow, CATEGORY_FEED_KEYS, INSERT_ARTICLES, INSERT_FEED_ENTRY_ROWS, INSERT_NEW_EVENTS, MAX_BINDS, NameRef, article_feed_keys, insert_feed_entries_sql, multi_row_sql, FEED_PAGE, FEED_PAGE_BEFORE, PUBLISH_BATCH, parse_event_kind,
                parse_status, parse_string_list, status_at, string_list,
            };
            use $crate::store::{
                Article, AuthorRef, CategoryRef, Change, EventKind, FeedCursor, PreparedArticle, PublicationEvent,
                Retraction, Store, StoreError, StoredFeedDocument, Upserted,
            };

            impl $store {
                /// Finds or creates each level of the path; returns the deepest id.
                async fn category_id(conn: &mut $conn, path: &CategoryPath, now: DateTime<Utc>) -> Result<i64, StoreError> {
                    let mut parent: Option<i64> = None;
                    let mut names: Vec<String> = Vec::new();
                    for (depth, part) in path.segments().iter().enumerate() {
                        names.push(part.name.clone());
                        let slug_path = path.slug_path(depth + 1);
                        let found: Option<i64> = sqlx::query_scalar("SELECT id FROM categories WHERE path = $1")
                            .bind(&slug_path)
                            .fetch_optional(&mut *conn)
                            .await?;
                        let id = match found {
                            Some(id) => id,
                            None => {
                                let inserted: Option<i64> = sqlx::query_scalar(
                                    "INSERT INTO categories (parent_id, name, slug, path, depth, names, created_at) \
                                     VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (path) DO NOTHING RETURNING id",
                                )
                                .bind(parent)
                                .bind(&part.name)
                                .bind(part.slug.as_str())
                                .bind(&slug_path)
                                .bind(depth as i32 + 1)
                                .bind(string_list(&names))
                                .bind(now)
                                .fetch_optional(&mut *conn)
                                .await?;
                                match inserted {
                                    Some(id) => id,
                                    // Created by a concurrent writer between the two statements.
                                    None => sqlx::query_scalar("SELECT id FROM categories WHERE path = $1")
                                        .bind(&slug_path)
                                        .fetch_one(&mut *conn)
                                        .await?,
                                }
                            }
                        };
                        parent = Some(id);
                    }
                    parent.ok_or_else(|| StoreError::Corrupt("empty category path".into()))
                }

                async fn author_id(conn: &mut $conn, author: &CategoryName, now: DateTime<Utc>) -> Result<i64, StoreError> {
                    let found: Option<i64> = sqlx::query_scalar("SELECT id FROM authors WHERE slug = $1")
                        .bind(author.slug.as_str())
                        .fetch_optional(&mut *conn)
                        .await?;
                    if let Some(id) = found {
                        return Ok(id);
                    }
                    let inserted: Option<i64> = sqlx::query_scalar(
                        "INSERT INTO authors (name, slug, created_at) VALUES ($1, $2, $3) \
                         ON CONFLICT (slug) DO NOTHING RETURNING id",
                    )
                    .bind(&author.name)
                    .bind(author.slug.as_str())
                    .bind(now)
                    .fetch_optional(&mut *conn)
                    .await?;
                    match inserted {
                        Some(id) => Ok(id),
                        None => Ok(sqlx::query_scalar("SELECT id FROM authors WHERE slug = $1")
                            .bind(author.slug.as_str())
                            .fetch_one(&mut *conn)
                            .await?),
                    }
                }

                #[allow(clippy::too_many_arguments)]
                async fn insert_event(
                    conn: &mut $conn,
                    article_id: i64,
                    kind: EventKind,
                    category_id: Option<i64>,
                    author_id: Option<i64>,
                    previous_category_id: Option<i64>,
                    previous_author_id: Option<i64>,
                    now: DateTime<Utc>,
                ) -> Result<(), StoreError> {
                    sqlx::query(
                        "INSERT INTO publication_events (article_id, kind, category_id, author_id, \
                         previous_category_id, previous_author_id, occurred_at) VALUES ($1, $2, $3, $4, $5, $6, $7)",
                    )
                    .bind(article_id)
                    .bind(kind.as_str())
                    .bind(category_id)
                    .bind(author_id)
                    .bind(previous_category_id)
                    .bind(previous_author_id)
                    .bind(now)
                    .execute(&mut *conn)
                    .await?;
                    Ok(())
                }

                /// Puts a new or changed article in the feeds `keys` names, with one statement.
                async fn write_feed_entries(
                    conn: &mut $conn,
                    article_id: i64,
                    keys: &[String],
                    published_at: DateTime<Utc>,
                    replace: bool,
                ) -> Result<(), StoreError> {
                    if replace {
                        sqlx::query("DELETE FROM feed_entries WHERE article_id = $1").bind(article_id).execute(&mut *conn).await?;
                    }
                    let sql = insert_feed_entries_sql(keys.len())?;
                    let mut query = sqlx::query(sql).bind(article_id).bind(published_at);
                    for key in keys {
                        query = query.bind(key);
                    }
                    query.execute(&mut *conn).await?;
                    Ok(())
                }

                /// Puts a visible article in the feeds it belongs to, or takes it out.
                async fn sync_feed_entries(conn: &mut $conn, article_id: i64, visible: bool) -> Result<(), StoreError> {
                    sqlx::query("DELETE FROM feed_entries WHERE article_id = $1").bind(article_id).execute(&mut *conn).await?;
                    if !visible {
                        return Ok(());
                    }
                    for insert in [
                        "INSERT INTO feed_entries (feed_key, article_id, published_at) \
                         SELECT 'all', id, published_at FROM articles WHERE id = $1",
                        "INSERT INTO feed_entries (feed_key, article_id, published_at) \
                         SELECT 'category:' || anc.path, a.id, a.published_at FROM articles a \
                         JOIN categories c ON c.id = a.category_id \
                         JOIN categories anc ON c.path = anc.path OR c.path LIKE anc.path || '/%' WHERE a.id = $1",
                        "INSERT INTO feed_entries (feed_key, article_id, published_at) \
                         SELECT 'author:' || au.slug, a.id, a.published_at FROM articles a \
                         JOIN authors au ON au.id = a.author_id WHERE a.id = $1",
                    ] {
                        sqlx::query(insert).bind(article_id).execute(&mut *conn).await?;
                    }
                    Ok(())
                }

                fn article_from_row(row: &<<$conn as sqlx::Connection>::Database as sqlx::Database>::Row) -> Result<Article, StoreError> {
                    let category = match row.try_get::<Option<i64>, _>("category_id")? {
                        Some(id) => Some(CategoryRef {
                            id,
                            path: row.try_get("category_path")?,
                            names: parse_string_list(row.try_get("category_names")?)?,
                        }),
                        None => None,
                    };
                    let author = match row.try_get::<Option<i64>, _>("author_id")? {
                        Some(id) => Some(AuthorRef { id, name: row.try_get("author_name")?, slug: row.try_get("author_slug")? }),
                        None => None,
                    };
                    Ok(Article {
                        id: row.try_get("id")?,
                        source_id: row.try_get("source_id")?,
                        title: row.try_get("title")?,
                        url: row.try_get("url")?,
                        summary: row.try_get("summary")?,
                        content_html: row.try_get("content_html")?,
                        image: row.try_get("image")?,
                        category,
                        author,
                        tags: parse_string_list(row.try_get("tags")?)?,
                        published_at: row.try_get("published_at")?,
                        updated_at: row.try_get("updated_at")?,
                        created_at: row.try_get("created_at")?,
                        status: parse_status(row.try_get("status")?)?,
                        content_hash: row.try_get("content_hash")?,
                    })
                }

                /// Rewrites an article whose id is already stored (found by `insert_new`'s
                /// conflict, so the row is there): unchanged content changes nothing.
                async fn update_existing(conn: &mut $conn, article: &ArticleRow<'_>, now: DateTime<Utc>) -> Result<Upserted, StoreError> {
                    let item = article.item;
                    let input = &item.input;
                    let (category_id, author_id) = (article.category_id, article.author_id);
                    let image = input.image.as_ref().map(|u| u.as_str());
                    let existing = sqlx::query(
                        "SELECT id, status, content_hash, category_id, author_id, published_at \
                         FROM articles WHERE source_id = $1",
                    )
                    .bind(&input.source_id)
                    .fetch_optional(&mut *conn)
                    .await?;
                    let Some(row) = existing else {
                        return Err(StoreError::Corrupt(format!("article {:?} vanished during its update", input.source_id)));
                    };
                    let id: i64 = row.try_get("id")?;
                    let old_status = parse_status(row.try_get::<&str, _>("status")?)?;
                    let old_hash: &str = row.try_get("content_hash")?;
                    if old_hash == item.content_hash && old_status != ArticleStatus::Retracted {
                        return Ok(Upserted { change: Change::Unchanged, status: old_status, event: None });
                    }
                    let old_category: Option<i64> = row.try_get("category_id")?;
                    let old_author: Option<i64> = row.try_get("author_id")?;
                    let published_at = input.published_at.unwrap_or(row.try_get("published_at")?);
                    let status = status_at(published_at, now);
                    sqlx::query(
                        "UPDATE articles SET title = $2, url = $3, summary = $4, content_html = $5, image = $6, \
                         category_id = $7, author_id = $8, tags = $9, published_at = $10, updated_at = $11, \
                         status = $12, content_hash = $13 WHERE id = $1",
                    )
                    .bind(id)
                    .bind(&input.title)
                    .bind(&item.url)
                    .bind(input.summary.as_deref())
                    .bind(&input.content_html)
                    .bind(image)
                    .bind(category_id)
                    .bind(author_id)
                    .bind(&article.tags)
                    .bind(published_at)
                    .bind(input.updated_at.unwrap_or(now))
                    .bind(status.as_str())
                    .bind(&item.content_hash)
                    .execute(&mut *conn)
                    .await?;
                    let event = EventKind::for_transition(Some(old_status), status);
                    if let Some(kind) = event {
                        Self::insert_event(conn, id, kind, category_id, author_id, old_category, old_author, now).await?;
                        if kind == EventKind::Retracted {
                            Self::sync_feed_entries(conn, id, false).await?;
                        } else {
                            Self::write_feed_entries(conn, id, &article_feed_keys(input), published_at, true).await?;
                        }
                    }
                    Ok(Upserted { change: Change::Updated, status, event })
                }

                /// Finds or creates the batch's categories and authors, each in its own short
                /// statement outside the article transaction, so concurrent batches never hold
                /// locks on them in different orders. Ids are remembered: names are never deleted.
                async fn ensure_names(&self, items: &[PreparedArticle], now: DateTime<Utc>) -> Result<HashMap<String, i64>, StoreError> {
                    let mut wanted: BTreeMap<String, NameRef<'_>> = BTreeMap::new();
                    for item in items {
                        if let Some(path) = &item.input.category {
                            wanted.insert(format!("category:{}", path.full_slug_path()), NameRef::Category(path));
                        }
                        if let Some(author) = &item.input.author {
                            wanted.insert(format!("author:{}", author.slug), NameRef::Author(author));
                        }
                    }
                    let mut found = HashMap::with_capacity(wanted.len());
                    {
                        let known = self.names.lock().unwrap_or_else(|p| p.into_inner());
                        wanted.retain(|key, _| match known.get(key) {
                            Some(id) => {
                                found.insert(key.clone(), *id);
                                false
                            }
                            None => true,
                        });
                    }
                    if wanted.is_empty() {
                        return Ok(found);
                    }
                    let mut conn = self.writer().acquire().await?;
                    let mut learned = Vec::with_capacity(wanted.len());
                    for (key, name) in wanted {
                        let id = match name {
                            NameRef::Category(path) => Self::category_id(&mut conn, path, now).await?,
                            NameRef::Author(author) => Self::author_id(&mut conn, author, now).await?,
                        };
                        learned.push((key, id));
                    }
                    let mut known = self.names.lock().unwrap_or_else(|p| p.into_inner());
                    for (key, id) in learned {
                        known.insert(key.clone(), id);
                        found.insert(key, id);
                    }
                    Ok(found)
                }

                /// Writes all items in one transaction; any error rolls all of them back.
                async fn upsert_all(&self, items: &[PreparedArticle], now: DateTime<Utc>) -> Result<Vec<Upserted>, StoreError> {
                    let names = self.ensure_names(items, now).await?;
                    let rows = items.iter().map(|item| ArticleRow::new(item, &names, now)).collect::<Result<Vec<_>, _>>()?;
                    let mut tx = self.begin_write().await?;
                    let fresh = Self::insert_new(&mut tx, &rows, now).await?;
                    let mut results = Vec::with_capacity(items.len());
                    for (row, done) in rows.iter().zip(fresh) {
                        results.push(match done {
                            Some(done) => done,
                            None => Self::update_existing(&mut tx, row, now).await?,
                        });
                    }
                    tx.commit().await?;
                    Ok(results)
                }

                /// The bulk path for ids not stored yet, the common case: the articles, their
                /// events and their feed entries each take a few multi-row statements instead
                /// of three statements per article. `None` for an item whose id is already
                /// stored (or came earlier in the batch): the caller updates it.
                async fn insert_new(conn: &mut $conn, rows: &[ArticleRow<'_>], now: DateTime<Utc>) -> Result<Vec<Option<Upserted>>, StoreError> {
                    let mut inserted: HashMap<String, i64> = HashMap::with_capacity(rows.len());
                    for chunk in rows.chunks(MAX_BINDS / INSERT_ARTICLES.1) {
                        let sql = multi_row_sql(INSERT_ARTICLES, chunk.len(), " ON CONFLICT (source_id) DO NOTHING RETURNING id, source_id", Self::NUMBERED_BINDS);
                        let mut query = sqlx::query(sql);
                        for r in chunk {
                            let input = &r.item.input;
                            query = query
                                .bind(&input.source_id)
                                .bind(&input.title)
                                .bind(&r.item.url)
                                .bind(input.summary.as_deref())
                                .bind(&input.content_html)
                                .bind(input.image.as_ref().map(|u| u.as_str()))
                                .bind(r.category_id)
                                .bind(r.author_id)
                                .bind(&r.tags)
                                .bind(r.published_at)
                                .bind(input.updated_at.unwrap_or(r.published_at))
                                .bind(now)
                                .bind(r.status.as_str())
                                .bind(&r.item.content_hash);
                        }
                        for row in query.fetch_all(&mut *conn).await? {
                            inserted.insert(row.try_get("source_id")?, row.try_get("id")?);
                        }
                    }
                    let mut results = Vec::with_capacity(rows.len());
                    // Each new visible article with its event, in input order.
                    let mut visible: Vec<(i64, EventKind, &ArticleRow<'_>)> = Vec::new();
                    for r in rows {
                        // Removed once taken, so a repeated id is updated afterwards.
                        let Some(id) = inserted.remove(&r.item.input.source_id) else {
                            results.push(None);
                            continue;
                        };
                        let event = EventKind::for_transition(None, r.status);
                        if let Some(kind) = event {
                            visible.push((id, kind, r));
                        }
                        results.push(Some(Upserted { change: Change::New, status: r.status, event }));
                    }
                    for chunk in visible.chunks(MAX_BINDS / INSERT_NEW_EVENTS.1) {
                        let mut query = sqlx::query(multi_row_sql(INSERT_NEW_EVENTS, chunk.len(), "", Self::NUMBERED_BINDS));
                        for (id, kind, r) in chunk {
                            query = query.bind(*id).bind(kind.as_str()).bind(r.category_id).bind(r.author_id).bind(now);
                        }
                        query.execute(&mut *conn).await?;
                    }
                    let entries: Vec<(String, i64, DateTime<Utc>)> = visible
                        .iter()
                        .flat_map(|(id, _, r)| article_feed_keys(&r.item.input).into_iter().map(move |key| (key, *id, r.published_at)))
                        .collect();
                    for chunk in entries.chunks(MAX_BINDS / INSERT_FEED_ENTRY_ROWS.1) {
                        let mut query = sqlx::query(multi_row_sql(INSERT_FEED_ENTRY_ROWS, chunk.len(), "", Self::NUMBERED_BINDS));
                        for (key, id, published_at) in chunk {
                            query = query.bind(key).bind(*id).bind(*published_at);
                        }
                        query.execute(&mut *conn).await?;
                    }
                    Ok(results)
                }
            }

            #[async_trait]
            impl Store for $store {
                fn backend(&self) -> &'static str {
                    Self::BACKEND
                }

                async fn migrate(&self) -> Result<(), StoreError> {
                    self.run_migrations().await
                }

                async fn ping(&self) -> Result<(), StoreError> {
                    sqlx::query("SELECT 1").execute(&self.pool).await?;
                    Ok(())
                }

                async fn upsert_articles(
                    &self,
                    items: &[PreparedArticle],
                    now: DateTime<Utc>,
                ) -> Result<Vec<Result<Upserted, StoreError>>, StoreError> {
                    match self.upsert_all(items, now).await {
                        Ok(done) => Ok(done.into_iter().map(Ok).collect()),
                        Err(e) if items.len() <= 1 => Ok(vec![Err(e)]),
                        // Some item failed: the fast path rolled back; write each item on its
                        // own so the good ones are kept and only the bad one reports.
                        Err(_) => {
                            let mut results = Vec::with_capacity(items.len());
                            for item in items {
                                let one = self.upsert_all(std::slice::from_ref(item), now).await;
                                results.push(one.map(|mut v| v.remove(0)));
                            }
                            Ok(results)
                        }
                    }
                }

                async fn article(&self, source_id: &str) -> Result<Option<Article>, StoreError> {
                    let row = sqlx::query(ARTICLE_BY_SOURCE_ID).bind(source_id).fetch_optional(&self.pool).await?;
                    row.as_ref().map(Self::article_from_row).transpose()
                }

                async fn retract_article(&self, source_id: &str, now: DateTime<Utc>) -> Result<Retraction, StoreError> {
                    let mut tx = self.begin_write().await?;
                    let Some(row) = sqlx::query("SELECT id, status, category_id, author_id FROM articles WHERE source_id = $1")
                        .bind(source_id)
                        .fetch_optional(&mut *tx)
                        .await?
                    else {
                        return Ok(Retraction::NotFound);
                    };
                    let id: i64 = row.try_get("id")?;
                    let status = parse_status(row.try_get("status")?)?;
                    if status == ArticleStatus::Retracted {
                        return Ok(Retraction::AlreadyRetracted);
                    }
                    sqlx::query("UPDATE articles SET status = 'retracted', updated_at = $2 WHERE id = $1")
                        .bind(id)
                        .bind(now)
                        .execute(&mut *tx)
                        .await?;
                    let event = EventKind::for_transition(Some(status), ArticleStatus::Retracted);
                    if let Some(kind) = event {
                        let category: Option<i64> = row.try_get("category_id")?;
                        let author: Option<i64> = row.try_get("author_id")?;
                        Self::insert_event(&mut tx, id, kind, category, author, category, author, now).await?;
                        Self::sync_feed_entries(&mut tx, id, false).await?;
                    }
                    tx.commit().await?;
                    Ok(Retraction::Retracted { event: event.is_some() })
                }

                async fn publish_due(&self, now: DateTime<Utc>) -> Result<u64, StoreError> {
                    let mut total = 0u64;
                    loop {
                        let mut tx = self.begin_write().await?;
                        // The status condition is checked again by the UPDATE itself, so two
                        // instances racing here publish each article once.
                        let rows = sqlx::query(
                            "UPDATE articles SET status = 'published' WHERE status = 'scheduled' AND id IN \
                             (SELECT id FROM articles WHERE status = 'scheduled' AND published_at <= $1 \
                              ORDER BY published_at LIMIT $2) \
                             RETURNING id, category_id, author_id",
                        )
                        .bind(now)
                        .bind(PUBLISH_BATCH)
                        .fetch_all(&mut *tx)
                        .await?;
                        for row in &rows {
                            let category: Option<i64> = row.try_get("category_id")?;
                            let author: Option<i64> = row.try_get("author_id")?;
                            let id: i64 = row.try_get("id")?;
                            Self::insert_event(&mut tx, id, EventKind::Published, category, author, category, author, now).await?;
                            Self::sync_feed_entries(&mut tx, id, true).await?;
                        }
                        tx.commit().await?;
                        total += rows.len() as u64;
                        if (rows.len() as i64) < PUBLISH_BATCH {
                            return Ok(total);
                        }
                    }
                }

                async fn next_scheduled_at(&self) -> Result<Option<DateTime<Utc>>, StoreError> {
                    Ok(sqlx::query_scalar(
                        "SELECT published_at FROM articles WHERE status = 'scheduled' ORDER BY published_at LIMIT 1",
                    )
                    .fetch_optional(&self.pool)
                    .await?)
                }

                async fn events_after(&self, after_id: i64, limit: i64) -> Result<Vec<PublicationEvent>, StoreError> {
                    let rows = sqlx::query(
                        "SELECT id, article_id, kind, category_id, author_id, previous_category_id, \
                         previous_author_id, occurred_at FROM publication_events WHERE id > $1 ORDER BY id LIMIT $2",
                    )
                    .bind(after_id)
                    .bind(limit)
                    .fetch_all(&self.pool)
                    .await?;
                    rows.iter()
                        .map(|row| {
                            Ok(PublicationEvent {
                                id: row.try_get("id")?,
                                article_id: row.try_get("article_id")?,
                                kind: parse_event_kind(row.try_get("kind")?)?,
                                category_id: row.try_get("category_id")?,
                                author_id: row.try_get("author_id")?,
                                previous_category_id: row.try_get("previous_category_id")?,
                                previous_author_id: row.try_get("previous_author_id")?,
                                occurred_at: row.try_get("occurred_at")?,
                            })
                        })
                        .collect()
                }

                async fn create_api_token(
                    &self,
                    name: &str,
                    public_id: &str,
                    secret_hash: &str,
                    now: DateTime<Utc>,
                ) -> Result<i64, StoreError> {
                    Ok(sqlx::query_scalar(
                        "INSERT INTO api_tokens (name, public_id, secret_hash, created_at) VALUES ($1, $2, $3, $4) RETURNING id",
                    )
                    .bind(name)
                    .bind(public_id)
                    .bind(secret_hash)
                    .bind(now)
                    .fetch_one(self.writer())
                    .await?)
                }

                async fn api_token_hash(&self, public_id: &str) -> Result<Option<(i64, String)>, StoreError> {
                    let row = sqlx::query("SELECT id, secret_hash FROM api_tokens WHERE public_id = $1 AND revoked_at IS NULL")
                        .bind(public_id)
                        .fetch_optional(&self.pool)
                        .await?;
                    row.map(|r| Ok((r.try_get("id")?, r.try_get("secret_hash")?))).transpose()
                }

                async fn feed_page(&self, feed_key: &str, limit: i64, before: Option<FeedCursor>) -> Result<Vec<Article>, StoreError> {
                    let rows = match before {
                        None => sqlx::query(FEED_PAGE).bind(feed_key).bind(limit).fetch_all(&self.pool).await?,
                        Some(cursor) => {
                            sqlx::query(FEED_PAGE_BEFORE)
                                .bind(feed_key)
                                .bind(limit)
                                .bind(cursor.published_at)
                                .bind(cursor.article_id)
                                .fetch_all(&self.pool)
                                .await?
                        }
                    };
                    rows.iter().map(Self::article_from_row).collect()
                }

                async fn categories(&self) -> Result<Vec<CategoryRef>, StoreError> {
                    let rows = sqlx::query("SELECT id, path, names FROM categories ORDER BY path").fetch_all(&self.pool).await?;
                    rows.iter()
                        .map(|r| Ok(CategoryRef { id: r.try_get("id")?, path: r.try_get("path")?, names: parse_string_list(r.try_get("names")?)? }))
                        .collect()
                }

                async fn authors(&self) -> Result<Vec<AuthorRef>, StoreError> {
                    let rows = sqlx::query("SELECT id, name, slug FROM authors ORDER BY slug").fetch_all(&self.pool).await?;
                    rows.iter()
                        .map(|r| Ok(AuthorRef { id: r.try_get("id")?, name: r.try_get("name")?, slug: r.try_get("slug")? }))
                        .collect()
                }

                async fn feed_keys_of(&self, category_ids: &[i64], author_ids: &[i64]) -> Result<Vec<String>, StoreError> {
                    let mut keys = Vec::new();
                    for id in category_ids {
                        let paths: Vec<String> = sqlx::query_scalar(CATEGORY_FEED_KEYS).bind(id).fetch_all(&self.pool).await?;
                        keys.extend(paths);
                    }
                    for id in author_ids {
                        let slug: Option<String> =
                            sqlx::query_scalar("SELECT slug FROM authors WHERE id = $1").bind(id).fetch_optional(&self.pool).await?;
                        keys.extend(slug.map(|s| format!("author:{s}")));
                    }
                    Ok(keys)
                }

                async fn latest_event_id(&self) -> Result<i64, StoreError> {
                    let id: Option<i64> = sqlx::query_scalar("SELECT MAX(id) FROM publication_events").fetch_one(&self.pool).await?;
                    Ok(id.unwrap_or(0))
                }

                async fn events_by_id(&self, ids: &[i64]) -> Result<Vec<PublicationEvent>, StoreError> {
                    let mut events = Vec::new();
                    for id in ids {
                        events.extend(self.events_after(id - 1, 1).await?.into_iter().filter(|e| e.id == *id));
                    }
                    Ok(events)
                }

                async fn save_feed_document(&self, doc: &StoredFeedDocument) -> Result<(), StoreError> {
                    sqlx::query(
                        "INSERT INTO feed_documents (feed_key, format, body, gzip, brotli, etag, last_modified, built_through) \
                         VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT (feed_key, format) DO UPDATE SET \
                         body = excluded.body, gzip = excluded.gzip, brotli = excluded.brotli, etag = excluded.etag, \
                         last_modified = excluded.last_modified, built_through = excluded.built_through \
                         WHERE feed_documents.built_through <= excluded.built_through",
                    )
                    .bind(&doc.feed_key)
                    .bind(&doc.format)
                    .bind(&doc.body)
                    .bind(&doc.gzip)
                    .bind(&doc.brotli)
                    .bind(&doc.etag)
                    .bind(doc.last_modified)
                    .bind(doc.built_through)
                    .execute(self.writer())
                    .await?;
                    Ok(())
                }

                async fn feed_documents(&self) -> Result<Vec<StoredFeedDocument>, StoreError> {
                    let rows = sqlx::query(
                        "SELECT feed_key, format, body, gzip, brotli, etag, last_modified, built_through FROM feed_documents",
                    )
                    .fetch_all(&self.pool)
                    .await?;
                    rows.iter()
                        .map(|r| {
                            Ok(StoredFeedDocument {
                                feed_key: r.try_get("feed_key")?,
                                format: r.try_get("format")?,
                                body: r.try_get("body")?,
                                gzip: r.try_get("gzip")?,
                                brotli: r.try_get("brotli")?,
                                etag: r.try_get("etag")?,
                                last_modified: r.try_get("last_modified")?,
                                built_through: r.try_get("built_through")?,
                            })
                        })
                        .collect()
                }
            }
        };
    };
}

pub(super) use shared_store_impl;
