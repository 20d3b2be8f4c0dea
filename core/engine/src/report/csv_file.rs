//! The `csv` format: one CSV with a `section` column, the same header row
//! whatever the report holds, and RFC 4180 quoting. Empty cells are figures
//! that do not apply to the row (or a percentage or median of nobody).
//! Names, questions and answers come from the directory, rollout files and
//! people's replies, so every cell passes through [`cell`] first.

use super::Report;
use std::borrow::Cow;

const COLUMNS: usize = 24;

/// The header row; every row has every column.
const HEADERS: [&str; COLUMNS] = [
    "section",
    "rollout",
    "key",
    "name",
    "audience",
    "sent",
    "delivered",
    "acknowledged",
    "acknowledged_pct",
    "median_hours_to_acknowledge",
    "overdue",
    "escalated",
    "left",
    "moved",
    "joined_later",
    "teams_confirmed",
    "people_present",
    "follow_up",
    "question",
    "answer",
    "count",
    "right_first_time",
    "right_first_time_pct",
    "absent",
];

pub(super) fn render(report: &Report) -> String {
    let mut writer = csv::Writer::from_writer(Vec::new());
    let mut records: Vec<[String; COLUMNS]> = Vec::new();
    for section in &report.sections {
        for row in &section.rows {
            let f = &row.figures;
            let (teams, present) = row
                .coverage
                .map(|c| (c.teams.to_string(), c.present.to_string()))
                .unwrap_or_default();
            records.push([
                section.kind.id().to_owned(),
                row.rollout.clone().unwrap_or_default(),
                row.key.clone(),
                row.name.clone(),
                f.audience.to_string(),
                f.sent.to_string(),
                f.delivered.to_string(),
                f.acknowledged.to_string(),
                f.acknowledged_pct()
                    .map(|p| format!("{p:.1}"))
                    .unwrap_or_default(),
                f.median_hours
                    .map(|h| format!("{h:.1}"))
                    .unwrap_or_default(),
                f.overdue.to_string(),
                f.escalated.to_string(),
                f.left.to_string(),
                f.moved.to_string(),
                f.joined.to_string(),
                teams,
                present,
                String::new(),
                String::new(),
                String::new(),
                String::new(),
                String::new(),
                String::new(),
                f.absent.to_string(),
            ]);
        }
    }
    for section in &report.answers {
        for a in &section.rows {
            let mut record: [String; COLUMNS] = Default::default();
            record[0] = section.by.id().to_owned();
            record[1] = a.rollout.clone();
            record[2] = a.key.clone();
            record[3] = a.name.clone();
            record[17] = a.follow_up.to_string();
            record[18] = a.question.clone();
            record[19] = a.answer.clone();
            record[20] = a.count.to_string();
            records.push(record);
        }
    }
    for r in &report.reach {
        let mut record: [String; COLUMNS] = Default::default();
        record[0] = "reach-week".to_owned();
        record[1] = r.rollout.clone();
        record[2] = r.week.to_string();
        record[3] = format!("week from {}", r.from);
        record[4] = r.members.to_string();
        record[7] = r.acknowledged.to_string();
        record[8] = r
            .acknowledged_pct()
            .map(|p| format!("{p:.1}"))
            .unwrap_or_default();
        record[14] = r.joined.to_string();
        records.push(record);
    }
    // Check questions: the question's number and words, those who
    // answered (in `count`), and those right first time.
    for section in &report.understanding {
        for u in &section.rows {
            let mut record: [String; COLUMNS] = Default::default();
            record[0] = section.by.id().to_owned();
            record[1] = u.rollout.clone();
            record[2] = u.key.clone();
            record[3] = u.name.clone();
            record[17] = u.question.to_string();
            record[18] = u.question_text.clone();
            record[20] = u.answered.to_string();
            record[21] = u.right_first_time.to_string();
            record[22] = u
                .right_first_time_pct()
                .map(|p| format!("{p:.1}"))
                .unwrap_or_default();
            records.push(record);
        }
    }
    // Retention: one row per question (or theme) and stage, the stage
    // (`acknowledgement` or `refresher-<n>-day-<days>`) in `answer`.
    for r in &report.retention {
        let stages = std::iter::once(("acknowledgement".to_owned(), r.at_acknowledgement)).chain(
            r.refreshers
                .iter()
                .zip(1..)
                .map(|((days, answered), n)| (format!("refresher-{n}-day-{days}"), *answered)),
        );
        for (stage, answered) in stages {
            let mut record: [String; COLUMNS] = Default::default();
            record[0] = r.by.id().to_owned();
            record[1] = r.rollout.clone();
            record[2] = r.key.clone();
            record[3] = r.name.clone();
            if r.by == super::RetentionBy::Question {
                record[17] = r.key.clone();
                record[18] = r.name.clone();
            }
            record[19] = stage;
            record[20] = answered.answered.to_string();
            record[21] = answered.right_first_time.to_string();
            record[22] = answered
                .right_first_time_pct()
                .map(|p| format!("{p:.1}"))
                .unwrap_or_default();
            records.push(record);
        }
    }
    for note in &report.notes {
        let mut record: [String; COLUMNS] = Default::default();
        record[0] = "note".to_owned();
        record[3] = note.clone();
        records.push(record);
    }
    // Writing to memory cannot fail.
    let _ = writer.write_record(HEADERS);
    for record in &records {
        let _ = writer.write_record(record.iter().map(|c| cell(c).into_owned()));
    }
    let bytes = writer.into_inner().unwrap_or_default();
    String::from_utf8(bytes).unwrap_or_default()
}

/// A cell as a spreadsheet shows it rather than runs it (OWASP's advice on
/// CSV injection): text starting with `=`, `+`, `-`, `@`, a tab or a
/// carriage return, which Excel, LibreOffice and Sheets read as a formula,
/// gets a leading `'`, so a team named `=HYPERLINK(...)` stays a name. A
/// plain decimal number such as `-12` or `-0.5` is left as it is: it is
/// read as that number, never as a formula.
pub(super) fn cell(text: &str) -> Cow<'_, str> {
    let formula = text.starts_with(['=', '+', '-', '@', '\t', '\r']);
    if formula && !is_decimal(text) {
        Cow::Owned(format!("'{text}"))
    } else {
        Cow::Borrowed(text)
    }
}

/// An optional sign, digits, and optionally a point and more digits.
fn is_decimal(text: &str) -> bool {
    let unsigned = text.strip_prefix(['-', '+']).unwrap_or(text);
    let (whole, fraction) = unsigned.split_once('.').unwrap_or((unsigned, "0"));
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    digits(whole) && digits(fraction)
}
