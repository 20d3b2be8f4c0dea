//! Importing a people file of a large directory into SQLite (what
//! `cascade import` does: read the CSV, check every row against the stored
//! directory, then write the file in one transaction), against a raw bulk
//! insert of the same people into a copy of the same database, in one run.
//!
//! Three figures a round, each on its own fresh copy of a database that
//! already holds the agencies and teams:
//! - `Store::import` of people.csv (first import: every person new), and
//!   the same file again (every row unchanged), and with every tenth person
//!   moved to another team;
//! - raw: the `people` rows alone as multi-row INSERTs of 1,000 rows bound
//!   from memory (the baseline the issue names), and the same with the
//!   roles and email identity rows an import also writes.
//!
//! Then open rollouts (issue 23): the people file again with 2% joiners
//! (new people), 1% movers (to a team of another agency) and 1% leavers,
//! imported with `Store::import_directory` against 20 running rollouts,
//! one per agency and each of its own item: once with the rollouts fixed
//! at their start (leavers and movers stopped, nobody enrolled), once with
//! all of them open to joiners (the same, and the joiners enrolled: the
//! new people, and the movers into the agency they moved to). The goal is
//! the open import in under twice the time of the fixed one.
//!
//! Run with `cargo bench -p cascade --bench directory_import`;
//! `CASCADE_BENCH_PEOPLE` sets the directory size (default 1,000,000),
//! `CASCADE_BENCH_OPEN_ROLLOUTS` the rollouts (default 20, at most one
//! per agency), and `CASCADE_BENCH_ONLY_OPEN=1` runs the open-rollout
//! figures alone. Figures go in BENCHMARKS.md.

use cascade::bench::{env_number, median, write_directory, write_moved_people};
use cascade_engine::project::{Project, scaffold};
use cascade_model::content::parse_item;
use cascade_model::directory::{DirectoryFile, Person, read_csv};
use cascade_model::rollout::{AudienceQuery, AudienceSource, Selector, WaveQuery};
use cascade_store::{
    JoinerWave, NewRollout, OpenEnrolment, Outbox, RunningAudience, SqliteStore, Store,
};
use std::path::Path;
use std::time::{Duration, Instant};

const DEFAULT_PEOPLE: usize = 1_000_000;
const ROUNDS: usize = 3;
const AGENCIES: usize = 20;
const TEAMS_PER_AGENCY: usize = 50;
const PER_INSERT: usize = 1_000;

fn people_count() -> usize {
    std::env::var("CASCADE_BENCH_PEOPLE")
        .ok()
        .and_then(|v| v.replace('_', "").parse().ok())
        .unwrap_or(DEFAULT_PEOPLE)
}

fn copy_db(from: &Path, to: &Path) {
    for suffix in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{suffix}", to.display()));
    }
    std::fs::create_dir_all(to.parent().unwrap()).unwrap();
    std::fs::copy(from, to).unwrap();
}

async fn open(db: &Path) -> SqliteStore {
    SqliteStore::open(&db.to_string_lossy()).await.unwrap()
}

async fn close(store: SqliteStore) {
    store.checkpoint_wal().await.unwrap();
    store.close().await;
}

fn main() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let people = people_count();
    let tmp = tempfile::Builder::new()
        .prefix("cascade-bench-import")
        .tempdir()
        .unwrap();
    let project_dir = tmp.path().join("project");
    scaffold(&project_dir).unwrap();
    let project = Project::open(&project_dir).unwrap();
    let dir = project.directory_dir();
    write_directory(&dir, people, AGENCIES, TEAMS_PER_AGENCY);
    let people_csv = dir.join("people.csv");

    // Every tenth person moved to the next team of their agency.
    let moved_csv = tmp.path().join("people-moved.csv");
    write_moved_people(&people_csv, &moved_csv, TEAMS_PER_AGENCY);

    // Setup, not measured: a database with the agencies and teams.
    let template = tmp.path().join("template.db");
    runtime.block_on(async {
        let store = open(&template).await;
        for name in ["agencies.csv", "teams.csv"] {
            let path = dir.join(name);
            let file = read_csv(&path).unwrap_or_else(|e| panic!("{}", e[0]));
            store
                .import(&file, &path, &project.taxonomy)
                .await
                .unwrap_or_else(|e| panic!("{e}"));
        }
        close(store).await;
    });

    if env_number("CASCADE_BENCH_ONLY_OPEN", 0) == 1 {
        open_rollouts(
            &runtime,
            tmp.path(),
            &project,
            &template,
            &people_csv,
            people,
        );
        return;
    }
    let t = Instant::now();
    let file = read_csv(&people_csv).unwrap_or_else(|e| panic!("{}", e[0]));
    let parse = t.elapsed();
    let moved_file = read_csv(&moved_csv).unwrap_or_else(|e| panic!("{}", e[0]));
    let rows: Vec<Person> = match &file {
        DirectoryFile::People(rows) => rows.iter().map(|r| r.value.clone()).collect(),
        _ => unreachable!("people.csv reads as people"),
    };
    println!(
        "setup: {people} people; reading and parsing people.csv took {:.3} s (not in the figures below)",
        parse.as_secs_f64()
    );

    let secs = Duration::as_secs_f64;
    let (mut first, mut again, mut changed, mut raw, mut raw_related) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for round in 1..=ROUNDS {
        let db = tmp.path().join(format!("round{round}/import.db"));
        copy_db(&template, &db);
        let (a, b, c) = runtime.block_on(async {
            let store = open(&db).await;
            let mut times = Vec::new();
            for (file, path) in [
                (&file, &people_csv),
                (&file, &people_csv),
                (&moved_file, &moved_csv),
            ] {
                let t = Instant::now();
                let summary = store
                    .import(file, path, &project.taxonomy)
                    .await
                    .unwrap_or_else(|e| panic!("{e}"));
                times.push(t.elapsed());
                assert_eq!(
                    summary.added + summary.updated + summary.unchanged,
                    people,
                    "every row counted once"
                );
            }
            close(store).await;
            (times[0], times[1], times[2])
        });
        first.push(secs(&a));
        again.push(secs(&b));
        changed.push(secs(&c));

        let mut raw_times = Vec::new();
        for related in [false, true] {
            let raw_db = tmp.path().join(format!("round{round}/raw-{related}.db"));
            copy_db(&template, &raw_db);
            let elapsed = runtime.block_on(async {
                let store = open(&raw_db).await;
                let t = Instant::now();
                store
                    .bulk_insert_people(&rows, related, PER_INSERT)
                    .await
                    .unwrap();
                let elapsed = t.elapsed();
                close(store).await;
                elapsed
            });
            raw_times.push(secs(&elapsed));
        }
        raw.push(raw_times[0]);
        raw_related.push(raw_times[1]);
        println!(
            "round {round}: Store::import first {:.3} s, unchanged {:.3} s, 10% moved {:.3} s; raw people rows {:.3} s, raw with roles and identities {:.3} s",
            secs(&a),
            secs(&b),
            secs(&c),
            raw_times[0],
            raw_times[1]
        );
        let _ = std::fs::remove_dir_all(tmp.path().join(format!("round{round}")));
    }
    let (first, again, changed) = (median(first), median(again), median(changed));
    let (raw, raw_related) = (median(raw), median(raw_related));
    println!(
        "median of {ROUNDS}: import {first:.3} s ({:.0} people/s), unchanged re-import {again:.3} s, 10% moved {changed:.3} s",
        people as f64 / first
    );
    println!(
        "raw people rows {raw:.3} s: ratio raw/import {:.3}; raw with roles and identities {raw_related:.3} s: ratio {:.3}",
        raw / first,
        raw_related / first
    );
    open_rollouts(
        &runtime,
        tmp.path(),
        &project,
        &template,
        &people_csv,
        people,
    );
}

/// One rollout's audience: everyone in agency `a`, one wave.
fn agency_audience(a: usize, item_id: &str) -> AudienceQuery {
    AudienceQuery {
        source: AudienceSource::Directory {
            include: Selector {
                agencies: vec![format!("ag-{a:02}")],
                ..Selector::default()
            },
            exclude: Selector::default(),
        },
        waves: vec![WaveQuery {
            everyone: true,
            takes: Selector::default(),
            first_due_at: 1_000,
        }],
        item_id: item_id.to_owned(),
        absences_after: String::new(),
        home_zone: String::new(),
        timing: Vec::new(),
    }
}

/// The people file with 2% joiners, 1% movers (to the same team number
/// in the next agency) and 1% leavers.
fn churned(people_csv: &Path, to: &Path, people: usize) -> (usize, usize, usize) {
    let teams = AGENCIES * TEAMS_PER_AGENCY;
    let text = std::fs::read_to_string(people_csv).unwrap();
    let mut out = String::with_capacity(text.len() + text.len() / 40);
    let (mut moved, mut left) = (0, 0);
    for (n, line) in text.lines().enumerate() {
        let i = n.wrapping_sub(1);
        if n > 0 && i % 100 == 2 {
            left += 1;
            continue;
        }
        if n > 0 && i % 100 == 1 {
            let mut fields: Vec<&str> = line.split(',').collect();
            let team: usize = fields[4].trim_start_matches("t-").parse().unwrap();
            let next = (team + TEAMS_PER_AGENCY) % teams;
            let (team, agency) = (
                format!("t-{next:04}"),
                format!("ag-{:02}", next / TEAMS_PER_AGENCY),
            );
            fields[3] = &agency;
            fields[4] = &team;
            out.push_str(&fields.join(","));
            moved += 1;
        } else {
            out.push_str(line);
        }
        out.push('\n');
    }
    let joiners = people / 50;
    for j in 0..joiners {
        let i = people + j;
        let t = i % teams;
        let a = t / TEAMS_PER_AGENCY;
        out.push_str(&format!(
            "p-{i:07},Person {i},person{i}@agency{a}.example,ag-{a:02},t-{t:04},practitioner,,\n"
        ));
    }
    std::fs::write(to, out).unwrap();
    (joiners, moved, left)
}

fn open_rollouts(
    runtime: &tokio::runtime::Runtime,
    tmp: &Path,
    project: &Project,
    template: &Path,
    people_csv: &Path,
    people: usize,
) {
    let rollouts = env_number("CASCADE_BENCH_OPEN_ROLLOUTS", 20).min(AGENCIES);
    let churn_csv = tmp.join("people-churn.csv");
    let (joiners, moved, left) = churned(people_csv, &churn_csv, people);
    let churn = read_csv(&churn_csv).unwrap_or_else(|e| panic!("{}", e[0]));
    let file = read_csv(people_csv).unwrap_or_else(|e| panic!("{}", e[0]));
    let item_text = std::fs::read_to_string(
        project
            .content_dir()
            .join("7mb-neglect-seeing-the-child.md"),
    )
    .unwrap();

    // Setup, not measured: everyone imported, and the rollouts started.
    let started = tmp.join("open-template.db");
    let _ = std::fs::remove_file(&started);
    std::fs::copy(template, &started).unwrap();
    let mut items = Vec::new();
    runtime.block_on(async {
        let store = open(&started).await;
        store
            .import(&file, people_csv, &project.taxonomy)
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        for a in 0..rollouts {
            let id = format!("7mb-bench-{a:02}");
            let text = item_text.replace(
                "id = \"7mb-neglect-seeing-the-child\"",
                &format!("id = \"{id}\""),
            );
            let item = parse_item(Path::new(&format!("{id}.md")), &text, &project.taxonomy)
                .unwrap_or_else(|e| panic!("{}", e[0]));
            assert_eq!(item.id, id);
            store.save_item(&item, &text).await.unwrap();
            let version = item.version.0.clone();
            store
                .create_rollout(NewRollout {
                    id: &format!("r-{a:02}"),
                    item_id: &id,
                    item_version: &version,
                    definition: "{}",
                    members: &[],
                    audience: Some(&agency_audience(a, &id)),
                    team_posts: &[],
                    now: 500,
                })
                .await
                .unwrap();
            items.push((id, version));
        }
        close(store).await;
    });
    let running = |open: bool| -> Vec<RunningAudience> {
        items
            .iter()
            .enumerate()
            .map(|(a, (id, version))| RunningAudience {
                rollout_id: format!("r-{a:02}"),
                query: agency_audience(a, id),
                open: open.then(|| OpenEnrolment {
                    item_version: version.clone(),
                    waves: vec![JoinerWave {
                        shift_days: 2,
                        first_due_at: 200_000,
                    }],
                    new_people_only: false,
                }),
            })
            .collect()
    };
    println!(
        "open rollouts: {people} people, {rollouts} rollouts (one per agency); the churned file has {joiners} joiners, {moved} movers, {left} leavers"
    );
    let secs = Duration::as_secs_f64;
    let (mut fixed_times, mut open_times) = (Vec::new(), Vec::new());
    for round in 1..=ROUNDS {
        let mut times = Vec::new();
        for open_to_joiners in [false, true] {
            let db = tmp.join(format!("open{round}/{open_to_joiners}.db"));
            copy_db(&started, &db);
            let audiences = running(open_to_joiners);
            let (elapsed, enrolled, stopped) = runtime.block_on(async {
                let store = open(&db).await;
                let t = Instant::now();
                let done = store
                    .import_directory(
                        &[(churn_csv.as_path(), &churn)],
                        &project.taxonomy,
                        &audiences,
                        100_000,
                        false,
                    )
                    .await
                    .unwrap_or_else(|e| panic!("{e}"));
                let elapsed = t.elapsed();
                close(store).await;
                let enrolled: u64 = done.rollouts.iter().filter_map(|c| c.joiners).sum();
                let stopped: u64 = done.rollouts.iter().map(|c| c.left + c.moved).sum();
                (elapsed, enrolled, stopped)
            });
            times.push(secs(&elapsed));
            println!(
                "round {round}: {} import {:.3} s: {enrolled} joiners enrolled, {stopped} leavers and movers stopped",
                if open_to_joiners { "open" } else { "fixed" },
                secs(&elapsed)
            );
        }
        fixed_times.push(times[0]);
        open_times.push(times[1]);
        let _ = std::fs::remove_dir_all(tmp.join(format!("open{round}")));
    }
    let (fixed, open) = (median(fixed_times), median(open_times));
    println!(
        "median of {ROUNDS}: fixed rollouts {fixed:.3} s, open rollouts {open:.3} s: ratio open/fixed {:.2} (goal under 2)",
        open / fixed
    );
}
