//! cascade's model: what a partnership publishes (learning items), who it
//! reaches (the directory), how it rolls out (rollout definitions, their
//! calendars, waves and steps, and the audience as a query), typed ids and
//! kinds, time in the store's unit, secrets' sources and button-id signing.
//!
//! The bottom layer: it imports nothing of cascade, does no I/O beyond
//! reading the files it parses, and every other crate may use it.

pub mod actions;
pub mod bounds;
pub mod content;
pub mod directory;
pub mod private_file;
pub mod rollout;
pub mod secret;
pub mod time;
pub mod works;
