//! Each person's own time (issue 19), through the engine's scheduler and
//! dispatcher with the real `file` plugin and a hand-held clock: people.csv's
//! `time_zone`, `works` and `absent_until` move sends, reminders, deadlines
//! and escalations, and never an urgent rollout's.

mod support;

use cascade_engine::project::Project;
use cascade_model::rollout::{Calendar, StepKind};
use cascade_store::{DeliveryState, Inspect, Outbox, OutboxRow, SqliteStore};
use cascade_test_support::outbox::rows;
use cascade_test_support::utc;
use chrono::{DateTime, Utc};
use std::path::Path;
use support::{OUTBOX, calendar, import, project, rollout_file, start};

const DAVID: &str = "p-david-okonjo";
const AMARA: &str = "p-amara-okafor";
const TOM: &str = "p-tom-reilly";
const SOFIA: &str = "p-sofia-marin";
const JAKE: &str = "p-jake-whitmore";

/// Children's Social Care North (David their manager, Amara the neglect
/// champion, Tom, Sofia, Jake), one wave on Friday 27 March 2026 09:00 GMT,
/// a reminder a day later, escalations a day and two after the deadline.
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
"#;

/// Sets the people.csv columns `time_zone`, `works` and `absent_until`
/// of the people named (adding the last two to the demo's file first);
/// everyone else keeps theirs.
fn set_times(dir: &Path, times: &[(&str, &str, &str, &str)]) {
    let path = dir.join("directory/people.csv");
    let people = std::fs::read_to_string(&path).unwrap();
    let add = !people.lines().next().unwrap().contains(",works,");
    let mut out = String::new();
    for (n, line) in people.lines().enumerate() {
        let mut cells: Vec<String> = line.split(',').map(str::to_owned).collect();
        if add {
            if n == 0 {
                cells.extend(["works".to_owned(), "absent_until".to_owned()]);
            } else {
                cells.extend([String::new(), String::new()]);
            }
        }
        // time_zone, works, absent_until are the last three columns.
        if let Some((_, zone, works, back)) = times.iter().find(|t| line.starts_with(t.0)) {
            let last = cells.len();
            cells[last - 3] = (*zone).to_owned();
            cells[last - 2] = (*works).to_owned();
            cells[last - 1] = (*back).to_owned();
        }
        out.push_str(&cells.join(","));
        out.push('\n');
    }
    std::fs::write(&path, out).unwrap();
}

/// A project with people.csv's new columns set, imported.
async fn timed_project(times: &[(&str, &str, &str, &str)]) -> tempfile::TempDir {
    let dir = project(OUTBOX);
    set_times(dir.path(), times);
    let store = SqliteStore::open(
        Project::open(dir.path())
            .unwrap()
            .store_path()
            .to_str()
            .unwrap(),
    )
    .await
    .unwrap();
    import(dir.path(), &store, utc(2026, 3, 1, 12, 0), false).await;
    dir
}

/// Sent rows whose learning is `person`'s (their own and escalations about them).
fn about<'a>(rows: &'a [OutboxRow], person: &str) -> Vec<&'a OutboxRow> {
    rows.iter()
        .filter(|r| r.person_id == person && r.state == DeliveryState::Sent)
        .collect()
}

fn sent_of(rows: &[OutboxRow], person: &str, kind: StepKind) -> Vec<i64> {
    about(rows, person)
        .into_iter()
        .filter(|r| r.step_kind == kind && r.recipient_id == person)
        .map(|r| r.sent_at.unwrap())
        .collect()
}

fn ms(t: DateTime<Utc>) -> i64 {
    t.timestamp_millis()
}

/// Ticks every hour from `from` to `to`.
async fn run(
    runner: &cascade_engine::engine::Runner<SqliteStore>,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
) {
    let mut now = from;
    while now <= to {
        runner.tick(now).await.unwrap();
        now += chrono::TimeDelta::hours(1);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_message_and_no_escalation_about_an_absent_person_until_they_are_back() {
    // Tom is away until Monday 20 April (after everyone else's deadline);
    // Jake goes off sick after the first send, back on Tuesday 14 April.
    let dir = timed_project(&[(TOM, "", "", "2026-04-20")]).await;
    let path = rollout_file(dir.path(), "north", NORTH);
    let plan = support::cascade_in(
        &[
            "rollout",
            "plan",
            path.to_str().unwrap(),
            "--project",
            dir.path().to_str().unwrap(),
        ],
        dir.path(),
    );
    let plan = support::text(&plan.stdout);
    assert!(
        plan.contains("1 person by an absence"),
        "the plan counts the absence:\n{plan}"
    );
    assert!(
        plan.contains("The latest first send anyone moves to: Mon 20 Apr 2026 08:00 BST."),
        "{plan}"
    );

    let runner = start(dir.path(), &path, utc(2026, 3, 20, 12, 0)).await;
    let store = runner.store().as_ref();
    assert_eq!(
        runner.tick(utc(2026, 3, 27, 9, 0)).await.unwrap().1,
        4,
        "all but Tom"
    );

    set_times(dir.path(), &[(JAKE, "", "", "2026-04-14")]);
    import(dir.path(), store, utc(2026, 3, 27, 12, 0), false).await;
    runner.refresh_world().await.unwrap();

    // Everyone else's deadline is Monday 6 April 09:00 BST; escalations
    // follow on the 7th and 8th.
    run(&runner, utc(2026, 3, 27, 13, 0), utc(2026, 4, 19, 23, 0)).await;
    let sent = rows(store).await;
    assert!(
        about(&sent, TOM).is_empty(),
        "nothing to or about Tom: {:?}",
        about(&sent, TOM)
    );
    let jake: Vec<(StepKind, &str)> = about(&sent, JAKE)
        .iter()
        .filter(|r| r.sent_at.unwrap() < ms(utc(2026, 4, 14, 0, 0)))
        .map(|r| (r.step_kind, r.recipient_id.as_str()))
        .collect();
    assert_eq!(
        jake,
        [(StepKind::Initial, JAKE)],
        "only his first send before he went"
    );
    // Sofia, not absent, is chased and escalated to Amara and David.
    let sofia: Vec<(StepKind, &str)> = about(&sent, SOFIA)
        .iter()
        .map(|r| (r.step_kind, r.recipient_id.as_str()))
        .collect();
    assert!(sofia.contains(&(StepKind::Escalation, AMARA)), "{sofia:?}");
    assert!(sofia.contains(&(StepKind::Escalation, DAVID)), "{sofia:?}");

    // Tom gets the item on his return (his timetable moved by whole days:
    // Sunday 09:00, held to Monday's end of quiet hours, 08:00) and his
    // deadline moves as far: ten days later, then his escalations.
    run(&runner, utc(2026, 4, 20, 0, 0), utc(2026, 5, 3, 12, 0)).await;
    let sent = rows(store).await;
    assert_eq!(
        sent_of(&sent, TOM, StepKind::Initial),
        [ms(utc(2026, 4, 20, 7, 0))],
        "Monday 20 April 08:00 BST"
    );
    assert_eq!(
        sent_of(&sent, TOM, StepKind::Reminder),
        [ms(utc(2026, 4, 21, 7, 0))]
    );
    let escalated: Vec<(i64, &str)> = about(&sent, TOM)
        .iter()
        .filter(|r| r.step_kind == StepKind::Escalation)
        .map(|r| (r.sent_at.unwrap(), r.recipient_id.as_str()))
        .collect();
    // His deadline Thursday 30 April 08:00 BST: Amara on 1 May, David on
    // Saturday 2 May, held to Monday 4 May.
    assert_eq!(
        escalated,
        [(ms(utc(2026, 5, 1, 7, 0)), AMARA)],
        "only after his own deadline"
    );
    // Jake's timetable moved past his return: his reminder after it, and
    // no escalation about him before his moved deadline.
    let jake_reminder = sent_of(&sent, JAKE, StepKind::Reminder);
    assert_eq!(jake_reminder.len(), 1);
    assert!(
        jake_reminder[0] >= ms(utc(2026, 4, 14, 0, 0)),
        "{jake_reminder:?}"
    );
    let members = store.members("north").await.unwrap();
    let shift = |p: &str| {
        members
            .iter()
            .find(|m| m.person_id == p)
            .unwrap()
            .shift_days
    };
    assert_eq!(shift(TOM), 23, "Friday 27 March to Sunday 19 April");
    assert!(shift(JAKE) > 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_night_worker_hears_at_the_start_of_their_shift_and_an_urgent_rollout_goes_at_once() {
    let dir = timed_project(&[
        (SOFIA, "", "nights", ""),
        (JAKE, "", "Mon-Thu 08:00-16:00", ""),
    ])
    .await;
    let path = rollout_file(dir.path(), "north", NORTH);
    let runner = start(dir.path(), &path, utc(2026, 3, 20, 12, 0)).await;
    let store = runner.store().as_ref();
    run(&runner, utc(2026, 3, 27, 9, 0), utc(2026, 3, 31, 12, 0)).await;
    let sent = rows(store).await;
    // Friday 27 March is GMT: her shift starts at 20:00.
    assert_eq!(
        sent_of(&sent, SOFIA, StepKind::Initial),
        [ms(utc(2026, 3, 27, 20, 0))]
    );
    // Her reminder, a day after her send, at the start of Saturday's shift
    // (quiet weekends are not hers: she works every night).
    assert_eq!(
        sent_of(&sent, SOFIA, StepKind::Reminder),
        [ms(utc(2026, 3, 28, 20, 0))]
    );
    // Jake works Monday to Thursday: Friday's send waits for Monday 08:00 BST.
    assert_eq!(
        sent_of(&sent, JAKE, StepKind::Initial),
        [ms(utc(2026, 3, 30, 7, 0))]
    );
    assert_eq!(
        sent_of(&sent, TOM, StepKind::Initial),
        [ms(utc(2026, 3, 27, 9, 0))]
    );

    // The same people in an urgent rollout: everyone at once.
    let urgent = NORTH
        .replace("id = \"north\"", "id = \"urgent\"\nurgent = true")
        .replace("7mb-neglect-seeing-the-child", "7mb-safer-sleep")
        .replace("start = 2026-03-27T09:00:00", "start = 2026-04-02T22:00:00");
    let path = rollout_file(dir.path(), "urgent", &urgent);
    let runner = start(dir.path(), &path, utc(2026, 4, 2, 21, 0)).await;
    runner.tick(utc(2026, 4, 2, 21, 0)).await.unwrap();
    let sent: Vec<OutboxRow> = rows(runner.store().as_ref())
        .await
        .into_iter()
        .filter(|r| r.rollout_id == "urgent" && r.state == DeliveryState::Sent)
        .collect();
    assert_eq!(sent.len(), 5, "22:00 BST, quiet hours and patterns or not");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn someone_in_another_zone_gets_their_steps_in_their_zone_across_a_clock_change() {
    // New York moves its clocks on Sunday 8 March 2026, London on the 29th.
    let dir = timed_project(&[(TOM, "America/New_York", "", "")]).await;
    let early = NORTH
        .replace("start = 2026-03-27T09:00:00", "start = 2026-03-04T09:00:00")
        .replace("reminder_days = [1]", "reminder_days = [7]");
    let path = rollout_file(dir.path(), "north", &early);
    let runner = start(dir.path(), &path, utc(2026, 3, 1, 12, 0)).await;
    let store = runner.store().as_ref();
    run(&runner, utc(2026, 3, 4, 8, 0), utc(2026, 3, 12, 0, 0)).await;
    let sent = rows(store).await;
    // Wednesday 4 March 09:00 EST is 14:00 UTC; Wednesday 11 March 09:00
    // EDT is 13:00 UTC.
    assert_eq!(
        sent_of(&sent, TOM, StepKind::Initial),
        [ms(utc(2026, 3, 4, 14, 0))]
    );
    assert_eq!(
        sent_of(&sent, TOM, StepKind::Reminder),
        [ms(utc(2026, 3, 11, 13, 0))]
    );
    // Londoners at 09:00 GMT both times.
    assert_eq!(
        sent_of(&sent, SOFIA, StepKind::Initial),
        [ms(utc(2026, 3, 4, 9, 0))]
    );
    assert_eq!(
        sent_of(&sent, SOFIA, StepKind::Reminder),
        [ms(utc(2026, 3, 11, 9, 0))]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refresher_comes_after_calendar_days_in_the_persons_own_zone_across_a_clock_change() {
    // Tom is in New York, which moves its clocks on Sunday 8 March 2026;
    // London (Sofia, and the partnership) not until the 29th.
    let dir = support::project_with_check_questions(OUTBOX);
    set_times(dir.path(), &[(TOM, "America/New_York", "", "")]);
    let store = SqliteStore::open(
        Project::open(dir.path())
            .unwrap()
            .store_path()
            .to_str()
            .unwrap(),
    )
    .await
    .unwrap();
    import(dir.path(), &store, utc(2026, 3, 1, 12, 0), false).await;
    let rollout = NORTH
        .replace("start = 2026-03-27T09:00:00", "start = 2026-03-04T09:00:00")
        .replace(
            "escalation_days = [1, 2]",
            "escalation_days = [1, 2]\nrefreshers = [\"7d\"]",
        );
    let path = rollout_file(dir.path(), "north", &rollout);
    let runner = start(dir.path(), &path, utc(2026, 3, 1, 12, 0)).await;
    let store = runner.store().as_ref();
    run(&runner, utc(2026, 3, 4, 8, 0), utc(2026, 3, 4, 14, 0)).await;
    // Both acknowledge at 15:00 UTC on Wednesday 4 March: 10:00 EST for
    // Tom, 15:00 GMT for Sofia.
    let stored = store.rollout("north").await.unwrap().unwrap();
    for person in [TOM, SOFIA] {
        use cascade_store::{AckMethod, Evidence, NewAcknowledgement};
        store
            .acknowledge_item(&NewAcknowledgement {
                person_id: person.to_owned(),
                item_id: stored.item_id.clone(),
                item_version: stored.item_version.clone(),
                rollout_id: Some("north".to_owned()),
                delivery_id: None,
                channel: "outbox".to_owned(),
                method: AckMethod::OnBehalf,
                at: ms(utc(2026, 3, 4, 15, 0)),
            })
            .await
            .unwrap();
    }
    run(&runner, utc(2026, 3, 4, 15, 0), utc(2026, 3, 12, 0, 0)).await;
    let sent = rows(store).await;
    // Seven of Tom's days on, at his 10:00, now EDT: 14:00 UTC (the
    // partnership's days would have made it 15:00 UTC, 11:00 for him).
    assert_eq!(
        sent_of(&sent, TOM, StepKind::Refresher),
        [ms(utc(2026, 3, 11, 14, 0))]
    );
    assert_eq!(
        sent_of(&sent, SOFIA, StepKind::Refresher),
        [ms(utc(2026, 3, 11, 15, 0))]
    );
    // Nobody is chased after acknowledging, nor about a refresher.
    for person in [TOM, SOFIA] {
        assert!(sent_of(&sent, person, StepKind::Reminder).is_empty());
    }
}

mod property {
    //! For random working patterns, zones and absences of the people of
    //! three teams (their managers and champions among them) and random
    //! rollouts, through the engine's plan, start, scheduler and
    //! dispatcher: no message is ever queued for a time in its
    //! recipient's quiet hours or absence, nor about someone while they
    //! are away, unless the rollout is urgent; and nobody's first send is
    //! later than the plan says.

    use super::*;
    use cascade_engine::delivery::DispatchSettings;
    use cascade_engine::engine::Engine;
    use cascade_model::rollout::back_at;
    use chrono::{NaiveDate, TimeDelta};
    use proptest::prelude::*;
    use std::collections::HashMap;

    /// Children's Social Care North and South and the MASH, with their
    /// managers and champions.
    const PEOPLE: [&str; 14] = [
        "p-helen-marsh",
        "p-david-okonjo",
        "p-amara-okafor",
        "p-tom-reilly",
        "p-sofia-marin",
        "p-jake-whitmore",
        "p-rachel-adeyemi",
        "p-liam-brennan",
        "p-nadia-hussain",
        "p-chloe-garner",
        "p-oliver-sharpe",
        "p-grace-lindqvist",
        "p-imran-sheikh",
        "p-beth-callaghan",
    ];
    const ZONES: [&str; 4] = ["", "America/New_York", "Asia/Kolkata", "Europe/London"];
    const PATTERNS: [&str; 5] = [
        "",
        "Mon-Fri 08:00-18:00",
        "nights",
        "Tue-Thu",
        "Sat-Sun 07:00-19:00",
    ];

    #[derive(Debug, Clone)]
    struct Case {
        /// Per person: zone, pattern, days after the first wave's day they
        /// are back.
        times: Vec<(usize, usize, Option<i64>)>,
        /// Days after Monday 2 March 2026, hour.
        start: (i64, u32),
        second_wave: Option<u32>,
        deadline: u32,
        reminder: u32,
        urgent: bool,
    }

    fn case() -> impl Strategy<Value = Case> {
        (
            prop::collection::vec(
                (
                    0..ZONES.len(),
                    0..PATTERNS.len(),
                    prop::option::weighted(0.3, -2i64..12),
                ),
                PEOPLE.len(),
            ),
            (0i64..30, 0u32..24),
            prop::option::of(1u32..4),
            2u32..6,
            1u32..3,
            prop::bool::weighted(0.2),
        )
            .prop_map(
                |(times, start, second_wave, deadline, reminder, urgent)| Case {
                    times,
                    start,
                    second_wave,
                    deadline,
                    // A reminder comes before the deadline.
                    reminder: reminder.min(deadline - 1),
                    urgent,
                },
            )
    }

    fn rollout(case: &Case, day: NaiveDate) -> String {
        let mut text = format!(
            "id = \"prop\"\nitem = \"7mb-neglect-seeing-the-child\"\nstart = {day}T{:02}:00:00\n\
             channels = [\"outbox\"]\nack_deadline_days = {}\nreminder_days = [{}]\n\
             escalation_days = [1, 2]\nurgent = {}\n[audience]\nteams = [\"cs-north\", \"cs-south\", \"mash\"]\n",
            case.start.1, case.deadline, case.reminder, case.urgent
        );
        if let Some(after) = case.second_wave {
            text.push_str(&format!(
                "[[waves]]\nname = \"Champions\"\nafter_days = 0\nchampions_of_item_themes = true\n\
                 [[waves]]\nname = \"Everyone else\"\nafter_days = {after}\n"
            ));
        } else {
            text.push_str("[[waves]]\nname = \"Everyone\"\nafter_days = 0\n");
        }
        text
    }

    async fn check(case: Case) -> Result<(), TestCaseError> {
        let day = NaiveDate::from_ymd_opt(2026, 3, 2).unwrap() + TimeDelta::days(case.start.0);
        let times: Vec<(&str, &str, &str, String)> = PEOPLE
            .iter()
            .zip(&case.times)
            .map(|(p, (z, w, back))| {
                (
                    *p,
                    ZONES[*z],
                    PATTERNS[*w],
                    back.map(|d| (day + TimeDelta::days(d)).to_string())
                        .unwrap_or_default(),
                )
            })
            .collect();
        let borrowed: Vec<(&str, &str, &str, &str)> = times
            .iter()
            .map(|(p, z, w, b)| (*p, *z, *w, b.as_str()))
            .collect();
        let dir = timed_project(&borrowed).await;
        let path = rollout_file(dir.path(), "prop", &rollout(&case, day));
        let project = Project::open(dir.path()).unwrap();
        let partnership = calendar(&project);
        let engine = Engine::open(project, true).await.unwrap();
        let before = partnership.at_local(day.and_hms_opt(0, 0, 0).unwrap()) - TimeDelta::days(1);
        let planned = engine
            .plan(&path, before)
            .await
            .unwrap_or_else(|p| panic!("{p}"));
        engine.start(&planned, before).await.unwrap();
        // Each member's first send as started: no later than planned.
        let latest = planned.summary.moves.latest_first_send;
        for m in engine.store.members("prop").await.unwrap() {
            let wave = &planned.summary.waves[m.wave as usize];
            let plan = latest.map_or(wave.send_at, |l| l.max(wave.send_at));
            let first = DateTime::from_timestamp_millis(m.next_due_at.unwrap()).unwrap();
            prop_assert!(
                first <= plan,
                "{} due {} after the plan's {}",
                m.person_id,
                first,
                plan
            );
        }
        let runner = engine
            .runner(DispatchSettings {
                backoff_base: std::time::Duration::from_secs(60),
                ..DispatchSettings::default()
            })
            .await
            .unwrap();
        run(&runner, before, before + TimeDelta::days(30)).await;

        // Everyone's own clock and return, as people.csv has them.
        let clocks: HashMap<&str, (Calendar, Option<DateTime<Utc>>)> = times
            .iter()
            .map(|(p, z, w, b)| {
                let own = partnership.for_person(
                    Some(*z).filter(|z| !z.is_empty()),
                    Some(*w).filter(|w| !w.is_empty()),
                );
                let back = b.parse::<NaiveDate>().ok().map(|d| back_at(&own, d));
                (*p, (own, back))
            })
            .collect();
        let rows = rows(runner.store().as_ref()).await;
        prop_assert!(!rows.is_empty());
        for r in rows.iter().filter(|r| r.rollout_id == "prop") {
            let due = DateTime::from_timestamp_millis(r.due_at).unwrap();
            if r.step_kind == StepKind::Initial {
                let wave = &planned.summary.waves[r.wave as usize];
                let plan = latest.map_or(wave.send_at, |l| l.max(wave.send_at));
                // Queued at the first hourly tick at or after it was due.
                prop_assert!(
                    due < plan + TimeDelta::hours(1),
                    "{} first sent {} after the plan's {}",
                    r.person_id,
                    due,
                    plan
                );
                if case.urgent {
                    prop_assert!(due < wave.send_at + TimeDelta::hours(1), "urgent: at once");
                }
            }
            if case.urgent || r.idempotency_key.contains("/digest-") {
                continue;
            }
            let Some((own, back)) = clocks.get(r.recipient_id.as_str()) else {
                continue;
            };
            prop_assert!(
                own.is_open(due),
                "{:?} {} to {} due {} in their quiet hours",
                r.step_kind,
                r.step_number,
                r.recipient_id,
                due
            );
            if let Some(back) = back {
                prop_assert!(due >= *back, "to {} due {} while away", r.recipient_id, due);
            }
            if let Some((_, Some(back))) = clocks.get(r.person_id.as_str()) {
                prop_assert!(due >= *back, "about {} due {} while away", r.person_id, due);
            }
        }
        Ok(())
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 12, ..ProptestConfig::default() })]

        #[test]
        fn through_the_engine_nothing_is_queued_in_anyones_quiet_hours_or_absence(case in case()) {
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .unwrap();
            runtime.block_on(check(case))?;
        }
    }
}
