//! SQLite implementation of [`TeamPosts`]. A post is claimed like an outbox
//! row (one `UPDATE ... RETURNING` setting a lease); counts are computed
//! from the rollout's members, the people's teams and the
//! acknowledgements, so every route that records an acknowledgement moves
//! the count without telling this module.

use super::SqliteStore;
use crate::StoreError;
use crate::team_posts::*;
use sqlx::Row;
use sqlx::sqlite::SqliteRow;

/// The true count of the post `tp` (joined with its rollout `r`), as two
/// correlated columns.
const COUNTS: &str = "
    (SELECT COUNT(*) FROM rollout_members m JOIN people p ON p.id = m.person_id
      WHERE m.rollout_id = tp.rollout_id AND p.team_id = tp.team_id
        AND EXISTS (SELECT 1 FROM acknowledgements a WHERE a.person_id = m.person_id
                      AND a.item_id = r.item_id AND a.item_version = r.item_version)) AS acknowledged,
    (SELECT COUNT(*) FROM rollout_members m JOIN people p ON p.id = m.person_id
      WHERE m.rollout_id = tp.rollout_id AND p.team_id = tp.team_id) AS total";

fn count(acknowledged: Option<u32>, total: Option<u32>) -> Option<TeamCount> {
    Some(TeamCount {
        acknowledged: acknowledged?,
        total: total?,
    })
}

fn stored(r: &SqliteRow) -> StoredTeamPost {
    StoredTeamPost {
        id: r.get("id"),
        rollout_id: r.get("rollout_id"),
        team_id: r.get("team_id"),
        channel: r.get("channel"),
        address: r.get("address"),
        state: r.get("state"),
        shown: count(r.get("shown_acknowledged"), r.get("shown_total")),
        last_error: r.get("last_error"),
    }
}

const STORED_COLUMNS: &str =
    "id, rollout_id, team_id, channel, address, state, shown_acknowledged, shown_total, last_error";

impl TeamPosts for SqliteStore {
    async fn claim_team_posts(
        &self,
        now: i64,
        lease_ms: i64,
    ) -> Result<Vec<ClaimedTeamPost>, StoreError> {
        let mut claimed: Vec<ClaimedTeamPost> = sqlx::query_as(
            "UPDATE team_posts SET lease_until = ?, attempts = attempts + 1, updated_at = ?
             WHERE state IN ('planned', 'retry') AND due_at <= ?
               AND (lease_until IS NULL OR lease_until <= ?)
               AND rollout_id IN (SELECT id FROM rollouts WHERE state = 'active')
             RETURNING id, rollout_id, team_id, channel, address, attempts",
        )
        .bind(now + lease_ms)
        .bind(now)
        .bind(now)
        .bind(now)
        .fetch_all(&self.writer)
        .await?;
        claimed.sort_by_key(|c| c.id);
        Ok(claimed)
    }

    async fn team_posts_due(&self, now: i64) -> Result<u64, StoreError> {
        let due: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM team_posts
             WHERE state IN ('planned', 'retry') AND due_at <= ?
               AND rollout_id IN (SELECT id FROM rollouts WHERE state = 'active')",
        )
        .bind(now)
        .fetch_one(&self.pool)
        .await?;
        Ok(u64::try_from(due).unwrap_or_default())
    }

    async fn team_count(&self, post_id: i64) -> Result<TeamCount, StoreError> {
        Ok(sqlx::query_as(&format!(
            "SELECT {COUNTS} FROM team_posts tp JOIN rollouts r ON r.id = tp.rollout_id WHERE tp.id = ?"
        ))
        .bind(post_id)
        .fetch_one(&self.pool)
        .await?)
    }

    async fn record_team_post(
        &self,
        post_id: i64,
        outcome: &TeamPostOutcome,
        now: i64,
    ) -> Result<(), StoreError> {
        let query = match outcome {
            TeamPostOutcome::Sent {
                provider_id,
                shown,
                edit_due_at,
            } => sqlx::query(
                "UPDATE team_posts SET state = 'sent', provider_id = ?, shown_acknowledged = ?,
                 shown_total = ?, edit_due_at = ?, sent_at = ?, lease_until = NULL, last_error = NULL,
                 updated_at = ? WHERE id = ?",
            )
            .bind(provider_id)
            .bind(shown.acknowledged)
            .bind(shown.total)
            .bind(edit_due_at)
            .bind(now)
            .bind(now)
            .bind(post_id),
            TeamPostOutcome::RetryAt { at, reason } => sqlx::query(
                "UPDATE team_posts SET state = 'retry', due_at = ?, last_error = ?, lease_until = NULL,
                 updated_at = ? WHERE id = ? AND state IN ('planned', 'retry')",
            )
            .bind(at)
            .bind(reason)
            .bind(now)
            .bind(post_id),
            TeamPostOutcome::Dead { reason } => sqlx::query(
                "UPDATE team_posts SET state = 'dead', last_error = ?, lease_until = NULL, updated_at = ?
                 WHERE id = ? AND state IN ('planned', 'retry')",
            )
            .bind(reason)
            .bind(now)
            .bind(post_id),
            TeamPostOutcome::Released => sqlx::query(
                "UPDATE team_posts SET attempts = attempts - 1, lease_until = NULL, updated_at = ?
                 WHERE id = ? AND state IN ('planned', 'retry')",
            )
            .bind(now)
            .bind(post_id),
        };
        query.execute(&self.writer).await?;
        Ok(())
    }

    async fn stale_team_posts(&self, now: i64) -> Result<Vec<StaleTeamPost>, StoreError> {
        #[derive(sqlx::FromRow)]
        struct Stale {
            id: i64,
            rollout_id: String,
            team_id: String,
            channel: String,
            address: String,
            provider_id: String,
            shown_acknowledged: u32,
            shown_total: u32,
            acknowledged: u32,
            total: u32,
        }
        let rows: Vec<Stale> = sqlx::query_as(&format!(
            "SELECT tp.id, tp.rollout_id, tp.team_id, tp.channel, tp.address, tp.provider_id,
                    tp.shown_acknowledged, tp.shown_total, {COUNTS}
             FROM team_posts tp JOIN rollouts r ON r.id = tp.rollout_id
             WHERE tp.state = 'sent' AND r.state <> 'cancelled' AND tp.provider_id IS NOT NULL
               AND (tp.edit_due_at IS NULL OR tp.edit_due_at <= ?)
               AND tp.shown_acknowledged < tp.shown_total
             ORDER BY tp.id"
        ))
        .bind(now)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows
            .into_iter()
            .map(|r| StaleTeamPost {
                id: r.id,
                rollout_id: r.rollout_id,
                team_id: r.team_id,
                channel: r.channel,
                address: r.address,
                provider_id: r.provider_id,
                shown: TeamCount {
                    acknowledged: r.shown_acknowledged,
                    total: r.shown_total,
                },
                count: TeamCount {
                    acknowledged: r.acknowledged,
                    total: r.total,
                },
            })
            .filter(|post| post.count != post.shown)
            .collect())
    }

    async fn record_team_post_edit(
        &self,
        post_id: i64,
        edit: &TeamPostEdit,
        now: i64,
    ) -> Result<(), StoreError> {
        let query = match edit {
            TeamPostEdit::Shown { shown, next_at } => sqlx::query(
                "UPDATE team_posts SET shown_acknowledged = ?, shown_total = ?, edit_due_at = ?,
                 last_error = NULL, updated_at = ? WHERE id = ?",
            )
            .bind(shown.acknowledged)
            .bind(shown.total)
            .bind(next_at)
            .bind(now)
            .bind(post_id),
            TeamPostEdit::RetryAt { at, reason } => sqlx::query(
                "UPDATE team_posts SET edit_due_at = ?, last_error = ?, updated_at = ? WHERE id = ?",
            )
            .bind(at)
            .bind(reason)
            .bind(now)
            .bind(post_id),
        };
        query.execute(&self.writer).await?;
        Ok(())
    }

    async fn team_post(&self, post_id: i64) -> Result<Option<StoredTeamPost>, StoreError> {
        let row = sqlx::query(&format!(
            "SELECT {STORED_COLUMNS} FROM team_posts WHERE id = ?"
        ))
        .bind(post_id)
        .fetch_optional(&self.pool)
        .await?;
        Ok(row.as_ref().map(stored))
    }

    async fn team_posts(&self, rollout_id: &str) -> Result<Vec<StoredTeamPost>, StoreError> {
        let rows = sqlx::query(&format!(
            "SELECT {STORED_COLUMNS} FROM team_posts WHERE rollout_id = ? ORDER BY team_id, channel"
        ))
        .bind(rollout_id)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows.iter().map(stored).collect())
    }

    async fn team_post_member(
        &self,
        post_id: i64,
        person_id: &str,
    ) -> Result<Option<TeamPostMember>, StoreError> {
        Ok(sqlx::query_as(
            "SELECT r.id AS rollout_id, r.item_id, r.item_version,
                    (SELECT o.id FROM outbox o WHERE o.rollout_id = r.id AND o.person_id = m.person_id
                       AND o.recipient_id = m.person_id AND o.step_kind IN ('initial', 'reminder')
                     ORDER BY o.id DESC LIMIT 1) AS delivery_id
             FROM team_posts tp
             JOIN rollouts r ON r.id = tp.rollout_id
             JOIN rollout_members m ON m.rollout_id = tp.rollout_id AND m.person_id = ?
             JOIN people p ON p.id = m.person_id AND p.team_id = tp.team_id
             WHERE tp.id = ?",
        )
        .bind(person_id)
        .bind(post_id)
        .fetch_optional(&self.pool)
        .await?)
    }
}
