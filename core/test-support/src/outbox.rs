//! Typed queries over what the engine wrote, through the store's read-only
//! [`Inspect`] trait: tests compare rows and counts, never the tables.
//! Each panics if the store fails.

use cascade_model::rollout::StepKind;
use cascade_store::{
    ClaimedDelivery, DeliveryOutcome, DeliveryState, Inspect, MemberAdvance, NewDelivery, Outbox,
    OutboxRow,
};

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

/// What the scheduler and dispatcher write for every member due at `at`,
/// without a plugin: their first message queued on `channel` (rank 0),
/// their steps ended, then each claimed and recorded with the outcome
/// `outcome` gives it. Returns how many were queued.
pub async fn send_first_messages(
    store: &impl Outbox,
    at: i64,
    channel: &str,
    outcome: impl Fn(&ClaimedDelivery) -> DeliveryOutcome,
) -> usize {
    fn fail<T>(e: cascade_store::StoreError) -> T {
        panic!("{e}")
    }
    let mut queued = 0;
    loop {
        let due = store.due_members(at, 5000).await.unwrap_or_else(fail);
        if due.is_empty() {
            break;
        }
        let deliveries: Vec<NewDelivery> = due
            .iter()
            .map(|m| NewDelivery {
                idempotency_key: format!("{}:{}:initial", m.rollout_id, m.person_id),
                rollout_id: m.rollout_id.clone(),
                person_id: m.person_id.clone(),
                recipient_id: m.person_id.clone(),
                wave: m.wave,
                step_kind: StepKind::Initial,
                step_number: 0,
                channel: channel.to_owned(),
                channel_rank: 0,
                due_at: at,
            })
            .collect();
        let advances: Vec<MemberAdvance> = due
            .iter()
            .map(|m| MemberAdvance {
                rollout_id: m.rollout_id.clone(),
                person_id: m.person_id.clone(),
                next_step: 1,
                next_due_at: None,
                shift_days: None,
            })
            .collect();
        store
            .materialise(&deliveries, &advances, at)
            .await
            .unwrap_or_else(fail);
        queued += deliveries.len();
    }
    loop {
        let claimed = store
            .claim(at, 5000, 60_000, &[])
            .await
            .unwrap_or_else(fail);
        if claimed.is_empty() {
            return queued;
        }
        let outcomes: Vec<(i64, DeliveryOutcome)> =
            claimed.iter().map(|c| (c.id, outcome(c))).collect();
        store.record(&outcomes, &[], at).await.unwrap_or_else(fail);
    }
}
