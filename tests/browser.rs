//! Real headless Chromium through chromedriver, against the real app on port 0 and a real
//! SMTP server: a reader subscribes, confirms from the email, changes preferences and
//! unsubscribes with the button. Skipped (with a note) when Chromium is not installed,
//! unless BANTIN_REQUIRE_BROWSER=1.

mod common;

use std::time::Duration;

use bantin::config::Language;
use bantin::domain::audience::{ListDefaults, ListInput, SubscriberStatus, SubscriptionStatus};
use bantin::domain::email::EmailAddress;
use chrono::Utc;
use common::browser::Browser;
use common::{Backend, TestApp};
use serde_json::{Value, json};

fn list_input(value: Value) -> ListInput {
    let defaults = ListDefaults {
        timezone: chrono_tz::Asia::Ho_Chi_Minh,
        language: Language::Vi,
        from_name: "Tin Hiệp Hòa".into(),
        from_address: "bantin@hiephoa.example".into(),
    };
    ListInput::from_json(&value, &defaults).expect("a valid test list")
}

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
