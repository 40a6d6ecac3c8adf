//! Storage of the audience: lists, subscribers and subscriptions, admins, their sessions
//! and the audit log. Part of the one storage story: [`super::Store`] requires
//! [`AudienceStore`], and both backends implement it with the same SQL, stamped by
//! `audience_store_impl!` like the article queries.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::{Map, Value};

use super::StoreError;
use crate::config::Language;
use crate::domain::audience::{ListInput, SubscriberStatus, SubscriptionStatus};
use crate::domain::email::EmailAddress;

/// A list as stored.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct MailingList {
    #[serde(skip)]
    pub id: i64,
    pub slug: String,
    pub name: String,
    pub description: String,
    pub categories: Vec<String>,
    pub schedule: String,
    pub timezone: String,
    pub language: String,
    pub from_name: String,
    pub from_address: String,
    pub double_opt_in: bool,
    pub send_empty: bool,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Subscriber {
    pub id: i64,
    pub email: String,
    pub name: String,
    pub language: String,
    pub status: SubscriberStatus,
    pub attributes: Map<String, Value>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub confirmed_at: Option<DateTime<Utc>>,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Subscription {
    #[serde(skip)]
    pub list_id: i64,
    pub list: String,
    pub status: SubscriptionStatus,
    /// The subscriber's narrowing of the list's categories; empty = all of them.
    pub categories: Vec<String>,
    pub created_at: DateTime<Utc>,
    /// Articles that became visible up to this time have been sent (or were there before
    /// the subscription).
    pub sent_through: DateTime<Utc>,
}

/// A subscriber with their subscriptions.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct SubscriberDetail {
    #[serde(flatten)]
    pub subscriber: Subscriber,
    pub subscriptions: Vec<Subscription>,
}

impl SubscriberDetail {
    /// `list_id` as a choice for setting this subscriber's lists: a list they keep keeps
    /// their own narrowing of its categories; a new one starts with all of them.
    pub fn keeping_categories(&self, list_id: i64) -> ListChoice {
        let categories =
            self.subscriptions.iter().find(|s| s.list_id == list_id).map(|s| s.categories.clone()).unwrap_or_default();
        ListChoice { list_id, categories }
    }
}

/// A subscriber to write: parsed input plus the lists (by id) to subscribe them to.
#[derive(Clone, Debug)]
pub struct NewSubscriber {
    pub email: EmailAddress,
    pub name: String,
    pub language: Language,
    pub status: SubscriberStatus,
    pub attributes: Map<String, Value>,
    pub list_ids: Vec<i64>,
}

/// What a bulk write did with one row.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Merge {
    Created,
    /// The address was already known: new lists added, name and attributes filled in,
    /// status only ever raised from unconfirmed to active.
    Merged,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Merged {
    pub id: i64,
    pub merge: Merge,
    /// The subscriber's status after the write.
    pub status: SubscriberStatus,
}

/// Admin search over subscribers: newest first, keyset-paginated by id.
#[derive(Clone, Debug, Default)]
pub struct SubscriberQuery {
    /// Text matched anywhere in the email or name, taken literally (`%` and `_` too).
    pub text: Option<String>,
    pub list_id: Option<i64>,
    pub status: Option<SubscriberStatus>,
    /// Only ids below this one (the last id of the previous page).
    pub before_id: Option<i64>,
    pub limit: i64,
}

/// What a public subscribe form did; the page shown is the same whatever it says.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SubscribeOutcome {
    /// Blocklisted or bounced: nothing written, nothing sent.
    Barred,
    /// Subscribed; `confirm` says a confirmation email is due (and not sent recently).
    Recorded { subscriber_id: i64, confirm: bool },
}

/// A list chosen on a public form or in the preference centre, with its categories.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ListChoice {
    pub list_id: i64,
    pub categories: Vec<String>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct StatusCount {
    pub status: String,
    pub count: i64,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ListCounts {
    pub slug: String,
    pub name: String,
    pub active: i64,
    pub unconfirmed: i64,
    pub unsubscribed: i64,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AdminAccount {
    pub id: i64,
    pub username: String,
    pub password_hash: String,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AdminSession {
    pub admin_id: i64,
    pub username: String,
    pub csrf_token: String,
    pub expires_at: DateTime<Utc>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ApiTokenInfo {
    pub id: i64,
    pub name: String,
    pub public_id: String,
    pub created_at: DateTime<Utc>,
    pub revoked_at: Option<DateTime<Utc>>,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct AuditEntry {
    pub id: i64,
    pub occurred_at: DateTime<Utc>,
    pub actor: String,
    pub action: String,
    pub subject: String,
    pub detail: Value,
}

#[async_trait]
pub trait AudienceStore: Send + Sync {
    /// The named secret, made from `fresh` by whichever instance asks first.
    async fn secret(&self, name: &str, fresh: &str) -> Result<String, StoreError>;

    async fn lists(&self) -> Result<Vec<MailingList>, StoreError>;
    async fn list(&self, slug: &str) -> Result<Option<MailingList>, StoreError>;
    /// `StoreError::Conflict` when the slug is taken.
    async fn create_list(&self, input: &ListInput, now: DateTime<Utc>) -> Result<MailingList, StoreError>;
    /// Replaces the list named `slug` (whose slug may change); `None` when there is none.
    async fn update_list(
        &self,
        slug: &str,
        input: &ListInput,
        now: DateTime<Utc>,
    ) -> Result<Option<MailingList>, StoreError>;
    /// Deletes the list and its subscriptions (the subscribers stay).
    async fn delete_list(&self, slug: &str) -> Result<bool, StoreError>;

    async fn subscriber(&self, id: i64) -> Result<Option<SubscriberDetail>, StoreError>;
    async fn subscriber_by_email(&self, email: &EmailAddress) -> Result<Option<SubscriberDetail>, StoreError>;
    /// These subscribers (those that exist), in id order.
    async fn subscribers_by_id(&self, ids: &[i64]) -> Result<Vec<SubscriberDetail>, StoreError>;
    async fn search_subscribers(&self, query: &SubscriberQuery) -> Result<Vec<Subscriber>, StoreError>;
    /// Every subscriber (of one list), in id order, from `after_id`, for export.
    async fn export_subscribers(
        &self,
        list_id: Option<i64>,
        after_id: i64,
        limit: i64,
    ) -> Result<Vec<SubscriberDetail>, StoreError>;
    /// Adds one subscriber; `StoreError::Conflict` when the address is known.
    async fn create_subscriber(&self, new: &NewSubscriber, now: DateTime<Utc>) -> Result<i64, StoreError>;
    /// Adds or merges many subscribers in one transaction (see [`Merge`]). Rows must have
    /// distinct addresses. Subscriptions are created as `subscription_status`, and never
    /// change an existing subscription (so an import cannot resubscribe anyone).
    async fn merge_subscribers(
        &self,
        rows: &[NewSubscriber],
        subscription_status: SubscriptionStatus,
        now: DateTime<Utc>,
    ) -> Result<Vec<Merged>, StoreError>;
    /// Admin edit of name, language, status and attributes; `false` when there is no such id.
    async fn update_subscriber(
        &self,
        id: i64,
        name: &str,
        language: Language,
        status: SubscriberStatus,
        attributes: &Map<String, Value>,
        now: DateTime<Utc>,
    ) -> Result<bool, StoreError>;
    /// Sets the subscriptions of a subscriber to exactly these lists (admin edit):
    /// new ones as `status`, ones not named are unsubscribed.
    async fn set_subscriptions(
        &self,
        id: i64,
        choices: &[ListChoice],
        status: SubscriptionStatus,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError>;
    /// Erases the subscriber and their subscriptions.
    async fn delete_subscriber(&self, id: i64) -> Result<bool, StoreError>;

    /// A public subscribe form: see [`SubscribeOutcome`]. `confirm_interval` is the least
    /// time between two confirmation emails to one address.
    async fn subscribe(
        &self,
        email: &EmailAddress,
        name: &str,
        language: Language,
        choices: &[ListChoice],
        confirm_interval: chrono::Duration,
        now: DateTime<Utc>,
    ) -> Result<SubscribeOutcome, StoreError>;
    /// Records that a confirmation email was sent now.
    async fn confirmation_sent(&self, subscriber_id: i64, now: DateTime<Utc>) -> Result<(), StoreError>;
    /// The confirmation link: unconfirmed subscriptions become active. `false` when the
    /// subscriber is gone or barred.
    async fn confirm_subscriber(&self, subscriber_id: i64, now: DateTime<Utc>) -> Result<bool, StoreError>;
    /// The preference centre: these lists (active, with their categories), no others;
    /// the language. An empty choice unsubscribes from everything.
    async fn save_preferences(
        &self,
        subscriber_id: i64,
        choices: &[ListChoice],
        language: Language,
        now: DateTime<Utc>,
    ) -> Result<bool, StoreError>;
    /// Unsubscribes from one list, or from everything with `None`.
    async fn unsubscribe(
        &self,
        subscriber_id: i64,
        list_id: Option<i64>,
        now: DateTime<Utc>,
    ) -> Result<bool, StoreError>;

    async fn subscriber_counts(&self) -> Result<Vec<StatusCount>, StoreError>;
    async fn list_counts(&self) -> Result<Vec<ListCounts>, StoreError>;
    /// Subscribers created in [from, to).
    async fn subscribers_created_between(&self, from: DateTime<Utc>, to: DateTime<Utc>) -> Result<i64, StoreError>;

    /// `StoreError::Conflict` when the username is taken.
    async fn create_admin(&self, username: &str, password_hash: &str, now: DateTime<Utc>) -> Result<i64, StoreError>;
    async fn admin(&self, username: &str) -> Result<Option<AdminAccount>, StoreError>;
    async fn create_session(
        &self,
        id_hash: &str,
        admin_id: i64,
        csrf_token: &str,
        now: DateTime<Utc>,
        expires_at: DateTime<Utc>,
    ) -> Result<(), StoreError>;
    /// An unexpired session.
    async fn session(&self, id_hash: &str, now: DateTime<Utc>) -> Result<Option<AdminSession>, StoreError>;
    async fn delete_session(&self, id_hash: &str) -> Result<(), StoreError>;

    async fn api_tokens(&self) -> Result<Vec<ApiTokenInfo>, StoreError>;
    async fn revoke_api_token(&self, id: i64, now: DateTime<Utc>) -> Result<bool, StoreError>;

    async fn record_audit(
        &self,
        actor: &str,
        action: &str,
        subject: &str,
        detail: &Value,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError>;
    /// Newest first, entries with an id below `before_id`.
    async fn audit_log(&self, before_id: Option<i64>, limit: i64) -> Result<Vec<AuditEntry>, StoreError>;
}

/// Rows per multi-row INSERT in bulk writes (each row binds 6 values; SQLite allows 32,766).
pub(super) const MERGE_CHUNK: usize = 500;
/// Rows per statement of [`AudienceStore::merge_subscribers`] (sent as one JSON array).
pub(super) const MERGE_BATCH: usize = 50_000;

/// Rows for `merge_subscribers` as the JSON array its statement expands, written
/// straight from the rows (a `serde_json::Value` per row would hold ten times the memory).
pub(super) fn merge_rows_json(rows: &[NewSubscriber]) -> Result<String, StoreError> {
    #[derive(Serialize)]
    struct Row<'a> {
        e: &'a str,
        k: String,
        n: &'a str,
        nk: String,
        l: &'static str,
        s: &'static str,
        a: String,
    }
    let rows: Vec<Row> = rows
        .iter()
        .map(|row| Row {
            e: row.email.as_str(),
            k: row.email.key(),
            n: &row.name,
            nk: name_key(&row.name),
            l: row.language.code(),
            s: row.status.as_str(),
            a: Value::Object(row.attributes.clone()).to_string(),
        })
        .collect();
    serde_json::to_string(&rows).map_err(|e| StoreError::Corrupt(format!("cannot write rows as JSON: {e}")))
}

pub(super) fn parse_subscriber_status(s: &str) -> Result<SubscriberStatus, StoreError> {
    SubscriberStatus::parse(s).ok_or_else(|| StoreError::Corrupt(format!("unknown subscriber status {s:?}")))
}

pub(super) fn parse_subscription_status(s: &str) -> Result<SubscriptionStatus, StoreError> {
    SubscriptionStatus::parse(s).ok_or_else(|| StoreError::Corrupt(format!("unknown subscription status {s:?}")))
}

pub(super) fn parse_object(s: &str) -> Result<Map<String, Value>, StoreError> {
    serde_json::from_str(s).map_err(|e| StoreError::Corrupt(format!("bad JSON object {s:?}: {e}")))
}

/// The lowercase form of a name that search matches against.
pub fn name_key(name: &str) -> String {
    name.to_lowercase()
}

/// A LIKE pattern matching `text` anywhere, with `%`, `_` and `\` taken literally.
pub(super) fn like_pattern(text: &str) -> String {
    let mut pattern = String::with_capacity(text.len() + 2);
    pattern.push('%');
    pattern.push_str(&prefix_pattern(text));
    pattern
}

/// A LIKE pattern matching what starts with `text`, with `%`, `_` and `\` taken literally.
pub(super) fn prefix_pattern(text: &str) -> String {
    let mut pattern = String::with_capacity(text.len() + 1);
    for c in text.chars() {
        if matches!(c, '%' | '_' | '\\') {
            pattern.push('\\');
        }
        pattern.push(c);
    }
    pattern.push('%');
    pattern
}

/// An FTS5 query for rows holding every trigram of `text` (three characters or more),
/// each quoted with its quotes doubled. The index keeps no positions (`detail=none`:
/// a third of the size, and bulk imports write it twice as fast), so this finds
/// candidates; the caller checks the text itself.
pub(super) fn fts_trigrams(text: &str) -> String {
    let chars: Vec<char> = text.chars().collect();
    let mut query = String::with_capacity(text.len() * 4);
    let mut seen = std::collections::HashSet::new();
    for trigram in chars.windows(3) {
        if !seen.insert(trigram) {
            continue;
        }
        if !query.is_empty() {
            query.push_str(" AND ");
        }
        query.push('"');
        for &c in trigram {
            if c == '"' {
                query.push('"');
            }
            query.push(c);
        }
        query.push('"');
    }
    query
}

/// The part of search text the trigram index looks up (the whole text is checked
/// afterwards when this is only a part). Every trigram of the phrase costs a walk of its
/// list, and those every address shares ("gmail.com", ".com.vn") are huge: a whole
/// address takes 100 ms at a million subscribers, its local part 2 ms. So: of an
/// address, the local part (the domain when the local part is under three characters);
/// of text with dots, the longest dot-separated piece when it has six characters or more
/// ("nongsan17.com.vn" → "nongsan17"), else all of it: "tuan.lam" looked up as "tuan"
/// would walk every Tuấn to find the few Tuấn Lâm.
pub(super) fn selective_part(key: &str) -> &str {
    let side = key.split('@').find(|p| p.chars().count() >= 3).unwrap_or(key);
    let longest = side.split('.').max_by_key(|p| p.chars().count()).unwrap_or(side);
    if longest.chars().count() >= 6 { longest } else { side }
}

/// Subscription status a subscriber's status implies for lists added with them.
pub(super) fn subscription_status_for(status: SubscriberStatus) -> SubscriptionStatus {
    match status {
        SubscriberStatus::Active => SubscriptionStatus::Active,
        SubscriberStatus::Unconfirmed => SubscriptionStatus::Unconfirmed,
        _ => SubscriptionStatus::Unsubscribed,
    }
}

pub(super) const LIST_COLUMNS: &str = "SELECT id, slug, name, description, categories, schedule, timezone, language, \
    from_name, from_address, double_opt_in, send_empty, created_at, updated_at FROM lists";

pub(super) const SUBSCRIBER_COLUMNS: &str = "s.id, s.email, s.name, s.language, s.status, s.attributes, \
    s.created_at, s.updated_at, s.confirmed_at";

macro_rules! audience_store_impl {
    ($store:ty, $conn:ty, $db:ty) => {
        const _: () = {
            use std::collections::HashMap;

            use async_trait::async_trait;
            use chrono::{DateTime, Utc};
            use serde_json::{Map, Value};
            use sqlx::{QueryBuilder, Row};

            use $crate::config::Language;
            use $crate::domain::audience::{ListInput, SubscriberStatus, SubscriptionStatus};
            use $crate::domain::email::EmailAddress;
            use $crate::store::StoreError;
            use $crate::store::audience::*;
            use $crate::store::queries::{parse_string_list, string_list};
            use $crate::store::subscriber_search::{Part, text_conditions};

            type DbRow = <$db as sqlx::Database>::Row;

            fn list_from_row(row: &DbRow) -> Result<MailingList, StoreError> {
                Ok(MailingList {
                    id: row.try_get("id")?,
                    slug: row.try_get("slug")?,
                    name: row.try_get("name")?,
                    description: row.try_get("description")?,
                    categories: parse_string_list(row.try_get("categories")?)?,
                    schedule: row.try_get("schedule")?,
                    timezone: row.try_get("timezone")?,
                    language: row.try_get("language")?,
                    from_name: row.try_get("from_name")?,
                    from_address: row.try_get("from_address")?,
                    double_opt_in: row.try_get("double_opt_in")?,
                    send_empty: row.try_get("send_empty")?,
                    created_at: row.try_get("created_at")?,
                    updated_at: row.try_get("updated_at")?,
                })
            }

            fn subscriber_from_row(row: &DbRow) -> Result<Subscriber, StoreError> {
                Ok(Subscriber {
                    id: row.try_get("id")?,
                    email: row.try_get("email")?,
                    name: row.try_get("name")?,
                    language: row.try_get("language")?,
                    status: parse_subscriber_status(row.try_get("status")?)?,
                    attributes: parse_object(row.try_get("attributes")?)?,
                    created_at: row.try_get("created_at")?,
                    updated_at: row.try_get("updated_at")?,
                    confirmed_at: row.try_get("confirmed_at")?,
                })
            }

            /// Either column contains the text, `%` and `_` taken literally.
            fn push_contains(q: &mut QueryBuilder<$db>, text: &str) {
                let pattern = like_pattern(text);
                q.push(" AND (s.email_key LIKE ")
                    .push_bind(pattern.clone())
                    .push(" ESCAPE '\\' OR s.name_key LIKE ")
                    .push_bind(pattern)
                    .push(" ESCAPE '\\')");
            }

            fn is_unique_violation(e: &sqlx::Error) -> bool {
                matches!(e, sqlx::Error::Database(d) if d.kind() == sqlx::error::ErrorKind::UniqueViolation)
            }

            impl $store {
                /// PostgreSQL's search for text: the newest page of each condition of
                /// [`text_conditions`] (each with the filters), merged.
                async fn search_subscribers_text_pg(&self, query: &SubscriberQuery, key: &str) -> Result<Vec<Subscriber>, StoreError> {
                    let mut q = QueryBuilder::<$db>::new(format!("SELECT {SUBSCRIBER_COLUMNS} FROM subscribers s WHERE s.id IN ("));
                    for (i, condition) in text_conditions(key).into_iter().enumerate() {
                        if i > 0 {
                            q.push(" UNION ALL ");
                        }
                        q.push("(SELECT s.id FROM subscribers s");
                        if let Some(list_id) = query.list_id {
                            q.push(" JOIN subscriptions ss ON ss.subscriber_id = s.id AND ss.list_id = ").push_bind(list_id);
                        }
                        q.push(" WHERE ");
                        for part in condition {
                            match part {
                                Part::Sql(sql) => q.push(sql),
                                Part::Bind(value) => q.push_bind(value),
                            };
                        }
                        if let Some(status) = query.status {
                            q.push(" AND s.status = ").push_bind(status.as_str());
                        }
                        if let Some(before) = query.before_id {
                            q.push(" AND s.id < ").push_bind(before);
                        }
                        q.push(" ORDER BY s.id DESC LIMIT ").push_bind(query.limit).push(")");
                    }
                    q.push(") ORDER BY s.id DESC LIMIT ").push_bind(query.limit);
                    // A search is one short query: workers cost more to start than they save
                    // (10 ms and more on a loaded machine), so none for it.
                    let mut tx = self.pool.begin().await?;
                    sqlx::query("SET LOCAL max_parallel_workers_per_gather = 0").execute(&mut *tx).await?;
                    // Unnamed, so it is planned for these values: a plan cached for other
                    // text would be wrong for most.
                    let rows = q.build().persistent(false).fetch_all(&mut *tx).await?;
                    tx.commit().await?;
                    rows.iter().map(subscriber_from_row).collect()
                }

                async fn subscriptions_of(
                    conn: &mut $conn,
                    ids: &[i64],
                ) -> Result<HashMap<i64, Vec<Subscription>>, StoreError> {
                    let mut by_subscriber: HashMap<i64, Vec<Subscription>> = HashMap::new();
                    if ids.is_empty() {
                        return Ok(by_subscriber);
                    }
                    let mut q = QueryBuilder::<$db>::new(
                        "SELECT ss.subscriber_id, ss.list_id, l.slug, ss.status, ss.categories, ss.created_at, \
                         COALESCE(ss.sent_through, ss.created_at) AS sent_through \
                         FROM subscriptions ss JOIN lists l ON l.id = ss.list_id WHERE ss.subscriber_id IN (",
                    );
                    let mut sep = q.separated(", ");
                    for id in ids {
                        sep.push_bind(*id);
                    }
                    q.push(") ORDER BY l.slug");
                    for row in q.build().fetch_all(&mut *conn).await? {
                        by_subscriber.entry(row.try_get("subscriber_id")?).or_default().push(Subscription {
                            list_id: row.try_get("list_id")?,
                            list: row.try_get("slug")?,
                            status: parse_subscription_status(row.try_get("status")?)?,
                            categories: parse_string_list(row.try_get("categories")?)?,
                            created_at: row.try_get("created_at")?,
                            sent_through: row.try_get("sent_through")?,
                        });
                    }
                    Ok(by_subscriber)
                }

                async fn details(conn: &mut $conn, subscribers: Vec<Subscriber>) -> Result<Vec<SubscriberDetail>, StoreError> {
                    let ids: Vec<i64> = subscribers.iter().map(|s| s.id).collect();
                    let mut subscriptions = Self::subscriptions_of(conn, &ids).await?;
                    Ok(subscribers
                        .into_iter()
                        .map(|subscriber| SubscriberDetail {
                            subscriptions: subscriptions.remove(&subscriber.id).unwrap_or_default(),
                            subscriber,
                        })
                        .collect())
                }

                async fn detail_where(&self, clause: &'static str, bind: impl Into<SubscriberKey>) -> Result<Option<SubscriberDetail>, StoreError> {
                    let mut conn = self.pool.acquire().await?;
                    let mut q = QueryBuilder::<$db>::new(format!("SELECT {SUBSCRIBER_COLUMNS} FROM subscribers s WHERE {clause}"));
                    match bind.into() {
                        SubscriberKey::Id(id) => q.push_bind(id),
                        SubscriberKey::Email(key) => q.push_bind(key),
                    };
                    let Some(row) = q.build().fetch_optional(&mut *conn).await? else { return Ok(None) };
                    let subscriber = subscriber_from_row(&row)?;
                    Ok(Self::details(&mut conn, vec![subscriber]).await?.pop())
                }

                /// Inserts or leaves alone the subscriptions (subscriber, list) as `status`.
                async fn add_subscriptions(
                    conn: &mut $conn,
                    pairs: &[(i64, i64, &[String])],
                    status: SubscriptionStatus,
                    now: DateTime<Utc>,
                ) -> Result<(), StoreError> {
                    for chunk in pairs.chunks(MERGE_CHUNK) {
                        let mut q = QueryBuilder::<$db>::new(
                            "INSERT INTO subscriptions (subscriber_id, list_id, status, categories, created_at, updated_at) ",
                        );
                        q.push_values(chunk, |mut b, (subscriber, list, categories)| {
                            b.push_bind(*subscriber)
                                .push_bind(*list)
                                .push_bind(status.as_str())
                                .push_bind(string_list(categories))
                                .push_bind(now)
                                .push_bind(now);
                        });
                        q.push(" ON CONFLICT (subscriber_id, list_id) DO NOTHING");
                        q.build().execute(&mut *conn).await?;
                    }
                    Ok(())
                }
            }

            #[async_trait]
            impl AudienceStore for $store {
                async fn secret(&self, name: &str, fresh: &str) -> Result<String, StoreError> {
                    sqlx::query("INSERT INTO secrets (name, value) VALUES ($1, $2) ON CONFLICT (name) DO NOTHING")
                        .bind(name)
                        .bind(fresh)
                        .execute(self.writer())
                        .await?;
                    Ok(sqlx::query_scalar("SELECT value FROM secrets WHERE name = $1").bind(name).fetch_one(self.writer()).await?)
                }

                async fn lists(&self) -> Result<Vec<MailingList>, StoreError> {
                    let rows = sqlx::query(sqlx::AssertSqlSafe(format!("{LIST_COLUMNS} ORDER BY name, slug")))
                        .fetch_all(&self.pool)
                        .await?;
                    rows.iter().map(list_from_row).collect()
                }

                async fn list(&self, slug: &str) -> Result<Option<MailingList>, StoreError> {
                    let row = sqlx::query(sqlx::AssertSqlSafe(format!("{LIST_COLUMNS} WHERE slug = $1")))
                        .bind(slug)
                        .fetch_optional(&self.pool)
                        .await?;
                    row.as_ref().map(list_from_row).transpose()
                }

                async fn create_list(&self, input: &ListInput, now: DateTime<Utc>) -> Result<MailingList, StoreError> {
                    let result = sqlx::query(
                        "INSERT INTO lists (slug, name, description, categories, schedule, timezone, language, from_name, \
                         from_address, double_opt_in, send_empty, created_at, updated_at) \
                         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $12, $11, $11)",
                    )
                    .bind(input.slug.as_str())
                    .bind(&input.name)
                    .bind(&input.description)
                    .bind(string_list(&input.categories))
                    .bind(input.schedule.as_str())
                    .bind(input.timezone.name())
                    .bind(input.language.code())
                    .bind(&input.from_name)
                    .bind(input.from_address.as_str())
                    .bind(input.double_opt_in)
                    .bind(now)
                    .bind(input.send_empty)
                    .execute(self.writer())
                    .await;
                    match result {
                        Ok(_) => {}
                        Err(e) if is_unique_violation(&e) => {
                            return Err(StoreError::Conflict(format!("a list with the slug {} exists", input.slug)));
                        }
                        Err(e) => return Err(e.into()),
                    }
                    self.list(input.slug.as_str()).await?.ok_or_else(|| StoreError::Corrupt("a list vanished".into()))
                }

                async fn update_list(&self, slug: &str, input: &ListInput, now: DateTime<Utc>) -> Result<Option<MailingList>, StoreError> {
                    let result = sqlx::query(
                        "UPDATE lists SET slug = $2, name = $3, description = $4, categories = $5, schedule = $6, \
                         timezone = $7, language = $8, from_name = $9, from_address = $10, double_opt_in = $11, updated_at = $12, send_empty = $13 \
                         WHERE slug = $1",
                    )
                    .bind(slug)
                    .bind(input.slug.as_str())
                    .bind(&input.name)
                    .bind(&input.description)
                    .bind(string_list(&input.categories))
                    .bind(input.schedule.as_str())
                    .bind(input.timezone.name())
                    .bind(input.language.code())
                    .bind(&input.from_name)
                    .bind(input.from_address.as_str())
                    .bind(input.double_opt_in)
                    .bind(now)
                    .bind(input.send_empty)
                    .execute(self.writer())
                    .await;
                    match result {
                        Ok(done) if done.rows_affected() == 0 => Ok(None),
                        Ok(_) => self.list(input.slug.as_str()).await,
                        Err(e) if is_unique_violation(&e) => {
                            Err(StoreError::Conflict(format!("a list with the slug {} exists", input.slug)))
                        }
                        Err(e) => Err(e.into()),
                    }
                }

                async fn delete_list(&self, slug: &str) -> Result<bool, StoreError> {
                    let mut tx = self.begin_write().await?;
                    let Some(id): Option<i64> =
                        sqlx::query_scalar("SELECT id FROM lists WHERE slug = $1").bind(slug).fetch_optional(&mut *tx).await?
                    else {
                        return Ok(false);
                    };
                    sqlx::query("DELETE FROM subscriptions WHERE list_id = $1").bind(id).execute(&mut *tx).await?;
                    sqlx::query("DELETE FROM lists WHERE id = $1").bind(id).execute(&mut *tx).await?;
                    tx.commit().await?;
                    Ok(true)
                }

                async fn subscriber(&self, id: i64) -> Result<Option<SubscriberDetail>, StoreError> {
                    self.detail_where("s.id = ", id).await
                }

                async fn subscriber_by_email(&self, email: &EmailAddress) -> Result<Option<SubscriberDetail>, StoreError> {
                    self.detail_where("s.email_key = ", email.key()).await
                }

                async fn subscribers_by_id(&self, ids: &[i64]) -> Result<Vec<SubscriberDetail>, StoreError> {
                    if ids.is_empty() {
                        return Ok(Vec::new());
                    }
                    let mut conn = self.pool.acquire().await?;
                    let mut q = QueryBuilder::<$db>::new(format!("SELECT {SUBSCRIBER_COLUMNS} FROM subscribers s WHERE s.id IN ("));
                    let mut sep = q.separated(", ");
                    for id in ids {
                        sep.push_bind(*id);
                    }
                    q.push(") ORDER BY s.id");
                    let rows = q.build().fetch_all(&mut *conn).await?;
                    let subscribers = rows.iter().map(subscriber_from_row).collect::<Result<Vec<_>, _>>()?;
                    Self::details(&mut conn, subscribers).await
                }

                async fn search_subscribers(&self, query: &SubscriberQuery) -> Result<Vec<Subscriber>, StoreError> {
                    let text = query.text.as_deref().map(str::trim).filter(|t| !t.is_empty()).map(name_key);
                    if let Some(key) = text.as_deref().filter(|_| Self::BACKEND == "postgres") {
                        return self.search_subscribers_text_pg(query, key).await;
                    }
                    // SQLite plans without statistics, so its join order is spelled out (CROSS
                    // JOIN) and each plan walks ids newest first, stopping at the page's end:
                    // through the trigram index for text of three characters or more, through
                    // the list's subscriptions for a list, else through the subscribers.
                    let sqlite = Self::BACKEND == "sqlite";
                    // The part of the text SQLite's trigram index looks up (three characters or more).
                    let piece = text.as_deref().filter(|k| sqlite && k.chars().count() >= 3).map(selective_part);
                    let (mut q, id_column) = match (piece, query.list_id) {
                        (Some(piece), _) if sqlite => {
                            let mut q = QueryBuilder::<$db>::new(format!(
                                "SELECT {SUBSCRIBER_COLUMNS} FROM subscribers_search f CROSS JOIN subscribers s ON s.id = f.rowid"
                            ));
                            if let Some(list_id) = query.list_id {
                                q.push(" CROSS JOIN subscriptions ss ON ss.subscriber_id = s.id AND ss.list_id = ").push_bind(list_id);
                            }
                            q.push(" WHERE subscribers_search MATCH ").push_bind(fts_trigrams(piece));
                            (q, "f.rowid")
                        }
                        (_, Some(list_id)) if sqlite => {
                            let mut q = QueryBuilder::<$db>::new(format!(
                                "SELECT {SUBSCRIBER_COLUMNS} FROM subscriptions ss CROSS JOIN subscribers s ON s.id = ss.subscriber_id"
                            ));
                            q.push(" WHERE ss.list_id = ").push_bind(list_id);
                            (q, "ss.subscriber_id")
                        }
                        _ => {
                            let mut q = QueryBuilder::<$db>::new(format!("SELECT {SUBSCRIBER_COLUMNS} FROM subscribers s"));
                            if let Some(list_id) = query.list_id {
                                q.push(" JOIN subscriptions ss ON ss.subscriber_id = s.id AND ss.list_id = ").push_bind(list_id);
                            }
                            q.push(" WHERE 1 = 1");
                            (q, "s.id")
                        }
                    };
                    if let Some(status) = query.status {
                        q.push(" AND s.status = ").push_bind(status.as_str());
                    }
                    if let Some(before) = query.before_id {
                        q.push(format!(" AND {id_column} < ")).push_bind(before);
                    }
                    // (Only SQLite gets here with text: PostgreSQL's text search is above.)
                    // Text under three characters is scanned, and the rows the trigram index
                    // found are checked for the text.
                    if let Some(key) = text.as_deref() {
                        push_contains(&mut q, key);
                    }
                    q.push(format!(" ORDER BY {id_column} DESC LIMIT ")).push_bind(query.limit);
                    let rows = q.build().fetch_all(&self.pool).await?;
                    rows.iter().map(subscriber_from_row).collect()
                }

                async fn export_subscribers(&self, list_id: Option<i64>, after_id: i64, limit: i64) -> Result<Vec<SubscriberDetail>, StoreError> {
                    let mut conn = self.pool.acquire().await?;
                    let mut q = QueryBuilder::<$db>::new(format!("SELECT {SUBSCRIBER_COLUMNS} FROM subscribers s"));
                    if let Some(list_id) = list_id {
                        q.push(" JOIN subscriptions ss ON ss.subscriber_id = s.id AND ss.list_id = ").push_bind(list_id);
                    }
                    q.push(" WHERE s.id > ").push_bind(after_id).push(" ORDER BY s.id LIMIT ").push_bind(limit);
                    let rows = q.build().fetch_all(&mut *conn).await?;
                    let subscribers = rows.iter().map(subscriber_from_row).collect::<Result<Vec<_>, _>>()?;
                    Self::details(&mut conn, subscribers).await
                }

                async fn create_subscriber(&self, new: &NewSubscriber, now: DateTime<Utc>) -> Result<i64, StoreError> {
                    let mut tx = self.begin_write().await?;
                    let inserted = sqlx::query_scalar(
                        "INSERT INTO subscribers (email, email_key, name, name_key, language, status, attributes, created_at, updated_at, confirmed_at) \
                         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $8, $9) RETURNING id",
                    )
                    .bind(new.email.as_str())
                    .bind(new.email.key())
                    .bind(&new.name)
                    .bind(name_key(&new.name))
                    .bind(new.language.code())
                    .bind(new.status.as_str())
                    .bind(Value::Object(new.attributes.clone()).to_string())
                    .bind(now)
                    .bind((new.status == SubscriberStatus::Active).then_some(now))
                    .fetch_one(&mut *tx)
                    .await;
                    let id: i64 = match inserted {
                        Ok(id) => id,
                        Err(e) if is_unique_violation(&e) => {
                            return Err(StoreError::Conflict("a subscriber with this email exists".into()));
                        }
                        Err(e) => return Err(e.into()),
                    };
                    let pairs: Vec<(i64, i64, &[String])> = new.list_ids.iter().map(|l| (id, *l, &[][..])).collect();
                    Self::add_subscriptions(&mut tx, &pairs, subscription_status_for(new.status), now).await?;
                    tx.commit().await?;
                    Ok(id)
                }

                async fn merge_subscribers(
                    &self,
                    rows: &[NewSubscriber],
                    subscription_status: SubscriptionStatus,
                    now: DateTime<Utc>,
                ) -> Result<Vec<Merged>, StoreError> {
                    let sqlite = Self::BACKEND == "sqlite";
                    // The rows go in as one JSON array, expanded by the database: one
                    // statement per chunk instead of one per 500 rows. On SQLite this is
                    // what keeps bulk imports fast: the trigram index flushes its pending
                    // terms into a new segment at every statement that writes it (and
                    // jsonb_each hands out each row as binary JSON, not text to parse again).
                    let json_rows = if sqlite { "jsonb_each($1)" } else { "json_array_elements($1::json) AS j(value)" };
                    // Which rows were new: on SQLite, under its single writer, ids above the
                    // largest one before; on PostgreSQL, the rows no transaction updated.
                    let created = if sqlite { "" } else { ", (xmax = 0) AS created" };
                    let upsert = format!(
                        "INSERT INTO subscribers (email, email_key, name, name_key, language, status, attributes, created_at, updated_at, confirmed_at) \
                         SELECT value ->> 'e', value ->> 'k', value ->> 'n', value ->> 'nk', value ->> 'l', value ->> 's', value ->> 'a', $2, $2, \
                         CASE WHEN value ->> 's' = 'active' THEN $2 END FROM {json_rows} WHERE true \
                         ON CONFLICT (email_key) DO UPDATE SET \
                         name = CASE WHEN subscribers.name = '' THEN excluded.name ELSE subscribers.name END, \
                         name_key = CASE WHEN subscribers.name = '' THEN excluded.name_key ELSE subscribers.name_key END, \
                         status = CASE WHEN subscribers.status = 'unconfirmed' AND excluded.status = 'active' THEN 'active' ELSE subscribers.status END, \
                         confirmed_at = CASE WHEN subscribers.status = 'unconfirmed' AND excluded.status = 'active' THEN excluded.confirmed_at ELSE subscribers.confirmed_at END, \
                         updated_at = excluded.updated_at \
                         RETURNING id, email_key, status{created}"
                    );
                    let subscribe = format!(
                        "INSERT INTO subscriptions (subscriber_id, list_id, status, categories, created_at, updated_at) \
                         SELECT CAST(value ->> 0 AS BIGINT), CAST(value ->> 1 AS BIGINT), $2, '[]', $3, $3 FROM {json_rows} WHERE true \
                         ON CONFLICT (subscriber_id, list_id) DO NOTHING"
                    );
                    let mut tx = self.begin_write().await?;
                    let mut merged = Vec::with_capacity(rows.len());
                    for chunk in rows.chunks(MERGE_BATCH) {
                        let largest: i64 = if sqlite {
                            sqlx::query_scalar("SELECT COALESCE(MAX(id), 0) FROM subscribers").fetch_one(&mut *tx).await?
                        } else {
                            0
                        };
                        let mut by_key: HashMap<String, (i64, SubscriberStatus, bool)> = HashMap::with_capacity(chunk.len());
                        // Streamed: the returned rows of a batch of tens of thousands are not
                        // all held at once.
                        let mut written = sqlx::query(sqlx::AssertSqlSafe(upsert.as_str()))
                            .bind(merge_rows_json(chunk)?)
                            .bind(now)
                            .fetch(&mut *tx);
                        while let Some(row) =
                            std::future::poll_fn(|cx| ::futures_core::Stream::poll_next(written.as_mut(), cx)).await.transpose()?
                        {
                            let id: i64 = row.try_get("id")?;
                            let created = if sqlite { id > largest } else { row.try_get("created")? };
                            by_key.insert(row.try_get("email_key")?, (id, parse_subscriber_status(row.try_get("status")?)?, created));
                        }
                        drop(written);
                        let mut pairs: Vec<(i64, i64)> = Vec::with_capacity(chunk.len());
                        for row in chunk {
                            let key = row.email.key();
                            let (id, status, created) = *by_key
                                .get(&key)
                                .ok_or_else(|| StoreError::Corrupt(format!("no id returned for {key}")))?;
                            pairs.extend(row.list_ids.iter().map(|l| (id, *l)));
                            let merge = if created { Merge::Created } else { Merge::Merged };
                            merged.push(Merged { id, merge, status });
                        }
                        if !pairs.is_empty() {
                            sqlx::query(sqlx::AssertSqlSafe(subscribe.as_str()))
                                .bind(serde_json::to_string(&pairs).map_err(|e| StoreError::Corrupt(e.to_string()))?)
                                .bind(subscription_status.as_str())
                                .bind(now)
                                .execute(&mut *tx)
                                .await?;
                        }
                    }
                    tx.commit().await?;
                    Ok(merged)
                }

                async fn update_subscriber(
                    &self,
                    id: i64,
                    name: &str,
                    language: Language,
                    status: SubscriberStatus,
                    attributes: &Map<String, Value>,
                    now: DateTime<Utc>,
                ) -> Result<bool, StoreError> {
                    let done = sqlx::query(
                        "UPDATE subscribers SET name = $2, name_key = $3, language = $4, status = $5, attributes = $6, updated_at = $7, \
                         confirmed_at = CASE WHEN $5 = 'active' AND confirmed_at IS NULL THEN $7 ELSE confirmed_at END WHERE id = $1",
                    )
                    .bind(id)
                    .bind(name)
                    .bind(name_key(name))
                    .bind(language.code())
                    .bind(status.as_str())
                    .bind(Value::Object(attributes.clone()).to_string())
                    .bind(now)
                    .execute(self.writer())
                    .await?;
                    Ok(done.rows_affected() > 0)
                }

                async fn set_subscriptions(
                    &self,
                    id: i64,
                    choices: &[ListChoice],
                    status: SubscriptionStatus,
                    now: DateTime<Utc>,
                ) -> Result<(), StoreError> {
                    let mut tx = self.begin_write().await?;
                    let pairs: Vec<(i64, i64, &[String])> = choices.iter().map(|c| (id, c.list_id, &c.categories[..])).collect();
                    Self::add_subscriptions(&mut tx, &pairs, status, now).await?;
                    let mut q = QueryBuilder::<$db>::new("UPDATE subscriptions SET status = 'unsubscribed', updated_at = ");
                    q.push_bind(now).push(" WHERE subscriber_id = ").push_bind(id).push(" AND status <> 'unsubscribed'");
                    if !choices.is_empty() {
                        q.push(" AND list_id NOT IN (");
                        let mut sep = q.separated(", ");
                        for c in choices {
                            sep.push_bind(c.list_id);
                        }
                        q.push(")");
                    }
                    q.build().execute(&mut *tx).await?;
                    tx.commit().await?;
                    Ok(())
                }

                async fn delete_subscriber(&self, id: i64) -> Result<bool, StoreError> {
                    let mut tx = self.begin_write().await?;
                    sqlx::query("DELETE FROM subscriptions WHERE subscriber_id = $1").bind(id).execute(&mut *tx).await?;
                    let done = sqlx::query("DELETE FROM subscribers WHERE id = $1").bind(id).execute(&mut *tx).await?;
                    tx.commit().await?;
                    Ok(done.rows_affected() > 0)
                }

                async fn subscribe(
                    &self,
                    email: &EmailAddress,
                    name: &str,
                    language: Language,
                    choices: &[ListChoice],
                    confirm_interval: chrono::Duration,
                    now: DateTime<Utc>,
                ) -> Result<SubscribeOutcome, StoreError> {
                    let mut tx = self.begin_write().await?;
                    let existing = sqlx::query("SELECT id, status, confirmation_sent_at FROM subscribers WHERE email_key = $1")
                        .bind(email.key())
                        .fetch_optional(&mut *tx)
                        .await?;
                    let double_opt_in: Vec<(i64, bool)> = {
                        let mut q = QueryBuilder::<$db>::new("SELECT id, double_opt_in FROM lists WHERE id IN (");
                        let mut sep = q.separated(", ");
                        for c in choices {
                            sep.push_bind(c.list_id);
                        }
                        q.push(")");
                        if choices.is_empty() {
                            Vec::new()
                        } else {
                            q.build().fetch_all(&mut *tx).await?.iter().map(|r| Ok((r.try_get(0)?, r.try_get(1)?))).collect::<Result<_, StoreError>>()?
                        }
                    };
                    let needs_confirmation = double_opt_in.iter().any(|(_, d)| *d);
                    let (id, status, last_sent): (i64, SubscriberStatus, Option<DateTime<Utc>>) = match existing {
                        Some(row) => {
                            let status = parse_subscriber_status(row.try_get("status")?)?;
                            if status.is_barred() {
                                return Ok(SubscribeOutcome::Barred);
                            }
                            (row.try_get("id")?, status, row.try_get("confirmation_sent_at")?)
                        }
                        None => {
                            let status = if needs_confirmation { SubscriberStatus::Unconfirmed } else { SubscriberStatus::Active };
                            let id = sqlx::query_scalar(
                                "INSERT INTO subscribers (email, email_key, name, name_key, language, status, created_at, updated_at, confirmed_at) \
                                 VALUES ($1, $2, $3, $4, $5, $6, $7, $7, $8) RETURNING id",
                            )
                            .bind(email.as_str())
                            .bind(email.key())
                            .bind(name)
                            .bind(name_key(name))
                            .bind(language.code())
                            .bind(status.as_str())
                            .bind(now)
                            .bind((status == SubscriberStatus::Active).then_some(now))
                            .fetch_one(&mut *tx)
                            .await?;
                            (id, status, None)
                        }
                    };
                    // A known subscriber who left comes back only through confirmation
                    // when any chosen list asks for it.
                    if status == SubscriberStatus::Unsubscribed {
                        let back = if needs_confirmation { SubscriberStatus::Unconfirmed } else { SubscriberStatus::Active };
                        sqlx::query("UPDATE subscribers SET status = $2, updated_at = $3 WHERE id = $1")
                            .bind(id)
                            .bind(back.as_str())
                            .bind(now)
                            .execute(&mut *tx)
                            .await?;
                    }
                    let mut confirm = false;
                    for choice in choices {
                        let Some((_, double)) = double_opt_in.iter().find(|(l, _)| *l == choice.list_id) else { continue };
                        let wanted = if *double { SubscriptionStatus::Unconfirmed } else { SubscriptionStatus::Active };
                        // An active subscription is left as it is: a form cannot change
                        // someone's choices without their inbox.
                        let changed = sqlx::query(
                            "INSERT INTO subscriptions (subscriber_id, list_id, status, categories, created_at, updated_at) \
                             VALUES ($1, $2, $3, $4, $5, $5) ON CONFLICT (subscriber_id, list_id) DO UPDATE SET \
                             status = excluded.status, categories = excluded.categories, updated_at = excluded.updated_at \
                             WHERE subscriptions.status <> 'active'",
                        )
                        .bind(id)
                        .bind(choice.list_id)
                        .bind(wanted.as_str())
                        .bind(string_list(&choice.categories))
                        .bind(now)
                        .execute(&mut *tx)
                        .await?;
                        confirm |= *double && changed.rows_affected() > 0;
                    }
                    // The send is claimed here, in the transaction: of two forms posted at
                    // once only one sees the old time, so one confirmation goes out.
                    let recently = last_sent.is_some_and(|at| now - at < confirm_interval);
                    if confirm && !recently {
                        let claimed = sqlx::query(
                            "UPDATE subscribers SET confirmation_sent_at = $2 WHERE id = $1 \
                             AND (confirmation_sent_at IS NULL OR confirmation_sent_at <= $3)",
                        )
                        .bind(id)
                        .bind(now)
                        .bind(now - confirm_interval)
                        .execute(&mut *tx)
                        .await?;
                        confirm = claimed.rows_affected() > 0;
                    }
                    tx.commit().await?;
                    Ok(SubscribeOutcome::Recorded { subscriber_id: id, confirm: confirm && !recently })
                }

                async fn confirmation_sent(&self, subscriber_id: i64, now: DateTime<Utc>) -> Result<(), StoreError> {
                    sqlx::query("UPDATE subscribers SET confirmation_sent_at = $2 WHERE id = $1")
                        .bind(subscriber_id)
                        .bind(now)
                        .execute(self.writer())
                        .await?;
                    Ok(())
                }

                async fn confirm_subscriber(&self, subscriber_id: i64, now: DateTime<Utc>) -> Result<bool, StoreError> {
                    let mut tx = self.begin_write().await?;
                    let done = sqlx::query(
                        "UPDATE subscribers SET status = 'active', confirmed_at = COALESCE(confirmed_at, $2), updated_at = $2 \
                         WHERE id = $1 AND status NOT IN ('bounced', 'blocklisted')",
                    )
                    .bind(subscriber_id)
                    .bind(now)
                    .execute(&mut *tx)
                    .await?;
                    if done.rows_affected() == 0 {
                        return Ok(false);
                    }
                    sqlx::query("UPDATE subscriptions SET status = 'active', updated_at = $2 WHERE subscriber_id = $1 AND status = 'unconfirmed'")
                        .bind(subscriber_id)
                        .bind(now)
                        .execute(&mut *tx)
                        .await?;
                    tx.commit().await?;
                    Ok(true)
                }

                async fn save_preferences(
                    &self,
                    subscriber_id: i64,
                    choices: &[ListChoice],
                    language: Language,
                    now: DateTime<Utc>,
                ) -> Result<bool, StoreError> {
                    let mut tx = self.begin_write().await?;
                    let Some(status): Option<String> = sqlx::query_scalar("SELECT status FROM subscribers WHERE id = $1")
                        .bind(subscriber_id)
                        .fetch_optional(&mut *tx)
                        .await?
                    else {
                        return Ok(false);
                    };
                    let status = parse_subscriber_status(&status)?;
                    // The link came from their inbox, which confirms the address.
                    let new_status = match (status, choices.is_empty()) {
                        (s, _) if s.is_barred() => s,
                        (_, true) => SubscriberStatus::Unsubscribed,
                        (_, false) => SubscriberStatus::Active,
                    };
                    sqlx::query(
                        "UPDATE subscribers SET status = $2, language = $3, updated_at = $4, \
                         confirmed_at = CASE WHEN $2 = 'active' THEN COALESCE(confirmed_at, $4) ELSE confirmed_at END WHERE id = $1",
                    )
                    .bind(subscriber_id)
                    .bind(new_status.as_str())
                    .bind(language.code())
                    .bind(now)
                    .execute(&mut *tx)
                    .await?;
                    for choice in choices {
                        sqlx::query(
                            "INSERT INTO subscriptions (subscriber_id, list_id, status, categories, created_at, updated_at) \
                             VALUES ($1, $2, 'active', $3, $4, $4) ON CONFLICT (subscriber_id, list_id) DO UPDATE SET \
                             status = 'active', categories = excluded.categories, updated_at = excluded.updated_at",
                        )
                        .bind(subscriber_id)
                        .bind(choice.list_id)
                        .bind(string_list(&choice.categories))
                        .bind(now)
                        .execute(&mut *tx)
                        .await?;
                    }
                    let mut q = QueryBuilder::<$db>::new("UPDATE subscriptions SET status = 'unsubscribed', updated_at = ");
                    q.push_bind(now).push(" WHERE subscriber_id = ").push_bind(subscriber_id).push(" AND status <> 'unsubscribed'");
                    if !choices.is_empty() {
                        q.push(" AND list_id NOT IN (");
                        let mut sep = q.separated(", ");
                        for c in choices {
                            sep.push_bind(c.list_id);
                        }
                        q.push(")");
                    }
                    q.build().execute(&mut *tx).await?;
                    tx.commit().await?;
                    Ok(true)
                }

                async fn unsubscribe(&self, subscriber_id: i64, list_id: Option<i64>, now: DateTime<Utc>) -> Result<bool, StoreError> {
                    let mut tx = self.begin_write().await?;
                    let exists: Option<i64> = sqlx::query_scalar("SELECT id FROM subscribers WHERE id = $1")
                        .bind(subscriber_id)
                        .fetch_optional(&mut *tx)
                        .await?;
                    if exists.is_none() {
                        return Ok(false);
                    }
                    let mut q = QueryBuilder::<$db>::new("UPDATE subscriptions SET status = 'unsubscribed', updated_at = ");
                    q.push_bind(now).push(" WHERE subscriber_id = ").push_bind(subscriber_id);
                    if let Some(list_id) = list_id {
                        q.push(" AND list_id = ").push_bind(list_id);
                    }
                    q.build().execute(&mut *tx).await?;
                    // Nothing left to receive (or asked to leave everything): unsubscribed.
                    sqlx::query(
                        "UPDATE subscribers SET status = 'unsubscribed', updated_at = $2 WHERE id = $1 \
                         AND status IN ('unconfirmed', 'active') AND ($3 OR NOT EXISTS \
                         (SELECT 1 FROM subscriptions WHERE subscriber_id = $1 AND status <> 'unsubscribed'))",
                    )
                    .bind(subscriber_id)
                    .bind(now)
                    .bind(list_id.is_none())
                    .execute(&mut *tx)
                    .await?;
                    tx.commit().await?;
                    Ok(true)
                }

                async fn subscriber_counts(&self) -> Result<Vec<StatusCount>, StoreError> {
                    let rows = sqlx::query("SELECT status, COUNT(*) AS n FROM subscribers GROUP BY status ORDER BY status")
                        .fetch_all(&self.pool)
                        .await?;
                    rows.iter().map(|r| Ok(StatusCount { status: r.try_get("status")?, count: r.try_get("n")? })).collect()
                }

                async fn list_counts(&self) -> Result<Vec<ListCounts>, StoreError> {
                    let rows = sqlx::query(
                        "SELECT l.slug, l.name, \
                         COALESCE(SUM(CASE WHEN ss.status = 'active' THEN 1 ELSE 0 END), 0) AS active, \
                         COALESCE(SUM(CASE WHEN ss.status = 'unconfirmed' THEN 1 ELSE 0 END), 0) AS unconfirmed, \
                         COALESCE(SUM(CASE WHEN ss.status = 'unsubscribed' THEN 1 ELSE 0 END), 0) AS unsubscribed \
                         FROM lists l LEFT JOIN subscriptions ss ON ss.list_id = l.id GROUP BY l.id, l.slug, l.name ORDER BY l.name",
                    )
                    .fetch_all(&self.pool)
                    .await?;
                    rows.iter()
                        .map(|r| {
                            Ok(ListCounts {
                                slug: r.try_get("slug")?,
                                name: r.try_get("name")?,
                                active: r.try_get("active")?,
                                unconfirmed: r.try_get("unconfirmed")?,
                                unsubscribed: r.try_get("unsubscribed")?,
                            })
                        })
                        .collect()
                }

                async fn subscribers_created_between(&self, from: DateTime<Utc>, to: DateTime<Utc>) -> Result<i64, StoreError> {
                    Ok(sqlx::query_scalar("SELECT COUNT(*) FROM subscribers WHERE created_at >= $1 AND created_at < $2")
                        .bind(from)
                        .bind(to)
                        .fetch_one(&self.pool)
                        .await?)
                }

                async fn create_admin(&self, username: &str, password_hash: &str, now: DateTime<Utc>) -> Result<i64, StoreError> {
                    let result = sqlx::query_scalar("INSERT INTO admins (username, password_hash, created_at) VALUES ($1, $2, $3) RETURNING id")
                        .bind(username)
                        .bind(password_hash)
                        .bind(now)
                        .fetch_one(self.writer())
                        .await;
                    match result {
                        Ok(id) => Ok(id),
                        Err(e) if is_unique_violation(&e) => Err(StoreError::Conflict(format!("the admin {username} exists"))),
                        Err(e) => Err(e.into()),
                    }
                }

                async fn admin(&self, username: &str) -> Result<Option<AdminAccount>, StoreError> {
                    let row = sqlx::query("SELECT id, username, password_hash FROM admins WHERE username = $1")
                        .bind(username)
                        .fetch_optional(&self.pool)
                        .await?;
                    row.map(|r| {
                        Ok(AdminAccount { id: r.try_get("id")?, username: r.try_get("username")?, password_hash: r.try_get("password_hash")? })
                    })
                    .transpose()
                }

                async fn create_session(
                    &self,
                    id_hash: &str,
                    admin_id: i64,
                    csrf_token: &str,
                    now: DateTime<Utc>,
                    expires_at: DateTime<Utc>,
                ) -> Result<(), StoreError> {
                    let mut tx = self.begin_write().await?;
                    sqlx::query("DELETE FROM admin_sessions WHERE expires_at < $1").bind(now).execute(&mut *tx).await?;
                    sqlx::query("INSERT INTO admin_sessions (id_hash, admin_id, csrf_token, created_at, expires_at) VALUES ($1, $2, $3, $4, $5)")
                        .bind(id_hash)
                        .bind(admin_id)
                        .bind(csrf_token)
                        .bind(now)
                        .bind(expires_at)
                        .execute(&mut *tx)
                        .await?;
                    tx.commit().await?;
                    Ok(())
                }

                async fn session(&self, id_hash: &str, now: DateTime<Utc>) -> Result<Option<AdminSession>, StoreError> {
                    let row = sqlx::query(
                        "SELECT s.admin_id, a.username, s.csrf_token, s.expires_at FROM admin_sessions s \
                         JOIN admins a ON a.id = s.admin_id WHERE s.id_hash = $1 AND s.expires_at > $2",
                    )
                    .bind(id_hash)
                    .bind(now)
                    .fetch_optional(&self.pool)
                    .await?;
                    row.map(|r| {
                        Ok(AdminSession {
                            admin_id: r.try_get("admin_id")?,
                            username: r.try_get("username")?,
                            csrf_token: r.try_get("csrf_token")?,
                            expires_at: r.try_get("expires_at")?,
                        })
                    })
                    .transpose()
                }

                async fn delete_session(&self, id_hash: &str) -> Result<(), StoreError> {
                    sqlx::query("DELETE FROM admin_sessions WHERE id_hash = $1").bind(id_hash).execute(self.writer()).await?;
                    Ok(())
                }

                async fn api_tokens(&self) -> Result<Vec<ApiTokenInfo>, StoreError> {
                    let rows = sqlx::query("SELECT id, name, public_id, created_at, revoked_at FROM api_tokens ORDER BY id DESC")
                        .fetch_all(&self.pool)
                        .await?;
                    rows.iter()
                        .map(|r| {
                            Ok(ApiTokenInfo {
                                id: r.try_get("id")?,
                                name: r.try_get("name")?,
                                public_id: r.try_get("public_id")?,
                                created_at: r.try_get("created_at")?,
                                revoked_at: r.try_get("revoked_at")?,
                            })
                        })
                        .collect()
                }

                async fn revoke_api_token(&self, id: i64, now: DateTime<Utc>) -> Result<bool, StoreError> {
                    let done = sqlx::query("UPDATE api_tokens SET revoked_at = $2 WHERE id = $1 AND revoked_at IS NULL")
                        .bind(id)
                        .bind(now)
                        .execute(self.writer())
                        .await?;
                    Ok(done.rows_affected() > 0)
                }

                async fn record_audit(&self, actor: &str, action: &str, subject: &str, detail: &Value, now: DateTime<Utc>) -> Result<(), StoreError> {
                    sqlx::query("INSERT INTO audit_log (occurred_at, actor, action, subject, detail) VALUES ($1, $2, $3, $4, $5)")
                        .bind(now)
                        .bind(actor)
                        .bind(action)
                        .bind(subject)
                        .bind(detail.to_string())
                        .execute(self.writer())
                        .await?;
                    Ok(())
                }

                async fn audit_log(&self, before_id: Option<i64>, limit: i64) -> Result<Vec<AuditEntry>, StoreError> {
                    let rows = sqlx::query(
                        "SELECT id, occurred_at, actor, action, subject, detail FROM audit_log WHERE id < $1 ORDER BY id DESC LIMIT $2",
                    )
                    .bind(before_id.unwrap_or(i64::MAX))
                    .bind(limit)
                    .fetch_all(&self.pool)
                    .await?;
                    rows.iter()
                        .map(|r| {
                            let detail: String = r.try_get("detail")?;
                            Ok(AuditEntry {
                                id: r.try_get("id")?,
                                occurred_at: r.try_get("occurred_at")?,
                                actor: r.try_get("actor")?,
                                action: r.try_get("action")?,
                                subject: r.try_get("subject")?,
                                detail: serde_json::from_str(&detail).unwrap_or(Value::Null),
                            })
                        })
                        .collect()
                }
            }
        };
    };
}

pub(super) use audience_store_impl;

/// The column a single-subscriber lookup matches on.
pub(super) enum SubscriberKey {
    Id(i64),
    Email(String),
}

impl From<i64> for SubscriberKey {
    fn from(id: i64) -> SubscriberKey {
        SubscriberKey::Id(id)
    }
}

impl From<String> for SubscriberKey {
    fn from(key: String) -> SubscriberKey {
        SubscriberKey::Email(key)
    }
}

#[cfg(test)]
mod tests {
    use super::{fts_trigrams, selective_part};

    #[test]
    fn the_index_is_asked_for_each_distinct_trigram_quoted() {
        assert_eq!(fts_trigrams("tuan"), r#""tua" AND "uan""#);
        assert_eq!(fts_trigrams("aaaa"), r#""aaa""#);
        assert_eq!(fts_trigrams("a\"b\"c"), r#""a""b" AND """b""" AND "b""c""#);
        assert_eq!(fts_trigrams("thị"), r#""thị""#);
    }

    #[test]
    fn the_index_looks_up_a_selective_piece_of_the_text() {
        assert_eq!(selective_part("uyen3592341@gmail.com"), "uyen3592341");
        assert_eq!(selective_part("tuan.lam@gmail.com"), "tuan.lam");
        assert_eq!(selective_part("ab@gmail.com"), "gmail.com");
        assert_eq!(selective_part("@gmail.com"), "gmail.com");
        assert_eq!(selective_part("nongsan17.com.vn"), "nongsan17");
        assert_eq!(selective_part("tuan.lam"), "tuan.lam");
        assert_eq!(selective_part("nguyễn thị"), "nguyễn thị");
        assert_eq!(selective_part("a@b"), "a@b");
    }
}
