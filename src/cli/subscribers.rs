//! `bantin subscribers …`

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Subcommand;

use crate::config::Config;

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
}

pub(super) async fn run(command: SubscribersCommand, _config: Config) -> anyhow::Result<ExitCode> {
    match command {
        SubscribersCommand::Import { .. } | SubscribersCommand::Export { .. } => anyhow::bail!("not built yet"),
    }
}
