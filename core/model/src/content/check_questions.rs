//! Check questions: up to three multiple-choice questions an item may
//! carry in its front matter, to tell "read" from "understood". Each has a
//! question, two to five options, the right answer (one of the options),
//! and a short explanation that points to the `##` section answering it:
//!
//! ```toml
//! [[check_questions]]
//! question = "What should you do first when you notice signs of neglect?"
//! options = ["Wait for the next review", "Talk to the child and record what you see", "Close the case"]
//! answer = "Talk to the child and record what you see"
//! explanation = "Seeing the child comes first: record what you observe."
//! section = "What to do"
//! ```
//!
//! Only the front matter is checked here; a child's identifying details in
//! a question are found by the privacy guard, which reads the whole file.

use super::Section;
use serde::{Deserialize, Serialize};
use toml::Spanned;

/// The most check questions an item carries.
pub const MAX_CHECK_QUESTIONS: usize = 3;
/// Fewest and most options a question offers.
pub const MIN_OPTIONS: usize = 2;
pub const MAX_OPTIONS: usize = 5;
/// The longest question, option and explanation, in characters: short
/// enough for a chat button or a line of an email.
pub const MAX_QUESTION_CHARS: usize = 300;
pub const MAX_OPTION_CHARS: usize = 80;
pub const MAX_EXPLANATION_CHARS: usize = 300;

/// One check question, as checked.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CheckQuestion {
    pub question: String,
    pub options: Vec<String>,
    /// One of `options`, exactly.
    pub answer: String,
    pub explanation: String,
    /// The title of the item's `##` section that answers it.
    pub section: String,
}

impl CheckQuestion {
    /// The first 16 hex digits of SHA-256 over the question, its options and
    /// its answer: what identifies the question in records and reports, the
    /// same in a later version that keeps it word for word.
    pub fn digest(&self) -> String {
        use sha2::{Digest, Sha256};
        let mut hash = Sha256::new();
        for part in std::iter::once(&self.question)
            .chain(&self.options)
            .chain(std::iter::once(&self.answer))
        {
            hash.update((part.len() as u64).to_be_bytes());
            hash.update(part.as_bytes());
        }
        let mut hex = hex::encode(hash.finalize());
        hex.truncate(16);
        hex
    }

    /// Whether `title` is the section this question points to (ignoring
    /// case, spacing and a leading number, as `cascade check` matches it).
    pub fn points_to(&self, title: &str) -> bool {
        same_section(title, &self.section)
    }

    /// The right answer's number among the options (1-based).
    pub fn answer_number(&self) -> usize {
        self.options
            .iter()
            .position(|o| *o == self.answer)
            .map_or(0, |i| i + 1)
    }
}

/// The check questions of a stored item version's source, read from its
/// front matter without checking the rest (it was checked when stored):
/// for reports, which name each question. None when there are none or the
/// front matter cannot be read.
pub fn stored_check_questions(source: &str) -> Vec<CheckQuestion> {
    #[derive(Deserialize)]
    struct Front {
        #[serde(default)]
        check_questions: Vec<CheckQuestion>,
    }
    let Some(rest) = source.trim_start_matches('\u{feff}').strip_prefix("+++") else {
        return Vec::new();
    };
    let Some(end) = rest.find("\n+++") else {
        return Vec::new();
    };
    toml::from_str::<Front>(&rest[..end])
        .map(|f| f.check_questions)
        .unwrap_or_default()
}

/// The theme ids of a stored item version's source, read from its front
/// matter as [`stored_check_questions`] reads its questions: for reports.
pub fn stored_themes(source: &str) -> Vec<String> {
    let Some(rest) = source.trim_start_matches('\u{feff}').strip_prefix("+++") else {
        return Vec::new();
    };
    let Some(end) = rest.find("\n+++") else {
        return Vec::new();
    };
    let Ok(front) = toml::from_str::<toml::Table>(&rest[..end]) else {
        return Vec::new();
    };
    front
        .get("themes")
        .and_then(toml::Value::as_array)
        .map(|themes| {
            themes
                .iter()
                .filter_map(|t| t.as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

/// A `[[check_questions]]` entry as written, each value with its place.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawCheckQuestion {
    question: Option<Spanned<String>>,
    options: Option<Spanned<Vec<Spanned<String>>>>,
    answer: Option<Spanned<String>>,
    explanation: Option<Spanned<String>>,
    section: Option<Spanned<String>>,
}

/// One problem: the byte offset in the front matter it is at, what is
/// wrong and what to write.
pub(super) type Problem = (usize, String, String);

/// Checks every entry against the item's sections (`None` when the body
/// had problems of its own, so sections are not checked); every problem
/// at once.
pub(super) fn check(
    raw: &[Spanned<RawCheckQuestion>],
    sections: Option<&[Section]>,
) -> Result<Vec<CheckQuestion>, Vec<Problem>> {
    let mut problems: Vec<Problem> = Vec::new();
    if raw.len() > MAX_CHECK_QUESTIONS {
        problems.push((
            raw[MAX_CHECK_QUESTIONS].span().start,
            format!(
                "{} check questions; an item has at most {MAX_CHECK_QUESTIONS}",
                raw.len()
            ),
            "keep the three that best show the learning was understood, and remove the rest"
                .to_owned(),
        ));
    }
    let mut questions = Vec::new();
    for (n, entry) in raw.iter().enumerate() {
        let n = n + 1;
        let at = entry.span().start;
        let q = entry.get_ref();
        let mut text =
            |field: &Option<Spanned<String>>, name: &str, max: usize, example: &str| match field {
                None => {
                    problems.push((
                        at,
                        format!("check question {n} has no `{name}`"),
                        format!("add {name} = {example}"),
                    ));
                    None
                }
                Some(value) => {
                    let trimmed = value.get_ref().trim();
                    if trimmed.is_empty() {
                        problems.push((
                            value.span().start,
                            format!("check question {n}: `{name}` is empty"),
                            format!("write it, e.g. {name} = {example}"),
                        ));
                        None
                    } else if trimmed.chars().count() > max {
                        problems.push((
                            value.span().start,
                            format!(
                                "check question {n}: `{name}` is {} characters; at most {max}",
                                trimmed.chars().count()
                            ),
                            "shorten it; the item's body says the rest".to_owned(),
                        ));
                        None
                    } else if trimmed.contains(['\n', '\r']) {
                        problems.push((
                            value.span().start,
                            format!("check question {n}: `{name}` must be one line"),
                            "write it on one line".to_owned(),
                        ));
                        None
                    } else {
                        Some(trimmed.to_owned())
                    }
                }
            };
        let question = text(
            &q.question,
            "question",
            MAX_QUESTION_CHARS,
            "\"What should you do first?\"",
        );
        let explanation = text(
            &q.explanation,
            "explanation",
            MAX_EXPLANATION_CHARS,
            "\"Seeing the child comes first.\"",
        );
        let answer = text(
            &q.answer,
            "answer",
            MAX_OPTION_CHARS,
            "\"one of the options\"",
        );
        let section = text(&q.section, "section", MAX_QUESTION_CHARS, "\"What to do\"");
        let options = options(&mut problems, n, at, &q.options);
        // The answer must be one of the options, written the same way.
        if let (Some(options), Some(answer), Some(raw_answer)) = (&options, &answer, &q.answer)
            && !options.contains(answer)
        {
            let near = options
                .iter()
                .find(|o| o.to_lowercase() == answer.to_lowercase());
            problems.push((
                raw_answer.span().start,
                format!("check question {n}: the answer {answer:?} is not one of its options"),
                match near {
                    Some(option) => {
                        format!("write it as the option is written: answer = {option:?}")
                    }
                    None => format!(
                        "make the answer one of the options, exactly as written: {}",
                        quoted(options)
                    ),
                },
            ));
        }
        // The explanation points to a section that exists.
        if let (Some(section), Some(sections), Some(raw_section)) = (&section, sections, &q.section)
        {
            let titles: Vec<&str> = sections
                .iter()
                .map(|s| s.title.as_str())
                .filter(|t| !t.is_empty())
                .collect();
            let found = titles.iter().any(|t| same_section(t, section));
            if !found {
                problems.push((
                    raw_section.span().start,
                    format!("check question {n}: the item has no section {section:?}"),
                    if titles.is_empty() {
                        "give the item's body `## ` headings, and name the one that answers the question".to_owned()
                    } else {
                        format!(
                            "name the `##` section that answers it, one of: {}",
                            titles
                                .iter()
                                .map(|t| format!("{t:?}"))
                                .collect::<Vec<_>>()
                                .join(", ")
                        )
                    },
                ));
            }
        }
        if let (Some(question), Some(options), Some(answer), Some(explanation), Some(section)) =
            (question, options, answer, explanation, section)
        {
            questions.push(CheckQuestion {
                question,
                options,
                answer,
                explanation,
                section,
            });
        }
    }
    if problems.is_empty() {
        Ok(questions)
    } else {
        Err(problems)
    }
}

fn options(
    problems: &mut Vec<Problem>,
    n: usize,
    at: usize,
    raw: &Option<Spanned<Vec<Spanned<String>>>>,
) -> Option<Vec<String>> {
    let example = "options = [\"Talk to the child\", \"Wait for the review\"]";
    let Some(list) = raw else {
        problems.push((
            at,
            format!("check question {n} has no `options`"),
            format!("list {MIN_OPTIONS} to {MAX_OPTIONS}, e.g. {example}"),
        ));
        return None;
    };
    let count = list.get_ref().len();
    if !(MIN_OPTIONS..=MAX_OPTIONS).contains(&count) {
        problems.push((
            list.span().start,
            format!("check question {n} has {count} options; a question has {MIN_OPTIONS} to {MAX_OPTIONS}"),
            format!("list {MIN_OPTIONS} to {MAX_OPTIONS}, e.g. {example}"),
        ));
        return None;
    }
    let mut out: Vec<String> = Vec::new();
    let mut ok = true;
    for option in list.get_ref() {
        let text = option.get_ref().trim();
        if text.is_empty() || text.contains(['\n', '\r']) {
            problems.push((
                option.span().start,
                format!("check question {n}: an option is empty or more than one line"),
                "write each option as a few words on one line".to_owned(),
            ));
            ok = false;
        } else if text.chars().count() > MAX_OPTION_CHARS {
            problems.push((
                option.span().start,
                format!(
                    "check question {n}: the option {text:?} is {} characters; at most {MAX_OPTION_CHARS}",
                    text.chars().count()
                ),
                "shorten it: an option is a button's label".to_owned(),
            ));
            ok = false;
        } else if out.iter().any(|o| o.to_lowercase() == text.to_lowercase()) {
            problems.push((
                option.span().start,
                format!("check question {n}: the option {text:?} is listed twice"),
                "make each option different".to_owned(),
            ));
            ok = false;
        } else {
            out.push(text.to_owned());
        }
    }
    ok.then_some(out)
}

fn quoted(options: &[String]) -> String {
    options
        .iter()
        .map(|o| format!("{o:?}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Whether a section title and the name a question gives it are the same:
/// ignoring case, spacing and a leading number ("5. What to do").
fn same_section(title: &str, name: &str) -> bool {
    let plain = |text: &str| {
        let text = text.trim();
        let unnumbered = text.trim_start_matches(|c: char| c.is_ascii_digit());
        let unnumbered = if unnumbered.len() < text.len() {
            unnumbered.trim_start_matches(['.', ')', ':']).trim_start()
        } else {
            text
        };
        unnumbered
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" ")
            .to_lowercase()
    };
    plain(title) == plain(name)
}
