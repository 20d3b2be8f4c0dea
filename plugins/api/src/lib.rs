//! The plugin ABI between the cascade engine (the *host*) and its channel
//! plugins: shared libraries loaded at run time.
//!
//! Rust has no stable ABI, so nothing Rust-specific crosses the boundary:
//! a C function table, plain pointers and lengths, and payloads as UTF-8
//! JSON. A plugin written in Rust implements [`ChannelPlugin`] and calls
//! [`export_plugin!`]; it writes no `unsafe`. A plugin in another language
//! implements the C contract below.
//!
//! # The C contract (ABI version 2)
//!
//! ```c
//! #include <stdint.h>
//! #include <stddef.h>
//!
//! /* Copies `len` bytes at `data` out of the callee before returning. */
//! typedef void (*cascade_write_fn)(void *ctx, const uint8_t *data, size_t len);
//!
//! typedef struct {
//!     void *ctx;                 /* pass back unchanged */
//!     cascade_write_fn emit;     /* an InboundEvent as JSON */
//!     cascade_write_fn log;      /* a LogLine as JSON */
//! } cascade_host_callbacks;
//!
//! typedef void (*cascade_call_fn)(void *instance, const uint8_t *request, size_t request_len,
//!                                 cascade_write_fn done, void *done_ctx);
//!
//! typedef struct {
//!     uint32_t abi_version;      /* must be 2; read before anything else */
//!     void  (*manifest)(cascade_write_fn out, void *out_ctx);
//!     void *(*start)(const uint8_t *config, size_t config_len,
//!                    cascade_host_callbacks host,
//!                    cascade_write_fn error_out, void *error_ctx);
//!     cascade_call_fn send;
//!     void  (*stop)(void *instance);
//!     cascade_call_fn webhook;   /* may be NULL: the plugin takes no webhooks */
//! } cascade_plugin_table;
//!
//! /* The one exported symbol. Returns a pointer valid for the life of the process. */
//! const cascade_plugin_table *cascade_plugin_entry(void);
//! ```
//!
//! - `manifest` writes the [`Manifest`] as JSON through `out`, exactly once.
//!   Writing nothing, or JSON that is not a manifest, makes the host refuse
//!   the library.
//! - `start` receives the instance's configuration as a JSON object (secrets
//!   already resolved by the host) and the host's callbacks. It returns an
//!   opaque instance pointer, or NULL after writing a UTF-8 reason through
//!   `error_out`. One library may be started several times (one instance per
//!   configured channel).
//! - `send` receives a [`SendRequest`] as JSON and returns at once. The plugin
//!   calls `done(done_ctx, result_json, len)` **exactly once**, from any
//!   thread, with a [`SendResult`]: later, or already inside `send` (so the
//!   host holds no lock across `send` that `done` needs). Many sends may be in
//!   flight at once; the plugin runs them on its own threads or runtime.
//!   `done_ctx` is opaque to the plugin; the host ignores an answer for a
//!   send it no longer waits for (timed out, or answered twice).
//! - `webhook` (version 2) receives a [`WebhookRequest`]: an HTTP request a
//!   provider made to the host's `/webhooks/{channel}` route. Like `send`
//!   it returns at once and calls `done` exactly once, with a
//!   [`WebhookResponse`] the host passes back to the provider. The plugin
//!   authenticates the request (a secret header, a signature): the host
//!   does not know how. A NULL `webhook` answers every such request 404.
//!   A plugin whose manifest also has the `webhook-headers` capability is
//!   first called with the headers only ([`WebhookRequest::body_pending`]
//!   set, `body` empty) and answers [`WebhookResponse::proceed`] (status
//!   100) to have the body read and the whole request sent in a second
//!   call, or any other response to refuse the request unread. Plugins
//!   without the capability only ever see whole requests.
//! - `emit` and `log` may be called from any thread between `start` and the
//!   return of `stop`. The host copies the bytes before returning.
//! - `stop` finishes or abandons in-flight work, completes every pending
//!   send, and frees the instance. The host calls nothing on the instance
//!   afterwards. Libraries are never unloaded.
//! - No function may unwind or throw across the boundary. Buffers passed to a
//!   callee are only borrowed for the duration of the call.
//!
//! The host refuses a table whose `abi_version` is not [`ABI_VERSION`].

mod export;
mod format;
mod in_flight;
mod messages;
pub mod sms;

#[doc(hidden)]
pub use export::shims as __shims;
pub use export::{ChannelPlugin, Completion, Host, WebhookReply};
pub use format::{Format, FormatName};
pub use in_flight::{AcceptedSend, InFlight};
pub use messages::*;

use std::ffi::c_void;

/// The version of the contract above. The host refuses any other.
/// Version 2 added `webhook` at the end of the table; the optional
/// `webhook-headers` capability changes no table, and a version 2 plugin
/// without it is called as before.
pub const ABI_VERSION: u32 = 2;

/// The name of the one symbol a plugin library exports.
pub const ENTRY_SYMBOL: &str = "cascade_plugin_entry";

/// Receives bytes from the other side, which keeps ownership of them.
pub type WriteFn = unsafe extern "C" fn(ctx: *mut c_void, data: *const u8, len: usize);

/// The host's callbacks, given to a plugin instance at start.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct HostCallbacks {
    pub ctx: *mut c_void,
    pub emit: WriteFn,
    pub log: WriteFn,
}

/// The table a plugin's entry symbol returns.
#[repr(C)]
pub struct PluginTable {
    pub abi_version: u32,
    pub manifest: unsafe extern "C" fn(out: WriteFn, out_ctx: *mut c_void),
    pub start: unsafe extern "C" fn(
        config: *const u8,
        config_len: usize,
        host: HostCallbacks,
        error_out: WriteFn,
        error_ctx: *mut c_void,
    ) -> *mut c_void,
    pub send: CallFn,
    pub stop: unsafe extern "C" fn(instance: *mut c_void),
    /// `None` (NULL) when the plugin takes no webhooks.
    pub webhook: Option<CallFn>,
}

/// A call with a JSON request answered once through `done`: `send` and
/// `webhook`.
pub type CallFn = unsafe extern "C" fn(
    instance: *mut c_void,
    request: *const u8,
    request_len: usize,
    done: WriteFn,
    done_ctx: *mut c_void,
);

/// The signature of the entry symbol.
pub type EntryFn = unsafe extern "C" fn() -> *const PluginTable;
