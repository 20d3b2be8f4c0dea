//! Test plugin `test-wrong-abi`: a complete plugin whose table claims ABI
//! version 999, so the host must refuse it before calling anything in it.

use cascade_plugin_api::{ChannelPlugin, Completion, Host, Manifest, SendRequest, SendResult};

/// A `test-wrong-abi` instance; a correct host never starts one.
pub struct WrongAbiChannel;

impl ChannelPlugin for WrongAbiChannel {
    fn manifest() -> Manifest {
        Manifest {
            name: "test-wrong-abi".to_owned(),
            version: env!("CARGO_PKG_VERSION").to_owned(),
            channels: vec!["test".to_owned()],
            capabilities: Vec::new(),
            limits: Default::default(),
            config_schema: serde_json::Value::Null,
        }
    }

    fn start(_config: serde_json::Value, _host: Host) -> Result<Self, String> {
        Err(
            "test-wrong-abi must never be started: the host should refuse ABI version 999"
                .to_owned(),
        )
    }

    fn send(&self, _request: SendRequest, completion: Completion) {
        completion.complete(SendResult::Failed {
            reason: "test-wrong-abi cannot send".to_owned(),
            unreachable: false,
        });
    }
}

cascade_plugin_api::export_plugin!(WrongAbiChannel, abi_version = 999);
