//! The audience as PostgreSQL SQL: the query `sqlite/audience.rs` builds,
//! in PostgreSQL's words (lists bound as arrays with `= ANY`, flags
//! compared with `<> 0`, `OFFSET 0` where SQLite has `LIMIT -1`), for
//! writing a rollout's members (`create_rollout`) and for the
//! [`crate::Audiences`] queries.

use crate::StoreError;
use cascade_model::rollout::{AudienceQuery, AudienceSource, Selector};
use sqlx::{PgConnection, Postgres, QueryBuilder};

/// Pushes a condition on person `p` that holds when any of `s`'s lists
/// takes them; `false` when every list is empty.
pub(crate) fn push_selector(q: &mut QueryBuilder<'_, Postgres>, s: &Selector) {
    let mut terms = 0;
    let mut term = |q: &mut QueryBuilder<'_, Postgres>| {
        q.push(if terms == 0 { "(" } else { " OR " });
        terms += 1;
    };
    if !s.agencies.is_empty() {
        term(q);
        q.push("p.agency_id = ANY(");
        q.push_bind(s.agencies.clone());
        q.push(")");
    }
    if !s.teams.is_empty() {
        term(q);
        q.push("p.team_id = ANY(");
        q.push_bind(s.teams.clone());
        q.push(")");
    }
    if !s.people.is_empty() {
        term(q);
        q.push("p.id = ANY(");
        q.push_bind(s.people.clone());
        q.push(")");
    }
    if !s.roles.is_empty() {
        term(q);
        q.push("EXISTS (SELECT 1 FROM person_roles r WHERE r.person_id = p.id AND r.role = ANY(");
        q.push_bind(s.roles.clone());
        q.push("))");
    }
    if !s.champion_themes.is_empty() {
        // As `Store::champions` has them: active, and champion for a team.
        term(q);
        q.push(
            "p.id IN (SELECT c.person_id FROM champions c WHERE c.active <> 0
               AND EXISTS (SELECT 1 FROM champion_teams ct WHERE ct.person_id = c.person_id AND ct.theme = c.theme)
               AND c.theme = ANY(",
        );
        q.push_bind(s.champion_themes.clone());
        q.push("))");
    }
    q.push(if terms == 0 { "false" } else { ")" });
}

/// Pushes [`push_audience`] with the person's timing columns as well:
/// `time_zone`, `works` and `absent_until` (only a return after the
/// query's `absences_after`; earlier ones move nobody).
pub(crate) fn push_timed_audience(
    q: &mut QueryBuilder<'_, Postgres>,
    audience: &AudienceQuery,
    reached_before: bool,
) {
    push_audience_with(q, audience, reached_before, true);
}

/// Pushes `(SELECT person_id, team_id, agency_id, wave, reached FROM people …)`:
/// the audience's people, `wave` the index of the first wave that takes
/// them (NULL for none) and `reached` whether a rollout of the item (not
/// cancelled) already has them; always false unless `reached_before`
/// (see [`reached_before`]).
pub(crate) fn push_audience(
    q: &mut QueryBuilder<'_, Postgres>,
    audience: &AudienceQuery,
    reached_before: bool,
) {
    push_audience_with(q, audience, reached_before, false);
}

fn push_audience_with(
    q: &mut QueryBuilder<'_, Postgres>,
    audience: &AudienceQuery,
    reached_before: bool,
    timed: bool,
) {
    q.push("(SELECT p.id AS person_id, p.team_id AS team_id, p.agency_id AS agency_id, ");
    if timed {
        q.push("nullif(p.time_zone, ");
        q.push_bind(audience.home_zone.clone());
        q.push(") AS time_zone, p.works AS works, CASE WHEN p.absent_until > ");
        q.push_bind(audience.absences_after.clone());
        q.push(" THEN p.absent_until END AS absent_until, ");
    }
    if audience.waves.is_empty() {
        q.push("NULL::bigint");
    } else {
        q.push("CASE");
        for (i, wave) in audience.waves.iter().enumerate() {
            q.push(" WHEN ");
            if wave.everyone {
                q.push("true");
            } else {
                push_selector(q, &wave.takes);
            }
            q.push(format_args!(" THEN {i}"));
        }
        q.push(" END::bigint");
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
                q.push("false");
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
                "false AS reached FROM people p WHERE p.active <> 0
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
    // OFFSET 0 keeps the planner from pulling this into the outer query,
    // which would evaluate the wave's `CASE` once per mention.
    q.push(" OFFSET 0)");
}

/// Whether a rollout of the item other than `except` (not cancelled)
/// exists, whose members an audience must leave out.
pub(crate) async fn reached_before(
    conn: &mut PgConnection,
    audience: &AudienceQuery,
    except: &str,
) -> Result<bool, StoreError> {
    if matches!(audience.source, AudienceSource::Reacknowledge { .. }) {
        return Ok(false);
    }
    Ok(sqlx::query_scalar(
        "SELECT EXISTS (SELECT 1 FROM rollouts WHERE item_id = $1 AND state <> 'cancelled' AND id <> $2)",
    )
    .bind(&audience.item_id)
    .bind(except)
    .fetch_one(conn)
    .await?)
}

/// Pushes the first send of a member of wave `a.wave`.
pub(crate) fn push_first_due(q: &mut QueryBuilder<'_, Postgres>, audience: &AudienceQuery) {
    if audience.waves.is_empty() {
        q.push("NULL::bigint");
        return;
    }
    q.push("CASE a.wave");
    for (i, wave) in audience.waves.iter().enumerate() {
        q.push(format_args!(" WHEN {i} THEN "));
        q.push_bind(wave.first_due_at);
    }
    q.push(" END");
}
