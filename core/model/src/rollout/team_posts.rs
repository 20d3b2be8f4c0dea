//! Team posts in a rollout: which teams of the audience get the item posted
//! in their shared channel, on which channel instance, and when (the first
//! send to any member of the team); and the checks that such a rollout can
//! be carried out (the instance has team channels for known teams, and its
//! plugin can carry buttons and edit what it sent). Pure: the caller hands
//! in the configuration's text, the directory's teams and the audience's
//! members per team.

use super::query::TeamTally;
use super::{RolloutDefinition, RolloutError, closest};
use crate::content::SourceLocation;
use crate::directory::Team;
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

/// What a configured channel instance offers team posts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TeamPostChannel<'a> {
    pub name: &'a str,
    pub plugin: &'a str,
    /// Team id to the team channel's address.
    pub team_channels: &'a BTreeMap<String, String>,
    /// Its plugin can post in a shared channel with buttons and edit the
    /// post: the `channel-posts`, `buttons` and `edit` capabilities.
    pub posts_in_channels: bool,
}

/// One post the rollout will make.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlannedTeamPost {
    pub team_id: String,
    pub team_name: String,
    /// The channel instance.
    pub channel: String,
    pub address: String,
    /// Members of the team in the audience: the count's "of M".
    pub members: usize,
    /// Unix milliseconds: the first send to a member of the team.
    pub due_at: i64,
}

/// The 1-based line of the first line of `text` that contains `needle`
/// after line `from` (1 when nothing matches).
fn line_of(text: &str, needle: &str, from: usize) -> usize {
    text.lines()
        .enumerate()
        .skip(from.saturating_sub(1))
        .find(|(_, line)| line.contains(needle))
        .map_or(1, |(n, _)| n + 1)
}

fn error(path: &Path, line: usize, message: String, help: String) -> RolloutError {
    RolloutError {
        at: SourceLocation {
            path: path.to_owned(),
            line,
        },
        message,
        help,
    }
}

/// Checks the instances `def.team_posts` names. Instances that are not
/// configured at all are left to [`super::validate`], which reports them.
/// `config_text` is `cascade.toml` as read from `config_path`, for lines.
pub fn check_team_posts(
    def: &RolloutDefinition,
    (rollout_path, rollout_text): (&Path, &str),
    (config_path, config_text): (&Path, &str),
    channels: &[TeamPostChannel<'_>],
    teams: &[Team],
) -> Vec<RolloutError> {
    let mut errors = Vec::new();
    let rollout_line = line_of(rollout_text, "team_posts", 1);
    let teams: BTreeSet<&str> = teams.iter().map(|t| t.id.as_str()).collect();
    for name in &def.team_posts {
        let Some(channel) = channels.iter().find(|c| c.name == *name) else {
            continue;
        };
        if !channel.posts_in_channels {
            errors.push(error(
                rollout_path,
                rollout_line,
                format!(
                    "team_posts names channel \"{name}\", whose plugin \"{}\" cannot post in a team's channel with a button and edit the post, which a team post's live count needs",
                    channel.plugin
                ),
                "name a channel whose plugin has the `channel-posts`, `buttons` and `edit` capabilities (`cascade plugins` lists them), such as discord, or remove it from team_posts".to_owned(),
            ));
            continue;
        }
        if channel.team_channels.is_empty() {
            errors.push(error(
                rollout_path,
                rollout_line,
                format!("team_posts names channel \"{name}\", which has no team_channels"),
                format!(
                    "add team_channels = {{ \"<team id>\" = \"<channel id>\" }} to the [[channels]] entry named \"{name}\" in {}, or remove \"{name}\" from team_posts",
                    config_path.display()
                ),
            ));
            continue;
        }
        let entry_line = line_of(config_text, &format!("\"{name}\""), 1);
        for (team, address) in channel.team_channels {
            let line = line_of(config_text, &format!("\"{team}\""), entry_line);
            if !teams.contains(team.as_str()) {
                let guess = closest(team, teams.iter().copied())
                    .map(|g| format!("did you mean \"{g}\"? "))
                    .unwrap_or_default();
                errors.push(error(
                    config_path,
                    line,
                    format!("channel \"{name}\": team_channels names team \"{team}\", which is not in the directory"),
                    format!("{guess}use a team_id from directory/teams.csv (and run `cascade import` after adding a team)"),
                ));
            } else if address.trim().is_empty() {
                errors.push(error(
                    config_path,
                    line,
                    format!(
                        "channel \"{name}\": team_channels gives team \"{team}\" an empty address"
                    ),
                    "give the id of the team's channel, e.g. \"1200000000000000301\" for Discord"
                        .to_owned(),
                ));
            }
        }
    }
    errors
}

/// The posts a checked rollout makes: for each instance it names, in
/// order, each team with a channel there and at least one member in the
/// audience, due when the first of those members is sent the item.
/// `by_team` are the audience's members per team.
pub fn plan_team_posts(
    def: &RolloutDefinition,
    channels: &[TeamPostChannel<'_>],
    teams: &[Team],
    by_team: &[TeamTally],
) -> Vec<PlannedTeamPost> {
    let mut posts = Vec::new();
    for name in &def.team_posts {
        let Some(channel) = channels.iter().find(|c| c.name == *name) else {
            continue;
        };
        for (team_id, address) in channel.team_channels {
            let Some(tally) = by_team.iter().find(|t| t.team_id == *team_id) else {
                continue;
            };
            let team_name = teams
                .iter()
                .find(|t| t.id == *team_id)
                .map_or_else(|| team_id.clone(), |t| t.name.clone());
            posts.push(PlannedTeamPost {
                team_id: team_id.clone(),
                team_name,
                channel: name.clone(),
                address: address.clone(),
                members: tally.members,
                due_at: tally.first_due_at,
            });
        }
    }
    posts
}

/// The line a team post shows, e.g. "2 of 3 acknowledged".
pub fn count_line(acknowledged: u32, total: u32) -> String {
    format!("{acknowledged} of {total} acknowledged")
}
