//! The SQL of the annual report and coverage gaps in PostgreSQL: aggregates
//! only (see `sqlite/annual.rs`). Conditions are counted as
//! `SUM((cond)::int)::bigint`, SQLite's scalar `MAX(a, b)` is `GREATEST`.

use super::PgStore;
use crate::StoreError;
use crate::annual::*;

/// The period's rollouts, as a common table expression bound to $1 and $2.
const PERIOD: &str =
    "period AS (SELECT id, item_id FROM rollouts WHERE created_at >= $1 AND created_at < $2)";

/// Each member's first sent initial message, per rollout of the period.
const FIRST_SENT: &str = "first_sent AS (
    SELECT o.rollout_id, o.person_id, MIN(o.sent_at) AS at
    FROM period JOIN outbox o ON o.rollout_id = period.id
    WHERE o.state = 'sent' AND o.step_kind = 'initial' AND o.sent_at IS NOT NULL
    GROUP BY o.rollout_id, o.person_id)";

impl AnnualReports for PgStore {
    async fn annual_rollouts(&self, from: i64, to: i64) -> Result<Vec<AnnualRollout>, StoreError> {
        Ok(sqlx::query_as(
            "SELECT r.id, r.item_id, r.item_version, r.state, r.created_at, r.definition,
                    COALESCE(i.kind, '') AS kind, COALESCE(i.title, '') AS title,
                    COALESCE(i.status, '') AS status, i.embargoed_until,
                    COALESCE(i.source, '') AS source
             FROM rollouts r LEFT JOIN items i ON i.id = r.item_id AND i.version = r.item_version
             WHERE r.created_at >= $1 AND r.created_at < $2 ORDER BY r.created_at, r.id",
        )
        .bind(from)
        .bind(to)
        .fetch_all(&self.pool)
        .await?)
    }

    async fn group_figures(
        &self,
        from: i64,
        to: i64,
        within: i64,
    ) -> Result<Vec<GroupFigures>, StoreError> {
        // One pass over the members joined to their first send, then grouped
        // three ways; roles count a person once per role they hold.
        let sql = format!(
            "WITH {PERIOD}, {FIRST_SENT},
             members AS MATERIALIZED (
                SELECT m.rollout_id, m.person_id, COALESCE(p.agency_id, '?') AS agency_id,
                       COALESCE(p.team_id, '?') AS team_id,
                       (f.at IS NOT NULL)::int AS reached, f.at AS first_at, m.acknowledged_at,
                       (m.acknowledged_at IS NOT NULL)::int AS acknowledged,
                       (f.at IS NOT NULL AND m.acknowledged_at IS NOT NULL
                        AND m.acknowledged_at - f.at <= $3)::int AS within
                FROM period JOIN rollout_members m ON m.rollout_id = period.id
                LEFT JOIN people p ON p.id = m.person_id
                LEFT JOIN first_sent f ON f.rollout_id = m.rollout_id AND f.person_id = m.person_id)
             SELECT rollout_id, 'agency' AS level, agency_id AS key, COUNT(*) AS audience,
                    SUM(reached)::bigint AS reached, SUM(acknowledged)::bigint AS acknowledged,
                    SUM(within)::bigint AS acknowledged_within
             FROM members GROUP BY rollout_id, agency_id
             UNION ALL
             SELECT rollout_id, 'team', team_id, COUNT(*), SUM(reached)::bigint,
                    SUM(acknowledged)::bigint, SUM(within)::bigint
             FROM members GROUP BY rollout_id, team_id
             UNION ALL
             SELECT members.rollout_id, 'role', r.role, COUNT(*), SUM(reached)::bigint,
                    SUM(acknowledged)::bigint, SUM(within)::bigint
             FROM members JOIN person_roles r ON r.person_id = members.person_id
             GROUP BY members.rollout_id, r.role
             UNION ALL
             SELECT rollout_id, 'wait', CAST(GREATEST(acknowledged_at - first_at, 0) / 360000 AS TEXT),
                    COUNT(*), 0, 0, 0
             FROM members WHERE first_at IS NOT NULL AND acknowledged_at IS NOT NULL
             GROUP BY rollout_id, GREATEST(acknowledged_at - first_at, 0) / 360000
             ORDER BY 1, 2, 3"
        );
        Ok(sqlx::query_as(&sql)
            .bind(from)
            .bind(to)
            .bind(within)
            .fetch_all(&self.pool)
            .await?)
    }

    async fn wait_buckets(&self, from: i64, to: i64) -> Result<Vec<WaitBucket>, StoreError> {
        let sql = format!(
            "WITH {PERIOD}, {FIRST_SENT}
             SELECT m.rollout_id, GREATEST(m.acknowledged_at - f.at, 0) / 360000 AS bucket,
                    COUNT(*) AS count
             FROM period JOIN rollout_members m ON m.rollout_id = period.id
             JOIN first_sent f ON f.rollout_id = m.rollout_id AND f.person_id = m.person_id
             WHERE m.acknowledged_at IS NOT NULL
             GROUP BY m.rollout_id, bucket ORDER BY m.rollout_id, bucket"
        );
        Ok(sqlx::query_as(&sql)
            .bind(from)
            .bind(to)
            .fetch_all(&self.pool)
            .await?)
    }

    async fn directory_groups(&self) -> Result<Vec<DirectoryGroup>, StoreError> {
        Ok(sqlx::query_as(
            "SELECT 'agency' AS level, a.id AS key, a.name, '' AS agency_id,
                    (SELECT COUNT(*) FROM people p WHERE p.agency_id = a.id AND p.active <> 0) AS people
             FROM agencies a
             UNION ALL
             SELECT 'team', t.id, t.name, t.agency_id,
                    (SELECT COUNT(*) FROM people p WHERE p.team_id = t.id AND p.active <> 0)
             FROM teams t
             UNION ALL
             SELECT 'role', r.role, r.role, '', COUNT(*)
             FROM person_roles r JOIN people p ON p.id = r.person_id AND p.active <> 0
             GROUP BY r.role
             ORDER BY 1, 2",
        )
        .fetch_all(&self.pool)
        .await?)
    }

    async fn champion_teams(&self) -> Result<Vec<ChampionTeam>, StoreError> {
        Ok(sqlx::query_as(
            "SELECT DISTINCT ct.theme, ct.team_id FROM champion_teams ct
             JOIN champions c ON c.person_id = ct.person_id AND c.theme = ct.theme AND c.active <> 0
             ORDER BY ct.theme, ct.team_id",
        )
        .fetch_all(&self.pool)
        .await?)
    }

    async fn confirmed_teams(&self, from: i64, to: i64) -> Result<Vec<ConfirmedTeam>, StoreError> {
        let sql = format!(
            "WITH {PERIOD}
             SELECT DISTINCT c.item_id, c.team_id FROM cascade_confirmations c
             WHERE c.item_id IN (SELECT item_id FROM period)
             ORDER BY c.item_id, c.team_id"
        );
        Ok(sqlx::query_as(&sql)
            .bind(from)
            .bind(to)
            .fetch_all(&self.pool)
            .await?)
    }

    async fn rollout_answers(&self, from: i64, to: i64) -> Result<Vec<RolloutAnswer>, StoreError> {
        let sql = format!(
            "WITH {PERIOD}
             SELECT a.rollout_id, a.follow_up, a.answer, COUNT(*) AS count
             FROM period JOIN follow_up_answers a ON a.rollout_id = period.id
             GROUP BY a.rollout_id, a.follow_up, a.answer
             ORDER BY a.rollout_id, a.follow_up, count DESC, a.answer"
        );
        Ok(sqlx::query_as(&sql)
            .bind(from)
            .bind(to)
            .fetch_all(&self.pool)
            .await?)
    }

    async fn rollout_checks(&self, from: i64, to: i64) -> Result<Vec<RolloutCheck>, StoreError> {
        Ok(sqlx::query_as(
            "SELECT r.id AS rollout_id, c.question, COUNT(*) AS answered,
                    SUM(c.right_first_time)::bigint AS right_first_time
             FROM rollouts r
             JOIN rollout_members m ON m.rollout_id = r.id
             JOIN check_answers c ON c.person_id = m.person_id AND c.item_id = r.item_id
                  AND c.item_version = r.item_version AND c.acknowledgement_id IS NOT NULL
             WHERE r.created_at >= $1 AND r.created_at < $2
             GROUP BY r.id, c.question
             ORDER BY r.created_at, r.id, c.question",
        )
        .bind(from)
        .bind(to)
        .fetch_all(&self.pool)
        .await?)
    }
}
