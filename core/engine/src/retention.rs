//! `[retention]` in `cascade.toml`: how long each kind of personal data is
//! kept. Nothing is removed unless its key is set: a retention schedule is
//! the partnership's own decision. `cascade serve` applies it daily and
//! `cascade retention apply` on demand.

use cascade_store::RetentionCutoffs;
use chrono::{DateTime, Months, TimeDelta, Utc};
use serde::{Deserialize, Deserializer};
use std::fmt;

/// `[retention]`: each kind of data kept for a period, or (absent) for good.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RetentionConfig {
    /// Examples of practice typed in answer to a follow-up, e.g. "2 years".
    #[serde(default)]
    pub follow_up_examples: Option<Period>,
    /// Champions' free-text notes on cascade confirmations.
    #[serde(default)]
    pub confirmation_notes: Option<Period>,
    /// People who left (no longer in people.csv) are erased this long after
    /// they left, e.g. "6 years".
    #[serde(default)]
    pub inactive_people: Option<Period>,
    /// Repeat-acknowledgement log, refused-attempt counts and failed
    /// sign-ins, e.g. "1 year".
    #[serde(default)]
    pub logs: Option<Period>,
    /// The console's audit log of changes.
    #[serde(default)]
    pub audit_log: Option<Period>,
}

impl RetentionConfig {
    /// Whether any kind of data has a period.
    pub fn is_set(&self) -> bool {
        *self != RetentionConfig::default()
    }

    /// The times before which each kind goes, at `now`.
    pub fn cutoffs(&self, now: DateTime<Utc>) -> RetentionCutoffs {
        let before = |p: Option<Period>| p.map(|p| p.before(now).timestamp_millis());
        RetentionCutoffs {
            follow_up_examples: before(self.follow_up_examples),
            confirmation_notes: before(self.confirmation_notes),
            inactive_people: before(self.inactive_people),
            logs: before(self.logs),
            audit_log: before(self.audit_log),
        }
    }

    /// Each key with its period, for the record of processing.
    pub fn entries(&self) -> [(&'static str, &'static str, Option<Period>); 5] {
        [
            (
                "follow_up_examples",
                "examples of practice typed in answer to follow-ups (emptied)",
                self.follow_up_examples,
            ),
            (
                "confirmation_notes",
                "champions' notes on cascade confirmations (emptied)",
                self.confirmation_notes,
            ),
            (
                "inactive_people",
                "people no longer in people.csv, after they left (erased)",
                self.inactive_people,
            ),
            (
                "logs",
                "repeat-acknowledgement log, refused-attempt counts, failed sign-ins (deleted)",
                self.logs,
            ),
            (
                "audit_log",
                "the console's audit log of changes (deleted)",
                self.audit_log,
            ),
        ]
    }
}

/// A period such as "90 days", "6 months", "2 years".
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Period {
    pub count: u32,
    pub unit: Unit,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unit {
    Days,
    Weeks,
    Months,
    Years,
}

impl Period {
    /// `now` less the period (calendar months and years).
    pub fn before(self, now: DateTime<Utc>) -> DateTime<Utc> {
        let months = |n: u32| now.checked_sub_months(Months::new(n));
        let days = |n: u32| now.checked_sub_signed(TimeDelta::days(i64::from(n)));
        match self.unit {
            Unit::Days => days(self.count),
            Unit::Weeks => days(self.count * 7),
            Unit::Months => months(self.count),
            Unit::Years => months(self.count * 12),
        }
        .unwrap_or(DateTime::<Utc>::MIN_UTC)
    }
}

impl fmt::Display for Period {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let unit = match self.unit {
            Unit::Days => "day",
            Unit::Weeks => "week",
            Unit::Months => "month",
            Unit::Years => "year",
        };
        let s = if self.count == 1 { "" } else { "s" };
        write!(f, "{} {unit}{s}", self.count)
    }
}

/// The longest period accepted, in each unit: 100 years.
const LONGEST: [(Unit, u32); 4] = [
    (Unit::Days, 36_500),
    (Unit::Weeks, 5_200),
    (Unit::Months, 1_200),
    (Unit::Years, 100),
];

impl std::str::FromStr for Period {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        let help = "write a whole number and days, weeks, months or years, e.g. \"2 years\" or \"90 days\"";
        let mut words = text.split_whitespace();
        let (Some(count), Some(unit), None) = (words.next(), words.next(), words.next()) else {
            return Err(format!("\"{text}\" is not a period; {help}"));
        };
        let unit = match unit.to_ascii_lowercase().as_str() {
            "day" | "days" => Unit::Days,
            "week" | "weeks" => Unit::Weeks,
            "month" | "months" => Unit::Months,
            "year" | "years" => Unit::Years,
            _ => return Err(format!("\"{unit}\" is not a unit of time; {help}")),
        };
        let longest = LONGEST.iter().find(|(u, _)| *u == unit).map_or(0, |l| l.1);
        match count.parse::<u32>() {
            Ok(count) if (1..=longest).contains(&count) => Ok(Period { count, unit }),
            Err(_) if !count.starts_with(|c: char| c.is_ascii_digit()) => Err(format!(
                "\"{text}\" does not start with a whole number; {help}"
            )),
            _ => Err(format!(
                "\"{text}\" is out of range; {help}, from 1 up to 100 years"
            )),
        }
    }
}

impl<'de> Deserialize<'de> for Period {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn periods_parse_and_count_back_in_calendar_time() {
        let p: Period = "2 years".parse().unwrap();
        assert_eq!(p.to_string(), "2 years");
        let now = DateTime::parse_from_rfc3339("2026-02-28T12:00:00Z")
            .unwrap()
            .with_timezone(&Utc);
        assert_eq!(p.before(now).to_rfc3339(), "2024-02-28T12:00:00+00:00");
        let p: Period = "90 days".parse().unwrap();
        assert_eq!(p.before(now).to_rfc3339(), "2025-11-30T12:00:00+00:00");
        assert_eq!("1 Year".parse::<Period>().unwrap().to_string(), "1 year");
    }
}
