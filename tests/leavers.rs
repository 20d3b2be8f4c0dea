//! Leavers and movers through a sequence of directory imports: the real
//! store, the engine's scheduler and dispatcher with the real `file`
//! plugin, a hand-held clock, and `cascade import` itself for the dry run.

mod support;

use cascade_engine::directory_import::import_directory;
use cascade_engine::project::Project;
use cascade_engine::report::{self, SectionKind, Selection};
use cascade_model::rollout::{Calendar, StepKind};
use cascade_store::{
    DeliveryState, DirectoryImport, Inspect, MemberRecord, MembershipChange, OutboxRow,
    SqliteStore, Store,
};
use cascade_test_support::outbox::rows;
use cascade_test_support::utc;
use std::path::Path;
use std::process::Command;
use support::{
    OUTBOX, acknowledge, calendar, directory_files, import, project, rollout_file, start,
};

/// Children's Social Care North, one wave on Friday 27 March 2026 09:00
/// GMT: David (their manager), Amara (the neglect champion), Tom, Sofia
/// and Jake.
const NORTH: &str = r#"
id = "north"
item = "7mb-neglect-seeing-the-child"
start = 2026-03-27T09:00:00
channels = ["outbox"]
ack_deadline_days = 10
reminder_days = [1]
escalation_days = [1, 2]
[audience]
teams = ["cs-north"]
[[waves]]
name = "Everyone"
after_days = 0
[[follow_ups]]
after_days = 30
question = "Have you used this in practice?"
answers = ["Used it in practice", "Not yet"]
"#;

const TOM: &str = "p-tom-reilly";
const SOFIA: &str = "p-sofia-marin";
const JAKE: &str = "p-jake-whitmore";

/// Tom leaves; Sofia and Jake move to Children's Social Care South.
fn leave_and_move(dir: &Path) {
    let path = dir.join("directory/people.csv");
    let people = std::fs::read_to_string(&path).unwrap();
    let changed: String = people
        .lines()
        .filter(|l| !l.starts_with(TOM))
        .map(|l| {
            if l.starts_with(SOFIA) || l.starts_with(JAKE) {
                l.replace(",cs-north,", ",cs-south,")
                    .replace("p-david-okonjo", "p-rachel-adeyemi")
            } else {
                l.to_owned()
            }
        })
        .map(|l| l + "\n")
        .collect();
    assert_ne!(people, changed);
    std::fs::write(&path, changed).unwrap();
}

fn member<'a>(members: &'a [MemberRecord], person: &str) -> &'a MemberRecord {
    members.iter().find(|m| m.person_id == person).unwrap()
}

fn north(import: &DirectoryImport) -> &MembershipChange {
    import
        .rollouts
        .iter()
        .find(|c| c.rollout_id == "north")
        .unwrap()
}

/// Everything the import may change about the rollout: its members and
/// its outbox rows, and the directory's people.
async fn snapshot(store: &SqliteStore) -> (Vec<MemberRecord>, Vec<OutboxRow>, Vec<String>) {
    let people = store
        .people(false)
        .await
        .unwrap()
        .into_iter()
        .map(|p| format!("{:?} {} {}", p.person, p.active, p.updated_at))
        .collect();
    (
        store.members("north").await.unwrap(),
        store.outbox_rows().await.unwrap(),
        people,
    )
}

/// Sent rows about `person` (their own messages and escalations about them).
fn sent_about(rows: &[OutboxRow], person: &str, kind: StepKind) -> usize {
    rows.iter()
        .filter(|r| r.person_id == person && r.step_kind == kind && r.state == DeliveryState::Sent)
        .count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn leavers_and_movers_stop_being_chased_in_the_import_and_a_reimport_changes_nothing() {
    let dir = project(OUTBOX);
    let path = rollout_file(dir.path(), "north", NORTH);
    let runner = start(dir.path(), &path, utc(2026, 3, 20, 12, 0)).await;
    let store = runner.store().as_ref();
    assert_eq!(runner.tick(utc(2026, 3, 27, 9, 0)).await.unwrap(), (5, 5));
    acknowledge(&runner, "north", SOFIA).await;

    // Monday's reminders are queued (Saturday's reminder waits out the
    // weekend) but not yet sent when the new directory arrives.
    let monday = utc(2026, 3, 30, 7, 0);
    assert_eq!(runner.schedule(monday).await.unwrap(), 4, "all but Sofia");
    leave_and_move(dir.path());

    // A file the import refuses stops nobody: the stop is part of the
    // import's transaction, which writes nothing at all.
    let champions = dir.path().join("directory/champions.csv");
    let good_champions = std::fs::read_to_string(&champions).unwrap();
    std::fs::write(
        &champions,
        format!("{good_champions}p-tom-reilly,neglect,no-such-team\n"),
    )
    .unwrap();
    let before = snapshot(store).await;
    let project = Project::open(dir.path()).unwrap();
    let refused = import_directory(
        store,
        &project.taxonomy,
        &calendar(&project),
        &directory_files(dir.path()),
        monday,
        false,
    )
    .await;
    assert!(refused.is_err(), "the bad champions row is refused");
    assert_eq!(snapshot(store).await, before, "nothing half-done");
    std::fs::write(&champions, good_champions).unwrap();

    // The dry run says what the import will do and does none of it.
    let dry = import(dir.path(), store, monday, true).await;
    assert_eq!(snapshot(store).await, before, "a dry run writes nothing");
    let expected = MembershipChange {
        rollout_id: "north".into(),
        joiners: None,
        left: 1,
        moved: 2,
        back: 0,
    };
    assert_eq!(north(&dry), &expected);
    assert_eq!(dry.cancelled_messages, 2, "Tom's and Jake's reminders");

    let done = import(dir.path(), store, monday, false).await;
    assert_eq!(
        (north(&done), done.cancelled_messages),
        (&expected, 2),
        "the import does what the dry run said"
    );
    let members = store.members("north").await.unwrap();
    for (person, reason) in [(TOM, "left"), (SOFIA, "moved"), (JAKE, "moved")] {
        let m = member(&members, person);
        assert_eq!(m.out_reason.as_deref(), Some(reason), "{person}");
        assert_eq!(m.next_due_at, None, "{person} is not chased");
        // Reached in Children's Social Care North, and kept there.
        assert_eq!(m.team_id.as_deref(), Some("cs-north"));
    }
    assert!(
        member(&members, SOFIA).acknowledged_at.is_some(),
        "Sofia's acknowledgement is kept"
    );
    let outbox = store.outbox_rows().await.unwrap();
    let mut cancelled: Vec<&str> = outbox
        .iter()
        .filter(|r| r.state == DeliveryState::Cancelled)
        .map(|r| r.recipient_id.as_str())
        .collect();
    cancelled.sort_unstable();
    assert_eq!(cancelled, [JAKE, TOM], "their reminders");

    // The rest of the rollout: reminders, both escalation rungs after the
    // deadline (Monday 6 April, 09:00 BST), and the follow-up.
    assert_eq!(runner.tick(monday).await.unwrap().1, 2, "David and Amara");
    for day in 7..=10 {
        runner.tick(utc(2026, 4, day, 8, 0)).await.unwrap();
    }
    runner.tick(utc(2026, 4, 27, 8, 0)).await.unwrap();
    let sent = rows(store).await;
    for person in [TOM, JAKE] {
        for kind in [StepKind::Reminder, StepKind::Escalation, StepKind::FollowUp] {
            assert_eq!(sent_about(&sent, person, kind), 0, "{person} {kind:?}");
        }
        assert!(
            !sent.iter().any(|r| r.recipient_id == person
                && r.step_kind != StepKind::Initial
                && r.state != DeliveryState::Cancelled),
            "nothing more to {person}"
        );
    }
    assert_eq!(sent_about(&sent, SOFIA, StepKind::FollowUp), 0);
    assert_eq!(
        sent_about(&sent, "p-david-okonjo", StepKind::Reminder),
        1,
        "those still in the audience are chased as before"
    );
    assert!(sent_about(&sent, "p-david-okonjo", StepKind::Escalation) > 0);

    // Reported under the team the rollout reached them in, and the movers
    // again under where they are now.
    let now = utc(2026, 4, 27, 12, 0);
    let calendar = Calendar::new(
        &project.config.partnership.time_zone,
        project.config.partnership.quiet_hours,
    )
    .unwrap();
    let report = report::generate(
        store,
        &Selection::Rollout("north".into()),
        &calendar,
        &project.taxonomy,
        now,
    )
    .await
    .unwrap();
    let row = |kind: SectionKind, key: &str| {
        report
            .sections
            .iter()
            .find(|s| s.kind == kind)
            .and_then(|s| s.rows.iter().find(|r| r.key == key))
            .unwrap_or_else(|| panic!("no {key} in {kind:?}"))
            .figures
            .clone()
    };
    let north_team = row(SectionKind::Team, "cs-north");
    assert_eq!(
        (
            north_team.audience,
            north_team.acknowledged,
            north_team.left,
            north_team.moved,
            north_team.overdue
        ),
        (5, 1, 1, 2, 2),
        "David and Amara are overdue; Tom left, Sofia and Jake moved"
    );
    assert!(
        report
            .sections
            .iter()
            .all(|s| s.kind != SectionKind::Team || s.rows.iter().all(|r| r.key != "cs-south")),
        "nobody was reached in the south"
    );
    let south_now = row(SectionKind::MovedTeamNow, "cs-south");
    assert_eq!((south_now.audience, south_now.acknowledged), (2, 1));
    assert_eq!(
        north_team.acknowledged_pct(),
        Some(25.0),
        "1 of the 4 who can"
    );

    // Importing the same files again changes nothing at all.
    let before = snapshot(store).await;
    let again = import(dir.path(), store, utc(2026, 4, 28, 9, 0), false).await;
    assert!(north(&again).is_empty(), "{again:?}");
    assert_eq!(again.cancelled_messages, 0);
    assert_eq!(snapshot(store).await.0, before.0);
    assert_eq!(snapshot(store).await.1, before.1);

    // Back in the team and the directory, all three are chased again from
    // the step they had reached; Sofia's acknowledgement still stands.
    let people = dir.path().join("directory/people.csv");
    std::fs::write(&people, project::example_people()).unwrap();
    let back = import(dir.path(), store, utc(2026, 4, 29, 9, 0), false).await;
    assert_eq!(north(&back).back, 3);
    let members = store.members("north").await.unwrap();
    for person in [TOM, SOFIA, JAKE] {
        let m = member(&members, person);
        assert_eq!((m.out_reason.as_deref(), m.out_next_due_at), (None, None));
        assert_eq!(
            m.next_due_at,
            before
                .0
                .iter()
                .find(|b| b.person_id == person)
                .unwrap()
                .out_next_due_at
        );
    }
    assert!(member(&members, SOFIA).acknowledged_at.is_some());
    assert!(
        store
            .acknowledgements()
            .await
            .unwrap()
            .iter()
            .any(|a| a.person_id == SOFIA)
    );
}

mod project {
    /// The demo project's people file as `cascade init` writes it.
    pub fn example_people() -> &'static str {
        cascade_engine::project::example_files()
            .iter()
            .find(|(path, _)| *path == "directory/people.csv")
            .map(|(_, text)| *text)
            .unwrap()
    }
}

/// The table rows `cascade import` prints for running rollouts.
fn rollout_lines(stdout: &str) -> Vec<String> {
    stdout
        .lines()
        .filter(|l| l.starts_with("  north ") || l.starts_with("  rollout "))
        .map(str::to_owned)
        .collect()
}

fn cascade(args: &[&str], dir: &Path) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_cascade"))
        .args(args)
        .arg("--project")
        .arg(dir)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn import_dry_run_writes_nothing_and_prints_what_the_import_then_does() {
    let dir = project(OUTBOX);
    let path = rollout_file(dir.path(), "north", NORTH);
    let runner = start(dir.path(), &path, utc(2026, 3, 20, 12, 0)).await;
    runner.tick(utc(2026, 3, 27, 9, 0)).await.unwrap();
    runner.schedule(utc(2026, 3, 30, 7, 0)).await.unwrap();
    let store = runner.store().clone();
    leave_and_move(dir.path());

    let before = snapshot(&store).await;
    let dry = cascade(&["import", "--dry-run"], dir.path());
    assert!(dry.contains("dry run: nothing is written"), "{dry}");
    assert_eq!(snapshot(&store).await, before, "the dry run wrote nothing");
    let planned = rollout_lines(&dry);
    assert_eq!(planned.len(), 2, "{dry}");
    assert!(
        planned[1]
            .split_whitespace()
            .eq(["north", "–", "1", "2", "0"]),
        "{dry}"
    );
    // Tom's, Sofia's and Jake's Monday reminders.
    assert!(
        dry.contains("queued messages that would be cancelled: 3"),
        "{dry}"
    );

    let done = cascade(&["import"], dir.path());
    assert_eq!(rollout_lines(&done), planned, "{done}");
    assert!(done.contains("queued messages cancelled: 3"), "{done}");
    assert_ne!(snapshot(&store).await, before);
    // Nothing left to do: a second dry run says so.
    let again = cascade(&["import", "--dry-run"], dir.path());
    assert!(rollout_lines(&again).is_empty(), "{again}");
    assert!(
        again.contains("1 running, no joiners, leavers or movers"),
        "{again}"
    );
}

/// Issue 19: leavers and movers get no refresher. Everyone in Children's
/// Social Care North acknowledges on the day; Tom leaves and Sofia and
/// Jake move before the refresher 28 days on, which goes to those still
/// in the audience only, with a link to answer it; a mover's refresher
/// already queued is cancelled with their other messages. Jake, back the
/// next day, gets the refresher still to come.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn leavers_and_movers_get_no_refresher() {
    use cascade_store::{AckMethod, Evidence, NewAcknowledgement, Outbox};
    let dir = support::project_with_check_questions(OUTBOX);
    let rollout = NORTH.replace(
        "escalation_days = [1, 2]",
        "escalation_days = [1, 2]\nrefreshers = [\"28d\", \"30d\"]",
    );
    let path = rollout_file(dir.path(), "north", &rollout);
    let runner = start(dir.path(), &path, utc(2026, 3, 20, 12, 0)).await;
    let store = runner.store().as_ref();
    runner.tick(utc(2026, 3, 27, 9, 0)).await.unwrap();
    let stored = store.rollout("north").await.unwrap().unwrap();
    let everyone = [TOM, SOFIA, JAKE, "p-david-okonjo", "p-amara-okafor"];
    for person in everyone {
        store
            .acknowledge_item(&NewAcknowledgement {
                person_id: person.to_owned(),
                item_id: stored.item_id.clone(),
                item_version: stored.item_version.clone(),
                rollout_id: Some("north".to_owned()),
                delivery_id: None,
                channel: "outbox".to_owned(),
                method: AckMethod::OnBehalf,
                at: cascade_model::time::millis(utc(2026, 3, 27, 10, 0)),
            })
            .await
            .unwrap();
    }
    // Jake's first refresher is queued (not yet sent) when he moves.
    let queued = runner.schedule(utc(2026, 4, 24, 9, 0)).await.unwrap();
    assert_eq!(queued, everyone.len(), "one refresher each");
    leave_and_move(dir.path());
    import(dir.path(), store, utc(2026, 4, 24, 9, 0), false).await;
    let members = store.members("north").await.unwrap();
    for person in [TOM, SOFIA, JAKE] {
        assert_eq!(member(&members, person).refresher_due_at, None, "{person}");
    }
    assert!(
        member(&members, "p-david-okonjo")
            .refresher_due_at
            .is_some()
    );
    // Jake moves back the next day: the refreshers still to come go on.
    let people = dir.path().join("directory/people.csv");
    let back: String = std::fs::read_to_string(&people)
        .unwrap()
        .lines()
        .map(|l| {
            if l.starts_with(JAKE) {
                l.replace(",cs-south,", ",cs-north,")
                    .replace("p-rachel-adeyemi", "p-david-okonjo")
            } else {
                l.to_owned()
            }
        })
        .map(|l| l + "\n")
        .collect();
    std::fs::write(&people, back).unwrap();
    import(dir.path(), store, utc(2026, 4, 25, 9, 0), false).await;
    for day in [24, 27, 28, 30] {
        runner.tick(utc(2026, 4, day, 9, 0)).await.unwrap();
    }
    let sent = rows(store).await;
    for person in [TOM, SOFIA] {
        assert_eq!(
            sent_about(&sent, person, StepKind::Refresher),
            0,
            "{person}"
        );
    }
    let jakes: Vec<(u32, DeliveryState)> = sent
        .iter()
        .filter(|r| r.person_id == JAKE && r.step_kind == StepKind::Refresher)
        .map(|r| (r.step_number, r.state))
        .collect();
    assert_eq!(
        jakes,
        [(1, DeliveryState::Cancelled), (2, DeliveryState::Sent)],
        "the first cancelled when he moved, the second after he came back"
    );
    for person in ["p-david-okonjo", "p-amara-okafor"] {
        assert_eq!(
            sent_about(&sent, person, StepKind::Refresher),
            2,
            "{person}"
        );
    }
    let outbox = std::fs::read_dir(dir.path().join("outbox"))
        .unwrap()
        .map(|f| std::fs::read_to_string(f.unwrap().path()).unwrap())
        .find(|m| m.contains("Refresher: ") && m.contains("A quick question: "))
        .expect("a refresher in the outbox");
    assert!(
        outbox.contains("Answer the question: http://localhost:8080/refresher/"),
        "{outbox}"
    );
    runner.stop().await;
}
