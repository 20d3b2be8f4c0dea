//! `Reports` and `AnnualReports` on both stores: one small partnership's
//! rollouts, sends, acknowledgements, answers and confirmations written
//! as the engine would have left them, every query's answer checked, and
//! the two stores' answers compared whole (types, ordering, NULLs).

use super::*;
use crate::pg::PgStore;
use cascade_model::rollout::StepKind;

/// Raw SQL on either store, for the rows the engine would have written.
trait Exec: Reports + AnnualReports {
    fn exec(&self, sql: &str) -> impl Future<Output = ()>;
}

impl Exec for SqliteStore {
    async fn exec(&self, sql: &str) {
        sqlx::query(sql)
            .execute(self.pool())
            .await
            .unwrap_or_else(|e| panic!("{sql}: {e}"));
    }
}

impl Exec for PgStore {
    async fn exec(&self, sql: &str) {
        sqlx::query(sql)
            .execute(self.pool())
            .await
            .unwrap_or_else(|e| panic!("{sql}: {e}"));
    }
}

/// An item version with two check questions and a theme.
const SOURCE: &str = "+++
themes = [\"neglect\", \"cse\"]
[[check_questions]]
question = \"First?\"
options = [\"a\", \"b\"]
answer = \"a\"
explanation = \"e\"
section = \"s\"
[[check_questions]]
question = \"Second?\"
options = [\"a\", \"b\"]
answer = \"b\"
explanation = \"e\"
section = \"s\"
+++
Body.
";

/// Six minutes, a wait bucket.
const BUCKET: i64 = 360_000;

/// Three teams in two agencies; Eve (p-5) has left. r-1 (item it-1 v1,
/// created at 1000) reaches Ann, Bob, Cat (moved out since), Dan and p-9
/// (no longer in the directory); r-2 (it-1, cancelled) Bob; r-3 (it-2,
/// created at 5000, paused) Dan.
async fn write(store: &impl Exec) {
    let rows = [
        "INSERT INTO agencies (id, name, kind, updated_at) VALUES
            ('ag-a', 'Agency A', 'local-authority', 'x'), ('ag-b', 'Agency B', 'police', 'x')",
        "INSERT INTO teams (id, agency_id, name, updated_at) VALUES
            ('t-1', 'ag-a', 'East', 'x'), ('t-2', 'ag-a', 'West', 'x'), ('t-3', 'ag-b', 'Police', 'x')",
        "INSERT INTO people (id, display_name, email, agency_id, team_id, active, updated_at, absent_until) VALUES
            ('p-1', 'Ann Example', 'ann@a.example', 'ag-a', 't-1', 1, 'x', NULL),
            ('p-2', 'Bob 100%_Example', 'bob@a.example', 'ag-a', 't-1', 1, 'x', NULL),
            ('p-3', 'Cat Example', 'cat@a.example', 'ag-a', 't-2', 1, 'x', '2026-03-10'),
            ('p-4', 'dan example', 'dan@b.example', 'ag-b', 't-3', 1, 'x', NULL),
            ('p-5', 'Eve Example', 'eve@b.example', 'ag-b', 't-3', 0, 'x', NULL)",
        "INSERT INTO person_roles (person_id, role) VALUES
            ('p-1', 'manager'), ('p-1', 'practitioner'), ('p-2', 'practitioner'),
            ('p-4', 'safeguarding-lead'), ('p-5', 'practitioner')",
        "INSERT INTO champions (person_id, theme, active, updated_at) VALUES
            ('p-2', 'neglect', 1, 'x'), ('p-4', 'cse', 1, 'x'), ('p-3', 'neglect', 0, 'x')",
        "INSERT INTO champion_teams (person_id, theme, team_id) VALUES
            ('p-2', 'neglect', 't-1'), ('p-2', 'neglect', 't-2'), ('p-4', 'cse', 't-3'),
            ('p-3', 'neglect', 't-2')",
        "INSERT INTO channel_identities (person_id, channel, address, linked_at, unreachable_at) VALUES
            ('p-1', 'telegram', '111', 'x', 5), ('p-1', 'email', 'ann@a.example', 'x', NULL),
            ('p-1', 'email', 'ann2@a.example', 'x', 7), ('p-2', 'email', 'bob@a.example', 'x', NULL)",
        &format!(
            "INSERT INTO items (id, version, kind, title, status, embargoed_until, source, first_seen_at) VALUES
                ('it-1', 'v1', 'seven-minute-briefing', 'Neglect', 'published', NULL, '{SOURCE}', 'x'),
                ('it-2', 'v1', 'newsletter-item', 'Exploitation', 'published', '2026-04-01', 'no front matter', 'x')"
        ),
        "INSERT INTO rollouts (id, item_id, item_version, definition, state, created_at, updated_at) VALUES
            ('r-1', 'it-1', 'v1', '{\"r\":1}', 'active', 1000, 1000),
            ('r-2', 'it-1', 'v1', '{\"r\":2}', 'cancelled', 2000, 2000),
            ('r-3', 'it-2', 'v1', '{\"r\":3}', 'paused', 5000, 5000)",
        "INSERT INTO rollout_members (rollout_id, person_id, wave, next_due_at, acknowledged_at,
                                     team_id, agency_id, out_reason, out_at, joined_at, shift_days) VALUES
            ('r-1', 'p-1', 0, NULL, 720105, 't-1', 'ag-a', NULL, NULL, NULL, 0),
            ('r-1', 'p-2', 0, 9000, NULL, 't-1', 'ag-a', NULL, NULL, NULL, 0),
            ('r-1', 'p-3', 1, NULL, NULL, 't-2', 'ag-a', 'moved', 50, 30, 2),
            ('r-1', 'p-4', 0, NULL, 1200, 't-3', 'ag-b', NULL, NULL, NULL, 0),
            ('r-1', 'p-9', 1, 9000, NULL, NULL, NULL, NULL, NULL, NULL, 1),
            ('r-2', 'p-2', 0, NULL, NULL, 't-1', 'ag-a', NULL, NULL, NULL, 0),
            ('r-3', 'p-4', 0, 9000, NULL, 't-3', 'ag-b', NULL, NULL, NULL, 0)",
        "INSERT INTO outbox (idempotency_key, rollout_id, person_id, recipient_id, wave, step_kind,
                            step_number, channel, channel_rank, state, due_at, sent_at, updated_at) VALUES
            ('k1', 'r-1', 'p-1', 'p-1', 0, 'initial', 0, 'email', 0, 'sent', 90, 150, 0),
            ('k2', 'r-1', 'p-1', 'p-1', 0, 'initial', 0, 'telegram', 1, 'sent', 90, 100, 0),
            ('k3', 'r-1', 'p-4', 'p-4', 0, 'initial', 0, 'email', 0, 'sent', 90, 200, 0),
            ('k4', 'r-1', 'p-2', 'p-1', 0, 'escalation', 1, 'email', 0, 'sent', 90, 300, 0),
            ('k5', 'r-1', 'p-2', 'p-2', 0, 'initial', 0, 'email', 0, 'due', 90, NULL, 0),
            ('k6', 'r-1', 'p-2', 'p-2', 0, 'reminder', 1, 'email', 0, 'sent', 90, 400, 0),
            ('k7', 'r-3', 'p-4', 'p-4', 0, 'initial', 0, 'email', 0, 'sent', 90, 5100, 0)",
        "INSERT INTO acknowledgements (id, person_id, item_id, item_version, rollout_id, channel, method, at) VALUES
            (1, 'p-1', 'it-1', 'v1', 'r-1', 'web', 'link', 720105),
            (2, 'p-4', 'it-1', 'v1', 'r-1', 'web', 'link', 1200),
            (3, 'p-2', 'it-1', 'v0', NULL, 'web', 'link', 10)",
        "INSERT INTO follow_up_answers (rollout_id, person_id, follow_up, answer, example, channel, at, reason) VALUES
            ('r-1', 'p-1', 1, 'yes', NULL, 'web', 500, NULL),
            ('r-1', 'p-4', 1, 'yes', 'an example', 'web', 600, NULL),
            ('r-1', 'p-2', 1, 'no', NULL, 'web', 700, 'time'),
            ('r-1', 'p-1', 2, 'no', NULL, 'web', 800, NULL),
            ('r-3', 'p-4', 1, 'maybe', NULL, 'web', 5500, NULL)",
        "INSERT INTO check_answers (person_id, item_id, item_version, question, question_digest,
                                   first_answer, right_first_time, attempts, answered_at, acknowledgement_id) VALUES
            ('p-1', 'it-1', 'v1', 1, 'd1', 1, 1, 1, 700000, 1),
            ('p-4', 'it-1', 'v1', 1, 'd1', 2, 0, 2, 1100, 2),
            ('p-4', 'it-1', 'v1', 2, 'd2', 2, 1, 1, 1150, 2),
            ('p-2', 'it-1', 'v1', 1, 'd1', 1, 1, 1, 600, NULL)",
        "INSERT INTO refresher_answers (rollout_id, person_id, refresher, delivery_id, item_id, item_version,
                                       question, question_digest, first_answer, right_first_time, attempts,
                                       answered_at, channel, at) VALUES
            ('r-1', 'p-4', 1, 3, 'it-1', 'v1', 2, 'd2', 1, 0, 2, 9100, 'web', 9000),
            ('r-1', 'p-1', 1, 1, 'it-1', 'v1', 1, 'd1', 1, 1, 1, 9200, 'web', 9000)",
        "INSERT INTO cascade_confirmations (champion_id, item_id, team_id, session_date, present, method, channel, at) VALUES
            ('p-2', 'it-1', 't-1', '2026-03-02', 6, 'team-meeting', 'web', 50),
            ('p-2', 'it-1', 't-1', '2026-03-09', 4, 'supervision', 'web', 60),
            ('p-4', 'it-2', 't-3', '2026-03-02', 3, 'email', 'web', 70)",
    ];
    for sql in rows {
        store.exec(sql).await;
    }
}

/// Every answer of [`Reports`] and [`AnnualReports`] over the fixture.
#[derive(Debug, PartialEq)]
struct Answers {
    created: Vec<String>,
    feedback: Vec<FeedbackRow>,
    r1: Option<ReportRollout>,
    r3: Option<ReportRollout>,
    missing: Option<ReportRollout>,
    confirmations: Vec<ConfirmationRow>,
    coverage: Vec<TeamCoverage>,
    awaiting: Vec<(String, String)>,
    outstanding: Vec<OutstandingPerson>,
    tallies: Vec<AnswerTally>,
    found: Vec<FoundPerson>,
    found_escaped: Vec<FoundPerson>,
    identities: Vec<IdentityStatus>,
    stamp_scopes: Vec<String>,
    directory: DirectoryRows,
    annual: Vec<AnnualRollout>,
    figures: Vec<GroupFigures>,
    waits: Vec<WaitBucket>,
    groups: Vec<DirectoryGroup>,
    champion_teams: Vec<ChampionTeam>,
    confirmed: Vec<ConfirmedTeam>,
    answers: Vec<RolloutAnswer>,
    checks: Vec<RolloutCheck>,
}

async fn answers(store: &impl Exec) -> Answers {
    let ids = |ids: &[&str]| ids.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>();
    Answers {
        created: store.rollouts_created(1000, 5000).await.unwrap(),
        feedback: store.feedback(0, 5600).await.unwrap(),
        r1: store.report_rollout("r-1").await.unwrap(),
        r3: store.report_rollout("r-3").await.unwrap(),
        missing: store.report_rollout("r-9").await.unwrap(),
        confirmations: store.confirmations_of("it-1").await.unwrap(),
        coverage: store.team_coverage(&ids(&["t-1", "t-3"])).await.unwrap(),
        awaiting: store
            .teams_awaiting_briefing("r-1", "it-1", &ids(&["neglect", "cse"]))
            .await
            .unwrap(),
        outstanding: store.outstanding_people("r-1", 10).await.unwrap(),
        tallies: store.answer_tallies("r-1").await.unwrap(),
        found: store.find_people("EXAMPLE", 2).await.unwrap(),
        found_escaped: store.find_people("0%_e", 10).await.unwrap(),
        identities: store.identity_statuses("p-1").await.unwrap(),
        stamp_scopes: store
            .report_stamps(&ids(&["r-1", "r-3", "r-9"]))
            .await
            .unwrap()
            .into_iter()
            .map(|(scope, _)| scope)
            .collect(),
        directory: store.report_directory(&ids(&["r-1"])).await.unwrap(),
        annual: store.annual_rollouts(0, 5000).await.unwrap(),
        figures: store.group_figures(0, 5001, 2 * BUCKET).await.unwrap(),
        waits: store.wait_buckets(0, 5001).await.unwrap(),
        groups: store.directory_groups().await.unwrap(),
        champion_teams: store.champion_teams().await.unwrap(),
        confirmed: store.confirmed_teams(0, 1001).await.unwrap(),
        answers: store.rollout_answers(0, 6000).await.unwrap(),
        checks: store.rollout_checks(0, 6000).await.unwrap(),
    }
}

fn figures(a: &Answers, level: &str) -> Vec<(String, String, i64, i64, i64, i64)> {
    a.figures
        .iter()
        .filter(|f| f.level == level)
        .map(|f| {
            (
                f.rollout_id.clone(),
                f.key.clone(),
                f.audience,
                f.reached,
                f.acknowledged,
                f.acknowledged_within,
            )
        })
        .collect()
}

async fn reports_answer_from_the_stored_rows(store: impl Exec) {
    write(&store).await;
    let a = answers(&store).await;

    assert_eq!(a.created, ["r-1", "r-2"]);
    let feedback: Vec<(&str, u32, &str, Option<&str>)> = a
        .feedback
        .iter()
        .map(|f| {
            (
                f.rollout_id.as_str(),
                f.follow_up,
                f.answer.as_str(),
                f.reason.as_deref(),
            )
        })
        .collect();
    assert_eq!(
        feedback,
        [
            ("r-1", 1, "yes", None),
            ("r-1", 1, "yes", None),
            ("r-1", 1, "no", Some("time")),
            ("r-1", 2, "no", None),
            ("r-3", 1, "maybe", None),
        ]
    );
    assert_eq!(a.feedback[0].item_title, "Neglect");
    assert_eq!(a.feedback[1].example.as_deref(), Some("an example"));

    let r1 = a.r1.as_ref().unwrap();
    assert_eq!(
        (r1.item_title.as_str(), r1.state.as_str(), r1.created_at),
        ("Neglect", "active", 1000)
    );
    assert_eq!(r1.definition, "{\"r\":1}");
    let members: Vec<_> = r1
        .members
        .iter()
        .map(|m| {
            (
                m.person_id.as_str(),
                m.wave,
                m.out_reason.as_deref(),
                m.joined_at,
                m.shift_days,
            )
        })
        .collect();
    assert_eq!(
        members,
        [
            ("p-1", 0, None, None, 0),
            ("p-2", 0, None, None, 0),
            ("p-3", 1, Some("moved"), Some(30), 2),
            ("p-4", 0, None, None, 0),
            ("p-9", 1, None, None, 1),
        ]
    );
    assert_eq!(r1.members[4].team_id, None);
    let sends: Vec<(&str, StepKind, i64)> = r1
        .sends
        .iter()
        .map(|s| (s.person_id.as_str(), s.step_kind, s.sent_at))
        .collect();
    assert_eq!(
        sends,
        [
            ("p-1", StepKind::Initial, 150),
            ("p-1", StepKind::Initial, 100),
            ("p-4", StepKind::Initial, 200),
            ("p-2", StepKind::Escalation, 300),
        ]
    );
    let acks: Vec<(&str, i64)> = r1
        .acknowledgements
        .iter()
        .map(|x| (x.person_id.as_str(), x.at))
        .collect();
    assert_eq!(acks, [("p-1", 720_105), ("p-4", 1200)]);
    assert_eq!(r1.answers.len(), 4);
    assert_eq!(r1.check_questions, ["First?", "Second?"]);
    let checks: Vec<(&str, u32, bool)> = r1
        .check_answers
        .iter()
        .map(|c| (c.person_id.as_str(), c.question, c.right_first_time))
        .collect();
    assert_eq!(
        checks,
        [("p-1", 1, true), ("p-4", 1, false), ("p-4", 2, true)]
    );
    let refreshers: Vec<(&str, u32, u32, bool)> = r1
        .refresher_answers
        .iter()
        .map(|r| {
            (
                r.person_id.as_str(),
                r.refresher,
                r.question,
                r.right_first_time,
            )
        })
        .collect();
    assert_eq!(refreshers, [("p-1", 1, 1, true), ("p-4", 1, 2, false)]);
    assert_eq!(r1.item_themes, ["neglect", "cse"]);
    let r3 = a.r3.as_ref().unwrap();
    assert!(r3.check_questions.is_empty() && r3.item_themes.is_empty());
    assert!(a.missing.is_none());

    let confirmations: Vec<(&str, u32)> = a
        .confirmations
        .iter()
        .map(|c| (c.team_id.as_str(), c.present))
        .collect();
    assert_eq!(confirmations, [("t-1", 6), ("t-1", 4)]);

    let coverage: Vec<(&str, &str, i64, i64, i64)> = a
        .coverage
        .iter()
        .map(|c| {
            (
                c.rollout_id.as_str(),
                c.team_id.as_str(),
                c.members,
                c.acknowledged,
                c.confirmations,
            )
        })
        .collect();
    // Newest first; the cancelled r-2 left out; Eve is no member.
    assert_eq!(
        coverage,
        [
            ("r-3", "t-3", 1, 0, 1),
            ("r-1", "t-1", 2, 1, 2),
            ("r-1", "t-3", 1, 1, 0),
        ]
    );
    // West (Bob's, neglect) has nobody still in r-1 (Cat moved out); East
    // is confirmed; Police (Dan's, cse) waits.
    assert_eq!(a.awaiting, [("t-3".to_owned(), "Police".to_owned())]);
    let outstanding: Vec<(&str, &str, &str)> = a
        .outstanding
        .iter()
        .map(|o| (o.person_id.as_str(), o.name.as_str(), o.team.as_str()))
        .collect();
    assert_eq!(outstanding, [("p-2", "Bob 100%_Example", "East")]);
    let tallies: Vec<(u32, &str, i64)> = a
        .tallies
        .iter()
        .map(|t| (t.follow_up, t.answer.as_str(), t.count))
        .collect();
    assert_eq!(tallies, [(1, "yes", 2), (1, "no", 1), (2, "no", 1)]);
    // Any case, by name, active people only, up to the limit.
    let found: Vec<&str> = a.found.iter().map(|f| f.id.as_str()).collect();
    assert_eq!(found, ["p-1", "p-2"]);
    assert_eq!(
        (a.found[0].team.as_str(), a.found[0].agency.as_str()),
        ("East", "Agency A")
    );
    // `%` and `_` are themselves.
    let found: Vec<&str> = a.found_escaped.iter().map(|f| f.id.as_str()).collect();
    assert_eq!(found, ["p-2"]);
    let identities: Vec<(&str, bool)> = a
        .identities
        .iter()
        .map(|i| (i.channel.as_str(), i.unreachable))
        .collect();
    assert_eq!(
        identities,
        [("email", false), ("email", true), ("telegram", true)]
    );
    assert_eq!(a.stamp_scopes, ["", "r-1", "r-3"]);
    let people: Vec<(&str, Option<&str>)> = a
        .directory
        .people
        .iter()
        .map(|p| (p.id.as_str(), p.absent_until.as_deref()))
        .collect();
    assert_eq!(
        people,
        [
            ("p-1", None),
            ("p-2", None),
            ("p-3", Some("2026-03-10")),
            ("p-4", None)
        ]
    );
    assert_eq!(a.directory.roles.len(), 4);
    assert_eq!(a.directory.agencies.len(), 2);
    assert_eq!(a.directory.teams.len(), 3);
    let champions: Vec<(&str, &str)> = a
        .directory
        .champions
        .iter()
        .map(|c| (c.person_id.as_str(), c.theme.as_str()))
        .collect();
    assert_eq!(champions, [("p-2", "neglect"), ("p-4", "cse")]);

    let annual: Vec<(&str, &str, Option<&str>)> = a
        .annual
        .iter()
        .map(|r| (r.id.as_str(), r.kind.as_str(), r.embargoed_until.as_deref()))
        .collect();
    assert_eq!(
        annual,
        [
            ("r-1", "seven-minute-briefing", None),
            ("r-2", "seven-minute-briefing", None)
        ]
    );
    // Ann first sent at 100, acknowledged two buckets later (outside the
    // window of two buckets by 5 ms); Dan at 200, a second later.
    let s = |v: &str| v.to_owned();
    assert_eq!(
        figures(&a, "agency"),
        [
            (s("r-1"), s("?"), 1, 0, 0, 0),
            (s("r-1"), s("ag-a"), 3, 1, 1, 0),
            (s("r-1"), s("ag-b"), 1, 1, 1, 1),
            (s("r-2"), s("ag-a"), 1, 0, 0, 0),
            (s("r-3"), s("ag-b"), 1, 1, 0, 0),
        ]
    );
    assert_eq!(
        figures(&a, "team"),
        [
            (s("r-1"), s("?"), 1, 0, 0, 0),
            (s("r-1"), s("t-1"), 2, 1, 1, 0),
            (s("r-1"), s("t-2"), 1, 0, 0, 0),
            (s("r-1"), s("t-3"), 1, 1, 1, 1),
            (s("r-2"), s("t-1"), 1, 0, 0, 0),
            (s("r-3"), s("t-3"), 1, 1, 0, 0),
        ]
    );
    assert_eq!(
        figures(&a, "role"),
        [
            (s("r-1"), s("manager"), 1, 1, 1, 0),
            (s("r-1"), s("practitioner"), 2, 1, 1, 0),
            (s("r-1"), s("safeguarding-lead"), 1, 1, 1, 1),
            (s("r-2"), s("practitioner"), 1, 0, 0, 0),
            (s("r-3"), s("safeguarding-lead"), 1, 1, 0, 0),
        ]
    );
    assert_eq!(
        figures(&a, "wait"),
        [
            (s("r-1"), s("0"), 1, 0, 0, 0),
            (s("r-1"), s("2"), 1, 0, 0, 0)
        ]
    );
    let waits: Vec<(&str, i64, i64)> = a
        .waits
        .iter()
        .map(|w| (w.rollout_id.as_str(), w.bucket, w.count))
        .collect();
    assert_eq!(waits, [("r-1", 0, 1), ("r-1", 2, 1)]);
    let groups: Vec<(&str, &str, &str, i64)> = a
        .groups
        .iter()
        .map(|g| {
            (
                g.level.as_str(),
                g.key.as_str(),
                g.agency_id.as_str(),
                g.people,
            )
        })
        .collect();
    assert_eq!(
        groups,
        [
            ("agency", "ag-a", "", 3),
            ("agency", "ag-b", "", 1),
            ("role", "manager", "", 1),
            ("role", "practitioner", "", 2),
            ("role", "safeguarding-lead", "", 1),
            ("team", "t-1", "ag-a", 2),
            ("team", "t-2", "ag-a", 1),
            ("team", "t-3", "ag-b", 1),
        ]
    );
    let teams: Vec<(&str, &str)> = a
        .champion_teams
        .iter()
        .map(|c| (c.theme.as_str(), c.team_id.as_str()))
        .collect();
    assert_eq!(
        teams,
        [("cse", "t-3"), ("neglect", "t-1"), ("neglect", "t-2")]
    );
    let confirmed: Vec<(&str, &str)> = a
        .confirmed
        .iter()
        .map(|c| (c.item_id.as_str(), c.team_id.as_str()))
        .collect();
    assert_eq!(confirmed, [("it-1", "t-1")]);
    let answers: Vec<(&str, u32, &str, i64)> = a
        .answers
        .iter()
        .map(|x| {
            (
                x.rollout_id.as_str(),
                x.follow_up,
                x.answer.as_str(),
                x.count,
            )
        })
        .collect();
    assert_eq!(
        answers,
        [
            ("r-1", 1, "yes", 2),
            ("r-1", 1, "no", 1),
            ("r-1", 2, "no", 1),
            ("r-3", 1, "maybe", 1)
        ]
    );
    let checks: Vec<(&str, u32, i64, i64)> = a
        .checks
        .iter()
        .map(|c| {
            (
                c.rollout_id.as_str(),
                c.question,
                c.answered,
                c.right_first_time,
            )
        })
        .collect();
    // r-2 is Bob's only, whose answer was never recorded.
    assert_eq!(checks, [("r-1", 1, 2, 1), ("r-1", 2, 1, 1)]);

    // Stamps and the directory's version move with writes.
    let stamps = |ids: Vec<String>| {
        let store = &store;
        async move { store.report_stamps(&ids).await.unwrap() }
    };
    let before = stamps(vec!["r-1".to_owned()]).await;
    let version = store.directory_version().await.unwrap();
    assert_eq!((version.1, version.2), (5, 4));
    store
        .exec("UPDATE rollout_members SET out_reason = 'left', out_at = 9999 WHERE rollout_id = 'r-1' AND person_id = 'p-2'")
        .await;
    store
        .exec("UPDATE people SET team_id = 't-2' WHERE id = 'p-2'")
        .await;
    let after = stamps(vec!["r-1".to_owned()]).await;
    assert!(after[0].1 > before[0].1, "the directory's stamp: {after:?}");
    assert!(after[1].1 > before[1].1, "r-1's stamp: {after:?}");
    assert!(store.directory_version().await.unwrap() > version);
}

both::on_both_stores!(reports_answer_from_the_stored_rows);

#[tokio::test]
async fn both_stores_give_the_same_reports() {
    let (sqlite, postgres) = (both::sqlite().await, both::postgres().await);
    write(&sqlite).await;
    write(&postgres).await;
    assert_eq!(answers(&sqlite).await, answers(&postgres).await);
}
