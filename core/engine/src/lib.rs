//! cascade's engine: loads and checks a project, plans rollouts, schedules
//! and dispatches deliveries through the plugin host, handles what comes
//! back from people (acknowledgements, answers, champions' confirmations,
//! chat commands) and builds reports. It works over the store traits and
//! the plugin host; the HTTP server and the command line sit on top of it.

pub mod ack;
pub mod buttons;
pub mod config;
pub mod delivery;
pub mod engine;
pub mod inbound;
pub mod link_code;
pub mod plan;
pub mod problems;
pub mod project;
pub mod report;
pub mod respond;
pub mod server_config;
