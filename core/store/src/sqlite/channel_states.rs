//! Channel states as `cascade serve` sees them, kept for `cascade status`.

use super::SqliteStore;
use crate::StoreError;

/// One channel's state as serve last wrote it.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct ChannelStateRow {
    pub channel: String,
    pub up: bool,
    pub reason: Option<String>,
    /// Since when (Unix ms).
    pub since: i64,
    /// When serve last wrote it (Unix ms).
    pub seen_at: i64,
}

impl SqliteStore {
    /// Writes the state of every configured channel, `None` meaning up and
    /// `Some(reason)` down; `since` moves only when the state or reason
    /// changes. Channels no longer configured are forgotten.
    pub async fn save_channel_states(
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

    /// Every channel's last written state, by name.
    pub async fn channel_states(&self) -> Result<Vec<ChannelStateRow>, StoreError> {
        Ok(sqlx::query_as(
            "SELECT channel, up, reason, since, seen_at FROM channel_states ORDER BY channel",
        )
        .fetch_all(&self.pool)
        .await?)
    }
}
