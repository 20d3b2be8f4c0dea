//! The rollout side of the store: rollouts with their members, and the
//! durable outbox the scheduler fills and the dispatcher drains. Plain rows
//! in, plain rows out; times are Unix milliseconds (UTC).

use super::StoreError;
use cascade_model::rollout::StepKind;
use std::future::Future;

/// A rollout to persist, with every member and when their first step is due.
pub struct NewRollout<'a> {
    pub id: &'a str,
    pub item_id: &'a str,
    pub item_version: &'a str,
    /// The rollout definition as JSON.
    pub definition: &'a str,
    pub members: &'a [NewMember],
    /// Members chosen by the store from its directory, in the same
    /// transaction, besides `members`.
    pub audience: Option<&'a super::AudienceQuery>,
    /// Posts in team channels, written with the rollout.
    pub team_posts: &'a [super::NewTeamPost],
    pub now: i64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewMember {
    pub person_id: String,
    pub wave: u32,
    pub first_due_at: i64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RolloutState {
    Active,
    Paused,
    Cancelled,
}

impl RolloutState {
    pub fn as_str(self) -> &'static str {
        match self {
            RolloutState::Active => "active",
            RolloutState::Paused => "paused",
            RolloutState::Cancelled => "cancelled",
        }
    }

    pub fn parse(s: &str) -> Option<RolloutState> {
        match s {
            "active" => Some(RolloutState::Active),
            "paused" => Some(RolloutState::Paused),
            "cancelled" => Some(RolloutState::Cancelled),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredRollout {
    pub id: String,
    pub item_id: String,
    pub item_version: String,
    pub definition: String,
    pub state: RolloutState,
    pub created_at: i64,
}

/// A member whose next step is due.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct DueMember {
    pub rollout_id: String,
    pub person_id: String,
    pub wave: u32,
    pub next_step: u32,
    pub acknowledged: bool,
    /// Days later than their wave's their timetable runs: 0 but for a
    /// joiner of an open rollout.
    pub shift_days: u32,
    /// When the import that enrolled them ran (Unix ms), for a joiner; a
    /// key item of the induction times their steps from it.
    pub joined_at: Option<i64>,
}

/// An acknowledged member whose next refresher the scheduler should look at.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct DueRefresher {
    pub rollout_id: String,
    pub person_id: String,
    pub wave: u32,
    /// The next refresher to queue (1-based).
    pub refresher_next: u32,
    pub acknowledged_at: i64,
}

/// A member's move past the refreshers queued now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefresherAdvance {
    pub rollout_id: String,
    pub person_id: String,
    pub refresher_next: u32,
    /// When the next refresher is due; `None` when none is left.
    pub refresher_due_at: Option<i64>,
}

/// A member's move to their next step, written with the deliveries it queued.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemberAdvance {
    pub rollout_id: String,
    pub person_id: String,
    pub next_step: u32,
    pub next_due_at: Option<i64>,
    /// A new shift of their timetable (see [`DueMember::shift_days`]):
    /// set when an absence moves it.
    pub shift_days: Option<u32>,
}

/// One outbox row to queue.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewDelivery {
    pub idempotency_key: String,
    pub rollout_id: String,
    pub person_id: String,
    pub recipient_id: String,
    pub wave: u32,
    pub step_kind: StepKind,
    pub step_number: u32,
    pub channel: String,
    pub channel_rank: u32,
    pub due_at: i64,
}

/// An outbox row claimed by a dispatcher under a lease.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct ClaimedDelivery {
    pub id: i64,
    pub idempotency_key: String,
    pub rollout_id: String,
    pub person_id: String,
    pub recipient_id: String,
    pub wave: u32,
    pub step_kind: StepKind,
    pub step_number: u32,
    pub channel: String,
    pub channel_rank: u32,
    /// Attempts including this one.
    pub attempts: u32,
}

/// A claim of due rows fair per channel ([`Outbox::claim_by_channel`]):
/// each named channel gets up to its own share, in due order within the
/// channel, so a slow channel's old rows never take another's place.
#[derive(Debug, Clone, Copy)]
pub struct ChannelClaim<'a> {
    pub now: i64,
    pub lease_ms: i64,
    /// Who takes the lease: a dispatcher's id (see
    /// [`Outbox::take_back_leases`]).
    pub owner: &'a str,
    /// Each channel instance named and the most of its rows to claim; a
    /// share of 0 leaves the channel's rows alone (busy, at its quota, or
    /// not running).
    pub shares: &'a [(String, u32)],
    /// The most rows to claim of channels not named in `shares` (a channel
    /// no longer configured: its rows are dead-lettered with the reason).
    pub others: u32,
}

/// Where an outbox row is in its life, as the `state` column holds it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, sqlx::Type)]
#[sqlx(type_name = "TEXT", rename_all = "lowercase")]
pub enum DeliveryState {
    /// Waiting to be claimed; with attempts, a retry.
    Due,
    /// Claimed by a dispatcher until its lease ends.
    Leased,
    Sent,
    /// Given up, with the reason in its last error.
    Dead,
    /// Its rollout was cancelled before it was sent.
    Cancelled,
}

/// How a claimed delivery ended this time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DeliveryOutcome {
    Sent {
        provider_id: Option<String>,
    },
    RetryAt {
        at: i64,
        reason: String,
    },
    Dead {
        reason: String,
    },
    /// Not attempted (the rollout was paused or cancelled meanwhile): back
    /// to due, the attempt not counted.
    Released,
    /// Not attempted (the channel's sending quota is full): due again at
    /// `at`, the attempt not counted.
    Deferred {
        at: i64,
    },
}

/// Counts for one rollout, wave and channel.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DeliveryCounts {
    pub wave: u32,
    pub channel: String,
    pub due: u64,
    pub leased: u64,
    pub retrying: u64,
    pub sent: u64,
    pub dead: u64,
    pub cancelled: u64,
}

/// Per-wave member counts for one rollout.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WaveCounts {
    pub wave: u32,
    pub members: u64,
    /// Members whose first message is not queued yet.
    pub planned: u64,
    pub acknowledged: u64,
    /// Members an import marked inactive: no longer chased.
    pub left: u64,
    /// Members no longer in the rollout's audience: no longer chased.
    pub moved: u64,
    /// Members still chased who have not acknowledged (overdue once the
    /// wave's deadline has passed).
    pub waiting: u64,
}

/// A dead letter with its reason, for `cascade status`.
/// One rollout's totals: members, how many acknowledged, and outbox rows
/// sent and dead (every step's).
#[derive(Debug, Clone, Default, PartialEq, Eq, sqlx::FromRow)]
pub struct RolloutTotals {
    pub rollout_id: String,
    pub members: i64,
    pub acknowledged: i64,
    pub sent: i64,
    pub dead: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct DeadLetter {
    pub person_id: String,
    pub channel: String,
    pub step_kind: StepKind,
    pub reason: String,
}

/// The latest error of one channel of a rollout, for `cascade status`.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct ChannelError {
    pub channel: String,
    pub error: String,
    /// Rows of the channel waiting to be retried.
    pub retrying: i64,
}

/// One channel's queue of active rollouts' rows, for `/metrics`.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct ChannelQueue {
    pub channel: String,
    /// Due now (or overdue) and not claimed.
    pub due_now: i64,
    /// Claimed by a dispatcher and not yet answered.
    pub leased: i64,
    /// Waiting to be retried later.
    pub retrying: i64,
    /// When the oldest row due now fell due (Unix ms), if any.
    pub oldest_due_at: Option<i64>,
}

/// The outbox and rollout operations, on top of [`super::Store`].
pub trait Outbox: Send + Sync {
    /// Persists a rollout and all its members in one transaction; nothing is
    /// written if any part fails (an existing id included). Returns how
    /// many members were written.
    fn create_rollout(
        &self,
        rollout: NewRollout<'_>,
    ) -> impl Future<Output = Result<u64, StoreError>> + Send;

    fn rollouts(&self) -> impl Future<Output = Result<Vec<StoredRollout>, StoreError>> + Send;

    fn rollout(
        &self,
        id: &str,
    ) -> impl Future<Output = Result<Option<StoredRollout>, StoreError>> + Send;

    /// Sets a rollout's state; queued deliveries of a cancelled rollout are
    /// cancelled. Returns false when there is no such rollout.
    fn set_rollout_state(
        &self,
        id: &str,
        state: RolloutState,
        now: i64,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;

    /// Members of active rollouts whose next step is due at `now`.
    fn due_members(
        &self,
        now: i64,
        limit: u32,
    ) -> impl Future<Output = Result<Vec<DueMember>, StoreError>> + Send;

    /// Queues deliveries (a key already queued is skipped) and advances the
    /// members, in one transaction.
    fn materialise(
        &self,
        deliveries: &[NewDelivery],
        advances: &[MemberAdvance],
        now: i64,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// Acknowledged members of active rollouts, not out, whose next
    /// refresher should be looked at by `now` (issue 19).
    fn due_refreshers(
        &self,
        now: i64,
        limit: u32,
    ) -> impl Future<Output = Result<Vec<DueRefresher>, StoreError>> + Send;

    /// Queues refreshers (a key already queued is skipped) and moves the
    /// members on, in one transaction; a member taken out meanwhile stays
    /// without refreshers.
    fn materialise_refreshers(
        &self,
        deliveries: &[NewDelivery],
        advances: &[RefresherAdvance],
        now: i64,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// Claims up to `limit` rows of active rollouts that are due, or whose
    /// lease expired, until `now + lease_ms`; rows of the channel instances
    /// in `skip` (busy ones) are left for later.
    fn claim(
        &self,
        now: i64,
        limit: u32,
        lease_ms: i64,
        skip: &[String],
    ) -> impl Future<Output = Result<Vec<ClaimedDelivery>, StoreError>> + Send;

    /// Claims due rows (or rows whose lease expired) of active rollouts,
    /// each channel's share in due order within the channel, under a lease
    /// in `claim.owner`'s name; see [`ChannelClaim`].
    fn claim_by_channel(
        &self,
        claim: ChannelClaim<'_>,
    ) -> impl Future<Output = Result<Vec<ClaimedDelivery>, StoreError>> + Send;

    /// Ends now the leases of every row leased by an owner not in `alive`
    /// (or by no owner), so they are claimed again at once rather than when
    /// their lease runs out. For a dispatcher that knows which owners are
    /// alive: `cascade serve` holding the project's serve lock knows no
    /// other serve is; with several serves, the owners of live serves.
    /// Team posts and the edits of their counts leased by an owner not
    /// alive (or by none: leased before posts recorded owners) are taken
    /// back too. Returns the rows taken back, posts included.
    fn take_back_leases(
        &self,
        now: i64,
        alive: &[String],
    ) -> impl Future<Output = Result<u64, StoreError>> + Send;

    /// Whether a rollout may send now (it is active).
    fn may_send(&self, rollout_id: &str) -> impl Future<Output = Result<bool, StoreError>> + Send;

    /// Records outcomes of claimed rows and queues fallbacks, in one transaction.
    fn record(
        &self,
        outcomes: &[(i64, DeliveryOutcome)],
        fallbacks: &[NewDelivery],
        now: i64,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// Finishes what recordings left for later, and returns how many sends
    /// it linked into the evidence chain. PostgreSQL, where several serves
    /// record at once, links a recording's sends after it commits, unless
    /// another serve is linking then (migration
    /// `20261217000000_chain_pending.sql`), and adds the totals and report
    /// stamps a recording moves as rows of their own, folded here
    /// (`20261217000001_outbox_count_deltas.sql`); both read the same
    /// before and after. A serve calls this now and then, and when it
    /// stops; it never waits long for another transaction (one linking
    /// already links what is listed). SQLite does all of it in the
    /// transaction that records.
    fn settle(&self) -> impl Future<Output = Result<u64, StoreError>> + Send {
        async { Ok(0) }
    }

    /// A delivery sent on `channel` that the provider later reports it
    /// could not deliver for good (a delivery receipt's permanent failure):
    /// marked dead with `reason` and returned, so the engine can queue its
    /// fallback. `None` when no sent row of that channel has the key.
    fn bounce(
        &self,
        channel: &str,
        idempotency_key: &str,
        reason: &str,
        now: i64,
    ) -> impl Future<Output = Result<Option<ClaimedDelivery>, StoreError>> + Send;

    fn delivery_counts(
        &self,
        rollout_id: &str,
    ) -> impl Future<Output = Result<Vec<DeliveryCounts>, StoreError>> + Send;

    fn wave_counts(
        &self,
        rollout_id: &str,
    ) -> impl Future<Output = Result<Vec<WaveCounts>, StoreError>> + Send;

    /// Every rollout's totals in one query (what a list of rollouts shows),
    /// by rollout id.
    fn rollout_totals(&self)
    -> impl Future<Output = Result<Vec<RolloutTotals>, StoreError>> + Send;

    /// Outbox rows still to send: due (now or later, retries included) or leased.
    fn outstanding(&self) -> impl Future<Output = Result<u64, StoreError>> + Send;

    /// Outbox rows of active rollouts to send now: due at `now` or
    /// earlier, or leased (being sent, or claimed by a process that
    /// stopped, to be claimed again when the lease runs out). Rows waiting
    /// to be retried later are not counted.
    fn due_now(&self, now: i64) -> impl Future<Output = Result<u64, StoreError>> + Send;

    /// Per channel, the rows of active rollouts still to send at `now`
    /// (channels with none are left out).
    fn queues(
        &self,
        now: i64,
    ) -> impl Future<Output = Result<Vec<ChannelQueue>, StoreError>> + Send;

    /// When each message sent on `channel` after `since` was sent, oldest
    /// first: a channel's quota windows, read again when `serve` starts.
    fn sent_times(
        &self,
        channel: &str,
        since: i64,
    ) -> impl Future<Output = Result<Vec<i64>, StoreError>> + Send;

    /// Every channel identity of every person.
    fn all_identities(
        &self,
    ) -> impl Future<Output = Result<Vec<cascade_model::directory::ChannelIdentity>, StoreError>> + Send;

    fn dead_letters(
        &self,
        rollout_id: &str,
        limit: u32,
    ) -> impl Future<Output = Result<Vec<DeadLetter>, StoreError>> + Send;

    /// Queues a rollout's dead letters again, due at `now` with their
    /// attempts reset: for each step of each recipient, only the first
    /// channel that dead-lettered, and only when no row of that step was
    /// sent or is still queued (so nobody gets a step twice), and none
    /// about a member who left or moved out or to a recipient who left.
    /// Returns how many rows were queued.
    fn retry_dead_letters(
        &self,
        rollout_id: &str,
        now: i64,
    ) -> impl Future<Output = Result<u64, StoreError>> + Send;

    /// Per channel of the rollout, the latest error of a row not sent
    /// (waiting to be retried, being sent again, or dead), by channel name.
    fn last_errors(
        &self,
        rollout_id: &str,
    ) -> impl Future<Output = Result<Vec<ChannelError>, StoreError>> + Send;
}

/// A count from `SUM` (NULL over no rows) or `COUNT`.
pub(crate) fn count(n: Option<i64>) -> u64 {
    n.unwrap_or(0).max(0) as u64
}

pub(crate) const ROLLOUT_COLUMNS: &str = "id, item_id, item_version, definition, state, created_at";

/// A `rollouts` row; a state this cascade does not know reads as paused.
#[derive(sqlx::FromRow)]
pub(crate) struct RolloutRow {
    id: String,
    item_id: String,
    item_version: String,
    definition: String,
    state: String,
    created_at: i64,
}

impl From<RolloutRow> for StoredRollout {
    fn from(r: RolloutRow) -> StoredRollout {
        StoredRollout {
            id: r.id,
            item_id: r.item_id,
            item_version: r.item_version,
            definition: r.definition,
            state: RolloutState::parse(&r.state).unwrap_or(RolloutState::Paused),
            created_at: r.created_at,
        }
    }
}
