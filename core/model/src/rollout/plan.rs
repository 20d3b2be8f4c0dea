//! A rollout's plan before it starts: who goes in which wave, on which
//! channel, and the timetable of sends, reminders, the deadline,
//! escalations and follow-ups, printed for a business-unit manager.

use super::calendar::{Calendar, QuietHours};
use super::definition::RolloutDefinition;
use super::query::AudienceCounts;
use super::steps::{StepKind, deadline, open_until, wave_send, wave_steps};
use super::timing::TimingMoves;
use chrono::{DateTime, Utc};
use serde::Serialize;
use std::fmt;

/// The plan of one rollout.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PlanSummary {
    pub rollout: String,
    pub item: String,
    /// For a digest: the titles of the articles, in order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub articles: Vec<String>,
    pub time_zone: String,
    pub urgent: bool,
    pub quiet: QuietHours,
    /// The rollout's channels in preference order: the table's columns.
    pub channels: Vec<String>,
    pub waves: Vec<WavePlan>,
    /// People in the audience whom no wave takes.
    pub unassigned: usize,
    /// The first wave's timetable; later waves shift by their own start.
    pub timetable: Vec<TimetableRow>,
    /// For a rollout open to joiners: the last local day it enrols them,
    /// e.g. "Wed 31 Mar 2027".
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub open_until: Option<String>,
    /// How many people their own zone, working pattern and absence move,
    /// and the latest first send of anyone moved (see [`super::plan_timing`]).
    #[serde(skip_serializing_if = "TimingMoves::is_unmoved")]
    pub moves: TimingMoves,
    /// Days after each person's own acknowledgement of its spaced
    /// refreshers (issue 19), if any.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub refreshers: Vec<u32>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct WavePlan {
    pub name: String,
    pub send_at: DateTime<Utc>,
    /// E.g. "Tue 1 Dec 2026 09:30 GMT".
    pub send_at_local: String,
    pub people: usize,
    /// Per channel, in `PlanSummary::channels` order: people whose first
    /// reachable channel it is.
    pub by_channel: Vec<usize>,
    /// People with no channel of the rollout to reach them on.
    pub unreachable: usize,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TimetableRow {
    /// The step, or `None` for the deadline.
    pub kind: Option<StepKind>,
    pub number: u32,
    pub what: String,
    pub due_at: DateTime<Utc>,
    pub local: String,
}

/// Summarises a rollout from its audience's counts, whose `by_kind` are
/// per entry of `def.channels`.
pub fn summarise(
    def: &RolloutDefinition,
    calendar: &Calendar,
    counts: &AudienceCounts,
) -> PlanSummary {
    let channels = def.channels.clone();
    let waves: Vec<WavePlan> = def
        .waves
        .iter()
        .enumerate()
        .map(|(i, w)| {
            let send_at = wave_send(def, calendar, i);
            let tally = counts.waves.get(i).cloned().unwrap_or_default();
            let mut by_channel = tally.by_kind;
            by_channel.resize(channels.len(), 0);
            WavePlan {
                name: w.name.clone(),
                send_at,
                send_at_local: calendar.format_local(send_at),
                people: tally.people,
                by_channel,
                unreachable: tally.unreachable,
            }
        })
        .collect();

    PlanSummary {
        rollout: def.id.clone(),
        item: def.item.clone(),
        articles: Vec::new(),
        time_zone: calendar.time_zone().name().to_owned(),
        urgent: def.urgent,
        quiet: *calendar.quiet(),
        channels,
        waves,
        unassigned: counts.unassigned,
        timetable: if def.waves.is_empty() {
            Vec::new()
        } else {
            timetable(def, calendar)
        },
        open_until: open_until(def, calendar).map(|end| {
            // The last day is the one before the instant enrolment ends.
            (end - chrono::TimeDelta::seconds(1))
                .with_timezone(&calendar.time_zone())
                .format("%a %-d %b %Y")
                .to_string()
        }),
        moves: TimingMoves::default(),
        refreshers: def.refreshers.clone(),
    }
}

fn timetable(def: &RolloutDefinition, calendar: &Calendar) -> Vec<TimetableRow> {
    let row = |kind, number, what: String, due_at| TimetableRow {
        kind,
        number,
        what,
        due_at,
        local: calendar.format_local(due_at),
    };
    let mut rows: Vec<TimetableRow> = wave_steps(def, calendar, 0)
        .into_iter()
        .map(|s| {
            let what = match s.kind {
                StepKind::Initial => "Send to the wave".to_owned(),
                StepKind::Reminder => {
                    format!("Reminder {} to those who have not acknowledged", s.number)
                }
                StepKind::Escalation => match s.number {
                    1 => "Escalation 1: to the theme's champion for their team".to_owned(),
                    2 => "Escalation 2: to their manager".to_owned(),
                    n => format!(
                        "Escalation {n}: in the business unit's digest of who is outstanding"
                    ),
                },
                StepKind::FollowUp => format!(
                    "Follow-up {}: \"{}\"",
                    s.number,
                    def.follow_ups[s.number as usize - 1].question
                ),
                StepKind::ChampionReminder => format!(
                    "Champion reminder {}: to the item's champions whose teams have no team briefing recorded",
                    s.number
                ),
                // Counted from each person's acknowledgement, so never
                // in a wave's timetable.
                StepKind::Refresher => format!("Refresher {}", s.number),
                StepKind::InductionDigest => format!("Induction digest {}", s.number),
            };
            row(Some(s.kind), s.number, what, s.due_at)
        })
        .collect();
    rows.push(row(
        None,
        1,
        "Deadline to acknowledge".to_owned(),
        deadline(def, calendar, 0),
    ));
    // Stable: at the same instant the deadline comes after what is due with it.
    rows.sort_by_key(|r| r.due_at);
    rows
}

impl fmt::Display for PlanSummary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "Rollout {} of {}", self.rollout, self.item)?;
        if !self.articles.is_empty() {
            writeln!(
                f,
                "A digest: one message a person with all {} articles of the issue, acknowledged as one:",
                self.articles.len()
            )?;
            for title in &self.articles {
                writeln!(f, "  - {title}")?;
            }
        }
        write!(f, "Times are {} time. ", self.time_zone)?;
        if self.urgent {
            writeln!(f, "Urgent: messages go at once, even in quiet hours.")?;
        } else {
            let weekends = if self.quiet.weekends {
                " and at weekends"
            } else {
                ""
            };
            writeln!(
                f,
                "Messages due between {} and {}{weekends} wait until quiet hours end.",
                self.quiet.start.format("%H:%M"),
                self.quiet.end.format("%H:%M"),
            )?;
        }
        writeln!(f)?;

        let mut header = vec![
            "Wave".to_owned(),
            "First send".to_owned(),
            "People".to_owned(),
        ];
        header.extend(self.channels.iter().map(|c| format!("by {c}")));
        header.push("Unreachable".to_owned());
        let mut rows = vec![header];
        let (mut people, mut unreachable) = (0, 0);
        let mut by_channel = vec![0; self.channels.len()];
        for w in &self.waves {
            let mut row = vec![
                w.name.clone(),
                w.send_at_local.clone(),
                w.people.to_string(),
            ];
            row.extend(w.by_channel.iter().map(usize::to_string));
            row.push(w.unreachable.to_string());
            rows.push(row);
            people += w.people;
            unreachable += w.unreachable;
            for (total, n) in by_channel.iter_mut().zip(&w.by_channel) {
                *total += n;
            }
        }
        if self.waves.len() > 1 {
            let mut row = vec!["Total".to_owned(), String::new(), people.to_string()];
            row.extend(by_channel.iter().map(usize::to_string));
            row.push(unreachable.to_string());
            rows.push(row);
        }
        write_table(f, &rows)?;
        writeln!(
            f,
            "\"by <channel>\": people first tried on that channel; unreachable: no channel of this rollout reaches them."
        )?;
        if self.unassigned > 0 {
            let people = if self.unassigned == 1 {
                "person"
            } else {
                "people"
            };
            writeln!(
                f,
                "{} {people} in the audience {} in no wave and will receive nothing.",
                self.unassigned,
                if self.unassigned == 1 { "is" } else { "are" }
            )?;
        }

        if !self.urgent {
            let m = &self.moves;
            let people = |n: usize| {
                if n == 1 {
                    "1 person".to_owned()
                } else {
                    format!("{n} people")
                }
            };
            writeln!(
                f,
                "Each person's own time: {} moved by their own time zone, {} by their working pattern (people.csv `works`), {} by an absence (`absent_until`: they get the item on their return, their deadline moved as far).",
                people(m.by_zone),
                people(m.by_works),
                people(m.by_absence)
            )?;
            if let Some(latest) = &m.latest_first_send_local {
                writeln!(f, "The latest first send anyone moves to: {latest}.")?;
            }
        }

        if !self.refreshers.is_empty() {
            let days: Vec<String> = self.refreshers.iter().map(u32::to_string).collect();
            writeln!(
                f,
                "Refreshers {} days after each person's own acknowledgement: a key message of the item and one of its check questions, in turn; never chased.",
                and_list(&days)
            )?;
        }

        if let Some(day) = &self.open_until {
            writeln!(
                f,
                "Open to joiners until {day} (the end of that day): people who come into the audience by then (new in a directory import, moved into it, or given a role or champion theme it covers) become members with their own timetable, counted from the day they join; anyone an earlier rollout of the item reached is left out."
            )?;
        }

        if let Some(first) = self.waves.first() {
            writeln!(f)?;
            writeln!(
                f,
                "Timetable for wave \"{}\" (each later wave moves by its own first send):",
                first.name
            )?;
            let width = self
                .timetable
                .iter()
                .map(|r| r.local.chars().count())
                .max()
                .unwrap_or(0);
            for r in &self.timetable {
                writeln!(f, "  {:<width$}  {}", r.local, r.what)?;
            }
        }
        Ok(())
    }
}

/// Columns padded to their widest cell: text left, counts right.
fn write_table(f: &mut fmt::Formatter<'_>, rows: &[Vec<String>]) -> fmt::Result {
    let columns = rows.iter().map(Vec::len).max().unwrap_or(0);
    let widths: Vec<usize> = (0..columns)
        .map(|c| {
            rows.iter()
                .filter_map(|r| r.get(c))
                .map(|s| s.chars().count())
                .max()
                .unwrap_or(0)
        })
        .collect();
    for row in rows {
        let cells: Vec<String> = row
            .iter()
            .zip(&widths)
            .enumerate()
            .map(|(c, (cell, &width))| {
                if c < 2 {
                    format!("{cell:<width$}")
                } else {
                    format!("{cell:>width$}")
                }
            })
            .collect();
        writeln!(f, "{}", cells.join("  ").trim_end())?;
    }
    Ok(())
}

/// "a", "a and b", "a, b and c".
fn and_list(items: &[String]) -> String {
    match items {
        [] => String::new(),
        [one] => one.clone(),
        [rest @ .., last] => format!("{} and {last}", rest.join(", ")),
    }
}
