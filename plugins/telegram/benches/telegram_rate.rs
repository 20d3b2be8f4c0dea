//! 1,800 messages to 1,800 chats through the real plugin, loaded by the
//! host, against the fake Bot API enforcing Telegram's 30 messages a second
//! with 429s beyond it. Sends are driven as the dispatcher drives them:
//! at most the manifest's `max_in_flight` at once, and a send answered
//! with a retry is sent again after the retry-after it carries.
//!
//! In the same run: a baseline with the plugin's pacing lifted and the fake
//! unlimited (what host, plugin and fake manage without any limit), and
//! the plugin without pacing against the enforcing fake (what the pacing
//! saves).
//!
//! Run: `cargo bench -p cascade-plugin-telegram --bench telegram_rate`

#[path = "../tests/fake_bot_api/mod.rs"]
mod fake_bot_api;
#[path = "../tests/harness/mod.rs"]
mod harness;

use cascade_plugin_api::SendResult;
use harness::{Harness, briefing};
use serde_json::json;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};
use tokio::sync::Semaphore;

const MESSAGES: i64 = 1_800;
const TELEGRAM_PER_SECOND: usize = 30;

struct Run {
    seconds: f64,
    retries: usize,
    too_many_requests: usize,
}

async fn run(config: serde_json::Value, limit: Option<usize>) -> Run {
    let fake = fake_bot_api::FakeBotApi::start().await;
    if let Some(limit) = limit {
        fake.limit_per_second(limit);
    }
    let config = harness::config(&fake, config);
    let harness = Arc::new(
        Harness::start_with(fake, config, fake_bot_api::TOKEN)
            .await
            .unwrap(),
    );
    let in_flight = harness
        .host
        .plugin("telegram")
        .unwrap()
        .manifest
        .limits
        .max_in_flight
        .unwrap_or(1);
    let slots = Arc::new(Semaphore::new(in_flight));
    let retries = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let mut sends = tokio::task::JoinSet::new();
    for chat in 0..MESSAGES {
        let (harness, slots, retries) = (harness.clone(), slots.clone(), retries.clone());
        sends.spawn(async move {
            let request = briefing(
                &format!("d-{chat}"),
                10_000 + chat,
                &["<b>Neglect: seeing the child</b>\nA new briefing is ready."],
                vec![harness::action(&format!("a1.ack.{chat:08}"), "Acknowledge")],
            );
            loop {
                let result = {
                    let _slot = slots.acquire().await.unwrap();
                    harness.send(&request).await
                };
                match result {
                    SendResult::Delivered { .. } => return,
                    SendResult::Retry { retry_after_ms, .. } => {
                        retries.fetch_add(1, Ordering::Relaxed);
                        let wait = retry_after_ms.unwrap_or(1_000);
                        tokio::time::sleep(Duration::from_millis(wait)).await;
                    }
                    failed => panic!("chat {chat}: {failed:?}"),
                }
            }
        });
    }
    while let Some(done) = sends.join_next().await {
        done.unwrap();
    }
    let seconds = started.elapsed().as_secs_f64();
    let harness = Arc::into_inner(harness).expect("every send finished");
    let fake = harness.stop().await;
    assert_eq!(fake.all_messages().len(), MESSAGES as usize);
    Run {
        seconds,
        retries: retries.load(Ordering::Relaxed),
        too_many_requests: fake.too_many_requests(),
    }
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let unpaced = json!({ "messages_per_second": 100_000, "chat_messages_per_second": 100_000 });
    let baseline = run(unpaced.clone(), None).await;
    let unpaced_limited = run(unpaced, Some(TELEGRAM_PER_SECOND)).await;
    // null: the plugin's own defaults, not the quick limits of the tests.
    let defaults = json!({ "messages_per_second": null, "chat_messages_per_second": null });
    let paced = run(defaults, Some(TELEGRAM_PER_SECOND)).await;
    let rate = |r: &Run| MESSAGES as f64 / r.seconds;
    println!("telegram_rate: {MESSAGES} messages to {MESSAGES} chats through the host");
    for (name, run) in [
        ("baseline: pacing off, fake unlimited", &baseline),
        ("pacing off, fake enforcing 30/s", &unpaced_limited),
        ("pacing on (defaults), fake enforcing 30/s", &paced),
    ] {
        println!(
            "  {name:44} {:7.2} s {:8.1} msg/s  429s: {:6}  retried sends: {}",
            run.seconds,
            rate(run),
            run.too_many_requests,
            run.retries
        );
    }
    println!(
        "  paced rate / Telegram's limit: {:.3}",
        rate(&paced) / TELEGRAM_PER_SECOND as f64
    );
}
