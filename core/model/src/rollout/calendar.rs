//! Time for rollouts: the partnership's zone and its quiet hours. Days are
//! added in local wall-clock time, so a 09:00 wave stays at 09:00 across a
//! clock change. No clock is read here; every instant is a parameter.
//! Arithmetic is checked: a date past the end of the calendar (which only
//! a day count that bypassed a rollout file's checks could reach) is held
//! at [`latest`], so it never comes, and nothing overflows.

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

/// The partnership's clock: its time zone and quiet hours.
#[derive(Debug, Clone, PartialEq)]
pub struct Calendar {
    tz: Tz,
    quiet: QuietHours,
}

impl Calendar {
    /// A calendar for an IANA zone name such as `Europe/London`.
    pub fn new(time_zone: &str, quiet: QuietHours) -> Result<Calendar, String> {
        match time_zone.trim().parse::<Tz>() {
            Ok(tz) => Ok(Calendar { tz, quiet }),
            Err(_) => {
                let names = chrono_tz::TZ_VARIANTS.iter().map(|tz| tz.name());
                let hint = match super::closest(time_zone, names) {
                    Some(name) => format!("did you mean \"{name}\"?"),
                    None => "use an IANA zone name such as \"Europe/London\"".to_owned(),
                };
                Err(format!("unknown time zone \"{time_zone}\"; {hint}"))
            }
        }
    }

    pub fn time_zone(&self) -> Tz {
        self.tz
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

    /// `t` if a message may go then, else the end of the quiet period it
    /// falls in. Urgent messages are never held.
    pub fn next_allowed(&self, t: DateTime<Utc>, urgent: bool) -> DateTime<Utc> {
        if urgent {
            return t;
        }
        let mut t = t;
        // A night ends on Saturday morning, then the weekend; a few hops at most.
        for _ in 0..8 {
            let local = self.local(t);
            let time = local.time();
            let next_date =
                if self.quiet.weekends && matches!(local.weekday(), Weekday::Sat | Weekday::Sun) {
                    let to_monday = 7 - u64::from(local.weekday().num_days_from_monday());
                    local.date().checked_add_days(Days::new(to_monday))
                } else if self.quiet.is_quiet_at(time) {
                    if time >= self.quiet.end {
                        local.date().checked_add_days(Days::new(1))
                    } else {
                        Some(local.date())
                    }
                } else {
                    return t;
                };
            // Past the end of the calendar there is no morning to wait for.
            let Some(date) = next_date else {
                return t;
            };
            t = self.at_local(date.and_time(self.quiet.end));
        }
        t
    }

    /// A local time as people read it, e.g. "Tue 1 Dec 2026 09:30 GMT".
    pub fn format_local(&self, t: DateTime<Utc>) -> String {
        t.with_timezone(&self.tz)
            .format("%a %-d %b %Y %H:%M %Z")
            .to_string()
    }
}
