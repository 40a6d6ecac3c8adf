//! `bantin admin …`

use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Write};
use std::process::{Command, ExitCode, Stdio};

use clap::Subcommand;

use crate::app::Services;
use crate::config::Config;
use crate::domain::admin::{Username, check_new_password, hash_password};
use crate::store::StoreError;

/// Where the password comes from when no terminal can be asked.
const PASSWORD_ENV: &str = "BANTIN_ADMIN_PASSWORD";

#[derive(Subcommand)]
pub(super) enum AdminCommand {
    /// Create an admin; the password comes from BANTIN_ADMIN_PASSWORD or a prompt.
    Create {
        #[arg(long)]
        username: String,
    },
}

pub(super) async fn run(command: AdminCommand, config: Config) -> anyhow::Result<ExitCode> {
    match command {
        AdminCommand::Create { username } => create(config, &username).await,
    }
}

async fn create(config: Config, username: &str) -> anyhow::Result<ExitCode> {
    let username = match Username::parse(username) {
        Ok(username) => username,
        Err(e) => {
            eprintln!("bantin: --username: {e}");
            return Ok(ExitCode::FAILURE);
        }
    };
    let password = match std::env::var(PASSWORD_ENV) {
        Ok(password) => password,
        Err(_) => match prompt_password() {
            Ok(password) => password,
            Err(e) => {
                eprintln!("bantin: {e}");
                return Ok(ExitCode::FAILURE);
            }
        },
    };
    if let Err(e) = check_new_password(&password) {
        eprintln!("bantin: {e}");
        return Ok(ExitCode::FAILURE);
    }
    let services = Services::open(&config).await?;
    let hash = tokio::task::spawn_blocking(move || hash_password(&password)).await??;
    match services.store.create_admin(username.as_str(), &hash, chrono::Utc::now()).await {
        Ok(_) => {
            eprintln!("admin {:?} created; log in at {}/admin/login", username.as_str(), config.base_url);
            Ok(ExitCode::SUCCESS)
        }
        Err(StoreError::Conflict(_)) => {
            eprintln!("bantin: the username {:?} is taken; choose another", username.as_str());
            Ok(ExitCode::FAILURE)
        }
        Err(e) => Err(e.into()),
    }
}

/// Asks twice on the controlling terminal with echo off.
fn prompt_password() -> anyhow::Result<String> {
    let no_terminal = || anyhow::anyhow!("no terminal to ask for the password on: set {PASSWORD_ENV} instead");
    let mut tty = OpenOptions::new().read(true).write(true).open("/dev/tty").map_err(|_| no_terminal())?;
    let echo_off = EchoOff::new()?;
    let mut ask = |prompt: &str| -> anyhow::Result<String> {
        tty.write_all(prompt.as_bytes())?;
        tty.flush()?;
        let mut line = String::new();
        BufReader::new(tty.try_clone()?).read_line(&mut line)?;
        tty.write_all(b"\n")?;
        Ok(line.trim_end_matches(['\r', '\n']).to_owned())
    };
    let first = ask("Password: ")?;
    let second = ask("Password again: ")?;
    drop(echo_off);
    if first != second {
        anyhow::bail!("the two passwords differ");
    }
    Ok(first)
}

/// Terminal echo switched off with stty for as long as the value lives.
struct EchoOff;

impl EchoOff {
    fn new() -> anyhow::Result<EchoOff> {
        stty("-echo")?;
        Ok(EchoOff)
    }
}

impl Drop for EchoOff {
    fn drop(&mut self) {
        let _ = stty("echo");
    }
}

fn stty(setting: &str) -> anyhow::Result<()> {
    let status = Command::new("stty").arg(setting).stdin(Stdio::from(File::open("/dev/tty")?)).status()?;
    anyhow::ensure!(status.success(), "cannot switch terminal echo off (stty {setting})");
    Ok(())
}
