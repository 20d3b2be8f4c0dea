//! Test plugin `test-hang`: keeps every send's completion without answering,
//! so the host's send timeout can be tested. `stop` drops them, which answers
//! each one with a retry.

use cascade_plugin_api::{ChannelPlugin, Completion, Host, Manifest, SendRequest};
use std::sync::{Mutex, PoisonError};

/// A `test-hang` instance and the sends it is sitting on.
pub struct HangChannel {
    held: Mutex<Vec<Completion>>,
}

impl ChannelPlugin for HangChannel {
    fn manifest() -> Manifest {
        Manifest {
            name: "test-hang".to_owned(),
            version: env!("CARGO_PKG_VERSION").to_owned(),
            channels: vec!["test".to_owned()],
            capabilities: Vec::new(),
            limits: Default::default(),
            config_schema: serde_json::Value::Null,
        }
    }

    fn start(_config: serde_json::Value, _host: Host) -> Result<Self, String> {
        Ok(HangChannel {
            held: Mutex::new(Vec::new()),
        })
    }

    fn send(&self, _request: SendRequest, completion: Completion) {
        self.held
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(completion);
    }

    fn stop(&self) {
        self.held
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clear();
    }
}

cascade_plugin_api::export_plugin!(HangChannel);
