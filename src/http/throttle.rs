//! Fixed-window request counters in memory, per key (an IP address, an email address, a
//! username), so forms cannot be used to mail-bomb someone or to guess passwords. Each
//! instance counts on its own; behind a load balancer the limits apply per instance.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Keys kept before expired windows are swept.
const SWEEP_AT: usize = 10_000;

pub struct Throttle {
    limit: u32,
    window: Duration,
    counts: Mutex<HashMap<String, (Instant, u32)>>,
}

impl Throttle {
    pub fn new(limit: u32, window: Duration) -> Throttle {
        Throttle { limit, window, counts: Mutex::default() }
    }

    /// Counts one attempt for `key`; `false` when the key is over its limit.
    pub fn allow(&self, key: &str) -> bool {
        let now = Instant::now();
        let mut counts = self.counts.lock().unwrap_or_else(|e| e.into_inner());
        if counts.len() >= SWEEP_AT {
            counts.retain(|_, (start, _)| now.duration_since(*start) < self.window);
        }
        let entry = counts.entry(key.to_owned()).or_insert((now, 0));
        if now.duration_since(entry.0) >= self.window {
            *entry = (now, 0);
        }
        entry.1 += 1;
        entry.1 <= self.limit
    }

    /// Whether `key` is over its limit, without counting an attempt.
    pub fn is_blocked(&self, key: &str) -> bool {
        let counts = self.counts.lock().unwrap_or_else(|e| e.into_inner());
        counts.get(key).is_some_and(|(start, n)| start.elapsed() < self.window && *n >= self.limit)
    }

    /// Forgets `key` (a successful login clears its failures).
    pub fn reset(&self, key: &str) {
        self.counts.lock().unwrap_or_else(|e| e.into_inner()).remove(key);
    }
}

/// The limits the public and admin forms use.
pub struct Throttles {
    /// Subscribe form posts per client IP.
    pub subscribe_ip: Throttle,
    /// Subscribe form posts per email address.
    pub subscribe_email: Throttle,
    /// Failed admin logins per client IP and per username.
    pub login: Throttle,
}

impl Default for Throttles {
    fn default() -> Throttles {
        Throttles {
            subscribe_ip: Throttle::new(20, Duration::from_secs(600)),
            subscribe_email: Throttle::new(3, Duration::from_secs(3600)),
            login: Throttle::new(5, Duration::from_secs(900)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_is_refused_past_its_limit_until_reset() {
        let t = Throttle::new(2, Duration::from_secs(60));
        assert!(t.allow("a") && t.allow("a"));
        assert!(!t.allow("a"));
        assert!(t.is_blocked("a"));
        assert!(t.allow("b"));
        t.reset("a");
        assert!(t.allow("a"));
    }
}
