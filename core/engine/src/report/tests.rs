//! The pure half of reports: figures from hand-made rows, no database.

use super::*;
use cascade_model::rollout::{QuietHours, StepKind, parse_definition};
use chrono::TimeZone;
use std::path::Path;

const DEFINITION: &str = r#"
id = "r1"
item = "7mb-neglect"
start = 2026-01-12T09:00:00
channels = ["email"]
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
question = "Used it?"
answers = ["Yes", "No"]
"#;

/// Unix milliseconds of a UTC time in January 2026 (GMT, so local too).
fn jan(day: u32, hour: u32) -> i64 {
    Utc.with_ymd_and_hms(2026, 1, day, hour, 0, 0)
        .unwrap()
        .timestamp_millis()
}

fn calendar() -> Calendar {
    Calendar::new("Europe/London", QuietHours::default()).unwrap()
}

fn rows() -> Rows {
    let definition = parse_definition(Path::new("r1.toml"), DEFINITION).unwrap();
    let person = |id: &str, agency: &str, team: &str| PersonRow {
        id: id.into(),
        agency_id: agency.into(),
        team_id: team.into(),
    };
    let send = |person: &str, kind: StepKind, at: i64| SendRow {
        person_id: person.into(),
        step_kind: kind,
        sent_at: at,
    };
    let confirmation = |id: i64, item: &str, team: &str, present: u32| ConfirmationRow {
        id,
        item_id: item.into(),
        team_id: team.into(),
        present,
    };
    Rows {
        now: Utc.with_ymd_and_hms(2026, 1, 20, 12, 0, 0).unwrap(),
        agencies: vec![
            AgencyRow {
                id: "ag-a".into(),
                name: "Agency \"A\", East".into(),
            },
            AgencyRow {
                id: "ag-b".into(),
                name: "Agency B".into(),
            },
        ],
        teams: vec![
            TeamRow {
                id: "t-1".into(),
                agency_id: "ag-a".into(),
                name: "Team <One> & Co".into(),
            },
            TeamRow {
                id: "t-2".into(),
                agency_id: "ag-b".into(),
                name: "Team Two".into(),
            },
        ],
        people: vec![
            person("a1", "ag-a", "t-1"),
            person("a2", "ag-a", "t-1"),
            person("b1", "ag-b", "t-2"),
        ],
        roles: vec![
            RoleRow {
                person_id: "a1".into(),
                role: "manager".into(),
            },
            RoleRow {
                person_id: "a1".into(),
                role: "practitioner".into(),
            },
            RoleRow {
                person_id: "a2".into(),
                role: "practitioner".into(),
            },
        ],
        champions: vec![ChampionRow {
            person_id: "a1".into(),
            theme: "neglect".into(),
        }],
        rollouts: vec![RolloutRows {
            id: "r1".into(),
            item_id: "7mb-neglect".into(),
            item_version: "0123456789abcdef".into(),
            item_title: "Neglect: seeing the child".into(),
            state: "active".into(),
            created_at: jan(5, 10),
            definition,
            members: vec![
                MemberRow {
                    person_id: "a1".into(),
                    wave: 0,
                },
                MemberRow {
                    person_id: "a2".into(),
                    wave: 1,
                },
                MemberRow {
                    person_id: "b1".into(),
                    wave: 1,
                },
                MemberRow {
                    person_id: "ghost".into(),
                    wave: 0,
                },
            ],
            sends: vec![
                send("a1", StepKind::Initial, jan(12, 10)),
                send("a1", StepKind::Initial, jan(12, 9)),
                send("a2", StepKind::Initial, jan(14, 9)),
                send("b1", StepKind::Escalation, jan(20, 9)),
            ],
            acknowledgements: vec![
                AckRow {
                    person_id: "a1".into(),
                    at: jan(12, 11),
                },
                AckRow {
                    person_id: "a2".into(),
                    at: jan(14, 13),
                },
            ],
            answers: vec![
                AnswerRow {
                    person_id: "a1".into(),
                    follow_up: 1,
                    answer: "Yes".into(),
                },
                AnswerRow {
                    person_id: "b1".into(),
                    follow_up: 1,
                    answer: "Maybe".into(),
                },
            ],
        }],
        confirmations: vec![
            confirmation(1, "7mb-neglect", "t-1", 3),
            confirmation(2, "7mb-neglect", "t-1", 4),
            confirmation(3, "another-item", "t-2", 9),
        ],
    }
}

fn report() -> Report {
    compute(
        &rows(),
        &Selection::Rollout("r1".into()),
        &calendar(),
        &Taxonomy::default(),
    )
}

fn section(report: &Report, kind: SectionKind) -> &[FigureRow] {
    &report
        .sections
        .iter()
        .find(|s| s.kind == kind)
        .unwrap()
        .rows
}

fn row<'a>(report: &'a Report, kind: SectionKind, key: &str) -> &'a FigureRow {
    section(report, kind)
        .iter()
        .find(|r| r.key == key)
        .unwrap_or_else(|| panic!("no {key} row in {kind:?}"))
}

#[test]
fn totals_count_members_sends_acknowledgements_and_the_median_wait() {
    let report = report();
    let total = row(&report, SectionKind::Total, "all");
    assert_eq!(
        total.figures,
        Figures {
            audience: 4,
            sent: 2,
            delivered: 2,
            acknowledged: 2,
            // a1 waited 2 hours from their first send, a2 4 hours.
            median_hours: Some(3.0),
            // ghost's wave-1 deadline (19 Jan 09:00) has passed; wave 2's has not.
            overdue: 1,
            escalated: 1,
        }
    );
    assert_eq!(total.figures.acknowledged_pct(), Some(50.0));
    assert_eq!(
        total.coverage,
        Some(Coverage {
            teams: 1,
            present: 7
        })
    );
}

#[test]
fn a_person_counts_in_each_of_their_roles_and_themes() {
    let report = report();
    assert_eq!(
        row(&report, SectionKind::Role, "practitioner")
            .figures
            .audience,
        2
    );
    assert_eq!(
        row(&report, SectionKind::Role, "manager").figures.audience,
        1
    );
    let neglect = row(&report, SectionKind::ChampionTheme, "neglect");
    assert_eq!(neglect.name, "Neglect");
    assert_eq!(neglect.figures.acknowledged, 1);
    assert_eq!(neglect.coverage, None);
}

#[test]
fn members_missing_from_the_directory_are_counted_apart() {
    let report = report();
    let unknown = row(&report, SectionKind::Agency, "?");
    assert_eq!(unknown.name, "Not in the directory");
    assert_eq!(unknown.figures.audience, 1);
    assert_eq!(unknown.figures.overdue, 1);
    assert_eq!(unknown.figures.median_hours, None);
    assert_eq!(unknown.figures.acknowledged_pct(), Some(0.0));
}

#[test]
fn confirmations_of_other_items_do_not_count() {
    let report = report();
    let b = row(&report, SectionKind::Agency, "ag-b");
    assert_eq!(b.coverage, Some(Coverage::default()));
    let waves = section(&report, SectionKind::Wave);
    assert_eq!(
        waves
            .iter()
            .map(|w| (w.key.as_str(), w.name.as_str(), w.figures.audience))
            .collect::<Vec<_>>(),
        [("1", "Champions", 2), ("2", "Everyone else", 2)]
    );
}

#[test]
fn every_fixed_answer_has_a_row_and_other_answers_follow() {
    let report = report();
    let total = &report.answers[0];
    assert_eq!(total.by, AnswerBy::Total);
    assert_eq!(
        total
            .rows
            .iter()
            .map(|a| (a.answer.as_str(), a.count))
            .collect::<Vec<_>>(),
        [("Yes", 1), ("No", 0), ("Maybe", 1)]
    );
    let by_agency: Vec<(&str, &str, u64)> = report.answers[1]
        .rows
        .iter()
        .map(|a| (a.key.as_str(), a.answer.as_str(), a.count))
        .collect();
    assert_eq!(
        by_agency,
        [
            ("?", "Yes", 0),
            ("?", "No", 0),
            ("?", "Maybe", 0),
            ("ag-a", "Yes", 1),
            ("ag-a", "No", 0),
            ("ag-a", "Maybe", 0),
            ("ag-b", "Yes", 0),
            ("ag-b", "No", 0),
            ("ag-b", "Maybe", 1),
        ]
    );
}

#[test]
fn csv_quotes_names_and_keeps_one_header() {
    let csv = render(&report(), Format::Csv);
    let mut lines = csv.lines();
    assert_eq!(
        lines.next().unwrap(),
        "section,rollout,key,name,audience,sent,delivered,acknowledged,acknowledged_pct,median_hours_to_acknowledge,overdue,escalated,teams_confirmed,people_present,follow_up,question,answer,count"
    );
    assert!(
        csv.contains("agency,,ag-a,\"Agency \"\"A\"\", East\",2,2,2,2,100.0,3.0,0,0,1,7,,,,\n"),
        "{csv}"
    );
}

#[test]
fn html_escapes_text_and_has_no_scripts_or_outside_resources() {
    let html = render(&report(), Format::Html);
    assert!(html.contains("Team &lt;One&gt; &amp; Co"));
    assert!(!html.contains("<One>"));
    assert!(html.contains("Agency &quot;A&quot;, East"));
    assert!(!html.contains("<script"));
    assert!(!html.contains("http"));
    assert!(!html.contains(" src="));
    assert!(html.contains("<caption>"));
    assert!(html.contains("<th scope=\"col\""));
    assert!(html.contains("<svg role=\"img\" aria-labelledby=\"chart-ack-title chart-ack-desc\""));
}

#[test]
fn table_aligns_columns() {
    let text = render(&report(), Format::Table);
    let agency: Vec<&str> = text
        .split("\nBy agency\n")
        .nth(1)
        .unwrap()
        .lines()
        .take_while(|l| !l.is_empty())
        .collect();
    let widths: Vec<usize> = agency.iter().map(|l| l.chars().count()).collect();
    assert!(widths.windows(2).all(|w| w[0] == w[1]), "{agency:#?}");
    assert!(agency[3].contains("Agency \"A\", East"));
}

#[test]
fn csv_cells_a_spreadsheet_would_run_as_formulas_are_shown_as_text() {
    let mut rows = rows();
    rows.agencies[1].name = "=HYPERLINK(\"https://evil.example\",\"Open\")".into();
    rows.teams[0].name = "@SUM(1+1)".into();
    rows.teams[1].name = "+cmd|' /C calc'!A0".into();
    let r1 = &mut rows.rollouts[0];
    r1.definition.follow_ups[0].question = "-2+3 Used it?".into();
    r1.answers[1].answer = "\t=1+1".into();
    r1.answers.push(AnswerRow {
        person_id: "a2".into(),
        follow_up: 1,
        answer: "\r=1+1".into(),
    });
    let report = compute(
        &rows,
        &Selection::Rollout("r1".into()),
        &calendar(),
        &Taxonomy::default(),
    );
    let csv = render(&report, Format::Csv);
    for shown in [
        "\"'=HYPERLINK(\"\"https://evil.example\"\",\"\"Open\"\")\"",
        "'@SUM(1+1)",
        "'+cmd|' /C calc'!A0",
        "'-2+3 Used it?",
        "'\t=1+1",
        "\"'\r=1+1\"",
    ] {
        assert!(csv.contains(shown), "{shown:?} not in {csv}");
    }
    let mut reader = csv::Reader::from_reader(csv.as_bytes());
    for record in reader.records() {
        for cell in &record.unwrap() {
            assert!(
                !cell.starts_with(['=', '+', '-', '@', '\t', '\r']),
                "{cell:?}"
            );
        }
    }
}

#[test]
fn csv_cells_that_are_plain_numbers_are_left_as_numbers() {
    for number in ["-12", "-0.5", "+3", "42", "100.0"] {
        assert_eq!(csv_file::cell(number), number);
    }
    for text in ["-", "-1e5", "-inf", "+NaN", "-1,2", "-12 ", "=1", "@1"] {
        assert_eq!(csv_file::cell(text), format!("'{text}"));
    }
    assert_eq!(csv_file::cell("Agency B"), "Agency B");
    assert_eq!(csv_file::cell(""), "");
}
