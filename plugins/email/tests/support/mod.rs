//! Shared set-up for the email plugin's tests: a real SMTP server process
//! (aiosmtpd, tests/smtp_server.py) on a loopback port, what it received,
//! and a demo project whose directory and channels the test chooses.
#![allow(dead_code)] // each test file uses its own share of these

use cascade_engine::delivery::DispatchSettings;
use cascade_engine::engine::{Engine, Runner};
use cascade_engine::project::Project;
use cascade_store::SqliteStore;
use cascade_test_support::DemoProject;
use chrono::{DateTime, Utc};
use serde_json::Value;
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

/// One person of a test directory: id, name, email.
pub use cascade_test_support::Person;

/// The demo project with `people` as its whole directory (one agency, one
/// team), `channels` in place of its [[channels]], the briefing's title
/// given a non-ASCII tail, and the directory imported into the store.
pub async fn project(people: &[Person<'_>], channels: &str) -> tempfile::TempDir {
    DemoProject::new()
        .channels(channels)
        .edit("content/7mb-neglect-seeing-the-child.md", |text| {
            text.replacen(
                "title = \"Neglect: seeing the child\"",
                &format!("title = \"{TITLE}\""),
                1,
            )
        })
        .only_people(people)
        .import_directory()
        .await
        .into_dir()
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

/// The key the fake token endpoint signs tokens with, and `smtp_server.py
/// --xoauth2` checks them with.
pub const TOKEN_KEY: &str = "test-signing-key";
pub const CLIENT_ID: &str = "6f1c2d3e-4a5b-4c6d-8e9f-0a1b2c3d4e5f";
pub const CLIENT_SECRET: &str = "m365~client.secret-for-tests";

/// What the fake token endpoint issues.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Issue {
    /// Tokens valid for an hour, said to be.
    Valid,
    /// Tokens the mail server finds expired, though `expires_in` says an
    /// hour (a clock out of step, a revoked grant).
    Expired,
}

/// A fake Entra ID token endpoint on loopback: the client-credentials
/// grant for [`CLIENT_ID`] and [`CLIENT_SECRET`] and the Exchange Online
/// scope only, answering as Entra ID does (`invalid_client` 401,
/// `unsupported_grant_type` and `invalid_scope` 400). Its tokens are
/// `EXPIRY.SHA256(KEY.EXPIRY)`, which `smtp_server.py --xoauth2` checks.
pub struct TokenEndpoint {
    pub url: String,
    issue: std::sync::Arc<std::sync::Mutex<Issue>>,
    pub requests: std::sync::Arc<std::sync::atomic::AtomicUsize>,
}

impl TokenEndpoint {
    pub async fn start() -> TokenEndpoint {
        use axum::extract::State;
        use std::sync::atomic::Ordering;
        type Shared = (
            std::sync::Arc<std::sync::Mutex<Issue>>,
            std::sync::Arc<std::sync::atomic::AtomicUsize>,
        );
        async fn token(
            State((issue, requests)): State<Shared>,
            axum::Form(form): axum::Form<std::collections::HashMap<String, String>>,
        ) -> (axum::http::StatusCode, axum::Json<Value>) {
            requests.fetch_add(1, Ordering::SeqCst);
            let field = |k: &str| form.get(k).map(String::as_str).unwrap_or_default();
            let refuse = |status: u16, error: &str| {
                (
                    axum::http::StatusCode::from_u16(status).unwrap(),
                    axum::Json(
                        serde_json::json!({ "error": error, "error_description": "AADSTS: refused" }),
                    ),
                )
            };
            if field("grant_type") != "client_credentials" {
                return refuse(400, "unsupported_grant_type");
            }
            if field("client_id") != CLIENT_ID || field("client_secret") != CLIENT_SECRET {
                return refuse(401, "invalid_client");
            }
            if field("scope") != "https://outlook.office365.com/.default" {
                return refuse(400, "invalid_scope");
            }
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_secs();
            let expiry = match *issue.lock().unwrap() {
                Issue::Valid => now + 3600,
                Issue::Expired => now - 60,
            };
            (
                axum::http::StatusCode::OK,
                axum::Json(serde_json::json!({
                    "token_type": "Bearer",
                    "expires_in": 3599,
                    "access_token": signed_token(expiry),
                })),
            )
        }
        let issue = std::sync::Arc::new(std::sync::Mutex::new(Issue::Valid));
        let requests = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let app = axum::Router::new()
            .route("/tenant/oauth2/v2.0/token", axum::routing::post(token))
            .with_state((issue.clone(), requests.clone()));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!(
            "http://{}/tenant/oauth2/v2.0/token",
            listener.local_addr().unwrap()
        );
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        TokenEndpoint {
            url,
            issue,
            requests,
        }
    }

    pub fn issue(&self, issue: Issue) {
        *self.issue.lock().unwrap() = issue;
    }

    pub fn requests(&self) -> usize {
        self.requests.load(std::sync::atomic::Ordering::SeqCst)
    }
}

/// A token as the fake endpoint signs it.
pub fn signed_token(expiry: u64) -> String {
    use sha2::Digest;
    let digest = sha2::Sha256::digest(format!("{TOKEN_KEY}.{expiry}"));
    format!("{expiry}.{}", hex::encode(digest))
}
