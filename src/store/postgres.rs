//! PostgreSQL: for several bantin instances behind a load balancer.

use std::time::Duration;

use sqlx::postgres::PgPoolOptions;
use sqlx::{PgConnection, PgPool, Postgres, Transaction};

use super::StoreError;
use super::queries::shared_store_impl;

pub struct PgStore {
    pool: PgPool,
}

impl PgStore {
    const BACKEND: &'static str = "postgres";

    pub async fn connect(url: &str) -> Result<PgStore, StoreError> {
        let pool =
            PgPoolOptions::new().max_connections(16).acquire_timeout(Duration::from_secs(10)).connect(url).await?;
        Ok(PgStore { pool })
    }

    async fn run_migrations(&self) -> Result<(), StoreError> {
        // sqlx takes an advisory lock, so instances starting together migrate once.
        sqlx::migrate!("migrations/postgres").run(&self.pool).await?;
        Ok(())
    }

    async fn begin_write(&self) -> Result<Transaction<'static, Postgres>, StoreError> {
        Ok(self.pool.begin().await?)
    }
}

shared_store_impl!(PgStore, PgConnection);
