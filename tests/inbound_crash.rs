//! Durable inbound through the real `cascade serve`: Telegram button presses
//! keep arriving while serve is killed with SIGKILL at random moments and
//! started again. A small fake Bot API plays Telegram as documented: in
//! long-polling mode an update stays in getUpdates until an offset past it
//! confirms it; in webhook mode an update is posted again until the webhook
//! answers 200. In webhook mode each kill lands the moment serve has
//! answered a post 200, so an update answered before it was stored would
//! be lost (Telegram never sends it again). In the end every press has
//! been handled exactly once: each
//! comes from an account nobody linked, so each is refused and counted,
//! and the count equals the presses made (none lost, none repeated).
//!
//! The kill moments come from a seeded PRNG; the seed is printed, and
//! `CASCADE_CRASH_SEED=<seed>` replays a run.

#![cfg(unix)]

mod support;

use axum::Json;
use axum::extract::{Path as UrlPath, State};
use axum::routing::post;
use cascade_store::{Inbox, Inspect, SqliteStore};
use cascade_test_support::plugin_library;
use serde_json::{Value, json};
use std::collections::VecDeque;
use std::env::consts::{DLL_PREFIX, DLL_SUFFIX};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const TOKEN: &str = "123456789:TEST-token_for-the-fake";
const SECRET: &str = "a-webhook-secret_for-tests";
const PRESSES: u64 = 80;
const KILLS: usize = 6;

/// What the fake Telegram holds: the updates not yet confirmed (polling)
/// or not yet answered 200 (webhook), in order.
#[derive(Default)]
struct Telegram {
    pending: VecDeque<Value>,
    /// Webhook posts answered 200, and answered otherwise (or not at all).
    delivered: u64,
    refused: u64,
    /// getUpdates and setWebhook calls: a started channel makes them.
    started: u64,
}

type Fake = Arc<Mutex<Telegram>>;

fn press(n: u64) -> Value {
    let user = 9000 + n as i64;
    json!({
        "update_id": 700_000 + n,
        "callback_query": {
            "id": format!("q{n}"),
            "from": {"id": user, "is_bot": false, "first_name": format!("User {n}")},
            "chat_instance": "1",
            "data": format!("forged.{n}")
        }
    })
}

fn ok(result: Value) -> Json<Value> {
    Json(json!({"ok": true, "result": result}))
}

async fn bot_api(
    State(fake): State<Fake>,
    UrlPath((_token, method)): UrlPath<(String, String)>,
    body: axum::body::Bytes,
) -> Json<Value> {
    let body: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    // teloxide names methods as GetMe, the docs as getMe.
    match method.to_ascii_lowercase().as_str() {
        "getme" => ok(json!({
            "id": 123_456_789, "is_bot": true, "first_name": "Cascade", "username": "cascade_test_bot",
            "can_join_groups": false, "can_read_all_group_messages": false,
            "supports_inline_queries": false, "can_connect_to_business": false,
            "has_main_web_app": false
        })),
        "getupdates" => {
            fake.lock().unwrap().started += 1;
            let offset = body["offset"].as_i64().unwrap_or(0);
            let deadline = Instant::now() + Duration::from_millis(500);
            loop {
                let updates: Vec<Value> = {
                    let mut state = fake.lock().unwrap();
                    // An offset confirms every update before it.
                    while state
                        .pending
                        .front()
                        .is_some_and(|u| u["update_id"].as_i64().unwrap() < offset)
                    {
                        state.pending.pop_front();
                    }
                    state.pending.iter().take(5).cloned().collect()
                };
                if !updates.is_empty() || Instant::now() > deadline {
                    return ok(json!(updates));
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
        "sendmessage" => ok(json!({
            "message_id": 1,
            "date": 1_774_602_000,
            "chat": {"id": body["chat_id"], "type": "private", "first_name": "User"},
            "from": {"id": 123_456_789, "is_bot": true, "first_name": "Cascade"},
            "text": body["text"].as_str().unwrap_or_default(),
        })),
        "setwebhook" => {
            fake.lock().unwrap().started += 1;
            ok(json!(true))
        }
        // deleteWebhook, answerCallbackQuery, setMyCommands...
        _ => ok(json!(true)),
    }
}

/// Posts pending updates to `url` one by one, as Telegram does: an update
/// is dropped only once the webhook answered 200. When `kill_on_200` holds
/// a process id, that process gets SIGKILL as soon as a post is answered
/// 200: the moment an update answered but not yet stored would be lost.
async fn post_updates(fake: Fake, url: String, kill_on_200: Arc<AtomicU32>) {
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(5))
        .build()
        .unwrap();
    loop {
        let next = fake.lock().unwrap().pending.front().cloned();
        let Some(update) = next else {
            tokio::time::sleep(Duration::from_millis(20)).await;
            continue;
        };
        let answered = client
            .post(&url)
            .header("x-telegram-bot-api-secret-token", SECRET)
            .json(&update)
            .send()
            .await
            .map(|r| r.status().as_u16());
        let taken = answered.is_ok_and(|status| status == 200);
        if taken {
            let pid = kill_on_200.swap(0, Ordering::SeqCst);
            if pid != 0 {
                // SAFETY: signalling the test's own child by its pid.
                unsafe {
                    libc::kill(pid as libc::pid_t, libc::SIGKILL);
                }
            }
        }
        {
            let mut state = fake.lock().unwrap();
            if taken {
                state.pending.pop_front();
                state.delivered += 1;
            } else {
                state.refused += 1;
            }
        }
        if !taken {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

/// SplitMix64, as in tests/crash.rs.
struct Rng(u64);

impl Rng {
    fn between(&mut self, low: u64, high: u64) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        low + (z ^ (z >> 31)) % (high - low + 1)
    }
}

fn serve(project: &Path, listen: &str, log: &Path) -> Child {
    let file = std::fs::File::create(log).unwrap();
    Command::new(env!("CARGO_BIN_EXE_cascade"))
        .args(["serve", "--project"])
        .arg(project)
        .args(["--listen", listen])
        .stdin(Stdio::null())
        .stdout(file.try_clone().unwrap())
        .stderr(file)
        .spawn()
        .expect("cascade serve starts")
}

fn kill(mut child: Child) {
    child.kill().unwrap();
    let status = child.wait().unwrap();
    assert_eq!(
        std::os::unix::process::ExitStatusExt::signal(&status),
        Some(9),
        "{status}"
    );
}

/// Waits for the SIGKILL `post_updates` sends on the next 200.
async fn killed(mut child: Child, kill_on_200: &AtomicU32, log: &Path) {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            assert_eq!(
                std::os::unix::process::ExitStatusExt::signal(&status),
                Some(9),
                "{status}:\n{}",
                std::fs::read_to_string(log).unwrap_or_default()
            );
            return;
        }
        if Instant::now() > deadline {
            kill_on_200.store(0, Ordering::SeqCst);
            kill(child);
            panic!(
                "no webhook post was answered 200 within 60 s:\n{}",
                std::fs::read_to_string(log).unwrap_or_default()
            );
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

async fn presses_survive_kills(webhook: bool) {
    let seed = std::env::var("CASCADE_CRASH_SEED")
        .map(|s| s.parse().expect("a whole number"))
        .unwrap_or_else(|_| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos() as u64
        });
    println!("CASCADE_CRASH_SEED={seed}");
    let mut rng = Rng(seed);

    let fake: Fake = Arc::default();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let api_url = format!("http://{}", listener.local_addr().unwrap());
    let app = axum::Router::new()
        .route("/{token}/{method}", post(bot_api))
        .with_state(fake.clone());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });

    // serve listens on a port chosen now, so the webhook URL is known.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let listen = format!("127.0.0.1:{port}");
    let plugins = tempfile::tempdir().unwrap();
    std::fs::copy(
        plugin_library("cascade-plugin-telegram"),
        plugins
            .path()
            .join(format!("{DLL_PREFIX}cascade_plugin_telegram{DLL_SUFFIX}")),
    )
    .unwrap();
    let (mode, secrets) = if webhook {
        (
            format!(r#"mode = "webhook", webhook_url = "http://{listen}/webhooks/telegram", "#),
            r#", webhook_secret = { file = "telegram-webhook-secret" }"#,
        )
    } else {
        (r#"poll_timeout_seconds = 1, "#.to_owned(), "")
    };
    let channels = format!(
        r#"[plugins]
dirs = ["{plugins}"]

[[channels]]
name = "telegram"
plugin = "telegram"
identity = "telegram"
formats = ["telegram"]
secrets = {{ token = {{ file = "telegram-token" }}{secrets} }}
config = {{ {mode}api_url = "{api_url}", messages_per_second = 1000, chat_messages_per_second = 1000 }}
"#,
        plugins = plugins.path().display()
    );
    let project = support::project(&channels);
    std::fs::write(project.path().join("telegram-token"), format!("{TOKEN}\n")).unwrap();
    std::fs::write(project.path().join("telegram-webhook-secret"), SECRET).unwrap();
    let kill_on_200 = Arc::new(AtomicU32::new(0));
    if webhook {
        tokio::spawn(post_updates(
            fake.clone(),
            format!("http://{listen}/webhooks/telegram"),
            kill_on_200.clone(),
        ));
    }
    // People press while serve runs, dies and starts again; in webhook mode
    // one more press before each kill, so a post is answered to kill on.
    let presses = PRESSES + if webhook { KILLS as u64 } else { 0 };
    let pressing = {
        let fake = fake.clone();
        tokio::spawn(async move {
            for n in 0..PRESSES {
                fake.lock().unwrap().pending.push_back(press(n));
                tokio::time::sleep(Duration::from_millis(40)).await;
            }
        })
    };
    let logs = tempfile::tempdir().unwrap();
    for run in 0..KILLS {
        let before = fake.lock().unwrap().started;
        let log = logs.path().join(format!("{run}.log"));
        let child = serve(project.path(), &listen, &log);
        // Killed while its channel takes updates, at a random moment.
        let deadline = Instant::now() + Duration::from_secs(60);
        while fake.lock().unwrap().started == before {
            assert!(
                Instant::now() < deadline,
                "serve never took updates:\n{}",
                std::fs::read_to_string(&log).unwrap_or_default()
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        tokio::time::sleep(Duration::from_millis(rng.between(50, 700))).await;
        if webhook {
            // Killed as the next post is answered 200.
            kill_on_200.store(child.id(), Ordering::SeqCst);
            fake.lock()
                .unwrap()
                .pending
                .push_back(press(PRESSES + run as u64));
            killed(child, &kill_on_200, &log).await;
        } else {
            kill(child);
        }
    }
    pressing.await.unwrap();

    let last = logs.path().join("last.log");
    let child = serve(project.path(), &listen, &last);
    let store_path = cascade_engine::project::Project::open(project.path())
        .unwrap()
        .store_path();
    let store = SqliteStore::open(&store_path.to_string_lossy())
        .await
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(90);
    let counted = loop {
        let counted: i64 = store
            .refusal_counts()
            .await
            .unwrap()
            .iter()
            .filter(|r| r.channel == "telegram")
            .map(|r| r.count)
            .sum();
        let waiting = fake.lock().unwrap().pending.len();
        if counted >= presses as i64
            && waiting == 0
            && store.inbox_pending().await.unwrap().is_empty()
        {
            // Long enough for a repeat to show, had there been one.
            tokio::time::sleep(Duration::from_secs(1)).await;
            break store
                .refusal_counts()
                .await
                .unwrap()
                .iter()
                .filter(|r| r.channel == "telegram")
                .map(|r| r.count)
                .sum::<i64>();
        }
        assert!(
            Instant::now() < deadline,
            "after 90 s {counted} of {presses} presses handled, {waiting} not yet taken by serve:\n{}",
            std::fs::read_to_string(&last).unwrap_or_default()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    kill(child);
    let (delivered, refused) = {
        let state = fake.lock().unwrap();
        (state.delivered, state.refused)
    };
    println!(
        "{presses} presses, {KILLS} kills: {counted} handled; webhook posts answered 200: {delivered}, not: {refused}"
    );
    assert_eq!(counted, presses as i64, "each press handled exactly once");
    if webhook {
        assert_eq!(delivered, presses, "each update answered 200 once");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn long_polled_presses_arriving_while_serve_is_killed_are_each_handled_once() {
    presses_survive_kills(false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn webhook_presses_arriving_while_serve_is_killed_are_each_handled_once() {
    presses_survive_kills(true).await;
}
