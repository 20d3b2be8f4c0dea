//! Turns a send request into what lands on disk: the file name, derived from
//! the delivery id, and the JSON document. Pure; the write is in `send`.

use cascade_plugin_api::{Action, MessagePart, Recipient, Reply, SendRequest};
use serde::Serialize;

/// Longest delivery id accepted, leaving room for `.json` within the usual
/// 255-byte file name limit, so an over-long id fails once, not on every retry.
const MAX_DELIVERY_ID_LEN: usize = 250;

/// The file a delivery is written to, `<delivery_id>.json`, or why the id
/// cannot name a file safely (only `[A-Za-z0-9._-]`, not starting with `.`).
pub fn file_name_for(delivery_id: &str) -> Result<String, String> {
    let safe_characters = delivery_id
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'));
    if delivery_id.is_empty()
        || delivery_id.starts_with('.')
        || delivery_id.len() > MAX_DELIVERY_ID_LEN
        || !safe_characters
    {
        return Err(format!(
            "delivery id {delivery_id:?} is not a safe file name: the file channel needs 1 to \
             {MAX_DELIVERY_ID_LEN} characters from A-Z, a-z, 0-9, '.', '_' and '-', not starting with '.'"
        ));
    }
    Ok(format!("{delivery_id}.json"))
}

/// The document written for one message. Field names are what readers of
/// the folder (tests, demos) rely on.
#[derive(Debug, Serialize)]
struct MessageDocument<'a> {
    delivery_id: &'a str,
    idempotency_key: &'a str,
    channel: &'a str,
    recipient: &'a Recipient,
    subject: Option<&'a str>,
    parts: &'a [MessagePart],
    actions: &'a [Action],
    /// Present when the message answers an inbound event.
    #[serde(skip_serializing_if = "Option::is_none")]
    reply: Option<&'a Reply>,
}

/// The pretty-printed JSON document for a request, ending in a newline.
pub fn message_document(request: &SendRequest) -> Vec<u8> {
    let document = MessageDocument {
        delivery_id: &request.delivery_id,
        idempotency_key: &request.idempotency_key,
        channel: &request.channel,
        recipient: &request.recipient,
        subject: request.message.subject.as_deref(),
        parts: &request.message.parts,
        actions: &request.actions,
        reply: request.reply.as_ref(),
    };
    let mut json = serde_json::to_vec_pretty(&document).expect("message documents are plain data");
    json.push(b'\n');
    json
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use cascade_plugin_api::{Format, Message};
    use serde_json::{Value, json};

    pub(crate) fn request(delivery_id: &str) -> SendRequest {
        SendRequest {
            delivery_id: delivery_id.to_owned(),
            idempotency_key: format!("key-{delivery_id}"),
            channel: "file".to_owned(),
            recipient: Recipient {
                person_id: "p-1".to_owned(),
                display_name: "Sam Carter".to_owned(),
                address: "sam@example.org".to_owned(),
            },
            message: Message {
                subject: Some("Spotting neglect".to_owned()),
                parts: vec![MessagePart {
                    format: Format::EmailText,
                    chunks: vec!["First part.".to_owned(), "Second part.".to_owned()],
                }],
            },
            actions: vec![Action {
                id: "ack".to_owned(),
                label: "I've read this".to_owned(),
                form: None,
            }],
            reply: None,
            list: None,
            post: None,
        }
    }

    #[test]
    fn a_plain_delivery_id_names_a_json_file() {
        assert_eq!(
            file_name_for("d-42_step.1").as_deref(),
            Ok("d-42_step.1.json")
        );
    }

    #[test]
    fn a_delivery_id_that_could_leave_the_folder_is_refused() {
        for id in ["../escape", "a/b", "a\\b", "..", "."] {
            assert!(file_name_for(id).is_err(), "{id}");
        }
    }

    #[test]
    fn a_delivery_id_starting_with_a_dot_is_refused() {
        assert!(file_name_for(".hidden").is_err());
    }

    #[test]
    fn an_empty_spaced_or_non_ascii_delivery_id_is_refused() {
        for id in ["", "a b", "délivery", "a\0b", "a:b"] {
            assert!(file_name_for(id).is_err(), "{id:?}");
        }
    }

    #[test]
    fn an_over_long_delivery_id_is_refused_but_the_longest_allowed_is_not() {
        assert!(file_name_for(&"a".repeat(MAX_DELIVERY_ID_LEN)).is_ok());
        assert!(file_name_for(&"a".repeat(MAX_DELIVERY_ID_LEN + 1)).is_err());
    }

    #[test]
    fn the_refusal_says_which_characters_are_allowed() {
        let reason = file_name_for("a/b").unwrap_err();
        assert!(reason.contains("\"a/b\""), "{reason}");
        assert!(reason.contains("A-Z, a-z, 0-9"), "{reason}");
    }

    #[test]
    fn the_document_holds_the_delivery_the_recipient_and_the_whole_message() {
        let document: Value = serde_json::from_slice(&message_document(&request("d-1"))).unwrap();
        assert_eq!(
            document,
            json!({
                "delivery_id": "d-1",
                "idempotency_key": "key-d-1",
                "channel": "file",
                "recipient": {
                    "person_id": "p-1",
                    "display_name": "Sam Carter",
                    "address": "sam@example.org"
                },
                "subject": "Spotting neglect",
                "parts": [{"format": "email-text", "chunks": ["First part.", "Second part."]}],
                "actions": [{"id": "ack", "label": "I've read this"}]
            })
        );
    }

    #[test]
    fn a_message_without_subject_or_actions_still_has_both_fields() {
        let mut request = request("d-2");
        request.message.subject = None;
        request.actions.clear();
        let document: Value = serde_json::from_slice(&message_document(&request)).unwrap();
        assert_eq!(document["subject"], Value::Null);
        assert_eq!(document["actions"], json!([]));
    }

    #[test]
    fn the_document_ends_with_a_newline() {
        assert_eq!(message_document(&request("d-3")).last(), Some(&b'\n'));
    }
}
