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
