//! A real PostgreSQL server for tests and benches, started on loopback from
//! the machine's own binaries (Debian's `postgresql` package, which
//! `scripts/install-test-deps.sh` installs): `initdb` into a temporary
//! folder, then `postgres` on a free port of 127.0.0.1, run as the
//! unprivileged `postgres` (or `nobody`) user when the tests run as root,
//! since PostgreSQL refuses to run as root. One server a test process,
//! started on first use; each test takes a database of its own from it.
//! A watchdog process stops the server (immediate shutdown) when the test
//! process ends, however it ends, and removes the folder.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// The server, once started.
#[derive(Debug)]
pub struct TestPostgres {
    port: u16,
    dir: PathBuf,
}

/// Why the test server could not start: names what is missing and how to
/// get it.
#[derive(Debug, Clone)]
pub struct TestPostgresError(pub String);

impl std::fmt::Display for TestPostgresError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for TestPostgresError {}

/// A fresh PostgreSQL store: a new database on the shared test server,
/// migrated.
pub async fn fresh_store() -> super::PgStore {
    let server = TestPostgres::shared().unwrap_or_else(|e| panic!("{e}"));
    let url = server.new_database().await.unwrap();
    super::PgStore::connect(&super::PgSettings::new(url))
        .await
        .unwrap()
}

/// SQL for an item `i` version `v1` and an active rollout `r` of it, for
/// tests that write the rest of their rows in SQL.
#[cfg(test)]
pub(crate) const ITEM_AND_ROLLOUT: [&str; 2] = [
    "INSERT INTO items (id, version, kind, title, status, source, first_seen_at)
     VALUES ('i', 'v1', 'alert', 'T', 'published', 'feed', '2026-01-01')",
    "INSERT INTO rollouts (id, item_id, item_version, definition, state, created_at, updated_at)
     VALUES ('r', 'i', 'v1', '{}', 'active', 1, 1)",
];

static SERVER: OnceLock<Result<TestPostgres, TestPostgresError>> = OnceLock::new();
static DATABASES: AtomicUsize = AtomicUsize::new(0);

impl TestPostgres {
    /// The process's server, started on first call.
    pub fn shared() -> Result<&'static TestPostgres, TestPostgresError> {
        SERVER
            .get_or_init(|| Self::start(false))
            .as_ref()
            .map_err(Clone::clone)
    }

    /// A server of its own that keeps PostgreSQL's default durability
    /// (`fsync`, `synchronous_commit` and full-page writes on), for
    /// benchmarks that compare it with SQLite at `synchronous = FULL`. It
    /// stops when the process ends.
    pub fn durable() -> Result<TestPostgres, TestPostgresError> {
        Self::start(true)
    }

    /// The URL of the server's `postgres` database (as the `cascade`
    /// superuser, trusted on loopback).
    pub fn admin_url(&self) -> String {
        format!("postgres://cascade@127.0.0.1:{}/postgres", self.port)
    }

    /// The server's port on 127.0.0.1.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The server's folder (data in `data/`, its log in `log`).
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Creates a new, empty database and returns its URL.
    pub async fn new_database(&self) -> Result<String, sqlx::Error> {
        use sqlx::Connection;
        let n = DATABASES.fetch_add(1, Ordering::Relaxed);
        let name = format!("t{}_{n}", std::process::id());
        let mut admin = sqlx::PgConnection::connect(&self.admin_url()).await?;
        sqlx::Executor::execute(&mut admin, format!("CREATE DATABASE {name}").as_str()).await?;
        admin.close().await?;
        Ok(format!("postgres://cascade@127.0.0.1:{}/{name}", self.port))
    }

    /// Drops a database [`TestPostgres::new_database`] made, by its URL,
    /// ending any session still connected to it.
    pub async fn drop_database(&self, url: &str) -> Result<(), sqlx::Error> {
        use sqlx::Connection;
        let name = url.rsplit('/').next().unwrap_or_default();
        if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
            return Err(sqlx::Error::Configuration(
                format!("not a database of this server: {url}").into(),
            ));
        }
        let mut admin = sqlx::PgConnection::connect(&self.admin_url()).await?;
        sqlx::Executor::execute(
            &mut admin,
            format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)").as_str(),
        )
        .await?;
        admin.close().await?;
        Ok(())
    }

    fn start(durable: bool) -> Result<TestPostgres, TestPostgresError> {
        let bin = binaries()?;
        let dir = std::env::temp_dir().join(format!(
            "cascade-pg-{}-{}",
            std::process::id(),
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_nanos())
                .unwrap_or(0)
        ));
        std::fs::create_dir_all(&dir).map_err(|e| fail(format!("{}: {e}", dir.display())))?;
        let user = run_as();
        if let Some(user) = &user {
            let status = Command::new("chown")
                .arg(user)
                .arg(&dir)
                .status()
                .map_err(|e| fail(format!("chown: {e}")))?;
            if !status.success() {
                return Err(fail(format!("chown {user} {} failed", dir.display())));
            }
        }
        let data = dir.join("data");
        let out = as_user(&user, &bin.join("initdb"))
            .arg("-D")
            .arg(&data)
            .args([
                "-A",
                "trust",
                "-U",
                "cascade",
                "--locale=C",
                "-E",
                "UTF8",
                "--no-sync",
            ])
            .stdin(Stdio::null())
            .output()
            .map_err(|e| fail(format!("initdb: {e}")))?;
        if !out.status.success() {
            return Err(fail(format!(
                "initdb failed: {}",
                String::from_utf8_lossy(&out.stderr)
            )));
        }
        // A free port: bind port 0, read it, let go. Another process could
        // take it in between; then the server fails to start and we try again.
        let mut last = String::new();
        for _ in 0..5 {
            let port = std::net::TcpListener::bind("127.0.0.1:0")
                .and_then(|l| l.local_addr())
                .map_err(|e| fail(format!("no free port: {e}")))?
                .port();
            let log =
                std::fs::File::create(dir.join("log")).map_err(|e| fail(format!("log: {e}")))?;
            if let Some(user) = &user {
                let _ = Command::new("chown")
                    .arg(user)
                    .arg(dir.join("log"))
                    .status();
            }
            // Tests want speed, not durability across a power cut.
            let fast: &[&str] = if durable {
                &[]
            } else {
                &[
                    "-c",
                    "fsync=off",
                    "-c",
                    "synchronous_commit=off",
                    "-c",
                    "full_page_writes=off",
                ]
            };
            let mut child = as_user(&user, &bin.join("postgres"))
                .arg("-D")
                .arg(&data)
                .args(["-p", &port.to_string(), "-k"])
                .arg(&dir)
                .args([
                    "-c",
                    "listen_addresses=127.0.0.1",
                    "-c",
                    "max_connections=300",
                ])
                .args(fast)
                .stdin(Stdio::null())
                .stdout(log.try_clone().map_err(|e| fail(e.to_string()))?)
                .stderr(log)
                .spawn()
                .map_err(|e| fail(format!("postgres: {e}")))?;
            watchdog(child.id(), &dir);
            let started = Instant::now();
            while started.elapsed() < Duration::from_secs(60) {
                if let Ok(Some(status)) = child.try_wait() {
                    last = format!(
                        "postgres exited ({status}): {}",
                        std::fs::read_to_string(dir.join("log")).unwrap_or_default()
                    );
                    break;
                }
                if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() && ready(&bin, port) {
                    return Ok(TestPostgres { port, dir });
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            if last.is_empty() {
                let _ = child.kill();
                last = "postgres did not accept connections within 60 s".to_owned();
            }
        }
        Err(fail(last))
    }
}

fn fail(why: String) -> TestPostgresError {
    TestPostgresError(format!(
        "could not start a PostgreSQL server for the tests: {why} \
         (install it with scripts/install-test-deps.sh, or set CASCADE_PG_BIN to the folder of initdb and postgres)"
    ))
}

/// The folder holding `initdb` and `postgres`: `CASCADE_PG_BIN`, else
/// Debian's newest `/usr/lib/postgresql/*/bin`, else the `PATH`'s.
fn binaries() -> Result<PathBuf, TestPostgresError> {
    if let Some(dir) = std::env::var_os("CASCADE_PG_BIN") {
        return Ok(PathBuf::from(dir));
    }
    let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let v = e.file_name().to_str()?.parse().ok()?;
            let bin = e.path().join("bin");
            bin.join("initdb").exists().then_some((v, bin))
        })
        .collect();
    versions.sort();
    if let Some((_, bin)) = versions.pop() {
        return Ok(bin);
    }
    for dir in std::env::split_paths(&std::env::var_os("PATH").unwrap_or_default()) {
        if dir.join("initdb").exists() && dir.join("postgres").exists() {
            return Ok(dir);
        }
    }
    Err(fail("initdb and postgres were not found".to_owned()))
}

/// As root, the unprivileged user to run PostgreSQL as; otherwise none.
fn run_as() -> Option<String> {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        return None;
    }
    let has = |u: &str| {
        Command::new("id")
            .arg("-u")
            .arg(u)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    };
    Some(
        if has("postgres") {
            "postgres"
        } else {
            "nobody"
        }
        .to_owned(),
    )
}

/// `program` run as `user` (through `setpriv`, which execs it, so the
/// process id is the program's own), or as ourselves.
fn as_user(user: &Option<String>, program: &Path) -> Command {
    match user {
        Some(user) => {
            let mut c = Command::new("setpriv");
            c.arg(format!("--reuid={user}"))
                .arg(format!("--regid={user}"))
                .arg("--init-groups")
                .arg(program);
            c
        }
        None => Command::new(program),
    }
}

/// Whether the server answers as ready (not still starting up).
fn ready(bin: &Path, port: u16) -> bool {
    let isready = bin.join("pg_isready");
    if !isready.exists() {
        return true;
    }
    Command::new(isready)
        .args([
            "-h",
            "127.0.0.1",
            "-p",
            &port.to_string(),
            "-U",
            "cascade",
            "-q",
        ])
        .status()
        .is_ok_and(|s| s.success())
}

/// Starts a process that waits for this one to end, then stops the server
/// at once and removes its folder.
fn watchdog(server: u32, dir: &Path) {
    let script = format!(
        "while kill -0 {me} 2>/dev/null; do sleep 0.5; done; \
         kill -QUIT {server} 2>/dev/null; \
         for i in $(seq 1 100); do kill -0 {server} 2>/dev/null || break; sleep 0.1; done; \
         kill -KILL {server} 2>/dev/null; rm -rf '{dir}'",
        me = std::process::id(),
        dir = dir.display()
    );
    let _ = Command::new("sh")
        .arg("-c")
        .arg(script)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn();
}
