//! Views of a source text as a reader will see it: escapes and entities
//! decoded, markup and invisible characters dropped, look-alike letters,
//! spaces and dashes folded to one form. Every byte of a view remembers the
//! source bytes it came from, so a finding in a view points at the source's
//! own line and text.

use std::ops::Range;
use unicode_normalization::UnicodeNormalization;

/// Decoded text with, for each of its bytes, the source range it came from.
#[derive(Debug, Clone, Default)]
pub(crate) struct View {
    pub text: String,
    origin: Vec<Range<usize>>,
}

impl View {
    /// The source as it is, byte for byte.
    pub fn raw(source: &str) -> View {
        View {
            text: source.to_owned(),
            origin: (0..source.len()).map(|i| i..i + 1).collect(),
        }
    }

    /// The source range of `range` of this view.
    pub fn source_range(&self, range: Range<usize>) -> Range<usize> {
        match (self.origin.get(range.start), range.end.checked_sub(1)) {
            (Some(first), Some(last)) if last >= range.start => {
                let last = &self.origin[last.min(self.origin.len() - 1)];
                first.start.min(last.start)..first.end.max(last.end)
            }
            _ => 0..0,
        }
    }

    pub(crate) fn push(&mut self, c: char, from: Range<usize>) {
        let before = self.text.len();
        self.text.push(c);
        for _ in before..self.text.len() {
            self.origin.push(from.clone());
        }
    }

    /// Text that came from `from` as a whole (a decoded entity, a TOML
    /// escape): each of its bytes points at all of `from`.
    pub(crate) fn push_str(&mut self, text: &str, from: Range<usize>) {
        for c in text.chars() {
            self.push(c, from.clone());
        }
    }

    /// Text copied from the source at `start`, byte for byte.
    pub(crate) fn push_source(&mut self, text: &str, start: usize) {
        self.text.push_str(text);
        self.origin
            .extend((start..start + text.len()).map(|i| i..i + 1));
    }

    /// Appends another view of the same source.
    pub(crate) fn append(&mut self, other: View) {
        self.text.push_str(&other.text);
        self.origin.extend(other.origin);
    }

    /// What a reader sees: see [`normalise`].
    pub fn normalised(&self) -> View {
        normalise(self)
    }
}

/// Decodes and folds a view in one pass:
/// - HTML entities and numeric character references (`&nbsp;`, `&#97;`,
///   `&#x40;`), backslash escapes (`\-`, `\u0061`) and `%XX` escapes;
/// - HTML tags dropped (a block tag leaves a space), and the Markdown
///   emphasis and code marks `*`, `_`, `~` and backquote dropped, so
///   `**Jay**den` reads "Jayden";
/// - invisible characters (zero-width spaces and joiners, soft hyphens,
///   direction marks) dropped;
/// - compatibility forms folded (full-width digits, mathematical letters,
///   ligatures), accents dropped, Cyrillic and Greek look-alikes read as
///   Latin letters;
/// - every space but a line break read as a plain space, every dash as `-`,
///   every dot-like mark as `.`.
fn normalise(view: &View) -> View {
    let text = &view.text;
    let mut out = View {
        text: String::with_capacity(text.len()),
        origin: Vec::with_capacity(text.len()),
    };
    let mut i = 0;
    while i < text.len() {
        let rest = &text[i..];
        let (decoded, used) = decode_at(rest);
        let from = view.source_range(i..i + used);
        match decoded {
            Decoded::Drop => {}
            Decoded::Char(c) => fold_into(&mut out, c, from),
            Decoded::Space => out.push(' ', from),
        }
        i += used;
    }
    out
}

enum Decoded {
    Char(char),
    /// Markup that reads as a gap between words.
    Space,
    Drop,
}

/// Decodes what starts `text`: an escape, entity or tag, else one character.
/// Returns the result and how many bytes it used.
fn decode_at(text: &str) -> (Decoded, usize) {
    let c = text
        .chars()
        .next()
        .expect("decode_at is called on non-empty text");
    let one = c.len_utf8();
    match c {
        '&' => entity(text).map_or((Decoded::Char('&'), 1), |(c, used)| (decoded(c), used)),
        '\\' => backslash(text).unwrap_or((Decoded::Char('\\'), 1)),
        '%' => percent(text).map_or((Decoded::Char('%'), 1), |(c, used)| (decoded(c), used)),
        '<' => tag(text).unwrap_or((Decoded::Char('<'), 1)),
        '*' | '_' | '~' | '`' => (Decoded::Drop, one),
        '-' if text.starts_with("-->") => (Decoded::Drop, 3),
        _ => (decoded(c), one),
    }
}

fn decoded(c: char) -> Decoded {
    if is_invisible(c) {
        Decoded::Drop
    } else {
        Decoded::Char(c)
    }
}

/// Characters that take no room on the page.
fn is_invisible(c: char) -> bool {
    matches!(
        c,
        '\u{00AD}'
            | '\u{034F}'
            | '\u{061C}'
            | '\u{115F}'
            | '\u{1160}'
            | '\u{17B4}'
            | '\u{17B5}'
            | '\u{180B}'..='\u{180F}'
            | '\u{200B}'..='\u{200F}'
            | '\u{202A}'..='\u{202E}'
            | '\u{2060}'..='\u{206F}'
            | '\u{3164}'
            | '\u{FE00}'..='\u{FE0F}'
            | '\u{FEFF}'
            | '\u{FFA0}'
            | '\u{E0000}'..='\u{E007F}'
    ) || ('\u{0300}'..='\u{036F}').contains(&c)
}

/// Appends `c` as the detectors should see it.
fn fold_into(out: &mut View, c: char, from: Range<usize>) {
    if c.is_ascii() {
        out.push(if c == '\t' || c == '\r' { ' ' } else { c }, from);
        return;
    }
    if let Some(folded) = fold_special(c) {
        out.push(folded, from);
        return;
    }
    let mut any = false;
    for d in std::iter::once(c).nfkd() {
        if is_invisible(d) {
            continue;
        }
        any = true;
        let d = fold_special(d).unwrap_or(d);
        out.push(d, from.clone());
    }
    if !any {
        out.push(c, from);
    }
}

/// The zero of each script's decimal digits that compatibility
/// decomposition leaves alone (Arabic-Indic, Devanagari, Bengali and so on):
/// a number typed in them reads as the same number.
const DIGIT_ZEROS: &[u32] = &[
    0x0660, 0x06F0, 0x07C0, 0x0966, 0x09E6, 0x0A66, 0x0AE6, 0x0B66, 0x0BE6, 0x0C66, 0x0CE6, 0x0D66,
    0x0DE6, 0x0E50, 0x0ED0, 0x0F20, 0x1040, 0x1090, 0x17E0, 0x1810, 0x1946, 0x19D0, 0x1A80, 0x1A90,
    0x1B50, 0x1BB0, 0x1C40, 0x1C50, 0xA620, 0xA8D0, 0xA900, 0xA9D0, 0xA9F0, 0xAA50, 0xABF0,
];

/// Spaces, dashes, dots, digits and look-alike letters that compatibility
/// decomposition leaves alone.
fn fold_special(c: char) -> Option<char> {
    let code = c as u32;
    if let Some(zero) = DIGIT_ZEROS
        .iter()
        .find(|&&zero| (zero..zero + 10).contains(&code))
    {
        return char::from_digit(code - zero, 10);
    }
    Some(match c {
        '\n' => '\n',
        '\u{2028}' | '\u{2029}' | '\u{0085}' => '\n',
        c if c.is_whitespace() => ' ',
        '\u{2010}'..='\u{2015}'
        | '\u{2212}'
        | '\u{2043}'
        | '\u{FE58}'
        | '\u{FE63}'
        | '\u{FF0D}'
        | '\u{2E3A}'
        | '\u{2E3B}'
        | '\u{30FC}' => '-',
        '\u{00B7}' | '\u{2024}' | '\u{2027}' | '\u{2219}' | '\u{22C5}' | '\u{FF0E}'
        | '\u{3002}' => '.',
        '\u{2044}' | '\u{2215}' | '\u{FF0F}' => '/',
        '\u{FF20}' | '\u{FE6B}' => '@',
        '\u{FF0B}' | '\u{FE62}' => '+',
        _ => return look_alike(c),
    })
}

/// Cyrillic and Greek letters that look like Latin ones.
fn look_alike(c: char) -> Option<char> {
    const PAIRS: &[(char, char)] = &[
        ('а', 'a'),
        ('в', 'b'),
        ('е', 'e'),
        ('ё', 'e'),
        ('к', 'k'),
        ('м', 'm'),
        ('н', 'h'),
        ('о', 'o'),
        ('р', 'p'),
        ('с', 'c'),
        ('т', 't'),
        ('у', 'y'),
        ('х', 'x'),
        ('ѕ', 's'),
        ('і', 'i'),
        ('ї', 'i'),
        ('ј', 'j'),
        ('ԁ', 'd'),
        ('ԛ', 'q'),
        ('ԝ', 'w'),
        ('һ', 'h'),
        ('ɡ', 'g'),
        ('А', 'A'),
        ('В', 'B'),
        ('Е', 'E'),
        ('К', 'K'),
        ('М', 'M'),
        ('Н', 'H'),
        ('О', 'O'),
        ('Р', 'P'),
        ('С', 'C'),
        ('Т', 'T'),
        ('У', 'Y'),
        ('Х', 'X'),
        ('Ѕ', 'S'),
        ('І', 'I'),
        ('Ј', 'J'),
        ('Ԛ', 'Q'),
        ('Ԝ', 'W'),
        ('α', 'a'),
        ('β', 'b'),
        ('ε', 'e'),
        ('ι', 'i'),
        ('κ', 'k'),
        ('ν', 'v'),
        ('ο', 'o'),
        ('ρ', 'p'),
        ('τ', 't'),
        ('υ', 'u'),
        ('χ', 'x'),
        ('Α', 'A'),
        ('Β', 'B'),
        ('Ε', 'E'),
        ('Ζ', 'Z'),
        ('Η', 'H'),
        ('Ι', 'I'),
        ('Κ', 'K'),
        ('Μ', 'M'),
        ('Ν', 'N'),
        ('Ο', 'O'),
        ('Ρ', 'P'),
        ('Τ', 'T'),
        ('Υ', 'Y'),
        ('Χ', 'X'),
        ('ı', 'i'),
        ('ł', 'l'),
        ('Ł', 'L'),
        ('ø', 'o'),
        ('Ø', 'O'),
        ('đ', 'd'),
        ('Đ', 'D'),
        ('ß', 's'),
        ('æ', 'a'),
        ('Æ', 'A'),
        ('œ', 'o'),
        ('Œ', 'O'),
    ];
    PAIRS.iter().find(|(from, _)| *from == c).map(|(_, to)| *to)
}

/// `&name;`, `&#123;` or `&#x7b;` at the start of `text`.
fn entity(text: &str) -> Option<(char, usize)> {
    let end = text.bytes().take(34).position(|b| b == b';')?;
    let body = &text[1..end];
    if body.is_empty() || !body.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'#') {
        return None;
    }
    let c = if let Some(number) = body.strip_prefix('#') {
        let code = match number.strip_prefix(['x', 'X']) {
            Some(hex) => u32::from_str_radix(hex, 16).ok()?,
            None => number.parse().ok()?,
        };
        char::from_u32(code)
            .filter(|&c| c != '\0')
            .unwrap_or('\u{FFFD}')
    } else {
        named_entity(body)?
    };
    Some((c, end + 1))
}

/// The named entities a writer or a converter is likely to use for spaces,
/// punctuation and letters; anything else stays as written.
fn named_entity(name: &str) -> Option<char> {
    Some(match name {
        "amp" | "AMP" => '&',
        "lt" | "LT" => '<',
        "gt" | "GT" => '>',
        "quot" | "QUOT" => '"',
        "apos" => '\'',
        "nbsp" | "NonBreakingSpace" | "ensp" | "emsp" | "emsp13" | "emsp14" | "thinsp"
        | "ThinSpace" | "hairsp" | "VeryThinSpace" | "numsp" | "puncsp" | "MediumSpace"
        | "ThickSpace" | "Tab" | "sp" => ' ',
        "NewLine" => '\n',
        "shy" | "zwj" | "zwnj" | "lrm" | "rlm" | "ZeroWidthSpace" | "NoBreak" | "it"
        | "InvisibleTimes" | "ic" | "InvisibleComma" | "af" | "ApplyFunction" => '\u{200B}',
        "hyphen" | "dash" | "ndash" | "mdash" | "minus" | "horbar" | "HorizontalLine" => '-',
        "period" => '.',
        "middot" | "centerdot" | "CenterDot" => '.',
        "commat" => '@',
        "sol" => '/',
        "bsol" => '\\',
        "colon" => ':',
        "semi" => ';',
        "comma" => ',',
        "num" => '#',
        "plus" => '+',
        "lpar" => '(',
        "rpar" => ')',
        "lowbar" | "UnderBar" => '_',
        "ast" | "midast" => '*',
        "excl" => '!',
        "quest" => '?',
        "equals" => '=',
        "percnt" => '%',
        "dollar" => '$',
        "grave" | "DiacriticalGrave" => '`',
        "verbar" | "vert" | "VerticalLine" => '|',
        "lsqb" | "lbrack" => '[',
        "rsqb" | "rbrack" => ']',
        "lcub" | "lbrace" => '{',
        "rcub" | "rbrace" => '}',
        "lsquo" | "rsquo" | "sbquo" | "OpenCurlyQuote" | "CloseCurlyQuote" => '\'',
        "ldquo" | "rdquo" | "bdquo" | "OpenCurlyDoubleQuote" | "CloseCurlyDoubleQuote" => '"',
        _ => {
            // Accented letters: `&eacute;`, `&Ouml;` and the like read as
            // their base letter.
            let (letter, accent) = name.split_at(name.chars().next()?.len_utf8());
            let letter = letter.chars().next()?;
            if letter.is_ascii_alphabetic()
                && matches!(
                    accent,
                    "acute"
                        | "grave"
                        | "circ"
                        | "uml"
                        | "tilde"
                        | "ring"
                        | "cedil"
                        | "caron"
                        | "slash"
                        | "macr"
                        | "breve"
                        | "ogon"
                        | "dot"
                        | "dblac"
                        | "strok"
                )
            {
                letter
            } else {
                return None;
            }
        }
    })
}

/// A backslash escape at the start of `text`: Markdown's `\` before ASCII
/// punctuation, and the `\uXXXX`, `\UXXXXXXXX`, `\xXX` and `\u{...}` forms of
/// TOML, JSON and most programming languages.
fn backslash(text: &str) -> Option<(Decoded, usize)> {
    let next = text[1..].chars().next()?;
    if next.is_ascii_punctuation() {
        return Some((decoded(next), 2));
    }
    let hex = |digits: &str| {
        u32::from_str_radix(digits, 16)
            .ok()
            .and_then(char::from_u32)
    };
    let fixed = |len: usize| {
        let digits = text.get(2..2 + len)?;
        digits
            .chars()
            .all(|c| c.is_ascii_hexdigit())
            .then(|| hex(digits))
            .flatten()
            .map(|c| (decoded(c), 2 + len))
    };
    match next {
        'u' if text[2..].starts_with('{') => {
            let close = text.bytes().take(12).position(|b| b == b'}')?;
            hex(&text[3..close]).map(|c| (decoded(c), close + 1))
        }
        'u' => fixed(4),
        'U' => fixed(8),
        'x' => fixed(2),
        'n' => Some((Decoded::Char('\n'), 2)),
        't' | 'r' | 'f' | 'b' => Some((Decoded::Space, 2)),
        _ => None,
    }
}

/// `%XX` for a printable ASCII character, as in a URL path.
fn percent(text: &str) -> Option<(char, usize)> {
    let digits = text.get(1..3)?;
    let byte = u8::from_str_radix(digits, 16).ok()?;
    (byte.is_ascii_graphic() || byte == b' ').then_some((byte as char, 3))
}

/// The start of an HTML tag, comment or closing tag at `text`. Inline
/// formatting tags vanish (`<b>Jay</b>den` reads "Jayden"); any other tag
/// reads as a space (`DOB</td><td>3/3/12`). A tag without attributes is
/// consumed whole; of a tag with attributes only `<name` is, so the
/// attribute values (`href="/jayden-northwood"`, `alt="..."`) are read as
/// text. `<jo@gmail.com>` and `a < b` are not tags.
fn tag(text: &str) -> Option<(Decoded, usize)> {
    // A comment's markers vanish and its text is read: "Jay<!-- -->den"
    // renders as "Jayden", and a comment still travels in an email's source.
    if text.starts_with("<!--") {
        return Some((Decoded::Drop, 4));
    }
    let after = text[1..].strip_prefix('/').unwrap_or(&text[1..]);
    let opener = text.len() - after.len();
    let name_len = after.bytes().take_while(u8::is_ascii_alphanumeric).count();
    if name_len == 0 || !after.as_bytes()[0].is_ascii_alphabetic() {
        return None;
    }
    let rest = &after[name_len..];
    let name = after[..name_len].to_ascii_lowercase();
    let used = opener
        + name_len
        + if rest.starts_with('>') {
            1
        } else if rest.starts_with("/>") {
            2
        } else if rest.starts_with([' ', '\t', '\n', '\r']) {
            0
        } else {
            return None;
        };
    let inline = matches!(
        name.as_str(),
        "b" | "i"
            | "u"
            | "s"
            | "em"
            | "strong"
            | "span"
            | "a"
            | "code"
            | "mark"
            | "small"
            | "sub"
            | "sup"
            | "font"
            | "abbr"
            | "del"
            | "ins"
            | "kbd"
            | "var"
            | "tt"
            | "wbr"
    );
    Some((
        if inline {
            Decoded::Drop
        } else {
            Decoded::Space
        },
        used,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(text: &str) -> String {
        View::raw(text).normalised().text
    }

    #[test]
    fn entities_escapes_and_markup_decode_to_what_a_reader_sees() {
        assert_eq!(read("J&#97;yden&nbsp;N&#x6F;rthwood"), "Jayden Northwood");
        assert_eq!(read("943\\-476\\-5919"), "943-476-5919");
        assert_eq!(read("**Jay**den __North__wood"), "Jayden Northwood");
        assert_eq!(read("Jayden\\u0020Northwood"), "Jayden Northwood");
        assert_eq!(read("<b>Jay</b>den<br>Northwood"), "Jayden Northwood");
        assert_eq!(
            read("<a href=\"/jayden-northwood\">x</a> <jo@gmail.com>"),
            " href=\"/jayden-northwood\">x <jo@gmail.com>"
        );
        assert_eq!(read("/jayden%2Dnorthwood"), "/jayden-northwood");
        assert_eq!(
            read("Jay\u{200B}den\u{00A0}North\u{00AD}wood"),
            "Jayden Northwood"
        );
        assert_eq!(read("０７７００–９００１２３"), "07700-900123");
        assert_eq!(read("Jаyden Zoë"), "Jayden Zoe");
        assert_eq!(read("Jay<!-- x -->den ٠٧٧٠٠"), "Jay x den 07700");
    }

    #[test]
    fn a_range_of_the_view_maps_back_to_the_source() {
        let source = "x J&#97;yden y";
        let view = View::raw(source).normalised();
        let at = view.text.find("Jayden").unwrap();
        let range = view.source_range(at..at + "Jayden".len());
        assert_eq!(&source[range], "J&#97;yden");
    }

    #[test]
    fn text_that_only_looks_like_markup_is_kept() {
        assert_eq!(
            read("a < b and 5 % 3 & c; 100%"),
            "a < b and 5 % 3 & c; 100%"
        );
    }
}
