//! The admin web UI against the real app on port 0, on both backends: anonymous requests
//! on every admin route the router has, login and its throttling, CSRF, escaping of
//! hostile names, lists, subscribers, CSV import and export, tokens, the audit log, and
//! `bantin admin create`.

mod common;

use std::process::{Command, Stdio};

use bantin::config::Language;
use bantin::domain::audience::SubscriberStatus;
use bantin::domain::email::EmailAddress;
use bantin::store::audience::NewSubscriber;
use common::admin::{Browser, PASSWORD, Page, USERNAME, add_admin, logged_in};
use common::{Backend, TestApp};
use reqwest::StatusCode;
use reqwest::header::SET_COOKIE;
use serde_json::Map;

const SCRIPT: &str = "<script>alert(1)</script>";
const IMG: &str = "\"><img src=x onerror=alert(1)>";

async fn with_admin(backend: Backend) -> Option<TestApp> {
    let app = TestApp::spawn(backend).await?;
    add_admin(&app).await;
    Some(app)
}

fn subscriber(email: &str, name: &str) -> NewSubscriber {
    NewSubscriber {
        email: EmailAddress::parse(email).unwrap(),
        name: name.into(),
        language: Language::Vi,
        status: SubscriberStatus::Active,
        attributes: Map::new(),
        list_ids: Vec::new(),
    }
}

async fn create_list(browser: &mut Browser, name: &str, slug: &str) -> Page {
    let csrf = browser.csrf().await;
    browser
        .post(
            "/admin/lists",
            &[("csrf", &csrf), ("name", name), ("slug", slug), ("schedule", "daily 06:00"), ("double_opt_in", "on")],
        )
        .await
}

both_backends!(every_admin_route_refuses_anonymous_requests, |backend| async move {
    let Some(app) = with_admin(backend).await else { return };
    let mut admin = logged_in(&app).await;
    assert_eq!(create_list(&mut admin, "Bản tin sáng", "ban-tin-sang").await.status, StatusCode::SEE_OTHER);
    let id = app.store.create_subscriber(&subscriber("lan@example.vn", "Lan"), chrono::Utc::now()).await.unwrap();
    let tokens_before = app.store.api_tokens().await.unwrap();
    let audit_before = app.store.audit_log(None, 100).await.unwrap().len();

    let paths: Vec<String> = bantin::http::route_paths()
        .into_iter()
        .filter(|p| p.starts_with("/admin") && *p != "/admin/login")
        .map(|p| p.replace("{slug}", "ban-tin-sang").replace("{id}", &id.to_string()))
        .collect();
    assert!(paths.len() >= 12, "{paths:?}");
    for cookie in [None, Some("forged-session-value".to_owned())] {
        let mut anonymous = Browser::new(&app);
        anonymous.cookie = cookie;
        for path in &paths {
            let page = anonymous.get(path).await;
            assert!(
                (page.status == StatusCode::SEE_OTHER && page.location() == "/admin/login")
                    || page.status == StatusCode::METHOD_NOT_ALLOWED,
                "GET {path}: {} {}",
                page.status,
                page.body
            );
            let fields = [("csrf", "x"), ("name", "Hijacked"), ("status", "blocklisted"), ("language", "vi")];
            let page = anonymous.post(path, &fields).await;
            assert!(
                (page.status == StatusCode::SEE_OTHER && page.location() == "/admin/login")
                    || page.status == StatusCode::FORBIDDEN
                    || page.status == StatusCode::METHOD_NOT_ALLOWED,
                "POST {path}: {} {}",
                page.status,
                page.body
            );
        }
    }
    assert!(app.store.list("ban-tin-sang").await.unwrap().is_some());
    let detail = app.store.subscriber(id).await.unwrap().expect("the subscriber is still there");
    assert_eq!(detail.subscriber.status, SubscriberStatus::Active);
    assert_eq!(detail.subscriber.name, "Lan");
    assert_eq!(app.store.api_tokens().await.unwrap(), tokens_before);
    assert_eq!(app.store.audit_log(None, 100).await.unwrap().len(), audit_before, "no action was recorded");
});

both_backends!(login_logout_and_the_session_cookie, |backend| async move {
    let Some(app) = with_admin(backend).await else { return };
    let mut browser = Browser::new(&app);
    let page = browser.get("/admin/login").await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(page.body.contains("name=\"password\""));

    let wrong_password = browser.login(USERNAME, "not the password").await;
    let unknown_user = browser.login("nobody", PASSWORD).await;
    for page in [&wrong_password, &unknown_user] {
        assert_eq!(page.status, StatusCode::UNAUTHORIZED);
        assert!(page.headers.get(SET_COOKIE).is_none());
    }
    let message = |p: &Page| p.body.split("role=\"alert\">").nth(1).unwrap().split('<').next().unwrap().to_owned();
    assert_eq!(message(&wrong_password), message(&unknown_user), "the same answer for both");
    assert!(browser.cookie.is_none());

    let page = browser.login(USERNAME, PASSWORD).await;
    assert_eq!(page.status, StatusCode::SEE_OTHER);
    assert_eq!(page.location(), "/admin");
    let set_cookie = page.headers.get(SET_COOKIE).unwrap().to_str().unwrap().to_owned();
    for attribute in ["HttpOnly", "SameSite=Strict", "Path=/admin", "Secure", "Max-Age=43200"] {
        assert!(set_cookie.contains(attribute), "{set_cookie}");
    }
    let cookie = browser.cookie.clone().unwrap();
    assert!(cookie.len() >= 43, "256 bits of randomness: {cookie}");

    let page = browser.get("/admin").await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(page.body.contains(USERNAME));
    assert_eq!(page.headers.get("x-frame-options").unwrap(), "DENY");

    // Logout is a form like any other: no token, no logout.
    let page = browser.post("/admin/logout", &[]).await;
    assert_eq!(page.status, StatusCode::FORBIDDEN);
    assert_eq!(browser.get("/admin").await.status, StatusCode::OK);
    let csrf = browser.csrf().await;
    let page = browser.post("/admin/logout", &[("csrf", &csrf)]).await;
    assert_eq!(page.status, StatusCode::SEE_OTHER);
    assert!(browser.cookie.is_none(), "the cookie is cleared");
    browser.cookie = Some(cookie);
    let page = browser.get("/admin").await;
    assert_eq!(page.status, StatusCode::SEE_OTHER, "the old session is gone on the server too");

    let actions: Vec<String> = app.store.audit_log(None, 10).await.unwrap().into_iter().map(|e| e.action).collect();
    assert_eq!(actions, ["logout", "login"]);
});

both_backends!(login_is_throttled, |backend| async move {
    let Some(app) = with_admin(backend).await else { return };
    let mut browser = Browser::new(&app);
    for attempt in 1..=5 {
        let page = browser.login(USERNAME, "wrong password").await;
        assert_eq!(page.status, StatusCode::UNAUTHORIZED, "attempt {attempt}");
    }
    let page = browser.login(USERNAME, PASSWORD).await;
    assert_eq!(page.status, StatusCode::TOO_MANY_REQUESTS, "even the right password waits");
    assert!(browser.cookie.is_none());
    let page = browser.login("someone-else", "wrong password").await;
    assert_eq!(page.status, StatusCode::TOO_MANY_REQUESTS, "the same address is throttled too");
});

both_backends!(posts_need_the_session_csrf_token, |backend| async move {
    let Some(app) = with_admin(backend).await else { return };
    let mut browser = logged_in(&app).await;
    let csrf = browser.csrf().await;
    let tokens = app.store.api_tokens().await.unwrap().len();
    for bad in [None, Some("wrong"), Some("")] {
        let mut fields = vec![("name", "Bản tin tối"), ("slug", "ban-tin-toi")];
        if let Some(bad) = bad {
            fields.push(("csrf", bad));
        }
        let page = browser.post("/admin/lists", &fields).await;
        assert_eq!(page.status, StatusCode::FORBIDDEN, "{bad:?}");
        let page = browser.post("/admin/tokens", &fields).await;
        assert_eq!(page.status, StatusCode::FORBIDDEN, "{bad:?}");
        let upload = match bad {
            Some(bad) => vec![("csrf", bad), ("list", "ban-tin-toi"), ("mode", "confirmed")],
            None => vec![("list", "ban-tin-toi"), ("mode", "confirmed")],
        };
        let page = browser.upload("/admin/import", &upload, ("a.csv", b"email\nlan@example.vn\n")).await;
        assert_eq!(page.status, StatusCode::FORBIDDEN, "{bad:?}");
    }
    assert!(app.store.lists().await.unwrap().is_empty());
    assert_eq!(app.store.api_tokens().await.unwrap().len(), tokens);
    let page = browser.post("/admin/lists", &[("csrf", &csrf), ("name", "Bản tin tối"), ("slug", "ban-tin-toi")]).await;
    assert_eq!(page.status, StatusCode::SEE_OTHER);
    assert_eq!(app.store.lists().await.unwrap().len(), 1);
});

both_backends!(hostile_names_are_escaped_on_every_page, |backend| async move {
    let Some(app) = with_admin(backend).await else { return };
    let mut browser = logged_in(&app).await;
    let page = create_list(&mut browser, SCRIPT, "xss").await;
    assert_eq!(page.status, StatusCode::SEE_OTHER, "{}", page.body);
    let list = app.store.list("xss").await.unwrap().unwrap();
    assert_eq!(list.name, SCRIPT, "stored as typed, escaped when shown");
    let mut hostile = subscriber("xss@example.vn", IMG);
    hostile.list_ids = vec![list.id];
    let id = app.store.create_subscriber(&hostile, chrono::Utc::now()).await.unwrap();
    let mut named_script = subscriber("script@example.vn", SCRIPT);
    named_script.attributes.insert("note".into(), SCRIPT.into());
    app.store.create_subscriber(&named_script, chrono::Utc::now()).await.unwrap();
    let csrf = browser.csrf().await;
    browser.post("/admin/tokens", &[("csrf", &csrf), ("name", IMG)]).await;

    for path in [
        "/admin".to_owned(),
        "/admin/lists".to_owned(),
        "/admin/lists/xss/edit".to_owned(),
        "/admin/lists/xss/delete".to_owned(),
        "/admin/subscribers".to_owned(),
        "/admin/subscribers?list=xss".to_owned(),
        format!("/admin/subscribers?q={}", urlencode(SCRIPT)),
        format!("/admin/subscribers/{id}"),
        format!("/admin/subscribers/{id}/delete"),
        "/admin/import".to_owned(),
        "/admin/export".to_owned(),
        "/admin/tokens".to_owned(),
        "/admin/audit".to_owned(),
    ] {
        let page = browser.get(&path).await;
        assert_eq!(page.status, StatusCode::OK, "{path}");
        assert!(!page.body.contains("<script>alert"), "{path}: {}", page.body);
        assert!(!page.body.contains("<img src=x"), "{path}");
    }
    let page = browser.get(&format!("/admin/subscribers/{id}")).await;
    assert!(page.body.contains("&quot;&gt;&lt;img src=x onerror=alert(1)&gt;"), "{}", page.body);
    let page = browser.get("/admin/lists").await;
    assert!(page.body.contains("&lt;script&gt;alert(1)"), "{}", page.body);
});

fn urlencode(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

both_backends!(import_search_and_export, |backend| async move {
    let Some(app) = with_admin(backend).await else { return };
    let mut browser = logged_in(&app).await;
    let page = create_list(&mut browser, "Bản tin sáng", "ban-tin-sang").await;
    assert_eq!(page.location(), "/admin/lists/ban-tin-sang/edit");
    let page = browser.get("/admin/lists/ban-tin-sang/edit").await;
    assert_eq!(page.body.matches("<li>").count(), 5, "the next five runs: {}", page.body);

    let csv = "\u{feff}Email,Name,Favourite colour\n\
               lan@example.vn,Lan Giảm 50%,xanh\n\
               not-an-address,Bad,đỏ\n\
               minh@example.vn,Minh_Anh,vàng\n\
               LAN@example.vn,Lan again,tím\n";
    let csrf = browser.csrf().await;
    let fields = [("csrf", csrf.as_str()), ("list", "ban-tin-sang"), ("mode", "confirmed")];
    let page = browser.upload("/admin/import", &fields, ("people.csv", csv.as_bytes())).await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.body);
    assert!(page.body.contains("4 rows: 2 new, 0 merged, 1 duplicates in the file, 1 failed"), "{}", page.body);
    assert!(page.body.contains("Favourite colour"), "the unknown column is reported");
    assert!(page.body.contains("<td class=\"num\">3</td><td>email: address"), "line 3 is named: {}", page.body);

    let page = browser
        .upload(
            "/admin/import",
            &[("csrf", &csrf), ("list", "ban-tin-sang"), ("mode", "confirmed")],
            ("x.csv", b"name\nLan\n"),
        )
        .await;
    assert_eq!(page.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(page.body.contains("no email column"), "{}", page.body);
    let page = browser
        .upload(
            "/admin/import",
            &[("csrf", &csrf), ("list", "missing"), ("mode", "confirmed")],
            ("x.csv", b"email\na@b.vn\n"),
        )
        .await;
    assert_eq!(page.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(page.body.contains("list: choose the list"), "{}", page.body);

    // `%` and `_` are taken literally.
    let page = browser.get("/admin/subscribers?q=%25").await;
    assert!(page.body.contains("lan@example.vn") && !page.body.contains("minh@example.vn"), "{}", page.body);
    let page = browser.get("/admin/subscribers?q=_").await;
    assert!(page.body.contains("minh@example.vn") && !page.body.contains("lan@example.vn"), "{}", page.body);
    let page = browser.get("/admin/subscribers?status=vip").await;
    assert_eq!(page.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(page.body.contains("status"), "{}", page.body);

    let page = browser.get("/admin/export.csv?list=ban-tin-sang").await;
    assert_eq!(page.status, StatusCode::OK);
    assert_eq!(page.headers.get("content-type").unwrap(), "text/csv; charset=utf-8");
    let disposition = page.headers.get("content-disposition").unwrap().to_str().unwrap();
    assert!(disposition.starts_with("attachment; filename=\"subscribers-ban-tin-sang-"), "{disposition}");
    let lines: Vec<&str> = page.body.lines().collect();
    assert_eq!(lines.len(), 3, "{}", page.body);
    assert!(lines[0].starts_with("email,name,"));
    assert!(page.body.contains("lan@example.vn,Lan Giảm 50%,vi,active,ban-tin-sang"), "{}", page.body);
    assert!(page.body.contains("minh@example.vn,Minh_Anh"));
    assert_eq!(browser.get("/admin/export.csv").await.body.lines().count(), 3);

    let page = browser.get("/admin/audit").await;
    for action in ["subscribers.export", "subscribers.import", "list.create", "login"] {
        assert!(page.body.contains(action), "{action}: {}", page.body);
    }
});

both_backends!(subscriber_pages_paginate_edit_blocklist_and_erase, |backend| async move {
    let Some(app) = with_admin(backend).await else { return };
    let mut browser = logged_in(&app).await;
    create_list(&mut browser, "Bản tin sáng", "ban-tin-sang").await;
    let now = chrono::Utc::now();
    let rows: Vec<NewSubscriber> =
        (1..=120).map(|i| subscriber(&format!("doc-gia-{i:03}@example.vn"), &format!("Độc giả {i}"))).collect();
    app.store.merge_subscribers(&rows, bantin::domain::audience::SubscriptionStatus::Active, now).await.unwrap();

    let mut seen = Vec::new();
    let mut path = "/admin/subscribers".to_owned();
    loop {
        let page = browser.get(&path).await;
        assert_eq!(page.status, StatusCode::OK);
        let on_page: Vec<String> =
            page.body.match_indices("doc-gia-").map(|(i, _)| page.body[i..i + 11].to_owned()).collect();
        assert!(on_page.len() <= 50);
        seen.extend(on_page);
        match page.body.split("rel=\"next\"").next().and_then(|head| head.rsplit("href=\"").next()) {
            Some(href) if page.body.contains("rel=\"next\"") => {
                path = href.split('"').next().unwrap().replace("&amp;", "&").replace("&#x2f;", "/")
            }
            _ => break,
        }
    }
    assert_eq!(seen.len(), 120, "every subscriber once");
    assert_eq!(seen[0], "doc-gia-120", "newest first");
    seen.dedup();
    assert_eq!(seen.len(), 120);

    let found = app.store.subscriber_by_email(&EmailAddress::parse("doc-gia-007@example.vn").unwrap()).await.unwrap();
    let id = found.unwrap().subscriber.id;
    let path = format!("/admin/subscribers/{id}");
    let csrf = browser.csrf().await;
    let edit = |attributes: &'static str| {
        vec![
            ("csrf", csrf.clone()),
            ("name", "Bảy".to_owned()),
            ("language", "en".to_owned()),
            ("status", "active".to_owned()),
            ("attributes", attributes.to_owned()),
            ("lists", "ban-tin-sang".to_owned()),
        ]
    };
    let fields = edit("{not json");
    let fields: Vec<(&str, &str)> = fields.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let page = browser.post(&path, &fields).await;
    assert_eq!(page.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(page.body.contains("attributes: is not valid JSON"), "{}", page.body);
    let fields = edit(r#"{"city": "Bắc Giang"}"#);
    let fields: Vec<(&str, &str)> = fields.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let page = browser.post(&path, &fields).await;
    assert_eq!(page.status, StatusCode::SEE_OTHER, "{}", page.body);
    let detail = app.store.subscriber(id).await.unwrap().unwrap();
    assert_eq!(detail.subscriber.name, "Bảy");
    assert_eq!(detail.subscriber.language, "en");
    assert_eq!(detail.subscriber.attributes["city"], "Bắc Giang");
    assert_eq!(detail.subscriptions.len(), 1);
    assert_eq!(detail.subscriptions[0].list, "ban-tin-sang");

    let page = browser.post(&format!("{path}/blocklist"), &[("csrf", &csrf)]).await;
    assert_eq!(page.status, StatusCode::SEE_OTHER);
    let detail = app.store.subscriber(id).await.unwrap().unwrap();
    assert_eq!(detail.subscriber.status, SubscriberStatus::Blocklisted);

    assert_eq!(browser.get(&format!("{path}/delete")).await.status, StatusCode::OK);
    let page = browser.post(&format!("{path}/delete"), &[("csrf", &csrf)]).await;
    assert_eq!(page.status, StatusCode::SEE_OTHER);
    assert!(app.store.subscriber(id).await.unwrap().is_none());
    assert_eq!(browser.get(&path).await.status, StatusCode::NOT_FOUND);
    assert_eq!(browser.get("/admin/subscribers/abc").await.status, StatusCode::BAD_REQUEST);

    let log = app.store.audit_log(None, 10).await.unwrap();
    let actions: Vec<&str> = log.iter().map(|e| e.action.as_str()).collect();
    assert_eq!(actions[..3], ["subscriber.delete", "subscriber.blocklist", "subscriber.update"]);
    assert!(log.iter().all(|e| !e.detail.to_string().contains("doc-gia-007")), "no erased address in the log");
});

both_backends!(lists_tokens_and_dashboard, |backend| async move {
    let Some(app) = with_admin(backend).await else { return };
    let mut browser = logged_in(&app).await;
    let csrf = browser.csrf().await;
    let page = browser.post("/admin/lists", &[("csrf", &csrf), ("name", "Sáng"), ("schedule", "0 6 * * 9")]).await;
    assert_eq!(page.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(page.body.contains("schedule:"), "{}", page.body);
    assert!(page.body.contains("value=\"Sáng\""), "what was typed is kept");
    assert_eq!(create_list(&mut browser, "Sáng", "sang").await.status, StatusCode::SEE_OTHER);
    let page = create_list(&mut browser, "Sáng nữa", "sang").await;
    assert_eq!(page.status, StatusCode::CONFLICT);

    let page = browser
        .post(
            "/admin/lists/sang/edit",
            &[
                ("csrf", &csrf),
                ("name", "Tin sáng"),
                ("slug", "tin-sang"),
                ("schedule", "weekly mon 07:00"),
                ("timezone", "Asia/Ho_Chi_Minh"),
                ("language", "en"),
            ],
        )
        .await;
    assert_eq!(page.location(), "/admin/lists/tin-sang/edit");
    let list = app.store.list("tin-sang").await.unwrap().unwrap();
    assert_eq!((list.name.as_str(), list.schedule.as_str(), list.language.as_str()), ("Tin sáng", "0 7 * * Mon", "en"));
    assert!(!list.double_opt_in, "an unticked box is off");

    let page = browser.get("/admin").await;
    assert_eq!(page.body.matches("class=\"bar\"").count(), 30, "one bar per day");

    let page = browser.post("/admin/tokens", &[("csrf", &csrf), ("name", "CMS")]).await;
    assert_eq!(page.status, StatusCode::OK);
    let token = page.body.split("id=\"new-token\">").nth(1).unwrap().split('<').next().unwrap().to_owned();
    assert!(token.starts_with("bnt_"));
    let api = |token: String| {
        let client = app.client.clone();
        let url = format!("{}/api/v1/articles/none", app.address);
        async move { client.get(url).bearer_auth(token).send().await.unwrap().status() }
    };
    assert_eq!(api(token.clone()).await, StatusCode::NOT_FOUND, "the new token works");
    assert!(!browser.get("/admin/tokens").await.body.contains(&token), "shown once");
    let id = app.store.api_tokens().await.unwrap().into_iter().find(|t| t.name == "CMS").unwrap().id;
    let page = browser.post(&format!("/admin/tokens/{id}/revoke"), &[("csrf", &csrf)]).await;
    assert_eq!(page.status, StatusCode::SEE_OTHER);
    assert_eq!(api(token.clone()).await, StatusCode::UNAUTHORIZED, "revoked");
    let log = app.store.audit_log(None, 50).await.unwrap();
    assert!(log.iter().all(|e| !e.detail.to_string().contains(&token) && !e.detail.to_string().contains(PASSWORD)));

    assert_eq!(browser.get("/admin/lists/tin-sang/delete").await.status, StatusCode::OK);
    let page = browser.post("/admin/lists/tin-sang/delete", &[("csrf", &csrf)]).await;
    assert_eq!(page.status, StatusCode::SEE_OTHER);
    assert!(app.store.list("tin-sang").await.unwrap().is_none());
    assert_eq!(browser.get("/admin/lists/tin-sang/edit").await.status, StatusCode::NOT_FOUND);
});

both_backends!(admin_create_on_the_command_line, |backend| async move {
    let Some(db) = common::TestDatabase::new(backend).await else { return };
    let bantin = |password: &str| {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_bantin"));
        for (key, _) in std::env::vars().filter(|(key, _)| key.starts_with("BANTIN_")) {
            cmd.env_remove(key);
        }
        cmd.current_dir(db.dir.path())
            .env("BANTIN_DATABASE_URL", db.url.as_str())
            .env("BANTIN_ADMIN_PASSWORD", password)
            .args(["admin", "create", "--username", "minh"])
            .stdin(Stdio::null())
            .output()
            .unwrap()
    };
    let short = bantin("short");
    assert!(!short.status.success());
    assert!(String::from_utf8_lossy(&short.stderr).contains("at least 10 characters"));
    let created = bantin("một mật khẩu dài");
    assert!(created.status.success(), "{}", String::from_utf8_lossy(&created.stderr));
    assert!(!String::from_utf8_lossy(&created.stderr).contains("một mật khẩu dài"), "the password is not echoed");
    let taken = bantin("một mật khẩu khác");
    assert!(!taken.status.success());
    assert!(String::from_utf8_lossy(&taken.stderr).contains("taken"));

    let app = TestApp::start(db, |_| {}).await.unwrap();
    let mut browser = Browser::new(&app);
    assert_eq!(browser.login("minh", "một mật khẩu khác").await.status, StatusCode::UNAUTHORIZED);
    assert_eq!(browser.login("minh", "một mật khẩu dài").await.status, StatusCode::SEE_OTHER);
});

both_backends!(opt_in_imports_mail_and_uploads_may_exceed_the_api_limit, |backend| async move {
    let Some(app) = with_admin(backend).await else { return };
    let mut browser = logged_in(&app).await;
    create_list(&mut browser, "Bản tin sáng", "ban-tin-sang").await;
    let csrf = browser.csrf().await;
    let fields = [("csrf", csrf.as_str()), ("list", "ban-tin-sang"), ("mode", "opt_in")];
    let page = browser.upload("/admin/import", &fields, ("new.csv", b"email,name\nmoi@example.vn,Mai\n")).await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.body);
    assert!(page.body.contains("1 confirmation emails sent"), "{}", page.body);
    let detail = app.store.subscriber_by_email(&EmailAddress::parse("moi@example.vn").unwrap()).await.unwrap();
    assert_eq!(detail.unwrap().subscriber.status, SubscriberStatus::Unconfirmed, "not active until confirmed");
    let outbox: Vec<_> = std::fs::read_dir(app.db.dir.path().join("data/outbox")).unwrap().collect();
    assert_eq!(outbox.len(), 1);
    let message = std::fs::read_to_string(outbox[0].as_ref().unwrap().path()).unwrap();
    assert!(message.contains("moi@example.vn"));

    // The import route has its own body limit, above the 2 MB the JSON API takes.
    let mut big = b"email,notes\nlon@example.vn,".to_vec();
    big.extend(std::iter::repeat_n(b'a', 3 * 1024 * 1024));
    big.push(b'\n');
    let fields = [("csrf", csrf.as_str()), ("list", "ban-tin-sang"), ("mode", "confirmed")];
    let page = browser.upload("/admin/import", &fields, ("big.csv", &big)).await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.body);
    assert!(page.body.contains("1 rows: 1 new"), "{}", page.body);
});
