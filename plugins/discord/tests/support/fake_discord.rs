//! A fake Discord on a loopback socket: the REST endpoints the plugin uses,
//! with Discord's JSON shapes, rate-limit headers and error bodies, and a
//! gateway websocket speaking Discord's protocol (HELLO, IDENTIFY, READY,
//! heartbeats, RESUME, INTERACTION_CREATE, from a DM or from a guild
//! channel's message with the person in `member.user`; several sessions at
//! once, each given every event, as Discord gives every session of a shard
//! its events), DMs and guild text
//! channels the bot posts in and edits. It records every request and
//! refuses what Discord refuses: over-long embeds and content, too many
//! rows or buttons, long custom ids, empty messages, bad modals, and an
//! interaction answered twice, late, or edited before it was answered.

use axum::Router;
use axum::body::Bytes;
use axum::extract::ws::{CloseFrame, Message as WsMessage, WebSocket, WebSocketUpgrade};
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde_json::{Value, json};
use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use tokio::sync::{Notify, mpsc};

pub const TOKEN: &str = "fake.bot.token-7Qx";
pub const APPLICATION_ID: &str = "1100000000000000001";
pub const GUILD_ID: &str = "1200000000000000002";
pub const BOT_USER_ID: &str = "1100000000000000001";
/// Discord's deadline for the first answer to an interaction.
pub const ANSWER_WITHIN: Duration = Duration::from_secs(3);
const TIMESTAMP: &str = "2026-11-21T10:00:00.000000+00:00";

/// One REST request as it reached the fake.
#[derive(Debug, Clone)]
pub struct Recorded {
    pub method: String,
    pub path: String,
    pub body: Value,
    pub status: u16,
}

/// A failure the fake answers the next matching request with.
#[derive(Debug, Clone)]
pub enum Fault {
    /// 429: `retry_after` seconds, for this route or (global) every route.
    RateLimited { retry_after: f64, global: bool },
    /// Any status with Discord's generic error body.
    Status(u16),
    /// 403 "Cannot send messages to this user" (code 50007).
    CannotMessage,
}

#[derive(Debug)]
struct PendingInteraction {
    token: String,
    created: Instant,
    /// The callback type it was answered with, once answered.
    answered_with: Option<u64>,
    /// The message its button was on, for type 6 / 7 edits.
    message_id: Option<String>,
    /// The deferred response's message, once edited in.
    response_id: Option<String>,
}

enum Outgoing {
    Send(Value),
    Close(u16),
}

/// One gateway session: its own sequence and dispatch history (for
/// resuming), and the connection it is live on, if any.
struct Session {
    id: String,
    seq: u64,
    history: Vec<(u64, Value)>,
    live: Option<mpsc::UnboundedSender<Outgoing>>,
}

#[derive(Default)]
pub struct FakeState {
    pub requests: Vec<Recorded>,
    /// (route fragment, matching requests to let through first, fault).
    faults: Vec<(String, usize, Fault)>,
    /// Routes (method and path fragment) whose window is announced as
    /// exhausted, with the seconds until it resets.
    exhausted: Vec<(String, f64)>,
    next_id: u64,
    dm_channels: HashMap<String, String>,
    /// Text channels of the guild the bot may post in (team channels).
    guild_channels: Vec<String>,
    /// Every message, by id: posted, edited, follow-ups and responses.
    pub messages: BTreeMap<String, Value>,
    interactions: HashMap<String, PendingInteraction>,
    pub commands: Vec<Value>,
    /// Gateway: the sessions (every IDENTIFY starts one; each gets every
    /// event of the one shard) and what the clients did.
    sessions: Vec<Session>,
    pub identifies: usize,
    pub resumes: Vec<Value>,
    pub heartbeats: usize,
    /// Refusals the fake made, as (path, message), for assertions.
    pub refusals: Vec<(String, String)>,
    /// A close code every IDENTIFY is answered with (4014: the bot asked
    /// for privileged intents the application is not allowed).
    pub refuse_identify_with: Option<u16>,
    /// What `GET /gateway/bot` says of the day's session starts left
    /// (Discord allows 1,000 IDENTIFYs a day; none: 999).
    pub session_starts_remaining: Option<u64>,
}

impl FakeState {
    fn id(&mut self) -> String {
        self.next_id += 1;
        (1_300_000_000_000_000_000u64 + self.next_id).to_string()
    }
}

#[derive(Clone)]
pub struct FakeDiscord {
    pub addr: SocketAddr,
    state: Arc<Mutex<FakeState>>,
    changed: Arc<Notify>,
}

#[derive(Clone)]
struct Shared {
    state: Arc<Mutex<FakeState>>,
    changed: Arc<Notify>,
    addr: SocketAddr,
    heartbeat_interval_ms: u64,
}

impl FakeDiscord {
    /// Starts the fake on a free loopback port, on the calling runtime.
    pub async fn start() -> FakeDiscord {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let shared = Shared {
            state: Arc::default(),
            changed: Arc::default(),
            addr,
            heartbeat_interval_ms: 1_000,
        };
        let app = Router::new()
            .route("/gateway", get(gateway))
            .fallback(rest)
            .with_state(shared.clone());
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        FakeDiscord {
            addr,
            state: shared.state,
            changed: shared.changed,
        }
    }

    pub fn api_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn state(&self) -> MutexGuard<'_, FakeState> {
        self.state.lock().unwrap()
    }

    /// Waits (at most 20 s, then fails the test) until `check` holds.
    pub async fn wait_for<T>(
        &self,
        what: &str,
        mut check: impl FnMut(&FakeState) -> Option<T>,
    ) -> T {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
        loop {
            let notified = self.changed.notified();
            if let Some(found) = check(&self.state()) {
                return found;
            }
            if tokio::time::timeout_at(deadline, notified).await.is_err() {
                panic!("the fake Discord never saw {what}");
            }
        }
    }

    pub fn fail_next(&self, route: &str, fault: Fault) {
        self.fail_after(route, 0, fault);
    }

    /// Fails the request to `route` that follows `skip` successful ones.
    pub fn fail_after(&self, route: &str, skip: usize, fault: Fault) {
        self.state().faults.push((route.to_owned(), skip, fault));
    }

    /// Announces `X-RateLimit-Remaining: 0` on `route` from now on.
    pub fn exhaust(&self, route: &str, reset_after: f64) {
        self.state().exhausted.push((route.to_owned(), reset_after));
    }

    /// REST requests whose `"METHOD path"` contains `fragment`.
    pub fn requests_to(&self, fragment: &str) -> Vec<Recorded> {
        self.state()
            .requests
            .iter()
            .filter(|r| format!("{} {}", r.method, r.path).contains(fragment))
            .cloned()
            .collect()
    }

    /// Adds a text channel to the guild, as a team's channel, that the bot
    /// may post in.
    pub fn add_guild_channel(&self, id: &str) {
        self.state().guild_channels.push(id.to_owned());
    }

    /// Messages in `channel`, oldest first, as the fake keeps them now.
    pub fn messages_in(&self, channel: &str) -> Vec<(String, Value)> {
        self.state()
            .messages
            .iter()
            .filter(|(_, m)| m["channel_id"] == channel)
            .map(|(id, m)| (id.clone(), m.clone()))
            .collect()
    }

    pub fn dm_channel_of(&self, user: &str) -> Option<String> {
        self.state().dm_channels.get(user).cloned()
    }

    pub fn message(&self, id: &str) -> Value {
        self.state().messages[id].clone()
    }

    /// The token of interaction `id`, which its edits and follow-ups carry.
    pub fn token_of(&self, id: &str) -> String {
        self.state().interactions[id].token.clone()
    }

    /// An interaction Discord knows but never dispatches, created `age`
    /// ago: (id, token), for answering it by hand.
    pub fn open_interaction(&self, message_id: Option<&str>, age: Duration) -> (String, String) {
        let mut state = self.state();
        let (id, token) = new_interaction(&mut state, message_id.map(str::to_owned));
        state.interactions.get_mut(&id).unwrap().created -= age;
        (id, token)
    }

    /// Closes every gateway connection as Discord does when it drops a
    /// session that may resume (close code 4000, "unknown error").
    pub fn drop_gateway(&self) {
        for session in &mut self.state().sessions {
            if let Some(live) = session.live.take() {
                let _ = live.send(Outgoing::Close(4000));
            }
        }
    }

    /// How many gateway sessions are connected now.
    pub fn live_sessions(&self) -> usize {
        self.state()
            .sessions
            .iter()
            .filter(|s| s.live.is_some())
            .count()
    }

    /// A person presses a button on a message the bot sent: in a DM the
    /// interaction carries `user`; on a guild channel's message, as Discord
    /// sends it, `guild_id` and `member` (the person is `member.user`) and
    /// no `user`.
    pub fn press_button(&self, user: &str, message_id: &str, custom_id: &str) -> String {
        let (id, token, channel_id, message, in_guild) = {
            let mut state = self.state();
            let message = state.messages[message_id].clone();
            let channel_id = message["channel_id"].as_str().unwrap().to_owned();
            let in_guild = state.guild_channels.contains(&channel_id);
            let (id, token) = new_interaction(&mut state, Some(message_id.to_owned()));
            (id, token, channel_id, message, in_guild)
        };
        let mut interaction = json!({
            "id": id, "application_id": APPLICATION_ID, "type": 3, "token": token, "version": 1,
            "data": {"custom_id": custom_id, "component_type": 2},
            "channel_id": channel_id, "message": message,
            "locale": "en-GB", "app_permissions": "0", "entitlements": [],
            "attachment_size_limit": 10485760
        });
        let extra = if in_guild {
            json!({"guild_id": GUILD_ID, "guild_locale": "en-GB", "member": member_object(user),
                   "authorizing_integration_owners": {"0": GUILD_ID}, "context": 0})
        } else {
            json!({"user": user_object(user), "authorizing_integration_owners": {"1": user}, "context": 1})
        };
        for (key, value) in extra.as_object().unwrap() {
            interaction[key] = value.clone();
        }
        self.dispatch(interaction);
        id
    }

    /// A person runs a slash command in the guild.
    pub fn run_command(&self, user: &str, name: &str, options: &[(&str, &str)]) -> String {
        let (id, token, command_id) = {
            let mut state = self.state();
            let command_id = state
                .commands
                .iter()
                .find(|c| c["name"] == name)
                .map(|c| c["id"].clone())
                .unwrap_or_else(|| panic!("/{name} is not registered"));
            let (id, token) = new_interaction(&mut state, None);
            (id, token, command_id)
        };
        let options: Vec<Value> = options
            .iter()
            .map(|(name, value)| json!({"name": name, "type": 3, "value": value}))
            .collect();
        self.dispatch(json!({
            "id": id, "application_id": APPLICATION_ID, "type": 2, "token": token, "version": 1,
            "data": {"id": command_id, "name": name, "type": 1, "options": options, "guild_id": GUILD_ID},
            "guild_id": GUILD_ID, "channel_id": "1200000000000000099",
            "member": member_object(user),
            "locale": "en-GB", "guild_locale": "en-GB", "app_permissions": "0", "entitlements": [],
            "authorizing_integration_owners": {"0": GUILD_ID}, "context": 0,
            "attachment_size_limit": 10485760
        }));
        id
    }

    /// A person submits a modal opened from a button on `message_id`.
    pub fn submit_modal(
        &self,
        user: &str,
        message_id: &str,
        custom_id: &str,
        fields: &[(&str, &str)],
    ) -> String {
        let (id, token, channel_id, message) = {
            let mut state = self.state();
            let message = state.messages[message_id].clone();
            let channel_id = message["channel_id"].as_str().unwrap().to_owned();
            let (id, token) = new_interaction(&mut state, Some(message_id.to_owned()));
            (id, token, channel_id, message)
        };
        let rows: Vec<Value> = fields
            .iter()
            .map(|(field, value)| {
                json!({"type": 1, "components": [{"type": 4, "custom_id": field, "value": value}]})
            })
            .collect();
        self.dispatch(json!({
            "id": id, "application_id": APPLICATION_ID, "type": 5, "token": token, "version": 1,
            "data": {"custom_id": custom_id, "components": rows},
            "channel_id": channel_id, "user": user_object(user), "message": message,
            "locale": "en-GB", "app_permissions": "0", "entitlements": [],
            "authorizing_integration_owners": {"1": user}, "context": 1,
            "attachment_size_limit": 10485760
        }));
        id
    }

    /// Sends an INTERACTION_CREATE dispatch to every session now, or
    /// keeps it in each one's history for the client's RESUME when the
    /// session is not connected. (Every session here is shard 0 of 1, so
    /// Discord would send each of them every event.)
    fn dispatch(&self, interaction: Value) {
        // The fake must speak what serenity understands, as Discord does.
        serde_json::from_value::<serenity::all::Interaction>(interaction.clone())
            .expect("the fake's interaction is a valid Discord interaction");
        let mut state = self.state();
        for session in &mut state.sessions {
            session.seq += 1;
            let event =
                json!({"op": 0, "s": session.seq, "t": "INTERACTION_CREATE", "d": interaction});
            session.history.push((session.seq, event.clone()));
            if let Some(live) = &session.live {
                let _ = live.send(Outgoing::Send(event));
            }
        }
    }
}

fn new_interaction(state: &mut FakeState, message_id: Option<String>) -> (String, String) {
    let id = state.id();
    let token = format!("aW50ZXJhY3Rpb246{id}:tok");
    state.interactions.insert(
        id.clone(),
        PendingInteraction {
            token: token.clone(),
            created: Instant::now(),
            answered_with: None,
            message_id,
            response_id: None,
        },
    );
    (id, token)
}

fn user_object(id: &str) -> Value {
    json!({"id": id, "username": format!("user{id}"), "discriminator": "0",
           "global_name": "Practitioner", "avatar": null, "public_flags": 0})
}

fn member_object(user: &str) -> Value {
    json!({"user": user_object(user), "nick": null, "avatar": null, "roles": [],
           "joined_at": TIMESTAMP, "premium_since": null, "deaf": false, "mute": false,
           "flags": 0, "pending": false, "permissions": "0", "communication_disabled_until": null})
}

fn bot_user() -> Value {
    json!({"id": BOT_USER_ID, "username": "cascade", "discriminator": "0", "global_name": null,
           "avatar": null, "bot": true, "public_flags": 0})
}

// ---- REST ----------------------------------------------------------------

fn error(status: u16, code: i64, message: &str) -> (u16, Value) {
    (status, json!({"message": message, "code": code}))
}

fn form_error(errors: Vec<(String, String)>) -> (u16, Value) {
    let mut tree = json!({});
    for (path, message) in errors {
        let mut node = &mut tree;
        for key in path.split('.') {
            node = node
                .as_object_mut()
                .unwrap()
                .entry(key.to_owned())
                .or_insert_with(|| json!({}));
        }
        node["_errors"] = json!([{"code": "BASE_TYPE_INVALID", "message": message}]);
    }
    (
        400,
        json!({"message": "Invalid Form Body", "code": 50035, "errors": tree}),
    )
}

fn utf16(text: &str) -> usize {
    text.encode_utf16().count()
}

/// A new message needs something to show.
fn is_empty_message(body: &Value) -> bool {
    body["content"].as_str().unwrap_or("").is_empty()
        && body["embeds"].as_array().is_none_or(Vec::is_empty)
        && body["components"].as_array().is_none_or(Vec::is_empty)
}

/// What Discord checks on a message body (create or edit).
fn message_errors(body: &Value) -> Vec<(String, String)> {
    let mut errors = Vec::new();
    let mut check = |ok: bool, path: &str, message: &str| {
        if !ok {
            errors.push((path.to_owned(), message.to_owned()));
        }
    };
    if let Some(content) = body["content"].as_str() {
        check(
            utf16(content) <= 2000,
            "content",
            "Must be 2000 or fewer in length.",
        );
    }
    let embeds = body["embeds"].as_array().cloned().unwrap_or_default();
    check(
        embeds.len() <= 10,
        "embeds",
        "Must be 10 or fewer in length.",
    );
    let mut total = 0;
    for (n, embed) in embeds.iter().enumerate() {
        let title = embed["title"].as_str().map_or(0, utf16);
        let description = embed["description"].as_str().map_or(0, utf16);
        total += title + description;
        check(
            title <= 256,
            &format!("embeds.{n}.title"),
            "Must be 256 or fewer in length.",
        );
        check(
            description <= 4096,
            &format!("embeds.{n}.description"),
            "Must be 4096 or fewer in length.",
        );
    }
    check(
        total <= 6000,
        "embeds",
        "Embed size exceeds maximum size of 6000",
    );
    let rows = body["components"].as_array().cloned().unwrap_or_default();
    check(
        rows.len() <= 5,
        "components",
        "Must be 5 or fewer in length.",
    );
    for (r, row) in rows.iter().enumerate() {
        check(
            row["type"] == 1,
            &format!("components.{r}.type"),
            "Value must be one of {1}.",
        );
        let buttons = row["components"].as_array().cloned().unwrap_or_default();
        check(
            (1..=5).contains(&buttons.len()),
            &format!("components.{r}.components"),
            "Must be between 1 and 5 in length.",
        );
        for (b, button) in buttons.iter().enumerate() {
            let path = format!("components.{r}.components.{b}");
            let custom_id = button["custom_id"].as_str().unwrap_or("");
            check(
                button["type"] == 2,
                &format!("{path}.type"),
                "Value must be one of {2}.",
            );
            check(
                (1..=100).contains(&custom_id.len()),
                &format!("{path}.custom_id"),
                "Must be between 1 and 100 in length.",
            );
            check(
                button["label"].as_str().map_or(0, utf16) <= 80,
                &format!("{path}.label"),
                "Must be 80 or fewer in length.",
            );
        }
    }
    if let Some(parse) = body["allowed_mentions"]["parse"].as_array() {
        for value in parse {
            check(
                ["users", "roles", "everyone"].contains(&value.as_str().unwrap_or("")),
                "allowed_mentions.parse",
                "Value must be one of ('roles', 'users', 'everyone').",
            );
        }
    }
    errors
}

fn modal_errors(data: &Value) -> Vec<(String, String)> {
    let mut errors = Vec::new();
    let mut check = |ok: bool, path: &str, message: &str| {
        if !ok {
            errors.push((format!("data.{path}"), message.to_owned()));
        }
    };
    let title = data["title"].as_str().map_or(0, utf16);
    check(
        (1..=45).contains(&title),
        "title",
        "Must be between 1 and 45 in length.",
    );
    let custom_id = data["custom_id"].as_str().map_or(0, str::len);
    check(
        (1..=100).contains(&custom_id),
        "custom_id",
        "Must be between 1 and 100 in length.",
    );
    let rows = data["components"].as_array().cloned().unwrap_or_default();
    check(
        (1..=5).contains(&rows.len()),
        "components",
        "Must be between 1 and 5 in length.",
    );
    for (r, row) in rows.iter().enumerate() {
        let inputs = row["components"].as_array().cloned().unwrap_or_default();
        check(
            inputs.len() == 1,
            &format!("components.{r}.components"),
            "Must be 1 in length.",
        );
        for input in inputs {
            check(
                input["type"] == 4,
                &format!("components.{r}.components.0.type"),
                "Value must be one of {4}.",
            );
            check(
                (1..=45).contains(&input["label"].as_str().map_or(0, utf16)),
                &format!("components.{r}.components.0.label"),
                "Must be between 1 and 45 in length.",
            );
            check(
                [1, 2].contains(&input["style"].as_u64().unwrap_or(0)),
                &format!("components.{r}.components.0.style"),
                "Value must be one of {1, 2}.",
            );
        }
    }
    errors
}

/// A stored message as Discord returns it. Mentions in content ping only as
/// `allowed_mentions` permits (everything, when it is absent); embeds never.
fn message_object(id: &str, channel_id: &str, body: &Value) -> Value {
    let content = body["content"].as_str().unwrap_or("");
    let parse = &body["allowed_mentions"]["parse"];
    let everyone_allowed = body.get("allowed_mentions").is_none()
        || parse
            .as_array()
            .is_some_and(|p| p.contains(&json!("everyone")));
    let embeds: Vec<Value> = body["embeds"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .into_iter()
        .map(|mut e| {
            e["type"] = json!("rich");
            e
        })
        .collect();
    json!({
        "id": id, "type": 0, "channel_id": channel_id, "author": bot_user(),
        "content": content, "timestamp": TIMESTAMP, "edited_timestamp": null, "tts": false,
        "mention_everyone": everyone_allowed && (content.contains("@everyone") || content.contains("@here")),
        "mentions": [], "mention_roles": [], "attachments": [], "embeds": embeds,
        "pinned": false, "flags": body["flags"].as_u64().unwrap_or(0),
        "components": body["components"].as_array().cloned().unwrap_or_default()
    })
}

fn edit_message(message: &mut Value, body: &Value) {
    for key in ["content", "embeds", "components", "flags"] {
        if let Some(value) = body.get(key) {
            message[key] = value.clone();
        }
    }
    let content = message["content"].as_str().unwrap_or("").to_owned();
    let everyone_allowed = body.get("allowed_mentions").is_none()
        || body["allowed_mentions"]["parse"]
            .as_array()
            .is_some_and(|p| p.contains(&json!("everyone")));
    message["mention_everyone"] =
        json!(everyone_allowed && (content.contains("@everyone") || content.contains("@here")));
    message["edited_timestamp"] = json!(TIMESTAMP);
}

async fn rest(State(fake): State<Shared>, request: Request) -> Response {
    let method = request.method().clone();
    let path = request.uri().path().to_owned();
    let headers = request.headers().clone();
    let body = axum::body::to_bytes(request.into_body(), 1 << 20)
        .await
        .unwrap_or_default();
    let (status, json, limited) = handle(&fake, &method, &path, &headers, &body);
    let mut response = if status == 204 {
        StatusCode::NO_CONTENT.into_response()
    } else {
        (
            StatusCode::from_u16(status).unwrap(),
            axum::Json(json.clone()),
        )
            .into_response()
    };
    let reset_after = {
        let state = fake.state.lock().unwrap();
        state
            .exhausted
            .iter()
            .find(|(route, _)| format!("{method} {path}").contains(route.as_str()))
            .map(|(_, reset)| *reset)
    };
    let headers = response.headers_mut();
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs_f64();
    let (remaining, reset_after) = match (limited, reset_after) {
        (Some((retry_after, _)), _) => (0, retry_after),
        (None, Some(reset)) => (0, reset),
        (None, None) => (4, 1.0),
    };
    let header = |v: String| HeaderValue::from_str(&v).unwrap();
    headers.insert("x-ratelimit-limit", header("5".to_owned()));
    headers.insert("x-ratelimit-remaining", header(remaining.to_string()));
    headers.insert(
        "x-ratelimit-reset",
        header(format!("{:.3}", now + reset_after)),
    );
    headers.insert(
        "x-ratelimit-reset-after",
        header(format!("{reset_after:.3}")),
    );
    headers.insert(
        "x-ratelimit-bucket",
        header(format!("{:x}", path.len() * 7919)),
    );
    if let Some((retry_after, global)) = limited {
        headers.insert(
            "retry-after",
            header(format!("{}", retry_after.ceil() as u64)),
        );
        headers.insert(
            "x-ratelimit-scope",
            header(if global { "global" } else { "user" }.to_owned()),
        );
        if global {
            headers.insert("x-ratelimit-global", header("true".to_owned()));
        }
    }
    fake.state.lock().unwrap().requests.push(Recorded {
        method: method.to_string(),
        path,
        body: serde_json::from_slice(&body).unwrap_or(Value::Null),
        status,
    });
    fake.changed.notify_waiters();
    response
}

/// Answers one REST request: (status, body, the 429's retry_after and
/// whether it was global).
fn handle(
    fake: &Shared,
    method: &Method,
    path: &str,
    headers: &HeaderMap,
    body: &Bytes,
) -> (u16, Value, Option<(f64, bool)>) {
    let mut state = fake.state.lock().unwrap();
    let route = format!("{method} {path}");
    let due = state.faults.iter_mut().position(|(r, skip, _)| {
        if !route.contains(r.as_str()) {
            return false;
        }
        if *skip > 0 {
            *skip -= 1;
            return false;
        }
        true
    });
    if let Some(n) = due {
        let (_, _, fault) = state.faults.remove(n);
        return match fault {
            Fault::RateLimited {
                retry_after,
                global,
            } => (
                429,
                json!({"message": "You are being rate limited.", "retry_after": retry_after, "global": global}),
                Some((retry_after, global)),
            ),
            Fault::Status(status) => {
                let (s, b) = error(status, 0, &format!("{status}: fake failure"));
                (s, b, None)
            }
            Fault::CannotMessage => {
                let (s, b) = error(403, 50007, "Cannot send messages to this user");
                (s, b, None)
            }
        };
    }
    let authorized = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v == format!("Bot {TOKEN}"));
    let body: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
    let segments: Vec<&str> = path.trim_start_matches("/api/v10/").split('/').collect();
    let interaction_route =
        segments.first() == Some(&"interactions") || segments.first() == Some(&"webhooks");
    if !authorized && !interaction_route {
        let (s, b) = error(401, 0, "401: Unauthorized");
        return (s, b, None);
    }
    let refused = |state: &mut FakeState, errors: Vec<(String, String)>| {
        for (p, m) in &errors {
            state.refusals.push((p.clone(), m.clone()));
        }
        let (s, b) = form_error(errors);
        (s, b, None)
    };
    let (status, json) = match (method.as_str(), segments.as_slice()) {
        ("GET", ["gateway"]) => (200, json!({"url": format!("ws://{}/gateway", fake.addr)})),
        ("GET", ["gateway", "bot"]) => {
            let remaining = state.session_starts_remaining.unwrap_or(999);
            (
                200,
                json!({"url": format!("ws://{}/gateway", fake.addr), "shards": 1,
                       "session_start_limit": {"total": 1000, "remaining": remaining, "reset_after": 14400000, "max_concurrency": 1}}),
            )
        }
        ("PUT", ["applications", app, "guilds", guild, "commands"]) => {
            if *app != APPLICATION_ID || *guild != GUILD_ID {
                error(404, 10002, "Unknown Application")
            } else {
                let mut errors = Vec::new();
                for (n, command) in body
                    .as_array()
                    .cloned()
                    .unwrap_or_default()
                    .iter()
                    .enumerate()
                {
                    let name = command["name"].as_str().unwrap_or("");
                    let ok = (1..=32).contains(&name.len())
                        && name.chars().all(|c| {
                            c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_'
                        });
                    if !ok {
                        errors.push((format!("{n}.name"), "Command name is invalid".to_owned()));
                    }
                    let description = command["description"].as_str().map_or(0, utf16);
                    if !(1..=100).contains(&description) {
                        errors.push((
                            format!("{n}.description"),
                            "Must be between 1 and 100 in length.".to_owned(),
                        ));
                    }
                }
                if !errors.is_empty() {
                    return refused(&mut state, errors);
                }
                let mut registered = Vec::new();
                for mut command in body.as_array().cloned().unwrap_or_default() {
                    command["id"] = json!(state.id());
                    command["application_id"] = json!(APPLICATION_ID);
                    command["guild_id"] = json!(GUILD_ID);
                    command["version"] = json!(state.id());
                    command["type"] = json!(1);
                    registered.push(command);
                }
                state.commands = registered.clone();
                (200, json!(registered))
            }
        }
        ("POST", ["users", "@me", "channels"]) => {
            let Some(user) = body["recipient_id"].as_str().map(str::to_owned) else {
                return refused(
                    &mut state,
                    vec![(
                        "recipient_id".to_owned(),
                        "This field is required".to_owned(),
                    )],
                );
            };
            let channel = match state.dm_channels.get(&user) {
                Some(channel) => channel.clone(),
                None => {
                    let channel = state.id();
                    state.dm_channels.insert(user.clone(), channel.clone());
                    channel
                }
            };
            (
                200,
                json!({"id": channel, "type": 1, "last_message_id": null, "flags": 0, "recipients": [user_object(&user)]}),
            )
        }
        ("POST", ["channels", channel, "messages"]) => {
            let known = state.dm_channels.values().any(|c| c == channel)
                || state.guild_channels.iter().any(|c| c == channel);
            if !known {
                error(404, 10003, "Unknown Channel")
            } else {
                if is_empty_message(&body) {
                    let (s, b) = error(400, 50006, "Cannot send an empty message");
                    return (s, b, None);
                }
                let errors = message_errors(&body);
                if !errors.is_empty() {
                    return refused(&mut state, errors);
                }
                let id = state.id();
                let message = message_object(&id, channel, &body);
                state.messages.insert(id, message.clone());
                (200, message)
            }
        }
        ("PATCH", ["channels", channel, "messages", message]) => {
            let found = state
                .messages
                .get(*message)
                .is_some_and(|m| m["channel_id"] == *channel && m["author"]["id"] == BOT_USER_ID);
            if !found {
                error(404, 10008, "Unknown Message")
            } else {
                let errors = message_errors(&body);
                if !errors.is_empty() {
                    return refused(&mut state, errors);
                }
                let mut edited = state.messages[*message].clone();
                edit_message(&mut edited, &body);
                if is_empty_message(&edited) {
                    let (s, b) = error(400, 50006, "Cannot send an empty message");
                    return (s, b, None);
                }
                state.messages.insert((*message).to_owned(), edited.clone());
                (200, edited)
            }
        }
        ("POST", ["interactions", id, token, "callback"]) => {
            let Some(interaction) = state.interactions.get(*id).filter(|i| i.token == *token)
            else {
                return (
                    404,
                    json!({"message": "Unknown interaction", "code": 10062}),
                    None,
                );
            };
            if interaction.answered_with.is_some() {
                let (s, b) = error(400, 40060, "Interaction has already been acknowledged.");
                return (s, b, None);
            }
            if interaction.created.elapsed() > ANSWER_WITHIN {
                return (
                    404,
                    json!({"message": "Unknown interaction", "code": 10062}),
                    None,
                );
            }
            let kind = body["type"].as_u64().unwrap_or(0);
            let has_message = interaction.message_id.is_some();
            let errors = match kind {
                4 | 7 => message_errors(&body["data"]),
                5 => Vec::new(),
                6 if has_message => Vec::new(),
                9 => modal_errors(&body["data"]),
                _ => vec![(
                    "type".to_owned(),
                    "Interaction response type is not valid here".to_owned(),
                )],
            };
            if !errors.is_empty() {
                return refused(&mut state, errors);
            }
            state.interactions.get_mut(*id).unwrap().answered_with = Some(kind);
            (204, Value::Null)
        }
        ("PATCH", ["webhooks", app, token, "messages", "@original"]) => {
            let found = state
                .interactions
                .iter()
                .find(|(_, i)| i.token == *token && *app == APPLICATION_ID)
                .map(|(id, i)| {
                    (
                        id.clone(),
                        i.answered_with,
                        i.message_id.clone(),
                        i.response_id.clone(),
                    )
                });
            match found {
                Some((id, Some(kind), message_id, response_id)) => {
                    let errors = message_errors(&body);
                    if !errors.is_empty() {
                        return refused(&mut state, errors);
                    }
                    let target = if matches!(kind, 6 | 7) {
                        message_id
                    } else {
                        response_id
                    };
                    let target = match target {
                        Some(target) => target,
                        None => {
                            // The deferred response becomes a message on its first edit.
                            let response = state.id();
                            let message = message_object(
                                &response,
                                "1200000000000000099",
                                &json!({"flags": 64}),
                            );
                            state.messages.insert(response.clone(), message);
                            state.interactions.get_mut(&id).unwrap().response_id =
                                Some(response.clone());
                            response
                        }
                    };
                    let message = state.messages.get_mut(&target).unwrap();
                    edit_message(message, &body);
                    (200, message.clone())
                }
                _ => error(404, 10015, "Unknown Webhook"),
            }
        }
        ("POST", ["webhooks", app, token]) => {
            let answered = state
                .interactions
                .values()
                .any(|i| i.token == *token && i.answered_with.is_some() && *app == APPLICATION_ID);
            if !answered {
                error(404, 10015, "Unknown Webhook")
            } else {
                if is_empty_message(&body) {
                    let (s, b) = error(400, 50006, "Cannot send an empty message");
                    return (s, b, None);
                }
                let errors = message_errors(&body);
                if !errors.is_empty() {
                    return refused(&mut state, errors);
                }
                let id = state.id();
                let message = message_object(&id, "1200000000000000099", &body);
                state.messages.insert(id, message.clone());
                (200, message)
            }
        }
        _ => error(404, 0, "404: Not Found"),
    };
    (status, json, None)
}

// ---- Gateway -------------------------------------------------------------

async fn gateway(ws: WebSocketUpgrade, State(fake): State<Shared>) -> Response {
    ws.on_upgrade(move |socket| session(socket, fake))
}

async fn send(socket: &mut WebSocket, value: &Value) -> bool {
    socket
        .send(WsMessage::Text(value.to_string().into()))
        .await
        .is_ok()
}

async fn session(mut socket: WebSocket, fake: Shared) {
    let (live, mut outgoing) = mpsc::unbounded_channel();
    if !send(&mut socket, &json!({"op": 10, "s": null, "t": null, "d": {"heartbeat_interval": fake.heartbeat_interval_ms}})).await {
        return;
    }
    let mut ready = false;
    loop {
        tokio::select! {
            incoming = socket.recv() => {
                let Some(Ok(WsMessage::Text(text))) = incoming else { break };
                let Ok(payload) = serde_json::from_str::<Value>(&text) else {
                    let _ = socket.send(WsMessage::Close(Some(CloseFrame { code: 4002, reason: "Error while decoding payload.".into() }))).await;
                    break;
                };
                let replies = on_client_payload(&fake, &payload, &mut ready, &live);
                fake.changed.notify_waiters();
                match replies {
                    Ok(replies) => {
                        for reply in replies {
                            if !send(&mut socket, &reply).await { break; }
                        }
                    }
                    Err(code) => {
                        let _ = socket.send(WsMessage::Close(Some(CloseFrame { code, reason: "".into() }))).await;
                        break;
                    }
                }
            }
            out = outgoing.recv() => match out {
                Some(Outgoing::Send(event)) => {
                    if ready && !send(&mut socket, &event).await { break; }
                }
                Some(Outgoing::Close(code)) => {
                    let _ = socket.send(WsMessage::Close(Some(CloseFrame { code, reason: "".into() }))).await;
                    break;
                }
                None => break,
            }
        }
    }
    let mut state = fake.state.lock().unwrap();
    for session in &mut state.sessions {
        if session.live.as_ref().is_some_and(|l| l.same_channel(&live)) {
            session.live = None;
        }
    }
    drop(state);
    fake.changed.notify_waiters();
}

/// The fake's answer to one client payload, or the close code for a
/// payload Discord would close the connection over.
fn on_client_payload(
    fake: &Shared,
    payload: &Value,
    ready: &mut bool,
    live: &mpsc::UnboundedSender<Outgoing>,
) -> Result<Vec<Value>, u16> {
    let mut state = fake.state.lock().unwrap();
    let token_ok =
        |token: &Value| token.as_str().map(|t| t.trim_start_matches("Bot ")) == Some(TOKEN);
    match payload["op"].as_u64() {
        Some(1) => {
            state.heartbeats += 1;
            Ok(vec![json!({"op": 11, "s": null, "t": null, "d": null})])
        }
        Some(2) => {
            if *ready {
                return Err(4005); // already authenticated
            }
            if !token_ok(&payload["d"]["token"]) {
                return Err(4004);
            }
            if let Some(code) = state.refuse_identify_with {
                return Err(code);
            }
            state.identifies += 1;
            let session_id = format!("session-{}", state.identifies);
            // A new session starts its own sequence; it gets events from now.
            state.sessions.push(Session {
                id: session_id.clone(),
                seq: 1,
                history: Vec::new(),
                live: Some(live.clone()),
            });
            *ready = true;
            Ok(vec![json!({"op": 0, "s": 1, "t": "READY", "d": {
                "v": 10, "user": bot_user(), "guilds": [{"id": GUILD_ID, "unavailable": true}],
                "session_id": session_id,
                "resume_gateway_url": format!("ws://{}/gateway", fake.addr),
                "shard": [0, 1],
                "application": {"id": APPLICATION_ID, "flags": 0}
            }})])
        }
        Some(6) => {
            let d = &payload["d"];
            if !token_ok(&d["token"]) {
                return Err(4004);
            }
            let Some(i) = state
                .sessions
                .iter()
                .position(|s| d["session_id"].as_str() == Some(s.id.as_str()))
            else {
                // Invalid session: the client must identify again.
                return Ok(vec![json!({"op": 9, "s": null, "t": null, "d": false})]);
            };
            state.resumes.push(d.clone());
            let session = &mut state.sessions[i];
            let after = d["seq"].as_u64().unwrap_or(0);
            let mut replies: Vec<Value> = session
                .history
                .iter()
                .filter(|(seq, _)| *seq > after)
                .map(|(_, event)| event.clone())
                .collect();
            session.seq += 1;
            session.live = Some(live.clone());
            replies.push(json!({"op": 0, "s": session.seq, "t": "RESUMED", "d": {}}));
            *ready = true;
            Ok(replies)
        }
        _ => Ok(Vec::new()),
    }
}
