//! cascade: spreads safeguarding learning through a partnership of agencies
//! and proves that it landed. See ARCHITECTURE.md for the map.

pub mod ack;
#[doc(hidden)]
pub mod bench;
pub mod bounds;
pub mod cli;
pub mod config;
pub mod content;
pub mod delivery;
pub mod directory;
pub mod engine;
pub mod inbound;
pub mod plugins;
pub mod privacy;
pub mod private_file;
pub mod project;
pub mod render;
pub mod report;
pub mod rollout;
pub mod server;
pub mod store;

/// mimalloc for the engine's own allocations: dispatching spends a good
/// part of its CPU allocating and freeing message text, JSON and rows on
/// several threads, which glibc's malloc does more slowly. Plugins are
/// separate libraries and keep their own allocator; nothing allocated on
/// one side of the ABI is freed on the other.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;
