//! The only SQL of reports: plain rows for a set of rollouts, read through
//! [`SqliteStore::pool`]. Nothing is computed here.

use super::ReportError;
use crate::rollout::RolloutDefinition;
use crate::store::SqliteStore;
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

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AgencyRow {
    pub id: String,
    pub name: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TeamRow {
    pub id: String,
    pub agency_id: String,
    pub name: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PersonRow {
    pub id: String,
    pub agency_id: String,
    pub team_id: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoleRow {
    pub person_id: String,
    pub role: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChampionRow {
    pub person_id: String,
    pub theme: String,
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
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemberRow {
    pub person_id: String,
    /// 0-based index into the definition's waves.
    pub wave: u32,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SendRow {
    /// Whose learning the message is about.
    pub person_id: String,
    /// `initial` or `escalation`.
    pub step_kind: String,
    /// Unix milliseconds.
    pub sent_at: i64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AckRow {
    pub person_id: String,
    /// Unix milliseconds.
    pub at: i64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AnswerRow {
    pub person_id: String,
    /// 1-based.
    pub follow_up: u32,
    pub answer: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfirmationRow {
    pub id: i64,
    pub item_id: String,
    pub team_id: String,
    pub present: u32,
}

/// Ids of rollouts created in `[from, to)` (Unix milliseconds), oldest first.
pub async fn rollouts_created(
    store: &SqliteStore,
    from: i64,
    to: i64,
) -> Result<Vec<String>, ReportError> {
    Ok(sqlx::query_scalar(
        "SELECT id FROM rollouts WHERE created_at >= ? AND created_at < ? ORDER BY created_at, id",
    )
    .bind(from)
    .bind(to)
    .fetch_all(store.pool())
    .await?)
}

type RolloutHead = (String, String, String, String, String, i64, Option<String>);

/// Reads the rows for `rollout_ids` (in that order) and the directory.
pub async fn load(
    store: &SqliteStore,
    rollout_ids: &[String],
    now: DateTime<Utc>,
) -> Result<Rows, ReportError> {
    let pool = store.pool();
    let mut rollouts = Vec::new();
    for id in rollout_ids {
        let head: Option<RolloutHead> = sqlx::query_as(
            "SELECT r.id, r.item_id, r.item_version, r.definition, r.state, r.created_at, i.title
             FROM rollouts r LEFT JOIN items i ON i.id = r.item_id AND i.version = r.item_version
             WHERE r.id = ?",
        )
        .bind(id)
        .fetch_optional(pool)
        .await?;
        let Some((id, item_id, item_version, definition, state, created_at, title)) = head else {
            return Err(ReportError::UnknownRollout(id.clone()));
        };
        let definition =
            serde_json::from_str(&definition).map_err(|source| ReportError::Definition {
                rollout: id.clone(),
                source,
            })?;
        let members = sqlx::query_as::<_, (String, u32)>(
            "SELECT person_id, wave FROM rollout_members WHERE rollout_id = ? ORDER BY person_id",
        )
        .bind(&id)
        .fetch_all(pool)
        .await?
        .into_iter()
        .map(|(person_id, wave)| MemberRow { person_id, wave })
        .collect();
        let sends = sqlx::query_as::<_, (String, String, i64)>(
            "SELECT person_id, step_kind, sent_at FROM outbox
             WHERE rollout_id = ? AND state = 'sent' AND sent_at IS NOT NULL
               AND step_kind IN ('initial', 'escalation')
             ORDER BY id",
        )
        .bind(&id)
        .fetch_all(pool)
        .await?
        .into_iter()
        .map(|(person_id, step_kind, sent_at)| SendRow {
            person_id,
            step_kind,
            sent_at,
        })
        .collect();
        let acknowledgements = sqlx::query_as::<_, (String, i64)>(
            "SELECT a.person_id, a.at FROM acknowledgements a
             JOIN rollout_members m ON m.person_id = a.person_id AND m.rollout_id = ?
             WHERE a.item_id = ? AND a.item_version = ?
             ORDER BY a.person_id",
        )
        .bind(&id)
        .bind(&item_id)
        .bind(&item_version)
        .fetch_all(pool)
        .await?
        .into_iter()
        .map(|(person_id, at)| AckRow { person_id, at })
        .collect();
        let answers = sqlx::query_as::<_, (String, u32, String)>(
            "SELECT person_id, follow_up, answer FROM follow_up_answers
             WHERE rollout_id = ? ORDER BY person_id, follow_up",
        )
        .bind(&id)
        .fetch_all(pool)
        .await?
        .into_iter()
        .map(|(person_id, follow_up, answer)| AnswerRow {
            person_id,
            follow_up,
            answer,
        })
        .collect();
        rollouts.push(RolloutRows {
            id,
            item_id,
            item_version,
            item_title: title.unwrap_or_default(),
            state,
            created_at,
            definition,
            members,
            sends,
            acknowledgements,
            answers,
        });
    }

    let items: BTreeSet<&str> = rollouts.iter().map(|r| r.item_id.as_str()).collect();
    let mut confirmations = Vec::new();
    for item in items {
        let rows = sqlx::query_as::<_, (i64, String, String, u32)>(
            "SELECT id, item_id, team_id, present FROM cascade_confirmations WHERE item_id = ? ORDER BY id",
        )
        .bind(item)
        .fetch_all(pool)
        .await?;
        confirmations.extend(rows.into_iter().map(|(id, item_id, team_id, present)| {
            ConfirmationRow {
                id,
                item_id,
                team_id,
                present,
            }
        }));
    }

    let agencies =
        sqlx::query_as::<_, (String, String)>("SELECT id, name FROM agencies ORDER BY id")
            .fetch_all(pool)
            .await?
            .into_iter()
            .map(|(id, name)| AgencyRow { id, name })
            .collect();
    let teams = sqlx::query_as::<_, (String, String, String)>(
        "SELECT id, agency_id, name FROM teams ORDER BY id",
    )
    .fetch_all(pool)
    .await?
    .into_iter()
    .map(|(id, agency_id, name)| TeamRow {
        id,
        agency_id,
        name,
    })
    .collect();
    let people = sqlx::query_as::<_, (String, String, String)>(
        "SELECT id, agency_id, team_id FROM people ORDER BY id",
    )
    .fetch_all(pool)
    .await?
    .into_iter()
    .map(|(id, agency_id, team_id)| PersonRow {
        id,
        agency_id,
        team_id,
    })
    .collect();
    let roles = sqlx::query_as::<_, (String, String)>(
        "SELECT person_id, role FROM person_roles ORDER BY person_id, role",
    )
    .fetch_all(pool)
    .await?
    .into_iter()
    .map(|(person_id, role)| RoleRow { person_id, role })
    .collect();
    let champions = sqlx::query_as::<_, (String, String)>(
        "SELECT person_id, theme FROM champions WHERE active = 1 ORDER BY person_id, theme",
    )
    .fetch_all(pool)
    .await?
    .into_iter()
    .map(|(person_id, theme)| ChampionRow { person_id, theme })
    .collect();

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
