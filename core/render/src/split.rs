//! Splitting a rendered message that is too long for one provider message.
//! Pure string work: cuts on section breaks first, then paragraphs, lines,
//! whitespace and finally any character, never inside a tag, an entity or an
//! escape sequence, and closes and reopens formatting that spans a cut.

/// Emitted by the `{{section_break}}` helper between sections; the preferred
/// place to cut. Removed from every rendered message.
pub const SECTION_BREAK: char = '\u{1E}';

/// The markup language of a message, which decides what may not be cut.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Markup {
    /// Telegram Bot API HTML: tags and `&...;` entities.
    Telegram,
    /// Discord Markdown: `\x` escapes, `**`, `_`, `~~`, `||`, code and links.
    Discord,
    /// Text without markup.
    Plain,
}

/// Length as both Telegram and Discord count it, conservatively: UTF-16 code
/// units.
pub fn utf16_len(text: &str) -> usize {
    text.encode_utf16().count()
}

/// Splits `text` into messages of at most `limit` UTF-16 code units each,
/// adding a `(i/n)` line at the start of each when there is more than one.
/// [`SECTION_BREAK`] markers are removed. A limit too small to hold any text
/// beside the open formatting yields chunks of one indivisible piece each.
pub fn split(markup: Markup, text: &str, limit: usize) -> Vec<String> {
    let atoms = tokenize(markup, text);
    let total: usize = atoms.iter().map(|a| a.len).sum();
    if total <= limit {
        return vec![atoms.iter().map(|a| a.text).collect()];
    }
    let mut digits: u32 = 1;
    loop {
        let reserve = 2 * digits as usize + 4;
        let chunks = pack(&atoms, limit.saturating_sub(reserve));
        if chunks.len() < 10usize.pow(digits) {
            let n = chunks.len();
            return chunks
                .into_iter()
                .enumerate()
                .map(|(i, chunk)| format!("({}/{n})\n{chunk}", i + 1))
                .collect();
        }
        digits += 1;
    }
}

/// An indivisible piece of a message.
#[derive(Debug)]
struct Atom<'a> {
    text: &'a str,
    len: usize,
    kind: Kind,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Kind {
    Text,
    /// Opens formatting; the string closes it again.
    Open(String),
    Close,
    Break,
}

/// Formatting open at some point: the text that opened it and the text that
/// closes it.
#[derive(Debug, Clone)]
struct Open<'a> {
    open: &'a str,
    close: String,
}

/// How good a place to cut is; later variants are better.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Boundary {
    Character,
    Whitespace,
    Line,
    Paragraph,
    Section,
}

fn pack(atoms: &[Atom<'_>], budget: usize) -> Vec<String> {
    let mut chunks = Vec::new();
    let mut open: Vec<Open<'_>> = Vec::new();
    let mut start = 0;
    while start < atoms.len() {
        let mut used: usize = open.iter().map(|o| utf16_len(o.open)).sum();
        let mut stack = open.clone();
        let mut best: Option<(Boundary, usize, Vec<Open<'_>>)> = None;
        let mut end = start;
        let mut fits_to_the_end = false;
        let mut content = 0;
        while end < atoms.len() {
            used += atoms[end].len;
            content += atoms[end].len;
            apply(&mut stack, &atoms[end]);
            end += 1;
            if used > budget {
                break;
            }
            let closing: usize = stack.iter().map(|o| utf16_len(&o.close)).sum();
            if used + closing > budget {
                continue;
            }
            if end == atoms.len() {
                fits_to_the_end = true;
            } else if content > 0
                && let Some(boundary) = boundary_at(atoms, end)
                && best.as_ref().is_none_or(|(b, _, _)| boundary >= *b)
            {
                best = Some((boundary, end, stack.clone()));
            }
        }
        let (cut, after) = if fits_to_the_end {
            (atoms.len(), stack)
        } else if let Some((_, cut, after)) = best {
            (cut, after)
        } else {
            forced_cut(atoms, start, &open)
        };
        let mut chunk: String = open.iter().map(|o| o.open).collect();
        chunk.extend(atoms[start..cut].iter().map(|a| a.text));
        chunk.extend(after.iter().rev().map(|o| o.close.as_str()));
        chunks.push(chunk);
        open = after;
        start = cut;
    }
    chunks
}

/// The cut when nothing fits: one piece of text, with any formatting opened
/// just before it, so every chunk makes progress.
fn forced_cut<'a>(atoms: &[Atom<'a>], start: usize, open: &[Open<'a>]) -> (usize, Vec<Open<'a>>) {
    let mut stack = open.to_vec();
    let mut cut = start;
    while cut < atoms.len() {
        apply(&mut stack, &atoms[cut]);
        cut += 1;
        if !matches!(atoms[cut - 1].kind, Kind::Open(_)) {
            break;
        }
    }
    (cut, stack)
}

fn apply<'a>(stack: &mut Vec<Open<'a>>, atom: &Atom<'a>) {
    match &atom.kind {
        Kind::Open(close) => stack.push(Open {
            open: atom.text,
            close: close.clone(),
        }),
        Kind::Close => {
            stack.pop();
        }
        Kind::Text | Kind::Break => {}
    }
}

/// What kind of boundary lies before `atoms[at]`, or `None` when a cut there
/// would leave empty formatting behind.
fn boundary_at(atoms: &[Atom<'_>], at: usize) -> Option<Boundary> {
    let before = &atoms[at - 1];
    if matches!(before.kind, Kind::Open(_)) || atoms[at].kind == Kind::Close {
        return None;
    }
    let boundary = match before.kind {
        Kind::Break => Boundary::Section,
        _ if before.text == "\n" && at >= 2 && atoms[at - 2].text == "\n" => Boundary::Paragraph,
        _ if before.text == "\n" => Boundary::Line,
        _ if before.text.chars().all(char::is_whitespace) => Boundary::Whitespace,
        _ => Boundary::Character,
    };
    Some(boundary)
}

fn atom(text: &str, kind: Kind) -> Atom<'_> {
    Atom {
        text: if kind == Kind::Break { "" } else { text },
        len: if kind == Kind::Break {
            0
        } else {
            utf16_len(text)
        },
        kind,
    }
}

fn tokenize(markup: Markup, text: &str) -> Vec<Atom<'_>> {
    match markup {
        Markup::Telegram => tokenize_telegram(text),
        Markup::Discord => tokenize_discord(text),
        Markup::Plain => text
            .char_indices()
            .map(|(i, c)| char_atom(&text[i..i + c.len_utf8()]))
            .collect(),
    }
}

fn char_atom(c: &str) -> Atom<'_> {
    if c.starts_with(SECTION_BREAK) {
        atom(c, Kind::Break)
    } else {
        atom(c, Kind::Text)
    }
}

fn first_char(text: &str) -> &str {
    let len = text.chars().next().map_or(0, char::len_utf8);
    &text[..len]
}

fn tokenize_telegram(text: &str) -> Vec<Atom<'_>> {
    let mut atoms = Vec::new();
    let mut rest = text;
    while !rest.is_empty() {
        let piece = if rest.starts_with('<')
            && let Some(end) = rest.find('>')
        {
            let tag = &rest[..=end];
            let kind = if tag.starts_with("</") {
                Kind::Close
            } else {
                let name_end = tag[1..]
                    .find(|c: char| c.is_whitespace() || c == '>')
                    .map_or(tag.len() - 1, |i| i + 1);
                Kind::Open(format!("</{}>", &tag[1..name_end]))
            };
            atom(tag, kind)
        } else if rest.starts_with('&')
            && let Some(end) = rest.bytes().take(10).position(|b| b == b';')
        {
            atom(&rest[..=end], Kind::Text)
        } else {
            char_atom(first_char(rest))
        };
        rest = &rest[piece.text.len().max(first_char(rest).len())..];
        atoms.push(piece);
    }
    atoms
}

/// Toggled Discord formatting markers, longest first so `**` wins over `*`.
pub(super) const DISCORD_MARKERS: [&str; 5] = ["**", "~~", "||", "_", "*"];

fn tokenize_discord(text: &str) -> Vec<Atom<'_>> {
    let mut atoms = Vec::new();
    let mut open: Vec<&str> = Vec::new();
    let mut code: Option<&str> = None;
    let mut rest = text;
    while !rest.is_empty() {
        let ticks = &rest[..rest.len() - rest.trim_start_matches('`').len()];
        let piece = if let Some(fence) = code {
            if ticks == fence {
                code = None;
                atom(ticks, Kind::Close)
            } else {
                char_atom(first_char(rest))
            }
        } else if !ticks.is_empty() {
            code = Some(ticks);
            let opener = if ticks.len() >= 3 && rest[ticks.len()..].starts_with('\n') {
                &rest[..=ticks.len()]
            } else {
                ticks
            };
            atom(opener, Kind::Open(ticks.to_owned()))
        } else if let Some(escaped) = rest.strip_prefix('\\') {
            let len = 1 + escaped.chars().next().map_or(0, char::len_utf8);
            atom(&rest[..len], Kind::Text)
        } else if rest.starts_with('[')
            && let Some(close) = link_close(&rest[1..])
        {
            open.push("[");
            atom(&rest[..1], Kind::Open(close.to_owned()))
        } else if rest.starts_with("](") && open.last() == Some(&"[") {
            open.pop();
            let end = rest.find(')').map_or(rest.len(), |i| i + 1);
            atom(&rest[..end], Kind::Close)
        } else if let Some(marker) = DISCORD_MARKERS.iter().find(|m| rest.starts_with(**m)) {
            if open.last() == Some(marker) {
                open.pop();
                atom(marker, Kind::Close)
            } else {
                open.push(marker);
                atom(marker, Kind::Open((*marker).to_owned()))
            }
        } else {
            char_atom(first_char(rest))
        };
        rest = &rest[piece.text.len().max(first_char(rest).len())..];
        atoms.push(piece);
    }
    atoms
}

/// The `](url)` that closes a link whose text starts at `text`, if any.
fn link_close(text: &str) -> Option<&str> {
    let mut chars = text.char_indices();
    while let Some((i, c)) = chars.next() {
        match c {
            '\\' => {
                chars.next();
            }
            '[' => return None,
            ']' => {
                let close = &text[i..];
                return close
                    .starts_with("](")
                    .then(|| close.find(')').map(|end| &close[..=end]))
                    .flatten();
            }
            _ => {}
        }
    }
    None
}
