//! Channel states as `cascade serve` sees them, kept for `cascade status`.

use super::SqliteStore;
use crate::{ChannelStateRow, ChannelStates, StoreError};

impl ChannelStates for SqliteStore {
    async fn save_channel_states(
        &self,
        states: &[(String, Option<String>)],
        now: i64,
    ) -> Result<(), StoreError> {
        let mut tx = self.writer.begin_with("BEGIN IMMEDIATE").await?;
        for (channel, reason) in states {
            sqlx::query(
                "INSERT INTO channel_states (channel, up, reason, since, seen_at) VALUES (?1, ?2, ?3, ?4, ?4)
                 ON CONFLICT (channel) DO UPDATE SET
                     since = CASE WHEN up = excluded.up AND reason IS excluded.reason THEN since ELSE excluded.since END,
                     up = excluded.up, reason = excluded.reason, seen_at = excluded.seen_at",
            )
            .bind(channel)
            .bind(reason.is_none())
            .bind(reason)
            .bind(now)
            .execute(&mut *tx)
            .await?;
        }
        let names = serde_json::to_string(&states.iter().map(|(c, _)| c).collect::<Vec<_>>())
            .expect("names serialise");
        sqlx::query(
            "DELETE FROM channel_states WHERE channel NOT IN (SELECT value FROM json_each(?))",
        )
        .bind(names)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }

    async fn channel_states(&self) -> Result<Vec<ChannelStateRow>, StoreError> {
        Ok(sqlx::query_as(
            "SELECT channel, up, reason, since, seen_at FROM channel_states ORDER BY channel",
        )
        .fetch_all(&self.pool)
        .await?)
    }
}
