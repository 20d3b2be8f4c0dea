//! [`Wakeups`] on PostgreSQL: `LISTEN cascade_due` on a connection of its
//! own. The triggers of migration `20261215000001_work_notify` notify the
//! channel whenever any process queues outbox rows, makes them due again or
//! takes back a stopped serve's leases of them, adds members with a step to come, resumes a rollout, plans team posts,
//! or records an acknowledgement a sent team post's count may show.
//!
//! One listener per store (its clones share it), started by the first
//! wait: a task that wakes every waiter on each notification. A lost
//! connection is reconnected (and listened on again) by sqlx; the waiters
//! are woken then too, since whatever was notified meanwhile is lost, and
//! while it cannot reconnect [`Wakeups::hears_other_writers`] is false, so
//! a serve looks at the store itself until it can.

use super::PgStore;
use crate::wakeups::{NEXT_DUE_AT, earliest};
use crate::{StoreError, WAKE_CHANNEL, Wake, Wakeups};
use sqlx::postgres::{PgListener, PgPool};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;
use tokio::sync::Notify;

/// The first wait before connecting again after the listener failed to;
/// it doubles up to [`RECONNECT_LONGEST`].
const RECONNECT_FIRST: Duration = Duration::from_millis(500);
const RECONNECT_LONGEST: Duration = Duration::from_secs(30);

/// The listening connection and what its task shares with waiters.
#[derive(Debug)]
pub(super) struct Listener {
    /// A pool of one connection, opened only when the listener starts
    /// (its own, so the store's pool keeps every connection for queries,
    /// and closing the store's pool does not wait for it).
    pool: PgPool,
    shared: Arc<Heard>,
    /// The listening task, once started; ended when the store is dropped
    /// or closed.
    task: OnceLock<tokio::task::AbortHandle>,
}

#[derive(Debug, Default)]
struct Heard {
    wake: Notify,
    /// Connected and listening.
    listening: AtomicBool,
}

impl Listener {
    pub(super) fn new(pool: PgPool) -> Listener {
        Listener {
            pool,
            shared: Default::default(),
            task: OnceLock::new(),
        }
    }

    /// Starts the listening task unless it runs already.
    fn start(&self) {
        self.task.get_or_init(|| {
            tokio::spawn(listen(self.pool.clone(), Arc::clone(&self.shared))).abort_handle()
        });
    }

    /// Stops listening and closes the connection.
    pub(super) async fn close(&self) {
        if let Some(task) = self.task.get() {
            task.abort();
        }
        self.shared.listening.store(false, Ordering::SeqCst);
        self.pool.close().await;
    }
}

impl Drop for Listener {
    fn drop(&mut self) {
        if let Some(task) = self.task.get() {
            task.abort();
        }
    }
}

/// Listens until the task is aborted (or the pool closed), waking every
/// waiter on each notification and on each lost connection.
async fn listen(pool: PgPool, heard: Arc<Heard>) {
    /// Not listening any more once the task ends, however it ends.
    struct Ended(Arc<Heard>);
    impl Drop for Ended {
        fn drop(&mut self) {
            self.0.listening.store(false, Ordering::SeqCst);
        }
    }
    let _ended = Ended(Arc::clone(&heard));
    let mut wait = RECONNECT_FIRST;
    let mut listener: Option<PgListener> = None;
    loop {
        let outcome = match listener.as_mut() {
            None => match PgListener::connect_with(&pool).await {
                Ok(mut new) => match new.listen(WAKE_CHANNEL).await {
                    Ok(()) => {
                        listener = Some(new);
                        heard.listening.store(true, Ordering::SeqCst);
                        wait = RECONNECT_FIRST;
                        continue;
                    }
                    Err(e) => Err(e),
                },
                Err(e) => Err(e),
            },
            Some(listening) => listening.try_recv().await.map(|n| n.is_some()),
        };
        match outcome {
            Ok(true) => heard.wake.notify_waiters(),
            // The connection was lost and made again (sqlx listens again
            // on it): what was notified in between is lost.
            Ok(false) => {
                tracing::debug!("the store's listener reconnected");
                heard.wake.notify_waiters();
            }
            Err(sqlx::Error::PoolClosed) => return,
            Err(e) => {
                if heard.listening.swap(false, Ordering::SeqCst) {
                    tracing::warn!(
                        "the store's listener lost its connection, so an idle serve looks at the database itself until it is back (tried again in {} ms): {e}",
                        wait.as_millis()
                    );
                } else {
                    tracing::debug!(
                        "the store's listener could not listen (tried again in {} ms): {e}",
                        wait.as_millis()
                    );
                }
                listener = None;
                heard.wake.notify_waiters();
                tokio::time::sleep(wait).await;
                wait = (wait * 2).min(RECONNECT_LONGEST);
            }
        }
    }
}

impl Wakeups for PgStore {
    fn hears_other_writers(&self) -> bool {
        self.listener.shared.listening.load(Ordering::SeqCst)
    }

    async fn wait_for_work(&self, at_most: Duration) -> Wake {
        let heard = Arc::clone(&self.listener.shared);
        let woken = heard.wake.notified();
        tokio::pin!(woken);
        woken.as_mut().enable();
        self.listener.start();
        tokio::select! {
            () = woken => Wake::Work,
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
