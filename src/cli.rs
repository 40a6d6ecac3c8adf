//! Command-line interface. `main.rs` calls [`main`]; each command is a small function
//! over the library.

use std::collections::HashMap;
use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::{Parser, Subcommand};
use indicatif::{ProgressBar, ProgressStyle};
use tokio_util::sync::CancellationToken;

use crate::app::{Application, Services};
use crate::config::Config;
use crate::domain::ArticleStatus;
use crate::domain::audience::{ListInput, SubscriberStatus, SubscriptionStatus};
use crate::domain::email::EmailAddress;
use crate::domain::token::NewToken;
use crate::ingest::files::{self, FileItem};
use crate::ingest::{ItemError, ItemReport};
use crate::store::audience::{Merge, NewSubscriber};
use crate::store::{Change, StoreError};
use crate::telemetry::{self, LogFormat};

mod admin;
mod digest;
mod sources;
mod subscribers;

/// Exit code for a configuration that stops start-up.
const EXIT_CONFIG: u8 = 2;
/// Articles written per transaction during an import.
const IMPORT_CHUNK: usize = 500;

#[derive(Parser)]
#[command(name = "bantin", version, about = "Feeds and email digests for news sites")]
struct Cli {
    /// Configuration file (default: ./bantin.toml when it exists).
    #[arg(long, global = true, value_name = "PATH")]
    config: Option<PathBuf>,
    /// Log format on stderr.
    #[arg(long, global = true, value_enum, default_value = "text")]
    log_format: LogFormat,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the HTTP server and all background workers.
    Serve,
    /// Apply database migrations and exit.
    Migrate,
    /// Load sample Vietnamese categories and articles.
    Demo,
    /// Manage API tokens.
    Token {
        #[command(subcommand)]
        command: TokenCommand,
    },
    /// Import articles from .json, .jsonl and .md files or folders.
    Import {
        #[arg(required = true, value_name = "PATH")]
        paths: Vec<PathBuf>,
    },
    /// Manage admin accounts of the web UI.
    Admin {
        #[command(subcommand)]
        command: admin::AdminCommand,
    },
    /// Import, export, add and remove subscribers.
    Subscribers {
        #[command(subcommand)]
        command: subscribers::SubscribersCommand,
    },
    /// Run a digest now, or preview one.
    Digest {
        #[command(subcommand)]
        command: digest::DigestCommand,
    },
    /// Background sources (inbox folders, upstream feeds): list, pause, resume.
    Sources {
        #[command(subcommand)]
        command: sources::SourcesCommand,
    },
}

#[derive(Subcommand)]
enum TokenCommand {
    /// Create a token and print it alone on stdout (it is shown only this once).
    Create {
        #[arg(long)]
        name: String,
    },
}

pub fn main() -> ExitCode {
    let cli = Cli::parse();
    telemetry::init(cli.log_format);
    let env: HashMap<String, String> = std::env::vars().collect();
    let config = match Config::load(cli.config.as_deref(), &env) {
        Ok(config) => config,
        Err(e) => {
            eprintln!("bantin: {e}");
            return ExitCode::from(EXIT_CONFIG);
        }
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("bantin: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(cli.command, config)) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("bantin: {e:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run(command: Command, config: Config) -> anyhow::Result<ExitCode> {
    match command {
        Command::Serve => serve(config).await,
        Command::Migrate => {
            Services::open(&config).await?;
            eprintln!("migrations applied to {}", config.database_url.redacted());
            Ok(ExitCode::SUCCESS)
        }
        Command::Demo => demo(config).await,
        Command::Token { command: TokenCommand::Create { name } } => create_token(config, &name).await,
        Command::Import { paths } => import(config, &paths).await,
        Command::Admin { command } => admin::run(command, config).await,
        Command::Subscribers { command } => subscribers::run(command, config).await,
        Command::Digest { command } => digest::run(command, config).await,
        Command::Sources { command } => sources::run(command, config).await,
    }
}

async fn serve(config: Config) -> anyhow::Result<ExitCode> {
    let app = Application::build(config.clone()).await?;
    let shutdown = CancellationToken::new();
    tokio::spawn(stop_on_signal(shutdown.clone()));
    tracing::info!(
        address = %app.local_addr(),
        base_url = config.base_url,
        database = config.database_url.redacted(),
        "bantin is serving"
    );
    if config.smtp_url.is_none() {
        tracing::info!(outbox = %config.data_dir.join("outbox").display(), "BANTIN_SMTP_URL is not set: email will be written as .eml files to the outbox");
    }
    app.run(shutdown).await?;
    tracing::info!("stopped");
    Ok(ExitCode::SUCCESS)
}

/// Cancels `shutdown` on SIGINT or SIGTERM.
async fn stop_on_signal(shutdown: CancellationToken) {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = ctrl_c => {}
                    _ = term.recv() => {}
                }
            }
            Err(_) => {
                let _ = ctrl_c.await;
            }
        }
    }
    #[cfg(not(unix))]
    let _ = ctrl_c.await;
    shutdown.cancel();
    tracing::info!("shutting down: finishing in-flight work");
}

async fn create_token(config: Config, name: &str) -> anyhow::Result<ExitCode> {
    let name = crate::domain::text::clean_line(name);
    if name.is_empty() {
        eprintln!("bantin: --name must not be empty");
        return Ok(ExitCode::from(EXIT_CONFIG));
    }
    let services = Services::open(&config).await?;
    let token = NewToken::generate()?;
    services.store.create_api_token(&name, &token.public_id, &token.secret_hash, chrono::Utc::now()).await?;
    println!("{}", token.plaintext);
    eprintln!("token {name:?} created; it is shown only this once");
    Ok(ExitCode::SUCCESS)
}

async fn demo(config: Config) -> anyhow::Result<ExitCode> {
    let services = Services::open(&config).await?;
    // Subscribers first, so the articles are new to them and make the first digest.
    let (lists, subscribers) = demo_audience(&config, &services).await?;
    let items = crate::demo::articles(chrono::Utc::now(), config.timezone)?;
    let reports = services.ingestor.ingest(&items).await?;
    let mut tally = Tally::default();
    let mut scheduled = 0;
    for report in &reports {
        match tally.add(report) {
            Ok(()) if report.outcome.as_ref().is_ok_and(|d| d.status == ArticleStatus::Scheduled) => scheduled += 1,
            Ok(()) => {}
            Err(e) => eprintln!("demo article {}: {e}", report.id.as_deref().unwrap_or("?")),
        }
    }
    println!("demo loaded into {}: {tally}", config.database_url.redacted());
    println!("{} published, {scheduled} scheduled in the next minutes", reports.len() - tally.failed - scheduled);
    println!("{lists} new list(s), {subscribers} new subscriber(s) of the morning list");
    println!(
        "start the service with `bantin serve` and open {}/feeds or {}/subscribe",
        config.base_url, config.base_url
    );
    Ok(if tally.failed > 0 { ExitCode::FAILURE } else { ExitCode::SUCCESS })
}

/// The demo lists and the morning list's subscribers; what exists already is left alone.
async fn demo_audience(config: &Config, services: &Services) -> anyhow::Result<(usize, usize)> {
    let audience = crate::audience::Audience::load(config, services.store.clone()).await?;
    let defaults = audience.list_defaults();
    let now = chrono::Utc::now();
    let mut created = 0;
    for value in crate::demo::lists() {
        let input = ListInput::from_json(&value, &defaults).map_err(|e| anyhow::anyhow!("demo list: {e}"))?;
        match services.store.create_list(&input, now).await {
            Ok(_) => created += 1,
            Err(StoreError::Conflict(_)) => {}
            Err(e) => return Err(e.into()),
        }
    }
    let morning = services.store.list("ban-tin-sang").await?.context("the demo morning list is missing")?;
    let rows: Vec<NewSubscriber> = crate::demo::SUBSCRIBERS
        .iter()
        .map(|(address, name)| {
            Ok(NewSubscriber {
                email: EmailAddress::parse(address).map_err(|e| anyhow::anyhow!("demo address {e}"))?,
                name: (*name).to_owned(),
                language: config.language,
                status: SubscriberStatus::Active,
                attributes: serde_json::Map::new(),
                list_ids: vec![morning.id],
            })
        })
        .collect::<anyhow::Result<_>>()?;
    let merged = services.store.merge_subscribers(&rows, SubscriptionStatus::Active, now).await?;
    Ok((created, merged.iter().filter(|m| m.merge == Merge::Created).count()))
}

#[derive(Default)]
struct Tally {
    new: usize,
    updated: usize,
    unchanged: usize,
    failed: usize,
}

impl Tally {
    /// Counts one outcome; returns the error text for a failed item.
    fn add(&mut self, report: &ItemReport) -> Result<(), String> {
        match &report.outcome {
            Ok(done) => {
                match done.change {
                    Change::New => self.new += 1,
                    Change::Updated => self.updated += 1,
                    Change::Unchanged => self.unchanged += 1,
                }
                Ok(())
            }
            Err(e) => {
                self.failed += 1;
                Err(match e {
                    ItemError::Invalid(e) => e.to_string(),
                    ItemError::Storage(e) => e.to_string(),
                })
            }
        }
    }
}

impl std::fmt::Display for Tally {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} new, {} updated, {} unchanged, {} failed", self.new, self.updated, self.unchanged, self.failed)
    }
}

async fn import(config: Config, paths: &[PathBuf]) -> anyhow::Result<ExitCode> {
    let services = Services::open(&config).await?;
    let (file_list, walk_errors) = files::collect(paths);
    let mut tally = Tally::default();
    let mut failed_files = walk_errors.len();
    for (path, error) in &walk_errors {
        eprintln!("{}: {error}", path.display());
    }
    let bar =
        if std::io::stderr().is_terminal() { ProgressBar::new(file_list.len() as u64) } else { ProgressBar::hidden() };
    bar.set_style(ProgressStyle::with_template("{bar:30} {pos}/{len} files {msg}").context("progress bar template")?);
    for path in &file_list {
        bar.set_message(path.display().to_string());
        let items = match files::read(path) {
            Ok(items) => items,
            Err(error) => {
                bar.suspend(|| eprintln!("{}: {error}", path.display()));
                failed_files += 1;
                bar.inc(1);
                continue;
            }
        };
        for chunk in items.chunks(IMPORT_CHUNK) {
            import_chunk(&services, path, chunk, &mut tally, &bar).await?;
        }
        bar.inc(1);
    }
    bar.finish_and_clear();
    println!(
        "imported {} file(s): {tally}{}",
        file_list.len(),
        if failed_files > 0 { format!("; {failed_files} file(s) could not be read") } else { String::new() }
    );
    Ok(if tally.failed > 0 || failed_files > 0 { ExitCode::FAILURE } else { ExitCode::SUCCESS })
}

async fn import_chunk(
    services: &Services,
    path: &std::path::Path,
    chunk: &[FileItem],
    tally: &mut Tally,
    bar: &ProgressBar,
) -> anyhow::Result<()> {
    let split = files::split(chunk);
    for (locator, e) in &split.unreadable {
        tally.failed += 1;
        bar.suspend(|| eprintln!("{} {locator}: {e}", path.display()));
    }
    let reports = services.ingestor.ingest(&split.values).await?;
    for (report, locator) in reports.iter().zip(split.locators) {
        if let Err(error) = tally.add(report) {
            let id = report.id.as_deref().map(|id| format!(" (id {id})")).unwrap_or_default();
            bar.suspend(|| eprintln!("{} {locator}{id}: {error}", path.display()));
        }
    }
    Ok(())
}
