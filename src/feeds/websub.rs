//! WebSub: every rebuilt feed is announced to the configured hubs
//! (`hub.mode=publish`, `hub.url=<the feed's self URL>`), with retries and backoff.

use std::sync::Arc;
use std::time::Duration;

use crate::metrics::Metrics;

const ATTEMPTS: u32 = 5;
const FIRST_BACKOFF: Duration = Duration::from_secs(1);

#[derive(Clone)]
pub struct WebSub {
    hubs: Arc<Vec<String>>,
    client: reqwest::Client,
    metrics: Arc<Metrics>,
}

impl WebSub {
    pub fn new(hubs: Vec<String>, metrics: Arc<Metrics>) -> WebSub {
        crate::install_crypto_provider();
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(10))
            .user_agent(concat!("bantin/", env!("CARGO_PKG_VERSION"), " (WebSub publisher)"))
            .build()
            .unwrap_or_default();
        WebSub { hubs: Arc::new(hubs), client, metrics }
    }

    pub fn hubs(&self) -> &[String] {
        &self.hubs
    }

    /// Announces the feed URLs to every hub in the background.
    pub fn announce(&self, feed_urls: Vec<String>) {
        for hub in self.hubs.iter() {
            for url in &feed_urls {
                let (this, hub, url) = (self.clone(), hub.clone(), url.clone());
                tokio::spawn(async move { this.ping(&hub, &url).await });
            }
        }
    }

    async fn ping(&self, hub: &str, feed_url: &str) {
        let mut backoff = FIRST_BACKOFF;
        for attempt in 1..=ATTEMPTS {
            let sent = self.client.post(hub).form(&[("hub.mode", "publish"), ("hub.url", feed_url)]).send().await;
            match sent {
                Ok(response) if response.status().is_success() => {
                    self.metrics.record_websub(true);
                    return;
                }
                Ok(response) => {
                    tracing::debug!(hub, feed_url, status = %response.status(), attempt, "hub refused the ping")
                }
                Err(e) => tracing::debug!(hub, feed_url, error = %e, attempt, "hub unreachable"),
            }
            if attempt < ATTEMPTS {
                tokio::time::sleep(backoff).await;
                backoff *= 2;
            }
        }
        self.metrics.record_websub(false);
        tracing::warn!(hub, feed_url, "WebSub ping failed after {ATTEMPTS} attempts");
    }
}
