//! The HTTP server `cascade serve` runs: a health endpoint and, when signed
//! links are configured, the acknowledgement and champion confirmation
//! pages. Every request to those is authenticated by its token; a GET never
//! records anything (mail scanners follow links), a POST answers only after
//! its transaction committed. Every response carries security headers; the
//! public routes are rate limited per client address (named by a trusted
//! proxy's `X-Forwarded-For`, see [`client`]). [`serve`] runs the accept
//! loop with header, body and idle timeouts and a connection cap.
//!
//! Modules, lowest first: `page` (security headers, HTML responses),
//! `client` (who the client is), `listen` (the accept loop), `rate_limit`,
//! `webhook` (providers' requests to channel plugins) and `ack_routes`
//! (thin handlers over the engine's acknowledgement service).

mod ack_routes;
mod client;
mod listen;
mod page;
mod rate_limit;
mod webhook;

pub use ack_routes::{Clock, ServerState};
pub use client::{Cidr, CidrError, client_address};
#[cfg(unix)]
pub use listen::raise_open_file_limit;
pub use listen::{BodyTimedOut, ServerConfig, body_timed_out, serve};
pub use rate_limit::RateLimit;
pub use webhook::webhook_router;

use axum::middleware;
use axum::{Json, Router, routing::get, routing::post};
use cascade_store::AllStores;
use page::security_headers;
use rate_limit::{Limiter, rate_limited};
use std::sync::Arc;

/// The health endpoint alone, for a project without signed links.
pub fn router() -> Router {
    Router::new()
        .route("/health", get(health))
        .route("/metrics", get(metrics))
        .layer(middleware::map_response(security_headers))
}

/// The health endpoint with the acknowledgement (`/ack/{token}`) and
/// champion confirmation (`/confirm/{token}`) routes. The rate limit keys on
/// the client address, so serve it with [`serve`] (or anything else that
/// puts `ConnectInfo<SocketAddr>` in each request).
pub fn ack_router<S: AllStores>(state: ServerState<S>) -> Router {
    use ack_routes::{
        ack_page, acknowledge, answer_page, answer_refresher, cascade_page, confirm_cascade,
        record_answer, record_reason, refresher_question,
    };
    let rate_limit = state.rate_limit;
    let trusted_proxies = state.trusted_proxies.clone();
    let mut public = Router::new()
        .route("/ack/{token}", get(ack_page::<S>).post(acknowledge::<S>))
        .route(
            "/confirm/{token}",
            get(cascade_page::<S>).post(confirm_cascade::<S>),
        )
        .route(
            "/answer/{token}/{n}",
            get(answer_page::<S>).post(record_answer::<S>),
        )
        .route("/reason/{token}/{n}", post(record_reason::<S>))
        .route(
            "/refresher/{token}",
            get(refresher_question::<S>).post(answer_refresher::<S>),
        )
        .with_state(Arc::new(state));
    if let Some(limit) = rate_limit {
        public = public.layer(middleware::from_fn_with_state(
            Arc::new(Limiter::new(limit, trusted_proxies)),
            rate_limited,
        ));
    }
    Router::new()
        .route("/health", get(health))
        .route("/metrics", get(metrics))
        .merge(public)
        .layer(middleware::map_response(security_headers))
}

/// Whether the store answers, for `/health`.
pub type StoreCheck =
    Box<dyn Fn() -> std::pin::Pin<Box<dyn Future<Output = bool> + Send>> + Send + Sync>;

/// What `/health` reports on, per part, when the router is given it as an
/// [`axum::Extension`]: the store and each configured channel. Without
/// it, `/health` only says the server is up.
pub struct Health {
    pub host: Arc<cascade_plugin_host::PluginHost>,
    pub store: StoreCheck,
}

/// Renders the Prometheus text page, for `/metrics`.
pub type MetricsRender =
    Box<dyn Fn() -> std::pin::Pin<Box<dyn Future<Output = String> + Send>> + Send + Sync>;

/// What `/metrics` serves, when the router is given it as an
/// [`axum::Extension`]; without it `/metrics` is 404.
pub struct Metrics {
    pub render: MetricsRender,
}

/// The Prometheus text exposition of the engine's counters and the queue
/// and channel gauges. Counts and channel names only: nothing about a
/// person is in it.
async fn metrics(metrics: Option<axum::Extension<Arc<Metrics>>>) -> axum::response::Response {
    use axum::response::IntoResponse;
    let Some(axum::Extension(metrics)) = metrics else {
        return axum::http::StatusCode::NOT_FOUND.into_response();
    };
    let body = (metrics.render)().await;
    (
        [(
            axum::http::header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        body,
    )
        .into_response()
}

/// `{"status": "ok" | "degraded", "store": ..., "channels": {name: {"state": "up"} |
/// {"state": "down", "reason": ...}}}`; 503 while any part is not ready,
/// so a monitor that only reads the status code notices.
async fn health(health: Option<axum::Extension<Arc<Health>>>) -> axum::response::Response {
    use axum::response::IntoResponse;
    use cascade_plugin_host::ChannelState;
    let Some(axum::Extension(health)) = health else {
        return Json(serde_json::json!({ "status": "ok" })).into_response();
    };
    let store = (health.store)().await;
    let states = health.host.channel_states();
    let ready = store && states.values().all(|s| *s == ChannelState::Up);
    let channels: serde_json::Map<String, serde_json::Value> = states
        .into_iter()
        .map(|(name, state)| {
            let part = match state {
                ChannelState::Up => serde_json::json!({ "state": "up" }),
                ChannelState::Down { reason } => {
                    serde_json::json!({ "state": "down", "reason": reason })
                }
            };
            (name, part)
        })
        .collect();
    let body = serde_json::json!({
        "status": if ready { "ok" } else { "degraded" },
        "store": if store { "ok" } else { "unavailable" },
        "channels": channels,
    });
    let status = if ready {
        axum::http::StatusCode::OK
    } else {
        axum::http::StatusCode::SERVICE_UNAVAILABLE
    };
    (status, Json(body)).into_response()
}
