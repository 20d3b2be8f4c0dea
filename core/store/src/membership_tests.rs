//! Leavers and movers over random sequences of people imports: after each
//! import a running rollout's members are out exactly when their person
//! left the directory or moved out of the audience, a dry run answers the
//! same and writes nothing, and importing the same file again changes
//! nothing.
//!
//! Open rollouts over random sequences of imports (joins, moves, leaves,
//! role and champion changes, acknowledgements and the rollout closing):
//! the members are always those the audience rules give for the directory
//! at some import while it was open plus those it started with, less
//! anyone another rollout of the item reached or who had acknowledged its
//! version, nobody twice; each joiner on their wave's moved timetable.

use super::*;
use cascade_model::content::{ItemKind, NewsletterItem, Status};
use cascade_model::directory::read_csv;
use cascade_model::rollout::{Selector, WaveQuery};
use proptest::prelude::*;
use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;

const TEAMS: [&str; 3] = ["t-in", "t-out-1", "t-out-2"];
const PEOPLE: usize = 8;

fn item() -> LearningItem {
    LearningItem {
        id: "nl-1".to_owned(),
        title: "Neglect".to_owned(),
        themes: vec!["neglect".to_owned()],
        status: Status::Published,
        links: Vec::new(),
        privacy_allow: Vec::new(),
        what_changed: None,
        classification: Default::default(),
        summary: None,
        check_questions: Vec::new(),
        refresher: Vec::new(),
        kind: ItemKind::NewsletterItem(NewsletterItem {
            newsletter: "Partnership Matters".to_owned(),
            issue: "2026-03".to_owned(),
            body: "Neglect.".to_owned(),
        }),
        version: Version("v1".to_owned()),
    }
}

/// Everyone in team `t-in`, one wave.
fn audience() -> AudienceQuery {
    AudienceQuery {
        source: AudienceSource::Directory {
            include: Selector {
                teams: vec![TEAMS[0].to_owned()],
                ..Selector::default()
            },
            exclude: Selector::default(),
        },
        waves: vec![WaveQuery {
            everyone: true,
            takes: Selector::default(),
            first_due_at: 5_000,
        }],
        item_id: "nl-1".to_owned(),
        absences_after: String::new(),
        home_zone: String::new(),
        timing: Vec::new(),
    }
}

/// A people file: `teams[i]` is person i's team, or none if not listed.
/// `p-anchor` is always there, so the file is never empty.
fn people_csv(teams: &[Option<usize>]) -> String {
    let mut text = String::from(
        "person_id,display_name,email,agency_id,team_id,roles,manager_id,time_zone\n\
         p-anchor,Anchor Example,anchor@example.org,ag,t-out-1,practitioner,,\n",
    );
    for (i, team) in teams.iter().enumerate() {
        if let Some(t) = team {
            text.push_str(&format!(
                "p-{i},Person {i},p{i}@example.org,ag,{},practitioner,,\n",
                TEAMS[*t]
            ));
        }
    }
    text
}

#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
struct Member {
    person_id: String,
    next_due_at: Option<i64>,
    team_id: Option<String>,
    out_reason: Option<String>,
    out_next_due_at: Option<i64>,
}

async fn members<S: Raw>(store: &S) -> Vec<Member> {
    store.members().await
}

/// What these tests read and write beside the store traits, in SQL both
/// stores take.
trait Raw: Store + Outbox {
    async fn execute(&self, sql: &str);
    async fn scalar(&self, sql: &str) -> i64;
    async fn members(&self) -> Vec<Member>;
    async fn open_members(&self) -> Vec<OpenMember>;
    async fn states(&self) -> Vec<(String, String)>;
}

const MEMBERS: &str = "SELECT person_id, next_due_at, team_id, out_reason, out_next_due_at
     FROM rollout_members WHERE rollout_id = 'r' ORDER BY person_id";
const OPEN_MEMBERS: &str =
    "SELECT rollout_id, person_id, wave, next_due_at, out_reason, joined_at, shift_days
     FROM rollout_members ORDER BY rollout_id, person_id";
const STATES: &str = "SELECT idempotency_key, state FROM outbox ORDER BY id";

macro_rules! raw {
    ($store:ty) => {
        impl Raw for $store {
            async fn execute(&self, sql: &str) {
                sqlx::query(sql).execute(self.pool()).await.unwrap();
            }
            async fn scalar(&self, sql: &str) -> i64 {
                sqlx::query_scalar(sql)
                    .fetch_one(self.pool())
                    .await
                    .unwrap()
            }
            async fn members(&self) -> Vec<Member> {
                sqlx::query_as(MEMBERS)
                    .fetch_all(self.pool())
                    .await
                    .unwrap()
            }
            async fn open_members(&self) -> Vec<OpenMember> {
                sqlx::query_as(OPEN_MEMBERS)
                    .fetch_all(self.pool())
                    .await
                    .unwrap()
            }
            async fn states(&self) -> Vec<(String, String)> {
                sqlx::query_as(STATES).fetch_all(self.pool()).await.unwrap()
            }
        }
    };
}
raw!(SqliteStore);
raw!(pg::PgStore);

struct Setup<S> {
    dir: tempfile::TempDir,
    store: S,
}

impl<S: Raw> Setup<S> {
    async fn new(store: S, first: &[Option<usize>]) -> Setup<S> {
        let dir = tempfile::tempdir().unwrap();
        let setup = Setup { dir, store };
        setup
            .import(
                "agencies.csv",
                "agency_id,name,kind\nag,Agency,local-authority\n",
            )
            .await;
        let teams: String = TEAMS.iter().map(|t| format!("{t},ag,Team {t}\n")).collect();
        setup
            .import("teams.csv", &format!("team_id,agency_id,name\n{teams}"))
            .await;
        setup.import("people.csv", &people_csv(first)).await;
        setup.store.save_item(&item(), "source").await.unwrap();
        setup
            .store
            .create_rollout(NewRollout {
                id: "r",
                item_id: "nl-1",
                item_version: "v1",
                definition: "{}",
                members: &[],
                audience: Some(&audience()),
                team_posts: &[],
                now: 1_000,
            })
            .await
            .unwrap();
        setup
    }

    fn write(&self, name: &str, text: &str) -> PathBuf {
        let path = self.dir.path().join(name);
        std::fs::write(&path, text).unwrap();
        path
    }

    async fn import(&self, name: &str, text: &str) {
        let path = self.write(name, text);
        let file = read_csv(&path).unwrap_or_else(|e| panic!("{e:?}"));
        self.store
            .import(&file, &path, &Taxonomy::default())
            .await
            .unwrap();
    }

    async fn import_people(
        &self,
        teams: &[Option<usize>],
        now: i64,
        dry_run: bool,
    ) -> DirectoryImport {
        let path = self.write("people.csv", &people_csv(teams));
        let file = read_csv(&path).unwrap_or_else(|e| panic!("{e:?}"));
        let running = [RunningAudience {
            rollout_id: "r".to_owned(),
            query: audience(),
            open: None,
        }];
        self.store
            .import_directory(
                &[(&path, &file)],
                &Taxonomy::default(),
                &running,
                now,
                dry_run,
            )
            .await
            .unwrap()
    }
}

async fn run<S: Raw>(store: S, sequence: Vec<Vec<Option<usize>>>) {
    let setup = Setup::new(store, &sequence[0]).await;
    let store = &setup.store;
    let first = members(store).await;
    // Members are the audience at the start: everyone then in `t-in`.
    let expected: Vec<String> = (0..PEOPLE)
        .filter(|i| sequence[0][*i] == Some(0))
        .map(|i| format!("p-{i}"))
        .collect();
    assert_eq!(
        first
            .iter()
            .map(|m| m.person_id.clone())
            .collect::<Vec<_>>(),
        expected
    );
    let due: BTreeMap<String, Option<i64>> = first
        .iter()
        .map(|m| (m.person_id.clone(), m.next_due_at))
        .collect();
    let mut now = 10_000;
    for teams in &sequence[1..] {
        now += 1_000;
        let before = members(store).await;
        let dry = setup.import_people(teams, now, true).await;
        assert_eq!(members(store).await, before, "a dry run writes nothing");
        let done = setup.import_people(teams, now, false).await;
        assert_eq!(dry, done, "the dry run says what the import does");
        let after = members(store).await;
        assert_eq!(
            after.len(),
            before.len(),
            "members are neither added nor removed"
        );

        let mut left = 0;
        let mut moved = 0;
        let mut back = 0;
        for (was, m) in before.iter().zip(&after) {
            let i: usize = m.person_id[2..].parse().unwrap();
            let reason = match teams[i] {
                None => Some("left"),
                Some(0) => None,
                Some(_) => Some("moved"),
            };
            assert_eq!(m.out_reason.as_deref(), reason, "{m:?} with {teams:?}");
            assert_eq!(m.team_id.as_deref(), Some(TEAMS[0]), "reached in t-in");
            if reason.is_some() {
                assert_eq!(m.next_due_at, None, "{m:?} is not chased");
                assert_eq!(m.out_next_due_at, due[&m.person_id], "{m:?} keeps its step");
            } else {
                assert_eq!(m.next_due_at, due[&m.person_id], "{m:?} is chased");
            }
            match (was.out_reason.as_deref(), reason) {
                (None, Some("left")) => left += 1,
                (None, Some(_)) => moved += 1,
                (Some(_), None) => back += 1,
                _ => {}
            }
        }
        let change = &done.rollouts[0];
        assert_eq!(
            (change.left, change.moved, change.back, change.joiners),
            (left, moved, back, None)
        );

        // The same file again changes nothing.
        let again = setup.import_people(teams, now + 500, false).await;
        assert!(again.rollouts[0].is_empty(), "{again:?}");
        assert_eq!(again.cancelled_messages, 0);
        assert_eq!(members(store).await, after);
    }
}

/// Runs `test` on a fresh store of each kind, in a runtime of its own
/// (a proptest case is not async).
fn block_on<F: Future>(test: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(test)
}

fn sequences() -> impl Strategy<Value = Vec<Vec<Option<usize>>>> {
    proptest::collection::vec(
        proptest::collection::vec(proptest::option::weighted(0.8, 0..TEAMS.len()), PEOPLE),
        2..7,
    )
}

mod members_are_out_exactly_while_they_left_or_moved_and_a_dry_run_agrees {
    use super::*;

    proptest! {
        #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

        #[test]
        fn sqlite(sequence in sequences()) {
            block_on(async { run(both::sqlite().await, sequence).await });
        }

        #[test]
        fn postgres(sequence in sequences()) {
            block_on(async { run(both::postgres().await, sequence).await });
        }
    }
}

/// A person in one import of the open-rollout test: their team, whether
/// they hold the `lead` role, whether they are a `neglect` champion.
type Listed = Option<(usize, bool, bool)>;

fn open_audience() -> AudienceQuery {
    let champions = Selector {
        champion_themes: vec!["neglect".to_owned()],
        ..Selector::default()
    };
    AudienceQuery {
        source: AudienceSource::Directory {
            include: Selector {
                teams: vec![TEAMS[0].to_owned()],
                roles: vec!["lead".to_owned()],
                champion_themes: vec!["neglect".to_owned()],
                ..Selector::default()
            },
            exclude: Selector {
                people: vec!["p-7".to_owned()],
                ..Selector::default()
            },
        },
        waves: vec![
            WaveQuery {
                everyone: false,
                takes: champions,
                first_due_at: 5_000,
            },
            WaveQuery {
                everyone: true,
                takes: Selector::default(),
                first_due_at: 7_000,
            },
        ],
        item_id: "nl-1".to_owned(),
        absences_after: String::new(),
        home_zone: String::new(),
        timing: Vec::new(),
    }
}

/// A key item of the induction: everyone, one wave, an item of its own.
fn induction_audience() -> AudienceQuery {
    AudienceQuery {
        source: AudienceSource::Directory {
            include: Selector::default(),
            exclude: Selector::default(),
        },
        item_id: "key-1".to_owned(),
        ..audience()
    }
}

/// The rollout of the same item that reached team `t-out-2` first.
fn earlier_audience() -> AudienceQuery {
    AudienceQuery {
        source: AudienceSource::Directory {
            include: Selector {
                teams: vec![TEAMS[2].to_owned()],
                ..Selector::default()
            },
            exclude: Selector::default(),
        },
        ..audience()
    }
}

fn listed_people_csv(people: &[Listed]) -> String {
    let mut text = String::from(
        "person_id,display_name,email,agency_id,team_id,roles,manager_id,time_zone\n\
         p-anchor,Anchor Example,anchor@example.org,ag,t-out-1,practitioner,,\n",
    );
    for (i, listed) in people.iter().enumerate() {
        if let Some((team, lead, _)) = listed {
            let roles = if *lead {
                "practitioner;lead"
            } else {
                "practitioner"
            };
            text.push_str(&format!(
                "p-{i},Person {i},p{i}@example.org,ag,{},{roles},,\n",
                TEAMS[*team]
            ));
        }
    }
    text
}

fn champions_csv(people: &[Listed]) -> String {
    let mut text = String::from("person_id,theme,teams\n");
    for (i, listed) in people.iter().enumerate() {
        if let Some((_, _, true)) = listed {
            text.push_str(&format!("p-{i},neglect,{}\n", TEAMS[1]));
        }
    }
    text
}

/// Whom the open rollout's rules take from `people`, and in which wave.
fn rules(people: &[Listed]) -> BTreeMap<String, i64> {
    people
        .iter()
        .enumerate()
        .filter(|(i, _)| *i != 7)
        .filter_map(|(i, listed)| {
            let (team, lead, champion) = (*listed)?;
            if champion {
                Some((format!("p-{i}"), 0))
            } else if team == 0 || lead {
                Some((format!("p-{i}"), 1))
            } else {
                None
            }
        })
        .collect()
}

#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
struct OpenMember {
    rollout_id: String,
    person_id: String,
    wave: i64,
    next_due_at: Option<i64>,
    out_reason: Option<String>,
    joined_at: Option<i64>,
    shift_days: i64,
}

async fn open_members<S: Raw>(store: &S) -> Vec<OpenMember> {
    store.open_members().await
}

/// One import of the open-rollout test.
#[derive(Debug, Clone)]
struct Step {
    people: Vec<Listed>,
    /// Whether the rollout is still open at this import.
    open: bool,
    /// Whether p-6 acknowledges the item (by some other route) before it.
    six_acknowledges: bool,
}

async fn import_listed<S: Raw>(
    setup: &Setup<S>,
    step: &Step,
    now: i64,
    dry_run: bool,
) -> DirectoryImport {
    let people = setup.write("people.csv", &listed_people_csv(&step.people));
    let champions = setup.write("champions.csv", &champions_csv(&step.people));
    let people_file = read_csv(&people).unwrap_or_else(|e| panic!("{e:?}"));
    let champions_file = read_csv(&champions).unwrap_or_else(|e| panic!("{e:?}"));
    let open = step.open.then(|| OpenEnrolment {
        item_version: "v1".to_owned(),
        waves: vec![
            JoinerWave {
                shift_days: 3,
                first_due_at: now + 100,
            },
            JoinerWave {
                shift_days: 0,
                first_due_at: 7_000,
            },
        ],
        new_people_only: false,
    });
    let running = [
        RunningAudience {
            rollout_id: "early".to_owned(),
            query: earlier_audience(),
            open: None,
        },
        RunningAudience {
            rollout_id: "open".to_owned(),
            query: open_audience(),
            open,
        },
        RunningAudience {
            rollout_id: "induction-key-1".to_owned(),
            query: induction_audience(),
            open: Some(OpenEnrolment {
                item_version: "v1".to_owned(),
                waves: vec![JoinerWave {
                    shift_days: 0,
                    first_due_at: now,
                }],
                new_people_only: true,
            }),
        },
    ];
    setup
        .store
        .import_directory(
            &[(&people, &people_file), (&champions, &champions_file)],
            &Taxonomy::default(),
            &running,
            now,
            dry_run,
        )
        .await
        .unwrap_or_else(|e| panic!("{e}"))
}

async fn run_open<S: Raw>(store: S, first: Vec<Listed>, steps: Vec<Step>) {
    let start = Step {
        people: first.clone(),
        open: true,
        six_acknowledges: false,
    };
    let setup = Setup::new(store, &[]).await;
    let store = &setup.store;
    // The directory at the start, without the rollout "r" of `Setup`.
    store.execute("DELETE FROM rollout_members").await;
    import_listed(&setup, &start, 2_000, false).await;
    for (id, audience) in [("early", earlier_audience()), ("open", open_audience())] {
        store
            .create_rollout(NewRollout {
                id,
                item_id: "nl-1",
                item_version: "v1",
                definition: "{}",
                members: &[],
                audience: Some(&audience),
                team_posts: &[],
                now: 3_000,
            })
            .await
            .unwrap();
    }
    // The induction, set up with nobody: only people new in a later
    // import join it, never movers or people listed again.
    let key_item = LearningItem {
        id: "key-1".to_owned(),
        ..item()
    };
    store.save_item(&key_item, "source").await.unwrap();
    store
        .create_rollout(NewRollout {
            id: "induction-key-1",
            item_id: "key-1",
            item_version: "v1",
            definition: "{}",
            members: &[],
            audience: None,
            team_posts: &[],
            now: 3_000,
        })
        .await
        .unwrap();
    let mut ever_listed: BTreeSet<String> = listed_ids(&first);
    let mut inducted: BTreeSet<String> = BTreeSet::new();
    let earlier: Vec<String> = first
        .iter()
        .enumerate()
        .filter(|(_, l)| matches!(l, Some((2, _, _))))
        .map(|(i, _)| format!("p-{i}"))
        .collect();
    // Expected members of "open": person -> (wave, joined at).
    let mut expected: BTreeMap<String, (i64, Option<i64>)> = rules(&first)
        .into_iter()
        .filter(|(p, _)| !earlier.contains(p))
        .map(|(p, wave)| (p, (wave, None)))
        .collect();
    let mut acknowledged = false;
    let mut now = 10_000;
    for step in &steps {
        now += 1_000;
        if step.six_acknowledges && !acknowledged {
            acknowledged = true;
            store
                .execute(&format!(
                    "INSERT INTO acknowledgements (person_id, item_id, item_version, channel, method, at)
                     VALUES ('p-6', 'nl-1', 'v1', 'web', 'link', {now})"
                ))
                .await;
        }
        let before = open_members(store).await;
        let dry = import_listed(&setup, step, now, true).await;
        assert_eq!(
            open_members(store).await,
            before,
            "a dry run writes nothing"
        );
        let done = import_listed(&setup, step, now, false).await;
        assert_eq!(dry, done, "the dry run says what the import does");

        let listed_now = listed_ids(&step.people);
        let new: BTreeSet<String> = listed_now.difference(&ever_listed).cloned().collect();
        ever_listed.extend(listed_now.iter().cloned());
        inducted.extend(new.iter().cloned());
        let key_members: Vec<OpenMember> = open_members(store)
            .await
            .into_iter()
            .filter(|m| m.rollout_id == "induction-key-1")
            .collect();
        assert_eq!(
            key_members
                .iter()
                .map(|m| m.person_id.clone())
                .collect::<BTreeSet<_>>(),
            inducted,
            "the induction has exactly the people new in an import since it was set up, after {step:?}"
        );
        for m in &key_members {
            assert_eq!(
                m.out_reason.is_none(),
                listed_now.contains(&m.person_id),
                "{m:?}"
            );
        }
        assert_eq!(
            done.induction.as_ref().map(|i| i.joiners),
            Some(u64::try_from(new.len()).unwrap()),
            "the import counts its joiners"
        );

        let now_in = rules(&step.people);
        let mut joined = 0;
        if step.open {
            for (person, wave) in &now_in {
                let reached = earlier.contains(person) || expected.contains_key(person);
                let six = person == "p-6" && acknowledged;
                if !reached && !six {
                    expected.insert(person.clone(), (*wave, Some(now)));
                    joined += 1;
                }
            }
        }
        let after = open_members(store).await;
        let open: Vec<&OpenMember> = after.iter().filter(|m| m.rollout_id == "open").collect();
        let got: BTreeMap<String, (i64, Option<i64>)> = open
            .iter()
            .map(|m| (m.person_id.clone(), (m.wave, m.joined_at)))
            .collect();
        assert_eq!(got, expected, "members after {step:?}");
        // Nobody twice: not in both rollouts of the item, not in one twice.
        assert_eq!(open.len(), got.len());
        for m in &after {
            if m.rollout_id == "early" {
                assert!(!got.contains_key(&m.person_id), "{m:?} is in both");
            }
        }
        // Chased exactly while in the audience now.
        for m in &open {
            assert_eq!(
                m.out_reason.is_none(),
                now_in.contains_key(&m.person_id),
                "{m:?} with {step:?}"
            );
            if m.joined_at == Some(now) {
                let (shift, due) = if m.wave == 0 {
                    (3, now + 100)
                } else {
                    (0, 7_000)
                };
                assert_eq!((m.shift_days, m.next_due_at), (shift, Some(due)), "{m:?}");
            } else if m.joined_at.is_none() {
                assert_eq!(m.shift_days, 0, "{m:?}");
            }
        }
        let change = done
            .rollouts
            .iter()
            .find(|c| c.rollout_id == "open")
            .unwrap();
        assert_eq!(change.joiners, step.open.then_some(joined));
        let counted = store
            .scalar("SELECT members FROM rollout_counts WHERE rollout_id = 'open'")
            .await;
        assert_eq!(counted, i64::try_from(got.len()).unwrap(), "the kept count");

        // The same files again enrol nobody.
        let again = import_listed(&setup, step, now + 500, false).await;
        let change = again
            .rollouts
            .iter()
            .find(|c| c.rollout_id == "open")
            .unwrap();
        assert_eq!(change.joiners, step.open.then_some(0), "{again:?}");
        assert_eq!(open_members(store).await, after);
    }
}

/// The ids of the people a step's file lists.
fn listed_ids(people: &[Listed]) -> BTreeSet<String> {
    people
        .iter()
        .enumerate()
        .filter(|(_, l)| l.is_some())
        .map(|(i, _)| format!("p-{i}"))
        .collect()
}

fn listed() -> impl Strategy<Value = Listed> {
    proptest::option::weighted(
        0.8,
        (
            0..TEAMS.len(),
            proptest::bool::weighted(0.2),
            proptest::bool::weighted(0.2),
        ),
    )
}

fn open_steps() -> impl Strategy<Value = (Vec<Listed>, Vec<Step>)> {
    (
        proptest::collection::vec(listed(), PEOPLE),
        proptest::collection::vec(
            (
                proptest::collection::vec(listed(), PEOPLE),
                proptest::bool::weighted(0.8),
                proptest::bool::weighted(0.3),
            ),
            1..6,
        ),
    )
        .prop_map(|(first, steps)| {
            let steps = steps
                .into_iter()
                .map(|(people, open, six_acknowledges)| Step {
                    people,
                    open,
                    six_acknowledges,
                })
                .collect();
            (first, steps)
        })
}

mod an_open_rollout_has_its_audience_now_plus_those_already_reached_nobody_twice {
    use super::*;

    proptest! {
        #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

        #[test]
        fn sqlite((first, steps) in open_steps()) {
            block_on(async { run_open(both::sqlite().await, first, steps).await });
        }

        #[test]
        fn postgres((first, steps) in open_steps()) {
            block_on(async { run_open(both::postgres().await, first, steps).await });
        }
    }
}

fn delivery(person: &str, key: &str) -> NewDelivery {
    NewDelivery {
        idempotency_key: key.to_owned(),
        rollout_id: "r".to_owned(),
        person_id: person.to_owned(),
        recipient_id: person.to_owned(),
        wave: 0,
        step_kind: cascade_model::rollout::StepKind::Reminder,
        step_number: 1,
        channel: "email".to_owned(),
        channel_rank: 0,
        due_at: 0,
    }
}

async fn states<S: Raw>(store: &S) -> Vec<(String, String)> {
    store.states().await
}

/// The scheduler and dispatcher read members and claim rows outside the
/// import's transaction: what they write after an import took a member
/// out must not chase that member again.
async fn a_member_taken_out_meanwhile_is_not_chased_by_a_scheduler_or_dispatcher_behind_it(
    store: impl Raw,
) {
    let setup = Setup::new(store, &[Some(0), Some(0), Some(0)]).await;
    let store = &setup.store;
    // Queued and claimed before the import: one send in flight each.
    store
        .materialise(
            &[
                delivery("p-0", "in-flight-0"),
                delivery("p-1", "in-flight-1"),
            ],
            &[],
            100,
        )
        .await
        .unwrap();
    let claimed = store.claim(100, 10, 60_000, &[]).await.unwrap();
    assert_eq!(claimed.len(), 2);
    // p-0 leaves, p-1 moves out; p-2 stays.
    let done = setup
        .import_people(&[None, Some(1), Some(0)], 200, false)
        .await;
    assert_eq!((done.rollouts[0].left, done.rollouts[0].moved), (1, 1));
    assert_eq!(
        done.cancelled_messages, 0,
        "sends in flight are left to finish"
    );

    // The dispatcher's sends come back to be tried again: cancelled instead.
    let outcomes: Vec<(i64, DeliveryOutcome)> = claimed
        .iter()
        .map(|c| {
            (
                c.id,
                DeliveryOutcome::RetryAt {
                    at: 1_000,
                    reason: "busy".to_owned(),
                },
            )
        })
        .collect();
    store.record(&outcomes, &[], 300).await.unwrap();
    // A scheduler that read the members before the import queues their
    // next steps and moves them on: nothing is queued for the two out,
    // and they stay unscheduled; p-2's goes as usual.
    let advance = |person: &str| MemberAdvance {
        rollout_id: "r".to_owned(),
        person_id: person.to_owned(),
        next_step: 1,
        next_due_at: Some(9_000),
        shift_days: None,
    };
    store
        .materialise(
            &[
                delivery("p-0", "late-0"),
                delivery("p-1", "late-1"),
                delivery("p-2", "late-2"),
            ],
            &[advance("p-0"), advance("p-1"), advance("p-2")],
            400,
        )
        .await
        .unwrap();
    assert_eq!(
        states(store).await,
        [
            ("in-flight-0".to_owned(), "cancelled".to_owned()),
            ("in-flight-1".to_owned(), "cancelled".to_owned()),
            ("late-2".to_owned(), "due".to_owned()),
        ]
    );
    let due: Vec<(String, Option<i64>)> = members(store)
        .await
        .into_iter()
        .map(|m| (m.person_id, m.next_due_at))
        .collect();
    assert_eq!(
        due,
        [
            ("p-0".to_owned(), None),
            ("p-1".to_owned(), None),
            ("p-2".to_owned(), Some(9_000))
        ]
    );
    // Nor are their dead letters tried again.
    store
        .execute("UPDATE outbox SET state = 'dead' WHERE idempotency_key LIKE 'in-flight-%'")
        .await;
    assert_eq!(store.retry_dead_letters("r", 500).await.unwrap(), 0);
}

crate::both::on_both_stores!(
    a_member_taken_out_meanwhile_is_not_chased_by_a_scheduler_or_dispatcher_behind_it
);
