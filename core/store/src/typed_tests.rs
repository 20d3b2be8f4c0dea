//! Typed columns read back as written, in the text older databases hold;
//! the read-only inspection API; the test-support methods.

use super::*;
use cascade_model::content::{ItemKind, NewsletterItem, Status};
use cascade_model::rollout::StepKind;

const ALL_KINDS: [(StepKind, &str); 4] = [
    (StepKind::Initial, "initial"),
    (StepKind::Reminder, "reminder"),
    (StepKind::Escalation, "escalation"),
    (StepKind::FollowUp, "follow-up"),
];

fn item() -> LearningItem {
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
            body: "Neglect is still the most common category.".to_owned(),
        }),
        version: Version("v1".to_owned()),
    }
}

/// A store with the rollout `r-1` of `nl-1` to `p-1`, no directory.
async fn store_with_a_rollout() -> SqliteStore {
    with_a_rollout(SqliteStore::open_in_memory().await.unwrap()).await
}

/// `store` with the rollout `r-1` of `nl-1` to `p-1`, no directory.
async fn with_a_rollout<S: Store + Outbox>(store: S) -> S {
    store.save_item(&item(), "source").await.unwrap();
    store
        .create_rollout(NewRollout {
            id: "r-1",
            item_id: "nl-1",
            item_version: "v1",
            definition: "{}",
            members: &[NewMember {
                person_id: "p-1".to_owned(),
                wave: 0,
                first_due_at: 1_000,
            }],
            audience: None,
            team_posts: &[],
            now: 0,
        })
        .await
        .unwrap();
    store
}

fn delivery(kind: StepKind, n: u32) -> NewDelivery {
    NewDelivery {
        idempotency_key: format!("r-1/p-1/{}-{n}/p-1/0", kind.as_str()),
        rollout_id: "r-1".to_owned(),
        person_id: "p-1".to_owned(),
        recipient_id: "p-1".to_owned(),
        wave: 0,
        step_kind: kind,
        step_number: n,
        channel: "email".to_owned(),
        channel_rank: 0,
        due_at: 1_000,
    }
}

async fn a_claim_leaves_the_rows_of_busy_channels_and_takes_the_others(store: impl Store + Outbox) {
    let store = with_a_rollout(store).await;
    let mut queued: Vec<NewDelivery> = (1..=4).map(|n| delivery(StepKind::Reminder, n)).collect();
    queued[1].channel = "telegram".to_owned();
    queued[3].channel = "telegram".to_owned();
    store.materialise(&queued, &[], 1_000).await.unwrap();
    let busy = ["email".to_owned()];
    let claimed = store.claim(1_000, 10, 60_000, &busy).await.unwrap();
    assert_eq!(
        claimed
            .iter()
            .map(|c| c.channel.as_str())
            .collect::<Vec<_>>(),
        ["telegram", "telegram"]
    );
    let claimed = store.claim(1_000, 10, 60_000, &[]).await.unwrap();
    assert_eq!(
        claimed
            .iter()
            .map(|c| c.channel.as_str())
            .collect::<Vec<_>>(),
        ["email", "email"]
    );
}

/// `n` reminders of `p-1` on `channel`, due at `due_at` + their number.
fn queued_on(channel: &str, first: u32, n: u32, due_at: i64) -> Vec<NewDelivery> {
    (first..first + n)
        .map(|k| NewDelivery {
            channel: channel.to_owned(),
            due_at: due_at + i64::from(k),
            ..delivery(StepKind::Reminder, k)
        })
        .collect()
}

fn channels_of(claimed: &[ClaimedDelivery]) -> Vec<&str> {
    let mut channels: Vec<&str> = claimed.iter().map(|c| c.channel.as_str()).collect();
    channels.sort();
    channels
}

async fn a_claim_by_channel_takes_each_channels_share_however_old_the_others_rows_are(
    store: impl Store + Outbox,
) {
    let store = with_a_rollout(store).await;
    // Email's rows are all older than Telegram's: a claim in due order
    // alone would take only email.
    store
        .materialise(&queued_on("email", 1, 20, 100), &[], 1_000)
        .await
        .unwrap();
    store
        .materialise(&queued_on("telegram", 21, 5, 500), &[], 1_000)
        .await
        .unwrap();
    store
        .materialise(&queued_on("retired", 26, 2, 0), &[], 1_000)
        .await
        .unwrap();
    let shares = [
        ("email".to_owned(), 3),
        ("telegram".to_owned(), 3),
        ("stuck".to_owned(), 0),
    ];
    let claim = ChannelClaim {
        now: 1_000,
        lease_ms: 60_000,
        owner: "d-1",
        shares: &shares,
        others: 0,
    };
    let claimed = store.claim_by_channel(claim).await.unwrap();
    assert_eq!(
        channels_of(&claimed),
        [
            "email", "email", "email", "telegram", "telegram", "telegram"
        ]
    );
    // Each channel's oldest rows first.
    let mut numbers: Vec<(&str, u32)> = claimed
        .iter()
        .map(|c| (c.channel.as_str(), c.step_number))
        .collect();
    numbers.sort();
    assert_eq!(
        numbers,
        [
            ("email", 1),
            ("email", 2),
            ("email", 3),
            ("telegram", 21),
            ("telegram", 22),
            ("telegram", 23)
        ]
    );
    // A share of 0 leaves a channel alone; the rows of channels not named
    // (no longer configured) come as `others`.
    let shares = [("email".to_owned(), 0), ("telegram".to_owned(), 10)];
    let claimed = store
        .claim_by_channel(ChannelClaim {
            shares: &shares,
            others: 10,
            ..claim
        })
        .await
        .unwrap();
    assert_eq!(
        channels_of(&claimed),
        ["retired", "retired", "telegram", "telegram"]
    );
    // Nothing asked, nothing claimed.
    let claimed = store
        .claim_by_channel(ChannelClaim {
            shares: &[],
            others: 0,
            ..claim
        })
        .await
        .unwrap();
    assert!(claimed.is_empty());
}

async fn leases_of_owners_not_alive_are_taken_back_at_once_and_a_live_owners_are_kept(
    store: impl Store + Outbox,
) {
    let store = with_a_rollout(store).await;
    store
        .materialise(&queued_on("email", 1, 6, 100), &[], 1_000)
        .await
        .unwrap();
    let claim = |owner, n, now| {
        let shares = vec![("email".to_owned(), n)];
        let store = &store;
        async move {
            store
                .claim_by_channel(ChannelClaim {
                    now,
                    lease_ms: 120_000,
                    owner,
                    shares: &shares,
                    others: 0,
                })
                .await
                .unwrap()
        }
    };
    let dead = claim("d-killed", 2, 1_000).await;
    let live = claim("d-alive", 2, 1_000).await;
    // Leased before owners were recorded: no owner, so not alive.
    let ownerless = store.claim(1_000, 1, 120_000, &[]).await.unwrap();
    assert_eq!((dead.len(), live.len(), ownerless.len()), (2, 2, 1));
    // Within the lease nothing leased is claimed again.
    assert_eq!(claim("d-new", 10, 1_500).await.len(), 1);

    let taken = store
        .take_back_leases(2_000, &["d-new".to_owned(), "d-alive".to_owned()])
        .await
        .unwrap();
    assert_eq!(taken, 3);
    let again = claim("d-new", 10, 2_000).await;
    let mut ids: Vec<i64> = again.iter().map(|c| c.id).collect();
    ids.sort();
    let mut expected: Vec<i64> = dead.iter().chain(&ownerless).map(|c| c.id).collect();
    expected.sort();
    // Only the taken-back rows: the live owner's stay leased to it, and
    // the new owner's own are not its to take back.
    assert_eq!(ids, expected);
    assert!(again.iter().all(|c| c.attempts == 2), "{again:?}");
    assert_eq!(
        store
            .take_back_leases(3_000, &["d-new".to_owned(), "d-alive".to_owned()])
            .await
            .unwrap(),
        0
    );
}

#[tokio::test]
async fn every_step_kind_is_stored_as_its_old_text_and_read_back_the_same() {
    let store = store_with_a_rollout().await;
    let queued: Vec<NewDelivery> = ALL_KINDS
        .iter()
        .zip(1..)
        .map(|((kind, _), n)| delivery(*kind, n))
        .collect();
    store.materialise(&queued, &[], 1_000).await.unwrap();

    // The column holds exactly the text cascade always wrote.
    let texts: Vec<String> = sqlx::query_scalar("SELECT step_kind FROM outbox ORDER BY id")
        .fetch_all(store.pool())
        .await
        .unwrap();
    let names: Vec<&str> = ALL_KINDS.iter().map(|(_, name)| *name).collect();
    assert_eq!(texts, names);

    // Every typed read gives the kind written.
    let kinds: Vec<StepKind> = ALL_KINDS.iter().map(|(kind, _)| *kind).collect();
    let inspected: Vec<StepKind> = store
        .outbox_rows()
        .await
        .unwrap()
        .iter()
        .map(|r| r.step_kind)
        .collect();
    assert_eq!(inspected, kinds);
    let mut claimed = store.claim(1_000, 10, 60_000, &[]).await.unwrap();
    claimed.sort_by_key(|c| c.id);
    assert_eq!(
        claimed.iter().map(|c| c.step_kind).collect::<Vec<_>>(),
        kinds
    );
    for c in &claimed {
        let info = store.delivery(c.id).await.unwrap().unwrap();
        assert_eq!(info.step_kind, c.step_kind);
    }
    let outcomes: Vec<(i64, DeliveryOutcome)> = claimed
        .iter()
        .map(|c| {
            (
                c.id,
                DeliveryOutcome::Dead {
                    reason: format!("no {}", c.step_kind),
                },
            )
        })
        .collect();
    store.record(&outcomes, &[], 2_000).await.unwrap();
    let mut dead: Vec<(StepKind, String)> = store
        .dead_letters("r-1", 10)
        .await
        .unwrap()
        .into_iter()
        .map(|d| (d.step_kind, d.reason))
        .collect();
    dead.sort();
    let expected: Vec<(StepKind, String)> = ALL_KINDS
        .iter()
        .map(|(kind, name)| (*kind, format!("no {name}")))
        .collect();
    assert_eq!(dead, expected);
}

#[tokio::test]
async fn rows_an_older_cascade_wrote_read_as_their_kinds() {
    let store = store_with_a_rollout().await;
    for (n, (_, name)) in ALL_KINDS.iter().enumerate() {
        sqlx::query(
            "INSERT INTO outbox (idempotency_key, rollout_id, person_id, recipient_id, wave, step_kind,
                 step_number, channel, channel_rank, state, due_at, sent_at, updated_at)
             VALUES (?, 'r-1', 'p-1', 'p-1', 0, ?, 1, 'email', 0, 'sent', 0, ?, 0)",
        )
        .bind(format!("old-{n}"))
        .bind(*name)
        .bind(n as i64 + 1)
        .execute(store.pool())
        .await
        .unwrap();
    }
    let kinds: Vec<StepKind> = ALL_KINDS.iter().map(|(kind, _)| *kind).collect();
    let read: Vec<StepKind> = store
        .rollout_outbox("r-1")
        .await
        .unwrap()
        .iter()
        .map(|r| r.step_kind)
        .collect();
    assert_eq!(read, kinds);
    // Reports read the sent initial and escalation rows only.
    let report = store.report_rollout("r-1").await.unwrap().unwrap();
    let sends: Vec<(StepKind, i64)> = report
        .sends
        .iter()
        .map(|s| (s.step_kind, s.sent_at))
        .collect();
    assert_eq!(sends, [(StepKind::Initial, 1), (StepKind::Escalation, 3)]);
    // Pending items count initial and reminder rows sent to the person.
    let pending = store.pending_items("p-1").await.unwrap();
    assert_eq!(pending.len(), 1);
    assert_eq!(pending[0].delivery_id, 2);
}

#[tokio::test]
async fn a_step_kind_no_cascade_writes_is_an_error_not_a_guess() {
    let store = store_with_a_rollout().await;
    sqlx::query(
        "INSERT INTO outbox (idempotency_key, rollout_id, person_id, recipient_id, wave, step_kind,
             step_number, channel, channel_rank, state, due_at, updated_at)
         VALUES ('odd', 'r-1', 'p-1', 'p-1', 0, 'Initial', 1, 'email', 0, 'due', 0, 0)",
    )
    .execute(store.pool())
    .await
    .unwrap();
    assert!(matches!(
        store.outbox_rows().await,
        Err(StoreError::Database(_))
    ));
}

async fn inspection_reads_the_outbox_members_and_evidence_as_written(
    store: impl Store + Outbox + Evidence + Inspect,
) {
    let store = with_a_rollout(store).await;
    store
        .materialise(
            &[delivery(StepKind::Initial, 1)],
            &[MemberAdvance {
                rollout_id: "r-1".to_owned(),
                person_id: "p-1".to_owned(),
                next_step: 1,
                next_due_at: Some(5_000),
                shift_days: None,
            }],
            1_000,
        )
        .await
        .unwrap();
    let rows = store.outbox_rows().await.unwrap();
    assert_eq!(rows.len(), 1);
    let row = &rows[0];
    assert_eq!(
        (row.state, row.attempts, row.due_at, row.channel.as_str()),
        (DeliveryState::Due, 0, 1_000, "email")
    );
    assert_eq!(store.rollout_outbox("r-2").await.unwrap(), []);
    let claimed = store.claim(1_000, 10, 60_000, &[]).await.unwrap();
    store
        .record(
            &[(
                claimed[0].id,
                DeliveryOutcome::Sent {
                    provider_id: Some("m-1".to_owned()),
                },
            )],
            &[],
            1_500,
        )
        .await
        .unwrap();
    let row = &store.outbox_rows().await.unwrap()[0];
    assert_eq!(
        (
            row.state,
            row.attempts,
            row.sent_at,
            row.provider_id.as_deref()
        ),
        (DeliveryState::Sent, 1, Some(1_500), Some("m-1"))
    );

    let ack = NewAcknowledgement {
        person_id: "p-1".to_owned(),
        item_id: "nl-1".to_owned(),
        item_version: "v1".to_owned(),
        rollout_id: Some("r-1".to_owned()),
        delivery_id: Some(row.id),
        channel: "web".to_owned(),
        method: AckMethod::OnBehalf,
        at: 2_000,
    };
    store.acknowledge_item(&ack).await.unwrap();
    store
        .acknowledge_item(&NewAcknowledgement { at: 3_000, ..ack })
        .await
        .unwrap();
    let acks = store.acknowledgements().await.unwrap();
    assert_eq!(acks.len(), 1);
    assert_eq!(
        (acks[0].method, acks[0].at, acks[0].delivery_id),
        (AckMethod::OnBehalf, 2_000, Some(row.id))
    );
    let log: Vec<(Option<String>, String)> = store
        .acknowledgement_log()
        .await
        .unwrap()
        .into_iter()
        .map(|l| (l.person_id, l.outcome))
        .collect();
    assert_eq!(
        log,
        [
            (Some("p-1".to_owned()), "recorded".to_owned()),
            (Some("p-1".to_owned()), "repeat".to_owned())
        ]
    );
    let members = store.members("r-1").await.unwrap();
    assert_eq!(
        members,
        [MemberRecord {
            rollout_id: "r-1".to_owned(),
            person_id: "p-1".to_owned(),
            wave: 0,
            next_step: 1,
            next_due_at: Some(5_000),
            acknowledged_at: Some(2_000),
            team_id: None,
            agency_id: None,
            out_reason: None,
            out_at: None,
            out_next_due_at: None,
            joined_at: None,
            shift_days: 0,
            refresher_next: 1,
            refresher_due_at: None,
        }]
    );

    for (reason, at) in [("forged", 60_000), ("forged", 60_001), ("expired", 200_000)] {
        store
            .count_refusal("web", AckMethod::Link, reason, at)
            .await
            .unwrap();
    }
    let refusals: Vec<(String, i64, i64)> = store
        .refusal_counts()
        .await
        .unwrap()
        .into_iter()
        .map(|r| (r.reason, r.minute, r.count))
        .collect();
    assert_eq!(
        refusals,
        [
            ("expired".to_owned(), 180_000, 1),
            ("forged".to_owned(), 60_000, 2)
        ]
    );
}

#[tokio::test]
async fn a_legacy_link_code_is_kept_as_plain_sha256_and_redeemed_by_it() {
    let project = tests::Project::with_directory().await;
    let project = &project.store;
    project
        .insert_legacy_link_code("plain-hash", "p-1", 0, 10_000)
        .await
        .unwrap();
    let codes = project.link_codes().await.unwrap();
    assert_eq!(codes.len(), 1);
    assert_eq!(
        (codes[0].hash_kind.as_str(), codes[0].person_id.as_str()),
        ("sha256", "p-1")
    );
    let linked = project
        .redeem_link_code("keyed-hash", "plain-hash", "telegram", "tg-1", 5_000)
        .await
        .unwrap();
    assert_eq!(linked, Ok("p-1".to_owned()));
    let identity = project.identity("telegram", "tg-1").await.unwrap().unwrap();
    assert_eq!(
        (identity.person_id.as_str(), identity.unreachable_at),
        ("p-1", None)
    );
    project
        .mark_unreachable("telegram", "tg-1", 7_000)
        .await
        .unwrap();
    let identity = project.identity("telegram", "tg-1").await.unwrap().unwrap();
    assert_eq!(identity.unreachable_at, Some(7_000));
    assert_eq!(project.identity("telegram", "tg-2").await.unwrap(), None);
}

#[tokio::test]
async fn a_bulk_insert_writes_the_members_it_is_given_and_nothing_else() {
    let store = store_with_a_rollout().await;
    let members: Vec<NewMember> = (0..5)
        .map(|i| NewMember {
            person_id: format!("q-{i}"),
            wave: i % 2,
            first_due_at: 1_000 + i64::from(i),
        })
        .collect();
    store.bulk_insert_members("r-1", &members, 2).await.unwrap();
    store.checkpoint_wal().await.unwrap();
    let read: Vec<(String, u32, Option<i64>)> = store
        .members("r-1")
        .await
        .unwrap()
        .into_iter()
        .filter(|m| m.person_id.starts_with("q-"))
        .map(|m| (m.person_id, m.wave, m.next_due_at))
        .collect();
    let written: Vec<(String, u32, Option<i64>)> = members
        .into_iter()
        .map(|m| (m.person_id, m.wave, Some(m.first_due_at)))
        .collect();
    assert_eq!(read, written);
    assert_eq!(store.outbox_rows().await.unwrap(), []);
}

/// A row with a step kind cascade never writes (a hand edit, a newer
/// version) is a dead letter with the reason; the rows claimed with it
/// still go, where once the whole batch failed to decode.
async fn a_row_with_an_unknown_step_kind_is_a_dead_letter_and_the_batch_goes_on(
    store: impl tests::TestStore + Outbox + RawRead,
) {
    let store = with_a_rollout(store).await;
    store
        .materialise(
            &[
                delivery(StepKind::Initial, 1),
                delivery(StepKind::Reminder, 1),
            ],
            &[],
            1_000,
        )
        .await
        .unwrap();
    store
        .execute(
            "INSERT INTO outbox (idempotency_key, rollout_id, person_id, recipient_id, wave, step_kind,
                 step_number, channel, channel_rank, state, due_at, updated_at)
             VALUES ('odd', 'r-1', 'p-1', 'p-1', 0, 'nudge', 1, 'email', 0, 'due', 500, 0)",
        )
        .await;
    let claimed = store.claim(1_000, 10, 60_000, &[]).await.unwrap();
    assert_eq!(
        claimed.iter().map(|c| c.step_kind).collect::<Vec<_>>(),
        [StepKind::Initial, StepKind::Reminder]
    );
    let (state, error) = store
        .two_texts("SELECT state, last_error FROM outbox WHERE idempotency_key = 'odd'")
        .await;
    assert_eq!(state, "dead");
    assert!(error.contains("unknown step kind \"nudge\""), "{error}");
    assert!(
        store
            .claim(2_000, 10, 60_000, &[])
            .await
            .unwrap()
            .is_empty()
    );
}

/// Reads one row of two text columns (raw SQL without parameters).
trait RawRead {
    async fn two_texts(&self, sql: &str) -> (String, String);
}

impl RawRead for SqliteStore {
    async fn two_texts(&self, sql: &str) -> (String, String) {
        sqlx::query_as(sql).fetch_one(self.pool()).await.unwrap()
    }
}

impl RawRead for pg::PgStore {
    async fn two_texts(&self, sql: &str) -> (String, String) {
        sqlx::query_as(sql).fetch_one(self.pool()).await.unwrap()
    }
}

crate::both::on_both_stores!(
    a_claim_leaves_the_rows_of_busy_channels_and_takes_the_others,
    a_claim_by_channel_takes_each_channels_share_however_old_the_others_rows_are,
    leases_of_owners_not_alive_are_taken_back_at_once_and_a_live_owners_are_kept,
    a_row_with_an_unknown_step_kind_is_a_dead_letter_and_the_batch_goes_on,
    inspection_reads_the_outbox_members_and_evidence_as_written,
);
