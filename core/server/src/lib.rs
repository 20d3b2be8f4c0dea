//! The HTTP server `cascade serve` runs: a health endpoint and, when signed
//! links are configured, the acknowledgement and champion confirmation
//! pages. Every request to those is authenticated by its token; a GET never
//! records anything (mail scanners follow links), a POST answers only after
//! its transaction committed. Every response carries security headers; the
//! public routes are rate limited per client address (named by a trusted
//! proxy's `X-Forwarded-For`, see [`client`]). [`serve`] runs the accept
//! loop with header, body and idle timeouts and a connection cap.

mod client;
mod listen;

pub use client::{Cidr, CidrError, client_address};
#[cfg(unix)]
pub use listen::raise_open_file_limit;
pub use listen::{BodyTimedOut, ServerConfig, body_timed_out, serve};

use axum::extract::{ConnectInfo, Form, Path, Request, State};
use axum::http::{HeaderName, HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{Html, IntoResponse, Response};
use axum::{
    Json, Router,
    routing::{any, get},
};
use cascade_engine::ack::{
    AckKeys, CascadeForm, Claims, ItemSummary, Refusal, check_cascade,
    pages::answer_page as answer_page_html, pages::answered_page, pages::cascade_form_page,
    pages::cascade_recorded_page, pages::confirm_page, pages::refusal_page, pages::thanks_page,
    pages::too_many_requests_page, pages::unavailable_page,
};
use cascade_model::content::{Taxonomy, parse_item};
use cascade_model::rollout::StepKind;
use cascade_model::time::millis;
use cascade_plugin_api::{WebhookRequest, WebhookResponse};
use cascade_plugin_host::PluginHost;
use cascade_privacy::{PrivacyConfig, PrivacyGuard};
use cascade_store::{
    AckMethod, AckOutcome, DeliveryInfo, Evidence, NewAcknowledgement, NewAnswer, NewConfirmation,
    Outbox, SqliteStore, Store,
};
use chrono::{DateTime, NaiveDate, Utc};
use chrono_tz::Tz;
use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Instant;
use tokio::sync::{mpsc, oneshot};

/// The channel acknowledgements through a link are recorded under.
const WEB_CHANNEL: &str = "web";

/// The server's notion of now; tests hold their own.
pub type Clock = Arc<dyn Fn() -> DateTime<Utc> + Send + Sync>;

/// Requests a second each client address may make to the public routes,
/// with bursts up to `burst`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RateLimit {
    pub per_second: f64,
    pub burst: u32,
}

impl Default for RateLimit {
    fn default() -> Self {
        RateLimit {
            per_second: 20.0,
            burst: 40,
        }
    }
}

/// What the acknowledgement routes need.
pub struct ServerState {
    store: Arc<SqliteStore>,
    keys: Arc<AckKeys>,
    /// To read stored item versions for their title and reflection questions.
    taxonomy: Taxonomy,
    /// The partnership's zone: a session date is "not in the future" there.
    time_zone: Tz,
    clock: Clock,
    rate_limit: Option<RateLimit>,
    /// Refuses a champion's note that holds a child's identifying detail.
    guard: Arc<PrivacyGuard>,
    /// Peers whose `X-Forwarded-For` names the client for the rate limit.
    trusted_proxies: Vec<Cidr>,
    /// Item versions never change, so what the pages show of one is kept.
    items: Mutex<HashMap<(String, String), Arc<ItemSummary>>>,
    /// SQLite has one writer at a time; concurrent write transactions from
    /// the pool would otherwise collide and back off in its busy handler.
    writes: Arc<tokio::sync::Mutex<()>>,
    /// Acknowledgements waiting for the group commit; the writer task starts
    /// with the first.
    acks: std::sync::OnceLock<mpsc::Sender<PendingAck>>,
}

/// An acknowledgement waiting to be committed, and where its outcome goes.
type PendingAck = (
    NewAcknowledgement,
    oneshot::Sender<Result<AckOutcome, String>>,
);

/// Most acknowledgements committed in one transaction.
const GROUP_COMMIT_MAX: usize = 512;

/// Commits acknowledgements in groups: whatever arrived while the previous
/// commit was syncing goes in the next transaction, so under load one sync
/// to disk serves many requests, and each request still answers only after
/// its own acknowledgement is committed.
async fn commit_acknowledgements(
    store: Arc<SqliteStore>,
    writes: Arc<tokio::sync::Mutex<()>>,
    mut queue: mpsc::Receiver<PendingAck>,
) {
    let mut group = Vec::with_capacity(GROUP_COMMIT_MAX);
    while queue.recv_many(&mut group, GROUP_COMMIT_MAX).await > 0 {
        let acks: Vec<NewAcknowledgement> = group.iter().map(|(ack, _)| ack.clone()).collect();
        let written = {
            let _writer = writes.lock().await;
            store.acknowledge_items(&acks).await
        };
        match written {
            Ok(outcomes) => {
                for ((_, answer), outcome) in group.drain(..).zip(outcomes) {
                    let _ = answer.send(Ok(outcome));
                }
            }
            Err(e) => {
                let reason = e.to_string();
                for (_, answer) in group.drain(..) {
                    let _ = answer.send(Err(reason.clone()));
                }
            }
        }
    }
}

impl ServerState {
    /// The state with the default rate limit.
    pub fn new(
        store: Arc<SqliteStore>,
        keys: Arc<AckKeys>,
        taxonomy: Taxonomy,
        time_zone: Tz,
        clock: Clock,
    ) -> ServerState {
        ServerState {
            store,
            keys,
            taxonomy,
            time_zone,
            clock,
            rate_limit: Some(RateLimit::default()),
            guard: Arc::new(
                PrivacyGuard::new(&PrivacyConfig::default())
                    .expect("the default privacy settings are valid"),
            ),
            trusted_proxies: Vec::new(),
            items: Mutex::new(HashMap::new()),
            writes: Arc::new(tokio::sync::Mutex::new(())),
            acks: std::sync::OnceLock::new(),
        }
    }

    /// Records an acknowledgement through the group commit; returns once it
    /// is committed.
    async fn acknowledge(&self, ack: NewAcknowledgement) -> Result<AckOutcome, String> {
        let queue = self.acks.get_or_init(|| {
            let (queue, waiting) = mpsc::channel(4 * GROUP_COMMIT_MAX);
            tokio::spawn(commit_acknowledgements(
                self.store.clone(),
                self.writes.clone(),
                waiting,
            ));
            queue
        });
        let (answer, outcome) = oneshot::channel();
        queue
            .send((ack, answer))
            .await
            .map_err(|_| "the acknowledgement writer has stopped".to_owned())?;
        outcome
            .await
            .map_err(|_| "the acknowledgement writer has stopped".to_owned())?
    }

    /// The partnership's privacy guard instead of the built-in detectors
    /// alone (no deny-listed names, no personal email domains).
    pub fn with_privacy_guard(mut self, guard: PrivacyGuard) -> ServerState {
        self.guard = Arc::new(guard);
        self
    }

    /// Another rate limit, or none.
    pub fn with_rate_limit(mut self, rate_limit: Option<RateLimit>) -> ServerState {
        self.rate_limit = rate_limit;
        self
    }

    /// The reverse proxies whose `X-Forwarded-For` names the client the
    /// rate limit counts against; without any, the TCP peer is the client.
    pub fn with_trusted_proxies(mut self, trusted: Vec<Cidr>) -> ServerState {
        self.trusted_proxies = trusted;
        self
    }

    /// The title and reflection questions of an item version. A version the
    /// store cannot give shows its id and no questions.
    async fn item(&self, id: &str, version: &str) -> Arc<ItemSummary> {
        let key = (id.to_owned(), version.to_owned());
        if let Some(summary) = lock(&self.items).get(&key) {
            return summary.clone();
        }
        let stored = match self.store.item_versions(id).await {
            Ok(versions) => versions.into_iter().find(|v| v.version.0 == version),
            Err(e) => {
                tracing::error!(item = id, "cannot read the item for a page: {e}");
                None
            }
        };
        let Some(stored) = stored else {
            return Arc::new(ItemSummary {
                title: id.to_owned(),
                reflection_questions: Vec::new(),
            });
        };
        let summary = match parse_item(
            std::path::Path::new(&format!("{id} (stored)")),
            &stored.source,
            &self.taxonomy,
        ) {
            Ok(item) => ItemSummary::of(&item),
            Err(_) => ItemSummary {
                title: stored.title,
                reflection_questions: Vec::new(),
            },
        };
        let summary = Arc::new(summary);
        lock(&self.items).insert(key, summary.clone());
        summary
    }

    async fn person_name(&self, id: &str) -> Option<String> {
        match self.store.person(id).await {
            Ok(person) => person.map(|p| p.person.display_name),
            Err(e) => {
                tracing::error!("cannot read a person for a page: {e}");
                None
            }
        }
    }

    /// The teams a champion covers, (id, name) by name.
    async fn champion_teams(
        &self,
        person: &str,
    ) -> Result<Vec<(String, String)>, cascade_store::StoreError> {
        let champions = self.store.champions().await?;
        let teams = self.store.teams().await?;
        Ok(cascade_model::directory::teams_covered(&champions, &teams)
            .remove(person)
            .unwrap_or_default())
    }

    fn today(&self, now: DateTime<Utc>) -> NaiveDate {
        now.with_timezone(&self.time_zone).date_naive()
    }

    /// The delivery a token is for, if the token is valid and was made for
    /// the delivery's recipient.
    async fn delivery_for(
        &self,
        token: &str,
        now: DateTime<Utc>,
    ) -> Result<(Claims, DeliveryInfo), Denied> {
        let claims = self.keys.verify(token, now).map_err(|e| Denied::Refused {
            refusal: Refusal::Token(e),
            person: None,
            delivery: None,
            reason: e.code().to_owned(),
        })?;
        let not_valid = |reason: &str| Denied::Refused {
            refusal: Refusal::NotValid,
            person: Some(claims.person.clone()),
            delivery: Some(claims.delivery),
            reason: reason.to_owned(),
        };
        let delivery = self
            .store
            .delivery(claims.delivery)
            .await
            .map_err(Denied::unavailable)?
            .ok_or_else(|| not_valid("no such delivery"))?;
        if delivery.recipient_id != claims.person {
            return Err(not_valid("the link was made for someone else"));
        }
        Ok((claims, delivery))
    }

    /// The page for a denied request. A refused POST is counted (by
    /// reason, per minute), never logged a row each: refused requests are
    /// unauthenticated, and anyone may send as many as the rate limit lets.
    async fn denied(&self, denied: Denied, log: Option<&str>, now: DateTime<Utc>) -> Response {
        match denied {
            Denied::Refused {
                refusal,
                person,
                delivery,
                reason,
            } => {
                if let Some(what) = log {
                    tracing::info!(
                        person = person.as_deref(),
                        delivery,
                        reason = reason.as_str(),
                        "refused a {what}"
                    );
                    if let Err(e) = self
                        .store
                        .count_refusal(
                            WEB_CHANNEL,
                            AckMethod::Link,
                            &format!("{what}: {reason}"),
                            millis(now),
                        )
                        .await
                    {
                        tracing::error!("cannot count a refused {what}: {e}");
                    }
                }
                html(refusal_status(refusal), refusal_page(refusal))
            }
            Denied::Unavailable => html(StatusCode::SERVICE_UNAVAILABLE, unavailable_page()),
        }
    }
}

/// Why a request gets no page of its own.
enum Denied {
    Refused {
        refusal: Refusal,
        person: Option<String>,
        delivery: Option<i64>,
        reason: String,
    },
    /// The store failed; nothing was recorded.
    Unavailable,
}

impl Denied {
    fn unavailable(e: cascade_store::StoreError) -> Denied {
        tracing::error!("acknowledgement route: {e}");
        Denied::Unavailable
    }
}

fn refusal_status(refusal: Refusal) -> StatusCode {
    use cascade_engine::ack::TokenError::*;
    match refusal {
        Refusal::Token(Malformed) => StatusCode::BAD_REQUEST,
        Refusal::Token(Expired | RetiredKey | UnknownKey) => StatusCode::GONE,
        Refusal::Token(Forged) | Refusal::NotValid | Refusal::NotAChampion => StatusCode::FORBIDDEN,
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|p| p.into_inner())
}

fn html(status: StatusCode, body: String) -> Response {
    (status, Html(body)).into_response()
}

/// The health endpoint alone, for a project without signed links.
pub fn router() -> Router {
    Router::new()
        .route("/health", get(health))
        .layer(middleware::map_response(security_headers))
}

/// The health endpoint with the acknowledgement (`/ack/{token}`) and
/// champion confirmation (`/confirm/{token}`) routes. The rate limit keys on
/// the client address, so serve it with [`serve`] (or anything else that
/// puts `ConnectInfo<SocketAddr>` in each request).
pub fn ack_router(state: ServerState) -> Router {
    let rate_limit = state.rate_limit;
    let trusted_proxies = state.trusted_proxies.clone();
    let mut public = Router::new()
        .route("/ack/{token}", get(ack_page).post(acknowledge))
        .route("/confirm/{token}", get(cascade_page).post(confirm_cascade))
        .route("/answer/{token}/{n}", get(answer_page).post(record_answer))
        .with_state(Arc::new(state));
    if let Some(limit) = rate_limit {
        public = public.layer(middleware::from_fn_with_state(
            Arc::new(Limiter::new(limit, trusted_proxies)),
            rate_limited,
        ));
    }
    Router::new()
        .route("/health", get(health))
        .merge(public)
        .layer(middleware::map_response(security_headers))
}

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

async fn health() -> Json<serde_json::Value> {
    Json(serde_json::json!({ "status": "ok" }))
}

/// Shows what the link is for; records nothing.
async fn ack_page(State(s): State<Arc<ServerState>>, Path(token): Path<String>) -> Response {
    let now = (s.clock)();
    let delivery = match s.delivery_for(&token, now).await {
        Ok((_, delivery)) => delivery,
        Err(denied) => return s.denied(denied, None, now).await,
    };
    let item = s.item(&delivery.item_id, &delivery.item_version).await;
    let name = s.person_name(&delivery.recipient_id).await;
    html(StatusCode::OK, confirm_page(&item.title, name.as_deref()))
}

/// Records the acknowledgement (a repeat changes nothing) and thanks.
async fn acknowledge(State(s): State<Arc<ServerState>>, Path(token): Path<String>) -> Response {
    let now = (s.clock)();
    let delivery = match s.delivery_for(&token, now).await {
        Ok((_, delivery)) => delivery,
        Err(denied) => return s.denied(denied, Some("acknowledgement"), now).await,
    };
    if delivery.person_id != delivery.recipient_id {
        // An escalation or digest about someone else's learning: its reader
        // has nothing of their own to acknowledge through it.
        let denied = Denied::Refused {
            refusal: Refusal::NotValid,
            person: Some(delivery.recipient_id),
            delivery: Some(delivery.id),
            reason: "the delivery is about someone else's learning".to_owned(),
        };
        return s.denied(denied, Some("acknowledgement"), now).await;
    }
    let ack = NewAcknowledgement {
        person_id: delivery.recipient_id.clone(),
        item_id: delivery.item_id.clone(),
        item_version: delivery.item_version.clone(),
        rollout_id: Some(delivery.rollout_id.clone()),
        delivery_id: Some(delivery.id),
        channel: WEB_CHANNEL.to_owned(),
        method: AckMethod::Link,
        at: millis(now),
    };
    if let Err(reason) = s.acknowledge(ack).await {
        tracing::error!("acknowledgement route: {reason}");
        return s.denied(Denied::Unavailable, None, now).await;
    }
    let item = s.item(&delivery.item_id, &delivery.item_version).await;
    html(
        StatusCode::OK,
        thanks_page(&item.title, &item.reflection_questions),
    )
}

/// A follow-up delivery's question and its `n`-th answer (1-based), if the
/// token's delivery is a follow-up to its reader's own learning.
async fn follow_up_answer(
    s: &ServerState,
    token: &str,
    n: usize,
    log: Option<&str>,
    now: DateTime<Utc>,
) -> Result<(DeliveryInfo, String, String), Response> {
    let delivery = match s.delivery_for(token, now).await {
        Ok((_, delivery)) => delivery,
        Err(denied) => return Err(s.denied(denied, log, now).await),
    };
    let refuse = |reason: &str| Denied::Refused {
        refusal: Refusal::NotValid,
        person: Some(delivery.recipient_id.clone()),
        delivery: Some(delivery.id),
        reason: reason.to_owned(),
    };
    if delivery.step_kind != StepKind::FollowUp || delivery.person_id != delivery.recipient_id {
        return Err(s.denied(refuse("not a follow-up question"), log, now).await);
    }
    let definition = match s.store.rollout(&delivery.rollout_id).await {
        Ok(Some(stored)) => {
            serde_json::from_str::<cascade_model::rollout::RolloutDefinition>(&stored.definition)
                .ok()
        }
        Ok(None) => None,
        Err(e) => return Err(s.denied(Denied::unavailable(e), None, now).await),
    };
    let question = definition.and_then(|d| {
        d.follow_ups
            .get(delivery.step_number.saturating_sub(1) as usize)
            .cloned()
    });
    let Some(question) = question else {
        return Err(s
            .denied(refuse("the follow-up is not in the rollout"), log, now)
            .await);
    };
    let Some(answer) = n
        .checked_sub(1)
        .and_then(|i| question.answers.get(i))
        .cloned()
    else {
        return Err(s.denied(refuse("no such answer"), log, now).await);
    };
    Ok((delivery, question.question, answer))
}

/// Shows the question and the chosen answer; records nothing.
async fn answer_page(
    State(s): State<Arc<ServerState>>,
    Path((token, n)): Path<(String, usize)>,
) -> Response {
    let now = (s.clock)();
    match follow_up_answer(&s, &token, n, None, now).await {
        Ok((delivery, question, answer)) => {
            let item = s.item(&delivery.item_id, &delivery.item_version).await;
            html(
                StatusCode::OK,
                answer_page_html(&item.title, &question, &answer),
            )
        }
        Err(response) => response,
    }
}

/// Records the answer (the first counts) and thanks.
async fn record_answer(
    State(s): State<Arc<ServerState>>,
    Path((token, n)): Path<(String, usize)>,
) -> Response {
    let now = (s.clock)();
    let (delivery, _, answer) = match follow_up_answer(&s, &token, n, Some("answer"), now).await {
        Ok(found) => found,
        Err(response) => return response,
    };
    let recorded = {
        let _writer = s.writes.lock().await;
        s.store
            .answer_follow_up(&NewAnswer {
                rollout_id: delivery.rollout_id.clone(),
                person_id: delivery.recipient_id.clone(),
                follow_up: delivery.step_number,
                answer: answer.clone(),
                example: None,
                channel: WEB_CHANNEL.to_owned(),
                at: millis(now),
            })
            .await
    };
    match recorded {
        Ok(first) => html(StatusCode::OK, answered_page(&answer, first)),
        Err(e) => s.denied(Denied::unavailable(e), None, now).await,
    }
}

/// The champion's form for recording a cascade to one of their teams.
async fn cascade_page(State(s): State<Arc<ServerState>>, Path(token): Path<String>) -> Response {
    let now = (s.clock)();
    let (claims, delivery) = match s.delivery_for(&token, now).await {
        Ok(found) => found,
        Err(denied) => return s.denied(denied, None, now).await,
    };
    let teams = match s.champion_teams(&claims.person).await {
        Ok(teams) if teams.is_empty() => {
            return html(
                refusal_status(Refusal::NotAChampion),
                refusal_page(Refusal::NotAChampion),
            );
        }
        Ok(teams) => teams,
        Err(e) => return s.denied(Denied::unavailable(e), None, now).await,
    };
    let today = s.today(now).to_string();
    let form = CascadeForm {
        team: if teams.len() == 1 {
            teams[0].0.clone()
        } else {
            String::new()
        },
        session_date: today.clone(),
        ..CascadeForm::default()
    };
    let item = s.item(&delivery.item_id, &delivery.item_version).await;
    let name = s.person_name(&claims.person).await.unwrap_or_default();
    html(
        StatusCode::OK,
        cascade_form_page(&item.title, &name, &teams, &form, &[], &today),
    )
}

/// Checks and records a champion's confirmation.
async fn confirm_cascade(
    State(s): State<Arc<ServerState>>,
    Path(token): Path<String>,
    Form(form): Form<CascadeForm>,
) -> Response {
    let now = (s.clock)();
    let (claims, delivery) = match s.delivery_for(&token, now).await {
        Ok(found) => found,
        Err(denied) => return s.denied(denied, Some("cascade confirmation"), now).await,
    };
    let teams = match s.champion_teams(&claims.person).await {
        Ok(teams) if teams.is_empty() => {
            let denied = Denied::Refused {
                refusal: Refusal::NotAChampion,
                person: Some(claims.person),
                delivery: Some(delivery.id),
                reason: "not a champion".to_owned(),
            };
            return s.denied(denied, Some("cascade confirmation"), now).await;
        }
        Ok(teams) => teams,
        Err(e) => return s.denied(Denied::unavailable(e), None, now).await,
    };
    let today = s.today(now);
    let item = s.item(&delivery.item_id, &delivery.item_version).await;
    let checked = match check_cascade(&form, &teams, today, &s.guard) {
        Ok(checked) => checked,
        Err(problems) => {
            let name = s.person_name(&claims.person).await.unwrap_or_default();
            return html(
                StatusCode::UNPROCESSABLE_ENTITY,
                cascade_form_page(
                    &item.title,
                    &name,
                    &teams,
                    &form,
                    &problems,
                    &today.to_string(),
                ),
            );
        }
    };
    let confirmation = NewConfirmation {
        champion_id: claims.person,
        item_id: delivery.item_id.clone(),
        team_id: checked.team_id.clone(),
        session_date: checked.session_date.to_string(),
        present: checked.present,
        method: checked.method.to_owned(),
        note: checked.note,
        channel: WEB_CHANNEL.to_owned(),
        at: millis(now),
    };
    let written = {
        let _writer = s.writes.lock().await;
        s.store.confirm_cascade(&confirmation).await
    };
    match written {
        Ok(recorded) => {
            let team_name = teams
                .iter()
                .find(|(id, _)| *id == checked.team_id)
                .map(|(_, name)| name.as_str())
                .unwrap_or_default();
            html(
                StatusCode::OK,
                cascade_recorded_page(&item.title, team_name, !recorded),
            )
        }
        Err(e) => s.denied(Denied::unavailable(e), None, now).await,
    }
}

async fn security_headers(mut response: Response) -> Response {
    const HEADERS: [(HeaderName, &str); 4] = [
        (
            header::CONTENT_SECURITY_POLICY,
            "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; frame-ancestors 'none'",
        ),
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        (header::REFERRER_POLICY, "no-referrer"),
        (header::CACHE_CONTROL, "no-store"),
    ];
    let headers = response.headers_mut();
    for (name, value) in HEADERS {
        headers.insert(name, HeaderValue::from_static(value));
    }
    response
}

/// Token buckets by client address.
struct Limiter {
    limit: RateLimit,
    trusted_proxies: Vec<Cidr>,
    buckets: Mutex<HashMap<IpAddr, Bucket>>,
}

struct Bucket {
    tokens: f64,
    at: Instant,
}

/// Buckets kept before full ones (clients gone quiet) are dropped.
const MAX_BUCKETS: usize = 10_000;

impl Limiter {
    fn new(limit: RateLimit, trusted_proxies: Vec<Cidr>) -> Limiter {
        Limiter {
            limit,
            trusted_proxies,
            buckets: Mutex::new(HashMap::new()),
        }
    }

    /// Takes a token for `client`, or says how many seconds until one is due.
    fn take(&self, client: IpAddr, now: Instant) -> Result<(), u64> {
        let RateLimit { per_second, burst } = self.limit;
        let burst = f64::from(burst.max(1));
        let mut buckets = lock(&self.buckets);
        if buckets.len() >= MAX_BUCKETS && !buckets.contains_key(&client) {
            buckets.retain(|_, b| {
                b.tokens + now.duration_since(b.at).as_secs_f64() * per_second < burst
            });
        }
        let bucket = buckets.entry(client).or_insert(Bucket {
            tokens: burst,
            at: now,
        });
        bucket.tokens =
            (bucket.tokens + now.duration_since(bucket.at).as_secs_f64() * per_second).min(burst);
        bucket.at = now;
        if bucket.tokens >= 1.0 {
            bucket.tokens -= 1.0;
            Ok(())
        } else {
            let wait = (1.0 - bucket.tokens) / per_second.max(f64::MIN_POSITIVE);
            Err(wait.ceil().clamp(1.0, 3600.0) as u64)
        }
    }
}

async fn rate_limited(
    State(limiter): State<Arc<Limiter>>,
    request: Request,
    next: Next,
) -> Response {
    // Without connection info (a server not started with it) every client
    // shares one bucket: stricter, never looser.
    let client = request
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|ConnectInfo(addr)| {
            client_address(addr.ip(), request.headers(), &limiter.trusted_proxies)
        })
        .unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED));
    match limiter.take(client, Instant::now()) {
        Ok(()) => next.run(request).await,
        Err(seconds) => {
            let mut response = html(StatusCode::TOO_MANY_REQUESTS, too_many_requests_page());
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(seconds));
            response
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn a_client_gets_its_burst_then_waits_for_tokens_to_refill() {
        let limiter = Limiter::new(
            RateLimit {
                per_second: 2.0,
                burst: 3,
            },
            Vec::new(),
        );
        let (a, b) = ([10, 0, 0, 1].into(), [10, 0, 0, 2].into());
        let t0 = Instant::now();
        for _ in 0..3 {
            assert_eq!(limiter.take(a, t0), Ok(()));
        }
        assert_eq!(limiter.take(a, t0), Err(1));
        assert_eq!(
            limiter.take(b, t0),
            Ok(()),
            "another client has its own bucket"
        );
        assert_eq!(limiter.take(a, t0 + Duration::from_millis(500)), Ok(()));
        assert_eq!(limiter.take(a, t0 + Duration::from_millis(500)), Err(1));
    }
}
