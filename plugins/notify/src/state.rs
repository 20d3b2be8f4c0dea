//! What is kept between sends: the pacing under Notify's per-minute limit
//! and the service's daily limit, and the journal of references already
//! sent, which tells a send after a crash to ask Notify first.

use std::collections::{HashSet, VecDeque};
use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

const MINUTE: Duration = Duration::from_secs(60);
const DAY_SECONDS: u64 = 86_400;
/// Notify lists notifications by reference for 7 days; older journal lines
/// are of no use.
const JOURNAL_KEEPS: Duration = Duration::from_secs(8 * DAY_SECONDS);

/// Why a request may not go yet, and how long until it may.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Wait {
    /// Notify's requests a minute are used up.
    Minute(Duration),
    /// The service's messages today are used up; they start again at
    /// midnight UTC (which is at or after midnight in London).
    Day(Duration),
}

struct Windows {
    recent: VecDeque<Instant>,
    day: u64,
    today: u32,
}

/// Notify's per-minute limit (every request counts) and the daily limit
/// (messages only). Time is a parameter.
pub struct Pacing {
    per_minute: usize,
    per_day: Option<u32>,
    windows: Mutex<Windows>,
}

impl Pacing {
    pub fn new(per_minute: u32, per_day: Option<u32>) -> Pacing {
        Pacing {
            per_minute: per_minute as usize,
            per_day,
            windows: Mutex::new(Windows {
                recent: VecDeque::new(),
                day: 0,
                today: 0,
            }),
        }
    }

    /// Takes a slot for one request at `now` (`unix` seconds since the
    /// epoch, for the day), a message when `message`; otherwise how long to
    /// wait. A refused request takes nothing.
    pub fn take(&self, now: Instant, unix: u64, message: bool) -> Result<(), Wait> {
        let mut w = self.windows.lock().unwrap_or_else(PoisonError::into_inner);
        let day = unix / DAY_SECONDS;
        if w.day != day {
            w.day = day;
            w.today = 0;
        }
        if message && self.per_day.is_some_and(|limit| w.today >= limit) {
            return Err(Wait::Day(Duration::from_secs(
                (day + 1) * DAY_SECONDS - unix,
            )));
        }
        while w
            .recent
            .front()
            .is_some_and(|t| now.saturating_duration_since(*t) >= MINUTE)
        {
            w.recent.pop_front();
        }
        if w.recent.len() >= self.per_minute {
            let oldest = w.recent[w.recent.len() - self.per_minute];
            return Err(Wait::Minute(
                (oldest + MINUTE).saturating_duration_since(now),
            ));
        }
        w.recent.push_back(now);
        if message {
            w.today += 1;
        }
        Ok(())
    }

    /// Gives back a message slot of today when Notify did not take the
    /// message after all.
    pub fn give_back(&self) {
        let mut w = self.windows.lock().unwrap_or_else(PoisonError::into_inner);
        w.today = w.today.saturating_sub(1);
    }
}

#[cfg(unix)]
fn private(options: &mut OpenOptions) -> &mut OpenOptions {
    use std::os::unix::fs::OpenOptionsExt;
    options.mode(0o600)
}

#[cfg(not(unix))]
fn private(options: &mut OpenOptions) -> &mut OpenOptions {
    options
}

/// Seconds since the epoch now.
pub fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// The references this channel has sent or started to send. With a file,
/// a reference is written (and synced) before its message goes, so after a
/// crash the journal still says it may be at Notify. Without one nothing
/// survives a restart, so every reference counts as possibly sent.
pub struct Journal {
    file: Option<Mutex<File>>,
    seen: Mutex<HashSet<String>>,
}

impl Journal {
    /// No file: every send asks Notify first.
    pub fn none() -> Journal {
        Journal {
            file: None,
            seen: Mutex::new(HashSet::new()),
        }
    }

    /// Opens (or creates) the journal at `path`, dropping lines older than
    /// Notify keeps notifications.
    pub fn open(path: &Path) -> Result<Journal, String> {
        let shown = path.display();
        let now = unix_now();
        let mut kept = Vec::new();
        match File::open(path) {
            Ok(file) => {
                for line in BufReader::new(file).lines() {
                    let line = line.map_err(|e| format!("cannot read the journal {shown}: {e}"))?;
                    let Some((at, key)) = line.split_once(' ') else {
                        continue;
                    };
                    if at
                        .parse::<u64>()
                        .is_ok_and(|at| now.saturating_sub(at) < JOURNAL_KEEPS.as_secs())
                    {
                        kept.push((at.to_owned(), key.to_owned()));
                    }
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(format!("cannot read the journal {shown}: {e}")),
        }
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir)
                .map_err(|e| format!("cannot make the journal's folder for {shown}: {e}"))?;
        }
        let fresh: PathBuf = path.with_extension("new");
        // Only cascade's user may read it: references hold person ids.
        let mut out = private(OpenOptions::new().write(true).create(true).truncate(true))
            .open(&fresh)
            .map_err(|e| format!("cannot write the journal {shown}: {e}"))?;
        for (at, key) in &kept {
            writeln!(out, "{at} {key}").map_err(|e| format!("cannot write {shown}: {e}"))?;
        }
        out.sync_all()
            .map_err(|e| format!("cannot write {shown}: {e}"))?;
        std::fs::rename(&fresh, path).map_err(|e| format!("cannot write {shown}: {e}"))?;
        let file = OpenOptions::new()
            .append(true)
            .open(path)
            .map_err(|e| format!("cannot open the journal {shown}: {e}"))?;
        Ok(Journal {
            file: Some(Mutex::new(file)),
            seen: Mutex::new(kept.into_iter().map(|(_, key)| key).collect()),
        })
    }

    /// Whether a message with this reference may already be at Notify.
    pub fn may_have_sent(&self, reference: &str) -> bool {
        self.file.is_none()
            || reference.contains('\n')
            || self
                .seen
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .contains(reference)
    }

    /// Notes that a message with this reference is about to go; it must be
    /// on disk before it is sent.
    pub fn note(&self, reference: &str) -> Result<(), String> {
        let Some(file) = &self.file else {
            return Ok(());
        };
        if reference.contains('\n') {
            return Ok(());
        }
        let mut file = file.lock().unwrap_or_else(PoisonError::into_inner);
        writeln!(file, "{} {reference}", unix_now())
            .and_then(|()| file.sync_data())
            .map_err(|e| format!("cannot write the journal: {e}"))?;
        self.seen
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(reference.to_owned());
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_minute_window_defers_the_request_over_the_limit() {
        let pacing = Pacing::new(3, None);
        let t0 = Instant::now();
        for i in 0..3 {
            assert_eq!(pacing.take(t0 + Duration::from_secs(i), 1000, true), Ok(()));
        }
        assert_eq!(
            pacing.take(t0 + Duration::from_secs(10), 1000, true),
            Err(Wait::Minute(Duration::from_secs(50)))
        );
        assert_eq!(
            pacing.take(t0 + Duration::from_secs(60), 1000, true),
            Ok(())
        );
    }

    #[test]
    fn the_daily_limit_waits_for_midnight_utc() {
        let pacing = Pacing::new(3000, Some(2));
        let t0 = Instant::now();
        let noon = 20_000 * DAY_SECONDS + 12 * 3600;
        assert_eq!(pacing.take(t0, noon, true), Ok(()));
        // A look-up is not a message.
        assert_eq!(pacing.take(t0, noon, false), Ok(()));
        assert_eq!(pacing.take(t0, noon, true), Ok(()));
        assert_eq!(
            pacing.take(t0, noon, true),
            Err(Wait::Day(Duration::from_secs(12 * 3600)))
        );
        assert_eq!(pacing.take(t0, noon + 12 * 3600, true), Ok(()));
    }

    #[test]
    fn the_journal_survives_a_reopen() {
        let dir = std::env::temp_dir().join(format!("notify-journal-{}", std::process::id()));
        let path = dir.join("sent.journal");
        let journal = Journal::open(&path).unwrap();
        assert!(!journal.may_have_sent("r1"));
        journal.note("r1").unwrap();
        assert!(journal.may_have_sent("r1"));
        drop(journal);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        let again = Journal::open(&path).unwrap();
        assert!(again.may_have_sent("r1"));
        assert!(!again.may_have_sent("r2"));
        assert!(Journal::none().may_have_sent("r2"));
        std::fs::remove_dir_all(dir).unwrap();
    }
}
