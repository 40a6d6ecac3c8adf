//! Fetching upstream feeds over http(s): conditional GET with the stored validators, a
//! size and a time limit, few redirects and never to another scheme, and an address
//! guard against server-side request forgery. Host names are resolved, the addresses
//! checked, and the connection made to a checked address (the guard is the client's
//! resolver); addresses written in URLs are checked before any request.

use std::io::Read;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::Duration;

use chrono::{DateTime, Utc};
use reqwest::dns::{Addrs, Name, Resolve, Resolving};
use reqwest::header::{
    CONTENT_ENCODING, ETAG, HeaderMap, IF_MODIFIED_SINCE, IF_NONE_MATCH, LAST_MODIFIED, RETRY_AFTER,
};
use reqwest::{StatusCode, redirect};
use url::{Host, Url};

const MAX_REDIRECTS: usize = 5;
const ACCEPT: &str = "application/rss+xml, application/atom+xml, application/feed+json, application/xml;q=0.9, \
                      text/xml;q=0.9, application/json;q=0.8, */*;q=0.5";

/// Which addresses feeds may be fetched from.
#[derive(Clone, Copy, Debug)]
pub struct AddressPolicy {
    /// Private networks and loopback (an intranet CMS); link-local and metadata never.
    pub allow_private: bool,
}

impl AddressPolicy {
    /// Why `ip` is refused, if it is.
    pub fn refusal(self, ip: IpAddr) -> Option<&'static str> {
        let ip = match ip {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(IpAddr::V6(v6), IpAddr::V4),
            v4 => v4,
        };
        if is_metadata_or_link_local(ip) {
            return Some("a link-local or cloud metadata address");
        }
        if ip.is_multicast() || ip == IpAddr::V4(Ipv4Addr::BROADCAST) {
            return Some("a multicast or broadcast address");
        }
        if !self.allow_private && is_private(ip) {
            return Some("a private, loopback or unspecified address (sources_allow_private is off)");
        }
        None
    }

    fn check_url(self, url: &Url) -> Result<(), String> {
        if !matches!(url.scheme(), "http" | "https") {
            return Err(format!("{} is refused: only http and https are fetched", url.scheme()));
        }
        let ip = match url.host() {
            Some(Host::Ipv4(ip)) => IpAddr::V4(ip),
            Some(Host::Ipv6(ip)) => IpAddr::V6(ip),
            Some(Host::Domain(_)) => return Ok(()),
            None => return Err("the URL has no host".into()),
        };
        match self.refusal(ip) {
            Some(why) => Err(format!("{ip} is refused: {why}")),
            None => Ok(()),
        }
    }
}

fn is_metadata_or_link_local(ip: IpAddr) -> bool {
    match ip {
        // 169.254.0.0/16 holds the AWS, GCP, Azure and OpenStack metadata services;
        // 100.100.100.200 is Alibaba Cloud's.
        IpAddr::V4(v4) => v4.is_link_local() || v4 == Ipv4Addr::new(100, 100, 100, 200),
        // fe80::/10, and AWS's IPv6 metadata address fd00:ec2::254.
        IpAddr::V6(v6) => {
            (v6.segments()[0] & 0xffc0) == 0xfe80 || v6 == Ipv6Addr::new(0xfd00, 0xec2, 0, 0, 0, 0, 0, 0x254)
        }
    }
}

fn is_private(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => {
            let [a, b, ..] = v4.octets();
            v4.is_private()
                || v4.is_loopback()
                || a == 0
                // 100.64.0.0/10, carrier-grade NAT.
                || (a == 100 && (64..128).contains(&b))
        }
        // fc00::/7, unique local addresses.
        IpAddr::V6(v6) => v6.is_loopback() || v6.is_unspecified() || (v6.segments()[0] & 0xfe00) == 0xfc00,
    }
}

/// The client's resolver: resolves with the system, keeps the allowed addresses.
struct GuardedResolver {
    policy: AddressPolicy,
}

#[derive(Debug, thiserror::Error)]
#[error("{host} resolves to {ip}, which is refused: {why}")]
struct RefusedAddress {
    host: String,
    ip: IpAddr,
    why: &'static str,
}

impl Resolve for GuardedResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let policy = self.policy;
        let host = name.as_str().to_owned();
        Box::pin(async move {
            let resolved: Vec<SocketAddr> = tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            let mut refused = None;
            let allowed: Vec<SocketAddr> = resolved
                .into_iter()
                .filter(|addr| match policy.refusal(addr.ip()) {
                    Some(why) => {
                        refused.get_or_insert(RefusedAddress { host: host.clone(), ip: addr.ip(), why });
                        false
                    }
                    None => true,
                })
                .collect();
            match (allowed.is_empty(), refused) {
                (true, Some(refused)) => Err(refused.into()),
                _ => Ok(Box::new(allowed.into_iter()) as Addrs),
            }
        })
    }
}

/// A feed document as fetched.
#[derive(Debug)]
pub struct FetchedDocument {
    pub body: Vec<u8>,
    pub content_type: Option<String>,
    /// After redirects: the base for relative links.
    pub url: Url,
    pub etag: Option<String>,
    pub last_modified: Option<String>,
}

#[derive(Debug)]
pub enum Fetched {
    /// 304: nothing changed since the validators were stored.
    NotModified,
    Document(FetchedDocument),
}

/// Why a fetch failed, and when the server asked to be tried again.
#[derive(Debug)]
pub struct FetchFailure {
    pub message: String,
    pub retry_after: Option<Duration>,
}

impl FetchFailure {
    fn new(message: impl Into<String>) -> FetchFailure {
        FetchFailure { message: message.into(), retry_after: None }
    }
}

pub struct Fetcher {
    client: reqwest::Client,
    policy: AddressPolicy,
    max_bytes: usize,
}

impl Fetcher {
    pub fn new(
        policy: AddressPolicy,
        timeout: Duration,
        max_bytes: usize,
        user_agent: &str,
    ) -> anyhow::Result<Fetcher> {
        crate::install_crypto_provider();
        let redirects = redirect::Policy::custom(move |attempt| {
            if attempt.previous().len() > MAX_REDIRECTS {
                return attempt.error(format!("more than {MAX_REDIRECTS} redirects"));
            }
            if attempt.url().scheme() == "http" && attempt.previous().iter().any(|u| u.scheme() == "https") {
                let error = format!("redirect from https to {} refused", attempt.url());
                return attempt.error(error);
            }
            match policy.check_url(attempt.url()) {
                Ok(()) => attempt.follow(),
                Err(why) => {
                    let error = format!("redirect to {} refused: {why}", attempt.url());
                    attempt.error(error)
                }
            }
        });
        let client = reqwest::Client::builder()
            .user_agent(user_agent)
            .timeout(timeout)
            .connect_timeout(timeout.min(Duration::from_secs(10)))
            .redirect(redirects)
            .no_proxy()
            .dns_resolver(GuardedResolver { policy })
            .build()?;
        Ok(Fetcher { client, policy, max_bytes })
    }

    /// GETs `url`, conditionally when validators are given.
    pub async fn fetch(
        &self,
        url: &Url,
        etag: Option<&str>,
        last_modified: Option<&str>,
    ) -> Result<Fetched, FetchFailure> {
        self.policy.check_url(url).map_err(FetchFailure::new)?;
        // gzip is asked for and decoded here rather than by reqwest's feature, which would
        // change every other client in the process (the tests read compressed feeds).
        let mut request = self
            .client
            .get(url.clone())
            .header(reqwest::header::ACCEPT, ACCEPT)
            .header(reqwest::header::ACCEPT_ENCODING, "gzip");
        if let Some(etag) = etag {
            request = request.header(IF_NONE_MATCH, etag);
        }
        if let Some(last_modified) = last_modified {
            request = request.header(IF_MODIFIED_SINCE, last_modified);
        }
        let mut response = request.send().await.map_err(|e| FetchFailure::new(describe(e)))?;
        let status = response.status();
        if status == StatusCode::NOT_MODIFIED {
            return Ok(Fetched::NotModified);
        }
        if status.is_redirection() {
            // A redirect the client would not follow, such as one to a file: URL.
            let location = response.headers().get(reqwest::header::LOCATION).and_then(|v| v.to_str().ok());
            let target = location.and_then(|l| response.url().join(l).ok());
            return Err(FetchFailure::new(match target {
                Some(target) => match self.policy.check_url(&target) {
                    Err(why) => format!("redirect to {target} refused: {why}"),
                    Ok(()) => format!("HTTP {status} to {target} was not followed"),
                },
                None => format!("HTTP {status} without a usable Location"),
            }));
        }
        if !status.is_success() {
            return Err(FetchFailure {
                message: format!("the server answered HTTP {status}"),
                retry_after: retry_after(response.headers(), Utc::now()),
            });
        }
        if response.content_length().is_some_and(|n| n > self.max_bytes as u64) {
            return Err(self.too_large());
        }
        let headers = response.headers().clone();
        let final_url = response.url().clone();
        let mut body = Vec::new();
        while let Some(chunk) = response.chunk().await.map_err(|e| FetchFailure::new(describe(e)))? {
            if body.len() + chunk.len() > self.max_bytes {
                return Err(self.too_large());
            }
            body.extend_from_slice(&chunk);
        }
        let text = |name| headers.get(name).and_then(|v| v.to_str().ok()).map(str::to_owned);
        let body = match text(CONTENT_ENCODING).as_deref().map(str::trim) {
            None | Some("" | "identity") => body,
            Some("gzip" | "x-gzip") => self.gunzip(&body)?,
            Some(other) => {
                return Err(FetchFailure::new(format!("the body is {other}-encoded; only gzip is accepted")));
            }
        };
        Ok(Fetched::Document(FetchedDocument {
            body,
            content_type: text(reqwest::header::CONTENT_TYPE),
            url: final_url,
            etag: text(ETAG),
            last_modified: text(LAST_MODIFIED),
        }))
    }

    /// Decompresses a gzip body, at most `max_bytes` of it.
    fn gunzip(&self, compressed: &[u8]) -> Result<Vec<u8>, FetchFailure> {
        let mut body = Vec::new();
        flate2::read::GzDecoder::new(compressed)
            .take(self.max_bytes as u64 + 1)
            .read_to_end(&mut body)
            .map_err(|e| FetchFailure::new(format!("the gzip body cannot be decompressed: {e}")))?;
        if body.len() > self.max_bytes {
            return Err(self.too_large());
        }
        Ok(body)
    }

    fn too_large(&self) -> FetchFailure {
        FetchFailure::new(format!(
            "the response is larger than the limit of {} bytes (sources_max_bytes)",
            self.max_bytes
        ))
    }
}

/// An error with its causes, which say what actually went wrong (refused address,
/// timeout, connection refused); never a URL's credentials, as feed URLs have none.
fn describe(error: reqwest::Error) -> String {
    if error.is_timeout() {
        return "no complete answer within the time limit (sources_timeout)".into();
    }
    let error = error.without_url();
    let mut message = error.to_string();
    let mut source = std::error::Error::source(&error);
    while let Some(cause) = source {
        let text = cause.to_string();
        if !message.contains(&text) {
            message.push_str(": ");
            message.push_str(&text);
        }
        source = cause.source();
    }
    message
}

/// `Retry-After` as seconds or an HTTP date.
pub fn retry_after(headers: &HeaderMap, now: DateTime<Utc>) -> Option<Duration> {
    let value = headers.get(RETRY_AFTER)?.to_str().ok()?.trim();
    if let Ok(seconds) = value.parse::<u64>() {
        return Some(Duration::from_secs(seconds));
    }
    let at = DateTime::parse_from_rfc2822(value).ok()?.with_timezone(&Utc);
    Some((at - now).to_std().unwrap_or(Duration::ZERO))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metadata_and_link_local_addresses_are_always_refused() {
        let open = AddressPolicy { allow_private: true };
        let strict = AddressPolicy { allow_private: false };
        for ip in ["169.254.169.254", "100.100.100.200", "fe80::1", "fd00:ec2::254", "::ffff:169.254.169.254"] {
            let ip: IpAddr = ip.parse().unwrap();
            assert!(open.refusal(ip).is_some(), "{ip}");
        }
        for ip in ["127.0.0.1", "10.1.2.3", "172.16.0.1", "192.168.1.1", "100.64.0.1", "0.0.0.0", "::1", "fd12::1"] {
            let ip: IpAddr = ip.parse().unwrap();
            assert!(strict.refusal(ip).is_some(), "{ip}");
            assert!(open.refusal(ip).is_none(), "{ip}");
        }
        for ip in ["203.113.131.1", "2001:4860::8888"] {
            assert!(strict.refusal(ip.parse().unwrap()).is_none(), "{ip}");
        }
    }

    #[test]
    fn only_http_urls_to_allowed_addresses_pass() {
        let strict = AddressPolicy { allow_private: false };
        assert!(strict.check_url(&Url::parse("https://example.vn/rss").unwrap()).is_ok());
        assert!(strict.check_url(&Url::parse("http://169.254.169.254/latest/meta-data/").unwrap()).is_err());
        assert!(strict.check_url(&Url::parse("http://[::1]:8080/").unwrap()).is_err());
        assert!(strict.check_url(&Url::parse("file:///etc/passwd").unwrap()).is_err());
    }

    #[test]
    fn retry_after_takes_seconds_or_a_date() {
        let now = DateTime::parse_from_rfc3339("2026-11-25T08:00:00Z").unwrap().with_timezone(&Utc);
        let mut headers = HeaderMap::new();
        headers.insert(RETRY_AFTER, "120".parse().unwrap());
        assert_eq!(retry_after(&headers, now), Some(Duration::from_secs(120)));
        headers.insert(RETRY_AFTER, "Wed, 25 Nov 2026 08:10:00 GMT".parse().unwrap());
        assert_eq!(retry_after(&headers, now), Some(Duration::from_secs(600)));
    }
}
