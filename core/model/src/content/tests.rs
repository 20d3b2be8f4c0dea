use super::*;
use proptest::prelude::*;
use std::path::Path;

const BRIEFING: &str = r#"+++
kind = "seven-minute-briefing"
id = "7mb-neglect-2026"
title = "Neglect: seeing the child"
themes = ["neglect", "voice-of-the-child"]
issued_by = "Northbridge Safeguarding Children Partnership"
status = "published"
source = "LCSPR Child B"
sixty_minute_briefing = "https://example.org/60-minute/neglect"

[[links]]
title = "Neglect toolkit"
url = "https://example.org/neglect-toolkit"
+++

## 1. Background
Child B was known to **five** agencies.

## 2. Why it matters
Neglect is the most common reason for a child protection plan.

## 3. Key findings
- Home visits did not see the child's bedroom.
- Missed health appointments were not followed up.

## 4. What the research says
Cumulative harm builds over time.

## 5. What practitioners should do
Ask to see where the child sleeps.

## 6. Questions for reflection
- When did you last see the child's bedroom?
- Who else knows this family?

## 7. Where to find more
See the [neglect toolkit](https://example.org/neglect-toolkit).
"#;

const FINDING: &str = r#"+++
kind = "review-finding"
id = "lcspr-child-b-2026"
title = "Child B: the voice of the child in a neglected home"
review_type = "LCSPR"
subject = "Child B"
themes = ["neglect"]
status = "internal"
+++

## Summary
Child B, aged 4, lived with a parent who misused alcohol.

## Key learning
1. Seeing the child alone matters.
2. Escalate when plans drift.

## What practitioners should do
Use the escalation policy when you disagree with a decision.

## Good practice
The school nurse shared concerns promptly.
"#;

const NEWSLETTER: &str = r#"+++
kind = "newsletter-item"
id = "nl-2026-12-safer-sleep"
title = "Safer sleep week"
newsletter = "Partnership Matters"
issue = "2026-12"
themes = ["safer-sleep"]
status = "embargoed"
embargo_until = 2026-12-01

[[privacy_allow]]
text = "0300 123 4567"
reason = "The partnership's public advice line"
+++

Safer sleep week runs from **8 December**. Book a place on the briefing.

Call 0300 123 4567 for advice.
"#;

fn parse(text: &str) -> Result<LearningItem, Vec<ContentError>> {
    parse_item(Path::new("content/item.md"), text, &Taxonomy::default())
}

fn first_error(text: &str) -> ContentError {
    parse(text).expect_err("should not parse").remove(0)
}

#[test]
fn a_briefing_round_trips_through_its_markdown() {
    let item = parse(BRIEFING).unwrap();
    let ItemKind::SevenMinuteBriefing(b) = &item.kind else {
        panic!("wrong kind")
    };
    assert_eq!(b.sections.len(), 7);
    assert_eq!(b.sections[5].title, "6. Questions for reflection");
    assert_eq!(b.source.as_deref(), Some("LCSPR Child B"));
    assert_eq!(item.links[0].title, "Neglect toolkit");
    assert_eq!(parse(&item.to_markdown()).unwrap(), item);
}

#[test]
fn a_review_finding_round_trips_through_its_markdown() {
    let item = parse(FINDING).unwrap();
    let ItemKind::ReviewFinding(f) = &item.kind else {
        panic!("wrong kind")
    };
    assert_eq!(f.review_type, ReviewType::Lcspr);
    assert_eq!(f.subject, "Child B");
    assert!(f.key_learning.body.starts_with("1. Seeing"));
    assert_eq!(item.status, Status::Internal);
    assert_eq!(parse(&item.to_markdown()).unwrap(), item);
}

#[test]
fn a_newsletter_item_round_trips_through_its_markdown() {
    let item = parse(NEWSLETTER).unwrap();
    let ItemKind::NewsletterItem(n) = &item.kind else {
        panic!("wrong kind")
    };
    assert_eq!(n.issue, "2026-12");
    assert!(n.body.ends_with("for advice."));
    assert_eq!(
        item.status,
        Status::Embargoed(NaiveDate::from_ymd_opt(2026, 12, 1).unwrap())
    );
    assert_eq!(item.privacy_allow.len(), 1);
    assert_eq!(parse(&item.to_markdown()).unwrap(), item);
}

#[test]
fn the_version_changes_with_the_content_but_not_with_line_endings() {
    let a = parse(BRIEFING).unwrap();
    let crlf = parse(&BRIEFING.replace('\n', "\r\n")).unwrap();
    let edited = parse(&BRIEFING.replace("five", "six")).unwrap();
    assert_eq!(a.version, crlf.version);
    assert_ne!(a.version, edited.version);
    assert_eq!(a.version.0.len(), 64);
}

#[test]
fn only_shareable_statuses_may_roll_out() {
    let day = |d| NaiveDate::from_ymd_opt(2026, 12, d).unwrap();
    assert!(!Status::Draft.may_roll_out(day(1)));
    assert!(Status::Approved.may_roll_out(day(1)));
    assert!(Status::Internal.may_roll_out(day(1)));
    assert!(!Status::Embargoed(day(2)).may_roll_out(day(1)));
    assert!(Status::Embargoed(day(2)).may_roll_out(day(2)));
}

/// (case, text, line, words the message must contain)
fn malformed_cases() -> Vec<(&'static str, String, usize, &'static str)> {
    vec![
        (
            "missing front matter",
            BRIEFING.replacen("+++\n", "", 1),
            1,
            "missing front matter",
        ),
        (
            "unclosed front matter",
            "+++\nkind = \"newsletter-item\"\n".to_owned(),
            1,
            "never closed",
        ),
        (
            "bad TOML",
            BRIEFING.replace("title = \"Neglect: seeing the child\"", "title = \"Neglect"),
            4,
            "not valid TOML",
        ),
        (
            "eight sections",
            BRIEFING.replace("## 7. Where", "## 7. Extra\nMore.\n\n## 8. Where"),
            39,
            "exactly seven",
        ),
        (
            "six sections",
            BRIEFING.replace("## 4. What the research says\n", ""),
            35,
            "found 6",
        ),
        (
            "unknown kind",
            BRIEFING.replace("seven-minute-briefing", "podcast"),
            2,
            "unknown kind \"podcast\"",
        ),
        (
            "unknown theme",
            BRIEFING.replace("\"voice-of-the-child\"", "\"voice-of-child\""),
            5,
            "unknown theme \"voice-of-child\"",
        ),
        (
            "embargo without date",
            FINDING.replace("status = \"internal\"", "status = \"embargoed\""),
            8,
            "needs a date",
        ),
        (
            "embargo date on a published item",
            NEWSLETTER.replace("status = \"embargoed\"", "status = \"published\""),
            9,
            "only applies",
        ),
        (
            "unknown review type",
            FINDING.replace("LCSPR", "SCRR"),
            5,
            "unknown review_type",
        ),
        (
            "missing finding section",
            FINDING.replace("## Good practice", "## Good news"),
            21,
            "unknown section \"Good news\"",
        ),
        (
            "field of another kind",
            FINDING.replace(
                "subject = \"Child B\"",
                "subject = \"Child B\"\nissued_by = \"x\"",
            ),
            7,
            "does not apply",
        ),
        (
            "unknown field",
            FINDING.replace("subject =", "subjetc ="),
            6,
            "unknown field",
        ),
        (
            "bad newsletter issue",
            NEWSLETTER.replace("2026-12\"", "December\""),
            6,
            "not a year and month",
        ),
        (
            "upper-case id",
            FINDING.replace("lcspr-child-b-2026", "LCSPR Child B"),
            3,
            "lowercase",
        ),
    ]
}

#[test]
fn every_malformed_file_names_its_file_and_line() {
    for (case, text, line, words) in malformed_cases() {
        let errors = parse(&text).expect_err(case);
        let error = errors
            .iter()
            .find(|e| e.message.contains(words))
            .unwrap_or_else(|| panic!("{case}: no error mentions {words:?}; got {errors:#?}"));
        assert_eq!(error.at.line, line, "{case}: {error}");
        assert_eq!(error.at.path, Path::new("content/item.md"), "{case}");
        assert!(
            error.help.is_some(),
            "{case}: an error should say how to fix it"
        );
    }
}

#[test]
fn an_unknown_theme_suggests_the_nearest_known_one() {
    let e = first_error(&BRIEFING.replace("\"neglect\"", "\"neglct\""));
    assert_eq!(e.at.line, 5);
    assert!(e.to_string().contains("did you mean \"neglect\""), "{e}");
}

#[test]
fn all_problems_in_a_file_are_reported_at_once() {
    let text = FINDING
        .replace("LCSPR", "nope")
        .replace("\"neglect\"", "\"neglectt\"")
        .replace("status = \"internal\"", "status = \"finished\"");
    let errors = parse(&text).unwrap_err();
    let lines: Vec<usize> = errors.iter().map(|e| e.at.line).collect();
    assert_eq!(lines, vec![7, 8, 5], "{errors:#?}");
}

#[test]
fn a_heading_inside_a_code_fence_is_not_a_section() {
    let text = BRIEFING.replace(
        "Ask to see where the child sleeps.",
        "```\n## not a heading\n```",
    );
    let item = parse(&text).unwrap();
    let ItemKind::SevenMinuteBriefing(b) = &item.kind else {
        panic!()
    };
    assert_eq!(b.sections[4].body, "```\n## not a heading\n```");
}

#[test]
fn a_privacy_allow_without_a_reason_is_refused() {
    let e = first_error(&NEWSLETTER.replace(
        "reason = \"The partnership's public advice line\"",
        "reason = \"\"",
    ));
    assert!(e.message.contains("privacy_allow"), "{e}");
}

#[test]
fn load_dir_reports_an_id_used_twice() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("a.md"), FINDING).unwrap();
    std::fs::write(dir.path().join("b.md"), FINDING).unwrap();
    let (items, errors) = load_dir(dir.path(), &Taxonomy::default());
    assert_eq!(items.len(), 1);
    assert_eq!(errors.len(), 1);
    assert_eq!(errors[0].at.line, 3);
    assert!(errors[0].message.contains("already used"));
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

    #[test]
    fn the_parser_never_panics_on_arbitrary_text(text in "\\PC*") {
        let _ = parse(&text);
    }

    #[test]
    fn the_parser_never_panics_on_front_matter_shaped_text(
        front in "(kind|id|title|themes|status|embargo_until|issue|\\[\\[links\\]\\]|[a-z_]{1,8}) ?= ?(\"[^\"\n]{0,12}\"|\\[\"[a-z-]{0,12}\"\\]|[0-9-]{0,12}|\\{\\})?(\n[^\n]{0,20}){0,6}",
        body in "(## [^\n]{0,10}\n[^\n]{0,30}\n|```\n|\n){0,12}",
    ) {
        let _ = parse(&format!("+++\n{front}\n+++\n{body}"));
    }

    #[test]
    fn any_item_that_parses_round_trips(sections in proptest::collection::vec(("[A-Za-z ]{1,20}", "[A-Za-z0-9 .,*_<>&\n-]{0,80}"), 7)) {
        let body: String = sections.iter().map(|(t, b)| format!("## {}\n{}\n\n", t.trim(), b)).collect();
        let text = BRIEFING.split_once("\n+++\n").map(|(front, _)| format!("{front}\n+++\n{body}")).unwrap();
        if let Ok(item) = parse(&text) {
            prop_assert_eq!(parse(&item.to_markdown()).unwrap(), item);
        }
    }
}

#[test]
fn a_what_changed_note_is_kept_and_round_trips() {
    let text = BRIEFING.replace(
        "status = \"published\"",
        "status = \"published\"\nwhat_changed = \"Section 5 now names the new escalation route.\"",
    );
    let item = parse(&text).unwrap();
    assert_eq!(
        item.what_changed.as_deref(),
        Some("Section 5 now names the new escalation route.")
    );
    assert_ne!(item.version, parse(BRIEFING).unwrap().version);
    assert_eq!(parse(&item.to_markdown()).unwrap(), item);
}

#[test]
fn an_official_sensitive_item_keeps_its_classification_and_summary_through_its_markdown() {
    let text = BRIEFING.replace(
        "status = \"published\"",
        "status = \"published\"\nclassification = \"official-sensitive\"\nsummary = \"Learning on neglect from a local review.\"",
    );
    let item = parse(&text).unwrap();
    assert_eq!(item.classification, Classification::OfficialSensitive);
    assert_eq!(
        item.summary.as_deref(),
        Some("Learning on neglect from a local review.")
    );
    assert_ne!(item.version, parse(BRIEFING).unwrap().version);
    assert_eq!(parse(&item.to_markdown()).unwrap(), item);
}

#[test]
fn an_item_without_a_classification_is_official_and_keeps_its_version() {
    let item = parse(BRIEFING).unwrap();
    assert_eq!(item.classification, Classification::Official);
    let said = parse(&BRIEFING.replace(
        "status = \"published\"",
        "status = \"published\"\nclassification = \"official\"",
    ))
    .unwrap();
    assert_eq!(said.version, item.version);
    assert!(!item.to_markdown().contains("classification"));
}

#[test]
fn an_official_sensitive_item_without_a_summary_is_refused_at_its_line() {
    let text = BRIEFING.replace(
        "status = \"published\"",
        "status = \"published\"\nclassification = \"official-sensitive\"",
    );
    let error = first_error(&text);
    assert_eq!(error.at.line, 8);
    assert!(
        error.message.contains("needs a one-line `summary`"),
        "{error}"
    );
    assert!(
        error.help.as_deref().unwrap().contains("summary = "),
        "{error}"
    );
}

#[test]
fn an_unknown_classification_names_the_allowed_values() {
    let text = BRIEFING.replace(
        "status = \"published\"",
        "status = \"published\"\nclassification = \"secret\"",
    );
    let error = first_error(&text);
    assert_eq!(error.at.line, 8);
    assert!(
        error.message.contains("unknown classification \"secret\""),
        "{error}"
    );
    let help = error.help.unwrap();
    assert!(
        help.contains("\"official\"") && help.contains("\"official-sensitive\""),
        "{help}"
    );
}

#[test]
fn a_summary_on_two_lines_is_refused() {
    let text = BRIEFING.replace(
        "status = \"published\"",
        "status = \"published\"\nclassification = \"official-sensitive\"\nsummary = \"\"\"\nOne.\nTwo.\"\"\"",
    );
    let error = first_error(&text);
    assert_eq!(error.at.line, 9);
    assert!(error.message.contains("one line"), "{error}");
}

mod check_questions {
    use super::*;

    const QUESTION: &str = r#"
[[check_questions]]
question = "What should you ask to see on a home visit?"
options = ["The kitchen", "Where the child sleeps", "The garden"]
answer = "Where the child sleeps"
explanation = "Seeing where the child sleeps shows how they live."
section = "What practitioners should do"
"#;

    /// The briefing with `entries` (TOML) added to its front matter.
    fn with(entries: &str) -> String {
        BRIEFING.replacen("\n+++\n\n## 1.", &format!("{entries}+++\n\n## 1."), 1)
    }

    fn problems(text: &str) -> Vec<String> {
        parse_item(Path::new("content/b.md"), text, &Taxonomy::default())
            .expect_err("the item should be refused")
            .iter()
            .map(ToString::to_string)
            .collect()
    }

    fn line_of(text: &str, needle: &str) -> usize {
        text.lines().position(|l| l.contains(needle)).unwrap() + 1
    }

    #[test]
    fn a_check_question_is_parsed_and_is_part_of_the_version() {
        let text = with(QUESTION);
        let item = parse_item(Path::new("b.md"), &text, &Taxonomy::default()).unwrap();
        assert_eq!(
            item.check_questions,
            [CheckQuestion {
                question: "What should you ask to see on a home visit?".to_owned(),
                options: vec![
                    "The kitchen".to_owned(),
                    "Where the child sleeps".to_owned(),
                    "The garden".to_owned()
                ],
                answer: "Where the child sleeps".to_owned(),
                explanation: "Seeing where the child sleeps shows how they live.".to_owned(),
                section: "What practitioners should do".to_owned(),
            }]
        );
        let plain = parse_item(Path::new("b.md"), BRIEFING, &Taxonomy::default()).unwrap();
        assert!(plain.check_questions.is_empty());
        assert_ne!(
            item.version, plain.version,
            "the questions are part of the item"
        );
        // Written back and read again, it is the same item.
        let again =
            parse_item(Path::new("b.md"), &item.to_markdown(), &Taxonomy::default()).unwrap();
        assert_eq!(again, item);
    }

    #[test]
    fn an_answer_that_is_not_an_option_names_its_line_and_the_options() {
        let text = with(&QUESTION.replace(
            "answer = \"Where the child sleeps\"",
            "answer = \"The bedroom\"",
        ));
        let errors = problems(&text);
        let line = line_of(&text, "answer = \"The bedroom\"");
        assert!(
            errors
                .iter()
                .any(|e| e.starts_with(&format!("content/b.md:{line}: "))
                    && e.contains("the answer \"The bedroom\" is not one of its options")
                    && e.contains("\"Where the child sleeps\"")),
            "{errors:#?}"
        );
        let text = with(&QUESTION.replace(
            "answer = \"Where the child sleeps\"",
            "answer = \"where the child sleeps\"",
        ));
        assert!(
            problems(&text)
                .iter()
                .any(|e| e.contains("answer = \"Where the child sleeps\"")),
            "a near miss says how the option is written"
        );
    }

    #[test]
    fn a_section_the_item_does_not_have_is_refused_with_the_ones_it_has() {
        let text = with(&QUESTION.replace(
            "section = \"What practitioners should do\"",
            "section = \"Next steps\"",
        ));
        let errors = problems(&text);
        let line = line_of(&text, "section = \"Next steps\"");
        assert!(
            errors
                .iter()
                .any(|e| e.starts_with(&format!("content/b.md:{line}: "))
                    && e.contains("the item has no section \"Next steps\"")
                    && e.contains("\"5. What practitioners should do\"")),
            "{errors:#?}"
        );
        // A section named without its number, or in other case, is found.
        let text = with(&QUESTION.replace(
            "section = \"What practitioners should do\"",
            "section = \"5. what practitioners should do\"",
        ));
        assert!(parse_item(Path::new("b.md"), &text, &Taxonomy::default()).is_ok());
    }

    #[test]
    fn counts_of_questions_and_options_and_missing_fields_are_refused_each_at_its_line() {
        let four = with(&QUESTION.repeat(4));
        let errors = problems(&four);
        let fourth = four
            .lines()
            .enumerate()
            .filter(|(_, l)| *l == "[[check_questions]]")
            .nth(3)
            .unwrap()
            .0
            + 1;
        assert!(
            errors
                .iter()
                .any(|e| e.starts_with(&format!("content/b.md:{fourth}: "))
                    && e.contains("4 check questions; an item has at most 3")),
            "{errors:#?}"
        );
        for (options, count) in [
            ("[\"Only one\"]", 1),
            ("[\"a\", \"b\", \"c\", \"d\", \"e\", \"f\"]", 6),
        ] {
            let text = with(&QUESTION.replace(
                "options = [\"The kitchen\", \"Where the child sleeps\", \"The garden\"]",
                &format!("options = {options}"),
            ));
            let errors = problems(&text);
            let line = line_of(&text, "options = ");
            assert!(
                errors
                    .iter()
                    .any(|e| e.starts_with(&format!("content/b.md:{line}: "))
                        && e.contains(&format!("has {count} options; a question has 2 to 5"))),
                "{errors:#?}"
            );
        }
        let text = with(&QUESTION.replace(
            "options = [\"The kitchen\", \"Where the child sleeps\", \"The garden\"]",
            "options = [\"The kitchen\", \"Where the child sleeps\", \"the kitchen\"]",
        ));
        assert!(
            problems(&text)
                .iter()
                .any(|e| e.contains("is listed twice"))
        );
        let text = with(&QUESTION.replace(
            "explanation = \"Seeing where the child sleeps shows how they live.\"\n",
            "",
        ));
        let errors = problems(&text);
        let line = line_of(&text, "[[check_questions]]");
        assert!(
            errors
                .iter()
                .any(|e| e.starts_with(&format!("content/b.md:{line}: "))
                    && e.contains("check question 1 has no `explanation`")),
            "{errors:#?}"
        );
        let text = with(&QUESTION.replace("section = ", "chapter = "));
        assert!(
            problems(&text)
                .iter()
                .any(|e| e.contains("unknown field `chapter`")),
            "an unknown key is named"
        );
    }
}

mod refresher_lines {
    use super::*;
    use crate::content::{refresher_message, refresher_question};

    /// The briefing with `entries` first in its front matter (before its
    /// tables).
    fn with(entries: &str) -> String {
        BRIEFING.replacen("+++\n", &format!("+++\n{entries}\n"), 1)
    }

    #[test]
    fn refresher_lines_are_key_messages_in_turn_and_part_of_the_version() {
        let text = with("refresher = [\"See the child.\", \"Read the chronology.\"]");
        let item = parse_item(Path::new("b.md"), &text, &Taxonomy::default()).unwrap();
        assert_eq!(item.refresher, ["See the child.", "Read the chronology."]);
        assert_eq!(
            refresher_message(&item, 1).as_deref(),
            Some("See the child.")
        );
        assert_eq!(
            refresher_message(&item, 2).as_deref(),
            Some("Read the chronology.")
        );
        assert_eq!(
            refresher_message(&item, 3).as_deref(),
            Some("See the child.")
        );
        assert_eq!(refresher_question(&item.check_questions, 1), None);
        let plain = parse_item(Path::new("b.md"), BRIEFING, &Taxonomy::default()).unwrap();
        assert!(plain.refresher.is_empty());
        assert_ne!(item.version, plain.version);
        let again =
            parse_item(Path::new("b.md"), &item.to_markdown(), &Taxonomy::default()).unwrap();
        assert_eq!(again, item);
    }

    #[test]
    fn an_empty_or_long_refresher_line_is_refused_at_its_line() {
        for (line, words) in [
            (
                "refresher = [\"\"]",
                "a `refresher` line is empty or more than one line",
            ),
            (
                "refresher = []",
                "`refresher` has 0 lines; an item has 1 to 6",
            ),
        ] {
            let text = with(line);
            let errors: Vec<String> =
                parse_item(Path::new("content/b.md"), &text, &Taxonomy::default())
                    .expect_err("refused")
                    .iter()
                    .map(ToString::to_string)
                    .collect();
            let at = text
                .lines()
                .position(|l| l.starts_with("refresher"))
                .unwrap()
                + 1;
            assert!(
                errors
                    .iter()
                    .any(|e| e.starts_with(&format!("content/b.md:{at}:")) && e.contains(words)),
                "{line}: {errors:#?}"
            );
        }
        let long = with(&format!("refresher = [\"{}\"]", "x".repeat(301)));
        let errors = parse_item(Path::new("b.md"), &long, &Taxonomy::default()).unwrap_err();
        assert!(
            errors[0].message.contains("301 characters; at most 300"),
            "{errors:?}"
        );
    }
}
