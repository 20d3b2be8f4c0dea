//! Open rollouts through a sequence of directory imports: the real store,
//! the engine's scheduler and dispatcher with the real `file` plugin, a
//! hand-held clock, and `cascade import` itself for what it prints.

mod support;

use cascade_engine::delivery::DispatchSettings;
use cascade_engine::engine::{Engine, Runner};
use cascade_engine::project::Project;
use cascade_model::rollout::StepKind;
use cascade_store::{
    DeliveryState, DirectoryImport, Inspect, MemberRecord, MembershipChange, Outbox, OutboxRow,
    RolloutState, SqliteStore,
};
use cascade_test_support::outbox::rows;
use cascade_test_support::utc;
use chrono::Utc;
use std::path::Path;
use std::process::Command;
use std::time::Duration;
use support::{OUTBOX, acknowledge, import, project, rollout_file, start};

/// Children's Social Care North from Friday 27 March 2026 09:00 GMT, open
/// to joiners until 30 April.
const NORTH: &str = r#"
id = "north"
item = "7mb-neglect-seeing-the-child"
start = 2026-03-27T09:00:00
channels = ["outbox"]
ack_deadline_days = 10
reminder_days = [2]
escalation_days = [1]
enrol = "joiners"
open_until = 2026-04-30
[audience]
teams = ["cs-north"]
[[waves]]
name = "Everyone"
after_days = 0
"#;

/// The same team, another item, members fixed at the start.
const FIXED: &str = r#"
id = "fixed"
item = "7mb-safer-sleep"
start = 2026-03-27T09:00:00
channels = ["outbox"]
ack_deadline_days = 10
reminder_days = [2]
[audience]
teams = ["cs-north"]
[[waves]]
name = "Everyone"
after_days = 0
"#;

/// An earlier rollout of the same item to the south team, cancelled after
/// Liam acknowledged it.
const SOUTH: &str = r#"
id = "south"
item = "7mb-neglect-seeing-the-child"
start = 2026-03-13T09:00:00
channels = ["outbox"]
ack_deadline_days = 10
[audience]
teams = ["cs-south"]
[[waves]]
name = "Everyone"
after_days = 0
"#;

const NIA: &str = "p-nia-okoro";
const LIAM: &str = "p-liam-brennan";
const NADIA: &str = "p-nadia-hussain";
const RAVI: &str = "p-ravi-example";

/// A runner that reads the directory as the store holds it now.
async fn runner(dir: &Path) -> Runner<SqliteStore> {
    let engine = Engine::open(Project::open(dir).unwrap(), true)
        .await
        .unwrap();
    engine
        .runner(DispatchSettings {
            backoff_base: Duration::from_secs(60),
            ..DispatchSettings::default()
        })
        .await
        .unwrap()
}

/// Adds people to the people file, and moves Liam and Nadia (both of the
/// south team) to the north team.
fn join_and_move(dir: &Path, new: &[&str]) {
    let path = dir.join("directory/people.csv");
    let mut people: String = std::fs::read_to_string(&path)
        .unwrap()
        .lines()
        .map(|l| {
            if l.starts_with(LIAM) || l.starts_with(NADIA) {
                l.replace(",cs-south,", ",cs-north,")
                    .replace("p-rachel-adeyemi", "p-david-okonjo")
            } else {
                l.to_owned()
            }
        })
        .map(|l| l + "\n")
        .collect();
    for id in new {
        let name = id.trim_start_matches("p-").replace('-', ".");
        people.push_str(&format!(
            "{id},New Starter,{name}@northbridge-council.example,nb-council,cs-north,practitioner,p-david-okonjo,\n"
        ));
    }
    std::fs::write(&path, people).unwrap();
}

fn change<'a>(import: &'a DirectoryImport, rollout: &str) -> &'a MembershipChange {
    import
        .rollouts
        .iter()
        .find(|c| c.rollout_id == rollout)
        .unwrap()
}

fn member<'a>(members: &'a [MemberRecord], person: &str) -> Option<&'a MemberRecord> {
    members.iter().find(|m| m.person_id == person)
}

fn about<'a>(rows: &'a [OutboxRow], rollout: &str, person: &str) -> Vec<&'a OutboxRow> {
    rows.iter()
        .filter(|r| r.rollout_id == rollout && r.person_id == person)
        .collect()
}

async fn snapshot(store: &SqliteStore) -> (Vec<MemberRecord>, Vec<MemberRecord>, Vec<OutboxRow>) {
    (
        store.members("north").await.unwrap(),
        store.members("fixed").await.unwrap(),
        store.outbox_rows().await.unwrap(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn joiners_are_enrolled_on_their_own_timetable_and_nobody_is_asked_twice() {
    let dir = project(OUTBOX);
    // The earlier rollout: Liam acknowledges it, then it is cancelled.
    let south = rollout_file(dir.path(), "south", SOUTH);
    let first = start(dir.path(), &south, utc(2026, 3, 10, 12, 0)).await;
    first.tick(utc(2026, 3, 13, 9, 0)).await.unwrap();
    acknowledge(&first, "south", LIAM).await;
    let store = first.store().clone();
    store
        .set_rollout_state("south", RolloutState::Cancelled, 0)
        .await
        .unwrap();
    std::fs::remove_file(&south).unwrap();

    for (name, text) in [("north", NORTH), ("fixed", FIXED)] {
        let path = rollout_file(dir.path(), name, text);
        start(dir.path(), &path, utc(2026, 3, 20, 12, 0)).await;
    }
    let started = runner(dir.path()).await;
    assert_eq!(
        started.tick(utc(2026, 3, 27, 9, 0)).await.unwrap(),
        (10, 10),
        "five in the north, in each rollout"
    );
    let starters = store.members("north").await.unwrap();
    assert!(
        starters
            .iter()
            .all(|m| m.joined_at.is_none() && m.shift_days == 0)
    );

    // Wednesday 1 April, 10:00 BST: Nia starts in the north team; Liam
    // (who acknowledged this version) and Nadia move there from the south.
    join_and_move(dir.path(), &[NIA]);
    let wednesday = utc(2026, 4, 1, 9, 0);
    let before = snapshot(&store).await;
    let dry = import(dir.path(), &store, wednesday, true).await;
    assert_eq!(snapshot(&store).await, before, "a dry run writes nothing");
    assert_eq!(
        change(&dry, "north"),
        &MembershipChange {
            rollout_id: "north".into(),
            joiners: Some(2),
            left: 0,
            moved: 0,
            back: 0,
        },
        "Nia and Nadia; Liam acknowledged this version already"
    );
    assert_eq!(change(&dry, "fixed").joiners, None, "not open to joiners");
    assert!(change(&dry, "fixed").is_empty());
    let done = import(dir.path(), &store, wednesday, false).await;
    assert_eq!(done, dry, "the import does what the dry run said");

    let members = store.members("north").await.unwrap();
    assert_eq!(members.len(), 7);
    assert!(member(&members, LIAM).is_none(), "never asked again");
    for person in [NIA, NADIA] {
        let m = member(&members, person).unwrap();
        assert_eq!(m.joined_at, Some(wednesday.timestamp_millis()), "{person}");
        // The wave sent on Friday 27 March at 09:00; theirs is the first
        // 09:00 after they joined: Thursday 2 April (BST), six days on.
        assert_eq!(m.shift_days, 6, "{person}");
        assert_eq!(
            m.next_due_at,
            Some(utc(2026, 4, 2, 8, 0).timestamp_millis()),
            "{person}"
        );
        assert_eq!(m.team_id.as_deref(), Some("cs-north"));
    }
    assert_eq!(
        store.members("fixed").await.unwrap(),
        before.1,
        "a fixed rollout is unaffected"
    );

    // The runner started before the import (as a `serve` running through
    // it) reads the new directory at its next tick, so Nia, new to it, is
    // sent to. It sends them nothing before their own send, and never a
    // step due before they joined (the wave's reminder went on Monday 30
    // March).
    let runner = started;
    runner.tick(utc(2026, 4, 1, 12, 0)).await.unwrap();
    let sent = rows(&*store).await;
    assert!(about(&sent, "north", NIA).is_empty());
    runner.tick(utc(2026, 4, 2, 8, 0)).await.unwrap();
    // Their reminder two days on, Saturday, waits for Monday 6 April
    // 08:00 BST; their escalation a day after their own deadline
    // (Sunday 12 April, 09:00 BST): Monday 13 April, 09:00 BST.
    for (day, hour) in [
        (3, 8),
        (4, 8),
        (6, 7),
        (6, 8),
        (7, 8),
        (13, 8),
        (13, 9),
        (20, 8),
    ] {
        runner.tick(utc(2026, 4, day, hour, 0)).await.unwrap();
    }
    let sent = rows(&*store).await;
    for person in [NIA, NADIA] {
        let theirs = about(&sent, "north", person);
        let kinds: Vec<(StepKind, i64)> = theirs
            .iter()
            .filter(|r| r.state == DeliveryState::Sent)
            .map(|r| (r.step_kind, r.due_at))
            .collect();
        assert_eq!(
            kinds,
            [
                (StepKind::Initial, utc(2026, 4, 2, 8, 0).timestamp_millis()),
                (StepKind::Reminder, utc(2026, 4, 6, 7, 0).timestamp_millis()),
                (
                    StepKind::Escalation,
                    utc(2026, 4, 13, 8, 0).timestamp_millis()
                ),
            ],
            "{person}: every step of their own timetable, once"
        );
        assert!(
            theirs
                .iter()
                .all(|r| r.due_at >= wednesday.timestamp_millis())
        );
    }
    assert!(about(&sent, "fixed", NIA).is_empty());
    assert!(about(&sent, "north", LIAM).is_empty());

    // The same files again enrol nobody and change nothing.
    let before = snapshot(&store).await;
    let again = import(dir.path(), &store, utc(2026, 4, 21, 9, 0), false).await;
    assert_eq!(change(&again, "north").joiners, Some(0));
    assert!(change(&again, "north").is_empty(), "{again:?}");
    assert_eq!(snapshot(&store).await, before);

    // After 30 April the rollout is closed: a new starter is not enrolled.
    join_and_move(dir.path(), &[RAVI]);
    let late = import(dir.path(), &store, utc(2026, 5, 1, 9, 0), false).await;
    assert_eq!(change(&late, "north").joiners, None, "closed");
    let members = store.members("north").await.unwrap();
    assert!(member(&members, RAVI).is_none());
    assert_eq!(members.len(), 7);
}

fn cascade(args: &[&str], dir: &Path) -> String {
    support::ok(
        Command::new(env!("CARGO_BIN_EXE_cascade"))
            .args(args)
            .arg("--project")
            .arg(dir)
            .output()
            .unwrap(),
    )
}

/// The table rows `cascade import` prints for running rollouts.
fn rollout_lines(stdout: &str) -> Vec<String> {
    stdout
        .lines()
        .filter(|l| l.starts_with("  north ") || l.starts_with("  rollout "))
        .map(str::to_owned)
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn import_prints_the_joiners_it_will_enrol_and_then_enrols_them() {
    // `cascade import` reads the real clock: a rollout that started
    // yesterday and is open for a year.
    let now = Utc::now();
    let yesterday = (now - chrono::Days::new(1)).date_naive();
    let text = NORTH
        .replace("2026-03-27", &yesterday.to_string())
        .replace("open_until = 2026-04-30\n", "");
    let dir = project(OUTBOX);
    let path = rollout_file(dir.path(), "north", &text);
    let runner = start(dir.path(), &path, now - chrono::Days::new(2)).await;
    let store = runner.store().clone();
    join_and_move(dir.path(), &[NIA]);

    let before = snapshot(&store).await;
    let dry = cascade(&["import", "--dry-run"], dir.path());
    assert_eq!(snapshot(&store).await, before, "the dry run wrote nothing");
    let planned = rollout_lines(&dry);
    assert_eq!(planned.len(), 2, "{dry}");
    assert!(
        planned[1]
            .split_whitespace()
            .eq(["north", "3", "0", "0", "0"]),
        "Nia, Liam and Nadia: {dry}"
    );
    let done = cascade(&["import"], dir.path());
    assert_eq!(rollout_lines(&done), planned, "{done}");
    assert_eq!(store.members("north").await.unwrap().len(), 8);
    let again = cascade(&["import", "--dry-run"], dir.path());
    assert!(
        again.contains("1 running, no joiners, leavers or movers"),
        "{again}"
    );
}
