//! Digest runs from the admin side, against the real app on port 0 and a real SMTP server,
//! on both backends: the next run times of a schedule, runs started and cancelled through
//! the REST API and the admin UI with their counts, previews and test sends (which are not
//! deliveries), List-Unsubscribe with a mailto, and DKIM signatures checked by a verifier.

mod common;

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use bantin::domain::email::EmailAddress;
use bantin::mail::DkimSigner;
use chrono::{DateTime, FixedOffset, Utc};
use common::admin::{Browser, add_admin, logged_in};
use common::smtp::{ReceivedMail, SmtpServer};
use common::{Backend, TestApp, audit_actions, call};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

const WAIT: Duration = Duration::from_secs(30);
const SLUG: &str = "ban-tin-sang";
const FIRST_TITLE: &str = "Giá lúa vụ mùa tăng mạnh ở Hiệp Hòa";
const SECOND_TITLE: &str = "Hợp tác xã Đông Lỗ mở rộng cánh đồng mẫu";

/// The app with a test SMTP server as its relay, and `configure` applied.
async fn spawn(backend: Backend, configure: impl FnOnce(&mut bantin::config::Config)) -> Option<(TestApp, SmtpServer)> {
    let smtp = SmtpServer::start().await;
    let url = smtp.url();
    let app = TestApp::spawn_with(backend, |config| {
        config.smtp_url = Some(url);
        configure(config);
    })
    .await?;
    Some((app, smtp))
}

/// "Bản tin sáng" on Tin Tức › Kinh tế, with `readers` active subscribers, then two new
/// articles in that category (and one outside it).
async fn list_with_news(app: &TestApp, readers: &[&str]) {
    let article = |id: &str, title: &str, category: [&str; 2]| {
        json!({"id": id, "title": title, "category": category, "author": "Phương Nhung",
               "summary": "Nông dân phấn khởi vì được mùa, được giá."})
    };
    let (status, body) = app.post_articles(article("cu", "Bài cũ", ["Tin Tức", "Kinh tế"]).to_string()).await;
    assert_eq!(status, 201, "{body}");
    let list = json!({"name": "Bản tin sáng", "schedule": "0 6 * * *", "timezone": "Asia/Ho_Chi_Minh",
                      "categories": ["tin-tuc/kinh-te"]});
    let (status, body) = call(app, Method::POST, "/api/v1/lists", Some(list)).await;
    assert_eq!(status, 201, "{body}");
    for email in readers {
        let reader = json!({"email": email, "name": "Độc giả", "lists": [SLUG], "status": "active"});
        let (status, body) = call(app, Method::POST, "/api/v1/subscribers", Some(reader)).await;
        assert_eq!(status, 201, "{body}");
    }
    // After the subscriptions, so they are new to every reader.
    tokio::time::sleep(Duration::from_millis(20)).await;
    let news = json!([
        article("lua", FIRST_TITLE, ["Tin Tức", "Kinh tế"]),
        article("htx", SECOND_TITLE, ["Tin Tức", "Kinh tế"]),
        article("bong-da", "Đội bóng huyện thắng giải", ["Thể thao", "Bóng đá"]),
    ]);
    let (status, body) = app.post_articles(news.to_string()).await;
    assert_eq!(status, 200, "{body}");
}

/// Polls the run until `done` says so (the worker sends in the background).
async fn wait_for_run(app: &TestApp, id: i64, done: impl Fn(&Value) -> bool) -> Value {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let (status, run) = call(app, Method::GET, &format!("/api/v1/runs/{id}"), None).await;
        assert_eq!(status, 200, "{run}");
        if done(&run) {
            return run;
        }
        assert!(tokio::time::Instant::now() < deadline, "run {id} stayed {run}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

both_backends!(a_daily_schedule_shows_its_next_five_runs_and_a_bad_one_is_refused, |backend| async move {
    let Some(app) = TestApp::spawn(backend).await else { return };
    add_admin(&app).await;
    let list = json!({"name": "Bản tin sáng", "schedule": "0 6 * * *", "timezone": "Asia/Ho_Chi_Minh"});
    let (status, created) = call(&app, Method::POST, "/api/v1/lists", Some(list)).await;
    assert_eq!(status, 201, "{created}");
    let (_, all) = call(&app, Method::GET, "/api/v1/lists", None).await;
    let (_, shown) = call(&app, Method::GET, &format!("/api/v1/lists/{SLUG}"), None).await;
    for list in [&created, &all["lists"][0], &shown] {
        let runs: Vec<DateTime<FixedOffset>> = list["next_runs"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| DateTime::parse_from_rfc3339(r.as_str().unwrap()).unwrap())
            .collect();
        assert_eq!(runs.len(), 5, "{list}");
        for (i, run) in runs.iter().enumerate() {
            let text = list["next_runs"][i].as_str().unwrap();
            assert!(text.ends_with("T06:00:00+07:00"), "06:00 in Ho Chi Minh City, with its offset: {text}");
            if i > 0 {
                assert_eq!(*run - runs[i - 1], chrono::Duration::days(1), "daily");
            }
        }
        let first = runs[0].with_timezone(&Utc);
        let now = Utc::now();
        assert!(first > now && first - now <= chrono::Duration::days(1), "the first is the next 06:00");
    }

    for bad in ["0 6 * * 9", "every morning", "61 6 * * *"] {
        let patch = json!({"schedule": bad});
        let (status, body) = call(&app, Method::PATCH, &format!("/api/v1/lists/{SLUG}"), Some(patch)).await;
        assert_eq!((status, body["field"].as_str()), (422, Some("schedule")), "{bad}: {body}");
        assert!(body["error"].as_str().unwrap().contains(bad), "the reason quotes what was typed: {body}");
    }
    let (_, body) =
        call(&app, Method::PATCH, &format!("/api/v1/lists/{SLUG}"), Some(json!({"schedule": "hourly"}))).await;
    assert!(body["error"].as_str().unwrap().contains("five cron fields"), "and says what would do: {body}");

    let mut admin = logged_in(&app).await;
    let page = admin.get(&format!("/admin/lists/{SLUG}/edit")).await;
    assert_eq!(page.body.matches(" 06:00 (+07)</li>").count(), 5, "{}", page.body);
    let csrf = page.csrf();
    let form = [("csrf", csrf.as_str()), ("name", "Bản tin sáng"), ("schedule", "every morning")];
    let page = admin.post(&format!("/admin/lists/{SLUG}/edit"), &form).await;
    assert_eq!(page.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        page.body.contains("id=\"schedule\" name=\"schedule\" value=\"every morning\" class=\"invalid\""),
        "{}",
        page.body
    );
    assert!(page.body.contains("schedule: &quot;every morning&quot; is not a schedule"), "{}", page.body);
    assert_eq!(app.store.list(SLUG).await.unwrap().unwrap().schedule, "0 6 * * *", "nothing was saved");
});

both_backends!(runs_start_report_their_counts_and_cancel_through_the_api, |backend| async move {
    let Some((app, smtp)) = spawn(backend, |_| {}).await else { return };
    list_with_news(&app, &["an@example.vn", "binh@example.vn"]).await;

    let (status, run) = call(&app, Method::POST, &format!("/api/v1/lists/{SLUG}/runs"), None).await;
    assert_eq!(status, 202, "{run}");
    assert_eq!((run["list"].as_str(), run["queued"].as_i64()), (Some(SLUG), Some(2)), "{run}");
    let id = run["id"].as_i64().unwrap();
    let received = smtp.wait_for(2, WAIT).await;
    assert!(received.iter().all(|m| m.parsed().html().contains(FIRST_TITLE)));
    let run = wait_for_run(&app, id, |r| r["status"] == "done").await;
    assert_eq!((run["sent"].as_i64(), run["queued"].as_i64(), run["failed"].as_i64()), (Some(2), Some(0), Some(0)));

    let (status, runs) = call(&app, Method::GET, &format!("/api/v1/lists/{SLUG}/runs"), None).await;
    assert_eq!(status, 200);
    assert_eq!(runs["runs"][0]["id"].as_i64(), Some(id), "{runs}");
    assert_eq!(runs["runs"][0]["sent"].as_i64(), Some(2));
    let (status, body) = call(&app, Method::POST, &format!("/api/v1/runs/{id}/cancel"), None).await;
    assert_eq!(status, 409, "a finished run cannot be cancelled: {body}");

    // With the relay down the next run stays sending, and can be cancelled.
    smtp.go_down();
    tokio::time::sleep(Duration::from_millis(1_100)).await; // runs are unique per second
    let (status, run) = call(&app, Method::POST, &format!("/api/v1/lists/{SLUG}/runs"), None).await;
    assert_eq!(status, 202, "{run}");
    let second = run["id"].as_i64().unwrap();
    let (status, cancelled) = call(&app, Method::POST, &format!("/api/v1/runs/{second}/cancel"), None).await;
    assert_eq!((status, cancelled["status"].as_str()), (200, Some("cancelled")), "{cancelled}");
    let run = wait_for_run(&app, second, |r| r["queued"] == 0).await;
    assert_eq!(
        (run["status"].as_str(), run["sent"].as_i64(), run["skipped"].as_i64()),
        (Some("cancelled"), Some(0), Some(2))
    );
    let (status, _) = call(&app, Method::POST, &format!("/api/v1/runs/{second}/cancel"), None).await;
    assert_eq!(status, 409);

    // A list nobody reads is done at once.
    let (status, _) = call(&app, Method::POST, "/api/v1/lists", Some(json!({"name": "Bản tin chiều"}))).await;
    assert_eq!(status, 201);
    let (status, run) = call(&app, Method::POST, "/api/v1/lists/ban-tin-chieu/runs", None).await;
    assert_eq!((status, run["status"].as_str(), run["queued"].as_i64()), (202, Some("done"), Some(0)), "{run}");

    for (method, path, expected) in [
        (Method::GET, "/api/v1/runs/999999".to_owned(), 404),
        (Method::GET, "/api/v1/runs/not-a-number".to_owned(), 404),
        (Method::POST, "/api/v1/runs/999999/cancel".to_owned(), 404),
        (Method::GET, "/api/v1/lists/khong-co/runs".to_owned(), 404),
        (Method::POST, "/api/v1/lists/khong-co/runs".to_owned(), 404),
        (Method::GET, format!("/api/v1/lists/{SLUG}/runs?limit=0"), 422),
    ] {
        let (status, body) = call(&app, method.clone(), &path, None).await;
        assert_eq!(status, expected, "{method} {path}: {body}");
    }
    let anonymous = app.client.post(format!("{}/api/v1/lists/{SLUG}/runs", app.address)).send().await.unwrap();
    assert_eq!(anonymous.status(), StatusCode::UNAUTHORIZED);

    let actions = audit_actions(&app).await;
    let digest: Vec<(&str, String)> = actions
        .iter()
        .filter(|(_, action, _)| action.starts_with("digest."))
        .map(|(actor, action, subject)| {
            assert!(actor.starts_with("api:token-"), "{actor}");
            (action.as_str(), subject.clone())
        })
        .collect();
    let expected = [
        ("digest.run", format!("list:{SLUG}")),
        ("digest.run", format!("list:{SLUG}")),
        ("digest.cancel", format!("run:{second}")),
        ("digest.run", "list:ban-tin-chieu".to_owned()),
    ];
    assert_eq!(digest, expected);
});

both_backends!(the_admin_runs_a_list_now_sees_its_counts_and_cancels_a_run, |backend| async move {
    let Some((app, smtp)) = spawn(backend, |_| {}).await else { return };
    add_admin(&app).await;
    list_with_news(&app, &["an@example.vn"]).await;
    let mut admin = logged_in(&app).await;
    let run_path = format!("/admin/lists/{SLUG}/run");

    let page = admin.post(&run_path, &[("csrf", "wrong")]).await;
    assert_eq!(page.status, StatusCode::FORBIDDEN);
    let page = Browser::new(&app).post(&run_path, &[("csrf", "x")]).await;
    assert_eq!((page.status, page.location()), (StatusCode::SEE_OTHER, "/admin/login"), "no session");
    assert!(app.store.runs(None, 10).await.unwrap().is_empty(), "neither started a run");

    let csrf = admin.get(&format!("/admin/lists/{SLUG}/edit")).await.csrf();
    let page = admin.post(&run_path, &[("csrf", &csrf)]).await;
    assert_eq!((page.status, page.location()), (StatusCode::SEE_OTHER, format!("/admin/lists/{SLUG}/edit").as_str()));
    smtp.wait_for(1, WAIT).await;
    let id = app.store.runs(None, 10).await.unwrap()[0].id;
    wait_for_run(&app, id, |r| r["status"] == "done").await;

    let page = admin.get(&format!("/admin/lists/{SLUG}/edit")).await;
    let row = run_row(&page.body, id);
    assert!(row.contains("run-done\">done</td>"), "{row}");
    assert!(
        row.contains(
            "<td class=\"num\">0</td><td class=\"num\">1</td><td class=\"num\">0</td><td class=\"num\">0</td>"
        ),
        "queued 0, sent 1, failed 0, skipped 0: {row}"
    );
    assert!(row.contains(&format!("href=\"/digests/{id}\"")), "{row}");
    assert!(!row.contains("/cancel"), "a finished run has no cancel button: {row}");
    let dashboard = admin.get("/admin").await;
    let row = run_row(&dashboard.body, id);
    assert!(row.contains(&format!("/admin/lists/{SLUG}/edit\">{SLUG}</a>")), "{row}");
    assert!(row.contains("<td class=\"num\">1</td>"), "the dashboard shows the counts: {row}");
    let page = admin.post(&format!("/admin/runs/{id}/cancel"), &[("csrf", &csrf)]).await;
    assert_eq!(page.status, StatusCode::CONFLICT);

    smtp.go_down();
    tokio::time::sleep(Duration::from_millis(1_100)).await; // runs are unique per second
    assert_eq!(admin.post(&run_path, &[("csrf", &csrf)]).await.status, StatusCode::SEE_OTHER);
    let running = app.store.runs(None, 10).await.unwrap()[0].id;
    let page = admin.get(&format!("/admin/lists/{SLUG}/edit")).await;
    let cancel = format!("/admin/runs/{running}/cancel");
    assert!(run_row(&page.body, running).contains(&format!("action=\"{cancel}\"")), "{}", page.body);
    assert_eq!(admin.post(&cancel, &[("csrf", "")]).await.status, StatusCode::FORBIDDEN);
    let page = admin.post(&cancel, &[("csrf", &csrf)]).await;
    assert_eq!(page.status, StatusCode::SEE_OTHER);
    let run = wait_for_run(&app, running, |r| r["queued"] == 0).await;
    assert_eq!((run["status"].as_str(), run["sent"].as_i64()), (Some("cancelled"), Some(0)));

    let actions = audit_actions(&app).await;
    let digest: Vec<(&str, &str, &str)> = actions
        .iter()
        .filter(|(_, action, _)| action.starts_with("digest."))
        .map(|(actor, action, subject)| (actor.as_str(), action.as_str(), subject.as_str()))
        .collect();
    let cancelled = format!("run:{running}");
    assert_eq!(
        digest,
        [
            ("admin:lan", "digest.run", SLUG),
            ("admin:lan", "digest.run", SLUG),
            ("admin:lan", "digest.cancel", cancelled.as_str())
        ]
    );
});

/// The table row of run `id` on a page.
fn run_row(body: &str, id: i64) -> String {
    let start = body.find(&format!("<tr id=\"run-{id}\">")).unwrap_or_else(|| panic!("no run {id} in {body}"));
    body[start..].split("</tr>").next().unwrap().to_owned()
}

both_backends!(previews_and_test_sends_are_not_deliveries, |backend| async move {
    let Some((app, smtp)) = spawn(backend, |_| {}).await else { return };
    add_admin(&app).await;
    list_with_news(&app, &["an@example.vn"]).await;
    let list = app.store.list(SLUG).await.unwrap().unwrap();
    let reader = EmailAddress::parse("an@example.vn").unwrap();
    let cursor = || async {
        let detail = app.store.subscriber_by_email(&reader).await.unwrap().unwrap();
        detail.subscriptions[0].sent_through
    };
    let before = cursor().await;
    let mut admin = logged_in(&app).await;
    let csrf = admin.get(&format!("/admin/lists/{SLUG}/edit")).await.csrf();
    let preview = format!("/admin/lists/{SLUG}/preview");
    let test = format!("/admin/lists/{SLUG}/test");

    for email in ["an@example.vn", ""] {
        let page = admin.post(&preview, &[("csrf", &csrf), ("email", email)]).await;
        assert_eq!(page.status, StatusCode::OK, "{}", page.body);
        let frame = page.body.split("srcdoc=\"").nth(1).unwrap().split('"').next().unwrap();
        let text = page.body.split("<pre class=\"preview\">").nth(1).unwrap().split("</pre>").next().unwrap();
        for part in [frame, text] {
            assert!(part.contains(FIRST_TITLE) && part.contains(SECOND_TITLE), "{email:?}: {part}");
            assert!(!part.contains("Đội bóng huyện"), "another category's article");
            // The reader subscribed after it; the sample reaches back a week.
            assert_eq!(part.contains("Bài cũ"), email.is_empty(), "{email:?}: {part}");
        }
        assert!(frame.contains("&lt;table"), "the HTML is escaped into the frame's srcdoc");
        assert!(page.body.contains("<iframe class=\"preview\""), "{}", page.body);
        assert!(page.body.contains("sandbox srcdoc="), "the frame runs nothing");
        assert!(page.body.contains("id=\"preview-subject\">Bản tin sáng"), "{}", page.body);
    }
    let page = admin.post(&preview, &[("csrf", &csrf), ("email", "ai-do@example.vn")]).await;
    assert_eq!(page.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        page.body.contains("email: there is no subscriber") || page.body.contains("email: không có người"),
        "{}",
        page.body
    );
    assert!(page.body.contains("id=\"preview-email\" name=\"email\" class=\"invalid\""), "{}", page.body);
    assert_eq!(admin.post(&preview, &[("email", "")]).await.status, StatusCode::FORBIDDEN);

    assert_eq!(admin.post(&test, &[("to", "lan@hiephoa.example")]).await.status, StatusCode::FORBIDDEN);
    let page = admin.post(&test, &[("csrf", &csrf), ("to", "not an address")]).await;
    assert_eq!(page.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(page.body.contains("id=\"test-to\" name=\"to\" required class=\"invalid\""), "{}", page.body);

    let page = admin.post(&test, &[("csrf", &csrf), ("to", "lan@hiephoa.example"), ("email", "an@example.vn")]).await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.body);
    assert!(page.body.contains("lan@hiephoa.example"), "the page says where it went");
    let received = smtp.wait_for(1, WAIT).await;
    assert_eq!(received[0].to, ["lan@hiephoa.example"]);
    let mail = received[0].parsed();
    assert!(mail.header("Subject").unwrap().starts_with("[Thử nghiệm] Bản tin sáng"), "{:?}", mail.header("Subject"));
    assert!(mail.html().contains(FIRST_TITLE) && mail.text().contains(SECOND_TITLE));
    assert_eq!(mail.header("List-Unsubscribe"), None, "a click in the admin's inbox unsubscribes no one");

    admin.post(&test, &[("csrf", &csrf), ("to", "lan@hiephoa.example")]).await;
    let received = smtp.wait_for(2, WAIT).await;
    let sample = received[1].parsed();
    assert!(sample.html().contains(FIRST_TITLE), "the sample reader gets the list's new articles");
    assert!(sample.header("List-Unsubscribe").is_some(), "the sample's headers are as a reader's");
    assert_ne!(sample.header("Message-ID"), mail.header("Message-ID"), "each test is its own message");

    assert_eq!(cursor().await, before, "no cursor moved");
    assert!(app.store.runs(Some(list.id), 10).await.unwrap().is_empty(), "no run was made");
    assert_eq!(app.store.queue_depth().await.unwrap(), 0, "no delivery was queued");
    let actions: Vec<String> = audit_actions(&app).await.into_iter().map(|(_, action, _)| action).collect();
    assert_eq!(actions.iter().filter(|a| *a == "digest.test").count(), 2, "{actions:?}");

    // The real run still holds both articles for the reader.
    let (status, _) = call(&app, Method::POST, &format!("/api/v1/lists/{SLUG}/runs"), None).await;
    assert_eq!(status, 202);
    let received = smtp.wait_for(3, WAIT).await;
    let digest = received.iter().find(|m| m.to == ["an@example.vn"]).expect("the reader's digest").parsed();
    assert!(digest.html().contains(FIRST_TITLE) && digest.html().contains(SECOND_TITLE));
});

/// The DKIM key record a test publishes, answered for every name asked.
struct KeyRecord(String);

impl cfdkim::dns::Lookup for KeyRecord {
    fn lookup_txt<'a>(
        &'a self,
        _name: &'a str,
    ) -> Pin<Box<dyn Future<Output = Result<Vec<String>, cfdkim::DKIMError>> + Send + 'a>> {
        let record = self.0.clone();
        Box::pin(async move { Ok(vec![record]) })
    }
}

/// Verifies the message's DKIM signature for `domain` with the key in `record`: "pass",
/// or "fail" and why.
async fn dkim_verdict(raw: &[u8], domain: &str, record: &str) -> String {
    let logger = slog::Logger::root(slog::Discard, slog::o!());
    let parsed = mailparse::parse_mail(raw).expect("a parseable message");
    let result = cfdkim::verify_email_with_resolver(&logger, domain, &parsed, Arc::new(KeyRecord(record.to_owned())))
        .await
        .expect("a verdict");
    match result.error() {
        Some(e) => format!("{}: {e}", result.summary()),
        None => result.summary().to_owned(),
    }
}

fn tag<'a>(signature: &'a str, name: &str) -> &'a str {
    signature
        .split(';')
        .map(str::trim)
        .find_map(|t| t.strip_prefix(&format!("{name}=")))
        .unwrap_or_else(|| panic!("no {name}= in {signature}"))
}

async fn check_signed_digest(received: &ReceivedMail, record: &str, algorithm: &str) {
    let mail = received.parsed();
    let signature = mail.header("DKIM-Signature").expect("a DKIM-Signature header");
    let signature: String = signature.split_whitespace().collect::<Vec<_>>().join(" ");
    assert_eq!(tag(&signature, "d"), "tin.hiephoa.example");
    assert_eq!(tag(&signature, "s"), "bantin2026");
    assert_eq!(tag(&signature, "a"), format!("{algorithm}-sha256"));
    let signed: Vec<String> = tag(&signature, "h").split(':').map(|h| h.trim().to_ascii_lowercase()).collect();
    for header in ["from", "subject", "list-unsubscribe", "list-unsubscribe-post", "message-id", "date", "to"] {
        assert!(signed.iter().any(|h| h == header), "{header} is signed: {signed:?}");
    }
    assert_eq!(
        dkim_verdict(&received.raw, "tin.hiephoa.example", record).await,
        "pass",
        "{}",
        String::from_utf8_lossy(&received.raw)
    );
    // The verifier is not a rubber stamp: a changed subject or body fails.
    let raw = String::from_utf8(received.raw.clone()).unwrap();
    let start = raw.find("\r\nSubject: ").expect("a Subject line") + 2;
    let end = start + raw[start..].find("\r\n").unwrap();
    let forged = format!("{}Subject: =?utf-8?b?VHLDum5nIHRoxrDhu59uZw==?={}", &raw[..start], &raw[end..]);
    assert!(dkim_verdict(forged.as_bytes(), "tin.hiephoa.example", record).await.starts_with("fail: "));
    let forged = format!("{}\r\nP.S. added on the way\r\n", raw.trim_end());
    assert!(dkim_verdict(forged.as_bytes(), "tin.hiephoa.example", record).await.starts_with("fail: "));
}

both_backends!(digests_are_dkim_signed_and_offer_a_mailto_unsubscribe, |backend| async move {
    let fixtures = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/dkim");
    for (key, public, k, algorithm) in
        [("rsa.pem", "rsa.pub.b64", "rsa", "rsa"), ("ed25519.pem", "ed25519.pub.b64", "ed25519", "ed25519")]
    {
        let signer = DkimSigner::load(&fixtures.join(key), "bantin2026", "tin.hiephoa.example").unwrap();
        let Some((app, smtp)) = spawn(backend, |config| {
            config.dkim = Some(Arc::new(signer));
            config.list_unsubscribe_mailto = Some(EmailAddress::parse("unsubscribe@news.example").unwrap());
        })
        .await
        else {
            return;
        };
        list_with_news(&app, &["an@example.vn"]).await;
        let (status, _) = call(&app, Method::POST, &format!("/api/v1/lists/{SLUG}/runs"), None).await;
        assert_eq!(status, 202);
        let received = smtp.wait_for(1, WAIT).await;
        let mail = received[0].parsed();

        let header = mail.header("List-Unsubscribe").unwrap();
        let header: String = header.split_whitespace().collect::<Vec<_>>().join(" ");
        let https = mail.link_to("/unsubscribe/");
        let token = https.path().rsplit('/').next().unwrap();
        assert_eq!(
            header,
            format!("<{https}>, <mailto:unsubscribe@news.example?subject=unsubscribe-{token}>"),
            "the https link first, then the mailbox with the same token"
        );
        assert_eq!(mail.header("List-Unsubscribe-Post").as_deref(), Some("List-Unsubscribe=One-Click"));

        let public_key = std::fs::read_to_string(fixtures.join(public)).unwrap();
        let record = format!("v=DKIM1; k={k}; p={}", public_key.trim());
        check_signed_digest(&received[0], &record, algorithm).await;
    }
});
