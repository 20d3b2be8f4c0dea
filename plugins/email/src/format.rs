//! A send request as an email: multipart/alternative from the host's
//! `email-text` and `email-html` renders, a Message-ID derived from the
//! delivery's idempotency key, and list headers when the rollout lets people
//! opt out. Pure: no I/O; lettre does the MIME and RFC 2047 encoding.

use cascade_plugin_api::{Format, MailingList, SendRequest};
use lettre::Message;
use lettre::message::header::{ContentTransferEncoding, ContentType};
use lettre::message::header::{HeaderName, HeaderValue};
use lettre::message::{Body, Mailbox, MultiPart, SinglePart};
use sha2::{Digest, Sha256};

/// Who every message of an instance comes from.
#[derive(Debug, Clone)]
pub struct Sender {
    pub from: Mailbox,
    pub reply_to: Option<Mailbox>,
    /// The right-hand side of Message-IDs.
    pub message_id_domain: String,
}

/// Why a request cannot become an email. Each is permanent: sending the
/// same request again would fail the same way.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum FormatError {
    #[error("the recipient address {0:?} is not a valid email address")]
    BadAddress(String),
    #[error(
        "the message has no email-text, email-html or text part (it has: {0}); give the channel formats = [\"email-html\", \"email-text\"]"
    )]
    NoBody(String),
    #[error("the mailing list {0}")]
    BadList(&'static str),
    #[error("lettre could not build the message: {0}")]
    Build(String),
}

impl FormatError {
    /// A bad address can never be reached on this channel; the rest is a
    /// problem of the message, not of the person.
    pub fn unreachable(&self) -> bool {
        matches!(self, FormatError::BadAddress(_))
    }
}

/// The Message-ID of every attempt of one delivery: the same key gives the
/// same id, so a duplicate sent after a crash is recognisable (and
/// collapsed by clients that de-duplicate on Message-ID). The key is hashed
/// so no rollout or person id shows in the header.
pub fn message_id(idempotency_key: &str, domain: &str) -> String {
    let digest = Sha256::digest(idempotency_key.as_bytes());
    format!("<{}@{domain}>", hex::encode(&digest[..16]))
}

/// The email for one request.
pub fn email(request: &SendRequest, sender: &Sender) -> Result<Message, FormatError> {
    let address = request
        .recipient
        .address
        .parse()
        .map_err(|_| FormatError::BadAddress(request.recipient.address.clone()))?;
    let name = Some(request.recipient.display_name.clone()).filter(|n| !n.trim().is_empty());
    let subject = request
        .message
        .subject
        .clone()
        .unwrap_or_else(|| format!("A message from {}", display_name(&sender.from)));
    let mut builder = Message::builder()
        .from(sender.from.clone())
        .to(Mailbox::new(name, address))
        .subject(subject)
        .message_id(Some(message_id(
            &request.idempotency_key,
            &sender.message_id_domain,
        )));
    if let Some(reply_to) = &sender.reply_to {
        builder = builder.reply_to(reply_to.clone());
    }
    if let Some(list) = &request.list {
        for header in list_headers(list)? {
            builder = builder.raw_header(header);
        }
    }
    let part = |format: Format| {
        request
            .message
            .parts
            .iter()
            .find(|part| part.format == format)
            .map(|part| part.chunks.join("\n"))
    };
    let text = part(Format::EmailText).or_else(|| part(Format::Text));
    let built = match (text, part(Format::EmailHtml)) {
        (Some(text), Some(html)) => builder.multipart(
            MultiPart::alternative()
                .singlepart(part_of(ContentType::TEXT_PLAIN, text))
                .singlepart(part_of(ContentType::TEXT_HTML, html)),
        ),
        (Some(text), None) => builder.singlepart(part_of(ContentType::TEXT_PLAIN, text)),
        (None, Some(html)) => builder.singlepart(part_of(ContentType::TEXT_HTML, html)),
        (None, None) => {
            let formats: Vec<&str> = request
                .message
                .parts
                .iter()
                .map(|p| p.format.as_str())
                .collect();
            return Err(FormatError::NoBody(if formats.is_empty() {
                "none".to_owned()
            } else {
                formats.join(", ")
            }));
        }
    };
    built.map_err(|error| FormatError::Build(error.to_string()))
}

fn display_name(mailbox: &Mailbox) -> String {
    mailbox
        .name
        .clone()
        .unwrap_or_else(|| mailbox.email.to_string())
}

/// `List-Id` (RFC 2919) and `List-Unsubscribe` (RFC 2369).
fn list_headers(list: &MailingList) -> Result<[HeaderValue; 2], FormatError> {
    let id_ok = !list.id.is_empty()
        && list.id.contains('.')
        && list
            .id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_'));
    if !id_ok {
        return Err(FormatError::BadList(
            "id must be a dot-atom such as learning.northbridge.example",
        ));
    }
    let url = &list.unsubscribe_url;
    let url_ok = (url.starts_with("https://") || url.starts_with("mailto:"))
        && url.is_ascii()
        && !url
            .chars()
            .any(|c| c.is_ascii_whitespace() || c.is_ascii_control() || matches!(c, '<' | '>'));
    if !url_ok {
        return Err(FormatError::BadList(
            "unsubscribe_url must be an https: or mailto: URL without spaces or angle brackets",
        ));
    }
    let id = match &list.name {
        // A quoted phrase: quotes and backslashes inside are escaped; lettre
        // encodes non-ASCII names (RFC 2047) when it writes the header.
        Some(name) => format!(
            "\"{}\" <{}>",
            name.replace('\\', "\\\\").replace('"', "\\\""),
            list.id
        ),
        None => format!("<{}>", list.id),
    };
    Ok([
        HeaderValue::new(HeaderName::new_from_ascii_str("List-Id"), id),
        HeaderValue::new(
            HeaderName::new_from_ascii_str("List-Unsubscribe"),
            format!("<{url}>"),
        ),
    ])
}

/// The longest line a 7-bit body may have: RFC 5322's 998 characters,
/// with room to spare.
const SEVEN_BIT_LINE: usize = 900;

/// A body part: plain 7-bit when it already is (ASCII, no line over 900
/// characters, no NUL), otherwise base64. lettre's own choice sends ASCII
/// with lines over 76 characters as quoted-printable, which costs most of a
/// message's CPU for a 13 KB briefing, although RFC 5322 allows lines of
/// 998; base64 is valid for any text (RFC 2045) and every client decodes it.
fn part_of(content_type: ContentType, text: String) -> SinglePart {
    let seven_bit = text.is_ascii()
        && !text.contains('\0')
        && text.lines().all(|line| line.len() <= SEVEN_BIT_LINE);
    let body = if seven_bit {
        // Checked above: ASCII, short enough lines, no NUL; lines end CRLF.
        let mut crlf = String::with_capacity(text.len() + text.len() / 32);
        for line in text.split_inclusive('\n') {
            let line = line.strip_suffix('\n').unwrap_or(line);
            crlf.push_str(line.strip_suffix('\r').unwrap_or(line));
            crlf.push_str("\r\n");
        }
        Body::dangerous_pre_encoded(crlf.into_bytes(), ContentTransferEncoding::SevenBit)
    } else {
        Body::new_with_encoding(text, ContentTransferEncoding::Base64)
            .expect("base64 can carry any bytes")
    };
    SinglePart::builder().header(content_type).body(body)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use cascade_plugin_api::{Message as Rendered, MessagePart, Recipient};

    pub(crate) fn request(key: &str) -> SendRequest {
        SendRequest {
            delivery_id: "d1".to_owned(),
            idempotency_key: key.to_owned(),
            channel: "email".to_owned(),
            recipient: Recipient {
                person_id: "p-1".to_owned(),
                display_name: "Zoë Brontë".to_owned(),
                address: "zoe@agency.example".to_owned(),
            },
            message: Rendered {
                subject: Some("Neglect: seeing the child — 7 minutes".to_owned()),
                parts: vec![
                    MessagePart {
                        format: Format::EmailHtml,
                        chunks: vec!["<h1>Neglect</h1>".to_owned()],
                    },
                    MessagePart {
                        format: Format::EmailText,
                        chunks: vec!["Neglect\n".to_owned()],
                    },
                ],
            },
            actions: Vec::new(),
            reply: None,
            list: None,
            post: None,
        }
    }

    fn sender() -> Sender {
        Sender {
            from: "Northbridge Learning <learning@northbridge.example>"
                .parse()
                .unwrap(),
            reply_to: None,
            message_id_domain: "northbridge.example".to_owned(),
        }
    }

    fn formatted(request: &SendRequest) -> String {
        String::from_utf8(email(request, &sender()).unwrap().formatted()).unwrap()
    }

    #[test]
    fn the_message_id_depends_only_on_the_idempotency_key() {
        let a = message_id("r1/p-1/initial-1/p-1/0", "northbridge.example");
        assert_eq!(
            a,
            message_id("r1/p-1/initial-1/p-1/0", "northbridge.example")
        );
        assert_ne!(
            a,
            message_id("r1/p-2/initial-1/p-2/0", "northbridge.example")
        );
        assert!(
            a.starts_with('<') && a.ends_with("@northbridge.example>"),
            "{a}"
        );
        assert!(!a.contains("p-1"));
    }

    #[test]
    fn both_renders_go_in_one_multipart_alternative_text_first() {
        let raw = formatted(&request("k"));
        assert!(raw.contains("multipart/alternative"), "{raw}");
        let text = raw.find("text/plain").unwrap();
        let html = raw.find("text/html").unwrap();
        assert!(
            text < html,
            "clients show the last alternative they can, so HTML goes last"
        );
    }

    #[test]
    fn a_body_with_non_ascii_text_goes_as_base64_and_plain_ascii_as_it_is() {
        use base64::Engine as _;
        let encoded = part_of(
            ContentType::TEXT_PLAIN,
            "Voice of the child — “seen”".to_owned(),
        );
        let raw = String::from_utf8(encoded.formatted()).unwrap();
        assert!(raw.contains("Content-Transfer-Encoding: base64"), "{raw}");
        let body: String = raw
            .split("\r\n\r\n")
            .nth(1)
            .unwrap()
            .split_whitespace()
            .collect();
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(body)
            .unwrap();
        assert_eq!(
            String::from_utf8(decoded).unwrap(),
            "Voice of the child — “seen”"
        );
        let plain = part_of(ContentType::TEXT_PLAIN, "Seeing the child".to_owned());
        let raw = String::from_utf8(plain.formatted()).unwrap();
        assert!(raw.contains("Content-Transfer-Encoding: 7bit"), "{raw}");
        assert!(raw.contains("\r\n\r\nSeeing the child"), "{raw}");

        // ASCII with lines longer than 76 (a paragraph a line) stays as it
        // is, with CRLF line ends; a line over 900 characters goes as base64.
        let paragraph = "Spend time with the child. ".repeat(20);
        let text = format!("{paragraph}\n\n{paragraph}\r\nend");
        let raw = String::from_utf8(part_of(ContentType::TEXT_PLAIN, text).formatted()).unwrap();
        assert!(raw.contains("Content-Transfer-Encoding: 7bit"), "{raw}");
        let body = raw.split_once("\r\n\r\n").unwrap().1;
        assert_eq!(
            body.trim_end_matches("\r\n"),
            format!("{}\r\n\r\n{}\r\nend", paragraph, paragraph)
        );
        assert!(!body.replace("\r\n", "").contains(['\r', '\n']));
        let long = "word ".repeat(200);
        let raw = String::from_utf8(part_of(ContentType::TEXT_PLAIN, long).formatted()).unwrap();
        assert!(raw.contains("Content-Transfer-Encoding: base64"), "{raw}");
    }

    #[test]
    fn a_non_ascii_subject_is_encoded_not_sent_raw() {
        let raw = formatted(&request("k"));
        let subject = raw.lines().find(|l| l.starts_with("Subject:")).unwrap();
        assert!(subject.contains("=?utf-8?"), "{subject}");
        assert!(raw.is_ascii());
    }

    #[test]
    fn list_headers_appear_only_when_the_request_names_a_list() {
        assert!(!formatted(&request("k")).contains("List-Id"));
        let mut with_list = request("k");
        with_list.list = Some(MailingList {
            id: "learning.northbridge.example".to_owned(),
            name: Some("Northbridge learning".to_owned()),
            unsubscribe_url: "https://learning.northbridge.example/unsubscribe/abc".to_owned(),
        });
        let raw = formatted(&with_list);
        assert!(
            raw.contains("List-Id: \"Northbridge learning\" <learning.northbridge.example>"),
            "{raw}"
        );
        assert!(
            raw.contains(
                "List-Unsubscribe: <https://learning.northbridge.example/unsubscribe/abc>"
            ),
            "{raw}"
        );
    }

    #[test]
    fn a_list_url_that_could_break_the_header_is_refused() {
        let mut bad = request("k");
        bad.list = Some(MailingList {
            id: "learning.northbridge.example".to_owned(),
            name: None,
            unsubscribe_url: "https://x.example/>\r\nBcc: someone@else.example".to_owned(),
        });
        assert!(matches!(
            email(&bad, &sender()),
            Err(FormatError::BadList(_))
        ));
    }

    #[test]
    fn a_bad_address_is_unreachable_and_a_missing_body_is_not() {
        let mut bad = request("k");
        bad.recipient.address = "not-an-address".to_owned();
        assert!(email(&bad, &sender()).unwrap_err().unreachable());
        let mut empty = request("k");
        empty.message.parts.clear();
        let error = email(&empty, &sender()).unwrap_err();
        assert!(!error.unreachable());
        assert!(error.to_string().contains("formats"), "{error}");
    }
}
