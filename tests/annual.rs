//! The annual report's learning section and coverage gaps, end to end: a
//! fixture built in a real SQLite store through the store's own operations,
//! then every figure and sentence checked against values worked out by
//! hand, the Word document unzipped and its XML read, and the HTML opened in
//! headless Chromium (DOM checked, screenshot kept as an artefact).
//!
//! The directory: agencies csc (teams csc-east, csc-west), hosp
//! (hosp-paeds), ppu (ppu-1) and sch (sch-1). Roles: p-1, p-2, p-3, p-4, p-6
//! and p-7 practitioners, p-5 manager, p-8 teacher. Champions: p-2 for
//! neglect (csc-east, csc-west), p-4 for neglect (hosp-paeds) and cse (ppu-1).
//!
//! The period is 1 April 2026 to 31 March 2027; the previous one 1 April
//! 2025 to 31 March 2026. All times UTC.
//!
//! | rollout      | created    | item (status)                     | members   | first sent | acknowledged after first send |
//! |--------------|------------|-----------------------------------|-----------|------------|-------------------------------|
//! | neglect-prev | 2025-06-01 | newsletter, neglect (published)   | p-1..p-3  | p-1, p-2   | p-1 5h                        |
//! | neglect-may  | 2026-05-01 | finding Child D, neglect (public) | p-1..p-5  | p-1..p-4   | p-1 2h, p-2 30h, p-3 20 days  |
//! | cse-sep      | 2026-09-01 | finding Child E, neglect+cse (internal) | p-4..p-7 | all  | p-6 1h, p-7 4h, p-4 10h       |
//! | cse-jan      | 2027-01-10 | finding Family F, cse (embargoed to 30 June 2027) | p-6, p-7 | both | p-6 3h            |
//!
//! neglect-may asks one follow-up: p-1 answered "Used it in practice", p-2
//! "Not yet". p-2 confirmed cascading neglect-may's item to csc-east; p-4
//! confirmed cse-jan's item to ppu-1. The report is taken on 15 April 2027,
//! when cse-jan's review is still under embargo.

use cascade_engine::report::annual::{self, AnnualOptions};
use cascade_engine::report::docx;
use cascade_engine::report::gaps::{self, GapOptions};
use cascade_model::content::{Taxonomy, parse_item};
use cascade_model::directory::read_csv;
use cascade_model::rollout::{Calendar, QuietHours, StepKind, parse_definition};
use cascade_store::{
    AckMethod, DeliveryOutcome, Evidence, NewAcknowledgement, NewAnswer, NewConfirmation,
    NewDelivery, NewMember, NewRollout, Outbox, SqliteStore, Store,
};
use cascade_test_support::utc;
use chrono::NaiveDate;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const AGENCIES: &str = "\
agency_id,name,kind
csc,Borough Children's Social Care,local-authority
hosp,Northbridge Hospitals NHS Trust,health
ppu,Police Public Protection Unit,police
sch,Westfield Schools <Trust>,education
";

const TEAMS: &str = "\
team_id,agency_id,name
csc-east,csc,Children in Need East
csc-west,csc,Children in Need West
hosp-paeds,hosp,Paediatrics
ppu-1,ppu,Public Protection 1
sch-1,sch,Westfield Primary
";

const PEOPLE: &str = "\
person_id,display_name,email,agency_id,team_id,roles,manager_id,time_zone
p-1,Ann Example,ann@csc.example.org,csc,csc-east,practitioner,,
p-2,Bob Example,bob@csc.example.org,csc,csc-east,practitioner,,
p-3,Cat Example,cat@csc.example.org,csc,csc-west,practitioner,,
p-4,Dan Example,dan@hospital.example.org,hosp,hosp-paeds,practitioner,,
p-5,Eve Example,eve@hospital.example.org,hosp,hosp-paeds,manager,,
p-6,Fay Example,fay@police.example.org,ppu,ppu-1,practitioner,,
p-7,Gus Example,gus@police.example.org,ppu,ppu-1,practitioner,,
p-8,Hal Example,hal@school.example.org,sch,sch-1,teacher,,
";

const CHAMPIONS: &str = "\
person_id,theme,teams
p-2,neglect,csc-east;csc-west
p-4,neglect,hosp-paeds
p-4,cse,ppu-1
";

fn finding(id: &str, title: &str, subject: &str, themes: &str, status: &str) -> String {
    format!(
        "+++\nkind = \"review-finding\"\nid = \"{id}\"\ntitle = \"{title}\"\nreview_type = \"LCSPR\"\nsubject = \"{subject}\"\nthemes = [{themes}]\n{status}\n+++\n\n## Summary\n{subject} was not seen alone.\n\n## Key learning\nSee the child.\n\n## What practitioners should do\nSee the child alone.\n\n## Good practice\nThe school nurse shared concerns.\n"
    )
}

const NEWSLETTER: &str = "+++\nkind = \"newsletter-item\"\nid = \"nl-neglect\"\ntitle = \"Neglect toolkit relaunched\"\nnewsletter = \"Partnership Matters\"\nissue = \"2025-06\"\nthemes = [\"neglect\"]\nstatus = \"published\"\n+++\n\nThe toolkit is back.\n";

/// The embargoed review's detail, which must appear nowhere.
const SECRET_TITLE: &str = "Family F: missed chances";
const SECRET_SUBJECT: &str = "Family F";

fn rollout_toml(id: &str, item: &str, follow_up: bool) -> String {
    let mut toml = format!(
        "id = \"{id}\"\nitem = \"{item}\"\nstart = 2026-05-01T09:00:00\nchannels = [\"email\"]\nack_deadline_days = 14\n[audience]\n[[waves]]\nname = \"Everyone\"\nafter_days = 0\n"
    );
    if follow_up {
        toml.push_str("[[follow_ups]]\nafter_days = 90\nquestion = \"Have you used this learning in practice?\"\nanswers = [\"Used it in practice\", \"Not yet\", \"Not relevant to my role\"]\n");
    }
    toml
}

const HOUR: i64 = 3_600_000;

fn ms(year: i32, month: u32, day: u32) -> i64 {
    utc(year, month, day, 9, 0).timestamp_millis()
}

fn calendar() -> Calendar {
    Calendar::new("Europe/London", QuietHours::default()).unwrap()
}

struct Fixture {
    _dir: tempfile::TempDir,
    store: SqliteStore,
    versions: std::collections::BTreeMap<String, String>,
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
        let mut versions = std::collections::BTreeMap::new();
        for text in [
            NEWSLETTER.to_owned(),
            finding(
                "lcspr-child-d",
                "Child D: seeing the child",
                "Child D",
                "\"neglect\"",
                "status = \"published\"",
            ),
            finding(
                "lcspr-child-e",
                "Exploitation and neglect: joined-up working",
                "Child E",
                "\"neglect\", \"cse\"",
                "status = \"internal\"",
            ),
            finding(
                "lcspr-family-f",
                SECRET_TITLE,
                SECRET_SUBJECT,
                "\"cse\"",
                "status = \"embargoed\"\nembargo_until = 2027-06-30",
            ),
        ] {
            let item = parse_item(Path::new("item.md"), &text, &Taxonomy::default())
                .unwrap_or_else(|e| panic!("{e:?}"));
            assert!(store.save_item(&item, &text).await.unwrap());
            versions.insert(item.id.clone(), item.version.0.clone());
        }
        Fixture {
            _dir: dir,
            store,
            versions,
        }
    }

    async fn with_rollouts() -> Fixture {
        let f = Fixture::new().await;
        let prev = ms(2025, 6, 1);
        f.rollout(
            "neglect-prev",
            "nl-neglect",
            false,
            prev,
            &["p-1", "p-2", "p-3"],
            &["p-1", "p-2"],
        )
        .await;
        f.ack("p-1", "nl-neglect", prev + 5 * HOUR).await;

        let may = ms(2026, 5, 1);
        f.rollout(
            "neglect-may",
            "lcspr-child-d",
            true,
            may,
            &["p-1", "p-2", "p-3", "p-4", "p-5"],
            &["p-1", "p-2", "p-3", "p-4"],
        )
        .await;
        f.ack("p-1", "lcspr-child-d", may + 2 * HOUR).await;
        f.ack("p-2", "lcspr-child-d", may + 30 * HOUR).await;
        f.ack("p-3", "lcspr-child-d", may + 20 * 24 * HOUR).await;
        for (person, answer) in [("p-1", "Used it in practice"), ("p-2", "Not yet")] {
            assert!(
                f.store
                    .answer_follow_up(&NewAnswer {
                        rollout_id: "neglect-may".to_owned(),
                        person_id: person.to_owned(),
                        follow_up: 1,
                        answer: answer.to_owned(),
                        example: None,
                        channel: "web".to_owned(),
                        at: ms(2026, 8, 1),
                    })
                    .await
                    .unwrap()
            );
        }
        f.confirm("p-2", "lcspr-child-d", "csc-east").await;

        let sep = ms(2026, 9, 1);
        let cse = ["p-4", "p-5", "p-6", "p-7"];
        f.rollout("cse-sep", "lcspr-child-e", false, sep, &cse, &cse)
            .await;
        f.ack("p-6", "lcspr-child-e", sep + HOUR).await;
        f.ack("p-7", "lcspr-child-e", sep + 4 * HOUR).await;
        f.ack("p-4", "lcspr-child-e", sep + 10 * HOUR).await;

        let jan = ms(2027, 1, 10);
        f.rollout(
            "cse-jan",
            "lcspr-family-f",
            false,
            jan,
            &["p-6", "p-7"],
            &["p-6", "p-7"],
        )
        .await;
        f.ack("p-6", "lcspr-family-f", jan + 3 * HOUR).await;
        f.confirm("p-4", "lcspr-family-f", "ppu-1").await;
        f
    }

    async fn rollout(
        &self,
        id: &str,
        item: &str,
        follow_up: bool,
        at: i64,
        members: &[&str],
        sent: &[&str],
    ) {
        let definition = parse_definition(
            Path::new("rollout.toml"),
            &rollout_toml(id, item, follow_up),
        )
        .unwrap();
        let json = serde_json::to_string(&definition).unwrap();
        let new_members: Vec<NewMember> = members
            .iter()
            .map(|p| NewMember {
                person_id: (*p).to_owned(),
                wave: 0,
                first_due_at: at,
            })
            .collect();
        self.store
            .create_rollout(NewRollout {
                id,
                item_id: item,
                item_version: &self.versions[item],
                definition: &json,
                members: &new_members,
                audience: None,
                now: at,
                team_posts: &[],
            })
            .await
            .unwrap();
        for person in sent {
            let delivery = NewDelivery {
                idempotency_key: format!("{id}/{person}/initial"),
                rollout_id: id.to_owned(),
                person_id: (*person).to_owned(),
                recipient_id: (*person).to_owned(),
                wave: 0,
                step_kind: StepKind::Initial,
                step_number: 1,
                channel: "email".to_owned(),
                channel_rank: 0,
                due_at: at,
            };
            self.store.materialise(&[delivery], &[], at).await.unwrap();
            let claimed = self.store.claim(at, 10, 60_000, &[]).await.unwrap();
            assert_eq!(claimed.len(), 1, "{claimed:?}");
            self.store
                .record(
                    &[(claimed[0].id, DeliveryOutcome::Sent { provider_id: None })],
                    &[],
                    at,
                )
                .await
                .unwrap();
        }
    }

    async fn ack(&self, person: &str, item: &str, at: i64) {
        self.store
            .acknowledge_item(&NewAcknowledgement {
                person_id: person.to_owned(),
                item_id: item.to_owned(),
                item_version: self.versions[item].clone(),
                rollout_id: None,
                delivery_id: None,
                channel: "web".to_owned(),
                method: AckMethod::Link,
                at,
            })
            .await
            .unwrap();
    }

    async fn confirm(&self, champion: &str, item: &str, team: &str) {
        assert!(
            self.store
                .confirm_cascade(&NewConfirmation {
                    champion_id: champion.to_owned(),
                    item_id: item.to_owned(),
                    team_id: team.to_owned(),
                    session_date: "2027-02-01".to_owned(),
                    present: 6,
                    method: "team-meeting".to_owned(),
                    note: None,
                    channel: "web".to_owned(),
                    at: ms(2027, 2, 1),
                })
                .await
                .unwrap()
        );
    }

    async fn annual(&self, from: NaiveDate, to: NaiveDate) -> annual::Annual {
        annual::generate(
            &self.store,
            &AnnualOptions {
                from,
                to,
                within_days: 14,
                examples: vec![
                    "A health visitor used the neglect toolkit at a home visit <and> escalated."
                        .to_owned(),
                ],
                edits: Default::default(),
            },
            &calendar(),
            &Taxonomy::default(),
            utc(2027, 4, 15, 12, 0),
        )
        .await
        .unwrap()
    }

    async fn gaps(&self, below: u32) -> gaps::Gaps {
        gaps::generate(
            &self.store,
            &GapOptions {
                theme: "cse".to_owned(),
                from: year().0,
                to: year().1,
                below_pct: below,
            },
            &calendar(),
            &Taxonomy::default(),
            utc(2027, 4, 15, 12, 0),
        )
        .await
        .unwrap()
    }
}

fn year() -> (NaiveDate, NaiveDate) {
    (
        NaiveDate::from_ymd_opt(2026, 4, 1).unwrap(),
        NaiveDate::from_ymd_opt(2027, 3, 31).unwrap(),
    )
}

/// `id | this period | previous period | sentence` for every figure.
fn lines(a: &annual::Annual) -> Vec<String> {
    a.figures
        .iter()
        .map(|f| {
            format!(
                "{} | {} | {} | {}",
                f.id,
                f.this.shown(),
                f.previous.map_or_else(|| "–".to_owned(), |v| v.shown()),
                f.sentence
            )
        })
        .collect()
}

#[tokio::test]
async fn every_figure_and_sentence_of_a_year_worked_out_by_hand() {
    let f = Fixture::with_rollouts().await;
    let (from, to) = year();
    let a = f.annual(from, to).await;
    let expected = [
        "published-total | 3 | 1 | The partnership rolled out 3 pieces of learning: 3 review findings.",
        "published-kind-review-finding | 3 | – | 3 review findings were rolled out.",
        "published-theme-cse | 2 | – | 2 pieces of learning on Child sexual exploitation.",
        "published-theme-neglect | 2 | 1 | 2 pieces of learning on Neglect.",
        "published-status-embargoed | 1 | – | 1 came from reviews still under embargo, so their details are withheld.",
        "published-status-internal | 1 | – | 1 came from reviews whose reports are not published (internal).",
        "published-status-published | 1 | 1 | 1 came from published reports or were published in full.",
        "reach-all | 91% (10 of 11) | 67% (2 of 3) | The learning reached 10 of the 11 people in its audiences (91%).",
        "ack-all | 60% (6 of 10) | 50% (1 of 2) | Of the 10 people the learning reached, 6 (60%) acknowledged it within 14 days.",
        "reach-theme-cse | 100% (6 of 6) | – | Learning on Child sexual exploitation reached 6 of the 6 people in its audiences (100%).",
        "ack-theme-cse | 67% (4 of 6) | – | Of the 6 people the child sexual exploitation learning reached, 4 (67%) acknowledged it within 14 days.",
        "reach-theme-neglect | 89% (8 of 9) | 67% (2 of 3) | Learning on Neglect reached 8 of the 9 people in its audiences (89%).",
        "ack-theme-neglect | 62% (5 of 8) | 50% (1 of 2) | Of the 8 people the neglect learning reached, 5 (62%) acknowledged it within 14 days.",
        "reach-agency-csc | 100% (3 of 3) | 67% (2 of 3) | Borough Children's Social Care: the learning reached 3 of its 3 people in the audiences (100%).",
        "ack-agency-csc | 67% (2 of 3) | 50% (1 of 2) | Of the 3 people the learning for Borough Children's Social Care reached, 2 (67%) acknowledged it within 14 days.",
        "reach-agency-hosp | 75% (3 of 4) | – | Northbridge Hospitals NHS Trust: the learning reached 3 of its 4 people in the audiences (75%).",
        "ack-agency-hosp | 33% (1 of 3) | – | Of the 3 people the learning for Northbridge Hospitals NHS Trust reached, 1 (33%) acknowledged it within 14 days.",
        "reach-agency-ppu | 100% (4 of 4) | – | Police Public Protection Unit: the learning reached 4 of its 4 people in the audiences (100%).",
        "ack-agency-ppu | 75% (3 of 4) | – | Of the 4 people the learning for Police Public Protection Unit reached, 3 (75%) acknowledged it within 14 days.",
        "ack-rollout-neglect-may | 50% (2 of 4) | – | Of the 4 people \u{201c}Child D: seeing the child\u{201d} reached, 2 (50%) acknowledged it within 14 days.",
        "ack-rollout-cse-sep | 75% (3 of 4) | – | Of the 4 people \u{201c}Exploitation and neglect: joined-up working\u{201d} reached, 3 (75%) acknowledged it within 14 days.",
        "ack-rollout-cse-jan | 50% (1 of 2) | – | Of the 2 people a review finding under embargo reached, 1 (50%) acknowledged it within 14 days.",
        "time-median | 4.0 hours | 5.0 hours | Half of the 7 people who acknowledged did so within 4.0 hours of their first message.",
        "time-p90 | 480.0 hours | 5.0 hours | Nine in ten of the 7 people who acknowledged did so within 20.0 days of their first message.",
        "understanding | – | – | There were no check questions in this period, so there are no figures on understanding.",
        "coverage-theme-cse | 100% (1 of 1) | – | Champions confirmed they had cascaded the child sexual exploitation learning to 1 of the 1 team they cover (100%).",
        "coverage-theme-neglect | 33% (1 of 3) | 0% (0 of 3) | Champions confirmed they had cascaded the neglect learning to 1 of the 3 teams they cover (33%).",
        "practice-neglect-may-1 | 50% (1 of 2) | – | Of the 2 people who answered \u{201c}Have you used this learning in practice?\u{201d} about \u{201c}Child D: seeing the child\u{201d}, 1 (50%) said \u{201c}Used it in practice\u{201d}.",
        "practice-all | 50% (1 of 2) | 0 of 0 | Of the 2 answers to follow-up questions, 1 (50%) said the learning had been used in practice.",
    ];
    assert_eq!(lines(&a), expected, "{:#?}", lines(&a));

    // What was published: the embargoed review's title and subject withheld,
    // the internal review's subject withheld, the public one's shown.
    let published: Vec<String> = a
        .published
        .iter()
        .map(|p| {
            format!(
                "{} | {} | {} | {} | {}",
                p.title,
                p.kind,
                p.themes.join(", "),
                p.source,
                p.status
            )
        })
        .collect();
    assert_eq!(
        published,
        [
            "Child D: seeing the child | review finding | Neglect | LCSPR review: Child D | published",
            "Exploitation and neglect: joined-up working | review finding | Neglect, Child sexual exploitation | LCSPR review (report not published) | internal",
            "A review finding under embargo (title withheld until 30 June 2027) | review finding | Child sexual exploitation | LCSPR review (embargoed: details withheld) | embargoed until 30 June 2027",
        ]
    );
    // The comparisons the charts draw.
    assert_eq!(a.reach_by_theme.len(), 2);
    assert_eq!(a.reach_by_agency.len(), 3);

    // Nothing written anywhere names the embargoed review.
    let docx = docx::render(&a);
    let document = docx_part(&docx, "word/document.xml");
    for text in [
        annual::html(&a),
        annual::figures_csv(&a),
        annual::published_csv(&a),
        annual::sentences_file(&a),
        document.clone(),
    ] {
        assert!(!text.contains(SECRET_SUBJECT), "{text}");
        assert!(
            !text.contains("Child E"),
            "the internal review's subject: {text}"
        );
    }
    // The embargo lifted by the time of a later report: shown then.
    let later = annual::generate(
        &f.store,
        &AnnualOptions {
            from,
            to,
            within_days: 14,
            examples: Vec::new(),
            edits: Default::default(),
        },
        &calendar(),
        &Taxonomy::default(),
        utc(2027, 7, 1, 12, 0),
    )
    .await
    .unwrap();
    assert_eq!(later.published[2].title, SECRET_TITLE);
    assert_eq!(later.published[2].status, "embargo lifted on 30 June 2027");
}

#[tokio::test]
async fn an_empty_period_says_so_in_every_part() {
    let f = Fixture::with_rollouts().await;
    let a = f
        .annual(
            NaiveDate::from_ymd_opt(2030, 4, 1).unwrap(),
            NaiveDate::from_ymd_opt(2031, 3, 31).unwrap(),
        )
        .await;
    assert_eq!(
        lines(&a),
        [
            "published-total | 0 | 0 | No learning was rolled out in this period.",
            "reach-all | 0 of 0 | 0 of 0 | No one was in the audience of a rollout in this period.",
            "time-median | – | – | No one acknowledged learning sent in this period.",
            "time-p90 | – | – | No one acknowledged learning sent in this period.",
            "understanding | – | – | There were no check questions in this period, so there are no figures on understanding.",
            "practice-all | 0 of 0 | 0 of 0 | No rollout in this period asked a follow-up question about practice.",
        ]
    );
    assert!(a.published.is_empty());
    let html = annual::html(&a);
    assert!(html.contains("No learning was rolled out in this period."));
    let document = docx_part(&docx::render(&a), "word/document.xml");
    assert!(document.contains("No learning was rolled out in this period."));
    // A period that ends before it starts is refused.
    let error = annual::generate(
        &f.store,
        &AnnualOptions {
            from: NaiveDate::from_ymd_opt(2027, 4, 1).unwrap(),
            to: NaiveDate::from_ymd_opt(2026, 4, 1).unwrap(),
            within_days: 14,
            examples: Vec::new(),
            edits: Default::default(),
        },
        &calendar(),
        &Taxonomy::default(),
        utc(2027, 4, 15, 12, 0),
    )
    .await
    .unwrap_err();
    assert!(error.to_string().contains("before it starts"), "{error}");
}

#[tokio::test]
async fn the_csv_ties_each_sentence_to_its_definition_and_edited_sentences_replace_them() {
    let f = Fixture::with_rollouts().await;
    let (from, to) = year();
    let a = f.annual(from, to).await;
    let csv = annual::figures_csv(&a);
    let mut lines = csv.lines();
    assert_eq!(
        lines.next().unwrap(),
        "id,part,definition,count,of,percent,hours,previous_count,previous_of,previous_percent,previous_hours,sentence"
    );
    let reach = csv.lines().find(|l| l.starts_with("reach-all,")).unwrap();
    assert!(
        reach.starts_with("reach-all,reach,\"People in the audience of the period's rollouts to whom an initial message was sent,"),
        "{reach}"
    );
    assert!(
        reach.ends_with(",10,11,90.9,,2,3,66.7,,The learning reached 10 of the 11 people in its audiences (91%)."),
        "{reach}"
    );
    assert_eq!(csv.lines().count(), a.figures.len() + 1);

    // The sentences file round-trips, and an edit replaces the wording only.
    let file = annual::sentences_file(&a);
    assert!(file.contains(
        "\n[reach-all] The learning reached 10 of the 11 people in its audiences (91%).\n"
    ));
    let edited = file.replace(
        "[reach-all] The learning reached 10 of the 11 people in its audiences (91%).",
        "[reach-all] Nine in ten people in the audiences (10 of 11) were sent the learning.",
    );
    let edits = annual::parse_sentences(Path::new("sentences.md"), &edited).unwrap();
    let mut options = AnnualOptions {
        from,
        to,
        within_days: 14,
        examples: Vec::new(),
        edits,
    };
    let b = annual::generate(
        &f.store,
        &options,
        &calendar(),
        &Taxonomy::default(),
        utc(2027, 4, 15, 12, 0),
    )
    .await
    .unwrap();
    let reach = b.figures.iter().find(|f| f.id == "reach-all").unwrap();
    assert_eq!(
        reach.sentence,
        "Nine in ten people in the audiences (10 of 11) were sent the learning."
    );
    assert_eq!(reach.this.count, Some(10));
    annual::check_edits(Path::new("sentences.md"), &edited, &b).unwrap();

    // Bad lines name the file, the line and the fix.
    let error = annual::parse_sentences(
        Path::new("sentences.md"),
        "# heading\n\nreach-all Nine in ten\n",
    )
    .unwrap_err();
    assert_eq!(
        error.to_string(),
        "sentences.md:3: a sentence line must start with its figure id in brackets\n  help: write `[reach-all] The learning reached ...`, as `cascade report annual` wrote it"
    );
    let error = annual::check_edits(Path::new("sentences.md"), "\n[reach-everyone] Text\n", &b)
        .unwrap_err();
    assert!(
        error
            .to_string()
            .starts_with("sentences.md:2: [reach-everyone] is not a figure of this report"),
        "{error}"
    );
    options.within_days = 1;
    let c = annual::generate(
        &f.store,
        &options,
        &calendar(),
        &Taxonomy::default(),
        utc(2027, 4, 15, 12, 0),
    )
    .await
    .unwrap();
    let ack = c.figures.iter().find(|f| f.id == "ack-all").unwrap();
    // Within a day: p-1 (2h), p-6 (1h, 3h), p-7 (4h), p-4 (10h).
    assert_eq!((ack.this.count, ack.this.of), (Some(5), Some(10)));
}

/// A part of a .docx, read with the zip crate.
fn docx_part(bytes: &[u8], name: &str) -> String {
    let mut zip = zip::ZipArchive::new(std::io::Cursor::new(bytes)).expect("the .docx is a zip");
    let mut part = zip.by_name(name).unwrap_or_else(|e| panic!("{name}: {e}"));
    let mut text = String::new();
    part.read_to_string(&mut text).unwrap();
    text
}

#[tokio::test]
async fn the_word_document_opens_with_its_parts_figures_and_sentences() {
    let f = Fixture::with_rollouts().await;
    let (from, to) = year();
    let a = f.annual(from, to).await;
    let bytes = docx::render(&a);
    let mut zip = zip::ZipArchive::new(std::io::Cursor::new(&bytes)).unwrap();
    let names: Vec<String> = zip.file_names().map(str::to_owned).collect();
    for part in [
        "[Content_Types].xml",
        "_rels/.rels",
        "word/document.xml",
        "word/styles.xml",
    ] {
        assert!(names.iter().any(|n| n == part), "{part} missing: {names:?}");
    }
    let mut types = String::new();
    zip.by_name("[Content_Types].xml")
        .unwrap()
        .read_to_string(&mut types)
        .unwrap();
    assert!(
        types.contains("wordprocessingml.document.main+xml"),
        "{types}"
    );
    let document = docx_part(&bytes, "word/document.xml");
    // Word's XML escapes the apostrophe or not; compare on the text runs.
    let text = document
        .replace("&apos;", "'")
        .replace("&quot;", "\"")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&amp;", "&");
    for expected in [
        "Learning and its reach, 1 April 2026 to 31 March 2027",
        "The learning reached 10 of the 11 people in its audiences (91%). [reach-all]",
        "Of the 10 people the learning reached, 6 (60%) acknowledged it within 14 days. [ack-all]",
        "Half of the 7 people who acknowledged did so within 4.0 hours of their first message. [time-median]",
        "There were no check questions in this period, so there are no figures on understanding. [understanding]",
        "A review finding under embargo (title withheld until 30 June 2027)",
        "A health visitor used the neglect toolkit at a home visit <and> escalated.",
        "Appendix: how each figure was worked out",
        "91% (10 of 11)",
        "67% (2 of 3)",
    ] {
        assert!(
            text.contains(expected),
            "word/document.xml has no {expected:?}:\n{text}"
        );
    }
    assert!(
        document.contains("w:pStyle w:val=\"Heading1\""),
        "{document}"
    );
    assert!(document.contains("<w:tbl>"), "{document}");
}

#[tokio::test]
async fn gaps_rank_groups_that_received_nothing_then_those_far_below() {
    let f = Fixture::with_rollouts().await;
    let g = f.gaps(50).await;
    let rows: Vec<String> = g
        .gaps
        .iter()
        .map(|g| {
            format!(
                "{} {} | {} | {} | {}",
                g.level,
                g.key,
                g.reason.words(),
                g.reach.shown(),
                g.acknowledged.shown()
            )
        })
        .collect();
    assert_eq!(g.rollouts, 2);
    assert_eq!(g.partnership_reach.shown(), "100% (6 of 6)");
    assert_eq!(g.partnership_acknowledged.shown(), "67% (4 of 6)");
    assert_eq!(
        rows,
        [
            "agency csc | received nothing | 0 of 0 | 0 of 0",
            "team csc-east | received nothing | 0 of 0 | 0 of 0",
            "agency sch | received nothing | 0 of 0 | 0 of 0",
            "role teacher | received nothing | 0 of 0 | 0 of 0",
            "team csc-west | received nothing | 0 of 0 | 0 of 0",
            "team sch-1 | received nothing | 0 of 0 | 0 of 0",
            "role manager | acknowledgement far below the partnership's | 100% (1 of 1) | 0% (0 of 1)",
        ],
        "{rows:#?}"
    );
    // A stricter threshold: the hospital's 50% against 67% is now far below.
    let g = f.gaps(80).await;
    let low: Vec<&str> = g.gaps.iter().skip(6).map(|g| g.key.as_str()).collect();
    assert_eq!(low, ["manager", "hosp", "hosp-paeds"]);

    // The heat map: agencies by theme, reach in each cell.
    assert_eq!(
        g.heat_themes
            .iter()
            .map(|(_, l)| l.as_str())
            .collect::<Vec<_>>(),
        ["Child sexual exploitation", "Neglect"]
    );
    let csc = &g.heat[0];
    assert_eq!(csc.0, "Borough Children's Social Care");
    assert_eq!(csc.1[0], None);
    assert_eq!(csc.1[1].unwrap().shown(), "100% (3 of 3)");
    let html = gaps::html(&g);
    assert!(html.contains("Westfield Schools &lt;Trust&gt;"), "{html}");
    assert!(html.contains("not in an audience"));
    let csv = gaps::csv(&g);
    assert!(
        csv.lines().nth(1).unwrap().starts_with(
            "1,cse,agency,csc,Borough Children's Social Care,3,received nothing,0,0,0,,,100.0,66.7"
        ),
        "{csv}"
    );
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
        "headless Chromium is needed to check the HTML, and {CHROMIUM} is missing.\n\
         help: run `bash scripts/install-test-deps.sh` as root (it runs `apt-get install -y chromium`)\n{}",
        String::from_utf8_lossy(&out.stderr),
    );
    chromium
}

/// Runs headless Chromium on `page` with `mode` (`--dump-dom` or
/// `--screenshot=...`) and returns its standard output.
fn run_chromium(page: &Path, mode: &str) -> String {
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
            "--hide-scrollbars",
            "--window-size=1280,3200",
        ])
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .arg(mode)
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
            panic!("Chromium did not finish within 120 s");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "Chromium failed ({}):\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn text(dom: &str) -> String {
    let mut text = String::new();
    let mut in_tag = false;
    for c in dom
        .replace("</tr>", "\n")
        .replace("</td>", "|")
        .replace("</th>", "|")
        .replace("</p>", "\n")
        .replace("</desc>", "\n")
        .chars()
    {
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
        .replace("&amp;", "&")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_html_renders_in_headless_chromium_with_the_figures_visible() {
    let f = Fixture::with_rollouts().await;
    let (from, to) = year();
    let a = f.annual(from, to).await;
    let gaps = f.gaps(50).await;
    // Kept as artefacts: target/tmp/annual/annual.html, annual.png, gaps.html, gaps.png.
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("annual");
    std::fs::create_dir_all(&dir).unwrap();
    let page = dir.join("annual.html");
    std::fs::write(&page, annual::html(&a)).unwrap();
    let gaps_page = dir.join("gaps.html");
    std::fs::write(&gaps_page, gaps::html(&gaps)).unwrap();
    let (dom, gaps_dom) = tokio::task::spawn_blocking({
        let (page, gaps_page, dir) = (page.clone(), gaps_page.clone(), dir.clone());
        move || {
            let dom = run_chromium(&page, "--dump-dom");
            for (p, png) in [(&page, "annual.png"), (&gaps_page, "gaps.png")] {
                let shot = dir.join(png);
                let _ = std::fs::remove_file(&shot);
                run_chromium(p, &format!("--screenshot={}", shot.display()));
                let bytes = std::fs::read(&shot).expect("Chromium wrote the screenshot");
                assert!(
                    bytes.starts_with(b"\x89PNG") && bytes.len() > 10_000,
                    "{png}: {} bytes",
                    bytes.len()
                );
            }
            (dom, run_chromium(&gaps_page, "--dump-dom"))
        }
    })
    .await
    .unwrap();
    assert!(!dom.contains("<script"));
    assert!(!dom.contains("<and>"), "an example became markup");
    let page_text = text(&dom);
    let lines: Vec<&str> = page_text.lines().map(str::trim).collect();
    for expected in [
        "Learning and its reach, 1 April 2026 to 31 March 2027",
        "The learning reached 10 of the 11 people in its audiences (91%). [reach-all]",
        "Of the 4 people “Child D: seeing the child” reached, 2 (50%) acknowledged it within 14 days. [ack-rollout-neglect-may]",
        "Champions confirmed they had cascaded the neglect learning to 1 of the 3 teams they cover (33%). [coverage-theme-neglect]",
        "A review finding under embargo (title withheld until 30 June 2027)|review finding|Child sexual exploitation|LCSPR review (embargoed: details withheld)|embargoed until 30 June 2027|",
        // The charts' text alternatives, with the previous period beside.
        "Child sexual exploitation, this period: 100% (6 of 6); Neglect, this period: 89% (8 of 9); Neglect, previous period: 67% (2 of 3)",
        // The appendix.
        "reach-all|People in the audience of the period's rollouts to whom an initial message was sent, over the people in those audiences (a person in two rollouts counts twice).|91% (10 of 11)|67% (2 of 3)|",
        "A health visitor used the neglect toolkit at a home visit <and> escalated.",
    ] {
        assert!(
            lines.contains(&expected),
            "the rendered page has no line {expected:?}:\n{page_text}"
        );
    }
    let gaps_text = text(&gaps_dom);
    assert!(
        gaps_text.contains(
            "Borough Children's Social Care|not in an audience|100% (3 of 3): 80% or more|"
        ),
        "{gaps_text}"
    );
    assert!(
        gaps_text
            .contains("1|Borough Children's Social Care|agency|3|received nothing|0 of 0|0 of 0|"),
        "{gaps_text}"
    );
}

fn cascade(args: &[&str], cwd: &Path) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_cascade"))
        .args(args)
        .current_dir(cwd)
        .output()
        .expect("the cascade binary runs")
}

#[test]
fn the_demo_writes_an_annual_section_from_its_own_data_and_bad_input_writes_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let demo = cascade(
        &["demo", "--until-idle", "--listen", "127.0.0.1:0"],
        tmp.path(),
    );
    let stdout = String::from_utf8_lossy(&demo.stdout);
    assert!(
        demo.status.success(),
        "{}",
        String::from_utf8_lossy(&demo.stderr)
    );
    assert!(stdout.contains("== cascade report annual"), "{stdout}");
    // The demo's monthly bulletin is started, and shows its next issue.
    assert!(
        stdout.contains("bulletin practice-bulletin (Northbridge practice bulletin): every month on the first Tuesday at 09:00, next Tue "),
        "{stdout}"
    );
    let out = tmp.path().join("cascade-demo/annual-report");
    for name in [
        "annual.html",
        "annual.docx",
        "figures.csv",
        "published.csv",
        "sentences.md",
    ] {
        assert!(out.join(name).exists(), "{name} missing:\n{stdout}");
    }
    let html = std::fs::read_to_string(out.join("annual.html")).unwrap();
    assert!(
        html.contains("The learning reached 50 of the 50 people in its audiences (100%). <span class=\"figure-id\">[reach-all]</span>"),
        "{html}"
    );
    assert!(
        html.contains("A health visitor in the east locality"),
        "the demo's examples: {html}"
    );
    let document = docx_part(
        &std::fs::read(out.join("annual.docx")).unwrap(),
        "word/document.xml",
    );
    assert!(
        document.contains(
            "The learning reached 50 of the 50 people in its audiences (100%). [reach-all]"
        )
    );

    // An edited sentences file with a bad line: an error naming the file
    // and line, and nothing written.
    std::fs::remove_dir_all(&out).unwrap();
    let project = tmp.path().join("cascade-demo");
    std::fs::write(
        project.join("sentences.md"),
        "# edited\n[reach-all] Everyone in the audience was sent the learning.\n[reach-everyone] A typo.\n",
    )
    .unwrap();
    let bad = cascade(
        &[
            "report",
            "annual",
            "--project",
            "cascade-demo",
            "--from",
            "2020-04-01",
            "--to",
            "2040-03-31",
            "--out",
            "cascade-demo/annual-report",
            "--sentences",
            "cascade-demo/sentences.md",
        ],
        tmp.path(),
    );
    assert!(!bad.status.success());
    let stderr = String::from_utf8_lossy(&bad.stderr);
    assert!(
        stderr.contains(
            "cascade-demo/sentences.md:3: [reach-everyone] is not a figure of this report"
        ),
        "{stderr}"
    );
    assert!(!out.exists(), "nothing is written");

    // Fixed, the edited sentence is used.
    std::fs::write(
        project.join("sentences.md"),
        "[reach-all] Everyone in the audience was sent the learning.\n",
    )
    .unwrap();
    let good = cascade(
        &[
            "report",
            "annual",
            "--project",
            "cascade-demo",
            "--from",
            "2020-04-01",
            "--to",
            "2040-03-31",
            "--out",
            "cascade-demo/annual-report",
            "--sentences",
            "cascade-demo/sentences.md",
        ],
        tmp.path(),
    );
    assert!(
        good.status.success(),
        "{}",
        String::from_utf8_lossy(&good.stderr)
    );
    let html = std::fs::read_to_string(out.join("annual.html")).unwrap();
    assert!(html.contains("Everyone in the audience was sent the learning. <span class=\"figure-id\">[reach-all]</span>"));

    // Gaps: an unknown theme is named with the nearest one; a known one works.
    let unknown = cascade(
        &[
            "report",
            "gaps",
            "--project",
            "cascade-demo",
            "--theme",
            "neglet",
            "--from",
            "2020-04-01",
            "--to",
            "2040-03-31",
        ],
        tmp.path(),
    );
    assert!(!unknown.status.success());
    let stderr = String::from_utf8_lossy(&unknown.stderr);
    assert!(
        stderr.contains("--theme neglet: no such theme")
            && stderr.contains("did you mean `--theme neglect`?"),
        "{stderr}"
    );
    let gaps = cascade(
        &[
            "report",
            "gaps",
            "--project",
            "cascade-demo",
            "--theme",
            "neglect",
            "--from",
            "2020-04-01",
            "--to",
            "2040-03-31",
            "--format",
            "html",
            "--out",
            "gaps.html",
        ],
        tmp.path(),
    );
    assert!(
        gaps.status.success(),
        "{}",
        String::from_utf8_lossy(&gaps.stderr)
    );
    let html = std::fs::read_to_string(tmp.path().join("gaps.html")).unwrap();
    assert!(html.contains("Reach by agency and theme"), "{html}");
    // The rollout report still takes a rollout id.
    let rollout = cascade(
        &[
            "report",
            "--project",
            "cascade-demo",
            "demo-neglect-briefing",
        ],
        tmp.path(),
    );
    assert!(
        rollout.status.success(),
        "{}",
        String::from_utf8_lossy(&rollout.stderr)
    );
}

/// Issue 19: the Understanding part from answers to check questions given
/// with acknowledgements. A finding asks two questions; p-1, p-2 and p-3
/// acknowledge. Question 1: p-1 and p-3 right first time, p-2 after a
/// retry (2 of 3). Question 2: only p-3 right first time (1 of 3). p-4
/// answered wrong and never acknowledged: not counted.
#[tokio::test]
async fn understanding_is_the_share_of_check_answers_right_first_time_in_plain_english() {
    let f = Fixture::new().await;
    let text = finding(
        "lcspr-child-g",
        "Child G: hearing the child",
        "Child G",
        "\"neglect\"",
        "status = \"published\"",
    )
    .replacen(
        "+++\n\n## Summary",
        "[[check_questions]]\nquestion = \"Who should you see alone?\"\noptions = [\"The parent\", \"The child\"]\nanswer = \"The child\"\nexplanation = \"Seeing the child alone lets them speak.\"\nsection = \"What practitioners should do\"\n\n[[check_questions]]\nquestion = \"Who shared concerns?\"\noptions = [\"The school nurse\", \"No one\"]\nanswer = \"The school nurse\"\nexplanation = \"The school nurse did.\"\nsection = \"Good practice\"\n+++\n\n## Summary",
        1,
    );
    let item = parse_item(Path::new("item.md"), &text, &Taxonomy::default())
        .unwrap_or_else(|e| panic!("{e:?}"));
    assert_eq!(item.check_questions.len(), 2);
    f.store.save_item(&item, &text).await.unwrap();
    let mut f = f;
    f.versions.insert(item.id.clone(), item.version.0.clone());
    let jun = ms(2026, 6, 1);
    let people = ["p-1", "p-2", "p-3", "p-4"];
    f.rollout("checks-jun", "lcspr-child-g", false, jun, &people, &people)
        .await;
    let attempt = |person: &str, question: u32, chosen: u32, right: bool, seen: u32| {
        cascade_store::CheckAttempt {
            person_id: person.to_owned(),
            item_id: item.id.clone(),
            item_version: item.version.0.clone(),
            question,
            question_digest: item.check_questions[question as usize - 1].digest(),
            chosen,
            right,
            seen,
            at: jun + HOUR,
        }
    };
    for a in [
        attempt("p-1", 1, 2, true, 0),
        attempt("p-1", 2, 2, false, 0),
        attempt("p-1", 2, 1, true, 1),
        attempt("p-2", 1, 1, false, 0),
        attempt("p-2", 1, 2, true, 1),
        attempt("p-2", 2, 2, false, 0),
        attempt("p-2", 2, 1, true, 1),
        attempt("p-3", 1, 2, true, 0),
        attempt("p-3", 2, 1, true, 0),
        attempt("p-4", 1, 1, false, 0),
    ] {
        assert_eq!(f.store.record_check_attempts(&[a]).await.unwrap(), 1);
    }
    for person in ["p-1", "p-2", "p-3"] {
        f.ack(person, "lcspr-child-g", jun + 2 * HOUR).await;
    }
    let (from, to) = year();
    let a = f.annual(from, to).await;
    let understanding: Vec<String> = lines(&a)
        .into_iter()
        .filter(|l| l.starts_with("understanding"))
        .collect();
    assert_eq!(
        understanding,
        [
            "understanding | 50% (3 of 6) | – | Of the 6 answers to check questions given when people acknowledged, 3 (50%) were right the first time.",
            "understanding-checks-jun-q1 | 67% (2 of 3) | – | 2 of the 3 people who answered \u{201c}Who should you see alone?\u{201d} (\u{201c}Child G: hearing the child\u{201d}) were right the first time (67%).",
            "understanding-checks-jun-q2 | 33% (1 of 3) | – | 1 of the 3 people who answered \u{201c}Who shared concerns?\u{201d} (\u{201c}Child G: hearing the child\u{201d}) were right the first time (33%).",
            "understanding-weakest | – | – | The point landing least well was \u{201c}Who shared concerns?\u{201d}: 33% right the first time, so it may need saying again.",
        ],
        "{understanding:#?}"
    );
}
