//! The rows reports are computed from: plain rows, nothing computed.
//! Reports read the store only through [`Reports`].

use super::StoreError;
use cascade_model::rollout::StepKind;
use std::future::Future;

#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct AgencyRow {
    pub id: String,
    pub name: String,
}

#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct TeamRow {
    pub id: String,
    pub agency_id: String,
    pub name: String,
}

#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct PersonRow {
    pub id: String,
    pub agency_id: String,
    pub team_id: String,
    /// The day they are back from an absence (`YYYY-MM-DD`), if any.
    pub absent_until: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct RoleRow {
    pub person_id: String,
    pub role: String,
}

#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct ChampionRow {
    pub person_id: String,
    pub theme: String,
}

#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct MemberRow {
    pub person_id: String,
    /// 0-based index into the definition's waves.
    #[sqlx(try_from = "i64")]
    pub wave: u32,
    /// The team and agency they were in when the rollout reached them
    /// (none for a member recorded before cascade kept them).
    pub team_id: Option<String>,
    pub agency_id: Option<String>,
    /// `left` (no longer in the directory) or `moved` (no longer in the
    /// audience): no longer chased. None while they are.
    pub out_reason: Option<String>,
    /// When they went out (Unix ms).
    pub out_at: Option<i64>,
    /// When an import enrolled them into an open rollout; `None` for the
    /// members it started with.
    pub joined_at: Option<i64>,
    /// Days later than their wave's their timetable runs.
    #[sqlx(try_from = "i64")]
    pub shift_days: u32,
}

#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct SendRow {
    /// Whose learning the message is about.
    pub person_id: String,
    /// [`StepKind::Initial`] or [`StepKind::Escalation`].
    pub step_kind: StepKind,
    /// Unix milliseconds.
    pub sent_at: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct AckRow {
    pub person_id: String,
    /// Unix milliseconds.
    pub at: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct AnswerRow {
    pub person_id: String,
    /// 1-based.
    #[sqlx(try_from = "i64")]
    pub follow_up: u32,
    pub answer: String,
}

/// A member's recorded answer to one check question of the rollout's item
/// version (issue 19).
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct CheckRow {
    pub person_id: String,
    /// 1-based, as in the item version.
    #[sqlx(try_from = "i64")]
    pub question: u32,
    pub right_first_time: bool,
}

/// A member's answer to the check question a refresher asked them
/// (issue 19): right first time or not.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct RefresherRow {
    pub person_id: String,
    /// 1-based, in the rollout's `refreshers`.
    #[sqlx(try_from = "i64")]
    pub refresher: u32,
    /// 1-based, as in the item version.
    #[sqlx(try_from = "i64")]
    pub question: u32,
    pub right_first_time: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct ConfirmationRow {
    pub id: i64,
    pub item_id: String,
    pub team_id: String,
    #[sqlx(try_from = "i64")]
    pub present: u32,
}

/// A rollout's head and the evidence about its members.
#[derive(Debug, Clone, PartialEq)]
pub struct ReportRollout {
    pub id: String,
    pub item_id: String,
    pub item_version: String,
    /// Empty if the item version is not in the store.
    pub item_title: String,
    pub state: String,
    /// Unix milliseconds.
    pub created_at: i64,
    /// The rollout definition as JSON, as the store keeps it.
    pub definition: String,
    /// Ordered by person id.
    pub members: Vec<MemberRow>,
    /// Sent initial and escalation outbox rows, in the order they were queued.
    pub sends: Vec<SendRow>,
    /// Members' acknowledgements of the pinned item version.
    pub acknowledgements: Vec<AckRow>,
    pub answers: Vec<AnswerRow>,
    /// The item version's check questions, in order (none if it has none).
    pub check_questions: Vec<String>,
    /// Members' recorded answers to them, by person and question.
    pub check_answers: Vec<CheckRow>,
    /// Members' answers to refreshers' questions, by person and refresher.
    pub refresher_answers: Vec<RefresherRow>,
    /// The item version's theme ids, in the author's order.
    pub item_themes: Vec<String>,
}

/// One follow-up answer for the feedback summary (issue 19), with its
/// rollout's item.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct FeedbackRow {
    pub rollout_id: String,
    pub item_id: String,
    /// Empty if the item version is not in the store.
    pub item_title: String,
    /// The item version's source, for its themes.
    pub item_source: String,
    /// The rollout definition as JSON, for the follow-up's question.
    pub definition: String,
    /// 1-based.
    #[sqlx(try_from = "i64")]
    pub follow_up: u32,
    pub answer: String,
    pub reason: Option<String>,
    /// Already through the privacy guard when it was given.
    pub example: Option<String>,
    /// Unix milliseconds.
    pub at: i64,
}

/// The directory as reports group it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DirectoryRows {
    pub agencies: Vec<AgencyRow>,
    pub teams: Vec<TeamRow>,
    pub people: Vec<PersonRow>,
    pub roles: Vec<RoleRow>,
    /// Active champions.
    pub champions: Vec<ChampionRow>,
}

/// One team's members in one rollout (not cancelled): how many, how many
/// acknowledged, and how many champion confirmations the team has for
/// the rollout's item.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct TeamCoverage {
    pub rollout_id: String,
    pub item_id: String,
    pub team_id: String,
    pub members: i64,
    pub acknowledged: i64,
    pub confirmations: i64,
}

/// A member of a rollout who has not acknowledged its item version.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct OutstandingPerson {
    pub person_id: String,
    pub name: String,
    pub team: String,
}

/// How many people gave one answer to one follow-up of a rollout.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct AnswerTally {
    /// 1-based, as in the rollout's follow-ups.
    #[sqlx(try_from = "i64")]
    pub follow_up: u32,
    pub answer: String,
    pub count: i64,
}

/// An active person found by a search, with their team and agency.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct FoundPerson {
    pub id: String,
    pub name: String,
    pub team: String,
    pub agency: String,
}

/// One of a person's channel identities, without its address: which
/// identity kind, and whether the provider said it can no longer be reached.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct IdentityStatus {
    pub channel: String,
    pub unreachable: bool,
}

/// Report queries, on top of [`super::Store`].
pub trait Reports: Send + Sync {
    /// Ids of rollouts created in `[from, to)` (Unix milliseconds), oldest first.
    fn rollouts_created(
        &self,
        from: i64,
        to: i64,
    ) -> impl Future<Output = Result<Vec<String>, StoreError>> + Send;

    /// Follow-up answers given in `[from, to)` (Unix milliseconds), with
    /// their rollouts' items, by item, rollout, follow-up and time.
    fn feedback(
        &self,
        from: i64,
        to: i64,
    ) -> impl Future<Output = Result<Vec<FeedbackRow>, StoreError>> + Send;

    /// One rollout with its members and the evidence about them, if it exists.
    fn report_rollout(
        &self,
        rollout_id: &str,
    ) -> impl Future<Output = Result<Option<ReportRollout>, StoreError>> + Send;

    /// Champions' confirmations of an item, oldest first.
    fn confirmations_of(
        &self,
        item_id: &str,
    ) -> impl Future<Output = Result<Vec<ConfirmationRow>, StoreError>> + Send;

    /// Coverage of each of `team_ids` in every rollout not cancelled that
    /// has members in it, by rollout (newest first) then team.
    fn team_coverage(
        &self,
        team_ids: &[String],
    ) -> impl Future<Output = Result<Vec<TeamCoverage>, StoreError>> + Send;

    /// The teams (id, name, by name) an active champion covers for any of
    /// `themes`, with someone of the rollout in them now who is still in it,
    /// and no cascade confirmation of `item_id` by anyone: the team
    /// briefings a rollout still waits for.
    fn teams_awaiting_briefing(
        &self,
        rollout_id: &str,
        item_id: &str,
        themes: &[String],
    ) -> impl Future<Output = Result<Vec<(String, String)>, StoreError>> + Send;

    /// Up to `limit` members of a rollout who have not acknowledged and
    /// are still chased (not left or moved out), by team name then name.
    fn outstanding_people(
        &self,
        rollout_id: &str,
        limit: u32,
    ) -> impl Future<Output = Result<Vec<OutstandingPerson>, StoreError>> + Send;

    /// A rollout's follow-up answers counted, by follow-up then most given.
    fn answer_tallies(
        &self,
        rollout_id: &str,
    ) -> impl Future<Output = Result<Vec<AnswerTally>, StoreError>> + Send;

    /// Up to `limit` active people whose name or id holds `text` (any
    /// case), by name.
    fn find_people(
        &self,
        text: &str,
        limit: u32,
    ) -> impl Future<Output = Result<Vec<FoundPerson>, StoreError>> + Send;

    /// A person's identities, by identity kind, addresses left out.
    fn identity_statuses(
        &self,
        person_id: &str,
    ) -> impl Future<Output = Result<Vec<IdentityStatus>, StoreError>> + Send;

    /// The stamps of `rollout_ids` and of the directory (scope `""`), by
    /// scope: each goes up with every write to a row [`Reports::report_rollout`]
    /// or [`Reports::report_directory`] reads for it (migration
    /// 20261104000000_report_stamps), so equal stamps mean equal rows.
    fn report_stamps(
        &self,
        rollout_ids: &[String],
    ) -> impl Future<Output = Result<Vec<(String, i64)>, StoreError>> + Send;

    /// A cheap mark of the directory's state, different after any import
    /// that changed it: the directory's report stamp and the newest people
    /// and identity rows. A serve compares it each tick and reloads what it
    /// serves from when it changes.
    fn directory_version(&self)
    -> impl Future<Output = Result<(i64, i64, i64), StoreError>> + Send;

    /// Agencies, teams and active champions, and the people (with their
    /// roles) who are members of `rollout_ids`, each ordered by id.
    fn report_directory(
        &self,
        rollout_ids: &[String],
    ) -> impl Future<Output = Result<DirectoryRows, StoreError>> + Send;
}
