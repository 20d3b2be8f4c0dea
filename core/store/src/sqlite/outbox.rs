//! SQLite implementation of [`Outbox`]: claims are one `UPDATE ... RETURNING`
//! over the partial index of claimable rows, so a claim and its lease are
//! atomic; a row whose lease expired is claimable again (at-least-once).

use super::SqliteStore;
use super::audience::{push_audience, push_first_due, push_timed_audience, reached_before};
use crate::StoreError;
use crate::outbox::*;
use cascade_model::rollout::{AudienceQuery, StepKind};
use sqlx::{QueryBuilder, Sqlite};

/// Members per multi-row INSERT: 6 parameters each, well under SQLite's limit.
const MEMBERS_PER_INSERT: usize = 2000;
/// Sent outbox rows recorded by one statement (two parameters each).
const SENT_PER_STATEMENT: usize = 500;

/// Writes the audience's members with their own first sends and shifts:
/// the query's timing rules go into a temporary table keyed by wave and
/// timing columns, and each member takes their rule's, or their wave's
/// when none matches (most people: no zone, pattern or absence).
async fn insert_timed_members(
    tx: &mut sqlx::SqliteConnection,
    rollout_id: &str,
    audience: &AudienceQuery,
) -> Result<u64, StoreError> {
    sqlx::query(
        "CREATE TEMP TABLE IF NOT EXISTS member_timing (
            wave INTEGER NOT NULL, time_zone TEXT NOT NULL, works TEXT NOT NULL,
            absent_until TEXT NOT NULL, shift_days INTEGER NOT NULL, first_due_at INTEGER NOT NULL,
            PRIMARY KEY (wave, time_zone, works, absent_until)) WITHOUT ROWID",
    )
    .execute(&mut *tx)
    .await?;
    sqlx::query("DELETE FROM temp.member_timing")
        .execute(&mut *tx)
        .await?;
    for chunk in audience.timing.chunks(MEMBERS_PER_INSERT) {
        let mut insert: QueryBuilder<Sqlite> = QueryBuilder::new(
            "INSERT OR REPLACE INTO temp.member_timing (wave, time_zone, works, absent_until, shift_days, first_due_at) ",
        );
        insert.push_values(chunk, |mut row, t| {
            row.push_bind(i64::try_from(t.wave).unwrap_or(i64::MAX))
                .push_bind(&t.time_zone)
                .push_bind(&t.works)
                .push_bind(&t.absent_until)
                .push_bind(t.shift_days)
                .push_bind(t.first_due_at);
        });
        insert.build().execute(&mut *tx).await?;
    }
    let mut insert: QueryBuilder<Sqlite> = QueryBuilder::new(
        "INSERT INTO rollout_members (rollout_id, person_id, wave, next_due_at, team_id, agency_id, shift_days) SELECT ",
    );
    insert.push_bind(rollout_id);
    insert.push(", a.person_id, a.wave, coalesce(t.first_due_at, ");
    push_first_due(&mut insert, audience);
    insert.push("), a.team_id, a.agency_id, coalesce(t.shift_days, 0) FROM ");
    let reached = reached_before(&mut *tx, audience, rollout_id).await?;
    push_timed_audience(&mut insert, audience, reached);
    insert.push(
        " a LEFT JOIN temp.member_timing t ON t.wave = a.wave
            AND t.time_zone = coalesce(a.time_zone, '') AND t.works = coalesce(a.works, '')
            AND t.absent_until = coalesce(a.absent_until, '')
          WHERE a.wave IS NOT NULL AND NOT a.reached",
    );
    let written = insert.build().execute(&mut *tx).await?.rows_affected();
    sqlx::query("DELETE FROM temp.member_timing")
        .execute(&mut *tx)
        .await?;
    Ok(written)
}

impl Outbox for SqliteStore {
    async fn create_rollout(&self, rollout: NewRollout<'_>) -> Result<u64, StoreError> {
        let mut tx = self.writer.begin_with("BEGIN IMMEDIATE").await?;
        let written = write_rollout(&mut tx, &rollout).await?;
        tx.commit().await?;
        self.woken();
        Ok(written)
    }

    async fn rollouts(&self) -> Result<Vec<StoredRollout>, StoreError> {
        let rows: Vec<RolloutRow> = sqlx::query_as(&format!(
            "SELECT {ROLLOUT_COLUMNS} FROM rollouts ORDER BY created_at, id"
        ))
        .fetch_all(&self.pool)
        .await?;
        Ok(rows.into_iter().map(StoredRollout::from).collect())
    }

    async fn rollout(&self, id: &str) -> Result<Option<StoredRollout>, StoreError> {
        let row: Option<RolloutRow> = sqlx::query_as(&format!(
            "SELECT {ROLLOUT_COLUMNS} FROM rollouts WHERE id = ?"
        ))
        .bind(id)
        .fetch_optional(&self.pool)
        .await?;
        Ok(row.map(StoredRollout::from))
    }

    async fn set_rollout_state(
        &self,
        id: &str,
        state: RolloutState,
        now: i64,
    ) -> Result<bool, StoreError> {
        let mut tx = self.writer.begin_with("BEGIN IMMEDIATE").await?;
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
            sqlx::query(
                "UPDATE rollout_members SET next_due_at = NULL, refresher_due_at = NULL
                 WHERE rollout_id = ?",
            )
            .bind(id)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        if changed > 0 && state == RolloutState::Active {
            self.woken();
        }
        Ok(exists.is_some())
    }

    async fn due_members(&self, now: i64, limit: u32) -> Result<Vec<DueMember>, StoreError> {
        Ok(sqlx::query_as(
            "SELECT m.rollout_id, m.person_id, m.wave, m.next_step, m.acknowledged_at IS NOT NULL AS acknowledged,
                    m.shift_days, m.joined_at
             FROM rollout_members m JOIN rollouts r ON r.id = m.rollout_id
             WHERE m.next_due_at IS NOT NULL AND m.next_due_at <= ? AND r.state = 'active'
             ORDER BY m.next_due_at LIMIT ?",
        )
        .bind(now)
        .bind(limit)
        .fetch_all(&self.pool)
        .await?)
    }

    async fn materialise(
        &self,
        deliveries: &[NewDelivery],
        advances: &[MemberAdvance],
        now: i64,
    ) -> Result<(), StoreError> {
        let mut tx = self.writer.begin_with("BEGIN IMMEDIATE").await?;
        for d in deliveries {
            insert_delivery(d, now).execute(&mut *tx).await?;
        }
        for a in advances {
            // A member an import took out meanwhile stays out.
            sqlx::query("UPDATE rollout_members SET next_step = ?, next_due_at = ?, shift_days = coalesce(?, shift_days) WHERE rollout_id = ? AND person_id = ? AND out_reason IS NULL")
                .bind(a.next_step)
                .bind(a.next_due_at)
                .bind(a.shift_days)
                .bind(&a.rollout_id)
                .bind(&a.person_id)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    async fn due_refreshers(&self, now: i64, limit: u32) -> Result<Vec<DueRefresher>, StoreError> {
        Ok(sqlx::query_as(
            "SELECT m.rollout_id, m.person_id, m.wave, m.refresher_next, m.acknowledged_at
             FROM rollout_members m JOIN rollouts r ON r.id = m.rollout_id
             WHERE m.refresher_due_at IS NOT NULL AND m.refresher_due_at <= ?
               AND m.acknowledged_at IS NOT NULL AND m.out_reason IS NULL AND r.state = 'active'
             ORDER BY m.refresher_due_at LIMIT ?",
        )
        .bind(now)
        .bind(limit)
        .fetch_all(&self.pool)
        .await?)
    }

    async fn materialise_refreshers(
        &self,
        deliveries: &[NewDelivery],
        advances: &[RefresherAdvance],
        now: i64,
    ) -> Result<(), StoreError> {
        let mut tx = self.writer.begin_with("BEGIN IMMEDIATE").await?;
        for d in deliveries {
            insert_delivery(d, now).execute(&mut *tx).await?;
        }
        for a in advances {
            sqlx::query(
                "UPDATE rollout_members SET refresher_next = ?, refresher_due_at = ?
                 WHERE rollout_id = ? AND person_id = ? AND out_reason IS NULL",
            )
            .bind(a.refresher_next)
            .bind(a.refresher_due_at)
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
        skip: &[String],
    ) -> Result<Vec<ClaimedDelivery>, StoreError> {
        // `?4` is a JSON array of the channels to leave (usually empty).
        let skip = serde_json::to_string(skip).expect("a list of names serialises");
        let claimed: Vec<ClaimedRow> = sqlx::query_as(
            "UPDATE outbox SET state = 'leased', lease_until = ?1 + ?3, lease_owner = NULL,
                               attempts = attempts + 1, updated_at = ?1
             WHERE id IN (
                 SELECT o.id FROM outbox o JOIN rollouts r ON r.id = o.rollout_id
                 WHERE o.state IN ('due', 'leased') AND o.due_at <= ?1
                   AND (o.state = 'due' OR o.lease_until <= ?1)
                   AND r.state = 'active'
                   AND o.channel NOT IN (SELECT value FROM json_each(?4))
                 ORDER BY o.due_at LIMIT ?2)
             RETURNING id, idempotency_key, rollout_id, person_id, recipient_id, wave, step_kind,
                       step_number, channel, channel_rank, attempts",
        )
        .bind(now)
        .bind(limit)
        .bind(lease_ms)
        .bind(skip)
        .fetch_all(&self.writer)
        .await?;
        self.typed_claims(claimed, now).await
    }

    async fn claim_by_channel(
        &self,
        claim: ChannelClaim<'_>,
    ) -> Result<Vec<ClaimedDelivery>, StoreError> {
        // One statement, so the claim is atomic: each channel's share is a
        // subquery over the claimable rows of that channel alone (the
        // `outbox_claimable_by_channel` index, in due order), the channels
        // not named one more.
        let parts =
            claim.shares.iter().filter(|(_, n)| *n > 0).count() + usize::from(claim.others > 0);
        if parts == 0 {
            return Ok(Vec::new());
        }
        let named = serde_json::to_string(&claim.shares.iter().map(|(c, _)| c).collect::<Vec<_>>())
            .expect("a list of names serialises");
        let mut query: QueryBuilder<Sqlite> =
            QueryBuilder::new("UPDATE outbox SET state = 'leased', lease_until = ");
        query
            .push_bind(claim.now.saturating_add(claim.lease_ms))
            .push(", lease_owner = ")
            .push_bind(claim.owner)
            .push(", attempts = attempts + 1, updated_at = ")
            .push_bind(claim.now)
            .push(" WHERE id IN (");
        let mut first = true;
        let mut part = |query: &mut QueryBuilder<Sqlite>, limit: u32| {
            if !first {
                query.push(" UNION ALL ");
            }
            first = false;
            query
                .push(
                    "SELECT id FROM (SELECT o.id FROM outbox o JOIN rollouts r ON r.id = o.rollout_id
                     WHERE o.state IN ('due', 'leased') AND o.due_at <= ",
                )
                .push_bind(claim.now)
                .push(" AND (o.state = 'due' OR o.lease_until <= ")
                .push_bind(claim.now)
                .push(") AND r.state = 'active' AND ");
            limit
        };
        for (channel, share) in claim.shares.iter().filter(|(_, n)| *n > 0) {
            let limit = part(&mut query, *share);
            query
                .push("o.channel = ")
                .push_bind(channel)
                .push(" ORDER BY o.due_at LIMIT ")
                .push_bind(limit)
                .push(")");
        }
        if claim.others > 0 {
            let limit = part(&mut query, claim.others);
            query
                .push("o.channel NOT IN (SELECT value FROM json_each(")
                .push_bind(named)
                .push(")) ORDER BY o.due_at LIMIT ")
                .push_bind(limit)
                .push(")");
        }
        query.push(
            ") RETURNING id, idempotency_key, rollout_id, person_id, recipient_id, wave, step_kind,
                         step_number, channel, channel_rank, attempts",
        );
        let claimed: Vec<ClaimedRow> = query.build_query_as().fetch_all(&self.writer).await?;
        self.typed_claims(claimed, claim.now).await
    }

    async fn take_back_leases(&self, now: i64, alive: &[String]) -> Result<u64, StoreError> {
        let alive = serde_json::to_string(alive).expect("a list of names serialises");
        let done = sqlx::query(
            "UPDATE outbox SET lease_until = ?1, updated_at = ?1
             WHERE state = 'leased' AND lease_until > ?1
               AND (lease_owner IS NULL OR lease_owner NOT IN (SELECT value FROM json_each(?2)))",
        )
        .bind(now)
        .bind(&alive)
        .execute(&self.writer)
        .await?;
        // Team posts, and the edits of sent posts' counts, leased by an
        // owner not alive (NULL: leased before posts recorded an owner).
        let posts = sqlx::query(
            "UPDATE team_posts SET lease_until = ?1, updated_at = ?1
             WHERE lease_until > ?1
               AND (lease_owner IS NULL OR lease_owner NOT IN (SELECT value FROM json_each(?2)))",
        )
        .bind(now)
        .bind(alive)
        .execute(&self.writer)
        .await?;
        Ok(done.rows_affected() + posts.rows_affected())
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
        let mut tx = self.writer.begin_with("BEGIN IMMEDIATE").await?;
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
        if self.chained {
            let ids: Vec<i64> = sent.iter().map(|(id, _)| *id).collect();
            super::chain::chain_ids(&mut tx, "delivery", &ids).await?;
        }
        for (id, outcome) in outcomes {
            let query = match outcome {
                DeliveryOutcome::Sent { .. } => continue,
                DeliveryOutcome::RetryAt { at, reason } => sqlx::query(
                    "UPDATE outbox SET state = CASE WHEN EXISTS (SELECT 1 FROM rollout_members m
                                                     WHERE m.rollout_id = outbox.rollout_id
                                                       AND m.person_id = outbox.person_id
                                                       AND m.out_reason IS NOT NULL)
                                                THEN 'cancelled' ELSE 'due' END,
                     due_at = ?, last_error = ?, lease_until = NULL, updated_at = ?
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
                DeliveryOutcome::Deferred { at } => sqlx::query(
                    "UPDATE outbox SET state = CASE WHEN (SELECT state FROM rollouts WHERE id = outbox.rollout_id) = 'cancelled'
                                                  OR EXISTS (SELECT 1 FROM rollout_members m
                                                             WHERE m.rollout_id = outbox.rollout_id
                                                               AND m.person_id = outbox.person_id
                                                               AND m.out_reason IS NOT NULL)
                                                THEN 'cancelled' ELSE 'due' END,
                     due_at = ?, attempts = attempts - 1, lease_until = NULL, updated_at = ?
                     WHERE id = ? AND state = 'leased'",
                )
                .bind(at)
                .bind(now)
                .bind(id),
                DeliveryOutcome::Released => sqlx::query(
                    "UPDATE outbox SET state = CASE WHEN (SELECT state FROM rollouts WHERE id = outbox.rollout_id) = 'cancelled'
                                                  OR EXISTS (SELECT 1 FROM rollout_members m
                                                             WHERE m.rollout_id = outbox.rollout_id
                                                               AND m.person_id = outbox.person_id
                                                               AND m.out_reason IS NOT NULL)
                                                THEN 'cancelled' ELSE 'due' END,
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
        let rows: Vec<DeliveryCountsRow> = sqlx::query_as(
            "SELECT wave, channel,
                    SUM(state = 'due' AND attempts = 0) AS due, SUM(state = 'leased') AS leased,
                    SUM(state = 'due' AND attempts > 0) AS retrying, SUM(state = 'sent') AS sent,
                    SUM(state = 'dead') AS dead, SUM(state = 'cancelled') AS cancelled
             FROM outbox WHERE rollout_id = ? AND step_kind = 'initial'
             GROUP BY wave, channel ORDER BY wave, channel",
        )
        .bind(rollout_id)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows
            .into_iter()
            .map(|r| DeliveryCounts {
                wave: r.wave,
                channel: r.channel,
                due: count(r.due),
                leased: count(r.leased),
                retrying: count(r.retrying),
                sent: count(r.sent),
                dead: count(r.dead),
                cancelled: count(r.cancelled),
            })
            .collect())
    }

    async fn wave_counts(&self, rollout_id: &str) -> Result<Vec<WaveCounts>, StoreError> {
        let rows: Vec<WaveCountsRow> = sqlx::query_as(
            "SELECT wave, COUNT(*) AS members, SUM(next_step = 0 AND next_due_at IS NOT NULL) AS planned,
                    SUM(acknowledged_at IS NOT NULL) AS acknowledged,
                    SUM(out_reason = 'left') AS left_, SUM(out_reason = 'moved') AS moved,
                    SUM(acknowledged_at IS NULL AND out_reason IS NULL) AS waiting
             FROM rollout_members WHERE rollout_id = ? GROUP BY wave ORDER BY wave",
        )
        .bind(rollout_id)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows
            .into_iter()
            .map(|r| WaveCounts {
                wave: r.wave,
                members: count(r.members),
                planned: count(r.planned),
                acknowledged: count(r.acknowledged),
                left: count(r.left_),
                moved: count(r.moved),
                waiting: count(r.waiting),
            })
            .collect())
    }

    async fn rollout_totals(&self) -> Result<Vec<RolloutTotals>, StoreError> {
        // Totals kept as rows are written (migration 20261001000000), not
        // counted from every member and outbox row.
        Ok(sqlx::query_as(
            "SELECT r.id AS rollout_id, COALESCE(c.members, 0) AS members,
                    COALESCE(c.acknowledged, 0) AS acknowledged,
                    COALESCE(c.sent, 0) AS sent, COALESCE(c.dead, 0) AS dead
             FROM rollouts r LEFT JOIN rollout_counts c ON c.rollout_id = r.id
             ORDER BY r.id",
        )
        .fetch_all(&self.pool)
        .await?)
    }

    async fn outstanding(&self) -> Result<u64, StoreError> {
        let n: i64 =
            sqlx::query_scalar("SELECT COUNT(*) FROM outbox WHERE state IN ('due', 'leased')")
                .fetch_one(&self.pool)
                .await?;
        Ok(n.max(0) as u64)
    }

    async fn due_now(&self, now: i64) -> Result<u64, StoreError> {
        let n: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM outbox o JOIN rollouts r ON r.id = o.rollout_id
             WHERE r.state = 'active'
               AND (o.state = 'leased' OR (o.state = 'due' AND o.due_at <= ?))",
        )
        .bind(now)
        .fetch_one(&self.pool)
        .await?;
        Ok(n.max(0) as u64)
    }

    async fn queues(&self, now: i64) -> Result<Vec<ChannelQueue>, StoreError> {
        Ok(sqlx::query_as(
            "SELECT o.channel,
                    SUM(o.state = 'due' AND o.due_at <= ?1) AS due_now,
                    SUM(o.state = 'leased') AS leased,
                    SUM(o.state = 'due' AND o.due_at > ?1 AND o.attempts > 0) AS retrying,
                    MIN(CASE WHEN o.state = 'due' AND o.due_at <= ?1 THEN o.due_at END) AS oldest_due_at
             FROM outbox o JOIN rollouts r ON r.id = o.rollout_id
             WHERE o.state IN ('due', 'leased') AND r.state = 'active'
             GROUP BY o.channel ORDER BY o.channel",
        )
        .bind(now)
        .fetch_all(&self.pool)
        .await?)
    }

    async fn sent_times(&self, channel: &str, since: i64) -> Result<Vec<i64>, StoreError> {
        Ok(sqlx::query_scalar(
            "SELECT sent_at FROM outbox WHERE channel = ? AND state = 'sent' AND sent_at > ?
             ORDER BY sent_at",
        )
        .bind(channel)
        .bind(since)
        .fetch_all(&self.pool)
        .await?)
    }

    async fn all_identities(
        &self,
    ) -> Result<Vec<cascade_model::directory::ChannelIdentity>, StoreError> {
        Ok(sqlx::query_as(
            "SELECT person_id, channel, address FROM channel_identities
             WHERE unreachable_at IS NULL ORDER BY person_id, channel",
        )
        .fetch_all(&self.pool)
        .await?)
    }

    async fn bounce(
        &self,
        channel: &str,
        idempotency_key: &str,
        reason: &str,
        now: i64,
    ) -> Result<Option<ClaimedDelivery>, StoreError> {
        Ok(sqlx::query_as(
            "UPDATE outbox SET state = 'dead', last_error = ?, updated_at = ?
             WHERE idempotency_key = ? AND channel = ? AND state = 'sent'
             RETURNING id, idempotency_key, rollout_id, person_id, recipient_id, wave, step_kind,
                       step_number, channel, channel_rank, attempts",
        )
        .bind(reason)
        .bind(now)
        .bind(idempotency_key)
        .bind(channel)
        .fetch_optional(&self.writer)
        .await?)
    }

    async fn last_errors(&self, rollout_id: &str) -> Result<Vec<ChannelError>, StoreError> {
        Ok(sqlx::query_as(
            "SELECT channel, error, retrying FROM (
                 SELECT channel, last_error AS error,
                        ROW_NUMBER() OVER (PARTITION BY channel ORDER BY updated_at DESC, id DESC) AS n,
                        SUM(state = 'due' AND attempts > 0) OVER (PARTITION BY channel) AS retrying
                 FROM outbox
                 WHERE rollout_id = ? AND last_error IS NOT NULL AND state IN ('due', 'leased', 'dead'))
             WHERE n = 1 ORDER BY channel",
        )
        .bind(rollout_id)
        .fetch_all(&self.pool)
        .await?)
    }

    async fn retry_dead_letters(&self, rollout_id: &str, now: i64) -> Result<u64, StoreError> {
        let done = sqlx::query(
            "UPDATE outbox SET state = 'due', due_at = ?1, attempts = 0, lease_until = NULL, updated_at = ?1
             WHERE rollout_id = ?2 AND state = 'dead'
               AND EXISTS (SELECT 1 FROM rollouts r WHERE r.id = ?2 AND r.state <> 'cancelled')
               AND NOT EXISTS (SELECT 1 FROM rollout_members m
                               WHERE m.rollout_id = outbox.rollout_id AND m.person_id = outbox.person_id
                                 AND m.out_reason IS NOT NULL)
               AND recipient_id NOT IN (SELECT id FROM people WHERE NOT active)
               AND NOT EXISTS (
                   SELECT 1 FROM outbox o
                   WHERE o.rollout_id = outbox.rollout_id AND o.person_id = outbox.person_id
                     AND o.recipient_id = outbox.recipient_id AND o.step_kind = outbox.step_kind
                     AND o.step_number = outbox.step_number
                     AND (o.state IN ('due', 'leased', 'sent')
                          OR (o.state = 'dead' AND o.channel_rank < outbox.channel_rank)))",
        )
        .bind(now)
        .bind(rollout_id)
        .execute(&self.writer)
        .await?;
        if done.rows_affected() > 0 {
            self.woken();
        }
        Ok(done.rows_affected())
    }

    async fn dead_letters(
        &self,
        rollout_id: &str,
        limit: u32,
    ) -> Result<Vec<DeadLetter>, StoreError> {
        Ok(sqlx::query_as(
            "SELECT person_id, channel, step_kind, COALESCE(last_error, '') AS reason FROM outbox
             WHERE rollout_id = ? AND state = 'dead' ORDER BY updated_at DESC, id LIMIT ?",
        )
        .bind(rollout_id)
        .bind(limit)
        .fetch_all(&self.pool)
        .await?)
    }
}

impl SqliteStore {
    /// Claimed rows with their step kinds read. A row cascade did not write
    /// (edited by hand, or by a newer version) is a dead letter with the
    /// reason, not a failure of the whole batch that would stop every
    /// other send.
    async fn typed_claims(
        &self,
        claimed: Vec<ClaimedRow>,
        now: i64,
    ) -> Result<Vec<ClaimedDelivery>, StoreError> {
        let mut rows = Vec::with_capacity(claimed.len());
        for row in claimed {
            match StepKind::from_text(&row.step_kind) {
                Some(step_kind) => rows.push(ClaimedDelivery {
                    id: row.id,
                    idempotency_key: row.idempotency_key,
                    rollout_id: row.rollout_id,
                    person_id: row.person_id,
                    recipient_id: row.recipient_id,
                    wave: row.wave,
                    step_kind,
                    step_number: row.step_number,
                    channel: row.channel,
                    channel_rank: row.channel_rank,
                    attempts: row.attempts,
                }),
                None => {
                    sqlx::query(
                        "UPDATE outbox SET state = 'dead', lease_until = NULL, last_error = ?, updated_at = ?
                         WHERE id = ?",
                    )
                    .bind(format!(
                        "unknown step kind {:?}: this row was not written by this version of cascade",
                        row.step_kind
                    ))
                    .bind(now)
                    .bind(row.id)
                    .execute(&self.writer)
                    .await?;
                }
            }
        }
        Ok(rows)
    }
}

#[derive(sqlx::FromRow)]
struct DeliveryCountsRow {
    wave: u32,
    channel: String,
    due: Option<i64>,
    leased: Option<i64>,
    retrying: Option<i64>,
    sent: Option<i64>,
    dead: Option<i64>,
    cancelled: Option<i64>,
}

#[derive(sqlx::FromRow)]
struct WaveCountsRow {
    wave: u32,
    members: Option<i64>,
    planned: Option<i64>,
    acknowledged: Option<i64>,
    left_: Option<i64>,
    moved: Option<i64>,
    waiting: Option<i64>,
}

fn insert_delivery(
    d: &NewDelivery,
    now: i64,
) -> sqlx::query::Query<'_, Sqlite, sqlx::sqlite::SqliteArguments<'_>> {
    // Nothing is queued about a member an import has taken out (left or
    // moved) since the caller read them.
    sqlx::query(
        "INSERT OR IGNORE INTO outbox (idempotency_key, rollout_id, person_id, recipient_id, wave, step_kind,
             step_number, channel, channel_rank, state, due_at, updated_at)
         SELECT ?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, 'due', ?10, ?11
         WHERE NOT EXISTS (SELECT 1 FROM rollout_members m
                           WHERE m.rollout_id = ?2 AND m.person_id = ?3 AND m.out_reason IS NOT NULL)",
    )
    .bind(&d.idempotency_key)
    .bind(&d.rollout_id)
    .bind(&d.person_id)
    .bind(&d.recipient_id)
    .bind(d.wave)
    .bind(d.step_kind)
    .bind(d.step_number)
    .bind(&d.channel)
    .bind(d.channel_rank)
    .bind(d.due_at)
    .bind(now)
}

/// A claimed row as the database returns it, its step kind still text.
#[derive(sqlx::FromRow)]
struct ClaimedRow {
    id: i64,
    idempotency_key: String,
    rollout_id: String,
    person_id: String,
    recipient_id: String,
    wave: u32,
    step_kind: String,
    step_number: u32,
    channel: String,
    channel_rank: u32,
    attempts: u32,
}

/// A rollout, its members and its team posts, written in the caller's
/// transaction: `create_rollout`'s, or a bulletin occurrence's. Returns
/// how many members were written.
pub(super) async fn write_rollout(
    tx: &mut sqlx::Transaction<'_, Sqlite>,
    rollout: &NewRollout<'_>,
) -> Result<u64, StoreError> {
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
        .execute(&mut **tx)
        .await?;
    let mut written = 0;
    for chunk in rollout.members.chunks(MEMBERS_PER_INSERT) {
        // Each with the team and agency they are in as the rollout
        // reaches them, for reports after they move.
        let mut insert: QueryBuilder<Sqlite> = QueryBuilder::new(
            "INSERT INTO rollout_members (rollout_id, person_id, wave, next_due_at, team_id, agency_id) ",
        );
        insert.push_values(chunk, |mut row, m| {
            row.push_bind(rollout.id)
                .push_bind(&m.person_id)
                .push_bind(m.wave)
                .push_bind(m.first_due_at)
                .push("(SELECT team_id FROM people WHERE id = ")
                .push_bind_unseparated(&m.person_id)
                .push_unseparated(")")
                .push("(SELECT agency_id FROM people WHERE id = ")
                .push_bind_unseparated(&m.person_id)
                .push_unseparated(")");
        });
        written += insert.build().execute(&mut **tx).await?.rows_affected();
    }
    if let Some(audience) = rollout.audience.filter(|a| !a.timing.is_empty()) {
        written += insert_timed_members(&mut *tx, rollout.id, audience).await?;
    } else if let Some(audience) = rollout.audience {
        let mut insert: QueryBuilder<Sqlite> = QueryBuilder::new(
            "INSERT INTO rollout_members (rollout_id, person_id, wave, next_due_at, team_id, agency_id) SELECT ",
        );
        insert.push_bind(rollout.id);
        insert.push(", a.person_id, a.wave, ");
        push_first_due(&mut insert, audience);
        insert.push(", a.team_id, a.agency_id FROM ");
        let reached = reached_before(&mut *tx, audience, rollout.id).await?;
        push_audience(&mut insert, audience, reached);
        insert.push(" a WHERE a.wave IS NOT NULL AND NOT a.reached");
        written += insert.build().execute(&mut **tx).await?.rows_affected();
    }
    // Triggers keep every other total; members are counted here, once,
    // rather than by a trigger per row (migration 20261001000000).
    sqlx::query("UPDATE rollout_counts SET members = members + ? WHERE rollout_id = ?")
        .bind(written as i64)
        .bind(rollout.id)
        .execute(&mut **tx)
        .await?;
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
            .execute(&mut **tx)
            .await?;
    }
    Ok(written)
}
