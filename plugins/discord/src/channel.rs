//! A running Discord channel instance: its own tokio runtime, the REST
//! client, the gateway connection (a serenity `Client` whose handler is
//! `inbound::Gateway`), and the `send::Shared` a send and an interaction
//! share. Assembly only: the rooms below do the work.

use cascade_plugin_api::{
    Capability, ChannelPlugin, Completion, Host, Limits, LogLevel, Manifest, SendRequest,
};
use serenity::all::{ApplicationId, GatewayIntents, ShardManager};
use serenity::http::HttpBuilder;
use std::future::IntoFuture;
use std::sync::{Arc, Mutex, PoisonError};
use tokio::runtime::{Handle, Runtime};

use crate::config::{DiscordConfig, config_schema};
use crate::format::EMBED_DESCRIPTION_LIMIT;
use crate::inbound::{GATEWAY_CLOSE_WAIT, Gateway};
use crate::send::{Rest, Shared, answer, deliver};
use crate::state::{DmChannels, Forms, Interactions, Progress, Responding};

/// One started `discord` channel.
pub struct DiscordChannel {
    shared: Arc<Shared>,
    handle: Handle,
    shard_manager: Arc<ShardManager>,
    /// Taken by `stop`, which needs the runtime by value to shut it down.
    runtime: Mutex<Option<Runtime>>,
}

impl ChannelPlugin for DiscordChannel {
    fn manifest() -> Manifest {
        Manifest {
            name: "discord".to_owned(),
            version: env!("CARGO_PKG_VERSION").to_owned(),
            channels: vec!["discord".to_owned()],
            capabilities: vec![
                Capability::Buttons,
                Capability::Inbound,
                Capability::Edit,
                Capability::Forms,
                Capability::ChannelPosts,
            ],
            limits: Limits {
                max_message_length: Some(EMBED_DESCRIPTION_LIMIT),
                max_in_flight: Some(8),
                // Discord's global limit is 50 requests a second; a DM
                // costs up to two of them.
                per_second: Some(20.0),
            },
            config_schema: config_schema(),
        }
    }

    fn start(config: serde_json::Value, host: Host) -> Result<Self, String> {
        let config = DiscordConfig::from_json(&config).map_err(|error| error.to_string())?;
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .thread_name("cascade-discord")
            .build()
            .map_err(|error| format!("could not start the Discord channel's threads: {error}"))?;
        let rest = Rest::new(&config)?;
        runtime
            .block_on(rest.register_commands(config.guild_id))
            .map_err(|error| {
                let help = if error.is_temporary() {
                    "this is temporary; cascade tries again shortly"
                } else {
                    "check `application_id`, `guild_id`, the token, and that the bot was invited with the applications.commands scope"
                };
                format!(
                    "could not register the slash commands in guild {} at {}: {error}\n  help: {help}",
                    config.guild_id, config.api_url
                )
            })?;
        runtime
            .block_on(rest.check_gateway())
            .map_err(|reason| format!("{reason} (asked {})", config.api_url))?;
        let mut http = HttpBuilder::new(&config.token)
            .application_id(ApplicationId::new(config.application_id))
            // serenity's ratelimiter ignores the proxy (see ratelimit.rs);
            // the gateway's few calls go without it.
            .ratelimiter_disabled(true);
        if let Some(proxy) = config.proxy() {
            http = http.proxy(proxy);
        }
        let shared = Arc::new(Shared {
            config,
            rest,
            host: host.clone(),
            interactions: Interactions::new(host.clone()),
            forms: Forms::new(host.clone()),
            dm_channels: DmChannels::default(),
            progress: Progress::new(host.clone()),
            responding: Responding::default(),
        });
        let gateway = Gateway {
            shared: Arc::clone(&shared),
        };
        // Interactions reach a bot whatever its intents; it reads no messages.
        let mut client = runtime
            .block_on(
                serenity::all::ClientBuilder::new_with_http(http.build(), GatewayIntents::empty())
                    .event_handler(gateway)
                    .into_future(),
            )
            .map_err(|error| format!("could not set up the Discord gateway client: {error}"))?;
        let shard_manager = Arc::clone(&client.shard_manager);
        let gateway_host = host.clone();
        runtime.spawn(async move {
            // Asks GET /gateway/bot for the shard count Discord recommends.
            if let Err(error) = client.start_autosharded().await {
                // Down in /health, status and the metrics, not only logged:
                // sends still go, but no press or command arrives.
                gateway_host.channel_down(format!(
                    "the Discord gateway stopped: {}; buttons and commands are not received until cascade restarts",
                    gateway_error(&error)
                ));
            }
        });
        host.log(
            LogLevel::Info,
            format!(
                "registered the slash commands in guild {}; connecting to the gateway",
                shared.config.guild_id
            ),
        );
        Ok(DiscordChannel {
            handle: runtime.handle().clone(),
            shared,
            shard_manager,
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

    fn stop(&self) {
        let runtime = self
            .runtime
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        if let Some(runtime) = runtime {
            let shard_manager = Arc::clone(&self.shard_manager);
            runtime.block_on(async {
                let _ =
                    tokio::time::timeout(GATEWAY_CLOSE_WAIT, shard_manager.shutdown_all()).await;
            });
            // Drops every send still running, so each answers with a retry.
            runtime.shutdown_timeout(GATEWAY_CLOSE_WAIT);
        }
    }
}

/// A gateway failure in words for a person, with what to change where
/// there is something to change.
fn gateway_error(error: &serenity::Error) -> String {
    use serenity::all::GatewayError;
    match error {
        serenity::Error::Gateway(GatewayError::DisallowedGatewayIntents) => {
            "Discord refused the bot's gateway intents (close code 4014); turn on the privileged intents it asks for in the Discord developer portal, or remove them".to_owned()
        }
        serenity::Error::Gateway(GatewayError::InvalidGatewayIntents) => {
            "Discord says the bot's gateway intents are invalid (close code 4013)".to_owned()
        }
        serenity::Error::Gateway(GatewayError::InvalidAuthentication) => {
            "Discord refused the bot token (close code 4004); check the token secret".to_owned()
        }
        other => other.to_string(),
    }
}
