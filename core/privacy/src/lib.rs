//! The privacy guard: flags likely identifying details of children (NHS
//! numbers, dates of birth, postcodes, phone numbers, personal email
//! addresses, deny-listed names) in content text before it is checked or sent.
//! Pure: configuration and text in, located findings out.

mod detect;
mod source;
#[cfg(test)]
mod tests;
mod view;

use cascade_model::content::PrivacyAllow;
use detect::Detectors;
use serde::Deserialize;
use std::fmt;
use std::ops::Range;
use std::path::Path;
use view::View;

/// What the partnership tells the guard, under `[privacy]` in `cascade.toml`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PrivacyConfig {
    /// Real names that must never appear, e.g. from a review in hand. Matched
    /// as whole words, case-insensitively; a name may have several words.
    pub deny_names: Vec<String>,
    /// Public lines that may appear, e.g. an agency's front door. Compared by
    /// digits only, with `+44` read as a leading `0`.
    pub allow_phone_numbers: Vec<String>,
    /// Domains of personal mail services, e.g. `gmail.com`. Addresses at these
    /// domains or their subdomains are flagged; no other address is.
    pub personal_email_domains: Vec<String>,
}

/// A `[privacy]` setting the guard cannot use.
#[derive(Debug, thiserror::Error)]
pub enum PrivacyError {
    #[error("[privacy] deny_names has an empty entry; remove it or fill in the name")]
    EmptyDenyName,
    #[error(
        "[privacy] allow_phone_numbers entry {0:?} has no digits; write the number as published, e.g. \"0161 496 0000\""
    )]
    PhoneNumberWithoutDigits(String),
    #[error(
        "[privacy] personal_email_domains entry {0:?} is not a domain; write the part after the @, e.g. \"gmail.com\""
    )]
    NotADomain(String),
    #[error("[privacy] deny_names is too long to search ({0}); shorten the list")]
    DenyNamesTooLarge(#[source] regex::Error),
}

/// The kinds of identifying detail the guard looks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FindingKind {
    NhsNumber,
    DateOfBirth,
    Postcode,
    PhoneNumber,
    PersonalEmail,
    DeniedName,
}

impl FindingKind {
    /// The name an author reads in a message.
    pub fn label(&self) -> &'static str {
        match self {
            FindingKind::NhsNumber => "NHS number",
            FindingKind::DateOfBirth => "date of birth",
            FindingKind::Postcode => "postcode",
            FindingKind::PhoneNumber => "phone number",
            FindingKind::PersonalEmail => "personal email address",
            FindingKind::DeniedName => "deny-listed name",
        }
    }
}

/// One likely identifying detail, located in the scanned text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    pub kind: FindingKind,
    /// The matched text exactly as written.
    pub text: String,
    /// 1-based, relative to the scanned text.
    pub line: usize,
    /// 1-based, in characters (not bytes).
    pub column: usize,
}

impl Finding {
    /// The message prefixed with the file it came from:
    /// `path:line:column: <label> "<text>" looks like ...`.
    pub fn in_file<'a>(&'a self, path: &'a Path) -> impl fmt::Display + 'a {
        FindingInFile {
            finding: self,
            path,
        }
    }
}

/// `line:column: <label> "<text>" looks like ...`; see [`Finding::in_file`].
impl fmt::Display for Finding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}:{}: {} {:?} looks like a child's identifying detail; ",
            self.line,
            self.column,
            self.kind.label(),
            self.text
        )?;
        if self.kind == FindingKind::DeniedName {
            write!(
                f,
                "remove it: a name on the partnership's deny list is never allowed"
            )
        } else {
            write!(
                f,
                "remove it, or if it is safe (e.g. a public agency line) add a \
                 [[privacy_allow]] entry with text and reason to the front matter"
            )
        }
    }
}

struct FindingInFile<'a> {
    finding: &'a Finding,
    path: &'a Path,
}

impl fmt::Display for FindingInFile<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.path.display(), self.finding)
    }
}

/// Scans text for identifying details. Build once per configuration: all
/// patterns are compiled in [`PrivacyGuard::new`].
#[derive(Debug)]
pub struct PrivacyGuard {
    detectors: Detectors,
}

impl PrivacyGuard {
    pub fn new(config: &PrivacyConfig) -> Result<PrivacyGuard, PrivacyError> {
        Ok(PrivacyGuard {
            detectors: Detectors::new(config)?,
        })
    }

    /// Every finding in `text` as a reader sees it (entities, escapes and
    /// markup decoded; look-alike letters, spaces and dashes folded), in
    /// text order, each pointing at the text as written. Where two
    /// detections overlap the earlier (then longer) one is kept, so each
    /// span is reported once. For plain text, rendered messages and pages,
    /// templates and anything typed in a form or a chat.
    pub fn scan(&self, text: &str) -> Vec<Finding> {
        self.scan_views(text, vec![View::raw(text)])
    }

    /// [`scan`](Self::scan) of a TOML file (a rollout), also reading every
    /// string as TOML decodes it.
    pub fn scan_toml(&self, text: &str) -> Vec<Finding> {
        self.scan_views(text, vec![View::raw(text), source::toml_strings(text, 0)])
    }

    /// [`scan`](Self::scan) of a content file, also reading its front
    /// matter's strings as TOML decodes them and its body as the Markdown
    /// renderer reads it.
    pub fn scan_item(&self, source: &str) -> Vec<Finding> {
        let mut views = vec![View::raw(source)];
        views.extend(source::item_views(source));
        self.scan_views(source, views)
    }

    /// The findings that stop a send: those no reasoned allow covers. A
    /// deny-listed name is never allowed: the partnership's list outranks an
    /// item's exceptions.
    pub fn blocking(&self, text: &str, allows: &[PrivacyAllow]) -> Vec<Finding> {
        unallowed(self.scan(text), allows)
    }

    /// [`blocking`](Self::blocking) for a content file.
    pub fn blocking_item(&self, source: &str, allows: &[PrivacyAllow]) -> Vec<Finding> {
        unallowed(self.scan_item(source), allows)
    }

    /// Whether two findings' texts read the same (as an allow compares them).
    pub fn same_text(&self, a: &str, b: &str) -> bool {
        visible(a) == visible(b)
    }

    fn scan_views(&self, source: &str, views: Vec<View>) -> Vec<Finding> {
        let mut ranges: Vec<(Range<usize>, FindingKind)> = Vec::new();
        for view in views {
            let view = view.normalised();
            for span in self.detectors.spans(&view.text) {
                ranges.push((view.source_range(span.range), span.kind));
            }
        }
        // Views of one source find the same detail more than once.
        ranges.sort_by_key(|(range, _)| (range.start, std::cmp::Reverse(range.end)));
        let mut covered_to = 0;
        ranges.retain(|(range, _)| {
            let keep = range.start >= covered_to && !range.is_empty();
            if keep {
                covered_to = range.end;
            }
            keep
        });
        locate(source, ranges)
    }
}

fn unallowed(findings: Vec<Finding>, allows: &[PrivacyAllow]) -> Vec<Finding> {
    findings
        .into_iter()
        .filter(|finding| !allows.iter().any(|allow| covers(allow, finding)))
        .collect()
}

/// An allow covers a finding when it names the same text as a reader sees
/// it, ignoring spaces, and gives a reason: an unexplained exception is no
/// exception. Deny-listed names cannot be allowed.
fn covers(allow: &PrivacyAllow, finding: &Finding) -> bool {
    finding.kind != FindingKind::DeniedName
        && !allow.reason.trim().is_empty()
        && visible(&allow.text) == visible(&finding.text)
}

/// Text as a reader sees it, without spaces, lowercased.
fn visible(text: &str) -> String {
    View::raw(text)
        .normalised()
        .text
        .chars()
        .filter(|c| !c.is_whitespace())
        .flat_map(char::to_lowercase)
        .collect()
}

/// Turns sorted, non-overlapping spans into findings with line and column,
/// walking the text once.
fn locate(text: &str, spans: Vec<(Range<usize>, FindingKind)>) -> Vec<Finding> {
    let (mut line, mut column, mut walked) = (1, 1, 0);
    spans
        .into_iter()
        .map(|(range, kind)| {
            for c in text[walked..range.start].chars() {
                if c == '\n' {
                    line += 1;
                    column = 1;
                } else {
                    column += 1;
                }
            }
            walked = range.start;
            Finding {
                kind,
                text: text[range].to_string(),
                line,
                column,
            }
        })
        .collect()
}
