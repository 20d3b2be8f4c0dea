//! The channel-plugin conformance suite (`plugins/testing/conformance`)
//! run against the Telegram plugin: the real library through the host, the
//! fake Bot API as the provider. People are private chats (chat id = user
//! id); the fake refuses a rate-limited sendMessage with 429 and
//! `retry_after`, and a chat whose user blocked the bot with 403. In
//! webhook mode the fake posts updates to cascade's `/webhooks/telegram`
//! with the secret-token header.

mod fake_bot_api;

use cascade_plugin_conformance::{
    self as conformance, Button, ChannelSetup, ChatProvider, Credentials, Person, Render,
    SentMessage, WebhookProvider,
};
use fake_bot_api::{FakeBotApi, Fault, Posted, TOKEN};
use serde_json::{Value, json};

/// The secret Telegram sends in the X-Telegram-Bot-Api-Secret-Token header.
const WEBHOOK_SECRET: &str = "conformance_webhook-secret-42";
/// Another secret, of the same length.
const WRONG_SECRET: &str = "conformance_webhook-secret-43";

struct Telegram(FakeBotApi);

impl Telegram {
    /// The configuration an operator writes, pointed at the fake; pacing
    /// high enough that a check never waits on it.
    fn config(&self) -> Value {
        json!({
            "api_url": self.0.url,
            "chat_messages_per_second": 1000,
            "messages_per_second": 1000,
            "request_timeout_seconds": 5,
        })
    }
}

fn chat(address: &str) -> i64 {
    address
        .parse()
        .unwrap_or_else(|_| panic!("{address:?} is not a Telegram chat id"))
}

fn shown(message: &Posted) -> SentMessage {
    SentMessage {
        id: message.message_id.to_string(),
        text: message.text.clone(),
        buttons: message
            .buttons()
            .into_iter()
            .map(|(label, data)| Button { label, data })
            .collect(),
    }
}

impl ChatProvider for Telegram {
    const PLUGIN: &'static str = "telegram";
    const RENDER: Render = Render::Telegram;

    async fn start() -> Self {
        Telegram(FakeBotApi::start().await)
    }

    fn channel(&self) -> ChannelSetup {
        ChannelSetup {
            config: self.config(),
            secrets: vec![("token".to_owned(), TOKEN.to_owned())],
        }
    }

    /// A user in their private chat with the bot: the chat id is theirs.
    fn person(&self, n: u32) -> Person {
        let user = (7000 + i64::from(n)).to_string();
        Person {
            address: user.clone(),
            account: user,
        }
    }

    fn messages_to(&self, address: &str) -> Vec<SentMessage> {
        self.0
            .messages_in(chat(address))
            .iter()
            .map(shown)
            .collect()
    }

    fn refuse_with_retry_after(&self, after: usize, seconds: u32) {
        for _ in 0..after {
            self.0.accept_next_send();
        }
        self.0.fail_next_send(Fault::TooManyRequests {
            retry_after: u64::from(seconds),
        });
    }

    /// The user blocks the bot: 403 "bot was blocked by the user".
    fn make_unreachable(&self, address: &str) {
        self.0.block(chat(address));
    }

    fn press(&self, person: &Person, message: &SentMessage, data: &str) -> String {
        let posted = self
            .0
            .all_messages()
            .into_iter()
            .find(|m| m.message_id.to_string() == message.id)
            .unwrap_or_else(|| panic!("the fake holds no message {}", message.id));
        self.0.press_with_data(chat(&person.account), &posted, data)
    }

    /// answerCallbackQuery calls Telegram accepted for the press.
    fn answers_to(&self, press: &str) -> usize {
        self.0
            .requests_to("answerCallbackQuery")
            .iter()
            .filter(|r| r.status == 200 && r.body["callback_query_id"] == press)
            .count()
    }
}

impl WebhookProvider for Telegram {
    fn webhook_channel(&self, url: &str) -> ChannelSetup {
        let mut config = self.config();
        config["mode"] = json!("webhook");
        config["webhook_url"] = json!(url);
        ChannelSetup {
            config,
            secrets: vec![
                ("token".to_owned(), TOKEN.to_owned()),
                ("webhook_secret".to_owned(), WEBHOOK_SECRET.to_owned()),
            ],
        }
    }

    /// The user writes `text`; Telegram posts the update to the webhook the
    /// plugin set at start.
    async fn post_text(&self, person: &Person, text: &str, credentials: Credentials) -> Vec<u16> {
        self.0.user_sends(chat(&person.account), text);
        let secret = match credentials {
            Credentials::Missing => None,
            Credentials::Wrong => Some(WRONG_SECRET),
            Credentials::Valid => Some(WEBHOOK_SECRET),
        };
        self.0.post_to_webhook(secret).await
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sends_a_message() {
    conformance::sends_a_message::<Telegram>().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn splits_long_text() {
    conformance::splits_long_text::<Telegram>().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn buttons_come_back_as_actions() {
    conformance::buttons_come_back_as_actions::<Telegram>().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retry_after_is_reported() {
    conformance::retry_after_is_reported::<Telegram>().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unreachable_is_reported() {
    conformance::unreachable_is_reported::<Telegram>().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn edit_updates_the_message() {
    conformance::edit_updates_the_message::<Telegram>().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn webhook_without_auth_is_refused() {
    conformance::webhook_without_auth_is_refused::<Telegram>().await;
}
