//! The dispatcher: claims due outbox rows under a lease, sends each through
//! its channel instance (within the channel's in-flight and rate limits),
//! and records sent / retry at a time / dead, queueing the person's next
//! channel when a row dead-letters and the rollout allows fallback. A row
//! claimed but not recorded (a crash) is claimed again when its lease ends.

use super::{Composer, DeliveryError, Quota, Rollouts, SharedWorld, World, millis};
use cascade_model::rollout::StepKind;
use cascade_plugin_api::{Recipient, SendRequest, SendResult};
use cascade_plugin_host::{PluginError, PluginHost};
use cascade_store::{
    ChannelClaim, ClaimedDelivery, DeliveryOutcome, Evidence, NewDelivery, Outbox, Reports, Store,
};
use chrono::{DateTime, Utc};
use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Semaphore;
use tokio::task::JoinSet;

#[derive(Debug, Clone)]
pub struct DispatchSettings {
    /// Rows claimed at once.
    pub batch: u32,
    /// How long a claim lasts before another dispatcher may take the row.
    pub lease: Duration,
    /// First retry delay; doubles each attempt, with ±20% jitter.
    pub backoff_base: Duration,
    pub backoff_max: Duration,
    /// Sends in flight per channel instance when the plugin does not say.
    pub default_in_flight: usize,
    /// The longest an idle `cascade serve` waits before it looks at the
    /// store again, when the store wakes it for work any process queues
    /// (PostgreSQL's `LISTEN/NOTIFY`, see `cascade_store::Wakeups`); it
    /// wakes sooner when work falls due or is queued. A store that cannot
    /// wake it for other processes' work (SQLite) is looked at every
    /// [`POLL_WAIT`] instead.
    pub idle_wait: Duration,
    /// The least time between two edits of one team post's live count:
    /// acknowledgements arriving meanwhile are shown together by one edit.
    pub team_post_edit_interval: Duration,
    /// How long a shutdown waits for the sends in flight; those still
    /// unanswered are left leased and sent again once their lease runs out.
    pub stop_within: Duration,
    /// How long `cascade serve` holds a channel's long-poll lease
    /// (`poll:<channel>`) before it must renew it; renewed every third of
    /// it. A serve that dies is taken over within it. See
    /// [`crate::inbound::polls`].
    pub poll_lease: Duration,
}

/// How often an idle `cascade serve` looks at a store that cannot wake it
/// for other processes' work.
pub const POLL_WAIT: Duration = Duration::from_millis(200);

/// How often an idle `cascade serve` on a store that wakes it looks again
/// at work due that no channel took (down, or at its quota): the
/// scheduler's pace.
pub const OVERDUE_WAIT: Duration = Duration::from_secs(1);

impl Default for DispatchSettings {
    fn default() -> Self {
        DispatchSettings {
            batch: 256,
            lease: Duration::from_secs(120),
            backoff_base: Duration::from_secs(30),
            backoff_max: Duration::from_secs(3600),
            default_in_flight: 64,
            idle_wait: Duration::from_secs(5),
            team_post_edit_interval: Duration::from_secs(3),
            stop_within: Duration::from_secs(30),
            poll_lease: Duration::from_secs(30),
        }
    }
}

impl DispatchSettings {
    /// The most rows of one channel claimed and not yet recorded at any
    /// moment, so the most sends a crash can repeat on it, for a channel
    /// whose plugin allows at most half a batch in flight (one that allows
    /// more is kept at its limit and half a batch more, see
    /// `channel_claims`):
    /// [`Dispatcher::dispatch_for`] tops a channel up to a batch claimed
    /// while less than half a batch of it is, and a claimed row counts
    /// until its outcome is recorded (not just answered), however slow
    /// recording is; fewer than half a batch of outcomes wait to be
    /// recorded.
    pub fn unrecorded_at_most(&self) -> usize {
        2 * self.batch.max(1) as usize
    }

    /// Sends of one channel in flight from which its rows are no longer
    /// claimed: half a batch.
    fn channel_full_at(&self) -> usize {
        (self.batch.max(1) as usize / 2).max(1)
    }

    /// For a channel whose plugin allows `limit` sends in flight: the rows
    /// claimed from which it gets no more, and what it is topped up to.
    /// Half a batch and a batch; for a plugin that allows more than half a
    /// batch at once (Telegram, whose sends that meet a server error wait
    /// 10 s in teloxide), its limit and half a batch more, so its slots
    /// stay busy instead of emptying to half a batch before each claim.
    fn channel_claims(&self, limit: usize) -> (usize, usize) {
        let batch = self.batch.max(1) as usize;
        let full_at = self.channel_full_at().max(limit);
        (full_at, batch.max(limit + batch / 2))
    }
}

/// The clock a send reads when the provider answers: a retry's wait is
/// counted from then, not from the claim (a send may wait for a free slot
/// and the channel's pacing first).
pub type Clock = Arc<dyn Fn() -> DateTime<Utc> + Send + Sync>;

/// The least time between the starts of two reads of one rollout's state
/// before sends: a pause or cancel takes effect within it, and sends asking
/// meanwhile share the next read.
pub const STATE_READ_SPACING: Duration = Duration::from_millis(2);

/// The delay before retry `attempt` (1-based): the provider's retry-after
/// when it gave one, else doubling from `base` up to `max`, with jitter
/// from `jitter` in [0, 1) so retries of many rows spread out.
pub fn backoff(
    attempt: u32,
    retry_after: Option<Duration>,
    base: Duration,
    max: Duration,
    jitter: f64,
) -> Duration {
    backoff_by(attempt, retry_after, base, 2.0, max, jitter)
}

/// As [`backoff`], each wait `factor` times the one before.
pub fn backoff_by(
    attempt: u32,
    retry_after: Option<Duration>,
    base: Duration,
    factor: f64,
    max: Duration,
    jitter: f64,
) -> Duration {
    if let Some(after) = retry_after {
        return after.max(Duration::from_millis(1));
    }
    let growth = factor
        .max(1.0)
        .powi(i32::try_from(attempt.saturating_sub(1).min(60)).unwrap_or(60));
    let exponential = Duration::try_from_secs_f64(base.as_secs_f64() * growth)
        .unwrap_or(max)
        .min(max);
    exponential.mul_f64(0.8 + 0.4 * jitter.clamp(0.0, 1.0))
}

/// How often the sends that failed for now are summarised in the log.
const RETRY_SUMMARY_EVERY: Duration = Duration::from_secs(30);

/// Sends that failed for now since the last summary, per channel: how
/// many, and the latest reason. One log line per channel and period rather
/// than one per message.
#[derive(Default)]
struct RetrySummary {
    by_channel: std::collections::BTreeMap<String, (u64, String)>,
    logged_at: Option<tokio::time::Instant>,
}

impl RetrySummary {
    fn add(&mut self, channel: &str, reason: &str) {
        let entry = self.by_channel.entry(channel.to_owned()).or_default();
        entry.0 += 1;
        entry.1 = without_addresses(reason);
    }

    /// The lines to log now (the first failures at once, then at most
    /// once a period), emptying the summary.
    fn due_lines(&mut self, now: tokio::time::Instant) -> Vec<String> {
        if self.by_channel.is_empty()
            || self
                .logged_at
                .is_some_and(|at| now < at + RETRY_SUMMARY_EVERY)
        {
            return Vec::new();
        }
        self.logged_at = Some(now);
        std::mem::take(&mut self.by_channel)
            .into_iter()
            .map(|(channel, (n, reason))| {
                format!(
                    "channel \"{channel}\": {n} send{} failed for now and will be retried; the latest reason: {reason}",
                    if n == 1 { "" } else { "s" }
                )
            })
            .collect()
    }
}

/// A provider's words with anything that looks like an address taken
/// out: logs carry ids, never addresses.
fn without_addresses(reason: &str) -> String {
    reason
        .split(' ')
        .map(|word| {
            if word.contains('@') {
                "<address>"
            } else {
                word
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// Spaces sends on one channel at least `interval` apart.
struct RateLimit {
    interval: Duration,
    next: tokio::sync::Mutex<tokio::time::Instant>,
}

impl RateLimit {
    fn per_second(rate: f64) -> RateLimit {
        // `cascade.toml` bounds its rates (`plugins::PER_SECOND`) but a
        // plugin's manifest may say anything: a rate of zero, below the
        // bound or not a number waits as long as the slowest rate allowed,
        // rather than overflowing the clock.
        let slowest = Duration::from_secs_f64(1.0 / cascade_plugin_host::PER_SECOND.min);
        RateLimit {
            interval: Duration::try_from_secs_f64(1.0 / rate).map_or(slowest, |d| d.min(slowest)),
            next: tokio::sync::Mutex::new(tokio::time::Instant::now()),
        }
    }

    async fn wait(&self) {
        let slot = {
            let mut next = self.next.lock().await;
            let slot = (*next).max(tokio::time::Instant::now());
            *next = slot + self.interval;
            slot
        };
        tokio::time::sleep_until(slot).await;
    }
}

/// The sends of one channel within its quota's windows (the last minute
/// and the last 24 hours), by when each was made.
struct QuotaWindows {
    quota: Quota,
    /// Where its sends before this process are counted from: a channel's
    /// sent rows, every `of`-th from the `index`-th. An instance that shares
    /// another channel's sends (`spread_over`) counts its own rows and its
    /// share of that channel's, which do not say which instance sent them.
    sources: Vec<(String, usize, usize)>,
    sent: std::sync::Mutex<std::collections::VecDeque<i64>>,
    /// Set once the sends already in the store are counted, so a restart
    /// does not start the windows empty.
    seeded: tokio::sync::OnceCell<()>,
}

const MINUTE_MS: i64 = 60_000;
const DAY_MS: i64 = 24 * 60 * MINUTE_MS;

impl QuotaWindows {
    fn new(quota: Quota, sources: Vec<(String, usize, usize)>) -> QuotaWindows {
        QuotaWindows {
            quota,
            sources,
            sent: Default::default(),
            seeded: tokio::sync::OnceCell::new(),
        }
    }

    /// Counts sends recorded before this process began.
    async fn seed<S: Outbox>(&self, store: &S, now: i64) -> Result<(), DeliveryError> {
        self.seeded
            .get_or_try_init(|| async {
                let mut times = Vec::new();
                for (channel, index, of) in &self.sources {
                    let all = store.sent_times(channel, now - DAY_MS).await?;
                    times.extend(all.into_iter().skip(*index).step_by((*of).max(1)));
                }
                let mut sent = self.sent.lock().unwrap_or_else(|p| p.into_inner());
                let mut merged: Vec<i64> = times.into_iter().chain(sent.drain(..)).collect();
                merged.sort_unstable();
                sent.extend(merged);
                Ok::<(), DeliveryError>(())
            })
            .await?;
        Ok(())
    }

    /// When the quota next has room, if it has none at `now`.
    fn full_until(&self, sent: &mut std::collections::VecDeque<i64>, now: i64) -> Option<i64> {
        let horizon = if self.quota.per_day.is_some() {
            DAY_MS
        } else {
            MINUTE_MS
        };
        while sent.front().is_some_and(|at| *at <= now - horizon) {
            sent.pop_front();
        }
        let mut until = None;
        if let Some(limit) = self.quota.per_minute {
            let in_minute = sent
                .iter()
                .rev()
                .take_while(|at| **at > now - MINUTE_MS)
                .count();
            if in_minute >= limit as usize {
                until = sent.get(sent.len() - in_minute).map(|at| at + MINUTE_MS);
            }
        }
        if let Some(limit) = self.quota.per_day
            && sent.len() >= limit as usize
        {
            let day = sent.get(sent.len() - limit as usize).map(|at| at + DAY_MS);
            until = until.max(day);
        }
        until
    }

    /// Takes a place for a send at `now`, or says when to try again.
    fn reserve(&self, now: i64) -> Result<(), i64> {
        let mut sent = self.sent.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(until) = self.full_until(&mut sent, now) {
            return Err(until);
        }
        sent.push_back(now);
        Ok(())
    }

    fn is_full(&self, now: i64) -> bool {
        let mut sent = self.sent.lock().unwrap_or_else(|p| p.into_inner());
        self.full_until(&mut sent, now).is_some()
    }
}

/// A channel whose sends are spread over several instances (`spread_over`:
/// several sending mailboxes): each send goes through the next instance, in
/// turn, whose quota has room.
struct Spread {
    /// The channel itself first, then the instances it names.
    members: Vec<String>,
    next: std::sync::atomic::AtomicUsize,
}

pub struct Dispatcher<S> {
    shared: Arc<Shared<S>>,
    /// Sends of [`dispatch_for`](Self::dispatch_for) still in flight when
    /// its round ended, and outcomes not yet recorded: the next round goes
    /// on with them, so a slow send never holds up a round.
    running: tokio::sync::Mutex<Running>,
}

#[derive(Default)]
struct Running {
    sends: Sends,
    done: Outcomes,
}

impl<S: Store + Outbox + Evidence + Reports + 'static> Dispatcher<S> {
    pub fn new(
        store: Arc<S>,
        host: Arc<PluginHost>,
        rollouts: Arc<Rollouts>,
        shared_world: Arc<SharedWorld>,
        composer: Arc<Composer>,
        settings: DispatchSettings,
    ) -> Self {
        let world = shared_world.get();
        let in_flight_limits: HashMap<String, usize> = world
            .routes
            .keys()
            .map(|instance| {
                let limit = host
                    .instance(instance)
                    .ok()
                    .and_then(|i| i.plugin.manifest.limits.max_in_flight)
                    .unwrap_or(settings.default_in_flight)
                    .max(1);
                (instance.clone(), limit)
            })
            .collect();
        let in_flight = in_flight_limits
            .iter()
            .map(|(instance, limit)| (instance.clone(), Arc::new(Semaphore::new(*limit))))
            .collect();
        let rates = world
            .routes
            .values()
            .filter_map(|r| {
                Some((
                    r.instance.clone(),
                    Arc::new(RateLimit::per_second(r.per_second?)),
                ))
            })
            .collect();
        let spreads: HashMap<String, Spread> = world
            .routes
            .values()
            .filter(|r| !r.spread.is_empty())
            .map(|r| {
                let members = std::iter::once(r.instance.clone())
                    .chain(r.spread.iter().cloned())
                    .collect();
                (
                    r.instance.clone(),
                    Spread {
                        members,
                        next: Default::default(),
                    },
                )
            })
            .collect();
        let quotas = world
            .routes
            .values()
            .filter(|r| r.quota.is_set())
            .map(|r| {
                let mut sources = Vec::new();
                for (primary, spread) in &spreads {
                    if let Some(index) = spread.members.iter().position(|m| *m == r.instance) {
                        sources.push((primary.clone(), index, spread.members.len()));
                    }
                }
                if !spreads.contains_key(&r.instance) {
                    sources.push((r.instance.clone(), 0, 1));
                }
                (
                    r.instance.clone(),
                    Arc::new(QuotaWindows::new(r.quota, sources)),
                )
            })
            .collect();
        Dispatcher {
            shared: Arc::new(Shared {
                owner: new_owner(),
                quotas,
                spreads,
                store,
                host,
                rollouts,
                world: shared_world,
                composer,
                settings,
                in_flight,
                in_flight_limits,
                rates,
                state_checks: Default::default(),
                state_reads: Default::default(),
                claimed: Default::default(),
                retries: Default::default(),
            }),
            running: Default::default(),
        }
    }

    /// The id this dispatcher's leases are taken in (`lease_owner`): random,
    /// for the life of the dispatcher.
    pub fn owner(&self) -> &str {
        &self.shared.owner
    }

    /// Claims one batch of each channel, sends them and records the
    /// outcomes. Returns the number of rows claimed (0: nothing was due).
    pub async fn dispatch_once(&self, now: DateTime<Utc>) -> Result<usize, DeliveryError> {
        let mut sends = JoinSet::new();
        let clock: Clock = Arc::new(move || now);
        let claimed = self
            .shared
            .claim_into(&mut sends, &clock, &HashSet::new(), true)
            .await?
            .claimed;
        let mut done = Outcomes::default();
        while let Some(sent) = sends.join_next().await {
            done.add(sent)?;
        }
        done.record(&*self.shared.store, now).await?;
        Ok(claimed)
    }

    /// Claims, sends and records continuously until nothing is due at
    /// `now()` and nothing is in flight, `stop` turns true, or `for_at_most`
    /// has passed. Sends still in flight then are not waited for: the next
    /// call (or [`finish`](Self::finish)) records them. Unlike repeated
    /// [`dispatch_once`](Self::dispatch_once) calls, the next batch is
    /// claimed while the current one is still half in flight, and outcomes
    /// are recorded in groups as they come, so the store's work overlaps
    /// the sends instead of stalling them. Claims are fair per channel:
    /// each channel with less than half a batch in flight is topped up to a
    /// batch of its own rows, in due order within the channel, whatever the
    /// other channels hold; one with half a batch or more in flight gets no
    /// more rows until some are answered. So a slow, faulty or stuck
    /// channel never holds back another channel's rows (or due retries).
    /// Returns the rows claimed.
    pub async fn dispatch_for(
        &self,
        now: impl Fn() -> DateTime<Utc> + Send + Sync + 'static,
        for_at_most: Duration,
        stop: &tokio::sync::watch::Receiver<bool>,
    ) -> Result<usize, DeliveryError> {
        let shared = &self.shared;
        let clock: Clock = Arc::new(now);
        let refill_below = shared.settings.channel_full_at();
        let until = tokio::time::Instant::now() + for_at_most;
        let mut running = self.running.lock().await;
        let Running { sends, done } = &mut *running;
        let mut claimed = 0;
        // The channels whose last claim in this round found fewer rows due
        // than their share (and whether the rows of unconfigured channels
        // ran out): not asked again until the next round.
        let (mut drained, mut others_left) = (HashSet::new(), true);
        // Outcomes left unrecorded by a round the store failed are recorded
        // before anything more is claimed: had their rows' leases run out
        // meanwhile, a claim could take them again and send them twice.
        if done.len() > 0 {
            done.record(&*shared.store, clock()).await?;
        }
        loop {
            if !*stop.borrow() && tokio::time::Instant::now() < until {
                let got = shared
                    .claim_into(sends, &clock, &drained, others_left)
                    .await?;
                claimed += got.claimed;
                drained.extend(got.drained);
                others_left &= !got.others_drained;
            }
            if sends.is_empty() {
                done.record(&*shared.store, clock()).await?;
                shared.log_retries();
                return Ok(claimed);
            }
            let sent = tokio::select! {
                sent = sends.join_next() => sent,
                () = tokio::time::sleep_until(until) => None,
            };
            let Some(sent) = sent else {
                done.record(&*shared.store, clock()).await?;
                shared.log_retries();
                return Ok(claimed);
            };
            done.add(sent)?;
            // Record in groups: one transaction for many rows, while the
            // other sends go on in their tasks. The last group is recorded
            // as the last send ends.
            if done.len() >= refill_below || sends.is_empty() {
                done.record(&*shared.store, clock()).await?;
            }
        }
    }

    /// How long a shutdown waits for the sends in flight.
    pub fn stop_within(&self) -> Duration {
        self.shared.settings.stop_within
    }

    /// The longest an idle serve waits (see [`DispatchSettings::idle_wait`]).
    pub fn idle_wait(&self) -> Duration {
        self.shared.settings.idle_wait
    }

    /// Sends of [`dispatch_for`](Self::dispatch_for) still in flight, or
    /// answered and not yet recorded: the next round goes on with them.
    pub async fn unfinished(&self) -> usize {
        let running = self.running.lock().await;
        running.sends.len() + running.done.len()
    }

    /// Waits up to `within` for the sends of [`dispatch_for`](Self::dispatch_for)
    /// still in flight and records them; returns how many were still
    /// unanswered, which are abandoned: their rows stay leased and are
    /// claimed again once the lease runs out.
    pub async fn finish(
        &self,
        within: Duration,
        now: impl Fn() -> DateTime<Utc>,
    ) -> Result<usize, DeliveryError> {
        let deadline = tokio::time::Instant::now() + within;
        let mut running = self.running.lock().await;
        let Running { sends, done } = &mut *running;
        while !sends.is_empty() {
            tokio::select! {
                sent = sends.join_next() => {
                    if let Some(sent) = sent {
                        done.add(sent)?;
                    }
                }
                () = tokio::time::sleep_until(deadline) => break,
            }
        }
        done.record(&*self.shared.store, now()).await?;
        let left = sends.len();
        sends.abort_all();
        Ok(left)
    }
}

/// Sends in flight, each answering with its row's outcome and its place in
/// its channel's count of rows claimed and not yet recorded.
type Sends = JoinSet<(Result<Delivered, DeliveryError>, Held)>;

/// A claimed row's [`InFlight`] place, held until its outcome is recorded.
type Held = Box<dyn Send>;

/// Outcomes of finished sends not yet recorded, and the fallback rows they
/// queue.
#[derive(Default)]
struct Outcomes {
    outcomes: Vec<(i64, DeliveryOutcome)>,
    fallbacks: Vec<NewDelivery>,
    /// The rows' places in their channels' counts: given back once
    /// recorded, so a channel is topped up only as its rows are recorded.
    /// While recording is slow (a busy database), sends that finished
    /// meanwhile still count, and a crash can repeat at most
    /// [`DispatchSettings::unrecorded_at_most`] of a channel's sends.
    held: Vec<Held>,
}

impl Outcomes {
    fn add(
        &mut self,
        sent: Result<(Result<Delivered, DeliveryError>, Held), tokio::task::JoinError>,
    ) -> Result<(), DeliveryError> {
        let (delivered, held) = sent.expect("a delivery task does not panic");
        self.held.push(held);
        let (id, outcome, fallback) = delivered?;
        self.outcomes.push((id, outcome));
        self.fallbacks.extend(fallback);
        Ok(())
    }

    fn len(&self) -> usize {
        self.outcomes.len()
    }

    /// Records what is waiting, in one transaction, and starts afresh.
    async fn record<S: Outbox>(
        &mut self,
        store: &S,
        now: DateTime<Utc>,
    ) -> Result<(), DeliveryError> {
        if !self.outcomes.is_empty() {
            store
                .record(&self.outcomes, &self.fallbacks, millis(now))
                .await?;
        }
        self.outcomes.clear();
        self.fallbacks.clear();
        self.held.clear();
        Ok(())
    }
}

/// What every delivery of every batch shares.
struct Shared<S> {
    /// The dispatcher's id, in which its leases are taken.
    owner: String,
    store: Arc<S>,
    host: Arc<PluginHost>,
    rollouts: Arc<Rollouts>,
    world: Arc<SharedWorld>,
    composer: Arc<Composer>,
    settings: DispatchSettings,
    in_flight: HashMap<String, Arc<Semaphore>>,
    /// Each channel instance's sends allowed in flight at once.
    in_flight_limits: HashMap<String, usize>,
    rates: HashMap<String, Arc<RateLimit>>,
    /// The channels with a sending quota, and their recent sends.
    quotas: HashMap<String, Arc<QuotaWindows>>,
    /// The channels whose sends are spread over several instances.
    spreads: HashMap<String, Spread>,
    /// The rollout state check in progress, by rollout (see `may_send`).
    state_checks: std::sync::Mutex<HashMap<String, Arc<tokio::sync::OnceCell<bool>>>>,
    /// When each rollout's state was last read, to space the reads.
    state_reads: std::sync::Mutex<HashMap<String, tokio::time::Instant>>,
    /// Rows claimed and not yet recorded, by channel instance.
    claimed: std::sync::Mutex<HashMap<String, usize>>,
    /// Sends that failed for now, for the log.
    retries: std::sync::Mutex<RetrySummary>,
}

/// One claimed row's place in its channel's count of rows claimed and not
/// yet recorded, given back once its outcome is recorded (or its send is
/// abandoned).
struct InFlight<S> {
    shared: Arc<Shared<S>>,
    channel: String,
}

impl<S> Drop for InFlight<S> {
    fn drop(&mut self) {
        let mut claimed = self
            .shared
            .claimed
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        if let Some(n) = claimed.get_mut(&self.channel) {
            *n = n.saturating_sub(1);
        }
    }
}

type Delivered = (i64, DeliveryOutcome, Option<NewDelivery>);

/// What one fair claim took ([`Shared::claim_into`]).
struct Claimed {
    claimed: usize,
    /// The channels that had fewer rows due than their share.
    drained: Vec<String>,
    /// Whether the rows of unconfigured channels, if asked for, ran out.
    others_drained: bool,
}

/// A random dispatcher id for its leases: "d-" and 16 hex digits.
fn new_owner() -> String {
    let mut bytes = [0u8; 8];
    getrandom::fill(&mut bytes).expect("the operating system provides randomness");
    format!("d-{:016x}", u64::from_be_bytes(bytes))
}

impl<S: Store + Outbox + Evidence + Reports> Shared<S> {
    /// Logs the summary of sends that failed for now, when one is due.
    fn log_retries(&self) {
        let lines = self
            .retries
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .due_lines(tokio::time::Instant::now());
        for line in lines {
            tracing::warn!("{line}");
        }
    }

    /// Claims each channel's share of due rows under a lease and starts a
    /// send for each. A channel's share tops it up to a batch in flight
    /// when it has less than half a batch; a channel in `drained`, with
    /// half a batch or more in flight, at its quota or not running gets
    /// none. With `others`, also up to a batch of rows of channels that are
    /// not configured (each becomes a dead letter saying so).
    async fn claim_into(
        self: &Arc<Self>,
        sends: &mut Sends,
        clock: &Clock,
        drained: &HashSet<String>,
        others: bool,
    ) -> Result<Claimed, DeliveryError>
    where
        S: 'static,
    {
        let lease = i64::try_from(self.settings.lease.as_millis()).unwrap_or(i64::MAX);
        let now = clock();
        // A channel at its quota is left alone until the window has room.
        for quota in self.quotas.values() {
            quota.seed(&*self.store, millis(now)).await?;
        }
        // A spread channel is full only when every instance it uses is.
        let at_quota = |channel: &str| match self.spreads.get(channel) {
            Some(spread) => spread.members.iter().all(|m| {
                self.quotas
                    .get(m)
                    .is_some_and(|quota| quota.is_full(millis(now)))
            }),
            None => self
                .quotas
                .get(channel)
                .is_some_and(|quota| quota.is_full(millis(now))),
        };
        let shares: Vec<(String, u32)> = {
            let claimed = self.claimed.lock().unwrap_or_else(|p| p.into_inner());
            let world = self.world.get();
            let mut channels: Vec<&String> = world.routes.keys().collect();
            channels.sort();
            channels
                .into_iter()
                .map(|channel| {
                    let in_flight = claimed.get(channel).copied().unwrap_or(0);
                    let limit = self.in_flight_limits.get(channel).copied().unwrap_or(0);
                    let (full_at, target) = self.settings.channel_claims(limit);
                    let share = if in_flight >= full_at
                        || drained.contains(channel)
                        || !self.host.is_up(channel)
                        || at_quota(channel)
                    {
                        0
                    } else {
                        target - in_flight
                    };
                    (channel.clone(), u32::try_from(share).unwrap_or(u32::MAX))
                })
                .collect()
        };
        let others = if others {
            self.settings.batch.max(1)
        } else {
            0
        };
        if others == 0 && shares.iter().all(|(_, n)| *n == 0) {
            return Ok(Claimed {
                claimed: 0,
                drained: Vec::new(),
                others_drained: false,
            });
        }
        let rows = self
            .store
            .claim_by_channel(ChannelClaim {
                now: millis(now),
                lease_ms: lease,
                owner: &self.owner,
                shares: &shares,
                others,
            })
            .await?;
        let claimed = rows.len();
        let mut got: HashMap<&str, u32> = HashMap::new();
        let mut got_others = 0;
        for row in &rows {
            match shares.iter().find(|(c, _)| *c == row.channel) {
                Some((c, _)) => *got.entry(c.as_str()).or_default() += 1,
                None => got_others += 1,
            }
        }
        let drained = shares
            .iter()
            .filter(|(c, n)| *n > 0 && got.get(c.as_str()).copied().unwrap_or(0) < *n)
            .map(|(c, _)| c.clone())
            .collect();
        let mut counts = self.claimed.lock().unwrap_or_else(|p| p.into_inner());
        for row in rows {
            *counts.entry(row.channel.clone()).or_default() += 1;
            let in_flight = InFlight {
                shared: Arc::clone(self),
                channel: row.channel.clone(),
            };
            let this = Arc::clone(self);
            let clock = Arc::clone(clock);
            sends.spawn(async move {
                let delivered = this.deliver(row, now, clock).await;
                (delivered, Box::new(in_flight) as Held)
            });
        }
        Ok(Claimed {
            claimed,
            drained,
            others_drained: got_others < others,
        })
    }

    /// Whether the rollout may send now, read from the store (a pause or
    /// cancel comes from another process). Sends that ask while a read is
    /// already under way share its answer instead of each queueing a read
    /// of their own; the next ask after it finishes reads again, so every
    /// send still follows a read that finished after it asked. Reads of one
    /// rollout start at least [`STATE_READ_SPACING`] apart: asks arriving
    /// meanwhile wait for the next read together. Without the spacing,
    /// sends that each wait for a free connection (email) ask one at a
    /// time, and each paid a read of its own.
    async fn may_send(&self, rollout_id: &str) -> Result<bool, DeliveryError> {
        let check = self
            .state_checks
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .entry(rollout_id.to_owned())
            .or_default()
            .clone();
        let answer = check
            .get_or_try_init(|| async {
                let last = self
                    .state_reads
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .get(rollout_id)
                    .copied();
                if let Some(last) = last {
                    tokio::time::sleep_until(last + STATE_READ_SPACING).await;
                }
                self.state_reads
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .insert(rollout_id.to_owned(), tokio::time::Instant::now());
                let answer = self.store.may_send(rollout_id).await;
                // Later asks start a fresh read.
                let mut checks = self.state_checks.lock().unwrap_or_else(|p| p.into_inner());
                if checks
                    .get(rollout_id)
                    .is_some_and(|c| Arc::ptr_eq(c, &check))
                {
                    checks.remove(rollout_id);
                }
                answer
            })
            .await?;
        Ok(*answer)
    }

    /// Sends one row and counts its outcome for `/metrics`.
    async fn deliver(
        self: Arc<Self>,
        row: ClaimedDelivery,
        now: DateTime<Utc>,
        clock: Clock,
    ) -> Result<Delivered, DeliveryError> {
        let (id, channel) = (row.id, row.channel.clone());
        let delivered = match self.deliver_row(row, now, clock).await {
            Ok(delivered) => delivered,
            // The store failed before the send (a row fails only so): the
            // row is given back unsent, and claimed again once the store
            // answers, rather than failing the round or waiting out its
            // lease.
            Err(DeliveryError::Store(e)) => {
                tracing::warn!(delivery = id, channel = %channel, "a message was given back unsent, to be sent once the database answers: {e}");
                (id, DeliveryOutcome::Released, None)
            }
            Err(e) => return Err(e),
        };
        let outcome = match &delivered.1 {
            DeliveryOutcome::Sent { .. } => "sent",
            DeliveryOutcome::RetryAt { .. } => "retry",
            DeliveryOutcome::Dead { .. } => "dead",
            DeliveryOutcome::Released => "released",
            DeliveryOutcome::Deferred { .. } => "deferred",
        };
        metrics::counter!(crate::metrics::SENDS, "channel" => channel, "outcome" => outcome)
            .increment(1);
        Ok(delivered)
    }

    async fn deliver_row(
        self: Arc<Self>,
        row: ClaimedDelivery,
        now: DateTime<Utc>,
        clock: Clock,
    ) -> Result<Delivered, DeliveryError> {
        let rollout = self.rollouts.get(&*self.store, &row.rollout_id).await?;
        // The directory as it is now: an import while serving replaces it.
        let world = self.world.get();
        let _permit = match self.in_flight.get(&row.channel) {
            Some(s) => Some(
                s.clone()
                    .acquire_owned()
                    .await
                    .expect("semaphores are never closed"),
            ),
            None => None,
        };
        // Checked per row, so a pause or cancel takes effect before the next send.
        if !self.may_send(&row.rollout_id).await? {
            return Ok((row.id, DeliveryOutcome::Released, None));
        }
        // Over the channel's quota, the row waits for the window, counted
        // as no attempt: deferred, not failed.
        let via = match self.reserve(&row.channel, millis(now)) {
            Ok(via) => via,
            Err(at) => return Ok((row.id, DeliveryOutcome::Deferred { at }, None)),
        };
        let dead = |reason: String| self.dead(&row, &rollout.definition, reason);
        let Some(route) = world.routes.get(via) else {
            return Ok(dead(format!(
                "channel \"{}\" is not configured",
                row.channel
            )));
        };
        let composed = if row.step_kind == StepKind::InductionDigest {
            let joiners = super::induction_digest::progress_for(
                &*self.store,
                &self.rollouts,
                &world,
                &row.recipient_id,
                now,
            )
            .await?;
            Ok(self
                .composer
                .induction_digest(route, &super::induction_digest::digest_text(&joiners)))
        } else {
            self.composer.compose(&row, &rollout, &world, route, now)
        };
        let (message, actions) = match composed {
            Ok(m) => m,
            Err(reason) => return Ok(dead(reason)),
        };
        let Some(address) = world.address(&row.recipient_id, &row.channel) else {
            return Ok(dead(format!(
                "{} has no {} identity",
                row.recipient_id, route.identity
            )));
        };
        let request = SendRequest {
            delivery_id: format!("d{}", row.id),
            idempotency_key: row.idempotency_key.clone(),
            channel: route.kind.clone(),
            recipient: Recipient {
                person_id: row.recipient_id.clone(),
                display_name: world
                    .person(&row.recipient_id)
                    .map(|p| p.display_name.clone())
                    .unwrap_or_default(),
                address: address.to_string(),
            },
            message,
            actions,
            reply: None,
            list: self.composer.mailing_list(&row, &rollout),
            post: None,
        };
        // The wait is counted from the answer: time spent waiting for a
        // slot, the channel's pacing and the provider is not taken off it.
        let policy = &route.retry;
        let retry = |reason: String, after: Option<Duration>| -> Delivered {
            let max_attempts = policy
                .max_attempts
                .unwrap_or(rollout.definition.max_attempts);
            if row.attempts >= max_attempts {
                return dead(format!("gave up after {} attempts: {reason}", row.attempts));
            }
            let seconds = |s: Option<f64>, default: Duration| {
                s.and_then(|s| Duration::try_from_secs_f64(s).ok())
                    .unwrap_or(default)
            };
            let delay = backoff_by(
                row.attempts,
                after,
                seconds(policy.first_wait_seconds, self.settings.backoff_base),
                policy.factor.unwrap_or(2.0),
                seconds(policy.longest_wait_seconds, self.settings.backoff_max),
                jitter(row.id, row.attempts),
            );
            self.retries
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .add(&row.channel, &reason);
            let answered = millis(clock().max(now));
            let at =
                answered.saturating_add(i64::try_from(delay.as_millis()).unwrap_or(i64::MAX / 2));
            (row.id, DeliveryOutcome::RetryAt { at, reason }, None)
        };
        if let Some(rate) = self.rates.get(via) {
            rate.wait().await;
        }
        let called = std::time::Instant::now();
        let answer = self.host.send(via, &request).await;
        metrics::histogram!(crate::metrics::PLUGIN_CALL_SECONDS, "channel" => via.to_owned(), "call" => "send")
            .record(called.elapsed().as_secs_f64());
        Ok(match answer {
            Ok(SendResult::Delivered { provider_id }) => {
                (row.id, DeliveryOutcome::Sent { provider_id }, None)
            }
            Ok(SendResult::Retry {
                reason,
                retry_after_ms,
            }) => retry(reason, retry_after_ms.map(Duration::from_millis)),
            Ok(SendResult::Failed {
                reason,
                unreachable,
            }) => {
                if unreachable {
                    // Before the fallback is chosen, so it skips this channel.
                    world.unreachable(&route.identity, &row.recipient_id, &address);
                    // After the send: a store failure here must not lose
                    // its outcome. The mark is made again by the next
                    // send that finds the address gone.
                    if let Err(e) = self
                        .store
                        .mark_unreachable(&route.identity, &address, millis(now))
                        .await
                    {
                        tracing::warn!(channel = %row.channel, person = %row.recipient_id, "could not store that this person can no longer be reached here: {e}");
                    }
                    tracing::warn!(
                        channel = %row.channel,
                        person = %row.recipient_id,
                        "the provider says this person can no longer be reached here; using their next channel from now on"
                    );
                }
                dead(reason)
            }
            Err(e @ PluginError::UnknownInstance { .. }) => dead(e.to_string()),
            // Timeouts and stopped instances: the outcome is unknown, so try again.
            Err(e) => retry(e.to_string(), None),
        })
    }

    /// The instance a send on `channel` goes through, its place in that
    /// instance's quota taken; or, when no instance has room, when to try
    /// again.
    fn reserve<'a>(&'a self, channel: &'a str, now: i64) -> Result<&'a str, i64> {
        let Some(spread) = self.spreads.get(channel) else {
            if let Some(quota) = self.quotas.get(channel) {
                quota.reserve(now)?;
            }
            return Ok(channel);
        };
        let n = spread.members.len();
        let start = spread
            .next
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let mut soonest = i64::MAX;
        for k in 0..n {
            let member = &spread.members[(start + k) % n];
            match self.quotas.get(member).map(|quota| quota.reserve(now)) {
                None | Some(Ok(())) => return Ok(member),
                Some(Err(at)) => soonest = soonest.min(at),
            }
        }
        Err(soonest)
    }

    /// A dead letter, with the person's next reachable channel queued when
    /// the rollout allows fallback.
    fn dead(
        &self,
        row: &ClaimedDelivery,
        definition: &cascade_model::rollout::RolloutDefinition,
        reason: String,
    ) -> Delivered {
        let fallback = fallback_for(&self.world.get(), row, definition);
        (row.id, DeliveryOutcome::Dead { reason }, fallback)
    }
}

/// The delivery of a dead row's step on the person's next reachable channel
/// after the row's, when the rollout allows fallback.
pub fn fallback_for(
    world: &World,
    row: &ClaimedDelivery,
    definition: &cascade_model::rollout::RolloutDefinition,
) -> Option<NewDelivery> {
    definition
        .fallback
        .then(|| {
            world
                .reachable(&row.recipient_id, &definition.channels)
                .into_iter()
                .find(|(rank, _)| *rank > row.channel_rank)
        })
        .flatten()
        .map(|(rank, channel)| {
            let base = row
                .idempotency_key
                .rsplit_once('/')
                .map(|(b, _)| b)
                .unwrap_or(&row.idempotency_key);
            NewDelivery {
                idempotency_key: format!("{base}/{rank}"),
                rollout_id: row.rollout_id.clone(),
                person_id: row.person_id.clone(),
                recipient_id: row.recipient_id.clone(),
                wave: row.wave,
                step_kind: row.step_kind,
                step_number: row.step_number,
                channel: channel.to_owned(),
                channel_rank: rank,
                due_at: 0,
            }
        })
}

/// A stable pseudo-random number in [0, 1) per row and attempt.
pub(super) fn jitter(id: i64, attempt: u32) -> f64 {
    let mut x = (id as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15)
        ^ u64::from(attempt).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x ^= x >> 31;
    (x >> 11) as f64 / (1u64 << 53) as f64
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_quota_takes_sends_until_full_then_says_when_it_has_room() {
        let windows = QuotaWindows::new(
            Quota {
                per_minute: Some(2),
                per_day: Some(3),
            },
            Vec::new(),
        );
        assert_eq!(windows.reserve(0), Ok(()));
        assert_eq!(windows.reserve(10), Ok(()));
        assert_eq!(windows.reserve(20), Err(MINUTE_MS));
        assert!(windows.is_full(59_999));
        assert_eq!(windows.reserve(MINUTE_MS), Ok(()));
        // Three in the day: the next when the first is a day old.
        assert_eq!(windows.reserve(3 * MINUTE_MS), Err(DAY_MS));
        assert_eq!(windows.reserve(DAY_MS), Ok(()));
    }

    use super::*;

    #[test]
    fn backoff_doubles_with_jitter_and_stops_at_the_maximum() {
        let (base, max) = (Duration::from_secs(30), Duration::from_secs(3600));
        assert_eq!(backoff(1, None, base, max, 0.5), Duration::from_secs(30));
        assert_eq!(backoff(3, None, base, max, 0.5), Duration::from_secs(120));
        assert_eq!(backoff(30, None, base, max, 0.5), max);
        assert_eq!(backoff(1, None, base, max, 0.0), Duration::from_secs(24));
        assert!(backoff(1, None, base, max, 0.999) < Duration::from_secs(36));
    }

    #[test]
    fn a_channels_factor_grows_each_wait_up_to_its_longest() {
        let (base, max) = (Duration::from_secs(10), Duration::from_secs(100));
        assert_eq!(backoff_by(1, None, base, 3.0, max, 0.5), base);
        assert_eq!(
            backoff_by(3, None, base, 3.0, max, 0.5),
            Duration::from_secs(90)
        );
        assert_eq!(backoff_by(4, None, base, 3.0, max, 0.5), max);
        assert_eq!(backoff_by(200, None, base, 10.0, max, 0.5), max);
    }

    #[test]
    fn a_providers_retry_after_wins() {
        let d = backoff(
            5,
            Some(Duration::from_secs(7)),
            Duration::from_secs(30),
            Duration::from_secs(3600),
            0.3,
        );
        assert_eq!(d, Duration::from_secs(7));
    }

    #[test]
    fn a_channel_allowing_more_in_flight_than_half_a_batch_is_kept_that_full() {
        let settings = DispatchSettings::default();
        // Most plugins: topped up to a batch when under half a batch.
        assert_eq!(settings.channel_claims(8), (128, 256));
        assert_eq!(settings.channel_claims(128), (128, 256));
        // Telegram's 256: kept at 256 in flight, with half a batch queued.
        assert_eq!(settings.channel_claims(256), (256, 384));
        assert_eq!(settings.channel_claims(0), (128, 256));
    }

    #[tokio::test(start_paused = true)]
    async fn a_rate_limit_spaces_sends_evenly() {
        let limit = RateLimit::per_second(10.0);
        let start = tokio::time::Instant::now();
        for _ in 0..21 {
            limit.wait().await;
        }
        assert_eq!(start.elapsed(), Duration::from_secs(2));
    }

    #[tokio::test(start_paused = true)]
    async fn a_plugins_rate_of_any_size_waits_at_most_as_long_as_the_slowest_rate_allowed() {
        for rate in [
            0.0,
            -1.0,
            f64::NAN,
            f64::INFINITY,
            f64::MIN_POSITIVE,
            5e-324,
            1e-20,
            f64::MAX,
        ] {
            let limit = RateLimit::per_second(rate);
            assert!(limit.interval <= Duration::from_secs(100), "{rate}");
            limit.wait().await;
            limit.wait().await;
        }
    }

    #[test]
    fn failures_for_now_are_summarised_per_channel_without_addresses() {
        let mut summary = RetrySummary::default();
        let start = tokio::time::Instant::now();
        for _ in 0..3 {
            summary.add("email", "451 4.7.1 <sam@example.org>: try again later");
        }
        summary.add(
            "telegram",
            "Telegram asked to slow down (429), retry after 2s",
        );
        assert_eq!(
            summary.due_lines(start),
            [
                "channel \"email\": 3 sends failed for now and will be retried; the latest reason: 451 4.7.1 <address> try again later",
                "channel \"telegram\": 1 send failed for now and will be retried; the latest reason: Telegram asked to slow down (429), retry after 2s",
            ]
        );
        summary.add("email", "451 again");
        assert!(summary.due_lines(start + Duration::from_secs(1)).is_empty());
        assert_eq!(summary.due_lines(start + RETRY_SUMMARY_EVERY).len(), 1);
    }

    #[test]
    fn jitter_stays_in_range_and_varies() {
        let values: Vec<f64> = (0..100).map(|i| jitter(i, 1)).collect();
        assert!(values.iter().all(|v| (0.0..1.0).contains(v)));
        assert!(values.iter().any(|v| *v < 0.3) && values.iter().any(|v| *v > 0.7));
    }
}
