//! SQLite implementation of [`Inbox`]: the `inbox` and `plugin_state`
//! tables. An insert is one statement that ignores a second copy of the
//! same `(channel, event_id)`.

use super::SqliteStore;
use crate::StoreError;
use crate::inbox::*;

impl Inbox for SqliteStore {
    async fn inbox_insert(
        &self,
        channel: &str,
        event_id: &str,
        event: &str,
        now: i64,
    ) -> Result<bool, StoreError> {
        let inserted = sqlx::query(
            "INSERT INTO inbox (channel, event_id, event, received_at) VALUES (?1, ?2, ?3, ?4)
             ON CONFLICT (channel, event_id) DO NOTHING",
        )
        .bind(channel)
        .bind(event_id)
        .bind(event)
        .bind(now)
        .execute(&self.writer)
        .await?;
        Ok(inserted.rows_affected() == 1)
    }

    async fn inbox_is_handled(&self, channel: &str, event_id: &str) -> Result<bool, StoreError> {
        let found: Option<i64> = sqlx::query_scalar(
            "SELECT id FROM inbox WHERE channel = ?1 AND event_id = ?2 AND handled_at IS NOT NULL",
        )
        .bind(channel)
        .bind(event_id)
        .fetch_optional(&self.pool)
        .await?;
        Ok(found.is_some())
    }

    async fn inbox_handled(
        &self,
        channel: &str,
        event_id: &str,
        now: i64,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "UPDATE inbox SET handled_at = ?3 WHERE channel = ?1 AND event_id = ?2 AND handled_at IS NULL",
        )
        .bind(channel)
        .bind(event_id)
        .bind(now)
        .execute(&self.writer)
        .await?;
        Ok(())
    }

    async fn inbox_pending(&self) -> Result<Vec<InboxRow>, StoreError> {
        Ok(sqlx::query_as(
            "SELECT id, channel, event_id, event, received_at FROM inbox WHERE handled_at IS NULL ORDER BY id",
        )
        .fetch_all(&self.pool)
        .await?)
    }

    async fn inbox_sweep(&self, before: i64) -> Result<u64, StoreError> {
        Ok(
            sqlx::query("DELETE FROM inbox WHERE handled_at IS NOT NULL AND handled_at < ?1")
                .bind(before)
                .execute(&self.writer)
                .await?
                .rows_affected(),
        )
    }

    async fn state_get(
        &self,
        channel: &str,
        key: &str,
        now: i64,
    ) -> Result<Option<String>, StoreError> {
        Ok(sqlx::query_scalar(
            "SELECT value FROM plugin_state WHERE channel = ?1 AND key = ?2
               AND (expires_at IS NULL OR expires_at > ?3)",
        )
        .bind(channel)
        .bind(key)
        .bind(now)
        .fetch_optional(&self.pool)
        .await?)
    }

    async fn state_put(
        &self,
        channel: &str,
        key: &str,
        value: &str,
        expires_at: Option<i64>,
        now: i64,
    ) -> Result<(), StoreError> {
        let mut tx = self.writer.begin_with("BEGIN IMMEDIATE").await?;
        sqlx::query(
            "INSERT INTO plugin_state (channel, key, value, expires_at) VALUES (?1, ?2, ?3, ?4)
             ON CONFLICT (channel, key) DO UPDATE SET value = excluded.value, expires_at = excluded.expires_at",
        )
        .bind(channel)
        .bind(key)
        .bind(value)
        .bind(expires_at)
        .execute(&mut *tx)
        .await?;
        // A cheap sweep, bounded so no put waits long for it.
        sqlx::query(
            "DELETE FROM plugin_state WHERE rowid IN
               (SELECT rowid FROM plugin_state WHERE expires_at IS NOT NULL AND expires_at <= ?1 LIMIT 100)",
        )
        .bind(now)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }

    async fn state_delete(&self, channel: &str, key: &str) -> Result<(), StoreError> {
        sqlx::query("DELETE FROM plugin_state WHERE channel = ?1 AND key = ?2")
            .bind(channel)
            .bind(key)
            .execute(&self.writer)
            .await?;
        Ok(())
    }

    async fn state_list(
        &self,
        channel: &str,
        prefix: &str,
        now: i64,
    ) -> Result<Vec<(String, String)>, StoreError> {
        Ok(sqlx::query_as(
            "SELECT key, value FROM plugin_state WHERE channel = ?1
               AND substr(key, 1, length(?2)) = ?2
               AND (expires_at IS NULL OR expires_at > ?3) ORDER BY key",
        )
        .bind(channel)
        .bind(prefix)
        .bind(now)
        .fetch_all(&self.pool)
        .await?)
    }
}
