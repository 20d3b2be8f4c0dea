//! The chat buttons a delivery of an item carries. Below both `delivery`
//! (which puts them on the messages it sends) and `inbound` (which puts the
//! confirmation button back after an acknowledgement, and acknowledges from
//! a list of pending items), so neither imports the other for them.

use crate::ack::{CASCADE_METHODS, MAX_NOTE_CHARS};
use cascade_model::actions::{ActionKey, ActionRef};
use cascade_plugin_api::{Action, FieldChoice, FieldInput, Form, FormField};
use chrono::NaiveDate;

/// The buttons a delivery of an item carries: acknowledge, and for a
/// champion who covers teams, "I've cascaded this to my team" (opening a
/// form at once where the channel has forms).
pub fn item_actions(
    keys: &ActionKey,
    delivery_id: i64,
    champion_teams: &[(String, String)],
    forms: bool,
    today: NaiveDate,
) -> Vec<Action> {
    let mut actions = vec![Action {
        id: keys.sign(&ActionRef::Ack(delivery_id)),
        label: "Acknowledge".to_owned(),
        form: None,
    }];
    if let Some(action) = confirm_action(keys, delivery_id, champion_teams, forms, today) {
        actions.push(action);
    }
    actions
}

/// "I've cascaded this to my team", for a champion who covers teams; with
/// `forms`, it opens the confirmation form.
pub fn confirm_action(
    keys: &ActionKey,
    delivery_id: i64,
    champion_teams: &[(String, String)],
    forms: bool,
    today: NaiveDate,
) -> Option<Action> {
    if champion_teams.is_empty() {
        return None;
    }
    let field = |id: &str, label: &str| FormField {
        id: id.to_owned(),
        label: label.to_owned(),
        placeholder: None,
        value: None,
        required: true,
        max_length: Some(100),
        multiline: false,
        input: None,
    };
    let choices = |pairs: &mut dyn Iterator<Item = (&str, &str)>| FieldInput::Choice {
        choices: pairs
            .map(|(value, label)| FieldChoice {
                value: value.to_owned(),
                label: label.to_owned(),
            })
            .collect(),
    };
    let team_names: Vec<&str> = champion_teams.iter().map(|(_, n)| n.as_str()).collect();
    let form = forms.then(|| Form {
        title: "Confirm you cascaded this".to_owned(),
        fields: vec![
            FormField {
                placeholder: Some(truncate(&team_names.join(", "), 100)),
                value: (champion_teams.len() == 1).then(|| champion_teams[0].1.clone()),
                input: Some(choices(
                    &mut champion_teams
                        .iter()
                        .map(|(_, name)| (name.as_str(), name.as_str())),
                )),
                ..field("team", "Team")
            },
            FormField {
                value: Some(today.to_string()),
                max_length: Some(10),
                input: Some(FieldInput::Date),
                ..field("session_date", "Date of the session (YYYY-MM-DD)")
            },
            FormField {
                max_length: Some(6),
                input: Some(FieldInput::Number {
                    min: Some(0),
                    max: None,
                }),
                ..field("present", "Number present")
            },
            FormField {
                placeholder: Some(
                    CASCADE_METHODS
                        .iter()
                        .map(|(_, l)| *l)
                        .collect::<Vec<_>>()
                        .join(", "),
                ),
                input: Some(choices(&mut CASCADE_METHODS.iter().copied())),
                ..field("method", "How you shared it")
            },
            FormField {
                required: false,
                max_length: Some(MAX_NOTE_CHARS as u16),
                multiline: true,
                ..field("note", "Note (optional)")
            },
        ],
    });
    Some(Action {
        id: keys.sign(&ActionRef::Confirm(delivery_id)),
        label: "I've cascaded this to my team".to_owned(),
        form,
    })
}

/// At most `chars` characters of `text`, the last one an ellipsis when
/// it is cut (button labels and placeholders have limits).
pub fn truncate(text: &str, chars: usize) -> String {
    match text.char_indices().nth(chars.saturating_sub(1)) {
        Some((cut, _)) => format!("{}…", &text[..cut]),
        None => text.to_owned(),
    }
}
