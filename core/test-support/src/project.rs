//! A demo project in a temporary folder, changed the way a test needs and
//! imported into its store as `cascade import` imports it.

use cascade_engine::project::{Project, scaffold};
use cascade_model::content::load_dir;
use cascade_model::directory::read_csv;
use cascade_store::{SqliteStore, Store};
use std::fmt::Write as _;
use std::path::Path;
use tempfile::TempDir;

/// One person of a small test directory: id, display name, email.
pub type Person<'a> = (&'a str, &'a str, &'a str);

/// The directory files in the order they are imported: each refers only
/// to the ones before it.
const DIRECTORY_FILES: [&str; 4] = ["agencies", "teams", "people", "champions"];

/// The demo project `cascade init` writes, in a folder removed on drop.
///
/// ```no_run
/// # async fn example() {
/// use cascade_test_support::DemoProject;
/// let dir = DemoProject::new()
///     .channels("[[channels]]\nname = \"outbox\"\nplugin = \"file\"\nconfig = { dir = \"outbox\" }\n")
///     .edit("content/7mb-neglect-seeing-the-child.md", |t| t.replace("Neglect", "Neglect:"))
///     .imported()
///     .await
///     .into_dir();
/// # drop(dir);
/// # }
/// ```
pub struct DemoProject {
    dir: TempDir,
}

impl Default for DemoProject {
    fn default() -> Self {
        DemoProject::new()
    }
}

/// The demo briefing, the one item of the demo with check questions.
pub const DEMO_BRIEFING: &str = "content/7mb-neglect-seeing-the-child.md";

/// An item's source without its `[[check_questions]]` tables (and the
/// comment lines just before them): for tests of acknowledging that are
/// not about the questions, so one press or one POST acknowledges.
pub fn without_check_questions(source: String) -> String {
    let mut out: Vec<&str> = Vec::new();
    let mut in_checks = false;
    for line in source.lines() {
        if line.trim() == "[[check_questions]]" {
            in_checks = true;
            while out.last().is_some_and(|l| l.starts_with('#')) {
                out.pop();
            }
            continue;
        }
        if in_checks && (line.trim() == "+++" || line.trim_start().starts_with("[[")) {
            in_checks = false;
        }
        if !in_checks {
            out.push(line);
        }
    }
    let mut text = out.join("\n");
    if source.ends_with('\n') {
        text.push('\n');
    }
    text
}

/// The demo rollout of the briefing, whose refreshers ask its check
/// questions.
pub const DEMO_ROLLOUT: &str = "rollouts/neglect-briefing.toml";

/// A rollout file without its `refreshers` line and the comment lines
/// just before it: refreshers ask an item's check questions.
pub fn without_refreshers(source: String) -> String {
    let mut out: Vec<&str> = Vec::new();
    for line in source.lines() {
        if line.trim_start().starts_with("refreshers") {
            while out.last().is_some_and(|l| l.starts_with('#')) {
                out.pop();
            }
            continue;
        }
        out.push(line);
    }
    let mut text = out.join("\n");
    if source.ends_with('\n') {
        text.push('\n');
    }
    text
}

impl DemoProject {
    /// The demo with its briefing's check questions taken out, and so its
    /// rollout's refreshers, which ask them.
    pub fn without_check_questions(self) -> DemoProject {
        self.edit(DEMO_BRIEFING, without_check_questions)
            .edit(DEMO_ROLLOUT, without_refreshers)
    }

    /// The demo project, scaffolded and nothing imported.
    ///
    /// # Panics
    /// If the folder cannot be made or written.
    pub fn new() -> DemoProject {
        let dir = tempfile::tempdir().expect("a temporary folder");
        scaffold(dir.path()).expect("the demo project is written");
        DemoProject { dir }
    }

    /// The project folder.
    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// `cascade.toml` with `channels` (TOML, `[[channels]]` tables) in place
    /// of the demo's channels and everything after them.
    pub fn channels(self, channels: &str) -> DemoProject {
        self.edit("cascade.toml", |config| {
            let base = &config[..config
                .find("[[channels]]")
                .expect("the demo cascade.toml has channels")];
            format!("{base}{channels}")
        })
    }

    /// Writes `contents` to the file at `relative` in the project.
    pub fn write(self, relative: &str, contents: impl AsRef<[u8]>) -> DemoProject {
        let path = self.path().join(relative);
        std::fs::write(&path, contents)
            .unwrap_or_else(|e| panic!("cannot write {}: {e}", path.display()));
        self
    }

    /// Rewrites the file at `relative` in the project with `change`.
    pub fn edit(self, relative: &str, change: impl FnOnce(String) -> String) -> DemoProject {
        let path = self.path().join(relative);
        let text = std::fs::read_to_string(&path)
            .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
        self.write(relative, change(text))
    }

    /// Replaces the demo directory with one agency (`ag`), one team
    /// (`team`), no champions and `people`, all practitioners there.
    pub fn only_people(self, people: &[Person<'_>]) -> DemoProject {
        let mut rows = String::from(
            "person_id,display_name,email,agency_id,team_id,roles,manager_id,time_zone\n",
        );
        for (id, name, email) in people {
            writeln!(rows, "{id},{name},{email},ag,team,practitioner,,").expect("a string");
        }
        self.write(
            "directory/agencies.csv",
            "agency_id,name,kind\nag,Test Agency,local-authority\n",
        )
        .write(
            "directory/teams.csv",
            "team_id,agency_id,name\nteam,ag,Test Team\n",
        )
        .write("directory/champions.csv", "person_id,theme,teams\n")
        .write("directory/people.csv", rows)
    }

    /// Imports the directory (agencies, teams, people, champions) into the
    /// project's store, each file as `cascade import` imports it.
    ///
    /// # Panics
    /// If a file does not read or is refused.
    pub async fn import_directory(self) -> DemoProject {
        let (project, store) = self.open().await;
        for name in DIRECTORY_FILES {
            let path = project.directory_dir().join(format!("{name}.csv"));
            let file = read_csv(&path).unwrap_or_else(|e| panic!("{}", e[0]));
            store
                .import(&file, &path, &project.taxonomy)
                .await
                .unwrap_or_else(|e| panic!("{e}"));
        }
        store.close().await;
        self
    }

    /// Saves every content item in the project's store, as `cascade
    /// import` does.
    ///
    /// # Panics
    /// If an item does not parse.
    pub async fn import_content(self) -> DemoProject {
        let (project, store) = self.open().await;
        let (items, errors) = load_dir(&project.content_dir(), &project.taxonomy);
        assert!(errors.is_empty(), "{errors:?}");
        for loaded in &items {
            store
                .save_item(&loaded.item, &loaded.text)
                .await
                .unwrap_or_else(|e| panic!("{e}"));
        }
        store.close().await;
        self
    }

    /// The directory and the content imported.
    pub async fn imported(self) -> DemoProject {
        self.import_directory().await.import_content().await
    }

    /// The temporary folder, removed when it is dropped.
    pub fn into_dir(self) -> TempDir {
        self.dir
    }

    async fn open(&self) -> (Project, SqliteStore) {
        let project = Project::open(self.path()).unwrap_or_else(|e| panic!("{e}"));
        let store = SqliteStore::open(&project.store_path().to_string_lossy())
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        (project, store)
    }
}
