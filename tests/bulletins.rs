//! Recurring bulletins end to end: a bulletin started through the engine,
//! its occurrences made by the runner's scheduler as a hand-held clock
//! crosses the spring clock change in Europe/London (Sunday 28 March 2027)
//! and the end of March, sent through the real `file` plugin from the real
//! store: the right items gathered, an occurrence with nothing new skipped,
//! no occurrence made twice (a second tick, a restarted runner) and no item
//! sent twice to anyone.

mod support;

use cascade_engine::delivery::DispatchSettings;
use cascade_engine::engine::{Engine, Runner};
use cascade_engine::project::Project;
use cascade_model::rollout::StepKind;
use cascade_store::{Bulletins, Outbox, SqliteStore, Store};
use cascade_test_support::outbox::rows;
use cascade_test_support::utc;
use chrono::{DateTime, Utc};
use std::collections::BTreeMap;
use std::path::Path;
use support::{OUTBOX, project, rollout_file};

/// Every Monday at 09:00 London time, the safer-sleep items published
/// since the Monday before.
const WEEKLY: &str = r#"
id = "safer-sleep-weekly"
start = 2027-03-15T00:00:00
channels = ["outbox"]
ack_deadline_days = 14
[bulletin]
title = "Safer sleep weekly"
every = "week"
on = "Monday"
at = "09:00"
themes = ["safer-sleep"]
[audience]
[[waves]]
name = "Everyone"
after_days = 0
"#;

/// A published newsletter article (or another `status`) on `theme`.
fn article(id: &str, title: &str, theme: &str, status: &str, body: &str) -> String {
    format!(
        "+++\nkind = \"newsletter-item\"\nid = \"{id}\"\ntitle = \"{title}\"\nnewsletter = \"Partnership Matters\"\nissue = \"2027-03\"\nthemes = [\"{theme}\"]\nstatus = \"{status}\"\n+++\n\n{body}\n"
    )
}

fn publish(dir: &Path, id: &str, text: &str) {
    std::fs::write(dir.join("content").join(format!("{id}.md")), text).unwrap();
}

async fn runner(dir: &Path) -> Runner<SqliteStore> {
    let engine = Engine::open(Project::open(dir).unwrap(), true)
        .await
        .unwrap();
    engine.runner(DispatchSettings::default()).await.unwrap()
}

/// Each issue's item source, by rollout id, and each occurrence's rollout
/// (`None` when skipped), in order.
async fn issues(runner: &Runner<SqliteStore>) -> (Vec<Option<String>>, BTreeMap<String, String>) {
    let store = runner.store();
    let made: Vec<Option<String>> = store
        .occurrences("safer-sleep-weekly")
        .await
        .unwrap()
        .into_iter()
        .map(|o| o.rollout_id)
        .collect();
    let mut sources = BTreeMap::new();
    for rollout in made.iter().flatten() {
        let stored = store
            .rollout(rollout)
            .await
            .unwrap()
            .expect("the issue's rollout");
        let item = store
            .latest_item(&stored.item_id)
            .await
            .unwrap()
            .expect("the issue's item");
        assert_eq!(
            item.version.0, stored.item_version,
            "the rollout pins the issue's version"
        );
        sources.insert(rollout.clone(), item.source);
    }
    (made, sources)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_weekly_bulletin_gathers_what_is_new_across_the_clock_change_and_the_month_end() {
    let dir = project(OUTBOX);
    let path = rollout_file(dir.path(), "safer-sleep-weekly", WEEKLY);
    let started: DateTime<Utc> = utc(2027, 3, 15, 10, 0);
    {
        let engine = Engine::open(Project::open(dir.path()).unwrap(), false)
            .await
            .unwrap();
        let planner = engine.planner();
        let planned = planner
            .plan_bulletin(&path, started)
            .await
            .unwrap_or_else(|p| panic!("{p}"))
            .expect("a bulletin");
        // The demo's safer-sleep briefing and article are old news.
        let old: Vec<&str> = planned
            .published
            .iter()
            .map(|(id, _)| id.as_str())
            .collect();
        assert_eq!(old, ["7mb-safer-sleep", "nl-2026-12-safer-sleep-week"]);
        assert_eq!(
            planned.next[0],
            utc(2027, 3, 22, 9, 0),
            "Monday 22 March, 09:00 GMT"
        );
        assert_eq!(
            planned.next[1],
            utc(2027, 3, 29, 8, 0),
            "Monday 29 March, 09:00 BST"
        );
        planner.start_bulletin(&planned, started).await.unwrap();
        assert!(
            planner.start_bulletin(&planned, started).await.is_err(),
            "a bulletin starts once"
        );
    }

    // During the first week: one new safer-sleep article, a draft and an
    // article on another theme, which are not gathered.
    publish(
        dir.path(),
        "nl-2027-03-sleep-audit",
        &article(
            "nl-2027-03-sleep-audit",
            "What the sleep audit found",
            "safer-sleep",
            "published",
            "Most families had a safe place for the baby to sleep.",
        ),
    );
    publish(
        dir.path(),
        "nl-2027-03-sleep-draft",
        &article(
            "nl-2027-03-sleep-draft",
            "A draft on sleep bags",
            "safer-sleep",
            "draft",
            "Not ready yet.",
        ),
    );
    publish(
        dir.path(),
        "nl-2027-03-escalation-news",
        &article(
            "nl-2027-03-escalation-news",
            "Escalation news",
            "escalation",
            "published",
            "The escalation policy has a new contact page.",
        ),
    );

    let runner = runner(dir.path()).await;
    assert_eq!(runner.tick(utc(2027, 3, 22, 8, 59)).await.unwrap(), (0, 0));
    assert!(issues(&runner).await.0.is_empty(), "not due before 09:00");
    let (queued, sent) = runner.tick(utc(2027, 3, 22, 9, 0)).await.unwrap();
    assert!(queued > 0 && queued == sent, "{queued} queued, {sent} sent");
    let (made, sources) = issues(&runner).await;
    assert_eq!(made, [Some("safer-sleep-weekly-2027-03-22".to_owned())]);
    let first = &sources["safer-sleep-weekly-2027-03-22"];
    assert!(first.contains("## What the sleep audit found"), "{first}");
    for not_gathered in [
        "A draft on sleep bags",
        "Escalation news",
        "Safer sleep: every contact counts",
    ] {
        assert!(!first.contains(not_gathered), "{not_gathered} in {first}");
    }
    let members = rows(runner.store().as_ref())
        .await
        .iter()
        .filter(|r| r.step_kind == StepKind::Initial)
        .count();

    // A second tick, and a runner started afresh over the same store, make
    // the occurrence again neither in the store nor for anyone.
    runner.tick(utc(2027, 3, 22, 9, 0)).await.unwrap();
    drop(runner);
    let runner = self::runner(dir.path()).await;
    assert_eq!(runner.tick(utc(2027, 3, 22, 9, 30)).await.unwrap(), (0, 0));
    assert_eq!(issues(&runner).await.0.len(), 1);

    // Nothing new in the week of the clock change: Monday 29 March is due
    // at 09:00 BST (08:00 UTC), and is skipped.
    assert_eq!(runner.tick(utc(2027, 3, 29, 7, 59)).await.unwrap().0, 0);
    assert_eq!(issues(&runner).await.0.len(), 1, "not due at 08:59 BST");
    assert_eq!(runner.tick(utc(2027, 3, 29, 8, 0)).await.unwrap(), (0, 0));
    assert_eq!(
        issues(&runner).await.0,
        [Some("safer-sleep-weekly-2027-03-22".to_owned()), None]
    );

    // Across the month end: a second article, and the first edited (a new
    // version of an item already sent, which is not sent again).
    publish(
        dir.path(),
        "nl-2027-03-sleep-bags",
        &article(
            "nl-2027-03-sleep-bags",
            "Baby sleeping bags",
            "safer-sleep",
            "published",
            "Sleeping bags that fit keep babies on their backs.",
        ),
    );
    publish(
        dir.path(),
        "nl-2027-03-sleep-audit",
        &article(
            "nl-2027-03-sleep-audit",
            "What the sleep audit found",
            "safer-sleep",
            "published",
            "Most families had a safe place for the baby to sleep, and the rest were helped to find one.",
        ),
    );
    assert_eq!(runner.tick(utc(2027, 4, 5, 7, 59)).await.unwrap().0, 0);
    let (queued, _) = runner.tick(utc(2027, 4, 5, 8, 0)).await.unwrap();
    assert_eq!(queued, members, "everyone gets the third issue once");
    let (made, sources) = issues(&runner).await;
    assert_eq!(
        made,
        [
            Some("safer-sleep-weekly-2027-03-22".to_owned()),
            None,
            Some("safer-sleep-weekly-2027-04-05".to_owned())
        ]
    );
    let third = &sources["safer-sleep-weekly-2027-04-05"];
    assert!(third.contains("## Baby sleeping bags"), "{third}");
    assert!(
        !third.contains("sleep audit"),
        "the audit went in the first issue: {third}"
    );

    // No item twice to anyone: each person's first messages are one per
    // issue, and each item is in one issue.
    let mut per_person: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for row in rows(runner.store().as_ref()).await {
        if row.step_kind == StepKind::Initial {
            per_person
                .entry(row.recipient_id)
                .or_default()
                .push(row.rollout_id);
        }
    }
    assert_eq!(per_person.len(), members);
    for (person, rollouts) in &per_person {
        assert_eq!(
            rollouts,
            &[
                "safer-sleep-weekly-2027-03-22",
                "safer-sleep-weekly-2027-04-05"
            ],
            "{person}"
        );
    }
    // An issue is acknowledged as one and reported as any rollout is.
    support::acknowledge(&runner, "safer-sleep-weekly-2027-03-22", "p-amara-okafor").await;
    let project = Project::open(dir.path()).unwrap();
    let calendar = cascade_model::rollout::Calendar::new(
        &project.config.partnership.time_zone,
        project.config.partnership.quiet_hours,
    )
    .unwrap();
    let report = cascade_engine::report::generate(
        runner.store().as_ref(),
        &cascade_engine::report::Selection::Rollout("safer-sleep-weekly-2027-03-22".into()),
        &calendar,
        &project.taxonomy,
        utc(2027, 4, 5, 9, 0),
    )
    .await
    .unwrap();
    assert_eq!(
        report.rollouts[0].item_title,
        "Safer sleep weekly: 22 March 2027"
    );
    let total = &report
        .sections
        .iter()
        .find(|s| s.kind == cascade_engine::report::SectionKind::Total)
        .expect("the total")
        .rows[0]
        .figures;
    assert_eq!((total.audience, total.acknowledged), (members as u64, 1));
    let gathered = runner
        .store()
        .bulletin_items("safer-sleep-weekly")
        .await
        .unwrap();
    assert_eq!(
        gathered,
        [
            "7mb-safer-sleep",
            "nl-2026-12-safer-sleep-week",
            "nl-2027-03-sleep-audit",
            "nl-2027-03-sleep-bags"
        ]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_occurrence_made_by_two_runners_at_once_is_made_once() {
    let dir = project(OUTBOX);
    let path = rollout_file(dir.path(), "safer-sleep-weekly", WEEKLY);
    let started = utc(2027, 3, 15, 10, 0);
    let engine = Engine::open(Project::open(dir.path()).unwrap(), false)
        .await
        .unwrap();
    let planned = engine
        .planner()
        .plan_bulletin(&path, started)
        .await
        .unwrap()
        .unwrap();
    engine
        .planner()
        .start_bulletin(&planned, started)
        .await
        .unwrap();
    publish(
        dir.path(),
        "nl-2027-03-sleep-audit",
        &article(
            "nl-2027-03-sleep-audit",
            "What the sleep audit found",
            "safer-sleep",
            "published",
            "Most families had a safe place for the baby to sleep.",
        ),
    );
    let (a, b) = (runner(dir.path()).await, runner(dir.path()).await);
    let at = utc(2027, 3, 22, 9, 0);
    let (x, y) = tokio::join!(a.schedule(at), b.schedule(at));
    x.unwrap();
    y.unwrap();
    let issue = a
        .store()
        .rollout("safer-sleep-weekly-2027-03-22")
        .await
        .unwrap()
        .expect("made");
    let members = a.store().wave_counts(&issue.id).await.unwrap()[0].members as usize;
    let rollouts: Vec<String> = a
        .store()
        .rollouts()
        .await
        .unwrap()
        .into_iter()
        .map(|r| r.id)
        .collect();
    assert_eq!(rollouts, ["safer-sleep-weekly-2027-03-22"], "one issue");
    assert_eq!(
        a.store()
            .occurrences("safer-sleep-weekly")
            .await
            .unwrap()
            .len(),
        1
    );
    let queued = rows(a.store().as_ref()).await.len();
    assert_eq!(queued, members, "each person's message queued once");
}

/// On the first Monday of each month at 09:00, the articles of Partnership
/// Matters published since the last issue.
const MONTHLY: &str = r#"
id = "pm-monthly"
start = 2027-09-15T00:00:00
channels = ["outbox"]
ack_deadline_days = 14
[bulletin]
title = "Partnership Matters monthly"
every = "month"
on = "first Monday"
newsletter = "Partnership Matters"
[audience]
[[waves]]
name = "Everyone"
after_days = 0
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_monthly_bulletin_of_a_newsletter_skips_an_empty_month_across_the_autumn_clock_change() {
    let dir = project(OUTBOX);
    let path = rollout_file(dir.path(), "pm-monthly", MONTHLY);
    let started = utc(2027, 9, 15, 10, 0);
    let engine = Engine::open(Project::open(dir.path()).unwrap(), false)
        .await
        .unwrap();
    let planned = engine
        .planner()
        .plan_bulletin(&path, started)
        .await
        .unwrap_or_else(|p| panic!("{p}"))
        .expect("a bulletin");
    // Monday 4 October 09:00 BST, then Monday 1 November 09:00 GMT (the
    // clocks go back on Sunday 31 October 2027), then 6 December.
    assert_eq!(
        planned.next,
        [
            utc(2027, 10, 4, 8, 0),
            utc(2027, 11, 1, 9, 0),
            utc(2027, 12, 6, 9, 0)
        ]
    );
    engine
        .planner()
        .start_bulletin(&planned, started)
        .await
        .unwrap();
    drop(engine);
    // Any theme, as long as it is the newsletter's; not another kind.
    publish(
        dir.path(),
        "nl-2027-09-escalation-news",
        &article(
            "nl-2027-09-escalation-news",
            "Escalation news",
            "escalation",
            "published",
            "The escalation policy has a new contact page.",
        ),
    );
    let runner = runner(dir.path()).await;
    runner.tick(utc(2027, 10, 4, 8, 0)).await.unwrap();
    let occurrences = |runner: &Runner<SqliteStore>| {
        let store = runner.store().clone();
        async move {
            store
                .occurrences("pm-monthly")
                .await
                .unwrap()
                .into_iter()
                .map(|o| (o.occurrence_at, o.rollout_id, o.items))
                .collect::<Vec<_>>()
        }
    };
    let october = cascade_model::time::millis(utc(2027, 10, 4, 8, 0));
    assert_eq!(
        occurrences(&runner).await,
        [(october, Some("pm-monthly-2027-10-04".to_owned()), 1)]
    );
    // Nothing new in October: 1 November is due at 09:00 GMT, not at 08:00
    // as it would be an hour ahead on summer time, and is skipped.
    runner.tick(utc(2027, 11, 1, 8, 0)).await.unwrap();
    assert_eq!(occurrences(&runner).await.len(), 1);
    runner.tick(utc(2027, 11, 1, 9, 0)).await.unwrap();
    let november = cascade_model::time::millis(utc(2027, 11, 1, 9, 0));
    assert_eq!(occurrences(&runner).await[1], (november, None, 0));
    let status = cascade_engine::bulletins::statuses(
        runner.store().as_ref(),
        &cascade_model::rollout::Calendar::new("Europe/London", Default::default()).unwrap(),
        utc(2027, 11, 1, 9, 0),
    )
    .await
    .unwrap();
    assert_eq!(status[0].next, Some(utc(2027, 12, 6, 9, 0)));
}
