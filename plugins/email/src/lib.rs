//! The `email` channel plugin: sends each rendered message as a
//! multipart/alternative email (the host's `email-text` and `email-html`
//! renders) through pooled SMTP connections with lettre, several in flight
//! at once, and reports 2xx as delivered, 4xx and broken connections as
//! retries, 5xx as failures with the server's words.

mod channel;
mod config;
mod format;
mod send;

pub use channel::EmailChannel;
pub use format::{Sender, email, message_id};

cascade_plugin_api::export_plugin!(EmailChannel);
