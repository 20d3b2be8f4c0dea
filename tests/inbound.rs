//! Inbound events from chat channels: linking accounts with one-time codes,
//! and acknowledging or answering only from the right account.

mod support;

use cascade_engine::engine::Runner;
use cascade_engine::inbound::{ActionRef, InboundOutcome, Refusal, issue_code};
use cascade_engine::respond::Unavailable;
use cascade_model::rollout::StepKind;
use cascade_plugin_api::{InboundEvent, InboundKind};
use cascade_plugin_host::Inbound;
use cascade_store::{Inspect, SqliteStore};
use cascade_test_support::outbox::{acknowledgements, delivery_to, refusals, rows};
use cascade_test_support::utc;
use std::path::Path;
use support::{EVERYONE_NOW, OUTBOX, project, rollout_file, start};

/// The demo project with everyone's rollout on the `outbox` channel,
/// started the morning before it sends.
async fn everyone_now() -> (tempfile::TempDir, Runner<SqliteStore>) {
    let dir = project(OUTBOX);
    let path = rollout_file(
        dir.path(),
        "now",
        &EVERYONE_NOW.replace("CHANNELS", "[\"outbox\"]"),
    );
    let runner = start(dir.path(), &path, utc(2026, 3, 27, 8, 0)).await;
    (dir, runner)
}

fn command(account: &str, name: &str, args: &[&str]) -> Inbound {
    Inbound {
        instance: "chat".to_owned(),
        event: InboundEvent {
            event_id: None,
            channel: "telegram".to_owned(),
            account: account.to_owned(),
            id: None,
            address: None,
            kind: InboundKind::Command {
                name: name.to_owned(),
                args: args.iter().map(|a| (*a).to_owned()).collect(),
            },
        },
    }
}

fn typed(account: &str, text: &str) -> Inbound {
    Inbound {
        instance: "chat".to_owned(),
        event: InboundEvent {
            event_id: None,
            channel: "telegram".to_owned(),
            account: account.to_owned(),
            id: None,
            address: None,
            kind: InboundKind::Text {
                text: text.to_owned(),
            },
        },
    }
}

fn press(account: &str, action: &str) -> Inbound {
    Inbound {
        instance: "chat".to_owned(),
        event: InboundEvent {
            event_id: None,
            channel: "telegram".to_owned(),
            account: account.to_owned(),
            id: None,
            address: None,
            kind: InboundKind::Action {
                action_id: action.to_owned(),
                delivery_id: None,
            },
        },
    }
}

async fn handle(
    runner: &Runner<SqliteStore>,
    event: &Inbound,
    identity: &str,
    now: i64,
) -> Result<InboundOutcome, Unavailable> {
    Ok(runner.desk().handle(event, identity, now).await?.outcome)
}

/// The id of the button labelled `label` on the message the file channel
/// wrote for a delivery: what a chat plugin would have offered.
fn action(project: &Path, delivery: i64, label: &str) -> String {
    let path = project.join("outbox").join(format!("d{delivery}.json"));
    let message: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    let actions = message["actions"].as_array().unwrap();
    actions
        .iter()
        .find(|a| a["label"] == label)
        .unwrap_or_else(|| panic!("no {label:?} button in {actions:?}"))["id"]
        .as_str()
        .unwrap()
        .to_owned()
}

const MARCH_27: i64 = 1_774_602_000_000; // 2026-03-27 09:00 UTC

/// A link code is about 40 bits: kept as a plain SHA-256, a copy of the
/// database gives every unused code away in minutes. The store keeps an
/// HMAC under the project's link-code key, which lives in its own file
/// outside the database, so a code hashed under any other key (all an
/// attacker with the database alone could compute) matches nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_kept_link_code_is_keyed_so_the_database_alone_cannot_reveal_it() {
    let (dir, runner) = everyone_now().await;
    let store = runner.store().as_ref();
    let now = MARCH_27;

    let code = issue_code(store, runner.link_codes(), "p-amara-okafor", now)
        .await
        .unwrap();
    let kept: Vec<String> = store
        .link_codes()
        .await
        .unwrap()
        .into_iter()
        .map(|c| c.code_hash)
        .collect();
    use sha2::Digest;
    let plain = hex::encode(sha2::Sha256::digest(code.as_bytes()));
    assert_eq!(kept.len(), 1);
    assert_ne!(kept[0], plain, "the code is kept as a plain SHA-256");
    let secrets = store.engine_secret_values().await.unwrap();
    let key_file = std::fs::read_to_string(dir.path().join(".cascade/link-code.key")).unwrap();
    assert!(
        !secrets.iter().any(|s| hex::encode(s) == key_file.trim()),
        "the link-code key is in the database"
    );

    let other_key = cascade_engine::inbound::LinkCodeKey::new([7; 32]);
    let foreign = issue_code(store, &other_key, "p-tom-reilly", now)
        .await
        .unwrap();
    let refused = handle(
        &runner,
        &command("tg-1", "link", &[&foreign]),
        "telegram",
        now,
    )
    .await
    .unwrap();
    assert_eq!(
        refused,
        InboundOutcome::Refused {
            reason: Refusal::UnknownCode
        }
    );
    let linked = handle(&runner, &command("tg-2", "link", &[&code]), "telegram", now)
        .await
        .unwrap();
    assert_eq!(
        linked,
        InboundOutcome::Linked {
            person_id: "p-amara-okafor".to_owned()
        }
    );
}

/// A code an older cascade kept as plain SHA-256 still links until it
/// expires, so nobody's fresh code stops working across the upgrade.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_code_kept_by_an_older_cascade_works_until_it_expires() {
    let (_dir, runner) = everyone_now().await;
    let store = runner.store().as_ref();
    let now = MARCH_27;
    for (code, person) in [("ABCDEFGH", "p-amara-okafor"), ("HGFEDCBA", "p-tom-reilly")] {
        use sha2::Digest;
        store
            .insert_legacy_link_code(
                &hex::encode(sha2::Sha256::digest(code.as_bytes())),
                person,
                now,
                now + cascade_engine::inbound::CODE_LIFETIME_MS,
            )
            .await
            .unwrap();
    }
    let linked = handle(
        &runner,
        &command("tg-1", "link", &["abcd-efgh"]),
        "telegram",
        now,
    )
    .await
    .unwrap();
    assert_eq!(
        linked,
        InboundOutcome::Linked {
            person_id: "p-amara-okafor".to_owned()
        }
    );
    let late = now + cascade_engine::inbound::CODE_LIFETIME_MS;
    let expired = handle(
        &runner,
        &command("tg-2", "link", &["HGFEDCBA"]),
        "telegram",
        late,
    )
    .await
    .unwrap();
    assert_eq!(
        expired,
        InboundOutcome::Refused {
            reason: Refusal::ExpiredCode
        }
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_link_code_links_an_account_once_and_expires_after_a_day() {
    let (_dir, runner) = everyone_now().await;
    let store = runner.store().as_ref();
    let now = MARCH_27;

    let code = issue_code(store, runner.link_codes(), "p-amara-okafor", now)
        .await
        .unwrap();
    let linked = handle(
        &runner,
        &command("tg-100", "start", &[&code.to_lowercase()]),
        "telegram",
        now,
    )
    .await
    .unwrap();
    assert_eq!(
        linked,
        InboundOutcome::Linked {
            person_id: "p-amara-okafor".to_owned()
        }
    );
    let linked_to = cascade_store::Evidence::person_for_account(store, "telegram", "tg-100")
        .await
        .unwrap();
    assert_eq!(linked_to.as_deref(), Some("p-amara-okafor"));

    // The same account sending the code again (or its message handled
    // again after a crash) hears it is linked, not that the code is used.
    let resent = handle(
        &runner,
        &command("tg-100", "link", &[&code]),
        "telegram",
        now,
    )
    .await
    .unwrap();
    assert_eq!(
        resent,
        InboundOutcome::Linked {
            person_id: "p-amara-okafor".to_owned()
        }
    );

    let again = handle(
        &runner,
        &command("tg-999", "link", &[&code]),
        "telegram",
        now,
    )
    .await
    .unwrap();
    assert_eq!(
        again,
        InboundOutcome::Refused {
            reason: Refusal::UsedCode
        }
    );

    let late = issue_code(store, runner.link_codes(), "p-tom-reilly", now)
        .await
        .unwrap();
    let day_later = now + 24 * 60 * 60 * 1000;
    let expired = handle(
        &runner,
        &command("tg-200", "link", &[&late]),
        "telegram",
        day_later,
    )
    .await
    .unwrap();
    assert_eq!(
        expired,
        InboundOutcome::Refused {
            reason: Refusal::ExpiredCode
        }
    );
    let unknown = handle(
        &runner,
        &command("tg-200", "link", &["ZZZZZZZZ"]),
        "telegram",
        now,
    )
    .await
    .unwrap();
    assert_eq!(
        unknown,
        InboundOutcome::Refused {
            reason: Refusal::UnknownCode
        }
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_button_acknowledges_only_from_the_account_linked_to_the_recipient() {
    let dir = project(OUTBOX);
    let with_reminder = EVERYONE_NOW.replace("CHANNELS", "[\"outbox\"]").replace(
        "ack_deadline_days = 10",
        "ack_deadline_days = 10\nreminder_days = [3]",
    );
    let path = rollout_file(dir.path(), "now", &with_reminder);
    let runner = start(dir.path(), &path, utc(2026, 3, 27, 8, 0)).await;
    runner.tick(utc(2026, 3, 27, 9, 0)).await.unwrap();
    let store = runner.store().as_ref();
    let amaras = delivery_to(store, "p-amara-okafor", |_| true).await;
    let ack = action(dir.path(), amaras, "Acknowledge");
    let now = MARCH_27 + 60_000;

    let unlinked = handle(&runner, &press("tg-1", &ack), "telegram", now)
        .await
        .unwrap();
    assert_eq!(
        unlinked,
        InboundOutcome::Refused {
            reason: Refusal::UnlinkedAccount
        }
    );

    let toms_code = issue_code(store, runner.link_codes(), "p-tom-reilly", now)
        .await
        .unwrap();
    handle(
        &runner,
        &command("tg-tom", "link", &[&toms_code]),
        "telegram",
        now,
    )
    .await
    .unwrap();
    let someone_else = handle(&runner, &press("tg-tom", &ack), "telegram", now)
        .await
        .unwrap();
    assert_eq!(
        someone_else,
        InboundOutcome::Refused {
            reason: Refusal::DifferentPerson
        }
    );

    assert_eq!(
        refusals(store).await,
        [
            ("account linked to a different person".to_owned(), 1),
            ("unlinked account".to_owned(), 1),
        ]
    );
    assert_eq!(acknowledgements(store).await, 0);

    let amaras_code = issue_code(store, runner.link_codes(), "p-amara-okafor", now)
        .await
        .unwrap();
    handle(
        &runner,
        &command("tg-amara", "start", &[&amaras_code]),
        "telegram",
        now,
    )
    .await
    .unwrap();
    let first = handle(&runner, &press("tg-amara", &ack), "telegram", now)
        .await
        .unwrap();
    assert_eq!(
        first,
        InboundOutcome::Acknowledged {
            person_id: "p-amara-okafor".to_owned(),
            first: true
        }
    );
    let repeat = handle(&runner, &press("tg-amara", &ack), "telegram", now + 1)
        .await
        .unwrap();
    assert_eq!(
        repeat,
        InboundOutcome::Acknowledged {
            person_id: "p-amara-okafor".to_owned(),
            first: false
        }
    );
    assert_eq!(acknowledgements(store).await, 1);

    // The reminder three days later (Monday 30 March, 09:00 BST) skips her.
    runner.tick(utc(2026, 3, 30, 8, 0)).await.unwrap();
    let reminded: Vec<String> = rows(runner.store().as_ref())
        .await
        .into_iter()
        .filter(|r| r.step_kind == StepKind::Reminder)
        .map(|r| r.recipient_id)
        .collect();
    assert_eq!(reminded.len(), 49);
    assert!(!reminded.iter().any(|p| p == "p-amara-okafor"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_follow_up_answer_is_recorded_once_with_its_label() {
    let dir = project(OUTBOX);
    let with_follow_up = format!(
        "{}\n[[follow_ups]]\nafter_days = 90\nquestion = \"Have you used this in practice?\"\nanswers = [\"Used it in practice\", \"Not yet\", \"Not relevant to my role\"]\n",
        EVERYONE_NOW.replace("CHANNELS", "[\"outbox\"]")
    );
    let path = rollout_file(dir.path(), "now", &with_follow_up);
    let runner = start(dir.path(), &path, utc(2026, 3, 27, 8, 0)).await;
    runner.tick(utc(2026, 3, 27, 9, 0)).await.unwrap();
    runner.tick(utc(2026, 6, 25, 8, 0)).await.unwrap();
    let store = runner.store().as_ref();
    let follow_up = delivery_to(store, "p-amara-okafor", |r| {
        r.step_kind == StepKind::FollowUp
    })
    .await;
    let now = MARCH_27;
    let code = issue_code(store, runner.link_codes(), "p-amara-okafor", now)
        .await
        .unwrap();
    handle(
        &runner,
        &command("tg-amara", "link", &[&code]),
        "telegram",
        now,
    )
    .await
    .unwrap();
    let answered = handle(
        &runner,
        &press("tg-amara", &action(dir.path(), follow_up, "Not yet")),
        "telegram",
        now,
    )
    .await
    .unwrap();
    assert_eq!(
        answered,
        InboundOutcome::Answered {
            person_id: "p-amara-okafor".to_owned(),
            answer: "Not yet".to_owned(),
            first: true
        }
    );
    let out_of_range = handle(
        &runner,
        &press(
            "tg-amara",
            &runner.keys().sign(&ActionRef::Answer(follow_up, 9)),
        ),
        "telegram",
        now,
    )
    .await
    .unwrap();
    assert_eq!(
        out_of_range,
        InboundOutcome::Refused {
            reason: Refusal::UnknownAnswer
        }
    );
    // The optional example that follows the first answer: one that seems to
    // identify a child is not kept, and the person is asked again.
    let blocked = handle(
        &runner,
        &typed("tg-amara", "Used it with the family at NW1 6XE last week"),
        "telegram",
        now,
    )
    .await
    .unwrap();
    assert_eq!(blocked, InboundOutcome::Asked);
    let kept = handle(
        &runner,
        &typed(
            "tg-amara",
            "  Raised it in supervision about a family I work with  ",
        ),
        "telegram",
        now,
    )
    .await
    .unwrap();
    assert_eq!(
        kept,
        InboundOutcome::ExampleKept {
            person_id: "p-amara-okafor".to_owned()
        }
    );
    let stored: Vec<(String, u32, Option<String>)> = store
        .answers()
        .await
        .unwrap()
        .into_iter()
        .map(|a| (a.answer, a.follow_up, a.example))
        .collect();
    assert_eq!(
        stored,
        [(
            "Not yet".to_owned(),
            1,
            Some("Raised it in supervision about a family I work with".to_owned())
        )]
    );
}

/// A stored event whose handling counted a refusal, when cascade stopped
/// before the event was marked handled: handled again from the inbox at
/// the next start, its refusal is not counted a second time.
#[tokio::test]
async fn a_refused_event_handled_again_after_a_crash_is_counted_once() {
    use cascade_store::Inbox;
    let (_dir, runner) = everyone_now().await;
    let store = &**runner.store();
    let now = utc(2026, 3, 27, 9, 0);
    let mut forged = press("tg-nobody", "forged.1");
    forged.instance = "outbox".to_owned();
    forged.event.event_id = Some("700001".to_owned());
    store
        .inbox_insert(
            "outbox",
            "700001",
            &serde_json::to_string(&forged.event).unwrap(),
            now.timestamp_millis(),
        )
        .await
        .unwrap();
    // Handled as the engine handles it, up to the crash: the refusal is
    // counted, and the engine never gets to its own mark.
    let outcome = handle(&runner, &forged, "email", now.timestamp_millis())
        .await
        .unwrap();
    assert!(
        matches!(outcome, InboundOutcome::Refused { .. }),
        "{outcome:?}"
    );
    // The next start handles what the inbox still holds.
    runner.handle_inbound(now).await.unwrap();
    assert_eq!(refusals(store).await.iter().map(|r| r.1).sum::<i64>(), 1);
    assert!(store.inbox_pending().await.unwrap().is_empty());
}
