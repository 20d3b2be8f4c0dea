//! Server-side render time of the console's busiest pages (home, one
//! rollout, the reports page) for a large partnership: 100,000 people,
//! 200 learning items and 100 started rollouts with their deliveries,
//! dead letters and acknowledgements. Each page is asked for through the
//! console's own router (session lookup, role check, store queries and
//! HTML, no network), signed in as an editor. Baselines measured in the
//! same run: the store queries each page makes, alone, and the cheapest
//! signed-in page (the account page: the session's cost).
//!
//! Run with `cargo bench -p cascade --bench console_pages`;
//! `CASCADE_BENCH_PEOPLE` sets the directory size (default 100,000),
//! `CASCADE_BENCH_REQUESTS` the requests per page (default 30),
//! `CASCADE_BENCH_PAGES_ONLY=1` leaves out the baselines. Each page's
//! first request is also shown alone: the reports pages compute their
//! report then and are given it from the console's cache afterwards, as
//! long as no row it was computed from changes. Figures go in BENCHMARKS.md.

use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use cascade::bench::{median, write_directory};
use cascade_console::{Console, Settings, auth};
use cascade_engine::engine::Engine;
use cascade_engine::project::{Project, scaffold};
use cascade_engine::report::{ReportCache, Selection, compute, generate, load};
use cascade_model::content::load_dir;
use cascade_model::directory::read_csv;
use cascade_model::rollout::Calendar;
use cascade_model::time::millis;
use cascade_store::{
    Accounts, AckMethod, DeliveryOutcome, Evidence, Inspect, NewAcknowledgement, Outbox,
    SqliteStore, Store,
};
use cascade_test_support::outbox::send_first_messages;
use chrono::{DateTime, Duration, TimeZone, Utc};
use std::fmt::Write as _;
use std::path::Path;
use std::sync::Arc;
use std::time::Instant;
use tower::ServiceExt as _;

const DEFAULT_PEOPLE: usize = 100_000;
const ITEMS: usize = 200;
const ROLLOUTS: usize = 100;
const AGENCIES: usize = 20;
const TEAMS_PER_AGENCY: usize = 50;
const DEFAULT_REQUESTS: usize = 30;
/// Runs of a page that takes over a second.
const SLOW_RUNS: usize = 5;
/// The page targets' goal, at the median.
const GOAL_MS: f64 = 50.0;

fn env_number(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.replace('_', "").parse().ok())
        .unwrap_or(default)
}

/// `ITEMS` briefings, copies of the demo's neglect briefing under their
/// own ids and titles, so every page that lists content reads them all.
fn write_items(project: &Project) {
    let dir = project.content_dir();
    let text = std::fs::read_to_string(dir.join("7mb-neglect-seeing-the-child.md")).unwrap();
    for i in 0..ITEMS {
        let copy = text
            .replace(
                "id = \"7mb-neglect-seeing-the-child\"",
                &format!("id = \"bench-item-{i:03}\""),
            )
            .replace(
                "title = \"Neglect: seeing the child\"",
                &format!("title = \"Neglect: seeing the child, part {i}\""),
            );
        assert!(copy.contains(&format!("bench-item-{i:03}")));
        std::fs::write(dir.join(format!("bench-item-{i:03}.md")), copy).unwrap();
    }
}

/// Rollout `r`: one item to one agency (5,000 people of 100,000), one wave,
/// with reminders and a follow-up question.
fn write_rollout(project: &Project, r: usize) -> std::path::PathBuf {
    let text = format!(
        "id = \"bench-r-{r:03}\"\nitem = \"bench-item-{:03}\"\nstart = 2026-11-02T09:30:00\nchannels = [\"outbox\"]\n\
         ack_deadline_days = 28\nreminder_days = [7, 14]\n\n[audience]\nagencies = [\"ag-{:02}\"]\n\n\
         [[waves]]\nname = \"Everyone\"\nafter_days = 0\n\n[[follow_ups]]\nafter_days = 90\n\
         question = \"Have you used this learning in your practice?\"\nanswers = [\"Used it\", \"Not yet\"]\n",
        r * 2 % ITEMS,
        r % AGENCIES
    );
    let path = project.rollouts_dir().join(format!("bench-r-{r:03}.toml"));
    std::fs::write(&path, text).unwrap();
    path
}

/// Every member's first message queued, then sent (one in 50 dead, with a
/// reason), and about three in five acknowledged, through the store's
/// own calls, as the scheduler, dispatcher and links would write them.
async fn deliver(store: &SqliteStore, now: DateTime<Utc>) -> (usize, u64, usize) {
    let at = millis(now);
    let queued = send_first_messages(store, at, "outbox", |c| {
        if c.id % 50 == 0 {
            DeliveryOutcome::Dead {
                reason: "550 mailbox unavailable".to_owned(),
            }
        } else {
            DeliveryOutcome::Sent { provider_id: None }
        }
    })
    .await;
    let mut acknowledged = 0;
    let mut dead = 0;
    for rollout in store.rollouts().await.unwrap() {
        dead += store
            .delivery_counts(&rollout.id)
            .await
            .unwrap()
            .iter()
            .map(|c| c.dead)
            .sum::<u64>();
        let members = store.members(&rollout.id).await.unwrap();
        let acks: Vec<NewAcknowledgement> = members
            .iter()
            .enumerate()
            .filter(|(i, _)| i % 5 < 3)
            .map(|(i, m)| NewAcknowledgement {
                person_id: m.person_id.clone(),
                item_id: rollout.item_id.clone(),
                item_version: rollout.item_version.clone(),
                rollout_id: Some(rollout.id.clone()),
                delivery_id: None,
                channel: "outbox".to_owned(),
                method: AckMethod::Link,
                at: at + 3_600_000 + i as i64,
            })
            .collect();
        store.acknowledge_items(&acks).await.unwrap();
        acknowledged += acks.len();
    }
    (queued, dead, acknowledged)
}

/// An editor's session: the cookie that names it.
async fn editor_session(store: &SqliteStore, now: DateTime<Utc>) -> String {
    let id = store
        .add_console_user(
            &format!("bench-editor-{}", &auth::random_token()[..8]),
            "editor",
            None,
            &auth::sha256_hex(&auth::random_token()),
            millis(now),
            millis(now),
        )
        .await
        .unwrap()
        .expect("a new name");
    let token = auth::random_token();
    store
        .create_console_session(
            &auth::sha256_hex(&token),
            id,
            &auth::random_token(),
            millis(now),
        )
        .await
        .unwrap();
    format!("{}={token}", auth::SESSION_COOKIE)
}

/// Milliseconds of `n` runs of `f`, after two unmeasured ones; only
/// `SLOW_RUNS` when one takes over a second.
async fn time<F, Fut>(n: usize, mut f: F) -> Vec<f64>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = ()>,
{
    let t = Instant::now();
    f().await;
    let n = if t.elapsed().as_secs_f64() > 1.0 {
        n.min(SLOW_RUNS)
    } else {
        n
    };
    f().await;
    let mut times = Vec::with_capacity(n);
    for _ in 0..n {
        let t = Instant::now();
        f().await;
        times.push(t.elapsed().as_secs_f64() * 1000.0);
    }
    times
}

/// The project at `root`: directory, items, rollouts planned, started and
/// delivered, acknowledgements. Not measured.
async fn set_up(root: &Path, people: usize, started: DateTime<Utc>) {
    std::fs::create_dir_all(root.parent().unwrap()).unwrap();
    scaffold(root).unwrap();
    let project = Project::open(root).unwrap();
    let t = Instant::now();
    write_directory(&project.directory_dir(), people, AGENCIES, TEAMS_PER_AGENCY);
    write_items(&project);
    let store = Arc::new(
        SqliteStore::open(&project.store_path().to_string_lossy())
            .await
            .unwrap(),
    );
    for name in ["agencies.csv", "teams.csv", "people.csv", "champions.csv"] {
        let path = project.directory_dir().join(name);
        let file = read_csv(&path).unwrap_or_else(|e| panic!("{}", e[0]));
        store
            .import(&file, &path, &project.taxonomy)
            .await
            .unwrap_or_else(|e| panic!("{e}"));
    }
    let imported = t.elapsed();
    let t = Instant::now();
    let engine = Engine::with_store(Project::open(root).unwrap(), store.clone(), false)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let mut members = 0;
    for r in 0..ROLLOUTS {
        let path = write_rollout(&project, r);
        let planned = engine
            .plan(&path, started)
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        members += engine
            .start(&planned, started)
            .await
            .unwrap_or_else(|e| panic!("{e}"));
    }
    let planned = t.elapsed();
    let t = Instant::now();
    let (queued, dead, acknowledged) = deliver(&store, started).await;
    println!(
        "setup: {people} people imported in {:.1} s; {ROLLOUTS} rollouts of {members} members planned and started in {:.1} s; \
         {queued} deliveries ({dead} dead), {acknowledged} acknowledgements in {:.1} s",
        imported.as_secs_f64(),
        planned.as_secs_f64(),
        t.elapsed().as_secs_f64()
    );
    drop(engine);
    store.close().await;
}

fn main() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(run());
}

async fn run() {
    let people = env_number("CASCADE_BENCH_PEOPLE", DEFAULT_PEOPLE);
    let requests = env_number("CASCADE_BENCH_REQUESTS", DEFAULT_REQUESTS);
    let tmp = tempfile::Builder::new()
        .prefix("cascade-bench-console")
        .tempdir()
        .unwrap();
    // `CASCADE_BENCH_KEEP_DIR`: the project is built there once and kept,
    // and later runs with the same folder measure it again without the
    // set-up (opening it applies any newer migration first).
    let root = match std::env::var_os("CASCADE_BENCH_KEEP_DIR") {
        Some(dir) => std::path::PathBuf::from(dir).join("project"),
        None => tmp.path().join("project"),
    };
    // The rollouts started two weeks before the pages are read.
    let started = Utc.with_ymd_and_hms(2026, 11, 2, 12, 0, 0).unwrap();
    let now = started + Duration::days(14);
    let ready = root.join(".bench-ready");
    if ready.exists() {
        println!("setup: reusing {}", root.display());
    } else {
        if root.exists() {
            std::fs::remove_dir_all(&root).unwrap();
        }
        set_up(&root, people, started).await;
        std::fs::write(&ready, "").unwrap();
    }
    let project = Project::open(&root).unwrap();
    let store = Arc::new(
        SqliteStore::open(&project.store_path().to_string_lossy())
            .await
            .unwrap(),
    );
    let cookie = editor_session(&store, now).await;
    let console = Console::new(
        store.clone(),
        root.clone(),
        Arc::new(move || now),
        Settings::new("http://127.0.0.1", false),
    );
    let router = cascade_console::router(console);
    let one = "bench-r-050";
    let pages = [
        ("account page (session only)", "/console/account".to_owned()),
        ("home", "/console".to_owned()),
        ("one rollout", format!("/console/rollouts/{one}")),
        (
            "reports: every rollout of the last year",
            "/console/reports".to_owned(),
        ),
        (
            "reports: one rollout",
            format!("/console/reports?rollout={one}"),
        ),
    ];
    let mut results = Vec::new();
    for (name, path) in &pages {
        let size = std::cell::Cell::new(0);
        let size = &size;
        let router = &router;
        let cookie = &cookie;
        let get = || {
            let request = Request::get(path.as_str())
                .header(header::COOKIE, cookie.as_str())
                .body(Body::empty())
                .unwrap();
            let router = router.clone();
            async move {
                let response = router.oneshot(request).await.unwrap();
                assert_eq!(response.status(), StatusCode::OK, "GET {path}");
                let body = axum::body::to_bytes(response.into_body(), usize::MAX)
                    .await
                    .unwrap();
                size.set(body.len());
            }
        };
        // The first request alone: a report page computes its report then
        // (later ones are given the kept report until a row changes).
        let t = Instant::now();
        get().await;
        let first = t.elapsed().as_secs_f64() * 1000.0;
        let times = time(requests, get).await;
        results.push((name.to_string(), median(times), size.get(), first));
    }

    // The home page once every rollout is past its deadline: it also asks,
    // for each, which champions' teams have no team briefing recorded.
    let later = started + Duration::days(40);
    let late_cookie = editor_session(&store, later).await;
    let late_router = cascade_console::router(Console::new(
        store.clone(),
        root.clone(),
        Arc::new(move || later),
        Settings::new("http://127.0.0.1", false),
    ));
    let late_home = || {
        let request = Request::get("/console")
            .header(header::COOKIE, late_cookie.as_str())
            .body(Body::empty())
            .unwrap();
        let router = late_router.clone();
        async move {
            let response = router.oneshot(request).await.unwrap();
            assert_eq!(response.status(), StatusCode::OK, "GET /console later");
            let body = axum::body::to_bytes(response.into_body(), usize::MAX)
                .await
                .unwrap();
            assert!(String::from_utf8_lossy(&body).contains("Team briefings due"));
            body.len()
        }
    };
    let t = Instant::now();
    let late_size = late_home().await;
    let late_first = t.elapsed().as_secs_f64() * 1000.0;
    let late_times = time(requests, || async {
        std::hint::black_box(late_home().await);
    })
    .await;
    results.push((
        "home after every deadline (team briefings due)".to_owned(),
        median(late_times),
        late_size,
        late_first,
    ));

    let mut out = pages_table(people, requests, &results);
    // `CASCADE_BENCH_PAGES_ONLY=1`: the pages alone, without the baselines
    // (the uncached reports take most of the run's time).
    if std::env::var_os("CASCADE_BENCH_PAGES_ONLY").is_some() {
        print!("{out}");
        store_summary(&root);
        return;
    }

    // Baselines: what each page asks the store (and the content folder), alone.
    let calendar = Calendar::new(
        &project.config.partnership.time_zone,
        project.config.partnership.quiet_hours,
    )
    .unwrap();
    let today = now.with_timezone(&calendar.time_zone()).date_naive();
    let s = &*store;
    let home_queries = time(requests, || async {
        std::hint::black_box(s.rollouts().await.unwrap());
        std::hint::black_box(s.rollout_totals().await.unwrap());
    })
    .await;
    // What the home page asked before the totals were kept: every member
    // and outbox row counted, in two grouped scans.
    let recount = time(requests, || async {
        std::hint::black_box(s.rollouts().await.unwrap());
        std::hint::black_box(s.recount_rollout_totals().await.unwrap());
    })
    .await;
    // And before that: two counts a rollout.
    let per_rollout = time(requests, || async {
        for r in s.rollouts().await.unwrap() {
            std::hint::black_box(s.wave_counts(&r.id).await.unwrap());
            std::hint::black_box(s.delivery_counts(&r.id).await.unwrap());
        }
    })
    .await;
    let content = time(requests, || async {
        std::hint::black_box(load_dir(&project.content_dir(), &project.taxonomy));
    })
    .await;
    let rollout_queries = time(requests, || async {
        std::hint::black_box(s.wave_counts(one).await.unwrap());
        std::hint::black_box(s.delivery_counts(one).await.unwrap());
        std::hint::black_box(s.dead_letters(one, 20).await.unwrap());
    })
    .await;
    let period = Selection::Partnership {
        from: today - Duration::days(365),
        to: today,
    };
    let report_all = time(requests, || async {
        std::hint::black_box(
            generate(s, &period, &calendar, &project.taxonomy, now)
                .await
                .unwrap(),
        );
    })
    .await;
    // The same report's two halves: reading the rows, and the figures.
    let every: Vec<String> = s
        .rollouts()
        .await
        .unwrap()
        .into_iter()
        .map(|r| r.id)
        .collect();
    let load_all = time(requests, || async {
        std::hint::black_box(load(s, &every, now).await.unwrap());
    })
    .await;
    let rows = load(s, &every, now).await.unwrap();
    let compute_all = time(requests, || async {
        std::hint::black_box(compute(&rows, &period, &calendar, &project.taxonomy));
    })
    .await;
    let single = Selection::Rollout(one.to_owned());
    let report_one = time(requests, || async {
        std::hint::black_box(
            generate(s, &single, &calendar, &project.taxonomy, now)
                .await
                .unwrap(),
        );
    })
    .await;
    // The same report of every rollout through the console's cache, kept
    // (its first, computing call is not measured).
    let cache = ReportCache::new();
    let kept_all = time(requests, || async {
        std::hint::black_box(
            cache
                .generate(s, &period, &calendar, &project.taxonomy, now)
                .await
                .unwrap(),
        );
    })
    .await;

    let _ = writeln!(out, "\nbaselines in the same run (ms, median):");
    for (name, times) in [
        (
            "home's store queries (rollouts, rollout_totals)",
            home_queries,
        ),
        (
            "the same counted from every row (home before kept totals)",
            recount,
        ),
        ("the same counts as two queries a rollout", per_rollout),
        ("home's content folder read (load_dir)", content),
        ("one rollout's store queries", rollout_queries),
        ("report::generate, every rollout of the year", report_all),
        ("  of which report::load (the rows)", load_all),
        ("  of which report::compute (the figures)", compute_all),
        ("report::generate, one rollout", report_one),
        ("ReportCache::generate, every rollout, kept", kept_all),
    ] {
        let _ = writeln!(out, "{name:<52} {:>8.2}", median(times));
    }
    print!("{out}");
    store_summary(&root);
}

/// Each page's median, first request and size against the goal.
fn pages_table(people: usize, requests: usize, results: &[(String, f64, usize, f64)]) -> String {
    let mut out = format!(
        "\nconsole pages, {people} people, {ITEMS} items, {ROLLOUTS} rollouts; median of {requests} requests each (goal: under {GOAL_MS} ms)\n{:<44} {:>10} {:>12} {:>10}  {}\n",
        "page", "ms", "first ms", "KB", "goal"
    );
    for (name, ms, size, first) in results {
        let _ = writeln!(
            out,
            "{name:<44} {ms:>10.2} {first:>12.2} {:>10.1}  {}",
            *size as f64 / 1024.0,
            if name.starts_with("account") {
                "(baseline)"
            } else if *ms < GOAL_MS {
                "met"
            } else {
                "MISSED"
            }
        );
    }
    out
}

/// The database's size, for the record.
fn store_summary(root: &Path) {
    let db = Project::open(root).unwrap().store_path();
    let size = std::fs::metadata(&db).map(|m| m.len()).unwrap_or(0);
    println!("store: {:.0} MB", size as f64 / 1e6);
}
