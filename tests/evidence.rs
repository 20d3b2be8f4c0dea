//! Tamper-evident evidence (issue 20) end to end, through the real
//! `cascade` binary on a scaffolded project: evidence recorded through the
//! real store (as `serve` records it) is appended to the hash chain;
//! `cascade evidence export` writes a pack and `cascade evidence verify`
//! checks a pack or the store. Each kind of tampering (a byte of a CSV, a
//! row deleted in the store, two events reordered, a replaced manifest, a
//! pack signed with another key, rows added behind the chain's back) is
//! detected and the first event it touched named; an erasure keeps the
//! chain verifiable.

use cascade_model::rollout::StepKind;
use cascade_store::{
    AckMethod, DeliveryOutcome, Evidence, NewAcknowledgement, NewAnswer, NewConfirmation,
    NewDelivery, Outbox, SqliteStore,
};
use chrono::{TimeZone, Utc};
use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};
use std::process::Output;

const ROLLOUT: &str = "neglect-briefing-2026-12";
const ITEM: &str = "7mb-neglect-seeing-the-child";
const PEOPLE: [&str; 4] = [
    "p-helen-marsh",
    "p-david-okonjo",
    "p-amara-okafor",
    "p-tom-reilly",
];

mod support;

use support::{cascade_in as cascade, ok, text};

/// Runs a command that must fail; returns what it printed.
fn fails(out: Output) -> String {
    assert!(
        !out.status.success(),
        "succeeded, but should have failed:\n{}\n{}",
        text(&out.stdout),
        text(&out.stderr)
    );
    format!("{}{}", text(&out.stdout), text(&out.stderr))
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

/// 2 March 2026, 10:00 UTC, plus `minutes`.
fn at(minutes: i64) -> i64 {
    Utc.with_ymd_and_hms(2026, 3, 2, 10, 0, 0)
        .unwrap()
        .timestamp_millis()
        + minutes * 60_000
}

/// A demo project with a rollout started, four deliveries sent, four
/// acknowledgements, two follow-up answers (Helen's example names David),
/// a champion's confirmation and refused attempts in two minutes, all in
/// March 2026.
fn project_with_evidence(tmp: &Path) -> PathBuf {
    ok(cascade(&["init", "demo"], tmp));
    ok(cascade(&["import", "--project", "demo"], tmp));
    ok(cascade(
        &[
            "rollout",
            "start",
            "--project",
            "demo",
            "demo/rollouts/neglect-briefing.toml",
        ],
        tmp,
    ));
    let db = tmp.join("demo/.cascade/cascade.db");
    runtime().block_on(async {
        let store = SqliteStore::open(db.to_str().unwrap()).await.unwrap();
        let version = store.rollout(ROLLOUT).await.unwrap().unwrap().item_version;
        for (i, person) in PEOPLE.iter().enumerate() {
            let t = at(i as i64);
            let delivery = NewDelivery {
                idempotency_key: format!("evidence-test/{person}"),
                rollout_id: ROLLOUT.to_owned(),
                person_id: (*person).to_owned(),
                recipient_id: (*person).to_owned(),
                wave: 0,
                step_kind: StepKind::Initial,
                step_number: 0,
                channel: "outbox".to_owned(),
                channel_rank: 0,
                due_at: t,
            };
            store.materialise(&[delivery], &[], t).await.unwrap();
            let claimed = store.claim(t, 100, 60_000, &[]).await.unwrap();
            let mine = claimed
                .iter()
                .find(|c| c.idempotency_key == format!("evidence-test/{person}"))
                .expect("the delivery is claimed");
            store
                .record(
                    &[(
                        mine.id,
                        DeliveryOutcome::Sent {
                            provider_id: Some(format!("queued-{i}")),
                        },
                    )],
                    &[],
                    t,
                )
                .await
                .unwrap();
            // Anything else claimed goes back to the queue.
            let others: Vec<(i64, DeliveryOutcome)> = claimed
                .iter()
                .filter(|c| c.id != mine.id)
                .map(|c| (c.id, DeliveryOutcome::Released))
                .collect();
            store.record(&others, &[], t).await.unwrap();
            store
                .acknowledge_item(&NewAcknowledgement {
                    person_id: (*person).to_owned(),
                    item_id: ITEM.to_owned(),
                    item_version: version.clone(),
                    rollout_id: Some(ROLLOUT.to_owned()),
                    delivery_id: Some(mine.id),
                    channel: "web".to_owned(),
                    method: AckMethod::Link,
                    at: t + 3_600_000,
                })
                .await
                .unwrap();
        }
        for (person, example, minutes) in [
            (
                "p-david-okonjo",
                "Tried the checklist at Wednesday duty",
                120,
            ),
            ("p-helen-marsh", "David Okonjo walked us through it", 121),
        ] {
            store
                .answer_follow_up(&NewAnswer {
                    rollout_id: ROLLOUT.to_owned(),
                    person_id: person.to_owned(),
                    follow_up: 1,
                    answer: "Used it in practice".to_owned(),
                    example: Some(example.to_owned()),
                    channel: "web".to_owned(),
                    at: at(minutes),
                })
                .await
                .unwrap();
        }
        store
            .confirm_cascade(&NewConfirmation {
                champion_id: "p-amara-okafor".to_owned(),
                item_id: ITEM.to_owned(),
                team_id: "cs-north".to_owned(),
                session_date: "2026-03-03".to_owned(),
                present: 9,
                method: "team-meeting".to_owned(),
                note: Some("Went through it with David Okonjo's team".to_owned()),
                channel: "web".to_owned(),
                at: at(180),
            })
            .await
            .unwrap();
        for minutes in [200, 200, 203] {
            store
                .count_refusal("web", AckMethod::Link, "bad-signature", at(minutes))
                .await
                .unwrap();
        }
        store.close().await;
    });
    db
}

fn export(tmp: &Path, out: &str, key: Option<&str>) -> String {
    let mut args = vec![
        "evidence",
        "export",
        "--project",
        "demo",
        "--from",
        "2026-03-01",
        "--to",
        "2026-03-31",
        "--out",
        out,
    ];
    if let Some(key) = key {
        args.extend(["--key-file", key]);
    }
    ok(cascade(&args, tmp))
}

fn keygen(tmp: &Path, file: &str) -> String {
    let out = ok(cascade(&["evidence", "keygen", "--out", file], tmp));
    out.lines()
        .last()
        .expect("the public key is printed last")
        .trim()
        .to_owned()
}

fn sql(db: &Path, statements: &[&str]) {
    runtime().block_on(async {
        let pool = sqlx::SqlitePool::connect(&format!("sqlite://{}", db.display()))
            .await
            .unwrap();
        for s in statements {
            sqlx::query(s).execute(&pool).await.unwrap();
        }
        pool.close().await;
    });
}

fn seq_of(db: &Path, kind: &str, reference: &str) -> i64 {
    runtime().block_on(async {
        let pool = sqlx::SqlitePool::connect(&format!("sqlite://{}", db.display()))
            .await
            .unwrap();
        let seq: i64 =
            sqlx::query_scalar("SELECT max(seq) FROM evidence_chain WHERE kind = ? AND ref = ?")
                .bind(kind)
                .bind(reference)
                .fetch_one(&pool)
                .await
                .unwrap();
        pool.close().await;
        seq
    })
}

fn verify_store(tmp: &Path) -> Output {
    cascade(&["evidence", "verify", "--store", "--project", "demo"], tmp)
}

#[test]
fn every_kind_of_evidence_is_chained_and_an_untouched_store_and_pack_verify() {
    let tmp = tempfile::tempdir().unwrap();
    let db = project_with_evidence(tmp.path());
    let said = ok(verify_store(tmp.path()));
    assert!(said.contains("verifies"), "{said}");
    // One link per delivery, acknowledgement, answer, confirmation, the
    // sealed refusal minute, and the example amend none (examples given
    // with the answer).
    for kind in ["delivery", "acknowledgement", "answer", "confirmation"] {
        assert!(seq_of(&db, kind, "1") > 0, "no {kind} link");
    }
    let minute = at(200);
    let refusal_ref = format!("[{minute},\"web\",\"link\",\"bad-signature\"]");
    assert!(
        seq_of(&db, "refusals", &refusal_ref) > 0,
        "the minute with two refusals is sealed once the next is counted"
    );

    let public = keygen(tmp.path(), "pack.key");
    let said = export(tmp.path(), "pack", Some("pack.key"));
    assert!(said.contains(&public), "{said}");
    let pack = tmp.path().join("pack");
    for file in [
        "chain.csv",
        "deliveries.csv",
        "acknowledgements.csv",
        "answers.csv",
        "confirmations.csv",
        "refusals.csv",
        "erasures.csv",
        "index.html",
        "manifest.json",
        "manifest.json.sig",
    ] {
        assert!(pack.join(file).is_file(), "{file} missing");
    }
    let items: Vec<_> = std::fs::read_dir(pack.join("items").join(ITEM))
        .unwrap()
        .collect();
    assert_eq!(items.len(), 1, "the one item version the events refer to");
    let said = ok(cascade(
        &["evidence", "verify", "pack", "--public-key", &public],
        tmp.path(),
    ));
    assert!(said.contains("verifies"), "{said}");
    assert!(said.contains("Signed with the key you gave"), "{said}");
    // The CSV holds what was recorded.
    let acks = std::fs::read_to_string(pack.join("acknowledgements.csv")).unwrap();
    assert_eq!(acks.lines().count(), 5, "{acks}");
    assert!(acks.contains("p-david-okonjo"), "{acks}");
}

#[test]
fn one_byte_edited_in_a_csv_is_detected_and_its_event_named() {
    let tmp = tempfile::tempdir().unwrap();
    let db = project_with_evidence(tmp.path());
    export(tmp.path(), "pack", None);
    let path = tmp.path().join("pack/acknowledgements.csv");
    let csv = std::fs::read_to_string(&path).unwrap();
    // The second acknowledgement's channel, "web", becomes "wee".
    let line = csv.lines().nth(2).unwrap().to_owned();
    let edited = line.replacen(",web,", ",wee,", 1);
    assert_ne!(line, edited);
    std::fs::write(&path, csv.replacen(&line, &edited, 1)).unwrap();
    let said = fails(cascade(&["evidence", "verify", "pack"], tmp.path()));
    let seq = seq_of(&db, "acknowledgement", "2");
    assert!(
        said.contains("acknowledgements.csv: changed after export"),
        "{said}"
    );
    assert!(
        said.contains(&format!(
            "The first event touched: event {seq} (acknowledgement 2): edited"
        )),
        "{said}"
    );
}

#[test]
fn an_event_row_deleted_in_the_store_is_named_missing() {
    let tmp = tempfile::tempdir().unwrap();
    let db = project_with_evidence(tmp.path());
    let seq = seq_of(&db, "acknowledgement", "3");
    sql(&db, &["DELETE FROM acknowledgements WHERE id = 3"]);
    let said = fails(verify_store(tmp.path()));
    assert!(
        said.contains(&format!(
            "The first event touched: event {seq} (acknowledgement 3): missing: its row is gone from acknowledgements"
        )),
        "{said}"
    );

    // A link removed from the chain itself.
    let tmp = tempfile::tempdir().unwrap();
    let db = project_with_evidence(tmp.path());
    let seq = seq_of(&db, "acknowledgement", "2");
    sql(
        &db,
        &[&format!("DELETE FROM evidence_chain WHERE seq = {seq}")],
    );
    let said = fails(verify_store(tmp.path()));
    assert!(
        said.contains(&format!(
            "The first event touched: event {seq} (removed from the chain): missing: event {seq} was removed"
        )),
        "{said}"
    );
    // The acknowledgement is also named as outside the chain.
    assert!(
        said.contains(
            "acknowledgement 2: inserted: it is in acknowledgements but not in the chain"
        ),
        "{said}"
    );
}

#[test]
fn two_events_reordered_are_named_out_of_order() {
    // In the store: two links swap places (their seq numbers).
    let tmp = tempfile::tempdir().unwrap();
    let db = project_with_evidence(tmp.path());
    let a = seq_of(&db, "acknowledgement", "1");
    let b = seq_of(&db, "acknowledgement", "2");
    sql(
        &db,
        &[
            &format!("UPDATE evidence_chain SET seq = -1 WHERE seq = {a}"),
            &format!("UPDATE evidence_chain SET seq = {a} WHERE seq = {b}"),
            &format!("UPDATE evidence_chain SET seq = {b} WHERE seq = -1"),
        ],
    );
    let said = fails(verify_store(tmp.path()));
    assert!(
        said.contains(&format!(
            "The first event touched: event {a} (acknowledgement 2): out of order"
        )),
        "{said}"
    );

    // In a pack: two lines of chain.csv swapped.
    export(tmp.path(), "pack-before", None);
    let tmp = tempfile::tempdir().unwrap();
    let db = project_with_evidence(tmp.path());
    export(tmp.path(), "pack", None);
    let path = tmp.path().join("pack/chain.csv");
    let csv = std::fs::read_to_string(&path).unwrap();
    let mut lines: Vec<&str> = csv.lines().collect();
    lines.swap(3, 4);
    std::fs::write(&path, lines.join("\n") + "\n").unwrap();
    let said = fails(cascade(&["evidence", "verify", "pack"], tmp.path()));
    let _ = db;
    assert!(said.contains("chain.csv: changed after export"), "{said}");
    assert!(
        said.contains(
            "The first event touched: event 4 (acknowledgement 2): out of order: event 4 stands where event 3 should"
        ),
        "{said}"
    );
}

/// Rewrites the manifest so every file's SHA-256 matches again.
fn forge_manifest(pack: &Path) {
    let path = pack.join("manifest.json");
    let mut manifest: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    for f in manifest["files"].as_array_mut().unwrap() {
        let bytes = std::fs::read(pack.join(f["path"].as_str().unwrap())).unwrap();
        f["sha256"] = hex_of(&Sha256::digest(&bytes)).into();
        f["bytes"] = bytes.len().into();
    }
    std::fs::write(&path, serde_json::to_string_pretty(&manifest).unwrap()).unwrap();
}

fn hex_of(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[test]
fn a_replaced_manifest_is_detected_by_its_signature() {
    let tmp = tempfile::tempdir().unwrap();
    let db = project_with_evidence(tmp.path());
    keygen(tmp.path(), "pack.key");
    export(tmp.path(), "pack", Some("pack.key"));
    let pack = tmp.path().join("pack");
    // An answer changed, and the manifest made to match it.
    let path = pack.join("answers.csv");
    let csv = std::fs::read_to_string(&path).unwrap();
    std::fs::write(&path, csv.replacen("Used it in practice", "Not yet", 1)).unwrap();
    forge_manifest(&pack);
    let said = fails(cascade(&["evidence", "verify", "pack"], tmp.path()));
    assert!(
        said.contains(
            "manifest.json: its signature does not verify: the manifest was edited or replaced after it was signed"
        ),
        "{said}"
    );
    assert!(!said.contains("changed after export"), "{said}");
    let seq = seq_of(&db, "answer", "1");
    assert!(
        said.contains(&format!(
            "The first event touched: event {seq} (answer 1): edited"
        )),
        "{said}"
    );
}

#[test]
fn a_pack_signed_with_another_key_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    project_with_evidence(tmp.path());
    let ours = keygen(tmp.path(), "ours.key");
    let theirs = keygen(tmp.path(), "theirs.key");
    assert_ne!(ours, theirs);
    export(tmp.path(), "pack", Some("theirs.key"));
    let said = fails(cascade(
        &["evidence", "verify", "pack", "--public-key", &ours],
        tmp.path(),
    ));
    assert!(
        said.contains(&format!(
            "the pack was signed with the key {theirs}, not the key you gave ({ours})"
        )),
        "{said}"
    );
    // Unsigned, it cannot show who produced it either.
    export(tmp.path(), "unsigned", None);
    let said = fails(cascade(
        &["evidence", "verify", "unsigned", "--public-key", &ours],
        tmp.path(),
    ));
    assert!(said.contains("the pack is not signed"), "{said}");
}

#[test]
fn rows_added_behind_the_chains_back_are_named_inserted() {
    let tmp = tempfile::tempdir().unwrap();
    let db = project_with_evidence(tmp.path());
    sql(
        &db,
        &[
            "INSERT INTO acknowledgements (person_id, item_id, item_version, channel, method, at)
           VALUES ('p-forged', '7mb-neglect-seeing-the-child', 'v', 'web', 'link', 1)",
        ],
    );
    let said = fails(verify_store(tmp.path()));
    assert!(
        said.contains(
            "acknowledgement 5: inserted: it is in acknowledgements but not in the chain"
        ),
        "{said}"
    );
    // A personal field changed in place (who acknowledged).
    let tmp = tempfile::tempdir().unwrap();
    let db = project_with_evidence(tmp.path());
    sql(
        &db,
        &["UPDATE acknowledgements SET person_id = 'p-someone-else' WHERE id = 1"],
    );
    let seq = seq_of(&db, "acknowledgement", "1");
    let said = fails(verify_store(tmp.path()));
    assert!(
        said.contains(&format!(
            "event {seq} (acknowledgement 1): edited: its personal fields in acknowledgements (person_id) were changed"
        )),
        "{said}"
    );
}

#[test]
fn an_erasure_keeps_the_chain_verifiable_and_is_itself_an_event() {
    let tmp = tempfile::tempdir().unwrap();
    let db = project_with_evidence(tmp.path());
    ok(cascade(
        &[
            "people",
            "erase",
            "--project",
            "demo",
            "p-david-okonjo",
            "--reason",
            "request SAR-2026-17",
            "--force",
        ],
        tmp.path(),
    ));
    let said = ok(verify_store(tmp.path()));
    assert!(said.contains("verifies"), "{said}");
    assert!(seq_of(&db, "erasure", "1") > 0, "the erasure is an event");
    // His delivery, acknowledgement and answer, Helen's example and
    // Amara's note (both named him) are amended.
    let amends: i64 = runtime().block_on(async {
        let pool = sqlx::SqlitePool::connect(&format!("sqlite://{}", db.display()))
            .await
            .unwrap();
        let n = sqlx::query_scalar(
            "SELECT count(*) FROM evidence_chain WHERE kind = 'amend' AND ref LIKE '%:erasure'",
        )
        .fetch_one(&pool)
        .await
        .unwrap();
        pool.close().await;
        n
    });
    assert_eq!(amends, 5);
    export(tmp.path(), "pack", None);
    let said = ok(cascade(&["evidence", "verify", "pack"], tmp.path()));
    assert!(said.contains("verifies"), "{said}");
    let chain = std::fs::read_to_string(tmp.path().join("pack/chain.csv")).unwrap();
    assert!(!chain.contains("okonjo"), "{chain}");

    // The retention schedule emptying notes and examples, and removing
    // refusal counts, is recorded too.
    let config = tmp.path().join("demo/cascade.toml");
    let mut toml = std::fs::read_to_string(&config).unwrap();
    toml.push_str(
        "\n[retention]\nfollow_up_examples = \"30 days\"\nconfirmation_notes = \"30 days\"\nlogs = \"30 days\"\n",
    );
    std::fs::write(&config, toml).unwrap();
    ok(cascade(
        &["retention", "apply", "--project", "demo"],
        tmp.path(),
    ));
    let said = ok(verify_store(tmp.path()));
    assert!(said.contains("verifies"), "{said}");
}

#[test]
fn a_chain_rewritten_from_an_edit_on_is_caught_against_an_earlier_packs_head() {
    let tmp = tempfile::tempdir().unwrap();
    let db = project_with_evidence(tmp.path());
    export(tmp.path(), "pack", None);
    // Someone with the database edits acknowledgement 1 and recomputes
    // every link from it on: the chain alone is consistent again.
    runtime().block_on(async {
        let pool = sqlx::SqlitePool::connect(&format!("sqlite://{}", db.display()))
            .await
            .unwrap();
        sqlx::query(
            "UPDATE acknowledgements SET channel = 'telegram', method = 'button' WHERE id = 1",
        )
        .execute(&pool)
        .await
        .unwrap();
        let fields: String = sqlx::query_scalar(
            "SELECT json_array(item_id, item_version, rollout_id, delivery_id, channel, method, at)
             FROM acknowledgements WHERE id = 1",
        )
        .fetch_one(&pool)
        .await
        .unwrap();
        let content = cascade_store::content_digest(
            "acknowledgement",
            &cascade_store::fields_from_json(&fields).unwrap(),
        );
        let from: i64 = sqlx::query_scalar(
            "SELECT seq FROM evidence_chain WHERE kind = 'acknowledgement' AND ref = '1'",
        )
        .fetch_one(&pool)
        .await
        .unwrap();
        sqlx::query("UPDATE evidence_chain SET content = ? WHERE seq = ?")
            .bind(&content)
            .bind(from)
            .execute(&pool)
            .await
            .unwrap();
        let links: Vec<cascade_store::ChainLink> = sqlx::query_as(
            "SELECT seq, kind, ref, at, content, personal, prev, hash FROM evidence_chain
             WHERE seq >= ? ORDER BY seq",
        )
        .bind(from)
        .fetch_all(&pool)
        .await
        .unwrap();
        let mut prev = links[0].prev.clone();
        for mut link in links {
            link.prev = prev;
            link.hash = link.computed_hash();
            sqlx::query("UPDATE evidence_chain SET prev = ?, hash = ? WHERE seq = ?")
                .bind(&link.prev)
                .bind(&link.hash)
                .bind(link.seq)
                .execute(&pool)
                .await
                .unwrap();
            prev = link.hash;
        }
        pool.close().await;
    });
    // The chain has no key: on its own it verifies again...
    ok(verify_store(tmp.path()));
    // ...but no longer holds the head the earlier pack recorded.
    let said = fails(cascade(
        &[
            "evidence",
            "verify",
            "--store",
            "--project",
            "demo",
            "--against",
            "pack",
        ],
        tmp.path(),
    ));
    assert!(said.contains("the chain was rewritten since"), "{said}");
}
