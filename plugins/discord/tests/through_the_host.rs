//! The real plugin library, loaded and started by the engine's plugin host,
//! against a fake Discord on loopback that speaks Discord's REST API and
//! gateway protocol. Each test asserts on what reached the fake (parsed)
//! and on what the host received.

mod support;

use cascade_plugin_api::{Form, FormField, InboundKind, Reply, SendResult};
use serde_json::json;
use std::collections::BTreeMap;
use support::fake_discord::{FakeDiscord, Fault, GUILD_ID};
use support::{Bot, action, dm, reply, team_post};

const SAM: &str = "4000000000000000001";
const ALEX: &str = "4000000000000000002";

/// Discord's record of the response to interaction `id`, once it came: the
/// plugin stores the interaction with the host first, so the event may be
/// seen a moment before the response.
async fn responses_to(fake: &FakeDiscord, id: &str) -> Vec<support::fake_discord::Recorded> {
    let route = format!("POST /api/v10/interactions/{id}/");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    loop {
        let found = fake.requests_to(&route);
        if !found.is_empty() {
            return found;
        }
        assert!(std::time::Instant::now() < deadline, "no response to {id}");
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
}

/// The id of the last message the fake stored in the DM with `user`.
fn last_message_to(fake: &FakeDiscord, user: &str) -> String {
    let channel = fake.dm_channel_of(user).unwrap();
    let state = fake.state();
    state
        .messages
        .iter()
        .rev()
        .find(|(_, m)| m["channel_id"] == channel.as_str())
        .map(|(id, _)| id.clone())
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dm_carries_the_item_as_embeds_with_buttons_and_never_pings_anyone() {
    let fake = FakeDiscord::start().await;
    let bot = Bot::start(&fake, json!({})).await;

    let request = dm(
        "d-1",
        SAM,
        &[
            "**Neglect** @everyone and @here read this",
            "Part two <@&123> <@456>",
        ],
        vec![
            action("ack:d-1:sig", "Acknowledge"),
            action("later:d-1:sig", "Remind me tomorrow"),
        ],
    );
    let result = bot.send(&request).await;

    let SendResult::Delivered {
        provider_id: Some(provider_id),
    } = result
    else {
        panic!("expected delivered, got {result:?}");
    };
    let opened = fake.requests_to("POST /api/v10/users/@me/channels");
    assert_eq!(opened.len(), 1);
    assert_eq!(opened[0].body["recipient_id"], SAM);
    let channel = fake.dm_channel_of(SAM).unwrap();
    let posted = fake.requests_to(&format!("POST /api/v10/channels/{channel}/messages"));
    assert_eq!(posted.len(), 2);
    for post in &posted {
        assert_eq!(post.status, 200);
        assert_eq!(post.body["allowed_mentions"]["parse"], json!([]));
        assert_eq!(post.body["allowed_mentions"]["users"], json!([]));
        assert_eq!(post.body["allowed_mentions"]["roles"], json!([]));
    }
    let first = &posted[0].body;
    assert_eq!(
        first["embeds"][0]["title"],
        "7-minute briefing: Neglect and the toxic trio"
    );
    assert_eq!(
        first["embeds"][0]["description"],
        "**Neglect** @everyone and @here read this"
    );
    assert!(first.get("components").is_none());
    let buttons = &posted[1].body["components"][0]["components"];
    assert_eq!(buttons[0]["custom_id"], "ack:d-1:sig");
    assert_eq!(buttons[0]["label"], "Acknowledge");
    assert_eq!(buttons[1]["custom_id"], "later:d-1:sig");
    let last = last_message_to(&fake, SAM);
    assert_eq!(provider_id, format!("{channel}/{last}"));
    for message in fake.state().messages.values() {
        assert_eq!(message["mention_everyone"], false);
    }
    assert_eq!(fake.state().refusals, []);
    bot.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slash_commands_are_registered_at_start_and_each_run_is_emitted_and_answered() {
    let fake = FakeDiscord::start().await;
    let mut bot = Bot::start(&fake, json!({})).await;

    let registered = fake.requests_to(&format!(
        "PUT /api/v10/applications/1100000000000000001/guilds/{GUILD_ID}/commands"
    ));
    assert_eq!(registered.len(), 1, "one bulk overwrite at start");
    let names: Vec<_> = fake
        .state()
        .commands
        .iter()
        .map(|c| c["name"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(names, ["pending", "link", "ack", "help"]);

    fake.wait_for("an IDENTIFY", |s| (s.identifies == 1).then_some(()))
        .await;
    let interaction = fake.run_command(SAM, "link", &[("code", " 4K7Q2M ")]);
    let event = bot.next_event().await;
    assert_eq!(event.account, SAM);
    assert_eq!(event.id.as_deref(), Some(interaction.as_str()));
    assert_eq!(
        event.kind,
        InboundKind::Command {
            name: "link".to_owned(),
            args: vec!["4K7Q2M".to_owned()]
        }
    );
    let callback = responses_to(&fake, &interaction).await;
    assert_eq!(callback.len(), 1);
    assert_eq!(callback[0].status, 204, "answered within Discord's 3 s");
    assert_eq!(
        callback[0].body["type"], 5,
        "DEFERRED_CHANNEL_MESSAGE_WITH_SOURCE"
    );
    assert_eq!(callback[0].body["data"]["flags"], 64, "ephemeral");

    let answer = reply(
        &event,
        "Linked: you will get learning here. Try /pending *now*",
        Reply {
            private: true,
            ..Reply::default()
        },
        vec![action("pending", "Show pending")],
    );
    assert!(matches!(
        bot.send(&answer).await,
        SendResult::Delivered { .. }
    ));
    let edit = fake.requests_to("PATCH /api/v10/webhooks/1100000000000000001/");
    assert_eq!(edit.len(), 1);
    assert_eq!(edit[0].status, 200);
    assert_eq!(
        edit[0].body["content"],
        "Linked: you will get learning here. Try /pending \\*now\\*"
    );
    assert_eq!(
        edit[0].body["components"][0]["components"][0]["custom_id"],
        "pending"
    );
    assert_eq!(edit[0].body["allowed_mentions"]["parse"], json!([]));

    // The interaction is spent: a second answer is refused by the plugin,
    // not sent to Discord.
    let again = bot.send(&answer).await;
    assert!(matches!(again, SendResult::Failed { .. }), "{again:?}");
    assert_eq!(fake.requests_to("PATCH /api/v10/webhooks/").len(), 1);

    for (name, options) in [
        ("pending", vec![]),
        ("ack", vec![("item", "neglect-2026")]),
        ("help", vec![]),
    ] {
        fake.run_command(ALEX, name, &options);
        let event = bot.next_event().await;
        let args: Vec<String> = options.iter().map(|(_, v)| (*v).to_owned()).collect();
        assert_eq!(
            event.kind,
            InboundKind::Command {
                name: name.to_owned(),
                args
            }
        );
    }
    bot.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_button_press_is_deferred_at_once_emitted_and_the_message_then_shows_the_status() {
    let fake = FakeDiscord::start().await;
    let mut bot = Bot::start(&fake, json!({})).await;
    let request = dm(
        "d-7",
        SAM,
        &["Read me"],
        vec![
            action("ack:d-7:sig", "Acknowledge"),
            action("cascade:d-7:sig", "I've cascaded this"),
        ],
    );
    assert!(matches!(
        bot.send(&request).await,
        SendResult::Delivered { .. }
    ));
    let message = last_message_to(&fake, SAM);
    fake.wait_for("an IDENTIFY", |s| (s.identifies == 1).then_some(()))
        .await;

    let interaction = fake.press_button(SAM, &message, "ack:d-7:sig");
    let event = bot.next_event().await;
    assert_eq!(
        event.kind,
        InboundKind::Action {
            action_id: "ack:d-7:sig".to_owned(),
            delivery_id: None
        }
    );
    assert_eq!(event.account, SAM);
    assert_eq!(event.address, fake.dm_channel_of(SAM));
    assert_eq!(event.id.as_deref(), Some(interaction.as_str()));
    let callback = responses_to(&fake, &interaction).await;
    assert_eq!(callback.len(), 1);
    assert_eq!(callback[0].body["type"], 6, "DEFERRED_UPDATE_MESSAGE");
    assert_eq!(callback[0].status, 204, "answered within Discord's 3 s");

    let answer = reply(
        &event,
        "Thank you, @everyone. Your acknowledgement is recorded.",
        Reply {
            notice: Some("Acknowledged".to_owned()),
            status: Some("Acknowledged on 21 November 2026".to_owned()),
            keep_actions: vec![action("cascade:d-7:sig", "I've cascaded this")],
            private: true,
            ..Reply::default()
        },
        Vec::new(),
    );
    assert!(matches!(
        bot.send(&answer).await,
        SendResult::Delivered { .. }
    ));
    let shown = fake.message(&message);
    assert_eq!(shown["content"], "Acknowledged on 21 November 2026");
    assert_eq!(
        shown["embeds"][0]["description"], "Read me",
        "the item stays"
    );
    let buttons = shown["components"][0]["components"].as_array().unwrap();
    assert_eq!(buttons.len(), 1);
    assert_eq!(buttons[0]["custom_id"], "cascade:d-7:sig");
    let followups = fake.requests_to("POST /api/v10/webhooks/1100000000000000001/");
    assert_eq!(followups.len(), 1);
    assert_eq!(
        followups[0].body["content"],
        "Thank you, @everyone. Your acknowledgement is recorded."
    );
    assert_eq!(followups[0].body["flags"], 64, "ephemeral");
    assert_eq!(followups[0].body["allowed_mentions"]["parse"], json!([]));
    for message in fake.state().messages.values() {
        assert_eq!(message["mention_everyone"], false, "{message}");
    }
    assert_eq!(fake.state().refusals, []);
    bot.stop().await;
}

fn confirmation_form() -> Form {
    let field = |id: &str, label: &str, multiline: bool| FormField {
        id: id.to_owned(),
        label: label.to_owned(),
        placeholder: None,
        value: None,
        required: !multiline,
        max_length: Some(200),
        multiline,
        input: None,
    };
    Form {
        title: "Confirm you cascaded this".to_owned(),
        fields: vec![
            field("team", "Team", false),
            field("date", "Meeting date (YYYY-MM-DD)", false),
            field("present", "Number present", false),
            field("method", "Method (team meeting, supervision…)", false),
            field("note", "Note", true),
        ],
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_form_button_opens_a_modal_at_once_and_its_submission_is_emitted() {
    let fake = FakeDiscord::start().await;
    let mut bot = Bot::start(&fake, json!({})).await;
    let mut confirm = action("confirm:d-9:sig", "I've cascaded this");
    confirm.form = Some(confirmation_form());
    let request = dm("d-9", SAM, &["Champion briefing"], vec![confirm]);
    assert!(matches!(
        bot.send(&request).await,
        SendResult::Delivered { .. }
    ));
    let message = last_message_to(&fake, SAM);
    fake.wait_for("an IDENTIFY", |s| (s.identifies == 1).then_some(()))
        .await;

    let press = fake.press_button(SAM, &message, "confirm:d-9:sig");
    let opened = fake
        .wait_for("the modal", |s| {
            s.requests.iter().find(|r| r.path.contains(&press)).cloned()
        })
        .await;
    assert_eq!(opened.status, 204);
    assert_eq!(opened.body["type"], 9, "MODAL");
    assert_eq!(opened.body["data"]["custom_id"], "confirm:d-9:sig");
    assert_eq!(opened.body["data"]["title"], "Confirm you cascaded this");
    let inputs: Vec<_> = opened.body["data"]["components"]
        .as_array()
        .unwrap()
        .iter()
        .map(|row| {
            row["components"][0]["custom_id"]
                .as_str()
                .unwrap()
                .to_owned()
        })
        .collect();
    assert_eq!(inputs, ["team", "date", "present", "method", "note"]);

    let submit = fake.submit_modal(
        SAM,
        &message,
        "confirm:d-9:sig",
        &[
            ("team", "Northbridge MASH"),
            ("date", "2026-11-20"),
            ("present", "12"),
            ("method", "team meeting"),
            ("note", ""),
        ],
    );
    let event = bot.next_event().await;
    let fields: BTreeMap<String, String> = [
        ("team", "Northbridge MASH"),
        ("date", "2026-11-20"),
        ("present", "12"),
        ("method", "team meeting"),
        ("note", ""),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .collect();
    assert_eq!(
        event.kind,
        InboundKind::Form {
            action_id: "confirm:d-9:sig".to_owned(),
            fields
        }
    );
    assert_eq!(
        event.id.as_deref(),
        Some(submit.as_str()),
        "the press itself was not emitted"
    );
    let callback = responses_to(&fake, &submit).await;
    assert_eq!(callback[0].body["type"], 6, "DEFERRED_UPDATE_MESSAGE");
    assert_eq!(callback[0].status, 204);

    let answer = reply(
        &event,
        "Recorded: cascaded to Northbridge MASH on 20 November 2026, 12 present.",
        Reply {
            status: Some("Cascade confirmed".to_owned()),
            ..Reply::default()
        },
        Vec::new(),
    );
    assert!(matches!(
        bot.send(&answer).await,
        SendResult::Delivered { .. }
    ));
    let shown = fake.message(&message);
    assert_eq!(shown["content"], "Cascade confirmed");
    assert_eq!(shown["components"], json!([]));
    bot.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rate_limited_route_is_retried_after_discords_wait_and_other_routes_go_on() {
    let fake = FakeDiscord::start().await;
    // Every wait is reported to the host, none absorbed in the plugin.
    let bot = Bot::start(&fake, json!({"max_rate_limit_wait_ms": 0})).await;
    assert!(matches!(
        bot.send(&dm("d-0", SAM, &["warm-up"], vec![])).await,
        SendResult::Delivered { .. }
    ));
    let sam_channel = fake.dm_channel_of(SAM).unwrap();
    fake.fail_next(
        &format!("channels/{sam_channel}/messages"),
        Fault::RateLimited {
            retry_after: 2.5,
            global: false,
        },
    );

    let result = bot.send(&dm("d-1", SAM, &["one"], vec![])).await;
    assert_eq!(
        result,
        SendResult::Retry {
            reason: "Discord rate limited the message".to_owned(),
            retry_after_ms: Some(2500)
        }
    );
    // Another person's DM is another route: it goes through at once.
    assert!(matches!(
        bot.send(&dm("d-2", ALEX, &["two"], vec![])).await,
        SendResult::Delivered { .. }
    ));
    // The limited route is held without asking Discord again.
    let before = fake
        .requests_to(&format!("channels/{sam_channel}/messages"))
        .len();
    let held = bot.send(&dm("d-1", SAM, &["one"], vec![])).await;
    assert!(
        matches!(held, SendResult::Retry { retry_after_ms: Some(ms), .. } if ms > 0 && ms <= 2500),
        "{held:?}"
    );
    assert_eq!(
        fake.requests_to(&format!("channels/{sam_channel}/messages"))
            .len(),
        before
    );
    bot.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_window_announced_as_exhausted_holds_the_route_before_any_429() {
    let fake = FakeDiscord::start().await;
    let bot = Bot::start(&fake, json!({"max_rate_limit_wait_ms": 0})).await;
    assert!(matches!(
        bot.send(&dm("d-0", SAM, &["warm-up"], vec![])).await,
        SendResult::Delivered { .. }
    ));
    let channel = fake.dm_channel_of(SAM).unwrap();
    fake.exhaust(&format!("channels/{channel}/messages"), 30.0);
    // This post is answered with X-RateLimit-Remaining: 0, Reset-After: 30.
    assert!(matches!(
        bot.send(&dm("d-1", SAM, &["one"], vec![])).await,
        SendResult::Delivered { .. }
    ));
    let posts = fake
        .requests_to(&format!("channels/{channel}/messages"))
        .len();
    let held = bot.send(&dm("d-2", SAM, &["two"], vec![])).await;
    assert!(
        matches!(held, SendResult::Retry { retry_after_ms: Some(ms), .. } if ms > 25_000 && ms <= 30_000),
        "{held:?}"
    );
    assert_eq!(
        fake.requests_to(&format!("channels/{channel}/messages"))
            .len(),
        posts,
        "no 429 was needed"
    );
    assert!(fake.state().requests.iter().all(|r| r.status != 429));
    bot.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_global_rate_limit_holds_every_route() {
    let fake = FakeDiscord::start().await;
    let bot = Bot::start(&fake, json!({"max_rate_limit_wait_ms": 0})).await;
    assert!(matches!(
        bot.send(&dm("d-0", SAM, &["warm-up"], vec![])).await,
        SendResult::Delivered { .. }
    ));
    fake.fail_next(
        "messages",
        Fault::RateLimited {
            retry_after: 4.0,
            global: true,
        },
    );

    let result = bot.send(&dm("d-1", SAM, &["one"], vec![])).await;
    assert_eq!(
        result,
        SendResult::Retry {
            reason: "Discord rate limited the message".to_owned(),
            retry_after_ms: Some(4000)
        }
    );
    let requests = fake.state().requests.len();
    let other = bot.send(&dm("d-2", ALEX, &["two"], vec![])).await;
    assert!(
        matches!(other, SendResult::Retry { retry_after_ms: Some(ms), .. } if ms > 0 && ms <= 4000),
        "{other:?}"
    );
    assert_eq!(
        fake.state().requests.len(),
        requests,
        "nothing reached Discord during the global limit"
    );
    bot.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_short_rate_limit_is_waited_out_inside_the_plugin() {
    let fake = FakeDiscord::start().await;
    let bot = Bot::start(&fake, json!({"max_rate_limit_wait_ms": 5000})).await;
    assert!(matches!(
        bot.send(&dm("d-0", SAM, &["warm-up"], vec![])).await,
        SendResult::Delivered { .. }
    ));
    let channel = fake.dm_channel_of(SAM).unwrap();
    // Part one goes out; part two meets a short 429, waited out in the
    // plugin as serenity's ratelimiter would; part three follows.
    fake.state().requests.clear();
    fake.fail_next(
        &format!("channels/{channel}/messages"),
        Fault::RateLimited {
            retry_after: 0.0,
            global: false,
        },
    );
    let result = bot
        .send(&dm(
            "d-1",
            SAM,
            &["part one", "part two", "part three"],
            vec![],
        ))
        .await;
    assert!(matches!(result, SendResult::Delivered { .. }), "{result:?}");
    let statuses: Vec<u16> = fake
        .requests_to("messages")
        .iter()
        .map(|r| r.status)
        .collect();
    assert_eq!(statuses, [429, 200, 200, 200]);

    bot.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_retry_after_a_rate_limit_mid_item_posts_only_the_missing_parts() {
    let fake = FakeDiscord::start().await;
    let bot = Bot::start(&fake, json!({"max_rate_limit_wait_ms": 0})).await;
    assert!(matches!(
        bot.send(&dm("d-0", SAM, &["warm-up"], vec![])).await,
        SendResult::Delivered { .. }
    ));
    let channel = fake.dm_channel_of(SAM).unwrap();
    fake.fail_after(
        &format!("channels/{channel}/messages"),
        1,
        Fault::RateLimited {
            retry_after: 0.2,
            global: false,
        },
    );
    let item = dm(
        "d-1",
        SAM,
        &["first", "second", "third"],
        vec![action("ack:d-1:s", "Acknowledge")],
    );

    let mut attempts = Vec::new();
    loop {
        let result = bot.send(&item).await;
        attempts.push(result.clone());
        match result {
            // The host waits as told before the next attempt; the plugin's
            // clock is the real one, so this test does too.
            SendResult::Retry {
                retry_after_ms: Some(ms),
                ..
            } if attempts.len() < 5 => {
                tokio::time::sleep(std::time::Duration::from_millis(ms)).await;
            }
            _ => break,
        }
    }
    assert!(
        matches!(
            attempts[0],
            SendResult::Retry {
                retry_after_ms: Some(200),
                ..
            }
        ),
        "{attempts:?}"
    );
    assert!(
        matches!(attempts.last(), Some(SendResult::Delivered { .. })),
        "{attempts:?}"
    );
    let descriptions: Vec<String> = fake
        .requests_to(&format!("channels/{channel}/messages"))
        .iter()
        .filter(|r| r.status == 200)
        .map(|r| {
            r.body["embeds"][0]["description"]
                .as_str()
                .unwrap()
                .to_owned()
        })
        .collect();
    assert_eq!(
        descriptions,
        ["warm-up", "first", "second", "third"],
        "each part once, in order"
    );
    bot.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_errors_are_retried_and_refusals_fail_naming_discords_reason() {
    let fake = FakeDiscord::start().await;
    let bot = Bot::start(&fake, json!({})).await;
    fake.fail_next("POST /api/v10/users/@me/channels", Fault::Status(502));
    let result = bot.send(&dm("d-1", SAM, &["x"], vec![])).await;
    assert_eq!(
        result,
        SendResult::Retry {
            reason: "Discord answered opening a direct message with HTTP 502".to_owned(),
            retry_after_ms: None
        }
    );
    assert!(matches!(
        bot.send(&dm("d-1", SAM, &["x"], vec![])).await,
        SendResult::Delivered { .. }
    ));

    fake.fail_next("messages", Fault::CannotMessage);
    let blocked = bot.send(&dm("d-2", SAM, &["x"], vec![])).await;
    assert_eq!(
        blocked,
        SendResult::Failed {
            reason: "Discord refused the message: Cannot send messages to this user".to_owned(),
            unreachable: true
        }
    );
    fake.fail_next("messages", Fault::Status(404));
    let refused = bot.send(&dm("d-3", SAM, &["x"], vec![])).await;
    assert!(
        matches!(&refused, SendResult::Failed { reason, unreachable: false } if reason.contains("404: fake failure")),
        "{refused:?}"
    );
    bot.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_a_gateway_disconnect_the_session_resumes_and_no_press_is_lost() {
    let fake = FakeDiscord::start().await;
    let mut bot = Bot::start(&fake, json!({})).await;
    assert!(matches!(
        bot.send(&dm(
            "d-1",
            SAM,
            &["Read me"],
            vec![action("ack:d-1:sig", "Acknowledge")]
        ))
        .await,
        SendResult::Delivered { .. }
    ));
    let message = last_message_to(&fake, SAM);
    fake.wait_for("an IDENTIFY", |s| (s.identifies == 1).then_some(()))
        .await;
    // Heartbeats flow at the interval HELLO gave, each acknowledged.
    fake.wait_for("a heartbeat", |s| (s.heartbeats >= 1).then_some(()))
        .await;
    let first = fake.press_button(SAM, &message, "ack:d-1:sig");
    assert_eq!(bot.next_event().await.id.as_deref(), Some(first.as_str()));

    fake.drop_gateway();
    // Pressed while the bot is disconnected: Discord keeps it for the resume.
    let second = fake.press_button(ALEX, &message, "ack:d-1:sig");
    let resumed = fake
        .wait_for("a RESUME", |s| s.resumes.first().cloned())
        .await;
    assert_eq!(resumed["session_id"], "session-1");
    assert_eq!(resumed["seq"], 2, "READY was 1, the first press 2");
    let event = bot.next_event().await;
    assert_eq!(event.id.as_deref(), Some(second.as_str()));
    assert_eq!(event.account, ALEX);
    let callback = responses_to(&fake, &second).await;
    assert_eq!(
        callback[0].status, 204,
        "answered within Discord's 3 s after the resume"
    );
    assert_eq!(fake.state().identifies, 1, "resumed, not identified again");
    bot.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_interaction_the_engine_never_answers_is_told_to_try_again() {
    let fake = FakeDiscord::start().await;
    let mut bot = Bot::start(&fake, json!({"reply_timeout_seconds": 1})).await;
    fake.wait_for("an IDENTIFY", |s| (s.identifies == 1).then_some(()))
        .await;
    let interaction = fake.run_command(SAM, "pending", &[]);
    let event = bot.next_event().await;
    let edit = fake
        .wait_for("the fallback answer", |s| {
            s.requests.iter().find(|r| r.method == "PATCH").cloned()
        })
        .await;
    assert_eq!(edit.status, 200);
    assert!(
        edit.body["content"]
            .as_str()
            .unwrap()
            .starts_with("Sorry, that could not be handled")
    );
    // The host's late reply finds the interaction answered already.
    let late = bot
        .send(&reply(
            &event,
            "You have nothing pending.",
            Reply::default(),
            Vec::new(),
        ))
        .await;
    assert!(matches!(late, SendResult::Failed { .. }), "{late:?}");
    assert!(!interaction.is_empty());
    bot.stop().await;
}

/// The fake must refuse what Discord refuses, or the tests above would
/// pass against a Discord that does not exist.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_fake_refuses_what_discord_refuses() {
    let fake = FakeDiscord::start().await;
    let bot = Bot::start(&fake, json!({})).await;
    assert!(matches!(
        bot.send(&dm(
            "d-1",
            SAM,
            &["x"],
            vec![action("ack:d-1:sig", "Acknowledge")]
        ))
        .await,
        SendResult::Delivered { .. }
    ));
    let channel = fake.dm_channel_of(SAM).unwrap();
    let message = last_message_to(&fake, SAM);
    let client = reqwest::Client::new();
    let api = format!("{}/api/v10", fake.api_url());
    let post = |path: String, body: serde_json::Value| {
        client
            .post(format!("{api}/{path}"))
            .header(
                "authorization",
                format!("Bot {}", support::fake_discord::TOKEN),
            )
            .header("content-type", "application/json")
            .body(body.to_string())
    };
    let button = |id: &str| json!({"type": 2, "style": 1, "label": "x", "custom_id": id});
    let refused = [
        json!({"embeds": [{"description": "x".repeat(4097)}]}),
        json!({"embeds": [{"title": "t".repeat(257), "description": "x"}]}),
        json!({"content": "x".repeat(2001)}),
        json!({"content": "x", "components": vec![json!({"type": 1, "components": [button("a")]}); 6]}),
        json!({"content": "x", "components": [{"type": 1, "components": vec![button("a"); 6]}]}),
        json!({"content": "x", "components": [{"type": 1, "components": [button(&"i".repeat(101))]}]}),
    ];
    for body in refused {
        let response = post(format!("channels/{channel}/messages"), body.clone())
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 400, "{body}");
        let error = body_of(response).await;
        assert_eq!(error["code"], 50035, "{error}");
    }

    let empty = post(
        format!("channels/{channel}/messages"),
        json!({"allowed_mentions": {"parse": []}}),
    )
    .send()
    .await
    .unwrap();
    assert_eq!(empty.status(), 400);
    assert_eq!(body_of(empty).await["code"], 50006);

    // Interactions the bot never saw, answered by hand as a buggy bot would.
    let (id, token) = fake.open_interaction(Some(&message), std::time::Duration::ZERO);
    let callback = |id: &str, token: &str| format!("interactions/{id}/{token}/callback");
    let six_fields = json!({"type": 9, "data": {"custom_id": "c", "title": "t", "components":
        vec![json!({"type": 1, "components": [{"type": 4, "custom_id": "f", "label": "l", "style": 1}]}); 6]}});
    let no_title = json!({"type": 9, "data": {"custom_id": "c", "title": "", "components":
        [{"type": 1, "components": [{"type": 4, "custom_id": "f", "label": "l", "style": 1}]}]}});
    for body in [six_fields, no_title] {
        let response = post(callback(&id, &token), body).send().await.unwrap();
        assert_eq!(response.status(), 400);
    }
    let edit_first = client
        .patch(format!(
            "{api}/webhooks/{}/{token}/messages/@original",
            support::fake_discord::APPLICATION_ID
        ))
        .header("content-type", "application/json")
        .body(json!({"content": "x"}).to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(
        edit_first.status(),
        404,
        "an edit before the interaction was answered"
    );
    let first = post(callback(&id, &token), json!({"type": 6}))
        .send()
        .await
        .unwrap();
    assert_eq!(first.status(), 204);
    let twice = post(callback(&id, &token), json!({"type": 6}))
        .send()
        .await
        .unwrap();
    assert_eq!(twice.status(), 400, "answered twice");
    assert_eq!(body_of(twice).await["code"], 40060);
    let (late, late_token) =
        fake.open_interaction(Some(&message), std::time::Duration::from_secs(4));
    let after_3s = post(callback(&late, &late_token), json!({"type": 6}))
        .send()
        .await
        .unwrap();
    assert_eq!(after_3s.status(), 404, "answered after 3 s");
    assert_eq!(body_of(after_3s).await["code"], 10062);
    let (command, command_token) = fake.open_interaction(None, std::time::Duration::ZERO);
    let update_without_message = post(callback(&command, &command_token), json!({"type": 6}))
        .send()
        .await
        .unwrap();
    assert_eq!(
        update_without_message.status(),
        400,
        "a deferred update needs a message"
    );
    bot.stop().await;
}

async fn body_of(response: reqwest::Response) -> serde_json::Value {
    serde_json::from_str(&response.text().await.unwrap()).unwrap()
}

// ---- Team posts: a post in a team's channel, kept current by edits -------

/// The Emergency Department's channel in the guild.
const TEAM_CHANNEL: &str = "1200000000000000301";

/// Posts a two-part item into the team channel; returns its provider id.
async fn post_to_the_team(bot: &Bot) -> String {
    let request = team_post(
        "post-1",
        TEAM_CHANNEL,
        &["**Neglect** @everyone part one", "part two"],
        vec![action("post:1.sig", "Acknowledge")],
        "0 of 3 acknowledged",
        None,
    );
    match bot.send(&request).await {
        SendResult::Delivered {
            provider_id: Some(id),
        } => id,
        other => panic!("the team post was not delivered: {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_team_post_goes_into_the_team_channel_with_its_count_and_button_and_pings_nobody() {
    let fake = FakeDiscord::start().await;
    fake.add_guild_channel(TEAM_CHANNEL);
    let bot = Bot::start(&fake, json!({})).await;

    let provider_id = post_to_the_team(&bot).await;

    assert!(
        fake.requests_to("users/@me/channels").is_empty(),
        "a team post opens no DM"
    );
    let posts = fake.requests_to(&format!("POST /api/v10/channels/{TEAM_CHANNEL}/messages"));
    assert_eq!(posts.len(), 2);
    for post in &posts {
        assert_eq!(post.status, 200);
        assert_eq!(post.body["allowed_mentions"]["parse"], json!([]));
    }
    assert_eq!(
        posts[0].body["embeds"][0]["title"],
        "7-minute briefing: Neglect and the toxic trio"
    );
    assert!(posts[0].body.get("components").is_none());
    assert_eq!(posts[1].body["content"], "0 of 3 acknowledged");
    let button = &posts[1].body["components"][0]["components"][0];
    assert_eq!(button["custom_id"], "post:1.sig");
    assert_eq!(button["label"], "Acknowledge");

    let shown = fake.messages_in(TEAM_CHANNEL);
    assert_eq!(shown.len(), 2);
    let (last_id, last) = shown.last().unwrap();
    assert_eq!(provider_id, format!("{TEAM_CHANNEL}/{last_id}"));
    assert_eq!(last["content"], "0 of 3 acknowledged");
    assert_eq!(shown[0].1["mention_everyone"], false);
    bot.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_edit_of_a_team_post_patches_its_last_message_in_place() {
    let fake = FakeDiscord::start().await;
    fake.add_guild_channel(TEAM_CHANNEL);
    let bot = Bot::start(&fake, json!({})).await;
    let provider_id = post_to_the_team(&bot).await;
    let message = provider_id.split_once('/').unwrap().1.to_owned();

    let edit = team_post(
        "post-1",
        TEAM_CHANNEL,
        &["**Neglect** @everyone part one", "part two"],
        vec![action("post:1.sig", "Acknowledge")],
        "2 of 3 acknowledged",
        Some(&provider_id),
    );
    assert_eq!(
        bot.send(&edit).await,
        SendResult::Delivered {
            provider_id: Some(provider_id.clone())
        }
    );

    let patches = fake.requests_to("PATCH");
    assert_eq!(patches.len(), 1);
    assert_eq!(
        patches[0].path,
        format!("/api/v10/channels/{TEAM_CHANNEL}/messages/{message}")
    );
    assert_eq!(patches[0].status, 200);
    let body = &patches[0].body;
    assert_eq!(body["content"], "2 of 3 acknowledged");
    assert_eq!(body["embeds"][0]["description"], "part two");
    assert_eq!(
        body["components"][0]["components"][0]["custom_id"],
        "post:1.sig"
    );
    assert_eq!(body["allowed_mentions"]["parse"], json!([]));
    assert_eq!(
        fake.requests_to("POST /api/v10/channels").len(),
        2,
        "nothing was posted again"
    );
    let shown = fake.message(&message);
    assert_eq!(shown["content"], "2 of 3 acknowledged");
    assert_eq!(shown["embeds"][0]["description"], "part two");

    // A post Discord no longer has (deleted by a moderator) cannot be edited.
    let gone = team_post(
        "post-1",
        TEAM_CHANNEL,
        &["part two"],
        vec![],
        "3 of 3 acknowledged",
        Some(&format!("{TEAM_CHANNEL}/1300000000000009999")),
    );
    let result = bot.send(&gone).await;
    assert!(
        matches!(&result, SendResult::Failed { reason, unreachable: false } if reason.contains("Unknown Message")),
        "{result:?}"
    );
    bot.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rate_limited_edit_is_reported_as_a_retry_per_route_and_globally() {
    let fake = FakeDiscord::start().await;
    fake.add_guild_channel(TEAM_CHANNEL);
    let bot = Bot::start(&fake, json!({"max_rate_limit_wait_ms": 0})).await;
    let provider_id = post_to_the_team(&bot).await;
    let edit = |status: &str, id: &str| {
        team_post(
            "post-1",
            TEAM_CHANNEL,
            &["part two"],
            vec![action("post:1.sig", "Acknowledge")],
            status,
            Some(id),
        )
    };

    // Per route: Discord's wait comes back to the host as the retry-after.
    fake.fail_next(
        "PATCH /api/v10/channels/",
        Fault::RateLimited {
            retry_after: 2.5,
            global: false,
        },
    );
    assert_eq!(
        bot.send(&edit("1 of 3 acknowledged", &provider_id)).await,
        SendResult::Retry {
            reason: "Discord rate limited the edit of the post".to_owned(),
            retry_after_ms: Some(2500)
        }
    );
    // The route is then held without asking Discord again.
    let patches = fake.requests_to("PATCH").len();
    let held = bot.send(&edit("1 of 3 acknowledged", &provider_id)).await;
    assert!(
        matches!(held, SendResult::Retry { retry_after_ms: Some(ms), .. } if ms > 0 && ms <= 2500),
        "{held:?}"
    );
    assert_eq!(fake.requests_to("PATCH").len(), patches);

    // Globally: an edit of another post meets a global limit, and then
    // nothing else (a DM) reaches Discord either.
    let other = post_to_the_team(&bot).await;
    fake.fail_next(
        "PATCH /api/v10/channels/",
        Fault::RateLimited {
            retry_after: 4.0,
            global: true,
        },
    );
    assert_eq!(
        bot.send(&edit("1 of 3 acknowledged", &other)).await,
        SendResult::Retry {
            reason: "Discord rate limited the edit of the post".to_owned(),
            retry_after_ms: Some(4000)
        }
    );
    let requests = fake.state().requests.len();
    let dm_held = bot.send(&dm("d-9", SAM, &["one"], vec![])).await;
    assert!(
        matches!(dm_held, SendResult::Retry { retry_after_ms: Some(ms), .. } if ms > 0 && ms <= 4000),
        "{dm_held:?}"
    );
    assert_eq!(fake.state().requests.len(), requests);
    assert!(
        fake.messages_in(TEAM_CHANNEL)
            .iter()
            .all(|(_, m)| m["content"] != "1 of 3 acknowledged"),
        "no rate-limited edit landed"
    );
    bot.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_short_rate_limit_on_an_edit_is_waited_out_and_the_edit_lands() {
    let fake = FakeDiscord::start().await;
    fake.add_guild_channel(TEAM_CHANNEL);
    let bot = Bot::start(&fake, json!({"max_rate_limit_wait_ms": 5000})).await;
    let provider_id = post_to_the_team(&bot).await;
    fake.fail_next(
        "PATCH /api/v10/channels/",
        Fault::RateLimited {
            retry_after: 0.2,
            global: false,
        },
    );
    let request = team_post(
        "post-1",
        TEAM_CHANNEL,
        &["part two"],
        vec![action("post:1.sig", "Acknowledge")],
        "1 of 3 acknowledged",
        Some(&provider_id),
    );
    assert!(matches!(
        bot.send(&request).await,
        SendResult::Delivered { .. }
    ));
    let statuses: Vec<u16> = fake.requests_to("PATCH").iter().map(|r| r.status).collect();
    assert_eq!(statuses, [429, 200]);
    let message = provider_id.split_once('/').unwrap().1;
    assert_eq!(fake.message(message)["content"], "1 of 3 acknowledged");
    bot.stop().await;
}

/// Found against an independent Discord: a gateway that refuses the bot
/// (close code 4014, disallowed intents) was logged once while `/health`
/// said ok. The channel now shows down, with the reason and what to do,
/// in the host's channel states (what `/health`, `status` and the metrics
/// read); sends still go by REST.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_gateway_that_refuses_the_bot_shows_the_channel_down_with_the_reason() {
    let fake = FakeDiscord::start().await;
    fake.state().refuse_identify_with = Some(4014);
    let bot = Bot::start(&fake, json!({})).await;
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    let reason = loop {
        if let Some(cascade_plugin_host::ChannelState::Down { reason }) =
            bot.host.channel_states().get("discord")
        {
            break reason.clone();
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the channel never showed down: {:?}",
            bot.host.channel_states()
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    };
    assert!(reason.contains("4014"), "{reason}");
    assert!(reason.contains("developer portal"), "{reason}");
    assert!(matches!(
        bot.send(&dm("d-1", SAM, &["Read me"], vec![])).await,
        SendResult::Delivered { .. }
    ));
    bot.stop().await;
}

/// `cascade doctor` and `serve` start each channel; a Discord that has no
/// gateway sessions left for the bot today (or no gateway address) fails
/// the start with the reason, instead of a start that looks fine and a
/// gateway that never connects.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_start_fails_with_the_reason_when_discord_has_no_gateway_for_the_bot() {
    let fake = FakeDiscord::start().await;
    fake.state().session_starts_remaining = Some(0);
    let Err(error) = Bot::try_start(&fake, json!({})).await else {
        panic!("the channel started")
    };
    assert!(error.contains("no more gateway sessions"), "{error}");
    assert!(error.contains("240 minutes"), "{error}");
    assert_eq!(fake.state().identifies, 0, "no IDENTIFY was tried");

    let fake = FakeDiscord::start().await;
    fake.fail_next("GET /api/v10/gateway/bot", Fault::Status(404));
    let Err(error) = Bot::try_start(&fake, json!({})).await else {
        panic!("the channel started")
    };
    assert!(
        error.contains("did not say where its gateway is"),
        "{error}"
    );

    let fake = FakeDiscord::start().await;
    Bot::try_start(&fake, json!({})).await.unwrap().stop().await;
}

// ---- Restarts: what the plugin keeps lives in the host's store ------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_a_restart_a_send_whose_second_part_failed_posts_only_the_missing_parts() {
    let fake = FakeDiscord::start().await;
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("cascade.db");
    let extra = json!({"max_rate_limit_wait_ms": 0});
    let bot = Bot::start_durable(&fake, extra.clone(), &store).await;
    assert!(matches!(
        bot.send(&dm("d-0", SAM, &["warm-up"], vec![])).await,
        SendResult::Delivered { .. }
    ));
    let channel = fake.dm_channel_of(SAM).unwrap();
    fake.fail_after(
        &format!("channels/{channel}/messages"),
        1,
        Fault::RateLimited {
            retry_after: 0.2,
            global: false,
        },
    );
    let item = dm(
        "d-1",
        SAM,
        &["first", "second", "third"],
        vec![action("ack:d-1:s", "Acknowledge")],
    );
    let first = bot.send(&item).await;
    assert!(matches!(first, SendResult::Retry { .. }), "{first:?}");
    bot.stop().await;

    // cascade restarts: a new plugin instance over the same store.
    let bot = Bot::start_durable(&fake, extra, &store).await;
    let second = bot.send(&item).await;
    assert!(matches!(second, SendResult::Delivered { .. }), "{second:?}");
    let posted: Vec<String> = fake
        .requests_to(&format!("channels/{channel}/messages"))
        .iter()
        .filter(|r| r.status == 200)
        .map(|r| {
            r.body["embeds"][0]["description"]
                .as_str()
                .unwrap()
                .to_owned()
        })
        .collect();
    assert_eq!(posted, ["warm-up", "first", "second", "third"]);
    bot.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_form_button_sent_before_a_restart_still_opens_its_form() {
    let fake = FakeDiscord::start().await;
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("cascade.db");
    let bot = Bot::start_durable(&fake, json!({}), &store).await;
    let mut confirm = action("confirm:d-9:sig", "I've cascaded this");
    confirm.form = Some(confirmation_form());
    let request = dm("d-9", SAM, &["Champion briefing"], vec![confirm]);
    assert!(matches!(
        bot.send(&request).await,
        SendResult::Delivered { .. }
    ));
    let message = last_message_to(&fake, SAM);
    bot.stop().await;

    let mut bot = Bot::start_durable(&fake, json!({}), &store).await;
    fake.wait_for("a second IDENTIFY", |s| (s.identifies == 2).then_some(()))
        .await;
    let press = fake.press_button(SAM, &message, "confirm:d-9:sig");
    let opened = fake
        .wait_for("the answer to the press", |s| {
            s.requests.iter().find(|r| r.path.contains(&press)).cloned()
        })
        .await;
    assert_eq!(opened.body["type"], 9, "a MODAL, not a deferred press");
    assert_eq!(opened.body["data"]["title"], "Confirm you cascaded this");

    // The submission is stored with the host before Discord is answered.
    fake.submit_modal(
        SAM,
        &message,
        "confirm:d-9:sig",
        &[("team", "Emergency Department"), ("present", "9")],
    );
    let event = bot.next_event().await;
    assert!(matches!(event.kind, InboundKind::Form { .. }), "{event:?}");
    assert_eq!(event.event_id, event.id);
    bot.stop().await;
}
