//! The real plugin library, loaded by the real host (`cascade_plugin_host`)
//! and pointed at a fake Bot API server: what every test here starts from.
#![allow(dead_code)] // each test file uses its own share of these

use crate::fake_bot_api::{FakeBotApi, TOKEN};
use cascade_plugin_api::{
    Action, Format, InboundEvent, Message, MessagePart, Recipient, Reply, SendRequest, SendResult,
};
use cascade_plugin_host::{
    ChannelConfig, Inbound, PluginFile, PluginHost, PluginsConfig, SecretSource,
};
use cascade_test_support::plugin_library;
use serde_json::{Value, json};
use std::time::Duration;
use tokio::sync::mpsc;

pub struct Harness {
    pub fake: FakeBotApi,
    pub host: PluginHost,
    pub inbound: mpsc::UnboundedReceiver<Inbound>,
    /// Holds the token secret file.
    _secrets: tempfile::TempDir,
}

/// The channel's configuration for a test: the fake's URL, quick limits so
/// tests do not wait on pacing, and `extra` on top.
pub fn config(fake: &FakeBotApi, extra: Value) -> Value {
    let mut config = json!({
        "api_url": fake.url,
        "chat_messages_per_second": 1000,
        "messages_per_second": 1000,
        "request_timeout_seconds": 5,
    });
    for (key, value) in extra.as_object().unwrap() {
        config[key] = value.clone();
    }
    config
}

impl Harness {
    pub async fn start(extra: Value) -> Harness {
        let fake = FakeBotApi::start().await;
        let config = config(&fake, extra);
        Harness::start_with(fake, config, TOKEN).await.unwrap()
    }

    /// Loads the library and starts a `telegram` channel whose token comes
    /// from a secret file, as an operator would configure it.
    pub async fn start_with(
        fake: FakeBotApi,
        config: Value,
        token: &str,
    ) -> Result<Harness, cascade_plugin_host::PluginError> {
        let secrets = tempfile::tempdir().unwrap();
        std::fs::write(secrets.path().join("telegram-token"), format!("{token}\n")).unwrap();
        let (tx, inbound) = mpsc::unbounded_channel();
        let report = PluginHost::load(
            &[PluginFile {
                path: plugin_library("cascade-plugin-telegram"),
            }],
            &PluginsConfig::default(),
            tx,
        );
        assert!(report.problems.is_empty(), "{:?}", report.problems);
        let host = report.host;
        let channel = ChannelConfig {
            name: "telegram".to_owned(),
            plugin: "telegram".to_owned(),
            config,
            secrets: [(
                "token".to_owned(),
                SecretSource::File("telegram-token".into()),
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
        };
        host.start(&channel, secrets.path()).await?;
        Ok(Harness {
            fake,
            host,
            inbound,
            _secrets: secrets,
        })
    }

    pub async fn send(&self, request: &SendRequest) -> SendResult {
        self.host.send("telegram", request).await.unwrap()
    }

    /// The next inbound event the plugin emits.
    pub async fn next_event(&mut self) -> InboundEvent {
        let inbound = tokio::time::timeout(Duration::from_secs(20), self.inbound.recv())
            .await
            .expect("no inbound event within 20 s")
            .expect("the host's inbound channel closed");
        assert_eq!(inbound.instance, "telegram");
        inbound.event
    }

    pub async fn stop(self) -> FakeBotApi {
        self.host.stop().await;
        self.fake
    }
}

pub fn action(id: &str, label: &str) -> Action {
    Action {
        id: id.to_owned(),
        label: label.to_owned(),
        form: None,
    }
}

/// A briefing of `chunks` (Telegram HTML) to `chat` with `actions`.
pub fn briefing(delivery: &str, chat: i64, chunks: &[&str], actions: Vec<Action>) -> SendRequest {
    SendRequest {
        delivery_id: delivery.to_owned(),
        idempotency_key: format!("key-{delivery}"),
        channel: "telegram".to_owned(),
        recipient: Recipient {
            person_id: "p-lena-ford".to_owned(),
            display_name: "Lena Ford".to_owned(),
            address: chat.to_string(),
        },
        message: Message {
            subject: Some("Neglect: seeing the child".to_owned()),
            parts: vec![MessagePart {
                format: Format::Telegram,
                chunks: chunks.iter().map(|c| (*c).to_owned()).collect(),
            }],
        },
        actions,
        reply: None,
        list: None,
        post: None,
    }
}

/// The host's answer to an inbound event: plain `text` to `chat`.
pub fn reply(n: u32, chat: i64, reply: Reply, text: &str, actions: Vec<Action>) -> SendRequest {
    SendRequest {
        delivery_id: format!("reply:{n}"),
        idempotency_key: format!("reply:{n}"),
        channel: "telegram".to_owned(),
        recipient: Recipient {
            person_id: String::new(),
            display_name: String::new(),
            address: chat.to_string(),
        },
        message: Message {
            subject: None,
            parts: vec![MessagePart {
                format: Format::Text,
                chunks: vec![text.to_owned()],
            }],
        },
        actions,
        reply: Some(reply),
        list: None,
        post: None,
    }
}
