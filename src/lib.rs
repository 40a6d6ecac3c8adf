//! bantin: a feed and newsletter service for news sites.

pub mod app;
pub mod audience;
pub mod cli;
pub mod config;
pub mod demo;
pub mod digest;
pub mod domain;
pub mod feeds;
pub mod http;
pub mod ingest;
pub mod mail;
pub mod metrics;
pub mod sendfile;
pub mod sources;
pub mod store;
pub mod telemetry;
pub mod templates;
pub mod workers;

/// Installs ring as the TLS crypto provider for outgoing HTTPS (reqwest is built without
/// one of its own; ring is the provider sqlx already uses). Calling it again is harmless.
pub fn install_crypto_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}
