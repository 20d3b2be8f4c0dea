//! Typed queries over what the engine wrote, through the store's read-only
//! [`Inspect`] trait: tests compare rows and counts, never the tables.
//! Each panics if the store fails.

use cascade_model::rollout::StepKind;
use cascade_store::{DeliveryState, Inspect, OutboxRow};

/// Every outbox row, in the order queued.
pub async fn rows(store: &impl Inspect) -> Vec<OutboxRow> {
    store.outbox_rows().await.unwrap_or_else(|e| panic!("{e}"))
}

/// How many outbox rows of `kind` are in `state`.
pub async fn count(store: &impl Inspect, kind: StepKind, state: DeliveryState) -> usize {
    rows(store)
        .await
        .iter()
        .filter(|r| r.step_kind == kind && r.state == state)
        .count()
}

/// The id of the first outbox row to `recipient` that `matches`.
///
/// # Panics
/// If there is none.
pub async fn delivery_to(
    store: &impl Inspect,
    recipient: &str,
    matches: impl Fn(&OutboxRow) -> bool,
) -> i64 {
    rows(store)
        .await
        .into_iter()
        .find(|r| r.recipient_id == recipient && matches(r))
        .unwrap_or_else(|| panic!("no outbox row to {recipient} matches"))
        .id
}

/// How many acknowledgements are recorded.
pub async fn acknowledgements(store: &impl Inspect) -> usize {
    store
        .acknowledgements()
        .await
        .unwrap_or_else(|e| panic!("{e}"))
        .len()
}

/// Refused attempts counted, summed by reason, as (reason, count) by reason.
pub async fn refusals(store: &impl Inspect) -> Vec<(String, i64)> {
    let mut by_reason: Vec<(String, i64)> = Vec::new();
    for row in store
        .refusal_counts()
        .await
        .unwrap_or_else(|e| panic!("{e}"))
    {
        match by_reason.last_mut() {
            Some((reason, count)) if *reason == row.reason => *count += row.count,
            _ => by_reason.push((row.reason, row.count)),
        }
    }
    by_reason
}
