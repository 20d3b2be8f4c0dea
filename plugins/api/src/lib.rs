//! The plugin ABI between the cascade engine (the *host*) and its channel
//! plugins: shared libraries loaded at run time.
//!
//! Rust has no stable ABI, so nothing Rust-specific crosses the boundary:
//! a C function table, plain pointers and lengths, and payloads as UTF-8
//! JSON. A plugin written in Rust implements [`ChannelPlugin`] and calls
//! [`export_plugin!`]; it writes no `unsafe`. A plugin in another language
//! implements the C contract below.
//!
//! # The C contract (ABI version 3)
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
//! /* Version 3: a synchronous request to the host (a HostRequest as JSON).
//!    Returns 0 and writes the answer's JSON through `out`, or returns
//!    nonzero and writes a reason in words. Blocks until the host answered. */
//! typedef int32_t (*cascade_host_call_fn)(void *ctx, const uint8_t *request, size_t request_len,
//!                                         cascade_write_fn out, void *out_ctx);
//!
//! typedef struct {
//!     void *ctx;                 /* pass back unchanged */
//!     cascade_write_fn emit;
//!     cascade_write_fn log;
//!     cascade_host_call_fn call;
//! } cascade_host_callbacks_v3;
//!
//! typedef void (*cascade_call_fn)(void *instance, const uint8_t *request, size_t request_len,
//!                                 cascade_write_fn done, void *done_ctx);
//!
//! typedef struct {
//!     uint32_t abi_version;      /* 2 or 3; read before anything else */
//!     void  (*manifest)(cascade_write_fn out, void *out_ctx);
//!     void *(*start)(const uint8_t *config, size_t config_len,
//!                    cascade_host_callbacks host,
//!                    cascade_write_fn error_out, void *error_ctx);
//!     cascade_call_fn send;
//!     void  (*stop)(void *instance);
//!     cascade_call_fn webhook;   /* may be NULL: the plugin takes no webhooks */
//!     /* Version 3 only; may be NULL (then `start` is called). */
//!     void *(*start_v3)(const uint8_t *config, size_t config_len,
//!                       const cascade_host_callbacks_v3 *host,
//!                       cascade_write_fn error_out, void *error_ctx);
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
//! - `start_v3` (version 3) is `start` with the version-3 callbacks, passed
//!   by pointer: the struct lives as long as the instance, so the plugin may
//!   keep the pointer or copy the struct. A host that speaks version 3 calls
//!   `start_v3` when the table has it, and `start` otherwise.
//! - `call` (version 3) answers a [`HostRequest`] synchronously:
//!   `emit_durable` returns 0 only after the host has written the event to
//!   its inbox in the store (a second event with the same
//!   [`InboundEvent::event_id`] from the same channel is stored once and
//!   handled once). Nonzero means it was **not** stored: do not tell the
//!   provider it arrived (answer its webhook with a 5xx, do not move a poll
//!   offset past it). `state_get`, `state_put` and `state_delete` keep small
//!   JSON values in a key-value store the host keeps for the channel
//!   instance, surviving restarts, each value with an optional lifetime
//!   (see [`HostRequest`]). `may_poll` asks for a turn to long-poll the
//!   provider: several hosts may run the same instance on one store, and
//!   only one of them at a time may poll (Telegram answers a second
//!   getUpdates with 409); a plugin that polls asks before each poll and
//!   keeps within the turn it is given. `call` may block on the store: call
//!   it from the plugin's own threads, never from inside `send`, `webhook`
//!   or `stop` on the host's calling thread.
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
//! - `emit`, `log` and `call` may be called from any thread between `start`
//!   and the return of `stop`. The host copies the bytes before returning.
//! - `stop` finishes or abandons in-flight work, completes every pending
//!   send, and frees the instance. The host calls nothing on the instance
//!   afterwards. Libraries are never unloaded.
//! - No function may unwind or throw across the boundary. Buffers passed to a
//!   callee are only borrowed for the duration of the call.
//!
//! ## What changed in version 3
//!
//! The table gained `start_v3` after `webhook`, and with it the host's
//! `call`: durable inbound events (`emit_durable`) and the plugin state
//! store. [`InboundEvent`] gained the optional `event_id` (the provider's
//! id of the update, press or activity), which keys the inbox. Nothing
//! else changed: a version-2 table is read only up to `webhook`, is started
//! with `start`, and its events (without `event_id`) are handled as before,
//! in memory. A Rust plugin built with [`export_plugin!`] gets `start_v3`
//! for free; on a version-2 host, [`Host::emit_durable`] falls back to
//! `emit` and the state methods to memory.
//!
//! `may_poll` was added to [`HostRequest`] later within version 3, with no
//! change to the table: a host that does not know it answers with an
//! error (serde's "unknown variant"), which [`Host::may_poll`] takes as a
//! turn without end, so the plugin polls as it did before.
//!
//! The host refuses a table whose `abi_version` is neither [`ABI_VERSION`]
//! nor [`ABI_VERSION_2`].

mod export;
mod format;
mod in_flight;
mod messages;
pub mod sms;

#[doc(hidden)]
pub use export::shims as __shims;
pub use export::{ChannelPlugin, Completion, Host, HostError, WebhookReply};
pub use format::{Format, FormatName};
pub use in_flight::{AcceptedSend, InFlight};
pub use messages::*;

use std::ffi::c_void;

/// The version of the contract above. The host also loads
/// [`ABI_VERSION_2`] plugins and refuses any other. Version 2 added
/// `webhook` at the end of the table; the optional `webhook-headers`
/// capability changes no table. Version 3 added `start_v3` and the host's
/// `call` (durable inbound, plugin state).
pub const ABI_VERSION: u32 = 3;

/// The previous version, still loaded: a table that ends at `webhook`.
pub const ABI_VERSION_2: u32 = 2;

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

/// A synchronous request to the host (version 3): a [`HostRequest`] as JSON
/// in, 0 and the answer's JSON out, or nonzero and a reason.
pub type HostCallFn = unsafe extern "C" fn(
    ctx: *mut c_void,
    request: *const u8,
    request_len: usize,
    out: WriteFn,
    out_ctx: *mut c_void,
) -> i32;

/// The host's callbacks in version 3, given by pointer to `start_v3`.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct HostCallbacksV3 {
    pub ctx: *mut c_void,
    pub emit: WriteFn,
    pub log: WriteFn,
    pub call: HostCallFn,
}

/// `start_v3`: `start` with the version-3 callbacks.
pub type StartV3Fn = unsafe extern "C" fn(
    config: *const u8,
    config_len: usize,
    host: *const HostCallbacksV3,
    error_out: WriteFn,
    error_ctx: *mut c_void,
) -> *mut c_void;

/// The table of a version-2 plugin: [`PluginTable`] without `start_v3`.
/// For plugins written by hand against version 2 (the host still loads
/// them) and for the host, which reads only this much of a version-2 table.
#[repr(C)]
pub struct PluginTableV2 {
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
    pub webhook: Option<CallFn>,
}

/// The table a plugin's entry symbol returns (version 3).
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
    /// Version 3: `start` with the host's `call`. `None` (NULL): the host
    /// calls `start`.
    pub start_v3: Option<StartV3Fn>,
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
