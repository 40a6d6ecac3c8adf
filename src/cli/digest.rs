//! `bantin digest run` and `bantin digest preview`.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use chrono::Utc;
use clap::Subcommand;
use indicatif::{ProgressBar, ProgressStyle};

use super::EXIT_CONFIG;
use crate::app::Services;
use crate::audience::Audience;
use crate::config::Config;
use crate::digest::Digests;
use crate::domain::email::EmailAddress;
use crate::store::Store;
use crate::store::digests::RunStatus;

#[derive(Subcommand)]
pub(super) enum DigestCommand {
    /// Run a list's digest now and wait until every delivery is done.
    Run {
        #[arg(long)]
        list: String,
    },
    /// Render one subscriber's digest without sending: writes .html, .txt and .eml files.
    Preview {
        #[arg(long)]
        list: String,
        #[arg(long)]
        email: String,
        /// Folder for the files.
        #[arg(long, default_value = ".")]
        out: PathBuf,
    },
}

pub(super) async fn run(command: DigestCommand, config: Config) -> anyhow::Result<ExitCode> {
    let services = Services::open(&config).await?;
    let audience = Arc::new(Audience::load(&config, services.store.clone()).await?);
    let digests = Arc::new(Digests::new(&config, services.store.clone(), audience, services.metrics.clone()));
    let slug = match &command {
        DigestCommand::Run { list } | DigestCommand::Preview { list, .. } => list,
    };
    let Some(list) = services.store.list(slug).await? else {
        eprintln!("bantin: there is no list {slug:?}");
        return Ok(ExitCode::from(EXIT_CONFIG));
    };
    match command {
        DigestCommand::Run { .. } => {
            let run_id = digests.run_now(&list, Utc::now()).await?;
            let started = std::time::Instant::now();
            let queued = digests.enqueue_pending(Utc::now()).await?;
            eprintln!("run {run_id}: {queued} deliveries queued in {} ms", started.elapsed().as_millis());
            // On the runtime's workers, like `bantin serve`'s sender, not on the thread
            // that waits for the command to finish: each send that ends wakes the batch.
            tokio::spawn(wait_for_run(services.store.clone(), digests, run_id)).await?
        }
        DigestCommand::Preview { email, out, .. } => {
            let address = match EmailAddress::parse(&email) {
                Ok(address) => address,
                Err(e) => {
                    eprintln!("bantin: --email {e}");
                    return Ok(ExitCode::from(EXIT_CONFIG));
                }
            };
            let Some(detail) = services.store.subscriber_by_email(&address).await? else {
                eprintln!("bantin: no subscriber {address}");
                return Ok(ExitCode::from(EXIT_CONFIG));
            };
            if !detail.subscriptions.iter().any(|s| s.list_id == list.id) {
                eprintln!("bantin: {address} is not subscribed to {}", list.slug);
                return Ok(ExitCode::from(EXIT_CONFIG));
            }
            let preview = digests.preview(&list, Some(&detail), Utc::now()).await?;
            let mail = &preview.mail;
            std::fs::create_dir_all(&out).with_context(|| format!("cannot create {}", out.display()))?;
            let stem = out.join(format!("digest-{}", list.slug));
            let files = [
                (stem.with_extension("html"), mail.html.as_str().as_bytes().to_vec()),
                (stem.with_extension("txt"), mail.text.as_str().as_bytes().to_vec()),
                (stem.with_extension("eml"), mail.build()?.formatted()),
            ];
            for (path, bytes) in &files {
                std::fs::write(path, bytes).with_context(|| format!("cannot write {}", path.display()))?;
                println!("{}", path.display());
            }
            eprintln!("{}: {} new article(s), nothing sent", mail.subject, preview.total);
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// How often `bantin digest run` reads its run's counts while sending.
const PROGRESS_EVERY: Duration = Duration::from_secs(1);

/// Sends (with any `bantin serve` sharing the database) until the run is finished.
async fn wait_for_run(store: Arc<dyn Store>, digests: Arc<Digests>, run_id: i64) -> anyhow::Result<ExitCode> {
    let total = store.run(run_id).await?.map_or(0, |r| r.queued);
    let bar = if std::io::stderr().is_terminal() { ProgressBar::new(total as u64) } else { ProgressBar::hidden() };
    bar.set_style(
        ProgressStyle::with_template("{bar:30} {pos}/{len} deliveries {msg}").context("progress bar template")?,
    );
    // Interrupting the command ends it at once: what it held is sent again once the lease expires.
    let never = tokio_util::sync::CancellationToken::new();
    // The run's counts are read when nothing was sent (the run may be over) and at most
    // once a second otherwise, not after every batch.
    let mut shown = std::time::Instant::now();
    loop {
        let handled = digests.send_batch(&never).await?;
        if handled > 0 && shown.elapsed() < PROGRESS_EVERY {
            continue;
        }
        shown = std::time::Instant::now();
        let run = store.run(run_id).await?.context("the run vanished")?;
        bar.set_position((run.sent + run.failed + run.skipped) as u64);
        bar.set_message(format!("{} sent, {} failed", run.sent, run.failed));
        if matches!(run.status, RunStatus::Done | RunStatus::Cancelled) {
            bar.finish_and_clear();
            println!(
                "run {run_id} of {}: {} sent, {} skipped (nothing new), {} failed{}",
                run.list,
                run.sent,
                run.skipped,
                run.failed,
                if run.status == RunStatus::Cancelled { " (cancelled)" } else { "" }
            );
            return Ok(if run.failed > 0 { ExitCode::FAILURE } else { ExitCode::SUCCESS });
        }
        if handled == 0 {
            // Waiting for retries after a backoff, or for another instance's sends.
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    }
}
