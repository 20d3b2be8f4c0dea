//! The plugin's modules keep the rooms' order, so no import cycle can form
//! (the rule: `plugins/testing/layering.rs`).

#[path = "../../testing/layering.rs"]
mod layering;

#[test]
fn each_module_uses_only_the_rooms_below_its_own() {
    layering::assert_layered(env!("CARGO_MANIFEST_DIR"));
}

fn sources(files: &[(&str, &str)]) -> Vec<(String, String)> {
    files
        .iter()
        .map(|(path, text)| ((*path).to_owned(), (*text).to_owned()))
        .collect()
}

#[test]
fn a_room_that_uses_a_higher_one_is_reported_with_its_line() {
    let problems = layering::violations(&sources(&[
        ("lib.rs", "mod inbound;\nmod send;\n"),
        (
            "send.rs",
            "use std::sync::Arc;\n\nuse crate::inbound::Answer;\n",
        ),
        ("inbound.rs", "use crate::send::Shared;\n"),
    ]));
    assert_eq!(
        problems,
        ["src/send.rs:3: `send` uses `inbound`, a room above it"]
    );
}

#[test]
fn grouped_full_and_super_paths_count_and_comments_and_macros_do_not() {
    let problems = layering::violations(&sources(&[
        (
            "format.rs",
            "use crate::{\n    config::Config,\n    state::{Cache, Limits},\n};\n",
        ),
        ("config.rs", "fn f(m: &crate::send::Message) {}\n"),
        (
            "state/ratelimit.rs",
            "use super::Cache;\nuse crate::send::Rest;\n",
        ),
        ("send.rs", "use super::channel::Shared;\n"),
        (
            "inbound.rs",
            "/// Like crate::channel::start.\n// crate::lib\n$crate::channel::x!();\nuse super::*;\n",
        ),
    ]));
    assert_eq!(
        problems,
        [
            "src/format.rs:3: `format` uses `state`, a room above it",
            "src/config.rs:1: `config` uses `send`, a room above it",
            "src/state/ratelimit.rs:2: `state` uses `send`, a room above it",
            "src/send.rs:1: `send` uses `channel`, a room above it",
        ]
    );
}

#[test]
fn a_module_outside_the_rooms_and_a_path_to_the_crate_root_are_reported() {
    let problems = layering::violations(&sources(&[
        ("faults.rs", ""),
        ("channel.rs", "use crate::FileChannel;\n"),
    ]));
    assert_eq!(
        problems,
        [
            "src/faults.rs: `faults` is not a room; move it into one of config, format, state, send, inbound, channel, lib",
            "src/channel.rs:1: `channel` uses `crate::FileChannel`, which is not a room \
             (the crate root counts as `lib`, above every other room)",
        ]
    );
}
