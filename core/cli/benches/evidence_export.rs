//! The evidence export for a year of a large partnership: 100,000 people
//! (20 agencies of 50 teams), 50 rollouts over the year, each to half the
//! partnership: 2.5 million deliveries sent, seven in ten acknowledged
//! (1.75 million acknowledgements), one in ten answering a follow-up, and
//! champions' confirmations: about 4.5 million evidence events, every one
//! a link of the hash chain.
//!
//! The directory is imported and the rollouts created through the store;
//! the evidence rows are bulk-inserted with SQL and then chained by the
//! store's own append (the test-support `chain_unchained`, 50,000 links a
//! transaction), since recording millions of events one call each would
//! take far longer than what is measured. Then a child process runs
//! `cascade evidence export`'s library call for the year (CSVs, item
//! versions, index, manifest, Ed25519 signature), so its peak RSS
//! (`VmHWM`) is its own, and then checks the pack as `verify` does.
//!
//! Run with `cargo bench -p cascade --bench evidence_export`;
//! `CASCADE_BENCH_PEOPLE` (default 100,000) and
//! `CASCADE_BENCH_AUDIENCE_SHARE` (members a rollout, as one person in N;
//! default 2) size it; `CASCADE_BENCH_STORE=FILE` keeps the store made in
//! FILE, and when FILE exists measures it without making it again. Goal: the export under 30 s and under 500 MB.
//! Figures go in BENCHMARKS.md.

use cascade::bench::write_directory;
use cascade::bench::{env_number, status_kb};
use cascade_engine::evidence::{self, ExportRequest, PackKey};
use cascade_model::content::{Taxonomy, parse_item};
use cascade_model::directory::read_csv;
use cascade_model::rollout::parse_definition;
use cascade_store::{NewRollout, Outbox, SqliteStore, Store};
use chrono::{NaiveDate, TimeZone, Utc};
use std::path::Path;
use std::time::Instant;

const ROLLOUTS: usize = 50;
const THEMES: [&str; 6] = [
    "neglect",
    "cse",
    "domestic-abuse",
    "mental-health",
    "missing-children",
    "safer-sleep",
];
const GOAL_SECONDS: f64 = 30.0;
const GOAL_MB: u64 = 500;

fn main() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    if let Ok(db) = std::env::var("CASCADE_BENCH_EVIDENCE_DB") {
        runtime.block_on(measure(&db));
    } else {
        runtime.block_on(setup_and_run());
    }
}

/// The measured part, in a process of its own.
async fn measure(db: &str) {
    let started = Instant::now();
    let store = SqliteStore::open(db).await.unwrap();
    let out_parent = tempfile::tempdir().unwrap();
    let out = out_parent.path().join("pack");
    let key_file = out_parent.path().join("pack.key");
    let key = PackKey::generate(&key_file).unwrap();
    let from = NaiveDate::from_ymd_opt(2026, 4, 1).unwrap();
    let to = NaiveDate::from_ymd_opt(2027, 3, 31).unwrap();
    let request = ExportRequest {
        partnership: "Bench Partnership",
        from,
        to,
        time_zone: "Europe/London",
        bounds: (
            Utc.with_ymd_and_hms(2026, 3, 31, 23, 0, 0)
                .unwrap()
                .timestamp_millis(),
            Utc.with_ymd_and_hms(2027, 4, 1, 0, 0, 0)
                .unwrap()
                .timestamp_millis(),
        ),
        now: Utc.with_ymd_and_hms(2027, 4, 15, 12, 0, 0).unwrap(),
        out: &out,
        key: Some(&key),
    };
    let pack = evidence::export(&store, &request).await.unwrap();
    let seconds = started.elapsed().as_secs_f64();
    let peak = status_kb("VmHWM:") / 1024;
    let bytes: u64 = pack.manifest.files.iter().map(|f| f.bytes).sum();
    println!(
        "RESULT export {seconds:.2} s, peak RSS {peak} MB, {} events, {} MB of files",
        pack.manifest.chain.events,
        bytes / 1_000_000
    );
    // The check's own peak: Linux resets VmHWM to the RSS now on "5".
    let _ = std::fs::write("/proc/self/clear_refs", "5");
    let t = Instant::now();
    let report = evidence::verify_pack(&out, None).unwrap();
    assert!(
        report.passed(),
        "{:?} {:?}",
        report.files,
        report.events.first()
    );
    println!(
        "verify of the pack: {:.2} s, peak RSS {} MB",
        t.elapsed().as_secs_f64(),
        status_kb("VmHWM:") / 1024
    );
}

async fn setup_and_run() {
    let people = env_number("CASCADE_BENCH_PEOPLE", 100_000);
    let share = env_number("CASCADE_BENCH_AUDIENCE_SHARE", 2).max(1);
    let dir = tempfile::tempdir().unwrap();
    let db = match std::env::var_os("CASCADE_BENCH_STORE") {
        Some(kept) => std::path::PathBuf::from(kept),
        None => dir.path().join("cascade.db"),
    };
    if db.exists() {
        println!("measuring the store kept in {}", db.display());
        run_child(&db);
        return;
    }
    let store = SqliteStore::open(db.to_str().unwrap()).await.unwrap();
    let t = Instant::now();
    let csv_dir = dir.path().join("directory");
    write_directory(&csv_dir, people, 20, 50);
    for name in ["agencies.csv", "teams.csv", "people.csv", "champions.csv"] {
        let path = csv_dir.join(name);
        let file = read_csv(&path).unwrap();
        store
            .import(&file, &path, &Taxonomy::default())
            .await
            .unwrap();
    }
    println!(
        "directory of {people} people imported in {:.1} s",
        t.elapsed().as_secs_f64()
    );

    let t = Instant::now();
    let pool = sqlx::SqlitePool::connect(&format!("sqlite://{}", db.display()))
        .await
        .unwrap();
    let year_start = Utc
        .with_ymd_and_hms(2026, 4, 6, 9, 0, 0)
        .unwrap()
        .timestamp_millis();
    for r in 0..ROLLOUTS {
        let theme = THEMES[r % THEMES.len()];
        let item_id = format!("bench-item-{r:03}");
        let text = format!(
            "+++\nkind = \"newsletter-item\"\nid = \"{item_id}\"\ntitle = \"Learning {r}\"\nnewsletter = \"Partnership Matters\"\nissue = \"2026-01\"\nthemes = [\"{theme}\"]\nstatus = \"published\"\n+++\n\nBody {r}.\n"
        );
        let item = parse_item(Path::new("item.md"), &text, &Taxonomy::default()).unwrap();
        store.save_item(&item, &text).await.unwrap();
        let id = format!("bench-r-{r:03}");
        let definition = parse_definition(
            Path::new("rollout.toml"),
            &format!(
                "id = \"{id}\"\nitem = \"{item_id}\"\nstart = 2026-05-01T09:00:00\nchannels = [\"email\"]\nack_deadline_days = 14\n[audience]\n[[waves]]\nname = \"Everyone\"\nafter_days = 0\n[[follow_ups]]\nafter_days = 90\nquestion = \"Have you used this learning in practice?\"\nanswers = [\"Used it\", \"Not yet\"]\n"
            ),
        )
        .unwrap();
        let json = serde_json::to_string(&definition).unwrap();
        let at = year_start + r as i64 * 7 * 86_400_000;
        store
            .create_rollout(NewRollout {
                id: &id,
                item_id: &item_id,
                item_version: &item.version.0,
                definition: &json,
                members: &[],
                audience: None,
                now: at,
                team_posts: &[],
            })
            .await
            .unwrap();
        let mut tx = pool.begin().await.unwrap();
        sqlx::query(
            "INSERT INTO rollout_members (rollout_id, person_id, wave, next_step, next_due_at, acknowledged_at)
             SELECT ?1, id, 0, 0, NULL,
                    CASE WHEN rowid % 10 < 7 THEN ?2 + (rowid % 2000) * 600000 ELSE NULL END
             FROM people WHERE rowid % ?3 = ?4 % ?3",
        )
        .bind(&id)
        .bind(at)
        .bind(share as i64)
        .bind(r as i64)
        .execute(&mut *tx)
        .await
        .unwrap();
        sqlx::query(
            "INSERT INTO outbox (idempotency_key, rollout_id, person_id, recipient_id, wave, step_kind,
                                 step_number, channel, channel_rank, state, attempts, due_at, sent_at, updated_at)
             SELECT ?1 || '/' || person_id, ?1, person_id, person_id, 0, 'initial', 1, 'email', 0,
                    'sent', 1, ?2, ?2, ?2
             FROM rollout_members WHERE rollout_id = ?1",
        )
        .bind(&id)
        .bind(at)
        .execute(&mut *tx)
        .await
        .unwrap();
        sqlx::query(
            "INSERT INTO acknowledgements (person_id, item_id, item_version, rollout_id, delivery_id, channel, method, at)
             SELECT m.person_id, ?2, ?3, ?1, NULL, 'web', 'link', m.acknowledged_at
             FROM rollout_members m WHERE m.rollout_id = ?1 AND m.acknowledged_at IS NOT NULL",
        )
        .bind(&id)
        .bind(&item_id)
        .bind(&item.version.0)
        .execute(&mut *tx)
        .await
        .unwrap();
        sqlx::query(
            "INSERT INTO follow_up_answers (rollout_id, person_id, follow_up, answer, example, channel, at)
             SELECT ?1, person_id, 1, CASE WHEN substr(person_id, -1) < '5' THEN 'Used it' ELSE 'Not yet' END,
                    NULL, 'web', ?2 + 90 * 86400000
             FROM rollout_members WHERE rollout_id = ?1 AND substr(person_id, -2, 1) = '3'",
        )
        .bind(&id)
        .bind(at)
        .execute(&mut *tx)
        .await
        .unwrap();
        sqlx::query(
            "INSERT INTO cascade_confirmations (champion_id, item_id, team_id, session_date, present, method, note, channel, at)
             SELECT c.person_id, ?1, ct.team_id, '2026-06-01', 8, 'team-meeting', NULL, 'web', ?2
             FROM champion_teams ct JOIN champions c ON c.person_id = ct.person_id AND c.theme = ct.theme
             WHERE substr(ct.team_id, -1) < '4'",
        )
        .bind(&item_id)
        .bind(at)
        .execute(&mut *tx)
        .await
        .unwrap();
        tx.commit().await.unwrap();
    }
    pool.close().await;
    println!(
        "{ROLLOUTS} rollouts' evidence inserted in {:.1} s",
        t.elapsed().as_secs_f64()
    );
    let t = Instant::now();
    for kind in ["delivery", "acknowledgement", "answer", "confirmation"] {
        store.chain_unchained(kind).await.unwrap();
    }
    println!(
        "chained by the store's append in {:.1} s",
        t.elapsed().as_secs_f64()
    );
    store.close().await;
    drop(store);
    run_child(&db);
}

/// Runs the measured part in a child process, on the store `db`.
fn run_child(db: &Path) {
    let exe = std::env::current_exe().unwrap();
    let out = std::process::Command::new(exe)
        .env("CASCADE_BENCH_EVIDENCE_DB", db)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    print!("{stdout}");
    let line = stdout.lines().find(|l| l.starts_with("RESULT")).unwrap();
    let words: Vec<&str> = line.split_whitespace().collect();
    let seconds: f64 = words[2].parse().unwrap();
    let mb: u64 = words[6].parse().unwrap();
    println!(
        "goal: under {GOAL_SECONDS} s and under {GOAL_MB} MB: {}",
        if seconds < GOAL_SECONDS && mb < GOAL_MB {
            "met"
        } else {
            "MISSED"
        }
    );
}
