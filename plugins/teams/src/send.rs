//! The I/O of sending: the app token from the token endpoint (OAuth 2.0
//! client credentials), calls to the Bot Connector paced by Teams' limits
//! (each answer read for 429 and its Retry-After, 403 and 404), a learning
//! message delivered to a person's one-to-one chat or posted in a team's
//! channel (and that post updated), and the answer to an event once the
//! host has decided what to say. `Shared` gathers what these calls and the
//! webhook (`inbound`) both need.

use cascade_plugin_api::{ChannelPost, Host, SendRequest, SendResult};
use serde_json::Value;
use std::time::{Duration, Instant};

use crate::config::TeamsConfig;
use crate::format::{self, FormatError, PersonRef};
use crate::state::{AppToken, Conversations, Pacing, Progress, SentCards, SigningKeys, Waiting};

/// What sends and the webhook share: the configuration, the HTTP client,
/// the host, and the state kept between calls.
pub struct Shared {
    pub config: TeamsConfig,
    pub client: reqwest::Client,
    pub host: Host,
    pub token: AppToken,
    /// Held while a token is fetched, so a burst of sends fetches one.
    pub token_fetch: tokio::sync::Mutex<()>,
    pub keys: SigningKeys,
    pub keys_fetch: tokio::sync::Mutex<()>,
    pub pacing: Pacing,
    pub conversations: Conversations,
    pub cards: SentCards,
    pub progress: Progress,
    pub waiting: Waiting,
}

/// Why a Bot Connector call did not succeed. Never carries the token or
/// the app password.
#[derive(Debug, Clone, PartialEq)]
pub enum ApiError {
    RateLimited { retry_after: Duration },
    Server { status: u16 },
    Unreachable { status: u16, code: String },
    Rejected { status: u16, code: String },
    Token(String),
    Transport(String),
}

impl ApiError {
    pub fn into_result(self, what: &str) -> SendResult {
        match self {
            ApiError::RateLimited { retry_after } => SendResult::Retry {
                reason: format!("Teams rate limited {what}"),
                retry_after_ms: Some(u64::try_from(retry_after.as_millis()).unwrap_or(u64::MAX)),
            },
            ApiError::Server { status } => SendResult::Retry {
                reason: format!("the Bot Connector answered {what} with HTTP {status}"),
                retry_after_ms: None,
            },
            ApiError::Transport(error) => SendResult::Retry {
                reason: format!("could not reach the Bot Connector for {what}: {error}"),
                retry_after_ms: None,
            },
            ApiError::Token(error) => SendResult::Retry {
                reason: format!("could not get an app token for {what}: {error}"),
                retry_after_ms: None,
            },
            ApiError::Unreachable { status, code } => SendResult::Failed {
                reason: format!(
                    "Teams refused {what} (HTTP {status}, {code}): the bot is not in the conversation or was blocked"
                ),
                unreachable: true,
            },
            ApiError::Rejected { status, code } => SendResult::Failed {
                reason: format!("Teams refused {what} (HTTP {status}, {code})"),
                unreachable: false,
            },
        }
    }
}

/// Builds the HTTP client every call uses.
pub fn client() -> Result<reqwest::Client, String> {
    reqwest::Client::builder()
        .use_rustls_tls()
        .timeout(Duration::from_secs(20))
        .build()
        .map_err(|error| format!("could not set up the HTTP client: {error}"))
}

fn transport(error: reqwest::Error) -> ApiError {
    ApiError::Transport(error.without_url().to_string())
}

/// The app token, fetched with the client-credentials grant when none is
/// held or it expires within five minutes.
pub async fn app_token(shared: &Shared) -> Result<String, ApiError> {
    if let Some(token) = shared.token.current(Instant::now()) {
        return Ok(token);
    }
    let _fetching = shared.token_fetch.lock().await;
    if let Some(token) = shared.token.current(Instant::now()) {
        return Ok(token);
    }
    let config = &shared.config;
    let response = shared
        .client
        .post(&config.token_url)
        .form(&[
            ("grant_type", "client_credentials"),
            ("client_id", config.app_id.as_str()),
            ("client_secret", config.app_password.as_str()),
            ("scope", config.token_scope.as_str()),
        ])
        .send()
        .await
        .map_err(|e| ApiError::Token(e.without_url().to_string()))?;
    let status = response.status().as_u16();
    let json: Value = response.json().await.unwrap_or(Value::Null);
    if status != 200 {
        // OAuth's error code only: its description may echo the request.
        let code = json["error"].as_str().unwrap_or("no error code");
        return Err(ApiError::Token(format!(
            "the token endpoint answered HTTP {status} ({code}); check app_id, tenant_id and the app password"
        )));
    }
    let token = json["access_token"]
        .as_str()
        .filter(|t| !t.is_empty())
        .ok_or_else(|| ApiError::Token("the token endpoint gave no access_token".to_owned()))?
        .to_owned();
    let lifetime = json["expires_in"]
        .as_u64()
        .or_else(|| json["expires_in"].as_str().and_then(|s| s.parse().ok()))
        .unwrap_or(3600);
    shared.token.keep(
        token.clone(),
        Instant::now() + Duration::from_secs(lifetime),
    );
    Ok(token)
}

/// One Bot Connector call, on `conversation` when it is an operation in a
/// conversation that Teams' limits count (sending, replying, updating):
/// then a short pacing wait is waited out and a longer one is a retry, and
/// a 429 blocks the conversation for its Retry-After (counted from the
/// answer). A 429 is a retry either way; a 401 fetches a new token once.
pub async fn call(
    shared: &Shared,
    method: reqwest::Method,
    url: &str,
    conversation: Option<&str>,
    body: &Value,
) -> Result<Value, ApiError> {
    if let Some(conversation) = conversation {
        let wait = shared
            .pacing
            .reserve(conversation, Instant::now(), shared.config.max_pacing_wait)
            .map_err(|retry_after| ApiError::RateLimited { retry_after })?;
        if !wait.is_zero() {
            tokio::time::sleep(wait).await;
        }
    }
    for attempt in 1..=2 {
        let token = app_token(shared).await?;
        let response = shared
            .client
            .request(method.clone(), url)
            .bearer_auth(&token)
            .json(body)
            .send()
            .await
            .map_err(transport)?;
        let answered = Instant::now();
        let status = response.status().as_u16();
        let retry_after = response
            .headers()
            .get(reqwest::header::RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<f64>().ok())
            .filter(|s| s.is_finite() && *s >= 0.0)
            .map(Duration::from_secs_f64);
        let json: Value = response.json().await.unwrap_or(Value::Null);
        let code = json["error"]["code"]
            .as_str()
            .unwrap_or("no error code")
            .to_owned();
        match status {
            200..=299 => return Ok(json),
            401 if attempt == 1 => shared.token.forget(&token),
            429 => {
                let retry_after = retry_after.unwrap_or(Duration::from_secs(1));
                if let Some(conversation) = conversation {
                    shared.pacing.block(conversation, answered, retry_after);
                }
                return Err(ApiError::RateLimited { retry_after });
            }
            403 | 404 => return Err(ApiError::Unreachable { status, code }),
            500..=599 => return Err(ApiError::Server { status }),
            _ => return Err(ApiError::Rejected { status, code }),
        }
    }
    Err(ApiError::Rejected {
        status: 401,
        code: "the Bot Connector refused a fresh app token".to_owned(),
    })
}

fn activities_url(service_url: &str, conversation: &str) -> String {
    format!(
        "{}/v3/conversations/{}/activities",
        service_url.trim_end_matches('/'),
        encode(conversation)
    )
}

/// A conversation or activity id as one path segment.
fn encode(id: &str) -> String {
    let mut out = String::with_capacity(id.len());
    for byte in id.bytes() {
        if byte.is_ascii_alphanumeric() || b"-._~:@".contains(&byte) {
            out.push(char::from(byte));
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

fn failed(error: &FormatError) -> SendResult {
    SendResult::Failed {
        reason: error.to_string(),
        unreachable: false,
    }
}

fn refused(reason: String) -> SendResult {
    SendResult::Failed {
        reason,
        unreachable: false,
    }
}

/// A provider id: the conversation and the activity, so an update finds
/// the activity again; the service URL is the configured one for posts.
fn provider_id(conversation: &str, activity: &str) -> String {
    format!("{conversation}|{activity}")
}

/// Delivers a learning message: to a person's one-to-one chat, or as a
/// post in a team's channel when the request is a [`ChannelPost`].
pub async fn deliver(shared: &Shared, request: &SendRequest) -> SendResult {
    if let Some(post) = &request.post {
        return channel_post(shared, request, post).await;
    }
    let Some(person) = PersonRef::parse(&request.recipient.address) else {
        return refused(format!(
            "the address {:?} is not a Teams address (it is set when the person sends `link CODE` to the bot)",
            request.recipient.address
        ));
    };
    if !shared.config.allows_service_url(&person.service_url) {
        return refused(format!(
            "the person's Bot Connector {:?} is not in allowed_service_urls",
            person.service_url
        ));
    }
    let activities = match format::learning_activities(request) {
        Ok(activities) => activities,
        Err(error) => return failed(&error),
    };
    let conversation = match personal_conversation(shared, &person).await {
        Ok(conversation) => conversation,
        Err(error) => return error.into_result("opening the chat with the person"),
    };
    post_activities(
        shared,
        request,
        &person.service_url,
        &conversation,
        activities,
    )
    .await
}

/// The bot's one-to-one conversation with `person`: remembered, or opened
/// with `POST /v3/conversations` (Teams gives back the existing chat).
async fn personal_conversation(shared: &Shared, person: &PersonRef) -> Result<String, ApiError> {
    if let Some(conversation) = shared.conversations.get(person) {
        return Ok(conversation);
    }
    let url = format!(
        "{}/v3/conversations",
        person.service_url.trim_end_matches('/')
    );
    let json = call(
        shared,
        reqwest::Method::POST,
        &url,
        None,
        &format::new_conversation(&shared.config.app_id, person),
    )
    .await?;
    let conversation = json["id"]
        .as_str()
        .filter(|id| !id.is_empty())
        .ok_or_else(|| ApiError::Rejected {
            status: 200,
            code: "the new conversation came back without an id".to_owned(),
        })?
        .to_owned();
    shared.conversations.keep(person, conversation.clone());
    Ok(conversation)
}

/// A post in a team's channel (the address is the channel's conversation
/// id), or with `edit`, the post's last card replaced to show a new count.
async fn channel_post(shared: &Shared, request: &SendRequest, post: &ChannelPost) -> SendResult {
    let service_url = shared.config.service_url.clone();
    if let Some(provider_id) = &post.edit {
        let Some((conversation, activity)) = provider_id.rsplit_once('|') else {
            return refused(format!(
                "cannot update {provider_id:?}: not a provider id this plugin gave"
            ));
        };
        let activities = match format::learning_activities(request) {
            Ok(activities) => activities,
            Err(error) => return failed(&error),
        };
        let Some(last) = activities.last() else {
            return failed(&FormatError::Empty);
        };
        let url = format!(
            "{}/{}",
            activities_url(&service_url, conversation),
            encode(activity)
        );
        return match call(shared, reqwest::Method::PUT, &url, Some(conversation), last).await {
            Ok(_) => SendResult::Delivered {
                provider_id: Some(provider_id.clone()),
            },
            Err(error) => error.into_result("the update of the post"),
        };
    }
    let conversation = request.recipient.address.trim();
    if conversation.is_empty() || PersonRef::parse(conversation).is_some() {
        return refused(format!(
            "the team channel address {conversation:?} is not a Teams channel id (such as 19:…@thread.tacv2): check team_channels in cascade.toml"
        ));
    }
    let activities = match format::learning_activities(request) {
        Ok(activities) => activities,
        Err(error) => return failed(&error),
    };
    post_activities(shared, request, &service_url, conversation, activities).await
}

/// Posts each activity into `conversation`. Parts already posted for this
/// idempotency key in an earlier attempt are not posted again. The last
/// card is kept for status updates; the provider id names it.
async fn post_activities(
    shared: &Shared,
    request: &SendRequest,
    service_url: &str,
    conversation: &str,
    activities: Vec<Value>,
) -> SendResult {
    let url = activities_url(service_url, conversation);
    let mut posted = shared.progress.posted(&request.idempotency_key);
    let total = activities.len();
    for (index, activity) in activities.into_iter().enumerate().skip(posted.len()) {
        match call(
            shared,
            reqwest::Method::POST,
            &url,
            Some(conversation),
            &activity,
        )
        .await
        {
            Ok(json) => {
                let id = json["id"].as_str().unwrap_or_default().to_owned();
                if index + 1 == total {
                    shared.cards.keep(&id, activity);
                }
                posted.push(id);
                shared
                    .progress
                    .record(&request.idempotency_key, posted.clone());
            }
            Err(error) => {
                let result = error.into_result("the message");
                if matches!(result, SendResult::Failed { .. }) {
                    shared.progress.forget(&request.idempotency_key);
                }
                return result;
            }
        }
    }
    shared.progress.forget(&request.idempotency_key);
    SendResult::Delivered {
        provider_id: Some(provider_id(
            conversation,
            posted.last().map(String::as_str).unwrap_or_default(),
        )),
    }
}

/// Answers an event: the pressed card updated to show the status, and the
/// host's text as a reply to the activity (in the person's own chat when
/// the press was on a shared post and the answer is private).
pub async fn answer(shared: &Shared, request: &SendRequest) -> SendResult {
    let Some(reply) = &request.reply else {
        return deliver(shared, request).await;
    };
    let Some(pending) = shared.waiting.take(&reply.event_id) else {
        return refused(format!(
            "event {} is no longer waiting for an answer (already answered, too old, or the plugin restarted)",
            reply.event_id
        ));
    };
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
    let outcome = async {
        if let (Some(status), Some(pressed)) = (&reply.status, &pending.pressed)
            && let Some(sent) = shared.cards.get(pressed)
        {
            let update = format::status_update(&sent, status, &reply.keep_actions)
                .map_err(|e| ("the status update", format_error(&e)))?;
            let url = format!(
                "{}/{}",
                activities_url(&pending.service_url, &pending.conversation_id),
                encode(pressed)
            );
            call(
                shared,
                reqwest::Method::PUT,
                &url,
                Some(&pending.conversation_id),
                &update,
            )
            .await
            .map_err(|e| ("the status update", e))?;
            shared.cards.keep(pressed, update);
        }
        let replies = format::reply_activities(&text, &request.actions)
            .map_err(|e| ("the answer", format_error(&e)))?;
        if replies.is_empty() {
            return Ok(());
        }
        // Teams has no message only one member of a channel sees: a
        // private answer to a press on a team post goes to their own chat.
        let (url, conversation) = if reply.private && !pending.personal {
            let conversation = personal_conversation(shared, &pending.person)
                .await
                .map_err(|e| ("the private answer", e))?;
            (
                activities_url(&pending.person.service_url, &conversation),
                conversation,
            )
        } else {
            (
                format!(
                    "{}/{}",
                    activities_url(&pending.service_url, &pending.conversation_id),
                    encode(&pending.activity_id)
                ),
                pending.conversation_id.clone(),
            )
        };
        for activity in &replies {
            call(
                shared,
                reqwest::Method::POST,
                &url,
                Some(&conversation),
                activity,
            )
            .await
            .map_err(|e| ("the answer", e))?;
        }
        Ok::<(), (&str, ApiError)>(())
    }
    .await;
    match outcome {
        Ok(()) => SendResult::Delivered {
            provider_id: Some(reply.event_id.clone()),
        },
        // The event is spent either way: a retry would find nothing to
        // answer, so a transient failure is a failure too.
        Err((what, error)) => match error.into_result(what) {
            SendResult::Retry { reason, .. } => refused(reason),
            other => other,
        },
    }
}

fn format_error(error: &FormatError) -> ApiError {
    ApiError::Rejected {
        status: 0,
        code: error.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_refusal_to_reach_the_person_makes_the_address_unreachable() {
        let result = ApiError::Unreachable {
            status: 403,
            code: "BotNotInConversationRoster".to_owned(),
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
        assert_eq!(
            ApiError::RateLimited {
                retry_after: Duration::from_millis(1500)
            }
            .into_result("the message"),
            SendResult::Retry {
                reason: "Teams rate limited the message".to_owned(),
                retry_after_ms: Some(1500)
            }
        );
    }

    #[test]
    fn ids_are_one_path_segment() {
        assert_eq!(
            encode("19:abc@thread.tacv2;messageid=1/2"),
            "19:abc@thread.tacv2%3Bmessageid%3D1%2F2"
        );
    }
}
