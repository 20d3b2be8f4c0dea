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

use cascade_store::pg::test_server::TestPostgres;
use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
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

fn cascade(args: &[&str], cwd: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_cascade"))
        .args(args)
        .current_dir(cwd)
        .output()
        .expect("the cascade binary runs")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn succeed(args: &[&str], cwd: &Path) -> String {
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
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn between(&mut self, low: u64, high: u64) -> u64 {
        low + self.next() % (high - low + 1)
    }
}

fn seed() -> u64 {
    std::env::var("CASCADE_CRASH_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos() as u64
        })
}

/// A running `cascade serve` with its address, killed (SIGKILL) and reaped
/// if the test panics.
struct Server {
    child: Child,
    address: String,
    log: PathBuf,
}

impl Server {
    fn spawn(project: &Path, log: PathBuf) -> Server {
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

    fn log(&self) -> String {
        fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// SIGKILL (what `Child::kill` sends on Unix), then reap.
    fn kill(mut self) {
        if let Some(status) = self.child.try_wait().unwrap() {
            panic!(
                "cascade serve stopped by itself ({status}) before it could be killed:\n{}",
                self.log()
            );
        }
        self.child.kill().unwrap();
        let status = self.child.wait().unwrap();
        assert_eq!(
            std::os::unix::process::ExitStatusExt::signal(&status),
            Some(9),
            "{status}"
        );
    }

    /// SIGTERM, then waits for a clean stop.
    fn stop(mut self) -> String {
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
fn post(address: &str, path: &str, client: &str) -> Option<u16> {
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
/// existing team under that team's manager, up to `PEOPLE` in all.
fn write_directory(project: &Path) -> BTreeSet<String> {
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
    let mut ids = BTreeSet::new();
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
    for i in 0..PEOPLE - ids.len() {
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
    assert_eq!(ids.len(), PEOPLE);
    fs::write(&path, lines.join("\n") + "\n").unwrap();
    ids
}

fn journal(outbox: &Path) -> Vec<String> {
    fs::read_to_string(outbox.join("journal.log"))
        .unwrap_or_default()
        .lines()
        .map(str::to_owned)
        .collect()
}

/// A delivery file's person and the acknowledgement token in it; None for
/// another file, or one still being written.
fn delivery(path: &Path) -> Option<(String, Option<String>)> {
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
fn delivery_files(outbox: &Path) -> usize {
    fs::read_dir(outbox)
        .unwrap()
        .filter(|e| {
            e.as_ref()
                .is_ok_and(|e| e.file_name().to_string_lossy().ends_with(".json"))
        })
        .count()
}

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
    succeed(&["init", "many"], tmp.path());
    let project = tmp.path().join("many");
    let people = write_directory(&project);
    // One press acknowledges: the briefing's check questions are tested
    // elsewhere.
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
    fs::write(
        &config,
        toml.replace(
            "config = { dir = \"outbox\" }",
            // Paced per serve, so that the second kill lands while sends
            // are still under way however quickly the serve restarts.
            "config = { dir = \"outbox\", journal = true }\nper_second = 80",
        )
        .replacen("\n[store]\n", &format!("\n[store]\nurl = \"{url}\"\n"), 1)
        // The serves stand behind one load balancer, which says whose
        // request it passes on, so each person has their own rate limit.
        .replacen(
            "\n# [server]\n",
            "\n[server]\ntrusted_proxies = [\"127.0.0.1\"]\n",
            1,
        ),
    )
    .unwrap();
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
    println!("took {:.1?}", began.elapsed());
}
