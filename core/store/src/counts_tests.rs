//! The per-rollout totals kept by triggers (migration 20261001000000)
//! against a recount of every member and outbox row, on random stores
//! built through the store's own calls.

use super::*;
use cascade_model::content::{ItemKind, NewsletterItem, Status};
use cascade_model::rollout::StepKind;

/// A small deterministic generator (xorshift64*), so a failing seed can be
/// run again.
struct Random(u64);

impl Random {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

fn item(version: &str) -> LearningItem {
    LearningItem {
        id: "nl-1".to_owned(),
        title: "Neglect".to_owned(),
        themes: vec!["neglect".to_owned()],
        status: Status::Published,
        links: Vec::new(),
        privacy_allow: Vec::new(),
        what_changed: None,
        check_questions: Vec::new(),
        refresher: Vec::new(),
        classification: Default::default(),
        summary: None,
        kind: ItemKind::NewsletterItem(NewsletterItem {
            newsletter: "Partnership Matters".to_owned(),
            issue: "2026-03".to_owned(),
            body: format!("Neglect, version {version}."),
        }),
        version: Version(version.to_owned()),
    }
}

async fn recount(store: &SqliteStore) -> Vec<RolloutTotals> {
    store.recount_rollout_totals().await.unwrap()
}

/// What the random run reads with raw SQL: every rollout's totals counted
/// afresh, and the sent rows' channels and keys.
pub(crate) trait Recount {
    async fn recount(&self) -> Vec<RolloutTotals>;
    async fn sent_keys(&self) -> Vec<(String, String)>;
}

const SENT_KEYS: &str =
    "SELECT channel, idempotency_key FROM outbox WHERE state = 'sent' ORDER BY id";

impl Recount for SqliteStore {
    async fn recount(&self) -> Vec<RolloutTotals> {
        recount(self).await
    }
    async fn sent_keys(&self) -> Vec<(String, String)> {
        sqlx::query_as(SENT_KEYS)
            .fetch_all(self.pool())
            .await
            .unwrap()
    }
}

impl Recount for pg::PgStore {
    async fn recount(&self) -> Vec<RolloutTotals> {
        sqlx::query_as(
            "SELECT r.id AS rollout_id, COALESCE(m.members, 0) AS members,
                    COALESCE(m.acknowledged, 0) AS acknowledged,
                    COALESCE(o.sent, 0) AS sent, COALESCE(o.dead, 0) AS dead
             FROM rollouts r
             LEFT JOIN (SELECT rollout_id, COUNT(*) AS members, COUNT(acknowledged_at) AS acknowledged
                        FROM rollout_members GROUP BY rollout_id) m ON m.rollout_id = r.id
             LEFT JOIN (SELECT rollout_id, COUNT(*) FILTER (WHERE state = 'sent') AS sent,
                               COUNT(*) FILTER (WHERE state = 'dead') AS dead
                        FROM outbox GROUP BY rollout_id) o ON o.rollout_id = r.id
             ORDER BY r.id",
        )
        .fetch_all(self.pool())
        .await
        .unwrap()
    }
    async fn sent_keys(&self) -> Vec<(String, String)> {
        sqlx::query_as(SENT_KEYS)
            .fetch_all(self.pool())
            .await
            .unwrap()
    }
}

fn delivery(rollout: &str, person: &str, kind: StepKind, step: u32, channel: &str) -> NewDelivery {
    NewDelivery {
        idempotency_key: format!("{rollout}/{person}/{}-{step}/{channel}", kind.as_str()),
        rollout_id: rollout.to_owned(),
        person_id: person.to_owned(),
        recipient_id: person.to_owned(),
        wave: 0,
        step_kind: kind,
        step_number: step,
        channel: channel.to_owned(),
        channel_rank: 0,
        due_at: 0,
    }
}

/// Random rollouts, sends (sent, retried, dead, released, deferred),
/// bounces, acknowledgements (repeats included), cancellations and retried
/// dead letters; after every step the kept totals equal a recount.
async fn run<S: Store + Outbox + Evidence + Recount>(store: &S, seed: u64) {
    let mut rng = Random(seed);
    for version in ["v1", "v2"] {
        store.save_item(&item(version), "source").await.unwrap();
    }
    let people: Vec<String> = (0..30).map(|i| format!("p-{i:02}")).collect();
    let channels = ["email", "teams", "telegram"];
    let mut rollouts: Vec<(String, String, Vec<String>)> = Vec::new();
    let mut now = 1_000;
    for step in 0..60 {
        now += 1_000;
        match rng.below(7) {
            // A new rollout of a random version to a random part of the people.
            0 | 1 if rollouts.len() < 6 => {
                let id = format!("r-{}", rollouts.len());
                let version = if rng.below(2) == 0 { "v1" } else { "v2" };
                let members: Vec<NewMember> = people
                    .iter()
                    .filter(|_| rng.below(3) > 0)
                    .map(|p| NewMember {
                        person_id: p.clone(),
                        wave: 0,
                        first_due_at: now,
                    })
                    .collect();
                store
                    .create_rollout(NewRollout {
                        id: &id,
                        item_id: "nl-1",
                        item_version: version,
                        definition: "{}",
                        members: &members,
                        audience: None,
                        team_posts: &[],
                        now,
                    })
                    .await
                    .unwrap();
                let ids = members.into_iter().map(|m| m.person_id).collect();
                rollouts.push((id, version.to_owned(), ids));
            }
            // Messages queued for some members, claimed and sent with random outcomes.
            0..=2 if !rollouts.is_empty() => {
                let (id, _, members) = &rollouts[rng.below(rollouts.len() as u64) as usize];
                let kinds = [StepKind::Initial, StepKind::Reminder, StepKind::Escalation];
                let mut deliveries = Vec::new();
                for p in members {
                    if rng.below(2) == 0 {
                        let kind = kinds[rng.below(3) as usize];
                        let channel = channels[rng.below(3) as usize];
                        deliveries.push(delivery(id, p, kind, rng.below(2) as u32, channel));
                    }
                }
                store.materialise(&deliveries, &[], now).await.unwrap();
                let claimed = store.claim(now, 50, 60_000, &[]).await.unwrap();
                let outcomes: Vec<(i64, DeliveryOutcome)> = claimed
                    .iter()
                    .map(|c| {
                        let outcome = match rng.below(5) {
                            0 | 1 => DeliveryOutcome::Sent { provider_id: None },
                            2 => DeliveryOutcome::Dead {
                                reason: "refused".to_owned(),
                            },
                            3 => DeliveryOutcome::RetryAt {
                                at: now,
                                reason: "busy".to_owned(),
                            },
                            _ if rng.below(2) == 0 => DeliveryOutcome::Released,
                            _ => DeliveryOutcome::Deferred { at: now },
                        };
                        (c.id, outcome)
                    })
                    .collect();
                store.record(&outcomes, &[], now).await.unwrap();
            }
            // A provider reports a sent message bounced.
            3 => {
                let sent = store.sent_keys().await;
                if !sent.is_empty() {
                    let (channel, key) = &sent[rng.below(sent.len() as u64) as usize];
                    store.bounce(channel, key, "gone", now).await.unwrap();
                }
            }
            // People acknowledge some version, some of them twice.
            4 => {
                let acks: Vec<NewAcknowledgement> = (0..rng.below(12))
                    .map(|i| NewAcknowledgement {
                        person_id: people[rng.below(people.len() as u64) as usize].clone(),
                        item_id: "nl-1".to_owned(),
                        item_version: if rng.below(2) == 0 { "v1" } else { "v2" }.to_owned(),
                        rollout_id: None,
                        delivery_id: None,
                        channel: "web".to_owned(),
                        method: AckMethod::Link,
                        at: now + i as i64,
                    })
                    .collect();
                store.acknowledge_items(&acks).await.unwrap();
            }
            5 if !rollouts.is_empty() => {
                let (id, _, _) = &rollouts[rng.below(rollouts.len() as u64) as usize];
                store.retry_dead_letters(id, now).await.unwrap();
            }
            6 if !rollouts.is_empty() => {
                let (id, _, _) = &rollouts[rng.below(rollouts.len() as u64) as usize];
                let state = match rng.below(3) {
                    0 => RolloutState::Cancelled,
                    1 => RolloutState::Paused,
                    _ => RolloutState::Active,
                };
                store.set_rollout_state(id, state, now).await.unwrap();
            }
            _ => {}
        }
        let kept = store.rollout_totals().await.unwrap();
        assert_eq!(kept, store.recount().await, "seed {seed}, step {step}");
    }
    let totals = store.rollout_totals().await.unwrap();
    assert!(
        totals.iter().any(|t| t.sent > 0) && totals.iter().any(|t| t.acknowledged > 0),
        "seed {seed} exercised too little: {totals:?}"
    );
}

#[tokio::test]
async fn kept_rollout_totals_equal_a_recount_on_random_stores() {
    for seed in 1..=40u64 {
        let store = SqliteStore::open_in_memory().await.unwrap();
        run(&store, seed.wrapping_mul(0x9e37_79b9_7f4a_7c15)).await;
    }
}

#[tokio::test]
async fn kept_rollout_totals_equal_a_recount_on_random_postgres_stores() {
    for seed in 1..=40u64 {
        let store = both::postgres().await;
        run(&store, seed.wrapping_mul(0x9e37_79b9_7f4a_7c15)).await;
        store.close().await;
    }
}

#[tokio::test]
async fn a_store_from_before_the_kept_totals_gets_them_counted_when_migrated() {
    // Rows written with the triggers gone, as a store migrated to just
    // before 20261001000000 holds them; the migration counts them.
    let store = SqliteStore::open_in_memory().await.unwrap();
    store.save_item(&item("v1"), "source").await.unwrap();
    let member = |p: &str| NewMember {
        person_id: p.to_owned(),
        wave: 0,
        first_due_at: 0,
    };
    store
        .create_rollout(NewRollout {
            id: "r-old",
            item_id: "nl-1",
            item_version: "v1",
            definition: "{}",
            members: &[member("p-1"), member("p-2")],
            audience: None,
            team_posts: &[],
            now: 0,
        })
        .await
        .unwrap();
    store
        .materialise(
            &[delivery("r-old", "p-1", StepKind::Initial, 0, "email")],
            &[],
            0,
        )
        .await
        .unwrap();
    let claimed = store.claim(0, 10, 60_000, &[]).await.unwrap();
    store
        .record(
            &[(claimed[0].id, DeliveryOutcome::Sent { provider_id: None })],
            &[],
            0,
        )
        .await
        .unwrap();
    // Forget the kept totals, then run the migration's own SQL again.
    let pool = store.pool();
    let migration = include_str!("../migrations/20261001000000_rollout_counts.sql");
    for name in [
        "rollout_counts_rollout_added",
        "rollout_counts_member_removed",
        "rollout_counts_member_acknowledged",
        "rollout_counts_outbox_added",
        "rollout_counts_outbox_state",
        "rollout_counts_outbox_removed",
        "rollout_counts_member_moved",
        "rollout_counts_outbox_moved",
    ] {
        sqlx::query(&format!("DROP TRIGGER {name}"))
            .execute(pool)
            .await
            .unwrap();
    }
    sqlx::query("DROP TABLE rollout_counts")
        .execute(pool)
        .await
        .unwrap();
    sqlx::raw_sql(migration).execute(pool).await.unwrap();
    let totals = store.rollout_totals().await.unwrap();
    assert_eq!(
        (totals[0].members, totals[0].sent, totals[0].dead),
        (2, 1, 0),
        "{totals:?}"
    );
    assert_eq!(totals, recount(&store).await);
}
