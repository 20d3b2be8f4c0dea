//! The host's side of durable inbound and plugin state: what answers a
//! version-3 plugin's `call`. An event is written to the store's inbox
//! (once per channel and provider id) before the plugin may tell the
//! provider it arrived, and only then handed to the serve loop; the loop
//! marks it handled, and on start handles what a crash left unhandled.

use super::polls::PollTurns;
use cascade_plugin_api::{HostRequest, InboundEvent};
use cascade_plugin_host::{HostService, Inbound, ServiceFuture};
use cascade_store::Inbox;
use std::sync::Arc;
use tokio::sync::mpsc;

/// Answers plugins' requests from the store, and their asks for turns to
/// poll from `turns`.
pub struct InboxService<S> {
    pub store: Arc<S>,
    pub inbound: mpsc::UnboundedSender<Inbound>,
    pub turns: Arc<PollTurns>,
}

fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

/// An id for an event its plugin gave none: random, so it is never taken
/// for a redelivery.
fn host_made_id() -> String {
    let mut bytes = [0u8; 12];
    getrandom::fill(&mut bytes).expect("the operating system provides randomness");
    format!("host-{}", hex::encode(bytes))
}

/// Stores `event` from `instance` in the inbox; hands it on when it is
/// new, and says whether it was. A redelivery of a stored id (by the
/// provider, or to another serve sharing the store) is answered as stored
/// and handled where it was stored.
pub async fn record<S: Inbox>(
    store: &S,
    inbound: &mpsc::UnboundedSender<Inbound>,
    instance: &str,
    mut event: InboundEvent,
) -> Result<bool, String> {
    let event_id = event.event_id.get_or_insert_with(host_made_id).clone();
    let json = serde_json::to_string(&event).expect("inbound events are plain data");
    let new = store
        .inbox_insert(instance, &event_id, &json, now_ms())
        .await
        .map_err(|e| format!("the event could not be stored: {e}"))?;
    if new {
        let _ = inbound.send(Inbound {
            instance: instance.to_owned(),
            event,
        });
    } else {
        tracing::debug!(
            channel = instance,
            event_id,
            "a redelivered event, already stored"
        );
    }
    Ok(new)
}

impl<S: Inbox + 'static> HostService for InboxService<S> {
    fn call(&self, instance: String, request: HostRequest) -> ServiceFuture {
        let store = self.store.clone();
        let inbound = self.inbound.clone();
        let turns = self.turns.clone();
        Box::pin(async move {
            let failed = |e: cascade_store::StoreError| format!("the store failed: {e}");
            match request {
                HostRequest::EmitDurable { event } => {
                    let new = record(&*store, &inbound, &instance, event).await?;
                    Ok(serde_json::json!({ "new": new }))
                }
                HostRequest::StateGet { key } => {
                    let value = store
                        .state_get(&instance, &key, now_ms())
                        .await
                        .map_err(failed)?;
                    let value = value
                        .and_then(|v| serde_json::from_str::<serde_json::Value>(&v).ok())
                        .unwrap_or(serde_json::Value::Null);
                    Ok(serde_json::json!({ "value": value }))
                }
                HostRequest::StatePut {
                    key,
                    value,
                    ttl_secs,
                } => {
                    let now = now_ms();
                    let expires = ttl_secs.map(|s| {
                        now.saturating_add(
                            i64::try_from(s).unwrap_or(i64::MAX).saturating_mul(1000),
                        )
                    });
                    let json = serde_json::to_string(&value).expect("JSON values serialise");
                    store
                        .state_put(&instance, &key, &json, expires, now)
                        .await
                        .map_err(failed)?;
                    Ok(serde_json::json!({}))
                }
                HostRequest::StateDelete { key } => {
                    store.state_delete(&instance, &key).await.map_err(failed)?;
                    Ok(serde_json::json!({}))
                }
                HostRequest::MayPoll { wait_ms } => Ok(turns
                    .ask(&instance, std::time::Duration::from_millis(wait_ms))
                    .await),
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use cascade_plugin_api::InboundKind;
    use cascade_store::SqliteStore;

    fn press(event_id: Option<&str>) -> InboundEvent {
        InboundEvent {
            channel: "telegram".to_owned(),
            account: "7001".to_owned(),
            id: Some("q1".to_owned()),
            address: Some("7001".to_owned()),
            event_id: event_id.map(str::to_owned),
            kind: InboundKind::Action {
                action_id: "a".to_owned(),
                delivery_id: None,
            },
        }
    }

    #[tokio::test]
    async fn a_redelivered_event_is_stored_and_handed_on_once() {
        let store = SqliteStore::open_in_memory().await.unwrap();
        let (tx, mut rx) = mpsc::unbounded_channel();
        let first = record(&store, &tx, "telegram", press(Some("500001"))).await;
        let again = record(&store, &tx, "telegram", press(Some("500001"))).await;
        assert_eq!(
            (first, again),
            (Ok(true), Ok(false)),
            "new, then stored already"
        );
        assert_eq!(
            rx.recv().await.unwrap().event.event_id.as_deref(),
            Some("500001")
        );
        assert!(rx.try_recv().is_err(), "the redelivery was handed on");
        assert_eq!(store.inbox_pending().await.unwrap().len(), 1);
    }

    #[tokio::test]
    async fn an_event_without_an_id_gets_one_of_its_own() {
        let store = SqliteStore::open_in_memory().await.unwrap();
        let (tx, mut rx) = mpsc::unbounded_channel();
        record(&store, &tx, "telegram", press(None)).await.unwrap();
        record(&store, &tx, "telegram", press(None)).await.unwrap();
        let first = rx.recv().await.unwrap().event.event_id.unwrap();
        let second = rx.recv().await.unwrap().event.event_id.unwrap();
        assert!(
            first.starts_with("host-") && first != second,
            "{first} {second}"
        );
        assert_eq!(store.inbox_pending().await.unwrap().len(), 2);
    }
}
