//! Recurring bulletins: a rollout with a schedule (`[bulletin]` in its
//! file) that, at each occurrence, gathers the items published since the
//! last one into one digest and sends it as a rollout of its own. This
//! module holds the schedule's syntax and its arithmetic: when each
//! occurrence falls, in the partnership's local time (so 09:00 stays 09:00
//! across a clock change). Pure: time is always a parameter.
//!
//! The syntax, as written in the file:
//!
//! - `every`: `"week"`, `"N weeks"` (1 to 52), `"fortnight"`, `"month"` or
//!   `"N months"` (1 to 12), counted from the first occurrence.
//! - `on`: for weeks a weekday (`"Monday"`); for months `"first Tuesday"`
//!   (`first`, `second`, `third`, `fourth` or `last`), a day of the month
//!   from 1 to 28 (`on = 15`), or `"last day"`.
//! - `at`: the local time, `"HH:MM"`; 09:00 when left out.

use super::Calendar;
use chrono::{DateTime, Datelike, Days, NaiveDate, NaiveDateTime, NaiveTime, Utc, Weekday};
use serde::{Deserialize, Serialize};
use std::fmt;

/// The most weeks between two occurrences of a weekly bulletin.
pub const MAX_WEEKS: u32 = 52;
/// The most months between two occurrences of a monthly bulletin.
pub const MAX_MONTHS: u32 = 12;
/// The latest day of the month `on` may name: every month has it.
pub const MAX_DAY_OF_MONTH: u32 = 28;

/// A recurring bulletin: its name, its schedule, and what it gathers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Bulletin {
    /// The bulletin's name, the title of every issue ("Practice bulletin").
    pub title: String,
    pub every: Every,
    pub on: On,
    /// Local wall-clock time of each occurrence.
    #[serde(with = "hh_mm")]
    pub at: NaiveTime,
    /// Items with any of these themes are gathered.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub themes: Vec<String>,
    /// Articles of this newsletter are gathered.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub newsletter: Option<String>,
}

/// How often a bulletin comes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub enum Every {
    Weeks(u32),
    Months(u32),
}

/// Which day of its week or month a bulletin comes on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub enum On {
    /// A weekly bulletin's weekday.
    Weekday(Weekday),
    /// The first (1) to fourth (4) weekday of the month, or the last (`None`).
    Nth(Option<u8>, Weekday),
    /// A day of the month, 1 to 28.
    Day(u32),
    /// The month's last day.
    LastDay,
}

const ORDINALS: [&str; 4] = ["first", "second", "third", "fourth"];

fn weekday_name(d: Weekday) -> &'static str {
    match d {
        Weekday::Mon => "Monday",
        Weekday::Tue => "Tuesday",
        Weekday::Wed => "Wednesday",
        Weekday::Thu => "Thursday",
        Weekday::Fri => "Friday",
        Weekday::Sat => "Saturday",
        Weekday::Sun => "Sunday",
    }
}

/// A weekday written in full or as its first three letters, any case.
fn weekday(text: &str) -> Option<Weekday> {
    let lower = text.trim().to_lowercase();
    [
        Weekday::Mon,
        Weekday::Tue,
        Weekday::Wed,
        Weekday::Thu,
        Weekday::Fri,
        Weekday::Sat,
        Weekday::Sun,
    ]
    .into_iter()
    .find(|d| {
        let name = weekday_name(*d).to_lowercase();
        lower == name || lower == name[..3]
    })
}

impl Every {
    /// `"week"`, `"2 weeks"`, `"fortnight"`, `"month"`, `"3 months"`; the
    /// error is the help to show.
    pub fn parse(text: &str) -> Result<Every, String> {
        let help = "write every = \"week\", \"2 weeks\", \"month\" or \"3 months\" (weeks from 1 to 52, months from 1 to 12)".to_owned();
        let lower = text.trim().to_lowercase();
        if lower == "fortnight" {
            return Ok(Every::Weeks(2));
        }
        let (count, unit) = match lower.split_once(' ') {
            Some((n, unit)) => (
                n.trim().parse::<u32>().map_err(|_| help.clone())?,
                unit.trim(),
            ),
            None => (1, lower.as_str()),
        };
        let every = match unit {
            "week" | "weeks" => Every::Weeks(count),
            "month" | "months" => Every::Months(count),
            _ => return Err(help),
        };
        match every {
            Every::Weeks(n) if (1..=MAX_WEEKS).contains(&n) => Ok(every),
            Every::Months(n) if (1..=MAX_MONTHS).contains(&n) => Ok(every),
            _ => Err(help),
        }
    }
}

impl fmt::Display for Every {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Every::Weeks(1) => f.write_str("week"),
            Every::Weeks(n) => write!(f, "{n} weeks"),
            Every::Months(1) => f.write_str("month"),
            Every::Months(n) => write!(f, "{n} months"),
        }
    }
}

impl TryFrom<String> for Every {
    type Error = String;
    fn try_from(text: String) -> Result<Every, String> {
        Every::parse(&text)
    }
}

impl From<Every> for String {
    fn from(every: Every) -> String {
        every.to_string()
    }
}

impl On {
    /// The day as written, for a bulletin that comes every `every`; the
    /// error is the help to show.
    pub fn parse(text: &str, every: Every) -> Result<On, String> {
        let lower = text.trim().to_lowercase();
        match every {
            Every::Weeks(_) => weekday(&lower).map(On::Weekday).ok_or_else(|| {
                "a weekly bulletin comes on a weekday: write e.g. on = \"Monday\"".to_owned()
            }),
            Every::Months(_) => {
                let help = "a monthly bulletin comes on e.g. on = \"first Tuesday\" (first, second, third, fourth or last), on = 15 (a day from 1 to 28) or on = \"last day\"";
                if lower == "last day" {
                    return Ok(On::LastDay);
                }
                if let Ok(day) = lower.parse::<u32>() {
                    return if (1..=MAX_DAY_OF_MONTH).contains(&day) {
                        Ok(On::Day(day))
                    } else {
                        Err(format!(
                            "day {day} is not in every month; {help}; for the end of the month write on = \"last day\""
                        ))
                    };
                }
                let (nth, day) = lower.split_once(' ').ok_or_else(|| help.to_owned())?;
                let day = weekday(day).ok_or_else(|| help.to_owned())?;
                if nth == "last" {
                    return Ok(On::Nth(None, day));
                }
                let n = ORDINALS
                    .iter()
                    .position(|o| *o == nth)
                    .ok_or_else(|| help.to_owned())?;
                Ok(On::Nth(Some(n as u8 + 1), day))
            }
        }
    }

    /// The day of `month` (first day) this names, for monthly bulletins.
    fn in_month(self, first: NaiveDate) -> Option<NaiveDate> {
        let next_month = first.checked_add_months(chrono::Months::new(1))?;
        let last = next_month.pred_opt()?;
        match self {
            On::Day(d) => first.with_day(d),
            On::LastDay => Some(last),
            On::Nth(Some(n), day) => {
                let offset =
                    (7 + day.num_days_from_monday() - first.weekday().num_days_from_monday()) % 7;
                first.checked_add_days(Days::new(u64::from(offset) + 7 * u64::from(n - 1)))
            }
            On::Nth(None, day) => {
                let back =
                    (7 + last.weekday().num_days_from_monday() - day.num_days_from_monday()) % 7;
                last.checked_sub_days(Days::new(back.into()))
            }
            // Refused for monthly bulletins when parsed.
            On::Weekday(_) => None,
        }
    }
}

impl fmt::Display for On {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            On::Weekday(d) => f.write_str(weekday_name(*d)),
            On::Nth(Some(n), d) => {
                write!(f, "{} {}", ORDINALS[usize::from(*n) - 1], weekday_name(*d))
            }
            On::Nth(None, d) => write!(f, "last {}", weekday_name(*d)),
            On::Day(d) => write!(f, "{d}"),
            On::LastDay => f.write_str("last day"),
        }
    }
}

impl TryFrom<String> for On {
    type Error = String;
    fn try_from(text: String) -> Result<On, String> {
        // Stored definitions were checked when parsed: the form says which.
        On::parse(&text, Every::Months(1)).or_else(|_| On::parse(&text, Every::Weeks(1)))
    }
}

impl From<On> for String {
    fn from(on: On) -> String {
        on.to_string()
    }
}

mod hh_mm {
    use chrono::NaiveTime;
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(t: &NaiveTime, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&t.format("%H:%M").to_string())
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<NaiveTime, D::Error> {
        let text = String::deserialize(d)?;
        NaiveTime::parse_from_str(&text, "%H:%M").map_err(serde::de::Error::custom)
    }
}

/// An `"HH:MM"` local time; the error is the help to show.
pub fn parse_at(text: &str) -> Result<NaiveTime, String> {
    NaiveTime::parse_from_str(text.trim(), "%H:%M")
        .map_err(|_| "write the local time as hours and minutes, e.g. at = \"09:00\"".to_owned())
}

/// The first day of the month `index` months after January of year 0.
fn month_start(index: i64) -> Option<NaiveDate> {
    let year = i32::try_from(index.div_euclid(12)).ok()?;
    NaiveDate::from_ymd_opt(year, u32::try_from(index.rem_euclid(12)).ok()? + 1, 1)
}

fn month_index(d: NaiveDate) -> i64 {
    i64::from(d.year()) * 12 + i64::from(d.month0())
}

impl Bulletin {
    /// "every month on the first Tuesday at 09:00".
    pub fn describe(&self) -> String {
        let on = match self.on {
            On::Weekday(d) => weekday_name(d).to_owned(),
            On::Day(d) => format!("day {d}"),
            other => format!("the {other}"),
        };
        format!(
            "every {} on {on} at {}",
            self.every,
            self.at.format("%H:%M")
        )
    }

    /// The local date and time of occurrence `k` (0 is the first) of a
    /// bulletin that starts at the local time `start`: the first is the
    /// first at or after `start`, the others every `every` after it.
    /// `None` past the end of the calendar.
    pub fn occurrence(&self, start: NaiveDateTime, k: u32) -> Option<NaiveDateTime> {
        match self.every {
            Every::Weeks(n) => {
                let On::Weekday(day) = self.on else {
                    return None;
                };
                let ahead =
                    (7 + day.num_days_from_monday() - start.weekday().num_days_from_monday()) % 7;
                let mut first = start.date().checked_add_days(Days::new(ahead.into()))?;
                if first.and_time(self.at) < start {
                    first = first.checked_add_days(Days::new(7))?;
                }
                first
                    .checked_add_days(Days::new(7 * u64::from(n) * u64::from(k)))
                    .map(|d| d.and_time(self.at))
            }
            Every::Months(n) => {
                let mut first = month_index(start.date());
                let in_start_month = self.on.in_month(month_start(first)?)?;
                if in_start_month.and_time(self.at) < start {
                    first += 1;
                }
                let month = month_start(first + i64::from(n) * i64::from(k))?;
                self.on.in_month(month).map(|d| d.and_time(self.at))
            }
        }
    }

    /// The instant of occurrence `k`, read in the partnership's zone: a
    /// time in a spring-forward gap is the first instant after it, one in
    /// an autumn fold the earlier.
    pub fn occurrence_at(
        &self,
        start: NaiveDateTime,
        k: u32,
        calendar: &Calendar,
    ) -> Option<DateTime<Utc>> {
        self.occurrence(start, k).map(|t| calendar.at_local(t))
    }

    /// The number of the last occurrence at or before `now`, if one is.
    pub fn last_due(
        &self,
        start: NaiveDateTime,
        calendar: &Calendar,
        now: DateTime<Utc>,
    ) -> Option<u32> {
        let due = |k: u32| {
            self.occurrence_at(start, k, calendar)
                .is_some_and(|t| t <= now)
        };
        if !due(0) {
            return None;
        }
        // Jump close below the answer, then step: a period is at least 7
        // days a week and at most 31 days a month.
        let local = now.with_timezone(&calendar.time_zone()).naive_local();
        let days = (local - start).num_days().max(0) as u64;
        let longest = match self.every {
            Every::Weeks(n) => 7 * u64::from(n),
            Every::Months(n) => 31 * u64::from(n),
        };
        let mut k = u32::try_from((days / longest).saturating_sub(1)).unwrap_or(u32::MAX / 2);
        while k > 0 && !due(k) {
            k /= 2;
        }
        while due(k + 1) {
            k += 1;
        }
        Some(k)
    }

    /// The first occurrence after `now`, as an instant.
    pub fn next_after(
        &self,
        start: NaiveDateTime,
        calendar: &Calendar,
        now: DateTime<Utc>,
    ) -> Option<DateTime<Utc>> {
        let k = self.last_due(start, calendar, now).map_or(0, |k| k + 1);
        self.occurrence_at(start, k, calendar)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rollout::QuietHours;
    use chrono::TimeZone;

    fn london() -> Calendar {
        Calendar::new("Europe/London", QuietHours::default()).expect("a zone")
    }

    fn local(text: &str) -> NaiveDateTime {
        NaiveDateTime::parse_from_str(text, "%Y-%m-%d %H:%M").expect("a local time")
    }

    fn utc(text: &str) -> DateTime<Utc> {
        Utc.from_utc_datetime(&local(text))
    }

    fn bulletin(every: &str, on: &str, at: &str) -> Bulletin {
        let every = Every::parse(every).expect("every");
        Bulletin {
            title: "Practice bulletin".into(),
            every,
            on: On::parse(on, every).expect("on"),
            at: parse_at(at).expect("at"),
            themes: vec!["neglect".into()],
            newsletter: None,
        }
    }

    #[test]
    fn the_syntax_reads_weeks_months_and_days_and_writes_them_back() {
        for (every, on) in [
            ("week", "Monday"),
            ("2 weeks", "Friday"),
            ("month", "first Tuesday"),
            ("2 months", "last Friday"),
            ("3 months", "15"),
            ("month", "last day"),
        ] {
            let b = bulletin(every, on, "09:00");
            assert_eq!(b.every.to_string(), every);
            assert_eq!(b.on.to_string(), on);
            let json = serde_json::to_string(&b).expect("plain data");
            assert_eq!(
                serde_json::from_str::<Bulletin>(&json).expect("reads back"),
                b
            );
        }
        assert_eq!(Every::parse("Fortnight"), Ok(Every::Weeks(2)));
        assert_eq!(
            On::parse("Tue", Every::Weeks(1)),
            Ok(On::Weekday(Weekday::Tue))
        );
        assert_eq!(
            bulletin("month", "first Tuesday", "09:30").describe(),
            "every month on the first Tuesday at 09:30"
        );
    }

    #[test]
    fn periods_and_days_cascade_does_not_know_are_refused_with_what_to_write() {
        for bad in [
            "day",
            "3 days",
            "0 weeks",
            "13 months",
            "53 weeks",
            "monthly",
            "x weeks",
        ] {
            let help = Every::parse(bad).expect_err(bad);
            assert!(help.contains("every = \"week\""), "{bad}: {help}");
        }
        assert!(On::parse("first Tuesday", Every::Weeks(1)).is_err());
        assert!(On::parse("Tuesday", Every::Months(1)).is_err());
        assert!(On::parse("fifth Monday", Every::Months(1)).is_err());
        let help = On::parse("31", Every::Months(1)).expect_err("31 is not in every month");
        assert!(help.contains("last day"), "{help}");
        assert!(parse_at("9am").is_err() && parse_at("25:00").is_err());
    }

    #[test]
    fn a_monthly_bulletin_on_the_first_tuesday_falls_on_each_month_s_first_tuesday() {
        let b = bulletin("month", "first Tuesday", "09:00");
        let start = local("2026-12-01 10:00");
        // 1 December 2026 is a Tuesday, but 09:00 is before the start.
        let dates: Vec<String> = (0..4)
            .map(|k| {
                b.occurrence(start, k)
                    .expect("a date")
                    .format("%Y-%m-%d")
                    .to_string()
            })
            .collect();
        assert_eq!(
            dates,
            ["2027-01-05", "2027-02-02", "2027-03-02", "2027-04-06"]
        );
        let every_two = bulletin("2 months", "last day", "17:00");
        let dates: Vec<String> = (0..3)
            .map(|k| {
                every_two
                    .occurrence(local("2027-01-10 09:00"), k)
                    .expect("a date")
                    .format("%Y-%m-%d")
                    .to_string()
            })
            .collect();
        assert_eq!(dates, ["2027-01-31", "2027-03-31", "2027-05-31"]);
    }

    #[test]
    fn nine_o_clock_stays_nine_o_clock_local_across_both_clock_changes() {
        let cal = london();
        let b = bulletin("week", "Monday", "09:00");
        let start = local("2027-03-15 00:00");
        // Clocks go forward on Sunday 28 March 2027: 09:00 GMT, then 08:00 UTC.
        assert_eq!(
            b.occurrence_at(start, 1, &cal),
            Some(utc("2027-03-22 09:00"))
        );
        assert_eq!(
            b.occurrence_at(start, 2, &cal),
            Some(utc("2027-03-29 08:00"))
        );
        assert_eq!(b.last_due(start, &cal, utc("2027-03-29 07:59")), Some(1));
        assert_eq!(b.last_due(start, &cal, utc("2027-03-29 08:00")), Some(2));
        assert_eq!(
            b.next_after(start, &cal, utc("2027-03-22 09:00")),
            Some(utc("2027-03-29 08:00"))
        );
        // And back on Sunday 31 October 2027.
        let autumn = local("2027-10-18 00:00");
        assert_eq!(
            b.occurrence_at(autumn, 1, &cal),
            Some(utc("2027-10-25 08:00"))
        );
        assert_eq!(
            b.occurrence_at(autumn, 2, &cal),
            Some(utc("2027-11-01 09:00"))
        );
    }

    #[test]
    fn an_occurrence_in_the_missing_hour_comes_just_after_it_and_in_the_repeated_hour_once() {
        let cal = london();
        let spring = bulletin("month", "last Sunday", "01:30");
        let start = local("2027-03-01 00:00");
        // 01:30 on 28 March 2027 does not exist in London: 02:00 BST is next.
        assert_eq!(
            spring.occurrence_at(start, 0, &cal),
            Some(utc("2027-03-28 01:00"))
        );
        // 01:30 on 31 October 2027 happens twice: the first.
        assert_eq!(
            spring.occurrence_at(start, 7, &cal),
            Some(utc("2027-10-31 00:30"))
        );
    }

    #[test]
    fn the_last_due_occurrence_is_found_years_on_without_walking_every_one() {
        let cal = london();
        let b = bulletin("week", "Wednesday", "12:00");
        let start = local("2026-12-01 00:00");
        let k = b
            .last_due(start, &cal, utc("2036-12-01 00:00"))
            .expect("due");
        let at = b.occurrence_at(start, k, &cal).expect("a date");
        let next = b.occurrence_at(start, k + 1, &cal).expect("a date");
        assert!(at <= utc("2036-12-01 00:00") && next > utc("2036-12-01 00:00"));
        assert_eq!(b.last_due(start, &cal, utc("2026-12-02 11:59")), None);
        assert_eq!(b.last_due(start, &cal, utc("2026-12-02 12:00")), Some(0));
    }
}
