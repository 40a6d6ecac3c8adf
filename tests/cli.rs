//! The real `bantin` binary: configuration errors, tokens, import, demo, subscribers, and `serve`
//! with nothing configured.

mod common;

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use common::binary::{bantin, text};

fn run(cmd: &mut Command) -> Output {
    cmd.stdin(Stdio::null()).output().expect("run bantin")
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
fn an_unusable_dkim_key_stops_start_up_naming_the_setting() {
    let dir = tempfile::tempdir().unwrap();
    let key = dir.path().join("dkim.pem");
    std::fs::write(&key, "-----BEGIN PRIVATE KEY-----\nbm90IGEga2V5IGF0IGFsbA==\n-----END PRIVATE KEY-----\n").unwrap();
    let weak = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/dkim/rsa-512-pkcs1.pem");
    for file in [key.as_path(), weak.as_path(), Path::new("/nonexistent/dkim.pem")] {
        let out = run(bantin(dir.path())
            .arg("serve")
            .env("BANTIN_DKIM_KEY_FILE", file)
            .env("BANTIN_DKIM_SELECTOR", "bantin2026")
            .env("BANTIN_DKIM_DOMAIN", "tin.hiephoa.example"));
        assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
        let stderr = text(&out.stderr);
        assert_eq!(stderr.trim_end().lines().count(), 1, "{stderr}");
        assert!(stderr.contains("BANTIN_DKIM_KEY_FILE"), "{stderr}");
        assert!(!stderr.contains("bm90IGEga2V5"), "the key is not echoed: {stderr}");
    }
    std::fs::write(dir.path().join("bantin.toml"), "dkim_selector = \"bantin2026\"\n").unwrap();
    let out = run(bantin(dir.path()).arg("migrate"));
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("dkim_selector in bantin.toml"), "{}", text(&out.stderr));
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

/// A list in the default database of `dir` (the CLI has no command for lists).
fn create_list(dir: &Path, name: &str) {
    let out = run(bantin(dir).arg("migrate"));
    assert!(out.status.success(), "{}", text(&out.stderr));
    let url = bantin::config::DatabaseUrl::Sqlite(format!("sqlite://{}", dir.join("data/bantin.db").display()));
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let store = bantin::store::connect(&url).await.unwrap();
        let input = common::list_input(serde_json::json!({"name": name}));
        store.create_list(&input, chrono::Utc::now()).await.unwrap();
    });
}

fn outbox_len(dir: &Path) -> usize {
    std::fs::read_dir(dir.join("data/outbox")).map_or(0, |entries| entries.count())
}

#[test]
fn subscribers_import_reports_each_bad_row_and_exits_1() {
    let dir = tempfile::tempdir().unwrap();
    create_list(dir.path(), "Bản tin sáng");
    let csv = dir.path().join("ban-doc.csv");
    std::fs::write(&csv, "email,name,phone\nlan@example.vn,\"Nguyễn, Thị Lan\",0912\nkhong-hop-le,Ai đó,0\n").unwrap();
    let out = run(bantin(dir.path()).args(["subscribers", "import"]).arg(&csv).args([
        "--list",
        "ban-tin-sang",
        "--confirmed",
    ]));
    assert_eq!(out.status.code(), Some(1), "a row failed");
    let stdout = text(&out.stdout);
    let stderr = text(&out.stderr);
    assert!(
        stdout.contains("imported into ban-tin-sang: 2 rows: 1 new, 0 merged, 0 duplicates in the file, 1 failed"),
        "{stdout}"
    );
    assert!(stderr.contains("ban-doc.csv line 3: email: address is missing the @"), "{stderr}");
    assert!(stderr.contains("column \"phone\" is not known"), "{stderr}");
    assert_eq!(outbox_len(dir.path()), 0, "--confirmed sends nothing");

    // Without --confirmed each new address gets a confirmation email.
    std::fs::write(&csv, "email\nminh@example.vn\nlan@example.vn\n").unwrap();
    let out = run(bantin(dir.path()).args(["subscribers", "import"]).arg(&csv).args(["--list", "ban-tin-sang"]));
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(text(&out.stdout).contains("2 rows: 1 new, 1 merged"), "{}", text(&out.stdout));
    assert_eq!(outbox_len(dir.path()), 1, "only the new, unconfirmed address is mailed");

    let unknown = run(bantin(dir.path()).args(["subscribers", "import"]).arg(&csv).args(["--list", "khong-co"]));
    assert_eq!(unknown.status.code(), Some(2));
    assert!(text(&unknown.stderr).contains("no list with the slug \"khong-co\""), "{}", text(&unknown.stderr));
    let missing = run(bantin(dir.path()).args(["subscribers", "import", "khong-co.csv", "--list", "ban-tin-sang"]));
    assert_eq!(missing.status.code(), Some(2));
    assert!(text(&missing.stderr).contains("cannot read khong-co.csv"), "{}", text(&missing.stderr));
    std::fs::write(&csv, "name\nLan\n").unwrap();
    let no_email = run(bantin(dir.path()).args(["subscribers", "import"]).arg(&csv).args(["--list", "ban-tin-sang"]));
    assert_eq!(no_email.status.code(), Some(2));
    assert!(text(&no_email.stderr).contains("no email column"), "{}", text(&no_email.stderr));
}

#[test]
fn subscribers_add_export_and_remove() {
    let dir = tempfile::tempdir().unwrap();
    create_list(dir.path(), "Bản tin sáng");
    create_list(dir.path(), "Bản tin chiều");
    let add = |args: &[&str]| run(bantin(dir.path()).args(["subscribers", "add"]).args(args));
    let out = add(&["lan@example.vn", "--list", "ban-tin-sang", "--name", "Nguyễn Thị Lan", "--confirmed"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(text(&out.stdout).starts_with("added lan@example.vn to ban-tin-sang"), "{}", text(&out.stdout));
    assert_eq!(outbox_len(dir.path()), 0);
    let out = add(&["Minh@Example.VN", "--list", "ban-tin-chieu"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(text(&out.stdout).contains("a confirmation email was sent"), "{}", text(&out.stdout));
    assert_eq!(outbox_len(dir.path()), 1);

    let again = add(&["LAN@example.vn", "--list", "ban-tin-chieu"]);
    assert_eq!(again.status.code(), Some(1));
    assert!(text(&again.stderr).contains("is already a subscriber"), "{}", text(&again.stderr));
    let unknown = add(&["hoa@example.vn", "--list", "khong-co"]);
    assert_eq!(unknown.status.code(), Some(2));
    let bad = add(&["hoa@example.vn\r\nBcc: x@y.vn", "--list", "ban-tin-sang"]);
    assert_eq!(bad.status.code(), Some(1));
    assert!(text(&bad.stderr).contains("email: address must not contain line breaks"), "{}", text(&bad.stderr));

    let export = |args: &[&str]| {
        let out = run(bantin(dir.path()).args(["subscribers", "export"]).args(args));
        assert!(out.status.success(), "{}", text(&out.stderr));
        let mut reader = csv::Reader::from_reader(out.stdout.as_slice());
        let rows: Vec<(String, String, String)> =
            reader.records().map(|r| r.unwrap()).map(|r| (r[0].into(), r[1].into(), r[3].into())).collect();
        rows
    };
    let lan = ("lan@example.vn".to_owned(), "Nguyễn Thị Lan".to_owned(), "active".to_owned());
    let minh = ("Minh@example.vn".to_owned(), String::new(), "unconfirmed".to_owned());
    assert_eq!(export(&[]), [lan.clone(), minh.clone()]);
    assert_eq!(export(&["--list", "ban-tin-sang"]), [lan]);
    let unknown = run(bantin(dir.path()).args(["subscribers", "export", "--list", "khong-co"]));
    assert_eq!(unknown.status.code(), Some(2));

    let out = run(bantin(dir.path()).args(["subscribers", "remove", "lan@example.vn"]));
    assert!(out.status.success(), "{}", text(&out.stderr));
    let out = run(bantin(dir.path()).args(["subscribers", "remove", "lan@example.vn"]));
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("there is no subscriber with the address lan@example.vn"),
        "{}",
        text(&out.stderr)
    );
    assert_eq!(export(&[]), [minh]);
}
