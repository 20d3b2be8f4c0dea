//! End-to-end tests of rollouts through the engine: the scheduler and the
//! dispatcher driven by a hand-held clock (no sleeping), the real store and
//! the real `file` plugin library.

mod support;

use cascade_engine::delivery::DispatchSettings;
use cascade_engine::engine::{Engine, Until};
use cascade_engine::project::Project;
use cascade_model::rollout::StepKind;
use cascade_store::{DeliveryState, Inspect, Outbox, OutboxRow, RolloutState};
use cascade_test_support::outbox::{count, rows};
use cascade_test_support::utc;
use std::process::Command;
use support::{EVERYONE_NOW, OUTBOX, acknowledge, project, rollout_file, start};

const CHAMPIONS: [&str; 3] = ["p-aisha-rahman", "p-amara-okafor", "p-nadia-hussain"];

/// Champions first on Friday 27 March 2026 09:00 GMT; everyone else a week
/// later, after the clocks go forward on Sunday 29 March.
const SPRING: &str = r#"
id = "spring"
item = "7mb-neglect-seeing-the-child"
start = 2026-03-27T09:00:00
channels = ["outbox"]
ack_deadline_days = 10
reminder_days = [1]
escalation_days = [1, 2, 3]
[audience]
[[waves]]
name = "Champions"
after_days = 0
champions_of_item_themes = true
[[waves]]
name = "Everyone else"
after_days = 7
[[follow_ups]]
after_days = 90
question = "Have you used this in practice?"
answers = ["Used it in practice", "Not yet", "Not relevant to my role"]
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn waves_reminders_escalations_and_follow_ups_fire_at_their_times() {
    let dir = project(OUTBOX);
    let path = rollout_file(dir.path(), "spring", SPRING);
    let runner = start(dir.path(), &path, utc(2026, 3, 20, 12, 0)).await;

    // Wave 1 at 09:00 GMT on Friday 27 March, not a minute before.
    assert_eq!(runner.tick(utc(2026, 3, 27, 8, 59)).await.unwrap(), (0, 0));
    assert_eq!(runner.tick(utc(2026, 3, 27, 9, 0)).await.unwrap(), (3, 3));
    let firsts: Vec<String> = rows(runner.store().as_ref())
        .await
        .into_iter()
        .map(|r| r.recipient_id)
        .collect();
    assert_eq!(
        firsts.iter().map(String::as_str).collect::<Vec<_>>().len(),
        3
    );
    for champion in CHAMPIONS {
        assert!(
            firsts.iter().any(|r| r == champion),
            "{champion} in {firsts:?}"
        );
    }
    acknowledge(&runner, "spring", "p-amara-okafor").await;

    // The reminder a day later falls on Saturday: quiet hours hold it until
    // 08:00 on Monday 30 March, which is 07:00 UTC now the clocks have gone forward.
    assert_eq!(runner.tick(utc(2026, 3, 28, 12, 0)).await.unwrap(), (0, 0));
    assert_eq!(runner.tick(utc(2026, 3, 30, 6, 59)).await.unwrap(), (0, 0));
    assert_eq!(runner.tick(utc(2026, 3, 30, 7, 0)).await.unwrap(), (2, 2));
    let reminded: Vec<String> = rows(runner.store().as_ref())
        .await
        .into_iter()
        .filter(|r| r.step_kind == StepKind::Reminder)
        .map(|r| r.recipient_id)
        .collect();
    assert_eq!(
        reminded,
        ["p-aisha-rahman", "p-nadia-hussain"],
        "no reminder for the one who acknowledged"
    );

    // Wave 2 a week after the first: 09:00 BST on Friday 3 April, 08:00 UTC.
    assert_eq!(runner.tick(utc(2026, 4, 3, 7, 59)).await.unwrap(), (0, 0));
    assert_eq!(runner.tick(utc(2026, 4, 3, 8, 0)).await.unwrap(), (47, 47));

    // Wave 1's deadline is Monday 6 April 09:00 BST. Escalation 1, a day
    // later, would go to another champion of the item's themes covering the
    // person's team: the two champions left have none, so it is skipped.
    // Rung 2 goes to their managers, rung 3 into the business unit's digest
    // (one a day for each business-unit member, however many are overdue).
    let escalations = |rows: Vec<OutboxRow>, level: u32| -> Vec<String> {
        rows.into_iter()
            .filter(|r| r.step_kind == StepKind::Escalation && r.step_number == level)
            .map(|r| r.recipient_id)
            .collect()
    };
    runner.tick(utc(2026, 4, 7, 8, 0)).await.unwrap();
    assert_eq!(
        escalations(rows(runner.store().as_ref()).await, 1),
        Vec::<String>::new()
    );
    runner.tick(utc(2026, 4, 8, 7, 59)).await.unwrap();
    assert_eq!(
        escalations(rows(runner.store().as_ref()).await, 2),
        Vec::<String>::new()
    );
    runner.tick(utc(2026, 4, 8, 8, 0)).await.unwrap();
    let managers = escalations(rows(runner.store().as_ref()).await, 2);
    assert_eq!(
        managers,
        ["p-catherine-doyle", "p-rachel-adeyemi"],
        "Aisha's and Nadia's managers"
    );
    runner.tick(utc(2026, 4, 9, 8, 0)).await.unwrap();
    assert_eq!(
        escalations(rows(runner.store().as_ref()).await, 3),
        ["p-joanne-pryce", "p-marcus-elliott", "p-priya-raman"]
    );

    // Wave 2's deadline is Monday 13 April; a day later Tom Reilly (children's
    // social care north) is escalated to Amara Okafor, the neglect champion
    // covering his team, and a day after that to his manager.
    runner.tick(utc(2026, 4, 14, 8, 0)).await.unwrap();
    runner.tick(utc(2026, 4, 15, 8, 0)).await.unwrap();
    let mut about_tom: Vec<(String, u32)> = rows(runner.store().as_ref())
        .await
        .into_iter()
        .filter(|r| r.person_id == "p-tom-reilly" && r.step_kind == StepKind::Escalation)
        .map(|r| (r.recipient_id, r.step_number))
        .collect();
    about_tom.sort_by_key(|(_, number)| *number);
    assert_eq!(
        about_tom,
        [
            ("p-amara-okafor".to_owned(), 1),
            ("p-david-okonjo".to_owned(), 2)
        ]
    );

    // Follow-ups 90 days after each wave, to everyone, acknowledged or not:
    // Thursday 25 June 08:00 UTC for wave 1.
    assert_eq!(
        count(
            runner.store().as_ref(),
            StepKind::FollowUp,
            DeliveryState::Sent
        )
        .await,
        0
    );
    runner.tick(utc(2026, 6, 25, 7, 59)).await.unwrap();
    assert_eq!(
        count(
            runner.store().as_ref(),
            StepKind::FollowUp,
            DeliveryState::Sent
        )
        .await,
        0
    );
    runner.tick(utc(2026, 6, 25, 8, 0)).await.unwrap();
    assert_eq!(
        count(
            runner.store().as_ref(),
            StepKind::FollowUp,
            DeliveryState::Sent
        )
        .await,
        3
    );
    let follow_up = std::fs::read_dir(dir.path().join("outbox"))
        .unwrap()
        .flatten()
        .map(|e| std::fs::read_to_string(e.path()).unwrap())
        .find(|t| t.contains("Follow-up"))
        .unwrap();
    assert!(
        follow_up.contains("Have you used this in practice?")
            && follow_up.contains("Not relevant to my role")
    );
    // Nothing is ever queued twice.
    runner.tick(utc(2026, 6, 25, 8, 0)).await.unwrap();
    assert_eq!(
        count(
            runner.store().as_ref(),
            StepKind::FollowUp,
            DeliveryState::Sent
        )
        .await,
        3
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wave_a_week_after_a_friday_in_october_keeps_its_local_time_when_the_clocks_go_back() {
    let dir = project(OUTBOX);
    let autumn = SPRING
        .replace("2026-03-27T09:00:00", "2026-10-23T09:00:00")
        .replace("id = \"spring\"", "id = \"autumn\"");
    let path = rollout_file(dir.path(), "autumn", &autumn);
    let runner = start(dir.path(), &path, utc(2026, 10, 1, 12, 0)).await;
    // 09:00 BST is 08:00 UTC before Sunday 25 October, 09:00 UTC after it.
    assert_eq!(runner.tick(utc(2026, 10, 23, 7, 59)).await.unwrap(), (0, 0));
    assert_eq!(runner.tick(utc(2026, 10, 23, 8, 0)).await.unwrap(), (3, 3));
    runner.tick(utc(2026, 10, 30, 8, 59)).await.unwrap();
    assert_eq!(
        count(
            runner.store().as_ref(),
            StepKind::Initial,
            DeliveryState::Sent
        )
        .await,
        3
    );
    runner.tick(utc(2026, 10, 30, 9, 0)).await.unwrap();
    assert_eq!(
        count(
            runner.store().as_ref(),
            StepKind::Initial,
            DeliveryState::Sent
        )
        .await,
        50
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_urgent_rollout_ignores_quiet_hours() {
    let dir = project(OUTBOX);
    // Saturday 28 March 2026, 22:00 GMT.
    let urgent = SPRING
        .replace("2026-03-27T09:00:00", "2026-03-28T22:00:00")
        .replace("channels = [", "urgent = true\nchannels = [");
    let path = rollout_file(dir.path(), "urgent", &urgent);
    let runner = start(dir.path(), &path, utc(2026, 3, 28, 21, 0)).await;
    assert_eq!(runner.tick(utc(2026, 3, 28, 22, 0)).await.unwrap(), (3, 3));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_30_percent_of_sends_failing_transiently_every_message_is_eventually_delivered() {
    let dir = project(&OUTBOX.replace(
        "config = { dir = \"OUTBOX\" }",
        "config = { dir = \"OUTBOX\", transient_failure_rate = 0.3, seed = 7 }",
    ));
    let path = rollout_file(
        dir.path(),
        "now",
        &EVERYONE_NOW.replace("CHANNELS", "[\"outbox\"]"),
    );
    let runner = start(dir.path(), &path, utc(2026, 3, 27, 8, 0)).await;
    let mut now = utc(2026, 3, 27, 9, 0);
    runner.tick(now).await.unwrap();
    let retrying = count(
        runner.store().as_ref(),
        StepKind::Initial,
        DeliveryState::Due,
    )
    .await;
    assert!(
        (5..=30).contains(&retrying),
        "about 30% of 50 retry, got {retrying}"
    );
    for _ in 0..200 {
        if runner.idle(now, Until::NothingLeft).await.unwrap() {
            break;
        }
        now += chrono::Duration::minutes(1);
        runner.tick(now).await.unwrap();
    }
    assert_eq!(
        count(
            runner.store().as_ref(),
            StepKind::Initial,
            DeliveryState::Sent
        )
        .await,
        50
    );
    assert_eq!(
        std::fs::read_dir(dir.path().join("outbox"))
            .unwrap()
            .count(),
        50
    );
    let attempts = rows(runner.store().as_ref())
        .await
        .iter()
        .map(|r| r.attempts)
        .max()
        .unwrap();
    assert!(attempts >= 2, "some sends needed more than one attempt");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn permanent_failures_dead_letter_with_their_reason_and_fall_back_to_the_next_channel() {
    let broken = OUTBOX
        .replace("name = \"outbox\"", "name = \"broken\"")
        .replace(
            "config = { dir = \"OUTBOX\" }",
            "config = { dir = \"OUTBOX-broken\", permanent_failure_rate = 1.0 }",
        );
    let dir = project(&format!("{broken}{OUTBOX}"));
    let with_fallback = EVERYONE_NOW.replace("CHANNELS", "[\"broken\", \"outbox\"]");
    let path = rollout_file(dir.path(), "now", &with_fallback);
    let runner = start(dir.path(), &path, utc(2026, 3, 27, 8, 0)).await;
    runner.tick(utc(2026, 3, 27, 9, 0)).await.unwrap();
    let all = rows(runner.store().as_ref()).await;
    assert_eq!(
        all.iter()
            .filter(|r| r.channel == "broken" && r.state == DeliveryState::Dead)
            .count(),
        50
    );
    assert_eq!(
        all.iter()
            .filter(|r| r.channel == "outbox" && r.state == DeliveryState::Sent)
            .count(),
        50
    );

    let status = Command::new(env!("CARGO_BIN_EXE_cascade"))
        .args(["status", "now", "--project"])
        .arg(dir.path())
        .output()
        .unwrap();
    let shown = String::from_utf8_lossy(&status.stdout);
    assert!(
        shown.contains("on broken (initial): injected permanent failure"),
        "{shown}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_fallback_a_permanent_failure_is_the_end_of_that_message() {
    let broken = OUTBOX
        .replace("name = \"outbox\"", "name = \"broken\"")
        .replace(
            "config = { dir = \"OUTBOX\" }",
            "config = { dir = \"OUTBOX-broken\", permanent_failure_rate = 1.0 }",
        );
    let dir = project(&format!("{broken}{OUTBOX}"));
    let no_fallback = EVERYONE_NOW
        .replace("CHANNELS", "[\"broken\", \"outbox\"]")
        .replace("ack_deadline_days", "fallback = false\nack_deadline_days");
    let path = rollout_file(dir.path(), "now", &no_fallback);
    let runner = start(dir.path(), &path, utc(2026, 3, 27, 8, 0)).await;
    runner.tick(utc(2026, 3, 27, 9, 0)).await.unwrap();
    let all = rows(runner.store().as_ref()).await;
    assert_eq!(all.len(), 50);
    assert!(
        all.iter()
            .all(|r| r.channel == "broken" && r.state == DeliveryState::Dead)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pause_holds_every_send_until_resumed_and_cancel_stops_them_for_good() {
    let dir = project(OUTBOX);
    let path = rollout_file(
        dir.path(),
        "now",
        &EVERYONE_NOW.replace("CHANNELS", "[\"outbox\"]"),
    );
    let runner = start(dir.path(), &path, utc(2026, 3, 27, 8, 0)).await;
    let t = utc(2026, 3, 27, 9, 0);
    runner.schedule(t).await.unwrap();
    runner
        .store()
        .set_rollout_state("now", RolloutState::Paused, 0)
        .await
        .unwrap();
    assert_eq!(runner.tick(t).await.unwrap(), (0, 0));
    assert_eq!(
        count(
            runner.store().as_ref(),
            StepKind::Initial,
            DeliveryState::Sent
        )
        .await,
        0
    );
    runner
        .store()
        .set_rollout_state("now", RolloutState::Active, 0)
        .await
        .unwrap();
    assert_eq!(runner.tick(t).await.unwrap().1, 50);

    let path = rollout_file(
        dir.path(),
        "later",
        &EVERYONE_NOW
            .replace("CHANNELS", "[\"outbox\"]")
            .replace("id = \"now\"", "id = \"later\"")
            .replace("7mb-neglect-seeing-the-child", "7mb-safer-sleep"),
    );
    let engine = Engine::open(Project::open(dir.path()).unwrap(), false)
        .await
        .unwrap();
    engine
        .start(&engine.plan(&path, t).await.unwrap(), t)
        .await
        .unwrap();
    runner.schedule(t).await.unwrap();
    runner
        .store()
        .set_rollout_state("later", RolloutState::Cancelled, 0)
        .await
        .unwrap();
    runner.tick(t).await.unwrap();
    let later: Vec<DeliveryState> = runner
        .store()
        .rollout_outbox("later")
        .await
        .unwrap()
        .iter()
        .map(|r| r.state)
        .collect();
    assert_eq!(later.len(), 50);
    assert!(
        later.iter().all(|s| *s == DeliveryState::Cancelled),
        "{later:?}"
    );
    // A cancelled rollout cannot be resumed.
    runner
        .store()
        .set_rollout_state("later", RolloutState::Active, 0)
        .await
        .unwrap();
    assert_eq!(runner.tick(utc(2026, 4, 30, 9, 0)).await.unwrap().1, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_person_in_three_overlapping_audiences_receives_one_message() {
    let dir = project(OUTBOX);
    // Amara Okafor is in the council, in children's social care north, and a neglect champion.
    let overlapping = EVERYONE_NOW.replace("CHANNELS", "[\"outbox\"]").replace(
        "[audience]",
        "[audience]\nagencies = [\"nb-council\"]\nteams = [\"cs-north\"]\nchampion_themes = [\"neglect\"]\npeople = [\"p-amara-okafor\"]",
    );
    let path = rollout_file(dir.path(), "now", &overlapping);
    let runner = start(dir.path(), &path, utc(2026, 3, 27, 8, 0)).await;
    runner.tick(utc(2026, 3, 27, 9, 0)).await.unwrap();
    let amara = rows(runner.store().as_ref())
        .await
        .into_iter()
        .filter(|r| r.recipient_id == "p-amara-okafor")
        .count();
    assert_eq!(amara, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_invalid_rollout_writes_nothing_and_sends_nothing() {
    let dir = project(OUTBOX);
    let bad = EVERYONE_NOW
        .replace("CHANNELS", "[\"outbox\", \"telegarm\"]")
        .replace(
            "7mb-neglect-seeing-the-child",
            "7mb-neglect-seeing-the-chld",
        );
    let path = rollout_file(dir.path(), "bad", &bad);
    let engine = Engine::open(Project::open(dir.path()).unwrap(), false)
        .await
        .unwrap();
    let problems = engine
        .plan(&path, utc(2026, 3, 27, 8, 0))
        .await
        .err()
        .expect("an invalid rollout does not plan")
        .0;
    let shown = problems.join("\n");
    assert!(
        shown.contains("bad.toml:3:")
            && shown.contains("did you mean \"7mb-neglect-seeing-the-child\""),
        "{shown}"
    );
    assert!(shown.contains("telegarm"), "{shown}");
    assert!(engine.store.rollouts().await.unwrap().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_misspelt_person_or_role_is_named_with_a_guess_from_the_store() {
    // Planning reads no directory into memory: the ids a rollout names are
    // looked up in the store, with their neighbours offered as guesses.
    let dir = project(OUTBOX);
    let bad = EVERYONE_NOW.replace("CHANNELS", "[\"outbox\"]").replace(
        "[audience]",
        "[audience]\npeople = [\"p-amara-okafr\"]\nroles = [\"practicioner\"]",
    );
    let path = rollout_file(dir.path(), "typos", &bad);
    let engine = Engine::open(Project::open(dir.path()).unwrap(), false)
        .await
        .unwrap();
    let shown = engine
        .plan(&path, utc(2026, 3, 27, 8, 0))
        .await
        .err()
        .expect("a rollout naming nobody real does not plan")
        .0
        .join("\n");
    assert!(
        shown.contains("no active person \"p-amara-okafr\"")
            && shown.contains("did you mean \"p-amara-okafor\""),
        "{shown}"
    );
    assert!(
        shown.contains("no person with the role \"practicioner\"")
            && shown.contains("did you mean \"practitioner\""),
        "{shown}"
    );
    assert!(engine.store.rollouts().await.unwrap().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_digest_with_no_articles_or_a_blocked_article_writes_nothing() {
    let dir = project(OUTBOX);
    let engine = Engine::open(Project::open(dir.path()).unwrap(), false)
        .await
        .unwrap();
    let digest = |issue: &str| {
        EVERYONE_NOW.replace("CHANNELS", "[\"outbox\"]").replace(
            "item = \"7mb-neglect-seeing-the-child\"",
            &format!("newsletter_issue = \"{issue}\""),
        )
    };
    let plan = |path: std::path::PathBuf| {
        let engine = &engine;
        async move { engine.plan(&path, utc(2026, 3, 27, 8, 0)).await }
    };

    let path = rollout_file(dir.path(), "empty", &digest("2026-11"));
    let shown = plan(path).await.err().expect("no articles").0.join("\n");
    assert!(
        shown.contains("empty.toml:3: no newsletter item")
            && shown.contains("issues with articles: 2026-12, 2027-01"),
        "{shown}"
    );

    // An article the privacy guard blocks stops the whole issue, named by its own file.
    let article = dir.path().join("content/nl-2026-12-safer-sleep-week.md");
    let text = std::fs::read_to_string(&article).unwrap();
    std::fs::write(
        &article,
        text.replacen(
            "+++\n\n",
            "+++\n\nChild B's NHS number is 943 476 5919.\n\n",
            1,
        ),
    )
    .unwrap();
    let path = rollout_file(dir.path(), "blocked", &digest("2026-12"));
    let shown = plan(path)
        .await
        .err()
        .expect("a blocked article")
        .0
        .join("\n");
    assert!(shown.contains("nl-2026-12-safer-sleep-week.md:"), "{shown}");
    assert!(engine.store.rollouts().await.unwrap().is_empty());

    std::fs::write(&article, text).unwrap();
    let path = rollout_file(dir.path(), "fine", &digest("2026-12"));
    let planned = plan(path).await.unwrap_or_else(|p| panic!("{p}"));
    assert_eq!(planned.definition.item, "partnership-matters-2026-12");
    assert_eq!(
        planned.item.item.title,
        "Partnership Matters: December 2026"
    );
    assert_eq!(
        planned.item.item.themes,
        [
            "cse",
            "child-criminal-exploitation",
            "online-safety",
            "escalation",
            "professional-curiosity",
            "safer-sleep"
        ]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_rollout_of_the_same_item_leaves_out_people_the_first_already_has() {
    let dir = project(OUTBOX);
    let council = EVERYONE_NOW
        .replace("CHANNELS", "[\"outbox\"]")
        .replace("[audience]", "[audience]\nagencies = [\"nb-council\"]");
    let first = rollout_file(
        dir.path(),
        "council",
        &council.replace("id = \"now\"", "id = \"council\""),
    );
    let everyone = rollout_file(
        dir.path(),
        "everyone",
        &EVERYONE_NOW.replace("CHANNELS", "[\"outbox\"]"),
    );
    let t = utc(2026, 3, 27, 8, 0);
    let engine = Engine::open(Project::open(dir.path()).unwrap(), true)
        .await
        .unwrap();
    let council_plan = engine.plan(&first, t).await.unwrap();
    engine.start(&council_plan, t).await.unwrap();
    let everyone_plan = engine.plan(&everyone, t).await.unwrap();
    assert_eq!(everyone_plan.already_reached, council_plan.people);
    assert_eq!(everyone_plan.people + council_plan.people, 50);
    engine.start(&everyone_plan, t).await.unwrap();
    let runner = engine.runner(DispatchSettings::default()).await.unwrap();
    runner.tick(utc(2026, 3, 27, 9, 0)).await.unwrap();
    let recipients: Vec<String> = rows(runner.store().as_ref())
        .await
        .into_iter()
        .map(|r| r.recipient_id)
        .collect();
    let distinct: std::collections::HashSet<&String> = recipients.iter().collect();
    assert_eq!((recipients.len(), distinct.len()), (50, 50));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_material_change_is_sent_to_exactly_those_who_acknowledged_the_old_version() {
    let dir = project(OUTBOX);
    let path = rollout_file(
        dir.path(),
        "now",
        &EVERYONE_NOW.replace("CHANNELS", "[\"outbox\"]"),
    );
    let runner = start(dir.path(), &path, utc(2026, 3, 27, 8, 0)).await;
    runner.tick(utc(2026, 3, 27, 9, 0)).await.unwrap();
    for person in ["p-amara-okafor", "p-tom-reilly", "p-sofia-marin"] {
        acknowledge(&runner, "now", person).await;
    }

    // The briefing is edited: a material change, with a note of what changed.
    let item_path = dir.path().join("content/7mb-neglect-seeing-the-child.md");
    let text = std::fs::read_to_string(&item_path).unwrap();
    let edited = text.replacen(
        "status = \"published\"",
        "status = \"published\"\nwhat_changed = \"The escalation contact for health visiting has changed.\"",
        1,
    );
    std::fs::write(&item_path, edited).unwrap();
    let reack = EVERYONE_NOW.replace("CHANNELS", "[\"outbox\"]").replace(
        "id = \"now\"",
        "id = \"neglect-change\"\nreacknowledge = true",
    );
    let reack_path = rollout_file(dir.path(), "change", &reack);
    let engine = Engine::open(Project::open(dir.path()).unwrap(), false)
        .await
        .unwrap();
    let t = utc(2026, 4, 1, 10, 0);
    let planned = engine
        .plan(&reack_path, t)
        .await
        .unwrap_or_else(|p| panic!("{p}"));
    assert_eq!(planned.people, 3);
    assert_eq!(engine.start(&planned, t).await.unwrap(), 3);
    let members: Vec<String> = runner
        .store()
        .members("neglect-change")
        .await
        .unwrap()
        .into_iter()
        .map(|m| m.person_id)
        .collect();
    assert_eq!(members, ["p-amara-okafor", "p-sofia-marin", "p-tom-reilly"]);
    runner.tick(t).await.unwrap();

    let change_rows: Vec<String> = runner
        .store()
        .rollout_outbox("neglect-change")
        .await
        .unwrap()
        .into_iter()
        .map(|r| format!("d{}.json", r.id))
        .collect();
    assert_eq!(change_rows.len(), 3);
    let message = std::fs::read_to_string(dir.path().join("outbox").join(&change_rows[0])).unwrap();
    assert!(
        message.contains("What changed: The escalation contact for health visiting has changed."),
        "{message}"
    );
    assert!(
        !message.contains("Background"),
        "the change note, not the whole briefing"
    );
    assert!(
        message.contains("Acknowledge the change: http://localhost:8080/ack/"),
        "a channel without buttons gets the acknowledgement as a link: {message}"
    );

    // Without a note of what changed, a re-acknowledgement round is refused.
    std::fs::write(&item_path, text.replacen("Neglect", "Neglect (revised)", 1)).unwrap();
    let refused = engine
        .plan(&reack_path, t)
        .await
        .err()
        .expect("no what_changed note")
        .0
        .join("\n");
    assert!(refused.contains("needs a `what_changed` note"), "{refused}");
}

/// The last line of defence: a template changed after the rollout was
/// planned (so `plan` never saw it) brings a child's phone number into the
/// message, written with an entity and dots; the composed message is scanned
/// at send time and nothing goes out.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_composed_message_with_a_childs_detail_is_not_sent() {
    let dir = project(OUTBOX);
    let path = rollout_file(
        dir.path(),
        "now",
        &EVERYONE_NOW.replace("CHANNELS", "[\"outbox\"]"),
    );
    let now = utc(2026, 3, 27, 8, 0);
    let engine = Engine::open(Project::open(dir.path()).unwrap(), true)
        .await
        .unwrap();
    let planned = engine
        .plan(&path, now)
        .await
        .unwrap_or_else(|p| panic!("{p}"));
    engine.start(&planned, now).await.unwrap();
    for channel in ["email-html", "email-text", "telegram", "discord"] {
        let template = dir
            .path()
            .join(format!("templates/seven-minute-briefing/{channel}.hbs"));
        let mut text = std::fs::read_to_string(&template).unwrap();
        text.push_str("\nAsk mum: 07700&#46;900&#46;123\n");
        std::fs::write(&template, text).unwrap();
    }
    let runner = engine.runner(DispatchSettings::default()).await.unwrap();
    runner.tick(utc(2026, 3, 27, 9, 0)).await.unwrap();
    let all = rows(runner.store().as_ref()).await;
    assert_eq!(all.len(), 50);
    assert!(
        all.iter().all(|r| r.state == DeliveryState::Dead),
        "{all:?}"
    );
    let reason = all[0]
        .last_error
        .clone()
        .expect("a dead row keeps its reason");
    assert!(
        reason.contains("privacy guard") && reason.contains("phone number"),
        "{reason}"
    );
    let sent = std::fs::read_dir(dir.path().join("outbox")).map_or(0, |d| d.count());
    assert_eq!(sent, 0, "nothing reaches the channel");
}

/// Whether ten digits pass the NHS number check digit (mod 11).
fn valid_nhs_number(digits: &str) -> bool {
    let d: Vec<u32> = digits.chars().filter_map(|c| c.to_digit(10)).collect();
    if d.len() != 10 {
        return false;
    }
    let sum: u32 = d[..9].iter().zip((2..=10).rev()).map(|(x, w)| x * w).sum();
    let check = match 11 - sum % 11 {
        11 => 0,
        10 => return false,
        c => c,
    };
    check == d[9]
}

/// A link token's expiry (Unix seconds, ten digits) can read as a valid
/// NHS number. The send-time privacy check once scanned the token and
/// dead-lettered every message of such a second; only a benchmark noticed.
/// Here the clock is set so that every token's expiry is such a number.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_link_token_that_reads_as_an_nhs_number_does_not_stop_the_send() {
    let dir = project(OUTBOX);
    let path = rollout_file(
        dir.path(),
        "now",
        &EVERYONE_NOW.replace("CHANNELS", "[\"outbox\"]"),
    );
    let runner = start(dir.path(), &path, utc(2026, 3, 27, 8, 0)).await;
    // Links live 60 days (the demo's default).
    let lifetime = chrono::Duration::days(60);
    let now = (0..3600)
        .map(|s| utc(2026, 3, 27, 9, 0) + chrono::Duration::seconds(s))
        .find(|now| valid_nhs_number(&(*now + lifetime).timestamp().to_string()))
        .expect("one second in an hour gives a valid check digit");
    runner.tick(now).await.unwrap();
    let sent = count(
        runner.store().as_ref(),
        StepKind::Initial,
        DeliveryState::Sent,
    )
    .await;
    let dead = count(
        runner.store().as_ref(),
        StepKind::Initial,
        DeliveryState::Dead,
    )
    .await;
    assert_eq!((sent, dead), (50, 0));
    // And the token with that expiry really is in the message.
    let expiry = (now + lifetime).timestamp().to_string();
    let sample = std::fs::read_dir(dir.path().join("outbox"))
        .unwrap()
        .map(|f| std::fs::read_to_string(f.unwrap().path()).unwrap())
        .next()
        .unwrap();
    assert!(sample.contains(&format!(".{expiry}.")), "{sample}");
}

/// The demo's neglect briefing marked OFFICIAL-SENSITIVE, with its summary.
fn official_sensitive(text: String) -> String {
    text.replacen(
        "status = \"published\"",
        "status = \"published\"\nclassification = \"official-sensitive\"\nsummary = \"What a local review taught us about seeing the child.\"",
        1,
    )
}

/// A sentence of the briefing's body, which only the full text holds.
const BODY_SENTENCE: &str = "Each agency saw part of the picture";

/// Each message the file channel wrote: (address, subject, text of every part).
fn written(dir: &std::path::Path) -> Vec<(String, String, String)> {
    let mut messages: Vec<(String, String, String)> = std::fs::read_dir(dir.join("outbox"))
        .unwrap()
        .map(|f| {
            let json: serde_json::Value =
                serde_json::from_str(&std::fs::read_to_string(f.unwrap().path()).unwrap()).unwrap();
            let text = json["parts"]
                .as_array()
                .unwrap()
                .iter()
                .map(|p| {
                    p["chunks"]
                        .as_array()
                        .unwrap()
                        .iter()
                        .map(|c| c.as_str().unwrap().to_owned())
                        .collect::<String>()
                })
                .collect::<Vec<_>>()
                .join("\n=====\n");
            (
                json["recipient"]["address"].as_str().unwrap().to_owned(),
                json["subject"].as_str().unwrap_or_default().to_owned(),
                text,
            )
        })
        .collect();
    messages.sort();
    messages
}

/// An email channel that carries only OFFICIAL but lists nhs.net as a
/// secure domain: the OFFICIAL-SENSITIVE briefing goes in full to nhs.net
/// (and a domain under it), and as a notice with the signed link to read
/// it to gmail.com; every message is marked at its top (and an email's
/// bottom), and `plan` says who gets which.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_official_sensitive_item_goes_in_full_only_to_secure_domains_and_as_a_notice_elsewhere()
{
    let project = cascade_test_support::DemoProject::new();
    let outbox = project.path().join("outbox");
    let dir = project
        .channels(&format!(
            "[[channels]]\nname = \"outbox\"\nplugin = \"file\"\nidentity = \"email\"\nformats = [\"email-html\", \"email-text\"]\nsecure_domains = [\"nhs.net\"]\nconfig = {{ dir = \"{}\" }}\n",
            outbox.display()
        ))
        .only_people(&[
            ("p-ann", "Ann Example", "ann.example@nhs.net"),
            ("p-bea", "Bea Example", "bea.example@gmail.com"),
            ("p-cal", "Cal Example", "cal.example@trust.NHS.net"),
            ("p-dee", "Dee Example", "dee.example@notnhs.net"),
        ])
        .edit(
            "content/7mb-neglect-seeing-the-child.md",
            official_sensitive,
        )
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
    let path = rollout_file(
        dir.path(),
        "now",
        &EVERYONE_NOW.replace("CHANNELS", "[\"outbox\"]"),
    );
    let now = utc(2026, 3, 27, 8, 0);
    let engine = Engine::open(Project::open(dir.path()).unwrap(), true)
        .await
        .unwrap();
    let planned = engine
        .plan(&path, now)
        .await
        .unwrap_or_else(|p| panic!("{p}"));
    assert_eq!(
        planned.reading_lines,
        ["outbox: 2 people the full text (at nhs.net), 2 a notice with the link to read it"]
    );
    engine.start(&planned, now).await.unwrap();
    let runner = engine.runner(DispatchSettings::default()).await.unwrap();
    runner.tick(utc(2026, 3, 27, 9, 0)).await.unwrap();

    let messages = written(dir.path());
    assert_eq!(messages.len(), 4, "{messages:?}");
    for (address, subject, text) in &messages {
        assert!(
            subject.starts_with("OFFICIAL-SENSITIVE: "),
            "{address}: {subject}"
        );
        for part in text.split("\n=====\n") {
            let inside = part
                .split_once("<body")
                .and_then(|(_, b)| b.split_once('>'))
                .map_or(part, |(_, rest)| rest)
                .trim_start();
            assert!(
                inside.starts_with("OFFICIAL-SENSITIVE")
                    || inside.starts_with("<p style=\"margin:0 0 16px; font-weight:bold; letter-spacing:0.05em;\">OFFICIAL-SENSITIVE</p>"),
                "{address}: not marked at the top: {}",
                &inside[..inside.len().min(200)]
            );
            let end = part
                .trim_end()
                .trim_end_matches("</html>")
                .trim_end()
                .trim_end_matches("</body>")
                .trim_end();
            assert!(
                end.ends_with("OFFICIAL-SENSITIVE") || end.ends_with("OFFICIAL-SENSITIVE</p>"),
                "{address}: not marked at the bottom: {}",
                &end[end.len().saturating_sub(200)..]
            );
        }
        let secure = address.to_lowercase().ends_with("@nhs.net")
            || address.to_lowercase().ends_with(".nhs.net");
        if secure {
            assert!(
                text.contains(BODY_SENTENCE),
                "{address} should get the full text"
            );
        } else {
            assert!(
                !text.contains(BODY_SENTENCE),
                "{address} got the full text: {text}"
            );
            assert!(
                text.contains("What a local review taught us about seeing the child.")
                    && text.contains("Neglect: seeing the child")
                    && text.contains("http://localhost:8080/ack/"),
                "{address}: {text}"
            );
            assert!(
                text.contains("not sent in full to this email address"),
                "{text}"
            );
        }
    }
}

/// A channel that may not carry the item (the default, `carries =
/// "official"`, with no secure domains) sends everyone the notice.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_channel_that_carries_only_official_sends_everyone_the_notice() {
    let project = cascade_test_support::DemoProject::new();
    let outbox = project.path().join("outbox");
    let dir = project
        .channels(&OUTBOX.replace("OUTBOX", &outbox.display().to_string()))
        .edit(
            "content/7mb-neglect-seeing-the-child.md",
            official_sensitive,
        )
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
    let path = rollout_file(
        dir.path(),
        "now",
        &EVERYONE_NOW.replace("CHANNELS", "[\"outbox\"]"),
    );
    let runner = start(dir.path(), &path, utc(2026, 3, 27, 8, 0)).await;
    runner.tick(utc(2026, 3, 27, 9, 0)).await.unwrap();
    let messages = written(dir.path());
    assert_eq!(messages.len(), 50);
    for (address, _, text) in &messages {
        assert!(
            text.starts_with("OFFICIAL-SENSITIVE\n\n"),
            "{address}: {text}"
        );
        assert!(!text.contains(BODY_SENTENCE), "{address}: {text}");
        assert!(text.contains("not sent in full on this channel"), "{text}");
    }
}

/// Issue 19: a newsletter digest asks its articles' check questions, each
/// pointing to its article's section of the issue, at most three; a
/// digest rollout may then have refreshers, which ask one of them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_digest_asks_its_articles_check_questions() {
    let dir = project(OUTBOX);
    let question = |n: u32| {
        format!(
            "[[check_questions]]\nquestion = \"Question {n}?\"\noptions = [\"Yes\", \"No\"]\nanswer = \"Yes\"\nexplanation = \"See what to do.\"\nsection = \"What to do\"\n"
        )
    };
    let add = |file: &str, questions: &[u32]| {
        let path = dir.path().join("content").join(file);
        let text = std::fs::read_to_string(&path).unwrap();
        let front: String = questions.iter().map(|n| question(*n)).collect();
        std::fs::write(
            &path,
            text.replacen(
                "+++\n\n",
                &format!("{front}+++\n\n## What to do\n\nTalk to the family.\n\n"),
                1,
            ),
        )
        .unwrap();
    };
    // Safer sleep week asks two, the escalation policy one, the CSE
    // awareness day training one: four in all, so one is left out.
    add("nl-2026-12-safer-sleep-week.md", &[1, 2]);
    add("nl-2026-12-escalation-policy.md", &[3]);
    add("nl-2026-12-cse-awareness-day-training.md", &[4]);
    let engine = Engine::open(Project::open(dir.path()).unwrap(), false)
        .await
        .unwrap();
    let digest = EVERYONE_NOW
        .replace("CHANNELS", "[\"outbox\"]")
        .replace(
            "item = \"7mb-neglect-seeing-the-child\"",
            "newsletter_issue = \"2026-12\"",
        )
        .replace(
            "ack_deadline_days = 10",
            "ack_deadline_days = 10\nrefreshers = [\"30d\"]",
        );
    let path = rollout_file(dir.path(), "digest", &digest);
    let planned = engine
        .plan(&path, utc(2026, 3, 27, 8, 0))
        .await
        .unwrap_or_else(|p| panic!("{p}"));
    let asked: Vec<(String, String)> = planned
        .item
        .item
        .check_questions
        .iter()
        .map(|q| (q.question.clone(), q.section.clone()))
        .collect();
    let titles: std::collections::HashMap<&str, &str> = [
        (
            "Question 1?",
            "Safer sleep week: talking to families before the holidays",
        ),
        (
            "Question 3?",
            "New policy: resolving professional differences",
        ),
    ]
    .into_iter()
    .collect();
    assert_eq!(asked.len(), 3, "{asked:?}");
    // Every article's first question comes before any article's second.
    assert!(!asked.iter().any(|(q, _)| q == "Question 2?"), "{asked:?}");
    for (question, section) in &asked {
        if let Some(title) = titles.get(question.as_str()) {
            assert_eq!(section, title);
        }
        // The section is one of the issue's own `##` sections.
        assert!(
            planned
                .item
                .item
                .sections()
                .iter()
                .any(|s| &s.title == section),
            "{section}"
        );
    }
    assert!(
        planned.summary.to_string().contains("Refreshers 30 days"),
        "{}",
        planned.summary
    );
}
