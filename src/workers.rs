//! Background tasks that run inside `bantin serve`, each stopping when the shutdown
//! token is cancelled.

use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use crate::metrics::Metrics;
use crate::store::{EventKind, Store};

/// Longest sleep between checks, which also bounds the delay for articles scheduled by
/// another process (an import, another instance).
const MAX_IDLE: Duration = Duration::from_millis(500);
const RETRY_AFTER_ERROR: Duration = Duration::from_secs(1);

/// Publishes scheduled articles when their time comes: sleeps until the earliest one is
/// due (or a new one arrives), publishes, and repeats. Overdue articles, e.g. after a
/// restart, are published at once.
pub async fn scheduled_publisher(
    store: Arc<dyn Store>,
    metrics: Arc<Metrics>,
    wakeup: Arc<Notify>,
    published: Arc<Notify>,
    shutdown: CancellationToken,
) {
    loop {
        let pause = match publish_once(store.as_ref(), &metrics, &published).await {
            Ok(pause) => pause,
            Err(e) => {
                tracing::warn!(error = %e, "publishing scheduled articles failed; retrying");
                RETRY_AFTER_ERROR
            }
        };
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = wakeup.notified() => {}
            _ = tokio::time::sleep(pause) => {}
        }
    }
}

/// Publishes what is due and returns how long to wait before the next check.
async fn publish_once(
    store: &dyn Store,
    metrics: &Metrics,
    events_written: &Notify,
) -> Result<Duration, crate::store::StoreError> {
    let published = store.publish_due(Utc::now()).await?;
    if published > 0 {
        events_written.notify_one();
        metrics.record_events(EventKind::Published, published);
        tracing::info!(published, "scheduled articles published");
    }
    let pause = match store.next_scheduled_at().await? {
        Some(due) => (due - Utc::now()).to_std().unwrap_or(Duration::ZERO).min(MAX_IDLE),
        None => MAX_IDLE,
    };
    Ok(pause)
}
