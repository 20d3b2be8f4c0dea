//! The evidence store and its chain on both stores (issue 18): the first
//! acknowledgement counts, also when several processes record it at once;
//! check answers go with it; refusals are counted and sealed by the
//! minute; the chain verifies, names the first event touched by an edit, a
//! removed link or a reorder, exports in order, and holds the same
//! digests for the same events in either store.

use super::tests::{Project, TestStore, newsletter_item};
use super::*;
use crate::both::on_both_stores;
use crate::pg::PgStore;

/// Test-only raw SQL on either store (no parameters: the two write them
/// differently), as any writer of the database might.
pub(crate) trait RawSql {
    fn exec(&self, sql: &str) -> impl Future<Output = u64> + Send;
    /// The first column of every row, as text.
    fn texts(&self, sql: &str) -> impl Future<Output = Vec<String>> + Send;
}

impl RawSql for SqliteStore {
    async fn exec(&self, sql: &str) -> u64 {
        self.execute_sql(sql, &[]).await.unwrap()
    }
    async fn texts(&self, sql: &str) -> Vec<String> {
        SqliteStore::texts(self, sql).await.unwrap()
    }
}

impl RawSql for PgStore {
    async fn exec(&self, sql: &str) -> u64 {
        sqlx::query(sql)
            .execute(self.pool())
            .await
            .unwrap()
            .rows_affected()
    }
    async fn texts(&self, sql: &str) -> Vec<String> {
        sqlx::query_scalar(sql)
            .fetch_all(self.pool())
            .await
            .unwrap()
    }
}

use std::future::Future;

fn ack(person: &str, version: &str, at: i64) -> NewAcknowledgement {
    NewAcknowledgement {
        person_id: person.to_owned(),
        item_id: "nl-neglect".to_owned(),
        item_version: version.to_owned(),
        rollout_id: Some("r-1".to_owned()),
        delivery_id: Some(7),
        channel: "telegram".to_owned(),
        method: AckMethod::Button,
        at,
    }
}

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

fn confirmation(team: &str, at: i64) -> NewConfirmation {
    NewConfirmation {
        champion_id: "p-2".to_owned(),
        item_id: "nl-neglect".to_owned(),
        team_id: team.to_owned(),
        session_date: "2026-03-02".to_owned(),
        present: 7,
        method: "team-meeting".to_owned(),
        note: Some("Good discussion".to_owned()),
        channel: "web".to_owned(),
        at,
    }
}

async fn kinds(store: &impl RawSql) -> Vec<String> {
    store
        .texts("SELECT kind FROM evidence_chain ORDER BY seq")
        .await
}

async fn assert_verifies(store: &impl EvidenceChain) {
    let report = store.verify_chain().await.unwrap();
    assert!(report.problems.is_empty(), "{:?}", report.problems);
}

/// Six events of four kinds: acknowledgements (one a repeat), a
/// confirmation, a check answer, and a minute of refusals sealed.
async fn some_evidence(store: &(impl Evidence + EvidenceChain)) {
    store
        .record_check_attempts(&[attempt("p-1", 1, 1, true, 0)])
        .await
        .unwrap();
    for a in [ack("p-1", "aaa111", 1_000), ack("p-2", "aaa111", 2_000)] {
        store.acknowledge_item(&a).await.unwrap();
    }
    assert!(
        store
            .confirm_cascade(&confirmation("cyp-east", 3_000))
            .await
            .unwrap()
    );
    store
        .count_refusal("web", AckMethod::Link, "forged", 4_000)
        .await
        .unwrap();
    store
        .acknowledge_item(&ack("p-3", "aaa111", 70_000))
        .await
        .unwrap();
    store
        .acknowledge_item(&ack("p-3", "aaa111", 70_001))
        .await
        .unwrap();
}

async fn the_first_acknowledgement_counts_and_a_repeat_says_when(
    store: impl Evidence + EvidenceChain + RawSql,
) {
    assert_eq!(
        store
            .acknowledge_item(&ack("p-1", "aaa111", 1_000))
            .await
            .unwrap(),
        AckOutcome::Recorded
    );
    assert_eq!(
        store
            .acknowledge_item(&ack("p-1", "aaa111", 2_000))
            .await
            .unwrap(),
        AckOutcome::AlreadyAcknowledged { at: 1_000 }
    );
    // A group: a repeat of an earlier one, two of one version (the first
    // counts), and one of another version.
    let outcomes = store
        .acknowledge_items(&[
            ack("p-1", "aaa111", 3_000),
            ack("p-2", "aaa111", 3_001),
            ack("p-2", "aaa111", 3_002),
            ack("p-1", "bbb222", 3_003),
        ])
        .await
        .unwrap();
    assert_eq!(
        outcomes,
        [
            AckOutcome::AlreadyAcknowledged { at: 1_000 },
            AckOutcome::Recorded,
            AckOutcome::AlreadyAcknowledged { at: 3_001 },
            AckOutcome::Recorded,
        ]
    );
    assert_eq!(
        store
            .texts(
                "SELECT person_id || ' ' || item_version || ' ' || CAST(at AS TEXT)
                 FROM acknowledgements ORDER BY id"
            )
            .await,
        ["p-1 aaa111 1000", "p-2 aaa111 3001", "p-1 bbb222 3003"]
    );
    assert_eq!(
        store
            .texts("SELECT outcome FROM acknowledgement_log ORDER BY id")
            .await,
        [
            "recorded", "repeat", "repeat", "recorded", "repeat", "recorded"
        ]
    );
    assert!(store.acknowledge_items(&[]).await.unwrap().is_empty());
    assert_eq!(
        kinds(&store).await,
        ["acknowledgement", "acknowledgement", "acknowledgement"]
    );
    assert_verifies(&store).await;
}

/// Several processes acknowledging the same person's item version at once
/// (each task has its own connection): one is recorded, every other
/// learns when, and the chain holds one link.
async fn acknowledgements_of_one_version_at_once_record_one(
    store: impl Evidence + EvidenceChain + RawSql + Clone + 'static,
) {
    let tasks: Vec<_> = (0..8)
        .map(|i| {
            let store = store.clone();
            tokio::spawn(async move {
                let at = 1_000 + i;
                let group = [
                    ack("p-1", "aaa111", at),
                    ack(&format!("q-{i}"), "aaa111", at),
                ];
                (at, store.acknowledge_items(&group).await.unwrap())
            })
        })
        .collect();
    let mut results = Vec::new();
    for t in tasks {
        results.push(t.await.unwrap());
    }
    let recorded: Vec<i64> = results
        .iter()
        .filter(|(_, o)| o[0] == AckOutcome::Recorded)
        .map(|(at, _)| *at)
        .collect();
    assert_eq!(recorded.len(), 1, "{results:?}");
    for (_, o) in &results {
        assert!(
            o[0] == AckOutcome::Recorded
                || o[0] == AckOutcome::AlreadyAcknowledged { at: recorded[0] },
            "{results:?}"
        );
        assert_eq!(o[1], AckOutcome::Recorded);
    }
    assert_eq!(kinds(&store).await.len(), 9);
    assert_verifies(&store).await;
}

async fn check_answers_count_once_a_try_and_go_with_the_acknowledgement(
    store: impl Evidence + EvidenceChain + RawSql,
) {
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
    let right = [attempt("p-1", 1, 1, true, 1), attempt("p-1", 2, 3, true, 0)];
    assert_eq!(store.record_check_attempts(&right).await.unwrap(), 2);
    assert_eq!(store.record_check_attempts(&right).await.unwrap(), 0);
    store
        .record_check_attempts(&[attempt("p-2", 1, 3, false, 0)])
        .await
        .unwrap();
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
            q1.answered_at,
            q1.acknowledgement_id
        ),
        (2, false, 2, Some(5_001), None)
    );
    let mut ack = ack("p-1", "aaa111", 6_000);
    ack.delivery_id = None;
    assert_eq!(
        store.acknowledge_item(&ack).await.unwrap(),
        AckOutcome::Recorded
    );
    let progress = store
        .check_progress("p-1", "nl-neglect", "aaa111")
        .await
        .unwrap();
    assert_eq!(progress.acknowledged_at, Some(6_000));
    assert_eq!(progress.answers.len(), 2);
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
    // Recorded answers no longer change; another person's stay theirs.
    assert_eq!(
        store
            .record_check_attempts(&[attempt("p-1", 1, 2, false, 2)])
            .await
            .unwrap(),
        0
    );
    let other = store
        .check_progress("p-2", "nl-neglect", "aaa111")
        .await
        .unwrap();
    assert_eq!(
        (other.acknowledged_at, other.answers[0].acknowledgement_id),
        (None, None)
    );
    let nobody = store
        .check_progress("p-9", "nl-neglect", "aaa111")
        .await
        .unwrap();
    assert_eq!(nobody, CheckProgress::default());
    assert_eq!(
        kinds(&store).await,
        ["acknowledgement", "check-answer", "check-answer"]
    );
    assert_verifies(&store).await;
    // An edit to a recorded answer shows, at its event.
    store
        .exec("UPDATE check_answers SET right_first_time = 1 WHERE question = 1 AND person_id = 'p-1'")
        .await;
    let report = store.verify_chain().await.unwrap();
    assert_eq!(
        report
            .problems
            .iter()
            .map(|p| (p.seq, p.what))
            .collect::<Vec<_>>(),
        [(Some(2), Tamper::Edited)],
        "{:?}",
        report.problems
    );
}

async fn an_acknowledgement_in_a_group_takes_only_its_own_answers(
    store: impl Evidence + EvidenceChain + RawSql,
) {
    store
        .record_check_attempts(&[attempt("p-1", 1, 1, true, 0), attempt("p-2", 1, 1, true, 0)])
        .await
        .unwrap();
    store
        .acknowledge_items(&[ack("p-1", "aaa111", 6_000), ack("p-1", "aaa111", 6_001)])
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

async fn refusals_are_counted_by_the_minute_and_sealed_when_it_is_over(
    store: impl Evidence + EvidenceChain + RawSql,
) {
    for (reason, at) in [("forged", 60_000), ("forged", 60_001), ("expired", 200_000)] {
        store
            .count_refusal("web", AckMethod::Link, reason, at)
            .await
            .unwrap();
    }
    let counts = || {
        store.texts(
            "SELECT reason || ' ' || CAST(minute AS TEXT) || ' ' || CAST(count AS TEXT)
                    || ' ' || CAST(last_at AS TEXT)
             FROM refusal_counts ORDER BY minute, reason",
        )
    };
    assert_eq!(
        counts().await,
        ["forged 60000 2 60001", "expired 180000 1 200000"]
    );
    // The count at 200,000 sealed minute 60,000: one link.
    assert_eq!(kinds(&store).await, ["refusals"]);
    // A refusal for a sealed minute (a clock stepped back) counts in the
    // first open one.
    store
        .count_refusal("web", AckMethod::Link, "forged", 61_000)
        .await
        .unwrap();
    assert_eq!(
        counts().await,
        [
            "forged 60000 2 60001",
            "expired 180000 1 200000",
            "forged 180000 1 61000"
        ]
    );
    // An inbox event's refusal is counted once.
    store
        .exec(
            "INSERT INTO inbox (channel, event_id, event, received_at)
             VALUES ('telegram', 'u-1', '{}', 1)",
        )
        .await;
    for (event, counted) in [("u-1", true), ("u-1", false), ("not-in-inbox", true)] {
        assert_eq!(
            store
                .count_refusal_of_event(
                    "telegram",
                    event,
                    AckMethod::Button,
                    "wrong-account",
                    300_000
                )
                .await
                .unwrap(),
            counted,
            "{event}"
        );
    }
    assert_eq!(
        store
            .texts("SELECT CAST(handled_at AS TEXT) FROM inbox")
            .await,
        ["300000"]
    );
    // 300,000 sealed minute 180,000 (its two rows).
    assert_eq!(kinds(&store).await, ["refusals", "refusals", "refusals"]);
    assert_eq!(
        counts().await.last().map(String::as_str),
        Some("wrong-account 300000 2 300000")
    );
    assert_verifies(&store).await;
    // An edited count that was sealed shows.
    store
        .exec("UPDATE refusal_counts SET count = 1 WHERE minute = 60000")
        .await;
    let report = store.verify_chain().await.unwrap();
    assert_eq!(
        report.problems.first().map(|p| (p.seq, p.what)),
        Some((Some(1), Tamper::Edited)),
        "{:?}",
        report.problems
    );
}

async fn a_confirmation_is_recorded_once_and_chained(
    store: impl Evidence + EvidenceChain + RawSql,
) {
    assert!(
        store
            .confirm_cascade(&confirmation("cyp-east", 3_000))
            .await
            .unwrap()
    );
    assert!(
        !store
            .confirm_cascade(&confirmation("cyp-east", 3_500))
            .await
            .unwrap()
    );
    assert!(
        store
            .confirm_cascade(&confirmation("cyp-west", 4_000))
            .await
            .unwrap()
    );
    assert_eq!(kinds(&store).await, ["confirmation", "confirmation"]);
    assert_verifies(&store).await;
    // The note is personal: changed without an amend, it shows.
    store
        .exec("UPDATE cascade_confirmations SET note = 'Changed' WHERE team_id = 'cyp-west'")
        .await;
    let report = store.verify_chain().await.unwrap();
    assert_eq!(
        report
            .problems
            .iter()
            .map(|p| (p.seq, p.what))
            .collect::<Vec<_>>(),
        [(Some(2), Tamper::Edited)]
    );
}

async fn an_engine_secret_is_made_once_and_kept(store: impl Evidence) {
    let first = store.engine_secret("button-key").await.unwrap();
    assert_eq!(first.len(), 32);
    assert_eq!(store.engine_secret("button-key").await.unwrap(), first);
    assert_ne!(store.engine_secret("other").await.unwrap(), first);
}

async fn seq_of(store: &impl RawSql, kind: &str, reference: &str) -> i64 {
    store
        .texts(&format!(
            "SELECT CAST(seq AS TEXT) FROM evidence_chain WHERE kind = '{kind}' AND ref = '{reference}'"
        ))
        .await[0]
        .parse()
        .unwrap()
}

/// (seq, what) of each problem verify finds.
async fn problems(store: &impl EvidenceChain) -> Vec<(Option<i64>, Tamper)> {
    store
        .verify_chain()
        .await
        .unwrap()
        .problems
        .iter()
        .map(|p| (p.seq, p.what))
        .collect()
}

async fn an_edited_evidence_row_is_named_at_its_event(
    store: impl Evidence + EvidenceChain + RawSql,
) {
    some_evidence(&store).await;
    assert_verifies(&store).await;
    let ack_2 = seq_of(&store, "acknowledgement", "2").await;
    store
        .exec("UPDATE acknowledgements SET channel = 'web', method = 'link' WHERE id = 2")
        .await;
    assert_eq!(problems(&store).await, [(Some(ack_2), Tamper::Edited)]);
    // A personal field edited, and a link's own field: each named at its
    // event, the first first.
    store
        .exec("UPDATE acknowledgements SET person_id = 'p-someone-else' WHERE id = 1")
        .await;
    let ack_1 = seq_of(&store, "acknowledgement", "1").await;
    store
        .exec(&format!(
            "UPDATE evidence_chain SET at = at + 1 WHERE seq = {}",
            ack_1 + 1
        ))
        .await;
    assert_eq!(
        problems(&store).await,
        [
            (Some(ack_1), Tamper::Edited),
            (Some(ack_1 + 1), Tamper::Edited),
            (Some(ack_2), Tamper::Edited)
        ]
    );
}

async fn a_removed_link_is_named_missing_and_its_row_inserted(
    store: impl Evidence + EvidenceChain + RawSql,
) {
    some_evidence(&store).await;
    let seq = seq_of(&store, "confirmation", "1").await;
    store
        .exec(&format!("DELETE FROM evidence_chain WHERE seq = {seq}"))
        .await;
    let report = store.verify_chain().await.unwrap();
    let first = &report.problems[0];
    assert_eq!((first.seq, first.what), (Some(seq), Tamper::Missing));
    assert!(
        report
            .problems
            .iter()
            .any(|p| p.seq.is_none() && p.what == Tamper::Inserted && p.event == "confirmation 1"),
        "{:?}",
        report.problems
    );
    // An evidence row deleted: its event is named missing.
    let ack_2 = seq_of(&store, "acknowledgement", "2").await;
    store
        .exec("DELETE FROM acknowledgements WHERE id = 2")
        .await;
    assert!(
        problems(&store)
            .await
            .contains(&(Some(ack_2), Tamper::Missing))
    );
}

async fn two_links_reordered_are_named_out_of_order_at_the_first(
    store: impl Evidence + EvidenceChain + RawSql,
) {
    some_evidence(&store).await;
    let (a, b) = (
        seq_of(&store, "acknowledgement", "1").await,
        seq_of(&store, "confirmation", "1").await,
    );
    assert!(a < b);
    for sql in [
        format!("UPDATE evidence_chain SET seq = -1 WHERE seq = {a}"),
        format!("UPDATE evidence_chain SET seq = {a} WHERE seq = {b}"),
        format!("UPDATE evidence_chain SET seq = {b} WHERE seq = -1"),
    ] {
        store.exec(&sql).await;
    }
    let report = store.verify_chain().await.unwrap();
    let first = &report.problems[0];
    assert_eq!(
        (first.seq, first.what),
        (Some(a), Tamper::OutOfOrder),
        "{:?}",
        report.problems
    );
}

async fn two_rows_swapped_are_named_out_of_order(store: impl Evidence + EvidenceChain + RawSql) {
    some_evidence(&store).await;
    // Acknowledgements 1 and 2 differ only in time (and person): their
    // times swapped, each row holds what the other's link recorded.
    store
        .exec("UPDATE acknowledgements SET at = 3000 - at WHERE id IN (1, 2)")
        .await;
    let (ack_1, ack_2) = (
        seq_of(&store, "acknowledgement", "1").await,
        seq_of(&store, "acknowledgement", "2").await,
    );
    assert_eq!(
        problems(&store).await,
        [
            (Some(ack_1), Tamper::OutOfOrder),
            (Some(ack_2), Tamper::OutOfOrder)
        ]
    );
}

type Fields = Vec<Option<String>>;

/// Collects what an export hands on.
#[derive(Default)]
struct Collect {
    links: Vec<ChainLink>,
    /// (seq, the row's fields, the personal fields' version)
    events: Vec<(i64, Option<Fields>, i64)>,
}

impl EvidenceSink for Collect {
    fn link(&mut self, link: &LinkRef<'_>) -> Result<(), String> {
        self.links.push(link.to_owned_link());
        Ok(())
    }
    fn event(&mut self, e: &ExportedEvent<'_>) -> Result<(), String> {
        let all = e.content.map(|c| {
            c.iter()
                .chain(e.personal.unwrap_or_default())
                .chain(e.extra.unwrap_or_default())
                .map(|f| f.map(str::to_owned))
                .collect()
        });
        self.events.push((e.link.seq, all, e.personal_version));
        Ok(())
    }
}

async fn an_export_hands_on_every_link_in_its_range_with_its_row(
    store: impl Evidence + EvidenceChain + RawSql,
) {
    some_evidence(&store).await;
    let mut all = Collect::default();
    let range = store
        .export_chain(0, i64::MAX, 200_000, &mut all)
        .await
        .unwrap();
    // The export sealed the minute of the refusal at 70,000 ... and
    // nothing more was chained at 200,000.
    let n = kinds(&store).await.len();
    assert_eq!(all.links.len(), n);
    assert_eq!(range.events, n as u64);
    assert_eq!((range.first_seq, range.last_seq), (Some(1), Some(n as i64)));
    assert_eq!(range.anchor, GENESIS);
    let head = store.chain_link(n as i64).await.unwrap().unwrap();
    assert_eq!(range.head, head.hash);
    assert_eq!(range.store_head, Some((n as i64, head.hash.clone())));
    assert_eq!(all.links.last(), Some(&head));
    // Every link comes with its event, the fields as texts.
    assert_eq!(all.events.len(), n);
    let ack_1 = seq_of(&store, "acknowledgement", "1").await;
    let (_, fields, version) = all.events.iter().find(|e| e.0 == ack_1).unwrap();
    let texts = |v: &[Option<&str>]| -> Vec<Option<String>> {
        v.iter().map(|f| f.map(str::to_owned)).collect()
    };
    assert_eq!(
        fields.as_deref(),
        Some(
            &texts(&[
                Some("nl-neglect"),
                Some("aaa111"),
                Some("r-1"),
                Some("7"),
                Some("telegram"),
                Some("button"),
                Some("1000"),
                Some("p-1"),
            ])[..]
        )
    );
    assert_eq!(*version, 0);
    let confirmation = seq_of(&store, "confirmation", "1").await;
    let (_, fields, _) = all.events.iter().find(|e| e.0 == confirmation).unwrap();
    assert_eq!(
        fields.as_deref(),
        Some(
            &texts(&[
                Some("nl-neglect"),
                Some("cyp-east"),
                Some("2026-03-02"),
                Some("7"),
                Some("team-meeting"),
                Some("web"),
                Some("3000"),
                Some("p-2"),
                Some("Good discussion"),
            ])[..]
        )
    );
    // A row gone is handed on as gone.
    store
        .exec("DELETE FROM acknowledgements WHERE id = 2")
        .await;
    // A range: from the second acknowledgement's time on, anchored at
    // the link before it.
    let mut part = Collect::default();
    let range = store
        .export_chain(2_000, 3_001, 200_000, &mut part)
        .await
        .unwrap();
    let ack_2 = seq_of(&store, "acknowledgement", "2").await;
    assert_eq!(range.first_seq, Some(ack_2));
    assert_eq!(
        range.anchor,
        store.chain_link(ack_2 - 1).await.unwrap().unwrap().hash
    );
    assert_eq!(part.links.len(), 2, "{:?}", part.links);
    assert_eq!(part.events[0], (ack_2, None, 0));
    // An empty range.
    let mut none = Collect::default();
    let range = store
        .export_chain(500_000, 600_000, 200_000, &mut none)
        .await
        .unwrap();
    assert_eq!((range.first_seq, range.events), (None, 0));
    assert!(none.links.is_empty());
}

async fn a_store_without_the_chain_records_evidence_verify_names(
    store: impl Evidence + EvidenceChain + RawSql + WithoutChain,
) {
    let store = store.without_chain();
    store
        .acknowledge_item(&ack("p-1", "aaa111", 1_000))
        .await
        .unwrap();
    assert!(kinds(&store).await.is_empty());
    assert_eq!(problems(&store).await, [(None, Tamper::Inserted)]);
    store.chain_all("acknowledgement").await;
    assert_eq!(kinds(&store).await, ["acknowledgement"]);
    assert_verifies(&store).await;
}

/// The test-support methods of both stores that turn the chain off and
/// chain what was recorded without it.
pub(crate) trait WithoutChain: Sized {
    fn without_chain(self) -> Self;
    fn chain_all(&self, kind: &str) -> impl Future<Output = ()> + Send;
}

impl WithoutChain for SqliteStore {
    fn without_chain(self) -> Self {
        self.without_evidence_chain()
    }
    async fn chain_all(&self, kind: &str) {
        self.chain_unchained(kind).await.unwrap()
    }
}

impl WithoutChain for PgStore {
    fn without_chain(self) -> Self {
        self.without_evidence_chain()
    }
    async fn chain_all(&self, kind: &str) {
        self.chain_unchained(kind).await.unwrap()
    }
}

fn initial(person: &str) -> NewDelivery {
    NewDelivery {
        idempotency_key: format!("r-1:{person}:initial"),
        rollout_id: "r-1".to_owned(),
        person_id: person.to_owned(),
        recipient_id: person.to_owned(),
        wave: 0,
        step_kind: cascade_model::rollout::StepKind::Initial,
        step_number: 0,
        channel: "email".to_owned(),
        channel_rank: 0,
        due_at: 1_000,
    }
}

/// The evidence of a rollout: deliveries sent (and what is pending for
/// whom), follow-up answers with an example added later (an amend),
/// refresher answers, and a chat account linked by a one-time code.
async fn a_rollouts_evidence_is_recorded_and_verifies(
    store: impl TestStore + Outbox + Evidence + EvidenceChain + RawSql,
) {
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
    store
        .materialise(&[initial("p-1"), initial("p-2")], &[], 1_000)
        .await
        .unwrap();
    let claimed = store.claim(1_000, 10, 60_000, &[]).await.unwrap();
    assert_eq!(claimed.len(), 2);
    let sent: Vec<(i64, DeliveryOutcome)> = claimed
        .iter()
        .map(|c| (c.id, DeliveryOutcome::Sent { provider_id: None }))
        .collect();
    store.record(&sent, &[], 1_500).await.unwrap();
    let p1 = claimed.iter().find(|c| c.person_id == "p-1").unwrap().id;
    let info = store.delivery(p1).await.unwrap().unwrap();
    assert_eq!(
        info,
        DeliveryInfo {
            id: p1,
            rollout_id: "r-1".to_owned(),
            person_id: "p-1".to_owned(),
            recipient_id: "p-1".to_owned(),
            step_kind: cascade_model::rollout::StepKind::Initial,
            step_number: 0,
            channel: "email".to_owned(),
            item_id: "nl-neglect".to_owned(),
            item_version: "aaa111".to_owned(),
        }
    );
    assert_eq!(store.delivery(p1 + 100).await.unwrap(), None);
    let pending = PendingItem {
        delivery_id: p1,
        rollout_id: "r-1".to_owned(),
        item_id: "nl-neglect".to_owned(),
        item_version: "aaa111".to_owned(),
    };
    assert_eq!(
        store.pending_items("p-1").await.unwrap(),
        std::slice::from_ref(&pending)
    );
    let mut acked = ack("p-1", "aaa111", 2_000);
    acked.delivery_id = Some(p1);
    store.acknowledge_item(&acked).await.unwrap();
    assert!(store.pending_items("p-1").await.unwrap().is_empty());
    assert_eq!(
        store.delivered_item("p-1", "nl-neglect").await.unwrap(),
        Some(pending)
    );
    assert_eq!(store.delivered_item("p-1", "other").await.unwrap(), None);
    assert_eq!(
        store
            .texts(
                "SELECT CAST(acknowledged_at AS TEXT) FROM rollout_members WHERE person_id = 'p-1'"
            )
            .await,
        ["2000"]
    );

    // A follow-up answer, once; an example and a reason added once each.
    let answer = NewAnswer {
        rollout_id: "r-1".to_owned(),
        person_id: "p-1".to_owned(),
        follow_up: 1,
        answer: "yes".to_owned(),
        example: None,
        channel: "web".to_owned(),
        at: 3_000,
    };
    assert!(store.answer_follow_up(&answer).await.unwrap());
    assert!(!store.answer_follow_up(&answer).await.unwrap());
    assert!(
        store
            .add_follow_up_example("r-1", "p-1", 1, "A case")
            .await
            .unwrap()
    );
    assert!(
        !store
            .add_follow_up_example("r-1", "p-1", 1, "Again")
            .await
            .unwrap()
    );
    assert!(
        !store
            .add_follow_up_example("r-1", "p-1", 2, "None")
            .await
            .unwrap()
    );
    assert!(
        store
            .add_follow_up_reason("r-1", "p-1", 1, "no-time")
            .await
            .unwrap()
    );
    assert!(
        !store
            .add_follow_up_reason("r-1", "p-1", 1, "other")
            .await
            .unwrap()
    );

    // A refresher's question: wrong, the same press again, then right.
    let attempt = |chosen: u32, right: bool, seen: u32| RefresherAttempt {
        rollout_id: "r-1".to_owned(),
        person_id: "p-1".to_owned(),
        refresher: 1,
        delivery_id: p1,
        item_id: "nl-neglect".to_owned(),
        item_version: "aaa111".to_owned(),
        question: 1,
        question_digest: "digest-1".to_owned(),
        chosen,
        right,
        seen,
        channel: "web".to_owned(),
        at: 4_000 + i64::from(seen),
    };
    assert!(
        store
            .record_refresher_attempt(&attempt(2, false, 0))
            .await
            .unwrap()
    );
    assert!(
        !store
            .record_refresher_attempt(&attempt(2, false, 0))
            .await
            .unwrap()
    );
    assert!(
        store
            .record_refresher_attempt(&attempt(1, true, 1))
            .await
            .unwrap()
    );
    assert!(
        !store
            .record_refresher_attempt(&attempt(1, true, 2))
            .await
            .unwrap()
    );
    let kept = store
        .refresher_answer("r-1", "p-1", 1)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (
            kept.first_answer,
            kept.right_first_time,
            kept.attempts,
            kept.answered_at,
            kept.at
        ),
        (2, false, 2, Some(4_001), 4_000)
    );
    assert_eq!(store.refresher_answer("r-1", "p-1", 2).await.unwrap(), None);

    // A chat account linked by a one-time code, used once.
    store
        .create_link_code("p-2", "keyed-1", 2_000, 90_000)
        .await
        .unwrap();
    store
        .create_link_code("p-2", "keyed-2", 2_000, 3_000)
        .await
        .unwrap();
    let redeem = |code: &'static str, account: &'static str| {
        store.redeem_link_code(code, "legacy", "telegram", account, 5_000)
    };
    assert_eq!(
        redeem("nothing", "tg-1").await.unwrap(),
        Err(CodeRefusal::Unknown)
    );
    assert_eq!(
        redeem("keyed-2", "tg-1").await.unwrap(),
        Err(CodeRefusal::Expired)
    );
    assert_eq!(
        redeem("keyed-1", "tg-1").await.unwrap(),
        Ok("p-2".to_owned())
    );
    assert_eq!(
        redeem("keyed-1", "tg-1").await.unwrap(),
        Ok("p-2".to_owned())
    );
    assert_eq!(
        redeem("keyed-1", "tg-2").await.unwrap(),
        Err(CodeRefusal::AlreadyUsed)
    );
    assert_eq!(
        store.person_for_account("telegram", "tg-1").await.unwrap(),
        Some("p-2".to_owned())
    );
    assert_eq!(
        store.person_for_account("telegram", "tg-2").await.unwrap(),
        None
    );
    store
        .mark_unreachable("telegram", "tg-1", 7_000)
        .await
        .unwrap();
    store
        .mark_unreachable("telegram", "tg-1", 8_000)
        .await
        .unwrap();
    assert_eq!(
        store
            .texts(
                "SELECT linked_at || ' ' || CAST(unreachable_at AS TEXT) FROM channel_identities
                 WHERE channel = 'telegram'"
            )
            .await,
        ["1970-01-01T00:00:05+00:00 7000"]
    );

    assert_eq!(
        kinds(store).await,
        ["delivery", "delivery", "acknowledgement", "answer", "amend"]
    );
    assert_verifies(store).await;
    // The example changed without an amend shows, at the answer.
    let answer_seq = seq_of(store, "answer", "1").await;
    store
        .exec("UPDATE follow_up_answers SET example = 'Changed'")
        .await;
    assert_eq!(problems(store).await, [(Some(answer_seq), Tamper::Edited)]);
}

/// Several processes recording evidence at once, their clocks apart:
/// refusals counted across minutes as others seal them, acknowledgements
/// and confirmations. Every refusal is counted once, no sealed count
/// changes, and the chain verifies.
async fn evidence_recorded_at_once_keeps_the_chain_whole(
    store: impl Evidence + EvidenceChain + RawSql + Clone + 'static,
) {
    let tasks: Vec<_> = (0..6_i64)
        .map(|task| {
            let store = store.clone();
            tokio::spawn(async move {
                for step in 0..12_i64 {
                    // Each task's clock a little apart from the others'.
                    let at = 1_000 + step * 20_000 + task * 9_000;
                    let reason = if step % 2 == 0 { "forged" } else { "expired" };
                    store
                        .count_refusal("web", AckMethod::Link, reason, at)
                        .await
                        .unwrap();
                    if step % 3 == 0 {
                        let person = format!("p-{task}-{step}");
                        store
                            .acknowledge_items(&[
                                ack(&person, "aaa111", at),
                                ack("p-all", "aaa111", at),
                            ])
                            .await
                            .unwrap();
                    }
                    if step % 4 == 0 {
                        store
                            .confirm_cascade(&confirmation(&format!("t-{task}-{step}"), at))
                            .await
                            .unwrap();
                    }
                }
            })
        })
        .collect();
    for t in tasks {
        t.await.unwrap();
    }
    let mut sink = Collect::default();
    store
        .export_chain(0, i64::MAX, 10_000_000, &mut sink)
        .await
        .unwrap();
    assert_eq!(
        store
            .texts("SELECT CAST(SUM(count) AS TEXT) FROM refusal_counts")
            .await,
        ["72"]
    );
    let kinds = kinds(&store).await;
    let count = |kind: &str| kinds.iter().filter(|k| *k == kind).count();
    assert_eq!(
        (count("acknowledgement"), count("confirmation")),
        (6 * 4 + 1, 6 * 3)
    );
    assert_eq!(
        count("refusals"),
        store
            .texts("SELECT CAST(count(*) AS TEXT) FROM refusal_counts")
            .await[0]
            .parse::<usize>()
            .unwrap()
    );
    assert_verifies(&store).await;
}

on_both_stores!(
    the_first_acknowledgement_counts_and_a_repeat_says_when,
    acknowledgements_of_one_version_at_once_record_one,
    check_answers_count_once_a_try_and_go_with_the_acknowledgement,
    an_acknowledgement_in_a_group_takes_only_its_own_answers,
    refusals_are_counted_by_the_minute_and_sealed_when_it_is_over,
    a_confirmation_is_recorded_once_and_chained,
    an_engine_secret_is_made_once_and_kept,
    an_edited_evidence_row_is_named_at_its_event,
    a_removed_link_is_named_missing_and_its_row_inserted,
    two_links_reordered_are_named_out_of_order_at_the_first,
    two_rows_swapped_are_named_out_of_order,
    an_export_hands_on_every_link_in_its_range_with_its_row,
    a_store_without_the_chain_records_evidence_verify_names,
    a_rollouts_evidence_is_recorded_and_verifies,
    evidence_recorded_at_once_keeps_the_chain_whole,
);

/// The same events give the same links in both stores: with the same
/// evidence salt, the same hashes, link by link.
#[tokio::test]
async fn the_same_events_give_the_same_chain_in_both_stores() {
    let sqlite = both::sqlite().await;
    let postgres = both::postgres().await;
    let salt = "5a".repeat(32);
    sqlite
        .exec(&format!(
            "UPDATE engine_secrets SET value = x'{salt}' WHERE name = 'evidence-salt'"
        ))
        .await;
    postgres
        .exec(&format!(
            "UPDATE engine_secrets SET value = decode('{salt}', 'hex') WHERE name = 'evidence-salt'"
        ))
        .await;
    some_evidence(&sqlite).await;
    some_evidence(&postgres).await;
    let links = "SELECT CAST(seq AS TEXT) || ' ' || kind || ' ' || ref || ' ' || CAST(at AS TEXT)
                        || ' ' || content || ' ' || personal || ' ' || prev || ' ' || hash
                 FROM evidence_chain ORDER BY seq";
    let a = RawSql::texts(&sqlite, links).await;
    let b = RawSql::texts(&postgres, links).await;
    assert_eq!(a.len(), 5, "{a:?}");
    assert_eq!(a, b);
}
