use super::*;
use cascade_model::content::{ItemKind, NewsletterItem, Status};
use cascade_model::directory::read_csv;
use std::fs;
use std::path::PathBuf;
use tempfile::TempDir;

const AGENCIES: &str = "\
agency_id,name,kind
lbx-csc,Borough Children's Social Care,local-authority
met-ppu,Police Public Protection Unit,police
";

const TEAMS: &str = "\
team_id,agency_id,name
cyp-east,lbx-csc,Children in Need East
cyp-west,lbx-csc,Children in Need West
ppu-1,met-ppu,Public Protection 1
";

const PEOPLE: &str = "\
person_id,display_name,email,agency_id,team_id,roles,manager_id,time_zone
p-1,Ann Example,ann@lbx.example.org,lbx-csc,cyp-east,manager;practitioner,,Europe/London
p-2,Bob Example,bob@lbx.example.org,lbx-csc,cyp-east,practitioner,p-1,
p-3,Cat Example,cat@lbx.example.org,lbx-csc,cyp-west,practitioner,p-1,
p-4,Dan Example,dan@police.example.org,met-ppu,ppu-1,safeguarding-lead,,
";

const CHAMPIONS: &str = "\
person_id,theme,teams
p-2,neglect,cyp-east;cyp-west
p-4,cse,ppu-1
";

pub(crate) struct Project<S = SqliteStore> {
    dir: TempDir,
    pub(crate) store: S,
}

/// What these tests ask of a store beyond its traits: raw SQL for
/// counting rows and setting up, and the chunked people read.
pub(crate) trait TestStore: Store {
    async fn count_rows(&self, table: &str) -> i64;
    /// Runs one statement without parameters.
    async fn execute(&self, sql: &str);
    async fn people_chunked(&self, active_only: bool, per_read: i64) -> Vec<StoredPerson>;
}

impl TestStore for SqliteStore {
    async fn count_rows(&self, table: &str) -> i64 {
        sqlx::query_scalar(&format!("SELECT count(*) FROM {table}"))
            .fetch_one(self.pool())
            .await
            .unwrap()
    }
    async fn execute(&self, sql: &str) {
        sqlx::query(sql).execute(self.pool()).await.unwrap();
    }
    async fn people_chunked(&self, active_only: bool, per_read: i64) -> Vec<StoredPerson> {
        self.people_in_reads(active_only, per_read).await.unwrap()
    }
}

impl TestStore for pg::PgStore {
    async fn count_rows(&self, table: &str) -> i64 {
        sqlx::query_scalar(&format!("SELECT count(*) FROM {table}"))
            .fetch_one(self.pool())
            .await
            .unwrap()
    }
    async fn execute(&self, sql: &str) {
        sqlx::query(sql).execute(self.pool()).await.unwrap();
    }
    async fn people_chunked(&self, active_only: bool, per_read: i64) -> Vec<StoredPerson> {
        self.people_in_reads(active_only, per_read).await.unwrap()
    }
}

impl Project<SqliteStore> {
    async fn new() -> Project {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(dir.path().join("cascade.db").to_str().unwrap())
            .await
            .unwrap();
        Project { dir, store }
    }

    pub(crate) async fn with_directory() -> Project {
        let project = Project::new().await;
        project.import_all().await;
        project
    }
}

impl<S: TestStore> Project<S> {
    /// A project on `store`, with a folder for its files.
    pub(crate) fn on(store: S) -> Project<S> {
        Project {
            dir: tempfile::tempdir().unwrap(),
            store,
        }
    }

    /// A project on `store` with the test directory imported.
    pub(crate) async fn directory_on(store: S) -> Project<S> {
        let project = Project::on(store);
        project.import_all().await;
        project
    }

    async fn import_all(&self) {
        self.import("agencies.csv", AGENCIES).await.unwrap();
        self.import("teams.csv", TEAMS).await.unwrap();
        self.import("people.csv", PEOPLE).await.unwrap();
        self.import("champions.csv", CHAMPIONS).await.unwrap();
    }

    /// Writes `text` as `name` and imports it.
    async fn import(&self, name: &str, text: &str) -> Result<ImportSummary, StoreError> {
        let path = self.write(name, text);
        let file = read_csv(&path).unwrap_or_else(|e| panic!("{e:?}"));
        self.store.import(&file, &path, &Taxonomy::default()).await
    }

    fn write(&self, name: &str, text: &str) -> PathBuf {
        let path = self.dir.path().join(name);
        fs::write(&path, text).unwrap();
        path
    }

    async fn count(&self, table: &str) -> i64 {
        self.store.count_rows(table).await
    }

    async fn counts(&self) -> Vec<i64> {
        let mut counts = Vec::new();
        for table in [
            "agencies",
            "teams",
            "people",
            "person_roles",
            "champions",
            "champion_teams",
            "channel_identities",
        ] {
            counts.push(self.count(table).await);
        }
        counts
    }
}

fn rejected(result: Result<ImportSummary, StoreError>) -> Vec<DirectoryError> {
    match result {
        Err(StoreError::Rejected(errors)) => errors,
        other => panic!("expected the import to be rejected, got {other:?}"),
    }
}

/// `person`'s acknowledgement, through its link, of delivery `delivery`
/// of rollout `r-1` of `nl-1` version `v1`, sent by email.
pub(crate) fn link_ack(person: &str, delivery: i64, at: i64) -> NewAcknowledgement {
    NewAcknowledgement {
        person_id: person.to_owned(),
        item_id: "nl-1".to_owned(),
        item_version: "v1".to_owned(),
        rollout_id: Some("r-1".to_owned()),
        delivery_id: Some(delivery),
        channel: "email".to_owned(),
        method: AckMethod::Link,
        at,
    }
}

pub(crate) fn newsletter_item(id: &str, title: &str, version: &str) -> LearningItem {
    LearningItem {
        id: id.to_owned(),
        title: title.to_owned(),
        themes: vec!["neglect".to_owned()],
        status: Status::Published,
        links: Vec::new(),
        privacy_allow: Vec::new(),
        what_changed: None,
        check_questions: Vec::new(),
        refresher: Vec::new(),
        classification: Default::default(),
        summary: None,
        kind: ItemKind::NewsletterItem(NewsletterItem {
            newsletter: "Partnership Matters".to_owned(),
            issue: "2026-03".to_owned(),
            body: "Neglect is still the most common category.".to_owned(),
        }),
        version: Version(version.to_owned()),
    }
}

async fn a_first_import_adds_every_row(store: impl TestStore) {
    let project = Project::on(store);
    let added = |n| ImportSummary {
        added: n,
        ..ImportSummary::default()
    };
    assert_eq!(
        project.import("agencies.csv", AGENCIES).await.unwrap(),
        added(2)
    );
    assert_eq!(project.import("teams.csv", TEAMS).await.unwrap(), added(3));
    assert_eq!(
        project.import("people.csv", PEOPLE).await.unwrap(),
        added(4)
    );
    assert_eq!(
        project.import("champions.csv", CHAMPIONS).await.unwrap(),
        added(2)
    );

    let ann = project.store.person("p-1").await.unwrap().unwrap();
    assert!(ann.active);
    assert_eq!(ann.person.roles, ["manager", "practitioner"]);
    assert_eq!(ann.person.time_zone.as_deref(), Some("Europe/London"));
    assert_eq!(project.store.agencies().await.unwrap().len(), 2);
    assert_eq!(project.store.teams().await.unwrap()[2].agency_id, "met-ppu");
    let champions = project.store.champions().await.unwrap();
    assert_eq!(champions[0].person_id, "p-2");
    assert_eq!(champions[0].team_ids, ["cyp-east", "cyp-west"]);
    assert_eq!(
        project.store.identities("p-4").await.unwrap(),
        [ChannelIdentity {
            person_id: "p-4".to_owned(),
            channel: "email".to_owned(),
            address: "dan@police.example.org".to_owned(),
        }]
    );
}

async fn re_importing_the_same_files_changes_nothing(store: impl TestStore) {
    let project = Project::directory_on(store).await;
    let before = project.counts().await;
    let stamp = project
        .store
        .person("p-2")
        .await
        .unwrap()
        .unwrap()
        .updated_at;

    let unchanged = |n| ImportSummary {
        unchanged: n,
        ..ImportSummary::default()
    };
    assert_eq!(
        project.import("agencies.csv", AGENCIES).await.unwrap(),
        unchanged(2)
    );
    assert_eq!(
        project.import("teams.csv", TEAMS).await.unwrap(),
        unchanged(3)
    );
    assert_eq!(
        project.import("people.csv", PEOPLE).await.unwrap(),
        unchanged(4)
    );
    assert_eq!(
        project.import("champions.csv", CHAMPIONS).await.unwrap(),
        unchanged(2)
    );

    assert_eq!(project.counts().await, before);
    let after = project
        .store
        .person("p-2")
        .await
        .unwrap()
        .unwrap()
        .updated_at;
    assert_eq!(after, stamp);
}

async fn a_changed_row_is_updated_in_place(store: impl TestStore) {
    let project = Project::directory_on(store).await;
    let people = PEOPLE
        .replace(
            "Bob Example,bob@lbx.example.org",
            "Robert Example,robert@lbx.example.org",
        )
        .replace(",safeguarding-lead,", ",practitioner;safeguarding-lead,");
    let summary = project.import("people.csv", &people).await.unwrap();
    assert_eq!(
        summary,
        ImportSummary {
            updated: 2,
            unchanged: 2,
            ..ImportSummary::default()
        }
    );
    assert_eq!(project.count("people").await, 4);

    let bob = project.store.person("p-2").await.unwrap().unwrap();
    assert_eq!(bob.person.display_name, "Robert Example");
    let addresses: Vec<String> = project
        .store
        .identities("p-2")
        .await
        .unwrap()
        .into_iter()
        .map(|i| i.address)
        .collect();
    assert_eq!(addresses, ["robert@lbx.example.org"]);
    let dan = project.store.person("p-4").await.unwrap().unwrap();
    assert_eq!(dan.person.roles, ["practitioner", "safeguarding-lead"]);
}

async fn a_person_removed_from_the_file_is_marked_inactive_and_kept(
    store: impl TestStore + Reports,
) {
    let project = Project::directory_on(store).await;
    let without_cat: String = PEOPLE
        .lines()
        .filter(|l| !l.starts_with("p-3,"))
        .map(|l| format!("{l}\n"))
        .collect();

    let stamp = || async { project.store.report_stamps(&[]).await.unwrap()[0].1 };
    let before = stamp().await;
    let summary = project.import("people.csv", &without_cat).await.unwrap();
    // What is kept by the directory's stamp (a champion who left covers no
    // team on the console's home) must see the leaver.
    assert!(stamp().await > before, "the directory's stamp is raised");
    assert_eq!(
        summary,
        ImportSummary {
            unchanged: 3,
            deactivated: 1,
            ..ImportSummary::default()
        }
    );
    let cat = project.store.person("p-3").await.unwrap().unwrap();
    assert!(!cat.active);
    assert_eq!(cat.person.email, "cat@lbx.example.org");
    assert_eq!(project.store.identities("p-3").await.unwrap().len(), 1);
    let active: Vec<String> = project
        .store
        .people(true)
        .await
        .unwrap()
        .into_iter()
        .map(|p| p.person.id)
        .collect();
    assert_eq!(active, ["p-1", "p-2", "p-4"]);
    assert_eq!(project.store.people(false).await.unwrap().len(), 4);

    let again = project.import("people.csv", &without_cat).await.unwrap();
    assert_eq!(
        again.deactivated, 0,
        "an inactive person is not deactivated twice"
    );
}

async fn people_read_in_small_chunks_are_the_people_read_one_by_one(store: impl TestStore) {
    let project = Project::directory_on(store).await;
    let without_cat: String = PEOPLE
        .lines()
        .filter(|l| !l.starts_with("p-3,"))
        .map(|l| format!("{l}\n"))
        .collect();
    project.import("people.csv", &without_cat).await.unwrap();
    let mut one_by_one = Vec::new();
    for id in ["p-1", "p-2", "p-3", "p-4"] {
        one_by_one.push(project.store.person(id).await.unwrap().unwrap());
    }
    assert!(one_by_one.iter().any(|p| !p.person.roles.is_empty()));
    for per_read in [1, 3, 1000] {
        assert_eq!(
            project.store.people_chunked(false, per_read).await,
            one_by_one,
            "{per_read} a read"
        );
        let active: Vec<_> = one_by_one.iter().filter(|p| p.active).cloned().collect();
        assert_eq!(project.store.people_chunked(true, per_read).await, active);
    }
}

async fn a_person_who_reappears_becomes_active_again(store: impl TestStore) {
    let project = Project::directory_on(store).await;
    let without_cat: String = PEOPLE
        .lines()
        .filter(|l| !l.starts_with("p-3,"))
        .map(|l| format!("{l}\n"))
        .collect();
    project.import("people.csv", &without_cat).await.unwrap();

    let summary = project.import("people.csv", PEOPLE).await.unwrap();
    assert_eq!(
        summary,
        ImportSummary {
            updated: 1,
            unchanged: 3,
            ..ImportSummary::default()
        }
    );
    assert!(project.store.person("p-3").await.unwrap().unwrap().active);
}

async fn one_bad_row_rejects_the_whole_file_and_keeps_the_old_state(store: impl TestStore) {
    let project = Project::directory_on(store).await;
    let before = project.counts().await;
    let people_before = project.store.people(false).await.unwrap();

    // Row 5 refers to a team that was never imported; row 2 changes a name
    // and row 6 adds someone, neither of which may be written.
    let people = format!(
        "{}p-5,Eve Example,eve@lbx.example.org,lbx-csc,cyp-north,practitioner,,\n",
        PEOPLE.replace("Ann Example", "Ann Changed").replace(
            "p-4,Dan Example,dan@police.example.org,met-ppu,ppu-1",
            "p-4,Dan Example,dan@police.example.org,met-pp,ppu-1"
        )
    );
    let errors = rejected(project.import("people.csv", &people).await);
    let found: Vec<(Option<usize>, Option<&str>)> = errors
        .iter()
        .map(|e| (e.line, e.column.as_deref()))
        .collect();
    assert_eq!(
        found,
        [
            (Some(5), Some("agency_id")),
            (Some(5), Some("team_id")),
            (Some(6), Some("team_id"))
        ],
        "{errors:#?}"
    );
    let shown = errors[2].to_string();
    assert!(
        shown.contains("people.csv:6: column \"team_id\": no team \"cyp-north\""),
        "{shown}"
    );
    assert!(shown.contains("import teams.csv first"), "{shown}");

    assert_eq!(project.counts().await, before);
    assert_eq!(project.store.people(false).await.unwrap(), people_before);
}

async fn a_bad_email_on_row_5_names_file_row_and_column_and_the_store_keeps_the_old_state(
    store: impl TestStore,
) {
    let project = Project::directory_on(store).await;
    let path = project.write(
        "people.csv",
        &PEOPLE.replace("dan@police.example.org", "dan.police.example.org"),
    );
    let errors = read_csv(&path).unwrap_err();
    assert_eq!(errors.len(), 1);
    assert_eq!(
        errors[0].to_string().lines().next().unwrap(),
        format!(
            "{}:5: column \"email\": \"dan.police.example.org\" is not an email address",
            path.display()
        )
    );
    let dan = project.store.person("p-4").await.unwrap().unwrap();
    assert_eq!(dan.person.email, "dan@police.example.org");
}

async fn teams_need_their_agency_imported_first(store: impl TestStore) {
    let project = Project::on(store);
    let errors = rejected(project.import("teams.csv", TEAMS).await);
    assert_eq!(errors.len(), 3);
    assert!(
        errors
            .iter()
            .all(|e| e.column.as_deref() == Some("agency_id"))
    );
    assert_eq!(project.count("teams").await, 0);
}

async fn a_champion_with_an_unknown_theme_or_person_is_rejected(store: impl TestStore) {
    let project = Project::directory_on(store).await;
    let errors = rejected(
        project
            .import(
                "champions.csv",
                "person_id,theme,teams\np-2,neglet,cyp-east\np-9,cse,ppu-1\n",
            )
            .await,
    );
    let found: Vec<(Option<usize>, Option<&str>)> = errors
        .iter()
        .map(|e| (e.line, e.column.as_deref()))
        .collect();
    assert_eq!(
        found,
        [(Some(2), Some("theme")), (Some(3), Some("person_id"))]
    );
    assert!(errors[0].to_string().contains("did you mean \"neglect\"?"));
    assert_eq!(project.store.champions().await.unwrap().len(), 2);
}

async fn a_champion_dropped_from_the_file_is_deactivated_and_teams_are_replaced(
    store: impl TestStore,
) {
    let project = Project::directory_on(store).await;
    let summary = project
        .import(
            "champions.csv",
            "person_id,theme,teams\np-2,neglect,cyp-west\n",
        )
        .await
        .unwrap();
    assert_eq!(
        summary,
        ImportSummary {
            updated: 1,
            deactivated: 1,
            ..ImportSummary::default()
        }
    );
    let champions = project.store.champions().await.unwrap();
    assert_eq!(champions.len(), 1);
    assert_eq!(champions[0].team_ids, ["cyp-west"]);
    assert_eq!(project.count("champions").await, 2);
}

async fn an_email_passed_to_a_new_starter_moves_their_identity(store: impl TestStore) {
    let project = Project::directory_on(store).await;
    let people = PEOPLE.replace(
        "p-3,Cat Example,cat@lbx.example.org",
        "p-5,Cat Newstarter,cat@lbx.example.org",
    );
    let summary = project.import("people.csv", &people).await.unwrap();
    assert_eq!((summary.added, summary.deactivated), (1, 1));
    assert_eq!(project.store.identities("p-3").await.unwrap(), []);
    assert_eq!(project.store.identities("p-5").await.unwrap().len(), 1);
}

/// The permission bits of a file, in octal as `ls` and `chmod` show them.
#[cfg(unix)]
fn mode(path: &Path) -> String {
    use std::os::unix::fs::PermissionsExt;
    format!(
        "{:o}",
        fs::metadata(path).unwrap().permissions().mode() & 0o777
    )
}

/// The database holds email addresses and the key that signs chat buttons.
/// Whatever the process umask lets through (022 leaves files 0644), the
/// file, and the WAL and shared-memory files SQLite makes beside it, are
/// their owner's only; so is a folder made for them.
#[cfg(unix)]
#[tokio::test]
async fn a_new_database_and_its_wal_and_shared_memory_files_are_owner_only() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("store/cascade.db");
    let store = SqliteStore::open(path.to_str().unwrap()).await.unwrap();
    store
        .save_item(&newsletter_item("nl-1", "Neglect", "v1"), "source")
        .await
        .unwrap();
    let wal = dir.path().join("store/cascade.db-wal");
    let shm = dir.path().join("store/cascade.db-shm");
    assert!(wal.exists() && shm.exists(), "the store runs in WAL mode");
    assert_eq!([mode(&path), mode(&wal), mode(&shm)], ["600", "600", "600"]);
    assert_eq!(mode(&dir.path().join("store")), "700");
}

/// A database made by an older cascade (0644 under umask 022) is restricted
/// when opened, with its WAL and shared-memory files.
#[cfg(unix)]
#[tokio::test]
async fn an_existing_database_others_can_read_is_restricted_when_opened() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("cascade.db");
    let location = path.to_str().unwrap();
    let first = SqliteStore::open(location).await.unwrap();
    let wal = dir.path().join("cascade.db-wal");
    let shm = dir.path().join("cascade.db-shm");
    for file in [&path, &wal, &shm] {
        fs::set_permissions(file, fs::Permissions::from_mode(0o644)).unwrap();
    }
    let reopened = SqliteStore::open(&format!("sqlite://{location}"))
        .await
        .unwrap();
    assert_eq!([mode(&path), mode(&wal), mode(&shm)], ["600", "600", "600"]);
    assert!(reopened.item_versions("nl-1").await.unwrap().is_empty());
    drop(first);
}

#[tokio::test]
async fn migrations_apply_to_a_fresh_file_and_again_to_an_existing_one() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("nested/folder/cascade.db");
    let location = path.to_str().unwrap();
    let store = SqliteStore::open(location).await.unwrap();
    store
        .save_item(&newsletter_item("nl-1", "Neglect", "v1"), "source")
        .await
        .unwrap();
    store.close().await;
    assert!(path.exists());

    let reopened = SqliteStore::open(&format!("sqlite://{location}"))
        .await
        .unwrap();
    let applied: i64 = sqlx::query_scalar("SELECT count(*) FROM _sqlx_migrations")
        .fetch_one(reopened.pool())
        .await
        .unwrap();
    assert_eq!(applied as usize, sqlx::migrate!().iter().count());
    assert_eq!(reopened.item_versions("nl-1").await.unwrap().len(), 1);
}

#[tokio::test]
async fn the_database_file_is_in_wal_mode_with_foreign_keys_on() {
    let project = Project::new().await;
    let mode: String = sqlx::query_scalar("PRAGMA journal_mode")
        .fetch_one(project.store.pool())
        .await
        .unwrap();
    assert_eq!(mode, "wal");
    let foreign_keys: i64 = sqlx::query_scalar("PRAGMA foreign_keys")
        .fetch_one(project.store.pool())
        .await
        .unwrap();
    assert_eq!(foreign_keys, 1);
}

async fn saving_two_versions_keeps_both(store: impl TestStore) {
    let first = newsletter_item("nl-neglect", "Neglect", "aaa111");
    let second = newsletter_item("nl-neglect", "Neglect, revised", "bbb222");
    assert!(store.save_item(&first, "first source").await.unwrap());
    assert!(store.save_item(&second, "second source").await.unwrap());

    let versions = store.item_versions("nl-neglect").await.unwrap();
    let kept: Vec<(&str, &str)> = versions
        .iter()
        .map(|v| (v.version.0.as_str(), v.source.as_str()))
        .collect();
    assert_eq!(
        kept,
        [("aaa111", "first source"), ("bbb222", "second source")]
    );
    let latest = store.latest_item("nl-neglect").await.unwrap().unwrap();
    assert_eq!(latest.title, "Neglect, revised");
    assert_eq!(latest.kind, "newsletter-item");
    assert_eq!(latest.status, "published");
    assert_eq!(store.latest_item("nl-other").await.unwrap(), None);
}

async fn saving_the_same_version_twice_is_a_no_op(store: impl TestStore) {
    let item = newsletter_item("nl-neglect", "Neglect", "aaa111");
    assert!(store.save_item(&item, "source").await.unwrap());
    let first_seen = store.latest_item("nl-neglect").await.unwrap().unwrap();
    assert!(!store.save_item(&item, "source").await.unwrap());
    assert_eq!(
        store.item_versions("nl-neglect").await.unwrap(),
        [first_seen]
    );
}

async fn an_embargoed_item_keeps_its_date(store: impl TestStore) {
    let until = NaiveDate::from_ymd_opt(2026, 6, 1).unwrap();
    let item = LearningItem {
        status: Status::Embargoed(until),
        ..newsletter_item("nl-1", "Embargoed", "v1")
    };
    store.save_item(&item, "source").await.unwrap();
    let stored = store.latest_item("nl-1").await.unwrap().unwrap();
    assert_eq!(
        (stored.status.as_str(), stored.embargoed_until),
        ("embargoed", Some(until))
    );
}

/// A delivery of rollout `r-1`'s initial step to `person` on `channel`.
fn initial(person: &str, channel: &str, rank: u32) -> NewDelivery {
    NewDelivery {
        idempotency_key: format!("r-1:{person}:initial:{rank}"),
        rollout_id: "r-1".to_owned(),
        person_id: person.to_owned(),
        recipient_id: person.to_owned(),
        wave: 0,
        step_kind: cascade_model::rollout::StepKind::Initial,
        step_number: 0,
        channel: channel.to_owned(),
        channel_rank: rank,
        due_at: 1_000,
    }
}

async fn retrying_dead_letters_queues_each_step_once_and_never_one_already_sent(
    store: impl TestStore + Outbox,
) {
    let project = Project::directory_on(store).await;
    let store = &project.store;
    let item = newsletter_item("nl-neglect", "Neglect", "aaa111");
    store.save_item(&item, "source").await.unwrap();
    let member = |id: &str| NewMember {
        person_id: id.to_owned(),
        wave: 0,
        first_due_at: 1_000,
    };
    store
        .create_rollout(NewRollout {
            id: "r-1",
            item_id: "nl-neglect",
            item_version: "aaa111",
            definition: "{}",
            members: &[member("p-1"), member("p-2"), member("p-3")],
            audience: None,
            team_posts: &[],
            now: 0,
        })
        .await
        .unwrap();
    // p-1: dead on email, then dead on telegram too (its fallback);
    // p-2: dead on email, sent by its telegram fallback; p-3: sent.
    store
        .materialise(
            &[
                initial("p-1", "email", 0),
                initial("p-1", "telegram", 1),
                initial("p-2", "email", 0),
                initial("p-2", "telegram", 1),
                initial("p-3", "email", 0),
            ],
            &[],
            1_000,
        )
        .await
        .unwrap();
    let claimed = store.claim(1_000, 10, 60_000, &[]).await.unwrap();
    let outcomes: Vec<(i64, DeliveryOutcome)> = claimed
        .iter()
        .map(|c| {
            let sent = c.person_id == "p-3" || (c.person_id == "p-2" && c.channel == "telegram");
            let outcome = if sent {
                DeliveryOutcome::Sent { provider_id: None }
            } else {
                DeliveryOutcome::Dead {
                    reason: "refused".to_owned(),
                }
            };
            (c.id, outcome)
        })
        .collect();
    store.record(&outcomes, &[], 1_000).await.unwrap();

    assert_eq!(store.retry_dead_letters("r-1", 5_000).await.unwrap(), 1);
    let again = store.claim(5_000, 10, 60_000, &[]).await.unwrap();
    let again: Vec<(&str, &str, u32)> = again
        .iter()
        .map(|c| (c.person_id.as_str(), c.channel.as_str(), c.attempts))
        .collect();
    assert_eq!(again, [("p-1", "email", 1)], "attempts start again");
    // Nothing is dead that may be retried now; a cancelled rollout retries nothing.
    assert_eq!(store.retry_dead_letters("r-1", 6_000).await.unwrap(), 0);
    store
        .set_rollout_state("r-1", RolloutState::Cancelled, 7_000)
        .await
        .unwrap();
    assert_eq!(store.retry_dead_letters("r-1", 8_000).await.unwrap(), 0);
    let totals = store.rollout_totals().await.unwrap();
    assert_eq!(
        (totals[0].members, totals[0].sent, totals[0].dead),
        (3, 2, 2),
        "{totals:?}"
    );
}

crate::both::on_both_stores!(
    retrying_dead_letters_queues_each_step_once_and_never_one_already_sent
);

/// A people file of several thousand rows is written in several multi-row
/// chunks; what it leaves must be what writing the rows one by one leaves,
/// across chunk boundaries: two people swapping directory emails (one in
/// the first chunk, one in the third), a changed mobile, changed roles, a
/// leaver, and an address linked some other way kept.
async fn a_large_people_file_imports_across_chunks_as_row_by_row_would(store: impl TestStore) {
    let project = Project::directory_on(store).await;
    let header =
        "person_id,display_name,email,agency_id,team_id,roles,manager_id,time_zone,mobile\n";
    let row = |i: usize, email: &str, roles: &str, mobile: &str| {
        format!("x-{i:05},Person {i},{email},lbx-csc,cyp-east,{roles},,,{mobile}\n")
    };
    let email = |i: usize| format!("person{i}@lbx.example.org");
    let mobile = |i: usize| {
        if i < 900 {
            format!("07700 900{i:03}")
        } else {
            String::new()
        }
    };
    let n = 2_600;
    let mut first = String::from(header);
    for i in 0..n {
        first.push_str(&row(i, &email(i), "practitioner", &mobile(i)));
    }
    let summary = project.import("people.csv", &first).await.unwrap();
    assert_eq!((summary.added, summary.deactivated), (n, 4));
    project
        .store
        .execute(
            "INSERT INTO channel_identities (person_id, channel, address, linked_at)
             VALUES ('x-00007', 'telegram', 'tg-7', '2026-12-01T00:00:00Z')",
        )
        .await;

    let mut second = String::from(header);
    for i in 0..n {
        let line = match i {
            5 => row(5, &email(2_100), "practitioner", &mobile(5)),
            2_100 => row(2_100, &email(5), "practitioner", ""),
            7 => row(7, &email(7), "practitioner", "07700 900950"),
            1_200 => row(1_200, &email(1_200), "manager;practitioner", ""),
            2_599 => continue,
            _ => row(i, &email(i), "practitioner", &mobile(i)),
        };
        second.push_str(&line);
    }
    let summary = project.import("people.csv", &second).await.unwrap();
    assert_eq!(
        (summary.updated, summary.unchanged, summary.deactivated),
        (4, n - 5, 1)
    );

    let store = &project.store;
    let addresses = |id: &'static str| async move {
        let mut found: Vec<(String, String)> = store
            .identities(id)
            .await
            .unwrap()
            .into_iter()
            .map(|i| (i.channel, i.address))
            .collect();
        found.sort();
        found
    };
    let pair = |c: &str, a: &str| (c.to_owned(), a.to_owned());
    assert_eq!(
        addresses("x-00005").await,
        [
            pair("email", &email(2_100)),
            pair("mobile", "+447700900005")
        ]
    );
    assert_eq!(addresses("x-02100").await, [pair("email", &email(5))]);
    assert_eq!(
        addresses("x-00007").await,
        [
            pair("email", &email(7)),
            pair("mobile", "+447700900950"),
            pair("telegram", "tg-7")
        ]
    );
    let roles = project.store.person("x-01200").await.unwrap().unwrap();
    assert_eq!(roles.person.roles, ["manager", "practitioner"]);
    let leaver = project.store.person("x-02599").await.unwrap().unwrap();
    assert!(!leaver.active);
    assert_eq!(
        addresses("x-02599").await,
        [pair("email", &email(2_599))],
        "a leaver keeps their identities, as before"
    );
    assert_eq!(project.count("people").await, 4 + n as i64);
    assert_eq!(project.count("person_roles").await, 5 + n as i64 + 1);
}

/// Text goes to PostgreSQL through `COPY`: what would be its escapes
/// and separators is kept as written.
async fn names_with_backslashes_and_tabs_are_kept_as_written(store: impl TestStore) {
    let project = Project::directory_on(store).await;
    let odd = "Ann \\N O\\'Brien\tthe \\\\second";
    let people = PEOPLE.replace("Ann Example", &format!("\"{odd}\""));
    let summary = project.import("people.csv", &people).await.unwrap();
    assert_eq!((summary.updated, summary.unchanged), (1, 3));
    let ann = project.store.person("p-1").await.unwrap().unwrap();
    assert_eq!(ann.person.display_name, odd);
    let again = project.import("people.csv", &people).await.unwrap();
    assert_eq!(again.unchanged, 4);
}

crate::both::on_both_stores!(
    names_with_backslashes_and_tabs_are_kept_as_written,
    a_first_import_adds_every_row,
    re_importing_the_same_files_changes_nothing,
    a_changed_row_is_updated_in_place,
    people_read_in_small_chunks_are_the_people_read_one_by_one,
    a_person_who_reappears_becomes_active_again,
    one_bad_row_rejects_the_whole_file_and_keeps_the_old_state,
    a_bad_email_on_row_5_names_file_row_and_column_and_the_store_keeps_the_old_state,
    teams_need_their_agency_imported_first,
    a_champion_with_an_unknown_theme_or_person_is_rejected,
    a_champion_dropped_from_the_file_is_deactivated_and_teams_are_replaced,
    an_email_passed_to_a_new_starter_moves_their_identity,
    saving_two_versions_keeps_both,
    saving_the_same_version_twice_is_a_no_op,
    an_embargoed_item_keeps_its_date,
    a_large_people_file_imports_across_chunks_as_row_by_row_would,
);

#[path = "privacy_tests.rs"]
mod privacy;

async fn team_coverage_counts_each_asked_team_in_each_live_rollout_with_its_confirmations(
    store: impl TestStore + Outbox + Evidence + Reports,
) {
    let project = Project::directory_on(store).await;
    let store = &project.store;
    let item = newsletter_item("nl-neglect", "Neglect", "aaa111");
    store.save_item(&item, "source").await.unwrap();
    let member = |id: &str| NewMember {
        person_id: id.to_owned(),
        wave: 0,
        first_due_at: 1_000,
    };
    // r-1 reaches both East people, West's one and the police's one; the
    // newer r-2 only Ann (East); r-3 reaches Bob (East) and is cancelled.
    for (id, members, now) in [
        (
            "r-1",
            vec![member("p-1"), member("p-2"), member("p-3"), member("p-4")],
            0,
        ),
        ("r-2", vec![member("p-1")], 10),
        ("r-3", vec![member("p-2")], 20),
    ] {
        store
            .create_rollout(NewRollout {
                id,
                item_id: "nl-neglect",
                item_version: "aaa111",
                definition: "{}",
                members: &members,
                audience: None,
                team_posts: &[],
                now,
            })
            .await
            .unwrap();
    }
    store
        .set_rollout_state("r-3", RolloutState::Cancelled, 30)
        .await
        .unwrap();
    // Ann acknowledges the version both live rollouts pinned.
    store
        .acknowledge_items(&[NewAcknowledgement {
            person_id: "p-1".to_owned(),
            item_id: "nl-neglect".to_owned(),
            item_version: "aaa111".to_owned(),
            rollout_id: Some("r-1".to_owned()),
            delivery_id: None,
            channel: "web".to_owned(),
            method: AckMethod::Link,
            at: 40,
        }])
        .await
        .unwrap();
    // Bob, East's champion, confirms two sessions with East and one of
    // another item with West.
    for (item_id, team, date) in [
        ("nl-neglect", "cyp-east", "2026-03-02"),
        ("nl-neglect", "cyp-east", "2026-03-09"),
        ("nl-other", "cyp-west", "2026-03-02"),
    ] {
        let confirmation = NewConfirmation {
            champion_id: "p-2".to_owned(),
            item_id: item_id.to_owned(),
            team_id: team.to_owned(),
            session_date: date.to_owned(),
            present: 6,
            method: "team-meeting".to_owned(),
            note: None,
            channel: "web".to_owned(),
            at: 50,
        };
        assert!(store.confirm_cascade(&confirmation).await.unwrap());
    }

    let coverage = store
        .team_coverage(&["cyp-east".to_owned(), "cyp-west".to_owned()])
        .await
        .unwrap();
    let rows: Vec<(&str, &str, i64, i64, i64)> = coverage
        .iter()
        .map(|c| {
            assert_eq!(c.item_id, "nl-neglect");
            (
                c.rollout_id.as_str(),
                c.team_id.as_str(),
                c.members,
                c.acknowledged,
                c.confirmations,
            )
        })
        .collect();
    // Newest rollout first; the police team was not asked about, and the
    // cancelled rollout and the other item's confirmation do not count.
    assert_eq!(
        rows,
        [
            ("r-2", "cyp-east", 1, 1, 2),
            ("r-1", "cyp-east", 2, 1, 2),
            ("r-1", "cyp-west", 1, 0, 0),
        ]
    );
    assert_eq!(store.team_coverage(&[]).await.unwrap(), []);
}

async fn a_bulletin_occurrence_is_recorded_once_and_an_item_goes_in_one_issue_only(
    store: impl Bulletins,
) {
    let old = [("nl-old".to_owned(), "v1".to_owned())];
    assert!(store.start_bulletin("weekly", "{}", &old, 1).await.unwrap());
    assert!(
        !store.start_bulletin("weekly", "{}", &[], 2).await.unwrap(),
        "a bulletin starts once"
    );
    let new = [("nl-new".to_owned(), "v1".to_owned())];
    fn skip(at: i64, items: &[(String, String)]) -> NewOccurrence<'_> {
        NewOccurrence {
            bulletin_id: "weekly",
            occurrence_at: at,
            items,
            issue: None,
            now: at,
        }
    }
    assert!(store.record_occurrence(skip(100, &new)).await.unwrap());
    assert!(
        !store.record_occurrence(skip(100, &[])).await.unwrap(),
        "the same occurrence again writes nothing"
    );
    // An item an earlier issue (or the start) took is refused, and the
    // occurrence with it is not recorded.
    assert!(store.record_occurrence(skip(200, &old)).await.is_err());
    let made: Vec<i64> = store
        .occurrences("weekly")
        .await
        .unwrap()
        .iter()
        .map(|o| o.occurrence_at)
        .collect();
    assert_eq!(made, [100]);
    assert_eq!(
        store.bulletin_items("weekly").await.unwrap(),
        ["nl-new", "nl-old"]
    );
    assert_eq!(
        store
            .bulletin("weekly")
            .await
            .unwrap()
            .unwrap()
            .last_occurrence_at,
        Some(100)
    );
}

crate::both::on_both_stores!(
    a_person_removed_from_the_file_is_marked_inactive_and_kept,
    team_coverage_counts_each_asked_team_in_each_live_rollout_with_its_confirmations,
    a_bulletin_occurrence_is_recorded_once_and_an_item_goes_in_one_issue_only,
);
