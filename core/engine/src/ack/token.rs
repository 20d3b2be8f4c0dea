//! Signed acknowledgement tokens: HMAC-SHA256 over one delivery, one person
//! and an expiry, under a named key so keys can be rotated. Pure: the time is
//! always a parameter. Key bytes are never logged or displayed.
//!
//! A token reads `v1.<kid>.<delivery>.<person>.<expires>.<mac>`: the outbox
//! row id, the person id in unpadded base64url, the expiry in Unix seconds,
//! and the MAC (unpadded base64url) over everything before its dot.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use cascade_model::bounds::Bounds;
use cascade_plugin_host::SecretSource;
use chrono::{DateTime, Duration, Utc};
use hmac::{Hmac, Mac};
use serde::{Deserialize, Deserializer};
use sha2::Sha256;
use std::fmt;
use std::path::Path;

type HmacSha256 = Hmac<Sha256>;

const VERSION: &str = "v1";
/// The fewest key bytes accepted: the output size of SHA-256.
pub const MIN_KEY_BYTES: usize = 32;
/// Longer tokens are refused before any work is done on them.
const MAX_TOKEN_LEN: usize = 512;
const MAX_KID_LEN: usize = 16;
/// How long a link may stay valid: a link is a bearer credential in a
/// mailbox, so it should lapse within the year its learning belongs to.
pub const LINK_DAYS: Bounds<u32> = Bounds {
    key: "link_days",
    min: 1,
    max: 365,
    example: 60,
};

/// The `[ack]` section of `cascade.toml`.
///
/// Keys are hex: at least 64 hex digits (32 bytes), e.g. from
/// `openssl rand -hex 32`, kept in an environment variable or a file.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AckConfig {
    /// The key new links are signed with.
    pub key: SecretSource,
    /// The current key's id, written into every token (default `k1`).
    #[serde(default = "default_kid")]
    pub kid: String,
    /// Keys rotated out: links they signed keep working until `until`.
    #[serde(default)]
    pub previous: Vec<PreviousKey>,
    /// How long a link stays valid, in days: 1 to 365 (default 60).
    #[serde(default = "default_link_days", deserialize_with = "link_days")]
    pub link_days: u32,
    /// Where `cascade serve` is reached from outside, e.g.
    /// `https://learning.example.org`; links are `<base_url>/ack/<token>`.
    pub base_url: String,
}

/// A key rotated out, still accepted for links it signed until `until`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PreviousKey {
    pub key: SecretSource,
    pub kid: String,
    /// RFC 3339, e.g. `"2026-09-01T00:00:00Z"`.
    pub until: DateTime<Utc>,
}

fn default_kid() -> String {
    "k1".to_owned()
}

fn default_link_days() -> u32 {
    LINK_DAYS.example
}

fn link_days<'de, D: Deserializer<'de>>(d: D) -> Result<u32, D::Error> {
    LINK_DAYS.deserialize(d)
}

impl AckConfig {
    /// The link a person opens to acknowledge, for a token.
    pub fn link(&self, token: &str) -> String {
        format!("{}/ack/{token}", self.base_url.trim_end_matches('/'))
    }

    /// The link a person opens to give answer `n` (1-based) to a follow-up.
    pub fn answer_link(&self, token: &str, n: usize) -> String {
        format!("{}/answer/{token}/{n}", self.base_url.trim_end_matches('/'))
    }

    /// The link a person opens to answer a refresher's question.
    pub fn refresher_link(&self, token: &str) -> String {
        format!("{}/refresher/{token}", self.base_url.trim_end_matches('/'))
    }

    /// The link a champion opens to record a cascade, for a token.
    pub fn confirm_link(&self, token: &str) -> String {
        format!("{}/confirm/{token}", self.base_url.trim_end_matches('/'))
    }
}

/// Why the keys could not be loaded. Never holds key material.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyError {
    #[error("[ack] key {kid}: {reason}")]
    Secret { kid: String, reason: String },
    #[error(
        "[ack] key {kid}: a key must be at least {MIN_KEY_BYTES} bytes written as hex ({} hex digits)\n  help: make one with `openssl rand -hex 32`",
        MIN_KEY_BYTES * 2
    )]
    BadKey { kid: String },
    #[error(
        "[ack] key id \"{kid}\": use 1 to {MAX_KID_LEN} letters, digits, `-` or `_`, each id once"
    )]
    BadKid { kid: String },
    #[error("[ack] {0}")]
    LinkDays(String),
}

/// What a valid token says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Claims {
    pub delivery: i64,
    pub person: String,
    pub expires: DateTime<Utc>,
}

/// Why a token was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    #[error("the token is not in the expected form")]
    Malformed,
    #[error("the token's signature does not match")]
    Forged,
    #[error("the token has expired")]
    Expired,
    #[error("the token was signed with a key that has been retired")]
    RetiredKey,
    #[error("the token names a key that is not known")]
    UnknownKey,
}

impl TokenError {
    /// A short code for logs and the acknowledgement log.
    pub fn code(self) -> &'static str {
        match self {
            TokenError::Malformed => "malformed",
            TokenError::Forged => "forged",
            TokenError::Expired => "expired",
            TokenError::RetiredKey => "retired-key",
            TokenError::UnknownKey => "unknown-key",
        }
    }
}

struct Key {
    kid: String,
    bytes: Vec<u8>,
    /// Tokens under a retired key are refused from this instant.
    accept_until: Option<DateTime<Utc>>,
}

/// The signing key and the rotated-out keys still accepted.
pub struct AckKeys {
    current: Key,
    previous: Vec<Key>,
    lifetime: Duration,
}

impl fmt::Debug for AckKeys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AckKeys")
            .field("current", &self.current.kid)
            .field(
                "previous",
                &self
                    .previous
                    .iter()
                    .map(|k| (&k.kid, k.accept_until))
                    .collect::<Vec<_>>(),
            )
            .field("lifetime", &self.lifetime)
            .finish_non_exhaustive()
    }
}

impl AckKeys {
    /// Keys from raw bytes: `current` is (kid, key); each previous key is
    /// (kid, key, accepted until). Links live `link_days` days.
    pub fn new(
        current: (String, Vec<u8>),
        previous: Vec<(String, Vec<u8>, DateTime<Utc>)>,
        link_days: u32,
    ) -> Result<AckKeys, KeyError> {
        LINK_DAYS
            .check(link_days.into())
            .map_err(KeyError::LinkDays)?;
        let key = |kid: String, bytes: Vec<u8>, accept_until| {
            let valid_kid = !kid.is_empty()
                && kid.len() <= MAX_KID_LEN
                && kid
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
            if !valid_kid {
                return Err(KeyError::BadKid { kid });
            }
            if bytes.len() < MIN_KEY_BYTES {
                return Err(KeyError::BadKey { kid });
            }
            Ok(Key {
                kid,
                bytes,
                accept_until,
            })
        };
        let current = key(current.0, current.1, None)?;
        let previous = previous
            .into_iter()
            .map(|(kid, bytes, until)| key(kid, bytes, Some(until)))
            .collect::<Result<Vec<_>, _>>()?;
        let mut kids: Vec<&str> = previous.iter().map(|k| k.kid.as_str()).collect();
        kids.push(&current.kid);
        kids.sort_unstable();
        if let Some(pair) = kids.windows(2).find(|pair| pair[0] == pair[1]) {
            return Err(KeyError::BadKid {
                kid: pair[0].to_owned(),
            });
        }
        Ok(AckKeys {
            current,
            previous,
            lifetime: Duration::days(i64::from(link_days)),
        })
    }

    /// Reads the keys the configuration names; file paths are relative to
    /// `base_dir` (the project).
    pub fn load(config: &AckConfig, base_dir: &Path) -> Result<AckKeys, KeyError> {
        let read = |kid: &str, source: &SecretSource| {
            let text = source.read(base_dir).map_err(|reason| KeyError::Secret {
                kid: kid.to_owned(),
                reason,
            })?;
            hex::decode(text.trim()).map_err(|_| KeyError::BadKey {
                kid: kid.to_owned(),
            })
        };
        let current = (config.kid.clone(), read(&config.kid, &config.key)?);
        let previous = config
            .previous
            .iter()
            .map(|p| Ok((p.kid.clone(), read(&p.kid, &p.key)?, p.until)))
            .collect::<Result<Vec<_>, KeyError>>()?;
        AckKeys::new(current, previous, config.link_days)
    }

    /// A token for `person` to act on `delivery`, valid for the configured
    /// number of days from `now`.
    pub fn sign(&self, delivery: i64, person: &str, now: DateTime<Utc>) -> String {
        // Only a clock past the year 262,000 could overflow; such a link
        // simply never expires rather than stopping the sender.
        let expires = now
            .checked_add_signed(self.lifetime)
            .unwrap_or(DateTime::<Utc>::MAX_UTC)
            .timestamp();
        let body = format!(
            "{VERSION}.{}.{delivery}.{}.{expires}",
            self.current.kid,
            URL_SAFE_NO_PAD.encode(person)
        );
        let mac = mac(&self.current.bytes, &body).finalize().into_bytes();
        format!("{body}.{}", URL_SAFE_NO_PAD.encode(mac))
    }

    /// The claims of a token this partnership signed, if it is still valid
    /// at `now`. The signature is compared in constant time.
    pub fn verify(&self, token: &str, now: DateTime<Utc>) -> Result<Claims, TokenError> {
        if token.len() > MAX_TOKEN_LEN {
            return Err(TokenError::Malformed);
        }
        let (body, mac_text) = token.rsplit_once('.').ok_or(TokenError::Malformed)?;
        let parts: Vec<&str> = body.split('.').collect();
        let [version, kid, delivery, person, expires] = parts[..] else {
            return Err(TokenError::Malformed);
        };
        if version != VERSION {
            return Err(TokenError::Malformed);
        }
        let delivery = canonical_number(delivery).ok_or(TokenError::Malformed)?;
        let expires = canonical_number(expires)
            .and_then(|s| DateTime::from_timestamp(s, 0))
            .ok_or(TokenError::Malformed)?;
        let person = URL_SAFE_NO_PAD
            .decode(person)
            .ok()
            .and_then(|bytes| String::from_utf8(bytes).ok())
            .filter(|p| !p.is_empty())
            .ok_or(TokenError::Malformed)?;
        let tag = URL_SAFE_NO_PAD
            .decode(mac_text)
            .map_err(|_| TokenError::Malformed)?;
        let key = std::iter::once(&self.current)
            .chain(&self.previous)
            .find(|k| k.kid == kid)
            .ok_or(TokenError::UnknownKey)?;
        mac(&key.bytes, body)
            .verify_slice(&tag)
            .map_err(|_| TokenError::Forged)?;
        if key.accept_until.is_some_and(|until| now >= until) {
            return Err(TokenError::RetiredKey);
        }
        if now >= expires {
            return Err(TokenError::Expired);
        }
        Ok(Claims {
            delivery,
            person,
            expires,
        })
    }
}

fn mac(key: &[u8], body: &str) -> HmacSha256 {
    let mut mac = HmacSha256::new_from_slice(key).expect("HMAC takes a key of any length");
    mac.update(body.as_bytes());
    mac
}

/// A non-negative decimal number written without sign or leading zeros, so
/// each value has exactly one spelling.
fn canonical_number(text: &str) -> Option<i64> {
    let canonical = !text.is_empty()
        && text.bytes().all(|b| b.is_ascii_digit())
        && (text == "0" || !text.starts_with('0'));
    canonical.then(|| text.parse().ok()).flatten()
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn at(y: i32, mo: u32, d: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(y, mo, d, 9, 0, 0).unwrap()
    }

    fn keys() -> AckKeys {
        AckKeys::new(
            ("k2".to_owned(), vec![2; 32]),
            vec![("k1".to_owned(), vec![1; 32], at(2026, 6, 1))],
            60,
        )
        .unwrap()
    }

    /// The token with one dot-separated field replaced.
    fn with_field(token: &str, index: usize, value: &str) -> String {
        let mut parts: Vec<&str> = token.split('.').collect();
        parts[index] = value;
        parts.join(".")
    }

    #[test]
    fn a_signed_token_verifies_to_its_delivery_and_person() {
        let now = at(2026, 3, 1);
        let token = keys().sign(42, "p-amy.o'neil", now);
        assert!(token.starts_with("v1.k2.42."));
        assert!(
            token
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))
        );
        let claims = keys().verify(&token, now).unwrap();
        assert_eq!(claims.delivery, 42);
        assert_eq!(claims.person, "p-amy.o'neil");
        assert_eq!(claims.expires, now + Duration::days(60));
    }

    #[test]
    fn a_token_with_a_forged_signature_is_refused() {
        let now = at(2026, 3, 1);
        let token = keys().sign(42, "p1", now);
        let forged = with_field(&token, 5, &URL_SAFE_NO_PAD.encode([0u8; 32]));
        assert_eq!(keys().verify(&forged, now), Err(TokenError::Forged));
        let other = AckKeys::new(("k2".to_owned(), vec![9; 32]), Vec::new(), 60).unwrap();
        let foreign = other.sign(42, "p1", now);
        assert_eq!(keys().verify(&foreign, now), Err(TokenError::Forged));
    }

    #[test]
    fn a_token_with_another_person_or_delivery_is_refused() {
        let now = at(2026, 3, 1);
        let token = keys().sign(42, "p1", now);
        let person = with_field(&token, 3, &URL_SAFE_NO_PAD.encode("p2"));
        assert_eq!(keys().verify(&person, now), Err(TokenError::Forged));
        let delivery = with_field(&token, 2, "43");
        assert_eq!(keys().verify(&delivery, now), Err(TokenError::Forged));
        let expires = with_field(&token, 4, "99999999999");
        assert_eq!(keys().verify(&expires, now), Err(TokenError::Forged));
    }

    #[test]
    fn a_token_is_refused_from_its_expiry_on() {
        let now = at(2026, 3, 1);
        let token = keys().sign(42, "p1", now);
        let last = now + Duration::days(60) - Duration::seconds(1);
        assert!(keys().verify(&token, last).is_ok());
        assert_eq!(
            keys().verify(&token, now + Duration::days(60)),
            Err(TokenError::Expired)
        );
    }

    #[test]
    fn a_token_of_a_rotated_out_key_is_accepted_until_the_key_retires() {
        let old = AckKeys::new(("k1".to_owned(), vec![1; 32]), Vec::new(), 60).unwrap();
        let token = old.sign(7, "p1", at(2026, 4, 20));
        assert_eq!(keys().verify(&token, at(2026, 5, 31)).unwrap().person, "p1");
        assert_eq!(
            keys().verify(&token, at(2026, 6, 1)),
            Err(TokenError::RetiredKey)
        );
    }

    #[test]
    fn a_token_naming_an_unknown_key_is_refused() {
        let other = AckKeys::new(("k9".to_owned(), vec![2; 32]), Vec::new(), 60).unwrap();
        let token = other.sign(42, "p1", at(2026, 3, 1));
        assert_eq!(
            keys().verify(&token, at(2026, 3, 1)),
            Err(TokenError::UnknownKey)
        );
    }

    #[test]
    fn tokens_not_in_the_expected_form_are_malformed() {
        let now = at(2026, 3, 1);
        let token = keys().sign(42, "p1", now);
        for bad in [
            "",
            "v1",
            "v2.k2.42.cDE.1.AA",
            &with_field(&token, 2, "+42"),
            &with_field(&token, 2, "042"),
            &with_field(&token, 3, ""),
            &with_field(&token, 5, "%%"),
            &format!("{token}.x"),
            &"a".repeat(600),
        ] {
            assert_eq!(keys().verify(bad, now), Err(TokenError::Malformed), "{bad}");
        }
    }

    #[test]
    fn keys_shorter_than_32_bytes_or_with_bad_ids_are_refused() {
        assert_eq!(
            AckKeys::new(("k1".to_owned(), vec![1; 31]), Vec::new(), 60).unwrap_err(),
            KeyError::BadKey {
                kid: "k1".to_owned()
            }
        );
        assert!(matches!(
            AckKeys::new(("a.b".to_owned(), vec![1; 32]), Vec::new(), 60),
            Err(KeyError::BadKid { .. })
        ));
        assert!(matches!(
            AckKeys::new(
                ("k1".to_owned(), vec![1; 32]),
                vec![("k1".to_owned(), vec![2; 32], at(2026, 1, 1))],
                60
            ),
            Err(KeyError::BadKid { .. })
        ));
    }

    #[test]
    fn a_link_signed_at_the_end_of_time_never_expires_rather_than_panicking() {
        let keys = keys();
        let token = keys.sign(7, "p-sam", DateTime::<Utc>::MAX_UTC);
        assert_eq!(
            keys.verify(&token, DateTime::<Utc>::MAX_UTC - Duration::days(1))
                .map(|c| c.delivery),
            Ok(7)
        );
    }

    #[test]
    fn link_days_past_a_year_are_refused_with_what_to_write() {
        for days in [0, 366, u32::MAX] {
            let err = AckKeys::new(("k1".to_owned(), vec![1; 32]), Vec::new(), days)
                .unwrap_err()
                .to_string();
            assert_eq!(
                err,
                format!(
                    "[ack] link_days must be between 1 and 365, not {days}; write e.g. link_days = 60"
                )
            );
        }
    }

    #[test]
    fn keys_load_from_hex_in_files_and_never_show_in_debug_output() {
        let dir = tempfile::tempdir().unwrap();
        let hex_key = "ab".repeat(32);
        std::fs::write(dir.path().join("ack.key"), format!("{hex_key}\n")).unwrap();
        std::fs::write(dir.path().join("short.key"), "abcd\n").unwrap();
        let config: AckConfig = toml::from_str(
            "key = { file = \"ack.key\" }\nbase_url = \"https://l.example.org/\"\n\
             [[previous]]\nkey = { file = \"ack.key\" }\nkid = \"k0\"\nuntil = \"2026-06-01T00:00:00Z\"\n",
        )
        .unwrap();
        assert_eq!(config.link_days, 60);
        assert_eq!(config.link("t"), "https://l.example.org/ack/t");
        let keys = AckKeys::load(&config, dir.path()).unwrap();
        let shown = format!("{keys:?}");
        assert!(
            !shown.contains(&hex_key) && !shown.contains("171"),
            "{shown}"
        );
        let short = AckConfig {
            key: SecretSource::File("short.key".into()),
            ..config
        };
        let err = AckKeys::load(&short, dir.path()).unwrap_err().to_string();
        assert!(
            err.contains("at least 32 bytes") && !err.contains("abcd"),
            "{err}"
        );
    }

    #[test]
    fn the_config_refuses_unknown_fields() {
        let err = toml::from_str::<AckConfig>(
            "key = { env = \"X\" }\nbase_url = \"https://x\"\nsecret = \"inline\"\n",
        )
        .unwrap_err();
        assert!(err.to_string().contains("unknown field"), "{err}");
    }
}
