//! Learning content: the three kinds of item a business unit publishes, parsed
//! from Markdown files with TOML front matter between `+++` lines.
//!
//! Everything here is plain data and pure functions: no I/O beyond reading the
//! file named by the caller. A parsed [`LearningItem`] is immutable; its
//! [`Version`] is a content hash, so editing the file makes a new version.

mod bulletin;
mod check_questions;
mod digest;
mod parse;
mod refresher;
mod taxonomy;

pub use bulletin::{bulletin_issue, bulletin_issue_id};
pub use check_questions::{
    CheckQuestion, MAX_CHECK_QUESTIONS, MAX_EXPLANATION_CHARS, MAX_OPTION_CHARS, MAX_OPTIONS,
    MAX_QUESTION_CHARS, MIN_OPTIONS, stored_check_questions, stored_themes,
};
pub use digest::{digest_id, newsletter_issue};
pub use parse::{LoadedItem, load_dir, parse_item};
pub use refresher::{
    MAX_REFRESHER_CHARS, MAX_REFRESHER_LINES, refresher_message, refresher_question,
};
pub use taxonomy::{Taxonomy, Theme};

use chrono::NaiveDate;
use serde::{Deserialize, Serialize};
use std::fmt;
use std::path::PathBuf;

/// One published piece of learning, at one version.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LearningItem {
    /// Stable id chosen by the business unit, e.g. `7mb-neglect-2026`.
    pub id: String,
    pub title: String,
    /// Theme ids from the partnership's taxonomy, in the author's order.
    pub themes: Vec<String>,
    pub status: Status,
    /// Links from the front matter (resources, training dates).
    pub links: Vec<Link>,
    /// Reasoned exceptions to the privacy guard, from the front matter.
    pub privacy_allow: Vec<PrivacyAllow>,
    /// What changed since the previous version, when the change is material:
    /// the note a re-acknowledgement round sends instead of the whole item.
    pub what_changed: Option<String>,
    /// The item's marking under the Government Security Classifications:
    /// which channels and addresses may carry its full text.
    pub classification: Classification,
    /// One line the item gives about itself, safe for any channel: what a
    /// person gets, with a signed link to read the item on cascade's page,
    /// where the channel may not carry the item. Required when
    /// OFFICIAL-SENSITIVE.
    pub summary: Option<String>,
    /// One to three questions (none when the front matter has none) that
    /// check the learning was understood, not only read.
    pub check_questions: Vec<CheckQuestion>,
    /// The key messages spaced refreshers recall, one a refresher in turn
    /// (front matter `refresher`); empty: the first section's first point.
    pub refresher: Vec<String>,
    /// Kind-specific fields and body.
    pub kind: ItemKind,
    /// Content hash over front matter and body.
    pub version: Version,
}

/// The kind-specific part of an item.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum ItemKind {
    SevenMinuteBriefing(SevenMinuteBriefing),
    ReviewFinding(ReviewFinding),
    NewsletterItem(NewsletterItem),
}

/// A 7-minute briefing: one topic in exactly seven `##` sections.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SevenMinuteBriefing {
    /// Who issued it: the partnership or a single agency.
    pub issued_by: String,
    /// The review or report it came from, if any.
    pub source: Option<String>,
    /// Link to the paired 60-minute briefing, if any.
    pub sixty_minute_briefing: Option<String>,
    /// Exactly seven sections.
    pub sections: Vec<Section>,
}

/// Learning from a case review, under a pseudonym.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ReviewFinding {
    pub review_type: ReviewType,
    /// The pseudonym of the child or family, e.g. "Child B". Never a real name.
    pub subject: String,
    pub summary: Section,
    pub key_learning: Section,
    pub what_practitioners_should_do: Section,
    pub good_practice: Section,
}

/// One article of a partnership newsletter.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct NewsletterItem {
    /// The newsletter's name, e.g. "Partnership Matters".
    pub newsletter: String,
    /// The issue, as `YYYY-MM`.
    pub issue: String,
    /// The article body as Markdown.
    pub body: String,
}

/// A `##` section of an item body: its heading and Markdown body.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Section {
    pub title: String,
    /// Markdown, trimmed of leading and trailing blank lines.
    pub body: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Link {
    pub title: String,
    pub url: String,
}

/// An explicit, reasoned exception to the privacy guard.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PrivacyAllow {
    /// The exact text the guard flagged, e.g. a public agency phone line.
    pub text: String,
    /// Why it is safe to send; must not be empty.
    pub reason: String,
}

/// An item's classification under the Government Security Classifications.
/// OFFICIAL-SENSITIVE is a handling caveat of OFFICIAL, so it sorts above
/// it: a destination that may carry a classification may carry those below.
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
#[serde(rename_all = "kebab-case")]
pub enum Classification {
    #[default]
    Official,
    OfficialSensitive,
}

impl Classification {
    pub const ALL: [Classification; 2] =
        [Classification::Official, Classification::OfficialSensitive];

    /// The spelling in front matter and `cascade.toml`.
    pub fn name(self) -> &'static str {
        match self {
            Classification::Official => "official",
            Classification::OfficialSensitive => "official-sensitive",
        }
    }

    /// The marking at the top of each message and page, in capitals, or
    /// `None`: OFFICIAL needs no marking by policy, and cascade leaves it
    /// unmarked so the marking that is shown always means something.
    pub fn marking(self) -> Option<&'static str> {
        match self {
            Classification::Official => None,
            Classification::OfficialSensitive => Some("OFFICIAL-SENSITIVE"),
        }
    }

    /// The value written, or every value allowed.
    pub fn parse(name: &str) -> Result<Classification, String> {
        Classification::ALL
            .into_iter()
            .find(|c| c.name() == name)
            .ok_or_else(|| {
                format!(
                    "use \"official\" (the default) or \"official-sensitive\"; \"{name}\" is not a classification"
                )
            })
    }
}

impl fmt::Display for Classification {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The longest `summary`, in characters: one line of a notice.
pub const MAX_SUMMARY_CHARS: usize = 200;

/// Publication and sharing status. Sharing and publishing differ: learning
/// from a review is often shared while the report itself stays unpublished.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(tag = "status", content = "until", rename_all = "kebab-case")]
pub enum Status {
    Draft,
    Approved,
    Published,
    /// Learning shared, report not public.
    Internal,
    /// Not to be shared before the date.
    Embargoed(NaiveDate),
}

impl Status {
    /// Whether an item with this status may be rolled out on `today`.
    pub fn may_roll_out(&self, today: NaiveDate) -> bool {
        match self {
            Status::Draft => false,
            Status::Approved | Status::Published | Status::Internal => true,
            Status::Embargoed(until) => today >= *until,
        }
    }

    pub fn name(&self) -> &'static str {
        match self {
            Status::Draft => "draft",
            Status::Approved => "approved",
            Status::Published => "published",
            Status::Internal => "internal",
            Status::Embargoed(_) => "embargoed",
        }
    }
}

/// The kinds of review a finding can come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ReviewType {
    #[serde(rename = "SCR")]
    Scr,
    #[serde(rename = "CSPR")]
    Cspr,
    #[serde(rename = "LCSPR")]
    Lcspr,
    #[serde(rename = "rapid-review")]
    RapidReview,
    #[serde(rename = "practice-learning-review")]
    PracticeLearningReview,
    #[serde(rename = "DHR")]
    Dhr,
    #[serde(rename = "SAR")]
    Sar,
    #[serde(rename = "learning-review")]
    LearningReview,
    #[serde(rename = "national-panel")]
    NationalPanel,
}

impl ReviewType {
    pub const ALL: [ReviewType; 9] = [
        ReviewType::Scr,
        ReviewType::Cspr,
        ReviewType::Lcspr,
        ReviewType::RapidReview,
        ReviewType::PracticeLearningReview,
        ReviewType::Dhr,
        ReviewType::Sar,
        ReviewType::LearningReview,
        ReviewType::NationalPanel,
    ];

    /// The spelling used in front matter.
    pub fn code(&self) -> &'static str {
        match self {
            ReviewType::Scr => "SCR",
            ReviewType::Cspr => "CSPR",
            ReviewType::Lcspr => "LCSPR",
            ReviewType::RapidReview => "rapid-review",
            ReviewType::PracticeLearningReview => "practice-learning-review",
            ReviewType::Dhr => "DHR",
            ReviewType::Sar => "SAR",
            ReviewType::LearningReview => "learning-review",
            ReviewType::NationalPanel => "national-panel",
        }
    }

    /// The name a practitioner reads.
    pub fn label(&self) -> &'static str {
        match self {
            ReviewType::Scr => "Serious Case Review",
            ReviewType::Cspr => "Child Safeguarding Practice Review",
            ReviewType::Lcspr => "Local Child Safeguarding Practice Review",
            ReviewType::RapidReview => "Rapid Review",
            ReviewType::PracticeLearningReview => "Practice Learning Review",
            ReviewType::Dhr => "Domestic Homicide Review",
            ReviewType::Sar => "Safeguarding Adults Review",
            ReviewType::LearningReview => "Learning Review",
            ReviewType::NationalPanel => "National Panel Review",
        }
    }
}

/// A content hash (SHA-256, hex) over an item's front matter and body.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Version(pub String);

impl Version {
    /// The first 12 hex digits, enough to tell versions apart in a listing.
    pub fn short(&self) -> &str {
        &self.0[..self.0.len().min(12)]
    }
}

impl fmt::Display for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.short())
    }
}

impl LearningItem {
    /// The kind's name as written in front matter.
    pub fn kind_name(&self) -> &'static str {
        match self.kind {
            ItemKind::SevenMinuteBriefing(_) => "seven-minute-briefing",
            ItemKind::ReviewFinding(_) => "review-finding",
            ItemKind::NewsletterItem(_) => "newsletter-item",
        }
    }

    /// The item's sections in reading order. A newsletter item has one
    /// untitled section holding its body.
    pub fn sections(&self) -> Vec<Section> {
        self.kind.sections()
    }
}

impl ItemKind {
    /// The kind's `##` sections, as [`LearningItem::sections`].
    pub fn sections(&self) -> Vec<Section> {
        match self {
            ItemKind::SevenMinuteBriefing(b) => b.sections.clone(),
            ItemKind::ReviewFinding(f) => vec![
                f.summary.clone(),
                f.key_learning.clone(),
                f.what_practitioners_should_do.clone(),
                f.good_practice.clone(),
            ],
            ItemKind::NewsletterItem(n) => parse::newsletter_sections(&n.body),
        }
    }
}

/// Where something in a source file is: for messages that name file and line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourceLocation {
    pub path: PathBuf,
    /// 1-based.
    pub line: usize,
}

impl fmt::Display for SourceLocation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.path.display(), self.line)
    }
}

/// A problem with a content file, naming the file, the line and the fix.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{at}: {message}{}", help.as_ref().map(|h| format!("\n  help: {h}")).unwrap_or_default())]
pub struct ContentError {
    pub at: SourceLocation,
    pub message: String,
    pub help: Option<String>,
}

/// The largest content file read. A learning item is a few pages of
/// Markdown (the examples are under 10 KB); checking one costs many times
/// its size in memory (a 21 MB file took 2.7 GB), so a file past a
/// megabyte is refused before it is read.
pub const MAX_CONTENT_BYTES: u64 = 1024 * 1024;

/// A content file's text, or the problem reading it: not there, not
/// UTF-8, or larger than [`MAX_CONTENT_BYTES`].
fn read_file(path: &std::path::Path) -> Result<String, ContentError> {
    let (message, help) = match crate::bounds::read_at_most(path, MAX_CONTENT_BYTES) {
        Ok(text) => return Ok(text),
        Err(crate::bounds::FileError::Io(e)) => (
            format!("cannot read the file: {e}"),
            "content files must be readable UTF-8 text",
        ),
        Err(crate::bounds::FileError::TooLarge { size, max }) => (
            format!("the file is {size} bytes; a content file may be at most {max} bytes (1 MB)"),
            "split it into several items, and link to long documents rather than pasting them in",
        ),
    };
    Err(ContentError {
        at: SourceLocation {
            path: path.to_owned(),
            line: 1,
        },
        message,
        help: Some(help.to_owned()),
    })
}

/// Ids of items and rollouts: lowercase letters, digits and dashes.
pub(crate) fn is_slug(s: &str) -> bool {
    !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        && !s.starts_with('-')
}

/// A slug suggested for a name that is not one.
pub(crate) fn slugify(s: &str) -> String {
    s.to_lowercase()
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .collect::<String>()
        .split('-')
        .filter(|p| !p.is_empty())
        .collect::<Vec<_>>()
        .join("-")
}

#[cfg(test)]
mod tests;
