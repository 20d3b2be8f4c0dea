//! Crash safety of the real `cascade serve`: a rollout to 5,000 people through
//! the `file` channel, the server killed with SIGKILL at random moments and
//! restarted each time. In the end everyone has the message, nobody is lost,
//! and the duplicates (sends written but not recorded before a kill) are at
//! most what can be in flight when the kills land.
//!
//! The kill moments come from a seeded PRNG; the seed is printed, and
//! `CASCADE_CRASH_SEED=<seed>` replays a run. Run with `--nocapture` to see
//! the report.

#![cfg(unix)]

#[path = "serve_support/mod.rs"]
mod serve_support;

use serve_support::{Rng, cascade, journal, seed, sigkill, succeed, text, write_directory};

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

const PEOPLE: usize = 5_000;
const KILLS: usize = 5;
const ROLLOUT: &str = "crash-test";
/// The lease given to `cascade serve`: rows claimed by a killed run are
/// claimed again by a later run once it runs out.
const LEASE_SECONDS: u64 = 2;
/// How long a run may take to start sending before the test gives up.
const STARTUP_LIMIT: Duration = Duration::from_secs(120);

/// A running `cascade serve`, killed (SIGKILL) and reaped if the test panics.
struct Server {
    child: Child,
    log: PathBuf,
}

impl Server {
    fn spawn(project: &Path, log: PathBuf, extra: &[String]) -> Server {
        let file = fs::File::create(&log).unwrap();
        let child = Command::new(env!("CARGO_BIN_EXE_cascade"))
            .args(["serve", "--project"])
            .arg(project)
            .args(["--listen", "127.0.0.1:0"])
            .args(extra)
            .stdin(Stdio::null())
            .stdout(file.try_clone().unwrap())
            .stderr(file)
            .spawn()
            .expect("cascade serve starts");
        Server { child, log }
    }

    fn log(&self) -> String {
        fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Waits until this run appends to the journal (it is sending), and
    /// says how long that took. Fails if it stops or takes too long.
    fn wait_for_a_write(&mut self, journal: &Path) -> Duration {
        let size = || fs::metadata(journal).map(|m| m.len()).unwrap_or(0);
        let (before, started) = (size(), Instant::now());
        while size() == before {
            if let Some(status) = self.child.try_wait().unwrap() {
                panic!(
                    "cascade serve stopped ({status}) before it sent anything:\n{}",
                    self.log()
                );
            }
            assert!(
                started.elapsed() < STARTUP_LIMIT,
                "cascade serve sent nothing within {STARTUP_LIMIT:?}:\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(5));
        }
        started.elapsed()
    }

    /// SIGKILL, then reap ([`sigkill`]).
    fn kill(mut self) {
        sigkill(&mut self.child, &self.log);
    }

    /// Waits for the server to stop by itself; after `limit`, kills it and
    /// fails with its log and what `cascade status` says is left.
    fn wait(mut self, limit: Duration, project: &Path) -> ExitStatus {
        let deadline = Instant::now() + limit;
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            if Instant::now() > deadline {
                let _ = self.child.kill();
                let _ = self.child.wait();
                let status = cascade(&["status", "--project", ".", ROLLOUT], project);
                panic!(
                    "cascade serve --until-idle did not finish within {limit:?} (rows lost in a lease, never claimed again?):\n{}\n{}",
                    self.log(),
                    text(&status.stdout)
                );
            }
            std::thread::sleep(Duration::from_millis(100));
        }
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

/// The counts on the channel row of `cascade status <rollout>`:
/// due, sending, sent, retrying, dead.
fn status_counts(stdout: &str) -> [u64; 5] {
    let row = stdout
        .lines()
        .find(|l| l.trim_start().starts_with("outbox "))
        .unwrap_or_else(|| panic!("no outbox row in:\n{stdout}"));
    let numbers: Vec<u64> = row
        .split_whitespace()
        .skip(1)
        .take(5)
        .map(|n| n.parse().unwrap_or_else(|_| panic!("{row}")))
        .collect();
    numbers.try_into().unwrap()
}

#[test]
fn serve_killed_five_times_loses_nobody_and_duplicates_at_most_the_batches_in_flight() {
    let began = Instant::now();
    let seed = seed();
    println!("seed {seed} (replay with CASCADE_CRASH_SEED={seed})");
    let mut rng = Rng(seed);

    let tmp = tempfile::tempdir().unwrap();
    succeed(&["init", "crash"], tmp.path());
    let project = tmp.path().join("crash");
    let people = write_directory(&project, PEOPLE);
    let config = project.join("cascade.toml");
    let toml = fs::read_to_string(&config).unwrap();
    assert!(toml.contains("config = { dir = \"outbox\" }"), "{toml}");
    fs::write(
        &config,
        toml.replace(
            "config = { dir = \"outbox\" }",
            "config = { dir = \"outbox\", journal = true }",
        ),
    )
    .unwrap();
    let stdout = succeed(&["import", "--project", "crash"], tmp.path());
    assert!(stdout.contains("people.csv: 5000 added"), "{stdout}");
    let rollout = cascade::bench::write_urgent_rollout(&project, "crash", ROLLOUT);
    let stdout = succeed(
        &[
            "rollout",
            "start",
            "--project",
            "crash",
            rollout.to_str().unwrap(),
        ],
        tmp.path(),
    );
    assert!(stdout.contains("for 5000 people"), "{stdout}");

    // A short lease, so rows claimed by a killed run are claimed again soon.
    let lease = Duration::from_secs(LEASE_SECONDS);
    let extra = vec!["--lease-seconds".to_owned(), LEASE_SECONDS.to_string()];

    let outbox = project.join("outbox");
    for kill in 1..=KILLS {
        let written = journal(&outbox).len();
        let mut server = Server::spawn(
            &project,
            tmp.path().join(format!("serve-{kill}.log")),
            &extra,
        );
        // A debug build takes seconds to load plugins and the directory and
        // to queue the rollout, so the random moment counts from the first
        // write of this run: every kill lands while sends are in flight.
        let starting = server.wait_for_a_write(&outbox.join("journal.log"));
        let after = rng.between(50, 600);
        std::thread::sleep(Duration::from_millis(after));
        server.kill();
        println!(
            "kill {kill}: first write after {starting:.1?}, SIGKILL {after} ms later; {} writes journalled in this run",
            journal(&outbox).len() - written
        );
    }
    let before_last = journal(&outbox).len();
    assert!(
        before_last < PEOPLE,
        "everything was sent before the last kill; the final run tests nothing"
    );

    let last = Server::spawn(&project, tmp.path().join("serve-final.log"), &{
        let mut args = extra.clone();
        args.push("--until-idle".to_owned());
        args
    });
    let started = Instant::now();
    let status = last.wait(lease + Duration::from_secs(150), &project);
    let log = fs::read_to_string(tmp.path().join("serve-final.log")).unwrap();
    assert!(status.success(), "{status}:\n{log}");
    println!(
        "final run (--until-idle) took {:.1?}: {}",
        started.elapsed(),
        log.lines().last().unwrap_or_default()
    );

    // One delivery file per person, each named by its delivery id.
    let mut files = BTreeSet::new();
    let mut recipients: BTreeMap<String, u32> = BTreeMap::new();
    for entry in fs::read_dir(&outbox).unwrap() {
        let name = entry.unwrap().file_name().into_string().unwrap();
        let Some(id) = name.strip_suffix(".json") else {
            continue;
        };
        let document: serde_json::Value =
            serde_json::from_slice(&fs::read(outbox.join(&name)).unwrap())
                .unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(document["delivery_id"], id, "{name}");
        let person = document["recipient"]["person_id"]
            .as_str()
            .unwrap_or_else(|| panic!("{name} has no recipient.person_id"));
        *recipients.entry(person.to_owned()).or_default() += 1;
        files.insert(id.to_owned());
    }
    let twice: Vec<_> = recipients.iter().filter(|(_, n)| **n > 1).collect();
    assert!(
        twice.is_empty(),
        "people with more than one delivery: {twice:?}"
    );
    let missing: Vec<_> = people
        .iter()
        .filter(|p| !recipients.contains_key(*p))
        .collect();
    assert!(
        missing.is_empty(),
        "{} of {PEOPLE} people never got the message, e.g. {:?}",
        missing.len(),
        &missing[..missing.len().min(10)]
    );
    let strangers: Vec<_> = recipients.keys().filter(|p| !people.contains(*p)).collect();
    assert!(
        strangers.is_empty(),
        "sent to unknown people: {strangers:?}"
    );
    assert_eq!(files.len(), PEOPLE);

    // Every write is journalled; a delivery written again after a kill shows twice.
    let lines = journal(&outbox);
    let distinct: BTreeSet<String> = lines.iter().cloned().collect();
    assert_eq!(
        distinct, files,
        "the journal and the delivery files name different deliveries"
    );
    let duplicates = lines.len() - distinct.len();
    let batch = cascade_engine::delivery::DispatchSettings::default().unrecorded_at_most();
    let bound = batch * KILLS;
    println!(
        "duplicates: {duplicates} ({} journal lines, {} distinct deliveries; bound {batch} unrecorded at most x {KILLS} kills = {bound})",
        lines.len(),
        distinct.len()
    );
    assert!(
        duplicates <= bound,
        "{duplicates} duplicate sends, more than the {bound} that can be in flight across {KILLS} kills"
    );

    // The store agrees: everyone sent, nothing dead, nothing left leased or due.
    let stdout = succeed(&["status", "--project", "crash", ROLLOUT], tmp.path());
    let [due, sending, sent, retrying, dead] = status_counts(&stdout);
    assert_eq!(
        (due, sending, sent, retrying, dead),
        (0, 0, PEOPLE as u64, 0, 0),
        "{stdout}"
    );
    let stdout = succeed(&["status", "--project", "crash"], tmp.path());
    assert!(stdout.contains("(5000/5000)"), "{stdout}");
    println!("took {:.1?} in all", began.elapsed());
}
