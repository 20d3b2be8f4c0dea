//! The JSON payloads that cross the boundary. Field names are the wire
//! format: change them only with a new ABI version.

use serde::{Deserialize, Serialize};

use crate::Format;

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
    /// With `webhook`: the plugin can authenticate a webhook request on its
    /// headers alone (a secret header), so the host asks it before reading
    /// the body and never reads the body of a refused request. See
    /// [`WebhookRequest::body_pending`].
    WebhookHeaders,
    /// Buttons can open a form at once (e.g. a Discord modal); see
    /// [`Action::form`]. Without it the host leads a conversation instead.
    Forms,
    /// Messages can be posted in a shared channel (a team's) and edited
    /// there: the plugin understands [`SendRequest::post`]. The host sends
    /// team posts only to plugins that say so, with `buttons` and `edit`.
    ChannelPosts,
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
    /// Set when this message answers an inbound event instead of delivering
    /// learning. `delivery_id` is then `reply-<n>`, no delivery; the message
    /// has one part of format [`Format::Text`] (plain text: the plugin
    /// escapes it for its markup) and goes to `recipient.address`, the
    /// event's `address`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reply: Option<Reply>,
    /// Set when the rollout lets people opt out (mandatory learning never
    /// does): email sends it as `List-Id` and `List-Unsubscribe` headers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub list: Option<MailingList>,
    /// Set when the message is a post in a shared channel (a team's)
    /// rather than a message to one person; only for plugins with the
    /// `buttons` and `edit` capabilities.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub post: Option<ChannelPost>,
}

/// A post in a shared channel that several people read and act on, such as
/// a team's channel. `recipient.address` is then the provider's channel id
/// and `recipient.person_id` is empty; `recipient.display_name` names the
/// team. Buttons on it are pressed by many people, each answered privately.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ChannelPost {
    /// A short plain-text line shown with the post and kept current by
    /// edits, e.g. "12 of 30 acknowledged". The plugin escapes it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<String>,
    /// The `provider_id` an earlier send of this post was delivered with:
    /// replace that message's text, status and buttons with this request's
    /// instead of posting again. A post delivered in several messages is
    /// edited in its last one, the one with the buttons.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub edit: Option<String>,
}

/// The list a message belongs to, for channels that can say so (RFC 2919
/// and RFC 2369 headers in email).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MailingList {
    /// A stable identifier, a dot-atom such as `learning.northbridge.example`.
    pub id: String,
    /// A short human-readable name, e.g. "Northbridge safeguarding learning".
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Where a person opts out: an `https:` or `mailto:` URL.
    pub unsubscribe_url: String,
}

/// How to answer an inbound event.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Reply {
    /// The [`InboundEvent::id`] answered.
    pub event_id: String,
    /// A short notice (at most 200 characters) for providers that answer a
    /// button press with one (Telegram's answerCallbackQuery text, a Discord
    /// ephemeral message).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub notice: Option<String>,
    /// For an answered button press: a line that replaces the buttons of the
    /// message the button was on, e.g. "Acknowledged on 21 November 2026".
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<String>,
    /// With `status`: buttons that stay on that message (a champion's
    /// "I've cascaded this" after acknowledging). Empty: none stay.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub keep_actions: Vec<Action>,
    /// Only the person should see the message (a Discord ephemeral reply);
    /// in a private chat every reply is private anyway.
    #[serde(default)]
    pub private: bool,
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
    pub format: Format,
    pub chunks: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Action {
    /// Opaque to the plugin; comes back in the inbound event. ASCII, at most
    /// 64 bytes, signed by the host, never personal data: fit to be
    /// Telegram callback data or a Discord custom id as it is.
    pub id: String,
    pub label: String,
    /// For plugins with the `forms` capability: pressing the button opens
    /// this form at once, and its submission comes back as an
    /// [`InboundKind::Form`] with this action's id. Other plugins report the
    /// press as an [`InboundKind::Action`] and the host asks step by step.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub form: Option<Form>,
}

/// A small form, e.g. a champion's cascade confirmation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Form {
    /// At most 45 characters (Discord's modal title limit).
    pub title: String,
    /// At most five fields.
    pub fields: Vec<FormField>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FormField {
    /// The key the submitted value comes back under.
    pub id: String,
    /// At most 45 characters.
    pub label: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub placeholder: Option<String>,
    /// A prefilled value.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<String>,
    #[serde(default)]
    pub required: bool,
    /// Longest accepted value, in characters.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_length: Option<u16>,
    /// Several lines of text (a note) rather than one.
    #[serde(default)]
    pub multiline: bool,
    /// What kind of value the field takes, for providers whose forms have
    /// typed inputs (a Teams Adaptive Card's date picker or choice list).
    /// Absent: free text. Plugins without typed inputs ignore it; the host
    /// checks every submitted value as text whatever the input was.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub input: Option<FieldInput>,
}

/// A typed form input (see [`FormField::input`]).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "kebab-case")]
pub enum FieldInput {
    /// A calendar date, submitted as `YYYY-MM-DD`.
    Date,
    /// A whole number, submitted as decimal digits.
    Number {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        min: Option<i64>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        max: Option<i64>,
    },
    /// One of `choices`, submitted as the chosen `value`.
    Choice { choices: Vec<FieldChoice> },
}

/// One choice of a [`FieldInput::Choice`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FieldChoice {
    pub value: String,
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
    Failed {
        reason: String,
        /// The address can no longer be reached on this channel at all (the
        /// person blocked the bot): the host marks the person's identity
        /// unreachable and uses their next channel from now on.
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        unreachable: bool,
    },
}

/// Something a person did on a channel.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct InboundEvent {
    pub channel: String,
    /// The provider account that acted, e.g. a Telegram user id.
    pub account: String,
    /// The plugin's id for this event, unique while it may be answered. The
    /// host answers every event that has one with a send whose
    /// [`SendRequest::reply`] carries it back; without one, no answer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// Where an answer goes (a chat id), as a [`Recipient::address`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub address: Option<String>,
    /// The provider's own id of what arrived, stable across its
    /// redeliveries (Telegram's `update_id`, a Discord interaction id, a
    /// Teams activity id, a Notify receipt id): with
    /// [`Host::emit_durable`](crate::Host::emit_durable) the host stores
    /// and handles each id once per channel. Absent from version-2 plugins;
    /// the host then makes one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub event_id: Option<String>,
    #[serde(flatten)]
    pub kind: InboundKind,
}

/// A request a version-3 plugin makes to the host through `call`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum HostRequest {
    /// Store the event in the host's inbox, then handle it. Answered
    /// `{"new": true}` only once it is stored (until then, the provider
    /// must not be told it arrived), or `{"new": false}` when its
    /// `event_id` was stored already, here or by another host sharing the
    /// store, which handles it. (Hosts before `new` answered `{}`: new.)
    EmitDurable { event: InboundEvent },
    /// The value kept under `key` for this channel instance, or `null`
    /// when there is none or it expired. Answered `{"value": ...}`.
    StateGet { key: String },
    /// Keeps `value` under `key` for this channel instance, replacing any
    /// value there, for `ttl_secs` seconds (absent: until deleted).
    /// Answered `{}`. Keys are at most 200 bytes, values 64 KiB of JSON.
    StatePut {
        key: String,
        value: serde_json::Value,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        ttl_secs: Option<u64>,
    },
    /// Forgets the value under `key`. Answered `{}`.
    StateDelete { key: String },
    /// Asks for a turn to long-poll the provider (Telegram's getUpdates),
    /// which only one process may do at a time: several hosts may share
    /// one store, each running the instance. Answered `{"poll": true}`,
    /// with `"for_ms"` when the turn ends (stop the poll by then and store
    /// nothing it brings after; ask again for the next), or, after waiting
    /// up to `wait_ms` for a turn, `{"poll": false}`: ask again. Asking
    /// also tells the host that the instance polls; a host gives turns only
    /// to instances that asked. Added within version 3: a host that does
    /// not know it answers with an error, and the plugin then polls as it
    /// would without it. See [`Host::may_poll`](crate::Host::may_poll).
    MayPoll {
        #[serde(default)]
        wait_ms: u64,
    },
}

/// The longest a [`HostRequest::MayPoll`] waits for a turn: well within
/// the time a plugin's `call` waits for any answer.
pub const POLL_WAIT_LIMIT_MS: u64 = 10_000;

/// The host's answer to [`HostRequest::MayPoll`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PollTurn {
    /// Poll now; with `Some`, for this long at most.
    Poll { within: Option<std::time::Duration> },
    /// Not now: another process polls, or nobody may yet. Ask again.
    NotNow,
}

/// The longest key [`HostRequest::StatePut`] accepts, in bytes.
pub const STATE_KEY_LIMIT: usize = 200;
/// The largest value [`HostRequest::StatePut`] accepts, as JSON bytes.
pub const STATE_VALUE_LIMIT: usize = 64 * 1024;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "kebab-case")]
pub enum InboundKind {
    /// A button of a sent message was pressed.
    Action {
        action_id: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        delivery_id: Option<String>,
    },
    /// A bot command such as `/link 123456`, without the slash. The host
    /// understands `start` and `link` (with a code), `pending`, `ack` (with
    /// an item id), `help` and `cancel`.
    Command { name: String, args: Vec<String> },
    /// Text typed in a private chat that is not a command: an answer in a
    /// conversation the host leads (a meeting date, a number present).
    Text { text: String },
    /// A submitted [`Form`], opened by the action `action_id`.
    Form {
        action_id: String,
        fields: std::collections::BTreeMap<String, String>,
    },
    /// The provider's delivery receipt for a message the plugin sent
    /// (GOV.UK Notify's callbacks): `account` is the address it went to.
    /// Only plugins whose provider reports receipts emit it; the host
    /// never answers it.
    Receipt {
        /// The [`SendRequest::idempotency_key`] the message was sent with.
        idempotency_key: String,
        status: ReceiptStatus,
    },
}

/// What became of a sent message, as a provider's receipt says.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ReceiptStatus {
    /// It reached the person's inbox or phone.
    Delivered,
    /// The address does not exist or refuses it for good: the host marks
    /// the address unreachable and uses the person's next channel.
    PermanentFailure,
    /// The inbox was full or the phone off for too long; no retry helps now.
    TemporaryFailure,
    /// The provider could not send it.
    TechnicalFailure,
}

/// A log line from a plugin, written into the host's log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogLine {
    pub level: LogLevel,
    pub message: String,
    /// Set when the line also says the channel stopped or resumed working
    /// while running (a gateway that refused the bot, say): the host then
    /// shows it down, with this line as the reason, in `/health`, `status`
    /// and the metrics, until a line says it is up again. Absent in plain
    /// log lines, and ignored by hosts that predate it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub channel: Option<ChannelHealth>,
}

/// A running channel's health, as a plugin reports it with a log line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ChannelHealth {
    Up,
    Down,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogLevel {
    Error,
    Warn,
    Info,
    Debug,
}

/// An HTTP request a provider made to the host's `/webhooks/{channel}`
/// route, handed to the channel's plugin (capability `webhook`). The plugin
/// authenticates it (a secret header, a signature); the host does not.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WebhookRequest {
    /// `POST`, `GET`, ...
    pub method: String,
    /// The path after `/webhooks/{channel}`: empty or starting with `/`.
    #[serde(default)]
    pub path: String,
    /// The query string without `?`, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub query: Option<String>,
    /// Header names in lowercase; repeated headers joined with `, `.
    #[serde(default)]
    pub headers: std::collections::BTreeMap<String, String>,
    /// The body as UTF-8 text (providers post JSON or forms; the host
    /// refuses a body that is not UTF-8).
    #[serde(default)]
    pub body: String,
    /// Set (for plugins with the `webhook-headers` capability) when the
    /// host has read the headers only and asks whether to read the body:
    /// `body` is empty. Answer [`WebhookResponse::proceed`] to have the body
    /// read and the request sent again in full, or the response that
    /// refuses it (the body is then never read). Absent in the full request,
    /// and in every request to a plugin without the capability.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub body_pending: bool,
}

impl WebhookRequest {
    /// A header's value, by name in any case.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .get(&name.to_ascii_lowercase())
            .map(String::as_str)
    }
}

/// The plugin's answer to a [`WebhookRequest`], sent back to the provider.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WebhookResponse {
    pub status: u16,
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub headers: std::collections::BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub body: String,
}

impl WebhookResponse {
    /// The status of [`WebhookResponse::proceed`].
    pub const PROCEED: u16 = 100;

    /// The answer to a request with `body_pending` that passed the header
    /// check: read the body and send the whole request (HTTP's 100 Continue,
    /// never passed on to the client).
    pub fn proceed() -> WebhookResponse {
        WebhookResponse {
            status: WebhookResponse::PROCEED,
            headers: Default::default(),
            body: String::new(),
        }
    }

    /// A response with a plain-text body.
    pub fn text(status: u16, body: impl Into<String>) -> WebhookResponse {
        WebhookResponse {
            status,
            headers: [(
                "content-type".to_owned(),
                "text/plain; charset=utf-8".to_owned(),
            )]
            .into(),
            body: body.into(),
        }
    }
}
