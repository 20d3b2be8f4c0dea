//! Whole flows through the engine and the real Discord plugin against the
//! fake Discord: a practitioner links their account with `/link`, gets the
//! item as a DM with buttons, acknowledges and sees the message change; a
//! champion confirms a cascade through the modal; a press from a Discord
//! account not linked to the delivery's recipient records nothing; a press
//! the host cannot record is answered "please try again", privately.

mod support;

use cascade_engine::delivery::DispatchSettings;
use cascade_engine::engine::{Engine, Runner};
use cascade_engine::inbound::{InboundOutcome, issue_code};
use cascade_engine::project::Project;
use cascade_store::{AckMethod, Inspect, SqliteStore, TeamCount, TeamPosts};
use cascade_test_support::outbox::acknowledgements;
use cascade_test_support::{DemoProject, utc};
use chrono::{DateTime, Utc};
use serde_json::Value;
use std::path::Path;
use std::time::Duration;
use support::fake_discord::{APPLICATION_ID, FakeDiscord, GUILD_ID, TOKEN};

const AMARA: &str = "4000000000000000011";
const STRANGER: &str = "4000000000000000099";

/// The demo project with one Discord channel pointed at the fake, its
/// directory and content imported as `cascade import` does.
async fn project(fake: &FakeDiscord) -> tempfile::TempDir {
    project_with(fake, "", "").await
}

/// The same, with `settings` added to the Discord channel's `config` table
/// and `extra` to its entry.
async fn project_with(fake: &FakeDiscord, settings: &str, extra: &str) -> tempfile::TempDir {
    let channels = format!(
        r#"
[[channels]]
name = "discord"
plugin = "discord"
identity = "discord"
formats = ["discord"]
config = {{ api_url = "{}", application_id = "{APPLICATION_ID}", guild_id = "{GUILD_ID}"{settings} }}
secrets = {{ token = {{ file = "discord-token" }} }}
{extra}
"#,
        fake.api_url()
    );
    // Only the test of check questions keeps the briefing's: elsewhere
    // one press acknowledges.
    project_from(DemoProject::new().without_check_questions(), &channels).await
}

/// The demo project, the briefing's check question kept, with the Discord channel.
async fn project_with_check_questions(fake: &FakeDiscord) -> tempfile::TempDir {
    let channels = format!(
        r#"
[[channels]]
name = "discord"
plugin = "discord"
identity = "discord"
formats = ["discord"]
config = {{ api_url = "{}", application_id = "{APPLICATION_ID}", guild_id = "{GUILD_ID}" }}
secrets = {{ token = {{ file = "discord-token" }} }}
"#,
        fake.api_url()
    );
    project_from(DemoProject::new(), &channels).await
}

async fn project_from(project: DemoProject, channels: &str) -> tempfile::TempDir {
    project
        .write("discord-token", TOKEN)
        .channels(channels)
        .imported()
        .await
        .into_dir()
}

const ROLLOUT: &str = r#"
id = "now"
item = "7mb-neglect-seeing-the-child"
start = 2026-03-27T09:00:00
channels = ["discord"]
ack_deadline_days = 10
[audience]
[[waves]]
name = "Everyone"
after_days = 0
"#;

async fn runner(dir: &Path) -> Runner<SqliteStore> {
    runner_of(dir, ROLLOUT).await
}

/// The runner of `rollout_text`, planned and started on 27 March 2026.
async fn runner_of(dir: &Path, rollout_text: &str) -> Runner<SqliteStore> {
    let now = utc(2026, 3, 27, 8, 0);
    let rollout = dir.join("rollouts").join("now.toml");
    std::fs::write(&rollout, rollout_text).unwrap();
    let engine = Engine::open(Project::open(dir).unwrap(), true)
        .await
        .unwrap_or_else(|p| panic!("{p}"));
    let planned = engine
        .plan(&rollout, now)
        .await
        .unwrap_or_else(|p| panic!("{p}"));
    engine.start(&planned, now).await.unwrap();
    engine
        .runner(DispatchSettings {
            backoff_base: Duration::from_secs(60),
            ..DispatchSettings::default()
        })
        .await
        .unwrap()
}

/// Handles inbound events until the plugin's next one has been handled.
async fn handle_next(runner: &Runner<SqliteStore>) -> InboundOutcome {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        let mut outcomes = runner
            .handle_inbound(utc(2026, 3, 27, 10, 0))
            .await
            .unwrap();
        if let Some(outcome) = outcomes.pop() {
            assert!(outcomes.is_empty(), "one event at a time: {outcomes:?}");
            return outcome;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the plugin emitted no event"
        );
        // The event crosses from the plugin's runtime; poll for it.
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// A champion's answers to the cascade form: a briefing session in MASH.
const MASH_SESSION: [(&str, &str); 5] = [
    ("team", "Multi-Agency Safeguarding Hub (MASH)"),
    ("session_date", "2026-03-26"),
    ("present", "14"),
    ("method", "Briefing session"),
    ("note", ""),
];

/// Waits until `message` shows that it was acknowledged (on 27 March 2026).
async fn acknowledged_shown(fake: &FakeDiscord, message: &str) {
    fake.wait_for("the status on her message", |s| {
        (s.messages[message]["content"] == "Acknowledged on 27 March 2026").then_some(())
    })
    .await;
}

/// The body of the first `method` request (an edit or a follow-up) made
/// with the token of interaction `id`.
async fn answer_to(fake: &FakeDiscord, method: &str, id: &str) -> Value {
    let token = fake.token_of(id);
    fake.wait_for(&format!("a {method} answering {id}"), |s| {
        s.requests
            .iter()
            .find(|r| {
                r.method == method && r.path.contains("/webhooks/") && r.path.contains(&token)
            })
            .map(|r| r.body.clone())
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn link_receive_acknowledge_confirm_through_the_modal_and_refuse_a_stranger() {
    let fake = FakeDiscord::start().await;
    let dir = project(&fake).await;
    let runner = runner(dir.path()).await;
    fake.wait_for("an IDENTIFY", |s| (s.identifies == 1).then_some(()))
        .await;

    // Amara links her Discord account with the code the business unit gave her.
    let link = send_link(&fake, &runner, AMARA, "p-amara-okafor").await;
    assert_eq!(
        handle_next(&runner).await,
        InboundOutcome::Linked {
            person_id: "p-amara-okafor".to_owned()
        }
    );
    let linked = answer_to(&fake, "PATCH", &link).await;
    let content = linked["content"].as_str().unwrap();
    assert!(
        content.contains("this chat is now linked to you"),
        "{content}"
    );

    // The rollout reaches her as a DM: the item in embeds, two buttons.
    runner.tick(utc(2026, 3, 27, 9, 0)).await.unwrap();
    let channel = fake.dm_channel_of(AMARA).expect("a DM was opened to Amara");
    let posts = fake.requests_to(&format!("POST /api/v10/channels/{channel}/messages"));
    assert!(!posts.is_empty());
    assert!(
        posts.iter().all(
            |p| p.status == 200 && p.body["allowed_mentions"]["parse"] == serde_json::json!([])
        )
    );
    assert!(posts[0].body["embeds"][0]["title"].as_str().is_some());
    let last = posts.last().unwrap();
    let buttons = last.body["components"][0]["components"]
        .as_array()
        .unwrap()
        .clone();
    let labels: Vec<&str> = buttons
        .iter()
        .map(|b| b["label"].as_str().unwrap())
        .collect();
    assert_eq!(labels, ["Acknowledge", "I've cascaded this to my team"]);
    let ack_id = buttons[0]["custom_id"].as_str().unwrap().to_owned();
    let confirm_id = buttons[1]["custom_id"].as_str().unwrap().to_owned();
    let message = fake
        .state()
        .messages
        .iter()
        .rev()
        .find(|(_, m)| m["channel_id"] == channel.as_str())
        .map(|(id, _)| id.clone())
        .unwrap();

    // A stranger pressing her button records nothing.
    let stranger = fake.press_button(STRANGER, &message, &ack_id);
    let refused = handle_next(&runner).await;
    assert!(
        matches!(refused, InboundOutcome::Refused { .. }),
        "{refused:?}"
    );
    let followup = answer_to(&fake, "POST", &stranger).await;
    let told = followup["content"].as_str().unwrap();
    assert!(told.contains("not linked"), "{told}");
    assert_eq!(followup["flags"], 64, "only the stranger sees it");
    assert_eq!(acknowledgements(runner.store().as_ref()).await, 0);
    assert_eq!(
        fake.message(&message)["content"],
        "",
        "her message is unchanged"
    );

    // She acknowledges; the message shows it and keeps the cascade button.
    fake.press_button(AMARA, &message, &ack_id);
    assert_eq!(
        handle_next(&runner).await,
        InboundOutcome::Acknowledged {
            person_id: "p-amara-okafor".to_owned(),
            first: true
        }
    );
    acknowledged_shown(&fake, &message).await;
    let shown = fake.message(&message);
    let kept: Vec<&str> = shown["components"][0]["components"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b["custom_id"].as_str().unwrap())
        .collect();
    assert_eq!(kept, [confirm_id.as_str()]);

    // As a champion she confirms the cascade through the modal.
    let press = fake.press_button(AMARA, &message, &confirm_id);
    let modal = fake
        .wait_for("the modal", |s| {
            s.requests.iter().find(|r| r.path.contains(&press)).cloned()
        })
        .await;
    assert_eq!(modal.status, 204);
    assert_eq!(modal.body["type"], 9);
    fake.submit_modal(AMARA, &message, &confirm_id, &MASH_SESSION);
    assert_eq!(
        handle_next(&runner).await,
        InboundOutcome::Confirmed {
            person_id: "p-amara-okafor".to_owned(),
            team_id: "mash".to_owned(),
            first: true
        }
    );
    let row = runner.store().confirmations().await.unwrap().remove(0);
    let recorded = (row.team_id, row.session_date, row.present, row.channel);
    assert_eq!(
        recorded,
        ("mash".into(), "2026-03-26".into(), 14, "discord".into())
    );
    assert_eq!(fake.state().refusals, []);
}

/// Handles inbound events on every runner until one of them has handled
/// the next event; returns which one and its outcome, after checking for a
/// while that no runner handles that event again.
async fn handled_once_by(runners: &[&Runner<SqliteStore>]) -> (usize, InboundOutcome) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    let found = 'found: loop {
        for (i, runner) in runners.iter().enumerate() {
            let mut outcomes = runner
                .handle_inbound(utc(2026, 3, 27, 10, 0))
                .await
                .unwrap();
            if let Some(outcome) = outcomes.pop() {
                assert!(outcomes.is_empty(), "one event at a time: {outcomes:?}");
                break 'found (i, outcome);
            }
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "no runner got an event"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    for _ in 0..10 {
        tokio::time::sleep(Duration::from_millis(50)).await;
        for runner in runners {
            let again = runner
                .handle_inbound(utc(2026, 3, 27, 10, 0))
                .await
                .unwrap();
            assert_eq!(again, [], "the event was handled a second time");
        }
    }
    found
}

/// How many interaction callbacks (first answers) Discord got for
/// interaction `id`, and the method and text of each edit and follow-up
/// made with its token.
fn answers_of(fake: &FakeDiscord, id: &str) -> (usize, Vec<(String, String)>) {
    let token = fake.token_of(id);
    let callbacks = fake
        .requests_to(&format!("POST /api/v10/interactions/{id}/"))
        .len();
    let later = fake
        .requests_to(&format!("/webhooks/{APPLICATION_ID}/{token}"))
        .into_iter()
        .map(|r| {
            (
                r.method,
                r.body["content"].as_str().unwrap_or_default().to_owned(),
            )
        })
        .collect();
    (callbacks, later)
}

/// Two `cascade serve`s on one store each keep a gateway session, and
/// Discord gives every session of a shard every interaction. Each command
/// and press is stored once, answered once (by the serve whose host stored
/// it: Discord refuses a second answer), handled once and replied to once,
/// and nobody is told to try again when the other serve's reply time runs
/// out.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_serves_with_a_gateway_session_each_answer_and_handle_each_interaction_once() {
    let fake = FakeDiscord::start().await;
    let dir = project_with(&fake, ", reply_timeout_seconds = 1", "").await;
    let first = runner(dir.path()).await;
    let second = Engine::open(Project::open(dir.path()).unwrap(), true)
        .await
        .unwrap_or_else(|p| panic!("{p}"))
        .runner(DispatchSettings::default())
        .await
        .unwrap();
    fake.wait_for("two sessions", |s| (s.identifies == 2).then_some(()))
        .await;
    assert_eq!(fake.live_sessions(), 2);
    let runners = [&first, &second];
    // Each serve's first round handles what a crash left in the inbox;
    // from then on each handles what its own host stored.
    for runner in runners {
        assert_eq!(
            runner.handle_inbound(utc(2026, 3, 27, 8, 0)).await.unwrap(),
            []
        );
    }

    let link = send_link(&fake, &first, AMARA, "p-amara-okafor").await;
    let (_, linked) = handled_once_by(&runners).await;
    assert_eq!(
        linked,
        InboundOutcome::Linked {
            person_id: "p-amara-okafor".to_owned()
        }
    );
    answer_to(&fake, "PATCH", &link).await;

    first.tick(utc(2026, 3, 27, 9, 0)).await.unwrap();
    let channel = fake.dm_channel_of(AMARA).expect("a DM was opened to Amara");
    let (message, ack_id) = {
        let state = fake.state();
        let (id, body) = state
            .messages
            .iter()
            .rev()
            .find(|(_, m)| m["channel_id"] == channel.as_str())
            .unwrap();
        let ack = body["components"][0]["components"][0]["custom_id"]
            .as_str()
            .unwrap()
            .to_owned();
        (id.clone(), ack)
    };
    let press = fake.press_button(AMARA, &message, &ack_id);
    let (_, acknowledged) = handled_once_by(&runners).await;
    assert_eq!(
        acknowledged,
        InboundOutcome::Acknowledged {
            person_id: "p-amara-okafor".to_owned(),
            first: true
        }
    );
    acknowledged_shown(&fake, &message).await;

    // Past both plugins' reply time: nothing more was said to her.
    tokio::time::sleep(Duration::from_millis(2_500)).await;
    let (callbacks, later) = answers_of(&fake, &link);
    assert_eq!(callbacks, 1, "one deferral");
    assert_eq!(later.len(), 1, "one edit: {later:?}");
    assert!(later[0].1.contains("now linked to you"), "{later:?}");
    let (callbacks, later) = answers_of(&fake, &press);
    assert_eq!(callbacks, 1, "one update");
    let said: Vec<(&str, &str)> = later
        .iter()
        .map(|(m, c)| (m.as_str(), c.as_str()))
        .collect();
    assert_eq!(
        said,
        [
            ("PATCH", "Acknowledged on 27 March 2026"),
            (
                "POST",
                "Thank you: \"Neglect: seeing the child\" is acknowledged."
            )
        ],
        "the status and the thanks, once each, and no \"please try again\""
    );
    assert_eq!(acknowledgements(first.store().as_ref()).await, 1);

    // Her cascade button opens a form, at once, before anything is stored:
    // both sessions try, Discord takes one and refuses the other (40060),
    // she sees one form, and what she submits is recorded once.
    let confirm_id = fake.message(&message)["components"][0]["components"][0]["custom_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let opened = fake.press_button(AMARA, &message, &confirm_id);
    let mut statuses = fake
        .wait_for("both sessions' answers to the press", |s| {
            let statuses: Vec<u16> = s
                .requests
                .iter()
                .filter(|r| r.path.contains(&format!("/interactions/{opened}/")))
                .map(|r| r.status)
                .collect();
            (statuses.len() == 2).then_some(statuses)
        })
        .await;
    statuses.sort_unstable();
    assert_eq!(statuses, [204, 400], "one form opened, one answer refused");
    let submitted = fake.submit_modal(AMARA, &message, &confirm_id, &MASH_SESSION);
    let (_, confirmed) = handled_once_by(&runners).await;
    assert_eq!(
        confirmed,
        InboundOutcome::Confirmed {
            person_id: "p-amara-okafor".to_owned(),
            team_id: "mash".to_owned(),
            first: true
        }
    );
    tokio::time::sleep(Duration::from_millis(2_500)).await;
    let (callbacks, later) = answers_of(&fake, &submitted);
    assert_eq!(callbacks, 1, "one update");
    assert!(
        later.iter().all(|(_, text)| !text.contains("try again")),
        "{later:?}"
    );
    assert_eq!(first.store().confirmations().await.unwrap().len(), 1);
    assert_eq!(fake.state().refusals, []);
}

/// When the host cannot record a press (its store refuses the write), the
/// bot tells the person, privately, to try again rather than answering as
/// if it were recorded: Discord never sends an interaction twice. Nothing
/// of that press is recorded then or later; the person's next press is
/// recorded once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_press_the_host_cannot_record_is_answered_please_try_again_and_recorded_once_when_pressed_again()
 {
    let fake = FakeDiscord::start().await;
    let dir = project(&fake).await;
    let runner = runner(dir.path()).await;
    fake.wait_for("an IDENTIFY", |s| (s.identifies == 1).then_some(()))
        .await;
    link(&fake, &runner, AMARA, "p-amara-okafor").await;
    runner.tick(utc(2026, 3, 27, 9, 0)).await.unwrap();
    let channel = fake.dm_channel_of(AMARA).expect("a DM was opened to Amara");
    let posts = fake.requests_to(&format!("POST /api/v10/channels/{channel}/messages"));
    let ack_id = posts.last().unwrap().body["components"][0]["components"][0]["custom_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let message = fake
        .state()
        .messages
        .iter()
        .rev()
        .find(|(_, m)| m["channel_id"] == channel.as_str())
        .map(|(id, _)| id.clone())
        .unwrap();

    // The store refuses every inbound write, as a full disk would.
    runner
        .store()
        .execute_sql(
            "CREATE TRIGGER refuse_inbox BEFORE INSERT ON inbox
             BEGIN SELECT RAISE(ABORT, 'database or disk is full'); END",
            &[],
        )
        .await
        .unwrap();
    let press = fake.press_button(AMARA, &message, &ack_id);
    let answer = fake
        .wait_for("the answer to the press", |s| {
            s.requests
                .iter()
                .find(|r| r.path.contains(&format!("/interactions/{press}/")))
                .cloned()
        })
        .await;
    assert_eq!(
        answer.body["type"], 4,
        "a message, not a deferral: {:?}",
        answer.body
    );
    let told = answer.body["data"]["content"].as_str().unwrap();
    assert!(
        told.contains("could not be recorded") && told.contains("try again"),
        "{told}"
    );
    assert_eq!(answer.body["data"]["flags"], 64, "only she sees it");
    // Nothing reaches the engine, now or later.
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(
        runner.handle_inbound(at(0)).await.unwrap(),
        [],
        "the refused press is not handled"
    );
    assert_eq!(acknowledgements_of(&runner, "p-amara-okafor").await, 0);
    assert_eq!(
        fake.message(&message)["content"],
        "",
        "her message does not say acknowledged"
    );

    // The store takes writes again; she presses again, as she was told.
    runner
        .store()
        .execute_sql("DROP TRIGGER refuse_inbox", &[])
        .await
        .unwrap();
    fake.press_button(AMARA, &message, &ack_id);
    assert_eq!(
        handle_next(&runner).await,
        InboundOutcome::Acknowledged {
            person_id: "p-amara-okafor".to_owned(),
            first: true
        }
    );
    acknowledged_shown(&fake, &message).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(runner.handle_inbound(at(60)).await.unwrap(), []);
    assert_eq!(acknowledgements_of(&runner, "p-amara-okafor").await, 1);
    assert_eq!(acknowledgements(runner.store().as_ref()).await, 1);
}

// ---- A post in a team's channel with a live count ------------------------

/// The Emergency Department's channel in the guild.
const ED_CHANNEL: &str = "1200000000000000301";
/// The Emergency Department's three members, and Amara (another team).
const SIMON: &str = "4000000000000000021";
const HANNAH: &str = "4000000000000000022";
const DANIEL: &str = "4000000000000000023";

const TEAM_ROLLOUT: &str = r#"
id = "ed-neglect"
item = "7mb-neglect-seeing-the-child"
start = 2026-03-27T09:00:00
channels = ["discord"]
team_posts = ["discord"]
ack_deadline_days = 10
[audience]
teams = ["hosp-ed"]
people = ["p-amara-okafor"]
[[waves]]
name = "Everyone"
after_days = 0
"#;

/// 27 March 2026, 10:00 UTC plus `seconds`.
fn at(seconds: i64) -> DateTime<Utc> {
    utc(2026, 3, 27, 10, 0) + chrono::Duration::seconds(seconds)
}

/// `account` runs `/link <code>` with a code the business unit issued for
/// `person`; returns the interaction's id.
async fn send_link(
    fake: &FakeDiscord,
    runner: &Runner<SqliteStore>,
    account: &str,
    person: &str,
) -> String {
    let code = issue_code(
        runner.store().as_ref(),
        runner.link_codes(),
        person,
        1_774_605_600_000,
    )
    .await
    .unwrap();
    fake.run_command(account, "link", &[("code", &code)])
}

/// Links `account` to `person` the way a person does: `/link <code>`.
async fn link(fake: &FakeDiscord, runner: &Runner<SqliteStore>, account: &str, person: &str) {
    send_link(fake, runner, account, person).await;
    assert_eq!(
        handle_next(runner).await,
        InboundOutcome::Linked {
            person_id: person.to_owned()
        }
    );
}

/// The PATCH requests that edited message `message` of the team channel.
fn edits_of(fake: &FakeDiscord, message: &str) -> Vec<support::fake_discord::Recorded> {
    fake.requests_to(&format!(
        "PATCH /api/v10/channels/{ED_CHANNEL}/messages/{message}"
    ))
}

async fn acknowledgements_of(runner: &Runner<SqliteStore>, person: &str) -> usize {
    runner
        .store()
        .acknowledgements()
        .await
        .unwrap()
        .iter()
        .filter(|a| a.person_id == person)
        .count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_team_post_counts_each_members_acknowledgement_and_refuses_everyone_else() {
    let fake = FakeDiscord::start().await;
    fake.add_guild_channel(ED_CHANNEL);
    // Every rate limit is handed back to the engine, none waited out.
    let dir = project_with(
        &fake,
        ", max_rate_limit_wait_ms = 0",
        &format!("team_channels = {{ \"hosp-ed\" = \"{ED_CHANNEL}\" }}"),
    )
    .await;
    let rollout = dir.path().join("rollouts").join("ed-neglect.toml");
    std::fs::write(&rollout, TEAM_ROLLOUT).unwrap();
    let engine = Engine::open(Project::open(dir.path()).unwrap(), true)
        .await
        .unwrap_or_else(|p| panic!("{p}"));
    let planned = engine
        .plan(&rollout, utc(2026, 3, 27, 8, 0))
        .await
        .unwrap_or_else(|p| panic!("{p}"));
    assert_eq!(planned.team_posts.len(), 1);
    assert_eq!(
        (
            planned.team_posts[0].team_id.as_str(),
            planned.team_posts[0].members
        ),
        ("hosp-ed", 3)
    );
    engine
        .start(&planned, utc(2026, 3, 27, 8, 0))
        .await
        .unwrap();
    let runner = engine
        .runner(DispatchSettings {
            team_post_edit_interval: Duration::from_secs(3),
            ..DispatchSettings::default()
        })
        .await
        .unwrap();
    fake.wait_for("an IDENTIFY", |s| (s.identifies == 1).then_some(()))
        .await;
    link(&fake, &runner, SIMON, "p-simon-hale").await;
    link(&fake, &runner, HANNAH, "p-hannah-price").await;
    link(&fake, &runner, DANIEL, "p-daniel-mensah").await;
    link(&fake, &runner, AMARA, "p-amara-okafor").await;

    // The wave goes out: the post appears once in the team's channel, and
    // every member still gets their own DM.
    runner.tick(at(0)).await.unwrap();
    runner.tick(at(1)).await.unwrap();
    let posts = fake.requests_to(&format!("POST /api/v10/channels/{ED_CHANNEL}/messages"));
    assert!(!posts.is_empty());
    assert!(
        posts.iter().all(
            |p| p.status == 200 && p.body["allowed_mentions"]["parse"] == serde_json::json!([])
        ),
        "{posts:?}"
    );
    let shown = fake.messages_in(ED_CHANNEL);
    assert_eq!(shown.len(), posts.len(), "posted once");
    let with_buttons: Vec<&(String, Value)> = shown
        .iter()
        .filter(|(_, m)| !m["components"].as_array().unwrap().is_empty())
        .collect();
    assert_eq!(with_buttons.len(), 1);
    let (post, message) = with_buttons[0].clone();
    assert_eq!(message["content"], "0 of 3 acknowledged");
    assert!(
        shown[0].1["embeds"][0]["description"]
            .as_str()
            .unwrap()
            .contains("everyone in Emergency Department"),
        "the item greets the team"
    );
    let buttons = message["components"][0]["components"].as_array().unwrap();
    assert_eq!(buttons.len(), 1);
    assert_eq!(buttons[0]["label"], "Acknowledge");
    let post_button = buttons[0]["custom_id"].as_str().unwrap().to_owned();
    assert!(post_button.starts_with("post:") && post_button.len() <= 64);
    for user in [SIMON, HANNAH, DANIEL, AMARA] {
        assert!(fake.dm_channel_of(user).is_some(), "{user} got a DM");
    }

    // Simon and Hannah press the post's button: each is answered privately,
    // and the shared post's buttons stay as they are.
    for (user, person) in [(SIMON, "p-simon-hale"), (HANNAH, "p-hannah-price")] {
        let press = fake.press_button(user, &post, &post_button);
        assert_eq!(
            handle_next(&runner).await,
            InboundOutcome::Acknowledged {
                person_id: person.to_owned(),
                first: true
            }
        );
        let answer = answer_to(&fake, "POST", &press).await;
        assert_eq!(answer["flags"], 64, "only {person} sees the answer");
        assert!(
            answer["content"]
                .as_str()
                .unwrap()
                .contains("is acknowledged"),
            "{answer}"
        );
        let token = fake.token_of(&press);
        assert!(
            fake.requests_to(&format!("PATCH /api/v10/webhooks/{APPLICATION_ID}/{token}"))
                .is_empty(),
            "the reply does not touch the shared post"
        );
        assert_eq!(acknowledgements_of(&runner, person).await, 1);
    }
    let simons = runner
        .store()
        .acknowledgements()
        .await
        .unwrap()
        .into_iter()
        .find(|a| a.person_id == "p-simon-hale")
        .unwrap();
    assert_eq!(
        (simons.channel.as_str(), simons.method),
        ("discord", AckMethod::Button)
    );
    assert!(
        simons.delivery_id.is_some(),
        "recorded against Simon's own delivery"
    );

    // Edits are paced: none before three seconds after the post, then one
    // edit shows both acknowledgements.
    runner.tick(at(2)).await.unwrap();
    assert!(edits_of(&fake, &post).is_empty());
    runner.tick(at(4)).await.unwrap();
    let edits = edits_of(&fake, &post);
    assert_eq!(edits.len(), 1, "two acknowledgements, one edit");
    assert_eq!(edits[0].status, 200);
    assert_eq!(edits[0].body["content"], "2 of 3 acknowledged");
    assert_eq!(
        edits[0].body["components"][0]["components"][0]["custom_id"],
        post_button.as_str()
    );
    assert_eq!(
        edits[0].body["allowed_mentions"]["parse"],
        serde_json::json!([])
    );
    assert_eq!(fake.message(&post)["content"], "2 of 3 acknowledged");
    runner.tick(at(8)).await.unwrap();
    assert_eq!(edits_of(&fake, &post).len(), 1, "no edit without a change");

    // A press from an unlinked account, and from a linked person of another
    // team, is refused privately and records nothing.
    let stranger = fake.press_button(STRANGER, &post, &post_button);
    assert_eq!(
        handle_next(&runner).await,
        InboundOutcome::Refused {
            reason: cascade_engine::inbound::Refusal::UnlinkedAccount
        }
    );
    let told = answer_to(&fake, "POST", &stranger).await;
    assert_eq!(told["flags"], 64);
    assert!(told["content"].as_str().unwrap().contains("not linked"));
    let amara = fake.press_button(AMARA, &post, &post_button);
    assert_eq!(
        handle_next(&runner).await,
        InboundOutcome::Refused {
            reason: cascade_engine::inbound::Refusal::NotInTeam
        }
    );
    let told = answer_to(&fake, "POST", &amara).await;
    assert_eq!(told["flags"], 64);
    assert_eq!(acknowledgements_of(&runner, "p-amara-okafor").await, 0);
    assert_eq!(acknowledgements(runner.store().as_ref()).await, 2);

    // Daniel acknowledges through his own DM instead; the next edit meets a
    // rate limit, is tried again later, and the post ends at the true count.
    let dm = fake.dm_channel_of(DANIEL).unwrap();
    let (dm_message, dm_button) = fake
        .messages_in(&dm)
        .into_iter()
        .rev()
        .find_map(|(id, m)| {
            let button = m["components"][0]["components"][0]["custom_id"]
                .as_str()?
                .to_owned();
            Some((id, button))
        })
        .unwrap();
    fake.press_button(DANIEL, &dm_message, &dm_button);
    assert_eq!(
        handle_next(&runner).await,
        InboundOutcome::Acknowledged {
            person_id: "p-daniel-mensah".to_owned(),
            first: true
        }
    );
    fake.fail_next(
        &format!("PATCH /api/v10/channels/{ED_CHANNEL}/messages/{post}"),
        support::fake_discord::Fault::RateLimited {
            retry_after: 0.5,
            global: false,
        },
    );
    runner.tick(at(12)).await.unwrap();
    let edits = edits_of(&fake, &post);
    assert_eq!(edits.len(), 2);
    assert_eq!(edits[1].status, 429);
    assert_eq!(fake.message(&post)["content"], "2 of 3 acknowledged");
    // The plugin holds the route for Discord's half second of real time;
    // the engine's clock moves on until the edit lands.
    let mut seconds = 15;
    while fake.message(&post)["content"] != "3 of 3 acknowledged" {
        assert!(
            seconds < 15 + 3 * 200,
            "the count was never brought up to date"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
        runner.tick(at(seconds)).await.unwrap();
        seconds += 3;
    }
    let shown = runner.store().team_posts("ed-neglect").await.unwrap()[0].shown;
    assert_eq!(
        shown,
        Some(TeamCount {
            acknowledged: 3,
            total: 3
        })
    );
    assert_eq!(fake.state().refusals, []);
}

/// Discord carries OFFICIAL by default: an OFFICIAL-SENSITIVE briefing
/// reaches a linked practitioner as a marked notice embed with its summary
/// and the signed link to read it, none of its text and no button; with
/// `carries = "official-sensitive"` every embed of the whole briefing starts
/// with the marking.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_official_sensitive_briefing_is_a_notice_on_discord_unless_the_channel_carries_it() {
    for (extra, full) in [("", false), ("carries = \"official-sensitive\"", true)] {
        let fake = FakeDiscord::start().await;
        let dir = project_with(&fake, "", extra).await;
        let item = dir.path().join("content/7mb-neglect-seeing-the-child.md");
        let text = std::fs::read_to_string(&item).unwrap().replacen(
            "status = \"published\"",
            "status = \"published\"\nclassification = \"official-sensitive\"\nsummary = \"What a local review taught us about seeing the child.\"",
            1,
        );
        std::fs::write(&item, text).unwrap();
        let runner = runner(dir.path()).await;
        fake.wait_for("an IDENTIFY", |s| (s.identifies == 1).then_some(()))
            .await;
        send_link(&fake, &runner, AMARA, "p-amara-okafor").await;
        handle_next(&runner).await;
        runner.tick(utc(2026, 3, 27, 9, 0)).await.unwrap();
        let channel = fake.dm_channel_of(AMARA).expect("a DM was opened to Amara");
        let posts = fake.requests_to(&format!("POST /api/v10/channels/{channel}/messages"));
        let embeds: Vec<String> = posts
            .iter()
            .flat_map(|p| p.body["embeds"].as_array().cloned().unwrap_or_default())
            .map(|e| e["description"].as_str().unwrap_or_default().to_owned())
            .collect();
        assert!(!embeds.is_empty());
        for embed in &embeds {
            assert!(
                embed.starts_with("**OFFICIAL\\-SENSITIVE**")
                    || embed.starts_with("**OFFICIAL-SENSITIVE**"),
                "{embed}"
            );
        }
        let all = embeds.join("\n");
        if full {
            assert!(all.contains("Each agency saw part of the picture"), "{all}");
        } else {
            assert!(
                !all.contains("Each agency saw part of the picture"),
                "{all}"
            );
            assert!(all.contains("What a local review taught us"), "{all}");
            assert!(all.contains("http://localhost:8080/ack/"), "{all}");
            assert!(
                posts
                    .iter()
                    .all(|p| p.body["components"].as_array().is_none_or(|c| c.is_empty())),
                "no buttons on a notice"
            );
        }
        runner.stop().await;
    }
}

/// The id of the message the fake keeps with `content` (a follow-up).
fn message_with(fake: &FakeDiscord, content: &str) -> String {
    fake.state()
        .messages
        .iter()
        .find(|(_, m)| m["content"].as_str() == Some(content))
        .map(|(id, _)| id.clone())
        .expect("the follow-up is kept")
}

/// A button's (label, custom id) on a message body.
fn buttons_of(body: &Value) -> Vec<(String, String)> {
    body["components"]
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|row| row["components"].as_array().unwrap().clone())
        .map(|b| {
            (
                b["label"].as_str().unwrap().to_owned(),
                b["custom_id"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

/// A person's answers to the briefing's check question: (first answer,
/// right first time, attempts, recorded with an acknowledgement).
async fn check_answers(runner: &Runner<SqliteStore>, person: &str) -> Vec<(u32, bool, u32, bool)> {
    use cascade_store::{Evidence, Store};
    let item = "7mb-neglect-seeing-the-child";
    let store = runner.store();
    let version = store.item_versions(item).await.unwrap()[0]
        .version
        .0
        .clone();
    store
        .check_progress(person, item, &version)
        .await
        .unwrap()
        .answers
        .into_iter()
        .map(|a| {
            (
                a.first_answer,
                a.right_first_time,
                a.attempts,
                a.acknowledgement_id.is_some(),
            )
        })
        .collect()
}

/// Issue 19 on Discord: "Acknowledge" on the briefing asks its check
/// question in a private follow-up, the options' words in the message and
/// a button each (labels within Discord's 80 characters, custom ids within
/// 100, no option words in them); a wrong press shows the explanation and
/// the section and asks again; the right one records the acknowledgement
/// after a retry. Another person answers right first time.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_check_question_is_asked_on_acknowledge_wrong_then_right_and_right_first_time() {
    let fake = FakeDiscord::start().await;
    let dir = project_with_check_questions(&fake).await;
    let runner = runner(dir.path()).await;
    fake.wait_for("an IDENTIFY", |s| (s.identifies == 1).then_some(()))
        .await;
    link(&fake, &runner, AMARA, "p-amara-okafor").await;
    link(&fake, &runner, SIMON, "p-simon-hale").await;
    runner.tick(utc(2026, 3, 27, 9, 0)).await.unwrap();

    for (user, person, wrong_first) in [
        (AMARA, "p-amara-okafor", true),
        (SIMON, "p-simon-hale", false),
    ] {
        let channel = fake.dm_channel_of(user).expect("a DM");
        let (item_message, item) = fake
            .messages_in(&channel)
            .into_iter()
            .rev()
            .find(|(_, m)| !m["components"].as_array().unwrap().is_empty())
            .unwrap();
        let (_, ack_id) = buttons_of(&item)
            .into_iter()
            .find(|(label, _)| label == "Acknowledge")
            .unwrap();
        let press = fake.press_button(user, &item_message, &ack_id);
        assert_eq!(handle_next(&runner).await, InboundOutcome::Asked);
        let asked = answer_to(&fake, "POST", &press).await;
        let text = asked["content"].as_str().unwrap();
        assert!(text.contains("Question 1 of 1: On a home visit where you are worried about neglect, what should you ask to see?"), "{text}");
        assert!(
            text.contains("2. Where the child sleeps, the fridge and the bed"),
            "{text}"
        );
        assert_eq!(asked["flags"], 64, "only they see it");
        let buttons = buttons_of(&asked);
        assert_eq!(buttons.len(), 3);
        for (label, id) in &buttons {
            assert!(
                label.chars().count() <= 80 && id.len() <= 100,
                "{label} {id}"
            );
            assert!(!id.contains("living"), "{id}");
        }
        let mut on = message_with(&fake, text);
        let mut buttons = buttons;
        if wrong_first {
            let press = fake.press_button(user, &on, &buttons[0].1);
            assert_eq!(handle_next(&runner).await, InboundOutcome::Asked);
            let retry = answer_to(&fake, "POST", &press).await;
            let text = retry["content"].as_str().unwrap();
            assert!(text.starts_with("Not quite. Seeing the child"), "{text}");
            assert!(text.contains("What practitioners should do"), "{text}");
            assert!(
                text.contains("Look at the bedroom, the fridge, the bed."),
                "{text}"
            );
            on = message_with(&fake, text);
            buttons = buttons_of(&retry);
        }
        fake.press_button(user, &on, &buttons[1].1);
        assert_eq!(
            handle_next(&runner).await,
            InboundOutcome::Acknowledged {
                person_id: person.to_owned(),
                first: true
            }
        );
        let expected = if wrong_first {
            (1, false, 2, true)
        } else {
            (2, true, 1, true)
        };
        assert_eq!(check_answers(&runner, person).await, [expected]);
    }
    assert_eq!(acknowledgements(runner.store().as_ref()).await, 2);
    runner.stop().await;
}

/// The text of a message's embeds.
fn description(message: &Value) -> String {
    message["embeds"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|e| e["description"].as_str())
        .collect()
}

/// Issue 19 on Discord: a refresher 28 days after Amara's acknowledgement
/// (10:00 BST on Friday 24 April, across the clock change) is a DM with
/// the item's first point, its check question and a button each, within
/// Discord's limits; a wrong press explains privately and asks again; the
/// right one is kept as the refresher's answer, after a retry; nothing is
/// acknowledged and nobody is chased.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refresher_is_asked_with_buttons_and_its_answer_kept_on_the_refresher() {
    use cascade_model::rollout::StepKind;
    use cascade_store::{AckMethod, Evidence, Inspect, NewAcknowledgement, Outbox};
    let fake = FakeDiscord::start().await;
    let dir = project_with_check_questions(&fake).await;
    let rollout = ROLLOUT.replace(
        "ack_deadline_days = 10",
        "ack_deadline_days = 10\nrefreshers = [\"28d\"]",
    );
    let runner = runner_of(dir.path(), &rollout).await;
    fake.wait_for("an IDENTIFY", |s| (s.identifies == 1).then_some(()))
        .await;
    link(&fake, &runner, AMARA, "p-amara-okafor").await;
    runner.tick(utc(2026, 3, 27, 9, 0)).await.unwrap();
    let store = runner.store();
    let stored = store.rollout("now").await.unwrap().unwrap();
    store
        .acknowledge_item(&NewAcknowledgement {
            person_id: "p-amara-okafor".to_owned(),
            item_id: stored.item_id,
            item_version: stored.item_version,
            rollout_id: Some("now".to_owned()),
            delivery_id: None,
            channel: "discord".to_owned(),
            method: AckMethod::Button,
            at: cascade_model::time::millis(utc(2026, 3, 27, 10, 0)),
        })
        .await
        .unwrap();
    let channel = fake.dm_channel_of(AMARA).expect("a DM");
    let refresher_message = |fake: &FakeDiscord| {
        fake.messages_in(&channel)
            .into_iter()
            .find(|(_, m)| description(m).contains("A refresher on"))
    };
    runner.tick(utc(2026, 4, 24, 8, 59)).await.unwrap();
    assert!(refresher_message(&fake).is_none());
    runner.tick(utc(2026, 4, 24, 9, 0)).await.unwrap();
    let (message, body) = refresher_message(&fake).expect("the refresher DM");
    let text = description(&body);
    assert!(
        text.contains("Key message: Neglect is the persistent failure"),
        "{text}"
    );
    assert!(
        text.contains("A quick question: On a home visit where you are worried about neglect"),
        "{text}"
    );
    let buttons = buttons_of(&body);
    assert_eq!(buttons.len(), 3);
    for (label, id) in &buttons {
        assert!(
            label.chars().count() <= 80 && id.len() <= 100,
            "{label} {id}"
        );
        assert!(!id.contains("living"), "{id}");
    }

    let press = fake.press_button(AMARA, &message, &buttons[0].1);
    assert_eq!(handle_next(&runner).await, InboundOutcome::Asked);
    let retry = answer_to(&fake, "POST", &press).await;
    let retry_text = retry["content"].as_str().unwrap();
    assert!(
        retry_text.starts_with("Not quite. Seeing the child"),
        "{retry_text}"
    );
    assert_eq!(retry["flags"], 64, "only she sees it");
    let on = message_with(&fake, retry_text);
    fake.press_button(AMARA, &on, &buttons_of(&retry)[1].1);
    assert_eq!(
        handle_next(&runner).await,
        InboundOutcome::Answered {
            person_id: "p-amara-okafor".to_owned(),
            answer: "Where the child sleeps, the fridge and the bed".to_owned(),
            first: true
        }
    );
    let kept: Vec<(u32, u32, bool, u32, bool)> = store
        .refresher_answers()
        .await
        .unwrap()
        .into_iter()
        .map(|a| {
            (
                a.refresher,
                a.first_answer,
                a.right_first_time,
                a.attempts,
                a.answered_at.is_some(),
            )
        })
        .collect();
    assert_eq!(kept, [(1, 1, false, 2, true)]);
    runner.tick(utc(2026, 5, 20, 9, 0)).await.unwrap();
    let kinds: Vec<StepKind> = store
        .outbox_rows()
        .await
        .unwrap()
        .into_iter()
        .filter(|r| r.person_id == "p-amara-okafor")
        .map(|r| r.step_kind)
        .collect();
    assert_eq!(kinds, [StepKind::Initial, StepKind::Refresher]);
    runner.stop().await;
}

/// Issue 19, the feedback loop on Discord: a follow-up answered "Not yet"
/// is answered privately with the follow-up's reasons, a button each; the
/// reason pressed is kept on the answer.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_not_used_follow_up_answer_asks_for_a_reason_with_buttons() {
    use cascade_store::Inspect;
    let fake = FakeDiscord::start().await;
    let dir = project(&fake).await;
    let rollout = format!(
        "{ROLLOUT}[[follow_ups]]\nafter_days = 3\nquestion = \"Have you used this in practice?\"\n\
         answers = [\"Used it in practice\", \"Not yet\"]\n\
         reasons = [\"Not relevant to my role\", \"No opportunity yet\", \"Need more training\"]\n"
    );
    let runner = runner_of(dir.path(), &rollout).await;
    fake.wait_for("an IDENTIFY", |s| (s.identifies == 1).then_some(()))
        .await;
    link(&fake, &runner, AMARA, "p-amara-okafor").await;
    runner.tick(utc(2026, 3, 27, 9, 0)).await.unwrap();
    runner.tick(utc(2026, 3, 30, 9, 0)).await.unwrap();
    let channel = fake.dm_channel_of(AMARA).expect("a DM");
    let (message, body) = fake
        .messages_in(&channel)
        .into_iter()
        .find(|(_, m)| description(m).contains("Have you used this in practice?"))
        .expect("the follow-up");
    let (_, not_yet) = buttons_of(&body)
        .into_iter()
        .find(|(label, _)| label == "Not yet")
        .unwrap();
    let press = fake.press_button(AMARA, &message, &not_yet);
    assert_eq!(
        handle_next(&runner).await,
        InboundOutcome::Answered {
            person_id: "p-amara-okafor".to_owned(),
            answer: "Not yet".to_owned(),
            first: true
        }
    );
    let why = answer_to(&fake, "POST", &press).await;
    let text = why["content"].as_str().unwrap();
    assert!(text.contains("What is the main reason?"), "{text}");
    let reasons = buttons_of(&why);
    assert_eq!(
        reasons.iter().map(|(l, _)| l.as_str()).collect::<Vec<_>>(),
        [
            "Not relevant to my role",
            "No opportunity yet",
            "Need more training"
        ]
    );
    let on = message_with(&fake, text);
    fake.press_button(AMARA, &on, &reasons[2].1);
    assert_eq!(
        handle_next(&runner).await,
        InboundOutcome::Answered {
            person_id: "p-amara-okafor".to_owned(),
            answer: "Need more training".to_owned(),
            first: true
        }
    );
    let kept: Vec<(String, Option<String>)> = runner
        .store()
        .answers()
        .await
        .unwrap()
        .into_iter()
        .map(|a| (a.answer, a.reason))
        .collect();
    assert_eq!(
        kept,
        [("Not yet".to_owned(), Some("Need more training".to_owned()))]
    );
    runner.stop().await;
}
