//! The pure planning functions, without a store: the demo project's pieces
//! and its directory (read from its CSV files) in, the audience counts made
//! up by the test.

use super::*;
use crate::project::{Project, scaffold};
use cascade_model::directory::Directory;
use cascade_model::rollout::{QuietHours, WaveTally, parse_definition};
use cascade_render::Channel;

/// The demo project, its directory as the store would answer for it, and
/// what the shell would gather besides.
struct Demo {
    _dir: tempfile::TempDir,
    project: Project,
    directory: DirectoryFacts,
    routes: Vec<ChannelRoute>,
    calendar: Calendar,
    guard: PrivacyGuard,
    renderer: Renderer,
    sample: RenderInput,
}

impl Demo {
    fn new() -> Demo {
        let dir = tempfile::tempdir().unwrap();
        scaffold(dir.path()).unwrap();
        let project = Project::open(dir.path()).unwrap();
        let (loaded, errors) = Directory::load_dir(&project.directory_dir(), &project.taxonomy);
        assert!(errors.is_empty(), "{errors:?}");
        let known = Known::from_directory(&loaded);
        let directory = DirectoryFacts {
            teams: loaded.teams.clone(),
            agencies: known.agencies,
            people: known.people,
            roles: known.roles,
        };
        let routes = vec![ChannelRoute {
            instance: "outbox".to_owned(),
            kind: "file".to_owned(),
            identity: "email".to_owned(),
            formats: vec![Channel::EmailHtml, Channel::EmailText],
            buttons: false,
            forms: false,
            channel_posts: false,
            per_second: None,
            quota: Default::default(),
            retry: Default::default(),
            carries: Default::default(),
            secure_domains: Vec::new(),
            spread: Vec::new(),
        }];
        let calendar = Calendar::new("Europe/London", QuietHours::default()).unwrap();
        let guard = PrivacyGuard::new(&project.config.privacy).unwrap();
        let renderer = project.renderer().unwrap();
        let sample = project.sample_input("Sam Example");
        Demo {
            _dir: dir,
            project,
            directory,
            routes,
            calendar,
            guard,
            renderer,
            sample,
        }
    }

    /// Checks `toml` as the rollout file `rollouts/test.toml`, on 1
    /// December 2026.
    fn check(&self, toml: &str) -> Result<Checked, Problems> {
        let path = self.project.rollouts_dir().join("test.toml");
        let definition = parse_definition(&path, toml).unwrap();
        let (items, content_errors) =
            content::load_dir(&self.project.content_dir(), &self.project.taxonomy);
        let channels = self
            .project
            .config
            .channels
            .iter()
            .map(|c| c.name.clone())
            .collect();
        check(
            PlanInputs {
                path: &path,
                text: toml,
                definition,
                items,
                content_errors,
                taxonomy: &self.project.taxonomy,
                config_path: Path::new("cascade.toml"),
                config_text: "",
                channels,
                team_channels: &[],
                routes: &self.routes,
                calendar: &self.calendar,
                today: NaiveDate::from_ymd_opt(2026, 12, 1).unwrap(),
                guard: &self.guard,
                renderer: &self.renderer,
                sample: &self.sample,
            },
            &self.directory,
        )
    }
}

fn counts(per_wave: &[usize], already_reached: usize) -> AudienceCounts {
    AudienceCounts {
        waves: per_wave
            .iter()
            .map(|&people| WaveTally {
                people,
                by_kind: vec![people],
                unreachable: 0,
            })
            .collect(),
        unassigned: 0,
        already_reached,
    }
}

const NEGLECT: &str = r#"
id = "neglect-test"
item = "7mb-neglect-seeing-the-child"
start = 2026-12-01T09:30:00
channels = ["outbox"]
ack_deadline_days = 28
reminder_days = [7]
[audience]
teams = ["cs-north"]
[[waves]]
name = "Champions"
after_days = 0
champions_of_item_themes = true
[[waves]]
name = "Everyone else"
after_days = 7
"#;

#[test]
fn a_sound_rollout_is_planned_from_its_pieces_and_the_counts() {
    let demo = Demo::new();
    let checked = demo.check(NEGLECT).unwrap_or_else(|p| panic!("{p}"));
    assert!(checked.problems().is_empty(), "{:?}", checked.problems());
    assert_eq!(checked.kinds(), ["email"]);
    let audience = checked.audience().clone();
    let planned =
        conclude(checked, &counts(&[2, 3], 1), &demo.calendar).unwrap_or_else(|p| panic!("{p}"));
    assert_eq!(planned.definition.id, "neglect-test");
    assert_eq!(planned.item.item.id, "7mb-neglect-seeing-the-child");
    assert_eq!(planned.people, 5);
    assert_eq!(planned.already_reached, 1);
    assert_eq!(planned.audience, audience);
    assert_eq!(planned.summary.waves.len(), 2);
    assert!(planned.team_posts.is_empty());
}

#[test]
fn every_problem_is_reported_at_once_with_the_empty_audience() {
    let demo = Demo::new();
    let toml = NEGLECT
        .replace("[\"outbox\"]", "[\"outbox\", \"pigeon\"]")
        .replace("cs-north", "cs-nort");
    let checked = demo.check(&toml).unwrap_or_else(|p| panic!("{p}"));
    assert_eq!(checked.problems().len(), 2, "{:?}", checked.problems());
    let Err(Problems(problems)) = conclude(checked, &counts(&[0, 0], 2), &demo.calendar) else {
        panic!("an empty audience is a problem");
    };
    assert_eq!(problems.len(), 3, "{problems:?}");
    assert!(
        problems[0..2].iter().any(|p| p.contains("pigeon")),
        "{problems:?}"
    );
    assert!(
        problems[0..2].iter().any(|p| p.contains("cs-nort")),
        "{problems:?}"
    );
    assert!(
        problems[2].contains("the audience is empty")
            && problems[2].contains("2 matched but already have this item"),
        "{}",
        problems[2]
    );
}

#[test]
fn a_missing_item_stops_planning_before_the_audience_is_counted() {
    let demo = Demo::new();
    let toml = NEGLECT.replace("7mb-neglect-seeing-the-child", "7mb-no-such-item");
    let Err(Problems(problems)) = demo.check(&toml) else {
        panic!("no such item");
    };
    assert!(
        problems.iter().any(|p| p.contains("7mb-no-such-item")),
        "{problems:?}"
    );
}

#[test]
fn a_phone_number_written_in_the_rollout_is_a_problem_of_the_plan() {
    let demo = Demo::new();
    let toml = format!(
        "{NEGLECT}\n[[follow_ups]]\nafter_days = 30\nquestion = \"Did you call 07700 900123 back?\"\nanswers = [\"Yes\", \"No\"]\n"
    );
    let checked = demo.check(&toml).unwrap_or_else(|p| panic!("{p}"));
    assert_eq!(checked.problems().len(), 1, "{:?}", checked.problems());
    assert!(
        checked.problems()[0].contains("test.toml"),
        "{:?}",
        checked.problems()
    );
    assert!(conclude(checked, &counts(&[2, 3], 0), &demo.calendar).is_err());
}
