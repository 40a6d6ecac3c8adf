//! The real `bantin` binary as child processes of a test: one installation (a working
//! folder and its `BANTIN_*` settings) whose commands run to completion and whose `serve`
//! runs until the test kills it (SIGKILL) or stops it (SIGTERM). Logs are read as JSON
//! lines, so a test can tell what each process did.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::TestDatabase;

/// How long a process may take to start serving or to stop before the test fails.
const PROCESS_DEADLINE: Duration = Duration::from_secs(60);

/// A `bantin` command with no inherited `BANTIN_*` settings or `RUST_LOG`.
pub fn bantin(dir: &Path) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_bantin"));
    cmd.current_dir(dir);
    for (key, _) in std::env::vars() {
        if key.starts_with("BANTIN_") || key == "RUST_LOG" {
            cmd.env_remove(key);
        }
    }
    cmd
}

pub fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// A working folder and the settings every command of the installation gets.
pub struct Installation {
    pub dir: PathBuf,
    settings: Vec<(String, String)>,
}

impl Installation {
    /// An installation on `db` (its folder holds `data/`), listening on a free port.
    pub fn new(db: &TestDatabase) -> Installation {
        let dir = db.dir.path().to_path_buf();
        let mut installation = Installation { dir: dir.clone(), settings: Vec::new() };
        installation.set("BANTIN_DATABASE_URL", db.url.as_str());
        installation.set("BANTIN_DATA_DIR", &dir.join("data").display().to_string());
        installation.set("BANTIN_LISTEN", "127.0.0.1:0");
        installation.set("BANTIN_BASE_URL", "https://tin.hiephoa.example");
        installation
    }

    pub fn set(&mut self, name: &str, value: &str) {
        self.settings.retain(|(n, _)| n != name);
        self.settings.push((name.to_owned(), value.to_owned()));
    }

    pub fn command(&self) -> Command {
        let mut cmd = bantin(&self.dir);
        cmd.envs(self.settings.iter().map(|(n, v)| (n, v))).args(["--log-format", "json"]);
        cmd
    }

    /// Runs a command to its end, off the async runtime (the test's SMTP server keeps
    /// answering meanwhile).
    pub async fn run(&self, args: &[&str]) -> Output {
        let mut cmd = self.command();
        cmd.args(args).stdin(Stdio::null());
        tokio::task::spawn_blocking(move || cmd.output().expect("run bantin")).await.expect("the command thread")
    }

    /// A new API token, from `bantin token create`.
    pub async fn token(&self) -> String {
        let out = self.run(&["token", "create", "--name", "faults"]).await;
        assert!(out.status.success(), "{}", text(&out.stderr));
        text(&out.stdout).trim().to_owned()
    }

    /// Starts a long-running command (`serve`, `digest run`) with its logs collected.
    pub fn start(&self, args: &[&str]) -> Process {
        let mut child = self
            .command()
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start bantin");
        let logs = Arc::new(Mutex::new(Vec::new()));
        let stdout = Arc::new(Mutex::new(String::new()));
        let stderr = child.stderr.take().expect("piped stderr");
        let lines = logs.clone();
        let stderr_reader = std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                lines.lock().unwrap().push(line);
            }
        });
        let mut out = child.stdout.take().expect("piped stdout");
        let printed = stdout.clone();
        let stdout_reader = std::thread::spawn(move || {
            let mut bytes = Vec::new();
            let _ = std::io::Read::read_to_end(&mut out, &mut bytes);
            printed.lock().unwrap().push_str(&text(&bytes));
        });
        Process { child, logs, stdout, readers: vec![stderr_reader, stdout_reader] }
    }

    /// `bantin serve`, once it answers on its address.
    pub async fn serve(&self) -> Server {
        let process = self.start(&["serve"]);
        let started = Instant::now();
        loop {
            if let Some(line) = process.log_lines("bantin is serving").first() {
                let address = line["fields"]["address"].as_str().unwrap_or_default().to_owned();
                return Server { address: format!("http://{address}"), process };
            }
            assert!(started.elapsed() < PROCESS_DEADLINE, "serve did not start: {}", process.stderr());
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

/// A running command and what it wrote.
pub struct Process {
    child: Child,
    logs: Arc<Mutex<Vec<String>>>,
    stdout: Arc<Mutex<String>>,
    readers: Vec<std::thread::JoinHandle<()>>,
}

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Process {
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The JSON log lines whose message is `message`.
    pub fn log_lines(&self, message: &str) -> Vec<serde_json::Value> {
        self.logs
            .lock()
            .unwrap()
            .iter()
            .filter_map(|line| serde_json::from_str::<serde_json::Value>(line).ok())
            .filter(|v| v["fields"]["message"] == message)
            .collect()
    }

    pub fn stderr(&self) -> String {
        self.logs.lock().unwrap().join("\n")
    }

    /// kill -9: the process gets no chance to clean up.
    pub fn kill(&mut self) {
        self.child.kill().expect("SIGKILL");
        self.child.wait().expect("reap the killed process");
    }

    /// Sends SIGTERM and waits for the process to exit.
    pub async fn terminate(&mut self) -> ExitStatus {
        // SAFETY: kill(2) on our own child's pid, which has not been reaped yet.
        let sent = unsafe { libc::kill(self.child.id() as libc::pid_t, libc::SIGTERM) };
        assert_eq!(sent, 0, "SIGTERM");
        self.wait().await
    }

    /// Waits for the process to exit by itself; then its output is complete.
    pub async fn wait(&mut self) -> ExitStatus {
        let started = Instant::now();
        let status = loop {
            if let Some(status) = self.child.try_wait().expect("poll the child") {
                break status;
            }
            assert!(started.elapsed() < PROCESS_DEADLINE, "bantin did not exit: {}", self.stderr());
            tokio::time::sleep(Duration::from_millis(50)).await;
        };
        for reader in self.readers.drain(..) {
            let _ = tokio::task::spawn_blocking(move || reader.join()).await;
        }
        status
    }

    /// What it printed on stdout; complete once it has exited.
    pub fn stdout(&self) -> String {
        self.stdout.lock().unwrap().clone()
    }
}

/// `bantin serve` and the address it answers on.
pub struct Server {
    pub address: String,
    pub process: Process,
}
