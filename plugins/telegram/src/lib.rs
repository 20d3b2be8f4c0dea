//! The `telegram` channel plugin: delivers rendered learning through a
//! Telegram bot (teloxide over the Bot API), with inline buttons, and
//! reports what people do in the bot's chats (button presses, commands,
//! typed answers) to the host as inbound events.
//!
//! Each instance owns a small tokio runtime: sends run on it, and so does
//! the update loop of long polling. In webhook mode Telegram posts updates
//! to cascade serve's `/webhooks/{channel}`, which hands them to `webhook`.
//!
//! Rooms, lowest first; each uses only those before it (`tests/layering.rs`
//! checks): `config` (what the operator writes), `format` (a send request
//! as Telegram messages; pure), `state` (waiting presses, pacing, posted
//! ids), `send` (posting, answering presses), `inbound` (updates as
//! events, by long polling or the webhook), `channel` (the `ChannelPlugin`
//! that starts and stops them).

mod channel;
mod config;
mod format;
mod inbound;
mod send;
mod state;

pub use channel::TelegramChannel;
pub use config::{TelegramConfig, Updates};
pub use format::{CALLBACK_DATA_LIMIT, MESSAGE_LIMIT};
pub use inbound::event_of;

cascade_plugin_api::export_plugin!(TelegramChannel);
