//! Sending through the real plugin, loaded by the host, to a fake Bot API
//! server: parts in order with the buttons on the last, Telegram's limits,
//! and every kind of failure turned into the right outcome.

mod fake_bot_api;
mod harness;

use cascade_plugin_api::SendResult;
use fake_bot_api::Fault;
use harness::{Harness, action, briefing};
use serde_json::json;

const CHAT: i64 = 1001;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_three_part_briefing_arrives_in_order_with_the_buttons_on_the_last_part() {
    let harness = Harness::start(json!({})).await;
    let request = briefing(
        "d-1",
        CHAT,
        &[
            "<b>Neglect: seeing the child</b>\n\nPart one &amp; more",
            "<i>Part two</i> with a <a href=\"https://example.org/a?b=1&amp;c=2\">link</a>",
            "Part three ✓",
        ],
        vec![
            action("a1.ack.0123456789", "Acknowledge"),
            action("a1.cas.0123456789", "I've cascaded this to my team"),
        ],
    );
    let result = harness.send(&request).await;
    let fake = harness.stop().await;

    let messages = fake.messages_in(CHAT);
    assert_eq!(messages.len(), 3, "{messages:#?}");
    let ids: Vec<String> = messages.iter().map(|m| m.message_id.to_string()).collect();
    assert_eq!(
        result,
        SendResult::Delivered {
            provider_id: Some(ids.join(","))
        }
    );
    assert_eq!(
        messages[0].text,
        "Neglect: seeing the child\n\nPart one & more"
    );
    assert_eq!(
        messages[0].entities,
        [json!({"type": "bold", "offset": 0, "length": 25})]
    );
    assert_eq!(messages[1].text, "Part two with a link");
    assert_eq!(
        messages[1].entities[1],
        json!({"type": "text_link", "url": "https://example.org/a?b=1&c=2", "offset": 16, "length": 4})
    );
    assert_eq!(messages[2].text, "Part three ✓");
    assert_eq!(messages[0].reply_markup, None);
    assert_eq!(messages[1].reply_markup, None);
    assert_eq!(
        messages[2].buttons(),
        [
            ("Acknowledge".to_owned(), "a1.ack.0123456789".to_owned()),
            (
                "I've cascaded this to my team".to_owned(),
                "a1.cas.0123456789".to_owned()
            ),
        ]
    );
    for sent in fake.requests_to("sendMessage") {
        assert_eq!(sent.body["parse_mode"], "HTML");
        assert_eq!(sent.body["chat_id"], CHAT);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_429_is_reported_as_a_retry_after_telegram_s_seconds() {
    let harness = Harness::start(json!({})).await;
    harness
        .fake
        .fail_next_send(Fault::TooManyRequests { retry_after: 3 });
    let result = harness
        .send(&briefing("d-1", CHAT, &["Hello"], vec![]))
        .await;
    let fake = harness.stop().await;

    assert!(
        matches!(
            result,
            SendResult::Retry {
                retry_after_ms: Some(3000),
                ..
            }
        ),
        "{result:?}"
    );
    assert!(fake.messages_in(CHAT).is_empty());
    assert_eq!(fake.requests_to("sendMessage")[0].status, 429);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_retry_after_a_429_on_part_two_sends_only_the_parts_not_yet_sent() {
    let harness = Harness::start(json!({})).await;
    harness.fake.accept_next_send();
    harness
        .fake
        .fail_next_send(Fault::TooManyRequests { retry_after: 1 });
    let request = briefing(
        "d-1",
        CHAT,
        &["One", "Two", "Three"],
        vec![action("a1.ack.x", "Acknowledge")],
    );
    let first = harness.send(&request).await;
    assert!(
        matches!(
            first,
            SendResult::Retry {
                retry_after_ms: Some(1000),
                ..
            }
        ),
        "{first:?}"
    );
    assert_eq!(harness.fake.messages_in(CHAT).len(), 1);

    let second = harness.send(&request).await;
    let fake = harness.stop().await;

    let messages = fake.messages_in(CHAT);
    let texts: Vec<&str> = messages.iter().map(|m| m.text.as_str()).collect();
    assert_eq!(texts, ["One", "Two", "Three"]);
    let ids: Vec<String> = messages.iter().map(|m| m.message_id.to_string()).collect();
    assert_eq!(
        second,
        SendResult::Delivered {
            provider_id: Some(ids.join(","))
        }
    );
    assert_eq!(messages[2].buttons().len(), 1);
    assert_eq!(fake.requests_to("sendMessage").len(), 4);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_error_is_retried_and_nothing_is_lost() {
    // teloxide waits 10 s before reading a 5xx answer (its back-off), so
    // the request timeout must be longer for the answer to be read.
    let harness = Harness::start(json!({ "request_timeout_seconds": 15 })).await;
    harness.fake.fail_next_send(Fault::ServerError {
        code: 502,
        description: "Bad Gateway",
    });
    let request = briefing("d-1", CHAT, &["Hello"], vec![]);
    let first = harness.send(&request).await;
    let second = harness.send(&request).await;
    let fake = harness.stop().await;

    assert!(
        matches!(&first, SendResult::Retry { reason, retry_after_ms: None } if reason.contains("Bad Gateway")),
        "{first:?}"
    );
    assert!(matches!(second, SendResult::Delivered { .. }), "{second:?}");
    assert_eq!(fake.messages_in(CHAT).len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_that_times_out_is_retried() {
    let harness = Harness::start(json!({ "request_timeout_seconds": 0.5 })).await;
    harness
        .fake
        .fail_next_send(Fault::Hang(std::time::Duration::from_secs(3)));
    let result = harness
        .send(&briefing("d-1", CHAT, &["Hello"], vec![]))
        .await;
    let fake = harness.stop().await;

    assert!(
        matches!(&result, SendResult::Retry { reason, retry_after_ms: None } if reason.contains("in time")),
        "{result:?}"
    );
    assert!(fake.messages_in(CHAT).is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_blocked_bot_fails_the_send_as_unreachable() {
    let harness = Harness::start(json!({})).await;
    harness.fake.block(CHAT);
    let result = harness
        .send(&briefing("d-1", CHAT, &["Hello"], vec![]))
        .await;
    harness.stop().await;

    assert_eq!(
        result,
        SendResult::Failed {
            reason: "Forbidden: bot was blocked by the user".to_owned(),
            unreachable: true
        }
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn callback_data_over_64_bytes_never_reaches_telegram() {
    let harness = Harness::start(json!({})).await;
    let request = briefing(
        "d-1",
        CHAT,
        &["Hello"],
        vec![action(&"x".repeat(65), "Acknowledge")],
    );
    let result = harness.send(&request).await;
    let fake = harness.stop().await;

    assert!(
        matches!(&result, SendResult::Failed { reason, unreachable: false } if reason.contains("64-byte")),
        "{result:?}"
    );
    assert!(fake.requests_to("sendMessage").is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_message_at_the_limit_is_sent_and_one_over_it_is_refused_by_telegram() {
    let harness = Harness::start(json!({})).await;
    // 4,096 shown characters: `&amp;` shows as one, and 🙂 counts as two
    // UTF-16 units.
    let at_limit = format!("<b>{}</b>{}", "&amp;".repeat(4000), "🙂".repeat(48));
    let over = format!("{at_limit}.");
    let fits = harness
        .send(&briefing("d-1", CHAT, &[&at_limit], vec![]))
        .await;
    let refused = harness.send(&briefing("d-2", CHAT, &[&over], vec![])).await;
    let fake = harness.stop().await;

    assert!(matches!(fits, SendResult::Delivered { .. }), "{fits:?}");
    assert_eq!(
        refused,
        SendResult::Failed {
            reason: "Bad Request: message is too long".to_owned(),
            unreachable: false
        }
    );
    assert_eq!(fake.messages_in(CHAT).len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_html_fails_with_telegram_s_description() {
    let harness = Harness::start(json!({})).await;
    let unclosed = harness
        .send(&briefing("d-1", CHAT, &["<b>Hello"], vec![]))
        .await;
    let unsupported = harness
        .send(&briefing("d-2", CHAT, &["<h1>Hello</h1>"], vec![]))
        .await;
    harness.stop().await;

    assert_eq!(
        unclosed,
        SendResult::Failed {
            reason: "Bad Request: can't parse entities: Can't find end tag corresponding to start tag \"b\"".to_owned(),
            unreachable: false
        }
    );
    assert!(
        matches!(&unsupported, SendResult::Failed { reason, .. } if reason.contains("Unsupported start tag \"h1\"")),
        "{unsupported:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_address_that_is_not_a_chat_id_fails_naming_the_fix() {
    let harness = Harness::start(json!({})).await;
    let mut request = briefing("d-1", CHAT, &["Hello"], vec![]);
    request.recipient.address = "lena@example.org".to_owned();
    let result = harness.send(&request).await;
    harness.stop().await;

    assert!(
        matches!(&result, SendResult::Failed { reason, .. } if reason.contains("/link")),
        "{result:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_telegram_refuses_stops_the_channel_from_starting() {
    let fake = fake_bot_api::FakeBotApi::start().await;
    let config = harness::config(&fake, json!({}));
    let Err(error) = Harness::start_with(fake, config, "999:WRONG-token").await else {
        panic!("the channel started with a refused token");
    };
    let message = error.to_string();
    assert!(message.contains("token secret"), "{message}");
    assert!(!message.contains("WRONG-token"), "{message}");
}
