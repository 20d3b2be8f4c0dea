//! The SQL of reports: plain rows, nothing computed.

use super::SqliteStore;
use crate::StoreError;
use crate::reports::*;

/// A rollout with its item's title, if that version is in the store.
#[derive(sqlx::FromRow)]
struct RolloutHead {
    id: String,
    item_id: String,
    item_version: String,
    definition: String,
    state: String,
    created_at: i64,
    title: Option<String>,
}

impl Reports for SqliteStore {
    async fn rollouts_created(&self, from: i64, to: i64) -> Result<Vec<String>, StoreError> {
        Ok(sqlx::query_scalar(
            "SELECT id FROM rollouts WHERE created_at >= ? AND created_at < ? ORDER BY created_at, id",
        )
        .bind(from)
        .bind(to)
        .fetch_all(&self.pool)
        .await?)
    }

    async fn feedback(&self, from: i64, to: i64) -> Result<Vec<FeedbackRow>, StoreError> {
        Ok(sqlx::query_as(
            "SELECT a.rollout_id, r.item_id, COALESCE(i.title, '') AS item_title,
                    COALESCE(i.source, '') AS item_source, r.definition, a.follow_up, a.answer,
                    a.reason, a.example, a.at
             FROM follow_up_answers a JOIN rollouts r ON r.id = a.rollout_id
             LEFT JOIN items i ON i.id = r.item_id AND i.version = r.item_version
             WHERE a.at >= ? AND a.at < ?
             ORDER BY r.item_id, a.rollout_id, a.follow_up, a.at, a.id",
        )
        .bind(from)
        .bind(to)
        .fetch_all(&self.pool)
        .await?)
    }

    async fn report_rollout(&self, rollout_id: &str) -> Result<Option<ReportRollout>, StoreError> {
        let pool = &self.pool;
        let head: Option<RolloutHead> = sqlx::query_as(
            "SELECT r.id, r.item_id, r.item_version, r.definition, r.state, r.created_at, i.title
             FROM rollouts r LEFT JOIN items i ON i.id = r.item_id AND i.version = r.item_version
             WHERE r.id = ?",
        )
        .bind(rollout_id)
        .fetch_optional(pool)
        .await?;
        let Some(RolloutHead {
            id,
            item_id,
            item_version,
            definition,
            state,
            created_at,
            title,
        }) = head
        else {
            return Ok(None);
        };
        let members = sqlx::query_as::<_, MemberRow>(
            "SELECT person_id, wave, team_id, agency_id, out_reason, out_at, joined_at, shift_days
             FROM rollout_members
             WHERE rollout_id = ? ORDER BY person_id",
        )
        .bind(&id)
        .fetch_all(pool)
        .await?;
        let sends = sqlx::query_as::<_, SendRow>(
            "SELECT person_id, step_kind, sent_at FROM outbox
             WHERE rollout_id = ? AND state = 'sent' AND sent_at IS NOT NULL
               AND step_kind IN ('initial', 'escalation')
             ORDER BY id",
        )
        .bind(&id)
        .fetch_all(pool)
        .await?;
        let acknowledgements = sqlx::query_as::<_, AckRow>(
            "SELECT a.person_id, a.at FROM acknowledgements a
             JOIN rollout_members m ON m.person_id = a.person_id AND m.rollout_id = ?
             WHERE a.item_id = ? AND a.item_version = ?
             ORDER BY a.person_id",
        )
        .bind(&id)
        .bind(&item_id)
        .bind(&item_version)
        .fetch_all(pool)
        .await?;
        let answers = sqlx::query_as::<_, AnswerRow>(
            "SELECT person_id, follow_up, answer FROM follow_up_answers
             WHERE rollout_id = ? ORDER BY person_id, follow_up",
        )
        .bind(&id)
        .fetch_all(pool)
        .await?;
        let source: Option<String> =
            sqlx::query_scalar("SELECT source FROM items WHERE id = ? AND version = ?")
                .bind(&item_id)
                .bind(&item_version)
                .fetch_optional(pool)
                .await?;
        let check_questions: Vec<String> = source
            .as_deref()
            .map(cascade_model::content::stored_check_questions)
            .unwrap_or_default()
            .into_iter()
            .map(|q| q.question)
            .collect();
        let check_answers = if check_questions.is_empty() {
            Vec::new()
        } else {
            sqlx::query_as::<_, CheckRow>(
                "SELECT c.person_id, c.question, c.right_first_time FROM check_answers c
                 JOIN rollout_members m ON m.person_id = c.person_id AND m.rollout_id = ?
                 WHERE c.item_id = ? AND c.item_version = ? AND c.acknowledgement_id IS NOT NULL
                 ORDER BY c.person_id, c.question",
            )
            .bind(&id)
            .bind(&item_id)
            .bind(&item_version)
            .fetch_all(pool)
            .await?
        };
        let refresher_answers = sqlx::query_as::<_, RefresherRow>(
            "SELECT person_id, refresher, question, right_first_time FROM refresher_answers
             WHERE rollout_id = ? ORDER BY person_id, refresher",
        )
        .bind(&id)
        .fetch_all(pool)
        .await?;
        Ok(Some(ReportRollout {
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
            check_questions,
            check_answers,
            refresher_answers,
            item_themes: source
                .as_deref()
                .map(cascade_model::content::stored_themes)
                .unwrap_or_default(),
        }))
    }

    async fn confirmations_of(&self, item_id: &str) -> Result<Vec<ConfirmationRow>, StoreError> {
        Ok(sqlx::query_as::<_, ConfirmationRow>(
            "SELECT id, item_id, team_id, present FROM cascade_confirmations WHERE item_id = ? ORDER BY id",
        )
        .bind(item_id)
        .fetch_all(&self.pool)
        .await?)
    }

    async fn team_coverage(&self, team_ids: &[String]) -> Result<Vec<TeamCoverage>, StoreError> {
        if team_ids.is_empty() {
            return Ok(Vec::new());
        }
        // People of the teams first, then each rollout's member row by its
        // primary key: a few lookups a person, whatever the rollouts' size.
        let placeholders = vec!["?"; team_ids.len()].join(", ");
        let sql = format!(
            "SELECT m.rollout_id, r.item_id, p.team_id, COUNT(*) AS members,
                    SUM(m.acknowledged_at IS NOT NULL) AS acknowledged,
                    (SELECT COUNT(*) FROM cascade_confirmations c
                     WHERE c.item_id = r.item_id AND c.team_id = p.team_id) AS confirmations
             FROM people p CROSS JOIN rollouts r
             JOIN rollout_members m ON m.rollout_id = r.id AND m.person_id = p.id
             WHERE p.team_id IN ({placeholders}) AND r.state != 'cancelled'
             GROUP BY m.rollout_id, p.team_id
             ORDER BY r.created_at DESC, m.rollout_id, p.team_id"
        );
        let mut query = sqlx::query_as::<_, TeamCoverage>(&sql);
        for team in team_ids {
            query = query.bind(team);
        }
        Ok(query.fetch_all(&self.pool).await?)
    }

    async fn teams_awaiting_briefing(
        &self,
        rollout_id: &str,
        item_id: &str,
        themes: &[String],
    ) -> Result<Vec<(String, String)>, StoreError> {
        if themes.is_empty() {
            return Ok(Vec::new());
        }
        // Champions' teams are few; for each, the first person of the team
        // found in the rollout settles it: people by team, then the member
        // row by its primary key (CROSS JOIN keeps SQLite to that order;
        // left to itself it walked every member of the rollout for each
        // team, 4.5 s a rollout at 100,000 people and 1,000 teams).
        // `Reports::report_stamps` covers every row read here.
        let placeholders = vec!["?"; themes.len()].join(", ");
        let sql = format!(
            "SELECT DISTINCT t.id, t.name FROM champion_teams ct
             JOIN champions c ON c.person_id = ct.person_id AND c.theme = ct.theme AND c.active = 1
             JOIN people cp ON cp.id = ct.person_id AND cp.active = 1
             JOIN teams t ON t.id = ct.team_id
             WHERE ct.theme IN ({placeholders})
               AND NOT EXISTS (SELECT 1 FROM cascade_confirmations x
                               WHERE x.item_id = ? AND x.team_id = ct.team_id)
               AND EXISTS (SELECT 1 FROM people p CROSS JOIN rollout_members m
                           WHERE p.team_id = ct.team_id AND m.rollout_id = ?
                             AND m.person_id = p.id AND m.out_reason IS NULL)
             ORDER BY t.name, t.id"
        );
        let mut query = sqlx::query_as::<_, (String, String)>(&sql);
        for theme in themes {
            query = query.bind(theme);
        }
        Ok(query
            .bind(item_id)
            .bind(rollout_id)
            .fetch_all(&self.pool)
            .await?)
    }

    async fn outstanding_people(
        &self,
        rollout_id: &str,
        limit: u32,
    ) -> Result<Vec<OutstandingPerson>, StoreError> {
        Ok(sqlx::query_as(
            "SELECT m.person_id, p.display_name AS name, t.name AS team
             FROM rollout_members m JOIN people p ON p.id = m.person_id
             JOIN teams t ON t.id = p.team_id
             WHERE m.rollout_id = ? AND m.acknowledged_at IS NULL AND m.out_reason IS NULL
             ORDER BY t.name, p.display_name, m.person_id LIMIT ?",
        )
        .bind(rollout_id)
        .bind(limit)
        .fetch_all(&self.pool)
        .await?)
    }

    async fn answer_tallies(&self, rollout_id: &str) -> Result<Vec<AnswerTally>, StoreError> {
        Ok(sqlx::query_as(
            "SELECT follow_up, answer, COUNT(*) AS count FROM follow_up_answers
             WHERE rollout_id = ? GROUP BY follow_up, answer ORDER BY follow_up, count DESC, answer",
        )
        .bind(rollout_id)
        .fetch_all(&self.pool)
        .await?)
    }

    async fn find_people(&self, text: &str, limit: u32) -> Result<Vec<FoundPerson>, StoreError> {
        let escaped = text
            .replace('\\', "\\\\")
            .replace('%', "\\%")
            .replace('_', "\\_");
        Ok(sqlx::query_as(
            "SELECT p.id, p.display_name AS name, t.name AS team, a.name AS agency
             FROM people p JOIN teams t ON t.id = p.team_id JOIN agencies a ON a.id = p.agency_id
             WHERE p.active = 1
               AND (p.display_name LIKE ?1 ESCAPE '\\' OR p.id LIKE ?1 ESCAPE '\\')
             ORDER BY p.display_name, p.id LIMIT ?2",
        )
        .bind(format!("%{escaped}%"))
        .bind(limit)
        .fetch_all(&self.pool)
        .await?)
    }

    async fn identity_statuses(&self, person_id: &str) -> Result<Vec<IdentityStatus>, StoreError> {
        Ok(sqlx::query_as(
            "SELECT channel, unreachable_at IS NOT NULL AS unreachable FROM channel_identities
             WHERE person_id = ? ORDER BY channel, unreachable",
        )
        .bind(person_id)
        .fetch_all(&self.pool)
        .await?)
    }

    async fn report_stamps(
        &self,
        rollout_ids: &[String],
    ) -> Result<Vec<(String, i64)>, StoreError> {
        let ids = serde_json::Value::from(rollout_ids.to_vec()).to_string();
        Ok(sqlx::query_as(
            "SELECT scope, stamp FROM report_stamps
             WHERE scope = '' OR scope IN (SELECT value FROM json_each(?))
             ORDER BY scope",
        )
        .bind(ids)
        .fetch_all(&self.pool)
        .await?)
    }

    async fn directory_version(&self) -> Result<(i64, i64, i64), StoreError> {
        Ok(sqlx::query_as(
            "SELECT COALESCE((SELECT stamp FROM report_stamps WHERE scope = ''), 0),
                    COALESCE((SELECT MAX(rowid) FROM people), 0),
                    COALESCE((SELECT MAX(rowid) FROM channel_identities), 0)",
        )
        .fetch_one(&self.pool)
        .await?)
    }

    async fn report_directory(&self, rollout_ids: &[String]) -> Result<DirectoryRows, StoreError> {
        let pool = &self.pool;
        // Only the members' people and roles: a report of one rollout of a
        // few thousand people reads a few thousand rows, not the directory.
        let members = format!(
            "SELECT person_id FROM rollout_members WHERE rollout_id IN ({})",
            vec!["?"; rollout_ids.len()].join(", ")
        );
        let people_sql = format!(
            "SELECT id, agency_id, team_id, absent_until FROM people WHERE id IN ({members}) ORDER BY id"
        );
        let roles_sql = format!(
            "SELECT person_id, role FROM person_roles WHERE person_id IN ({members}) ORDER BY person_id, role"
        );
        let mut people = sqlx::query_as::<_, PersonRow>(&people_sql);
        let mut roles = sqlx::query_as::<_, RoleRow>(&roles_sql);
        for id in rollout_ids {
            people = people.bind(id);
            roles = roles.bind(id);
        }
        Ok(DirectoryRows {
            agencies: sqlx::query_as("SELECT id, name FROM agencies ORDER BY id")
                .fetch_all(pool)
                .await?,
            teams: sqlx::query_as("SELECT id, agency_id, name FROM teams ORDER BY id")
                .fetch_all(pool)
                .await?,
            people: people.fetch_all(pool).await?,
            roles: roles.fetch_all(pool).await?,
            champions: sqlx::query_as(
                "SELECT person_id, theme FROM champions WHERE active = 1 ORDER BY person_id, theme",
            )
            .fetch_all(pool)
            .await?,
        })
    }
}
