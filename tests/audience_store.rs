//! The audience side of the storage suite (lists, subscribers, subscriptions, admins,
//! audit), run against SQLite and against PostgreSQL.

mod common;

use std::sync::Arc;

use bantin::config::Language;
use bantin::domain::audience::{SubscriberStatus, SubscriptionStatus};
use bantin::domain::email::EmailAddress;
use bantin::store::Store;
use bantin::store::audience::{ListChoice, Merge, NewSubscriber, SubscribeOutcome, SubscriberQuery};
use chrono::{Duration, Utc};
use common::list_input;
use serde_json::{Map, json};

fn email(s: &str) -> EmailAddress {
    EmailAddress::parse(s).unwrap()
}

fn row(address: &str, name: &str, status: SubscriberStatus, list_ids: Vec<i64>) -> NewSubscriber {
    NewSubscriber {
        email: email(address),
        name: name.into(),
        language: Language::Vi,
        status,
        attributes: Map::new(),
        list_ids,
    }
}

async fn store_for(backend: common::Backend) -> Option<(common::TestDatabase, Arc<dyn Store>)> {
    let db = common::TestDatabase::new(backend).await?;
    let store = db.store().await;
    Some((db, store))
}

fn choice(list_id: i64) -> ListChoice {
    ListChoice { list_id, categories: Vec::new() }
}

both_backends!(lists_round_trip_and_slugs_are_unique, |backend| async move {
    let Some((_db, store)) = store_for(backend).await else {
        return;
    };
    let now = Utc::now();
    let input =
        list_input(json!({"name": "Bản tin sáng", "categories": ["tin-tuc/kinh-te"], "schedule": "0 6 * * 1-5"}));
    let list = store.create_list(&input, now).await.unwrap();
    assert_eq!(list.slug, "ban-tin-sang");
    assert_eq!(list.categories, ["tin-tuc/kinh-te"]);
    assert_eq!(list.schedule, "0 6 * * 1-5", "kept as the admin wrote it");
    assert!(list.double_opt_in);
    let taken = store.create_list(&input, now).await;
    assert!(matches!(taken, Err(bantin::store::StoreError::Conflict(_))), "{taken:?}");
    let renamed = list_input(json!({"name": "Bản tin tối", "double_opt_in": false}));
    let updated = store.update_list("ban-tin-sang", &renamed, now).await.unwrap().unwrap();
    assert_eq!((updated.slug.as_str(), updated.double_opt_in), ("ban-tin-toi", false));
    assert!(store.list("ban-tin-sang").await.unwrap().is_none());
    assert!(store.update_list("nope", &renamed, now).await.unwrap().is_none());
    assert!(store.delete_list("ban-tin-toi").await.unwrap());
    assert!(!store.delete_list("ban-tin-toi").await.unwrap());
    assert!(store.lists().await.unwrap().is_empty());
});

both_backends!(a_form_cannot_resubscribe_or_reach_barred_addresses, |backend| async move {
    let Some((_db, store)) = store_for(backend).await else {
        return;
    };
    let now = Utc::now();
    let list = store.create_list(&list_input(json!({"name": "Sáng"})), now).await.unwrap();
    let lan = email("Lan@Example.VN");
    let interval = Duration::minutes(10);
    let SubscribeOutcome::Recorded { subscriber_id: id, confirm } =
        store.subscribe(&lan, "Lan", Language::Vi, &[choice(list.id)], interval, now).await.unwrap()
    else {
        panic!("a new address is recorded");
    };
    assert!(confirm, "double opt-in asks for confirmation");
    let detail = store.subscriber(id).await.unwrap().unwrap();
    assert_eq!(detail.subscriber.status, SubscriberStatus::Unconfirmed);
    assert_eq!(detail.subscriber.email, "Lan@example.vn");
    assert_eq!(detail.subscriptions[0].status, SubscriptionStatus::Unconfirmed);
    store.confirmation_sent(id, now).await.unwrap();
    // Another spelling of the same address is the same subscriber; no second email yet.
    let again = store.subscribe(&email("lan@example.vn"), "X", Language::En, &[choice(list.id)], interval, now).await;
    assert_eq!(again.unwrap(), SubscribeOutcome::Recorded { subscriber_id: id, confirm: false });
    assert!(store.confirm_subscriber(id, now).await.unwrap());
    let detail = store.subscriber(id).await.unwrap().unwrap();
    assert_eq!(detail.subscriber.status, SubscriberStatus::Active);
    assert_eq!(detail.subscriber.name, "Lan", "a form does not rename a known subscriber");
    assert_eq!(detail.subscriptions[0].status, SubscriptionStatus::Active);
    // Leaving, then coming back through the form, needs the inbox again.
    assert!(store.unsubscribe(id, Some(list.id), now).await.unwrap());
    let detail = store.subscriber(id).await.unwrap().unwrap();
    assert_eq!(detail.subscriber.status, SubscriberStatus::Unsubscribed, "nothing left to receive");
    let later = now + Duration::hours(1);
    let back = store.subscribe(&lan, "", Language::Vi, &[choice(list.id)], interval, later).await.unwrap();
    assert_eq!(back, SubscribeOutcome::Recorded { subscriber_id: id, confirm: true });
    assert_eq!(store.subscriber(id).await.unwrap().unwrap().subscriber.status, SubscriberStatus::Unconfirmed);
    // Blocklisted: nothing happens.
    store.update_subscriber(id, "Lan", Language::Vi, SubscriberStatus::Blocklisted, &Map::new(), later).await.unwrap();
    let barred = store.subscribe(&lan, "", Language::Vi, &[choice(list.id)], interval, later).await.unwrap();
    assert_eq!(barred, SubscribeOutcome::Barred);
    assert!(!store.confirm_subscriber(id, later).await.unwrap(), "a confirm link cannot lift a block");
    assert_eq!(store.subscriber(id).await.unwrap().unwrap().subscriber.status, SubscriberStatus::Blocklisted);
});

both_backends!(imports_merge_and_never_resubscribe, |backend| async move {
    let Some((_db, store)) = store_for(backend).await else {
        return;
    };
    let now = Utc::now();
    let list = store.create_list(&list_input(json!({"name": "Sáng"})), now).await.unwrap();
    let first = vec![
        row("a@x.vn", "An", SubscriberStatus::Unconfirmed, vec![list.id]),
        row("b@x.vn", "", SubscriberStatus::Unconfirmed, vec![list.id]),
    ];
    let merged = store.merge_subscribers(&first, SubscriptionStatus::Unconfirmed, now).await.unwrap();
    assert!(merged.iter().all(|m| m.merge == Merge::Created && m.status == SubscriberStatus::Unconfirmed));
    let b = merged[1].id;
    store.unsubscribe(b, None, now).await.unwrap();
    let second = vec![
        row("A@x.vn", "Other", SubscriberStatus::Active, vec![list.id]),
        row("b@x.vn", "Bình", SubscriberStatus::Active, vec![list.id]),
        row("c@x.vn", "Chi", SubscriberStatus::Active, vec![list.id]),
    ];
    let merged = store.merge_subscribers(&second, SubscriptionStatus::Active, now).await.unwrap();
    assert_eq!(merged.iter().map(|m| m.merge).collect::<Vec<_>>(), [Merge::Merged, Merge::Merged, Merge::Created]);
    assert_eq!(merged[0].status, SubscriberStatus::Active, "unconfirmed, now confirmed by the import");
    assert_eq!(merged[1].status, SubscriberStatus::Unsubscribed, "an import cannot resubscribe");
    let a = store.subscriber(merged[0].id).await.unwrap().unwrap();
    assert_eq!(a.subscriber.name, "An", "a known name is kept");
    assert_eq!(a.subscriptions[0].status, SubscriptionStatus::Unconfirmed, "an existing subscription is kept");
    let b = store.subscriber(b).await.unwrap().unwrap();
    assert_eq!(b.subscriber.name, "Bình", "an empty name is filled in");
    assert_eq!(b.subscriptions[0].status, SubscriptionStatus::Unsubscribed);
});

both_backends!(search_is_literal_and_pages_without_gaps, |backend| async move {
    let Some((_db, store)) = store_for(backend).await else {
        return;
    };
    let now = Utc::now();
    let list = store.create_list(&list_input(json!({"name": "Sáng"})), now).await.unwrap();
    let mut rows: Vec<NewSubscriber> = (0..120)
        .map(|i| {
            let lists = if i % 2 == 0 { vec![list.id] } else { vec![] };
            row(&format!("nguoi{i}@tin{}.vn", i % 3), &format!("Người Đọc {i}"), SubscriberStatus::Active, lists)
        })
        .collect();
    rows.push(row("phan_tram@x.vn", "100% Đúng", SubscriberStatus::Active, vec![]));
    rows.push(row("phanxtram@x.vn", "100x Đúng", SubscriberStatus::Active, vec![]));
    store.merge_subscribers(&rows, SubscriptionStatus::Active, now).await.unwrap();
    let search = |text: &str, list_id: Option<i64>| SubscriberQuery {
        text: Some(text.to_owned()),
        list_id,
        status: None,
        before_id: None,
        limit: 1000,
    };
    let found = store.search_subscribers(&search("100%", None)).await.unwrap();
    assert_eq!(found.iter().map(|s| s.email.as_str()).collect::<Vec<_>>(), ["phan_tram@x.vn"]);
    let found = store.search_subscribers(&search("n_t", None)).await.unwrap();
    assert_eq!(found.iter().map(|s| s.email.as_str()).collect::<Vec<_>>(), ["phan_tram@x.vn"]);
    let found = store.search_subscribers(&search("NGƯỜI ĐỌC 11", None)).await.unwrap();
    assert_eq!(found.len(), 11, "case-insensitive, diacritics kept: 11 and 110-119");
    let found = store.search_subscribers(&search("@tin1.", Some(list.id))).await.unwrap();
    assert_eq!(found.len(), 20, "one in three is @tin1, half of those in the list");
    assert!(store.search_subscribers(&search("zz", None)).await.unwrap().is_empty());
    // Walk every page of 7.
    let mut seen = Vec::new();
    let mut before = None;
    loop {
        let query = SubscriberQuery { text: None, list_id: None, status: None, before_id: before, limit: 7 };
        let page = store.search_subscribers(&query).await.unwrap();
        let Some(last) = page.last() else { break };
        before = Some(last.id);
        seen.extend(page.iter().map(|s| s.id));
    }
    assert_eq!(seen.len(), 122);
    assert!(seen.windows(2).all(|w| w[0] > w[1]), "newest first, no repeats");
    let filtered = SubscriberQuery {
        text: None,
        list_id: None,
        status: Some(SubscriberStatus::Blocklisted),
        before_id: None,
        limit: 10,
    };
    assert!(store.search_subscribers(&filtered).await.unwrap().is_empty());
});

// More subscribers (and list members) than the newest ones PostgreSQL checks before it
// turns to its trigram indexes (5,000), and a bulk merge into SQLite's trigram index: every text finds exactly
// the rows that contain it, newest first, page after page.
both_backends!(search_finds_every_match_old_and_new_page_by_page, |backend| async move {
    let Some((_db, store)) = store_for(backend).await else {
        return;
    };
    let now = Utc::now();
    let list = store.create_list(&list_input(json!({"name": "Sáng"})), now).await.unwrap();
    let people: Vec<(String, String, bool)> = (0..12_000)
        .map(|i| {
            let name = if i % 1000 == 8 { format!("Quách Bảo Uyên {i}") } else { format!("Người Đọc {i}") };
            (format!("nguoi{i}@tin{}.vn", i % 7), name, i % 2 == 0)
        })
        .collect();
    let rows: Vec<NewSubscriber> = people
        .iter()
        .map(|(address, name, listed)| {
            row(address, name, SubscriberStatus::Active, if *listed { vec![list.id] } else { vec![] })
        })
        .collect();
    let merged = store.merge_subscribers(&rows, SubscriptionStatus::Active, now).await.unwrap();
    assert!(merged.iter().all(|m| m.merge == Merge::Created));
    let mut by_id: Vec<(i64, &(String, String, bool))> = merged.iter().map(|m| m.id).zip(&people).collect();
    by_id.sort_by_key(|(id, _)| std::cmp::Reverse(*id));
    for (text, in_list) in [
        ("Quách bảo", false),
        ("quách bảo", true),
        ("nguoi1234@tin2.vn", false),
        ("uyên 5008", false),
        ("@tin3.vn", true),
        ("ĐỌC 1199", false),
        ("oi11", false),
        ("không-có", false),
    ] {
        let key = text.to_lowercase();
        let expected: Vec<i64> = by_id
            .iter()
            .filter(|(_, (address, name, listed))| {
                (address.contains(&key) || name.to_lowercase().contains(&key)) && (*listed || !in_list)
            })
            .map(|(id, _)| *id)
            .take(60)
            .collect();
        let mut found: Vec<i64> = Vec::new();
        loop {
            let query = SubscriberQuery {
                text: Some(text.to_owned()),
                list_id: in_list.then_some(list.id),
                status: None,
                before_id: found.last().copied(),
                limit: 7,
            };
            let page = store.search_subscribers(&query).await.unwrap();
            found.extend(page.iter().map(|s| s.id));
            if page.len() < 7 || found.len() >= expected.len() {
                break;
            }
        }
        found.truncate(60);
        assert_eq!(found, expected, "{text:?} in the list: {in_list}");
    }
});

// Every shape of search text PostgreSQL looks up its own way (whole and partial addresses
// around the @, domains and their prefixes, fragments with dots, one and two characters,
// texts without letters, `%` and `_`, names with @ and diacritics) finds exactly the rows
// that hold it, newest first, page after page, with list and status filters.
both_backends!(search_finds_text_wherever_it_is, |backend| async move {
    let Some((_db, store)) = store_for(backend).await else {
        return;
    };
    let now = Utc::now();
    let list = store.create_list(&list_input(json!({"name": "Sáng"})), now).await.unwrap();
    let people = [
        ("an.le@gmail.com", "Lê Văn An"),
        ("An.Le@gmail.com.vn", "Nguyễn Thị Hà"),
        ("xan.le@gmail.co", "An @ Home"),
        ("an.le@mail.com", "100% Đúng"),
        ("le.an@gmail.com", "Đỗ Quang"),
        ("qz9@zing.vn", "Mr. ... Dots"),
        ("a_b@x.vn", "Tú"),
        ("a%b@y.vn", ""),
        ("nongsan17@nongsan17.com.vn", "q"),
        ("abc@nongsan170.com.vn", "gmail.com fan"),
        ("dot.dot@a-b.vn", "x@vnu.edu.vn"),
        ("w@w.vn", "a@b@c"),
        ("j.q@fpt.com.vn", "Hà Nội"),
        ("hoa@hiephoa.gov.vn", "Hoàng Đức"),
        ("hiephoa@gmail.com", "Trần Thùy Linh"),
        ("x@vnu.edu.vn", "Nguyễn Văn Đức"),
        ("y@vnu.edu.vn.org", "Lê_Thị"),
        ("zed@example.org", "Thị-Văn"),
    ];
    let rows: Vec<NewSubscriber> = people
        .iter()
        .enumerate()
        .map(|(i, (address, name))| {
            let status = if i % 3 == 2 { SubscriberStatus::Unsubscribed } else { SubscriberStatus::Active };
            row(address, name, status, if i % 2 == 0 { vec![list.id] } else { vec![] })
        })
        .collect();
    let merged = store.merge_subscribers(&rows, SubscriptionStatus::Active, now).await.unwrap();
    let mut by_id: Vec<(i64, usize)> = merged.iter().map(|m| m.id).zip(0..).collect();
    by_id.sort_by_key(|(id, _)| std::cmp::Reverse(*id));
    let mut checked = 0;
    for text in [
        "an.le@gmail.com",
        "@gmail.com",
        "@gmail.co",
        "le@gmail",
        "AN.LE@",
        "n@g",
        "@",
        "a@",
        "@ h",
        "gmail",
        "gmail.com",
        "nongsan17.com.vn",
        "nongsan17",
        "hiephoa",
        "a_b",
        "a%b",
        "%",
        "_",
        "q",
        "qz",
        "z",
        "w",
        "j",
        "hà",
        "ĐỖ",
        "đ",
        "...",
        "..",
        ".",
        "-",
        "a@b@c",
        "x@vnu.edu.vn",
        "@vnu.edu.vn",
        "vnu.edu.vn",
        "100%",
        "thị hà",
        "lê văn",
        "thị-",
        "zz",
        "an",
        "1",
        "17",
        "hoàng đức",
    ] {
        let key = text.to_lowercase();
        for (in_list, status) in [
            (false, None),
            (true, None),
            (false, Some(SubscriberStatus::Active)),
            (true, Some(SubscriberStatus::Unsubscribed)),
        ] {
            let expected: Vec<i64> = by_id
                .iter()
                .filter(|(_, i)| {
                    let (address, name) = people[*i];
                    (address.to_lowercase().contains(&key) || name.to_lowercase().contains(&key))
                        && (!in_list || i % 2 == 0)
                        && status.is_none_or(|s| (s == SubscriberStatus::Unsubscribed) == (i % 3 == 2))
                })
                .map(|(id, _)| *id)
                .collect();
            let mut found: Vec<i64> = Vec::new();
            loop {
                let query = SubscriberQuery {
                    text: Some(format!(" {text} ")),
                    list_id: in_list.then_some(list.id),
                    status,
                    before_id: found.last().copied(),
                    limit: 2,
                };
                let page = store.search_subscribers(&query).await.unwrap();
                assert!(page.len() <= 2);
                found.extend(page.iter().map(|s| s.id));
                if page.len() < 2 {
                    break;
                }
            }
            assert_eq!(found, expected, "{text:?}, in the list: {in_list}, status {status:?}");
            checked += expected.len();
        }
    }
    assert!(checked > 150, "the texts found something: {checked}");
});

both_backends!(preferences_and_erasure, |backend| async move {
    let Some((_db, store)) = store_for(backend).await else {
        return;
    };
    let now = Utc::now();
    let morning = store.create_list(&list_input(json!({"name": "Sáng"})), now).await.unwrap();
    let weekly = store.create_list(&list_input(json!({"name": "Tuần", "double_opt_in": false})), now).await.unwrap();
    let new = row("d@x.vn", "Dung", SubscriberStatus::Active, vec![morning.id]);
    let id = store.create_subscriber(&new, now).await.unwrap();
    assert!(matches!(store.create_subscriber(&new, now).await, Err(bantin::store::StoreError::Conflict(_))));
    let choices = [ListChoice { list_id: weekly.id, categories: vec!["the-thao".into()] }];
    assert!(store.save_preferences(id, &choices, Language::En, now).await.unwrap());
    let detail = store.subscriber(id).await.unwrap().unwrap();
    assert_eq!(detail.subscriber.language, "en");
    let statuses: Vec<_> = detail.subscriptions.iter().map(|s| (s.list.as_str(), s.status)).collect();
    assert_eq!(statuses, [("sang", SubscriptionStatus::Unsubscribed), ("tuan", SubscriptionStatus::Active)]);
    assert_eq!(detail.subscriptions[1].categories, ["the-thao"]);
    assert!(store.save_preferences(id, &[], Language::En, now).await.unwrap());
    assert_eq!(store.subscriber(id).await.unwrap().unwrap().subscriber.status, SubscriberStatus::Unsubscribed);
    let counts = store.list_counts().await.unwrap();
    assert_eq!(counts.iter().map(|c| c.unsubscribed).sum::<i64>(), 2);
    assert_eq!(store.subscribers_created_between(now - Duration::days(1), now + Duration::days(1)).await.unwrap(), 1);
    assert!(store.delete_subscriber(id).await.unwrap());
    assert!(store.subscriber(id).await.unwrap().is_none());
    assert!(store.subscriber_by_email(&email("d@x.vn")).await.unwrap().is_none());
    assert!(
        store
            .search_subscribers(&SubscriberQuery { text: Some("dung".into()), limit: 5, ..Default::default() })
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(store.list_counts().await.unwrap().iter().map(|c| c.unsubscribed).sum::<i64>(), 0);
});

both_backends!(admins_sessions_secrets_and_audit, |backend| async move {
    let Some((_db, store)) = store_for(backend).await else {
        return;
    };
    let now = Utc::now();
    let admin = store.create_admin("bientap", "$argon2id$hash", now).await.unwrap();
    assert!(matches!(store.create_admin("bientap", "x", now).await, Err(bantin::store::StoreError::Conflict(_))));
    assert_eq!(store.admin("bientap").await.unwrap().unwrap().id, admin);
    store.create_session("h1", admin, "csrf1", now, now + Duration::hours(12)).await.unwrap();
    let session = store.session("h1", now).await.unwrap().unwrap();
    assert_eq!((session.username.as_str(), session.csrf_token.as_str()), ("bientap", "csrf1"));
    assert!(store.session("h1", now + Duration::hours(13)).await.unwrap().is_none(), "expired");
    store.delete_session("h1").await.unwrap();
    assert!(store.session("h1", now).await.unwrap().is_none());
    let first = store.secret("link_key", "aaaa").await.unwrap();
    assert_eq!(first, "aaaa");
    assert_eq!(store.secret("link_key", "bbbb").await.unwrap(), "aaaa", "made once, then kept");
    for i in 0..3 {
        store.record_audit("admin:bientap", "list.create", &format!("list {i}"), &json!({"i": i}), now).await.unwrap();
    }
    let log = store.audit_log(None, 2).await.unwrap();
    assert_eq!(log.iter().map(|e| e.subject.as_str()).collect::<Vec<_>>(), ["list 2", "list 1"]);
    let older = store.audit_log(Some(log[1].id), 10).await.unwrap();
    assert_eq!(older.len(), 1);
    assert_eq!(older[0].detail, json!({"i": 0}));
});
