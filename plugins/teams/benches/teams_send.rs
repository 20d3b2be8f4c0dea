//! Learning cards to 600 people through the real plugin, loaded by the
//! host, against the fake Bot Connector enforcing Teams' limits (50
//! operations a second over the bot, 7 a second and fewer over longer
//! windows per conversation, 429 with Retry-After beyond them). Sends are
//! driven as the dispatcher drives them: at most the manifest's
//! `max_in_flight` at once, and a send answered with a retry is sent again
//! after the retry-after it carries.
//!
//! In the same run, the raw floor: the same activities POSTed with plain
//! reqwest (the app token fetched once) to the same fake with its limits
//! lifted, as many at once, which is what the connection alone allows.
//!
//! Run: `cargo bench -p cascade-plugin-teams --bench teams_send`

#[allow(dead_code)]
#[path = "../tests/support/fake_teams.rs"]
mod fake_teams;

use cascade_plugin_api::{
    Action, Format, Message, MessagePart, Recipient, SendRequest, SendResult,
};
use cascade_plugin_host::{ChannelConfig, PluginFile, PluginHost, PluginsConfig, SecretSource};
use fake_teams::{FakeTeams, PASSWORD};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};
use tokio::sync::Semaphore;

const PEOPLE: u32 = 600;
const TEAMS_APP_PER_SECOND: f64 = 50.0;

fn library() -> std::path::PathBuf {
    let exe = std::env::current_exe().unwrap();
    let name = format!(
        "{}cascade_plugin_teams{}",
        std::env::consts::DLL_PREFIX,
        std::env::consts::DLL_SUFFIX
    );
    exe.ancestors()
        .skip(1)
        .map(|dir| dir.join(&name))
        .find(|path| path.is_file())
        .unwrap_or_else(|| panic!("{name} was not built next to {}", exe.display()))
}

fn card(n: u32, address: String) -> SendRequest {
    SendRequest {
        delivery_id: format!("d{n}"),
        idempotency_key: format!("bench/p-{n}/initial-1/teams"),
        channel: "teams".to_owned(),
        recipient: Recipient {
            person_id: format!("p-{n}"),
            display_name: "Sam Carter".to_owned(),
            address,
        },
        message: Message {
            subject: Some("7-minute briefing: Neglect and the toxic trio".to_owned()),
            parts: vec![MessagePart {
                format: Format::Discord,
                chunks: vec![
                    "**Neglect: seeing the child**\nA new briefing is ready. See the child, not only the adults.".to_owned(),
                ],
            }],
        },
        actions: vec![Action {
            id: format!("{n}.ack.Zx9Qw0aB1c"),
            label: "Acknowledge".to_owned(),
            form: None,
        }],
        reply: None,
        list: None,
        post: None,
    }
}

struct Run {
    seconds: f64,
    retries: usize,
    throttled: usize,
    /// Cards accepted a second, from the fake's first acceptance to its
    /// last (the steady rate, without the start-up and the last answer).
    accepted_rate: f64,
}

/// Every person's card through the host and the plugin.
async fn through_the_plugin(fake: &FakeTeams) -> Run {
    let secrets = tempfile::tempdir().unwrap();
    std::fs::write(secrets.path().join("teams-app-password"), PASSWORD).unwrap();
    let (events, _inbound) = tokio::sync::mpsc::unbounded_channel();
    let report = PluginHost::load(
        &[PluginFile { path: library() }],
        &PluginsConfig::default(),
        events,
    );
    assert!(report.problems.is_empty());
    let host = report.host;
    let channel = ChannelConfig {
        name: "teams".to_owned(),
        plugin: "teams".to_owned(),
        config: fake.config(),
        secrets: [(
            "app_password".to_owned(),
            SecretSource::File("teams-app-password".into()),
        )]
        .into(),
        identity: None,
        formats: None,
        per_second: None,
        max_per_minute: None,
        max_per_day: None,
        team_channels: Default::default(),
        retry: None,
        carries: Default::default(),
        secure_domains: Vec::new(),
        spread_over: Vec::new(),
    };
    host.start(&channel, secrets.path()).await.unwrap();
    let in_flight = host
        .plugin("teams")
        .unwrap()
        .manifest
        .limits
        .max_in_flight
        .unwrap_or(1);
    let host = Arc::new(host);
    let slots = Arc::new(Semaphore::new(in_flight));
    let retries = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let mut sends = tokio::task::JoinSet::new();
    for n in 0..PEOPLE {
        let (host, slots, retries) = (host.clone(), slots.clone(), retries.clone());
        let request = card(n, fake.address(n));
        sends.spawn(async move {
            loop {
                let result = {
                    let _slot = slots.acquire().await.unwrap();
                    host.send("teams", &request).await.unwrap()
                };
                match result {
                    SendResult::Delivered { .. } => return,
                    SendResult::Retry { retry_after_ms, .. } => {
                        retries.fetch_add(1, Ordering::Relaxed);
                        let wait = retry_after_ms.unwrap_or(1_000);
                        tokio::time::sleep(Duration::from_millis(wait)).await;
                    }
                    failed => panic!("person {n}: {failed:?}"),
                }
            }
        });
    }
    while let Some(done) = sends.join_next().await {
        done.unwrap();
    }
    let seconds = started.elapsed().as_secs_f64();
    for instance in host.instances() {
        instance.stop().await;
    }
    let accepted: Vec<Instant> = fake
        .state()
        .requests
        .iter()
        .filter(|r| r.method == "POST" && r.status == 201 && r.path.ends_with("/activities"))
        .map(|r| r.at)
        .collect();
    let span = accepted[accepted.len() - 1].duration_since(accepted[0]);
    let state = fake.state();
    Run {
        seconds,
        retries: retries.load(Ordering::Relaxed),
        throttled: state.throttled,
        accepted_rate: (accepted.len() - 1) as f64 / span.as_secs_f64(),
    }
}

/// The same activities POSTed straight to the fake with reqwest.
async fn raw_posts(fake: &FakeTeams, in_flight: usize) -> f64 {
    let client = reqwest::Client::new();
    let token: serde_json::Value = client
        .post(format!("{}/oauth2/token", fake.url))
        .form(&[
            ("grant_type", "client_credentials"),
            ("client_id", fake_teams::APP_ID),
            ("client_secret", PASSWORD),
            ("scope", "https://api.botframework.com/.default"),
        ])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let token = token["access_token"].as_str().unwrap().to_owned();
    let activity = serde_json::json!({
        "type": "message",
        "attachments": [{ "contentType": "application/vnd.microsoft.card.adaptive", "content": {
            "type": "AdaptiveCard", "version": "1.5",
            "body": [{ "type": "TextBlock", "text": "A new briefing is ready.", "wrap": true }],
            "actions": [{ "type": "Action.Submit", "title": "Acknowledge", "data": { "cascade": "1.ack.x" } }],
        }}],
    });
    let slots = Arc::new(Semaphore::new(in_flight));
    let started = Instant::now();
    let mut posts = tokio::task::JoinSet::new();
    for n in 0..PEOPLE {
        let url = format!(
            "{}/v3/conversations/{}/activities",
            fake.url,
            fake.personal_conversation(n)
        );
        let (client, token, activity, slots) = (
            client.clone(),
            token.clone(),
            activity.clone(),
            slots.clone(),
        );
        posts.spawn(async move {
            let _slot = slots.acquire().await.unwrap();
            let status = client
                .post(url)
                .bearer_auth(token)
                .json(&activity)
                .send()
                .await
                .unwrap()
                .status();
            assert_eq!(status.as_u16(), 201);
        });
    }
    while let Some(done) = posts.join_next().await {
        done.unwrap();
    }
    f64::from(PEOPLE) / started.elapsed().as_secs_f64()
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let raw_fake = FakeTeams::start().await;
    raw_fake.state().unlimited = true;
    let raw = raw_posts(&raw_fake, 64).await;
    let fake = FakeTeams::start().await;
    let run = through_the_plugin(&fake).await;
    let rate = f64::from(PEOPLE) / run.seconds;
    println!("teams_send: {PEOPLE} cards to {PEOPLE} people through the host");
    println!("  raw floor: plain reqwest POSTs, fake unlimited   {raw:8.1} posts/s");
    println!(
        "  plugin, fake enforcing Teams' limits (50/s)    {rate:8.1} cards/s in {:.2} s  429s: {}  retried sends: {}",
        run.seconds, run.throttled, run.retries
    );
    println!(
        "  accepted by the fake, first to last: {:.1} cards/s; / enforced rate: {:.3}",
        run.accepted_rate,
        run.accepted_rate / TEAMS_APP_PER_SECOND
    );
}
