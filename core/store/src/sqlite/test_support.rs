//! Test-only: methods that put the database in a state a test or bench
//! needs and no part of cascade ever writes itself. Compiled only with the
//! `test-support` feature (which the dev-only `cascade-test-support` crate
//! turns on) and for this crate's own tests; never call them from cascade.

use super::SqliteStore;
use crate::{NewMember, RolloutTotals, StoreError};
use sqlx::{QueryBuilder, Sqlite};

impl SqliteStore {
    /// Test-only: this store without the evidence chain, so a benchmark can
    /// measure what appending to it costs. Evidence recorded through it is
    /// not chained, and `verify` names it as inserted.
    pub fn without_evidence_chain(mut self) -> SqliteStore {
        self.chained = false;
        self
    }

    /// Test-only: chains every row of `kind` not chained yet, in time order
    /// (as the first open after an upgrade does), for benches that bulk-load
    /// evidence with SQL.
    pub async fn chain_unchained(&self, kind: &str) -> Result<(), StoreError> {
        let mut tx = self.writer.begin_with("BEGIN IMMEDIATE").await?;
        super::chain::chain_all(&mut tx, kind).await?;
        tx.commit().await?;
        Ok(())
    }
    /// Test-only: every rollout's totals counted from its member and outbox
    /// rows (two grouped scans), as the home page counted them before the
    /// totals were kept by triggers: the recount the kept totals are
    /// checked against, and the bench's baseline.
    pub async fn recount_rollout_totals(&self) -> Result<Vec<RolloutTotals>, StoreError> {
        Ok(sqlx::query_as(
            "SELECT r.id AS rollout_id, COALESCE(m.members, 0) AS members,
                    COALESCE(m.acknowledged, 0) AS acknowledged,
                    COALESCE(o.sent, 0) AS sent, COALESCE(o.dead, 0) AS dead
             FROM rollouts r
             LEFT JOIN (SELECT rollout_id, COUNT(*) AS members, COUNT(acknowledged_at) AS acknowledged
                        FROM rollout_members GROUP BY rollout_id) m ON m.rollout_id = r.id
             LEFT JOIN (SELECT rollout_id, SUM(state = 'sent') AS sent, SUM(state = 'dead') AS dead
                        FROM outbox GROUP BY rollout_id) o ON o.rollout_id = r.id
             ORDER BY r.id",
        )
        .fetch_all(&self.pool)
        .await?)
    }

    /// Test-only: keeps a link code as an older cascade kept it, as the
    /// plain SHA-256 `code_hash` of the code (`hash_kind` `sha256`), to show
    /// such codes still link after an upgrade.
    pub async fn insert_legacy_link_code(
        &self,
        code_hash: &str,
        person_id: &str,
        created_at: i64,
        expires_at: i64,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO link_codes (code_hash, hash_kind, person_id, created_at, expires_at)
             VALUES (?, 'sha256', ?, ?, ?)",
        )
        .bind(code_hash)
        .bind(person_id)
        .bind(created_at)
        .bind(expires_at)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Bench-only: the raw baseline a rollout's start is measured against.
    /// Writes `members` of the existing rollout `rollout_id` in one
    /// transaction of multi-row INSERTs of `per_insert` rows each, bound
    /// from memory, and nothing else.
    pub async fn bulk_insert_members(
        &self,
        rollout_id: &str,
        members: &[NewMember],
        per_insert: usize,
    ) -> Result<(), StoreError> {
        let mut tx = self.pool.begin().await?;
        for chunk in members.chunks(per_insert) {
            let mut insert: QueryBuilder<Sqlite> = QueryBuilder::new(
                "INSERT INTO rollout_members (rollout_id, person_id, wave, next_due_at) ",
            );
            insert.push_values(chunk, |mut row, m| {
                row.push_bind(rollout_id)
                    .push_bind(&m.person_id)
                    .push_bind(m.wave)
                    .push_bind(m.first_due_at);
            });
            insert.build().execute(&mut *tx).await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// Bench-only: the raw baseline a directory import is measured against.
    /// Writes `people` in one transaction of multi-row INSERTs of
    /// `per_insert` rows each, bound from memory: the `people` rows alone,
    /// or with `related` also their roles and email identities (the rows an
    /// import writes for them), and nothing else: no reading, no checks.
    pub async fn bulk_insert_people(
        &self,
        people: &[cascade_model::directory::Person],
        related: bool,
        per_insert: usize,
    ) -> Result<(), StoreError> {
        let now = chrono::Utc::now();
        let mut tx = self.pool.begin().await?;
        for chunk in people.chunks(per_insert) {
            let mut insert: QueryBuilder<Sqlite> = QueryBuilder::new(
                "INSERT INTO people (id, display_name, email, agency_id, team_id, manager_id, time_zone, mobile, works, absent_until, active, updated_at) ",
            );
            insert.push_values(chunk, |mut row, p| {
                row.push_bind(&p.id)
                    .push_bind(&p.display_name)
                    .push_bind(&p.email)
                    .push_bind(&p.agency_id)
                    .push_bind(&p.team_id)
                    .push_bind(&p.manager_id)
                    .push_bind(&p.time_zone)
                    .push_bind(&p.mobile)
                    .push_bind(&p.works)
                    .push_bind(p.absent_until.map(|d| d.to_string()))
                    .push("1")
                    .push_bind(now);
            });
            insert.build().execute(&mut *tx).await?;
            if !related {
                continue;
            }
            let roles: Vec<(&str, &str)> = chunk
                .iter()
                .flat_map(|p| p.roles.iter().map(|r| (p.id.as_str(), r.as_str())))
                .collect();
            let mut insert: QueryBuilder<Sqlite> =
                QueryBuilder::new("INSERT INTO person_roles (person_id, role) ");
            insert.push_values(&roles, |mut row, (person_id, role)| {
                row.push_bind(*person_id).push_bind(*role);
            });
            insert.build().execute(&mut *tx).await?;
            let mut insert: QueryBuilder<Sqlite> = QueryBuilder::new(
                "INSERT INTO channel_identities (person_id, channel, address, linked_at) ",
            );
            insert.push_values(chunk, |mut row, p| {
                row.push_bind(&p.id)
                    .push_bind("email")
                    .push_bind(&p.email)
                    .push_bind(now);
            });
            insert.build().execute(&mut *tx).await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// Bench-only: moves everything in the write-ahead log into the
    /// database file and empties the log, so the file alone can be copied.
    pub async fn checkpoint_wal(&self) -> Result<(), StoreError> {
        sqlx::query("PRAGMA wal_checkpoint(TRUNCATE)")
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Test-only: runs one statement with text parameters, as any writer
    /// of the database might (tests of triggers that must see every
    /// write, not only cascade's own); the number of rows it changed.
    pub async fn execute_sql(&self, sql: &str, binds: &[&str]) -> Result<u64, StoreError> {
        let mut query = sqlx::query(sql);
        for b in binds {
            query = query.bind(*b);
        }
        Ok(query.execute(&self.pool).await?.rows_affected())
    }

    /// Test-only: the first column of every row of a query, as text.
    pub async fn texts(&self, sql: &str) -> Result<Vec<String>, StoreError> {
        Ok(sqlx::query_scalar(sql).fetch_all(&self.pool).await?)
    }
}
