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
//! Run with `cargo bench -p cascade --bench directory_import`;
//! `CASCADE_BENCH_PEOPLE` sets the directory size (default 1,000,000).
//! Figures go in BENCHMARKS.md.

use cascade::bench::{median, write_directory};
use cascade_engine::project::{Project, scaffold};
use cascade_model::directory::{DirectoryFile, Person, read_csv};
use cascade_store::{SqliteStore, Store};
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
    let text = std::fs::read_to_string(&people_csv).unwrap();
    let mut moved = String::with_capacity(text.len());
    for (i, line) in text.lines().enumerate() {
        if i > 0 && i % 10 == 0 {
            let mut fields: Vec<&str> = line.split(',').collect();
            let team: usize = fields[4].trim_start_matches("t-").parse().unwrap();
            let agency = team / TEAMS_PER_AGENCY;
            let next = agency * TEAMS_PER_AGENCY + (team + 1) % TEAMS_PER_AGENCY;
            let next = format!("t-{next:04}");
            fields[4] = &next;
            moved.push_str(&fields.join(","));
        } else {
            moved.push_str(line);
        }
        moved.push('\n');
    }
    std::fs::write(&moved_csv, moved).unwrap();

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
            for (file, path) in [(&file, &people_csv), (&file, &people_csv), (&moved_file, &moved_csv)] {
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
}
