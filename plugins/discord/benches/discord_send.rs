//! The cost of delivering a learning message as a Discord DM through the
//! engine's plugin host and the Discord plugin (host ABI, formatting with
//! serenity's builders, rate-limit bookkeeping, the HTTP call, the answer),
//! against the floor: the same message body POSTed straight to the same fake
//! Discord on loopback with a plain HTTP client, in one run.
//!
//! Run with `cargo bench --bench discord_send`. Figures go in BENCHMARKS.md.

#[path = "../tests/support/mod.rs"]
mod support;

use cascade_plugin_api::SendResult;
use serde_json::json;
use std::time::{Duration, Instant};
use support::fake_discord::{FakeDiscord, TOKEN};
use support::{Bot, action, dm};

const SENDS: usize = 2_000;
const IN_FLIGHT: usize = 8;
const USER: &str = "4000000000000000001";

fn chunk() -> String {
    "Ask to see where the child sleeps. **Record what they say.** "
        .chars()
        .cycle()
        .take(3_000)
        .collect()
}

fn per_send(elapsed: Duration) -> f64 {
    elapsed.as_secs_f64() * 1e6 / SENDS as f64
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let fake = FakeDiscord::start().await;
    let bot = Bot::start(&fake, json!({})).await;
    let text = chunk();
    let request = |n: usize| {
        dm(
            &format!("d-{n}"),
            USER,
            &[&text],
            vec![action(
                &format!("ack:{n}:signature-0123456789"),
                "Acknowledge",
            )],
        )
    };
    // Opens the DM channel once; every later send is one POST.
    assert!(matches!(
        bot.send(&request(0)).await,
        SendResult::Delivered { .. }
    ));
    let channel = fake.dm_channel_of(USER).unwrap();
    let body = serde_json::to_string(&json!({
        "embeds": [{"title": "7-minute briefing: Neglect and the toxic trio", "description": text}],
        "components": [{"type": 1, "components": [{"type": 2, "style": 1, "label": "Acknowledge", "custom_id": "ack:1:signature-0123456789"}]}],
        "allowed_mentions": {"parse": [], "users": [], "roles": []}
    }))
    .unwrap();
    let client = reqwest::Client::new();
    let url = format!("{}/api/v10/channels/{channel}/messages", fake.api_url());

    let started = Instant::now();
    for _ in 0..SENDS {
        let response = client
            .post(&url)
            .header("authorization", format!("Bot {TOKEN}"))
            .header("content-type", "application/json")
            .body(body.clone())
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
        response.bytes().await.unwrap();
    }
    let floor = started.elapsed();

    let started = Instant::now();
    for n in 1..=SENDS {
        let result = bot.send(&request(n)).await;
        assert!(matches!(result, SendResult::Delivered { .. }), "{result:?}");
    }
    let sequential = started.elapsed();

    let started = Instant::now();
    let bot = std::sync::Arc::new(bot);
    let mut tasks = Vec::new();
    for lane in 0..IN_FLIGHT {
        let bot = std::sync::Arc::clone(&bot);
        let requests: Vec<_> = (0..SENDS / IN_FLIGHT)
            .map(|i| request(SENDS + 1 + lane * SENDS + i))
            .collect();
        tasks.push(tokio::spawn(async move {
            for request in requests {
                let result = bot.send(&request).await;
                assert!(matches!(result, SendResult::Delivered { .. }), "{result:?}");
            }
        }));
    }
    for task in tasks {
        task.await.unwrap();
    }
    let concurrent = started.elapsed();

    println!("{SENDS} DMs of one 3,000-character embed with a button, fake Discord on loopback");
    println!(
        "  raw HTTP POST (floor):            {:8.1} µs/send",
        per_send(floor)
    );
    println!(
        "  through host + plugin, 1 at once: {:8.1} µs/send ({:.2}x the floor)",
        per_send(sequential),
        sequential.as_secs_f64() / floor.as_secs_f64()
    );
    println!(
        "  through host + plugin, {IN_FLIGHT} at once: {:8.1} µs/send ({:.0} sends/s)",
        per_send(concurrent),
        SENDS as f64 / concurrent.as_secs_f64()
    );
}
