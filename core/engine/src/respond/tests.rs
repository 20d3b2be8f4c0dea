//! The acknowledgement service on its own, over a real store holding the
//! demo directory and one rollout of the neglect briefing, every row made
//! through the store traits: the recipient check, each record, each
//! refusal, and the group commit answering like single writes.

use super::*;
use crate::project::{Project, scaffold};
use cascade_model::content;
use cascade_model::directory::read_csv;
use cascade_model::rollout::parse_definition;
use cascade_store::{MemberAdvance, NewDelivery, NewMember, NewRollout, NewTeamPost, SqliteStore};
use chrono::NaiveDate;

const ROLLOUT: &str = "neglect-briefing-2026-12";
const T0: i64 = 1_796_117_400_000; // 2026-12-01 09:30 UTC

struct Fixture {
    _dir: tempfile::TempDir,
    store: Arc<SqliteStore>,
    /// Outbox row ids by (about, recipient, step kind, step number).
    rows: Vec<((String, String, StepKind, u32), i64)>,
    /// The rollout's post in the channel of the team `cs-north`.
    post: i64,
}

impl Fixture {
    /// The demo directory imported, the neglect briefing kept, its rollout
    /// started for Amara, Tom and Sofia (team `cs-north`) and Rachel
    /// (`cs-south`) with a post in the channel of `cs-north`, and these rows
    /// in the outbox: the initial send to each of the first three, Amara's
    /// and Tom's first follow-up, a second follow-up of Amara's that the
    /// rollout does not have, and an escalation about Tom sent to Amara (his
    /// champion).
    async fn new() -> Fixture {
        let dir = tempfile::tempdir().unwrap();
        scaffold(dir.path()).unwrap();
        let project = Project::open(dir.path()).unwrap();
        let store = Arc::new(
            SqliteStore::open(&project.store_path().to_string_lossy())
                .await
                .unwrap(),
        );
        for name in ["agencies.csv", "teams.csv", "people.csv", "champions.csv"] {
            let path = project.directory_dir().join(name);
            let file = read_csv(&path).unwrap();
            store.import(&file, &path, &project.taxonomy).await.unwrap();
        }
        let (items, _) = content::load_dir(&project.content_dir(), &project.taxonomy);
        let loaded = items
            .into_iter()
            .find(|l| l.item.id == "7mb-neglect-seeing-the-child")
            .unwrap();
        store.save_item(&loaded.item, &loaded.text).await.unwrap();
        let path = project.rollouts_dir().join("neglect-briefing.toml");
        let text = std::fs::read_to_string(&path).unwrap();
        let definition = parse_definition(&path, &text).unwrap();
        let people = ["p-amara-okafor", "p-tom-reilly", "p-sofia-marin"];
        let members: Vec<NewMember> = people
            .iter()
            .chain(&["p-rachel-adeyemi"])
            .map(|p| NewMember {
                person_id: (*p).to_owned(),
                wave: 0,
                first_due_at: T0,
            })
            .collect();
        store
            .create_rollout(NewRollout {
                id: ROLLOUT,
                item_id: &loaded.item.id,
                item_version: &loaded.item.version.0,
                definition: &serde_json::to_string(&definition).unwrap(),
                members: &members,
                audience: None,
                team_posts: &[NewTeamPost {
                    team_id: "cs-north".to_owned(),
                    channel: "discord".to_owned(),
                    address: "c-north".to_owned(),
                    due_at: T0,
                }],
                now: T0,
            })
            .await
            .unwrap();
        let row = |about: &str, recipient: &str, kind: StepKind, number: u32| NewDelivery {
            idempotency_key: format!("{ROLLOUT}/{about}/{}-{number}/{recipient}/0", kind.as_str()),
            rollout_id: ROLLOUT.to_owned(),
            person_id: about.to_owned(),
            recipient_id: recipient.to_owned(),
            wave: 0,
            step_kind: kind,
            step_number: number,
            channel: "outbox".to_owned(),
            channel_rank: 0,
            due_at: T0,
        };
        let mut rows: Vec<NewDelivery> = people
            .iter()
            .map(|p| row(p, p, StepKind::Initial, 1))
            .collect();
        rows.push(row(
            "p-amara-okafor",
            "p-amara-okafor",
            StepKind::FollowUp,
            1,
        ));
        rows.push(row("p-tom-reilly", "p-tom-reilly", StepKind::FollowUp, 1));
        rows.push(row(
            "p-amara-okafor",
            "p-amara-okafor",
            StepKind::FollowUp,
            2,
        ));
        rows.push(row(
            "p-tom-reilly",
            "p-amara-okafor",
            StepKind::Escalation,
            1,
        ));
        let advances: Vec<MemberAdvance> = people
            .iter()
            .chain(&["p-rachel-adeyemi"])
            .map(|p| MemberAdvance {
                rollout_id: ROLLOUT.to_owned(),
                person_id: (*p).to_owned(),
                next_step: 1,
                next_due_at: None,
                shift_days: None,
            })
            .collect();
        store.materialise(&rows, &advances, T0).await.unwrap();
        let mut ids = Vec::new();
        for id in 1..=rows.len() as i64 {
            let d = store.delivery(id).await.unwrap().unwrap();
            ids.push((
                (d.person_id, d.recipient_id, d.step_kind, d.step_number),
                d.id,
            ));
        }
        let post = store.team_posts(ROLLOUT).await.unwrap()[0].id;
        Fixture {
            _dir: dir,
            store,
            rows: ids,
            post,
        }
    }

    fn row(&self, about: &str, recipient: &str, kind: StepKind, number: u32) -> i64 {
        self.rows
            .iter()
            .find(|((a, r, k, n), _)| a == about && r == recipient && *k == kind && *n == number)
            .unwrap_or_else(|| panic!("no {kind} {number} about {about} to {recipient}"))
            .1
    }

    fn initial(&self, person: &str) -> i64 {
        self.row(person, person, StepKind::Initial, 1)
    }
}

fn via(at: i64) -> Via<'static> {
    Via { channel: "web", at }
}

fn refused<T: std::fmt::Debug>(result: Result<T, Denied>) -> Refused {
    match result {
        Err(Denied::Refused(refused)) => refused,
        other => panic!("expected a refusal, got {other:?}"),
    }
}

#[tokio::test]
async fn a_delivery_is_for_its_recipient_alone() {
    let f = Fixture::new().await;
    let service = Responses::new(f.store.clone());
    let amaras = f.initial("p-amara-okafor");
    let delivery = service
        .delivery_for("p-amara-okafor", amaras)
        .await
        .unwrap();
    assert_eq!(delivery.id, amaras);
    assert_eq!(delivery.recipient_id, "p-amara-okafor");
    assert_eq!(
        refused(service.delivery_for("p-tom-reilly", amaras).await),
        Refused::SomeoneElse
    );
    assert_eq!(
        refused(service.delivery_for("p-amara-okafor", 9_999).await),
        Refused::NoSuchDelivery
    );
}

#[tokio::test]
async fn an_acknowledgement_is_recorded_once_and_a_repeat_says_when() {
    let f = Fixture::new().await;
    let service = Responses::new(f.store.clone());
    let amaras = f.initial("p-amara-okafor");
    let first = service
        .acknowledge("p-amara-okafor", amaras, AckMethod::Link, via(T0 + 1))
        .await
        .unwrap();
    assert_eq!(first.outcome, AckOutcome::Recorded);
    assert_eq!(first.delivery.id, amaras);
    let again = service
        .acknowledge("p-amara-okafor", amaras, AckMethod::Button, via(T0 + 2))
        .await
        .unwrap();
    assert_eq!(
        again.outcome,
        AckOutcome::AlreadyAcknowledged { at: T0 + 1 }
    );
    // Someone else's delivery records nothing for either of them.
    let toms = f.initial("p-tom-reilly");
    assert_eq!(
        refused(
            service
                .acknowledge("p-amara-okafor", toms, AckMethod::Link, via(T0))
                .await
        ),
        Refused::SomeoneElse
    );
    let tom = service
        .acknowledge("p-tom-reilly", toms, AckMethod::Link, via(T0 + 3))
        .await
        .unwrap();
    assert_eq!(tom.outcome, AckOutcome::Recorded);
}

#[tokio::test]
async fn an_escalation_about_someone_else_is_not_its_readers_to_acknowledge() {
    let f = Fixture::new().await;
    let service = Responses::new(f.store.clone());
    let escalation = f.row("p-tom-reilly", "p-amara-okafor", StepKind::Escalation, 1);
    assert_eq!(
        refused(
            service
                .acknowledge("p-amara-okafor", escalation, AckMethod::Button, via(T0))
                .await
        ),
        Refused::NotTheirLearning
    );
    // Neither Amara nor Tom acknowledged anything through it.
    for person in ["p-amara-okafor", "p-tom-reilly"] {
        let own = service
            .acknowledge(person, f.initial(person), AckMethod::Link, via(T0 + 5))
            .await
            .unwrap();
        assert_eq!(own.outcome, AckOutcome::Recorded, "{person}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_group_commit_answers_each_acknowledgement_as_single_writes_would() {
    let f = Fixture::new().await;
    let grouped = Arc::new(Responses::with_group_commit(f.store.clone()));
    let people = ["p-amara-okafor", "p-tom-reilly", "p-sofia-marin"];
    let acknowledge = |person: &'static str, at: i64| {
        let grouped = grouped.clone();
        let delivery = f.initial(person);
        tokio::spawn(async move {
            grouped
                .acknowledge(person, delivery, AckMethod::Link, via(at))
                .await
                .map(|a| a.outcome)
                .map_err(|e| e.to_string())
        })
    };
    let firsts: Vec<_> = people.iter().map(|p| acknowledge(p, T0 + 10)).collect();
    for (person, task) in people.iter().zip(firsts) {
        assert_eq!(task.await.unwrap(), Ok(AckOutcome::Recorded), "{person}");
    }
    let repeats: Vec<_> = people.iter().map(|p| acknowledge(p, T0 + 20)).collect();
    for (person, task) in people.iter().zip(repeats) {
        assert_eq!(
            task.await.unwrap(),
            Ok(AckOutcome::AlreadyAcknowledged { at: T0 + 10 }),
            "{person}"
        );
    }
    // Refusals are decided before anything is queued.
    assert_eq!(
        refused(
            grouped
                .acknowledge(
                    "p-tom-reilly",
                    f.initial("p-sofia-marin"),
                    AckMethod::Link,
                    via(T0)
                )
                .await
        ),
        Refused::SomeoneElse
    );
}

#[tokio::test]
async fn a_follow_up_answer_is_found_in_the_rollout_and_the_first_stands() {
    let f = Fixture::new().await;
    let service = Responses::new(f.store.clone());
    let follow_up = f.row("p-amara-okafor", "p-amara-okafor", StepKind::FollowUp, 1);
    let chosen = service
        .follow_up_answer("p-amara-okafor", follow_up, 1)
        .await
        .unwrap();
    assert_eq!(
        chosen.question,
        "Have you used the learning from this briefing in your practice?"
    );
    assert_eq!(chosen.answer, "Used it in practice");
    assert_eq!(
        service.answer(&chosen, via(T0)).await.unwrap(),
        Recorded::First
    );
    let other = service
        .follow_up_answer("p-amara-okafor", follow_up, 3)
        .await
        .unwrap();
    assert_eq!(other.answer, "Not relevant to my role");
    assert_eq!(
        service.answer(&other, via(T0 + 1)).await.unwrap(),
        Recorded::Repeat,
        "the first answer stands"
    );
    for n in [0, 4] {
        assert_eq!(
            refused(
                service
                    .follow_up_answer("p-amara-okafor", follow_up, n)
                    .await
            ),
            Refused::NoSuchAnswer,
            "answer {n}"
        );
    }
    assert_eq!(
        refused(service.follow_up_answer("p-tom-reilly", follow_up, 1).await),
        Refused::SomeoneElse
    );
}

#[tokio::test]
async fn only_a_follow_up_in_its_rollout_takes_an_answer() {
    let f = Fixture::new().await;
    let service = Responses::new(f.store.clone());
    let initial = f.initial("p-amara-okafor");
    assert_eq!(
        refused(service.follow_up_answer("p-amara-okafor", initial, 1).await),
        Refused::NotAFollowUp
    );
    let escalation = f.row("p-tom-reilly", "p-amara-okafor", StepKind::Escalation, 1);
    assert_eq!(
        refused(
            service
                .follow_up_answer("p-amara-okafor", escalation, 1)
                .await
        ),
        Refused::NotAFollowUp
    );
    let missing = f.row("p-amara-okafor", "p-amara-okafor", StepKind::FollowUp, 2);
    assert_eq!(
        refused(service.follow_up_answer("p-amara-okafor", missing, 1).await),
        Refused::NoSuchFollowUp
    );
}

#[tokio::test]
async fn a_champion_confirms_for_the_teams_they_cover_and_a_repeat_is_kept_once() {
    let f = Fixture::new().await;
    let service = Responses::new(f.store.clone());
    let teams = service.champion_teams("p-amara-okafor").await.unwrap();
    let ids: Vec<&str> = teams.iter().map(|(id, _)| id.as_str()).collect();
    assert_eq!(ids, ["cs-north", "mash"]);
    assert_eq!(
        refused(service.champion_teams("p-tom-reilly").await),
        Refused::NotAChampion
    );
    assert_eq!(covering(Vec::new()), Err(Refused::NotAChampion));
    assert_eq!(covering(teams.clone()), Ok(teams.clone()));
    let checked = CheckedCascade {
        team_id: "mash".to_owned(),
        session_date: NaiveDate::from_ymd_opt(2026, 12, 1).unwrap(),
        present: 6,
        method: "team-meeting",
        note: None,
    };
    let item = "7mb-neglect-seeing-the-child";
    assert_eq!(
        service
            .confirm_cascade("p-amara-okafor", item, &checked, via(T0))
            .await
            .unwrap(),
        Recorded::First
    );
    assert_eq!(
        service
            .confirm_cascade("p-amara-okafor", item, &checked, via(T0 + 1))
            .await
            .unwrap(),
        Recorded::Repeat
    );
    assert_eq!(team_name(&teams, "mash"), teams[1].1);
    assert_eq!(team_name(&teams, "cs-south"), "");
}

#[tokio::test]
async fn a_team_post_acknowledges_only_for_members_of_its_team() {
    let f = Fixture::new().await;
    let service = Responses::new(f.store.clone());
    // Rachel is in the rollout but in another team; Helen is not in it.
    for person in ["p-rachel-adeyemi", "p-helen-marsh"] {
        assert_eq!(
            refused(
                service
                    .acknowledge_team_post(person, f.post, AckMethod::Button, via(T0))
                    .await
            ),
            Refused::NotInTeam,
            "{person}"
        );
    }
    assert_eq!(
        refused(
            service
                .acknowledge_team_post("p-amara-okafor", 9_999, AckMethod::Button, via(T0))
                .await
        ),
        Refused::NotInTeam
    );
    let through_post = service
        .acknowledge_team_post("p-amara-okafor", f.post, AckMethod::Button, via(T0 + 1))
        .await
        .unwrap();
    assert_eq!(
        through_post,
        PostAcknowledged {
            rollout_id: ROLLOUT.to_owned(),
            outcome: AckOutcome::Recorded,
        }
    );
    // The same acknowledgement as her own button's.
    let own = service
        .acknowledge(
            "p-amara-okafor",
            f.initial("p-amara-okafor"),
            AckMethod::Button,
            via(T0 + 2),
        )
        .await
        .unwrap();
    assert_eq!(own.outcome, AckOutcome::AlreadyAcknowledged { at: T0 + 1 });
}
