//! The app's mailer against the in-process SMTP server: what arrives (headers, bodies,
//! dot-unstuffed lines, credentials) and how relay failures are classified, which the
//! digest's retry logic relies on.

mod common;

use std::time::Duration;

use bantin::domain::email::EmailAddress;
use bantin::mail::{Mailer, OutgoingMail, SendError};
use common::smtp::SmtpServer;

fn mail_to(address: &str, key: &str) -> OutgoingMail {
    OutgoingMail {
        from_name: "Tin Hiệp Hòa".into(),
        from_address: EmailAddress::parse("bantin@hiephoa.example").unwrap(),
        reply_to: None,
        to_name: "Đỗ Gia".into(),
        to: EmailAddress::parse(address).unwrap(),
        subject: "Bản tin sáng — thứ Tư".into(),
        // A line that starts with a dot is stuffed on the wire and must arrive as written.
        text: "Chào bạn,\n.dòng bắt đầu bằng dấu chấm\n..và hai dấu chấm\nhttps://tin.hiephoa.example/tin/1".into(),
        html: "<p>Chào bạn, <a href=\"https://tin.hiephoa.example/tin/1?a=1&amp;b=2\">tin 1</a></p>".into(),
        message_id: format!("{key}@tin.hiephoa.example"),
        headers: vec![("List-Unsubscribe-Post", "List-Unsubscribe=One-Click".into())],
    }
}

fn mailer_for(smtp: &SmtpServer, credentials: &str) -> Mailer {
    let url = format!("smtp://{credentials}127.0.0.1:{}", smtp.port).parse().unwrap();
    Mailer::new(Some(&url), 2, std::env::temp_dir()).unwrap()
}

#[tokio::test]
async fn a_message_arrives_as_built_with_its_credentials() {
    let smtp = SmtpServer::start().await;
    let mailer = mailer_for(&smtp, "bantin:m%E1%BA%ADt-kh%E1%BA%A9u@");
    mailer.send(&mail_to("do.gia@hiephoa.example", "one")).await.unwrap();
    let received = smtp.wait_for(1, Duration::from_secs(5)).await;
    let mail = &received[0];
    assert_eq!(mail.from, "bantin@hiephoa.example");
    assert_eq!(mail.to, ["do.gia@hiephoa.example"]);
    assert_eq!(mail.auth_user.as_deref(), Some("bantin"));
    let parsed = mail.parsed();
    assert_eq!(parsed.header("Subject").unwrap(), "Bản tin sáng — thứ Tư");
    assert_eq!(parsed.header("Message-ID").unwrap(), "<one@tin.hiephoa.example>");
    assert_eq!(parsed.header("List-Unsubscribe-Post").unwrap(), "List-Unsubscribe=One-Click");
    assert_eq!(parsed.media_type, "multipart/alternative");
    assert_eq!(parsed.text(), mail_to("x@y.example", "").text.as_str());
    assert!(parsed.html().contains("tin 1"));
    let links = parsed.links();
    assert_eq!(links, ["https://tin.hiephoa.example/tin/1?a=1&b=2", "https://tin.hiephoa.example/tin/1"]);
    assert_eq!(smtp.received_by("DO.GIA@hiephoa.example").len(), 1);
}

#[tokio::test]
async fn a_refused_recipient_is_permanent_and_a_451_is_transient() {
    let smtp = SmtpServer::start().await;
    let mailer = mailer_for(&smtp, "");
    smtp.reply_to_recipient("khong.co@hiephoa.example", "550 5.1.1 No such user");
    let refused = mailer.send(&mail_to("khong.co@hiephoa.example", "refused")).await;
    assert!(matches!(&refused, Err(SendError::Permanent(e)) if e.contains("550")), "{refused:?}");

    smtp.fail_next_messages(2, "451 4.3.0 Try again later");
    for attempt in 1..=2 {
        let result = mailer.send(&mail_to("an@hiephoa.example", "retried")).await;
        assert!(matches!(&result, Err(SendError::Transient(e)) if e.contains("451")), "attempt {attempt}: {result:?}");
    }
    mailer.send(&mail_to("an@hiephoa.example", "retried")).await.unwrap();
    assert_eq!(smtp.attempts(), 3, "the refused recipient never got to send its data");
    assert_eq!(smtp.received().len(), 1);

    smtp.clear_faults();
    mailer.send(&mail_to("khong.co@hiephoa.example", "later")).await.unwrap();
    assert_eq!(smtp.received().len(), 2);
}

#[tokio::test]
async fn a_relay_that_is_down_is_a_transient_failure_until_it_comes_back() {
    let smtp = SmtpServer::start().await;
    let mailer = mailer_for(&smtp, "");
    mailer.send(&mail_to("an@hiephoa.example", "before")).await.unwrap();
    smtp.go_down();
    // The pooled connection is hung up on, and new ones are refused.
    for attempt in 1..=2 {
        let result = mailer.send(&mail_to("an@hiephoa.example", "during")).await;
        assert!(matches!(result, Err(SendError::Transient(_))), "attempt {attempt}: {result:?}");
    }
    smtp.come_back_up().await;
    mailer.send(&mail_to("an@hiephoa.example", "after")).await.unwrap();
    let ids: Vec<String> = smtp.received().iter().map(|m| m.parsed().header("Message-ID").unwrap()).collect();
    assert_eq!(ids, ["<before@tin.hiephoa.example>", "<after@tin.hiephoa.example>"]);
}
