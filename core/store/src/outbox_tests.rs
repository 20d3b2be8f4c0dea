//! Rollouts and the outbox on both stores: a rollout written from members
//! and from an audience with its timing, materialised, claimed and
//! recorded; and, on PostgreSQL, claims by several processes at once.

use super::tests::{TestStore, link_ack, newsletter_item};
use super::*;
use crate::both;
use cascade_model::rollout::{
    AudienceQuery, AudienceSource, Selector, StepKind, TimingRule, WaveQuery,
};

/// A member row as read back: person, wave, next due, shift, team.
type Member = (String, i64, Option<i64>, i64, Option<String>);

/// Reads what no trait of these stores reads back (raw SQL, no parameters).
trait RawMembers {
    async fn member_rows(&self) -> Vec<Member>;
}

const MEMBERS: &str = "SELECT person_id, wave, next_due_at, shift_days, team_id FROM rollout_members ORDER BY person_id";

impl RawMembers for SqliteStore {
    async fn member_rows(&self) -> Vec<Member> {
        sqlx::query_as(MEMBERS)
            .fetch_all(self.pool())
            .await
            .unwrap()
    }
}

impl RawMembers for pg::PgStore {
    async fn member_rows(&self) -> Vec<Member> {
        sqlx::query_as(MEMBERS)
            .fetch_all(self.pool())
            .await
            .unwrap()
    }
}

fn reminder(person: &str, n: u32, channel: &str, due_at: i64) -> NewDelivery {
    NewDelivery {
        idempotency_key: format!("r-1/{person}/reminder-{n}/{channel}"),
        rollout_id: "r-1".to_owned(),
        person_id: person.to_owned(),
        recipient_id: person.to_owned(),
        wave: 0,
        step_kind: StepKind::Reminder,
        step_number: n,
        channel: channel.to_owned(),
        channel_rank: 0,
        due_at,
    }
}

/// The rollout `r-1` of `nl-1` to `p-0`..`p-{n-1}` (no directory), with
/// first sends at 1,000 ms + their number.
async fn rollout_of<S: Store + Outbox>(store: &S, n: u32) -> Vec<NewMember> {
    store
        .save_item(&newsletter_item("nl-1", "Neglect", "v1"), "source")
        .await
        .unwrap();
    let members: Vec<NewMember> = (0..n)
        .map(|i| NewMember {
            person_id: format!("p-{i}"),
            wave: i % 2,
            first_due_at: 1_000 + i64::from(i),
        })
        .collect();
    let written = store
        .create_rollout(NewRollout {
            id: "r-1",
            item_id: "nl-1",
            item_version: "v1",
            definition: r#"{"refreshers":[30]}"#,
            members: &members,
            audience: None,
            team_posts: &[NewTeamPost {
                team_id: "t-1".to_owned(),
                channel: "discord".to_owned(),
                address: "301".to_owned(),
                due_at: 1_000,
            }],
            now: 7,
        })
        .await
        .unwrap();
    assert_eq!(written, u64::from(n));
    members
}

async fn a_rollout_is_written_with_its_members_materialised_claimed_and_recorded(
    store: impl TestStore + Outbox + TeamPosts,
) {
    let members = rollout_of(&store, 5).await;
    let rollout = store.rollout("r-1").await.unwrap().unwrap();
    assert_eq!(
        (
            rollout.state,
            rollout.created_at,
            rollout.item_version.as_str()
        ),
        (RolloutState::Active, 7, "v1")
    );
    assert_eq!(store.rollouts().await.unwrap(), [rollout]);
    assert_eq!(store.rollout("r-2").await.unwrap(), None);
    assert_eq!(store.team_posts("r-1").await.unwrap().len(), 1);
    // The same id again writes nothing.
    let again = NewRollout {
        id: "r-1",
        item_id: "nl-1",
        item_version: "v1",
        definition: "{}",
        members: &members,
        audience: None,
        team_posts: &[],
        now: 8,
    };
    assert!(store.create_rollout(again).await.is_err());
    assert_eq!(store.rollouts().await.unwrap().len(), 1);

    let due = store.due_members(1_002, 10).await.unwrap();
    assert_eq!(
        due.iter()
            .map(|d| (d.person_id.as_str(), d.wave, d.acknowledged))
            .collect::<Vec<_>>(),
        [("p-0", 0, false), ("p-1", 1, false), ("p-2", 0, false)]
    );
    // A key queued twice is queued once; the member moves on.
    store
        .materialise(
            &[
                reminder("p-0", 1, "email", 1_000),
                reminder("p-1", 1, "email", 1_001),
                reminder("p-0", 1, "email", 1_000),
            ],
            &[MemberAdvance {
                rollout_id: "r-1".to_owned(),
                person_id: "p-0".to_owned(),
                next_step: 1,
                next_due_at: Some(9_000),
                shift_days: Some(2),
            }],
            1_000,
        )
        .await
        .unwrap();
    assert_eq!(store.outstanding().await.unwrap(), 2);
    assert_eq!(store.due_now(1_000).await.unwrap(), 1);
    let due = store.due_members(1_002, 10).await.unwrap();
    assert_eq!(
        due.iter().map(|d| d.person_id.as_str()).collect::<Vec<_>>(),
        ["p-1", "p-2"]
    );
    let claimed = store.claim(1_001, 10, 60_000, &[]).await.unwrap();
    assert_eq!(
        claimed
            .iter()
            .map(|c| (c.person_id.as_str(), c.step_kind, c.attempts))
            .collect::<Vec<_>>(),
        [
            ("p-0", StepKind::Reminder, 1),
            ("p-1", StepKind::Reminder, 1)
        ]
    );
    let queues = store.queues(1_001).await.unwrap();
    assert_eq!(
        queues
            .iter()
            .map(|q| (q.channel.as_str(), q.due_now, q.leased))
            .collect::<Vec<_>>(),
        [("email", 0, 2)]
    );
    store
        .record(
            &[
                (
                    claimed[0].id,
                    DeliveryOutcome::Sent {
                        provider_id: Some("m".to_owned()),
                    },
                ),
                (
                    claimed[1].id,
                    DeliveryOutcome::RetryAt {
                        at: 5_000,
                        reason: "busy".to_owned(),
                    },
                ),
            ],
            &[reminder("p-1", 1, "sms", 1_500)],
            1_500,
        )
        .await
        .unwrap();
    let totals = store.rollout_totals().await.unwrap();
    assert_eq!((totals[0].members, totals[0].sent), (5, 1));
    assert_eq!(store.count_rows("evidence_chain").await, 1, "one link");
    assert_eq!(store.sent_times("email", 0).await.unwrap(), [1_500]);
    let errors = store.last_errors("r-1").await.unwrap();
    assert_eq!(
        errors
            .iter()
            .map(|e| (e.channel.as_str(), e.error.as_str(), e.retrying))
            .collect::<Vec<_>>(),
        [("email", "busy", 1)]
    );
    let bounced = store
        .bounce("email", &claimed[0].idempotency_key, "gone", 2_000)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (bounced.id, bounced.step_kind),
        (claimed[0].id, StepKind::Reminder)
    );
    assert_eq!(
        store
            .dead_letters("r-1", 10)
            .await
            .unwrap()
            .into_iter()
            .map(|d| (d.person_id, d.reason))
            .collect::<Vec<_>>(),
        [("p-0".to_owned(), "gone".to_owned())]
    );
    assert_eq!(
        store.wave_counts("r-1").await.unwrap(),
        [
            WaveCounts {
                wave: 0,
                members: 3,
                planned: 2,
                acknowledged: 0,
                left: 0,
                moved: 0,
                waiting: 3,
            },
            WaveCounts {
                wave: 1,
                members: 2,
                planned: 2,
                acknowledged: 0,
                left: 0,
                moved: 0,
                waiting: 2,
            }
        ]
    );
    assert!(store.may_send("r-1").await.unwrap());
    assert!(
        store
            .set_rollout_state("r-1", RolloutState::Cancelled, 3_000)
            .await
            .unwrap()
    );
    assert!(!store.may_send("r-1").await.unwrap());
    assert_eq!(
        store.outstanding().await.unwrap(),
        0,
        "the due rows cancelled"
    );
    assert!(store.due_members(99_999, 10).await.unwrap().is_empty());
    assert!(
        !store
            .set_rollout_state("r-9", RolloutState::Paused, 3_000)
            .await
            .unwrap()
    );
}

/// Agency `ag`, teams `t-a` and `t-b`, and `p-0`..`p-5` alternating
/// between them; `p-5` inactive; `p-1` in another zone, `p-3` absent.
async fn directory(store: &impl TestStore) {
    store
        .execute(
            "INSERT INTO agencies (id, name, kind, updated_at) VALUES ('ag', 'Ag', 'police', 'x')",
        )
        .await;
    for t in ["t-a", "t-b"] {
        store
            .execute(&format!(
                "INSERT INTO teams (id, agency_id, name, updated_at) VALUES ('{t}', 'ag', '{t}', 'x')"
            ))
            .await;
    }
    for i in 0..6 {
        let team = if i % 2 == 0 { "t-a" } else { "t-b" };
        let zone = if i == 1 { "'Asia/Tokyo'" } else { "NULL" };
        let active = i64::from(i != 5);
        let absent = if i == 3 { "'2027-01-05'" } else { "NULL" };
        store
            .execute(&format!(
                "INSERT INTO people (id, display_name, email, agency_id, team_id, time_zone, active, updated_at, absent_until)
                 VALUES ('p-{i}', 'P', 'p{i}@example.org', 'ag', '{team}', {zone}, {active}, 'x', {absent})"
            ))
            .await;
    }
}

async fn an_audience_is_written_in_waves_with_its_timing_and_not_twice(
    store: impl TestStore + Outbox + RawMembers,
) {
    store
        .save_item(&newsletter_item("nl-1", "Neglect", "v1"), "source")
        .await
        .unwrap();
    directory(&store).await;
    let audience = AudienceQuery {
        source: AudienceSource::Directory {
            include: Selector::default(),
            exclude: Selector {
                people: vec!["p-4".to_owned()],
                ..Selector::default()
            },
        },
        waves: vec![
            WaveQuery {
                everyone: false,
                takes: Selector {
                    teams: vec!["t-b".to_owned()],
                    ..Selector::default()
                },
                first_due_at: 1_000,
            },
            WaveQuery {
                everyone: true,
                takes: Selector::default(),
                first_due_at: 2_000,
            },
        ],
        item_id: "nl-1".to_owned(),
        absences_after: "2027-01-01".to_owned(),
        home_zone: "Europe/London".to_owned(),
        timing: vec![
            TimingRule {
                wave: 0,
                time_zone: "Asia/Tokyo".to_owned(),
                works: String::new(),
                absent_until: String::new(),
                shift_days: 0,
                first_due_at: 500,
            },
            TimingRule {
                wave: 0,
                time_zone: String::new(),
                works: String::new(),
                absent_until: "2027-01-05".to_owned(),
                shift_days: 9,
                first_due_at: 8_000,
            },
            // A later rule for the same people replaces the earlier.
            TimingRule {
                wave: 0,
                time_zone: String::new(),
                works: String::new(),
                absent_until: "2027-01-05".to_owned(),
                shift_days: 4,
                first_due_at: 9_000,
            },
        ],
    };
    let rollout = |id| NewRollout {
        id,
        item_id: "nl-1",
        item_version: "v1",
        definition: "{}",
        members: &[],
        audience: Some(&audience),
        team_posts: &[],
        now: 0,
    };
    assert_eq!(store.create_rollout(rollout("r-1")).await.unwrap(), 4);
    let t = |s: &str| Some(s.to_owned());
    assert_eq!(
        store.member_rows().await,
        [
            ("p-0".to_owned(), 1, Some(2_000), 0, t("t-a")),
            ("p-1".to_owned(), 0, Some(500), 0, t("t-b")),
            ("p-2".to_owned(), 1, Some(2_000), 0, t("t-a")),
            ("p-3".to_owned(), 0, Some(9_000), 4, t("t-b")),
        ]
    );
    // A second rollout of the item reaches nobody already reached; without
    // timing rules everyone has their wave's first send.
    assert_eq!(store.create_rollout(rollout("r-2")).await.unwrap(), 0);
    let untimed = AudienceQuery {
        timing: Vec::new(),
        item_id: "nl-other".to_owned(),
        ..audience.clone()
    };
    store
        .create_rollout(NewRollout {
            id: "r-3",
            audience: Some(&untimed),
            ..rollout("r-3")
        })
        .await
        .unwrap();
    let totals = store.rollout_totals().await.unwrap();
    assert_eq!(
        totals
            .iter()
            .map(|t| (t.rollout_id.as_str(), t.members))
            .collect::<Vec<_>>(),
        [("r-1", 4), ("r-2", 0), ("r-3", 4)]
    );
    let members = store.member_rows().await;
    assert!(
        members.contains(&("p-3".to_owned(), 0, Some(1_000), 0, t("t-b"))),
        "{members:?}"
    );
}

async fn initial_counts_refreshers_and_identities_read_as_written(store: impl TestStore + Outbox) {
    rollout_of(&store, 2).await;
    directory(&store).await;
    let initial = |person: &str, wave| NewDelivery {
        idempotency_key: format!("r-1/{person}/initial"),
        step_kind: StepKind::Initial,
        step_number: 0,
        wave,
        ..reminder(person, 0, "email", 1_000)
    };
    store
        .materialise(&[initial("p-0", 0), initial("p-1", 1)], &[], 1_000)
        .await
        .unwrap();
    let claimed = store.claim(1_000, 1, 60_000, &[]).await.unwrap();
    let dead = DeliveryOutcome::Dead {
        reason: "refused".to_owned(),
    };
    store
        .record(&[(claimed[0].id, dead)], &[], 1_000)
        .await
        .unwrap();
    let counts = store.delivery_counts("r-1").await.unwrap();
    assert_eq!(
        counts,
        [
            DeliveryCounts {
                wave: 0,
                channel: "email".to_owned(),
                dead: 1,
                ..DeliveryCounts::default()
            },
            DeliveryCounts {
                wave: 1,
                channel: "email".to_owned(),
                due: 1,
                ..DeliveryCounts::default()
            }
        ]
    );

    // An acknowledgement (as Evidence writes it) starts the refreshers of
    // a rollout that has them.
    store
        .execute("UPDATE rollout_members SET acknowledged_at = 5000 WHERE person_id = 'p-0'")
        .await;
    assert!(store.due_refreshers(4_999, 10).await.unwrap().is_empty());
    let due = store.due_refreshers(5_000, 10).await.unwrap();
    assert_eq!(
        due,
        [DueRefresher {
            rollout_id: "r-1".to_owned(),
            person_id: "p-0".to_owned(),
            wave: 0,
            refresher_next: 1,
            acknowledged_at: 5_000,
        }]
    );
    let refresher = NewDelivery {
        idempotency_key: "r-1/p-0/refresher-1".to_owned(),
        step_kind: StepKind::Refresher,
        step_number: 1,
        ..reminder("p-0", 1, "email", 6_000)
    };
    store
        .materialise_refreshers(
            &[refresher],
            &[RefresherAdvance {
                rollout_id: "r-1".to_owned(),
                person_id: "p-0".to_owned(),
                refresher_next: 2,
                refresher_due_at: None,
            }],
            5_000,
        )
        .await
        .unwrap();
    assert!(store.due_refreshers(99_000, 10).await.unwrap().is_empty());
    let claimed = store.claim(6_000, 10, 60_000, &[]).await.unwrap();
    assert_eq!(
        claimed.iter().map(|c| c.step_kind).collect::<Vec<_>>(),
        [StepKind::Initial, StepKind::Refresher]
    );

    for (person, channel, address, unreachable) in [
        ("p-1", "telegram", "tg-1", "NULL"),
        ("p-0", "telegram", "tg-0", "NULL"),
        ("p-0", "email", "p0@example.org", "NULL"),
        ("p-2", "telegram", "tg-2", "7"),
    ] {
        store
            .execute(&format!(
                "INSERT INTO channel_identities (person_id, channel, address, linked_at, unreachable_at)
                 VALUES ('{person}', '{channel}', '{address}', 'x', {unreachable})"
            ))
            .await;
    }
    let identities: Vec<(String, String, String)> = store
        .all_identities()
        .await
        .unwrap()
        .into_iter()
        .map(|i| (i.person_id, i.channel, i.address))
        .collect();
    let own = |p: &str, c: &str, a: &str| (p.to_owned(), c.to_owned(), a.to_owned());
    assert_eq!(
        identities,
        [
            own("p-0", "email", "p0@example.org"),
            own("p-0", "telegram", "tg-0"),
            own("p-1", "telegram", "tg-1")
        ]
    );
}

crate::both::on_both_stores!(
    a_rollout_is_written_with_its_members_materialised_claimed_and_recorded,
    an_audience_is_written_in_waves_with_its_timing_and_not_twice,
    initial_counts_refreshers_and_identities_read_as_written,
);

/// Two stores on one new database of the PostgreSQL test server, each with
/// its own pool, as two `cascade serve` processes have.
async fn two_postgres_stores() -> (pg::PgStore, pg::PgStore) {
    use pg::test_server::TestPostgres;
    use pg::{PgSettings, PgStore};
    let server = TestPostgres::shared().unwrap_or_else(|e| panic!("{e}"));
    let url = server.new_database().await.unwrap();
    let first = PgStore::connect(&PgSettings::new(&url)).await.unwrap();
    let second = PgStore::connect(&PgSettings::new(&url)).await.unwrap();
    (first, second)
}

/// Takes the evidence chain's lock for the rest of `tx`, as every
/// transaction that appends to the chain does.
async fn hold_chain_lock(tx: &mut sqlx::PgConnection) {
    sqlx::query("SELECT pg_advisory_xact_lock($1)")
        .bind(pg::chain::CHAIN_LOCK)
        .execute(tx)
        .await
        .unwrap();
}

/// Several `cascade serve` processes on one PostgreSQL database: claimers
/// on two stores (two pools) claiming at once, by due order and by
/// channel, never get the same row while its lease holds, and together
/// get every row once; after the leases run out, every row once more.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn claimers_on_two_postgres_stores_never_share_a_leased_row() {
    use pg::PgStore;
    use std::collections::BTreeMap;

    let (first, second) = two_postgres_stores().await;
    rollout_of(&first, 1).await;
    let channels = ["email", "teams", "sms"];
    let queued: Vec<NewDelivery> = (0..600)
        .map(|n| {
            reminder(
                "p-0",
                n,
                channels[n as usize % 3],
                1_000 - i64::from(n % 50),
            )
        })
        .collect();
    first.materialise(&queued, &[], 1_000).await.unwrap();

    // Each task claims until a claim finds nothing: every row is then
    // leased, by it or another (a claim skips rows another is taking).
    async fn claim_all(store: PgStore, task: usize, now: i64) -> Vec<(i64, u32)> {
        let owner = format!("d-{task}");
        let mut got = Vec::new();
        for round in 0.. {
            let limit = 1 + (task + round) as u32 % 7;
            let claimed = if (task + round).is_multiple_of(2) {
                store.claim(now, limit, 60_000, &[]).await.unwrap()
            } else {
                let shares = [("email".to_owned(), limit), ("teams".to_owned(), 2)];
                store
                    .claim_by_channel(ChannelClaim {
                        now,
                        lease_ms: 60_000,
                        owner: &owner,
                        shares: &shares,
                        others: limit,
                    })
                    .await
                    .unwrap()
            };
            if claimed.is_empty() {
                break;
            }
            got.extend(claimed.iter().map(|c| (c.id, c.attempts)));
        }
        got
    }

    for (now, attempts) in [(1_000, 1), (30_000, 1), (61_000, 2)] {
        let mut tasks = Vec::new();
        for task in 0..8 {
            let store = if task % 2 == 0 { &first } else { &second };
            tasks.push(tokio::spawn(claim_all(store.clone(), task, now)));
        }
        let mut claims: BTreeMap<i64, usize> = BTreeMap::new();
        for task in tasks {
            for (id, tries) in task.await.unwrap() {
                assert_eq!(tries, attempts, "row {id} at {now}");
                *claims.entry(id).or_default() += 1;
            }
        }
        if now == 30_000 {
            // Within the leases: nothing is claimed again.
            assert!(claims.is_empty(), "{claims:?}");
            continue;
        }
        assert_eq!(claims.len(), queued.len(), "every row, at {now}");
        let twice: Vec<_> = claims.iter().filter(|(_, n)| **n > 1).collect();
        assert!(twice.is_empty(), "claimed twice at {now}: {twice:?}");
    }
}

/// A fresh PostgreSQL store whose rollout `r-1` has one reminder to `p-0`,
/// claimed at 1,000 ms for 60 s: the store and the claim.
async fn postgres_with_one_claimed_reminder() -> (pg::PgStore, Vec<ClaimedDelivery>) {
    let store = both::postgres().await;
    rollout_of(&store, 1).await;
    store
        .materialise(&[reminder("p-0", 1, "email", 1_000)], &[], 1_000)
        .await
        .unwrap();
    let claimed = store.claim(1_000, 1, 60_000, &[]).await.unwrap();
    (store, claimed)
}

/// A claimer whose lease ran out while it sent records after another
/// process claimed and sent the row again: on PostgreSQL a row is
/// recorded (and chained) only while leased, so the evidence holds one
/// send. (SQLite, one serve at a time, records what it is told.)
#[tokio::test]
async fn a_send_recorded_twice_by_two_processes_is_recorded_and_chained_once() {
    let (store, slow) = postgres_with_one_claimed_reminder().await;
    let fast = store.claim(61_000, 1, 60_000, &[]).await.unwrap();
    assert_eq!((slow[0].id, fast[0].attempts), (fast[0].id, 2));
    let sent = |at| {
        let store = &store;
        let id = slow[0].id;
        async move {
            store
                .record(
                    &[(id, DeliveryOutcome::Sent { provider_id: None })],
                    &[],
                    at,
                )
                .await
                .unwrap()
        }
    };
    sent(61_500).await;
    sent(62_000).await;
    // A late failure report changes nothing either.
    store
        .record(
            &[(
                slow[0].id,
                DeliveryOutcome::Dead {
                    reason: "late".to_owned(),
                },
            )],
            &[],
            63_000,
        )
        .await
        .unwrap();
    assert_eq!(store.sent_times("email", 0).await.unwrap(), [61_500]);
    assert_eq!(store.count_rows("evidence_chain").await, 1);
    let totals = store.rollout_totals().await.unwrap();
    assert_eq!((totals[0].sent, totals[0].dead), (1, 0));
}

/// The schedulers of several processes queueing the same members' steps
/// at once, in different orders: every call succeeds (none deadlocks) and
/// each step is queued once.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn schedulers_on_two_postgres_stores_queue_each_step_once() {
    let (first, second) = two_postgres_stores().await;
    let members = rollout_of(&first, 50).await;
    let mut tasks = Vec::new();
    for task in 0..8_usize {
        let store = if task % 2 == 0 { &first } else { &second }.clone();
        let mut deliveries: Vec<NewDelivery> = members
            .iter()
            .flat_map(|m| (1..=4).map(|n| reminder(&m.person_id, n, "email", 1_000)))
            .collect();
        deliveries.rotate_left(task * 25);
        if task % 3 == 0 {
            deliveries.reverse();
        }
        let advances: Vec<MemberAdvance> = members
            .iter()
            .rev()
            .map(|m| MemberAdvance {
                rollout_id: "r-1".to_owned(),
                person_id: m.person_id.clone(),
                next_step: 4,
                next_due_at: None,
                shift_days: None,
            })
            .collect();
        tasks.push(tokio::spawn(async move {
            store.materialise(&deliveries, &advances, 1_000).await
        }));
    }
    for task in tasks {
        task.await.unwrap().unwrap();
    }
    assert_eq!(first.outstanding().await.unwrap(), 200);
    assert!(first.due_members(99_999, 100).await.unwrap().is_empty());
}

/// On PostgreSQL a recording of sends waits neither for the evidence
/// chain's lock nor for its rollout's totals and report stamp: while
/// another transaction holds all three, the sends are recorded, listed to
/// be linked and their totals added as rows; verify does not name a
/// listed send as missing; the next to take the lock links it, once; a
/// fold gives way while the totals are held, and moves them once free,
/// the totals reading the same throughout.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_send_recorded_while_the_chain_is_locked_is_listed_then_linked_once() {
    let (store, claimed) = postgres_with_one_claimed_reminder().await;
    let mut holder = store.pool().begin().await.unwrap();
    hold_chain_lock(&mut holder).await;
    sqlx::query("SELECT 1 FROM rollout_counts FOR UPDATE")
        .execute(&mut *holder)
        .await
        .unwrap();
    sqlx::query("SELECT 1 FROM report_stamps FOR UPDATE")
        .execute(&mut *holder)
        .await
        .unwrap();
    let stamp_before = store.report_stamps(&["r-1".to_owned()]).await.unwrap();
    let outcome = [(claimed[0].id, DeliveryOutcome::Sent { provider_id: None })];
    tokio::time::timeout(
        std::time::Duration::from_secs(10),
        store.record(&outcome, &[], 1_500),
    )
    .await
    .expect("recording waited for the chain's lock or the rollout's totals")
    .unwrap();
    assert_eq!(store.sent_times("email", 0).await.unwrap(), [1_500]);
    assert_eq!(store.count_rows("evidence_chain").await, 0);
    assert_eq!(store.count_rows("chain_pending").await, 1);
    assert_eq!(store.count_rows("outbox_count_deltas").await, 1);
    // A reminder moves no report stamp; the send counts at once.
    assert_eq!(
        store.report_stamps(&["r-1".to_owned()]).await.unwrap(),
        stamp_before
    );
    let totals = || async { store.rollout_totals().await.unwrap()[0].sent };
    let base = || async {
        sqlx::query_scalar::<_, i64>("SELECT sent FROM rollout_counts")
            .fetch_one(store.pool())
            .await
            .unwrap()
    };
    assert_eq!((totals().await, base().await), (1, 0));
    // The heartbeat's settle waits for neither: it leaves both for later.
    let settled = tokio::time::timeout(std::time::Duration::from_secs(10), store.settle())
        .await
        .expect("settle waited for the chain's lock or the totals");
    assert_eq!(settled.unwrap(), 0);
    assert_eq!(store.count_rows("chain_pending").await, 1);
    assert_eq!(store.count_rows("outbox_count_deltas").await, 1);
    // A verify waits for the lock: it links what is listed first.
    let verify = tokio::spawn({
        let store = store.clone();
        async move { store.verify_chain().await }
    });
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    assert!(!verify.is_finished(), "verify did not wait for the lock");
    holder.commit().await.unwrap();
    let report = verify.await.unwrap().unwrap();
    assert!(report.problems.is_empty(), "{report:?}");
    assert_eq!(report.events, 1);
    assert_eq!(store.count_rows("chain_pending").await, 0);

    // A fold gives way to a transaction holding the totals.
    let mut holder = store.pool().begin().await.unwrap();
    sqlx::query("SELECT 1 FROM rollout_counts FOR UPDATE")
        .execute(&mut *holder)
        .await
        .unwrap();
    tokio::time::timeout(std::time::Duration::from_secs(10), store.settle())
        .await
        .expect("the fold waited for the totals")
        .unwrap();
    assert_eq!(store.count_rows("outbox_count_deltas").await, 1);
    holder.commit().await.unwrap();
    assert_eq!(store.settle().await.unwrap(), 0);
    assert_eq!(store.count_rows("outbox_count_deltas").await, 0);
    assert_eq!((totals().await, base().await), (1, 1));
    assert_eq!(
        store.report_stamps(&["r-1".to_owned()]).await.unwrap(),
        stamp_before
    );
    assert_eq!(store.count_rows("evidence_chain").await, 1);

    // Listed again by hand (as a crash between two steps could leave it):
    // linked no second time.
    store
        .execute(&format!(
            "INSERT INTO chain_pending (outbox_id) VALUES ({})",
            claimed[0].id
        ))
        .await;
    assert_eq!(store.settle().await.unwrap(), 0);
    assert_eq!(store.count_rows("evidence_chain").await, 1);
    assert_eq!(store.count_rows("chain_pending").await, 0);
}

/// A send listed because the chain's lock was taken is linked by the next
/// transaction that takes the lock, whatever it appends: here an
/// acknowledgement, with no recording or heartbeat after it. Its link
/// comes before the acknowledgement's, and the chain verifies.
#[tokio::test]
async fn a_listed_send_is_linked_by_the_next_acknowledgement() {
    let (store, claimed) = postgres_with_one_claimed_reminder().await;
    let mut holder = store.pool().begin().await.unwrap();
    hold_chain_lock(&mut holder).await;
    let outcome = [(claimed[0].id, DeliveryOutcome::Sent { provider_id: None })];
    store.record(&outcome, &[], 1_500).await.unwrap();
    holder.rollback().await.unwrap();
    assert_eq!(store.count_rows("chain_pending").await, 1);
    assert_eq!(store.count_rows("evidence_chain").await, 0);

    store
        .acknowledge_item(&link_ack("p-0", claimed[0].id, 2_000))
        .await
        .unwrap();
    assert_eq!(store.count_rows("chain_pending").await, 0);
    let kinds: Vec<String> = sqlx::query_scalar("SELECT kind FROM evidence_chain ORDER BY seq")
        .fetch_all(store.pool())
        .await
        .unwrap();
    assert_eq!(kinds, ["delivery", "acknowledgement"]);
    let report = store.verify_chain().await.unwrap();
    assert!(report.problems.is_empty(), "{report:?}");
    assert_eq!(report.events, 2);
}

/// Several serves on one PostgreSQL recording sends at once, on two pools,
/// while acknowledgement-style appenders hold the chain's lock now and
/// then: every send is recorded, and once the heartbeat's link runs, each
/// is in the chain exactly once and the chain verifies.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sends_recorded_by_serves_at_once_are_each_linked_once() {
    let (first, second) = two_postgres_stores().await;
    rollout_of(&first, 1).await;
    let queued: Vec<NewDelivery> = (0..1_200)
        .map(|n| reminder("p-0", n, "email", 1_000))
        .collect();
    first.materialise(&queued, &[], 1_000).await.unwrap();
    let mut tasks = Vec::new();
    for task in 0..8_usize {
        let store = if task % 2 == 0 { &first } else { &second }.clone();
        tasks.push(tokio::spawn(async move {
            let mut sent = 0;
            loop {
                let claimed = store
                    .claim(1_000, 1 + task as u32 % 5 * 10, 60_000, &[])
                    .await
                    .unwrap();
                if claimed.is_empty() {
                    return sent;
                }
                let outcomes: Vec<(i64, DeliveryOutcome)> = claimed
                    .iter()
                    .map(|c| (c.id, DeliveryOutcome::Sent { provider_id: None }))
                    .collect();
                store.record(&outcomes, &[], 2_000).await.unwrap();
                sent += claimed.len();
            }
        }));
    }
    // Another appender takes the chain's lock over and over meanwhile, so
    // some recordings find it held and leave their sends listed.
    let busy = tokio::spawn({
        let pool = second.pool().clone();
        async move {
            for _ in 0..40 {
                let mut tx = pool.begin().await.unwrap();
                hold_chain_lock(&mut tx).await;
                tokio::time::sleep(std::time::Duration::from_millis(5)).await;
                tx.commit().await.unwrap();
            }
        }
    });
    let mut sent = 0;
    for task in tasks {
        sent += task.await.unwrap();
    }
    busy.await.unwrap();
    assert_eq!(sent, queued.len());
    first.settle().await.unwrap();
    assert_eq!(first.count_rows("chain_pending").await, 0);
    let links: Vec<(String, i64)> = sqlx::query_as(
        "SELECT ref, count(*) FROM evidence_chain WHERE kind = 'delivery' GROUP BY ref",
    )
    .fetch_all(first.pool())
    .await
    .unwrap();
    assert_eq!(links.len(), queued.len());
    assert!(
        links.iter().all(|(_, n)| *n == 1),
        "linked twice: {links:?}"
    );
    let report = first.verify_chain().await.unwrap();
    assert!(report.problems.is_empty(), "{report:?}");
    let totals = first.rollout_totals().await.unwrap();
    assert_eq!(totals[0].sent, queued.len() as i64);
    // Folded by the settle above: all in the rollout's totals row.
    assert_eq!(first.count_rows("outbox_count_deltas").await, 0);
}

/// Two serves recording the same two rows at once (the first's lease ran
/// out and the second claimed them again), each with one sent and one to
/// retry, in opposite orders: both recordings succeed (neither is aborted
/// as a deadlock), and each row is recorded once.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_recordings_of_the_same_rows_with_mixed_outcomes_do_not_deadlock() {
    let (first, second) = two_postgres_stores().await;
    rollout_of(&first, 1).await;
    for round in 0..20_u32 {
        let at = 1_000 + i64::from(round) * 1_000_000;
        first
            .materialise(
                &[
                    reminder("p-0", 2 * round, "email", at),
                    reminder("p-0", 2 * round + 1, "email", at),
                ],
                &[],
                at,
            )
            .await
            .unwrap();
        let slow = first.claim(at, 2, 60_000, &[]).await.unwrap();
        let fast = second.claim(at + 61_000, 2, 60_000, &[]).await.unwrap();
        assert_eq!(slow.len(), 2);
        assert_eq!(
            slow.iter().map(|c| c.id).collect::<Vec<_>>(),
            fast.iter().map(|c| c.id).collect::<Vec<_>>()
        );
        let (a, b) = (slow[0].id, slow[1].id);
        let retry = |at| DeliveryOutcome::RetryAt {
            at,
            reason: "busy".to_owned(),
        };
        let sent = || DeliveryOutcome::Sent { provider_id: None };
        let barrier = std::sync::Arc::new(tokio::sync::Barrier::new(2));
        let one = tokio::spawn({
            let (store, barrier) = (first.clone(), barrier.clone());
            let outcomes = [(a, sent()), (b, retry(1_000_000_000_000))];
            async move {
                barrier.wait().await;
                store.record(&outcomes, &[], at + 62_000).await
            }
        });
        let two = tokio::spawn({
            let (store, barrier) = (second.clone(), barrier.clone());
            let outcomes = [(b, sent()), (a, retry(1_000_000_000_000))];
            async move {
                barrier.wait().await;
                store.record(&outcomes, &[], at + 62_000).await
            }
        });
        one.await
            .unwrap()
            .unwrap_or_else(|e| panic!("round {round}: {e}"));
        two.await
            .unwrap()
            .unwrap_or_else(|e| panic!("round {round}: {e}"));
    }
    second.settle().await.unwrap();
    let report = first.verify_chain().await.unwrap();
    assert!(report.problems.is_empty(), "{report:?}");
}
