//! Named leases, on both stores.

use super::*;

async fn a_lease_is_held_by_one_owner_until_it_runs_out(store: impl Leases) {
    assert!(
        store
            .hold_lease("poll:tg", "a", 1_000, 31_000)
            .await
            .unwrap()
    );
    // Another owner cannot take it while it runs.
    assert!(
        !store
            .hold_lease("poll:tg", "b", 30_999, 60_999)
            .await
            .unwrap()
    );
    // Its holder renews it.
    assert!(
        store
            .hold_lease("poll:tg", "a", 20_000, 50_000)
            .await
            .unwrap()
    );
    assert!(
        !store
            .hold_lease("poll:tg", "b", 49_999, 79_999)
            .await
            .unwrap()
    );
    // Once it has run out, another owner takes it, and the old holder
    // cannot renew it any more.
    assert!(
        store
            .hold_lease("poll:tg", "b", 50_000, 80_000)
            .await
            .unwrap()
    );
    assert!(
        !store
            .hold_lease("poll:tg", "a", 50_001, 80_001)
            .await
            .unwrap()
    );
    // Another name is another lease.
    assert!(
        store
            .hold_lease("poll:other", "a", 50_001, 80_001)
            .await
            .unwrap()
    );
}

async fn letting_go_frees_the_lease_at_once_but_only_for_its_holder(store: impl Leases) {
    assert!(store.hold_lease("poll:tg", "a", 0, 30_000).await.unwrap());
    store.let_go_lease("poll:tg", "b").await.unwrap();
    assert!(!store.hold_lease("poll:tg", "b", 1, 30_001).await.unwrap());
    store.let_go_lease("poll:tg", "a").await.unwrap();
    assert!(store.hold_lease("poll:tg", "b", 2, 30_002).await.unwrap());
}

async fn live_leases_are_those_not_run_out(store: impl Leases) {
    store
        .hold_lease(&serve_lease("s1"), "s1", 0, 10_000)
        .await
        .unwrap();
    store
        .hold_lease(&serve_lease("s2"), "s2", 0, 20_000)
        .await
        .unwrap();
    store.hold_lease("poll:tg", "s1", 0, 20_000).await.unwrap();
    let live = store.live_leases(SERVE_LEASE_PREFIX, 10_000).await.unwrap();
    assert_eq!(live, vec![("serve:s2".to_owned(), "s2".to_owned())]);
    let live = store.live_leases(SERVE_LEASE_PREFIX, 9_999).await.unwrap();
    assert_eq!(live.len(), 2);
    // A prefix is matched literally, not as a LIKE pattern.
    assert!(store.live_leases("serve_", 0).await.unwrap().is_empty());
}

crate::both::on_both_stores!(
    a_lease_is_held_by_one_owner_until_it_runs_out,
    letting_go_frees_the_lease_at_once_but_only_for_its_holder,
    live_leases_are_those_not_run_out,
);

/// Processes racing on one PostgreSQL database for a lease that ran out:
/// exactly one of them gets it each time.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn processes_racing_for_a_run_out_lease_on_postgres_get_it_once() {
    use pg::test_server::TestPostgres;
    use pg::{PgSettings, PgStore};

    let server = TestPostgres::shared().unwrap_or_else(|e| panic!("{e}"));
    let url = server.new_database().await.unwrap();
    let mut stores = Vec::new();
    for _ in 0..4 {
        stores.push(std::sync::Arc::new(
            PgStore::connect(&PgSettings::new(&url)).await.unwrap(),
        ));
    }
    for round in 0..20_i64 {
        let now = round * 1_000;
        let mut racing = Vec::new();
        for (n, store) in stores.iter().enumerate() {
            let store = store.clone();
            racing.push(tokio::spawn(async move {
                store
                    .hold_lease("poll:tg", &format!("p{n}"), now, now + 1_000)
                    .await
                    .unwrap()
            }));
        }
        let mut won = 0;
        for r in racing {
            won += usize::from(r.await.unwrap());
        }
        assert_eq!(won, 1, "round {round}");
    }
}
