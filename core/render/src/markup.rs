//! Escaping plain text and converting CommonMark to each channel's markup.
//! Raw HTML in Markdown is never passed through: it is shown as text.
//! Written here rather than taken from teloxide or serenity so the engine
//! does not link the chat libraries, which live in the plugins.

use super::Channel;
use pulldown_cmark::{Event, HeadingLevel, Options, Parser, Tag, TagEnd};

/// Escapes text for Telegram's HTML parse mode.
pub fn escape_telegram(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            _ => out.push(c),
        }
    }
    out
}

/// Characters Discord Markdown gives a meaning to; each is shown literally
/// when preceded by a backslash.
const DISCORD_SPECIAL: &[char] = &[
    '\\', '*', '_', '~', '`', '|', '>', '#', '-', '[', ']', '(', ')', '<',
];

/// Escapes text for Discord Markdown so it displays literally, and breaks
/// `@everyone`/`@here` so they cannot ping even where mentions are allowed.
pub fn escape_discord(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 8);
    let mut at_line_start = true;
    let mut digits_at_line_start = false;
    for (i, c) in text.char_indices() {
        if DISCORD_SPECIAL.contains(&c) || (c == '.' && digits_at_line_start) {
            out.push('\\');
        }
        out.push(c);
        if c == '@' && pings(&text[i + 1..]) {
            out.push('\u{200B}');
        }
        digits_at_line_start = c.is_ascii_digit() && (at_line_start || digits_at_line_start);
        at_line_start = c == '\n';
    }
    out
}

/// Escapes text for the given channel, as its handlebars registry does.
pub fn escape(channel: Channel, text: &str) -> String {
    match channel {
        Channel::EmailHtml => handlebars::html_escape(text),
        Channel::EmailText => text.to_owned(),
        Channel::Telegram => escape_telegram(text),
        Channel::Discord => escape_discord(text),
    }
}

/// Whether a link target is safe to make clickable: web, mail and phone links.
pub fn is_safe_url(url: &str) -> bool {
    let lower = url.trim_start().to_ascii_lowercase();
    ["https://", "http://", "mailto:", "tel:"]
        .iter()
        .any(|scheme| lower.starts_with(scheme))
}

/// A URL made safe to place in the channel's link syntax.
pub fn escape_url(channel: Channel, url: &str) -> String {
    match channel {
        // Inside a double-quoted attribute only `& < > "` need entities;
        // handlebars' escaping would also turn `=` into `&#x3D;`.
        Channel::EmailHtml | Channel::Telegram => escape_telegram(url),
        Channel::EmailText => url.to_owned(),
        Channel::Discord => {
            let mut out = String::with_capacity(url.len());
            for c in url.chars() {
                match c {
                    '(' => out.push_str("%28"),
                    ')' => out.push_str("%29"),
                    '<' => out.push_str("%3C"),
                    '>' => out.push_str("%3E"),
                    ' ' => out.push_str("%20"),
                    _ => out.push(c),
                }
            }
            out
        }
    }
}

fn parser(markdown: &str) -> Parser<'_> {
    Parser::new_ext(markdown, Options::ENABLE_STRIKETHROUGH)
}

/// Converts a CommonMark body to the channel's markup.
pub fn markdown_to(channel: Channel, markdown: &str) -> String {
    match channel {
        Channel::EmailHtml => markdown_to_html(markdown),
        _ => {
            let mut writer = ChatWriter::new(channel);
            for event in parser(markdown) {
                writer.event(event);
            }
            writer.out.trim_end().to_owned()
        }
    }
}

/// The top-level list items of a Markdown body, as plain text.
pub fn list_items(markdown: &str) -> Vec<String> {
    let mut items = Vec::new();
    let mut depth = 0usize;
    let mut current = String::new();
    for event in parser(markdown) {
        match event {
            Event::Start(Tag::Item) => depth += 1,
            Event::End(TagEnd::Item) => {
                depth -= 1;
                if depth == 0 {
                    items.push(current.trim().to_owned());
                    current.clear();
                }
            }
            Event::Text(t) | Event::Code(t) | Event::Html(t) | Event::InlineHtml(t)
                if depth > 0 =>
            {
                current.push_str(&t);
            }
            Event::SoftBreak | Event::HardBreak if depth > 0 => current.push(' '),
            _ => {}
        }
    }
    items
}

fn markdown_to_html(markdown: &str) -> String {
    // Unsafe links lose their anchor; this remembers, per open link, whether
    // its end tag must be dropped too.
    let mut links_kept = Vec::new();
    let events = parser(markdown).filter_map(|event| match event {
        Event::Html(t) | Event::InlineHtml(t) => Some(Event::Text(t)),
        Event::Start(Tag::HtmlBlock) => Some(Event::Start(Tag::Paragraph)),
        Event::End(TagEnd::HtmlBlock) => Some(Event::End(TagEnd::Paragraph)),
        Event::Start(Tag::Heading {
            level,
            id,
            classes,
            attrs,
        }) => Some(Event::Start(Tag::Heading {
            level: body_heading(level),
            id,
            classes,
            attrs,
        })),
        Event::End(TagEnd::Heading(level)) => {
            Some(Event::End(TagEnd::Heading(body_heading(level))))
        }
        Event::Start(Tag::Link { ref dest_url, .. } | Tag::Image { ref dest_url, .. }) => {
            let safe = is_safe_url(dest_url);
            links_kept.push(safe);
            safe.then_some(event)
        }
        Event::End(TagEnd::Link | TagEnd::Image) => {
            links_kept.pop().unwrap_or(false).then_some(event)
        }
        _ => Some(event),
    });
    let mut html = String::new();
    pulldown_cmark::html::push_html(&mut html, events);
    html.trim_end().to_owned()
}

/// Headings inside a section sit below the section's own `<h2>`.
fn body_heading(level: HeadingLevel) -> HeadingLevel {
    match level {
        HeadingLevel::H1 | HeadingLevel::H2 => HeadingLevel::H3,
        other => other,
    }
}

/// Writes Markdown events as Telegram HTML, Discord Markdown or plain text.
struct ChatWriter {
    channel: Channel,
    out: String,
    /// Per open list: the next number for ordered lists.
    lists: Vec<Option<u64>>,
    /// Per open link or image: its URL when it is shown as a link.
    links: Vec<Option<String>>,
    quote_depth: usize,
    at_line_start: bool,
    /// Open emphasis, strong and strikethrough; nested repeats of the same
    /// style are not marked again so Discord's toggling markers stay paired.
    emphasis: usize,
    strong: usize,
    strike: usize,
    in_code_block: bool,
    /// Nothing written yet after the current list item's bullet.
    item_fresh: bool,
}

impl ChatWriter {
    fn new(channel: Channel) -> Self {
        ChatWriter {
            channel,
            out: String::new(),
            lists: Vec::new(),
            links: Vec::new(),
            quote_depth: 0,
            at_line_start: true,
            emphasis: 0,
            strong: 0,
            strike: 0,
            in_code_block: false,
            item_fresh: false,
        }
    }

    fn telegram(&self) -> bool {
        self.channel == Channel::Telegram
    }

    fn discord(&self) -> bool {
        self.channel == Channel::Discord
    }

    /// What starts each line: quote markers and list indentation.
    fn line_prefix(&self) -> String {
        let quote = if self.telegram() { "" } else { "> " };
        let mut prefix = quote.repeat(self.quote_depth);
        prefix.push_str(&"  ".repeat(self.lists.len()));
        prefix
    }

    /// Writes markup or already-escaped text, prefixing each new line.
    fn write(&mut self, text: &str) {
        for (i, line) in text.split('\n').enumerate() {
            if i > 0 {
                self.newline();
            }
            if !line.is_empty() {
                self.item_fresh = false;
                if self.at_line_start {
                    let prefix = self.line_prefix();
                    self.out.push_str(&prefix);
                    self.at_line_start = false;
                }
                self.out.push_str(line);
            }
        }
    }

    fn text(&mut self, text: &str) {
        let escaped = if self.discord() && self.in_code_block {
            escape_discord_code(text)
        } else {
            escape(self.channel, text)
        };
        self.write(&escaped);
    }

    fn newline(&mut self) {
        self.out.push('\n');
        self.at_line_start = true;
    }

    fn end_line(&mut self) {
        if !self.at_line_start {
            self.newline();
        }
    }

    /// Separates a block from what came before: a blank line, or a line
    /// break inside lists.
    fn start_block(&mut self) {
        if self.item_fresh {
            return;
        }
        self.end_line();
        if self.lists.is_empty() && !self.out.is_empty() && !self.out.ends_with("\n\n") {
            self.newline();
        }
    }

    fn marker(&mut self, telegram: &str, discord: &str) {
        match self.channel {
            Channel::Telegram => self.write(telegram),
            Channel::Discord => self.write(discord),
            Channel::EmailHtml | Channel::EmailText => {}
        }
    }

    fn event(&mut self, event: Event<'_>) {
        match event {
            Event::Start(tag) => self.start(tag),
            Event::End(tag) => self.end(tag),
            Event::Text(t) | Event::Html(t) | Event::InlineHtml(t) => self.text(&t),
            Event::Code(t) => self.code(&t),
            Event::SoftBreak => {
                if self.channel == Channel::EmailText {
                    self.newline();
                } else {
                    self.write(" ");
                }
            }
            Event::HardBreak => self.newline(),
            Event::Rule => {
                self.start_block();
                self.write("⸻");
                self.newline();
            }
            Event::TaskListMarker(done) => self.write(if done { "☑ " } else { "☐ " }),
            Event::FootnoteReference(t) | Event::InlineMath(t) | Event::DisplayMath(t) => {
                self.text(&t);
            }
        }
    }

    fn start(&mut self, tag: Tag<'_>) {
        match tag {
            Tag::Paragraph | Tag::HtmlBlock => self.start_block(),
            Tag::Heading { .. } => {
                self.start_block();
                self.start(Tag::Strong);
            }
            Tag::BlockQuote(_) => {
                self.start_block();
                self.quote_depth += 1;
                self.marker("<blockquote>", "");
            }
            Tag::CodeBlock(_) => {
                self.start_block();
                self.in_code_block = true;
                self.marker("<pre>", "```\n");
            }
            Tag::List(first) => {
                if self.lists.is_empty() {
                    self.start_block();
                } else {
                    self.end_line();
                }
                self.lists.push(first);
            }
            Tag::Item => {
                self.end_line();
                let unordered = if self.telegram() { "• " } else { "- " };
                let bullet = match self.lists.last_mut() {
                    Some(Some(n)) => {
                        *n += 1;
                        format!("{}. ", *n - 1)
                    }
                    _ => unordered.to_owned(),
                };
                // The bullet line is indented one level less than its
                // continuation lines.
                let depth = self.lists.len();
                let quote = if self.telegram() { "" } else { "> " };
                let mut prefix = quote.repeat(self.quote_depth);
                prefix.push_str(&"  ".repeat(depth.saturating_sub(1)));
                self.out.push_str(&prefix);
                self.out.push_str(&bullet);
                self.at_line_start = false;
                self.item_fresh = true;
            }
            Tag::Emphasis => {
                self.emphasis += 1;
                if self.emphasis == 1 {
                    self.marker("<i>", "_");
                }
            }
            Tag::Strong => {
                self.strong += 1;
                if self.strong == 1 {
                    self.marker("<b>", "**");
                }
            }
            Tag::Strikethrough => {
                self.strike += 1;
                if self.strike == 1 {
                    self.marker("<s>", "~~");
                }
            }
            Tag::Link { dest_url, .. } | Tag::Image { dest_url, .. } => {
                let url = (is_safe_url(&dest_url) && self.links.iter().all(Option::is_none))
                    .then(|| dest_url.to_string());
                if let Some(url) = &url {
                    let open = format!("<a href=\"{}\">", escape_telegram(url));
                    self.marker(&open, "[");
                }
                self.links.push(url);
            }
            _ => {}
        }
    }

    fn end(&mut self, tag: TagEnd) {
        match tag {
            TagEnd::Paragraph | TagEnd::HtmlBlock => self.end_line(),
            TagEnd::Heading(_) => {
                self.end(TagEnd::Strong);
                self.newline();
            }
            TagEnd::BlockQuote(_) => {
                self.marker("</blockquote>", "");
                self.quote_depth -= 1;
                self.end_line();
            }
            TagEnd::CodeBlock => {
                self.in_code_block = false;
                self.end_line();
                self.marker("</pre>", "```");
                self.newline();
            }
            TagEnd::List(_) => {
                self.lists.pop();
                self.end_line();
            }
            TagEnd::Item => self.end_line(),
            TagEnd::Emphasis => {
                if self.emphasis == 1 {
                    self.marker("</i>", "_");
                }
                self.emphasis -= 1;
            }
            TagEnd::Strong => {
                if self.strong == 1 {
                    self.marker("</b>", "**");
                }
                self.strong -= 1;
            }
            TagEnd::Strikethrough => {
                if self.strike == 1 {
                    self.marker("</s>", "~~");
                }
                self.strike -= 1;
            }
            TagEnd::Link | TagEnd::Image => {
                if let Some(url) = self.links.pop().flatten() {
                    match self.channel {
                        Channel::Telegram => self.write("</a>"),
                        Channel::Discord => {
                            let close = format!("]({})", escape_url(Channel::Discord, &url));
                            self.write(&close);
                        }
                        Channel::EmailText | Channel::EmailHtml => {
                            if !self.out.ends_with(url.as_str()) {
                                self.write(&format!(" ({url})"));
                            }
                        }
                    }
                }
            }
            _ => {}
        }
    }

    fn code(&mut self, code: &str) {
        match self.channel {
            Channel::Telegram => {
                let code = format!("<code>{}</code>", escape_telegram(code));
                self.write(&code);
            }
            Channel::Discord if !code.contains('`') && !code.contains('\n') => {
                let code = format!("`{}`", escape_discord_code(code));
                self.write(&code);
            }
            _ => self.text(code),
        }
    }
}

/// Text inside a Discord code span or block: backslashes are literal there,
/// so only mentions are broken and fences that would end the block early.
fn escape_discord_code(text: &str) -> String {
    let text = text.replace("```", "`\u{200B}``");
    let mut out = String::with_capacity(text.len());
    for (i, c) in text.char_indices() {
        out.push(c);
        if c == '@' && pings(&text[i + 1..]) {
            out.push('\u{200B}');
        }
    }
    out
}

/// Whether text right after an `@` would make it a mass mention. Matched
/// without regard to case, to be safe.
pub(super) fn pings(rest: &str) -> bool {
    let rest = rest.as_bytes();
    [b"everyone".as_slice(), b"here"]
        .iter()
        .any(|word| rest.len() >= word.len() && rest[..word.len()].eq_ignore_ascii_case(word))
}
