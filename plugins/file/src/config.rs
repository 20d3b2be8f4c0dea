//! What an operator writes for a file channel instance: the folder, the
//! failure rates to inject and the concurrency limit. Parsing is pure; the
//! folder is created at start, not here.

use serde_json::{Map, Value, json};
use std::num::NonZeroUsize;
use std::path::PathBuf;

const KNOWN_KEYS: [&str; 7] = [
    "dir",
    "unreachable",
    "transient_failure_rate",
    "permanent_failure_rate",
    "seed",
    "max_in_flight",
    "journal",
];

/// A file channel instance's configuration.
#[derive(Debug, Clone, PartialEq)]
pub struct FileConfig {
    /// The folder messages are written to.
    pub dir: PathBuf,
    pub failures: InjectedFailures,
    /// Most writes in progress at once; `None` for no limit.
    pub max_in_flight: Option<NonZeroUsize>,
    /// Also append each written delivery id to `journal.log` in the folder,
    /// so repeated writes of one delivery (which overwrite its file) can be
    /// counted.
    pub journal: bool,
    /// Addresses answered as permanently unreachable, as a chat provider
    /// answers for a person who blocked the bot.
    pub unreachable: Vec<String>,
}

/// How often, and in which pattern, sends fail on purpose (drawn per send
/// by `state::Sends`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct InjectedFailures {
    /// Share of sends answered with `Retry`, from 0.0 to 1.0.
    pub transient_rate: f64,
    /// Share of sends answered with `Failed`, from 0.0 to 1.0; the two rates
    /// add up to at most 1.0.
    pub permanent_rate: f64,
    pub seed: u64,
}

/// A configuration the file channel cannot run with. Each message names the
/// key and says what to write instead.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum ConfigError {
    #[error(
        "the file channel's configuration must be a JSON object such as {{\"dir\": \"out/messages\"}}"
    )]
    NotAnObject,
    #[error("unknown key `{0}` in the file channel's configuration: the known keys are {known}", known = KNOWN_KEYS.join(", "))]
    UnknownKey(String),
    #[error(
        "`dir` is missing: set it to the folder the messages should be written to, e.g. \"dir\": \"out/messages\""
    )]
    MissingDir,
    #[error(
        "`dir` must be a non-empty string naming a folder, e.g. \"dir\": \"out/messages\" (got {0})"
    )]
    InvalidDir(Value),
    #[error("`{key}` must be a number from 0.0 to 1.0, e.g. 0.1 for one send in ten (got {got})")]
    InvalidRate { key: &'static str, got: Value },
    #[error(
        "`transient_failure_rate` ({transient}) and `permanent_failure_rate` ({permanent}) add up to more than 1.0: lower one of them"
    )]
    RatesAboveOne { transient: f64, permanent: f64 },
    #[error("`seed` must be a whole number from 0 to {max} (got {0}), or left out for a different pattern each run", max = u64::MAX)]
    InvalidSeed(Value),
    #[error(
        "`max_in_flight` must be a whole number of at least 1 (got {0}), or left out for no limit"
    )]
    InvalidMaxInFlight(Value),
    #[error("`journal` must be true or false (got {0})")]
    InvalidJournal(Value),
    #[error("`unreachable` must be a list of addresses, e.g. [\"blocked@example.org\"] (got {0})")]
    InvalidUnreachable(Value),
}

impl FileConfig {
    /// Reads the configuration given at start. `seed_if_unset` seeds the
    /// failure pattern when the operator gave no `seed`.
    pub fn from_json(config: &Value, seed_if_unset: u64) -> Result<Self, ConfigError> {
        let fields = config.as_object().ok_or(ConfigError::NotAnObject)?;
        if let Some(unknown) = fields.keys().find(|k| !KNOWN_KEYS.contains(&k.as_str())) {
            return Err(ConfigError::UnknownKey(unknown.clone()));
        }
        let dir = match present(fields, "dir") {
            None => return Err(ConfigError::MissingDir),
            Some(Value::String(dir)) if !dir.trim().is_empty() => PathBuf::from(dir),
            Some(other) => return Err(ConfigError::InvalidDir(other.clone())),
        };
        let transient = rate(fields, "transient_failure_rate")?;
        let permanent = rate(fields, "permanent_failure_rate")?;
        if transient + permanent > 1.0 {
            return Err(ConfigError::RatesAboveOne {
                transient,
                permanent,
            });
        }
        let seed = match present(fields, "seed") {
            None => seed_if_unset,
            Some(value) => value
                .as_u64()
                .ok_or_else(|| ConfigError::InvalidSeed(value.clone()))?,
        };
        let max_in_flight = present(fields, "max_in_flight")
            .map(|value| {
                value
                    .as_u64()
                    .and_then(|n| usize::try_from(n).ok())
                    .and_then(NonZeroUsize::new)
                    .ok_or_else(|| ConfigError::InvalidMaxInFlight(value.clone()))
            })
            .transpose()?;
        let journal = match present(fields, "journal") {
            None => false,
            Some(value) => value
                .as_bool()
                .ok_or_else(|| ConfigError::InvalidJournal(value.clone()))?,
        };
        let unreachable = match present(fields, "unreachable") {
            None => Vec::new(),
            Some(value) => value
                .as_array()
                .and_then(|list| {
                    list.iter()
                        .map(|a| a.as_str().map(str::to_owned))
                        .collect::<Option<Vec<_>>>()
                })
                .ok_or_else(|| ConfigError::InvalidUnreachable(value.clone()))?,
        };
        Ok(FileConfig {
            dir,
            journal,
            unreachable,
            failures: InjectedFailures {
                transient_rate: transient,
                permanent_rate: permanent,
                seed,
            },
            max_in_flight,
        })
    }
}

/// A key's value, treating an explicit `null` as absent.
fn present<'a>(fields: &'a Map<String, Value>, key: &str) -> Option<&'a Value> {
    fields.get(key).filter(|value| !value.is_null())
}

fn rate(fields: &Map<String, Value>, key: &'static str) -> Result<f64, ConfigError> {
    let Some(value) = present(fields, key) else {
        return Ok(0.0);
    };
    value
        .as_f64()
        .filter(|rate| (0.0..=1.0).contains(rate))
        .ok_or_else(|| ConfigError::InvalidRate {
            key,
            got: value.clone(),
        })
}

/// The JSON Schema of the configuration, published in the manifest.
pub fn config_schema() -> Value {
    json!({
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": "file channel",
        "description": "Writes each message to <dir>/<delivery_id>.json, for dry runs, demos and tests.",
        "type": "object",
        "required": ["dir"],
        "additionalProperties": false,
        "properties": {
            "dir": {
                "type": "string",
                "minLength": 1,
                "description": "The folder messages are written to; created if missing."
            },
            "transient_failure_rate": {
                "type": "number",
                "minimum": 0.0,
                "maximum": 1.0,
                "default": 0.0,
                "description": "The share of sends answered with a retryable failure instead of being written."
            },
            "permanent_failure_rate": {
                "type": "number",
                "minimum": 0.0,
                "maximum": 1.0,
                "default": 0.0,
                "description": "The share of sends answered with a permanent failure instead of being written. The two rates add up to at most 1.0."
            },
            "seed": {
                "type": "integer",
                "minimum": 0,
                "maximum": u64::MAX,
                "description": "Makes the failure pattern repeat from run to run: the n-th send of an instance always meets the same fate."
            },
            "max_in_flight": {
                "type": "integer",
                "minimum": 1,
                "description": "Most writes in progress at once; further sends wait their turn. No limit when left out."
            },
            "journal": {
                "type": "boolean",
                "description": "Also append each written delivery id to journal.log, so repeated writes of one delivery can be counted. Off when left out."
            },
            "unreachable": {
                "type": "array",
                "items": { "type": "string" },
                "description": "Addresses answered as permanently unreachable, as a chat provider answers for a person who blocked the bot, so the engine's fallback can be tried."
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

    fn parse(config: Value) -> Result<FileConfig, ConfigError> {
        FileConfig::from_json(&config, 7)
    }

    #[test]
    fn a_config_with_only_a_dir_injects_no_failures_and_has_no_limit() {
        let config = parse(json!({"dir": "out/messages"})).unwrap();
        assert_eq!(config.dir, PathBuf::from("out/messages"));
        assert_eq!(config.failures.transient_rate, 0.0);
        assert_eq!(config.failures.permanent_rate, 0.0);
        assert_eq!(config.max_in_flight, None);
    }

    #[test]
    fn every_key_is_read_when_given() {
        let config = parse(json!({
            "dir": "/tmp/x",
            "transient_failure_rate": 0.25,
            "permanent_failure_rate": 0.5,
            "seed": 42,
            "max_in_flight": 4
        }))
        .unwrap();
        assert_eq!(
            config.failures,
            InjectedFailures {
                transient_rate: 0.25,
                permanent_rate: 0.5,
                seed: 42
            }
        );
        assert_eq!(config.max_in_flight, NonZeroUsize::new(4));
    }

    #[test]
    fn without_a_seed_the_seed_given_by_the_caller_is_used() {
        let config = parse(json!({"dir": "d"})).unwrap();
        assert_eq!(config.failures.seed, 7);
    }

    #[test]
    fn null_optional_keys_count_as_left_out() {
        let config = parse(json!({"dir": "d", "seed": null, "max_in_flight": null})).unwrap();
        assert_eq!(config.failures.seed, 7);
        assert_eq!(config.max_in_flight, None);
    }

    #[test]
    fn a_missing_dir_is_refused_with_an_example() {
        let error = parse(json!({})).unwrap_err();
        assert_eq!(error, ConfigError::MissingDir);
        assert!(error.to_string().contains("\"dir\": \"out/messages\""));
    }

    #[test]
    fn an_empty_or_non_string_dir_is_refused() {
        assert!(matches!(
            parse(json!({"dir": ""})),
            Err(ConfigError::InvalidDir(_))
        ));
        assert!(matches!(
            parse(json!({"dir": 3})),
            Err(ConfigError::InvalidDir(_))
        ));
    }

    #[test]
    fn a_config_that_is_not_an_object_is_refused() {
        assert_eq!(parse(json!("out/messages")), Err(ConfigError::NotAnObject));
    }

    #[test]
    fn a_misspelt_key_is_refused_by_name_with_the_known_keys() {
        let error = parse(json!({"dir": "d", "transient_rate": 0.1})).unwrap_err();
        let message = error.to_string();
        assert!(message.contains("`transient_rate`"), "{message}");
        assert!(message.contains("transient_failure_rate"), "{message}");
    }

    #[test]
    fn a_rate_outside_zero_to_one_is_refused_naming_the_key() {
        let error = parse(json!({"dir": "d", "permanent_failure_rate": 1.5})).unwrap_err();
        let message = error.to_string();
        assert!(message.starts_with("`permanent_failure_rate`"), "{message}");
        assert!(message.contains("1.5"), "{message}");
        assert!(parse(json!({"dir": "d", "transient_failure_rate": -0.1})).is_err());
        assert!(parse(json!({"dir": "d", "transient_failure_rate": "0.1"})).is_err());
    }

    #[test]
    fn rates_of_exactly_zero_and_one_are_accepted() {
        assert!(parse(json!({"dir": "d", "transient_failure_rate": 1})).is_ok());
        assert!(parse(json!({"dir": "d", "permanent_failure_rate": 0})).is_ok());
    }

    #[test]
    fn rates_adding_up_to_more_than_one_are_refused() {
        let error = parse(json!({
            "dir": "d",
            "transient_failure_rate": 0.6,
            "permanent_failure_rate": 0.5
        }))
        .unwrap_err();
        assert!(matches!(error, ConfigError::RatesAboveOne { .. }));
    }

    #[test]
    fn a_negative_or_fractional_seed_is_refused() {
        assert!(matches!(
            parse(json!({"dir": "d", "seed": -1})),
            Err(ConfigError::InvalidSeed(_))
        ));
        assert!(matches!(
            parse(json!({"dir": "d", "seed": 1.5})),
            Err(ConfigError::InvalidSeed(_))
        ));
    }

    #[test]
    fn a_max_in_flight_of_zero_is_refused_with_the_fix() {
        let error = parse(json!({"dir": "d", "max_in_flight": 0})).unwrap_err();
        assert!(error.to_string().contains("left out for no limit"));
    }

    #[test]
    fn the_schema_lists_every_known_key_and_requires_dir() {
        let schema = config_schema();
        let properties = schema["properties"].as_object().unwrap();
        let mut keys: Vec<&str> = properties.keys().map(String::as_str).collect();
        keys.sort_unstable();
        let mut known = KNOWN_KEYS.to_vec();
        known.sort_unstable();
        assert_eq!(keys, known);
        assert_eq!(schema["required"], json!(["dir"]));
    }
}
