//! The induction back catalogue (issue 23): key items every joiner gets
//! one at a time, a pace apart in their own working days, all due within a
//! deadline counted from the day they joined. Each key item is rolled out
//! as an open rollout of its own; this module turns one joiner's joining
//! into that rollout's timetable for them. Pure: time is a parameter.

use super::calendar::Calendar;
use super::definition::RolloutDefinition;
use chrono::{DateTime, Days, NaiveDate, Utc};
use serde::{Deserialize, Serialize};

/// What makes a rollout a key item of the induction.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct InductionStep {
    /// The item's place in the induction's list, from 0.
    pub position: u32,
    /// Working days from one key item to the next.
    pub pace_days: u32,
    /// Calendar days from joining by which every key item is due.
    pub deadline_days: u32,
}

/// Reads a pace such as `"2 working days"` or `"1 working day"`: the
/// working days from one key item to the next, 1 to 30.
pub fn parse_pace(text: &str) -> Result<u32, String> {
    let words: Vec<&str> = text.split_whitespace().collect();
    let days = match words.as_slice() {
        [n, "working", "day" | "days"] => n
            .parse::<u32>()
            .map_err(|_| format!("\"{text}\" does not start with a whole number"))?,
        _ => return Err(format!("\"{text}\" is not a number of working days")),
    };
    if !(1..=30).contains(&days) {
        return Err(format!("\"{text}\" is out of range: 1 to 30 working days"));
    }
    Ok(days)
}

/// Reads a deadline such as `"6 weeks"` or `"30 days"`: calendar days from
/// joining, 1 to 365.
pub fn parse_deadline(text: &str) -> Result<u32, String> {
    let words: Vec<&str> = text.split_whitespace().collect();
    let (n, unit) = match words.as_slice() {
        [n, unit] => (
            n.parse::<u32>()
                .map_err(|_| format!("\"{text}\" does not start with a whole number"))?,
            *unit,
        ),
        _ => return Err(format!("\"{text}\" is not a number of days or weeks")),
    };
    let days = match unit {
        "day" | "days" => n,
        "week" | "weeks" => n.saturating_mul(7),
        _ => return Err(format!("\"{unit}\" is not days or weeks")),
    };
    if !(1..=365).contains(&days) {
        return Err(format!("\"{text}\" is out of range: 1 day to 52 weeks"));
    }
    Ok(days)
}

/// The local day on which a joiner who joined on `joined` gets the key
/// item at `position`: their first working day on or after joining for
/// the first, then `pace_days` of their working days after the one before.
pub fn induction_send_day(
    calendar: &Calendar,
    joined: NaiveDate,
    position: u32,
    pace_days: u32,
) -> NaiveDate {
    let next = |day: NaiveDate| day.checked_add_days(Days::new(1)).unwrap_or(day);
    let mut day = joined;
    // A week always has a working day; a bound keeps a strange calendar finite.
    for _ in 0..7 {
        if calendar.is_working_day(day) {
            break;
        }
        day = next(day);
    }
    for _ in 0..position.saturating_mul(pace_days) {
        day = next(day);
        for _ in 0..7 {
            if calendar.is_working_day(day) {
                break;
            }
            day = next(day);
        }
    }
    day
}

/// A key item's rollout as it runs for one joiner who joined at `joined_at`,
/// on their own `calendar`: it starts on the day they joined (at the
/// rollout's time of day), its one wave sends on their send day (see
/// [`induction_send_day`]) and its deadline is the induction's, counted
/// from the day they joined. Reminders and escalations keep their days
/// from the send and the deadline as in any rollout. A rollout that is
/// not a key item is returned as it is.
pub fn induction_member_definition(
    def: &RolloutDefinition,
    calendar: &Calendar,
    joined_at: DateTime<Utc>,
) -> RolloutDefinition {
    let Some(step) = def.induction else {
        return def.clone();
    };
    let joined = joined_at.with_timezone(&calendar.time_zone()).date_naive();
    let send = induction_send_day(calendar, joined, step.position, step.pace_days);
    let after_days = u32::try_from((send - joined).num_days()).unwrap_or(0);
    let mut own = def.clone();
    own.start = joined.and_time(def.start.time());
    for wave in &mut own.waves {
        wave.after_days = after_days;
    }
    own.ack_deadline_days = step.deadline_days.saturating_sub(after_days).max(1);
    own
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rollout::{QuietHours, StepKind, wave_steps};
    use chrono::TimeZone;

    fn london() -> Calendar {
        Calendar::new("Europe/London", QuietHours::default()).unwrap()
    }

    fn day(y: i32, m: u32, d: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, d).unwrap()
    }

    #[test]
    fn paces_and_deadlines_are_read_in_plain_words() {
        assert_eq!(parse_pace("2 working days"), Ok(2));
        assert_eq!(parse_pace("1 working day"), Ok(1));
        assert!(parse_pace("2 days").unwrap_err().contains("working days"));
        assert!(
            parse_pace("0 working days")
                .unwrap_err()
                .contains("out of range")
        );
        assert_eq!(parse_deadline("6 weeks"), Ok(42));
        assert_eq!(parse_deadline("30 days"), Ok(30));
        assert!(
            parse_deadline("6 fortnights")
                .unwrap_err()
                .contains("not days or weeks")
        );
        assert!(
            parse_deadline("53 weeks")
                .unwrap_err()
                .contains("out of range")
        );
    }

    #[test]
    fn send_days_skip_weekends_and_days_not_worked() {
        let cal = london();
        // Joined on Friday 6 March 2026, two working days apart.
        let joined = day(2026, 3, 6);
        let days: Vec<NaiveDate> = (0..3)
            .map(|k| induction_send_day(&cal, joined, k, 2))
            .collect();
        assert_eq!(days, [day(2026, 3, 6), day(2026, 3, 10), day(2026, 3, 12)]);
        // Joined on a Saturday: the first key item waits for Monday.
        assert_eq!(
            induction_send_day(&cal, day(2026, 3, 7), 0, 2),
            day(2026, 3, 9)
        );
        // Someone working Tuesday to Thursday.
        let part = cal.for_person(None, Some("Tue-Thu"));
        let days: Vec<NaiveDate> = (0..3)
            .map(|k| induction_send_day(&part, joined, k, 2))
            .collect();
        assert_eq!(days, [day(2026, 3, 10), day(2026, 3, 12), day(2026, 3, 18)]);
    }

    #[test]
    fn a_joiners_timetable_counts_the_deadline_from_joining() {
        let cal = london();
        let mut def = crate::rollout::parse_definition(
            std::path::Path::new("induction.toml"),
            "id = \"induction-neglect\"\nitem = \"neglect\"\nstart = 2026-01-05T09:00:00\n\
             channels = [\"outbox\"]\nack_deadline_days = 10\nreminder_days = [2]\n\
             escalation_days = [1]\n[audience]\n[[waves]]\nname = \"Joiners\"\nafter_days = 0\n",
        )
        .unwrap();
        def.induction = Some(InductionStep {
            position: 2,
            pace_days: 2,
            deadline_days: 42,
        });
        let joined = Utc.with_ymd_and_hms(2026, 3, 6, 10, 0, 0).unwrap();
        let own = induction_member_definition(&def, &cal, joined);
        let steps = wave_steps(&own, &cal, 0);
        let at = |kind: StepKind| steps.iter().find(|s| s.kind == kind).unwrap().due_at;
        // The third item on Thursday 12 March at 09:00 GMT.
        assert_eq!(
            at(StepKind::Initial),
            Utc.with_ymd_and_hms(2026, 3, 12, 9, 0, 0).unwrap()
        );
        assert_eq!(
            at(StepKind::Reminder),
            Utc.with_ymd_and_hms(2026, 3, 16, 8, 0, 0).unwrap(),
            "Saturday's reminder waits for Monday's end of quiet hours"
        );
        // Deadline: six weeks from Friday 6 March, 17 April (BST from 29
        // March, so 09:00 local is 08:00 UTC); the escalation a day later.
        assert_eq!(
            at(StepKind::Escalation),
            Utc.with_ymd_and_hms(2026, 4, 20, 7, 0, 0).unwrap(),
            "Saturday 18 April's escalation waits for Monday"
        );
    }
}
