//! The `notify` channel plugin: learning by email or text message through
//! GOV.UK Notify's REST API, with Notify's delivery receipts taken on
//! cascade's `/webhooks/{channel}`.
//!
//! Rooms, lowest first; each uses only those before it (`tests/layering.rs`
//! checks): `config` (what the operator writes), `format` (Notify's payload
//! from a request, SMS fragments, Notify's error body; pure), `state`
//! (pacing under Notify's limits, the journal of references sent), `send`
//! (the JWT, the look-up by reference, the send and Notify's answers),
//! `inbound` (the delivery-receipt callback), `channel` (the
//! `ChannelPlugin` that starts and stops them).

mod channel;
mod config;
mod format;
mod inbound;
mod send;
mod state;

pub use channel::NotifyChannel;
pub use format::{Encoding, fragments};

cascade_plugin_api::export_plugin!(NotifyChannel);
