//! The running service: HTTP server and background workers in one process, built so
//! tests can start the real thing on port 0.

use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::Context;
use tokio::net::TcpListener;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use crate::audience::Audience;
use crate::config::Config;
use crate::digest::Digests;
use crate::feeds::builder::FeedBuilder;
use crate::feeds::cache::FeedCache;
use crate::http::{self, AppState, Shared};
use crate::ingest::Ingestor;
use crate::metrics::Metrics;
use crate::sendfile::SendfileListener;
use crate::sources::Sources;
use crate::store::{self, Store};
use crate::workers;

pub struct Application {
    listener: TcpListener,
    state: AppState,
    scheduled: Arc<Notify>,
    published: Arc<Notify>,
    feed_cursor: i64,
}

/// The parts every command shares: the store and the ingest path.
pub struct Services {
    pub store: Arc<dyn Store>,
    pub ingestor: Ingestor,
    pub metrics: Arc<Metrics>,
    /// Woken when a scheduled article is written, so the publisher can reset its timer.
    pub scheduled: Arc<Notify>,
    /// Woken when publication events are written, so the feed builder runs at once.
    pub published: Arc<Notify>,
}

impl Services {
    /// Opens (and migrates) the configured database.
    pub async fn open(config: &Config) -> anyhow::Result<Services> {
        let store = store::connect(&config.database_url)
            .await
            .with_context(|| format!("cannot open the database {}", config.database_url.redacted()))?;
        Ok(Services::with_store(config, store))
    }

    pub fn with_store(config: &Config, store: Arc<dyn Store>) -> Services {
        let metrics = Arc::new(Metrics::default());
        let scheduled = Arc::new(Notify::new());
        let published = Arc::new(Notify::new());
        let ingestor = Ingestor::new(
            store.clone(),
            &config.base_url,
            config.timezone,
            metrics.clone(),
            scheduled.clone(),
            published.clone(),
        );
        Services { store, ingestor, metrics, scheduled, published }
    }
}

impl Application {
    pub async fn build(config: Config) -> anyhow::Result<Application> {
        let services = Services::open(&config).await?;
        Application::build_with(config, services).await
    }

    pub async fn build_with(config: Config, services: Services) -> anyhow::Result<Application> {
        let listener =
            TcpListener::bind(config.listen).await.with_context(|| format!("cannot listen on {}", config.listen))?;
        let config = Arc::new(config);
        // Large prerendered feeds go to anonymous files here, sent with sendfile.
        crate::sendfile::keep_bodies_in(&config.data_dir);
        let cache = Arc::new(FeedCache::default());
        let feeds = Arc::new(FeedBuilder::new(services.store.clone(), config.clone(), cache, services.metrics.clone()));
        // Serve the last builds at once after a restart; replay only newer events.
        let feed_cursor = feeds.load().await.context("cannot load the prerendered feeds")?;
        let audience = Arc::new(Audience::load(&config, services.store.clone()).await?);
        let digests =
            Arc::new(Digests::new(&config, services.store.clone(), audience.clone(), services.metrics.clone()));
        // Background sources: stored as configured before the API shows them.
        let sources = Arc::new(Sources::new(&config, services.store.clone(), services.ingestor.clone())?);
        sources.sync().await.context("cannot store the configured sources")?;
        let state = AppState::new(Shared {
            config,
            store: services.store,
            ingestor: services.ingestor,
            metrics: services.metrics,
            feeds,
            published: services.published.clone(),
            audience,
            digests,
            sources,
            throttles: Arc::default(),
        });
        Ok(Application { listener, state, scheduled: services.scheduled, published: services.published, feed_cursor })
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.listener.local_addr().expect("a bound listener has an address")
    }

    /// Serves until `shutdown` is cancelled, then lets in-flight requests and the
    /// workers finish.
    pub async fn run(self, shutdown: CancellationToken) -> anyhow::Result<()> {
        let publisher = tokio::spawn(workers::scheduled_publisher(
            self.state.store.clone(),
            self.state.metrics.clone(),
            self.scheduled.clone(),
            self.published.clone(),
            shutdown.clone(),
        ));
        let builder =
            tokio::spawn(self.state.feeds.clone().run(self.feed_cursor, self.published.clone(), shutdown.clone()));
        let digests = tokio::spawn(self.state.digests.clone().run(Arc::new(Notify::new()), shutdown.clone()));
        let sources = tokio::spawn(self.state.sources.clone().run(shutdown.clone()));
        axum::serve(SendfileListener::new(self.listener), http::MakeService::new(self.state))
            .with_graceful_shutdown(shutdown.clone().cancelled_owned())
            .await
            .context("the HTTP server failed")?;
        shutdown.cancel();
        publisher.await.context("the scheduled publisher panicked")?;
        builder.await.context("the feed builder panicked")?;
        digests.await.context("the digest worker panicked")?;
        sources.await.context("the sources poller panicked")?;
        Ok(())
    }
}
