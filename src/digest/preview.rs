//! A list's digest rendered now without a run: for one subscriber (what their next digest
//! holds) or for a sample reader (the list's articles since its last run). Previews and
//! test sends are not deliveries: nothing is claimed or counted and no cursor moves.

use chrono::{DateTime, Duration, Utc};
use serde_json::Map;

use super::Digests;
use super::render::preview_delivery;
use crate::config::Language;
use crate::domain::audience::{SubscriberStatus, SubscriptionStatus};
use crate::domain::email::EmailAddress;
use crate::mail::message::message_id;
use crate::mail::{OutgoingMail, SendError};
use crate::store::audience::{MailingList, Subscriber, SubscriberDetail, Subscription};
use crate::store::digests::RunStatus;

/// How far back a sample reaches when the list has never sent a digest.
const SAMPLE_DAYS: i64 = 7;

pub struct Preview {
    pub mail: OutgoingMail,
    /// New articles, including those past the digest's limit.
    pub total: i64,
    /// Articles that became visible after this time are in it.
    pub since: DateTime<Utc>,
}

impl Digests {
    /// The digest `reader` would get from `list` if it ran now; `None` is a sample reader
    /// in the list's language. A reader who is not on the list is refused.
    pub async fn preview(
        &self,
        list: &MailingList,
        reader: Option<&SubscriberDetail>,
        now: DateTime<Utc>,
    ) -> anyhow::Result<Preview> {
        let sample;
        let detail = match reader {
            Some(detail) => detail,
            None => {
                sample = self.sample_reader(list, now).await?;
                &sample
            }
        };
        let subscription = detail
            .subscriptions
            .iter()
            .find(|s| s.list_id == list.id)
            .ok_or_else(|| anyhow::anyhow!("{} is not subscribed to {}", detail.subscriber.email, list.slug))?;
        let paths = if subscription.categories.is_empty() { &list.categories } else { &subscription.categories };
        let since = subscription.sent_through;
        let content = self.store.articles_between(paths, since, now, self.items).await?;
        let mail = self.render(list, detail, &content, &preview_delivery(list.id, detail.subscriber.id, now))?;
        Ok(Preview { mail, total: content.total, since })
    }

    /// Sends a preview to `to` (an admin's address), with its own Message-ID and the
    /// subject marked as a test. A subscriber's one-click unsubscribe header is left
    /// out, so the admin's mail client cannot unsubscribe them.
    pub async fn send_test(
        &self,
        list: &MailingList,
        reader: Option<&SubscriberDetail>,
        to: &EmailAddress,
        now: DateTime<Utc>,
    ) -> anyhow::Result<Result<Preview, SendError>> {
        let mut preview = self.preview(list, reader, now).await?;
        let lang = self.reader_language(list, reader);
        let tag = self.audience.templates.strings(lang)["digest_test_tag"].as_str().unwrap_or("Test").to_owned();
        let mail = &mut preview.mail;
        mail.to = to.clone();
        mail.to_name = String::new();
        mail.subject = format!("[{tag}] {}", mail.subject);
        let key = format!("digest-test.{}.{}", list.id, now.timestamp_nanos_opt().unwrap_or_default());
        mail.message_id = message_id(&key, &self.base_url);
        if reader.is_some() {
            mail.headers.retain(|(name, _)| !name.starts_with("List-Unsubscribe"));
        }
        Ok(self.audience.mailer.send(mail).await.map(|()| preview))
    }

    /// The reader's language; without a reader, the list's; else the site's.
    pub(crate) fn reader_language(&self, list: &MailingList, reader: Option<&SubscriberDetail>) -> Language {
        let code = reader.map_or(&list.language, |d| &d.subscriber.language);
        Language::parse(code).unwrap_or(self.default_language)
    }

    /// A reader of the list in its language whose last digest was the list's last run.
    async fn sample_reader(&self, list: &MailingList, now: DateTime<Utc>) -> anyhow::Result<SubscriberDetail> {
        let runs = self.store.runs(Some(list.id), 20).await?;
        let last_sent = runs.iter().find(|r| matches!(r.status, RunStatus::Sending | RunStatus::Done));
        let since = last_sent.map_or(now - Duration::days(SAMPLE_DAYS), |r| r.window_end);
        let lang = self.reader_language(list, None);
        let name =
            self.audience.templates.strings(lang)["digest_sample_reader"].as_str().unwrap_or_default().to_owned();
        Ok(SubscriberDetail {
            subscriber: Subscriber {
                id: 0,
                email: list.from_address.clone(),
                name,
                language: lang.code().to_owned(),
                status: SubscriberStatus::Active,
                attributes: Map::new(),
                created_at: since,
                updated_at: since,
                confirmed_at: Some(since),
            },
            subscriptions: vec![Subscription {
                list_id: list.id,
                list: list.slug.clone(),
                status: SubscriptionStatus::Active,
                categories: Vec::new(),
                created_at: since,
                sent_through: since,
            }],
        })
    }
}
