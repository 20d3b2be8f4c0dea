//! Team posts on both stores: claimed under a lease in an owner's name,
//! their counts' edits claimed the same way, recorded only by the owner
//! still holding the lease, and taken back from owners that stopped; and,
//! on PostgreSQL, claims of posts and edits by several processes at once.

use super::tests::{Project, TestStore, newsletter_item};
use super::*;

/// The directory's members in every rollout here: p-1 and p-2 (team
/// cyp-east), p-3 (cyp-west), p-4 (ppu-1).
const MEMBERS: [&str; 4] = ["p-1", "p-2", "p-3", "p-4"];

/// The lease of every claim here.
const LEASE: i64 = 60_000;

/// Starts rollout `id` of item nl-neglect version aaa111 to [`MEMBERS`],
/// with a post for each (team, channel, due at); returns the posts' ids in
/// that order.
async fn rollout_with_posts<S: Store + Outbox + TeamPosts>(
    store: &S,
    id: &str,
    posts: &[(&str, &str, i64)],
) -> Vec<i64> {
    if store.latest_item("nl-neglect").await.unwrap().is_none() {
        let item = newsletter_item("nl-neglect", "Neglect", "aaa111");
        store.save_item(&item, "source").await.unwrap();
    }
    let members: Vec<NewMember> = MEMBERS
        .iter()
        .map(|person| NewMember {
            person_id: (*person).to_owned(),
            wave: 0,
            first_due_at: 1_000,
        })
        .collect();
    let team_posts: Vec<NewTeamPost> = posts
        .iter()
        .map(|(team, channel, due_at)| NewTeamPost {
            team_id: (*team).to_owned(),
            channel: (*channel).to_owned(),
            address: format!("{team}@{channel}"),
            due_at: *due_at,
        })
        .collect();
    store
        .create_rollout(NewRollout {
            id,
            item_id: "nl-neglect",
            item_version: "aaa111",
            definition: "{}",
            members: &members,
            audience: None,
            team_posts: &team_posts,
            now: 0,
        })
        .await
        .unwrap();
    let stored = store.team_posts(id).await.unwrap();
    posts
        .iter()
        .map(|(team, channel, _)| {
            stored
                .iter()
                .find(|p| p.team_id == *team && p.channel == *channel)
                .unwrap()
                .id
        })
        .collect()
}

/// A rollout to [`MEMBERS`] with one post, for cyp-east, due at 1,000 ms;
/// returns the post's id.
async fn rollout_with_a_team_post<S: Store + Outbox + TeamPosts>(store: &S) -> i64 {
    rollout_with_posts(store, "r-1", &[("cyp-east", "discord", 1_000)]).await[0]
}

async fn acknowledge(store: &impl Evidence, person: &str, version: &str, at: i64) {
    store
        .acknowledge_item(&NewAcknowledgement {
            person_id: person.to_owned(),
            item_id: "nl-neglect".to_owned(),
            item_version: version.to_owned(),
            rollout_id: None,
            delivery_id: None,
            channel: "web".to_owned(),
            method: AckMethod::Link,
            at,
        })
        .await
        .unwrap();
}

fn count(acknowledged: u32, total: u32) -> TeamCount {
    TeamCount {
        acknowledged,
        total,
    }
}

/// Records `post`, claimed by `owner`, as sent at `now` showing `shown`,
/// its first edit due at `edit_due_at`.
async fn sent(
    store: &impl TeamPosts,
    post: i64,
    owner: &str,
    shown: TeamCount,
    edit_due_at: i64,
    now: i64,
) {
    store
        .record_team_post(
            post,
            &TeamPostOutcome::Sent {
                provider_id: Some(format!("msg-{post}")),
                shown,
                edit_due_at,
            },
            owner,
            now,
        )
        .await
        .unwrap();
}

fn ids<T>(claimed: &[T], id: impl Fn(&T) -> i64) -> Vec<i64> {
    claimed.iter().map(id).collect()
}

/// The posts `owner` claims at `now`.
async fn posts_claimed(store: &impl TeamPosts, now: i64, owner: &str) -> Vec<i64> {
    let claimed = store.claim_team_posts(now, LEASE, owner).await.unwrap();
    ids(&claimed, |c| c.id)
}

/// The posts whose edits `owner` claims at `now`.
async fn edits_claimed(store: &impl TeamPosts, now: i64, owner: &str) -> Vec<i64> {
    let claimed = store
        .claim_stale_team_posts(now, LEASE, owner)
        .await
        .unwrap();
    ids(&claimed, |s| s.id)
}

async fn a_post_leased_by_a_stopped_serve_is_taken_back_at_once(
    store: impl TestStore + Outbox + TeamPosts,
) {
    let project = Project::directory_on(store).await;
    let store = &project.store;
    let post = rollout_with_a_team_post(store).await;
    let claimed = store.claim_team_posts(1_000, LEASE, "d-old").await.unwrap();
    assert_eq!(claimed.len(), 1);
    assert!(
        store
            .claim_team_posts(2_000, LEASE, "d-new")
            .await
            .unwrap()
            .is_empty()
    );
    // A new serve, the only one alive, takes it back at its start.
    assert_eq!(
        store
            .take_back_leases(2_000, &["d-new".to_owned()])
            .await
            .unwrap(),
        1
    );
    let again = store.claim_team_posts(2_000, LEASE, "d-new").await.unwrap();
    assert_eq!((again[0].id, again[0].attempts), (post, 2));
}

async fn a_post_is_claimed_once_when_due_and_again_only_after_its_lease(
    store: impl TestStore + Outbox + TeamPosts,
) {
    let project = Project::directory_on(store).await;
    let store = &project.store;
    let post = rollout_with_a_team_post(store).await;
    assert!(
        store
            .claim_team_posts(999, LEASE, "d-1")
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(store.team_posts_due(999).await.unwrap(), 0);
    assert_eq!(store.team_posts_due(1_000).await.unwrap(), 1);
    let claimed = store.claim_team_posts(1_000, LEASE, "d-1").await.unwrap();
    assert_eq!(claimed.len(), 1);
    assert_eq!((claimed[0].id, claimed[0].attempts), (post, 1));
    assert!(
        store
            .claim_team_posts(2_000, LEASE, "d-1")
            .await
            .unwrap()
            .is_empty(),
        "leased"
    );
    // The engine died mid-send: after the lease the post is tried again.
    let again = store.claim_team_posts(61_000, LEASE, "d-2").await.unwrap();
    assert_eq!(again[0].attempts, 2);
    sent(store, post, "d-2", count(0, 2), 64_000, 61_000).await;
    assert!(
        store
            .claim_team_posts(999_999, LEASE, "d-2")
            .await
            .unwrap()
            .is_empty(),
        "a sent post is never posted again"
    );
    assert_eq!(store.team_posts_due(999_999).await.unwrap(), 0);
}

async fn the_count_covers_the_teams_members_by_any_route_and_edits_are_paced(
    store: impl TestStore + Outbox + TeamPosts + Evidence,
) {
    let project = Project::directory_on(store).await;
    let store = &project.store;
    let post = rollout_with_a_team_post(store).await;
    let stale = |now| store.claim_stale_team_posts(now, LEASE, "d-1");
    store.claim_team_posts(1_000, LEASE, "d-1").await.unwrap();
    assert_eq!(store.team_count(post).await.unwrap(), count(0, 2));
    sent(store, post, "d-1", count(0, 2), 4_000, 1_000).await;
    assert!(stale(5_000).await.unwrap().is_empty());

    // Another team's member, and another version, do not count.
    acknowledge(store, "p-3", "aaa111", 2_000).await;
    acknowledge(store, "p-1", "old000", 2_000).await;
    assert!(stale(5_000).await.unwrap().is_empty());
    assert_eq!(store.team_post_edits_due(5_000).await.unwrap(), 0);

    // Two acknowledgements before the next edit is due: one edit shows both.
    acknowledge(store, "p-1", "aaa111", 5_000).await;
    assert_eq!(store.team_post_edits_due(5_000).await.unwrap(), 1);
    assert_eq!(ids(&stale(5_000).await.unwrap(), |s| s.id), [post]);
    store
        .record_team_post_edit(
            post,
            &TeamPostEdit::Shown {
                shown: count(1, 2),
                next_at: 8_000,
            },
            "d-1",
            5_000,
        )
        .await
        .unwrap();
    acknowledge(store, "p-2", "aaa111", 6_000).await;
    assert!(stale(7_999).await.unwrap().is_empty(), "paced");
    assert_eq!(store.team_post_edits_due(7_999).await.unwrap(), 0);
    let claimed = stale(8_000).await.unwrap();
    assert_eq!(claimed.len(), 1);
    assert_eq!(
        (
            claimed[0].shown,
            claimed[0].count,
            claimed[0].provider_id.as_str()
        ),
        (count(1, 2), count(2, 2), format!("msg-{post}").as_str())
    );

    // A rate-limited edit leaves the shown count as it was, for later.
    store
        .record_team_post_edit(
            post,
            &TeamPostEdit::RetryAt {
                at: 20_000,
                reason: "Discord rate limited the edit".to_owned(),
            },
            "d-1",
            8_000,
        )
        .await
        .unwrap();
    assert!(stale(19_999).await.unwrap().is_empty());
    assert_eq!(stale(20_000).await.unwrap().len(), 1);
    store
        .record_team_post_edit(
            post,
            &TeamPostEdit::Shown {
                shown: count(2, 2),
                next_at: 23_000,
            },
            "d-1",
            20_000,
        )
        .await
        .unwrap();
    assert!(stale(99_000).await.unwrap().is_empty());
    assert_eq!(store.team_post_edits_due(99_000).await.unwrap(), 0);
    let stored = store.team_post(post).await.unwrap().unwrap();
    assert_eq!(stored.shown, Some(count(2, 2)));
}

/// Two serves (owners d-a and d-b): while one holds a post's lease, or the
/// lease of its edit, the other gets neither; when a lease runs out the
/// other takes it, and the first one's late record then changes nothing.
async fn two_owners_never_share_a_post_or_its_edit_while_leased(
    store: impl TestStore + Outbox + TeamPosts + Evidence,
) {
    let project = Project::directory_on(store).await;
    let store = &project.store;
    let post = rollout_with_a_team_post(store).await;

    // The post.
    assert_eq!(
        ids(
            &store.claim_team_posts(1_000, LEASE, "d-a").await.unwrap(),
            |c| c.id
        ),
        [post]
    );
    assert!(
        store
            .claim_team_posts(2_000, LEASE, "d-b")
            .await
            .unwrap()
            .is_empty()
    );
    // d-a's lease runs out mid-send; d-b claims the post.
    let again = store.claim_team_posts(61_000, LEASE, "d-b").await.unwrap();
    assert_eq!((again[0].id, again[0].attempts), (post, 2));
    // d-a answers late: nothing changes, and d-b's lease holds.
    store
        .record_team_post(
            post,
            &TeamPostOutcome::RetryAt {
                at: 62_000,
                reason: "late".to_owned(),
            },
            "d-a",
            61_500,
        )
        .await
        .unwrap();
    sent(store, post, "d-a", count(0, 2), 62_000, 61_500).await;
    let stored = store.team_post(post).await.unwrap().unwrap();
    assert_eq!(
        (stored.state.as_str(), stored.last_error),
        ("planned", None),
        "d-a no longer holds the post"
    );
    assert!(
        store
            .claim_team_posts(62_000, LEASE, "d-c")
            .await
            .unwrap()
            .is_empty(),
        "still d-b's"
    );
    sent(store, post, "d-b", count(0, 2), 64_000, 62_000).await;
    assert_eq!(store.team_post(post).await.unwrap().unwrap().state, "sent");

    // Its edit.
    acknowledge(store, "p-1", "aaa111", 63_000).await;
    let edit = store
        .claim_stale_team_posts(64_000, LEASE, "d-a")
        .await
        .unwrap();
    assert_eq!(
        (edit.len(), edit[0].shown, edit[0].count),
        (1, count(0, 2), count(1, 2))
    );
    assert!(
        store
            .claim_stale_team_posts(65_000, LEASE, "d-b")
            .await
            .unwrap()
            .is_empty(),
        "d-a holds the edit"
    );
    assert_eq!(
        store.team_post_edits_due(65_000).await.unwrap(),
        1,
        "leased or not"
    );
    // d-a stops mid-edit: when its lease runs out the edit is due again.
    assert!(
        store
            .claim_stale_team_posts(123_999, LEASE, "d-b")
            .await
            .unwrap()
            .is_empty()
    );
    let edit = store
        .claim_stale_team_posts(124_000, LEASE, "d-b")
        .await
        .unwrap();
    assert_eq!(ids(&edit, |s| s.id), [post]);
    // d-a's late record changes nothing; d-b's is the one kept.
    store
        .record_team_post_edit(
            post,
            &TeamPostEdit::Shown {
                shown: count(1, 2),
                next_at: 127_000,
            },
            "d-a",
            124_500,
        )
        .await
        .unwrap();
    assert_eq!(
        store.team_post(post).await.unwrap().unwrap().shown,
        Some(count(0, 2))
    );
    assert!(
        store
            .claim_stale_team_posts(125_000, LEASE, "d-c")
            .await
            .unwrap()
            .is_empty(),
        "still d-b's"
    );
    store
        .record_team_post_edit(
            post,
            &TeamPostEdit::Shown {
                shown: count(1, 2),
                next_at: 128_000,
            },
            "d-b",
            125_000,
        )
        .await
        .unwrap();
    assert_eq!(
        store.team_post(post).await.unwrap().unwrap().shown,
        Some(count(1, 2))
    );
    assert_eq!(store.team_post_edits_due(999_000).await.unwrap(), 0);
}

/// A serve taking back leases at its start takes back the posts and edits
/// leased by a serve that stopped (and posts leased before posts recorded
/// owners), and leaves a live serve's alone.
async fn a_dead_owners_posts_and_edits_are_taken_back_and_a_live_owners_kept(
    store: impl TestStore + Outbox + TeamPosts,
) {
    let project = Project::directory_on(store).await;
    let store = &project.store;
    let [live_edit, dead_edit, live_post, dead_post, unowned] = rollout_with_posts(
        store,
        "r-1",
        &[
            ("cyp-east", "discord", 1_000),
            ("cyp-west", "discord", 1_001),
            ("ppu-1", "discord", 4_000),
            ("cyp-east", "teams", 5_000),
            ("cyp-west", "teams", 6_000),
        ],
    )
    .await[..] else {
        unreachable!()
    };

    // Two posts sent, showing a count that is out of date (no one
    // acknowledged, but the team has fewer members than shown), each with
    // its edit leased: one by the live serve, one by the dead one.
    assert_eq!(posts_claimed(store, 1_000, "d-live").await, [live_edit]);
    assert_eq!(posts_claimed(store, 1_001, "d-dead").await, [dead_edit]);
    sent(store, live_edit, "d-live", count(0, 9), 2_000, 1_500).await;
    sent(store, dead_edit, "d-dead", count(0, 9), 3_000, 1_500).await;
    assert_eq!(edits_claimed(store, 2_000, "d-live").await, [live_edit]);
    assert_eq!(edits_claimed(store, 3_000, "d-dead").await, [dead_edit]);
    // Two posts leased for posting, one by each.
    assert_eq!(posts_claimed(store, 4_000, "d-live").await, [live_post]);
    assert_eq!(posts_claimed(store, 5_000, "d-dead").await, [dead_post]);
    // One leased before posts recorded their owner.
    assert_eq!(posts_claimed(store, 6_000, "d-dead").await, [unowned]);
    store
        .execute(&format!(
            "UPDATE team_posts SET lease_owner = NULL WHERE id = {unowned}"
        ))
        .await;

    assert!(posts_claimed(store, 7_000, "d-new").await.is_empty());
    assert!(edits_claimed(store, 7_000, "d-new").await.is_empty());
    assert_eq!(
        store
            .take_back_leases(7_000, &["d-new".to_owned(), "d-live".to_owned()])
            .await
            .unwrap(),
        3
    );
    assert_eq!(
        posts_claimed(store, 7_000, "d-new").await,
        [dead_post, unowned]
    );
    let edits = store
        .claim_stale_team_posts(7_000, LEASE, "d-new")
        .await
        .unwrap();
    assert_eq!(ids(&edits, |s| s.id), [dead_edit]);
    assert_eq!((edits[0].shown, edits[0].count), (count(0, 9), count(0, 1)));
    // The live serve still holds its own, and records them.
    sent(store, live_post, "d-live", count(0, 1), 10_000, 7_000).await;
    store
        .record_team_post_edit(
            live_edit,
            &TeamPostEdit::Shown {
                shown: count(0, 2),
                next_at: 10_000,
            },
            "d-live",
            7_000,
        )
        .await
        .unwrap();
    let shown = |post| async move { store.team_post(post).await.unwrap().unwrap() };
    assert_eq!(shown(live_post).await.state, "sent");
    assert_eq!(shown(live_edit).await.shown, Some(count(0, 2)));
    // Nothing is left leased to an owner not alive.
    assert_eq!(
        store
            .take_back_leases(7_000, &["d-new".to_owned(), "d-live".to_owned()])
            .await
            .unwrap(),
        0
    );
}

async fn only_a_member_of_the_posts_team_in_its_rollout_may_acknowledge_through_it(
    store: impl TestStore + Outbox + TeamPosts,
) {
    let project = Project::directory_on(store).await;
    let post = rollout_with_a_team_post(&project.store).await;
    let member = project
        .store
        .team_post_member(post, "p-2")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (member.rollout_id.as_str(), member.item_version.as_str()),
        ("r-1", "aaa111")
    );
    assert_eq!(member.delivery_id, None, "nothing queued for p-2 yet");
    for outsider in ["p-3", "p-4", "p-nobody"] {
        assert_eq!(
            project
                .store
                .team_post_member(post, outsider)
                .await
                .unwrap(),
            None,
            "{outsider}"
        );
    }
}

crate::both::on_both_stores!(
    a_post_leased_by_a_stopped_serve_is_taken_back_at_once,
    a_post_is_claimed_once_when_due_and_again_only_after_its_lease,
    the_count_covers_the_teams_members_by_any_route_and_edits_are_paced,
    two_owners_never_share_a_post_or_its_edit_while_leased,
    a_dead_owners_posts_and_edits_are_taken_back_and_a_live_owners_kept,
    only_a_member_of_the_posts_team_in_its_rollout_may_acknowledge_through_it,
);

/// Several `cascade serve` processes on one PostgreSQL database: claimers
/// on two stores (two pools) claiming posts at once never get the same
/// post while its lease holds, and together get every post once; after
/// the leases run out, every post once more. Then the same for the edits
/// of the posts' counts.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn claimers_on_two_postgres_stores_never_share_a_leased_post_or_edit() {
    use pg::test_server::TestPostgres;
    use pg::{PgSettings, PgStore};
    use std::collections::BTreeMap;

    let server = TestPostgres::shared().unwrap_or_else(|e| panic!("{e}"));
    let url = server.new_database().await.unwrap();
    let project =
        Project::directory_on(PgStore::connect(&PgSettings::new(&url)).await.unwrap()).await;
    let first = project.store.clone();
    let second = PgStore::connect(&PgSettings::new(&url)).await.unwrap();
    let teams = ["cyp-east", "cyp-west", "ppu-1"];
    let channels = ["discord", "teams", "slack", "chat", "mattermost"];
    let mut posts = Vec::new();
    for rollout in 0..4 {
        let wanted: Vec<(&str, &str, i64)> = teams
            .iter()
            .flat_map(|team| channels.iter().map(move |channel| (*team, *channel, 1_000)))
            .collect();
        posts.extend(rollout_with_posts(&first, &format!("r-{rollout}"), &wanted).await);
    }
    assert_eq!(posts.len(), 60);

    /// Claims until a claim finds nothing (every post is then leased, by
    /// this task or another); returns (post, attempts, owner).
    async fn claim_posts(store: PgStore, task: usize, now: i64) -> Vec<(i64, u32, String)> {
        let owner = format!("d-{task}");
        let mut got = Vec::new();
        // At most as many rounds as there are posts (a claim that keeps
        // finding leased posts shows as posts claimed twice, not a hang).
        for _ in 0..60 {
            let claimed = store.claim_team_posts(now, LEASE, &owner).await.unwrap();
            if claimed.is_empty() {
                break;
            }
            got.extend(claimed.iter().map(|c| (c.id, c.attempts, owner.clone())));
        }
        got
    }
    async fn claim_edits(store: PgStore, task: usize, now: i64) -> Vec<(i64, u32, String)> {
        let owner = format!("d-{task}");
        let mut got = Vec::new();
        for _ in 0..60 {
            let claimed = store
                .claim_stale_team_posts(now, LEASE, &owner)
                .await
                .unwrap();
            if claimed.is_empty() {
                break;
            }
            got.extend(claimed.iter().map(|c| (c.id, 0, owner.clone())));
        }
        got
    }
    /// Eight tasks, half on each store, claiming at `now`: who got what.
    async fn race(
        stores: [&PgStore; 2],
        now: i64,
        edits: bool,
    ) -> BTreeMap<i64, Vec<(u32, String)>> {
        let mut tasks = Vec::new();
        for task in 0..8 {
            let store = stores[task % 2].clone();
            tasks.push(if edits {
                tokio::spawn(claim_edits(store, task, now))
            } else {
                tokio::spawn(claim_posts(store, task, now))
            });
        }
        let mut claims: BTreeMap<i64, Vec<(u32, String)>> = BTreeMap::new();
        for task in tasks {
            for (id, attempts, owner) in task.await.unwrap() {
                claims.entry(id).or_default().push((attempts, owner));
            }
        }
        claims
    }
    let once = |claims: &BTreeMap<i64, Vec<(u32, String)>>, at: i64| {
        assert_eq!(
            claims.keys().copied().collect::<Vec<_>>(),
            {
                let mut sorted = posts.clone();
                sorted.sort_unstable();
                sorted
            },
            "every post, at {at}"
        );
        let twice: Vec<(i64, usize)> = claims
            .iter()
            .filter(|(_, by)| by.len() > 1)
            .map(|(id, by)| (*id, by.len()))
            .collect();
        assert!(twice.is_empty(), "claimed twice at {at}: {twice:?}");
    };

    let stores = [&first, &second];
    let claims = race(stores, 1_000, false).await;
    once(&claims, 1_000);
    assert!(claims.values().all(|by| by[0].0 == 1));
    assert!(race(stores, 30_000, false).await.is_empty(), "leased");
    let claims = race(stores, 61_000, false).await;
    once(&claims, 61_000);
    assert!(claims.values().all(|by| by[0].0 == 2));

    // Each post sent by the task that holds it, showing a count that is out
    // of date, its first edit due at 62,000.
    for (post, by) in &claims {
        sent(&first, *post, &by[0].1, count(0, 9), 62_000, 61_500).await;
    }
    assert!(race(stores, 61_999, true).await.is_empty(), "not yet due");
    let edits = race(stores, 62_000, true).await;
    once(&edits, 62_000);
    assert!(race(stores, 100_000, true).await.is_empty(), "leased");
    assert_eq!(second.team_post_edits_due(100_000).await.unwrap(), 60);
    let edits = race(stores, 122_000, true).await;
    once(&edits, 122_000);
    // Recorded by their owners, none is stale any more.
    for (post, by) in &edits {
        let store = if post % 2 == 0 { &first } else { &second };
        let shown = store.team_count(*post).await.unwrap();
        store
            .record_team_post_edit(
                *post,
                &TeamPostEdit::Shown {
                    shown,
                    next_at: 125_000,
                },
                &by[0].1,
                122_500,
            )
            .await
            .unwrap();
    }
    assert_eq!(first.team_post_edits_due(999_000).await.unwrap(), 0);
    assert!(race(stores, 999_000, true).await.is_empty());
}
