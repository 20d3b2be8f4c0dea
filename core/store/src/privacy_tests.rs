//! UK GDPR: erasure, subject access and retention, against a real store
//! (SQLite, and PostgreSQL where every trait the test fills it through is
//! ported) filled through the store's own traits. The checks that the
//! person is gone read the database with SQL of their own ([`Raw`]), not
//! through the code under test.

use super::*;
use crate::both::on_both_stores;
use crate::pg::test_server::TestPostgres;
use crate::pg::{PgSettings, PgStore};
use std::collections::BTreeMap;

/// Reads the database directly, with each store's own SQL.
trait Raw: Send + Sync {
    /// Every place in the database holding `needle`, found from the live
    /// schema, not from a list kept by hand: a table added later cannot
    /// hide a detail from this scan.
    async fn scan(&self, needle: &str) -> Vec<String>;

    /// The values of one text column, `column` of `table`, in no order.
    async fn column(&self, table: &str, column: &str) -> Vec<String>;

    /// `SELECT count(*) FROM table WHERE condition`, the condition's `$1`
    /// bound to `value`.
    async fn count_where(&self, table: &str, condition: &str, value: &str) -> i64;

    /// Rows of a query of `(text, bigint)`, in SQL both dialects read.
    async fn pairs(&self, sql: &str) -> Vec<(String, i64)>;
}

/// Whether a stored value holds `needle`: ids as whole values, segments
/// of a composite key or strings of a JSON definition; anything else
/// anywhere in the text, without case.
fn holds(value: &str, needle: &str) -> bool {
    if needle.starts_with("p-") {
        value == needle
            || value.split('/').any(|s| s == needle)
            || value.contains(&format!("\"{needle}\""))
    } else {
        value.to_lowercase().contains(&needle.to_lowercase())
    }
}

impl Raw for SqliteStore {
    async fn scan(&self, needle: &str) -> Vec<String> {
        let pool = self.pool();
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
                    if holds(&value, needle) {
                        found.push(format!("{table}.{column}: {value:?}"));
                    }
                }
            }
        }
        found
    }

    async fn column(&self, table: &str, column: &str) -> Vec<String> {
        sqlx::query_scalar(&format!("SELECT {column} FROM {table}"))
            .fetch_all(self.pool())
            .await
            .unwrap()
    }

    async fn count_where(&self, table: &str, condition: &str, value: &str) -> i64 {
        sqlx::query_scalar(&format!(
            "SELECT count(*) FROM {table} WHERE {}",
            condition.replace("$1", "?1")
        ))
        .bind(value)
        .fetch_one(self.pool())
        .await
        .unwrap()
    }

    async fn pairs(&self, sql: &str) -> Vec<(String, i64)> {
        sqlx::query_as(sql)
            .fetch_all(self.pool())
            .await
            .unwrap_or_else(|e| panic!("{sql}: {e}"))
    }
}

impl Raw for PgStore {
    async fn scan(&self, needle: &str) -> Vec<String> {
        let pool = self.pool();
        // Every column of every table, as text (bytes as hex).
        let columns: Vec<(String, String)> = sqlx::query_as(
            "SELECT table_name::text, column_name::text FROM information_schema.columns
             WHERE table_schema = current_schema()",
        )
        .fetch_all(pool)
        .await
        .unwrap();
        let mut found = Vec::new();
        for (table, column) in columns {
            let values: Vec<Option<String>> =
                sqlx::query_scalar(&format!("SELECT \"{column}\"::text FROM \"{table}\""))
                    .fetch_all(pool)
                    .await
                    .unwrap();
            for value in values.into_iter().flatten() {
                if holds(&value, needle) {
                    found.push(format!("{table}.{column}: {value:?}"));
                }
            }
        }
        found.sort();
        found
    }

    async fn column(&self, table: &str, column: &str) -> Vec<String> {
        sqlx::query_scalar(&format!("SELECT {column} FROM {table}"))
            .fetch_all(self.pool())
            .await
            .unwrap()
    }

    async fn count_where(&self, table: &str, condition: &str, value: &str) -> i64 {
        sqlx::query_scalar(&format!("SELECT count(*) FROM {table} WHERE {condition}"))
            .bind(value)
            .fetch_one(self.pool())
            .await
            .unwrap()
    }

    async fn pairs(&self, sql: &str) -> Vec<(String, i64)> {
        sqlx::query_as(sql)
            .fetch_all(self.pool())
            .await
            .unwrap_or_else(|e| panic!("{sql}: {e}"))
    }
}

/// The directory files of a test, written to a folder of its own and
/// imported into its store.
struct Files(TempDir);

impl Files {
    fn new() -> Files {
        Files(tempfile::tempdir().unwrap())
    }

    /// Writes `text` as `name` and imports it.
    async fn import(
        &self,
        store: &impl Store,
        name: &str,
        text: &str,
    ) -> Result<ImportSummary, StoreError> {
        let path = self.0.path().join(name);
        fs::write(&path, text).unwrap();
        let file = read_csv(&path).unwrap_or_else(|e| panic!("{e:?}"));
        store.import(&file, &path, &Taxonomy::default()).await
    }

    /// The directory of [`Project::with_directory`].
    async fn with_directory(store: &impl Store) -> Files {
        let files = Files::new();
        for (name, text) in [
            ("agencies.csv", AGENCIES),
            ("teams.csv", TEAMS),
            ("people.csv", PEOPLE),
            ("champions.csv", CHAMPIONS),
        ] {
            files.import(store, name, text).await.unwrap();
        }
        files
    }
}

/// Every trait the tests fill a store through, and [`Raw`].
trait Held:
    Store + Outbox + Evidence + EvidenceChain + Accounts + Inbox + Bulletins + Privacy + Raw
{
}
impl<S> Held for S where
    S: Store + Outbox + Evidence + EvidenceChain + Accounts + Inbox + Bulletins + Privacy + Raw
{
}

/// The evidence chain still verifies, and holds `kinds` links of each
/// kind named.
async fn chain_verifies_with(store: &(impl EvidenceChain + Raw), kinds: &[(&str, i64)]) {
    let report = store.verify_chain().await.unwrap();
    assert!(report.problems.is_empty(), "{:?}", report.problems);
    let held: BTreeMap<String, i64> = store
        .pairs("SELECT kind, count(*) FROM evidence_chain GROUP BY kind")
        .await
        .into_iter()
        .collect();
    for (kind, n) in kinds {
        assert_eq!(
            held.get(*kind).copied().unwrap_or(0),
            *n,
            "{kind}: {held:?}"
        );
    }
}

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
async fn bob_everywhere(store: &impl Held) -> Files {
    let files = Files::with_directory(store).await;
    files
        .import(store, "people.csv", PEOPLE_WITH_MOBILE)
        .await
        .unwrap();
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
    let kit = store
        .add_console_user("kit", "champion", Some("p-2"), "setup", 99_000, 6_000)
        .await
        .unwrap()
        .expect("a new account");
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
    files
}

/// Totals a report is made of: members and acknowledgements by agency,
/// team, role and champion theme, and sends by state.
async fn totals(store: &impl Raw) -> BTreeMap<String, i64> {
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
            "SELECT 'confirmations ' || team_id, CAST(sum(present) AS BIGINT) FROM cascade_confirmations GROUP BY team_id",
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
        let _ = name;
        out.extend(store.pairs(sql).await);
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

async fn the_scan_finds_bob_everywhere_before_erasure(store: impl Held) {
    // The scan itself can fail: before erasure it finds each detail.
    let _files = bob_everywhere(&store).await;
    for needle in BOB {
        assert!(
            !store.scan(needle).await.is_empty(),
            "{needle} not found before erasure"
        );
    }
}

async fn after_erasure_no_detail_of_the_person_is_left_in_any_table_and_totals_stand(
    store: impl Held,
) {
    let _files = bob_everywhere(&store).await;
    let before = totals(&store).await;
    let ann_example = store.scan("I tried it in supervision").await;

    let refused = store.erase_person(&erase("p-2", false)).await.unwrap_err();
    assert!(
        matches!(&refused, EraseError::StillSending { rollouts, .. } if rollouts == &["r-1"]),
        "{refused}"
    );
    assert!(
        !store.scan("Bob Example").await.is_empty(),
        "nothing was erased"
    );

    let erased = store.erase_person(&erase("p-2", true)).await.unwrap();
    assert!(erased.record.pseudonym.starts_with("erased-"));
    assert_eq!(erased.console_users, ["kit"]);
    assert_eq!(erased.record.erased_by, "os:dpo");

    for needle in BOB {
        let left = store.scan(needle).await;
        assert!(left.is_empty(), "{needle} is still in {left:#?}");
    }
    assert_eq!(totals(&store).await, before, "reports' totals changed");
    // The erasure is an event; Bob's events and those whose free text
    // named him are amended: the chain still verifies.
    // The erasure is an event, and Bob's chained events and those whose
    // free text named him are amended (the same on every store).
    chain_verifies_with(&store, &[("erasure", 1), ("amend", 6)]).await;
    // Someone else's stored press is still there to be handled.
    let others = store.column("inbox", "event_id").await;
    assert_eq!(others, ["500002"]);
    // Others' words stay, less Bob's details.
    assert_eq!(ann_example.len(), 1);
    assert_eq!(
        store.scan("I tried it in supervision").await,
        ["follow_up_answers.example: \"[erased] and I tried it in supervision\""]
    );
    // The erasure is recorded by the pseudonym, who, when and why.
    let records = store
        .pairs("SELECT pseudonym || ' ' || erased_by || ' ' || reason, at FROM erasures")
        .await;
    assert_eq!(
        records,
        [(
            format!(
                "{} os:dpo erasure request ref 2026-041",
                erased.record.pseudonym
            ),
            10_000
        )]
    );
    // Nothing is left queued for the pseudonym.
    let queued = store
        .count_where(
            "outbox",
            "state IN ('due', 'leased') AND (person_id = $1 OR recipient_id = $1)",
            &erased.record.pseudonym,
        )
        .await;
    assert_eq!(queued, 0);
}

async fn an_erased_person_is_exported_as_the_erasure_only_and_cannot_come_back(store: impl Held) {
    let files = bob_everywhere(&store).await;
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

    let errors = rejected(files.import(&store, "people.csv", PEOPLE_WITH_MOBILE).await);
    let messages: Vec<String> = errors.iter().map(ToString::to_string).collect();
    assert_eq!(messages.len(), 1, "{messages:#?}");
    assert!(
        messages[0]
            .contains("people.csv:3: column \"person_id\": \"p-2\" was erased on 1970-01-01")
            && messages[0].contains("help: delete line 3 from"),
        "{}",
        messages[0]
    );
    let errors = rejected(files.import(&store, "champions.csv", CHAMPIONS).await);
    assert_eq!(errors.len(), 1, "{errors:#?}");
    assert_eq!(errors[0].line, Some(2));
}

async fn a_reason_that_names_the_person_or_an_unknown_person_is_refused_and_nothing_changes(
    store: impl Held,
) {
    let _files = bob_everywhere(&store).await;
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
    assert!(!store.scan("Bob Example").await.is_empty());
}

async fn a_subject_access_export_holds_every_table_the_person_is_in_and_no_secret(
    store: impl Held,
) {
    let _files = bob_everywhere(&store).await;
    let Some(SubjectAccess::Held { person, records }) = store.subject_access("p-2").await.unwrap()
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

async fn every_column_of_the_schema_is_classified_for_erasure_and_the_record_of_processing(
    store: impl Privacy,
) {
    let live = store.schema_columns().await.unwrap();
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

async fn retention_lists_then_removes_only_what_is_older_than_its_period(store: impl Held) {
    let files = bob_everywhere(&store).await;
    // p-3 leaves the directory.
    files
        .import(
            &store,
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
    let before = totals(&store).await;
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
        !store.scan("call me on").await.is_empty(),
        "a dry run removes nothing"
    );
    assert!(!store.scan("Cat Example").await.is_empty());

    let applied = store
        .apply_retention(&cutoffs, "os:dpo", now, false)
        .await
        .unwrap();
    assert_eq!(applied, expected);
    for gone in ["call me on", "Cat Example", "cat@lbx.example.org", "p-3"] {
        assert!(store.scan(gone).await.is_empty(), "{gone} is left");
    }
    assert!(!store.scan("for slides").await.is_empty(), "notes are kept");
    assert_eq!(totals(&store).await, before);
    // Cat's erasure is an event; the two examples emptied are amended.
    chain_verifies_with(&store, &[("erasure", 1), ("amend", 2)]).await;
    let runs = store.count_where("retention_runs", "$1 = $1", "").await;
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

async fn a_send_in_flight_to_the_person_holds_the_erasure_until_its_lease_ends(store: impl Held) {
    let _files = bob_everywhere(&store).await;
    store
        .materialise(&[delivery("p-2", "p-2", "reminder")], &[], 20_000)
        .await
        .unwrap();
    let claimed = store.claim(20_000, 10, 60_000, &[]).await.unwrap();
    assert!(claimed.iter().any(|c| c.recipient_id == "p-2"));
    let err = store.erase_person(&erase("p-2", true)).await.unwrap_err();
    assert!(matches!(err, EraseError::InFlight(_)), "{err}");
    assert!(!store.scan("Bob Example").await.is_empty());
    // Once the lease has run out (the sender died), erasure goes ahead.
    let later = EraseRequest {
        now: 90_000,
        ..erase("p-2", true)
    };
    store.erase_person(&later).await.unwrap();
    assert!(store.scan("Bob Example").await.is_empty());
}

/// Erasure, subject access and retention of people held by the directory
/// and the console alone: the steps every erasure takes (re-keying, the
/// manager's id on others' rows, identities, free text, the record and the
/// evidence chain's erasure event) on both stores.
async fn people_held_by_the_directory_and_the_console_are_erased_everywhere(
    store: impl Store + Accounts + Privacy + Raw,
) {
    let files = Files::with_directory(&store).await;
    files
        .import(&store, "people.csv", PEOPLE_WITH_MOBILE)
        .await
        .unwrap();
    let kit = store
        .add_console_user(
            "kit",
            "champion",
            Some("p-2"),
            "setup-hash-1",
            99_000,
            6_000,
        )
        .await
        .unwrap()
        .expect("a new account");
    for (user_id, target) in [
        (None, "p-2"),
        (Some(kit), "the slides BOB EXAMPLE asked for"),
        (None, "nl-neglect"),
    ] {
        store
            .audit(&AuditEntry {
                at: 6_000,
                user_id,
                user_name: "admin".to_owned(),
                action: "user.add".to_owned(),
                target: target.to_owned(),
                before_hash: None,
                after_hash: None,
            })
            .await
            .unwrap();
    }

    let Some(SubjectAccess::Held { person, records }) = store.subject_access("p-2").await.unwrap()
    else {
        panic!("p-2 is held");
    };
    assert_eq!(person["display_name"], "Bob Example");
    assert_eq!(person["mobile"], "+447700900123");
    assert_eq!(person["active"], 1);
    assert_eq!(person["roles"], serde_json::json!(["practitioner"]));
    let tables: Vec<&str> = records.iter().map(|(t, _)| t.as_str()).collect();
    assert_eq!(
        tables,
        [
            "champion_teams",
            "champions",
            "channel_identities",
            "console_audit",
            "console_users",
        ]
    );
    let held = |table: &str| records.iter().find(|(t, _)| t == table).unwrap().1.clone();
    let mut addresses: Vec<String> = held("channel_identities")
        .iter()
        .map(|row| row["address"].as_str().unwrap().to_owned())
        .collect();
    addresses.sort();
    assert_eq!(addresses, ["+447700900123", "bob@lbx.example.org"]);
    assert_eq!(held("champion_teams").len(), 2);
    // The entry made through Bob's account; an entry naming him is not his.
    assert_eq!(held("console_audit").len(), 1);
    let text = serde_json::to_string(&records).unwrap();
    assert!(
        !text.contains("setup-hash-1"),
        "a secret is exported: {text}"
    );
    assert!(
        store
            .find_text("BOB@lbx.example.ORG")
            .await
            .unwrap()
            .iter()
            .any(|place| place.starts_with("people.email")),
        "find_text ignores case"
    );

    for reason in ["", "  ", "Bob Example asked", "a call from +447700900123"] {
        let err = store
            .erase_person(&EraseRequest {
                reason: reason.to_owned(),
                ..erase("p-2", false)
            })
            .await
            .unwrap_err();
        assert!(matches!(err, EraseError::Reason(_)), "{reason:?}: {err}");
    }
    let err = store.erase_person(&erase("p-99", false)).await.unwrap_err();
    assert!(matches!(err, EraseError::Unknown(_)), "{err}");
    assert_eq!(store.subject_access("p-99").await.unwrap(), None);
    assert_eq!(store.erasure_of("p-2").await.unwrap(), None);

    let erased = store.erase_person(&erase("p-2", false)).await.unwrap();
    assert!(erased.record.pseudonym.starts_with("erased-"));
    assert_eq!(erased.console_users, ["kit"]);
    assert_eq!(erased.cancelled_deliveries, 0);
    assert!(!erased.record.forced);
    for needle in ["Bob Example", "bob@lbx.example.org", "+447700900123", "p-2"] {
        let left = store.scan(needle).await;
        assert!(left.is_empty(), "{needle} is still in {left:#?}");
    }
    let removed: serde_json::Value = serde_json::from_str(&erased.record.removed).unwrap();
    assert_eq!(removed["chat_and_email_identities"], 2, "{removed}");
    assert_eq!(removed["details_in_others_free_text"], 1, "{removed}");
    let mut targets = store.column("console_audit", "target").await;
    targets.sort();
    assert_eq!(
        targets,
        [
            erased.record.pseudonym.clone(),
            "nl-neglect".to_owned(),
            "the slides [erased] asked for".to_owned(),
        ]
    );
    // Kit's account stays, now speaking for the pseudonym.
    assert_eq!(
        store
            .count_where("console_users", "person_id = $1", &erased.record.pseudonym)
            .await,
        1
    );
    // Ann, their manager, is untouched: Cat's row and the pseudonym's
    // still name her.
    assert_eq!(
        store.count_where("people", "manager_id = $1", "p-1").await,
        2
    );
    for id in ["p-2", erased.record.pseudonym.as_str()] {
        assert_eq!(
            store.subject_access(id).await.unwrap(),
            Some(SubjectAccess::Erased(erased.record.clone())),
            "{id}"
        );
        let again = store.erase_person(&erase(id, true)).await.unwrap_err();
        assert!(matches!(again, EraseError::AlreadyErased(..)), "{again}");
    }
    assert_eq!(
        store.erasure_of("p-2").await.unwrap(),
        Some(erased.record.clone())
    );

    // Cat leaves the directory; retention erases her.
    files
        .import(
            &store,
            "people.csv",
            &PEOPLE_WITH_MOBILE
                .lines()
                .filter(|l| !l.starts_with("p-3") && !l.starts_with("p-2"))
                .collect::<Vec<_>>()
                .join("\n"),
        )
        .await
        .unwrap();
    let now = Utc::now().timestamp_millis();
    let cutoffs = RetentionCutoffs {
        inactive_people: Some(now + 1_000),
        audit_log: Some(7_000),
        ..RetentionCutoffs::default()
    };
    let expected = RetentionReport {
        inactive_people: vec!["p-3".to_owned()],
        audit_log: 3,
        ..RetentionReport::default()
    };
    let dry = store
        .apply_retention(&cutoffs, "os:dpo", now, true)
        .await
        .unwrap();
    assert_eq!(dry, expected);
    assert!(!store.scan("Cat Example").await.is_empty());
    assert_eq!(
        store
            .apply_retention(&cutoffs, "os:dpo", now, false)
            .await
            .unwrap(),
        expected
    );
    for gone in ["Cat Example", "cat@lbx.example.org", "p-3"] {
        assert!(store.scan(gone).await.is_empty(), "{gone} is left");
    }
    assert!(store.column("console_audit", "target").await.is_empty());
    assert_eq!(store.count_where("retention_runs", "$1 = $1", "").await, 1);
    assert_eq!(
        store
            .count_where("erasures", "erased_by = $1", "retention")
            .await,
        1
    );
    assert!(
        store
            .apply_retention(&cutoffs, "os:dpo", now, false)
            .await
            .unwrap()
            .is_empty()
    );

    // Ann, the others' manager: their rows name her pseudonym.
    let ann = store.erase_person(&erase("p-1", false)).await.unwrap();
    assert_eq!(
        store
            .count_where("people", "manager_id = $1", &ann.record.pseudonym)
            .await,
        2
    );
    assert!(store.scan("p-1").await.is_empty());
}

on_both_stores!(
    every_column_of_the_schema_is_classified_for_erasure_and_the_record_of_processing,
    people_held_by_the_directory_and_the_console_are_erased_everywhere,
);

on_both_stores!(
    the_scan_finds_bob_everywhere_before_erasure,
    after_erasure_no_detail_of_the_person_is_left_in_any_table_and_totals_stand,
    an_erased_person_is_exported_as_the_erasure_only_and_cannot_come_back,
    a_reason_that_names_the_person_or_an_unknown_person_is_refused_and_nothing_changes,
    a_subject_access_export_holds_every_table_the_person_is_in_and_no_secret,
    retention_lists_then_removes_only_what_is_older_than_its_period,
    a_send_in_flight_to_the_person_holds_the_erasure_until_its_lease_ends,
);

/// Two stores on one PostgreSQL database, as two `cascade serve`
/// processes sharing it.
async fn two_postgres() -> (PgStore, PgStore) {
    let server = TestPostgres::shared().unwrap_or_else(|e| panic!("{e}"));
    let url = server.new_database().await.unwrap();
    let settings = PgSettings::new(url);
    (
        PgStore::connect(&settings).await.unwrap(),
        PgStore::connect(&settings).await.unwrap(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_processes_erasing_one_person_at_once_erase_them_once() {
    let (a, b) = two_postgres().await;
    let _files = bob_everywhere(&a).await;
    let request = erase("p-2", true);
    let (first, second) = tokio::join!(a.erase_person(&request), b.erase_person(&request));
    let (erased, refused) = match (first, second) {
        (Ok(erased), Err(refused)) | (Err(refused), Ok(erased)) => (erased, refused),
        other => panic!("one erasure and one refusal, not {other:?}"),
    };
    assert!(
        matches!(&refused, EraseError::AlreadyErased(_, record) if **record == erased.record),
        "{refused}"
    );
    for needle in BOB {
        assert!(a.scan(needle).await.is_empty(), "{needle} is left");
    }
    chain_verifies_with(&b, &[("erasure", 1), ("amend", 6)]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dispatcher_claiming_during_an_erasure_never_sends_to_the_erased_person() {
    for _ in 0..4 {
        let (a, b) = two_postgres().await;
        let _files = bob_everywhere(&a).await;
        a.materialise(&[delivery("p-2", "p-2", "reminder")], &[], 20_000)
            .await
            .unwrap();
        let later = EraseRequest {
            now: 20_000,
            ..erase("p-2", true)
        };
        let (erased, claimed) =
            tokio::join!(a.erase_person(&later), b.claim(20_000, 10, 60_000, &[]));
        let claimed = claimed.unwrap();
        match erased {
            // Erased first: the reminder was cancelled, never claimed.
            Ok(erased) => {
                assert!(claimed.is_empty(), "{claimed:?}");
                assert_eq!(erased.cancelled_deliveries, 1);
                assert!(a.scan("Bob Example").await.is_empty());
            }
            // Claimed first: the erasure waits for the send.
            Err(EraseError::InFlight(_)) => {
                assert_eq!(claimed.len(), 1, "{claimed:?}");
                assert_eq!(claimed[0].recipient_id, "p-2");
                assert!(!a.scan("Bob Example").await.is_empty());
            }
            Err(other) => panic!("{other}"),
        }
        a.close().await;
        b.close().await;
    }
}
