//! bantin: a feed and newsletter service for news sites.

pub mod app;
pub mod cli;
pub mod config;
pub mod demo;
pub mod domain;
pub mod http;
pub mod ingest;
pub mod metrics;
pub mod store;
pub mod telemetry;
pub mod workers;
