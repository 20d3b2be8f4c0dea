//! The channel-plugin conformance suite (`plugins/testing/conformance`)
//! run against the Discord plugin: the real library through the host, the
//! fake Discord (REST and gateway) as the provider. People are DMed; the
//! fake refuses a rate-limited message with Discord's 429 and an
//! unreachable one with 403/50007. Discord posts nothing to webhooks (what
//! people do comes over the gateway), so the webhook check here is that
//! none is taken.

#[allow(dead_code)] // the suite uses only a share of the fake
#[path = "support/fake_discord.rs"]
mod fake_discord;

use cascade_plugin_conformance::{
    self as conformance, Button, ChannelSetup, ChatProvider, Person, Render, SentMessage,
};
use fake_discord::{APPLICATION_ID, FakeDiscord, Fault, GUILD_ID, TOKEN};
use serde_json::{Value, json};

struct Discord(FakeDiscord);

/// A message as Discord shows it: its embeds' titles and descriptions and
/// its content, and the buttons of its action rows.
fn shown(id: &str, message: &Value) -> SentMessage {
    let mut text = Vec::new();
    for embed in message["embeds"].as_array().into_iter().flatten() {
        for key in ["title", "description"] {
            if let Some(line) = embed[key].as_str() {
                text.push(line.to_owned());
            }
        }
    }
    if let Some(content) = message["content"].as_str().filter(|c| !c.is_empty()) {
        text.push(content.to_owned());
    }
    let buttons = message["components"]
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|row| row["components"].as_array().into_iter().flatten())
        .map(|button| Button {
            label: button["label"].as_str().unwrap_or_default().to_owned(),
            data: button["custom_id"].as_str().unwrap_or_default().to_owned(),
        })
        .collect();
    SentMessage {
        id: id.to_owned(),
        text: text.join("\n"),
        buttons,
    }
}

impl ChatProvider for Discord {
    const PLUGIN: &'static str = "discord";
    const RENDER: Render = Render::Discord;

    async fn start() -> Self {
        Discord(FakeDiscord::start().await)
    }

    fn channel(&self) -> ChannelSetup {
        ChannelSetup {
            config: json!({
                "api_url": self.0.api_url(),
                "application_id": APPLICATION_ID,
                "guild_id": GUILD_ID,
                // Every wait goes back to the host; by default the plugin
                // waits out those up to 5 s itself, and the suite's is 1 s.
                "max_rate_limit_wait_ms": 0,
            }),
            secrets: vec![("token".to_owned(), TOKEN.to_owned())],
        }
    }

    /// A Discord user, DMed at their user id.
    fn person(&self, n: u32) -> Person {
        let user = (4_000_000_000_000_000_000u64 + u64::from(n)).to_string();
        Person {
            address: user.clone(),
            account: user,
        }
    }

    async fn connected(&self) {
        self.0
            .wait_for("an IDENTIFY", |s| (s.identifies > 0).then_some(()))
            .await;
    }

    fn messages_to(&self, address: &str) -> Vec<SentMessage> {
        let Some(channel) = self.0.dm_channel_of(address) else {
            return Vec::new();
        };
        self.0
            .messages_in(&channel)
            .iter()
            .map(|(id, message)| shown(id, message))
            .collect()
    }

    fn refuse_with_retry_after(&self, after: usize, seconds: u32) {
        self.0.fail_after(
            "POST /api/v10/channels/",
            after,
            Fault::RateLimited {
                retry_after: f64::from(seconds),
                global: false,
            },
        );
    }

    /// The user has closed their DMs: Discord refuses the message with
    /// 403, code 50007 (the fake refuses the next message post).
    fn make_unreachable(&self, address: &str) {
        let route = match self.0.dm_channel_of(address) {
            Some(channel) => format!("POST /api/v10/channels/{channel}/messages"),
            None => "POST /api/v10/channels/".to_owned(),
        };
        self.0.fail_next(&route, Fault::CannotMessage);
    }

    fn press(&self, person: &Person, message: &SentMessage, data: &str) -> String {
        self.0.press_button(&person.account, &message.id, data)
    }

    /// Interaction responses Discord accepted (204) for the press.
    fn answers_to(&self, press: &str) -> usize {
        self.0
            .requests_to(&format!("POST /api/v10/interactions/{press}/"))
            .iter()
            .filter(|r| r.status == 204)
            .count()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sends_a_message() {
    conformance::sends_a_message::<Discord>().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn splits_long_text() {
    conformance::splits_long_text::<Discord>().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn buttons_come_back_as_actions() {
    conformance::buttons_come_back_as_actions::<Discord>().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retry_after_is_reported() {
    conformance::retry_after_is_reported::<Discord>().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unreachable_is_reported() {
    conformance::unreachable_is_reported::<Discord>().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn edit_updates_the_message() {
    conformance::edit_updates_the_message::<Discord>().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_webhook_is_taken() {
    conformance::no_webhook_is_taken::<Discord>().await;
}
