//! The JSON payloads that cross the boundary. Field names are the wire
//! format: change them only with a new ABI version.

use serde::{Deserialize, Serialize};

/// What a plugin is and can do.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Manifest {
    /// Unique among loaded plugins, e.g. `email`, `file`.
    pub name: String,
    pub version: String,
    /// Channel kinds the plugin delivers, e.g. `["email"]`.
    pub channels: Vec<String>,
    #[serde(default)]
    pub capabilities: Vec<Capability>,
    #[serde(default)]
    pub limits: Limits,
    /// A JSON Schema of the instance configuration, for documentation and checks.
    #[serde(default)]
    pub config_schema: serde_json::Value,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Capability {
    /// Messages can carry action buttons.
    Buttons,
    /// The plugin emits inbound events (button presses, commands).
    Inbound,
    /// Sent messages can be edited afterwards.
    Edit,
    /// The plugin receives provider webhooks through the host's HTTP server.
    Webhook,
}

/// Provider limits the host respects when dispatching.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Limits {
    /// Largest message, in UTF-16 code units.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_message_length: Option<usize>,
    /// Most sends the plugin wants in flight at once.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_in_flight: Option<usize>,
    /// Most sends a second the provider accepts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub per_second: Option<f64>,
}

/// One message to one person.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SendRequest {
    /// The delivery this send belongs to; unique per (person, step, channel).
    pub delivery_id: String,
    /// Stable across retries of the same delivery, for provider de-duplication.
    pub idempotency_key: String,
    /// The channel kind, one of the manifest's `channels`.
    pub channel: String,
    pub recipient: Recipient,
    pub message: Message,
    /// Buttons to offer, for plugins with the `buttons` capability.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub actions: Vec<Action>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Recipient {
    pub person_id: String,
    pub display_name: String,
    /// The channel address: an email address, a chat id.
    pub address: String,
}

/// A rendered message. `parts` holds one entry per format the channel uses
/// (email sends `email-html` and `email-text`); each part is split into
/// chunks within the channel's limit.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Message {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subject: Option<String>,
    pub parts: Vec<MessagePart>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MessagePart {
    /// The render channel, e.g. `email-html`, `telegram`.
    pub format: String,
    pub chunks: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Action {
    /// Opaque to the plugin; comes back in the inbound event.
    pub id: String,
    pub label: String,
}

/// How a send ended.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "outcome", rename_all = "kebab-case")]
pub enum SendResult {
    /// The provider accepted the message.
    Delivered {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        provider_id: Option<String>,
    },
    /// A transient failure: try again, after `retry_after_ms` when the
    /// provider said so.
    Retry {
        reason: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        retry_after_ms: Option<u64>,
    },
    /// A permanent failure: do not try this channel again for this message.
    Failed { reason: String },
}

/// Something a person did on a channel.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct InboundEvent {
    pub channel: String,
    /// The provider account that acted, e.g. a Telegram user id.
    pub account: String,
    #[serde(flatten)]
    pub kind: InboundKind,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "kebab-case")]
pub enum InboundKind {
    /// A button of a sent message was pressed.
    Action {
        action_id: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        delivery_id: Option<String>,
    },
    /// A bot command such as `/link 123456`.
    Command { name: String, args: Vec<String> },
}

/// A log line from a plugin, written into the host's log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogLine {
    pub level: LogLevel,
    pub message: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogLevel {
    Error,
    Warn,
    Info,
    Debug,
}
