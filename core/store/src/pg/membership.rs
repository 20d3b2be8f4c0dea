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

use crate::{
    AudienceQuery, AudienceSource, InductionEnrolment, MembershipChange, OpenEnrolment,
    RunningAudience, StoreError,
};
use cascade_model::rollout::Selector;
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

// The audience as one sub-select, as `sqlite/audience.rs` builds it for
// SQLite (its `push_audience`), in PostgreSQL's SQL: lists bind as arrays,
// conditions are booleans. Kept here, private, until the `Audiences` port
// has its own.

/// Pushes `= ANY($n)` binding `values` as one array.
fn push_any(q: &mut QueryBuilder<'_, Postgres>, values: &[String]) {
    q.push(" = ANY(");
    q.push_bind(values.to_vec());
    q.push(")");
}

/// Pushes a condition on person `p` that holds when any of `s`'s lists
/// takes them; `FALSE` when every list is empty.
fn push_selector(q: &mut QueryBuilder<'_, Postgres>, s: &Selector) {
    let mut terms = 0;
    let mut term = |q: &mut QueryBuilder<'_, Postgres>| {
        q.push(if terms == 0 { "(" } else { " OR " });
        terms += 1;
    };
    if !s.agencies.is_empty() {
        term(q);
        q.push("p.agency_id");
        push_any(q, &s.agencies);
    }
    if !s.teams.is_empty() {
        term(q);
        q.push("p.team_id");
        push_any(q, &s.teams);
    }
    if !s.people.is_empty() {
        term(q);
        q.push("p.id");
        push_any(q, &s.people);
    }
    if !s.roles.is_empty() {
        term(q);
        q.push("EXISTS (SELECT 1 FROM person_roles r WHERE r.person_id = p.id AND r.role");
        push_any(q, &s.roles);
        q.push(")");
    }
    if !s.champion_themes.is_empty() {
        // As `Store::champions` has them: active, and champion for a team.
        term(q);
        q.push(
            "p.id IN (SELECT c.person_id FROM champions c WHERE c.active <> 0
               AND EXISTS (SELECT 1 FROM champion_teams ct WHERE ct.person_id = c.person_id AND ct.theme = c.theme)
               AND c.theme",
        );
        push_any(q, &s.champion_themes);
        q.push(")");
    }
    q.push(if terms == 0 { "FALSE" } else { ")" });
}

/// Pushes `(SELECT person_id, team_id, agency_id, wave, reached FROM people …)`:
/// the audience's people, `wave` the index of the first wave that takes
/// them (NULL for none) and `reached` whether a rollout of the item (not
/// cancelled) already has them; always false unless `reached_before`.
fn push_audience(
    q: &mut QueryBuilder<'_, Postgres>,
    audience: &AudienceQuery,
    reached_before: bool,
) {
    q.push("(SELECT p.id AS person_id, p.team_id AS team_id, p.agency_id AS agency_id, ");
    if audience.waves.is_empty() {
        q.push("NULL::bigint");
    } else {
        q.push("CASE");
        for (i, wave) in audience.waves.iter().enumerate() {
            q.push(" WHEN ");
            if wave.everyone {
                q.push("TRUE");
            } else {
                push_selector(q, &wave.takes);
            }
            q.push(format_args!(" THEN {i}::bigint"));
        }
        q.push(" END");
    }
    q.push(" AS wave, ");
    match &audience.source {
        AudienceSource::Directory { include, exclude } => {
            if reached_before {
                q.push(
                    "p.id IN (SELECT m.person_id FROM rollout_members m JOIN rollouts ro ON ro.id = m.rollout_id
                              WHERE ro.item_id = ",
                );
                q.push_bind(audience.item_id.clone());
                q.push(" AND ro.state <> 'cancelled')");
            } else {
                q.push("FALSE");
            }
            q.push(" AS reached FROM people p WHERE p.active <> 0");
            if !include.is_empty() {
                q.push(" AND ");
                push_selector(q, include);
            }
            if !exclude.is_empty() {
                q.push(" AND NOT ");
                push_selector(q, exclude);
            }
        }
        AudienceSource::Reacknowledge { version } => {
            q.push(
                "FALSE AS reached FROM people p WHERE p.active <> 0
                 AND p.id IN (SELECT a.person_id FROM acknowledgements a WHERE a.item_id = ",
            );
            q.push_bind(audience.item_id.clone());
            q.push(" AND a.item_version <> ");
            q.push_bind(version.clone());
            q.push(
                ") AND p.id NOT IN (SELECT a.person_id FROM acknowledgements a WHERE a.item_id = ",
            );
            q.push_bind(audience.item_id.clone());
            q.push(" AND a.item_version = ");
            q.push_bind(version.clone());
            q.push(")");
        }
    }
    // OFFSET 0 keeps the planner from flattening this into the outer
    // query, which would evaluate the wave's `CASE` once per mention.
    q.push(" OFFSET 0)");
}
