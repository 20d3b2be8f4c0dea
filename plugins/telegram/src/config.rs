//! What an operator writes for a Telegram channel instance: the bot token
//! (a secret, resolved by the host), the Bot API base URL, how updates
//! arrive (long polling, or a webhook through cascade's HTTP server) and the send
//! limits. Parsing is pure; nothing here talks to Telegram.

use serde_json::{Map, Value, json};
use std::time::Duration;
use url::Url;

const KNOWN_KEYS: [&str; 12] = [
    "token",
    "bot_username",
    "api_url",
    "mode",
    "poll_timeout_seconds",
    "webhook_url",
    "webhook_secret",
    "webhook_check_seconds",
    "request_timeout_seconds",
    "messages_per_second",
    "chat_messages_per_second",
    "answer_within_seconds",
];

/// Telegram's own Bot API server.
pub const TELEGRAM_API_URL: &str = "https://api.telegram.org";

/// A Telegram channel instance's configuration.
#[derive(Clone, PartialEq)]
pub struct TelegramConfig {
    /// The bot token. Never logged: `Debug` leaves it out.
    pub token: String,
    /// The Bot API base URL: Telegram's, a self-hosted Bot API server, or a
    /// test server.
    pub api_url: Url,
    pub updates: Updates,
    /// How long one Bot API request may take before it counts as failed
    /// (long polls get their own poll timeout on top).
    pub request_timeout: Duration,
    /// Messages a second over all chats. Telegram allows about 30; the
    /// default stays just under so network jitter never pushes a second over.
    pub messages_per_second: f64,
    /// Messages a second to one chat (Telegram allows about 1).
    pub chat_messages_per_second: f64,
    /// How long a button press waits for the host's answer before the
    /// plugin answers it empty, so the person's spinner stops.
    pub answer_within: Duration,
    /// The bot's username (without `@`), when the operator gives it: start
    /// checks the token signs in as this bot, and `cascade link-codes`
    /// prints `t.me/<bot>?start=CODE` links.
    pub bot_username: Option<String>,
}

/// How updates (commands, button presses) reach the plugin.
#[derive(Debug, Clone, PartialEq)]
pub enum Updates {
    /// getUpdates long polling, each poll held open up to `timeout`.
    Polling { timeout: Duration },
    /// Telegram posts updates to `url`, the public address of `cascade
    /// serve`'s `/webhooks/{channel}` route, which hands them to the plugin;
    /// each post must carry `secret` in the X-Telegram-Bot-Api-Secret-Token
    /// header. Every `check`, the plugin asks Telegram whether the webhook
    /// is still set and sets it again when it is gone: with several
    /// `cascade serve`s behind one URL, one that stops deletes it for all.
    Webhook {
        url: Url,
        secret: String,
        check: Duration,
    },
}

impl std::fmt::Debug for TelegramConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let updates = match &self.updates {
            Updates::Polling { timeout } => format!("Polling {{ timeout: {timeout:?} }}"),
            Updates::Webhook { url, .. } => {
                format!("Webhook {{ url: {url}, secret: <hidden> }}")
            }
        };
        f.debug_struct("TelegramConfig")
            .field("token", &"<hidden>")
            .field("api_url", &self.api_url.as_str())
            .field("updates", &updates)
            .field("request_timeout", &self.request_timeout)
            .field("messages_per_second", &self.messages_per_second)
            .field("chat_messages_per_second", &self.chat_messages_per_second)
            .field("answer_within", &self.answer_within)
            .field("bot_username", &self.bot_username)
            .finish()
    }
}

/// A configuration the Telegram channel cannot run with. Each message names
/// the key and says what to write instead, and never repeats a secret.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum ConfigError {
    #[error(
        "the telegram channel's configuration must be a JSON object such as {{\"mode\": \"polling\"}}"
    )]
    NotAnObject,
    #[error("unknown key `{0}` in the telegram channel's configuration: the known keys are {known}", known = KNOWN_KEYS.join(", "))]
    UnknownKey(String),
    #[error(
        "`bot_username` must be the bot's Telegram username, 5 to 32 letters, digits or _, e.g. \"northbridge_learning_bot\" (got {0})"
    )]
    InvalidBotUsername(Value),
    #[error(
        "`token` is missing: name it as a secret of the channel, e.g. secrets = {{ token = {{ env = \"CASCADE_TELEGRAM_TOKEN\" }} }}"
    )]
    MissingToken,
    #[error(
        "`token` does not look like a bot token (digits, a colon, then letters): copy it from @BotFather into the secret"
    )]
    MalformedToken,
    #[error("`{key}` must be an http or https URL such as \"{example}\" (got {got})")]
    InvalidUrl {
        key: &'static str,
        example: &'static str,
        got: Value,
    },
    #[error("`mode` must be \"polling\" or \"webhook\" (got {0})")]
    InvalidMode(Value),
    #[error("`{key}` must be a number of seconds above 0 (got {got})")]
    InvalidSeconds { key: &'static str, got: Value },
    #[error("`{key}` must be a number above 0 (got {got})")]
    InvalidRate { key: &'static str, got: Value },
    #[error(
        "webhook mode needs `{0}`: `webhook_url` (the public https URL of cascade serve's /webhooks/<channel name> route, which Telegram posts to) and `webhook_secret` (a secret of the channel)"
    )]
    WebhookKeyMissing(&'static str),
    #[error(
        "`webhook_listen` is not used: cascade serve receives the webhook at /webhooks/<channel name> on its --listen address; remove `webhook_listen` and point `webhook_url` there"
    )]
    ListenNotUsed,
    #[error(
        "`webhook_secret` must be 1 to 256 characters of A-Z, a-z, 0-9, _ and - (Telegram's rule for secret tokens)"
    )]
    InvalidWebhookSecret,
    #[error("`{0}` only applies in webhook mode: set \"mode\": \"webhook\" or remove it")]
    WebhookKeyInPollingMode(&'static str),
}

impl TelegramConfig {
    /// Reads the configuration given at start (secrets already resolved).
    pub fn from_json(config: &Value) -> Result<Self, ConfigError> {
        let fields = config.as_object().ok_or(ConfigError::NotAnObject)?;
        if present(fields, "webhook_listen").is_some() {
            return Err(ConfigError::ListenNotUsed);
        }
        if let Some(unknown) = fields.keys().find(|k| !KNOWN_KEYS.contains(&k.as_str())) {
            return Err(ConfigError::UnknownKey(unknown.clone()));
        }
        let token = match present(fields, "token") {
            None => return Err(ConfigError::MissingToken),
            Some(Value::String(token)) if looks_like_a_token(token) => token.clone(),
            Some(_) => return Err(ConfigError::MalformedToken),
        };
        let api_url = match present(fields, "api_url") {
            None => Url::parse(TELEGRAM_API_URL).expect("Telegram's URL parses"),
            Some(value) => url(value, "api_url", TELEGRAM_API_URL)?,
        };
        let mode = match present(fields, "mode") {
            None => "polling",
            Some(Value::String(mode)) if mode == "polling" || mode == "webhook" => mode.as_str(),
            Some(other) => return Err(ConfigError::InvalidMode(other.clone())),
        };
        let updates = if mode == "polling" {
            for key in ["webhook_url", "webhook_secret", "webhook_check_seconds"] {
                if present(fields, key).is_some() {
                    return Err(ConfigError::WebhookKeyInPollingMode(key));
                }
            }
            Updates::Polling {
                timeout: seconds(fields, "poll_timeout_seconds", 25.0)?,
            }
        } else {
            let url = match present(fields, "webhook_url") {
                None => return Err(ConfigError::WebhookKeyMissing("webhook_url")),
                Some(value) => url(
                    value,
                    "webhook_url",
                    "https://cascade.example.org/webhooks/telegram",
                )?,
            };
            let secret = match present(fields, "webhook_secret") {
                None => return Err(ConfigError::WebhookKeyMissing("webhook_secret")),
                Some(Value::String(secret)) if is_webhook_secret(secret) => secret.clone(),
                Some(_) => return Err(ConfigError::InvalidWebhookSecret),
            };
            Updates::Webhook {
                url,
                secret,
                check: seconds(fields, "webhook_check_seconds", 30.0)?,
            }
        };
        Ok(TelegramConfig {
            token,
            api_url,
            updates,
            request_timeout: seconds(fields, "request_timeout_seconds", 15.0)?,
            messages_per_second: rate(fields, "messages_per_second", 29.5)?,
            chat_messages_per_second: rate(fields, "chat_messages_per_second", 1.0)?,
            answer_within: seconds(fields, "answer_within_seconds", 10.0)?,
            bot_username: match present(fields, "bot_username") {
                None => None,
                Some(Value::String(name))
                    if (5..=32).contains(&name.trim_start_matches('@').len())
                        && name
                            .trim_start_matches('@')
                            .chars()
                            .all(|c| c.is_ascii_alphanumeric() || c == '_') =>
                {
                    Some(name.trim_start_matches('@').to_owned())
                }
                Some(other) => return Err(ConfigError::InvalidBotUsername(other.clone())),
            },
        })
    }
}

/// `<bot id>:<secret part>`, as @BotFather hands them out.
fn looks_like_a_token(token: &str) -> bool {
    token.split_once(':').is_some_and(|(id, rest)| {
        !id.is_empty()
            && id.bytes().all(|b| b.is_ascii_digit())
            && !rest.is_empty()
            && rest
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
    })
}

fn is_webhook_secret(secret: &str) -> bool {
    (1..=256).contains(&secret.len())
        && secret
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

/// A key's value, treating an explicit `null` as absent.
fn present<'a>(fields: &'a Map<String, Value>, key: &str) -> Option<&'a Value> {
    fields.get(key).filter(|value| !value.is_null())
}

fn url(value: &Value, key: &'static str, example: &'static str) -> Result<Url, ConfigError> {
    value
        .as_str()
        .and_then(|s| Url::parse(s).ok())
        .filter(|u| matches!(u.scheme(), "http" | "https") && u.has_host())
        .ok_or_else(|| ConfigError::InvalidUrl {
            key,
            example,
            got: value.clone(),
        })
}

fn seconds(
    fields: &Map<String, Value>,
    key: &'static str,
    default: f64,
) -> Result<Duration, ConfigError> {
    let Some(value) = present(fields, key) else {
        return Ok(Duration::from_secs_f64(default));
    };
    value
        .as_f64()
        .filter(|s| *s > 0.0)
        .and_then(|s| Duration::try_from_secs_f64(s).ok())
        .ok_or_else(|| ConfigError::InvalidSeconds {
            key,
            got: value.clone(),
        })
}

fn rate(fields: &Map<String, Value>, key: &'static str, default: f64) -> Result<f64, ConfigError> {
    let Some(value) = present(fields, key) else {
        return Ok(default);
    };
    value
        .as_f64()
        .filter(|r| *r > 0.0 && r.is_finite())
        .ok_or_else(|| ConfigError::InvalidRate {
            key,
            got: value.clone(),
        })
}

/// The JSON Schema of the configuration, published in the manifest.
pub fn config_schema() -> Value {
    json!({
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": "telegram channel",
        "description": "Delivers learning through a Telegram bot and reports button presses, commands and typed answers.",
        "type": "object",
        "required": ["token"],
        "additionalProperties": false,
        "properties": {
            "token": {
                "type": "string",
                "description": "The bot token from @BotFather. Give it as a secret of the channel (env or file), never in cascade.toml."
            },
            "api_url": {
                "type": "string",
                "format": "uri",
                "default": TELEGRAM_API_URL,
                "description": "The Bot API base URL: Telegram's, or a self-hosted Bot API server."
            },
            "mode": {
                "enum": ["polling", "webhook"],
                "default": "polling",
                "description": "How updates arrive: getUpdates long polling, or a webhook: Telegram posts to cascade serve's /webhooks/<channel name>, which hands the updates to the plugin."
            },
            "poll_timeout_seconds": {
                "type": "number", "exclusiveMinimum": 0, "default": 25,
                "description": "How long one getUpdates long poll is held open."
            },
            "webhook_url": {
                "type": "string", "format": "uri",
                "description": "Webhook mode: the public https URL Telegram posts updates to: cascade serve's /webhooks/<channel name> route (usually behind a TLS-terminating proxy)."
            },
            "webhook_secret": {
                "type": "string", "pattern": "^[A-Za-z0-9_-]{1,256}$",
                "description": "Webhook mode: the secret Telegram sends in X-Telegram-Bot-Api-Secret-Token; posts without it are refused. Give it as a secret of the channel."
            },
            "webhook_check_seconds": {
                "type": "number", "exclusiveMinimum": 0, "default": 30,
                "description": "Webhook mode: how often each serve asks Telegram whether the webhook is still set (getWebhookInfo) and sets it again when it is gone. A serve that stops deletes it, so that Telegram keeps the updates meanwhile; with several serves behind one URL the others set it again within this time, and Telegram then posts what it kept."
            },
            "request_timeout_seconds": {
                "type": "number", "exclusiveMinimum": 0, "default": 15,
                "description": "How long one Bot API request may take before the send is retried."
            },
            "messages_per_second": {
                "type": "number", "exclusiveMinimum": 0, "default": 29.5,
                "description": "Messages a second over all chats (Telegram allows about 30)."
            },
            "chat_messages_per_second": {
                "type": "number", "exclusiveMinimum": 0, "default": 1,
                "description": "Messages a second to one chat (Telegram allows about 1)."
            },
            "bot_username": {
                "type": "string", "pattern": "^@?[A-Za-z0-9_]{5,32}$",
                "description": "The bot's username: start checks the token signs in as it, and `cascade link-codes` prints t.me links that open the bot with the code filled in."
            },
            "answer_within_seconds": {
                "type": "number", "exclusiveMinimum": 0, "default": 10,
                "description": "How long a button press waits for cascade's answer before it is answered empty so the spinner stops."
            }
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

    const TOKEN: &str = "123456:ABC-def_ghi";

    fn parse(config: Value) -> Result<TelegramConfig, ConfigError> {
        TelegramConfig::from_json(&config)
    }

    #[test]
    fn a_bot_username_is_kept_without_its_at_sign_and_a_malformed_one_refused() {
        let config = parse(json!({"token": TOKEN, "bot_username": "@northbridge_bot"})).unwrap();
        assert_eq!(config.bot_username.as_deref(), Some("northbridge_bot"));
        assert_eq!(parse(json!({"token": TOKEN})).unwrap().bot_username, None);
        for bad in [json!("nb"), json!("north bridge bot"), json!(7)] {
            let error = parse(json!({"token": TOKEN, "bot_username": bad}))
                .unwrap_err()
                .to_string();
            assert!(error.contains("`bot_username` must be"), "{error}");
        }
    }

    #[test]
    fn a_token_alone_means_telegram_s_server_long_polling_and_the_default_limits() {
        let config = parse(json!({ "token": TOKEN })).unwrap();
        assert_eq!(config.api_url.as_str(), "https://api.telegram.org/");
        assert_eq!(
            config.updates,
            Updates::Polling {
                timeout: Duration::from_secs(25)
            }
        );
        assert_eq!(config.messages_per_second, 29.5);
        assert_eq!(config.chat_messages_per_second, 1.0);
        assert_eq!(config.answer_within, Duration::from_secs(10));
    }

    #[test]
    fn the_api_url_can_point_at_a_self_hosted_server() {
        let config = parse(json!({ "token": TOKEN, "api_url": "http://127.0.0.1:8081" })).unwrap();
        assert_eq!(config.api_url.as_str(), "http://127.0.0.1:8081/");
        let error = parse(json!({ "token": TOKEN, "api_url": "ftp://x" })).unwrap_err();
        assert!(error.to_string().starts_with("`api_url`"), "{error}");
    }

    #[test]
    fn a_missing_token_says_how_to_give_it_as_a_secret() {
        let error = parse(json!({})).unwrap_err();
        assert_eq!(error, ConfigError::MissingToken);
        assert!(error.to_string().contains("CASCADE_TELEGRAM_TOKEN"));
    }

    #[test]
    fn a_malformed_token_is_refused_without_repeating_it() {
        let error = parse(json!({ "token": "not a token s3cr3t" })).unwrap_err();
        assert_eq!(error, ConfigError::MalformedToken);
        assert!(!error.to_string().contains("s3cr3t"));
    }

    #[test]
    fn debug_output_hides_the_token_and_the_webhook_secret() {
        let config = parse(json!({
            "token": TOKEN,
            "mode": "webhook",
            "webhook_url": "https://cascade.example.org/webhooks/telegram",
            "webhook_secret": "hush-hush"
        }))
        .unwrap();
        let shown = format!("{config:?}");
        assert!(!shown.contains("ABC-def"), "{shown}");
        assert!(!shown.contains("hush-hush"), "{shown}");
    }

    #[test]
    fn webhook_mode_needs_its_two_keys() {
        let error = parse(json!({ "token": TOKEN, "mode": "webhook" })).unwrap_err();
        assert_eq!(error, ConfigError::WebhookKeyMissing("webhook_url"));
        let error = parse(json!({
            "token": TOKEN,
            "mode": "webhook",
            "webhook_url": "https://cascade.example.org/webhooks/telegram"
        }))
        .unwrap_err();
        assert_eq!(error, ConfigError::WebhookKeyMissing("webhook_secret"));
    }

    #[test]
    fn a_listen_address_is_refused_with_where_the_webhook_is_served() {
        let error = parse(json!({
            "token": TOKEN,
            "mode": "webhook",
            "webhook_listen": "127.0.0.1:8443",
            "webhook_url": "https://cascade.example.org/webhooks/telegram",
            "webhook_secret": "hush-hush"
        }))
        .unwrap_err();
        assert_eq!(error, ConfigError::ListenNotUsed);
        assert!(error.to_string().contains("/webhooks/<channel name>"));
    }

    #[test]
    fn a_webhook_secret_outside_telegram_s_alphabet_is_refused() {
        let error = parse(json!({
            "token": TOKEN,
            "mode": "webhook",
            "webhook_url": "https://cascade.example.org/webhooks/telegram",
            "webhook_secret": "has spaces"
        }))
        .unwrap_err();
        assert_eq!(error, ConfigError::InvalidWebhookSecret);
    }

    #[test]
    fn webhook_keys_in_polling_mode_are_refused() {
        let error = parse(json!({ "token": TOKEN, "webhook_secret": "x" })).unwrap_err();
        assert_eq!(
            error,
            ConfigError::WebhookKeyInPollingMode("webhook_secret")
        );
        let error = parse(json!({ "token": TOKEN, "webhook_check_seconds": 5 })).unwrap_err();
        assert_eq!(
            error,
            ConfigError::WebhookKeyInPollingMode("webhook_check_seconds")
        );
    }

    #[test]
    fn the_webhook_is_checked_every_30_seconds_unless_configured() {
        let webhook = |extra: Value| {
            let mut config = json!({
                "token": TOKEN,
                "mode": "webhook",
                "webhook_url": "https://cascade.example.org/webhooks/telegram",
                "webhook_secret": "hush-hush"
            });
            for (key, value) in extra.as_object().unwrap() {
                config[key] = value.clone();
            }
            parse(config).map(|c| match c.updates {
                Updates::Webhook { check, .. } => check,
                Updates::Polling { .. } => unreachable!("webhook mode"),
            })
        };
        assert_eq!(webhook(json!({})), Ok(Duration::from_secs(30)));
        assert_eq!(
            webhook(json!({ "webhook_check_seconds": 5 })),
            Ok(Duration::from_secs(5))
        );
        assert!(webhook(json!({ "webhook_check_seconds": 0 })).is_err());
    }

    #[test]
    fn a_misspelt_key_is_refused_by_name() {
        let error = parse(json!({ "token": TOKEN, "api": "x" })).unwrap_err();
        assert!(error.to_string().contains("`api`"));
        assert!(error.to_string().contains("api_url"));
    }

    #[test]
    fn rates_and_timeouts_must_be_positive() {
        assert!(parse(json!({ "token": TOKEN, "messages_per_second": 0 })).is_err());
        assert!(parse(json!({ "token": TOKEN, "request_timeout_seconds": -1 })).is_err());
        let config = parse(json!({ "token": TOKEN, "messages_per_second": 1000 })).unwrap();
        assert_eq!(config.messages_per_second, 1000.0);
    }

    #[test]
    fn the_schema_lists_every_known_key() {
        let schema = config_schema();
        let mut keys: Vec<&str> = schema["properties"]
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        keys.sort_unstable();
        let mut known = KNOWN_KEYS.to_vec();
        known.sort_unstable();
        assert_eq!(keys, known);
    }
}
