//! What Teams posts to the bot's messaging endpoint, served through
//! cascade's `/webhooks/{channel}`: each request authenticated (`auth`),
//! refused unless it comes from the configured tenant through an allowed
//! Bot Connector, then read as an event (a card button, a card form, a
//! command or text) and handed to the host; the activity waits, by event
//! id, for the host's answer. A refused request becomes nothing.

pub mod auth;

use cascade_plugin_api::{InboundEvent, InboundKind, LogLevel, WebhookRequest, WebhookResponse};
use std::time::Instant;

use crate::format::{self, Activity, Said};
use crate::send::Shared;
use crate::state::Pending;

/// The channel kind events carry.
pub const CHANNEL: &str = "teams";

/// The check of a request on its headers, before the host reads its body:
/// a refused one is 401 and its body is never read.
pub fn check_headers(shared: &Shared, request: &WebhookRequest) -> Result<(), WebhookResponse> {
    if request.method != "POST" {
        return Err(WebhookResponse::text(
            405,
            "the bot's messaging endpoint takes POST only",
        ));
    }
    auth::check_headers(shared, request.header("authorization")).map_err(|error| {
        shared.host.log(
            LogLevel::Warn,
            format!("refused a webhook request on its headers: {error}"),
        );
        unauthorized()
    })
}

/// Answers one request to the messaging endpoint, emitting its event when
/// it is authentic.
pub async fn receive(shared: &Shared, request: WebhookRequest) -> WebhookResponse {
    if request.method != "POST" {
        return WebhookResponse::text(405, "the bot's messaging endpoint takes POST only");
    }
    let authorization = request.header("authorization");
    if authorization.is_none() {
        shared.host.log(
            LogLevel::Warn,
            "refused a webhook request: no Authorization header",
        );
        return unauthorized();
    }
    let activity: Activity = match serde_json::from_str(&request.body) {
        Ok(activity) => activity,
        Err(_) => return WebhookResponse::text(400, "not a Bot Framework activity"),
    };
    if let Err(error) = auth::authenticate(shared, authorization, &activity).await {
        shared.host.log(
            LogLevel::Warn,
            format!("refused a webhook request: {error}"),
        );
        return unauthorized();
    }
    let config = &shared.config;
    let tenants = activity.tenants();
    if tenants.is_empty()
        || tenants
            .iter()
            .any(|t| !t.eq_ignore_ascii_case(&config.tenant_id))
    {
        shared.host.log(
            LogLevel::Warn,
            format!(
                "refused activity {} from another tenant than the configured one",
                activity.id
            ),
        );
        return WebhookResponse::text(403, "this bot serves one tenant only");
    }
    if !config.allows_service_url(&activity.service_url) {
        shared.host.log(
            LogLevel::Warn,
            format!(
                "refused activity {}: its serviceUrl is not in allowed_service_urls",
                activity.id
            ),
        );
        return WebhookResponse::text(403, "this Bot Connector is not allowed");
    }
    if activity.kind == "message"
        && let Some(event) = event_of(shared, &activity)
    {
        // Stored before the 200: a 5xx has the Bot Connector send it again.
        let stored = match tokio::runtime::Handle::try_current().map(|h| h.runtime_flavor()) {
            Ok(tokio::runtime::RuntimeFlavor::MultiThread) => {
                tokio::task::block_in_place(|| shared.host.emit_durable(&event))
            }
            _ => shared.host.emit_durable(&event),
        };
        if let Err(error) = stored {
            shared.host.log(
                LogLevel::Warn,
                format!("activity {} was not stored: {error}", activity.id),
            );
            return WebhookResponse::text(500, "the activity could not be stored; send it again");
        }
    }
    WebhookResponse {
        status: 200,
        headers: Default::default(),
        body: String::new(),
    }
}

fn unauthorized() -> WebhookResponse {
    let mut response = WebhookResponse::text(401, "unauthorized");
    response
        .headers
        .insert("www-authenticate".to_owned(), "Bearer".to_owned());
    response
}

/// The event of an authentic message activity, kept waiting for its
/// answer; `None` when it says nothing cascade reads.
fn event_of(shared: &Shared, activity: &Activity) -> Option<InboundEvent> {
    let person = activity.person(&shared.config.tenant_id)?;
    if activity.is_personal() && !activity.conversation.id.is_empty() {
        shared
            .conversations
            .keep(&person, activity.conversation.id.clone());
    }
    let (kind, pressed) = match format::said(activity) {
        Said::Pressed(action_id) => (
            InboundKind::Action {
                action_id,
                delivery_id: None,
            },
            activity.reply_to_id.clone(),
        ),
        Said::Submitted(action_id, fields) => (
            InboundKind::Form { action_id, fields },
            activity.reply_to_id.clone(),
        ),
        Said::Command(name, args) => (InboundKind::Command { name, args }, None),
        Said::Text(text) => (InboundKind::Text { text }, None),
        Said::Nothing => return None,
    };
    let account = person.to_address();
    let id = (!activity.id.is_empty()).then(|| activity.id.clone());
    if let Some(id) = &id {
        shared.waiting.keep(
            id.clone(),
            Pending {
                service_url: activity.service_url.clone(),
                conversation_id: activity.conversation.id.clone(),
                activity_id: activity.id.clone(),
                pressed,
                person,
                personal: activity.is_personal(),
                since: Instant::now(),
            },
        );
    }
    Some(InboundEvent {
        event_id: id.clone(),
        channel: CHANNEL.to_owned(),
        address: Some(account.clone()),
        account,
        id,
        kind,
    })
}
