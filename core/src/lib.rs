//! cascade: spreads safeguarding learning through a partnership of agencies
//! and proves that it landed. See ARCHITECTURE.md for the map.

pub mod ack;
#[doc(hidden)]
pub mod bench;
pub mod cli;
pub mod config;
pub mod content;
pub mod delivery;
pub mod directory;
pub mod engine;
pub mod inbound;
pub mod plugins;
pub mod privacy;
pub mod project;
pub mod render;
pub mod report;
pub mod rollout;
pub mod server;
pub mod store;
