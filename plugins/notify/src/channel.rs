//! A running Notify channel instance: its own tokio runtime, the HTTP
//! client, and the `send::Shared` that sends and the webhook share.
//! Assembly only: the rooms below do the work.

use cascade_plugin_api::{
    Capability, ChannelPlugin, Completion, Host, Limits, LogLevel, Manifest, SendRequest,
    WebhookReply, WebhookRequest, WebhookResponse,
};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;
use tokio::runtime::{Handle, Runtime};

use crate::config::{NotifyConfig, config_schema};
use crate::inbound::{CHANNEL, check_headers, receive};
use crate::send::{Shared, client, deliver};
use crate::state::{Journal, Pacing};

/// How long `stop` lets sends in flight finish.
const STOP_WAIT: Duration = Duration::from_secs(5);

/// One started `notify` channel.
pub struct NotifyChannel {
    shared: Arc<Shared>,
    handle: Handle,
    /// Taken by `stop`, which needs the runtime by value to shut it down.
    runtime: Mutex<Option<Runtime>>,
}

impl ChannelPlugin for NotifyChannel {
    fn manifest() -> Manifest {
        Manifest {
            name: "notify".to_owned(),
            version: env!("CARGO_PKG_VERSION").to_owned(),
            channels: vec![CHANNEL.to_owned()],
            capabilities: vec![
                Capability::Inbound,
                Capability::Webhook,
                Capability::WebhookHeaders,
            ],
            limits: Limits {
                max_message_length: None,
                max_in_flight: Some(32),
                // The plugin paces to Notify's per-minute and daily limits.
                per_second: None,
            },
            config_schema: config_schema(),
        }
    }

    fn start(config: serde_json::Value, host: Host) -> Result<Self, String> {
        let config = NotifyConfig::from_json(&config).map_err(|error| error.to_string())?;
        let journal = match &config.journal {
            Some(path) => Journal::open(path)?,
            None => Journal::none(),
        };
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .thread_name("cascade-notify")
            .build()
            .map_err(|error| format!("could not start the Notify channel's threads: {error}"))?;
        host.log(
            LogLevel::Info,
            format!(
                "Notify {} channel ready for service {} with template {}",
                config.kind.name(),
                config.api_key.service_id,
                config.template_id
            ),
        );
        let shared = Arc::new(Shared {
            pacing: Pacing::new(config.per_minute, config.per_day),
            journal,
            config,
            client: client()?,
            host,
        });
        Ok(NotifyChannel {
            handle: runtime.handle().clone(),
            shared,
            runtime: Mutex::new(Some(runtime)),
        })
    }

    fn send(&self, request: SendRequest, completion: Completion) {
        let shared = Arc::clone(&self.shared);
        // After `stop` the runtime is gone and the task is dropped unrun,
        // which answers it with a retry.
        self.handle.spawn(async move {
            completion.complete(deliver(&shared, &request).await);
        });
    }

    fn webhook(&self, request: WebhookRequest, reply: WebhookReply) {
        // Storing the receipt blocks on the host: never on the host's thread.
        let shared = Arc::clone(&self.shared);
        self.handle.spawn_blocking(move || {
            reply.respond(receive(&shared, &request));
        });
    }

    fn check_webhook_headers(&self, request: &WebhookRequest) -> Result<(), WebhookResponse> {
        check_headers(&self.shared, request)
    }

    fn stop(&self) {
        let runtime = self
            .runtime
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        if let Some(runtime) = runtime {
            // Drops every send still running, so each answers with a retry.
            runtime.shutdown_timeout(STOP_WAIT);
        }
    }
}
