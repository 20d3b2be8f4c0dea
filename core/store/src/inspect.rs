//! A typed, read-only look at what the store holds: every outbox row, the
//! rollouts' members, the evidence and the identities, as plain rows.
//!
//! Nothing in cascade decides anything from these; they are for tests and
//! tools that check what the engine wrote, so that they need not know the
//! database's tables (a second store implementation implements this trait
//! and every such test runs against it unchanged).
//!
//! Counts kept as `u32` are read as `i64` and converted, since PostgreSQL
//! has no unsigned integers (its columns are BIGINT).

use super::{AckMethod, DeliveryState, StoreError};
use cascade_model::rollout::StepKind;
use std::future::Future;

/// One outbox row as the store keeps it. Times are Unix milliseconds.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct OutboxRow {
    pub id: i64,
    pub idempotency_key: String,
    pub rollout_id: String,
    /// Whose learning this is.
    pub person_id: String,
    /// Who receives it: the person, or their champion or manager for an
    /// escalation.
    pub recipient_id: String,
    #[sqlx(try_from = "i64")]
    pub wave: u32,
    pub step_kind: StepKind,
    #[sqlx(try_from = "i64")]
    pub step_number: u32,
    pub channel: String,
    #[sqlx(try_from = "i64")]
    pub channel_rank: u32,
    pub state: DeliveryState,
    #[sqlx(try_from = "i64")]
    pub attempts: u32,
    pub due_at: i64,
    pub lease_until: Option<i64>,
    pub provider_id: Option<String>,
    pub last_error: Option<String>,
    pub sent_at: Option<i64>,
}

/// A rollout's member and where they are in its steps.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct MemberRecord {
    pub rollout_id: String,
    pub person_id: String,
    /// 0-based index into the definition's waves.
    #[sqlx(try_from = "i64")]
    pub wave: u32,
    /// Index into the wave's steps of the next step to queue.
    #[sqlx(try_from = "i64")]
    pub next_step: u32,
    /// `None` once every step is done.
    pub next_due_at: Option<i64>,
    pub acknowledged_at: Option<i64>,
    /// Where they were when the rollout reached them.
    pub team_id: Option<String>,
    pub agency_id: Option<String>,
    /// `left` or `moved` once no longer chased.
    pub out_reason: Option<String>,
    pub out_at: Option<i64>,
    /// The next step's due time put aside when they went out.
    pub out_next_due_at: Option<i64>,
    /// When an import enrolled them into an open rollout after its start;
    /// `None` for the members it started with.
    pub joined_at: Option<i64>,
    /// Days later than their wave's their timetable runs.
    #[sqlx(try_from = "i64")]
    pub shift_days: u32,
    /// The next refresher to queue (1-based) and when it is looked at.
    #[sqlx(try_from = "i64")]
    pub refresher_next: u32,
    pub refresher_due_at: Option<i64>,
}

/// A recorded acknowledgement: the first of a person for an item version.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct AcknowledgementRecord {
    pub person_id: String,
    pub item_id: String,
    pub item_version: String,
    pub rollout_id: Option<String>,
    pub delivery_id: Option<i64>,
    /// The channel instance, or `web` for a signed link.
    pub channel: String,
    pub method: AckMethod,
    pub at: i64,
}

/// One line of the acknowledgement log: every attempt, `recorded` or `repeat`.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct AckLogRecord {
    pub person_id: Option<String>,
    pub delivery_id: Option<i64>,
    pub channel: String,
    pub method: String,
    pub outcome: String,
    pub at: i64,
}

/// Refused attempts of one reason in one minute.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct RefusalCount {
    /// The start of the minute.
    pub minute: i64,
    pub channel: String,
    pub method: String,
    pub reason: String,
    pub count: i64,
    pub last_at: i64,
}

/// A champion's recorded cascade.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct ConfirmationRecord {
    pub champion_id: String,
    pub item_id: String,
    pub team_id: String,
    /// `YYYY-MM-DD`.
    pub session_date: String,
    #[sqlx(try_from = "i64")]
    pub present: u32,
    pub method: String,
    pub note: Option<String>,
    pub channel: String,
    pub at: i64,
}

/// A recorded answer to a follow-up question.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct AnswerRecord {
    pub rollout_id: String,
    pub person_id: String,
    /// 1-based.
    #[sqlx(try_from = "i64")]
    pub follow_up: u32,
    pub answer: String,
    pub example: Option<String>,
    /// The reason chosen for not using the learning, if any.
    pub reason: Option<String>,
    pub channel: String,
    pub at: i64,
}

/// A person's address on a channel.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct IdentityRecord {
    pub person_id: String,
    pub channel: String,
    pub address: String,
    /// When the provider said the address can no longer be reached.
    pub unreachable_at: Option<i64>,
}

/// A kept link code: only its hash.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct LinkCodeRecord {
    pub code_hash: String,
    /// `hmac-sha256`, or `sha256` for a code kept by an older cascade.
    pub hash_kind: String,
    pub person_id: String,
    pub created_at: i64,
    pub expires_at: i64,
    pub used_at: Option<i64>,
}

/// Read-only queries over everything the engine writes, each ordered so a
/// test can compare whole lists. Not used by cascade itself.
pub trait Inspect: Send + Sync {
    /// Every outbox row, in the order queued.
    fn outbox_rows(&self) -> impl Future<Output = Result<Vec<OutboxRow>, StoreError>> + Send;

    /// The outbox rows of one rollout, in the order queued.
    fn rollout_outbox(
        &self,
        rollout_id: &str,
    ) -> impl Future<Output = Result<Vec<OutboxRow>, StoreError>> + Send;

    /// A rollout's members, by person.
    fn members(
        &self,
        rollout_id: &str,
    ) -> impl Future<Output = Result<Vec<MemberRecord>, StoreError>> + Send;

    /// Every recorded acknowledgement, in the order recorded.
    fn acknowledgements(
        &self,
    ) -> impl Future<Output = Result<Vec<AcknowledgementRecord>, StoreError>> + Send;

    /// The acknowledgement log, in the order written.
    fn acknowledgement_log(
        &self,
    ) -> impl Future<Output = Result<Vec<AckLogRecord>, StoreError>> + Send;

    /// The refusal counts, by reason, then minute, channel and method.
    fn refusal_counts(&self) -> impl Future<Output = Result<Vec<RefusalCount>, StoreError>> + Send;

    /// Every cascade confirmation, in the order recorded.
    fn confirmations(
        &self,
    ) -> impl Future<Output = Result<Vec<ConfirmationRecord>, StoreError>> + Send;

    /// Every follow-up answer, in the order recorded.
    fn answers(&self) -> impl Future<Output = Result<Vec<AnswerRecord>, StoreError>> + Send;

    /// Every answer to a refresher's question, by rollout, person and
    /// refresher.
    fn refresher_answers(
        &self,
    ) -> impl Future<Output = Result<Vec<crate::RefresherAnswer>, StoreError>> + Send;

    /// The identity at `address` on `channel`, reachable or not.
    fn identity(
        &self,
        channel: &str,
        address: &str,
    ) -> impl Future<Output = Result<Option<IdentityRecord>, StoreError>> + Send;

    /// Every kept link code, by hash.
    fn link_codes(&self) -> impl Future<Output = Result<Vec<LinkCodeRecord>, StoreError>> + Send;

    /// The values of the engine's own secrets, by name: for tests that
    /// check what the database does not hold.
    fn engine_secret_values(&self)
    -> impl Future<Output = Result<Vec<Vec<u8>>, StoreError>> + Send;
}
