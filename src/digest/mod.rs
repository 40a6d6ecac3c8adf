//! Scheduled email digests. The scheduler makes one run per (list, scheduled time) when a
//! list's cron time comes (a missed time within the grace window once, older ones skipped);
//! a run queues one delivery per active subscriber; senders claim deliveries with a lease,
//! render what is new for that subscription, send, and only then move its cursor. Each
//! step is a method, so tests and `bantin digest run` drive it deterministically.

pub mod preview;
pub mod render;

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration as StdDuration;

use chrono::{DateTime, Duration, DurationRound, Utc};
use chrono_tz::Tz;
use tokio::sync::{Notify, OwnedSemaphorePermit, Semaphore, mpsc, oneshot};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use crate::audience::Audience;
use crate::config::{Config, Language};
use crate::domain::audience::{SubscriberStatus, SubscriptionStatus};
use crate::domain::email::EmailAddress;
use crate::domain::schedule::Schedule;
use crate::mail::SendError;
use crate::metrics::Metrics;
use crate::store::audience::{MailingList, SubscriberDetail};
use crate::store::digests::{ClaimedDelivery, Closing, DigestContent, DigestRun, RunStatus};
use crate::store::{Store, StoreError};
use render::SharedDigest;

/// How often the worker looks for due runs and deliveries when idle.
const TICK: StdDuration = StdDuration::from_secs(1);
/// Retry delays double per attempt from the `delivery_retry_seconds` setting, up to this.
const MAX_BACKOFF: Duration = Duration::hours(1);

/// Deliveries claimed per batch for each SMTP connection. A batch ends when its last send
/// does, so fewer, larger batches leave the connections idle less often.
const CLAIM_PER_CONNECTION: usize = 32;

/// Content shared by subscriptions with the same list, cursor and categories.
type ContentKey = (i64, DateTime<Utc>, String);

/// A digest shared by the readers of the same content, run and language.
type DigestKey = (ContentKey, i64, Language);

/// What a batch reads or renders once for the deliveries that share it.
#[derive(Default)]
struct BatchCache {
    contents: HashMap<ContentKey, Arc<DigestContent>>,
    digests: HashMap<DigestKey, Arc<SharedDigest>>,
}

/// What a claimed delivery needs before it can be sent.
enum Prepared {
    Ready {
        list: Arc<MailingList>,
        detail: Box<SubscriberDetail>,
        content: Arc<DigestContent>,
        /// `None` when there is nothing to send.
        digest: Option<Arc<SharedDigest>>,
    },
    /// The list, subscriber or subscription is gone: nothing to send.
    Gone(&'static str),
    /// The reader left (unsubscribed, bounced, blocklisted) after the run was queued:
    /// nothing is sent, and the delivery counts as skipped.
    Left,
}

/// What happened to one claimed delivery.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    Sent,
    /// Nothing new and the list does not send empty digests.
    Skipped,
    /// A 4xx or connection error: queued again with backoff.
    Retry,
    Failed,
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Sent => "sent",
            Outcome::Skipped => "skipped",
            Outcome::Retry => "retry",
            Outcome::Failed => "failed",
        }
    }
}

pub struct Digests {
    store: Arc<dyn Store>,
    audience: Arc<Audience>,
    metrics: Arc<Metrics>,
    grace: Duration,
    /// How long a claimed delivery is held before another sender may take it over.
    lease: Duration,
    items: usize,
    attempts: u32,
    /// Delay before the first retry.
    first_backoff: Duration,
    concurrency: usize,
    rate: u32,
    base_url: String,
    site_name: String,
    site_url: String,
    default_language: Language,
    /// Mailbox offered in List-Unsubscribe besides the one-click link.
    unsubscribe_mailto: Option<EmailAddress>,
}

/// The latest cron time at or before `now`, if it is after `since`.
pub fn latest_slot(schedule: &Schedule, tz: Tz, since: DateTime<Utc>, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
    // Searching back from a second after `now` counts a slot at `now` itself; one in
    // that second but after `now` is left for the next tick.
    let slot = schedule.runs_before(now + Duration::seconds(1), tz)?;
    (slot > since && slot <= now).then_some(slot)
}

impl Digests {
    pub fn new(config: &Config, store: Arc<dyn Store>, audience: Arc<Audience>, metrics: Arc<Metrics>) -> Digests {
        Digests {
            store,
            audience,
            metrics,
            grace: Duration::minutes(i64::from(config.digest_grace_minutes)),
            lease: Duration::seconds(i64::from(config.delivery_lease_seconds)),
            items: config.digest_items,
            attempts: config.delivery_attempts,
            first_backoff: Duration::seconds(i64::from(config.delivery_retry_seconds)),
            concurrency: config.smtp_connections as usize,
            rate: config.smtp_rate,
            base_url: config.base_url.clone(),
            site_name: config.site_name.clone(),
            site_url: config.site_url.clone(),
            default_language: config.language,
            unsubscribe_mailto: config.list_unsubscribe_mailto.clone(),
        }
    }

    /// Makes the runs whose time has come; returns how many were made to be sent.
    pub async fn schedule(&self, now: DateTime<Utc>) -> anyhow::Result<usize> {
        let mut made = 0;
        for list in self.store.lists().await? {
            let (Ok(schedule), Ok(tz)) = (Schedule::parse(&list.schedule), list.timezone.parse::<Tz>()) else {
                tracing::error!(list = list.slug, "the stored schedule or time zone does not parse");
                continue;
            };
            // A list's first run is its first scheduled time after it was made.
            let Some(slot) = latest_slot(&schedule, tz, list.created_at, now) else { continue };
            if self.store.run_exists(list.id, slot).await? {
                continue;
            }
            // Only the latest missed time is considered, so downtime makes one run, not one per slot.
            if now - slot > self.grace {
                if self.store.create_run(list.id, slot, slot, RunStatus::Skipped, now).await?.is_some() {
                    tracing::warn!(list = list.slug, scheduled_at = %slot, "digest run skipped: its time is past the grace window");
                }
                continue;
            }
            if let Some(run_id) = self.store.create_run(list.id, slot, slot, RunStatus::Pending, now).await? {
                tracing::info!(list = list.slug, run_id, scheduled_at = %slot, "digest run created");
                made += 1;
            }
        }
        Ok(made)
    }

    /// A run of `list` now, outside its schedule (`bantin digest run`, the admin's "run now").
    /// Runs are unique per list and second, so a double click is refused, not sent twice;
    /// the window ends at `now` itself, so articles published earlier in that second are in.
    pub async fn run_now(&self, list: &MailingList, now: DateTime<Utc>) -> Result<i64, StoreError> {
        let at = now.duration_trunc(Duration::seconds(1)).unwrap_or(now);
        self.store
            .create_run(list.id, at, now, RunStatus::Pending, now)
            .await?
            .ok_or_else(|| StoreError::Conflict(format!("a run of {} at {at} exists already", list.slug)))
    }

    /// [`Digests::run_now`] with its deliveries queued at once, so it shows its counts;
    /// the worker sends them.
    pub async fn start_now(&self, list: &MailingList, now: DateTime<Utc>) -> Result<DigestRun, StoreError> {
        let run_id = self.run_now(list, now).await?;
        if let Some(queued) = self.store.enqueue_run(run_id, now).await? {
            tracing::info!(list = list.slug, run_id, deliveries = queued, "digest run started by hand");
            if queued == 0 {
                // Nobody to send to: done now, not left "sending" until some batch runs.
                self.store.complete_runs(now).await?;
            }
        }
        self.store.run(run_id).await?.ok_or_else(|| StoreError::Corrupt(format!("run {run_id} vanished")))
    }

    /// Queues the deliveries of every pending run; returns how many were queued.
    pub async fn enqueue_pending(&self, now: DateTime<Utc>) -> anyhow::Result<u64> {
        let mut queued = 0;
        for run_id in self.store.pending_runs().await? {
            if let Some(n) = self.store.enqueue_run(run_id, now).await? {
                tracing::info!(run_id, deliveries = n, "digest run queued");
                queued += n;
            }
        }
        Ok(queued)
    }

    /// Claims a batch of due deliveries and sends them, at most `smtp_connections` at a
    /// time, each closed as soon as it is sent (so a crash repeats at most the sends in
    /// flight); returns how many were handled. The batch's leases are renewed while it is
    /// sent, so no other instance takes over a delivery this one is still to send. When
    /// `stop` is cancelled, the sends in flight finish and the rest are given back.
    /// Marks finished runs as done.
    pub async fn send_batch(self: &Arc<Self>, stop: &CancellationToken) -> anyhow::Result<usize> {
        let started = std::time::Instant::now();
        let now = Utc::now();
        let limit = (self.concurrency * CLAIM_PER_CONNECTION) as i64;
        let claimed = self.store.claim_deliveries(now, now + self.lease, limit).await?;
        let count = claimed.len();
        if count == 0 {
            // A run whose deliveries were all handled elsewhere, or that had none, ends here.
            self.store.complete_runs(Utc::now()).await?;
            return Ok(0);
        }
        let mut leases = Leases::new(&claimed, self.renew_every());
        // What the batch shares is read once: the lists, the subscribers, and the
        // content of each (list, cursor, categories), which most subscribers have in common.
        let lists: HashMap<i64, Arc<MailingList>> =
            self.store.lists().await?.into_iter().map(|l| (l.id, Arc::new(l))).collect();
        let ids: Vec<i64> = claimed.iter().map(|d| d.subscriber_id).collect();
        let subscribers: HashMap<i64, SubscriberDetail> =
            self.store.subscribers_by_id(&ids).await?.into_iter().map(|d| (d.subscriber.id, d)).collect();
        let mut cache = BatchCache::default();
        let slots = Arc::new(Semaphore::new(self.concurrency));
        let (closer, committer) = Closer::start(self.store.clone());
        let mut sends = JoinSet::new();
        // Given back to the queue after the batch: those not started when stopping, and a
        // second delivery to the same subscription (another run of its list), whose
        // content depends on the cursor the first one moves.
        let mut untried = Vec::new();
        let mut subscriptions = HashSet::new();
        let mut queue = claimed.into_iter();
        while let Some(delivery) = queue.next() {
            if !subscriptions.insert((delivery.subscriber_id, delivery.list_id)) {
                untried.push(delivery);
                continue;
            }
            let prepared = self.prepare(&delivery, &lists, &subscribers, &mut cache).await;
            let Some(permit) = self.free_slot(&slots, &mut leases, stop).await? else {
                untried.push(delivery);
                untried.extend(queue.by_ref());
                break;
            };
            if !leases.holds(delivery.id) {
                tracing::warn!(delivery = delivery.id, "another sender took over the delivery: not sending it");
                continue;
            }
            let digests = self.clone();
            let closer = closer.clone();
            sends.spawn(async move {
                // The slot is held until the delivery is closed, so at most as many
                // deliveries as there are slots can be sent and not yet recorded.
                let outcome = match prepared {
                    Ok(prepared) => digests.deliver(&delivery, prepared, &closer).await,
                    Err(e) => Err(e),
                };
                drop(permit);
                (delivery, outcome)
            });
        }
        loop {
            tokio::select! {
                joined = sends.join_next() => match joined {
                    Some(joined) => self.record(joined),
                    None => break,
                },
                _ = tokio::time::sleep_until(leases.renew_at) => self.renew(&mut leases).await,
            }
        }
        drop(closer);
        if let Err(e) = committer.await {
            tracing::error!(error = %e, "the digest closer panicked");
        }
        if !untried.is_empty() {
            tracing::info!(deliveries = untried.len(), "deliveries not tried in this batch given back to the queue");
            self.store.release_deliveries(&untried).await?;
        }
        self.store.complete_runs(Utc::now()).await?;
        if self.rate > 0 {
            let least = StdDuration::from_secs_f64(count as f64 / f64::from(self.rate));
            if let Some(rest) = least.checked_sub(started.elapsed()) {
                tokio::select! {
                    _ = stop.cancelled() => {}
                    _ = tokio::time::sleep(rest) => {}
                }
            }
        }
        Ok(count)
    }

    /// Leases are renewed when half their length has passed.
    fn renew_every(&self) -> StdDuration {
        (self.lease / 2).to_std().unwrap_or(TICK)
    }

    /// Waits for a free sending slot, renewing the batch's leases meanwhile; `None` when
    /// stopping, so no new send starts.
    async fn free_slot(
        &self,
        slots: &Arc<Semaphore>,
        leases: &mut Leases,
        stop: &CancellationToken,
    ) -> anyhow::Result<Option<OwnedSemaphorePermit>> {
        loop {
            tokio::select! {
                biased;
                _ = stop.cancelled() => return Ok(None),
                _ = tokio::time::sleep_until(leases.renew_at) => self.renew(leases).await,
                permit = slots.clone().acquire_owned() => return Ok(Some(permit?)),
            }
        }
    }

    /// Extends the leases the batch still holds. A failure is logged and tried again at
    /// the next renewal: the leases last another half length meanwhile.
    async fn renew(&self, leases: &mut Leases) {
        match self.store.renew_leases(&leases.claims, Utc::now() + self.lease).await {
            Ok(held) => leases.keep(&held),
            Err(e) => tracing::warn!(error = %e, "cannot renew the leases of a digest batch"),
        }
        leases.renew_at = tokio::time::Instant::now() + self.renew_every();
    }

    /// Counts one finished send.
    fn record(&self, joined: Result<(ClaimedDelivery, anyhow::Result<Outcome>), tokio::task::JoinError>) {
        match joined {
            Ok((_, Ok(outcome))) => self.metrics.record_delivery(outcome.as_str()),
            Ok((delivery, Err(e))) => {
                // The outcome could not be recorded: the lease expires and the delivery
                // is claimed again (with the same Message-ID).
                tracing::error!(delivery = delivery.id, error = format!("{e:#}"), "cannot record a delivery");
            }
            Err(e) => tracing::error!(error = %e, "a digest sender panicked"),
        }
    }

    /// Gathers what one delivery needs, reusing content already read and digests already
    /// rendered for the batch.
    async fn prepare(
        &self,
        delivery: &ClaimedDelivery,
        lists: &HashMap<i64, Arc<MailingList>>,
        subscribers: &HashMap<i64, SubscriberDetail>,
        cache: &mut BatchCache,
    ) -> anyhow::Result<Prepared> {
        let Some(list) = lists.get(&delivery.list_id) else { return Ok(Prepared::Gone("the list was deleted")) };
        // A subscriber of several lists has a delivery of each in the batch.
        let Some(detail) = subscribers.get(&delivery.subscriber_id) else {
            return Ok(Prepared::Gone("the subscriber was deleted"));
        };
        let Some(subscription) = detail.subscriptions.iter().find(|s| s.list_id == list.id) else {
            return Ok(Prepared::Gone("the subscription was removed"));
        };
        if detail.subscriber.status != SubscriberStatus::Active || subscription.status != SubscriptionStatus::Active {
            return Ok(Prepared::Left);
        }
        let paths = if subscription.categories.is_empty() { &list.categories } else { &subscription.categories };
        let key = (list.id, subscription.sent_through, paths.join("\n"));
        let content = match cache.contents.get(&key) {
            Some(content) => content.clone(),
            None => {
                let content = Arc::new(
                    self.store
                        .articles_between(paths, subscription.sent_through, delivery.window_end, self.items)
                        .await?,
                );
                cache.contents.insert(key.clone(), content.clone());
                content
            }
        };
        let digest = if content.total == 0 && !list.send_empty {
            None
        } else {
            let key = (key, delivery.run_id, self.reader_language(list, Some(detail)));
            Some(match cache.digests.get(&key) {
                Some(digest) => digest.clone(),
                None => {
                    let digest = Arc::new(self.shared(list, &content, key.2, delivery)?);
                    cache.digests.insert(key, digest.clone());
                    digest
                }
            })
        };
        Ok(Prepared::Ready { list: list.clone(), detail: Box::new(detail.clone()), content, digest })
    }

    /// Renders and sends one claimed delivery, and records the outcome.
    async fn deliver(
        &self,
        delivery: &ClaimedDelivery,
        prepared: Prepared,
        closer: &Closer,
    ) -> anyhow::Result<Outcome> {
        let started = std::time::Instant::now();
        let (list, detail, content, digest) = match prepared {
            Prepared::Gone(why) => {
                self.store.fail_delivery(delivery, why, false).await?;
                return Ok(Outcome::Failed);
            }
            Prepared::Left => {
                closer.close(delivery, false, 0).await?;
                return Ok(Outcome::Skipped);
            }
            Prepared::Ready { list, detail, content, digest } => (list, detail, content, digest),
        };
        let Some(digest) = digest else {
            // Nothing new and the list does not send empty digests.
            closer.close(delivery, false, 0).await?;
            return Ok(Outcome::Skipped);
        };
        let mail = self.render_shared(&digest, &list, &detail, &content, delivery)?;
        match self.audience.mailer.send(&mail).await {
            Ok(()) => {
                closer.close(delivery, true, content.total).await?;
                self.metrics.record_send_latency(started.elapsed());
                Ok(Outcome::Sent)
            }
            Err(SendError::Permanent(e)) => {
                tracing::warn!(delivery = delivery.id, error = %e, "digest refused for good: subscriber marked bounced");
                self.store.fail_delivery(delivery, &e, true).await?;
                Ok(Outcome::Failed)
            }
            Err(SendError::Transient(e)) if delivery.attempts as u32 >= self.attempts => {
                tracing::warn!(delivery = delivery.id, error = %e, attempts = delivery.attempts, "digest failed after every attempt");
                self.store.fail_delivery(delivery, &e, false).await?;
                Ok(Outcome::Failed)
            }
            Err(SendError::Transient(e)) => {
                let delay = backoff(self.first_backoff, delivery.attempts);
                tracing::info!(delivery = delivery.id, error = %e, retry_in_s = delay.num_seconds(), "digest send failed; will retry");
                self.store.retry_delivery(delivery.id, Utc::now() + delay, &e).await?;
                Ok(Outcome::Retry)
            }
        }
    }

    /// The background worker of `bantin serve`.
    pub async fn run(self: Arc<Self>, wake: Arc<Notify>, shutdown: CancellationToken) {
        loop {
            let busy = match self.step(&shutdown).await {
                Ok(busy) => busy,
                Err(e) => {
                    tracing::error!(error = format!("{e:#}"), "digest worker step failed");
                    false
                }
            };
            if shutdown.is_cancelled() {
                break;
            }
            if !busy {
                tokio::select! {
                    _ = shutdown.cancelled() => break,
                    _ = wake.notified() => {}
                    _ = tokio::time::sleep(TICK) => {}
                }
            }
        }
    }

    /// Schedules, queues and sends one batch (see [`Digests::send_batch`] for `stop`);
    /// `true` when it sent something.
    pub async fn step(self: &Arc<Self>, stop: &CancellationToken) -> anyhow::Result<bool> {
        let now = Utc::now();
        self.schedule(now).await?;
        self.enqueue_pending(now).await?;
        let sent = self.send_batch(stop).await?;
        if let Ok(depth) = self.store.queue_depth().await {
            self.metrics.set_delivery_queue(depth);
        }
        Ok(sent > 0)
    }
}

/// Closes a batch's deliveries in groups. A sender waits for its delivery's commit before
/// its slot is free (so a crash repeats at most the sends in flight); the deliveries that
/// finish while a commit runs share the next one, instead of a transaction each.
#[derive(Clone)]
struct Closer(mpsc::UnboundedSender<(Closing, oneshot::Sender<Result<(), String>>)>);

/// Deliveries closed in one transaction at most.
const CLOSE_GROUP: usize = 256;

impl Closer {
    /// The closer and its committing task, which ends when every clone is dropped.
    fn start(store: Arc<dyn Store>) -> (Closer, tokio::task::JoinHandle<()>) {
        let (sender, mut receiver) = mpsc::unbounded_channel::<(Closing, oneshot::Sender<Result<(), String>>)>();
        let committer = tokio::spawn(async move {
            let mut group = Vec::with_capacity(CLOSE_GROUP);
            while receiver.recv_many(&mut group, CLOSE_GROUP).await > 0 {
                let closings: Vec<Closing> = group.iter().map(|(closing, _)| closing.clone()).collect();
                let result = store.close_deliveries(&closings, Utc::now()).await.map_err(|e| e.to_string());
                for (_, reply) in group.drain(..) {
                    // A sender that is gone has nothing to be told.
                    let _ = reply.send(result.clone());
                }
            }
        });
        (Closer(sender), committer)
    }

    /// Closes the delivery (see [`crate::store::digests::DigestStore::close_delivery`])
    /// and returns once that is committed.
    async fn close(&self, delivery: &ClaimedDelivery, sent: bool, articles: i64) -> anyhow::Result<()> {
        let (reply, committed) = oneshot::channel();
        let closing = Closing { delivery: delivery.clone(), sent, articles };
        self.0.send((closing, reply)).map_err(|_| anyhow::anyhow!("the digest closer stopped"))?;
        let result = committed.await.map_err(|_| anyhow::anyhow!("the digest closer stopped"))?;
        result.map_err(|e| anyhow::anyhow!("cannot close the delivery: {e}"))
    }
}

/// The leases of one claimed batch: the claims still held, and when to renew them.
struct Leases {
    claims: Vec<ClaimedDelivery>,
    held: HashSet<i64>,
    renew_at: tokio::time::Instant,
}

impl Leases {
    fn new(claimed: &[ClaimedDelivery], renew_every: StdDuration) -> Leases {
        Leases {
            claims: claimed.to_vec(),
            held: claimed.iter().map(|d| d.id).collect(),
            renew_at: tokio::time::Instant::now() + renew_every,
        }
    }

    fn holds(&self, delivery_id: i64) -> bool {
        self.held.contains(&delivery_id)
    }

    /// Keeps the claims a renewal found still held; the others are closed, or were
    /// taken over by another sender.
    fn keep(&mut self, held: &[i64]) {
        self.held = held.iter().copied().collect();
        self.claims.retain(|d| self.held.contains(&d.id));
    }
}

/// Delay before attempt `attempts + 1`, the first retry waiting `first`.
fn backoff(first: Duration, attempts: i32) -> Duration {
    let doublings = attempts.clamp(1, 12) - 1;
    (first * 2i32.pow(doublings as u32)).min(MAX_BACKOFF)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_up_to_an_hour() {
        let first = Duration::seconds(15);
        assert_eq!(backoff(first, 1), Duration::seconds(15));
        assert_eq!(backoff(first, 2), Duration::seconds(30));
        assert_eq!(backoff(first, 5), Duration::seconds(240));
        assert_eq!(backoff(first, 20), Duration::hours(1));
        assert_eq!(backoff(Duration::seconds(1), 3), Duration::seconds(4));
    }

    #[test]
    fn the_latest_slot_is_after_the_list_was_made() {
        let tz = chrono_tz::Asia::Ho_Chi_Minh;
        let daily = Schedule::parse("0 6 * * *").unwrap();
        let at = |s: &str| DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc);
        let made = at("2026-11-24T10:00:00+07:00");
        assert_eq!(latest_slot(&daily, tz, made, at("2026-11-25T05:59:00+07:00")), None);
        assert_eq!(latest_slot(&daily, tz, made, at("2026-11-25T05:59:59.5+07:00")), None, "not early");
        assert_eq!(
            latest_slot(&daily, tz, made, at("2026-11-25T06:00:00+07:00")),
            Some(at("2026-11-25T06:00:00+07:00"))
        );
        assert_eq!(
            latest_slot(&daily, tz, made, at("2026-11-28T09:00:00+07:00")),
            Some(at("2026-11-28T06:00:00+07:00")),
            "after days of downtime, only the latest time"
        );
    }
}
