//! What people do in the bot's chats, through the real plugin loaded by the
//! host: presses, commands and text come out as inbound events; the host's
//! replies answer the press once, edit the pressed message and post text.
//! Webhook mode is tested through cascade's server in `full_flow.rs`.

mod fake_bot_api;
mod harness;

use cascade_plugin_api::{InboundEvent, InboundKind, Reply, SendResult};
use harness::{Harness, action, briefing, reply};
use serde_json::json;

const CHAT: i64 = 1001;

fn command(name: &str, args: &[&str]) -> InboundKind {
    InboundKind::Command {
        name: name.to_owned(),
        args: args.iter().map(|a| (*a).to_owned()).collect(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_press_is_an_action_event_with_the_query_id_the_chat_and_the_account() {
    let mut harness = Harness::start(json!({})).await;
    let request = briefing(
        "d-1",
        CHAT,
        &["<b>Item</b>"],
        vec![action("a1.ack.Zx9", "Acknowledge")],
    );
    assert!(matches!(
        harness.send(&request).await,
        SendResult::Delivered { .. }
    ));
    let message = harness.fake.messages_in(CHAT).remove(0);
    let query = harness
        .fake
        .user_presses(CHAT, CHAT, message.message_id, "Acknowledge");

    let event = harness.next_event().await;
    // The update's update_id: what the host's inbox is keyed by.
    assert!(
        event
            .event_id
            .as_deref()
            .is_some_and(|id| id.parse::<u32>().is_ok()),
        "{event:?}"
    );
    assert_eq!(
        event,
        InboundEvent {
            event_id: event.event_id.clone(),
            channel: "telegram".to_owned(),
            account: CHAT.to_string(),
            id: Some(query),
            address: Some(CHAT.to_string()),
            kind: InboundKind::Action {
                action_id: "a1.ack.Zx9".to_owned(),
                delivery_id: None
            },
        }
    );
    harness.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_host_s_reply_answers_the_press_once_shows_the_status_and_keeps_the_kept_buttons() {
    let mut harness = Harness::start(json!({})).await;
    let request = briefing(
        "d-1",
        CHAT,
        &["<b>Item</b> &amp; more"],
        vec![
            action("a1.ack.Zx9", "Acknowledge"),
            action("a1.cas.Zx9", "I've cascaded this to my team"),
        ],
    );
    harness.send(&request).await;
    let message = harness.fake.messages_in(CHAT).remove(0);
    let query = harness
        .fake
        .user_presses(CHAT, CHAT, message.message_id, "Acknowledge");
    let event = harness.next_event().await;

    let answer = Reply {
        event_id: event.id.clone().unwrap(),
        notice: Some("Acknowledged, thank you".to_owned()),
        status: Some("Acknowledged on 21 November 2026".to_owned()),
        keep_actions: vec![action("a1.cas.Zx9", "I've cascaded this to my team")],
        private: false,
    };
    let first = harness
        .send(&reply(
            1,
            CHAT,
            answer.clone(),
            "Thanks <Lena> & team",
            vec![],
        ))
        .await;
    assert!(matches!(first, SendResult::Delivered { .. }), "{first:?}");
    // The host answering the same event again must not answer the query twice.
    harness.send(&reply(2, CHAT, answer, "", vec![])).await;
    let fake = harness.stop().await;

    let answers = fake.requests_to("answerCallbackQuery");
    assert_eq!(answers.len(), 1, "{answers:#?}");
    assert_eq!(answers[0].status, 200);
    assert_eq!(answers[0].body["callback_query_id"], query);
    assert_eq!(answers[0].body["text"], "Acknowledged, thank you");

    let messages = fake.messages_in(CHAT);
    assert_eq!(
        messages[0].text,
        "Item & more\n\nAcknowledged on 21 November 2026"
    );
    assert_eq!(
        messages[0].entities[0],
        json!({"type": "bold", "offset": 0, "length": 4})
    );
    assert_eq!(
        messages[0].buttons(),
        [(
            "I've cascaded this to my team".to_owned(),
            "a1.cas.Zx9".to_owned()
        )]
    );
    assert_eq!(messages.len(), 2, "{messages:#?}");
    assert_eq!(messages[1].text, "Thanks <Lena> & team");
    assert!(messages[1].entities.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_press_the_host_does_not_answer_in_time_is_answered_empty_once() {
    let mut harness = Harness::start(json!({ "answer_within_seconds": 0.2 })).await;
    harness
        .send(&briefing(
            "d-1",
            CHAT,
            &["Item"],
            vec![action("a1.ack.Zx9", "Acknowledge")],
        ))
        .await;
    let message = harness.fake.messages_in(CHAT).remove(0);
    let query = harness
        .fake
        .user_presses(CHAT, CHAT, message.message_id, "Acknowledge");
    let event = harness.next_event().await;
    harness
        .fake
        .wait_until("an answer to the press", |f| {
            !f.requests_to("answerCallbackQuery").is_empty()
        })
        .await;

    let late = Reply {
        event_id: event.id.unwrap(),
        notice: Some("Acknowledged".to_owned()),
        status: Some("Acknowledged on 21 November 2026".to_owned()),
        ..Reply::default()
    };
    let result = harness.send(&reply(1, CHAT, late, "", vec![])).await;
    let fake = harness.stop().await;

    assert!(matches!(result, SendResult::Delivered { .. }), "{result:?}");
    let answers = fake.requests_to("answerCallbackQuery");
    assert_eq!(answers.len(), 1, "{answers:#?}");
    assert_eq!(answers[0].body["callback_query_id"], query);
    assert_eq!(answers[0].body.get("text"), None);
    let message = fake.messages_in(CHAT).remove(0);
    assert_eq!(message.text, "Item\n\nAcknowledged on 21 November 2026");
    assert_eq!(message.reply_markup, None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn commands_and_typed_text_are_emitted_and_replies_reach_the_chat_as_plain_text() {
    let mut harness = Harness::start(json!({})).await;
    harness.fake.user_sends(CHAT, "/start 482913");
    harness
        .fake
        .user_sends(CHAT, "/link@cascade_test_bot 482913");
    harness.fake.user_sends(CHAT, "/pending");
    harness
        .fake
        .user_sends(CHAT, "/ack neglect-seeing-the-child");
    harness.fake.user_sends(CHAT, "/help");
    harness.fake.user_sends(CHAT, "/cancel");
    harness.fake.user_sends(CHAT, "  14 people  ");

    let mut kinds = Vec::new();
    let mut ids = Vec::new();
    for _ in 0..7 {
        let event = harness.next_event().await;
        assert_eq!(event.account, CHAT.to_string());
        assert_eq!(event.address, Some(CHAT.to_string()));
        ids.push(
            event
                .id
                .expect("commands are answered, so they carry an id"),
        );
        kinds.push(event.kind);
    }
    assert_eq!(
        kinds,
        [
            command("start", &["482913"]),
            command("link", &["482913"]),
            command("pending", &[]),
            command("ack", &["neglect-seeing-the-child"]),
            command("help", &[]),
            command("cancel", &[]),
            InboundKind::Text {
                text: "14 people".to_owned()
            },
        ]
    );
    let answer = Reply {
        event_id: ids[2].clone(),
        ..Reply::default()
    };
    let result = harness
        .send(&reply(
            1,
            CHAT,
            answer,
            "You have 1 item to acknowledge: <Neglect> & seeing the child",
            vec![action("a1.ack.Zx9", "Acknowledge: Neglect")],
        ))
        .await;
    let fake = harness.stop().await;

    assert!(matches!(result, SendResult::Delivered { .. }), "{result:?}");
    assert!(fake.requests_to("answerCallbackQuery").is_empty());
    let messages = fake.messages_in(CHAT);
    assert_eq!(messages.len(), 1);
    assert_eq!(
        messages[0].text,
        "You have 1 item to acknowledge: <Neglect> & seeing the child"
    );
    assert_eq!(
        messages[0].buttons(),
        [("Acknowledge: Neglect".to_owned(), "a1.ack.Zx9".to_owned())]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn polling_confirms_each_batch_so_no_update_is_emitted_twice() {
    let mut harness = Harness::start(json!({})).await;
    harness.fake.user_sends(CHAT, "one");
    assert_eq!(
        harness.next_event().await.kind,
        InboundKind::Text {
            text: "one".to_owned()
        }
    );
    harness.fake.user_sends(CHAT, "two");
    assert_eq!(
        harness.next_event().await.kind,
        InboundKind::Text {
            text: "two".to_owned()
        }
    );
    let fake = harness.stop().await;
    let polls = fake.requests_to("getUpdates");
    let offsets: Vec<i64> = polls
        .iter()
        .map(|p| p.body["offset"].as_i64().unwrap_or(0))
        .collect();
    assert!(offsets.windows(2).all(|w| w[0] <= w[1]), "{offsets:?}");
    assert_eq!(fake.requests_to("deleteWebhook").len(), 1);
}

/// Webhook mode with several serves behind one URL: a serve that stops
/// deletes the webhook (so that Telegram keeps the updates while nobody
/// receives them), which leaves the serves still running without updates.
/// A running serve sees it gone within `webhook_check_seconds` and sets it
/// again, with its secret; a webhook someone else set to another URL it
/// leaves alone; once stopped, it deletes the webhook and checks no more.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_running_serve_sets_the_webhook_again_after_another_serve_stopping_deleted_it() {
    const URL: &str = "https://cascade.example.org/webhooks/telegram";
    const SECRET: &str = "a-webhook-secret_for-tests";
    let harness = Harness::start(json!({
        "mode": "webhook",
        "webhook_url": URL,
        "webhook_secret": SECRET,
        "webhook_check_seconds": 0.2,
    }))
    .await;
    let fake = harness.fake.clone();
    let ours = Some((URL.to_owned(), Some(SECRET.to_owned())));
    assert_eq!(fake.webhook(), ours);

    // Another serve stops.
    fake.set_webhook_elsewhere(None);
    fake.wait_until("the webhook set again", |f| f.webhook().is_some())
        .await;
    assert_eq!(fake.webhook(), ours);
    assert_eq!(fake.requests_to("setWebhook").len(), 2);

    // Another deployment of the same bot took it: left alone.
    let elsewhere = "https://elsewhere.example.org/hook";
    fake.set_webhook_elsewhere(Some(elsewhere));
    let checks = fake.requests_to("getWebhookInfo").len();
    fake.wait_until("two more checks", |f| {
        f.requests_to("getWebhookInfo").len() >= checks + 2
    })
    .await;
    assert_eq!(
        fake.webhook().map(|(url, _)| url).as_deref(),
        Some(elsewhere)
    );
    assert_eq!(fake.requests_to("setWebhook").len(), 2);

    fake.set_webhook_elsewhere(Some(URL));
    let fake = harness.stop().await;
    assert_eq!(fake.webhook(), None, "a stopping serve deletes the webhook");
    let checks = fake.requests_to("getWebhookInfo").len();
    tokio::time::sleep(std::time::Duration::from_millis(700)).await;
    assert_eq!(fake.requests_to("getWebhookInfo").len(), checks);
    assert_eq!(fake.webhook(), None, "nothing set it again after the stop");
}
