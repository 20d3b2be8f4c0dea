//! A running email channel instance: its own tokio runtime drives the SMTP
//! exchanges; a semaphore keeps at most `max_in_flight` sends (and so
//! connections) going at once, and a count of accepted sends
//! lets `stop` finish them (or answer them with a retry) before the
//! instance is freed.

use cascade_plugin_api::{
    ChannelPlugin, Completion, Host, InFlight, Limits, LogLevel, Manifest, SendRequest, SendResult,
};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;
use tokio::runtime::{Handle, Runtime};
use tokio::sync::Semaphore;

use crate::config::{EmailConfig, Security, config_schema};
use crate::format::{Sender, email};
use crate::send::Relay;

/// How long `stop` lets accepted sends finish.
const STOP_GRACE: Duration = Duration::from_secs(10);
/// How long `stop` then waits for QUIT on idle connections and for the
/// runtime's threads to wind down.
const SHUTDOWN_WAIT: Duration = Duration::from_secs(1);

/// One started `email` channel.
pub struct EmailChannel {
    relay: Arc<Relay>,
    sender: Arc<Sender>,
    slots: Arc<Semaphore>,
    in_flight: Arc<InFlight>,
    handle: Handle,
    /// Taken by `stop`, which needs the runtime by value to shut it down.
    runtime: Mutex<Option<Runtime>>,
    host: Host,
}

impl ChannelPlugin for EmailChannel {
    fn manifest() -> Manifest {
        Manifest {
            name: "email".to_owned(),
            version: env!("CARGO_PKG_VERSION").to_owned(),
            channels: vec!["email".to_owned()],
            capabilities: Vec::new(),
            limits: Limits::default(),
            config_schema: config_schema(),
        }
    }

    fn start(config: serde_json::Value, host: Host) -> Result<Self, String> {
        let config = EmailConfig::from_json(&config).map_err(|error| error.to_string())?;
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .thread_name("cascade-email")
            .build()
            .map_err(|error| format!("could not start the email channel's threads: {error}"))?;
        let relay = Relay::new(&config)?;
        if config.check_at_start {
            // A channel that cannot work (no STARTTLS, credentials refused,
            // nothing listening) is down with the reason, rather than each
            // message failing for the same reason, over and over.
            runtime.block_on(relay.check())?;
        }
        host.log(
            LogLevel::Info,
            format!(
                "sending email through {} ({}), at most {} at once",
                relay.server,
                match config.security {
                    Security::StartTls => "STARTTLS",
                    Security::Tls => "TLS",
                    Security::None => "plain, unencrypted",
                },
                config.max_in_flight
            ),
        );
        Ok(EmailChannel {
            relay: Arc::new(relay),
            sender: Arc::new(Sender {
                from: config.from,
                reply_to: config.reply_to,
                message_id_domain: config.message_id_domain,
            }),
            slots: Arc::new(Semaphore::new(config.max_in_flight.get())),
            in_flight: Arc::default(),
            handle: runtime.handle().clone(),
            runtime: Mutex::new(Some(runtime)),
            host,
        })
    }

    fn send(&self, request: SendRequest, completion: Completion) {
        let accepted = self.in_flight.accept(
            completion,
            "the email channel stopped before the message was sent",
        );
        let relay = Arc::clone(&self.relay);
        let sender = Arc::clone(&self.sender);
        let slots = Arc::clone(&self.slots);
        // Formatting happens on the runtime too, so the host's call returns
        // at once. After `stop` the runtime is gone and the task is dropped
        // unrun, which answers it with a retry.
        self.handle.spawn(async move {
            let message = match email(&request, &sender) {
                Ok(message) => message,
                Err(error) => {
                    accepted.finish(SendResult::Failed {
                        unreachable: error.unreachable(),
                        reason: error.to_string(),
                    });
                    return;
                }
            };
            let Ok(_slot) = slots.acquire_owned().await else {
                return;
            };
            accepted.finish(relay.deliver(&message).await);
        });
    }

    fn stop(&self) {
        let unfinished = self.in_flight.wait_until_idle(STOP_GRACE);
        if unfinished > 0 {
            self.host.log(
                LogLevel::Warn,
                format!(
                    "stopping with {unfinished} emails unsent after {}s; they are answered with a retry",
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
            // Says QUIT on the parked connections, within reason.
            let relay = Arc::clone(&self.relay);
            let (done, wait) = std::sync::mpsc::channel();
            runtime.spawn(async move {
                relay.close().await;
                let _ = done.send(());
            });
            let _ = wait.recv_timeout(SHUTDOWN_WAIT);
            // Drops every task still running, so each answers with a retry.
            runtime.shutdown_timeout(SHUTDOWN_WAIT);
        }
    }
}
