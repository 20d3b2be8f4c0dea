//! A send request as Notify's payload, and Notify's answers read back; pure.
//!
//! The body Notify gets is the `email-text` render in Notify's own
//! formatting: `#` headings, `*` bullets, links as plain URLs, never HTML
//! (Notify escapes HTML anyway). A text message is a short notice: the
//! item's title and the signed acknowledgement link. `fragments` counts the
//! SMS fragments a text takes as Notify bills them.

use cascade_plugin_api::{Format, SendRequest};
use serde_json::{Map, Value, json};

use crate::config::{Kind, NotifyConfig};
pub use cascade_plugin_api::sms::{Encoding, fragments, sanitise_sms, short_title, sms_notice};

/// Why a request cannot become a Notify message.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum FormatError {
    #[error("the message has no email-text part: give this channel formats = [\"email-text\"]")]
    NoText,
    #[error(
        "the message has no link, which a text message must carry (the acknowledgement link, or a follow-up's answers): set [ack] base_url"
    )]
    NoLink,
}

/// The plain text of the request's `email-text` part (or a `text` reply).
fn text_of(request: &SendRequest) -> Result<String, FormatError> {
    request
        .message
        .parts
        .iter()
        .find(|p| matches!(p.format, Format::EmailText | Format::Text))
        .map(|p| p.chunks.concat())
        .filter(|t| !t.trim().is_empty())
        .ok_or(FormatError::NoText)
}

/// The signed acknowledgement link in a rendered text: the last web link
/// whose path has `/ack/`.
pub fn ack_link(text: &str) -> Option<String> {
    text.split(|c: char| c.is_whitespace() || c == '<' || c == '>')
        .filter(|word| word.starts_with("https://") || word.starts_with("http://"))
        .map(|word| word.trim_end_matches(['.', ',', ')', ';']))
        .rfind(|url| url.contains("/ack/"))
        .map(str::to_owned)
}

/// The `email-text` render in Notify's formatting: the first line and each
/// short line that opens a block and is followed by text (a section title)
/// become `#` headings; `-` and `•` bullets become `*`; nothing else
/// changes, so links stay plain URLs.
pub fn notify_body(text: &str) -> String {
    let lines: Vec<&str> = text.lines().map(str::trim_end).collect();
    let mut out = Vec::with_capacity(lines.len());
    for (i, line) in lines.iter().enumerate() {
        let trimmed = line.trim_start();
        let opens_block = i == 0 || lines[i - 1].trim().is_empty();
        let followed = lines.get(i + 1).is_some_and(|next| !next.trim().is_empty());
        if let Some(item) = trimmed
            .strip_prefix("- ")
            .or_else(|| trimmed.strip_prefix("• "))
        {
            out.push(format!("* {item}"));
        } else if !trimmed.is_empty() && opens_block && (i == 0 || (followed && is_title(trimmed)))
        {
            out.push(format!("# {trimmed}"));
        } else if trimmed.starts_with('#') || trimmed.starts_with('^') || trimmed == "---" {
            // Notify would read these as a heading, inset text or a rule.
            out.push(format!("\u{200B}{trimmed}"));
        } else {
            out.push((*line).to_owned());
        }
    }
    out.join("\n")
}

/// A line that reads as a title: short, not a sentence, not a greeting.
fn is_title(line: &str) -> bool {
    line.chars().count() <= 80
        && !line.ends_with(['.', ',', ':', ';', '?', '!'])
        && line != "--"
        && !line.contains("://")
}

/// The lines of a text that carry a web link, trimmed: a follow-up's
/// choices ("Used it in practice: https://…").
fn link_lines(text: &str) -> Vec<String> {
    text.lines()
        .map(str::trim)
        .filter(|l| l.contains("https://") || l.contains("http://"))
        .map(|l| l.trim_start_matches(['-', '*', '•', ' ']).to_owned())
        .collect()
}

/// The JSON body of `POST /v2/notifications/{email|sms}`.
pub fn payload(config: &NotifyConfig, request: &SendRequest) -> Result<Value, FormatError> {
    let text = text_of(request)?;
    let link = ack_link(&text);
    let subject = request
        .message
        .subject
        .clone()
        .unwrap_or_else(|| text.lines().next().unwrap_or_default().trim().to_owned());
    let mut personalisation = Map::new();
    personalisation.insert("subject".to_owned(), json!(subject));
    personalisation.insert(
        "ack_link".to_owned(),
        json!(link.clone().unwrap_or_default()),
    );
    let mut body = Map::new();
    match config.kind {
        Kind::Email => {
            personalisation.insert("body".to_owned(), json!(notify_body(&text)));
            body.insert("email_address".to_owned(), json!(request.recipient.address));
            if let Some(id) = &config.email_reply_to_id {
                body.insert("email_reply_to_id".to_owned(), json!(id));
            }
        }
        Kind::Sms => {
            let notice = match (&request.reply, &link) {
                (Some(_), _) => sanitise_sms(&text),
                (None, Some(link)) => sms_notice(&subject, link),
                // A follow-up: each answer is a link of its own.
                (None, None) => {
                    let choices = link_lines(&text);
                    if choices.is_empty() {
                        return Err(FormatError::NoLink);
                    }
                    sanitise_sms(&format!(
                        "{}\n{}",
                        short_title(&subject),
                        choices.join("\n")
                    ))
                }
            };
            personalisation.insert("body".to_owned(), json!(notice));
            body.insert("phone_number".to_owned(), json!(request.recipient.address));
            if let Some(id) = &config.sms_sender_id {
                body.insert("sms_sender_id".to_owned(), json!(id));
            }
        }
    }
    body.insert("template_id".to_owned(), json!(config.template_id));
    body.insert("personalisation".to_owned(), Value::Object(personalisation));
    body.insert("reference".to_owned(), json!(request.idempotency_key));
    Ok(Value::Object(body))
}

/// Notify's error body, `{"status_code": …, "errors": [{"error": …,
/// "message": …}]}`, as `(error, message)` pairs.
pub fn errors_of(body: &Value) -> Vec<(String, String)> {
    body["errors"]
        .as_array()
        .map(|errors| {
            errors
                .iter()
                .map(|e| {
                    (
                        e["error"].as_str().unwrap_or_default().to_owned(),
                        e["message"].as_str().unwrap_or_default().to_owned(),
                    )
                })
                .collect()
        })
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gsm_texts_fit_160_then_153() {
        assert_eq!(fragments(&"a".repeat(160)), (Encoding::Gsm7, 160, 1));
        assert_eq!(fragments(&"a".repeat(161)), (Encoding::Gsm7, 161, 2));
        assert_eq!(fragments(&"a".repeat(306)), (Encoding::Gsm7, 306, 2));
        assert_eq!(fragments(&"a".repeat(307)), (Encoding::Gsm7, 307, 3));
        assert_eq!(fragments(""), (Encoding::Gsm7, 0, 0));
    }

    #[test]
    fn extension_characters_count_two() {
        // 158 plain + one € (2) = 160: one fragment; one more tips it over.
        let text = format!("{}€", "a".repeat(158));
        assert_eq!(fragments(&text), (Encoding::Gsm7, 160, 1));
        let text = format!("{}[]", "a".repeat(157));
        assert_eq!(fragments(&text), (Encoding::Gsm7, 161, 2));
    }

    #[test]
    fn anything_outside_gsm_makes_it_ucs2() {
        assert_eq!(fragments(&"ŵ".repeat(70)), (Encoding::Ucs2, 70, 1));
        assert_eq!(fragments(&"ŵ".repeat(71)), (Encoding::Ucs2, 71, 2));
        assert_eq!(fragments(&"ŵ".repeat(135)), (Encoding::Ucs2, 135, 3));
        // An emoji is two UTF-16 units.
        assert_eq!(fragments("👍"), (Encoding::Ucs2, 2, 1));
    }

    #[test]
    fn smart_quotes_and_dashes_stay_gsm() {
        assert_eq!(fragments("It’s “done” – fine…").0, Encoding::Gsm7);
    }

    #[test]
    fn the_body_is_in_notifys_formatting() {
        let text = "Seeing the child\n7-minute briefing\n\nHello Sam,\n\nWhy it matters\nChildren must be seen.\n\nTake these questions:\n- What did you see?\n- Who saw them?\n\nWhen you have read it, please acknowledge it:\nhttps://l.example/ack/v1.abc\n\n--\nSent by NSCP to Sam.";
        let body = notify_body(text);
        assert_eq!(
            body,
            "# Seeing the child\n7-minute briefing\n\nHello Sam,\n\n# Why it matters\nChildren must be seen.\n\nTake these questions:\n* What did you see?\n* Who saw them?\n\nWhen you have read it, please acknowledge it:\nhttps://l.example/ack/v1.abc\n\n--\nSent by NSCP to Sam."
        );
        assert!(!body.contains('<'));
        assert_eq!(
            ack_link(text).as_deref(),
            Some("https://l.example/ack/v1.abc")
        );
    }

    #[test]
    fn a_follow_up_by_text_carries_each_answer_link() {
        let config = NotifyConfig::from_json(&json!({
            "kind": "sms",
            "template_id": "f33517ff-2a88-4f6e-b855-c550268ce08a",
            "api_key": "k-26785a09-ab16-4eb0-8407-a37497a57506-3d844edf-8d35-48ac-975b-e847b4f122b0",
        }))
        .unwrap();
        let request = SendRequest {
            delivery_id: "d1".to_owned(),
            idempotency_key: "r/p/follow-up-1/p/0".to_owned(),
            channel: "notify".to_owned(),
            recipient: cascade_plugin_api::Recipient {
                person_id: "p".to_owned(),
                display_name: "P".to_owned(),
                address: "+447700900123".to_owned(),
            },
            message: cascade_plugin_api::Message {
                subject: Some("Have you used this in practice?".to_owned()),
                parts: vec![cascade_plugin_api::MessagePart {
                    format: Format::EmailText,
                    chunks: vec!["Have you used this in practice?\n\nHello P,\n\n- Used it in practice: https://l.example/answer/t/1\n- Not yet: https://l.example/answer/t/2\n".to_owned()],
                }],
            },
            actions: vec![],
            reply: None,
            list: None,
            post: None,
        };
        let body = payload(&config, &request).unwrap();
        assert_eq!(
            body["personalisation"]["body"],
            "Have you used this in practice?\nUsed it in practice: https://l.example/answer/t/1\nNot yet: https://l.example/answer/t/2"
        );
        let mut without = request.clone();
        without.message.parts[0].chunks = vec!["No links here.".to_owned()];
        assert_eq!(payload(&config, &without), Err(FormatError::NoLink));
    }

    #[test]
    fn the_notice_is_short() {
        let notice = sms_notice(&"Long title ".repeat(20), "https://l.example/ack/v1.abc");
        assert!(notice.contains("https://l.example/ack/v1.abc"));
        assert!(fragments(&notice).2 <= 2, "{notice}");
    }
}
