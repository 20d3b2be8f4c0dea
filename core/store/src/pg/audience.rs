//! PostgreSQL implementation of [`Audiences`]: the audience is one `SELECT`
//! over `people` (`audience_query`), as in SQLite (see
//! `sqlite/audience.rs`). Counting and grouping by team run on it inside
//! the database, as writing a rollout's members does (`INSERT … SELECT`,
//! in `create_rollout`), so nothing crosses to Rust a person at a time.

use super::PgStore;
use super::audience_query::{push_audience, push_first_due, push_timed_audience, reached_before};
use crate::StoreError;
use crate::audience::*;
use sqlx::{Postgres, QueryBuilder, Row};
use std::collections::BTreeSet;

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
