//! One storage test suite, run against SQLite and against PostgreSQL.

mod common;

use std::sync::Arc;

use bantin::domain::{ArticleInput, ArticleStatus};
use bantin::store::{Change, EventKind, PreparedArticle, Retraction, Store};
use chrono::{DateTime, Duration, Utc};
use serde_json::{Value, json};

const TZ: chrono_tz::Tz = chrono_tz::Asia::Ho_Chi_Minh;

fn prepared(v: Value) -> PreparedArticle {
    let input = ArticleInput::from_json(&v, TZ).expect("valid test article");
    let content_hash = input.content_hash();
    let url = input.url.as_ref().map_or_else(|| format!("https://x.example/{}", input.source_id), |u| u.to_string());
    PreparedArticle { input, url, content_hash }
}

async fn upsert(store: &Arc<dyn Store>, v: Value, now: DateTime<Utc>) -> bantin::store::Upserted {
    store.upsert_articles(&[prepared(v)], now).await.unwrap().remove(0).unwrap()
}

async fn store_for(backend: common::Backend) -> Option<(common::TestDatabase, Arc<dyn Store>)> {
    let db = common::TestDatabase::new(backend).await?;
    let store = db.store().await;
    Some((db, store))
}

both_backends!(new_unchanged_updated_with_events, |backend| async move {
    let Some((_db, store)) = store_for(backend).await else {
        return;
    };
    let now = Utc::now();
    let article = json!({"id": "a1", "title": "Lúa mùa bội thu", "category": ["Tin Tức", "Kinh tế"],
        "author": "Phương Nhung", "content_html": "<p>Nông dân phấn khởi.</p>", "published_at": "2026-11-25T08:00:00+07:00"});
    let first = upsert(&store, article.clone(), now).await;
    assert_eq!(
        (first.change, first.status, first.event),
        (Change::New, ArticleStatus::Published, Some(EventKind::Published))
    );
    let again = upsert(&store, article.clone(), now).await;
    assert_eq!((again.change, again.event), (Change::Unchanged, None));
    let mut changed = article.clone();
    changed["content_html"] = json!("<p>Nông dân rất phấn khởi.</p>");
    let updated = upsert(&store, changed, now).await;
    assert_eq!((updated.change, updated.event), (Change::Updated, Some(EventKind::Updated)));

    let events = store.events_after(0, 100).await.unwrap();
    let kinds: Vec<EventKind> = events.iter().map(|e| e.kind).collect();
    assert_eq!(kinds, vec![EventKind::Published, EventKind::Updated]);
    let stored = store.article("a1").await.unwrap().unwrap();
    assert_eq!(stored.content_html, "<p>Nông dân rất phấn khởi.</p>");
    assert_eq!(stored.category.as_ref().unwrap().path, "tin-tuc/kinh-te");
    assert_eq!(stored.category.as_ref().unwrap().names, vec!["Tin Tức", "Kinh tế"]);
    assert_eq!(stored.author.as_ref().unwrap().slug, "phuong-nhung");
    assert_eq!(events[0].category_id, Some(stored.category.unwrap().id));
    assert_eq!(stored.published_at.to_rfc3339(), "2026-11-25T01:00:00+00:00");
});

both_backends!(categories_form_a_tree_with_unique_sibling_slugs, |backend| async move {
    let Some((_db, store)) = store_for(backend).await else {
        return;
    };
    let now = Utc::now();
    upsert(&store, json!({"id": "a", "title": "Một", "category": ["Tin Tức", "Kinh tế"]}), now).await;
    // Same slugs, other spelling and decomposed Unicode: the same categories.
    upsert(&store, json!({"id": "b", "title": "Hai", "category": ["Tin tức", "Kinh te\u{302}\u{301}"]}), now).await;
    upsert(&store, json!({"id": "c", "title": "Ba", "category": ["Đời sống", "Kinh tế"]}), now).await;
    let a = store.article("a").await.unwrap().unwrap().category.unwrap();
    let b = store.article("b").await.unwrap().unwrap().category.unwrap();
    let c = store.article("c").await.unwrap().unwrap().category.unwrap();
    assert_eq!(a.id, b.id);
    assert_ne!(a.id, c.id, "same name under another parent is another category");
    assert_eq!(c.path, "doi-song/kinh-te");
});

both_backends!(moving_an_article_records_the_previous_category, |backend| async move {
    let Some((_db, store)) = store_for(backend).await else {
        return;
    };
    let now = Utc::now();
    upsert(&store, json!({"id": "m", "title": "Chuyển mục", "category": ["Tin Tức", "Kinh tế"]}), now).await;
    let before = store.article("m").await.unwrap().unwrap().category.unwrap().id;
    upsert(&store, json!({"id": "m", "title": "Chuyển mục", "category": ["Đời sống", "Y tế"]}), now).await;
    let after = store.article("m").await.unwrap().unwrap().category.unwrap().id;
    let last = store.events_after(0, 10).await.unwrap().pop().unwrap();
    assert_eq!(last.kind, EventKind::Updated);
    assert_eq!((last.category_id, last.previous_category_id), (Some(after), Some(before)));
});

both_backends!(retraction_and_reposting, |backend| async move {
    let Some((_db, store)) = store_for(backend).await else {
        return;
    };
    let now = Utc::now();
    let article = json!({"id": "r", "title": "Tin cải chính"});
    upsert(&store, article.clone(), now).await;
    assert_eq!(store.retract_article("r", now).await.unwrap(), Retraction::Retracted { event: true });
    assert_eq!(store.retract_article("r", now).await.unwrap(), Retraction::AlreadyRetracted);
    assert_eq!(store.retract_article("nope", now).await.unwrap(), Retraction::NotFound);
    assert_eq!(store.article("r").await.unwrap().unwrap().status, ArticleStatus::Retracted);
    let reposted = upsert(&store, article, now).await;
    assert_eq!(
        (reposted.change, reposted.status, reposted.event),
        (Change::Updated, ArticleStatus::Published, Some(EventKind::Published))
    );
    let kinds: Vec<EventKind> = store.events_after(0, 10).await.unwrap().iter().map(|e| e.kind).collect();
    assert_eq!(kinds, vec![EventKind::Published, EventKind::Retracted, EventKind::Published]);
});

both_backends!(scheduled_articles_publish_once_when_due, |backend| async move {
    let Some((_db, store)) = store_for(backend).await else {
        return;
    };
    let now = Utc::now();
    let due = now + Duration::minutes(5);
    let stamp = due.with_timezone(&TZ).to_rfc3339();
    let s = upsert(&store, json!({"id": "s", "title": "Bản tin sáng", "published_at": stamp}), now).await;
    assert_eq!((s.status, s.event), (ArticleStatus::Scheduled, None));
    assert_eq!(store.next_scheduled_at().await.unwrap(), DateTime::from_timestamp_micros(due.timestamp_micros()));
    assert_eq!(store.publish_due(now).await.unwrap(), 0);
    assert!(store.events_after(0, 10).await.unwrap().is_empty());
    // Two publishers racing (two instances) publish it exactly once.
    let later = due + Duration::seconds(1);
    let (x, y) = tokio::join!(store.publish_due(later), store.publish_due(later));
    assert_eq!(x.unwrap() + y.unwrap(), 1);
    let events = store.events_after(0, 10).await.unwrap();
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].kind, EventKind::Published);
    assert_eq!(store.article("s").await.unwrap().unwrap().status, ArticleStatus::Published);
    assert_eq!(store.next_scheduled_at().await.unwrap(), None);
});

both_backends!(a_published_article_moved_to_the_future_is_withdrawn_until_then, |backend| async move {
    let Some((_db, store)) = store_for(backend).await else {
        return;
    };
    let now = Utc::now();
    upsert(&store, json!({"id": "f", "title": "Sớm quá"}), now).await;
    let future = (now + Duration::hours(1)).to_rfc3339();
    let moved = upsert(&store, json!({"id": "f", "title": "Sớm quá", "published_at": future}), now).await;
    assert_eq!((moved.status, moved.event), (ArticleStatus::Scheduled, Some(EventKind::Retracted)));
});

both_backends!(a_batch_is_written_together_and_reports_each_item, |backend| async move {
    let Some((_db, store)) = store_for(backend).await else {
        return;
    };
    let now = Utc::now();
    let items: Vec<PreparedArticle> = (0..250)
        .map(|i| {
            prepared(json!({"id": format!("b{i}"), "title": format!("Bài số {i}"), "category": ["Thể thao", "Bóng đá"],
            "author": format!("Tác giả {}", i % 7), "tags": ["bóng đá"]}))
        })
        .collect();
    let results = store.upsert_articles(&items, now).await.unwrap();
    assert_eq!(results.len(), 250);
    assert!(results.iter().all(|r| r.as_ref().unwrap().change == Change::New));
    assert_eq!(store.events_after(0, 1000).await.unwrap().len(), 250);
    assert_eq!(store.events_after(200, 10).await.unwrap().len(), 10);
    let again = store.upsert_articles(&items, now).await.unwrap();
    assert!(again.iter().all(|r| r.as_ref().unwrap().change == Change::Unchanged));
});

both_backends!(a_batch_mixing_new_stored_and_repeated_ids_is_written_in_order, |backend| async move {
    let Some((_db, store)) = store_for(backend).await else {
        return;
    };
    let now = Utc::now();
    let article = |id: &str, title: &str| json!({"id": id, "title": title, "category": ["Tin Tức", "Kinh tế"]});
    upsert(&store, article("cu-1", "Bài cũ"), now).await;
    upsert(&store, article("cu-2", "Bài cũ hai"), now).await;
    let batch: Vec<PreparedArticle> = [
        article("cu-1", "Bài cũ, sửa lại"),
        article("moi-1", "Bài mới"),
        article("moi-1", "Bài mới, bản sau"),
        article("cu-2", "Bài cũ hai"),
        article("moi-2", "Bài mới hai"),
        article("moi-2", "Bài mới hai"),
    ]
    .into_iter()
    .map(prepared)
    .collect();
    let results = store.upsert_articles(&batch, now).await.unwrap();
    let outcomes: Vec<(Change, Option<EventKind>)> =
        results.into_iter().map(|r| r.map(|u| (u.change, u.event)).unwrap()).collect();
    assert_eq!(
        outcomes,
        vec![
            (Change::Updated, Some(EventKind::Updated)),
            (Change::New, Some(EventKind::Published)),
            (Change::Updated, Some(EventKind::Updated)),
            (Change::Unchanged, None),
            (Change::New, Some(EventKind::Published)),
            (Change::Unchanged, None),
        ]
    );
    assert_eq!(store.article("cu-1").await.unwrap().unwrap().title, "Bài cũ, sửa lại");
    assert_eq!(store.article("moi-1").await.unwrap().unwrap().title, "Bài mới, bản sau");
    // Two events before the batch, four from it: each article's in the order of its items.
    let events = store.events_after(0, 100).await.unwrap();
    assert_eq!(events.len(), 6);
    let moi_1 = store.article("moi-1").await.unwrap().unwrap().id;
    let kinds: Vec<EventKind> = events.iter().filter(|e| e.article_id == moi_1).map(|e| e.kind).collect();
    assert_eq!(kinds, vec![EventKind::Published, EventKind::Updated]);
    let page = store.feed_page("category:tin-tuc/kinh-te", 10, None).await.unwrap();
    assert_eq!(page.len(), 4, "each article once in its category's feed");
});

both_backends!(concurrent_writers_of_one_new_id_make_one_article, |backend| async move {
    let Some((_db, store)) = store_for(backend).await else {
        return;
    };
    let now = Utc::now();
    let v = json!({"id": "race", "title": "Cùng lúc", "category": ["Tin Tức", "Xã hội"], "author": "Đỗ Thu Hà"});
    let (s1, s2) = (store.clone(), store.clone());
    let (v1, v2) = (v.clone(), v.clone());
    let (a, b) = tokio::join!(
        tokio::spawn(async move { s1.upsert_articles(&[prepared(v1)], now).await }),
        tokio::spawn(async move { s2.upsert_articles(&[prepared(v2)], now).await })
    );
    let mut changes =
        vec![a.unwrap().unwrap().remove(0).unwrap().change, b.unwrap().unwrap().remove(0).unwrap().change];
    changes.sort_by_key(|c| c.as_str());
    assert_eq!(changes, vec![Change::New, Change::Unchanged]);
    assert_eq!(store.events_after(0, 10).await.unwrap().len(), 1);
});

both_backends!(api_tokens_are_found_by_public_id_unless_revoked, |backend| async move {
    let Some((_db, store)) = store_for(backend).await else {
        return;
    };
    let token = bantin::domain::token::NewToken::generate().unwrap();
    store.create_api_token("cms", &token.public_id, &token.secret_hash, Utc::now()).await.unwrap();
    let (_, hash) = store.api_token_hash(&token.public_id).await.unwrap().unwrap();
    assert_eq!(hash, token.secret_hash);
    assert!(store.api_token_hash("000000000000").await.unwrap().is_none());
});

both_backends!(migrations_are_idempotent, |backend| async move {
    let Some((db, store)) = store_for(backend).await else {
        return;
    };
    store.migrate().await.unwrap();
    let again = db.store().await;
    again.ping().await.unwrap();
});
