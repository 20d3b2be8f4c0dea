//! Check answers (issue 19): answers in progress counted once per try,
//! taken as evidence by the acknowledgement's own transaction, chained,
//! and raising the stamps of kept reports.

use super::tests::{Project, TestStore, newsletter_item};
use super::*;
use crate::both::on_both_stores;
use crate::evidence_tests::RawSql;

fn attempt(person: &str, question: u32, chosen: u32, right: bool, seen: u32) -> CheckAttempt {
    CheckAttempt {
        person_id: person.to_owned(),
        item_id: "nl-neglect".to_owned(),
        item_version: "aaa111".to_owned(),
        question,
        question_digest: format!("digest-{question}"),
        chosen,
        right,
        seen,
        at: 5_000 + i64::from(seen),
    }
}

fn ack(person: &str, at: i64) -> NewAcknowledgement {
    NewAcknowledgement {
        person_id: person.to_owned(),
        item_id: "nl-neglect".to_owned(),
        item_version: "aaa111".to_owned(),
        rollout_id: Some("r-1".to_owned()),
        delivery_id: None,
        channel: "telegram".to_owned(),
        method: AckMethod::Button,
        at,
    }
}

async fn with_rollout<S: TestStore + Outbox>(store: S) -> Project<S> {
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
    store
        .create_rollout(NewRollout {
            id: "r-1",
            item_id: "nl-neglect",
            item_version: "aaa111",
            definition: "{}",
            members: &[member("p-1"), member("p-2")],
            audience: None,
            team_posts: &[],
            now: 0,
        })
        .await
        .unwrap();
    project
}

async fn each_try_counts_once_and_the_acknowledgement_takes_the_answers_as_evidence(
    store: impl TestStore + Outbox + Evidence + EvidenceChain + Reports + RawSql,
) {
    let project = with_rollout(store).await;
    let store = &project.store;
    // Question 1 wrong, then the same press handled again: one try.
    assert_eq!(
        store
            .record_check_attempts(&[attempt("p-1", 1, 2, false, 0)])
            .await
            .unwrap(),
        1
    );
    assert_eq!(
        store
            .record_check_attempts(&[attempt("p-1", 1, 2, false, 0)])
            .await
            .unwrap(),
        0,
        "a press handled twice counted twice"
    );
    // Then right, and question 2 right first time, in one go; again: nothing.
    let right = [attempt("p-1", 1, 1, true, 1), attempt("p-1", 2, 3, true, 0)];
    assert_eq!(store.record_check_attempts(&right).await.unwrap(), 2);
    assert_eq!(store.record_check_attempts(&right).await.unwrap(), 0);
    // Another person: wrong only, not yet acknowledged.
    store
        .record_check_attempts(&[attempt("p-2", 1, 3, false, 0)])
        .await
        .unwrap();

    let before = store.report_stamps(&["r-1".to_owned()]).await.unwrap();
    let progress = store
        .check_progress("p-1", "nl-neglect", "aaa111")
        .await
        .unwrap();
    assert_eq!(progress.acknowledged_at, None);
    let q1 = progress.answer(1, "digest-1").unwrap();
    assert_eq!(
        (
            q1.first_answer,
            q1.right_first_time,
            q1.attempts,
            q1.answered_at
        ),
        (2, false, 2, Some(5_001))
    );
    assert_eq!(q1.acknowledgement_id, None);

    assert_eq!(
        store.acknowledge_item(&ack("p-1", 6_000)).await.unwrap(),
        AckOutcome::Recorded
    );
    let after = store.report_stamps(&["r-1".to_owned()]).await.unwrap();
    assert_ne!(before, after, "kept reports were not told");
    let progress = store
        .check_progress("p-1", "nl-neglect", "aaa111")
        .await
        .unwrap();
    assert_eq!(progress.acknowledged_at, Some(6_000));
    let ack_id = progress.answers[0].acknowledgement_id;
    assert!(ack_id.is_some());
    assert!(
        progress
            .answers
            .iter()
            .all(|a| a.acknowledgement_id == ack_id)
    );
    let q2 = progress.answer(2, "digest-2").unwrap();
    assert_eq!(
        (q2.first_answer, q2.right_first_time, q2.attempts),
        (3, true, 1)
    );
    // Recorded answers no longer change.
    assert_eq!(
        store
            .record_check_attempts(&[attempt("p-1", 1, 2, false, 2)])
            .await
            .unwrap(),
        0
    );
    // The other person's answer in progress is not theirs to take.
    let other = store
        .check_progress("p-2", "nl-neglect", "aaa111")
        .await
        .unwrap();
    assert_eq!(other.answers[0].acknowledgement_id, None);

    // Each recorded answer is a link after its acknowledgement's, and the
    // chain verifies.
    let kinds = store
        .texts("SELECT kind FROM evidence_chain ORDER BY seq")
        .await;
    assert_eq!(
        kinds,
        ["acknowledgement", "check-answer", "check-answer"],
        "{kinds:?}"
    );
    let report = store.verify_chain().await.unwrap();
    assert!(report.problems.is_empty(), "{:?}", report.problems);
    // An edit to a recorded answer shows.
    store
        .exec("UPDATE check_answers SET right_first_time = 1 WHERE question = 1 AND person_id = 'p-1'")
        .await;
    let report = store.verify_chain().await.unwrap();
    assert!(!report.problems.is_empty(), "an edited answer went unseen");
}

async fn an_acknowledgement_in_a_group_takes_only_its_own_answers(
    store: impl TestStore + Outbox + Evidence + RawSql,
) {
    let project = with_rollout(store).await;
    let store = &project.store;
    store
        .record_check_attempts(&[attempt("p-1", 1, 1, true, 0), attempt("p-2", 1, 1, true, 0)])
        .await
        .unwrap();
    store
        .acknowledge_items(&[ack("p-1", 6_000), ack("p-1", 6_001)])
        .await
        .unwrap();
    let ids = store
        .texts(
            "SELECT person_id || ':' || coalesce(CAST(acknowledgement_id AS TEXT), '-')
             FROM check_answers ORDER BY person_id",
        )
        .await;
    assert!(
        ids[0].starts_with("p-1:") && !ids[0].ends_with('-'),
        "{ids:?}"
    );
    assert_eq!(ids[1], "p-2:-");
}

on_both_stores!(
    each_try_counts_once_and_the_acknowledgement_takes_the_answers_as_evidence,
    an_acknowledgement_in_a_group_takes_only_its_own_answers,
);
