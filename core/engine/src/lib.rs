//! cascade's engine: loads and checks a project, plans rollouts, schedules
//! and dispatches deliveries through the plugin host, handles what comes
//! back from people (acknowledgements, answers, champions' confirmations,
//! chat commands) and builds reports. It works over the store traits and
//! the plugin host; the HTTP server and the command line sit on top of it.
//!
//! Modules, each using only those before it:
//! `ack`, `server_config`, `link_code`, `report`, `evidence` (no other module);
//! `config`; `project`; `directory_import` (directory files and what
//! they do to running rollouts); `buttons` (the chat buttons of a delivery);
//! `delivery`; `respond` (the acknowledgement service HTTP and chat share);
//! `inbound` (chat events); `problems`; `plan` (pure planning); `planner`
//! (planning's shell: files, store, plugin host); `bulletins` (recurring
//! bulletins' occurrences); `induction` (setting up the induction's
//! key items); `engine`
//! (the I/O shell: opening, planning, starting, the serve loop).

pub mod ack;
pub mod bulletins;
pub mod buttons;
pub mod config;
pub mod delivery;
pub mod directory_import;
pub mod engine;
pub mod evidence;
pub mod inbound;
pub mod induction;
pub mod link_code;
pub mod metrics;
pub mod plan;
pub mod planner;
pub mod problems;
pub mod project;
pub mod report;
pub mod respond;
pub mod retention;
pub mod serve_lock;
pub mod server_config;
