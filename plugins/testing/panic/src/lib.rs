//! Test plugin `test-panic`: panics while sending any delivery whose id starts
//! with `panic` and delivers every other, to show a panic fails one request
//! only. Loading it writes `loaded` to `$CASCADE_TESTPLUGIN_LOADED_MARKER`.

use cascade_plugin_api::{ChannelPlugin, Completion, Host, Manifest, SendRequest, SendResult};

/// The environment variable naming the file a load of this library marks.
pub const LOADED_MARKER_VAR: &str = "CASCADE_TESTPLUGIN_LOADED_MARKER";

/// Runs when the dynamic loader maps the library, before the host can look up
/// any symbol: the marker file proves whether the host let any code run.
#[cfg(target_os = "linux")]
#[used]
#[unsafe(link_section = ".init_array")]
static MARK_LOADED: extern "C" fn() = mark_loaded;

#[cfg(target_os = "linux")]
extern "C" fn mark_loaded() {
    if let Some(path) = std::env::var_os(LOADED_MARKER_VAR) {
        // Nothing may unwind out of a constructor; a failed write shows up as
        // a missing marker in the test that asked for it.
        let _ = std::fs::write(path, "loaded");
    }
}

/// A `test-panic` instance; it keeps no state.
pub struct PanicChannel;

impl ChannelPlugin for PanicChannel {
    fn manifest() -> Manifest {
        Manifest {
            name: "test-panic".to_owned(),
            version: env!("CARGO_PKG_VERSION").to_owned(),
            channels: vec!["test".to_owned()],
            capabilities: Vec::new(),
            limits: Default::default(),
            config_schema: serde_json::Value::Null,
        }
    }

    fn start(_config: serde_json::Value, _host: Host) -> Result<Self, String> {
        Ok(PanicChannel)
    }

    fn send(&self, request: SendRequest, completion: Completion) {
        if request.delivery_id.starts_with("panic") {
            panic!("test-panic was asked to panic for {}", request.delivery_id);
        }
        completion.complete(SendResult::Delivered {
            provider_id: Some(request.delivery_id),
        });
    }
}

cascade_plugin_api::export_plugin!(PanicChannel);
