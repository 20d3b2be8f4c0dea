//! From the host's plain data to the Bot Connector's JSON and back: a
//! learning message as Adaptive Cards (version 1.5) with `Action.Submit`
//! buttons and `Action.ShowCard` forms, replies as plain-text activities,
//! the status update of a pressed card, a person's Teams address, and the
//! activities Teams posts to the bot. Pure: no I/O here.

use cascade_plugin_api::{Action, FieldInput, Form, FormField, Format, SendRequest};
use serde::Deserialize;
use serde_json::{Value, json};

/// The longest chunk of text one card carries, in UTF-16 units: the
/// engine renders Teams messages with the `discord` render (the same
/// Markdown subset Adaptive Cards' TextBlock reads), split at this length.
pub const CHUNK_LIMIT: usize = 4096;
/// Teams refuses a message over about 28 KB (the activity as JSON, card
/// included); every activity is measured against this before it is sent.
pub const ACTIVITY_BYTES_LIMIT: usize = 28 * 1024;
/// The MIME type of an Adaptive Card attachment.
pub const ADAPTIVE_CARD: &str = "application/vnd.microsoft.card.adaptive";
/// The key of a button's data that carries the host's signed action id.
pub const ACTION_KEY: &str = "cascade";
/// Set in the data of a form's submit button.
pub const FORM_KEY: &str = "cascade_form";
/// The id of the status line's TextBlock, so an update replaces it.
const STATUS_ID: &str = "cascade-status";

/// A send request Teams would refuse; the host should not have made it.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum FormatError {
    #[error(
        "the message has no `discord` part (Teams cards are rendered as Markdown): give this channel `formats = [\"discord\"]` (parts were: {0})"
    )]
    NoMarkdownPart(String),
    #[error("the message has no text")]
    Empty,
    #[error(
        "chunk {index} is {length} UTF-16 units long, over the Teams card limit of {CHUNK_LIMIT}: the host's renderer must split it"
    )]
    ChunkTooLong { index: usize, length: usize },
    #[error(
        "a card is {0} bytes as JSON, over Teams' limit of about {ACTIVITY_BYTES_LIMIT}: shorten the form or the buttons"
    )]
    ActivityTooLarge(usize),
}

fn utf16_len(text: &str) -> usize {
    text.encode_utf16().count()
}

/// A person as the bot reaches them: their Teams user id (`29:…`), their
/// tenant, their Entra ID object id and the Bot Connector that serves
/// them. Written as one string, the identity's address and the account
/// their presses come from, whichever conversation they press in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PersonRef {
    pub user_id: String,
    pub tenant_id: String,
    pub aad_object_id: String,
    pub service_url: String,
}

impl PersonRef {
    /// `user id|tenant id|AAD object id|serviceUrl`: the service URL last,
    /// as the only part that could hold any character.
    pub fn to_address(&self) -> String {
        format!(
            "{}|{}|{}|{}",
            self.user_id, self.tenant_id, self.aad_object_id, self.service_url
        )
    }

    pub fn parse(address: &str) -> Option<PersonRef> {
        let mut parts = address.splitn(4, '|');
        let person = PersonRef {
            user_id: parts.next()?.to_owned(),
            tenant_id: parts.next()?.to_owned(),
            aad_object_id: parts.next()?.to_owned(),
            service_url: parts.next()?.to_owned(),
        };
        (!person.user_id.is_empty() && !person.service_url.is_empty()).then_some(person)
    }
}

/// The `discord` part's chunks (Markdown, split by the renderer), checked.
fn markdown_chunks(request: &SendRequest) -> Result<Vec<&str>, FormatError> {
    let part = request
        .message
        .parts
        .iter()
        .find(|part| part.format == Format::Discord || part.format == Format::Text)
        .ok_or_else(|| {
            FormatError::NoMarkdownPart(
                request
                    .message
                    .parts
                    .iter()
                    .map(|p| p.format.as_str())
                    .collect::<Vec<_>>()
                    .join(", "),
            )
        })?;
    let chunks: Vec<&str> = part
        .chunks
        .iter()
        .map(String::as_str)
        .filter(|c| !c.trim().is_empty())
        .collect();
    if chunks.is_empty() {
        return Err(FormatError::Empty);
    }
    if let Some((index, chunk)) = chunks
        .iter()
        .enumerate()
        .find(|(_, c)| utf16_len(c) > CHUNK_LIMIT)
    {
        return Err(FormatError::ChunkTooLong {
            index,
            length: utf16_len(chunk),
        });
    }
    Ok(chunks)
}

/// Escapes plain text (host replies, status lines) for the Markdown of a
/// TextBlock, so it shows as written.
pub fn escape_markdown(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut line_start = true;
    for c in text.chars() {
        let special = matches!(
            c,
            '\\' | '*' | '_' | '`' | '[' | ']' | '(' | ')' | '<' | '>'
        ) || (line_start && matches!(c, '#' | '-' | '+'));
        if special {
            out.push('\\');
        }
        out.push(c);
        line_start = c == '\n' || (line_start && c == ' ');
    }
    out
}

fn text_block(text: &str) -> Value {
    json!({ "type": "TextBlock", "text": text, "wrap": true })
}

fn status_block(status: &str) -> Value {
    json!({
        "type": "TextBlock",
        "id": STATUS_ID,
        "text": escape_markdown(status),
        "wrap": true,
        "weight": "Bolder",
        "separator": true,
    })
}

fn card(body: Vec<Value>, actions: Vec<Value>) -> Value {
    let mut card = json!({
        "type": "AdaptiveCard",
        "$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
        "version": "1.5",
        "body": body,
    });
    if !actions.is_empty() {
        card["actions"] = Value::Array(actions);
    }
    card
}

/// A message activity carrying one card.
pub fn card_activity(card: Value) -> Value {
    json!({
        "type": "message",
        "attachments": [{ "contentType": ADAPTIVE_CARD, "content": card }],
    })
}

/// The buttons: `Action.Submit` whose data carries the signed action id,
/// or for a form an `Action.ShowCard` holding the form's inputs and its
/// own submit button.
pub fn card_actions(actions: &[Action]) -> Vec<Value> {
    actions
        .iter()
        .map(|action| match &action.form {
            None => json!({
                "type": "Action.Submit",
                "title": action.label,
                "data": { ACTION_KEY: action.id },
            }),
            Some(form) => json!({
                "type": "Action.ShowCard",
                "title": action.label,
                "card": form_card(&action.id, form),
            }),
        })
        .collect()
}

fn form_card(action_id: &str, form: &Form) -> Value {
    let mut body = vec![json!({
        "type": "TextBlock", "text": escape_markdown(&form.title), "wrap": true, "weight": "Bolder",
    })];
    body.extend(form.fields.iter().map(input));
    card(
        body,
        vec![json!({
            "type": "Action.Submit",
            "title": "Send",
            "data": { ACTION_KEY: action_id, FORM_KEY: "1" },
        })],
    )
}

/// One form field as the Adaptive Card input of its kind.
fn input(field: &FormField) -> Value {
    let mut input = match &field.input {
        Some(FieldInput::Date) => json!({ "type": "Input.Date" }),
        Some(FieldInput::Number { min, max }) => {
            let mut number = json!({ "type": "Input.Number" });
            if let Some(min) = min {
                number["min"] = json!(min);
            }
            if let Some(max) = max {
                number["max"] = json!(max);
            }
            number
        }
        Some(FieldInput::Choice { choices }) => json!({
            "type": "Input.ChoiceSet",
            "style": "compact",
            "choices": choices.iter().map(|c| json!({ "title": c.label, "value": c.value })).collect::<Vec<_>>(),
        }),
        None => {
            let mut text = json!({ "type": "Input.Text", "isMultiline": field.multiline });
            if let Some(max) = field.max_length {
                text["maxLength"] = json!(max);
            }
            text
        }
    };
    input["id"] = json!(field.id);
    input["label"] = json!(field.label);
    input["isRequired"] = json!(field.required);
    if field.required {
        input["errorMessage"] = json!(format!("{} is needed", field.label));
    }
    if let Some(placeholder) = &field.placeholder {
        input["placeholder"] = json!(placeholder);
    }
    if let Some(value) = &field.value {
        input["value"] = json!(value);
    }
    input
}

/// A learning message (to a person, or a post in a team channel): one card
/// per chunk; the subject titles the first, the buttons and a post's
/// status line go on the last. Returns the activities and, for the last,
/// its card, kept so a press can later show its status on it.
pub fn learning_activities(request: &SendRequest) -> Result<Vec<Value>, FormatError> {
    let chunks = markdown_chunks(request)?;
    let last = chunks.len() - 1;
    let status = request.post.as_ref().and_then(|p| p.status.as_deref());
    chunks
        .iter()
        .enumerate()
        .map(|(index, chunk)| {
            let mut body = Vec::new();
            if let (0, Some(subject)) = (index, &request.message.subject) {
                body.push(json!({
                    "type": "TextBlock", "text": escape_markdown(subject), "wrap": true,
                    "size": "Medium", "weight": "Bolder", "style": "heading",
                }));
            }
            body.push(text_block(chunk));
            let mut actions = Vec::new();
            if index == last {
                if let Some(status) = status {
                    body.push(status_block(status));
                }
                actions = card_actions(&request.actions);
            }
            checked(card_activity(card(body, actions)))
        })
        .collect()
}

/// Refuses an activity over Teams' size limit.
pub fn checked(activity: Value) -> Result<Value, FormatError> {
    let size = activity.to_string().len();
    if size > ACTIVITY_BYTES_LIMIT {
        return Err(FormatError::ActivityTooLarge(size));
    }
    Ok(activity)
}

/// The card of a sent activity (its first Adaptive Card attachment).
pub fn card_of(activity: &Value) -> Option<&Value> {
    activity["attachments"]
        .as_array()?
        .iter()
        .find(|a| a["contentType"] == ADAPTIVE_CARD)
        .map(|a| &a["content"])
}

/// The update of a pressed card: its text as it was, the status line (in
/// place of any earlier one) and only the `keep` buttons.
pub fn status_update(sent: &Value, status: &str, keep: &[Action]) -> Result<Value, FormatError> {
    let mut body: Vec<Value> = card_of(sent)
        .and_then(|card| card["body"].as_array())
        .map(|body| {
            body.iter()
                .filter(|block| block["id"] != STATUS_ID)
                .cloned()
                .collect()
        })
        .unwrap_or_default();
    body.push(status_block(status));
    checked(card_activity(card(body, card_actions(keep))))
}

/// Plain text as message activities within the limits: a plain-text
/// activity per piece, the buttons (if any) on a card after the last.
pub fn reply_activities(text: &str, actions: &[Action]) -> Result<Vec<Value>, FormatError> {
    let pieces = split_text(text, CHUNK_LIMIT);
    let last = pieces.len().saturating_sub(1);
    let mut activities = Vec::new();
    for (index, piece) in pieces.iter().enumerate() {
        if index == last && !actions.is_empty() {
            activities.push(checked(card_activity(card(
                vec![text_block(&escape_markdown(piece))],
                card_actions(actions),
            )))?);
        } else {
            activities.push(checked(
                json!({ "type": "message", "textFormat": "plain", "text": piece }),
            )?);
        }
    }
    if pieces.is_empty() && !actions.is_empty() {
        activities.push(checked(card_activity(card(
            Vec::new(),
            card_actions(actions),
        )))?);
    }
    Ok(activities)
}

/// Splits plain text into pieces within `limit` UTF-16 units, at line
/// breaks where it can and between characters where it must.
pub fn split_text(text: &str, limit: usize) -> Vec<String> {
    let mut pieces = Vec::new();
    let mut current = String::new();
    for line in text.split_inclusive('\n') {
        if utf16_len(&current) + utf16_len(line) > limit && !current.is_empty() {
            pieces.push(std::mem::take(&mut current));
        }
        for c in line.chars() {
            if utf16_len(&current) + c.len_utf16() > limit {
                pieces.push(std::mem::take(&mut current));
            }
            current.push(c);
        }
    }
    if !current.trim().is_empty() {
        pieces.push(current);
    }
    pieces
}

/// The body of `POST /v3/conversations` that opens (or finds) the bot's
/// one-to-one chat with a person.
pub fn new_conversation(app_id: &str, person: &PersonRef) -> Value {
    json!({
        "bot": { "id": format!("28:{app_id}") },
        "members": [{ "id": person.user_id }],
        "isGroup": false,
        "tenantId": person.tenant_id,
        "channelData": { "tenant": { "id": person.tenant_id } },
    })
}

/// An account of an activity (`from`, `recipient`).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ChannelAccount {
    #[serde(default)]
    pub id: String,
    #[serde(default)]
    pub aad_object_id: Option<String>,
}

/// The conversation of an activity.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ConversationAccount {
    #[serde(default)]
    pub id: String,
    /// `personal`, `groupChat` or `channel`.
    #[serde(default)]
    pub conversation_type: Option<String>,
    #[serde(default)]
    pub tenant_id: Option<String>,
}

/// What Teams posts to the bot's messaging endpoint: the fields cascade
/// reads of a Bot Framework activity.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Activity {
    #[serde(rename = "type", default)]
    pub kind: String,
    #[serde(default)]
    pub id: String,
    #[serde(default)]
    pub service_url: String,
    #[serde(default)]
    pub channel_id: String,
    #[serde(default)]
    pub from: ChannelAccount,
    #[serde(default)]
    pub conversation: ConversationAccount,
    #[serde(default)]
    pub text: Option<String>,
    #[serde(default)]
    pub value: Option<Value>,
    #[serde(default)]
    pub reply_to_id: Option<String>,
    #[serde(default)]
    pub channel_data: Option<Value>,
}

impl Activity {
    /// Every tenant the activity names (`channelData.tenant.id`,
    /// `conversation.tenantId`).
    pub fn tenants(&self) -> Vec<&str> {
        let mut tenants = Vec::new();
        if let Some(id) = self
            .channel_data
            .as_ref()
            .and_then(|d| d["tenant"]["id"].as_str())
        {
            tenants.push(id);
        }
        if let Some(id) = self.conversation.tenant_id.as_deref() {
            tenants.push(id);
        }
        tenants
    }

    /// The person who acted, as an address; `None` without a user id.
    pub fn person(&self, tenant_id: &str) -> Option<PersonRef> {
        (!self.from.id.is_empty()).then(|| PersonRef {
            user_id: self.from.id.clone(),
            tenant_id: tenant_id.to_owned(),
            aad_object_id: self.from.aad_object_id.clone().unwrap_or_default(),
            service_url: self.service_url.clone(),
        })
    }

    pub fn is_personal(&self) -> bool {
        self.conversation.conversation_type.as_deref() == Some("personal")
    }
}

/// What a message activity says, as cascade reads it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Said {
    /// A card button pressed: the host's action id.
    Pressed(String),
    /// A card form submitted with its inputs.
    Submitted(String, std::collections::BTreeMap<String, String>),
    Command(String, Vec<String>),
    Text(String),
    Nothing,
}

/// The commands the host understands, typed with or without a slash.
const COMMANDS: [&str; 6] = ["start", "link", "pending", "ack", "help", "cancel"];

/// Reads a message activity: a press or a form from a card (its `value`),
/// else the typed text without the bot's @mention.
pub fn said(activity: &Activity) -> Said {
    if let Some(value) = activity.value.as_ref().and_then(Value::as_object)
        && let Some(action) = value.get(ACTION_KEY).and_then(Value::as_str)
    {
        if value.contains_key(FORM_KEY) {
            let fields = value
                .iter()
                .filter(|(k, _)| *k != ACTION_KEY && *k != FORM_KEY)
                .map(|(k, v)| {
                    let text = match v {
                        Value::String(s) => s.clone(),
                        Value::Null => String::new(),
                        other => other.to_string(),
                    };
                    (k.clone(), text)
                })
                .collect();
            return Said::Submitted(action.to_owned(), fields);
        }
        return Said::Pressed(action.to_owned());
    }
    let text = without_mentions(activity.text.as_deref().unwrap_or_default());
    let text = text.trim();
    if text.is_empty() {
        return Said::Nothing;
    }
    let mut words = text.split_whitespace();
    let first = words.next().unwrap_or_default();
    let name = first.trim_start_matches('/').to_ascii_lowercase();
    if COMMANDS.contains(&name.as_str()) {
        return Said::Command(name, words.map(str::to_owned).collect());
    }
    Said::Text(text.to_owned())
}

/// Teams writes an @mention of the bot as `<at>Name</at>` in the text.
fn without_mentions(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(start) = rest.find("<at>") {
        out.push_str(&rest[..start]);
        match rest[start..].find("</at>") {
            Some(end) => rest = &rest[start + end + "</at>".len()..],
            None => {
                rest = &rest[start..];
                break;
            }
        }
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use cascade_plugin_api::{
        ChannelPost, FieldChoice, Message, MessagePart, Recipient, SendRequest,
    };

    fn action(id: &str, label: &str) -> Action {
        Action {
            id: id.to_owned(),
            label: label.to_owned(),
            form: None,
        }
    }

    fn request(chunks: &[&str], actions: Vec<Action>) -> SendRequest {
        SendRequest {
            delivery_id: "d1".to_owned(),
            idempotency_key: "k1".to_owned(),
            channel: "teams".to_owned(),
            recipient: Recipient {
                person_id: "p-1".to_owned(),
                display_name: "Sam".to_owned(),
                address: "29:u|t|a|https://smba.trafficmanager.net/uk/".to_owned(),
            },
            message: Message {
                subject: Some("Neglect".to_owned()),
                parts: vec![MessagePart {
                    format: Format::Discord,
                    chunks: chunks.iter().map(|c| (*c).to_owned()).collect(),
                }],
            },
            actions,
            reply: None,
            list: None,
            post: None,
        }
    }

    #[test]
    fn an_address_reads_back_as_the_same_person() {
        let person = PersonRef {
            user_id: "29:1abc".to_owned(),
            tenant_id: "t".to_owned(),
            aad_object_id: "a".to_owned(),
            service_url: "https://smba.trafficmanager.net/uk/|odd".to_owned(),
        };
        assert_eq!(PersonRef::parse(&person.to_address()), Some(person));
        assert_eq!(PersonRef::parse("19:channel@thread.tacv2"), None);
    }

    #[test]
    fn a_learning_message_is_one_card_a_chunk_with_buttons_on_the_last() {
        let activities = learning_activities(&request(
            &["one", "two"],
            vec![action("a.1", "Acknowledge")],
        ))
        .unwrap();
        assert_eq!(activities.len(), 2);
        let first = card_of(&activities[0]).unwrap();
        assert_eq!(first["version"], "1.5");
        assert_eq!(first["body"][0]["text"], "Neglect");
        assert!(first.get("actions").is_none());
        let last = card_of(&activities[1]).unwrap();
        assert_eq!(last["actions"][0]["type"], "Action.Submit");
        assert_eq!(last["actions"][0]["data"][ACTION_KEY], "a.1");
    }

    #[test]
    fn a_post_shows_its_status_and_an_update_replaces_it() {
        let mut post = request(&["text"], vec![action("post.1", "Acknowledge")]);
        post.post = Some(ChannelPost {
            status: Some("0 of 3 acknowledged".to_owned()),
            edit: None,
        });
        let sent = learning_activities(&post).unwrap().remove(0);
        let updated = status_update(&sent, "Acknowledged on 2 December 2026", &[]).unwrap();
        let body = card_of(&updated).unwrap()["body"]
            .as_array()
            .unwrap()
            .clone();
        let texts: Vec<&str> = body.iter().filter_map(|b| b["text"].as_str()).collect();
        assert_eq!(
            texts,
            ["Neglect", "text", "Acknowledged on 2 December 2026"]
        );
        assert!(card_of(&updated).unwrap().get("actions").is_none());
    }

    #[test]
    fn a_form_becomes_typed_inputs_behind_a_show_card() {
        let field = |id: &str, input: Option<FieldInput>| FormField {
            id: id.to_owned(),
            label: id.to_owned(),
            placeholder: None,
            value: None,
            required: true,
            max_length: None,
            multiline: false,
            input,
        };
        let form = Form {
            title: "Confirm".to_owned(),
            fields: vec![
                field(
                    "team",
                    Some(FieldInput::Choice {
                        choices: vec![FieldChoice {
                            value: "t1".to_owned(),
                            label: "Team one".to_owned(),
                        }],
                    }),
                ),
                field("session_date", Some(FieldInput::Date)),
                field(
                    "present",
                    Some(FieldInput::Number {
                        min: Some(0),
                        max: None,
                    }),
                ),
                field("note", None),
            ],
        };
        let actions = card_actions(&[Action {
            form: Some(form),
            ..action("c.1", "I've cascaded this")
        }]);
        assert_eq!(actions[0]["type"], "Action.ShowCard");
        let inputs = &actions[0]["card"]["body"];
        let kinds: Vec<&str> = (1..5)
            .map(|i| inputs[i]["type"].as_str().unwrap())
            .collect();
        assert_eq!(
            kinds,
            [
                "Input.ChoiceSet",
                "Input.Date",
                "Input.Number",
                "Input.Text"
            ]
        );
        assert_eq!(actions[0]["card"]["actions"][0]["data"][FORM_KEY], "1");
    }

    #[test]
    fn an_over_long_chunk_is_refused_before_anything_is_sent() {
        let long = "x".repeat(CHUNK_LIMIT + 1);
        assert!(matches!(
            learning_activities(&request(&["ok", &long], vec![])),
            Err(FormatError::ChunkTooLong { index: 1, .. })
        ));
    }

    #[test]
    fn typed_commands_lose_the_mention_and_the_slash() {
        let activity = |text: &str| Activity {
            kind: "message".to_owned(),
            text: Some(text.to_owned()),
            ..Activity::default()
        };
        assert_eq!(
            said(&activity("<at>Cascade</at> link ABC123")),
            Said::Command("link".to_owned(), vec!["ABC123".to_owned()])
        );
        assert_eq!(
            said(&activity("/pending")),
            Said::Command("pending".to_owned(), vec![])
        );
        assert_eq!(
            said(&activity("14 people")),
            Said::Text("14 people".to_owned())
        );
    }

    #[test]
    fn a_card_submission_is_a_press_or_a_form() {
        let press = Activity {
            value: Some(json!({ ACTION_KEY: "d1.ack.x" })),
            ..Activity::default()
        };
        assert_eq!(said(&press), Said::Pressed("d1.ack.x".to_owned()));
        let form = Activity {
            value: Some(json!({ ACTION_KEY: "d1.c.x", FORM_KEY: "1", "present": "12" })),
            ..Activity::default()
        };
        assert_eq!(
            said(&form),
            Said::Submitted(
                "d1.c.x".to_owned(),
                [("present".to_owned(), "12".to_owned())].into()
            )
        );
    }
}
