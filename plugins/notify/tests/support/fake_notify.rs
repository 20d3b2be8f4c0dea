//! A fake GOV.UK Notify on loopback: a real HTTP server that speaks Notify's
//! v2 REST API as documented and refuses what Notify refuses. Every request
//! must carry a JWT (HS256) signed with the service's secret, issued by the
//! service id, issued at within 30 seconds of now; the template must exist
//! and suit the endpoint, every placeholder must be given, addresses must
//! be valid (UK mobiles), a trial-mode service sends only to its guest
//! list; errors come as `{"status_code": …, "errors": [{"error": …,
//! "message": …}]}`. It also posts delivery receipts as Notify does.

use axum::Router;
use axum::body::{Body, to_bytes};
use axum::http::{Request, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};
use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

pub const SERVICE: &str = "26785a09-ab16-4eb0-8407-a37497a57506";
pub const SECRET: &str = "3d844edf-8d35-48ac-975b-e847b4f122b0";
pub const EMAIL_TEMPLATE: &str = "f33517ff-2a88-4f6e-b855-c550268ce08a";
pub const SMS_TEMPLATE: &str = "0a9c2b8e-3c1f-4f27-9d5e-6b1e2a3c4d5e";
/// An SMS template that also wants `((name))`, which cascade never fills.
pub const NAMED_SMS_TEMPLATE: &str = "9b8c7d6e-5f4a-4b3c-8d2e-1f0a9b8c7d6e";
pub const CALLBACK_TOKEN: &str = "callback-token-0123456789";

/// The API key as Notify issues it.
pub fn api_key() -> String {
    format!("cascade_live-{SERVICE}-{SECRET}")
}

/// A notification the fake took.
#[derive(Debug, Clone)]
pub struct Stored {
    pub id: String,
    pub kind: String,
    pub to: String,
    pub template_id: String,
    pub personalisation: Value,
    pub reference: Option<String>,
}

/// The claims of a token the fake accepted.
#[derive(Debug, Clone, Copy)]
pub struct Seen {
    pub iat: i64,
    pub now: i64,
}

#[derive(Default)]
struct State {
    notifications: Vec<Stored>,
    /// Answers given instead of the next sends: (status, error, message).
    faults: VecDeque<(u16, &'static str, String)>,
    tokens: Vec<Seen>,
    lookups: usize,
    posts: usize,
    trial_mode: bool,
    guest_list: Vec<String>,
    /// Take the next send and then never answer (the sender crashes before
    /// it hears back).
    swallow_next: bool,
}

#[derive(Clone)]
pub struct FakeNotify {
    pub url: String,
    state: Arc<Mutex<State>>,
}

fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

fn error(status: u16, error: &str, message: &str) -> Response {
    (
        StatusCode::from_u16(status).unwrap(),
        axum::Json(json!({
            "status_code": status,
            "errors": [{ "error": error, "message": message }]
        })),
    )
        .into_response()
}

/// Notify's check of a bearer token, as notifications-python-client's
/// `decode_jwt_token` does it.
fn authenticate(header: Option<&str>) -> Result<Seen, Box<Response>> {
    let Some(token) = header.and_then(|h| h.strip_prefix("Bearer ")) else {
        return Err(Box::new(error(
            401,
            "AuthError",
            "Unauthorized: authentication token must be provided",
        )));
    };
    let mut validation = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::HS256);
    validation.required_spec_claims = Default::default();
    validation.validate_exp = false;
    validation.set_issuer(&[SERVICE]);
    let decoded = jsonwebtoken::decode::<Value>(
        token,
        &jsonwebtoken::DecodingKey::from_secret(SECRET.as_bytes()),
        &validation,
    )
    .map_err(|_| {
        Box::new(error(
            403,
            "AuthError",
            "Invalid token: signature, api token not found",
        ))
    })?;
    let Some(iat) = decoded.claims["iat"].as_i64() else {
        return Err(Box::new(error(
            403,
            "AuthError",
            "Invalid token: missing iat",
        )));
    };
    let now = now();
    if (now - iat).abs() > 30 {
        return Err(Box::new(error(
            403,
            "AuthError",
            "Error: Your system clock must be accurate to within 30 seconds",
        )));
    }
    Ok(Seen { iat, now })
}

/// Notify's UK mobile rule: 07 and nine digits, with +44 or 0044 allowed
/// for the 0.
pub fn uk_mobile(number: &str) -> Result<String, &'static str> {
    let digits: String = number
        .chars()
        .filter(|c| !matches!(c, ' ' | '-' | '(' | ')'))
        .collect();
    let rest = digits
        .strip_prefix("+44")
        .or_else(|| digits.strip_prefix("0044"))
        .or_else(|| digits.strip_prefix('0'))
        .ok_or("Not a UK mobile number")?;
    if !rest.chars().all(|c| c.is_ascii_digit()) {
        return Err("Must not contain letters or symbols");
    }
    if !rest.starts_with('7') {
        return Err("Not a UK mobile number");
    }
    match rest.len() {
        n if n < 10 => Err("Not enough digits"),
        n if n > 10 => Err("Too many digits"),
        _ => Ok(format!("447{}", &rest[1..])),
    }
}

fn placeholders(template: &str) -> Option<(&'static str, &'static [&'static str])> {
    match template {
        EMAIL_TEMPLATE => Some(("email", &["subject", "body", "ack_link"])),
        SMS_TEMPLATE => Some(("sms", &["body"])),
        NAMED_SMS_TEMPLATE => Some(("sms", &["body", "name"])),
        _ => None,
    }
}

impl FakeNotify {
    pub async fn start() -> FakeNotify {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let fake = FakeNotify {
            url: format!("http://{}", listener.local_addr().unwrap()),
            state: Arc::default(),
        };
        let app = Router::new().fallback({
            let fake = fake.clone();
            move |request: Request<Body>| {
                let fake = fake.clone();
                async move { fake.handle(request).await }
            }
        });
        tokio::spawn(async move { axum::serve(listener, app).await });
        fake
    }

    async fn handle(&self, request: Request<Body>) -> Response {
        let seen = match authenticate(
            request
                .headers()
                .get("authorization")
                .and_then(|h| h.to_str().ok()),
        ) {
            Ok(seen) => seen,
            Err(refusal) => return *refusal,
        };
        self.state.lock().unwrap().tokens.push(seen);
        let method = request.method().clone();
        let path = request.uri().path().to_owned();
        let query = request.uri().query().unwrap_or_default().to_owned();
        let body = to_bytes(request.into_body(), 1 << 20).await.unwrap();
        match (method.as_str(), path.as_str()) {
            ("GET", "/v2/notifications") => self.list(&query),
            ("POST", "/v2/notifications/email") => self.send("email", &body).await,
            ("POST", "/v2/notifications/sms") => self.send("sms", &body).await,
            _ => error(404, "BadRequestError", "Resource not found"),
        }
    }

    fn list(&self, query: &str) -> Response {
        let mut state = self.state.lock().unwrap();
        state.lookups += 1;
        let mut reference = None;
        let mut kind = None;
        for pair in query.split('&') {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            let v = percent_decode(v);
            match k {
                "reference" => reference = Some(v),
                "template_type" => kind = Some(v),
                _ => {}
            }
        }
        let found: Vec<Value> = state
            .notifications
            .iter()
            .filter(|n| reference.is_none() || n.reference == reference)
            .filter(|n| kind.as_deref().is_none_or(|k| k == n.kind))
            .map(|n| {
                json!({
                    "id": n.id, "reference": n.reference, "type": n.kind,
                    "status": "sending", "template": { "id": n.template_id, "version": 1 },
                })
            })
            .collect();
        axum::Json(json!({ "notifications": found, "links": { "current": "" } })).into_response()
    }

    async fn send(&self, kind: &str, body: &[u8]) -> Response {
        let Ok(body) = serde_json::from_slice::<Value>(body) else {
            return error(400, "BadRequestError", "Invalid JSON supplied in POST data");
        };
        let swallow = {
            let mut state = self.state.lock().unwrap();
            state.posts += 1;
            if let Some((status, name, message)) = state.faults.pop_front() {
                return error(status, name, &message);
            }
            let template = body["template_id"].as_str().unwrap_or_default();
            let Some((template_kind, wanted)) = placeholders(template) else {
                return error(400, "BadRequestError", "Template not found");
            };
            if template_kind != kind {
                return error(
                    400,
                    "BadRequestError",
                    &format!("{template_kind} template is not suitable for {kind} notification"),
                );
            }
            let personalisation = body["personalisation"].clone();
            let missing: Vec<&str> = wanted
                .iter()
                .copied()
                .filter(|p| personalisation[*p].is_null())
                .collect();
            if !missing.is_empty() {
                return error(
                    400,
                    "BadRequestError",
                    &format!("Missing personalisation: {}", missing.join(", ")),
                );
            }
            // `to` is kept as given, as Notify keeps it (and sends it back in
            // receipts); the normalised number is for the guest list.
            let (to, normalised) = if kind == "email" {
                let address = body["email_address"].as_str().unwrap_or_default();
                let valid = address
                    .split_once('@')
                    .is_some_and(|(l, d)| !l.is_empty() && d.contains('.'));
                if !valid {
                    return error(
                        400,
                        "ValidationError",
                        "email_address Not a valid email address",
                    );
                }
                (address.to_owned(), address.to_lowercase())
            } else {
                let given = body["phone_number"].as_str().unwrap_or_default();
                match uk_mobile(given) {
                    Ok(number) => (given.to_owned(), number),
                    Err(why) => {
                        return error(400, "ValidationError", &format!("phone_number {why}"));
                    }
                }
            };
            if state.trial_mode && !state.guest_list.contains(&normalised) {
                return error(
                    400,
                    "BadRequestError",
                    "Can't send to this recipient when service is in trial mode – see https://www.notifications.service.gov.uk/trial-mode",
                );
            }
            let id = format!(
                "740e5834-3a29-46b4-9a6f-{:012x}",
                state.notifications.len() + 1
            );
            state.notifications.push(Stored {
                id: id.clone(),
                kind: kind.to_owned(),
                to,
                template_id: template.to_owned(),
                personalisation,
                reference: body["reference"].as_str().map(str::to_owned),
            });
            let swallow = std::mem::take(&mut state.swallow_next);
            (swallow, id, body["reference"].clone())
        };
        let (swallow, id, reference) = swallow;
        if swallow {
            // Taken, and the answer never comes.
            tokio::time::sleep(Duration::from_secs(3600)).await;
        }
        (
            StatusCode::CREATED,
            axum::Json(json!({
                "id": id,
                "reference": reference,
                "content": { "body": "…" },
                "uri": format!("{}/v2/notifications/{id}", self.url),
                "template": { "id": "", "version": 1, "uri": "" },
            })),
        )
            .into_response()
    }

    pub fn fail_next(&self, status: u16, name: &'static str, message: &str) {
        self.state
            .lock()
            .unwrap()
            .faults
            .push_back((status, name, message.to_owned()));
    }

    pub fn trial_mode(&self, guests: &[&str]) {
        let mut state = self.state.lock().unwrap();
        state.trial_mode = true;
        state.guest_list = guests.iter().map(|g| (*g).to_owned()).collect();
    }

    pub fn swallow_next(&self) {
        self.state.lock().unwrap().swallow_next = true;
    }

    pub fn notifications(&self) -> Vec<Stored> {
        self.state.lock().unwrap().notifications.clone()
    }

    pub fn tokens(&self) -> Vec<Seen> {
        self.state.lock().unwrap().tokens.clone()
    }

    pub fn lookups(&self) -> usize {
        self.state.lock().unwrap().lookups
    }

    pub fn posts(&self) -> usize {
        self.state.lock().unwrap().posts
    }

    /// Posts a delivery receipt for notification `id` to `url` as Notify
    /// does, with `token` as the bearer token if given; the status answered.
    pub async fn receipt(&self, url: &str, token: Option<&str>, id: &str, status: &str) -> u16 {
        let stored = self
            .notifications()
            .into_iter()
            .find(|n| n.id == id)
            .expect("a notification the fake took");
        let body = json!({
            "id": stored.id,
            "reference": stored.reference,
            "to": stored.to,
            "status": status,
            "created_at": "2026-03-27T09:00:00.000000Z",
            "completed_at": "2026-03-27T09:00:05.000000Z",
            "sent_at": "2026-03-27T09:00:01.000000Z",
            "notification_type": stored.kind,
            "template_id": stored.template_id,
            "template_version": 1,
        });
        let mut request = reqwest::Client::new().post(url).json(&body);
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        request.send().await.unwrap().status().as_u16()
    }
}

fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%'
            && i + 2 < bytes.len()
            && let Ok(b) = u8::from_str_radix(&text[i + 1..i + 3], 16)
        {
            out.push(b);
            i += 3;
        } else {
            out.push(if bytes[i] == b'+' { b' ' } else { bytes[i] });
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// A token as a client would make it, issued `age` seconds ago, signed with
/// `secret`: to show the fake refuses what Notify refuses.
pub fn token_issued(age: i64, secret: &str) -> String {
    jsonwebtoken::encode(
        &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256),
        &json!({ "iss": SERVICE, "iat": now() - age }),
        &jsonwebtoken::EncodingKey::from_secret(secret.as_bytes()),
    )
    .unwrap()
}
