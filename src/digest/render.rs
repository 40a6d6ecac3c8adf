//! One subscriber's digest as a message: subject with the date and count, articles grouped
//! by category (newest first), a summary cut at a word boundary, the footer links, and the
//! list headers (List-Id, one-click List-Unsubscribe). The Message-ID is derived from the
//! run and the subscriber, so a retry sends the same one.

use chrono::{DateTime, Datelike, Utc, Weekday};
use chrono_tz::Tz;
use serde_json::{Value, json};

use super::Digests;
use crate::config::Language;
use crate::domain::email::EmailAddress;
use crate::mail::message::message_id;
use crate::mail::{OutgoingMail, SharedBody, TextBody};
use crate::store::Article;
use crate::store::audience::{MailingList, SubscriberDetail};
use crate::store::digests::{ClaimedDelivery, DigestContent};
use crate::templates::Templates;

/// Longest summary shown per article, in characters.
const SUMMARY_CHARS: usize = 220;

const VI_WEEKDAYS: [&str; 7] = ["Thứ Hai", "Thứ Ba", "Thứ Tư", "Thứ Năm", "Thứ Sáu", "Thứ Bảy", "Chủ Nhật"];
const EN_MONTHS: [&str; 12] = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];

/// "Thứ Tư, 25/11/2026" or "Wednesday, 25 Nov 2026".
pub fn long_date(at: DateTime<Tz>, lang: Language) -> String {
    match lang {
        Language::Vi => {
            format!(
                "{}, {:02}/{:02}/{}",
                VI_WEEKDAYS[at.weekday().num_days_from_monday() as usize],
                at.day(),
                at.month(),
                at.year()
            )
        }
        Language::En => {
            format!("{}, {} {} {}", weekday_en(at.weekday()), at.day(), EN_MONTHS[at.month0() as usize], at.year())
        }
    }
}

fn weekday_en(day: Weekday) -> &'static str {
    match day {
        Weekday::Mon => "Monday",
        Weekday::Tue => "Tuesday",
        Weekday::Wed => "Wednesday",
        Weekday::Thu => "Thursday",
        Weekday::Fri => "Friday",
        Weekday::Sat => "Saturday",
        Weekday::Sun => "Sunday",
    }
}

/// "25/11" or "25 Nov".
fn short_date(at: DateTime<Tz>, lang: Language) -> String {
    match lang {
        Language::Vi => format!("{:02}/{:02}", at.day(), at.month()),
        Language::En => format!("{} {}", at.day(), EN_MONTHS[at.month0() as usize]),
    }
}

/// Text of an HTML fragment: tags dropped, the common entities decoded, spaces collapsed.
pub fn plain_text(html: &str) -> String {
    let mut text = String::with_capacity(html.len());
    let mut in_tag = false;
    for c in html.chars() {
        match c {
            '<' => {
                in_tag = true;
                text.push(' ');
            }
            '>' if in_tag => in_tag = false,
            c if !in_tag => text.push(c),
            _ => {}
        }
    }
    let decoded = text
        .replace("&nbsp;", " ")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&#39;", "'")
        .replace("&amp;", "&");
    decoded.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// At most `max` characters, cut at a word boundary, with "…" when cut.
pub fn cut_at_word(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        return text.to_owned();
    }
    let end = text.char_indices().nth(max).map_or(text.len(), |(i, _)| i);
    let head = &text[..end];
    let cut = head.rfind(char::is_whitespace).filter(|&i| i > 0).unwrap_or(end);
    format!("{}…", head[..cut].trim_end_matches(|c: char| c.is_whitespace() || ",.;:".contains(c)))
}

fn fill(template: &str, pairs: &[(&str, &str)]) -> String {
    pairs.iter().fold(template.to_owned(), |text, (key, value)| text.replace(&format!("{{{key}}}"), value))
}

impl Digests {
    fn item(&self, article: &Article, tz: Tz, lang: Language) -> Value {
        let summary = article
            .summary
            .clone()
            .filter(|s| !s.trim().is_empty())
            .unwrap_or_else(|| plain_text(&article.content_html));
        let local = article.published_at.with_timezone(&tz);
        let when = format!("{} {}", local.format("%H:%M"), short_date(local, lang));
        let meta = match &article.author {
            Some(author) => format!("{} · {when}", author.name),
            None => when,
        };
        json!({
            "title": article.title,
            "url": article.url,
            "image": article.image,
            "meta": meta,
            "summary": cut_at_word(&summary, SUMMARY_CHARS),
        })
    }

    /// What every reader of a run sees: heading, date, articles grouped by category
    /// (newest first), the "and N more" link.
    pub fn page_context(
        &self,
        list: &MailingList,
        content: &DigestContent,
        lang: Language,
        day: DateTime<Tz>,
    ) -> Value {
        let tz = day.timezone();
        let t = self.audience.templates.strings(lang);
        let other = if lang == Language::Vi { "Khác" } else { "Other" };
        let mut groups: Vec<(String, Vec<Value>)> = Vec::new();
        for article in &content.articles {
            let category = article.category.as_ref().map_or_else(|| other.to_owned(), |c| c.names.join(" › "));
            let item = self.item(article, tz, lang);
            match groups.iter_mut().find(|(name, _)| *name == category) {
                Some((_, items)) => items.push(item),
                None => groups.push((category, vec![item])),
            }
        }
        let more = content.total - content.articles.len() as i64;
        let subject_key = if content.total == 0 { "digest_subject_empty" } else { "digest_subject" };
        let subject = fill(
            t[subject_key].as_str().unwrap_or_default(),
            &[("list", &list.name), ("date", &short_date(day, lang)), ("count", &content.total.to_string())],
        );
        json!({
            "subject": subject,
            "heading": list.name,
            "date": long_date(day, lang),
            "groups": groups.iter().map(|(category, items)| json!({"category": category, "items": items})).collect::<Vec<_>>(),
            "more": more,
            "more_text": fill(t["digest_more"].as_str().unwrap_or_default(), &[("count", &more.to_string())]),
            "more_url": self.site_url,
            "site_name": self.site_name,
            "site_url": self.site_url,
            "subscribe_url": format!("{}/subscribe?list={}", self.base_url, list.slug),
        })
    }

    /// The template context of a delivery without the reader's own links: what every
    /// reader of the same content, run and language sees.
    fn shared_context(
        &self,
        list: &MailingList,
        content: &DigestContent,
        lang: Language,
        delivery: &ClaimedDelivery,
    ) -> Value {
        let tz: Tz = list.timezone.parse().unwrap_or(chrono_tz::Asia::Ho_Chi_Minh);
        let t = self.audience.templates.strings(lang);
        let mut context = self.page_context(list, content, lang, delivery.scheduled_at.with_timezone(&tz));
        let preheader: Vec<&str> = content.articles.iter().take(3).map(|a| a.title.as_str()).collect();
        if let Some(map) = context.as_object_mut() {
            map.insert("preheader".into(), preheader.join(" · ").into());
            let why =
                fill(t["digest_why"].as_str().unwrap_or_default(), &[("list", &list.name), ("site", &self.site_name)]);
            map.insert("why".into(), why.into());
            if delivery.run_id > 0 {
                map.insert("view_url".into(), format!("{}/digests/{}", self.base_url, delivery.run_id).into());
            }
        }
        context
    }

    /// The reader's own links, signed for them.
    fn reader_links(&self, list: &MailingList, detail: &SubscriberDetail) -> ReaderLinks {
        let unsubscribe_token = self.audience.unsubscribe_token(detail.subscriber.id, Some(list.id));
        let unsubscribe_url = format!("{}/unsubscribe/{unsubscribe_token}", self.base_url);
        // The one-click https link first (RFC 8058), then the mailbox for clients that
        // only write mail; its subject carries the same token.
        let list_unsubscribe = match &self.unsubscribe_mailto {
            Some(mailbox) => format!("<{unsubscribe_url}>, <mailto:{mailbox}?subject=unsubscribe-{unsubscribe_token}>"),
            None => format!("<{unsubscribe_url}>"),
        };
        ReaderLinks {
            preferences_url: self.audience.preferences_url(detail.subscriber.id),
            unsubscribe_url,
            list_unsubscribe,
        }
    }

    /// Both parts rendered with `links` in the context.
    fn render_parts(
        &self,
        lang: Language,
        mut context: Value,
        preferences_url: &str,
        unsubscribe_url: &str,
    ) -> anyhow::Result<(String, String)> {
        if let Some(map) = context.as_object_mut() {
            map.insert("preferences_url".into(), preferences_url.into());
            map.insert("unsubscribe_url".into(), unsubscribe_url.into());
        }
        let templates = &self.audience.templates;
        Ok((templates.render(TEXT, lang, context.clone())?, templates.render(HTML, lang, context)?))
    }

    /// The message around the rendered parts: addresses, subject, Message-ID, list headers.
    fn message(
        &self,
        list: &MailingList,
        detail: &SubscriberDetail,
        delivery: &ClaimedDelivery,
        subject: String,
        (text, html): (TextBody, TextBody),
        links: ReaderLinks,
    ) -> anyhow::Result<OutgoingMail> {
        let from = EmailAddress::parse(&list.from_address).map_err(|e| anyhow::anyhow!("list from address {e}"))?;
        let host =
            url::Url::parse(&self.base_url).ok().and_then(|u| u.host_str().map(str::to_owned)).unwrap_or_default();
        Ok(OutgoingMail {
            from_name: list.from_name.clone(),
            reply_to: Some(from.clone()),
            from_address: from,
            to_name: detail.subscriber.name.clone(),
            to: EmailAddress::parse(&detail.subscriber.email).map_err(|e| anyhow::anyhow!("stored address {e}"))?,
            subject,
            text,
            html,
            message_id: message_id(&format!("digest.{}.{}", delivery.run_id, detail.subscriber.id), &self.base_url),
            headers: vec![
                ("List-Id", format!("<{}.{host}>", list.slug)),
                ("List-Unsubscribe", links.list_unsubscribe),
                ("List-Unsubscribe-Post", "List-Unsubscribe=One-Click".to_owned()),
            ],
        })
    }

    /// The message for one delivery, rendered for this reader alone (also used by
    /// previews, with `delivery` made up).
    pub fn render(
        &self,
        list: &MailingList,
        detail: &SubscriberDetail,
        content: &DigestContent,
        delivery: &ClaimedDelivery,
    ) -> anyhow::Result<OutgoingMail> {
        let lang = self.reader_language(list, Some(detail));
        let context = self.shared_context(list, content, lang, delivery);
        let subject = context["subject"].as_str().unwrap_or_default().to_owned();
        let links = self.reader_links(list, detail);
        let (text, html) = self.render_parts(lang, context, &links.preferences_url, &links.unsubscribe_url)?;
        self.message(list, detail, delivery, subject, (text.into(), html.into()), links)
    }

    /// The digest of `content` in `lang` for a run, rendered once for all its readers
    /// with a placeholder for each reader's links. Checked against a rendering with
    /// made-up links: a template that does more with a link than print it (a filter, a
    /// test) is rendered per reader instead.
    pub fn shared(
        &self,
        list: &MailingList,
        content: &DigestContent,
        lang: Language,
        delivery: &ClaimedDelivery,
    ) -> anyhow::Result<SharedDigest> {
        let context = self.shared_context(list, content, lang, delivery);
        let subject = context["subject"].as_str().unwrap_or_default().to_owned();
        let mut nonce = [0u8; 8];
        getrandom::fill(&mut nonce).map_err(|e| anyhow::anyhow!("no randomness for placeholders: {e}"))?;
        let nonce = hex::encode(nonce);
        let slots = [format!("\u{e000}{nonce}:preferences\u{e001}"), format!("\u{e000}{nonce}:unsubscribe\u{e001}")];
        let (text, html) = self.render_parts(lang, context.clone(), &slots[0], &slots[1])?;
        let placeholders = [slots[0].as_str(), slots[1].as_str()];
        let shared = Spliced {
            subject,
            text: SharedBody::new(&text, &placeholders),
            html: SharedBody::new(&html, &placeholders),
        };
        let probe = ["https://probe.invalid/preferences/<Đ&'\"/x>", "https://probe.invalid/u/a=1&b=2"];
        let (text, html) = self.render_parts(lang, context, probe[0], probe[1])?;
        let spliced = shared.parts(&self.audience.templates, probe[0], probe[1]);
        if spliced.as_ref().is_some_and(|(t, h)| t.as_str() == text && h.as_str() == html) {
            Ok(SharedDigest(Some(shared)))
        } else {
            tracing::debug!(
                list = list.slug,
                "the digest templates use the reader's links in more than print them: rendering per reader"
            );
            Ok(SharedDigest(None))
        }
    }

    /// One reader's message from a shared digest: byte for byte what [`Digests::render`]
    /// gives them.
    pub fn render_shared(
        &self,
        shared: &SharedDigest,
        list: &MailingList,
        detail: &SubscriberDetail,
        content: &DigestContent,
        delivery: &ClaimedDelivery,
    ) -> anyhow::Result<OutgoingMail> {
        let Some(spliced) = &shared.0 else { return self.render(list, detail, content, delivery) };
        let links = self.reader_links(list, detail);
        let Some(parts) = spliced.parts(&self.audience.templates, &links.preferences_url, &links.unsubscribe_url)
        else {
            return self.render(list, detail, content, delivery);
        };
        self.message(list, detail, delivery, spliced.subject.clone(), parts, links)
    }
}

const TEXT: &str = "email/digest.txt";
const HTML: &str = "email/digest.html";

/// The links that are the reader's own.
struct ReaderLinks {
    preferences_url: String,
    unsubscribe_url: String,
    /// The List-Unsubscribe header.
    list_unsubscribe: String,
}

/// A digest rendered once for the readers of the same content, run and language; `None`
/// when the templates need each reader rendered on their own.
pub struct SharedDigest(Option<Spliced>);

impl SharedDigest {
    /// Whether readers get the shared rendering with their links spliced in (else each
    /// is rendered alone).
    pub fn is_spliced(&self) -> bool {
        self.0.is_some()
    }
}

struct Spliced {
    subject: String,
    text: SharedBody,
    html: SharedBody,
}

impl Spliced {
    /// Both parts with the reader's links, printed as each template prints them.
    fn parts(
        &self,
        templates: &Templates,
        preferences_url: &str,
        unsubscribe_url: &str,
    ) -> Option<(TextBody, TextBody)> {
        let text = [templates.printed(TEXT, preferences_url)?, templates.printed(TEXT, unsubscribe_url)?];
        let html = [templates.printed(HTML, preferences_url)?, templates.printed(HTML, unsubscribe_url)?];
        Some((
            self.text.fill(&[text[0].as_str(), text[1].as_str()]),
            self.html.fill(&[html[0].as_str(), html[1].as_str()]),
        ))
    }
}

/// A delivery stand-in for previews: nothing is claimed, the window ends now.
pub fn preview_delivery(list_id: i64, subscriber_id: i64, now: DateTime<Utc>) -> ClaimedDelivery {
    ClaimedDelivery { id: 0, run_id: 0, list_id, subscriber_id, attempts: 0, window_end: now, scheduled_at: now }
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::*;

    #[test]
    fn dates_read_naturally() {
        let at = chrono_tz::Asia::Ho_Chi_Minh.with_ymd_and_hms(2026, 11, 25, 6, 0, 0).unwrap();
        assert_eq!(long_date(at, Language::Vi), "Thứ Tư, 25/11/2026");
        assert_eq!(long_date(at, Language::En), "Wednesday, 25 Nov 2026");
        assert_eq!(short_date(at, Language::Vi), "25/11");
    }

    #[test]
    fn summaries_are_cut_at_a_word() {
        assert_eq!(cut_at_word("Lúa mùa bội thu", 50), "Lúa mùa bội thu");
        assert_eq!(cut_at_word("Lúa mùa bội thu ở Hiệp Hòa", 12), "Lúa mùa bội…");
        assert_eq!(plain_text("<p>Nông dân &amp; <b>hợp tác xã</b></p><p>vui</p>"), "Nông dân & hợp tác xã vui");
    }
}
