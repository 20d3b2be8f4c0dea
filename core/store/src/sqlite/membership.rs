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
//!
//! A rollout open to joiners then takes in, with one `INSERT … SELECT`,
//! the people in its audience now who are not yet its members, whom no
//! other rollout of the item (not cancelled) has, and who have not
//! acknowledged its item version: each in the first wave whose rule takes
//! them, on that wave's timetable moved to start from their joining (see
//! [`crate::JoinerWave`]).

use super::audience::push_audience;
use crate::{
    AudienceQuery, AudienceSource, InductionEnrolment, MembershipChange, OpenEnrolment,
    RunningAudience, StoreError,
};
use sqlx::{QueryBuilder, Sqlite, SqliteConnection};

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
    conn: &mut SqliteConnection,
    audiences: &[RunningAudience],
    now: i64,
    new_people: &[String],
) -> Result<Updated, StoreError> {
    let running: Vec<String> =
        sqlx::query_scalar("SELECT id FROM rollouts WHERE state <> 'cancelled' ORDER BY id")
            .fetch_all(&mut *conn)
            .await?;
    if running.is_empty() {
        return Ok(Updated {
            changes: Vec::new(),
            cancelled: 0,
            induction: None,
        });
    }
    let new_people = serde_json::to_string(new_people).expect("ids are plain strings");
    let mut induction: Option<(usize, Vec<String>)> = None;
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
        let running_audience = audiences.iter().find(|a| &a.rollout_id == rollout);
        let audience = running_audience
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
                // Joiners, after the members back: someone back is not new.
                if let Some(open) = running_audience.and_then(|a| a.open.as_ref()) {
                    let new_only = open.new_people_only.then_some(new_people.as_str());
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
    let induction = match induction {
        Some((key_items, rollouts)) => {
            let rollouts = serde_json::to_string(&rollouts).expect("ids are plain strings");
            let joiners: i64 = sqlx::query_scalar(
                "SELECT count(DISTINCT person_id) FROM rollout_members
                 WHERE joined_at = ? AND rollout_id IN (SELECT value FROM json_each(?))
                   AND person_id IN (SELECT value FROM json_each(?))",
            )
            .bind(now)
            .bind(rollouts)
            .bind(&new_people)
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

/// Enrols into the open `rollout` the people in `audience` now who are not
/// its members, not reached by another rollout of the item and have not
/// acknowledged `open.item_version`; with `new_only` (a JSON list of ids),
/// only those of them. Returns how many joined.
async fn enrol(
    conn: &mut SqliteConnection,
    rollout: &str,
    now: i64,
    audience: &AudienceQuery,
    open: &OpenEnrolment,
    new_only: Option<&str>,
) -> Result<u64, StoreError> {
    if audience.waves.is_empty()
        || open.waves.len() != audience.waves.len()
        || new_only == Some("[]")
    {
        return Ok(0);
    }
    let mut q: QueryBuilder<Sqlite> = QueryBuilder::new(
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
        q.push(" AND a.person_id IN (SELECT value FROM json_each(");
        q.push_bind(ids.to_owned());
        q.push("))");
    }
    let joined = q.build().execute(&mut *conn).await?.rows_affected();
    if joined > 0 {
        // No trigger counts inserted members (20261001000000,
        // 20261104000000): the count and the report stamp are raised here.
        sqlx::query("UPDATE rollout_counts SET members = members + ? WHERE rollout_id = ?")
            .bind(i64::try_from(joined).unwrap_or(i64::MAX))
            .bind(rollout)
            .execute(&mut *conn)
            .await?;
        sqlx::query(
            "INSERT INTO report_stamps (scope) VALUES (?)
             ON CONFLICT (scope) DO UPDATE SET stamp = stamp + 1",
        )
        .bind(rollout)
        .execute(&mut *conn)
        .await?;
    }
    Ok(joined)
}
