//! Loading one plugin library: hash it, check the pin, load the verified
//! bytes, find the entry symbol, check the ABI version, read the manifest.
//! A pinned file is copied to a private file and loaded from there, so the
//! bytes that run are the bytes that were hashed.

use super::{PluginError, PluginFile};
use cascade_plugin_api::{
    ABI_VERSION, ABI_VERSION_2, CallFn, ENTRY_SYMBOL, EntryFn, HostCallbacks, Manifest,
    PluginTable, PluginTableV2, StartV3Fn, WriteFn,
};
use sha2::{Digest, Sha256};
use std::ffi::c_void;
use std::path::PathBuf;

/// A loaded plugin library. The library stays loaded for the life of the
/// process, so the table is `'static`.
pub struct LoadedPlugin {
    pub path: PathBuf,
    pub sha256: String,
    pub manifest: Manifest,
    pub(super) table: Table,
}

/// The functions of a plugin's table, read as far as its version goes.
#[derive(Clone, Copy)]
pub(super) struct Table {
    pub abi_version: u32,
    pub start: unsafe extern "C" fn(
        config: *const u8,
        config_len: usize,
        host: HostCallbacks,
        error_out: WriteFn,
        error_ctx: *mut c_void,
    ) -> *mut c_void,
    pub send: CallFn,
    pub stop: unsafe extern "C" fn(instance: *mut c_void),
    pub webhook: Option<CallFn>,
    /// Version 3 only.
    pub start_v3: Option<StartV3Fn>,
}

impl LoadedPlugin {
    /// The ABI version the plugin's table says it speaks (2 or 3).
    pub fn abi_version(&self) -> u32 {
        self.table.abi_version
    }
}

impl std::fmt::Debug for LoadedPlugin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LoadedPlugin")
            .field("path", &self.path)
            .field("sha256", &self.sha256)
            .field("manifest", &self.manifest)
            .finish_non_exhaustive()
    }
}

/// Collects bytes a plugin writes during a synchronous call.
pub(super) unsafe extern "C" fn collect(ctx: *mut c_void, data: *const u8, len: usize) {
    if ctx.is_null() || (data.is_null() && len > 0) {
        return;
    }
    // SAFETY: `ctx` is the `Vec<u8>` the host passed for this call, alive
    // until the call returns; `data` points to `len` bytes per the ABI.
    unsafe {
        let buffer = &mut *ctx.cast::<Vec<u8>>();
        if len > 0 {
            buffer.extend_from_slice(std::slice::from_raw_parts(data, len));
        }
    }
}

impl LoadedPlugin {
    /// The SHA-256 of a file, as lowercase hex.
    pub fn hash_file(path: &std::path::Path) -> Result<(Vec<u8>, String), PluginError> {
        let bytes = std::fs::read(path).map_err(|e| PluginError::Unreadable {
            path: path.to_owned(),
            reason: e.to_string(),
        })?;
        let hash = hex::encode(Sha256::digest(&bytes));
        Ok((bytes, hash))
    }

    pub fn load(file: &PluginFile, pin: Option<&str>) -> Result<LoadedPlugin, PluginError> {
        let path = &file.path;
        let (bytes, sha256) = Self::hash_file(path)?;
        let library = match pin {
            Some(expected) if !expected.trim().eq_ignore_ascii_case(&sha256) => {
                return Err(PluginError::HashMismatch {
                    path: path.clone(),
                    expected: expected.trim().to_lowercase(),
                    found: sha256,
                });
            }
            Some(_) => load_verified_copy(path, &bytes)?,
            // SAFETY: loading a library runs its initialisers. Plugin folders
            // are chosen by the operator; pin files to refuse unknown code.
            None => {
                unsafe { libloading::Library::new(path) }.map_err(|e| not_a_library(path, &e))?
            }
        };
        // SAFETY: the symbol, if present, has the documented entry signature.
        let entry = unsafe { library.get::<EntryFn>(ENTRY_SYMBOL.as_bytes()) }
            .map(|symbol| *symbol)
            .map_err(|_| PluginError::NoEntrySymbol { path: path.clone() });
        // Never unloaded: a plugin's threads may outlive any use we make of it.
        std::mem::forget(library);
        // SAFETY: the entry takes no arguments and returns a pointer valid for
        // the life of the process (the library is never unloaded).
        let table = unsafe { entry?() };
        let table_ptr = table;
        if table.is_null() {
            return Err(PluginError::BadManifest {
                path: path.clone(),
                reason: format!("{ENTRY_SYMBOL} returned a null table"),
            });
        }
        // SAFETY: every ABI version starts the table with a u32 version, so
        // reading it is valid before we know the rest of the layout.
        let found = unsafe { (*table).abi_version };
        let table = match found {
            ABI_VERSION => {
                // SAFETY: version 3, so the table has this layout.
                let t: &'static PluginTable = unsafe { &*table };
                Table {
                    abi_version: found,
                    start: t.start,
                    send: t.send,
                    stop: t.stop,
                    webhook: t.webhook,
                    start_v3: t.start_v3,
                }
            }
            ABI_VERSION_2 => {
                // SAFETY: version 2: the table ends at `webhook`, a prefix of
                // version 3's; nothing after it is read.
                let t: &'static PluginTableV2 = unsafe { &*table.cast::<PluginTableV2>() };
                Table {
                    abi_version: found,
                    start: t.start,
                    send: t.send,
                    stop: t.stop,
                    webhook: t.webhook,
                    start_v3: None,
                }
            }
            _ => {
                return Err(PluginError::AbiMismatch {
                    path: path.clone(),
                    found,
                    wanted: ABI_VERSION,
                });
            }
        };
        // SAFETY: `manifest` is at the same place in both layouts.
        let manifest_fn = unsafe { (*table_ptr).manifest };
        let mut out: Vec<u8> = Vec::new();
        // SAFETY: `collect` copies into `out`, which outlives the call.
        unsafe { manifest_fn(collect, (&raw mut out).cast()) };
        let manifest = parse_manifest(&out).map_err(|reason| PluginError::BadManifest {
            path: path.clone(),
            reason,
        })?;
        Ok(LoadedPlugin {
            path: path.clone(),
            sha256,
            manifest,
            table,
        })
    }
}

fn not_a_library(path: &std::path::Path, e: &libloading::Error) -> PluginError {
    PluginError::NotALibrary {
        path: path.to_owned(),
        reason: e.to_string(),
    }
}

/// Writes the hashed bytes to a private file and loads that, so a file
/// swapped after hashing cannot run.
fn load_verified_copy(
    path: &std::path::Path,
    bytes: &[u8],
) -> Result<libloading::Library, PluginError> {
    let unreadable = |e: std::io::Error| PluginError::Unreadable {
        path: path.to_owned(),
        reason: format!("cannot make a private copy to load: {e}"),
    };
    let suffix = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let mut copy = tempfile::Builder::new()
        .prefix("cascade-verified-")
        .suffix(&suffix)
        .tempfile()
        .map_err(unreadable)?;
    std::io::Write::write_all(&mut copy, bytes).map_err(unreadable)?;
    // SAFETY: as for an unpinned file; these bytes match the pin.
    let library =
        unsafe { libloading::Library::new(copy.path()) }.map_err(|e| not_a_library(path, &e))?;
    // The mapping stays valid after the file is removed.
    drop(copy);
    Ok(library)
}

fn parse_manifest(bytes: &[u8]) -> Result<Manifest, String> {
    if bytes.is_empty() {
        return Err("the plugin wrote no manifest".to_owned());
    }
    let manifest: Manifest = serde_json::from_slice(bytes)
        .map_err(|e| format!("the manifest is not valid JSON for the ABI: {e}"))?;
    let is_name = |s: &str| {
        !s.is_empty()
            && s.chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
    };
    if !is_name(&manifest.name) {
        return Err(format!(
            "name \"{}\" must be lowercase letters, digits and dashes",
            manifest.name
        ));
    }
    if manifest.channels.is_empty() || !manifest.channels.iter().all(|c| is_name(c)) {
        return Err(format!(
            "channels {:?} must list at least one lowercase channel kind",
            manifest.channels
        ));
    }
    Ok(manifest)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_manifest_must_name_the_plugin_and_its_channels() {
        assert!(parse_manifest(b"").unwrap_err().contains("no manifest"));
        assert!(
            parse_manifest(b"{not json")
                .unwrap_err()
                .contains("not valid JSON")
        );
        let bad_name = br#"{"name":"Email Plugin","version":"1","channels":["email"]}"#;
        assert!(parse_manifest(bad_name).unwrap_err().contains("lowercase"));
        let no_channels = br#"{"name":"email","version":"1","channels":[]}"#;
        assert!(
            parse_manifest(no_channels)
                .unwrap_err()
                .contains("at least one")
        );
        let good = br#"{"name":"email","version":"1.2.0","channels":["email"],"capabilities":["webhook"]}"#;
        assert_eq!(parse_manifest(good).unwrap().name, "email");
    }
}
