//! Tokens in the links mailed to subscribers (confirm, preferences, unsubscribe). A token
//! names its purpose, the subscriber, the list (for unsubscribe) and an expiry, signed with
//! HMAC-SHA256 under a server secret: nothing is stored per link, so a digest to 100,000
//! people needs no writes, and a token cannot be guessed or altered without the secret
//! (256-bit tag). Erasing a subscriber makes their tokens point at nothing.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, Utc};
use hmac::{Hmac, Mac};
use sha2::Sha256;

/// Length of the signed payload: purpose, subscriber id, list id, expiry.
const PAYLOAD_LEN: usize = 1 + 8 + 8 + 8;
const TAG_LEN: usize = 32;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LinkPurpose {
    Confirm,
    Preferences,
    Unsubscribe,
}

impl LinkPurpose {
    fn code(self) -> u8 {
        match self {
            LinkPurpose::Confirm => b'c',
            LinkPurpose::Preferences => b'p',
            LinkPurpose::Unsubscribe => b'u',
        }
    }
}

/// What a valid token says.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Link {
    pub purpose: LinkPurpose,
    pub subscriber_id: i64,
    /// For unsubscribe: the list to leave; `None` = everything.
    pub list_id: Option<i64>,
    /// `None` = does not expire.
    pub expires_at: Option<DateTime<Utc>>,
}

/// Signs and checks link tokens with the server's secret key.
#[derive(Clone)]
pub struct LinkSigner {
    key: Vec<u8>,
}

impl LinkSigner {
    pub fn new(key: Vec<u8>) -> LinkSigner {
        LinkSigner { key }
    }

    fn mac(&self) -> Hmac<Sha256> {
        Hmac::<Sha256>::new_from_slice(&self.key).expect("HMAC takes keys of any length")
    }

    pub fn sign(&self, link: &Link) -> String {
        let mut bytes = Vec::with_capacity(PAYLOAD_LEN + TAG_LEN);
        bytes.push(link.purpose.code());
        bytes.extend_from_slice(&link.subscriber_id.to_be_bytes());
        bytes.extend_from_slice(&link.list_id.unwrap_or(0).to_be_bytes());
        bytes.extend_from_slice(&link.expires_at.map_or(0, |t| t.timestamp()).to_be_bytes());
        let mut mac = self.mac();
        mac.update(&bytes);
        bytes.extend_from_slice(&mac.finalize().into_bytes());
        URL_SAFE_NO_PAD.encode(bytes)
    }

    /// The link a token stands for, if it is genuine, for `purpose`, and not expired.
    pub fn verify(&self, token: &str, purpose: LinkPurpose, now: DateTime<Utc>) -> Option<Link> {
        let bytes = URL_SAFE_NO_PAD.decode(token.trim()).ok()?;
        if bytes.len() != PAYLOAD_LEN + TAG_LEN {
            return None;
        }
        let (payload, tag) = bytes.split_at(PAYLOAD_LEN);
        let mut mac = self.mac();
        mac.update(payload);
        mac.verify_slice(tag).ok()?;
        if payload[0] != purpose.code() {
            return None;
        }
        let number = |at: usize| i64::from_be_bytes(payload[at..at + 8].try_into().expect("eight bytes"));
        let expires = number(17);
        let expires_at = (expires != 0).then(|| DateTime::from_timestamp(expires, 0)).flatten();
        if expires_at.is_some_and(|t| t <= now) {
            return None;
        }
        let list = number(9);
        Some(Link { purpose, subscriber_id: number(1), list_id: (list != 0).then_some(list), expires_at })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn signer() -> LinkSigner {
        LinkSigner::new(b"0123456789abcdef0123456789abcdef".to_vec())
    }

    #[test]
    fn a_signed_link_verifies_for_its_purpose_only() {
        let now = Utc::now();
        let link = Link { purpose: LinkPurpose::Unsubscribe, subscriber_id: 42, list_id: Some(7), expires_at: None };
        let token = signer().sign(&link);
        assert_eq!(signer().verify(&token, LinkPurpose::Unsubscribe, now), Some(link));
        assert_eq!(signer().verify(&token, LinkPurpose::Preferences, now), None);
        assert_eq!(LinkSigner::new(b"another key".to_vec()).verify(&token, LinkPurpose::Unsubscribe, now), None);
    }

    #[test]
    fn altered_expired_and_junk_tokens_fail() {
        let now = Utc::now();
        let link = Link {
            purpose: LinkPurpose::Confirm,
            subscriber_id: 1,
            list_id: None,
            expires_at: Some(now + chrono::Duration::days(7)),
        };
        let token = signer().sign(&link);
        assert!(signer().verify(&token, LinkPurpose::Confirm, now).is_some());
        assert!(signer().verify(&token, LinkPurpose::Confirm, now + chrono::Duration::days(8)).is_none());
        let mut altered = token.into_bytes();
        altered[3] = if altered[3] == b'A' { b'B' } else { b'A' };
        assert!(signer().verify(&String::from_utf8(altered).unwrap(), LinkPurpose::Confirm, now).is_none());
        for junk in ["", "abc", "!!!!", &"A".repeat(88)] {
            assert!(signer().verify(junk, LinkPurpose::Confirm, now).is_none());
        }
    }
}
