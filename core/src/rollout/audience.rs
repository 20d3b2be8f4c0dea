//! Who receives a rollout and in which wave: the audience's selectors matched
//! against the directory's active people. Each person appears at most once,
//! however many selectors name them.

use super::definition::{RolloutDefinition, Selector, Wave};
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
