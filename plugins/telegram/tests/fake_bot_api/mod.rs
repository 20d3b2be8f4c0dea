//! A fake Telegram Bot API server for the tests and the benchmark: a real
//! HTTP server on a loopback port, speaking the Bot API's JSON
//! (`{"ok":true,"result":...}` / `{"ok":false,"error_code":..,"description":..}`)
//! for the methods the plugin uses, and refusing what Telegram refuses:
//! callback data over 64 bytes, text over 4096 UTF-16 units after entity
//! parsing, malformed or unsupported HTML, a callback query answered twice,
//! getUpdates while a webhook is set, a getUpdates while another is still
//! open (409, as Telegram answers a second bot process). It plays the
//! users too: queued
//! messages and button presses come out of getUpdates (or are posted to a
//! set webhook), and every request is recorded for the assertions.
#![allow(dead_code)] // each test file uses its own share of these

pub mod html;

use axum::Router;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use serde_json::{Value, json};
use std::collections::{HashSet, VecDeque};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::Notify;

pub const TOKEN: &str = "123456789:TEST-token_for-the-fake";
pub const BOT_ID: u64 = 123_456_789;

/// A scripted answer to the next sendMessage, instead of accepting it.
#[derive(Debug, Clone)]
pub enum Fault {
    /// 429 with `parameters.retry_after`.
    TooManyRequests { retry_after: u64 },
    /// A 5xx with Telegram's JSON body.
    ServerError {
        code: u16,
        description: &'static str,
    },
    /// Answers nothing for this long, then 504: the client should give up
    /// first. The message is not posted.
    Hang(Duration),
}

/// A message as the fake holds it.
#[derive(Debug, Clone, PartialEq)]
pub struct Posted {
    pub chat: i64,
    pub message_id: i64,
    /// What the message shows, entities parsed.
    pub text: String,
    /// The HTML it was posted (or last edited) with.
    pub html: String,
    pub entities: Vec<Value>,
    pub reply_markup: Option<Value>,
}

impl Posted {
    /// The callback data of the message's buttons, in order.
    pub fn buttons(&self) -> Vec<(String, String)> {
        let Some(markup) = &self.reply_markup else {
            return Vec::new();
        };
        markup["inline_keyboard"]
            .as_array()
            .into_iter()
            .flatten()
            .flat_map(|row| row.as_array().into_iter().flatten())
            .map(|b| {
                (
                    b["text"].as_str().unwrap_or_default().to_owned(),
                    b["callback_data"].as_str().unwrap_or_default().to_owned(),
                )
            })
            .collect()
    }

    fn json(&self) -> Value {
        let mut message = json!({
            "message_id": self.message_id,
            "from": bot_user(),
            "chat": private_chat(self.chat),
            "date": 1_774_602_000,
            "text": self.text,
        });
        if !self.entities.is_empty() {
            message["entities"] = json!(self.entities);
        }
        if let Some(markup) = &self.reply_markup {
            message["reply_markup"] = markup.clone();
        }
        message
    }
}

/// One request the fake received.
#[derive(Debug, Clone)]
pub struct Request {
    pub method: String,
    pub body: Value,
    /// The status the fake answered with.
    pub status: u16,
}

#[derive(Default)]
struct Inner {
    requests: Vec<Request>,
    updates: VecDeque<Value>,
    next_update_id: i64,
    /// Every message posted, in order (edits change them in place).
    posted: Vec<Posted>,
    next_message_id: i64,
    /// Scripted answers for the next sendMessage calls; `None` accepts one.
    faults: VecDeque<Option<Fault>>,
    blocked: HashSet<i64>,
    /// Pressed callback queries not yet answered.
    open_queries: HashSet<String>,
    answered_queries: HashSet<String>,
    next_query_id: u64,
    webhook: Option<(String, Option<String>)>,
    /// Most sendMessage calls accepted in any one second; `None` for no limit.
    per_second: Option<usize>,
    accepted_at: VecDeque<Instant>,
    too_many_requests: usize,
    /// getUpdates calls open now, the most ever open at once, and those
    /// refused because another was open.
    polls_open: usize,
    most_polls_open: usize,
    poll_conflicts: usize,
}

#[derive(Clone)]
pub struct FakeBotApi {
    state: Arc<Mutex<Inner>>,
    changed: Arc<Notify>,
    pub url: String,
}

fn bot_user() -> Value {
    json!({"id": BOT_ID, "is_bot": true, "first_name": "Cascade", "username": "cascade_test_bot"})
}

fn user(id: i64) -> Value {
    json!({"id": id, "is_bot": false, "first_name": format!("User {id}"), "language_code": "en"})
}

fn private_chat(id: i64) -> Value {
    json!({"id": id, "type": "private", "first_name": format!("User {id}")})
}

fn ok(result: Value) -> (u16, Value) {
    (200, json!({"ok": true, "result": result}))
}

fn error(code: u16, description: impl Into<String>) -> (u16, Value) {
    (
        code,
        json!({"ok": false, "error_code": code, "description": description.into()}),
    )
}

fn bad_request(description: impl std::fmt::Display) -> (u16, Value) {
    error(400, format!("Bad Request: {description}"))
}

impl FakeBotApi {
    /// Starts the server on a free loopback port.
    pub async fn start() -> FakeBotApi {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address: SocketAddr = listener.local_addr().unwrap();
        let fake = FakeBotApi {
            state: Arc::new(Mutex::new(Inner {
                next_update_id: 500_000,
                next_message_id: 1,
                ..Inner::default()
            })),
            changed: Arc::new(Notify::new()),
            url: format!("http://{address}"),
        };
        let app = Router::new()
            .route("/{token}/{method}", post(handle))
            .with_state(fake.clone());
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        fake
    }

    fn state(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Enforces Telegram's overall limit: more than `per_second`
    /// sendMessage calls within one second are answered 429.
    pub fn limit_per_second(&self, per_second: usize) {
        self.state().per_second = Some(per_second);
    }

    /// The next sendMessage not yet scripted fails with `fault`.
    pub fn fail_next_send(&self, fault: Fault) {
        self.state().faults.push_back(Some(fault));
    }

    /// The next sendMessage not yet scripted is accepted as usual.
    pub fn accept_next_send(&self) {
        self.state().faults.push_back(None);
    }

    /// The user of `chat` blocks the bot.
    pub fn block(&self, chat: i64) {
        self.state().blocked.insert(chat);
    }

    pub fn requests(&self) -> Vec<Request> {
        self.state().requests.clone()
    }

    pub fn requests_to(&self, method: &str) -> Vec<Request> {
        self.requests()
            .into_iter()
            .filter(|r| r.method.eq_ignore_ascii_case(method))
            .collect()
    }

    /// Every message posted to `chat`, in order, as it is now.
    pub fn messages_in(&self, chat: i64) -> Vec<Posted> {
        self.state()
            .posted
            .iter()
            .filter(|m| m.chat == chat)
            .cloned()
            .collect()
    }

    pub fn all_messages(&self) -> Vec<Posted> {
        self.state().posted.clone()
    }

    pub fn too_many_requests(&self) -> usize {
        self.state().too_many_requests
    }

    /// The most getUpdates calls ever open at once (Telegram allows one).
    pub fn most_polls_open(&self) -> usize {
        self.state().most_polls_open
    }

    /// getUpdates calls refused with 409 because another was open.
    pub fn poll_conflicts(&self) -> usize {
        self.state().poll_conflicts
    }

    /// The getUpdates calls answered, in order (those refused too).
    pub fn polls(&self) -> Vec<Request> {
        self.requests_to("getUpdates")
    }

    /// Whether the updates queued so far were all confirmed by a later
    /// getUpdates (an offset past them).
    pub fn all_updates_confirmed(&self) -> bool {
        self.state().updates.is_empty()
    }

    pub fn webhook(&self) -> Option<(String, Option<String>)> {
        self.state().webhook.clone()
    }

    /// Sets (or, with `None`, deletes) the webhook as another process using
    /// the same bot token would.
    pub fn set_webhook_elsewhere(&self, url: Option<&str>) {
        self.state().webhook = url.map(|u| (u.to_owned(), None));
        self.changed.notify_waiters();
    }

    /// Waits (up to 20 s) until `check` holds, looking again after each
    /// request the fake answers.
    pub async fn wait_until(&self, what: &str, check: impl Fn(&FakeBotApi) -> bool) {
        let waiting = async {
            loop {
                let notified = self.changed.notified();
                if check(self) {
                    return;
                }
                notified.await;
            }
        };
        if tokio::time::timeout(Duration::from_secs(20), waiting)
            .await
            .is_err()
        {
            panic!("the fake Bot API never saw {what}: {:#?}", self.requests());
        }
    }

    /// The messages in `chat` once there are at least `n`.
    pub async fn wait_for_messages(&self, chat: i64, n: usize) -> Vec<Posted> {
        self.wait_until(&format!("{n} messages in chat {chat}"), |f| {
            f.messages_in(chat).len() >= n
        })
        .await;
        self.messages_in(chat)
    }

    fn queue(&self, kind: &str, payload: Value) {
        let mut state = self.state();
        let id = state.next_update_id;
        state.next_update_id += 1;
        let mut update = json!({ "update_id": id });
        update[kind] = payload;
        state.updates.push_back(update);
        drop(state);
        self.changed.notify_waiters();
    }

    /// The user `user` types `text` in their private chat with the bot.
    pub fn user_sends(&self, user_id: i64, text: &str) {
        let message_id = {
            let mut state = self.state();
            state.next_message_id += 1;
            state.next_message_id
        };
        let mut message = json!({
            "message_id": message_id,
            "from": user(user_id),
            "chat": private_chat(user_id),
            "date": 1_774_602_000,
            "text": text,
        });
        if text.starts_with('/') {
            let length = text
                .split_whitespace()
                .next()
                .unwrap()
                .encode_utf16()
                .count();
            message["entities"] = json!([{"type": "bot_command", "offset": 0, "length": length}]);
        }
        self.queue("message", message);
    }

    /// The user `user` presses the button whose label starts with `label` on message
    /// `message_id` of chat `chat`; returns the callback query id.
    pub fn user_presses(&self, user_id: i64, chat: i64, message_id: i64, label: &str) -> String {
        let message = self
            .messages_in(chat)
            .into_iter()
            .find(|m| m.message_id == message_id)
            .unwrap_or_else(|| panic!("no message {message_id} in chat {chat}"));
        let data = message
            .buttons()
            .into_iter()
            .find(|(text, _)| text.starts_with(label))
            .unwrap_or_else(|| panic!("no button {label:?} on {message:?}"))
            .1;
        self.press_with_data(user_id, &message, &data)
    }

    /// A press of a button carrying `data` on `message`, as sent by the
    /// client of `user_id`.
    pub fn press_with_data(&self, user_id: i64, message: &Posted, data: &str) -> String {
        let id = {
            let mut state = self.state();
            state.next_query_id += 1;
            let id = format!("{}", 4_000_000_000_000_000_000u64 + state.next_query_id);
            state.open_queries.insert(id.clone());
            id
        };
        self.queue(
            "callback_query",
            json!({
                "id": id,
                "from": user(user_id),
                "message": message.json(),
                "chat_instance": format!("ci-{}", message.chat),
                "data": data,
            }),
        );
        id
    }

    /// Posts the queued updates to the webhook, with `secret` in the
    /// secret-token header if given; returns the HTTP status of each post.
    pub async fn post_to_webhook(&self, secret: Option<&str>) -> Vec<u16> {
        let (url, updates) = {
            let mut state = self.state();
            let url = state.webhook.clone().expect("no webhook is set").0;
            (url, state.updates.drain(..).collect::<Vec<_>>())
        };
        let url = url::Url::parse(&url).unwrap();
        let mut statuses = Vec::new();
        for update in updates {
            statuses.push(request(&url, "POST", secret, &update.to_string()).await);
        }
        statuses
    }
}

/// A minimal HTTP/1.1 client for the webhook posts: one request per
/// connection, returning the status code.
pub async fn request(url: &url::Url, method: &str, secret: Option<&str>, body: &str) -> u16 {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let address = format!(
        "{}:{}",
        url.host_str().unwrap(),
        url.port_or_known_default().unwrap()
    );
    let mut stream = tokio::net::TcpStream::connect(address).await.unwrap();
    let secret = secret
        .map(|s| format!("X-Telegram-Bot-Api-Secret-Token: {s}\r\n"))
        .unwrap_or_default();
    let request = format!(
        "{method} {} HTTP/1.1\r\nHost: {}\r\nContent-Type: application/json\r\n{secret}Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        url.path(),
        url.host_str().unwrap(),
        body.len()
    );
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).await.unwrap();
    response
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("not an HTTP response: {response:?}"))
}

async fn handle(
    State(fake): State<FakeBotApi>,
    Path((token, method)): Path<(String, String)>,
    headers: HeaderMap,
    body: String,
) -> Response {
    let content_type = headers
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    let body = match content_type.split_once("boundary=") {
        Some((_, boundary)) if content_type.starts_with("multipart/form-data") => {
            multipart_fields(&body, boundary.trim_matches('"'))
        }
        _ => serde_json::from_str(&body).unwrap_or(Value::Null),
    };
    let (status, answer) = if token != format!("bot{TOKEN}") {
        error(401, "Unauthorized")
    } else {
        answer(&fake, &method, &body).await
    };
    fake.state().requests.push(Request {
        method: method.clone(),
        body,
        status,
    });
    fake.changed.notify_waiters();
    (
        StatusCode::from_u16(status).unwrap(),
        [("content-type", "application/json")],
        answer.to_string(),
    )
        .into_response()
}

/// The fields of a multipart/form-data body (teloxide posts setWebhook so,
/// as it may carry a certificate): JSON values where they parse, else text.
fn multipart_fields(body: &str, boundary: &str) -> Value {
    let mut fields = serde_json::Map::new();
    for part in body.split(&format!("--{boundary}")) {
        let Some((head, value)) = part.split_once("\r\n\r\n") else {
            continue;
        };
        let Some(name) = head
            .split("name=\"")
            .nth(1)
            .and_then(|rest| rest.split('"').next())
        else {
            continue;
        };
        let value = value.strip_suffix("\r\n").unwrap_or(value);
        let value = serde_json::from_str(value).unwrap_or_else(|_| json!(value));
        fields.insert(name.to_owned(), value);
    }
    Value::Object(fields)
}

async fn answer(fake: &FakeBotApi, method: &str, body: &Value) -> (u16, Value) {
    match method.to_ascii_lowercase().as_str() {
        "getme" => ok(json!({
            "id": BOT_ID, "is_bot": true, "first_name": "Cascade", "username": "cascade_test_bot",
            "can_join_groups": false, "can_read_all_group_messages": false,
            "supports_inline_queries": false, "can_connect_to_business": false,
            "has_main_web_app": false
        })),
        "getupdates" => get_updates(fake, body).await,
        "sendmessage" => send_message(fake, body).await,
        "answercallbackquery" => {
            let id = body["callback_query_id"].as_str().unwrap_or_default();
            let text = body["text"].as_str().unwrap_or_default();
            let mut state = fake.state();
            if text.chars().count() > 200 {
                return bad_request("MESSAGE_TOO_LONG");
            }
            if !state.open_queries.remove(id) {
                return bad_request(
                    "query is too old and response timeout expired or query ID is invalid",
                );
            }
            state.answered_queries.insert(id.to_owned());
            ok(json!(true))
        }
        "editmessagetext" => edit(fake, body, true),
        "editmessagereplymarkup" => edit(fake, body, false),
        "setwebhook" => {
            let Some(url) = body["url"].as_str() else {
                return bad_request("bad webhook: URL must be provided");
            };
            let secret = body["secret_token"].as_str().map(str::to_owned);
            fake.state().webhook = Some((url.to_owned(), secret));
            ok(json!(true))
        }
        "deletewebhook" => {
            fake.state().webhook = None;
            ok(json!(true))
        }
        "getwebhookinfo" => {
            // As Telegram answers it: an empty url when none is set.
            let state = fake.state();
            let url = state.webhook.as_ref().map_or("", |(url, _)| url.as_str());
            let mut info = json!({
                "url": url,
                "has_custom_certificate": false,
                "pending_update_count": state.updates.len(),
            });
            if !url.is_empty() {
                info["max_connections"] = json!(40);
                info["allowed_updates"] = json!(["message", "callback_query"]);
            }
            ok(info)
        }
        _ => error(404, "Not Found"),
    }
}

/// One open getUpdates, counted until its answer or until the client
/// goes away (the handler is dropped then).
struct OpenPoll(FakeBotApi);

impl Drop for OpenPoll {
    fn drop(&mut self) {
        self.0.state().polls_open -= 1;
    }
}

async fn get_updates(fake: &FakeBotApi, body: &Value) -> (u16, Value) {
    let _open = {
        let mut state = fake.state();
        if state.polls_open > 0 {
            state.poll_conflicts += 1;
            return error(
                409,
                "Conflict: terminated by other getUpdates request; make sure that only one bot instance is running",
            );
        }
        state.polls_open += 1;
        state.most_polls_open = state.most_polls_open.max(state.polls_open);
        OpenPoll(fake.clone())
    };
    let offset = body["offset"].as_i64().unwrap_or(0);
    let timeout = Duration::from_secs(body["timeout"].as_u64().unwrap_or(0));
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        let notified = fake.changed.notified();
        {
            let mut state = fake.state();
            if state.webhook.is_some() {
                return error(
                    409,
                    "Conflict: can't use getUpdates method while webhook is active; use deleteWebhook to delete the webhook first",
                );
            }
            // An offset confirms every update before it.
            while state
                .updates
                .front()
                .is_some_and(|u| u["update_id"].as_i64().unwrap() < offset)
            {
                state.updates.pop_front();
            }
            if !state.updates.is_empty() {
                return ok(json!(state.updates.iter().take(100).collect::<Vec<_>>()));
            }
        }
        if tokio::time::timeout_at(deadline, notified).await.is_err() {
            return ok(json!([]));
        }
    }
}

fn keyboard_problem(markup: &Value) -> Option<(u16, Value)> {
    let rows = markup.get("inline_keyboard")?.as_array()?;
    for button in rows.iter().flat_map(|r| r.as_array().into_iter().flatten()) {
        let data = button["callback_data"].as_str().unwrap_or_default();
        if data.is_empty() || data.len() > 64 {
            return Some(bad_request("BUTTON_DATA_INVALID"));
        }
        if button["text"].as_str().unwrap_or_default().is_empty() {
            return Some(bad_request(
                "text buttons are unallowed in the inline keyboard",
            ));
        }
    }
    None
}

/// Parses a text as Telegram does, or says why Telegram would refuse it.
fn parse_text(body: &Value) -> Result<(String, String, Vec<Value>), (u16, Value)> {
    let raw = body["text"].as_str().unwrap_or_default().to_owned();
    let (text, entities) = if body["parse_mode"].as_str() == Some("HTML") {
        html::parse(&raw).map_err(|e| bad_request(format!("can't parse entities: {e}")))?
    } else {
        (raw.clone(), Vec::new())
    };
    if text.trim().is_empty() {
        return Err(bad_request("message text is empty"));
    }
    if html::utf16_len(&text) > 4096 {
        return Err(bad_request("message is too long"));
    }
    Ok((raw, text, entities))
}

async fn send_message(fake: &FakeBotApi, body: &Value) -> (u16, Value) {
    let Some(chat) = body["chat_id"].as_i64() else {
        return bad_request("chat not found");
    };
    let (raw, text, entities) = match parse_text(body) {
        Ok(parsed) => parsed,
        Err(refused) => return refused,
    };
    if let Some(problem) = body.get("reply_markup").and_then(keyboard_problem) {
        return problem;
    }
    let fault = fake.state().faults.pop_front().flatten();
    match fault {
        Some(Fault::TooManyRequests { retry_after }) => {
            fake.state().too_many_requests += 1;
            return too_many(retry_after);
        }
        Some(Fault::ServerError { code, description }) => return error(code, description),
        Some(Fault::Hang(hang)) => {
            tokio::time::sleep(hang).await;
            return error(504, "Gateway Timeout");
        }
        None => {}
    }
    let mut state = fake.state();
    if state.blocked.contains(&chat) {
        return error(403, "Forbidden: bot was blocked by the user");
    }
    if let Some(limit) = state.per_second {
        let now = Instant::now();
        while state
            .accepted_at
            .front()
            .is_some_and(|at| now.duration_since(*at) >= Duration::from_secs(1))
        {
            state.accepted_at.pop_front();
        }
        if state.accepted_at.len() >= limit {
            state.too_many_requests += 1;
            return too_many(1);
        }
        state.accepted_at.push_back(now);
    }
    state.next_message_id += 1;
    let message = Posted {
        chat,
        message_id: state.next_message_id,
        text,
        html: raw,
        entities,
        reply_markup: body.get("reply_markup").cloned(),
    };
    state.posted.push(message.clone());
    ok(message.json())
}

fn too_many(retry_after: u64) -> (u16, Value) {
    (
        429,
        json!({
            "ok": false,
            "error_code": 429,
            "description": format!("Too Many Requests: retry after {retry_after}"),
            "parameters": {"retry_after": retry_after}
        }),
    )
}

fn edit(fake: &FakeBotApi, body: &Value, text: bool) -> (u16, Value) {
    let (Some(chat), Some(message_id)) = (body["chat_id"].as_i64(), body["message_id"].as_i64())
    else {
        return bad_request("message to edit not found");
    };
    let parsed = if text {
        match parse_text(body) {
            Ok(parsed) => Some(parsed),
            Err(refused) => return refused,
        }
    } else {
        None
    };
    if let Some(problem) = body.get("reply_markup").and_then(keyboard_problem) {
        return problem;
    }
    let mut state = fake.state();
    let Some(message) = state
        .posted
        .iter_mut()
        .find(|m| m.chat == chat && m.message_id == message_id)
    else {
        return bad_request("message to edit not found");
    };
    let markup = body.get("reply_markup").cloned().filter(|m| {
        m["inline_keyboard"]
            .as_array()
            .is_some_and(|rows| !rows.is_empty())
    });
    let unchanged = match &parsed {
        Some((_, new_text, new_entities)) => {
            *new_text == message.text
                && *new_entities == message.entities
                && markup == message.reply_markup
        }
        None => markup == message.reply_markup,
    };
    if unchanged {
        return bad_request(
            "message is not modified: specified new message content and reply markup are exactly the same as a current content and reply markup of the message",
        );
    }
    if let Some((raw, new_text, new_entities)) = parsed {
        message.html = raw;
        message.text = new_text;
        message.entities = new_entities;
    }
    message.reply_markup = markup;
    ok(message.json())
}
