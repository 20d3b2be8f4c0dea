//! What the tests that run `cascade serve` processes on a test PostgreSQL
//! share (`tests/serve_postgres.rs`, `tests/serve_outage.rs`,
//! `tests/crash.rs`): running the
//! binary and its serves, posting as a load balancer would, a generated
//! directory of made-up people, and reading the `file` channel's outbox.
#![allow(dead_code)] // each test uses its own share of these

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

pub fn cascade(args: &[&str], cwd: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_cascade"))
        .args(args)
        .current_dir(cwd)
        .output()
        .expect("the cascade binary runs")
}

pub fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

pub fn succeed(args: &[&str], cwd: &Path) -> String {
    let out = cascade(args, cwd);
    assert!(
        out.status.success(),
        "cascade {} failed:\n{}\n{}",
        args.join(" "),
        text(&out.stdout),
        text(&out.stderr)
    );
    text(&out.stdout)
}

/// SplitMix64: small, seedable and good enough to pick kill moments.
pub struct Rng(pub u64);

impl Rng {
    pub fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A whole number in `low..=high`.
    pub fn between(&mut self, low: u64, high: u64) -> u64 {
        low + self.next() % (high - low + 1)
    }
}

/// `CASCADE_CRASH_SEED`, to replay a run, or the clock's nanoseconds.
pub fn seed() -> u64 {
    match std::env::var("CASCADE_CRASH_SEED") {
        Ok(s) => s.parse().expect("CASCADE_CRASH_SEED is a whole number"),
        Err(_) => std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos() as u64,
    }
}

/// SIGKILL (what `Child::kill` sends on Unix) to a `cascade serve`, then
/// reap it. Fails the test if it had already stopped by itself (then
/// nothing was killed), with its log at `log`.
pub fn sigkill(child: &mut Child, log: &Path) {
    if let Some(status) = child.try_wait().unwrap() {
        panic!(
            "cascade serve stopped by itself ({status}) before it could be killed:\n{}",
            fs::read_to_string(log).unwrap_or_default()
        );
    }
    child.kill().unwrap();
    let status = child.wait().unwrap();
    assert_eq!(
        std::os::unix::process::ExitStatusExt::signal(&status),
        Some(9),
        "{status}"
    );
}

/// A running `cascade serve` with its address, killed (SIGKILL) and reaped
/// if the test panics.
pub struct Server {
    pub child: Child,
    pub address: String,
    pub log: PathBuf,
}

impl Server {
    pub fn spawn(project: &Path, log: PathBuf) -> Server {
        let file = fs::File::create(&log).unwrap();
        let mut child = Command::new(env!("CARGO_BIN_EXE_cascade"))
            .args(["serve", "--project"])
            .arg(project)
            .args(["--listen", "127.0.0.1:0"])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(file)
            .spawn()
            .expect("cascade serve starts");
        let mut stdout = BufReader::new(child.stdout.take().unwrap());
        let mut first = String::new();
        stdout.read_line(&mut first).unwrap();
        let address = first
            .split("http://")
            .nth(1)
            .and_then(|rest| rest.split('/').next())
            .unwrap_or_else(|| {
                panic!(
                    "no address in {first:?}:\n{}",
                    fs::read_to_string(&log).unwrap_or_default()
                )
            })
            .to_owned();
        // Drained, so that the serve never blocks on a full pipe.
        std::thread::spawn(move || std::io::copy(&mut stdout, &mut std::io::sink()));
        Server {
            child,
            address,
            log,
        }
    }

    pub fn log(&self) -> String {
        fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// SIGKILL, then reap ([`sigkill`]).
    pub fn kill(mut self) {
        sigkill(&mut self.child, &self.log);
    }

    /// SIGTERM, then waits for a clean stop.
    pub fn stop(mut self) -> String {
        let pid = self.child.id().to_string();
        Command::new("kill").args(["-TERM", &pid]).status().unwrap();
        let deadline = Instant::now() + Duration::from_secs(60);
        while self.child.try_wait().unwrap().is_none() {
            assert!(Instant::now() < deadline, "did not stop:\n{}", self.log());
            std::thread::sleep(Duration::from_millis(50));
        }
        self.log()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// POST `path` (no body) to `address` as the load balancer in front of the
/// serves would, for `client`: the status, or None when the serve could
/// not be reached (it was just killed).
pub fn post(address: &str, path: &str, client: &str) -> Option<u16> {
    let mut stream = std::net::TcpStream::connect(address).ok()?;
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    write!(
        stream,
        "POST {path} HTTP/1.0\r\nHost: cascade\r\nX-Forwarded-For: {client}\r\nContent-Length: 0\r\n\r\n"
    )
    .ok()?;
    let mut response = String::new();
    stream.read_to_string(&mut response).ok()?;
    response.get(9..12)?.parse().ok()
}

/// Made-up people: the example project's (the champions, managers and
/// business unit refer to them) and generated practitioners, each in an
/// existing team under that team's manager, up to `people` in all.
/// Returns every person id.
pub fn write_directory(project: &Path, people: usize) -> BTreeSet<String> {
    const FIRST: [&str; 20] = [
        "Alex", "Bea", "Cal", "Dana", "Eli", "Fern", "Gus", "Hana", "Ivo", "Jo", "Kit", "Lena",
        "Milo", "Nell", "Otto", "Pia", "Quin", "Rosa", "Seb", "Tove",
    ];
    const LAST: [&str; 10] = [
        "Ashdown", "Brackley", "Colwell", "Dunmore", "Elstow", "Fenwick", "Garside", "Hollins",
        "Ingleby", "Juniper",
    ];
    let path = project.join("directory/people.csv");
    let original = fs::read_to_string(&path).unwrap();
    let mut lines: Vec<String> = original.lines().map(str::to_owned).collect();
    assert_eq!(
        lines[0],
        "person_id,display_name,email,agency_id,team_id,roles,manager_id,time_zone,works,absent_until"
    );
    let mut ids = BTreeSet::new();
    // team -> (agency, manager, email domain)
    let mut teams = BTreeMap::new();
    for line in &lines[1..] {
        let f: Vec<&str> = line.split(',').collect();
        ids.insert(f[0].to_owned());
        if f[5].split(';').any(|r| r == "manager") {
            let domain = f[2].split_once('@').unwrap().1;
            teams.entry(f[4].to_owned()).or_insert((
                f[3].to_owned(),
                f[0].to_owned(),
                domain.to_owned(),
            ));
        }
    }
    let teams: Vec<_> = teams.into_iter().collect();
    for i in 0..people - ids.len() {
        let (team, (agency, manager, domain)) = &teams[i % teams.len()];
        let (first, last) = (FIRST[i % FIRST.len()], LAST[(i / FIRST.len()) % LAST.len()]);
        let id = format!("p-gen-{i:05}");
        let email = format!(
            "{}.{}.{i:05}@{domain}",
            first.to_lowercase(),
            last.to_lowercase()
        );
        lines.push(format!(
            "{id},{first} {last} {i},{email},{agency},{team},practitioner,{manager},,,"
        ));
        ids.insert(id);
    }
    assert_eq!(ids.len(), people);
    fs::write(&path, lines.join("\n") + "\n").unwrap();
    ids
}

/// `cascade init <name>` in `dir` with `people` made-up people, the demo
/// briefing acknowledged by one press (its check questions are tested
/// elsewhere), the `file` channel keeping a journal and sending at most
/// `per_second`, the store at `store` (the `[store]` lines, e.g. `url =
/// "postgres://..."`), and requests trusted from a load balancer on
/// loopback, which says whose request it passes on, so each person has
/// their own rate limit. Returns the project and every person id.
pub fn paced_project(
    dir: &Path,
    name: &str,
    people: usize,
    per_second: u32,
    store: &str,
) -> (PathBuf, BTreeSet<String>) {
    succeed(&["init", name], dir);
    let project = dir.join(name);
    let ids = write_directory(&project, people);
    let briefing = project.join(cascade_test_support::DEMO_BRIEFING);
    let source = fs::read_to_string(&briefing).unwrap();
    fs::write(
        &briefing,
        cascade_test_support::without_check_questions(source),
    )
    .unwrap();
    let config = project.join("cascade.toml");
    let toml = fs::read_to_string(&config).unwrap();
    assert!(toml.contains("config = { dir = \"outbox\" }"), "{toml}");
    assert!(toml.contains("\n[store]\n"), "{toml}");
    assert!(toml.contains("\n# [server]\n"), "{toml}");
    fs::write(
        &config,
        toml.replace(
            "config = { dir = \"outbox\" }",
            &format!("config = {{ dir = \"outbox\", journal = true }}\nper_second = {per_second}"),
        )
        .replacen("\n[store]\n", &format!("\n[store]\n{store}\n"), 1)
        .replacen(
            "\n# [server]\n",
            "\n[server]\ntrusted_proxies = [\"127.0.0.1\"]\n",
            1,
        ),
    )
    .unwrap();
    (project, ids)
}

pub fn journal(outbox: &Path) -> Vec<String> {
    fs::read_to_string(outbox.join("journal.log"))
        .unwrap_or_default()
        .lines()
        .map(str::to_owned)
        .collect()
}

/// A delivery file's person and the acknowledgement token in it; None for
/// another file, or one still being written.
pub fn delivery(path: &Path) -> Option<(String, Option<String>)> {
    if path.extension()? != "json" {
        return None;
    }
    let document: serde_json::Value = serde_json::from_slice(&fs::read(path).ok()?).ok()?;
    let person = document["recipient"]["person_id"]
        .as_str()
        .unwrap_or_else(|| panic!("{} has no recipient.person_id", path.display()))
        .to_owned();
    let body = document.to_string();
    let token = body.split_once("/ack/").map(|(_, rest)| {
        rest.chars()
            .take_while(|c| c.is_ascii_alphanumeric() || "._-".contains(*c))
            .collect()
    });
    Some((person, token))
}

/// How many delivery files there are (read cheaply, by name).
pub fn delivery_files(outbox: &Path) -> usize {
    fs::read_dir(outbox)
        .unwrap()
        .filter(|e| {
            e.as_ref()
                .is_ok_and(|e| e.file_name().to_string_lossy().ends_with(".json"))
        })
        .count()
}
