//! Rollout definitions: the TOML files in a project's `rollouts/` folder, as
//! plain data. Parsing reports every problem at once with its file and line;
//! `to_toml` writes a definition back so that parsing it gives it again.
//!
//! The model types live here; `raw` holds the file as written (every value
//! with its place in the text), `keys` finds keys no table knows, `validate`
//! checks each field and builds the model, and `to_toml` writes it back.

mod bulletin;
mod keys;
mod raw;
mod to_toml;
mod validate;

pub(super) use raw::{RawDefinition, RawList, RawSelector};
pub use to_toml::to_toml;
pub(super) use validate::Problems;
pub use validate::parse_definition;

use chrono::{NaiveDate, NaiveDateTime};
use serde::{Deserialize, Serialize};

/// One rollout: which item goes to whom, when, and how it is chased.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RolloutDefinition {
    /// A slug: lowercase letters, digits and dashes.
    pub id: String,
    /// The content item's id. For a digest, the id of the issue's digest
    /// item, filled in when the rollout is planned (empty when parsed).
    pub item: String,
    /// Set for a digest: every article of one newsletter issue in one
    /// message per person, acknowledged as one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub digest: Option<Digest>,
    /// Set for a recurring bulletin (`[bulletin]`): at each occurrence the
    /// items published since the last one, in one digest rolled out as a
    /// rollout of its own; `item` is then empty.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bulletin: Option<super::Bulletin>,
    /// Local wall-clock time in the partnership's zone.
    pub start: NaiveDateTime,
    /// Urgent rollouts ignore quiet hours.
    pub urgent: bool,
    /// A re-acknowledgement round: the audience is everyone who acknowledged
    /// an earlier version of the item, and they get its `what_changed` note
    /// rather than the whole item.
    #[serde(default)]
    pub reacknowledge: bool,
    /// Channel instance names in preference order; at least one.
    pub channels: Vec<String>,
    /// On a dead letter, try the person's next channel.
    pub fallback: bool,
    /// Days after the person's own wave send: 1 to 365.
    pub ack_deadline_days: u32,
    /// Days after the person's wave send, ascending, each before the deadline.
    pub reminder_days: Vec<u32>,
    /// Days after the deadline, ascending, 1 to 365; rung n is escalation level n.
    pub escalation_days: Vec<u32>,
    /// Days after the rollout's deadline (its last wave's), ascending, 1 to
    /// 365: a reminder to each champion of the item's themes in the
    /// audience who covers a team of the audience with no cascade
    /// confirmation of the item yet. Part of the escalation ladder.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub champion_reminder_days: Vec<u32>,
    /// Attempts per outbox row before it dead-letters, 1 to 20.
    pub max_attempts: u32,
    /// Set only for learning people may opt out of (a newsletter, never
    /// mandatory learning): where they do so, an `https:` or `mailto:` URL.
    /// Email then carries `List-Id` and `List-Unsubscribe` headers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unsubscribe_url: Option<String>,
    pub audience: Audience,
    /// Channel instances whose `team_channels` get a post of the item: once
    /// per team of the audience that has a channel there, when the team's
    /// first member is sent it, with a live count of the team's
    /// acknowledgements. Individual deliveries go out as well.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub team_posts: Vec<String>,
    /// At least one; only the last may be a catch-all.
    pub waves: Vec<Wave>,
    pub follow_ups: Vec<FollowUp>,
    /// Spaced refreshers (issue 19): calendar days after each person's own
    /// acknowledgement, ascending, 1 to 365; written `refreshers = ["30d",
    /// "90d"]`. At each, a short nudge with one key message of the item
    /// and one of its check questions, in turn. Never chased.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub refreshers: Vec<u32>,
    /// Who becomes a member: the audience when the rollout starts (the
    /// default), or also people who come into it later (`enrol =
    /// "joiners"`), each with their own timetable.
    #[serde(default, skip_serializing_if = "Enrol::is_start")]
    pub enrol: Enrol,
    /// With `enrol = "joiners"`, the last local day on which an import
    /// enrols joiners; `None` means the day of the rollout's deadline
    /// (its last wave's). Always `None` for a rollout fixed at its start.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub open_until: Option<NaiveDate>,
    /// Set for a key item of the induction (`[induction]` in
    /// cascade.toml): only people new to the directory join, each on a
    /// timetable counted from the day they joined (see
    /// [`super::induction_member_definition`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub induction: Option<super::InductionStep>,
}

/// Who a rollout takes in, as `enrol` in its file.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Enrol {
    /// The audience when the rollout starts; nobody joins later.
    #[default]
    Start,
    /// Also people who come into the audience while it is open (new in an
    /// import, moved into it, or newly given a role or theme it covers).
    Joiners,
}

impl Enrol {
    pub fn is_start(&self) -> bool {
        *self == Enrol::Start
    }

    pub fn as_str(&self) -> &'static str {
        match self {
            Enrol::Start => "start",
            Enrol::Joiners => "joiners",
        }
    }
}

/// The newsletter issue a digest rollout sends.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Digest {
    /// The issue, `YYYY-MM`, as the articles' `issue`.
    pub issue: String,
    /// The newsletter's name, needed only when two newsletters share an issue.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub newsletter: Option<String>,
}

/// Who a rollout is for: the union of the selectors, minus the exclusions.
/// No selector at all means every active person.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Audience {
    #[serde(flatten)]
    pub include: Selector,
    #[serde(default, skip_serializing_if = "Selector::is_empty")]
    pub exclude: Selector,
}

/// A set of people named by directory ids: anyone matching any list.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Selector {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub agencies: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub teams: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub roles: Vec<String>,
    /// Champions of these theme ids.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub champion_themes: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub people: Vec<String>,
}

impl Selector {
    pub fn is_empty(&self) -> bool {
        self.agencies.is_empty()
            && self.teams.is_empty()
            && self.roles.is_empty()
            && self.champion_themes.is_empty()
            && self.people.is_empty()
    }
}

impl Audience {
    /// True when the audience names nobody in particular: every active person.
    pub fn is_everyone(&self) -> bool {
        self.include.is_empty() && self.exclude.is_empty()
    }
}

/// One wave: who it takes (those not taken by an earlier wave) and when.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Wave {
    pub name: String,
    /// Days after the rollout's start, at the same local wall-clock time: 0 to 365.
    pub after_days: u32,
    /// Champions whose theme is one of the item's themes.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub champions_of_item_themes: bool,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub agencies: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub teams: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub roles: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub people: Vec<String>,
}

impl Wave {
    /// A wave without selectors takes everyone not in an earlier wave.
    pub fn is_catch_all(&self) -> bool {
        !self.champions_of_item_themes
            && self.agencies.is_empty()
            && self.teams.is_empty()
            && self.roles.is_empty()
            && self.people.is_empty()
    }
}

/// A question asked some days after the person's wave send, with fixed answers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FollowUp {
    /// Days after the person's wave send: 1 to 365.
    pub after_days: u32,
    pub question: String,
    /// Two to five.
    pub answers: Vec<String>,
    /// The answer that says the learning was used; `None`: the first.
    /// Every other answer says it was not (yet).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub used: Option<String>,
    /// Reasons offered after an answer that says the learning was not
    /// used (e.g. "Need more training"): two to five, or none.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub reasons: Vec<String>,
}

impl FollowUp {
    /// The answer that says the learning was used.
    pub fn used_answer(&self) -> &str {
        self.used
            .as_deref()
            .or(self.answers.first().map(String::as_str))
            .unwrap_or_default()
    }

    /// Whether `answer` says the learning was used.
    pub fn says_used(&self, answer: &str) -> bool {
        answer == self.used_answer()
    }
}
