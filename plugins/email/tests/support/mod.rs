//! Shared set-up for the email plugin's tests: a real SMTP server process
//! (aiosmtpd, tests/smtp_server.py) on a loopback port, what it received,
//! and a demo project whose directory and channels the test chooses.
#![allow(dead_code)] // each test file uses its own share of these

use cascade_engine::delivery::DispatchSettings;
use cascade_engine::engine::{Engine, Runner};
use cascade_engine::project::{Project, scaffold};
use cascade_model::directory::read_csv;
use cascade_store::{SqliteStore, Store};
use chrono::{DateTime, TimeZone, Utc};
use serde_json::Value;
use std::fmt::Write as _;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::time::Duration;

/// A running `smtp_server.py`: stopped (stdin closed, then killed) on drop.
pub struct SmtpServer {
    pub port: u16,
    pub dir: tempfile::TempDir,
    child: Child,
    stdin: Option<ChildStdin>,
}

impl SmtpServer {
    pub fn start() -> SmtpServer {
        SmtpServer::start_with(&[])
    }

    /// With `smtp_server.py`'s options, e.g. `--starttls CERT KEY`.
    pub fn start_with(options: &[&std::ffi::OsStr]) -> SmtpServer {
        ensure_test_deps();
        let dir = tempfile::tempdir().unwrap();
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/smtp_server.py");
        let mut child = Command::new("python3")
            .arg(&script)
            .arg(dir.path())
            .args(options)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("python3 runs; scripts/install-test-deps.sh installs aiosmtpd");
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let port = line
            .trim()
            .strip_prefix("listening on ")
            .and_then(|p| p.parse().ok())
            .unwrap_or_else(|| {
                panic!("smtp_server.py did not start (is aiosmtpd installed? run scripts/install-test-deps.sh): {line:?}")
            });
        SmtpServer {
            port,
            stdin: child.stdin.take(),
            child,
            dir,
        }
    }

    /// Every message accepted so far, in the order accepted.
    pub fn received(&self) -> Vec<Value> {
        let mut paths: Vec<PathBuf> = std::fs::read_dir(self.dir.path())
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_some_and(|e| e == "json"))
            .collect();
        paths.sort();
        paths
            .iter()
            .map(|p| serde_json::from_slice(&std::fs::read(p).unwrap()).unwrap())
            .collect()
    }

    /// (recipient, answer) for every attempt the server answered.
    pub fn events(&self) -> Vec<(String, String)> {
        std::fs::read_to_string(self.dir.path().join("events.jsonl"))
            .unwrap_or_default()
            .lines()
            .map(|line| {
                let event: Value = serde_json::from_str(line).unwrap();
                (
                    event["rcpt"].as_str().unwrap().to_owned(),
                    event["answer"].as_str().unwrap().to_owned(),
                )
            })
            .collect()
    }

    /// An email channel's plugin config pointing at this server.
    pub fn channel_config(&self, max_in_flight: usize) -> Value {
        serde_json::json!({
            "host": "127.0.0.1",
            "port": self.port,
            "tls": "none",
            "helo_name": "cascade.test",
            "from": "Northbridge Learning <learning@northbridge.example>",
            "reply_to": "Safeguarding Business Unit <sbu@northbridge.example>",
            "max_in_flight": max_in_flight,
            "timeout_seconds": 10,
        })
    }
}

impl Drop for SmtpServer {
    fn drop(&mut self) {
        drop(self.stdin.take());
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The text of a received message's part of the given MIME type.
pub fn part<'a>(message: &'a Value, content_type: &str) -> &'a str {
    message["parts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["content_type"] == content_type)
        .and_then(|p| p["content"].as_str())
        .unwrap_or_else(|| panic!("no {content_type} part in {message}"))
}

pub fn header<'a>(message: &'a Value, name: &str) -> Option<&'a str> {
    message["headers"][name].as_str()
}

pub fn utc(y: i32, mo: u32, d: u32, h: u32, mi: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(y, mo, d, h, mi, 0).unwrap()
}

/// One person of a test directory: id, name, email.
pub type Person<'a> = (&'a str, &'a str, &'a str);

/// The demo project with `people` as its whole directory (one agency, one
/// team), `channels` in place of its [[channels]], the briefing's title
/// given a non-ASCII tail, and the directory imported into the store.
pub async fn project(people: &[Person<'_>], channels: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    scaffold(root).unwrap();
    let config_path = root.join("cascade.toml");
    let config = std::fs::read_to_string(&config_path).unwrap();
    let base = &config[..config.find("[[channels]]").unwrap()];
    std::fs::write(&config_path, format!("{base}{channels}")).unwrap();

    let briefing = root.join("content/7mb-neglect-seeing-the-child.md");
    let text = std::fs::read_to_string(&briefing).unwrap();
    std::fs::write(
        &briefing,
        text.replacen(
            "title = \"Neglect: seeing the child\"",
            &format!("title = \"{TITLE}\""),
            1,
        ),
    )
    .unwrap();

    let directory = root.join("directory");
    std::fs::write(
        directory.join("agencies.csv"),
        "agency_id,name,kind\nag,Test Agency,local-authority\n",
    )
    .unwrap();
    std::fs::write(
        directory.join("teams.csv"),
        "team_id,agency_id,name\nteam,ag,Test Team\n",
    )
    .unwrap();
    std::fs::write(directory.join("champions.csv"), "person_id,theme,teams\n").unwrap();
    let mut rows =
        String::from("person_id,display_name,email,agency_id,team_id,roles,manager_id,time_zone\n");
    for (id, name, email) in people {
        writeln!(rows, "{id},{name},{email},ag,team,practitioner,,").unwrap();
    }
    std::fs::write(directory.join("people.csv"), rows).unwrap();

    let project = Project::open(root).unwrap();
    let store = SqliteStore::open(&project.store_path().to_string_lossy())
        .await
        .unwrap();
    for name in ["agencies.csv", "teams.csv", "people.csv", "champions.csv"] {
        let path = project.directory_dir().join(name);
        let file = read_csv(&path).unwrap_or_else(|e| panic!("{}", e[0]));
        store
            .import(&file, &path, &project.taxonomy)
            .await
            .unwrap_or_else(|e| panic!("{e}"));
    }
    store.pool().close().await;
    dir
}

/// The briefing's title in test projects: a subject that needs RFC 2047.
pub const TITLE: &str = "Neglect: seeing the child — Zoë’s story";

/// An `email` channel instance for `cascade.toml`, its config an inline
/// table (JSON strings and numbers are valid TOML values).
pub fn email_channel(config: &Value) -> String {
    let fields: Vec<String> = config
        .as_object()
        .unwrap()
        .iter()
        .map(|(key, value)| format!("{key} = {value}"))
        .collect();
    format!(
        "[[channels]]\nname = \"email\"\nplugin = \"email\"\nformats = [\"email-html\", \"email-text\"]\nconfig = {{ {} }}\n",
        fields.join(", ")
    )
}

/// Everyone, one wave, now; urgent so quiet hours do not apply.
pub fn rollout(dir: &Path, max_attempts: u32) -> PathBuf {
    let path = dir.join("rollouts/now.toml");
    std::fs::write(
        &path,
        format!(
            "id = \"now\"\nitem = \"7mb-neglect-seeing-the-child\"\nstart = 2026-03-27T09:00:00\n\
             urgent = true\nchannels = [\"email\"]\nfallback = false\nack_deadline_days = 10\n\
             max_attempts = {max_attempts}\n\n[audience]\n\n[[waves]]\nname = \"Everyone\"\nafter_days = 0\n"
        ),
    )
    .unwrap();
    path
}

/// The engine over the project with the rollout started at `now`.
pub async fn start(dir: &Path, rollout: &Path, now: DateTime<Utc>) -> Runner<SqliteStore> {
    let engine = Engine::open(Project::open(dir).unwrap(), true)
        .await
        .unwrap_or_else(|p| panic!("{p}"));
    let planned = engine
        .plan(rollout, now)
        .await
        .unwrap_or_else(|p| panic!("{p}"));
    engine.start(&planned, now).await.unwrap();
    let settings = DispatchSettings {
        backoff_base: Duration::from_secs(60),
        ..DispatchSettings::default()
    };
    engine.runner(settings).await.unwrap()
}

/// One outbox row as the engine recorded it.
#[derive(Debug, Clone)]
pub struct Row {
    pub recipient: String,
    pub idempotency_key: String,
    pub state: String,
    pub attempts: i64,
    pub provider_id: Option<String>,
    pub last_error: Option<String>,
}

pub async fn rows(runner: &Runner<SqliteStore>) -> Vec<Row> {
    use sqlx::Row as _;
    sqlx::query(
        "SELECT recipient_id, idempotency_key, state, attempts, provider_id, last_error \
         FROM outbox ORDER BY id",
    )
    .fetch_all(runner.store().pool())
    .await
    .unwrap()
    .iter()
    .map(|r| Row {
        recipient: r.get(0),
        idempotency_key: r.get(1),
        state: r.get(2),
        attempts: r.get(3),
        provider_id: r.get(4),
        last_error: r.get(5),
    })
    .collect()
}

/// The plugin library cargo built next to the test binary (target/*/deps).
pub fn library() -> PathBuf {
    use std::env::consts::{DLL_PREFIX, DLL_SUFFIX};
    let exe = std::env::current_exe().unwrap();
    let name = format!("{DLL_PREFIX}cascade_plugin_email{DLL_SUFFIX}");
    exe.ancestors()
        .skip(1)
        .map(|dir| dir.join(&name))
        .find(|path| path.is_file())
        .unwrap_or_else(|| panic!("{name} was not built next to {}", exe.display()))
}

/// A private CA (`ca.pem`) and a certificate it signed for `localhost`
/// (`cert.pem`, `key.pem`), made in `dir` with the openssl tool.
pub fn private_ca(dir: &Path) {
    std::fs::write(
        dir.join("leaf.ext"),
        "subjectAltName=DNS:localhost\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n",
    )
    .unwrap();
    let ec = [
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:prime256v1",
        "-nodes",
    ];
    let steps: [Vec<&str>; 3] = [
        [
            &["req", "-x509"][..],
            &ec,
            &[
                "-keyout",
                "ca.key",
                "-out",
                "ca.pem",
                "-days",
                "2",
                "-subj",
                "/CN=cascade test CA",
            ],
        ]
        .concat(),
        [
            &["req"][..],
            &ec,
            &[
                "-keyout",
                "key.pem",
                "-out",
                "leaf.csr",
                "-subj",
                "/CN=localhost",
            ],
        ]
        .concat(),
        vec![
            "x509",
            "-req",
            "-in",
            "leaf.csr",
            "-CA",
            "ca.pem",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-out",
            "cert.pem",
            "-days",
            "2",
            "-extfile",
            "leaf.ext",
        ],
    ];
    for args in steps {
        let out = Command::new("openssl")
            .args(&args)
            .current_dir(dir)
            .output()
            .expect("openssl runs: scripts/install-test-deps.sh installs it");
        assert!(
            out.status.success(),
            "openssl {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

/// aiosmtpd and openssl, installed through the project's script when
/// missing (once per test binary), as the HTML report test does for
/// Chromium. Fails the test (never skips it) when they cannot be had.
fn ensure_test_deps() {
    static INSTALLED: std::sync::Once = std::sync::Once::new();
    INSTALLED.call_once(|| {
        let present = |program: &str, args: &[&str]| {
            Command::new(program)
                .args(args)
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status()
                .is_ok_and(|s| s.success())
        };
        if present("python3", &["-c", "import aiosmtpd"]) && present("openssl", &["version"]) {
            return;
        }
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../scripts/install-test-deps.sh");
        let out = Command::new("bash")
            .arg(&script)
            .stdin(Stdio::null())
            .output()
            .unwrap_or_else(|e| panic!("cannot run {}: {e}", script.display()));
        assert!(
            out.status.success(),
            "the email tests need Python's aiosmtpd and openssl; {} failed to install them ({}):\n{}\n{}\n\
             help: run `bash scripts/install-test-deps.sh` as root",
            script.display(),
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr),
        );
    });
}
