//! The safe side of the ABI for plugins written in Rust: implement
//! [`ChannelPlugin`], call [`export_plugin!`](crate::export_plugin), and the
//! shims here build the C table, move JSON across, and catch every panic.

use crate::{
    HostCallFn, HostCallbacks, HostCallbacksV3, HostRequest, InboundEvent, LogLevel, LogLine,
    Manifest, PollTurn, SendRequest, SendResult, WebhookRequest, WebhookResponse, WriteFn,
};
use std::any::Any;
use std::collections::HashMap;
use std::ffi::c_void;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

/// A channel plugin. One value is created per configured channel instance.
pub trait ChannelPlugin: Send + Sync + Sized + 'static {
    /// What the plugin is and can do.
    fn manifest() -> Manifest;

    /// Starts an instance with its configuration (secrets already resolved).
    /// An `Err` is shown to the operator, so say what to fix.
    fn start(config: serde_json::Value, host: Host) -> Result<Self, String>;

    /// Starts a send and returns at once. Call [`Completion::complete`]
    /// exactly once, from any thread, before or after `send` returns.
    /// Dropping it unanswered asks the host to retry; a panic fails the send.
    fn send(&self, request: SendRequest, completion: Completion);

    /// Answers an HTTP request a provider made to the host's
    /// `/webhooks/{channel}` route (for plugins with the `webhook`
    /// capability). Authenticate it first: the host passes on whatever
    /// arrives. Call [`WebhookReply::respond`] once, from any thread.
    fn webhook(&self, request: WebhookRequest, reply: WebhookReply) {
        let _ = request;
        reply.respond(WebhookResponse::text(404, "this channel takes no webhooks"));
    }

    /// For plugins with the `webhook-headers` capability: checks a webhook
    /// request on its headers alone, before the host reads its body
    /// (`request.body` is empty). `Err` refuses it with that response and
    /// the body is never read; `Ok` has the host read the body and call
    /// [`ChannelPlugin::webhook`] with the whole request, which must still
    /// authenticate it. Answer quickly: it runs on the host's call.
    fn check_webhook_headers(&self, request: &WebhookRequest) -> Result<(), WebhookResponse> {
        let _ = request;
        Ok(())
    }

    /// Finishes or abandons in-flight sends, answering each of them.
    fn stop(&self) {}
}

/// The host's callbacks, usable from any thread.
#[derive(Clone)]
pub struct Host {
    callbacks: HostCallbacks,
    /// The host's `call` (ABI version 3); `None` on a version-2 host.
    call: Option<HostCallFn>,
    /// On a version-2 host: the plugin state, kept in memory instead.
    memory: Arc<Mutex<MemoryState>>,
}

/// Plugin state kept in memory on a version-2 host: value and expiry, by key.
type MemoryState = HashMap<String, (serde_json::Value, Option<Instant>)>;

/// A request to the host that did not succeed: for `emit_durable`, the
/// event was not stored, so the provider must not be told it arrived.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostError(pub String);

impl std::fmt::Display for HostError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for HostError {}

// SAFETY: the ABI contract requires the host's callbacks to be callable from
// any thread for as long as the instance runs.
unsafe impl Send for Host {}
unsafe impl Sync for Host {}

impl Host {
    fn new(callbacks: HostCallbacks, call: Option<HostCallFn>) -> Host {
        Host {
            callbacks,
            call,
            memory: Arc::default(),
        }
    }

    /// Whether the host stores inbound events and plugin state durably
    /// (it speaks ABI version 3). Without it, [`Host::emit_durable`] is
    /// [`Host::emit`] and the state lives in this process's memory.
    pub fn is_durable(&self) -> bool {
        self.call.is_some()
    }

    /// Reports something a person did and returns once the host has stored
    /// it, keyed by its [`InboundEvent::event_id`] (give the provider's id:
    /// a redelivery of a stored id is not handled again). Only on `Ok` may
    /// the provider be told it arrived (a 200 to its webhook, a poll offset
    /// past it). Blocks on the host's store: call it from the plugin's own
    /// threads. On a version-2 host it emits and returns `Ok`.
    pub fn emit_durable(&self, event: &InboundEvent) -> Result<(), HostError> {
        self.emit_durable_new(event).map(drop)
    }

    /// [`Host::emit_durable`], saying whether this call stored the event:
    /// `false` when its id was stored already, by this host before (a
    /// provider's redelivery) or by another host sharing the store (several
    /// `cascade serve`s, each connected to a provider that gives every
    /// connection every event, as Discord's gateway gives each session of
    /// a shard). The host handles a stored event once, in the process that
    /// stored it: a plugin that answers the provider for the host (an
    /// interaction's first response) answers only events it stored. A
    /// version-2 host, and one that does not say, store every event anew.
    pub fn emit_durable_new(&self, event: &InboundEvent) -> Result<bool, HostError> {
        if self.call.is_none() {
            self.emit(event);
            return Ok(true);
        }
        let answer = self.request(&HostRequest::EmitDurable {
            event: event.clone(),
        })?;
        Ok(answer
            .get("new")
            .and_then(serde_json::Value::as_bool)
            .unwrap_or(true))
    }

    /// The value kept under `key` for this channel instance, if any and
    /// not expired.
    pub fn state_get(&self, key: &str) -> Result<Option<serde_json::Value>, HostError> {
        if self.call.is_none() {
            let mut memory = self.memory.lock().unwrap_or_else(PoisonError::into_inner);
            let now = Instant::now();
            memory.retain(|_, (_, until)| until.is_none_or(|until| until > now));
            return Ok(memory.get(key).map(|(value, _)| value.clone()));
        }
        let answer = self.request(&HostRequest::StateGet {
            key: key.to_owned(),
        })?;
        Ok(match answer.get("value") {
            None | Some(serde_json::Value::Null) => None,
            Some(value) => Some(value.clone()),
        })
    }

    /// Keeps `value` under `key` for this channel instance, surviving
    /// restarts, for `ttl` (`None`: until deleted).
    pub fn state_put(
        &self,
        key: &str,
        value: &serde_json::Value,
        ttl: Option<Duration>,
    ) -> Result<(), HostError> {
        if self.call.is_none() {
            let until = ttl.map(|ttl| Instant::now() + ttl);
            self.memory
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .insert(key.to_owned(), (value.clone(), until));
            return Ok(());
        }
        self.request(&HostRequest::StatePut {
            key: key.to_owned(),
            value: value.clone(),
            ttl_secs: ttl.map(|ttl| ttl.as_secs().max(1)),
        })
        .map(drop)
    }

    /// Forgets the value under `key`.
    pub fn state_delete(&self, key: &str) -> Result<(), HostError> {
        if self.call.is_none() {
            self.memory
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .remove(key);
            return Ok(());
        }
        self.request(&HostRequest::StateDelete {
            key: key.to_owned(),
        })
        .map(drop)
    }

    /// Asks for a turn to long-poll the provider, waiting up to `wait`
    /// (at most [`POLL_WAIT_LIMIT_MS`](crate::POLL_WAIT_LIMIT_MS)) for one;
    /// see [`HostRequest::MayPoll`]. Blocks: call it from the plugin's own
    /// threads. On a host without turns (version 2, or one that does not
    /// know the request) it is always a turn without an end; `Err` only
    /// when a host that knows the request failed to answer.
    pub fn may_poll(&self, wait: Duration) -> Result<PollTurn, HostError> {
        if self.call.is_none() {
            return Ok(PollTurn::Poll { within: None });
        }
        let wait_ms = u64::try_from(wait.as_millis())
            .unwrap_or(u64::MAX)
            .min(crate::POLL_WAIT_LIMIT_MS);
        let answer = match self.request(&HostRequest::MayPoll { wait_ms }) {
            Ok(answer) => answer,
            // An older host cannot read the request: it gives no turns.
            Err(HostError(reason)) if reason.contains("unknown variant") => {
                return Ok(PollTurn::Poll { within: None });
            }
            Err(error) => return Err(error),
        };
        Ok(
            match answer.get("poll").and_then(serde_json::Value::as_bool) {
                Some(true) => PollTurn::Poll {
                    within: answer
                        .get("for_ms")
                        .and_then(serde_json::Value::as_u64)
                        .map(Duration::from_millis),
                },
                _ => PollTurn::NotNow,
            },
        )
    }

    fn request(&self, request: &HostRequest) -> Result<serde_json::Value, HostError> {
        let call = self
            .call
            .ok_or_else(|| HostError("the host does not take requests".to_owned()))?;
        let json = serde_json::to_vec(request).expect("host requests are plain data");
        let mut out: Vec<u8> = Vec::new();
        // SAFETY: the host promised `call` for the instance's life; `collect`
        // only copies into `out`, which outlives the call.
        let status = unsafe {
            call(
                self.callbacks.ctx,
                json.as_ptr(),
                json.len(),
                collect,
                (&raw mut out).cast(),
            )
        };
        if status != 0 {
            let reason = String::from_utf8_lossy(&out).trim().to_owned();
            return Err(HostError(if reason.is_empty() {
                "the host refused the request without a reason".to_owned()
            } else {
                reason
            }));
        }
        if out.is_empty() {
            return Ok(serde_json::Value::Object(Default::default()));
        }
        serde_json::from_slice(&out)
            .map_err(|e| HostError(format!("the host answered with malformed JSON: {e}")))
    }

    /// Reports something a person did (a button press, a command), kept in
    /// memory only: lost if the host stops before handling it. Prefer
    /// [`Host::emit_durable`].
    pub fn emit(&self, event: &InboundEvent) {
        let json = serde_json::to_vec(event).expect("inbound events are plain data");
        // SAFETY: the host promised `emit` accepts any bytes for the instance's life.
        unsafe { (self.callbacks.emit)(self.callbacks.ctx, json.as_ptr(), json.len()) }
    }

    /// Writes a line into the host's log. Never log secrets or message content.
    pub fn log(&self, level: LogLevel, message: impl Into<String>) {
        self.write_log(LogLine {
            level,
            message: message.into(),
            channel: None,
        });
    }

    /// Logs `reason` as an error and tells the host the channel has stopped
    /// working while running (it shows it down, with `reason`, until
    /// [`Host::channel_up`]). `reason` is for a person: say what to change.
    pub fn channel_down(&self, reason: impl Into<String>) {
        self.write_log(LogLine {
            level: LogLevel::Error,
            message: reason.into(),
            channel: Some(crate::ChannelHealth::Down),
        });
    }

    /// Logs `message` and tells the host the channel works again.
    pub fn channel_up(&self, message: impl Into<String>) {
        self.write_log(LogLine {
            level: LogLevel::Info,
            message: message.into(),
            channel: Some(crate::ChannelHealth::Up),
        });
    }

    fn write_log(&self, line: LogLine) {
        let json = serde_json::to_vec(&line).expect("log lines are plain data");
        // SAFETY: as for `emit`.
        unsafe { (self.callbacks.log)(self.callbacks.ctx, json.as_ptr(), json.len()) }
    }
}

/// The answer to one send. Answering twice is impossible; dropping it
/// unanswered answers with a retry, or with a failure during a panic.
pub struct Completion {
    done: WriteFn,
    ctx: usize,
    answered: bool,
}

impl Completion {
    pub fn complete(mut self, result: SendResult) {
        self.answer(&result);
    }

    fn answer(&mut self, result: &SendResult) {
        if std::mem::replace(&mut self.answered, true) {
            return;
        }
        let json = serde_json::to_vec(result).expect("send results are plain data");
        // SAFETY: the host gave `done` and `ctx` for exactly one call, made here.
        unsafe { (self.done)(self.ctx as *mut c_void, json.as_ptr(), json.len()) }
    }
}

impl Drop for Completion {
    fn drop(&mut self) {
        if !self.answered {
            // A panic is a bug in the plugin: retrying would panic again. A
            // drop without one usually means the instance is shutting down,
            // so the message may well go through on a later attempt.
            let result = if std::thread::panicking() {
                SendResult::Failed {
                    reason: "the plugin panicked while sending".to_owned(),
                    unreachable: false,
                }
            } else {
                SendResult::Retry {
                    reason: "the plugin dropped the send without answering".to_owned(),
                    retry_after_ms: None,
                }
            };
            self.answer(&result);
        }
    }
}

/// The answer to one webhook request. Dropping it unanswered answers 503
/// (the provider tries again later), or 500 during a panic.
pub struct WebhookReply {
    done: WriteFn,
    ctx: usize,
    answered: bool,
}

impl WebhookReply {
    pub fn respond(mut self, response: WebhookResponse) {
        self.answer(&response);
    }

    fn answer(&mut self, response: &WebhookResponse) {
        if std::mem::replace(&mut self.answered, true) {
            return;
        }
        let json = serde_json::to_vec(response).expect("webhook responses are plain data");
        // SAFETY: the host gave `done` and `ctx` for exactly one call, made here.
        unsafe { (self.done)(self.ctx as *mut c_void, json.as_ptr(), json.len()) }
    }
}

impl Drop for WebhookReply {
    fn drop(&mut self) {
        if !self.answered {
            let response = if std::thread::panicking() {
                WebhookResponse::text(500, "the channel failed to handle the request")
            } else {
                WebhookResponse::text(503, "the channel is not taking requests now")
            };
            self.answer(&response);
        }
    }
}

/// Collects bytes the host writes during a synchronous call.
unsafe extern "C" fn collect(ctx: *mut c_void, data: *const u8, len: usize) {
    if ctx.is_null() || data.is_null() || len == 0 {
        return;
    }
    // SAFETY: `ctx` is the `Vec<u8>` passed for this call, alive until it
    // returns; `data` points to `len` bytes per the ABI.
    unsafe {
        (*ctx.cast::<Vec<u8>>()).extend_from_slice(std::slice::from_raw_parts(data, len));
    }
}

fn panic_message(payload: &(dyn Any + Send)) -> String {
    payload
        .downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "a panic without a message".to_owned())
}

/// The generic shims `export_plugin!` puts in the table. Not for direct use.
#[doc(hidden)]
pub mod shims {
    use super::*;

    fn write(out: WriteFn, ctx: *mut c_void, bytes: &[u8]) {
        // SAFETY: `out` borrows the bytes for the call only, per the contract.
        unsafe { out(ctx, bytes.as_ptr(), bytes.len()) }
    }

    /// # Safety
    /// `out` must be a valid write callback for `out_ctx`.
    pub unsafe extern "C" fn manifest<P: ChannelPlugin>(out: WriteFn, out_ctx: *mut c_void) {
        if let Ok(Ok(json)) = catch_unwind(|| serde_json::to_vec(&P::manifest())) {
            write(out, out_ctx, &json);
        }
    }

    /// # Safety
    /// `config` must point to `config_len` readable bytes; `error_out` must be
    /// a valid write callback for `error_ctx`.
    pub unsafe extern "C" fn start<P: ChannelPlugin>(
        config: *const u8,
        config_len: usize,
        host: HostCallbacks,
        error_out: WriteFn,
        error_ctx: *mut c_void,
    ) -> *mut c_void {
        // SAFETY: guaranteed by the caller.
        unsafe {
            start_with::<P>(
                config,
                config_len,
                Host::new(host, None),
                error_out,
                error_ctx,
            )
        }
    }

    /// # Safety
    /// As for [`start`]; `host` must point to callbacks valid for the
    /// instance's life (or be null, which fails the start).
    pub unsafe extern "C" fn start_v3<P: ChannelPlugin>(
        config: *const u8,
        config_len: usize,
        host: *const HostCallbacksV3,
        error_out: WriteFn,
        error_ctx: *mut c_void,
    ) -> *mut c_void {
        if host.is_null() {
            write(
                error_out,
                error_ctx,
                b"start_v3 was called without the host's callbacks",
            );
            return std::ptr::null_mut();
        }
        // SAFETY: not null, checked above; valid per the caller.
        let host = unsafe { *host };
        let callbacks = HostCallbacks {
            ctx: host.ctx,
            emit: host.emit,
            log: host.log,
        };
        // SAFETY: guaranteed by the caller.
        unsafe {
            start_with::<P>(
                config,
                config_len,
                Host::new(callbacks, Some(host.call)),
                error_out,
                error_ctx,
            )
        }
    }

    /// # Safety
    /// As for [`start`].
    unsafe fn start_with<P: ChannelPlugin>(
        config: *const u8,
        config_len: usize,
        host: Host,
        error_out: WriteFn,
        error_ctx: *mut c_void,
    ) -> *mut c_void {
        // SAFETY: guaranteed by the caller.
        let config = unsafe { bytes(config, config_len) };
        let outcome = catch_unwind(AssertUnwindSafe(|| {
            let config: serde_json::Value = serde_json::from_slice(config)
                .map_err(|e| format!("the configuration is not valid JSON: {e}"))?;
            P::start(config, host)
        }));
        let reason = match outcome {
            Ok(Ok(plugin)) => return Box::into_raw(Box::new(plugin)).cast(),
            Ok(Err(reason)) => reason,
            Err(panic) => format!(
                "the plugin panicked while starting: {}",
                panic_message(&*panic)
            ),
        };
        write(error_out, error_ctx, reason.as_bytes());
        std::ptr::null_mut()
    }

    /// # Safety
    /// `instance` must come from `start::<P>` and not be stopped; `request`
    /// must point to `request_len` readable bytes; `done` must be a valid write
    /// callback for `done_ctx`, callable once from any thread.
    pub unsafe extern "C" fn send<P: ChannelPlugin>(
        instance: *mut c_void,
        request: *const u8,
        request_len: usize,
        done: WriteFn,
        done_ctx: *mut c_void,
    ) {
        let completion = Completion {
            done,
            ctx: done_ctx as usize,
            answered: false,
        };
        if instance.is_null() {
            return completion.complete(SendResult::Failed {
                reason: "send was called without a started instance".to_owned(),
                unreachable: false,
            });
        }
        // SAFETY: guaranteed by the caller; not null, checked above.
        let (plugin, request) = unsafe { (&*instance.cast::<P>(), bytes(request, request_len)) };
        let _ = catch_unwind(AssertUnwindSafe(move || {
            match serde_json::from_slice::<SendRequest>(request) {
                Ok(request) => plugin.send(request, completion),
                Err(e) => completion.complete(SendResult::Failed {
                    reason: format!("the plugin could not read the send request: {e}"),
                    unreachable: false,
                }),
            }
        }));
    }

    /// # Safety
    /// As for [`send`].
    pub unsafe extern "C" fn webhook<P: ChannelPlugin>(
        instance: *mut c_void,
        request: *const u8,
        request_len: usize,
        done: WriteFn,
        done_ctx: *mut c_void,
    ) {
        let reply = WebhookReply {
            done,
            ctx: done_ctx as usize,
            answered: false,
        };
        if instance.is_null() {
            return reply.respond(WebhookResponse::text(503, "the channel is not started"));
        }
        // SAFETY: guaranteed by the caller; not null, checked above.
        let (plugin, request) = unsafe { (&*instance.cast::<P>(), bytes(request, request_len)) };
        let _ = catch_unwind(AssertUnwindSafe(move || {
            match serde_json::from_slice::<WebhookRequest>(request) {
                Ok(request) if request.body_pending => {
                    match plugin.check_webhook_headers(&request) {
                        Ok(()) => reply.respond(WebhookResponse::proceed()),
                        Err(refusal) => reply.respond(refusal),
                    }
                }
                Ok(request) => plugin.webhook(request, reply),
                Err(_) => reply.respond(WebhookResponse::text(400, "unreadable request")),
            }
        }));
    }

    /// # Safety
    /// `instance` must come from `start::<P>`; it is freed here.
    pub unsafe extern "C" fn stop<P: ChannelPlugin>(instance: *mut c_void) {
        if instance.is_null() {
            return;
        }
        let _ = catch_unwind(AssertUnwindSafe(|| {
            // SAFETY: the instance was made by `start::<P>` and is stopped once.
            let plugin = unsafe { Box::from_raw(instance.cast::<P>()) };
            plugin.stop();
        }));
    }

    /// # Safety
    /// `ptr` must point to `len` readable bytes, or `len` must be 0.
    unsafe fn bytes<'a>(ptr: *const u8, len: usize) -> &'a [u8] {
        if len == 0 || ptr.is_null() {
            &[]
        } else {
            // SAFETY: guaranteed by the caller.
            unsafe { std::slice::from_raw_parts(ptr, len) }
        }
    }
}

/// Exports a [`ChannelPlugin`] as this library's entry symbol.
///
/// ```text
/// struct MyChannel;
/// impl cascade_plugin_api::ChannelPlugin for MyChannel { /* ... */ }
/// cascade_plugin_api::export_plugin!(MyChannel);
/// ```
#[macro_export]
macro_rules! export_plugin {
    ($plugin:ty) => {
        $crate::export_plugin!($plugin, abi_version = $crate::ABI_VERSION);
    };
    // Another version number exists only to test the host's version check.
    ($plugin:ty, abi_version = $version:expr) => {
        #[unsafe(no_mangle)]
        pub extern "C" fn cascade_plugin_entry() -> *const $crate::PluginTable {
            static TABLE: $crate::PluginTable = $crate::PluginTable {
                abi_version: $version,
                manifest: $crate::__shims::manifest::<$plugin>,
                start: $crate::__shims::start::<$plugin>,
                send: $crate::__shims::send::<$plugin>,
                stop: $crate::__shims::stop::<$plugin>,
                webhook: Some($crate::__shims::webhook::<$plugin>),
                start_v3: Some($crate::__shims::start_v3::<$plugin>),
            };
            &TABLE
        }
    };
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;

    /// Answers written by completions in these tests, by context value.
    static ANSWERS: Mutex<Vec<(usize, String)>> = Mutex::new(Vec::new());

    unsafe extern "C" fn record(ctx: *mut c_void, data: *const u8, len: usize) {
        // SAFETY: `data` points to `len` bytes for the call.
        let bytes = unsafe { std::slice::from_raw_parts(data, len) };
        ANSWERS
            .lock()
            .unwrap()
            .push((ctx as usize, String::from_utf8(bytes.to_vec()).unwrap()));
    }

    fn completion(ctx: usize) -> Completion {
        Completion {
            done: record,
            ctx,
            answered: false,
        }
    }

    fn answers_for(ctx: usize) -> Vec<String> {
        let answers = ANSWERS.lock().unwrap();
        answers
            .iter()
            .filter(|(c, _)| *c == ctx)
            .map(|(_, a)| a.clone())
            .collect()
    }

    #[test]
    fn a_completion_answers_exactly_once() {
        completion(1).complete(SendResult::Delivered {
            provider_id: Some("m-1".to_owned()),
        });
        assert_eq!(
            answers_for(1),
            [r#"{"outcome":"delivered","provider_id":"m-1"}"#]
        );
    }

    #[test]
    fn a_completion_dropped_unanswered_asks_for_a_retry() {
        drop(completion(2));
        assert_eq!(
            answers_for(2),
            [r#"{"outcome":"retry","reason":"the plugin dropped the send without answering"}"#]
        );
    }

    #[test]
    fn a_completion_dropped_by_a_panic_says_the_plugin_panicked() {
        let c = completion(3);
        let _ = catch_unwind(AssertUnwindSafe(move || {
            let _owned = c;
            panic!("boom");
        }));
        assert_eq!(
            answers_for(3),
            [r#"{"outcome":"failed","reason":"the plugin panicked while sending"}"#]
        );
    }

    /// Takes webhooks that carry `x-key: k`, checked on the headers too.
    struct Gate;

    impl ChannelPlugin for Gate {
        fn manifest() -> Manifest {
            unreachable!("not asked in these tests")
        }

        fn start(_: serde_json::Value, _: Host) -> Result<Gate, String> {
            Ok(Gate)
        }

        fn send(&self, _: SendRequest, completion: Completion) {
            drop(completion);
        }

        fn webhook(&self, request: WebhookRequest, reply: WebhookReply) {
            reply.respond(WebhookResponse::text(200, request.body));
        }

        fn check_webhook_headers(&self, request: &WebhookRequest) -> Result<(), WebhookResponse> {
            match request.header("x-key") {
                Some("k") => Ok(()),
                _ => Err(WebhookResponse::text(401, "unauthorized")),
            }
        }
    }

    fn webhook_answer(ctx: usize, request: &str) -> serde_json::Value {
        let mut gate = Gate;
        // SAFETY: `gate` outlives the call; `record` accepts any context.
        unsafe {
            shims::webhook::<Gate>(
                (&mut gate as *mut Gate).cast(),
                request.as_ptr(),
                request.len(),
                record,
                ctx as *mut c_void,
            )
        };
        let answers = answers_for(ctx);
        assert_eq!(answers.len(), 1, "{answers:?}");
        serde_json::from_str(&answers[0]).unwrap()
    }

    #[test]
    fn a_webhook_with_its_body_pending_is_judged_on_its_headers_alone() {
        let refused = webhook_answer(
            4,
            r#"{"method":"POST","headers":{"x-key":"wrong"},"body_pending":true}"#,
        );
        assert_eq!(refused["status"], 401);
        let proceed = webhook_answer(
            5,
            r#"{"method":"POST","headers":{"x-key":"k"},"body_pending":true}"#,
        );
        assert_eq!(proceed["status"], WebhookResponse::PROCEED);
        let whole = webhook_answer(
            6,
            r#"{"method":"POST","headers":{"x-key":"k"},"body":"hi"}"#,
        );
        assert_eq!(
            (&whole["status"], &whole["body"]),
            (&200.into(), &"hi".into())
        );
    }

    #[test]
    fn a_whole_webhook_request_does_not_say_body_pending_on_the_wire() {
        let request = WebhookRequest {
            method: "POST".to_owned(),
            path: String::new(),
            query: None,
            headers: Default::default(),
            body: "{}".to_owned(),
            body_pending: false,
        };
        let json = serde_json::to_string(&request).unwrap();
        assert!(!json.contains("body_pending"), "{json}");
    }

    #[test]
    fn on_a_version_2_host_emit_durable_emits_and_state_lives_in_memory() {
        let host = Host::new(
            HostCallbacks {
                ctx: 7 as *mut c_void,
                emit: record,
                log: record,
            },
            None,
        );
        assert!(!host.is_durable());
        let event = InboundEvent {
            channel: "test".to_owned(),
            account: "a".to_owned(),
            id: None,
            address: None,
            event_id: Some("u-1".to_owned()),
            kind: crate::InboundKind::Text {
                text: "hi".to_owned(),
            },
        };
        host.emit_durable(&event).unwrap();
        assert_eq!(answers_for(7).len(), 1);
        let value = serde_json::json!([1, 2]);
        host.state_put("posted:k", &value, None).unwrap();
        host.state_put("gone", &value, Some(Duration::ZERO))
            .unwrap();
        assert_eq!(host.state_get("posted:k").unwrap(), Some(value));
        assert_eq!(host.state_get("gone").unwrap(), None);
        host.state_delete("posted:k").unwrap();
        assert_eq!(host.state_get("posted:k").unwrap(), None);
    }

    /// What the fake host's `call` answers next: status and bytes; and
    /// the requests it was asked.
    static CALLED: Mutex<(i32, String, Vec<String>)> = Mutex::new((0, String::new(), Vec::new()));

    unsafe extern "C" fn fake_call(
        _ctx: *mut c_void,
        request: *const u8,
        request_len: usize,
        out: WriteFn,
        out_ctx: *mut c_void,
    ) -> i32 {
        // SAFETY: the request is borrowed for the call.
        let request = unsafe { std::slice::from_raw_parts(request, request_len) };
        let mut called = CALLED.lock().unwrap();
        called.2.push(String::from_utf8(request.to_vec()).unwrap());
        // SAFETY: `out` copies the bytes before returning.
        unsafe { out(out_ctx, called.1.as_ptr(), called.1.len()) };
        called.0
    }

    #[test]
    fn a_turn_to_poll_is_read_from_the_host_s_answer_and_an_older_host_gives_one_without_end() {
        let host = Host::new(
            HostCallbacks {
                ctx: 8 as *mut c_void,
                emit: record,
                log: record,
            },
            Some(fake_call),
        );
        let answer = |status: i32, text: &str| {
            let mut called = CALLED.lock().unwrap();
            called.0 = status;
            called.1 = text.to_owned();
        };
        answer(0, r#"{"poll":true,"for_ms":1500}"#);
        assert_eq!(
            host.may_poll(Duration::from_secs(60)).unwrap(),
            PollTurn::Poll {
                within: Some(Duration::from_millis(1500))
            }
        );
        assert_eq!(
            CALLED.lock().unwrap().2,
            [r#"{"op":"may_poll","wait_ms":10000}"#],
            "the wait is capped"
        );
        answer(0, r#"{"poll":false}"#);
        assert_eq!(host.may_poll(Duration::ZERO).unwrap(), PollTurn::NotNow);
        answer(0, r#"{"poll":true}"#);
        assert_eq!(
            host.may_poll(Duration::ZERO).unwrap(),
            PollTurn::Poll { within: None }
        );
        answer(
            1,
            "the host could not read the request: unknown variant `may_poll`, expected one of `emit_durable`, `state_get`",
        );
        assert_eq!(
            host.may_poll(Duration::ZERO).unwrap(),
            PollTurn::Poll { within: None }
        );
        answer(1, "the host is stopping");
        assert!(host.may_poll(Duration::ZERO).is_err());
        // A version-2 host has no store to share: always a turn.
        let old = Host::new(
            HostCallbacks {
                ctx: 8 as *mut c_void,
                emit: record,
                log: record,
            },
            None,
        );
        assert_eq!(
            old.may_poll(Duration::ZERO).unwrap(),
            PollTurn::Poll { within: None }
        );
    }

    #[test]
    fn an_event_id_is_optional_on_the_wire_so_version_2_events_still_parse() {
        let old = r#"{"channel":"t","account":"a","event":"text","text":"hi"}"#;
        let event: InboundEvent = serde_json::from_str(old).unwrap();
        assert_eq!(event.event_id, None);
        let json = serde_json::to_string(&event).unwrap();
        assert!(!json.contains("event_id"), "{json}");
    }

    #[test]
    fn a_retry_carries_the_providers_retry_after_on_the_wire() {
        let json = serde_json::to_string(&SendResult::Retry {
            reason: "429 Too Many Requests".to_owned(),
            retry_after_ms: Some(3000),
        })
        .unwrap();
        assert_eq!(
            json,
            r#"{"outcome":"retry","reason":"429 Too Many Requests","retry_after_ms":3000}"#
        );
    }
}
