//! `bantin sources list`, `pause` and `resume`.

use std::process::ExitCode;

use chrono::{DateTime, SecondsFormat, Utc};
use clap::Subcommand;

use super::EXIT_CONFIG;
use crate::app::Services;
use crate::config::Config;
use crate::sources::{SourceView, Sources, source_views};

/// Longest error shown in the table; `--json` has it whole.
const ERROR_CHARS: usize = 80;

#[derive(Subcommand)]
pub(super) enum SourcesCommand {
    /// The configured sources and their state: a table, or JSON with --json.
    List {
        #[arg(long)]
        json: bool,
    },
    /// Stop polling a source until it is resumed.
    Pause { name: String },
    /// Poll a paused source again (at once), its failures forgotten.
    Resume { name: String },
}

pub(super) async fn run(command: SourcesCommand, config: Config) -> anyhow::Result<ExitCode> {
    let services = Services::open(&config).await?;
    match command {
        SourcesCommand::List { json } => {
            let views = source_views(&config.sources, services.store.as_ref()).await?;
            if json {
                println!("{}", serde_json::to_string_pretty(&serde_json::json!({ "sources": views }))?);
            } else if views.is_empty() {
                println!("no sources are configured: add [[sources]] to bantin.toml");
            } else {
                print!("{}", table(&views));
            }
            Ok(ExitCode::SUCCESS)
        }
        SourcesCommand::Pause { name } | SourcesCommand::Resume { name } if !known(&config, &name) => {
            eprintln!("bantin: there is no source {name:?} (see `bantin sources list`)");
            Ok(ExitCode::from(EXIT_CONFIG))
        }
        SourcesCommand::Pause { name } => {
            let sources = Sources::new(&config, services.store.clone(), services.ingestor.clone())?;
            sources.set_paused(&name, true).await?;
            println!("{name} paused");
            Ok(ExitCode::SUCCESS)
        }
        SourcesCommand::Resume { name } => {
            let sources = Sources::new(&config, services.store.clone(), services.ingestor.clone())?;
            sources.set_paused(&name, false).await?;
            println!("{name} resumed: polled at the next round of `bantin serve`");
            Ok(ExitCode::SUCCESS)
        }
    }
}

fn known(config: &Config, name: &str) -> bool {
    config.sources.iter().any(|s| s.name.as_str() == name)
}

fn time(t: Option<DateTime<Utc>>) -> String {
    t.map_or_else(|| "-".to_owned(), |t| t.to_rfc3339_opts(SecondsFormat::Secs, true))
}

/// One line per source, columns padded to their widest cell.
fn table(views: &[SourceView]) -> String {
    let header =
        ["NAME", "KIND", "STATE", "LAST RUN", "ITEMS", "NEW", "FAILURES", "NEXT POLL", "LOCATION", "LAST ERROR"];
    let mut rows = vec![header.map(str::to_owned).to_vec()];
    for view in views {
        let row = match &view.state {
            None => vec![
                view.name.clone(),
                view.kind.to_owned(),
                "never run".into(),
                "-".into(),
                "-".into(),
                "-".into(),
                "-".into(),
                "-".into(),
                view.location.clone(),
                String::new(),
            ],
            Some(state) => vec![
                view.name.clone(),
                view.kind.to_owned(),
                match (&state.paused, &state.paused_reason) {
                    (true, Some(reason)) => format!("paused ({reason})"),
                    (true, None) => "paused".into(),
                    (false, _) if state.consecutive_failures > 0 => "failing".into(),
                    (false, _) => "active".into(),
                },
                time(state.last_run_at),
                state.items_found.to_string(),
                state.items_stored.to_string(),
                state.consecutive_failures.to_string(),
                if state.paused { "-".into() } else { time(Some(state.next_poll_at)) },
                view.location.clone(),
                state.last_error.as_deref().map(shorten).unwrap_or_default(),
            ],
        };
        rows.push(row);
    }
    let widths: Vec<usize> =
        (0..header.len()).map(|i| rows.iter().map(|r| r[i].chars().count()).max().unwrap_or(0)).collect();
    let mut out = String::new();
    for row in rows {
        let cells: Vec<String> = row.iter().zip(&widths).map(|(cell, w)| format!("{cell:<w$}")).collect();
        out.push_str(cells.join("  ").trim_end());
        out.push('\n');
    }
    out
}

fn shorten(error: &str) -> String {
    let one_line = error.split_whitespace().collect::<Vec<_>>().join(" ");
    if one_line.chars().count() <= ERROR_CHARS {
        return one_line;
    }
    let cut: String = one_line.chars().take(ERROR_CHARS - 1).collect();
    format!("{cut}…")
}
