//! SQLite implementation of [`TeamPosts`]. A post is claimed like an outbox
//! row (one `UPDATE ... RETURNING` setting a lease and its owner), and so
//! is each edit of a sent post's count; counts are computed
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

/// The sent posts (`tp`, with their rollout `r`) whose next edit is due at
/// `?1` and that do not show every member acknowledged yet; with
/// [`COUNTS`] and [`DIFFERS`], those whose count is out of date.
const EDIT_DUE: &str = "
    FROM team_posts tp JOIN rollouts r ON r.id = tp.rollout_id
    WHERE tp.state = 'sent' AND r.state <> 'cancelled' AND tp.provider_id IS NOT NULL
      AND (tp.edit_due_at IS NULL OR tp.edit_due_at <= ?1)
      AND tp.shown_acknowledged < tp.shown_total";

/// Of a subquery with the shown and true counts: the rows whose count the
/// post does not show.
const DIFFERS: &str = "acknowledged <> shown_acknowledged OR total <> shown_total";

const STORED_COLUMNS: &str =
    "id, rollout_id, team_id, channel, address, state, shown_acknowledged, shown_total, last_error";

impl TeamPosts for SqliteStore {
    async fn claim_team_posts(
        &self,
        now: i64,
        lease_ms: i64,
        owner: &str,
    ) -> Result<Vec<ClaimedTeamPost>, StoreError> {
        let mut claimed: Vec<ClaimedTeamPost> = sqlx::query_as(
            "UPDATE team_posts SET lease_until = ?1 + ?2, lease_owner = ?3, attempts = attempts + 1,
                 updated_at = ?1
             WHERE state IN ('planned', 'retry') AND due_at <= ?1
               AND (lease_until IS NULL OR lease_until <= ?1)
               AND rollout_id IN (SELECT id FROM rollouts WHERE state = 'active')
             RETURNING id, rollout_id, team_id, channel, address, attempts",
        )
        .bind(now)
        .bind(lease_ms)
        .bind(owner)
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
        owner: &str,
        now: i64,
    ) -> Result<(), StoreError> {
        // Each only while `owner` holds the post's lease: a post another
        // claimer took after this one's lease ran out keeps its record.
        let query = match outcome {
            TeamPostOutcome::Sent {
                provider_id,
                shown,
                edit_due_at,
            } => sqlx::query(
                "UPDATE team_posts SET state = 'sent', provider_id = ?, shown_acknowledged = ?,
                 shown_total = ?, edit_due_at = ?, sent_at = ?, lease_until = NULL, lease_owner = NULL,
                 last_error = NULL, updated_at = ?
                 WHERE id = ? AND lease_owner = ? AND state IN ('planned', 'retry')",
            )
            .bind(provider_id)
            .bind(shown.acknowledged)
            .bind(shown.total)
            .bind(edit_due_at)
            .bind(now)
            .bind(now)
            .bind(post_id)
            .bind(owner),
            TeamPostOutcome::RetryAt { at, reason } => sqlx::query(
                "UPDATE team_posts SET state = 'retry', due_at = ?, last_error = ?, lease_until = NULL,
                 lease_owner = NULL, updated_at = ?
                 WHERE id = ? AND lease_owner = ? AND state IN ('planned', 'retry')",
            )
            .bind(at)
            .bind(reason)
            .bind(now)
            .bind(post_id)
            .bind(owner),
            TeamPostOutcome::Dead { reason } => sqlx::query(
                "UPDATE team_posts SET state = 'dead', last_error = ?, lease_until = NULL,
                 lease_owner = NULL, updated_at = ?
                 WHERE id = ? AND lease_owner = ? AND state IN ('planned', 'retry')",
            )
            .bind(reason)
            .bind(now)
            .bind(post_id)
            .bind(owner),
            TeamPostOutcome::Released => sqlx::query(
                "UPDATE team_posts SET attempts = attempts - 1, lease_until = NULL, lease_owner = NULL,
                 updated_at = ?
                 WHERE id = ? AND lease_owner = ? AND state IN ('planned', 'retry')",
            )
            .bind(now)
            .bind(post_id)
            .bind(owner),
        };
        query.execute(&self.writer).await?;
        Ok(())
    }

    async fn claim_stale_team_posts(
        &self,
        now: i64,
        lease_ms: i64,
        owner: &str,
    ) -> Result<Vec<StaleTeamPost>, StoreError> {
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
        // The stale posts whose edit no one holds, then their leases, each
        // only if still free and due: a claimer that took one meanwhile
        // keeps it.
        let mut rows: Vec<Stale> = sqlx::query_as(&format!(
            "SELECT * FROM (
                 SELECT tp.id, tp.rollout_id, tp.team_id, tp.channel, tp.address, tp.provider_id,
                        tp.shown_acknowledged, tp.shown_total, {COUNTS}
                 {EDIT_DUE} AND (tp.lease_until IS NULL OR tp.lease_until <= ?1))
             WHERE {DIFFERS} ORDER BY id"
        ))
        .bind(now)
        .fetch_all(&self.pool)
        .await?;
        if rows.is_empty() {
            return Ok(Vec::new());
        }
        let ids = serde_json::to_string(&rows.iter().map(|r| r.id).collect::<Vec<_>>())
            .expect("a list of ids serialises");
        let leased: Vec<i64> = sqlx::query_scalar(
            "UPDATE team_posts SET lease_until = ?1 + ?2, lease_owner = ?3, updated_at = ?1
             WHERE id IN (SELECT value FROM json_each(?4)) AND state = 'sent'
               AND (edit_due_at IS NULL OR edit_due_at <= ?1)
               AND (lease_until IS NULL OR lease_until <= ?1)
             RETURNING id",
        )
        .bind(now)
        .bind(lease_ms)
        .bind(owner)
        .bind(ids)
        .fetch_all(&self.writer)
        .await?;
        rows.retain(|r| leased.contains(&r.id));
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
            .collect())
    }

    async fn team_post_edits_due(&self, now: i64) -> Result<u64, StoreError> {
        let due: i64 = sqlx::query_scalar(&format!(
            "SELECT COUNT(*) FROM (
                 SELECT tp.shown_acknowledged, tp.shown_total, {COUNTS} {EDIT_DUE})
             WHERE {DIFFERS}"
        ))
        .bind(now)
        .fetch_one(&self.pool)
        .await?;
        Ok(u64::try_from(due).unwrap_or_default())
    }

    async fn record_team_post_edit(
        &self,
        post_id: i64,
        edit: &TeamPostEdit,
        owner: &str,
        now: i64,
    ) -> Result<(), StoreError> {
        // Only while `owner` holds the edit's lease.
        let query = match edit {
            TeamPostEdit::Shown { shown, next_at } => sqlx::query(
                "UPDATE team_posts SET shown_acknowledged = ?, shown_total = ?, edit_due_at = ?,
                 lease_until = NULL, lease_owner = NULL, last_error = NULL, updated_at = ?
                 WHERE id = ? AND lease_owner = ? AND state = 'sent'",
            )
            .bind(shown.acknowledged)
            .bind(shown.total)
            .bind(next_at)
            .bind(now)
            .bind(post_id)
            .bind(owner),
            TeamPostEdit::RetryAt { at, reason } => sqlx::query(
                "UPDATE team_posts SET edit_due_at = ?, lease_until = NULL, lease_owner = NULL,
                 last_error = ?, updated_at = ?
                 WHERE id = ? AND lease_owner = ? AND state = 'sent'",
            )
            .bind(at)
            .bind(reason)
            .bind(now)
            .bind(post_id)
            .bind(owner),
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
