//! Notify's delivery receipts, posted to cascade's `/webhooks/{channel}`:
//! `Authorization: Bearer <callback token>` is checked in constant time
//! before the body is read; a receipt is emitted to the host as a
//! `Receipt` event for the reference it carries. Anything refused emits
//! nothing.

use cascade_plugin_api::{
    InboundEvent, InboundKind, LogLevel, ReceiptStatus, WebhookRequest, WebhookResponse,
};
use serde_json::Value;

use crate::send::Shared;

/// The channel kind this plugin delivers.
pub const CHANNEL: &str = "notify";

/// Compares without stopping at the first difference.
fn same(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Whether the request carries the configured callback token; otherwise
/// the 401 (or 405) that refuses it.
pub fn check_headers(shared: &Shared, request: &WebhookRequest) -> Result<(), WebhookResponse> {
    if request.method != "POST" {
        return Err(WebhookResponse::text(405, "Notify posts delivery receipts"));
    }
    let Some(expected) = &shared.config.callback_token else {
        return Err(WebhookResponse::text(
            401,
            "no callback_token is configured for this channel",
        ));
    };
    let given = request
        .header("authorization")
        .and_then(|h| h.strip_prefix("Bearer "))
        .map(str::trim);
    match given {
        Some(token) if same(token.as_bytes(), expected.as_bytes()) => Ok(()),
        _ => Err(WebhookResponse::text(401, "unauthorised")),
    }
}

/// A receipt's status, or `None` for one that is not final (Notify sends
/// only final ones, but says `sending` for some SMS without a report).
fn status_of(status: &str) -> Option<ReceiptStatus> {
    Some(match status {
        "delivered" => ReceiptStatus::Delivered,
        "permanent-failure" => ReceiptStatus::PermanentFailure,
        "temporary-failure" => ReceiptStatus::TemporaryFailure,
        "technical-failure" => ReceiptStatus::TechnicalFailure,
        _ => return None,
    })
}

/// Handles a whole callback request.
pub fn receive(shared: &Shared, request: &WebhookRequest) -> WebhookResponse {
    if let Err(refusal) = check_headers(shared, request) {
        return refusal;
    }
    let Ok(receipt) = serde_json::from_str::<Value>(&request.body) else {
        return WebhookResponse::text(400, "the body is not JSON");
    };
    let (Some(reference), Some(to), Some(status)) = (
        receipt["reference"].as_str(),
        receipt["to"].as_str(),
        receipt["status"].as_str(),
    ) else {
        // Not one of ours (sent without a reference) or not a receipt.
        return WebhookResponse::text(200, "ignored");
    };
    let Some(status) = status_of(status) else {
        return WebhookResponse::text(200, "not final");
    };
    shared.host.log(
        LogLevel::Debug,
        format!(
            "Notify receipt for {}: {status:?}",
            receipt["id"].as_str().unwrap_or("an unknown notification")
        ),
    );
    // Stored before the 200: Notify retries a callback that failed.
    let stored = shared.host.emit_durable(&InboundEvent {
        event_id: receipt["id"].as_str().map(|id| format!("{id}:{status:?}")),
        channel: CHANNEL.to_owned(),
        account: to.to_owned(),
        id: None,
        address: None,
        kind: InboundKind::Receipt {
            idempotency_key: reference.to_owned(),
            status,
        },
    });
    if let Err(error) = stored {
        shared.host.log(
            LogLevel::Warn,
            format!("a Notify receipt was not stored: {error}"),
        );
        return WebhookResponse::text(500, "the receipt could not be stored; send it again");
    }
    WebhookResponse::text(200, "ok")
}
