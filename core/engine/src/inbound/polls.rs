//! Turns to long-poll a provider. Telegram's getUpdates may run in one
//! process at a time (a second concurrent one is answered 409), yet every
//! `cascade serve` on a shared store runs every channel instance, to send.
//! A plugin that polls asks the host for a turn before each poll
//! (`HostRequest::MayPoll`, answered here from memory); the serve loop
//! holds the store lease `poll:<channel>` for each instance that asked and
//! gives turns only while it holds it. A turn ends a tenth of the lease
//! before the lease does, so a process whose lease ran out (killed,
//! stalled, or cut off from the store) has stopped polling, and stored
//! nothing more, before another may take the lease. Whoever takes it
//! handles first what the inbox holds unhandled for the channel: what the
//! previous holder stored but did not live to handle.

use cascade_store::{Leases, poll_lease};
use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;
use tokio::sync::Notify;
use tokio::time::Instant;

/// Which channel instances may poll now, as the plugins are told.
pub struct PollTurns {
    /// Turns come from leases (`cascade serve`); otherwise every ask is a
    /// turn without end (one process driven by hand, tests, tools).
    leased: bool,
    /// Each instance that asked, and when its turn ends (`None`: no turn).
    turns: Mutex<HashMap<String, Option<Instant>>>,
    changed: Notify,
}

impl PollTurns {
    /// Every ask is a turn without end: for an engine nobody else shares a
    /// store with while it polls.
    pub fn free() -> PollTurns {
        PollTurns {
            leased: false,
            turns: Mutex::default(),
            changed: Notify::new(),
        }
    }

    /// Turns only while [`keep_leases`] holds the instance's poll lease.
    pub fn leased() -> PollTurns {
        PollTurns {
            leased: true,
            ..PollTurns::free()
        }
    }

    pub fn is_leased(&self) -> bool {
        self.leased
    }

    fn turns(&self) -> std::sync::MutexGuard<'_, HashMap<String, Option<Instant>>> {
        self.turns.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The answer to an instance's `may_poll`: `{"poll": true}` (with
    /// `for_ms`, what is left of the turn), or after waiting up to `wait`
    /// for a turn, `{"poll": false}`.
    pub async fn ask(&self, instance: &str, wait: Duration) -> serde_json::Value {
        if !self.leased {
            self.turns().entry(instance.to_owned()).or_insert(None);
            return serde_json::json!({ "poll": true });
        }
        let until = Instant::now() + wait;
        loop {
            // Made before the look, so a turn given in between still wakes it.
            let changed = self.changed.notified();
            let now = Instant::now();
            let ends = *self.turns().entry(instance.to_owned()).or_insert(None);
            if let Some(ends) = ends.filter(|ends| *ends > now) {
                let left = u64::try_from((ends - now).as_millis()).unwrap_or(u64::MAX);
                return serde_json::json!({ "poll": true, "for_ms": left });
            }
            if tokio::time::timeout_at(until, changed).await.is_err() {
                return serde_json::json!({ "poll": false });
            }
        }
    }

    /// The instances that asked for turns: those that long-poll.
    pub fn polling(&self) -> Vec<String> {
        let mut names: Vec<String> = self.turns().keys().cloned().collect();
        names.sort();
        names
    }

    /// Gives `instance` a turn until `ends`.
    pub fn give(&self, instance: &str, ends: Instant) {
        self.turns().insert(instance.to_owned(), Some(ends));
        self.changed.notify_waiters();
    }

    /// Ends `instance`'s turn at once: its next ask is refused.
    pub fn end(&self, instance: &str) {
        if let Some(turn) = self.turns().get_mut(instance) {
            *turn = None;
        }
        self.changed.notify_waiters();
    }

    /// Ends every turn at once.
    pub fn end_all(&self) {
        for turn in self.turns().values_mut() {
            *turn = None;
        }
        self.changed.notify_waiters();
    }
}

/// How often a lease not held is tried: a tenth of the lease, at most a
/// second, so a lease that ran out is taken soon after.
fn try_every(lease: Duration) -> Duration {
    (lease / 10).clamp(Duration::from_millis(50), Duration::from_secs(1))
}

/// Holds the poll lease of every instance that asked for turns, for
/// `owner`, and gives turns while it is held: renewed every third of
/// `lease`, tried every [`try_every`] while another holds it. When a
/// renewal is refused (another process took the lease) the turn ends at
/// once; when the store does not answer, the turn ends by itself a tenth
/// of the lease before the lease would. Each lease newly taken is pushed
/// onto `taken`, for the serve loop to handle the channel's inbox rows.
/// `clock` is the serve's clock, in Unix milliseconds. Runs until dropped
/// (the serve loop aborts it).
pub async fn keep_leases<S: Leases>(
    store: Arc<S>,
    turns: Arc<PollTurns>,
    owner: String,
    lease: Duration,
    taken: Arc<Mutex<Vec<String>>>,
    clock: fn() -> i64,
) {
    let lease_ms = i64::try_from(lease.as_millis()).unwrap_or(i64::MAX);
    let retry = try_every(lease);
    let mut held: HashSet<String> = HashSet::new();
    let mut next: HashMap<String, Instant> = HashMap::new();
    loop {
        for name in turns.polling() {
            let started = Instant::now();
            if next.get(&name).is_some_and(|at| *at > started) {
                continue;
            }
            let now = clock();
            let lease_name = poll_lease(&name);
            match store
                .hold_lease(&lease_name, &owner, now, now.saturating_add(lease_ms))
                .await
            {
                Ok(true) => {
                    if held.insert(name.clone()) {
                        tracing::info!(channel = %name, "took the channel's poll lease: this process polls it now");
                        taken
                            .lock()
                            .unwrap_or_else(PoisonError::into_inner)
                            .push(name.clone());
                    }
                    // Counted from before the store was asked: the lease
                    // runs from then.
                    turns.give(&name, started + lease - lease / 10);
                    next.insert(name, started + lease / 3);
                }
                Ok(false) => {
                    if held.remove(&name) {
                        tracing::warn!(channel = %name, "another process holds the channel's poll lease now; this one stopped polling it");
                    }
                    turns.end(&name);
                    next.insert(name, started + retry);
                }
                Err(e) => {
                    // The turn given with the last renewal ends by itself.
                    tracing::warn!(channel = %name, "could not renew the channel's poll lease, tried again shortly: {e}");
                    next.insert(name, started + retry);
                }
            }
        }
        tokio::time::sleep(retry).await;
    }
}

/// Gives up every poll lease `owner` holds among `channels`, at a clean
/// stop, once the channels stopped polling: another process takes them at
/// once instead of when they run out.
pub async fn let_go<S: Leases>(store: &S, owner: &str, channels: &[String]) {
    for name in channels {
        if let Err(e) = store.let_go_lease(&poll_lease(name), owner).await {
            tracing::warn!(channel = %name, "could not give up the channel's poll lease; another process takes it when it runs out: {e}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use cascade_store::SqliteStore;

    fn clock() -> i64 {
        chrono::Utc::now().timestamp_millis()
    }

    #[tokio::test]
    async fn without_leases_every_ask_is_a_turn_without_end() {
        let turns = PollTurns::free();
        assert_eq!(
            turns.ask("telegram", Duration::ZERO).await,
            serde_json::json!({ "poll": true })
        );
        assert_eq!(turns.polling(), ["telegram"]);
    }

    #[tokio::test(start_paused = true)]
    async fn a_turn_is_given_to_a_waiting_ask_and_ends_at_its_time_or_at_once() {
        let turns = Arc::new(PollTurns::leased());
        assert_eq!(
            turns.ask("telegram", Duration::ZERO).await,
            serde_json::json!({ "poll": false })
        );
        let waiting = tokio::spawn({
            let turns = turns.clone();
            async move { turns.ask("telegram", Duration::from_secs(5)).await }
        });
        tokio::time::sleep(Duration::from_secs(1)).await;
        turns.give("telegram", Instant::now() + Duration::from_secs(9));
        assert_eq!(
            waiting.await.unwrap(),
            serde_json::json!({ "poll": true, "for_ms": 9000 })
        );
        tokio::time::sleep(Duration::from_secs(9)).await;
        assert_eq!(
            turns.ask("telegram", Duration::ZERO).await,
            serde_json::json!({ "poll": false }),
            "a turn ends at its time"
        );
        turns.give("telegram", Instant::now() + Duration::from_secs(9));
        turns.end("telegram");
        assert_eq!(
            turns.ask("telegram", Duration::ZERO).await,
            serde_json::json!({ "poll": false }),
            "and at once when taken back"
        );
    }

    /// Two processes on one store: one holds the lease and polls; the other
    /// takes over once the first stops renewing (killed), within the lease,
    /// and says the channel was taken so its inbox is handled.
    #[tokio::test]
    async fn one_owner_polls_and_another_takes_over_when_it_stops_renewing() {
        let store = Arc::new(SqliteStore::open_in_memory().await.unwrap());
        let lease = Duration::from_millis(900);
        let (first, second) = (Arc::new(PollTurns::leased()), Arc::new(PollTurns::leased()));
        for turns in [&first, &second] {
            turns.ask("telegram", Duration::ZERO).await;
        }
        let (taken_first, taken_second) = (Arc::default(), Arc::default());
        let keeping_first = tokio::spawn(keep_leases(
            store.clone(),
            first.clone(),
            "first".to_owned(),
            lease,
            Arc::clone(&taken_first),
            clock,
        ));
        let polls = |turns: &Arc<PollTurns>| {
            let turns = turns.clone();
            async move { turns.ask("telegram", Duration::from_secs(2)).await["poll"] == true }
        };
        assert!(polls(&first).await);
        let keeping_second = tokio::spawn(keep_leases(
            store.clone(),
            second.clone(),
            "second".to_owned(),
            lease,
            Arc::clone(&taken_second),
            clock,
        ));
        tokio::time::sleep(lease * 2).await;
        assert_eq!(
            second.ask("telegram", Duration::ZERO).await["poll"],
            false,
            "the second never polls while the first renews"
        );
        assert!(polls(&first).await);
        assert_eq!(*taken_first.lock().unwrap(), ["telegram"]);

        // Killed: no renewal, no letting go.
        keeping_first.abort();
        let killed = Instant::now();
        assert!(polls(&second).await);
        let took = killed.elapsed();
        // Within the lease, a try and a little scheduling.
        assert!(took <= lease + lease / 4, "took over after {took:?}");
        assert_eq!(
            first.ask("telegram", Duration::ZERO).await["poll"],
            false,
            "the first's turn ended before the second's began"
        );
        assert_eq!(*taken_second.lock().unwrap(), ["telegram"]);

        // A clean stop lets go: the lease is free at once.
        keeping_second.abort();
        let _ = keeping_second.await;
        let_go(&*store, "second", &["telegram".to_owned()]).await;
        let now = clock();
        assert!(
            store.live_leases("poll:", now).await.unwrap().is_empty(),
            "the lease was let go"
        );
    }
}
