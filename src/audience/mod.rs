//! The audience side of bantin: what a subscribe form, a confirmation link, the preference
//! centre, an import or an admin does to lists and subscribers, over the store, the mailer,
//! the templates and the link signer. HTTP handlers and CLI commands are thin over this.

pub mod admin;
pub mod csv;

use std::sync::Arc;

use anyhow::Context;
use chrono::{DateTime, Duration, Utc};
use serde_json::json;

use crate::config::{Config, Language};
use crate::domain::audience::{ListDefaults, SubscriptionStatus};
use crate::domain::email::EmailAddress;
use crate::domain::link::{Link, LinkPurpose, LinkSigner};
use crate::mail::message::message_id;
use crate::mail::{Mailer, OutgoingMail, SendError};
use crate::store::Store;
use crate::templates::Templates;

/// How long a confirmation link works.
pub const CONFIRM_VALIDITY: Duration = Duration::days(7);
/// Least time between two confirmation emails to one address.
pub const CONFIRM_INTERVAL: Duration = Duration::minutes(10);

/// Name of the stored secret that signs subscriber links.
const LINK_KEY: &str = "link_key";

pub struct Audience {
    pub store: Arc<dyn Store>,
    pub mailer: Mailer,
    pub templates: Arc<Templates>,
    signer: LinkSigner,
    base_url: String,
    site_name: String,
    site_url: String,
    language: Language,
    timezone: chrono_tz::Tz,
}

impl Audience {
    pub async fn new(config: &Config, store: Arc<dyn Store>, templates: Arc<Templates>) -> anyhow::Result<Audience> {
        let mailer = Mailer::new(config.smtp_url.as_ref(), config.smtp_connections, config.data_dir.join("outbox"))?
            .with_dkim(config.dkim.clone());
        let mut fresh = [0u8; 32];
        getrandom::fill(&mut fresh).map_err(|e| anyhow::anyhow!("no randomness from the OS: {e}"))?;
        let key = store.secret(LINK_KEY, &hex::encode(fresh)).await.context("cannot read the link signing key")?;
        let key = hex::decode(key).context("the stored link signing key is not hex")?;
        Ok(Audience {
            store,
            mailer,
            templates,
            signer: LinkSigner::new(key),
            base_url: config.base_url.clone(),
            site_name: config.site_name.clone(),
            site_url: config.site_url.clone(),
            language: config.language,
            timezone: config.timezone,
        })
    }

    /// The audience with the configured templates, as the server and the CLI use it.
    pub async fn load(config: &Config, store: Arc<dyn Store>) -> anyhow::Result<Audience> {
        let templates = Arc::new(Templates::load(config.templates_dir.as_deref())?);
        Audience::new(config, store, templates).await
    }

    pub fn language(&self) -> Language {
        self.language
    }

    pub fn site_name(&self) -> &str {
        &self.site_name
    }

    pub fn list_defaults(&self) -> ListDefaults {
        let host = url::Url::parse(&self.base_url).ok().and_then(|u| u.host_str().map(str::to_owned));
        let host = host.filter(|h| h.contains('.') && h.parse::<std::net::IpAddr>().is_err());
        ListDefaults {
            timezone: self.timezone,
            language: self.language,
            from_name: self.site_name.clone(),
            from_address: format!("bantin@{}", host.unwrap_or_else(|| "localhost.localdomain".into())),
        }
    }

    fn link_url(&self, path: &str, link: &Link) -> String {
        format!("{}/{path}/{}", self.base_url, self.signer.sign(link))
    }

    pub fn confirm_url(&self, subscriber_id: i64, now: DateTime<Utc>) -> String {
        let link = Link {
            purpose: LinkPurpose::Confirm,
            subscriber_id,
            list_id: None,
            expires_at: Some(now + CONFIRM_VALIDITY),
        };
        self.link_url("confirm", &link)
    }

    pub fn preferences_url(&self, subscriber_id: i64) -> String {
        let link = Link { purpose: LinkPurpose::Preferences, subscriber_id, list_id: None, expires_at: None };
        self.link_url("preferences", &link)
    }

    /// The one-click unsubscribe link for one list, or for everything with `None`.
    pub fn unsubscribe_url(&self, subscriber_id: i64, list_id: Option<i64>) -> String {
        format!("{}/unsubscribe/{}", self.base_url, self.unsubscribe_token(subscriber_id, list_id))
    }

    /// The token of [`Audience::unsubscribe_url`], also put in the List-Unsubscribe mailto.
    pub fn unsubscribe_token(&self, subscriber_id: i64, list_id: Option<i64>) -> String {
        self.signer.sign(&Link { purpose: LinkPurpose::Unsubscribe, subscriber_id, list_id, expires_at: None })
    }

    pub fn verify(&self, token: &str, purpose: LinkPurpose, now: DateTime<Utc>) -> Option<Link> {
        self.signer.verify(token, purpose, now)
    }

    /// Mails the confirmation link for the subscriber's unconfirmed subscriptions and
    /// records when. Does nothing when none is waiting.
    pub async fn send_confirmation(&self, subscriber_id: i64, now: DateTime<Utc>) -> anyhow::Result<()> {
        let Some(detail) = self.store.subscriber(subscriber_id).await? else { return Ok(()) };
        if detail.subscriber.status.is_barred() {
            return Ok(());
        }
        let lists = self.store.lists().await?;
        let waiting: Vec<_> = detail
            .subscriptions
            .iter()
            .filter(|s| s.status == SubscriptionStatus::Unconfirmed)
            .filter_map(|s| lists.iter().find(|l| l.id == s.list_id))
            .collect();
        let Some(first) = waiting.first() else { return Ok(()) };
        let lang = Language::parse(&detail.subscriber.language).unwrap_or(self.language);
        let subject = self.templates.strings(lang)["confirm_subject"].as_str().unwrap_or_default().to_owned();
        let context = json!({
            "subject": subject,
            "name": detail.subscriber.name,
            "lists": waiting.iter().map(|l| &l.name).collect::<Vec<_>>(),
            "confirm_url": self.confirm_url(subscriber_id, now),
            "site_name": self.site_name,
            "site_url": self.site_url,
        });
        let to = EmailAddress::parse(&detail.subscriber.email).map_err(|e| anyhow::anyhow!("stored address {e}"))?;
        let from = EmailAddress::parse(&first.from_address).map_err(|e| anyhow::anyhow!("list from address {e}"))?;
        let mail = OutgoingMail {
            from_name: first.from_name.clone(),
            from_address: from,
            reply_to: None,
            to_name: detail.subscriber.name.clone(),
            to,
            subject,
            text: self.templates.render("email/confirm.txt", lang, context.clone())?.into(),
            html: self.templates.render("email/confirm.html", lang, context)?.into(),
            message_id: message_id(&format!("confirm.{subscriber_id}.{}", now.timestamp_millis()), &self.base_url),
            headers: Vec::new(),
        };
        match self.mailer.send(&mail).await {
            Ok(()) => {}
            Err(SendError::Permanent(e)) => {
                anyhow::bail!("the confirmation to subscriber {subscriber_id} was refused: {e}")
            }
            Err(SendError::Transient(e)) => anyhow::bail!("the confirmation to subscriber {subscriber_id} failed: {e}"),
        }
        self.store.confirmation_sent(subscriber_id, now).await?;
        Ok(())
    }

    /// Sends the confirmation in the background: the page answers at once and takes
    /// the same time whether or not anything is sent.
    pub fn send_confirmation_later(self: &Arc<Self>, subscriber_id: i64) {
        let audience = self.clone();
        tokio::spawn(async move {
            if let Err(e) = audience.send_confirmation(subscriber_id, Utc::now()).await {
                tracing::warn!(subscriber_id, error = format!("{e:#}"), "confirmation email not sent");
            }
        });
    }

    /// Writes an admin action to the audit log; a failure is logged, not returned, so
    /// the action itself stands.
    pub async fn audit(&self, actor: &str, action: &str, subject: &str, detail: serde_json::Value) {
        if let Err(e) = self.store.record_audit(actor, action, subject, &detail, Utc::now()).await {
            tracing::error!(error = %e, action, "cannot write the audit log");
        }
    }
}
