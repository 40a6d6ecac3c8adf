//! The public pages (subscribe, confirm, preference centre, unsubscribe) against the real
//! app on port 0 and a real SMTP server, on both backends: links are read out of the
//! received messages and followed.

mod common;

use std::time::Duration;

use bantin::config::Language;
use bantin::domain::audience::{SubscriberStatus, SubscriptionStatus};
use bantin::domain::email::EmailAddress;
use bantin::store::audience::{MailingList, NewSubscriber, SubscriberDetail};
use chrono::Utc;
use common::smtp::SmtpServer;
use common::{TestApp, list_input};
use serde_json::{Map, json};

/// How long a confirmation email may take to arrive.
const MAIL_WAIT: Duration = Duration::from_secs(10);
/// How long to watch for an email that must not come.
const QUIET: Duration = Duration::from_millis(700);

/// The app with a test SMTP server, the categories "Tin Tức › Kinh tế" and "Thể thao"
/// (made by ingesting articles), and one list covering every category.
async fn app_with_list(backend: common::Backend) -> Option<(TestApp, SmtpServer, MailingList)> {
    let (app, smtp) = TestApp::spawn_with_smtp(backend).await?;
    let articles = json!([
        {"id": "kt-1", "title": "Giá lúa tăng", "category": ["Tin Tức", "Kinh tế"], "content_text": "…"},
        {"id": "tt-1", "title": "Bóng đá huyện", "category": ["Thể thao"], "content_text": "…"},
    ]);
    let (status, body) = app.post_articles(articles.to_string()).await;
    assert!(status < 300, "{status} {body}");
    let list = app.store.create_list(&list_input(json!({"name": "Bản tin sáng"})), Utc::now()).await.unwrap();
    Some((app, smtp, list))
}

async fn post_form(app: &TestApp, path: &str, fields: &[(&str, &str)]) -> (u16, String) {
    let response = app.client.post(format!("{}{path}", app.address)).form(fields).send().await.expect("request");
    let status = response.status().as_u16();
    (status, response.text().await.unwrap())
}

async fn get_page(app: &TestApp, url: &str) -> (u16, String) {
    let response = app.client.get(url).send().await.expect("request");
    let status = response.status().as_u16();
    (status, response.text().await.unwrap())
}

async fn detail_of(app: &TestApp, address: &str) -> Option<SubscriberDetail> {
    app.store.subscriber_by_email(&EmailAddress::parse(address).unwrap()).await.unwrap()
}

async fn add_subscriber(app: &TestApp, address: &str, status: SubscriberStatus, list: &MailingList) -> i64 {
    let new = NewSubscriber {
        email: EmailAddress::parse(address).unwrap(),
        name: String::new(),
        language: Language::Vi,
        status,
        attributes: Map::new(),
        list_ids: vec![list.id],
    };
    app.store.create_subscriber(&new, Utc::now()).await.unwrap()
}

/// The first href in a page that goes to `path_prefix`.
fn href_to(html: &str, path_prefix: &str) -> url::Url {
    common::mime::hrefs(html)
        .iter()
        .filter_map(|href| url::Url::parse(href).ok())
        .find(|u| u.path().starts_with(path_prefix))
        .unwrap_or_else(|| panic!("no link to {path_prefix} in {html}"))
}

const CHECK_INBOX_VI: &str = "Hãy kiểm tra hộp thư";

both_backends!(subscribe_confirm_change_preferences_and_unsubscribe, |backend| async move {
    let Some((app, smtp, list)) = app_with_list(backend).await else { return };
    let (status, form) = get_page(&app, &format!("{}/subscribe", app.address)).await;
    assert_eq!(status, 200);
    assert!(form.contains("Bản tin sáng") && form.contains("value=\"tin-tuc\"") && form.contains("value=\"the-thao\""));

    let fields = [
        ("email", "An.Nguyen@HiepHoa.Example"),
        ("name", "Nguyễn Văn An"),
        ("lists", list.slug.as_str()),
        ("categories", "tin-tuc"),
    ];
    let (status, page) = post_form(&app, "/subscribe", &fields).await;
    assert_eq!(status, 200, "{page}");
    assert!(page.contains(CHECK_INBOX_VI), "{page}");
    let waiting = detail_of(&app, "An.Nguyen@hiephoa.example").await.expect("the subscriber is stored");
    assert_eq!(waiting.subscriber.status, SubscriberStatus::Unconfirmed);

    let received = smtp.wait_for(1, MAIL_WAIT).await;
    let mail = &received[0];
    assert_eq!(mail.to, ["An.Nguyen@hiephoa.example"], "domain lowercased, local part kept");
    assert_eq!(mail.from, "bantin@hiephoa.example");
    let parsed = mail.parsed();
    assert_eq!(parsed.media_type, "multipart/alternative");
    assert!(parsed.raw_header("Subject").unwrap().starts_with("=?utf-8?"), "UTF-8 subject is RFC 2047-encoded");
    assert_eq!(parsed.header("Subject").unwrap(), "Xác nhận đăng ký nhận bản tin");
    let from = parsed.header("From").unwrap();
    assert!(from.contains("Tin Hiệp Hòa") && from.ends_with("<bantin@hiephoa.example>"), "{from}");
    let to = parsed.header("To").unwrap();
    assert!(to.contains("Nguyễn Văn An") && to.ends_with("<An.Nguyen@hiephoa.example>"), "{to}");
    let message_id = parsed.header("Message-ID").expect("a Message-ID");
    assert!(message_id.starts_with('<') && message_id.ends_with("@tin.hiephoa.example>"), "{message_id}");
    assert!(parsed.header("Date").is_some());
    assert!(parsed.text().contains("Nguyễn Văn An") && parsed.text().contains("Bản tin sáng"), "{}", parsed.text());
    assert!(parsed.html().contains("Nguyễn Văn An") && parsed.html().contains("Bản tin sáng"));
    let confirm = parsed.link_to("/confirm/");
    assert_eq!(confirm.origin().unicode_serialization(), "https://tin.hiephoa.example");
    assert!(parsed.text().contains(confirm.as_str()), "the text part carries the same link");

    let (status, confirmed) = get_page(&app, &app.local_url(&confirm)).await;
    assert_eq!(status, 200, "{confirmed}");
    assert!(confirmed.contains("Đã xác nhận"), "{confirmed}");
    let active = detail_of(&app, "an.nguyen@hiephoa.example").await.unwrap();
    assert_eq!(active.subscriber.status, SubscriberStatus::Active);
    assert!(active.subscriber.confirmed_at.is_some());
    assert_eq!(active.subscriptions.len(), 1);
    assert_eq!(active.subscriptions[0].status, SubscriptionStatus::Active);
    assert_eq!(active.subscriptions[0].categories, ["tin-tuc"]);

    // The preference centre, linked from the confirmed page.
    let preferences = app.local_url(&href_to(&confirmed, "/preferences/"));
    let (status, centre) = get_page(&app, &preferences).await;
    assert_eq!(status, 200);
    assert!(centre.contains("An.Nguyen@hiephoa.example"));
    assert!(centre.contains("value=\"ban-tin-sang:tin-tuc\" checked"), "{centre}");
    assert!(centre.contains("value=\"ban-tin-sang:the-thao\">"), "{centre}");
    let path = preferences.strip_prefix(&app.address).unwrap();
    let choices =
        [("lists", "ban-tin-sang"), ("categories", "ban-tin-sang:the-thao"), ("language", "en"), ("action", "save")];
    let (status, saved) = post_form(&app, path, &choices).await;
    assert_eq!(status, 200, "{saved}");
    assert!(saved.contains("Your choices are saved."), "the page follows the new language: {saved}");
    assert!(saved.contains("value=\"ban-tin-sang:the-thao\" checked"), "{saved}");
    let changed = detail_of(&app, "an.nguyen@hiephoa.example").await.unwrap();
    assert_eq!(changed.subscriber.language, "en");
    assert_eq!(changed.subscriptions[0].categories, ["the-thao"]);
    assert_eq!(changed.subscriptions[0].status, SubscriptionStatus::Active);

    // Unsubscribe: looking at the page (as a link scanner does) changes nothing.
    let audience = app.audience().await;
    let unsubscribe = url::Url::parse(&audience.unsubscribe_url(changed.subscriber.id, Some(list.id))).unwrap();
    let (status, page) = get_page(&app, &app.local_url(&unsubscribe)).await;
    assert_eq!(status, 200);
    assert!(page.contains("<form method=\"post\">") && page.contains("Confirm unsubscribe"), "{page}");
    assert!(page.contains("Bản tin sáng"));
    let still = detail_of(&app, "an.nguyen@hiephoa.example").await.unwrap();
    assert_eq!(still.subscriber.status, SubscriberStatus::Active);
    assert_eq!(still.subscriptions[0].status, SubscriptionStatus::Active);

    let (status, done) = post_form(&app, unsubscribe.path(), &[]).await;
    assert_eq!(status, 200, "{done}");
    assert!(done.contains("You are unsubscribed."), "{done}");
    let gone = detail_of(&app, "an.nguyen@hiephoa.example").await.unwrap();
    assert_eq!(gone.subscriptions[0].status, SubscriptionStatus::Unsubscribed);
    assert_eq!(gone.subscriber.status, SubscriberStatus::Unsubscribed, "no list left");
    assert_eq!(smtp.received().len(), 1, "confirming, saving and leaving send nothing");
});

both_backends!(one_click_unsubscribe_works_without_cookies_or_a_page, |backend| async move {
    let Some((app, _smtp, list)) = app_with_list(backend).await else { return };
    let id = add_subscriber(&app, "doc.gia@hiephoa.example", SubscriberStatus::Active, &list).await;
    let link = url::Url::parse(&app.audience().await.unsubscribe_url(id, Some(list.id))).unwrap();
    // What a mail client sends for List-Unsubscribe-Post (RFC 8058): no cookie, no
    // Referer, one field.
    let response = reqwest::Client::new()
        .post(app.local_url(&link))
        .header("content-type", "application/x-www-form-urlencoded")
        .body("List-Unsubscribe=One-Click")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert!(response.headers().get("set-cookie").is_none());
    let gone = detail_of(&app, "doc.gia@hiephoa.example").await.unwrap();
    assert_eq!(gone.subscriptions[0].status, SubscriptionStatus::Unsubscribed);
    assert_eq!(gone.subscriber.status, SubscriberStatus::Unsubscribed);
});

both_backends!(altered_unknown_expired_or_misused_tokens_get_a_plain_404_page, |backend| async move {
    let Some((app, _smtp, list)) = app_with_list(backend).await else { return };
    let id = add_subscriber(&app, "ba.hai@hiephoa.example", SubscriberStatus::Unconfirmed, &list).await;
    let audience = app.audience().await;
    let token_of = |url: String| url.rsplit('/').next().unwrap().to_owned();
    let preferences = token_of(audience.preferences_url(id));
    let mut altered = preferences.clone().into_bytes();
    let last = altered.len() - 1;
    altered[last] = if altered[last] == b'A' { b'B' } else { b'A' };
    let altered = String::from_utf8(altered).unwrap();
    let expired = token_of(audience.confirm_url(id, Utc::now() - chrono::Duration::days(8)));
    let bad_tokens = [altered.as_str(), "x", "0000000000000000000000000000000000000000", "%00", expired.as_str()];
    for token in bad_tokens {
        for path in ["confirm", "preferences", "unsubscribe"] {
            let url = format!("{}/{path}/{token}", app.address);
            let (status, page) = get_page(&app, &url).await;
            assert_eq!(status, 404, "GET {url}: {page}");
            assert!(page.contains("Liên kết không hợp lệ"), "{page}");
            if path != "confirm" {
                let response = app.client.post(&url).form(&[("action", "unsubscribe_all")]).send().await.unwrap();
                assert_eq!(response.status(), 404, "POST {url}");
            }
        }
    }
    // A valid token works only for its own purpose.
    for path in ["confirm", "unsubscribe"] {
        let (status, _) = get_page(&app, &format!("{}/{path}/{preferences}", app.address)).await;
        assert_eq!(status, 404, "a preferences token on /{path}");
    }
    let (status, _) = post_form(&app, &format!("/unsubscribe/{preferences}"), &[]).await;
    assert_eq!(status, 404);
    let untouched = app.store.subscriber(id).await.unwrap().unwrap();
    assert_eq!(untouched.subscriber.status, SubscriberStatus::Unconfirmed);
    assert_eq!(untouched.subscriptions[0].status, SubscriptionStatus::Unconfirmed);
});

both_backends!(new_known_and_blocklisted_addresses_get_the_same_answer, |backend| async move {
    let Some((app, smtp, list)) = app_with_list(backend).await else { return };
    add_subscriber(&app, "da.biet@hiephoa.example", SubscriberStatus::Active, &list).await;
    add_subscriber(&app, "bi.chan@hiephoa.example", SubscriberStatus::Blocklisted, &list).await;
    let mut answers = Vec::new();
    for address in ["moi@hiephoa.example", "da.biet@hiephoa.example", "bi.chan@hiephoa.example"] {
        let (status, page) = post_form(&app, "/subscribe", &[("email", address), ("lists", &list.slug)]).await;
        answers.push((status, page));
    }
    assert_eq!(answers[0].0, 200);
    assert!(answers[0].1.contains(CHECK_INBOX_VI));
    assert!(answers.iter().all(|a| *a == answers[0]), "the pages differ: {answers:?}");

    smtp.wait_for(1, MAIL_WAIT).await;
    smtp.assert_stays_at(1, QUIET).await;
    assert_eq!(smtp.received()[0].to, ["moi@hiephoa.example"]);
    let blocked = detail_of(&app, "bi.chan@hiephoa.example").await.unwrap();
    assert_eq!(blocked.subscriber.status, SubscriberStatus::Blocklisted);
});

both_backends!(the_honeypot_field_sends_nothing, |backend| async move {
    let Some((app, smtp, list)) = app_with_list(backend).await else { return };
    let fields = [("email", "bot@hiephoa.example"), ("lists", list.slug.as_str()), ("website", "http://spam.example")];
    let (status, page) = post_form(&app, "/subscribe", &fields).await;
    assert_eq!(status, 200);
    assert!(page.contains(CHECK_INBOX_VI), "a bot cannot tell: {page}");
    smtp.assert_stays_at(0, QUIET).await;
    assert!(detail_of(&app, "bot@hiephoa.example").await.is_none());
});

both_backends!(subscribing_is_limited_per_ip_and_per_address, |backend| async move {
    let Some((app, smtp, list)) = app_with_list(backend).await else { return };
    let evening = app.store.create_list(&list_input(json!({"name": "Bản tin tối"})), Utc::now()).await.unwrap();
    // Per address, whatever its spelling: the first post mails, later ones within the
    // limit do not mail again, and past the limit nothing is even written.
    let spellings = ["Nan.Nhan@hiephoa.example", "nan.nhan@HIEPHOA.example", "NAN.NHAN@hiephoa.example"];
    for (n, address) in spellings.into_iter().enumerate() {
        let (status, page) = post_form(&app, "/subscribe", &[("email", address), ("lists", &list.slug)]).await;
        assert_eq!(status, 200, "{page}");
        if n == 0 {
            // The send is in the background and its time is stored after the relay
            // answers; later posts must see it.
            smtp.wait_for(1, MAIL_WAIT).await;
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    }
    let fields = [("email", "nan.nhan@hiephoa.example"), ("lists", evening.slug.as_str())];
    let (status, page) = post_form(&app, "/subscribe", &fields).await;
    assert_eq!(status, 200);
    assert!(page.contains(CHECK_INBOX_VI), "the same page past the limit: {page}");
    smtp.wait_for(1, MAIL_WAIT).await;
    smtp.assert_stays_at(1, QUIET).await;
    let detail = detail_of(&app, "Nan.Nhan@hiephoa.example").await.unwrap();
    assert_eq!(detail.subscriptions.len(), 1, "the post past the limit wrote nothing");

    // Per IP: 20 posts in the window (4 so far), then a 429 page.
    for n in 4..20 {
        let address = format!("khach{n}@hiephoa.example");
        let (status, _) = post_form(&app, "/subscribe", &[("email", &address), ("website", "x")]).await;
        assert_eq!(status, 200, "post {n}");
    }
    let (status, page) = post_form(&app, "/subscribe", &[("email", "mot.nua@hiephoa.example")]).await;
    assert_eq!(status, 429, "{page}");
    assert!(page.contains("Bạn đã gửi quá nhiều yêu cầu"), "{page}");
    assert!(detail_of(&app, "mot.nua@hiephoa.example").await.is_none());
});

both_backends!(an_invalid_address_gets_a_422_page_naming_the_problem, |backend| async move {
    let Some((app, smtp, list)) = app_with_list(backend).await else { return };
    let cases = [
        ("khong-co-a-cong", "Email is missing the @"),
        ("a@b.example\r\nBcc: nan.nhan@hiephoa.example", "must not contain line breaks"),
        ("Ai Đó <ai@hiephoa.example>", "without a name, quotes or a second address"),
    ];
    for (address, reason) in cases {
        let fields = [("email", address), ("name", "Trần Thị Bình"), ("lists", list.slug.as_str()), ("lang", "en")];
        let (status, page) = post_form(&app, "/subscribe", &fields).await;
        assert_eq!(status, 422, "{address:?}: {page}");
        assert!(page.contains(reason), "{address:?}: {page}");
        assert!(page.contains("value=\"Trần Thị Bình\""), "the name is kept: {page}");
    }
    let (_, page) = post_form(&app, "/subscribe", &[("email", "khong-co-a-cong"), ("name", "An")]).await;
    assert!(page.contains("value=\"khong-co-a-cong\""), "the address is kept: {page}");
    // Two lists and none chosen: the form asks for one.
    app.store.create_list(&list_input(json!({"name": "Bản tin tối"})), Utc::now()).await.unwrap();
    let (status, page) = post_form(&app, "/subscribe", &[("email", "an@hiephoa.example")]).await;
    assert_eq!(status, 422);
    assert!(page.contains("Hãy chọn ít nhất một bản tin."), "{page}");
    assert!(page.contains("value=\"an@hiephoa.example\""));
    smtp.assert_stays_at(0, QUIET).await;
});

both_backends!(html_in_names_is_escaped_in_the_email_and_the_pages, |backend| async move {
    let Some((app, smtp, _)) = app_with_list(backend).await else { return };
    let list_name = "Tin <i>nóng</i>";
    let list = app.store.create_list(&list_input(json!({"name": list_name, "slug": "tin-nong"})), Utc::now()).await;
    let list = list.unwrap();
    let payload = "<script>alert('x')</script><b>Bình</b>";
    let (status, form) = get_page(&app, &format!("{}/subscribe", app.address)).await;
    assert_eq!(status, 200);
    assert!(form.contains("Tin &lt;i&gt;nóng&lt;") && !form.contains(list_name), "{form}");

    let fields = [("email", "khong-hop-le"), ("name", payload), ("lists", list.slug.as_str())];
    let (status, page) = post_form(&app, "/subscribe", &fields).await;
    assert_eq!(status, 422);
    assert!(!page.contains("<script>") && page.contains("&lt;script&gt;"), "{page}");

    let fields = [("email", "xss@hiephoa.example"), ("name", payload), ("lists", list.slug.as_str())];
    let (status, _) = post_form(&app, "/subscribe", &fields).await;
    assert_eq!(status, 200);
    let parsed = smtp.wait_for(1, MAIL_WAIT).await[0].parsed();
    let html = parsed.html();
    assert!(!html.contains("<script>") && !html.contains("<b>") && !html.contains("<i>"), "{html}");
    assert!(html.contains("&lt;script&gt;") && html.contains("Tin &lt;i&gt;nóng&lt;&#x2f;i&gt;"), "{html}");
    assert!(parsed.text().contains(payload), "the plain text part shows the name as typed");
    let to = parsed.header("To").unwrap();
    assert!(to.ends_with("<xss@hiephoa.example>"), "{to}");
});

both_backends!(without_smtp_the_confirmation_lands_in_the_outbox, |backend| async move {
    let Some(app) = TestApp::spawn(backend).await else { return };
    let list = app.store.create_list(&list_input(json!({"name": "Bản tin sáng"})), Utc::now()).await.unwrap();
    let (status, page) = post_form(&app, "/subscribe", &[("email", "hop.thu@hiephoa.example")]).await;
    assert_eq!(status, 200, "{page}");
    let outbox = app.db.dir.path().join("data").join("outbox");
    let started = std::time::Instant::now();
    let eml = loop {
        let files: Vec<_> = std::fs::read_dir(&outbox)
            .map(|dir| {
                dir.filter_map(Result::ok).map(|e| e.path()).filter(|p| p.extension() == Some("eml".as_ref())).collect()
            })
            .unwrap_or_default();
        if let [file] = files.as_slice() {
            break std::fs::read(file).unwrap();
        }
        assert!(files.len() < 2, "one confirmation, not {files:?}");
        assert!(started.elapsed() < MAIL_WAIT, "no .eml in {}", outbox.display());
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let parsed = common::mime::ParsedMail::parse(&eml);
    assert_eq!(parsed.header("To").unwrap(), "hop.thu@hiephoa.example");
    assert!(parsed.text().contains(&list.name));
    let (status, page) = get_page(&app, &app.local_url(&parsed.link_to("/confirm/"))).await;
    assert_eq!(status, 200, "{page}");
    let detail = detail_of(&app, "hop.thu@hiephoa.example").await.unwrap();
    assert_eq!(detail.subscriber.status, SubscriberStatus::Active);
});
