//! The partnership's directory: agencies, teams, people, champions and the
//! channel identities people are reached on, read from the CSV files an HR
//! export produces. Everything here is plain data and validation; storing it
//! is the store's job.

mod csv_file;
mod references;

pub use csv_file::find_duplicates;
pub use csv_file::{DirectoryFile, FileKind, Row, read_csv, uk_mobile};
pub use references::{Against, KnownIds, check_references};

use crate::content::Taxonomy;
use serde::{Deserialize, Serialize};
use std::collections::{HashMap, HashSet};
use std::fmt;
use std::path::{Path, PathBuf};

/// The channel name under which a person's directory email is kept.
pub const EMAIL_CHANNEL: &str = "email";
/// The identity under which a person's directory mobile number is kept,
/// for text-message channels (`identity = "mobile"`).
pub const MOBILE_CHANNEL: &str = "mobile";

/// A member organisation of the partnership.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "sqlx", derive(sqlx::FromRow))]
pub struct Agency {
    pub id: String,
    pub name: String,
    /// Free text such as "local-authority", "police", "health", "education".
    pub kind: String,
}

/// A team inside one agency.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "sqlx", derive(sqlx::FromRow))]
pub struct Team {
    pub id: String,
    pub agency_id: String,
    pub name: String,
}

/// Someone who works with children: the audience of a rollout.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Person {
    pub id: String,
    pub display_name: String,
    /// Lowercased, so the same mailbox is one identity whatever the export's case.
    pub email: String,
    pub agency_id: String,
    pub team_id: String,
    /// Lowercase slugs such as `practitioner` or `safeguarding-lead`; sorted, no repeats.
    pub roles: Vec<String>,
    pub manager_id: Option<String>,
    /// An IANA zone name such as `Europe/London`; the partnership's zone applies when absent.
    pub time_zone: Option<String>,
    /// A UK mobile number, normalised to `+447…` (twelve digits after the
    /// `+`), from the optional `mobile` column.
    pub mobile: Option<String>,
    /// When they work, in the canonical form of
    /// [`crate::works::WorkPattern`] (e.g. `Mon-Fri 08:00-18:00`), from the
    /// optional `works` column; the partnership's quiet hours apply when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub works: Option<String>,
    /// The day they are back at work after an absence (leave, sickness),
    /// from the optional `absent_until` column: until the start of that day
    /// in their zone nothing non-urgent goes to them or about them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub absent_until: Option<chrono::NaiveDate>,
}

/// A practitioner who receives learning on one theme first and cascades it
/// to the teams they cover.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Champion {
    pub person_id: String,
    /// A theme id from the taxonomy.
    pub theme: String,
    /// Sorted, no repeats.
    pub team_ids: Vec<String>,
}

/// The teams each champion covers, (team id, name) sorted by name: what a
/// champion may confirm a cascade for, on the web form and in chat alike.
pub fn teams_covered(
    champions: &[Champion],
    teams: &[Team],
) -> HashMap<String, Vec<(String, String)>> {
    let names: HashMap<&str, &str> = teams
        .iter()
        .map(|t| (t.id.as_str(), t.name.as_str()))
        .collect();
    let mut covered: HashMap<String, Vec<(String, String)>> = HashMap::new();
    for champion in champions {
        let teams = covered.entry(champion.person_id.clone()).or_default();
        for id in &champion.team_ids {
            if let Some(name) = names.get(id.as_str()) {
                teams.push((id.clone(), (*name).to_owned()));
            }
        }
    }
    for teams in covered.values_mut() {
        teams.sort_by(|a, b| a.1.cmp(&b.1).then_with(|| a.0.cmp(&b.0)));
        teams.dedup();
    }
    covered
}

/// An address on which a person can be reached: their email now, chat
/// accounts once the bots link them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "sqlx", derive(sqlx::FromRow))]
pub struct ChannelIdentity {
    pub person_id: String,
    /// The channel's name, e.g. [`EMAIL_CHANNEL`], `telegram`, `discord`.
    pub channel: String,
    /// The address or external id on that channel.
    pub address: String,
}

/// The whole directory as read from a project's `directory/` folder.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Directory {
    pub agencies: Vec<Agency>,
    pub teams: Vec<Team>,
    pub people: Vec<Person>,
    pub champions: Vec<Champion>,
}

/// A problem with a directory file, naming the file, the line, the column and the fix.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct DirectoryError {
    pub path: PathBuf,
    /// 1-based line in the file (the header is line 1); `None` for the file as a whole.
    pub line: Option<usize>,
    pub column: Option<String>,
    pub message: String,
    pub help: Option<String>,
}

impl fmt::Display for DirectoryError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.path.display())?;
        if let Some(line) = self.line {
            write!(f, ":{line}")?;
        }
        f.write_str(": ")?;
        if let Some(column) = &self.column {
            write!(f, "column \"{column}\": ")?;
        }
        f.write_str(&self.message)?;
        if let Some(help) = &self.help {
            write!(f, "\n  help: {help}")?;
        }
        Ok(())
    }
}

impl DirectoryError {
    fn file(path: &Path, message: impl Into<String>, help: impl Into<String>) -> Self {
        DirectoryError {
            path: path.to_owned(),
            line: None,
            column: None,
            message: message.into(),
            help: Some(help.into()),
        }
    }

    pub(crate) fn cell(
        path: &Path,
        line: usize,
        column: &str,
        message: impl Into<String>,
        help: Option<String>,
    ) -> Self {
        DirectoryError {
            path: path.to_owned(),
            line: Some(line),
            column: Some(column.to_owned()),
            message: message.into(),
            help,
        }
    }
}

impl Directory {
    /// Reads every `*.csv` file in `dir`, recognising each by its header, and
    /// checks rows and the references between files. Returns what could be
    /// read together with every problem found. Agencies, teams and people
    /// files are required; a champions file is optional.
    pub fn load_dir(dir: &Path, taxonomy: &Taxonomy) -> (Directory, Vec<DirectoryError>) {
        let mut errors = Vec::new();
        let paths = match csv_paths(dir) {
            Ok(paths) => paths,
            Err(e) => {
                errors.push(DirectoryError::file(
                    dir,
                    format!("cannot read the directory folder: {e}"),
                    "create it with agencies.csv, teams.csv, people.csv and champions.csv",
                ));
                return (Directory::default(), errors);
            }
        };

        let mut files: HashMap<FileKind, (PathBuf, DirectoryFile)> = HashMap::new();
        let mut rejected_ids = HashSet::new();
        for path in paths {
            let parsed = csv_file::parse_csv(&path);
            errors.extend(parsed.errors);
            rejected_ids.extend(parsed.rejected_ids);
            let Some(file) = parsed.file else { continue };
            let kind = file.kind();
            if let Some((first, _)) = files.get(&kind) {
                errors.push(DirectoryError::file(
                    &path,
                    format!(
                        "a second {} file (the first is {})",
                        kind.file_name(),
                        first.display()
                    ),
                    "keep one file of each kind in the directory folder",
                ));
                continue;
            }
            files.insert(kind, (path, file));
        }

        for kind in [FileKind::Agencies, FileKind::Teams, FileKind::People] {
            if !files.contains_key(&kind) {
                errors.push(DirectoryError::file(
                    dir,
                    format!("no {} file", kind.file_name()),
                    format!(
                        "add {} with the header {}",
                        kind.file_name(),
                        kind.header_hint()
                    ),
                ));
            }
        }

        let mut directory = Directory::default();
        for (_, file) in files.values() {
            match file {
                DirectoryFile::Agencies(rows) => directory.agencies = values(rows),
                DirectoryFile::Teams(rows) => directory.teams = values(rows),
                DirectoryFile::People(rows) => directory.people = values(rows),
                DirectoryFile::Champions(rows) => directory.champions = values(rows),
            }
        }

        let known = KnownIds {
            agencies: directory.agencies.iter().map(|a| a.id.clone()).collect(),
            teams: directory
                .teams
                .iter()
                .map(|t| (t.id.clone(), t.agency_id.clone()))
                .collect(),
            people: directory.people.iter().map(|p| p.id.clone()).collect(),
            rejected: rejected_ids,
        };
        let mut kinds: Vec<_> = files.values().collect();
        kinds.sort_by_key(|(_, file)| file.kind());
        for (path, file) in kinds {
            errors.extend(check_references(
                file,
                path,
                &known,
                taxonomy,
                Against::Files,
            ));
        }
        (directory, errors)
    }
}

fn values<T: Clone>(rows: &[Row<T>]) -> Vec<T> {
    rows.iter().map(|r| r.value.clone()).collect()
}

fn csv_paths(dir: &Path) -> std::io::Result<Vec<PathBuf>> {
    let mut paths = Vec::new();
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        let is_csv = path
            .extension()
            .is_some_and(|ext| ext.eq_ignore_ascii_case("csv"));
        if is_csv && path.is_file() {
            paths.push(path);
        }
    }
    paths.sort();
    Ok(paths)
}

#[cfg(test)]
mod tests;
