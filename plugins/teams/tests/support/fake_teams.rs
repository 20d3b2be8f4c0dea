//! A fake of the three Microsoft services a Teams bot talks to, on
//! loopback: the Entra ID token endpoint (client credentials), the Bot
//! Framework's OpenID metadata and key set, and the Bot Connector
//! (`/v3/conversations/...`). It refuses what they refuse: a call without
//! a token it issued (401), a wrong client secret (401 `invalid_client`), a
//! conversation it does not know (404), a person who blocked the bot
//! (403), a card over 28 KB (413), and more than Teams' rate limits on a
//! conversation (7 a second, 8 in 2 s, 60 in 30 s, 1800 an hour) or over
//! the bot (50 a second) (429 with Retry-After). It plays Teams towards
//! the bot too: it signs activities with an RSA key it publishes as a JWK
//! set and posts them to cascade's webhook.

use axum::Router;
use axum::extract::{Form, Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use rsa::pkcs1::EncodeRsaPrivateKey;
use rsa::traits::PublicKeyParts;
use serde_json::{Value, json};
use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

pub const APP_ID: &str = "6f1c2d3e-4a5b-4c6d-8e9f-0a1b2c3d4e5f";
pub const TENANT: &str = "11111111-2222-4333-8444-555555555555";
pub const OTHER_TENANT: &str = "99999999-8888-4777-8666-555555555555";
pub const PASSWORD: &str = "a-client-secret~for.tests";
pub const ISSUER: &str = "https://api.botframework.com";
const SCOPE: &str = "https://api.botframework.com/.default";
/// Teams' message size limit: about 28 KB, counted (as Microsoft documents
/// it) on the payload encoded as UTF-16.
pub const CARD_LIMIT: usize = 28 * 1024;

/// An RSA signing key: its key id, the private key for signing, and its
/// public numbers for the JWK set.
#[derive(Clone)]
pub struct Key {
    pub kid: String,
    encoding: EncodingKey,
    n: String,
    e: String,
}

/// Three keys made once per test binary (making an RSA key takes a while):
/// the one published at start, one published only after a rotation, and
/// one never published.
fn keys() -> &'static [Key; 3] {
    static KEYS: OnceLock<[Key; 3]> = OnceLock::new();
    KEYS.get_or_init(|| {
        let make = |kid: &str| {
            let private = rsa::RsaPrivateKey::new(&mut rand::rngs::OsRng, 2048).unwrap();
            let der = private.to_pkcs1_der().unwrap();
            Key {
                kid: kid.to_owned(),
                encoding: EncodingKey::from_rsa_der(der.as_bytes()),
                n: URL_SAFE_NO_PAD.encode(private.n().to_bytes_be()),
                e: URL_SAFE_NO_PAD.encode(private.e().to_bytes_be()),
            }
        };
        [make("key-2026-a"), make("key-2026-b"), make("key-never")]
    })
}

/// How the fake signs an activity it posts to the bot.
#[derive(Debug, Clone, PartialEq)]
pub enum Signed {
    /// No Authorization header.
    Missing,
    /// As the Bot Framework signs it.
    Valid,
    /// With the published key's id, by another key.
    WrongSignature,
    /// For another bot's app id.
    WrongAudience,
    /// Expired ten minutes ago (beyond the five minutes of skew).
    Expired,
    /// Expired two minutes ago (within the skew).
    ExpiredWithinSkew,
    /// Valid only from ten minutes from now (beyond the skew).
    NotYetValid,
    /// By a key the fake never publishes.
    UnknownKey,
    /// By the key the fake publishes only after `rotate_keys`.
    RotatedKey,
    /// With a `serviceurl` claim other than the activity's serviceUrl.
    OtherServiceUrl,
    /// By another issuer.
    WrongIssuer,
}

/// A request the connector answered.
#[derive(Debug, Clone)]
pub struct Recorded {
    pub method: String,
    pub path: String,
    pub status: u16,
    pub body: Value,
    pub at: Instant,
}

/// A message activity as the connector holds it now (updates applied).
#[derive(Debug, Clone)]
pub struct Stored {
    pub conversation: String,
    pub id: String,
    pub activity: Value,
    /// The activity it replies to, if any.
    pub reply_to: Option<String>,
}

#[derive(Default)]
pub struct FakeState {
    pub requests: Vec<Recorded>,
    pub tokens: HashSet<String>,
    pub token_requests: usize,
    pub metadata_fetches: usize,
    pub key_fetches: usize,
    /// Key ids published in the JWK set.
    pub published: Vec<String>,
    /// Known conversations: personal ones by user, and team channels.
    pub personal: HashMap<String, String>,
    pub channels: HashSet<String>,
    pub blocked: HashSet<String>,
    pub messages: Vec<Stored>,
    pub replies: HashMap<String, usize>,
    /// Accept this many more posts, then refuse one with this Retry-After.
    pub refuse_after: Option<(usize, u32)>,
    /// When each recent call on each conversation (and, under "", on the
    /// bot) was taken.
    windows: HashMap<String, VecDeque<Instant>>,
    pub throttled: usize,
    /// Teams' rate limits are enforced unless this is set.
    pub unlimited: bool,
    next_id: u64,
}

#[derive(Clone)]
pub struct FakeTeams {
    pub url: String,
    state: Arc<Mutex<FakeState>>,
    webhook: Arc<Mutex<Option<String>>>,
    client: reqwest::Client,
}

impl FakeTeams {
    pub async fn start() -> FakeTeams {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let state = Arc::new(Mutex::new(FakeState {
            published: vec![keys()[0].kid.clone()],
            ..FakeState::default()
        }));
        let app = Router::new()
            .route("/oauth2/token", post(token))
            .route("/openid", get(metadata))
            .route("/keys", get(jwks))
            .route("/v3/conversations", post(create_conversation))
            .route(
                "/v3/conversations/{conversation}/activities",
                post(send_activity),
            )
            .route(
                "/v3/conversations/{conversation}/activities/{activity}",
                post(reply_to_activity).put(update_activity),
            )
            .with_state(Served {
                state: Arc::clone(&state),
                url: url.clone(),
            });
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        FakeTeams {
            url,
            state,
            webhook: Arc::default(),
            client: reqwest::Client::new(),
        }
    }

    pub fn state(&self) -> MutexGuard<'_, FakeState> {
        self.state.lock().unwrap()
    }

    /// The Bot Connector's URL as Teams writes it in `serviceUrl`.
    pub fn service_url(&self) -> String {
        format!("{}/", self.url)
    }

    /// The `config` table of a channel pointed at this fake.
    pub fn config(&self) -> Value {
        json!({
            "app_id": APP_ID,
            "tenant_id": TENANT,
            "token_url": format!("{}/oauth2/token", self.url),
            "openid_metadata_url": format!("{}/openid", self.url),
            "service_url": self.service_url(),
            "allowed_service_urls": [self.service_url()],
        })
    }

    /// The same as a TOML inline table's inside, for a project's
    /// `cascade.toml`.
    pub fn config_toml(&self) -> String {
        format!(
            "app_id = \"{APP_ID}\", tenant_id = \"{TENANT}\", token_url = \"{0}/oauth2/token\", openid_metadata_url = \"{0}/openid\", service_url = \"{0}/\", allowed_service_urls = [\"{0}/\"]",
            self.url
        )
    }

    pub fn webhook_url(&self) -> String {
        self.webhook
            .lock()
            .unwrap()
            .clone()
            .expect("the webhook URL is set")
    }

    pub fn set_webhook(&self, url: &str) {
        *self.webhook.lock().unwrap() = Some(url.to_owned());
    }

    /// Teams' user id of person `n`.
    pub fn user(n: u32) -> String {
        format!("29:1user-{n}")
    }

    /// Person `n`'s address, as the plugin reports their account.
    pub fn address(&self, n: u32) -> String {
        format!(
            "{}|{TENANT}|{}|{}",
            FakeTeams::user(n),
            aad(n),
            self.service_url()
        )
    }

    /// The bot's personal conversation with person `n` (made on first use,
    /// as Teams does when the app is installed for them).
    pub fn personal_conversation(&self, n: u32) -> String {
        let user = FakeTeams::user(n);
        self.state()
            .personal
            .entry(user.clone())
            .or_insert_with(|| format!("a:1chat-{}", user.trim_start_matches("29:")))
            .clone()
    }

    pub fn add_channel(&self, conversation: &str) {
        self.state().channels.insert(conversation.to_owned());
    }

    pub fn block(&self, n: u32) {
        self.state().blocked.insert(FakeTeams::user(n));
    }

    pub fn refuse_with_retry_after(&self, after: usize, seconds: u32) {
        self.state().refuse_after = Some((after, seconds));
    }

    /// Publishes the second key, as the Bot Framework does when it rotates.
    pub fn rotate_keys(&self) {
        let kid = keys()[1].kid.clone();
        self.state().published.push(kid);
    }

    pub fn messages_in(&self, conversation: &str) -> Vec<Stored> {
        self.state()
            .messages
            .iter()
            .filter(|m| m.conversation == conversation)
            .cloned()
            .collect()
    }

    pub fn message(&self, id: &str) -> Option<Stored> {
        self.state().messages.iter().find(|m| m.id == id).cloned()
    }

    pub fn requests_to(&self, prefix: &str) -> Vec<Recorded> {
        self.state()
            .requests
            .iter()
            .filter(|r| format!("{} {}", r.method, r.path).starts_with(prefix))
            .cloned()
            .collect()
    }

    fn next_id(&self) -> String {
        let mut state = self.state();
        state.next_id += 1;
        format!("1{:012}", 700_000_000 + state.next_id)
    }

    /// A message activity from person `n` in `conversation`, as Teams posts
    /// it, saying `text`.
    pub fn text_activity(
        &self,
        n: u32,
        conversation: &str,
        personal: bool,
        text: &str,
        tenant: &str,
    ) -> Value {
        let mut activity = self.activity(n, conversation, personal, tenant);
        activity["text"] = json!(text);
        activity["textFormat"] = json!("plain");
        activity
    }

    /// A card's submit from person `n` on message `reply_to`: `value` is
    /// the button's data merged with the card's inputs.
    pub fn press_activity(
        &self,
        n: u32,
        conversation: &str,
        personal: bool,
        value: Value,
        reply_to: &str,
    ) -> Value {
        let mut activity = self.activity(n, conversation, personal, TENANT);
        activity["value"] = value;
        activity["replyToId"] = json!(reply_to);
        activity
    }

    fn activity(&self, n: u32, conversation: &str, personal: bool, tenant: &str) -> Value {
        json!({
            "type": "message",
            "id": self.next_id(),
            "timestamp": "2026-03-27T10:00:00.000Z",
            "serviceUrl": self.service_url(),
            "channelId": "msteams",
            "from": { "id": FakeTeams::user(n), "name": "Sam Carter", "aadObjectId": aad(n) },
            "conversation": {
                "id": conversation,
                "conversationType": if personal { "personal" } else { "channel" },
                "tenantId": tenant,
            },
            "recipient": { "id": format!("28:{APP_ID}"), "name": "Cascade" },
            "channelData": { "tenant": { "id": tenant } },
            "locale": "en-GB",
        })
    }

    /// A bearer token for `activity`, signed as `how`.
    pub fn sign(&self, activity: &Value, how: &Signed) -> Option<String> {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_secs() as i64;
        let (key, audience, issuer, expires, service_url) = match how {
            Signed::Missing => return None,
            Signed::Valid => (&keys()[0], APP_ID, ISSUER, now + 3600, None),
            Signed::WrongSignature => {
                let mut forged = keys()[2].clone();
                forged.kid = keys()[0].kid.clone();
                return Some(self.sign_with(&forged, activity, APP_ID, ISSUER, now + 3600, None));
            }
            Signed::WrongAudience => (
                &keys()[0],
                "0a0a0a0a-0b0b-4c0c-8d0d-0e0e0e0e0e0e",
                ISSUER,
                now + 3600,
                None,
            ),
            Signed::Expired => (&keys()[0], APP_ID, ISSUER, now - 600, None),
            Signed::ExpiredWithinSkew => (&keys()[0], APP_ID, ISSUER, now - 120, None),
            Signed::NotYetValid => (&keys()[0], APP_ID, ISSUER, now + 4500, None),
            Signed::UnknownKey => (&keys()[2], APP_ID, ISSUER, now + 3600, None),
            Signed::RotatedKey => (&keys()[1], APP_ID, ISSUER, now + 3600, None),
            Signed::OtherServiceUrl => (
                &keys()[0],
                APP_ID,
                ISSUER,
                now + 3600,
                Some("https://smba.trafficmanager.net/emea/"),
            ),
            Signed::WrongIssuer => (
                &keys()[0],
                APP_ID,
                "https://sts.windows.net/evil/",
                now + 3600,
                None,
            ),
        };
        Some(self.sign_with(key, activity, audience, issuer, expires, service_url))
    }

    fn sign_with(
        &self,
        key: &Key,
        activity: &Value,
        audience: &str,
        issuer: &str,
        expires: i64,
        service_url: Option<&str>,
    ) -> String {
        let mut header = Header::new(Algorithm::RS256);
        header.kid = Some(key.kid.clone());
        header.typ = Some("JWT".to_owned());
        let claims = json!({
            "serviceurl": service_url.map_or_else(|| activity["serviceUrl"].clone(), |u| json!(u)),
            "nbf": expires - 3900,
            "exp": expires,
            "iss": issuer,
            "aud": audience,
        });
        jsonwebtoken::encode(&header, &claims, &key.encoding).unwrap()
    }

    /// Posts `activity` to cascade's webhook, signed as `how`; the status.
    pub async fn post(&self, activity: &Value, how: &Signed) -> u16 {
        let url = self
            .webhook
            .lock()
            .unwrap()
            .clone()
            .expect("the fake knows cascade's webhook URL");
        let mut request = self.client.post(url).json(activity);
        if let Some(token) = self.sign(activity, how) {
            request = request.bearer_auth(token);
        }
        request.send().await.unwrap().status().as_u16()
    }

    /// Person `n` types `text` to the bot in their personal chat; returns
    /// the activity id and the webhook's status.
    pub async fn says(&self, n: u32, text: &str) -> (String, u16) {
        let conversation = self.personal_conversation(n);
        let activity = self.text_activity(n, &conversation, true, text, TENANT);
        let status = self.post(&activity, &Signed::Valid).await;
        (activity["id"].as_str().unwrap().to_owned(), status)
    }

    /// Person `n` presses the button with `data` on `message`; returns the
    /// press's activity id and the webhook's status.
    pub async fn presses(&self, n: u32, message: &Stored, data: &str) -> (String, u16) {
        self.submits(n, message, data, None).await
    }

    /// Person `n` submits the form of button `data` on `message` with
    /// `fields` (or presses it, without).
    pub async fn submits(
        &self,
        n: u32,
        message: &Stored,
        data: &str,
        fields: Option<&[(&str, &str)]>,
    ) -> (String, u16) {
        let mut value = json!({ "cascade": data });
        if let Some(fields) = fields {
            value["cascade_form"] = json!("1");
            for (k, v) in fields {
                value[*k] = json!(v);
            }
        }
        let personal = !self.state().channels.contains(&message.conversation);
        let activity = self.press_activity(n, &message.conversation, personal, value, &message.id);
        let status = self.post(&activity, &Signed::Valid).await;
        (activity["id"].as_str().unwrap().to_owned(), status)
    }

    pub fn replies_to(&self, activity: &str) -> usize {
        self.state().replies.get(activity).copied().unwrap_or(0)
    }

    /// Waits (up to 20 s) until `probe` finds something in the state.
    pub async fn wait_for<T>(&self, what: &str, probe: impl Fn(&FakeState) -> Option<T>) -> T {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Some(found) = probe(&self.state()) {
                return found;
            }
            assert!(Instant::now() < deadline, "the fake never saw {what}");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
}

/// Person `n`'s Entra ID object id.
pub fn aad(n: u32) -> String {
    format!("aaaaaaaa-0000-4000-8000-{n:012}")
}

/// What a message shows: the text of its TextBlocks (Markdown escapes
/// read) or its plain text, and its buttons as (label, data).
pub fn shown(activity: &Value) -> (String, Vec<(String, String)>) {
    let card = activity["attachments"]
        .as_array()
        .and_then(|a| {
            a.iter()
                .find(|a| a["contentType"] == "application/vnd.microsoft.card.adaptive")
        })
        .map(|a| &a["content"]);
    let Some(card) = card else {
        return (
            activity["text"].as_str().unwrap_or_default().to_owned(),
            Vec::new(),
        );
    };
    let text = card["body"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|b| b["type"] == "TextBlock")
        .filter_map(|b| b["text"].as_str())
        .map(unescape)
        .collect::<Vec<_>>()
        .join("\n");
    let buttons = card["actions"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|a| {
            let data = match a["type"].as_str() {
                Some("Action.ShowCard") => &a["card"]["actions"][0]["data"]["cascade"],
                _ => &a["data"]["cascade"],
            };
            (
                a["title"].as_str().unwrap_or_default().to_owned(),
                data.as_str().unwrap_or_default().to_owned(),
            )
        })
        .collect();
    (text, buttons)
}

/// Markdown as Teams shows it: a backslash before punctuation disappears.
fn unescape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '\\' && chars.peek().is_some_and(|n| n.is_ascii_punctuation()) {
            out.push(chars.next().unwrap());
        } else {
            out.push(c);
        }
    }
    out
}

// ---- the server ----------------------------------------------------------

#[derive(Clone)]
struct Served {
    state: Arc<Mutex<FakeState>>,
    url: String,
}

/// A refusal as the Bot Connector words it; `retry_after` for a 429.
struct Refused {
    status: u16,
    code: &'static str,
    message: &'static str,
    retry_after: Option<u64>,
}

fn refused(status: u16, code: &'static str, message: &'static str) -> Refused {
    Refused {
        status,
        code,
        message,
        retry_after: None,
    }
}

impl IntoResponse for Refused {
    fn into_response(self) -> Response {
        let mut response = (
            StatusCode::from_u16(self.status).unwrap(),
            axum::Json(json!({ "error": { "code": self.code, "message": self.message } })),
        )
            .into_response();
        if let Some(seconds) = self.retry_after {
            response
                .headers_mut()
                .insert("retry-after", seconds.to_string().parse().unwrap());
        }
        response
    }
}

fn error(status: u16, code: &'static str, message: &'static str) -> Response {
    refused(status, code, message).into_response()
}

fn record(state: &mut FakeState, method: &str, path: &str, status: u16, body: &Value) {
    state.requests.push(Recorded {
        method: method.to_owned(),
        path: path.to_owned(),
        status,
        body: body.clone(),
        at: Instant::now(),
    });
}

async fn token(
    State(served): State<Served>,
    Form(form): Form<BTreeMap<String, String>>,
) -> Response {
    let mut state = served.state.lock().unwrap();
    state.token_requests += 1;
    let field = |k: &str| form.get(k).map(String::as_str).unwrap_or_default();
    if field("grant_type") != "client_credentials" {
        return (
            StatusCode::BAD_REQUEST,
            axum::Json(json!({ "error": "unsupported_grant_type" })),
        )
            .into_response();
    }
    if field("client_id") != APP_ID || field("client_secret") != PASSWORD {
        return (
            StatusCode::UNAUTHORIZED,
            axum::Json(json!({ "error": "invalid_client" })),
        )
            .into_response();
    }
    if field("scope") != SCOPE {
        return (
            StatusCode::BAD_REQUEST,
            axum::Json(json!({ "error": "invalid_scope" })),
        )
            .into_response();
    }
    let token = format!("app-token-{}", state.token_requests);
    state.tokens.insert(token.clone());
    axum::Json(json!({
        "token_type": "Bearer",
        "expires_in": 3599,
        "ext_expires_in": 3599,
        "access_token": token,
    }))
    .into_response()
}

async fn metadata(State(served): State<Served>) -> Response {
    served.state.lock().unwrap().metadata_fetches += 1;
    axum::Json(json!({
        "issuer": ISSUER,
        "authorization_endpoint": "https://invalid.botframework.com",
        "jwks_uri": format!("{}/keys", served.url),
        "id_token_signing_alg_values_supported": ["RS256"],
        "token_endpoint_auth_methods_supported": ["private_key_jwt"],
    }))
    .into_response()
}

async fn jwks(State(served): State<Served>) -> Response {
    let mut state = served.state.lock().unwrap();
    state.key_fetches += 1;
    let keys: Vec<Value> = keys()
        .iter()
        .filter(|k| state.published.contains(&k.kid))
        .map(|k| {
            json!({
                "kty": "RSA", "use": "sig", "kid": k.kid, "x5t": k.kid,
                "n": k.n, "e": k.e, "endorsements": ["msteams", "webchat"],
            })
        })
        .collect();
    axum::Json(json!({ "keys": keys })).into_response()
}

/// The bearer token, if the fake issued it.
fn authorized(state: &FakeState, headers: &HeaderMap) -> bool {
    headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .is_some_and(|t| state.tokens.contains(t))
}

/// Teams' limits on one conversation, and the bot's over all of them.
const LIMITS: [(Duration, usize); 4] = [
    (Duration::from_secs(1), 7),
    (Duration::from_secs(2), 8),
    (Duration::from_secs(30), 60),
    (Duration::from_secs(3600), 1800),
];
const APP_LIMIT: (Duration, usize) = (Duration::from_secs(1), 50);

/// Counts an operation on `conversation` now, or the wait until it would
/// fit Teams' limits.
fn throttle(state: &mut FakeState, conversation: &str) -> Option<u64> {
    if state.unlimited {
        return None;
    }
    let now = Instant::now();
    let mut wait = Duration::ZERO;
    let checks: [(&str, &[(Duration, usize)]); 2] = [
        (conversation, &LIMITS),
        ("", std::slice::from_ref(&APP_LIMIT)),
    ];
    for (key, limits) in checks {
        let times = state.windows.entry(key.to_owned()).or_default();
        while times
            .front()
            .is_some_and(|t| now.duration_since(*t) >= Duration::from_secs(3600))
        {
            times.pop_front();
        }
        for (span, limit) in limits {
            let inside: Vec<&Instant> = times
                .iter()
                .filter(|t| now.duration_since(**t) < *span)
                .collect();
            if inside.len() >= *limit {
                wait = wait.max(*span - now.duration_since(*inside[inside.len() - limit]));
            }
        }
    }
    if !wait.is_zero() {
        state.throttled += 1;
        return Some(wait.as_millis().div_ceil(1000).max(1) as u64);
    }
    for key in [conversation, ""] {
        state
            .windows
            .entry(key.to_owned())
            .or_default()
            .push_back(now);
    }
    None
}

fn too_many(seconds: u64) -> Refused {
    Refused {
        retry_after: Some(seconds),
        ..refused(429, "Throttled", "Too many requests")
    }
}

/// Teams' check of a message activity: a plain text, or Adaptive Cards of
/// a version it renders, within the size limit.
fn check_activity(body: &Value, size: usize) -> Result<(), Refused> {
    if body["type"] != "message" {
        return Err(refused(400, "BadArgument", "Activity type must be message"));
    }
    if size > CARD_LIMIT {
        return Err(refused(413, "MessageSizeTooBig", "Message size too big"));
    }
    let attachments = body["attachments"].as_array();
    if attachments.is_none() && body["text"].as_str().is_none_or(str::is_empty) {
        return Err(refused(
            400,
            "BadArgument",
            "Activity has no text or attachments",
        ));
    }
    for attachment in attachments.into_iter().flatten() {
        let card = &attachment["content"];
        let version_ok = matches!(
            card["version"].as_str(),
            Some("1.0" | "1.1" | "1.2" | "1.3" | "1.4" | "1.5")
        );
        if attachment["contentType"] != "application/vnd.microsoft.card.adaptive"
            || card["type"] != "AdaptiveCard"
            || !version_ok
            || !card["body"].is_array()
        {
            return Err(refused(400, "BadArgument", "Unknown attachment or card"));
        }
    }
    Ok(())
}

async fn create_conversation(
    State(served): State<Served>,
    headers: HeaderMap,
    axum::Json(body): axum::Json<Value>,
) -> Response {
    let mut state = served.state.lock().unwrap();
    let path = "/v3/conversations";
    let (status, response) = if !authorized(&state, &headers) {
        (
            401,
            error(
                401,
                "Unauthorized",
                "Authorization has been denied for this request.",
            ),
        )
    } else if body["bot"]["id"] != format!("28:{APP_ID}").as_str()
        || body["tenantId"] != TENANT
        || body["members"].as_array().is_none_or(|m| m.len() != 1)
    {
        (
            400,
            error(400, "BadArgument", "Invalid conversation parameters"),
        )
    } else {
        let user = body["members"][0]["id"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        if state.blocked.contains(&user) {
            (
                403,
                error(
                    403,
                    "Forbidden",
                    "User blocked the conversation with the bot.",
                ),
            )
        } else if !user.starts_with("29:") {
            (404, error(404, "NotFound", "Member not found"))
        } else {
            let id = state
                .personal
                .entry(user.clone())
                .or_insert_with(|| format!("a:1chat-{}", user.trim_start_matches("29:")))
                .clone();
            (
                201,
                (StatusCode::CREATED, axum::Json(json!({ "id": id }))).into_response(),
            )
        }
    };
    record(&mut state, "POST", path, status, &body);
    response
}

/// Whether the bot may post in `conversation`, as Teams decides it.
fn reachable(state: &FakeState, conversation: &str) -> Result<(), Refused> {
    let user = state
        .personal
        .iter()
        .find(|(_, c)| c.as_str() == conversation)
        .map(|(u, _)| u.clone());
    match user {
        Some(user) if state.blocked.contains(&user) => Err(refused(
            403,
            "Forbidden",
            "The bot is not part of the conversation roster.",
        )),
        Some(_) => Ok(()),
        None if state.channels.contains(conversation) => Ok(()),
        None => Err(refused(
            404,
            "ConversationNotFound",
            "Conversation not found.",
        )),
    }
}

/// The shared checks of a post, a reply and an update, in Teams' order.
fn admit(
    state: &mut FakeState,
    headers: &HeaderMap,
    conversation: &str,
    body: &Value,
    size: usize,
) -> Result<(), Refused> {
    if !authorized(state, headers) {
        return Err(refused(
            401,
            "Unauthorized",
            "Authorization has been denied for this request.",
        ));
    }
    reachable(state, conversation)?;
    check_activity(body, size)?;
    if let Some((after, seconds)) = state.refuse_after {
        if after == 0 {
            state.refuse_after = None;
            return Err(too_many(u64::from(seconds)));
        }
        state.refuse_after = Some((after - 1, seconds));
    }
    if let Some(wait) = throttle(state, conversation) {
        return Err(too_many(wait));
    }
    Ok(())
}

/// A request body as Teams reads it: its JSON, and its size as UTF-16.
struct Payload {
    body: Value,
    size: usize,
}

fn payload(bytes: &[u8]) -> Result<Payload, Refused> {
    let text = std::str::from_utf8(bytes)
        .map_err(|_| refused(400, "BadSyntax", "The body is not UTF-8"))?;
    let body = serde_json::from_str(text)
        .map_err(|_| refused(400, "BadSyntax", "The body is not JSON"))?;
    Ok(Payload {
        body,
        size: 2 * text.encode_utf16().count(),
    })
}

fn status_of(response: &Response) -> u16 {
    response.status().as_u16()
}

async fn send_activity(
    State(served): State<Served>,
    Path(conversation): Path<String>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    post_message(served, conversation, None, headers, &body)
}

async fn reply_to_activity(
    State(served): State<Served>,
    Path((conversation, activity)): Path<(String, String)>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    post_message(served, conversation, Some(activity), headers, &body)
}

fn post_message(
    served: Served,
    conversation: String,
    reply_to: Option<String>,
    headers: HeaderMap,
    bytes: &[u8],
) -> Response {
    let mut state = served.state.lock().unwrap();
    let Payload { body, size } = match payload(bytes) {
        Ok(payload) => payload,
        Err(refusal) => return refusal.into_response(),
    };
    let path = match &reply_to {
        Some(id) => format!("/v3/conversations/{conversation}/activities/{id}"),
        None => format!("/v3/conversations/{conversation}/activities"),
    };
    let response = match admit(&mut state, &headers, &conversation, &body, size) {
        Err(refusal) => refusal.into_response(),
        Ok(()) => {
            state.next_id += 1;
            let id = format!("1{:012}", state.next_id);
            if let Some(reply_to) = &reply_to {
                *state.replies.entry(reply_to.clone()).or_default() += 1;
            }
            state.messages.push(Stored {
                conversation: conversation.clone(),
                id: id.clone(),
                activity: body.clone(),
                reply_to,
            });
            (StatusCode::CREATED, axum::Json(json!({ "id": id }))).into_response()
        }
    };
    let status = status_of(&response);
    record(&mut state, "POST", &path, status, &body);
    response
}

async fn update_activity(
    State(served): State<Served>,
    Path((conversation, activity)): Path<(String, String)>,
    headers: HeaderMap,
    bytes: axum::body::Bytes,
) -> Response {
    let mut state = served.state.lock().unwrap();
    let Payload { body, size } = match payload(&bytes) {
        Ok(payload) => payload,
        Err(refusal) => return refusal.into_response(),
    };
    let path = format!("/v3/conversations/{conversation}/activities/{activity}");
    let exists = state
        .messages
        .iter()
        .any(|m| m.conversation == conversation && m.id == activity);
    let response = match admit(&mut state, &headers, &conversation, &body, size) {
        Err(refusal) => refusal.into_response(),
        Ok(()) if !exists => error(404, "ActivityNotFound", "Activity not found."),
        Ok(()) => {
            let stored = state
                .messages
                .iter_mut()
                .find(|m| m.conversation == conversation && m.id == activity)
                .unwrap();
            stored.activity = body.clone();
            axum::Json(json!({ "id": activity })).into_response()
        }
    };
    let status = status_of(&response);
    record(&mut state, "PUT", &path, status, &body);
    response
}
