//! What an operator writes for a Discord channel instance: the bot token
//! (through the host's `secrets`), the API base URL, the application and the
//! guild the slash commands live in. Parsing is pure; nothing connects here.

use serde_json::{Map, Value, json};
use std::fmt;
use std::time::Duration;

const KNOWN_KEYS: [&str; 6] = [
    "token",
    "api_url",
    "application_id",
    "guild_id",
    "max_rate_limit_wait_ms",
    "reply_timeout_seconds",
];

/// Discord's own API host. Another base (a fake in tests, an API proxy)
/// replaces it in every REST URL; the gateway URL then comes from that
/// API's `GET /gateway/bot`.
pub const DISCORD_API: &str = "https://discord.com";

/// A Discord channel instance's configuration.
#[derive(Clone, PartialEq)]
pub struct DiscordConfig {
    /// The bot token, without the `Bot ` prefix. Never printed.
    pub token: String,
    /// The API base, e.g. `https://discord.com` or `http://127.0.0.1:8080`.
    pub api_url: String,
    pub application_id: u64,
    /// The partnership's server, where `/pending`, `/link`, `/ack` and
    /// `/help` are registered.
    pub guild_id: u64,
    /// A rate limit that ends within this wait is waited out inside the
    /// plugin, so a message of several parts is not cut in two; a longer one
    /// is reported to the host as a retry after that time.
    pub max_rate_limit_wait: Duration,
    /// How long an interaction waits for the host's answer before the plugin
    /// tells the person it could not be handled. Discord keeps an
    /// interaction token for 15 minutes, so this must stay below that.
    pub reply_timeout: Duration,
}

// The token must never reach a log line or an error message.
impl fmt::Debug for DiscordConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DiscordConfig")
            .field("token", &"<secret>")
            .field("api_url", &self.api_url)
            .field("application_id", &self.application_id)
            .field("guild_id", &self.guild_id)
            .field("max_rate_limit_wait", &self.max_rate_limit_wait)
            .field("reply_timeout", &self.reply_timeout)
            .finish()
    }
}

/// A configuration the Discord channel cannot run with. Each message names
/// the key and says what to write instead; none contains the token.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum ConfigError {
    #[error(
        "the Discord channel's configuration must be a table such as {{ application_id = \"…\", guild_id = \"…\" }}"
    )]
    NotAnObject,
    #[error("unknown key `{0}` in the Discord channel's configuration: the known keys are {known}", known = KNOWN_KEYS.join(", "))]
    UnknownKey(String),
    #[error(
        "`token` is missing: give the bot token through the channel's secrets, e.g. secrets = {{ token = {{ env = \"CASCADE_DISCORD_TOKEN\" }} }}"
    )]
    MissingToken,
    #[error(
        "`token` must be a non-empty string without spaces (the bot token from the Discord developer portal, without \"Bot \")"
    )]
    InvalidToken,
    #[error(
        "`api_url` must be an http or https URL without a path, e.g. \"https://discord.com\" (got {0})"
    )]
    InvalidApiUrl(Value),
    #[error(
        "`{0}` is missing: copy it from the Discord developer portal (a snowflake such as \"1234567890123456789\")"
    )]
    MissingId(&'static str),
    #[error("`{key}` must be a Discord snowflake, a positive whole number as a string (got {got})")]
    InvalidId { key: &'static str, got: Value },
    #[error("`{key}` must be a whole number of {unit} {range} (got {got})")]
    InvalidDuration {
        key: &'static str,
        unit: &'static str,
        range: &'static str,
        got: Value,
    },
}

impl DiscordConfig {
    /// Reads the configuration given at start (secrets already resolved).
    pub fn from_json(config: &Value) -> Result<Self, ConfigError> {
        let fields = config.as_object().ok_or(ConfigError::NotAnObject)?;
        if let Some(unknown) = fields.keys().find(|k| !KNOWN_KEYS.contains(&k.as_str())) {
            return Err(ConfigError::UnknownKey(unknown.clone()));
        }
        let token = match fields.get("token") {
            None | Some(Value::Null) => return Err(ConfigError::MissingToken),
            // An operator may paste the header form, "Bot <token>".
            Some(Value::String(token)) => {
                let token = token.trim();
                token.strip_prefix("Bot ").unwrap_or(token).to_owned()
            }
            Some(_) => return Err(ConfigError::InvalidToken),
        };
        if token.is_empty() || token.contains(char::is_whitespace) {
            return Err(ConfigError::InvalidToken);
        }
        let api_url = match fields.get("api_url") {
            None | Some(Value::Null) => DISCORD_API.to_owned(),
            Some(Value::String(url)) if is_base_url(url) => url.trim_end_matches('/').to_owned(),
            Some(other) => return Err(ConfigError::InvalidApiUrl(other.clone())),
        };
        Ok(DiscordConfig {
            token,
            api_url,
            application_id: snowflake(fields, "application_id")?,
            guild_id: snowflake(fields, "guild_id")?,
            max_rate_limit_wait: duration(fields, "max_rate_limit_wait_ms", 5_000, 0, 60_000)
                .map(Duration::from_millis)?,
            reply_timeout: duration(fields, "reply_timeout_seconds", 60, 1, 840)
                .map(Duration::from_secs)?,
        })
    }

    /// Whether REST calls go somewhere other than Discord itself.
    pub fn proxy(&self) -> Option<&str> {
        (self.api_url != DISCORD_API).then_some(self.api_url.as_str())
    }
}

fn is_base_url(url: &str) -> bool {
    let rest = url
        .strip_prefix("https://")
        .or_else(|| url.strip_prefix("http://"));
    rest.is_some_and(|host| {
        let host = host.trim_end_matches('/');
        !host.is_empty() && !host.contains(['/', '?', '#', ' '])
    })
}

fn snowflake(fields: &Map<String, Value>, key: &'static str) -> Result<u64, ConfigError> {
    let invalid = |got: &Value| ConfigError::InvalidId {
        key,
        got: got.clone(),
    };
    match fields.get(key) {
        None | Some(Value::Null) => Err(ConfigError::MissingId(key)),
        // Snowflakes exceed what a TOML or JSON number keeps exactly in many
        // tools, so a string is the documented form; a number is accepted.
        Some(Value::String(text)) => text
            .trim()
            .parse::<u64>()
            .ok()
            .filter(|id| *id > 0)
            .ok_or_else(|| invalid(&Value::String(text.clone()))),
        Some(value) => value
            .as_u64()
            .filter(|id| *id > 0)
            .ok_or_else(|| invalid(value)),
    }
}

fn duration(
    fields: &Map<String, Value>,
    key: &'static str,
    default: u64,
    min: u64,
    max: u64,
) -> Result<u64, ConfigError> {
    match fields.get(key) {
        None | Some(Value::Null) => Ok(default),
        Some(value) => value
            .as_u64()
            .filter(|n| (min..=max).contains(n))
            .ok_or_else(|| ConfigError::InvalidDuration {
                key,
                unit: if key.ends_with("_ms") {
                    "milliseconds"
                } else {
                    "seconds"
                },
                range: if key.ends_with("_ms") {
                    "from 0 to 60000"
                } else {
                    "from 1 to 840 (Discord keeps an interaction for 15 minutes)"
                },
                got: value.clone(),
            }),
    }
}

/// The JSON Schema published in the manifest.
pub fn config_schema() -> Value {
    json!({
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": "Discord channel",
        "type": "object",
        "additionalProperties": false,
        "required": ["token", "application_id", "guild_id"],
        "properties": {
            "token": {"type": "string", "description": "The bot token; give it through the channel's secrets, never in cascade.toml."},
            "api_url": {"type": "string", "default": DISCORD_API, "description": "The REST API base; the gateway URL is asked from it."},
            "application_id": {"type": "string", "description": "The application's id (a snowflake)."},
            "guild_id": {"type": "string", "description": "The server whose slash commands the bot registers."},
            "max_rate_limit_wait_ms": {"type": "integer", "minimum": 0, "maximum": 60000, "default": 5000},
            "reply_timeout_seconds": {"type": "integer", "minimum": 1, "maximum": 840, "default": 60}
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

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

    fn minimal() -> Value {
        json!({"token": "abc.def", "application_id": "11", "guild_id": "22"})
    }

    #[test]
    fn a_minimal_config_talks_to_discord_itself() {
        let config = DiscordConfig::from_json(&minimal()).unwrap();
        assert_eq!(config.api_url, DISCORD_API);
        assert_eq!(config.proxy(), None);
        assert_eq!((config.application_id, config.guild_id), (11, 22));
        assert_eq!(config.max_rate_limit_wait, Duration::from_secs(5));
    }

    #[test]
    fn another_api_url_becomes_the_proxy_without_its_trailing_slash() {
        let mut value = minimal();
        value["api_url"] = json!("http://127.0.0.1:9/");
        let config = DiscordConfig::from_json(&value).unwrap();
        assert_eq!(config.proxy(), Some("http://127.0.0.1:9"));
    }

    #[test]
    fn the_token_never_appears_in_debug_output_or_errors() {
        let mut value = minimal();
        value["token"] = json!("Bot s3cret-token");
        let config = DiscordConfig::from_json(&value).unwrap();
        assert_eq!(config.token, "s3cret-token");
        assert!(!format!("{config:?}").contains("s3cret"));
        value["token"] = json!("s3cret with spaces");
        let error = DiscordConfig::from_json(&value).unwrap_err().to_string();
        assert!(!error.contains("s3cret"), "{error}");
    }

    #[test]
    fn a_missing_or_malformed_key_is_named_with_the_fix() {
        let mut value = minimal();
        value.as_object_mut().unwrap().remove("token");
        assert!(
            DiscordConfig::from_json(&value)
                .unwrap_err()
                .to_string()
                .contains("secrets")
        );
        let mut value = minimal();
        value["guild_id"] = json!("general");
        assert!(
            DiscordConfig::from_json(&value)
                .unwrap_err()
                .to_string()
                .starts_with("`guild_id` must be a Discord snowflake")
        );
        let mut value = minimal();
        value["api_url"] = json!("discord.com/api");
        assert!(matches!(
            DiscordConfig::from_json(&value),
            Err(ConfigError::InvalidApiUrl(_))
        ));
        let mut value = minimal();
        value["reply_timeout_seconds"] = json!(900);
        assert!(
            DiscordConfig::from_json(&value)
                .unwrap_err()
                .to_string()
                .contains("15 minutes")
        );
        let mut value = minimal();
        value["channel"] = json!("x");
        assert_eq!(
            DiscordConfig::from_json(&value),
            Err(ConfigError::UnknownKey("channel".to_owned()))
        );
    }
}
