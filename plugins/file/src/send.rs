//! One send's I/O, synchronous and without the ABI: check the file name,
//! write the document to a temporary file in the folder and rename it over
//! `<delivery_id>.json`, so a reader never sees half a message; with
//! `journal`, append the delivery's id to `journal.log`.

use cascade_plugin_api::{SendRequest, SendResult};
use std::io::Write;
use std::path::Path;

use crate::format::{file_name_for, message_document};

/// Writes one message to `dir` as the file channel does, and says how it went:
/// `Delivered` with the file name, `Failed` for a delivery id that cannot
/// name a file, `Retry` for an I/O error. Writing the same delivery twice
/// replaces the file. No failure is injected here.
pub fn deliver_to_dir(dir: &Path, request: &SendRequest) -> SendResult {
    let file_name = match file_name_for(&request.delivery_id) {
        Ok(name) => name,
        Err(reason) => {
            return SendResult::Failed {
                reason,
                unreachable: false,
            };
        }
    };
    let path = dir.join(&file_name);
    match write_atomically(dir, &path, &message_document(request)) {
        Ok(()) => SendResult::Delivered {
            provider_id: Some(file_name),
        },
        Err(error) => SendResult::Retry {
            reason: format!("could not write {}: {error}", path.display()),
            retry_after_ms: None,
        },
    }
}

fn write_atomically(dir: &Path, path: &Path, contents: &[u8]) -> std::io::Result<()> {
    // A leading dot keeps the temporary file out of the names a delivery id
    // can take; a random middle keeps concurrent writes of one id apart.
    // Without fsync: the rename already makes the write all-or-nothing for
    // readers, and these files are for dry runs, not for durable records.
    let mut temporary = tempfile::Builder::new()
        .prefix(".")
        .suffix(".tmp")
        .tempfile_in(dir)?;
    temporary.write_all(contents)?;
    temporary.persist(path).map_err(|error| error.error)?;
    Ok(())
}

/// Removes the temporary files a write cut short (the process killed
/// between creating one and renaming it into place) left in `dir`: the
/// names [`write_atomically`] makes, a leading dot and `.tmp`. A write
/// under way in another process loses its file and is retried. Returns
/// how many were removed.
pub fn sweep_temporary(dir: &Path) -> usize {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    entries
        .filter_map(Result::ok)
        .filter(|entry| {
            let name = entry.file_name();
            let name = name.to_string_lossy();
            name.starts_with('.')
                && name.ends_with(".tmp")
                && entry.file_type().is_ok_and(|t| t.is_file())
        })
        .filter(|entry| std::fs::remove_file(entry.path()).is_ok())
        .count()
}

/// Appends a written delivery's id to `journal.log`: one `write` of one
/// line on a file opened for appending, so concurrent writers do not mix.
pub fn append_to_journal(dir: &Path, delivery_id: &str) -> Result<(), String> {
    let path = dir.join("journal.log");
    let line = format!("{delivery_id}\n");
    let written = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&path)
        .and_then(|mut file| file.write_all(line.as_bytes()));
    written.map_err(|error| format!("could not append to {}: {error}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::format::tests::request;
    use serde_json::Value;

    fn files_in(dir: &Path) -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .map(|entry| entry.unwrap().file_name().into_string().unwrap())
            .collect();
        names.sort();
        names
    }

    #[test]
    fn a_message_is_written_to_its_delivery_id_and_reported_delivered() {
        let dir = tempfile::tempdir().unwrap();
        let result = deliver_to_dir(dir.path(), &request("d-1"));
        assert_eq!(
            result,
            SendResult::Delivered {
                provider_id: Some("d-1.json".to_owned())
            }
        );
        let document: Value =
            serde_json::from_slice(&std::fs::read(dir.path().join("d-1.json")).unwrap()).unwrap();
        assert_eq!(document["delivery_id"], "d-1");
        assert_eq!(files_in(dir.path()), ["d-1.json"]);
    }

    #[test]
    fn writing_the_same_delivery_twice_leaves_one_file_with_the_latest_message() {
        let dir = tempfile::tempdir().unwrap();
        let mut second = request("d-1");
        second.message.subject = Some("Updated".to_owned());
        deliver_to_dir(dir.path(), &request("d-1"));
        let result = deliver_to_dir(dir.path(), &second);
        assert!(matches!(result, SendResult::Delivered { .. }));
        assert_eq!(files_in(dir.path()), ["d-1.json"]);
        let document: Value =
            serde_json::from_slice(&std::fs::read(dir.path().join("d-1.json")).unwrap()).unwrap();
        assert_eq!(document["subject"], "Updated");
    }

    #[test]
    fn a_temporary_file_left_by_a_cut_short_write_is_swept_and_messages_stay() {
        let dir = tempfile::tempdir().unwrap();
        deliver_to_dir(dir.path(), &request("d-1"));
        std::fs::write(dir.path().join(".a1B2c3.tmp"), "half a message").unwrap();
        std::fs::write(dir.path().join("notes.tmp"), "someone's own file").unwrap();
        assert_eq!(sweep_temporary(dir.path()), 1);
        assert_eq!(files_in(dir.path()), ["d-1.json", "notes.tmp"]);
    }

    #[test]
    fn an_unsafe_delivery_id_fails_permanently_and_writes_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let result = deliver_to_dir(dir.path(), &request("../d-1"));
        assert!(matches!(result, SendResult::Failed { .. }), "{result:?}");
        assert!(files_in(dir.path()).is_empty());
    }

    #[test]
    fn a_folder_that_cannot_be_written_asks_for_a_retry_naming_the_path() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("not-created");
        match deliver_to_dir(&missing, &request("d-1")) {
            SendResult::Retry {
                reason,
                retry_after_ms: None,
            } => assert!(reason.contains("not-created"), "{reason}"),
            other => panic!("expected a retry, got {other:?}"),
        }
    }
}
