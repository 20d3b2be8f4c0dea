//! The checks. Each starts its own fake and channel, drives the plugin as
//! the engine does, and fails with what the provider and the host saw.

use crate::harness::{action, http_status};
use crate::{Button, ChatProvider, Credentials, Running, SentMessage, WebhookProvider};
use cascade_plugin_api::{Capability, InboundKind, Reply, SendResult};
use std::time::Duration;
use tokio::net::TcpListener;

/// How long a check listens for an event that must not come.
const QUIET: Duration = Duration::from_millis(300);

/// The message's button ids, in order.
fn button_data(message: &SentMessage) -> Vec<&str> {
    message.buttons.iter().map(|b| b.data.as_str()).collect()
}

fn delivered(result: &SendResult, what: &str) -> String {
    match result {
        SendResult::Delivered {
            provider_id: Some(id),
        } if !id.is_empty() => id.clone(),
        other => panic!("{what} was not delivered with a provider id: {other:?}"),
    }
}

/// One learning message, one chunk, no buttons: it arrives once, at the
/// person's address only, shown as the channel's markup (text the renderer
/// escaped shows as written), and the provider id the host records names
/// the message.
pub async fn sends_a_message<P: ChatProvider>() {
    let channel = Running::<P>::start().await;
    let sam = channel.provider.person(1);
    let alex = channel.provider.person(2);
    let shown = "Neglect & the toxic trio: see the child, not only the adults";
    let chunk = cascade_render::escape(P::RENDER, shown);

    let result = channel
        .send(&channel.learning(1, &sam, vec![chunk], Vec::new()))
        .await;

    let provider_id = delivered(&result, "a one-part message");
    let messages = channel.provider.messages_to(&sam.address);
    assert_eq!(messages.len(), 1, "one message, posted once: {messages:#?}");
    assert!(
        messages[0].text.contains(shown),
        "the message shows {shown:?} (the render's markup, read as markup): {:?}",
        messages[0].text
    );
    assert!(
        messages[0].buttons.is_empty(),
        "no actions, no buttons: {messages:#?}"
    );
    assert!(
        provider_id.contains(&messages[0].id),
        "the provider id {provider_id:?} names the message {:?}",
        messages[0].id
    );
    assert!(
        channel.provider.messages_to(&alex.address).is_empty(),
        "nobody else got it"
    );
    channel.stop().await;
}

/// Numbered paragraphs of plain words, about `length` UTF-16 units in all.
fn long_text(length: usize) -> (String, usize) {
    let filler = "Spend time with the child, see where they sleep and what they eat, and write down what they tell you in their own words. ";
    let mut paragraphs = Vec::new();
    let mut total = 0;
    while total < length {
        let n = paragraphs.len() + 1;
        let paragraph = format!(
            "Paragraph {n:03} begins. {} Paragraph {n:03} ends.",
            filler.repeat(2)
        );
        total += paragraph.len() + 2;
        paragraphs.push(paragraph);
    }
    (paragraphs.join("\n\n"), paragraphs.len())
}

/// A text longer than the provider takes in one message, split by the
/// engine's renderer at the channel's limit: each chunk arrives as its own
/// message, in order, with its `(i/n)` line, every paragraph exactly once,
/// the buttons on the last message only. The same text as one chunk is a
/// failure the host must not retry (`Failed`, not unreachable), and no part
/// of it is posted.
pub async fn splits_long_text<P: ChatProvider>() {
    let channel = Running::<P>::start().await;
    let sam = channel.provider.person(1);
    let alex = channel.provider.person(2);
    let limit = P::RENDER
        .limit()
        .expect("a chat channel's render has a length limit");
    let (text, paragraphs) = long_text(limit * 5 / 2);
    let chunks = cascade_render::split(P::RENDER.markup(), &text, limit);
    assert!(
        chunks.len() >= 3,
        "the renderer split {} units into {} chunks",
        text.len(),
        chunks.len()
    );
    let ack = action("d2.ack.Zx9Qw", "Acknowledge");

    let result = channel
        .send(&channel.learning(2, &sam, chunks.clone(), vec![ack.clone()]))
        .await;

    delivered(&result, "a split message");
    let messages = channel.provider.messages_to(&sam.address);
    assert_eq!(
        messages.len(),
        chunks.len(),
        "one message per chunk: {messages:#?}"
    );
    let n = chunks.len();
    for (i, message) in messages.iter().enumerate() {
        assert!(
            message.text.contains(&format!("({}/{n})", i + 1)),
            "message {i} is part {} of {n}: {:?}",
            i + 1,
            message.text
        );
        let expected: Vec<&str> = if i + 1 == n { vec![&ack.id] } else { vec![] };
        assert_eq!(
            button_data(message),
            expected,
            "buttons on the last message only (message {i})"
        );
    }
    let all: String = messages
        .iter()
        .map(|m| m.text.as_str())
        .collect::<Vec<_>>()
        .join("\n");
    let mut at = 0;
    for p in 1..=paragraphs {
        for edge in ["begins", "ends"] {
            let marker = format!("Paragraph {p:03} {edge}");
            assert_eq!(
                all.matches(&marker).count(),
                1,
                "{marker:?} arrives exactly once"
            );
            let found = all.find(&marker).unwrap();
            assert!(found >= at, "{marker:?} arrives in order");
            at = found;
        }
    }

    let unsplit = channel
        .send(&channel.learning(3, &alex, vec![text], Vec::new()))
        .await;
    assert!(
        matches!(
            unsplit,
            SendResult::Failed {
                unreachable: false,
                ..
            }
        ),
        "a chunk over the provider's limit fails, is not retried and does not mark the person unreachable: {unsplit:?}"
    );
    assert_eq!(
        channel.provider.messages_to(&alex.address),
        [],
        "nothing of the over-long message was posted"
    );
    channel.stop().await;
}

/// Buttons arrive on the last part with the host's labels and action ids,
/// in order; a press comes back as an action event with the pressed id,
/// from the presser's account, with the press's id and a reply address; the
/// runner's answer is delivered and the provider sees the press answered
/// exactly once.
pub async fn buttons_come_back_as_actions<P: ChatProvider>() {
    let mut channel = Running::<P>::start().await;
    channel.assert_capable(&[Capability::Buttons, Capability::Inbound]);
    channel.provider.connected().await;
    let sam = channel.provider.person(1);
    let ack = action("d4.ack.Q2xv7", "Acknowledge");
    let later = action("d4.later.Q2xv7", "Remind me tomorrow");
    let request = channel.learning(
        4,
        &sam,
        vec!["Part one".to_owned(), "Part two".to_owned()],
        vec![ack.clone(), later.clone()],
    );

    delivered(&channel.send(&request).await, "a message with buttons");

    let messages = channel.provider.messages_to(&sam.address);
    assert_eq!(messages.len(), 2, "{messages:#?}");
    assert_eq!(messages[0].buttons, [], "no buttons on the first part");
    assert_eq!(
        messages[1].buttons,
        [
            Button {
                label: ack.label.clone(),
                data: ack.id.clone()
            },
            Button {
                label: later.label.clone(),
                data: later.id.clone()
            },
        ],
        "the buttons, in order, on the last part"
    );

    let press = channel.provider.press(&sam, &messages[1], &later.id);
    let event = channel.next_event().await;
    assert!(
        matches!(&event.kind, InboundKind::Action { action_id, .. } if *action_id == later.id),
        "the press comes back as the pressed action: {event:?}"
    );
    assert_eq!(event.channel, channel.kind(), "{event:?}");
    assert_eq!(event.account, sam.account, "from the presser: {event:?}");
    assert_eq!(
        event.id.as_deref(),
        Some(press.as_str()),
        "with the press's id, for the answer"
    );
    assert!(event.address.is_some(), "with a reply address: {event:?}");

    let answer = channel.reply(
        1,
        &event,
        "You will be reminded tomorrow.",
        Reply {
            notice: Some("Noted".to_owned()),
            private: true,
            ..Reply::default()
        },
    );
    let answered = channel.send(&answer).await;
    assert!(
        matches!(answered, SendResult::Delivered { .. }),
        "the answer to a press is delivered: {answered:?}"
    );
    assert_eq!(
        channel.answers_once(&press).await,
        1,
        "the provider saw the press answered exactly once"
    );
    channel.assert_no_event(QUIET).await;
    channel.stop().await;
}

/// The provider refuses part two of three as rate limited, retry after one
/// second: the send is a `Retry` with that wait (not absorbed, not a
/// failure), part one stays posted; the retry after the wait is delivered
/// and posts only what was missing, so every part is there once, in order.
pub async fn retry_after_is_reported<P: ChatProvider>() {
    let channel = Running::<P>::start().await;
    let sam = channel.provider.person(1);
    let ack = action("d5.ack.Rt4kP", "Acknowledge");
    let parts = [
        "Part one of three",
        "Part two of three",
        "Part three of three",
    ];
    let request = channel.learning(
        5,
        &sam,
        parts.iter().map(|p| (*p).to_owned()).collect(),
        vec![ack.clone()],
    );
    channel.provider.refuse_with_retry_after(1, 1);

    let first = channel.send(&request).await;

    assert!(
        matches!(
            first,
            SendResult::Retry {
                retry_after_ms: Some(1000),
                ..
            }
        ),
        "the provider's wait comes back as the retry-after: {first:?}"
    );
    let posted = channel.provider.messages_to(&sam.address);
    assert_eq!(posted.len(), 1, "part one only so far: {posted:#?}");

    tokio::time::sleep(Duration::from_millis(1100)).await;
    let second = channel.send(&request).await;

    delivered(&second, "the retry after the wait");
    let messages = channel.provider.messages_to(&sam.address);
    assert_eq!(
        messages.len(),
        3,
        "each part once, nothing posted twice: {messages:#?}"
    );
    for (message, part) in messages.iter().zip(parts) {
        assert!(
            message.text.contains(part),
            "{part:?} in order: {messages:#?}"
        );
    }
    assert_eq!(
        messages[0].id, posted[0].id,
        "part one was not posted again"
    );
    assert_eq!(button_data(&messages[2]), [ack.id.as_str()]);
    channel.stop().await;
}

/// A person the provider will not let the bot reach: the send fails as
/// unreachable (so the engine stops using this channel for them and falls
/// back), nothing is posted to them, and the channel goes on serving
/// everyone else.
pub async fn unreachable_is_reported<P: ChatProvider>() {
    let channel = Running::<P>::start().await;
    let sam = channel.provider.person(1);
    let alex = channel.provider.person(2);
    channel.provider.make_unreachable(&sam.address);

    let result = channel
        .send(&channel.learning(6, &sam, vec!["For Sam".to_owned()], Vec::new()))
        .await;

    assert!(
        matches!(
            result,
            SendResult::Failed {
                unreachable: true,
                ..
            }
        ),
        "a person the provider refuses is reported unreachable: {result:?}"
    );
    assert_eq!(channel.provider.messages_to(&sam.address), []);
    let other = channel
        .send(&channel.learning(7, &alex, vec!["For Alex".to_owned()], Vec::new()))
        .await;
    delivered(&other, "a message to someone else afterwards");
    assert_eq!(channel.provider.messages_to(&alex.address).len(), 1);
    channel.stop().await;
}

/// The runner's answer to a press with a status line and a button to keep:
/// the pressed message itself (same id) now shows its text and the status,
/// and only the kept button; the item is not posted again; the press is
/// answered once. The runner answering the same event again changes none
/// of that.
pub async fn edit_updates_the_message<P: ChatProvider>() {
    let mut channel = Running::<P>::start().await;
    channel.assert_capable(&[Capability::Buttons, Capability::Inbound, Capability::Edit]);
    channel.provider.connected().await;
    let sam = channel.provider.person(1);
    let body = "Read me: neglect and the toxic trio";
    let status = "Acknowledged on 21 November 2026";
    let ack = action("d8.ack.Ed1tQ", "Acknowledge");
    let cascaded = action("d8.cascade.Ed1tQ", "I've cascaded this");
    delivered(
        &channel
            .send(&channel.learning(
                8,
                &sam,
                vec![body.to_owned()],
                vec![ack.clone(), cascaded.clone()],
            ))
            .await,
        "the message to press on",
    );
    let pressed = channel
        .provider
        .messages_to(&sam.address)
        .pop()
        .expect("the message was posted");
    let press = channel.provider.press(&sam, &pressed, &ack.id);
    let event = channel.next_event().await;
    let answer = Reply {
        notice: Some("Acknowledged".to_owned()),
        status: Some(status.to_owned()),
        keep_actions: vec![cascaded.clone()],
        private: true,
        ..Reply::default()
    };

    let result = channel
        .send(&channel.reply(1, &event, "Thank you, recorded.", answer.clone()))
        .await;

    assert!(
        matches!(result, SendResult::Delivered { .. }),
        "the answer is delivered: {result:?}"
    );
    let shown_with = |messages: &[SentMessage]| {
        messages
            .iter()
            .find(|m| m.id == pressed.id)
            .cloned()
            .expect("the pressed message is still there")
    };
    let messages = channel
        .messages_once(&sam.address, "the status on the pressed message", |m| {
            m.iter()
                .any(|m| m.id == pressed.id && m.text.contains(status))
        })
        .await;
    let edited = shown_with(&messages);
    assert!(
        edited.text.contains(body),
        "the item stays on the edited message: {edited:?}"
    );
    assert_eq!(
        button_data(&edited),
        [cascaded.id.as_str()],
        "only the kept button stays"
    );
    assert_eq!(
        messages.iter().filter(|m| m.text.contains(body)).count(),
        1,
        "edited in place, not posted again: {messages:#?}"
    );
    assert_eq!(channel.answers_once(&press).await, 1, "answered once");

    let _ = channel
        .send(&channel.reply(2, &event, "Thank you, recorded.", answer))
        .await;
    tokio::time::sleep(QUIET).await;
    assert_eq!(
        channel.provider.answers_to(&press),
        1,
        "a second answer to the same press is not passed on"
    );
    let again = shown_with(&channel.provider.messages_to(&sam.address));
    assert_eq!(
        again.text.matches(status).count(),
        1,
        "the status shows once: {again:?}"
    );
    assert_eq!(button_data(&again), [cascaded.id.as_str()]);
    channel.stop().await;
}

/// In webhook mode, with cascade's own server in front of the plugin:
/// posts without credentials or with wrong ones are refused (401 or 403)
/// and become no event; an authentic post is taken (200) and becomes the
/// person's event, the first the plugin emits.
pub async fn webhook_without_auth_is_refused<P: WebhookProvider>() {
    let provider = P::start().await;
    let listener = TcpListener::bind("127.0.0.1:0")
        .await
        .expect("a loopback port");
    let url = format!(
        "http://{}/webhooks/{}",
        listener.local_addr().unwrap(),
        P::PLUGIN
    );
    provider.webhook_at(&url);
    let setup = provider.webhook_channel(&url);
    let mut channel = Running::start_with(provider, setup, Some(listener)).await;
    channel.assert_capable(&[Capability::Webhook]);
    let sam = channel.provider.person(1);

    for (credentials, text) in [
        (Credentials::Missing, "forged without credentials"),
        (Credentials::Wrong, "forged with the wrong credentials"),
    ] {
        let statuses = channel.provider.post_text(&sam, text, credentials).await;
        assert!(
            !statuses.is_empty() && statuses.iter().all(|s| [401, 403].contains(s)),
            "a post with {credentials:?} credentials is refused: {statuses:?}"
        );
    }
    channel.assert_no_event(QUIET).await;

    let statuses = channel
        .provider
        .post_text(&sam, "14 people", Credentials::Valid)
        .await;
    assert!(
        !statuses.is_empty() && statuses.iter().all(|s| *s == 200),
        "an authentic post is taken: {statuses:?}"
    );
    let event = channel.next_event().await;
    assert_eq!(
        event.kind,
        InboundKind::Text {
            text: "14 people".to_owned()
        },
        "the authentic post is the first event: {event:?}"
    );
    assert_eq!(event.account, sam.account);
    channel.assert_no_event(QUIET).await;
    channel.stop().await;
}

/// A provider without webhooks: the manifest claims none, and cascade's
/// webhook route for the channel answers 404 and hands nothing on.
pub async fn no_webhook_is_taken<P: ChatProvider>() {
    let provider = P::start().await;
    let listener = TcpListener::bind("127.0.0.1:0")
        .await
        .expect("a loopback port");
    let url = format!(
        "http://{}/webhooks/{}",
        listener.local_addr().unwrap(),
        P::PLUGIN
    );
    let setup = provider.channel();
    let mut channel = Running::start_with(provider, setup, Some(listener)).await;
    assert!(
        !channel.capabilities().contains(&Capability::Webhook),
        "the manifest claims webhooks: run webhook_without_auth_is_refused instead"
    );
    let status = http_status(
        &url,
        "POST",
        &[("Content-Type", "application/json")],
        r#"{"update_id": 1, "type": 1}"#,
    )
    .await;
    assert_eq!(status, 404, "no webhook route for {url}");
    channel.assert_no_event(QUIET).await;
    channel.stop().await;
}

#[cfg(test)]
mod tests {
    use super::long_text;

    #[test]
    fn the_long_text_is_as_long_as_asked_in_numbered_paragraphs() {
        let (text, paragraphs) = long_text(10_000);
        assert!(
            text.len() >= 10_000 && text.len() < 10_400,
            "{}",
            text.len()
        );
        assert!(text.starts_with("Paragraph 001 begins."));
        assert!(text.ends_with(&format!("Paragraph {paragraphs:03} ends.")));
    }
}
