//! Sending email: through an SMTP relay with a connection pool when `BANTIN_SMTP_URL` is
//! set, otherwise as `.eml` files in `data/outbox/`, so a fresh install can be tried
//! without a mail server. Messages are built in [`message`] and, when a key is
//! configured, signed with DKIM ([`dkim`]).

pub mod body;
pub mod dkim;
pub mod message;

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context;
use lettre::transport::smtp::PoolConfig;
use lettre::{AsyncSmtpTransport, AsyncTransport, Tokio1Executor};
use url::Url;

pub use body::{SharedBody, TextBody};
pub use dkim::DkimSigner;
pub use message::OutgoingMail;

/// Why a message was not sent, as retry logic needs it.
#[derive(Debug, thiserror::Error)]
pub enum SendError {
    /// Try again later: a 4xx reply, a refused or dropped connection, a full disk.
    #[error("temporary failure: {0}")]
    Transient(String),
    /// The relay refused the message for good (a 5xx reply), or it cannot be built.
    #[error("permanent failure: {0}")]
    Permanent(String),
}

#[derive(Clone)]
pub struct Mailer {
    transport: Transport,
    dkim: Option<Arc<DkimSigner>>,
}

#[derive(Clone)]
enum Transport {
    Smtp(AsyncSmtpTransport<Tokio1Executor>),
    /// Writes each message to `<dir>/<message id>.eml`; sending again overwrites it.
    Outbox(PathBuf),
}

impl Mailer {
    /// `connections`: SMTP connections kept open to the relay.
    pub fn new(smtp_url: Option<&Url>, connections: u32, outbox: PathBuf) -> anyhow::Result<Mailer> {
        match smtp_url {
            Some(url) => {
                crate::install_crypto_provider();
                let transport = AsyncSmtpTransport::<Tokio1Executor>::from_url(url.as_str())
                    .context("BANTIN_SMTP_URL is not a usable SMTP URL")?
                    .pool_config(PoolConfig::new().max_size(connections))
                    .build();
                Ok(Mailer { transport: Transport::Smtp(transport), dkim: None })
            }
            None => Ok(Mailer { transport: Transport::Outbox(outbox), dkim: None }),
        }
    }

    /// Signs every message with `dkim`, when given.
    pub fn with_dkim(self, dkim: Option<Arc<DkimSigner>>) -> Mailer {
        Mailer { dkim, ..self }
    }

    /// "smtp" or "outbox", for logs and health.
    pub fn kind(&self) -> &'static str {
        match self.transport {
            Transport::Smtp(_) => "smtp",
            Transport::Outbox(_) => "outbox",
        }
    }

    pub async fn send(&self, mail: &OutgoingMail) -> Result<(), SendError> {
        let mut message = mail.build().map_err(|e| SendError::Permanent(format!("cannot build the message: {e}")))?;
        if let Some(dkim) = &self.dkim {
            dkim.sign(&mut message);
        }
        match &self.transport {
            Transport::Smtp(transport) => match transport.send(message).await {
                Ok(_) => Ok(()),
                Err(e) if e.is_permanent() => Err(SendError::Permanent(e.to_string())),
                Err(e) => Err(SendError::Transient(e.to_string())),
            },
            Transport::Outbox(dir) => write_eml(dir, &mail.message_id, &message.formatted())
                .await
                .map_err(|e| SendError::Transient(format!("cannot write to the outbox {}: {e}", dir.display()))),
        }
    }
}

/// Writes under a temporary name and renames, so a reader never sees half a message.
async fn write_eml(dir: &std::path::Path, message_id: &str, bytes: &[u8]) -> std::io::Result<()> {
    tokio::fs::create_dir_all(dir).await?;
    let stem: String =
        message_id.chars().map(|c| if c.is_ascii_alphanumeric() || c == '.' || c == '-' { c } else { '_' }).collect();
    let tmp = dir.join(format!(".{stem}.tmp"));
    tokio::fs::write(&tmp, bytes).await?;
    tokio::fs::rename(&tmp, dir.join(format!("{stem}.eml"))).await
}
