//! Test plumbing shared by cascade's test suites and benches, so that each
//! crate's tests do not carry their own copy: a demo project builder
//! ([`DemoProject`]), a clock a test moves by hand ([`FakeClock`]), the
//! finder for plugin libraries cargo built ([`plugin_library`]), times
//! ([`utc`]) and typed queries over the outbox and the evidence
//! ([`outbox`], through the store's read-only [`cascade_store::Inspect`]).
//!
//! Dev-only: depend on it from `[dev-dependencies]` alone. It turns on the
//! store's `test-support` feature, whose methods exist for tests only.

mod clock;
pub mod outbox;
mod plugins;
mod project;
mod time;

pub use clock::FakeClock;
pub use plugins::plugin_library;
pub use project::{
    DEMO_BRIEFING, DEMO_ROLLOUT, DemoProject, Person, without_check_questions, without_refreshers,
};
pub use time::utc;

/// Prints a panic's message and place alone, without the backtrace
/// `RUST_BACKTRACE` would add: for long process tests (several serves, a
/// database), whose failure CI shows only the tail of, so the assertion's
/// own words stay in view. The hook is the process's, so call it first
/// thing in a test binary that holds one test.
pub fn short_panics() {
    std::panic::set_hook(Box::new(|panic| eprintln!("{panic}")));
}

#[cfg(test)]
mod tests {
    use super::*;
    use cascade_store::{SqliteStore, Store};
    use chrono::Duration;

    #[test]
    fn a_fake_clock_moves_only_when_told_and_every_clone_with_it() {
        let clock = FakeClock::at(utc(2026, 3, 2, 10, 0));
        let now = clock.as_fn();
        clock.advance(Duration::minutes(5));
        assert_eq!(now(), utc(2026, 3, 2, 10, 5));
        clock.clone().set(utc(2026, 4, 1, 0, 0));
        assert_eq!(clock.now(), utc(2026, 4, 1, 0, 0));
    }

    #[test]
    #[should_panic(expected = "was not built next to")]
    fn a_library_cargo_did_not_build_is_named() {
        plugin_library("cascade-plugin-that-does-not-exist");
    }

    #[test]
    fn without_check_questions_leaves_the_rest_of_the_briefing() {
        let project = DemoProject::new();
        let source = std::fs::read_to_string(project.path().join(DEMO_BRIEFING)).unwrap();
        assert!(source.contains("[[check_questions]]"));
        let stripped = without_check_questions(source.clone());
        assert!(!stripped.contains("check_questions"), "{stripped}");
        assert!(!stripped.contains("answer ="));
        assert!(stripped.contains("[[links]]") && stripped.contains("## 1. Background"));
        assert_eq!(
            stripped.lines().count() + 9,
            source.lines().count(),
            "only the questions and their comment go"
        );
    }

    #[tokio::test]
    async fn a_demo_project_with_only_its_people_imports_them_and_its_content() {
        let project = DemoProject::new()
            .channels("[[channels]]\nname = \"outbox\"\nplugin = \"file\"\nidentity = \"email\"\nformats = [\"email-text\"]\nconfig = { dir = \"outbox\" }\n")
            .only_people(&[("p-1", "Ann Example", "ann@example.org")])
            .imported()
            .await;
        let config = std::fs::read_to_string(project.path().join("cascade.toml")).unwrap();
        assert!(
            config.ends_with("config = { dir = \"outbox\" }\n"),
            "{config}"
        );
        let dir = project.into_dir();
        let store = SqliteStore::open(&dir.path().join(".cascade/cascade.db").to_string_lossy())
            .await
            .unwrap();
        let people = store.people(true).await.unwrap();
        assert_eq!(people.len(), 1);
        assert_eq!(people[0].person.display_name, "Ann Example");
        let item = store
            .latest_item("7mb-neglect-seeing-the-child")
            .await
            .unwrap();
        assert!(item.is_some());
    }
}
