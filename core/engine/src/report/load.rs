//! Reads a report's rows through the store's [`Reports`] queries and
//! parses each rollout's stored definition. Nothing is computed here.

use super::ReportError;
use cascade_model::rollout::RolloutDefinition;
pub use cascade_store::{
    AckRow, AgencyRow, AnswerRow, ChampionRow, CheckRow, ConfirmationRow, MemberRow, PersonRow,
    RefresherRow, RoleRow, SendRow, TeamRow,
};
use cascade_store::{DirectoryRows, Reports};
use chrono::{DateTime, Utc};
use std::collections::BTreeSet;

/// Everything a report is computed from.
#[derive(Debug, Clone, PartialEq)]
pub struct Rows {
    /// The moment the report describes (for overdue).
    pub now: DateTime<Utc>,
    pub agencies: Vec<AgencyRow>,
    pub teams: Vec<TeamRow>,
    pub people: Vec<PersonRow>,
    pub roles: Vec<RoleRow>,
    /// Active champions.
    pub champions: Vec<ChampionRow>,
    pub rollouts: Vec<RolloutRows>,
    /// Confirmations of the rollouts' items.
    pub confirmations: Vec<ConfirmationRow>,
}

/// One rollout with its members and the evidence about them.
#[derive(Debug, Clone, PartialEq)]
pub struct RolloutRows {
    pub id: String,
    pub item_id: String,
    pub item_version: String,
    /// Empty if the item version is not in the store.
    pub item_title: String,
    pub state: String,
    /// Unix milliseconds.
    pub created_at: i64,
    pub definition: RolloutDefinition,
    pub members: Vec<MemberRow>,
    /// Sent initial and escalation outbox rows.
    pub sends: Vec<SendRow>,
    /// Members' acknowledgements of the pinned item version.
    pub acknowledgements: Vec<AckRow>,
    pub answers: Vec<AnswerRow>,
    /// The item version's check questions, in order.
    pub check_questions: Vec<String>,
    /// Members' recorded answers to them.
    pub check_answers: Vec<CheckRow>,
    /// Members' answers to the rollout's refreshers' questions.
    pub refresher_answers: Vec<RefresherRow>,
    /// The item version's theme ids.
    pub item_themes: Vec<String>,
}

/// Ids of rollouts created in `[from, to)` (Unix milliseconds), oldest first.
pub async fn rollouts_created(
    store: &impl Reports,
    from: i64,
    to: i64,
) -> Result<Vec<String>, ReportError> {
    Ok(store.rollouts_created(from, to).await?)
}

/// Reads the rows for `rollout_ids` (in that order) and the directory.
pub async fn load(
    store: &impl Reports,
    rollout_ids: &[String],
    now: DateTime<Utc>,
) -> Result<Rows, ReportError> {
    let mut rollouts = Vec::new();
    for id in rollout_ids {
        let Some(stored) = store.report_rollout(id).await? else {
            return Err(ReportError::UnknownRollout(id.clone()));
        };
        let definition =
            serde_json::from_str(&stored.definition).map_err(|source| ReportError::Definition {
                rollout: stored.id.clone(),
                source,
            })?;
        rollouts.push(RolloutRows {
            id: stored.id,
            item_id: stored.item_id,
            item_version: stored.item_version,
            item_title: stored.item_title,
            state: stored.state,
            created_at: stored.created_at,
            definition,
            members: stored.members,
            sends: stored.sends,
            acknowledgements: stored.acknowledgements,
            answers: stored.answers,
            check_questions: stored.check_questions,
            check_answers: stored.check_answers,
            refresher_answers: stored.refresher_answers,
            item_themes: stored.item_themes,
        });
    }

    let items: BTreeSet<&str> = rollouts.iter().map(|r| r.item_id.as_str()).collect();
    let mut confirmations = Vec::new();
    for item in items {
        confirmations.extend(store.confirmations_of(item).await?);
    }

    let DirectoryRows {
        agencies,
        teams,
        people,
        roles,
        champions,
    } = store.report_directory(rollout_ids).await?;
    Ok(Rows {
        now,
        agencies,
        teams,
        people,
        roles,
        champions,
        rollouts,
        confirmations,
    })
}
