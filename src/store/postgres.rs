//! PostgreSQL: for several bantin instances behind a load balancer.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use sqlx::postgres::PgPoolOptions;
use sqlx::{PgConnection, PgPool, Postgres, Transaction};

use super::StoreError;
use super::audience::audience_store_impl;
use super::digests::digest_store_impl;
use super::queries::shared_store_impl;
use super::sources::source_store_impl;

pub struct PgStore {
    pool: PgPool,
    /// "category:<path>" / "author:<slug>" → id, for names already in the database.
    names: Mutex<HashMap<String, i64>>,
}

impl PgStore {
    const BACKEND: &'static str = "postgres";
    /// PostgreSQL takes `$n` parameters only.
    const NUMBERED_BINDS: bool = true;

    pub async fn connect(url: &str) -> Result<PgStore, StoreError> {
        let pool =
            PgPoolOptions::new().max_connections(16).acquire_timeout(Duration::from_secs(10)).connect(url).await?;
        Ok(PgStore { pool, names: Mutex::default() })
    }

    /// The pool writes go through.
    fn writer(&self) -> &PgPool {
        &self.pool
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
audience_store_impl!(PgStore, PgConnection, Postgres);
// Senders claim deliveries skipping rows another instance has locked.
digest_store_impl!(PgStore, PgConnection, Postgres, " FOR UPDATE SKIP LOCKED");
source_store_impl!(PgStore, Postgres, " FOR UPDATE SKIP LOCKED");
