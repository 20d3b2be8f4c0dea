//! [`Wakeups`] on SQLite: in-process only. Other processes write the file
//! too (`cascade rollout start`, `cascade import`) and SQLite cannot tell
//! this one, so [`Wakeups::hears_other_writers`] is false and a serve
//! keeps looking at the store itself; what this store writes that brings
//! work (a rollout started from the console, resumed, dead letters queued
//! again) wakes its waiters at once.

use super::SqliteStore;
use crate::wakeups::{NEXT_DUE_AT, earliest};
use crate::{StoreError, Wake, Wakeups};
use std::time::Duration;

impl SqliteStore {
    /// Wakes every waiter of [`Wakeups::wait_for_work`] on this store.
    pub(super) fn woken(&self) {
        self.wake.notify_waiters();
    }
}

impl Wakeups for SqliteStore {
    fn hears_other_writers(&self) -> bool {
        false
    }

    async fn wait_for_work(&self, at_most: Duration) -> Wake {
        tokio::select! {
            () = self.wake.notified() => Wake::Work,
            () = tokio::time::sleep(at_most) => Wake::TimedOut,
        }
    }

    async fn reachable(&self) -> Result<(), StoreError> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }

    async fn next_due_at(&self, now: i64) -> Result<Option<i64>, StoreError> {
        Ok(earliest(
            sqlx::query_as(NEXT_DUE_AT)
                .bind(now)
                .fetch_one(&self.pool)
                .await?,
        ))
    }
}
