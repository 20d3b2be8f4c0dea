//! Shared set-up: the fake Discord, and the real plugin library loaded and
//! started through the engine's plugin host, its token given as a secret.
#![allow(dead_code)] // each test file uses its own share of these

pub mod fake_discord;

use cascade_plugin_api::{
    Action, ChannelPost, Format, InboundEvent, Message, MessagePart, Recipient, Reply, SendRequest,
    SendResult,
};
use cascade_plugin_host::{
    ChannelConfig, Inbound, PluginFile, PluginHost, PluginsConfig, SecretSource,
};
use cascade_test_support::plugin_library;
use fake_discord::{APPLICATION_ID, FakeDiscord, GUILD_ID, TOKEN};
use serde_json::{Value, json};
use std::time::Duration;
use tokio::sync::mpsc;

/// The plugin started through the host against the fake.
pub struct Bot {
    pub host: PluginHost,
    pub inbound: mpsc::UnboundedReceiver<Inbound>,
    _secrets: tempfile::TempDir,
}

/// The channel's configuration as an operator writes it, pointed at the
/// fake; `extra` adds or overrides keys.
pub fn channel_config(fake: &FakeDiscord, extra: Value) -> ChannelConfig {
    let mut config = json!({
        "api_url": fake.api_url(),
        "application_id": APPLICATION_ID,
        "guild_id": GUILD_ID,
    });
    for (key, value) in extra.as_object().unwrap() {
        config[key] = value.clone();
    }
    ChannelConfig {
        name: "discord".to_owned(),
        plugin: "discord".to_owned(),
        config,
        secrets: [(
            "token".to_owned(),
            SecretSource::File("discord-token".into()),
        )]
        .into(),
        identity: None,
        formats: None,
        per_second: None,
        max_per_minute: None,
        max_per_day: None,
        team_channels: Default::default(),
        retry: None,
        carries: Default::default(),
        secure_domains: Vec::new(),
        spread_over: Vec::new(),
    }
}

impl Bot {
    pub async fn start(fake: &FakeDiscord, extra: Value) -> Bot {
        Bot::start_with(fake, extra, None)
            .await
            .unwrap_or_else(|e| panic!("the Discord channel did not start: {e}"))
    }

    /// As [`Bot::start`], with the engine's durable service over `store`
    /// answering the plugin's requests (its inbox and plugin state), as in
    /// `cascade serve`: a bot started again over the same store file is a
    /// restart.
    pub async fn start_durable(fake: &FakeDiscord, extra: Value, store: &std::path::Path) -> Bot {
        Bot::start_with(fake, extra, Some(store))
            .await
            .unwrap_or_else(|e| panic!("the Discord channel did not start: {e}"))
    }

    async fn start_with(
        fake: &FakeDiscord,
        extra: Value,
        store: Option<&std::path::Path>,
    ) -> Result<Bot, String> {
        let secrets = tempfile::tempdir().unwrap();
        std::fs::write(secrets.path().join("discord-token"), format!("{TOKEN}\n")).unwrap();
        let (tx, inbound) = mpsc::unbounded_channel();
        let report = PluginHost::load(
            &[PluginFile {
                path: plugin_library("cascade-plugin-discord"),
            }],
            &PluginsConfig::default(),
            tx.clone(),
        );
        assert!(
            report.problems.is_empty(),
            "{:?}",
            report
                .problems
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
        );
        let host = report.host;
        if let Some(store) = store {
            let store = cascade_store::SqliteStore::open(&store.to_string_lossy())
                .await
                .unwrap();
            host.set_service(std::sync::Arc::new(
                cascade_engine::inbound::inbox::InboxService {
                    store: std::sync::Arc::new(store),
                    inbound: tx,
                    turns: std::sync::Arc::new(cascade_engine::inbound::polls::PollTurns::free()),
                },
            ));
        }
        host.start(&channel_config(fake, extra), secrets.path())
            .await
            .map_err(|e| e.to_string())?;
        Ok(Bot {
            host,
            inbound,
            _secrets: secrets,
        })
    }

    /// Starts the channel and gives back why it did not start, if it did not.
    pub async fn try_start(fake: &FakeDiscord, extra: Value) -> Result<Bot, String> {
        Self::start_with(fake, extra, None).await
    }

    pub async fn send(&self, request: &SendRequest) -> SendResult {
        self.host.send("discord", request).await.unwrap()
    }

    /// The next event the plugin emitted (failing the test after 20 s).
    pub async fn next_event(&mut self) -> InboundEvent {
        let inbound = tokio::time::timeout(Duration::from_secs(20), self.inbound.recv())
            .await
            .expect("the plugin emitted no event within 20 s")
            .expect("the host's inbound channel closed");
        assert_eq!(inbound.instance, "discord");
        inbound.event
    }

    pub async fn stop(self) {
        self.host.stop().await;
    }
}

pub fn action(id: &str, label: &str) -> Action {
    Action {
        id: id.to_owned(),
        label: label.to_owned(),
        form: None,
    }
}

/// A learning message for the Discord user `user`, as the host sends it.
pub fn dm(delivery: &str, user: &str, chunks: &[&str], actions: Vec<Action>) -> SendRequest {
    SendRequest {
        delivery_id: delivery.to_owned(),
        idempotency_key: format!("key-{delivery}"),
        channel: "discord".to_owned(),
        recipient: Recipient {
            person_id: format!("person-{user}"),
            display_name: "Sam Carter".to_owned(),
            address: user.to_owned(),
        },
        message: Message {
            subject: Some("7-minute briefing: Neglect and the toxic trio".to_owned()),
            parts: vec![MessagePart {
                format: Format::Discord,
                chunks: chunks.iter().map(|c| (*c).to_owned()).collect(),
            }],
        },
        actions,
        reply: None,
        list: None,
        post: None,
    }
}

/// The host's answer to an event, as the engine sends it.
pub fn reply(event: &InboundEvent, text: &str, reply: Reply, actions: Vec<Action>) -> SendRequest {
    SendRequest {
        delivery_id: "reply:1".to_owned(),
        idempotency_key: format!("reply-{}", event.id.clone().unwrap()),
        channel: "discord".to_owned(),
        recipient: Recipient {
            person_id: String::new(),
            display_name: String::new(),
            address: event.address.clone().unwrap(),
        },
        message: Message {
            subject: None,
            parts: vec![MessagePart {
                format: Format::Text,
                chunks: vec![text.to_owned()],
            }],
        },
        actions,
        reply: Some(Reply {
            event_id: event.id.clone().unwrap(),
            ..reply
        }),
        list: None,
        post: None,
    }
}

/// A post of a learning item in a team's channel, as the host sends it:
/// `status` is the live count line; `edit` the provider id of the post to
/// replace.
pub fn team_post(
    delivery: &str,
    channel: &str,
    chunks: &[&str],
    actions: Vec<Action>,
    status: &str,
    edit: Option<&str>,
) -> SendRequest {
    SendRequest {
        recipient: Recipient {
            person_id: String::new(),
            display_name: "Emergency Department".to_owned(),
            address: channel.to_owned(),
        },
        post: Some(ChannelPost {
            status: Some(status.to_owned()),
            edit: edit.map(str::to_owned),
        }),
        ..dm(delivery, channel, chunks, actions)
    }
}
