//! The cost of one send through the plugin ABI (JSON encode, the C call, the
//! plugin's decode and answer, the completion callback, the host's decode),
//! against a direct in-process call of the same plugin logic, in one run.
//!
//! Run with `cargo bench --bench plugin_abi`. Figures go in BENCHMARKS.md.

use cascade::bench::median;
use cascade_plugin_api::{Message, MessagePart, Recipient, SendRequest, SendResult};
use cascade_plugin_host::{ChannelConfig, PluginFile, PluginHost, PluginsConfig};
use cascade_test_support::plugin_library;
use std::hint::black_box;
use std::path::Path;
use std::time::{Duration, Instant};

const SENDS: u32 = 200_000;
const ROUNDS: usize = 5;

/// A realistic request: one Telegram-sized chunk of a briefing.
fn request(chunk_chars: usize) -> SendRequest {
    let text: String = "Ask to see where the child sleeps. <b>Record what they say.</b> & "
        .chars()
        .cycle()
        .take(chunk_chars)
        .collect();
    SendRequest {
        delivery_id: "rollout-7mb-neglect-w1-p-amara-okafor-telegram".to_owned(),
        idempotency_key: "3f9cbc8c29f162e09f2d76a5c52b4301".to_owned(),
        channel: "test".to_owned(),
        recipient: Recipient {
            person_id: "p-amara-okafor".to_owned(),
            display_name: "Amara Okafor".to_owned(),
            address: "123456789".to_owned(),
        },
        message: Message {
            subject: Some("Neglect: seeing the child".to_owned()),
            parts: vec![MessagePart {
                format: cascade_plugin_api::Format::Telegram,
                chunks: vec![text],
            }],
        },
        actions: vec![],
        reply: None,
        list: None,
        post: None,
    }
}

fn per_send(elapsed: Duration) -> f64 {
    elapsed.as_secs_f64() * 1e6 / f64::from(SENDS)
}

fn main() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let (tx, _inbound) = tokio::sync::mpsc::unbounded_channel();
    let report = PluginHost::load(
        &[PluginFile {
            path: plugin_library("cascade-testplugin-echo"),
        }],
        &PluginsConfig::default(),
        tx,
    );
    assert!(report.problems.is_empty(), "{:?}", report.problems);
    let host = report.host;
    let channel = ChannelConfig {
        name: "echo".to_owned(),
        plugin: "test-echo".to_owned(),
        config: serde_json::json!({}),
        secrets: Default::default(),
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
    runtime
        .block_on(host.start(&channel, Path::new(".")))
        .unwrap();
    let instance = host.instance("echo").unwrap().clone();

    println!(
        "plugin ABI round trip vs direct call, {SENDS} sequential sends, median of {ROUNDS} rounds"
    );
    println!(
        "{:>14} {:>14} {:>14} {:>12}",
        "message chars", "direct µs", "ABI µs", "overhead µs"
    );
    for chars in [64, 4000] {
        let request = request(chars);
        let mut direct = Vec::new();
        let mut abi = Vec::new();
        for _ in 0..ROUNDS {
            let start = Instant::now();
            for _ in 0..SENDS {
                let result = cascade_testplugin_echo::echo(black_box(&request));
                assert!(matches!(black_box(result), SendResult::Delivered { .. }));
            }
            direct.push(per_send(start.elapsed()));

            let start = Instant::now();
            runtime.block_on(async {
                for _ in 0..SENDS {
                    let result = instance.send(black_box(&request)).await.unwrap();
                    assert!(matches!(black_box(result), SendResult::Delivered { .. }));
                }
            });
            abi.push(per_send(start.elapsed()));
        }
        let (direct, abi) = (median(direct), median(abi));
        println!(
            "{chars:>14} {direct:>14.3} {abi:>14.3} {:>12.3}",
            abi - direct
        );
    }
    runtime.block_on(host.stop());
}
