//! Checking the references a directory file makes to other files (a team's
//! agency, a person's team and manager, a champion's person, teams and
//! theme), against either the other files or what the store already holds.

use super::{DirectoryError, DirectoryFile, Row};
use crate::content::Taxonomy;
use std::collections::{HashMap, HashSet};
use std::path::Path;

/// The ids a file may refer to.
#[derive(Debug, Default)]
pub struct KnownIds {
    pub agencies: HashSet<String>,
    /// Team id to the id of the agency it belongs to.
    pub teams: HashMap<String, String>,
    pub people: HashSet<String>,
    /// Ids of rows rejected for their own problems: references to them are
    /// not reported again, the row's own problem is the one to fix.
    pub rejected: HashSet<String>,
}

/// Where the known ids came from, so the help says where to fix a reference.
#[derive(Debug, Clone, Copy)]
pub enum Against {
    /// The other files of the same directory folder.
    Files,
    /// What earlier imports wrote to the store.
    Store,
}

impl Against {
    fn help(self, file_name: &str, what: &str, close: Option<&str>) -> String {
        let guess = close.map_or(String::new(), |c| format!("did you mean \"{c}\"? "));
        match self {
            Against::Files => format!("{guess}known {what} are listed in {file_name}"),
            Against::Store => {
                format!(
                    "{guess}import {file_name} first, or fix the id (known {what} are those imported)"
                )
            }
        }
    }
}

/// Every reference in `file` that points at nothing. A person's manager is
/// looked up among the people of the same file, since a people file lists
/// everyone.
pub fn check_references(
    file: &DirectoryFile,
    path: &Path,
    known: &KnownIds,
    taxonomy: &Taxonomy,
    against: Against,
) -> Vec<DirectoryError> {
    let mut check = Check {
        path,
        known,
        against,
        errors: Vec::new(),
    };
    match file {
        DirectoryFile::Agencies(_) => {}
        DirectoryFile::Teams(rows) => {
            for row in rows {
                check.agency(row.line, "agency_id", &row.value.agency_id);
            }
        }
        DirectoryFile::People(rows) => {
            let people: HashSet<&String> = rows.iter().map(|r| &r.value.id).collect();
            for Row {
                line,
                value: person,
            } in rows
            {
                check.agency(*line, "agency_id", &person.agency_id);
                match known.teams.get(&person.team_id) {
                    None if known.rejected.contains(&person.team_id) => {}
                    None => check.team(*line, "team_id", &person.team_id),
                    Some(agency) if *agency != person.agency_id => check.report(
                        *line,
                        "team_id",
                        format!(
                            "team \"{}\" belongs to agency \"{agency}\", not \"{}\"",
                            person.team_id, person.agency_id
                        ),
                        "fix agency_id or team_id so the team is one of the person's agency's teams"
                            .to_owned(),
                    ),
                    Some(_) => {}
                }
                if let Some(manager) = &person.manager_id
                    && !people.contains(manager)
                    && !known.rejected.contains(manager)
                {
                    let close = closest(manager, people.iter().copied());
                    check.missing(*line, "manager_id", Target::Person, manager, close);
                }
            }
        }
        DirectoryFile::Champions(rows) => {
            for Row {
                line,
                value: champion,
            } in rows
            {
                if !known.people.contains(&champion.person_id) {
                    let close = closest(&champion.person_id, known.people.iter());
                    check.missing(
                        *line,
                        "person_id",
                        Target::Person,
                        &champion.person_id,
                        close,
                    );
                }
                if let Err(unknown) = taxonomy.check(&champion.theme) {
                    check.report(*line, "theme", unknown.message(), unknown.help());
                }
                for team in &champion.team_ids {
                    check.team(*line, "teams", team);
                }
            }
        }
    }
    check.errors
}

/// What a reference points at.
#[derive(Clone, Copy)]
enum Target {
    Agency,
    Team,
    Person,
}

struct Check<'a> {
    path: &'a Path,
    known: &'a KnownIds,
    against: Against,
    errors: Vec<DirectoryError>,
}

impl Check<'_> {
    fn agency(&mut self, line: usize, column: &str, id: &str) {
        if !self.known.agencies.contains(id) {
            let close = closest(id, self.known.agencies.iter());
            self.missing(line, column, Target::Agency, id, close);
        }
    }

    fn team(&mut self, line: usize, column: &str, id: &str) {
        if !self.known.teams.contains_key(id) {
            let close = closest(id, self.known.teams.keys());
            self.missing(line, column, Target::Team, id, close);
        }
    }

    fn missing(
        &mut self,
        line: usize,
        column: &str,
        target: Target,
        id: &str,
        close: Option<String>,
    ) {
        let (what, plural, file_name) = match target {
            Target::Agency => ("agency", "agencies", "agencies.csv"),
            Target::Team => ("team", "teams", "teams.csv"),
            Target::Person => ("person", "people", "people.csv"),
        };
        if self.known.rejected.contains(id) {
            return;
        }
        let help = self.against.help(file_name, plural, close.as_deref());
        self.report(line, column, format!("no {what} \"{id}\""), help);
    }

    fn report(&mut self, line: usize, column: &str, message: String, help: String) {
        self.errors.push(DirectoryError::cell(
            self.path,
            line,
            column,
            message,
            Some(help),
        ));
    }
}

/// The known id closest to a mistyped one, if any is close enough to guess.
fn closest<'a>(id: &str, ids: impl Iterator<Item = &'a String>) -> Option<String> {
    ids.map(|known| (strsim::jaro_winkler(id, known), known))
        .filter(|(score, _)| *score >= 0.85)
        .max_by(|a, b| a.0.total_cmp(&b.0).then_with(|| b.1.cmp(a.1)))
        .map(|(_, known)| known.clone())
}
