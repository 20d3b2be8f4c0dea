//! The annual report's learning section for a year of a large partnership:
//! 100,000 people (20 agencies of 50 teams), 50 rollouts over the year,
//! each to half the partnership (2.5 million member rows and as many sent
//! messages), seven in ten acknowledged, one in ten answering a follow-up,
//! and champions' confirmations. The same number of rollouts in the year
//! before, for the previous-period figures.
//!
//! The directory is imported through the store; rollouts are created
//! through the store; members, messages, acknowledgements and answers are
//! bulk-inserted with SQL (setting up millions of rows one call each would
//! take far longer than what is measured). Then a child process generates
//! the whole section (both periods' queries, figures, sentences) and writes
//! the HTML, Word document and CSVs, so its peak RSS (`VmHWM`) is its own.
//!
//! Run with `cargo bench -p cascade --bench annual_report`;
//! `CASCADE_BENCH_PEOPLE` (default 100,000) and `CASCADE_BENCH_AUDIENCE_SHARE`
//! (members a rollout, as one person in N; default 2) size it. Goal: under
//! 30 s and under 500 MB. Figures go in BENCHMARKS.md.

use cascade::bench::write_directory;
use cascade::bench::{env_number, status_kb};
use cascade_engine::report::annual::{self, AnnualOptions};
use cascade_engine::report::docx;
use cascade_model::content::{Taxonomy, parse_item};
use cascade_model::directory::read_csv;
use cascade_model::rollout::{Calendar, QuietHours, parse_definition};
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

fn calendar() -> Calendar {
    Calendar::new("Europe/London", QuietHours::default()).unwrap()
}

fn main() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    if let Ok(db) = std::env::var("CASCADE_BENCH_ANNUAL_DB") {
        runtime.block_on(measure(&db));
    } else {
        runtime.block_on(setup_and_run());
    }
}

/// The measured part, in a process of its own.
async fn measure(db: &str) {
    let started = Instant::now();
    let store = SqliteStore::open(db).await.unwrap();
    let options = AnnualOptions {
        from: NaiveDate::from_ymd_opt(2026, 4, 1).unwrap(),
        to: NaiveDate::from_ymd_opt(2027, 3, 31).unwrap(),
        within_days: 14,
        examples: Vec::new(),
        edits: Default::default(),
    };
    let section = annual::generate(
        &store,
        &options,
        &calendar(),
        &Taxonomy::default(),
        Utc.with_ymd_and_hms(2027, 4, 15, 12, 0, 0).unwrap(),
    )
    .await
    .unwrap();
    let generated = started.elapsed().as_secs_f64();
    let out = tempfile::tempdir().unwrap();
    std::fs::write(out.path().join("annual.html"), annual::html(&section)).unwrap();
    std::fs::write(out.path().join("annual.docx"), docx::render(&section)).unwrap();
    std::fs::write(
        out.path().join("figures.csv"),
        annual::figures_csv(&section),
    )
    .unwrap();
    std::fs::write(
        out.path().join("published.csv"),
        annual::published_csv(&section),
    )
    .unwrap();
    std::fs::write(
        out.path().join("sentences.md"),
        annual::sentences_file(&section),
    )
    .unwrap();
    let total = started.elapsed().as_secs_f64();
    let reach = section
        .figures
        .iter()
        .find(|f| f.id == "reach-all")
        .unwrap();
    println!(
        "RESULT generate {generated:.2} s, with files {total:.2} s, peak RSS {} MB, {} figures, {} rollouts, reach {}",
        status_kb("VmHWM:") / 1024,
        section.figures.len(),
        section.published.len(),
        reach.this.shown()
    );
}

async fn setup_and_run() {
    let people = env_number("CASCADE_BENCH_PEOPLE", 100_000);
    let share = env_number("CASCADE_BENCH_AUDIENCE_SHARE", 2).max(1);
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("cascade.db");
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
    // A year and the year before: rollouts every week or so from April.
    let year_start = Utc
        .with_ymd_and_hms(2025, 4, 7, 9, 0, 0)
        .unwrap()
        .timestamp_millis();
    for r in 0..ROLLOUTS * 2 {
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
        // The year before from 7 April 2025, this year from 6 April 2026.
        let at = year_start
            + (r % ROLLOUTS) as i64 * 7 * 86_400_000
            + if r >= ROLLOUTS { 364 * 86_400_000 } else { 0 };
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
             FROM rollout_members WHERE rollout_id = ?1 AND substr(person_id, -2) != '07'",
        )
        .bind(&id)
        .bind(at)
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
    let members: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM rollout_members")
        .fetch_one(&pool)
        .await
        .unwrap();
    pool.close().await;
    drop(store);
    println!(
        "{} rollouts over two years, {members} member rows, set up in {:.1} s",
        ROLLOUTS * 2,
        t.elapsed().as_secs_f64()
    );

    let exe = std::env::current_exe().unwrap();
    let out = std::process::Command::new(exe)
        .env("CASCADE_BENCH_ANNUAL_DB", &db)
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
    let seconds: f64 = line.split_whitespace().nth(6).unwrap().parse().unwrap();
    let mb: u64 = line.split_whitespace().nth(10).unwrap().parse().unwrap();
    println!(
        "goal: under {GOAL_SECONDS} s and under {GOAL_MB} MB: {}",
        if seconds < GOAL_SECONDS && mb < GOAL_MB {
            "met"
        } else {
            "MISSED"
        }
    );
}
