//! Finding plugin files: `<prefix>cascade_plugin_<name><suffix>` (for example
//! `libcascade_plugin_email.so`) in the configured folders, then next to the
//! `cascade` binary, so a checkout's `target/` works without configuration.
//! Also which of those folders and files others could write to.

use super::PluginError;
use std::env::consts::{DLL_PREFIX, DLL_SUFFIX};
use std::path::{Path, PathBuf};

/// A candidate plugin library, not yet read or loaded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PluginFile {
    pub path: PathBuf,
}

/// Whether a file name follows the plugin naming convention.
pub fn is_plugin_file_name(name: &str) -> bool {
    name.strip_prefix(DLL_PREFIX)
        .and_then(|n| n.strip_suffix(DLL_SUFFIX))
        .and_then(|n| n.strip_prefix("cascade_plugin_"))
        .is_some_and(|n| !n.is_empty())
}

/// The folders searched: the configured ones (relative to `base`), then the
/// binary's own folder and, in a cargo `target/` folder, its `deps/`, where
/// `cargo run` leaves the plugin libraries it builds.
pub fn default_search_dirs(configured: &[PathBuf], base: &Path) -> Vec<PathBuf> {
    let mut dirs: Vec<PathBuf> = configured.iter().map(|d| base.join(d)).collect();
    if let Some(exe_dir) = std::env::current_exe()
        .ok()
        .and_then(|e| e.parent().map(Path::to_owned))
    {
        let deps = exe_dir.join("deps");
        dirs.push(exe_dir);
        if deps.is_dir() {
            dirs.push(deps);
        }
    }
    dirs
}

/// Plugin files in `dirs`, in folder order then name order. A file name seen
/// in an earlier folder hides the same name in a later one.
pub fn discover(dirs: &[PathBuf]) -> Vec<PluginFile> {
    let mut found: Vec<PluginFile> = Vec::new();
    for dir in dirs {
        let Ok(entries) = std::fs::read_dir(dir) else {
            continue;
        };
        let mut here: Vec<PathBuf> = entries
            .flatten()
            .map(|e| e.path())
            .filter(|p| {
                p.is_file()
                    && p.file_name()
                        .and_then(|n| n.to_str())
                        .is_some_and(is_plugin_file_name)
            })
            .collect();
        here.sort();
        for path in here {
            if !found.iter().any(|f| f.path.file_name() == path.file_name()) {
                found.push(PluginFile { path });
            }
        }
    }
    found
}

/// The plugin folders (those that exist) and plugin files that a group or
/// every user may write to: anyone who can write there can put code in place
/// that cascade then runs as itself (a pin only guards the files it names).
pub fn writable_by_others(dirs: &[PathBuf], files: &[PluginFile]) -> Vec<PluginError> {
    let mut found = Vec::new();
    let folders = dirs.iter().map(|d| (d, "the plugin folder"));
    let libraries = files.iter().map(|f| (&f.path, "the plugin file"));
    for (path, what) in folders.chain(libraries) {
        if let Some(mode) = others_may_write(path)
            && !found
                .iter()
                .any(|e| matches!(e, PluginError::WritableByOthers { path: p, .. } if p == path))
        {
            found.push(PluginError::WritableByOthers {
                path: path.clone(),
                what,
                mode,
            });
        }
    }
    found
}

/// The permission bits of `path` (following links, as loading does) when a
/// group or every user may write to it.
#[cfg(unix)]
fn others_may_write(path: &Path) -> Option<u32> {
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(path).ok()?.permissions().mode() & 0o7777;
    (mode & 0o022 != 0).then_some(mode)
}

#[cfg(not(unix))]
fn others_may_write(_: &Path) -> Option<u32> {
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn name(stem: &str) -> String {
        format!("{DLL_PREFIX}{stem}{DLL_SUFFIX}")
    }

    #[test]
    fn only_files_named_like_plugins_are_found() {
        assert!(is_plugin_file_name(&name("cascade_plugin_email")));
        assert!(!is_plugin_file_name(&name("cascade_plugin_")));
        assert!(!is_plugin_file_name(&name("cascade_testplugin_panic")));
        assert!(!is_plugin_file_name("libcascade_plugin_email.rlib"));
        assert!(!is_plugin_file_name("README.md"));
    }

    #[test]
    fn an_earlier_folder_hides_the_same_file_name_in_a_later_one() {
        let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        for dir in [&a, &b] {
            std::fs::write(dir.path().join(name("cascade_plugin_file")), "x").unwrap();
        }
        std::fs::write(b.path().join(name("cascade_plugin_email")), "x").unwrap();
        std::fs::write(b.path().join("notes.txt"), "x").unwrap();
        let found = discover(&[
            a.path().to_owned(),
            b.path().to_owned(),
            PathBuf::from("/nonexistent"),
        ]);
        let paths: Vec<_> = found.into_iter().map(|f| f.path).collect();
        assert_eq!(
            paths,
            vec![
                a.path().join(name("cascade_plugin_file")),
                b.path().join(name("cascade_plugin_email"))
            ]
        );
    }

    #[cfg(unix)]
    #[test]
    fn folders_and_files_others_can_write_to_are_named_and_private_ones_are_not() {
        use std::os::unix::fs::PermissionsExt;
        let (shared, private) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        let set = |path: &Path, mode: u32| {
            std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap()
        };
        set(shared.path(), 0o777);
        set(private.path(), 0o755);
        let group_writable = private.path().join(name("cascade_plugin_file"));
        let owner_only = private.path().join(name("cascade_plugin_email"));
        std::fs::write(&group_writable, "x").unwrap();
        std::fs::write(&owner_only, "x").unwrap();
        set(&group_writable, 0o664);
        set(&owner_only, 0o644);
        let dirs = [shared.path().to_owned(), private.path().to_owned()];
        let found = writable_by_others(&dirs, &discover(&dirs));
        let named: Vec<(PathBuf, u32)> = found
            .into_iter()
            .map(|e| match e {
                PluginError::WritableByOthers { path, mode, .. } => (path, mode),
                other => panic!("{other}"),
            })
            .collect();
        assert_eq!(
            named,
            vec![(shared.path().to_owned(), 0o777), (group_writable, 0o664)]
        );
    }
}
