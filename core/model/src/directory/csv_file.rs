//! Reading one directory CSV file: recognising its kind from the header and
//! checking each row on its own (shapes, required cells, duplicate ids).
//! References to other files are checked in `references`.

use super::{Agency, Champion, DirectoryError, Person, Team};
use csv::StringRecord;
use std::collections::HashMap;
use std::path::Path;

/// The four kinds of directory file, told apart by their header columns.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum FileKind {
    Agencies,
    Teams,
    People,
    Champions,
}

impl FileKind {
    const ALL: [FileKind; 4] = [
        FileKind::Agencies,
        FileKind::Teams,
        FileKind::People,
        FileKind::Champions,
    ];

    /// The conventional file name, used in messages.
    pub fn file_name(self) -> &'static str {
        match self {
            FileKind::Agencies => "agencies.csv",
            FileKind::Teams => "teams.csv",
            FileKind::People => "people.csv",
            FileKind::Champions => "champions.csv",
        }
    }

    fn required(self) -> &'static [&'static str] {
        match self {
            FileKind::Agencies => &["agency_id", "name", "kind"],
            FileKind::Teams => &["team_id", "agency_id", "name"],
            FileKind::People => &[
                "person_id",
                "display_name",
                "email",
                "agency_id",
                "team_id",
                "roles",
            ],
            FileKind::Champions => &["person_id", "theme", "teams"],
        }
    }

    fn optional(self) -> &'static [&'static str] {
        match self {
            FileKind::People => &["manager_id", "time_zone", "mobile", "works", "absent_until"],
            _ => &[],
        }
    }

    /// The column holding the row's id; a header without it is not this kind.
    fn key(self) -> &'static str {
        self.required()[0]
    }

    pub(super) fn header_hint(self) -> String {
        let mut columns = self.required().to_vec();
        columns.extend(self.optional());
        columns.join(",")
    }
}

/// One parsed row and the line it came from (the header is line 1).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Row<T> {
    pub line: usize,
    pub value: T,
}

/// The parsed rows of one directory file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DirectoryFile {
    Agencies(Vec<Row<Agency>>),
    Teams(Vec<Row<Team>>),
    People(Vec<Row<Person>>),
    Champions(Vec<Row<Champion>>),
}

impl DirectoryFile {
    pub fn kind(&self) -> FileKind {
        match self {
            DirectoryFile::Agencies(_) => FileKind::Agencies,
            DirectoryFile::Teams(_) => FileKind::Teams,
            DirectoryFile::People(_) => FileKind::People,
            DirectoryFile::Champions(_) => FileKind::Champions,
        }
    }
}

/// Reads and checks one directory file. Every problem in the file is
/// returned at once; references to other files are not checked here.
pub fn read_csv(path: &Path) -> Result<DirectoryFile, Vec<DirectoryError>> {
    match parse_csv(path) {
        ParsedFile {
            file: Some(file),
            errors,
            ..
        } if errors.is_empty() => Ok(file),
        ParsedFile { errors, .. } => Err(errors),
    }
}

/// What [`parse_csv`] read: the good rows, every problem, and the ids of the
/// rows left out for their own problems.
pub(super) struct ParsedFile {
    pub file: Option<DirectoryFile>,
    pub errors: Vec<DirectoryError>,
    pub rejected_ids: Vec<String>,
}

/// Like [`read_csv`] but keeps the good rows of a file that has bad ones, and
/// the ids of the bad ones, so a whole-folder check does not also report every
/// reference to a bad row.
pub(super) fn parse_csv(path: &Path) -> ParsedFile {
    let failed = |errors| ParsedFile {
        file: None,
        errors,
        rejected_ids: Vec::new(),
    };
    let mut reader = match csv::ReaderBuilder::new()
        .flexible(true)
        .trim(csv::Trim::All)
        .from_path(path)
    {
        Ok(reader) => reader,
        Err(e) => {
            let error = DirectoryError::file(
                path,
                format!("cannot read the file: {e}"),
                "check that the file exists and is readable",
            );
            return failed(vec![error]);
        }
    };
    let header = match reader.headers() {
        Ok(header) => header.clone(),
        Err(e) => return failed(vec![unreadable(path, 1, &e)]),
    };
    let columns = match columns(path, &header) {
        Ok(columns) => columns,
        Err(error) => return failed(vec![error]),
    };

    let mut errors = Vec::new();
    let mut records = Vec::new();
    for result in reader.records() {
        match result {
            Ok(record) => {
                let line = record.position().map_or(0, |p| p.line() as usize);
                records.push((line, record));
            }
            Err(e) => {
                let line = e.position().map_or(0, |p| p.line() as usize);
                errors.push(unreadable(path, line, &e));
            }
        }
    }

    let mut cells = Cells {
        path,
        columns: &columns.index,
        errors: &mut errors,
        line: 0,
        record: &StringRecord::new(),
        rejected_ids: Vec::new(),
        key: columns.kind.key(),
    };
    let file = match columns.kind {
        FileKind::Agencies => DirectoryFile::Agencies(cells.rows(&records, Cells::agency)),
        FileKind::Teams => DirectoryFile::Teams(cells.rows(&records, Cells::team)),
        FileKind::People => DirectoryFile::People(cells.rows(&records, Cells::person)),
        FileKind::Champions => DirectoryFile::Champions(cells.rows(&records, Cells::champion)),
    };
    let rejected_ids = std::mem::take(&mut cells.rejected_ids);
    errors.extend(find_duplicates(&file, path));
    ParsedFile {
        file: Some(file),
        errors,
        rejected_ids,
    }
}

fn unreadable(path: &Path, line: usize, e: &csv::Error) -> DirectoryError {
    DirectoryError {
        path: path.to_owned(),
        line: Some(line),
        column: None,
        message: format!("cannot read this row: {e}"),
        help: Some("save the file as UTF-8 CSV with one row per line".to_owned()),
    }
}

struct Columns {
    kind: FileKind,
    index: HashMap<&'static str, usize>,
}

/// Recognises the file's kind from its header and finds each known column.
fn columns(path: &Path, header: &StringRecord) -> Result<Columns, DirectoryError> {
    let header_error = |message: String, help: String| DirectoryError {
        path: path.to_owned(),
        line: Some(1),
        column: None,
        message,
        help: Some(help),
    };
    let mut names: HashMap<String, usize> = HashMap::new();
    for (i, name) in header.iter().enumerate() {
        let name = name.trim_start_matches('\u{feff}').trim().to_lowercase();
        if name.is_empty() {
            continue;
        }
        if names.insert(name.clone(), i).is_some() {
            return Err(header_error(
                format!("the header has column \"{name}\" twice"),
                "remove or rename one of them".to_owned(),
            ));
        }
    }

    let present = |kind: FileKind| {
        kind.required()
            .iter()
            .filter(|c| names.contains_key(**c))
            .count()
    };
    let complete = FileKind::ALL
        .into_iter()
        .filter(|k| present(*k) == k.required().len())
        .max_by_key(|k| k.required().len());
    let kind = match complete {
        Some(kind) => kind,
        None => {
            let closest = FileKind::ALL
                .into_iter()
                .filter(|k| names.contains_key(k.key()) && present(*k) > 1)
                .max_by_key(|k| present(*k) * 100 / k.required().len());
            let Some(kind) = closest else {
                let expected: Vec<String> = FileKind::ALL
                    .iter()
                    .map(|k| format!("{} ({})", k.file_name(), k.header_hint()))
                    .collect();
                return Err(header_error(
                    "cannot tell which directory file this is from its header".to_owned(),
                    format!("the header must be one of: {}", expected.join("; ")),
                ));
            };
            let missing: Vec<&str> = kind
                .required()
                .iter()
                .copied()
                .filter(|c| !names.contains_key(*c))
                .collect();
            return Err(header_error(
                format!(
                    "this looks like {} but the header lacks {}",
                    kind.file_name(),
                    missing.join(", ")
                ),
                format!("the header must have {}", kind.header_hint()),
            ));
        }
    };

    let index = kind
        .required()
        .iter()
        .chain(kind.optional())
        .filter_map(|c| names.get(*c).map(|i| (*c, *i)))
        .collect();
    Ok(Columns { kind, index })
}

/// Reads the cells of one row at a time, collecting every problem.
struct Cells<'a> {
    path: &'a Path,
    columns: &'a HashMap<&'static str, usize>,
    errors: &'a mut Vec<DirectoryError>,
    line: usize,
    record: &'a StringRecord,
    /// Ids of the rows left out so far.
    rejected_ids: Vec<String>,
    /// The column holding a row's id.
    key: &'static str,
}

impl<'a> Cells<'a> {
    /// Parses every record; a row with any problem is left out.
    fn rows<T>(
        &mut self,
        records: &'a [(usize, StringRecord)],
        parse: fn(&mut Self) -> Option<T>,
    ) -> Vec<Row<T>> {
        let mut rows = Vec::new();
        for (line, record) in records {
            self.line = *line;
            self.record = record;
            let before = self.errors.len();
            let value = parse(self);
            match value.filter(|_| self.errors.len() == before) {
                Some(value) => rows.push(Row { line: *line, value }),
                None => self.rejected_ids.extend(self.optional(self.key)),
            }
        }
        rows
    }

    fn error(&mut self, column: &str, message: String, help: impl Into<String>) {
        self.errors.push(DirectoryError::cell(
            self.path,
            self.line,
            column,
            message,
            Some(help.into()),
        ));
    }

    fn optional(&self, column: &str) -> Option<String> {
        let i = self.columns.get(column)?;
        let value = self.record.get(*i).unwrap_or("");
        (!value.is_empty()).then(|| value.to_owned())
    }

    fn required(&mut self, column: &str) -> Option<String> {
        let value = self.optional(column);
        if value.is_none() {
            self.error(
                column,
                "is empty".to_owned(),
                format!("every row needs a {column}"),
            );
        }
        value
    }

    fn id(&mut self, column: &str) -> Option<String> {
        let value = self.required(column)?;
        self.check_id(column, value)
    }

    fn optional_id(&mut self, column: &str) -> Option<Option<String>> {
        match self.optional(column) {
            None => Some(None),
            Some(value) => self.check_id(column, value).map(Some),
        }
    }

    fn check_id(&mut self, column: &str, value: String) -> Option<String> {
        if value.chars().any(|c| c.is_whitespace() || c == ';') {
            self.error(
                column,
                format!("\"{value}\" is not a valid id"),
                "ids have no spaces or semicolons",
            );
            return None;
        }
        Some(value)
    }

    /// A `;`-separated list of ids, sorted and without repeats; at least one.
    fn id_list(
        &mut self,
        column: &str,
        is_valid: fn(&str) -> bool,
        help: &str,
    ) -> Option<Vec<String>> {
        let value = self.required(column)?;
        let mut items: Vec<String> = value
            .split(';')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
            .collect();
        let bad: Vec<&String> = items.iter().filter(|s| !is_valid(s)).collect();
        if !bad.is_empty() {
            let bad: Vec<String> = bad.iter().map(|s| format!("\"{s}\"")).collect();
            self.error(column, format!("{} not valid", bad.join(", ")), help);
            return None;
        }
        if items.is_empty() {
            self.error(column, "lists nothing".to_owned(), help);
            return None;
        }
        items.sort();
        items.dedup();
        Some(items)
    }

    fn agency(&mut self) -> Option<Agency> {
        let id = self.id("agency_id");
        let name = self.required("name");
        let kind = self.required("kind");
        Some(Agency {
            id: id?,
            name: name?,
            kind: kind?,
        })
    }

    fn team(&mut self) -> Option<Team> {
        let id = self.id("team_id");
        let agency_id = self.id("agency_id");
        let name = self.required("name");
        Some(Team {
            id: id?,
            agency_id: agency_id?,
            name: name?,
        })
    }

    fn person(&mut self) -> Option<Person> {
        let id = self.id("person_id");
        let display_name = self.required("display_name");
        let email = self.email();
        let agency_id = self.id("agency_id");
        let team_id = self.id("team_id");
        let roles = self.id_list(
            "roles",
            is_slug,
            "list roles separated by \";\", each a lowercase slug like practitioner or safeguarding-lead",
        );
        let manager_id = self.optional_id("manager_id");
        let time_zone = self.time_zone();
        let mobile = self.mobile();
        let works = self.works();
        let absent_until = self.absent_until();
        let (id, manager_id) = (id?, manager_id?);
        if manager_id.as_deref() == Some(id.as_str()) {
            self.error(
                "manager_id",
                format!("\"{id}\" cannot be their own manager"),
                "leave manager_id empty or give the person_id of their manager",
            );
            return None;
        }
        Some(Person {
            id,
            display_name: display_name?,
            email: email?,
            agency_id: agency_id?,
            team_id: team_id?,
            roles: roles?,
            manager_id,
            time_zone: time_zone?,
            mobile: mobile?,
            works: works?,
            absent_until: absent_until?,
        })
    }

    fn champion(&mut self) -> Option<Champion> {
        let person_id = self.id("person_id");
        let theme = self.required("theme");
        let team_ids = self.id_list(
            "teams",
            |s| !s.chars().any(char::is_whitespace),
            "list the team_ids the champion covers, separated by \";\"",
        );
        Some(Champion {
            person_id: person_id?,
            theme: theme?,
            team_ids: team_ids?,
        })
    }

    fn email(&mut self) -> Option<String> {
        let value = self.required("email")?;
        if !is_email(&value) {
            self.error(
                "email",
                format!("\"{value}\" is not an email address"),
                "write it as name@organisation.example",
            );
            return None;
        }
        Some(value.to_lowercase())
    }

    fn mobile(&mut self) -> Option<Option<String>> {
        let Some(value) = self.optional("mobile") else {
            return Some(None);
        };
        match uk_mobile(&value) {
            Some(number) => Some(Some(number)),
            None => {
                self.error(
                    "mobile",
                    format!("\"{value}\" is not a UK mobile number"),
                    "write it as 07700 900123 or +44 7700 900123, or leave it empty",
                );
                None
            }
        }
    }

    fn time_zone(&mut self) -> Option<Option<String>> {
        let Some(value) = self.optional("time_zone") else {
            return Some(None);
        };
        if !is_time_zone(&value) {
            self.error(
                "time_zone",
                format!("\"{value}\" is not a time zone name"),
                "use an IANA name such as Europe/London, or leave it empty",
            );
            return None;
        }
        // The right shape but no such zone: a typo, or a name the time zone
        // database does not have.
        if let Err(e) = crate::time::time_zone(&value) {
            let hint = e.split_once("; ").map_or("", |(_, hint)| hint);
            self.error(
                "time_zone",
                format!("\"{value}\" is not a known time zone"),
                format!("{hint}, or leave it empty"),
            );
            return None;
        }
        Some(Some(value))
    }

    fn works(&mut self) -> Option<Option<String>> {
        let Some(value) = self.optional("works") else {
            return Some(None);
        };
        match crate::works::WorkPattern::parse(&value) {
            Ok(pattern) => Some(Some(pattern.to_string())),
            Err(e) => {
                self.error("works", e, crate::works::WORKS_HELP);
                None
            }
        }
    }

    fn absent_until(&mut self) -> Option<Option<chrono::NaiveDate>> {
        let Some(value) = self.optional("absent_until") else {
            return Some(None);
        };
        match chrono::NaiveDate::parse_from_str(&value, "%Y-%m-%d") {
            Ok(day) => Some(Some(day)),
            Err(_) => {
                self.error(
                    "absent_until",
                    format!("\"{value}\" is not a date"),
                    "write the day they are back at work as 2027-01-18, or leave it empty",
                );
                None
            }
        }
    }
}

/// A UK mobile number (`07` and nine more digits, or `+447` and nine more;
/// spaces, hyphens and brackets allowed) as `+447…`; `None` otherwise.
pub fn uk_mobile(text: &str) -> Option<String> {
    let digits: String = text
        .chars()
        .filter(|c| !matches!(c, ' ' | '-' | '(' | ')'))
        .collect();
    let rest = digits
        .strip_prefix("+447")
        .or_else(|| digits.strip_prefix("07"))?;
    (rest.len() == 9 && rest.chars().all(|c| c.is_ascii_digit())).then(|| format!("+447{rest}"))
}

/// Finds ids that appear on more than one row (and, for people, emails and
/// mobiles).
pub fn find_duplicates(file: &DirectoryFile, path: &Path) -> Vec<DirectoryError> {
    fn repeats<T>(
        path: &Path,
        rows: &[Row<T>],
        column: &str,
        key: impl Fn(&T) -> String,
        errors: &mut Vec<DirectoryError>,
    ) {
        let mut first: HashMap<String, usize> = HashMap::new();
        for row in rows {
            let key = key(&row.value);
            match first.get(&key) {
                Some(line) => errors.push(DirectoryError::cell(
                    path,
                    row.line,
                    column,
                    format!("\"{key}\" appears again (first on line {line})"),
                    Some("each row needs its own id; merge the two rows or fix one".to_owned()),
                )),
                None => {
                    first.insert(key, row.line);
                }
            }
        }
    }
    let mut errors = Vec::new();
    match file {
        DirectoryFile::Agencies(rows) => {
            repeats(path, rows, "agency_id", |a| a.id.clone(), &mut errors)
        }
        DirectoryFile::Teams(rows) => repeats(path, rows, "team_id", |t| t.id.clone(), &mut errors),
        DirectoryFile::People(rows) => {
            repeats(path, rows, "person_id", |p| p.id.clone(), &mut errors);
            repeats(path, rows, "email", |p| p.email.clone(), &mut errors);
            let with_mobiles: Vec<Row<&str>> = rows
                .iter()
                .filter_map(|r| {
                    r.value.mobile.as_deref().map(|m| Row {
                        line: r.line,
                        value: m,
                    })
                })
                .collect();
            repeats(
                path,
                &with_mobiles,
                "mobile",
                |m| (*m).to_owned(),
                &mut errors,
            );
        }
        DirectoryFile::Champions(rows) => repeats(
            path,
            rows,
            "theme",
            |c| format!("{}/{}", c.person_id, c.theme),
            &mut errors,
        ),
    }
    errors.sort_by_key(|e| e.line);
    errors
}

fn is_slug(s: &str) -> bool {
    !s.is_empty()
        && s.split('-').all(|part| {
            !part.is_empty()
                && part
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit())
        })
}

/// Shape only: one `@`, a local part, and a dotted domain, no spaces.
fn is_email(s: &str) -> bool {
    let Some((local, domain)) = s.split_once('@') else {
        return false;
    };
    !local.is_empty()
        && !domain.contains('@')
        && !s.chars().any(char::is_whitespace)
        && domain.contains('.')
        && domain.split('.').all(|label| !label.is_empty())
}

/// Shape only: `UTC`, or `Area/Location[/More]` with each part starting with
/// a capital letter, as IANA names do.
fn is_time_zone(s: &str) -> bool {
    if s == "UTC" {
        return true;
    }
    let parts: Vec<&str> = s.split('/').collect();
    parts.len() >= 2
        && parts.iter().all(|part| {
            part.starts_with(|c: char| c.is_ascii_uppercase())
                && part
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || "_+-".contains(c))
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn email_shapes() {
        assert!(is_email("ann.smith@council.example.gov.uk"));
        assert!(!is_email("ann.example.org"));
        assert!(!is_email("ann@localhost"));
        assert!(!is_email("ann @x.org"));
        assert!(!is_email("a@b@c.org"));
        assert!(!is_email("@x.org"));
        assert!(!is_email("ann@x..org"));
    }

    #[test]
    fn time_zone_shapes() {
        assert!(is_time_zone("Europe/London"));
        assert!(is_time_zone("America/Argentina/Buenos_Aires"));
        assert!(is_time_zone("Etc/GMT+1"));
        assert!(is_time_zone("UTC"));
        assert!(!is_time_zone("london"));
        assert!(!is_time_zone("europe/london"));
        assert!(!is_time_zone("GMT +1"));
    }

    #[test]
    fn role_slugs() {
        assert!(is_slug("safeguarding-lead"));
        assert!(!is_slug("Manager"));
        assert!(!is_slug("team lead"));
        assert!(!is_slug("lead-"));
    }
}
