use super::*;
use std::fs;

pub(crate) const AGENCIES: &str = "\
agency_id,name,kind
lbx-csc,Borough Children's Social Care,local-authority
met-ppu,Police Public Protection Unit,police
";

pub(crate) const TEAMS: &str = "\
team_id,agency_id,name
cyp-east,lbx-csc,Children in Need East
cyp-west,lbx-csc,Children in Need West
ppu-1,met-ppu,Public Protection 1
";

pub(crate) const PEOPLE: &str = "\
person_id,display_name,email,agency_id,team_id,roles,manager_id,time_zone
p-1,Ann Example,ann@lbx.example.org,lbx-csc,cyp-east,manager;practitioner,,Europe/London
p-2,Bob Example,bob@lbx.example.org,lbx-csc,cyp-east,practitioner,p-1,
p-3,Cat Example,cat@lbx.example.org,lbx-csc,cyp-west,practitioner,p-1,
p-4,Dan Example,dan@police.example.org,met-ppu,ppu-1,safeguarding-lead,,
";

pub(crate) const CHAMPIONS: &str = "\
person_id,theme,teams
p-2,neglect,cyp-east;cyp-west
p-4,cse,ppu-1
";

fn folder(files: &[(&str, &str)]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for (name, text) in files {
        fs::write(dir.path().join(name), text).unwrap();
    }
    dir
}

fn complete_folder_with(name: &str, text: &str) -> tempfile::TempDir {
    let mut files = vec![
        ("agencies.csv", AGENCIES),
        ("teams.csv", TEAMS),
        ("people.csv", PEOPLE),
        ("champions.csv", CHAMPIONS),
    ];
    files.retain(|(n, _)| *n != name);
    files.push((name, text));
    folder(&files)
}

fn messages(errors: &[DirectoryError]) -> Vec<String> {
    errors.iter().map(|e| e.to_string()).collect()
}

#[test]
fn a_complete_folder_loads_without_problems() {
    let dir = complete_folder_with("champions.csv", CHAMPIONS);
    let (directory, errors) = Directory::load_dir(dir.path(), &Taxonomy::default());
    assert_eq!(messages(&errors), Vec::<String>::new());
    assert_eq!(directory.agencies.len(), 2);
    assert_eq!(directory.teams.len(), 3);
    assert_eq!(directory.people.len(), 4);
    assert_eq!(directory.people[0].roles, ["manager", "practitioner"]);
    assert_eq!(directory.people[1].manager_id.as_deref(), Some("p-1"));
    assert_eq!(directory.champions[0].team_ids, ["cyp-east", "cyp-west"]);
}

#[test]
fn files_are_recognised_by_header_whatever_their_name_case_or_column_order() {
    let dir = folder(&[
        (
            "orgs.csv",
            "Kind , NAME,Agency_Id,notes\npolice,Police PPU,met-ppu,x\n",
        ),
        ("t.csv", "name,team_id,agency_id\nPPU,ppu-1,met-ppu\n"),
        (
            "hr-export.csv",
            "email,person_id,display_name,agency_id,team_id,roles\n DAN@Police.example.org ,p-4,Dan,met-ppu,ppu-1,practitioner\n",
        ),
        ("notes.txt", "not a csv"),
    ]);
    let (directory, errors) = Directory::load_dir(dir.path(), &Taxonomy::default());
    assert_eq!(messages(&errors), Vec::<String>::new());
    assert_eq!(directory.agencies[0].kind, "police");
    assert_eq!(directory.people[0].email, "dan@police.example.org");
    assert_eq!(directory.people[0].time_zone, None);
}

#[test]
fn a_bad_email_names_file_line_and_column() {
    let dir = complete_folder_with(
        "people.csv",
        &PEOPLE.replace("cat@lbx.example.org", "cat.lbx.example.org"),
    );
    let errors = read_csv(&dir.path().join("people.csv")).unwrap_err();
    assert_eq!(errors.len(), 1);
    let shown = errors[0].to_string();
    assert!(
        shown.starts_with(&format!(
            "{}:4: column \"email\": \"cat.lbx.example.org\" is not an email address",
            dir.path().join("people.csv").display()
        )),
        "{shown}"
    );
    assert!(shown.contains("help:"), "{shown}");
}

#[test]
fn every_problem_in_a_file_is_reported_at_once() {
    let people = "\
person_id,display_name,email,agency_id,team_id,roles,manager_id,time_zone
p-1,,ann@x.example.org,lbx-csc,cyp-east,Manager,p-1,london
p-2,Bob,bob@x.example.org,lbx-csc,cyp-east,practitioner,,
";
    let dir = folder(&[("people.csv", people)]);
    let errors = read_csv(&dir.path().join("people.csv")).unwrap_err();
    let columns: Vec<_> = errors
        .iter()
        .map(|e| e.column.as_deref().unwrap())
        .collect();
    assert_eq!(
        columns,
        ["display_name", "roles", "time_zone", "manager_id"],
        "{:?}",
        messages(&errors)
    );
    assert!(errors.iter().all(|e| e.line == Some(2)));
}

#[test]
fn duplicate_ids_in_a_file_are_errors() {
    let dir = complete_folder_with(
        "teams.csv",
        &format!("{TEAMS}cyp-east,lbx-csc,Another East\n"),
    );
    let errors = read_csv(&dir.path().join("teams.csv")).unwrap_err();
    assert_eq!(errors.len(), 1);
    assert_eq!(errors[0].line, Some(5));
    assert_eq!(errors[0].column.as_deref(), Some("team_id"));
    assert!(
        errors[0].message.contains("first on line 2"),
        "{}",
        errors[0]
    );
}

#[test]
fn two_people_with_one_email_are_an_error() {
    let dir = complete_folder_with(
        "people.csv",
        &format!("{PEOPLE}p-5,Eve,ANN@lbx.example.org,lbx-csc,cyp-east,practitioner,,\n"),
    );
    let errors = read_csv(&dir.path().join("people.csv")).unwrap_err();
    assert_eq!(errors.len(), 1);
    assert_eq!(
        (errors[0].line, errors[0].column.as_deref()),
        (Some(6), Some("email"))
    );
}

#[test]
fn a_header_missing_a_column_says_which() {
    let dir = folder(&[(
        "people.csv",
        "person_id,display_name,agency_id,team_id,roles\np-1,Ann,a,t,practitioner\n",
    )]);
    let errors = read_csv(&dir.path().join("people.csv")).unwrap_err();
    assert_eq!(errors.len(), 1);
    assert_eq!(errors[0].line, Some(1));
    assert!(errors[0].message.contains("people.csv"), "{}", errors[0]);
    assert!(errors[0].message.contains("email"), "{}", errors[0]);
}

#[test]
fn an_unrecognised_header_lists_the_expected_ones() {
    let dir = folder(&[("x.csv", "foo,bar\n1,2\n")]);
    let errors = read_csv(&dir.path().join("x.csv")).unwrap_err();
    assert!(
        errors[0]
            .to_string()
            .contains("champions.csv (person_id,theme,teams)")
    );
}

#[test]
fn cross_references_are_checked_across_files() {
    let dir = folder(&[
        ("agencies.csv", AGENCIES),
        ("teams.csv", &format!("{TEAMS}ghost,nowhere,Ghost Team\n")),
        (
            "people.csv",
            &format!(
                "{PEOPLE}\
p-5,Eve,eve@x.example.org,lbx-csc,cyp-eats,practitioner,,
p-6,Fay,fay@x.example.org,lbx-csc,ppu-1,practitioner,p-99,
p-7,Gus,gus@x.example.org,lbx-cs,cyp-east,practitioner,,
"
            ),
        ),
        (
            "champions.csv",
            "person_id,theme,teams\np-42,neglect,cyp-east;nope\n",
        ),
    ]);
    let (_, errors) = Directory::load_dir(dir.path(), &Taxonomy::default());
    let found: Vec<(String, usize, &str)> = errors
        .iter()
        .map(|e| {
            (
                e.path.file_name().unwrap().to_string_lossy().into_owned(),
                e.line.unwrap(),
                e.column.as_deref().unwrap(),
            )
        })
        .collect();
    let expected = [
        ("teams.csv", 5, "agency_id"),
        ("people.csv", 6, "team_id"),
        ("people.csv", 7, "team_id"),
        ("people.csv", 7, "manager_id"),
        ("people.csv", 8, "agency_id"),
        ("people.csv", 8, "team_id"),
        ("champions.csv", 2, "person_id"),
        ("champions.csv", 2, "teams"),
    ];
    let expected: Vec<(String, usize, &str)> = expected
        .iter()
        .map(|(f, l, c)| ((*f).to_owned(), *l, *c))
        .collect();
    assert_eq!(found, expected, "{:#?}", messages(&errors));

    let typo = errors
        .iter()
        .find(|e| e.line == Some(6))
        .unwrap()
        .to_string();
    assert!(typo.contains("no team \"cyp-eats\""), "{typo}");
    assert!(typo.contains("did you mean \"cyp-east\"?"), "{typo}");
    assert!(typo.contains("teams.csv"), "{typo}");
    let wrong_agency = errors
        .iter()
        .find(|e| e.line == Some(7) && e.column.as_deref() == Some("team_id"))
        .unwrap();
    assert!(
        wrong_agency
            .message
            .contains("belongs to agency \"met-ppu\""),
        "{wrong_agency}"
    );
}

#[test]
fn an_unknown_champion_theme_suggests_the_closest() {
    let dir = complete_folder_with(
        "champions.csv",
        "person_id,theme,teams\np-2,neglet,cyp-east\n",
    );
    let (_, errors) = Directory::load_dir(dir.path(), &Taxonomy::default());
    assert_eq!(errors.len(), 1, "{:?}", messages(&errors));
    let shown = errors[0].to_string();
    assert!(
        shown.contains(":2: column \"theme\": unknown theme \"neglet\""),
        "{shown}"
    );
    assert!(shown.contains("did you mean \"neglect\"?"), "{shown}");
}

#[test]
fn missing_files_and_second_files_of_a_kind_are_reported() {
    let dir = folder(&[("agencies.csv", AGENCIES), ("more-agencies.csv", AGENCIES)]);
    let (_, errors) = Directory::load_dir(dir.path(), &Taxonomy::default());
    let shown = messages(&errors);
    assert!(
        shown
            .iter()
            .any(|m| m.contains("a second agencies.csv file")),
        "{shown:?}"
    );
    assert!(
        shown.iter().any(|m| m.contains("no teams.csv file")),
        "{shown:?}"
    );
    assert!(
        shown.iter().any(|m| m.contains("no people.csv file")),
        "{shown:?}"
    );
    assert!(
        !shown.iter().any(|m| m.contains("no champions.csv")),
        "{shown:?}"
    );
}

#[test]
fn a_bad_row_is_reported_once_not_again_through_the_rows_that_refer_to_it() {
    let dir = complete_folder_with(
        "people.csv",
        &PEOPLE.replace("ann@lbx.example.org", "ann-at-lbx"),
    );
    let teams = TEAMS
        .replace("ppu-1,met-ppu", "ppu-1,met-ppu,extra,,")
        .replace(
            "cyp-west,lbx-csc,Children in Need West",
            "cyp-west,,Children in Need West",
        );
    fs::write(dir.path().join("teams.csv"), teams).unwrap();
    let (_, errors) = Directory::load_dir(dir.path(), &Taxonomy::default());
    let shown = messages(&errors);
    // Ann (p-1) manages p-2 and p-3, and cyp-west is p-3's team and a
    // champion's: only the two bad rows themselves are reported.
    assert_eq!(shown.len(), 2, "{shown:#?}");
    assert!(
        shown
            .iter()
            .any(|m| m.contains("people.csv:2: column \"email\"")),
        "{shown:#?}"
    );
    assert!(
        shown
            .iter()
            .any(|m| m.contains("teams.csv:3: column \"agency_id\"")),
        "{shown:#?}"
    );
}

const MOBILE_PEOPLE: &str = "\
person_id,display_name,email,agency_id,team_id,roles,mobile
p-1,Ann Example,ann@lbx.example.org,lbx-csc,cyp-east,practitioner,07700 900123
p-2,Bob Example,bob@lbx.example.org,lbx-csc,cyp-east,practitioner,+44 7700 900124
p-3,Cat Example,cat@lbx.example.org,lbx-csc,cyp-west,practitioner,
";

#[test]
fn mobiles_are_optional_and_normalised() {
    let dir = folder(&[("people.csv", MOBILE_PEOPLE)]);
    let DirectoryFile::People(rows) = read_csv(&dir.path().join("people.csv")).unwrap() else {
        panic!("not people");
    };
    let mobiles: Vec<Option<&str>> = rows.iter().map(|r| r.value.mobile.as_deref()).collect();
    assert_eq!(
        mobiles,
        [Some("+447700900123"), Some("+447700900124"), None]
    );
    // A file without the column reads as before.
    let dir = folder(&[("people.csv", PEOPLE)]);
    let DirectoryFile::People(rows) = read_csv(&dir.path().join("people.csv")).unwrap() else {
        panic!("not people");
    };
    assert!(rows.iter().all(|r| r.value.mobile.is_none()));
}

#[test]
fn a_number_that_is_not_a_uk_mobile_names_file_line_and_fix() {
    for bad in [
        "020 7946 0000",
        "07700 90012",
        "+33 6 12 34 56 78",
        "077OO900123",
    ] {
        let dir = folder(&[(
            "people.csv",
            &format!(
                "{MOBILE_PEOPLE}p-4,Dan,dan@x.example.org,lbx-csc,cyp-east,practitioner,{bad}\n"
            ),
        )]);
        let errors = read_csv(&dir.path().join("people.csv")).unwrap_err();
        assert_eq!(errors.len(), 1, "{bad}: {errors:?}");
        assert_eq!(
            (errors[0].line, errors[0].column.as_deref()),
            (Some(5), Some("mobile"))
        );
        let shown = errors[0].to_string();
        assert!(shown.contains("people.csv:5"), "{shown}");
        assert!(shown.contains("not a UK mobile number"), "{shown}");
        assert!(shown.contains("07700 900123"), "the fix: {shown}");
    }
}

#[test]
fn two_people_with_one_mobile_are_an_error() {
    let dir = folder(&[(
        "people.csv",
        &format!(
            "{MOBILE_PEOPLE}p-4,Dan,dan@x.example.org,lbx-csc,cyp-east,practitioner,07700900123\n"
        ),
    )]);
    let errors = read_csv(&dir.path().join("people.csv")).unwrap_err();
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert_eq!(
        (errors[0].line, errors[0].column.as_deref()),
        (Some(5), Some("mobile"))
    );
}

#[test]
fn time_zones_working_patterns_and_absences_are_read_and_their_mistakes_named() {
    let people = "\
person_id,display_name,email,agency_id,team_id,roles,manager_id,time_zone,works,absent_until
p-1,Ann,ann@x.example.org,lbx-csc,cyp-east,practitioner,,America/New_York,mon-fri 08:00-18:00,2027-01-18
p-2,Bob,bob@x.example.org,lbx-csc,cyp-east,practitioner,,,nights,
p-3,Cat,cat@x.example.org,lbx-csc,cyp-east,practitioner,,Europe/Londn,,
p-4,Dan,dan@x.example.org,lbx-csc,cyp-east,practitioner,,,Mon-Fri 8-6,
p-5,Eve,eve@x.example.org,lbx-csc,cyp-east,practitioner,,,,18/01/2027
";
    let dir = folder(&[("people.csv", people)]);
    let path = dir.path().join("people.csv");
    let errors = read_csv(&path).unwrap_err();
    let found: Vec<(Option<usize>, &str)> = errors
        .iter()
        .map(|e| (e.line, e.column.as_deref().unwrap()))
        .collect();
    assert_eq!(
        found,
        [
            (Some(4), "time_zone"),
            (Some(5), "works"),
            (Some(6), "absent_until")
        ],
        "{:?}",
        messages(&errors)
    );
    let shown = errors[0].to_string();
    assert!(
        shown.starts_with(&format!("{}:4:", path.display())),
        "{shown}"
    );
    assert!(shown.contains("did you mean \"Europe/London\"?"), "{shown}");
    assert!(
        errors[1].to_string().contains("Mon-Fri 08:00-18:00"),
        "{}",
        errors[1]
    );
    assert!(
        errors[2].to_string().contains("2027-01-18"),
        "{}",
        errors[2]
    );

    // The good rows, read: the pattern in its canonical form.
    let good: String = people.lines().take(3).map(|l| format!("{l}\n")).collect();
    fs::write(&path, good).unwrap();
    let DirectoryFile::People(rows) = read_csv(&path).unwrap() else {
        panic!("a people file");
    };
    let ann = &rows[0].value;
    assert_eq!(ann.time_zone.as_deref(), Some("America/New_York"));
    assert_eq!(ann.works.as_deref(), Some("Mon-Fri 08:00-18:00"));
    assert_eq!(
        ann.absent_until.map(|d| d.to_string()).as_deref(),
        Some("2027-01-18")
    );
    assert_eq!(rows[1].value.works.as_deref(), Some("20:00-08:00"));
}
