//! Wake-ups for an idle serve: when work next falls due, on both stores;
//! on PostgreSQL, a waiter woken by what another connection writes (and
//! not by what an idle serve does); on SQLite, by its own process's writes.

use super::tests::{TestStore, newsletter_item};
use super::*;
use crate::both;
use crate::pg::{PgSettings, PgStore};
use cascade_model::rollout::StepKind;
use std::future::Future;
use std::time::{Duration, Instant};

fn delivery(person: &str, n: u32, due_at: i64) -> NewDelivery {
    NewDelivery {
        idempotency_key: format!("r-1/{person}/reminder-{n}/email"),
        rollout_id: "r-1".to_owned(),
        person_id: person.to_owned(),
        recipient_id: person.to_owned(),
        wave: 0,
        step_kind: StepKind::Reminder,
        step_number: n,
        channel: "email".to_owned(),
        channel_rank: 0,
        due_at,
    }
}

/// The rollout `r-1` of `nl-1` to `p-0` (first send at 1,000 ms) and
/// `p-1` (1,001 ms), with a team post due at 1,500 ms.
async fn rollout<S: Store + Outbox>(store: &S) {
    store
        .save_item(&newsletter_item("nl-1", "Neglect", "v1"), "source")
        .await
        .unwrap();
    let members: Vec<NewMember> = (0..2)
        .map(|i| NewMember {
            person_id: format!("p-{i}"),
            wave: 0,
            first_due_at: 1_000 + i64::from(i),
        })
        .collect();
    store
        .create_rollout(NewRollout {
            id: "r-1",
            item_id: "nl-1",
            item_version: "v1",
            definition: "{}",
            members: &members,
            audience: None,
            team_posts: &[NewTeamPost {
                team_id: "t-1".to_owned(),
                channel: "discord".to_owned(),
                address: "301".to_owned(),
                due_at: 1_500,
            }],
            now: 7,
        })
        .await
        .unwrap();
}

/// The team post of [`rollout`] posted at 1,500 ms, showing `acknowledged`
/// of 2, its next edit at 4,500 ms (written as the dispatcher records a
/// post).
async fn posted(store: &impl TestStore, acknowledged: u32) {
    store
        .execute(&format!(
            "UPDATE team_posts SET state = 'sent', provider_id = 'm-1', shown_acknowledged = {acknowledged},
                 shown_total = 2, edit_due_at = 4500, sent_at = 1500, lease_until = NULL
             WHERE rollout_id = 'r-1'"
        ))
        .await;
}

fn advance(person: &str, next_due_at: Option<i64>) -> MemberAdvance {
    MemberAdvance {
        rollout_id: "r-1".to_owned(),
        person_id: person.to_owned(),
        next_step: 1,
        next_due_at,
        shift_days: None,
    }
}

async fn the_next_due_time_is_the_earliest_work_of_active_rollouts(
    store: impl TestStore + Outbox + Wakeups,
) {
    assert_eq!(store.next_due_at(0).await.unwrap(), None);
    rollout(&store).await;
    // The members' first steps.
    assert_eq!(store.next_due_at(0).await.unwrap(), Some(1_000));
    store
        .materialise(
            &[delivery("p-0", 1, 5_000), delivery("p-1", 1, 6_000)],
            &[advance("p-0", Some(9_000)), advance("p-1", None)],
            1_001,
        )
        .await
        .unwrap();
    // The team post, then the rows queued.
    assert_eq!(store.next_due_at(1_001).await.unwrap(), Some(1_500));
    posted(&store, 0).await;
    // The post's next edit, while its count may still change.
    assert_eq!(store.next_due_at(1_500).await.unwrap(), Some(4_500));
    // Past it, an edit waits for an acknowledgement, not for a time.
    assert_eq!(store.next_due_at(4_500).await.unwrap(), Some(5_000));
    // Leased rows are not waited for; a retry is.
    let claimed = store.claim(5_000, 10, 60_000, &[]).await.unwrap();
    assert_eq!(claimed.len(), 1);
    assert_eq!(store.next_due_at(5_000).await.unwrap(), Some(6_000));
    store
        .record(
            &[(
                claimed[0].id,
                DeliveryOutcome::RetryAt {
                    at: 5_500,
                    reason: "busy".to_owned(),
                },
            )],
            &[],
            5_000,
        )
        .await
        .unwrap();
    assert_eq!(store.next_due_at(5_000).await.unwrap(), Some(5_500));
    // Work due and not taken reads as due.
    assert_eq!(store.next_due_at(7_000).await.unwrap(), Some(5_500));
    // A paused rollout's work is not waited for.
    store
        .set_rollout_state("r-1", RolloutState::Paused, 7_000)
        .await
        .unwrap();
    assert_eq!(store.next_due_at(7_000).await.unwrap(), None);
    store
        .set_rollout_state("r-1", RolloutState::Active, 7_001)
        .await
        .unwrap();
    assert_eq!(store.next_due_at(7_001).await.unwrap(), Some(5_500));
    // Sent and cancelled, only the member's next step is left.
    let claimed = store.claim(7_001, 10, 60_000, &[]).await.unwrap();
    let sent: Vec<_> = claimed
        .iter()
        .map(|c| (c.id, DeliveryOutcome::Sent { provider_id: None }))
        .collect();
    store.record(&sent, &[], 7_002).await.unwrap();
    assert_eq!(store.next_due_at(7_002).await.unwrap(), Some(9_000));
    store
        .set_rollout_state("r-1", RolloutState::Cancelled, 7_003)
        .await
        .unwrap();
    assert_eq!(store.next_due_at(7_003).await.unwrap(), None);
}

both::on_both_stores!(the_next_due_time_is_the_earliest_work_of_active_rollouts);

/// Waits on `store` in the background: the time its wait took, once it
/// ends.
fn waiting<S: Wakeups + Clone + 'static>(
    store: &S,
    at_most: Duration,
) -> tokio::task::JoinHandle<(Wake, Duration)> {
    let store = store.clone();
    tokio::spawn(async move {
        let started = Instant::now();
        let wake = store.wait_for_work(at_most).await;
        (wake, started.elapsed())
    })
}

/// How long a wake-up may take to reach a waiter on this machine.
const PROMPTLY: Duration = Duration::from_secs(2);

/// Waits for `store`'s listener to be listening.
async fn listening(store: &PgStore) {
    let started = Instant::now();
    while !store.hears_other_writers() {
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "the listener never listened"
        );
        store.wait_for_work(Duration::from_millis(20)).await;
    }
}

/// Two stores on one new database, as two processes have.
async fn two_processes() -> (PgStore, PgStore) {
    let url = pg::test_server::TestPostgres::shared()
        .unwrap_or_else(|e| panic!("{e}"))
        .new_database()
        .await
        .unwrap();
    let a = PgStore::connect(&PgSettings::new(&url)).await.unwrap();
    let b = PgStore::connect(&PgSettings::new(&url)).await.unwrap();
    (a, b)
}

/// Whether a waiter on `waiter` that has waited a while is woken promptly
/// by `write` (on another connection): it must not have woken before.
async fn woken_by<F: Future<Output = ()>>(waiter: &PgStore, write: F) -> bool {
    // What was written before has reached the waiter.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let wait = waiting(waiter, Duration::from_secs(60));
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(!wait.is_finished(), "woken with nothing written");
    let written = Instant::now();
    write.await;
    let abort = wait.abort_handle();
    match tokio::time::timeout(PROMPTLY, wait).await {
        Ok(woke) => {
            let (wake, _) = woke.unwrap();
            assert_eq!(wake, Wake::Work);
            assert!(written.elapsed() < PROMPTLY);
            true
        }
        Err(_) => {
            abort.abort();
            false
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_waiting_serve_wakes_when_another_process_queues_rows_and_not_before() {
    let (idle, other) = two_processes().await;
    assert!(!idle.hears_other_writers(), "no listener before a wait");
    listening(&idle).await;

    // Nothing written: the wait runs its length (and longer waits do not
    // end early either).
    let started = Instant::now();
    let wake = idle.wait_for_work(Duration::from_millis(500)).await;
    let took = started.elapsed();
    assert_eq!(wake, Wake::TimedOut);
    assert!(took >= Duration::from_millis(500), "{took:?}");
    let long = waiting(&idle, Duration::from_secs(60));
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert!(!long.is_finished(), "woken with nothing written");

    // The other process starts a rollout: its members wake the waiter.
    let written = Instant::now();
    rollout(&other).await;
    let (wake, _) = tokio::time::timeout(PROMPTLY, long)
        .await
        .expect("woken promptly")
        .unwrap();
    assert_eq!(wake, Wake::Work);
    assert!(written.elapsed() < PROMPTLY, "{:?}", written.elapsed());

    // It queues rows.
    assert!(
        woken_by(&idle, async {
            other
                .materialise(
                    &[delivery("p-0", 1, 5_000), delivery("p-1", 1, 5_000)],
                    &[advance("p-0", Some(90_000)), advance("p-1", None)],
                    5_000,
                )
                .await
                .unwrap();
        })
        .await
    );
    // A claim leaves nothing due: no wake-up.
    let claimed = std::sync::Mutex::new(Vec::new());
    assert!(
        !woken_by(&idle, async {
            *claimed.lock().unwrap() = other.claim(5_000, 10, 60_000, &[]).await.unwrap();
        })
        .await
    );
    let claimed = claimed.into_inner().unwrap();
    assert_eq!(claimed.len(), 2);
    // Taken back from a serve that stopped: they may be claimed at once.
    assert!(
        woken_by(&idle, async {
            assert_eq!(other.take_back_leases(5_000, &[]).await.unwrap(), 2);
        })
        .await
    );
    // Nor does sending them.
    assert!(
        !woken_by(&idle, async {
            other
                .record(
                    &[(claimed[0].id, DeliveryOutcome::Sent { provider_id: None })],
                    &[],
                    5_001,
                )
                .await
                .unwrap();
        })
        .await
    );
    // A retry does (it is due again, later).
    assert!(
        woken_by(&idle, async {
            other
                .record(
                    &[(
                        claimed[1].id,
                        DeliveryOutcome::RetryAt {
                            at: 6_000,
                            reason: "busy".to_owned(),
                        },
                    )],
                    &[],
                    5_001,
                )
                .await
                .unwrap();
        })
        .await
    );
    // Paused and resumed: resuming wakes it, pausing does not.
    assert!(
        !woken_by(&idle, async {
            other
                .set_rollout_state("r-1", RolloutState::Paused, 5_002)
                .await
                .unwrap();
        })
        .await
    );
    assert!(
        woken_by(&idle, async {
            other
                .set_rollout_state("r-1", RolloutState::Active, 5_003)
                .await
                .unwrap();
        })
        .await
    );
    // What an idle serve does when nothing is due wakes nobody.
    assert!(
        !woken_by(&idle, async {
            assert!(
                other
                    .claim(5_004, 10, 60_000, &[])
                    .await
                    .unwrap()
                    .is_empty()
            );
            assert!(other.due_members(5_004, 10).await.unwrap().is_empty());
            other.materialise(&[], &[], 5_004).await.unwrap();
            // (the team posts' claims are UPDATEs, which notify nothing)
            other.team_posts_due(5_004).await.unwrap();
            other.next_due_at(5_004).await.unwrap();
        })
        .await
    );
    other.close().await;
    idle.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_acknowledgement_wakes_a_waiting_serve_only_while_a_team_post_shows_a_count() {
    let (idle, other) = two_processes().await;
    listening(&idle).await;
    rollout(&other).await;
    let ack = |person: &str| NewAcknowledgement {
        person_id: person.to_owned(),
        item_id: "nl-1".to_owned(),
        item_version: "v1".to_owned(),
        rollout_id: Some("r-1".to_owned()),
        delivery_id: None,
        channel: "web".to_owned(),
        method: AckMethod::Link,
        at: 2_000,
    };
    // The post is not sent yet: nothing to edit.
    assert!(
        !woken_by(&idle, async {
            other.acknowledge_item(&ack("p-0")).await.unwrap();
        })
        .await
    );
    posted(&other, 1).await;
    assert!(
        woken_by(&idle, async {
            other.acknowledge_item(&ack("p-1")).await.unwrap();
        })
        .await
    );
    // A repeat records nothing new.
    assert!(
        !woken_by(&idle, async {
            other.acknowledge_item(&ack("p-1")).await.unwrap();
        })
        .await
    );
    other.close().await;
    idle.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hundred_thousand_rows_queued_in_one_statement_notify_once() {
    let (idle, other) = two_processes().await;
    listening(&idle).await;
    rollout(&other).await;
    let rows: Vec<NewDelivery> = (0..100_000).map(|n| delivery("p-0", n, 5_000)).collect();
    // Counted on a connection of the test's own.
    let mut listener = sqlx::postgres::PgListener::connect_with(idle.pool())
        .await
        .unwrap();
    listener.listen(WAKE_CHANNEL).await.unwrap();
    other.materialise(&rows, &[], 5_000).await.unwrap();
    let first = tokio::time::timeout(Duration::from_secs(10), listener.recv())
        .await
        .expect("a notification")
        .unwrap();
    assert_eq!(first.payload(), "outbox");
    // And no other.
    assert!(
        tokio::time::timeout(Duration::from_secs(1), listener.recv())
            .await
            .is_err()
    );
    drop(listener);
    other.close().await;
    idle.close().await;
}

#[tokio::test]
async fn a_listener_that_loses_its_connection_wakes_its_waiters_and_listens_again() {
    let (idle, other) = two_processes().await;
    listening(&idle).await;
    let wait = waiting(&idle, Duration::from_secs(60));
    tokio::time::sleep(Duration::from_millis(300)).await;
    // The server ends the listening connection (a restart, a network
    // blip): the waiter is woken, since what was said meanwhile is lost.
    let ended: Vec<bool> = sqlx::query_scalar(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity
         WHERE datname = current_database() AND query LIKE 'LISTEN%'",
    )
    .fetch_all(other.pool())
    .await
    .unwrap();
    assert_eq!(ended, [true]);
    let (wake, _) = tokio::time::timeout(PROMPTLY, wait)
        .await
        .expect("woken when the connection was lost")
        .unwrap();
    assert_eq!(wake, Wake::Work);
    // It listens again: the next rollout wakes it.
    listening(&idle).await;
    assert!(
        woken_by(&idle, async {
            rollout(&other).await;
        })
        .await
    );
    other.close().await;
    idle.close().await;
}

#[tokio::test]
async fn on_sqlite_a_waiter_wakes_for_work_this_process_brings_and_never_hears_others() {
    let store = both::sqlite().await;
    assert!(!store.hears_other_writers());
    let (wake, took) = {
        let started = Instant::now();
        (
            store.wait_for_work(Duration::from_millis(100)).await,
            started.elapsed(),
        )
    };
    assert_eq!(wake, Wake::TimedOut);
    assert!(took >= Duration::from_millis(100));
    // A rollout started through a clone (the console's handle) wakes it.
    let wait = waiting(&store, Duration::from_secs(60));
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert!(!wait.is_finished());
    rollout(&store.clone()).await;
    let (wake, _) = tokio::time::timeout(PROMPTLY, wait)
        .await
        .expect("woken")
        .unwrap();
    assert_eq!(wake, Wake::Work);
    // So does a rollout resumed, not one paused.
    store
        .set_rollout_state("r-1", RolloutState::Paused, 10)
        .await
        .unwrap();
    let wait = waiting(&store, Duration::from_secs(60));
    tokio::time::sleep(Duration::from_millis(100)).await;
    store
        .set_rollout_state("r-1", RolloutState::Paused, 11)
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert!(!wait.is_finished());
    store
        .set_rollout_state("r-1", RolloutState::Active, 12)
        .await
        .unwrap();
    let (wake, _) = tokio::time::timeout(PROMPTLY, wait)
        .await
        .expect("woken")
        .unwrap();
    assert_eq!(wake, Wake::Work);
}
