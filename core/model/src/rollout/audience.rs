//! Who receives a rollout and in which wave: the audience's selectors matched
//! against the directory's active people. Each person appears at most once,
//! however many selectors name them.
//!
//! [`resolve`] states the rules over a directory in memory; planning asks
//! the store the same question as an [`AudienceQuery`] so that a million
//! people are never read into memory, and a property test holds the two to
//! the same answers.

use super::definition::{RolloutDefinition, Selector, Wave};
use super::query::{
    AudienceCounts, AudienceQuery, AudienceSource, TeamTally, WaveQuery, WaveTally,
};
use crate::directory::{Directory, Person};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};

/// A person in a rollout's audience, with the index of their wave.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Member {
    pub person_id: String,
    pub wave: usize,
}

/// The audience split into waves.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Resolved {
    /// Ordered by wave, then person id.
    pub members: Vec<Member>,
    /// People in the audience whom no wave takes; they receive nothing.
    pub unassigned: usize,
}

/// Matches the audience against `directory.people`, which holds active people
/// only, and puts each person in the first wave that takes them.
pub fn resolve(def: &RolloutDefinition, item_themes: &[String], directory: &Directory) -> Resolved {
    let mut themes_of: BTreeMap<&str, BTreeSet<&str>> = BTreeMap::new();
    for c in &directory.champions {
        themes_of.entry(&c.person_id).or_default().insert(&c.theme);
    }
    let champion_of = |person: &Person, themes: &[String]| {
        themes_of
            .get(person.id.as_str())
            .is_some_and(|own| themes.iter().any(|t| own.contains(t.as_str())))
    };
    let selects = |s: &Selector, person: &Person| {
        s.agencies.contains(&person.agency_id)
            || s.teams.contains(&person.team_id)
            || s.people.contains(&person.id)
            || person.roles.iter().any(|r| s.roles.contains(r))
            || champion_of(person, &s.champion_themes)
    };
    let takes = |w: &Wave, person: &Person| {
        w.is_catch_all()
            || (w.champions_of_item_themes && champion_of(person, item_themes))
            || w.agencies.contains(&person.agency_id)
            || w.teams.contains(&person.team_id)
            || w.people.contains(&person.id)
            || person.roles.iter().any(|r| w.roles.contains(r))
    };

    let audience = &def.audience;
    let mut seen = BTreeSet::new();
    let mut resolved = Resolved::default();
    for person in &directory.people {
        let included = audience.include.is_empty() || selects(&audience.include, person);
        if !included || selects(&audience.exclude, person) || !seen.insert(person.id.as_str()) {
            continue;
        }
        match def.waves.iter().position(|w| takes(w, person)) {
            Some(wave) => resolved.members.push(Member {
                person_id: person.id.clone(),
                wave,
            }),
            None => resolved.unassigned += 1,
        }
    }
    resolved.members.sort_by(|a, b| {
        a.wave
            .cmp(&b.wave)
            .then_with(|| a.person_id.cmp(&b.person_id))
    });
    resolved
}

/// The audience of `def` as a query the store answers
/// (`cascade_store::Audiences`): the same rules as [`resolve`], or for a
/// re-acknowledgement round everyone who acknowledged another version of
/// the item, in the first wave. `first_due(i)` is wave `i`'s first send.
pub fn audience_query(
    def: &RolloutDefinition,
    item_id: &str,
    item_version: &str,
    item_themes: &[String],
    first_due: &dyn Fn(usize) -> i64,
) -> AudienceQuery {
    if def.reacknowledge {
        return AudienceQuery {
            source: AudienceSource::Reacknowledge {
                version: item_version.to_owned(),
            },
            waves: vec![WaveQuery {
                everyone: true,
                takes: Selector::default(),
                first_due_at: first_due(0),
            }],
            item_id: item_id.to_owned(),
            absences_after: def.start.date().format("%Y-%m-%d").to_string(),
            home_zone: String::new(),
            timing: Vec::new(),
        };
    }
    let waves = def
        .waves
        .iter()
        .enumerate()
        .map(|(i, w)| WaveQuery {
            everyone: w.is_catch_all(),
            takes: Selector {
                agencies: w.agencies.clone(),
                teams: w.teams.clone(),
                roles: w.roles.clone(),
                champion_themes: if w.champions_of_item_themes {
                    item_themes.to_vec()
                } else {
                    Vec::new()
                },
                people: w.people.clone(),
            },
            first_due_at: first_due(i),
        })
        .collect();
    AudienceQuery {
        source: AudienceSource::Directory {
            include: def.audience.include.clone(),
            exclude: def.audience.exclude.clone(),
        },
        waves,
        item_id: item_id.to_owned(),
        absences_after: def.start.date().format("%Y-%m-%d").to_string(),
        home_zone: String::new(),
        timing: Vec::new(),
    }
}

/// Counts a [`resolve`]d audience as `cascade_store::Audiences::count_audience`
/// does, `by_kind` per entry of `channels`: `reachable(person)` gives the
/// channels that reach them in order, the first of which counts.
pub fn count_resolved(
    resolved: &Resolved,
    waves: usize,
    channels: &[String],
    reachable: &dyn Fn(&str) -> Vec<String>,
) -> AudienceCounts {
    let mut counts = AudienceCounts {
        waves: vec![
            WaveTally {
                by_kind: vec![0; channels.len()],
                ..WaveTally::default()
            };
            waves
        ],
        unassigned: resolved.unassigned,
        already_reached: 0,
    };
    for member in &resolved.members {
        let Some(tally) = counts.waves.get_mut(member.wave) else {
            continue;
        };
        tally.people += 1;
        let first = reachable(&member.person_id)
            .first()
            .and_then(|c| channels.iter().position(|x| x == c));
        match first {
            Some(i) => tally.by_kind[i] += 1,
            None => tally.unreachable += 1,
        }
    }
    counts
}

/// A [`resolve`]d audience's members per team, as
/// `cascade_store::Audiences::audience_by_team` gives them; `members` are
/// (person id, first send in Unix milliseconds).
pub fn tally_teams(directory: &Directory, members: &[(&str, i64)]) -> Vec<TeamTally> {
    let team_of: BTreeMap<&str, &str> = directory
        .people
        .iter()
        .map(|p| (p.id.as_str(), p.team_id.as_str()))
        .collect();
    let mut by_team: BTreeMap<&str, (usize, i64)> = BTreeMap::new();
    for (person, due_at) in members {
        if let Some(team) = team_of.get(person) {
            let entry = by_team.entry(team).or_insert((0, *due_at));
            entry.0 += 1;
            entry.1 = entry.1.min(*due_at);
        }
    }
    by_team
        .into_iter()
        .map(|(team, (members, first_due_at))| TeamTally {
            team_id: team.to_owned(),
            members,
            first_due_at,
        })
        .collect()
}
