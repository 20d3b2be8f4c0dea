//! The ranges of the numbers a project's files set: day counts in rollouts,
//! and timeouts, rates and link lifetimes in `cascade.toml`. Each is checked
//! where its file is read, so the error names the line and says what to
//! write instead; the code that turns a number into a date or a duration
//! can then rely on it being small. Also the most a project file may
//! hold, checked before it is read.

use serde::{Deserialize, Deserializer};
use std::fmt::Display;
use std::io::Read;
use std::path::Path;

/// Why a file was not read.
#[derive(Debug)]
pub enum FileError {
    Io(std::io::Error),
    /// It holds `size` bytes, more than the `max` allowed.
    TooLarge {
        size: u64,
        max: u64,
    },
}

/// A text file read whole, or refused when it holds more than `max` bytes:
/// its size is looked at first, and no more than `max + 1` bytes are ever
/// read, so a file that grows meanwhile is refused too.
pub fn read_at_most(path: &Path, max: u64) -> Result<String, FileError> {
    let file = std::fs::File::open(path).map_err(FileError::Io)?;
    let size = file.metadata().map_err(FileError::Io)?.len();
    if size > max {
        return Err(FileError::TooLarge { size, max });
    }
    let mut text = String::new();
    file.take(max + 1)
        .read_to_string(&mut text)
        .map_err(FileError::Io)?;
    match u64::try_from(text.len()) {
        Ok(read) if read <= max => Ok(text),
        _ => Err(FileError::TooLarge { size: max + 1, max }),
    }
}

/// The range one setting must fall in, and a sensible value to suggest.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Bounds<T> {
    pub key: &'static str,
    pub min: T,
    pub max: T,
    pub example: T,
}

impl<T: Display + PartialOrd + Copy> Bounds<T> {
    /// What is wrong with `found`.
    pub fn message(&self, found: impl Display) -> String {
        format!(
            "{} must be between {} and {}, not {found}",
            self.key, self.min, self.max
        )
    }

    /// What to write instead.
    pub fn help(&self) -> String {
        format!("write e.g. {} = {}", self.key, self.example)
    }

    /// Both at once, for errors that carry one text.
    pub fn refusal(&self, found: impl Display) -> String {
        format!("{}; {}", self.message(found), self.help())
    }

    fn contains(&self, n: T) -> bool {
        self.min <= n && n <= self.max
    }
}

impl Bounds<u32> {
    /// The number if it is in range. Takes what TOML holds, a signed 64-bit
    /// integer, so negative and huge values are refused rather than wrapped.
    pub fn check(&self, n: i64) -> Result<u32, String> {
        u32::try_from(n)
            .ok()
            .filter(|n| self.contains(*n))
            .ok_or_else(|| self.refusal(n))
    }

    /// For `#[serde(deserialize_with)]`: TOML gives the refusal the value's line.
    pub fn deserialize<'de, D: Deserializer<'de>>(&self, d: D) -> Result<u32, D::Error> {
        self.check(i64::deserialize(d)?)
            .map_err(serde::de::Error::custom)
    }
}

impl Bounds<f64> {
    /// The number if it is in range; NaN and the infinities never are.
    pub fn check(&self, n: f64) -> Result<f64, String> {
        if self.contains(n) {
            Ok(n)
        } else {
            // Debug writes 1e300 as that rather than as 301 digits.
            Err(self.refusal(format!("{n:?}")))
        }
    }

    /// For `#[serde(deserialize_with)]` on an optional setting: TOML gives
    /// the refusal the value's line.
    pub fn deserialize_some<'de, D: Deserializer<'de>>(
        &self,
        d: D,
    ) -> Result<Option<f64>, D::Error> {
        self.check(f64::deserialize(d)?)
            .map(Some)
            .map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DAYS: Bounds<u32> = Bounds {
        key: "link_days",
        min: 1,
        max: 365,
        example: 60,
    };
    const SECONDS: Bounds<f64> = Bounds {
        key: "send_timeout_seconds",
        min: 0.1,
        max: 600.0,
        example: 30.0,
    };

    #[test]
    fn a_whole_number_outside_its_range_is_refused_with_what_to_write() {
        assert_eq!(DAYS.check(60), Ok(60));
        assert_eq!(DAYS.check(365), Ok(365));
        assert_eq!(
            DAYS.check(0),
            Err("link_days must be between 1 and 365, not 0; write e.g. link_days = 60".to_owned())
        );
        for n in [-1, 366, i64::from(u32::MAX) + 1, i64::MAX, i64::MIN] {
            assert!(
                DAYS.check(n)
                    .unwrap_err()
                    .ends_with(&format!("not {n}; write e.g. link_days = 60"))
            );
        }
    }

    #[test]
    fn a_file_over_its_limit_is_refused_with_its_size_and_one_at_the_limit_is_read() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f.md");
        std::fs::write(&path, "x".repeat(10)).unwrap();
        assert_eq!(read_at_most(&path, 10).unwrap().len(), 10);
        assert!(matches!(
            read_at_most(&path, 9),
            Err(FileError::TooLarge { size: 10, max: 9 })
        ));
        assert!(matches!(
            read_at_most(&dir.path().join("missing.md"), 9),
            Err(FileError::Io(_))
        ));
    }

    #[test]
    fn seconds_that_are_not_a_finite_number_in_range_are_refused() {
        assert_eq!(SECONDS.check(0.25), Ok(0.25));
        for n in [
            f64::NAN,
            f64::INFINITY,
            f64::NEG_INFINITY,
            -1.0,
            0.0,
            601.0,
            f64::MAX,
        ] {
            assert!(SECONDS.check(n).is_err(), "{n}");
        }
        assert_eq!(
            SECONDS.check(f64::NAN).unwrap_err(),
            "send_timeout_seconds must be between 0.1 and 600, not NaN; write e.g. send_timeout_seconds = 30"
        );
    }
}
