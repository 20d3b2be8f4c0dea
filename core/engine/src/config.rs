//! A project's `cascade.toml`: the partnership, where the store lives, the
//! theme taxonomy, the privacy guard's lists and the HTTP server's limits.
//! Secrets never live here.

use cascade_model::content::{Taxonomy, Theme};
use cascade_plugin_host::{ChannelConfig, PluginsConfig};
use cascade_privacy::PrivacyConfig;
use serde::Deserialize;
use std::path::{Path, PathBuf};

/// The file name of a project's configuration.
pub const CONFIG_FILE: &str = "cascade.toml";

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    pub partnership: Partnership,
    #[serde(default)]
    pub store: StoreConfig,
    /// The theme taxonomy; when absent, the built-in defaults.
    #[serde(default)]
    pub themes: Vec<Theme>,
    #[serde(default)]
    pub privacy: PrivacyConfig,
    #[serde(default)]
    pub plugins: PluginsConfig,
    /// The channel instances to start, each a plugin with its configuration.
    #[serde(default)]
    pub channels: Vec<ChannelConfig>,
    /// Signed acknowledgement links: the signing key (from the environment
    /// or a file), older keys still accepted for a while, link lifetime.
    #[serde(default)]
    pub ack: Option<crate::ack::AckConfig>,
    /// The HTTP server's timeouts, connection cap and trusted proxies.
    #[serde(default)]
    pub server: crate::server_config::ServerConfig,
    /// The web console `cascade serve` runs under `/console`.
    #[serde(default)]
    pub console: ConsoleConfig,
    /// How long each kind of personal data is kept (UK GDPR); nothing is
    /// removed unless configured.
    #[serde(default)]
    pub retention: crate::retention::RetentionConfig,
    /// `[induction]`: the key items every joiner gets, one at a time.
    #[serde(default)]
    pub induction: Option<InductionConfig>,
}

/// `[induction]`: the back catalogue every joiner (someone new in a
/// directory import after the induction was set up) gets, one key item
/// at a time in their own working time, each acknowledged as usual.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InductionConfig {
    /// Key item ids, in the order joiners get them.
    pub items: Vec<String>,
    /// From one key item to the next, e.g. "2 working days".
    pub pace: String,
    /// Every key item due within this of joining, e.g. "6 weeks".
    pub deadline: String,
    /// Channel instance names in preference order.
    pub channels: Vec<String>,
    /// Who counts as a joiner; no selector: everyone new.
    #[serde(default)]
    pub audience: InductionAudience,
    /// Days after each key item's send, ascending, each before its deadline.
    #[serde(default)]
    pub reminder_days: Vec<u32>,
    /// Days after the deadline (counted from joining): the escalation ladder.
    #[serde(default)]
    pub escalation_days: Vec<u32>,
    /// Local time of day key items go, in each joiner's own zone; 09:00 by default.
    #[serde(default = "default_induction_time")]
    pub time: String,
    /// The weekday champions get their joiners' progress; Monday by default.
    #[serde(default = "default_digest_day")]
    pub digest_day: String,
}

/// `[induction.audience]`: who counts as a joiner, as the union of these
/// lists; everyone when none is given.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InductionAudience {
    #[serde(default)]
    pub agencies: Vec<String>,
    #[serde(default)]
    pub teams: Vec<String>,
    #[serde(default)]
    pub roles: Vec<String>,
}

impl InductionAudience {
    /// As a rollout's audience.
    pub fn to_audience(&self) -> cascade_model::rollout::Audience {
        cascade_model::rollout::Audience {
            include: cascade_model::rollout::Selector {
                agencies: self.agencies.clone(),
                teams: self.teams.clone(),
                roles: self.roles.clone(),
                ..Default::default()
            },
            exclude: Default::default(),
        }
    }
}

fn default_induction_time() -> String {
    "09:00".to_owned()
}

fn default_digest_day() -> String {
    "Monday".to_owned()
}

/// What `[induction]` means once read: its pace, deadline, time of day
/// and digest day, or the problem with the key that says it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InductionTiming {
    pub pace_days: u32,
    pub deadline_days: u32,
    pub time: chrono::NaiveTime,
    pub digest_day: chrono::Weekday,
}

impl InductionConfig {
    /// The pace, deadline, time and digest day, or (key, problem, help)
    /// for each that is wrong, the items and channels not yet held to the
    /// project (see `cascade check`).
    pub fn timing(&self) -> Result<InductionTiming, Vec<(&'static str, String, String)>> {
        use cascade_model::rollout::{parse_deadline, parse_pace};
        let mut problems = Vec::new();
        let pace = parse_pace(&self.pace).map_err(|e| {
            (
                "pace",
                e,
                "write the working days from one key item to the next, e.g. pace = \"2 working days\"".to_owned(),
            )
        });
        let deadline = parse_deadline(&self.deadline).map_err(|e| {
            (
                "deadline",
                e,
                "write how long from joining every key item is due, e.g. deadline = \"6 weeks\" or \"30 days\"".to_owned(),
            )
        });
        let time = chrono::NaiveTime::parse_from_str(&self.time, "%H:%M").map_err(|_| {
            (
                "time",
                format!("\"{}\" is not a time of day", self.time),
                "write a 24-hour time such as time = \"09:00\"".to_owned(),
            )
        });
        let digest_day = self.digest_day.parse::<chrono::Weekday>().map_err(|_| {
            (
                "digest_day",
                format!("\"{}\" is not a day of the week", self.digest_day),
                "write a weekday such as digest_day = \"Monday\"".to_owned(),
            )
        });
        if self.items.is_empty() {
            problems.push((
                "items",
                "the induction names no key items".to_owned(),
                "list the key items' ids in order, e.g. items = [\"7mb-neglect-seeing-the-child\"]"
                    .to_owned(),
            ));
        }
        if self.channels.is_empty() {
            problems.push((
                "channels",
                "the induction names no channels".to_owned(),
                "list channel names from [[channels]], e.g. channels = [\"outbox\"]".to_owned(),
            ));
        }
        if let (Ok(pace), Ok(deadline)) = (&pace, &deadline) {
            // The last key item's day at the latest, for someone working
            // five days a week: whole weeks of five working days, plus what is left.
            let spread = u32::try_from(self.items.len().saturating_sub(1)).unwrap_or(u32::MAX);
            let working = spread.saturating_mul(*pace);
            let calendar_days = working / 5 * 7 + working % 5 + 2;
            if calendar_days >= *deadline {
                problems.push((
                    "deadline",
                    format!(
                        "{} key items {} working days apart take about {calendar_days} days, but the deadline is {deadline} days from joining",
                        self.items.len(),
                        pace
                    ),
                    "give a longer deadline, a shorter pace or fewer key items".to_owned(),
                ));
            }
        }
        for (key, days) in [
            ("reminder_days", &self.reminder_days),
            ("escalation_days", &self.escalation_days),
        ] {
            if days.iter().any(|d| !(1..=365).contains(d)) || !days.is_sorted_by(|a, b| a < b) {
                problems.push((
                    key,
                    format!("{key} must be ascending whole days from 1 to 365"),
                    format!("write e.g. {key} = [2, 5]"),
                ));
            }
        }
        match (pace, deadline, time, digest_day) {
            (Ok(pace_days), Ok(deadline_days), Ok(time), Ok(digest_day)) if problems.is_empty() => {
                Ok(InductionTiming {
                    pace_days,
                    deadline_days,
                    time,
                    digest_day,
                })
            }
            (pace, deadline, time, digest_day) => {
                let mut all: Vec<_> = [pace.err(), deadline.err(), time.err(), digest_day.err()]
                    .into_iter()
                    .flatten()
                    .collect();
                all.extend(problems);
                Err(all)
            }
        }
    }
}

/// The line of `key` in the `[table]` of a TOML text, or of the table's
/// header when the key is not written, or 1.
pub fn line_in_table(text: &str, table: &str, key: &str) -> usize {
    let header = format!("[{table}]");
    let mut in_table = false;
    let mut header_line = 1;
    for (i, line) in text.lines().enumerate() {
        let trimmed = line.trim();
        if trimmed.starts_with('[') {
            in_table = trimmed == header;
            if in_table {
                header_line = i + 1;
            }
            continue;
        }
        let written = trimmed
            .split_once('=')
            .is_some_and(|(k, _)| k.trim() == key);
        if in_table && written {
            return i + 1;
        }
    }
    header_line
}

/// `[console]`: the web console's settings.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConsoleConfig {
    /// Where people reach the console, e.g. `https://cascade.example.org`
    /// (set-up links are `<base_url>/console/setup/<token>`); by default
    /// `[ack] base_url`, else the address `cascade serve` listens on.
    /// Session cookies are `Secure` whenever it is https.
    #[serde(default)]
    pub base_url: Option<String>,
    /// Whether an approver may approve an item they saved themselves.
    #[serde(default)]
    pub allow_self_approval: bool,
    /// `[console.sso]`: sign-in through the partnership's identity
    /// provider (OpenID Connect, e.g. Microsoft Entra ID) beside local
    /// accounts.
    #[serde(default)]
    pub sso: Option<SsoConfig>,
}

/// `[console.sso]`: single sign-on with OpenID Connect. The provider sends
/// people back to `<console base_url>/console/sso/callback`, which must be
/// registered with it as a redirect URI.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SsoConfig {
    /// The provider's issuer, e.g.
    /// `https://login.microsoftonline.com/<tenant id>/v2.0`; its discovery
    /// document is read from `<issuer>/.well-known/openid-configuration`.
    pub issuer: String,
    /// The application (client) id registered with the provider.
    pub client_id: String,
    /// The client secret: `{ env = "..." }` or `{ file = "..." }`, never
    /// in cascade.toml.
    pub client_secret: cascade_model::secret::SecretSource,
    /// Scopes asked for; `openid` is always asked for.
    #[serde(default = "default_sso_scopes")]
    pub scopes: Vec<String>,
    /// The ID token claim that holds the person's roles or groups: `roles`
    /// (Entra app roles) or `groups`; a string or a list of strings.
    #[serde(default = "default_role_claim")]
    pub role_claim: String,
    /// The claim whose value names the account, e.g. `preferred_username`
    /// or `email`.
    #[serde(default = "default_name_claim")]
    pub name_claim: String,
    /// Which value of `role_claim` gives which console role, e.g.
    /// `"Cascade.Editor" = "editor"`. Someone with none of them is refused;
    /// with several, the first in the order admin, editor, approver,
    /// viewer, champion counts.
    pub roles: std::collections::BTreeMap<String, String>,
    /// The sign-in page's button, e.g. "Sign in with your council account".
    #[serde(default = "default_sso_label")]
    pub label: String,
}

/// The console's roles a `[console.sso] roles` value may name.
const CONSOLE_ROLES: [&str; 5] = ["admin", "editor", "approver", "viewer", "champion"];

/// What is wrong with `[console.sso]`, each with its fix.
pub fn sso_problems(sso: &SsoConfig) -> Vec<String> {
    let mut problems = Vec::new();
    if !(sso.issuer.starts_with("https://") || sso.issuer.starts_with("http://")) {
        problems.push(format!(
            "[console.sso] issuer \"{}\" is not a URL\n  help: use the provider's issuer, e.g. https://login.microsoftonline.com/<tenant id>/v2.0",
            sso.issuer
        ));
    }
    if sso.roles.is_empty() {
        problems.push("[console.sso] roles is empty, so nobody could sign in\n  help: map a value of the role claim to a role, e.g. \"Cascade.Editor\" = \"editor\"".to_owned());
    }
    for (value, role) in &sso.roles {
        if !CONSOLE_ROLES.contains(&role.as_str()) {
            problems.push(format!(
                "[console.sso] roles: \"{value}\" = \"{role}\" is not a console role\n  help: use one of {}",
                CONSOLE_ROLES.join(", ")
            ));
        }
    }
    problems
}

fn default_sso_scopes() -> Vec<String> {
    vec!["openid".into(), "profile".into(), "email".into()]
}

fn default_role_claim() -> String {
    "roles".into()
}

fn default_name_claim() -> String {
    "preferred_username".into()
}

fn default_sso_label() -> String {
    "Sign in with your organisation's account".into()
}

impl Config {
    /// The console's base URL: `[console] base_url`, else `[ack]
    /// base_url`, else `fallback` (the address served on).
    pub fn console_base_url(&self, fallback: &str) -> String {
        self.console
            .base_url
            .clone()
            .or_else(|| self.ack.as_ref().map(|a| a.base_url.clone()))
            .unwrap_or_else(|| fallback.to_owned())
            .trim_end_matches('/')
            .to_owned()
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Partnership {
    pub name: String,
    #[serde(default = "default_time_zone")]
    pub time_zone: String,
    /// When non-urgent messages wait (default 20:00-08:00 and weekends).
    #[serde(default)]
    pub quiet_hours: cascade_model::rollout::QuietHours,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StoreConfig {
    /// The SQLite file, relative to the project folder.
    #[serde(default = "default_store_path")]
    pub path: PathBuf,
    /// The key link codes are hashed under, relative to the project folder;
    /// made on first use. It is kept apart from the database so that a copy
    /// of the database alone cannot be searched for codes.
    #[serde(default = "default_link_code_key")]
    pub link_code_key: PathBuf,
    /// `postgres://user@host:5432/database` selects PostgreSQL instead of
    /// the SQLite file (issue 18). Never with a password in it: that comes
    /// from the environment variable `CASCADE_STORE_PASSWORD` or from
    /// `password_file`.
    #[serde(default)]
    pub url: Option<String>,
    /// A file holding the database password (its first line), relative to
    /// the project folder.
    #[serde(default)]
    pub password_file: Option<PathBuf>,
    /// Connections each process keeps at most (default 10).
    #[serde(default)]
    pub max_connections: Option<u32>,
    /// How long one statement may run, e.g. "60s" (default one minute).
    #[serde(default)]
    pub statement_timeout: Option<String>,
    /// How long to wait for the server or a free connection, e.g. "10s".
    #[serde(default)]
    pub connect_timeout: Option<String>,
    /// TLS to the server: disable, prefer (default), require, verify-ca or
    /// verify-full.
    #[serde(default)]
    pub tls: Option<String>,
    /// The certificate authority for verify-ca and verify-full, relative to
    /// the project folder.
    #[serde(default)]
    pub tls_root_cert: Option<PathBuf>,
}

impl Default for StoreConfig {
    fn default() -> Self {
        StoreConfig {
            path: default_store_path(),
            link_code_key: default_link_code_key(),
            url: None,
            password_file: None,
            max_connections: None,
            statement_timeout: None,
            connect_timeout: None,
            tls: None,
            tls_root_cert: None,
        }
    }
}

/// The environment variable the PostgreSQL password is read from.
pub const STORE_PASSWORD_ENV: &str = "CASCADE_STORE_PASSWORD";

impl StoreConfig {
    /// The PostgreSQL settings when `url` selects PostgreSQL, with the
    /// password from `CASCADE_STORE_PASSWORD` or `password_file` (relative
    /// to `root`); `None` for the SQLite file. An error says which setting
    /// to fix.
    pub fn postgres(&self, root: &Path) -> Result<Option<cascade_store::pg::PgSettings>, String> {
        let Some(url) = &self.url else {
            return Ok(None);
        };
        let mut settings = cascade_store::pg::PgSettings::new(url.clone());
        settings.password = match (std::env::var(STORE_PASSWORD_ENV), &self.password_file) {
            (Ok(password), _) if !password.is_empty() => Some(password),
            (_, Some(file)) => {
                let path = root.join(file);
                let text = std::fs::read_to_string(&path).map_err(|e| {
                    format!(
                        "[store] password_file {}: cannot read it ({e}); create it holding the password on its first line, readable only by the user cascade runs as",
                        path.display()
                    )
                })?;
                Some(text.lines().next().unwrap_or("").to_owned())
            }
            _ => None,
        };
        if let Some(n) = self.max_connections {
            if n == 0 {
                return Err("[store] max_connections is 0; give at least 1 (default 10)".to_owned());
            }
            settings.max_connections = n;
        }
        let duration = |key: &str,
                        value: &Option<String>|
         -> Result<Option<std::time::Duration>, String> {
            value
                .as_deref()
                .map(|v| {
                    humantime_seconds(v).ok_or_else(|| {
                        format!("[store] {key} = \"{v}\" is not a duration; write it like \"30s\" or \"2m\"")
                    })
                })
                .transpose()
        };
        if let Some(d) = duration("statement_timeout", &self.statement_timeout)? {
            settings.statement_timeout = d;
        }
        if let Some(d) = duration("connect_timeout", &self.connect_timeout)? {
            settings.connect_timeout = d;
        }
        if let Some(tls) = &self.tls {
            settings.tls = tls.clone();
        }
        settings.tls_root_cert = self.tls_root_cert.as_ref().map(|p| root.join(p));
        Ok(Some(settings))
    }
}

/// "30s", "2m", "1h" or a bare number of seconds.
fn humantime_seconds(text: &str) -> Option<std::time::Duration> {
    let text = text.trim();
    let (number, unit) = match text.find(|c: char| !c.is_ascii_digit()) {
        Some(at) => text.split_at(at),
        None => (text, "s"),
    };
    let n: u64 = number.parse().ok()?;
    let seconds = match unit.trim() {
        "s" | "sec" | "seconds" => n,
        "m" | "min" | "minutes" => n.checked_mul(60)?,
        "h" | "hours" => n.checked_mul(3600)?,
        _ => return None,
    };
    (seconds > 0).then(|| std::time::Duration::from_secs(seconds))
}

fn default_store_path() -> PathBuf {
    PathBuf::from(".cascade/cascade.db")
}

fn default_link_code_key() -> PathBuf {
    PathBuf::from(".cascade/link-code.key")
}

fn default_time_zone() -> String {
    "Europe/London".to_owned()
}

/// A problem with `cascade.toml`, naming the file and line.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("{path}: cannot read the project configuration: {source}\n  help: run `cascade init <dir>` to create a project, or pass --project <dir>", path = path.display())]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}:{line}: {message}\n  help: {help}", path = path.display())]
    Invalid {
        path: PathBuf,
        line: usize,
        message: String,
        help: String,
    },
}

impl Config {
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_owned(),
            source,
        })?;
        Config::parse(path, &text)
    }

    pub fn parse(path: &Path, text: &str) -> Result<Config, ConfigError> {
        let config: Config = toml::from_str(text).map_err(|e| ConfigError::Invalid {
            path: path.to_owned(),
            line: e
                .span()
                .map(|s| 1 + text[..s.start].matches('\n').count())
                .unwrap_or(1),
            message: e.message().trim().to_owned(),
            help: "see the commented example that `cascade init` writes".to_owned(),
        })?;
        let invalid = |message: String, help: &str| ConfigError::Invalid {
            path: path.to_owned(),
            line: 1,
            message,
            help: help.to_owned(),
        };
        let mut seen = std::collections::HashSet::new();
        for theme in &config.themes {
            if !seen.insert(theme.id.as_str()) {
                let line = text
                    .match_indices(&format!("\"{}\"", theme.id))
                    .nth(1)
                    .map(|(at, _)| 1 + text[..at].matches('\n').count())
                    .unwrap_or(1);
                return Err(ConfigError::Invalid {
                    path: path.to_owned(),
                    line,
                    message: format!("theme \"{}\" is defined twice", theme.id),
                    help: "keep one [[themes]] entry per id".to_owned(),
                });
            }
        }
        if let Some(induction) = &config.induction
            && let Err(problems) = induction.timing()
        {
            let (key, message, help) = problems.into_iter().next().expect("an error has a problem");
            return Err(ConfigError::Invalid {
                path: path.to_owned(),
                line: line_in_table(text, "induction", key),
                message: format!("[induction] {message}"),
                help,
            });
        }
        if let Some(url) = &config.store.url {
            let check = cascade_store::pg::PgSettings::new(url.clone()).check();
            if let Err(message) = check {
                return Err(ConfigError::Invalid {
                    path: path.to_owned(),
                    line: line_in_table(text, "store", "url"),
                    message,
                    help: "see \"Running on PostgreSQL\" in the README".to_owned(),
                });
            }
        }
        if config.partnership.name.trim().is_empty() {
            return Err(invalid(
                "[partnership] name is empty".to_owned(),
                "write the partnership's name, as practitioners know it",
            ));
        }
        Ok(config)
    }

    /// The taxonomy the project uses: its own `[[themes]]`, or the defaults.
    pub fn taxonomy(&self) -> Taxonomy {
        if self.themes.is_empty() {
            Taxonomy::default()
        } else {
            Taxonomy::new(self.themes.clone())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ack::AckKeys;
    use chrono::{DateTime, Utc};
    use proptest::prelude::*;
    use std::time::Duration;

    #[test]
    fn a_store_url_selects_postgresql_with_its_settings_and_the_password_from_a_file() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("db-password"), "correct horse\nignored\n").unwrap();
        let text = "[partnership]\nname = \"Northbridge\"\n\n[store]\nurl = \"postgres://cascade@db.example:5432/cascade\"\npassword_file = \"db-password\"\nmax_connections = 4\nstatement_timeout = \"2m\"\nconnect_timeout = \"5s\"\ntls = \"require\"\n";
        let c = Config::parse(Path::new("cascade.toml"), text).unwrap();
        // SAFETY: no other test reads or writes this variable.
        unsafe { std::env::remove_var(STORE_PASSWORD_ENV) };
        let pg = c
            .store
            .postgres(dir.path())
            .unwrap()
            .expect("PostgreSQL selected");
        assert_eq!(pg.url, "postgres://cascade@db.example:5432/cascade");
        assert_eq!(pg.password.as_deref(), Some("correct horse"));
        assert_eq!(pg.max_connections, 4);
        assert_eq!(pg.statement_timeout, Duration::from_secs(120));
        assert_eq!(pg.connect_timeout, Duration::from_secs(5));
        assert_eq!(pg.tls, "require");
        // Without url, the SQLite file as before.
        let plain =
            Config::parse(Path::new("cascade.toml"), "[partnership]\nname = \"N\"\n").unwrap();
        assert!(plain.store.postgres(dir.path()).unwrap().is_none());
        assert_eq!(plain.store.path, Path::new(".cascade/cascade.db"));
    }

    #[test]
    fn a_password_in_the_store_url_is_refused_at_its_line_without_echoing_it() {
        let text = "[partnership]\nname = \"Northbridge\"\n\n[store]\nurl = \"postgres://cascade:hunter2@db/cascade\"\n";
        let err = Config::parse(Path::new("cascade.toml"), text)
            .unwrap_err()
            .to_string();
        assert!(err.starts_with("cascade.toml:5:"), "{err}");
        assert!(err.contains("CASCADE_STORE_PASSWORD"), "{err}");
        assert!(!err.contains("hunter2"), "{err}");
        let text = "[partnership]\nname = \"N\"\n[store]\nurl = \"mysql://db/cascade\"\n";
        let err = Config::parse(Path::new("cascade.toml"), text)
            .unwrap_err()
            .to_string();
        assert!(err.contains("postgres://user@host:5432/database"), "{err}");
    }

    #[test]
    fn bad_store_settings_name_the_setting_and_the_fix() {
        let dir = tempfile::tempdir().unwrap();
        let store = |extra: &str| {
            let text = format!(
                "[partnership]\nname = \"N\"\n[store]\nurl = \"postgres://c@db/c\"\n{extra}"
            );
            Config::parse(Path::new("cascade.toml"), &text)
                .unwrap()
                .store
        };
        let err = store("statement_timeout = \"soon\"\n")
            .postgres(dir.path())
            .unwrap_err();
        assert!(
            err.contains("statement_timeout") && err.contains("30s"),
            "{err}"
        );
        let err = store("max_connections = 0\n")
            .postgres(dir.path())
            .unwrap_err();
        assert!(err.contains("max_connections"), "{err}");
        // SAFETY: no other test reads or writes this variable.
        unsafe { std::env::remove_var(STORE_PASSWORD_ENV) };
        let err = store("password_file = \"missing\"\n")
            .postgres(dir.path())
            .unwrap_err();
        assert!(
            err.contains("password_file") && err.contains("missing"),
            "{err}"
        );
    }

    #[test]
    fn a_minimal_config_gets_the_default_taxonomy_and_store() {
        let c = Config::parse(
            Path::new("cascade.toml"),
            "[partnership]\nname = \"Northbridge\"\n",
        )
        .unwrap();
        assert_eq!(c.partnership.time_zone, "Europe/London");
        assert_eq!(c.store.path, Path::new(".cascade/cascade.db"));
        assert!(c.taxonomy().get("neglect").is_some());
    }

    #[test]
    fn an_unknown_key_names_its_line() {
        let text = "[partnership]\nname = \"Northbridge\"\n\n[store]\nfile = \"x.db\"\n";
        let err = Config::parse(Path::new("cascade.toml"), text).unwrap_err();
        let msg = err.to_string();
        assert!(msg.starts_with("cascade.toml:5:"), "{msg}");
        assert!(msg.contains("unknown field `file`"), "{msg}");
    }

    #[test]
    fn a_theme_defined_twice_is_refused() {
        let text = "[partnership]\nname = \"N\"\n[[themes]]\nid = \"neglect\"\nlabel = \"Neglect\"\n[[themes]]\nid = \"neglect\"\nlabel = \"Neglect again\"\n";
        let msg = Config::parse(Path::new("cascade.toml"), text)
            .unwrap_err()
            .to_string();
        assert!(msg.starts_with("cascade.toml:7:"), "{msg}");
    }

    #[test]
    fn numbers_out_of_range_name_their_line_and_what_to_write() {
        let head = "[partnership]\nname = \"Northbridge\"\n\n";
        for (section, message) in [
            (
                "[plugins]\nsend_timeout_seconds = nan\n",
                "send_timeout_seconds must be between 0.1 and 600, not NaN; write e.g. send_timeout_seconds = 30",
            ),
            (
                "[plugins]\nstart_timeout_seconds = 1e300\n",
                "start_timeout_seconds must be between 0.1 and 600, not 1e300; write e.g. start_timeout_seconds = 15",
            ),
            (
                "[[channels]]\nname = \"email\"\nplugin = \"email\"\nper_second = 0.0\n",
                "per_second must be between 0.01 and 1000, not 0.0; write e.g. per_second = 10",
            ),
            (
                "[ack]\nkey = { env = \"CASCADE_ACK_KEY\" }\nbase_url = \"https://l.example.org\"\nlink_days = 4294967296\n",
                "link_days must be between 1 and 365, not 4294967296; write e.g. link_days = 60",
            ),
        ] {
            let text = format!("{head}{section}");
            let line = text.lines().count();
            let msg = Config::parse(Path::new("cascade.toml"), &text)
                .expect_err(section)
                .to_string();
            assert!(
                msg.starts_with(&format!("cascade.toml:{line}: {message}\n")),
                "{msg}"
            );
        }
    }

    /// A number as `cascade.toml` might hold one: ordinary values, and the
    /// extremes of TOML's integers and floats.
    fn number() -> impl Strategy<Value = String> {
        prop_oneof![
            4 => (0u32..=400).prop_map(|n| n.to_string()),
            2 => prop::sample::select(vec![
                i64::MIN,
                -1,
                0,
                i64::from(u32::MAX),
                i64::from(u32::MAX) + 1,
                i64::MAX,
            ])
            .prop_map(|n| n.to_string()),
            1 => any::<i64>().prop_map(|n| n.to_string()),
            // Debug formatting writes every finite float as TOML reads it.
            3 => any::<f64>().prop_map(|f| format!("{f:?}")),
            1 => (0.0f64..700.0).prop_map(|f| format!("{f:?}")),
            1 => prop::sample::select(vec!["nan", "-nan", "inf", "-inf", "+inf", "-0.0", "5e-324"])
                .prop_map(str::to_owned),
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]

        /// What `serve` makes of the configuration: plugin time limits, a
        /// channel's rate, and acknowledgement links signed and checked.
        #[test]
        fn a_config_with_any_numbers_is_refused_or_served_without_panicking(
            numbers in prop::collection::vec(number(), 4),
        ) {
            let text = format!(
                "[partnership]\nname = \"Northbridge\"\n\
                 [plugins]\nsend_timeout_seconds = {}\nstart_timeout_seconds = {}\n\
                 [[channels]]\nname = \"email\"\nplugin = \"email\"\nper_second = {}\n\
                 [ack]\nkey = {{ env = \"CASCADE_ACK_KEY\" }}\nbase_url = \"https://l.example.org\"\nlink_days = {}\n",
                numbers[0], numbers[1], numbers[2], numbers[3],
            );
            let Ok(config) = Config::parse(Path::new("cascade.toml"), &text) else {
                return Ok(());
            };
            prop_assert!(config.plugins.send_timeout() <= Duration::from_secs(600));
            prop_assert!(config.plugins.start_timeout() <= Duration::from_secs(600));
            let rate = config.channels[0].per_second.unwrap_or_default();
            prop_assert!((0.01..=1000.0).contains(&rate));
            let ack = config.ack.expect("[ack] is set");
            let keys = AckKeys::new(("k1".to_owned(), vec![7; 32]), Vec::new(), ack.link_days)
                .expect("a link_days the configuration accepts makes keys");
            for now in [Utc::now(), DateTime::<Utc>::MAX_UTC, DateTime::<Utc>::MIN_UTC] {
                let token = keys.sign(1, "p-sam", now);
                let _ = keys.verify(&token, now);
            }
        }
    }

    #[test]
    fn a_project_without_a_time_zone_plans_in_london_time() {
        let config = Config::parse(
            Path::new("cascade.toml"),
            "[partnership]\nname = \"Northbridge\"\n",
        )
        .unwrap();
        let cal = cascade_model::rollout::Calendar::new(
            &config.partnership.time_zone,
            cascade_model::rollout::QuietHours::default(),
        )
        .unwrap();
        assert_eq!(cal.time_zone(), chrono_tz::Europe::London);
        assert_eq!(
            cal.format_local(
                chrono::TimeZone::with_ymd_and_hms(&Utc, 2026, 12, 1, 9, 30, 0).unwrap()
            ),
            "Tue 1 Dec 2026 09:30 GMT"
        );
    }

    #[test]
    fn a_bad_period_names_its_file_line_and_what_to_write() {
        for (value, says) in [
            (
                "\"two years\"",
                "\"two years\" does not start with a whole number",
            ),
            ("\"2 fortnights\"", "\"fortnights\" is not a unit of time"),
            ("\"0 days\"", "\"0 days\" is out of range"),
            ("\"101 years\"", "\"101 years\" is out of range"),
            ("\"2years\"", "\"2years\" is not a period"),
            ("730", "invalid type: integer `730`, expected a string"),
        ] {
            let text = format!(
                "[partnership]\nname = \"N\"\n\n[retention]\nlogs = \"1 year\"\nfollow_up_examples = {value}\n"
            );
            let err = Config::parse(Path::new("cascade.toml"), &text)
                .unwrap_err()
                .to_string();
            assert!(err.starts_with("cascade.toml:6: "), "{value}: {err}");
            assert!(err.contains(says), "{value}: {err}");
        }
        let err = Config::parse(
            Path::new("cascade.toml"),
            "[partnership]\nname = \"N\"\n[retention]\nexamples = \"1 year\"\n",
        )
        .unwrap_err()
        .to_string();
        assert!(
            err.starts_with("cascade.toml:4: unknown field `examples`"),
            "{err}"
        );
    }

    #[test]
    fn an_induction_is_read_with_its_pace_deadline_and_defaults() {
        let c = Config::parse(
            Path::new("cascade.toml"),
            "[partnership]\nname = \"N\"\n[induction]\nitems = [\"a\", \"b\"]\npace = \"2 working days\"\ndeadline = \"6 weeks\"\nchannels = [\"outbox\"]\n",
        )
        .unwrap();
        let timing = c.induction.unwrap().timing().unwrap();
        assert_eq!((timing.pace_days, timing.deadline_days), (2, 42));
        assert_eq!(timing.time.to_string(), "09:00:00");
        assert_eq!(timing.digest_day, chrono::Weekday::Mon);
    }

    #[test]
    fn an_induction_audience_takes_agencies_teams_and_roles_and_refuses_anything_else() {
        let text = |audience: &str| {
            format!(
                "[partnership]\nname = \"N\"\n[induction]\nitems = [\"a\"]\npace = \"1 working day\"\ndeadline = \"4 weeks\"\nchannels = [\"outbox\"]\n[induction.audience]\n{audience}\n"
            )
        };
        let c = Config::parse(
            Path::new("cascade.toml"),
            &text("agencies = [\"nb-council\"]"),
        )
        .unwrap();
        let audience = c.induction.unwrap().audience.to_audience();
        assert_eq!(audience.include.agencies, ["nb-council"]);
        assert!(!audience.is_everyone());
        let err = Config::parse(
            Path::new("cascade.toml"),
            &text("agency = [\"nb-council\"]"),
        )
        .unwrap_err()
        .to_string();
        assert!(
            err.starts_with("cascade.toml:9: unknown field `agency`"),
            "{err}"
        );
    }

    #[test]
    fn a_wrong_induction_names_its_line_and_what_to_write() {
        let base = |pace: &str, deadline: &str, items: &str| {
            format!(
                "[partnership]\nname = \"N\"\n\n[induction]\nitems = {items}\npace = \"{pace}\"\ndeadline = \"{deadline}\"\nchannels = [\"outbox\"]\n"
            )
        };
        for (text, line, says) in [
            (
                base("2 days", "6 weeks", "[\"a\"]"),
                6,
                "is not a number of working days",
            ),
            (
                base("2 working days", "6 months", "[\"a\"]"),
                7,
                "\"months\" is not days or weeks",
            ),
            (
                base("2 working days", "6 weeks", "[]"),
                5,
                "names no key items",
            ),
            (
                base("10 working days", "4 weeks", "[\"a\", \"b\", \"c\"]"),
                7,
                "3 key items 10 working days apart take about 30 days, but the deadline is 28 days",
            ),
        ] {
            let err = Config::parse(Path::new("cascade.toml"), &text)
                .unwrap_err()
                .to_string();
            assert!(
                err.starts_with(&format!("cascade.toml:{line}: [induction] ")),
                "{err}"
            );
            assert!(err.contains(says), "{err}");
            assert!(err.contains("help: "), "{err}");
        }
    }

    #[test]
    fn nothing_is_removed_unless_configured() {
        let c = Config::parse(Path::new("cascade.toml"), "[partnership]\nname = \"N\"\n").unwrap();
        assert!(!c.retention.is_set());
        assert_eq!(
            c.retention.cutoffs(Utc::now()),
            cascade_store::RetentionCutoffs::default()
        );
    }
}
