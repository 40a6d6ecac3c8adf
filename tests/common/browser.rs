//! Real headless Chromium driven through chromedriver (WebDriver) with fantoccini.
//!
//! `Browser::start()` returns `None` (and says so) when chromium or chromedriver is not
//! installed, unless `BANTIN_REQUIRE_BROWSER=1` (as in `.ci/run`), where a missing
//! browser fails the test. chromedriver runs in its own process group, so dropping the
//! `Browser` (even in a failing test) kills it and the Chromium it started.
//!
//! A new flow: `let Some(browser) = Browser::start().await else { return };`, start the
//! app with `TestApp::spawn_for_browser` (its base URL is its own address, so redirects
//! and mailed links work in the browser), then `goto`, `fill`, `click_and_wait`, `text`,
//! and end with `browser.close().await`.

use std::io::{BufRead, BufReader};
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use fantoccini::elements::Element;
use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::json;

/// How long an element may take to appear after a click or a navigation.
const WAIT: Duration = Duration::from_secs(10);

/// Looks a program up in PATH.
fn find_program(names: &[&str]) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path).flat_map(|dir| names.iter().map(move |n| dir.join(n))).find(|p| p.is_file())
}

/// chromedriver and everything it started; killed as a group when dropped.
struct ChromeDriver {
    child: Child,
    port: u16,
}

impl ChromeDriver {
    fn start(program: &PathBuf) -> ChromeDriver {
        let mut child = Command::new(program)
            .arg("--port=0")
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .process_group(0)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", program.display()));
        let stdout = child.stdout.take().expect("piped stdout");
        let (port_tx, port_rx) = std::sync::mpsc::channel();
        // chromedriver prints "… started successfully on port 40999." once it listens;
        // the thread keeps draining its output so it never blocks on a full pipe.
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if let Some(port) = line.split("successfully on port ").nth(1) {
                    let _ = port_tx.send(port.trim().trim_end_matches('.').parse::<u16>().ok());
                }
            }
        });
        let mut driver = ChromeDriver { child, port: 0 };
        match port_rx.recv_timeout(Duration::from_secs(30)) {
            Ok(Some(port)) => driver.port = port,
            Ok(None) => panic!("chromedriver printed a port that is not a number"),
            Err(_) => panic!("chromedriver did not report its port within 30 s"),
        }
        driver
    }
}

impl Drop for ChromeDriver {
    fn drop(&mut self) {
        // chromedriver leads its own process group (process_group(0)), which holds the
        // Chromium processes it spawned; a negative pid names that group.
        let group = i32::try_from(self.child.id()).expect("a pid fits in pid_t");
        assert!(group > 1, "refusing to signal process group {group}");
        // SAFETY: kill(2) takes plain integers and touches no memory of ours.
        unsafe { libc::kill(-group, libc::SIGKILL) };
        let _ = self.child.wait();
    }
}

pub struct Browser {
    pub client: Client,
    driver: ChromeDriver,
}

impl Browser {
    /// A fresh headless Chromium session, or `None` when no browser is installed and
    /// `BANTIN_REQUIRE_BROWSER` is not `1`.
    pub async fn start() -> Option<Browser> {
        let chromium = find_program(&["chromium", "chromium-browser", "google-chrome"]);
        let chromedriver = find_program(&["chromedriver"]);
        let (Some(chromium), Some(chromedriver)) = (chromium, chromedriver) else {
            let missing =
                "chromium and chromedriver are not both in PATH (Debian: apt-get install chromium chromium-driver)";
            if std::env::var("BANTIN_REQUIRE_BROWSER").is_ok_and(|v| v == "1") {
                panic!("BANTIN_REQUIRE_BROWSER=1 but {missing}");
            }
            eprintln!("skipping the browser test: {missing}");
            return None;
        };
        let driver = ChromeDriver::start(&chromedriver);
        let mut capabilities = serde_json::Map::new();
        capabilities.insert("browserName".into(), json!("chrome"));
        capabilities.insert(
            "goog:chromeOptions".into(),
            json!({
                "binary": chromium,
                "args": ["--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
                         "--window-size=1280,900"],
            }),
        );
        let client = ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
            .capabilities(capabilities)
            .connect(&format!("http://127.0.0.1:{}", driver.port))
            .await
            .expect("a WebDriver session in Chromium");
        Some(Browser { client, driver })
    }

    pub async fn goto(&self, url: &str) {
        self.client.goto(url).await.unwrap_or_else(|e| panic!("cannot open {url}: {e}"));
    }

    /// The element for a CSS selector, waiting for it to appear.
    pub async fn find(&self, css: &str) -> Element {
        match self.client.wait().at_most(WAIT).for_element(Locator::Css(css)).await {
            Ok(element) => element,
            Err(e) => panic!("no element {css} on {}: {e}", self.url().await),
        }
    }

    /// Replaces the text in an input.
    pub async fn fill(&self, css: &str, text: &str) {
        let input = self.find(css).await;
        input.clear().await.expect("clear the input");
        input.send_keys(text).await.unwrap_or_else(|e| panic!("cannot type into {css}: {e}"));
    }

    pub async fn click(&self, css: &str) {
        self.find(css).await.click().await.unwrap_or_else(|e| panic!("cannot click {css}: {e}"));
    }

    pub async fn is_checked(&self, css: &str) -> bool {
        self.find(css).await.is_selected().await.expect("read the checkbox")
    }

    /// Clicks `css` (a submit button or a link) and waits until the next page has
    /// loaded, even when it has the same URL (a form posting to itself).
    pub async fn click_and_wait(&self, css: &str) {
        self.client.execute("window.bantinOldPage = true;", vec![]).await.expect("mark the current page");
        self.click(css).await;
        let started = std::time::Instant::now();
        loop {
            let loaded = self
                .client
                .execute("return window.bantinOldPage === undefined && document.readyState === 'complete';", vec![])
                .await;
            // A script can fail while the old page unloads; the next poll sees the new one.
            if loaded.is_ok_and(|v| v == json!(true)) {
                return;
            }
            assert!(started.elapsed() < WAIT, "no new page after clicking {css} (still at {})", self.url().await);
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// The visible text of the first element matching `css`.
    pub async fn text(&self, css: &str) -> String {
        self.find(css).await.text().await.expect("read the element's text")
    }

    /// The current page's HTML as the browser has it now.
    pub async fn page_source(&self) -> String {
        self.client.source().await.expect("read the page source")
    }

    pub async fn url(&self) -> String {
        self.client.current_url().await.map(|u| u.to_string()).unwrap_or_default()
    }

    /// Ends the WebDriver session (Chromium quits), then stops chromedriver.
    pub async fn close(self) {
        let Browser { client, driver } = self;
        client.close().await.expect("close the browser session");
        drop(driver);
    }
}
