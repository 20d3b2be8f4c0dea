//! Checking the references a directory file makes to other files (a team's
//! agency, a person's team and manager, a champion's person, teams and
//! theme), against either the other files or what the store already holds.

use super::{DirectoryError, DirectoryFile};
use crate::content::Taxonomy;
use std::collections::{HashMap, HashSet};
use std::path::Path;

/// The ids a file may refer to.
#[derive(Debug, Default)]
pub(crate) struct KnownIds {
    pub agencies: HashSet<String>,
    /// Team id to the id of the agency it belongs to.
    pub teams: HashMap<String, String>,
    pub people: HashSet<String>,
}

/// Where the known ids came from, so the help says where to fix a reference.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Against {
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
pub(crate) fn check_references(
    file: &DirectoryFile,
    path: &Path,
    known: &KnownIds,
    taxonomy: &Taxonomy,
    against: Against,
) -> Vec<DirectoryError> {
    let mut errors = Vec::new();
    let mut missing = |line: usize,
                       column: &str,
                       what: &str,
                       id: &str,
                       file_name: &str,
                       ids: &mut dyn Iterator<Item = &String>| {
        let close = closest(id, ids);
        errors.push(DirectoryError::cell(
            path,
            line,
            column,
            format!("no {what} \"{id}\""),
            Some(against.help(file_name, &format!("{what}s"), close.as_deref())),
        ));
    };
    match file {
        DirectoryFile::Agencies(_) => {}
        DirectoryFile::Teams(rows) => {
            for row in rows {
                let team = &row.value;
                if !known.agencies.contains(&team.agency_id) {
                    missing(
                        row.line,
                        "agency_id",
                        "agency",
                        &team.agency_id,
                        "agencies.csv",
                        &mut known.agencies.iter(),
                    );
                }
            }
        }
        DirectoryFile::People(rows) => {
            let people: HashSet<&String> = rows.iter().map(|r| &r.value.id).collect();
            let mut wrong_agency = Vec::new();
            for row in rows {
                let person = &row.value;
                if !known.agencies.contains(&person.agency_id) {
                    missing(
                        row.line,
                        "agency_id",
                        "agency",
                        &person.agency_id,
                        "agencies.csv",
                        &mut known.agencies.iter(),
                    );
                }
                match known.teams.get(&person.team_id) {
                    None => missing(row.line, "team_id", "team", &person.team_id, "teams.csv", &mut known.teams.keys()),
                    Some(agency) if *agency != person.agency_id => wrong_agency.push(DirectoryError::cell(
                        path,
                        row.line,
                        "team_id",
                        format!(
                            "team \"{}\" belongs to agency \"{agency}\", not \"{}\"",
                            person.team_id, person.agency_id
                        ),
                        Some("fix agency_id or team_id so the team is one of the person's agency's teams".to_owned()),
                    )),
                    Some(_) => {}
                }
                if let Some(manager) = &person.manager_id
                    && !people.contains(manager)
                {
                    missing(
                        row.line,
                        "manager_id",
                        "person",
                        manager,
                        "people.csv",
                        &mut people.iter().copied(),
                    );
                }
            }
            errors.extend(wrong_agency);
        }
        DirectoryFile::Champions(rows) => {
            let mut unknown_themes = Vec::new();
            for row in rows {
                let champion = &row.value;
                if !known.people.contains(&champion.person_id) {
                    missing(
                        row.line,
                        "person_id",
                        "person",
                        &champion.person_id,
                        "people.csv",
                        &mut known.people.iter(),
                    );
                }
                if let Err(unknown) = taxonomy.check(&champion.theme) {
                    unknown_themes.push(DirectoryError::cell(
                        path,
                        row.line,
                        "theme",
                        unknown.message(),
                        Some(unknown.help()),
                    ));
                }
                for team in &champion.team_ids {
                    if !known.teams.contains_key(team) {
                        missing(
                            row.line,
                            "teams",
                            "team",
                            team,
                            "teams.csv",
                            &mut known.teams.keys(),
                        );
                    }
                }
            }
            errors.extend(unknown_themes);
        }
    }
    errors.sort_by_key(|e| e.line);
    errors
}

/// The known id closest to a mistyped one, if any is close enough to guess.
fn closest(id: &str, ids: &mut dyn Iterator<Item = &String>) -> Option<String> {
    ids.map(|known| (strsim::jaro_winkler(id, known), known))
        .filter(|(score, _)| *score >= 0.85)
        .max_by(|a, b| a.0.total_cmp(&b.0).then_with(|| b.1.cmp(a.1)))
        .map(|(_, known)| known.clone())
}
