//! PostgreSQL implementation of [`Outbox`]. Several `cascade serve`
//! processes may share the database, so a claim takes its rows with
//! `SELECT ... FOR UPDATE SKIP LOCKED` and leases them in the same
//! statement: two claimers never get the same row while its lease holds,
//! and neither waits on the other. Recording an outcome changes only rows
//! still leased. Lists go as arrays (`unnest`, `= ANY`), so a batch is one
//! statement whatever its size.

use super::PgStore;
use super::audience_query::{push_audience, push_first_due, push_timed_audience, reached_before};
use crate::StoreError;
use crate::outbox::*;
use cascade_model::rollout::{AudienceQuery, StepKind};
use sqlx::{PgConnection, Postgres, QueryBuilder};
use std::collections::HashMap;

/// A value of an unsigned column read back (never negative when cascade
/// wrote it).
fn unsigned(n: i64) -> u32 {
    u32::try_from(n.max(0)).unwrap_or(u32::MAX)
}

/// Takes the transaction-scoped advisory lock of `key` (namespaced text):
/// writers of the same key go one at a time, as SQLite's write lock makes
/// every writer.
async fn lock_key(conn: &mut PgConnection, key: &str) -> Result<(), StoreError> {
    sqlx::query("SELECT pg_advisory_xact_lock(hashtextextended($1, 0))")
        .bind(key)
        .execute(&mut *conn)
        .await?;
    Ok(())
}

/// The advisory lock the schedulers of several processes take in turn to
/// queue deliveries and move members on: the same members, due in each
/// process, are queued by the first and skipped by the next (which then
/// sees them), rather than two transactions inserting the same keys and
/// updating the same members in different orders and deadlocking.
const MATERIALISE: &str = "cascade materialise";

/// Writes the audience's members with their own first sends and shifts:
/// the query's timing rules go as arrays joined by wave and timing
/// columns, and each member takes their rule's, or their wave's when none
/// matches (most people: no zone, pattern or absence).
async fn insert_timed_members(
    tx: &mut PgConnection,
    rollout_id: &str,
    audience: &AudienceQuery,
) -> Result<u64, StoreError> {
    // A later rule for the same key replaces an earlier one, as SQLite's
    // INSERT OR REPLACE into its keyed table does.
    let mut rules: HashMap<(i64, &str, &str, &str), (i64, i64)> = HashMap::new();
    for t in &audience.timing {
        rules.insert(
            (
                i64::try_from(t.wave).unwrap_or(i64::MAX),
                t.time_zone.as_str(),
                t.works.as_str(),
                t.absent_until.as_str(),
            ),
            (i64::from(t.shift_days), t.first_due_at),
        );
    }
    let mut waves = Vec::with_capacity(rules.len());
    let mut zones = Vec::with_capacity(rules.len());
    let mut works = Vec::with_capacity(rules.len());
    let mut absences = Vec::with_capacity(rules.len());
    let mut shifts = Vec::with_capacity(rules.len());
    let mut dues = Vec::with_capacity(rules.len());
    for ((wave, zone, work, absent), (shift, due)) in rules {
        waves.push(wave);
        zones.push(zone.to_owned());
        works.push(work.to_owned());
        absences.push(absent.to_owned());
        shifts.push(shift);
        dues.push(due);
    }
    let mut insert: QueryBuilder<Postgres> = QueryBuilder::new(
        "INSERT INTO rollout_members (rollout_id, person_id, wave, next_due_at, team_id, agency_id, shift_days) SELECT ",
    );
    insert.push_bind(rollout_id.to_owned());
    insert.push(", a.person_id, a.wave, coalesce(t.first_due_at, ");
    push_first_due(&mut insert, audience);
    insert.push("), a.team_id, a.agency_id, coalesce(t.shift_days, 0) FROM ");
    let reached = reached_before(&mut *tx, audience, rollout_id).await?;
    push_timed_audience(&mut insert, audience, reached);
    insert.push(" a LEFT JOIN unnest(");
    insert.push_bind(waves);
    insert.push("::bigint[], ");
    insert.push_bind(zones);
    insert.push("::text[], ");
    insert.push_bind(works);
    insert.push("::text[], ");
    insert.push_bind(absences);
    insert.push("::text[], ");
    insert.push_bind(shifts);
    insert.push("::bigint[], ");
    insert.push_bind(dues);
    insert.push(
        "::bigint[]) AS t(wave, time_zone, works, absent_until, shift_days, first_due_at)
            ON t.wave = a.wave
            AND t.time_zone = coalesce(a.time_zone, '') AND t.works = coalesce(a.works, '')
            AND t.absent_until = coalesce(a.absent_until, '')
          WHERE a.wave IS NOT NULL AND NOT a.reached",
    );
    Ok(insert.build().execute(&mut *tx).await?.rows_affected())
}

/// A rollout, its members and its team posts, written in the caller's
/// transaction: `create_rollout`'s, or a bulletin occurrence's. Returns
/// how many members were written.
pub(crate) async fn write_rollout(
    tx: &mut PgConnection,
    rollout: &NewRollout<'_>,
) -> Result<u64, StoreError> {
    if let Some(audience) = rollout.audience {
        // Two processes starting rollouts of one item at once would each
        // miss the other's members when leaving out those reached before:
        // they go one at a time.
        lock_key(
            &mut *tx,
            &format!("cascade rollout of {}", audience.item_id),
        )
        .await?;
    }
    sqlx::query(
        "INSERT INTO rollouts (id, item_id, item_version, definition, state, created_at, updated_at)
         VALUES ($1, $2, $3, $4, 'active', $5, $5)",
    )
    .bind(rollout.id)
    .bind(rollout.item_id)
    .bind(rollout.item_version)
    .bind(rollout.definition)
    .bind(rollout.now)
    .execute(&mut *tx)
    .await?;
    let mut written = 0;
    if !rollout.members.is_empty() {
        // Each with the team and agency they are in as the rollout
        // reaches them, for reports after they move.
        let people: Vec<&str> = rollout
            .members
            .iter()
            .map(|m| m.person_id.as_str())
            .collect();
        let waves: Vec<i64> = rollout.members.iter().map(|m| i64::from(m.wave)).collect();
        let dues: Vec<i64> = rollout.members.iter().map(|m| m.first_due_at).collect();
        written += sqlx::query(
            "INSERT INTO rollout_members (rollout_id, person_id, wave, next_due_at, team_id, agency_id)
             SELECT $1, m.person_id, m.wave, m.due, p.team_id, p.agency_id
             FROM unnest($2::text[], $3::bigint[], $4::bigint[]) WITH ORDINALITY AS m(person_id, wave, due, n)
             LEFT JOIN people p ON p.id = m.person_id
             ORDER BY m.n",
        )
        .bind(rollout.id)
        .bind(people)
        .bind(waves)
        .bind(dues)
        .execute(&mut *tx)
        .await?
        .rows_affected();
    }
    if let Some(audience) = rollout.audience.filter(|a| !a.timing.is_empty()) {
        written += insert_timed_members(&mut *tx, rollout.id, audience).await?;
    } else if let Some(audience) = rollout.audience {
        let mut insert: QueryBuilder<Postgres> = QueryBuilder::new(
            "INSERT INTO rollout_members (rollout_id, person_id, wave, next_due_at, team_id, agency_id) SELECT ",
        );
        insert.push_bind(rollout.id.to_owned());
        insert.push(", a.person_id, a.wave, ");
        push_first_due(&mut insert, audience);
        insert.push(", a.team_id, a.agency_id FROM ");
        let reached = reached_before(&mut *tx, audience, rollout.id).await?;
        push_audience(&mut insert, audience, reached);
        insert.push(" a WHERE a.wave IS NOT NULL AND NOT a.reached");
        written += insert.build().execute(&mut *tx).await?.rows_affected();
    }
    // Triggers keep every other total; members are counted here, once,
    // rather than by a trigger per row.
    sqlx::query("UPDATE rollout_counts SET members = members + $1 WHERE rollout_id = $2")
        .bind(i64::try_from(written).unwrap_or(i64::MAX))
        .bind(rollout.id)
        .execute(&mut *tx)
        .await?;
    if !rollout.team_posts.is_empty() {
        let mut insert: QueryBuilder<Postgres> = QueryBuilder::new(
            "INSERT INTO team_posts (rollout_id, team_id, channel, address, state, due_at, updated_at) ",
        );
        insert.push_values(rollout.team_posts, |mut row, post| {
            row.push_bind(rollout.id.to_owned())
                .push_bind(post.team_id.clone())
                .push_bind(post.channel.clone())
                .push_bind(post.address.clone())
                .push("'planned'")
                .push_bind(post.due_at)
                .push_bind(rollout.now);
        });
        insert.build().execute(&mut *tx).await?;
    }
    Ok(written)
}

/// Queues `deliveries` (a key already queued is skipped, and nothing about
/// a member an import has taken out since the caller read them), in the
/// order given, in one statement.
async fn insert_deliveries(
    conn: &mut PgConnection,
    deliveries: &[NewDelivery],
    now: i64,
) -> Result<(), StoreError> {
    if deliveries.is_empty() {
        return Ok(());
    }
    let column = |f: fn(&NewDelivery) -> String| deliveries.iter().map(f).collect::<Vec<_>>();
    let number = |f: fn(&NewDelivery) -> i64| deliveries.iter().map(f).collect::<Vec<_>>();
    sqlx::query(
        "INSERT INTO outbox (idempotency_key, rollout_id, person_id, recipient_id, wave, step_kind,
             step_number, channel, channel_rank, state, due_at, updated_at)
         SELECT d.key, d.rollout_id, d.person_id, d.recipient_id, d.wave, d.step_kind,
                d.step_number, d.channel, d.channel_rank, 'due', d.due_at, $11
         FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::bigint[], $6::text[],
                     $7::bigint[], $8::text[], $9::bigint[], $10::bigint[]) WITH ORDINALITY
              AS d(key, rollout_id, person_id, recipient_id, wave, step_kind, step_number, channel,
                   channel_rank, due_at, n)
         WHERE NOT EXISTS (SELECT 1 FROM rollout_members m
                           WHERE m.rollout_id = d.rollout_id AND m.person_id = d.person_id
                             AND m.out_reason IS NOT NULL)
         ORDER BY d.n
         ON CONFLICT (idempotency_key) DO NOTHING",
    )
    .bind(column(|d| d.idempotency_key.clone()))
    .bind(column(|d| d.rollout_id.clone()))
    .bind(column(|d| d.person_id.clone()))
    .bind(column(|d| d.recipient_id.clone()))
    .bind(number(|d| i64::from(d.wave)))
    .bind(column(|d| d.step_kind.as_str().to_owned()))
    .bind(number(|d| i64::from(d.step_number)))
    .bind(column(|d| d.channel.clone()))
    .bind(number(|d| i64::from(d.channel_rank)))
    .bind(number(|d| d.due_at))
    .bind(now)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

impl Outbox for PgStore {
    async fn create_rollout(&self, rollout: NewRollout<'_>) -> Result<u64, StoreError> {
        let mut tx = self.pool.begin().await?;
        let written = write_rollout(&mut tx, &rollout).await?;
        tx.commit().await?;
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
            "SELECT {ROLLOUT_COLUMNS} FROM rollouts WHERE id = $1"
        ))
        .bind(id)
        .fetch_optional(&self.pool)
        .await?;
        Ok(row.map(StoredRollout::from))
    }

    async fn materialise(
        &self,
        deliveries: &[NewDelivery],
        advances: &[MemberAdvance],
        now: i64,
    ) -> Result<(), StoreError> {
        let mut tx = self.pool.begin().await?;
        lock_key(&mut tx, MATERIALISE).await?;
        insert_deliveries(&mut tx, deliveries, now).await?;
        if !advances.is_empty() {
            // A later advance of the same member replaces an earlier one,
            // as one UPDATE after another would.
            let mut last: HashMap<(&str, &str), &MemberAdvance> = HashMap::new();
            for a in advances {
                last.insert((a.rollout_id.as_str(), a.person_id.as_str()), a);
            }
            let advances: Vec<&MemberAdvance> = last.into_values().collect();
            // A member an import took out meanwhile stays out.
            sqlx::query(
                "UPDATE rollout_members m SET next_step = a.next_step, next_due_at = a.next_due_at,
                     shift_days = coalesce(a.shift_days, m.shift_days)
                 FROM unnest($1::text[], $2::text[], $3::bigint[], $4::bigint[], $5::bigint[])
                      AS a(rollout_id, person_id, next_step, next_due_at, shift_days)
                 WHERE m.rollout_id = a.rollout_id AND m.person_id = a.person_id
                   AND m.out_reason IS NULL",
            )
            .bind(
                advances
                    .iter()
                    .map(|a| a.rollout_id.clone())
                    .collect::<Vec<_>>(),
            )
            .bind(
                advances
                    .iter()
                    .map(|a| a.person_id.clone())
                    .collect::<Vec<_>>(),
            )
            .bind(
                advances
                    .iter()
                    .map(|a| i64::from(a.next_step))
                    .collect::<Vec<_>>(),
            )
            .bind(advances.iter().map(|a| a.next_due_at).collect::<Vec<_>>())
            .bind(
                advances
                    .iter()
                    .map(|a| a.shift_days.map(i64::from))
                    .collect::<Vec<_>>(),
            )
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    async fn set_rollout_state(
        &self,
        id: &str,
        state: RolloutState,
        now: i64,
    ) -> Result<bool, StoreError> {
        let mut tx = self.pool.begin().await?;
        let changed = sqlx::query(
            "UPDATE rollouts SET state = $1, updated_at = $2 WHERE id = $3 AND state <> 'cancelled'",
        )
        .bind(state.as_str())
        .bind(now)
        .bind(id)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        let exists: Option<String> = sqlx::query_scalar("SELECT state FROM rollouts WHERE id = $1")
            .bind(id)
            .fetch_optional(&mut *tx)
            .await?;
        if changed > 0 && state == RolloutState::Cancelled {
            sqlx::query(
                "UPDATE outbox SET state = 'cancelled', updated_at = $1 WHERE rollout_id = $2 AND state = 'due'",
            )
            .bind(now)
            .bind(id)
            .execute(&mut *tx)
            .await?;
            sqlx::query(
                "UPDATE rollout_members SET next_due_at = NULL, refresher_due_at = NULL
                 WHERE rollout_id = $1",
            )
            .bind(id)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(exists.is_some())
    }

    async fn due_members(&self, now: i64, limit: u32) -> Result<Vec<DueMember>, StoreError> {
        #[derive(sqlx::FromRow)]
        struct Row {
            rollout_id: String,
            person_id: String,
            wave: i64,
            next_step: i64,
            acknowledged: bool,
            shift_days: i64,
            joined_at: Option<i64>,
        }
        let rows: Vec<Row> = sqlx::query_as(
            "SELECT m.rollout_id, m.person_id, m.wave, m.next_step,
                    m.acknowledged_at IS NOT NULL AS acknowledged, m.shift_days, m.joined_at
             FROM rollout_members m JOIN rollouts r ON r.id = m.rollout_id
             WHERE m.next_due_at IS NOT NULL AND m.next_due_at <= $1 AND r.state = 'active'
             ORDER BY m.next_due_at LIMIT $2",
        )
        .bind(now)
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await?;
        Ok(rows
            .into_iter()
            .map(|r| DueMember {
                rollout_id: r.rollout_id,
                person_id: r.person_id,
                wave: unsigned(r.wave),
                next_step: unsigned(r.next_step),
                acknowledged: r.acknowledged,
                shift_days: unsigned(r.shift_days),
                joined_at: r.joined_at,
            })
            .collect())
    }

    async fn due_refreshers(&self, now: i64, limit: u32) -> Result<Vec<DueRefresher>, StoreError> {
        let rows: Vec<(String, String, i64, i64, i64)> = sqlx::query_as(
            "SELECT m.rollout_id, m.person_id, m.wave, m.refresher_next, m.acknowledged_at
             FROM rollout_members m JOIN rollouts r ON r.id = m.rollout_id
             WHERE m.refresher_due_at IS NOT NULL AND m.refresher_due_at <= $1
               AND m.acknowledged_at IS NOT NULL AND m.out_reason IS NULL AND r.state = 'active'
             ORDER BY m.refresher_due_at LIMIT $2",
        )
        .bind(now)
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await?;
        Ok(rows
            .into_iter()
            .map(
                |(rollout_id, person_id, wave, refresher_next, acknowledged_at)| DueRefresher {
                    rollout_id,
                    person_id,
                    wave: unsigned(wave),
                    refresher_next: unsigned(refresher_next),
                    acknowledged_at,
                },
            )
            .collect())
    }

    async fn materialise_refreshers(
        &self,
        deliveries: &[NewDelivery],
        advances: &[RefresherAdvance],
        now: i64,
    ) -> Result<(), StoreError> {
        let mut tx = self.pool.begin().await?;
        lock_key(&mut tx, MATERIALISE).await?;
        insert_deliveries(&mut tx, deliveries, now).await?;
        if !advances.is_empty() {
            let mut last: HashMap<(&str, &str), &RefresherAdvance> = HashMap::new();
            for a in advances {
                last.insert((a.rollout_id.as_str(), a.person_id.as_str()), a);
            }
            let advances: Vec<&RefresherAdvance> = last.into_values().collect();
            sqlx::query(
                "UPDATE rollout_members m SET refresher_next = a.refresher_next,
                     refresher_due_at = a.refresher_due_at
                 FROM unnest($1::text[], $2::text[], $3::bigint[], $4::bigint[])
                      AS a(rollout_id, person_id, refresher_next, refresher_due_at)
                 WHERE m.rollout_id = a.rollout_id AND m.person_id = a.person_id
                   AND m.out_reason IS NULL",
            )
            .bind(
                advances
                    .iter()
                    .map(|a| a.rollout_id.clone())
                    .collect::<Vec<_>>(),
            )
            .bind(
                advances
                    .iter()
                    .map(|a| a.person_id.clone())
                    .collect::<Vec<_>>(),
            )
            .bind(
                advances
                    .iter()
                    .map(|a| i64::from(a.refresher_next))
                    .collect::<Vec<_>>(),
            )
            .bind(
                advances
                    .iter()
                    .map(|a| a.refresher_due_at)
                    .collect::<Vec<_>>(),
            )
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
        // The rows are locked as they are picked, skipping rows another
        // claim holds; one picked after another claim leased and committed
        // it is checked again and dropped (its lease holds).
        let claimed: Vec<ClaimedRow> = sqlx::query_as(
            "WITH picked AS (
                 SELECT o.id FROM outbox o JOIN rollouts r ON r.id = o.rollout_id
                 WHERE o.state IN ('due', 'leased') AND o.due_at <= $1
                   AND (o.state = 'due' OR o.lease_until <= $1)
                   AND r.state = 'active'
                   AND o.channel <> ALL($4)
                 ORDER BY o.due_at LIMIT $2
                 FOR UPDATE OF o SKIP LOCKED)
             UPDATE outbox SET state = 'leased', lease_until = $1 + $3, lease_owner = NULL,
                               attempts = outbox.attempts + 1, updated_at = $1
             FROM picked WHERE outbox.id = picked.id
             RETURNING outbox.id, outbox.idempotency_key, outbox.rollout_id, outbox.person_id,
                       outbox.recipient_id, outbox.wave, outbox.step_kind, outbox.step_number,
                       outbox.channel, outbox.channel_rank, outbox.attempts, outbox.due_at",
        )
        .bind(now)
        .bind(i64::from(limit))
        .bind(lease_ms)
        .bind(skip)
        .fetch_all(&self.pool)
        .await?;
        self.typed_claims(claimed, now).await
    }

    async fn claim_by_channel(
        &self,
        claim: ChannelClaim<'_>,
    ) -> Result<Vec<ClaimedDelivery>, StoreError> {
        // One statement: each channel's share is a CTE over the claimable
        // rows of that channel alone (the `outbox_claimable_by_channel`
        // index, in due order), locking them as it picks and skipping rows
        // another claim holds; the channels not named are one more.
        let mut parts: Vec<(Option<&str>, u32)> = claim
            .shares
            .iter()
            .filter(|(_, n)| *n > 0)
            .map(|(c, n)| (Some(c.as_str()), *n))
            .collect();
        if claim.others > 0 {
            parts.push((None, claim.others));
        }
        if parts.is_empty() {
            return Ok(Vec::new());
        }
        let named: Vec<String> = claim.shares.iter().map(|(c, _)| c.clone()).collect();
        let mut query: QueryBuilder<Postgres> = QueryBuilder::new("WITH ");
        for (i, (channel, limit)) in parts.iter().enumerate() {
            if i > 0 {
                query.push(", ");
            }
            query
                .push(format_args!("c{i} AS (SELECT o.id FROM outbox o JOIN rollouts r ON r.id = o.rollout_id WHERE o.state IN ('due', 'leased') AND o.due_at <= "))
                .push_bind(claim.now)
                .push(" AND (o.state = 'due' OR o.lease_until <= ")
                .push_bind(claim.now)
                .push(") AND r.state = 'active' AND ");
            match channel {
                Some(channel) => query.push("o.channel = ").push_bind(channel.to_string()),
                None => query
                    .push("o.channel <> ALL(")
                    .push_bind(named.clone())
                    .push(")"),
            };
            query
                .push(" ORDER BY o.due_at LIMIT ")
                .push_bind(i64::from(*limit))
                .push(" FOR UPDATE OF o SKIP LOCKED)");
        }
        query.push(", picked AS (");
        for i in 0..parts.len() {
            if i > 0 {
                query.push(" UNION ALL ");
            }
            query.push(format_args!("SELECT id FROM c{i}"));
        }
        query
            .push(") UPDATE outbox SET state = 'leased', lease_until = ")
            .push_bind(claim.now.saturating_add(claim.lease_ms))
            .push(", lease_owner = ")
            .push_bind(claim.owner.to_owned())
            .push(", attempts = outbox.attempts + 1, updated_at = ")
            .push_bind(claim.now)
            .push(
                " FROM picked WHERE outbox.id = picked.id
                 RETURNING outbox.id, outbox.idempotency_key, outbox.rollout_id, outbox.person_id,
                           outbox.recipient_id, outbox.wave, outbox.step_kind, outbox.step_number,
                           outbox.channel, outbox.channel_rank, outbox.attempts, outbox.due_at",
            );
        let claimed: Vec<ClaimedRow> = query.build_query_as().fetch_all(&self.pool).await?;
        self.typed_claims(claimed, claim.now).await
    }

    async fn take_back_leases(&self, now: i64, alive: &[String]) -> Result<u64, StoreError> {
        let done = sqlx::query(
            "UPDATE outbox SET lease_until = $1, updated_at = $1
             WHERE state = 'leased' AND lease_until > $1
               AND (lease_owner IS NULL OR lease_owner <> ALL($2))",
        )
        .bind(now)
        .bind(alive)
        .execute(&self.pool)
        .await?;
        // Team posts, and the edits of sent posts' counts, leased by an
        // owner not alive (NULL: leased before posts recorded an owner).
        let posts = sqlx::query(
            "UPDATE team_posts SET lease_until = $1, updated_at = $1
             WHERE lease_until > $1 AND (lease_owner IS NULL OR lease_owner <> ALL($2))",
        )
        .bind(now)
        .bind(alive)
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() + posts.rows_affected())
    }

    async fn may_send(&self, rollout_id: &str) -> Result<bool, StoreError> {
        let state: Option<String> = sqlx::query_scalar("SELECT state FROM rollouts WHERE id = $1")
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
        let mut sent: Vec<(i64, Option<String>)> = outcomes
            .iter()
            .filter_map(|(id, outcome)| match outcome {
                DeliveryOutcome::Sent { provider_id } => Some((*id, provider_id.clone())),
                _ => None,
            })
            .collect();
        // In id order, the order the rows are locked in, so two recordings
        // of the same rows (a lease that ran out) wait rather than deadlock.
        sent.sort_unstable_by_key(|(id, _)| *id);
        let chain = self.chained && !sent.is_empty();
        // Nothing here waits for another serve's recording: the totals and
        // report stamps the outbox's triggers move are added as rows of
        // their own (migration 20261217000001_outbox_count_deltas.sql) and
        // the sends are listed for the evidence chain, not linked in this
        // transaction. Only a row whose lease ran out and that another
        // serve claimed again can be wanted by two recordings, and those
        // are locked in id order.
        let mut tx = self.pool.begin().await?;
        if sent.len() < outcomes.len() {
            // Rows updated one statement at a time: all of them locked first,
            // in id order, as the sent rows' one statement locks its own.
            let ids: Vec<i64> = outcomes.iter().map(|(id, _)| *id).collect();
            sqlx::query("SELECT 1 FROM outbox WHERE id = ANY($1) ORDER BY id FOR UPDATE")
                .bind(&ids)
                .execute(&mut *tx)
                .await?;
        }
        if !sent.is_empty() {
            // Only rows still leased: a row whose lease ran out and was
            // recorded by another claimer is not recorded (or linked)
            // twice. The rows sent are listed for the evidence chain in
            // the same statement, and linked after the commit (see
            // migration 20261217000000_chain_pending.sql): the chain's
            // lock is not held while the serve records.
            let update = "UPDATE outbox AS t SET state = 'sent', provider_id = v.provider_id,
                     sent_at = $3, lease_until = NULL, last_error = NULL, updated_at = $3
                 FROM unnest($1::bigint[], $2::text[]) AS v(id, provider_id)
                 WHERE t.id = v.id AND t.state = 'leased'";
            let sql = if chain {
                format!(
                    "WITH sent AS ({update} RETURNING t.id)
                     INSERT INTO chain_pending (outbox_id) SELECT id FROM sent ORDER BY id"
                )
            } else {
                update.to_owned()
            };
            sqlx::query(&sql)
                .bind(sent.iter().map(|(id, _)| *id).collect::<Vec<_>>())
                .bind(sent.iter().map(|(_, p)| p.clone()).collect::<Vec<_>>())
                .bind(now)
                .execute(&mut *tx)
                .await?;
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
                     due_at = $1, last_error = $2, lease_until = NULL, updated_at = $3
                     WHERE id = $4 AND state = 'leased'",
                )
                .bind(at)
                .bind(reason)
                .bind(now)
                .bind(id),
                DeliveryOutcome::Dead { reason } => sqlx::query(
                    "UPDATE outbox SET state = 'dead', last_error = $1, lease_until = NULL, updated_at = $2
                     WHERE id = $3 AND state = 'leased'",
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
                     due_at = $1, attempts = attempts - 1, lease_until = NULL, updated_at = $2
                     WHERE id = $3 AND state = 'leased'",
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
                     attempts = attempts - 1, lease_until = NULL, updated_at = $1
                     WHERE id = $2 AND state = 'leased'",
                )
                .bind(now)
                .bind(id),
            };
            query.execute(&mut *tx).await?;
        }
        insert_deliveries(&mut tx, fallbacks, now).await?;
        tx.commit().await?;
        if chain {
            // Unless another transaction holds the chain's lock (then the
            // next holder of the lock, or a heartbeat, links these). The
            // sends are recorded whatever happens here: what is not linked
            // now stays listed for the next (see `Outbox::settle`).
            if let Err(e) = super::chain::link_listed_now(&self.pool, false).await {
                tracing::warn!("could not link sent deliveries into the evidence chain yet: {e}");
            }
        }
        Ok(())
    }

    async fn settle(&self) -> Result<u64, StoreError> {
        // Without waiting for the chain's lock: the heartbeat calls this,
        // and must not wait behind a long erasure or retention run while
        // the serve's lease runs out. What is listed waits for the next
        // holder of the chain's lock or the next heartbeat. An idle serve
        // calls this every 5 s: one look first, and a transaction only
        // for what there is to do.
        let (listed, unfolded): (bool, bool) = sqlx::query_as(
            "SELECT EXISTS (SELECT 1 FROM chain_pending),
                    EXISTS (SELECT 1 FROM outbox_count_deltas)",
        )
        .fetch_one(&self.pool)
        .await?;
        let linked = if self.chained && listed {
            super::chain::link_listed_now(&self.pool, false).await?
        } else {
            0
        };
        if unfolded {
            fold_counts(&self.pool).await?;
        }
        Ok(linked)
    }

    async fn bounce(
        &self,
        channel: &str,
        idempotency_key: &str,
        reason: &str,
        now: i64,
    ) -> Result<Option<ClaimedDelivery>, StoreError> {
        let row: Option<ClaimedRow> = sqlx::query_as(
            "UPDATE outbox SET state = 'dead', last_error = $1, updated_at = $2
             WHERE idempotency_key = $3 AND channel = $4 AND state = 'sent'
             RETURNING id, idempotency_key, rollout_id, person_id, recipient_id, wave, step_kind,
                       step_number, channel, channel_rank, attempts, due_at",
        )
        .bind(reason)
        .bind(now)
        .bind(idempotency_key)
        .bind(channel)
        .fetch_optional(&self.pool)
        .await?;
        row.map(|r| {
            let step_kind = StepKind::from_text(&r.step_kind).ok_or_else(|| {
                super::chain::decode(format!("unknown step kind {:?}", r.step_kind))
            })?;
            Ok(r.into_delivery(step_kind))
        })
        .transpose()
    }

    async fn delivery_counts(&self, rollout_id: &str) -> Result<Vec<DeliveryCounts>, StoreError> {
        #[derive(sqlx::FromRow)]
        struct Row {
            wave: i64,
            channel: String,
            due: i64,
            leased: i64,
            retrying: i64,
            sent: i64,
            dead: i64,
            cancelled: i64,
        }
        let rows: Vec<Row> = sqlx::query_as(
            "SELECT wave, channel,
                    COUNT(*) FILTER (WHERE state = 'due' AND attempts = 0) AS due,
                    COUNT(*) FILTER (WHERE state = 'leased') AS leased,
                    COUNT(*) FILTER (WHERE state = 'due' AND attempts > 0) AS retrying,
                    COUNT(*) FILTER (WHERE state = 'sent') AS sent,
                    COUNT(*) FILTER (WHERE state = 'dead') AS dead,
                    COUNT(*) FILTER (WHERE state = 'cancelled') AS cancelled
             FROM outbox WHERE rollout_id = $1 AND step_kind = 'initial'
             GROUP BY wave, channel ORDER BY wave, channel",
        )
        .bind(rollout_id)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows
            .into_iter()
            .map(|r| DeliveryCounts {
                wave: unsigned(r.wave),
                channel: r.channel,
                due: count(Some(r.due)),
                leased: count(Some(r.leased)),
                retrying: count(Some(r.retrying)),
                sent: count(Some(r.sent)),
                dead: count(Some(r.dead)),
                cancelled: count(Some(r.cancelled)),
            })
            .collect())
    }

    async fn wave_counts(&self, rollout_id: &str) -> Result<Vec<WaveCounts>, StoreError> {
        let rows: Vec<(i64, i64, i64, i64, i64, i64, i64)> = sqlx::query_as(
            "SELECT wave, COUNT(*),
                    COUNT(*) FILTER (WHERE next_step = 0 AND next_due_at IS NOT NULL),
                    COUNT(*) FILTER (WHERE acknowledged_at IS NOT NULL),
                    COUNT(*) FILTER (WHERE out_reason = 'left'),
                    COUNT(*) FILTER (WHERE out_reason = 'moved'),
                    COUNT(*) FILTER (WHERE acknowledged_at IS NULL AND out_reason IS NULL)
             FROM rollout_members WHERE rollout_id = $1 GROUP BY wave ORDER BY wave",
        )
        .bind(rollout_id)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows
            .into_iter()
            .map(
                |(wave, members, planned, acknowledged, left, moved, waiting)| WaveCounts {
                    wave: unsigned(wave),
                    members: count(Some(members)),
                    planned: count(Some(planned)),
                    acknowledged: count(Some(acknowledged)),
                    left: count(Some(left)),
                    moved: count(Some(moved)),
                    waiting: count(Some(waiting)),
                },
            )
            .collect())
    }

    async fn rollout_totals(&self) -> Result<Vec<RolloutTotals>, StoreError> {
        // Totals kept as rows are written, not counted from every member
        // and outbox row.
        Ok(sqlx::query_as(
            "SELECT r.id AS rollout_id, COALESCE(c.members, 0) AS members,
                    COALESCE(c.acknowledged, 0) AS acknowledged,
                    COALESCE(c.sent, 0) AS sent, COALESCE(c.dead, 0) AS dead
             FROM rollouts r LEFT JOIN outbox_count_totals c ON c.rollout_id = r.id
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
        Ok(count(Some(n)))
    }

    async fn due_now(&self, now: i64) -> Result<u64, StoreError> {
        let n: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM outbox o JOIN rollouts r ON r.id = o.rollout_id
             WHERE r.state = 'active'
               AND (o.state = 'leased' OR (o.state = 'due' AND o.due_at <= $1))",
        )
        .bind(now)
        .fetch_one(&self.pool)
        .await?;
        Ok(count(Some(n)))
    }

    async fn queues(&self, now: i64) -> Result<Vec<ChannelQueue>, StoreError> {
        Ok(sqlx::query_as(
            "SELECT o.channel,
                    COUNT(*) FILTER (WHERE o.state = 'due' AND o.due_at <= $1) AS due_now,
                    COUNT(*) FILTER (WHERE o.state = 'leased') AS leased,
                    COUNT(*) FILTER (WHERE o.state = 'due' AND o.due_at > $1 AND o.attempts > 0) AS retrying,
                    MIN(CASE WHEN o.state = 'due' AND o.due_at <= $1 THEN o.due_at END) AS oldest_due_at
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
            "SELECT sent_at FROM outbox WHERE channel = $1 AND state = 'sent' AND sent_at > $2
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

    async fn dead_letters(
        &self,
        rollout_id: &str,
        limit: u32,
    ) -> Result<Vec<DeadLetter>, StoreError> {
        let rows: Vec<(String, String, String, String)> = sqlx::query_as(
            "SELECT person_id, channel, step_kind, COALESCE(last_error, '') FROM outbox
             WHERE rollout_id = $1 AND state = 'dead' ORDER BY updated_at DESC, id LIMIT $2",
        )
        .bind(rollout_id)
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await?;
        rows.into_iter()
            .map(|(person_id, channel, step_kind, reason)| {
                Ok(DeadLetter {
                    person_id,
                    channel,
                    step_kind: StepKind::from_text(&step_kind).ok_or_else(|| {
                        super::chain::decode(format!("unknown step kind {step_kind:?}"))
                    })?,
                    reason,
                })
            })
            .collect()
    }

    async fn retry_dead_letters(&self, rollout_id: &str, now: i64) -> Result<u64, StoreError> {
        // Two at once would each check the other's rows as still dead.
        let mut tx = self.pool.begin().await?;
        lock_key(
            &mut tx,
            &format!("cascade retry dead letters of {rollout_id}"),
        )
        .await?;
        let done = sqlx::query(
            "UPDATE outbox SET state = 'due', due_at = $1, attempts = 0, lease_until = NULL, updated_at = $1
             WHERE rollout_id = $2 AND state = 'dead'
               AND EXISTS (SELECT 1 FROM rollouts r WHERE r.id = $2 AND r.state <> 'cancelled')
               AND NOT EXISTS (SELECT 1 FROM rollout_members m
                               WHERE m.rollout_id = outbox.rollout_id AND m.person_id = outbox.person_id
                                 AND m.out_reason IS NOT NULL)
               AND recipient_id NOT IN (SELECT id FROM people WHERE active = 0)
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
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(done.rows_affected())
    }

    async fn last_errors(&self, rollout_id: &str) -> Result<Vec<ChannelError>, StoreError> {
        Ok(sqlx::query_as(
            "SELECT channel, error, retrying FROM (
                 SELECT channel, last_error AS error,
                        ROW_NUMBER() OVER (PARTITION BY channel ORDER BY updated_at DESC, id DESC) AS n,
                        COUNT(*) FILTER (WHERE state = 'due' AND attempts > 0) OVER (PARTITION BY channel) AS retrying
                 FROM outbox
                 WHERE rollout_id = $1 AND last_error IS NOT NULL AND state IN ('due', 'leased', 'dead')) e
             WHERE n = 1 ORDER BY channel",
        )
        .bind(rollout_id)
        .fetch_all(&self.pool)
        .await?)
    }
}

impl PgStore {
    /// Claimed rows with their step kinds read. A row cascade did not write
    /// (edited by hand, or by a newer version) is a dead letter with the
    /// reason, not a failure of the whole batch that would stop every
    /// other send.
    async fn typed_claims(
        &self,
        claimed: Vec<ClaimedRow>,
        now: i64,
    ) -> Result<Vec<ClaimedDelivery>, StoreError> {
        // In due order, as a claim picks them (an UPDATE returns its rows
        // in no set order).
        let mut claimed = claimed;
        claimed.sort_by_key(|c| (c.due_at, c.id));
        let mut rows = Vec::with_capacity(claimed.len());
        for row in claimed {
            match StepKind::from_text(&row.step_kind) {
                Some(step_kind) => rows.push(row.into_delivery(step_kind)),
                None => {
                    sqlx::query(
                        "UPDATE outbox SET state = 'dead', lease_until = NULL, last_error = $1, updated_at = $2
                         WHERE id = $3 AND state = 'leased'",
                    )
                    .bind(format!(
                        "unknown step kind {:?}: this row was not written by this version of cascade",
                        row.step_kind
                    ))
                    .bind(now)
                    .bind(row.id)
                    .execute(&self.pool)
                    .await?;
                }
            }
        }
        Ok(rows)
    }
}

/// A claimed row as the database returns it, its step kind still text.
#[derive(sqlx::FromRow)]
struct ClaimedRow {
    id: i64,
    idempotency_key: String,
    rollout_id: String,
    person_id: String,
    recipient_id: String,
    wave: i64,
    step_kind: String,
    step_number: i64,
    channel: String,
    channel_rank: i64,
    attempts: i64,
    due_at: i64,
}

impl ClaimedRow {
    fn into_delivery(self, step_kind: StepKind) -> ClaimedDelivery {
        ClaimedDelivery {
            id: self.id,
            idempotency_key: self.idempotency_key,
            rollout_id: self.rollout_id,
            person_id: self.person_id,
            recipient_id: self.recipient_id,
            wave: unsigned(self.wave),
            step_kind,
            step_number: unsigned(self.step_number),
            channel: self.channel,
            channel_rank: unsigned(self.channel_rank),
            attempts: unsigned(self.attempts),
        }
    }
}

/// Folds the outbox's rows of totals and report stamps into
/// `rollout_counts` and `report_stamps` (see migration
/// `20261217000001_outbox_count_deltas.sql`). Gives way at once to
/// anything holding those rows (a lock wait of more than 50 ms ends the
/// fold, so it can never be the other side of a deadlock for long): the
/// rows are folded the next time. Its commit does not wait for the disk:
/// lost in a crash, the rows are there to fold again and the totals read
/// the same.
async fn fold_counts(pool: &sqlx::PgPool) -> Result<u64, StoreError> {
    let mut tx = pool.begin().await?;
    for setting in [
        "SET LOCAL lock_timeout = '50ms'",
        "SET LOCAL synchronous_commit = off",
    ] {
        sqlx::query(setting).execute(&mut *tx).await?;
    }
    match sqlx::query_scalar::<_, i64>("SELECT fold_outbox_count_deltas()")
        .fetch_one(&mut *tx)
        .await
    {
        Ok(folded) => {
            tx.commit().await?;
            Ok(u64::try_from(folded).unwrap_or(0))
        }
        // 55P03: lock_not_available.
        Err(sqlx::Error::Database(e)) if e.code().as_deref() == Some("55P03") => Ok(0),
        Err(e) => Err(e.into()),
    }
}
