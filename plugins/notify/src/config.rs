//! What an operator writes for a GOV.UK Notify channel instance: whether it
//! sends email or text messages, the partnership's template, the API key
//! and the callback token (both through the host's `secrets`, never in
//! cascade.toml), and Notify's limits. Parsing is pure; nothing connects
//! here.

use serde_json::{Map, Value, json};
use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

const KNOWN_KEYS: [&str; 11] = [
    "kind",
    "template_id",
    "api_key",
    "callback_token",
    "base_url",
    "email_reply_to_id",
    "sms_sender_id",
    "per_minute",
    "per_day",
    "max_pacing_wait_ms",
    "journal",
];

/// Notify's API.
pub const BASE_URL: &str = "https://api.notifications.service.gov.uk";
/// Notify's rate limit: requests a minute per API key (3,000 in 60 s).
pub const PER_MINUTE: u32 = 3000;

/// What an instance sends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Email,
    Sms,
}

impl Kind {
    /// The path segment of `POST /v2/notifications/{type}`.
    pub fn name(self) -> &'static str {
        match self {
            Kind::Email => "email",
            Kind::Sms => "sms",
        }
    }
}

/// The parts of a Notify API key, `{key_name}-{service_id}-{secret}`: the
/// service id is the JWT's issuer and the secret signs it. Never printed.
#[derive(Clone, PartialEq)]
pub struct ApiKey {
    pub service_id: String,
    pub secret: String,
}

impl fmt::Debug for ApiKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ApiKey")
            .field("service_id", &self.service_id)
            .field("secret", &"<secret>")
            .finish()
    }
}

impl ApiKey {
    /// Reads a key as Notify issues it: a name, then the service id and the
    /// secret, each a UUID (36 characters), joined by `-`.
    pub fn parse(key: &str) -> Option<ApiKey> {
        let key = key.trim();
        // The name may itself hold `-`, so the two UUIDs are read from the end.
        if !key.is_ascii() || key.len() < 36 + 1 + 36 + 2 {
            return None;
        }
        let secret = &key[key.len() - 36..];
        let service_id = &key[key.len() - 73..key.len() - 37];
        let joints = [
            key.as_bytes()[key.len() - 37],
            key.as_bytes()[key.len() - 74],
        ];
        (is_uuid(secret) && is_uuid(service_id) && joints == [b'-', b'-']).then(|| ApiKey {
            service_id: service_id.to_ascii_lowercase(),
            secret: secret.to_owned(),
        })
    }
}

/// A Notify channel instance's configuration.
#[derive(Clone, PartialEq)]
pub struct NotifyConfig {
    pub kind: Kind,
    /// The partnership's template in Notify (a UUID).
    pub template_id: String,
    pub api_key: ApiKey,
    /// What Notify sends as `Authorization: Bearer …` on its delivery
    /// receipts. Without one every callback is refused. Never printed.
    pub callback_token: Option<String>,
    pub base_url: String,
    pub email_reply_to_id: Option<String>,
    pub sms_sender_id: Option<String>,
    /// Notify's requests a minute (every call counts, look-ups too).
    pub per_minute: u32,
    /// The service's daily message limit, if the plugin should pace to it.
    pub per_day: Option<u32>,
    /// A pacing wait longer than this goes back to the host as a retry
    /// rather than being waited out inside the plugin.
    pub max_pacing_wait: Duration,
    /// A file of the references this channel has sent, so that after a
    /// restart only those are looked up at Notify before sending again.
    pub journal: Option<PathBuf>,
}

// The API key and the callback token must never reach a log line.
impl fmt::Debug for NotifyConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NotifyConfig")
            .field("kind", &self.kind)
            .field("template_id", &self.template_id)
            .field("api_key", &self.api_key)
            .field(
                "callback_token",
                &self.callback_token.as_ref().map(|_| "<secret>"),
            )
            .field("base_url", &self.base_url)
            .field("per_minute", &self.per_minute)
            .field("per_day", &self.per_day)
            .field("journal", &self.journal)
            .finish()
    }
}

/// A configuration the Notify channel cannot run with. Each message names
/// the key and says what to write instead; none contains a secret.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum ConfigError {
    #[error(
        "the Notify channel's configuration must be a table such as {{ kind = \"email\", template_id = \"…\" }}"
    )]
    NotAnObject,
    #[error("unknown key `{0}` in the Notify channel's configuration: the known keys are {known}", known = KNOWN_KEYS.join(", "))]
    UnknownKey(String),
    #[error("`kind` must be \"email\" or \"sms\" (got {0})")]
    InvalidKind(Value),
    #[error(
        "`api_key` is missing: give the Notify API key through the channel's secrets, e.g. secrets = {{ api_key = {{ env = \"CASCADE_NOTIFY_API_KEY\" }} }}"
    )]
    MissingApiKey,
    #[error(
        "`api_key` is not a Notify API key: copy the whole key from Notify's \"API integration\" page; it ends with two ids like 00000000-0000-0000-0000-000000000000 joined by \"-\""
    )]
    InvalidApiKey,
    #[error(
        "`callback_token` must be at least 10 characters, as Notify requires: give it through the channel's secrets"
    )]
    ShortCallbackToken,
    #[error(
        "`{0}` is missing: copy the template's id from Notify (a UUID such as \"00000000-0000-0000-0000-000000000000\")"
    )]
    MissingId(&'static str),
    #[error("`{key}` must be a UUID such as \"00000000-0000-0000-0000-000000000000\" (got {got})")]
    InvalidId { key: &'static str, got: Value },
    #[error("`base_url` must be an http or https URL (got {0})")]
    InvalidUrl(Value),
    #[error("`journal` must be a file path (got {0})")]
    InvalidJournal(Value),
    #[error("`{key}` must be a whole number from {min} to {max} (got {got})")]
    InvalidNumber {
        key: &'static str,
        min: u64,
        max: u64,
        got: Value,
    },
    #[error("`{0}` is for the other kind of channel: remove it or change `kind`")]
    WrongKind(&'static str),
}

impl NotifyConfig {
    /// Reads the configuration given at start (secrets already resolved).
    pub fn from_json(config: &Value) -> Result<Self, ConfigError> {
        let fields = config.as_object().ok_or(ConfigError::NotAnObject)?;
        if let Some(unknown) = fields.keys().find(|k| !KNOWN_KEYS.contains(&k.as_str())) {
            return Err(ConfigError::UnknownKey(unknown.clone()));
        }
        let kind = match fields.get("kind") {
            Some(Value::String(k)) if k == "email" => Kind::Email,
            Some(Value::String(k)) if k == "sms" => Kind::Sms,
            other => {
                return Err(ConfigError::InvalidKind(
                    other.cloned().unwrap_or(Value::Null),
                ));
            }
        };
        let api_key = match fields.get("api_key") {
            Some(Value::String(key)) if !key.trim().is_empty() => {
                ApiKey::parse(key).ok_or(ConfigError::InvalidApiKey)?
            }
            _ => return Err(ConfigError::MissingApiKey),
        };
        let callback_token = match fields.get("callback_token") {
            None | Some(Value::Null) => None,
            Some(Value::String(token)) if token.trim().len() >= 10 => Some(token.trim().to_owned()),
            Some(_) => return Err(ConfigError::ShortCallbackToken),
        };
        let base_url = match fields.get("base_url") {
            None | Some(Value::Null) => BASE_URL.to_owned(),
            Some(Value::String(url)) if is_http_url(url.trim()) => {
                url.trim().trim_end_matches('/').to_owned()
            }
            Some(other) => return Err(ConfigError::InvalidUrl(other.clone())),
        };
        let email_reply_to_id = optional_uuid(fields, "email_reply_to_id")?;
        let sms_sender_id = optional_uuid(fields, "sms_sender_id")?;
        match kind {
            Kind::Email if sms_sender_id.is_some() => {
                return Err(ConfigError::WrongKind("sms_sender_id"));
            }
            Kind::Sms if email_reply_to_id.is_some() => {
                return Err(ConfigError::WrongKind("email_reply_to_id"));
            }
            _ => {}
        }
        let journal = match fields.get("journal") {
            None | Some(Value::Null) => None,
            Some(Value::String(path)) if !path.trim().is_empty() => Some(PathBuf::from(path)),
            Some(other) => return Err(ConfigError::InvalidJournal(other.clone())),
        };
        Ok(NotifyConfig {
            kind,
            template_id: optional_uuid(fields, "template_id")?
                .ok_or(ConfigError::MissingId("template_id"))?,
            api_key,
            callback_token,
            base_url,
            email_reply_to_id,
            sms_sender_id,
            per_minute: number(fields, "per_minute", Some(PER_MINUTE), 1, PER_MINUTE)?
                .unwrap_or(PER_MINUTE),
            per_day: number(fields, "per_day", None, 1, 10_000_000)?,
            max_pacing_wait: Duration::from_millis(u64::from(
                number(fields, "max_pacing_wait_ms", Some(2000), 0, 60_000)?.unwrap_or(2000),
            )),
            journal,
        })
    }
}

fn is_http_url(text: &str) -> bool {
    let rest = text
        .strip_prefix("https://")
        .or_else(|| text.strip_prefix("http://"));
    rest.is_some_and(|rest| {
        let host = rest.split('/').next().unwrap_or_default();
        !host.is_empty() && !rest.contains(char::is_whitespace)
    })
}

/// Whether `text` is a UUID in its usual 8-4-4-4-12 hex form.
pub fn is_uuid(text: &str) -> bool {
    let groups: Vec<&str> = text.split('-').collect();
    groups.len() == 5
        && groups
            .iter()
            .zip([8, 4, 4, 4, 12])
            .all(|(g, n)| g.len() == n && g.chars().all(|c| c.is_ascii_hexdigit()))
}

fn optional_uuid(
    fields: &Map<String, Value>,
    key: &'static str,
) -> Result<Option<String>, ConfigError> {
    match fields.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(id)) if is_uuid(id.trim()) => Ok(Some(id.trim().to_ascii_lowercase())),
        Some(other) => Err(ConfigError::InvalidId {
            key,
            got: other.clone(),
        }),
    }
}

fn number(
    fields: &Map<String, Value>,
    key: &'static str,
    default: Option<u32>,
    min: u32,
    max: u32,
) -> Result<Option<u32>, ConfigError> {
    match fields.get(key) {
        None | Some(Value::Null) => Ok(default),
        Some(value) => value
            .as_u64()
            .filter(|n| (u64::from(min)..=u64::from(max)).contains(n))
            .and_then(|n| u32::try_from(n).ok())
            .map(Some)
            .ok_or_else(|| ConfigError::InvalidNumber {
                key,
                min: min.into(),
                max: max.into(),
                got: value.clone(),
            }),
    }
}

/// The configuration's JSON Schema, for the manifest.
pub fn config_schema() -> Value {
    json!({
        "type": "object",
        "required": ["kind", "template_id", "api_key"],
        "properties": {
            "kind": { "enum": ["email", "sms"], "description": "What this channel sends" },
            "template_id": { "type": "string", "description": "The partnership's Notify template (a UUID)" },
            "api_key": { "type": "string", "description": "The Notify API key: from the channel's secrets, never cascade.toml" },
            "callback_token": { "type": "string", "description": "The bearer token Notify sends with delivery receipts: from the channel's secrets" },
            "base_url": { "type": "string", "default": BASE_URL },
            "email_reply_to_id": { "type": "string" },
            "sms_sender_id": { "type": "string" },
            "per_minute": { "type": "integer", "default": PER_MINUTE },
            "per_day": { "type": "integer" },
            "max_pacing_wait_ms": { "type": "integer", "default": 2000 },
            "journal": { "type": "string" }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const SERVICE: &str = "26785a09-ab16-4eb0-8407-a37497a57506";
    const SECRET: &str = "3d844edf-8d35-48ac-975b-e847b4f122b0";
    const TEMPLATE: &str = "f33517ff-2a88-4f6e-b855-c550268ce08a";

    fn minimal() -> Value {
        json!({
            "kind": "email",
            "template_id": TEMPLATE,
            "api_key": format!("cascade-live-{SERVICE}-{SECRET}"),
        })
    }

    #[test]
    fn the_readme_describes_every_config_key() {
        let readme = include_str!("../README.md");
        for key in KNOWN_KEYS {
            assert!(
                readme.contains(&format!("| `{key}` |")),
                "README.md lacks `{key}`"
            );
        }
    }

    #[test]
    fn the_key_is_read_from_its_end_whatever_its_name() {
        let key = ApiKey::parse(&format!("my-key-name-{SERVICE}-{SECRET}")).unwrap();
        assert_eq!(
            (key.service_id.as_str(), key.secret.as_str()),
            (SERVICE, SECRET)
        );
        assert_eq!(ApiKey::parse(&format!("{SERVICE}-{SECRET}")), None);
        assert_eq!(ApiKey::parse(&format!("k-{SERVICE}{SECRET}")), None);
        assert_eq!(ApiKey::parse("k-not-a-key"), None);
    }

    #[test]
    fn defaults_are_notifys_api_and_limit() {
        let config = NotifyConfig::from_json(&minimal()).unwrap();
        assert_eq!(config.base_url, BASE_URL);
        assert_eq!(config.per_minute, 3000);
        assert_eq!(config.per_day, None);
        assert_eq!(config.kind, Kind::Email);
        assert_eq!(config.callback_token, None);
    }

    #[test]
    fn secrets_are_never_printed() {
        let mut json = minimal();
        json["callback_token"] = json!("callback-token-value");
        let config = NotifyConfig::from_json(&json).unwrap();
        let shown = format!("{config:?}");
        assert!(!shown.contains(SECRET), "{shown}");
        assert!(!shown.contains("callback-token-value"), "{shown}");
        json["api_key"] = json!(format!("k-{SERVICE}-{}", &SECRET[..30]));
        let error = NotifyConfig::from_json(&json).unwrap_err().to_string();
        assert!(!error.contains(&SECRET[..30]), "{error}");
        assert!(error.contains("`api_key`"), "{error}");
    }

    #[test]
    fn bad_values_name_the_key() {
        let mut json = minimal();
        json.as_object_mut().unwrap().remove("api_key");
        assert!(
            NotifyConfig::from_json(&json)
                .unwrap_err()
                .to_string()
                .contains("secrets = { api_key")
        );
        let mut json = minimal();
        json["kind"] = json!("letter");
        assert_eq!(
            NotifyConfig::from_json(&json),
            Err(ConfigError::InvalidKind(json!("letter")))
        );
        let mut json = minimal();
        json["per_minute"] = json!(5000);
        assert!(
            NotifyConfig::from_json(&json)
                .unwrap_err()
                .to_string()
                .contains("`per_minute` must be a whole number from 1 to 3000")
        );
        let mut json = minimal();
        json["sms_sender_id"] = json!(TEMPLATE);
        assert_eq!(
            NotifyConfig::from_json(&json),
            Err(ConfigError::WrongKind("sms_sender_id"))
        );
        let mut json = minimal();
        json["callback_token"] = json!("short");
        assert_eq!(
            NotifyConfig::from_json(&json),
            Err(ConfigError::ShortCallbackToken)
        );
        let mut json = minimal();
        json["templat_id"] = json!(TEMPLATE);
        assert_eq!(
            NotifyConfig::from_json(&json),
            Err(ConfigError::UnknownKey("templat_id".to_owned()))
        );
    }
}
