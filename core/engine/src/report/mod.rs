//! Reports: the evidence a business unit puts in its annual report. Who
//! received, acknowledged and acted on each piece of learning, by agency,
//! team, role, champion theme and wave, with champions' "on behalf of"
//! cascade confirmations and the answers to follow-up questions.
//!
//! Three steps, kept apart so the figures can be tested without a database:
//! [`load`] reads plain rows with SQL (the only place here that does), then
//! [`compute`] turns them into a [`Report`] with pure functions, then
//! [`render`] writes it as an aligned text table, one CSV, or one
//! self-contained HTML file. [`generate`] does the first two for a rollout
//! or for every rollout created in a period.

pub mod annual;
mod cache;
#[cfg(test)]
mod cache_tests;
mod compute;
mod csv_file;
pub mod docx;
pub mod feedback;
pub mod gaps;
mod html;
pub mod induction;
mod load;
mod text;

pub use cache::ReportCache;
pub use compute::compute;
pub use load::{
    AckRow, AnswerRow, CheckRow, ConfirmationRow, MemberRow, RefresherRow, RolloutRows, SendRow,
};
pub use load::{AgencyRow, ChampionRow, PersonRow, RoleRow, TeamRow};
pub use load::{Rows, load, rollouts_created};

use cascade_model::content::Taxonomy;
use cascade_model::rollout::Calendar;
use cascade_store::Reports;
use chrono::{DateTime, NaiveDate, Utc};

/// What a report covers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Selection {
    /// One rollout, by id.
    Rollout(String),
    /// Every rollout created from the start of `from` to the end of `to`,
    /// in the partnership's time zone, aggregated.
    Partnership { from: NaiveDate, to: NaiveDate },
}

/// How a report is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// Aligned text for a terminal.
    Table,
    /// One CSV file with a `section` column.
    Csv,
    /// One self-contained HTML file with charts, for the annual report.
    Html,
}

#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    #[error(transparent)]
    Database(#[from] cascade_store::StoreError),
    #[error("no rollout \"{0}\"\n  help: `cascade status` lists the rollouts")]
    UnknownRollout(String),
    #[error("rollout \"{rollout}\": its stored definition cannot be read: {source}")]
    Definition {
        rollout: String,
        source: serde_json::Error,
    },
    #[error(
        "the period ends on {to}, before it starts on {from}\n  help: give --from a date on or before --to"
    )]
    Period { from: NaiveDate, to: NaiveDate },
}

/// Loads and computes the report for `selection` as it stands at `now`.
pub async fn generate(
    store: &impl Reports,
    selection: &Selection,
    calendar: &Calendar,
    taxonomy: &Taxonomy,
    now: DateTime<Utc>,
) -> Result<Report, ReportError> {
    let ids = selected_ids(store, selection, calendar).await?;
    let rows = load(store, &ids, now).await?;
    Ok(compute(&rows, selection, calendar, taxonomy))
}

/// The ids of the rollouts `selection` covers, oldest first.
async fn selected_ids(
    store: &impl Reports,
    selection: &Selection,
    calendar: &Calendar,
) -> Result<Vec<String>, ReportError> {
    Ok(match selection {
        Selection::Rollout(id) => vec![id.clone()],
        Selection::Partnership { from, to } => {
            if to < from {
                return Err(ReportError::Period {
                    from: *from,
                    to: *to,
                });
            }
            let start = calendar.at_local(from.and_time(chrono::NaiveTime::MIN));
            let end = calendar.local_days_after(to.and_time(chrono::NaiveTime::MIN), 1);
            rollouts_created(store, start.timestamp_millis(), end.timestamp_millis()).await?
        }
    })
}

/// Writes a report in `format`.
pub fn render(report: &Report, format: Format) -> String {
    match format {
        Format::Table => text::render(report),
        Format::Csv => csv_file::render(report),
        Format::Html => html::render(report),
    }
}

/// The HTML report's figures, charts and notes without its page around
/// them, for a page that has its own heading and styles (the console).
pub fn html_sections(report: &Report) -> String {
    html::sections(report)
}

/// A computed report: plain figures, ready to render.
#[derive(Debug, Clone, PartialEq)]
pub struct Report {
    pub title: String,
    /// When the figures were taken, in the partnership's local time.
    pub generated: String,
    pub rollouts: Vec<RolloutInfo>,
    pub sections: Vec<Section>,
    /// Reach of open rollouts week by week since their start.
    pub reach: Vec<ReachRow>,
    pub answers: Vec<AnswerSection>,
    /// Check questions (issue 19): per question, the share of those who
    /// acknowledged who answered right first time, grouped each way.
    pub understanding: Vec<UnderstandingSection>,
    /// Spaced refreshers (issue 19): right first time at acknowledgement
    /// against each refresher, per check question and per theme.
    pub retention: Vec<RetentionRow>,
    /// What the figures mean, in words, for readers of the report.
    pub notes: Vec<String>,
}

/// One rollout the report covers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RolloutInfo {
    pub id: String,
    pub item_id: String,
    pub item_title: String,
    pub item_version: String,
    pub state: String,
    /// When it was started, in the partnership's local time.
    pub started: String,
}

/// One week of an open rollout: its members and acknowledgements by the
/// end of the week (or now, for the week under way).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReachRow {
    pub rollout: String,
    /// 1 for the week from the rollout's start.
    pub week: u32,
    /// The week's first day, local, e.g. "2026-12-01".
    pub from: String,
    /// Members by then, less those who had left the directory by then.
    pub members: u64,
    /// Of them, those who had acknowledged by then.
    pub acknowledged: u64,
    /// Of them, those who joined after the start.
    pub joined: u64,
}

impl ReachRow {
    pub fn acknowledged_pct(&self) -> Option<f64> {
        (self.members > 0).then(|| self.acknowledged as f64 * 100.0 / self.members as f64)
    }
}

/// Which way members are grouped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum SectionKind {
    Total,
    Rollout,
    Agency,
    Team,
    Role,
    ChampionTheme,
    Wave,
    /// Members who moved out of the audience, under the agency they are in now.
    MovedAgencyNow,
    /// Members who moved out of the audience, under the team they are in now.
    MovedTeamNow,
}

impl SectionKind {
    /// The value of the CSV `section` column.
    pub fn id(self) -> &'static str {
        match self {
            SectionKind::Total => "total",
            SectionKind::Rollout => "rollout",
            SectionKind::Agency => "agency",
            SectionKind::Team => "team",
            SectionKind::Role => "role",
            SectionKind::ChampionTheme => "champion-theme",
            SectionKind::Wave => "wave",
            SectionKind::MovedAgencyNow => "moved-agency-now",
            SectionKind::MovedTeamNow => "moved-team-now",
        }
    }

    pub fn heading(self) -> &'static str {
        match self {
            SectionKind::Total => "All members",
            SectionKind::Rollout => "By rollout",
            SectionKind::Agency => "By agency",
            SectionKind::Team => "By team",
            SectionKind::Role => "By role",
            SectionKind::ChampionTheme => "By champion theme",
            SectionKind::Wave => "By wave",
            SectionKind::MovedAgencyNow => "Movers by agency now",
            SectionKind::MovedTeamNow => "Movers by team now",
        }
    }
}

/// Figures for members grouped one way.
#[derive(Debug, Clone, PartialEq)]
pub struct Section {
    pub kind: SectionKind,
    pub rows: Vec<FigureRow>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct FigureRow {
    /// The rollout a row belongs to (rollout and wave rows).
    pub rollout: Option<String>,
    /// An agency, team or rollout id, a role, a theme id or a wave number.
    pub key: String,
    pub name: String,
    pub figures: Figures,
    /// Champion confirmations of the teams in this row: only in the total,
    /// rollout, agency and team sections.
    pub coverage: Option<Coverage>,
}

/// Member figures of one row.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Figures {
    pub audience: u64,
    /// Members whose initial message was sent on some channel.
    pub sent: u64,
    /// The same as `sent` until channels report delivery receipts.
    pub delivered: u64,
    /// Members who acknowledged the rollout's pinned item version.
    pub acknowledged: u64,
    /// Median hours from first send to acknowledgement.
    pub median_hours: Option<f64>,
    /// Not acknowledged and past their wave's deadline.
    pub overdue: u64,
    /// Not acknowledged and away (people.csv's `absent_until` still to
    /// come): counted here, not as overdue, and never chased meanwhile.
    pub absent: u64,
    /// Members with a sent escalation about them.
    pub escalated: u64,
    /// Members no longer in the directory (an import marked them
    /// inactive): no longer chased, never overdue.
    pub left: u64,
    /// Of those, the ones who had not acknowledged: left out of the
    /// acknowledged percentage, as they no longer can.
    pub left_unacknowledged: u64,
    /// Members no longer in the rollout's audience: no longer chased,
    /// never overdue, still in the acknowledged percentage.
    pub moved: u64,
    /// Members an open rollout enrolled after its start (joiners).
    pub joined: u64,
}

impl Figures {
    /// Acknowledged as a percentage of the audience less the leavers who
    /// had not acknowledged; none when that leaves nobody.
    pub fn acknowledged_pct(&self) -> Option<f64> {
        let expected = self.audience.saturating_sub(self.left_unacknowledged);
        (expected > 0).then(|| self.acknowledged as f64 * 100.0 / expected as f64)
    }
}

/// Champions' confirmations that learning was cascaded to teams.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Coverage {
    /// Distinct teams confirmed.
    pub teams: u64,
    /// People present, over every confirmation.
    pub present: u64,
}

/// Which way follow-up answers are grouped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AnswerBy {
    Total,
    Agency,
    ChampionTheme,
}

impl AnswerBy {
    /// The value of the CSV `section` column.
    pub fn id(self) -> &'static str {
        match self {
            AnswerBy::Total => "follow-up-total",
            AnswerBy::Agency => "follow-up-agency",
            AnswerBy::ChampionTheme => "follow-up-champion-theme",
        }
    }

    pub fn heading(self) -> &'static str {
        match self {
            AnswerBy::Total => "Follow-up answers",
            AnswerBy::Agency => "Follow-up answers by agency",
            AnswerBy::ChampionTheme => "Follow-up answers by champion theme",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AnswerSection {
    pub by: AnswerBy,
    pub rows: Vec<AnswerCount>,
}

/// How many people gave one answer to one follow-up question.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AnswerCount {
    pub rollout: String,
    /// `all`, an agency id or a theme id.
    pub key: String,
    pub name: String,
    /// 1-based, as in the rollout's follow-ups.
    pub follow_up: u32,
    pub question: String,
    pub answer: String,
    pub count: u64,
}

/// Which way answers to check questions are grouped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UnderstandingBy {
    Total,
    Agency,
    Team,
    Role,
    Wave,
}

impl UnderstandingBy {
    pub const ALL: [UnderstandingBy; 5] = [
        UnderstandingBy::Total,
        UnderstandingBy::Agency,
        UnderstandingBy::Team,
        UnderstandingBy::Role,
        UnderstandingBy::Wave,
    ];

    /// The value of the CSV `section` column.
    pub fn id(self) -> &'static str {
        match self {
            UnderstandingBy::Total => "understanding-total",
            UnderstandingBy::Agency => "understanding-agency",
            UnderstandingBy::Team => "understanding-team",
            UnderstandingBy::Role => "understanding-role",
            UnderstandingBy::Wave => "understanding-wave",
        }
    }

    pub fn heading(self) -> &'static str {
        match self {
            UnderstandingBy::Total => "Understanding: check questions right first time",
            UnderstandingBy::Agency => "Understanding by agency",
            UnderstandingBy::Team => "Understanding by team",
            UnderstandingBy::Role => "Understanding by role",
            UnderstandingBy::Wave => "Understanding by wave",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnderstandingSection {
    pub by: UnderstandingBy,
    pub rows: Vec<UnderstandingRow>,
}

/// How those who acknowledged answered one check question, in one group.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnderstandingRow {
    pub rollout: String,
    /// `all`, an agency or team id, a role, or a wave number.
    pub key: String,
    pub name: String,
    /// 1-based, as in the item version.
    pub question: u32,
    pub question_text: String,
    /// People with an answer recorded with their acknowledgement.
    pub answered: u64,
    /// Of those, the ones whose first answer was right.
    pub right_first_time: u64,
}

impl UnderstandingRow {
    /// Right first time as a percentage of those who answered.
    pub fn right_first_time_pct(&self) -> Option<f64> {
        (self.answered > 0).then(|| self.right_first_time as f64 * 100.0 / self.answered as f64)
    }
}

/// Answers to one question (or a theme's questions) at one stage: with
/// the acknowledgement, or at a refresher.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Answered {
    pub answered: u64,
    pub right_first_time: u64,
}

impl Answered {
    /// Right first time as a percentage of those who answered.
    pub fn right_first_time_pct(&self) -> Option<f64> {
        (self.answered > 0).then(|| self.right_first_time as f64 * 100.0 / self.answered as f64)
    }

    /// "8 of 10 (80.0%)", or "–" when nobody answered.
    fn cell(&self) -> String {
        if self.answered == 0 {
            "–".to_owned()
        } else {
            format!(
                "{} of {} ({})",
                self.right_first_time,
                self.answered,
                percent(self.right_first_time_pct())
            )
        }
    }
}

/// What a retention row is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RetentionBy {
    /// One check question.
    Question,
    /// Every check question of an item, under one of its themes.
    Theme,
}

impl RetentionBy {
    /// The value of the CSV `section` column.
    pub fn id(self) -> &'static str {
        match self {
            RetentionBy::Question => "retention-question",
            RetentionBy::Theme => "retention-theme",
        }
    }
}

/// Retention of one check question, or of a theme's questions, in one
/// rollout with refreshers: right first time with the acknowledgement,
/// then at each refresher that asked it.
#[derive(Debug, Clone, PartialEq)]
pub struct RetentionRow {
    pub rollout: String,
    pub by: RetentionBy,
    /// The question's number, or the theme's id.
    pub key: String,
    /// The question's words, or the theme's name.
    pub name: String,
    pub at_acknowledgement: Answered,
    /// One per refresher of the rollout, in order, with its days after
    /// the acknowledgement; nobody answered where the refresher asked
    /// another question.
    pub refreshers: Vec<(u32, Answered)>,
}

/// A percentage with one decimal, or "–".
fn percent(value: Option<f64>) -> String {
    value.map_or_else(|| "–".to_owned(), |v| format!("{v:.1}%"))
}

/// Hours with one decimal, or "–".
fn hours(value: Option<f64>) -> String {
    value.map_or_else(|| "–".to_owned(), |v| format!("{v:.1}"))
}

/// The report as display tables, shared by the text and HTML formats.
struct DisplayTable {
    /// For HTML ids.
    id: &'static str,
    heading: &'static str,
    caption: String,
    headers: Vec<&'static str>,
    rows: Vec<Vec<String>>,
}

impl DisplayTable {
    /// Whether column `i` holds numbers (right-aligned).
    fn numeric(&self, i: usize) -> bool {
        !matches!(
            self.headers[i],
            "Rollout"
                | "Item"
                | "Id"
                | "Name"
                | "Question"
                | "Answer"
                | "State"
                | "Started"
                | "Version"
                | "Week from"
        )
    }
}

fn display_tables(report: &Report) -> Vec<DisplayTable> {
    let many = report.rollouts.len() > 1;
    let mut tables = vec![DisplayTable {
        id: "rollouts",
        heading: "Rollouts covered",
        caption: "Rollouts covered by this report, with the item version each one pinned".into(),
        headers: vec!["Rollout", "Item", "Version", "State", "Started"],
        rows: report
            .rollouts
            .iter()
            .map(|r| {
                vec![
                    r.id.clone(),
                    r.item_title.clone(),
                    r.item_version.clone(),
                    r.state.clone(),
                    r.started.clone(),
                ]
            })
            .collect(),
    }];
    for section in &report.sections {
        let with_rollout = section.kind == SectionKind::Wave && many;
        let with_coverage = section.rows.iter().any(|r| r.coverage.is_some());
        let mut headers = Vec::new();
        if with_rollout {
            headers.push("Rollout");
        }
        headers.extend([
            "Id",
            "Name",
            "Audience",
            "Sent",
            "Delivered",
            "Acknowledged",
            "Ack %",
            "Median hours to ack",
            "Overdue",
            "Absent",
            "Escalated",
            "Left",
            "Moved",
            "Joined later",
        ]);
        if with_coverage {
            headers.extend(["Teams confirmed", "People present"]);
        }
        let rows = section
            .rows
            .iter()
            .map(|r| {
                let f = &r.figures;
                let mut cells = Vec::new();
                if with_rollout {
                    cells.push(r.rollout.clone().unwrap_or_default());
                }
                cells.extend([
                    r.key.clone(),
                    r.name.clone(),
                    f.audience.to_string(),
                    f.sent.to_string(),
                    f.delivered.to_string(),
                    f.acknowledged.to_string(),
                    percent(f.acknowledged_pct()),
                    hours(f.median_hours),
                    f.overdue.to_string(),
                    f.absent.to_string(),
                    f.escalated.to_string(),
                    f.left.to_string(),
                    f.moved.to_string(),
                    f.joined.to_string(),
                ]);
                if with_coverage {
                    let c = r.coverage.unwrap_or_default();
                    cells.extend([c.teams.to_string(), c.present.to_string()]);
                }
                cells
            })
            .collect();
        tables.push(DisplayTable {
            id: section.kind.id(),
            heading: section.kind.heading(),
            caption: format!(
                "{}: audience, sends, acknowledgements, overdue, absent, escalated, left, moved and joined-later members{}",
                section.kind.heading(),
                if with_coverage {
                    ", and champions' cascade confirmations"
                } else {
                    ""
                }
            ),
            headers,
            rows,
        });
    }
    if !report.reach.is_empty() {
        tables.push(DisplayTable {
            id: "reach-week",
            heading: "Reach of open rollouts by week",
            caption: "Open rollouts week by week since their start: members by the end of each week (less those who had left the directory), how many of them joined after the start, and how many had acknowledged".into(),
            headers: vec!["Rollout", "Week", "Week from", "Members", "Joined later", "Acknowledged", "Ack %"],
            rows: report
                .reach
                .iter()
                .map(|r| {
                    vec![
                        r.rollout.clone(),
                        r.week.to_string(),
                        r.from.clone(),
                        r.members.to_string(),
                        r.joined.to_string(),
                        r.acknowledged.to_string(),
                        percent(r.acknowledged_pct()),
                    ]
                })
                .collect(),
        });
    }
    for section in &report.answers {
        let mut headers = Vec::new();
        if many {
            headers.push("Rollout");
        }
        if section.by != AnswerBy::Total {
            headers.extend(["Id", "Name"]);
        }
        headers.extend(["Question", "Answer", "People"]);
        let rows = section
            .rows
            .iter()
            .map(|a| {
                let mut cells = Vec::new();
                if many {
                    cells.push(a.rollout.clone());
                }
                if section.by != AnswerBy::Total {
                    cells.extend([a.key.clone(), a.name.clone()]);
                }
                cells.extend([
                    format!("{}. {}", a.follow_up, a.question),
                    a.answer.clone(),
                    a.count.to_string(),
                ]);
                cells
            })
            .collect();
        tables.push(DisplayTable {
            id: section.by.id(),
            heading: section.by.heading(),
            caption: format!("{}: people per answer", section.by.heading()),
            headers,
            rows,
        });
    }
    for section in &report.understanding {
        let mut headers = Vec::new();
        if many {
            headers.push("Rollout");
        }
        if section.by != UnderstandingBy::Total {
            headers.extend(["Id", "Name"]);
        }
        headers.extend([
            "Question",
            "Answered",
            "Right first time",
            "Right first time %",
        ]);
        let rows = section
            .rows
            .iter()
            .map(|u| {
                let mut cells = Vec::new();
                if many {
                    cells.push(u.rollout.clone());
                }
                if section.by != UnderstandingBy::Total {
                    cells.extend([u.key.clone(), u.name.clone()]);
                }
                cells.extend([
                    format!("{}. {}", u.question, u.question_text),
                    u.answered.to_string(),
                    u.right_first_time.to_string(),
                    percent(u.right_first_time_pct()),
                ]);
                cells
            })
            .collect();
        tables.push(DisplayTable {
            id: section.by.id(),
            heading: section.by.heading(),
            caption: format!(
                "{}: of those who acknowledged, how many answered each check question right the first time",
                section.by.heading()
            ),
            headers,
            rows,
        });
    }
    if !report.retention.is_empty() {
        const REFRESHERS: [&str; 6] = [
            "Refresher 1",
            "Refresher 2",
            "Refresher 3",
            "Refresher 4",
            "Refresher 5",
            "Refresher 6",
        ];
        let most = report
            .retention
            .iter()
            .map(|r| r.refreshers.len())
            .max()
            .unwrap_or(0)
            .min(REFRESHERS.len());
        let mut headers = Vec::new();
        if many {
            headers.push("Rollout");
        }
        headers.extend(["Question", "At acknowledgement"]);
        headers.extend(&REFRESHERS[..most]);
        let rows = report
            .retention
            .iter()
            .map(|r| {
                let mut cells = Vec::new();
                if many {
                    cells.push(r.rollout.clone());
                }
                cells.push(match r.by {
                    RetentionBy::Question => format!("{}. {}", r.key, r.name),
                    RetentionBy::Theme => format!("All questions on {}", r.name),
                });
                cells.push(r.at_acknowledgement.cell());
                for i in 0..most {
                    cells.push(r.refreshers.get(i).map_or_else(
                        || "–".to_owned(),
                        |(days, answered)| {
                            if answered.answered == 0 {
                                format!("– (day {days})")
                            } else {
                                format!("{} (day {days})", answered.cell())
                            }
                        },
                    ));
                }
                cells
            })
            .collect();
        tables.push(DisplayTable {
            id: "retention",
            heading: "Retention: check questions at acknowledgement and at refreshers",
            caption: "Retention: right first time with the acknowledgement, against each refresher (days after the acknowledgement), per check question and per theme; each refresher asks one question, in turn".to_owned(),
            headers,
            rows,
        });
    }
    tables
}

#[cfg(test)]
mod tests;
