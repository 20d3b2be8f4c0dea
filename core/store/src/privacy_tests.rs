//! UK GDPR: erasure, subject access and retention, against a real SQLite
//! store filled through the store's own traits.

use super::*;
use std::collections::BTreeMap;

/// p-2 (Bob Example) has a mobile number; everything else as PEOPLE.
const PEOPLE_WITH_MOBILE: &str = "\
person_id,display_name,email,agency_id,team_id,roles,manager_id,time_zone,mobile
p-1,Ann Example,ann@lbx.example.org,lbx-csc,cyp-east,manager;practitioner,,Europe/London,
p-2,Bob Example,bob@lbx.example.org,lbx-csc,cyp-east,practitioner,p-1,,07700 900123
p-3,Cat Example,cat@lbx.example.org,lbx-csc,cyp-west,practitioner,p-1,,
p-4,Dan Example,dan@police.example.org,met-ppu,ppu-1,safeguarding-lead,,,
";

/// Bob's details as a scan looks for them.
const BOB: [&str; 7] = [
    "Bob Example",
    "bob@lbx.example.org",
    "+447700900123",
    "555000111",
    "1234567890123456",
    "29:bob-teams-account",
    "p-2",
];

fn delivery(about: &str, recipient: &str, kind: &str) -> NewDelivery {
    NewDelivery {
        idempotency_key: format!("r-1/{about}/{kind}-1/{recipient}/0"),
        rollout_id: "r-1".to_owned(),
        person_id: about.to_owned(),
        recipient_id: recipient.to_owned(),
        wave: 0,
        step_kind: match kind {
            "initial" => cascade_model::rollout::StepKind::Initial,
            "reminder" => cascade_model::rollout::StepKind::Reminder,
            _ => cascade_model::rollout::StepKind::Escalation,
        },
        step_number: 1,
        channel: "email".to_owned(),
        channel_rank: 0,
        due_at: 1_000,
    }
}

/// A store holding Bob everywhere a person can be held: directory row,
/// roles, champion, identities (email, mobile, Telegram, Discord, Teams),
/// a rollout's deliveries (sent, dead with his address in the error, an
/// escalation about him to his manager), acknowledgements and a repeat,
/// follow-up answers with examples (his, and Ann's naming him), cascade
/// confirmations (his, and Dan's naming him), a link code, a console
/// account linked to him and the audit entry that made it.
async fn bob_everywhere() -> Project {
    let project = Project::with_directory().await;
    project
        .import("people.csv", PEOPLE_WITH_MOBILE)
        .await
        .unwrap();
    let store = &project.store;
    store
        .save_item(
            &newsletter_item("nl-neglect", "Neglect", "aaa111"),
            "source",
        )
        .await
        .unwrap();
    // A recurring bulletin's audience names Bob too.
    assert!(
        store
            .start_bulletin("b-1", r#"{"audience":{"people":["p-2"]}}"#, &[], 1)
            .await
            .unwrap()
    );
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
            definition: r#"{"audience":{"people":["p-2","p-3"]}}"#,
            members: &[member("p-1"), member("p-2"), member("p-3"), member("p-4")],
            audience: None,
            team_posts: &[],
            now: 0,
        })
        .await
        .unwrap();
    store
        .materialise(
            &[
                delivery("p-1", "p-1", "initial"),
                delivery("p-2", "p-2", "initial"),
                delivery("p-3", "p-3", "initial"),
                delivery("p-4", "p-4", "initial"),
                delivery("p-2", "p-1", "escalation"),
            ],
            &[],
            1_000,
        )
        .await
        .unwrap();
    let claimed = store.claim(1_000, 10, 60_000, &[]).await.unwrap();
    let outcomes: Vec<(i64, DeliveryOutcome)> = claimed
        .iter()
        .map(|c| {
            let outcome = if c.recipient_id == "p-2" {
                DeliveryOutcome::Dead {
                    reason: "550 5.1.1 <BOB@lbx.example.org>: mailbox unavailable".to_owned(),
                }
            } else if c.person_id == "p-3" {
                DeliveryOutcome::Dead {
                    reason: "452 mailbox of Bob Example's team is full".to_owned(),
                }
            } else {
                DeliveryOutcome::Sent {
                    provider_id: Some(format!("queued as {}", c.id)),
                }
            };
            (c.id, outcome)
        })
        .collect();
    store.record(&outcomes, &[], 1_500).await.unwrap();

    for (n, (channel, account)) in [
        ("telegram", "555000111"),
        ("discord", "1234567890123456"),
        ("teams", "29:bob-teams-account"),
    ]
    .into_iter()
    .enumerate()
    {
        let hash = format!("code-{n}");
        store
            .create_link_code("p-2", &hash, 2_000, 90_000)
            .await
            .unwrap();
        let linked = store
            .redeem_link_code(&hash, "legacy", channel, account, 2_100)
            .await
            .unwrap();
        assert_eq!(linked, Ok("p-2".to_owned()));
    }
    store
        .create_link_code("p-2", "unused-code", 2_200, 90_000)
        .await
        .unwrap();

    for (person, at) in [("p-2", 3_000), ("p-2", 3_100), ("p-1", 3_200)] {
        store
            .acknowledge_item(&NewAcknowledgement {
                person_id: person.to_owned(),
                item_id: "nl-neglect".to_owned(),
                item_version: "aaa111".to_owned(),
                rollout_id: Some("r-1".to_owned()),
                delivery_id: None,
                channel: "telegram".to_owned(),
                method: AckMethod::Button,
                at,
            })
            .await
            .unwrap();
    }
    for (person, example) in [
        ("p-2", "I used it with a family; call me on +447700900123"),
        ("p-1", "Bob Example and I tried it in supervision"),
    ] {
        store
            .answer_follow_up(&NewAnswer {
                rollout_id: "r-1".to_owned(),
                person_id: person.to_owned(),
                follow_up: 1,
                answer: "yes".to_owned(),
                example: Some(example.to_owned()),
                channel: "telegram".to_owned(),
                at: 4_000,
            })
            .await
            .unwrap();
    }
    for (champion, team, note) in [
        (
            "p-2",
            "cyp-east",
            "Ask Bob Example (bob@lbx.example.org) for slides",
        ),
        ("p-4", "ppu-1", "bob example joined from CIN East"),
    ] {
        store
            .confirm_cascade(&NewConfirmation {
                champion_id: champion.to_owned(),
                item_id: "nl-neglect".to_owned(),
                team_id: team.to_owned(),
                session_date: "2026-03-02".to_owned(),
                present: 9,
                method: "team-meeting".to_owned(),
                note: Some(note.to_owned()),
                channel: "web".to_owned(),
                at: 5_000,
            })
            .await
            .unwrap();
    }
    store
        .add_console_user("kit", "champion", Some("p-2"), "setup", 99_000, 6_000)
        .await
        .unwrap();
    let kit: i64 = sqlx::query_scalar("SELECT id FROM console_users WHERE name = 'kit'")
        .fetch_one(store.pool())
        .await
        .unwrap();
    store
        .audit(&AuditEntry {
            at: 6_500,
            user_id: Some(kit),
            user_name: "kit".to_owned(),
            action: "confirmation.add".to_owned(),
            target: "nl-neglect".to_owned(),
            before_hash: None,
            after_hash: None,
        })
        .await
        .unwrap();
    store
        .audit(&AuditEntry {
            at: 6_000,
            user_id: None,
            user_name: "admin".to_owned(),
            action: "user.add".to_owned(),
            target: "p-2".to_owned(),
            before_hash: None,
            after_hash: None,
        })
        .await
        .unwrap();
    // A press kept for crash recovery, a guided confirmation's step and a
    // plugin's memory of posted parts, each naming Bob; and someone else's
    // press, which erasure must leave.
    store
        .inbox_insert(
            "telegram",
            "500001",
            r#"{"kind":"press","account":"555000111","data":"a:1.2.x"}"#,
            7_000,
        )
        .await
        .unwrap();
    store
        .inbox_insert(
            "telegram",
            "500002",
            r#"{"kind":"press","account":"999000111","data":"a:1.3.x"}"#,
            7_000,
        )
        .await
        .unwrap();
    store
        .state_put(
            "chat:telegram",
            "555000111",
            r#"{"step":"teams"}"#,
            None,
            7_000,
        )
        .await
        .unwrap();
    store
        .state_put(
            "teams",
            "posted:r-1/p-2/briefing-1/p-2/0",
            r#"{"parts":["29:bob-teams-account/1"]}"#,
            Some(99_000_000),
            7_000,
        )
        .await
        .unwrap();
    project
}

/// Every place in the database holding `needle`, found from the live
/// schema (sqlite_master and pragma_table_info), not from a list kept by
/// hand: a table added later cannot hide a detail from this scan.
async fn scan(project: &Project, needle: &str) -> Vec<String> {
    let pool = project.store.pool();
    let tables: Vec<String> =
        sqlx::query_scalar("SELECT name FROM sqlite_master WHERE type = 'table'")
            .fetch_all(pool)
            .await
            .unwrap();
    let mut found = Vec::new();
    for table in tables {
        let columns: Vec<String> = sqlx::query_scalar("SELECT name FROM pragma_table_info(?)")
            .bind(&table)
            .fetch_all(pool)
            .await
            .unwrap();
        for column in columns {
            let values: Vec<Option<Vec<u8>>> = sqlx::query_scalar(&format!(
                "SELECT CAST(\"{column}\" AS BLOB) FROM \"{table}\""
            ))
            .fetch_all(pool)
            .await
            .unwrap();
            for value in values.into_iter().flatten() {
                let value = String::from_utf8_lossy(&value);
                let hit = if needle.starts_with("p-") {
                    // Ids: whole values, or segments of a composite key.
                    value == needle
                        || value.split('/').any(|s| s == needle)
                        || value.contains(&format!("\"{needle}\""))
                } else {
                    value.to_lowercase().contains(&needle.to_lowercase())
                };
                if hit {
                    found.push(format!("{table}.{column}: {value:?}"));
                }
            }
        }
    }
    found
}

/// Totals a report is made of: members and acknowledgements by agency,
/// team, role and champion theme, and sends by state.
async fn totals(project: &Project) -> BTreeMap<String, i64> {
    let mut out = BTreeMap::new();
    for (name, sql) in [
        (
            "by agency",
            "SELECT 'members ' || p.agency_id, count(*) FROM rollout_members m JOIN people p ON p.id = m.person_id GROUP BY p.agency_id",
        ),
        (
            "by team",
            "SELECT 'members ' || p.team_id, count(*) FROM rollout_members m JOIN people p ON p.id = m.person_id GROUP BY p.team_id",
        ),
        (
            "by role",
            "SELECT 'members ' || r.role, count(*) FROM rollout_members m JOIN person_roles r ON r.person_id = m.person_id GROUP BY r.role",
        ),
        (
            "acks by team",
            "SELECT 'acks ' || p.team_id, count(*) FROM acknowledgements a JOIN people p ON p.id = a.person_id GROUP BY p.team_id",
        ),
        (
            "acks by role",
            "SELECT 'acks ' || r.role, count(*) FROM acknowledgements a JOIN person_roles r ON r.person_id = a.person_id GROUP BY r.role",
        ),
        (
            "champions",
            "SELECT 'champions ' || theme, count(*) FROM champions WHERE active = 1 GROUP BY theme",
        ),
        (
            "confirmations",
            "SELECT 'confirmations ' || team_id, sum(present) FROM cascade_confirmations GROUP BY team_id",
        ),
        (
            "answers",
            "SELECT 'answers ' || answer, count(*) FROM follow_up_answers GROUP BY answer",
        ),
        (
            "sends",
            "SELECT 'sends ' || state, count(*) FROM outbox GROUP BY state",
        ),
    ] {
        let rows: Vec<(String, i64)> = sqlx::query_as(sql)
            .fetch_all(project.store.pool())
            .await
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        out.extend(rows);
    }
    out
}

fn erase(person: &str, force: bool) -> EraseRequest {
    EraseRequest {
        person_id: person.to_owned(),
        by: "os:dpo".to_owned(),
        reason: "erasure request ref 2026-041".to_owned(),
        force,
        now: 10_000,
    }
}

#[tokio::test]
async fn the_scan_finds_bob_everywhere_before_erasure() {
    // The scan itself can fail: before erasure it finds each detail.
    let project = bob_everywhere().await;
    for needle in BOB {
        assert!(
            !scan(&project, needle).await.is_empty(),
            "{needle} not found before erasure"
        );
    }
}

#[tokio::test]
async fn after_erasure_no_detail_of_the_person_is_left_in_any_table_and_totals_stand() {
    let project = bob_everywhere().await;
    let store = &project.store;
    let before = totals(&project).await;
    let ann_example = scan(&project, "I tried it in supervision").await;

    let refused = store.erase_person(&erase("p-2", false)).await.unwrap_err();
    assert!(
        matches!(&refused, EraseError::StillSending { rollouts, .. } if rollouts == &["r-1"]),
        "{refused}"
    );
    assert!(
        !scan(&project, "Bob Example").await.is_empty(),
        "nothing was erased"
    );

    let erased = store.erase_person(&erase("p-2", true)).await.unwrap();
    assert!(erased.record.pseudonym.starts_with("erased-"));
    assert_eq!(erased.console_users, ["kit"]);
    assert_eq!(erased.record.erased_by, "os:dpo");

    for needle in BOB {
        let left = scan(&project, needle).await;
        assert!(left.is_empty(), "{needle} is still in {left:#?}");
    }
    assert_eq!(totals(&project).await, before, "reports' totals changed");
    // Someone else's stored press is still there to be handled.
    let others: Vec<String> = sqlx::query_scalar("SELECT event_id FROM inbox")
        .fetch_all(store.pool())
        .await
        .unwrap();
    assert_eq!(others, ["500002"]);
    // Others' words stay, less Bob's details.
    assert_eq!(ann_example.len(), 1);
    assert_eq!(
        scan(&project, "I tried it in supervision").await,
        ["follow_up_answers.example: \"[erased] and I tried it in supervision\""]
    );
    // The erasure is recorded by the pseudonym, who, when and why.
    let records: Vec<(String, String, String, i64)> =
        sqlx::query_as("SELECT pseudonym, erased_by, reason, at FROM erasures")
            .fetch_all(store.pool())
            .await
            .unwrap();
    assert_eq!(
        records,
        [(
            erased.record.pseudonym.clone(),
            "os:dpo".to_owned(),
            "erasure request ref 2026-041".to_owned(),
            10_000
        )]
    );
    // Nothing is left queued for the pseudonym.
    let queued: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM outbox WHERE state IN ('due', 'leased') AND (person_id = ?1 OR recipient_id = ?1)",
    )
    .bind(&erased.record.pseudonym)
    .fetch_one(store.pool())
    .await
    .unwrap();
    assert_eq!(queued, 0);
}

#[tokio::test]
async fn an_erased_person_is_exported_as_the_erasure_only_and_cannot_come_back() {
    let project = bob_everywhere().await;
    let store = &project.store;
    let erased = store.erase_person(&erase("p-2", true)).await.unwrap();
    for id in ["p-2", erased.record.pseudonym.as_str()] {
        assert_eq!(
            store.subject_access(id).await.unwrap(),
            Some(SubjectAccess::Erased(erased.record.clone())),
            "{id}"
        );
    }
    let again = store.erase_person(&erase("p-2", true)).await.unwrap_err();
    assert!(matches!(again, EraseError::AlreadyErased(..)), "{again}");

    let errors = rejected(project.import("people.csv", PEOPLE_WITH_MOBILE).await);
    let messages: Vec<String> = errors.iter().map(ToString::to_string).collect();
    assert_eq!(messages.len(), 1, "{messages:#?}");
    assert!(
        messages[0]
            .contains("people.csv:3: column \"person_id\": \"p-2\" was erased on 1970-01-01")
            && messages[0].contains("help: delete line 3 from"),
        "{}",
        messages[0]
    );
    let errors = rejected(project.import("champions.csv", CHAMPIONS).await);
    assert_eq!(errors.len(), 1, "{errors:#?}");
    assert_eq!(errors[0].line, Some(2));
}

#[tokio::test]
async fn a_reason_that_names_the_person_or_an_unknown_person_is_refused_and_nothing_changes() {
    let project = bob_everywhere().await;
    let store = &project.store;
    for reason in [
        "",
        "Bob Example asked us to",
        "email from BOB@lbx.example.org",
    ] {
        let err = store
            .erase_person(&EraseRequest {
                reason: reason.to_owned(),
                ..erase("p-2", true)
            })
            .await
            .unwrap_err();
        assert!(matches!(err, EraseError::Reason(_)), "{reason}: {err}");
    }
    let err = store.erase_person(&erase("p-99", true)).await.unwrap_err();
    assert!(matches!(err, EraseError::Unknown(_)), "{err}");
    assert_eq!(store.subject_access("p-99").await.unwrap(), None);
    assert!(!scan(&project, "Bob Example").await.is_empty());
}

#[tokio::test]
async fn a_subject_access_export_holds_every_table_the_person_is_in_and_no_secret() {
    let project = bob_everywhere().await;
    let Some(SubjectAccess::Held { person, records }) =
        project.store.subject_access("p-2").await.unwrap()
    else {
        panic!("p-2 is held");
    };
    assert_eq!(person["display_name"], "Bob Example");
    assert_eq!(person["mobile"], "+447700900123");
    assert_eq!(person["roles"], serde_json::json!(["practitioner"]));
    let tables: Vec<&str> = records.iter().map(|(t, _)| t.as_str()).collect();
    assert_eq!(
        tables,
        [
            "acknowledgement_log",
            "acknowledgements",
            "cascade_confirmations",
            "champion_teams",
            "champions",
            "channel_identities",
            "console_audit",
            "console_users",
            "follow_up_answers",
            "link_codes",
            "outbox",
            "rollout_members",
        ]
    );
    let text = serde_json::to_string(&records).unwrap();
    assert!(text.contains("29:bob-teams-account") && text.contains("call me on"));
    for secret in ["code_hash", "password_hash", "setup_hash", "unused-code"] {
        assert!(!text.contains(secret), "{secret} exported");
    }
    // The escalation to Ann about Bob is his; Ann's own learning is not.
    let outbox = &records.iter().find(|(t, _)| t == "outbox").unwrap().1;
    assert_eq!(outbox.len(), 2, "{outbox:#?}");
}

#[tokio::test]
async fn every_column_of_the_schema_is_classified_for_erasure_and_the_record_of_processing() {
    let project = Project::new().await;
    let live = project.store.schema_columns().await.unwrap();
    let classified: Vec<(String, String)> = FIELDS
        .iter()
        .map(|f| (f.table.to_owned(), f.column.to_owned()))
        .collect();
    let missing: Vec<_> = live.iter().filter(|c| !classified.contains(c)).collect();
    assert!(
        missing.is_empty(),
        "classify these columns in FIELDS (core/store/src/privacy.rs): {missing:?}"
    );
    let stale: Vec<_> = classified.iter().filter(|c| !live.contains(c)).collect();
    assert!(
        stale.is_empty(),
        "FIELDS names columns the schema lacks: {stale:?}"
    );
}

#[tokio::test]
async fn retention_lists_then_removes_only_what_is_older_than_its_period() {
    let project = bob_everywhere().await;
    let store = &project.store;
    // p-3 leaves the directory.
    project
        .import(
            "people.csv",
            &PEOPLE_WITH_MOBILE
                .lines()
                .filter(|l| !l.starts_with("p-3"))
                .collect::<Vec<_>>()
                .join("\n"),
        )
        .await
        .unwrap();
    let now = Utc::now().timestamp_millis();
    let cutoffs = RetentionCutoffs {
        follow_up_examples: Some(4_500),
        confirmation_notes: Some(4_000),
        inactive_people: Some(now + 1_000),
        logs: Some(3_200),
        audit_log: Some(1_000),
    };
    let before = totals(&project).await;
    let dry = store
        .apply_retention(&cutoffs, "os:dpo", now, true)
        .await
        .unwrap();
    let expected = RetentionReport {
        follow_up_examples: 2,
        confirmation_notes: 0,
        inactive_people: vec!["p-3".to_owned()],
        acknowledgement_log: 2,
        refusal_counts: 0,
        sign_in_failures: 0,
        audit_log: 0,
    };
    assert_eq!(dry, expected);
    assert!(
        !scan(&project, "call me on").await.is_empty(),
        "a dry run removes nothing"
    );
    assert!(!scan(&project, "Cat Example").await.is_empty());

    let applied = store
        .apply_retention(&cutoffs, "os:dpo", now, false)
        .await
        .unwrap();
    assert_eq!(applied, expected);
    for gone in ["call me on", "Cat Example", "cat@lbx.example.org", "p-3"] {
        assert!(scan(&project, gone).await.is_empty(), "{gone} is left");
    }
    assert!(
        !scan(&project, "for slides").await.is_empty(),
        "notes are kept"
    );
    assert_eq!(totals(&project).await, before);
    let runs: i64 = sqlx::query_scalar("SELECT count(*) FROM retention_runs")
        .fetch_one(store.pool())
        .await
        .unwrap();
    assert_eq!(runs, 1);
    // Nothing left to remove the second time.
    assert!(
        store
            .apply_retention(&cutoffs, "os:dpo", now, false)
            .await
            .unwrap()
            .is_empty()
    );
}

#[tokio::test]
async fn a_send_in_flight_to_the_person_holds_the_erasure_until_its_lease_ends() {
    let project = bob_everywhere().await;
    let store = &project.store;
    store
        .materialise(&[delivery("p-2", "p-2", "reminder")], &[], 20_000)
        .await
        .unwrap();
    let claimed = store.claim(20_000, 10, 60_000, &[]).await.unwrap();
    assert!(claimed.iter().any(|c| c.recipient_id == "p-2"));
    let err = store.erase_person(&erase("p-2", true)).await.unwrap_err();
    assert!(matches!(err, EraseError::InFlight(_)), "{err}");
    assert!(!scan(&project, "Bob Example").await.is_empty());
    // Once the lease has run out (the sender died), erasure goes ahead.
    let later = EraseRequest {
        now: 90_000,
        ..erase("p-2", true)
    };
    store.erase_person(&later).await.unwrap();
    assert!(scan(&project, "Bob Example").await.is_empty());
}
