//! The crate graph has no edge upwards, and no crate's modules import each
//! other in a circle. Cargo already refuses a cycle between crates; this
//! holds the order of the layers (ARCHITECTURE.md draws it), keeps the
//! dev-only test-support crate out of every shipped crate, keeps channel
//! plugins to the plugin API, and finds import cycles between the top-level
//! modules of each core crate, which Cargo does not see.

use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;

/// Each core crate's layer: a crate may depend only on crates of a lower
/// layer (plus anything outside cascade).
const LAYERS: &[(&str, u32)] = &[
    ("cascade-plugin-api", 0),
    ("cascade-model", 0),
    ("cascade-privacy", 1),
    ("cascade-render", 1),
    ("cascade-store", 1),
    ("cascade-plugin-host", 1),
    ("cascade-engine", 2),
    ("cascade-server", 3),
    ("cascade-console", 3),
    ("cascade", 4),
];

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn metadata() -> Value {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
    let out = Command::new(cargo)
        .args([
            "metadata",
            "--format-version",
            "1",
            "--no-deps",
            "--offline",
        ])
        .current_dir(root())
        .output()
        .expect("cargo runs");
    assert!(
        out.status.success(),
        "cargo metadata: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("cargo metadata prints JSON")
}

/// (package, dependency, kind) for every dependency on a workspace package;
/// kind is "normal", "build" or "dev".
fn internal_edges() -> Vec<(String, String, String)> {
    let meta = metadata();
    let packages = meta["packages"].as_array().expect("packages");
    let names: BTreeSet<&str> = packages.iter().filter_map(|p| p["name"].as_str()).collect();
    let mut edges = Vec::new();
    for p in packages {
        let name = p["name"].as_str().unwrap_or_default();
        for d in p["dependencies"].as_array().into_iter().flatten() {
            let dep = d["name"].as_str().unwrap_or_default();
            if names.contains(dep) {
                let kind = d["kind"].as_str().unwrap_or("normal").to_owned();
                edges.push((name.to_owned(), dep.to_owned(), kind));
            }
        }
    }
    edges
}

fn layer(name: &str) -> Option<u32> {
    LAYERS.iter().find(|(n, _)| *n == name).map(|(_, l)| *l)
}

#[test]
fn no_core_crate_depends_on_one_above_or_beside_it() {
    let mut upward = Vec::new();
    for (from, to, kind) in internal_edges() {
        if kind == "dev" {
            continue;
        }
        if let (Some(a), Some(b)) = (layer(&from), layer(&to))
            && b >= a
        {
            upward.push(format!("{from} (layer {a}) -> {to} (layer {b})"));
        }
    }
    assert!(
        upward.is_empty(),
        "edges that do not go down:\n{}",
        upward.join("\n")
    );
}

#[test]
fn every_core_crate_has_a_layer() {
    let meta = metadata();
    let root = root().canonicalize().unwrap();
    let core = root.join("core");
    for p in meta["packages"].as_array().unwrap() {
        let manifest = PathBuf::from(p["manifest_path"].as_str().unwrap());
        let name = p["name"].as_str().unwrap();
        if manifest.starts_with(&core) && name != "cascade-test-support" {
            assert!(
                layer(name).is_some(),
                "{name} is in core/ but has no layer in LAYERS"
            );
        }
    }
}

/// Dev-only crates, never shipped: the shared test support, the channel
/// plugins' conformance suite and the test plugins.
fn test_only(name: &str) -> bool {
    name == "cascade-test-support"
        || name == "cascade-plugin-conformance"
        || name.starts_with("cascade-testplugin-")
}

#[test]
fn shipped_crates_do_not_depend_on_test_plumbing() {
    let mut wrong = Vec::new();
    for (from, to, kind) in internal_edges() {
        if test_only(&to) && kind != "dev" {
            wrong.push(format!("{from} -> {to} ({kind})"));
        }
    }
    assert!(
        wrong.is_empty(),
        "test-only crates used outside [dev-dependencies]:\n{}",
        wrong.join("\n")
    );
}

#[test]
fn channel_plugins_link_only_the_plugin_api() {
    let mut wrong = Vec::new();
    for (from, to, kind) in internal_edges() {
        let plugin = from.starts_with("cascade-plugin-")
            && from != "cascade-plugin-api"
            && from != "cascade-plugin-host"
            && !test_only(&from);
        if plugin && kind != "dev" && to != "cascade-plugin-api" {
            wrong.push(format!("{from} -> {to} ({kind})"));
        }
    }
    assert!(
        wrong.is_empty(),
        "plugins must reach the engine only through the ABI:\n{}",
        wrong.join("\n")
    );
}

/// The top-level modules of a crate that each top-level module names
/// (`crate::x` anywhere in its files, tests included).
fn module_graph(src: &Path) -> BTreeMap<String, BTreeSet<String>> {
    let mut modules = BTreeMap::new();
    for entry in std::fs::read_dir(src).unwrap().flatten() {
        let path = entry.path();
        let name = path.file_stem().unwrap().to_string_lossy().into_owned();
        if name == "lib" || name == "main" {
            continue;
        }
        let mut text = String::new();
        collect(&path, &mut text);
        modules.insert(name, text);
    }
    let names: BTreeSet<String> = modules.keys().cloned().collect();
    modules
        .iter()
        .map(|(name, text)| {
            let uses = names
                .iter()
                .filter(|other| *other != name)
                .filter(|other| {
                    text.contains(&format!("crate::{other}::"))
                        || text.contains(&format!("crate::{other};"))
                        || text.contains(&format!("crate::{other},"))
                        || text.contains(&format!("crate::{other}}}"))
                        || text.contains(&format!("crate::{other} "))
                })
                .cloned()
                .collect();
            (name.clone(), uses)
        })
        .collect()
}

fn collect(path: &Path, text: &mut String) {
    if path.is_dir() {
        for entry in std::fs::read_dir(path).unwrap().flatten() {
            collect(&entry.path(), text);
        }
    } else if path.extension().is_some_and(|e| e == "rs") {
        // Doc comments may name a module for the reader; only code counts.
        for line in std::fs::read_to_string(path).unwrap().lines() {
            if !line.trim_start().starts_with("//") {
                text.push_str(line);
                text.push('\n');
            }
        }
    }
}

/// A cycle through `start`, if any, as a path of module names.
fn cycle(graph: &BTreeMap<String, BTreeSet<String>>, start: &str) -> Option<Vec<String>> {
    let mut stack = vec![(start.to_owned(), vec![start.to_owned()])];
    let mut seen = BTreeSet::new();
    while let Some((at, path)) = stack.pop() {
        for next in graph.get(&at).into_iter().flatten() {
            if next == start {
                let mut found = path.clone();
                found.push(start.to_owned());
                return Some(found);
            }
            if seen.insert(next.clone()) {
                let mut longer = path.clone();
                longer.push(next.clone());
                stack.push((next.clone(), longer));
            }
        }
    }
    None
}

#[test]
fn no_import_cycles_between_the_modules_of_a_core_crate() {
    let mut cycles = BTreeMap::new();
    for entry in std::fs::read_dir(root().join("core")).unwrap().flatten() {
        let src = entry.path().join("src");
        if !src.is_dir() {
            continue;
        }
        let graph = module_graph(&src);
        for start in graph.keys() {
            if let Some(found) = cycle(&graph, start) {
                let crate_name = entry.file_name().to_string_lossy().into_owned();
                // One report per cycle, whichever module it is found from.
                let mut key = found[..found.len() - 1].to_vec();
                key.sort();
                cycles
                    .entry((crate_name, key))
                    .or_insert_with(|| found.join(" -> "));
            }
        }
    }
    let report: Vec<String> = cycles
        .into_iter()
        .map(|((krate, _), path)| format!("core/{krate}: {path}"))
        .collect();
    assert!(
        report.is_empty(),
        "module import cycles:\n{}",
        report.join("\n")
    );
}

#[test]
fn the_cycle_finder_finds_a_cycle() {
    let graph: BTreeMap<String, BTreeSet<String>> = [
        ("a", vec!["b"]),
        ("b", vec!["c"]),
        ("c", vec!["a"]),
        ("d", vec!["a"]),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.into_iter().map(str::to_owned).collect()))
    .collect();
    assert_eq!(cycle(&graph, "a").unwrap(), ["a", "b", "c", "a"]);
    assert_eq!(cycle(&graph, "d"), None);
}
