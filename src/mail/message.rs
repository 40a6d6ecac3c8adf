//! One outgoing message: multipart/alternative (text and HTML), UTF-8 headers, a
//! Message-ID chosen by the caller (so a retry sends the same one), and extra headers
//! such as List-Unsubscribe.

use lettre::Message;
use lettre::message::header::{HeaderName, HeaderValue};
use lettre::message::{Mailbox, MultiPart};

use super::body::TextBody;
use crate::domain::email::EmailAddress;

#[derive(Clone, Debug)]
pub struct OutgoingMail {
    pub from_name: String,
    pub from_address: EmailAddress,
    pub reply_to: Option<EmailAddress>,
    pub to_name: String,
    pub to: EmailAddress,
    pub subject: String,
    pub text: TextBody,
    pub html: TextBody,
    /// Without angle brackets: `<local>@<domain>`.
    pub message_id: String,
    /// Extra headers, names in ASCII (`List-Unsubscribe`, `List-Id`…).
    pub headers: Vec<(&'static str, String)>,
}

fn mailbox(name: &str, address: &EmailAddress) -> anyhow::Result<Mailbox> {
    let name = (!name.trim().is_empty()).then(|| name.trim().to_owned());
    Ok(Mailbox::new(name, address.as_str().parse()?))
}

impl OutgoingMail {
    pub fn build(&self) -> anyhow::Result<Message> {
        let mut builder = Message::builder()
            .from(mailbox(&self.from_name, &self.from_address)?)
            .to(mailbox(&self.to_name, &self.to)?)
            .subject(&self.subject)
            .date_now()
            .message_id(Some(format!("<{}>", self.message_id)));
        if let Some(reply_to) = &self.reply_to {
            builder = builder.reply_to(mailbox("", reply_to)?);
        }
        for (name, value) in &self.headers {
            // Header values come from our own URLs and names; line breaks would
            // start a new header, so they are refused outright.
            anyhow::ensure!(!value.contains(['\r', '\n']), "header {name} contains a line break");
            builder = builder.raw_header(HeaderValue::new(HeaderName::new_from_ascii_str(name), value.clone()));
        }
        Ok(builder.multipart(MultiPart::alternative_plain_html(self.text.encoded(), self.html.encoded()))?)
    }
}

/// A Message-ID for `key` (unique to what is sent, stable across retries) at the host
/// of the public base URL.
pub fn message_id(key: &str, base_url: &str) -> String {
    let host = url::Url::parse(base_url).ok().and_then(|u| u.host_str().map(str::to_owned));
    format!("{key}@{}", host.unwrap_or_else(|| "bantin.invalid".into()))
}
