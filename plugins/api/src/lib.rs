//! The plugin ABI between the cascade engine and its channel plugins.
//!
//! This crate is deliberately empty for now: the versioned C ABI, the JSON
//! message types and the `export_plugin!` macro arrive with the plugin-host
//! work. It exists so the workspace layout is final from the start.
