//! Channel states as `cascade serve` sees them, kept for `cascade status`
//! (PostgreSQL; the same methods as `SqliteStore`'s).

use super::PgStore;
use crate::{ChannelStateRow, ChannelStates, StoreError};

impl ChannelStates for PgStore {
    async fn save_channel_states(
        &self,
        states: &[(String, Option<String>)],
        now: i64,
    ) -> Result<(), StoreError> {
        let mut tx = self.pool.begin().await?;
        for (channel, reason) in states {
            sqlx::query(
                "INSERT INTO channel_states (channel, up, reason, since, seen_at)
                 VALUES ($1, $2, $3, $4, $4)
                 ON CONFLICT (channel) DO UPDATE SET
                     since = CASE WHEN channel_states.up = excluded.up
                                   AND channel_states.reason IS NOT DISTINCT FROM excluded.reason
                              THEN channel_states.since ELSE excluded.since END,
                     up = excluded.up, reason = excluded.reason, seen_at = excluded.seen_at",
            )
            .bind(channel)
            .bind(i64::from(reason.is_none()))
            .bind(reason)
            .bind(now)
            .execute(&mut *tx)
            .await?;
        }
        let names: Vec<&str> = states.iter().map(|(c, _)| c.as_str()).collect();
        sqlx::query("DELETE FROM channel_states WHERE channel <> ALL($1)")
            .bind(names)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(())
    }

    async fn channel_states(&self) -> Result<Vec<ChannelStateRow>, StoreError> {
        Ok(sqlx::query_as(
            "SELECT channel, (up <> 0) AS up, reason, since, seen_at FROM channel_states
             ORDER BY channel COLLATE \"C\"",
        )
        .fetch_all(&self.pool)
        .await?)
    }
}
