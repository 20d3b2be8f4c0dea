//! Refreshers (issue 19) in the store: an acknowledgement starts a
//! member's refreshers only in rollouts that have them; a cancelled
//! rollout starts none and stops those waiting; answers count once a try.

use super::tests::{Project, newsletter_item};
use super::*;

async fn with_rollouts() -> Project {
    let project = Project::with_directory().await;
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

async fn due_at(store: &SqliteStore, rollout: &str, person: &str) -> Option<i64> {
    store
        .members(rollout)
        .await
        .unwrap()
        .into_iter()
        .find(|m| m.person_id == person)
        .unwrap()
        .refresher_due_at
}

#[tokio::test]
async fn an_acknowledgement_starts_refreshers_only_where_a_running_rollout_has_them() {
    let project = with_rollouts().await;
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
