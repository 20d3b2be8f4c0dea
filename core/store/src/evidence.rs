//! The evidence side of the store: acknowledgements (one per person per item
//! version; repeats logged, refusals counted), champion cascade confirmations,
//! follow-up answers, and the one-time codes that link chat accounts.

use super::StoreError;
use cascade_model::rollout::StepKind;
use std::future::Future;

/// How an acknowledgement was made; stored as its [`AckMethod::as_str`] text.
#[derive(Debug, Clone, Copy, PartialEq, Eq, sqlx::Type)]
#[sqlx(type_name = "TEXT", rename_all = "kebab-case")]
pub enum AckMethod {
    /// A signed link, confirmed with a POST.
    Link,
    /// A chat button.
    Button,
    /// A chat command such as `/ack`.
    Command,
    /// Recorded by someone else for the person.
    OnBehalf,
}

impl AckMethod {
    pub fn as_str(self) -> &'static str {
        match self {
            AckMethod::Link => "link",
            AckMethod::Button => "button",
            AckMethod::Command => "command",
            AckMethod::OnBehalf => "on-behalf",
        }
    }
}

/// An outbox row with the item version its rollout pinned: what a token or
/// a button press refers to.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct DeliveryInfo {
    pub id: i64,
    pub rollout_id: String,
    pub person_id: String,
    pub recipient_id: String,
    pub step_kind: StepKind,
    pub step_number: u32,
    pub channel: String,
    pub item_id: String,
    pub item_version: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewAcknowledgement {
    pub person_id: String,
    pub item_id: String,
    pub item_version: String,
    pub rollout_id: Option<String>,
    pub delivery_id: Option<i64>,
    pub channel: String,
    pub method: AckMethod,
    pub at: i64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AckOutcome {
    Recorded,
    /// The person had already acknowledged this version, at this time.
    AlreadyAcknowledged {
        at: i64,
    },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewConfirmation {
    pub champion_id: String,
    pub item_id: String,
    pub team_id: String,
    /// `YYYY-MM-DD`, the date of the team meeting or session.
    pub session_date: String,
    pub present: u32,
    /// team-meeting, supervision, briefing-session or email.
    pub method: String,
    pub note: Option<String>,
    pub channel: String,
    pub at: i64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewAnswer {
    pub rollout_id: String,
    pub person_id: String,
    /// 1-based, as in the rollout's follow-ups.
    pub follow_up: u32,
    pub answer: String,
    pub example: Option<String>,
    pub channel: String,
    pub at: i64,
}

/// Learning a person has been sent and not yet acknowledged: the latest
/// delivery of each item version.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct PendingItem {
    pub delivery_id: i64,
    pub rollout_id: String,
    pub item_id: String,
    pub item_version: String,
}

/// Why a link code was not accepted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CodeRefusal {
    Unknown,
    Expired,
    AlreadyUsed,
}

pub trait Evidence: Send + Sync {
    fn delivery(
        &self,
        id: i64,
    ) -> impl Future<Output = Result<Option<DeliveryInfo>, StoreError>> + Send;

    /// Records the first acknowledgement of an item version and, in the same
    /// transaction, stops that person's reminders and escalations in every
    /// rollout of the version. A repeat changes nothing but the log.
    fn acknowledge_item(
        &self,
        ack: &NewAcknowledgement,
    ) -> impl Future<Output = Result<AckOutcome, StoreError>> + Send;

    /// Several acknowledgements in one transaction (one commit, one sync to
    /// disk), each as [`Evidence::acknowledge_item`] records it, in order.
    fn acknowledge_items(
        &self,
        acks: &[NewAcknowledgement],
    ) -> impl Future<Output = Result<Vec<AckOutcome>, StoreError>> + Send;

    /// Counts a refused acknowledgement attempt in its minute, by channel,
    /// method and reason (one of a fixed set). Refusals are counted, never
    /// logged one row each: anyone can send a forged one, so a row each
    /// would let anyone grow the store.
    fn count_refusal(
        &self,
        channel: &str,
        method: AckMethod,
        reason: &str,
        at: i64,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// Counts the refusal of a stored inbound event (see [`crate::Inbox`])
    /// and marks the event handled, in one transaction: an event handled
    /// again after a crash is counted once. `false` when it had been
    /// handled already, so nothing was counted.
    fn count_refusal_of_event(
        &self,
        channel: &str,
        event_id: &str,
        method: AckMethod,
        reason: &str,
        at: i64,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;

    /// Keeps the keyed hash (see `inbound::LinkCodeKey`) of a new one-time
    /// code for a person.
    fn create_link_code(
        &self,
        person_id: &str,
        code_hash: &str,
        now: i64,
        expires_at: i64,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// Uses a code once: links the chat account to the code's person (an
    /// account linked before is moved) and returns the person. The code is
    /// given as its keyed hash, and as the plain SHA-256 that only codes kept
    /// by an older cascade are looked up by. A used code sent again from
    /// the account it linked returns the person again, changing nothing.
    fn redeem_link_code(
        &self,
        code_hash: &str,
        legacy_hash: &str,
        channel: &str,
        account: &str,
        now: i64,
    ) -> impl Future<Output = Result<Result<String, CodeRefusal>, StoreError>> + Send;

    /// The person a chat account is linked to.
    fn person_for_account(
        &self,
        channel: &str,
        account: &str,
    ) -> impl Future<Output = Result<Option<String>, StoreError>> + Send;

    /// Records a confirmation; false when the same one was already recorded.
    fn confirm_cascade(
        &self,
        confirmation: &NewConfirmation,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;

    /// Records an answer; false when the person already answered it.
    fn answer_follow_up(
        &self,
        answer: &NewAnswer,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;

    /// Adds the optional example to an answer given without one; false when
    /// there is no such answer or it already has an example.
    fn add_follow_up_example(
        &self,
        rollout_id: &str,
        person_id: &str,
        follow_up: u32,
        example: &str,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;

    /// Items sent to the person (as their own learning, not an escalation
    /// about someone else) in active or paused rollouts, not yet acknowledged.
    fn pending_items(
        &self,
        person_id: &str,
    ) -> impl Future<Output = Result<Vec<PendingItem>, StoreError>> + Send;

    /// The latest delivery of `item_id` sent to the person as their own
    /// learning in a rollout not cancelled, acknowledged or not.
    fn delivered_item(
        &self,
        person_id: &str,
        item_id: &str,
    ) -> impl Future<Output = Result<Option<PendingItem>, StoreError>> + Send;

    /// Marks an identity the provider says can no longer be reached (the
    /// person blocked the bot); deliveries stop using it until it is linked
    /// again.
    fn mark_unreachable(
        &self,
        channel: &str,
        address: &str,
        at: i64,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// A 32-byte secret of the engine's own, made on first use and kept.
    fn engine_secret(&self, name: &str)
    -> impl Future<Output = Result<Vec<u8>, StoreError>> + Send;
}
