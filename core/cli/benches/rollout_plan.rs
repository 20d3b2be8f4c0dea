//! Planning and starting a rollout to a large directory on SQLite (what
//! `cascade rollout start` does: check what the definition names, count the
//! audience per wave and channel in the store, then write every member in
//! one transaction with the audience resolved by SQLite), against a raw
//! bulk insert of the same member rows into the same table of a copy of the
//! same database, in one run.
//!
//! The engine path runs in a child process (this binary, started again), so
//! its peak RSS (`VmHWM`) is its own and not the directory import's.
//!
//! Run with `cargo bench --bench rollout_plan`; `CASCADE_BENCH_PEOPLE` sets the
//! directory size (default 1,000,000); `CASCADE_BENCH_KEEP_DB=<path>` keeps
//! the imported database there and reuses it on the next run of that size.
//!
//! `CASCADE_BENCH_ONLY_TIMING=1` measures each person's own time (issue
//! 19) alone: the same rollout planned and started against the same
//! directory with and without time zones, working patterns and absences
//! (set on a copy of the database: a quarter of people with a zone, most
//! of them the partnership's, three in ten with a working pattern, one in
//! twenty-five away), rounds alternating. Figures go in BENCHMARKS.md.

use cascade::bench::{median, write_directory};
use cascade_engine::delivery::millis;
use cascade_engine::engine::Engine;
use cascade_engine::project::{Project, scaffold};
use cascade_model::content;
use cascade_model::directory::read_csv;
use cascade_model::rollout::{audience_query, parse_definition, summarise, wave_send};
use cascade_store::{Audiences, Inspect, NewMember, NewRollout, Outbox, SqliteStore, Store};
use chrono::Utc;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

const DEFAULT_PEOPLE: usize = 1_000_000;
const ROUNDS: usize = 3;
const AGENCIES: usize = 20;
const TEAMS_PER_AGENCY: usize = 50;
/// Set in the child: `engine` or `phases`, then the project folder.
const CHILD_MODE: &str = "CASCADE_BENCH_CHILD";
const CHILD_PROJECT: &str = "CASCADE_BENCH_PROJECT";
const CHILD_ROLLOUT: &str = "CASCADE_BENCH_ROLLOUT";
/// A path to keep the imported database at and reuse it from on later
/// runs (the import of a million people takes minutes). Same size only.
const KEEP_DB: &str = "CASCADE_BENCH_KEEP_DB";

fn people_count() -> usize {
    std::env::var("CASCADE_BENCH_PEOPLE")
        .ok()
        .and_then(|v| v.replace('_', "").parse().ok())
        .unwrap_or(DEFAULT_PEOPLE)
}

/// The example rollout (champions first, then everyone else a week later)
/// under its own id.
fn write_rollout(project: &Path, id: &str) -> PathBuf {
    let example = project.join("rollouts/neglect-briefing.toml");
    let text = std::fs::read_to_string(&example).unwrap();
    let text = text.replace(
        "id = \"neglect-briefing-2026-12\"",
        &format!("id = \"{id}\""),
    );
    assert!(text.contains(&format!("id = \"{id}\"")));
    let path = project.join(format!("rollouts/{id}.toml"));
    std::fs::write(&path, text).unwrap();
    path
}

fn status_kb(field: &str) -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix(field))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

fn secs(d: Duration) -> f64 {
    d.as_secs_f64()
}

/// Copies a closed database file (no WAL left) over `to`.
fn copy_db(from: &Path, to: &Path) {
    for suffix in ["-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{suffix}", to.display()));
    }
    std::fs::create_dir_all(to.parent().unwrap()).unwrap();
    std::fs::copy(from, to).unwrap();
}

async fn close(store: SqliteStore) {
    store.checkpoint_wal().await.unwrap();
    store.close().await;
}

/// The child: `Engine::open`, `plan` and `start`, exactly as the CLI runs
/// them, each timed; prints one line the parent reads.
async fn child_engine(project: &Path, rollout: &Path) {
    let t = Instant::now();
    let engine = Engine::open(Project::open(project).unwrap(), false)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let open = t.elapsed();
    let now = Utc::now();
    let t = Instant::now();
    let planned = engine
        .plan(rollout, now)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let plan = t.elapsed();
    let hwm_after_plan = status_kb("VmHWM:");
    let t = Instant::now();
    engine
        .start(&planned, now)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let start = t.elapsed();
    println!(
        "ENGINE {} {} {} {} {} {}",
        secs(open),
        secs(plan),
        secs(start),
        planned.people,
        hwm_after_plan,
        status_kb("VmHWM:")
    );
}

/// The child, phase by phase: the same work as `Engine::plan` + `start`
/// through the public parts, with the time and peak RSS after each.
async fn child_phases(project_dir: &Path, rollout: &Path) {
    let project = Project::open(project_dir).unwrap();
    let calendar = cascade_model::rollout::Calendar::new(
        &project.config.partnership.time_zone,
        project.config.partnership.quiet_hours,
    )
    .unwrap();
    let mut report = String::from("PHASES");
    let mut t = Instant::now();
    let mut phase = |name: &str, t: &mut Instant| {
        write!(
            report,
            " {name}={:.3}s/{}MB",
            secs(t.elapsed()),
            status_kb("VmHWM:") / 1024
        )
        .unwrap();
        *t = Instant::now();
    };
    let store = SqliteStore::open(&project.store_path().to_string_lossy())
        .await
        .unwrap();
    let text = std::fs::read_to_string(rollout).unwrap();
    let definition = parse_definition(rollout, &text).unwrap();
    let (items, _) = content::load_dir(&project.content_dir(), &project.taxonomy);
    let loaded = items
        .into_iter()
        .find(|l| l.item.id == definition.item)
        .unwrap();
    phase("open+content", &mut t);
    let query = audience_query(
        &definition,
        &loaded.item.id,
        &loaded.item.version.0,
        &loaded.item.themes,
        &|wave| millis(wave_send(&definition, &calendar, wave)),
    );
    let counts = store
        .count_audience(&query, &["email".to_owned()])
        .await
        .unwrap();
    phase("count_audience", &mut t);
    let summary = summarise(&definition, &calendar, &counts);
    std::hint::black_box(summary);
    phase("summarise", &mut t);
    store.save_item(&loaded.item, &loaded.text).await.unwrap();
    let json = serde_json::to_string(&definition).unwrap();
    store
        .create_rollout(NewRollout {
            id: &definition.id,
            item_id: &loaded.item.id,
            item_version: &loaded.item.version.0,
            definition: &json,
            members: &[],
            audience: Some(&query),
            now: millis(Utc::now()),
            team_posts: &[],
        })
        .await
        .unwrap();
    phase("create_rollout", &mut t);
    println!("{report}");
}

fn run_child(mode: &str, project: &Path, rollout: &Path) -> String {
    let output = Command::new(std::env::current_exe().unwrap())
        .env(CHILD_MODE, mode)
        .env(CHILD_PROJECT, project)
        .env(CHILD_ROLLOUT, rollout)
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "the {mode} child failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).unwrap()
}

/// The raw baseline: the same rows into `rollout_members` of a copy of the
/// same database (same schema, index, pragmas), one transaction of
/// multi-row INSERTs of `per_insert` rows, bound from memory.
async fn raw_insert(
    db: &Path,
    item: &content::LoadedItem,
    id: &str,
    rows: &[NewMember],
    per_insert: usize,
) -> Duration {
    let store = SqliteStore::open(&db.to_string_lossy()).await.unwrap();
    store.save_item(&item.item, &item.text).await.unwrap();
    // The rollout alone, no members: one `rollouts` row, active, at time 0.
    store
        .create_rollout(NewRollout {
            id,
            item_id: &item.item.id,
            item_version: &item.item.version.0,
            definition: "{}",
            members: &[],
            audience: None,
            team_posts: &[],
            now: 0,
        })
        .await
        .unwrap();
    let t = Instant::now();
    store
        .bulk_insert_members(id, rows, per_insert)
        .await
        .unwrap();
    let elapsed = t.elapsed();
    store.close().await;
    elapsed
}

fn main() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    if let Ok(mode) = std::env::var(CHILD_MODE) {
        let project = PathBuf::from(std::env::var_os(CHILD_PROJECT).unwrap());
        let rollout = PathBuf::from(std::env::var_os(CHILD_ROLLOUT).unwrap());
        match mode.as_str() {
            "engine" => runtime.block_on(child_engine(&project, &rollout)),
            "phases" => runtime.block_on(child_phases(&project, &rollout)),
            other => panic!("unknown child mode {other}"),
        }
        return;
    }

    let people = people_count();
    let tmp = tempfile::Builder::new()
        .prefix("cascade-bench-plan")
        .tempdir()
        .unwrap();
    let project_dir = tmp.path().join("project");
    scaffold(&project_dir).unwrap();
    let project = Project::open(&project_dir).unwrap();
    let store_path = project.store_path();
    let template = tmp.path().join("template.db");

    // Setup, not measured: the directory imported the way `cascade import`
    // does, or a database kept from an earlier run of the same size.
    let t = Instant::now();
    write_directory(&project.directory_dir(), people, AGENCIES, TEAMS_PER_AGENCY);
    let written = t.elapsed();
    let kept = std::env::var_os(KEEP_DB).map(PathBuf::from);
    match kept.as_deref().filter(|k| k.exists()) {
        Some(kept) => {
            std::fs::copy(kept, &template).unwrap();
            // Migrations added since it was kept run now, not in a round.
            runtime.block_on(async {
                close(
                    SqliteStore::open(&template.to_string_lossy())
                        .await
                        .unwrap(),
                )
                .await;
            });
            println!(
                "setup: {people} people written as CSV in {:.1} s, database reused from {}",
                secs(written),
                kept.display()
            );
        }
        None => {
            let t = Instant::now();
            runtime.block_on(async {
                let store = SqliteStore::open(&store_path.to_string_lossy())
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
                close(store).await;
            });
            let imported = t.elapsed();
            std::fs::copy(&store_path, &template).unwrap();
            if let Some(kept) = &kept {
                std::fs::copy(&template, kept).unwrap();
            }
            println!(
                "setup: {people} people written as CSV in {:.1} s, imported with Store::import in {:.1} s",
                secs(written),
                secs(imported)
            );
        }
    }

    let (items, _) = content::load_dir(&project.content_dir(), &project.taxonomy);
    let item = items
        .into_iter()
        .find(|l| l.item.id == "7mb-neglect-seeing-the-child")
        .unwrap();

    if std::env::var("CASCADE_BENCH_ONLY_TIMING").is_ok_and(|v| v == "1") {
        timing_rounds(&runtime, &template, &store_path, &project_dir, tmp.path());
        return;
    }

    let mut engine_total = Vec::new();
    let mut engine_plan_start = Vec::new();
    let mut raw_2000 = Vec::new();
    let mut raw_8000 = Vec::new();
    let mut hwm = Vec::new();
    let mut rows: Vec<NewMember> = Vec::new();
    for round in 0..ROUNDS {
        let id = format!("bench-{round}");
        let rollout = write_rollout(&project_dir, &id);
        copy_db(&template, &store_path);
        let line = run_child("engine", &project_dir, &rollout);
        let fields: Vec<&str> = line
            .lines()
            .find_map(|l| l.strip_prefix("ENGINE "))
            .expect("the child reports")
            .split(' ')
            .collect();
        let f = |i: usize| fields[i].parse::<f64>().unwrap();
        let (open, plan, start, members) = (f(0), f(1), f(2), f(3) as usize);
        println!(
            "round {round}: engine open {open:.3} s, plan {plan:.3} s, start {start:.3} s, {members} members, VmHWM after plan {} MB, at end {} MB",
            f(4) as u64 / 1024,
            f(5) as u64 / 1024
        );
        engine_total.push(open + plan + start);
        engine_plan_start.push(plan + start);
        hwm.push(f(5) / 1024.0);

        if rows.is_empty() {
            rows = runtime.block_on(async {
                let store = SqliteStore::open(&store_path.to_string_lossy())
                    .await
                    .unwrap();
                let mut rows: Vec<NewMember> = store
                    .members(&id)
                    .await
                    .unwrap()
                    .into_iter()
                    .map(|m| NewMember {
                        person_id: m.person_id,
                        wave: m.wave,
                        first_due_at: m.next_due_at.expect("every member is due"),
                    })
                    .collect();
                rows.sort_by(|a, b| (a.wave, &a.person_id).cmp(&(b.wave, &b.person_id)));
                store.close().await;
                rows
            });
            assert_eq!(rows.len(), members);
        }
        for (per_insert, times) in [(2000, &mut raw_2000), (8000, &mut raw_8000)] {
            let raw_db = tmp.path().join("raw/cascade.db");
            copy_db(&template, &raw_db);
            let elapsed = runtime.block_on(raw_insert(&raw_db, &item, &id, &rows, per_insert));
            println!(
                "round {round}: raw insert, {per_insert} rows per INSERT: {:.3} s",
                secs(elapsed)
            );
            times.push(secs(elapsed));
        }
    }

    copy_db(&template, &store_path);
    let rollout = write_rollout(&project_dir, "bench-phases");
    let line = run_child("phases", &project_dir, &rollout);
    println!("{}", line.trim());

    let (total, plan_start) = (median(engine_total), median(engine_plan_start));
    let raw = median(raw_2000.clone()).min(median(raw_8000.clone()));
    let n = rows.len() as f64;
    println!("\nplanning a rollout to {people} people ({n} members), median of {ROUNDS} rounds");
    println!("{:<44} {:>10} {:>14}", "", "seconds", "members/s");
    for (name, s) in [
        ("engine: open + plan + start", total),
        ("engine: plan + start", plan_start),
        ("raw INSERT, 2000 rows a statement", median(raw_2000)),
        ("raw INSERT, 8000 rows a statement", median(raw_8000)),
    ] {
        println!("{name:<44} {s:>10.3} {:>14.0}", n / s);
    }
    println!(
        "engine rate / best raw rate: {:.3} (open + plan + start), {:.3} (plan + start); peak RSS of the engine process: {:.0} MB (median)",
        raw / total,
        raw / plan_start,
        median(hwm)
    );
}

/// Sets time zones, working patterns and absences on a copy of the
/// directory, by person, so every run times the same people the same way.
async fn set_timing(db: &Path) {
    // Opened as the store first, so its migrations have run.
    close(SqliteStore::open(&db.to_string_lossy()).await.unwrap()).await;
    let pool = sqlx::SqlitePool::connect(&format!("sqlite://{}", db.display()))
        .await
        .unwrap();
    sqlx::query(
        "UPDATE people SET
            time_zone = CASE rowid % 20
                WHEN 0 THEN 'Europe/London' WHEN 1 THEN 'Europe/London'
                WHEN 2 THEN 'Europe/London' WHEN 3 THEN 'Europe/London'
                WHEN 4 THEN 'America/New_York' END,
            works = CASE rowid % 10
                WHEN 5 THEN 'Mon-Fri 08:00-18:00' WHEN 6 THEN '20:00-08:00'
                WHEN 7 THEN 'Tue-Thu' END,
            absent_until = CASE WHEN rowid % 25 = 3
                THEN date('2026-12-01', '+' || (rowid % 60) || ' days') END",
    )
    .execute(&pool)
    .await
    .unwrap();
    sqlx::query("PRAGMA wal_checkpoint(TRUNCATE)")
        .execute(&pool)
        .await
        .unwrap();
    pool.close().await;
}

/// The same rollout planned and started with and without the directory's
/// timing columns, rounds alternating, each in its own child process.
fn timing_rounds(
    runtime: &tokio::runtime::Runtime,
    template: &Path,
    store_path: &Path,
    project_dir: &Path,
    tmp: &Path,
) {
    let timed = tmp.join("timed.db");
    copy_db(template, &timed);
    let t = Instant::now();
    runtime.block_on(set_timing(&timed));
    println!("setup: timing columns set in {:.1} s", secs(t.elapsed()));
    let mut without = Vec::new();
    let mut with = Vec::new();
    for round in 0..ROUNDS {
        for (name, db, times) in [
            ("without", template, &mut without),
            ("with", timed.as_path(), &mut with),
        ] {
            let id = format!("bench-{name}-{round}");
            let rollout = write_rollout(project_dir, &id);
            copy_db(db, store_path);
            let line = run_child("engine", project_dir, &rollout);
            let fields: Vec<f64> = line
                .lines()
                .find_map(|l| l.strip_prefix("ENGINE "))
                .expect("the child reports")
                .split(' ')
                .map(|f| f.parse().unwrap())
                .collect();
            let total = fields[0] + fields[1] + fields[2];
            println!(
                "round {round}, {name} zones, patterns and absences: open {:.3} s, plan {:.3} s, start {:.3} s, {} members, peak RSS {} MB",
                fields[0],
                fields[1],
                fields[2],
                fields[3] as usize,
                fields[5] as u64 / 1024
            );
            times.push(total);
        }
        println!(
            "round {round}: with / without = {:.2}",
            with[round] / without[round]
        );
    }
    let (w, wo) = (median(with), median(without));
    println!(
        "\nopen + plan + start, median of {ROUNDS} rounds: {wo:.3} s without, {w:.3} s with zones, patterns and absences: {:.2}x (goal: at most 1.5x)",
        w / wo
    );
}
