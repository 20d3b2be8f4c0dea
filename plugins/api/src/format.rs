//! The render format of a message part: a closed set the host renders, plus
//! any other name passed through as it came. On the wire it is the format's
//! name as a JSON string (`"email-html"`), exactly as when it was a string.

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::fmt;

/// Which markup a [`MessagePart`](crate::MessagePart)'s chunks are in.
///
/// A name this version does not know becomes [`Format::Other`] and is
/// written back unchanged, so a newer host's format passes through an older
/// plugin (or the other way round). A known name is always its own variant:
/// `Format::from("telegram")` is [`Format::Telegram`], never `Other`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Format {
    /// `email-html`: the HTML body of an email.
    EmailHtml,
    /// `email-text`: the plain-text body of an email.
    EmailText,
    /// `telegram`: HTML in Telegram's subset.
    Telegram,
    /// `discord`: Discord's Markdown, for an embed.
    Discord,
    /// `text`: plain text the plugin escapes for its markup, as the host's
    /// replies to inbound events come.
    Text,
    /// Any other name.
    Other(FormatName),
}

/// The name of a format this version does not know. Made only by
/// [`Format::from`], so it never holds a known name.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct FormatName(String);

impl FormatName {
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl Format {
    /// Every format with a variant of its own.
    pub const KNOWN: [Format; 5] = [
        Format::EmailHtml,
        Format::EmailText,
        Format::Telegram,
        Format::Discord,
        Format::Text,
    ];

    /// The name on the wire.
    pub fn as_str(&self) -> &str {
        match self {
            Format::EmailHtml => "email-html",
            Format::EmailText => "email-text",
            Format::Telegram => "telegram",
            Format::Discord => "discord",
            Format::Text => "text",
            Format::Other(name) => name.as_str(),
        }
    }
}

impl From<&str> for Format {
    fn from(name: &str) -> Format {
        Format::KNOWN
            .into_iter()
            .find(|known| known.as_str() == name)
            .unwrap_or_else(|| Format::Other(FormatName(name.to_owned())))
    }
}

impl From<String> for Format {
    fn from(name: String) -> Format {
        match Format::from(name.as_str()) {
            Format::Other(_) => Format::Other(FormatName(name)),
            known => known,
        }
    }
}

impl fmt::Display for Format {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for Format {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for Format {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Format, D::Error> {
        String::deserialize(deserializer).map(Format::from)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Message, MessagePart};

    /// `MessagePart` as it was before `Format`, for comparing the JSON.
    #[derive(Serialize)]
    struct StringMessagePart {
        format: String,
        chunks: Vec<String>,
    }

    #[test]
    fn each_known_format_is_written_as_the_name_it_had_as_a_string() {
        let names = [
            (Format::EmailHtml, "email-html"),
            (Format::EmailText, "email-text"),
            (Format::Telegram, "telegram"),
            (Format::Discord, "discord"),
            (Format::Text, "text"),
        ];
        assert_eq!(names.len(), Format::KNOWN.len());
        for (format, name) in names {
            assert_eq!(
                serde_json::to_string(&format).unwrap(),
                serde_json::to_string(name).unwrap()
            );
            assert_eq!(format.to_string(), name);
            let read: Format = serde_json::from_str(&format!("\"{name}\"")).unwrap();
            assert_eq!(read, format);
            assert_eq!(Format::from(name), format);
            assert_eq!(Format::from(name.to_owned()), format);
        }
    }

    #[test]
    fn an_unknown_format_is_read_and_written_back_unchanged() {
        for json in [
            r#""teams""#,
            r#""plain""#,
            r#""""#,
            r#""Email-HTML""#,
            r#""a\"b""#,
        ] {
            let format: Format = serde_json::from_str(json).unwrap();
            assert!(
                matches!(format, Format::Other(_)),
                "{json} read as {format:?}"
            );
            assert_eq!(serde_json::to_string(&format).unwrap(), json);
        }
        assert_eq!(Format::from("teams").as_str(), "teams");
    }

    #[test]
    fn a_known_name_is_never_other() {
        for known in Format::KNOWN {
            assert_eq!(Format::from(known.as_str().to_owned()), known);
        }
    }

    #[test]
    fn a_message_part_is_the_same_json_as_with_a_string_format() {
        for name in [
            "email-html",
            "email-text",
            "telegram",
            "discord",
            "text",
            "teams",
        ] {
            let chunks = vec![
                "<b>Neglect</b>: \"seeing\" the child".to_owned(),
                String::new(),
            ];
            let typed = MessagePart {
                format: Format::from(name),
                chunks: chunks.clone(),
            };
            let before = StringMessagePart {
                format: name.to_owned(),
                chunks,
            };
            let json = serde_json::to_string(&typed).unwrap();
            assert_eq!(json, serde_json::to_string(&before).unwrap());
            assert_eq!(
                serde_json::to_string_pretty(&typed).unwrap(),
                serde_json::to_string_pretty(&before).unwrap()
            );
            let read: MessagePart = serde_json::from_str(&json).unwrap();
            assert_eq!(read, typed);
        }
        let message = Message {
            subject: Some("Neglect".to_owned()),
            parts: vec![
                MessagePart {
                    format: Format::EmailHtml,
                    chunks: vec!["<p>Hi</p>".to_owned()],
                },
                MessagePart {
                    format: Format::EmailText,
                    chunks: vec!["Hi".to_owned()],
                },
            ],
        };
        assert_eq!(
            serde_json::to_string(&message).unwrap(),
            r#"{"subject":"Neglect","parts":[{"format":"email-html","chunks":["<p>Hi</p>"]},{"format":"email-text","chunks":["Hi"]}]}"#
        );
    }
}
