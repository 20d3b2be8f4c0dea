//! The `file` channel plugin: writes each rendered message to a folder as
//! `<delivery_id>.json`, for dry runs, demos and tests, and can fail a share
//! of sends on purpose to exercise the engine's retries.

mod channel;
mod config;
mod faults;
mod format;
mod send;

pub use channel::FileChannel;
pub use send::deliver_to_dir;

cascade_plugin_api::export_plugin!(FileChannel);
