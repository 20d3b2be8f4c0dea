//! Who is signed in: passwords (argon2id), one-time set-up tokens, session
//! ids and CSRF tokens (random, kept in the store only as SHA-256), the
//! cookies that carry them, and the roles and what each may do.

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};
use axum::http::HeaderMap;
use sha2::{Digest, Sha256};
use std::sync::OnceLock;

/// The session cookie; `Path=/console`.
pub const SESSION_COOKIE: &str = "cascade_console";
/// The cookie a form shown before sign-in is checked against (double submit).
pub const FORM_COOKIE: &str = "cascade_console_form";

/// Shortest and longest password accepted.
pub const PASSWORD_MIN: usize = 12;
pub const PASSWORD_MAX: usize = 256;

/// A console role: what its holder may see and do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// Users, settings and the audit log.
    Admin,
    /// Content, directory and rollouts.
    Editor,
    /// Approves items.
    Approver,
    /// Reads dashboards and reports.
    Viewer,
    /// Their own teams' coverage and cascade confirmations.
    Champion,
}

impl Role {
    pub const ALL: [Role; 5] = [
        Role::Admin,
        Role::Editor,
        Role::Approver,
        Role::Viewer,
        Role::Champion,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Admin => "admin",
            Role::Editor => "editor",
            Role::Approver => "approver",
            Role::Viewer => "viewer",
            Role::Champion => "champion",
        }
    }

    pub fn parse(text: &str) -> Option<Role> {
        Role::ALL.into_iter().find(|r| r.as_str() == text)
    }

    /// Whether the role reads the partnership-wide pages (home, content,
    /// rollouts). A champion sees only their own teams.
    pub fn reads_everything(self) -> bool {
        self != Role::Champion
    }

    /// Writes content and rollouts, starts, pauses, resumes and cancels.
    pub fn edits(self) -> bool {
        self == Role::Editor
    }

    pub fn approves(self) -> bool {
        self == Role::Approver
    }

    /// Sees their own teams' coverage and records team briefings.
    pub fn champions(self) -> bool {
        self == Role::Champion
    }

    pub fn administers(self) -> bool {
        self == Role::Admin
    }
}

/// 32 random bytes as 64 hex digits.
pub fn random_token() -> String {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).expect("the operating system provides randomness");
    hex::encode(bytes)
}

/// SHA-256 as hex: how the store keeps tokens and session ids.
pub fn sha256_hex(text: &str) -> String {
    hex::encode(Sha256::digest(text.as_bytes()))
}

/// argon2id with the OWASP-recommended parameters (19 MiB, 2 passes).
fn argon2() -> Argon2<'static> {
    Argon2::new(Algorithm::Argon2id, Version::V0x13, Params::default())
}

/// A password's argon2id hash as a PHC string, with a fresh salt.
pub fn hash_password(password: &str) -> String {
    let mut salt = [0u8; 16];
    getrandom::fill(&mut salt).expect("the operating system provides randomness");
    let salt = SaltString::encode_b64(&salt).expect("16 bytes make a valid salt");
    argon2()
        .hash_password(password.as_bytes(), &salt)
        .expect("argon2id hashes any password within the length limit")
        .to_string()
}

/// Whether `password` matches `hash`. Without a hash (no such user, or not
/// set up) a hash is still checked, so the answer takes the same time.
pub fn verify_password(hash: Option<&str>, password: &str) -> bool {
    static DUMMY: OnceLock<String> = OnceLock::new();
    let dummy = DUMMY.get_or_init(|| hash_password("not a password anyone has"));
    let (hash, real) = match hash {
        Some(h) => (h, true),
        None => (dummy.as_str(), false),
    };
    let Ok(parsed) = PasswordHash::new(hash) else {
        return false;
    };
    argon2()
        .verify_password(password.as_bytes(), &parsed)
        .is_ok()
        && real
}

/// Equal strings compared in time independent of where they differ.
pub fn same(a: &str, b: &str) -> bool {
    a.len() == b.len()
        && a.bytes()
            .zip(b.bytes())
            .fold(0u8, |acc, (x, y)| acc | (x ^ y))
            == 0
}

/// A cookie's value from the request's `Cookie` headers.
pub fn cookie(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(axum::http::header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(n, _)| *n == name)
        .map(|(_, v)| v.to_owned())
}

/// A `Set-Cookie` value: HttpOnly, SameSite=Strict, for `/console`, and
/// Secure when the console is served over https.
pub fn set_cookie(name: &str, value: &str, secure: bool) -> String {
    format!(
        "{name}={value}; Path=/console; HttpOnly; SameSite=Strict{}",
        if secure { "; Secure" } else { "" }
    )
}

/// A `Set-Cookie` value that removes the cookie.
pub fn clear_cookie(name: &str, secure: bool) -> String {
    format!(
        "{name}=; Path=/console; HttpOnly; SameSite=Strict; Max-Age=0{}",
        if secure { "; Secure" } else { "" }
    )
}

/// What is wrong with a new password, if anything.
pub fn password_problem(password: &str, confirm: &str) -> Option<&'static str> {
    let length = password.chars().count();
    if length < PASSWORD_MIN {
        Some("Enter a password of at least 12 characters")
    } else if length > PASSWORD_MAX {
        Some("Enter a password of at most 256 characters")
    } else if password != confirm {
        Some("The passwords do not match; enter the same password twice")
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_password_verifies_only_against_its_own_hash() {
        let hash = hash_password("correct horse battery");
        assert!(hash.starts_with("$argon2id$"));
        assert!(verify_password(Some(&hash), "correct horse battery"));
        assert!(!verify_password(Some(&hash), "correct horse batterY"));
        assert!(!verify_password(None, "not a password anyone has"));
    }

    #[test]
    fn cookies_are_read_from_any_cookie_header() {
        let mut headers = HeaderMap::new();
        headers.append("cookie", "a=1; cascade_console=abc".parse().unwrap());
        headers.append("cookie", "b=2".parse().unwrap());
        assert_eq!(cookie(&headers, SESSION_COOKIE).as_deref(), Some("abc"));
        assert_eq!(cookie(&headers, "b").as_deref(), Some("2"));
        assert_eq!(cookie(&headers, "c"), None);
    }

    #[test]
    fn tokens_compare_equal_only_when_identical() {
        assert!(same("abc", "abc"));
        assert!(!same("abc", "abd"));
        assert!(!same("abc", "abcd"));
    }
}
