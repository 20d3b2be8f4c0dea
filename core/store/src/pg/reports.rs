//! The SQL of reports in PostgreSQL: plain rows, nothing computed (see
//! `sqlite/reports.rs`). Flags are BIGINT 0/1 and read as booleans by
//! `<> 0`; counts of a condition are `SUM((cond)::int)::bigint`.

use super::PgStore;
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

impl Reports for PgStore {
    async fn rollouts_created(&self, from: i64, to: i64) -> Result<Vec<String>, StoreError> {
        Ok(sqlx::query_scalar(
            "SELECT id FROM rollouts WHERE created_at >= $1 AND created_at < $2 ORDER BY created_at, id",
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
             WHERE a.at >= $1 AND a.at < $2
             ORDER BY r.item_id, a.rollout_id, a.follow_up, a.at, a.id",
        )
        .bind(from)
        .bind(to)
        .fetch_all(&self.pool)
        .await?)
    }

    async fn report_rollout(&self, rollout_id: &str) -> Result<Option<ReportRollout>, StoreError> {
        // One snapshot for all the reads: a report of a rollout whose
        // members, sends and acknowledgements agree with each other while
        // other processes write.
        let mut tx = self.pool.begin().await?;
        sqlx::query("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
            .execute(&mut *tx)
            .await?;
        let head: Option<RolloutHead> = sqlx::query_as(
            "SELECT r.id, r.item_id, r.item_version, r.definition, r.state, r.created_at, i.title
             FROM rollouts r LEFT JOIN items i ON i.id = r.item_id AND i.version = r.item_version
             WHERE r.id = $1",
        )
        .bind(rollout_id)
        .fetch_optional(&mut *tx)
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
             WHERE rollout_id = $1 ORDER BY person_id",
        )
        .bind(&id)
        .fetch_all(&mut *tx)
        .await?;
        let sends = sqlx::query_as::<_, SendRow>(
            "SELECT person_id, step_kind, sent_at FROM outbox
             WHERE rollout_id = $1 AND state = 'sent' AND sent_at IS NOT NULL
               AND step_kind IN ('initial', 'escalation')
             ORDER BY id",
        )
        .bind(&id)
        .fetch_all(&mut *tx)
        .await?;
        let acknowledgements = sqlx::query_as::<_, AckRow>(
            "SELECT a.person_id, a.at FROM acknowledgements a
             JOIN rollout_members m ON m.person_id = a.person_id AND m.rollout_id = $1
             WHERE a.item_id = $2 AND a.item_version = $3
             ORDER BY a.person_id",
        )
        .bind(&id)
        .bind(&item_id)
        .bind(&item_version)
        .fetch_all(&mut *tx)
        .await?;
        let answers = sqlx::query_as::<_, AnswerRow>(
            "SELECT person_id, follow_up, answer FROM follow_up_answers
             WHERE rollout_id = $1 ORDER BY person_id, follow_up",
        )
        .bind(&id)
        .fetch_all(&mut *tx)
        .await?;
        let source: Option<String> =
            sqlx::query_scalar("SELECT source FROM items WHERE id = $1 AND version = $2")
                .bind(&item_id)
                .bind(&item_version)
                .fetch_optional(&mut *tx)
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
                "SELECT c.person_id, c.question, (c.right_first_time <> 0) AS right_first_time
                 FROM check_answers c
                 JOIN rollout_members m ON m.person_id = c.person_id AND m.rollout_id = $1
                 WHERE c.item_id = $2 AND c.item_version = $3 AND c.acknowledgement_id IS NOT NULL
                 ORDER BY c.person_id, c.question",
            )
            .bind(&id)
            .bind(&item_id)
            .bind(&item_version)
            .fetch_all(&mut *tx)
            .await?
        };
        let refresher_answers = sqlx::query_as::<_, RefresherRow>(
            "SELECT person_id, refresher, question, (right_first_time <> 0) AS right_first_time
             FROM refresher_answers
             WHERE rollout_id = $1 ORDER BY person_id, refresher",
        )
        .bind(&id)
        .fetch_all(&mut *tx)
        .await?;
        tx.commit().await?;
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
            "SELECT id, item_id, team_id, present FROM cascade_confirmations WHERE item_id = $1 ORDER BY id",
        )
        .bind(item_id)
        .fetch_all(&self.pool)
        .await?)
    }

    async fn team_coverage(&self, team_ids: &[String]) -> Result<Vec<TeamCoverage>, StoreError> {
        if team_ids.is_empty() {
            return Ok(Vec::new());
        }
        // Grouped by the rollout's key, so its item and creation time may
        // be read in the group.
        Ok(sqlx::query_as::<_, TeamCoverage>(
            "SELECT r.id AS rollout_id, r.item_id, p.team_id, COUNT(*) AS members,
                    SUM((m.acknowledged_at IS NOT NULL)::int)::bigint AS acknowledged,
                    (SELECT COUNT(*) FROM cascade_confirmations c
                     WHERE c.item_id = r.item_id AND c.team_id = p.team_id) AS confirmations
             FROM people p
             JOIN rollout_members m ON m.person_id = p.id
             JOIN rollouts r ON r.id = m.rollout_id
             WHERE p.team_id = ANY($1) AND r.state <> 'cancelled'
             GROUP BY r.id, p.team_id
             ORDER BY r.created_at DESC, r.id, p.team_id",
        )
        .bind(team_ids)
        .fetch_all(&self.pool)
        .await?)
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
        // `Reports::report_stamps` covers every row read here.
        Ok(sqlx::query_as::<_, (String, String)>(
            "SELECT DISTINCT t.id, t.name FROM champion_teams ct
             JOIN champions c ON c.person_id = ct.person_id AND c.theme = ct.theme AND c.active <> 0
             JOIN people cp ON cp.id = ct.person_id AND cp.active <> 0
             JOIN teams t ON t.id = ct.team_id
             WHERE ct.theme = ANY($1)
               AND NOT EXISTS (SELECT 1 FROM cascade_confirmations x
                               WHERE x.item_id = $2 AND x.team_id = ct.team_id)
               AND EXISTS (SELECT 1 FROM people p JOIN rollout_members m ON m.person_id = p.id
                           WHERE p.team_id = ct.team_id AND m.rollout_id = $3
                             AND m.out_reason IS NULL)
             ORDER BY t.name, t.id",
        )
        .bind(themes)
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
             WHERE m.rollout_id = $1 AND m.acknowledged_at IS NULL AND m.out_reason IS NULL
             ORDER BY t.name, p.display_name, m.person_id LIMIT $2",
        )
        .bind(rollout_id)
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await?)
    }

    async fn answer_tallies(&self, rollout_id: &str) -> Result<Vec<AnswerTally>, StoreError> {
        Ok(sqlx::query_as(
            "SELECT follow_up, answer, COUNT(*) AS count FROM follow_up_answers
             WHERE rollout_id = $1 GROUP BY follow_up, answer ORDER BY follow_up, count DESC, answer",
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
        // ILIKE: SQLite's LIKE ignores ASCII case.
        Ok(sqlx::query_as(
            "SELECT p.id, p.display_name AS name, t.name AS team, a.name AS agency
             FROM people p JOIN teams t ON t.id = p.team_id JOIN agencies a ON a.id = p.agency_id
             WHERE p.active <> 0
               AND (p.display_name ILIKE $1 ESCAPE '\\' OR p.id ILIKE $1 ESCAPE '\\')
             ORDER BY p.display_name, p.id LIMIT $2",
        )
        .bind(format!("%{escaped}%"))
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await?)
    }

    async fn identity_statuses(&self, person_id: &str) -> Result<Vec<IdentityStatus>, StoreError> {
        Ok(sqlx::query_as(
            "SELECT channel, unreachable_at IS NOT NULL AS unreachable FROM channel_identities
             WHERE person_id = $1 ORDER BY channel, unreachable",
        )
        .bind(person_id)
        .fetch_all(&self.pool)
        .await?)
    }

    async fn report_stamps(
        &self,
        rollout_ids: &[String],
    ) -> Result<Vec<(String, i64)>, StoreError> {
        Ok(sqlx::query_as(
            "SELECT scope, stamp FROM outbox_count_stamps
             WHERE scope = '' OR scope = ANY($1)
             ORDER BY scope",
        )
        .bind(rollout_ids)
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
        // One snapshot for all five reads.
        let mut tx = self.pool.begin().await?;
        sqlx::query("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
            .execute(&mut *tx)
            .await?;
        // Only the members' people and roles: a report of one rollout of a
        // few thousand people reads a few thousand rows, not the directory.
        let rows = DirectoryRows {
            agencies: sqlx::query_as("SELECT id, name FROM agencies ORDER BY id")
                .fetch_all(&mut *tx)
                .await?,
            teams: sqlx::query_as("SELECT id, agency_id, name FROM teams ORDER BY id")
                .fetch_all(&mut *tx)
                .await?,
            people: sqlx::query_as(
                "SELECT id, agency_id, team_id, absent_until FROM people
                 WHERE id IN (SELECT person_id FROM rollout_members WHERE rollout_id = ANY($1))
                 ORDER BY id",
            )
            .bind(rollout_ids)
            .fetch_all(&mut *tx)
            .await?,
            roles: sqlx::query_as(
                "SELECT person_id, role FROM person_roles
                 WHERE person_id IN (SELECT person_id FROM rollout_members WHERE rollout_id = ANY($1))
                 ORDER BY person_id, role",
            )
            .bind(rollout_ids)
            .fetch_all(&mut *tx)
            .await?,
            champions: sqlx::query_as(
                "SELECT person_id, theme FROM champions WHERE active <> 0 ORDER BY person_id, theme",
            )
            .fetch_all(&mut *tx)
            .await?,
        };
        tx.commit().await?;
        Ok(rows)
    }
}
