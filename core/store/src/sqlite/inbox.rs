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

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn an_event_is_stored_once_and_pending_until_handled() {
        let store = SqliteStore::open_in_memory().await.unwrap();
        assert!(
            store
                .inbox_insert("telegram", "u1", "{}", 10)
                .await
                .unwrap()
        );
        assert!(
            !store
                .inbox_insert("telegram", "u1", "{\"again\":1}", 11)
                .await
                .unwrap()
        );
        // The same id on another channel is another event.
        assert!(store.inbox_insert("discord", "u1", "{}", 12).await.unwrap());
        let pending = store.inbox_pending().await.unwrap();
        assert_eq!(
            pending
                .iter()
                .map(|r| (r.channel.as_str(), r.event_id.as_str(), r.event.as_str()))
                .collect::<Vec<_>>(),
            [("telegram", "u1", "{}"), ("discord", "u1", "{}")]
        );
        assert!(!store.inbox_is_handled("telegram", "u1").await.unwrap());
        store.inbox_handled("telegram", "u1", 20).await.unwrap();
        assert!(store.inbox_is_handled("telegram", "u1").await.unwrap());
        assert!(
            !store
                .inbox_is_handled("telegram", "never-stored")
                .await
                .unwrap()
        );
        assert_eq!(store.inbox_pending().await.unwrap().len(), 1);
        // A redelivery after handling is still a duplicate.
        assert!(
            !store
                .inbox_insert("telegram", "u1", "{}", 30)
                .await
                .unwrap()
        );
        assert_eq!(store.inbox_sweep(21).await.unwrap(), 1);
        assert_eq!(store.inbox_sweep(21).await.unwrap(), 0);
    }

    #[tokio::test]
    async fn state_is_namespaced_expires_and_is_swept() {
        let store = SqliteStore::open_in_memory().await.unwrap();
        store
            .state_put("a", "posted:k", "[1]", None, 0)
            .await
            .unwrap();
        store
            .state_put("b", "posted:k", "[2]", Some(100), 0)
            .await
            .unwrap();
        assert_eq!(
            store
                .state_get("a", "posted:k", 50)
                .await
                .unwrap()
                .as_deref(),
            Some("[1]")
        );
        assert_eq!(
            store
                .state_get("b", "posted:k", 50)
                .await
                .unwrap()
                .as_deref(),
            Some("[2]")
        );
        assert_eq!(store.state_get("b", "posted:k", 100).await.unwrap(), None);
        store
            .state_put("a", "posted:k", "[1,3]", None, 200)
            .await
            .unwrap();
        store
            .state_put("a", "form:x", "{}", None, 200)
            .await
            .unwrap();
        assert_eq!(
            store.state_list("a", "posted:", 200).await.unwrap(),
            [("posted:k".to_owned(), "[1,3]".to_owned())]
        );
        // The put at 200 swept b's expired row.
        let left: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM plugin_state WHERE channel = 'b'")
            .fetch_one(&store.pool)
            .await
            .unwrap();
        assert_eq!(left, 0);
        store.state_delete("a", "posted:k").await.unwrap();
        assert_eq!(store.state_get("a", "posted:k", 300).await.unwrap(), None);
    }
}
