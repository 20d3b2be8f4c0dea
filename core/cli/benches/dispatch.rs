//! Dispatch throughput end to end: a started urgent rollout, due now, queued
//! by the scheduler and drained by the dispatcher (claim, compose and render,
//! send through the real `file` plugin library over the ABI, record), against
//! writing the same messages with `cascade_plugin_file::deliver_to_dir` in a
//! plain loop (no store, no rendering, no ABI), in one run.
//!
//! Run with `cargo bench --bench dispatch`; `CASCADE_BENCH_PEOPLE` sets the
//! number of messages (default 20,000), `CASCADE_BENCH_BATCHES` the batch
//! sizes (e.g. `256,1024`) and `CASCADE_BENCH_ROUNDS` the rounds. Figures go in BENCHMARKS.md.

use cascade::bench::{cpu_by_thread, cpu_by_thread_since, median, process_cpu};
use cascade_engine::delivery::{
    Composer, DispatchSettings, Dispatcher, Rollouts, World, schedule_due,
};
use cascade_engine::engine::Engine;
use cascade_engine::project::{Project, scaffold};
use cascade_model::directory::read_csv;
use cascade_model::rollout::StepKind;
use cascade_plugin_api::{Recipient, SendRequest, SendResult};
use cascade_privacy::PrivacyGuard;
use cascade_store::{ClaimedDelivery, Outbox, SqliteStore, Store};
use chrono::Utc;
use std::fmt::Write as _;
use std::hint::black_box;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

const DEFAULT_PEOPLE: usize = 20_000;
const BATCHES: [u32; 4] = [64, 256, 1024, 4096];
const ROUNDS: usize = 3;
const TEAMS: usize = 200;
const ROLLOUT: &str = "bench-dispatch";

/// `CASCADE_BENCH_BATCHES=256,1024` measures only those batch sizes.
fn batches() -> Vec<u32> {
    std::env::var("CASCADE_BENCH_BATCHES")
        .ok()
        .map(|v| v.split(',').filter_map(|b| b.trim().parse().ok()).collect())
        .filter(|b: &Vec<u32>| !b.is_empty())
        .unwrap_or_else(|| BATCHES.to_vec())
}

/// `CASCADE_BENCH_ROUNDS` sets the rounds (default 3).
fn rounds() -> usize {
    std::env::var("CASCADE_BENCH_ROUNDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .filter(|&r| r > 0)
        .unwrap_or(ROUNDS)
}

fn people_count() -> usize {
    std::env::var("CASCADE_BENCH_PEOPLE")
        .ok()
        .and_then(|v| v.replace('_', "").parse().ok())
        .unwrap_or(DEFAULT_PEOPLE)
}

/// A made-up partnership: 4 agencies, `TEAMS` teams, `people` people.
fn write_directory(dir: &Path, people: usize) {
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
    let _ = std::fs::remove_dir_all(dir);
    std::fs::create_dir_all(dir).unwrap();
    std::fs::write(dir.join("agencies.csv"), agencies).unwrap();
    std::fs::write(dir.join("teams.csv"), teams).unwrap();
    std::fs::write(dir.join("people.csv"), rows).unwrap();
}

/// The example project with a synthetic directory, its `file` channel
/// writing to `outbox`, and an urgent one-wave rollout that started
/// yesterday, with the directory imported.
async fn project(root: &Path, people: usize, outbox: &Path) -> PathBuf {
    scaffold(root).unwrap();
    let config_path = root.join("cascade.toml");
    let config = std::fs::read_to_string(&config_path).unwrap();
    let config = config.replace(
        "config = { dir = \"outbox\" }",
        &format!("config = {{ dir = {:?} }}", outbox.display().to_string()),
    );
    std::fs::write(&config_path, config).unwrap();
    write_directory(&root.join("directory"), people);
    let start = (Utc::now() - chrono::Duration::days(1)).format("%Y-%m-%dT%H:%M:%S");
    let rollout = root.join("rollouts/bench.toml");
    std::fs::write(
        &rollout,
        format!(
            "id = \"{ROLLOUT}\"\nitem = \"7mb-neglect-seeing-the-child\"\nstart = {start}\n\
             urgent = true\nchannels = [\"outbox\"]\nfallback = false\nack_deadline_days = 28\n\
             reminder_days = [7]\nescalation_days = [1]\n\n[audience]\n\n\
             [[waves]]\nname = \"Everyone\"\nafter_days = 0\n"
        ),
    )
    .unwrap();
    let project = Project::open(root).unwrap();
    let store = SqliteStore::open(&project.store_path().to_string_lossy())
        .await
        .unwrap();
    for name in ["agencies.csv", "teams.csv", "people.csv"] {
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

fn json_files(dir: &Path) -> usize {
    std::fs::read_dir(dir)
        .unwrap()
        .filter(|e| {
            e.as_ref()
                .is_ok_and(|e| e.file_name().to_string_lossy().ends_with(".json"))
        })
        .count()
}

/// CPU seconds used by the calling thread so far, from its schedstat.
fn thread_cpu() -> f64 {
    std::fs::read_to_string("/proc/thread-self/schedstat")
        .ok()
        .and_then(|s| s.split_whitespace().next()?.parse::<f64>().ok())
        .map_or(0.0, |ns| ns / 1e9)
}

struct Run {
    schedule: Duration,
    dispatch: Duration,
    /// CPU seconds the process used while dispatching.
    dispatch_cpu: f64,
    delivered: usize,
    /// With `requests`: the same messages, composed outside the engine.
    baseline: Option<(Vec<SendRequest>, f64)>,
}

/// One engine run: plan and start the rollout, then time `schedule_due`
/// once and `dispatch_for` (as `cascade serve` runs it) until nothing is claimed, built as
/// `Engine::serve` builds them.
async fn through_engine(people: usize, batch: u32, requests: bool) -> Run {
    let tmp = tempfile::Builder::new()
        .prefix("cascade-bench-dispatch")
        .tempdir()
        .unwrap();
    let outbox = tmp.path().join("outbox");
    let rollout = project(&tmp.path().join("project"), people, &outbox).await;
    let project = Project::open(&tmp.path().join("project")).unwrap();
    let engine = Engine::open(project, true)
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
    let world = Arc::new(
        World::load(&*engine.store, engine.routes.clone())
            .await
            .unwrap(),
    );
    // The dispatcher's own copy, as a serve has it.
    let shared_world = Arc::new(cascade_engine::delivery::SharedWorld::new(
        World::load(&*engine.store, engine.routes.clone())
            .await
            .unwrap(),
        None,
    ));
    let rollouts = Arc::new(Rollouts::new(
        engine.calendar.clone(),
        engine.project.taxonomy.clone(),
        PrivacyGuard::new(&config.privacy).unwrap(),
    ));
    let composer = Arc::new(Composer {
        renderer: engine.project.renderer().unwrap(),
        taxonomy: engine.project.taxonomy.clone(),
        partnership_name: config.partnership.name.clone(),
        ack_links: engine.ack_links().unwrap(),
        actions: cascade_engine::inbound::ActionKey::new(vec![1; 32]),
        time_zone: engine.calendar.time_zone(),
        bodies: Default::default(),
    });
    let store = engine.store.clone();
    let host = Arc::new(engine.host);
    let dispatcher = Dispatcher::new(
        store.clone(),
        host.clone(),
        rollouts.clone(),
        shared_world,
        composer.clone(),
        DispatchSettings {
            batch,
            ..DispatchSettings::default()
        },
    );

    let t = Instant::now();
    let queued = schedule_due(&*store, &rollouts, &world, Utc::now())
        .await
        .unwrap();
    let schedule = t.elapsed();
    assert_eq!(queued, people);

    let t = Instant::now();
    let cpu = process_cpu();
    let threads = cpu_by_thread();
    let mut delivered = 0;
    // As `cascade serve` dispatches: continuously, the next batch claimed
    // while the current one is still in flight.
    let (_keep, running) = tokio::sync::watch::channel(false);
    loop {
        let claimed = dispatcher
            .dispatch_for(Utc::now, Duration::from_secs(3600), &running)
            .await
            .unwrap();
        if claimed == 0 {
            break;
        }
        delivered += claimed;
    }
    let dispatch = t.elapsed();
    let dispatch_cpu = process_cpu() - cpu;
    println!(
        "  batch {batch}: CPU seconds by thread while dispatching: {}",
        cpu_by_thread_since(&threads)
    );
    for instance in host.instances() {
        instance.stop().await;
    }
    let sent: u64 = store
        .delivery_counts(ROLLOUT)
        .await
        .unwrap()
        .iter()
        .map(|c| c.sent)
        .sum();
    assert_eq!(delivered, people);
    assert_eq!(sent as usize, people, "every row is recorded as sent");
    assert_eq!(json_files(&outbox), people, "every message is a file");

    // The same messages, composed as the dispatcher composes them.
    let mut baseline = None;
    if requests {
        let runtime = rollouts.get(&*store, ROLLOUT).await.unwrap();
        let route = &world.routes["outbox"];
        let t = thread_cpu();
        let requests: Vec<SendRequest> = (0..people)
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
                    channel: "outbox".to_owned(),
                    channel_rank: 0,
                    attempts: 1,
                };
                let (message, actions) = composer
                    .compose(&row, &runtime, &world, route, Utc::now())
                    .unwrap();
                SendRequest {
                    delivery_id: format!("d{}", row.id),
                    idempotency_key: row.idempotency_key,
                    channel: route.kind.clone(),
                    recipient: Recipient {
                        display_name: world.person(&person).unwrap().display_name.clone(),
                        address: world.address(&person, "outbox").unwrap().to_string(),
                        person_id: person,
                    },
                    message,
                    actions,
                    reply: None,
                    list: None,
                    post: None,
                }
            })
            .collect();
        baseline = Some((requests, thread_cpu() - t));
    }
    Run {
        schedule,
        dispatch,
        dispatch_cpu,
        delivered,
        baseline,
    }
}

/// The baseline: the same requests written with the plugin's own write
/// function, one after another, into a fresh folder.
fn direct(requests: &[SendRequest]) -> Duration {
    let dir = tempfile::Builder::new()
        .prefix("cascade-bench-direct")
        .tempdir()
        .unwrap();
    let t = Instant::now();
    for request in requests {
        let result = cascade_plugin_file::deliver_to_dir(dir.path(), black_box(request));
        assert!(matches!(result, SendResult::Delivered { .. }));
    }
    let elapsed = t.elapsed();
    assert_eq!(json_files(dir.path()), requests.len());
    elapsed
}

/// Measurements of one quantity, one per round.
type Samples = Vec<f64>;

fn main() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let people = people_count();
    let n = people as f64;

    let first = runtime.block_on(through_engine(people, 256, true));
    let (requests, compose) = first.baseline.expect("asked for");
    let bytes: usize = requests
        .iter()
        .flat_map(|r| &r.message.parts)
        .flat_map(|p| &p.chunks)
        .map(String::len)
        .sum();
    println!(
        "{people} messages of {} bytes of rendered text on average; composing them all on one thread took {compose:.3} s of CPU ({:.1} µs each)",
        bytes / people,
        compose * 1e6 / n
    );

    let mut direct_rates = Vec::new();
    let mut results: Vec<(u32, Samples, Samples, Samples)> = batches()
        .into_iter()
        .map(|b| (b, Vec::new(), Vec::new(), Vec::new()))
        .collect();
    let rounds = rounds();
    for round in 0..rounds {
        let d = direct(&requests);
        direct_rates.push(n / d.as_secs_f64());
        println!(
            "round {round}: direct deliver_to_dir loop {:.3} s ({:.0}/s)",
            d.as_secs_f64(),
            n / d.as_secs_f64()
        );
        for (batch, dispatch_rates, schedule_times, cpu_per) in &mut results {
            let run = runtime.block_on(through_engine(people, *batch, false));
            assert_eq!(run.delivered, people);
            let rate = n / run.dispatch.as_secs_f64();
            println!(
                "round {round}: batch {batch:>5}: schedule_due {:.3} s, dispatch {:.3} s ({rate:.0}/s), {:.0} µs of CPU a delivery",
                run.schedule.as_secs_f64(),
                run.dispatch.as_secs_f64(),
                run.dispatch_cpu * 1e6 / n,
            );
            cpu_per.push(run.dispatch_cpu * 1e6 / n);
            dispatch_rates.push(rate);
            schedule_times.push(run.schedule.as_secs_f64());
        }
    }

    let direct_rate = median(direct_rates);
    println!("\n{people} deliveries, median of {rounds} rounds");
    println!(
        "{:<34} {:>14} {:>16} {:>12} {:>14}",
        "", "deliveries/s", "incl. schedule/s", "vs direct", "CPU µs each"
    );
    println!(
        "{:<34} {direct_rate:>14.0} {:>16} {:>12}",
        "direct deliver_to_dir loop", "", ""
    );
    for (batch, dispatch_rates, schedule_times, cpu_per) in results {
        let rate = median(dispatch_rates);
        let with_schedule = n / (n / rate + median(schedule_times));
        println!(
            "{:<34} {rate:>14.0} {with_schedule:>16.0} {:>12.3} {:>14.0}",
            format!("engine, batch {batch}"),
            rate / direct_rate,
            median(cpu_per)
        );
    }
}
