//! What a rollout sends to a person and when: the initial send of their wave,
//! reminders, escalation rungs and follow-ups. Reminders and escalations are
//! candidates; the caller drops them for people who have acknowledged.

use super::calendar::Calendar;
use super::definition::{Enrol, RolloutDefinition};
use crate::directory::Directory;
use chrono::{DateTime, Days, NaiveDate, NaiveTime, Utc};
use serde::{Deserialize, Serialize};

/// The kind of a step. Stored in the outbox as its [`StepKind::as_str`]
/// text (`initial`, `reminder`, `escalation`, `follow-up`,
/// `champion-reminder`, `refresher`, `induction-digest`), with the
/// `sqlx` feature as a `TEXT` column type.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
#[cfg_attr(
    feature = "sqlx",
    derive(sqlx::Type),
    sqlx(type_name = "TEXT", rename_all = "kebab-case")
)]
pub enum StepKind {
    Initial,
    Reminder,
    Escalation,
    FollowUp,
    /// After the rollout's deadline, to a champion of the item's themes
    /// whose teams have no cascade confirmation of the item yet.
    ChampionReminder,
    /// A spaced refresher (issue 19), days after the person's own
    /// acknowledgement: one key message and one check question. Never
    /// chased and never escalated.
    Refresher,
    /// A champion's weekly digest of their teams' joiners' progress
    /// through the induction (issue 23), carried by a key item's rollout.
    InductionDigest,
}

impl StepKind {
    pub const ALL: [StepKind; 7] = [
        StepKind::Initial,
        StepKind::Reminder,
        StepKind::Escalation,
        StepKind::FollowUp,
        StepKind::ChampionReminder,
        StepKind::Refresher,
        StepKind::InductionDigest,
    ];

    /// The kind whose [`StepKind::as_str`] is `text`.
    pub fn from_text(text: &str) -> Option<StepKind> {
        StepKind::ALL.into_iter().find(|k| k.as_str() == text)
    }

    pub fn as_str(&self) -> &'static str {
        match self {
            StepKind::Initial => "initial",
            StepKind::Reminder => "reminder",
            StepKind::Escalation => "escalation",
            StepKind::FollowUp => "follow-up",
            StepKind::ChampionReminder => "champion-reminder",
            StepKind::Refresher => "refresher",
            StepKind::InductionDigest => "induction-digest",
        }
    }
}

impl std::fmt::Display for StepKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One scheduled message of a wave.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Step {
    pub kind: StepKind,
    /// 1-based within its kind; for an escalation, the rung of the ladder.
    pub number: u32,
    pub due_at: DateTime<Utc>,
}

/// When a wave's initial send goes: its day at the start's local time, held
/// past quiet hours unless the rollout is urgent.
///
/// # Panics
/// If `wave` is not an index of `def.waves`.
pub fn wave_send(def: &RolloutDefinition, calendar: &Calendar, wave: usize) -> DateTime<Utc> {
    let send = calendar.local_days_after(def.start, def.waves[wave].after_days);
    calendar.next_allowed(send, def.urgent)
}

/// When people in a wave must have acknowledged by: the deadline days after
/// their wave's send, at the same local time.
///
/// # Panics
/// If `wave` is not an index of `def.waves`.
pub fn deadline(def: &RolloutDefinition, calendar: &Calendar, wave: usize) -> DateTime<Utc> {
    calendar.add_days(wave_send(def, calendar, wave), def.ack_deadline_days)
}

/// Every step of a wave, sorted by when it is due.
///
/// # Panics
/// If `wave` is not an index of `def.waves`.
pub fn wave_steps(def: &RolloutDefinition, calendar: &Calendar, wave: usize) -> Vec<Step> {
    let send = wave_send(def, calendar, wave);
    let deadline = calendar.add_days(send, def.ack_deadline_days);
    let follow_ups = def.follow_ups.iter().map(|f| f.after_days).collect();
    let mut steps = vec![Step {
        kind: StepKind::Initial,
        number: 1,
        due_at: send,
    }];
    for (kind, from, days) in [
        (StepKind::Reminder, send, def.reminder_days.clone()),
        (StepKind::Escalation, deadline, def.escalation_days.clone()),
        (StepKind::FollowUp, send, follow_ups),
    ] {
        steps.extend(days.into_iter().zip(1..).map(|(days, number)| Step {
            kind,
            number,
            due_at: calendar.next_allowed(calendar.add_days(from, days), def.urgent),
        }));
    }
    let last_deadline = rollout_deadline(def, calendar);
    steps.extend(
        def.champion_reminder_days
            .iter()
            .zip(1..)
            .map(|(&days, number)| Step {
                kind: StepKind::ChampionReminder,
                number,
                due_at: calendar.next_allowed(calendar.add_days(last_deadline, days), def.urgent),
            }),
    );
    steps.sort_by_key(|s| s.due_at);
    steps
}

/// When a person's refresher `number` (1-based) is due: its days after
/// their acknowledgement at `acknowledged`, as calendar days at the same
/// local time, held past quiet hours (a refresher is never urgent).
/// `None` when the rollout has no such refresher.
pub fn refresher_due(
    def: &RolloutDefinition,
    calendar: &Calendar,
    acknowledged: DateTime<Utc>,
    number: u32,
) -> Option<DateTime<Utc>> {
    let days = *def.refreshers.get(number.checked_sub(1)? as usize)?;
    Some(calendar.next_allowed(calendar.add_days(acknowledged, days), false))
}

/// The rollout's deadline: the latest of its waves' deadlines, by which
/// everyone in it should have acknowledged (and champions cascaded it).
pub fn rollout_deadline(def: &RolloutDefinition, calendar: &Calendar) -> DateTime<Utc> {
    (0..def.waves.len())
        .map(|wave| deadline(def, calendar, wave))
        .max()
        .unwrap_or_else(|| {
            calendar.add_days(
                calendar.local_days_after(def.start, 0),
                def.ack_deadline_days,
            )
        })
}

/// The timetable of a wave moved `shift` days later, at the same local
/// times: a joiner's steps (see [`joiner_shift`]). Reminders, escalations
/// and follow-ups keep their intervals from the (moved) send; champion
/// reminders count from the later of the rollout's deadline and the moved
/// wave's.
///
/// # Panics
/// If `wave` is not an index of `def.waves`.
pub fn shifted_wave_steps(
    def: &RolloutDefinition,
    calendar: &Calendar,
    wave: usize,
    shift: u32,
) -> Vec<Step> {
    if shift == 0 {
        return wave_steps(def, calendar, wave);
    }
    let mut moved = def.clone();
    moved.waves[wave].after_days = moved.waves[wave].after_days.saturating_add(shift);
    wave_steps(&moved, calendar, wave)
}

/// How many days later than its wave a joiner's timetable runs, for
/// someone enrolled at `now` into `wave`: none while the wave's send is
/// still to come (they go with the wave), otherwise the fewest whole days
/// that put their send at or after `now`, so no step of theirs falls due
/// before they joined.
///
/// # Panics
/// If `wave` is not an index of `def.waves`.
pub fn joiner_shift(
    def: &RolloutDefinition,
    calendar: &Calendar,
    wave: usize,
    now: DateTime<Utc>,
) -> u32 {
    let send = wave_send(def, calendar, wave);
    if send >= now {
        return 0;
    }
    // A first guess from the whole days between, then a day at a time
    // past quiet days and clock changes (a few steps at most).
    let mut shift = u32::try_from((now - send).num_days()).unwrap_or(u32::MAX / 2);
    let mut moved = def.clone();
    loop {
        moved.waves[wave].after_days = def.waves[wave].after_days.saturating_add(shift);
        if wave_send(&moved, calendar, wave) >= now || shift >= u32::MAX / 2 {
            return shift;
        }
        shift += 1;
    }
}

/// The clock a member's timetable runs on: for an urgent rollout the
/// partnership's (urgent messages go at once, for everyone at the same
/// moment), otherwise the person's own zone and working pattern as
/// people.csv gives them (see [`Calendar::for_person`]).
pub fn person_calendar(
    def: &RolloutDefinition,
    partnership: &Calendar,
    time_zone: Option<&str>,
    works: Option<&str>,
) -> Calendar {
    if def.urgent {
        partnership.clone()
    } else {
        partnership.for_person(time_zone, works)
    }
}

/// When someone away until `absent_until` (people.csv: the day they are
/// back at work) is back: the start of that day in their own zone.
pub fn back_at(calendar: &Calendar, absent_until: NaiveDate) -> DateTime<Utc> {
    calendar.at_local(absent_until.and_time(NaiveTime::MIN))
}

/// When a message to someone may go, from `now`: at once if urgent,
/// otherwise their next open time on their own `calendar` (see
/// [`Calendar::is_open`]), after the start of the day they are back if
/// they are away. For every message queued, to the member or to a
/// manager or champion escalated to.
pub fn open_from(
    calendar: &Calendar,
    absent_until: Option<NaiveDate>,
    urgent: bool,
    now: DateTime<Utc>,
) -> DateTime<Utc> {
    if urgent {
        return now;
    }
    let from = absent_until.map_or(now, |day| back_at(calendar, day).max(now));
    calendar.next_allowed(from, false)
}

/// The fewest days, at least `shift`, by which a member's timetable
/// (their wave's, on their own `calendar`) moves so that its step `index`
/// falls due at or after `back`: an absent person's steps wait for their
/// return with every interval kept, so their deadline moves by the absence.
///
/// # Panics
/// If `wave` is not an index of `def.waves`.
pub fn shift_past(
    def: &RolloutDefinition,
    calendar: &Calendar,
    wave: usize,
    index: usize,
    shift: u32,
    back: DateTime<Utc>,
) -> u32 {
    let due = |shift: u32| {
        shifted_wave_steps(def, calendar, wave, shift)
            .get(index)
            .map(|s| s.due_at)
    };
    let Some(first) = due(shift) else {
        return shift;
    };
    if first >= back {
        return shift;
    }
    // A first guess from the whole days between, then a day at a time
    // past quiet days and clock changes (a few steps at most).
    let guess = u32::try_from((back - first).num_days()).unwrap_or(u32::MAX / 2);
    let mut moved = shift.saturating_add(guess);
    while moved < u32::MAX / 2 && due(moved).is_some_and(|d| d < back) {
        moved += 1;
    }
    moved
}

/// A member's first send and how many days their timetable moves for an
/// absence: someone back after their wave's send (`back`, see [`back_at`])
/// gets the item on their return, at the wave's local time or their next
/// working period after it. Urgent rollouts go at once, absent or not.
///
/// # Panics
/// If `wave` is not an index of `def.waves`.
pub fn member_start(
    def: &RolloutDefinition,
    calendar: &Calendar,
    wave: usize,
    back: Option<DateTime<Utc>>,
) -> (u32, DateTime<Utc>) {
    let send = wave_send(def, calendar, wave);
    match back {
        Some(back) if !def.urgent && send < back => {
            let shift = shift_past(def, calendar, wave, 0, 0, back);
            let mut moved = def.clone();
            moved.waves[wave].after_days = moved.waves[wave].after_days.saturating_add(shift);
            (shift, wave_send(&moved, calendar, wave))
        }
        _ => (0, send),
    }
}

/// The instant an open rollout stops enrolling joiners: the end of its
/// `open_until` day (by default the day of its deadline) in the
/// partnership's zone. `None` for a rollout fixed at its start.
pub fn open_until(def: &RolloutDefinition, calendar: &Calendar) -> Option<DateTime<Utc>> {
    if def.enrol != Enrol::Joiners {
        return None;
    }
    let last_day = match def.open_until {
        Some(day) => day,
        None => rollout_deadline(def, calendar)
            .with_timezone(&calendar.time_zone())
            .date_naive(),
    };
    let next = last_day.checked_add_days(Days::new(1)).unwrap_or(last_day);
    Some(calendar.at_local(next.and_time(NaiveTime::MIN)))
}

/// Who an escalation rung goes to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum EscalationTarget {
    Person(String),
    /// The business unit's digest of everyone still outstanding.
    BusinessUnitDigest,
}

/// Rung 1: an active champion of one of the item's themes who covers the
/// person's team; rung 2: the person's active manager; rung 3: the
/// business-unit digest. `None` when the rung has nobody.
pub fn escalation_target(
    level: u32,
    person_id: &str,
    item_themes: &[String],
    directory: &Directory,
) -> Option<EscalationTarget> {
    let active = |id: &str| id != person_id && directory.people.iter().any(|p| p.id == id);
    let person = directory.people.iter().find(|p| p.id == person_id);
    match level {
        1 => {
            let person = person?;
            directory
                .champions
                .iter()
                .filter(|c| c.team_ids.contains(&person.team_id) && active(&c.person_id))
                .filter_map(|c| {
                    let rank = item_themes.iter().position(|t| *t == c.theme)?;
                    Some((rank, &c.person_id))
                })
                .min()
                .map(|(_, id)| EscalationTarget::Person(id.clone()))
        }
        2 => person?
            .manager_id
            .as_deref()
            .filter(|m| active(m))
            .map(|m| EscalationTarget::Person(m.to_owned())),
        3 => Some(EscalationTarget::BusinessUnitDigest),
        _ => None,
    }
}
