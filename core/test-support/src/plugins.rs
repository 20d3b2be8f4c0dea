//! Finding the plugin libraries cargo built for a test or bench.

use std::env::consts::{DLL_PREFIX, DLL_SUFFIX};
use std::path::PathBuf;

/// The library of the plugin crate `crate_name` (e.g.
/// `cascade-plugin-discord`, `cascade-testplugin-echo`) that cargo built
/// next to the running test or bench binary: in its folder
/// (`target/<profile>/deps`) or one above it.
///
/// # Panics
/// If no such library was built; the crate must be a dependency (or
/// dev-dependency) of the package under test, so that cargo builds it.
pub fn plugin_library(crate_name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("a test knows its own path");
    let name = format!("{DLL_PREFIX}{}{DLL_SUFFIX}", crate_name.replace('-', "_"));
    exe.ancestors()
        .skip(1)
        .map(|dir| dir.join(&name))
        .find(|path| path.is_file())
        .unwrap_or_else(|| panic!("{name} was not built next to {}", exe.display()))
}
