//! The rows of the annual report and of coverage gaps: SQL aggregates over
//! a period, never one row a member, so a year of a large partnership is a
//! few thousand rows whatever its size.

use super::StoreError;
use std::future::Future;

/// A rollout created in the period, with its item version as stored.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct AnnualRollout {
    pub id: String,
    pub item_id: String,
    pub item_version: String,
    pub state: String,
    /// Unix milliseconds.
    pub created_at: i64,
    /// The rollout definition as JSON.
    pub definition: String,
    /// The item's kind, title, status and text; empty if the version is missing.
    pub kind: String,
    pub title: String,
    pub status: String,
    pub embargoed_until: Option<String>,
    /// The item file's text (front matter and body), for its themes and source.
    pub source: String,
}

/// Members of one rollout in one group (an agency, team or role): how many,
/// how many were reached (an initial message sent), acknowledged, and
/// acknowledged within the given time of their first send.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct GroupFigures {
    pub rollout_id: String,
    /// `agency`, `team` or `role`.
    pub level: String,
    /// The agency or team id or the role; `?` for a member not in the directory.
    pub key: String,
    pub audience: i64,
    pub reached: i64,
    pub acknowledged: i64,
    pub acknowledged_within: i64,
}

/// How many members of a rollout acknowledged in one 6-minute bucket of
/// time after their first send (bucket 0: under 6 minutes).
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct WaitBucket {
    pub rollout_id: String,
    pub bucket: i64,
    pub count: i64,
}

/// A group of the directory with its active people.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct DirectoryGroup {
    /// `agency`, `team` or `role`.
    pub level: String,
    pub key: String,
    pub name: String,
    /// The agency of a team; empty otherwise.
    pub agency_id: String,
    pub people: i64,
}

/// A team an active champion of `theme` covers, and whether it has a
/// cascade confirmation of `item_id` (none when the team has none).
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct ChampionTeam {
    pub theme: String,
    pub team_id: String,
}

/// A team's cascade confirmation of an item (distinct pairs).
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct ConfirmedTeam {
    pub item_id: String,
    pub team_id: String,
}

/// How many people gave one answer to one follow-up of a rollout.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct RolloutAnswer {
    pub rollout_id: String,
    /// 1-based.
    #[sqlx(try_from = "i64")]
    pub follow_up: u32,
    pub answer: String,
    pub count: i64,
}

/// How members of one rollout answered one check question of its item
/// version (issue 19), with their acknowledgement.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct RolloutCheck {
    pub rollout_id: String,
    /// 1-based.
    #[sqlx(try_from = "i64")]
    pub question: u32,
    pub answered: i64,
    pub right_first_time: i64,
}

/// Annual report and coverage gap queries. Periods are `[from, to)` in
/// Unix milliseconds of the rollouts' creation.
pub trait AnnualReports: Send + Sync {
    /// Rollouts created in the period, oldest first.
    fn annual_rollouts(
        &self,
        from: i64,
        to: i64,
    ) -> impl Future<Output = Result<Vec<AnnualRollout>, StoreError>> + Send;

    /// Members of the period's rollouts counted by rollout and agency, team
    /// and role; `within` is the acknowledgement window in milliseconds.
    /// Also level `wait`: key the 6-minute bucket of time from first send to
    /// acknowledgement (as in [`WaitBucket`]), audience the members in it;
    /// one pass over the members for both.
    fn group_figures(
        &self,
        from: i64,
        to: i64,
        within: i64,
    ) -> impl Future<Output = Result<Vec<GroupFigures>, StoreError>> + Send;

    /// Time from first send to acknowledgement, counted in 6-minute buckets.
    fn wait_buckets(
        &self,
        from: i64,
        to: i64,
    ) -> impl Future<Output = Result<Vec<WaitBucket>, StoreError>> + Send;

    /// Agencies, teams and roles with their active people.
    fn directory_groups(
        &self,
    ) -> impl Future<Output = Result<Vec<DirectoryGroup>, StoreError>> + Send;

    /// Teams covered by active champions, by theme.
    fn champion_teams(&self) -> impl Future<Output = Result<Vec<ChampionTeam>, StoreError>> + Send;

    /// Teams with a cascade confirmation of an item of the period's rollouts.
    fn confirmed_teams(
        &self,
        from: i64,
        to: i64,
    ) -> impl Future<Output = Result<Vec<ConfirmedTeam>, StoreError>> + Send;

    /// Follow-up answers of the period's rollouts, counted.
    fn rollout_answers(
        &self,
        from: i64,
        to: i64,
    ) -> impl Future<Output = Result<Vec<RolloutAnswer>, StoreError>> + Send;

    /// Members' answers to the check questions of the period's rollouts'
    /// item versions, recorded with their acknowledgements, counted per
    /// rollout and question.
    fn rollout_checks(
        &self,
        from: i64,
        to: i64,
    ) -> impl Future<Output = Result<Vec<RolloutCheck>, StoreError>> + Send;
}
