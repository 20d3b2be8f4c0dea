//! The `discord` channel plugin: delivers learning through a Discord bot as
//! direct messages (an embed per part, buttons to acknowledge), and reports
//! what people do through the gateway: button presses, the slash commands
//! `/pending`, `/link`, `/ack`, `/help`, and modals submitted for forms.
//!
//! Rooms, lowest first; each uses only those before it (`tests/layering.rs`
//! checks): `config` (what the operator writes), `format` (Discord's JSON
//! from the host's data; pure), `state` (waiting interactions, forms, DM
//! channels, posted parts, rate limits), `send` (REST calls: deliveries,
//! posts, answers), `inbound` (the gateway's interactions), `channel` (the
//! `ChannelPlugin` that starts and stops them).

mod channel;
mod config;
mod format;
mod inbound;
mod send;
mod state;

pub use channel::DiscordChannel;

cascade_plugin_api::export_plugin!(DiscordChannel);
