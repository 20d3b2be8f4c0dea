//! Running rollouts' members held against the directory an import has
//! just written, inside the import's transaction: leavers and movers stop
//! being chased, people back in the audience are chased again.
//!
//! A member who is out keeps their row, their wave, their acknowledgement
//! and the team and agency they were in when the rollout reached them;
//! `out_reason` says why they are out, `next_due_at` is cleared (so the
//! scheduler passes them by) and the step it held is kept in
//! `out_next_due_at` to resume from. Their queued messages, and any
//! message queued for a recipient who left, are cancelled.

use super::audience::push_audience;
use crate::{AudienceQuery, AudienceSource, MembershipChange, RunningAudience, StoreError};
use sqlx::{QueryBuilder, Sqlite, SqliteConnection};

/// Brings every running rollout's members up to date. Returns what changed
/// per running rollout (by id) and how many queued messages were cancelled.
pub(super) async fn update(
    conn: &mut SqliteConnection,
    audiences: &[RunningAudience],
    now: i64,
) -> Result<(Vec<MembershipChange>, u64), StoreError> {
    let running: Vec<String> =
        sqlx::query_scalar("SELECT id FROM rollouts WHERE state <> 'cancelled' ORDER BY id")
            .fetch_all(&mut *conn)
            .await?;
    if running.is_empty() {
        return Ok((Vec::new(), 0));
    }
    let mut changes: Vec<MembershipChange> = running
        .iter()
        .map(|id| MembershipChange {
            rollout_id: id.clone(),
            ..MembershipChange::default()
        })
        .collect();

    // Leavers, in every running rollout at once: members whom the
    // directory no longer lists. One pass over the people who left.
    let left: Vec<String> = sqlx::query_scalar(
        "UPDATE rollout_members SET out_reason = 'left', out_at = ?1,
            out_next_due_at = next_due_at, next_due_at = NULL
         WHERE out_reason IS NULL
           AND person_id IN (SELECT id FROM people WHERE NOT active)
           AND rollout_id IN (SELECT id FROM rollouts WHERE state <> 'cancelled')
         RETURNING rollout_id",
    )
    .bind(now)
    .fetch_all(&mut *conn)
    .await?;
    for id in left {
        // `running` is in id order, as SQLite and Rust both order text by its bytes.
        if let Ok(i) = running.binary_search(&id) {
            changes[i].left += 1;
        }
    }
    // A mover who has since left is a leaver.
    sqlx::query(
        "UPDATE rollout_members SET out_reason = 'left', out_at = ?1
         WHERE out_reason = 'moved'
           AND person_id IN (SELECT id FROM people WHERE NOT active)
           AND rollout_id IN (SELECT id FROM rollouts WHERE state <> 'cancelled')",
    )
    .bind(now)
    .execute(&mut *conn)
    .await?;

    let mut cancelled = 0;
    for (rollout, change) in running.iter().zip(changes.iter_mut()) {
        let audience = audiences
            .iter()
            .find(|a| &a.rollout_id == rollout)
            .map(|a| &a.query)
            // A re-acknowledgement round's audience is who has not yet
            // acknowledged: acknowledging is not moving away. Only
            // leaving counts there.
            .filter(|q| matches!(q.source, AudienceSource::Directory { .. }));
        match audience {
            Some(query) => {
                // Movers: active members no longer in the audience.
                change.moved = go_out(conn, rollout, now, query).await?;
                // Back: members out who are in the audience again.
                let mut back: QueryBuilder<Sqlite> = QueryBuilder::new(
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
                    "UPDATE rollout_members SET out_reason = 'moved', out_at = ?
                     WHERE rollout_id = ? AND out_reason = 'left'
                       AND person_id IN (SELECT id FROM people WHERE active)",
                )
                .bind(now)
                .bind(rollout)
                .execute(&mut *conn)
                .await?;
            }
            None => {
                // Without the audience, a leaver listed again is back.
                change.back = sqlx::query(
                    "UPDATE rollout_members SET out_reason = NULL, out_at = NULL,
                        next_due_at = out_next_due_at, out_next_due_at = NULL
                     WHERE rollout_id = ? AND out_reason = 'left'
                       AND person_id IN (SELECT id FROM people WHERE active)",
                )
                .bind(rollout)
                .execute(&mut *conn)
                .await?
                .rows_affected();
            }
        }

        // Their messages still waiting (a lease run out is waiting too; a
        // send in flight is left to finish, and `record` cancels it if it
        // comes back to be tried again).
        cancelled += sqlx::query(
            "UPDATE outbox SET state = 'cancelled', lease_until = NULL, updated_at = ?1
             WHERE rollout_id = ?2 AND state IN ('due', 'leased')
               AND (state = 'due' OR lease_until <= ?1)
               AND person_id IN (SELECT person_id FROM rollout_members
                                 WHERE rollout_id = ?2 AND out_reason IS NOT NULL)",
        )
        .bind(now)
        .bind(rollout)
        .execute(&mut *conn)
        .await?
        .rows_affected();
    }
    // Nobody who left is sent anything, not even an escalation about
    // someone else (the next step of that ladder goes to whoever holds
    // the role now). Read through the index of waiting rows.
    cancelled += sqlx::query(
        "UPDATE outbox SET state = 'cancelled', lease_until = NULL, updated_at = ?1
         WHERE state IN ('due', 'leased') AND (state = 'due' OR lease_until <= ?1)
           AND recipient_id IN (SELECT id FROM people WHERE NOT active)
           AND rollout_id IN (SELECT id FROM rollouts WHERE state <> 'cancelled')",
    )
    .bind(now)
    .execute(&mut *conn)
    .await?
    .rows_affected();
    Ok((changes, cancelled))
}

/// Takes out of `rollout` its members still chased who are not in
/// `audience` now. Returns how many went out.
async fn go_out(
    conn: &mut SqliteConnection,
    rollout: &str,
    now: i64,
    audience: &AudienceQuery,
) -> Result<u64, StoreError> {
    let mut q: QueryBuilder<Sqlite> =
        QueryBuilder::new("UPDATE rollout_members SET out_reason = 'moved', out_at = ");
    q.push_bind(now);
    q.push(", out_next_due_at = next_due_at, next_due_at = NULL WHERE rollout_id = ");
    q.push_bind(rollout.to_owned());
    q.push(" AND out_reason IS NULL AND person_id NOT IN (SELECT a.person_id FROM ");
    push_audience(&mut q, audience, false);
    q.push(" a WHERE a.wave IS NOT NULL)");
    Ok(q.build().execute(&mut *conn).await?.rows_affected())
}
