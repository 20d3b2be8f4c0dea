//! `cascade serve`'s runner on a PostgreSQL store (issue 18), against a
//! real server the test starts on loopback: several serves share one
//! database, so an idle one waits for the store's wake-up (`LISTEN/NOTIFY`)
//! instead of polling the tables, and still sends at once what another
//! process queues.

mod support;

use cascade_engine::delivery::DispatchSettings;
use cascade_engine::engine::{Engine, Runner, Until};
use cascade_engine::project::Project;
use cascade_model::content::load_dir;
use cascade_model::directory::read_csv;
use cascade_model::time::millis;
use cascade_store::pg::test_server::TestPostgres;
use cascade_store::pg::{PgSettings, PgStore};
use cascade_store::{Outbox, Store, Wakeups};
use chrono::Utc;
use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};
use support::{EVERYONE_NOW, OUTBOX, project, rollout_file};

/// The demo project (its SQLite store imported, which these tests leave
/// alone) and a new PostgreSQL database with the same directory and
/// content; its URL and name.
async fn on_postgres() -> (tempfile::TempDir, String, String) {
    let dir = project(OUTBOX);
    let server = TestPostgres::shared().unwrap_or_else(|e| panic!("{e}"));
    let url = server.new_database().await.unwrap();
    let name = url.rsplit('/').next().unwrap().to_owned();
    let store = PgStore::connect(&PgSettings::new(&url)).await.unwrap();
    let project = Project::open(dir.path()).unwrap();
    for file in ["agencies", "teams", "people", "champions"] {
        let path = project.directory_dir().join(format!("{file}.csv"));
        let read = read_csv(&path).unwrap_or_else(|e| panic!("{}", e[0]));
        store
            .import(&read, &path, &project.taxonomy)
            .await
            .unwrap_or_else(|e| panic!("{e}"));
    }
    let (items, errors) = load_dir(&project.content_dir(), &project.taxonomy);
    assert!(errors.is_empty(), "{errors:?}");
    for loaded in &items {
        store.save_item(&loaded.item, &loaded.text).await.unwrap();
    }
    store.close().await;
    (dir, url, name)
}

/// A runner over its own connection to the database at `url`, as one
/// `cascade serve` process has.
async fn runner(dir: &Path, url: &str, settings: DispatchSettings) -> Runner<PgStore> {
    let store = Arc::new(PgStore::connect(&PgSettings::new(url)).await.unwrap());
    Engine::with_store(Project::open(dir).unwrap(), store, true)
        .await
        .unwrap()
        .runner(settings)
        .await
        .unwrap()
}

/// Transactions committed in database `name` so far, as the statistics
/// collector has them (read over a connection to another database).
async fn commits(server: &TestPostgres, name: &str) -> i64 {
    use sqlx::Connection;
    let mut admin = sqlx::PgConnection::connect(&server.admin_url())
        .await
        .unwrap();
    sqlx::query_scalar("SELECT xact_commit FROM pg_stat_database WHERE datname = $1")
        .bind(name)
        .fetch_one(&mut admin)
        .await
        .unwrap()
}

/// The statements in the server's log from byte `from` on, by their first
/// words: those of the one database that logs them (see
/// [`log_statements`]).
fn statements_since(server: &TestPostgres, from: usize) -> BTreeMap<String, usize> {
    let log = std::fs::read_to_string(server.dir().join("log")).unwrap();
    let mut kinds = BTreeMap::new();
    for line in log[from..]
        .lines()
        .filter(|l| l.contains("LOG:  execute") || l.contains("LOG:  statement: "))
    {
        // `... LOG:  execute sqlx_s_3: SELECT ...` or `... LOG:  statement: SELECT ...`
        let sql = line.split_once("LOG:  ").map_or(line, |(_, rest)| rest);
        let sql = sql.split_once(": ").map_or(sql, |(_, rest)| rest);
        let words: Vec<&str> = sql.split_whitespace().take(8).collect();
        *kinds.entry(words.join(" ")).or_default() += 1;
    }
    kinds
}

/// Has the server log every statement run in database `name`, from its
/// next connection on.
async fn log_statements(server: &TestPostgres, name: &str) {
    use sqlx::Connection;
    let mut admin = sqlx::PgConnection::connect(&server.admin_url())
        .await
        .unwrap();
    sqlx::Executor::execute(
        &mut admin,
        format!("ALTER DATABASE {name} SET log_statement = 'all'").as_str(),
    )
    .await
    .unwrap();
}

/// An idle serve's load on the database: with nothing due, the statements
/// it runs a second, as the server logs them, over 20 s (or
/// `CASCADE_IDLE_SECONDS`) once it has settled; and the transactions
/// committed in its database meanwhile (each statement outside a
/// transaction commits one; autovacuum's, and each pooled connection's
/// first preparation of a statement, count too). Printed for BENCHMARKS.md
/// ("Idle load on PostgreSQL"): before the wake-ups, when the dispatcher
/// claimed every 200 ms and the scheduler ran every second, an idle serve
/// ran 10.7 statements a second. Since session 14 the serve runs as
/// `cascade serve` does on PostgreSQL, with its heartbeat: 2.8 a second
/// over 60 s. The bound, 4 a second, leaves room for the window catching
/// one more tick of each timer (every 5 s: a round, the heartbeat; every
/// 10 s: the look for a dead serve's events) than a 20 s window holds on
/// average.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idle_serve_barely_queries_the_database() {
    let (dir, url, name) = on_postgres().await;
    let server = TestPostgres::shared().unwrap();
    log_statements(server, &name).await;
    // As `cascade serve` on PostgreSQL runs it: alive to other serves, with
    // the heartbeat (its lease, taking back dead serves' rows, settling
    // what recordings left) and the look for events a dead serve stored.
    let runner = runner(dir.path(), &url, DispatchSettings::default())
        .await
        .shared_with_other_serves(Duration::from_secs(30));
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let serving = tokio::spawn(runner.serve(stopped, Until::Stopped));
    // Settled: connected, listening, the inbox replayed, and the
    // statistics of its start in pg_stat_database: a connection's reach it
    // within a second of its last transaction, or 10 s after it went idle.
    tokio::time::sleep(Duration::from_secs(15)).await;
    let window = Duration::from_secs(
        std::env::var("CASCADE_IDLE_SECONDS")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or(20),
    );
    let before = commits(server, &name).await;
    let from = std::fs::metadata(server.dir().join("log")).unwrap().len() as usize;
    tokio::time::sleep(window).await;
    let statements = statements_since(server, from);
    // Stopped, so nothing after the window counts once its statistics are in.
    stop.send(true).unwrap();
    serving.await.unwrap().unwrap();
    tokio::time::sleep(Duration::from_secs(11)).await;
    let after = commits(server, &name).await;
    let seconds = window.as_secs_f64();
    let logged: usize = statements.values().sum();
    eprintln!(
        "an idle serve in {seconds} s: {logged} statements ({:.2} a second), {} transactions ({:.2} a second):",
        logged as f64 / seconds,
        after - before,
        (after - before) as f64 / seconds,
    );
    for (statement, n) in &statements {
        eprintln!("{n:5}  {statement}");
    }
    assert!(
        (logged as f64) < 4.0 * seconds,
        "{logged} statements in {seconds} s: {statements:#?}"
    );
}

/// One serve is idle, with a longest wait far beyond the test's patience;
/// another process starts an urgent rollout and queues its messages. The
/// idle serve is woken by the store and sends them all at once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idle_serve_sends_at_once_what_another_process_queues() {
    let (dir, url, _) = on_postgres().await;
    let settings = DispatchSettings {
        idle_wait: Duration::from_secs(600),
        ..DispatchSettings::default()
    };
    let idle = runner(dir.path(), &url, settings).await;
    let store = idle.store().clone();
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let serving = tokio::spawn(idle.serve(stopped, Until::Stopped));
    // Idle: nothing to send, waiting for the store.
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert!(store.hears_other_writers(), "listening, so waiting long");

    // Another process (its own connections, no channels started).
    let other_store = Arc::new(PgStore::connect(&PgSettings::new(&url)).await.unwrap());
    let other = Engine::with_store(
        Project::open(dir.path()).unwrap(),
        other_store.clone(),
        false,
    )
    .await
    .unwrap();
    let path = rollout_file(
        dir.path(),
        "now",
        &EVERYONE_NOW
            .replace("CHANNELS", "[\"outbox\"]")
            .replace("channels = [", "urgent = true\nchannels = ["),
    );
    let now = Utc::now();
    let planned = other
        .plan(&path, now)
        .await
        .unwrap_or_else(|p| panic!("{p}"));
    let started = Instant::now();
    let members = other.start(&planned, now).await.unwrap();
    assert_eq!(members, 50);
    let sent = loop {
        let sent: u64 = other_store
            .delivery_counts("now")
            .await
            .unwrap()
            .iter()
            .map(|c| c.sent)
            .sum();
        if sent >= members && other_store.due_now(millis(Utc::now())).await.unwrap() == 0 {
            break sent;
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "{sent} of {members} sent after {:?}",
            started.elapsed()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let took = started.elapsed();
    eprintln!("{sent} messages queued by another process sent by the idle serve within {took:?}");
    stop.send(true).unwrap();
    serving.await.unwrap().unwrap();
    other_store.close().await;
}
