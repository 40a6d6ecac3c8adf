//! Email addresses as subscribers type them. Only the plain `local@domain` form is
//! accepted: no display names, comments, quoting or line breaks, so an address can go into
//! a header as it is and never smuggle in another header or recipient.

use std::fmt;

/// RFC 5321 limits.
const MAX_ADDRESS_LEN: usize = 254;
const MAX_LOCAL_LEN: usize = 64;
const MAX_LABEL_LEN: usize = 63;

/// Characters allowed in the local part besides ASCII letters and digits (RFC 5322 atext).
const LOCAL_SPECIALS: &str = "!#$%&'*+-/=?^_`{|}~.";

/// A syntactically valid address: trimmed, domain in lowercase ASCII (IDNA for
/// internationalised domains).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct EmailAddress(String);

impl EmailAddress {
    pub fn parse(input: &str) -> Result<EmailAddress, String> {
        let s = input.trim();
        if s.is_empty() {
            return Err("is empty".into());
        }
        if s.chars().any(|c| c.is_control()) {
            return Err("must not contain line breaks or control characters".into());
        }
        if s.contains('<') || s.contains('>') || s.contains(',') || s.contains(';') || s.contains('"') {
            return Err("must be a bare address like ten@example.vn, without a name, quotes or a second address".into());
        }
        if s.chars().any(char::is_whitespace) {
            return Err("must not contain spaces".into());
        }
        let Some((local, domain)) = s.rsplit_once('@') else {
            return Err("is missing the @".into());
        };
        if local.contains('@') {
            return Err("must contain a single @".into());
        }
        check_local(local)?;
        let domain = check_domain(domain)?;
        let address = format!("{local}@{domain}");
        if address.len() > MAX_ADDRESS_LEN {
            return Err(format!("is longer than {MAX_ADDRESS_LEN} characters"));
        }
        Ok(EmailAddress(address))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The key that makes two spellings the same subscriber: the whole address in lowercase.
    pub fn key(&self) -> String {
        self.0.to_ascii_lowercase()
    }

    pub fn domain(&self) -> &str {
        self.0.rsplit_once('@').map_or("", |(_, d)| d)
    }
}

fn check_local(local: &str) -> Result<(), String> {
    if local.is_empty() {
        return Err("has nothing before the @".into());
    }
    if local.len() > MAX_LOCAL_LEN {
        return Err(format!("has more than {MAX_LOCAL_LEN} characters before the @"));
    }
    if let Some(c) = local.chars().find(|c| !c.is_ascii_alphanumeric() && !LOCAL_SPECIALS.contains(*c)) {
        return Err(format!("must not contain {c:?} before the @"));
    }
    if local.starts_with('.') || local.ends_with('.') || local.contains("..") {
        return Err("has a misplaced dot before the @".into());
    }
    Ok(())
}

fn check_domain(domain: &str) -> Result<String, String> {
    if domain.is_empty() {
        return Err("has no domain after the @".into());
    }
    let ascii = match url::Host::parse(domain) {
        Ok(url::Host::Domain(d)) => d,
        Ok(_) => return Err("must have a domain name after the @, not an IP address".into()),
        Err(_) => return Err(format!("has an invalid domain {domain:?}")),
    };
    let labels: Vec<&str> = ascii.split('.').collect();
    if labels.len() < 2 || labels.iter().any(|l| l.is_empty()) {
        return Err(format!("has an incomplete domain {domain:?}"));
    }
    for label in &labels {
        let valid = label.len() <= MAX_LABEL_LEN
            && !label.starts_with('-')
            && !label.ends_with('-')
            && label.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-');
        if !valid {
            return Err(format!("has an invalid domain {domain:?}"));
        }
    }
    if labels.last().is_some_and(|tld| tld.bytes().all(|b| b.is_ascii_digit())) {
        return Err(format!("has an invalid domain {domain:?}"));
    }
    Ok(ascii)
}

impl fmt::Display for EmailAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_and_normalises() {
        let e = EmailAddress::parse("  Nguyen.Van+tin@HiepHoa.Example.VN \n").unwrap();
        assert_eq!(e.as_str(), "Nguyen.Van+tin@hiephoa.example.vn");
        assert_eq!(e.key(), "nguyen.van+tin@hiephoa.example.vn");
        assert_eq!(EmailAddress::parse("a@bắc-giang.vn").unwrap().domain(), "xn--bc-giang-800d.vn");
    }

    #[test]
    fn rejects_tricks_with_a_reason() {
        for bad in [
            "",
            "no-at-sign",
            "a@b@c.vn",
            "Tên <a@b.vn>",
            "a@b.vn, c@d.vn",
            "a@b.vn\r\nBcc: x@y.vn",
            "a b@c.vn",
            "\"quoted\"@b.vn",
            ".a@b.vn",
            "a..b@c.vn",
            "a@localhost",
            "a@[127.0.0.1]",
            "a@1.2.3.4",
            "a@-b.vn",
            "a@b..vn",
            "nguyễn@b.vn",
        ] {
            let err = EmailAddress::parse(bad).expect_err(bad);
            assert!(!err.is_empty(), "{bad}");
        }
        let long_local = format!("{}@b.vn", "a".repeat(65));
        assert!(EmailAddress::parse(&long_local).unwrap_err().contains("64"));
        let long = format!("a@{}.vn", vec!["b".repeat(60); 5].join("."));
        assert!(EmailAddress::parse(&long).unwrap_err().contains("254"));
    }
}
