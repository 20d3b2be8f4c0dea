//! Telegram's HTML parse mode as the Bot API applies it: the supported tags
//! and entities become plain text plus message entities (offsets in UTF-16
//! code units), and anything else is refused with Telegram's wording.

use serde_json::{Value, json};

/// The text a message shows and its entities, or the reason Telegram gives
/// after "Bad Request: can't parse entities: ".
pub fn parse(html: &str) -> Result<(String, Vec<Value>), String> {
    let mut text = String::new();
    let mut utf16 = 0usize;
    let mut open: Vec<(String, usize, Value)> = Vec::new();
    let mut entities = Vec::new();
    let bytes = html.as_bytes();
    let mut i = 0;
    while i < html.len() {
        let rest = &html[i..];
        if rest.starts_with('<') {
            let end = rest
                .find('>')
                .ok_or_else(|| format!("Unclosed start tag at byte offset {i}"))?;
            let inner = &rest[1..end];
            if let Some(name) = inner.strip_prefix('/') {
                let name = name.trim().to_lowercase();
                let Some((open_name, start, entity)) = open.pop() else {
                    return Err(format!("Unexpected end tag at byte offset {i}"));
                };
                if open_name != name {
                    return Err(format!(
                        "Unmatched end tag at byte offset {i}, expected \"</{open_name}>\", found \"</{name}>\""
                    ));
                }
                if let Value::Object(mut entity) = entity
                    && utf16 > start
                {
                    entity.insert("offset".to_owned(), json!(start));
                    entity.insert("length".to_owned(), json!(utf16 - start));
                    entities.push(Value::Object(entity));
                }
            } else {
                let (name, attributes) = match inner.find(char::is_whitespace) {
                    Some(at) => (&inner[..at], inner[at..].trim()),
                    None => (inner, ""),
                };
                let name = name.to_lowercase();
                let entity = entity_for(&name, attributes).ok_or_else(|| {
                    format!("Unsupported start tag \"{name}\" at byte offset {i}")
                })?;
                open.push((name, utf16, entity));
            }
            i += end + 1;
        } else if rest.starts_with('&') {
            let end = rest
                .find(';')
                .filter(|end| *end <= 10)
                .ok_or_else(|| format!("Character entity expected at byte offset {i}"))?;
            let c = decode_entity(&rest[1..end]).ok_or_else(|| {
                format!(
                    "Unsupported HTML entity \"{}\" at byte offset {i}",
                    &rest[..=end]
                )
            })?;
            text.push(c);
            utf16 += c.len_utf16();
            i += end + 1;
        } else if bytes[i] == b'>' {
            // Telegram accepts a bare '>'.
            text.push('>');
            utf16 += 1;
            i += 1;
        } else {
            let c = rest.chars().next().expect("not at the end");
            text.push(c);
            utf16 += c.len_utf16();
            i += c.len_utf8();
        }
    }
    if let Some((name, _, _)) = open.pop() {
        return Err(format!(
            "Can't find end tag corresponding to start tag \"{name}\""
        ));
    }
    entities.sort_by_key(|e| e["offset"].as_u64());
    Ok((text, entities))
}

/// The entity a supported tag makes, or `None` for a tag Telegram refuses.
fn entity_for(name: &str, attributes: &str) -> Option<Value> {
    let kind = match name {
        "b" | "strong" => "bold",
        "i" | "em" => "italic",
        "u" | "ins" => "underline",
        "s" | "strike" | "del" => "strikethrough",
        "tg-spoiler" => "spoiler",
        "span" if attributes.contains("tg-spoiler") => "spoiler",
        "code" => "code",
        "pre" => "pre",
        "blockquote" if attributes.contains("expandable") => "expandable_blockquote",
        "blockquote" => "blockquote",
        "a" => {
            let href = attributes
                .strip_prefix("href=")?
                .trim_matches(|c| c == '"' || c == '\'');
            return Some(json!({"type": "text_link", "url": href.replace("&amp;", "&")}));
        }
        _ => return None,
    };
    Some(json!({ "type": kind }))
}

fn decode_entity(name: &str) -> Option<char> {
    match name {
        "lt" => Some('<'),
        "gt" => Some('>'),
        "amp" => Some('&'),
        "quot" => Some('"'),
        _ => {
            let number = name.strip_prefix('#')?;
            let code = match number.strip_prefix(['x', 'X']) {
                Some(hex) => u32::from_str_radix(hex, 16).ok()?,
                None => number.parse().ok()?,
            };
            char::from_u32(code)
        }
    }
}

/// A message's length as Telegram counts it.
pub fn utf16_len(text: &str) -> usize {
    text.encode_utf16().count()
}
