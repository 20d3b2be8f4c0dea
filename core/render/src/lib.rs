//! Rendering: turns a learning item into the messages one person receives on
//! one channel, from handlebars templates precompiled once per channel, and
//! splits messages that exceed the channel's size limit. Pure: no I/O beyond
//! reading the template folder in [`Renderer::load_dir`].

mod classified;
mod compile;
mod markup;
mod split;
#[cfg(test)]
mod tests;

pub use classified::{Notice, NoticeInput, NoticeReason, mark, marking_top, render_notice};
pub use markup::{escape, escape_discord, escape_telegram, is_safe_url, markdown_to};
pub use split::{Markup, SECTION_BREAK, split, utf16_len};

use cascade_model::bounds::FileError;
use cascade_model::content::{
    Classification, ItemKind, LearningItem, Link, NewsletterItem, ReviewFinding, ReviewType,
    Section, SevenMinuteBriefing, Status, Taxonomy, Version,
};
use handlebars::{
    Context, Handlebars, Helper, HelperDef, HelperResult, Output, RenderContext, RenderErrorReason,
    TemplateError,
};
use serde_json::{Value, json};
use std::collections::HashMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;

/// Telegram's limit for one message's text.
pub const TELEGRAM_MESSAGE_LIMIT: usize = 4096;
/// Discord's limit for an embed description, where rendered items go.
pub const DISCORD_EMBED_LIMIT: usize = 4096;
/// Discord's limit for plain message content, for callers posting without
/// an embed.
pub const DISCORD_MESSAGE_LIMIT: usize = 2000;

/// The largest template file read. The default templates are under 4 KB;
/// a quarter of a megabyte leaves room for long hand-written ones, while
/// a file far past it (a 779 KB template took a minute and 770 MB to
/// check) would cost every check and every start of `serve`.
pub const MAX_TEMPLATE_BYTES: u64 = 256 * 1024;

/// The item kinds, as named in front matter and template folders.
pub const KINDS: [&str; 3] = ["seven-minute-briefing", "review-finding", "newsletter-item"];

/// A channel format: what a template renders to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Channel {
    EmailHtml,
    EmailText,
    Telegram,
    Discord,
}

impl Channel {
    pub const ALL: [Channel; 4] = [
        Channel::EmailHtml,
        Channel::EmailText,
        Channel::Telegram,
        Channel::Discord,
    ];

    /// The name used in template file names and configuration.
    pub fn name(self) -> &'static str {
        match self {
            Channel::EmailHtml => "email-html",
            Channel::EmailText => "email-text",
            Channel::Telegram => "telegram",
            Channel::Discord => "discord",
        }
    }

    /// The most UTF-16 code units one message may hold, if limited.
    pub fn limit(self) -> Option<usize> {
        match self {
            Channel::EmailHtml | Channel::EmailText => None,
            Channel::Telegram => Some(TELEGRAM_MESSAGE_LIMIT),
            Channel::Discord => Some(DISCORD_EMBED_LIMIT),
        }
    }

    pub fn markup(self) -> Markup {
        match self {
            Channel::EmailHtml | Channel::EmailText => Markup::Plain,
            Channel::Telegram => Markup::Telegram,
            Channel::Discord => Markup::Discord,
        }
    }

    fn index(self) -> usize {
        self as usize
    }
}

impl fmt::Display for Channel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Channel {
    type Err = RenderError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Channel::ALL
            .into_iter()
            .find(|c| c.name() == s)
            .ok_or_else(|| RenderError {
                file: None,
                line: None,
                message: format!("unknown channel \"{s}\""),
                help: format!("use one of {}", channel_names()),
            })
    }
}

fn channel_names() -> String {
    Channel::ALL.map(Channel::name).join(", ")
}

/// Who a message is for and how they acknowledge it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RenderInput {
    pub person_name: String,
    /// The per-delivery acknowledgement link; `None` hides the call to action.
    pub ack_url: Option<String>,
    pub ack_token: Option<String>,
    pub partnership_name: String,
    /// The highest classification the destination may carry: an item
    /// above it is refused, never rendered (its person gets a [`Notice`]).
    pub carries: Classification,
    /// For a champion on a channel without buttons (email): their signed
    /// link to record that they cascaded the item to a team they cover.
    pub confirm: Option<ConfirmLink>,
}

/// A champion's link to the cascade confirmation form, and the names of
/// the teams it records briefings for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfirmLink {
    pub url: String,
    pub teams: Vec<String>,
}

impl ConfirmLink {
    /// The teams as one phrase: "A", "A and B", "A, B and C".
    pub fn team_list(&self) -> String {
        match self.teams.as_slice() {
            [] => String::new(),
            [one] => one.clone(),
            [rest @ .., last] => format!("{} and {last}", rest.join(", ")),
        }
    }
}

/// The reflection questions of a 7-minute briefing, as plain text: the
/// list items of its section about reflection or questions. None for other kinds.
pub fn reflection_questions(item: &LearningItem) -> Vec<String> {
    match &item.kind {
        ItemKind::SevenMinuteBriefing(b) => b
            .sections
            .iter()
            .find(|s| is_reflection(s))
            .map(|s| markup::list_items(&s.body))
            .unwrap_or_default(),
        _ => Vec::new(),
    }
}

/// A problem with a template or a render, naming the file, the line when
/// known, and the fix.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}{message}\n  help: {help}", location(file, *line))]
pub struct RenderError {
    pub file: Option<PathBuf>,
    /// 1-based.
    pub line: Option<usize>,
    pub message: String,
    pub help: String,
}

fn location(file: &Option<PathBuf>, line: Option<usize>) -> String {
    match (file, line) {
        (Some(file), Some(line)) => format!("{}:{line}: ", file.display()),
        (Some(file), None) => format!("{}: ", file.display()),
        (None, _) => String::new(),
    }
}

/// One channel's precompiled templates and partials.
struct ChannelTemplates {
    registry: Handlebars<'static>,
    /// Registered template or partial name to the file it came from.
    files: HashMap<String, PathBuf>,
}

/// Precompiled templates, one handlebars registry per channel so each has
/// that channel's escaping.
pub struct Renderer {
    channels: Vec<ChannelTemplates>,
    /// Where template files live, to name them in errors.
    root: PathBuf,
}

/// Where a template file belongs.
enum TemplateFile {
    Item {
        channel: Channel,
    },
    Partial {
        name: String,
        channel: Option<Channel>,
    },
}

impl Renderer {
    /// Templates as (relative path with forward slashes like
    /// "seven-minute-briefing/telegram.hbs" or "partials/footer.hbs", source).
    /// A partial under `partials/<channel>/` overrides the shared one of the
    /// same name for that channel.
    pub fn new(
        templates: impl IntoIterator<Item = (String, String)>,
    ) -> Result<Renderer, Vec<RenderError>> {
        Renderer::compile(templates, PathBuf::new())
    }

    /// Reads every `*.hbs` file under `dir`.
    pub fn load_dir(dir: &Path) -> Result<Renderer, Vec<RenderError>> {
        let mut templates = Vec::new();
        read_templates(dir, dir, &mut templates).map_err(|e| vec![e])?;
        Renderer::compile(templates, dir.to_owned())
    }

    fn compile(
        templates: impl IntoIterator<Item = (String, String)>,
        root: PathBuf,
    ) -> Result<Renderer, Vec<RenderError>> {
        let mut channels: Vec<ChannelTemplates> = Channel::ALL
            .into_iter()
            .map(|channel| ChannelTemplates {
                registry: registry(channel),
                files: HashMap::new(),
            })
            .collect();
        let mut errors = Vec::new();
        let mut templates: Vec<(String, String)> = templates.into_iter().collect();
        // Shared partials first, so channel-specific ones replace them.
        templates.sort_by_key(|(path, _)| path.matches('/').count());
        for (path, source) in templates {
            let file = root.join(&path);
            let placed = match classify(&path) {
                Ok(placed) => placed,
                Err(help) => {
                    errors.push(RenderError {
                        file: Some(file),
                        line: None,
                        message: "template file in an unexpected place".to_owned(),
                        help,
                    });
                    continue;
                }
            };
            let targets: Vec<Channel> = match &placed {
                TemplateFile::Item { channel, .. } => vec![*channel],
                TemplateFile::Partial {
                    channel: Some(c), ..
                } => vec![*c],
                TemplateFile::Partial { channel: None, .. } => Channel::ALL.to_vec(),
            };
            for channel in targets {
                let templates = &mut channels[channel.index()];
                // A partial is registered as a template of its own name,
                // as handlebars' `register_partial` does.
                let name = match &placed {
                    TemplateFile::Item { .. } => path.clone(),
                    TemplateFile::Partial { name, .. } => name.clone(),
                };
                let result = compile::compile(&source, &name)
                    .map(|template| templates.registry.register_template(&name, template));
                templates.files.insert(name, file.clone());
                if let Err(e) = result {
                    errors.push(template_error(&file, &e));
                    break;
                }
            }
        }
        if errors.is_empty() {
            Ok(Renderer { channels, root })
        } else {
            Err(errors)
        }
    }

    /// Renders `item` for one person on one channel: one string per message,
    /// with `(i/n)` markers when it had to be split.
    pub fn render(
        &self,
        item: &LearningItem,
        taxonomy: &Taxonomy,
        channel: Channel,
        input: &RenderInput,
    ) -> Result<Vec<String>, RenderError> {
        if item.classification > input.carries {
            return Err(RenderError {
                file: None,
                line: None,
                message: format!(
                    "\"{}\" is {} and this destination carries only {}: its full text is never rendered for it",
                    item.id,
                    item.classification.name().to_uppercase(),
                    input.carries.name().to_uppercase()
                ),
                help: "send the notice instead (render_notice), or let the channel carry it with carries = \"official-sensitive\" (or secure_domains) in its [[channels]] entry".to_owned(),
            });
        }
        let name = template_path(item.kind_name(), channel);
        let templates = &self.channels[channel.index()];
        if !templates.registry.has_template(&name) {
            return Err(self.missing(&name));
        }
        let context = context(item, taxonomy, channel, input);
        let mut text = templates
            .registry
            .render(&name, &context)
            .map_err(|e| templates.error(&e))?;
        if let Some(confirm) = &input.confirm {
            text = with_confirm_link(channel, text, confirm);
        }
        let marking = item.classification;
        Ok(match channel.limit() {
            Some(limit) => {
                // Every message of a split item carries the marking.
                let top = marking_top(channel, marking);
                split(channel.markup(), &tidy(&text), limit - utf16_len(&top))
                    .into_iter()
                    .map(|chunk| format!("{top}{chunk}"))
                    .collect()
            }
            None if channel == Channel::EmailText => {
                vec![mark(
                    channel,
                    marking,
                    &tidy(&text).replace(SECTION_BREAK, ""),
                )]
            }
            None => vec![mark(channel, marking, &text.replace(SECTION_BREAK, ""))],
        })
    }

    /// Every problem a template author should fix: missing templates, and
    /// any error rendering a sample item of each kind in strict mode.
    pub fn check(&self) -> Vec<RenderError> {
        let taxonomy = Taxonomy::default();
        let mut errors = Vec::new();
        for item in sample_items() {
            for channel in Channel::ALL {
                let name = template_path(item.kind_name(), channel);
                if !self.channels[channel.index()].registry.has_template(&name) {
                    errors.push(self.missing(&name));
                    continue;
                }
                let with_ack = sample_input(Some("https://cascade.example/ack/sample"));
                let champion = RenderInput {
                    confirm: Some(ConfirmLink {
                        url: "https://cascade.example/confirm/sample".to_owned(),
                        teams: vec!["Early Help North".to_owned(), "MASH".to_owned()],
                    }),
                    ..with_ack.clone()
                };
                for input in [with_ack, champion, sample_input(None)] {
                    if let Err(e) = self.render(&item, &taxonomy, channel, &input) {
                        errors.push(e);
                        break;
                    }
                }
            }
        }
        errors
    }

    fn missing(&self, name: &str) -> RenderError {
        let file = self.root.join(name);
        RenderError {
            message: "template missing".to_owned(),
            help: format!(
                "create {}; every item kind needs a template for each channel ({})",
                file.display(),
                channel_names()
            ),
            file: Some(file),
            line: None,
        }
    }
}

impl ChannelTemplates {
    fn error(&self, e: &handlebars::RenderError) -> RenderError {
        let file = e
            .template_name
            .as_ref()
            .map(|name| self.files.get(name).cloned().unwrap_or_else(|| name.into()));
        let (message, help) = match e.reason() {
            RenderErrorReason::MissingVariable(path) => (
                format!("unknown variable `{}`", path.as_deref().unwrap_or("?")),
                "check the spelling; templates see item.{id, title, kind, version, themes, status, \
                 issued_by, source, sixty_minute_briefing, review_type, subject, newsletter, issue, \
                 sections, reflection_questions, links}, person.name, ack.url, ack.token, \
                 confirm.url, confirm.teams, confirm.team_list and partnership.name (see templates/README.md)"
                    .to_owned(),
            ),
            RenderErrorReason::PartialNotFound(name) => (
                format!("unknown partial `{name}`"),
                format!("create templates/partials/{name}.hbs or correct the name"),
            ),
            RenderErrorReason::HelperNotFound(name) => (
                format!("unknown helper `{name}`"),
                "use section_break, href or a built-in helper (if, unless, each, with, eq, and, or, not)"
                    .to_owned(),
            ),
            RenderErrorReason::TemplateError(t) => {
                return template_error(file.as_deref().unwrap_or(Path::new("")), t);
            }
            other => (other.to_string(), "correct the template at this line".to_owned()),
        };
        RenderError {
            file,
            line: e.line_no,
            message,
            help,
        }
    }
}

fn template_error(file: &Path, e: &TemplateError) -> RenderError {
    RenderError {
        file: Some(file.to_owned()),
        line: e.pos().map(|(line, _)| line),
        message: format!("template syntax: {}", e.reason()),
        help: "every {{#block}} needs a matching {{/block}} and every {{ a matching }}".to_owned(),
    }
}

fn template_path(kind: &str, channel: Channel) -> String {
    format!("{kind}/{channel}.hbs")
}

fn classify(path: &str) -> Result<TemplateFile, String> {
    let expected = || {
        format!(
            "put item templates in <kind>/<channel>.hbs (kinds: {}; channels: {}) and partials in \
             partials/<name>.hbs or partials/<channel>/<name>.hbs",
            KINDS.join(", "),
            channel_names()
        )
    };
    let stem = path.strip_suffix(".hbs").ok_or_else(expected)?;
    let parts: Vec<&str> = stem.split('/').collect();
    match parts.as_slice() {
        ["partials", name] => Ok(TemplateFile::Partial {
            name: (*name).to_owned(),
            channel: None,
        }),
        ["partials", channel, name] => Ok(TemplateFile::Partial {
            name: (*name).to_owned(),
            channel: Some(channel.parse().map_err(|_| expected())?),
        }),
        [kind, channel] if KINDS.contains(kind) => Ok(TemplateFile::Item {
            channel: channel.parse().map_err(|_| expected())?,
        }),
        _ => Err(expected()),
    }
}

/// Reads every template file under `dir` (names relative to `root`) into `out`.
pub fn read_templates(
    root: &Path,
    dir: &Path,
    out: &mut Vec<(String, String)>,
) -> Result<(), RenderError> {
    let io_error = |path: &Path, e: std::io::Error| RenderError {
        file: Some(path.to_owned()),
        line: None,
        message: format!("cannot read: {e}"),
        help: "check that the templates folder exists and is readable".to_owned(),
    };
    let mut entries: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(|e| io_error(dir, e))?
        .map(|entry| entry.map(|e| e.path()))
        .collect::<Result<_, _>>()
        .map_err(|e| io_error(dir, e))?;
    entries.sort();
    for path in entries {
        if path.is_dir() {
            read_templates(root, &path, out)?;
        } else if path.extension().is_some_and(|e| e == "hbs") {
            let source = match cascade_model::bounds::read_at_most(&path, MAX_TEMPLATE_BYTES) {
                Ok(source) => source,
                Err(FileError::Io(e)) => return Err(io_error(&path, e)),
                Err(FileError::TooLarge { size, max }) => {
                    return Err(RenderError {
                        file: Some(path),
                        line: None,
                        message: format!(
                            "the template is {size} bytes; a template may be at most {max} bytes (256 KB)"
                        ),
                        help: "move repeated parts into partials (templates/partials/<name>.hbs) and keep long text in the content".to_owned(),
                    });
                }
            };
            let relative = path.strip_prefix(root).unwrap_or(&path);
            let name: Vec<String> = relative
                .components()
                .map(|c| c.as_os_str().to_string_lossy().into_owned())
                .collect();
            out.push((name.join("/"), source));
        }
    }
    Ok(())
}

fn registry(channel: Channel) -> Handlebars<'static> {
    let mut registry = Handlebars::new();
    registry.set_strict_mode(true);
    registry.register_escape_fn(move |text| escape(channel, text));
    registry.register_helper("section_break", Box::new(SectionBreak));
    registry.register_helper("href", Box::new(Href(channel)));
    registry
}

/// `{{section_break}}`: marks where a long message may best be split.
struct SectionBreak;

impl HelperDef for SectionBreak {
    fn call<'reg: 'rc, 'rc>(
        &self,
        _: &Helper<'rc>,
        _: &'reg Handlebars<'reg>,
        _: &'rc Context,
        _: &mut RenderContext<'reg, 'rc>,
        out: &mut dyn Output,
    ) -> HelperResult {
        out.write(SECTION_BREAK.encode_utf8(&mut [0; 4]))?;
        Ok(())
    }
}

/// `{{href url}}`: a web, mail or phone URL escaped for the channel's link
/// syntax; any other scheme is refused.
struct Href(Channel);

impl HelperDef for Href {
    fn call<'reg: 'rc, 'rc>(
        &self,
        h: &Helper<'rc>,
        _: &'reg Handlebars<'reg>,
        _: &'rc Context,
        _: &mut RenderContext<'reg, 'rc>,
        out: &mut dyn Output,
    ) -> HelperResult {
        let url = h
            .param(0)
            .and_then(|p| p.value().as_str())
            .ok_or(RenderErrorReason::ParamNotFoundForIndex("href", 0))?;
        if !is_safe_url(url) {
            return Err(RenderErrorReason::Other(format!(
                "href refuses \"{url}\": links must start with https://, http://, mailto: or tel:"
            ))
            .into());
        }
        out.write(&markup::escape_url(self.0, url))?;
        Ok(())
    }
}

/// Line tidying for text-like channels: templates are easier to read with
/// blank lines and indentation that should not reach the reader. Lines
/// holding only a section break join the next line so a cut there leaves
/// no stray blank line.
fn tidy(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut blank = false;
    let mut section_break = false;
    for line in text.lines().map(str::trim_end) {
        if line.trim() == SECTION_BREAK.to_string() {
            section_break = true;
        } else if line.is_empty() {
            blank = true;
        } else {
            if !out.is_empty() {
                out.push('\n');
                if blank {
                    out.push('\n');
                }
            }
            if section_break {
                out.push(SECTION_BREAK);
            }
            out.push_str(line);
            blank = false;
            section_break = false;
        }
    }
    out
}

/// The values a template sees. Absent optional fields are `null` so strict
/// mode accepts `{{#if}}` over them.
fn context(
    item: &LearningItem,
    taxonomy: &Taxonomy,
    channel: Channel,
    input: &RenderInput,
) -> Value {
    let sections: Vec<Value> = item
        .sections()
        .iter()
        .map(|s| {
            json!({
                "title": s.title,
                "body": markdown_to(channel, &s.body),
                "reflection": is_reflection(s),
            })
        })
        .collect();
    let mut fields = json!({
        "id": item.id,
        "title": item.title,
        "kind": item.kind_name(),
        "version": item.version.short(),
        "themes": item.themes.iter().map(|t| taxonomy.label(t)).collect::<Vec<_>>(),
        "status": item.status.name(),
        "issued_by": null,
        "source": null,
        "sixty_minute_briefing": null,
        "review_type": null,
        "subject": null,
        "newsletter": null,
        "issue": null,
        "sections": sections,
        "reflection_questions": [],
        "links": item.links,
    });
    let extra = match &item.kind {
        ItemKind::SevenMinuteBriefing(b) => {
            let questions: Vec<String> = reflection_questions(item)
                .iter()
                .map(|q| escape(channel, q))
                .collect();
            json!({
                "issued_by": b.issued_by,
                "source": b.source,
                "sixty_minute_briefing": b.sixty_minute_briefing,
                "reflection_questions": questions,
            })
        }
        ItemKind::ReviewFinding(f) => json!({
            "review_type": f.review_type.label(),
            "subject": f.subject,
        }),
        ItemKind::NewsletterItem(n) => json!({
            "newsletter": n.newsletter,
            "issue": n.issue,
        }),
    };
    if let (Value::Object(fields), Value::Object(extra)) = (&mut fields, extra) {
        fields.extend(extra);
    }
    json!({
        "item": fields,
        "person": { "name": input.person_name },
        "ack": { "url": input.ack_url, "token": input.ack_token },
        "confirm": match &input.confirm {
            Some(confirm) => json!({
                "url": confirm.url,
                "teams": confirm.teams,
                "team_list": confirm.team_list(),
            }),
            None => json!({ "url": null, "teams": [], "team_list": null }),
        },
        "partnership": { "name": input.partnership_name },
    })
}

/// A champion's confirmation link is in every email they get about an
/// item: where the project's templates predate `confirm.url` and did not
/// place it, it is added at the end (before `</body>` in HTML).
fn with_confirm_link(channel: Channel, text: String, confirm: &ConfirmLink) -> String {
    let url = markup::escape_url(channel, &confirm.url);
    if text.contains(&url) {
        return text;
    }
    let teams = escape(channel, &confirm.team_list());
    match channel {
        Channel::EmailHtml => {
            let block = format!(
                "<p>You are a champion for {teams}. When you have shared this with a team, \
                 <a href=\"{url}\">record the team briefing</a>.</p>\n"
            );
            match text.rfind("</body>") {
                Some(at) => format!("{}{block}{}", &text[..at], &text[at..]),
                None => format!("{text}\n{block}"),
            }
        }
        Channel::EmailText => format!(
            "{}\n\nYou are a champion for {teams}. When you have shared this with a team, record the team briefing:\n{url}\n",
            text.trim_end()
        ),
        // Chat channels carry the "I've cascaded this" button instead.
        Channel::Telegram | Channel::Discord => text,
    }
}

fn is_reflection(section: &Section) -> bool {
    let title = section.title.to_lowercase();
    title.contains("reflect") || title.contains("question")
}

fn sample_input(ack_url: Option<&str>) -> RenderInput {
    RenderInput {
        person_name: "Sam Patel".to_owned(),
        ack_url: ack_url.map(str::to_owned),
        ack_token: ack_url.map(|_| "sample-token".to_owned()),
        partnership_name: "Sample Safeguarding Partnership".to_owned(),
        carries: Classification::OfficialSensitive,
        confirm: None,
    }
}

fn section(title: &str, body: &str) -> Section {
    Section {
        title: title.to_owned(),
        body: body.to_owned(),
    }
}

/// One item of each kind with every optional field set, so a check reaches
/// every branch of a template.
pub fn sample_items() -> Vec<LearningItem> {
    let item = |id: &str, title: &str, kind: ItemKind| LearningItem {
        id: id.to_owned(),
        title: title.to_owned(),
        themes: vec!["neglect".to_owned(), "voice-of-the-child".to_owned()],
        status: Status::Published,
        links: vec![Link {
            title: "Neglect toolkit".to_owned(),
            url: "https://example.org/neglect-toolkit".to_owned(),
        }],
        privacy_allow: Vec::new(),
        what_changed: None,
        check_questions: Vec::new(),
        refresher: Vec::new(),
        classification: Default::default(),
        summary: None,
        kind,
        version: Version("0123456789abcdef".repeat(4)),
    };
    let briefing = SevenMinuteBriefing {
        issued_by: "Sample Safeguarding Partnership".to_owned(),
        source: Some("Rapid Review, Child B".to_owned()),
        sixty_minute_briefing: Some("https://example.org/60-minute/neglect".to_owned()),
        sections: vec![
            section("Background", "Why this matters **now**."),
            section("Why it matters", "Neglect is _cumulative_."),
            section("Information", "- first point\n- second point"),
            section("Research", "See [the study](https://example.org/study)."),
            section(
                "What to look for",
                "1. missed appointments\n2. poor home conditions",
            ),
            section("What to do", "Use the `neglect toolkit`."),
            section(
                "Questions to reflect on",
                "- What is daily life like for the child?",
            ),
        ],
    };
    let finding = ReviewFinding {
        review_type: ReviewType::Lcspr,
        subject: "Child B".to_owned(),
        summary: section("Summary", "A summary."),
        key_learning: section("Key learning", "- one\n- two"),
        what_practitioners_should_do: section("What practitioners should do", "Escalate."),
        good_practice: section("Good practice", "The school nurse *listened*."),
    };
    let article = NewsletterItem {
        newsletter: "Partnership Matters".to_owned(),
        issue: "2026-03".to_owned(),
        body: "## New escalation policy\n\nRead it **today**.".to_owned(),
    };
    vec![
        item(
            "7mb-sample",
            "Neglect",
            ItemKind::SevenMinuteBriefing(briefing),
        ),
        item(
            "rf-sample",
            "Learning from Child B",
            ItemKind::ReviewFinding(finding),
        ),
        item(
            "news-sample",
            "Escalation",
            ItemKind::NewsletterItem(article),
        ),
    ]
}
