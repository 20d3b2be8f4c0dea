//! When a person works: the optional `works` column of people.csv, such as
//! `Mon-Fri 08:00-18:00`, `Tue-Thu` or `nights`. Non-urgent messages to
//! someone with a pattern wait for their next working period.
//!
//! The grammar is a set of days, a period of hours, or both:
//!
//! - days: `Mon`, `Mon-Fri`, `Mon,Wed,Fri`, `Fri-Mon` (a range may wrap),
//!   three-letter or full English names in any case; every day when left out;
//! - hours: `08:00-18:00`, or one running past midnight such as
//!   `20:00-08:00`, which belongs to the day it starts on;
//! - `nights`: the hours `20:00-08:00`.
//!
//! Days without hours are working days at the partnership's hours: the
//! nightly quiet hours still hold, but the person's days replace quiet
//! weekends. Hours replace the partnership's quiet hours altogether, so a
//! night worker hears at the start of their shift.

use chrono::{Datelike, NaiveDateTime, NaiveTime, Weekday};
use std::fmt;

const DAY_NAMES: [&str; 7] = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"];
const FULL_NAMES: [&str; 7] = [
    "monday",
    "tuesday",
    "wednesday",
    "thursday",
    "friday",
    "saturday",
    "sunday",
];
const EVERY_DAY: u8 = 0b111_1111;

/// A working pattern: days of the week (bit 0 Monday) and, if given, the
/// hours of a shift starting on each of them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct WorkPattern {
    days: u8,
    hours: Option<(NaiveTime, NaiveTime)>,
}

/// How a `works` value is written, for error messages.
pub const WORKS_HELP: &str = "write days, hours or both, such as \"Mon-Fri 08:00-18:00\", \"Tue-Thu\", \"Mon,Wed 09:00-17:00\" or \"nights\" (every day 20:00-08:00), or leave it empty";

fn day(text: &str) -> Option<u8> {
    let lower = text.to_ascii_lowercase();
    FULL_NAMES
        .iter()
        .position(|full| lower == *full || (lower.len() == 3 && full.starts_with(&lower)))
        .and_then(|i| u8::try_from(i).ok())
}

fn time(text: &str) -> Option<NaiveTime> {
    NaiveTime::parse_from_str(text, "%H:%M").ok()
}

impl WorkPattern {
    /// Reads a `works` value; the error says what is wrong (the caller adds
    /// where and [`WORKS_HELP`]).
    pub fn parse(text: &str) -> Result<WorkPattern, String> {
        let words: Vec<&str> = text.split_whitespace().collect();
        let mut days = None;
        let mut hours = None;
        for word in &words {
            let lower = word.to_ascii_lowercase();
            if lower == "nights" || lower == "night" {
                if hours.is_some() {
                    return Err(format!("\"{text}\" gives hours twice"));
                }
                hours = Some((
                    NaiveTime::from_hms_opt(20, 0, 0).expect("20:00 is a time"),
                    NaiveTime::from_hms_opt(8, 0, 0).expect("08:00 is a time"),
                ));
            } else if word.starts_with(|c: char| c.is_ascii_digit()) {
                if hours.is_some() {
                    return Err(format!("\"{text}\" gives hours twice"));
                }
                let (from, to) = word
                    .split_once('-')
                    .and_then(|(a, b)| Some((time(a)?, time(b)?)))
                    .ok_or_else(|| format!("\"{word}\" is not a period of hours"))?;
                if from == to {
                    return Err(format!(
                        "\"{word}\" starts and ends at the same time; give the hours worked"
                    ));
                }
                hours = Some((from, to));
            } else {
                if days.is_some() {
                    return Err(format!("\"{text}\" gives days twice"));
                }
                let mut set = 0u8;
                for part in word.split(',').filter(|p| !p.is_empty()) {
                    let (a, b) = part.split_once('-').unwrap_or((part, part));
                    let (Some(a), Some(b)) = (day(a), day(b)) else {
                        return Err(format!("\"{part}\" is not a day or a range of days"));
                    };
                    let mut d = a;
                    loop {
                        set |= 1 << d;
                        if d == b {
                            break;
                        }
                        d = (d + 1) % 7;
                    }
                }
                if set == 0 {
                    return Err(format!("\"{word}\" names no day"));
                }
                days = Some(set);
            }
        }
        if days.is_none() && hours.is_none() {
            return Err("no days or hours are given".to_owned());
        }
        Ok(WorkPattern {
            days: days.unwrap_or(EVERY_DAY),
            hours,
        })
    }

    /// Whether the pattern names `day` as a working day.
    pub fn works_on(&self, day: Weekday) -> bool {
        self.days & (1 << day.num_days_from_monday()) != 0
    }

    /// The hours worked, if the pattern gives them.
    pub fn hours(&self) -> Option<(NaiveTime, NaiveTime)> {
        self.hours
    }

    /// Whether the local wall-clock time `t` is in a working period. With
    /// days only, `quiet_at(time)` says whether the partnership's nightly
    /// quiet hours hold then.
    pub fn is_working(&self, t: NaiveDateTime, quiet_at: impl Fn(NaiveTime) -> bool) -> bool {
        let (day, time) = (t.weekday(), t.time());
        match self.hours {
            None => self.works_on(day) && !quiet_at(time),
            Some((from, to)) if from < to => self.works_on(day) && from <= time && time < to,
            // A shift past midnight belongs to the day it started.
            Some((from, to)) => {
                (self.works_on(day) && time >= from) || (self.works_on(day.pred()) && time < to)
            }
        }
    }
}

impl fmt::Display for WorkPattern {
    /// The canonical form stored: e.g. `Mon-Fri 08:00-18:00`, `Tue,Thu`,
    /// `20:00-08:00` (every day).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut parts: Vec<String> = Vec::new();
        if self.days != EVERY_DAY || self.hours.is_none() {
            let mut runs: Vec<(usize, usize)> = Vec::new();
            for d in 0..7 {
                if self.days & (1 << d) == 0 {
                    continue;
                }
                match runs.last_mut() {
                    Some((_, end)) if *end + 1 == d => *end = d,
                    _ => runs.push((d, d)),
                }
            }
            let text: Vec<String> = runs
                .iter()
                .map(|&(a, b)| match b - a {
                    0 => DAY_NAMES[a].to_owned(),
                    1 => format!("{},{}", DAY_NAMES[a], DAY_NAMES[b]),
                    _ => format!("{}-{}", DAY_NAMES[a], DAY_NAMES[b]),
                })
                .collect();
            parts.push(text.join(","));
        }
        if let Some((from, to)) = self.hours {
            parts.push(format!("{}-{}", from.format("%H:%M"), to.format("%H:%M")));
        }
        f.write_str(&parts.join(" "))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::NaiveDate;

    fn at(d: u32, h: u32, m: u32) -> NaiveDateTime {
        // 2026-11-30 is a Monday.
        NaiveDate::from_ymd_opt(2026, 11, 30)
            .unwrap()
            .checked_add_days(chrono::Days::new(d.into()))
            .unwrap()
            .and_hms_opt(h, m, 0)
            .unwrap()
    }

    #[test]
    fn patterns_read_and_print_canonically() {
        for (text, canonical) in [
            ("Mon-Fri 08:00-18:00", "Mon-Fri 08:00-18:00"),
            ("mon-fri 08:00-18:00", "Mon-Fri 08:00-18:00"),
            ("Tue-Thu", "Tue-Thu"),
            ("nights", "20:00-08:00"),
            ("Monday,Wednesday 09:00-17:00", "Mon,Wed 09:00-17:00"),
            ("Fri-Mon nights", "Mon,Fri-Sun 20:00-08:00"),
            ("Mon,Tue", "Mon,Tue"),
            ("Mon-Sun", "Mon-Sun"),
        ] {
            let pattern = WorkPattern::parse(text).unwrap();
            assert_eq!(pattern.to_string(), canonical, "{text}");
            assert_eq!(WorkPattern::parse(canonical).unwrap(), pattern);
        }
        for bad in [
            "",
            "Mondays",
            "Mon-Fri 8-18",
            "09:00-09:00",
            "nights 08:00-18:00",
            "Mon Tue",
            "25:00-08:00",
        ] {
            assert!(WorkPattern::parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn working_periods() {
        let never_quiet = |_: NaiveTime| false;
        let day = WorkPattern::parse("Mon-Fri 08:00-18:00").unwrap();
        assert!(day.is_working(at(0, 8, 0), never_quiet));
        assert!(!day.is_working(at(0, 18, 0), never_quiet));
        assert!(!day.is_working(at(5, 10, 0), never_quiet), "Saturday");
        let nights = WorkPattern::parse("Mon-Fri nights").unwrap();
        assert!(nights.is_working(at(0, 20, 0), never_quiet));
        assert!(
            nights.is_working(at(1, 7, 59), never_quiet),
            "Monday's shift"
        );
        assert!(
            nights.is_working(at(5, 7, 0), never_quiet),
            "Friday's shift"
        );
        assert!(!nights.is_working(at(5, 21, 0), never_quiet), "Saturday");
        assert!(!nights.is_working(at(0, 7, 0), never_quiet), "Sunday's");
        let days = WorkPattern::parse("Tue-Thu").unwrap();
        let quiet = |t: NaiveTime| t < NaiveTime::from_hms_opt(8, 0, 0).unwrap();
        assert!(days.is_working(at(1, 9, 0), quiet));
        assert!(!days.is_working(at(1, 7, 0), quiet));
        assert!(!days.is_working(at(0, 9, 0), quiet));
    }
}
