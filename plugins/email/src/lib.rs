//! The `email` channel plugin: sends each rendered message as a
//! multipart/alternative email (the host's `email-text` and `email-html`
//! renders) through pooled SMTP connections with lettre, several in flight
//! at once, and reports 2xx as delivered, 4xx and broken connections as
//! retries, 5xx as failures with the server's words.
//!
//! Rooms, lowest first; each uses only those before it (`tests/layering.rs`
//! checks): `config` (what the operator writes), `format` (a send request
//! as an email; pure), `state` (parked SMTP connections), `send` (the SMTP
//! exchange and what its reply means), `channel` (the `ChannelPlugin`:
//! runtime, concurrency, stop). Email has no `inbound`.

mod channel;
mod config;
mod format;
mod send;
mod state;

pub use channel::EmailChannel;
pub use format::{Sender, email, message_id};

cascade_plugin_api::export_plugin!(EmailChannel);
