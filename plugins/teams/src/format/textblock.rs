//! Text for an Adaptive Card `TextBlock` as Teams shows it. TextBlock reads
//! only a Markdown subset (bold, italic, bullet and numbered lists, links;
//! no headings, code, tables, quotes or HTML), and Teams' clients read it
//! with different parsers: the web and desktop clients as CommonMark, the
//! mobile ones with Adaptive Cards' own parser, which honours a backslash
//! only before `*` and `_`, still makes a link of `\[text\](url)`, and
//! turns `{{DATE(…)}}` into a date. So the host's Markdown render (the
//! `discord` part) is read here as CommonMark and written again in the
//! subset, and every piece of its text is escaped so that neither parser
//! finds markup in it: a link, emphasis or a list comes only from the
//! render's own structure, and a link only to a web, mail or phone address.

use pulldown_cmark::{Event, Options, Parser, Tag, TagEnd};

/// Web, mail and phone links only: never `javascript:`, `data:` or a
/// relative path a client could resolve against Teams itself.
fn is_safe_url(url: &str) -> bool {
    let lower = url.trim_start().to_ascii_lowercase();
    ["https://", "http://", "mailto:", "tel:"]
        .iter()
        .any(|scheme| lower.starts_with(scheme))
}

/// Bidirectional overrides and isolates: they could make text read other
/// than it is (an address reversed), so they are dropped like controls.
fn is_hidden_control(c: char) -> bool {
    c.is_control() || matches!(c, '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}')
}

/// Escapes one line of plain text so every TextBlock reader shows it as
/// written. `at_line_start` says whether it begins a line, where `#`, `-`,
/// `+`, `>`, `=` and `1.` would start a heading, list or quote.
pub fn escape_line(text: &str, at_line_start: bool) -> String {
    let mut out = String::with_capacity(text.len() + 8);
    let mut line_start = at_line_start;
    let mut digits_at_start = false;
    let mut previous = '\0';
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        if is_hidden_control(c) {
            continue;
        }
        // Four spaces at a line's start would make a code block.
        if line_start && c == ' ' {
            continue;
        }
        let special = match c {
            '\\' | '*' | '_' | '[' | ']' | '`' | '~' | '<' | '|' => true,
            // After `]` a `(` would complete a link in the mobile parser,
            // which does not honour `\]`.
            '(' => previous == ']',
            '&' => starts_entity(chars.clone()),
            '#' | '-' | '+' | '>' | '=' => line_start,
            '.' | ')' => digits_at_start,
            _ => false,
        };
        if special {
            out.push('\\');
        }
        out.push(c);
        // `{{DATE(…)}}` and `{{TIME(…)}}` are read before Markdown; a
        // zero-width space keeps the braces apart.
        if c == '{' && chars.peek() == Some(&'{') {
            out.push('\u{200B}');
        }
        digits_at_start = c.is_ascii_digit() && (line_start || digits_at_start);
        line_start = false;
        previous = c;
    }
    out
}

/// Whether `&` followed by `rest` reads as an entity (`&lt;`, `&#91;`),
/// which CommonMark would show as the character it names.
fn starts_entity(rest: impl Iterator<Item = char>) -> bool {
    for (length, c) in rest.take(34).enumerate() {
        if c == ';' {
            return length > 0;
        }
        if !(c.is_ascii_alphanumeric() || c == '#') {
            return false;
        }
    }
    false
}

/// Plain text (a status line, a host reply, a title) as TextBlock text:
/// each line escaped, lines kept apart as Teams keeps them (a blank line).
pub fn escape(text: &str) -> String {
    text.lines()
        .map(str::trim)
        .filter(|line| !line.is_empty())
        .map(|line| escape_line(line, true))
        .collect::<Vec<_>>()
        .join("\n\n")
}

/// A URL as a link target: characters that end the target or that a
/// parser reads as emphasis inside it are percent-encoded.
fn escape_url(url: &str) -> String {
    let mut out = String::with_capacity(url.len());
    for c in url.trim().chars().filter(|c| !is_hidden_control(*c)) {
        match c {
            '(' | ')' | '<' | '>' | ' ' | '[' | ']' | '\\' | '*' | '_' | '`' | '"' | '{' | '}' => {
                let mut buffer = [0; 4];
                for byte in c.encode_utf8(&mut buffer).bytes() {
                    out.push_str(&format!("%{byte:02X}"));
                }
            }
            _ => out.push(c),
        }
    }
    out
}

/// Writes the subset: each top-level block (paragraph, heading, list,
/// quote, code block) becomes one piece of text, so a card can be split
/// between them.
#[derive(Default)]
struct Writer {
    blocks: Vec<String>,
    current: String,
    /// Open containers (lists, items, quotes, code blocks).
    nesting: usize,
    /// Per open list: the next number of an ordered list.
    lists: Vec<Option<u64>>,
    /// Per open link: its target when it is shown as a link.
    links: Vec<Option<String>>,
    strong: usize,
    emphasis: usize,
    at_line_start: bool,
    /// Text not yet written: the parser may cut one run of text in
    /// several events, and escaping must see it whole (`]` then `(`).
    pending: String,
}

impl Writer {
    fn in_list(&self) -> bool {
        !self.lists.is_empty()
    }

    fn flush(&mut self) {
        let text = std::mem::take(&mut self.pending);
        self.text(&text);
    }

    fn text(&mut self, text: &str) {
        for (i, line) in text.split('\n').enumerate() {
            if i > 0 {
                self.line_break();
            }
            let escaped = escape_line(line, self.at_line_start);
            if !escaped.is_empty() {
                self.current.push_str(&escaped);
                self.at_line_start = false;
            }
        }
    }

    fn markers(&self) -> &'static str {
        match (self.strong > 0, self.emphasis > 0) {
            (true, true) => "**_",
            (true, false) => "**",
            (false, true) => "_",
            (false, false) => "",
        }
    }

    /// A new line inside a block. TextBlock joins single line breaks, so a
    /// break is a blank line (a space inside a list item); emphasis is
    /// closed before it and opened again after, as it cannot span
    /// paragraphs.
    fn line_break(&mut self) {
        if self.in_list() {
            self.current.push(' ');
            return;
        }
        if self.current.trim().is_empty() {
            return;
        }
        let markers = self.markers();
        self.close(markers);
        self.current.push_str("\n\n");
        self.current.push_str(markers);
        self.at_line_start = markers.is_empty();
    }

    /// Closes emphasis `markers`, or drops them when nothing followed them
    /// (an empty `****` shows as stars).
    fn close(&mut self, markers: &str) {
        if markers.is_empty() {
            return;
        }
        if self.current.ends_with(markers) {
            self.current.truncate(self.current.len() - markers.len());
        } else {
            self.current.extend(markers.chars().rev());
        }
    }

    fn end_block(&mut self) {
        if self.nesting > 0 {
            return;
        }
        let block = std::mem::take(&mut self.current);
        if !block.trim().is_empty() {
            self.blocks.push(block.trim_end().to_owned());
        }
        self.at_line_start = true;
    }

    fn start(&mut self, tag: Tag<'_>) {
        match tag {
            Tag::Paragraph | Tag::Heading { .. } => {
                if !self.current.trim().is_empty() && !self.current.ends_with(' ') {
                    self.line_break();
                }
                if matches!(tag, Tag::Heading { .. }) {
                    self.start(Tag::Strong);
                }
            }
            Tag::BlockQuote(_) | Tag::CodeBlock(_) => {
                if !self.current.trim().is_empty() {
                    self.line_break();
                }
                self.nesting += 1;
            }
            Tag::List(first) => {
                self.lists.push(first);
                self.nesting += 1;
            }
            Tag::Item => {
                if !self.current.trim().is_empty() {
                    self.current.push('\n');
                }
                let indent = "  ".repeat(self.lists.len().saturating_sub(1));
                let bullet = match self.lists.last_mut() {
                    Some(Some(n)) => {
                        *n += 1;
                        format!("{}. ", *n - 1)
                    }
                    _ => "- ".to_owned(),
                };
                self.current.push_str(&indent);
                self.current.push_str(&bullet);
                self.at_line_start = false;
                self.nesting += 1;
            }
            Tag::Strong => {
                self.strong += 1;
                if self.strong == 1 {
                    self.current.push_str("**");
                    self.at_line_start = false;
                }
            }
            Tag::Emphasis => {
                self.emphasis += 1;
                if self.emphasis == 1 {
                    self.current.push('_');
                    self.at_line_start = false;
                }
            }
            Tag::Link { dest_url, .. } | Tag::Image { dest_url, .. } => {
                let url = (is_safe_url(&dest_url) && self.links.iter().all(Option::is_none))
                    .then(|| dest_url.to_string());
                if url.is_some() {
                    self.current.push('[');
                    self.at_line_start = false;
                }
                self.links.push(url);
            }
            _ => {}
        }
    }

    fn end(&mut self, tag: TagEnd) {
        match tag {
            TagEnd::Paragraph => self.end_block(),
            TagEnd::Heading(_) => {
                self.end(TagEnd::Strong);
                self.end_block();
            }
            TagEnd::BlockQuote(_) | TagEnd::CodeBlock | TagEnd::List(_) => {
                if let TagEnd::List(_) = tag {
                    self.lists.pop();
                }
                self.nesting -= 1;
                self.end_block();
            }
            TagEnd::Item => self.nesting -= 1,
            TagEnd::Strong => {
                if self.strong == 1 {
                    self.close("**");
                }
                self.strong -= 1;
            }
            TagEnd::Emphasis => {
                if self.emphasis == 1 {
                    self.close("_");
                }
                self.emphasis -= 1;
            }
            TagEnd::Link | TagEnd::Image => {
                if let Some(url) = self.links.pop().flatten() {
                    if self.current.ends_with('[') {
                        // A link without text shows its address.
                        self.current.push_str(&escape_line(&url, false));
                    }
                    self.current.push_str("](");
                    self.current.push_str(&escape_url(&url));
                    self.current.push(')');
                }
            }
            _ => {}
        }
    }

    fn event(&mut self, event: Event<'_>) {
        if let Event::Text(t)
        | Event::Code(t)
        | Event::Html(t)
        | Event::InlineHtml(t)
        | Event::FootnoteReference(t)
        | Event::InlineMath(t)
        | Event::DisplayMath(t) = &event
        {
            self.pending.push_str(t);
            return;
        }
        self.flush();
        match event {
            Event::Start(tag) => self.start(tag),
            Event::End(tag) => self.end(tag),
            Event::Text(_)
            | Event::Code(_)
            | Event::Html(_)
            | Event::InlineHtml(_)
            | Event::FootnoteReference(_)
            | Event::InlineMath(_)
            | Event::DisplayMath(_) => {}
            Event::SoftBreak | Event::HardBreak => self.line_break(),
            Event::Rule => {
                self.current.push('⸻');
                self.end_block();
            }
            Event::TaskListMarker(done) => self.text(if done { "☑ " } else { "☐ " }),
        }
    }
}

/// The host's Markdown (CommonMark, as the `discord` render writes it) in
/// TextBlock's subset, one piece per top-level block. Headings become bold
/// lines; code, quotes, strikethrough and HTML become plain text; a link
/// to anything but a web, mail or phone address keeps only its text.
pub fn from_markdown(markdown: &str) -> Vec<String> {
    let mut writer = Writer {
        at_line_start: true,
        ..Writer::default()
    };
    for event in Parser::new_ext(markdown, Options::ENABLE_STRIKETHROUGH) {
        writer.event(event);
    }
    writer.flush();
    writer.nesting = 0;
    writer.end_block();
    writer.blocks
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What the CommonMark readers (Teams on the web and desktop) find in
    /// a TextBlock: the text, and any markup other than paragraphs.
    fn read(text: &str) -> (String, Vec<String>) {
        let mut shown = String::new();
        let mut markup = Vec::new();
        for event in Parser::new_ext(text, Options::ENABLE_STRIKETHROUGH | Options::ENABLE_TABLES) {
            match event {
                Event::Text(t) => shown.push_str(&t),
                Event::SoftBreak | Event::HardBreak => shown.push('\n'),
                Event::Start(Tag::Paragraph) | Event::End(TagEnd::Paragraph) => {}
                other => markup.push(format!("{other:?}")),
            }
        }
        (shown, markup)
    }

    const HOSTILE: [&str; 16] = [
        "[click here](https://evil.example/login)",
        "\\[click here\\](https://evil.example/login)",
        "**not bold** and __not bold__ and *not italic* and _not italic_",
        "<b>bold</b> <a href=\"https://evil.example\">link</a> <https://evil.example>",
        "&lt;script&gt; &#91;x&#93;(https://evil.example) &amp;",
        "# Not a heading",
        "- not a list",
        "1. not a list",
        "12) not a list",
        "> not a quote",
        "`not code` and ```not a fence```",
        "~~not struck~~ | not | a table |",
        "    not a code block",
        "![not an image](https://evil.example/pixel.png)",
        "Meet on {{DATE(2017-02-14T06:00:00Z, SHORT)}} at {{TIME(2017-02-14T06:00:00Z)}}",
        "Ends with a backslash \\",
    ];

    #[test]
    fn hostile_text_shows_as_written_with_no_markup_for_commonmark_readers() {
        for text in HOSTILE {
            let escaped = escape(text);
            let (shown, markup) = read(&escaped);
            assert!(markup.is_empty(), "{text:?} became {escaped:?}: {markup:?}");
            assert_eq!(
                shown.replace('\u{200B}', ""),
                text.trim_start(),
                "{escaped:?}"
            );
        }
    }

    #[test]
    fn hostile_text_makes_no_link_or_date_for_the_mobile_reader() {
        // Adaptive Cards' own parser makes a link of `[…](` whatever
        // backslashes stand before the brackets, and reads `{{DATE(`.
        for text in HOSTILE {
            let escaped = escape(text);
            assert!(!escaped.contains("]("), "{escaped:?}");
            assert!(!escaped.contains("{{"), "{escaped:?}");
            assert!(
                !escaped.contains('<') || escaped.contains("\\<"),
                "{escaped:?}"
            );
        }
    }

    #[test]
    fn controls_and_direction_overrides_are_dropped() {
        assert_eq!(
            escape("pay\u{202E}gpj.exe\u{0}\u{1B}[31m now"),
            "paygpj.exe\\[31m now"
        );
    }

    #[test]
    fn the_render_keeps_its_bold_italic_lists_and_safe_links() {
        let markdown = "**Seeing the child**\n_7-minute briefing_\n\nRead the [guide](https://example.org/a_(b)).\n\n- one\n- two *three*\n\n1. first\n2. second";
        let blocks = from_markdown(markdown);
        assert_eq!(
            blocks,
            [
                "**Seeing the child**\n\n_7-minute briefing_",
                "Read the [guide](https://example.org/a%5F%28b%29).",
                "- one\n- two _three_",
                "1. first\n2. second",
            ]
        );
    }

    #[test]
    fn unsupported_markup_becomes_plain_text() {
        let blocks = from_markdown(
            "# Heading\n\n> quoted\n\n```\ncode *x*\n```\n\n~~gone~~ [bad](javascript:alert(1)) <b>x</b>",
        );
        assert_eq!(
            blocks,
            [
                "**Heading**",
                "quoted",
                "code \\*x\\*",
                "gone bad \\<b>x\\</b>"
            ]
        );
    }

    #[test]
    fn escaped_render_text_is_escaped_again_for_teams() {
        // The `discord` render escapes an item's text; read as CommonMark
        // and escaped for TextBlock, it still shows as the author wrote it.
        let blocks = from_markdown("Sam \\[the lead\\]\\(https://evil.example\\) \\*\\*x\\*\\*");
        let (shown, markup) = read(&blocks[0]);
        assert!(markup.is_empty(), "{:?}", blocks[0]);
        assert_eq!(shown, "Sam [the lead](https://evil.example) **x**");
        assert!(!blocks[0].contains("]("));
    }
}
