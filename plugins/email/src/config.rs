//! What an operator writes for an email channel instance: the SMTP server,
//! how to secure the connection, the credentials (from the host's secrets),
//! the sender and the concurrency. Parsing is pure; nothing connects here.

use lettre::message::Mailbox;
use serde_json::{Map, Value, json};
use std::num::NonZeroUsize;
use std::time::Duration;

const KNOWN_KEYS: [&str; 18] = [
    "check_at_start",
    "host",
    "port",
    "tls",
    "username",
    "password",
    "helo_name",
    "from",
    "reply_to",
    "max_in_flight",
    "timeout_seconds",
    "from_domain",
    "ca_certificate",
    "oauth2_client_id",
    "oauth2_client_secret",
    "oauth2_tenant_id",
    "oauth2_token_url",
    "oauth2_scope",
];

/// The scope of a token for SMTP AUTH on Exchange Online.
pub const DEFAULT_OAUTH2_SCOPE: &str = "https://outlook.office365.com/.default";

/// Connections (and so sends) in flight when `max_in_flight` is unset.
const DEFAULT_MAX_IN_FLIGHT: usize = 8;
/// How long one SMTP command may take when `timeout_seconds` is unset.
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);

/// How the connection to the server is secured.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Security {
    /// Plain connection upgraded with STARTTLS, which the server must offer
    /// (port 587).
    StartTls,
    /// TLS from the first byte (port 465).
    Tls,
    /// No encryption at all: only for a relay on the same machine or network,
    /// and only when the operator writes `tls = "none"`.
    None,
}

impl Security {
    fn default_port(self) -> u16 {
        match self {
            Security::StartTls => 587,
            Security::Tls => 465,
            Security::None => 25,
        }
    }
}

/// SMTP AUTH with OAuth 2.0 (SASL XOAUTH2), as Microsoft 365 requires now
/// that basic authentication is retired: a token from the Entra ID token
/// endpoint by the client-credentials grant, for the mailbox `username`.
#[derive(Clone, PartialEq)]
pub struct OAuth2 {
    /// The mailbox the app sends as (SMTP AUTH's user).
    pub mailbox: String,
    pub client_id: String,
    pub client_secret: String,
    pub token_url: String,
    pub scope: String,
}

/// An email channel instance's configuration.
#[derive(Clone, PartialEq)]
pub struct EmailConfig {
    pub host: String,
    pub port: u16,
    pub security: Security,
    /// AUTH credentials: both or neither.
    pub credentials: Option<(String, String)>,
    /// AUTH with an OAuth 2.0 token instead of a password.
    pub oauth2: Option<OAuth2>,
    /// PEM certificates trusted instead of the system's, for a relay whose
    /// certificate a private CA signed.
    pub ca_certificate: Option<String>,
    /// The name given in EHLO; lettre's default (the machine's host name)
    /// when unset.
    pub helo_name: Option<String>,
    pub from: Mailbox,
    pub reply_to: Option<Mailbox>,
    /// The domain of Message-IDs: `from`'s domain unless set.
    pub message_id_domain: String,
    /// Most sends in flight, which is also the most SMTP connections open.
    pub max_in_flight: NonZeroUsize,
    pub timeout: Duration,
    /// Whether starting the channel connects to the server (TLS, STARTTLS
    /// and AUTH as configured) and refuses to start when that fails.
    pub check_at_start: bool,
}

impl std::fmt::Debug for EmailConfig {
    // By hand, so the password can never reach a log line or an error.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EmailConfig")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("security", &self.security)
            .field("username", &self.credentials.as_ref().map(|(user, _)| user))
            .field("oauth2_mailbox", &self.oauth2.as_ref().map(|o| &o.mailbox))
            .field("helo_name", &self.helo_name)
            .field("from", &self.from.to_string())
            .field("max_in_flight", &self.max_in_flight)
            .finish_non_exhaustive()
    }
}

/// A configuration the email channel cannot run with. Each message names
/// the key and says what to write instead; none ever shows a password.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum ConfigError {
    #[error(
        "the email channel's configuration must be a table such as {{ host = \"smtp.example.org\", from = \"learning@example.org\" }}"
    )]
    NotAnObject,
    #[error("unknown key `{0}` in the email channel's configuration: the known keys are {known}", known = KNOWN_KEYS.join(", "))]
    UnknownKey(String),
    #[error("`{0}` is missing: {1}")]
    Missing(&'static str, &'static str),
    #[error("`{key}` must be {expected} (got {got})")]
    Invalid {
        key: &'static str,
        expected: &'static str,
        got: Value,
    },
    #[error(
        "`tls` must be \"starttls\" (port 587), \"tls\" (port 465) or \"none\" (plain, only for a relay on this machine or network) (got {0})"
    )]
    InvalidTls(Value),
    #[error(
        "`{key}` is not an email address: {reason}; write e.g. \"Northbridge Learning <learning@northbridge.example>\""
    )]
    InvalidMailbox { key: &'static str, reason: String },
    #[error(
        "`username` and `password` go together: set both (password from [channels.secrets]) or neither"
    )]
    HalfCredentials,
    #[error(
        "`password` with `tls = \"none\"` would send it in the clear: use \"starttls\" or \"tls\", or drop the credentials for an open local relay"
    )]
    PasswordInTheClear,
    #[error(
        "`oauth2_client_id` with `tls = \"none\"` would send the token in the clear: use \"starttls\" (Microsoft 365: host = \"smtp.office365.com\", port 587)"
    )]
    TokenInTheClear,
    #[error(
        "`password` and `oauth2_client_id` are two ways to sign in: keep one (Microsoft 365 needs OAuth: drop `password`)"
    )]
    PasswordAndOAuth2,
    #[error(
        "`{0}` is only read with `oauth2_client_id`: set oauth2_client_id to the app's (client) id, or drop `{0}`"
    )]
    OAuth2KeyWithoutClient(&'static str),
}

impl EmailConfig {
    /// Reads the configuration given at start (secrets already resolved).
    pub fn from_json(config: &Value) -> Result<Self, ConfigError> {
        let fields = config.as_object().ok_or(ConfigError::NotAnObject)?;
        if let Some(unknown) = fields.keys().find(|k| !KNOWN_KEYS.contains(&k.as_str())) {
            return Err(ConfigError::UnknownKey(unknown.clone()));
        }
        let host = string(fields, "host")?.ok_or(ConfigError::Missing(
            "host",
            "set it to the SMTP server's name, e.g. host = \"smtp.example.org\"",
        ))?;
        let security = match present(fields, "tls") {
            None => Security::StartTls,
            Some(Value::String(s)) if s == "starttls" => Security::StartTls,
            Some(Value::String(s)) if s == "tls" => Security::Tls,
            Some(Value::String(s)) if s == "none" => Security::None,
            Some(other) => return Err(ConfigError::InvalidTls(other.clone())),
        };
        let port = match present(fields, "port") {
            None => security.default_port(),
            Some(value) => value
                .as_u64()
                .and_then(|p| u16::try_from(p).ok())
                .filter(|&p| p > 0)
                .ok_or_else(|| ConfigError::Invalid {
                    key: "port",
                    expected: "a port number from 1 to 65535",
                    got: value.clone(),
                })?,
        };
        let oauth2 = oauth2(fields, security)?;
        let credentials = match (string(fields, "username")?, string(fields, "password")?) {
            (Some(_), None) if oauth2.is_some() => None,
            (_, Some(_)) if oauth2.is_some() => return Err(ConfigError::PasswordAndOAuth2),
            (Some(user), Some(password)) => Some((user, password)),
            (None, None) => None,
            _ => return Err(ConfigError::HalfCredentials),
        };
        if credentials.is_some() && security == Security::None {
            return Err(ConfigError::PasswordInTheClear);
        }
        let from = mailbox(fields, "from")?.ok_or(ConfigError::Missing(
            "from",
            "set it to the sender, e.g. from = \"Northbridge Learning <learning@northbridge.example>\"",
        ))?;
        let reply_to = mailbox(fields, "reply_to")?;
        let message_id_domain =
            string(fields, "from_domain")?.unwrap_or_else(|| from.email.domain().to_owned());
        let max_in_flight = match present(fields, "max_in_flight") {
            None => NonZeroUsize::new(DEFAULT_MAX_IN_FLIGHT).expect("not zero"),
            Some(value) => value
                .as_u64()
                .and_then(|n| usize::try_from(n).ok())
                .and_then(NonZeroUsize::new)
                .filter(|n| n.get() <= 1000)
                .ok_or_else(|| ConfigError::Invalid {
                    key: "max_in_flight",
                    expected: "a whole number from 1 to 1000 (the most SMTP connections open at once)",
                    got: value.clone(),
                })?,
        };
        let timeout = match present(fields, "timeout_seconds") {
            None => DEFAULT_TIMEOUT,
            Some(value) => value
                .as_f64()
                .filter(|s| *s > 0.0)
                .and_then(|s| Duration::try_from_secs_f64(s).ok())
                .ok_or_else(|| ConfigError::Invalid {
                    key: "timeout_seconds",
                    expected: "a number of seconds above 0, e.g. 30",
                    got: value.clone(),
                })?,
        };
        let check_at_start = match present(fields, "check_at_start") {
            None => true,
            Some(Value::Bool(check)) => *check,
            Some(other) => {
                return Err(ConfigError::Invalid {
                    key: "check_at_start",
                    expected: "true or false",
                    got: other.clone(),
                });
            }
        };
        Ok(EmailConfig {
            check_at_start,
            host,
            port,
            security,
            credentials,
            oauth2,
            ca_certificate: string(fields, "ca_certificate")?,
            helo_name: string(fields, "helo_name")?,
            from,
            reply_to,
            message_id_domain,
            max_in_flight,
            timeout,
        })
    }
}

/// The OAuth 2.0 settings, when `oauth2_client_id` is set.
fn oauth2(fields: &Map<String, Value>, security: Security) -> Result<Option<OAuth2>, ConfigError> {
    let Some(client_id) = string(fields, "oauth2_client_id")? else {
        for key in [
            "oauth2_client_secret",
            "oauth2_tenant_id",
            "oauth2_token_url",
            "oauth2_scope",
        ] {
            if present(fields, key).is_some() {
                return Err(ConfigError::OAuth2KeyWithoutClient(key));
            }
        }
        return Ok(None);
    };
    if security == Security::None {
        return Err(ConfigError::TokenInTheClear);
    }
    let mailbox = string(fields, "username")?.ok_or(ConfigError::Missing(
        "username",
        "with OAuth it is the mailbox the app sends as, e.g. username = \"learning@northbridge.example\"",
    ))?;
    let client_secret = string(fields, "oauth2_client_secret")?.ok_or(ConfigError::Missing(
        "oauth2_client_secret",
        "give the app's client secret through [channels.secrets], e.g. secrets = { oauth2_client_secret = { env = \"CASCADE_M365_CLIENT_SECRET\" } }",
    ))?;
    let token_url = match (
        string(fields, "oauth2_token_url")?,
        string(fields, "oauth2_tenant_id")?,
    ) {
        (Some(url), _) => {
            if !(url.starts_with("https://")
                || url.starts_with("http://127.0.0.1")
                || url.starts_with("http://localhost"))
            {
                return Err(ConfigError::Invalid {
                    key: "oauth2_token_url",
                    expected: "an https:// URL (http only on this machine)",
                    got: Value::String(url),
                });
            }
            url
        }
        (None, Some(tenant)) => {
            if !tenant
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '.'))
            {
                return Err(ConfigError::Invalid {
                    key: "oauth2_tenant_id",
                    expected: "the directory (tenant) id, e.g. \"11111111-2222-3333-4444-555555555555\", or the tenant's domain",
                    got: Value::String(tenant),
                });
            }
            format!("https://login.microsoftonline.com/{tenant}/oauth2/v2.0/token")
        }
        (None, None) => {
            return Err(ConfigError::Missing(
                "oauth2_tenant_id",
                "set it to the Entra ID directory (tenant) id, or set oauth2_token_url",
            ));
        }
    };
    Ok(Some(OAuth2 {
        mailbox,
        client_id,
        client_secret,
        token_url,
        scope: string(fields, "oauth2_scope")?.unwrap_or_else(|| DEFAULT_OAUTH2_SCOPE.to_owned()),
    }))
}

/// A key's value, treating an explicit `null` as absent.
fn present<'a>(fields: &'a Map<String, Value>, key: &str) -> Option<&'a Value> {
    fields.get(key).filter(|value| !value.is_null())
}

fn string(fields: &Map<String, Value>, key: &'static str) -> Result<Option<String>, ConfigError> {
    match present(fields, key) {
        None => Ok(None),
        Some(Value::String(s)) if !s.trim().is_empty() => Ok(Some(s.trim().to_owned())),
        Some(other) => Err(ConfigError::Invalid {
            key,
            expected: "a non-empty string",
            // A password's value is never shown, even when it is the wrong type.
            got: if key == "password" || key == "oauth2_client_secret" {
                Value::String("(hidden)".to_owned())
            } else {
                other.clone()
            },
        }),
    }
}

fn mailbox(fields: &Map<String, Value>, key: &'static str) -> Result<Option<Mailbox>, ConfigError> {
    string(fields, key)?
        .map(|text| {
            text.parse::<Mailbox>()
                .map_err(|error| ConfigError::InvalidMailbox {
                    key,
                    reason: error.to_string(),
                })
        })
        .transpose()
}

/// The configuration's JSON Schema, for the manifest.
pub fn config_schema() -> Value {
    json!({
        "type": "object",
        "additionalProperties": false,
        "required": ["host", "from"],
        "properties": {
            "host": { "type": "string", "description": "The SMTP server's name or address." },
            "port": { "type": "integer", "minimum": 1, "maximum": 65535, "description": "Default: 587 for starttls, 465 for tls, 25 for none." },
            "tls": { "enum": ["starttls", "tls", "none"], "default": "starttls", "description": "\"none\" only for a relay on this machine or network." },
            "username": { "type": "string" },
            "password": { "type": "string", "description": "Give it through [channels.secrets], never in the config." },
            "helo_name": { "type": "string", "description": "The name sent in EHLO." },
            "from": { "type": "string", "description": "The sender, e.g. \"Northbridge Learning <learning@northbridge.example>\"." },
            "reply_to": { "type": "string" },
            "from_domain": { "type": "string", "description": "The domain of Message-IDs; default: the domain of `from`." },
            "ca_certificate": { "type": "string", "description": "PEM certificates to trust instead of the system's (a private relay's CA); e.g. from [channels.secrets] with { file = \"certs/relay-ca.pem\" }." },
            "max_in_flight": { "type": "integer", "minimum": 1, "maximum": 1000, "default": DEFAULT_MAX_IN_FLIGHT, "description": "Most sends in flight, and so SMTP connections open." },
            "timeout_seconds": { "type": "number", "exclusiveMinimum": 0, "default": 30 },
            "oauth2_client_id": { "type": "string", "description": "SMTP AUTH with OAuth 2.0 (XOAUTH2), as Microsoft 365 requires: the Entra ID app's (client) id; `username` is then the mailbox it sends as." },
            "oauth2_client_secret": { "type": "string", "description": "The app's client secret. Give it through [channels.secrets], never in the config." },
            "oauth2_tenant_id": { "type": "string", "description": "The Entra ID directory (tenant) id; the token endpoint is https://login.microsoftonline.com/<tenant>/oauth2/v2.0/token." },
            "oauth2_token_url": { "type": "string", "description": "The token endpoint, instead of the one oauth2_tenant_id gives." },
            "oauth2_scope": { "type": "string", "default": DEFAULT_OAUTH2_SCOPE },
            "check_at_start": { "type": "boolean", "default": true, "description": "Connect (TLS or STARTTLS, AUTH) when the channel starts and refuse to start if the server cannot be used." }
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

    fn parse(config: Value) -> Result<EmailConfig, ConfigError> {
        EmailConfig::from_json(&config)
    }

    #[test]
    fn a_minimal_config_uses_starttls_on_587_and_the_from_domain_for_message_ids() {
        let config = parse(
            json!({"host": "smtp.example.org", "from": "Learning <learning@northbridge.example>"}),
        )
        .unwrap();
        assert_eq!(config.security, Security::StartTls);
        assert_eq!(config.port, 587);
        assert_eq!(config.message_id_domain, "northbridge.example");
        assert_eq!(config.from.name.as_deref(), Some("Learning"));
        assert_eq!(config.max_in_flight.get(), DEFAULT_MAX_IN_FLIGHT);
        assert!(config.credentials.is_none());
    }

    #[test]
    fn plain_smtp_needs_tls_none_written_out_and_defaults_to_port_25() {
        let config =
            parse(json!({"host": "127.0.0.1", "from": "a@b.example", "tls": "none"})).unwrap();
        assert_eq!((config.security, config.port), (Security::None, 25));
        let error = parse(json!({"host": "h", "from": "a@b.example", "tls": "plain"})).unwrap_err();
        assert!(error.to_string().contains("\"none\""), "{error}");
    }

    #[test]
    fn a_password_is_never_sent_in_the_clear() {
        let error = parse(json!({"host": "h", "from": "a@b.example", "tls": "none", "username": "u", "password": "p"})).unwrap_err();
        assert_eq!(error, ConfigError::PasswordInTheClear);
    }

    #[test]
    fn a_username_without_a_password_is_refused() {
        let error =
            parse(json!({"host": "h", "from": "a@b.example", "username": "u"})).unwrap_err();
        assert_eq!(error, ConfigError::HalfCredentials);
    }

    #[test]
    fn errors_and_debug_output_never_show_the_password() {
        let error = parse(
            json!({"host": "h", "from": "a@b.example", "username": "u", "password": 12345678}),
        )
        .unwrap_err();
        assert!(!error.to_string().contains("12345678"), "{error}");
        let config = parse(json!({"host": "h", "from": "a@b.example", "username": "u", "password": "s3cret-value"})).unwrap();
        assert!(!format!("{config:?}").contains("s3cret-value"));
    }

    #[test]
    fn unknown_keys_and_bad_addresses_are_named() {
        let error = parse(json!({"host": "h", "from": "a@b.example", "sender": "x"})).unwrap_err();
        assert!(error.to_string().contains("`sender`"), "{error}");
        let error = parse(json!({"host": "h", "from": "not an address"})).unwrap_err();
        assert!(
            error
                .to_string()
                .starts_with("`from` is not an email address"),
            "{error}"
        );
        let error = parse(json!({"from": "a@b.example"})).unwrap_err();
        assert!(
            error.to_string().starts_with("`host` is missing"),
            "{error}"
        );
    }

    #[test]
    fn oauth_needs_the_mailbox_the_secret_and_a_token_endpoint_and_no_password() {
        let base = json!({"host": "smtp.office365.com", "from": "l@nb.example", "username": "l@nb.example", "oauth2_client_id": "c", "oauth2_client_secret": "s3cret-value", "oauth2_tenant_id": "11111111-2222-3333-4444-555555555555"});
        let config = parse(base.clone()).unwrap();
        let oauth2 = config.oauth2.clone().unwrap();
        assert_eq!(
            oauth2.token_url,
            "https://login.microsoftonline.com/11111111-2222-3333-4444-555555555555/oauth2/v2.0/token"
        );
        assert_eq!(oauth2.scope, DEFAULT_OAUTH2_SCOPE);
        assert_eq!(oauth2.mailbox, "l@nb.example");
        assert!(config.credentials.is_none());
        assert!(!format!("{config:?}").contains("s3cret-value"));
        let without = |key: &str| {
            let mut config = base.clone();
            config.as_object_mut().unwrap().remove(key);
            parse(config).unwrap_err().to_string()
        };
        assert!(without("oauth2_client_secret").contains("[channels.secrets]"));
        assert!(without("oauth2_tenant_id").contains("oauth2_token_url"));
        assert!(without("username").contains("the mailbox"));
        let with = |key: &str, value: Value| {
            let mut config = base.clone();
            config[key] = value;
            parse(config).unwrap_err()
        };
        assert_eq!(with("password", json!("p")), ConfigError::PasswordAndOAuth2);
        assert_eq!(with("tls", json!("none")), ConfigError::TokenInTheClear);
        assert!(matches!(
            with("oauth2_token_url", json!("http://login.example/token")),
            ConfigError::Invalid {
                key: "oauth2_token_url",
                ..
            }
        ));
        assert_eq!(
            parse(json!({"host": "h", "from": "a@b.example", "oauth2_scope": "x"})).unwrap_err(),
            ConfigError::OAuth2KeyWithoutClient("oauth2_scope")
        );
    }

    #[test]
    fn max_in_flight_must_be_a_positive_whole_number() {
        let error =
            parse(json!({"host": "h", "from": "a@b.example", "max_in_flight": 0})).unwrap_err();
        assert!(error.to_string().contains("max_in_flight"), "{error}");
        let config =
            parse(json!({"host": "h", "from": "a@b.example", "max_in_flight": 3})).unwrap();
        assert_eq!(config.max_in_flight.get(), 3);
    }
}
