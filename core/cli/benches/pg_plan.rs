//! Issue 18 on PostgreSQL: importing a directory of 1,000,000 people and
//! planning and starting a rollout to them, each against a raw `COPY` of
//! the same rows into the same tables of the same server, in one run.
//!
//! The server is one the bench starts on loopback from the machine's
//! PostgreSQL (as the tests do) but with PostgreSQL's default durability
//! (`fsync` and `synchronous_commit` on). Planning is what `cascade
//! rollout start` does through the store: count the audience per wave and
//! channel, then `create_rollout` with the audience resolved by one
//! `INSERT ... SELECT` in PostgreSQL. The raw baseline writes the same
//! number of member rows, with the same columns (person, wave, due time,
//! team and agency), into `rollout_members` of another rollout with one
//! `COPY ... FROM STDIN` (`PgStore::copy_members`). Peak RSS is read
//! after resetting it (`/proc/self/clear_refs`), so it is the planning's
//! own. Rounds alternate which goes first.
//!
//! `cargo bench -p cascade --bench pg_plan`; `CASCADE_BENCH_PEOPLE` sets the
//! directory size (default 1,000,000). Figures go in BENCHMARKS.md.

use cascade::bench::{median, write_directory};
use cascade_engine::delivery::millis;
use cascade_engine::project::{Project, scaffold};
use cascade_model::content;
use cascade_model::directory::read_csv;
use cascade_model::rollout::{Calendar, audience_query, parse_definition, wave_send};
use cascade_store::pg::test_server::TestPostgres;
use cascade_store::pg::{PgSettings, PgStore};
use cascade_store::{Audiences, NewMember, NewRollout, Outbox, Store};
use chrono::Utc;
use std::time::Instant;

const DEFAULT_PEOPLE: usize = 1_000_000;
const ROUNDS: usize = 3;

fn status_kb(field: &str) -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix(field))
        .and_then(|v| v.trim().trim_end_matches(" kB").trim().parse().ok())
        .unwrap_or(0)
}

/// Resets the peak RSS to the current RSS.
fn reset_peak() {
    let _ = std::fs::write("/proc/self/clear_refs", "5");
}

fn main() {
    let people: usize = std::env::var("CASCADE_BENCH_PEOPLE")
        .ok()
        .and_then(|v| v.replace('_', "").parse().ok())
        .unwrap_or(DEFAULT_PEOPLE);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path().join("project");
        scaffold(&root).unwrap();
        let project = Project::open(&root).unwrap();
        write_directory(&project.directory_dir(), people, 20, 50);
        let server = TestPostgres::durable().unwrap_or_else(|e| panic!("{e}"));
        let store = PgStore::connect(&PgSettings::new(server.new_database().await.unwrap()))
            .await
            .unwrap();

        // The directory, as `cascade import` writes it.
        let t = Instant::now();
        let mut files = Vec::new();
        for name in ["agencies.csv", "teams.csv", "people.csv", "champions.csv"] {
            let path = project.directory_dir().join(name);
            files.push((read_csv(&path).unwrap_or_else(|e| panic!("{}", e[0])), path));
        }
        let read = t.elapsed();
        let t = Instant::now();
        for (file, path) in &files {
            store
                .import(file, path, &project.taxonomy)
                .await
                .unwrap_or_else(|e| panic!("{e}"));
        }
        let imported = t.elapsed();
        // (id, team, agency) of every person, for the raw rows.
        let people_rows: Vec<(String, String, String)> = files
            .iter()
            .find(|(_, p)| p.ends_with("people.csv"))
            .map(|(f, _)| match f {
                cascade_model::directory::DirectoryFile::People(rows) => {
                    rows.iter()
                        .map(|r| {
                            let p = &r.value;
                            (p.id.clone(), p.team_id.clone(), p.agency_id.clone())
                        })
                        .collect()
                }
                _ => Vec::new(),
            })
            .unwrap();
        drop(files);
        println!(
            "setup: {people} people read in {:.1} s and imported into PostgreSQL with Store::import in {:.1} s",
            read.as_secs_f64(),
            imported.as_secs_f64()
        );

        let calendar = Calendar::new(
            &project.config.partnership.time_zone,
            project.config.partnership.quiet_hours,
        )
        .unwrap();
        let (items, _) = content::load_dir(&project.content_dir(), &project.taxonomy);
        let example = project.rollouts_dir().join("neglect-briefing.toml");
        let text = std::fs::read_to_string(&example).unwrap();
        let example_definition = parse_definition(&example, &text).unwrap();
        let example_item = items
            .into_iter()
            .find(|l| l.item.id == example_definition.item)
            .unwrap();

        let (mut plans, mut raws, mut peaks) = (Vec::new(), Vec::new(), Vec::new());
        // The raw rows go to rollouts of the example item itself.
        store
            .save_item(&example_item.item, &example_item.text)
            .await
            .unwrap();
        for round in 0..ROUNDS {
            // An item of its own a round: people another rollout of the
            // same item already has are left out of a new one.
            let mut loaded = example_item.clone();
            loaded.item.id = format!("{}-{round}", example_item.item.id);
            let mut definition = example_definition.clone();
            definition.item = loaded.item.id.clone();
            store.save_item(&loaded.item, &loaded.text).await.unwrap();
            let plan = async |id: String| {
                reset_peak();
                let before = status_kb("VmRSS:");
                let t = Instant::now();
                let query = audience_query(
                    &definition,
                    &loaded.item.id,
                    &loaded.item.version.0,
                    &loaded.item.themes,
                    &|wave| millis(wave_send(&definition, &calendar, wave)),
                );
                let counts = store.count_audience(&query, &["email".to_owned()]).await.unwrap();
                let counted = t.elapsed().as_secs_f64();
                let json = serde_json::to_string(&definition).unwrap();
                store
                    .create_rollout(NewRollout {
                        id: &id,
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
                let took = t.elapsed().as_secs_f64();
                let members = counts.members();
                let peak = status_kb("VmHWM:").saturating_sub(before);
                ((took, counted), members, peak)
            };
            let raw = async |id: String, n: usize| {
                store
                    .create_rollout(NewRollout {
                        id: &id,
                        item_id: &example_item.item.id,
                        item_version: &example_item.item.version.0,
                        definition: "{}",
                        members: &[],
                        audience: None,
                        now: 0,
                        team_posts: &[],
                    })
                    .await
                    .unwrap();
                let rows: Vec<(NewMember, &str, &str)> = people_rows
                    .iter()
                    .take(n)
                    .map(|(p, team, agency)| {
                        let member = NewMember {
                            person_id: p.clone(),
                            wave: 0,
                            first_due_at: 1_000,
                        };
                        (member, team.as_str(), agency.as_str())
                    })
                    .collect();
                let t = Instant::now();
                store.copy_members(&id, &rows).await.unwrap();
                t.elapsed().as_secs_f64()
            };
            let (((took, counted), members, peak), raw_secs) = if round.is_multiple_of(2) {
                let p = plan(format!("plan-{round}")).await;
                let r = raw(format!("raw-{round}"), p.1).await;
                (p, r)
            } else {
                let r = raw(format!("raw-{round}"), people).await;
                let p = plan(format!("plan-{round}")).await;
                (p, r * p.1 as f64 / people as f64)
            };
            println!(
                "round {round}: planned and started {members} members in {took:.2} s ({:.0}/s; counting the audience {counted:.2} s, writing the members {:.2} s), peak RSS +{} MB; raw COPY of the same rows {raw_secs:.2} s ({:.0}/s): {:.2} of the raw rate",
                members as f64 / took,
                took - counted,
                peak / 1024,
                members as f64 / raw_secs,
                raw_secs / took
            );
            plans.push(took);
            raws.push(raw_secs);
            peaks.push(peak as f64);
        }
        let (plan, raw) = (median(plans), median(raws));
        println!(
            "median of {ROUNDS}: planning {plan:.2} s against raw COPY {raw:.2} s: {:.2} of the raw rate (goal at least 0.5, under 10 s); peak RSS while planning +{:.0} MB",
            raw / plan,
            median(peaks) / 1024.0
        );
        store.close().await;
    });
}
