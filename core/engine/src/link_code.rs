//! One-time link codes: a person sends one to a bot to link their chat
//! account to themselves. A code has about 2^40 values, few enough to try
//! them all offline against a plain hash, so the store keeps only an
//! HMAC-SHA-256 of each under a key kept in its own file outside the
//! database (0600, made on first use): a copy of the database alone gives
//! no code away.
//!
//! Codes issued by an older cascade were kept as plain SHA-256; those are
//! still accepted until they expire (a day after issue), so a code someone
//! was just given keeps working across an upgrade.

use cascade_store::{Evidence, StoreError};
use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};

/// Link codes are short enough to type on a phone and avoid look-alikes.
const CODE_ALPHABET: &[u8] = b"ABCDEFGHJKMNPQRSTUVWXYZ23456789";
const CODE_LENGTH: usize = 8;
/// How long a link code may be used.
pub const CODE_LIFETIME_MS: i64 = 24 * 60 * 60 * 1000;
/// Key bytes: the output size of SHA-256.
const KEY_BYTES: usize = 32;

/// Why the link-code key could not be read or made. Never holds key bytes.
#[derive(Debug, thiserror::Error)]
pub enum LinkCodeKeyError {
    #[error("{path}: cannot make the link-code key: {source}\n  help: check that cascade can write to {folder}", path = path.display(), folder = path.parent().unwrap_or(path).display())]
    Create {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}: cannot read the link-code key: {source}", path = path.display())]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}: the link-code key must be {} hex digits on one line\n  help: delete the file and cascade makes a new key; link codes issued under the old one stop working, so issue new ones with `cascade link-codes`", KEY_BYTES * 2, path = path.display())]
    Malformed { path: PathBuf },
}

/// The key link codes are hashed under. Its bytes are never shown.
#[derive(Clone)]
pub struct LinkCodeKey {
    key: [u8; KEY_BYTES],
}

impl std::fmt::Debug for LinkCodeKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("LinkCodeKey(..)")
    }
}

impl LinkCodeKey {
    pub fn new(key: [u8; KEY_BYTES]) -> LinkCodeKey {
        LinkCodeKey { key }
    }

    /// The key in the file at `path`, made (0600, in a 0700 folder where the
    /// folder is new) if there is none yet. A key file others could read is
    /// restricted to its owner, with a warning.
    pub fn load_or_create(path: &Path) -> Result<LinkCodeKey, LinkCodeKeyError> {
        let create = |source| LinkCodeKeyError::Create {
            path: path.to_owned(),
            source,
        };
        if !path.exists() {
            let folder = path
                .parent()
                .filter(|p| !p.as_os_str().is_empty())
                .unwrap_or(Path::new("."));
            cascade_model::private_file::create_dir(folder).map_err(create)?;
            let mut key = [0u8; KEY_BYTES];
            getrandom::fill(&mut key).expect("the operating system provides randomness");
            // Written whole to a private file, then put in place only if no
            // other cascade process made one meanwhile, so none ever reads
            // half a key and all share the first.
            let mut builder = tempfile::Builder::new();
            builder.prefix(".link-code-key-");
            #[cfg(unix)]
            builder.permissions(std::os::unix::fs::PermissionsExt::from_mode(
                cascade_model::private_file::OWNER_ONLY,
            ));
            let mut fresh = builder.tempfile_in(folder).map_err(create)?;
            std::io::Write::write_all(&mut fresh, format!("{}\n", hex::encode(key)).as_bytes())
                .map_err(create)?;
            fresh.as_file().sync_all().map_err(create)?;
            match fresh.persist_noclobber(path) {
                Ok(_) => return Ok(LinkCodeKey { key }),
                Err(e) if e.error.kind() == std::io::ErrorKind::AlreadyExists => {}
                Err(e) => return Err(create(e.error)),
            }
        }
        let read = |source| LinkCodeKeyError::Read {
            path: path.to_owned(),
            source,
        };
        cascade_model::private_file::restrict(path).map_err(read)?;
        let text = std::fs::read_to_string(path).map_err(read)?;
        let malformed = || LinkCodeKeyError::Malformed {
            path: path.to_owned(),
        };
        let bytes = hex::decode(text.trim()).map_err(|_| malformed())?;
        let key = <[u8; KEY_BYTES]>::try_from(bytes).map_err(|_| malformed())?;
        Ok(LinkCodeKey { key })
    }

    /// The hash the store keeps for a code, compared without case, spaces or
    /// dashes, as people type them.
    pub fn hash(&self, code: &str) -> String {
        let mut mac = Hmac::<Sha256>::new_from_slice(&self.key).expect("HMAC takes any key length");
        mac.update(normal(code).as_bytes());
        hex::encode(mac.finalize().into_bytes())
    }

    /// A new random code, and the hash the store keeps.
    pub fn new_code(&self) -> (String, String) {
        let mut bytes = [0u8; CODE_LENGTH];
        getrandom::fill(&mut bytes).expect("the operating system provides randomness");
        let code: String = bytes
            .iter()
            .map(|b| CODE_ALPHABET[usize::from(*b) % CODE_ALPHABET.len()] as char)
            .collect();
        let hash = self.hash(&code);
        (code, hash)
    }
}

fn normal(code: &str) -> String {
    code.chars()
        .filter(|c| !c.is_whitespace() && *c != '-')
        .collect::<String>()
        .to_uppercase()
}

/// How an older cascade kept a code: plain SHA-256. Only looked up for rows
/// it wrote, which expire within a day of the upgrade.
pub fn legacy_hash(code: &str) -> String {
    hex::encode(Sha256::digest(normal(code).as_bytes()))
}

/// Issues a code for a person, valid for 24 hours from `now`.
pub async fn issue_code<S: Evidence>(
    store: &S,
    key: &LinkCodeKey,
    person_id: &str,
    now: i64,
) -> Result<String, StoreError> {
    let (code, hash) = key.new_code();
    store
        .create_link_code(person_id, &hash, now, now + CODE_LIFETIME_MS)
        .await?;
    Ok(code)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_eight_unambiguous_characters_and_differ() {
        let key = LinkCodeKey::new([1; KEY_BYTES]);
        let (a, hash_a) = key.new_code();
        let (b, _) = key.new_code();
        assert_eq!(a.len(), 8);
        assert!(a.bytes().all(|c| CODE_ALPHABET.contains(&c)));
        assert!(!a.contains('O') && !a.contains('0') && !a.contains('I') && !a.contains('1'));
        assert_ne!(a, b);
        assert_eq!(hash_a, key.hash(&a));
    }

    #[test]
    fn a_code_typed_in_lower_case_with_spaces_still_matches() {
        let key = LinkCodeKey::new([1; KEY_BYTES]);
        assert_eq!(key.hash("abcd efgh"), key.hash("ABCDEFGH"));
        assert_eq!(key.hash("ABCD-EFGH"), key.hash("ABCDEFGH"));
        assert_ne!(key.hash("ABCDEFGH"), key.hash("ABCDEFGJ"));
        assert_eq!(legacy_hash("abcd-efgh"), legacy_hash("ABCDEFGH"));
    }

    #[test]
    fn the_kept_hash_is_keyed_not_a_plain_sha256_of_the_code() {
        let key = LinkCodeKey::new([1; KEY_BYTES]);
        let other = LinkCodeKey::new([2; KEY_BYTES]);
        let (code, hash) = key.new_code();
        assert_ne!(hash, hex::encode(Sha256::digest(code.as_bytes())));
        assert_ne!(hash, other.hash(&code));
    }

    #[test]
    fn the_key_is_made_once_owner_only_and_read_back_the_same() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(".cascade/link-code.key");
        let made = LinkCodeKey::load_or_create(&path).unwrap();
        let read = LinkCodeKey::load_or_create(&path).unwrap();
        assert_eq!(made.hash("ABCDEFGH"), read.hash("ABCDEFGH"));
        assert_eq!(std::fs::read_to_string(&path).unwrap().trim().len(), 64);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode, 0o600);
        }
        assert_eq!(format!("{made:?}"), "LinkCodeKey(..)");
        assert_eq!(
            std::fs::read_dir(path.parent().unwrap()).unwrap().count(),
            1,
            "no temporary file is left behind"
        );
    }

    #[test]
    fn a_damaged_key_file_is_named_with_how_to_replace_it() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("link-code.key");
        std::fs::write(&path, "not hex\n").unwrap();
        let err = LinkCodeKey::load_or_create(&path).unwrap_err().to_string();
        assert!(
            err.starts_with(&format!(
                "{}: the link-code key must be 64 hex digits",
                path.display()
            )),
            "{err}"
        );
        assert!(err.contains("delete the file"), "{err}");
    }
}
