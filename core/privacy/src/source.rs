//! The decoded views of a source file that the guard scans besides the file
//! itself: TOML strings as TOML decodes them (front matter, rollout files)
//! and a content body's Markdown as the renderer reads it. Each view maps
//! back to the file's own bytes.

use super::view::View;
use pulldown_cmark::{Event, Options, Parser, Tag, TagEnd};
use std::ops::Range;

/// Views of a content file: its TOML front matter's strings and its
/// Markdown body, as they will be rendered.
pub(super) fn item_views(source: &str) -> Vec<View> {
    let Some((front, body)) = split_item(source) else {
        return Vec::new();
    };
    vec![
        toml_strings(&source[front.clone()], front.start),
        markdown_text(&source[body.clone()], body.start),
    ]
}

/// The front matter's and the body's byte ranges: the front matter sits
/// between a first line `+++` and the next line `+++`, as the parser reads it.
fn split_item(source: &str) -> Option<(Range<usize>, Range<usize>)> {
    let start = if source.starts_with('\u{feff}') { 3 } else { 0 };
    let mut lines = line_ranges(source, start);
    let first = lines.next()?;
    if source[first.clone()].trim_end() != "+++" {
        return None;
    }
    let front_start = first.end;
    for line in lines {
        if source[line.clone()].trim_end() == "+++" {
            return Some((front_start..line.start, line.end..source.len()));
        }
    }
    None
}

/// Each line's range including its line break.
fn line_ranges(source: &str, start: usize) -> impl Iterator<Item = Range<usize>> + '_ {
    let mut at = start;
    std::iter::from_fn(move || {
        if at >= source.len() {
            return None;
        }
        let end = source[at..].find('\n').map_or(source.len(), |i| at + i + 1);
        let line = at..end;
        at = end;
        Some(line)
    })
}

/// Every string in a TOML text, decoded as TOML decodes it (escapes, line-
/// ending backslashes), one per line. `offset` is where `text` starts in the
/// source. Comments and bare values are left to the raw view.
pub(super) fn toml_strings(text: &str, offset: usize) -> View {
    let mut view = View::default();
    let bytes = text.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'#' => i = text[i..].find('\n').map_or(text.len(), |n| i + n),
            quote @ (b'"' | b'\'') => {
                let triple = text[i..].starts_with(if quote == b'"' { "\"\"\"" } else { "'''" });
                let open = if triple { 3 } else { 1 };
                let end = if quote == b'"' {
                    basic_string(text, i + open, triple, offset, &mut view)
                } else {
                    literal_string(text, i + open, triple, offset, &mut view)
                };
                view.push('\n', offset + i..offset + end);
                i = end;
            }
            _ => i += 1,
        }
    }
    view
}

/// Decodes a basic string's contents from `start`; returns the index just
/// after its closing quotes (or the end of the line or text if unclosed).
fn basic_string(text: &str, start: usize, triple: bool, offset: usize, view: &mut View) -> usize {
    let close = if triple { "\"\"\"" } else { "\"" };
    let mut i = start;
    while i < text.len() {
        let rest = &text[i..];
        if rest.starts_with(close) {
            // A multi-line string may end with up to two quotes of its own.
            let extra = if triple {
                rest[3..].chars().take(2).take_while(|&c| c == '"').count()
            } else {
                0
            };
            for k in 0..extra {
                view.push('"', offset + i + k..offset + i + k + 1);
            }
            return i + extra + close.len();
        }
        let c = rest.chars().next().expect("rest is not empty");
        if c == '\n' && !triple {
            return i;
        }
        if c != '\\' {
            view.push(c, offset + i..offset + i + c.len_utf8());
            i += c.len_utf8();
            continue;
        }
        let (decoded, used) = escape(rest, triple);
        if let Some(decoded) = decoded {
            view.push(decoded, offset + i..offset + i + used);
        }
        i += used;
    }
    text.len()
}

/// One TOML escape at the start of `rest` (which starts with a backslash):
/// the character it stands for, if any, and the bytes it used.
fn escape(rest: &str, triple: bool) -> (Option<char>, usize) {
    let hex = |len: usize| {
        rest.get(2..2 + len)
            .filter(|digits| digits.chars().all(|c| c.is_ascii_hexdigit()))
            .and_then(|digits| u32::from_str_radix(digits, 16).ok())
            .and_then(char::from_u32)
            .map_or((None, 2), |c| (Some(c), 2 + len))
    };
    match rest[1..].chars().next() {
        Some('b') => (Some('\u{8}'), 2),
        Some('t') => (Some('\t'), 2),
        Some('n') => (Some('\n'), 2),
        Some('f') => (Some('\u{c}'), 2),
        Some('r') => (Some('\r'), 2),
        Some('e') => (Some('\u{1b}'), 2),
        Some('"') => (Some('"'), 2),
        Some('\\') => (Some('\\'), 2),
        Some('u') => hex(4),
        Some('U') => hex(8),
        Some('x') => hex(2),
        Some(c) if triple && (c == ' ' || c == '\t' || c == '\r' || c == '\n') => {
            // A line-ending backslash joins the lines, dropping the
            // whitespace after it.
            let skipped = rest[1..]
                .chars()
                .take_while(|c| c.is_whitespace())
                .map(char::len_utf8)
                .sum::<usize>();
            (None, 1 + skipped)
        }
        Some(c) => (Some(c), 1 + c.len_utf8()),
        None => (None, 1),
    }
}

fn literal_string(text: &str, start: usize, triple: bool, offset: usize, view: &mut View) -> usize {
    let close = if triple { "'''" } else { "'" };
    let stop = if triple {
        text[start..].find(close).map_or(text.len(), |n| start + n)
    } else {
        text[start..]
            .find(['\'', '\n'])
            .map_or(text.len(), |n| start + n)
    };
    view.push_source(&text[start..stop], offset + start);
    if text[stop..].starts_with(close) {
        stop + close.len()
    } else {
        stop
    }
}

/// A Markdown body's text as the renderer reads it: entities and backslash
/// escapes decoded, emphasis and links reduced to their text, a link's
/// address beside it, soft line breaks read as spaces and table cells and
/// blocks kept apart.
pub(super) fn markdown_text(body: &str, offset: usize) -> View {
    let mut view = View::default();
    let mut addresses = Vec::new();
    let options = Options::ENABLE_STRIKETHROUGH | Options::ENABLE_TABLES;
    for (event, range) in Parser::new_ext(body, options).into_offset_iter() {
        let from = offset + range.start..offset + range.end;
        match event {
            Event::Text(text) | Event::Code(text) | Event::Html(text) | Event::InlineHtml(text) => {
                if body.get(range.clone()) == Some(&*text) {
                    view.push_source(&text, from.start);
                } else {
                    view.append(pieces(&text, body, range, offset));
                }
            }
            Event::SoftBreak => view.push(' ', from),
            Event::HardBreak => view.push('\n', from),
            // Addresses are read after the text, so a link between two
            // words ("[Jayden](x) [Northwood](y)") does not split them.
            Event::Start(Tag::Link { dest_url, .. } | Tag::Image { dest_url, .. }) => {
                addresses.push((dest_url.to_string(), from));
            }
            Event::End(TagEnd::TableCell) => view.push(' ', from),
            Event::End(
                TagEnd::Paragraph
                | TagEnd::Heading(_)
                | TagEnd::Item
                | TagEnd::TableRow
                | TagEnd::TableHead
                | TagEnd::CodeBlock
                | TagEnd::HtmlBlock
                | TagEnd::BlockQuote(_),
            ) => view.push('\n', from),
            _ => {}
        }
    }
    for (address, from) in addresses {
        view.push_str(&address, from.clone());
        view.push('\n', from);
    }
    view
}

/// Decoded text whose source is longer than it (an entity, an escape):
/// maps what it can byte for byte and the rest to the whole range.
fn pieces(text: &str, body: &str, range: Range<usize>, offset: usize) -> View {
    let mut view = View::default();
    let source = body.get(range.clone()).unwrap_or_default();
    // The common case: the decoded text is the source with escapes removed,
    // so each character is found in order.
    let mut at = 0;
    for c in text.chars() {
        match source[at..].find(c) {
            Some(n) if n <= 12 => {
                let start = range.start + at + n;
                view.push(c, offset + start..offset + start + c.len_utf8());
                at += n + c.len_utf8();
            }
            _ => view.push(c, offset + range.start..offset + range.end),
        }
    }
    view
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn toml_strings_are_decoded_and_point_at_their_source() {
        let text = "title = \"Jayden\\u0020North\\u0077ood\"\nn = 3 # \"not a string\"\nsub = '''\nraw \\u0020'''\nlong = \"\"\"a \\\n    b\"\"\"\n";
        let view = toml_strings(text, 0);
        assert_eq!(view.text, "Jayden Northwood\n\nraw \\u0020\na b\n");
        let at = view.text.find("Northwood").unwrap();
        let range = view.source_range(at..at + "Northwood".len());
        assert_eq!(&text[range], "North\\u0077ood");
    }

    #[test]
    fn markdown_reads_as_rendered() {
        let body = "**Jayden** **North**wood &amp; 943\\-476\\-5919\nnext [x](/jayden-northwood)\n";
        let view = markdown_text(body, 0);
        assert_eq!(
            view.text,
            "Jayden Northwood & 943-476-5919 next x\n/jayden-northwood\n"
        );
    }

    #[test]
    fn an_item_splits_at_its_front_matter() {
        let source = "+++\ntitle = \"a\"\n+++\nbody\n";
        let (front, body) = split_item(source).unwrap();
        assert_eq!(&source[front], "title = \"a\"\n");
        assert_eq!(&source[body], "body\n");
    }
}
