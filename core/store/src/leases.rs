//! Named leases: a row that says which process does a job only one may do
//! at a time (the Telegram long poll of a channel), or which processes are
//! alive (`serve:<owner>`, renewed by each `cascade serve` while it runs).
//! A lease is held until its time runs out; its holder renews it well
//! before then, and another process may take it only once it has run out.
//! Times are Unix milliseconds; both stores keep the same rules.

use super::StoreError;
use std::future::Future;

/// The lease name a running serve holds to say it is alive.
pub fn serve_lease(owner: &str) -> String {
    format!("{SERVE_LEASE_PREFIX}{owner}")
}

/// What every serve's liveness lease starts with.
pub const SERVE_LEASE_PREFIX: &str = "serve:";

/// The lease name of the long poll of channel instance `channel`: held by
/// the one process that polls the provider (Telegram's getUpdates) for it.
pub fn poll_lease(channel: &str) -> String {
    format!("{POLL_LEASE_PREFIX}{channel}")
}

/// What every long-poll lease starts with.
pub const POLL_LEASE_PREFIX: &str = "poll:";

/// Named leases with a holder and an end.
pub trait Leases: Send + Sync {
    /// Takes the lease `name` for `owner` until `until`, or renews it when
    /// `owner` holds it already. True when `owner` holds it afterwards:
    /// false while another owner's lease has not run out at `now`.
    fn hold_lease(
        &self,
        name: &str,
        owner: &str,
        now: i64,
        until: i64,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;

    /// Gives the lease up at once when `owner` holds it (a clean stop), so
    /// another process need not wait for it to run out.
    fn let_go_lease(
        &self,
        name: &str,
        owner: &str,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// The owners whose leases named `prefix...` have not run out at
    /// `now`, as (name, owner), by name.
    fn live_leases(
        &self,
        prefix: &str,
        now: i64,
    ) -> impl Future<Output = Result<Vec<(String, String)>, StoreError>> + Send;
}
