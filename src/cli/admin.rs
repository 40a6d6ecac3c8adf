//! `bantin admin …`

use std::process::ExitCode;

use clap::Subcommand;

use crate::config::Config;

#[derive(Subcommand)]
pub(super) enum AdminCommand {
    /// Create an admin; the password comes from BANTIN_ADMIN_PASSWORD or a prompt.
    Create {
        #[arg(long)]
        username: String,
    },
}

pub(super) async fn run(command: AdminCommand, _config: Config) -> anyhow::Result<ExitCode> {
    match command {
        AdminCommand::Create { .. } => anyhow::bail!("not built yet"),
    }
}
