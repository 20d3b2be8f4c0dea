//! Finding plugin files: `<prefix>cascade_plugin_<name><suffix>` (for example
//! `libcascade_plugin_email.so`) in the configured folders, then next to the
//! `cascade` binary, so a checkout's `target/` works without configuration.

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
}
