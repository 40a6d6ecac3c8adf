//! The real `bantin` binary: configuration errors, tokens, import, demo, and `serve`
//! with nothing configured.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

fn bantin(dir: &Path) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_bantin"));
    cmd.current_dir(dir);
    for (key, _) in std::env::vars() {
        if key.starts_with("BANTIN_") || key == "RUST_LOG" {
            cmd.env_remove(key);
        }
    }
    cmd
}

fn run(cmd: &mut Command) -> Output {
    cmd.stdin(Stdio::null()).output().expect("run bantin")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[test]
fn an_invalid_setting_stops_start_up_with_one_line_and_exit_code_2() {
    let dir = tempfile::tempdir().unwrap();
    let cases = [
        ("BANTIN_TIMEZONE", "Mars/Olympus"),
        ("BANTIN_LISTEN", "everywhere"),
        ("BANTIN_DATABASE_URL", "mysql://localhost/bantin"),
        ("BANTIN_LANGUAGE", "fr"),
        ("BANTIN_BASE_URL", "tin.hiephoa.example"),
    ];
    for (name, value) in cases {
        let out = run(bantin(dir.path()).arg("serve").env(name, value));
        assert_eq!(out.status.code(), Some(2), "{name}={value}");
        let stderr = text(&out.stderr);
        assert_eq!(stderr.trim_end().lines().count(), 1, "{stderr}");
        assert!(stderr.contains(name), "{stderr}");
    }
    std::fs::write(dir.path().join("bantin.toml"), "listen = 8080\n").unwrap();
    let out = run(bantin(dir.path()).arg("migrate"));
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("listen in bantin.toml"), "{}", text(&out.stderr));
    let out = run(bantin(dir.path()).args(["--config", "missing.toml", "migrate"]));
    assert_eq!(out.status.code(), Some(2));
    assert!(!dir.path().join("data").exists(), "nothing is created when the configuration is invalid");
}

#[test]
fn token_create_prints_the_token_alone() {
    let dir = tempfile::tempdir().unwrap();
    let out = run(bantin(dir.path()).args(["token", "create", "--name", "CMS Hiệp Hòa"]));
    assert!(out.status.success(), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    assert_eq!(stdout.lines().count(), 1);
    assert!(stdout.starts_with("bnt_") && stdout.trim().len() > 50, "{stdout}");
    assert!(!text(&out.stderr).contains(stdout.trim()), "the token is not logged");
    assert!(dir.path().join("data/bantin.db").exists());
}

#[test]
fn import_reads_files_and_folders_reports_errors_and_summarizes() {
    let dir = tempfile::tempdir().unwrap();
    let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/import");
    let out = run(bantin(dir.path()).arg("import").arg(&fixtures));
    assert_eq!(out.status.code(), Some(1), "anything failed → non-zero exit");
    let stdout = text(&out.stdout);
    let stderr = text(&out.stderr);
    assert!(
        stdout.contains("imported 4 file(s): 4 new, 0 updated, 0 unchanged, 2 failed; 1 file(s) could not be read"),
        "{stdout}"
    );
    assert!(stderr.contains("hong.json: malformed JSON"), "{stderr}");
    assert!(stderr.contains("the-thao.jsonl line 2 (id import-0004): title: is required"), "{stderr}");
    assert!(stderr.contains("the-thao.jsonl line 3: malformed JSON"), "{stderr}");
    assert!(!stderr.contains("notes.txt"), "other files in folders are passed over");

    // Importing the good files again changes nothing.
    let again =
        run(bantin(dir.path()).arg("import").arg(fixtures.join("kinh-te.json")).arg(fixtures.join("nested/le-hoi.md")));
    assert!(again.status.success(), "{}", text(&again.stderr));
    assert!(text(&again.stdout).contains("0 new, 0 updated, 3 unchanged, 0 failed"), "{}", text(&again.stdout));

    let missing = run(bantin(dir.path()).args(["import", "khong-co.json", "anh.jpg"]));
    assert_eq!(missing.status.code(), Some(1));
    assert!(text(&missing.stderr).contains("khong-co.json: no such file or folder"));
}

/// Reads the address `serve` logs at start (JSON logs) from its stderr.
fn served_address(child: &mut std::process::Child) -> String {
    let stderr = child.stderr.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if let Ok(v) = serde_json::from_str::<serde_json::Value>(&line)
                && v["fields"]["message"] == "bantin is serving"
            {
                let _ = tx.send(v["fields"]["address"].as_str().unwrap_or_default().to_owned());
            }
        }
    });
    rx.recv_timeout(Duration::from_secs(30)).expect("serve logs its address")
}

#[test]
fn serve_with_nothing_configured_answers_healthz_and_stops_on_sigterm() {
    let dir = tempfile::tempdir().unwrap();
    // Only the port is chosen, so the test does not collide with anything on 8080.
    let mut child = bantin(dir.path())
        .args(["--log-format", "json", "serve"])
        .env("BANTIN_LISTEN", "127.0.0.1:0")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let address = served_address(&mut child);
    bantin::install_crypto_provider();
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let health: serde_json::Value = runtime
        .block_on(async { reqwest::get(format!("http://{address}/healthz")).await.unwrap().json().await.unwrap() });
    assert_eq!(health["status"], "ok");
    assert_eq!(health["database"], "sqlite");
    assert!(dir.path().join("data/bantin.db").exists(), "the default database file is created");

    let status = Command::new("kill").args(["-TERM", &child.id().to_string()]).status().unwrap();
    assert!(status.success());
    let started = Instant::now();
    let exit = loop {
        if let Some(exit) = child.try_wait().unwrap() {
            break exit;
        }
        assert!(started.elapsed() < Duration::from_secs(20), "serve did not stop on SIGTERM");
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(exit.success(), "graceful shutdown exits 0, got {exit}");
}

#[test]
fn demo_loads_vietnamese_articles_with_some_scheduled() {
    let dir = tempfile::tempdir().unwrap();
    let out = run(bantin(dir.path()).arg("demo"));
    assert!(out.status.success(), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    assert!(stdout.contains("30 new, 0 updated, 0 unchanged, 0 failed"), "{stdout}");
    assert!(stdout.contains("27 published, 3 scheduled"), "{stdout}");
}
