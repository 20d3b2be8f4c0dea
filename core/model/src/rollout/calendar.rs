//! Time for rollouts: the partnership's zone and its quiet hours. Days are
//! added in local wall-clock time, so a 09:00 wave stays at 09:00 across a
//! clock change. No clock is read here; every instant is a parameter.
//! Arithmetic is checked: a date past the end of the calendar (which only
//! a day count that bypassed a rollout file's checks could reach) is held
//! at [`latest`], so it never comes, and nothing overflows.

use crate::works::WorkPattern;
use chrono::{
    DateTime, Datelike, Days, LocalResult, NaiveDateTime, NaiveTime, Offset, TimeDelta, TimeZone,
    Timelike, Utc, Weekday,
};
use chrono_tz::Tz;
use serde::{Deserialize, Serialize};

/// When non-urgent messages wait: overnight, and at weekends if `weekends`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct QuietHours {
    /// Local time quiet starts, e.g. 20:00. Equal to `end` means no nightly quiet.
    #[serde(with = "hh_mm")]
    pub start: NaiveTime,
    /// Local time quiet ends, e.g. 08:00; also when a quiet weekend ends on Monday.
    #[serde(with = "hh_mm")]
    pub end: NaiveTime,
    /// Saturday and Sunday are quiet all day.
    pub weekends: bool,
}

impl Default for QuietHours {
    fn default() -> Self {
        QuietHours {
            start: NaiveTime::from_hms_opt(20, 0, 0).expect("20:00 is a time"),
            end: NaiveTime::from_hms_opt(8, 0, 0).expect("08:00 is a time"),
            weekends: true,
        }
    }
}

impl QuietHours {
    fn is_quiet_at(&self, time: NaiveTime) -> bool {
        if self.start < self.end {
            self.start <= time && time < self.end
        } else if self.start > self.end {
            time >= self.start || time < self.end
        } else {
            false
        }
    }
}

/// Times written as "20:00" (seconds optional) in `cascade.toml`.
mod hh_mm {
    use chrono::NaiveTime;
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(t: &NaiveTime, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(&t.format("%H:%M"))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<NaiveTime, D::Error> {
        let text = String::deserialize(d)?;
        NaiveTime::parse_from_str(text.trim(), "%H:%M")
            .or_else(|_| NaiveTime::parse_from_str(text.trim(), "%H:%M:%S"))
            .map_err(|_| {
                serde::de::Error::custom(format!("\"{text}\" is not a time; write it as \"20:00\""))
            })
    }
}

/// The latest instant the calendar gives. Two days inside chrono's range,
/// so it has a local time in every zone (offsets are under a day) and a
/// day's hop from it is still representable.
fn latest() -> DateTime<Utc> {
    DateTime::<Utc>::MAX_UTC
        .checked_sub_days(Days::new(2))
        .unwrap_or(DateTime::<Utc>::MAX_UTC)
}

/// The earliest instant the calendar gives, for the same reason.
fn earliest() -> DateTime<Utc> {
    DateTime::<Utc>::MIN_UTC
        .checked_add_days(Days::new(2))
        .unwrap_or(DateTime::<Utc>::MIN_UTC)
}

/// The partnership's clock: its time zone and quiet hours; or one
/// person's, in their own zone and with their working pattern (see
/// [`Calendar::for_person`]).
#[derive(Debug, Clone, PartialEq)]
pub struct Calendar {
    tz: Tz,
    quiet: QuietHours,
    works: Option<WorkPattern>,
}

impl Calendar {
    /// A calendar for an IANA zone name such as `Europe/London`.
    pub fn new(time_zone: &str, quiet: QuietHours) -> Result<Calendar, String> {
        crate::time::time_zone(time_zone).map(|tz| Calendar {
            tz,
            quiet,
            works: None,
        })
    }

    pub fn time_zone(&self) -> Tz {
        self.tz
    }

    /// A person's clock: the partnership's quiet hours read in their own
    /// zone (the partnership's when `time_zone` is empty or unknown), and
    /// their working pattern, if any, as written in people.csv (see
    /// [`WorkPattern`]).
    pub fn for_person(&self, time_zone: Option<&str>, works: Option<&str>) -> Calendar {
        Calendar {
            tz: time_zone
                .and_then(|z| z.trim().parse::<Tz>().ok())
                .unwrap_or(self.tz),
            quiet: self.quiet,
            works: works.and_then(|w| WorkPattern::parse(w).ok()),
        }
    }

    /// Whether the local day `day` is a working day: one of the pattern's
    /// days if there is a pattern, else any day but a quiet weekend's.
    pub fn is_working_day(&self, day: chrono::NaiveDate) -> bool {
        match &self.works {
            Some(works) => works.works_on(day.weekday()),
            None => !(self.quiet.weekends && matches!(day.weekday(), Weekday::Sat | Weekday::Sun)),
        }
    }

    /// The working pattern of a person's calendar.
    pub fn works(&self) -> Option<&WorkPattern> {
        self.works.as_ref()
    }

    /// Whether a non-urgent message may go at `t`: in a working period of
    /// the pattern if there is one, else outside the quiet hours (nightly,
    /// and from Saturday until Monday's end of quiet hours when weekends
    /// are quiet).
    pub fn is_open(&self, t: DateTime<Utc>) -> bool {
        self.is_open_local(self.local(t))
    }

    fn is_open_local(&self, local: NaiveDateTime) -> bool {
        let quiet = self.quiet;
        if let Some(works) = &self.works {
            return works.is_working(local, |time| quiet.is_quiet_at(time));
        }
        let time = local.time();
        let weekend = quiet.weekends
            && match local.weekday() {
                Weekday::Sat | Weekday::Sun => true,
                Weekday::Mon => time < quiet.end,
                _ => false,
            };
        !weekend && !quiet.is_quiet_at(time)
    }

    /// The local times of day at which [`Calendar::is_open`] may change.
    fn boundaries(&self) -> Vec<NaiveTime> {
        let mut times = vec![NaiveTime::MIN, self.quiet.start, self.quiet.end];
        if let Some((from, to)) = self.works.and_then(|w| w.hours()) {
            times.extend([from, to]);
        }
        times.sort();
        times.dedup();
        times
    }

    /// The instant `local` names, not before `after` (in an autumn fold,
    /// the later of the two if the earlier is before `after`).
    fn at_local_after(&self, local: NaiveDateTime, after: DateTime<Utc>) -> DateTime<Utc> {
        let instant = self.at_local(local);
        if instant >= after {
            return instant;
        }
        match self.tz.from_local_datetime(&local) {
            LocalResult::Ambiguous(_, later) => later.with_timezone(&Utc).max(after),
            _ => after,
        }
    }

    pub fn quiet(&self) -> &QuietHours {
        &self.quiet
    }

    /// The instant a local wall-clock time names. In a spring-forward gap it
    /// is the first valid instant after; in an autumn fold, the earlier one.
    pub fn at_local(&self, t: NaiveDateTime) -> DateTime<Utc> {
        // Zone transitions fall on whole minutes, so stepping by minutes from
        // the minute the gap started finds the first valid instant exactly.
        let minute = t
            .with_second(0)
            .and_then(|t| t.with_nanosecond(0))
            .unwrap_or(t);
        let mut candidate = t;
        for step in 0..=24 * 60 {
            let instant = match self.tz.from_local_datetime(&candidate) {
                LocalResult::Single(local) => local.with_timezone(&Utc),
                LocalResult::Ambiguous(earlier, _) => earlier.with_timezone(&Utc),
                LocalResult::None => {
                    match minute.checked_add_signed(TimeDelta::minutes(step + 1)) {
                        Some(next) => {
                            candidate = next;
                            continue;
                        }
                        None => break,
                    }
                }
            };
            return instant.clamp(earliest(), latest());
        }
        // No zone has a gap of a day; read the time as UTC rather than fail.
        Utc.from_utc_datetime(&t).clamp(earliest(), latest())
    }

    /// The local wall-clock time of an instant within the calendar's range.
    fn local(&self, t: DateTime<Utc>) -> NaiveDateTime {
        let t = t.clamp(earliest(), latest()).naive_utc();
        let offset = self.tz.offset_from_utc_datetime(&t).fix();
        // Within the range, adding an offset of under a day cannot overflow.
        t.checked_add_offset(offset).unwrap_or(t)
    }

    /// The same local wall-clock time `days` later, or [`latest`] when that
    /// is past the end of the calendar.
    pub fn add_days(&self, t: DateTime<Utc>, days: u32) -> DateTime<Utc> {
        self.local_days_after(self.local(t), days)
    }

    /// The instant `days` days after the local wall-clock time `t`, or
    /// [`latest`] when that is past the end of the calendar.
    pub fn local_days_after(&self, t: NaiveDateTime, days: u32) -> DateTime<Utc> {
        t.checked_add_days(Days::new(days.into()))
            .map_or_else(latest, |local| self.at_local(local))
    }

    /// `t` if a message may go then (see [`Calendar::is_open`]), else the
    /// first instant after it that is open. Urgent messages are never held.
    pub fn next_allowed(&self, t: DateTime<Utc>, urgent: bool) -> DateTime<Utc> {
        if urgent || self.is_open(t) {
            return t;
        }
        let boundaries = self.boundaries();
        let mut instant = t;
        let mut local = self.local(t);
        // From one boundary to the next: at most a few a day, and a week
        // always has an open one (a pattern names a day; quiet hours never
        // fill a day).
        for _ in 0..8 * 7 {
            let next = match boundaries.iter().find(|b| **b > local.time()) {
                Some(b) => Some(local.date().and_time(*b)),
                None => local
                    .date()
                    .checked_add_days(Days::new(1))
                    .map(|d| d.and_time(NaiveTime::MIN)),
            };
            // Past the end of the calendar there is no morning to wait for.
            let Some(next) = next else {
                return instant;
            };
            instant = self.at_local_after(next, instant);
            // A clock change may move the wall clock past the boundary.
            local = self.local(instant).max(next);
            if self.is_open_local(self.local(instant)) {
                return instant;
            }
        }
        instant
    }

    /// A local time as people read it, e.g. "Tue 1 Dec 2026 09:30 GMT".
    pub fn format_local(&self, t: DateTime<Utc>) -> String {
        t.with_timezone(&self.tz)
            .format("%a %-d %b %Y %H:%M %Z")
            .to_string()
    }
}
