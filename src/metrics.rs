//! Counters exposed at `GET /metrics` in the Prometheus text format. Kept by hand: a few
//! atomics and one small map are all this needs.

use std::collections::HashMap;
use std::fmt::Write;
use std::sync::RwLock;
use std::sync::atomic::{AtomicU64, Ordering};

use axum::http::Method;

use crate::store::{Change, EventKind};

/// (method, status) → requests, for one route.
type RouteCounters = HashMap<(Method, u16), AtomicU64>;

#[derive(Default)]
pub struct Metrics {
    /// route pattern → (method, status) → count. Route patterns, not raw paths, so the
    /// label set stays small and no token in a path reaches the metrics. Counting an
    /// already-seen combination takes a shared lock and an atomic add, no allocation.
    requests: RwLock<HashMap<String, RouteCounters>>,
    ingested_new: AtomicU64,
    ingested_updated: AtomicU64,
    ingested_unchanged: AtomicU64,
    ingested_failed: AtomicU64,
    events_published: AtomicU64,
    events_updated: AtomicU64,
    events_retracted: AtomicU64,
    feed_builds: AtomicU64,
    feed_build_micros: AtomicU64,
    websub_ok: AtomicU64,
    websub_failed: AtomicU64,
    deliveries_sent: AtomicU64,
    deliveries_skipped: AtomicU64,
    deliveries_retried: AtomicU64,
    deliveries_failed: AtomicU64,
    send_micros: AtomicU64,
    sends_timed: AtomicU64,
    delivery_queue: AtomicU64,
}

impl Metrics {
    pub fn record_request(&self, method: &Method, route: &str, status: u16) {
        {
            let map = self.requests.read().unwrap_or_else(|p| p.into_inner());
            if let Some(counter) = map.get(route).and_then(|by| by.get(&(method.clone(), status))) {
                counter.fetch_add(1, Ordering::Relaxed);
                return;
            }
        }
        let mut map = self.requests.write().unwrap_or_else(|p| p.into_inner());
        let counter = map.entry(route.to_owned()).or_default().entry((method.clone(), status)).or_default();
        counter.fetch_add(1, Ordering::Relaxed);
    }

    pub fn record_ingest(&self, change: Option<Change>) {
        let counter = match change {
            Some(Change::New) => &self.ingested_new,
            Some(Change::Updated) => &self.ingested_updated,
            Some(Change::Unchanged) => &self.ingested_unchanged,
            None => &self.ingested_failed,
        };
        counter.fetch_add(1, Ordering::Relaxed);
    }

    pub fn record_events(&self, kind: EventKind, n: u64) {
        let counter = match kind {
            EventKind::Published => &self.events_published,
            EventKind::Updated => &self.events_updated,
            EventKind::Retracted => &self.events_retracted,
        };
        counter.fetch_add(n, Ordering::Relaxed);
    }

    /// One feed rebuilt (all three formats), and how long rendering took.
    pub fn record_feed_build(&self, elapsed: std::time::Duration) {
        self.feed_builds.fetch_add(1, Ordering::Relaxed);
        self.feed_build_micros.fetch_add(elapsed.as_micros() as u64, Ordering::Relaxed);
    }

    pub fn record_websub(&self, ok: bool) {
        let counter = if ok { &self.websub_ok } else { &self.websub_failed };
        counter.fetch_add(1, Ordering::Relaxed);
    }

    /// The Prometheus text exposition of every counter.
    /// One delivery's outcome: "sent", "skipped", "retry" or "failed".
    pub fn record_delivery(&self, outcome: &str) {
        let counter = match outcome {
            "sent" => &self.deliveries_sent,
            "skipped" => &self.deliveries_skipped,
            "retry" => &self.deliveries_retried,
            _ => &self.deliveries_failed,
        };
        counter.fetch_add(1, Ordering::Relaxed);
    }

    pub fn record_send_latency(&self, elapsed: std::time::Duration) {
        self.send_micros.fetch_add(elapsed.as_micros() as u64, Ordering::Relaxed);
        self.sends_timed.fetch_add(1, Ordering::Relaxed);
    }

    pub fn set_delivery_queue(&self, depth: i64) {
        self.delivery_queue.store(depth.max(0) as u64, Ordering::Relaxed);
    }

    pub fn render(&self) -> String {
        let mut out = String::new();
        out.push_str("# HELP bantin_http_requests_total HTTP requests answered, by method, route and status.\n");
        out.push_str("# TYPE bantin_http_requests_total counter\n");
        let map = self.requests.read().unwrap_or_else(|p| p.into_inner());
        let mut rows: Vec<(&str, &str, u16, u64)> = map
            .iter()
            .flat_map(|(route, by)| {
                by.iter().map(move |((method, status), n)| {
                    (method.as_str(), route.as_str(), *status, n.load(Ordering::Relaxed))
                })
            })
            .collect();
        rows.sort_unstable();
        for (method, route, status, n) in rows {
            let _ = writeln!(
                out,
                "bantin_http_requests_total{{method=\"{method}\",route=\"{}\",status=\"{status}\"}} {n}",
                route.replace('\\', "\\\\").replace('"', "\\\"")
            );
        }
        drop(map);
        out.push_str("# HELP bantin_articles_ingested_total Articles received from any source, by outcome.\n");
        out.push_str("# TYPE bantin_articles_ingested_total counter\n");
        for (outcome, c) in [
            ("new", &self.ingested_new),
            ("updated", &self.ingested_updated),
            ("unchanged", &self.ingested_unchanged),
            ("failed", &self.ingested_failed),
        ] {
            let _ =
                writeln!(out, "bantin_articles_ingested_total{{outcome=\"{outcome}\"}} {}", c.load(Ordering::Relaxed));
        }
        out.push_str("# HELP bantin_publication_events_total Publication events written by this process, by kind.\n");
        out.push_str("# TYPE bantin_publication_events_total counter\n");
        for (kind, c) in [
            (EventKind::Published, &self.events_published),
            (EventKind::Updated, &self.events_updated),
            (EventKind::Retracted, &self.events_retracted),
        ] {
            let _ = writeln!(
                out,
                "bantin_publication_events_total{{kind=\"{}\"}} {}",
                kind.as_str(),
                c.load(Ordering::Relaxed)
            );
        }
        out.push_str("# HELP bantin_feed_builds_total Feeds rebuilt (three formats each).\n");
        out.push_str("# TYPE bantin_feed_builds_total counter\n");
        let _ = writeln!(out, "bantin_feed_builds_total {}", self.feed_builds.load(Ordering::Relaxed));
        out.push_str("# HELP bantin_feed_build_seconds_total Time spent rendering feeds.\n");
        out.push_str("# TYPE bantin_feed_build_seconds_total counter\n");
        let seconds = self.feed_build_micros.load(Ordering::Relaxed) as f64 / 1e6;
        let _ = writeln!(out, "bantin_feed_build_seconds_total {seconds}");
        out.push_str("# HELP bantin_websub_pings_total WebSub hub notifications, by outcome after retries.\n");
        out.push_str("# TYPE bantin_websub_pings_total counter\n");
        for (outcome, c) in [("ok", &self.websub_ok), ("failed", &self.websub_failed)] {
            let _ = writeln!(out, "bantin_websub_pings_total{{outcome=\"{outcome}\"}} {}", c.load(Ordering::Relaxed));
        }
        out.push_str("# HELP bantin_deliveries_total Digest deliveries handled by this process, by outcome.\n");
        out.push_str("# TYPE bantin_deliveries_total counter\n");
        for (outcome, c) in [
            ("sent", &self.deliveries_sent),
            ("skipped", &self.deliveries_skipped),
            ("retry", &self.deliveries_retried),
            ("failed", &self.deliveries_failed),
        ] {
            let _ = writeln!(out, "bantin_deliveries_total{{outcome=\"{outcome}\"}} {}", c.load(Ordering::Relaxed));
        }
        out.push_str("# HELP bantin_digest_send_seconds Time to render and send digests that were sent.\n");
        out.push_str("# TYPE bantin_digest_send_seconds summary\n");
        let seconds = self.send_micros.load(Ordering::Relaxed) as f64 / 1e6;
        let _ = writeln!(out, "bantin_digest_send_seconds_sum {seconds}");
        let _ = writeln!(out, "bantin_digest_send_seconds_count {}", self.sends_timed.load(Ordering::Relaxed));
        out.push_str("# HELP bantin_delivery_queue Deliveries queued or being sent, in the whole database.\n");
        out.push_str("# TYPE bantin_delivery_queue gauge\n");
        let _ = writeln!(out, "bantin_delivery_queue {}", self.delivery_queue.load(Ordering::Relaxed));
        out
    }
}
