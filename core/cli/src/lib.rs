//! cascade: spreads safeguarding learning through a partnership of agencies
//! and proves that it landed. This crate is the `cascade` command: it alone
//! parses arguments (clap), reports errors to people (anyhow), prints, and
//! chooses the global allocator. Everything it does, it asks of the crates
//! below it; ARCHITECTURE.md draws the graph.

mod backup;
#[doc(hidden)]
pub mod bench;
pub mod cli;
mod doctor;
mod evidence;
mod gdpr;
mod metrics;
pub mod output;
mod store_cmd;
mod teams_manifest;

/// mimalloc for the engine's own allocations: dispatching spends a good
/// part of its CPU allocating and freeing message text, JSON and rows on
/// several threads, which glibc's malloc does more slowly. Plugins are
/// separate libraries and keep their own allocator; nothing allocated on
/// one side of the ABI is freed on the other.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;
