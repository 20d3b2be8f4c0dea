//! Whole flows through the engine and the real Teams plugin against the
//! fake Microsoft services, with cascade's webhook route served on a
//! socket as `cascade serve` serves it: a practitioner links with `link
//! CODE`, gets the item as Adaptive Cards, acknowledges (the card is
//! updated, the acknowledgement is in the report), answers a follow-up; a
//! champion confirms through the card's form; a team channel post's count
//! moves as members acknowledge; a 429 is waited out; a blocked bot falls
//! back to email. Forged and foreign presses record nothing.

mod support;

use cascade_engine::delivery::DispatchSettings;
use cascade_engine::engine::{Engine, Runner};
use cascade_engine::inbound::{InboundOutcome, Refusal, issue_code};
use cascade_engine::project::Project;
use cascade_engine::report::{self, Format, Selection};
use cascade_model::content::Taxonomy;
use cascade_model::rollout::{Calendar, QuietHours};
use cascade_store::{AckMethod, DeliveryState, Inspect, SqliteStore, TeamCount, TeamPosts};
use cascade_test_support::outbox::{acknowledgements, rows};
use cascade_test_support::{DemoProject, utc};
use chrono::{DateTime, Utc};
use std::time::{Duration, Instant};
use support::fake_teams::{FakeTeams, OTHER_TENANT, PASSWORD, Signed, Stored, shown};

const AMARA: u32 = 1; // p-amara-okafor: a champion for MASH
const TOM: u32 = 2; // p-tom-reilly: a practitioner
const STRANGER: u32 = 99; // never linked
const SIMON: u32 = 21; // the Emergency Department's three members
const HANNAH: u32 = 22;
const DANIEL: u32 = 23;
const ED_CHANNEL: &str = "19:ed-general@thread.tacv2";

const ROLLOUT: &str = r#"
id = "now"
item = "7mb-neglect-seeing-the-child"
start = 2026-03-27T09:00:00
channels = ["teams", "outbox"]
ack_deadline_days = 10
[audience]
[[waves]]
name = "Everyone"
after_days = 0
[[follow_ups]]
after_days = 90
question = "Have you used this in practice?"
answers = ["Used it in practice", "Not yet", "Not relevant to my role"]
reasons = ["No opportunity yet", "Need more training"]
"#;

const TEAM_ROLLOUT: &str = r#"
id = "now"
item = "7mb-neglect-seeing-the-child"
start = 2026-03-27T09:00:00
channels = ["teams"]
team_posts = ["teams"]
ack_deadline_days = 10
[audience]
teams = ["hosp-ed"]
[[waves]]
name = "Everyone"
after_days = 0
"#;

struct Flow {
    fake: FakeTeams,
    runner: Runner<SqliteStore>,
    dir: tempfile::TempDir,
}

impl Flow {
    /// The demo project with an email outbox and the Teams channel pointed
    /// at the fake (`entry` adds to its `[[channels]]` entry), `rollout`
    /// started, and cascade's webhook routes served.
    async fn start(rollout: &str, entry: &str) -> Flow {
        Flow::start_with(rollout, entry, |project| project).await
    }

    /// As [`start`](Self::start), with the demo project changed first.
    async fn start_with(
        rollout: &str,
        entry: &str,
        change: impl FnOnce(DemoProject) -> DemoProject,
    ) -> Flow {
        // Only the test of check questions keeps the briefing's: elsewhere
        // one press acknowledges.
        Flow::build(
            rollout,
            entry,
            change(DemoProject::new().without_check_questions()),
        )
        .await
    }

    /// The demo with the briefing's check question kept.
    async fn with_check_questions() -> Flow {
        Flow::build(ROLLOUT, "", DemoProject::new()).await
    }

    async fn build(rollout: &str, entry: &str, project: DemoProject) -> Flow {
        let fake = FakeTeams::start().await;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        fake.set_webhook(&format!(
            "http://{}/webhooks/teams",
            listener.local_addr().unwrap()
        ));
        let channels = format!(
            r#"
[[channels]]
name = "outbox"
plugin = "file"
identity = "email"
formats = ["email-text"]
config = {{ dir = "{outbox}" }}

[[channels]]
name = "teams"
plugin = "teams"
identity = "teams"
formats = ["discord"]
config = {{ {config} }}
secrets = {{ app_password = {{ file = "teams-app-password" }} }}
{entry}
"#,
            outbox = project.path().join("outbox").display(),
            config = fake.config_toml(),
        );
        let dir = project
            .channels(&channels)
            .write("teams-app-password", format!("{PASSWORD}\n"))
            .imported()
            .await
            .into_dir();
        let path = dir.path().join("rollouts").join("now.toml");
        std::fs::write(&path, rollout).unwrap();
        let engine = Engine::open(Project::open(dir.path()).unwrap(), true)
            .await
            .unwrap_or_else(|p| panic!("{p}"));
        let planned = engine
            .plan(&path, utc(2026, 3, 27, 8, 0))
            .await
            .unwrap_or_else(|p| panic!("{p}"));
        engine
            .start(&planned, utc(2026, 3, 27, 8, 0))
            .await
            .unwrap();
        let runner = engine
            .runner(DispatchSettings {
                backoff_base: Duration::from_secs(60),
                team_post_edit_interval: Duration::from_secs(3),
                ..DispatchSettings::default()
            })
            .await
            .unwrap();
        let app = cascade_server::webhook_router(runner.host().clone());
        tokio::spawn(async move {
            let limits = cascade_server::ServerConfig::default();
            cascade_server::serve(listener, app, &limits, std::future::pending()).await
        });
        Flow { fake, runner, dir }
    }

    /// Lets the runner handle the plugin's next event at `now`.
    async fn handle_next(&self, now: DateTime<Utc>) -> InboundOutcome {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let mut outcomes = self.runner.handle_inbound(now).await.unwrap();
            if let Some(outcome) = outcomes.pop() {
                assert!(outcomes.is_empty(), "{outcomes:?}");
                return outcome;
            }
            assert!(Instant::now() < deadline, "no inbound event within 20 s");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    /// The replies to activity `id` once there are any: what they show.
    async fn answers_to(&self, id: &str) -> Vec<String> {
        self.fake
            .wait_for(&format!("an answer to {id}"), |s| {
                let answers: Vec<String> = s
                    .messages
                    .iter()
                    .filter(|m| m.reply_to.as_deref() == Some(id))
                    .map(|m| shown(&m.activity).0)
                    .collect();
                (!answers.is_empty()).then_some(answers)
            })
            .await
    }

    /// Person `n` sends `link CODE` for `person` in their chat with the bot.
    async fn link(&self, n: u32, person: &str) {
        let code = issue_code(
            self.runner.store().as_ref(),
            self.runner.link_codes(),
            person,
            1_774_598_400_000,
        )
        .await
        .unwrap();
        let (id, status) = self.fake.says(n, &format!("link {code}")).await;
        assert_eq!(status, 200);
        assert_eq!(
            self.handle_next(utc(2026, 3, 27, 8, 30)).await,
            InboundOutcome::Linked {
                person_id: person.to_owned()
            }
        );
        let answer = self.answers_to(&id).await.join("\n");
        assert!(answer.contains("this chat is now linked"), "{answer}");
    }

    /// The reply to activity `id` that has buttons.
    async fn reply_card(&self, id: &str) -> Stored {
        self.fake
            .wait_for(&format!("a card answering {id}"), |s| {
                s.messages
                    .iter()
                    .find(|m| m.reply_to.as_deref() == Some(id) && !shown(&m.activity).1.is_empty())
                    .cloned()
            })
            .await
    }

    /// The last message in person `n`'s chat that has buttons.
    fn last_card(&self, n: u32) -> Stored {
        let conversation = self.fake.personal_conversation(n);
        self.fake
            .messages_in(&conversation)
            .into_iter()
            .rev()
            .find(|m| !shown(&m.activity).1.is_empty())
            .unwrap_or_else(|| panic!("no card with buttons for person {n}"))
    }
}

/// The button labelled `label` on `message`: its data.
fn button(message: &Stored, label: &str) -> String {
    let (_, buttons) = shown(&message.activity);
    buttons
        .into_iter()
        .find(|(l, _)| l == label)
        .map(|(_, data)| data)
        .unwrap_or_else(|| panic!("no button {label:?} on {message:?}"))
}

fn labels(message: &Stored) -> Vec<String> {
    shown(&message.activity)
        .1
        .into_iter()
        .map(|(l, _)| l)
        .collect()
}

/// The report's CSV cell `column` of the rollout row of rollout `now`.
async fn report_cell(runner: &Runner<SqliteStore>, column: &str) -> String {
    let report = report::generate(
        runner.store().as_ref(),
        &Selection::Rollout("now".to_owned()),
        &Calendar::new("Europe/London", QuietHours::default()).unwrap(),
        &Taxonomy::default(),
        utc(2026, 3, 28, 12, 0),
    )
    .await
    .unwrap();
    let csv = report::render(&report, Format::Csv);
    let mut lines = csv.lines();
    let header: Vec<&str> = lines.next().unwrap().split(',').collect();
    let index = header.iter().position(|h| *h == column).unwrap();
    let row = lines
        .find(|l| l.starts_with("rollout,now,"))
        .unwrap_or_else(|| panic!("no rollout row in {csv}"));
    row.split(',').nth(index).unwrap().to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn link_receive_acknowledge_see_the_card_change_confirm_through_the_form_and_answer_a_follow_up()
 {
    let flow = Flow::start(ROLLOUT, "").await;
    flow.link(AMARA, "p-amara-okafor").await;

    // The wave reaches her as Adaptive Cards in her chat with the bot.
    flow.runner.tick(utc(2026, 3, 27, 9, 0)).await.unwrap();
    let conversation = flow.fake.personal_conversation(AMARA);
    let cards: Vec<Stored> = flow
        .fake
        .messages_in(&conversation)
        .into_iter()
        .filter(|m| m.activity["attachments"].is_array())
        .collect();
    assert!(!cards.is_empty());
    let first = &cards[0].activity["attachments"][0]["content"];
    assert_eq!(first["version"], "1.5");
    assert!(shown(&cards[0].activity).0.contains("Neglect"));
    let card = flow.last_card(AMARA);
    assert_eq!(
        labels(&card),
        ["Acknowledge", "I've cascaded this to my team"]
    );
    let ack = button(&card, "Acknowledge");
    let confirm = button(&card, "I've cascaded this to my team");
    assert!(
        ack.len() <= 64 && !ack.contains("amara"),
        "a signed id: {ack}"
    );
    let form = &card.activity["attachments"][0]["content"]["actions"][1]["card"]["body"];
    let inputs: Vec<&str> = form
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|i| i["type"].as_str())
        .filter(|t| t.starts_with("Input."))
        .collect();
    assert_eq!(
        inputs,
        [
            "Input.ChoiceSet",
            "Input.Date",
            "Input.Number",
            "Input.ChoiceSet",
            "Input.Text"
        ]
    );

    // A stranger pressing her button, a forged press and a press from
    // another tenant record nothing.
    let (stranger, status) = flow.fake.presses(STRANGER, &card, &ack).await;
    assert_eq!(status, 200);
    assert_eq!(
        flow.handle_next(utc(2026, 3, 27, 10, 0)).await,
        InboundOutcome::Refused {
            reason: Refusal::UnlinkedAccount
        }
    );
    assert!(flow.answers_to(&stranger).await[0].contains("not linked"));
    let mut forged = flow.fake.press_activity(
        AMARA,
        &conversation,
        true,
        serde_json::json!({ "cascade": ack }),
        &card.id,
    );
    assert_eq!(flow.fake.post(&forged, &Signed::WrongSignature).await, 401);
    assert_eq!(flow.fake.post(&forged, &Signed::Expired).await, 401);
    forged["channelData"]["tenant"]["id"] = serde_json::json!(OTHER_TENANT);
    forged["conversation"]["tenantId"] = serde_json::json!(OTHER_TENANT);
    assert_eq!(flow.fake.post(&forged, &Signed::Valid).await, 403);
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        flow.runner
            .handle_inbound(utc(2026, 3, 27, 10, 0))
            .await
            .unwrap(),
        []
    );
    assert_eq!(acknowledgements(flow.runner.store().as_ref()).await, 0);

    // She acknowledges: her card is updated in place to say so and keeps
    // only the cascade button; the report counts it.
    let (press, _) = flow.fake.presses(AMARA, &card, &ack).await;
    assert_eq!(
        flow.handle_next(utc(2026, 3, 27, 10, 0)).await,
        InboundOutcome::Acknowledged {
            person_id: "p-amara-okafor".to_owned(),
            first: true
        }
    );
    flow.answers_to(&press).await;
    let updated = flow
        .fake
        .wait_for("the card's status", |s| {
            let now = s.messages.iter().find(|m| m.id == card.id)?;
            shown(&now.activity)
                .0
                .contains("Acknowledged on 27 March 2026")
                .then(|| now.clone())
        })
        .await;
    assert!(
        shown(&updated.activity)
            .0
            .starts_with(&shown(&card.activity).0),
        "the item stays on the card"
    );
    assert_eq!(labels(&updated), ["I've cascaded this to my team"]);
    assert_eq!(
        flow.fake
            .requests_to(&format!(
                "PUT /v3/conversations/{conversation}/activities/{}",
                card.id
            ))
            .len(),
        1
    );
    let acks = flow.runner.store().acknowledgements().await.unwrap();
    assert_eq!(
        (acks.len(), acks[0].channel.as_str(), acks[0].method),
        (1, "teams", AckMethod::Button)
    );
    assert_eq!(report_cell(&flow.runner, "acknowledged").await, "1");

    // As a champion she confirms the cascade through the card's form.
    let (_, status) = flow
        .fake
        .submits(
            AMARA,
            &updated,
            &confirm,
            Some(&[
                ("team", "Multi-Agency Safeguarding Hub (MASH)"),
                ("session_date", "2026-03-26"),
                ("present", "14"),
                ("method", "briefing-session"),
                ("note", ""),
            ]),
        )
        .await;
    assert_eq!(status, 200);
    assert_eq!(
        flow.handle_next(utc(2026, 3, 27, 10, 0)).await,
        InboundOutcome::Confirmed {
            person_id: "p-amara-okafor".to_owned(),
            team_id: "mash".to_owned(),
            first: true
        }
    );
    let row = flow.runner.store().confirmations().await.unwrap().remove(0);
    assert_eq!(
        (row.team_id, row.session_date, row.present, row.channel),
        ("mash".into(), "2026-03-26".into(), 14, "teams".into())
    );
    // A form the web page would refuse is refused the same way.
    let (bad, _) = flow
        .fake
        .submits(
            AMARA,
            &updated,
            &confirm,
            Some(&[
                ("team", "Multi-Agency Safeguarding Hub (MASH)"),
                ("session_date", "2026-03-26"),
                ("present", "lots"),
                ("method", "carrier pigeon"),
            ]),
        )
        .await;
    assert_eq!(
        flow.handle_next(utc(2026, 3, 27, 10, 0)).await,
        InboundOutcome::Asked
    );
    let told = flow.answers_to(&bad).await.join("\n");
    assert!(told.contains("Nothing was recorded"), "{told}");

    // Ninety days on, the follow-up arrives with its answers as buttons.
    flow.runner.tick(utc(2026, 6, 25, 8, 0)).await.unwrap();
    let follow_up = flow.last_card(AMARA);
    assert!(
        shown(&follow_up.activity)
            .0
            .contains("Have you used this in practice?")
    );
    let (press, status) = flow
        .fake
        .presses(AMARA, &follow_up, &button(&follow_up, "Not yet"))
        .await;
    assert_eq!(status, 200);
    assert_eq!(
        flow.handle_next(utc(2026, 6, 25, 9, 0)).await,
        InboundOutcome::Answered {
            person_id: "p-amara-okafor".to_owned(),
            answer: "Not yet".to_owned(),
            first: true
        }
    );
    // Not used: the main reason, a button each (issue 19), kept on the answer.
    let why = flow.reply_card(&press).await;
    assert!(
        shown(&why.activity).0.contains("What is the main reason?"),
        "{:?}",
        shown(&why.activity)
    );
    assert_eq!(labels(&why), ["No opportunity yet", "Need more training"]);
    flow.fake
        .presses(AMARA, &why, &button(&why, "Need more training"))
        .await;
    assert_eq!(
        flow.handle_next(utc(2026, 6, 25, 9, 0)).await,
        InboundOutcome::Answered {
            person_id: "p-amara-okafor".to_owned(),
            answer: "Need more training".to_owned(),
            first: true
        }
    );
    let reasons: Vec<Option<String>> = Inspect::answers(&**flow.runner.store())
        .await
        .unwrap()
        .into_iter()
        .map(|a| a.reason)
        .collect();
    assert_eq!(reasons, [Some("Need more training".to_owned())]);
    flow.runner.stop().await;
}

/// 27 March 2026, 10:00 UTC plus `seconds`.
fn at(seconds: i64) -> DateTime<Utc> {
    utc(2026, 3, 27, 10, 0) + chrono::Duration::seconds(seconds)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_team_channel_post_counts_the_members_acknowledgements() {
    let flow = Flow::start(
        TEAM_ROLLOUT,
        &format!("team_channels = {{ \"hosp-ed\" = \"{ED_CHANNEL}\" }}"),
    )
    .await;
    flow.fake.add_channel(ED_CHANNEL);
    flow.link(SIMON, "p-simon-hale").await;
    flow.link(HANNAH, "p-hannah-price").await;
    flow.link(DANIEL, "p-daniel-mensah").await;

    flow.runner.tick(at(0)).await.unwrap();
    flow.runner.tick(at(1)).await.unwrap();
    let posts = flow.fake.messages_in(ED_CHANNEL);
    let post = posts
        .iter()
        .find(|m| !shown(&m.activity).1.is_empty())
        .cloned()
        .expect("the post with its button");
    assert!(shown(&post.activity).0.contains("0 of 3 acknowledged"));
    assert_eq!(labels(&post), ["Acknowledge"]);
    let post_button = button(&post, "Acknowledge");
    assert!(post_button.starts_with("post:") && post_button.len() <= 64);

    // Simon presses the post's button in the channel: it is his
    // acknowledgement, answered in his own chat, not in the channel.
    let (press, status) = flow.fake.presses(SIMON, &post, &post_button).await;
    assert_eq!(status, 200);
    assert_eq!(
        flow.handle_next(at(2)).await,
        InboundOutcome::Acknowledged {
            person_id: "p-simon-hale".to_owned(),
            first: true
        }
    );
    let simons_chat = flow.fake.personal_conversation(SIMON);
    flow.fake
        .wait_for("Simon's private answer", |s| {
            s.messages
                .iter()
                .any(|m| {
                    m.conversation == simons_chat && shown(&m.activity).0.contains("acknowledged")
                })
                .then_some(())
        })
        .await;
    assert_eq!(
        flow.fake.replies_to(&press),
        0,
        "nothing said in the channel"
    );

    // Hannah acknowledges through her own card; the next paced update of
    // the post shows both.
    let hannahs = flow.last_card(HANNAH);
    flow.fake
        .presses(HANNAH, &hannahs, &button(&hannahs, "Acknowledge"))
        .await;
    assert_eq!(
        flow.handle_next(at(3)).await,
        InboundOutcome::Acknowledged {
            person_id: "p-hannah-price".to_owned(),
            first: true
        }
    );
    flow.runner.tick(at(5)).await.unwrap();
    let updates = flow.fake.requests_to(&format!(
        "PUT /v3/conversations/{ED_CHANNEL}/activities/{}",
        post.id
    ));
    assert_eq!(updates.len(), 1, "{updates:?}");
    let now = flow.fake.message(&post.id).unwrap();
    assert!(shown(&now.activity).0.contains("2 of 3 acknowledged"));
    assert_eq!(labels(&now), ["Acknowledge"]);
    let shown_count = flow.runner.store().team_posts("now").await.unwrap()[0].shown;
    assert_eq!(
        shown_count,
        Some(TeamCount {
            acknowledged: 2,
            total: 3
        })
    );
    flow.runner.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_429_is_waited_out_and_a_blocked_bot_falls_back_to_email() {
    let flow = Flow::start(ROLLOUT, "").await;
    flow.link(AMARA, "p-amara-okafor").await;
    flow.link(TOM, "p-tom-reilly").await;
    flow.fake.block(TOM);
    // Teams refuses the first post of the wave: 429, retry after 1 s.
    flow.fake.refuse_with_retry_after(0, 1);

    flow.runner.tick(utc(2026, 3, 27, 9, 0)).await.unwrap();
    let runner = &flow.runner;
    let amaras = |state: DeliveryState| async move {
        rows(runner.store().as_ref())
            .await
            .into_iter()
            .filter(|r| r.recipient_id == "p-amara-okafor" && r.channel == "teams")
            .all(|r| r.state == state)
    };
    assert!(amaras(DeliveryState::Due).await, "to be tried again");
    let refused: Vec<_> = flow
        .fake
        .requests_to("POST /v3/conversations/a:")
        .into_iter()
        .filter(|r| r.status == 429)
        .collect();
    assert_eq!(refused.len(), 1, "{refused:?}");
    // The engine tries again after the wait Teams asked for, and it lands.
    let mut seconds = 1;
    while !amaras(DeliveryState::Sent).await {
        assert!(seconds < 30, "the retry never landed");
        tokio::time::sleep(Duration::from_millis(200)).await;
        flow.runner
            .tick(utc(2026, 3, 27, 9, 0) + chrono::Duration::seconds(seconds))
            .await
            .unwrap();
        seconds += 1;
    }
    let posts = flow
        .fake
        .requests_to("POST /v3/conversations/a:1chat-1user-1/");
    let accepted = posts
        .iter()
        .find(|r| r.status == 201 && r.at > refused[0].at)
        .unwrap();
    assert!(
        accepted.at.duration_since(refused[0].at) >= Duration::from_secs(1),
        "not before the Retry-After"
    );

    // Tom blocked the bot: his Teams delivery is dead, his identity
    // unreachable, and he gets the item by email instead.
    let toms: Vec<(DeliveryState, String)> = rows(flow.runner.store().as_ref())
        .await
        .into_iter()
        .filter(|r| r.recipient_id == "p-tom-reilly")
        .map(|r| (r.state, r.channel))
        .collect();
    assert_eq!(
        toms,
        [
            (DeliveryState::Dead, "teams".to_owned()),
            (DeliveryState::Sent, "outbox".to_owned())
        ]
    );
    let identity = flow
        .runner
        .store()
        .identity("teams", &flow.fake.address(TOM))
        .await
        .unwrap()
        .unwrap();
    assert!(identity.unreachable_at.is_some());
    flow.runner.stop().await;
}

/// Amara champions 60 more teams: her confirmation form lists them all, so
/// the item and its buttons are more than Teams takes in one card.
fn sixty_localities(project: DemoProject) -> DemoProject {
    let ids: Vec<String> = (1..=60).map(|n| format!("locality-{n:03}")).collect();
    let listed = ids.join(";");
    project
        .edit("directory/teams.csv", |teams| {
            let mut teams = teams.trim_end().to_owned();
            for id in &ids {
                teams.push_str(&format!(
                    "\n{id},nb-council,Children's Social Care locality team {id} (early help)"
                ));
            }
            teams + "\n"
        })
        .edit("directory/champions.csv", |champions| {
            champions.replace(
                "p-amara-okafor,neglect,cs-north;mash",
                &format!("p-amara-okafor,neglect,cs-north;mash;{listed}"),
            )
        })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_card_over_teams_size_limit_arrives_split_with_the_buttons_on_its_last_part() {
    let flow = Flow::start_with(ROLLOUT, "", sixty_localities).await;
    flow.link(AMARA, "p-amara-okafor").await;
    flow.runner.tick(utc(2026, 3, 27, 9, 0)).await.unwrap();

    let conversation = flow.fake.personal_conversation(AMARA);
    let cards: Vec<Stored> = flow
        .fake
        .messages_in(&conversation)
        .into_iter()
        .filter(|m| m.activity["attachments"].is_array())
        .collect();
    let n = cards.len();
    assert!(
        n >= 2,
        "the item is split: {n} cards; {:?}",
        rows(flow.runner.store().as_ref())
            .await
            .iter()
            .filter(|r| r.channel == "teams")
            .map(|r| r.last_error.clone())
            .collect::<Vec<_>>()
    );
    let refused: Vec<u16> = flow
        .fake
        .requests_to(&format!("POST /v3/conversations/{conversation}/activities"))
        .iter()
        .map(|r| r.status)
        .filter(|s| *s >= 400)
        .collect();
    assert_eq!(refused, [] as [u16; 0], "Teams refused nothing");
    let mut all = String::new();
    for (i, card) in cards.iter().enumerate() {
        let (text, buttons) = shown(&card.activity);
        assert!(text.starts_with(&format!("({}/{n})", i + 1)), "{text}");
        assert_eq!(
            !buttons.is_empty(),
            i + 1 == n,
            "buttons on the last card only"
        );
        all.push_str(&text);
    }
    assert!(all.contains("Neglect"), "{all}");
    let last = cards.last().unwrap();
    assert_eq!(
        labels(last),
        ["Acknowledge", "I've cascaded this to my team"]
    );

    // The same message as one card is what Teams refuses.
    let mut whole = last.activity.clone();
    let body: Vec<serde_json::Value> = cards
        .iter()
        .flat_map(|c| {
            c.activity["attachments"][0]["content"]["body"]
                .as_array()
                .unwrap()
                .clone()
        })
        .collect();
    whole["attachments"][0]["content"]["body"] = serde_json::Value::Array(body);
    let token = flow.fake.state().tokens.iter().next().unwrap().clone();
    let status = reqwest::Client::new()
        .post(format!(
            "{}/v3/conversations/{conversation}/activities",
            flow.fake.url
        ))
        .bearer_auth(token)
        .json(&whole)
        .send()
        .await
        .unwrap()
        .status();
    assert_eq!(status, 413);

    // Pressing Acknowledge on the last part updates that card in place.
    let ack = button(last, "Acknowledge");
    flow.fake.presses(AMARA, last, &ack).await;
    assert_eq!(
        flow.handle_next(utc(2026, 3, 27, 10, 0)).await,
        InboundOutcome::Acknowledged {
            person_id: "p-amara-okafor".to_owned(),
            first: true
        }
    );
    flow.fake
        .wait_for("the last card's status", |s| {
            let now = s.messages.iter().find(|m| m.id == last.id)?;
            shown(&now.activity)
                .0
                .contains("Acknowledged on 27 March 2026")
                .then_some(())
        })
        .await;
}

/// The demo's neglect briefing marked OFFICIAL-SENSITIVE.
fn official_sensitive(project: DemoProject) -> DemoProject {
    project.edit("content/7mb-neglect-seeing-the-child.md", |text| {
        text.replacen(
            "status = \"published\"",
            "status = \"published\"\nclassification = \"official-sensitive\"\nsummary = \"What a local review taught us about seeing the child.\"",
            1,
        )
    })
}

/// Teams carries OFFICIAL by default: an OFFICIAL-SENSITIVE briefing
/// arrives as one marked card with its summary and the signed link to
/// read it, none of its text and no Acknowledge button. With `carries =
/// "official-sensitive"` the briefing arrives in full, every card marked.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_official_sensitive_briefing_is_a_notice_on_teams_unless_the_channel_carries_it() {
    for (entry, full) in [("", false), ("carries = \"official-sensitive\"", true)] {
        let flow = Flow::start_with(ROLLOUT, entry, official_sensitive).await;
        flow.link(TOM, "p-tom-reilly").await;
        flow.runner.tick(utc(2026, 3, 27, 9, 0)).await.unwrap();
        let conversation = flow.fake.personal_conversation(TOM);
        let cards: Vec<Stored> = flow
            .fake
            .messages_in(&conversation)
            .into_iter()
            .filter(|m| m.activity["attachments"].is_array())
            .collect();
        assert!(!cards.is_empty());
        let texts: Vec<String> = cards.iter().map(|c| shown(&c.activity).0).collect();
        // Each card's first line after Teams' own "(1/2)" part marker
        // carries the marking.
        for text in &texts {
            let first = text
                .lines()
                .map(str::trim)
                .find(|l| !(l.is_empty() || l.starts_with('(') && l.ends_with(')')))
                .unwrap_or_default();
            assert!(first.contains("OFFICIAL-SENSITIVE"), "{text}");
        }
        let all = texts.join("\n");
        if full {
            assert!(all.contains("Each agency saw part of the picture"), "{all}");
            assert_eq!(labels(cards.last().unwrap()), ["Acknowledge"], "{all}");
        } else {
            assert_eq!(cards.len(), 1, "{all}");
            assert!(
                !all.contains("Each agency saw part of the picture"),
                "{all}"
            );
            assert!(all.contains("What a local review taught us"), "{all}");
            let raw = cards[0].activity.to_string();
            assert!(raw.contains("http://localhost:8080/ack/"), "{raw}");
            assert!(labels(&cards[0]).is_empty(), "{all}");
        }
        flow.runner.stop().await;
    }
}

/// A split card whose second part Teams refused (429) is retried after
/// cascade restarts: the parts posted before the restart are kept in the
/// store (the host's plugin state), so only the missing parts are posted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_a_restart_a_split_card_posts_only_its_missing_parts() {
    let flow = Flow::start_with(ROLLOUT, "", sixty_localities).await;
    flow.link(AMARA, "p-amara-okafor").await;
    // The first card goes; Teams answers the second with 429.
    flow.fake.refuse_with_retry_after(1, 120);
    flow.runner.tick(utc(2026, 3, 27, 9, 0)).await.unwrap();
    let conversation = flow.fake.personal_conversation(AMARA);
    let cards = |fake: &FakeTeams| -> Vec<String> {
        fake.messages_in(&conversation)
            .into_iter()
            .filter(|m| m.activity["attachments"].is_array())
            .map(|m| shown(&m.activity).0)
            .collect()
    };
    let before = cards(&flow.fake);
    assert_eq!(before.len(), 1, "{before:?}");
    flow.runner.stop().await;

    // cascade restarts over the same project and store.
    let engine = Engine::open(Project::open(flow.dir.path()).unwrap(), true)
        .await
        .unwrap_or_else(|p| panic!("{p}"));
    let runner = engine
        .runner(DispatchSettings {
            backoff_base: Duration::from_secs(60),
            ..DispatchSettings::default()
        })
        .await
        .unwrap();
    runner.tick(utc(2026, 3, 27, 9, 10)).await.unwrap();
    let after = cards(&flow.fake);
    let n = after.len();
    assert!(n >= 2, "{after:?}");
    for (i, text) in after.iter().enumerate() {
        assert!(
            text.starts_with(&format!("({}/{n})", i + 1)),
            "part {} is {text}",
            i + 1
        );
    }
    assert_eq!(after[0], before[0], "the first part was not posted again");
    runner.stop().await;
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

/// Issue 19 on Teams: "Acknowledge" on the briefing's card asks its check
/// question in a card of its own, the options' words in its text and a
/// button each carrying only a short signed id; a wrong press shows the
/// explanation and the section and asks again; the right one records the
/// acknowledgement after a retry. Another person answers right first time.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_check_question_is_asked_on_acknowledge_wrong_then_right_and_right_first_time() {
    let flow = Flow::with_check_questions().await;
    flow.link(AMARA, "p-amara-okafor").await;
    flow.link(TOM, "p-tom-reilly").await;
    flow.runner.tick(utc(2026, 3, 27, 9, 0)).await.unwrap();
    for (n, person, wrong_first) in [
        (AMARA, "p-amara-okafor", true),
        (TOM, "p-tom-reilly", false),
    ] {
        let card = flow.last_card(n);
        let (press, _) = flow
            .fake
            .presses(n, &card, &button(&card, "Acknowledge"))
            .await;
        assert_eq!(
            flow.handle_next(utc(2026, 3, 27, 10, 0)).await,
            InboundOutcome::Asked
        );
        let mut asked = flow.reply_card(&press).await;
        let (text, buttons) = shown(&asked.activity);
        assert!(text.contains("Question 1 of 1: On a home visit where you are worried about neglect, what should you ask to see?"), "{text}");
        assert!(
            text.contains("Where the child sleeps, the fridge and the bed"),
            "{text}"
        );
        assert_eq!(buttons.len(), 3, "{buttons:?}");
        for (_, data) in &buttons {
            assert!(data.len() <= 64 && !data.contains("living"), "{data}");
        }
        if wrong_first {
            let (wrong, _) = flow.fake.presses(n, &asked, &buttons[0].1).await;
            assert_eq!(
                flow.handle_next(utc(2026, 3, 27, 10, 0)).await,
                InboundOutcome::Asked
            );
            asked = flow.reply_card(&wrong).await;
            let (text, _) = shown(&asked.activity);
            assert!(text.contains("Not quite. Seeing the child"), "{text}");
            assert!(text.contains("What practitioners should do"), "{text}");
            assert!(
                text.contains("Look at the bedroom, the fridge, the bed."),
                "{text}"
            );
        }
        let right = button(&asked, &labels(&asked)[1]);
        flow.fake.presses(n, &asked, &right).await;
        assert_eq!(
            flow.handle_next(utc(2026, 3, 27, 10, 0)).await,
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
        assert_eq!(check_answers(&flow.runner, person).await, [expected]);
    }
    flow.runner.stop().await;
}

/// Issue 19 on Teams: Tom acknowledges by his card (right first time) on
/// Friday 27 March 2026; 28 days on, at the same local time across the
/// clock change (09:00 UTC on 24 April), his refresher is a card with the
/// item's first point, its check question and a button each; a wrong
/// press explains and asks again, the right one is kept as the
/// refresher's answer, after a retry, and no chase ever follows.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refresher_card_asks_its_question_and_keeps_the_answer_on_the_refresher() {
    use cascade_model::rollout::StepKind;
    use cascade_store::Inspect;
    let rollout = ROLLOUT.replace(
        "ack_deadline_days = 10",
        "ack_deadline_days = 10\nreminder_days = [2]\nescalation_days = [1]\nrefreshers = [\"28d\"]",
    );
    let flow = Flow::build(&rollout, "", DemoProject::new()).await;
    flow.link(TOM, "p-tom-reilly").await;
    flow.runner.tick(utc(2026, 3, 27, 9, 0)).await.unwrap();
    let card = flow.last_card(TOM);
    let (press, _) = flow
        .fake
        .presses(TOM, &card, &button(&card, "Acknowledge"))
        .await;
    assert_eq!(
        flow.handle_next(utc(2026, 3, 27, 10, 0)).await,
        InboundOutcome::Asked
    );
    let asked = flow.reply_card(&press).await;
    let right = button(&asked, &labels(&asked)[1]);
    flow.fake.presses(TOM, &asked, &right).await;
    assert!(matches!(
        flow.handle_next(utc(2026, 3, 27, 10, 0)).await,
        InboundOutcome::Acknowledged { first: true, .. }
    ));

    let conversation = flow.fake.personal_conversation(TOM);
    let refresher_card = || {
        flow.fake
            .messages_in(&conversation)
            .into_iter()
            .find(|m| shown(&m.activity).0.contains("A refresher on"))
    };
    flow.runner.tick(utc(2026, 4, 24, 8, 59)).await.unwrap();
    assert!(refresher_card().is_none());
    flow.runner.tick(utc(2026, 4, 24, 9, 0)).await.unwrap();
    let refresher = refresher_card().expect("the refresher card");
    let (text, buttons) = shown(&refresher.activity);
    assert!(
        text.contains("Key message: Neglect is the persistent failure"),
        "{text}"
    );
    assert!(
        text.contains("A quick question: On a home visit where you are worried about neglect"),
        "{text}"
    );
    assert_eq!(buttons.len(), 3, "{buttons:?}");
    for (_, data) in &buttons {
        assert!(data.len() <= 64 && !data.contains("living"), "{data}");
    }
    let (wrong, _) = flow.fake.presses(TOM, &refresher, &buttons[0].1).await;
    assert_eq!(
        flow.handle_next(utc(2026, 4, 24, 10, 0)).await,
        InboundOutcome::Asked
    );
    let retry = flow.reply_card(&wrong).await;
    let (retry_text, _) = shown(&retry.activity);
    assert!(
        retry_text.contains("Not quite. Seeing the child"),
        "{retry_text}"
    );
    let right = button(&retry, &labels(&retry)[1]);
    flow.fake.presses(TOM, &retry, &right).await;
    assert_eq!(
        flow.handle_next(utc(2026, 4, 24, 10, 0)).await,
        InboundOutcome::Answered {
            person_id: "p-tom-reilly".to_owned(),
            answer: "Where the child sleeps, the fridge and the bed".to_owned(),
            first: true
        }
    );
    let store = flow.runner.store();
    let kept: Vec<(u32, u32, bool, u32)> = store
        .refresher_answers()
        .await
        .unwrap()
        .into_iter()
        .map(|a| (a.refresher, a.first_answer, a.right_first_time, a.attempts))
        .collect();
    assert_eq!(kept, [(1, 1, false, 2)]);
    flow.runner.tick(utc(2026, 6, 1, 9, 0)).await.unwrap();
    let kinds: Vec<StepKind> = store
        .outbox_rows()
        .await
        .unwrap()
        .into_iter()
        .filter(|r| r.person_id == "p-tom-reilly")
        .map(|r| r.step_kind)
        .collect();
    assert_eq!(kinds, [StepKind::Initial, StepKind::Refresher]);
    flow.runner.stop().await;
}
