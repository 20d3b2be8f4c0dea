//! The inbox of inbound events and the plugins' state, on both stores.

use super::*;

async fn an_event_is_stored_once_and_pending_until_handled(store: impl Inbox) {
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

async fn state_is_namespaced_expires_and_is_swept(store: impl Inbox) {
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
    // The put at 200 swept b's expired row: not there even at a time
    // before it expired.
    assert_eq!(store.state_list("b", "", 0).await.unwrap(), []);
    store.state_delete("a", "posted:k").await.unwrap();
    assert_eq!(store.state_get("a", "posted:k", 300).await.unwrap(), None);
}

crate::both::on_both_stores!(
    an_event_is_stored_once_and_pending_until_handled,
    state_is_namespaced_expires_and_is_swept,
);
