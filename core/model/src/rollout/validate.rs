//! A parsed rollout checked against the project: every item, agency, team,
//! person, role, theme and channel it names must exist. Each problem names
//! the line the reference came from and, when one is close, the likely fix.

use super::definition::{
    Problems, RawDefinition, RawList, RawSelector, RolloutDefinition, Selector,
};
use super::{RolloutError, closest};
use crate::directory::Directory;
use std::collections::BTreeSet;
use std::path::Path;
use toml::Spanned;

/// What a project has, for checking what a rollout names.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Known {
    pub items: BTreeSet<String>,
    pub agencies: BTreeSet<String>,
    pub teams: BTreeSet<String>,
    pub people: BTreeSet<String>,
    /// Role names seen on people in the directory.
    pub roles: BTreeSet<String>,
    /// Theme ids of the taxonomy.
    pub themes: BTreeSet<String>,
    /// Channel instance names configured in `cascade.toml`.
    pub channels: BTreeSet<String>,
}

impl Known {
    /// The agencies, teams, people and roles of a directory; items, themes
    /// and channels are left for the caller.
    pub fn from_directory(directory: &Directory) -> Known {
        Known {
            agencies: directory.agencies.iter().map(|a| a.id.clone()).collect(),
            teams: directory.teams.iter().map(|t| t.id.clone()).collect(),
            people: directory.people.iter().map(|p| p.id.clone()).collect(),
            roles: directory
                .people
                .iter()
                .flat_map(|p| p.roles.iter().cloned())
                .collect(),
            ..Known::default()
        }
    }
}

/// Checks every reference of `def`, parsed from `text` at `path`, against
/// `known`. All problems are returned at once.
pub fn validate(
    def: &RolloutDefinition,
    path: &Path,
    text: &str,
    known: &Known,
) -> Vec<RolloutError> {
    let raw = RawDefinition::parse(text);
    let mut check = Check {
        p: Problems::new(path, text),
        known,
    };
    // A digest's item is built from the articles when it is
    // planned, a bulletin's from what each occurrence gathers.
    if def.digest.is_none() && def.bulletin.is_none() {
        check.one(
            &def.item,
            raw.as_ref()
                .and_then(|r| r.item.as_ref())
                .map(|v| v.span().start),
            Kind::Item,
        );
    }
    check.list(
        &def.channels,
        raw.as_ref().and_then(|r| r.channels.as_ref()),
        Kind::Channel,
    );
    check.list(
        &def.team_posts,
        raw.as_ref().and_then(|r| r.team_posts.as_ref()),
        Kind::Channel,
    );

    if let Some(bulletin) = &def.bulletin {
        check.list(
            &bulletin.themes,
            raw.as_ref()
                .and_then(|r| r.bulletin.as_ref())
                .and_then(|b| b.get_ref().themes.as_ref()),
            Kind::Theme,
        );
    }
    let audience = raw
        .as_ref()
        .and_then(|r| r.audience.as_ref())
        .map(|a| a.get_ref());
    check.selector(&def.audience.include, audience);
    check.selector(
        &def.audience.exclude,
        audience
            .and_then(|a| a.exclude.as_deref())
            .map(|e| e.get_ref()),
    );

    let raw_waves = raw
        .as_ref()
        .and_then(|r| r.waves.as_ref())
        .map(|w| w.get_ref());
    for (i, wave) in def.waves.iter().enumerate() {
        let raw = raw_waves.and_then(|w| w.get(i)).map(|w| w.get_ref());
        check.list(
            &wave.agencies,
            raw.and_then(|w| w.agencies.as_ref()),
            Kind::Agency,
        );
        check.list(&wave.teams, raw.and_then(|w| w.teams.as_ref()), Kind::Team);
        check.list(&wave.roles, raw.and_then(|w| w.roles.as_ref()), Kind::Role);
        check.list(
            &wave.people,
            raw.and_then(|w| w.people.as_ref()),
            Kind::Person,
        );
    }
    check.p.errors
}

#[derive(Clone, Copy)]
enum Kind {
    Item,
    Channel,
    Agency,
    Team,
    Role,
    Theme,
    Person,
}

impl Kind {
    fn what(self) -> &'static str {
        match self {
            Kind::Item => "content item",
            Kind::Channel => "channel instance",
            Kind::Agency => "agency",
            Kind::Team => "team",
            Kind::Role => "person with the role",
            Kind::Theme => "theme",
            Kind::Person => "active person",
        }
    }

    fn source(self) -> &'static str {
        match self {
            Kind::Item => "the `id`s of the files in content/",
            Kind::Channel => "the [[channels]] names in cascade.toml",
            Kind::Agency => "the ids in directory/agencies.csv",
            Kind::Team => "the ids in directory/teams.csv",
            Kind::Role => "the roles in directory/people.csv",
            Kind::Theme => "the [[themes]] ids in cascade.toml",
            Kind::Person => "the ids in directory/people.csv",
        }
    }

    fn ids(self, known: &Known) -> &BTreeSet<String> {
        match self {
            Kind::Item => &known.items,
            Kind::Channel => &known.channels,
            Kind::Agency => &known.agencies,
            Kind::Team => &known.teams,
            Kind::Role => &known.roles,
            Kind::Theme => &known.themes,
            Kind::Person => &known.people,
        }
    }
}

struct Check<'a> {
    p: Problems<'a>,
    known: &'a Known,
}

impl Check<'_> {
    /// Reports `id` unless known; `offset` is where the file names it.
    fn one(&mut self, id: &str, offset: Option<usize>, kind: Kind) {
        let ids = kind.ids(self.known);
        if ids.contains(id) {
            return;
        }
        let help = match closest(id, ids.iter().map(String::as_str)) {
            Some(guess) => format!("did you mean \"{guess}\"? Use one of {}", kind.source()),
            None => format!("use one of {}", kind.source()),
        };
        let line = offset.map(|o| self.p.line(o)).unwrap_or(1);
        self.p
            .at_line(line, format!("no {} \"{id}\"", kind.what()), help);
    }

    /// Checks each id of a list, locating it by its entry in the raw list.
    fn list(
        &mut self,
        ids: &[String],
        raw: Option<&Spanned<Vec<Spanned<toml::Value>>>>,
        kind: Kind,
    ) {
        for id in ids {
            let offset = raw.and_then(|list| {
                list.get_ref()
                    .iter()
                    .find(|v| v.get_ref().as_str().map(str::trim) == Some(id.as_str()))
                    .map(|v| v.span().start)
                    .or(Some(list.span().start))
            });
            self.one(id, offset, kind);
        }
    }

    fn selector(&mut self, selector: &Selector, raw: Option<&RawSelector>) {
        let field = |f: fn(&RawSelector) -> &RawList| raw.and_then(|r| f(r).as_ref());
        self.list(&selector.agencies, field(|r| &r.agencies), Kind::Agency);
        self.list(&selector.teams, field(|r| &r.teams), Kind::Team);
        self.list(&selector.roles, field(|r| &r.roles), Kind::Role);
        self.list(
            &selector.champion_themes,
            field(|r| &r.champion_themes),
            Kind::Theme,
        );
        self.list(&selector.people, field(|r| &r.people), Kind::Person);
    }
}
