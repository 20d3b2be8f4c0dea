//! A running Teams channel instance: its own tokio runtime, the HTTP
//! client, and the `send::Shared` that sends and the webhook share.
//! Assembly only: the rooms below do the work.

use cascade_plugin_api::{
    Capability, ChannelPlugin, Completion, Host, Limits, LogLevel, Manifest, SendRequest,
    WebhookReply, WebhookRequest, WebhookResponse,
};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;
use tokio::runtime::{Handle, Runtime};

use crate::config::{TeamsConfig, config_schema};
use crate::format::CHUNK_LIMIT;
use crate::inbound::{CHANNEL, check_headers, receive};
use crate::send::{Shared, answer, client, deliver};
use crate::state::{AppToken, Conversations, Pacing, Progress, SentCards, SigningKeys, Waiting};

/// How long `stop` lets sends in flight finish.
const STOP_WAIT: Duration = Duration::from_secs(5);

/// One started `teams` channel.
pub struct TeamsChannel {
    shared: Arc<Shared>,
    handle: Handle,
    /// Taken by `stop`, which needs the runtime by value to shut it down.
    runtime: Mutex<Option<Runtime>>,
}

impl ChannelPlugin for TeamsChannel {
    fn manifest() -> Manifest {
        Manifest {
            name: "teams".to_owned(),
            version: env!("CARGO_PKG_VERSION").to_owned(),
            channels: vec![CHANNEL.to_owned()],
            capabilities: vec![
                Capability::Buttons,
                Capability::Inbound,
                Capability::Edit,
                Capability::Forms,
                Capability::ChannelPosts,
                Capability::Webhook,
                Capability::WebhookHeaders,
            ],
            limits: Limits {
                max_message_length: Some(CHUNK_LIMIT),
                max_in_flight: Some(64),
                // Teams paces per conversation; the plugin keeps those
                // windows and the bot-wide one itself.
                per_second: None,
            },
            config_schema: config_schema(),
        }
    }

    fn start(config: serde_json::Value, host: Host) -> Result<Self, String> {
        let config = TeamsConfig::from_json(&config).map_err(|error| error.to_string())?;
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .thread_name("cascade-teams")
            .build()
            .map_err(|error| format!("could not start the Teams channel's threads: {error}"))?;
        host.log(
            LogLevel::Info,
            format!(
                "Teams bot {} ready for tenant {}; Teams posts to /webhooks/<this channel's name>",
                config.app_id, config.tenant_id
            ),
        );
        let progress = Progress::kept_by(host.clone());
        let shared = Arc::new(Shared {
            pacing: Pacing::new(&config),
            config,
            client: client()?,
            host,
            token: AppToken::default(),
            token_fetch: tokio::sync::Mutex::new(()),
            keys: SigningKeys::default(),
            keys_fetch: tokio::sync::Mutex::new(()),
            conversations: Conversations::default(),
            cards: SentCards::default(),
            progress,
            waiting: Waiting::default(),
        });
        Ok(TeamsChannel {
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
            let result = if request.reply.is_some() {
                answer(&shared, &request).await
            } else {
                deliver(&shared, &request).await
            };
            completion.complete(result);
        });
    }

    fn webhook(&self, request: WebhookRequest, reply: WebhookReply) {
        let shared = Arc::clone(&self.shared);
        self.handle.spawn(async move {
            reply.respond(receive(&shared, request).await);
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
