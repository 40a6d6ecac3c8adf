//! Digest runs and deliveries in the store, on SQLite and PostgreSQL: one run per list and
//! time, leases, cursors that move only with a sent delivery, and what a digest holds.

mod common;

use std::sync::Arc;

use bantin::config::Language;
use bantin::domain::ArticleInput;
use bantin::domain::audience::{ListDefaults, ListInput, SubscriberStatus, SubscriptionStatus};
use bantin::domain::email::EmailAddress;
use bantin::store::audience::NewSubscriber;
use bantin::store::digests::RunStatus;
use bantin::store::{PreparedArticle, Store};
use chrono::{DateTime, Duration, DurationRound, Utc};
use serde_json::{Map, Value, json};

const TZ: chrono_tz::Tz = chrono_tz::Asia::Ho_Chi_Minh;

fn article(id: &str, category: &[&str], now: DateTime<Utc>) -> PreparedArticle {
    let value: Value = json!({"id": id, "title": format!("Bài {id}"), "category": category,
        "content_html": "<p>Nội dung</p>", "published_at": now.to_rfc3339()});
    let input = ArticleInput::from_json(&value, TZ).unwrap();
    let content_hash = input.content_hash();
    PreparedArticle { input, url: format!("https://x.example/{id}"), content_hash }
}

async fn publish(store: &Arc<dyn Store>, items: Vec<PreparedArticle>, now: DateTime<Utc>) {
    for result in store.upsert_articles(&items, now).await.unwrap() {
        result.unwrap();
    }
}

async fn setup(backend: common::Backend) -> Option<(common::TestDatabase, Arc<dyn Store>, i64, Vec<i64>)> {
    let db = common::TestDatabase::new(backend).await?;
    let store = db.store().await;
    let defaults = ListDefaults {
        timezone: TZ,
        language: Language::Vi,
        from_name: "Tin".into(),
        from_address: "bantin@hiephoa.example".into(),
    };
    let input = ListInput::from_json(&json!({"name": "Sáng", "categories": ["tin-tuc"]}), &defaults).unwrap();
    let t0 = Utc::now() - Duration::hours(2);
    let list = store.create_list(&input, t0).await.unwrap();
    let rows: Vec<NewSubscriber> = ["an@x.vn", "binh@x.vn", "chi@x.vn"]
        .iter()
        .map(|address| NewSubscriber {
            email: EmailAddress::parse(address).unwrap(),
            name: String::new(),
            language: Language::Vi,
            status: SubscriberStatus::Active,
            attributes: Map::new(),
            list_ids: vec![list.id],
        })
        .collect();
    let ids =
        store.merge_subscribers(&rows, SubscriptionStatus::Active, t0).await.unwrap().iter().map(|m| m.id).collect();
    Some((db, store, list.id, ids))
}

both_backends!(a_run_is_made_once_and_queues_each_active_subscriber_once, |backend| async move {
    let Some((_db, store, list, subscribers)) = setup(backend).await else {
        return;
    };
    let now = Utc::now().duration_trunc(Duration::seconds(1)).unwrap();
    store
        .update_subscriber(subscribers[2], "", Language::Vi, SubscriberStatus::Bounced, &Map::new(), now)
        .await
        .unwrap();
    let run = store.create_run(list, now, now, RunStatus::Pending, now).await.unwrap().expect("created");
    assert_eq!(
        store.create_run(list, now, now, RunStatus::Pending, now).await.unwrap(),
        None,
        "unique per list and time"
    );
    assert!(store.run_exists(list, now).await.unwrap());
    assert_eq!(store.pending_runs().await.unwrap(), [run]);
    assert_eq!(store.enqueue_run(run, now).await.unwrap(), Some(2), "the bounced subscriber is left out");
    assert_eq!(store.enqueue_run(run, now).await.unwrap(), None, "another instance got there first");
    let summary = store.run(run).await.unwrap().unwrap();
    assert_eq!((summary.status, summary.queued), (RunStatus::Sending, 2));
    assert_eq!(store.queue_depth().await.unwrap(), 2);
});

both_backends!(leases_expire_and_cursors_move_only_when_sent, |backend| async move {
    let Some((_db, store, list, subscribers)) = setup(backend).await else {
        return;
    };
    let t1 = Utc::now() - Duration::minutes(30);
    publish(&store, vec![article("kt1", &["Tin Tức", "Kinh tế"], t1), article("tt1", &["Thể thao"], t1)], t1).await;
    let at = (Utc::now() - Duration::minutes(1)).duration_trunc(Duration::seconds(1)).unwrap();
    let run = store.create_run(list, at, at, RunStatus::Pending, at).await.unwrap().unwrap();
    store.enqueue_run(run, at).await.unwrap();
    let now = Utc::now();
    let claimed = store.claim_deliveries(now, now + Duration::minutes(5), 10).await.unwrap();
    assert_eq!(claimed.len(), 3);
    assert!(store.claim_deliveries(now, now + Duration::minutes(5), 10).await.unwrap().is_empty(), "leased");
    // A crashed sender's lease expires and the delivery is claimed again.
    let later = now + Duration::minutes(6);
    let again = store.claim_deliveries(later, later + Duration::minutes(5), 10).await.unwrap();
    assert_eq!(again.len(), 3);
    assert_eq!(again[0].attempts, 2);
    let first = &again[0];
    let content = store.digest_content(first.subscriber_id, list, first.window_end, 20).await.unwrap();
    let titles: Vec<&str> = content.articles.iter().map(|a| a.title.as_str()).collect();
    assert_eq!(titles, ["Bài kt1"], "only the list's categories");
    store.close_delivery(first, true, content.total, later).await.unwrap();
    store.retry_delivery(again[1].id, later + Duration::minutes(1), "451 try later").await.unwrap();
    store.fail_delivery(&again[2], "550 no such user", true).await.unwrap();
    let bounced = store.subscriber(again[2].subscriber_id).await.unwrap().unwrap();
    assert_eq!(bounced.subscriber.status, SubscriberStatus::Bounced);
    // An update and a new article after the run; the next run holds only the new one.
    let t2 = Utc::now();
    let mut updated = article("kt1", &["Tin Tức", "Kinh tế"], t1);
    updated.input.title = "Bài kt1 (cập nhật)".into();
    updated.content_hash = updated.input.content_hash();
    publish(&store, vec![updated, article("xh1", &["Tin Tức", "Xã hội"], t2)], t2).await;
    let end = t2 + Duration::seconds(1);
    let next = store.digest_content(first.subscriber_id, list, end, 20).await.unwrap();
    assert_eq!(next.articles.iter().map(|a| a.source_id.as_str()).collect::<Vec<_>>(), ["xh1"]);
    // The retried subscriber never got the first digest: both articles are still new to them.
    let pending = store.digest_content(again[1].subscriber_id, list, end, 20).await.unwrap();
    assert_eq!(pending.total, 2);
    assert!(subscribers.contains(&again[1].subscriber_id));
    // A retracted article is left out.
    store.retract_article("xh1", Utc::now()).await.unwrap();
    assert_eq!(store.digest_content(first.subscriber_id, list, end, 20).await.unwrap().total, 0);
    // Retried delivery comes back when due; the run finishes when it is closed.
    assert!(store.claim_deliveries(later, later + Duration::minutes(5), 10).await.unwrap().is_empty());
    let due = later + Duration::minutes(2);
    let retried = store.claim_deliveries(due, due + Duration::minutes(5), 10).await.unwrap();
    assert_eq!(retried.len(), 1);
    assert_eq!(store.complete_runs(due).await.unwrap(), 0, "one still in flight");
    store.close_delivery(&retried[0], true, 2, due).await.unwrap();
    assert_eq!(store.complete_runs(due).await.unwrap(), 1);
    let summary = store.run(run).await.unwrap().unwrap();
    assert_eq!((summary.status, summary.sent, summary.failed, summary.queued), (RunStatus::Done, 2, 1, 0));
});

both_backends!(a_cancelled_run_sends_nothing_more, |backend| async move {
    let Some((_db, store, list, _)) = setup(backend).await else {
        return;
    };
    let at = Utc::now().duration_trunc(Duration::seconds(1)).unwrap();
    let run = store.create_run(list, at, at, RunStatus::Pending, at).await.unwrap().unwrap();
    store.enqueue_run(run, at).await.unwrap();
    let now = Utc::now();
    let one = store.claim_deliveries(now, now + Duration::minutes(5), 1).await.unwrap();
    assert!(store.cancel_run(run, now).await.unwrap());
    assert!(!store.cancel_run(run, now).await.unwrap());
    assert!(store.claim_deliveries(now, now + Duration::minutes(5), 10).await.unwrap().is_empty());
    store.release_deliveries(&one).await.unwrap();
    let summary = store.run(run).await.unwrap().unwrap();
    assert_eq!((summary.status, summary.skipped, summary.queued), (RunStatus::Cancelled, 3, 0));
    assert_eq!(store.runs(Some(list), 10).await.unwrap().len(), 1);
    assert_eq!(store.runs(None, 10).await.unwrap()[0].id, run);
});

// Someone who unsubscribes (or is blocklisted) after a run is queued gets nothing from
// it: the delivery is skipped at send time. Real sender, real SMTP server.
both_backends!(a_reader_who_leaves_after_the_run_is_queued_is_not_mailed, |backend| async move {
    let Some((db, store, list, ids)) = setup(backend).await else {
        return;
    };
    let now = Utc::now();
    publish(&store, vec![article("kt-1", &["Tin Tức", "Kinh tế"], now)], now).await;
    let smtp = common::smtp::SmtpServer::start().await;
    let mut config = common::test_config(&db);
    config.smtp_url = Some(smtp.url());
    let templates = Arc::new(bantin::templates::Templates::load(None).unwrap());
    let audience = Arc::new(bantin::audience::Audience::new(&config, store.clone(), templates).await.unwrap());
    let metrics = Arc::new(bantin::metrics::Metrics::default());
    let digests = Arc::new(bantin::digest::Digests::new(&config, store.clone(), audience, metrics));

    let at = Utc::now().duration_trunc(Duration::seconds(1)).unwrap();
    let run = store.create_run(list, at, at + Duration::seconds(1), RunStatus::Pending, at).await.unwrap().unwrap();
    assert_eq!(store.enqueue_run(run, at).await.unwrap(), Some(3));
    assert!(store.unsubscribe(ids[0], Some(list), Utc::now()).await.unwrap());
    let blocked = (ids[1], "", Language::Vi, SubscriberStatus::Blocklisted, &Map::new(), Utc::now());
    store.update_subscriber(blocked.0, blocked.1, blocked.2, blocked.3, blocked.4, blocked.5).await.unwrap();

    let stop = tokio_util::sync::CancellationToken::new();
    while digests.send_batch(&stop).await.unwrap() > 0 {}
    let summary = store.run(run).await.unwrap().unwrap();
    assert_eq!((summary.status, summary.sent, summary.skipped, summary.failed), (RunStatus::Done, 1, 2, 0));
    let mail = smtp.wait_for(1, std::time::Duration::from_secs(10)).await;
    assert_eq!(mail.len(), 1);
    assert_eq!(mail[0].to, ["chi@x.vn"]);
});

/// A message's parts as sent: (encoding, bytes) of the text and the HTML.
fn encoded(mail: &bantin::mail::OutgoingMail) -> [(String, Vec<u8>); 2] {
    [&mail.text, &mail.html].map(|part| {
        let body = part.encoded();
        (format!("{:?}", body.encoding()), body.into_vec())
    })
}

// Readers of the same content, run and language share one rendering with their own links
// spliced in; each gets byte for byte what rendering for them alone gives: names with
// HTML-special characters, Vietnamese, another language, narrower category preferences,
// and templates that do more with a link than print it (rendered per reader).
both_backends!(a_shared_digest_is_what_each_reader_would_get_alone, |backend| async move {
    let Some((db, store, list, ids)) = setup(backend).await else {
        return;
    };
    let now = Utc::now();
    let active = SubscriberStatus::Active;
    store.update_subscriber(ids[0], "<Đỗ & \"Gia\"> 'Bảo'", Language::Vi, active, &Map::new(), now).await.unwrap();
    store.update_subscriber(ids[1], "Nguyễn Thị Ánh", Language::Vi, active, &Map::new(), now).await.unwrap();
    let kinh_te = [bantin::store::audience::ListChoice { list_id: list, categories: vec!["tin-tuc/kinh-te".into()] }];
    assert!(store.save_preferences(ids[2], &kinh_te, Language::En, now).await.unwrap());
    let mut special = article("kt-1", &["Tin Tức", "Kinh tế"], now);
    special.input.title = "Giá lúa <tăng> & \"gạo\" 'thơm' = 7.500đ/kg".into();
    special.content_hash = special.input.content_hash();
    publish(&store, vec![special, article("xh-1", &["Tin Tức", "Xã hội"], now)], now).await;

    let at = Utc::now().duration_trunc(Duration::seconds(1)).unwrap();
    let run = store.create_run(list, at, at + Duration::seconds(1), RunStatus::Pending, at).await.unwrap().unwrap();
    assert_eq!(store.enqueue_run(run, at).await.unwrap(), Some(3));
    let claimed = store.claim_deliveries(Utc::now(), Utc::now() + Duration::minutes(5), 10).await.unwrap();
    let details = store.subscribers_by_id(&ids).await.unwrap();
    let list = store.lists().await.unwrap().into_iter().find(|l| l.id == list).unwrap();

    let mut config = common::test_config(&db);
    config.list_unsubscribe_mailto = Some(EmailAddress::parse("huy@hiephoa.example").unwrap());
    let metrics = Arc::new(bantin::metrics::Metrics::default());
    let filtered = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(filtered.path().join("email")).unwrap();
    std::fs::write(filtered.path().join("email/digest.txt"), "{{ heading }}\n{{ unsubscribe_url|upper }}\n").unwrap();
    for (templates, spliced) in [(None, true), (Some(filtered.path()), false)] {
        let templates = Arc::new(bantin::templates::Templates::load(templates).unwrap());
        let audience = Arc::new(bantin::audience::Audience::new(&config, store.clone(), templates).await.unwrap());
        let digests = bantin::digest::Digests::new(&config, store.clone(), audience, metrics.clone());
        let mut shared = std::collections::HashMap::new();
        let mut titles = Vec::new();
        for delivery in &claimed {
            let detail = details.iter().find(|d| d.subscriber.id == delivery.subscriber_id).unwrap();
            let subscription = detail.subscriptions.iter().find(|s| s.list_id == list.id).unwrap();
            let paths = if subscription.categories.is_empty() { &list.categories } else { &subscription.categories };
            let content =
                store.articles_between(paths, subscription.sent_through, delivery.window_end, 20).await.unwrap();
            titles.push(content.articles.len());
            let lang = Language::parse(&detail.subscriber.language).unwrap();
            let digest = shared
                .entry((paths.clone(), lang.code()))
                .or_insert_with(|| digests.shared(&list, &content, lang, delivery).unwrap());
            assert_eq!(digest.is_spliced(), spliced);
            let alone = digests.render(&list, detail, &content, delivery).unwrap();
            let together = digests.render_shared(digest, &list, detail, &content, delivery).unwrap();
            assert_eq!(together.text.as_str(), alone.text.as_str());
            assert_eq!(together.html.as_str(), alone.html.as_str());
            assert_eq!(encoded(&together), encoded(&alone));
            assert_eq!(
                (&together.to_name, &together.to, &together.subject, &together.message_id, &together.headers),
                (&alone.to_name, &alone.to, &alone.subject, &alone.message_id, &alone.headers)
            );
            assert!(alone.html.as_str().contains("Giá lúa &lt;tăng&gt; &amp; &quot;gạo&quot;"));
        }
        assert_eq!(titles, [2, 2, 1], "the third reader chose one category");
        assert_eq!(shared.len(), 2, "the two Vietnamese readers share one rendering");
    }
});
