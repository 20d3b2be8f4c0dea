//! Named leases (see [`crate::Leases`]) in SQLite.

use super::SqliteStore;
use crate::{Leases, StoreError};

impl Leases for SqliteStore {
    async fn hold_lease(
        &self,
        name: &str,
        owner: &str,
        now: i64,
        until: i64,
    ) -> Result<bool, StoreError> {
        let done = sqlx::query(
            "INSERT INTO leases (name, owner, until_ms) VALUES (?1, ?2, ?3)
             ON CONFLICT (name) DO UPDATE SET owner = excluded.owner, until_ms = excluded.until_ms
             WHERE leases.owner = excluded.owner OR leases.until_ms <= ?4",
        )
        .bind(name)
        .bind(owner)
        .bind(until)
        .bind(now)
        .execute(&self.writer)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    async fn let_go_lease(&self, name: &str, owner: &str) -> Result<(), StoreError> {
        sqlx::query("DELETE FROM leases WHERE name = ?1 AND owner = ?2")
            .bind(name)
            .bind(owner)
            .execute(&self.writer)
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
             WHERE substr(name, 1, length(?1)) = ?1 AND until_ms > ?2 ORDER BY name",
        )
        .bind(prefix)
        .bind(now)
        .fetch_all(&self.pool)
        .await?)
    }
}
