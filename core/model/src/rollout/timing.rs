//! Each person's own time in a plan: people who share a wave, a time zone,
//! a working pattern and a return from absence share a first send. The
//! store groups the audience so ([`TimingGroup`]), [`plan_timing`] works out
//! each group's first send and shift ([`TimingRule`]) and how many people
//! each rule moves, and the store writes the members with them, so a
//! million people are never timed one by one.

use super::calendar::Calendar;
use super::definition::RolloutDefinition;
use super::steps::{back_at, member_start, person_calendar, wave_send};
use crate::directory::Person;
use chrono::{DateTime, NaiveDate, Utc};
use serde::Serialize;

/// People of an audience in one wave with the same timing columns.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TimingGroup {
    pub wave: usize,
    pub time_zone: Option<String>,
    pub works: Option<String>,
    /// Only a return after the rollout's start (see
    /// [`super::AudienceQuery::absences_after`]); earlier ones change nothing.
    pub absent_until: Option<NaiveDate>,
    pub people: usize,
}

/// A group's timing as the store matches members to it: empty text for
/// an empty column.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TimingRule {
    pub wave: usize,
    pub time_zone: String,
    pub works: String,
    /// `YYYY-MM-DD`.
    pub absent_until: String,
    pub shift_days: u32,
    /// Unix milliseconds.
    pub first_due_at: i64,
}

/// How many people each rule moves, for `cascade rollout plan`. A person
/// counts under each rule that changes their first send, taken in order:
/// their own zone, then their working pattern, then their absence.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct TimingMoves {
    pub by_zone: usize,
    pub by_works: usize,
    pub by_absence: usize,
    /// The latest first send of anyone moved.
    pub latest_first_send: Option<DateTime<Utc>>,
    /// E.g. "Mon 11 Jan 2027 09:30 GMT", in the partnership's zone.
    pub latest_first_send_local: Option<String>,
}

impl TimingMoves {
    pub fn moved_anyone(&self) -> bool {
        self.latest_first_send.is_some()
    }

    /// Nobody moved: the plan says nothing of it in JSON.
    pub fn is_unmoved(&self) -> bool {
        !self.moved_anyone()
    }
}

/// The calendar and the return of someone with these columns.
fn person_clock(
    def: &RolloutDefinition,
    calendar: &Calendar,
    time_zone: Option<&str>,
    works: Option<&str>,
    absent_until: Option<NaiveDate>,
) -> (Calendar, Option<DateTime<Utc>>) {
    let own = person_calendar(def, calendar, time_zone, works);
    let back = absent_until.map(|day| back_at(&own, day));
    (own, back)
}

/// A person's shift and first send in `wave`: the rule that a group's
/// [`TimingRule`] stands for, stated over one person.
///
/// # Panics
/// If `wave` is not an index of `def.waves`.
pub fn person_start(
    def: &RolloutDefinition,
    calendar: &Calendar,
    person: &Person,
    wave: usize,
) -> (u32, DateTime<Utc>) {
    let (own, back) = person_clock(
        def,
        calendar,
        person.time_zone.as_deref(),
        person.works.as_deref(),
        person.absent_until,
    );
    member_start(def, &own, wave, back)
}

/// Each group's rule, and how many people the rules move.
pub fn plan_timing(
    def: &RolloutDefinition,
    calendar: &Calendar,
    groups: &[TimingGroup],
) -> (Vec<TimingRule>, TimingMoves) {
    let mut rules = Vec::with_capacity(groups.len());
    let mut moves = TimingMoves::default();
    for g in groups.iter().filter(|g| g.wave < def.waves.len()) {
        let (tz, works) = (g.time_zone.as_deref(), g.works.as_deref());
        let base = wave_send(def, calendar, g.wave);
        let zoned = wave_send(def, &person_calendar(def, calendar, tz, None), g.wave);
        let (own, back) = person_clock(def, calendar, tz, works, g.absent_until);
        let working = wave_send(def, &own, g.wave);
        let (shift_days, first) = member_start(def, &own, g.wave, back);
        let n = g.people;
        moves.by_zone += if zoned == base { 0 } else { n };
        moves.by_works += if working == zoned { 0 } else { n };
        moves.by_absence += if first == working { 0 } else { n };
        if first != base && n > 0 {
            moves.latest_first_send = moves.latest_first_send.max(Some(first));
        }
        rules.push(TimingRule {
            wave: g.wave,
            time_zone: g.time_zone.clone().unwrap_or_default(),
            works: g.works.clone().unwrap_or_default(),
            absent_until: g
                .absent_until
                .map(|d| d.format("%Y-%m-%d").to_string())
                .unwrap_or_default(),
            shift_days,
            first_due_at: first.timestamp_millis(),
        });
    }
    moves.latest_first_send_local = moves.latest_first_send.map(|t| calendar.format_local(t));
    (rules, moves)
}
