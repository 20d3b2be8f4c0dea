//! What every chat channel plugin must do, written once.
//!
//! A chat plugin's test supplies its fake provider as a [`ChatProvider`]
//! (and, when the provider posts to cascade's `/webhooks/{channel}`, as a
//! [`WebhookProvider`]); each check here then loads the real plugin library
//! through the real plugin host (`cascade-plugin-host`), starts a channel
//! instance as `cascade serve` does (its secrets read from files), and
//! drives it with the requests the engine makes: learning rendered and split
//! by `cascade-render`, delivery ids and idempotency keys as the dispatcher
//! forms them, replies to events as the runner sends them, webhook posts
//! through `cascade-server`'s own router and accept loop. Every assertion
//! is on what reached the provider (the fake, which refuses what the real
//! provider refuses) and on what the host received back.
//!
//! The checks, each run by a plugin as its own test:
//!
//! - [`sends_a_message`]: one message arrives once, in the channel's markup,
//!   and the provider id names it.
//! - [`splits_long_text`]: a text the renderer splits arrives as that many
//!   messages in order, buttons only on the last; the same text unsplit
//!   fails without being retried and without half a message.
//! - [`buttons_come_back_as_actions`]: the buttons arrive on the last part
//!   with their labels and ids, and a press comes back as an action event
//!   from the presser's account, answered exactly once.
//! - [`retry_after_is_reported`]: the provider's "retry after" becomes a
//!   `Retry` with that wait, and the retry after it sends only what is
//!   missing.
//! - [`unreachable_is_reported`]: a person the provider refuses (blocked
//!   bot, closed DMs) is `Failed { unreachable: true }`; others still get
//!   their messages.
//! - [`edit_updates_the_message`]: the reply to a press shows its status
//!   on the pressed message, in place, with only the kept buttons, once.
//! - [`webhook_without_auth_is_refused`] (providers with webhooks): posts
//!   without or with wrong credentials are refused and become nothing; an
//!   authentic one becomes the event.
//! - [`no_webhook_is_taken`] (providers without webhooks): the channel's
//!   webhook route is 404 and emits nothing.
//!
//! This crate is test plumbing: only `[dev-dependencies]` may name it.

mod checks;
mod harness;

pub use checks::{
    buttons_come_back_as_actions, edit_updates_the_message, no_webhook_is_taken,
    retry_after_is_reported, sends_a_message, splits_long_text, unreachable_is_reported,
    webhook_without_auth_is_refused,
};
pub use harness::{Running, http_status, plugin_library};

/// The render the engine makes for a channel (its `formats`), which fixes
/// the markup of learning messages and the length the renderer splits at.
pub use cascade_render::Channel as Render;

/// A channel as an operator configures it against the fake: the
/// `[[channels]]` entry's `config` table and its secrets.
#[derive(Debug, Clone)]
pub struct ChannelSetup {
    /// The `config` table, pointed at the fake (its API URL).
    pub config: serde_json::Value,
    /// Configuration keys whose values are secrets, with the values: each
    /// is written to a file and named in `secrets = { key = { file = … } }`,
    /// so the host resolves it as it does for an operator.
    pub secrets: Vec<(String, String)>,
}

/// Someone the channel can reach.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Person {
    /// Their identity's address on this channel, where learning is sent
    /// (a Telegram chat id, a Discord user id).
    pub address: String,
    /// The provider account they act as, which inbound events carry.
    pub account: String,
}

/// A message as the provider holds it now (edits applied).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SentMessage {
    /// The provider's id of this one message.
    pub id: String,
    /// Everything the message shows as text (title, body, status line),
    /// as the provider displays it.
    pub text: String,
    /// Its buttons, in order.
    pub buttons: Vec<Button>,
}

/// A button on a message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Button {
    pub label: String,
    /// What a press sends back: the host's action id.
    pub data: String,
}

/// How a provider's post to the webhook is authenticated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Credentials {
    /// No credentials at all.
    Missing,
    /// Credentials, but not the channel's (another secret, a bad signature).
    Wrong,
    /// The channel's own.
    Valid,
}

/// A chat provider faked on loopback, as a chat plugin's conformance test
/// supplies it. The fake speaks the provider's real wire protocol and
/// refuses what the provider refuses; these are the levers and views the
/// checks need.
///
/// The checks run on the test's own runtime and never spawn these futures,
/// so they carry no `Send` bound.
#[allow(async_fn_in_trait)]
pub trait ChatProvider: Sized {
    /// The plugin's manifest name; its library is `cascade_plugin_<PLUGIN>`.
    const PLUGIN: &'static str;
    /// The render the engine sends learning to this channel in.
    const RENDER: Render;

    /// Whether what people do reaches the plugin only through cascade's
    /// `/webhooks/{channel}` (a Teams bot has no other way in). Every check
    /// then serves cascade's webhook routes and tells the fake where they
    /// are ([`ChatProvider::webhook_at`]) before the channel starts.
    const WEBHOOK_ONLY: bool = false;

    /// Starts the fake on a free loopback port.
    async fn start() -> Self;

    /// For a [`ChatProvider::WEBHOOK_ONLY`] provider: the URL of cascade's
    /// webhook route for the channel, where presses are to be posted.
    fn webhook_at(&self, url: &str) {
        let _ = url;
    }

    /// The channel configured against this fake.
    fn channel(&self) -> ChannelSetup;

    /// Person `n` (distinct people for distinct `n`).
    fn person(&self, n: u32) -> Person;

    /// Waits until a started plugin is connected for what people do
    /// (a gateway session), so a press is not lost before it is.
    async fn connected(&self) {}

    /// The messages the bot posted to `address`, oldest first.
    fn messages_to(&self, address: &str) -> Vec<SentMessage>;

    /// The provider accepts the next `after` message posts, then refuses
    /// one as rate limited, to be retried after `seconds`.
    fn refuse_with_retry_after(&self, after: usize, seconds: u32);

    /// The provider refuses messages to `address` as it does for a person
    /// who cannot be reached (blocked the bot, closed their DMs).
    fn make_unreachable(&self, address: &str);

    /// `person` presses the button carrying `data` on `message`; returns
    /// the provider's id of the press, which the event must carry.
    fn press(&self, person: &Person, message: &SentMessage, data: &str) -> String;

    /// How many times the provider accepted an answer to `press` (a
    /// callback query answered, an interaction responded to).
    fn answers_to(&self, press: &str) -> usize;
}

/// A provider that posts what people do to cascade's
/// `/webhooks/{channel}` route, where the plugin authenticates each post.
#[allow(async_fn_in_trait)]
pub trait WebhookProvider: ChatProvider {
    /// The channel in webhook mode, the provider posting to `url`.
    fn webhook_channel(&self, url: &str) -> ChannelSetup;

    /// `person` writes `text` to the bot, and the provider posts it to the
    /// webhook with `credentials`; returns the HTTP status of each post.
    async fn post_text(&self, person: &Person, text: &str, credentials: Credentials) -> Vec<u16>;
}
