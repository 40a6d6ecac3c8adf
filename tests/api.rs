//! The ingest API against the real application on port 0, on both backends.

mod common;

use chrono::{Duration, Utc};
use common::TestApp;
use serde_json::{Value, json};

const SAMPLE: &str = include_str!("fixtures/sample-article-vi.json");

both_backends!(the_sample_article_is_stored_with_its_vietnamese_text, |backend| async move {
    let Some(app) = TestApp::spawn(backend).await else {
        return;
    };
    let (status, body) = app.post_articles(SAMPLE).await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(body["outcome"], "new");
    let (status, article) = app.get_article("hiephoa-2013-0412").await;
    assert_eq!(status, 200);
    let sample: Value = serde_json::from_str(SAMPLE).unwrap();
    assert_eq!(article["title"], sample["title"]);
    assert_eq!(article["category"], json!(["Tin Tức", "Kinh tế"]));
    assert_eq!(article["category_path"], "tin-tuc/kinh-te");
    assert_eq!(article["author"], "Phương Nhung");
    assert_eq!(article["published_at"], "2013-04-12T08:00:00+07:00");
    let html = article["content_html"].as_str().unwrap();
    assert!(html.starts_with("<p>Đảng bộ huyện Hiệp Hoà hiện có 75 chi"), "{html}");
    assert!(html.contains("“Nâng cao năng lực lãnh đạo, sức chiến đấu của TCCSĐ giai đoạn 2011-2015”"));
    assert_eq!(html.matches("<p>").count(), 3);
    // The same post again changes nothing; a changed one updates.
    let (status, body) = app.post_articles(SAMPLE).await;
    assert_eq!((status, body["outcome"].as_str()), (200, Some("unchanged")));
    let mut changed = sample.clone();
    changed["title"] = json!("Hiệp Hòa: 2 năm củng cố nền nếp sinh hoạt Đảng");
    let (status, body) = app.post_articles(changed.to_string()).await;
    assert_eq!((status, body["outcome"].as_str()), (200, Some("updated")));
    assert_eq!(app.event_count().await, 2);
});

both_backends!(requests_without_a_valid_token_get_401, |backend| async move {
    let Some(app) = TestApp::spawn(backend).await else {
        return;
    };
    let url = format!("{}/api/v1/articles", app.address);
    let forged = format!("{}x", app.token);
    let cases: [Option<&str>; 5] =
        [None, Some("Bearer"), Some("Basic dXNlcjpwYXNz"), Some("Bearer bnt_000000000000_nope"), Some(forged.as_str())];
    for auth in cases {
        let mut request = app.client.post(&url).body(SAMPLE);
        if let Some(value) = auth {
            request = request.header("Authorization", value);
        }
        let response = request.send().await.unwrap();
        assert_eq!(response.status(), 401, "{auth:?}");
        assert_eq!(response.headers()["www-authenticate"], "Bearer");
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["field"], "Authorization");
    }
    let response = app.client.get(format!("{url}/x")).send().await.unwrap();
    assert_eq!(response.status(), 401);
    assert_eq!(app.event_count().await, 0);
});

both_backends!(bad_input_gets_a_4xx_naming_the_field_and_writes_nothing, |backend| async move {
    let Some(app) = TestApp::spawn(backend).await else {
        return;
    };
    let long_title = "Đ".repeat(1001);
    let cases: Vec<(String, u16, Value)> = vec![
        ("{\"id\": \"x\", ".into(), 400, Value::Null),
        ("not json".into(), 400, Value::Null),
        (json!({"title": "Không có id"}).to_string(), 422, json!("id")),
        (json!({"id": "x"}).to_string(), 422, json!("title")),
        (json!({"id": "x", "title": long_title}).to_string(), 422, json!("title")),
        (json!({"id": "x", "title": "t", "published_at": "25/11/2026"}).to_string(), 422, json!("published_at")),
        (json!({"id": "x", "title": "t", "url": "hiephoa.example/bai"}).to_string(), 422, json!("url")),
        (json!({"id": "x", "title": "t", "image": "javascript:alert(1)"}).to_string(), 422, json!("image")),
        (json!({"id": "x", "title": "t", "category": ["Tin Tức", "  "]}).to_string(), 422, json!("category")),
        (json!({"id": "x", "title": "t", "category": ""}).to_string(), 422, json!("category")),
        (json!({"id": ["x"], "title": "t"}).to_string(), 422, json!("id")),
        (json!({"id": "x", "title": {"vi": "t"}}).to_string(), 422, json!("title")),
        (json!({"id": "x", "title": "t", "tags": "a"}).to_string(), 422, json!("tags")),
        (json!({"id": "x", "title": "t", "summary": 1}).to_string(), 422, json!("summary")),
        (json!("just a string").to_string(), 422, Value::Null),
        ("[]".into(), 422, Value::Null),
    ];
    for (body, status, field) in cases {
        let (got, response) = app.post_articles(body.clone()).await;
        assert_eq!(got, status, "{body:.80} → {response}");
        assert_eq!(response["field"], field, "{body:.80} → {response}");
        assert!(response["error"].as_str().is_some_and(|e| !e.is_empty()), "{response}");
    }
    let (status, _) = app.get_article("x").await;
    assert_eq!(status, 404);
    assert_eq!(app.event_count().await, 0);
});

both_backends!(a_body_over_2_mb_gets_413, |backend| async move {
    let Some(app) = TestApp::spawn(backend).await else {
        return;
    };
    let big = json!({"id": "big", "title": "Quá lớn", "content_text": "ạ".repeat(1_100_000)}).to_string();
    assert!(big.len() > 2 * 1024 * 1024);
    let (status, body) = app.post_articles(big).await;
    assert_eq!(status, 413, "{body}");
    assert!(body["error"].as_str().unwrap().contains("larger than"));
    assert_eq!(app.get_article("big").await.0, 404);
});

both_backends!(a_batch_stores_the_good_items_and_reports_each, |backend| async move {
    let Some(app) = TestApp::spawn(backend).await else {
        return;
    };
    let batch = json!([
        {"id": "b1", "title": "Một", "category": ["Thể thao", "Bóng đá"]},
        {"id": "b2"},
        {"id": "b3", "title": "Ba", "published_at": "ngày mai"},
        {"id": "b4", "title": "Bốn", "category": ["Thể thao", "Bóng đá"]},
        "not an object",
    ]);
    let (status, body) = app.post_articles(batch.to_string()).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["summary"], json!({"new": 2, "updated": 0, "unchanged": 0, "failed": 3}));
    let results = body["results"].as_array().unwrap();
    let outcomes: Vec<&str> = results.iter().map(|r| r["outcome"].as_str().unwrap()).collect();
    assert_eq!(outcomes, ["new", "failed", "failed", "new", "failed"]);
    assert_eq!(results[1]["field"], "title");
    assert_eq!(results[2]["field"], "published_at");
    assert_eq!(results[2]["id"], "b3");
    assert_eq!(app.get_article("b1").await.0, 200);
    assert_eq!(app.get_article("b3").await.0, 404);
    assert_eq!(app.event_count().await, 2);

    let all_bad = json!([{"id": "z"}, {"title": "z"}]);
    assert_eq!(app.post_articles(all_bad.to_string()).await.0, 422);
    let too_many: Vec<Value> = (0..1001).map(|i| json!({"id": format!("m{i}"), "title": "t"})).collect();
    let (status, body) = app.post_articles(Value::from(too_many).to_string()).await;
    assert_eq!(status, 422);
    assert!(body["error"].as_str().unwrap().contains("1000"));
    assert_eq!(app.get_article("m0").await.0, 404);
});

both_backends!(text_is_normalized_and_cleaned_on_the_way_in, |backend| async move {
    let Some(app) = TestApp::spawn(backend).await else {
        return;
    };
    // Decomposed (NFD) Vietnamese and characters XML 1.0 forbids.
    let article = json!({
        "id": "nfd",
        "title": "Kinh te\u{302}\u{301} \u{0}Hie\u{323}\u{302}p Ho\u{300}a\u{1B}",
        "category": ["Tin Tu\u{31B}\u{301}c", "Kinh te\u{302}\u{301}"],
        "content_html": "<p>Đoạn\u{8} văn\u{FFFF}</p>",
    });
    assert_eq!(app.post_articles(article.to_string()).await.0, 201);
    let (_, stored) = app.get_article("nfd").await;
    assert_eq!(stored["title"], "Kinh tế Hiệp Hòa");
    assert_eq!(stored["category"], json!(["Tin Tức", "Kinh tế"]));
    assert_eq!(stored["category_path"], "tin-tuc/kinh-te");
    assert_eq!(stored["content_html"], "<p>Đoạn văn</p>");
    assert_eq!(stored["url"], "https://tin.hiephoa.example/tin-tuc/kinh-te/kinh-te-hiep-hoa");
});

both_backends!(retracting_by_id, |backend| async move {
    let Some(app) = TestApp::spawn(backend).await else {
        return;
    };
    app.post_articles(SAMPLE).await;
    let delete = |id: &'static str| {
        app.client.delete(format!("{}/api/v1/articles/{id}", app.address)).bearer_auth(&app.token).send()
    };
    let response = delete("hiephoa-2013-0412").await.unwrap();
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["status"], "retracted");
    assert_eq!(delete("hiephoa-2013-0412").await.unwrap().status(), 200);
    assert_eq!(delete("unknown").await.unwrap().status(), 404);
    let kinds: Vec<&str> = app.store.events_after(0, 10).await.unwrap().iter().map(|e| e.kind.as_str()).collect();
    assert_eq!(kinds, ["published", "retracted"]);
});

both_backends!(a_scheduled_article_becomes_visible_within_a_second_of_its_time, |backend| async move {
    let Some(app) = TestApp::spawn(backend).await else {
        return;
    };
    let due = Utc::now() + Duration::milliseconds(1500);
    let article = json!({"id": "sched", "title": "Bản tin sáng", "published_at": due.to_rfc3339()});
    let (status, body) = app.post_articles(article.to_string()).await;
    assert_eq!((status, body["status"].as_str()), (201, Some("scheduled")));
    assert_eq!(app.event_count().await, 0);
    let deadline = due + Duration::seconds(5);
    let event = loop {
        if let Some(e) = app.store.events_after(0, 10).await.unwrap().pop() {
            break e;
        }
        assert!(Utc::now() < deadline, "the scheduled article was never published");
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    };
    assert_eq!(event.kind.as_str(), "published");
    assert!(event.occurred_at >= due - Duration::milliseconds(1));
    assert!(event.occurred_at - due < Duration::seconds(1), "published {} after its time", event.occurred_at - due);
    assert_eq!(app.get_article("sched").await.1["status"], "published");
});

both_backends!(articles_due_while_the_service_was_down_are_published_at_start, |backend| async move {
    let Some(db) = common::TestDatabase::new(backend).await else {
        return;
    };
    // Written while no service runs: due in the past by the time the service starts.
    {
        let config = common::test_config(&db);
        let services = bantin::app::Services::with_store(&config, db.store().await);
        let due = Utc::now() + Duration::milliseconds(200);
        let item = json!({"id": "late", "title": "Đăng muộn", "published_at": due.to_rfc3339()});
        let reports = services.ingestor.ingest(&[item]).await.unwrap();
        assert_eq!(reports[0].outcome.as_ref().unwrap().status.as_str(), "scheduled");
        tokio::time::sleep(std::time::Duration::from_millis(400)).await;
    }
    let store = db.store().await;
    let config = common::test_config(&db);
    let services = bantin::app::Services::with_store(&config, store.clone());
    let app = bantin::app::Application::build_with(config, services).await.unwrap();
    let shutdown = tokio_util::sync::CancellationToken::new();
    let started = Utc::now();
    let running = tokio::spawn(app.run(shutdown.clone()));
    let event = loop {
        if let Some(e) = store.events_after(0, 10).await.unwrap().pop() {
            break e;
        }
        assert!(Utc::now() - started < Duration::seconds(5), "not published after a restart");
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    };
    assert!(event.occurred_at - started < Duration::seconds(1));
    shutdown.cancel();
    running.await.unwrap().unwrap();
});

both_backends!(health_and_metrics, |backend| async move {
    let Some(app) = TestApp::spawn(backend).await else {
        return;
    };
    let health: Value = app.client.get(format!("{}/healthz", app.address)).send().await.unwrap().json().await.unwrap();
    assert_eq!(health["status"], "ok");
    app.post_articles(SAMPLE).await;
    let response = app.client.get(format!("{}/metrics", app.address)).send().await.unwrap();
    assert!(response.headers()["content-type"].to_str().unwrap().starts_with("text/plain"));
    let text = response.text().await.unwrap();
    assert!(text.contains("bantin_articles_ingested_total{outcome=\"new\"} 1"), "{text}");
    assert!(text.contains("bantin_publication_events_total{kind=\"published\"} 1"), "{text}");
    assert!(
        text.contains("bantin_http_requests_total{method=\"POST\",route=\"/api/v1/articles\",status=\"201\"} 1"),
        "{text}"
    );
    assert!(!text.contains(&app.token));
    let missing = app.client.get(format!("{}/nowhere", app.address)).send().await.unwrap();
    assert_eq!(missing.status(), 404);
});
