//! Running rollouts' members held against the directory an import has
//! just written, inside the import's transaction (PostgreSQL; see
//! `sqlite/membership.rs` for the rules): leavers and movers stop being
//! chased, people back in the audience are chased again, and open
//! rollouts take in their joiners.
//!
//! The import holds its advisory lock; the rows changed here are also
//! written by the scheduler (materialising, claiming the outbox), and
//! each statement is one conditional `UPDATE` or `INSERT … SELECT … ON
//! CONFLICT DO NOTHING`, so a concurrent writer's row is re-checked under
//! its row lock rather than overwritten from a stale read.

use super::audience_query::push_audience;
use crate::{
    AudienceQuery, AudienceSource, InductionEnrolment, MembershipChange, OpenEnrolment,
    RunningAudience, StoreError,
};
use sqlx::{PgConnection, Postgres, QueryBuilder};

/// What bringing the running rollouts' members up to date did.
pub(super) struct Updated {
    /// Per running rollout, by id.
    pub changes: Vec<MembershipChange>,
    /// Queued messages cancelled.
    pub cancelled: u64,
    /// Set when a key item of the induction is running.
    pub induction: Option<InductionEnrolment>,
}

/// Brings every running rollout's members up to date; `new_people` are
/// the people the import listed for the first time, the only ones a key
/// item of the induction enrols.
pub(super) async fn update(
    conn: &mut PgConnection,
    audiences: &[RunningAudience],
    now: i64,
    new_people: &[String],
) -> Result<Updated, StoreError> {
    let mut running: Vec<String> =
        sqlx::query_scalar("SELECT id FROM rollouts WHERE state <> 'cancelled'")
            .fetch_all(&mut *conn)
            .await?;
    // By bytes, as SQLite orders text, whatever the database's collation.
    running.sort_unstable();
    if running.is_empty() {
        return Ok(Updated {
            changes: Vec::new(),
            cancelled: 0,
            induction: None,
        });
    }
    let mut induction: Option<(usize, Vec<String>)> = None;
    let mut changes: Vec<MembershipChange> = running
        .iter()
        .map(|id| MembershipChange {
            rollout_id: id.clone(),
            ..MembershipChange::default()
        })
        .collect();

    // Leavers, in every running rollout at once.
    let left: Vec<String> = sqlx::query_scalar(
        "UPDATE rollout_members SET out_reason = 'left', out_at = $1,
            out_next_due_at = next_due_at, next_due_at = NULL
         WHERE out_reason IS NULL
           AND person_id IN (SELECT id FROM people WHERE active = 0)
           AND rollout_id IN (SELECT id FROM rollouts WHERE state <> 'cancelled')
         RETURNING rollout_id",
    )
    .bind(now)
    .fetch_all(&mut *conn)
    .await?;
    for id in left {
        if let Ok(i) = running.binary_search(&id) {
            changes[i].left += 1;
        }
    }
    // A mover who has since left is a leaver.
    sqlx::query(
        "UPDATE rollout_members SET out_reason = 'left', out_at = $1
         WHERE out_reason = 'moved'
           AND person_id IN (SELECT id FROM people WHERE active = 0)
           AND rollout_id IN (SELECT id FROM rollouts WHERE state <> 'cancelled')",
    )
    .bind(now)
    .execute(&mut *conn)
    .await?;

    let mut cancelled = 0;
    for (rollout, change) in running.iter().zip(changes.iter_mut()) {
        let running_audience = audiences.iter().find(|a| &a.rollout_id == rollout);
        let audience = running_audience
            .map(|a| &a.query)
            // A re-acknowledgement round's audience is who has not yet
            // acknowledged: acknowledging is not moving away.
            .filter(|q| matches!(q.source, AudienceSource::Directory { .. }));
        match audience {
            Some(query) => {
                change.moved = go_out(conn, rollout, now, query).await?;
                let mut back: QueryBuilder<Postgres> = QueryBuilder::new(
                    "UPDATE rollout_members SET out_reason = NULL, out_at = NULL,
                        next_due_at = out_next_due_at, out_next_due_at = NULL
                     WHERE rollout_id = ",
                );
                back.push_bind(rollout.clone());
                back.push(" AND out_reason IS NOT NULL AND person_id IN (SELECT a.person_id FROM ");
                push_audience(&mut back, query, false);
                back.push(" a WHERE a.wave IS NOT NULL)");
                change.back = back.build().execute(&mut *conn).await?.rows_affected();
                // A leaver listed again, but outside the audience, has moved.
                sqlx::query(
                    "UPDATE rollout_members SET out_reason = 'moved', out_at = $1
                     WHERE rollout_id = $2 AND out_reason = 'left'
                       AND person_id IN (SELECT id FROM people WHERE active <> 0)",
                )
                .bind(now)
                .bind(rollout)
                .execute(&mut *conn)
                .await?;
                // Joiners, after the members back: someone back is not new.
                if let Some(open) = running_audience.and_then(|a| a.open.as_ref()) {
                    let new_only = open.new_people_only.then_some(new_people);
                    change.joiners = Some(enrol(conn, rollout, now, query, open, new_only).await?);
                    if open.new_people_only {
                        let (items, ids) = induction.get_or_insert_default();
                        *items += 1;
                        ids.push(rollout.clone());
                    }
                }
            }
            None => {
                // Without the audience, a leaver listed again is back.
                change.back = sqlx::query(
                    "UPDATE rollout_members SET out_reason = NULL, out_at = NULL,
                        next_due_at = out_next_due_at, out_next_due_at = NULL
                     WHERE rollout_id = $1 AND out_reason = 'left'
                       AND person_id IN (SELECT id FROM people WHERE active <> 0)",
                )
                .bind(rollout)
                .execute(&mut *conn)
                .await?
                .rows_affected();
            }
        }

        // Their messages still waiting (a lease run out is waiting too; a
        // send in flight is left to finish).
        cancelled += sqlx::query(
            "UPDATE outbox SET state = 'cancelled', lease_until = NULL, updated_at = $1
             WHERE rollout_id = $2 AND state IN ('due', 'leased')
               AND (state = 'due' OR lease_until <= $1)
               AND person_id IN (SELECT person_id FROM rollout_members
                                 WHERE rollout_id = $2 AND out_reason IS NOT NULL)",
        )
        .bind(now)
        .bind(rollout)
        .execute(&mut *conn)
        .await?
        .rows_affected();
    }
    // Nobody who left is sent anything, not even an escalation about
    // someone else.
    cancelled += sqlx::query(
        "UPDATE outbox SET state = 'cancelled', lease_until = NULL, updated_at = $1
         WHERE state IN ('due', 'leased') AND (state = 'due' OR lease_until <= $1)
           AND recipient_id IN (SELECT id FROM people WHERE active = 0)
           AND rollout_id IN (SELECT id FROM rollouts WHERE state <> 'cancelled')",
    )
    .bind(now)
    .execute(&mut *conn)
    .await?
    .rows_affected();
    let induction = match induction {
        Some((key_items, rollouts)) => {
            let joiners: i64 = sqlx::query_scalar(
                "SELECT count(DISTINCT person_id) FROM rollout_members
                 WHERE joined_at = $1 AND rollout_id = ANY($2) AND person_id = ANY($3)",
            )
            .bind(now)
            .bind(&rollouts)
            .bind(new_people)
            .fetch_one(&mut *conn)
            .await?;
            Some(InductionEnrolment {
                key_items,
                joiners: u64::try_from(joiners).unwrap_or(0),
            })
        }
        None => None,
    };
    Ok(Updated {
        changes,
        cancelled,
        induction,
    })
}

/// Takes out of `rollout` its members still chased who are not in
/// `audience` now. Returns how many went out.
async fn go_out(
    conn: &mut PgConnection,
    rollout: &str,
    now: i64,
    audience: &AudienceQuery,
) -> Result<u64, StoreError> {
    let mut q: QueryBuilder<Postgres> =
        QueryBuilder::new("UPDATE rollout_members SET out_reason = 'moved', out_at = ");
    q.push_bind(now);
    q.push(", out_next_due_at = next_due_at, next_due_at = NULL WHERE rollout_id = ");
    q.push_bind(rollout.to_owned());
    q.push(" AND out_reason IS NULL AND person_id NOT IN (SELECT a.person_id FROM ");
    push_audience(&mut q, audience, false);
    q.push(" a WHERE a.wave IS NOT NULL)");
    Ok(q.build().execute(&mut *conn).await?.rows_affected())
}

/// Enrols into the open `rollout` the people in `audience` now who are not
/// its members, not reached by another rollout of the item and have not
/// acknowledged `open.item_version`; with `new_only`, only those of them.
/// Returns how many joined.
async fn enrol(
    conn: &mut PgConnection,
    rollout: &str,
    now: i64,
    audience: &AudienceQuery,
    open: &OpenEnrolment,
    new_only: Option<&[String]>,
) -> Result<u64, StoreError> {
    if audience.waves.is_empty()
        || open.waves.len() != audience.waves.len()
        || new_only.is_some_and(<[String]>::is_empty)
    {
        return Ok(0);
    }
    let mut q: QueryBuilder<Postgres> = QueryBuilder::new(
        "INSERT INTO rollout_members
            (rollout_id, person_id, wave, next_due_at, team_id, agency_id, joined_at, shift_days)
         SELECT ",
    );
    q.push_bind(rollout.to_owned());
    q.push(", a.person_id, a.wave, CASE a.wave");
    for (i, wave) in open.waves.iter().enumerate() {
        q.push(format_args!(" WHEN {i} THEN "));
        q.push_bind(wave.first_due_at);
    }
    q.push(" END, a.team_id, a.agency_id, ");
    q.push_bind(now);
    q.push(", CASE a.wave");
    for (i, wave) in open.waves.iter().enumerate() {
        q.push(format_args!(" WHEN {i} THEN {}", wave.shift_days));
    }
    q.push(" END FROM ");
    // `reached` covers this rollout's own members (out or not) as well as
    // every other rollout of the item: nobody is a member twice.
    push_audience(&mut q, audience, true);
    q.push(
        " a WHERE a.wave IS NOT NULL AND NOT a.reached
           AND NOT EXISTS (SELECT 1 FROM acknowledgements k
                           WHERE k.person_id = a.person_id AND k.item_id = ",
    );
    q.push_bind(audience.item_id.clone());
    q.push(" AND k.item_version = ");
    q.push_bind(open.item_version.clone());
    q.push(")");
    if let Some(ids) = new_only {
        q.push(" AND a.person_id = ANY(");
        q.push_bind(ids.to_vec());
        q.push(")");
    }
    // A member the scheduler (or another import) wrote meanwhile stays.
    q.push(" ON CONFLICT (rollout_id, person_id) DO NOTHING");
    let joined = q.build().execute(&mut *conn).await?.rows_affected();
    if joined > 0 {
        // No trigger counts inserted members: the count and the report
        // stamp are raised here.
        sqlx::query(
            "UPDATE rollout_counts SET members = rollout_counts.members + $1 WHERE rollout_id = $2",
        )
        .bind(i64::try_from(joined).unwrap_or(i64::MAX))
        .bind(rollout)
        .execute(&mut *conn)
        .await?;
        sqlx::query(
            "INSERT INTO report_stamps (scope) VALUES ($1)
             ON CONFLICT (scope) DO UPDATE SET stamp = report_stamps.stamp + 1",
        )
        .bind(rollout)
        .execute(&mut *conn)
        .await?;
    }
    Ok(joined)
}
