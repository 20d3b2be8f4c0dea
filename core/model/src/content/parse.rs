//! Parsing and validating content files: `+++` TOML front matter, then a
//! Markdown body. Every problem is reported with its file and line, and all
//! problems in a file are reported at once.

use super::{
    CheckQuestion, Classification, ContentError, ItemKind, LearningItem, Link, MAX_SUMMARY_CHARS,
    NewsletterItem, PrivacyAllow, ReviewFinding, ReviewType, Section, SevenMinuteBriefing,
    SourceLocation, Status, Taxonomy, Version, is_slug, slugify,
};
use chrono::NaiveDate;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};
use toml::Spanned;

const KINDS: &str = "seven-minute-briefing, review-finding or newsletter-item";
const STATUSES: &str = "draft, approved, published, internal or embargoed";
const FINDING_SECTIONS: [&str; 4] = [
    "Summary",
    "Key learning",
    "What practitioners should do",
    "Good practice",
];

/// A parsed item with the file it came from and the file's text, which the
/// privacy guard scans so its findings carry the file's own line numbers.
#[derive(Debug, Clone)]
pub struct LoadedItem {
    pub item: LearningItem,
    pub path: PathBuf,
    pub text: String,
}

/// Whether an exception's reason is a reason: a few words, not a mark.
fn explains(reason: &str) -> bool {
    let reason = reason.trim();
    reason.chars().filter(|c| c.is_alphanumeric()).count() >= 10
        && reason.split_whitespace().count() >= 2
}

/// Parses one content file. All problems found are returned at once.
pub fn parse_item(
    path: &Path,
    text: &str,
    taxonomy: &Taxonomy,
) -> Result<LearningItem, Vec<ContentError>> {
    let mut p = Problems {
        path,
        errors: Vec::new(),
    };
    let Some(file) = split_front_matter(&mut p, text) else {
        return Err(p.errors);
    };
    let front_line = |offset: usize| file.front_line(offset);
    let Some(raw) = parse_front_matter(&mut p, &file) else {
        return Err(p.errors);
    };
    let common = common_fields(&mut p, &raw, taxonomy, &front_line);
    check_privacy_allow(&mut p, &raw.privacy_allow);
    check_links(&mut p, &raw.links);
    let kind = item_kind(&mut p, &raw, common.kind.as_deref(), &file, &front_line);
    let (classification, summary) = classification(&mut p, &raw, &front_line);
    // Sections are checked against only when the body parsed.
    let sections = kind.as_ref().map(ItemKind::sections);
    let check_questions =
        match super::check_questions::check(&raw.check_questions, sections.as_deref()) {
            Ok(questions) => questions,
            Err(problems) => {
                for (offset, message, help) in problems {
                    p.push(front_line(offset), message, help);
                }
                Vec::new()
            }
        };
    let refresher = match super::refresher::check(&raw.refresher) {
        Ok(lines) => lines,
        Err(problems) => {
            for (offset, message, help) in problems {
                p.push(front_line(offset), message, help);
            }
            Vec::new()
        }
    };

    match (common.id, common.title, common.themes, common.status, kind) {
        (Some(id), Some(title), Some(themes), Some(status), Some(kind)) if p.errors.is_empty() => {
            let mut item = LearningItem {
                id,
                title,
                themes,
                status,
                links: raw.links,
                privacy_allow: raw.privacy_allow,
                what_changed: optional(&raw.what_changed),
                classification,
                summary,
                check_questions,
                refresher,
                kind,
                version: Version(String::new()),
            };
            item.version = version_of(&item);
            Ok(item)
        }
        _ => Err(p.errors),
    }
}

/// The item's classification and its one-line summary: an unknown
/// classification names the ones there are; an OFFICIAL-SENSITIVE item
/// must say in one line what it is about, for the notice that goes where
/// its full text may not.
fn classification(
    p: &mut Problems,
    raw: &RawFrontMatter,
    front_line: &dyn Fn(usize) -> usize,
) -> (Classification, Option<String>) {
    let classification = match &raw.classification {
        None => Classification::Official,
        Some(value) => match Classification::parse(value.get_ref().trim()) {
            Ok(c) => c,
            Err(help) => {
                p.push(
                    front_line(value.span().start),
                    format!("unknown classification \"{}\"", value.get_ref().trim()),
                    help,
                );
                Classification::Official
            }
        },
    };
    let summary = optional(&raw.summary);
    if let (Some(text), Some(at)) = (&summary, &raw.summary) {
        let line = front_line(at.span().start);
        if text.contains(['\n', '\r']) {
            p.push(
                line,
                "`summary` must be one line",
                "write the summary as one sentence on one line; the item's body says the rest",
            );
        } else if text.chars().count() > MAX_SUMMARY_CHARS {
            p.push(
                line,
                format!(
                    "`summary` is {} characters; at most {MAX_SUMMARY_CHARS} fit a notice",
                    text.chars().count()
                ),
                "shorten it to one sentence; the item's body says the rest",
            );
        }
    }
    if classification == Classification::OfficialSensitive && summary.is_none() {
        let line = raw
            .classification
            .as_ref()
            .map_or(1, |c| front_line(c.span().start));
        p.push(
            line,
            "an OFFICIAL-SENSITIVE item needs a one-line `summary`",
            "add summary = \"...\" to the front matter: one sentence, safe for any channel, that people get with a link to read the item where their channel may not carry it",
        );
    }
    (classification, summary)
}

/// A content file cut at its two `+++` lines.
struct ContentFile<'t> {
    /// The TOML between the `+++` lines.
    front: String,
    /// The lines after the closing `+++`.
    body: Vec<&'t str>,
    /// The file's line number of the body's first line.
    body_first_line: usize,
}

impl ContentFile<'_> {
    /// The file's line of a byte offset in the front matter, which starts
    /// on line 2.
    fn front_line(&self, offset: usize) -> usize {
        2 + self.front[..offset.min(self.front.len())]
            .matches('\n')
            .count()
    }
}

/// Cuts the file (less a byte-order mark) into front matter and body, or
/// reports that the `+++` lines are missing.
fn split_front_matter<'t>(p: &mut Problems, text: &'t str) -> Option<ContentFile<'t>> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let lines: Vec<&str> = text.lines().collect();
    if lines.first().map(|l| l.trim_end()) != Some("+++") {
        p.push(
            1,
            "missing front matter",
            "start the file with a line `+++`, then the TOML front matter (kind, id, title, themes, status), then another `+++` line",
        );
        return None;
    }
    let Some(close) = lines.iter().skip(1).position(|l| l.trim_end() == "+++") else {
        p.push(
            1,
            "the front matter is never closed",
            "add a line `+++` after the front matter, before the body",
        );
        return None;
    };
    let close = close + 1;
    Some(ContentFile {
        front: lines[1..close].join("\n"),
        body: lines[close + 1..].to_vec(),
        body_first_line: close + 2,
    })
}

/// The front matter's TOML, every field with its place, or the TOML error.
fn parse_front_matter(p: &mut Problems, file: &ContentFile) -> Option<RawFrontMatter> {
    match toml::from_str(&file.front) {
        Ok(raw) => Some(raw),
        Err(e) => {
            let line = e.span().map(|s| file.front_line(s.start)).unwrap_or(2);
            p.push(
                line,
                format!("the front matter is not valid TOML: {}", e.message()),
                "front matter is TOML: `key = \"value\"`, lists as `[\"a\", \"b\"]`, dates as 2026-12-01",
            );
            None
        }
    }
}

/// The fields every kind of item has; `None` where a field had a problem.
struct CommonFields {
    kind: Option<String>,
    id: Option<String>,
    title: Option<String>,
    themes: Option<Vec<String>>,
    status: Option<Status>,
}

fn common_fields(
    p: &mut Problems,
    raw: &RawFrontMatter,
    taxonomy: &Taxonomy,
    front_line: &dyn Fn(usize) -> usize,
) -> CommonFields {
    let kind = required(
        p,
        &raw.kind,
        "kind",
        "\"seven-minute-briefing\"",
        front_line,
    );
    let id = required(p, &raw.id, "id", "\"7mb-neglect-2026\"", front_line);
    let title = required(
        p,
        &raw.title,
        "title",
        "\"Neglect: seeing the child\"",
        front_line,
    );
    if let (Some(id), Some(span)) = (&id, &raw.id)
        && !is_slug(id)
    {
        p.push(
            front_line(span.span().start),
            format!("id \"{id}\" must be lowercase letters, digits and dashes"),
            format!("for example id = \"{}\"", slugify(id)),
        );
    }
    let themes = validate_themes(p, raw, taxonomy, front_line);
    let status = validate_status(p, raw, front_line);
    CommonFields {
        kind,
        id,
        title,
        themes,
        status,
    }
}

/// A text field that must be there and not blank, trimmed.
fn required(
    p: &mut Problems,
    field: &Option<Spanned<String>>,
    name: &str,
    example: &str,
    front_line: &dyn Fn(usize) -> usize,
) -> Option<String> {
    match field {
        Some(v) if !v.get_ref().trim().is_empty() => Some(v.get_ref().trim().to_owned()),
        Some(v) => {
            p.push(
                front_line(v.span().start),
                format!("`{name}` is empty"),
                format!("write e.g. {name} = {example}"),
            );
            None
        }
        None => {
            p.push(
                1,
                format!("the front matter has no `{name}`"),
                format!("add e.g. {name} = {example}"),
            );
            None
        }
    }
}

/// Each privacy exception needs the text it allows and a reason that says why.
fn check_privacy_allow(p: &mut Problems, allows: &[PrivacyAllow]) {
    for (i, allow) in allows.iter().enumerate() {
        if allow.reason.trim().is_empty() || allow.text.trim().is_empty() {
            p.push(
                1,
                format!("privacy_allow entry {} needs both `text` and a `reason`", i + 1),
                "say exactly what is allowed and why it is safe to send, e.g. reason = \"public switchboard of the council\"",
            );
        } else if !explains(&allow.reason) {
            p.push(
                1,
                format!(
                    "privacy_allow entry {} has the reason {:?}, which does not say why the text is safe to send",
                    i + 1,
                    allow.reason.trim()
                ),
                "write a reason of a few words, e.g. reason = \"public switchboard of the council\"",
            );
        }
    }
}

fn check_links(p: &mut Problems, links: &[Link]) {
    for link in links {
        if link.url.trim().is_empty() || link.title.trim().is_empty() {
            p.push(
                1,
                "a [[links]] entry needs a `title` and a `url`",
                "write title = \"...\" and url = \"https://...\"",
            );
        }
    }
}

/// The kind's own fields and body; `None` for a missing or unknown kind,
/// or when any of them had a problem.
fn item_kind(
    p: &mut Problems,
    raw: &RawFrontMatter,
    kind: Option<&str>,
    file: &ContentFile,
    front_line: &dyn Fn(usize) -> usize,
) -> Option<ItemKind> {
    match kind {
        None => None,
        Some("seven-minute-briefing") => seven_minute_briefing(p, raw, file, front_line),
        Some("review-finding") => review_finding(p, raw, file, front_line),
        Some("newsletter-item") => newsletter_item(p, raw, file, front_line),
        Some(other) => {
            let kind_line = raw
                .kind
                .as_ref()
                .map(|k| front_line(k.span().start))
                .unwrap_or(1);
            p.push(
                kind_line,
                format!("unknown kind \"{other}\""),
                format!("use one of {KINDS}"),
            );
            None
        }
    }
}

fn seven_minute_briefing(
    p: &mut Problems,
    raw: &RawFrontMatter,
    file: &ContentFile,
    front_line: &dyn Fn(usize) -> usize,
) -> Option<ItemKind> {
    forbid_fields(
        p,
        raw,
        "seven-minute-briefing",
        &["review_type", "subject", "newsletter", "issue"],
        front_line,
    );
    let issued_by = required(
        p,
        &raw.issued_by,
        "issued_by",
        "\"Northbridge Safeguarding Children Partnership\"",
        front_line,
    );
    let sections = split_sections(&file.body, file.body_first_line);
    if sections.leading_text_line.is_some() || sections.sections.len() != 7 {
        report_section_count(p, &sections, file.body_first_line);
        return None;
    }
    issued_by.map(|issued_by| {
        ItemKind::SevenMinuteBriefing(SevenMinuteBriefing {
            issued_by,
            source: optional(&raw.source),
            sixty_minute_briefing: optional(&raw.sixty_minute_briefing),
            sections: sections.sections.into_iter().map(|s| s.section).collect(),
        })
    })
}

fn review_finding(
    p: &mut Problems,
    raw: &RawFrontMatter,
    file: &ContentFile,
    front_line: &dyn Fn(usize) -> usize,
) -> Option<ItemKind> {
    forbid_fields(
        p,
        raw,
        "review-finding",
        &["issued_by", "sixty_minute_briefing", "newsletter", "issue"],
        front_line,
    );
    let review_type = review_type(p, &raw.review_type, front_line);
    let subject = required(p, &raw.subject, "subject", "\"Child B\"", front_line);
    let sections = finding_sections(p, &file.body, file.body_first_line);
    let [
        summary,
        key_learning,
        what_practitioners_should_do,
        good_practice,
    ] = sections?;
    Some(ItemKind::ReviewFinding(ReviewFinding {
        review_type: review_type?,
        subject: subject?,
        summary,
        key_learning,
        what_practitioners_should_do,
        good_practice,
    }))
}

/// A review type by its code, in any case.
fn review_type(
    p: &mut Problems,
    field: &Option<Spanned<String>>,
    front_line: &dyn Fn(usize) -> usize,
) -> Option<ReviewType> {
    let Some(v) = field else {
        p.push(
            1,
            "the front matter has no `review_type`",
            format!(
                "add e.g. review_type = \"LCSPR\"; one of {}",
                review_types()
            ),
        );
        return None;
    };
    let found = ReviewType::ALL
        .iter()
        .find(|t| t.code().eq_ignore_ascii_case(v.get_ref().trim()));
    if found.is_none() {
        p.push(
            front_line(v.span().start),
            format!("unknown review_type \"{}\"", v.get_ref()),
            format!("use one of {}", review_types()),
        );
    }
    found.copied()
}

fn newsletter_item(
    p: &mut Problems,
    raw: &RawFrontMatter,
    file: &ContentFile,
    front_line: &dyn Fn(usize) -> usize,
) -> Option<ItemKind> {
    forbid_fields(
        p,
        raw,
        "newsletter-item",
        &[
            "issued_by",
            "sixty_minute_briefing",
            "review_type",
            "subject",
            "source",
        ],
        front_line,
    );
    let newsletter = required(
        p,
        &raw.newsletter,
        "newsletter",
        "\"Partnership Matters\"",
        front_line,
    );
    let issue = newsletter_issue(p, &raw.issue, front_line);
    let text = trim_blank_lines(&file.body);
    if text.is_empty() {
        p.push(
            file.body_first_line,
            "the newsletter item has no body",
            "write the article below the closing `+++`",
        );
    }
    Some(ItemKind::NewsletterItem(NewsletterItem {
        newsletter: newsletter?,
        issue: issue?,
        body: text,
    }))
}

/// A newsletter's issue, `YYYY-MM`. One that is not a year and month is
/// reported but still returned: the problem alone refuses the item.
fn newsletter_issue(
    p: &mut Problems,
    field: &Option<Spanned<String>>,
    front_line: &dyn Fn(usize) -> usize,
) -> Option<String> {
    let issue = required(p, field, "issue", "\"2026-12\"", front_line);
    if let (Some(issue), Some(span)) = (&issue, field)
        && (NaiveDate::parse_from_str(&format!("{issue}-01"), "%Y-%m-%d").is_err()
            || issue.len() != 7)
    {
        p.push(
            front_line(span.span().start),
            format!("issue \"{issue}\" is not a year and month"),
            "write it as YYYY-MM, e.g. issue = \"2026-12\"",
        );
    }
    issue
}

/// Parses every `*.md` file under `dir` (recursively, in path order),
/// collecting all problems, including ids used by two files.
pub fn load_dir(dir: &Path, taxonomy: &Taxonomy) -> (Vec<LoadedItem>, Vec<ContentError>) {
    let mut paths = Vec::new();
    let mut errors = Vec::new();
    collect_markdown(dir, &mut paths, &mut errors);
    paths.sort();
    let mut items: Vec<LoadedItem> = Vec::new();
    for path in paths {
        let text = match super::read_file(&path) {
            Ok(t) => t,
            Err(e) => {
                errors.push(e);
                continue;
            }
        };
        match parse_item(&path, &text, taxonomy) {
            Ok(item) => {
                if let Some(first) = items.iter().find(|l| l.item.id == item.id) {
                    errors.push(ContentError {
                        at: SourceLocation { path: path.clone(), line: line_of_key(&text, "id") },
                        message: format!("id \"{}\" is already used by {}", item.id, first.path.display()),
                        help: Some("give each item its own id; a new version of the same item is an edit of the same file".to_owned()),
                    });
                } else {
                    items.push(LoadedItem { item, path, text });
                }
            }
            Err(mut e) => errors.append(&mut e),
        }
    }
    (items, errors)
}

fn collect_markdown(dir: &Path, paths: &mut Vec<PathBuf>, errors: &mut Vec<ContentError>) {
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) => {
            errors.push(ContentError {
                at: SourceLocation {
                    path: dir.to_owned(),
                    line: 1,
                },
                message: format!("cannot read the content folder: {e}"),
                help: Some(
                    "a project keeps its learning items in content/ (see `cascade init`)"
                        .to_owned(),
                ),
            });
            return;
        }
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            collect_markdown(&path, paths, errors);
        } else if path.extension().is_some_and(|e| e == "md") {
            paths.push(path);
        }
    }
}

impl LearningItem {
    /// The item written back as a content file. Parsing the result gives the
    /// same item, version included: the version is the hash of this form.
    pub fn to_markdown(&self) -> String {
        let (mut issued_by, mut source, mut sixty, mut review_type, mut subject) =
            (None, None, None, None, None);
        let (mut newsletter, mut issue) = (None, None);
        let mut body = String::new();
        let mut push_section = |s: &Section| {
            body.push_str(&format!("## {}\n\n", s.title));
            if !s.body.is_empty() {
                body.push_str(&s.body);
                body.push_str("\n\n");
            }
        };
        match &self.kind {
            ItemKind::SevenMinuteBriefing(b) => {
                issued_by = Some(b.issued_by.clone());
                source = b.source.clone();
                sixty = b.sixty_minute_briefing.clone();
                b.sections.iter().for_each(&mut push_section);
            }
            ItemKind::ReviewFinding(f) => {
                review_type = Some(f.review_type.code().to_owned());
                subject = Some(f.subject.clone());
                [
                    &f.summary,
                    &f.key_learning,
                    &f.what_practitioners_should_do,
                    &f.good_practice,
                ]
                .into_iter()
                .for_each(&mut push_section);
            }
            ItemKind::NewsletterItem(n) => {
                newsletter = Some(n.newsletter.clone());
                issue = Some(n.issue.clone());
                body.push_str(&n.body);
                body.push('\n');
            }
        }
        let (status, embargo_until) = match self.status {
            Status::Embargoed(d) => ("embargoed", Some(toml_date(d))),
            s => (s.name(), None),
        };
        let front = CanonicalFrontMatter {
            kind: self.kind_name(),
            id: &self.id,
            title: &self.title,
            themes: &self.themes,
            status,
            embargo_until,
            issued_by,
            source,
            sixty_minute_briefing: sixty,
            review_type,
            subject,
            newsletter,
            issue,
            what_changed: self.what_changed.as_deref(),
            classification: (self.classification != Classification::Official)
                .then_some(self.classification.name()),
            summary: self.summary.as_deref(),
            links: &self.links,
            privacy_allow: &self.privacy_allow,
            check_questions: &self.check_questions,
            refresher: &self.refresher,
        };
        let front =
            toml::to_string(&front).expect("front matter of plain strings always serialises");
        format!(
            "+++\n{front}+++\n\n{}",
            body.trim_end_matches('\n').to_owned() + "\n"
        )
    }
}

fn version_of(item: &LearningItem) -> Version {
    Version(hex::encode(Sha256::digest(item.to_markdown().as_bytes())))
}

fn toml_date(d: NaiveDate) -> toml::value::Datetime {
    d.format("%Y-%m-%d")
        .to_string()
        .parse()
        .expect("a formatted date parses as a TOML date")
}

#[derive(Serialize)]
struct CanonicalFrontMatter<'a> {
    kind: &'a str,
    id: &'a str,
    title: &'a str,
    themes: &'a [String],
    status: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    embargo_until: Option<toml::value::Datetime>,
    #[serde(skip_serializing_if = "Option::is_none")]
    issued_by: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    source: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    sixty_minute_briefing: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    review_type: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    subject: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    newsletter: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    issue: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    what_changed: Option<&'a str>,
    /// Left out when OFFICIAL, so items written before classifications
    /// keep their versions.
    #[serde(skip_serializing_if = "Option::is_none")]
    classification: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    summary: Option<&'a str>,
    /// Left out when there are none, so items written before refreshers
    /// keep their versions.
    #[serde(skip_serializing_if = "<[String]>::is_empty")]
    refresher: &'a [String],
    #[serde(skip_serializing_if = "<[Link]>::is_empty")]
    links: &'a [Link],
    #[serde(skip_serializing_if = "<[PrivacyAllow]>::is_empty")]
    privacy_allow: &'a [PrivacyAllow],
    /// Left out when there are none, so items written before check
    /// questions keep their versions.
    #[serde(skip_serializing_if = "<[CheckQuestion]>::is_empty")]
    check_questions: &'a [CheckQuestion],
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFrontMatter {
    kind: Option<Spanned<String>>,
    id: Option<Spanned<String>>,
    title: Option<Spanned<String>>,
    themes: Option<Spanned<Vec<Spanned<String>>>>,
    status: Option<Spanned<String>>,
    embargo_until: Option<Spanned<toml::Value>>,
    issued_by: Option<Spanned<String>>,
    source: Option<Spanned<String>>,
    sixty_minute_briefing: Option<Spanned<String>>,
    review_type: Option<Spanned<String>>,
    subject: Option<Spanned<String>>,
    newsletter: Option<Spanned<String>>,
    issue: Option<Spanned<String>>,
    what_changed: Option<Spanned<String>>,
    classification: Option<Spanned<String>>,
    summary: Option<Spanned<String>>,
    #[serde(default)]
    links: Vec<Link>,
    #[serde(default)]
    privacy_allow: Vec<PrivacyAllow>,
    #[serde(default)]
    check_questions: Vec<Spanned<super::check_questions::RawCheckQuestion>>,
    refresher: Option<Spanned<Vec<Spanned<String>>>>,
}

impl RawFrontMatter {
    fn field_span(&self, name: &str) -> Option<usize> {
        let s = |f: &Option<Spanned<String>>| f.as_ref().map(|v| v.span().start);
        match name {
            "issued_by" => s(&self.issued_by),
            "source" => s(&self.source),
            "sixty_minute_briefing" => s(&self.sixty_minute_briefing),
            "review_type" => s(&self.review_type),
            "subject" => s(&self.subject),
            "newsletter" => s(&self.newsletter),
            "issue" => s(&self.issue),
            _ => None,
        }
    }
}

struct Problems<'a> {
    path: &'a Path,
    errors: Vec<ContentError>,
}

impl Problems<'_> {
    fn push(&mut self, line: usize, message: impl Into<String>, help: impl Into<String>) {
        self.errors.push(ContentError {
            at: SourceLocation {
                path: self.path.to_owned(),
                line,
            },
            message: message.into(),
            help: Some(help.into()),
        });
    }
}

fn optional(field: &Option<Spanned<String>>) -> Option<String> {
    field
        .as_ref()
        .map(|v| v.get_ref().trim().to_owned())
        .filter(|v| !v.is_empty())
}

fn forbid_fields(
    p: &mut Problems,
    raw: &RawFrontMatter,
    kind: &str,
    fields: &[&str],
    front_line: &dyn Fn(usize) -> usize,
) {
    for field in fields {
        if let Some(offset) = raw.field_span(field) {
            p.push(
                front_line(offset),
                format!("`{field}` does not apply to a {kind}"),
                format!("remove `{field}`, or change `kind`"),
            );
        }
    }
}

fn validate_themes(
    p: &mut Problems,
    raw: &RawFrontMatter,
    taxonomy: &Taxonomy,
    front_line: &dyn Fn(usize) -> usize,
) -> Option<Vec<String>> {
    let Some(themes) = &raw.themes else {
        p.push(
            1,
            "the front matter has no `themes`",
            "add e.g. themes = [\"neglect\"]; themes come from cascade.toml",
        );
        return None;
    };
    if themes.get_ref().is_empty() {
        p.push(
            front_line(themes.span().start),
            "`themes` is empty",
            "name at least one theme, e.g. themes = [\"neglect\"]",
        );
        return None;
    }
    let before = p.errors.len();
    let mut out = Vec::new();
    for theme in themes.get_ref() {
        let id = theme.get_ref().trim();
        match taxonomy.check(id) {
            Ok(()) if out.iter().any(|t| t == id) => {
                p.push(
                    front_line(theme.span().start),
                    format!("theme \"{id}\" is listed twice"),
                    "list each theme once",
                );
            }
            Ok(()) => out.push(id.to_owned()),
            Err(unknown) => p.push(
                front_line(theme.span().start),
                unknown.message(),
                unknown.help(),
            ),
        }
    }
    (p.errors.len() == before).then_some(out)
}

fn validate_status(
    p: &mut Problems,
    raw: &RawFrontMatter,
    front_line: &dyn Fn(usize) -> usize,
) -> Option<Status> {
    let Some(status) = &raw.status else {
        p.push(
            1,
            "the front matter has no `status`",
            format!("add e.g. status = \"approved\"; one of {STATUSES}"),
        );
        return None;
    };
    let status_line = front_line(status.span().start);
    let embargo = match &raw.embargo_until {
        None => None,
        Some(v) => {
            let line = front_line(v.span().start);
            let date = match v.get_ref() {
                toml::Value::Datetime(d) => d.date.and_then(|d| {
                    NaiveDate::from_ymd_opt(d.year.into(), d.month.into(), d.day.into())
                }),
                toml::Value::String(s) => NaiveDate::parse_from_str(s.trim(), "%Y-%m-%d").ok(),
                _ => None,
            };
            if date.is_none() {
                p.push(
                    line,
                    "`embargo_until` is not a date",
                    "write it as embargo_until = 2026-12-01",
                );
                return None;
            }
            date.map(|d| (d, line))
        }
    };
    let parsed = match status.get_ref().trim() {
        "draft" => Status::Draft,
        "approved" => Status::Approved,
        "published" => Status::Published,
        "internal" => Status::Internal,
        "embargoed" => match embargo {
            Some((d, _)) => return Some(Status::Embargoed(d)),
            None => {
                p.push(
                    status_line,
                    "status \"embargoed\" needs a date",
                    "add embargo_until = 2026-12-01 (the first day the learning may be shared)",
                );
                return None;
            }
        },
        other => {
            p.push(
                status_line,
                format!("unknown status \"{other}\""),
                format!("use one of {STATUSES}"),
            );
            return None;
        }
    };
    if let Some((_, line)) = embargo {
        p.push(
            line,
            format!(
                "`embargo_until` only applies to status \"embargoed\", not \"{}\"",
                parsed.name()
            ),
            "remove embargo_until, or set status = \"embargoed\"",
        );
        return None;
    }
    Some(parsed)
}

struct BodySection {
    line: usize,
    section: Section,
}

struct BodySections {
    sections: Vec<BodySection>,
    leading_text_line: Option<usize>,
}

/// A newsletter article's sections: the text before its first `##`
/// heading (untitled), then one per heading; the whole body, untitled, when
/// it has none.
pub(super) fn newsletter_sections(body: &str) -> Vec<Section> {
    let lines: Vec<&str> = body.lines().collect();
    let split = split_sections(&lines, 0);
    let leading = match split.leading_text_line {
        Some(start) => {
            let end = split.sections.first().map_or(lines.len(), |s| s.line);
            Some(trim_blank_lines(&lines[start..end]))
        }
        None => None,
    };
    if split.sections.is_empty() {
        return vec![Section {
            title: String::new(),
            body: body.to_owned(),
        }];
    }
    leading
        .map(|body| Section {
            title: String::new(),
            body,
        })
        .into_iter()
        .chain(split.sections.into_iter().map(|s| s.section))
        .collect()
}

/// Splits a body into `##` sections, ignoring `##` inside fenced code.
fn split_sections(body: &[&str], first_line: usize) -> BodySections {
    let mut sections: Vec<(usize, String, Vec<&str>)> = Vec::new();
    let mut leading_text_line = None;
    let mut fence: Option<&str> = None;
    for (i, line) in body.iter().enumerate() {
        let trimmed = line.trim_start();
        if let Some(f) = fence {
            if trimmed.starts_with(f) {
                fence = None;
            }
        } else if trimmed.starts_with("```") || trimmed.starts_with("~~~") {
            fence = Some(&trimmed[..3]);
        } else if let Some(title) = line
            .strip_prefix("## ")
            .or_else(|| (line.trim_end() == "##").then_some(""))
        {
            sections.push((
                first_line + i,
                title.trim().trim_end_matches('#').trim().to_owned(),
                Vec::new(),
            ));
            continue;
        }
        match sections.last_mut() {
            Some((_, _, lines)) => lines.push(line),
            None if !line.trim().is_empty() && leading_text_line.is_none() => {
                leading_text_line = Some(first_line + i)
            }
            None => {}
        }
    }
    BodySections {
        sections: sections
            .into_iter()
            .map(|(line, title, lines)| BodySection {
                line,
                section: Section {
                    title,
                    body: trim_blank_lines(&lines),
                },
            })
            .collect(),
        leading_text_line,
    }
}

fn report_section_count(p: &mut Problems, sections: &BodySections, body_first_line: usize) {
    if let Some(line) = sections.leading_text_line {
        p.push(
            line,
            "text before the first `##` section",
            "a 7-minute briefing is exactly seven `##` sections; move this text into one of them",
        );
    }
    let n = sections.sections.len();
    if n > 7 {
        p.push(
            sections.sections[7].line,
            format!(
                "a 7-minute briefing has exactly seven `##` sections; this is section {}",
                8
            ),
            format!("found {n} sections: merge or remove {} of them", n - 7),
        );
    } else if n < 7 {
        let line = sections
            .sections
            .last()
            .map(|s| s.line)
            .unwrap_or(body_first_line);
        p.push(line, format!("a 7-minute briefing has exactly seven `##` sections; found {n}"), "add the missing sections, e.g. background, why it matters, key information, what the research says, what to do, questions for reflection, further information");
    }
}

fn finding_sections(
    p: &mut Problems,
    body: &[&str],
    body_first_line: usize,
) -> Option<[Section; 4]> {
    let sections = split_sections(body, body_first_line);
    let mut found: [Option<Section>; 4] = Default::default();
    let before = p.errors.len();
    if let Some(line) = sections.leading_text_line {
        p.push(
            line,
            "text before the first `##` section",
            format!(
                "put it under one of the sections: {}",
                FINDING_SECTIONS.join(", ")
            ),
        );
    }
    for s in sections.sections {
        let key = normalise_heading(&s.section.title);
        match FINDING_SECTIONS
            .iter()
            .position(|f| normalise_heading(f) == key)
        {
            Some(i) if found[i].is_some() => p.push(
                s.line,
                format!("section \"{}\" appears twice", s.section.title),
                "merge the two sections",
            ),
            Some(i) => found[i] = Some(s.section),
            None => p.push(
                s.line,
                format!(
                    "unknown section \"{}\" in a review finding",
                    s.section.title
                ),
                format!("use the sections {}", FINDING_SECTIONS.join(", ")),
            ),
        }
    }
    for (name, slot) in FINDING_SECTIONS.iter().zip(&found) {
        if slot.is_none() {
            p.push(
                body_first_line,
                format!("the review finding has no \"{name}\" section"),
                format!("add a section `## {name}`"),
            );
        }
    }
    if p.errors.len() != before {
        return None;
    }
    let [a, b, c, d] = found;
    Some([a?, b?, c?, d?])
}

/// "2. Key learning:" and "key learning" are the same heading.
fn normalise_heading(title: &str) -> String {
    let t = title.trim_start_matches(|c: char| {
        c.is_ascii_digit() || c == '.' || c == ')' || c.is_whitespace()
    });
    t.chars()
        .filter(|c| c.is_alphanumeric() || c.is_whitespace())
        .collect::<String>()
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
        .to_lowercase()
}

fn trim_blank_lines(lines: &[&str]) -> String {
    let start = lines
        .iter()
        .position(|l| !l.trim().is_empty())
        .unwrap_or(lines.len());
    let end = lines
        .iter()
        .rposition(|l| !l.trim().is_empty())
        .map(|i| i + 1)
        .unwrap_or(start);
    lines[start..end]
        .iter()
        .map(|l| l.trim_end())
        .collect::<Vec<_>>()
        .join("\n")
}

fn review_types() -> String {
    ReviewType::ALL
        .iter()
        .map(|t| t.code())
        .collect::<Vec<_>>()
        .join(", ")
}

/// The line of `key = ...` in a file's front matter, for errors found after parsing.
pub(crate) fn line_of_key(text: &str, key: &str) -> usize {
    text.lines()
        .position(|l| {
            l.trim_start()
                .strip_prefix(key)
                .is_some_and(|rest| rest.trim_start().starts_with('='))
        })
        .map(|i| i + 1)
        .unwrap_or(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn problems() -> Problems<'static> {
        Problems {
            path: Path::new("content/x.md"),
            errors: Vec::new(),
        }
    }

    #[test]
    fn the_front_matter_is_cut_at_its_plus_lines_after_a_byte_order_mark() {
        let mut p = problems();
        let text = "\u{feff}+++\nid = \"a\"\ntitle = \"T\"\n+++  \n\n## One\n";
        let file = split_front_matter(&mut p, text).expect("the front matter is closed");
        assert!(p.errors.is_empty());
        assert_eq!(file.front, "id = \"a\"\ntitle = \"T\"");
        assert_eq!(file.body, ["", "## One"]);
        assert_eq!(file.body_first_line, 5);
        assert_eq!(file.front_line(0), 2);
        assert_eq!(file.front_line(file.front.find("title").expect("there")), 3);
        assert_eq!(
            file.front_line(usize::MAX),
            3,
            "past the end is the last line"
        );
    }

    #[test]
    fn a_file_without_both_plus_lines_has_no_front_matter() {
        let mut p = problems();
        assert!(split_front_matter(&mut p, "id = \"a\"\n").is_none());
        assert!(split_front_matter(&mut p, "+++\nid = \"a\"\n").is_none());
        let messages: Vec<&str> = p.errors.iter().map(|e| e.message.as_str()).collect();
        assert_eq!(
            messages,
            ["missing front matter", "the front matter is never closed"]
        );
        assert!(p.errors.iter().all(|e| e.at.line == 1));
    }

    #[test]
    fn invalid_toml_in_the_front_matter_names_the_files_line() {
        let mut p = problems();
        let file = split_front_matter(&mut p, "+++\nid = \"a\"\ntitle = \n+++\n")
            .expect("the front matter is closed");
        assert!(parse_front_matter(&mut p, &file).is_none());
        assert_eq!(p.errors.len(), 1);
        assert_eq!(p.errors[0].at.line, 3);
        assert!(
            p.errors[0]
                .message
                .starts_with("the front matter is not valid TOML: "),
            "{:?}",
            p.errors
        );
    }

    #[test]
    fn a_review_type_is_known_by_its_code_in_any_case() {
        let line = |offset: usize| offset;
        let field = |code: &str| Some(Spanned::new(7..8, code.to_owned()));
        let mut p = problems();
        let first = ReviewType::ALL[0];
        assert_eq!(
            review_type(&mut p, &field(&first.code().to_lowercase()), &line),
            Some(first)
        );
        assert_eq!(
            review_type(&mut p, &field(&format!(" {} ", first.code())), &line),
            Some(first)
        );
        assert!(p.errors.is_empty());
        assert_eq!(review_type(&mut p, &field("XYZ"), &line), None);
        assert_eq!(review_type(&mut p, &None, &line), None);
        let found: Vec<(usize, &str)> = p
            .errors
            .iter()
            .map(|e| (e.at.line, e.message.as_str()))
            .collect();
        assert_eq!(
            found,
            [
                (7, "unknown review_type \"XYZ\""),
                (1, "the front matter has no `review_type`")
            ]
        );
    }

    #[test]
    fn a_newsletter_issue_not_a_year_and_month_is_reported() {
        let line = |offset: usize| offset;
        let field = |issue: &str| Some(Spanned::new(4..5, issue.to_owned()));
        let mut p = problems();
        assert_eq!(
            newsletter_issue(&mut p, &field("2026-12"), &line).as_deref(),
            Some("2026-12")
        );
        assert!(p.errors.is_empty());
        for bad in ["2026-13", "2026-1", "December"] {
            newsletter_issue(&mut p, &field(bad), &line);
        }
        assert_eq!(p.errors.len(), 3, "{:?}", p.errors);
        assert!(p.errors.iter().all(|e| e.at.line == 4));
        assert_eq!(
            p.errors[0].message,
            "issue \"2026-13\" is not a year and month"
        );
    }
}
