//! Wake-ups for an idle `cascade serve` (issue 18): instead of looking at
//! the outbox several times a second, an idle serve asks the store when
//! its next work falls due ([`Wakeups::next_due_at`]) and waits until then
//! or until the store says work may have come ([`Wakeups::wait_for_work`]).
//!
//! On PostgreSQL, triggers notify the channel [`WAKE_CHANNEL`] when rows
//! are queued or made due sooner, whichever process writes them, and every
//! serve listens on it, so several serves on one database stay idle
//! without polling it. SQLite hears only its own process's writes (and
//! other processes, such as `cascade rollout start`, write its file too),
//! so a serve on SQLite keeps looking every fraction of a second.
//!
//! A wake-up is a hint: one may come with nothing due (another process was
//! quicker), and one may be lost (a dropped connection), which costs no
//! more than the caller's longest wait.

use super::StoreError;
use std::future::Future;
use std::time::Duration;

/// The PostgreSQL notification channel the store's triggers signal and
/// its listener listens on.
pub const WAKE_CHANNEL: &str = "cascade_due";

/// Why [`Wakeups::wait_for_work`] returned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Wake {
    /// A write that may have queued work or made it due sooner (or the
    /// listener lost its connection, and with it what was said meanwhile).
    Work,
    /// The wait ran its whole length without a wake-up.
    TimedOut,
}

/// What an idle serve waits on.
pub trait Wakeups: Send + Sync {
    /// Whether [`wait_for_work`](Self::wait_for_work) wakes for writes
    /// made by other processes, right now. PostgreSQL: once its listener
    /// is connected and listening (it starts with the first wait, and
    /// reconnects after a lost connection). SQLite: never. While false, a
    /// caller must look at the store itself as often as it wants to see
    /// other processes' work.
    fn hears_other_writers(&self) -> bool;

    /// Waits until a write may have queued work or made work due sooner
    /// (on PostgreSQL, written by any process; on SQLite, by this process
    /// through this store), or until `at_most` has passed. Many may wait
    /// at once; a wake-up wakes them all.
    fn wait_for_work(&self, at_most: Duration) -> impl Future<Output = Wake> + Send;

    /// The earliest time (Unix ms) at which work of an active rollout
    /// falls due: an outbox row waiting to be sent (or retried), a
    /// member's next step or refresher, a team post, or the next edit
    /// after `now` of a team post whose count may still change. `None`
    /// when nothing is waiting. A time at or before `now` is work due now
    /// that a dispatcher did not take (its channel down, busy or at its
    /// quota). Leased rows are not counted: their lease is another
    /// dispatcher's, whose end a caller's longest wait covers.
    fn next_due_at(&self, now: i64)
    -> impl Future<Output = Result<Option<i64>, StoreError>> + Send;

    /// Whether the store answers now (a trivial query through its pool):
    /// what a serve asks after a failed round, to tell a database that
    /// went away (wait for it and carry on) from a fault of the round.
    fn reachable(&self) -> impl Future<Output = Result<(), StoreError>> + Send;
}

/// The five earliest times of [`Wakeups::next_due_at`] as one statement
/// reads them, each over its own index, in either store's SQL (`$1`, the
/// caller's `now`, is read by SQLite as `?1`).
pub(crate) const NEXT_DUE_AT: &str = "SELECT
    (SELECT o.due_at FROM outbox o JOIN rollouts r ON r.id = o.rollout_id
     WHERE o.state = 'due' AND r.state = 'active' ORDER BY o.due_at LIMIT 1),
    (SELECT m.next_due_at FROM rollout_members m JOIN rollouts r ON r.id = m.rollout_id
     WHERE m.next_due_at IS NOT NULL AND r.state = 'active' ORDER BY m.next_due_at LIMIT 1),
    (SELECT m.refresher_due_at FROM rollout_members m JOIN rollouts r ON r.id = m.rollout_id
     WHERE m.refresher_due_at IS NOT NULL AND m.acknowledged_at IS NOT NULL
       AND m.out_reason IS NULL AND r.state = 'active'
     ORDER BY m.refresher_due_at LIMIT 1),
    (SELECT tp.due_at FROM team_posts tp JOIN rollouts r ON r.id = tp.rollout_id
     WHERE tp.state IN ('planned', 'retry') AND r.state = 'active' ORDER BY tp.due_at LIMIT 1),
    (SELECT tp.edit_due_at FROM team_posts tp JOIN rollouts r ON r.id = tp.rollout_id
     WHERE tp.state = 'sent' AND tp.edit_due_at > $1 AND tp.provider_id IS NOT NULL
       AND tp.shown_acknowledged < tp.shown_total AND r.state <> 'cancelled'
     ORDER BY tp.edit_due_at LIMIT 1)";

/// The row [`NEXT_DUE_AT`] reads: each kind of work's earliest time.
pub(crate) type DueTimes = (
    Option<i64>,
    Option<i64>,
    Option<i64>,
    Option<i64>,
    Option<i64>,
);

/// The earliest of the times [`NEXT_DUE_AT`] reads.
pub(crate) fn earliest(times: DueTimes) -> Option<i64> {
    let (a, b, c, d, e) = times;
    [a, b, c, d, e].into_iter().flatten().min()
}
