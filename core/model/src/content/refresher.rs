//! What a spaced refresher (issue 19) says of an item: one key message and
//! one check question, each taken in turn across a rollout's refreshers.
//! The key messages are the item's `refresher` lines in its front matter
//! (one to six, each one line), or else the first point of its first
//! section:
//!
//! ```toml
//! refresher = ["See the child, every visit: neglect shows in the home, not the file."]
//! ```

use super::{CheckQuestion, LearningItem, Section};

/// The most `refresher` lines an item carries.
pub const MAX_REFRESHER_LINES: usize = 6;
/// The longest `refresher` line, in characters: a sentence or two.
pub const MAX_REFRESHER_CHARS: usize = 300;

/// The key message of refresher `number` (1-based): the item's
/// `refresher` lines in turn, else its first section's first point.
/// `None` only for an item without sections or text.
pub fn refresher_message(item: &LearningItem, number: u32) -> Option<String> {
    if !item.refresher.is_empty() {
        let at = (number.max(1) as usize - 1) % item.refresher.len();
        return Some(item.refresher[at].clone());
    }
    item.sections().first().and_then(first_point)
}

/// The check question refresher `number` (1-based) asks, of an item's
/// `questions`, with its own number in the item: the questions in turn,
/// the first at the first refresher. `None` when there are none.
pub fn refresher_question(
    questions: &[CheckQuestion],
    number: u32,
) -> Option<(u32, &CheckQuestion)> {
    if questions.is_empty() {
        return None;
    }
    let at = (number.max(1) as usize - 1) % questions.len();
    Some((at as u32 + 1, &questions[at]))
}

/// A section's first list item, or else the first sentence of its first
/// paragraph, as plain text.
fn first_point(section: &Section) -> Option<String> {
    let lines: Vec<&str> = section.body.lines().map(str::trim).collect();
    let listed = lines.iter().find_map(|line| list_item(line));
    let text = match listed {
        Some(text) => text.to_owned(),
        None => {
            let paragraph: Vec<&str> = lines
                .iter()
                .skip_while(|l| l.is_empty() || l.starts_with('#'))
                .take_while(|l| !l.is_empty())
                .copied()
                .collect();
            let paragraph = paragraph.join(" ");
            first_sentence(&paragraph).to_owned()
        }
    };
    let plain = plain_text(&text);
    (!plain.is_empty()).then_some(plain)
}

/// The text of a Markdown list item line (`- `, `* `, `+ `, `1. `, `1) `).
fn list_item(line: &str) -> Option<&str> {
    if let Some(rest) = line
        .strip_prefix("- ")
        .or_else(|| line.strip_prefix("* "))
        .or_else(|| line.strip_prefix("+ "))
    {
        return Some(rest.trim());
    }
    let digits = line.bytes().take_while(u8::is_ascii_digit).count();
    if digits == 0 {
        return None;
    }
    line[digits..]
        .strip_prefix(". ")
        .or_else(|| line[digits..].strip_prefix(") "))
        .map(str::trim)
}

fn first_sentence(paragraph: &str) -> &str {
    paragraph
        .match_indices(". ")
        .next()
        .map_or(paragraph, |(at, _)| &paragraph[..=at])
}

/// Markdown's inline marks taken out: emphasis, code and links' targets.
fn plain_text(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(open) = rest.find('[') {
        out.push_str(&rest[..open]);
        let after = &rest[open + 1..];
        match after.find("](").and_then(|close| {
            let target = &after[close + 2..];
            target.find(')').map(|end| (close, close + 2 + end + 1))
        }) {
            Some((close, end)) => {
                out.push_str(&after[..close]);
                rest = &after[end..];
            }
            None => {
                out.push('[');
                rest = after;
            }
        }
    }
    out.push_str(rest);
    out.replace("**", "")
        .replace("__", "")
        .replace('`', "")
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
}

/// Checks the `refresher` lines as written: one to six, each one line of
/// at most [`MAX_REFRESHER_CHARS`]. Problems as (offset, message, help).
pub(super) fn check(
    raw: &Option<toml::Spanned<Vec<toml::Spanned<String>>>>,
) -> Result<Vec<String>, Vec<(usize, String, String)>> {
    let Some(list) = raw else {
        return Ok(Vec::new());
    };
    let mut problems = Vec::new();
    let help_example = "e.g. refresher = [\"See the child, every visit.\"]";
    if list.get_ref().is_empty() || list.get_ref().len() > MAX_REFRESHER_LINES {
        problems.push((
            list.span().start,
            format!(
                "`refresher` has {} lines; an item has 1 to {MAX_REFRESHER_LINES}",
                list.get_ref().len()
            ),
            format!("list the key messages a refresher recalls, one each, {help_example}, or remove `refresher`"),
        ));
    }
    let mut lines = Vec::new();
    for line in list.get_ref() {
        let text = line.get_ref().trim();
        if text.is_empty() || text.contains(['\n', '\r']) {
            problems.push((
                line.span().start,
                "a `refresher` line is empty or more than one line".to_owned(),
                format!("write each key message as one line, {help_example}"),
            ));
        } else if text.chars().count() > MAX_REFRESHER_CHARS {
            problems.push((
                line.span().start,
                format!(
                    "a `refresher` line is {} characters; at most {MAX_REFRESHER_CHARS}",
                    text.chars().count()
                ),
                "shorten it to the one point to remember; the item says the rest".to_owned(),
            ));
        } else {
            lines.push(text.to_owned());
        }
    }
    if problems.is_empty() {
        Ok(lines)
    } else {
        Err(problems)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn section(body: &str) -> Section {
        Section {
            title: "Background".to_owned(),
            body: body.to_owned(),
        }
    }

    #[test]
    fn the_first_point_is_the_first_list_item_without_its_marks() {
        let s = section(
            "Neglect is the most common reason.\n\n- **See the child** every visit, see [the policy](https://x.example).\n- Second",
        );
        assert_eq!(
            first_point(&s).as_deref(),
            Some("See the child every visit, see the policy.")
        );
        let numbered = section("1. Record what you see.\n2. Share it.");
        assert_eq!(
            first_point(&numbered).as_deref(),
            Some("Record what you see.")
        );
    }

    #[test]
    fn without_a_list_the_first_point_is_the_first_sentence() {
        let s = section("Neglect is the most common reason for a plan. It builds slowly.");
        assert_eq!(
            first_point(&s).as_deref(),
            Some("Neglect is the most common reason for a plan.")
        );
        assert_eq!(first_point(&section("")), None);
    }
}
