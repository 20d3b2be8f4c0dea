//! Shared set-up: the fake Notify, and the real plugin library started
//! through the real host with its API key and callback token in secret
//! files, cascade's webhook route served on a socket.
#![allow(dead_code)] // each test file uses its own share of these

pub mod fake_notify;

use cascade_plugin_api::{Format, Message, MessagePart, Recipient, SendRequest};
use cascade_plugin_host::{
    ChannelConfig, Inbound, PluginFile, PluginHost, PluginsConfig, SecretSource,
};
use cascade_test_support::plugin_library;
use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use tokio::sync::mpsc;

pub const ACK: &str = "https://learning.northbridge.example/ack/v1.k1.42.AbC-123_xyz";

/// A running host with one `notify` channel, its events, and the URL of
/// cascade's webhook route for it.
pub struct Running {
    pub host: Arc<PluginHost>,
    pub events: mpsc::UnboundedReceiver<Inbound>,
    pub webhook: String,
}

/// Starts the host with the channel `config` (the API key and callback
/// token are added as secrets from files in `dir`).
pub async fn start(dir: &Path, config: serde_json::Value) -> Running {
    try_start(dir, config).await.unwrap()
}

pub async fn try_start(
    dir: &Path,
    config: serde_json::Value,
) -> Result<Running, cascade_plugin_host::PluginError> {
    std::fs::write(
        dir.join("notify-api-key"),
        format!("{}\n", fake_notify::api_key()),
    )
    .unwrap();
    std::fs::write(
        dir.join("notify-callback-token"),
        fake_notify::CALLBACK_TOKEN,
    )
    .unwrap();
    let (sender, events) = mpsc::unbounded_channel();
    let report = PluginHost::load(
        &[PluginFile {
            path: plugin_library("cascade-plugin-notify"),
        }],
        &PluginsConfig::default(),
        sender,
    );
    assert!(report.problems.is_empty(), "{:?}", report.problems);
    let host = Arc::new(report.host);
    let mut secrets = BTreeMap::new();
    if config.get("api_key").is_none() {
        secrets.insert(
            "api_key".to_owned(),
            SecretSource::File("notify-api-key".into()),
        );
    }
    secrets.insert(
        "callback_token".to_owned(),
        SecretSource::File("notify-callback-token".into()),
    );
    let channel = ChannelConfig {
        name: "notify".to_owned(),
        plugin: "notify".to_owned(),
        config,
        secrets,
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
    host.start(&channel, dir).await?;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let webhook = format!("http://{}/webhooks/notify", listener.local_addr().unwrap());
    let app = cascade_server::webhook_router(host.clone());
    tokio::spawn(async move {
        let limits = cascade_server::ServerConfig::default();
        cascade_server::serve(listener, app, &limits, std::future::pending()).await
    });
    Ok(Running {
        host,
        events,
        webhook,
    })
}

/// The learning message of delivery `n` to `address`, as the engine sends
/// it: the `email-text` render with the signed link.
pub fn request(n: usize, address: &str) -> SendRequest {
    SendRequest {
        delivery_id: format!("d{n}"),
        idempotency_key: format!("now/p-{n}/initial-1/p-{n}/0"),
        channel: "notify".to_owned(),
        recipient: Recipient {
            person_id: format!("p-{n}"),
            display_name: "Zoë Brontë".to_owned(),
            address: address.to_owned(),
        },
        message: Message {
            subject: Some("Neglect: seeing the child".to_owned()),
            parts: vec![MessagePart {
                format: Format::EmailText,
                chunks: vec![format!(
                    "Neglect: seeing the child\n7-minute briefing\n\nHello Zoë,\n\nWhy it matters\nChildren must be <seen> and spoken to.\n\nTake these questions to supervision:\n- What did you see?\n- Who spoke to the child?\n\nWhen you have read it, please acknowledge it:\n{ACK}\n\n--\nSent by Northbridge to Zoë."
                )],
            }],
        },
        actions: vec![],
        reply: None,
        list: None,
        post: None,
    }
}
