//! From the host's plain data to the Bot Connector's JSON and back: a
//! learning message as Adaptive Cards (version 1.5) with `Action.Submit`
//! buttons and `Action.ShowCard` forms, each card within Teams' size
//! limit, replies as plain-text activities, the status update of a
//! pressed card, a person's Teams address, and the activities Teams posts
//! to the bot. Pure: no I/O here. `textblock` writes the text of cards.

mod textblock;

use cascade_plugin_api::{Action, FieldInput, Form, FormField, Format, SendRequest};
use serde::Deserialize;
use serde_json::{Value, json};

/// The longest chunk of text the host sends, in UTF-16 units: the engine
/// renders Teams messages with the `discord` render (CommonMark, which
/// `textblock` rewrites in TextBlock's subset), split at this length.
pub const CHUNK_LIMIT: usize = 4096;
/// Teams refuses a message over its size limit with 413
/// `MessageSizeTooBig`. Microsoft has documented the limit as about 28 KB,
/// later 40 KB and 100 KB, counted on the payload as UTF-16; every activity
/// is kept within 28 KB counted both as UTF-8 and as UTF-16 bytes (see
/// [`activity_size`]), and a card that would be larger is split.
pub const ACTIVITY_BYTES_LIMIT: usize = 28 * 1024;
/// Room kept on a learning message's last card for the status line a
/// press or a new count adds to it later.
const STATUS_ROOM: usize = 512;
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
        "a card is {0} bytes, over Teams' limit of {ACTIVITY_BYTES_LIMIT} even on its own: shorten the form or the buttons"
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

/// Plain text (host replies, status lines, titles) as TextBlock text
/// that shows as written.
pub fn escape_text(text: &str) -> String {
    textblock::escape(text)
}

fn text_block(text: &str) -> Value {
    json!({ "type": "TextBlock", "text": text, "wrap": true })
}

fn status_block(status: &str) -> Value {
    json!({
        "type": "TextBlock",
        "id": STATUS_ID,
        "text": escape_text(status),
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
        "type": "TextBlock", "text": escape_text(&form.title), "wrap": true, "weight": "Bolder",
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

/// A chunk without the `(i/n)` line the host's renderer puts first when
/// it splits: the cards are numbered again, as card size may split more.
fn without_part_line(chunk: &str) -> &str {
    let Some((first, rest)) = chunk.split_once('\n') else {
        return chunk;
    };
    let numbered = first
        .strip_prefix('(')
        .and_then(|f| f.strip_suffix(')'))
        .and_then(|f| f.split_once('/'))
        .is_some_and(|(i, n)| {
            [i, n]
                .iter()
                .all(|d| !d.is_empty() && d.bytes().all(|b| b.is_ascii_digit()))
        });
    if numbered { rest } else { chunk }
}

/// What one card of a learning message holds.
struct CardParts<'a> {
    request: &'a SendRequest,
    /// The card's place: the first carries the title, the last the
    /// buttons and room for a status line.
    first: bool,
    last: bool,
    /// `(i/n)` when the message takes more than one card.
    part: Option<(usize, usize)>,
    blocks: &'a [String],
}

impl CardParts<'_> {
    fn activity(&self) -> Value {
        let mut body = Vec::new();
        if let Some((i, n)) = self.part {
            body.push(json!({
                "type": "TextBlock", "text": escape_text(&format!("({i}/{n})")),
                "wrap": true, "isSubtle": true, "size": "Small",
            }));
        }
        if let (true, Some(subject)) = (self.first, &self.request.message.subject) {
            body.push(json!({
                "type": "TextBlock", "text": escape_text(subject), "wrap": true,
                "size": "Medium", "weight": "Bolder", "style": "heading",
            }));
        }
        if !self.blocks.is_empty() {
            body.push(text_block(&self.blocks.join("\n\n")));
        }
        let mut actions = Vec::new();
        if self.last {
            if let Some(status) = self.request.post.as_ref().and_then(|p| p.status.as_deref()) {
                body.push(status_block(status));
            }
            actions = card_actions(&self.request.actions);
        }
        card_activity(card(body, actions))
    }

    /// Whether the card is within the limit, with room on the last for a
    /// status line and, while cards are still being counted, for any
    /// `(i/n)` line.
    fn fits(&self) -> bool {
        let room = if self.last { STATUS_ROOM } else { 0 };
        let counted = CardParts {
            part: Some((999, 999)),
            ..*self
        };
        activity_size(&counted.activity()) + room <= ACTIVITY_BYTES_LIMIT
    }
}

/// Cuts a block that cannot fit on a card on its own in two: at the line
/// break nearest its middle, else at a character there (never right after
/// a backslash, which would escape the next card's first character).
fn halves(block: &str) -> (String, String) {
    let middle = block.len() / 2;
    let at_line = block
        .match_indices('\n')
        .map(|(i, _)| i)
        .min_by_key(|i| i.abs_diff(middle))
        .filter(|i| *i > 0);
    let at = at_line.unwrap_or_else(|| {
        let mut at = middle;
        while at < block.len() && (!block.is_char_boundary(at) || block[..at].ends_with('\\')) {
            at += 1;
        }
        at
    });
    (
        block[..at].trim_end().to_owned(),
        block[at..].trim_start().to_owned(),
    )
}

/// A learning message (to a person, or a post in a team channel) as cards
/// within Teams' size limit: a card per chunk of the host's render, and a
/// chunk whose card would be too large split between its paragraphs and
/// lists (a section's blocks stay together as far as the limit allows).
/// The subject titles the first card, the buttons and a post's status
/// line go on the last, and every card says `(i/n)` when there are more.
pub fn learning_activities(request: &SendRequest) -> Result<Vec<Value>, FormatError> {
    let chunks = markdown_chunks(request)?;
    let chunk_count = chunks.len();
    let mut cards: Vec<Vec<String>> = Vec::new();
    for (index, chunk) in chunks.into_iter().enumerate() {
        let mut blocks: std::collections::VecDeque<String> =
            textblock::from_markdown(without_part_line(chunk)).into();
        let mut current: Vec<String> = Vec::new();
        while let Some(block) = blocks.pop_front() {
            let candidate: Vec<String> = current.iter().cloned().chain([block.clone()]).collect();
            let parts = CardParts {
                request,
                first: cards.is_empty(),
                last: false,
                part: None,
                blocks: &candidate,
            };
            if parts.fits() {
                current = candidate;
            } else if !current.is_empty() {
                cards.push(std::mem::take(&mut current));
                blocks.push_front(block);
            } else {
                let (head, tail) = halves(&block);
                if head.is_empty() || tail.is_empty() {
                    return Err(FormatError::ActivityTooLarge(activity_size(
                        &parts.activity(),
                    )));
                }
                blocks.push_front(tail);
                blocks.push_front(head);
            }
        }
        if !current.is_empty() || (index + 1 == chunk_count && cards.is_empty()) {
            cards.push(current);
        }
    }
    // The buttons go on the last card; when they do not fit beside its
    // text, its last blocks move to a card of their own with them.
    let mut head = cards.pop().unwrap_or_default();
    let mut tail: Vec<String> = Vec::new();
    let fits_last = |blocks: &[String], first: bool| {
        CardParts {
            request,
            first,
            last: true,
            part: None,
            blocks,
        }
        .fits()
    };
    if !fits_last(&head, cards.is_empty()) {
        while head.len() > 1 {
            let moved: Vec<String> = head.last().into_iter().chain(&tail).cloned().collect();
            if !fits_last(&moved, false) {
                break;
            }
            tail = moved;
            head.pop();
        }
        cards.push(head);
        head = tail;
    }
    cards.push(head);
    let total = cards.len();
    cards
        .iter()
        .enumerate()
        .map(|(index, blocks)| {
            let parts = CardParts {
                request,
                first: index == 0,
                last: index + 1 == total,
                part: (total > 1).then_some((index + 1, total)),
                blocks,
            };
            let activity = parts.activity();
            let size = activity_size(&activity) + if parts.last { STATUS_ROOM } else { 0 };
            if size > ACTIVITY_BYTES_LIMIT {
                return Err(FormatError::ActivityTooLarge(size));
            }
            Ok(activity)
        })
        .collect()
}

/// An activity's size as Teams may count it: the JSON's UTF-8 bytes (the
/// request body) or its UTF-16 bytes (as Microsoft documents the limit),
/// whichever is larger.
pub fn activity_size(activity: &Value) -> usize {
    let json = activity.to_string();
    json.len().max(2 * utf16_len(&json))
}

/// Refuses an activity over Teams' size limit.
pub fn checked(activity: Value) -> Result<Value, FormatError> {
    let size = activity_size(&activity);
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
                vec![text_block(&escape_text(piece))],
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
        assert_eq!(first["body"][0]["text"], "(1/2)");
        assert_eq!(first["body"][1]["text"], "Neglect");
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

    /// A form as large as a champion's who covers many teams.
    fn big_form(choices: usize) -> Action {
        Action {
            form: Some(Form {
                title: "Confirm".to_owned(),
                fields: vec![FormField {
                    id: "team".to_owned(),
                    label: "Team".to_owned(),
                    placeholder: None,
                    value: None,
                    required: true,
                    max_length: None,
                    multiline: false,
                    input: Some(FieldInput::Choice {
                        choices: (0..choices)
                            .map(|i| FieldChoice {
                                value: format!("team-{i:04}"),
                                label: format!(
                                    "Children's Social Care, locality team number {i:04} (north)"
                                ),
                            })
                            .collect(),
                    }),
                }],
            }),
            ..action("c.1", "I've cascaded this")
        }
    }

    fn paragraphs(count: usize) -> String {
        (1..=count)
            .map(|n| {
                format!(
                    "Paragraph {n:02} begins. {} Paragraph {n:02} ends.",
                    "See the child. ".repeat(40)
                )
            })
            .collect::<Vec<_>>()
            .join("\n\n")
    }

    fn texts(activity: &Value) -> String {
        card_of(activity).unwrap()["body"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|b| b["text"].as_str())
            .collect::<Vec<_>>()
            .join("\n")
    }

    #[test]
    fn a_card_over_teams_limit_is_split_between_paragraphs_with_the_buttons_on_the_last() {
        let text = paragraphs(6);
        assert!(utf16_len(&text) < CHUNK_LIMIT);
        let request = request(&[&text], vec![action("a.1", "Acknowledge"), big_form(110)]);
        // One card would be over the limit.
        let whole = CardParts {
            request: &request,
            first: true,
            last: true,
            part: None,
            blocks: &textblock::from_markdown(&text),
        };
        assert!(activity_size(&whole.activity()) > ACTIVITY_BYTES_LIMIT);

        let activities = learning_activities(&request).unwrap();
        let n = activities.len();
        assert!(n >= 2, "{n} cards");
        let mut all = String::new();
        for (i, activity) in activities.iter().enumerate() {
            assert!(activity_size(activity) + STATUS_ROOM <= ACTIVITY_BYTES_LIMIT);
            let shown = texts(activity);
            assert!(shown.starts_with(&format!("({}/{n})", i + 1)), "{shown}");
            let actions = card_of(activity).unwrap().get("actions");
            assert_eq!(
                actions.is_some(),
                i + 1 == n,
                "buttons on the last card only"
            );
            all.push_str(&shown);
        }
        for p in 1..=6 {
            for edge in ["begins", "ends"] {
                let marker = format!("Paragraph {p:02} {edge}");
                assert_eq!(all.matches(&marker).count(), 1, "{marker} once");
            }
        }
        // Paragraphs are not cut: each card holds whole ones.
        for activity in &activities {
            let shown = texts(activity);
            assert_eq!(
                shown.matches("begins").count(),
                shown.matches("ends").count()
            );
        }
    }

    #[test]
    fn buttons_too_large_for_any_card_are_refused() {
        let request = request(&["text"], vec![big_form(400)]);
        assert!(matches!(
            learning_activities(&request),
            Err(FormatError::ActivityTooLarge(_))
        ));
    }

    #[test]
    fn item_text_cannot_make_links_or_markup_in_a_card() {
        // As the `discord` render escapes an item's hostile text.
        let chunk = "Call \\[the duty desk\\]\\(https://evil.example\\) \\*\\*now\\*\\* \\<b\\> {{DATE(2026-01-01T00:00:00Z)}}";
        let activity = learning_activities(&request(&[chunk], vec![]))
            .unwrap()
            .remove(0);
        let text = card_of(&activity).unwrap()["body"][1]["text"]
            .as_str()
            .unwrap()
            .to_owned();
        assert!(!text.contains("]("), "{text}");
        assert!(!text.contains("{{"), "{text}");
        assert!(text.contains("\\*\\*now\\*\\*"), "{text}");
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
