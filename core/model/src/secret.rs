//! Where a secret comes from: an environment variable or a file, never
//! cascade.toml itself. Errors name where it looked, never a value.

use serde::Deserialize;
use std::path::{Path, PathBuf};

/// Where a secret's value comes from.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase", deny_unknown_fields)]
pub enum SecretSource {
    /// `{ env = "CASCADE_SMTP_PASSWORD" }`
    Env(String),
    /// `{ file = "/run/secrets/smtp-password" }`, relative to the project;
    /// one trailing newline is dropped.
    File(PathBuf),
}

impl SecretSource {
    /// The secret's value (one trailing newline of a file dropped). The
    /// error names where it looked, never a value.
    pub fn read(&self, base_dir: &Path) -> Result<String, String> {
        let value = match self {
            SecretSource::Env(var) => std::env::var(var)
                .map_err(|_| format!("the environment variable {var} is not set"))?,
            SecretSource::File(path) => {
                let path = base_dir.join(path);
                let text = std::fs::read_to_string(&path)
                    .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
                let trimmed = text.strip_suffix('\n').unwrap_or(&text);
                trimmed.strip_suffix('\r').unwrap_or(trimmed).to_owned()
            }
        };
        if value.is_empty() {
            return Err("is empty".to_owned());
        }
        Ok(value)
    }
}
