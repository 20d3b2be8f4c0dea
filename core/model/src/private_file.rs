//! Files only their owner may read: the store's database with its WAL and
//! shared-memory files, and the keys cascade makes. Each is created with mode
//! 0600 from its first moment, never written first and restricted after (a
//! reader could open it in between and keep the handle); a folder made for
//! them is 0700. One found open to others is restricted, with a warning
//! naming it.

use std::fs::OpenOptions;
use std::io::{self, Write};
use std::path::Path;

/// Owner read and write, nothing for anyone else.
pub const OWNER_ONLY: u32 = 0o600;

/// Creates `dir` and any missing parents, each new one only its owner may
/// enter (0700). Folders that exist are left as they are.
pub fn create_dir(dir: &Path) -> io::Result<()> {
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    builder.create(dir)
}

/// Creates `path` empty, 0600, unless something is there already. True when
/// it was created.
pub fn create_empty(path: &Path) -> io::Result<bool> {
    match new_file().open(path) {
        Ok(_) => Ok(true),
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => Ok(false),
        Err(e) => Err(e),
    }
}

/// Writes a new file that is 0600 from the moment it exists; fails if `path`
/// exists.
pub fn write_new(path: &Path, contents: &[u8]) -> io::Result<()> {
    let mut file = new_file().open(path)?;
    file.write_all(contents)?;
    file.sync_all()
}

fn new_file() -> OpenOptions {
    let mut options = OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, OWNER_ONLY);
    options
}

/// Takes every permission of others (group and world) off a file that has
/// any, and warns naming it. True when it had to; a missing file is left
/// alone.
pub fn restrict(path: &Path) -> io::Result<bool> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = match std::fs::metadata(path) {
            Ok(metadata) => metadata.permissions().mode() & 0o7777,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(false),
            Err(e) => return Err(e),
        };
        if mode & 0o077 == 0 {
            return Ok(false);
        }
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode & 0o700))?;
        tracing::warn!(
            path = %path.display(),
            was = format!("{mode:o}"),
            now = format!("{:o}", mode & 0o700),
            "other users could read this file; it is now its owner's only"
        );
        Ok(true)
    }
    #[cfg(not(unix))]
    {
        let _ = path;
        Ok(false)
    }
}

#[cfg(all(test, unix))]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn mode(path: &Path) -> u32 {
        std::fs::metadata(path).unwrap().permissions().mode() & 0o777
    }

    #[test]
    fn a_new_file_is_owner_only_and_an_existing_one_is_never_overwritten() {
        let dir = tempfile::tempdir().unwrap();
        let key = dir.path().join("made/for/keys/key");
        create_dir(key.parent().unwrap()).unwrap();
        write_new(&key, b"secret\n").unwrap();
        assert_eq!(mode(&key), 0o600);
        assert_eq!(mode(key.parent().unwrap()), 0o700);
        assert_eq!(
            write_new(&key, b"other\n").unwrap_err().kind(),
            io::ErrorKind::AlreadyExists
        );
        assert!(!create_empty(&key).unwrap());
        assert_eq!(std::fs::read(&key).unwrap(), b"secret\n");
    }

    #[test]
    fn a_file_others_can_read_is_restricted_to_its_owner() {
        let dir = tempfile::tempdir().unwrap();
        let open = dir.path().join("cascade.db");
        std::fs::write(&open, "").unwrap();
        std::fs::set_permissions(&open, std::fs::Permissions::from_mode(0o664)).unwrap();
        assert!(restrict(&open).unwrap());
        assert_eq!(mode(&open), 0o600);
        assert!(!restrict(&open).unwrap());
        assert!(!restrict(&dir.path().join("missing")).unwrap());
    }
}
