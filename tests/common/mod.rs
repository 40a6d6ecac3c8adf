//! Shared by the integration tests: a fresh database per test on each backend, and the
//! real application started on port 0.
#![allow(dead_code)]

pub mod admin;
pub mod binary;
pub mod browser;
pub mod mime;
pub mod smtp;

use std::sync::Arc;

use bantin::app::{Application, Services};
use bantin::audience::Audience;
use bantin::config::{Config, DatabaseUrl};
use bantin::domain::token::NewToken;
use bantin::store::{self, Store};
use bantin::templates::Templates;
use smtp::SmtpServer;
use tempfile::TempDir;
use tokio_util::sync::CancellationToken;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// A database that lives as long as the value: a temp file for SQLite, a fresh database
/// in the TEST_DATABASE_URL cluster for PostgreSQL.
pub struct TestDatabase {
    pub url: DatabaseUrl,
    pub dir: TempDir,
}

impl TestDatabase {
    /// `None` for PostgreSQL when TEST_DATABASE_URL is not set (the test is then skipped,
    /// and says so). When it is set, an unreachable server fails the test loudly.
    pub async fn new(backend: Backend) -> Option<TestDatabase> {
        let dir = tempfile::tempdir().expect("temp dir");
        let url = match backend {
            Backend::Sqlite => DatabaseUrl::Sqlite(format!("sqlite://{}", dir.path().join("bantin.db").display())),
            Backend::Postgres => {
                let Ok(admin_url) = std::env::var("TEST_DATABASE_URL") else {
                    eprintln!("TEST_DATABASE_URL is not set: skipping the PostgreSQL run of this test");
                    return None;
                };
                DatabaseUrl::Postgres(create_pg_database(&admin_url).await)
            }
        };
        Some(TestDatabase { url, dir })
    }

    pub async fn store(&self) -> Arc<dyn Store> {
        store::connect(&self.url).await.expect("connect and migrate the test database")
    }
}

async fn create_pg_database(admin_url: &str) -> String {
    use sqlx::Connection;
    let mut conn = sqlx::PgConnection::connect(admin_url)
        .await
        .unwrap_or_else(|e| panic!("TEST_DATABASE_URL is set but PostgreSQL does not answer: {e}"));
    let name = format!("bantin_test_{}", hex::encode(rand_bytes()));
    sqlx::raw_sql(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
        .execute(&mut conn)
        .await
        .expect("create a test database");
    let mut url = url::Url::parse(admin_url).expect("TEST_DATABASE_URL is a URL");
    url.set_path(&name);
    url.to_string()
}

fn rand_bytes() -> [u8; 8] {
    let mut b = [0u8; 8];
    getrandom::fill(&mut b).expect("randomness");
    b
}

pub fn test_config(db: &TestDatabase) -> Config {
    let mut config = Config::defaults();
    config.database_url = db.url.clone();
    config.listen = "127.0.0.1:0".parse().unwrap();
    config.base_url = "https://tin.hiephoa.example".into();
    config.data_dir = db.dir.path().join("data");
    config
}

/// The real application, serving on a random port until dropped.
pub struct TestApp {
    pub address: String,
    pub token: String,
    pub store: Arc<dyn Store>,
    pub client: reqwest::Client,
    pub db: TestDatabase,
    shutdown: CancellationToken,
}

impl Drop for TestApp {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

/// A list as an admin would enter it (`{"name": …}` and any other fields), with the
/// defaults of a Vietnamese site: Asia/Ho_Chi_Minh, vi, sent as Tin Hiệp Hòa.
pub fn list_input(value: serde_json::Value) -> bantin::domain::audience::ListInput {
    let defaults = bantin::domain::audience::ListDefaults {
        timezone: chrono_tz::Asia::Ho_Chi_Minh,
        language: bantin::config::Language::Vi,
        from_name: "Tin Hiệp Hòa".into(),
        from_address: "bantin@hiephoa.example".into(),
    };
    bantin::domain::audience::ListInput::from_json(&value, &defaults).expect("a valid test list")
}

impl TestApp {
    pub async fn spawn(backend: Backend) -> Option<TestApp> {
        TestApp::spawn_with(backend, |_| {}).await
    }

    /// Like `spawn`, with settings changed by `configure`.
    pub async fn spawn_with(backend: Backend, configure: impl FnOnce(&mut Config)) -> Option<TestApp> {
        let db = TestDatabase::new(backend).await?;
        TestApp::start(db, configure).await
    }

    /// Like `spawn`, with a test SMTP server as the app's relay.
    pub async fn spawn_with_smtp(backend: Backend) -> Option<(TestApp, SmtpServer)> {
        let smtp = SmtpServer::start().await;
        let url = smtp.url();
        let app = TestApp::spawn_with(backend, |config| config.smtp_url = Some(url)).await?;
        Some((app, smtp))
    }

    /// Like `spawn_with_smtp`, with the public base URL set to the app's own address,
    /// so the links it mails and puts in pages can be followed by a browser.
    pub async fn spawn_for_browser(backend: Backend) -> Option<(TestApp, SmtpServer)> {
        let smtp = SmtpServer::start().await;
        let url = smtp.url();
        // The port must be known before the app binds it, to go into the base URL.
        let free = std::net::TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).expect("a free port");
        let app = TestApp::spawn_with(backend, |config| {
            config.smtp_url = Some(url);
            config.listen = free;
            config.base_url = format!("http://{free}");
        })
        .await?;
        Some((app, smtp))
    }

    /// Starts the app on an existing database (e.g. again, after a restart).
    pub async fn start(db: TestDatabase, configure: impl FnOnce(&mut Config)) -> Option<TestApp> {
        let store = db.store().await;
        let mut config = test_config(&db);
        configure(&mut config);
        let services = Services::with_store(&config, store.clone());
        let app = Application::build_with(config, services).await.expect("build the app");
        let address = format!("http://{}", app.local_addr());
        let shutdown = CancellationToken::new();
        tokio::spawn(app.run(shutdown.clone()));
        bantin::install_crypto_provider();
        let token = NewToken::generate().unwrap();
        store.create_api_token("test", &token.public_id, &token.secret_hash, chrono::Utc::now()).await.unwrap();
        Some(TestApp { address, token: token.plaintext, store, client: reqwest::Client::new(), db, shutdown })
    }

    pub async fn post_articles(&self, body: impl Into<reqwest::Body>) -> (u16, serde_json::Value) {
        let response = self
            .client
            .post(format!("{}/api/v1/articles", self.address))
            .bearer_auth(&self.token)
            .body(body)
            .send()
            .await
            .expect("request");
        let status = response.status().as_u16();
        (status, response.json().await.unwrap_or(serde_json::Value::Null))
    }

    pub async fn get_article(&self, id: &str) -> (u16, serde_json::Value) {
        let response = self
            .client
            .get(format!("{}/api/v1/articles/{id}", self.address))
            .bearer_auth(&self.token)
            .send()
            .await
            .expect("request");
        let status = response.status().as_u16();
        (status, response.json().await.unwrap_or(serde_json::Value::Null))
    }

    /// A link the app made for its public base URL (as mailed), pointed at this
    /// instance: same path and query.
    pub fn local_url(&self, public: &url::Url) -> String {
        let query = public.query().map(|q| format!("?{q}")).unwrap_or_default();
        format!("{}{}{query}", self.address, public.path())
    }

    /// Signs subscriber links exactly as the app does (same stored key), for links the
    /// app only puts in digests, and for expired or altered ones.
    pub async fn audience(&self) -> Audience {
        let templates = Arc::new(Templates::load(None).expect("embedded templates"));
        Audience::new(&test_config(&self.db), self.store.clone(), templates).await.expect("an audience")
    }

    pub async fn get(&self, path: &str) -> reqwest::Response {
        self.client.get(format!("{}{path}", self.address)).send().await.expect("request")
    }

    /// Stops the app and hands back its database, for a restart.
    pub async fn stop(mut self) -> TestDatabase {
        self.shutdown.cancel();
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        let dir = tempfile::tempdir().expect("temp dir");
        let placeholder = TestDatabase { url: self.db.url.clone(), dir };
        std::mem::replace(&mut self.db, placeholder)
    }

    pub async fn event_count(&self) -> usize {
        self.store.events_after(0, 1_000_000).await.unwrap().len()
    }
}

/// Sends a request with the test token; the status and the JSON body (null when none).
pub async fn call(
    app: &TestApp,
    method: reqwest::Method,
    path: &str,
    body: Option<serde_json::Value>,
) -> (u16, serde_json::Value) {
    let mut request = app.client.request(method, format!("{}{path}", app.address)).bearer_auth(&app.token);
    if let Some(body) = body {
        request = request.json(&body);
    }
    let response = request.send().await.expect("request");
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(serde_json::Value::Null))
}

/// The audit log oldest first, as (actor, action, subject).
pub async fn audit_actions(app: &TestApp) -> Vec<(String, String, String)> {
    let entries = app.store.audit_log(None, 1_000).await.unwrap();
    entries.into_iter().rev().map(|e| (e.actor, e.action, e.subject)).collect()
}

/// Runs a test body once per backend: `both_backends!(name, |backend| async { … })`.
#[macro_export]
macro_rules! both_backends {
    ($name:ident, $body:expr) => {
        mod $name {
            use super::*;
            #[tokio::test]
            async fn sqlite() {
                ($body)(common::Backend::Sqlite).await
            }
            #[tokio::test]
            async fn postgres() {
                ($body)(common::Backend::Postgres).await
            }
        }
    };
}
