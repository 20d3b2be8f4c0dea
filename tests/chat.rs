//! Chat conversations end to end through a real plugin: events go through
//! the runner, which records evidence and answers through the channel (here
//! the file plugin, which writes each answer beside the deliveries). Linking,
//! acknowledging with a button and seeing the message change, `/pending` and
//! `/ack`, a champion's guided cascade confirmation and form, and a person
//! who blocked the bot reached on their next channel.

mod support;

use cascade_engine::engine::Runner;
use cascade_engine::inbound::{ActionRef, InboundOutcome, Refusal, issue_code};
use cascade_model::rollout::StepKind;
use cascade_plugin_api::{InboundEvent, InboundKind};
use cascade_plugin_host::Inbound;
use cascade_store::{AckMethod, DeliveryState, Inspect, SqliteStore};
use cascade_test_support::outbox::{delivery_to, refusals, rows};
use cascade_test_support::utc;
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};
use support::{EVERYONE_NOW, project, rollout_file, start};

/// An email channel and a chat channel, both written to folders.
const CHANNELS: &str = r#"
[[channels]]
name = "outbox"
plugin = "file"
identity = "email"
formats = ["email-text"]
config = { dir = "OUTBOX" }

[[channels]]
name = "chat"
plugin = "file"
identity = "telegram"
formats = ["telegram"]
config = { dir = "OUTBOX/chat", unreachable = ["tg-blocked"] }
"#;

const ITEM: &str = "7mb-neglect-seeing-the-child";
const TITLE: &str = "Neglect: seeing the child";

fn chat_dir(project: &Path) -> PathBuf {
    project.join("outbox").join("chat")
}

struct Chat {
    runner: Runner<SqliteStore>,
    dir: tempfile::TempDir,
    events: std::cell::Cell<u32>,
}

impl Chat {
    async fn new(rollout: &str) -> Chat {
        let dir = project(CHANNELS);
        let path = rollout_file(dir.path(), "now", rollout);
        let runner = start(dir.path(), &path, utc(2026, 3, 27, 8, 0)).await;
        Chat {
            runner,
            dir,
            events: std::cell::Cell::new(0),
        }
    }

    /// Sends an event from `account` at 10:00 on 27 March and returns the
    /// outcome and the answer the channel was given.
    async fn say(&self, account: &str, kind: InboundKind) -> (InboundOutcome, Value) {
        self.events.set(self.events.get() + 1);
        let id = format!("event-{}", self.events.get());
        let outcome = self.event(account, Some(id.clone()), kind).await;
        (outcome, self.answer_to(&id))
    }

    /// An event that asks for no answer (it has no id).
    async fn event(&self, account: &str, id: Option<String>, kind: InboundKind) -> InboundOutcome {
        let event = Inbound {
            instance: "chat".to_owned(),
            event: InboundEvent {
                event_id: None,
                channel: "file".to_owned(),
                account: account.to_owned(),
                address: id.as_ref().map(|_| account.to_owned()),
                id,
                kind,
            },
        };
        self.runner
            .handle_event(&event, utc(2026, 3, 27, 10, 0))
            .await
            .unwrap()
            .unwrap()
    }

    async fn command(&self, account: &str, name: &str, args: &[&str]) -> (InboundOutcome, Value) {
        let kind = InboundKind::Command {
            name: name.to_owned(),
            args: args.iter().map(|a| (*a).to_owned()).collect(),
        };
        self.say(account, kind).await
    }

    async fn press(&self, account: &str, action_id: &str) -> (InboundOutcome, Value) {
        let kind = InboundKind::Action {
            action_id: action_id.to_owned(),
            delivery_id: None,
        };
        self.say(account, kind).await
    }

    async fn type_text(&self, account: &str, text: &str) -> (InboundOutcome, Value) {
        let kind = InboundKind::Text {
            text: text.to_owned(),
        };
        self.say(account, kind).await
    }

    async fn link(&self, person: &str, account: &str) {
        let code = issue_code(
            self.runner.store().as_ref(),
            self.runner.link_codes(),
            person,
            1_774_605_600_000,
        )
        .await
        .unwrap();
        let start = InboundKind::Command {
            name: "start".to_owned(),
            args: vec![code],
        };
        let outcome = self.event(account, None, start).await;
        assert_eq!(
            outcome,
            InboundOutcome::Linked {
                person_id: person.to_owned()
            }
        );
    }

    /// The answer the plugin was asked to send for an event. Answers are sent
    /// in the background, so wait for the file to appear.
    fn answer_to(&self, event_id: &str) -> Value {
        let dir = chat_dir(self.dir.path());
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            for entry in std::fs::read_dir(&dir).unwrap() {
                let path = entry.unwrap().path();
                let name = path.file_name().unwrap().to_string_lossy().into_owned();
                if !name.starts_with("reply-") {
                    continue;
                }
                let message: Value =
                    serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
                if message["reply"]["event_id"] == event_id {
                    return message;
                }
            }
            assert!(
                Instant::now() < deadline,
                "no answer to {event_id} in {}",
                dir.display()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    async fn delivery_to(&self, person: &str, channel: &str) -> i64 {
        delivery_to(self.runner.store().as_ref(), person, |r| {
            r.channel == channel && r.step_kind == StepKind::Initial
        })
        .await
    }

    fn delivered(&self, delivery: i64) -> Value {
        let path = chat_dir(self.dir.path()).join(format!("d{delivery}.json"));
        serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
    }
}

fn text(answer: &Value) -> String {
    answer["parts"][0]["chunks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c.as_str().unwrap())
        .collect()
}

/// The id of the button whose label starts with `label` on a message.
fn button(message: &Value, label: &str) -> String {
    message["actions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["label"].as_str().unwrap().starts_with(label))
        .unwrap_or_else(|| panic!("no {label:?} button in {}", message["actions"]))["id"]
        .as_str()
        .unwrap()
        .to_owned()
}

fn labels(message: &Value, key: &str) -> Vec<String> {
    message[key]
        .as_array()
        .map(|a| {
            a.iter()
                .map(|b| b["label"].as_str().unwrap().to_owned())
                .collect()
        })
        .unwrap_or_default()
}

fn chat_first() -> String {
    EVERYONE_NOW.replace("CHANNELS", "[\"chat\", \"outbox\"]")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_champion_acknowledges_sees_the_message_change_and_confirms_a_cascade_step_by_step() {
    let chat = Chat::new(&chat_first()).await;
    chat.link("p-amara-okafor", "tg-amara").await;
    chat.runner.tick(utc(2026, 3, 27, 9, 0)).await.unwrap();
    let delivery = chat.delivery_to("p-amara-okafor", "chat").await;
    let message = chat.delivered(delivery);
    assert_eq!(
        labels(&message, "actions"),
        ["Acknowledge", "I've cascaded this to my team"]
    );
    for action in message["actions"].as_array().unwrap() {
        let id = action["id"].as_str().unwrap();
        assert!(id.len() <= 64 && !id.contains("amara"), "{id}");
    }

    let (outcome, answer) = chat
        .press("tg-amara", &button(&message, "Acknowledge"))
        .await;
    assert_eq!(
        outcome,
        InboundOutcome::Acknowledged {
            person_id: "p-amara-okafor".to_owned(),
            first: true
        }
    );
    assert_eq!(answer["reply"]["status"], "Acknowledged on 27 March 2026");
    assert_eq!(answer["reply"]["notice"], "Acknowledged");
    assert_eq!(
        labels(&answer["reply"], "keep_actions"),
        ["I've cascaded this to my team"]
    );
    assert_eq!(answer["recipient"]["address"], "tg-amara");
    assert!(text(&answer).contains(TITLE), "{}", text(&answer));

    // She covers two teams: the exchange asks which, then the rest.
    let (_, question) = chat
        .press("tg-amara", &button(&message, "I've cascaded this"))
        .await;
    assert!(
        text(&question).contains("Which team"),
        "{}",
        text(&question)
    );
    assert_eq!(
        labels(&question, "actions"),
        [
            "Children's Social Care North",
            "Multi-Agency Safeguarding Hub (MASH)"
        ]
    );
    let (_, question) = chat
        .press("tg-amara", &button(&question, "Multi-Agency"))
        .await;
    assert!(
        text(&question).starts_with("When was"),
        "{}",
        text(&question)
    );
    let (_, question) = chat.type_text("tg-amara", "next Tuesday").await;
    assert!(
        text(&question).contains("YYYY-MM-DD"),
        "{}",
        text(&question)
    );
    let (_, question) = chat
        .press("tg-amara", &button(&question, "Yesterday"))
        .await;
    assert!(
        text(&question).starts_with("How many"),
        "{}",
        text(&question)
    );
    let (_, question) = chat.type_text("tg-amara", "14").await;
    let (_, question) = chat
        .press("tg-amara", &button(&question, "Briefing session"))
        .await;
    let summary = text(&question);
    for line in [
        "Team: Multi-Agency Safeguarding Hub (MASH)",
        "Date: 2026-03-26",
        "Present: 14",
        "Method: Briefing session",
    ] {
        assert!(summary.contains(line), "{line} not in {summary}");
    }
    let (outcome, done) = chat.press("tg-amara", &button(&question, "Confirm")).await;
    assert_eq!(
        outcome,
        InboundOutcome::Confirmed {
            person_id: "p-amara-okafor".to_owned(),
            team_id: "mash".to_owned(),
            first: true
        }
    );
    assert!(
        text(&done)
            .contains("to Multi-Agency Safeguarding Hub (MASH) on 26 March 2026 (14 present)"),
        "{}",
        text(&done)
    );
    let row = chat.runner.store().confirmations().await.unwrap().remove(0);
    let recorded = (
        row.champion_id,
        row.item_id,
        row.team_id,
        row.session_date,
        row.present,
        row.method,
        row.channel,
    );
    assert_eq!(
        recorded,
        (
            "p-amara-okafor".to_owned(),
            ITEM.to_owned(),
            "mash".to_owned(),
            "2026-03-26".to_owned(),
            14,
            "briefing-session".to_owned(),
            "chat".to_owned()
        )
    );

    // A choice pressed after the exchange ended records nothing more.
    let (outcome, late) = chat.press("tg-amara", &button(&question, "Confirm")).await;
    assert_eq!(outcome, InboundOutcome::Ignored);
    assert!(text(&late).contains("has ended"), "{}", text(&late));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pending_lists_only_what_is_waiting_and_ack_by_item_id_records_a_command_acknowledgement() {
    let chat = Chat::new(&chat_first()).await;
    let code = issue_code(
        chat.runner.store().as_ref(),
        chat.runner.link_codes(),
        "p-tom-reilly",
        1_774_605_600_000,
    )
    .await
    .unwrap();
    let (_, linked) = chat.command("tg-tom", "link", &[&code]).await;
    assert!(
        text(&linked).starts_with("Thank you, Tom Reilly: this chat is now linked to you."),
        "{}",
        text(&linked)
    );
    chat.runner.tick(utc(2026, 3, 27, 9, 0)).await.unwrap();

    let (outcome, stranger) = chat.command("tg-stranger", "pending", &[]).await;
    assert_eq!(
        outcome,
        InboundOutcome::Refused {
            reason: Refusal::UnlinkedAccount
        }
    );
    assert!(text(&stranger).contains("/link"), "{}", text(&stranger));
    assert!(!text(&stranger).contains(TITLE));
    assert!(labels(&stranger, "actions").is_empty());

    let (outcome, listed) = chat.command("tg-tom", "pending", &[]).await;
    assert_eq!(
        outcome,
        InboundOutcome::Listed {
            person_id: "p-tom-reilly".to_owned(),
            count: 1
        }
    );
    assert!(text(&listed).contains(TITLE), "{}", text(&listed));
    assert!(text(&listed).contains(&format!("/ack {ITEM}")));
    assert_eq!(
        labels(&listed, "actions"),
        [format!("Acknowledge: {TITLE}")]
    );

    let (outcome, _) = chat.command("tg-tom", "ack", &["no-such-item"]).await;
    assert_eq!(
        outcome,
        InboundOutcome::Refused {
            reason: Refusal::NothingToAcknowledge
        }
    );
    let (outcome, _) = chat.command("tg-tom", "ack", &[ITEM]).await;
    assert_eq!(
        outcome,
        InboundOutcome::Acknowledged {
            person_id: "p-tom-reilly".to_owned(),
            first: true
        }
    );
    let method = chat
        .runner
        .store()
        .acknowledgements()
        .await
        .unwrap()
        .into_iter()
        .find(|a| a.person_id == "p-tom-reilly")
        .unwrap()
        .method;
    assert_eq!(method, AckMethod::Command);
    let (outcome, none) = chat.command("tg-tom", "pending", &[]).await;
    assert_eq!(
        outcome,
        InboundOutcome::Listed {
            person_id: "p-tom-reilly".to_owned(),
            count: 0
        }
    );
    assert!(
        text(&none).contains("Nothing is waiting"),
        "{}",
        text(&none)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forged_buttons_non_champions_and_teams_not_covered_record_nothing() {
    let chat = Chat::new(&chat_first()).await;
    chat.link("p-tom-reilly", "tg-tom").await;
    chat.link("p-amara-okafor", "tg-amara").await;
    chat.runner.tick(utc(2026, 3, 27, 9, 0)).await.unwrap();
    let toms = chat.delivery_to("p-tom-reilly", "chat").await;
    let amaras = chat.delivery_to("p-amara-okafor", "chat").await;

    assert_eq!(
        labels(&chat.delivered(toms), "actions"),
        ["Acknowledge"],
        "a practitioner who is no champion is not offered the cascade button"
    );
    let (outcome, answer) = chat.press("tg-tom", &format!("ack:{toms}")).await;
    assert_eq!(
        outcome,
        InboundOutcome::Refused {
            reason: Refusal::ForgedAction
        }
    );
    assert!(!text(&answer).contains(TITLE));
    let forged = chat.runner.keys().sign(&ActionRef::Confirm(toms));
    let (outcome, _) = chat.press("tg-tom", &forged).await;
    assert_eq!(
        outcome,
        InboundOutcome::Refused {
            reason: Refusal::NotAChampion
        }
    );
    let (outcome, _) = chat
        .press(
            "tg-tom",
            &chat.runner.keys().sign(&ActionRef::Confirm(amaras)),
        )
        .await;
    assert_eq!(
        outcome,
        InboundOutcome::Refused {
            reason: Refusal::DifferentPerson
        }
    );

    // Through a form (a channel with forms), a team she does not cover is
    // refused field by field and records nothing; one she covers is recorded.
    let form = |team: &str| InboundKind::Form {
        action_id: chat.runner.keys().sign(&ActionRef::Confirm(amaras)),
        fields: [
            ("team", team),
            ("session_date", "2026-03-27"),
            ("present", "9"),
            ("method", "team meeting"),
            ("note", "Discussed at the Friday huddle"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect(),
    };
    let (outcome, answer) = chat.say("tg-amara", form("Youth Justice")).await;
    assert_eq!(outcome, InboundOutcome::Asked);
    assert!(
        text(&answer).contains("Choose one of the teams you cover"),
        "{}",
        text(&answer)
    );
    let confirmations = || async { chat.runner.store().confirmations().await.unwrap().len() };
    assert_eq!(confirmations().await, 0);
    let (outcome, _) = chat.say("tg-amara", form("mash")).await;
    assert_eq!(
        outcome,
        InboundOutcome::Confirmed {
            person_id: "p-amara-okafor".to_owned(),
            team_id: "mash".to_owned(),
            first: true
        }
    );
    assert_eq!(confirmations().await, 1);
    assert_eq!(
        refusals(chat.runner.store().as_ref()).await,
        [
            ("account linked to a different person".to_owned(), 1),
            ("forged action id".to_owned(), 1),
            ("not a champion".to_owned(), 1),
        ]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_person_who_blocked_the_bot_gets_the_message_and_their_reminders_by_email() {
    let with_reminder = chat_first().replace(
        "ack_deadline_days = 10",
        "ack_deadline_days = 10\nreminder_days = [3]",
    );
    let chat = Chat::new(&with_reminder).await;
    chat.link("p-tom-reilly", "tg-blocked").await;
    chat.runner.tick(utc(2026, 3, 27, 9, 0)).await.unwrap();
    let toms: Vec<_> = rows(chat.runner.store().as_ref())
        .await
        .into_iter()
        .filter(|r| r.recipient_id == "p-tom-reilly")
        .map(|r| (r.step_kind, r.state, r.channel))
        .collect();
    assert_eq!(
        toms,
        [
            (StepKind::Initial, DeliveryState::Dead, "chat".to_owned()),
            (StepKind::Initial, DeliveryState::Sent, "outbox".to_owned()),
        ]
    );
    let identity = chat
        .runner
        .store()
        .identity("telegram", "tg-blocked")
        .await
        .unwrap()
        .unwrap();
    assert!(identity.unreachable_at.is_some());

    chat.runner.tick(utc(2026, 3, 30, 8, 0)).await.unwrap();
    let reminder: Vec<_> = rows(chat.runner.store().as_ref())
        .await
        .into_iter()
        .filter(|r| r.recipient_id == "p-tom-reilly" && r.step_kind == StepKind::Reminder)
        .map(|r| (r.state, r.channel))
        .collect();
    assert_eq!(reminder, [(DeliveryState::Sent, "outbox".to_owned())]);
}

/// Found when tried as a new user would: a bare `/start` (Telegram's Start
/// button) was answered "That code is not recognised", `/ack` without an
/// id or of an item already acknowledged said "nothing by that id is
/// waiting".
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_person_is_welcomed_and_ack_says_what_it_needs_and_what_was_done() {
    let chat = Chat::new(&chat_first()).await;
    let (outcome, welcome) = chat.command("tg-new", "start", &[]).await;
    assert_eq!(outcome, InboundOutcome::Ignored);
    assert!(text(&welcome).starts_with("Welcome."), "{}", text(&welcome));
    assert!(
        text(&welcome).contains("/link 123456"),
        "{}",
        text(&welcome)
    );
    let (outcome, usage) = chat.command("tg-new", "link", &[]).await;
    assert_eq!(outcome, InboundOutcome::Ignored);
    assert!(text(&usage).contains("send /link followed by the code"));

    chat.link("p-tom-reilly", "tg-tom").await;
    let (_, back) = chat.command("tg-tom", "start", &[]).await;
    assert!(text(&back).starts_with("Welcome back"), "{}", text(&back));
    chat.runner.tick(utc(2026, 3, 27, 9, 0)).await.unwrap();
    let (outcome, usage) = chat.command("tg-tom", "ack", &[]).await;
    assert_eq!(outcome, InboundOutcome::Ignored);
    assert!(text(&usage).starts_with("Send /ack followed by the item's id"));
    let (_, first) = chat.command("tg-tom", "ack", &[ITEM]).await;
    assert!(text(&first).contains("is acknowledged"), "{}", text(&first));
    let (outcome, again) = chat.command("tg-tom", "ack", &[ITEM]).await;
    assert_eq!(
        outcome,
        InboundOutcome::Acknowledged {
            person_id: "p-tom-reilly".to_owned(),
            first: false
        }
    );
    assert_eq!(
        text(&again),
        format!("You had already acknowledged \"{TITLE}\" on 27 March 2026.")
    );
}

/// Pressing one item's button in a `/pending` list took every button off
/// the list and left a status line that did not say which item it meant.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_press_in_a_pending_list_keeps_the_other_items_and_names_the_one_acknowledged() {
    let chat = Chat::new(&chat_first()).await;
    chat.link("p-tom-reilly", "tg-tom").await;
    let second = rollout_file(
        chat.dir.path(),
        "second",
        &chat_first()
            .replace("id = \"now\"", "id = \"second\"")
            .replace(ITEM, "7mb-safer-sleep"),
    );
    let engine = cascade_engine::engine::Engine::open(
        cascade_engine::project::Project::open(chat.dir.path()).unwrap(),
        false,
    )
    .await
    .unwrap_or_else(|p| panic!("{p}"));
    let planned = engine
        .plan(&second, utc(2026, 3, 27, 8, 0))
        .await
        .unwrap_or_else(|p| panic!("{p}"));
    engine
        .start(&planned, utc(2026, 3, 27, 8, 0))
        .await
        .unwrap();
    chat.runner.tick(utc(2026, 3, 27, 9, 0)).await.unwrap();

    let (_, listed) = chat.command("tg-tom", "pending", &[]).await;
    let safer_sleep = "Acknowledge: Safer sleep: every contact counts";
    assert_eq!(
        labels(&listed, "actions"),
        [format!("Acknowledge: {TITLE}"), safer_sleep.to_owned()]
    );
    let (outcome, answer) = chat
        .press("tg-tom", &button(&listed, &format!("Acknowledge: {TITLE}")))
        .await;
    assert_eq!(
        outcome,
        InboundOutcome::Acknowledged {
            person_id: "p-tom-reilly".to_owned(),
            first: true
        }
    );
    assert_eq!(labels(&answer["reply"], "keep_actions"), [safer_sleep]);
    assert_eq!(
        answer["reply"]["status"],
        format!("\"{TITLE}\": acknowledged on 27 March 2026")
    );
    // The button left on the list still works, and the list is then empty.
    let (_, answer) = chat
        .press(
            "tg-tom",
            &button(
                &serde_json::json!({ "actions": answer["reply"]["keep_actions"] }),
                safer_sleep,
            ),
        )
        .await;
    assert!(labels(&answer["reply"], "keep_actions").is_empty());
}
