//! Test plugin `test-raw`: written against the C table by hand, without the
//! safe trait, as a plugin in C would be; and misbehaving on request. A
//! delivery id starting `garbage` is answered with malformed JSON; `twice`
//! is answered twice; `noise` also emits a malformed inbound event and log
//! line. Anything else is answered as delivered.
//!
//! It is also the version-2 fixture: its table is the version-2 layout
//! (ending at `webhook`, no `start_v3`), which the host must keep loading.

use cascade_plugin_api::{ABI_VERSION_2, HostCallbacks, PluginTableV2, WriteFn};
use std::ffi::c_void;

const MANIFEST: &[u8] = br#"{"name":"test-raw","version":"0.1.0","channels":["test"]}"#;
const DELIVERED: &[u8] = br#"{"outcome":"delivered","provider_id":"raw"}"#;

/// The instance: the host's callbacks, kept for `emit` and `log`.
struct Instance {
    host: HostCallbacks,
}

unsafe extern "C" fn manifest(out: WriteFn, out_ctx: *mut c_void) {
    // SAFETY: the host passes a valid callback; the bytes are static.
    unsafe { out(out_ctx, MANIFEST.as_ptr(), MANIFEST.len()) }
}

unsafe extern "C" fn start(
    _config: *const u8,
    _config_len: usize,
    host: HostCallbacks,
    _error_out: WriteFn,
    _error_ctx: *mut c_void,
) -> *mut c_void {
    Box::into_raw(Box::new(Instance { host })).cast()
}

unsafe extern "C" fn send(
    instance: *mut c_void,
    request: *const u8,
    request_len: usize,
    done: WriteFn,
    done_ctx: *mut c_void,
) {
    // SAFETY: per the ABI, `instance` came from `start` and `request` points
    // to `request_len` bytes; the callbacks are valid.
    unsafe {
        let instance = &*instance.cast::<Instance>();
        let request = std::slice::from_raw_parts(request, request_len);
        let has = |marker: &[u8]| {
            let needle = [br#""delivery_id":""#.as_slice(), marker].concat();
            request.windows(needle.len()).any(|w| w == needle)
        };
        if has(b"garbage") {
            let junk = b"{not json";
            done(done_ctx, junk.as_ptr(), junk.len());
            return;
        }
        if has(b"noise") {
            let junk = b"[1,2";
            (instance.host.emit)(instance.host.ctx, junk.as_ptr(), junk.len());
            (instance.host.log)(instance.host.ctx, junk.as_ptr(), junk.len());
        }
        done(done_ctx, DELIVERED.as_ptr(), DELIVERED.len());
        if has(b"twice") {
            done(done_ctx, DELIVERED.as_ptr(), DELIVERED.len());
        }
    }
}

unsafe extern "C" fn stop(instance: *mut c_void) {
    // SAFETY: `instance` came from `start` and is stopped once.
    drop(unsafe { Box::from_raw(instance.cast::<Instance>()) });
}

static TABLE: PluginTableV2 = PluginTableV2 {
    abi_version: ABI_VERSION_2,
    manifest,
    start,
    send,
    stop,
    webhook: None,
};

/// The entry symbol, exactly as a C plugin would define it.
#[unsafe(no_mangle)]
pub extern "C" fn cascade_plugin_entry() -> *const PluginTableV2 {
    &TABLE
}
