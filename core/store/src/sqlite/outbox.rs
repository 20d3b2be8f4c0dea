//! SQLite implementation of [`Outbox`]: claims are one `UPDATE ... RETURNING`
//! over the partial index of claimable rows, so a claim and its lease are
//! atomic; a row whose lease expired is claimable again (at-least-once).

use super::SqliteStore;
use super::audience::{push_audience, push_first_due, reached_before};
use crate::StoreError;
use crate::outbox::*;
use sqlx::{QueryBuilder, Row, Sqlite};

/// Members per multi-row INSERT: 4 parameters each, well under SQLite's limit.
const MEMBERS_PER_INSERT: usize = 2000;
/// Sent outbox rows recorded by one statement (two parameters each).
const SENT_PER_STATEMENT: usize = 500;

impl Outbox for SqliteStore {
    async fn create_rollout(&self, rollout: NewRollout<'_>) -> Result<u64, StoreError> {
        let mut tx = self.pool.begin().await?;
        sqlx::query(
            "INSERT INTO rollouts (id, item_id, item_version, definition, state, created_at, updated_at)
             VALUES (?, ?, ?, ?, 'active', ?, ?)",
        )
        .bind(rollout.id)
        .bind(rollout.item_id)
        .bind(rollout.item_version)
        .bind(rollout.definition)
        .bind(rollout.now)
        .bind(rollout.now)
        .execute(&mut *tx)
        .await?;
        for chunk in rollout.members.chunks(MEMBERS_PER_INSERT) {
            let mut insert: QueryBuilder<Sqlite> = QueryBuilder::new(
                "INSERT INTO rollout_members (rollout_id, person_id, wave, next_due_at) ",
            );
            insert.push_values(chunk, |mut row, m| {
                row.push_bind(rollout.id)
                    .push_bind(&m.person_id)
                    .push_bind(m.wave)
                    .push_bind(m.first_due_at);
            });
            insert.build().execute(&mut *tx).await?;
        }
        let mut written = rollout.members.len() as u64;
        if let Some(audience) = rollout.audience {
            let mut insert: QueryBuilder<Sqlite> = QueryBuilder::new(
                "INSERT INTO rollout_members (rollout_id, person_id, wave, next_due_at) SELECT ",
            );
            insert.push_bind(rollout.id);
            insert.push(", a.person_id, a.wave, ");
            push_first_due(&mut insert, audience);
            insert.push(" FROM ");
            let reached = reached_before(&mut tx, audience, rollout.id).await?;
            push_audience(&mut insert, audience, reached);
            insert.push(" a WHERE a.wave IS NOT NULL AND NOT a.reached");
            written += insert.build().execute(&mut *tx).await?.rows_affected();
        }
        for post in rollout.team_posts {
            sqlx::query(
                "INSERT INTO team_posts (rollout_id, team_id, channel, address, state, due_at, updated_at)
                 VALUES (?, ?, ?, ?, 'planned', ?, ?)",
            )
            .bind(rollout.id)
            .bind(&post.team_id)
            .bind(&post.channel)
            .bind(&post.address)
            .bind(post.due_at)
            .bind(rollout.now)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(written)
    }

    async fn rollouts(&self) -> Result<Vec<StoredRollout>, StoreError> {
        let rows = sqlx::query(
            "SELECT id, item_id, item_version, definition, state, created_at FROM rollouts ORDER BY created_at, id",
        )
        .fetch_all(&self.pool)
        .await?;
        Ok(rows.iter().map(stored_rollout).collect())
    }

    async fn rollout(&self, id: &str) -> Result<Option<StoredRollout>, StoreError> {
        let row = sqlx::query(
            "SELECT id, item_id, item_version, definition, state, created_at FROM rollouts WHERE id = ?",
        )
        .bind(id)
        .fetch_optional(&self.pool)
        .await?;
        Ok(row.as_ref().map(stored_rollout))
    }

    async fn set_rollout_state(
        &self,
        id: &str,
        state: RolloutState,
        now: i64,
    ) -> Result<bool, StoreError> {
        let mut tx = self.pool.begin().await?;
        let changed = sqlx::query(
            "UPDATE rollouts SET state = ?, updated_at = ? WHERE id = ? AND state <> 'cancelled'",
        )
        .bind(state.as_str())
        .bind(now)
        .bind(id)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        let exists: Option<String> = sqlx::query_scalar("SELECT state FROM rollouts WHERE id = ?")
            .bind(id)
            .fetch_optional(&mut *tx)
            .await?;
        if changed > 0 && state == RolloutState::Cancelled {
            sqlx::query("UPDATE outbox SET state = 'cancelled', updated_at = ? WHERE rollout_id = ? AND state = 'due'")
                .bind(now)
                .bind(id)
                .execute(&mut *tx)
                .await?;
            sqlx::query("UPDATE rollout_members SET next_due_at = NULL WHERE rollout_id = ?")
                .bind(id)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(exists.is_some())
    }

    async fn due_members(&self, now: i64, limit: u32) -> Result<Vec<DueMember>, StoreError> {
        let rows = sqlx::query(
            "SELECT m.rollout_id, m.person_id, m.wave, m.next_step, m.acknowledged_at IS NOT NULL AS acknowledged
             FROM rollout_members m JOIN rollouts r ON r.id = m.rollout_id
             WHERE m.next_due_at IS NOT NULL AND m.next_due_at <= ? AND r.state = 'active'
             ORDER BY m.next_due_at LIMIT ?",
        )
        .bind(now)
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows
            .iter()
            .map(|r| DueMember {
                rollout_id: r.get(0),
                person_id: r.get(1),
                wave: r.get(2),
                next_step: r.get(3),
                acknowledged: r.get(4),
            })
            .collect())
    }

    async fn materialise(
        &self,
        deliveries: &[NewDelivery],
        advances: &[MemberAdvance],
        now: i64,
    ) -> Result<(), StoreError> {
        let mut tx = self.pool.begin().await?;
        for d in deliveries {
            insert_delivery(d, now).execute(&mut *tx).await?;
        }
        for a in advances {
            sqlx::query("UPDATE rollout_members SET next_step = ?, next_due_at = ? WHERE rollout_id = ? AND person_id = ?")
                .bind(a.next_step)
                .bind(a.next_due_at)
                .bind(&a.rollout_id)
                .bind(&a.person_id)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    async fn claim(
        &self,
        now: i64,
        limit: u32,
        lease_ms: i64,
    ) -> Result<Vec<ClaimedDelivery>, StoreError> {
        let rows = sqlx::query(
            "UPDATE outbox SET state = 'leased', lease_until = ?1 + ?3, attempts = attempts + 1, updated_at = ?1
             WHERE id IN (
                 SELECT o.id FROM outbox o JOIN rollouts r ON r.id = o.rollout_id
                 WHERE o.state IN ('due', 'leased') AND o.due_at <= ?1
                   AND (o.state = 'due' OR o.lease_until <= ?1)
                   AND r.state = 'active'
                 ORDER BY o.due_at LIMIT ?2)
             RETURNING id, idempotency_key, rollout_id, person_id, recipient_id, wave, step_kind,
                       step_number, channel, channel_rank, attempts",
        )
        .bind(now)
        .bind(limit)
        .bind(lease_ms)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows
            .iter()
            .map(|r| ClaimedDelivery {
                id: r.get(0),
                idempotency_key: r.get(1),
                rollout_id: r.get(2),
                person_id: r.get(3),
                recipient_id: r.get(4),
                wave: r.get(5),
                step_kind: r.get(6),
                step_number: r.get(7),
                channel: r.get(8),
                channel_rank: r.get(9),
                attempts: r.get(10),
            })
            .collect())
    }

    async fn may_send(&self, rollout_id: &str) -> Result<bool, StoreError> {
        let state: Option<String> = sqlx::query_scalar("SELECT state FROM rollouts WHERE id = ?")
            .bind(rollout_id)
            .fetch_optional(&self.pool)
            .await?;
        Ok(state.as_deref() == Some("active"))
    }

    async fn record(
        &self,
        outcomes: &[(i64, DeliveryOutcome)],
        fallbacks: &[NewDelivery],
        now: i64,
    ) -> Result<(), StoreError> {
        let mut tx = self.pool.begin().await?;
        // Sent rows, the usual outcome, go in a few statements of many rows:
        // each statement is a round trip to the database thread.
        let sent: Vec<(i64, Option<&str>)> = outcomes
            .iter()
            .filter_map(|(id, outcome)| match outcome {
                DeliveryOutcome::Sent { provider_id } => Some((*id, provider_id.as_deref())),
                _ => None,
            })
            .collect();
        for chunk in sent.chunks(SENT_PER_STATEMENT) {
            let values = vec!["(?, ?)"; chunk.len()].join(", ");
            let sql = format!(
                "WITH v(id, provider_id) AS (VALUES {values})
                 UPDATE outbox SET state = 'sent',
                     provider_id = (SELECT provider_id FROM v WHERE v.id = outbox.id),
                     sent_at = ?, lease_until = NULL, last_error = NULL, updated_at = ?
                 WHERE id IN (SELECT id FROM v)"
            );
            let mut query = sqlx::query(&sql);
            for (id, provider_id) in chunk {
                query = query.bind(id).bind(provider_id);
            }
            query.bind(now).bind(now).execute(&mut *tx).await?;
        }
        for (id, outcome) in outcomes {
            let query = match outcome {
                DeliveryOutcome::Sent { .. } => continue,
                DeliveryOutcome::RetryAt { at, reason } => sqlx::query(
                    "UPDATE outbox SET state = 'due', due_at = ?, last_error = ?, lease_until = NULL, updated_at = ?
                     WHERE id = ? AND state = 'leased'",
                )
                .bind(at)
                .bind(reason)
                .bind(now)
                .bind(id),
                DeliveryOutcome::Dead { reason } => sqlx::query(
                    "UPDATE outbox SET state = 'dead', last_error = ?, lease_until = NULL, updated_at = ?
                     WHERE id = ? AND state = 'leased'",
                )
                .bind(reason)
                .bind(now)
                .bind(id),
                DeliveryOutcome::Released => sqlx::query(
                    "UPDATE outbox SET state = CASE (SELECT state FROM rollouts WHERE id = outbox.rollout_id)
                                                WHEN 'cancelled' THEN 'cancelled' ELSE 'due' END,
                     attempts = attempts - 1, lease_until = NULL, updated_at = ? WHERE id = ? AND state = 'leased'",
                )
                .bind(now)
                .bind(id),
            };
            query.execute(&mut *tx).await?;
        }
        for d in fallbacks {
            insert_delivery(d, now).execute(&mut *tx).await?;
        }
        tx.commit().await?;
        Ok(())
    }

    async fn delivery_counts(&self, rollout_id: &str) -> Result<Vec<DeliveryCounts>, StoreError> {
        let rows = sqlx::query(
            "SELECT wave, channel,
                    SUM(state = 'due' AND attempts = 0), SUM(state = 'leased'),
                    SUM(state = 'due' AND attempts > 0), SUM(state = 'sent'),
                    SUM(state = 'dead'), SUM(state = 'cancelled')
             FROM outbox WHERE rollout_id = ? AND step_kind = 'initial'
             GROUP BY wave, channel ORDER BY wave, channel",
        )
        .bind(rollout_id)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows
            .iter()
            .map(|r| DeliveryCounts {
                wave: r.get(0),
                channel: r.get(1),
                due: count(r, 2),
                leased: count(r, 3),
                retrying: count(r, 4),
                sent: count(r, 5),
                dead: count(r, 6),
                cancelled: count(r, 7),
            })
            .collect())
    }

    async fn wave_counts(&self, rollout_id: &str) -> Result<Vec<WaveCounts>, StoreError> {
        let rows = sqlx::query(
            "SELECT wave, COUNT(*), SUM(next_step = 0 AND next_due_at IS NOT NULL), SUM(acknowledged_at IS NOT NULL)
             FROM rollout_members WHERE rollout_id = ? GROUP BY wave ORDER BY wave",
        )
        .bind(rollout_id)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows
            .iter()
            .map(|r| WaveCounts {
                wave: r.get(0),
                members: count(r, 1),
                planned: count(r, 2),
                acknowledged: count(r, 3),
            })
            .collect())
    }

    async fn outstanding(&self) -> Result<u64, StoreError> {
        let n: i64 =
            sqlx::query_scalar("SELECT COUNT(*) FROM outbox WHERE state IN ('due', 'leased')")
                .fetch_one(&self.pool)
                .await?;
        Ok(n.max(0) as u64)
    }

    async fn all_identities(
        &self,
    ) -> Result<Vec<cascade_model::directory::ChannelIdentity>, StoreError> {
        let rows = sqlx::query(
            "SELECT person_id, channel, address FROM channel_identities
             WHERE unreachable_at IS NULL ORDER BY person_id, channel",
        )
        .fetch_all(&self.pool)
        .await?;
        Ok(rows
            .iter()
            .map(|r| cascade_model::directory::ChannelIdentity {
                person_id: r.get(0),
                channel: r.get(1),
                address: r.get(2),
            })
            .collect())
    }

    async fn dead_letters(
        &self,
        rollout_id: &str,
        limit: u32,
    ) -> Result<Vec<DeadLetter>, StoreError> {
        let rows = sqlx::query(
            "SELECT person_id, channel, step_kind, COALESCE(last_error, '') FROM outbox
             WHERE rollout_id = ? AND state = 'dead' ORDER BY updated_at DESC, id LIMIT ?",
        )
        .bind(rollout_id)
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows
            .iter()
            .map(|r| DeadLetter {
                person_id: r.get(0),
                channel: r.get(1),
                step_kind: r.get(2),
                reason: r.get(3),
            })
            .collect())
    }
}

fn count(row: &sqlx::sqlite::SqliteRow, i: usize) -> u64 {
    row.get::<Option<i64>, _>(i).unwrap_or(0).max(0) as u64
}

fn stored_rollout(r: &sqlx::sqlite::SqliteRow) -> StoredRollout {
    StoredRollout {
        id: r.get(0),
        item_id: r.get(1),
        item_version: r.get(2),
        definition: r.get(3),
        state: RolloutState::parse(r.get::<&str, _>(4)).unwrap_or(RolloutState::Paused),
        created_at: r.get(5),
    }
}

fn insert_delivery(
    d: &NewDelivery,
    now: i64,
) -> sqlx::query::Query<'_, Sqlite, sqlx::sqlite::SqliteArguments<'_>> {
    sqlx::query(
        "INSERT OR IGNORE INTO outbox (idempotency_key, rollout_id, person_id, recipient_id, wave, step_kind,
             step_number, channel, channel_rank, state, due_at, updated_at)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, 'due', ?, ?)",
    )
    .bind(&d.idempotency_key)
    .bind(&d.rollout_id)
    .bind(&d.person_id)
    .bind(&d.recipient_id)
    .bind(d.wave)
    .bind(&d.step_kind)
    .bind(d.step_number)
    .bind(&d.channel)
    .bind(d.channel_rank)
    .bind(d.due_at)
    .bind(now)
}
