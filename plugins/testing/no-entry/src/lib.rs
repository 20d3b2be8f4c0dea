//! Test library that is not a plugin: it exports a C symbol, but not
//! `cascade_plugin_entry`, so the host must refuse to load it.

/// Stands in for whatever a stray shared library exports.
#[unsafe(no_mangle)]
pub extern "C" fn cascade_not_a_plugin() -> u32 {
    1
}
