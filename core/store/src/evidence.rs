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

/// One answer to a check question of an item version (issue 19), given
/// before the acknowledgement is recorded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckAttempt {
    pub person_id: String,
    pub item_id: String,
    pub item_version: String,
    /// The question's place in the item version, 1 to 3.
    pub question: u32,
    /// `CheckQuestion::digest`: identifies the question across versions.
    pub question_digest: String,
    /// The option chosen (1-based).
    pub chosen: u32,
    pub right: bool,
    /// How many answers to this question the store held when it was asked
    /// (the page or the buttons carry it): the answer counts only while the
    /// store still holds that many, so a button press handled twice or a
    /// form sent twice counts once.
    pub seen: u32,
    pub at: i64,
}

/// A person's answers to one check question, as kept.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct CheckAnswer {
    pub question: u32,
    pub question_digest: String,
    /// The option chosen first (1-based).
    pub first_answer: u32,
    pub right_first_time: bool,
    /// Answers given, the right one included.
    pub attempts: u32,
    /// When the right answer was given; `None` while only wrong ones were.
    pub answered_at: Option<i64>,
    /// The acknowledgement it was recorded with.
    pub acknowledgement_id: Option<i64>,
}

/// Where a person is with the check questions of an item version.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CheckProgress {
    /// When they acknowledged the version, if they have.
    pub acknowledged_at: Option<i64>,
    /// Their answers, by question.
    pub answers: Vec<CheckAnswer>,
}

impl CheckProgress {
    /// The answers to the question at `question` (1-based) with `digest`.
    pub fn answer(&self, question: u32, digest: &str) -> Option<&CheckAnswer> {
        self.answers
            .iter()
            .find(|a| a.question == question && a.question_digest == digest)
    }
}

/// One answer to the check question a refresher asked (issue 19).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefresherAttempt {
    pub rollout_id: String,
    pub person_id: String,
    /// The refresher's number in the rollout (1-based).
    pub refresher: u32,
    /// The outbox row that asked it.
    pub delivery_id: i64,
    pub item_id: String,
    pub item_version: String,
    /// The question's place in the item version, 1 to 3.
    pub question: u32,
    pub question_digest: String,
    /// The option chosen (1-based).
    pub chosen: u32,
    pub right: bool,
    /// The answers the store held when it was asked, as for
    /// [`CheckAttempt::seen`]: a repeat counts once.
    pub seen: u32,
    pub channel: String,
    pub at: i64,
}

/// A person's answers to one refresher's question, as kept.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct RefresherAnswer {
    pub rollout_id: String,
    pub person_id: String,
    pub refresher: u32,
    pub delivery_id: i64,
    pub question: u32,
    pub question_digest: String,
    pub first_answer: u32,
    pub right_first_time: bool,
    pub attempts: u32,
    /// When the right answer was given; `None` while only wrong ones were.
    pub answered_at: Option<i64>,
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

    /// Keeps answers to check questions given before the acknowledgement,
    /// in one transaction: the first answer to a question, then a count of
    /// tries until the right one. An answer counts only while the store
    /// holds `seen` answers to its question, none of them right, and no
    /// acknowledgement; returns how many counted. The acknowledgement,
    /// when recorded, takes the answered questions as its evidence in its
    /// own transaction.
    fn record_check_attempts(
        &self,
        attempts: &[CheckAttempt],
    ) -> impl Future<Output = Result<usize, StoreError>> + Send;

    /// Keeps an answer to a refresher's check question: the first answer,
    /// then a count of tries until the right one, each counted only while
    /// the store holds `seen` answers, none of them right. Returns whether
    /// it counted.
    fn record_refresher_attempt(
        &self,
        attempt: &RefresherAttempt,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;

    /// The person's answers to refresher `refresher` of a rollout, if any.
    fn refresher_answer(
        &self,
        rollout_id: &str,
        person_id: &str,
        refresher: u32,
    ) -> impl Future<Output = Result<Option<RefresherAnswer>, StoreError>> + Send;

    /// The person's acknowledgement of an item version, if any, and their
    /// answers to its check questions.
    fn check_progress(
        &self,
        person_id: &str,
        item_id: &str,
        item_version: &str,
    ) -> impl Future<Output = Result<CheckProgress, StoreError>> + Send;

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

    /// Adds a reason for not using the learning to an answer given
    /// without one; false when there is no such answer or it has one.
    fn add_follow_up_reason(
        &self,
        rollout_id: &str,
        person_id: &str,
        follow_up: u32,
        reason: &str,
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
