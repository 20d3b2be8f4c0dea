//! A send request as Telegram messages: the HTML chunks to post in order,
//! the inline keyboard for the last one, and the status line that replaces
//! the buttons of an answered message. Pure: no I/O, tested on values.

use cascade_plugin_api::{Action, Format, SendRequest};
use teloxide::types::{InlineKeyboardButton, InlineKeyboardMarkup};
use teloxide::utils::html;

/// Telegram's longest message text, in UTF-16 code units after entity parsing.
pub const MESSAGE_LIMIT: usize = 4096;
/// Telegram's longest callback data, in bytes.
pub const CALLBACK_DATA_LIMIT: usize = 64;

/// The texts to post, in order, as Telegram HTML. A `telegram` part (HTML in
/// Telegram's subset, already split within [`MESSAGE_LIMIT`]) is used as
/// rendered; a `text` part (a reply) is escaped first.
pub fn html_chunks(request: &SendRequest) -> Result<Vec<String>, String> {
    let parts = &request.message.parts;
    if let Some(part) = parts.iter().find(|p| p.format == Format::Telegram) {
        return Ok(part.chunks.clone());
    }
    if let Some(part) = parts.iter().find(|p| p.format == Format::Text) {
        return Ok(part.chunks.iter().map(|c| html::escape(c)).collect());
    }
    let found: Vec<&str> = parts.iter().map(|p| p.format.as_str()).collect();
    Err(format!(
        "the message has no `telegram` or `text` part (found: {}); set the channel's formats to [\"telegram\"]",
        found.join(", ")
    ))
}

/// One button a row, so labels stay readable on a phone; `None` without
/// actions. Callback data is the host's action id as it is.
pub fn keyboard(actions: &[Action]) -> Result<Option<InlineKeyboardMarkup>, String> {
    if actions.is_empty() {
        return Ok(None);
    }
    let mut rows = Vec::with_capacity(actions.len());
    for action in actions {
        if action.id.len() > CALLBACK_DATA_LIMIT {
            return Err(format!(
                "action \"{}\" has an id of {} bytes, over Telegram's {CALLBACK_DATA_LIMIT}-byte callback data limit",
                action.label,
                action.id.len()
            ));
        }
        rows.push(vec![InlineKeyboardButton::callback(
            action.label.clone(),
            action.id.clone(),
        )]);
    }
    Ok(Some(InlineKeyboardMarkup::new(rows)))
}

/// The text of an answered message with its status line below, or `None`
/// when the two together would be over Telegram's limit (then the status
/// goes out as a message of its own). `original_html` is the message as
/// HTML, `original_text` what it shows (for the length). A message that
/// already ends with the status keeps it once (a second press, a repeated
/// answer).
pub fn with_status(original_html: &str, original_text: &str, status: &str) -> Option<String> {
    if original_text.trim_end().ends_with(status.trim()) {
        return Some(original_html.to_owned());
    }
    let shown = original_text.encode_utf16().count() + 2 + status.encode_utf16().count();
    (shown <= MESSAGE_LIMIT).then(|| format!("{original_html}\n\n<i>{}</i>", html::escape(status)))
}

/// How the host finds the messages of a send again: their ids, in order.
pub fn provider_id(message_ids: &[i32]) -> String {
    message_ids
        .iter()
        .map(i32::to_string)
        .collect::<Vec<_>>()
        .join(",")
}

#[cfg(test)]
mod tests {
    use super::*;
    use cascade_plugin_api::{Message, MessagePart, Recipient};

    fn request(parts: Vec<MessagePart>) -> SendRequest {
        SendRequest {
            delivery_id: "d-1".to_owned(),
            idempotency_key: "k-1".to_owned(),
            channel: "telegram".to_owned(),
            recipient: Recipient {
                person_id: "p-1".to_owned(),
                display_name: "Lena Ford".to_owned(),
                address: "1001".to_owned(),
            },
            message: Message {
                subject: None,
                parts,
            },
            actions: vec![],
            reply: None,
            list: None,
            post: None,
        }
    }

    fn part(format: Format, chunks: &[&str]) -> MessagePart {
        MessagePart {
            format,
            chunks: chunks.iter().map(|c| (*c).to_owned()).collect(),
        }
    }

    fn action(id: &str, label: &str) -> Action {
        Action {
            id: id.to_owned(),
            label: label.to_owned(),
            form: None,
        }
    }

    #[test]
    fn telegram_chunks_are_posted_as_rendered() {
        let chunks = html_chunks(&request(vec![
            part(Format::EmailText, &["no"]),
            part(Format::Telegram, &["<b>One</b>", "Two &amp; three"]),
        ]))
        .unwrap();
        assert_eq!(chunks, ["<b>One</b>", "Two &amp; three"]);
    }

    #[test]
    fn a_plain_text_reply_is_escaped_for_html() {
        let chunks = html_chunks(&request(vec![part(
            Format::Text,
            &["1 < 2 & <b>not bold</b>"],
        )]))
        .unwrap();
        assert_eq!(chunks, ["1 &lt; 2 &amp; &lt;b&gt;not bold&lt;/b&gt;"]);
    }

    #[test]
    fn a_message_without_a_usable_part_names_the_fix() {
        let error = html_chunks(&request(vec![part(Format::EmailHtml, &["x"])])).unwrap_err();
        assert!(error.contains("email-html"), "{error}");
        assert!(error.contains("[\"telegram\"]"), "{error}");
    }

    #[test]
    fn each_action_is_a_row_with_its_id_as_callback_data() {
        let markup = keyboard(&[
            action("a1.ack.Zx9", "Acknowledge"),
            action("a1.cas.Zx9", "I've cascaded this to my team"),
        ])
        .unwrap()
        .unwrap();
        let json = serde_json::to_value(&markup).unwrap();
        assert_eq!(
            json,
            serde_json::json!({"inline_keyboard": [
                [{"text": "Acknowledge", "callback_data": "a1.ack.Zx9"}],
                [{"text": "I've cascaded this to my team", "callback_data": "a1.cas.Zx9"}]
            ]})
        );
        assert_eq!(keyboard(&[]).unwrap(), None);
    }

    #[test]
    fn callback_data_over_64_bytes_is_refused_before_it_reaches_telegram() {
        assert!(keyboard(&[action(&"x".repeat(64), "ok")]).is_ok());
        let error = keyboard(&[action(&"x".repeat(65), "Acknowledge")]).unwrap_err();
        assert!(error.contains("65 bytes"), "{error}");
    }

    #[test]
    fn the_status_goes_below_the_message_escaped_when_it_fits() {
        assert_eq!(
            with_status("<b>Item</b>", "Item", "Acknowledged on 21 November <2026>").unwrap(),
            "<b>Item</b>\n\n<i>Acknowledged on 21 November &lt;2026&gt;</i>"
        );
        let long = "é".repeat(MESSAGE_LIMIT - 5);
        assert!(with_status(&long, &long, "abc").is_some());
        assert!(with_status(&long, &long, "abcd").is_none());
    }

    #[test]
    fn a_status_already_shown_is_not_added_again() {
        let once = with_status("<b>Item</b>", "Item", "Acknowledged on 21 November 2026").unwrap();
        let shown = "Item\n\nAcknowledged on 21 November 2026";
        assert_eq!(
            with_status(&once, shown, "Acknowledged on 21 November 2026").unwrap(),
            once
        );
    }

    #[test]
    fn the_provider_id_lists_the_message_ids_in_order() {
        assert_eq!(provider_id(&[7, 8, 9]), "7,8,9");
    }
}
