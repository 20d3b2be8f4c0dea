//! `Bulletins` on both stores: an issue's occurrence writes its item
//! version and rollout with it, states move as a rollout's do, and two
//! serves making the same occurrence at once make it once.

use super::*;
use crate::tests::newsletter_item;

fn member(id: &str) -> NewMember {
    NewMember {
        person_id: id.to_owned(),
        wave: 0,
        first_due_at: 5_000,
    }
}

/// The occurrence at `at` with an issue of item `nl-<at>`, rollout `weekly-<at>`.
async fn record_issue<S: Bulletins>(store: &S, at: i64) -> Result<bool, StoreError> {
    let item = newsletter_item(&format!("nl-{at}"), "Issue", "v1");
    let items = [(item.id.clone(), "v1".to_owned())];
    let rollout_id = format!("weekly-{at}");
    let members = [member("p-1"), member("p-2")];
    store
        .record_occurrence(NewOccurrence {
            bulletin_id: "weekly",
            occurrence_at: at,
            items: &items,
            issue: Some(NewIssue {
                item: &item,
                source: "the issue's source",
                rollout: NewRollout {
                    id: &rollout_id,
                    item_id: &item.id,
                    item_version: "v1",
                    definition: "{\"bulletin\":true}",
                    members: &members,
                    audience: None,
                    team_posts: &[],
                    now: at + 1,
                },
            }),
            now: at + 1,
        })
        .await
}

async fn an_issue_is_recorded_with_its_item_and_rollout(store: impl Store + Outbox + Bulletins) {
    assert!(store.start_bulletin("weekly", "{}", &[], 1).await.unwrap());
    assert!(store.start_bulletin("monthly", "{}", &[], 0).await.unwrap());
    assert!(record_issue(&store, 300).await.unwrap());
    assert!(!record_issue(&store, 300).await.unwrap(), "made once");
    // An earlier occurrence made late leaves the latest as it was.
    assert!(record_issue(&store, 200).await.unwrap());

    let made: Vec<(i64, Option<String>, u32, i64)> = store
        .occurrences("weekly")
        .await
        .unwrap()
        .into_iter()
        .map(|o| (o.occurrence_at, o.rollout_id, o.items, o.made_at))
        .collect();
    assert_eq!(
        made,
        [
            (200, Some("weekly-200".to_owned()), 1, 201),
            (300, Some("weekly-300".to_owned()), 1, 301),
        ]
    );
    let rollout = store.rollout("weekly-300").await.unwrap().unwrap();
    assert_eq!(
        (rollout.item_id.as_str(), rollout.state, rollout.created_at),
        ("nl-300", RolloutState::Active, 301)
    );
    let item = store.latest_item("nl-300").await.unwrap().unwrap();
    assert_eq!(item.source, "the issue's source");
    assert_eq!(
        store.bulletin_items("weekly").await.unwrap(),
        ["nl-200", "nl-300"]
    );

    let weekly = store.bulletin("weekly").await.unwrap().unwrap();
    assert_eq!(
        (weekly.state, weekly.started_at, weekly.last_occurrence_at),
        (RolloutState::Active, 1, Some(300))
    );
    assert_eq!(weekly.definition, "{}");
    let all: Vec<(String, Option<i64>)> = store
        .bulletins()
        .await
        .unwrap()
        .into_iter()
        .map(|b| (b.id, b.last_occurrence_at))
        .collect();
    assert_eq!(
        all,
        [
            ("monthly".to_owned(), None),
            ("weekly".to_owned(), Some(300))
        ]
    );
    assert!(store.bulletin("yearly").await.unwrap().is_none());

    // A bulletin's id is not a rollout's.
    assert!(
        !store
            .start_bulletin("weekly-300", "{}", &[], 2)
            .await
            .unwrap()
    );

    assert!(
        store
            .set_bulletin_state("weekly", RolloutState::Paused)
            .await
            .unwrap()
    );
    assert!(
        store
            .set_bulletin_state("weekly", RolloutState::Cancelled)
            .await
            .unwrap()
    );
    assert!(
        !store
            .set_bulletin_state("weekly", RolloutState::Active)
            .await
            .unwrap(),
        "a cancelled bulletin stays cancelled"
    );
    assert!(
        !store
            .set_bulletin_state("yearly", RolloutState::Paused)
            .await
            .unwrap()
    );
    assert_eq!(
        store.bulletin("weekly").await.unwrap().unwrap().state,
        RolloutState::Cancelled
    );
}

async fn two_serves_making_one_occurrence_make_it_once(
    store: impl Store + Outbox + Bulletins + Clone,
) {
    assert!(store.start_bulletin("weekly", "{}", &[], 1).await.unwrap());
    for at in [100, 200, 300] {
        // Two handles on the store, as two serves have: each writes on a
        // connection of its own.
        let (a, b) = (store.clone(), store.clone());
        let (a, b) = tokio::join!(record_issue(&a, at), record_issue(&b, at));
        let made = [a.unwrap(), b.unwrap()];
        assert_eq!(
            made.iter().filter(|m| **m).count(),
            1,
            "one of {made:?} makes it"
        );
    }
    assert_eq!(store.occurrences("weekly").await.unwrap().len(), 3);
    assert_eq!(store.rollouts().await.unwrap().len(), 3);
}

both::on_both_stores!(
    an_issue_is_recorded_with_its_item_and_rollout,
    two_serves_making_one_occurrence_make_it_once,
);
