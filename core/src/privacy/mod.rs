//! The privacy guard: flags likely identifying details of children (NHS
//! numbers, dates of birth, postcodes, phone numbers, personal email
//! addresses, deny-listed names) in content text before it is checked or sent.
//! Pure: configuration and text in, located findings out.

mod detect;
#[cfg(test)]
mod tests;

use crate::content::PrivacyAllow;
use detect::{Detectors, Span};
use serde::Deserialize;
use std::fmt;
use std::path::Path;

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
            "{}:{}: {} {:?} looks like a child's identifying detail; remove it, or if it is \
             safe (e.g. a public agency line) add a [[privacy_allow]] entry with text and \
             reason to the front matter",
            self.line,
            self.column,
            self.kind.label(),
            self.text
        )
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

    /// Every finding in `text`, in text order. Where two detections overlap
    /// the earlier (then longer) one is kept, so each span is reported once.
    pub fn scan(&self, text: &str) -> Vec<Finding> {
        locate(text, self.detectors.spans(text))
    }

    /// The findings that stop a send: those no reasoned allow covers.
    pub fn blocking(&self, text: &str, allows: &[PrivacyAllow]) -> Vec<Finding> {
        self.scan(text)
            .into_iter()
            .filter(|finding| !allows.iter().any(|allow| covers(allow, finding)))
            .collect()
    }
}

/// An allow covers a finding when it names the same text, ignoring
/// whitespace, and gives a reason: an unexplained exception is no exception.
fn covers(allow: &PrivacyAllow, finding: &Finding) -> bool {
    !allow.reason.trim().is_empty() && visible_chars(&allow.text).eq(visible_chars(&finding.text))
}

fn visible_chars(text: &str) -> impl Iterator<Item = char> + '_ {
    text.chars().filter(|c| !c.is_whitespace())
}

/// Turns sorted, non-overlapping spans into findings with line and column,
/// walking the text once.
fn locate(text: &str, spans: Vec<Span>) -> Vec<Finding> {
    let (mut line, mut column, mut walked) = (1, 1, 0);
    spans
        .into_iter()
        .map(|span| {
            for c in text[walked..span.range.start].chars() {
                if c == '\n' {
                    line += 1;
                    column = 1;
                } else {
                    column += 1;
                }
            }
            walked = span.range.start;
            Finding {
                kind: span.kind,
                text: text[span.range].to_string(),
                line,
                column,
            }
        })
        .collect()
}
