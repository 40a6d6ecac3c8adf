//! `bantin subscribers …`: bulk import and export, add and remove one address.
//! Exit codes: 0 done, 1 some rows (or the one address) failed, 2 an unknown list or a
//! file that cannot be read.

use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;
use chrono::Utc;
use clap::Subcommand;
use indicatif::{ProgressBar, ProgressStyle};
use serde_json::{Map, json};

use crate::app::Services;
use crate::audience::Audience;
use crate::audience::admin::AddError;
use crate::audience::csv::{ImportError, ImportMode};
use crate::config::Config;
use crate::domain::Slug;
use crate::domain::audience::{SubscriberInput, SubscriberStatus, parse_email, parse_subscriber_name};
use crate::store::audience::MailingList;

/// Exit code for an unknown list or an unreadable file.
const EXIT_INPUT: u8 = 2;
/// Who the audit log names for changes made from the command line.
const ACTOR: &str = "cli";

#[derive(Subcommand)]
pub(super) enum SubscribersCommand {
    /// Import subscribers from a CSV file into a list.
    Import {
        #[arg(value_name = "FILE.csv")]
        file: PathBuf,
        #[arg(long)]
        list: String,
        /// They agreed elsewhere: active at once, no confirmation email.
        #[arg(long)]
        confirmed: bool,
    },
    /// Write subscribers as CSV on stdout.
    Export {
        #[arg(long)]
        list: Option<String>,
    },
    /// Add one subscriber to a list (a confirmation email unless --confirmed).
    Add {
        email: String,
        #[arg(long)]
        list: String,
        #[arg(long)]
        name: Option<String>,
        /// They agreed elsewhere: active at once, no confirmation email.
        #[arg(long)]
        confirmed: bool,
    },
    /// Erase a subscriber and their subscriptions.
    Remove { email: String },
}

pub(super) async fn run(command: SubscribersCommand, config: Config) -> anyhow::Result<ExitCode> {
    let services = Services::open(&config).await?;
    let audience = Audience::load(&config, services.store).await?;
    match command {
        SubscribersCommand::Import { file, list, confirmed } => {
            let mode = if confirmed { ImportMode::Confirmed } else { ImportMode::OptIn };
            import(&audience, &file, &list, mode).await
        }
        SubscribersCommand::Export { list } => export(&audience, list.as_deref()).await,
        SubscribersCommand::Add { email, list, name, confirmed } => {
            add(&audience, &email, &list, name.as_deref(), confirmed).await
        }
        SubscribersCommand::Remove { email } => remove(&audience, &email).await,
    }
}

/// The list named `slug`, or a message on stderr.
async fn find_list(audience: &Audience, slug: &str) -> anyhow::Result<Option<MailingList>> {
    let list = audience.store.list(slug).await?;
    if list.is_none() {
        eprintln!("bantin: there is no list with the slug {slug:?}");
    }
    Ok(list)
}

async fn import(audience: &Audience, path: &Path, slug: &str, mode: ImportMode) -> anyhow::Result<ExitCode> {
    let Some(list) = find_list(audience, slug).await? else { return Ok(ExitCode::from(EXIT_INPUT)) };
    let file = match std::fs::File::open(path) {
        Ok(file) => file,
        Err(e) => {
            eprintln!("bantin: cannot read {}: {e}", path.display());
            return Ok(ExitCode::from(EXIT_INPUT));
        }
    };
    let bar = if std::io::stderr().is_terminal() { ProgressBar::new_spinner() } else { ProgressBar::hidden() };
    bar.set_style(
        ProgressStyle::with_template("{spinner} {pos} rows read {elapsed}").context("progress bar template")?,
    );
    let mut progress = |rows: u64| bar.set_position(rows);
    let result = audience.import_csv(std::io::BufReader::new(file), &list, mode, &mut progress).await;
    bar.finish_and_clear();
    let report = match result {
        Ok(report) => report,
        Err(ImportError::File(reason)) => {
            eprintln!("bantin: {}: {reason}", path.display());
            return Ok(ExitCode::from(EXIT_INPUT));
        }
        Err(ImportError::Store(e)) => return Err(e.into()),
    };
    for warning in &report.warnings {
        eprintln!("{}: {warning}", path.display());
    }
    for error in &report.errors {
        eprintln!("{} line {}: {}", path.display(), error.line, error.error);
    }
    if report.failed > report.errors.len() as u64 {
        eprintln!("{}: {} more rows failed", path.display(), report.failed - report.errors.len() as u64);
    }
    println!("imported into {}: {report}", list.slug);
    let detail = json!({
        "mode": if mode == ImportMode::Confirmed { "confirmed" } else { "optin" },
        "rows": report.rows, "created": report.created, "merged": report.merged, "failed": report.failed,
    });
    audience.audit(ACTOR, "subscribers.import", &format!("list:{}", list.slug), detail).await;
    Ok(if report.failed > 0 { ExitCode::FAILURE } else { ExitCode::SUCCESS })
}

async fn export(audience: &Audience, slug: Option<&str>) -> anyhow::Result<ExitCode> {
    let list = match slug {
        Some(slug) => match find_list(audience, slug).await? {
            Some(list) => Some(list),
            None => return Ok(ExitCode::from(EXIT_INPUT)),
        },
        None => None,
    };
    let mut output = std::io::stdout().lock();
    let (mut after, mut count) = (0, 0);
    loop {
        let page = audience.export_page(list.as_ref().map(|l| l.id), after).await?;
        output.write_all(&page.csv).context("cannot write to stdout")?;
        count += page.rows;
        match page.next {
            Some(next) => after = next,
            None => break,
        }
    }
    output.flush().context("cannot write to stdout")?;
    eprintln!("{count} subscribers exported");
    let name = list.as_ref().map_or("all", |l| l.slug.as_str());
    audience.audit(ACTOR, "subscribers.export", &format!("list:{name}"), json!({"rows": count})).await;
    Ok(ExitCode::SUCCESS)
}

async fn add(
    audience: &Audience,
    email: &str,
    slug: &str,
    name: Option<&str>,
    confirmed: bool,
) -> anyhow::Result<ExitCode> {
    let parsed = parse_email("email", email)
        .and_then(|email| Ok((email, parse_subscriber_name("--name", name.unwrap_or_default())?)));
    let (email, name) = match parsed {
        Ok(parsed) => parsed,
        Err(e) => {
            eprintln!("bantin: {e}");
            return Ok(ExitCode::FAILURE);
        }
    };
    let Some(slug) = Slug::parse(slug) else {
        eprintln!("bantin: there is no list with the slug {slug:?}");
        return Ok(ExitCode::from(EXIT_INPUT));
    };
    let input = SubscriberInput {
        email,
        name,
        language: None,
        status: if confirmed { SubscriberStatus::Active } else { SubscriberStatus::Unconfirmed },
        lists: vec![slug],
        attributes: Map::new(),
    };
    let now = Utc::now();
    let added = match audience.add_subscriber(&input, now).await {
        Ok(added) => added,
        Err(AddError::UnknownList(slug)) => {
            eprintln!("bantin: there is no list with the slug {slug:?}");
            return Ok(ExitCode::from(EXIT_INPUT));
        }
        Err(AddError::Exists(id)) => {
            eprintln!("bantin: {} is already a subscriber (id {id})", input.email);
            return Ok(ExitCode::FAILURE);
        }
        Err(AddError::Store(e)) => return Err(e.into()),
    };
    // Sent now, not in the background: the process ends when this returns.
    if added.confirm {
        audience.send_confirmation(added.id, now).await?;
    }
    let detail = json!({"lists": [input.lists[0].as_str()], "confirmation": added.confirm});
    audience.audit(ACTOR, "subscriber.create", &format!("subscriber:{}", added.id), detail).await;
    let confirmation = if added.confirm { "; a confirmation email was sent" } else { "" };
    println!("added {} to {} (id {}){confirmation}", input.email, input.lists[0], added.id);
    Ok(ExitCode::SUCCESS)
}

async fn remove(audience: &Audience, email: &str) -> anyhow::Result<ExitCode> {
    let email = match parse_email("email", email) {
        Ok(email) => email,
        Err(e) => {
            eprintln!("bantin: {e}");
            return Ok(ExitCode::FAILURE);
        }
    };
    let Some(found) = audience.store.subscriber_by_email(&email).await? else {
        eprintln!("bantin: there is no subscriber with the address {email}");
        return Ok(ExitCode::FAILURE);
    };
    let id = found.subscriber.id;
    audience.store.delete_subscriber(id).await?;
    audience.audit(ACTOR, "subscriber.delete", &format!("subscriber:{id}"), json!({})).await;
    println!("removed {email} (id {id}) and their subscriptions");
    Ok(ExitCode::SUCCESS)
}
