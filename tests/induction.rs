//! The induction back catalogue through the engine: `[induction]` set up
//! with `Engine::start_induction`, directory imports that bring joiners,
//! movers and leavers, the real store, the scheduler and dispatcher with
//! the real `file` plugin, and a hand-held clock.

mod support;

use cascade_engine::delivery::DispatchSettings;
use cascade_engine::engine::{Engine, Runner};
use cascade_engine::project::Project;
use cascade_engine::report::induction;
use cascade_model::rollout::StepKind;
use cascade_store::{
    AckMethod, DeliveryState, Evidence, InductionEnrolment, Inspect, NewAcknowledgement, Outbox,
    OutboxRow, SqliteStore,
};
use cascade_test_support::outbox::rows;
use cascade_test_support::utc;
use chrono::{DateTime, Duration, Utc};
use std::collections::BTreeSet;
use std::path::Path;
use support::{OUTBOX, calendar, import, project};

const NEGLECT: &str = "induction-7mb-neglect-seeing-the-child";
const SLEEP: &str = "induction-7mb-safer-sleep";
const CCE: &str = "induction-7mb-cce-county-lines";
const KEY_ITEMS: [&str; 3] = [NEGLECT, SLEEP, CCE];

const NIA: &str = "p-nia-okoro";
/// Works nights: every day from 20:00 to 08:00.
const NOOR: &str = "p-noor-haddad";
/// Works in New York, where the clocks go forward on 8 March 2026.
const KAI: &str = "p-kai-brandt";
/// Of the south team, moved to the north team.
const LIAM: &str = "p-liam-brennan";
const AMARA: &str = "p-amara-okafor";
const DAVID: &str = "p-david-okonjo";

/// Three key items two working days apart, all due within six weeks of
/// joining; a reminder three days after each; the item's champion a day
/// after the deadline, the manager three days after.
const INDUCTION: &str = r#"[induction]
items = ["7mb-neglect-seeing-the-child", "7mb-safer-sleep", "7mb-cce-county-lines"]
pace = "2 working days"
deadline = "6 weeks"
channels = ["outbox"]
reminder_days = [3]
escalation_days = [1, 3]
"#;

/// Puts `induction` in place of the project's `[induction]` table.
fn set_induction(dir: &Path, induction: &str) {
    let path = dir.join("cascade.toml");
    let text = std::fs::read_to_string(&path).unwrap();
    let mut out = String::new();
    let mut skipping = false;
    for line in text.lines() {
        if line.trim() == "[induction]" {
            skipping = true;
            continue;
        }
        if skipping && line.starts_with('[') {
            skipping = false;
        }
        if !skipping {
            out.push_str(line);
            out.push('\n');
        }
    }
    out.push('\n');
    out.push_str(induction);
    std::fs::write(&path, out).unwrap();
}

/// Sets the induction up at `now` and returns a runner over the project.
async fn set_up(dir: &Path, now: DateTime<Utc>) -> Runner<SqliteStore> {
    let engine = Engine::open(Project::open(dir).unwrap(), true)
        .await
        .unwrap();
    let done = engine
        .start_induction(now)
        .await
        .unwrap_or_else(|p| panic!("{p}"));
    assert_eq!(done.started, KEY_ITEMS);
    engine
        .runner(DispatchSettings {
            backoff_base: std::time::Duration::from_secs(60),
            ..DispatchSettings::default()
        })
        .await
        .unwrap()
}

/// Nia (the partnership's hours) and Noor (nights) start in the north
/// team; Liam moves there from the south team.
fn join_and_move(dir: &Path) {
    let path = dir.join("directory/people.csv");
    let mut people: String = std::fs::read_to_string(&path)
        .unwrap()
        .lines()
        .map(|l| {
            if l.starts_with(LIAM) {
                l.replace(",cs-south,", ",cs-north,")
                    .replace("p-rachel-adeyemi", DAVID)
            } else {
                l.to_owned()
            }
        })
        .map(|l| l + "\n")
        .collect();
    people.push_str(&format!(
        "{NIA},Nia Okoro,nia.okoro@northbridge-council.example,nb-council,cs-north,practitioner,{DAVID},,,\n"
    ));
    people.push_str(&format!(
        "{NOOR},Noor Haddad,noor.haddad@northbridge-council.example,nb-council,cs-north,practitioner,{DAVID},,nights,\n"
    ));
    std::fs::write(&path, people).unwrap();
}

/// Kai starts in the MASH, working from New York.
fn join_abroad(dir: &Path) {
    let path = dir.join("directory/people.csv");
    let mut people = std::fs::read_to_string(&path).unwrap();
    people.push_str(&format!(
        "{KAI},Kai Brandt,kai.brandt@northbridge-council.example,nb-council,mash,practitioner,p-grace-lindqvist,America/New_York,,\n"
    ));
    std::fs::write(&path, people).unwrap();
}

fn leave(dir: &Path, person: &str) {
    let path = dir.join("directory/people.csv");
    let people: String = std::fs::read_to_string(&path)
        .unwrap()
        .lines()
        .filter(|l| !l.starts_with(person))
        .map(|l| format!("{l}\n"))
        .collect();
    std::fs::write(&path, people).unwrap();
}

async fn members(store: &SqliteStore, rollout: &str) -> BTreeSet<String> {
    store
        .members(rollout)
        .await
        .unwrap()
        .into_iter()
        .map(|m| m.person_id)
        .collect()
}

async fn acknowledge(store: &SqliteStore, rollout: &str, person: &str, at: DateTime<Utc>) {
    let stored = store.rollout(rollout).await.unwrap().unwrap();
    store
        .acknowledge_item(&NewAcknowledgement {
            person_id: person.to_owned(),
            item_id: stored.item_id,
            item_version: stored.item_version,
            rollout_id: Some(rollout.to_owned()),
            delivery_id: None,
            channel: "outbox".to_owned(),
            method: AckMethod::OnBehalf,
            at: at.timestamp_millis(),
        })
        .await
        .unwrap();
}

/// The sent rows of `kind` about `person` in `rollout`: (recipient, due).
fn sent(rows: &[OutboxRow], rollout: &str, person: &str, kind: StepKind) -> Vec<(String, i64)> {
    rows.iter()
        .filter(|r| {
            r.rollout_id == rollout
                && r.person_id == person
                && r.step_kind == kind
                && r.state == DeliveryState::Sent
        })
        .map(|r| (r.recipient_id.clone(), r.due_at))
        .collect()
}

fn ms(t: DateTime<Utc>) -> i64 {
    t.timestamp_millis()
}

/// Ticks every hour from `from` to `to`, both included.
async fn tick_hourly(runner: &Runner<SqliteStore>, from: DateTime<Utc>, to: DateTime<Utc>) {
    let mut now = from;
    while now <= to {
        runner.tick(now).await.unwrap();
        now += Duration::hours(1);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn joiners_get_key_items_a_pace_apart_in_their_own_time_with_the_deadline_from_joining() {
    let dir = project(OUTBOX);
    set_induction(dir.path(), INDUCTION);
    // Set up on Monday 2 March 2026; nobody is a member yet.
    let runner = set_up(dir.path(), utc(2026, 3, 2, 12, 0)).await;
    let store = runner.store().clone();
    for rollout in KEY_ITEMS {
        assert!(members(&store, rollout).await.is_empty(), "{rollout}");
    }
    let unchanged = import(dir.path(), &store, utc(2026, 3, 3, 8, 30), false).await;
    assert_eq!(
        unchanged.induction,
        Some(InductionEnrolment {
            key_items: 3,
            joiners: 0
        }),
        "nobody is new"
    );

    // Friday 6 March, 08:30 GMT: Nia, Noor and Kai start; Liam moves in.
    join_and_move(dir.path());
    join_abroad(dir.path());
    let friday = utc(2026, 3, 6, 8, 30);
    let dry = import(dir.path(), &store, friday, true).await;
    assert_eq!(
        dry.induction,
        Some(InductionEnrolment {
            key_items: 3,
            joiners: 3
        })
    );
    for rollout in KEY_ITEMS {
        assert!(
            members(&store, rollout).await.is_empty(),
            "a dry run writes nothing"
        );
    }
    let done = import(dir.path(), &store, friday, false).await;
    assert_eq!(done, dry, "the import does what the dry run said");
    for rollout in KEY_ITEMS {
        assert_eq!(
            members(&store, rollout).await,
            BTreeSet::from([NIA.to_owned(), NOOR.to_owned(), KAI.to_owned()]),
            "{rollout}: the joiners; never Liam, who moved"
        );
    }
    // The same files again enrol nobody and change nothing.
    let before = rows(&*store).await;
    let again = import(dir.path(), &store, utc(2026, 3, 6, 8, 45), false).await;
    assert_eq!(again.induction.as_ref().unwrap().joiners, 0);
    assert!(again.rollouts.iter().all(|c| c.is_empty()), "{again:?}");
    assert_eq!(rows(&*store).await, before);

    // A week, hour by hour. Nia acknowledges the second key item an hour
    // after it comes.
    tick_hourly(&runner, utc(2026, 3, 6, 9, 0), utc(2026, 3, 10, 9, 0)).await;
    acknowledge(&store, SLEEP, NIA, utc(2026, 3, 10, 10, 0)).await;
    tick_hourly(&runner, utc(2026, 3, 10, 10, 0), utc(2026, 3, 16, 7, 0)).await;
    let all = rows(&*store).await;
    let initial = |rollout, person| sent(&all, rollout, person, StepKind::Initial);
    let to = |person: &str, t: DateTime<Utc>| vec![(person.to_owned(), ms(t))];
    // Nia: on the day she joined at 09:00, then two working days on each
    // time (Tuesday after the weekend, Thursday).
    assert_eq!(initial(NEGLECT, NIA), to(NIA, utc(2026, 3, 6, 9, 0)));
    assert_eq!(initial(SLEEP, NIA), to(NIA, utc(2026, 3, 10, 9, 0)));
    assert_eq!(initial(CCE, NIA), to(NIA, utc(2026, 3, 12, 9, 0)));
    // Noor works every night: her working days include the weekend, and
    // each key item waits for the start of her shift.
    assert_eq!(initial(NEGLECT, NOOR), to(NOOR, utc(2026, 3, 6, 20, 0)));
    assert_eq!(initial(SLEEP, NOOR), to(NOOR, utc(2026, 3, 8, 20, 0)));
    assert_eq!(initial(CCE, NOOR), to(NOOR, utc(2026, 3, 10, 20, 0)));
    // Kai's are at 09:00 in New York: EST on the Friday, EDT after the
    // clocks went forward on Sunday 8 March.
    assert_eq!(initial(NEGLECT, KAI), to(KAI, utc(2026, 3, 6, 14, 0)));
    assert_eq!(initial(SLEEP, KAI), to(KAI, utc(2026, 3, 10, 13, 0)));
    assert_eq!(initial(CCE, KAI), to(KAI, utc(2026, 3, 12, 13, 0)));
    // Reminders three days after each send, in each one's open time;
    // none for what Nia acknowledged.
    let reminders = |rollout, person| sent(&all, rollout, person, StepKind::Reminder);
    assert_eq!(reminders(NEGLECT, NIA), to(NIA, utc(2026, 3, 9, 9, 0)));
    assert!(reminders(SLEEP, NIA).is_empty());
    assert_eq!(reminders(NEGLECT, NOOR), to(NOOR, utc(2026, 3, 9, 20, 0)));
    assert_eq!(reminders(SLEEP, NOOR), to(NOOR, utc(2026, 3, 11, 20, 0)));
    assert_eq!(reminders(CCE, NOOR), to(NOOR, utc(2026, 3, 13, 20, 0)));
    assert!(
        all.iter()
            .filter(|r| r.person_id == LIAM)
            .all(|r| !r.rollout_id.starts_with("induction-")),
        "a mover is not a joiner"
    );
    assert!(
        all.iter()
            .filter(|r| r.state == DeliveryState::Sent && r.rollout_id.starts_with("induction-"))
            .all(|r| r.due_at >= ms(friday)),
        "nothing before they joined"
    );

    // Monday 16 March: Noor leaves. Nothing more about her is sent.
    leave(dir.path(), NOOR);
    let left = import(dir.path(), &store, utc(2026, 3, 16, 7, 30), false).await;
    assert_eq!(left.induction.as_ref().unwrap().joiners, 0);
    for rollout in KEY_ITEMS {
        let change = left
            .rollouts
            .iter()
            .find(|c| c.rollout_id == rollout)
            .unwrap();
        assert_eq!(change.left, 1, "{rollout}");
    }
    let noor_before: Vec<OutboxRow> = rows(&*store)
        .await
        .into_iter()
        .filter(|r| r.person_id == NOOR && r.state == DeliveryState::Sent)
        .collect();

    // To the deadline and past it: Friday 17 April, six weeks from the
    // day they joined (09:00 BST), then the escalations.
    let mut day = utc(2026, 3, 16, 0, 0);
    while day <= utc(2026, 4, 22, 0, 0) {
        for hour in [7, 8, 9, 19, 20] {
            runner.tick(day + Duration::hours(hour)).await.unwrap();
        }
        day += Duration::days(1);
    }
    let all = rows(&*store).await;
    let noor_after: Vec<OutboxRow> = all
        .iter()
        .filter(|r| r.person_id == NOOR && r.state == DeliveryState::Sent)
        .cloned()
        .collect();
    assert_eq!(noor_after, noor_before, "a leaver is no longer chased");
    assert!(
        all.iter()
            .filter(|r| r.person_id == NOOR)
            .all(|r| r.state != DeliveryState::Due),
        "nothing about her waits to go"
    );
    // Saturday 18 April's first rung waits for Monday 20 April's end of
    // quiet hours (08:00 BST); the manager's is on Monday at 09:00 BST.
    // The third key item, sent six days after she joined, escalates on
    // the same days: its deadline is counted from joining, not from its send.
    let escalations = |rollout| sent(&all, rollout, NIA, StepKind::Escalation);
    assert_eq!(
        escalations(NEGLECT),
        [
            (AMARA.to_owned(), ms(utc(2026, 4, 20, 7, 0))),
            (DAVID.to_owned(), ms(utc(2026, 4, 20, 8, 0)))
        ],
        "rung 1: the neglect champion of her team; rung 2: her manager"
    );
    assert_eq!(
        escalations(CCE),
        [(DAVID.to_owned(), ms(utc(2026, 4, 20, 8, 0)))],
        "no champion of its themes covers her team"
    );
    assert!(escalations(SLEEP).is_empty(), "acknowledged");
    runner.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn champions_get_their_joiners_progress_weekly_and_completion_is_reported() {
    let dir = project(OUTBOX);
    set_induction(dir.path(), INDUCTION);
    let runner = set_up(dir.path(), utc(2026, 3, 2, 12, 0)).await;
    let store = runner.store().clone();
    join_and_move(dir.path());
    import(dir.path(), &store, utc(2026, 3, 6, 8, 30), false).await;
    tick_hourly(&runner, utc(2026, 3, 6, 9, 0), utc(2026, 3, 9, 8, 0)).await;
    acknowledge(&store, NEGLECT, NIA, utc(2026, 3, 6, 11, 0)).await;
    assert!(
        rows(&*store)
            .await
            .iter()
            .all(|r| r.step_kind != StepKind::InductionDigest),
        "nothing before the first digest day, Monday 9 March at 09:00"
    );
    tick_hourly(&runner, utc(2026, 3, 9, 9, 0), utc(2026, 3, 15, 23, 0)).await;
    let all = rows(&*store).await;
    let digests: Vec<&OutboxRow> = all
        .iter()
        .filter(|r| r.step_kind == StepKind::InductionDigest)
        .collect();
    // Amara champions neglect in the north team; Nadia voice of the child
    // there. Megan (safer sleep, the hospital's teams) has no joiners.
    let recipients: BTreeSet<&str> = digests.iter().map(|r| r.recipient_id.as_str()).collect();
    assert_eq!(recipients, BTreeSet::from([AMARA, "p-nadia-hussain"]));
    assert_eq!(digests.len(), 2, "one each in the week");
    let amaras = digests.iter().find(|r| r.recipient_id == AMARA).unwrap();
    assert_eq!(amaras.state, DeliveryState::Sent);
    assert_eq!(amaras.due_at, ms(utc(2026, 3, 9, 9, 0)));
    let file = dir
        .path()
        .join("outbox")
        .join(format!("d{}.json", amaras.id));
    let message: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(file).unwrap()).unwrap();
    let text = message["parts"][0]["chunks"][0]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(
        message["subject"],
        "Induction progress of your teams' joiners"
    );
    for line in [
        "Induction progress of the 2 joiners in the teams you cover",
        "Nia Okoro (Children's Social Care North):",
        "- Neglect: seeing the child: acknowledged 6 Mar 2026",
        "- Safer sleep: every contact counts: not sent yet",
        "Noor Haddad (Children's Social Care North):",
        "- Neglect: seeing the child: due by 17 Apr 2026",
        "- Safer sleep: every contact counts: due by 17 Apr 2026",
        "- Child criminal exploitation: pathways into county lines: not sent yet",
    ] {
        assert!(text.contains(line), "{line:?} in:\n{text}");
    }
    assert!(!text.contains("Liam"), "a mover is not a joiner");

    // The next Monday: a new digest each. Noor leaves first, so she is no
    // longer listed.
    leave(dir.path(), NOOR);
    import(dir.path(), &store, utc(2026, 3, 15, 23, 30), false).await;
    tick_hourly(&runner, utc(2026, 3, 16, 0, 0), utc(2026, 3, 16, 10, 0)).await;
    let all = rows(&*store).await;
    let second = all
        .iter()
        .rfind(|r| r.step_kind == StepKind::InductionDigest && r.recipient_id == AMARA)
        .unwrap();
    assert_ne!(second.id, amaras.id);
    let file = dir
        .path()
        .join("outbox")
        .join(format!("d{}.json", second.id));
    let text = std::fs::read_to_string(file).unwrap();
    assert!(text.contains("Nia Okoro"), "{text}");
    assert!(
        !text.contains("Noor Haddad"),
        "a leaver is not listed: {text}"
    );

    // Completion with fixed data: Nia acknowledged the first within the
    // deadline, the second after it, never the third; Noor left and is
    // in no figure.
    acknowledge(&store, SLEEP, NIA, utc(2026, 4, 20, 10, 0)).await;
    let project = Project::open(dir.path()).unwrap();
    let report = induction::generate(&*store, &calendar(&project), utc(2026, 5, 1, 12, 0))
        .await
        .unwrap();
    let titles: Vec<&str> = report
        .key_items
        .iter()
        .map(|k| k.item_id.as_str())
        .collect();
    assert_eq!(
        titles,
        [
            "7mb-neglect-seeing-the-child",
            "7mb-safer-sleep",
            "7mb-cce-county-lines"
        ]
    );
    let row = |level: &str, key: &str| {
        report
            .rows
            .iter()
            .find(|r| r.level == level && r.key == key)
            .unwrap_or_else(|| panic!("{level} {key}: {report:?}"))
    };
    let figures = |level: &str, key: &str| -> Vec<(u64, u64, u64)> {
        row(level, key)
            .items
            .iter()
            .map(|c| (c.on_time.count.unwrap(), c.on_time.of.unwrap(), c.overdue))
            .collect()
    };
    assert_eq!(
        figures("partnership", ""),
        [(1, 1, 0), (0, 1, 1), (0, 1, 1)]
    );
    assert_eq!(figures("agency", "nb-council"), figures("partnership", ""));
    assert_eq!(figures("team", "cs-north"), figures("partnership", ""));
    assert_eq!(report.rows.len(), 3, "only where joiners are");
    let csv = induction::csv(&report);
    assert!(
        csv.contains("7mb-neglect-seeing-the-child,1,team,cs-north,Children's Social Care North,1,1,100.0,0,0"),
        "{csv}"
    );
    assert!(induction::html(&report).contains("<caption>Joiners who acknowledged"));
    // Before the deadline, the same joiner is still in time.
    let early = induction::generate(&*store, &calendar(&project), utc(2026, 3, 16, 12, 0))
        .await
        .unwrap();
    let c = &early.rows[0].items[2];
    assert_eq!((c.on_time.count, c.in_time, c.overdue), (Some(0), 1, 0));
    // The rollout's own report counts her overdue from her deadline, six
    // weeks from joining, not from the day the induction was set up.
    let overdue = |at: DateTime<Utc>| {
        let project = &project;
        let store = &store;
        async move {
            let report = cascade_engine::report::generate(
                &**store,
                &cascade_engine::report::Selection::Rollout(CCE.to_owned()),
                &calendar(project),
                &project.taxonomy,
                at,
            )
            .await
            .unwrap();
            report
                .sections
                .iter()
                .flat_map(|s| &s.rows)
                .map(|r| r.figures.overdue)
                .max()
                .unwrap()
        }
    };
    assert_eq!(
        overdue(utc(2026, 4, 16, 12, 0)).await,
        0,
        "set up 2 March: not yet"
    );
    assert_eq!(overdue(utc(2026, 4, 18, 12, 0)).await, 1);
    runner.stop().await;
}

#[test]
fn check_names_key_items_and_channels_the_project_does_not_have() {
    let dir = project(OUTBOX);
    let clean = support::cascade_in(&["check", "--project", "."], dir.path());
    assert!(clean.status.success(), "{}", support::text(&clean.stderr));
    // A draft key item too.
    let draft = dir.path().join("content/7mb-safer-sleep.md");
    let text = std::fs::read_to_string(&draft).unwrap();
    std::fs::write(
        &draft,
        text.replacen("status = \"published\"", "status = \"draft\"", 1),
    )
    .unwrap();
    set_induction(
        dir.path(),
        &(INDUCTION
            .replace("\"7mb-cce-county-lines\"", "\"7mb-county-lines\"")
            .replace(
                "channels = [\"outbox\"]",
                "channels = [\"outbox\", \"teams\"]",
            )
            + "[induction.audience]\nteams = [\"cs-north\", \"cs-nowhere\"]\n"),
    );
    let out = support::cascade_in(&["check", "--project", "."], dir.path());
    assert!(!out.status.success());
    let stderr = support::text(&out.stderr);
    let line = |key: &str| {
        let text = std::fs::read_to_string(dir.path().join("cascade.toml")).unwrap();
        let at = text.find("[induction]").unwrap();
        let n = text[at..].lines().position(|l| l.starts_with(key)).unwrap();
        text[..at].lines().count() + n + 1
    };
    for expected in [
        format!(
            "./cascade.toml:{}: [induction] items: no item \"7mb-county-lines\"",
            line("items")
        ),
        format!(
            "./cascade.toml:{}: [induction] items: \"7mb-safer-sleep\" is a draft or under embargo",
            line("items")
        ),
        format!(
            "./cascade.toml:{}: [induction] channels: no channel \"teams\" in [[channels]]",
            line("channels")
        ),
        format!(
            "./cascade.toml:{}: [induction.audience] teams: no team \"cs-nowhere\" in teams.csv",
            line("teams")
        ),
    ] {
        assert!(stderr.contains(&expected), "{expected}\nin:\n{stderr}");
    }
}

#[test]
fn import_says_how_many_joiners_the_induction_enrols() {
    let dir = project(OUTBOX);
    let cascade = |args: &[&str]| {
        let mut all = args.to_vec();
        all.extend(["--project", "."]);
        support::ok(support::cascade_in(&all, dir.path()))
    };
    let before = cascade(&["import", "--dry-run"]);
    assert!(
        before.contains("induction: none set up, so no joiners would be enrolled in one"),
        "{before}"
    );
    let started = cascade(&["induction", "start"]);
    assert!(started.contains(&format!("started {NEGLECT}")), "{started}");
    assert!(
        started.contains("The induction is set up with 3 key items"),
        "{started}"
    );
    assert!(
        cascade(&["induction", "start"]).contains(&format!("already running: {NEGLECT}")),
        "set up once"
    );
    join_and_move(dir.path());
    let dry = cascade(&["import", "--dry-run"]);
    assert!(
        dry.contains("induction: 2 joiners would be enrolled in its 3 key items"),
        "Nia and Noor, not Liam: {dry}"
    );
    let done = cascade(&["import"]);
    assert!(
        done.contains("induction: 2 joiners were enrolled in its 3 key items"),
        "{done}"
    );
    let again = cascade(&["import"]);
    assert!(
        again.contains("induction: 0 joiners were enrolled in its 3 key items"),
        "{again}"
    );
    let status = cascade(&["status", SLEEP]);
    assert!(
        status.contains("key item 2 of the induction: 2 people, each sent 2 working days after the one before and due within 42 days of joining"),
        "{status}"
    );
    assert!(status.contains("overdue 0"), "{status}");
    let report = cascade(&["report", "induction"]);
    assert!(report.contains("1. Neglect: seeing the child"), "{report}");
    assert!(report.contains("All joiners"), "{report}");
}
