//! The whole system with Telegram: a demo project whose chat channel is the
//! real plugin, pointed at the fake Bot API, driven through the engine's
//! runner with a controlled clock. People link with a code, receive a
//! three-part briefing, acknowledge with a button and see the message
//! change; `/pending`; presses from an unlinked or different account are
//! refused without revealing anything; a champion confirms a cascade step
//! by step; a blocked bot falls back to email. In webhook mode the updates
//! reach the plugin through cascade's own HTTP server, and only with the
//! secret token, which is checked before the body is read.

mod fake_bot_api;

use cascade_engine::delivery::DispatchSettings;
use cascade_engine::engine::{Engine, Runner};
use cascade_engine::inbound::{InboundOutcome, Refusal, issue_code};
use cascade_engine::project::Project;
use cascade_store::{AckMethod, DeliveryState, Inspect, SqliteStore};
use cascade_test_support::outbox::{acknowledgements, rows};
use cascade_test_support::{DemoProject, utc};
use chrono::{DateTime, Utc};
use fake_bot_api::{FakeBotApi, Posted, TOKEN};
use std::time::{Duration, Instant};

const AMARA: i64 = 7001; // a champion for the neglect theme, two teams
const TOM: i64 = 7002; // a practitioner
const STRANGER: i64 = 7999; // never linked
const TITLE: &str = "Neglect: seeing the child";

const CHANNELS: &str = r#"
[[channels]]
name = "outbox"
plugin = "file"
identity = "email"
formats = ["email-text"]
config = { dir = "OUTBOX" }

[[channels]]
name = "telegram"
plugin = "telegram"
identity = "telegram"
formats = ["telegram"]
secrets = { token = { file = "telegram-token" } }
config = { api_url = "FAKE_URL", messages_per_second = 1000, chat_messages_per_second = 1000 }
"#;

const ROLLOUT: &str = r#"
id = "now"
item = "7mb-neglect-seeing-the-child"
start = 2026-03-27T09:00:00
channels = ["telegram", "outbox"]
ack_deadline_days = 10
[audience]
[[waves]]
name = "Everyone"
after_days = 0
"#;

/// A paragraph long enough that the briefing needs three Telegram messages.
fn padding(section: u32) -> String {
    format!(
        "Practice note {section}: {}",
        "Spend time with the child, see where they sleep and what they eat, and write down what they tell you in their own words. "
            .repeat(22)
    )
}

struct Flow {
    fake: FakeBotApi,
    runner: Runner<SqliteStore>,
    /// In webhook mode: the base URL of cascade's HTTP server.
    server: Option<String>,
    _dir: tempfile::TempDir,
}

/// The webhook secret, kept in a secret file as an operator would.
const WEBHOOK_SECRET: &str = "a-webhook-secret_for-tests";

/// The demo project with the Telegram channel (long polling, or a webhook
/// at `server`) and a longer neglect item, imported as `cascade import` does;
/// with `carries`, the item is OFFICIAL-SENSITIVE and the Telegram channel
/// carries what it says.
async fn project_with(
    fake: &FakeBotApi,
    server: Option<&str>,
    chat_rate: &str,
    carries: Option<&str>,
    check_questions: bool,
    edit: Option<fn(String) -> String>,
) -> tempfile::TempDir {
    let project = DemoProject::new();
    let project = match edit {
        Some(edit) => project.edit("content/7mb-neglect-seeing-the-child.md", edit),
        None => project,
    };
    // Only the tests of check questions keep the briefing's: elsewhere one
    // press acknowledges.
    let project = if check_questions {
        project
    } else {
        project.without_check_questions()
    };
    let mut channels = CHANNELS
        .replace("FAKE_URL", &fake.url)
        .replace(
            "OUTBOX",
            &project.path().join("outbox").display().to_string(),
        )
        .replace(
            "chat_messages_per_second = 1000",
            &format!("chat_messages_per_second = {chat_rate}"),
        );
    let mut project = project;
    if let Some(server) = server {
        channels = channels
            .replace(
                "token = { file = \"telegram-token\" } }",
                "token = { file = \"telegram-token\" }, webhook_secret = { file = \"telegram-webhook-secret\" } }",
            )
            .replace(
                "config = { api_url",
                &format!("config = {{ mode = \"webhook\", webhook_url = \"{server}/webhooks/telegram\", api_url"),
            );
        project = project.write("telegram-webhook-secret", WEBHOOK_SECRET);
    }
    if let Some(carries) = carries {
        channels = channels.replace(
            "formats = [\"telegram\"]",
            &format!("formats = [\"telegram\"]\ncarries = \"{carries}\""),
        );
    }
    let sensitive = carries.is_some();
    project
        .channels(&channels)
        .write("telegram-token", format!("{TOKEN}\n"))
        .edit("content/7mb-neglect-seeing-the-child.md", move |mut item| {
            if sensitive {
                item = item.replacen(
                    "status = \"published\"",
                    "status = \"published\"\nclassification = \"official-sensitive\"\nsummary = \"What a local review taught us about seeing the child.\"",
                    1,
                );
            }
            for n in [2, 4] {
                let heading = item
                    .lines()
                    .find(|l| l.starts_with(&format!("## {n}.")))
                    .unwrap()
                    .to_owned();
                item = item.replace(&heading, &format!("{heading}\n\n{}", padding(n)));
            }
            item
        })
        .imported()
        .await
        .into_dir()
}

impl Flow {
    async fn new() -> Flow {
        Flow::start(false).await
    }

    /// With `webhook`, cascade's HTTP server (its webhook routes) runs on a
    /// local port and the channel is in webhook mode.
    async fn start(webhook: bool) -> Flow {
        Flow::paced(webhook, "1000").await
    }

    /// As [`start`](Self::start), with the plugin sending at most
    /// `chat_rate` messages a second to one chat.
    async fn paced(webhook: bool, chat_rate: &str) -> Flow {
        Flow::carrying(webhook, chat_rate, None).await
    }

    /// As [`paced`](Self::paced), the item OFFICIAL-SENSITIVE when
    /// `carries` says what the Telegram channel carries.
    async fn carrying(webhook: bool, chat_rate: &str, carries: Option<&str>) -> Flow {
        Flow::build(webhook, chat_rate, carries, false).await
    }

    /// The flow with the demo briefing's check question kept.
    async fn with_check_questions() -> Flow {
        Flow::build(false, "1000", None, true).await
    }

    async fn build(
        webhook: bool,
        chat_rate: &str,
        carries: Option<&str>,
        check_questions: bool,
    ) -> Flow {
        Flow::build_with(webhook, chat_rate, carries, check_questions, ROLLOUT, None).await
    }

    /// The flow of [`build`](Self::build) with a rollout of its own and
    /// the briefing's file changed by `edit` first.
    async fn build_with(
        webhook: bool,
        chat_rate: &str,
        carries: Option<&str>,
        check_questions: bool,
        rollout_text: &str,
        edit: Option<fn(String) -> String>,
    ) -> Flow {
        let fake = FakeBotApi::start().await;
        let listener = match webhook {
            true => Some(tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap()),
            false => None,
        };
        let server = listener
            .as_ref()
            .map(|l| format!("http://{}", l.local_addr().unwrap()));
        let dir = project_with(
            &fake,
            server.as_deref(),
            chat_rate,
            carries,
            check_questions,
            edit,
        )
        .await;
        let rollout = dir.path().join("rollouts").join("now.toml");
        std::fs::write(&rollout, rollout_text).unwrap();
        let engine = Engine::open(Project::open(dir.path()).unwrap(), true)
            .await
            .unwrap_or_else(|p| panic!("{}", p.0.join("\n")));
        let planned = engine
            .plan(&rollout, utc(2026, 3, 27, 8, 0))
            .await
            .unwrap_or_else(|p| panic!("{}", p.0.join("\n")));
        engine
            .start(&planned, utc(2026, 3, 27, 8, 0))
            .await
            .unwrap();
        let settings = DispatchSettings {
            backoff_base: Duration::from_secs(60),
            ..DispatchSettings::default()
        };
        let runner = engine.runner(settings).await.unwrap();
        if let Some(listener) = listener {
            let app = cascade_server::webhook_router(runner.host().clone());
            tokio::spawn(async move {
                let limits = cascade_server::ServerConfig::default();
                cascade_server::serve(listener, app, &limits, std::future::pending()).await
            });
        }
        Flow {
            fake,
            runner,
            server,
            _dir: dir,
        }
    }

    /// Waits for the next inbound event from the plugin and lets the runner
    /// handle it at `now`.
    async fn handle_next(&self, now: DateTime<Utc>) -> InboundOutcome {
        if self.server.is_some() {
            // Telegram posts what the users did to the webhook.
            let statuses = self.fake.post_to_webhook(Some(WEBHOOK_SECRET)).await;
            assert!(statuses.iter().all(|s| *s == 200), "{statuses:?}");
        }
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let mut outcomes = self.runner.handle_inbound(now).await.unwrap();
            if let Some(outcome) = outcomes.pop() {
                assert!(outcomes.is_empty(), "{outcomes:?}");
                return outcome;
            }
            assert!(Instant::now() < deadline, "no inbound event within 20 s");
            // Events arrive from the plugin's own threads; look again shortly.
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    /// The user types `text`; returns the outcome and the bot's answer (the
    /// next message in their chat).
    async fn user_says(&self, user: i64, text: &str) -> (InboundOutcome, Posted) {
        let before = self.fake.messages_in(user).len();
        self.fake.user_sends(user, text);
        let outcome = self.handle_next(utc(2026, 3, 27, 10, 0)).await;
        let answer = self.fake.wait_for_messages(user, before + 1).await[before].clone();
        (outcome, answer)
    }

    /// The user presses `label` on `message`; returns the outcome and, when
    /// the bot answers with a new message, that message.
    async fn user_presses(&self, user: i64, message: &Posted, label: &str) -> InboundOutcome {
        let query = self
            .fake
            .user_presses(user, message.chat, message.message_id, label);
        let outcome = self.handle_next(utc(2026, 3, 27, 10, 0)).await;
        self.fake
            .wait_until("the answer to the press", |f| {
                f.requests_to("answerCallbackQuery")
                    .iter()
                    .any(|r| r.body["callback_query_id"] == query)
            })
            .await;
        outcome
    }

    async fn link(&self, person: &str, user: i64) {
        let code = issue_code(
            self.runner.store().as_ref(),
            self.runner.link_codes(),
            person,
            1_774_598_400_000,
        )
        .await
        .unwrap();
        let (outcome, answer) = self.user_says(user, &format!("/start {code}")).await;
        assert_eq!(
            outcome,
            InboundOutcome::Linked {
                person_id: person.to_owned()
            }
        );
        assert!(
            answer.text.contains("this chat is now linked"),
            "{}",
            answer.text
        );
    }

    /// The last message in `chat` once it has at least `n`.
    async fn message(&self, chat: i64, n: usize) -> Posted {
        self.fake.wait_for_messages(chat, n).await[n - 1].clone()
    }
}

fn labels(message: &Posted) -> Vec<String> {
    message
        .buttons()
        .into_iter()
        .map(|(label, _)| label)
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_linked_practitioner_gets_a_three_part_briefing_acknowledges_and_sees_the_edit() {
    let flow = Flow::new().await;
    flow.link("p-tom-reilly", TOM).await;
    flow.runner.tick(utc(2026, 3, 27, 9, 0)).await.unwrap();

    // The tick returns once the plugin answered the send: every part is out.
    let messages = flow.fake.messages_in(TOM);
    let briefing = &messages[1..];
    assert_eq!(briefing.len(), 3, "{briefing:#?}");
    assert!(
        briefing[0].text.starts_with(&format!("(1/3)\n{TITLE}")),
        "{}",
        briefing[0].text
    );
    assert!(
        briefing[2].text.starts_with("(3/3)\n"),
        "{}",
        briefing[2].text
    );
    assert!(briefing[0].text.contains("Hello Tom Reilly"));
    for part in briefing {
        assert!(fake_bot_api::html::utf16_len(&part.text) <= 4096);
    }
    assert!(briefing[..2].iter().all(|m| m.reply_markup.is_none()));
    assert_eq!(labels(&briefing[2]), ["Acknowledge"]);
    let (_, data) = &briefing[2].buttons()[0];
    assert!(data.len() <= 64 && !data.contains("tom"), "{data}");

    let outcome = flow.user_presses(TOM, &briefing[2], "Acknowledge").await;
    assert_eq!(
        outcome,
        InboundOutcome::Acknowledged {
            person_id: "p-tom-reilly".to_owned(),
            first: true
        }
    );
    flow.fake
        .wait_until("the edit", |f| !f.requests_to("editMessageText").is_empty())
        .await;
    let edited = flow.fake.messages_in(TOM)[3].clone();
    assert!(
        edited.text.ends_with("Acknowledged on 27 March 2026"),
        "{}",
        edited.text
    );
    assert_eq!(edited.reply_markup, None);
    let answer = &flow.fake.requests_to("answerCallbackQuery")[0];
    assert_eq!(answer.body["text"], "Acknowledged");
    let acknowledged = flow
        .runner
        .store()
        .acknowledgements()
        .await
        .unwrap()
        .into_iter()
        .find(|a| a.person_id == "p-tom-reilly")
        .map(|a| a.method);
    assert_eq!(acknowledged, Some(AckMethod::Button));
    let thanks = flow.message(TOM, 5).await;
    assert!(thanks.text.contains("is acknowledged"), "{}", thanks.text);

    let before = flow.fake.messages_in(TOM).len();
    let (outcome, pending) = flow.user_says(TOM, "/pending").await;
    assert_eq!(
        outcome,
        InboundOutcome::Listed {
            person_id: "p-tom-reilly".to_owned(),
            count: 0
        }
    );
    assert!(
        pending.text.contains("Nothing is waiting"),
        "{}",
        pending.text
    );
    assert_eq!(flow.fake.messages_in(TOM).len(), before + 1);
    flow.runner.stop().await;
}

/// Telegram carries OFFICIAL by default: an OFFICIAL-SENSITIVE briefing
/// reaches a linked practitioner as one marked notice with its summary and
/// the signed link to read it, none of its text and no button to
/// acknowledge unread. A Telegram channel that says it carries
/// OFFICIAL-SENSITIVE gets the whole briefing, every part marked.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_official_sensitive_briefing_is_a_notice_on_telegram_unless_the_channel_carries_it() {
    let flow = Flow::carrying(false, "1000", Some("official")).await;
    flow.link("p-tom-reilly", TOM).await;
    flow.runner.tick(utc(2026, 3, 27, 9, 0)).await.unwrap();
    let messages = flow.fake.messages_in(TOM);
    let notice = &messages[1..];
    assert_eq!(notice.len(), 1, "{notice:#?}");
    let text = &notice[0].text;
    assert!(text.starts_with("OFFICIAL-SENSITIVE\n\n"), "{text}");
    assert!(text.contains(TITLE), "{text}");
    assert!(
        text.contains("What a local review taught us about seeing the child."),
        "{text}"
    );
    assert!(!text.contains("Practice note"), "{text}");
    assert!(
        !text.contains("Each agency saw part of the picture"),
        "{text}"
    );
    let raw = flow
        .fake
        .requests_to("sendMessage")
        .last()
        .unwrap()
        .body
        .clone();
    assert!(
        raw.to_string().contains("http://localhost:8080/ack/"),
        "{raw}"
    );
    assert!(notice[0].reply_markup.is_none(), "{notice:#?}");
    flow.runner.stop().await;

    let flow = Flow::carrying(false, "1000", Some("official-sensitive")).await;
    flow.link("p-tom-reilly", TOM).await;
    flow.runner.tick(utc(2026, 3, 27, 9, 0)).await.unwrap();
    let messages = flow.fake.messages_in(TOM);
    let briefing = &messages[1..];
    // The marking on every part leaves less room: four parts, not three.
    let parts = briefing.len();
    assert_eq!(parts, 4, "{briefing:#?}");
    for (n, part) in briefing.iter().enumerate() {
        assert!(
            part.text
                .starts_with(&format!("OFFICIAL-SENSITIVE\n\n({}/{parts})\n", n + 1)),
            "{}",
            part.text
        );
        assert!(fake_bot_api::html::utf16_len(&part.text) <= 4096);
    }
    assert!(briefing.iter().any(|m| m.text.contains("Practice note")));
    assert_eq!(labels(&briefing[parts - 1]), ["Acknowledge"]);
    flow.runner.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pending_lists_the_item_with_a_button_that_acknowledges_it() {
    let flow = Flow::new().await;
    flow.link("p-tom-reilly", TOM).await;
    flow.runner.tick(utc(2026, 3, 27, 9, 0)).await.unwrap();
    flow.fake.wait_for_messages(TOM, 4).await;

    let (outcome, listed) = flow.user_says(TOM, "/pending").await;
    assert_eq!(
        outcome,
        InboundOutcome::Listed {
            person_id: "p-tom-reilly".to_owned(),
            count: 1
        }
    );
    assert!(listed.text.contains(TITLE), "{}", listed.text);
    assert_eq!(labels(&listed), [format!("Acknowledge: {TITLE}")]);
    let outcome = flow
        .user_presses(TOM, &listed, &format!("Acknowledge: {TITLE}"))
        .await;
    assert_eq!(
        outcome,
        InboundOutcome::Acknowledged {
            person_id: "p-tom-reilly".to_owned(),
            first: true
        }
    );
    flow.runner.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn presses_from_an_unlinked_or_a_different_account_are_refused_politely_revealing_nothing() {
    let flow = Flow::new().await;
    flow.link("p-tom-reilly", TOM).await;
    flow.link("p-amara-okafor", AMARA).await;
    flow.runner.tick(utc(2026, 3, 27, 9, 0)).await.unwrap();
    let amaras = flow.message(AMARA, 4).await;

    // The same button data, sent from other chats' clients.
    let mut in_strangers_chat = amaras.clone();
    in_strangers_chat.chat = STRANGER;
    let query = flow
        .fake
        .press_with_data(STRANGER, &in_strangers_chat, &amaras.buttons()[0].1);
    assert_eq!(
        flow.handle_next(utc(2026, 3, 27, 10, 0)).await,
        InboundOutcome::Refused {
            reason: Refusal::UnlinkedAccount
        }
    );
    flow.fake
        .wait_until("the stranger's answer", |f| {
            f.requests_to("answerCallbackQuery")
                .iter()
                .any(|r| r.body["callback_query_id"] == query)
        })
        .await;
    let to_stranger = flow.message(STRANGER, 1).await;
    assert!(to_stranger.text.contains("/link"), "{}", to_stranger.text);
    assert!(!to_stranger.text.contains(TITLE));
    assert!(to_stranger.buttons().is_empty());

    let toms_before = flow.fake.messages_in(TOM).len();
    let mut in_toms_chat = amaras.clone();
    in_toms_chat.chat = TOM;
    flow.fake
        .press_with_data(TOM, &in_toms_chat, &amaras.buttons()[0].1);
    assert_eq!(
        flow.handle_next(utc(2026, 3, 27, 10, 0)).await,
        InboundOutcome::Refused {
            reason: Refusal::DifferentPerson
        }
    );
    let to_tom = flow.message(TOM, toms_before + 1).await;
    assert!(!to_tom.text.contains(TITLE), "{}", to_tom.text);

    assert_eq!(acknowledgements(flow.runner.store().as_ref()).await, 0);
    // Amara's own message was never edited by the refused presses.
    assert_eq!(flow.fake.messages_in(AMARA)[3], amaras);
    flow.runner.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_champion_confirms_a_cascade_through_the_guided_exchange() {
    let flow = Flow::new().await;
    flow.link("p-amara-okafor", AMARA).await;
    flow.runner.tick(utc(2026, 3, 27, 9, 0)).await.unwrap();
    let briefing = flow.message(AMARA, 4).await;
    assert_eq!(
        labels(&briefing),
        ["Acknowledge", "I've cascaded this to my team"]
    );

    flow.user_presses(AMARA, &briefing, "Acknowledge").await;
    flow.fake
        .wait_until("the edit", |f| !f.requests_to("editMessageText").is_empty())
        .await;
    let edited = flow.fake.messages_in(AMARA)[3].clone();
    assert!(
        edited.text.ends_with("Acknowledged on 27 March 2026"),
        "{}",
        edited.text
    );
    assert_eq!(labels(&edited), ["I've cascaded this to my team"]);

    let mut seen = flow.fake.messages_in(AMARA).len();
    let mut next = async |flow: &Flow| {
        seen += 1;
        flow.message(AMARA, seen).await
    };
    // The acknowledgement's thank-you.
    next(&flow).await;
    flow.user_presses(AMARA, &edited, "I've cascaded this to my team")
        .await;
    let question = next(&flow).await;
    assert!(question.text.contains("Which team"), "{}", question.text);
    flow.user_presses(AMARA, &question, "Multi-Agency Safeguarding Hub (MASH)")
        .await;
    let question = next(&flow).await;
    assert!(question.text.starts_with("When was"), "{}", question.text);
    flow.user_presses(AMARA, &question, "Yesterday").await;
    let question = next(&flow).await;
    assert!(question.text.starts_with("How many"), "{}", question.text);
    flow.fake.user_sends(AMARA, "14");
    flow.handle_next(utc(2026, 3, 27, 10, 0)).await;
    let question = next(&flow).await;
    flow.user_presses(AMARA, &question, "Briefing session")
        .await;
    let summary = next(&flow).await;
    for line in [
        "Team: Multi-Agency Safeguarding Hub (MASH)",
        "Date: 2026-03-26",
        "Present: 14",
        "Method: Briefing session",
    ] {
        assert!(
            summary.text.contains(line),
            "{line} not in {}",
            summary.text
        );
    }
    let outcome = flow.user_presses(AMARA, &summary, "Confirm").await;
    assert_eq!(
        outcome,
        InboundOutcome::Confirmed {
            person_id: "p-amara-okafor".to_owned(),
            team_id: "mash".to_owned(),
            first: true
        }
    );
    let done = next(&flow).await;
    assert!(done.text.contains("(14 present)"), "{}", done.text);
    let row = flow.runner.store().confirmations().await.unwrap().remove(0);
    let recorded = (row.team_id, row.present, row.channel);
    assert_eq!(recorded, ("mash".into(), 14, "telegram".into()));
    // Every press was answered exactly once.
    let answers = flow.fake.requests_to("answerCallbackQuery");
    assert!(answers.iter().all(|a| a.status == 200), "{answers:#?}");
    flow.runner.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_person_who_blocked_the_bot_is_marked_unreachable_and_gets_email() {
    let flow = Flow::new().await;
    flow.link("p-tom-reilly", TOM).await;
    flow.fake.block(TOM);
    flow.runner.tick(utc(2026, 3, 27, 9, 0)).await.unwrap();

    let toms: Vec<(DeliveryState, String)> = rows(flow.runner.store().as_ref())
        .await
        .into_iter()
        .filter(|r| r.recipient_id == "p-tom-reilly")
        .map(|r| (r.state, r.channel))
        .collect();
    assert_eq!(
        toms,
        [
            (DeliveryState::Dead, "telegram".to_owned()),
            (DeliveryState::Sent, "outbox".to_owned())
        ]
    );
    let identity = flow
        .runner
        .store()
        .identity("telegram", &TOM.to_string())
        .await
        .unwrap()
        .unwrap();
    assert!(identity.unreachable_at.is_some());
    let refused = flow.fake.requests_to("sendMessage");
    assert_eq!(refused.last().unwrap().status, 403);
    flow.runner.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn in_webhook_mode_updates_come_through_cascade_s_server_only_with_the_secret() {
    let flow = Flow::start(true).await;
    let server = flow.server.clone().unwrap();
    assert_eq!(
        flow.fake.webhook(),
        Some((
            format!("{server}/webhooks/telegram"),
            Some(WEBHOOK_SECRET.to_owned())
        )),
        "the plugin set the webhook, with the secret, at start"
    );

    // Posts without the secret, or with another, are refused and become
    // nothing: the link below is the only event the runner sees.
    flow.fake.user_sends(TOM, "/help");
    assert_eq!(flow.fake.post_to_webhook(None).await, [401]);
    flow.fake.user_sends(TOM, "/pending");
    assert_eq!(
        flow.fake
            .post_to_webhook(Some("a-webhook-secret_for-testz"))
            .await,
        [401]
    );
    flow.fake.user_sends(TOM, "/pending");
    assert_eq!(flow.fake.post_to_webhook(Some("short")).await, [401]);
    let url = |path: &str| url::Url::parse(&format!("{server}{path}")).unwrap();
    let status = |method, path: &'static str| {
        let url = url(path);
        async move { fake_bot_api::request(&url, method, Some(WEBHOOK_SECRET), "{}").await }
    };
    assert_eq!(status("GET", "/webhooks/telegram").await, 405);
    // The file channel takes no webhooks; nor does a channel that is not there.
    assert_eq!(status("POST", "/webhooks/outbox").await, 404);
    assert_eq!(status("POST", "/webhooks/nowhere").await, 404);
    // A post with the secret that is not an update.
    assert_eq!(
        fake_bot_api::request(
            &url("/webhooks/telegram"),
            "POST",
            Some(WEBHOOK_SECRET),
            "[1,2"
        )
        .await,
        400
    );

    flow.link("p-tom-reilly", TOM).await;
    flow.runner.tick(utc(2026, 3, 27, 9, 0)).await.unwrap();
    let briefing = flow.message(TOM, 4).await;
    assert_eq!(labels(&briefing), ["Acknowledge"]);
    let outcome = flow.user_presses(TOM, &briefing, "Acknowledge").await;
    assert_eq!(
        outcome,
        InboundOutcome::Acknowledged {
            person_id: "p-tom-reilly".to_owned(),
            first: true
        }
    );
    flow.fake
        .wait_until("the edit", |f| !f.requests_to("editMessageText").is_empty())
        .await;
    assert!(flow.fake.requests_to("getUpdates").is_empty());
    flow.runner.stop().await;
    assert_eq!(flow.fake.webhook(), None, "stopping deletes the webhook");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_webhook_with_a_wrong_secret_is_refused_before_its_body_is_read() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let flow = Flow::start(true).await;
    let server = flow.server.clone().unwrap();
    let address = server.trim_start_matches("http://").to_owned();
    for secret in [Some("a-webhook-secret_for-testz"), None] {
        let secret = secret
            .map(|s| format!("X-Telegram-Bot-Api-Secret-Token: {s}\r\n"))
            .unwrap_or_default();
        // A large body announced, and never sent.
        let head = format!(
            "POST /webhooks/telegram HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\n{secret}Content-Length: 900000\r\n\r\n"
        );
        let mut stream = tokio::net::TcpStream::connect(&address).await.unwrap();
        stream.write_all(head.as_bytes()).await.unwrap();
        let started = Instant::now();
        let mut response = Vec::new();
        let mut buffer = [0u8; 1024];
        while !response.windows(4).any(|w| w == b"\r\n\r\n") {
            let read = tokio::time::timeout(Duration::from_secs(3), stream.read(&mut buffer))
                .await
                .expect("an answer without the body, within 3 s")
                .unwrap();
            assert!(read > 0, "closed without an answer");
            response.extend_from_slice(&buffer[..read]);
        }
        let response = String::from_utf8_lossy(&response);
        assert!(
            response.starts_with("HTTP/1.1 401"),
            "{response} after {:?}",
            started.elapsed()
        );
    }
    // With the secret, the body is read and the update handled as before.
    let url = url::Url::parse(&format!("{server}/webhooks/telegram")).unwrap();
    assert_eq!(
        fake_bot_api::request(&url, "POST", Some(WEBHOOK_SECRET), "[1,2").await,
        400,
        "the body was read and judged"
    );
    flow.runner.stop().await;
}

/// Found against an independent Bot API: a 429 with retry_after 2 was
/// retried about a second later, because the wait was counted from the
/// claim and the plugin's pacing of the message's parts was taken off it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_retry_after_is_counted_from_the_providers_answer_not_from_the_claim() {
    // One message a second to a chat: the third part goes two seconds or
    // more after the first.
    let flow = Flow::paced(false, "1").await;
    flow.link("p-tom-reilly", TOM).await;
    flow.fake.accept_next_send();
    flow.fake.accept_next_send();
    flow.fake
        .fail_next_send(fake_bot_api::Fault::TooManyRequests { retry_after: 2 });
    flow.runner.schedule(utc(2026, 3, 27, 9, 0)).await.unwrap();

    let claimed_from = Utc::now().timestamp_millis();
    let (_running, stop) = tokio::sync::watch::channel(false);
    flow.runner
        .dispatch_for(Duration::from_secs(60), &stop)
        .await
        .unwrap();

    assert_eq!(flow.fake.too_many_requests(), 1);
    let row = rows(flow.runner.store().as_ref())
        .await
        .into_iter()
        .find(|r| r.recipient_id == "p-tom-reilly" && r.channel == "telegram")
        .unwrap();
    assert_eq!(row.state, DeliveryState::Due, "{row:?}");
    // Answered at least 2 s of pacing after the claim, then 2 s to wait.
    let waited = row.due_at - claimed_from;
    assert!(
        waited >= 4_000,
        "the retry is due {waited} ms after the claim; the 429 came at least 2,000 ms after it and asked for 2,000 ms more"
    );
    flow.runner.stop().await;
}

impl Flow {
    /// Stops the runner and its channels as a restart of `cascade serve`
    /// would, and opens the same project again: a new engine, new plugin
    /// instances, the same store and the same fake Bot API.
    async fn restart(self) -> Flow {
        let Flow {
            fake,
            runner,
            server,
            _dir,
        } = self;
        assert!(server.is_none(), "restarts are tested with long polling");
        runner.stop().await;
        drop(runner);
        let engine = Engine::open(Project::open(_dir.path()).unwrap(), true)
            .await
            .unwrap_or_else(|p| panic!("{}", p.0.join("\n")));
        let settings = DispatchSettings {
            backoff_base: Duration::from_secs(60),
            ..DispatchSettings::default()
        };
        let runner = engine.runner(settings).await.unwrap();
        Flow {
            fake,
            runner,
            server,
            _dir,
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_a_restart_a_briefing_whose_second_part_failed_posts_only_the_missing_parts() {
    let flow = Flow::new().await;
    flow.link("p-tom-reilly", TOM).await;
    flow.fake.accept_next_send();
    flow.fake.fail_next_send(fake_bot_api::Fault::ServerError {
        code: 502,
        description: "Bad Gateway",
    });
    flow.runner.tick(utc(2026, 3, 27, 9, 0)).await.unwrap();
    let parts = |flow: &Flow| {
        flow.fake.messages_in(TOM)[1..]
            .iter()
            .map(|m| m.text.lines().next().unwrap_or_default().to_owned())
            .collect::<Vec<_>>()
    };
    assert_eq!(parts(&flow), ["(1/3)"]);

    let flow = flow.restart().await;
    // After the retry's backoff.
    flow.runner.tick(utc(2026, 3, 27, 9, 10)).await.unwrap();
    assert_eq!(parts(&flow), ["(1/3)", "(2/3)", "(3/3)"]);
    let briefing_sends = flow
        .fake
        .requests_to("sendMessage")
        .iter()
        .filter(|r| {
            r.body["chat_id"] == TOM && r.body["text"].as_str().is_some_and(|t| t.starts_with('('))
        })
        .count();
    // Part 1 once, part 2 failed then sent, part 3 once.
    assert_eq!(briefing_sends, 4);
    let delivered = rows(flow.runner.store().as_ref())
        .await
        .into_iter()
        .filter(|r| r.channel == "telegram" && r.recipient_id == "p-tom-reilly")
        .map(|r| r.state)
        .collect::<Vec<_>>();
    assert_eq!(delivered, [DeliveryState::Sent]);
    flow.runner.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_champion_s_guided_confirmation_carries_on_after_a_restart() {
    let flow = Flow::new().await;
    flow.link("p-amara-okafor", AMARA).await;
    flow.runner.tick(utc(2026, 3, 27, 9, 0)).await.unwrap();
    let briefing = flow.message(AMARA, 4).await;
    flow.user_presses(AMARA, &briefing, "I've cascaded this to my team")
        .await;
    let question = flow.message(AMARA, 5).await;
    assert!(question.text.contains("Which team"), "{}", question.text);
    flow.user_presses(AMARA, &question, "Multi-Agency Safeguarding Hub (MASH)")
        .await;
    let question = flow.message(AMARA, 6).await;
    assert!(question.text.starts_with("When was"), "{}", question.text);

    // cascade restarts between two answers.
    let flow = flow.restart().await;
    flow.user_presses(AMARA, &question, "Yesterday").await;
    let question = flow.message(AMARA, 7).await;
    assert!(question.text.starts_with("How many"), "{}", question.text);
    flow.fake.user_sends(AMARA, "9");
    flow.handle_next(utc(2026, 3, 27, 10, 0)).await;
    let question = flow.message(AMARA, 8).await;
    flow.user_presses(AMARA, &question, "Team meeting").await;
    let summary = flow.message(AMARA, 9).await;
    assert!(
        summary
            .text
            .contains("Team: Multi-Agency Safeguarding Hub (MASH)"),
        "{}",
        summary.text
    );
    let outcome = flow.user_presses(AMARA, &summary, "Confirm").await;
    assert_eq!(
        outcome,
        InboundOutcome::Confirmed {
            person_id: "p-amara-okafor".to_owned(),
            team_id: "mash".to_owned(),
            first: true
        }
    );
    flow.runner.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_press_stored_but_not_handled_before_a_crash_is_handled_once_after_the_restart() {
    let flow = Flow::new().await;
    flow.link("p-tom-reilly", TOM).await;
    flow.runner.tick(utc(2026, 3, 27, 9, 0)).await.unwrap();
    let briefing = flow.message(TOM, 4).await;
    let query = flow
        .fake
        .user_presses(TOM, briefing.chat, briefing.message_id, "Acknowledge");
    // The plugin stores the press; serve dies before handling it.
    let store = flow.runner.store().clone();
    let deadline = Instant::now() + Duration::from_secs(20);
    use cascade_store::Inbox;
    while store.inbox_pending().await.unwrap().is_empty() {
        assert!(Instant::now() < deadline, "the press was never stored");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let flow = flow.restart().await;
    let outcome = flow.handle_next(utc(2026, 3, 27, 10, 0)).await;
    assert_eq!(
        outcome,
        InboundOutcome::Acknowledged {
            person_id: "p-tom-reilly".to_owned(),
            first: true
        }
    );
    // The press kept in the store is answered in place: the spinner
    // stops and the message shows the acknowledgement.
    flow.fake
        .wait_until("the answer to the press from before the restart", |f| {
            f.requests_to("answerCallbackQuery")
                .iter()
                .any(|r| r.body["callback_query_id"] == query)
        })
        .await;
    flow.fake
        .wait_until("the edit", |f| !f.requests_to("editMessageText").is_empty())
        .await;
    // Telegram sends the unconfirmed update again to the new poller: it is
    // stored once, so nothing more is handled.
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(
        flow.runner
            .handle_inbound(utc(2026, 3, 27, 10, 1))
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(acknowledgements(flow.runner.store().as_ref()).await, 1);
    assert!(store.inbox_pending().await.unwrap().is_empty());
    flow.runner.stop().await;
}

/// The briefing's check questions as the store keeps a person's answers:
/// (first answer, right first time, attempts, recorded with an
/// acknowledgement).
async fn check_answers(flow: &Flow, person: &str) -> Vec<(u32, bool, u32, bool)> {
    use cascade_store::{Evidence, Store};
    let store = flow.runner.store();
    let item = "7mb-neglect-seeing-the-child";
    let version = store.item_versions(item).await.unwrap()[0]
        .version
        .0
        .clone();
    store
        .check_progress(person, item, &version)
        .await
        .unwrap()
        .answers
        .into_iter()
        .map(|a| {
            (
                a.first_answer,
                a.right_first_time,
                a.attempts,
                a.acknowledgement_id.is_some(),
            )
        })
        .collect()
}

/// Issue 19 on Telegram: "Acknowledge" on a briefing with a check question
/// asks it first, the options' words in the message and one short button
/// each; a wrong press answers with the explanation and the section, and
/// asks again; the same press twice counts one try; the right one records
/// the acknowledgement, after a retry. Another person, right first time,
/// by `/ack` and a typed number.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_check_question_is_asked_on_acknowledge_wrong_then_right_and_right_first_time() {
    let flow = Flow::with_check_questions().await;
    flow.link("p-tom-reilly", TOM).await;
    flow.link("p-amara-okafor", AMARA).await;
    flow.runner.tick(utc(2026, 3, 27, 9, 0)).await.unwrap();
    let messages = flow.fake.wait_for_messages(TOM, 2).await;
    let briefing = messages.last().unwrap().clone();
    assert!(labels(&briefing).contains(&"Acknowledge".to_owned()));

    let n = flow.fake.messages_in(TOM).len();
    let outcome = flow.user_presses(TOM, &briefing, "Acknowledge").await;
    assert_eq!(outcome, InboundOutcome::Asked);
    let asked = flow.message(TOM, n + 1).await;
    assert!(
        asked.text.contains("Question 1 of 1: On a home visit where you are worried about neglect, what should you ask to see?"),
        "{}",
        asked.text
    );
    assert!(
        asked
            .text
            .contains("2. Where the child sleeps, the fridge and the bed")
    );
    assert_eq!(
        labels(&asked),
        [
            "1. Only the living room",
            "2. Where the child sleeps, the fridge and the bed",
            "3. Nothing: ask the parent how things are"
        ]
    );
    for (_, data) in asked.buttons() {
        assert!(data.len() <= 64 && data.is_ascii(), "{data}");
        assert!(
            !data.contains("living"),
            "option words in the callback data: {data}"
        );
    }
    assert_eq!(acknowledgements(&**flow.runner.store()).await, 0);

    // Wrong: the explanation and the section, and the question again.
    let outcome = flow.user_presses(TOM, &asked, "1.").await;
    assert_eq!(outcome, InboundOutcome::Asked);
    let retry = flow.message(TOM, n + 2).await;
    assert!(
        retry
            .text
            .starts_with("Not quite. Seeing the child's own space"),
        "{}",
        retry.text
    );
    assert!(
        retry
            .text
            .contains("From \"5. What practitioners should do\""),
        "{}",
        retry.text
    );
    assert!(
        retry
            .text
            .contains("Look at the bedroom, the fridge, the bed.")
    );
    assert!(retry.text.contains("Question 1 of 1"));
    // The same wrong button pressed again (a double tap): one try.
    let (_, stale) = asked.buttons()[0].clone();
    flow.fake.press_with_data(TOM, &asked, &stale);
    assert_eq!(
        flow.handle_next(utc(2026, 3, 27, 10, 0)).await,
        InboundOutcome::Asked
    );
    assert_eq!(
        check_answers(&flow, "p-tom-reilly").await,
        [(1, false, 1, false)]
    );

    let outcome = flow.user_presses(TOM, &retry, "2.").await;
    assert_eq!(
        outcome,
        InboundOutcome::Acknowledged {
            person_id: "p-tom-reilly".to_owned(),
            first: true
        }
    );
    assert_eq!(
        check_answers(&flow, "p-tom-reilly").await,
        [(1, false, 2, true)]
    );
    assert_eq!(acknowledgements(&**flow.runner.store()).await, 1);

    // Amara: /ack by text, then the number typed, right first time.
    let (outcome, asked) = flow
        .user_says(AMARA, "/ack 7mb-neglect-seeing-the-child")
        .await;
    assert_eq!(outcome, InboundOutcome::Asked);
    assert!(asked.text.contains("Question 1 of 1"), "{}", asked.text);
    let (outcome, thanks) = flow.user_says(AMARA, "2").await;
    assert_eq!(
        outcome,
        InboundOutcome::Acknowledged {
            person_id: "p-amara-okafor".to_owned(),
            first: true
        }
    );
    assert!(
        thanks.text.starts_with("Right. Thank you"),
        "{}",
        thanks.text
    );
    assert_eq!(
        check_answers(&flow, "p-amara-okafor").await,
        [(2, true, 1, true)]
    );
    flow.runner.stop().await;
}

/// A rollout with spaced refreshers 28 days and 7 weeks after each
/// person's acknowledgement, and an escalation ladder for whoever has not
/// acknowledged.
const REFRESHER_ROLLOUT: &str = r#"
id = "now"
item = "7mb-neglect-seeing-the-child"
start = 2026-03-27T09:00:00
channels = ["telegram", "outbox"]
ack_deadline_days = 10
reminder_days = [5]
escalation_days = [1, 3]
refreshers = ["28d", "7w"]
[audience]
[[waves]]
name = "Everyone"
after_days = 0
"#;

/// The demo briefing with a second check question, on its key findings.
fn with_a_second_question(item: String) -> String {
    item.replacen(
        "section = \"What practitioners should do\"\n",
        "section = \"What practitioners should do\"\n\n[[check_questions]]\n\
         question = \"What did the Child B review find about home visits?\"\n\
         options = [\"The child was not seen on their own\", \"The visits were too long\"]\n\
         answer = \"The child was not seen on their own\"\n\
         explanation = \"Visits focused on the parent; Child B was usually asleep or out.\"\n\
         section = \"Key findings\"\n",
        1,
    )
}

/// A person's answers to refreshers as kept: (refresher, question, first
/// answer, right first time, attempts, answered).
async fn refresher_answers(flow: &Flow) -> Vec<(String, u32, u32, u32, bool, u32, bool)> {
    flow.runner
        .store()
        .refresher_answers()
        .await
        .unwrap()
        .into_iter()
        .map(|a| {
            (
                a.person_id,
                a.refresher,
                a.question,
                a.first_answer,
                a.right_first_time,
                a.attempts,
                a.answered_at.is_some(),
            )
        })
        .collect()
}

/// The refresher rows queued about `person`, as (number, due).
async fn refreshers_of(flow: &Flow, person: &str) -> Vec<(u32, DateTime<Utc>)> {
    rows(&**flow.runner.store())
        .await
        .into_iter()
        .filter(|r| {
            r.person_id == person && r.step_kind == cascade_model::rollout::StepKind::Refresher
        })
        .map(|r| (r.step_number, cascade_model::time::from_millis(r.due_at)))
        .collect()
}

/// Issue 19, spaced refreshers on Telegram through the engine: Tom
/// acknowledges on Friday 27 March 2026 at 10:00 GMT; the clocks go
/// forward on the 29th, and his first refresher comes 28 calendar days on
/// at the same local time (10:00 BST, 09:00 UTC on Friday 24 April), not a
/// minute before: the item's first point and its first check question,
/// with buttons. A wrong press explains and asks again; the right one is
/// recorded as the refresher's answer, after a retry, and acknowledges
/// nothing. The second, 7 weeks on, asks the second question, and
/// unanswered it is never chased: no reminder or escalation about Tom, or
/// to anyone, ever follows. Amara never acknowledges, so she is chased as
/// before and gets no refresher.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refreshers_come_days_after_the_acknowledgement_in_local_time_and_are_never_chased() {
    use cascade_model::rollout::StepKind;
    let flow = Flow::build_with(
        false,
        "1000",
        None,
        true,
        REFRESHER_ROLLOUT,
        Some(with_a_second_question),
    )
    .await;
    flow.link("p-tom-reilly", TOM).await;
    flow.link("p-amara-okafor", AMARA).await;
    flow.runner.tick(utc(2026, 3, 27, 9, 0)).await.unwrap();
    let briefing = flow
        .fake
        .wait_for_messages(TOM, 2)
        .await
        .last()
        .unwrap()
        .clone();
    let n = flow.fake.messages_in(TOM).len();
    assert_eq!(
        flow.user_presses(TOM, &briefing, "Acknowledge").await,
        InboundOutcome::Asked
    );
    let first = flow.message(TOM, n + 1).await;
    flow.user_presses(TOM, &first, "2.").await;
    let second = flow.message(TOM, n + 2).await;
    assert_eq!(
        flow.user_presses(TOM, &second, "1.").await,
        InboundOutcome::Acknowledged {
            person_id: "p-tom-reilly".to_owned(),
            first: true
        }
    );
    assert!(refreshers_of(&flow, "p-tom-reilly").await.is_empty());

    // A minute before 28 days at the same local time: nothing yet.
    flow.runner.tick(utc(2026, 4, 24, 8, 59)).await.unwrap();
    assert!(refreshers_of(&flow, "p-tom-reilly").await.is_empty());
    let before = flow.fake.messages_in(TOM).len();
    flow.runner.tick(utc(2026, 4, 24, 9, 0)).await.unwrap();
    assert_eq!(
        refreshers_of(&flow, "p-tom-reilly").await,
        [(1, utc(2026, 4, 24, 9, 0))]
    );
    let refresher = flow.message(TOM, before + 1).await;
    assert!(
        refresher.text.contains(&format!(
            "A refresher on \"{TITLE}\", which you acknowledged a while ago."
        )),
        "{}",
        refresher.text
    );
    assert!(
        refresher.text.contains(
            "Key message: Neglect is the persistent failure to meet a child's basic physical or psychological needs, likely to result in serious impairment of the child's health or development."
        ),
        "{}",
        refresher.text
    );
    assert!(refresher.text.contains(
        "A quick question: On a home visit where you are worried about neglect, what should you ask to see?"
    ));
    assert_eq!(
        labels(&refresher),
        [
            "1. Only the living room",
            "2. Where the child sleeps, the fridge and the bed",
            "3. Nothing: ask the parent how things are"
        ]
    );
    for (_, data) in refresher.buttons() {
        assert!(data.len() <= 64 && data.is_ascii(), "{data}");
    }

    // Wrong, then right: one answer, after a retry, tied to the refresher.
    let acks = acknowledgements(&**flow.runner.store()).await;
    assert_eq!(
        flow.user_presses(TOM, &refresher, "1.").await,
        InboundOutcome::Asked
    );
    let retry = flow.message(TOM, before + 2).await;
    assert!(
        retry
            .text
            .starts_with("Not quite. Seeing the child's own space"),
        "{}",
        retry.text
    );
    assert!(
        retry
            .text
            .contains("From \"5. What practitioners should do\"")
    );
    assert_eq!(
        flow.user_presses(TOM, &retry, "2.").await,
        InboundOutcome::Answered {
            person_id: "p-tom-reilly".to_owned(),
            answer: "Where the child sleeps, the fridge and the bed".to_owned(),
            first: true
        }
    );
    let thanks = flow.message(TOM, before + 3).await;
    assert!(thanks.text.starts_with("Right. "), "{}", thanks.text);
    // The stale wrong button again: counted nowhere, the answer stands.
    let (_, stale) = refresher.buttons()[0].clone();
    flow.fake.press_with_data(TOM, &refresher, &stale);
    flow.handle_next(utc(2026, 4, 24, 10, 0)).await;
    let again = flow.message(TOM, before + 4).await;
    assert!(
        again.text.contains("answered this refresher already"),
        "{}",
        again.text
    );
    assert_eq!(
        refresher_answers(&flow).await,
        [("p-tom-reilly".to_owned(), 1, 1, 1, false, 2, true)]
    );
    assert_eq!(acknowledgements(&**flow.runner.store()).await, acks);

    // Seven weeks on (Friday 15 May, 10:00 BST): the second question.
    flow.runner.tick(utc(2026, 5, 15, 8, 59)).await.unwrap();
    assert_eq!(refreshers_of(&flow, "p-tom-reilly").await.len(), 1);
    let before = flow.fake.messages_in(TOM).len();
    flow.runner.tick(utc(2026, 5, 15, 9, 0)).await.unwrap();
    let second = flow.message(TOM, before + 1).await;
    assert!(
        second
            .text
            .contains("A quick question: What did the Child B review find about home visits?"),
        "{}",
        second.text
    );
    assert_eq!(
        refreshers_of(&flow, "p-tom-reilly").await,
        [(1, utc(2026, 4, 24, 9, 0)), (2, utc(2026, 5, 15, 9, 0))]
    );

    // Left unanswered, for months: nothing more about Tom, to anyone.
    for day in [16, 20, 30] {
        flow.runner.tick(utc(2026, 5, day, 9, 0)).await.unwrap();
    }
    flow.runner.tick(utc(2026, 9, 1, 9, 0)).await.unwrap();
    let about_tom: Vec<(StepKind, u32)> = rows(&**flow.runner.store())
        .await
        .into_iter()
        .filter(|r| r.person_id == "p-tom-reilly")
        .map(|r| (r.step_kind, r.step_number))
        .collect();
    assert_eq!(
        about_tom,
        [
            (StepKind::Initial, 1),
            (StepKind::Refresher, 1),
            (StepKind::Refresher, 2)
        ]
    );
    // Amara, who never acknowledged, was chased and got no refresher.
    let about_amara: Vec<StepKind> = rows(&**flow.runner.store())
        .await
        .into_iter()
        .filter(|r| r.person_id == "p-amara-okafor")
        .map(|r| r.step_kind)
        .collect();
    assert!(about_amara.contains(&StepKind::Reminder), "{about_amara:?}");
    assert!(
        !about_amara.contains(&StepKind::Refresher),
        "{about_amara:?}"
    );
    flow.runner.stop().await;
}

/// Issue 19, the feedback loop on Telegram: a follow-up answered "Not
/// yet" asks for the main reason with a button each; the reason is kept
/// on the answer (a second press changes nothing), and the example typed
/// after it too. "Used it in practice" asks no reason.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_not_used_follow_up_answer_asks_for_a_reason_and_keeps_it() {
    let rollout = format!(
        "{ROLLOUT}[[follow_ups]]\nafter_days = 3\nquestion = \"Have you used this in practice?\"\n\
         answers = [\"Used it in practice\", \"Not yet\"]\n\
         reasons = [\"Not relevant to my role\", \"No opportunity yet\", \"Need more training\"]\n"
    );
    let flow = Flow::build_with(false, "1000", None, false, &rollout, None).await;
    flow.link("p-tom-reilly", TOM).await;
    flow.link("p-amara-okafor", AMARA).await;
    flow.runner.tick(utc(2026, 3, 27, 9, 0)).await.unwrap();
    flow.runner.tick(utc(2026, 3, 30, 9, 0)).await.unwrap();
    let question = |user| {
        flow.fake
            .messages_in(user)
            .into_iter()
            .find(|m| m.text.contains("Have you used this in practice?"))
            .expect("the follow-up")
    };
    let follow_up = question(TOM);
    assert_eq!(labels(&follow_up), ["Used it in practice", "Not yet"]);
    let n = flow.fake.messages_in(TOM).len();
    assert_eq!(
        flow.user_presses(TOM, &follow_up, "Not yet").await,
        InboundOutcome::Answered {
            person_id: "p-tom-reilly".to_owned(),
            answer: "Not yet".to_owned(),
            first: true
        }
    );
    let why = flow.message(TOM, n + 1).await;
    assert!(
        why.text.contains("What is the main reason?"),
        "{}",
        why.text
    );
    assert_eq!(
        labels(&why),
        [
            "Not relevant to my role",
            "No opportunity yet",
            "Need more training"
        ]
    );
    assert_eq!(
        flow.user_presses(TOM, &why, "Need more training").await,
        InboundOutcome::Answered {
            person_id: "p-tom-reilly".to_owned(),
            answer: "Need more training".to_owned(),
            first: true
        }
    );
    let (_, stale) = why.buttons()[1].clone();
    flow.fake.press_with_data(TOM, &why, &stale);
    assert!(matches!(
        flow.handle_next(utc(2026, 3, 30, 10, 0)).await,
        InboundOutcome::Answered { first: false, .. }
    ));
    let (outcome, _) = flow
        .user_says(TOM, "A session on the assessment tool would help.")
        .await;
    assert_eq!(
        outcome,
        InboundOutcome::ExampleKept {
            person_id: "p-tom-reilly".to_owned()
        }
    );

    // Used it: no reason asked.
    let follow_up = question(AMARA);
    let n = flow.fake.messages_in(AMARA).len();
    flow.user_presses(AMARA, &follow_up, "Used it in practice")
        .await;
    let thanks = flow.message(AMARA, n + 1).await;
    assert!(!thanks.text.contains("reason"), "{}", thanks.text);
    assert!(thanks.buttons().is_empty());

    let answers: Vec<(String, String, Option<String>, Option<String>)> = flow
        .runner
        .store()
        .answers()
        .await
        .unwrap()
        .into_iter()
        .map(|a| (a.person_id, a.answer, a.reason, a.example))
        .collect();
    assert_eq!(
        answers,
        [
            (
                "p-tom-reilly".to_owned(),
                "Not yet".to_owned(),
                Some("Need more training".to_owned()),
                Some("A session on the assessment tool would help.".to_owned())
            ),
            (
                "p-amara-okafor".to_owned(),
                "Used it in practice".to_owned(),
                None,
                None
            ),
        ]
    );
    flow.runner.stop().await;
}
