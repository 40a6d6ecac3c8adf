//! Crash safety of digest delivery (issue 5, "Faults"), with the real `bantin` binary and
//! a real SMTP server: kill -9 in the middle of a run of 2,000 digests, the relay down
//! and answering 421/451 for a while, a 550 for one reader, SIGTERM in the middle of a
//! run, two `serve` processes on one PostgreSQL database, and a reader of two lists due
//! at the same time. Each runs on SQLite and on PostgreSQL (two `serve`: PostgreSQL only).
//!
//! Data is set up through the real surfaces (`bantin token create`, the HTTP API,
//! `bantin subscribers import --confirmed`); runs are triggered by the list's schedule
//! (`serve`) or by `bantin digest run`; what happened is read from the SMTP server, the
//! processes' logs and exit codes, and the store.

mod common;

use std::collections::{HashMap, HashSet};
use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bantin::config::DatabaseUrl;
use bantin::domain::audience::SubscriberStatus;
use bantin::store::Store;
use bantin::store::audience::SubscriberDetail;
use bantin::store::digests::{DigestRun, RunStatus};
use chrono::{DateTime, DurationRound, Timelike, Utc};
use common::binary::{Installation, Server, text};
use common::smtp::{ReceivedMail, SmtpServer};
use common::{Backend, TestDatabase};
use serde_json::json;
use sqlx::Connection;

const LIST: &str = "ban-tin-sang";
const TZ: chrono_tz::Tz = chrono_tz::Asia::Ho_Chi_Minh;
/// Digests sent at once, so also the most deliveries a crash can leave sent but unrecorded.
const CONNECTIONS: usize = 4;
/// Long enough for a scheduled run (up to a minute away) and the sending after it.
const DEADLINE: Duration = Duration::from_secs(150);

/// An installation with a list, its confirmed readers and three new articles.
struct Newsroom {
    db: TestDatabase,
    smtp: SmtpServer,
    installation: Installation,
    store: Arc<dyn Store>,
    token: String,
    list_id: i64,
    readers: Vec<String>,
    client: reqwest::Client,
}

fn reader(i: usize) -> String {
    format!("ban-doc-{i:04}@hiephoa.example")
}

impl Newsroom {
    /// Sets everything up through a running `serve`, which is handed back still running.
    /// The list's schedule is far away until [`Newsroom::schedule_next_minute`].
    async fn open(backend: Backend, readers: usize, settings: &[(&str, &str)]) -> Option<(Newsroom, Server)> {
        let db = TestDatabase::new(backend).await?;
        let smtp = SmtpServer::start().await;
        let mut installation = Installation::new(&db);
        installation.set("BANTIN_SMTP_URL", smtp.url().as_str());
        installation.set("BANTIN_SMTP_CONNECTIONS", &CONNECTIONS.to_string());
        installation.set("BANTIN_DELIVERY_RETRY_SECONDS", "1");
        for (name, value) in settings {
            installation.set(name, value);
        }
        let token = installation.token().await;
        let server = installation.serve().await;
        bantin::install_crypto_provider();
        let client = reqwest::Client::new();
        let store = db.store().await;
        let mut newsroom = Newsroom {
            db,
            smtp,
            installation,
            store,
            token,
            list_id: 0,
            readers: (1..=readers).map(reader).collect(),
            client,
        };
        let (status, body) = newsroom
            .api(
                &server,
                reqwest::Method::POST,
                "/api/v1/lists",
                json!({"name": "Bản tin sáng", "schedule": "0 0 1 1 *"}),
            )
            .await;
        assert_eq!(status, 201, "{body}");
        let csv = newsroom.installation.dir.join("ban-doc.csv");
        let rows: String =
            newsroom.readers.iter().enumerate().map(|(i, r)| format!("{r},Bạn đọc {}\n", i + 1)).collect();
        std::fs::write(&csv, format!("email,name\n{rows}")).unwrap();
        let out = newsroom
            .installation
            .run(&["subscribers", "import", csv.to_str().unwrap(), "--list", LIST, "--confirmed"])
            .await;
        assert!(out.status.success(), "{}", text(&out.stderr));
        assert!(text(&out.stdout).contains(&format!("{readers} new")), "{}", text(&out.stdout));
        newsroom.publish(&server, &["kinh-te-1", "kinh-te-2", "xa-hoi-1"]).await;
        newsroom.list_id = newsroom.store.list(LIST).await.unwrap().expect("the list").id;
        Some((newsroom, server))
    }

    async fn api(
        &self,
        server: &Server,
        method: reqwest::Method,
        path: &str,
        body: serde_json::Value,
    ) -> (u16, serde_json::Value) {
        let response = self
            .client
            .request(method, format!("{}{path}", server.address))
            .bearer_auth(&self.token)
            .json(&body)
            .send()
            .await
            .expect("request");
        let status = response.status().as_u16();
        (status, response.json().await.unwrap_or_default())
    }

    async fn publish(&self, server: &Server, ids: &[&str]) {
        let articles: Vec<_> = ids
            .iter()
            .map(|id| {
                json!({"id": id, "title": format!("Tin {id}: Hiệp Hòa củng cố nền nếp"), "category": ["Tin Tức", "Kinh tế"],
                       "author": "Phương Nhung", "content_text": "Nội dung bài viết."})
            })
            .collect();
        let (status, body) = self.api(server, reqwest::Method::POST, "/api/v1/articles", json!(articles)).await;
        assert_eq!((status, body["summary"]["failed"].as_i64()), (200, Some(0)), "{body}");
    }

    /// Sets the list's schedule to the next whole minute, after everything set up so far;
    /// the run is made then (or at once, if the minute passes before the change lands).
    async fn schedule_next_minute(&self, server: &Server) -> DateTime<Utc> {
        let slot = Utc::now().duration_trunc(chrono::Duration::minutes(1)).unwrap() + chrono::Duration::minutes(1);
        let local = slot.with_timezone(&TZ);
        let schedule = format!("{} {} * * *", local.minute(), local.hour());
        let (status, body) = self
            .api(server, reqwest::Method::PATCH, &format!("/api/v1/lists/{LIST}"), json!({"schedule": schedule}))
            .await;
        assert_eq!(status, 200, "{body}");
        slot
    }

    async fn runs(&self) -> Vec<DigestRun> {
        self.store.runs(Some(self.list_id), 10).await.unwrap()
    }

    /// The list's only run, once it exists.
    async fn the_run(&self) -> DigestRun {
        eventually("the scheduled run is made", || async {
            let runs = self.runs().await;
            assert!(runs.len() <= 1, "one run per list and time: {runs:?}");
            runs.into_iter().next()
        })
        .await
    }

    async fn finished(&self, run_id: i64) -> DigestRun {
        eventually("the run is done", || async {
            let run = self.store.run(run_id).await.unwrap().expect("the run");
            (run.status == RunStatus::Done).then_some(run)
        })
        .await
    }

    /// Every reader's subscription to the list, by address.
    async fn subscriptions(&self) -> HashMap<String, SubscriberDetail> {
        let all = self.store.export_subscribers(Some(self.list_id), 0, 1_000_000).await.unwrap();
        all.into_iter().map(|d| (d.subscriber.email.clone(), d)).collect()
    }

    /// Readers whose cursor moved to the run's window end: those recorded as sent.
    async fn cursors_at(&self, window_end: DateTime<Utc>) -> HashSet<String> {
        let subscriptions = self.subscriptions().await;
        for (address, detail) in &subscriptions {
            let cursor = detail.subscriptions[0].sent_through;
            let created = detail.subscriptions[0].created_at;
            assert!(cursor == window_end || cursor == created, "{address}: cursor {cursor} is neither");
        }
        subscriptions
            .into_iter()
            .filter(|(_, d)| d.subscriptions[0].sent_through == window_end)
            .map(|(address, _)| address)
            .collect()
    }

    /// Deliveries some process holds a lease on.
    async fn claimed(&self) -> i64 {
        const SQL: &str = "SELECT COUNT(*) FROM deliveries WHERE status = 'sending'";
        match &self.db.url {
            DatabaseUrl::Sqlite(url) => {
                let mut conn = sqlx::SqliteConnection::connect(url).await.unwrap();
                sqlx::query_scalar(SQL).fetch_one(&mut conn).await.unwrap()
            }
            DatabaseUrl::Postgres(url) => {
                let mut conn = sqlx::PgConnection::connect(url).await.unwrap();
                sqlx::query_scalar(SQL).fetch_one(&mut conn).await.unwrap()
            }
        }
    }
}

/// Polls `check` until it gives a value; fails after [`DEADLINE`] naming `what`.
async fn eventually<T, F: Future<Output = Option<T>>>(what: &str, mut check: impl FnMut() -> F) -> T {
    let started = Instant::now();
    loop {
        if let Some(value) = check().await {
            return value;
        }
        assert!(started.elapsed() < DEADLINE, "timed out waiting until {what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The Message-IDs each recipient got, in arrival order.
fn by_recipient(received: &[ReceivedMail]) -> HashMap<String, Vec<String>> {
    let mut by = HashMap::<String, Vec<String>>::new();
    for mail in received {
        assert_eq!(mail.to.len(), 1, "one recipient per digest");
        by.entry(mail.to[0].clone()).or_default().push(message_id(&mail.raw));
    }
    by
}

/// The Message-ID header, read from the header block without parsing the bodies.
fn message_id(raw: &[u8]) -> String {
    let head = text(&raw[..raw.windows(4).position(|w| w == b"\r\n\r\n").unwrap_or(raw.len())]);
    head.lines()
        .find_map(|line| line.strip_prefix("Message-ID: ").map(str::to_owned))
        .unwrap_or_else(|| panic!("no Message-ID in {head}"))
}

fn assert_counts(run: &DigestRun, sent: i64, failed: i64, skipped: i64) {
    assert_eq!(
        (run.status, run.queued, run.sent, run.failed, run.skipped),
        (RunStatus::Done, 0, sent, failed, skipped),
        "{run:?}"
    );
}

both_backends!(kill_9_mid_run_then_restart_sends_everyone_once_but_what_was_in_flight, |backend| async move {
    // A short lease, so the restarted process takes over what the killed one held.
    let settings = [("BANTIN_DELIVERY_LEASE_SECONDS", "2")];
    let Some((newsroom, mut server)) = Newsroom::open(backend, 2_000, &settings).await else { return };
    // The relay is slow to acknowledge, so some digests are sent but not yet known to be.
    newsroom.smtp.acknowledge_after(Duration::from_millis(5));
    let window_end = newsroom.schedule_next_minute(&server).await;
    newsroom.smtp.wait_for(400, DEADLINE).await;
    server.process.kill();
    newsroom.smtp.wait_for_hang_ups(DEADLINE).await;

    let before_restart = newsroom.smtp.received();
    assert!(before_restart.len() < 2_000, "the kill landed after the run: {}", before_restart.len());
    let run = newsroom.the_run().await;
    assert_eq!((run.status, run.window_end), (RunStatus::Sending, window_end));
    let recorded = newsroom.cursors_at(window_end).await;
    let mailed: HashSet<String> = by_recipient(&before_restart).into_keys().collect();
    assert_eq!(run.sent as usize, recorded.len(), "a delivery is recorded sent with its cursor, at once");
    assert!(recorded.is_subset(&mailed), "a cursor moved for a digest that was not sent");
    let in_flight: HashSet<String> = mailed.difference(&recorded).cloned().collect();
    assert!(in_flight.len() <= CONNECTIONS, "sent but unrecorded: {in_flight:?}");

    let mut restarted = newsroom.installation.serve().await;
    let run = newsroom.finished(run.id).await;
    assert_counts(&run, 2_000, 0, 0);
    let received = by_recipient(&newsroom.smtp.received());
    assert_eq!(received.len(), 2_000, "every reader got the digest");
    let doubled: HashSet<String> =
        received.iter().filter(|(_, ids)| ids.len() > 1).map(|(address, _)| address.clone()).collect();
    assert!(doubled.is_subset(&in_flight), "only sends in flight at the kill repeat: {doubled:?} vs {in_flight:?}");
    for (address, ids) in &received {
        assert!(ids.len() <= 2, "{address} got {} copies", ids.len());
        assert!(ids.iter().all(|id| id == &ids[0]), "a repeat keeps its Message-ID: {ids:?}");
    }
    assert_eq!(newsroom.cursors_at(window_end).await.len(), 2_000, "every cursor is at the run's window end");
    assert_eq!(newsroom.claimed().await, 0);
    assert!(restarted.process.terminate().await.success());
});

both_backends!(sigterm_mid_run_finishes_the_sends_in_flight_and_a_restart_sends_the_rest_once, |backend| async move {
    // The default lease (five minutes): the restart can finish the run within the test
    // only if the stopped process left nothing claimed.
    let Some((newsroom, mut server)) = Newsroom::open(backend, 100, &[]).await else { return };
    newsroom.smtp.acknowledge_after(Duration::from_millis(400));
    let window_end = newsroom.schedule_next_minute(&server).await;
    newsroom.smtp.wait_for(20, DEADLINE).await;
    let at_signal = newsroom.smtp.received_count();
    let exit = server.process.terminate().await;
    assert!(exit.success(), "a graceful stop exits 0, got {exit}: {}", server.process.stderr());
    assert_eq!(server.process.log_lines("shutting down: finishing in-flight work").len(), 1);
    newsroom.smtp.wait_for_hang_ups(DEADLINE).await;
    let before_restart = newsroom.smtp.received();
    // The sends in flight at the signal finish (and a slot freed just before the signal
    // was handled may have started one more); the rest of the claimed batch is not sent.
    assert!(
        before_restart.len() - at_signal <= 2 * CONNECTIONS,
        "{} digests were sent after SIGTERM",
        before_restart.len() - at_signal
    );
    assert_eq!(newsroom.claimed().await, 0, "no delivery stays claimed");
    let run = newsroom.the_run().await;
    let mailed: HashSet<String> = by_recipient(&before_restart).into_keys().collect();
    assert_eq!(mailed.len(), before_restart.len());
    assert_eq!((run.status, run.sent as usize), (RunStatus::Sending, mailed.len()), "every send was recorded");
    assert_eq!(newsroom.cursors_at(window_end).await, mailed, "cursors moved for exactly what was sent");

    let mut restarted = newsroom.installation.serve().await;
    let run = newsroom.finished(run.id).await;
    assert_counts(&run, 100, 0, 0);
    let received = by_recipient(&newsroom.smtp.received());
    assert_eq!(received.len(), 100);
    assert!(received.values().all(|ids| ids.len() == 1), "no duplicates at all");
    assert_eq!(newsroom.cursors_at(window_end).await.len(), 100);
    assert!(restarted.process.terminate().await.success());
});

/// Waits for the next whole second: `bantin digest run` makes a run whose window ends
/// at the start of the current second, so it holds articles from before that.
async fn next_second() {
    let now = Utc::now();
    let next = now.duration_trunc(chrono::Duration::seconds(1)).unwrap() + chrono::Duration::seconds(1);
    tokio::time::sleep((next - now).to_std().unwrap()).await;
}

both_backends!(the_relay_down_mid_run_delays_digests_with_backoff_and_loses_or_doubles_none, |backend| async move {
    let Some((newsroom, mut server)) = Newsroom::open(backend, 200, &[]).await else { return };
    assert!(server.process.terminate().await.success());
    newsroom.smtp.acknowledge_after(Duration::from_millis(10));
    next_second().await;
    let mut run = newsroom.installation.start(&["digest", "run", "--list", LIST]);
    newsroom.smtp.wait_for(30, DEADLINE).await;
    newsroom.smtp.go_down();
    // Down until some delivery has failed twice, so the second delay is the doubled one.
    let doubled = eventually("a delivery fails twice", || async {
        run.log_lines("digest send failed; will retry").into_iter().find(|line| line["fields"]["retry_in_s"] == 2)
    })
    .await;
    assert!(doubled["fields"]["error"].as_str().unwrap_or_default().contains("Connection refused"), "{doubled}");
    newsroom.smtp.come_back_up().await;
    let exit = run.wait().await;
    assert!(exit.success(), "{exit}: {}", run.stderr());
    assert!(run.stdout().contains("200 sent, 0 skipped (nothing new), 0 failed"), "{}", run.stdout());
    let received = by_recipient(&newsroom.smtp.received());
    assert_eq!(received.len(), 200, "every digest arrived");
    assert!(received.values().all(|ids| ids.len() == 1), "none twice");
    let runs = newsroom.runs().await;
    assert_eq!(runs.len(), 1);
    assert_counts(&runs[0], 200, 0, 0);
    assert_eq!(newsroom.cursors_at(runs[0].window_end).await.len(), 200);
});

both_backends!(replies_421_and_451_are_retried_and_a_550_bounces_the_reader_for_good, |backend| async move {
    let Some((newsroom, mut server)) = Newsroom::open(backend, 20, &[]).await else { return };
    assert!(server.process.terminate().await.success());
    let bounced = reader(7);
    newsroom.smtp.reply_to_recipient(&bounced, "550 5.1.1 No such user");
    newsroom.smtp.fail_next_messages(3, "421 4.7.0 Too busy, try again later");
    newsroom.smtp.fail_next_messages(3, "451 4.3.0 Try again later");
    next_second().await;
    let first = newsroom.installation.run(&["digest", "run", "--list", LIST]).await;
    assert_eq!(first.status.code(), Some(1), "a failed delivery makes exit code 1: {}", text(&first.stderr));
    assert!(text(&first.stdout).contains("19 sent, 0 skipped (nothing new), 1 failed"), "{}", text(&first.stdout));
    let stderr = text(&first.stderr);
    assert_eq!(stderr.matches("digest send failed; will retry").count(), 6, "{stderr}");
    assert_eq!(stderr.matches("digest refused for good: subscriber marked bounced").count(), 1, "{stderr}");
    let received = by_recipient(&newsroom.smtp.received());
    assert_eq!(received.len(), 19);
    assert!(received.values().all(|ids| ids.len() == 1));
    assert!(!received.contains_key(&bounced));
    assert_eq!(newsroom.smtp.attempts(), 19 + 6, "six refused, then accepted; the 550 stops before the data");
    let runs = newsroom.runs().await;
    assert_counts(&runs[0], 19, 1, 0);
    let subscriptions = newsroom.subscriptions().await;
    let reader_status = |address: &str| subscriptions[address].subscriber.status;
    assert_eq!(reader_status(&bounced), SubscriberStatus::Bounced);
    assert_eq!(reader_status(&reader(8)), SubscriberStatus::Active);
    let cursor = &subscriptions[&bounced].subscriptions[0];
    assert_eq!(cursor.sent_through, cursor.created_at, "nothing was sent to the bounced reader");
    assert_eq!(newsroom.cursors_at(runs[0].window_end).await.len(), 19);

    // The next run, with one new article: the bounced reader is not even tried.
    let article = newsroom.installation.dir.join("moi.json");
    std::fs::write(&article, r#"{"id": "moi-1", "title": "Tin mới", "category": ["Tin Tức"], "content_text": "Mới."}"#)
        .unwrap();
    let import = newsroom.installation.run(&["import", article.to_str().unwrap()]).await;
    assert!(import.status.success(), "{}", text(&import.stderr));
    newsroom.smtp.clear_faults();
    next_second().await;
    let second = newsroom.installation.run(&["digest", "run", "--list", LIST]).await;
    assert!(second.status.success(), "{}", text(&second.stderr));
    assert!(text(&second.stdout).contains("19 sent, 0 skipped (nothing new), 0 failed"), "{}", text(&second.stdout));
    let runs = newsroom.runs().await;
    assert_eq!(runs.len(), 2);
    assert_counts(&runs[0], 19, 0, 0);
    let all = newsroom.smtp.received();
    assert_eq!(all.len(), 38);
    assert!(newsroom.smtp.received_by(&bounced).is_empty());
    let subjects: Vec<String> = all[19..].iter().map(|m| m.parsed().header("Subject").unwrap()).collect();
    assert!(subjects.iter().all(|s| s.ends_with("1 bài mới")), "only the new article: {subjects:?}");
});

/// Two instances behind a load balancer: the scheduled run is made once, and each reader
/// gets one digest even though each instance's batch outlasts the lease.
#[tokio::test]
async fn two_serve_processes_on_one_postgresql_send_each_digest_once() {
    let settings = [("BANTIN_DELIVERY_LEASE_SECONDS", "2")];
    let Some((newsroom, mut first)) = Newsroom::open(Backend::Postgres, 300, &settings).await else { return };
    let mut second = newsroom.installation.serve().await;
    // Each instance claims 16 deliveries per connection and sends them one after the
    // other: at 150 ms a send, a batch takes longer than its two-second lease.
    newsroom.smtp.acknowledge_after(Duration::from_millis(150));
    newsroom.schedule_next_minute(&first).await;
    let run = newsroom.the_run().await;
    let run = newsroom.finished(run.id).await;
    assert_counts(&run, 300, 0, 0);
    let received = by_recipient(&newsroom.smtp.received());
    assert_eq!(received.len(), 300);
    let doubled: Vec<_> = received.iter().filter(|(_, ids)| ids.len() > 1).collect();
    assert!(doubled.is_empty(), "sent twice: {doubled:?}");
    assert_eq!(newsroom.runs().await.len(), 1);
    let made = |message: &str| first.process.log_lines(message).len() + second.process.log_lines(message).len();
    assert_eq!(made("digest run created"), 1, "one instance makes the run");
    assert_eq!(made("digest run queued"), 1, "one instance queues its deliveries");
    assert!(first.process.terminate().await.success());
    assert!(second.process.terminate().await.success());
}

both_backends!(a_reader_of_two_lists_due_at_the_same_time_gets_both_digests, |backend| async move {
    let Some((newsroom, mut server)) = Newsroom::open(backend, 30, &[]).await else { return };
    let (status, body) = newsroom
        .api(&server, reqwest::Method::POST, "/api/v1/lists", json!({"name": "Bản tin chiều", "schedule": "0 0 1 1 *"}))
        .await;
    assert_eq!(status, 201, "{body}");
    let csv = newsroom.installation.dir.join("ban-doc.csv");
    let out = newsroom
        .installation
        .run(&["subscribers", "import", csv.to_str().unwrap(), "--list", "ban-tin-chieu", "--confirmed"])
        .await;
    assert!(text(&out.stdout).contains("30 merged"), "{}", text(&out.stdout));
    // New for both lists' readers (the evening list's subscriptions are newer than the
    // first articles).
    newsroom.publish(&server, &["chieu-1"]).await;
    let slot = newsroom.schedule_next_minute(&server).await;
    let local = slot.with_timezone(&TZ);
    let (status, body) = newsroom
        .api(
            &server,
            reqwest::Method::PATCH,
            "/api/v1/lists/ban-tin-chieu",
            json!({"schedule": format!("{} {} * * *", local.minute(), local.hour())}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let evening = newsroom.store.list("ban-tin-chieu").await.unwrap().unwrap().id;
    let runs = eventually("both runs are done", || async {
        let runs = newsroom.store.runs(None, 10).await.unwrap();
        (runs.len() == 2 && runs.iter().all(|r| r.status == RunStatus::Done)).then_some(runs)
    })
    .await;
    for run in &runs {
        assert_counts(run, 30, 0, 0);
    }
    let received = newsroom.smtp.received();
    assert_eq!(received.len(), 60);
    for address in &newsroom.readers {
        let mut lists: Vec<String> =
            newsroom.smtp.received_by(address).iter().map(|m| m.parsed().header("List-Id").unwrap()).collect();
        lists.sort();
        assert_eq!(lists, ["<ban-tin-chieu.tin.hiephoa.example>", "<ban-tin-sang.tin.hiephoa.example>"], "{address}");
    }
    let details = newsroom.store.export_subscribers(Some(evening), 0, 100).await.unwrap();
    assert!(details.iter().all(|d| d.subscriptions.iter().all(|s| s.sent_through == slot)), "both cursors moved");
    assert!(server.process.terminate().await.success());
});
