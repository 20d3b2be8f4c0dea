//! PostgreSQL implementation of [`Audiences`]: the audience is one `SELECT`
//! over `people`, as in SQLite (see `sqlite/audience.rs`), each selector an
//! `= ANY(array)` or an `EXISTS` on roles and champions, each wave a branch
//! of a `CASE`. Counting, grouping by team and writing a rollout's members
//! (`INSERT … SELECT`, in `create_rollout`) all run on it inside the
//! database, so nothing crosses to Rust a person at a time. A list of any
//! length is one bound array: PostgreSQL has no limit like SQLite's on
//! bound values that would call for JSON.

use super::PgStore;
use crate::StoreError;
use crate::audience::*;
use cascade_model::rollout::Selector;
use sqlx::{PgConnection, Postgres, QueryBuilder, Row};
use std::collections::BTreeSet;

/// Pushes `column = ANY($n)`, binding `values` as one text array.
fn push_any(q: &mut QueryBuilder<'_, Postgres>, column: &str, values: &[String]) {
    q.push(column);
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
        push_any(q, "p.agency_id", &s.agencies);
    }
    if !s.teams.is_empty() {
        term(q);
        push_any(q, "p.team_id", &s.teams);
    }
    if !s.people.is_empty() {
        term(q);
        push_any(q, "p.id", &s.people);
    }
    if !s.roles.is_empty() {
        term(q);
        q.push("EXISTS (SELECT 1 FROM person_roles r WHERE r.person_id = p.id AND ");
        push_any(q, "r.role", &s.roles);
        q.push(")");
    }
    if !s.champion_themes.is_empty() {
        // As `Store::champions` has them: active, and champion for a team.
        term(q);
        q.push(
            "p.id IN (SELECT c.person_id FROM champions c WHERE c.active <> 0
               AND EXISTS (SELECT 1 FROM champion_teams ct WHERE ct.person_id = c.person_id AND ct.theme = c.theme)
               AND ",
        );
        push_any(q, "c.theme", &s.champion_themes);
        q.push(")");
    }
    q.push(if terms == 0 { "FALSE" } else { ")" });
}

/// Pushes [`push_audience`] with the person's timing columns as well:
/// `time_zone`, `works` and `absent_until` (only a return after the
/// query's `absences_after`; earlier ones move nobody).
#[allow(dead_code)] // Used by create_rollout (Outbox), ported on its own.
pub(super) fn push_timed_audience(
    q: &mut QueryBuilder<'_, Postgres>,
    audience: &AudienceQuery,
    reached_before: bool,
) {
    push_audience_with(q, audience, reached_before, true);
}

/// Pushes `(SELECT person_id, team_id, agency_id, wave, reached FROM people …)`:
/// the audience's people, `wave` (BIGINT) the index of the first wave that
/// takes them (NULL for none) and `reached` (boolean) whether a rollout of
/// the item (not cancelled) already has them; always false unless
/// `reached_before` (see [`reached_before`]).
pub(super) fn push_audience(
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
    // OFFSET 0 keeps PostgreSQL from pulling this up into the outer query,
    // which would evaluate the wave's `CASE` once per mention.
    q.push(" OFFSET 0)");
}

/// Whether a rollout of the item other than `except` (not cancelled)
/// exists, whose members an audience must leave out. Without one the
/// audience query skips the check.
pub(super) async fn reached_before(
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

/// Pushes the audience `a` of members in a wave, not reached before, whose
/// first kind among `kinds` is `kinds[index]`, up to an open `EXISTS` over
/// their identity `i` there (the caller adds conditions and closes it).
fn push_first_kind(
    q: &mut QueryBuilder<'_, Postgres>,
    query: &AudienceQuery,
    reached: bool,
    kinds: &[String],
    index: usize,
) {
    push_audience(q, query, reached);
    q.push(" a WHERE a.wave IS NOT NULL AND NOT a.reached");
    for earlier in &kinds[..index] {
        q.push(
            " AND NOT EXISTS (SELECT 1 FROM channel_identities i
               WHERE i.person_id = a.person_id AND i.unreachable_at IS NULL AND i.channel = ",
        );
        q.push_bind(earlier.clone());
        q.push(")");
    }
    q.push(
        " AND EXISTS (SELECT 1 FROM channel_identities i
           WHERE i.person_id = a.person_id AND i.unreachable_at IS NULL AND i.channel = ",
    );
    q.push_bind(kinds[index].clone());
}

/// Pushes the first send (BIGINT) of a member of wave `a.wave`.
pub(super) fn push_first_due(q: &mut QueryBuilder<'_, Postgres>, audience: &AudienceQuery) {
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

fn count(n: i64) -> usize {
    usize::try_from(n).unwrap_or(0)
}

impl Audiences for PgStore {
    async fn count_audience(
        &self,
        query: &AudienceQuery,
        kinds: &[String],
    ) -> Result<AudienceCounts, StoreError> {
        let mut conn = self.pool.acquire().await?;
        let reached = reached_before(&mut conn, query, "").await?;
        // Each person gets one code: -2 in no wave, -1 already reached,
        // otherwise wave * (kinds + 1) + the index of their first kind
        // (kinds: none of them). Counted with one FILTER each.
        let stride = kinds.len() + 1;
        let codes = query.waves.len() * stride;
        let mut q: QueryBuilder<Postgres> = QueryBuilder::new("SELECT ");
        for code in -2..i64::try_from(codes).unwrap_or(i64::MAX) {
            if code > -2 {
                q.push(", ");
            }
            q.push(format_args!("count(*) FILTER (WHERE code = {code})"));
        }
        q.push(
            " FROM (SELECT CASE WHEN a.wave IS NULL THEN -2 WHEN a.reached THEN -1 ELSE a.wave * ",
        );
        q.push(format_args!("{stride} + CASE"));
        for (i, kind) in kinds.iter().enumerate() {
            q.push(
                " WHEN EXISTS (SELECT 1 FROM channel_identities i
                   WHERE i.person_id = a.person_id AND i.channel = ",
            );
            q.push_bind(kind.clone());
            q.push(format_args!(" AND i.unreachable_at IS NULL) THEN {i}"));
        }
        q.push(format_args!(" ELSE {} END END AS code FROM ", kinds.len()));
        push_audience(&mut q, query, reached);
        q.push(" a OFFSET 0) coded");
        let row = q.build().fetch_one(&mut *conn).await?;
        let n = |i: usize| -> Result<usize, StoreError> { Ok(count(row.try_get(i)?)) };

        let mut counts = AudienceCounts {
            waves: Vec::with_capacity(query.waves.len()),
            unassigned: n(0)?,
            already_reached: n(1)?,
        };
        for wave in 0..query.waves.len() {
            let first = 2 + wave * stride;
            let by_kind = (0..kinds.len())
                .map(|k| n(first + k))
                .collect::<Result<Vec<_>, _>>()?;
            let unreachable = n(first + kinds.len())?;
            counts.waves.push(WaveTally {
                people: by_kind.iter().sum::<usize>() + unreachable,
                by_kind,
                unreachable,
            });
        }
        Ok(counts)
    }

    async fn count_at_domains(
        &self,
        query: &AudienceQuery,
        kinds: &[String],
        index: usize,
        domains: &[String],
    ) -> Result<usize, StoreError> {
        if index >= kinds.len() || domains.is_empty() {
            return Ok(0);
        }
        let mut conn = self.pool.acquire().await?;
        let reached = reached_before(&mut conn, query, "").await?;
        let mut q: QueryBuilder<Postgres> = QueryBuilder::new("SELECT count(*) FROM ");
        push_first_kind(&mut q, query, reached, kinds, index);
        q.push(" AND (");
        for (n, domain) in domains.iter().enumerate() {
            if n > 0 {
                q.push(" OR ");
            }
            // The domain after the first @, with a closing > of "Name <a@b>"
            // dropped (strpos is 0 without one: the whole address, as
            // SQLite's instr).
            q.push("rtrim(lower(substr(i.address, strpos(i.address, '@') + 1)), '>') = ");
            q.push_bind(domain.clone());
            q.push(" OR rtrim(lower(substr(i.address, strpos(i.address, '@') + 1)), '>') LIKE ");
            q.push_bind(format!("%.{domain}"));
        }
        q.push("))");
        let n: i64 = q.build_query_scalar().fetch_one(&mut *conn).await?;
        Ok(count(n))
    }

    async fn people_under(
        &self,
        query: &AudienceQuery,
        kinds: &[String],
        index: usize,
    ) -> Result<Vec<String>, StoreError> {
        if index >= kinds.len() {
            return Ok(Vec::new());
        }
        let mut conn = self.pool.acquire().await?;
        let reached = reached_before(&mut conn, query, "").await?;
        let mut q: QueryBuilder<Postgres> = QueryBuilder::new("SELECT a.person_id FROM ");
        push_first_kind(&mut q, query, reached, kinds, index);
        q.push(") ORDER BY a.person_id");
        Ok(q.build_query_scalar().fetch_all(&mut *conn).await?)
    }

    async fn audience_by_team(&self, query: &AudienceQuery) -> Result<Vec<TeamTally>, StoreError> {
        let mut conn = self.pool.acquire().await?;
        let reached = reached_before(&mut conn, query, "").await?;
        let mut q: QueryBuilder<Postgres> = QueryBuilder::new("SELECT a.team_id, count(*), min(");
        push_first_due(&mut q, query);
        q.push(") FROM ");
        push_audience(&mut q, query, reached);
        q.push(
            " a WHERE a.wave IS NOT NULL AND NOT a.reached GROUP BY a.team_id ORDER BY a.team_id",
        );
        let rows = q.build().fetch_all(&mut *conn).await?;
        rows.iter()
            .map(|row| {
                Ok(TeamTally {
                    team_id: row.try_get(0)?,
                    members: count(row.try_get(1)?),
                    first_due_at: row.try_get(2)?,
                })
            })
            .collect()
    }

    async fn timing_groups(&self, query: &AudienceQuery) -> Result<Vec<TimingGroup>, StoreError> {
        let mut conn = self.pool.acquire().await?;
        let reached = reached_before(&mut conn, query, "").await?;
        let mut q: QueryBuilder<Postgres> = QueryBuilder::new(
            "SELECT a.wave, a.time_zone, a.works, a.absent_until, count(*) FROM ",
        );
        push_timed_audience(&mut q, query, reached);
        // Ordered as SQLite's grouping gives them (NULLs first).
        q.push(
            " a WHERE a.wave IS NOT NULL AND NOT a.reached
               AND (a.time_zone IS NOT NULL OR a.works IS NOT NULL OR a.absent_until IS NOT NULL)
             GROUP BY a.wave, a.time_zone, a.works, a.absent_until
             ORDER BY a.wave, a.time_zone NULLS FIRST, a.works NULLS FIRST, a.absent_until NULLS FIRST",
        );
        let rows = q.build().fetch_all(&mut *conn).await?;
        rows.iter()
            .map(|row| {
                let absent: Option<String> = row.try_get(3)?;
                Ok(TimingGroup {
                    wave: usize::try_from(row.try_get::<i64, _>(0)?).unwrap_or(usize::MAX),
                    time_zone: row.try_get(1)?,
                    works: row.try_get(2)?,
                    absent_until: absent.as_deref().and_then(crate::sqlite::parse_day),
                    people: count(row.try_get(4)?),
                })
            })
            .collect()
    }

    async fn people_near(&self, ids: &[String]) -> Result<BTreeSet<String>, StoreError> {
        let mut found = BTreeSet::new();
        for id in ids {
            let exact: Option<String> =
                sqlx::query_scalar("SELECT id FROM people WHERE id = $1 AND active <> 0")
                    .bind(id)
                    .fetch_optional(&self.pool)
                    .await?;
            if let Some(exact) = exact {
                found.insert(exact);
                continue;
            }
            let near: Vec<String> = sqlx::query_scalar(
                "SELECT id FROM (SELECT id FROM people WHERE active <> 0 AND id < $1 ORDER BY id DESC LIMIT 3) lower_ids
                 UNION ALL
                 SELECT id FROM (SELECT id FROM people WHERE active <> 0 AND id > $1 ORDER BY id LIMIT 3) higher_ids",
            )
            .bind(id)
            .fetch_all(&self.pool)
            .await?;
            found.extend(near);
        }
        Ok(found)
    }

    async fn roles_near(&self, named: &[String]) -> Result<BTreeSet<String>, StoreError> {
        let mut found = BTreeSet::new();
        for role in named {
            // Stops at the first holder: no scan of everyone's roles.
            let held: bool = sqlx::query_scalar(
                "SELECT EXISTS (SELECT 1 FROM person_roles r JOIN people p ON p.id = r.person_id
                                WHERE r.role = $1 AND p.active <> 0)",
            )
            .bind(role)
            .fetch_one(&self.pool)
            .await?;
            if held {
                found.insert(role.clone());
            }
        }
        if found.len() == named.len() {
            return Ok(found);
        }
        let roles: Vec<String> = sqlx::query_scalar(
            "SELECT DISTINCT r.role FROM person_roles r JOIN people p ON p.id = r.person_id WHERE p.active <> 0",
        )
        .fetch_all(&self.pool)
        .await?;
        found.extend(roles);
        Ok(found)
    }

    async fn has_people(&self) -> Result<bool, StoreError> {
        Ok(sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM people)")
            .fetch_one(&self.pool)
            .await?)
    }
}
