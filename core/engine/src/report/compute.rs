//! Figures from plain rows. Pure: no I/O, and time is `rows.now`.

use super::load::{RolloutRows, Rows};
use super::{
    AnswerBy, AnswerCount, AnswerSection, Answered, Coverage, FigureRow, Figures, ReachRow, Report,
    RetentionBy, RetentionRow, RolloutInfo, Section, SectionKind, Selection, UnderstandingBy,
    UnderstandingRow, UnderstandingSection,
};
use cascade_model::content::Taxonomy;
use cascade_model::rollout::{Calendar, Enrol, StepKind, deadline, induction_member_definition};
use chrono::{DateTime, Utc};
use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

/// The key of the total rows.
const ALL: &str = "all";
/// The agency and team of a member missing from the directory.
const UNKNOWN: &str = "?";

const MEMBER_SECTIONS: [SectionKind; 9] = [
    SectionKind::Total,
    SectionKind::Rollout,
    SectionKind::Agency,
    SectionKind::Team,
    SectionKind::Role,
    SectionKind::ChampionTheme,
    SectionKind::Wave,
    SectionKind::MovedAgencyNow,
    SectionKind::MovedTeamNow,
];

/// Why a member is no longer chased.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Out {
    /// No longer in the directory.
    Left,
    /// No longer in the rollout's audience.
    Moved,
}

/// What is known about one member of one rollout.
struct Member<'a> {
    rollout: &'a str,
    person: &'a str,
    wave: u32,
    /// Where they were when the rollout reached them.
    agency: &'a str,
    team: &'a str,
    /// Where the directory has them now.
    agency_now: &'a str,
    team_now: &'a str,
    out: Option<Out>,
    roles: &'a [&'a str],
    themes: &'a [&'a str],
    /// Their first initial message sent, on any channel.
    first_sent: Option<i64>,
    acknowledged: Option<i64>,
    overdue: bool,
    /// Not acknowledged and away now: not overdue.
    absent: bool,
    escalated: bool,
    /// Enrolled by an open rollout after its start.
    joined: bool,
}

/// Rows of a section, ordered by rollout (for waves), wave number, then key.
type GroupKey = (String, u32, String);

#[derive(Default)]
struct Tally {
    audience: u64,
    sent: u64,
    acknowledged: u64,
    overdue: u64,
    absent: u64,
    escalated: u64,
    left: u64,
    left_unacknowledged: u64,
    moved: u64,
    joined: u64,
    /// Milliseconds from first send to acknowledgement.
    waits: Vec<i64>,
}

impl Tally {
    fn add(&mut self, m: &Member<'_>) {
        self.audience += 1;
        self.sent += u64::from(m.first_sent.is_some());
        self.acknowledged += u64::from(m.acknowledged.is_some());
        self.overdue += u64::from(m.overdue);
        self.absent += u64::from(m.absent);
        self.escalated += u64::from(m.escalated);
        self.left += u64::from(m.out == Some(Out::Left));
        self.left_unacknowledged += u64::from(m.out == Some(Out::Left) && m.acknowledged.is_none());
        self.moved += u64::from(m.out == Some(Out::Moved));
        self.joined += u64::from(m.joined);
        if let (Some(sent), Some(at)) = (m.first_sent, m.acknowledged) {
            // Acknowledged for them before the message went: no wait at all.
            self.waits.push((at - sent).max(0));
        }
    }

    fn figures(&self) -> Figures {
        Figures {
            audience: self.audience,
            sent: self.sent,
            delivered: self.sent,
            acknowledged: self.acknowledged,
            median_hours: median(&self.waits).map(|ms| ms / 3_600_000.0),
            overdue: self.overdue,
            absent: self.absent,
            escalated: self.escalated,
            left: self.left,
            left_unacknowledged: self.left_unacknowledged,
            moved: self.moved,
            joined: self.joined,
        }
    }
}

/// The median of `values`; the mean of the middle two for an even count.
fn median(values: &[i64]) -> Option<f64> {
    let mut sorted = values.to_vec();
    sorted.sort_unstable();
    let n = sorted.len();
    match n {
        0 => None,
        _ if n % 2 == 1 => Some(sorted[n / 2] as f64),
        _ => Some((sorted[n / 2 - 1] as f64 + sorted[n / 2] as f64) / 2.0),
    }
}

/// The directory, indexed.
struct Directory<'a> {
    agency_names: HashMap<&'a str, &'a str>,
    teams: HashMap<&'a str, (&'a str, &'a str)>,
    people: HashMap<&'a str, (&'a str, &'a str)>,
    roles: HashMap<&'a str, Vec<&'a str>>,
    themes: HashMap<&'a str, Vec<&'a str>>,
    /// People away: the day they are back, `YYYY-MM-DD`.
    absent_until: HashMap<&'a str, &'a str>,
}

impl<'a> Directory<'a> {
    fn new(rows: &'a Rows) -> Self {
        let mut roles: HashMap<&str, Vec<&str>> = HashMap::new();
        for r in &rows.roles {
            roles.entry(&r.person_id).or_default().push(&r.role);
        }
        let mut themes: HashMap<&str, Vec<&str>> = HashMap::new();
        for c in &rows.champions {
            themes.entry(&c.person_id).or_default().push(&c.theme);
        }
        Directory {
            agency_names: rows
                .agencies
                .iter()
                .map(|a| (a.id.as_str(), a.name.as_str()))
                .collect(),
            teams: rows
                .teams
                .iter()
                .map(|t| (t.id.as_str(), (t.agency_id.as_str(), t.name.as_str())))
                .collect(),
            people: rows
                .people
                .iter()
                .map(|p| (p.id.as_str(), (p.agency_id.as_str(), p.team_id.as_str())))
                .collect(),
            roles,
            themes,
            absent_until: rows
                .people
                .iter()
                .filter_map(|p| Some((p.id.as_str(), p.absent_until.as_deref()?)))
                .collect(),
        }
    }

    fn agency_name(&self, id: &str) -> String {
        match self.agency_names.get(id) {
            Some(name) => (*name).to_owned(),
            None if id == UNKNOWN => "Not in the directory".to_owned(),
            None => id.to_owned(),
        }
    }

    fn team_name(&self, id: &str) -> String {
        match self.teams.get(id) {
            Some((_, name)) => (*name).to_owned(),
            None if id == UNKNOWN => "Not in the directory".to_owned(),
            None => id.to_owned(),
        }
    }

    fn team_agency(&self, team: &'a str) -> &'a str {
        self.teams.get(team).map_or(UNKNOWN, |(agency, _)| agency)
    }

    fn agency_and_team(&self, person: &str) -> (&'a str, &'a str) {
        self.people
            .get(person)
            .copied()
            .unwrap_or((UNKNOWN, UNKNOWN))
    }
}

/// Computes every figure of the report.
pub fn compute(
    rows: &Rows,
    selection: &Selection,
    calendar: &Calendar,
    taxonomy: &Taxonomy,
) -> Report {
    let directory = Directory::new(rows);
    let members = members(rows, &directory, calendar);

    let mut sections = Vec::new();
    for kind in MEMBER_SECTIONS {
        // Counted under borrowed keys (no allocation a member), then ordered.
        let mut counted: HashMap<(&str, u32, &str), Tally> = HashMap::new();
        for m in &members {
            for_each_key(kind, m, |key| counted.entry(key).or_default().add(m));
        }
        let mut tallies: BTreeMap<GroupKey, Tally> = counted
            .into_iter()
            .map(|((rollout, order, k), tally)| {
                let k = match kind {
                    SectionKind::Wave => order.to_string(),
                    _ => k.to_owned(),
                };
                ((rollout.to_owned(), order, k), tally)
            })
            .collect();
        // The total, and every rollout, have a row even without members.
        match kind {
            SectionKind::Total => {
                tallies.entry(key("", 0, ALL)).or_default();
            }
            SectionKind::Rollout => {
                for r in &rows.rollouts {
                    tallies.entry(key(&r.id, 0, &r.id)).or_default();
                }
            }
            _ => {}
        }
        let coverage = coverage(kind, rows, &directory);
        for key in coverage.keys() {
            tallies.entry(key.clone()).or_default();
        }
        let section_rows = tallies
            .iter()
            .map(|(key, tally)| FigureRow {
                rollout: matches!(kind, SectionKind::Rollout | SectionKind::Wave)
                    .then(|| key.0.clone()),
                key: key.2.clone(),
                name: row_name(kind, key, rows, &directory, taxonomy),
                figures: tally.figures(),
                coverage: matches!(
                    kind,
                    SectionKind::Total
                        | SectionKind::Rollout
                        | SectionKind::Agency
                        | SectionKind::Team
                )
                .then(|| coverage.get(key).copied().unwrap_or_default()),
            })
            .collect();
        // The movers' sections only when someone moved.
        let movers = matches!(
            kind,
            SectionKind::MovedAgencyNow | SectionKind::MovedTeamNow
        );
        if movers && tallies.is_empty() {
            continue;
        }
        sections.push(Section {
            kind,
            rows: section_rows,
        });
    }

    let keys_of = |kind: SectionKind| -> BTreeSet<String> {
        sections
            .iter()
            .filter(|s| s.kind == kind)
            .flat_map(|s| s.rows.iter().map(|r| r.key.clone()))
            .collect()
    };
    let answers = vec![
        answers(
            AnswerBy::Total,
            BTreeSet::from([ALL.to_owned()]),
            rows,
            &directory,
            taxonomy,
        ),
        answers(
            AnswerBy::Agency,
            keys_of(SectionKind::Agency),
            rows,
            &directory,
            taxonomy,
        ),
        answers(
            AnswerBy::ChampionTheme,
            keys_of(SectionKind::ChampionTheme),
            rows,
            &directory,
            taxonomy,
        ),
    ];

    Report {
        title: match selection {
            Selection::Rollout(id) => format!("Evidence report: rollout {id}"),
            Selection::Partnership { from, to } => {
                format!("Partnership evidence report, {from} to {to}")
            }
        },
        generated: calendar.format_local(rows.now),
        rollouts: rows
            .rollouts
            .iter()
            .map(|r| RolloutInfo {
                id: r.id.clone(),
                item_id: r.item_id.clone(),
                item_title: title(r),
                item_version: r.item_version.chars().take(12).collect(),
                state: r.state.clone(),
                started: DateTime::<Utc>::from_timestamp_millis(r.created_at)
                    .map(|t| calendar.format_local(t))
                    .unwrap_or_default(),
            })
            .collect(),
        sections,
        reach: reach(rows, calendar),
        answers,
        understanding: understanding(rows, &members, &directory),
        retention: retention(rows, taxonomy),
        notes: notes(
            rows.now,
            calendar,
            matches!(selection, Selection::Partnership { .. }),
            rows.rollouts.is_empty(),
        ),
    }
}

fn title(r: &RolloutRows) -> String {
    if r.item_title.is_empty() {
        r.item_id.clone()
    } else {
        r.item_title.clone()
    }
}

/// Every member of every rollout, with what happened to them.
fn members<'a>(
    rows: &'a Rows,
    directory: &'a Directory<'a>,
    calendar: &Calendar,
) -> Vec<Member<'a>> {
    let now = rows.now.timestamp_millis();
    // Away today where the partnership is: back on a later day.
    let today = rows
        .now
        .with_timezone(&calendar.time_zone())
        .format("%Y-%m-%d")
        .to_string();
    let mut members = Vec::new();
    for r in &rows.rollouts {
        let mut first_sent: HashMap<&str, i64> = HashMap::new();
        let mut escalated: BTreeSet<&str> = BTreeSet::new();
        for s in &r.sends {
            match s.step_kind {
                StepKind::Initial => {
                    let first = first_sent.entry(&s.person_id).or_insert(s.sent_at);
                    *first = (*first).min(s.sent_at);
                }
                StepKind::Escalation => {
                    escalated.insert(&s.person_id);
                }
                StepKind::Reminder
                | StepKind::FollowUp
                | StepKind::ChampionReminder
                | StepKind::Refresher
                | StepKind::InductionDigest => {}
            }
        }
        let acknowledged: HashMap<&str, i64> = r
            .acknowledgements
            .iter()
            .map(|a| (a.person_id.as_str(), a.at))
            .collect();
        let deadlines: Vec<i64> = (0..r.definition.waves.len())
            .map(|w| deadline(&r.definition, calendar, w).timestamp_millis())
            .collect();
        // A joiner's deadline is their own: their wave's, moved as their
        // timetable is.
        let mut moved_deadlines: HashMap<(u32, u32), Option<i64>> = HashMap::new();
        for m in &r.members {
            let person = m.person_id.as_str();
            let (agency_now, team_now) = directory.agency_and_team(person);
            let acknowledged = acknowledged.get(person).copied();
            let own_deadline =
                if let (Some(_), Some(joined)) = (r.definition.induction, m.joined_at) {
                    // A key item of the induction: counted from the day they
                    // joined (on the partnership's clock, as every deadline here).
                    let own = induction_member_definition(
                        &r.definition,
                        calendar,
                        cascade_model::time::from_millis(joined),
                    );
                    (m.wave as usize)
                        .lt(&own.waves.len())
                        .then(|| deadline(&own, calendar, m.wave as usize).timestamp_millis())
                } else if m.shift_days == 0 {
                    deadlines.get(m.wave as usize).copied()
                } else {
                    *moved_deadlines
                        .entry((m.wave, m.shift_days))
                        .or_insert_with(|| {
                            let wave = m.wave as usize;
                            let mut def = r.definition.clone();
                            let w = def.waves.get_mut(wave)?;
                            w.after_days = w.after_days.saturating_add(m.shift_days);
                            Some(deadline(&def, calendar, wave).timestamp_millis())
                        })
                };
            let past_deadline = own_deadline.is_some_and(|deadline| now > deadline);
            let away = directory
                .absent_until
                .get(person)
                .is_some_and(|back| *back > today.as_str());
            let out = match m.out_reason.as_deref() {
                Some("left") => Some(Out::Left),
                Some(_) => Some(Out::Moved),
                None => None,
            };
            members.push(Member {
                rollout: &r.id,
                person,
                wave: m.wave,
                // Counted where the rollout reached them; a member recorded
                // before cascade kept that, where they are now.
                agency: m.agency_id.as_deref().unwrap_or(agency_now),
                team: m.team_id.as_deref().unwrap_or(team_now),
                agency_now,
                team_now,
                out,
                roles: directory.roles.get(person).map_or(&[], Vec::as_slice),
                themes: directory.themes.get(person).map_or(&[], Vec::as_slice),
                first_sent: first_sent.get(person).copied(),
                acknowledged,
                // Only those still chased: a leaver, a mover or someone
                // away is not overdue.
                overdue: acknowledged.is_none() && past_deadline && out.is_none() && !away,
                absent: acknowledged.is_none() && out.is_none() && away,
                escalated: escalated.contains(person),
                joined: m.joined_at.is_some(),
            });
        }
    }
    members
}

/// The moments after `at` when figures change with the clock alone
/// because of joiners and absences: each joiner's own deadline, each
/// absent person's return, and for each open
/// rollout the last moment of the week under way (its reach by week then
/// gains a row). For [`super::ReportCache`].
pub(super) fn joiner_changes(rows: &Rows, calendar: &Calendar, at: i64) -> Vec<i64> {
    let mut out = Vec::new();
    for r in &rows.rollouts {
        let mut seen = BTreeSet::new();
        for m in r.members.iter().filter(|m| m.shift_days > 0) {
            let wave = m.wave as usize;
            if !seen.insert((m.wave, m.shift_days)) || wave >= r.definition.waves.len() {
                continue;
            }
            let mut def = r.definition.clone();
            def.waves[wave].after_days = def.waves[wave].after_days.saturating_add(m.shift_days);
            out.push(deadline(&def, calendar, wave).timestamp_millis());
        }
        // Each joiner of a key item of the induction has a deadline of their own.
        if r.definition.induction.is_some() {
            for joined in r.members.iter().filter_map(|m| m.joined_at) {
                let own = induction_member_definition(
                    &r.definition,
                    calendar,
                    cascade_model::time::from_millis(joined),
                );
                if !own.waves.is_empty() {
                    out.push(deadline(&own, calendar, 0).timestamp_millis());
                }
            }
        }
        if r.definition.enrol == Enrol::Joiners {
            let weeks = (at - r.created_at).max(0) / WEEK + 1;
            out.push(r.created_at + weeks * WEEK - 1);
        }
    }
    // Someone back from an absence is counted absent no more (and may
    // become overdue) from the start of the day they are back.
    for p in &rows.people {
        if let Some(day) = p
            .absent_until
            .as_deref()
            .and_then(|d| chrono::NaiveDate::parse_from_str(d, "%Y-%m-%d").ok())
        {
            out.push(
                calendar
                    .at_local(day.and_time(chrono::NaiveTime::MIN))
                    .timestamp_millis(),
            );
        }
    }
    out
}

/// A week, in milliseconds.
const WEEK: i64 = 7 * 24 * 3_600_000;
/// The most weeks shown per rollout: a year and a little.
const MOST_WEEKS: i64 = 60;

/// Each open rollout's members and acknowledgements at the end of every
/// week since its start, up to now. Someone who had left the directory by
/// then is not counted (nor is their acknowledgement): they no longer can.
fn reach(rows: &Rows, calendar: &Calendar) -> Vec<ReachRow> {
    let now = rows.now.timestamp_millis();
    let mut out = Vec::new();
    for r in rows
        .rollouts
        .iter()
        .filter(|r| r.definition.enrol == Enrol::Joiners)
    {
        let acknowledged: HashMap<&str, i64> = r
            .acknowledgements
            .iter()
            .map(|a| (a.person_id.as_str(), a.at))
            .collect();
        let weeks = ((now - r.created_at).max(0) / WEEK + 1).min(MOST_WEEKS);
        for week in 0..weeks {
            let from = r.created_at + week * WEEK;
            let end = (from + WEEK).min(now);
            let mut row = ReachRow {
                rollout: r.id.clone(),
                week: u32::try_from(week + 1).unwrap_or(u32::MAX),
                from: DateTime::<Utc>::from_timestamp_millis(from)
                    .map(|t| {
                        t.with_timezone(&calendar.time_zone())
                            .format("%Y-%m-%d")
                            .to_string()
                    })
                    .unwrap_or_default(),
                members: 0,
                acknowledged: 0,
                joined: 0,
            };
            for m in &r.members {
                let member_by_then = m.joined_at.is_none_or(|at| at < end);
                let left_by_then =
                    m.out_reason.as_deref() == Some("left") && m.out_at.is_some_and(|at| at < end);
                if !member_by_then || left_by_then {
                    continue;
                }
                row.members += 1;
                row.joined += u64::from(m.joined_at.is_some());
                row.acknowledged += u64::from(
                    acknowledged
                        .get(m.person_id.as_str())
                        .is_some_and(|&at| at < end),
                );
            }
            out.push(row);
        }
    }
    out
}

/// Check questions (issue 19): for each rollout's questions, grouped each
/// way, how many members had an answer recorded with their
/// acknowledgement and how many of them were right first time. A group
/// (an agency, team, role or wave) shows only where someone answered.
fn understanding<'a>(
    rows: &'a Rows,
    members: &[Member<'a>],
    directory: &Directory<'_>,
) -> Vec<UnderstandingSection> {
    if rows.rollouts.iter().all(|r| r.check_questions.is_empty()) {
        return Vec::new();
    }
    let by_person: HashMap<(&str, &str), &Member<'a>> =
        members.iter().map(|m| ((m.rollout, m.person), m)).collect();
    UnderstandingBy::ALL
        .into_iter()
        .map(|by| {
            // (rollout order, question, wave, key) -> (answered, right first time)
            let mut counted: BTreeMap<(usize, u32, u32, &'a str), (u64, u64)> = BTreeMap::new();
            for (order, r) in rows.rollouts.iter().enumerate() {
                if r.check_questions.is_empty() {
                    continue;
                }
                if by == UnderstandingBy::Total {
                    for q in 1..=r.check_questions.len() as u32 {
                        counted.entry((order, q, 0, ALL)).or_default();
                    }
                }
                for a in &r.check_answers {
                    let Some(m) = by_person.get(&(r.id.as_str(), a.person_id.as_str())) else {
                        continue;
                    };
                    let keys: Vec<(u32, &'a str)> = match by {
                        UnderstandingBy::Total => vec![(0, ALL)],
                        UnderstandingBy::Agency => vec![(0, m.agency)],
                        UnderstandingBy::Team => vec![(0, m.team)],
                        UnderstandingBy::Role => m.roles.iter().map(|r| (0, *r)).collect(),
                        UnderstandingBy::Wave => vec![(m.wave + 1, "")],
                    };
                    for (wave, key) in keys {
                        let tally = counted.entry((order, a.question, wave, key)).or_default();
                        tally.0 += 1;
                        tally.1 += u64::from(a.right_first_time);
                    }
                }
            }
            let rows = counted
                .into_iter()
                .map(|((order, question, wave, key), (answered, right))| {
                    let r = &rows.rollouts[order];
                    let (key, name) = match by {
                        UnderstandingBy::Total => (ALL.to_owned(), "All members".to_owned()),
                        UnderstandingBy::Agency => (key.to_owned(), directory.agency_name(key)),
                        UnderstandingBy::Team => (key.to_owned(), directory.team_name(key)),
                        UnderstandingBy::Role => (key.to_owned(), key.to_owned()),
                        UnderstandingBy::Wave => (
                            wave.to_string(),
                            r.definition
                                .waves
                                .get(wave.saturating_sub(1) as usize)
                                .map(|w| w.name.clone())
                                .unwrap_or_default(),
                        ),
                    };
                    UnderstandingRow {
                        rollout: r.id.clone(),
                        key,
                        name,
                        question,
                        question_text: r
                            .check_questions
                            .get(question.saturating_sub(1) as usize)
                            .cloned()
                            .unwrap_or_default(),
                        answered,
                        right_first_time: right,
                    }
                })
                .collect();
            UnderstandingSection { by, rows }
        })
        .collect()
}

/// Spaced refreshers (issue 19): for each rollout with refreshers and
/// check questions, each question's answers with the acknowledgement and
/// at each refresher (which asks the questions in turn), then the same
/// over all the item's questions under each of its themes.
fn retention(rows: &Rows, taxonomy: &Taxonomy) -> Vec<RetentionRow> {
    let mut out = Vec::new();
    for r in &rows.rollouts {
        let refreshers = &r.definition.refreshers;
        if refreshers.is_empty() || r.check_questions.is_empty() {
            continue;
        }
        let questions = r.check_questions.len();
        // [question][0: acknowledgement, n: refresher n]
        let mut tally = vec![vec![Answered::default(); refreshers.len() + 1]; questions];
        let mut count = |question: u32, stage: usize, right: bool| {
            if let Some(cell) = (question as usize)
                .checked_sub(1)
                .and_then(|q| tally.get_mut(q))
                .and_then(|q| q.get_mut(stage))
            {
                cell.answered += 1;
                cell.right_first_time += u64::from(right);
            }
        };
        // Members' answers only, as understanding counts them.
        let members: HashSet<&str> = r.members.iter().map(|m| m.person_id.as_str()).collect();
        for a in r
            .check_answers
            .iter()
            .filter(|a| members.contains(a.person_id.as_str()))
        {
            count(a.question, 0, a.right_first_time);
        }
        for a in r
            .refresher_answers
            .iter()
            .filter(|a| members.contains(a.person_id.as_str()))
        {
            count(a.question, a.refresher as usize, a.right_first_time);
        }
        let row = |by, key: String, name: String, stages: &[Answered]| RetentionRow {
            rollout: r.id.clone(),
            by,
            key,
            name,
            at_acknowledgement: stages[0],
            refreshers: refreshers
                .iter()
                .copied()
                .zip(stages[1..].iter().copied())
                .collect(),
        };
        for (q, stages) in tally.iter().enumerate() {
            out.push(row(
                RetentionBy::Question,
                (q + 1).to_string(),
                r.check_questions[q].clone(),
                stages,
            ));
        }
        let mut all = vec![Answered::default(); refreshers.len() + 1];
        for stages in &tally {
            for (sum, stage) in all.iter_mut().zip(stages) {
                sum.answered += stage.answered;
                sum.right_first_time += stage.right_first_time;
            }
        }
        for theme in &r.item_themes {
            out.push(row(
                RetentionBy::Theme,
                theme.clone(),
                taxonomy.label(theme).to_owned(),
                &all,
            ));
        }
    }
    out
}

fn key(rollout: &str, order: u32, key: &str) -> GroupKey {
    (rollout.to_owned(), order, key.to_owned())
}

/// Calls `f` with each row of a section a member counts in: none, one,
/// or several (roles and themes). Wave rows are keyed by rollout and wave
/// number alone (their key is the number, written out when ordered).
fn for_each_key<'a>(kind: SectionKind, m: &Member<'a>, mut f: impl FnMut((&'a str, u32, &'a str))) {
    match kind {
        SectionKind::Total => f(("", 0, ALL)),
        SectionKind::Rollout => f((m.rollout, 0, m.rollout)),
        SectionKind::Agency => f(("", 0, m.agency)),
        SectionKind::Team => f(("", 0, m.team)),
        SectionKind::Role => m.roles.iter().for_each(|r| f(("", 0, *r))),
        SectionKind::ChampionTheme => m.themes.iter().for_each(|t| f(("", 0, *t))),
        SectionKind::Wave => f((m.rollout, m.wave + 1, "")),
        SectionKind::MovedAgencyNow if m.out == Some(Out::Moved) => f(("", 0, m.agency_now)),
        SectionKind::MovedTeamNow if m.out == Some(Out::Moved) => f(("", 0, m.team_now)),
        SectionKind::MovedAgencyNow | SectionKind::MovedTeamNow => {}
    }
}

/// Champions' confirmations of the rollouts' items, by the confirmed team's
/// row in sections that have one.
fn coverage(
    kind: SectionKind,
    rows: &Rows,
    directory: &Directory<'_>,
) -> BTreeMap<GroupKey, Coverage> {
    let mut teams: BTreeMap<GroupKey, BTreeSet<&str>> = BTreeMap::new();
    let mut present: BTreeMap<GroupKey, u64> = BTreeMap::new();
    let items: BTreeSet<&str> = rows.rollouts.iter().map(|r| r.item_id.as_str()).collect();
    for c in rows
        .confirmations
        .iter()
        .filter(|c| items.contains(c.item_id.as_str()))
    {
        let keys = match kind {
            SectionKind::Total => vec![key("", 0, ALL)],
            SectionKind::Rollout => rows
                .rollouts
                .iter()
                .filter(|r| r.item_id == c.item_id)
                .map(|r| key(&r.id, 0, &r.id))
                .collect(),
            SectionKind::Agency => vec![key("", 0, directory.team_agency(&c.team_id))],
            SectionKind::Team => vec![key("", 0, &c.team_id)],
            SectionKind::Role
            | SectionKind::ChampionTheme
            | SectionKind::Wave
            | SectionKind::MovedAgencyNow
            | SectionKind::MovedTeamNow => Vec::new(),
        };
        for k in keys {
            teams.entry(k.clone()).or_default().insert(&c.team_id);
            *present.entry(k).or_default() += u64::from(c.present);
        }
    }
    teams
        .into_iter()
        .map(|(k, t)| {
            let present = present.get(&k).copied().unwrap_or_default();
            (
                k,
                Coverage {
                    teams: t.len() as u64,
                    present,
                },
            )
        })
        .collect()
}

fn row_name(
    kind: SectionKind,
    key: &GroupKey,
    rows: &Rows,
    directory: &Directory<'_>,
    taxonomy: &Taxonomy,
) -> String {
    let rollout = || rows.rollouts.iter().find(|r| r.id == key.0);
    match kind {
        SectionKind::Total => "All members".to_owned(),
        SectionKind::Rollout => rollout().map(title).unwrap_or_default(),
        SectionKind::Agency | SectionKind::MovedAgencyNow => directory.agency_name(&key.2),
        SectionKind::Team | SectionKind::MovedTeamNow => directory.team_name(&key.2),
        SectionKind::Role => key.2.clone(),
        SectionKind::ChampionTheme => taxonomy.label(&key.2).to_owned(),
        SectionKind::Wave => rollout()
            .and_then(|r| r.definition.waves.get(key.1 as usize - 1))
            .map_or_else(|| format!("Wave {}", key.1), |w| w.name.clone()),
    }
}

/// Answers to every follow-up of every rollout, one row per fixed answer
/// (zero included) for each group in `groups`.
fn answers(
    by: AnswerBy,
    groups: BTreeSet<String>,
    rows: &Rows,
    directory: &Directory<'_>,
    taxonomy: &Taxonomy,
) -> AnswerSection {
    let mut out = Vec::new();
    for group in &groups {
        let name = match by {
            AnswerBy::Total => "All members".to_owned(),
            AnswerBy::Agency => directory.agency_name(group),
            AnswerBy::ChampionTheme => taxonomy.label(group).to_owned(),
        };
        let in_group = |person: &str| match by {
            AnswerBy::Total => true,
            AnswerBy::Agency => directory.agency_and_team(person).0 == group,
            AnswerBy::ChampionTheme => directory
                .themes
                .get(person)
                .is_some_and(|t| t.contains(&group.as_str())),
        };
        for r in &rows.rollouts {
            let asked = r.definition.follow_ups.len() as u32;
            let answered = r.answers.iter().map(|a| a.follow_up).max().unwrap_or(0);
            for number in 1..=asked.max(answered) {
                let follow_up = r.definition.follow_ups.get(number as usize - 1);
                // The fixed answers in their order, then any other answer given.
                let mut choices: Vec<&str> = follow_up
                    .map(|f| f.answers.iter().map(String::as_str).collect())
                    .unwrap_or_default();
                let mut others: Vec<&str> = r
                    .answers
                    .iter()
                    .filter(|a| a.follow_up == number && !choices.contains(&a.answer.as_str()))
                    .map(|a| a.answer.as_str())
                    .collect();
                others.sort_unstable();
                others.dedup();
                choices.extend(others);
                for choice in choices {
                    let count = r
                        .answers
                        .iter()
                        .filter(|a| a.follow_up == number && a.answer == choice)
                        .filter(|a| in_group(&a.person_id))
                        .count() as u64;
                    out.push(AnswerCount {
                        rollout: r.id.clone(),
                        key: group.clone(),
                        name: name.clone(),
                        follow_up: number,
                        question: follow_up.map(|f| f.question.clone()).unwrap_or_default(),
                        answer: choice.to_owned(),
                        count,
                    });
                }
            }
        }
    }
    AnswerSection { by, rows: out }
}

/// The notes of a report taken at `now` (the only figures of a report
/// that change with time alone, with the overdue counts and `generated`).
pub(super) fn notes(
    now: DateTime<Utc>,
    calendar: &Calendar,
    partnership: bool,
    no_rollouts: bool,
) -> Vec<String> {
    let mut notes = vec![
        "Delivered is the same as sent for now: channels do not report delivery receipts yet.".to_owned(),
        "Sent counts members whose first message was sent on at least one channel; reminders do not count.".to_owned(),
        "Acknowledged counts acknowledgements of the item version the rollout pinned. The median time to acknowledge runs from a member's first sent message to their acknowledgement, in hours.".to_owned(),
        format!(
            "Overdue counts members who had not acknowledged and were past their wave's deadline on {}.",
            calendar.format_local(now)
        ),
        "Absent counts members who had not acknowledged and are away (people.csv's absent_until is a later day): they are not chased meanwhile, their deadline moves with their return, and they are not counted as overdue.".to_owned(),
        "Escalated counts members about whom at least one escalation was sent.".to_owned(),
        "Members are counted under the agency and team they were in when the rollout reached them. Left counts members no longer in the directory and moved counts members no longer in the rollout's audience (a new team, agency or role): neither is chased any more, nor counted as overdue, and what they acknowledged still counts. The acknowledged percentage leaves out leavers who had not acknowledged; movers stay in it, as they can still acknowledge. The sections \"Movers by agency now\" and \"Movers by team now\" show the movers again under where they are now.".to_owned(),
        "A person with several roles counts in each of their roles' rows, and champion theme rows count the members who champion that theme, so those sections do not add up to the total.".to_owned(),
        "Teams confirmed and people present come from champions' confirmations that the learning was cascaded to a team (\"on behalf of\" coverage), by the confirmed team's agency; they are apart from individual acknowledgements.".to_owned(),
    ];
    if partnership {
        notes.push(
            "Figures count rollout memberships: a person in two rollouts counts in each."
                .to_owned(),
        );
        if no_rollouts {
            notes.push("No rollout was created in this period.".to_owned());
        }
    }
    notes
}
