//! Several `cascade serve` processes on one PostgreSQL database (issue 18):
//! three serves deliver a 20,000-person rollout through the `file` channel
//! while one of them is killed with SIGKILL twice and started again, and
//! people acknowledge through whichever serve they reach. In the end
//! everyone has the message; the duplicates (sends written but not
//! recorded when a kill landed) are at most what one serve can have
//! unrecorded, once per kill; every acknowledgement posted is recorded
//! once, whichever process took it, however often it was posted.
//!
//! The kill moments come from a seeded PRNG; the seed is printed, and
//! `CASCADE_CRASH_SEED=<seed>` replays a run.

#![cfg(unix)]

#[path = "serve_support/mod.rs"]
mod serve_support;

use cascade_store::pg::test_server::TestPostgres;
use serve_support::{
    Rng, Server, delivery, delivery_files, journal, paced_project, post, seed, succeed,
};
use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::Path;
use std::time::{Duration, Instant};

const PEOPLE: usize = 20_000;
const SERVES: usize = 3;
const KILLS: usize = 2;
const ROLLOUT: &str = "many-serves";
/// Acknowledgements posted while the serves run, each to one serve; the
/// first `POSTED_TWICE` of them to a second serve too.
const ACKS: usize = 300;
const POSTED_TWICE: usize = 60;
/// How long the whole delivery may take before the test gives up.
const DELIVERY_LIMIT: Duration = Duration::from_secs(900);

/// The acknowledgements posted so far: person to token, and how many
/// each serve took.
#[derive(Default)]
struct Acks {
    posted: BTreeMap<String, String>,
    reached: BTreeMap<String, usize>,
    unanswered: BTreeSet<String>,
}

impl Acks {
    /// POSTs `token` to the serves in turn from `first` until one answers
    /// (one may have just been killed); returns which did.
    fn post_anywhere(&mut self, servers: &[Server], token: &str, first: usize) -> usize {
        for k in 0..servers.len() {
            let n = (first + k) % servers.len();
            let client = format!(
                "10.0.{}.{}",
                self.posted.len() / 250,
                self.posted.len() % 250
            );
            if let Some(status) = post(&servers[n].address, &format!("/ack/{token}"), &client) {
                assert_eq!(status, 200, "POST /ack/{token} to serve {n}");
                *self.reached.entry(servers[n].address.clone()).or_default() += 1;
                return n;
            }
            if self.unanswered.insert(servers[n].address.clone()) {
                let log = servers[n].log();
                let tail: Vec<&str> = log.lines().rev().take(20).collect();
                println!(
                    "serve {n} at {} did not answer; its log ends:\n{}",
                    servers[n].address,
                    tail.into_iter().rev().collect::<Vec<_>>().join("\n")
                );
            }
        }
        panic!("no serve answered POST /ack/{token}");
    }

    /// Acknowledges up to a tenth of `ACKS` more deliveries found so far,
    /// each through a serve picked at random; the first `POSTED_TWICE`
    /// through a second serve too.
    fn some(&mut self, servers: &[Server], outbox: &Path, rng: &mut Rng) {
        let mut now = 0;
        for entry in fs::read_dir(outbox).unwrap() {
            if self.posted.len() >= ACKS || now >= ACKS / 10 {
                break;
            }
            let Some((person, Some(token))) = delivery(&entry.unwrap().path()) else {
                continue;
            };
            if self.posted.contains_key(&person) {
                continue;
            }
            let n = self.post_anywhere(servers, &token, rng.next() as usize);
            if self.posted.len() < POSTED_TWICE {
                self.post_anywhere(servers, &token, n + 1);
            }
            self.posted.insert(person, token);
            now += 1;
        }
    }
}

#[test]
fn three_serves_on_postgresql_survive_two_kills_and_record_each_acknowledgement_once() {
    cascade_test_support::short_panics();
    let began = Instant::now();
    let seed = seed();
    println!("seed {seed} (replay with CASCADE_CRASH_SEED={seed})");
    let mut rng = Rng(seed);
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let server = TestPostgres::shared().unwrap_or_else(|e| panic!("{e}"));
    let url = runtime.block_on(server.new_database()).unwrap();

    let tmp = tempfile::tempdir().unwrap();
    // Paced per serve, so that the second kill lands while sends are
    // still under way however quickly the serve restarts.
    let (project, people) =
        paced_project(tmp.path(), "many", PEOPLE, 80, &format!("url = \"{url}\""));
    let stdout = succeed(&["import", "--project", "many"], tmp.path());
    assert!(
        stdout.contains(&format!("people.csv: {PEOPLE} added")),
        "{stdout}"
    );
    assert!(
        stdout.contains("store: PostgreSQL at postgres://"),
        "{stdout}"
    );
    let rollout = cascade::bench::write_urgent_rollout(&project, "many", ROLLOUT);
    let stdout = succeed(
        &[
            "rollout",
            "start",
            "--project",
            "many",
            rollout.to_str().unwrap(),
        ],
        tmp.path(),
    );
    assert!(stdout.contains(&format!("for {PEOPLE} people")), "{stdout}");
    // Nothing of it is in a SQLite file: the commands ran on PostgreSQL.
    assert!(!project.join(".cascade/cascade.db").exists());

    let outbox = project.join("outbox");
    let log = |name: &str| tmp.path().join(format!("{name}.log"));
    let mut servers: Vec<Server> = (0..SERVES)
        .map(|n| Server::spawn(&project, log(&format!("serve-{n}"))))
        .collect();
    let mut killed_logs = Vec::new();
    let mut acks = Acks::default();

    let target = 0;
    let mut at_last_kill = 0;
    for kill in 1..=KILLS {
        // Kill while sends are in flight: the first time once the journal
        // shows sending under way, the second soon after the restarted
        // serve is up (it claims at once).
        if kill == 1 {
            let started = Instant::now();
            while journal(&outbox).len() < 200 {
                assert!(
                    started.elapsed() < Duration::from_secs(300),
                    "nothing sent within 300 s:\n{}",
                    servers[0].log()
                );
                std::thread::sleep(Duration::from_millis(20));
            }
        }
        std::thread::sleep(Duration::from_millis(rng.between(50, 600)));
        let victim = servers.remove(target);
        killed_logs.push(victim.log.clone());
        victim.kill();
        at_last_kill = journal(&outbox).len();
        println!(
            "kill {kill} at {:.1?}: {at_last_kill} writes journalled so far",
            began.elapsed(),
        );
        // People acknowledge through the serves left while one is down.
        acks.some(&servers, &outbox, &mut rng);
        servers.insert(
            target,
            Server::spawn(&project, log(&format!("serve-0-after-kill-{kill}"))),
        );
    }
    assert!(
        at_last_kill < PEOPLE,
        "everything was sent before the last kill; the kills tested nothing"
    );

    // Wait for everyone, acknowledging as deliveries arrive.
    let deadline = Instant::now() + DELIVERY_LIMIT;
    while delivery_files(&outbox) < PEOPLE {
        acks.some(&servers, &outbox, &mut rng);
        assert!(
            Instant::now() < deadline,
            "{} of {PEOPLE} deliveries written within {DELIVERY_LIMIT:?}:\n{}",
            delivery_files(&outbox),
            servers[1].log()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    while acks.posted.len() < ACKS {
        acks.some(&servers, &outbox, &mut rng);
    }
    println!(
        "everyone reached at {:.1?}; acknowledgements taken by each serve: {:?}",
        began.elapsed(),
        acks.reached
    );
    // Let the last recordings land, then stop the serves cleanly.
    std::thread::sleep(Duration::from_secs(2));
    let mut logs: Vec<String> = servers.into_iter().map(Server::stop).collect();
    logs.extend(killed_logs.iter().map(|p| fs::read_to_string(p).unwrap()));

    // Everyone has exactly one delivery file; nobody else has one.
    let mut recipients: BTreeMap<String, u32> = BTreeMap::new();
    for entry in fs::read_dir(&outbox).unwrap() {
        if let Some((person, _)) = delivery(&entry.unwrap().path()) {
            *recipients.entry(person).or_default() += 1;
        }
    }
    let twice: Vec<_> = recipients.iter().filter(|(_, n)| **n > 1).collect();
    assert!(
        twice.is_empty(),
        "people with more than one delivery: {twice:?}"
    );
    let strangers: Vec<_> = recipients.keys().filter(|p| !people.contains(*p)).collect();
    assert!(
        strangers.is_empty(),
        "sent to unknown people: {strangers:?}"
    );
    assert_eq!(recipients.len(), PEOPLE);

    // Duplicates: writes journalled again after a kill, within the bound.
    let lines = journal(&outbox);
    let distinct: BTreeSet<&String> = lines.iter().collect();
    assert_eq!(distinct.len(), PEOPLE);
    let duplicates = lines.len() - distinct.len();
    let unrecorded = cascade_engine::delivery::DispatchSettings::default().unrecorded_at_most();
    let bound = unrecorded * KILLS;
    println!(
        "duplicates: {duplicates} ({} journal lines; bound {unrecorded} unrecorded at most x {KILLS} kills = {bound})",
        lines.len()
    );
    for (n, log) in logs.iter().enumerate() {
        for line in log
            .lines()
            .filter(|l| l.contains("took back") || l.contains("WARN") || l.contains("ERROR"))
        {
            println!("serve log {n}: {line}");
        }
    }
    assert!(duplicates <= bound, "{duplicates} duplicates > {bound}");

    // The serves left alive took back the killed one's rows when its
    // lease ran out, rather than waiting for the rows' own leases.
    assert!(
        logs.iter()
            .any(|l| l.contains("took back the rows of a serve")),
        "no serve took back the killed serve's rows"
    );

    // Every acknowledgement posted is recorded once, however many serves
    // it was posted to.
    let (rows, people_acked): (i64, i64) = runtime.block_on(async {
        use sqlx::Connection;
        let mut pg = sqlx::PgConnection::connect(&url).await.unwrap();
        sqlx::query_as(
            "SELECT count(*), count(DISTINCT person_id) FROM acknowledgements WHERE rollout_id = $1",
        )
        .bind(ROLLOUT)
        .fetch_one(&mut pg)
        .await
        .unwrap()
    });
    assert_eq!(acks.posted.len(), ACKS);
    assert_eq!((rows, people_acked), (ACKS as i64, ACKS as i64));
    // Status reads the same from PostgreSQL.
    let status = succeed(&["status", "--project", "many", ROLLOUT], tmp.path());
    assert!(status.contains(&format!("{ACKS}")), "{status}");

    // The evidence chain holds every send recorded once, whoever recorded
    // or linked it, kills and all: sends a killed serve listed and did not
    // link are linked by a serve left alive or by the verify.
    let verified = succeed(
        &["evidence", "verify", "--store", "--project", "many"],
        tmp.path(),
    );
    assert!(verified.contains("verifies"), "{verified}");
    let (sent, links, linked): (i64, i64, i64) = runtime.block_on(async {
        use sqlx::Connection;
        let mut pg = sqlx::PgConnection::connect(&url).await.unwrap();
        sqlx::query_as(
            "SELECT (SELECT count(*) FROM outbox WHERE sent_at IS NOT NULL),
                    count(*), count(DISTINCT ref)
             FROM evidence_chain WHERE kind = 'delivery'",
        )
        .fetch_one(&mut pg)
        .await
        .unwrap()
    });
    assert_eq!((links, linked), (sent, sent), "one link a send");
    println!("took {:.1?}", began.elapsed());
}
