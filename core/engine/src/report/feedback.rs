//! The practice feedback loop (issue 19), "you said, we did": follow-up
//! answers given in a period, per item and per theme: how many used the
//! learning, the reasons given for not using it, and the examples people
//! typed (each through the privacy guard when it was given). `draft`
//! writes the summary as a newsletter item for the business unit to
//! answer and approve; it is a draft, so nothing sends it until then.

use super::ReportError;
use cascade_model::content::{Taxonomy, stored_themes};
use cascade_model::rollout::RolloutDefinition;
use cascade_store::{FeedbackRow, Reports};
use chrono::NaiveDate;
use std::collections::BTreeMap;
use std::fmt;

/// The most examples listed per item: the summary stays readable.
const MAX_EXAMPLES: usize = 10;

/// Answers to follow-ups about one item, or under one theme.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Used {
    /// People who answered.
    pub answered: u64,
    /// Of those, the ones whose answer says they used the learning.
    pub used: u64,
    /// Reasons given for not using it, most given first, with their counts.
    pub reasons: Vec<(String, u64)>,
    /// Answers that said "not used" without a reason.
    pub no_reason: u64,
}

impl Used {
    fn add(&mut self, used: bool, reason: Option<&str>) {
        self.answered += 1;
        if used {
            self.used += 1;
        } else if let Some(reason) = reason {
            match self.reasons.iter_mut().find(|(r, _)| r == reason) {
                Some((_, n)) => *n += 1,
                None => self.reasons.push((reason.to_owned(), 1)),
            }
        } else {
            self.no_reason += 1;
        }
    }

    fn settle(&mut self) {
        self.reasons
            .sort_by(|(a, x), (b, y)| y.cmp(x).then_with(|| a.cmp(b)));
    }

    /// Used as a percentage of those who answered.
    pub fn used_pct(&self) -> Option<f64> {
        (self.answered > 0).then(|| self.used as f64 * 100.0 / self.answered as f64)
    }
}

/// One item's feedback.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ItemFeedback {
    pub item_id: String,
    pub title: String,
    /// Theme ids, in the author's order.
    pub themes: Vec<String>,
    pub used: Used,
    /// Examples, oldest first, at most [`MAX_EXAMPLES`].
    pub examples: Vec<String>,
}

/// The feedback of a period.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Feedback {
    pub from: NaiveDate,
    pub to: NaiveDate,
    pub items: Vec<ItemFeedback>,
    /// (theme id, its label, the answers about its items).
    pub themes: Vec<(String, String, Used)>,
}

/// Reads the follow-up answers given from `from` to `to` (whole local days,
/// inclusive) and sums them up.
pub async fn feedback(
    store: &impl Reports,
    calendar: &cascade_model::rollout::Calendar,
    taxonomy: &Taxonomy,
    from: NaiveDate,
    to: NaiveDate,
) -> Result<Feedback, ReportError> {
    if to < from {
        return Err(ReportError::Period { from, to });
    }
    let start = calendar.at_local(from.and_time(chrono::NaiveTime::MIN));
    let end = calendar.local_days_after(to.and_time(chrono::NaiveTime::MIN), 1);
    let rows = store
        .feedback(start.timestamp_millis(), end.timestamp_millis())
        .await?;
    Ok(summarise(&rows, taxonomy, from, to))
}

/// Sums up follow-up answers: pure, for tests with fixed rows.
pub fn summarise(
    rows: &[FeedbackRow],
    taxonomy: &Taxonomy,
    from: NaiveDate,
    to: NaiveDate,
) -> Feedback {
    let mut items: BTreeMap<&str, ItemFeedback> = BTreeMap::new();
    let mut themes: BTreeMap<String, Used> = BTreeMap::new();
    let mut definitions: BTreeMap<&str, Option<RolloutDefinition>> = BTreeMap::new();
    for row in rows {
        let definition = definitions
            .entry(row.rollout_id.as_str())
            .or_insert_with(|| serde_json::from_str(&row.definition).ok());
        let follow_up = definition
            .as_ref()
            .and_then(|d| d.follow_ups.get(row.follow_up.saturating_sub(1) as usize));
        // An answer whose follow-up cannot be read is not counted as used.
        let used = follow_up.is_some_and(|f| f.says_used(&row.answer));
        let item = items
            .entry(row.item_id.as_str())
            .or_insert_with(|| ItemFeedback {
                item_id: row.item_id.clone(),
                title: if row.item_title.is_empty() {
                    row.item_id.clone()
                } else {
                    row.item_title.clone()
                },
                themes: stored_themes(&row.item_source),
                used: Used::default(),
                examples: Vec::new(),
            });
        item.used.add(used, row.reason.as_deref());
        if let Some(example) = row
            .example
            .as_deref()
            .map(str::trim)
            .filter(|e| !e.is_empty())
            && item.examples.len() < MAX_EXAMPLES
        {
            item.examples.push(example.to_owned());
        }
        for theme in &item.themes {
            themes
                .entry(theme.clone())
                .or_default()
                .add(used, row.reason.as_deref());
        }
    }
    let mut items: Vec<ItemFeedback> = items.into_values().collect();
    for item in &mut items {
        item.used.settle();
    }
    Feedback {
        from,
        to,
        items,
        themes: themes
            .into_iter()
            .map(|(id, mut used)| {
                used.settle();
                let label = taxonomy.label(&id).to_owned();
                (id, label, used)
            })
            .collect(),
    }
}

fn percent(value: Option<f64>) -> String {
    value.map_or_else(|| "–".to_owned(), |v| format!("{v:.0}%"))
}

/// "7 of 10 used it (70%)".
fn used_line(used: &Used) -> String {
    format!(
        "{} of {} used it ({})",
        used.used,
        used.answered,
        percent(used.used_pct())
    )
}

fn reason_lines(used: &Used) -> Vec<String> {
    let mut lines: Vec<String> = used
        .reasons
        .iter()
        .map(|(reason, n)| format!("{reason}: {n}"))
        .collect();
    if used.no_reason > 0 {
        lines.push(format!("No reason given: {}", used.no_reason));
    }
    lines
}

impl fmt::Display for Feedback {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "Practice feedback, {} to {}", self.from, self.to)?;
        if self.items.is_empty() {
            return writeln!(f, "No follow-up answers in this period.");
        }
        writeln!(f)?;
        writeln!(f, "By item")?;
        for item in &self.items {
            writeln!(
                f,
                "  {} ({}): {}",
                item.title,
                item.item_id,
                used_line(&item.used)
            )?;
            for line in reason_lines(&item.used) {
                writeln!(f, "    Not used: {line}")?;
            }
            for example in &item.examples {
                writeln!(f, "    Example: \"{example}\"")?;
            }
        }
        writeln!(f)?;
        writeln!(f, "By theme")?;
        for (_, label, used) in &self.themes {
            writeln!(f, "  {label}: {}", used_line(used))?;
            for line in reason_lines(used) {
                writeln!(f, "    Not used: {line}")?;
            }
        }
        Ok(())
    }
}

/// Text as a TOML basic string.
fn toml_string(text: &str) -> String {
    toml::Value::String(text.to_owned()).to_string()
}

/// The draft newsletter item "You said, we did" for `feedback`, with id
/// `id`, in `newsletter`'s issue `issue` (`YYYY-MM`): status draft, the
/// figures per item and theme, the examples, and a marked place for the
/// business unit's response. `None` when there is nothing to say.
pub fn draft(feedback: &Feedback, id: &str, newsletter: &str, issue: &str) -> Option<String> {
    if feedback.items.is_empty() {
        return None;
    }
    let mut themes: Vec<&str> = Vec::new();
    for item in &feedback.items {
        for theme in &item.themes {
            if !themes.contains(&theme.as_str()) {
                themes.push(theme);
            }
        }
    }
    let mut text = format!(
        "+++\nkind = \"newsletter-item\"\nid = {}\ntitle = \"You said, we did\"\nnewsletter = {}\nissue = {}\nthemes = [{}]\n# A draft: it is sent to nobody until its status is approved or published.\nstatus = \"draft\"\n+++\n\n",
        toml_string(id),
        toml_string(newsletter),
        toml_string(issue),
        themes
            .iter()
            .map(|t| toml_string(t))
            .collect::<Vec<_>>()
            .join(", ")
    );
    text.push_str(&format!(
        "Between {} and {} you told us whether you had used the learning we shared. Thank you: this is what you said, and what we are doing about it.\n\n## You said\n\n",
        feedback.from.format("%-d %B %Y"),
        feedback.to.format("%-d %B %Y")
    ));
    for item in &feedback.items {
        text.push_str(&format!(
            "**{}**: {}.\n\n",
            item.title,
            used_line(&item.used)
        ));
        let reasons = reason_lines(&item.used);
        if !reasons.is_empty() {
            text.push_str("Why some have not used it yet:\n\n");
            for line in reasons {
                text.push_str(&format!("- {line}\n"));
            }
            text.push('\n');
        }
        if !item.examples.is_empty() {
            text.push_str("In your words:\n\n");
            for example in &item.examples {
                text.push_str(&format!("> {}\n\n", example.replace('\n', " ")));
            }
        }
    }
    text.push_str("By theme:\n\n");
    for (_, label, used) in &feedback.themes {
        text.push_str(&format!("- {label}: {}\n", used_line(used)));
    }
    text.push_str(
        "\n## We did\n\nBUSINESS UNIT TO WRITE: what the partnership is doing in response (training dates, changed guidance, follow-up sessions), before this item is approved.\n",
    );
    Some(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    const DEFINITION: &str = r#"{"id":"r1","item":"7mb-neglect","start":"2026-12-01T09:30:00","urgent":false,"channels":["email"],"fallback":true,"ack_deadline_days":7,"reminder_days":[],"escalation_days":[],"max_attempts":5,"audience":{},"waves":[],"follow_ups":[{"after_days":90,"question":"Used it?","answers":["Used it in practice","Not yet","Not relevant to my role"],"reasons":["No opportunity yet","Need more training"]}]}"#;

    fn row(item: &str, answer: &str, reason: Option<&str>, example: Option<&str>) -> FeedbackRow {
        FeedbackRow {
            rollout_id: format!("r-{item}"),
            item_id: item.to_owned(),
            item_title: if item == "7mb-neglect" {
                "Neglect: seeing the child".to_owned()
            } else {
                "Safer sleep".to_owned()
            },
            item_source: if item == "7mb-neglect" {
                "+++\nid = \"7mb-neglect\"\nthemes = [\"neglect\", \"voice-of-the-child\"]\n+++\n"
                    .to_owned()
            } else {
                "+++\nid = \"7mb-safer-sleep\"\nthemes = [\"safer-sleep\", \"neglect\"]\n+++\n"
                    .to_owned()
            },
            definition: DEFINITION.to_owned(),
            follow_up: 1,
            answer: answer.to_owned(),
            reason: reason.map(str::to_owned),
            example: example.map(str::to_owned),
            at: 0,
        }
    }

    fn fixed() -> Feedback {
        let rows = [
            row(
                "7mb-neglect",
                "Used it in practice",
                None,
                Some("I asked to see the bedroom on a visit."),
            ),
            row("7mb-neglect", "Used it in practice", None, None),
            row("7mb-neglect", "Not yet", Some("Need more training"), None),
            row(
                "7mb-neglect",
                "Not yet",
                Some("Need more training"),
                Some("More on GCP2 please."),
            ),
            row(
                "7mb-neglect",
                "Not relevant to my role",
                Some("No opportunity yet"),
                None,
            ),
            row("7mb-safer-sleep", "Used it in practice", None, None),
            row("7mb-safer-sleep", "Not yet", None, None),
        ];
        summarise(
            &rows,
            &Taxonomy::default(),
            NaiveDate::from_ymd_opt(2027, 3, 1).unwrap(),
            NaiveDate::from_ymd_opt(2027, 3, 31).unwrap(),
        )
    }

    #[test]
    fn feedback_counts_use_and_reasons_per_item_and_theme_with_the_examples() {
        let feedback = fixed();
        let neglect = &feedback.items[0];
        assert_eq!(neglect.title, "Neglect: seeing the child");
        assert_eq!((neglect.used.answered, neglect.used.used), (5, 2));
        assert_eq!(
            neglect.used.reasons,
            [
                ("Need more training".to_owned(), 2),
                ("No opportunity yet".to_owned(), 1)
            ]
        );
        assert_eq!(
            neglect.examples,
            [
                "I asked to see the bedroom on a visit.",
                "More on GCP2 please."
            ]
        );
        let sleep = &feedback.items[1];
        assert_eq!(
            (sleep.used.answered, sleep.used.used, sleep.used.no_reason),
            (2, 1, 1)
        );
        let themes: Vec<(&str, u64, u64)> = feedback
            .themes
            .iter()
            .map(|(id, _, u)| (id.as_str(), u.answered, u.used))
            .collect();
        assert_eq!(
            themes,
            [
                ("neglect", 7, 3),
                ("safer-sleep", 2, 1),
                ("voice-of-the-child", 5, 2)
            ]
        );
        let text = feedback.to_string();
        assert!(
            text.contains("Neglect: seeing the child (7mb-neglect): 2 of 5 used it (40%)"),
            "{text}"
        );
        assert!(
            text.contains("    Not used: Need more training: 2\n"),
            "{text}"
        );
        assert!(
            text.contains("    Not used: No reason given: 1\n"),
            "{text}"
        );
        assert!(
            text.contains("    Example: \"More on GCP2 please.\""),
            "{text}"
        );
        assert!(text.contains("  Neglect: 3 of 7 used it (43%)"), "{text}");
    }

    #[test]
    fn the_draft_is_a_newsletter_item_with_the_figures_and_a_place_for_the_response() {
        let text = draft(
            &fixed(),
            "nl-2027-04-you-said-we-did",
            "Partnership Matters",
            "2027-04",
        )
        .unwrap();
        assert!(text.contains("title = \"You said, we did\""), "{text}");
        assert!(text.contains("status = \"draft\""), "{text}");
        assert!(
            text.contains("themes = [\"neglect\", \"voice-of-the-child\", \"safer-sleep\"]"),
            "{text}"
        );
        assert!(
            text.contains("**Neglect: seeing the child**: 2 of 5 used it (40%)."),
            "{text}"
        );
        assert!(text.contains("- Need more training: 2\n"), "{text}");
        assert!(
            text.contains("> I asked to see the bedroom on a visit.\n"),
            "{text}"
        );
        assert!(
            text.contains("## We did\n\nBUSINESS UNIT TO WRITE"),
            "{text}"
        );
        let empty = Feedback {
            items: Vec::new(),
            themes: Vec::new(),
            ..fixed()
        };
        assert_eq!(draft(&empty, "x", "N", "2027-04"), None);
    }
}
