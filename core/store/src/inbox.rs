//! The durable-inbound side of the store: the inbox of inbound events,
//! written before a provider is told an event arrived and marked once it
//! is handled, and the small key-value state channel instances keep
//! across restarts. Times are Unix milliseconds (UTC).

use super::StoreError;
use std::future::Future;

/// An inbox row not yet handled.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct InboxRow {
    pub id: i64,
    pub channel: String,
    pub event_id: String,
    /// The event as the plugin's JSON.
    pub event: String,
    pub received_at: i64,
}

pub trait Inbox: Send + Sync {
    /// Writes an event to the inbox unless `(channel, event_id)` is there
    /// already; true when it was new. Durable when it returns.
    fn inbox_insert(
        &self,
        channel: &str,
        event_id: &str,
        event: &str,
        now: i64,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;

    /// Whether `(channel, event_id)` is in the inbox and already handled
    /// (false for an event not in the inbox: one a plugin did not store).
    fn inbox_is_handled(
        &self,
        channel: &str,
        event_id: &str,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;

    /// Marks `(channel, event_id)` handled (nothing if it is not there).
    fn inbox_handled(
        &self,
        channel: &str,
        event_id: &str,
        now: i64,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// The rows not yet handled, oldest first.
    fn inbox_pending(&self) -> impl Future<Output = Result<Vec<InboxRow>, StoreError>> + Send;

    /// Forgets handled rows older than `before`; returns how many.
    fn inbox_sweep(&self, before: i64) -> impl Future<Output = Result<u64, StoreError>> + Send;

    /// The JSON kept under `key` for `channel`, unless it expired by `now`.
    fn state_get(
        &self,
        channel: &str,
        key: &str,
        now: i64,
    ) -> impl Future<Output = Result<Option<String>, StoreError>> + Send;

    /// Keeps `value` (JSON) under `key` for `channel` until `expires_at`
    /// (`None`: until deleted), replacing what was there. Sweeps expired
    /// rows now and then.
    fn state_put(
        &self,
        channel: &str,
        key: &str,
        value: &str,
        expires_at: Option<i64>,
        now: i64,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    fn state_delete(
        &self,
        channel: &str,
        key: &str,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// Every unexpired `(key, value)` of `channel` whose key starts with
    /// `prefix`.
    fn state_list(
        &self,
        channel: &str,
        prefix: &str,
        now: i64,
    ) -> impl Future<Output = Result<Vec<(String, String)>, StoreError>> + Send;
}
