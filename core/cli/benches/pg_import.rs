//! Issue 18 on PostgreSQL: importing a people file of a large directory
//! (what `cascade import` does: read the CSV, check every row against the
//! stored directory, then write the file in one transaction, by COPY into
//! staging tables) against a raw `COPY` of the same people rows into the
//! same table of the same server, in one run. The goal is at least 0.3 of
//! the raw rate.
//!
//! The server is one the bench starts on loopback from the machine's
//! PostgreSQL (as the tests do) with PostgreSQL's default durability
//! (`fsync` and `synchronous_commit` on). Each round takes two fresh
//! databases that already hold the agencies and teams (20 agencies of 50
//! teams): on one, `Store::import` of people.csv three times (first
//! import, the same file again, then every tenth person moved to the next
//! team of their agency); on the other, the raw baseline: the same
//! `Person` values by one `COPY ... FROM STDIN` of the `people` rows alone
//! (`PgStore::copy_people`), from memory. Rounds alternate which goes
//! first. Parsing the CSV is timed once and kept out of both.
//!
//! `cargo bench -p cascade --bench pg_import`; `CASCADE_BENCH_PEOPLE` sets
//! the directory size (default 1,000,000), `CASCADE_BENCH_ROUNDS` the
//! rounds (default 3). Figures go in BENCHMARKS.md.

use cascade::bench::{env_number, median, write_directory, write_moved_people};
use cascade_engine::project::{Project, scaffold};
use cascade_model::directory::{DirectoryFile, Person, read_csv};
use cascade_store::Store;
use cascade_store::pg::test_server::TestPostgres;
use cascade_store::pg::{PgSettings, PgStore};
use std::time::Instant;

const AGENCIES: usize = 20;
const TEAMS_PER_AGENCY: usize = 50;

fn main() {
    let people = env_number("CASCADE_BENCH_PEOPLE", 1_000_000);
    let rounds = env_number("CASCADE_BENCH_ROUNDS", 3).max(1);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let tmp = tempfile::Builder::new()
        .prefix("cascade-bench-pg-import")
        .tempdir()
        .unwrap();
    let root = tmp.path().join("project");
    scaffold(&root).unwrap();
    let project = Project::open(&root).unwrap();
    let dir = project.directory_dir();
    write_directory(&dir, people, AGENCIES, TEAMS_PER_AGENCY);
    let people_csv = dir.join("people.csv");
    let moved_csv = tmp.path().join("people-moved.csv");
    write_moved_people(&people_csv, &moved_csv, TEAMS_PER_AGENCY);

    let t = Instant::now();
    let file = read_csv(&people_csv).unwrap_or_else(|e| panic!("{}", e[0]));
    let parse = t.elapsed().as_secs_f64();
    let moved_file = read_csv(&moved_csv).unwrap_or_else(|e| panic!("{}", e[0]));
    let rows: Vec<Person> = match &file {
        DirectoryFile::People(rows) => rows.iter().map(|r| r.value.clone()).collect(),
        _ => unreachable!("people.csv reads as people"),
    };
    let mut structure = Vec::new();
    for name in ["agencies.csv", "teams.csv"] {
        let path = dir.join(name);
        structure.push((read_csv(&path).unwrap_or_else(|e| panic!("{}", e[0])), path));
    }
    println!(
        "setup: {people} people; reading and parsing people.csv took {parse:.3} s (not in the figures below)"
    );

    let server = TestPostgres::durable().unwrap_or_else(|e| panic!("{e}"));
    // A fresh database holding the agencies and teams.
    let fresh = async || {
        let store = PgStore::connect(&PgSettings::new(server.new_database().await.unwrap()))
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        for (file, path) in &structure {
            store
                .import(file, path, &project.taxonomy)
                .await
                .unwrap_or_else(|e| panic!("{e}"));
        }
        store
    };
    let (mut first, mut again, mut changed, mut raw) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    runtime.block_on(async {
        for round in 0..rounds {
            let imports = async || {
                let store = fresh().await;
                let mut times = Vec::new();
                for (file, path, expect) in [
                    (&file, &people_csv, (people, 0, 0)),
                    (&file, &people_csv, (0, 0, people)),
                    (&moved_file, &moved_csv, (0, people / 10, 0)),
                ] {
                    let t = Instant::now();
                    let summary = store
                        .import(file, path, &project.taxonomy)
                        .await
                        .unwrap_or_else(|e| panic!("{e}"));
                    times.push(t.elapsed().as_secs_f64());
                    assert_eq!(summary.added, expect.0, "added");
                    assert_eq!(summary.updated, expect.1, "updated");
                    if expect.2 > 0 {
                        assert_eq!(summary.unchanged, expect.2, "unchanged");
                    }
                }
                store.close().await;
                times
            };
            let copy = async || {
                let store = fresh().await;
                let t = Instant::now();
                store.copy_people(&rows).await.unwrap_or_else(|e| panic!("{e}"));
                let took = t.elapsed().as_secs_f64();
                store.close().await;
                took
            };
            let (times, copied) = if round % 2 == 0 {
                let times = imports().await;
                (times, copy().await)
            } else {
                let copied = copy().await;
                (imports().await, copied)
            };
            println!(
                "round {round} ({} first): Store::import first {:.3} s, unchanged {:.3} s, 10% moved {:.3} s; raw COPY of the people rows {copied:.3} s: {:.3} of the raw rate",
                if round % 2 == 0 { "import" } else { "COPY" },
                times[0],
                times[1],
                times[2],
                copied / times[0]
            );
            first.push(times[0]);
            again.push(times[1]);
            changed.push(times[2]);
            raw.push(copied);
        }
    });
    let (first, again, changed, raw) = (median(first), median(again), median(changed), median(raw));
    println!(
        "median of {rounds}: import {first:.3} s ({:.0} people/s), unchanged re-import {again:.3} s, 10% moved {changed:.3} s; raw COPY {raw:.3} s: ratio raw/import {:.3} (goal at least 0.3)",
        people as f64 / first,
        raw / first
    );
}
