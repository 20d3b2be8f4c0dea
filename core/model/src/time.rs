//! Time in the store's unit. Every timestamp the store keeps is Unix
//! milliseconds in UTC; calendars and quiet hours convert at the edge
//! (`rollout::Calendar`), and every function that depends on the time takes
//! `now` so tests drive a clock by hand.

use chrono::{DateTime, Utc};

/// Unix milliseconds of a UTC time, the store's unit.
pub fn millis(t: DateTime<Utc>) -> i64 {
    t.timestamp_millis()
}

/// The UTC time of Unix milliseconds.
pub fn from_millis(ms: i64) -> DateTime<Utc> {
    DateTime::from_timestamp_millis(ms).unwrap_or_default()
}

/// The IANA time zone `name` (e.g. "Europe/London"), or an error naming
/// it with the closest known name or an example.
pub fn time_zone(name: &str) -> Result<chrono_tz::Tz, String> {
    name.trim().parse::<chrono_tz::Tz>().map_err(|_| {
        let lowered = name.to_lowercase();
        let closest = chrono_tz::TZ_VARIANTS
            .iter()
            .map(|tz| tz.name())
            .map(|c| (strsim::jaro_winkler(&lowered, &c.to_lowercase()), c))
            .filter(|(score, _)| *score >= 0.8)
            .max_by(|a, b| a.0.total_cmp(&b.0).then_with(|| b.1.cmp(a.1)))
            .map(|(_, c)| c);
        let hint = match closest {
            Some(found) => format!("did you mean \"{found}\"?"),
            None => "use an IANA zone name such as \"Europe/London\"".to_owned(),
        };
        format!("unknown time zone \"{name}\"; {hint}")
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn millis_round_trip() {
        let t = DateTime::parse_from_rfc3339("2026-03-02T09:30:00.125Z")
            .unwrap()
            .with_timezone(&Utc);
        assert_eq!(from_millis(millis(t)), t);
        assert_eq!(from_millis(i64::MAX), DateTime::<Utc>::default());
    }
}
