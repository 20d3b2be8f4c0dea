//! The `discord` channel plugin: delivers learning through a Discord bot as
//! direct messages (an embed per part, buttons to acknowledge), and reports
//! what people do through the gateway: button presses, the slash commands
//! `/pending`, `/link`, `/ack`, `/help`, and modals submitted for forms.

mod channel;
mod config;
mod format;
mod inbound;
mod ratelimit;
mod send;

pub use channel::DiscordChannel;

cascade_plugin_api::export_plugin!(DiscordChannel);
