//! The rollout file as written: every value with its place in the text,
//! before any check. The typed parse fails only on a wrong shape (a table
//! where a list belongs); every value is checked later by `validate`.

use serde::Deserialize;
use toml::Spanned;

pub(super) type RawValue = Option<Spanned<toml::Value>>;
pub(in crate::rollout) type RawList = Option<Spanned<Vec<Spanned<toml::Value>>>>;

/// The file as written, every value with its place in the text. Unknown keys
/// are found separately by [`unknown_keys`](super::keys::unknown_keys), so all of them are reported.
#[derive(Deserialize)]
pub(in crate::rollout) struct RawDefinition {
    pub(super) id: RawValue,
    pub(in crate::rollout) item: RawValue,
    pub(super) newsletter_issue: RawValue,
    pub(super) newsletter: RawValue,
    pub(super) start: RawValue,
    pub(super) urgent: RawValue,
    pub(super) reacknowledge: RawValue,
    pub(in crate::rollout) channels: RawList,
    pub(super) fallback: RawValue,
    pub(super) ack_deadline_days: RawValue,
    pub(super) reminder_days: RawList,
    pub(super) escalation_days: RawList,
    pub(super) champion_reminder_days: RawList,
    pub(super) max_attempts: RawValue,
    pub(super) unsubscribe_url: RawValue,
    pub(in crate::rollout) audience: Option<Spanned<RawSelector>>,
    pub(in crate::rollout) team_posts: RawList,
    pub(in crate::rollout) waves: Option<Spanned<Vec<Spanned<RawWave>>>>,
    #[serde(default)]
    pub(super) follow_ups: Vec<Spanned<RawFollowUp>>,
    pub(super) enrol: RawValue,
    pub(super) open_until: RawValue,
    pub(super) refreshers: RawList,
    pub(in crate::rollout) bulletin: Option<Spanned<RawBulletin>>,
}

/// A recurring bulletin's `[bulletin]` table.
#[derive(Deserialize)]
pub(in crate::rollout) struct RawBulletin {
    pub(super) title: RawValue,
    pub(super) every: RawValue,
    pub(super) on: RawValue,
    pub(super) at: RawValue,
    pub(in crate::rollout) themes: RawList,
    pub(super) newsletter: RawValue,
}

#[derive(Deserialize)]
pub(in crate::rollout) struct RawSelector {
    pub(in crate::rollout) agencies: RawList,
    pub(in crate::rollout) teams: RawList,
    pub(in crate::rollout) roles: RawList,
    pub(in crate::rollout) champion_themes: RawList,
    pub(in crate::rollout) people: RawList,
    pub(in crate::rollout) exclude: Option<Box<Spanned<RawSelector>>>,
}

#[derive(Deserialize)]
pub(in crate::rollout) struct RawWave {
    pub(super) name: RawValue,
    pub(super) after_days: RawValue,
    pub(super) champions_of_item_themes: RawValue,
    pub(in crate::rollout) agencies: RawList,
    pub(in crate::rollout) teams: RawList,
    pub(in crate::rollout) roles: RawList,
    pub(in crate::rollout) people: RawList,
}

#[derive(Deserialize)]
pub(super) struct RawFollowUp {
    pub(super) after_days: RawValue,
    pub(super) question: RawValue,
    pub(super) answers: RawList,
    pub(super) used: RawValue,
    pub(super) reasons: RawList,
}

impl RawDefinition {
    /// The spanned form of a file that parsed, for locating what a definition names.
    pub(in crate::rollout) fn parse(text: &str) -> Option<RawDefinition> {
        toml::from_str(text).ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_raw_file_keeps_each_value_with_its_place_in_the_text() {
        let text = "id = \"a\"\nitem = \"b\"\n[[waves]]\nname = \"W\"\nteams = [\"t\"]\n";
        let raw = RawDefinition::parse(text).expect("the shape is right");
        let item = raw.item.expect("item is there");
        assert_eq!(&text[item.span()], "\"b\"");
        let waves = raw.waves.expect("waves are there");
        let teams = waves.get_ref()[0].get_ref().teams.as_ref().expect("teams");
        assert_eq!(&text[teams.span()], "[\"t\"]");
        assert!(raw.channels.is_none() && raw.follow_ups.is_empty());
    }

    #[test]
    fn values_of_any_type_parse_but_a_wrong_shape_does_not() {
        assert!(RawDefinition::parse("id = 3\nurgent = \"yes\"\n").is_some());
        assert!(RawDefinition::parse("waves = 3\n").is_none());
        assert!(RawDefinition::parse("audience = [\"x\"]\n").is_none());
    }
}
