//! Several `cascade serve` on one PostgreSQL store (issue 18): every serve
//! runs the Telegram channel, to send, but only the one holding the
//! channel's poll lease long-polls (Telegram answers a second concurrent
//! getUpdates with 409, and so does the fake here). When that serve dies
//! without letting go, another takes the poll over within the lease, and
//! every update (typed command and button press) is handled exactly once,
//! including those the dead one had stored but not handled. A serve that
//! stops cleanly lets go of the lease at once.
//!
//! Two engines and runners in this process play the two serves, each with
//! its own connections to one database on the test PostgreSQL server, both
//! with the real plugin library against the fake Bot API. "Killed" is the
//! serve's task aborted: it renews nothing and lets nothing go, while its
//! plugin instance lives on and must keep to the turn it was given.

mod fake_bot_api;

use cascade_engine::delivery::DispatchSettings;
use cascade_engine::engine::{Engine, Runner, Until};
use cascade_engine::inbound::{InboundOutcome, issue_code};
use cascade_engine::project::Project;
use cascade_store::pg::test_server::TestPostgres;
use cascade_store::pg::{PgSettings, PgStore};
use cascade_store::{Inbox, Leases, SqliteStore, poll_lease};
use cascade_test_support::outbox::acknowledgements;
use cascade_test_support::{DemoProject, utc};
use chrono::{DateTime, Datelike, Utc};
use fake_bot_api::{FakeBotApi, Posted, TOKEN};
use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

const TOM: i64 = 7002; // a practitioner
/// The poll lease of both serves: renewed every 2 s. Long enough that a
/// plugin polls throughout its turn (a poll needs 2 s of it), short
/// enough for a quick test.
const LEASE: Duration = Duration::from_secs(6);

const CHANNELS: &str = r#"
[[channels]]
name = "outbox"
plugin = "file"
identity = "email"
formats = ["email-text"]
config = { dir = "OUTBOX" }

[[channels]]
name = "telegram"
plugin = "telegram"
identity = "telegram"
formats = ["telegram"]
secrets = { token = { file = "telegram-token" } }
config = { api_url = "FAKE_URL", messages_per_second = 1000, chat_messages_per_second = 1000 }
"#;

/// A weekday a year or so ahead, at noon UTC (in working hours in London
/// whatever the season): the serves run by the real clock, so nothing of
/// a rollout started then falls due while they run.
fn start_day() -> DateTime<Utc> {
    let mut day = Utc::now() + chrono::Duration::days(400);
    while matches!(day.weekday(), chrono::Weekday::Sat | chrono::Weekday::Sun) {
        day += chrono::Duration::days(1);
    }
    utc(day.year(), day.month(), day.day(), 12, 0)
}

/// The demo project with the Telegram channel long-polling the fake and a
/// rollout to everyone starting on `start`, imported into SQLite.
async fn project(fake: &FakeBotApi, start: DateTime<Utc>) -> tempfile::TempDir {
    let project = DemoProject::new().without_check_questions();
    let channels = CHANNELS.replace("FAKE_URL", &fake.url).replace(
        "OUTBOX",
        &project.path().join("outbox").display().to_string(),
    );
    project
        .channels(&channels)
        .write("telegram-token", format!("{TOKEN}\n"))
        .write(
            "rollouts/now.toml",
            format!(
                "id = \"now\"\nitem = \"7mb-neglect-seeing-the-child\"\nstart = {}\nchannels = [\"telegram\", \"outbox\"]\nack_deadline_days = 10\n[audience]\n[[waves]]\nname = \"Everyone\"\nafter_days = 0\n",
                start.format("%Y-%m-%dT%H:%M:%S")
            ),
        )
        .imported()
        .await
        .into_dir()
}

/// Handles inbound events until one comes, for up to 20 s.
async fn next_outcome(runner: &Runner<SqliteStore>, now: DateTime<Utc>) -> InboundOutcome {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if let Some(outcome) = runner.handle_inbound(now).await.unwrap().pop() {
            return outcome;
        }
        assert!(Instant::now() < deadline, "no inbound event within 20 s");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// On SQLite, with one process: Tom links his chat and gets the briefing,
/// whose last part carries the Acknowledge button.
async fn tom_linked_with_the_briefing(
    fake: &FakeBotApi,
    dir: &std::path::Path,
    start: DateTime<Utc>,
) -> Posted {
    let engine = Engine::open(Project::open(dir).unwrap(), true)
        .await
        .unwrap_or_else(|p| panic!("{}", p.0.join("\n")));
    let planned = engine
        .plan(
            &dir.join("rollouts/now.toml"),
            start - chrono::Duration::hours(1),
        )
        .await
        .unwrap_or_else(|p| panic!("{}", p.0.join("\n")));
    engine.start(&planned, start).await.unwrap();
    let runner = engine.runner(DispatchSettings::default()).await.unwrap();
    let code = issue_code(
        runner.store().as_ref(),
        runner.link_codes(),
        "p-tom-reilly",
        start.timestamp_millis(),
    )
    .await
    .unwrap();
    fake.user_sends(TOM, &format!("/start {code}"));
    assert_eq!(
        next_outcome(&runner, start).await,
        InboundOutcome::Linked {
            person_id: "p-tom-reilly".to_owned()
        }
    );
    runner.tick(start).await.unwrap();
    fake.wait_until("the briefing with its button", |f| {
        f.messages_in(TOM).iter().any(|m| !m.buttons().is_empty())
    })
    .await;
    let briefing = fake
        .messages_in(TOM)
        .into_iter()
        .find(|m| !m.buttons().is_empty())
        .unwrap();
    fake.wait_until(
        "the link's update confirmed",
        FakeBotApi::all_updates_confirmed,
    )
    .await;
    runner.stop().await;
    briefing
}

/// A serve's engine and runner over its own connections to `url`.
async fn serve_on(dir: &std::path::Path, url: &str) -> Runner<PgStore> {
    let store = Arc::new(PgStore::connect(&PgSettings::new(url)).await.unwrap());
    let engine = Engine::serving_with_store(Project::open(dir).unwrap(), store)
        .await
        .unwrap_or_else(|p| panic!("{}", p.0.join("\n")));
    engine
        .runner(DispatchSettings {
            poll_lease: LEASE,
            ..DispatchSettings::default()
        })
        .await
        .unwrap()
}

/// Who holds the Telegram channel's poll lease now.
async fn poller(store: &PgStore) -> Option<String> {
    let now = Utc::now().timestamp_millis();
    store
        .live_leases("poll:", now)
        .await
        .unwrap()
        .into_iter()
        .find(|(name, _)| *name == poll_lease("telegram"))
        .map(|(_, owner)| owner)
}

/// Waits up to `within` until `check` holds, looking every 20 ms.
async fn wait_for<F: Future<Output = bool>>(what: &str, within: Duration, check: impl Fn() -> F) {
    let deadline = Instant::now() + within;
    while !check().await {
        assert!(Instant::now() < deadline, "not within {within:?}: {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The texts in Tom's chat after the first `after` messages.
fn tom_s_messages_after(fake: &FakeBotApi, after: usize) -> Vec<String> {
    fake.messages_in(TOM)
        .into_iter()
        .skip(after)
        .map(|m| m.text)
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_poll_moves_to_another_serve_within_the_lease_and_no_update_is_lost_or_handled_twice() {
    let fake = FakeBotApi::start().await;
    let start = start_day();
    let dir = project(&fake, start).await;
    let briefing = tom_linked_with_the_briefing(&fake, dir.path(), start).await;

    // The partnership moves to PostgreSQL, where two serves share it.
    let server = TestPostgres::shared().unwrap_or_else(|e| panic!("{e}"));
    let url = server.new_database().await.unwrap();
    let pg = PgStore::connect(&PgSettings::new(url.clone()))
        .await
        .unwrap();
    let sqlite_path = Project::open(dir.path()).unwrap().store_path();
    let sqlite = SqliteStore::open(&sqlite_path.to_string_lossy())
        .await
        .unwrap();
    cascade_store::copy::sqlite_to_postgres(&sqlite, &pg, |_, _| {})
        .await
        .unwrap();
    sqlite.close().await;
    let conflicts_before = fake.poll_conflicts();
    let polls_before = fake.polls().len();

    let first = serve_on(dir.path(), &url).await;
    let (first_owner, first_host) = (first.owner().to_owned(), first.host().clone());
    let (_stop_first, stopped) = tokio::sync::watch::channel(false);
    let first_serving = tokio::spawn(first.serve(stopped, Until::Stopped));
    wait_for("the first serve holds the poll", LEASE, || async {
        poller(&pg).await.as_deref() == Some(first_owner.as_str())
    })
    .await;
    let second = serve_on(dir.path(), &url).await;
    let second_owner = second.owner().to_owned();
    let (stop_second, stopped) = tokio::sync::watch::channel(false);
    let second_serving = tokio::spawn(second.serve(stopped, Until::Stopped));

    // The first polls and answers; the second, running, never polls.
    let seen = fake.messages_in(TOM).len();
    fake.user_sends(TOM, "/pending");
    fake.wait_for_messages(TOM, seen + 1).await;
    tokio::time::sleep(LEASE).await;
    assert_eq!(poller(&pg).await, Some(first_owner.clone()));
    assert_eq!(fake.poll_conflicts(), conflicts_before);
    assert_eq!(fake.most_polls_open(), 1);
    assert!(fake.polls().len() > polls_before, "nobody polled");

    // The first is killed. Its plugin, still running, stores what its
    // last turn brings, which nobody there handles any more.
    first_serving.abort();
    let killed = Instant::now();
    let query = fake.user_presses(TOM, briefing.chat, briefing.message_id, "Acknowledge");
    fake.user_sends(TOM, "/help");
    wait_for(
        "the dead serve's plugin stores the updates in its turn",
        LEASE,
        || async { pg.inbox_pending().await.unwrap().len() == 2 },
    )
    .await;
    assert!(
        poller(&pg).await.as_deref() != Some(second_owner.as_str()),
        "the second took the poll while the first's turn ran"
    );

    // The second takes the poll within the lease, and handles both.
    wait_for(
        "the second serve takes the poll",
        LEASE + Duration::from_secs(2),
        || async { poller(&pg).await.as_deref() == Some(second_owner.as_str()) },
    )
    .await;
    let took = killed.elapsed();
    assert!(
        took <= LEASE + Duration::from_secs(1),
        "took over {took:?} after the kill"
    );
    fake.wait_until("the press answered", |f| {
        f.requests_to("answerCallbackQuery")
            .iter()
            .any(|r| r.body["callback_query_id"] == query && r.status == 200)
    })
    .await;
    // The first /pending's answer, then the press's and /help's.
    fake.wait_for_messages(TOM, seen + 3).await;

    // It polls for itself too.
    fake.user_sends(TOM, "/pending");
    fake.wait_for_messages(TOM, seen + 4).await;
    fake.wait_until("every update confirmed", FakeBotApi::all_updates_confirmed)
        .await;
    // Anything handled twice would show by now.
    tokio::time::sleep(Duration::from_secs(1)).await;

    assert_eq!(acknowledgements(&pg).await, 1);
    assert!(pg.inbox_pending().await.unwrap().is_empty());
    // The link, the three commands and the press: each stored and handled.
    for update_id in 500_000..500_005 {
        assert!(
            pg.inbox_is_handled("telegram", &update_id.to_string())
                .await
                .unwrap(),
            "update {update_id}"
        );
    }
    // One answer to each command, one to the press.
    let answers = tom_s_messages_after(&fake, seen);
    assert_eq!(answers.len(), 4, "{answers:#?}");
    let said = |what: &str| answers.iter().filter(|a| a.contains(what)).count();
    assert_eq!(said("1 item waiting for you"), 1, "{answers:#?}");
    assert_eq!(said("/help: this message"), 1, "{answers:#?}");
    assert_eq!(said("is acknowledged"), 1, "{answers:#?}");
    assert_eq!(said("Nothing is waiting for you"), 1, "{answers:#?}");
    let answered: Vec<_> = fake
        .requests_to("answerCallbackQuery")
        .into_iter()
        .filter(|r| r.body["callback_query_id"] == query && r.status == 200)
        .collect();
    assert_eq!(answered.len(), 1, "{answered:#?}");
    let edits = fake
        .requests_to("editMessageText")
        .into_iter()
        .filter(|r| r.body["message_id"] == briefing.message_id && r.status == 200)
        .count();
    assert_eq!(edits, 1, "the briefing shows the acknowledgement once");
    // Never two polls at once.
    assert_eq!(fake.poll_conflicts(), conflicts_before);
    assert_eq!(fake.most_polls_open(), 1);

    // A clean stop lets go of the lease at once.
    stop_second.send(true).unwrap();
    second_serving.await.unwrap().unwrap();
    assert_eq!(poller(&pg).await, None);
    first_host.stop().await;
}

/// A serve killed between storing an inbound event and handling it, and
/// not started again, leaves the event in the inbox: the serves that
/// store what they receive (webhooks, Discord's gateway) hand their own on
/// at once, so nobody else would handle it. A serve still running handles
/// it once it is a liveness lease old, one serve at a time (the lease
/// `inbox:stale`), each such event once; a younger one is left to the
/// serve that stored it. Times are given, so the test does not wait.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_event_a_dead_serve_stored_is_handled_once_by_a_serve_still_running() {
    use cascade_plugin_api::{InboundEvent, InboundKind};
    let fake = FakeBotApi::start().await;
    let dir = project(&fake, start_day()).await;
    let server = TestPostgres::shared().unwrap_or_else(|e| panic!("{e}"));
    let url = server.new_database().await.unwrap();
    let pg = PgStore::connect(&PgSettings::new(url.clone()))
        .await
        .unwrap();
    let lease = Duration::from_secs(30);
    let first = serve_on(dir.path(), &url)
        .await
        .shared_with_other_serves(lease);
    let second = serve_on(dir.path(), &url)
        .await
        .shared_with_other_serves(lease);
    let t0 = Utc::now();
    let at = |seconds: i64| t0 + chrono::Duration::seconds(seconds);
    for serve in [&first, &second] {
        assert_eq!(serve.handle_inbound(t0).await.unwrap(), []);
    }
    // A third serve stored a command that came through a channel that
    // does not long-poll, and died.
    let stored_by_the_dead = |event_id: &str, seconds: i64| {
        let event = InboundEvent {
            channel: "outbox".to_owned(),
            account: "someone@example.org".to_owned(),
            id: None,
            address: None,
            event_id: Some(event_id.to_owned()),
            kind: InboundKind::Command {
                name: "help".to_owned(),
                args: Vec::new(),
            },
        };
        let json = serde_json::to_string(&event).unwrap();
        let pg = &pg;
        let event_id = event_id.to_owned();
        async move {
            assert!(
                pg.inbox_insert("outbox", &event_id, &json, at(seconds).timestamp_millis())
                    .await
                    .unwrap()
            );
        }
    };
    stored_by_the_dead("dead-1", 0).await;

    // Younger than a lease: left to the serve that stored it.
    for serve in [&first, &second] {
        assert_eq!(serve.handle_inbound(at(11)).await.unwrap(), []);
    }
    assert_eq!(pg.inbox_pending().await.unwrap().len(), 1);

    // A lease old: handled by the serve that looks (the first took the
    // look-up lease at 11 s), once.
    assert_eq!(first.handle_inbound(at(31)).await.unwrap().len(), 1);
    assert_eq!(second.handle_inbound(at(31)).await.unwrap(), []);
    assert_eq!(pg.inbox_pending().await.unwrap(), []);

    // Another such event, a lease old at 50 s. The first stops looking
    // (it died too, say): the second does not look while the first's
    // look-up lease lasts (to 61 s), then looks and handles it.
    stored_by_the_dead("dead-2", 20).await;
    assert_eq!(second.handle_inbound(at(55)).await.unwrap(), []);
    assert_eq!(second.handle_inbound(at(66)).await.unwrap().len(), 1);
    assert_eq!(first.handle_inbound(at(66)).await.unwrap(), []);
    assert_eq!(pg.inbox_pending().await.unwrap(), []);
}
