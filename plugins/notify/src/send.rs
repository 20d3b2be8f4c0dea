//! The I/O of sending: a JWT for every request as Notify specifies (HS256
//! under the key's secret, the service id as issuer, issued now), the
//! look-up by reference that keeps a send after a crash from sending
//! twice, the paced `POST /v2/notifications/{email|sms}`, and Notify's
//! answers as the host's outcomes.

use cascade_plugin_api::{Host, LogLevel, SendRequest, SendResult};
use serde_json::{Value, json};
use std::time::{Duration, Instant};

use crate::config::{Kind, NotifyConfig};
use crate::format::{self, errors_of};
use crate::state::{Journal, Pacing, Wait, unix_now};

/// How long a 429 without a `Retry-After` waits: Notify counts requests
/// over 60 seconds.
const RATE_LIMIT_WAIT: Duration = Duration::from_secs(60);

/// What every send and the webhook share.
pub struct Shared {
    pub config: NotifyConfig,
    pub client: reqwest::Client,
    pub host: Host,
    pub pacing: Pacing,
    pub journal: Journal,
}

/// Builds the HTTP client every call uses.
pub fn client() -> Result<reqwest::Client, String> {
    reqwest::Client::builder()
        .use_rustls_tls()
        .timeout(Duration::from_secs(20))
        .build()
        .map_err(|error| format!("could not set up the HTTP client: {error}"))
}

/// The bearer token of one request: `{"typ":"JWT","alg":"HS256"}` over
/// `{"iss": service id, "iat": now}`, signed with the key's secret. Notify
/// refuses one issued more than 30 seconds from its own clock, so each
/// request gets a fresh one.
pub fn token(config: &NotifyConfig, unix: u64) -> Result<String, String> {
    let header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256);
    let claims = json!({ "iss": config.api_key.service_id, "iat": unix });
    jsonwebtoken::encode(
        &header,
        &claims,
        &jsonwebtoken::EncodingKey::from_secret(config.api_key.secret.as_bytes()),
    )
    .map_err(|e| format!("could not sign the request: {e}"))
}

/// A request's answer: the status and the JSON body (null if not JSON),
/// and `Retry-After` in seconds if given.
struct Answer {
    status: u16,
    body: Value,
    retry_after: Option<Duration>,
}

/// Waits for a slot under the pacing, up to `max_pacing_wait`; a longer
/// wait comes back as the retry it becomes.
async fn paced(shared: &Shared, message: bool) -> Result<(), SendResult> {
    loop {
        match shared.pacing.take(Instant::now(), unix_now(), message) {
            Ok(()) => return Ok(()),
            Err(Wait::Minute(wait)) if wait <= shared.config.max_pacing_wait => {
                tokio::time::sleep(wait.max(Duration::from_millis(1))).await;
            }
            Err(Wait::Minute(wait)) => {
                return Err(retry(
                    format!(
                        "deferred: Notify's {} requests a minute are in use",
                        shared.config.per_minute
                    ),
                    Some(wait),
                ));
            }
            Err(Wait::Day(wait)) => {
                return Err(retry(
                    format!(
                        "deferred to tomorrow: the service's {} messages for today are sent",
                        shared.config.per_day.unwrap_or_default()
                    ),
                    Some(wait),
                ));
            }
        }
    }
}

fn retry(reason: String, after: Option<Duration>) -> SendResult {
    SendResult::Retry {
        reason,
        retry_after_ms: after.map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX)),
    }
}

async fn call(
    shared: &Shared,
    method: reqwest::Method,
    path: &str,
    body: Option<&Value>,
) -> Result<Answer, String> {
    let token = token(&shared.config, unix_now())?;
    let mut request = shared
        .client
        .request(method, format!("{}{path}", shared.config.base_url))
        .bearer_auth(token)
        .header(
            "user-agent",
            concat!("cascade-notify/", env!("CARGO_PKG_VERSION")),
        );
    if let Some(body) = body {
        request = request.json(body);
    }
    let response = request
        .send()
        .await
        .map_err(|e| e.without_url().to_string())?;
    let status = response.status().as_u16();
    let retry_after = response
        .headers()
        .get("retry-after")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok())
        .map(Duration::from_secs);
    let body = response.json().await.unwrap_or(Value::Null);
    Ok(Answer {
        status,
        body,
        retry_after,
    })
}

/// Notify's error messages joined, or the status alone.
fn messages(answer: &Answer) -> String {
    let errors = errors_of(&answer.body);
    if errors.is_empty() {
        format!("HTTP {}", answer.status)
    } else {
        errors
            .iter()
            .map(|(_, m)| m.as_str())
            .collect::<Vec<_>>()
            .join("; ")
    }
}

/// Notify's answer to a request that is not a 2xx, as the host's outcome.
fn refused(answer: &Answer, what: &str) -> SendResult {
    let errors = errors_of(&answer.body);
    let message = messages(answer);
    let said = |name: &str| errors.iter().any(|(e, _)| e == name);
    match answer.status {
        429 if said("TooManyRequestsError") => {
            let unix = unix_now();
            let midnight = (unix / 86_400 + 1) * 86_400;
            retry(
                format!("deferred to tomorrow: Notify says {message}"),
                Some(Duration::from_secs(midnight - unix)),
            )
        }
        429 => retry(
            format!("Notify rate limited {what}: {message}"),
            Some(answer.retry_after.unwrap_or(RATE_LIMIT_WAIT)),
        ),
        500..=599 => retry(
            format!(
                "Notify answered {what} with HTTP {}: {message}",
                answer.status
            ),
            answer.retry_after,
        ),
        403 => SendResult::Failed {
            reason: format!(
                "Notify refused the API key for {what} (HTTP 403: {message}); check that api_key is a current key of this service (Notify: API integration, API keys), and that this server's clock is right to within 30 seconds"
            ),
            unreachable: false,
        },
        400 if message.contains("trial mode") || message.contains("team-only API key") => {
            SendResult::Failed {
                reason: format!(
                    "Notify would not send {what} to this recipient (HTTP 400: {message}); a trial-mode service or a team key sends only to the team and its guest list: ask Notify to make the service live and use a live key"
                ),
                unreachable: false,
            }
        }
        400 => SendResult::Failed {
            // An address Notify says is invalid never will be valid here.
            unreachable: errors.iter().any(|(e, m)| {
                e == "ValidationError"
                    && (m.starts_with("phone_number") || m.starts_with("email_address"))
            }),
            reason: format!("Notify refused {what} (HTTP 400: {message})"),
        },
        status => SendResult::Failed {
            reason: format!("Notify refused {what} (HTTP {status}: {message})"),
            unreachable: false,
        },
    }
}

/// What Notify already has under a reference: the id of a notification
/// sent with it, if any.
async fn sent_with(shared: &Shared, reference: &str) -> Result<Option<String>, SendResult> {
    paced(shared, false).await?;
    let kind = shared.config.kind.name();
    let query: String = reference
        .bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect();
    let answer = call(
        shared,
        reqwest::Method::GET,
        &format!("/v2/notifications?reference={query}&template_type={kind}"),
        None,
    )
    .await
    .map_err(|e| retry(format!("could not ask Notify what it has: {e}"), None))?;
    if answer.status != 200 {
        return Err(match refused(&answer, "the look-up") {
            // A look-up that fails for now must not become a second message.
            SendResult::Failed { reason, .. } => SendResult::Failed {
                reason,
                unreachable: false,
            },
            other => other,
        });
    }
    Ok(answer.body["notifications"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|n| n["reference"].as_str() == Some(reference))
        .map(|n| n["id"].as_str().unwrap_or_default().to_owned()))
}

/// Delivers one message: asks Notify first if this reference may have been
/// sent before, then posts it.
pub async fn deliver(shared: &Shared, request: &SendRequest) -> SendResult {
    let what = match shared.config.kind {
        Kind::Email => "the email",
        Kind::Sms => "the text message",
    };
    let payload = match format::payload(&shared.config, request) {
        Ok(payload) => payload,
        Err(e) => {
            return SendResult::Failed {
                reason: e.to_string(),
                unreachable: false,
            };
        }
    };
    let reference = request.idempotency_key.as_str();
    if shared.journal.may_have_sent(reference) {
        match sent_with(shared, reference).await {
            Ok(Some(id)) => {
                shared.host.log(
                    LogLevel::Info,
                    format!(
                        "delivery {} was already at Notify as {id}; not sent again",
                        request.delivery_id
                    ),
                );
                return SendResult::Delivered {
                    provider_id: Some(id),
                };
            }
            Ok(None) => {}
            Err(outcome) => return outcome,
        }
    }
    if let Err(outcome) = paced(shared, true).await {
        return outcome;
    }
    if let Err(e) = shared.journal.note(reference) {
        shared.pacing.give_back();
        return retry(e, None);
    }
    let path = format!("/v2/notifications/{}", shared.config.kind.name());
    let answer = match call(shared, reqwest::Method::POST, &path, Some(&payload)).await {
        Ok(answer) => answer,
        Err(e) => return retry(format!("could not reach Notify for {what}: {e}"), None),
    };
    match answer.status {
        200..=299 => SendResult::Delivered {
            provider_id: answer.body["id"].as_str().map(str::to_owned),
        },
        _ => {
            shared.pacing.give_back();
            refused(&answer, what)
        }
    }
}
