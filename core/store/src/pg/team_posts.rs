//! PostgreSQL implementation of [`TeamPosts`]. A post is claimed like an
//! outbox row: picked with `FOR UPDATE SKIP LOCKED` and leased in the same
//! statement, so two `cascade serve` processes never post it at once while
//! its lease holds; each edit of a sent post's count is claimed the same
//! way, and both leases record their owner (the serve's dispatcher), so a
//! serve takes back only the leases of serves that stopped. Counts are computed from the rollout's members, the
//! people's teams and the acknowledgements, as SQLite's are.

use super::PgStore;
use crate::StoreError;
use crate::team_posts::*;
use sqlx::Row;
use sqlx::postgres::PgRow;

/// The true count of the post `tp` (joined with its rollout `r`), as two
/// correlated columns.
const COUNTS: &str = "
    (SELECT COUNT(*) FROM rollout_members m JOIN people p ON p.id = m.person_id
      WHERE m.rollout_id = tp.rollout_id AND p.team_id = tp.team_id
        AND EXISTS (SELECT 1 FROM acknowledgements a WHERE a.person_id = m.person_id
                      AND a.item_id = r.item_id AND a.item_version = r.item_version)) AS acknowledged,
    (SELECT COUNT(*) FROM rollout_members m JOIN people p ON p.id = m.person_id
      WHERE m.rollout_id = tp.rollout_id AND p.team_id = tp.team_id) AS total";

/// A count read back (never negative, and far below `u32::MAX`).
fn unsigned(n: i64) -> u32 {
    u32::try_from(n.max(0)).unwrap_or(u32::MAX)
}

fn team_count(acknowledged: i64, total: i64) -> TeamCount {
    TeamCount {
        acknowledged: unsigned(acknowledged),
        total: unsigned(total),
    }
}

fn stored(r: &PgRow) -> Result<StoredTeamPost, StoreError> {
    let acknowledged: Option<i64> = r.try_get("shown_acknowledged")?;
    let total: Option<i64> = r.try_get("shown_total")?;
    Ok(StoredTeamPost {
        id: r.try_get("id")?,
        rollout_id: r.try_get("rollout_id")?,
        team_id: r.try_get("team_id")?,
        channel: r.try_get("channel")?,
        address: r.try_get("address")?,
        state: r.try_get("state")?,
        shown: acknowledged.zip(total).map(|(a, t)| team_count(a, t)),
        last_error: r.try_get("last_error")?,
    })
}

/// The sent posts (`tp`, with their rollout `r`) whose next edit is due at
/// `$1` and that do not show every member acknowledged yet; with
/// [`COUNTS`] and [`DIFFERS`], those whose count is out of date.
const EDIT_DUE: &str = "
    FROM team_posts tp JOIN rollouts r ON r.id = tp.rollout_id
    WHERE tp.state = 'sent' AND r.state <> 'cancelled' AND tp.provider_id IS NOT NULL
      AND (tp.edit_due_at IS NULL OR tp.edit_due_at <= $1)
      AND tp.shown_acknowledged < tp.shown_total";

/// Of a subquery with the shown and true counts: the rows whose count the
/// post does not show.
const DIFFERS: &str = "acknowledged <> shown_acknowledged OR total <> shown_total";

const STORED_COLUMNS: &str =
    "id, rollout_id, team_id, channel, address, state, shown_acknowledged, shown_total, last_error";

impl TeamPosts for PgStore {
    async fn claim_team_posts(
        &self,
        now: i64,
        lease_ms: i64,
        owner: &str,
    ) -> Result<Vec<ClaimedTeamPost>, StoreError> {
        let rows: Vec<(i64, String, String, String, String, i64)> = sqlx::query_as(
            "WITH picked AS (
                 SELECT tp.id FROM team_posts tp JOIN rollouts r ON r.id = tp.rollout_id
                 WHERE tp.state IN ('planned', 'retry') AND tp.due_at <= $2
                   AND (tp.lease_until IS NULL OR tp.lease_until <= $2)
                   AND r.state = 'active'
                 FOR UPDATE OF tp SKIP LOCKED)
             UPDATE team_posts SET lease_until = $1, lease_owner = $3,
                 attempts = team_posts.attempts + 1, updated_at = $2
             FROM picked WHERE team_posts.id = picked.id
             RETURNING team_posts.id, team_posts.rollout_id, team_posts.team_id,
                       team_posts.channel, team_posts.address, team_posts.attempts",
        )
        .bind(now.saturating_add(lease_ms))
        .bind(now)
        .bind(owner)
        .fetch_all(&self.pool)
        .await?;
        let mut claimed: Vec<ClaimedTeamPost> = rows
            .into_iter()
            .map(
                |(id, rollout_id, team_id, channel, address, attempts)| ClaimedTeamPost {
                    id,
                    rollout_id,
                    team_id,
                    channel,
                    address,
                    attempts: unsigned(attempts),
                },
            )
            .collect();
        claimed.sort_by_key(|c| c.id);
        Ok(claimed)
    }

    async fn team_posts_due(&self, now: i64) -> Result<u64, StoreError> {
        let due: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM team_posts
             WHERE state IN ('planned', 'retry') AND due_at <= $1
               AND rollout_id IN (SELECT id FROM rollouts WHERE state = 'active')",
        )
        .bind(now)
        .fetch_one(&self.pool)
        .await?;
        Ok(u64::try_from(due).unwrap_or_default())
    }

    async fn team_count(&self, post_id: i64) -> Result<TeamCount, StoreError> {
        let (acknowledged, total): (i64, i64) = sqlx::query_as(&format!(
            "SELECT {COUNTS} FROM team_posts tp JOIN rollouts r ON r.id = tp.rollout_id WHERE tp.id = $1"
        ))
        .bind(post_id)
        .fetch_one(&self.pool)
        .await?;
        Ok(team_count(acknowledged, total))
    }

    async fn record_team_post(
        &self,
        post_id: i64,
        outcome: &TeamPostOutcome,
        owner: &str,
        now: i64,
    ) -> Result<(), StoreError> {
        // Each only while `owner` holds the post's lease and it is not sent
        // or dead: a post another process claimed after this one's lease
        // ran out keeps its record.
        let query = match outcome {
            TeamPostOutcome::Sent {
                provider_id,
                shown,
                edit_due_at,
            } => sqlx::query(
                "UPDATE team_posts SET state = 'sent', provider_id = $1, shown_acknowledged = $2,
                 shown_total = $3, edit_due_at = $4, sent_at = $5, lease_until = NULL, lease_owner = NULL,
                 last_error = NULL, updated_at = $5
                 WHERE id = $6 AND lease_owner = $7 AND state IN ('planned', 'retry')",
            )
            .bind(provider_id)
            .bind(i64::from(shown.acknowledged))
            .bind(i64::from(shown.total))
            .bind(edit_due_at)
            .bind(now)
            .bind(post_id)
            .bind(owner),
            TeamPostOutcome::RetryAt { at, reason } => sqlx::query(
                "UPDATE team_posts SET state = 'retry', due_at = $1, last_error = $2, lease_until = NULL,
                 lease_owner = NULL, updated_at = $3
                 WHERE id = $4 AND lease_owner = $5 AND state IN ('planned', 'retry')",
            )
            .bind(at)
            .bind(reason)
            .bind(now)
            .bind(post_id)
            .bind(owner),
            TeamPostOutcome::Dead { reason } => sqlx::query(
                "UPDATE team_posts SET state = 'dead', last_error = $1, lease_until = NULL,
                 lease_owner = NULL, updated_at = $2
                 WHERE id = $3 AND lease_owner = $4 AND state IN ('planned', 'retry')",
            )
            .bind(reason)
            .bind(now)
            .bind(post_id)
            .bind(owner),
            TeamPostOutcome::Released => sqlx::query(
                "UPDATE team_posts SET attempts = attempts - 1, lease_until = NULL, lease_owner = NULL,
                 updated_at = $1
                 WHERE id = $2 AND lease_owner = $3 AND state IN ('planned', 'retry')",
            )
            .bind(now)
            .bind(post_id)
            .bind(owner),
        };
        query.execute(&self.pool).await?;
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
            shown_acknowledged: i64,
            shown_total: i64,
            acknowledged: i64,
            total: i64,
        }
        // The posts whose edit is due and free are locked as they are read,
        // skipping any another process is claiming, and those whose count
        // differs are leased in the same statement.
        let rows: Vec<Stale> = sqlx::query_as(&format!(
            "WITH picked AS (
                 SELECT tp.id, {COUNTS}
                 {EDIT_DUE} AND (tp.lease_until IS NULL OR tp.lease_until <= $1)
                 FOR UPDATE OF tp SKIP LOCKED)
             UPDATE team_posts SET lease_until = $2, lease_owner = $3, updated_at = $1
             FROM picked
             WHERE team_posts.id = picked.id
               AND (picked.acknowledged <> team_posts.shown_acknowledged
                    OR picked.total <> team_posts.shown_total)
             RETURNING team_posts.id, team_posts.rollout_id, team_posts.team_id, team_posts.channel,
                       team_posts.address, team_posts.provider_id, team_posts.shown_acknowledged,
                       team_posts.shown_total, picked.acknowledged, picked.total"
        ))
        .bind(now)
        .bind(now.saturating_add(lease_ms))
        .bind(owner)
        .fetch_all(&self.pool)
        .await?;
        let mut stale: Vec<StaleTeamPost> = rows
            .into_iter()
            .map(|r| StaleTeamPost {
                id: r.id,
                rollout_id: r.rollout_id,
                team_id: r.team_id,
                channel: r.channel,
                address: r.address,
                provider_id: r.provider_id,
                shown: team_count(r.shown_acknowledged, r.shown_total),
                count: team_count(r.acknowledged, r.total),
            })
            .collect();
        stale.sort_by_key(|s| s.id);
        Ok(stale)
    }

    async fn team_post_edits_due(&self, now: i64) -> Result<u64, StoreError> {
        let due: i64 = sqlx::query_scalar(&format!(
            "SELECT COUNT(*) FROM (
                 SELECT tp.shown_acknowledged, tp.shown_total, {COUNTS} {EDIT_DUE}) AS due
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
                "UPDATE team_posts SET shown_acknowledged = $1, shown_total = $2, edit_due_at = $3,
                 lease_until = NULL, lease_owner = NULL, last_error = NULL, updated_at = $4
                 WHERE id = $5 AND lease_owner = $6 AND state = 'sent'",
            )
            .bind(i64::from(shown.acknowledged))
            .bind(i64::from(shown.total))
            .bind(next_at)
            .bind(now)
            .bind(post_id)
            .bind(owner),
            TeamPostEdit::RetryAt { at, reason } => sqlx::query(
                "UPDATE team_posts SET edit_due_at = $1, lease_until = NULL, lease_owner = NULL,
                 last_error = $2, updated_at = $3
                 WHERE id = $4 AND lease_owner = $5 AND state = 'sent'",
            )
            .bind(at)
            .bind(reason)
            .bind(now)
            .bind(post_id)
            .bind(owner),
        };
        query.execute(&self.pool).await?;
        Ok(())
    }

    async fn team_post(&self, post_id: i64) -> Result<Option<StoredTeamPost>, StoreError> {
        let row = sqlx::query(&format!(
            "SELECT {STORED_COLUMNS} FROM team_posts WHERE id = $1"
        ))
        .bind(post_id)
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(stored).transpose()
    }

    async fn team_posts(&self, rollout_id: &str) -> Result<Vec<StoredTeamPost>, StoreError> {
        let rows = sqlx::query(&format!(
            "SELECT {STORED_COLUMNS} FROM team_posts WHERE rollout_id = $1 ORDER BY team_id, channel"
        ))
        .bind(rollout_id)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(stored).collect()
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
             JOIN rollout_members m ON m.rollout_id = tp.rollout_id AND m.person_id = $1
             JOIN people p ON p.id = m.person_id AND p.team_id = tp.team_id
             WHERE tp.id = $2",
        )
        .bind(person_id)
        .bind(post_id)
        .fetch_optional(&self.pool)
        .await?)
    }
}
