//! The admin REST API for lists and subscribers against the real application on port 0,
//! on both backends.

mod common;

use std::time::Duration;

use common::{TestApp, audit_actions, call};
use reqwest::Method;
use serde_json::{Value, json};

async fn raw(app: &TestApp, method: Method, path: &str, content_type: &str, body: Vec<u8>) -> (u16, Value) {
    let response = app
        .client
        .request(method, format!("{}{path}", app.address))
        .bearer_auth(&app.token)
        .header("content-type", content_type)
        .body(body)
        .send()
        .await
        .expect("request");
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

async fn create_list(app: &TestApp, body: Value) -> Value {
    let (status, list) = call(app, Method::POST, "/api/v1/lists", Some(body)).await;
    assert_eq!(status, 201, "{list}");
    list
}

/// An article in Tin Tức › Kinh tế, so that category path exists.
async fn add_category(app: &TestApp) {
    let article =
        json!({"id": "kt-1", "title": "Giá lúa tăng", "category": ["Tin Tức", "Kinh tế"], "content_text": "…"});
    let (status, body) = app.post_articles(article.to_string()).await;
    assert_eq!(status, 201, "{body}");
}

both_backends!(a_list_round_trips_with_its_vietnamese_name, |backend| async move {
    let Some(app) = TestApp::spawn(backend).await else { return };
    add_category(&app).await;
    let list = create_list(
        &app,
        json!({"name": "Bản tin sáng", "schedule": "daily 06:30", "categories": ["tin-tuc/kinh-te"],
               "description": "Tin kinh tế mỗi sáng"}),
    )
    .await;
    assert_eq!(list["slug"], "ban-tin-sang");
    assert_eq!(list["name"], "Bản tin sáng");
    assert_eq!(list["timezone"], "Asia/Ho_Chi_Minh");
    assert_eq!(list["double_opt_in"], true);
    let runs = list["next_runs"].as_array().unwrap();
    assert_eq!(runs.len(), 5);
    for run in runs {
        let run = run.as_str().unwrap();
        assert!(run.ends_with("T06:30:00+07:00"), "{run}");
        chrono::DateTime::parse_from_rfc3339(run).unwrap();
    }

    let (status, shown) = call(&app, Method::GET, "/api/v1/lists/ban-tin-sang", None).await;
    assert_eq!(status, 200);
    assert_eq!(shown["categories"], json!(["tin-tuc/kinh-te"]));
    let (status, all) = call(&app, Method::GET, "/api/v1/lists", None).await;
    assert_eq!(status, 200);
    assert_eq!(all["lists"].as_array().unwrap().len(), 1);

    // A partial edit keeps what it does not name.
    let patch = json!({"description": "Điểm tin buổi sáng", "double_opt_in": false, "schedule": "weekly mon 07:00"});
    let (status, changed) = call(&app, Method::PATCH, "/api/v1/lists/ban-tin-sang", Some(patch)).await;
    assert_eq!(status, 200, "{changed}");
    assert_eq!(changed["name"], "Bản tin sáng");
    assert_eq!(changed["description"], "Điểm tin buổi sáng");
    assert_eq!(changed["double_opt_in"], false);
    assert_eq!(changed["categories"], json!(["tin-tuc/kinh-te"]));
    assert_eq!(changed["schedule"], "0 7 * * Mon");

    // A taken slug is a conflict, by name or by rename.
    let (status, body) = call(&app, Method::POST, "/api/v1/lists", Some(json!({"name": "Bản tin sáng"}))).await;
    assert_eq!(status, 409, "{body}");
    create_list(&app, json!({"name": "Bản tin chiều"})).await;
    let rename = json!({"slug": "ban-tin-sang"});
    let (status, body) = call(&app, Method::PATCH, "/api/v1/lists/ban-tin-chieu", Some(rename)).await;
    assert_eq!(status, 409, "{body}");
    let (status, renamed) =
        call(&app, Method::PATCH, "/api/v1/lists/ban-tin-chieu", Some(json!({"slug": "buoi-chieu"}))).await;
    assert_eq!((status, renamed["slug"].as_str()), (200, Some("buoi-chieu")));

    let (status, _) = call(&app, Method::DELETE, "/api/v1/lists/ban-tin-sang", None).await;
    assert_eq!(status, 204);
    let (status, body) = call(&app, Method::GET, "/api/v1/lists/ban-tin-sang", None).await;
    assert_eq!(status, 404, "{body}");
    let (status, _) = call(&app, Method::DELETE, "/api/v1/lists/ban-tin-sang", None).await;
    assert_eq!(status, 404);

    let actions = audit_actions(&app).await;
    let actor = actions[0].0.clone();
    assert!(actor.starts_with("api:token-"), "{actor}");
    let expected = [
        ("list.create", "list:ban-tin-sang"),
        ("list.update", "list:ban-tin-sang"),
        ("list.create", "list:ban-tin-chieu"),
        ("list.update", "list:ban-tin-chieu"),
        ("list.delete", "list:ban-tin-sang"),
    ];
    let seen: Vec<(&str, &str)> = actions.iter().map(|(_, a, s)| (a.as_str(), s.as_str())).collect();
    assert_eq!(seen, expected);
});

/// A request, the status it gets and the field its error names.
type BadRequest = (Method, String, Option<Value>, u16, Option<&'static str>);

both_backends!(bad_input_gets_a_4xx_naming_the_field, |backend| async move {
    let Some(app) = TestApp::spawn(backend).await else { return };
    add_category(&app).await;
    create_list(&app, json!({"name": "Bản tin sáng"})).await;
    let (_, subscriber) =
        call(&app, Method::POST, "/api/v1/subscribers", Some(json!({"email": "lan@example.vn", "status": "active"})))
            .await;
    let subscriber = format!("/api/v1/subscribers/{}", subscriber["id"]);
    let lists = "/api/v1/lists";
    let list = "/api/v1/lists/ban-tin-sang";
    let subscribers = "/api/v1/subscribers";
    let cases: Vec<BadRequest> = vec![
        (Method::POST, lists.into(), Some(json!([])), 422, None),
        (Method::POST, lists.into(), Some(json!({"name": 5})), 422, Some("name")),
        (Method::POST, lists.into(), Some(json!({"name": "x", "schedule": "0 6 * * 9"})), 422, Some("schedule")),
        (Method::POST, lists.into(), Some(json!({"name": "x", "timezone": "Mars/Base"})), 422, Some("timezone")),
        (
            Method::POST,
            lists.into(),
            Some(json!({"name": "x", "categories": ["tin-tuc/the-thao"]})),
            422,
            Some("categories"),
        ),
        (Method::POST, lists.into(), Some(json!({"name": "x", "categories": "tin-tuc"})), 422, Some("categories")),
        (Method::POST, lists.into(), Some(json!({"name": "x", "double_opt_in": "yes"})), 422, Some("double_opt_in")),
        (
            Method::POST,
            lists.into(),
            Some(json!({"name": "x", "from_address": "a@b.vn\r\nBcc: c@d.vn"})),
            422,
            Some("from_address"),
        ),
        (Method::PATCH, list.into(), Some(json!({"language": "fr"})), 422, Some("language")),
        (Method::PATCH, list.into(), Some(json!({"slug": "Bad Slug"})), 422, Some("slug")),
        (Method::PATCH, list.into(), Some(json!({"colour": "red"})), 422, Some("colour")),
        (Method::PATCH, list.into(), Some(json!("name")), 422, None),
        (Method::PATCH, "/api/v1/lists/khong-co".into(), Some(json!({"name": "x"})), 404, None),
        (Method::POST, subscribers.into(), Some(json!({"email": "khong-phai-email"})), 422, Some("email")),
        (Method::POST, subscribers.into(), Some(json!({"email": "a@b.vn\r\nBcc: x@y.vn"})), 422, Some("email")),
        (Method::POST, subscribers.into(), Some(json!({"name": "Lan"})), 422, Some("email")),
        (Method::POST, subscribers.into(), Some(json!({"email": "a@b.vn", "lists": ["khong-co"]})), 422, Some("lists")),
        (Method::POST, subscribers.into(), Some(json!({"email": "a@b.vn", "status": "vip"})), 422, Some("status")),
        (
            Method::POST,
            subscribers.into(),
            Some(json!({"email": "a@b.vn", "attributes": [1]})),
            422,
            Some("attributes"),
        ),
        (Method::POST, subscribers.into(), Some(json!({"email": "a@b.vn", "language": "fr"})), 422, Some("language")),
        (Method::GET, format!("{subscribers}?status=vip"), None, 422, Some("status")),
        (Method::GET, format!("{subscribers}?list=khong-co"), None, 422, Some("list")),
        (Method::GET, format!("{subscribers}?limit=0"), None, 422, Some("limit")),
        (Method::GET, format!("{subscribers}?before=abc"), None, 422, Some("before")),
        (Method::GET, format!("{subscribers}?email=khong-phai-email"), None, 422, Some("email")),
        (Method::PATCH, subscriber.clone(), Some(json!({"email": "b@c.vn"})), 422, Some("email")),
        (Method::PATCH, subscriber.clone(), Some(json!({"status": 3})), 422, Some("status")),
        (Method::PATCH, subscriber.clone(), Some(json!({"lists": ["khong-co"]})), 422, Some("lists")),
        (Method::PATCH, "/api/v1/subscribers/999999".into(), Some(json!({"name": "x"})), 404, None),
        (Method::GET, "/api/v1/subscribers/abc".into(), None, 404, None),
        (Method::POST, format!("{subscribers}/import"), None, 422, Some("list")),
        (Method::POST, format!("{subscribers}/import?list=khong-co"), None, 422, Some("list")),
        (Method::POST, format!("{subscribers}/import?list=ban-tin-sang&mode=all"), None, 422, Some("mode")),
        (Method::GET, format!("{subscribers}/export?list=khong-co"), None, 422, Some("list")),
    ];
    for (method, path, body, status, field) in cases {
        let (got, answer) = call(&app, method.clone(), &path, body.clone()).await;
        assert_eq!(got, status, "{method} {path} {body:?}: {answer}");
        assert!(answer["error"].as_str().is_some_and(|e| !e.is_empty()), "{method} {path}: {answer}");
        assert_eq!(answer["field"].as_str(), field, "{method} {path} {body:?}: {answer}");
    }
    // Bodies that are not JSON at all, or not CSV with an email column.
    for (method, path) in [(Method::POST, lists), (Method::PATCH, list), (Method::POST, subscribers)] {
        let (status, answer) = raw(&app, method.clone(), path, "application/json", b"{\"name\": ".to_vec()).await;
        assert_eq!(status, 400, "{method} {path}: {answer}");
        assert!(answer["error"].as_str().unwrap().contains("malformed JSON"), "{answer}");
    }
    let (status, answer) = raw(&app, Method::PATCH, &subscriber, "application/json", b"nope".to_vec()).await;
    assert_eq!(status, 400, "{answer}");
    let import = "/api/v1/subscribers/import?list=ban-tin-sang";
    let (status, answer) = raw(&app, Method::POST, import, "text/csv", b"name,phone\nLan,0912\n".to_vec()).await;
    assert_eq!(status, 422, "{answer}");
    assert!(answer["error"].as_str().unwrap().contains("no email column"), "{answer}");

    // JSON bodies are small; a CSV import may be far larger than the 2 MB of the article API.
    let big_list = json!({"name": "x", "description": "x".repeat(100_000)});
    let (status, answer) = call(&app, Method::POST, lists, Some(big_list)).await;
    assert_eq!(status, 413, "{answer}");
    let mut big_csv = b"email,notes\nlan@example.vn,".to_vec();
    big_csv.resize(big_csv.len() + 3 * 1024 * 1024, b'x');
    let (status, report) = raw(&app, Method::POST, import, "text/csv", big_csv).await;
    assert_eq!((status, report["rows"].as_u64()), (200, Some(1)), "{report}");
});

both_backends!(every_list_and_subscriber_route_refuses_a_request_without_a_valid_token, |backend| async move {
    let Some(app) = TestApp::spawn(backend).await else { return };
    let routes: Vec<&str> = bantin::http::route_paths()
        .into_iter()
        .filter(|p| ["/api/v1/lists", "/api/v1/subscribers", "/api/v1/runs"].iter().any(|prefix| p.starts_with(prefix)))
        .collect();
    assert!(routes.len() >= 5, "{routes:?}");
    let mut refused = 0;
    for route in &routes {
        let path = route.replace("{slug}", "ban-tin-sang").replace("{id}", "1");
        for method in [Method::GET, Method::POST, Method::PATCH, Method::DELETE] {
            for auth in [None, Some("Bearer bnt_000000000000_nope".to_owned()), Some(format!("Bearer {}x", app.token))]
            {
                let mut request = app.client.request(method.clone(), format!("{}{path}", app.address));
                if let Some(auth) = &auth {
                    request = request.header("authorization", auth);
                }
                let response = request.json(&json!({"name": "x"})).send().await.unwrap();
                if response.status() == 405 {
                    continue;
                }
                assert_eq!(response.status(), 401, "{method} {path} with {auth:?}");
                refused += 1;
            }
        }
    }
    assert_eq!(refused, 16 * 3, "every method of every route was tried");
    assert!(app.store.lists().await.unwrap().is_empty(), "nothing was written");
});

both_backends!(a_subscriber_is_created_read_changed_and_erased, |backend| async move {
    let Some(app) = TestApp::spawn(backend).await else { return };
    create_list(&app, json!({"name": "Bản tin sáng", "double_opt_in": false})).await;
    create_list(&app, json!({"name": "Bản tin chiều", "double_opt_in": false})).await;
    let input = json!({
        "email": " Lan@Example.VN ", "name": "Nguyễn Thị Lan", "lists": ["ban-tin-sang"],
        "attributes": {"thành phố": "Bắc Giang"}
    });
    let response = app
        .client
        .post(format!("{}/api/v1/subscribers", app.address))
        .bearer_auth(&app.token)
        .json(&input)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 201);
    let location = response.headers()["location"].to_str().unwrap().to_owned();
    let created: Value = response.json().await.unwrap();
    let id = created["id"].as_i64().unwrap();
    assert_eq!(location, format!("/api/v1/subscribers/{id}"));
    assert_eq!(created["email"], "Lan@example.vn");
    assert_eq!(created["language"], "vi");
    // No list asks for double opt-in: active at once.
    assert_eq!(created["status"], "active");
    assert_eq!(created["subscriptions"][0]["list"], "ban-tin-sang");
    assert_eq!(created["subscriptions"][0]["status"], "active");
    assert_eq!(created["attributes"]["thành phố"], "Bắc Giang");

    let again = json!({"email": "lan@example.vn"});
    let (status, conflict) = call(&app, Method::POST, "/api/v1/subscribers", Some(again)).await;
    assert_eq!(status, 409, "{conflict}");
    assert_eq!(conflict["id"], id);
    assert_eq!(conflict["field"], "email");

    let (status, shown) = call(&app, Method::GET, &location, None).await;
    assert_eq!(status, 200);
    assert_eq!(shown, created);

    let patch = json!({"name": "Lan Nguyễn", "language": "en", "lists": ["ban-tin-chieu"]});
    let (status, changed) = call(&app, Method::PATCH, &location, Some(patch)).await;
    assert_eq!(status, 200, "{changed}");
    assert_eq!(changed["name"], "Lan Nguyễn");
    assert_eq!(changed["language"], "en");
    assert_eq!(changed["attributes"], created["attributes"]);
    let standing: Vec<(&str, &str)> = changed["subscriptions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| (s["list"].as_str().unwrap(), s["status"].as_str().unwrap()))
        .collect();
    assert_eq!(standing, [("ban-tin-chieu", "active"), ("ban-tin-sang", "unsubscribed")]);
    let (status, left) = call(&app, Method::PATCH, &location, Some(json!({"status": "unsubscribed"}))).await;
    assert_eq!(status, 200, "{left}");
    assert!(left["subscriptions"].as_array().unwrap().iter().all(|s| s["status"] == "unsubscribed"), "{left}");
    let (status, blocked) = call(&app, Method::PATCH, &location, Some(json!({"status": "blocklisted"}))).await;
    assert_eq!((status, blocked["status"].as_str()), (200, Some("blocklisted")));

    let (status, _) = call(&app, Method::DELETE, &location, None).await;
    assert_eq!(status, 204);
    let (status, _) = call(&app, Method::GET, &location, None).await;
    assert_eq!(status, 404);
    let (status, _) = call(&app, Method::DELETE, &location, None).await;
    assert_eq!(status, 404);
    let erased = bantin::domain::email::EmailAddress::parse("lan@example.vn").unwrap();
    assert!(app.store.subscriber_by_email(&erased).await.unwrap().is_none());

    let subject = format!("subscriber:{id}");
    let actions: Vec<(String, String)> = audit_actions(&app)
        .await
        .into_iter()
        .filter(|(_, _, s)| *s == subject)
        .map(|(_, action, _)| (action, subject.clone()))
        .collect();
    let names: Vec<&str> = actions.iter().map(|(a, _)| a.as_str()).collect();
    assert_eq!(
        names,
        ["subscriber.create", "subscriber.update", "subscriber.update", "subscriber.update", "subscriber.delete"]
    );
    let log = app.store.audit_log(None, 100).await.unwrap();
    assert!(log.iter().all(|e| !e.detail.to_string().contains("example.vn")), "no address in the audit log");
});

both_backends!(search_filters_and_walks_every_page_once, |backend| async move {
    let Some(app) = TestApp::spawn(backend).await else { return };
    // Double opt-in, so the unconfirmed stay unconfirmed.
    create_list(&app, json!({"name": "Bản tin sáng"})).await;
    create_list(&app, json!({"name": "Bản tin chiều"})).await;
    let mut ids = Vec::new();
    for i in 0..23 {
        let list = if i % 3 == 0 { "ban-tin-sang" } else { "ban-tin-chieu" };
        let status = if i % 2 == 0 { "active" } else { "unconfirmed" };
        let body = json!({"email": format!("nguoi{i}@example.vn"), "name": format!("Nguyễn Văn {i}"),
                          "lists": [list], "status": status});
        let (code, created) = call(&app, Method::POST, "/api/v1/subscribers", Some(body)).await;
        assert_eq!(code, 201, "{created}");
        ids.push(created["id"].as_i64().unwrap());
    }
    for (email, name) in [("giam-gia@example.vn", "Giảm 50% giá"), ("ma-so@example.vn", "Mã_số 7")] {
        let (code, created) =
            call(&app, Method::POST, "/api/v1/subscribers", Some(json!({"email": email, "name": name}))).await;
        assert_eq!(code, 201, "{created}");
        ids.push(created["id"].as_i64().unwrap());
    }

    let seen: Vec<i64> =
        walk(&app, "/api/v1/subscribers?limit=4").await.iter().map(|s| s["id"].as_i64().unwrap()).collect();
    let mut newest_first = ids.clone();
    newest_first.sort_unstable_by(|a, b| b.cmp(a));
    assert_eq!(seen, newest_first, "every subscriber once, newest first");

    let emails = |page: &Value| -> Vec<String> {
        page["subscribers"].as_array().unwrap().iter().map(|s| s["email"].as_str().unwrap().to_owned()).collect()
    };
    let search = |query: &str| format!("/api/v1/subscribers?{query}");
    let (_, page) = call(&app, Method::GET, &search("q=%25"), None).await;
    assert_eq!(emails(&page), ["giam-gia@example.vn"], "% is taken literally");
    let (_, page) = call(&app, Method::GET, &search("q=50%25"), None).await;
    assert_eq!(emails(&page), ["giam-gia@example.vn"]);
    let (_, page) = call(&app, Method::GET, &search("q=_"), None).await;
    assert_eq!(emails(&page), ["ma-so@example.vn"], "_ is taken literally");
    let (_, page) = call(&app, Method::GET, &search("q=%C3%A3_s"), None).await;
    assert_eq!(emails(&page), ["ma-so@example.vn"]);
    let (_, page) = call(&app, Method::GET, &search("q=NGUY%E1%BB%84N+V%C4%82N+1"), None).await;
    let mut found = emails(&page);
    found.sort();
    let mut expected: Vec<String> =
        [1, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19].iter().map(|i| format!("nguoi{i}@example.vn")).collect();
    expected.sort();
    assert_eq!(found, expected, "names match in any case");
    let (_, page) = call(&app, Method::GET, &search("email=NGUOI7@example.vn"), None).await;
    assert_eq!(emails(&page), ["nguoi7@example.vn"]);
    assert_eq!(page["next"], Value::Null);
    let (_, page) = call(&app, Method::GET, &search("email=nguoi7@example.vn&status=active"), None).await;
    assert!(emails(&page).is_empty(), "nguoi7 is unconfirmed");

    // Filters combine, and `next` keeps them.
    let (_, page) = call(&app, Method::GET, &search("list=ban-tin-sang&status=active&limit=2"), None).await;
    let next = page["next"].as_str().unwrap();
    assert!(next.contains("list=ban-tin-sang") && next.contains("status=active"), "{next}");
    let found = walk(&app, &search("list=ban-tin-sang&status=active&limit=2")).await;
    let mut matched: Vec<&str> = found.iter().map(|s| s["email"].as_str().unwrap()).collect();
    matched.sort();
    // i % 3 == 0 (the morning list) and i % 2 == 0 (active): 0, 6, 12, 18.
    assert_eq!(matched, ["nguoi0@example.vn", "nguoi12@example.vn", "nguoi18@example.vn", "nguoi6@example.vn"]);
});

/// Every subscriber from `first` on, following `next` to the last page.
async fn walk(app: &TestApp, first: &str) -> Vec<Value> {
    let mut found = Vec::new();
    let mut next = Some(first.to_owned());
    let mut pages = 0;
    while let Some(path) = next {
        let (status, page) = call(app, Method::GET, &path, None).await;
        assert_eq!(status, 200, "{page}");
        found.extend(page["subscribers"].as_array().unwrap().iter().cloned());
        next = page["next"].as_str().map(str::to_owned);
        pages += 1;
        assert!(pages < 50, "pagination does not end");
    }
    found
}

/// A CSV export as rows of (email, name, status, lists).
fn rows(csv_text: &str) -> Vec<(String, String, String, String)> {
    let mut reader = csv::Reader::from_reader(csv_text.as_bytes());
    let headers = reader.headers().unwrap().clone();
    assert_eq!(headers.iter().collect::<Vec<_>>(), bantin::audience::csv::EXPORT_COLUMNS);
    let mut rows: Vec<_> =
        reader.records().map(|r| r.unwrap()).map(|r| (r[0].into(), r[1].into(), r[3].into(), r[4].into())).collect();
    rows.sort();
    rows
}

both_backends!(a_messy_csv_import_keeps_the_good_rows_and_reports_the_rest, |backend| async move {
    let Some(app) = TestApp::spawn(backend).await else { return };
    create_list(&app, json!({"name": "Bản tin sáng"})).await;
    create_list(&app, json!({"name": "Bản tin chiều"})).await;
    let mut file = Vec::new();
    file.extend_from_slice("\u{feff}Email,Họ tên,Điện thoại\r\n".as_bytes());
    file.extend_from_slice("lan@example.vn,\"Nguyễn, Thị Lan\",0912\r\n".as_bytes());
    file.extend_from_slice("khong-hop-le,Ai đó,0914\r\n".as_bytes());
    // "Phùng Hoa" saved as windows-1258/latin-1: ù is the single byte 0xF9.
    file.extend_from_slice(b"hoa@example.vn,Ph\xf9ng Hoa,0915\r\n");
    file.extend_from_slice("\"minh@example.vn\",\"Trần\r\nVăn Minh\",0913\r\n".as_bytes());
    file.extend_from_slice("LAN@example.vn,Lan again,0916\r\n".as_bytes());
    let import = "/api/v1/subscribers/import?list=ban-tin-sang&mode=confirmed";
    let (status, report) = raw(&app, Method::POST, import, "text/csv", file).await;
    assert_eq!(status, 200, "{report}");
    assert_eq!(report["rows"], 5);
    assert_eq!(report["created"], 2);
    assert_eq!(report["failed"], 2);
    assert_eq!(report["duplicates"], 1);
    assert_eq!(report["confirmations_sent"], 0);
    assert!(report["warnings"][0].as_str().unwrap().contains("Điện thoại"), "{report}");
    // Lines of the CRLF file as an editor shows them (the csv crate alone counts one
    // too few after CRLF, rust-csv issue #395).
    let errors = report["errors"].as_array().unwrap();
    assert_eq!(errors[0]["line"], 3, "{report}");
    assert!(errors[0]["error"].as_str().unwrap().starts_with("email:"), "{report}");
    assert_eq!(errors[1]["line"], 4, "{report}");
    assert!(errors[1]["error"].as_str().unwrap().contains("UTF-8"), "{report}");
    let lf = "email,name\n\"tam@example.vn\",\"Lê\nTâm\"\nsai-dia-chi,X\n";
    let (status, report) = raw(&app, Method::POST, import, "text/csv", lf.as_bytes().to_vec()).await;
    assert_eq!(status, 200, "{report}");
    assert_eq!(report["errors"], json!([{"line": 4, "error": "email: address is missing the @"}]));
    let (status, removed) = call(&app, Method::GET, "/api/v1/subscribers?email=tam@example.vn", None).await;
    assert_eq!(status, 200);
    let tam = format!("/api/v1/subscribers/{}", removed["subscribers"][0]["id"]);
    assert_eq!(call(&app, Method::DELETE, &tam, None).await.0, 204);

    let response = app
        .client
        .get(format!("{}/api/v1/subscribers/export?list=ban-tin-sang", app.address))
        .bearer_auth(&app.token)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert!(response.headers()["content-type"].to_str().unwrap().starts_with("text/csv"));
    let disposition = response.headers()["content-disposition"].to_str().unwrap().to_owned();
    assert_eq!(disposition, "attachment; filename=\"subscribers-ban-tin-sang.csv\"");
    let exported = response.text().await.unwrap();
    let expected = vec![
        ("lan@example.vn".to_owned(), "Nguyễn, Thị Lan".to_owned(), "active".to_owned(), "ban-tin-sang".to_owned()),
        ("minh@example.vn".to_owned(), "Trần Văn Minh".to_owned(), "active".to_owned(), "ban-tin-sang".to_owned()),
    ];
    assert_eq!(rows(&exported), expected);

    // The export imports again: into a second list, the same people, merged.
    let again = "/api/v1/subscribers/import?list=ban-tin-chieu&mode=confirmed";
    let (status, report) = raw(&app, Method::POST, again, "text/csv", exported.into_bytes()).await;
    assert_eq!(status, 200, "{report}");
    assert_eq!(
        (report["rows"].as_u64(), report["merged"].as_u64(), report["failed"].as_u64()),
        (Some(2), Some(2), Some(0))
    );
    assert_eq!(report["warnings"], json!([]), "our own columns are known");
    let (_, all) = call(&app, Method::GET, "/api/v1/subscribers?list=ban-tin-chieu", None).await;
    assert_eq!(all["subscribers"].as_array().unwrap().len(), 2);
    let (status, everything) = call(&app, Method::GET, "/api/v1/subscribers/export", None).await;
    assert_eq!(status, 200, "CSV, not JSON: {everything}");

    let imports: Vec<_> = audit_actions(&app).await.into_iter().filter(|(_, a, _)| a == "subscribers.import").collect();
    assert_eq!(imports.len(), 3);
});

both_backends!(an_export_of_thousands_streams_every_row_once_with_formulas_guarded, |backend| async move {
    let Some(app) = TestApp::spawn(backend).await else { return };
    create_list(&app, json!({"name": "Bản tin sáng"})).await;
    // More rows than one export page (2,000), so the body is made of several.
    let mut file = String::from("email,name\n");
    for i in 0..4_321 {
        file.push_str(&format!("doc.gia.{i}@xa{}.example.vn,Bạn đọc {i}\n", i % 7));
    }
    file.push_str("ke.xau@example.vn,\"=HYPERLINK(\"\"http://x.example\"\",\"\"bấm\"\")\"\n");
    let import = "/api/v1/subscribers/import?list=ban-tin-sang&mode=confirmed";
    let (status, report) = raw(&app, Method::POST, import, "text/csv", file.into_bytes()).await;
    assert_eq!((status, report["created"].as_u64()), (200, Some(4_322)), "{report}");

    let (status, exported) = {
        let response = app
            .client
            .get(format!("{}/api/v1/subscribers/export", app.address))
            .bearer_auth(&app.token)
            .send()
            .await
            .unwrap();
        (response.status(), response.text().await.unwrap())
    };
    assert_eq!(status, 200);
    let rows = rows(&exported);
    assert_eq!(rows.len(), 4_322);
    let mut emails: Vec<&str> = rows.iter().map(|r| r.0.as_str()).collect();
    emails.dedup();
    assert_eq!(emails.len(), 4_322, "every subscriber exactly once across the pages");
    let formula = rows.iter().find(|r| r.0 == "ke.xau@example.vn").unwrap();
    assert_eq!(formula.1, "'=HYPERLINK(\"http://x.example\",\"bấm\")", "a spreadsheet shows it as text");

    // Imported again (here as a new address), the guard comes off.
    let back = format!("email,name\nke.xau.2@example.vn,\"{}\"\n", formula.1.replace('"', "\"\""));
    let (status, report) = raw(&app, Method::POST, import, "text/csv", back.into_bytes()).await;
    assert_eq!((status, report["created"].as_u64()), (200, Some(1)), "{report}");
    let (_, found) = call(&app, Method::GET, "/api/v1/subscribers?email=ke.xau.2@example.vn", None).await;
    assert_eq!(found["subscribers"][0]["name"], "=HYPERLINK(\"http://x.example\",\"bấm\")");

    let exports: Vec<_> = audit_actions(&app).await.into_iter().filter(|(_, a, _)| a == "subscribers.export").collect();
    assert_eq!(exports.len(), 1, "recorded once the body was read to the end");
});

/// The `.eml` files in the app's outbox, with quoted-printable soft line breaks undone so
/// links read whole.
fn outbox(app: &TestApp) -> Vec<String> {
    let dir = app.db.dir.path().join("data/outbox");
    let Ok(entries) = std::fs::read_dir(dir) else { return Vec::new() };
    entries
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "eml"))
        .map(|p| std::fs::read_to_string(p).unwrap().replace("=\r\n", ""))
        .collect()
}

async fn wait_for_mail(app: &TestApp, count: usize) -> Vec<String> {
    for _ in 0..100 {
        let mail = outbox(app);
        if mail.len() >= count {
            return mail;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("expected {count} message(s) in the outbox, found {}", outbox(app).len());
}

both_backends!(double_opt_in_mails_a_confirmation_link, |backend| async move {
    let Some(app) = TestApp::spawn(backend).await else { return };
    create_list(&app, json!({"name": "Bản tin sáng"})).await;
    let body = json!({"email": "lan@example.vn", "name": "Nguyễn Thị Lan", "lists": ["ban-tin-sang"]});
    let (status, created) = call(&app, Method::POST, "/api/v1/subscribers", Some(body)).await;
    assert_eq!(status, 201, "{created}");
    assert_eq!(created["status"], "unconfirmed");
    assert_eq!(created["subscriptions"][0]["status"], "unconfirmed");
    let mail = wait_for_mail(&app, 1).await;
    assert!(mail[0].contains("lan@example.vn"), "{}", mail[0]);
    assert!(mail[0].contains("https://tin.hiephoa.example/confirm/"), "{}", mail[0]);

    // An admin may confirm them: the waiting subscription is confirmed too.
    let path = format!("/api/v1/subscribers/{}", created["id"]);
    let (status, confirmed) = call(&app, Method::PATCH, &path, Some(json!({"status": "active"}))).await;
    assert_eq!(status, 200, "{confirmed}");
    assert_eq!(confirmed["subscriptions"][0]["status"], "active");
    assert!(confirmed["confirmed_at"].is_string());

    // Said to be active: no email.
    let body = json!({"email": "minh@example.vn", "lists": ["ban-tin-sang"], "status": "active"});
    let (status, created) = call(&app, Method::POST, "/api/v1/subscribers", Some(body)).await;
    assert_eq!((status, created["status"].as_str()), (201, Some("active")));
    assert!(created["confirmed_at"].is_string());

    // An opt-in import mails each new address.
    let import = "/api/v1/subscribers/import?list=ban-tin-sang";
    let (status, report) = raw(&app, Method::POST, import, "text/csv", b"email\nhoa@example.vn\n".to_vec()).await;
    assert_eq!(status, 200, "{report}");
    assert_eq!(report["confirmations_sent"], 1);
    let mail = wait_for_mail(&app, 2).await;
    assert!(mail.iter().any(|m| m.contains("hoa@example.vn")));
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(outbox(&app).len(), 2, "nothing was mailed to the active subscriber");
});
