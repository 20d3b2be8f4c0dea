//! Times written the short way.

use chrono::{DateTime, TimeZone, Utc};

/// The UTC time `y-mo-d h:mi:00`.
///
/// # Panics
/// If that is not a valid time.
pub fn utc(y: i32, mo: u32, d: u32, h: u32, mi: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(y, mo, d, h, mi, 0)
        .single()
        .unwrap_or_else(|| panic!("{y}-{mo}-{d} {h}:{mi} is not a time"))
}
