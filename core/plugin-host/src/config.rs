//! What `cascade.toml` says about plugins: extra folders to search, SHA-256
//! pins, time limits, and the channel instances to start with their
//! configuration. Secrets are named here (an environment variable or a
//! file) and resolved only when an instance starts; their values are never
//! stored in the configuration or logged.

use super::PluginError;
use cascade_model::bounds::Bounds;
use cascade_model::content::Classification;
use serde::{Deserialize, Deserializer};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PluginsConfig {
    /// Folders to search for plugin libraries, relative to the project, before
    /// the folder of the `cascade` binary.
    #[serde(default)]
    pub dirs: Vec<PathBuf>,
    /// Pins: plugin file name to its SHA-256. A pinned file that does not
    /// match is refused before it is loaded; once any file is pinned, a file
    /// without a pin is not loaded at all.
    #[serde(default)]
    pub sha256: BTreeMap<String, String>,
    /// How long a send may wait for the plugin's answer (default 30 s,
    /// the example of [`SEND_TIMEOUT_SECONDS`]).
    #[serde(default, deserialize_with = "send_timeout_seconds")]
    pub send_timeout_seconds: Option<f64>,
    /// How long a plugin may take to start or stop (default 15 s, the
    /// example of [`START_TIMEOUT_SECONDS`]).
    #[serde(default, deserialize_with = "start_timeout_seconds")]
    pub start_timeout_seconds: Option<f64>,
}

/// A send or a start that takes ten minutes has hung; below a tenth of a
/// second every provider would time out.
pub const SEND_TIMEOUT_SECONDS: Bounds<f64> = Bounds {
    key: "send_timeout_seconds",
    min: 0.1,
    max: 600.0,
    example: 30.0,
};
pub const START_TIMEOUT_SECONDS: Bounds<f64> = Bounds {
    key: "start_timeout_seconds",
    min: 0.1,
    max: 600.0,
    example: 15.0,
};
/// A channel's sends a second: from one every 100 s (a trickle while
/// testing a provider) to more than any provider's API accepts.
pub const PER_SECOND: Bounds<f64> = Bounds {
    key: "per_second",
    min: 0.01,
    max: 1000.0,
    example: 10.0,
};

/// A channel's sending quota, as a provider enforces it (Exchange Online:
/// 30 messages a minute and 10,000 recipients a day per mailbox).
pub const MAX_PER_MINUTE: Bounds<u32> = Bounds {
    key: "max_per_minute",
    min: 1,
    max: 1_000_000,
    example: 30,
};
pub const MAX_PER_DAY: Bounds<u32> = Bounds {
    key: "max_per_day",
    min: 1,
    max: 100_000_000,
    example: 10_000,
};

fn max_per_minute<'de, D: Deserializer<'de>>(d: D) -> Result<Option<u32>, D::Error> {
    MAX_PER_MINUTE.deserialize(d).map(Some)
}

fn max_per_day<'de, D: Deserializer<'de>>(d: D) -> Result<Option<u32>, D::Error> {
    MAX_PER_DAY.deserialize(d).map(Some)
}

fn send_timeout_seconds<'de, D: Deserializer<'de>>(d: D) -> Result<Option<f64>, D::Error> {
    SEND_TIMEOUT_SECONDS.deserialize_some(d)
}

fn start_timeout_seconds<'de, D: Deserializer<'de>>(d: D) -> Result<Option<f64>, D::Error> {
    START_TIMEOUT_SECONDS.deserialize_some(d)
}

fn per_second<'de, D: Deserializer<'de>>(d: D) -> Result<Option<f64>, D::Error> {
    PER_SECOND.deserialize_some(d)
}

impl PluginsConfig {
    /// Whether any file is pinned. Then only pinned files are loaded: an
    /// operator who pins means "only this code", and a library dropped into a
    /// plugin folder later must not run its load-time code.
    pub fn pins_configured(&self) -> bool {
        !self.sha256.is_empty()
    }

    pub fn pinned_hash(&self, path: &Path) -> Option<&str> {
        let name = path.file_name()?.to_str()?;
        self.sha256.get(name).map(String::as_str)
    }

    pub fn send_timeout(&self) -> Duration {
        seconds(self.send_timeout_seconds, SEND_TIMEOUT_SECONDS)
    }

    pub fn start_timeout(&self) -> Duration {
        seconds(self.start_timeout_seconds, START_TIMEOUT_SECONDS)
    }
}

/// The setting, or its default (the example) when unset or out of range:
/// a value set in code rather than read from `cascade.toml` is not checked.
fn seconds(value: Option<f64>, bounds: Bounds<f64>) -> Duration {
    let seconds = value
        .filter(|v| bounds.check(*v).is_ok())
        .unwrap_or(bounds.example);
    Duration::from_secs_f64(seconds)
}

/// One `[[channels]]` entry: a named instance of a plugin.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChannelConfig {
    /// The instance's name, used by rollouts, e.g. `email` or `outbox`.
    pub name: String,
    /// The plugin's manifest name, e.g. `file`.
    pub plugin: String,
    /// Handed to the plugin as a JSON object.
    #[serde(default = "empty_object")]
    pub config: serde_json::Value,
    /// Configuration keys whose values come from the environment or a file.
    #[serde(default)]
    pub secrets: BTreeMap<String, SecretSource>,
    /// Which of a person's identities addresses them here (default: the
    /// plugin's channel kind, e.g. `email`).
    #[serde(default)]
    pub identity: Option<String>,
    /// The renders each message carries, e.g. `["email-html", "email-text"]`
    /// (default: by the plugin's channel kind).
    #[serde(default)]
    pub formats: Option<Vec<String>>,
    /// Most sends a second on this channel (default: the plugin's limit).
    #[serde(default, deserialize_with = "per_second")]
    pub per_second: Option<f64>,
    /// Most sends in any minute on this channel: sends over it wait for the
    /// window, counted as no attempt (default: no quota).
    #[serde(default, deserialize_with = "max_per_minute")]
    pub max_per_minute: Option<u32>,
    /// Most sends in any 24 hours on this channel, likewise.
    #[serde(default, deserialize_with = "max_per_day")]
    pub max_per_day: Option<u32>,
    /// Team channels on this instance: a directory team id to the
    /// provider's address of that team's shared channel (a Discord channel
    /// id). A rollout with `team_posts = ["<this instance>"]` posts its item
    /// once in each channel of a team in its audience, with a live count of
    /// the team's acknowledgements.
    #[serde(default)]
    pub team_channels: BTreeMap<String, String>,
    /// How this channel's sends that failed for now are retried (default:
    /// the engine's, see [`RetryConfig`]).
    #[serde(default)]
    pub retry: Option<RetryConfig>,
    /// The highest classification this instance may carry in full
    /// (default `"official"`): people reached here get an
    /// OFFICIAL-SENSITIVE item as a notice with a link to read it.
    #[serde(default)]
    pub carries: Classification,
    /// Email domains that may receive OFFICIAL-SENSITIVE items in full on
    /// this instance although it carries only OFFICIAL, e.g. `["nhs.net"]`:
    /// an address at the domain or one under it (`x@nhs.net`,
    /// `x@trust.nhs.net`). Email identities only.
    #[serde(default, deserialize_with = "secure_domains")]
    pub secure_domains: Vec<String>,
    /// Other instances of the same plugin that share this channel's sends,
    /// e.g. `["email-2", "email-3"]`: several sending mailboxes, each with
    /// its own quota. A rollout names this channel only; each send goes
    /// through the next instance whose quota has room.
    #[serde(default)]
    pub spread_over: Vec<String>,
}

/// `secure_domains`: domain names, kept in lower case.
fn secure_domains<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    let domains = Vec::<String>::deserialize(d)?;
    domains
        .into_iter()
        .map(|domain| {
            let lower = domain.trim().trim_start_matches('@').to_ascii_lowercase();
            let labels_ok = lower.split('.').all(|label| {
                !label.is_empty()
                    && !label.starts_with('-')
                    && !label.ends_with('-')
                    && label.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
            });
            if lower.contains('.') && labels_ok {
                Ok(lower)
            } else {
                Err(serde::de::Error::custom(format!(
                    "secure_domains: \"{domain}\" is not a domain name; write the part after the @, e.g. \"nhs.net\""
                )))
            }
        })
        .collect()
}

/// `retry = { ... }` of a `[[channels]]` entry: when a send that failed for
/// now (a deferral, a rate limit, no answer) is tried again. Each wait is
/// the one before times `factor`, from `first_wait_seconds` up to
/// `longest_wait_seconds`, with ±20% jitter; a provider's retry-after wins.
/// After `max_attempts` a message is given up and its recipient's next
/// channel tried. Unset keys keep the defaults: 30 s, 2, 3600 s, and the
/// rollout's `max_attempts` (5 unless it says).
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RetryConfig {
    #[serde(default, deserialize_with = "first_wait_seconds")]
    pub first_wait_seconds: Option<f64>,
    #[serde(default, deserialize_with = "factor")]
    pub factor: Option<f64>,
    #[serde(default, deserialize_with = "longest_wait_seconds")]
    pub longest_wait_seconds: Option<f64>,
    #[serde(default, deserialize_with = "max_attempts")]
    pub max_attempts: Option<u32>,
}

pub const FIRST_WAIT_SECONDS: Bounds<f64> = Bounds {
    key: "first_wait_seconds",
    min: 1.0,
    max: 86_400.0,
    example: 30.0,
};

pub const FACTOR: Bounds<f64> = Bounds {
    key: "factor",
    min: 1.0,
    max: 10.0,
    example: 2.0,
};

pub const LONGEST_WAIT_SECONDS: Bounds<f64> = Bounds {
    key: "longest_wait_seconds",
    min: 1.0,
    max: 604_800.0,
    example: 3600.0,
};

pub const MAX_ATTEMPTS: Bounds<u32> = Bounds {
    key: "max_attempts",
    min: 1,
    max: 100,
    example: 5,
};

fn first_wait_seconds<'de, D: Deserializer<'de>>(d: D) -> Result<Option<f64>, D::Error> {
    FIRST_WAIT_SECONDS.deserialize_some(d)
}

fn factor<'de, D: Deserializer<'de>>(d: D) -> Result<Option<f64>, D::Error> {
    FACTOR.deserialize_some(d)
}

fn longest_wait_seconds<'de, D: Deserializer<'de>>(d: D) -> Result<Option<f64>, D::Error> {
    LONGEST_WAIT_SECONDS.deserialize_some(d)
}

fn max_attempts<'de, D: Deserializer<'de>>(d: D) -> Result<Option<u32>, D::Error> {
    MAX_ATTEMPTS.deserialize(d).map(Some)
}

fn empty_object() -> serde_json::Value {
    serde_json::Value::Object(serde_json::Map::new())
}

pub use cascade_model::secret::SecretSource;

impl ChannelConfig {
    /// The configuration with every secret resolved into it.
    pub fn resolved_config(&self, base_dir: &Path) -> Result<serde_json::Value, PluginError> {
        let error = |key: &str, reason: String| PluginError::Secret {
            instance: self.name.clone(),
            key: key.to_owned(),
            reason,
        };
        let mut config = self.config.clone();
        let Some(object) = config.as_object_mut() else {
            return Err(error(
                "config",
                "the channel's config must be a table".to_owned(),
            ));
        };
        for (key, source) in &self.secrets {
            if object.contains_key(key) {
                return Err(error(
                    key,
                    "is also set in config; a secret must only come from [channels.secrets]"
                        .to_owned(),
                ));
            }
            let value = source.read(base_dir).map_err(|reason| error(key, reason))?;
            object.insert(key.clone(), serde_json::Value::String(value));
        }
        Ok(config)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn channel(toml_text: &str) -> ChannelConfig {
        toml::from_str(toml_text).unwrap()
    }

    #[test]
    fn carries_and_secure_domains_are_read_and_checked() {
        let c = channel("name = \"mail\"\nplugin = \"email\"\n");
        assert_eq!(
            (c.carries, c.secure_domains),
            (Classification::Official, Vec::new())
        );
        let c = channel(
            "name = \"mail\"\nplugin = \"email\"\ncarries = \"official-sensitive\"\nsecure_domains = [\"NHS.net\", \"@gov.uk\"]\n",
        );
        assert_eq!(c.carries, Classification::OfficialSensitive);
        assert_eq!(c.secure_domains, ["nhs.net", "gov.uk"]);
        let error = toml::from_str::<ChannelConfig>(
            "name = \"mail\"\nplugin = \"email\"\ncarries = \"secret\"\n",
        )
        .unwrap_err()
        .to_string();
        assert!(
            error.contains("official") && error.contains("official-sensitive"),
            "{error}"
        );
        for bad in ["sam@nhs.net", "localhost", "nhs..net", "-x.net"] {
            let error = toml::from_str::<ChannelConfig>(&format!(
                "name = \"mail\"\nplugin = \"email\"\nsecure_domains = [\"{bad}\"]\n"
            ))
            .unwrap_err()
            .to_string();
            assert!(error.contains("is not a domain name"), "{bad}: {error}");
        }
    }

    #[test]
    fn a_channels_retry_settings_are_read_and_checked() {
        let c = channel(
            "name = \"mail\"\nplugin = \"email\"\nretry = { first_wait_seconds = 60, factor = 3, longest_wait_seconds = 900, max_attempts = 8 }\n",
        );
        assert_eq!(
            c.retry,
            Some(RetryConfig {
                first_wait_seconds: Some(60.0),
                factor: Some(3.0),
                longest_wait_seconds: Some(900.0),
                max_attempts: Some(8),
            })
        );
        assert_eq!(channel("name = \"mail\"\nplugin = \"email\"\n").retry, None);
        let error = toml::from_str::<ChannelConfig>(
            "name = \"mail\"\nplugin = \"email\"\nretry = { factor = 0.5 }\n",
        )
        .unwrap_err()
        .to_string();
        assert!(error.contains("write e.g. factor = 2"), "{error}");
        let error = toml::from_str::<ChannelConfig>(
            "name = \"mail\"\nplugin = \"email\"\nretry = { first_wait = 5 }\n",
        )
        .unwrap_err()
        .to_string();
        assert!(error.contains("first_wait"), "{error}");
    }

    #[test]
    fn a_secret_from_a_file_is_resolved_into_the_config_without_its_newline() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("token"), "s3cret\n").unwrap();
        let c = channel(
            "name = \"tg\"\nplugin = \"telegram\"\nconfig = { api = \"http://x\" }\nsecrets = { token = { file = \"token\" } }\n",
        );
        let resolved = c.resolved_config(dir.path()).unwrap();
        assert_eq!(resolved["token"], "s3cret");
        assert_eq!(resolved["api"], "http://x");
    }

    #[test]
    fn a_missing_environment_variable_is_named_without_any_value() {
        let c = channel(
            "name = \"mail\"\nplugin = \"email\"\nsecrets = { password = { env = \"CASCADE_TEST_SURELY_UNSET_VAR\" } }\n",
        );
        let err = c.resolved_config(Path::new(".")).unwrap_err().to_string();
        assert_eq!(
            err,
            "channel \"mail\": secret \"password\": the environment variable CASCADE_TEST_SURELY_UNSET_VAR is not set"
        );
    }

    #[test]
    fn a_secret_also_written_in_plain_config_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("pw"), "x").unwrap();
        let c = channel(
            "name = \"mail\"\nplugin = \"email\"\nconfig = { password = \"plain\" }\nsecrets = { password = { file = \"pw\" } }\n",
        );
        assert!(
            c.resolved_config(dir.path())
                .unwrap_err()
                .to_string()
                .contains("must only come from")
        );
    }

    #[test]
    fn team_channels_map_team_ids_to_channel_addresses_and_default_to_none() {
        let c = channel(
            "name = \"discord\"\nplugin = \"discord\"\nteam_channels = { \"hosp-ed\" = \"1200000000000000301\", \"mash\" = \"1200000000000000302\" }\n",
        );
        assert_eq!(
            c.team_channels.get("hosp-ed").map(String::as_str),
            Some("1200000000000000301")
        );
        assert_eq!(c.team_channels.len(), 2);
        assert!(
            channel("name = \"x\"\nplugin = \"file\"\n")
                .team_channels
                .is_empty()
        );
    }

    #[test]
    fn timeouts_default_when_unset_or_nonsense() {
        let mut c = PluginsConfig::default();
        assert_eq!(c.send_timeout(), Duration::from_secs(30));
        for nonsense in [-1.0, 0.0, f64::NAN, f64::INFINITY, 1e300] {
            c.send_timeout_seconds = Some(nonsense);
            assert_eq!(c.send_timeout(), Duration::from_secs(30));
        }
        c.send_timeout_seconds = Some(0.25);
        assert_eq!(c.send_timeout(), Duration::from_millis(250));
    }
}
