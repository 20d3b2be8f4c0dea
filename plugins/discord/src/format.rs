//! From the host's plain data to Discord's JSON, with serenity's builders:
//! a learning message as embeds with buttons, replies as plain content,
//! modals from forms, and the slash commands. Pure: no I/O here. Every
//! message body carries an empty `allowed_mentions`, so nothing a template
//! or a person wrote can ping @everyone, @here, a role or a user.

use cascade_plugin_api::{Action, Form, Format, SendRequest};
use serenity::all::{
    ButtonStyle, CommandOptionType, CreateActionRow, CreateAllowedMentions, CreateButton,
    CreateCommand, CreateCommandOption, CreateEmbed, CreateInputText,
    CreateInteractionResponseFollowup, CreateMessage, CreateModal, EditInteractionResponse,
    EditMessage, InputTextStyle,
};

/// Discord's limits, in UTF-16 code units as Discord counts them.
pub const EMBED_DESCRIPTION_LIMIT: usize = 4096;
pub const EMBED_TITLE_LIMIT: usize = 256;
pub const CONTENT_LIMIT: usize = 2000;
pub const BUTTON_LABEL_LIMIT: usize = 80;
pub const CUSTOM_ID_LIMIT: usize = 100;
pub const BUTTONS_PER_ROW: usize = 5;
pub const ROWS_PER_MESSAGE: usize = 5;
pub const MODAL_TITLE_LIMIT: usize = 45;
pub const MODAL_FIELDS_LIMIT: usize = 5;
pub const INPUT_LABEL_LIMIT: usize = 45;
pub const INPUT_PLACEHOLDER_LIMIT: usize = 100;

/// A send request Discord would refuse; the host should not have made it.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum FormatError {
    #[error(
        "the message has no `discord` part: give this channel `formats = [\"discord\"]` (parts were: {0})"
    )]
    NoDiscordPart(String),
    #[error("the `discord` part has no text")]
    Empty,
    #[error(
        "chunk {index} of the `discord` part is {length} UTF-16 units long, over Discord's embed limit of {EMBED_DESCRIPTION_LIMIT}: the host's renderer must split it"
    )]
    ChunkTooLong { index: usize, length: usize },
    #[error(
        "{0} buttons on one message: Discord allows {max} (five rows of five)",
        max = BUTTONS_PER_ROW * ROWS_PER_MESSAGE
    )]
    TooManyButtons(usize),
    #[error("a button id of {0} bytes is over Discord's custom_id limit of {CUSTOM_ID_LIMIT}")]
    CustomIdTooLong(usize),
    #[error(
        "the form {0:?} has more than {MODAL_FIELDS_LIMIT} fields, more than a Discord modal holds"
    )]
    TooManyFields(String),
}

fn utf16_len(text: &str) -> usize {
    text.encode_utf16().count()
}

/// Cuts `text` to at most `limit` UTF-16 units, marking a cut with `…`.
pub fn truncate(text: &str, limit: usize) -> String {
    if utf16_len(text) <= limit {
        return text.to_owned();
    }
    let mut out = String::new();
    let mut used = 0;
    for c in text.chars() {
        if used + c.len_utf16() > limit - 1 {
            break;
        }
        used += c.len_utf16();
        out.push(c);
    }
    out.push('…');
    out
}

/// An empty mention list: Discord then pings nobody, whatever the text says.
pub fn no_mentions() -> CreateAllowedMentions {
    CreateAllowedMentions::new()
}

/// Escapes plain text (host replies, status lines) for Discord Markdown so it
/// shows literally. Mentions are disarmed by [`no_mentions`], not here.
pub fn escape_markdown(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut line_start = true;
    for c in text.chars() {
        let special = matches!(
            c,
            '\\' | '*' | '_' | '~' | '`' | '|' | '[' | ']' | '(' | ')' | '<' | '>'
        ) || (line_start && matches!(c, '#' | '-' | '+'));
        if special {
            out.push('\\');
        }
        out.push(c);
        line_start = c == '\n' || (line_start && c == ' ');
    }
    out
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

/// Buttons in rows of five. Labels longer than Discord allows are cut; ids
/// are the host's signed action ids and go out unchanged.
pub fn action_rows(actions: &[Action]) -> Result<Vec<CreateActionRow>, FormatError> {
    if actions.len() > BUTTONS_PER_ROW * ROWS_PER_MESSAGE {
        return Err(FormatError::TooManyButtons(actions.len()));
    }
    if let Some(long) = actions.iter().find(|a| a.id.len() > CUSTOM_ID_LIMIT) {
        return Err(FormatError::CustomIdTooLong(long.id.len()));
    }
    Ok(actions
        .chunks(BUTTONS_PER_ROW)
        .map(|row| {
            CreateActionRow::Buttons(
                row.iter()
                    .map(|action| {
                        CreateButton::new(action.id.clone())
                            .label(truncate(&action.label, BUTTON_LABEL_LIMIT))
                            .style(ButtonStyle::Primary)
                    })
                    .collect(),
            )
        })
        .collect())
}

/// The `discord` part's chunks (embed descriptions, already split within
/// [`EMBED_DESCRIPTION_LIMIT`]), checked against Discord's limits.
fn discord_chunks(request: &SendRequest) -> Result<Vec<&String>, FormatError> {
    let part = request
        .message
        .parts
        .iter()
        .find(|part| part.format == Format::Discord)
        .ok_or_else(|| {
            FormatError::NoDiscordPart(
                request
                    .message
                    .parts
                    .iter()
                    .map(|p| p.format.as_str())
                    .collect::<Vec<_>>()
                    .join(", "),
            )
        })?;
    let chunks: Vec<&String> = part
        .chunks
        .iter()
        .filter(|c| !c.trim().is_empty())
        .collect();
    if chunks.is_empty() {
        return Err(FormatError::Empty);
    }
    if let Some((index, chunk)) = chunks
        .iter()
        .enumerate()
        .find(|(_, c)| utf16_len(c) > EMBED_DESCRIPTION_LIMIT)
    {
        return Err(FormatError::ChunkTooLong {
            index,
            length: utf16_len(chunk),
        });
    }
    Ok(chunks)
}

/// The embed of chunk `index`; the subject titles the first.
fn chunk_embed(request: &SendRequest, index: usize, chunk: &str) -> CreateEmbed {
    let embed = CreateEmbed::new().description(chunk);
    match (index, &request.message.subject) {
        (0, Some(subject)) => embed.title(truncate(subject, EMBED_TITLE_LIMIT)),
        _ => embed,
    }
}

/// A channel post's status line ("2 of 3 acknowledged") as message text.
fn post_status(request: &SendRequest) -> Option<String> {
    let status = request.post.as_ref()?.status.as_deref()?;
    Some(truncate(&escape_markdown(status), CONTENT_LIMIT))
}

/// A learning message: one Discord message per chunk of the `discord` part,
/// each an embed; the subject titles the first, the buttons go on the last
/// (the message a person has read to the end), and so does a channel
/// post's status line, as the text above its embed.
pub fn learning_messages(request: &SendRequest) -> Result<Vec<CreateMessage>, FormatError> {
    let chunks = discord_chunks(request)?;
    let rows = action_rows(&request.actions)?;
    let last = chunks.len() - 1;
    Ok(chunks
        .into_iter()
        .enumerate()
        .map(|(index, chunk)| {
            let message = CreateMessage::new()
                .embed(chunk_embed(request, index, chunk))
                .allowed_mentions(no_mentions());
            if index != last {
                return message;
            }
            let message = match post_status(request) {
                Some(status) => message.content(status),
                None => message,
            };
            if rows.is_empty() {
                message
            } else {
                message.components(rows.clone())
            }
        })
        .collect())
}

/// The edit of a channel post's last message: the last chunk's embed, the
/// status line and the buttons, all replaced, so the post shows exactly
/// what a new post of this request would.
pub fn post_edit(request: &SendRequest) -> Result<EditMessage, FormatError> {
    let chunks = discord_chunks(request)?;
    let last = chunks.len() - 1;
    Ok(EditMessage::new()
        .content(post_status(request).unwrap_or_default())
        .embed(chunk_embed(request, last, chunks[last]))
        .components(action_rows(&request.actions)?)
        .allowed_mentions(no_mentions()))
}

/// The edit that shows an answered button press on the message it was on:
/// the status line above the embed, and only `keep` as buttons.
pub fn status_edit(status: &str, keep: &[Action]) -> Result<EditInteractionResponse, FormatError> {
    Ok(EditInteractionResponse::new()
        .content(truncate(&escape_markdown(status), CONTENT_LIMIT))
        .components(action_rows(keep)?)
        .allowed_mentions(no_mentions()))
}

/// The edit of a deferred slash-command response: the host's text, with its
/// buttons.
pub fn command_edit(
    text: &str,
    actions: &[Action],
) -> Result<EditInteractionResponse, FormatError> {
    Ok(EditInteractionResponse::new()
        .content(text)
        .components(action_rows(actions)?)
        .allowed_mentions(no_mentions()))
}

/// A follow-up message to an interaction, seen only by the person when
/// `private`.
pub fn followup(
    text: &str,
    actions: &[Action],
    private: bool,
) -> Result<CreateInteractionResponseFollowup, FormatError> {
    Ok(CreateInteractionResponseFollowup::new()
        .content(text)
        .components(action_rows(actions)?)
        .ephemeral(private)
        .allowed_mentions(no_mentions()))
}

/// The modal a form button opens; its custom id is the action id, so the
/// submission says which action it answers.
pub fn modal(action_id: &str, form: &Form) -> Result<CreateModal, FormatError> {
    if form.fields.len() > MODAL_FIELDS_LIMIT {
        return Err(FormatError::TooManyFields(form.title.clone()));
    }
    let rows = form
        .fields
        .iter()
        .map(|field| {
            let style = if field.multiline {
                InputTextStyle::Paragraph
            } else {
                InputTextStyle::Short
            };
            let mut input = CreateInputText::new(
                style,
                truncate(&field.label, INPUT_LABEL_LIMIT),
                field.id.clone(),
            )
            .required(field.required);
            if let Some(placeholder) = &field.placeholder {
                input = input.placeholder(truncate(placeholder, INPUT_PLACEHOLDER_LIMIT));
            }
            if let Some(value) = &field.value {
                input = input.value(value.clone());
            }
            if let Some(max) = field.max_length {
                input = input.max_length(max.min(4000));
            }
            CreateActionRow::InputText(input)
        })
        .collect();
    Ok(CreateModal::new(action_id, truncate(&form.title, MODAL_TITLE_LIMIT)).components(rows))
}

/// The slash commands the bot offers, in the host's vocabulary.
pub fn commands() -> Vec<CreateCommand> {
    let text_option = |name: &str, description: &str| {
        CreateCommandOption::new(CommandOptionType::String, name, description).required(true)
    };
    vec![
        CreateCommand::new("pending")
            .description("List the learning you have not acknowledged yet"),
        CreateCommand::new("link")
            .description("Link this Discord account with the one-time code you were given")
            .add_option(text_option("code", "The one-time code, e.g. 4K7Q2M")),
        CreateCommand::new("ack")
            .description("Acknowledge a learning item")
            .add_option(text_option("item", "The item's id, shown under its title")),
        CreateCommand::new("help").description("What this bot does and how to use it"),
    ]
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use cascade_plugin_api::{FormField, Message, MessagePart, Recipient};
    use serde_json::{Value, json};

    pub(crate) fn request(chunks: &[&str], actions: Vec<Action>) -> SendRequest {
        SendRequest {
            delivery_id: "d-1".to_owned(),
            idempotency_key: "k-1".to_owned(),
            channel: "discord".to_owned(),
            recipient: Recipient {
                person_id: "p-1".to_owned(),
                display_name: "Sam".to_owned(),
                address: "4001".to_owned(),
            },
            message: Message {
                subject: Some("Seven-minute briefing: neglect".to_owned()),
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

    pub(crate) fn action(id: &str, label: &str) -> Action {
        Action {
            id: id.to_owned(),
            label: label.to_owned(),
            form: None,
        }
    }

    fn json_of(value: impl serde::Serialize) -> Value {
        serde_json::to_value(value).unwrap()
    }

    #[test]
    fn each_chunk_is_an_embed_with_the_title_first_and_the_buttons_last() {
        let messages = learning_messages(&request(
            &["part one", "part two"],
            vec![action("a1", "Acknowledge")],
        ))
        .unwrap();
        let [first, second] = [json_of(&messages[0]), json_of(&messages[1])];
        assert_eq!(
            first["embeds"][0]["title"],
            "Seven-minute briefing: neglect"
        );
        assert_eq!(first["embeds"][0]["description"], "part one");
        assert!(first.get("components").is_none());
        assert!(second["embeds"][0].get("title").is_none());
        assert_eq!(second["components"][0]["components"][0]["custom_id"], "a1");
        assert_eq!(
            second["components"][0]["components"][0]["label"],
            "Acknowledge"
        );
        for message in [first, second] {
            assert_eq!(message["allowed_mentions"]["parse"], json!([]));
        }
    }

    #[test]
    fn a_channel_post_carries_its_status_on_the_last_message_and_its_edit_replaces_it() {
        let mut post = request(
            &["part one", "part *two*"],
            vec![action("p1", "Acknowledge")],
        );
        post.post = Some(cascade_plugin_api::ChannelPost {
            status: Some("0 of 3 acknowledged".to_owned()),
            edit: None,
        });
        let messages = learning_messages(&post).unwrap();
        assert!(json_of(&messages[0]).get("content").is_none());
        let last = json_of(&messages[1]);
        assert_eq!(last["content"], "0 of 3 acknowledged");
        assert_eq!(last["components"][0]["components"][0]["custom_id"], "p1");

        post.post.as_mut().unwrap().status = Some("2 of 3 acknowledged".to_owned());
        let edit = json_of(post_edit(&post).unwrap());
        assert_eq!(edit["content"], "2 of 3 acknowledged");
        assert_eq!(edit["embeds"][0]["description"], "part *two*");
        assert!(edit["embeds"][0].get("title").is_none());
        assert_eq!(edit["components"][0]["components"][0]["custom_id"], "p1");
        assert_eq!(edit["allowed_mentions"]["parse"], json!([]));
    }

    #[test]
    fn twelve_buttons_make_three_rows_and_twenty_six_are_refused() {
        let actions: Vec<Action> = (0..12).map(|n| action(&format!("a{n}"), "x")).collect();
        let rows = json_of(action_rows(&actions).unwrap());
        assert_eq!(rows.as_array().unwrap().len(), 3);
        assert_eq!(rows[2]["components"].as_array().unwrap().len(), 2);
        let actions: Vec<Action> = (0..26).map(|n| action(&format!("a{n}"), "x")).collect();
        assert_eq!(action_rows(&actions), Err(FormatError::TooManyButtons(26)));
    }

    #[test]
    fn an_over_long_chunk_or_missing_part_is_refused_naming_the_fix() {
        let long = "x".repeat(EMBED_DESCRIPTION_LIMIT + 1);
        assert!(matches!(
            learning_messages(&request(&[&long], Vec::new())),
            Err(FormatError::ChunkTooLong { index: 0, .. })
        ));
        let mut no_part = request(&["x"], Vec::new());
        no_part.message.parts[0].format = Format::Telegram;
        assert!(
            learning_messages(&no_part)
                .unwrap_err()
                .to_string()
                .contains("formats = [\"discord\"]")
        );
    }

    #[test]
    fn plain_text_is_escaped_so_markdown_shows_literally() {
        assert_eq!(
            escape_markdown("*bold* _x_ `c` [l](u)\n# h"),
            "\\*bold\\* \\_x\\_ \\`c\\` \\[l\\]\\(u\\)\n\\# h"
        );
    }

    #[test]
    fn long_text_splits_within_the_limit_at_line_breaks() {
        let text = format!("{}\n{}", "a".repeat(1500), "b".repeat(1500));
        let pieces = split_text(&text, CONTENT_LIMIT);
        assert_eq!(pieces.len(), 2);
        assert!(pieces[1].starts_with('b'));
        let pieces = split_text(&"c".repeat(4500), CONTENT_LIMIT);
        assert_eq!(
            pieces.iter().map(|p| p.len()).collect::<Vec<_>>(),
            [2000, 2000, 500]
        );
    }

    #[test]
    fn a_form_becomes_a_modal_of_text_inputs_keyed_by_field_id() {
        let form = Form {
            title: "Confirm you cascaded this to your team".to_owned(),
            fields: vec![
                FormField {
                    id: "present".to_owned(),
                    label: "How many were present?".to_owned(),
                    placeholder: Some("12".to_owned()),
                    value: None,
                    required: true,
                    max_length: Some(4),
                    multiline: false,
                    input: None,
                },
                FormField {
                    id: "note".to_owned(),
                    label: "Note".to_owned(),
                    placeholder: None,
                    value: None,
                    required: false,
                    max_length: None,
                    multiline: true,
                    input: None,
                },
            ],
        };
        let modal = json_of(modal("confirm-1", &form).unwrap());
        assert_eq!(modal["custom_id"], "confirm-1");
        assert_eq!(modal["title"], "Confirm you cascaded this to your team");
        let input = &modal["components"][0]["components"][0];
        assert_eq!(input["type"], 4);
        assert_eq!(input["custom_id"], "present");
        assert_eq!(input["style"], 1);
        assert_eq!(input["required"], true);
        assert_eq!(modal["components"][1]["components"][0]["style"], 2);
    }

    #[test]
    fn the_commands_are_pending_link_ack_and_help() {
        let commands = json_of(commands());
        let names: Vec<&str> = commands
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["name"].as_str().unwrap())
            .collect();
        assert_eq!(names, ["pending", "link", "ack", "help"]);
        assert_eq!(commands[1]["options"][0]["name"], "code");
        assert_eq!(commands[1]["options"][0]["required"], true);
    }
}
