//! The HTTP server `cascade serve` runs. For now only a health endpoint;
//! acknowledgement links and webhooks arrive with later releases, each
//! authenticated.

use axum::{Json, Router, routing::get};

pub fn router() -> Router {
    Router::new().route("/health", get(health))
}

async fn health() -> Json<serde_json::Value> {
    Json(serde_json::json!({ "status": "ok" }))
}
