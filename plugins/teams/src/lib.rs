//! The `teams` channel plugin: a Microsoft Teams bot on the Bot Framework.
//! It delivers learning as Adaptive Cards in each person's one-to-one chat
//! with the bot (and posts with live counts in team channels), and reports
//! what people do from the activities Teams posts to cascade's
//! `/webhooks/{channel}`: card buttons, the champion's confirmation form,
//! and the commands `link`, `pending`, `ack`, `help`.
//!
//! Rooms, lowest first; each uses only those before it (`tests/layering.rs`
//! checks): `config` (what the operator writes), `format` (cards and
//! activities from the host's data and back; pure), `state` (the app
//! token, signing keys, pacing, conversations, sent cards, waiting
//! events), `send` (Bot Connector calls: deliveries, posts, answers),
//! `inbound` (the webhook: authentication and events), `channel` (the
//! `ChannelPlugin` that starts and stops them).

mod channel;
mod config;
mod format;
mod inbound;
mod send;
mod state;

pub use channel::TeamsChannel;

cascade_plugin_api::export_plugin!(TeamsChannel);
