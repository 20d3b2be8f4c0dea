//! Channel states as `cascade serve` sees them, kept for `cascade status`
//! in another process: the same rows in both stores.

use super::StoreError;
use std::future::Future;

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

/// The channels' states, written by serve and read by status.
pub trait ChannelStates: Send + Sync {
    /// Writes the state of every configured channel, `None` meaning up and
    /// `Some(reason)` down; `since` moves only when the state or reason
    /// changes. Channels no longer configured are forgotten.
    fn save_channel_states(
        &self,
        states: &[(String, Option<String>)],
        now: i64,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// Every channel's last written state, by name.
    fn channel_states(
        &self,
    ) -> impl Future<Output = Result<Vec<ChannelStateRow>, StoreError>> + Send;
}
