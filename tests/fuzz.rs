//! Fuzzing on stable Rust with proptest: every parser of outside input is
//! fed arbitrary text and mutations of the demo project's own valid files
//! (bytes inserted, deleted, replaced; lines duplicated and cut), and must
//! answer with a result or an error, never a panic. CI runs the default
//! number of cases; run longer with, for example,
//!
//! ```sh
//! PROPTEST_CASES=20000 cargo test --release -p cascade --test fuzz
//! ```

use cascade_engine::ack::AckKeys;
use cascade_engine::config::Config;
use cascade_model::content::parse_item;
use cascade_model::directory::read_csv;
use cascade_model::rollout::parse_definition;
use cascade_plugin_api::{
    InboundEvent, LogLine, Manifest, SendRequest, SendResult, WebhookRequest,
};
use cascade_test_support::DemoProject;
use chrono::{TimeZone, Utc};
use proptest::prelude::*;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

/// The demo project's files, read once: the seeds mutations start from.
struct Seeds {
    _project: DemoProject,
    root: PathBuf,
    config: String,
    taxonomy: cascade_model::content::Taxonomy,
    content: Vec<String>,
    csvs: Vec<(String, String)>,
    rollouts: Vec<String>,
}

fn seeds() -> &'static Seeds {
    static SEEDS: OnceLock<Seeds> = OnceLock::new();
    SEEDS.get_or_init(|| {
        let project = DemoProject::new();
        let root = project.path().to_owned();
        let read_all = |dir: &str, ext: &str| -> Vec<(String, String)> {
            let mut files: Vec<(String, String)> = std::fs::read_dir(root.join(dir))
                .unwrap()
                .map(|f| f.unwrap().path())
                .filter(|p| p.extension().is_some_and(|e| e == ext))
                .map(|p| {
                    (
                        p.file_name().unwrap().to_string_lossy().into_owned(),
                        std::fs::read_to_string(&p).unwrap(),
                    )
                })
                .collect();
            files.sort();
            files
        };
        let config = std::fs::read_to_string(root.join("cascade.toml")).unwrap();
        let taxonomy = Config::parse(Path::new("cascade.toml"), &config)
            .unwrap()
            .taxonomy();
        Seeds {
            config,
            taxonomy,
            content: read_all("content", "md")
                .into_iter()
                .map(|(_, t)| t)
                .collect(),
            csvs: read_all("directory", "csv"),
            rollouts: read_all("rollouts", "toml")
                .into_iter()
                .map(|(_, t)| t)
                .collect(),
            root,
            _project: project,
        }
    })
}

/// One edit of a text.
#[derive(Debug, Clone)]
enum Edit {
    Insert(usize, Vec<u8>),
    Delete(usize, usize),
    Replace(usize, u8),
    DuplicateLine(usize),
    CutAt(usize),
}

fn edit() -> impl Strategy<Value = Edit> {
    // Bytes that matter to the formats: delimiters, quotes, newlines,
    // multi-byte UTF-8, digits and a NUL.
    let byte = prop_oneof![
        Just(b'"'),
        Just(b','),
        Just(b'\n'),
        Just(b'\r'),
        Just(b'='),
        Just(b'['),
        Just(b']'),
        Just(b'{'),
        Just(b'-'),
        Just(b':'),
        Just(b'#'),
        Just(b'\\'),
        Just(0u8),
        Just(0xC3),
        Just(0xA9),
        Just(0xF0),
        any::<u8>(),
    ];
    prop_oneof![
        (
            any::<usize>(),
            proptest::collection::vec(byte.clone(), 1..8)
        )
            .prop_map(|(at, bytes)| Edit::Insert(at, bytes)),
        (any::<usize>(), 1usize..64).prop_map(|(at, n)| Edit::Delete(at, n)),
        (any::<usize>(), byte).prop_map(|(at, b)| Edit::Replace(at, b)),
        any::<usize>().prop_map(Edit::DuplicateLine),
        any::<usize>().prop_map(Edit::CutAt),
    ]
}

/// `seed` with `edits` applied (as bytes; the result may not be UTF-8).
fn mutate(seed: &str, edits: &[Edit]) -> Vec<u8> {
    let mut bytes = seed.as_bytes().to_vec();
    for edit in edits {
        let len = bytes.len().max(1);
        match edit {
            Edit::Insert(at, new) => {
                let at = at % (bytes.len() + 1);
                bytes.splice(at..at, new.iter().copied());
            }
            Edit::Delete(at, n) => {
                let at = at % len;
                let end = (at + n).min(bytes.len());
                if at < end {
                    bytes.drain(at..end);
                }
            }
            Edit::Replace(at, b) => {
                if !bytes.is_empty() {
                    let at = at % bytes.len();
                    bytes[at] = *b;
                }
            }
            Edit::DuplicateLine(at) => {
                let lines: Vec<&[u8]> = bytes.split(|b| *b == b'\n').collect();
                let n = at % lines.len();
                let mut out = Vec::new();
                for (i, line) in lines.iter().enumerate() {
                    out.extend_from_slice(line);
                    out.push(b'\n');
                    if i == n {
                        out.extend_from_slice(line);
                        out.push(b'\n');
                    }
                }
                bytes = out;
            }
            Edit::CutAt(at) => bytes.truncate(at % len),
        }
    }
    bytes
}

fn edits() -> impl Strategy<Value = Vec<Edit>> {
    proptest::collection::vec(edit(), 1..6)
}

/// Text as a parser that takes `&str` gets it: lossily, as a file read
/// with a UTF-8 check would be refused before it got there.
fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

proptest! {
    #[test]
    fn content_files_never_panic(which in any::<usize>(), edits in edits(), noise in ".{0,300}") {
        let seeds = seeds();
        let seed = &seeds.content[which % seeds.content.len()];
        let _ = parse_item(Path::new("content/fuzz.md"), &text(&mutate(seed, &edits)), &seeds.taxonomy);
        let _ = parse_item(Path::new("content/fuzz.md"), &noise, &seeds.taxonomy);
        let _ = parse_item(Path::new("content/fuzz.md"), &format!("---\n{noise}\n---\n{noise}"), &seeds.taxonomy);
    }

    #[test]
    fn directory_csvs_never_panic(which in any::<usize>(), edits in edits()) {
        let seeds = seeds();
        let (name, seed) = &seeds.csvs[which % seeds.csvs.len()];
        let dir = tempfile::tempdir().unwrap();
        // The file's name says which of the four files it is.
        let path = dir.path().join(name);
        std::fs::write(&path, mutate(seed, &edits)).unwrap();
        let _ = read_csv(&path);
    }

    #[test]
    fn rollout_toml_never_panics(which in any::<usize>(), edits in edits(), noise in ".{0,200}") {
        let seeds = seeds();
        let seed = &seeds.rollouts[which % seeds.rollouts.len()];
        let _ = parse_definition(Path::new("rollouts/fuzz.toml"), &text(&mutate(seed, &edits)));
        let _ = parse_definition(Path::new("rollouts/fuzz.toml"), &noise);
    }

    #[test]
    fn config_toml_never_panics(edits in edits(), noise in ".{0,200}") {
        let seeds = seeds();
        let _ = Config::parse(Path::new("cascade.toml"), &text(&mutate(&seeds.config, &edits)));
        let _ = Config::parse(Path::new("cascade.toml"), &noise);
    }

    /// Tokens: a valid one mutated, and arbitrary text, are verified
    /// without a panic, and a mutated one is never accepted for another
    /// delivery or person.
    #[test]
    fn signed_tokens_never_panic_and_forgeries_fail(edits in edits(), noise in "[A-Za-z0-9._-]{0,120}") {
        let keys = AckKeys::new(("k1".to_owned(), vec![7; 32]), Vec::new(), 60).unwrap();
        let now = Utc.with_ymd_and_hms(2026, 12, 2, 12, 0, 0).unwrap();
        let token = keys.sign(42, "p-fuzz", now);
        let mutated = text(&mutate(&token, &edits));
        if let Ok(claims) = keys.verify(&mutated, now) {
            prop_assert_eq!(claims.delivery, 42);
            prop_assert_eq!(claims.person.as_str(), "p-fuzz");
        }
        let _ = keys.verify(&noise, now);
    }

    /// The plugin JSON in both directions, parsed as the host parses what
    /// a plugin answers and as a plugin parses what the host sends.
    #[test]
    fn plugin_json_never_panics(edits in edits(), noise in proptest::collection::vec(any::<u8>(), 0..300)) {
        let samples = [
            r#"{"outcome":"delivered","provider_id":"m-1"}"#,
            r#"{"outcome":"retry","reason":"busy","retry_after_ms":1500}"#,
            r#"{"outcome":"failed","reason":"blocked","unreachable":true}"#,
            r#"{"name":"email","version":"0.1.0","channels":["email"],"capabilities":["inbound"]}"#,
            r#"{"level":"info","message":"started"}"#,
        ];
        for sample in samples {
            let bytes = mutate(sample, &edits);
            for input in [&bytes[..], &noise[..]] {
                let _ = serde_json::from_slice::<SendResult>(input);
                let _ = serde_json::from_slice::<Manifest>(input);
                let _ = serde_json::from_slice::<LogLine>(input);
                let _ = serde_json::from_slice::<InboundEvent>(input);
                let _ = serde_json::from_slice::<SendRequest>(input);
                let _ = serde_json::from_slice::<WebhookRequest>(input);
            }
        }
    }
}

/// The seeds themselves parse: a fuzz target whose seed is already
/// refused would only ever test the first error path.
#[test]
fn the_seeds_are_valid() {
    let seeds = seeds();
    for seed in &seeds.content {
        assert!(parse_item(Path::new("content/seed.md"), seed, &seeds.taxonomy).is_ok());
    }
    for (name, _) in &seeds.csvs {
        assert!(
            read_csv(&seeds.root.join("directory").join(name)).is_ok(),
            "{name}"
        );
    }
    for seed in &seeds.rollouts {
        assert!(parse_definition(Path::new("rollouts/seed.toml"), seed).is_ok());
    }
    assert!(Config::parse(Path::new("cascade.toml"), &seeds.config).is_ok());
}
