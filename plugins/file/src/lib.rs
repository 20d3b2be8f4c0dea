//! The `file` channel plugin: writes each rendered message to a folder as
//! `<delivery_id>.json`, for dry runs, demos and tests, and can fail a share
//! of sends on purpose to exercise the engine's retries.

//!
//! Rooms, lowest first; each uses only those before it (`tests/layering.rs`
//! checks): `config` (what the operator writes), `format` (the file name
//! and the JSON document; pure), `state` (the count of sends, which picks
//! injected failures), `send` (the write, and the journal line),
//! `channel` (the `ChannelPlugin`: writer threads, stop). No `inbound`.

mod channel;
mod config;
mod format;
mod send;
mod state;

pub use channel::FileChannel;
pub use send::deliver_to_dir;

cascade_plugin_api::export_plugin!(FileChannel);
