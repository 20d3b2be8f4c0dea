//! The I/O of sending: REST calls to Discord's API (serenity's routes and
//! request builder, executed here so every response's rate-limit headers and
//! error body are seen), a learning message delivered as a DM or posted in
//! a team's channel (and that post edited), and the answer to an
//! interaction once the host has decided what to say. `Shared` gathers what
//! these calls and the gateway's handler (`inbound`) both need.

use cascade_plugin_api::{ChannelPost, Host, SendRequest, SendResult};
use serde::Serialize;
use serde_json::Value;
use serenity::all::{ApplicationId, ChannelId, GuildId, InteractionId, MessageId, UserId};
use serenity::http::{LightMethod, Request, Route};
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

use crate::config::DiscordConfig;
use crate::format::{self, CONTENT_LIMIT, FormatError};
use crate::state::ratelimit::{Announced, RateLimits};
use crate::state::{Answer, DmChannels, Forms, Interactions, Progress, Responding};

/// What sends and gateway events share: the configuration, the REST
/// client, the host, and the state kept between calls.
pub struct Shared {
    pub config: DiscordConfig,
    pub rest: Rest,
    pub host: Host,
    pub interactions: Interactions,
    pub forms: Forms,
    pub dm_channels: DmChannels,
    pub progress: Progress,
    /// Interactions whose first response to Discord is on its way.
    pub responding: Responding,
}

/// Discord's JSON error code for "Cannot send messages to this user": the
/// person left the server, blocked the bot or closed their DMs.
const CANNOT_MESSAGE_USER: i64 = 50007;
/// How many times one call is tried when Discord asks to wait briefly.
const ATTEMPTS: usize = 4;

/// Why a REST call did not succeed. Never carries the token: reqwest's
/// errors are stripped of their URL, which for interaction webhooks holds
/// the interaction token.
#[derive(Debug, Clone, PartialEq)]
pub enum ApiError {
    RateLimited {
        retry_after: Duration,
    },
    Server {
        status: u16,
    },
    Unreachable {
        message: String,
    },
    Rejected {
        status: u16,
        code: i64,
        message: String,
    },
    Transport(String),
}

/// Words for a person, never a Debug dump.
impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ApiError::RateLimited { retry_after } => write!(
                f,
                "Discord asked to wait {} s before trying again (rate limited)",
                retry_after.as_secs_f64().ceil()
            ),
            ApiError::Server { status } => {
                write!(f, "Discord answered with a server error (HTTP {status})")
            }
            ApiError::Transport(error) => write!(f, "could not reach Discord: {error}"),
            ApiError::Unreachable { message } => write!(f, "Discord refused: {message}"),
            ApiError::Rejected {
                status,
                code,
                message,
            } => write!(f, "Discord refused (HTTP {status}, code {code}): {message}"),
        }
    }
}

impl ApiError {
    /// Whether trying again later may work (a rate limit, a server error,
    /// no connection), as opposed to a refusal that needs a change of
    /// configuration.
    pub fn is_temporary(&self) -> bool {
        matches!(
            self,
            ApiError::RateLimited { .. } | ApiError::Server { .. } | ApiError::Transport(_)
        )
    }

    pub fn into_result(self, what: &str) -> SendResult {
        match self {
            ApiError::RateLimited { retry_after } => SendResult::Retry {
                reason: format!("Discord rate limited {what}"),
                retry_after_ms: Some(u64::try_from(retry_after.as_millis()).unwrap_or(u64::MAX)),
            },
            ApiError::Server { status } => SendResult::Retry {
                reason: format!("Discord answered {what} with HTTP {status}"),
                retry_after_ms: None,
            },
            ApiError::Transport(error) => SendResult::Retry {
                reason: format!("could not reach Discord for {what}: {error}"),
                retry_after_ms: None,
            },
            ApiError::Unreachable { message } => SendResult::Failed {
                reason: format!("Discord refused {what}: {message}"),
                unreachable: true,
            },
            ApiError::Rejected {
                status,
                code,
                message,
            } => SendResult::Failed {
                reason: format!("Discord refused {what} (HTTP {status}, code {code}): {message}"),
                unreachable: false,
            },
        }
    }
}

/// Discord's REST API as one bot sees it.
pub struct Rest {
    client: reqwest::Client,
    /// `Bot <token>`. Never printed.
    authorization: String,
    proxy: Option<String>,
    limits: Mutex<RateLimits>,
    max_wait: Duration,
    application_id: ApplicationId,
}

impl Rest {
    pub fn new(config: &DiscordConfig) -> Result<Rest, String> {
        let client = reqwest::Client::builder()
            .use_rustls_tls()
            .timeout(Duration::from_secs(20))
            .build()
            .map_err(|error| format!("could not set up the HTTP client: {error}"))?;
        Ok(Rest {
            client,
            authorization: format!("Bot {}", config.token),
            proxy: config.proxy().map(str::to_owned),
            limits: Mutex::default(),
            max_wait: config.max_rate_limit_wait,
            application_id: ApplicationId::new(config.application_id),
        })
    }

    /// One call: waits out a short rate limit (before it, or after a 429),
    /// reports a longer one, and gives back the response's JSON (`Null` for
    /// an empty body).
    pub async fn call(
        &self,
        method: LightMethod,
        route: Route<'_>,
        body: Option<&impl Serialize>,
    ) -> Result<Value, ApiError> {
        let body = body.map(serde_json::to_vec).transpose().map_err(|error| {
            ApiError::Transport(format!("could not encode the request: {error}"))
        })?;
        // Discord scopes buckets by route and major parameter; the path
        // with its ids is at least as fine as that.
        let key = format!("{method:?} {}", route.path());
        for attempt in 1..=ATTEMPTS {
            let wait = self.limits().wait_before(&key, Instant::now());
            if let Some(wait) = wait {
                if wait > self.max_wait {
                    return Err(ApiError::RateLimited { retry_after: wait });
                }
                tokio::time::sleep(wait).await;
            }
            let request = Request::new(route, method)
                .body(body.clone())
                .build(&self.client, &self.authorization, self.proxy.as_deref())
                .map_err(|error| ApiError::Transport(error.to_string()))?
                .build()
                .map_err(|error| ApiError::Transport(error.without_url().to_string()))?;
            let response = self
                .client
                .execute(request)
                .await
                .map_err(|error| ApiError::Transport(error.without_url().to_string()))?;
            let status = response.status().as_u16();
            let mut announced = announced(response.headers());
            let bytes = response
                .bytes()
                .await
                .map_err(|error| ApiError::Transport(error.without_url().to_string()))?;
            let json: Value = if bytes.is_empty() {
                Value::Null
            } else {
                serde_json::from_slice(&bytes).unwrap_or(Value::Null)
            };
            if status == 429 {
                announced.retry_after = json["retry_after"].as_f64().or(announced.retry_after);
                announced.global |= json["global"].as_bool().unwrap_or(false);
                let wait = self
                    .limits()
                    .observe(&key, true, &announced, Instant::now())
                    .unwrap_or_default();
                if wait > self.max_wait || attempt == ATTEMPTS {
                    return Err(ApiError::RateLimited { retry_after: wait });
                }
                continue;
            }
            self.limits()
                .observe(&key, false, &announced, Instant::now());
            return match status {
                200..=299 => Ok(json),
                500..=599 => Err(ApiError::Server { status }),
                _ => {
                    let code = json["code"].as_i64().unwrap_or(0);
                    let message = json["message"].as_str().unwrap_or("no message").to_owned();
                    if status == 403 && code == CANNOT_MESSAGE_USER {
                        Err(ApiError::Unreachable { message })
                    } else {
                        Err(ApiError::Rejected {
                            status,
                            code,
                            message: with_details(message, &json),
                        })
                    }
                }
            };
        }
        unreachable!("the last attempt returns")
    }

    fn limits(&self) -> std::sync::MutexGuard<'_, RateLimits> {
        self.limits.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Replaces the guild's slash commands with the bot's (one bulk call, so
    /// a restart never leaves stale commands behind).
    pub async fn register_commands(&self, guild_id: u64) -> Result<(), ApiError> {
        self.call(
            LightMethod::Put,
            Route::GuildCommands {
                application_id: self.application_id,
                guild_id: GuildId::new(guild_id),
            },
            Some(&format::commands()),
        )
        .await
        .map(drop)
    }

    /// Asks Discord where its gateway is, as the gateway client will
    /// (`GET /gateway/bot`), so a start fails with a reason a person can act
    /// on rather than a gateway that never connects: a wrong `api_url`, an
    /// answer without a websocket address, or no session starts left today
    /// (Discord allows about 1,000 a day; a crash loop can use them up).
    pub async fn check_gateway(&self) -> Result<(), String> {
        let info = self
            .call(LightMethod::Get, Route::GatewayBot, None::<&()>)
            .await
            .map_err(|error| format!("Discord did not say where its gateway is: {error}"))?;
        let url = info["url"].as_str().unwrap_or_default();
        if !(url.starts_with("wss://") || url.starts_with("ws://")) {
            return Err(format!(
                "Discord's answer to GET /gateway/bot has no websocket address (url {url:?}); check `api_url`"
            ));
        }
        let limit = &info["session_start_limit"];
        if limit["remaining"].as_u64() == Some(0) {
            let minutes = limit["reset_after"].as_u64().unwrap_or(0).div_ceil(60_000);
            return Err(format!(
                "Discord allows the bot no more gateway sessions until its daily limit resets in about {minutes} minutes (something restarted it too often); cascade tries again"
            ));
        }
        Ok(())
    }

    /// Answers an interaction within Discord's three seconds.
    pub async fn respond(
        &self,
        interaction_id: InteractionId,
        token: &str,
        response: &impl Serialize,
    ) -> Result<(), ApiError> {
        self.call(
            LightMethod::Post,
            Route::InteractionResponse {
                interaction_id,
                token,
            },
            Some(response),
        )
        .await
        .map(drop)
    }

    /// Edits the message an interaction is about: the message a button was
    /// on after a deferred update, or the deferred response to a command.
    pub async fn edit_original(&self, token: &str, edit: &impl Serialize) -> Result<(), ApiError> {
        self.call(
            LightMethod::Patch,
            Route::WebhookOriginalInteractionResponse {
                application_id: self.application_id,
                token,
            },
            Some(edit),
        )
        .await
        .map(drop)
    }

    pub async fn follow_up(&self, token: &str, message: &impl Serialize) -> Result<(), ApiError> {
        self.call(
            LightMethod::Post,
            Route::WebhookFollowupMessages {
                application_id: self.application_id,
                token,
            },
            Some(message),
        )
        .await
        .map(drop)
    }
}

/// Discord's field-level complaints ("embeds.0.description: Must be 4096 or
/// fewer in length.") make a refusal actionable, so they join the message.
fn with_details(message: String, json: &Value) -> String {
    let mut details = Vec::new();
    collect_errors(&json["errors"], String::new(), &mut details);
    if details.is_empty() {
        message
    } else {
        format!("{message}: {}", details.join("; "))
    }
}

fn collect_errors(value: &Value, path: String, out: &mut Vec<String>) {
    let Some(object) = value.as_object() else {
        return;
    };
    if let Some(errors) = object.get("_errors").and_then(Value::as_array) {
        for error in errors {
            out.push(format!(
                "{path}: {}",
                error["message"].as_str().unwrap_or("invalid")
            ));
        }
    }
    for (key, inner) in object.iter().filter(|(k, _)| *k != "_errors") {
        let path = if path.is_empty() {
            key.clone()
        } else {
            format!("{path}.{key}")
        };
        collect_errors(inner, path, out);
    }
}

fn announced(headers: &reqwest::header::HeaderMap) -> Announced {
    let number = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<f64>().ok())
    };
    Announced {
        remaining: number("x-ratelimit-remaining").map(|n| n as u64),
        reset_after: number("x-ratelimit-reset-after"),
        retry_after: number("retry-after"),
        global: headers.contains_key("x-ratelimit-global"),
    }
}

fn failed(error: &FormatError) -> SendResult {
    SendResult::Failed {
        reason: error.to_string(),
        unreachable: false,
    }
}

/// A snowflake id (a Discord user, channel or message id), if `text` is one.
fn snowflake(text: &str) -> Option<u64> {
    text.trim().parse::<u64>().ok().filter(|id| *id > 0)
}

/// Delivers a learning message: a DM to a person, or a post in a shared
/// channel when the request is a [`ChannelPost`].
pub async fn deliver(shared: &Shared, request: &SendRequest) -> SendResult {
    if let Some(post) = &request.post {
        return channel_post(shared, request, post).await;
    }
    let Some(user) = snowflake(&request.recipient.address) else {
        return SendResult::Failed {
            reason: format!(
                "the address {:?} is not a Discord user id (a snowflake such as 80351110224678912)",
                request.recipient.address
            ),
            unreachable: false,
        };
    };
    let messages = match format::learning_messages(request) {
        Ok(messages) => messages,
        Err(error) => return failed(&error),
    };
    shared.forms.remember(&request.actions);
    let channel = match dm_channel(shared, user).await {
        Ok(channel) => channel,
        Err(error) => return error.into_result("opening a direct message"),
    };
    post_messages(shared, request, channel, &messages).await
}

/// A post in a team's channel: posted straight into the channel the
/// address names (no DM to open), or, with `edit`, the post's last message
/// replaced in place (a PATCH of that message) to show a new status.
async fn channel_post(shared: &Shared, request: &SendRequest, post: &ChannelPost) -> SendResult {
    if let Some(provider_id) = &post.edit {
        return edit_post(shared, request, provider_id).await;
    }
    let Some(channel) = snowflake(&request.recipient.address) else {
        return SendResult::Failed {
            reason: format!(
                "the team channel address {:?} is not a Discord channel id (a snowflake such as 1200000000000000301): check team_channels in cascade.toml",
                request.recipient.address
            ),
            unreachable: false,
        };
    };
    let messages = match format::learning_messages(request) {
        Ok(messages) => messages,
        Err(error) => return failed(&error),
    };
    shared.forms.remember(&request.actions);
    post_messages(shared, request, channel, &messages).await
}

async fn edit_post(shared: &Shared, request: &SendRequest, provider_id: &str) -> SendResult {
    let ids = provider_id
        .split_once('/')
        .and_then(|(channel, message)| Some((snowflake(channel)?, snowflake(message)?)));
    let Some((channel, message)) = ids else {
        return SendResult::Failed {
            reason: format!(
                "cannot edit {provider_id:?}: not a provider id this plugin gave (channel id/message id)"
            ),
            unreachable: false,
        };
    };
    let edit = match format::post_edit(request) {
        Ok(edit) => edit,
        Err(error) => return failed(&error),
    };
    let result = shared
        .rest
        .call(
            LightMethod::Patch,
            Route::ChannelMessage {
                channel_id: ChannelId::new(channel),
                message_id: MessageId::new(message),
            },
            Some(&edit),
        )
        .await;
    match result {
        Ok(_) => SendResult::Delivered {
            provider_id: Some(provider_id.to_owned()),
        },
        Err(error) => error.into_result("the edit of the post"),
    }
}

/// Posts each message into `channel`. Parts already posted for this
/// idempotency key in an earlier attempt are not posted again, so a retry
/// after a rate limit in the middle of a long item neither loses nor
/// repeats a part. The provider id is `{channel}/{last message}`, the
/// message with the buttons.
async fn post_messages(
    shared: &Shared,
    request: &SendRequest,
    channel: u64,
    messages: &[serenity::all::CreateMessage],
) -> SendResult {
    let mut posted = shared.progress.posted(&request.idempotency_key);
    for message in messages.iter().skip(posted.len()) {
        let result = shared
            .rest
            .call(
                LightMethod::Post,
                Route::ChannelMessages {
                    channel_id: ChannelId::new(channel),
                },
                Some(message),
            )
            .await;
        match result {
            Ok(json) => {
                let id = json["id"].as_str().unwrap_or_default().to_owned();
                posted.push(id);
                shared
                    .progress
                    .record(&request.idempotency_key, posted.clone());
            }
            Err(error) => {
                let result = error.into_result("the message");
                // A failed delivery is not retried: nothing to resume.
                if matches!(result, SendResult::Failed { .. }) {
                    shared.progress.forget(&request.idempotency_key);
                }
                return result;
            }
        }
    }
    shared.progress.forget(&request.idempotency_key);
    SendResult::Delivered {
        provider_id: Some(format!(
            "{channel}/{}",
            posted.last().map(String::as_str).unwrap_or_default()
        )),
    }
}

async fn dm_channel(shared: &Shared, user: u64) -> Result<u64, ApiError> {
    if let Some(channel) = shared.dm_channels.get(user) {
        return Ok(channel);
    }
    let json = shared
        .rest
        .call(
            LightMethod::Post,
            Route::UserMeDmChannels,
            Some(&serde_json::json!({ "recipient_id": UserId::new(user) })),
        )
        .await?;
    let channel = json["id"]
        .as_str()
        .and_then(|id| id.parse().ok())
        .ok_or_else(|| ApiError::Rejected {
            status: 200,
            code: 0,
            message: "the DM channel came back without an id".to_owned(),
        })?;
    shared.dm_channels.insert(user, channel);
    Ok(channel)
}

/// Answers an interaction the plugin deferred: shows the status on the
/// message a button was on, or fills in the deferred command response, and
/// sends the host's text.
pub async fn answer(shared: &Shared, request: &SendRequest) -> SendResult {
    let Some(reply) = &request.reply else {
        return deliver(shared, request).await;
    };
    // The response to Discord goes right after the event is stored; wait
    // for it (a few seconds at most) before editing what it created.
    for _ in 0..100 {
        if !shared.responding.is_responding(&reply.event_id) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let Some(pending) = shared.interactions.take(&reply.event_id) else {
        return SendResult::Failed {
            reason: format!(
                "interaction {} is no longer waiting for an answer (already answered, past the reply timeout, or the plugin restarted)",
                reply.event_id
            ),
            unreachable: false,
        };
    };
    shared.forms.remember(&request.actions);
    shared.forms.remember(&reply.keep_actions);
    let text: String = request
        .message
        .parts
        .iter()
        .flat_map(|part| &part.chunks)
        .map(String::as_str)
        .collect::<Vec<_>>()
        .join("\n");
    let text = match (text.trim().is_empty(), &reply.notice) {
        (true, Some(notice)) => notice.clone(),
        _ => text,
    };
    let pieces = format::split_text(&format::escape_markdown(&text), CONTENT_LIMIT);
    let rest = &shared.rest;
    let token = pending.token.as_str();
    let outcome = async {
        let mut followups: &[String] = &pieces;
        match pending.answer {
            Answer::UpdateMessage => {
                if let Some(status) = &reply.status {
                    let edit = format::status_edit(status, &reply.keep_actions)
                        .map_err(|e| ("the status edit", format_error(&e)))?;
                    rest.edit_original(token, &edit)
                        .await
                        .map_err(|e| ("the status edit", e))?;
                }
            }
            Answer::EditResponse => {
                let (first, later) = pieces
                    .split_first()
                    .map_or(("", &[][..]), |(f, l)| (f.as_str(), l));
                let buttons = if later.is_empty() {
                    &request.actions[..]
                } else {
                    &[]
                };
                let edit = format::command_edit(first, buttons)
                    .map_err(|e| ("the response", format_error(&e)))?;
                rest.edit_original(token, &edit)
                    .await
                    .map_err(|e| ("the response", e))?;
                followups = later;
            }
        }
        let last = followups.len().saturating_sub(1);
        for (index, piece) in followups.iter().enumerate() {
            let buttons = if index == last {
                &request.actions[..]
            } else {
                &[]
            };
            let message = format::followup(piece, buttons, reply.private || pending.private)
                .map_err(|e| ("the follow-up", format_error(&e)))?;
            rest.follow_up(token, &message)
                .await
                .map_err(|e| ("the follow-up", e))?;
        }
        Ok::<(), (&str, ApiError)>(())
    }
    .await;
    match outcome {
        Ok(()) => SendResult::Delivered {
            provider_id: Some(reply.event_id.clone()),
        },
        // The interaction is spent either way: a retry would find nothing
        // to answer, so a transient failure is a failure too.
        Err((what, error)) => match error.into_result(what) {
            SendResult::Retry { reason, .. } => SendResult::Failed {
                reason,
                unreachable: false,
            },
            other => other,
        },
    }
}

fn format_error(error: &FormatError) -> ApiError {
    ApiError::Rejected {
        status: 0,
        code: 0,
        message: error.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn errors_are_worded_for_a_person() {
        let limited = ApiError::RateLimited {
            retry_after: Duration::from_secs(10),
        };
        assert_eq!(
            limited.to_string(),
            "Discord asked to wait 10 s before trying again (rate limited)"
        );
        assert!(limited.is_temporary());
        let refused = ApiError::Rejected {
            status: 403,
            code: 50001,
            message: "Missing Access".to_owned(),
        };
        assert_eq!(
            refused.to_string(),
            "Discord refused (HTTP 403, code 50001): Missing Access"
        );
        assert!(!refused.is_temporary());
    }

    #[test]
    fn a_cannot_message_user_refusal_makes_the_address_unreachable() {
        let result = ApiError::Unreachable {
            message: "Cannot send messages to this user".to_owned(),
        }
        .into_result("the message");
        assert!(matches!(
            result,
            SendResult::Failed {
                unreachable: true,
                ..
            }
        ));
    }

    #[test]
    fn a_rate_limit_becomes_a_retry_after_in_milliseconds() {
        let result = ApiError::RateLimited {
            retry_after: Duration::from_millis(1250),
        }
        .into_result("the message");
        assert_eq!(
            result,
            SendResult::Retry {
                reason: "Discord rate limited the message".to_owned(),
                retry_after_ms: Some(1250)
            }
        );
    }

    #[test]
    fn field_errors_are_listed_with_their_path() {
        let body = json!({"code": 50035, "message": "Invalid Form Body", "errors": {
            "embeds": {"0": {"description": {"_errors": [
                {"code": "BASE_TYPE_MAX_LENGTH", "message": "Must be 4096 or fewer in length."}
            ]}}}
        }});
        assert_eq!(
            with_details("Invalid Form Body".to_owned(), &body),
            "Invalid Form Body: embeds.0.description: Must be 4096 or fewer in length."
        );
    }
}
