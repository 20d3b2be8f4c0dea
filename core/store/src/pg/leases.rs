//! Named leases (see [`crate::Leases`]) in PostgreSQL. The upsert takes the
//! row's lock, so two processes racing for a lease that ran out cannot both
//! get it.

use super::PgStore;
use crate::{Leases, StoreError};

impl Leases for PgStore {
    async fn hold_lease(
        &self,
        name: &str,
        owner: &str,
        now: i64,
        until: i64,
    ) -> Result<bool, StoreError> {
        let done = sqlx::query(
            "INSERT INTO leases (name, owner, until_ms) VALUES ($1, $2, $3)
             ON CONFLICT (name) DO UPDATE SET owner = excluded.owner, until_ms = excluded.until_ms
             WHERE leases.owner = excluded.owner OR leases.until_ms <= $4",
        )
        .bind(name)
        .bind(owner)
        .bind(until)
        .bind(now)
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    async fn let_go_lease(&self, name: &str, owner: &str) -> Result<(), StoreError> {
        sqlx::query("DELETE FROM leases WHERE name = $1 AND owner = $2")
            .bind(name)
            .bind(owner)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    async fn live_leases(
        &self,
        prefix: &str,
        now: i64,
    ) -> Result<Vec<(String, String)>, StoreError> {
        Ok(sqlx::query_as(
            "SELECT name, owner FROM leases
             WHERE left(name, length($1)) = $1 AND until_ms > $2 ORDER BY name COLLATE \"C\"",
        )
        .bind(prefix)
        .bind(now)
        .fetch_all(&self.pool)
        .await?)
    }
}
