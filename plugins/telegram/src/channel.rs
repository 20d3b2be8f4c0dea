//! A running Telegram channel instance: its own small tokio runtime, the
//! bot that sends, and the updates coming in by long polling or through
//! the webhook. Assembly only: the rooms below do the work.

use cascade_plugin_api::{
    Capability, ChannelPlugin, Completion, Host, InFlight, Limits, LogLevel, Manifest, SendRequest,
    WebhookReply, WebhookRequest, WebhookResponse,
};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;
use teloxide::prelude::*;
use tokio::runtime::{Handle, Runtime};
use tokio::sync::watch;

use crate::config::{TelegramConfig, Updates, config_schema};
use crate::format::MESSAGE_LIMIT;
use crate::inbound::{self, Receiver};
use crate::send::Sender;
use crate::state::{Pacing, Presses};

/// How long `stop` lets accepted sends finish.
const STOP_GRACE: Duration = Duration::from_secs(10);
/// Sends the plugin wants in flight at once: enough to keep Telegram's 30
/// messages a second busy while each waits for its turn, and while those
/// that met a server error (5xx) wait: teloxide holds every 5xx answer for
/// 10 s before returning it (`DELAY_ON_SERVER_ERROR` in teloxide-core's
/// `net/request.rs`), so while Telegram has trouble a send that met one
/// holds its slot that long, asleep. With 64 slots, three sends in ten
/// meeting a 5xx left the channel at about 6 messages a second (the fault
/// soak); the pacing, not this number, keeps to Telegram's rate.
const MAX_IN_FLIGHT: usize = 256;

/// One started `telegram` channel.
pub struct TelegramChannel {
    sender: Arc<Sender>,
    in_flight: Arc<InFlight>,
    stop: watch::Sender<bool>,
    updates: Mutex<Option<tokio::task::JoinHandle<()>>>,
    /// In webhook mode: what handles the posted updates, and their secret.
    webhook: Option<(Receiver, String)>,
    /// A bot for deleting the webhook at stop.
    bot: Bot,
    handle: Handle,
    /// Taken by `stop`, which needs the runtime by value to shut it down.
    runtime: Mutex<Option<Runtime>>,
}

impl ChannelPlugin for TelegramChannel {
    fn manifest() -> Manifest {
        Manifest {
            name: "telegram".to_owned(),
            version: env!("CARGO_PKG_VERSION").to_owned(),
            channels: vec!["telegram".to_owned()],
            capabilities: vec![
                Capability::Buttons,
                Capability::Inbound,
                Capability::Edit,
                Capability::Webhook,
                // The secret is a header: a forged post is refused before
                // cascade reads its body.
                Capability::WebhookHeaders,
            ],
            limits: Limits {
                max_message_length: Some(MESSAGE_LIMIT),
                max_in_flight: Some(MAX_IN_FLIGHT),
                per_second: Some(30.0),
            },
            config_schema: config_schema(),
        }
    }

    fn start(config: serde_json::Value, host: Host) -> Result<Self, String> {
        let config = TelegramConfig::from_json(&config).map_err(|e| e.to_string())?;
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("cascade-telegram")
            .enable_all()
            .build()
            .map_err(|e| format!("could not start the telegram channel's threads: {e}"))?;
        let bot = |timeout: Duration| -> Result<Bot, String> {
            let client = teloxide::net::default_reqwest_settings()
                .timeout(timeout)
                .build()
                .map_err(|e| format!("could not set up the HTTP client: {e}"))?;
            Ok(Bot::with_client(config.token.clone(), client).set_api_url(config.api_url.clone()))
        };
        let sending = bot(config.request_timeout)?;
        let presses = Presses::kept_by(host.clone());
        let sender = Arc::new(Sender::new(
            sending.clone(),
            Pacing::new(config.messages_per_second, config.chat_messages_per_second),
            presses.clone(),
            host.clone(),
        ));
        let (stop, stopped) = watch::channel(false);
        let receiver = |bot: Bot| Receiver {
            channel: "telegram".to_owned(),
            host: host.clone(),
            bot,
            presses: presses.clone(),
            answer_within: config.answer_within,
        };
        let (updates, webhook) = runtime.block_on(async {
            let me = sending.get_me().await.map_err(|error| match error {
                teloxide::RequestError::Api(e) => format!(
                    "Telegram refused the bot token (getMe: {e}): check the channel's token secret"
                ),
                other => format!(
                    "could not reach the Bot API at {} (getMe: {other}); check `api_url` and the network",
                    config.api_url
                ),
            })?;
            if let Some(expected) = &config.bot_username
                && !expected.eq_ignore_ascii_case(me.username())
            {
                return Err(format!(
                    "the token signs in as @{}, but `bot_username` says @{expected}: correct `bot_username`, or the token secret",
                    me.username()
                ));
            }
            host.log(
                LogLevel::Info,
                format!("signed in as @{} through {}", me.username(), config.api_url),
            );
            match &config.updates {
                Updates::Polling { timeout } => {
                    // A long poll outlives the request timeout of sends.
                    let polling = bot(*timeout + config.request_timeout)?;
                    // Telegram refuses getUpdates while a webhook is set.
                    polling
                        .delete_webhook()
                        .await
                        .map_err(|e| format!("could not switch to long polling (deleteWebhook): {e}"))?;
                    // Tells the host, before start returns, that this
                    // instance polls: it then gives turns to one process
                    // at a time. The poll loop asks for each turn itself.
                    let _ = host.may_poll(Duration::ZERO);
                    let polls = inbound::poll(receiver(polling), *timeout, stopped);
                    Ok::<_, String>((Some(tokio::spawn(polls)), None))
                }
                Updates::Webhook { url, secret, check } => {
                    inbound::set_webhook(&sending, url.clone(), secret).await?;
                    host.log(
                        LogLevel::Info,
                        format!("Telegram posts updates to {url}"),
                    );
                    // Ended by `stop` before it deletes the webhook, so it
                    // never sets it again after.
                    let watch = inbound::keep_webhook(
                        sending.clone(),
                        host.clone(),
                        url.clone(),
                        secret.clone(),
                        *check,
                        stopped,
                    );
                    Ok((
                        Some(tokio::spawn(watch)),
                        Some((receiver(sending.clone()), secret.clone())),
                    ))
                }
            }
        })?;
        Ok(TelegramChannel {
            sender,
            in_flight: Arc::default(),
            stop,
            updates: Mutex::new(updates),
            webhook,
            bot: sending,
            handle: runtime.handle().clone(),
            runtime: Mutex::new(Some(runtime)),
        })
    }

    fn webhook(&self, request: WebhookRequest, reply: WebhookReply) {
        let Some((receiver, secret)) = &self.webhook else {
            return reply.respond(WebhookResponse::text(
                404,
                "this channel receives updates by long polling",
            ));
        };
        // Storing the update blocks on the host: never on the host's thread.
        let (receiver, secret) = (receiver.clone(), secret.clone());
        self.handle.spawn_blocking(move || {
            reply.respond(inbound::receive_posted(&receiver, &secret, &request));
        });
    }

    fn check_webhook_headers(&self, request: &WebhookRequest) -> Result<(), WebhookResponse> {
        let Some((_, secret)) = &self.webhook else {
            return Err(WebhookResponse::text(
                404,
                "this channel receives updates by long polling",
            ));
        };
        inbound::check_posted_headers(secret, request)
    }

    fn send(&self, request: SendRequest, completion: Completion) {
        let sender = Arc::clone(&self.sender);
        let accepted = self.in_flight.accept(
            completion,
            "the telegram channel stopped before the message was sent",
        );
        // After `stop` the runtime is gone and the task is dropped unrun,
        // which answers the send with a retry.
        self.handle.spawn(async move {
            accepted.finish(sender.deliver(&request).await);
        });
    }

    fn stop(&self) {
        let _ = self.stop.send(true);
        let updates = self
            .updates
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        if let Some(updates) = updates {
            let _ = self
                .handle
                .block_on(async { tokio::time::timeout(STOP_GRACE, updates).await });
        }
        if self.webhook.is_some() {
            // Telegram keeps the updates that arrive meanwhile and sends them
            // to the webhook set at the next start, at once.
            let deleted = self.handle.block_on(async {
                tokio::time::timeout(STOP_GRACE, self.bot.delete_webhook().into_future()).await
            });
            if !matches!(deleted, Ok(Ok(_))) {
                self.sender.host.log(
                    LogLevel::Warn,
                    "could not delete the webhook while stopping; the next start sets it again",
                );
            }
        }
        let unfinished = self.in_flight.wait_until_idle(STOP_GRACE);
        if unfinished > 0 {
            self.sender.host.log(
                LogLevel::Warn,
                format!(
                    "stopping with {unfinished} sends unfinished after {}s; they are answered with a retry",
                    STOP_GRACE.as_secs()
                ),
            );
        }
        let runtime = self
            .runtime
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        if let Some(runtime) = runtime {
            // Drops every task still running, so each send answers with a retry.
            runtime.shutdown_timeout(Duration::from_secs(1));
        }
    }
}
