//! The team-post side of the store: a rollout's item posted once in each
//! team channel, the count of the team's acknowledgements each post shows,
//! and when it may be edited next. Plain rows in, plain rows out; times are
//! Unix milliseconds (UTC).

use super::StoreError;
use std::future::Future;

/// A team post to plan with its rollout.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewTeamPost {
    pub team_id: String,
    /// The channel instance, e.g. `discord`.
    pub channel: String,
    /// The team channel's address on that instance.
    pub address: String,
    /// When to post: the first send to a member of the team.
    pub due_at: i64,
}

/// How many of a team's members in a rollout's audience acknowledged its
/// item version, by any channel.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, sqlx::FromRow)]
pub struct TeamCount {
    pub acknowledged: u32,
    pub total: u32,
}

/// A team post claimed for posting under a lease.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct ClaimedTeamPost {
    pub id: i64,
    pub rollout_id: String,
    pub team_id: String,
    pub channel: String,
    pub address: String,
    /// Attempts including this one.
    pub attempts: u32,
}

/// How an attempt to post ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TeamPostOutcome {
    Sent {
        provider_id: Option<String>,
        /// The count the post shows.
        shown: TeamCount,
        /// The earliest next edit.
        edit_due_at: i64,
    },
    RetryAt {
        at: i64,
        reason: String,
    },
    Dead {
        reason: String,
    },
    /// Not attempted (the rollout was paused meanwhile): back to due, the
    /// attempt not counted.
    Released,
}

/// A sent post whose count is out of date, its edit claimed under a lease
/// (see [`TeamPosts::claim_stale_team_posts`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StaleTeamPost {
    pub id: i64,
    pub rollout_id: String,
    pub team_id: String,
    pub channel: String,
    pub address: String,
    pub provider_id: String,
    pub shown: TeamCount,
    /// The true count now.
    pub count: TeamCount,
}

/// How an edit of a post's count ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TeamPostEdit {
    /// The post shows `shown`; the next edit waits until `next_at`.
    Shown { shown: TeamCount, next_at: i64 },
    /// Not shown; try again at `at` (a rate limit, a failure).
    RetryAt { at: i64, reason: String },
}

/// One team post, for the inbound desk and `cascade status`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredTeamPost {
    pub id: i64,
    pub rollout_id: String,
    pub team_id: String,
    pub channel: String,
    pub address: String,
    /// planned, retry, sent or dead.
    pub state: String,
    pub shown: Option<TeamCount>,
    pub last_error: Option<String>,
}

/// What acknowledging through a team post needs about the person who
/// pressed: they are a member of the post's team in its rollout.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct TeamPostMember {
    pub rollout_id: String,
    pub item_id: String,
    pub item_version: String,
    /// The person's own latest delivery of the item in that rollout, when
    /// one was queued.
    pub delivery_id: Option<i64>,
}

/// Team posts, on top of [`super::Outbox`] (they are created with their
/// rollout by `create_rollout`).
pub trait TeamPosts: Send + Sync {
    /// Claims the posts of active rollouts that are due (or whose lease
    /// expired) at `now`, until `now + lease_ms`, for `owner` (the
    /// dispatcher's id, as in the outbox's claims). On PostgreSQL a post
    /// another process is claiming is skipped, so two serves never hold
    /// the same post's lease.
    fn claim_team_posts(
        &self,
        now: i64,
        lease_ms: i64,
        owner: &str,
    ) -> impl Future<Output = Result<Vec<ClaimedTeamPost>, StoreError>> + Send;

    /// Posts of active rollouts not yet sent whose time (or next
    /// attempt) has come at `now`, leased or not.
    fn team_posts_due(&self, now: i64) -> impl Future<Output = Result<u64, StoreError>> + Send;

    /// The true count of a post's team now.
    fn team_count(
        &self,
        post_id: i64,
    ) -> impl Future<Output = Result<TeamCount, StoreError>> + Send;

    /// Records how posting a post claimed by `owner` ended, and ends the
    /// lease. Nothing is recorded when the post is no longer leased to
    /// `owner` (its lease ran out and another claimed it, or it was
    /// recorded already).
    fn record_team_post(
        &self,
        post_id: i64,
        outcome: &TeamPostOutcome,
        owner: &str,
        now: i64,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// Claims the edits of sent posts of rollouts not cancelled whose true
    /// count differs from the count shown and whose next edit is due at
    /// `now`, each until `now + lease_ms`, for `owner`: a post's edit is
    /// made by one serve at a time. Posts already showing every member
    /// acknowledged are not counted again. An edit not recorded (its serve
    /// stopped) is due again when its lease runs out, or when
    /// [`super::Outbox::take_back_leases`] takes it back.
    fn claim_stale_team_posts(
        &self,
        now: i64,
        lease_ms: i64,
        owner: &str,
    ) -> impl Future<Output = Result<Vec<StaleTeamPost>, StoreError>> + Send;

    /// How many sent posts' counts are out of date with their next edit due
    /// at `now`, leased or not (as [`TeamPosts::team_posts_due`] for posts).
    fn team_post_edits_due(&self, now: i64)
    -> impl Future<Output = Result<u64, StoreError>> + Send;

    /// Records how an edit claimed by `owner` ended (the count shown and
    /// the next edit's time) and ends the lease; nothing when the edit is
    /// no longer leased to `owner`.
    fn record_team_post_edit(
        &self,
        post_id: i64,
        edit: &TeamPostEdit,
        owner: &str,
        now: i64,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    fn team_post(
        &self,
        post_id: i64,
    ) -> impl Future<Output = Result<Option<StoredTeamPost>, StoreError>> + Send;

    /// The posts of a rollout, by team and channel.
    fn team_posts(
        &self,
        rollout_id: &str,
    ) -> impl Future<Output = Result<Vec<StoredTeamPost>, StoreError>> + Send;

    /// The person as a member of the post's team in its rollout; `None`
    /// when they are not in that rollout's audience or not in that team.
    fn team_post_member(
        &self,
        post_id: i64,
        person_id: &str,
    ) -> impl Future<Output = Result<Option<TeamPostMember>, StoreError>> + Send;
}
