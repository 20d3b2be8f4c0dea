//! Issue 18: dispatch through the `file` plugin by 1, 2 and 4 `cascade
//! serve` processes sharing one PostgreSQL database, with the CPU each
//! delivery costs cascade and PostgreSQL, and what PostgreSQL's backends
//! wait on.
//!
//! One project (`cascade init`, a generated directory of
//! `CASCADE_BENCH_PEOPLE` people, default 20,000) and one PostgreSQL server
//! of the bench's own on loopback with PostgreSQL's default durability
//! (`TestPostgres::durable`: `fsync` and `synchronous_commit` on; its data
//! under `TMPDIR`, so leave `TMPDIR` on a disk). Each run takes a fresh
//! database: `[store] url` names it, `cascade import` writes the
//! directory and `cascade rollout start` an urgent one-wave rollout of
//! everyone through the scaffolded `outbox` channel (the `file` plugin),
//! started yesterday so that every step is due. Then N `cascade serve`
//! processes (the release binary) start at once and deliver it; the
//! project, and so the delivered files, are in `/dev/shm` where it exists
//! (`CASCADE_BENCH_DIR` to put them elsewhere), as for the SQLite dispatch
//! bench.
//!
//! Measured from the first sent row to the last:
//! - throughput: deliveries recorded as sent a second, from the first
//!   `sent_at` to the last;
//! - CPU a delivery: cascade's (utime + stime of the serve processes from
//!   `/proc/<pid>/stat`) and PostgreSQL's (the postmaster and its
//!   children, alive ones from their own `stat`, ended ones from the
//!   postmaster's `cutime`, less the bench's own probe connection), read when `count(*) ... WHERE
//!   state = 'sent'` (polled every 100 ms) first shows a sent row and when
//!   it reaches everyone, before the serves are stopped, so start-up and
//!   shutdown are left out;
//! - wait events: `pg_stat_activity` of cascade's backends
//!   (`application_name = 'cascade'`) sampled every 50 ms, the share of
//!   active backends per `wait_event_type:wait_event` (none: on CPU), the
//!   statements behind any `Lock` or `LWLock` wait, and how often a
//!   backend sat idle inside a transaction (waiting on its serve while
//!   holding that transaction's locks);
//! - the evidence chain's lock: in how many snapshots a backend held the
//!   advisory lock (`pg_locks`), and what its holder was doing. A
//!   recording of sends does not take it (it lists the sends in
//!   `chain_pending`); the linking of listed sends after each recording
//!   does, many recordings' sends at once when several wait. So the lock
//!   caps dispatch only if the list grows without bound: sampled with the
//!   sent count, the sends waiting to be linked (mean and most, and the
//!   most as milliseconds of sending at the run's rate).
//!
//! After the runs, the one step that runs in one backend at a time is
//! measured alone, once a round: the linking of listed sends into the
//! evidence chain (`Outbox::settle` over a list of every person's send),
//! against one `INSERT ... SELECT` of as many rows of the chain's shape
//! into a copy of its table, in the same database. Its rate is what all
//! serves together could record before that step caps them.
//!
//! Every run checks that every person's delivery is recorded as sent and
//! written as a file, then drops its database. Rounds alternate the order of the serve counts
//! (1, 2, 4, then 4, 2, 1); medians per count are printed with what they
//! mean for machines added: a 2-core machine of serves adds 2 s of CPU a
//! second divided by cascade's CPU a delivery, and PostgreSQL on 2 cores
//! of its own caps at 2 s divided by its CPU a delivery.
//!
//! `cargo bench -p cascade --bench pg_dispatch`; `CASCADE_BENCH_PEOPLE`,
//! `CASCADE_BENCH_ROUNDS` (default 3, at least 2 advised) and
//! `CASCADE_BENCH_SERVES` (default `1,2,4`). Figures go in BENCHMARKS.md.
//!
//! `CASCADE_BENCH_ROW_TRIGGERS=1` runs every serve count twice a round:
//! once with the schema as migrated (the outbox's totals and report stamps
//! kept per statement) and once with the per-row triggers of the first
//! schema put back on that run's database (`pg_row_triggers.sql`), the
//! two alternating, so one run compares them.

use cascade::bench::{ProcessCpu, children_cpu, cpu_of, env_number, median, write_directory};
use cascade_store::pg::test_server::TestPostgres;
use cascade_store::pg::{PgProbe, ProbedBackend};
use std::collections::BTreeMap;
use std::fs;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const DEFAULT_PEOPLE: usize = 20_000;
const DEFAULT_ROUNDS: usize = 3;
const DEFAULT_SERVES: [usize; 3] = [1, 2, 4];
const ROLLOUT: &str = "bench-pg-dispatch";
/// How often `pg_stat_activity` is sampled; the sent count every second
/// sample.
const SAMPLE_EVERY: Duration = Duration::from_millis(50);
/// How long one run may take before the bench gives up.
const RUN_LIMIT: Duration = Duration::from_secs(900);

fn serve_counts() -> Vec<usize> {
    std::env::var("CASCADE_BENCH_SERVES")
        .ok()
        .map(|v| v.split(',').filter_map(|n| n.trim().parse().ok()).collect())
        .filter(|n: &Vec<usize>| !n.is_empty() && !n.contains(&0))
        .unwrap_or_else(|| DEFAULT_SERVES.to_vec())
}

fn cascade(args: &[&str], cwd: &Path) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_cascade"))
        .args(args)
        .current_dir(cwd)
        .output()
        .expect("the cascade binary runs");
    let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
    assert!(
        out.status.success(),
        "cascade {} failed:\n{}\n{}",
        args.join(" "),
        text(&out.stdout),
        text(&out.stderr)
    );
    text(&out.stdout)
}

fn load() -> String {
    fs::read_to_string("/proc/loadavg")
        .unwrap_or_default()
        .split_whitespace()
        .take(3)
        .collect::<Vec<_>>()
        .join(" ")
}

/// PostgreSQL's CPU seconds so far: cascade's live backends, and
/// everything else (the postmaster, its background processes, children
/// that ended), less the probe's backend.
#[derive(Debug, Clone, Copy, Default)]
struct PgCpu {
    backends: f64,
    rest: f64,
}

impl PgCpu {
    fn read(postmaster: u32, probe: u32) -> PgCpu {
        let pm = cpu_of(postmaster).unwrap_or_default();
        let mut cpu = PgCpu {
            backends: 0.0,
            rest: pm.own + pm.ended_children,
        };
        for (pid, ProcessCpu { own, .. }) in children_cpu(postmaster) {
            if pid == probe {
                continue;
            }
            // Backends show "postgres: <user> <database> <client> <what>".
            let title = fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
            if title.starts_with(b"postgres: cascade ") {
                cpu.backends += own;
            } else {
                cpu.rest += own;
            }
        }
        cpu
    }

    fn total(&self) -> f64 {
        self.backends + self.rest
    }

    fn since(&self, before: &PgCpu) -> PgCpu {
        PgCpu {
            backends: self.backends - before.backends,
            rest: self.rest - before.rest,
        }
    }
}

fn serves_cpu(serves: &[Serve]) -> f64 {
    serves
        .iter()
        .map(|s| cpu_of(s.0.id()).map_or(0.0, |c| c.own))
        .sum()
}

/// What `pg_stat_activity` showed over a run (counts of snapshots and of
/// backends seen; fractional once runs are merged, each run weighing the
/// same).
#[derive(Debug, Default)]
struct Waits {
    snapshots: f64,
    /// Active backends seen, by `type:event` ("CPU" when none).
    active: BTreeMap<String, f64>,
    /// Backends seen idle inside a transaction.
    idle_in_transaction: f64,
    /// The statements of backends seen in a Lock or LWLock wait, by wait
    /// and statement.
    lock_statements: BTreeMap<(String, String), u64>,
    /// Snapshots in which a backend held the evidence chain's lock, by
    /// what that backend was doing.
    chain_held: BTreeMap<String, f64>,
}

impl Waits {
    fn add(&mut self, backends: &[ProbedBackend]) {
        self.snapshots += 1.0;
        if let Some(b) = backends.iter().find(|b| b.holds_chain_lock) {
            let doing = if b.state != "active" {
                "idle in transaction".to_owned()
            } else {
                match (&b.wait_event_type, &b.wait_event) {
                    (Some(t), Some(e)) => format!("{t}:{e}"),
                    (Some(t), None) => t.clone(),
                    _ => "CPU".to_owned(),
                }
            };
            *self.chain_held.entry(doing).or_default() += 1.0;
        }
        for b in backends {
            if b.state != "active" {
                self.idle_in_transaction += 1.0;
                continue;
            }
            let wait = match (&b.wait_event_type, &b.wait_event) {
                (Some(t), Some(e)) => format!("{t}:{e}"),
                (Some(t), None) => t.clone(),
                _ => "CPU".to_owned(),
            };
            if matches!(b.wait_event_type.as_deref(), Some("Lock" | "LWLock")) {
                let statement: String = b
                    .query
                    .split_whitespace()
                    .collect::<Vec<_>>()
                    .join(" ")
                    .chars()
                    .take(110)
                    .collect();
                *self
                    .lock_statements
                    .entry((wait.clone(), statement))
                    .or_default() += 1;
            }
            *self.active.entry(wait).or_default() += 1.0;
        }
    }

    /// Adds another run's samples as if it had taken 1,000 snapshots, so
    /// that a run slowed down by the machine does not outweigh the others.
    fn merge(&mut self, other: &Waits) {
        let scale = 1000.0 / other.snapshots.max(1.0);
        self.snapshots += other.snapshots * scale;
        self.idle_in_transaction += other.idle_in_transaction * scale;
        for (k, n) in &other.active {
            *self.active.entry(k.clone()).or_default() += n * scale;
        }
        for (k, n) in &other.lock_statements {
            *self.lock_statements.entry(k.clone()).or_default() += n;
        }
        for (k, n) in &other.chain_held {
            *self.chain_held.entry(k.clone()).or_default() += n * scale;
        }
    }

    /// The share of snapshots in which the chain's lock was held.
    fn chain_share(&self) -> f64 {
        self.chain_held.values().sum::<f64>() / self.snapshots.max(1.0)
    }

    fn active_total(&self) -> f64 {
        self.active.values().sum()
    }

    /// Share of active samples in Lock or LWLock waits.
    fn lock_share(&self) -> f64 {
        // A fold from +0.0: an empty f64 sum is -0.0.
        let locked = self
            .active
            .iter()
            .filter(|(k, _)| k.starts_with("Lock:") || k.starts_with("LWLock:"))
            .fold(0.0, |sum, (_, n)| sum + n);
        locked / self.active_total().max(1.0)
    }

    fn describe(&self) -> String {
        let total = self.active_total().max(1.0);
        let mut shares: Vec<(&String, &f64)> = self.active.iter().collect();
        shares.sort_by(|a, b| b.1.total_cmp(a.1));
        let mut text = format!(
            "{:.0} snapshots, {:.2} active backends a snapshot on average, {:.2} idle in a transaction; of the active: ",
            self.snapshots,
            self.active_total() / self.snapshots.max(1.0),
            self.idle_in_transaction / self.snapshots.max(1.0),
        );
        text.push_str(
            &shares
                .iter()
                .map(|(k, n)| format!("{k} {:.1}%", **n * 100.0 / total))
                .collect::<Vec<_>>()
                .join(", "),
        );
        text.push_str(&format!(
            "; Lock and LWLock waits {:.1}%",
            self.lock_share() * 100.0
        ));
        let held = self.chain_held.values().sum::<f64>().max(1.0);
        let mut holder: Vec<(&String, &f64)> = self.chain_held.iter().collect();
        holder.sort_by(|a, b| b.1.total_cmp(a.1));
        text.push_str(&format!(
            "; the chain's lock held in {:.1}% of snapshots, its holder: {}",
            self.chain_share() * 100.0,
            holder
                .iter()
                .map(|(k, n)| format!("{k} {:.0}%", **n * 100.0 / held))
                .collect::<Vec<_>>()
                .join(", ")
        ));
        text
    }
}

struct Run {
    serves: usize,
    /// `statement` (as migrated) or `row` (the first schema's triggers).
    triggers: &'static str,
    rate: f64,
    cascade_us: f64,
    pg: PgCpu,
    pg_us: f64,
    waits: Waits,
    /// Sends waiting to be linked into the evidence chain, sampled with
    /// the sent count: mean and most.
    backlog_mean: f64,
    backlog_max: u64,
}

/// A running `cascade serve`, killed if the bench panics.
struct Serve(Child);

impl Drop for Serve {
    fn drop(&mut self) {
        if let Ok(None) = self.0.try_wait() {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
}

fn spawn_serve(project: &Path, log: &Path) -> Serve {
    let mut child = Command::new(env!("CARGO_BIN_EXE_cascade"))
        .args(["serve", "--project"])
        .arg(project)
        .args(["--listen", "127.0.0.1:0"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(fs::File::create(log).unwrap())
        .spawn()
        .expect("cascade serve starts");
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    // Drained, so that the serve never blocks on a full pipe.
    std::thread::spawn(move || {
        let mut line = String::new();
        while stdout.read_line(&mut line).is_ok_and(|n| n > 0) {
            line.clear();
        }
    });
    Serve(child)
}

/// SIGTERM to every serve, then waits for each to stop (SIGKILL after a
/// minute).
fn stop(serves: Vec<Serve>) {
    for s in &serves {
        // SAFETY: kill(2) on a child we own and have not reaped.
        unsafe {
            libc::kill(s.0.id() as libc::pid_t, libc::SIGTERM);
        }
    }
    let deadline = Instant::now() + Duration::from_secs(60);
    for mut s in serves {
        while s.0.try_wait().unwrap().is_none() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(50));
        }
        // Drop kills it if it is still running.
    }
}

struct Setup<'a> {
    server: &'a TestPostgres,
    postmaster: u32,
    project: &'a Path,
    toml: &'a str,
    rollout: &'a Path,
    people: usize,
}

/// A new database named in the project's `cascade.toml`, the directory
/// imported and the rollout started (every member due, nothing queued
/// yet): its URL, and how long the import and start took.
async fn prepare(setup: &Setup<'_>) -> (String, Duration) {
    let project = setup.project;
    let url = setup.server.new_database().await.unwrap();
    fs::write(
        project.join("cascade.toml"),
        setup
            .toml
            .replacen("\n[store]\n", &format!("\n[store]\nurl = \"{url}\"\n"), 1),
    )
    .unwrap();
    let t = Instant::now();
    let p = project.to_str().unwrap();
    let out = cascade(&["import", "--project", p], project);
    assert!(
        out.contains(&format!("people.csv: {} added", setup.people)),
        "{out}"
    );
    let out = cascade(
        &[
            "rollout",
            "start",
            "--project",
            p,
            setup.rollout.to_str().unwrap(),
        ],
        project,
    );
    assert!(
        out.contains(&format!("for {} people", setup.people)),
        "{out}"
    );
    (url, t.elapsed())
}

async fn run(setup: &Setup<'_>, n: usize, triggers: &'static str, label: &str) -> Run {
    let project = setup.project;
    let label = &format!("{label}, {triggers} triggers");
    let outbox = project.join("outbox");
    let _ = fs::remove_dir_all(&outbox);
    let (url, prepared) = prepare(setup).await;
    if triggers == "row" {
        use sqlx::Connection;
        let mut conn = sqlx::PgConnection::connect(&url).await.unwrap();
        sqlx::raw_sql(include_str!("pg_row_triggers.sql"))
            .execute(&mut conn)
            .await
            .unwrap_or_else(|e| panic!("pg_row_triggers.sql: {e}"));
        conn.close().await.unwrap();
    }

    let mut probe = PgProbe::connect(&url).await.unwrap();
    let probe_pid = probe.backend_pid();
    let load_before = load();
    let logs: Vec<PathBuf> = (0..n)
        .map(|k| project.join(format!("serve-{label}-{k}.log")))
        .collect();
    let mut serves: Vec<Serve> = logs.iter().map(|l| spawn_serve(project, l)).collect();
    let began = Instant::now();
    let logs_text = || {
        logs.iter()
            .map(|l| fs::read_to_string(l).unwrap_or_default())
            .collect::<Vec<_>>()
            .join("\n---\n")
    };

    let mut waits = Waits::default();
    let mut backlog: Vec<u64> = Vec::new();
    let mut start: Option<(Instant, u64, f64, PgCpu)> = None;
    let mut tick: u64 = 0;
    let mut next = tokio::time::Instant::now();
    let (ended, sent_end, cascade_end, pg_end) = loop {
        if start.is_some() {
            waits.add(&probe.backends("cascade").await.unwrap());
        }
        if tick.is_multiple_of(2) {
            if start.is_some() {
                backlog.push(probe.waiting_to_link().await.unwrap());
            }
            let sent = probe.sent().await.unwrap();
            if sent > 0 && start.is_none() {
                start = Some((
                    Instant::now(),
                    sent,
                    serves_cpu(&serves),
                    PgCpu::read(setup.postmaster, probe_pid),
                ));
            }
            if sent >= setup.people as u64 {
                // Read before the serves stop: their backends end with them.
                break (
                    Instant::now(),
                    sent,
                    serves_cpu(&serves),
                    PgCpu::read(setup.postmaster, probe_pid),
                );
            }
        }
        for s in &mut serves {
            if let Some(status) = s.0.try_wait().unwrap() {
                panic!("a serve stopped by itself ({status}):\n{}", logs_text());
            }
        }
        assert!(
            began.elapsed() < RUN_LIMIT,
            "not everyone was sent to within {RUN_LIMIT:?}:\n{}",
            logs_text()
        );
        tick += 1;
        next += SAMPLE_EVERY;
        tokio::time::sleep_until(next).await;
    };
    let load_after = load();
    stop(serves);
    let (started, sent_start, cascade_start, pg_start) = start.expect("a sent row was seen");

    let rows = probe.sent_rows().await.unwrap();
    probe.close().await;
    assert_eq!(rows.count, setup.people as u64, "every delivery sent once");
    let files = fs::read_dir(&outbox)
        .unwrap()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().ends_with(".json"))
        .count();
    assert_eq!(files, setup.people, "every delivery written as a file");
    setup.server.drop_database(&url).await.unwrap();

    let span_ms = (rows.last_at.unwrap() - rows.first_at.unwrap()).max(1);
    let rate = (rows.count - 1) as f64 * 1000.0 / span_ms as f64;
    let window = ended - started;
    let delivered = (sent_end - sent_start).max(1) as f64;
    let cascade_us = (cascade_end - cascade_start) * 1e6 / delivered;
    let pg = pg_end.since(&pg_start);
    let pg_us = pg.total() * 1e6 / delivered;
    let shares: Vec<String> = rows.by_owner.iter().map(|(_, c)| c.to_string()).collect();
    println!(
        "{label}: {n} serve(s): {rate:.0} deliveries/s (first to last sent_at {:.2} s; polled {:.0}/s over {:.2} s); \
         CPU a delivery: cascade {cascade_us:.0} µs, PostgreSQL {pg_us:.0} µs (its backends {:.0}, the rest {:.0}), \
         {:.2} of 2 cores busy; sent by each serve: {}; setup {:.1} s; load {load_before} -> {load_after}",
        span_ms as f64 / 1000.0,
        delivered / window.as_secs_f64(),
        window.as_secs_f64(),
        pg.backends * 1e6 / delivered,
        pg.rest * 1e6 / delivered,
        (cascade_end - cascade_start + pg.total()) / window.as_secs_f64() / 2.0,
        shares.join(" + "),
        prepared.as_secs_f64(),
    );
    println!("    waits: {}", waits.describe());
    let held = waits.chain_share();
    let backlog_max = backlog.iter().copied().max().unwrap_or(0);
    let backlog_mean = backlog.iter().sum::<u64>() as f64 / backlog.len().max(1) as f64;
    println!(
        "    {} recording transactions (distinct serve and sent_at), {:.0} rows each; the chain's lock (taken by the linking of listed sends, not by recordings) held {:.0}% of the time; sends waiting to be linked: {backlog_mean:.0} on average, at most {backlog_max} ({:.0} ms of sending at this rate)",
        rows.groups,
        rows.count as f64 / rows.groups.max(1) as f64,
        held * 100.0,
        backlog_max as f64 * 1000.0 / rate.max(1.0),
    );
    for ((wait, statement), count) in &waits.lock_statements {
        println!("    {wait} x{count}: {statement}");
    }
    Run {
        serves: n,
        triggers,
        rate,
        cascade_us,
        pg,
        pg_us,
        waits,
        backlog_mean,
        backlog_max,
    }
}

/// The one step of dispatch that runs in one backend at a time: the
/// linking of listed sends into the evidence chain. A database is set up
/// as for a run, a sent delivery to every member inserted and listed by
/// SQL, then
/// `Outbox::settle` links them all (timed); the baseline, in the same
/// database, is one `INSERT ... SELECT` of as many rows of the chain's
/// shape into a copy of its table with its indexes. Returns (links a
/// second, baseline rows a second).
async fn link_rate(setup: &Setup<'_>) -> (f64, f64) {
    use cascade_store::Outbox;
    use sqlx::Connection;
    let (url, _) = prepare(setup).await;
    let mut conn = sqlx::PgConnection::connect(&url).await.unwrap();
    sqlx::raw_sql(
        "INSERT INTO outbox (idempotency_key, rollout_id, person_id, recipient_id, wave, step_kind,
                             step_number, channel, channel_rank, state, due_at, sent_at, updated_at,
                             lease_owner)
         SELECT rollout_id || '/' || person_id || '/initial', rollout_id, person_id, person_id, wave,
                'initial', 1, 'outbox', 0, 'sent', 1796000000000, 1796000000000, 1796000000000, 'bench'
         FROM rollout_members ORDER BY person_id;
         CREATE TABLE link_baseline (LIKE evidence_chain INCLUDING ALL);
         CHECKPOINT;",
    )
    .execute(&mut conn)
    .await
    .unwrap();
    let t = Instant::now();
    let raw = sqlx::query(
        "INSERT INTO link_baseline (seq, kind, ref, at, content, personal, prev, hash)
         SELECT id, 'delivery', id::text, sent_at, md5(id::text) || md5(rollout_id),
                md5(person_id) || md5(recipient_id), md5(sent_at::text) || md5(channel),
                md5(id::text || 'h') || md5(person_id || 'h')
         FROM outbox o ORDER BY o.id",
    )
    .execute(&mut conn)
    .await
    .unwrap()
    .rows_affected();
    let raw_s = t.elapsed().as_secs_f64();
    sqlx::raw_sql(
        "INSERT INTO chain_pending (outbox_id) SELECT id FROM outbox ORDER BY id; CHECKPOINT;",
    )
    .execute(&mut conn)
    .await
    .unwrap();
    let store = cascade_store::pg::PgStore::connect(&cascade_store::pg::PgSettings::new(&url))
        .await
        .unwrap();
    let t = Instant::now();
    let linked = store.settle().await.unwrap();
    let link_s = t.elapsed().as_secs_f64();
    assert_eq!(linked, raw, "every listed send linked");
    store.close().await;
    conn.close().await.unwrap();
    setup.server.drop_database(&url).await.unwrap();
    (linked as f64 / link_s, raw as f64 / raw_s)
}

fn main() {
    let people = env_number("CASCADE_BENCH_PEOPLE", DEFAULT_PEOPLE);
    let rounds = env_number("CASCADE_BENCH_ROUNDS", DEFAULT_ROUNDS).max(1);
    let counts = serve_counts();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let server = TestPostgres::durable().unwrap_or_else(|e| panic!("{e}"));
    let postmaster: u32 = fs::read_to_string(server.dir().join("data/postmaster.pid"))
        .unwrap()
        .lines()
        .next()
        .and_then(|l| l.trim().parse().ok())
        .expect("the postmaster's pid");

    let base = std::env::var_os("CASCADE_BENCH_DIR")
        .map(PathBuf::from)
        .or_else(|| Some(PathBuf::from("/dev/shm")).filter(|p| p.is_dir()))
        .unwrap_or_else(std::env::temp_dir);
    let tmp = tempfile::Builder::new()
        .prefix("cascade-pg-dispatch")
        .tempdir_in(&base)
        .unwrap();
    cascade(&["init", "bench"], tmp.path());
    let project = tmp.path().join("bench");
    write_directory(&project.join("directory"), people, 20, 50);
    let toml = fs::read_to_string(project.join("cascade.toml")).unwrap();
    assert!(toml.contains("\n[store]\n"), "{toml}");
    let rollout = cascade::bench::write_urgent_rollout(&project, "bench-pg-dispatch", ROLLOUT);
    let setup = Setup {
        server: &server,
        postmaster,
        project: &project,
        toml: &toml,
        rollout: &rollout,
        people,
    };
    println!(
        "{people} people, serves {counts:?}, {rounds} rounds; PostgreSQL (durable) in {}, project in {}; load {}",
        server.dir().display(),
        project.display(),
        load()
    );

    let variants: &[&'static str] = if env_number("CASCADE_BENCH_ROW_TRIGGERS", 0) == 1 {
        &["statement", "row"]
    } else {
        &["statement"]
    };
    let mut runs: Vec<Run> = Vec::new();
    runtime.block_on(async {
        for round in 0..rounds {
            let mut order = counts.clone();
            if round % 2 == 1 {
                order.reverse();
            }
            for (i, n) in order.into_iter().enumerate() {
                let mut these = variants.to_vec();
                if (round + i) % 2 == 1 {
                    these.reverse();
                }
                for triggers in these {
                    runs.push(run(&setup, n, triggers, &format!("round {round}")).await);
                }
            }
        }
    });

    let links: Vec<(f64, f64)> = runtime.block_on(async {
        let mut rates = Vec::new();
        for round in 0..rounds {
            let (link, raw) = link_rate(&setup).await;
            println!(
                "round {round}, linking: {people} listed sends linked at {link:.0}/s; one INSERT ... SELECT of as many rows of the chain's shape {raw:.0}/s ({:.2} of it)",
                link / raw
            );
            rates.push((link, raw));
        }
        rates
    });

    println!("\nmedians of {rounds} round(s):");
    println!(
        "serves | deliveries/s | cascade µs CPU a delivery | PostgreSQL µs (backends + rest) | a 2-core machine of serves adds | PostgreSQL on 2 cores caps at | Lock+LWLock share | chain lock held (linking) | sends waiting to be linked: mean, most"
    );
    for (n, triggers) in counts
        .iter()
        .flat_map(|n| variants.iter().map(move |t| (n, *t)))
    {
        let these: Vec<&Run> = runs
            .iter()
            .filter(|r| r.serves == *n && r.triggers == triggers)
            .collect();
        let rate = median(these.iter().map(|r| r.rate).collect());
        let cascade_us = median(these.iter().map(|r| r.cascade_us).collect());
        let pg_us = median(these.iter().map(|r| r.pg_us).collect());
        let mut waits = Waits::default();
        for r in &these {
            waits.merge(&r.waits);
        }
        let backends = median(
            these
                .iter()
                .map(|r| r.pg.backends / r.pg.total().max(1e-9) * r.pg_us)
                .collect(),
        );
        println!(
            "{n} ({triggers} triggers) | {rate:.0} | {cascade_us:.0} | {pg_us:.0} ({backends:.0} + {:.0}) | {:.0}/s | {:.0}/s | {:.1}% | {:.0}% | {:.0}, {:.0}",
            pg_us - backends,
            2e6 / cascade_us,
            2e6 / pg_us,
            median(these.iter().map(|r| r.waits.lock_share()).collect()) * 100.0,
            median(these.iter().map(|r| r.waits.chain_share()).collect()) * 100.0,
            median(these.iter().map(|r| r.backlog_mean).collect()),
            median(these.iter().map(|r| r.backlog_max as f64).collect()),
        );
        println!(
            "    waits, all rounds (each weighing the same): {}",
            waits.describe()
        );
        let mut statements: Vec<_> = waits.lock_statements.iter().collect();
        statements.sort_by(|a, b| b.1.cmp(a.1));
        for ((wait, statement), count) in statements.into_iter().take(8) {
            println!("    {wait} x{count}: {statement}");
        }
    }
    let link = median(links.iter().map(|l| l.0).collect());
    let raw = median(links.iter().map(|l| l.1).collect());
    println!(
        "linking listed sends (one backend at a time): {link:.0}/s, against {raw:.0}/s for one INSERT ... SELECT of rows of the chain's shape ({:.2} of it)",
        median(links.iter().map(|l| l.0 / l.1).collect())
    );
    println!("load {}", load());
}
