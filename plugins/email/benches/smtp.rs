//! Email throughput end to end, against postfix's own load generator, in
//! one run and to the same sink: postfix's `smtp-sink` on loopback.
//!
//! - baseline: `smtp-source` sends N messages of the engine's average
//!   email size over C connections, each kept open for many messages (`-d`).
//! - plugin: the same N emails, composed beforehand, sent through the plugin
//!   host and the real plugin library (lettre's pool of C connections).
//! - engine: a started rollout to N people, scheduled, then dispatched by
//!   the engine's Runner (claim, compose and render, send through the
//!   plugin, record), over C connections.
//!
//! Run with `cargo bench -p cascade-plugin-email --bench smtp`;
//! `CASCADE_BENCH_EMAILS` sets N (default 20,000), `CASCADE_BENCH_CONNECTIONS`
//! sets C (default 8), `CASCADE_BENCH_ROUNDS` the rounds (default 3; the
//! medians are reported, each ratio taken within its own round). Needs smtp-sink and smtp-source
//! (scripts/install-test-deps.sh installs postfix for them; its daemon is
//! never started). Figures go in BENCHMARKS.md.

use cascade::bench::{cpu_by_thread, cpu_by_thread_since, median, process_cpu};
use cascade_engine::delivery::{Composer, DispatchSettings};
use cascade_engine::engine::{Engine, Runner};
use cascade_engine::project::{Project, scaffold};
use cascade_model::directory::read_csv;
use cascade_model::rollout::StepKind;
use cascade_plugin_api::{Recipient, SendRequest, SendResult};
use cascade_plugin_email::{Sender, email};
use cascade_store::{ClaimedDelivery, Outbox, SqliteStore, Store};
use chrono::Utc;
use std::fmt::Write as _;
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

const ROLLOUT: &str = "bench-email";
const TEAMS: usize = 200;

fn setting(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.replace('_', "").parse().ok())
        .unwrap_or(default)
}

/// postfix's smtp-sink on a free loopback port, killed on drop.
struct Sink {
    port: u16,
    child: Child,
}

impl Sink {
    fn start(connections: usize) -> Sink {
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let mut command = Command::new("/usr/sbin/smtp-sink");
        // smtp-sink refuses to run as root without somewhere to drop to.
        if is_root() {
            command.args(["-u", "nobody"]);
        }
        let child = command
            .args(["-m", &(connections * 4).to_string()])
            .arg(format!("127.0.0.1:{port}"))
            .arg("1024")
            .stdout(Stdio::null())
            .spawn()
            .expect("smtp-sink runs: scripts/install-test-deps.sh installs postfix");
        let deadline = Instant::now() + Duration::from_secs(10);
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                Instant::now() < deadline,
                "smtp-sink did not start listening"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        Sink { port, child }
    }
}

impl Drop for Sink {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn is_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .unwrap_or_default()
        .lines()
        .find(|l| l.starts_with("Uid:"))
        .is_some_and(|l| l.split_whitespace().nth(1) == Some("0"))
}

/// smtp-source: `emails` messages of `size` bytes over `connections`
/// sessions, each sending message after message.
fn smtp_source(port: u16, emails: usize, connections: usize, size: usize) -> Duration {
    let t = Instant::now();
    let status = Command::new("/usr/sbin/smtp-source")
        .args(["-d", "-s", &connections.to_string()])
        .args(["-m", &emails.to_string(), "-l", &size.to_string()])
        .args(["-f", "learning@northbridge.example"])
        .args(["-t", "person@agency.example"])
        .args(["-M", "cascade.bench"])
        .arg(format!("127.0.0.1:{port}"))
        .stdout(Stdio::null())
        .status()
        .expect("smtp-source runs: scripts/install-test-deps.sh installs postfix");
    assert!(status.success(), "smtp-source failed: {status}");
    t.elapsed()
}

fn email_config(port: u16, connections: usize) -> String {
    format!(
        "[[channels]]\nname = \"email\"\nplugin = \"email\"\nformats = [\"email-html\", \"email-text\"]\n\
         config = {{ host = \"127.0.0.1\", port = {port}, tls = \"none\", helo_name = \"cascade.bench\", \
         from = \"Northbridge Learning <learning@northbridge.example>\", max_in_flight = {connections} }}\n"
    )
}

/// The demo project with `people` made-up people, an email channel to the
/// sink, and an urgent one-wave rollout that started yesterday.
async fn project(root: &Path, people: usize, port: u16, connections: usize) -> PathBuf {
    scaffold(root).unwrap();
    let config_path = root.join("cascade.toml");
    let config = std::fs::read_to_string(&config_path).unwrap();
    let base = &config[..config.find("[[channels]]").unwrap()];
    std::fs::write(
        &config_path,
        format!("{base}{}", email_config(port, connections)),
    )
    .unwrap();

    let dir = root.join("directory");
    let mut agencies = String::from("agency_id,name,kind\n");
    for a in 0..4 {
        writeln!(agencies, "ag-{a},Agency {a},local-authority").unwrap();
    }
    let mut teams = String::from("team_id,agency_id,name\n");
    for t in 0..TEAMS {
        writeln!(teams, "t-{t:03},ag-{},Team {t}", t % 4).unwrap();
    }
    let mut rows =
        String::from("person_id,display_name,email,agency_id,team_id,roles,manager_id,time_zone\n");
    for i in 0..people {
        let t = i % TEAMS;
        writeln!(
            rows,
            "p-{i:07},Person {i},person{i}@agency{}.example,ag-{},t-{t:03},practitioner,,",
            t % 4,
            t % 4
        )
        .unwrap();
    }
    std::fs::write(dir.join("agencies.csv"), agencies).unwrap();
    std::fs::write(dir.join("teams.csv"), teams).unwrap();
    std::fs::write(dir.join("people.csv"), rows).unwrap();
    std::fs::write(dir.join("champions.csv"), "person_id,theme,teams\n").unwrap();

    let start = (Utc::now() - chrono::Duration::days(1)).format("%Y-%m-%dT%H:%M:%S");
    let rollout = root.join("rollouts/bench.toml");
    std::fs::write(
        &rollout,
        format!(
            "id = \"{ROLLOUT}\"\nitem = \"7mb-neglect-seeing-the-child\"\nstart = {start}\n\
             urgent = true\nchannels = [\"email\"]\nfallback = false\nack_deadline_days = 28\n\n\
             [audience]\n\n[[waves]]\nname = \"Everyone\"\nafter_days = 0\n"
        ),
    )
    .unwrap();
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
    store.close().await;
    rollout
}

/// The engine over a fresh project, its rollout started, and a composer
/// built as the engine builds its own.
async fn started(
    people: usize,
    port: u16,
    connections: usize,
) -> (tempfile::TempDir, Runner<SqliteStore>, Composer) {
    let tmp = tempfile::Builder::new()
        .prefix("cascade-bench-email")
        .tempdir()
        .unwrap();
    let rollout = project(tmp.path(), people, port, connections).await;
    let engine = Engine::open(Project::open(tmp.path()).unwrap(), true)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let now = Utc::now();
    let planned = engine
        .plan(&rollout, now)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    engine
        .start(&planned, now)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let config = &engine.project.config;
    let composer = Composer {
        renderer: engine.project.renderer().unwrap(),
        taxonomy: engine.project.taxonomy.clone(),
        partnership_name: config.partnership.name.clone(),
        ack_links: engine.ack_links().unwrap(),
        actions: cascade_engine::inbound::ActionKey::new(vec![1; 32]),
        time_zone: engine.calendar.time_zone(),
        bodies: Default::default(),
    };
    let defaults = DispatchSettings::default();
    let settings = DispatchSettings {
        batch: setting("CASCADE_BENCH_BATCH", defaults.batch as usize) as u32,
        default_in_flight: setting("CASCADE_BENCH_IN_FLIGHT", defaults.default_in_flight),
        ..defaults
    };
    let runner = engine
        .runner(settings)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    (tmp, runner, composer)
}

/// The requests the dispatcher would send, composed as it composes them.
async fn requests(
    runner: &Runner<SqliteStore>,
    composer: &Composer,
    people: usize,
) -> Vec<SendRequest> {
    let rollout = runner
        .rollouts()
        .get(runner.store().as_ref(), ROLLOUT)
        .await
        .unwrap();
    let route = &runner.world().routes["email"];
    (0..people)
        .map(|i| {
            let person = format!("p-{i:07}");
            let row = ClaimedDelivery {
                id: i as i64 + 1,
                idempotency_key: format!("{ROLLOUT}/{person}/initial-1/{person}/0"),
                rollout_id: ROLLOUT.to_owned(),
                person_id: person.clone(),
                recipient_id: person.clone(),
                wave: 0,
                step_kind: StepKind::Initial,
                step_number: 1,
                channel: "email".to_owned(),
                channel_rank: 0,
                attempts: 1,
            };
            let (message, actions) = composer
                .compose(&row, &rollout, &runner.world(), route, Utc::now())
                .unwrap();
            SendRequest {
                delivery_id: format!("d{}", row.id),
                idempotency_key: row.idempotency_key,
                channel: route.kind.clone(),
                recipient: Recipient {
                    display_name: runner.world().person(&person).unwrap().display_name.clone(),
                    address: runner
                        .world()
                        .address(&person, "email")
                        .unwrap()
                        .to_string(),
                    person_id: person,
                },
                message,
                actions,
                reply: None,
                list: None,
                post: None,
            }
        })
        .collect()
}

/// The pre-composed requests through the host and plugin, `in_flight` at
/// a time, as the dispatcher keeps them.
async fn through_plugin(
    runner: &Runner<SqliteStore>,
    requests: Vec<SendRequest>,
    in_flight: usize,
) -> Duration {
    let host = Arc::clone(runner.host());
    let requests = Arc::new(requests);
    let next = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let t = Instant::now();
    let workers: Vec<_> = (0..in_flight)
        .map(|_| {
            let (host, requests, next) = (host.clone(), requests.clone(), next.clone());
            tokio::spawn(async move {
                loop {
                    let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    let Some(request) = requests.get(i) else {
                        return;
                    };
                    let result = host.send("email", request).await.unwrap();
                    assert!(matches!(result, SendResult::Delivered { .. }), "{result:?}");
                }
            })
        })
        .collect();
    for worker in workers {
        worker.await.unwrap();
    }
    t.elapsed()
}

struct EngineRun {
    schedule: Duration,
    dispatch: Duration,
}

async fn through_engine(runner: &Runner<SqliteStore>, people: usize) -> EngineRun {
    let t = Instant::now();
    let queued = runner.schedule(Utc::now()).await.unwrap();
    let schedule = t.elapsed();
    assert_eq!(queued, people);
    let t = Instant::now();
    let (_keep, running) = tokio::sync::watch::channel(false);
    while runner
        .dispatch_for(Duration::from_secs(3600), &running)
        .await
        .unwrap()
        > 0
    {}
    let dispatch = t.elapsed();
    let sent: u64 = runner
        .store()
        .delivery_counts(ROLLOUT)
        .await
        .unwrap()
        .iter()
        .map(|c| c.sent)
        .sum();
    assert_eq!(sent as usize, people, "every row is recorded as sent");
    EngineRun { schedule, dispatch }
}

/// One round's rates, emails a second.
struct Round {
    source: f64,
    plugin: f64,
    engine: f64,
}

fn main() {
    let emails = setting("CASCADE_BENCH_EMAILS", 20_000);
    let connections = setting("CASCADE_BENCH_CONNECTIONS", 8);
    let rounds = setting("CASCADE_BENCH_ROUNDS", 3).max(1);
    let n = emails as f64;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let sink = Sink::start(connections);
    let mut results = Vec::new();
    for round in 1..=rounds {
        // The engine's emails, to know their size and to time the plugin alone.
        let (_plugin_dir, plugin_runner, composer) =
            runtime.block_on(started(emails, sink.port, connections));
        let t = Instant::now();
        let requests = runtime.block_on(requests(&plugin_runner, &composer, emails));
        let compose = t.elapsed();
        let sender = Sender {
            from: "Northbridge Learning <learning@northbridge.example>"
                .parse()
                .unwrap(),
            reply_to: None,
            message_id_domain: "northbridge.example".to_owned(),
        };
        let t = Instant::now();
        let size = requests
            .iter()
            .map(|r| email(r, &sender).unwrap().formatted().len())
            .sum::<usize>()
            / emails;
        let format = t.elapsed();
        println!(
            "round {round}: {emails} emails of {size} bytes on average (a 7-minute briefing, HTML and text), {connections} connections, to smtp-sink on 127.0.0.1:{}",
            sink.port
        );
        println!(
            "  on one thread: composing (rendering both formats) {:.0} µs an email, building the MIME message {:.0} µs",
            compose.as_secs_f64() * 1e6 / n,
            format.as_secs_f64() * 1e6 / n
        );

        let source = smtp_source(sink.port, emails, connections, size);
        let source_rate = n / source.as_secs_f64();
        println!(
            "  smtp-source -d -s {connections} -m {emails} -l {size}: {:.3} s ({source_rate:.0}/s)",
            source.as_secs_f64()
        );

        let cpu = process_cpu();
        let threads = cpu_by_thread();
        let plugin = runtime.block_on(through_plugin(&plugin_runner, requests, 64));
        let plugin_cpu = process_cpu() - cpu;
        println!(
            "    CPU seconds by thread: {}",
            cpu_by_thread_since(&threads)
        );
        runtime.block_on(plugin_runner.stop());
        let plugin_rate = n / plugin.as_secs_f64();
        println!(
            "  plugin through the host (composed beforehand, 64 in flight): {:.3} s ({plugin_rate:.0}/s), {:.0} µs of CPU an email",
            plugin.as_secs_f64(),
            plugin_cpu * 1e6 / n
        );

        let (_engine_dir, engine_runner, _) =
            runtime.block_on(started(emails, sink.port, connections));
        let cpu = process_cpu();
        let threads = cpu_by_thread();
        let run = runtime.block_on(through_engine(&engine_runner, emails));
        let engine_cpu = process_cpu() - cpu;
        println!(
            "    CPU seconds by thread (schedule included): {}",
            cpu_by_thread_since(&threads)
        );
        runtime.block_on(engine_runner.stop());
        let engine_rate = n / run.dispatch.as_secs_f64();
        println!(
            "  engine: schedule_due {:.3} s, dispatch (claim, compose, send, record) {:.3} s ({engine_rate:.0}/s), {:.0} µs of CPU an email (schedule included)",
            run.schedule.as_secs_f64(),
            run.dispatch.as_secs_f64(),
            engine_cpu * 1e6 / n
        );
        println!(
            "  ratios to smtp-source: plugin {:.3}, engine {:.3}",
            plugin_rate / source_rate,
            engine_rate / source_rate
        );
        results.push(Round {
            source: source_rate,
            plugin: plugin_rate,
            engine: engine_rate,
        });
    }

    let ratio = |of: fn(&Round) -> f64| median(results.iter().map(|r| of(r) / r.source).collect());
    let rate = |of: fn(&Round) -> f64| median(results.iter().map(of).collect());
    println!("\nmedians of {rounds} rounds (each ratio against smtp-source in the same round)");
    println!("{:<48} {:>10} {:>14}", "", "emails/s", "vs smtp-source");
    println!(
        "{:<48} {:>10.0} {:>14.3}",
        "smtp-source",
        rate(|r| r.source),
        1.0
    );
    println!(
        "{:<48} {:>10.0} {:>14.3}",
        "plugin via host (composed beforehand)",
        rate(|r| r.plugin),
        ratio(|r| r.plugin)
    );
    println!(
        "{:<48} {:>10.0} {:>14.3}",
        "engine dispatch (claim, compose, send, record)",
        rate(|r| r.engine),
        ratio(|r| r.engine)
    );
}
