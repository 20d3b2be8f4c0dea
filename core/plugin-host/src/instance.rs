//! A running channel instance: a started plugin, the sends in flight
//! through it, and the callbacks it uses to report inbound events and log
//! lines. Each send waits for the plugin's completion up to a time limit.

use super::{LoadedPlugin, PluginError, library::collect};
use cascade_plugin_api::{
    CallFn, Capability, ChannelHealth, HostCallbacks, HostCallbacksV3, HostRequest, InboundEvent,
    LogLevel, LogLine, POLL_WAIT_LIMIT_MS, STATE_KEY_LIMIT, STATE_VALUE_LIMIT, SendRequest,
    SendResult, WebhookRequest, WebhookResponse, WriteFn,
};
use std::collections::HashMap;
use std::ffi::c_void;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, LazyLock, Mutex, RwLock};
use std::time::Duration;
use tokio::sync::{mpsc, oneshot};

/// An inbound event and the instance it came through.
#[derive(Debug, Clone, PartialEq)]
pub struct Inbound {
    pub instance: String,
    pub event: InboundEvent,
}

/// Sends waiting for their completion, by id. The id, not a pointer, is what
/// crosses the boundary, so a plugin that answers twice, or after the host
/// gave up, finds nothing and cannot corrupt anything.
static PENDING: LazyLock<Mutex<HashMap<u64, oneshot::Sender<Vec<u8>>>>> =
    LazyLock::new(Default::default);
static NEXT_SEND: AtomicU64 = AtomicU64::new(1);

fn pending() -> std::sync::MutexGuard<'static, HashMap<u64, oneshot::Sender<Vec<u8>>>> {
    PENDING
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

unsafe extern "C" fn on_done(ctx: *mut c_void, data: *const u8, len: usize) {
    // SAFETY: `data` points to `len` bytes for the duration of this call.
    let bytes = unsafe { borrowed(data, len) }.to_vec();
    let waiting = pending().remove(&(ctx as usize as u64));
    match waiting {
        Some(sender) => {
            let _ = sender.send(bytes);
        }
        None => tracing::warn!(
            "a plugin answered a send that had already ended (timed out, or answered twice)"
        ),
    }
}

/// What a [`HostService`] answers: the answer's JSON, or a reason.
pub type ServiceFuture = Pin<Box<dyn Future<Output = Result<serde_json::Value, String>> + Send>>;

/// Answers the requests version-3 plugins make through `call`: stores
/// inbound events durably before they are handled, and keeps each channel
/// instance's state. The engine provides one backed by the store.
pub trait HostService: Send + Sync + 'static {
    /// Answers `request` from the channel instance `instance`. Runs on the
    /// host's runtime; the plugin's thread waits for it.
    fn call(&self, instance: String, request: HostRequest) -> ServiceFuture;
}

/// The service of a host with no store: events are handed on as plain
/// `emit`s (lost if the process stops) and state lives in memory.
pub struct MemoryService {
    inbound: mpsc::UnboundedSender<Inbound>,
    state: Mutex<MemoryState>,
}

/// Values and expiries, by (channel instance, key).
type MemoryState = HashMap<(String, String), (serde_json::Value, Option<std::time::Instant>)>;

impl MemoryService {
    pub fn new(inbound: mpsc::UnboundedSender<Inbound>) -> MemoryService {
        MemoryService {
            inbound,
            state: Mutex::default(),
        }
    }
}

impl HostService for MemoryService {
    fn call(&self, instance: String, request: HostRequest) -> ServiceFuture {
        let mut state = self.state.lock().unwrap_or_else(|p| p.into_inner());
        let now = std::time::Instant::now();
        state.retain(|_, (_, until)| until.is_none_or(|until| until > now));
        let answer = match request {
            HostRequest::EmitDurable { event } => {
                let _ = self.inbound.send(Inbound { instance, event });
                serde_json::json!({ "new": true })
            }
            HostRequest::StateGet { key } => {
                let value = state.get(&(instance, key)).map(|(v, _)| v.clone());
                serde_json::json!({ "value": value })
            }
            HostRequest::StatePut {
                key,
                value,
                ttl_secs,
            } => {
                let until = ttl_secs.map(|s| now + Duration::from_secs(s));
                state.insert((instance, key), (value, until));
                serde_json::json!({})
            }
            HostRequest::StateDelete { key } => {
                state.remove(&(instance, key));
                serde_json::json!({})
            }
            // One process, no store to share: always a turn, without end.
            HostRequest::MayPoll { .. } => serde_json::json!({ "poll": true }),
        };
        Box::pin(async move { Ok(answer) })
    }
}

/// Checks a request's sizes before it reaches the service.
fn check_request(request: &HostRequest) -> Result<(), String> {
    let key = match request {
        HostRequest::EmitDurable { .. } => return Ok(()),
        HostRequest::MayPoll { wait_ms } => {
            return if *wait_ms <= POLL_WAIT_LIMIT_MS {
                Ok(())
            } else {
                Err(format!(
                    "a may_poll request waits at most {POLL_WAIT_LIMIT_MS} ms, not {wait_ms}"
                ))
            };
        }
        HostRequest::StateGet { key } | HostRequest::StateDelete { key } => key,
        HostRequest::StatePut { key, value, .. } => {
            let size = serde_json::to_vec(value).map_or(0, |v| v.len());
            if size > STATE_VALUE_LIMIT {
                return Err(format!(
                    "a state value of {size} bytes is over the limit of {STATE_VALUE_LIMIT}"
                ));
            }
            key
        }
    };
    if key.is_empty() || key.len() > STATE_KEY_LIMIT {
        return Err(format!(
            "a state key must be 1 to {STATE_KEY_LIMIT} bytes, not {}",
            key.len()
        ));
    }
    Ok(())
}

/// How long a plugin's `call` waits for the host's answer.
const CALL_TIMEOUT: Duration = Duration::from_secs(30);

/// What the host's callbacks know about the instance calling them. Leaked:
/// a plugin may call back from its own threads at any time.
struct CallbackContext {
    instance: String,
    inbound: mpsc::UnboundedSender<Inbound>,
    /// Why the running channel says it does not work, if it said so.
    fault: Fault,
    /// Answers `call` (version 3), on the host's runtime.
    service: Arc<dyn HostService>,
    runtime: tokio::runtime::Handle,
}

unsafe extern "C" fn on_call(
    ctx: *mut c_void,
    data: *const u8,
    len: usize,
    out: WriteFn,
    out_ctx: *mut c_void,
) -> i32 {
    // SAFETY: `ctx` is a leaked `CallbackContext`; `data` is borrowed for the call.
    let (context, bytes) = unsafe { (&*ctx.cast::<CallbackContext>(), borrowed(data, len)) };
    let answer = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        let request = serde_json::from_slice::<HostRequest>(bytes)
            .map_err(|e| format!("the host could not read the request: {e}"))?;
        check_request(&request)?;
        let (sender, answer) = std::sync::mpsc::channel();
        let call = context.service.call(context.instance.clone(), request);
        context.runtime.spawn(async move {
            let _ = sender.send(call.await);
        });
        match answer.recv_timeout(CALL_TIMEOUT) {
            Ok(answer) => answer,
            Err(std::sync::mpsc::RecvTimeoutError::Timeout) => Err(format!(
                "the host did not answer within {}s",
                CALL_TIMEOUT.as_secs()
            )),
            Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => {
                Err("the host is stopping".to_owned())
            }
        }
    }))
    .unwrap_or_else(|_| Err("the host failed while answering".to_owned()));
    let (status, bytes) = match answer {
        Ok(value) => (
            0,
            serde_json::to_vec(&value).expect("JSON values serialise"),
        ),
        Err(reason) => {
            tracing::warn!(channel = %context.instance, "a plugin's request to the host failed: {reason}");
            (1, reason.into_bytes())
        }
    };
    // SAFETY: the plugin passed `out` for `out_ctx`; the bytes live for the call.
    unsafe { out(out_ctx, bytes.as_ptr(), bytes.len()) };
    status
}

/// A running channel's own report that it stopped working, and why.
pub(crate) type Fault = Arc<Mutex<Option<String>>>;

unsafe extern "C" fn on_emit(ctx: *mut c_void, data: *const u8, len: usize) {
    // SAFETY: `ctx` is a leaked `CallbackContext`; `data` is borrowed for the call.
    let (context, bytes) = unsafe { (&*ctx.cast::<CallbackContext>(), borrowed(data, len)) };
    match serde_json::from_slice::<InboundEvent>(bytes) {
        Ok(event) => {
            let _ = context.inbound.send(Inbound {
                instance: context.instance.clone(),
                event,
            });
        }
        Err(e) => {
            tracing::warn!(channel = %context.instance, "the plugin emitted a malformed inbound event: {e}")
        }
    }
}

unsafe extern "C" fn on_log(ctx: *mut c_void, data: *const u8, len: usize) {
    // SAFETY: as for `on_emit`.
    let (context, bytes) = unsafe { (&*ctx.cast::<CallbackContext>(), borrowed(data, len)) };
    let channel = context.instance.as_str();
    let line = serde_json::from_slice::<LogLine>(bytes);
    if let Ok(LogLine {
        channel: Some(health),
        message,
        ..
    }) = &line
    {
        let mut fault = context
            .fault
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        *fault = match health {
            ChannelHealth::Down => Some(message.clone()),
            ChannelHealth::Up => None,
        };
    }
    match line {
        Ok(LogLine {
            level: LogLevel::Error,
            message,
            ..
        }) => tracing::error!(channel, "{message}"),
        Ok(LogLine {
            level: LogLevel::Warn,
            message,
            ..
        }) => tracing::warn!(channel, "{message}"),
        Ok(LogLine {
            level: LogLevel::Info,
            message,
            ..
        }) => tracing::info!(channel, "{message}"),
        Ok(LogLine {
            level: LogLevel::Debug,
            message,
            ..
        }) => tracing::debug!(channel, "{message}"),
        Err(e) => tracing::warn!(channel, "the plugin wrote a malformed log line: {e}"),
    }
}

/// # Safety
/// `data` must point to `len` readable bytes, or `len` must be 0.
unsafe fn borrowed<'a>(data: *const u8, len: usize) -> &'a [u8] {
    if data.is_null() || len == 0 {
        &[]
    } else {
        // SAFETY: guaranteed by the caller.
        unsafe { std::slice::from_raw_parts(data, len) }
    }
}

/// A call into the plugin waiting for its answer.
struct PendingCall {
    id: u64,
    answer: oneshot::Receiver<Vec<u8>>,
}

impl PendingCall {
    /// The answer's bytes, or `None` after `timeout` (later answers are
    /// then ignored).
    async fn wait(self, timeout: Duration) -> Option<Vec<u8>> {
        match tokio::time::timeout(timeout, self.answer).await {
            Ok(Ok(bytes)) => Some(bytes),
            Ok(Err(_)) => unreachable!("a pending sender is only dropped after it sends"),
            Err(_) => {
                pending().remove(&self.id);
                None
            }
        }
    }
}

/// A started channel instance of a plugin.
pub struct ChannelInstance {
    pub name: String,
    pub plugin: Arc<LoadedPlugin>,
    /// The plugin's opaque instance pointer; 0 once stopped. Sends hold the
    /// read lock while they call into the plugin, so `stop` never frees the
    /// instance under a send.
    handle: RwLock<usize>,
    send_timeout: Duration,
    stop_timeout: Duration,
    fault: Fault,
}

impl ChannelInstance {
    pub(super) async fn start(
        name: String,
        plugin: Arc<LoadedPlugin>,
        config: serde_json::Value,
        inbound: mpsc::UnboundedSender<Inbound>,
        service: Arc<dyn HostService>,
        send_timeout: Duration,
        start_timeout: Duration,
    ) -> Result<ChannelInstance, PluginError> {
        let fault = Fault::default();
        let context: &'static CallbackContext = Box::leak(Box::new(CallbackContext {
            instance: name.clone(),
            inbound,
            fault: fault.clone(),
            service,
            runtime: tokio::runtime::Handle::current(),
        }));
        let context = context as *const CallbackContext as usize;
        let config = serde_json::to_vec(&config).expect("a JSON value serialises");
        let table = plugin.table;
        let starting = tokio::task::spawn_blocking(move || {
            let callbacks = HostCallbacks {
                ctx: context as *mut c_void,
                emit: on_emit,
                log: on_log,
            };
            let mut error: Vec<u8> = Vec::new();
            let handle = match table.start_v3 {
                Some(start_v3) => {
                    // Leaked like the context: the plugin may keep the pointer.
                    let v3: &'static HostCallbacksV3 = Box::leak(Box::new(HostCallbacksV3 {
                        ctx: callbacks.ctx,
                        emit: callbacks.emit,
                        log: callbacks.log,
                        call: on_call,
                    }));
                    // SAFETY: as below; `v3` lives for the process.
                    unsafe {
                        start_v3(
                            config.as_ptr(),
                            config.len(),
                            v3,
                            collect,
                            (&raw mut error).cast(),
                        )
                    }
                }
                // SAFETY: the config buffer and `error` outlive the call;
                // `collect` only copies into `error`.
                None => unsafe {
                    (table.start)(
                        config.as_ptr(),
                        config.len(),
                        callbacks,
                        collect,
                        (&raw mut error).cast(),
                    )
                },
            };
            (handle as usize, error)
        });
        let failed = |reason: String| PluginError::StartFailed {
            instance: name.clone(),
            plugin: plugin.manifest.name.clone(),
            reason,
        };
        match tokio::time::timeout(start_timeout, starting).await {
            Err(_) => Err(PluginError::StartTimedOut {
                instance: name.clone(),
                plugin: plugin.manifest.name.clone(),
                after: start_timeout,
            }),
            Ok(Err(join)) => Err(failed(join.to_string())),
            Ok(Ok((0, error))) => Err(failed(match String::from_utf8_lossy(&error).trim() {
                "" => "no reason given".to_owned(),
                reason => reason.to_owned(),
            })),
            Ok(Ok((handle, _))) => Ok(ChannelInstance {
                name,
                plugin,
                handle: RwLock::new(handle),
                send_timeout,
                stop_timeout: start_timeout,
                fault,
            }),
        }
    }

    /// What the running channel last said stopped it working, if anything
    /// (cleared when it says it works again).
    pub fn fault(&self) -> Option<String> {
        self.fault
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    /// Sends one message and waits for the plugin's answer.
    pub async fn send(&self, request: &SendRequest) -> Result<SendResult, PluginError> {
        let json = serde_json::to_vec(request).expect("send requests are plain data");
        let delivery_id = || request.delivery_id.clone();
        let answer = self
            .call(self.plugin.table.send, &json)?
            .wait(self.send_timeout)
            .await
            .ok_or_else(|| PluginError::SendTimedOut {
                instance: self.name.clone(),
                delivery_id: delivery_id(),
                after: self.send_timeout,
            })?;
        serde_json::from_slice(&answer).map_err(|e| PluginError::MalformedResult {
            instance: self.name.clone(),
            delivery_id: delivery_id(),
            reason: e.to_string(),
        })
    }

    /// Whether the plugin takes webhooks: its manifest says so and its
    /// table has the function.
    pub fn takes_webhooks(&self) -> bool {
        self.plugin.table.webhook.is_some()
            && self
                .plugin
                .manifest
                .capabilities
                .contains(&Capability::Webhook)
    }

    /// Whether the plugin judges a webhook request on its headers before
    /// the host reads the body (capability `webhook-headers`).
    pub fn checks_webhook_headers(&self) -> bool {
        self.takes_webhooks()
            && self
                .plugin
                .manifest
                .capabilities
                .contains(&Capability::WebhookHeaders)
    }

    /// Hands a provider's HTTP request to the plugin and waits (up to the
    /// send timeout) for the response to give back. `None` when the plugin
    /// takes no webhooks.
    pub async fn webhook(
        &self,
        request: &WebhookRequest,
    ) -> Result<Option<WebhookResponse>, PluginError> {
        let Some(webhook) = self.plugin.table.webhook.filter(|_| self.takes_webhooks()) else {
            return Ok(None);
        };
        let json = serde_json::to_vec(request).expect("webhook requests are plain data");
        let answer = self
            .call(webhook, &json)?
            .wait(self.send_timeout)
            .await
            .ok_or_else(|| PluginError::WebhookTimedOut {
                instance: self.name.clone(),
                after: self.send_timeout,
            })?;
        serde_json::from_slice(&answer).map(Some).map_err(|e| {
            PluginError::MalformedWebhookResponse {
                instance: self.name.clone(),
                reason: e.to_string(),
            }
        })
    }

    /// Calls `function` (the plugin's `send` or `webhook`) with `json`; the
    /// answer arrives through `on_done`, by the call's id.
    fn call(&self, function: CallFn, json: &[u8]) -> Result<PendingCall, PluginError> {
        let id = NEXT_SEND.fetch_add(1, Ordering::Relaxed);
        let (sender, answer) = oneshot::channel();
        let handle = self.handle.read().unwrap_or_else(|p| p.into_inner());
        if *handle == 0 {
            return Err(PluginError::Stopped {
                instance: self.name.clone(),
            });
        }
        pending().insert(id, sender);
        // SAFETY: the instance is live (read lock held); the request buffer
        // outlives the call; `on_done` accepts any id.
        unsafe {
            function(
                *handle as *mut c_void,
                json.as_ptr(),
                json.len(),
                on_done,
                id as usize as *mut c_void,
            )
        };
        Ok(PendingCall { id, answer })
    }

    /// Stops the instance, giving it the stop timeout to finish in-flight
    /// sends. Later sends fail with [`PluginError::Stopped`].
    pub async fn stop(&self) {
        let handle = std::mem::take(&mut *self.handle.write().unwrap_or_else(|p| p.into_inner()));
        if handle == 0 {
            return;
        }
        let table = self.plugin.table;
        // SAFETY: the handle came from `start` and is stopped exactly once.
        let stopping =
            tokio::task::spawn_blocking(move || unsafe { (table.stop)(handle as *mut c_void) });
        if tokio::time::timeout(self.stop_timeout, stopping)
            .await
            .is_err()
        {
            tracing::warn!(channel = %self.name, "the plugin did not stop within {:?}", self.stop_timeout);
        }
    }
}
