//! Real headless Chromium through chromedriver, against the real app on port 0 and a real
//! SMTP server: a reader subscribes, confirms from the email, changes preferences and
//! unsubscribes with the button. Skipped (with a note) when Chromium is not installed,
//! unless BANTIN_REQUIRE_BROWSER=1.

mod common;

use std::time::Duration;

use bantin::domain::audience::{SubscriberStatus, SubscriptionStatus};
use bantin::domain::email::EmailAddress;
use chrono::Utc;
use common::browser::Browser;
use common::{Backend, TestApp, list_input};
use serde_json::json;

#[tokio::test]
async fn a_reader_subscribes_confirms_changes_preferences_and_unsubscribes() {
    let Some(browser) = Browser::start().await else { return };
    let (app, smtp) = TestApp::spawn_for_browser(Backend::Sqlite).await.expect("SQLite always runs");
    let articles = json!([
        {"id": "kt-1", "title": "Giá lúa tăng", "category": ["Tin Tức", "Kinh tế"], "content_text": "…"},
        {"id": "tt-1", "title": "Bóng đá huyện", "category": ["Thể thao"], "content_text": "…"},
    ]);
    let (status, body) = app.post_articles(articles.to_string()).await;
    assert!(status < 300, "{status} {body}");
    let morning = app.store.create_list(&list_input(json!({"name": "Bản tin sáng"})), Utc::now()).await.unwrap();
    let sport = json!({"name": "Thể thao cuối tuần", "categories": ["the-thao"]});
    app.store.create_list(&list_input(sport), Utc::now()).await.unwrap();

    browser.goto(&format!("{}/subscribe?lang=vi", app.address)).await;
    assert_eq!(browser.text("h1").await, "Nhận bản tin qua email");
    browser.fill("#email", "doc.gia@hiephoa.example").await;
    browser.fill("#name", "Lê Thị Hoa").await;
    browser.click("input[name=lists][value=ban-tin-sang]").await;
    browser.click("input[name=categories][value=tin-tuc]").await;
    browser.click_and_wait("form button[type=submit]").await;
    assert_eq!(browser.text("h1").await, "Hãy kiểm tra hộp thư");

    let mail = smtp.wait_for(1, Duration::from_secs(10)).await.remove(0).parsed();
    browser.goto(mail.link_to("/confirm/").as_str()).await;
    assert_eq!(browser.text("h1").await, "Đã xác nhận");

    browser.click_and_wait("a[href*='/preferences/']").await;
    assert!(browser.is_checked("input[name=lists][value=ban-tin-sang]").await);
    assert!(!browser.is_checked("input[name=lists][value=the-thao-cuoi-tuan]").await);
    assert!(browser.is_checked("input[value='ban-tin-sang:tin-tuc']").await);
    browser.click("input[value='ban-tin-sang:the-thao']").await;
    browser.find("#language").await.select_by_value("en").await.expect("choose English");
    browser.click_and_wait("button[value=save]").await;
    assert_eq!(browser.text("[role=status]").await, "Your choices are saved.");
    let address = EmailAddress::parse("doc.gia@hiephoa.example").unwrap();
    let saved = app.store.subscriber_by_email(&address).await.unwrap().unwrap();
    assert_eq!(saved.subscriber.status, SubscriberStatus::Active);
    assert_eq!(saved.subscriber.language, "en");
    assert_eq!(saved.subscriptions.len(), 1);
    let mut categories = saved.subscriptions[0].categories.clone();
    categories.sort();
    assert_eq!(categories, ["the-thao", "tin-tuc"]);

    // The link a digest carries: a page with a button, and only the button unsubscribes.
    let unsubscribe = app.audience().await.unsubscribe_url(saved.subscriber.id, Some(morning.id));
    browser.goto(&app.local_url(&url::Url::parse(&unsubscribe).unwrap())).await;
    assert_eq!(browser.text("h1").await, "Unsubscribe");
    let unchanged = app.store.subscriber_by_email(&address).await.unwrap().unwrap();
    assert_eq!(unchanged.subscriptions[0].status, SubscriptionStatus::Active);
    browser.click_and_wait("form button.danger").await;
    assert_eq!(browser.text("h1").await, "Unsubscribed");
    let gone = app.store.subscriber_by_email(&address).await.unwrap().unwrap();
    assert_eq!(gone.subscriptions[0].status, SubscriptionStatus::Unsubscribed);
    assert_eq!(gone.subscriber.status, SubscriberStatus::Unsubscribed);

    browser.close().await;
}

/// The admin's day in a real browser: the login redirect, creating a list, uploading a
/// CSV file through the file input, reading the per-row report, finding an imported
/// reader, blocklisting them, and exporting with the browser's own session.
#[tokio::test]
async fn an_admin_logs_in_creates_a_list_imports_searches_blocklists_and_exports() {
    let Some(browser) = Browser::start().await else { return };
    let (app, _smtp) = TestApp::spawn_for_browser(Backend::Sqlite).await.expect("SQLite always runs");
    let hash = bantin::domain::admin::hash_password("mật khẩu đủ dài").unwrap();
    app.store.create_admin("lan", &hash, Utc::now()).await.unwrap();

    browser.goto(&format!("{}/admin/lists", app.address)).await;
    assert!(browser.url().await.contains("/admin/login"), "no session sends the browser to the login page");
    browser.fill("#username", "lan").await;
    browser.fill("#password", "mật khẩu đủ dài").await;
    browser.click_and_wait("form button[type=submit]").await;
    assert!(browser.url().await.ends_with("/admin"), "logged in, at the dashboard: {}", browser.url().await);

    browser.goto(&format!("{}/admin/lists/new", app.address)).await;
    browser.fill("#name", "Bản tin chiều").await;
    browser.fill("#schedule", "0 17 * * *").await;
    browser.click_and_wait("form[action='/admin/lists'] button[type=submit]").await;
    let lists = app.store.lists().await.unwrap();
    let evening = lists.iter().find(|l| l.slug == "ban-tin-chieu").expect("the list was created with its slug");
    assert_eq!(evening.name, "Bản tin chiều");
    assert!(browser.page_source().await.contains("/admin/lists/ban-tin-chieu/edit"), "the list is on the lists page");

    let dir = tempfile::tempdir().unwrap();
    let csv = dir.path().join("ban-doc.csv");
    let rows = "\u{feff}email,name\r\nhoa.le@hiephoa.example,Lê Thị Hoa\r\nkhong-phai-email,Sai\r\n\
                tuan@hiephoa.example,<b>Tuấn</b>\r\nHOA.LE@hiephoa.example,Trùng\r\n";
    std::fs::write(&csv, rows).unwrap();
    browser.goto(&format!("{}/admin/import", app.address)).await;
    browser.find("#list").await.select_by_value("ban-tin-chieu").await.expect("choose the list");
    browser.find("#file").await.send_keys(csv.to_str().unwrap()).await.expect("choose the file");
    browser.click_and_wait("form[action='/admin/import'] button[type=submit]").await;
    let report = browser.page_source().await;
    assert!(browser.text("h1").await.ends_with("Bản tin chiều"), "the report names the list");
    let numbers: Vec<String> = {
        let mut cells = Vec::new();
        for cell in browser.client.find_all(fantoccini::Locator::Css("table td.num")).await.unwrap() {
            cells.push(cell.text().await.unwrap());
        }
        cells
    };
    // rows, created, merged, duplicates, failed, confirmations; then the error's line.
    assert_eq!(numbers[..6], ["4", "2", "0", "1", "1", "0"], "{report}");
    assert_eq!(numbers[6], "3", "the bad address is reported at its line in the file");

    browser.goto(&format!("{}/admin/subscribers", app.address)).await;
    browser.fill("input[name=q]", "hoa.le").await;
    browser.click_and_wait("form[role=search] button[type=submit]").await;
    let found = browser.page_source().await;
    assert!(found.contains("hoa.le@hiephoa.example") && !found.contains("tuan@hiephoa.example"), "{found}");
    browser.click_and_wait("a[href^='/admin/subscribers/']").await;
    browser.click_and_wait("form[action$='/blocklist'] button").await;
    let address = EmailAddress::parse("hoa.le@hiephoa.example").unwrap();
    let blocked = app.store.subscriber_by_email(&address).await.unwrap().unwrap();
    assert_eq!(blocked.subscriber.status, SubscriberStatus::Blocklisted);

    // The export page's form, fetched with the browser's session cookie.
    browser.goto(&format!("{}/admin/export", app.address)).await;
    browser.find("#list").await.select_by_value("ban-tin-chieu").await.expect("choose the list");
    let script = "const form = document.querySelector('form[action=\"/admin/export.csv\"]');\
                  const query = new URLSearchParams(new FormData(form)).toString();\
                  return fetch(form.action + '?' + query).then(r => r.text());";
    let exported = browser.client.execute(script, vec![]).await.expect("fetch the export");
    let exported = exported.as_str().expect("CSV text").to_owned();
    let mut lines = exported.lines();
    assert!(lines.next().unwrap().starts_with("email,"), "{exported}");
    let mut emails: Vec<&str> = lines.map(|l| l.split(',').next().unwrap()).collect();
    emails.sort();
    assert_eq!(emails, ["hoa.le@hiephoa.example", "tuan@hiephoa.example"]);

    browser.click_and_wait("form[action='/admin/logout'] button").await;
    browser.goto(&format!("{}/admin", app.address)).await;
    assert!(browser.url().await.contains("/admin/login"), "logged out");
    browser.close().await;
}
