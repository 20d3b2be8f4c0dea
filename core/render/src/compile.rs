//! Compiling a handlebars template in time linear in its length.
//!
//! handlebars 6 asks pest for the line and column of every piece of a
//! template, and pest counts them from the start of the text each time, so
//! compiling a template takes time quadratic in its length (4,000 uses of
//! a field took 9 times as long as 1,000). Here a template is cut into
//! pieces of about [`PIECE_BYTES`], each compiled on its own and the
//! results joined, with their line numbers moved to where the piece
//! starts. A cut is made only inside plain text, between two visible
//! characters that are not braces, backslashes or tildes, and not while a
//! `~}}` still trims, so no tag, comment, escape, whitespace control or
//! standalone-line rule can see it.
//! A cut inside blocks reopens them: the piece is compiled between copies
//! of the open tags and matching close tags, and its block bodies are
//! joined onto the bodies compiled so far. Anything the scanner does not
//! follow (an unusual escape, a block after `{{else}}`) is simply not cut;
//! and if a piece does not compile, the whole template is compiled as one,
//! so its error (and its meaning) is exactly handlebars' own.

use handlebars::TemplateError;
use handlebars::template::{HelperTemplate, Template, TemplateElement};

/// Roughly how much text is compiled at once: large enough that compiling
/// a piece costs little beyond its parse, small enough that counting lines
/// within it is cheap.
const PIECE_BYTES: usize = 2048;

/// The template `name` compiled from `source`; the same template (up to
/// where its plain text is cut) as handlebars compiles from the whole.
pub(super) fn compile(source: &str, name: &str) -> Result<Template, TemplateError> {
    compile_in_pieces_of(source, name, PIECE_BYTES)
}

fn compile_in_pieces_of(
    source: &str,
    name: &str,
    piece_bytes: usize,
) -> Result<Template, TemplateError> {
    let whole = || Template::compile_with_name(source, name.to_owned());
    let Some(pieces) = pieces(source, piece_bytes) else {
        return whole();
    };
    if pieces.len() == 1 {
        return whole();
    }
    let mut joined: Option<Template> = None;
    for piece in &pieces {
        let text = format!(
            "{}{}{}",
            piece.reopen,
            &source[piece.range.clone()],
            piece.close
        );
        let Ok(mut template) = Template::compile_with_name(&text, name.to_owned()) else {
            return whole();
        };
        shift(
            &mut template,
            piece.line,
            piece.column,
            piece.reopen.chars().count(),
        );
        match &mut joined {
            None => joined = Some(template),
            Some(so_far) => {
                if !append(so_far, template, piece.depth) {
                    return whole();
                }
            }
        }
    }
    joined.map_or_else(whole, Ok)
}

/// One piece of the source, with the blocks open where it starts.
#[derive(Debug, PartialEq)]
struct Piece {
    range: std::ops::Range<usize>,
    /// The open tags of the blocks the piece starts inside, outermost first.
    reopen: String,
    /// Close tags for the blocks still open where it ends, innermost first.
    close: String,
    /// How many blocks `reopen` opens.
    depth: usize,
    /// 1-based line and column (in characters, as pest counts) of its start.
    line: usize,
    column: usize,
}

/// A block open at some point of the scan.
struct Open<'a> {
    tag: &'a str,
    close: String,
    /// False once the block cannot be reopened the same way: after an
    /// `{{else}}`, in an inverse block, or with an open tag over lines or
    /// with whitespace control.
    reopenable: bool,
}

/// The source cut into pieces, or `None` when the scanner cannot follow it.
fn pieces(source: &str, piece_bytes: usize) -> Option<Vec<Piece>> {
    let bytes = source.as_bytes();
    let mut pieces = Vec::new();
    let mut open: Vec<Open<'_>> = Vec::new();
    let (mut start, mut start_line, mut start_column) = (0, 1, 1);
    let mut start_reopen = (String::new(), 0);
    let (mut line, mut column) = (1, 1);
    let mut after_tilde = false;
    let mut i = 0;
    // Advances the line and column over `source[from..to]` as pest does.
    let count = |from: usize, to: usize, line: &mut usize, column: &mut usize| {
        let mut chars = source[from..to].chars().peekable();
        while let Some(c) = chars.next() {
            match c {
                '\r' if chars.peek() == Some(&'\n') => {
                    chars.next();
                    *line += 1;
                    *column = 1;
                }
                '\n' => {
                    *line += 1;
                    *column = 1;
                }
                _ => *column += 1,
            }
        }
    };
    while i < bytes.len() {
        if bytes[i..].starts_with(b"{{") {
            let backslashes = bytes[..i].iter().rev().take_while(|b| **b == b'\\').count();
            let end = match backslashes {
                // `\{{` (and `\{{{{`) is text.
                1 => {
                    i + if bytes[i..].starts_with(b"{{{{") {
                        4
                    } else {
                        2
                    }
                }
                0 | 2 => tag_end(source, i, &mut open)?,
                _ => return None,
            };
            // A tag ending in `~}}` trims the text after it, and handlebars
            // keeps that in mind up to the next tag (comments aside): a
            // piece starting meanwhile would not know it.
            let tag = &source[i..end];
            if backslashes != 1 && !tag.trim_start_matches(['{', '~']).starts_with('!') {
                after_tilde = if tag.starts_with("{{{{") {
                    tag.contains('~')
                } else {
                    tag.trim_end_matches('}').ends_with('~')
                };
            }
            count(i, end, &mut line, &mut column);
            i = end;
            continue;
        }
        let cut_here = i - start >= piece_bytes
            && i > 0
            && plain(bytes[i - 1])
            && plain(bytes[i])
            && !after_tilde
            && open.iter().all(|o| o.reopenable);
        if cut_here {
            let close: String = open.iter().rev().map(|o| o.close.as_str()).collect();
            pieces.push(Piece {
                range: start..i,
                reopen: std::mem::take(&mut start_reopen.0),
                close,
                depth: start_reopen.1,
                line: start_line,
                column: start_column,
            });
            start = i;
            (start_line, start_column) = (line, column);
            start_reopen = (open.iter().map(|o| o.tag).collect(), open.len());
        }
        let next = i + source[i..].chars().next().map_or(1, char::len_utf8);
        count(i, next, &mut line, &mut column);
        i = next;
    }
    pieces.push(Piece {
        range: start..source.len(),
        reopen: start_reopen.0,
        close: String::new(),
        depth: start_reopen.1,
        line: start_line,
        column: start_column,
    });
    Some(pieces)
}

/// A visible ASCII character with no meaning to handlebars next to a cut.
fn plain(b: u8) -> bool {
    b.is_ascii_graphic() && !matches!(b, b'{' | b'}' | b'\\' | b'~')
}

/// The end of the tag, comment or raw block starting at `at` (which holds
/// `{{`), keeping `open` in step with the blocks it opens and closes.
fn tag_end<'a>(source: &'a str, at: usize, open: &mut Vec<Open<'a>>) -> Option<usize> {
    let rest = &source[at..];
    if let Some(raw) = rest.strip_prefix("{{{{") {
        // A raw block: text up to its `{{{{/name}}}}`, never cut.
        let tag_len = rest.find("}}}}")? + 4;
        let name = word(raw.trim_start_matches(['~', ' ', '\t']))?;
        let close = format!("{{{{{{{{/{name}}}}}}}}}");
        let body = rest[tag_len..].find(&close)?;
        return Some(at + tag_len + body + close.len());
    }
    let opening = rest[2..].trim_start_matches('~');
    if opening.starts_with("!--") {
        return Some(at + rest.find("--}}")? + 4);
    }
    if opening.starts_with('!') {
        return Some(at + rest.find("}}")? + 2);
    }
    let len = tag_len(rest)?;
    let tag = &rest[..len];
    let inner = tag
        .trim_start_matches('{')
        .trim_end_matches('}')
        .trim_matches('~');
    if let Some(opened) = inner.strip_prefix('#') {
        let name = word(opened.trim_start_matches(['>', '*']).trim_start())?;
        open.push(Open {
            tag,
            close: format!("{{{{/{name}}}}}"),
            // A copy of a tag with `~` would trim, or let trim, what the
            // original did not reach.
            reopenable: !tag.contains(['\n', '\r', '~']),
        });
    } else if inner.starts_with('/') {
        open.pop()?;
    } else if let Some(inverse) = inner.strip_prefix('^') {
        match word(inverse.trim_start()) {
            // `{{^name}}` opens an inverse block.
            Some(name) => open.push(Open {
                tag,
                close: format!("{{{{/{name}}}}}"),
                reopenable: false,
            }),
            // `{{^}}` is `{{else}}`.
            None => open.last_mut()?.reopenable = false,
        }
    } else if word(inner.trim_start()) == Some("else") {
        open.last_mut()?.reopenable = false;
    }
    Some(at + len)
}

/// The length of the tag at the start of `rest` through its closing
/// braces: string literals, `[...]` path segments and object literals may
/// hold braces of their own.
fn tag_len(rest: &str) -> Option<usize> {
    let triple = rest.starts_with("{{{");
    let bytes = rest.as_bytes();
    let mut i = if triple { 3 } else { 2 };
    let mut braces = 0usize;
    while i < bytes.len() {
        match bytes[i] {
            quote @ (b'"' | b'\'') => {
                i += 1;
                while *bytes.get(i)? != quote {
                    i += if bytes[i] == b'\\' { 2 } else { 1 };
                }
            }
            b'[' => i += rest[i..].find(']')?,
            b'{' => braces += 1,
            b'}' if braces > 0 => braces -= 1,
            b'}' => {
                let closing = if triple { "}}}" } else { "}}" };
                return rest[i..].starts_with(closing).then_some(i + closing.len());
            }
            _ => {}
        }
        i += 1;
    }
    None
}

/// The helper or block name at the start of `text`, if it starts with one.
fn word(text: &str) -> Option<&str> {
    let end = text
        .find(|c: char| c.is_whitespace() || matches!(c, '}' | '~' | '(' | ')'))
        .unwrap_or(text.len());
    let name = &text[..end];
    let plain_name = !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.' | b'/' | b'@'));
    plain_name.then_some(name)
}

/// Moves every line number of a piece's template (and of the blocks in
/// it) to where the piece starts; on its first line, columns move too,
/// less the `reopen` text before the piece's own.
fn shift(template: &mut Template, line: usize, column: usize, reopen: usize) {
    for mapping in &mut template.mapping {
        if mapping.0 == 1 {
            mapping.1 = (column + mapping.1).saturating_sub(1 + reopen).max(1);
        }
        mapping.0 += line - 1;
    }
    for element in &mut template.elements {
        for inner in inner_templates(element) {
            shift(inner, line, column, reopen);
        }
    }
}

fn inner_templates(element: &mut TemplateElement) -> Vec<&mut Template> {
    match element {
        TemplateElement::HtmlExpression(h)
        | TemplateElement::Expression(h)
        | TemplateElement::HelperBlock(h) => helper_templates(h),
        TemplateElement::DecoratorExpression(d)
        | TemplateElement::DecoratorBlock(d)
        | TemplateElement::PartialExpression(d)
        | TemplateElement::PartialBlock(d) => d.template.iter_mut().collect(),
        _ => Vec::new(),
    }
}

/// Joins the template of the next piece onto the templates so far. The
/// piece starts `depth` blocks deep: its first element is the reopened
/// outermost block, whose body continues the body of the last element so
/// far, and so on down. False if the shapes do not match.
fn append(so_far: &mut Template, mut next: Template, depth: usize) -> bool {
    if depth > 0 {
        if next.elements.is_empty() {
            return false;
        }
        let reopened = next.elements.remove(0);
        next.mapping.remove(0);
        let (Some(last), Some((body, inverse))) = (so_far.elements.last_mut(), parts(reopened))
        else {
            return false;
        };
        let Some((last_body, last_inverse)) = parts_mut(last) else {
            return false;
        };
        if !append(last_body, body, depth - 1) {
            return false;
        }
        // A cut is never made after `{{else}}`, so the else branch comes
        // whole from one piece, the one that reaches it.
        if let Some(inverse) = inverse {
            match last_inverse {
                Some(slot) if slot.is_none() => *slot = Some(inverse),
                _ => return false,
            }
        }
    }
    so_far.elements.append(&mut next.elements);
    so_far.mapping.append(&mut next.mapping);
    true
}

fn helper_templates(h: &mut HelperTemplate) -> Vec<&mut Template> {
    h.template.iter_mut().chain(h.inverse.iter_mut()).collect()
}

/// A block's body and its else branch (blocks of partials and decorators
/// have none).
fn parts(element: TemplateElement) -> Option<(Template, Option<Template>)> {
    match element {
        TemplateElement::HelperBlock(h) => Some((h.template?, h.inverse)),
        TemplateElement::DecoratorBlock(d) | TemplateElement::PartialBlock(d) => {
            Some((d.template?, None))
        }
        _ => None,
    }
}

/// A block's body, and where its else branch goes if it can have one.
fn parts_mut(
    element: &mut TemplateElement,
) -> Option<(&mut Template, Option<&mut Option<Template>>)> {
    match element {
        TemplateElement::HelperBlock(h) => Some((h.template.as_mut()?, Some(&mut h.inverse))),
        TemplateElement::DecoratorBlock(d) | TemplateElement::PartialBlock(d) => {
            Some((d.template.as_mut()?, None))
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// A template with adjacent texts joined (a cut splits one text in
    /// two) and empty ones dropped (they write nothing), so a template
    /// compiled in pieces compares equal to the whole.
    fn joined(mut template: Template) -> Template {
        let mut elements: Vec<TemplateElement> = Vec::new();
        let mut mapping = Vec::new();
        for (mut element, at) in template.elements.drain(..).zip(template.mapping.drain(..)) {
            for inner in inner_templates(&mut element) {
                *inner = joined(std::mem::take(inner));
            }
            if matches!(&element, TemplateElement::RawString(text) if text.is_empty()) {
                continue;
            }
            if let (Some(TemplateElement::RawString(before)), TemplateElement::RawString(text)) =
                (elements.last_mut(), &element)
            {
                before.push_str(text);
                continue;
            }
            elements.push(element);
            mapping.push(at);
        }
        template.elements = elements;
        template.mapping = mapping;
        template
    }

    fn same_as_whole(source: &str, piece_bytes: usize) -> Result<(), TestCaseError> {
        let whole = Template::compile_with_name(source, "t".to_owned());
        let pieces = compile_in_pieces_of(source, "t", piece_bytes);
        match (whole, pieces) {
            (Ok(whole), Ok(pieces)) => prop_assert_eq!(joined(pieces), joined(whole)),
            (Err(whole), Err(pieces)) => prop_assert_eq!(pieces.to_string(), whole.to_string()),
            (whole, pieces) => prop_assert!(false, "whole {whole:?}, pieces {pieces:?}"),
        }
        Ok(())
    }

    /// Bits of templates: text, fields, comments, escapes, whitespace
    /// control, and now and then something that does not compile.
    fn leaf() -> impl Strategy<Value = String> {
        prop::sample::select(vec![
            "Dear ",
            "word",
            "a-b.c",
            " ",
            "\n",
            "\r\n",
            "  \t",
            "é€",
            "{{person.name}}",
            "{{{item.title}}}",
            "{{~ack.url~}}",
            "{{href ack.url}}",
            "{{section_break}}",
            "{{!-- a }} comment --}}",
            "{{! short }}",
            "\\{{not a tag}}",
            "\\\\{{person.name}}",
            "{{lookup item \"a}}b\"}}",
            "{{lookup item 'c'}}",
            "{{> footer}}",
            "\n{{> footer}}\n",
            "{{{{raw}}}} {{x}} {{{{/raw}}}}",
            "\n{{! standalone }}\n",
        ])
        .prop_map(|s| {
            s.replace("\\n", "\n")
                .replace("\\r", "\r")
                .replace("\\t", "\t")
        })
    }

    /// Templates: leaves and blocks of them, with `else` branches and
    /// blocks alone on their lines.
    fn template() -> impl Strategy<Value = String> {
        let body = prop::collection::vec(leaf(), 0..12).prop_map(|l| l.concat());
        body.prop_recursive(3, 48, 4, |inner| {
            let body = prop::collection::vec(inner, 1..4).prop_map(|b| b.concat());
            (0usize..8, body.clone(), body).prop_map(|(kind, a, b)| match kind {
                0 => format!("{{{{#if ack.url}}}}{a}{{{{else}}}}{b}{{{{/if}}}}"),
                1 => format!("{{{{#each item.sections}}}}{a}{{{{/each}}}}{b}"),
                2 => format!("x\n{{{{#if item.source}}}}\n{a}\n{{{{/if}}}}\n{b}"),
                3 => format!("{{{{#*inline \"p\"}}}}{a}{{{{/inline}}}}{b}{{{{> p}}}}"),
                4 => format!("{{{{#> footer}}}}{a}{{{{/footer}}}}{b}"),
                5 => format!("{{{{#unless ack.url}}}}{a}{{{{^}}}}{b}{{{{/unless}}}}"),
                6 => format!("{{{{~#if ack.url~}}}}{a}{{{{~^~}}}}{b}{{{{~/if~}}}}"),
                _ => format!("{{{{#each item.links as |link|}}}}{a}{{{{/each}}}}{b}"),
            })
        })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(128))]

        #[test]
        fn a_template_compiled_in_pieces_is_the_template_compiled_whole(
            source in template(),
            piece_bytes in 1usize..32,
        ) {
            same_as_whole(&source, piece_bytes)?;
        }
    }

    #[test]
    fn no_piece_is_much_longer_than_the_piece_size_at_any_depth() {
        let field = "Dear {{person.name}}, ";
        for source in [
            field.repeat(8000),
            format!("{{{{#if ack.url}}}}{}{{{{/if}}}}", field.repeat(8000)),
            format!(
                "{{{{#each item.sections}}}}{{{{#if reflection}}}}{}{{{{/if}}}}{{{{/each}}}}",
                field.repeat(8000)
            ),
        ] {
            let pieces = pieces(&source, PIECE_BYTES).unwrap();
            assert!(pieces.len() > 50, "{}", pieces.len());
            for piece in &pieces {
                assert!(
                    piece.range.len() + piece.reopen.len() + piece.close.len() < 2 * PIECE_BYTES
                );
            }
        }
    }

    #[test]
    fn a_piece_starts_on_the_line_and_column_of_its_first_character() {
        let source = format!("{}\nab{{{{person.name}}}}cd", "x".repeat(10));
        let pieces = pieces(&source, 12).unwrap();
        let second = &pieces[1];
        assert_eq!(&source[second.range.clone()][..1], "b");
        assert_eq!((second.line, second.column), (2, 2));
    }
}
