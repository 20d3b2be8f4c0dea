//! The one order of a channel plugin's rooms, checked on its sources. Not a
//! crate: each plugin's `tests/layering.rs` includes this file with
//! `#[path]`, so the rule is written once.
//!
//! A module may use (`crate::room` anywhere outside a comment, or
//! `super::room` from a top-level module) only the rooms before its own, so
//! no import cycle can form. A submodule (`src/state/ratelimit.rs`) belongs
//! to its room; a `crate::` path to anything that is not a room reaches the
//! crate root, `lib`.

use std::path::Path;

/// The rooms, lowest first: `config` (what the operator writes), `format`
/// (a request as the provider's payload; pure), `state` (what is kept
/// between calls: caches, rate limits, waiting presses), `send` (outbound
/// calls), `inbound` (webhooks, polling, the gateway), `channel` (the
/// `ChannelPlugin` that assembles them), `lib` (the ABI export).
pub const ROOMS: [&str; 7] = [
    "config", "format", "state", "send", "inbound", "channel", "lib",
];

/// Panics listing every use of a higher room, and every module that is not
/// a room, in the crate at `manifest_dir`.
pub fn assert_layered(manifest_dir: &str) {
    let src = Path::new(manifest_dir).join("src");
    let mut sources = Vec::new();
    read_sources(&src, &src, &mut sources);
    assert!(
        sources.iter().any(|(path, _)| path == "lib.rs"),
        "no src/lib.rs under {manifest_dir}"
    );
    let problems = violations(&sources);
    assert!(
        problems.is_empty(),
        "modules must use only the rooms before their own ({}):\n{}",
        ROOMS.join(" <- "),
        problems.join("\n")
    );
}

/// What breaks the order, given each source file's path under `src/` (with
/// `/` separators) and text.
pub fn violations(sources: &[(String, String)]) -> Vec<String> {
    let mut problems = Vec::new();
    for (path, text) in sources {
        let room = path
            .split('/')
            .next()
            .unwrap_or(path)
            .trim_end_matches(".rs");
        let Some(rank) = ROOMS.iter().position(|r| *r == room) else {
            problems.push(format!(
                "src/{path}: `{room}` is not a room; move it into one of {}",
                ROOMS.join(", ")
            ));
            continue;
        };
        let top_level = !path.contains('/');
        for (line, used) in uses(text, top_level) {
            match ROOMS.iter().position(|r| *r == used) {
                Some(used_rank) if used_rank > rank => problems.push(format!(
                    "src/{path}:{line}: `{room}` uses `{used}`, a room above it"
                )),
                None if room != "lib" => problems.push(format!(
                    "src/{path}:{line}: `{room}` uses `crate::{used}`, which is not a room \
                     (the crate root counts as `lib`, above every other room)"
                )),
                _ => {}
            }
        }
    }
    problems
}

/// The first segment of every path to another module, with its line:
/// `crate::x`, `crate::{x::A, y}`, and from a top-level module
/// `super::x` when `x` is a room. Comments are skipped.
fn uses(text: &str, top_level: bool) -> Vec<(usize, String)> {
    let code: String = text
        .lines()
        .map(|line| {
            if line.trim_start().starts_with("//") {
                ""
            } else {
                line
            }
        })
        .collect::<Vec<_>>()
        .join("\n");
    let line_of = |offset: usize| code[..offset].matches('\n').count() + 1;
    let mut found = Vec::new();
    for prefix in ["crate::", "super::"] {
        for (at, _) in code.match_indices(prefix) {
            let before = code[..at].chars().next_back();
            if before.is_some_and(|c| c == '$' || c == ':' || c == '_' || c.is_alphanumeric()) {
                continue;
            }
            let path = at + prefix.len();
            let rest = &code[path..];
            let names = match rest.strip_prefix('{') {
                Some(group) => group_heads(group)
                    .into_iter()
                    .map(|(offset, name)| (path + 1 + offset, name))
                    .collect(),
                None => vec![(path, identifier(rest))],
            };
            for (offset, name) in names.into_iter().filter(|(_, n)| !n.is_empty()) {
                if prefix == "super::" && !(top_level && ROOMS.contains(&name.as_str())) {
                    continue;
                }
                found.push((line_of(offset), name));
            }
        }
    }
    found
}

/// The first segment of each item of a `{a::B, c, d::{E, F}}` group (the
/// text after its `{`), with its offset there.
fn group_heads(group: &str) -> Vec<(usize, String)> {
    let mut heads = Vec::new();
    let mut depth = 0;
    let mut start = true;
    for (at, c) in group.char_indices() {
        match c {
            '{' => depth += 1,
            '}' if depth == 0 => break,
            '}' => depth -= 1,
            ',' if depth == 0 => start = true,
            c if start && !c.is_whitespace() => {
                heads.push((at, identifier(&group[at..])));
                start = false;
            }
            _ => {}
        }
    }
    heads
}

fn identifier(text: &str) -> String {
    text.chars()
        .take_while(|c| *c == '_' || c.is_alphanumeric())
        .collect()
}

fn read_sources(src: &Path, dir: &Path, out: &mut Vec<(String, String)>) {
    let mut entries: Vec<_> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", dir.display()))
        .map(|entry| entry.expect("a directory entry").path())
        .collect();
    entries.sort();
    for path in entries {
        if path.is_dir() {
            read_sources(src, &path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            let relative = path.strip_prefix(src).expect("under src");
            let name = relative
                .components()
                .map(|c| c.as_os_str().to_string_lossy())
                .collect::<Vec<_>>()
                .join("/");
            let text = std::fs::read_to_string(&path)
                .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
            out.push((name, text));
        }
    }
}
