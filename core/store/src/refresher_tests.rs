//! Refreshers (issue 19) in the store: an acknowledgement starts a
//! member's refreshers only in rollouts that have them; a cancelled
//! rollout starts none and stops those waiting; answers count once a try.

use super::tests::{Project, TestStore, newsletter_item};
use super::*;
use crate::both::on_both_stores;
use crate::evidence_tests::RawSql;

async fn with_rollouts<S: TestStore + Outbox>(store: S) -> Project<S> {
    let project = Project::directory_on(store).await;
    let store = &project.store;
    store
        .save_item(
            &newsletter_item("nl-neglect", "Neglect", "aaa111"),
            "source",
        )
        .await
        .unwrap();
    let member = |id: &str| NewMember {
        person_id: id.to_owned(),
        wave: 0,
        first_due_at: 1_000,
    };
    for (id, definition) in [
        ("with", r#"{"refreshers":[30,90]}"#),
        ("without", "{}"),
        ("cancelled", r#"{"refreshers":[30]}"#),
    ] {
        store
            .create_rollout(NewRollout {
                id,
                item_id: "nl-neglect",
                item_version: "aaa111",
                definition,
                members: &[member("p-1"), member("p-2")],
                audience: None,
                team_posts: &[],
                now: 0,
            })
            .await
            .unwrap();
    }
    project
}

fn ack(person: &str, at: i64) -> NewAcknowledgement {
    NewAcknowledgement {
        person_id: person.to_owned(),
        item_id: "nl-neglect".to_owned(),
        item_version: "aaa111".to_owned(),
        rollout_id: Some("with".to_owned()),
        delivery_id: None,
        channel: "web".to_owned(),
        method: AckMethod::Link,
        at,
    }
}

async fn due_at(store: &impl RawSql, rollout: &str, person: &str) -> Option<i64> {
    let due = store
        .texts(&format!(
            "SELECT coalesce(CAST(refresher_due_at AS TEXT), '-') FROM rollout_members
             WHERE rollout_id = '{rollout}' AND person_id = '{person}'"
        ))
        .await;
    assert_eq!(due.len(), 1, "{rollout} {person}");
    due[0].parse().ok()
}

async fn an_acknowledgement_starts_refreshers_only_where_a_running_rollout_has_them(
    store: impl TestStore + Outbox + Evidence + RawSql,
) {
    let project = with_rollouts(store).await;
    let store = &project.store;
    store
        .set_rollout_state("cancelled", RolloutState::Cancelled, 10)
        .await
        .unwrap();
    store.acknowledge_item(&ack("p-1", 5_000)).await.unwrap();
    assert_eq!(due_at(store, "with", "p-1").await, Some(5_000));
    assert_eq!(due_at(store, "without", "p-1").await, None);
    assert_eq!(due_at(store, "cancelled", "p-1").await, None);
    assert_eq!(due_at(store, "with", "p-2").await, None, "not acknowledged");
    let due: Vec<(String, String, u32, i64)> = store
        .due_refreshers(5_000, 10)
        .await
        .unwrap()
        .into_iter()
        .map(|d| {
            (
                d.rollout_id,
                d.person_id,
                d.refresher_next,
                d.acknowledged_at,
            )
        })
        .collect();
    assert_eq!(due, [("with".to_owned(), "p-1".to_owned(), 1, 5_000)]);
    assert!(store.due_refreshers(4_999, 10).await.unwrap().is_empty());

    // Cancelling a rollout stops the refreshers waiting in it.
    store
        .set_rollout_state("with", RolloutState::Cancelled, 6_000)
        .await
        .unwrap();
    assert_eq!(due_at(store, "with", "p-1").await, None);
}

on_both_stores!(an_acknowledgement_starts_refreshers_only_where_a_running_rollout_has_them);
