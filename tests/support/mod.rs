//! Shared set-up for the end-to-end tests: a scaffolded demo project with
//! chosen channels imported by the `cascade` binary, and rollouts started
//! through the engine. Times, the outbox and the evidence are read through
//! `cascade_test_support`.
#![allow(dead_code)] // each test file uses its own share of these

use cascade_engine::delivery::DispatchSettings;
use cascade_engine::engine::{Engine, Runner};
use cascade_engine::project::Project;
use cascade_store::SqliteStore;
use cascade_test_support::DemoProject;
use chrono::{DateTime, Utc};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

/// The demo project with `channels` in place of its [[channels]] (`OUTBOX`
/// standing for its `outbox` folder), imported with `cascade import`.
pub fn project(channels: &str) -> tempfile::TempDir {
    // Without the briefing's check questions: these flows acknowledge with
    // one press or one command (the questions have tests of their own).
    imported(DemoProject::new().without_check_questions(), channels)
}

/// As [`project`], the briefing's check question kept.
pub fn project_with_check_questions(channels: &str) -> tempfile::TempDir {
    imported(DemoProject::new(), channels)
}

fn imported(project: DemoProject, channels: &str) -> tempfile::TempDir {
    let outbox = project.path().join("outbox");
    let dir = project
        .channels(&channels.replace("OUTBOX", &outbox.display().to_string()))
        .into_dir();
    let out = Command::new(env!("CARGO_BIN_EXE_cascade"))
        .args(["import", "--project"])
        .arg(dir.path())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    dir
}

pub const OUTBOX: &str = r#"
[[channels]]
name = "outbox"
plugin = "file"
identity = "email"
formats = ["email-text"]
config = { dir = "OUTBOX" }
"#;

pub fn rollout_file(dir: &Path, name: &str, toml: &str) -> PathBuf {
    let path = dir.join("rollouts").join(format!("{name}.toml"));
    std::fs::write(&path, toml).unwrap();
    path
}

pub async fn start(dir: &Path, rollout: &Path, now: DateTime<Utc>) -> Runner<SqliteStore> {
    let engine = Engine::open(Project::open(dir).unwrap(), true)
        .await
        .unwrap();
    let planned = engine
        .plan(rollout, now)
        .await
        .unwrap_or_else(|p| panic!("{p}"));
    engine.start(&planned, now).await.unwrap();
    let settings = DispatchSettings {
        backoff_base: Duration::from_secs(60),
        ..DispatchSettings::default()
    };
    engine.runner(settings).await.unwrap()
}

/// Everyone, one wave, at 09:00 on Friday 27 March 2026; CHANNELS to fill in.
pub const EVERYONE_NOW: &str = r#"
id = "now"
item = "7mb-neglect-seeing-the-child"
start = 2026-03-27T09:00:00
channels = CHANNELS
ack_deadline_days = 10
[audience]
[[waves]]
name = "Everyone"
after_days = 0
"#;

/// Records `person`'s acknowledgement of the item version `rollout` pinned,
/// as an acknowledgement through the business unit.
pub async fn acknowledge(runner: &Runner<SqliteStore>, rollout: &str, person: &str) {
    use cascade_store::{AckMethod, Evidence, NewAcknowledgement, Outbox};
    let stored = runner.store().rollout(rollout).await.unwrap().unwrap();
    let ack = NewAcknowledgement {
        person_id: person.to_owned(),
        item_id: stored.item_id,
        item_version: stored.item_version,
        rollout_id: Some(rollout.to_owned()),
        delivery_id: None,
        channel: "outbox".to_owned(),
        method: AckMethod::OnBehalf,
        at: 0,
    };
    runner.store().acknowledge_item(&ack).await.unwrap();
}

/// Runs `cascade ARGS` in `cwd` as the user `dpo-officer` (who records of
/// erasures and evidence exports name).
pub fn cascade_in(args: &[&str], cwd: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_cascade"))
        .args(args)
        .current_dir(cwd)
        .env("USER", "dpo-officer")
        .output()
        .expect("the cascade binary runs")
}

pub fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// A command's standard output, once it succeeded.
pub fn ok(out: Output) -> String {
    assert!(
        out.status.success(),
        "failed:\n{}\n{}",
        text(&out.stdout),
        text(&out.stderr)
    );
    text(&out.stdout)
}

/// The partnership's calendar from the project's config.
pub fn calendar(project: &Project) -> cascade_model::rollout::Calendar {
    cascade_model::rollout::Calendar::new(
        &project.config.partnership.time_zone,
        project.config.partnership.quiet_hours,
    )
    .unwrap()
}

/// The project's four directory files, read as `cascade import` reads them.
pub fn directory_files(dir: &Path) -> Vec<(PathBuf, cascade_model::directory::DirectoryFile)> {
    let project = Project::open(dir).unwrap();
    ["agencies", "teams", "people", "champions"]
        .iter()
        .map(|name| {
            let path = project.directory_dir().join(format!("{name}.csv"));
            let file =
                cascade_model::directory::read_csv(&path).unwrap_or_else(|e| panic!("{}", e[0]));
            (path, file)
        })
        .collect()
}

/// Imports the project's directory at `now` through the engine, as
/// `cascade import` does (`dry_run`: `--dry-run`).
pub async fn import(
    dir: &Path,
    store: &SqliteStore,
    now: DateTime<Utc>,
    dry_run: bool,
) -> cascade_store::DirectoryImport {
    let project = Project::open(dir).unwrap();
    cascade_engine::directory_import::import_directory(
        store,
        &project.taxonomy,
        &calendar(&project),
        &directory_files(dir),
        now,
        dry_run,
    )
    .await
    .unwrap_or_else(|e| panic!("{e}"))
}
