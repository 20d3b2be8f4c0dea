//! One `cascade serve` per project store. Two would each claim, send and
//! record from the same outbox; with SQLite there is one machine, so an
//! exclusive lock on a file next to the database (`<store>.serve-lock`)
//! says who serves. The operating system drops the lock when its process
//! ends however it ends (SIGKILL too), so a serve that holds it knows no
//! other serve is alive, and may take back at once the rows a killed one
//! had leased (see `Runner::take_back_leases`) instead of leaving them for
//! the whole lease.

use crate::problems::Problems;
use std::fs::{File, OpenOptions, TryLockError};
use std::io::{Read, Seek, Write};
use std::path::{Path, PathBuf};

/// The lock held for the life of a serve; dropped, it is released.
#[derive(Debug)]
pub struct ServeLock {
    path: PathBuf,
    _file: File,
}

impl ServeLock {
    /// The lock file of the store at `store`.
    pub fn path_for(store: &Path) -> PathBuf {
        let mut name = store.as_os_str().to_owned();
        name.push(".serve-lock");
        PathBuf::from(name)
    }

    /// Takes the serve lock of the store at `store`, or says who holds it
    /// and what to do. The lock file keeps the holder's process id and
    /// start time, for that message.
    pub fn take(store: &Path) -> Result<ServeLock, Problems> {
        let path = Self::path_for(store);
        if let Some(folder) = path.parent().filter(|f| !f.as_os_str().is_empty()) {
            // The store's folder, made as opening the store would.
            let _ = std::fs::create_dir_all(folder);
        }
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .map_err(|e| {
                Problems::one(format!(
                    "cannot open the serve lock {}: {e}\n  help: cascade serve needs to write in the store's folder",
                    path.display()
                ))
            })?;
        match file.try_lock() {
            Ok(()) => {}
            Err(TryLockError::WouldBlock) => {
                let mut holder = String::new();
                let _ = file.read_to_string(&mut holder);
                let holder = holder.trim();
                return Err(Problems::one(format!(
                    "another cascade serve is already running on this project's store ({}{}); two would send the same messages twice\n  help: stop the other one first (Ctrl-C, or stop its service), or point this one at another project",
                    path.display(),
                    if holder.is_empty() {
                        String::new()
                    } else {
                        format!(": {holder}")
                    }
                )));
            }
            Err(TryLockError::Error(e)) => {
                return Err(Problems::one(format!(
                    "cannot lock {}: {e}\n  help: keep the store on a local disk that supports file locks",
                    path.display()
                )));
            }
        }
        let holder = format!(
            "process {}, started {}\n",
            std::process::id(),
            chrono::Utc::now().format("%Y-%m-%d %H:%M:%S UTC")
        );
        // What the last holder wrote is replaced; a failure here only loses
        // the detail of a later refusal, not the lock.
        let _ = file
            .set_len(0)
            .and_then(|()| file.rewind())
            .and_then(|()| file.write_all(holder.as_bytes()));
        Ok(ServeLock { path, _file: file })
    }

    /// Where the lock is.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_serve_lock_on_one_store_is_refused_until_the_first_is_dropped() {
        let dir = tempfile::tempdir().unwrap();
        let store = dir.path().join("cascade.db");
        let first = ServeLock::take(&store).unwrap();
        let refused = ServeLock::take(&store).unwrap_err().to_string();
        assert!(
            refused.contains("another cascade serve is already running")
                && refused.contains(&format!("process {}", std::process::id()))
                && refused.contains("cascade.db.serve-lock")
                && refused.contains("help: stop the other one first"),
            "{refused}"
        );
        drop(first);
        ServeLock::take(&store).unwrap();
    }
}
