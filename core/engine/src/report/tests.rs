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

/// A member as the store gives one recorded before cascade kept where
/// they were reached: no team or agency of their own, still chased.
fn member() -> MemberRow {
    MemberRow {
        person_id: String::new(),
        wave: 0,
        team_id: None,
        agency_id: None,
        out_reason: None,
        out_at: None,
        joined_at: None,
        shift_days: 0,
    }
}

fn rows() -> Rows {
    let definition = parse_definition(Path::new("r1.toml"), DEFINITION).unwrap();
    let person = |id: &str, agency: &str, team: &str| PersonRow {
        id: id.into(),
        agency_id: agency.into(),
        team_id: team.into(),
        absent_until: None,
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
                    ..member()
                },
                MemberRow {
                    person_id: "a2".into(),
                    wave: 1,
                    ..member()
                },
                MemberRow {
                    person_id: "b1".into(),
                    wave: 1,
                    ..member()
                },
                MemberRow {
                    person_id: "ghost".into(),
                    wave: 0,
                    ..member()
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
            check_questions: Vec::new(),
            check_answers: Vec::new(),
            refresher_answers: Vec::new(),
            item_themes: vec!["neglect".into()],
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
            ..Figures::default()
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
        "section,rollout,key,name,audience,sent,delivered,acknowledged,acknowledged_pct,median_hours_to_acknowledge,overdue,escalated,left,moved,joined_later,teams_confirmed,people_present,follow_up,question,answer,count,right_first_time,right_first_time_pct,absent"
    );
    assert!(
        csv.contains(
            "agency,,ag-a,\"Agency \"\"A\"\", East\",2,2,2,2,100.0,3.0,0,0,0,0,0,1,7,,,,,,,0\n"
        ),
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

/// The fixed rows with a leaver and a mover: `ghost` (wave 1, past its
/// deadline, never acknowledged) left the directory; `a2` (acknowledged)
/// was reached in Team One of agency A and has moved to Team Two of
/// agency B, out of the audience; `b1` moved too, unacknowledged.
fn report_of(rows: &Rows) -> Report {
    compute(
        rows,
        &Selection::Rollout("r1".into()),
        &calendar(),
        &Taxonomy::default(),
    )
}

fn rows_with_leavers_and_movers() -> Rows {
    let mut rows = rows();
    rows.people
        .iter_mut()
        .filter(|p| p.id == "a2")
        .for_each(|p| {
            p.agency_id = "ag-b".into();
            p.team_id = "t-2".into();
        });
    for m in &mut rows.rollouts[0].members {
        match m.person_id.as_str() {
            "ghost" => m.out_reason = Some("left".into()),
            "a2" => {
                m.team_id = Some("t-1".into());
                m.agency_id = Some("ag-a".into());
                m.out_reason = Some("moved".into());
            }
            "b1" => {
                m.team_id = Some("t-2".into());
                m.agency_id = Some("ag-b".into());
                m.out_reason = Some("moved".into());
            }
            _ => {}
        }
    }
    // b1 is now past wave 2's deadline too: overdue if still chased.
    rows.now = Utc.with_ymd_and_hms(2026, 1, 30, 12, 0, 0).unwrap();
    rows
}

#[test]
fn leavers_are_left_not_overdue_and_leave_the_percentage_they_cannot_reach() {
    let report = report_of(&rows_with_leavers_and_movers());
    let total = row(&report, SectionKind::Total, "all");
    assert_eq!(
        total.figures,
        Figures {
            audience: 4,
            sent: 2,
            delivered: 2,
            acknowledged: 2,
            median_hours: Some(3.0),
            // ghost left and b1 moved: neither is chased, so neither is
            // overdue, though both are past their deadline unacknowledged.
            overdue: 0,
            absent: 0,
            escalated: 1,
            left: 1,
            left_unacknowledged: 1,
            moved: 2,
            joined: 0,
        }
    );
    // 2 acknowledged of the 3 who still could (ghost left without).
    assert_eq!(total.figures.acknowledged_pct(), Some(200.0 / 3.0));
    // The unknown agency holds only ghost: nobody left to expect.
    let unknown = row(&report, SectionKind::Agency, "?");
    assert_eq!((unknown.figures.left, unknown.figures.overdue), (1, 0));
    assert_eq!(unknown.figures.acknowledged_pct(), None);
    // Without the leaver and the movers ghost and b1 would be overdue.
    let mut chased = rows_with_leavers_and_movers();
    chased.rollouts[0]
        .members
        .iter_mut()
        .for_each(|m| m.out_reason = None);
    let chased = report_of(&chased);
    let all = &row(&chased, SectionKind::Total, "all").figures;
    assert_eq!((all.overdue, all.left, all.moved), (2, 0, 0));
    assert_eq!(all.acknowledged_pct(), Some(50.0));

    let csv = render(&report, Format::Csv);
    let header = csv.lines().next().unwrap();
    assert!(
        header.contains(",overdue,escalated,left,moved,"),
        "{header}"
    );
    assert!(
        csv.lines()
            .any(|l| l.starts_with("total,,all,All members,4,2,2,2,66.7,3.0,0,1,1,2,")),
        "{csv}"
    );
    let text = render(&report, Format::Table);
    assert!(text.contains("Left") && text.contains("Moved"), "{text}");
}

#[test]
fn a_mover_counts_where_the_rollout_reached_them_and_again_where_they_are_now() {
    let report = report_of(&rows_with_leavers_and_movers());
    // a2 was reached in Team One (agency A): counted there, with their
    // acknowledgement, though the directory now has them in Team Two.
    let one = row(&report, SectionKind::Team, "t-1");
    assert_eq!(
        (
            one.figures.audience,
            one.figures.acknowledged,
            one.figures.moved
        ),
        (2, 2, 1)
    );
    let a = row(&report, SectionKind::Agency, "ag-a");
    assert_eq!((a.figures.audience, a.figures.moved), (2, 1));
    let two = row(&report, SectionKind::Team, "t-2");
    assert_eq!((two.figures.audience, two.figures.moved), (1, 1));
    // Separately, the movers where they are now: both in Team Two.
    let now = row(&report, SectionKind::MovedTeamNow, "t-2");
    assert_eq!(now.name, "Team Two");
    assert_eq!(
        (
            now.figures.audience,
            now.figures.acknowledged,
            now.figures.moved
        ),
        (2, 1, 2)
    );
    assert_eq!(section(&report, SectionKind::MovedTeamNow).len(), 1);
    let b = row(&report, SectionKind::MovedAgencyNow, "ag-b");
    assert_eq!(b.figures.audience, 2);
    // Nobody moved: no movers' sections at all.
    let plain = report_of(&rows());
    assert!(plain.sections.iter().all(|s| !matches!(
        s.kind,
        SectionKind::MovedAgencyNow | SectionKind::MovedTeamNow
    )));
}

/// The rollout open to joiners: j2 joined before the second wave sent
/// (its own timetable), j1 after it, on a timetable moved ten days; ghost
/// left on 16 January.
fn rows_with_joiners() -> Rows {
    let mut rows = rows();
    let open = DEFINITION.replace("[audience]", "enrol = \"joiners\"\n[audience]");
    rows.rollouts[0].definition = parse_definition(Path::new("r1.toml"), &open).unwrap();
    rows.people.push(PersonRow {
        id: "j1".into(),
        agency_id: "ag-a".into(),
        team_id: "t-1".into(),
        absent_until: None,
    });
    let r = &mut rows.rollouts[0];
    for m in &mut r.members {
        if m.person_id == "ghost" {
            m.out_reason = Some("left".into());
            m.out_at = Some(jan(16, 9));
        }
    }
    r.members.push(MemberRow {
        person_id: "j1".into(),
        wave: 1,
        joined_at: Some(jan(22, 9)),
        shift_days: 10,
        ..member()
    });
    r.members.push(MemberRow {
        person_id: "j2".into(),
        wave: 1,
        joined_at: Some(jan(13, 9)),
        ..member()
    });
    r.acknowledgements.push(AckRow {
        person_id: "j2".into(),
        at: jan(15, 9),
    });
    rows.now = Utc.with_ymd_and_hms(2026, 1, 30, 12, 0, 0).unwrap();
    rows
}

/// The fixed rows with answers to two check questions (issue 19): a1
/// (agency A, team One, manager and practitioner, wave 1), a2 (agency A,
/// team One, practitioner, wave 2) and b1 (agency B, team Two, no role,
/// wave 2). Question 1: a1 and b1 right first time, a2 not. Question 2:
/// only b1.
fn rows_with_check_answers() -> Rows {
    let mut rows = rows();
    let r = &mut rows.rollouts[0];
    r.check_questions = vec![
        "What should you ask to see?".into(),
        "=Who do you tell first?".into(),
    ];
    let answer = |person: &str, question: u32, right: bool| CheckRow {
        person_id: person.into(),
        question,
        right_first_time: right,
    };
    r.check_answers = vec![
        answer("a1", 1, true),
        answer("a1", 2, false),
        answer("a2", 1, false),
        answer("a2", 2, false),
        answer("b1", 1, true),
        answer("b1", 2, true),
        // Not a member of this rollout: not counted.
        answer("stranger", 1, false),
    ];
    rows
}

#[test]
fn joiners_count_as_joined_later_and_are_overdue_only_after_their_own_deadline() {
    let report = report_of(&rows_with_joiners());
    let total = row(&report, SectionKind::Total, "all");
    // b1 is past wave 2's deadline (21 January); j1's own, moved ten
    // days (their send held from Saturday 24 to Monday 26 January), is
    // 2 February: not yet.
    assert_eq!(
        (
            total.figures.audience,
            total.figures.joined,
            total.figures.overdue,
            total.figures.left
        ),
        (6, 2, 1, 1)
    );
    assert_eq!(row(&report, SectionKind::Wave, "2").figures.joined, 2);
    assert!(
        render(&report, Format::Table).contains("Joined later"),
        "a column of its own"
    );
    // Without their own timetable j1 would be overdue too.
    let mut unmoved = rows_with_joiners();
    unmoved.rollouts[0].members[4].shift_days = 0;
    let unmoved = report_of(&unmoved);
    assert_eq!(row(&unmoved, SectionKind::Total, "all").figures.overdue, 2);
}

#[test]
fn an_open_rollouts_reach_grows_week_by_week_without_those_who_left() {
    let report = report_of(&rows_with_joiners());
    let weeks: Vec<(u32, &str, u64, u64, u64)> = report
        .reach
        .iter()
        .map(|r| (r.week, r.from.as_str(), r.members, r.joined, r.acknowledged))
        .collect();
    assert_eq!(
        weeks,
        [
            (1, "2026-01-05", 4, 0, 0),
            // j2 joined, a1, a2 and j2 acknowledged; ghost left.
            (2, "2026-01-12", 4, 1, 3),
            (3, "2026-01-19", 5, 2, 3),
            (4, "2026-01-26", 5, 2, 3),
        ]
    );
    assert_eq!(report.reach[1].acknowledged_pct(), Some(75.0));
    let csv = render(&report, Format::Csv);
    assert!(
        csv.contains("\nreach-week,r1,2,week from 2026-01-12,4,,,3,75.0,,,,,,1,,,,,,,,,\n"),
        "{csv}"
    );
    let html = render(&report, Format::Html);
    assert!(html.contains("Reach of open rollouts by week"));
    // A rollout fixed at its start has no such table.
    assert!(report_of(&rows()).reach.is_empty());
    assert!(!render(&report_of(&rows()), Format::Table).contains("Reach of open rollouts"));
}

#[test]
fn understanding_is_the_share_right_first_time_per_question_by_agency_team_role_and_wave() {
    let report = report_of(&rows_with_check_answers());
    let figures = |by: UnderstandingBy| -> Vec<(String, u32, u64, u64, String)> {
        report
            .understanding
            .iter()
            .find(|s| s.by == by)
            .unwrap()
            .rows
            .iter()
            .map(|u| {
                (
                    u.key.clone(),
                    u.question,
                    u.answered,
                    u.right_first_time,
                    percent(u.right_first_time_pct()),
                )
            })
            .collect()
    };
    let row = |key: &str, q: u32, answered: u64, right: u64, pct: &str| {
        (key.to_owned(), q, answered, right, pct.to_owned())
    };
    assert_eq!(
        figures(UnderstandingBy::Total),
        [row("all", 1, 3, 2, "66.7%"), row("all", 2, 3, 1, "33.3%")]
    );
    assert_eq!(
        figures(UnderstandingBy::Agency),
        [
            row("ag-a", 1, 2, 1, "50.0%"),
            row("ag-b", 1, 1, 1, "100.0%"),
            row("ag-a", 2, 2, 0, "0.0%"),
            row("ag-b", 2, 1, 1, "100.0%"),
        ]
    );
    assert_eq!(
        figures(UnderstandingBy::Team),
        [
            row("t-1", 1, 2, 1, "50.0%"),
            row("t-2", 1, 1, 1, "100.0%"),
            row("t-1", 2, 2, 0, "0.0%"),
            row("t-2", 2, 1, 1, "100.0%"),
        ]
    );
    assert_eq!(
        figures(UnderstandingBy::Role),
        [
            row("manager", 1, 1, 1, "100.0%"),
            row("practitioner", 1, 2, 1, "50.0%"),
            row("manager", 2, 1, 0, "0.0%"),
            row("practitioner", 2, 2, 0, "0.0%"),
        ]
    );
    assert_eq!(
        figures(UnderstandingBy::Wave),
        [
            row("1", 1, 1, 1, "100.0%"),
            row("2", 1, 2, 1, "50.0%"),
            row("1", 2, 1, 0, "0.0%"),
            row("2", 2, 2, 1, "50.0%"),
        ]
    );
    let agency = &report
        .understanding
        .iter()
        .find(|s| s.by == UnderstandingBy::Agency)
        .unwrap()
        .rows[0];
    assert_eq!(agency.name, "Agency \"A\", East");
    assert_eq!(agency.question_text, "What should you ask to see?");

    // The CSV: the question's number and words, those who answered in
    // `count`, right first time and its share; a question starting `=`
    // stays text.
    let csv = render(&report, Format::Csv);
    assert!(
        csv.contains("understanding-total,r1,all,All members,,,,,,,,,,,,,,1,What should you ask to see?,,3,2,66.7,\n"),
        "{csv}"
    );
    assert!(
        csv.contains("understanding-wave,r1,2,Everyone else,,,,,,,,,,,,,,2,'=Who do you tell first?,,2,1,50.0,\n"),
        "{csv}"
    );
    // The table and the HTML show each grouping.
    let table = render(&report, Format::Table);
    for heading in [
        "Understanding: check questions right first time",
        "Understanding by agency",
        "Understanding by team",
        "Understanding by role",
        "Understanding by wave",
    ] {
        assert!(table.contains(heading), "{heading} in {table}");
    }
    assert!(table.contains("1. What should you ask to see?"), "{table}");
    let html = render(&report, Format::Html);
    assert!(html.contains("<h2 id=\"h-understanding-team\">Understanding by team</h2>"));
    assert!(html.contains("Team &lt;One&gt; &amp; Co"));
}
#[test]
fn a_report_of_items_without_check_questions_has_no_understanding_tables() {
    let report = report_of(&rows());
    assert!(report.understanding.is_empty());
    assert!(!render(&report, Format::Table).contains("Understanding"));
}

#[test]
fn someone_away_is_absent_not_overdue_until_the_day_they_are_back() {
    // Without the leaver and the movers, ghost and b1 are overdue; b1 is
    // now away until 2 February.
    let mut rows = rows_with_leavers_and_movers();
    rows.rollouts[0]
        .members
        .iter_mut()
        .for_each(|m| m.out_reason = None);
    for p in &mut rows.people {
        if p.id == "b1" {
            p.absent_until = Some("2026-02-02".into());
        }
    }
    let report = report_of(&rows);
    let all = &row(&report, SectionKind::Total, "all").figures;
    assert_eq!(
        (all.overdue, all.absent),
        (1, 1),
        "ghost overdue, b1 absent"
    );
    let team = &row(&report, SectionKind::Team, "t-2").figures;
    assert_eq!((team.overdue, team.absent), (0, 1));
    let csv = render(&report, Format::Csv);
    assert!(csv.lines().next().unwrap().ends_with(",absent"), "{csv}");
    assert!(
        render(&report, Format::Html).contains("1 overdue, 1 absent,"),
        "the summary says so"
    );
    // From the day they are back they are overdue like anyone else.
    rows.now = Utc.with_ymd_and_hms(2026, 2, 2, 0, 0, 0).unwrap();
    let all = report_of(&rows);
    let all = &row(&all, SectionKind::Total, "all").figures;
    assert_eq!((all.overdue, all.absent), (2, 0));
}

/// The fixed rows of [`rows_with_check_answers`] in a rollout with
/// refreshers at 30, 90 and 180 days, under two themes: refreshers 1 and
/// 3 ask question 1, refresher 2 asks question 2. Refresher 1: a1 and a2
/// right first time, b1 not; refresher 2: a1 right, b1 not; refresher 3:
/// a1 right.
fn rows_with_refresher_answers() -> Rows {
    let mut rows = rows_with_check_answers();
    let r = &mut rows.rollouts[0];
    r.definition.refreshers = vec![30, 90, 180];
    r.item_themes = vec!["neglect".into(), "voice-of-the-child".into()];
    let answer = |person: &str, refresher: u32, question: u32, right: bool| RefresherRow {
        person_id: person.into(),
        refresher,
        question,
        right_first_time: right,
    };
    r.refresher_answers = vec![
        answer("a1", 1, 1, true),
        answer("a2", 1, 1, true),
        answer("b1", 1, 1, false),
        answer("a1", 2, 2, true),
        answer("b1", 2, 2, false),
        answer("a1", 3, 1, true),
    ];
    rows
}

#[test]
fn retention_sets_right_first_time_at_acknowledgement_against_each_refresher_per_question_and_theme()
 {
    let report = report_of(&rows_with_refresher_answers());
    /// (by, key, at acknowledgement, [(days, answered, right first time)])
    type Figures<'a> = (RetentionBy, &'a str, (u64, u64), Vec<(u32, u64, u64)>);
    let figures: Vec<Figures> = report
        .retention
        .iter()
        .map(|r| {
            (
                r.by,
                r.key.as_str(),
                (
                    r.at_acknowledgement.answered,
                    r.at_acknowledgement.right_first_time,
                ),
                r.refreshers
                    .iter()
                    .map(|(days, a)| (*days, a.answered, a.right_first_time))
                    .collect(),
            )
        })
        .collect();
    assert_eq!(
        figures,
        [
            (
                RetentionBy::Question,
                "1",
                (3, 2),
                vec![(30, 3, 2), (90, 0, 0), (180, 1, 1)]
            ),
            (
                RetentionBy::Question,
                "2",
                (3, 1),
                vec![(30, 0, 0), (90, 2, 1), (180, 0, 0)]
            ),
            (
                RetentionBy::Theme,
                "neglect",
                (6, 3),
                vec![(30, 3, 2), (90, 2, 1), (180, 1, 1)]
            ),
            (
                RetentionBy::Theme,
                "voice-of-the-child",
                (6, 3),
                vec![(30, 3, 2), (90, 2, 1), (180, 1, 1)]
            ),
        ]
    );
    assert_eq!(
        report.retention[0].refreshers[0].1.right_first_time_pct(),
        Some(200.0 / 3.0)
    );

    let table = render(&report, Format::Table);
    assert!(
        table.contains("Retention: check questions at acknowledgement and at refreshers"),
        "{table}"
    );
    assert!(
        table.contains("2 of 3 (66.7%)") && table.contains("1 of 2 (50.0%) (day 90)"),
        "{table}"
    );
    assert!(table.contains("All questions on Neglect"), "{table}");
    let csv = render(&report, Format::Csv);
    assert!(
        csv.contains("retention-question,r1,1,What should you ask to see?,,,,,,,,,,,,,,1,What should you ask to see?,acknowledgement,3,2,66.7,\n"),
        "{csv}"
    );
    assert!(
        csv.contains("retention-question,r1,2,'=Who do you tell first?,,,,,,,,,,,,,,2,'=Who do you tell first?,refresher-2-day-90,2,1,50.0,\n"),
        "{csv}"
    );
    assert!(
        csv.contains(
            "retention-theme,r1,neglect,Neglect,,,,,,,,,,,,,,,,refresher-3-day-180,1,1,100.0,\n"
        ),
        "{csv}"
    );
    let html = render(&report, Format::Html);
    assert!(html.contains("<h2 id=\"h-retention\">"), "{html}");
    // Without refreshers there is no retention table.
    assert!(report_of(&rows_with_check_answers()).retention.is_empty());
    assert!(!render(&report_of(&rows_with_check_answers()), Format::Table).contains("Retention"));
}
