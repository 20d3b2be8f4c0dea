//! Whole flows through the engine and the real Notify plugin against the
//! fake Notify, with cascade's webhook route served on a socket as `cascade
//! serve` serves it: a rollout reaches people by Notify email and, where
//! people.csv gives a mobile, by text message; a person acknowledges
//! through the signed link the message carried; a permanent-failure
//! receipt marks the address unreachable and the step goes again on the
//! person's next channel; a receipt without the bearer token records
//! nothing.

mod support;

use cascade_engine::delivery::DispatchSettings;
use cascade_engine::engine::{Engine, Runner};
use cascade_engine::inbound::InboundOutcome;
use cascade_engine::project::Project;
use cascade_plugin_api::ReceiptStatus;
use cascade_store::{DeliveryState, SqliteStore};
use cascade_test_support::outbox::{acknowledgements, rows};
use cascade_test_support::{DemoProject, utc};
use chrono::{DateTime, Utc};
use std::time::{Duration, Instant};
use support::fake_notify::{
    CALLBACK_TOKEN, EMAIL_TEMPLATE, FakeNotify, SMS_TEMPLATE, Stored, api_key,
};

const PEOPLE: &str = "\
person_id,display_name,email,agency_id,team_id,roles,manager_id,time_zone,mobile
p-zoe,Zoë Brontë,zoe@agency.example,ag,team,practitioner,,,07700 900001
p-sam,Sam Cole,sam@agency.example,ag,team,practitioner,,,+44 7700 900002
p-ann,Ann Lee,ann@agency.example,ag,team,practitioner,,,
";

struct Flow {
    fake: FakeNotify,
    runner: Runner<SqliteStore>,
    webhook: String,
    dir: tempfile::TempDir,
    /// What `plan` said of text messages.
    sms_lines: Vec<String>,
}

impl Flow {
    /// The small directory above, Notify email and SMS channels pointed at
    /// the fake, an email outbox, a rollout over `channels` started, and
    /// cascade's webhook routes served.
    async fn start(channels: &str) -> Flow {
        Flow::start_with(channels, |text| text).await
    }

    /// As [`start`](Self::start), with the briefing's file changed by `edit`.
    async fn start_with(channels: &str, edit: fn(String) -> String) -> Flow {
        let fake = FakeNotify::start().await;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let webhook = format!("http://{}/webhooks", listener.local_addr().unwrap());
        let project = DemoProject::new()
            .without_check_questions()
            .edit("content/7mb-neglect-seeing-the-child.md", edit)
            .only_people(&[])
            .write("directory/people.csv", PEOPLE);
        let config = format!(
            r#"
[[channels]]
name = "notify-email"
plugin = "notify"
identity = "email"
config = {{ kind = "email", template_id = "{EMAIL_TEMPLATE}", base_url = "{url}", journal = "{journal}" }}
secrets = {{ api_key = {{ file = "notify-api-key" }}, callback_token = {{ file = "notify-callback-token" }} }}

[[channels]]
name = "notify-sms"
plugin = "notify"
identity = "mobile"
config = {{ kind = "sms", template_id = "{SMS_TEMPLATE}", base_url = "{url}" }}
secrets = {{ api_key = {{ file = "notify-api-key" }}, callback_token = {{ file = "notify-callback-token" }} }}

[[channels]]
name = "outbox"
plugin = "file"
identity = "email"
formats = ["email-text"]
config = {{ dir = "{outbox}" }}
"#,
            url = fake.url,
            outbox = project.path().join("outbox").display(),
            journal = project.path().join("notify-email.journal").display(),
        );
        let dir = project
            .channels(&config)
            .write("notify-api-key", format!("{}\n", api_key()))
            .write("notify-callback-token", CALLBACK_TOKEN)
            .imported()
            .await
            .into_dir();
        let path = dir.path().join("rollouts").join("now.toml");
        std::fs::write(
            &path,
            format!(
                r#"
id = "now"
item = "7mb-neglect-seeing-the-child"
start = 2026-03-27T09:00:00
channels = {channels}
fallback = true
ack_deadline_days = 10
[audience]
[[waves]]
name = "Everyone"
after_days = 0
"#
            ),
        )
        .unwrap();
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
                ..DispatchSettings::default()
            })
            .await
            .unwrap();
        let app = cascade_server::webhook_router(runner.host().clone());
        tokio::spawn(async move {
            let limits = cascade_server::ServerConfig::default();
            cascade_server::serve(listener, app, &limits, std::future::pending()).await
        });
        Flow {
            fake,
            runner,
            webhook,
            dir,
            sms_lines: planned.sms_lines,
        }
    }

    async fn dispatch(&self, now: DateTime<Utc>) {
        self.runner.schedule(now).await.unwrap();
        self.runner.dispatch(now).await.unwrap();
    }

    fn sent_to(&self, to: &str) -> Stored {
        self.fake
            .notifications()
            .into_iter()
            .find(|n| n.to == to)
            .unwrap_or_else(|| panic!("nothing sent to {to}: {:?}", self.fake.notifications()))
    }

    /// The runner's next handled event at `now`.
    async fn handle_next(&self, now: DateTime<Utc>) -> InboundOutcome {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let mut outcomes = self.runner.handle_inbound(now).await.unwrap();
            if let Some(outcome) = outcomes.pop() {
                return outcome;
            }
            assert!(Instant::now() < deadline, "no event");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

/// POSTs the acknowledgement page of `link` as the person's browser does.
async fn acknowledge(flow: &Flow, link: &str) -> u16 {
    use tower::ServiceExt;
    let project = Project::open(flow.dir.path()).unwrap();
    let keys =
        cascade_engine::ack::AckKeys::load(project.config.ack.as_ref().unwrap(), flow.dir.path())
            .unwrap();
    let clock: cascade_server::Clock = std::sync::Arc::new(|| utc(2026, 3, 27, 10, 0));
    let app = cascade_server::ack_router(cascade_server::ServerState::new(
        flow.runner.store().clone(),
        std::sync::Arc::new(keys),
        project.taxonomy.clone(),
        chrono_tz::Europe::London,
        clock,
    ));
    let path = link.strip_prefix("http://localhost:8080").unwrap();
    let request = axum::http::Request::builder()
        .method("POST")
        .uri(path)
        .extension(axum::extract::ConnectInfo(std::net::SocketAddr::from((
            [192, 0, 2, 1],
            50_000,
        ))))
        .body(axum::body::Body::empty())
        .unwrap();
    app.oneshot(request).await.unwrap().status().as_u16()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rollout_by_notify_email_is_acknowledged_through_its_link() {
    let flow = Flow::start(r#"["notify-email"]"#).await;
    flow.dispatch(utc(2026, 3, 27, 9, 0)).await;
    let sent = flow.fake.notifications();
    assert_eq!(sent.len(), 3, "{sent:?}");
    let zoe = flow.sent_to("zoe@agency.example");
    assert_eq!(zoe.template_id, EMAIL_TEMPLATE);
    let body = zoe.personalisation["body"].as_str().unwrap();
    assert!(body.starts_with("# "), "a Notify heading: {body}");
    assert!(body.contains("Zoë"), "{body}");
    assert!(!body.contains("<p>") && !body.contains("<a "), "{body}");
    let link = zoe.personalisation["ack_link"].as_str().unwrap().to_owned();
    assert!(link.starts_with("http://localhost:8080/ack/"), "{link}");
    assert!(body.contains(&link), "the body carries the link too");
    let rows = rows(flow.runner.store().as_ref()).await;
    assert!(
        rows.iter().all(|r| r.state == DeliveryState::Sent),
        "{rows:?}"
    );
    // Notify's reference is the delivery's idempotency key.
    let row = rows.iter().find(|r| r.recipient_id == "p-zoe").unwrap();
    assert_eq!(zoe.reference.as_deref(), Some(row.idempotency_key.as_str()));

    assert_eq!(acknowledgements(flow.runner.store().as_ref()).await, 0);
    assert_eq!(acknowledge(&flow, &link).await, 200);
    assert_eq!(acknowledgements(flow.runner.store().as_ref()).await, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn people_with_a_mobile_get_a_text_and_the_others_an_email() {
    let flow = Flow::start(r#"["notify-sms", "notify-email"]"#).await;
    flow.dispatch(utc(2026, 3, 27, 9, 0)).await;
    let zoe = flow.sent_to("+447700900001");
    let sam = flow.sent_to("+447700900002");
    let ann = flow.sent_to("ann@agency.example");
    assert_eq!(
        (zoe.kind.as_str(), sam.kind.as_str(), ann.kind.as_str()),
        ("sms", "sms", "email")
    );
    assert_eq!(flow.fake.notifications().len(), 3);
    let text = zoe.personalisation["body"].as_str().unwrap();
    assert!(!text.contains("Zoë"), "no name in a text: {text}");
    let link = text
        .split_whitespace()
        .find(|w| w.starts_with("http://localhost:8080/ack/"))
        .unwrap_or_else(|| panic!("no link in {text}"));
    let (_, _, fragments) = cascade_plugin_notify::fragments(text);
    assert!(fragments <= 2, "{fragments} fragments: {text}");
    assert_eq!(acknowledge(&flow, link).await, 200);
    assert_eq!(acknowledgements(flow.runner.store().as_ref()).await, 1);
}

/// A text message never carries an item: an OFFICIAL-SENSITIVE briefing
/// goes by text as the marked title and the signed link, and by Notify
/// email (which carries OFFICIAL by default) as the marked notice. `plan`
/// said how many fragments each person's text takes, as Notify counts them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_official_sensitive_briefing_goes_by_text_and_notify_email_as_a_marked_notice() {
    let flow = Flow::start_with(r#"["notify-sms", "notify-email"]"#, |text| {
        text.replacen(
            "status = \"published\"",
            "status = \"published\"\nclassification = \"official-sensitive\"\nsummary = \"What a local review taught us about seeing the child.\"",
            1,
        )
    })
    .await;
    flow.dispatch(utc(2026, 3, 27, 9, 0)).await;
    let mut fragments = Vec::new();
    for to in ["+447700900001", "+447700900002"] {
        let text = flow.sent_to(to).personalisation["body"]
            .as_str()
            .unwrap()
            .to_owned();
        assert!(
            text.starts_with("OFFICIAL-SENSITIVE: Neglect: seeing the child\n"),
            "{text}"
        );
        assert!(text.contains("http://localhost:8080/ack/"), "{text}");
        assert!(!text.contains("Each agency saw part"), "{text}");
        fragments.push(cascade_plugin_notify::fragments(&text).2);
    }
    assert_eq!(fragments[0], fragments[1]);
    assert_eq!(
        flow.sms_lines,
        [format!(
            "notify-sms: 2 people at {} fragments each; {} fragments in all for the first texts (GSM: 160 characters in one, 153 each when split)",
            fragments[0],
            2 * fragments[0]
        )]
    );
    let ann = flow.sent_to("ann@agency.example");
    assert_eq!(
        ann.personalisation["subject"],
        "OFFICIAL-SENSITIVE: Neglect: seeing the child"
    );
    let body = ann.personalisation["body"].as_str().unwrap();
    assert!(body.contains("OFFICIAL-SENSITIVE"), "{body}");
    assert!(
        body.lines().next().unwrap().contains("OFFICIAL-SENSITIVE"),
        "{body}"
    );
    assert!(!body.contains("Each agency saw part"), "{body}");
    assert!(body.contains("What a local review taught us"), "{body}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_permanent_failure_falls_back_to_the_next_channel() {
    let flow = Flow::start(r#"["notify-sms", "outbox"]"#).await;
    let now = utc(2026, 3, 27, 9, 0);
    flow.dispatch(now).await;
    let zoe = flow.sent_to("+447700900001");
    let url = format!("{}/notify-sms", flow.webhook);

    // Without the bearer token: refused, nothing recorded.
    assert_eq!(
        flow.fake
            .receipt(&url, None, &zoe.id, "permanent-failure")
            .await,
        401
    );
    assert_eq!(
        flow.fake
            .receipt(
                &url,
                Some("a-wrong-token-0000"),
                &zoe.id,
                "permanent-failure"
            )
            .await,
        401
    );
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(flow.runner.handle_inbound(now).await.unwrap().is_empty());
    let sms_row = |rows: &[cascade_store::OutboxRow]| {
        rows.iter()
            .find(|r| r.recipient_id == "p-zoe" && r.channel == "notify-sms")
            .unwrap()
            .state
    };
    assert_eq!(
        sms_row(&rows(flow.runner.store().as_ref()).await),
        DeliveryState::Sent
    );

    // A delivered receipt changes nothing.
    let sam = flow.sent_to("+447700900002");
    assert_eq!(
        flow.fake
            .receipt(&url, Some(CALLBACK_TOKEN), &sam.id, "delivered")
            .await,
        200
    );
    assert_eq!(
        flow.handle_next(now).await,
        InboundOutcome::Receipt {
            status: ReceiptStatus::Delivered,
            person_id: Some("p-sam".to_owned())
        }
    );

    // Zoë's number no longer works.
    assert_eq!(
        flow.fake
            .receipt(&url, Some(CALLBACK_TOKEN), &zoe.id, "permanent-failure")
            .await,
        200
    );
    assert_eq!(
        flow.handle_next(now).await,
        InboundOutcome::Receipt {
            status: ReceiptStatus::PermanentFailure,
            person_id: Some("p-zoe".to_owned())
        }
    );
    let after = rows(flow.runner.store().as_ref()).await;
    assert_eq!(sms_row(&after), DeliveryState::Dead);
    flow.dispatch(now).await;
    let fell_back: Vec<_> = rows(flow.runner.store().as_ref())
        .await
        .into_iter()
        .filter(|r| r.recipient_id == "p-zoe" && r.channel == "outbox")
        .collect();
    assert_eq!(fell_back.len(), 1, "{fell_back:?}");
    assert_eq!(fell_back[0].state, DeliveryState::Sent);
    let mut emailed: Vec<String> = rows(flow.runner.store().as_ref())
        .await
        .into_iter()
        .filter(|r| r.channel == "outbox")
        .map(|r| r.recipient_id)
        .collect();
    emailed.sort();
    assert_eq!(emailed, ["p-ann", "p-zoe"]);
    let outbox = std::fs::read_dir(flow.dir.path().join("outbox"))
        .unwrap()
        .count();
    assert_eq!(outbox, 2, "Ann's (she has no mobile) and Zoë's fallback");
    assert_eq!(flow.fake.notifications().len(), 2, "no second text");
}
