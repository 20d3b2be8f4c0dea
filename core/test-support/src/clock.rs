//! A clock a test sets and moves by hand, for code that takes its time
//! from a function (such as the server's `Clock`).

use chrono::{DateTime, Duration, Utc};
use std::sync::{Arc, Mutex};

/// A shared, settable time. Clones share it: moving one moves them all.
#[derive(Debug, Clone)]
pub struct FakeClock(Arc<Mutex<DateTime<Utc>>>);

impl FakeClock {
    /// A clock showing `now` until it is moved.
    pub fn at(now: DateTime<Utc>) -> FakeClock {
        FakeClock(Arc::new(Mutex::new(now)))
    }

    pub fn now(&self) -> DateTime<Utc> {
        *self.0.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn set(&self, now: DateTime<Utc>) {
        *self.0.lock().unwrap_or_else(|p| p.into_inner()) = now;
    }

    pub fn advance(&self, by: Duration) {
        *self.0.lock().unwrap_or_else(|p| p.into_inner()) += by;
    }

    /// The clock as a shared function of no arguments, the shape of
    /// `cascade_server::Clock`.
    pub fn as_fn(&self) -> Arc<dyn Fn() -> DateTime<Utc> + Send + Sync> {
        let clock = self.clone();
        Arc::new(move || clock.now())
    }
}
