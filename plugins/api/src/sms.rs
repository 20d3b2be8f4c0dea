//! Text messages as GOV.UK Notify counts and bills them, shared by the
//! Notify plugin (which sends them) and the engine (whose `plan` says how
//! many fragments each person's text takes). Pure.
//!
//! A text is GSM 03.38 7-bit when every character is in the basic set or
//! the extension table (which costs two): 160 characters in one fragment,
//! 153 in each of several. Any other character makes the whole text UCS-2:
//! 70 UTF-16 units in one, 67 in each of several. Typographic quotes,
//! dashes and spaces are first swapped for their GSM equivalents, as
//! Notify does before sending.

/// Longest title a text message carries, in characters, so the notice
/// stays within two fragments with a typical link.
pub const SMS_TITLE_LIMIT: usize = 90;

/// A title cut to [`SMS_TITLE_LIMIT`] characters.
pub fn short_title(title: &str) -> String {
    if title.chars().count() > SMS_TITLE_LIMIT {
        let cut: String = title.chars().take(SMS_TITLE_LIMIT - 1).collect();
        format!("{}…", cut.trim_end())
    } else {
        title.to_owned()
    }
}

/// The short notice a text message carries.
pub fn sms_notice(title: &str, link: &str) -> String {
    sanitise_sms(&format!(
        "{}\nRead it and acknowledge: {link}",
        short_title(title)
    ))
}

/// The GSM 03.38 basic character set, which a text message can carry at
/// one character each.
const GSM_BASIC: &str = "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà";
/// The GSM extension table: each takes two characters (an escape first).
const GSM_EXTENSION: &str = "^{}\\[~]|€\u{c}";

/// Typographic characters Notify swaps for their GSM equivalents before
/// sending, so they do not make a text Unicode.
fn downgrade(c: char) -> Option<&'static str> {
    Some(match c {
        '‘' | '’' | '‛' | '′' => "'",
        '“' | '”' | '„' | '″' => "\"",
        '–' | '—' | '‐' | '‑' | '−' => "-",
        '…' => "...",
        '\u{a0}' | '\u{2002}' | '\u{2003}' | '\u{2009}' | '\t' => " ",
        '•' => "-",
        '\u{200B}' | '\u{FEFF}' => "",
        _ => return None,
    })
}

/// A text message as Notify sends it: typographic characters downgraded.
pub fn sanitise_sms(text: &str) -> String {
    text.chars()
        .fold(String::with_capacity(text.len()), |mut out, c| {
            match downgrade(c) {
                Some(s) => out.push_str(s),
                None => out.push(c),
            }
            out
        })
}

/// How a text message is encoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Encoding {
    Gsm7,
    Ucs2,
}

/// The SMS fragments a text takes: GSM-7 fits 160 characters in one and
/// 153 in each of several (extension characters count two); anything
/// outside GSM-7 makes the whole text UCS-2, 70 in one and 67 in each of
/// several (in UTF-16 units).
pub fn fragments(text: &str) -> (Encoding, usize, usize) {
    let text = sanitise_sms(text);
    let gsm = text
        .chars()
        .all(|c| GSM_BASIC.contains(c) || GSM_EXTENSION.contains(c));
    let (encoding, length, single, multi) = if gsm {
        let length = text
            .chars()
            .map(|c| if GSM_EXTENSION.contains(c) { 2 } else { 1 })
            .sum();
        (Encoding::Gsm7, length, 160, 153)
    } else {
        (Encoding::Ucs2, text.encode_utf16().count(), 70, 67)
    };
    let count = match length {
        0 => 0,
        n if n <= single => 1,
        n => n.div_ceil(multi),
    };
    (encoding, length, count)
}
