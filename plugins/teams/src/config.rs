//! What an operator writes for a Teams channel instance: the bot's app id
//! and tenant, the app password (through the host's `secrets`), where
//! tokens and signing keys come from, which Bot Connector hosts the bot
//! may talk to, and Teams' rate limits. Parsing is pure; nothing connects
//! here.

use serde_json::{Map, Value, json};
use std::fmt;
use std::time::Duration;

const KNOWN_KEYS: [&str; 15] = [
    "app_id",
    "app_password",
    "tenant_id",
    "token_url",
    "token_scope",
    "openid_metadata_url",
    "token_issuer",
    "service_url",
    "allowed_service_urls",
    "per_second",
    "per_2_seconds",
    "per_30_seconds",
    "per_hour",
    "app_per_second",
    "max_pacing_wait_ms",
];

/// Where the Bot Framework publishes the keys that sign what Teams posts to
/// a bot.
pub const OPENID_METADATA_URL: &str =
    "https://login.botframework.com/v1/.well-known/openidconfiguration";
/// The issuer of every token the Bot Framework service signs for a bot.
pub const TOKEN_ISSUER: &str = "https://api.botframework.com";
/// The scope of the app token that calls the Bot Connector.
pub const TOKEN_SCOPE: &str = "https://api.botframework.com/.default";
/// The Bot Connector for Teams in the UK; Teams says which one to use in
/// every activity's `serviceUrl`, this is only for the first proactive send.
pub const SERVICE_URL: &str = "https://smba.trafficmanager.net/uk/";
/// Every Bot Connector host Teams uses in the commercial cloud.
pub const ALLOWED_SERVICE_URLS: [&str; 1] = ["https://smba.trafficmanager.net/"];

/// A Teams channel instance's configuration.
#[derive(Clone, PartialEq)]
pub struct TeamsConfig {
    /// The bot's Microsoft App ID (a GUID): the audience of inbound tokens
    /// and the client id of the app token.
    pub app_id: String,
    /// The app's client secret. Never printed.
    pub app_password: String,
    /// The Entra ID tenant of the partnership: activities from any other
    /// are refused, and proactive conversations are opened in it.
    pub tenant_id: String,
    /// The OAuth 2.0 token endpoint of the client-credentials grant.
    pub token_url: String,
    pub token_scope: String,
    pub openid_metadata_url: String,
    pub token_issuer: String,
    /// The Bot Connector for proactive sends to someone whose activity
    /// carried no `serviceUrl` yet (a team channel post).
    pub service_url: String,
    /// URL prefixes a `serviceUrl` must start with, inbound and outbound.
    pub allowed_service_urls: Vec<String>,
    /// Teams' limits per conversation: operations a second, in 2 seconds,
    /// in 30 seconds and in an hour.
    pub per_second: u32,
    pub per_2_seconds: u32,
    pub per_30_seconds: u32,
    pub per_hour: u32,
    /// Operations a second over all conversations of this bot.
    pub app_per_second: u32,
    /// A pacing wait longer than this is handed back to the host as a retry
    /// rather than waited out inside the plugin.
    pub max_pacing_wait: Duration,
}

// The app password must never reach a log line or an error message.
impl fmt::Debug for TeamsConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TeamsConfig")
            .field("app_id", &self.app_id)
            .field("app_password", &"<secret>")
            .field("tenant_id", &self.tenant_id)
            .field("token_url", &self.token_url)
            .field("openid_metadata_url", &self.openid_metadata_url)
            .field("service_url", &self.service_url)
            .field("allowed_service_urls", &self.allowed_service_urls)
            .field("per_second", &self.per_second)
            .field("per_2_seconds", &self.per_2_seconds)
            .field("per_30_seconds", &self.per_30_seconds)
            .field("per_hour", &self.per_hour)
            .field("app_per_second", &self.app_per_second)
            .finish()
    }
}

/// A configuration the Teams channel cannot run with. Each message names
/// the key and says what to write instead; none contains the password.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum ConfigError {
    #[error(
        "the Teams channel's configuration must be a table such as {{ app_id = \"…\", tenant_id = \"…\" }}"
    )]
    NotAnObject,
    #[error("unknown key `{0}` in the Teams channel's configuration: the known keys are {known}", known = KNOWN_KEYS.join(", "))]
    UnknownKey(String),
    #[error(
        "`app_password` is missing: give the bot's client secret through the channel's secrets, e.g. secrets = {{ app_password = {{ env = \"CASCADE_TEAMS_APP_PASSWORD\" }} }}"
    )]
    MissingPassword,
    #[error(
        "`{0}` is missing: copy it from the bot's Azure registration (a GUID such as \"00000000-0000-0000-0000-000000000000\")"
    )]
    MissingId(&'static str),
    #[error("`{key}` must be a GUID such as \"00000000-0000-0000-0000-000000000000\" (got {got})")]
    InvalidId { key: &'static str, got: Value },
    #[error("`{key}` must be an http or https URL (got {got})")]
    InvalidUrl { key: &'static str, got: Value },
    #[error("`{key}` must be a string (got {got})")]
    NotAString { key: &'static str, got: Value },
    #[error(
        "`allowed_service_urls` must be a list of http or https URL prefixes, e.g. [\"https://smba.trafficmanager.net/\"] (got {0})"
    )]
    InvalidAllowList(Value),
    #[error("`service_url` {0:?} is not covered by `allowed_service_urls`: add its prefix there")]
    ServiceUrlNotAllowed(String),
    #[error("`{key}` must be a whole number from {min} to {max} (got {got})")]
    InvalidNumber {
        key: &'static str,
        min: u64,
        max: u64,
        got: Value,
    },
}

impl TeamsConfig {
    /// Reads the configuration given at start (secrets already resolved).
    pub fn from_json(config: &Value) -> Result<Self, ConfigError> {
        let fields = config.as_object().ok_or(ConfigError::NotAnObject)?;
        if let Some(unknown) = fields.keys().find(|k| !KNOWN_KEYS.contains(&k.as_str())) {
            return Err(ConfigError::UnknownKey(unknown.clone()));
        }
        let app_password = match fields.get("app_password") {
            Some(Value::String(secret)) if !secret.trim().is_empty() => secret.trim().to_owned(),
            _ => return Err(ConfigError::MissingPassword),
        };
        let app_id = guid(fields, "app_id")?;
        let tenant_id = guid(fields, "tenant_id")?;
        let default_token_url =
            format!("https://login.microsoftonline.com/{tenant_id}/oauth2/v2.0/token");
        let allowed_service_urls = match fields.get("allowed_service_urls") {
            None | Some(Value::Null) => ALLOWED_SERVICE_URLS.map(str::to_owned).to_vec(),
            Some(Value::Array(list))
                if !list.is_empty() && list.iter().all(|v| v.as_str().is_some_and(is_http_url)) =>
            {
                list.iter()
                    .filter_map(Value::as_str)
                    .map(str::to_owned)
                    .collect()
            }
            Some(other) => return Err(ConfigError::InvalidAllowList(other.clone())),
        };
        let service_url = url(fields, "service_url", SERVICE_URL)?;
        if !service_url_allowed(&allowed_service_urls, &service_url) {
            return Err(ConfigError::ServiceUrlNotAllowed(service_url));
        }
        Ok(TeamsConfig {
            token_url: url(fields, "token_url", &default_token_url)?,
            token_scope: text(fields, "token_scope", TOKEN_SCOPE)?,
            openid_metadata_url: url(fields, "openid_metadata_url", OPENID_METADATA_URL)?,
            token_issuer: text(fields, "token_issuer", TOKEN_ISSUER)?,
            service_url,
            allowed_service_urls,
            per_second: number(fields, "per_second", 7, 1, 1000)?,
            per_2_seconds: number(fields, "per_2_seconds", 8, 1, 2000)?,
            per_30_seconds: number(fields, "per_30_seconds", 60, 1, 30_000)?,
            per_hour: number(fields, "per_hour", 1800, 1, 3_600_000)?,
            app_per_second: number(fields, "app_per_second", 50, 1, 10_000)?,
            max_pacing_wait: Duration::from_millis(u64::from(number(
                fields,
                "max_pacing_wait_ms",
                2000,
                0,
                60_000,
            )?)),
            app_id,
            app_password,
            tenant_id,
        })
    }

    /// Whether the bot may talk to the Bot Connector at `service_url`.
    pub fn allows_service_url(&self, service_url: &str) -> bool {
        service_url_allowed(&self.allowed_service_urls, service_url)
    }
}

fn service_url_allowed(allowed: &[String], service_url: &str) -> bool {
    is_http_url(service_url) && allowed.iter().any(|prefix| service_url.starts_with(prefix))
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

fn guid(fields: &Map<String, Value>, key: &'static str) -> Result<String, ConfigError> {
    match fields.get(key) {
        None | Some(Value::Null) => Err(ConfigError::MissingId(key)),
        Some(Value::String(id)) if is_guid(id.trim()) => Ok(id.trim().to_ascii_lowercase()),
        Some(other) => Err(ConfigError::InvalidId {
            key,
            got: other.clone(),
        }),
    }
}

fn is_guid(text: &str) -> bool {
    let groups: Vec<&str> = text.split('-').collect();
    groups.len() == 5
        && groups
            .iter()
            .zip([8, 4, 4, 4, 12])
            .all(|(g, n)| g.len() == n && g.chars().all(|c| c.is_ascii_hexdigit()))
}

fn url(
    fields: &Map<String, Value>,
    key: &'static str,
    default: &str,
) -> Result<String, ConfigError> {
    match fields.get(key) {
        None | Some(Value::Null) => Ok(default.to_owned()),
        Some(Value::String(url)) if is_http_url(url.trim()) => Ok(url.trim().to_owned()),
        Some(other) => Err(ConfigError::InvalidUrl {
            key,
            got: other.clone(),
        }),
    }
}

fn text(
    fields: &Map<String, Value>,
    key: &'static str,
    default: &str,
) -> Result<String, ConfigError> {
    match fields.get(key) {
        None | Some(Value::Null) => Ok(default.to_owned()),
        Some(Value::String(text)) if !text.trim().is_empty() => Ok(text.trim().to_owned()),
        Some(other) => Err(ConfigError::NotAString {
            key,
            got: other.clone(),
        }),
    }
}

fn number(
    fields: &Map<String, Value>,
    key: &'static str,
    default: u32,
    min: u32,
    max: u32,
) -> Result<u32, ConfigError> {
    match fields.get(key) {
        None | Some(Value::Null) => Ok(default),
        Some(value) => value
            .as_u64()
            .filter(|n| (u64::from(min)..=u64::from(max)).contains(n))
            .and_then(|n| u32::try_from(n).ok())
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
        "required": ["app_id", "tenant_id", "app_password"],
        "properties": {
            "app_id": { "type": "string", "description": "The bot's Microsoft App ID (a GUID)" },
            "app_password": { "type": "string", "description": "The app's client secret: from the channel's secrets, never cascade.toml" },
            "tenant_id": { "type": "string", "description": "The partnership's Entra ID tenant; activities from any other are refused" },
            "token_url": { "type": "string", "description": "The OAuth 2.0 token endpoint (default: the tenant's Entra ID endpoint)" },
            "token_scope": { "type": "string", "default": TOKEN_SCOPE },
            "openid_metadata_url": { "type": "string", "default": OPENID_METADATA_URL },
            "token_issuer": { "type": "string", "default": TOKEN_ISSUER },
            "service_url": { "type": "string", "default": SERVICE_URL },
            "allowed_service_urls": { "type": "array", "items": { "type": "string" }, "default": ALLOWED_SERVICE_URLS },
            "per_second": { "type": "integer", "default": 7 },
            "per_2_seconds": { "type": "integer", "default": 8 },
            "per_30_seconds": { "type": "integer", "default": 60 },
            "per_hour": { "type": "integer", "default": 1800 },
            "app_per_second": { "type": "integer", "default": 50 },
            "max_pacing_wait_ms": { "type": "integer", "default": 2000 }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const APP: &str = "6f1c2d3e-4a5b-4c6d-8e9f-0a1b2c3d4e5f";
    const TENANT: &str = "11111111-2222-4333-8444-555555555555";

    fn minimal() -> Value {
        json!({ "app_id": APP, "tenant_id": TENANT, "app_password": "s3cret-value" })
    }

    #[test]
    fn defaults_are_microsofts_endpoints_and_teams_limits() {
        let config = TeamsConfig::from_json(&minimal()).unwrap();
        assert_eq!(
            config.token_url,
            format!("https://login.microsoftonline.com/{TENANT}/oauth2/v2.0/token")
        );
        assert_eq!(config.openid_metadata_url, OPENID_METADATA_URL);
        assert_eq!(config.token_issuer, TOKEN_ISSUER);
        assert_eq!(
            (
                config.per_second,
                config.per_2_seconds,
                config.per_30_seconds,
                config.per_hour
            ),
            (7, 8, 60, 1800)
        );
        assert!(config.allows_service_url("https://smba.trafficmanager.net/emea/"));
        assert!(!config.allows_service_url("https://evil.example/smba.trafficmanager.net/"));
    }

    #[test]
    fn the_password_is_never_printed() {
        let config = TeamsConfig::from_json(&minimal()).unwrap();
        assert!(!format!("{config:?}").contains("s3cret-value"));
        let mut bad = minimal();
        bad["app_id"] = json!("not a guid");
        let error = TeamsConfig::from_json(&bad).unwrap_err().to_string();
        assert!(!error.contains("s3cret-value"), "{error}");
        assert!(error.contains("`app_id`"), "{error}");
    }

    #[test]
    fn a_missing_password_says_to_use_secrets() {
        let mut config = minimal();
        config.as_object_mut().unwrap().remove("app_password");
        let error = TeamsConfig::from_json(&config).unwrap_err().to_string();
        assert!(error.contains("secrets = { app_password"), "{error}");
    }

    #[test]
    fn a_service_url_outside_the_allow_list_is_refused() {
        let mut config = minimal();
        config["service_url"] = json!("http://127.0.0.1:9/");
        assert_eq!(
            TeamsConfig::from_json(&config),
            Err(ConfigError::ServiceUrlNotAllowed(
                "http://127.0.0.1:9/".to_owned()
            ))
        );
        config["allowed_service_urls"] = json!(["http://127.0.0.1:9/"]);
        assert!(TeamsConfig::from_json(&config).is_ok());
    }

    #[test]
    fn unknown_keys_and_bad_numbers_name_the_key() {
        let mut config = minimal();
        config["per_secnd"] = json!(3);
        assert_eq!(
            TeamsConfig::from_json(&config),
            Err(ConfigError::UnknownKey("per_secnd".to_owned()))
        );
        let mut config = minimal();
        config["per_second"] = json!(0);
        assert!(
            TeamsConfig::from_json(&config)
                .unwrap_err()
                .to_string()
                .contains("`per_second` must be a whole number from 1")
        );
    }
}
