//! `/webhooks/{channel}`: providers' HTTP requests handed to the channel
//! plugin that takes them.

use crate::listen::body_timed_out;
use crate::page::security_headers;
use axum::Router;
use axum::extract::{Path, Request, State};
use axum::http::{HeaderName, HeaderValue, StatusCode, header};
use axum::middleware;
use axum::response::{IntoResponse, Response};
use axum::routing::any;
use cascade_plugin_api::{WebhookRequest, WebhookResponse};
use cascade_plugin_host::PluginHost;
use std::collections::HashMap;
use std::sync::Arc;

/// Largest webhook body accepted: providers post small JSON updates.
const WEBHOOK_BODY_LIMIT: usize = 1024 * 1024;

/// `/webhooks/{channel}` (and any path below it): a provider's HTTP request
/// for a channel instance whose plugin takes webhooks, such as Telegram's
/// updates in webhook mode. The plugin authenticates the request (Telegram's
/// secret-token header) and writes the response; any other channel is 404.
/// Not rate limited per client address: providers post from few addresses,
/// and an unauthenticated request costs the plugin one comparison.
pub fn webhook_router(host: Arc<PluginHost>) -> Router {
    Router::new()
        .route("/webhooks/{channel}", any(webhook))
        .route("/webhooks/{channel}/{*rest}", any(webhook))
        .layer(axum::extract::DefaultBodyLimit::max(WEBHOOK_BODY_LIMIT))
        .layer(middleware::map_response(security_headers))
        .with_state(host)
}

async fn webhook(
    State(host): State<Arc<PluginHost>>,
    Path(path): Path<HashMap<String, String>>,
    request: Request,
) -> Response {
    let not_found = || (StatusCode::NOT_FOUND, "no such webhook\n").into_response();
    let Some(instance) = path
        .get("channel")
        .and_then(|name| host.instance(name).ok())
        .filter(|instance| instance.takes_webhooks())
    else {
        return not_found();
    };
    let (parts, body) = request.into_parts();
    let mut headers = std::collections::BTreeMap::<String, String>::new();
    for (name, value) in &parts.headers {
        let Ok(value) = value.to_str() else { continue };
        headers
            .entry(name.as_str().to_owned())
            .and_modify(|v| {
                v.push_str(", ");
                v.push_str(value);
            })
            .or_insert_with(|| value.to_owned());
    }
    let mut request = WebhookRequest {
        method: parts.method.as_str().to_owned(),
        path: path
            .get("rest")
            .map(|rest| format!("/{rest}"))
            .unwrap_or_default(),
        query: parts.uri.query().map(str::to_owned),
        headers,
        body: String::new(),
        body_pending: false,
    };
    // A plugin that authenticates on headers (a secret header) is asked
    // before the body is read: a forged request costs no more than its
    // headers, however large a body it announces or however slowly it
    // sends it.
    if instance.checks_webhook_headers() {
        request.body_pending = true;
        match instance.webhook(&request).await {
            Ok(Some(response)) if response.status == WebhookResponse::PROCEED => {}
            answer => return plugin_answer(&instance.name, answer),
        }
        request.body_pending = false;
    }
    let announced = parts
        .headers
        .get(header::CONTENT_LENGTH)
        .and_then(|length| length.to_str().ok()?.parse::<u64>().ok());
    if announced.is_some_and(|length| length > WEBHOOK_BODY_LIMIT as u64) {
        return (StatusCode::PAYLOAD_TOO_LARGE, "body too large\n").into_response();
    }
    let body = match axum::body::to_bytes(body, WEBHOOK_BODY_LIMIT).await {
        Ok(body) => body,
        Err(e) if body_timed_out(&e) => {
            return (
                StatusCode::REQUEST_TIMEOUT,
                [(header::CONNECTION, "close")],
                "the body did not arrive in time\n",
            )
                .into_response();
        }
        Err(_) => return (StatusCode::PAYLOAD_TOO_LARGE, "body too large\n").into_response(),
    };
    let Ok(body) = String::from_utf8(body.to_vec()) else {
        return (StatusCode::BAD_REQUEST, "the body is not UTF-8 text\n").into_response();
    };
    request.body = body;
    plugin_answer(&instance.name, instance.webhook(&request).await)
}

/// What the plugin answered a webhook request with, as HTTP.
fn plugin_answer(
    channel: &str,
    answer: Result<Option<WebhookResponse>, cascade_plugin_host::PluginError>,
) -> Response {
    match answer {
        Ok(Some(response)) => webhook_response(response),
        Ok(None) => (StatusCode::NOT_FOUND, "no such webhook\n").into_response(),
        Err(e) => {
            tracing::warn!(channel, "a webhook request was not handled: {e}");
            (
                StatusCode::SERVICE_UNAVAILABLE,
                [(header::RETRY_AFTER, "5")],
                "the channel is not taking requests now; try again\n",
            )
                .into_response()
        }
    }
}

/// The plugin's response as HTTP. Only content headers pass: the server
/// owns the connection and security headers.
fn webhook_response(response: WebhookResponse) -> Response {
    // An informational status (such as "go on" to a whole request) is no
    // final answer.
    let status = StatusCode::from_u16(response.status)
        .ok()
        .filter(|status| !status.is_informational())
        .unwrap_or(StatusCode::BAD_GATEWAY);
    let mut http = (status, response.body).into_response();
    for (name, value) in response.headers {
        let allowed = matches!(name.as_str(), "content-type" | "retry-after");
        if let (true, Ok(name), Ok(value)) = (
            allowed,
            HeaderName::try_from(name.as_str()),
            HeaderValue::try_from(value.as_str()),
        ) {
            http.headers_mut().insert(name, value);
        }
    }
    http
}
