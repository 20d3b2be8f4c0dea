//! The privacy guard against a labelled corpus (`privacy_corpus/`): a
//! child's identifiers written in many encodings must all be caught (recall
//! 1.0), and the everyday language of briefings must pass (at most 2% false
//! positives). Prints the figures; regenerate the corpus with
//! `python3 core/privacy/tests/privacy_corpus/generate.py`.

use cascade_privacy::{Finding, FindingKind, PrivacyConfig, PrivacyGuard};
use serde::Deserialize;
use std::collections::BTreeMap;

#[derive(Deserialize)]
struct Case {
    label: String,
    /// `body`: Markdown in a content file; `front`: a front matter string as
    /// written in TOML; `text`: typed text (a chat message, a form note).
    #[serde(rename = "where")]
    place: String,
    encoding: String,
    text: String,
}

#[derive(Deserialize)]
struct Settings {
    privacy: PrivacyConfig,
}

fn kind_of(label: &str) -> Option<FindingKind> {
    Some(match label {
        "nhs-number" => FindingKind::NhsNumber,
        "date-of-birth" => FindingKind::DateOfBirth,
        "postcode" => FindingKind::Postcode,
        "phone-number" => FindingKind::PhoneNumber,
        "personal-email" => FindingKind::PersonalEmail,
        "denied-name" => FindingKind::DeniedName,
        "none" => return None,
        other => panic!("unknown label {other:?} in the corpus"),
    })
}

fn scan(guard: &PrivacyGuard, case: &Case) -> Vec<Finding> {
    match case.place.as_str() {
        "body" => guard.scan_item(&format!(
            "+++\nkind = \"seven-minute-briefing\"\nid = \"corpus\"\ntitle = \"Corpus\"\n+++\n\n{}\n",
            case.text
        )),
        "front" => guard.scan_item(&format!(
            "+++\nkind = \"newsletter-item\"\ntitle = \"{}\"\n+++\n\nBody.\n",
            case.text
        )),
        "text" => guard.scan(&case.text),
        other => panic!("unknown place {other:?} in the corpus"),
    }
}

#[test]
fn the_guard_catches_every_identifier_in_the_corpus_and_passes_briefing_language() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/privacy_corpus");
    let settings: Settings =
        toml::from_str(&std::fs::read_to_string(dir.join("config.toml")).unwrap()).unwrap();
    let guard = PrivacyGuard::new(&settings.privacy).unwrap();
    let cases: Vec<Case> = std::fs::read_to_string(dir.join("corpus.jsonl"))
        .unwrap()
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect();
    assert!(
        cases.len() >= 300,
        "the corpus has {} snippets",
        cases.len()
    );

    let mut missed = Vec::new();
    let mut false_positives = Vec::new();
    let mut by_label: BTreeMap<&str, (usize, usize)> = BTreeMap::new();
    for case in &cases {
        let findings = scan(&guard, case);
        let tally = by_label.entry(&case.label).or_default();
        tally.1 += 1;
        match kind_of(&case.label) {
            Some(kind) => {
                if findings.iter().any(|f| f.kind == kind) {
                    tally.0 += 1;
                } else {
                    missed.push(format!(
                        "{} ({}, {}): {:?} gave {findings:?}",
                        case.label, case.place, case.encoding, case.text
                    ));
                }
            }
            None => {
                if findings.is_empty() {
                    tally.0 += 1;
                } else {
                    false_positives.push(format!("{:?} gave {findings:?}", case.text));
                }
            }
        }
    }
    let positives = cases.iter().filter(|c| c.label != "none").count();
    let negatives = cases.len() - positives;
    let recall = (positives - missed.len()) as f64 / positives as f64;
    let false_positive_rate = false_positives.len() as f64 / negatives as f64;
    println!(
        "privacy corpus: {} snippets; recall {recall:.3} ({} of {positives}); false positives {:.1}% ({} of {negatives})",
        cases.len(),
        positives - missed.len(),
        false_positive_rate * 100.0,
        false_positives.len()
    );
    for (label, (right, all)) in &by_label {
        println!("  {label}: {right} of {all} right");
    }
    for case in &false_positives {
        println!("  false positive: {case}");
    }
    assert!(
        missed.is_empty(),
        "recall {recall:.3}, below 1.0; missed:\n{}",
        missed.join("\n")
    );
    assert!(
        false_positive_rate <= 0.02,
        "false positives {:.1}%, above 2%:\n{}",
        false_positive_rate * 100.0,
        false_positives.join("\n")
    );
}
