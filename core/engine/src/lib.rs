//! cascade's engine: loads and checks a project, plans rollouts, schedules
//! and dispatches deliveries through the plugin host, handles what comes
//! back from people (acknowledgements, answers, champions' confirmations,
//! chat commands) and builds reports. It works over the store traits and
//! the plugin host; the HTTP server and the command line sit on top of it.

pub mod ack;
pub mod config;
pub mod delivery;
pub mod engine;
pub mod inbound;
pub mod project;
pub mod report;
pub mod server_config;
