//! Reports end to end: a fixture rollout built in a real SQLite store through
//! the store's own operations (directory import, rollout, outbox rows claimed
//! and recorded, acknowledgements, confirmations, follow-up answers), then
//! every figure of the CSV checked against values worked out by hand, and
//! the HTML report opened in headless Chromium.
//!
//! The fixture, all times UTC (GMT in January, so local time too):
//!
//! | person | agency | team       | roles                   | champion | wave | first initial sent | acknowledged (v1)   |
//! |--------|--------|------------|-------------------------|----------|------|--------------------|---------------------|
//! | p-1    | csc    | csc-east   | manager, practitioner   |          | 2    | 14 Jan 09:00       | 14 Jan 14:00 (5.0h) |
//! | p-2    | csc    | csc-east   | practitioner            | neglect  | 1    | 12 Jan 09:00       | 12 Jan 12:00 (3.0h) |
//! | p-3    | csc    | csc-west   | practitioner            |          | 2    | 14 Jan 09:00       | 15 Jan 09:00 (24h)  |
//! | p-4    | ppu    | ppu-1      | safeguarding-lead       | cse      | 2    | 14 Jan 09:00       | only v2: no         |
//! | p-5    | ppu    | ppu-1      | practitioner            |          | 2    | dead; reminder only| no                  |
//! | p-6    | hosp   | hosp-paeds | practitioner, sg-lead   | neglect  | 1    | 09:00 and 09:30    | no; escalation sent |
//! | p-7    | hosp   | hosp-paeds | practitioner            |          | 2    | 14 Jan 09:00       | 14 Jan 10:30 (1.5h) |
//!
//! Wave 1 is sent on Monday 12 January 09:00 and wave 2 on Wednesday 14
//! January; the deadline is 7 days later. At "now", Tuesday 20 January
//! 12:00, wave 1 is past its deadline and wave 2 is not, so only p-6 is
//! overdue. p-8 (not a member) acknowledged too, and must not count.

use cascade_engine::report::{self, Format, Selection};
use cascade_model::content::{Taxonomy, parse_item};
use cascade_model::directory::read_csv;
use cascade_model::rollout::{Calendar, QuietHours, StepKind, parse_definition};
use cascade_store::{
    AckMethod, DeliveryOutcome, Evidence, NewAcknowledgement, NewAnswer, NewConfirmation,
    NewDelivery, NewMember, NewRollout, Outbox, SqliteStore, Store,
};
use cascade_test_support::utc;
use chrono::{DateTime, NaiveDate, Utc};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const AGENCIES: &str = "\
agency_id,name,kind
csc,Borough Children's Social Care,local-authority
hosp,Northbridge Hospitals NHS Trust,health
ppu,Police Public Protection Unit,police
";

const TEAMS: &str = "\
team_id,agency_id,name
csc-east,csc,\"Children in Need, East\"
csc-west,csc,Children in Need West
hosp-paeds,hosp,Paediatrics & A&E <Ward 3>
ppu-1,ppu,Public Protection 1
";

const PEOPLE: &str = "\
person_id,display_name,email,agency_id,team_id,roles,manager_id,time_zone
p-1,Ann Example,ann@csc.example.org,csc,csc-east,manager;practitioner,,
p-2,Bob Example,bob@csc.example.org,csc,csc-east,practitioner,p-1,
p-3,Cat Example,cat@csc.example.org,csc,csc-west,practitioner,p-1,
p-4,Dan Example,dan@police.example.org,ppu,ppu-1,safeguarding-lead,,
p-5,Eve Example,eve@police.example.org,ppu,ppu-1,practitioner,p-4,
p-6,Fay Example,fay@hospital.example.org,hosp,hosp-paeds,practitioner;safeguarding-lead,,
p-7,Gus Example,gus@hospital.example.org,hosp,hosp-paeds,practitioner,p-6,
p-8,Hal Example,hal@csc.example.org,csc,csc-west,practitioner,p-1,
";

const CHAMPIONS: &str = "\
person_id,theme,teams
p-2,neglect,csc-east;csc-west
p-4,cse,ppu-1
p-6,neglect,hosp-paeds
";

const NEGLECT: &str = "7mb-neglect";
const ESCALATION: &str = "nl-escalation";

fn newsletter(id: &str, title: &str, body: &str) -> String {
    format!(
        "+++\nkind = \"newsletter-item\"\nid = \"{id}\"\ntitle = \"{title}\"\nnewsletter = \"Partnership Matters\"\nissue = \"2026-01\"\nthemes = [\"neglect\"]\nstatus = \"published\"\n+++\n\n{body}\n"
    )
}

const NEGLECT_JAN: &str = r#"
id = "neglect-jan"
item = "7mb-neglect"
start = 2026-01-12T09:00:00
channels = ["email", "telegram"]
ack_deadline_days = 7
reminder_days = [2]
escalation_days = [1]
[audience]
[[waves]]
name = "Champions"
after_days = 0
champions_of_item_themes = true
[[waves]]
name = "Everyone else"
after_days = 2
[[follow_ups]]
after_days = 90
question = "Have you used this learning in practice?"
answers = ["Used it in practice", "Not yet", "Not relevant to my role"]
"#;

const ESCALATION_FEB: &str = r#"
id = "escalation-feb"
item = "nl-escalation"
start = 2026-02-02T09:00:00
channels = ["email"]
ack_deadline_days = 7
[audience]
[[waves]]
name = "Everyone"
after_days = 0
"#;

/// Unix milliseconds of a time in 2026, UTC.
fn ms(month: u32, day: u32, hour: u32, minute: u32) -> i64 {
    utc(2026, month, day, hour, minute).timestamp_millis()
}

fn at(ms: i64) -> DateTime<Utc> {
    DateTime::from_timestamp_millis(ms).unwrap()
}

fn calendar() -> Calendar {
    Calendar::new("Europe/London", QuietHours::default()).unwrap()
}

struct Fixture {
    _dir: tempfile::TempDir,
    store: SqliteStore,
    /// Version 1 of the neglect item, which the January rollout pins.
    v1: String,
}

impl Fixture {
    async fn new() -> Fixture {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(dir.path().join("cascade.db").to_str().unwrap())
            .await
            .unwrap();
        for (name, text) in [
            ("agencies.csv", AGENCIES),
            ("teams.csv", TEAMS),
            ("people.csv", PEOPLE),
            ("champions.csv", CHAMPIONS),
        ] {
            let path = dir.path().join(name);
            std::fs::write(&path, text).unwrap();
            let file = read_csv(&path).unwrap_or_else(|e| panic!("{name}: {e:?}"));
            store
                .import(&file, &path, &Taxonomy::default())
                .await
                .unwrap_or_else(|e| panic!("{name}: {e}"));
        }
        let mut versions = Vec::new();
        for (id, title, body) in [
            (NEGLECT, "Neglect: seeing the child", "Version one."),
            (NEGLECT, "Neglect: seeing the child", "Version two."),
            (
                ESCALATION,
                "Resolving professional differences",
                "The policy.",
            ),
        ] {
            let text = newsletter(id, title, body);
            let item = parse_item(Path::new("item.md"), &text, &Taxonomy::default())
                .unwrap_or_else(|e| panic!("{e:?}"));
            assert!(store.save_item(&item, &text).await.unwrap());
            versions.push(item.version.0.clone());
        }
        let fixture = Fixture {
            _dir: dir,
            store,
            v1: versions[0].clone(),
        };
        fixture.january(&versions[1]).await;
        fixture.february(&versions[2]).await;
        fixture
    }

    async fn create(&self, toml: &str, version: &str, members: &[(&str, u32)], now: i64) {
        let definition = parse_definition(Path::new("rollout.toml"), toml).unwrap();
        let json = serde_json::to_string(&definition).unwrap();
        let members: Vec<NewMember> = members
            .iter()
            .map(|(person, wave)| NewMember {
                person_id: (*person).to_owned(),
                wave: *wave,
                first_due_at: now,
            })
            .collect();
        self.store
            .create_rollout(NewRollout {
                id: &definition.id,
                item_id: &definition.item,
                item_version: version,
                definition: &json,
                members: &members,
                audience: None,
                now,
                team_posts: &[],
            })
            .await
            .unwrap();
    }

    /// Queues one outbox row due at `at`, claims it then and records `outcome`
    /// (none leaves it queued).
    #[allow(clippy::too_many_arguments)]
    async fn deliver(
        &self,
        rollout: &str,
        person: &str,
        recipient: &str,
        wave: u32,
        step_kind: StepKind,
        channel: (&str, u32),
        at: i64,
        outcome: Option<DeliveryOutcome>,
    ) {
        let delivery = NewDelivery {
            idempotency_key: format!("{rollout}/{person}/{step_kind}/{recipient}/{}", channel.1),
            rollout_id: rollout.to_owned(),
            person_id: person.to_owned(),
            recipient_id: recipient.to_owned(),
            wave,
            step_kind,
            step_number: 1,
            channel: channel.0.to_owned(),
            channel_rank: channel.1,
            due_at: at,
        };
        self.store.materialise(&[delivery], &[], at).await.unwrap();
        let Some(outcome) = outcome else { return };
        let claimed = self.store.claim(at, 10, 60_000, &[]).await.unwrap();
        assert_eq!(claimed.len(), 1, "{claimed:?}");
        self.store
            .record(&[(claimed[0].id, outcome)], &[], at)
            .await
            .unwrap();
    }

    async fn acknowledge(&self, person: &str, item: &str, version: &str, at: i64) {
        self.store
            .acknowledge_item(&NewAcknowledgement {
                person_id: person.to_owned(),
                item_id: item.to_owned(),
                item_version: version.to_owned(),
                rollout_id: None,
                delivery_id: None,
                channel: "web".to_owned(),
                method: AckMethod::Link,
                at,
            })
            .await
            .unwrap();
    }

    async fn confirm(&self, champion: &str, item: &str, team: &str, date: &str, present: u32) {
        assert!(
            self.store
                .confirm_cascade(&NewConfirmation {
                    champion_id: champion.to_owned(),
                    item_id: item.to_owned(),
                    team_id: team.to_owned(),
                    session_date: date.to_owned(),
                    present,
                    method: "team-meeting".to_owned(),
                    note: None,
                    channel: "web".to_owned(),
                    at: ms(2, 20, 9, 0),
                })
                .await
                .unwrap()
        );
    }

    /// The January neglect rollout, as in the table at the top.
    async fn january(&self, v2: &str) {
        let r = "neglect-jan";
        let members = [
            ("p-1", 1),
            ("p-2", 0),
            ("p-3", 1),
            ("p-4", 1),
            ("p-5", 1),
            ("p-6", 0),
            ("p-7", 1),
        ];
        self.create(NEGLECT_JAN, &self.v1, &members, ms(1, 5, 10, 0))
            .await;
        let sent = || Some(DeliveryOutcome::Sent { provider_id: None });
        let dead = || {
            Some(DeliveryOutcome::Dead {
                reason: "mailbox full".to_owned(),
            })
        };
        let email = ("email", 0);
        let telegram = ("telegram", 1);
        self.deliver(
            r,
            "p-2",
            "p-2",
            0,
            StepKind::Initial,
            email,
            ms(1, 12, 9, 0),
            sent(),
        )
        .await;
        self.deliver(
            r,
            "p-6",
            "p-6",
            0,
            StepKind::Initial,
            email,
            ms(1, 12, 9, 0),
            sent(),
        )
        .await;
        self.deliver(
            r,
            "p-6",
            "p-6",
            0,
            StepKind::Initial,
            telegram,
            ms(1, 12, 9, 30),
            sent(),
        )
        .await;
        for person in ["p-1", "p-3", "p-4", "p-7"] {
            self.deliver(
                r,
                person,
                person,
                1,
                StepKind::Initial,
                email,
                ms(1, 14, 9, 0),
                sent(),
            )
            .await;
        }
        self.deliver(
            r,
            "p-5",
            "p-5",
            1,
            StepKind::Initial,
            email,
            ms(1, 14, 9, 0),
            dead(),
        )
        .await;
        // A reminder is not the initial message: p-5 still counts as not sent.
        self.deliver(
            r,
            "p-5",
            "p-5",
            1,
            StepKind::Reminder,
            email,
            ms(1, 16, 9, 0),
            sent(),
        )
        .await;
        // Escalations about p-6 (sent), p-4 (dead) and p-7 (still queued).
        self.deliver(
            r,
            "p-6",
            "p-2",
            0,
            StepKind::Escalation,
            email,
            ms(1, 20, 9, 0),
            sent(),
        )
        .await;
        self.deliver(
            r,
            "p-4",
            "p-4",
            1,
            StepKind::Escalation,
            email,
            ms(1, 20, 9, 0),
            dead(),
        )
        .await;
        self.deliver(
            r,
            "p-7",
            "p-6",
            1,
            StepKind::Escalation,
            email,
            ms(12, 1, 9, 0),
            None,
        )
        .await;

        self.acknowledge("p-2", NEGLECT, &self.v1, ms(1, 12, 12, 0))
            .await;
        self.acknowledge("p-1", NEGLECT, &self.v1, ms(1, 14, 14, 0))
            .await;
        self.acknowledge("p-3", NEGLECT, &self.v1, ms(1, 15, 9, 0))
            .await;
        self.acknowledge("p-7", NEGLECT, &self.v1, ms(1, 14, 10, 30))
            .await;
        // Another version, and someone who is not a member: neither counts.
        self.acknowledge("p-4", NEGLECT, v2, ms(1, 15, 10, 0)).await;
        self.acknowledge("p-8", NEGLECT, &self.v1, ms(1, 13, 9, 0))
            .await;

        self.confirm("p-2", NEGLECT, "csc-east", "2026-01-15", 6)
            .await;
        self.confirm("p-2", NEGLECT, "csc-west", "2026-01-16", 4)
            .await;
        self.confirm("p-2", NEGLECT, "csc-east", "2026-02-10", 5)
            .await;
        self.confirm("p-6", NEGLECT, "hosp-paeds", "2026-01-16", 9)
            .await;

        for (person, answer) in [
            ("p-1", "Used it in practice"),
            ("p-2", "Used it in practice"),
            ("p-3", "Not yet"),
            ("p-6", "Not relevant to my role"),
            ("p-7", "Used it in practice"),
        ] {
            assert!(
                self.store
                    .answer_follow_up(&NewAnswer {
                        rollout_id: r.to_owned(),
                        person_id: person.to_owned(),
                        follow_up: 1,
                        answer: answer.to_owned(),
                        example: None,
                        channel: "web".to_owned(),
                        at: ms(4, 13, 10, 0),
                    })
                    .await
                    .unwrap()
            );
        }
    }

    /// A February rollout of another item to p-1 and p-8: both sent on
    /// 2 February 09:00, p-1 acknowledged at 11:00 (2.0h); a confirmation by
    /// the CSE champion for ppu-1 with 7 present.
    async fn february(&self, version: &str) {
        let r = "escalation-feb";
        self.create(
            ESCALATION_FEB,
            version,
            &[("p-1", 0), ("p-8", 0)],
            ms(2, 2, 8, 0),
        )
        .await;
        for person in ["p-1", "p-8"] {
            self.deliver(
                r,
                person,
                person,
                0,
                StepKind::Initial,
                ("email", 0),
                ms(2, 2, 9, 0),
                Some(DeliveryOutcome::Sent {
                    provider_id: Some(format!("msg-{person}")),
                }),
            )
            .await;
        }
        self.acknowledge("p-1", ESCALATION, version, ms(2, 2, 11, 0))
            .await;
        self.confirm("p-4", ESCALATION, "ppu-1", "2026-02-05", 7)
            .await;
    }

    async fn report(&self, selection: Selection, now: i64, format: Format) -> String {
        let report = report::generate(
            &self.store,
            &selection,
            &calendar(),
            &Taxonomy::default(),
            at(now),
        )
        .await
        .unwrap();
        report::render(&report, format)
    }
}

/// Every data row of the January rollout's CSV, worked out by hand from the
/// table at the top of this file.
const JANUARY_CSV: &str = "\
section,rollout,key,name,audience,sent,delivered,acknowledged,acknowledged_pct,median_hours_to_acknowledge,overdue,escalated,left,moved,joined_later,teams_confirmed,people_present,follow_up,question,answer,count,right_first_time,right_first_time_pct,absent
total,,all,All members,7,6,6,4,57.1,4.0,1,1,0,0,0,3,24,,,,,,,0
rollout,neglect-jan,neglect-jan,Neglect: seeing the child,7,6,6,4,57.1,4.0,1,1,0,0,0,3,24,,,,,,,0
agency,,csc,Borough Children's Social Care,3,3,3,3,100.0,5.0,0,0,0,0,0,2,15,,,,,,,0
agency,,hosp,Northbridge Hospitals NHS Trust,2,2,2,1,50.0,1.5,1,1,0,0,0,1,9,,,,,,,0
agency,,ppu,Police Public Protection Unit,2,1,1,0,0.0,,0,0,0,0,0,0,0,,,,,,,0
team,,csc-east,\"Children in Need, East\",2,2,2,2,100.0,4.0,0,0,0,0,0,1,11,,,,,,,0
team,,csc-west,Children in Need West,1,1,1,1,100.0,24.0,0,0,0,0,0,1,4,,,,,,,0
team,,hosp-paeds,Paediatrics & A&E <Ward 3>,2,2,2,1,50.0,1.5,1,1,0,0,0,1,9,,,,,,,0
team,,ppu-1,Public Protection 1,2,1,1,0,0.0,,0,0,0,0,0,0,0,,,,,,,0
role,,manager,manager,1,1,1,1,100.0,5.0,0,0,0,0,0,,,,,,,,,0
role,,practitioner,practitioner,6,5,5,4,66.7,4.0,1,1,0,0,0,,,,,,,,,0
role,,safeguarding-lead,safeguarding-lead,2,2,2,0,0.0,,1,1,0,0,0,,,,,,,,,0
champion-theme,,cse,Child sexual exploitation,1,1,1,0,0.0,,0,0,0,0,0,,,,,,,,,0
champion-theme,,neglect,Neglect,2,2,2,1,50.0,3.0,1,1,0,0,0,,,,,,,,,0
wave,neglect-jan,1,Champions,2,2,2,1,50.0,3.0,1,1,0,0,0,,,,,,,,,0
wave,neglect-jan,2,Everyone else,5,4,4,3,60.0,5.0,0,0,0,0,0,,,,,,,,,0
follow-up-total,neglect-jan,all,All members,,,,,,,,,,,,,,1,Have you used this learning in practice?,Used it in practice,3,,,
follow-up-total,neglect-jan,all,All members,,,,,,,,,,,,,,1,Have you used this learning in practice?,Not yet,1,,,
follow-up-total,neglect-jan,all,All members,,,,,,,,,,,,,,1,Have you used this learning in practice?,Not relevant to my role,1,,,
follow-up-agency,neglect-jan,csc,Borough Children's Social Care,,,,,,,,,,,,,,1,Have you used this learning in practice?,Used it in practice,2,,,
follow-up-agency,neglect-jan,csc,Borough Children's Social Care,,,,,,,,,,,,,,1,Have you used this learning in practice?,Not yet,1,,,
follow-up-agency,neglect-jan,csc,Borough Children's Social Care,,,,,,,,,,,,,,1,Have you used this learning in practice?,Not relevant to my role,0,,,
follow-up-agency,neglect-jan,hosp,Northbridge Hospitals NHS Trust,,,,,,,,,,,,,,1,Have you used this learning in practice?,Used it in practice,1,,,
follow-up-agency,neglect-jan,hosp,Northbridge Hospitals NHS Trust,,,,,,,,,,,,,,1,Have you used this learning in practice?,Not yet,0,,,
follow-up-agency,neglect-jan,hosp,Northbridge Hospitals NHS Trust,,,,,,,,,,,,,,1,Have you used this learning in practice?,Not relevant to my role,1,,,
follow-up-agency,neglect-jan,ppu,Police Public Protection Unit,,,,,,,,,,,,,,1,Have you used this learning in practice?,Used it in practice,0,,,
follow-up-agency,neglect-jan,ppu,Police Public Protection Unit,,,,,,,,,,,,,,1,Have you used this learning in practice?,Not yet,0,,,
follow-up-agency,neglect-jan,ppu,Police Public Protection Unit,,,,,,,,,,,,,,1,Have you used this learning in practice?,Not relevant to my role,0,,,
follow-up-champion-theme,neglect-jan,cse,Child sexual exploitation,,,,,,,,,,,,,,1,Have you used this learning in practice?,Used it in practice,0,,,
follow-up-champion-theme,neglect-jan,cse,Child sexual exploitation,,,,,,,,,,,,,,1,Have you used this learning in practice?,Not yet,0,,,
follow-up-champion-theme,neglect-jan,cse,Child sexual exploitation,,,,,,,,,,,,,,1,Have you used this learning in practice?,Not relevant to my role,0,,,
follow-up-champion-theme,neglect-jan,neglect,Neglect,,,,,,,,,,,,,,1,Have you used this learning in practice?,Used it in practice,1,,,
follow-up-champion-theme,neglect-jan,neglect,Neglect,,,,,,,,,,,,,,1,Have you used this learning in practice?,Not yet,0,,,
follow-up-champion-theme,neglect-jan,neglect,Neglect,,,,,,,,,,,,,,1,Have you used this learning in practice?,Not relevant to my role,1,,,
";

/// The CSV without its `note` rows, which are words rather than figures.
fn figures(csv: &str) -> String {
    csv.lines()
        .filter(|l| !l.starts_with("note,"))
        .map(|l| format!("{l}\n"))
        .collect()
}

fn notes(csv: &str) -> Vec<&str> {
    csv.lines().filter(|l| l.starts_with("note,")).collect()
}

#[tokio::test]
async fn the_rollout_csv_has_every_figure_worked_out_by_hand() {
    let fixture = Fixture::new().await;
    let csv = fixture
        .report(
            Selection::Rollout("neglect-jan".to_owned()),
            ms(1, 20, 12, 0),
            Format::Csv,
        )
        .await;
    assert_eq!(figures(&csv), JANUARY_CSV, "{csv}");
    let notes = notes(&csv);
    assert!(
        notes.contains(&"note,,,Delivered is the same as sent for now: channels do not report delivery receipts yet.,,,,,,,,,,,,,,,,,,,,"),
        "{notes:#?}"
    );
    assert!(
        notes
            .iter()
            .any(|n| n.contains("past their wave's deadline on Tue 20 Jan 2026 12:00 GMT")),
        "{notes:#?}"
    );
}

#[tokio::test]
async fn a_partnership_report_aggregates_the_rollouts_created_in_the_period() {
    let fixture = Fixture::new().await;
    let partnership = |from: u32, to: (u32, u32)| Selection::Partnership {
        from: NaiveDate::from_ymd_opt(2026, 1, from).unwrap(),
        to: NaiveDate::from_ymd_opt(2026, to.0, to.1).unwrap(),
    };

    // January holds only the neglect rollout: the same figures as its own report.
    let january = fixture
        .report(partnership(1, (1, 31)), ms(1, 20, 12, 0), Format::Csv)
        .await;
    assert_eq!(figures(&january), JANUARY_CSV, "{january}");
    assert!(
        notes(&january)
            .iter()
            .any(|n| n.contains("a person in two rollouts counts in each"))
    );

    // January and February, a month later: wave 2 of the neglect rollout is
    // now overdue too (p-4 and p-5), and so is p-8 in February's rollout.
    // Waits: 3.0, 5.0, 24.0, 1.5 (neglect) and 2.0 (p-1, escalation): median 3.0.
    let both = fixture
        .report(partnership(1, (2, 28)), ms(2, 20, 12, 0), Format::Csv)
        .await;
    let lines: Vec<&str> = both.lines().collect();
    for expected in [
        "total,,all,All members,9,8,8,5,55.6,3.0,4,1,0,0,0,4,31,,,,,,,0",
        "rollout,neglect-jan,neglect-jan,Neglect: seeing the child,7,6,6,4,57.1,4.0,3,1,0,0,0,3,24,,,,,,,0",
        "rollout,escalation-feb,escalation-feb,Resolving professional differences,2,2,2,1,50.0,2.0,1,0,0,0,0,1,7,,,,,,,0",
        // p-1 is in both rollouts: 5.0h and 2.0h.
        "role,,manager,manager,2,2,2,2,100.0,3.5,0,0,0,0,0,,,,,,,,,0",
        "agency,,csc,Borough Children's Social Care,5,5,5,4,80.0,4.0,1,0,0,0,0,2,15,,,,,,,0",
        "agency,,ppu,Police Public Protection Unit,2,1,1,0,0.0,,2,0,0,0,0,1,7,,,,,,,0",
        "team,,ppu-1,Public Protection 1,2,1,1,0,0.0,,2,0,0,0,0,1,7,,,,,,,0",
        "wave,escalation-feb,1,Everyone,2,2,2,1,50.0,2.0,1,0,0,0,0,,,,,,,,,0",
        "wave,neglect-jan,2,Everyone else,5,4,4,3,60.0,5.0,2,0,0,0,0,,,,,,,,,0",
    ] {
        assert!(lines.contains(&expected), "missing {expected}\n{both}");
    }

    // A period with no rollout is a report of nothing, not an error.
    let march = fixture
        .report(
            Selection::Partnership {
                from: NaiveDate::from_ymd_opt(2026, 3, 1).unwrap(),
                to: NaiveDate::from_ymd_opt(2026, 3, 31).unwrap(),
            },
            ms(4, 1, 12, 0),
            Format::Csv,
        )
        .await;
    assert!(
        march.contains("total,,all,All members,0,0,0,0,,,0,0,0,0,0,0,0,,,,"),
        "{march}"
    );
    assert!(march.contains("No rollout was created in this period."));
}

#[tokio::test]
async fn an_unknown_rollout_or_a_backwards_period_is_an_error() {
    let fixture = Fixture::new().await;
    let calendar = calendar();
    let taxonomy = Taxonomy::default();
    let error = report::generate(
        &fixture.store,
        &Selection::Rollout("no-such".to_owned()),
        &calendar,
        &taxonomy,
        at(ms(1, 20, 12, 0)),
    )
    .await
    .unwrap_err();
    assert!(
        error.to_string().contains("no rollout \"no-such\""),
        "{error}"
    );
    let error = report::generate(
        &fixture.store,
        &Selection::Partnership {
            from: NaiveDate::from_ymd_opt(2026, 2, 1).unwrap(),
            to: NaiveDate::from_ymd_opt(2026, 1, 1).unwrap(),
        },
        &calendar,
        &taxonomy,
        at(ms(1, 20, 12, 0)),
    )
    .await
    .unwrap_err();
    assert!(error.to_string().contains("before it starts"), "{error}");
}

const CHROMIUM: &str = "/usr/bin/chromium";

/// Chromium, installed through the project's script when missing. Fails the
/// test (never skips it) when it cannot be had.
fn chromium() -> PathBuf {
    let chromium = PathBuf::from(CHROMIUM);
    if chromium.exists() {
        return chromium;
    }
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../scripts/install-test-deps.sh");
    let out = Command::new("bash")
        .arg(&script)
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("cannot run {}: {e}", script.display()));
    assert!(
        out.status.success() && chromium.exists(),
        "headless Chromium is needed to check the HTML report, and {CHROMIUM} is missing.\n\
         {} failed to install it ({}):\n{}\n{}\n\
         help: run `bash scripts/install-test-deps.sh` as root (it runs `apt-get install -y chromium`)",
        script.display(),
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
    );
    chromium
}

/// The DOM Chromium builds from `page`, serialised.
fn dump_dom(page: &Path) -> String {
    let profile = tempfile::tempdir().unwrap();
    let mut child = Command::new(chromium())
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
        ])
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .arg("--dump-dom")
        .arg(format!("file://{}", page.display()))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("Chromium starts");
    let started = Instant::now();
    while child.try_wait().unwrap().is_none() {
        if started.elapsed() > Duration::from_secs(120) {
            let _ = child.kill();
            panic!("Chromium did not finish rendering the report within 120 s");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let out = child.wait_with_output().unwrap();
    let dom = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success() && dom.contains("</html>"),
        "Chromium failed ({}):\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    dom
}

/// The text of a serialised DOM, a line per table row and `|` after each
/// cell, entities decoded.
fn text(dom: &str) -> String {
    let marked = dom
        .replace("</tr>", "\n")
        .replace("</td>", "|")
        .replace("</th>", "|")
        .replace("</title>", "\n")
        .replace("</desc>", "\n");
    let mut text = String::new();
    let mut in_tag = false;
    for c in marked.chars() {
        match c {
            '<' => in_tag = true,
            '>' if in_tag => in_tag = false,
            c if !in_tag => text.push(c),
            _ => {}
        }
    }
    text.replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&#39;", "'")
        .replace("&nbsp;", "\u{a0}")
        .replace("&amp;", "&")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_html_report_renders_in_headless_chromium_with_the_key_figures() {
    let fixture = Fixture::new().await;
    let html = fixture
        .report(
            Selection::Rollout("neglect-jan".to_owned()),
            ms(1, 20, 12, 0),
            Format::Html,
        )
        .await;
    let dir = tempfile::tempdir().unwrap();
    let page = dir.path().join("report.html");
    std::fs::write(&page, &html).unwrap();
    let dom = tokio::task::spawn_blocking(move || dump_dom(&page))
        .await
        .unwrap();

    // Nothing from the store became markup: the team name is text.
    assert!(!dom.contains("<ward"), "{dom}");
    assert!(!dom.contains("<script"), "{dom}");
    let text = text(&dom);
    let lines: Vec<&str> = text.lines().map(str::trim).collect();
    for expected in [
        "Evidence report: rollout neglect-jan",
        "1 rollout, 7 members: 6 sent the learning, 4 (57.1%) acknowledged it, 1 overdue, 0 absent, 0 left, 0 moved.",
        // The agency table, with the champions' confirmations.
        "csc|Borough Children's Social Care|3|3|3|3|100.0%|5.0|0|0|0|0|0|0|2|15|",
        "hosp|Northbridge Hospitals NHS Trust|2|2|2|1|50.0%|1.5|1|0|1|0|0|0|1|9|",
        "ppu|Police Public Protection Unit|2|1|1|0|0.0%|–|0|0|0|0|0|0|0|0|",
        "hosp-paeds|Paediatrics & A&E <Ward 3>|2|2|2|1|50.0%|1.5|1|0|1|0|0|0|1|9|",
        "all|All members|7|6|6|4|57.1%|4.0|1|0|1|0|0|0|3|24|",
        "2|Everyone else|5|4|4|3|60.0%|5.0|0|0|0|0|0|0|",
        // Follow-up answers, all members.
        "1. Have you used this learning in practice?|Used it in practice|3|",
        // The charts' text alternatives.
        "Percentage of members who acknowledged, by agency",
        "Borough Children's Social Care: 100.0% (3 of 3); Northbridge Hospitals NHS Trust: 50.0% (1 of 2); Police Public Protection Unit: 0.0% (0 of 2)",
        "Used it in practice: 3 people; Not yet: 1 person; Not relevant to my role: 1 person",
    ] {
        assert!(
            lines.contains(&expected),
            "the rendered page has no line {expected:?}:\n{text}"
        );
    }
    assert!(text.contains("Delivered is the same as sent for now"));
}
