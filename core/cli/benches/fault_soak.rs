//! The fault soak: `cascade serve` as a child process sends three rollouts
//! (about 50,000 deliveries) through the real file, email and Telegram
//! plugin libraries while the world around it fails: the SMTP server
//! (aiosmtpd, `plugins/email/tests/smtp_server.py`) answers 421 to RCPT
//! once, 451 after DATA once, 451 always or 550 to RCPT, or drops the
//! connection after DATA once, for three in ten addresses; the fake
//! Bot API answers three in ten `sendMessage` calls with 429 (retry_after,
//! 1 in 100), 500/502 (27 in 100), or not before the send times out (2 in
//! 100); `serve` is killed with
//! SIGKILL five times at random moments and started again; and people
//! press Telegram's Acknowledge button and POST their email links all the
//! while. Afterwards it checks, and prints:
//!
//! - every member has exactly one sent row per step, or a dead letter, and
//!   every dead letter is an address the SMTP server always refuses;
//! - what each provider received against what the store says was sent;
//!   a copy beyond one is justified only when its row was leased (claimed
//!   and not recorded) when a kill landed: the provider took it, the store
//!   never heard. SMTP has no idempotency key, so such a repeat cannot be
//!   prevented, only recognised (the same Message-ID). Every other repeat
//!   fails the soak;
//! - every press answered by the bot and every link POST answered 200 is
//!   recorded as an acknowledgement, once;
//! - the report's totals (`rollout_counts`) equal a recount from the rows.
//!
//! `cargo bench -p cascade --bench fault_soak` (needs python3 with aiosmtpd:
//! `scripts/install-test-deps.sh`). `CASCADE_SOAK_PEOPLE` (default 16,667,
//! three deliveries each), `CASCADE_SOAK_SEED` replays a run's random
//! choices (printed at the start), `CASCADE_SOAK_LOGS=DIR` keeps each
//! `serve`'s log there. Bounded to about ten minutes.

use axum::Json;
use axum::extract::{Path as UrlPath, State};
use axum::routing::post;
use cascade_test_support::DemoProject;
use cascade_test_support::plugin_library;
use serde_json::{Value, json};
use sqlx::Row;
use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::env::consts::{DLL_PREFIX, DLL_SUFFIX};
use std::fmt::Write as _;
use std::io::BufRead;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const TOKEN: &str = "123456789:SOAK-token_for-the-fake";
const KILLS: usize = 5;
const ITEMS: [(&str, &str); 3] = [
    ("r-file", "7mb-neglect-seeing-the-child"),
    ("r-email", "7mb-safer-sleep"),
    ("r-telegram", "7mb-cce-county-lines"),
];

/// SplitMix64: small, seeded, shared by the fakes.
struct Rng(AtomicU64);

impl Rng {
    fn next(&self) -> u64 {
        let mut z = self
            .0
            .fetch_add(0x9E37_79B9_7F4A_7C15, Ordering::Relaxed)
            .wrapping_add(0x9E37_79B9_7F4A_7C15);
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn below(&self, n: u64) -> u64 {
        self.next() % n
    }
}

/// The fake Bot API's record.
#[derive(Default)]
struct Telegram {
    /// Updates not yet confirmed by a getUpdates offset.
    pending: VecDeque<Value>,
    next_update: i64,
    next_message: i64,
    /// Messages taken, by chat: (message id, text, the first button's data).
    taken: HashMap<i64, Vec<(i64, String, Option<String>)>>,
    /// Callback queries answered, by id.
    answered: HashSet<String>,
    faults: u64,
}

struct Fake {
    state: Mutex<Telegram>,
    rng: Rng,
}

fn ok(result: Value) -> Json<Value> {
    Json(json!({"ok": true, "result": result}))
}

async fn bot_api(
    State(fake): State<Arc<Fake>>,
    UrlPath((_token, method)): UrlPath<(String, String)>,
    body: axum::body::Bytes,
) -> (axum::http::StatusCode, Json<Value>) {
    use axum::http::StatusCode;
    let body: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    let fine = |v: Json<Value>| (StatusCode::OK, v);
    match method.to_ascii_lowercase().as_str() {
        "getme" => fine(ok(json!({
            "id": 123_456_789, "is_bot": true, "first_name": "Cascade", "username": "cascade_soak_bot",
            "can_join_groups": false, "can_read_all_group_messages": false,
            "supports_inline_queries": false, "can_connect_to_business": false,
            "has_main_web_app": false
        }))),
        "getupdates" => {
            let offset = body["offset"].as_i64().unwrap_or(0);
            let deadline = Instant::now() + Duration::from_millis(500);
            loop {
                let updates: Vec<Value> = {
                    let mut state = fake.state.lock().unwrap();
                    while state
                        .pending
                        .front()
                        .is_some_and(|u| u["update_id"].as_i64().unwrap() < offset)
                    {
                        state.pending.pop_front();
                    }
                    state.pending.iter().take(20).cloned().collect()
                };
                if !updates.is_empty() || Instant::now() > deadline {
                    return fine(ok(json!(updates)));
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
        "sendmessage" => {
            // Three in ten fail, as Telegram's API documents its failures.
            match fake.rng.below(100) {
                0..1 => {
                    fake.state.lock().unwrap().faults += 1;
                    return (
                        StatusCode::TOO_MANY_REQUESTS,
                        Json(json!({
                            "ok": false, "error_code": 429,
                            "description": "Too Many Requests: retry after 1",
                            "parameters": {"retry_after": 1}
                        })),
                    );
                }
                1..28 => {
                    fake.state.lock().unwrap().faults += 1;
                    let code = if fake.rng.below(2) == 0 { 500 } else { 502 };
                    return (
                        StatusCode::from_u16(code).unwrap(),
                        Json(
                            json!({"ok": false, "error_code": code, "description": "Internal Server Error"}),
                        ),
                    );
                }
                28..30 => {
                    // Not taken, and no answer before the send times out.
                    fake.state.lock().unwrap().faults += 1;
                    tokio::time::sleep(Duration::from_secs(12)).await;
                    return (
                        StatusCode::GATEWAY_TIMEOUT,
                        Json(
                            json!({"ok": false, "error_code": 504, "description": "Gateway Timeout"}),
                        ),
                    );
                }
                _ => {}
            }
            let chat = body["chat_id"].as_i64().unwrap_or_default();
            let button = body["reply_markup"]["inline_keyboard"]
                .as_array()
                .into_iter()
                .flatten()
                .flat_map(|row| row.as_array().cloned().unwrap_or_default())
                .next()
                .and_then(|b| b["callback_data"].as_str().map(str::to_owned));
            let text = body["text"].as_str().unwrap_or_default().to_owned();
            let id = {
                let mut state = fake.state.lock().unwrap();
                state.next_message += 1;
                let id = state.next_message;
                state
                    .taken
                    .entry(chat)
                    .or_default()
                    .push((id, text, button));
                id
            };
            fine(ok(json!({
                "message_id": id,
                "date": 1_774_602_000,
                "chat": {"id": chat, "type": "private", "first_name": "Soak"},
                "from": {"id": 123_456_789, "is_bot": true, "first_name": "Cascade"},
                "text": "sent",
            })))
        }
        "answercallbackquery" => {
            if let Some(id) = body["callback_query_id"].as_str() {
                fake.state.lock().unwrap().answered.insert(id.to_owned());
            }
            fine(ok(json!(true)))
        }
        // On a chat's message (not an inline one) Telegram answers an edit
        // with the edited message.
        "editmessagetext" | "editmessagereplymarkup" => {
            let chat = body["chat_id"].as_i64().unwrap_or_default();
            fine(ok(json!({
                "message_id": body["message_id"].as_i64().unwrap_or_default(),
                "date": 1_774_602_000,
                "edit_date": 1_774_602_060,
                "chat": {"id": chat, "type": "private", "first_name": "Soak"},
                "from": {"id": 123_456_789, "is_bot": true, "first_name": "Cascade"},
                "text": "sent",
            })))
        }
        _ => fine(ok(json!(true))),
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

fn cascade(args: &[&str], project: &Path) {
    let out = Command::new(env!("CARGO_BIN_EXE_cascade"))
        .args(args)
        .arg("--project")
        .arg(project)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "cascade {}: {}",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The SMTP server, started from the email plugin's test script.
fn smtp_server(dir: &Path) -> (Child, u16) {
    let script =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../plugins/email/tests/smtp_server.py");
    let mut child = Command::new("python3")
        .arg(&script)
        .arg(dir)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("python3 runs; scripts/install-test-deps.sh installs aiosmtpd");
    let mut line = String::new();
    std::io::BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let port = line
        .trim()
        .strip_prefix("listening on ")
        .and_then(|p| p.parse().ok())
        .unwrap_or_else(|| {
            panic!("smtp_server.py did not start (run scripts/install-test-deps.sh): {line:?}")
        });
    (child, port)
}

/// An address the SMTP server fails for, by its local part: three in ten
/// (421 once, 451 once, 451 always, 550 always, the connection dropped
/// after DATA once, twice as often).
fn email_of(n: usize) -> String {
    let kind = match n % 20 {
        0 => "busy",
        1 => "tempfail",
        2 => "deferred",
        3 => "reject",
        4 | 5 => "drop",
        _ => "person",
    };
    format!("{kind}-{n:06}@agency.example")
}

fn post_ack(address: &str, path: &str) -> Option<u16> {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(address).ok()?;
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .ok()?;
    write!(
        stream,
        "POST {path} HTTP/1.0\r\nHost: cascade\r\nContent-Length: 0\r\n\r\n"
    )
    .ok()?;
    let mut response = String::new();
    stream.read_to_string(&mut response).ok()?;
    response.get(9..12)?.parse().ok()
}

fn main() {
    let people: usize = std::env::var("CASCADE_SOAK_PEOPLE")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(16_667);
    let seed: u64 = std::env::var("CASCADE_SOAK_SEED")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos() as u64
        });
    println!("CASCADE_SOAK_SEED={seed}, {people} people, three rollouts");
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(soak(people, seed));
}

async fn soak(people: usize, seed: u64) {
    let started = Instant::now();
    let fake = Arc::new(Fake {
        state: Mutex::default(),
        rng: Rng(AtomicU64::new(seed)),
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let api_url = format!("http://{}", listener.local_addr().unwrap());
    let app = axum::Router::new()
        .route("/{token}/{method}", post(bot_api))
        .with_state(fake.clone());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    let mail = tempfile::tempdir().unwrap();
    let (mut smtp, smtp_port) = smtp_server(mail.path());

    let plugins = tempfile::tempdir().unwrap();
    for name in ["file", "email", "telegram"] {
        std::fs::copy(
            plugin_library(&format!("cascade-plugin-{name}")),
            plugins
                .path()
                .join(format!("{DLL_PREFIX}cascade_plugin_{name}{DLL_SUFFIX}")),
        )
        .unwrap();
    }
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let listen = format!("127.0.0.1:{port}");
    let retry = "retry = { first_wait_seconds = 1, factor = 2, longest_wait_seconds = 4, max_attempts = 8 }";
    let channels = format!(
        r#"[plugins]
dirs = ["{plugins}"]
# Above teloxide's 10 s hold of a 5xx answer, so a server error ends as a
# retry, not a timeout; the fake's hanging calls still time out.
send_timeout_seconds = 20

[[channels]]
name = "outbox"
plugin = "file"
identity = "email"
formats = ["email-text"]
config = {{ dir = "OUTBOX" }}

[[channels]]
name = "email"
plugin = "email"
formats = ["email-html", "email-text"]
{retry}
config = {{ host = "127.0.0.1", port = {smtp_port}, tls = "none", helo_name = "cascade.soak", from = "Northbridge Learning <learning@northbridge.example>", max_in_flight = 8, timeout_seconds = 5 }}

[[channels]]
name = "telegram"
plugin = "telegram"
identity = "telegram"
formats = ["telegram"]
per_second = 300
{retry}
secrets = {{ token = {{ file = "telegram-token" }} }}
config = {{ poll_timeout_seconds = 1, api_url = "{api_url}", messages_per_second = 1000, chat_messages_per_second = 1000 }}
"#,
        plugins = plugins.path().display()
    );
    // A bare POST to an acknowledgement link records it only for an item
    // without check questions (one with them answers 422 and asks them):
    // the soak's people press and POST, they do not answer questions.
    let demo = DemoProject::new().without_check_questions();
    let outbox = demo.path().join("outbox");
    let mut rows =
        String::from("person_id,display_name,email,agency_id,team_id,roles,manager_id,time_zone\n");
    for n in 0..people {
        writeln!(
            rows,
            "p-{n:06},Soak Person {n},{},ag,team,practitioner,,",
            email_of(n)
        )
        .unwrap();
    }
    let dir = demo
        .channels(&channels.replace("OUTBOX", &outbox.display().to_string()))
        .write(
            "directory/agencies.csv",
            "agency_id,name,kind\nag,Soak Agency,local-authority\n",
        )
        .write(
            "directory/teams.csv",
            "team_id,agency_id,name\nteam,ag,Soak Team\n",
        )
        .write("directory/champions.csv", "person_id,theme,teams\n")
        .write("directory/people.csv", rows)
        .write("telegram-token", format!("{TOKEN}\n"))
        .into_dir();
    let project = dir.path();
    for entry in std::fs::read_dir(project.join("rollouts")).unwrap() {
        std::fs::remove_file(entry.unwrap().path()).unwrap();
    }
    cascade(&["import"], project);
    let store_path = cascade_engine::project::Project::open(project)
        .unwrap()
        .store_path();
    let url = format!("sqlite://{}", store_path.display());
    let db = sqlx::SqlitePool::connect(&url).await.unwrap();
    // Everyone has linked a Telegram chat.
    for n in 0..people {
        sqlx::query("INSERT INTO channel_identities (person_id, channel, address, linked_at) VALUES (?, 'telegram', ?, '2026-03-01T00:00:00Z')")
            .bind(format!("p-{n:06}"))
            .bind((100_000 + n).to_string())
            .execute(&db)
            .await
            .unwrap();
    }
    let london = chrono::Utc::now().with_timezone(&chrono_tz::Europe::London);
    let start = (london.date_naive() - chrono::Days::new(1))
        .and_hms_opt(12, 0, 0)
        .unwrap();
    for (id, item) in ITEMS {
        let channel = id.trim_start_matches("r-").replace("file", "outbox");
        let path = project.join(format!("rollouts/{id}.toml"));
        std::fs::write(
            &path,
            format!(
                "id = \"{id}\"\nitem = \"{item}\"\nstart = {}\nurgent = true\nchannels = [\"{channel}\"]\nfallback = false\nack_deadline_days = 28\nmax_attempts = 8\n\n[[waves]]\nname = \"Everyone\"\nafter_days = 0\n",
                start.format("%Y-%m-%dT%H:%M:%S")
            ),
        )
        .unwrap();
        cascade(&["rollout", "start", path.to_str().unwrap()], project);
    }
    println!(
        "set up in {:.1} s; serving with {KILLS} kills",
        started.elapsed().as_secs_f64()
    );

    // People act while serve runs, dies and starts again.
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let posted: Arc<Mutex<Vec<String>>> = Arc::default();
    let pressing = {
        let (fake, stop) = (fake.clone(), stop.clone());
        tokio::spawn(async move {
            let mut pressed = HashSet::new();
            while !stop.load(Ordering::Relaxed) {
                {
                    let mut state = fake.state.lock().unwrap();
                    let chats: Vec<i64> = state.taken.keys().copied().collect();
                    if !chats.is_empty() {
                        let chat = chats[fake.rng.below(chats.len() as u64) as usize];
                        let button = state.taken[&chat]
                            .iter()
                            .find_map(|(id, _, data)| Some((*id, data.clone()?)));
                        if let Some((message, data)) = button
                            && pressed.insert(chat)
                        {
                            state.next_update += 1;
                            let update = state.next_update;
                            state.pending.push_back(json!({
                                "update_id": update,
                                "callback_query": {
                                    "id": format!("q{update}"),
                                    "from": {"id": chat, "is_bot": false, "first_name": "Soak"},
                                    "message": {
                                        "message_id": message, "date": 1_774_602_000,
                                        "chat": {"id": chat, "type": "private", "first_name": "Soak"},
                                        "text": "sent"
                                    },
                                    "chat_instance": "1",
                                    "data": data
                                }
                            }));
                        }
                    }
                }
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        })
    };
    let posting = {
        let (posted, stop, outbox, listen) =
            (posted.clone(), stop.clone(), outbox.clone(), listen.clone());
        let rng = Rng(AtomicU64::new(seed ^ 0x5eed));
        tokio::task::spawn_blocking(move || {
            let mut done = HashSet::new();
            while !stop.load(Ordering::Relaxed) {
                let files: Vec<PathBuf> = std::fs::read_dir(&outbox)
                    .map(|d| d.filter_map(|e| e.ok().map(|e| e.path())).collect())
                    .unwrap_or_default();
                for _ in 0..20 {
                    if files.is_empty() {
                        break;
                    }
                    let file = &files[rng.below(files.len() as u64) as usize];
                    let Ok(text) = std::fs::read_to_string(file) else {
                        continue;
                    };
                    let Ok(message) = serde_json::from_str::<Value>(&text) else {
                        continue;
                    };
                    let person = message["recipient"]["person_id"]
                        .as_str()
                        .unwrap_or_default()
                        .to_owned();
                    let Some((_, rest)) = text.split_once("/ack/") else {
                        continue;
                    };
                    let token: String = rest
                        .chars()
                        .take_while(|c| c.is_ascii_alphanumeric() || "._-".contains(*c))
                        .collect();
                    if !done.insert(person.clone()) {
                        continue;
                    }
                    if post_ack(&listen, &format!("/ack/{token}")) == Some(200) {
                        posted.lock().unwrap().push(person);
                    } else {
                        done.remove(&person);
                    }
                    std::thread::sleep(Duration::from_millis(10));
                }
                std::thread::sleep(Duration::from_millis(50));
            }
        })
    };

    // `CASCADE_SOAK_LOGS=DIR` keeps serve's logs there (ids and reasons,
    // never message text) to read after the run.
    let logs = tempfile::tempdir().unwrap();
    let logs_dir = std::env::var_os("CASCADE_SOAK_LOGS")
        .map(PathBuf::from)
        .unwrap_or_else(|| logs.path().to_path_buf());
    std::fs::create_dir_all(&logs_dir).unwrap();
    let kill_rng = Rng(AtomicU64::new(seed ^ 0x4b11));
    // The rows claimed and not recorded when a kill landed, by channel and
    // person: the only sends a repeat is justified for.
    let mut leased_at_kills: HashSet<(String, String)> = HashSet::new();
    for run in 0..KILLS {
        let log = logs_dir.join(format!("{run}.log"));
        let mut child = serve(project, &listen, &log);
        let wait = Duration::from_millis(3_000 + kill_rng.below(25_000));
        tokio::time::sleep(wait).await;
        child.kill().unwrap();
        let status = child.wait().unwrap();
        let leased: Vec<(String, String)> =
            sqlx::query_as("SELECT channel, person_id FROM outbox WHERE state = 'leased'")
                .fetch_all(&db)
                .await
                .unwrap();
        leased_at_kills.extend(leased);
        println!(
            "  run {run}: killed after {:.1} s ({status}); {}",
            wait.as_secs_f64(),
            progress(&db).await
        );
    }
    let last = logs_dir.join("last.log");
    let mut child = serve(project, &listen, &last);
    let last_start = Instant::now();
    let deadline = last_start + Duration::from_secs(600);
    let mut last_said = 0;
    loop {
        let open: i64 =
            sqlx::query_scalar("SELECT COUNT(*) FROM outbox WHERE state NOT IN ('sent', 'dead')")
                .fetch_one(&db)
                .await
                .unwrap();
        let waiting = fake.state.lock().unwrap().pending.len();
        if open == 0 && waiting == 0 {
            println!(
                "  settled {:.0} s after the last start",
                last_start.elapsed().as_secs_f64()
            );
            break;
        }
        if Instant::now() > deadline {
            println!("  gave up waiting: {open} rows not settled, {waiting} presses not taken");
            break;
        }
        // Each channel's pace, every 30 s of the last run.
        let seconds = last_start.elapsed().as_secs();
        if seconds > 0 && seconds.is_multiple_of(30) && seconds != last_said {
            last_said = seconds;
            println!(
                "  {seconds} s after the last start: {}",
                channel_progress(&db).await
            );
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    // Let the last presses and POSTs land, then stop the people.
    tokio::time::sleep(Duration::from_secs(3)).await;
    stop.store(true, Ordering::Relaxed);
    pressing.await.unwrap();
    posting.await.unwrap();
    tokio::time::sleep(Duration::from_secs(2)).await;
    child.kill().unwrap();
    child.wait().unwrap();
    let _ = smtp.kill();
    let _ = smtp.wait();
    let elapsed = started.elapsed();

    let mut failures = Vec::new();
    // 1. One sent row per member and step, or a dead letter.
    let settled = sqlx::query(
        "SELECT rollout_id, person_id, step_kind, step_number,
                SUM(state = 'sent') AS sent, SUM(state = 'dead') AS dead, COUNT(*) AS n
         FROM outbox GROUP BY rollout_id, person_id, step_kind, step_number",
    )
    .fetch_all(&db)
    .await
    .unwrap();
    let (mut sent_rows, mut dead_rows) = (0i64, 0i64);
    let mut unsettled = Vec::new();
    for row in &settled {
        let (sent, dead): (i64, i64) = (row.get("sent"), row.get("dead"));
        sent_rows += sent;
        dead_rows += dead;
        if sent + dead != 1 {
            unsettled.push(format!(
                "{} {} step {}: {sent} sent and {dead} dead rows",
                row.get::<String, _>("rollout_id"),
                row.get::<String, _>("person_id"),
                row.get::<i64, _>("step_number")
            ));
        }
    }
    // A few examples and the count, so the other checks' lines still show.
    failures.extend(unsettled.iter().take(3).cloned());
    if unsettled.len() > 3 {
        failures.push(format!(
            "... {} steps without exactly one sent row or dead letter in all",
            unsettled.len()
        ));
    }
    let members: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM rollout_members")
        .fetch_one(&db)
        .await
        .unwrap();
    if settled.len() as i64 != members {
        failures.push(format!(
            "{members} members but {} steps with rows",
            settled.len()
        ));
    }
    // Justified: the SMTP server always refuses the address (451 for
    // good, or 550, which also marks the address unreachable for the file
    // channel, which writes to the same email identity), or the provider
    // failed every attempt (each with a 3-in-10 chance).
    let unjustified: Vec<(String, String, String)> = sqlx::query_as(
        "SELECT o.rollout_id, o.person_id, COALESCE(o.last_error, '') FROM outbox o
         JOIN people p ON p.id = o.person_id
         WHERE o.state = 'dead'
           AND NOT (o.channel = 'email' AND p.email LIKE 'deferred-%')
           AND NOT (o.channel IN ('email', 'outbox') AND p.email LIKE 'reject-%')
           AND COALESCE(o.last_error, '') NOT LIKE 'gave up after 8 attempts:%'",
    )
    .fetch_all(&db)
    .await
    .unwrap_or_default();
    for (rollout, person, reason) in unjustified.iter().take(5) {
        failures.push(format!("{rollout} {person}: dead without cause: {reason}"));
    }
    if unjustified.len() > 5 {
        failures.push(format!(
            "... {} dead letters without cause in all",
            unjustified.len()
        ));
    }

    // 2. What the providers received against what was recorded sent.
    let by_channel: BTreeMap<String, i64> = sqlx::query_as::<_, (String, i64)>(
        "SELECT channel, COUNT(*) FROM outbox WHERE state = 'sent' GROUP BY channel",
    )
    .fetch_all(&db)
    .await
    .unwrap()
    .into_iter()
    .collect();
    let names: Vec<String> = std::fs::read_dir(&outbox)
        .map(|d| {
            d.filter_map(|e| e.ok().map(|e| e.file_name().to_string_lossy().into_owned()))
                .collect()
        })
        .unwrap_or_default();
    // Each file is named by its delivery id, "d" and the row's id.
    let written: HashSet<i64> = names
        .iter()
        .filter(|n| !n.starts_with('.'))
        .filter_map(|n| n.strip_suffix(".json")?.strip_prefix('d')?.parse().ok())
        .collect();
    let files = written.len();
    let leftovers = names.len() - files;
    let file_rows: Vec<(i64, String, String)> = sqlx::query_as(
        "SELECT o.id, o.state, p.email FROM outbox o JOIN people p ON p.id = o.person_id
         WHERE o.channel = 'outbox'",
    )
    .fetch_all(&db)
    .await
    .unwrap();
    let mut file_justified = 0;
    let mut file_problems = Vec::new();
    for (id, state, email) in &file_rows {
        match (state.as_str(), written.contains(id)) {
            ("sent", true) | ("dead", false) => {}
            ("sent", false) => {
                file_problems.push(format!("outbox row {id} recorded sent but no file"))
            }
            // Written, then (before the store heard, a kill between) the
            // email channel found the address refused for good: the
            // retry after the kill had no address left to write to.
            ("dead", true) if email.starts_with("reject-") => file_justified += 1,
            (state, true) => file_problems.push(format!(
                "outbox row {id} is {state} but its file was written"
            )),
            (state, false) => file_problems.push(format!("outbox row {id} is still {state}")),
        }
    }
    if written.len() > file_rows.len() {
        file_problems.push(format!(
            "{} files but {} rows on the file channel",
            written.len(),
            file_rows.len()
        ));
    }
    failures.extend(file_problems.iter().take(5).cloned());
    if file_problems.len() > 5 {
        failures.push(format!(
            "... {} file channel problems in all",
            file_problems.len()
        ));
    }
    let mut mails: HashMap<String, usize> = HashMap::new();
    let mut email_faults = 0;
    if let Ok(events) = std::fs::read_to_string(mail.path().join("events.jsonl")) {
        for line in events.lines() {
            let event: Value = serde_json::from_str(line).unwrap_or(Value::Null);
            if !event["answer"].as_str().unwrap_or("250").starts_with("250") {
                email_faults += 1;
            }
        }
    }
    for entry in std::fs::read_dir(mail.path()).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "json")
            && let Ok(m) = serde_json::from_str::<Value>(&std::fs::read_to_string(&path).unwrap())
        {
            *mails
                .entry(m["rcpt_tos"][0].as_str().unwrap_or_default().to_owned())
                .or_default() += 1;
        }
    }
    // A long item goes to Telegram in parts: a copy beyond one is the
    // same text in the same chat again. Chat 100000 + n is p-n's.
    let mut repeats: Vec<(&str, String, usize)> = Vec::new();
    let (chats, telegram_extra, telegram_faults) = {
        let state = fake.state.lock().unwrap();
        let mut extra = 0;
        for (chat, messages) in &state.taken {
            let mut seen = HashSet::new();
            let copies = messages
                .iter()
                .filter(|(_, text, _)| !seen.insert(text))
                .count();
            if copies > 0 {
                repeats.push(("telegram", format!("p-{:06}", chat - 100_000), copies));
            }
            extra += copies;
        }
        (state.taken.len(), extra, state.faults)
    };
    for (address, copies) in &mails {
        if *copies > 1 {
            let n: usize = address
                .split('@')
                .next()
                .and_then(|local| local.rsplit('-').next())
                .and_then(|n| n.parse().ok())
                .unwrap_or(usize::MAX);
            repeats.push(("email", format!("p-{n:06}"), copies - 1));
        }
    }
    let (mut justified, mut unjustified_repeats) = (0, Vec::new());
    for (channel, person, copies) in &repeats {
        if leased_at_kills.contains(&(channel.to_string(), person.clone())) {
            justified += copies;
        } else {
            unjustified_repeats.push(format!(
                "{channel}: {person} received {copies} extra cop{} but no kill landed while it was claimed",
                if *copies == 1 { "y" } else { "ies" }
            ));
        }
    }
    failures.extend(unjustified_repeats.iter().take(5).cloned());
    if unjustified_repeats.len() > 5 {
        failures.push(format!(
            "... {} people with repeats not justified by a kill",
            unjustified_repeats.len()
        ));
    }
    let telegram_dead_after_parts: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM outbox WHERE channel = 'telegram' AND state = 'dead'",
    )
    .fetch_one(&db)
    .await
    .unwrap();
    let email_copies: usize = mails.values().sum();
    let email_extra = email_copies.saturating_sub(mails.len());
    let sent = |c: &str| by_channel.get(c).copied().unwrap_or(0);
    if file_justified > 0 {
        println!(
            "  note: {file_justified} files written for addresses the SMTP server then refused for good, recorded dead after a kill (the retry had no address left)"
        );
    }
    if mails.len() as i64 != sent("email") {
        failures.push(format!(
            "{} addresses received mail but {} recorded sent",
            mails.len(),
            sent("email")
        ));
    }
    // A message given up after its first part was taken reached its chat
    // in part.
    if (chats as i64) < sent("telegram")
        || chats as i64 > sent("telegram") + telegram_dead_after_parts
    {
        failures.push(format!(
            "{chats} chats received a message but {} recorded sent",
            sent("telegram")
        ));
    }
    if email_extra > 0 || telegram_extra > 0 {
        println!(
            "  note: {justified} extra copies are sends repeated after a kill landed while they were claimed and not recorded ({} rows were); {} people have a repeat not justified so",
            leased_at_kills.len(),
            unjustified_repeats.len()
        );
    }

    // 3. Every answered press and 200 POST is recorded.
    let acknowledged: HashSet<(String, String)> =
        sqlx::query_as::<_, (String, String)>("SELECT rollout_id, person_id FROM acknowledgements")
            .fetch_all(&db)
            .await
            .unwrap()
            .into_iter()
            .collect();
    let answered_presses = fake.state.lock().unwrap().answered.len();
    let telegram_acks = acknowledged
        .iter()
        .filter(|(r, _)| r == "r-telegram")
        .count();
    // Neither check may hold by having nothing to check.
    if answered_presses == 0 {
        failures.push("no press was answered: the presses' check checked nothing".to_owned());
    }
    if telegram_acks < answered_presses {
        failures.push(format!(
            "{answered_presses} presses answered but {telegram_acks} Telegram acknowledgements"
        ));
    }
    let posted = posted.lock().unwrap().clone();
    let missing: Vec<&String> = posted
        .iter()
        .filter(|p| !acknowledged.contains(&("r-file".to_owned(), (*p).clone())))
        .collect();
    if posted.is_empty() {
        failures.push("no link POST was answered 200: the links' check checked nothing".to_owned());
    }
    if !missing.is_empty() {
        failures.push(format!(
            "{} link POSTs answered 200 but not recorded",
            missing.len()
        ));
    }
    let twice: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM (SELECT 1 FROM acknowledgements GROUP BY person_id, item_id, item_version HAVING COUNT(*) > 1)",
    )
    .fetch_one(&db)
    .await
    .unwrap();
    if twice > 0 {
        failures.push(format!("{twice} acknowledgements recorded twice"));
    }

    // 4. The report's totals against a recount.
    let drift: Vec<(String,)> = sqlx::query_as(
        "SELECT c.rollout_id FROM rollout_counts c WHERE
            c.members != (SELECT COUNT(*) FROM rollout_members m WHERE m.rollout_id = c.rollout_id)
         OR c.acknowledged != (SELECT COUNT(m.acknowledged_at) FROM rollout_members m WHERE m.rollout_id = c.rollout_id)
         OR c.sent != (SELECT COUNT(*) FROM outbox o WHERE o.rollout_id = c.rollout_id AND o.state = 'sent')
         OR c.dead != (SELECT COUNT(*) FROM outbox o WHERE o.rollout_id = c.rollout_id AND o.state = 'dead')",
    )
    .fetch_all(&db)
    .await
    .unwrap();
    for (rollout,) in drift {
        failures.push(format!(
            "{rollout}: the report's totals differ from a recount"
        ));
    }

    println!(
        "{} deliveries ({sent_rows} sent, {dead_rows} dead letters) in {:.0} s with {KILLS} SIGKILLs",
        settled.len(),
        elapsed.as_secs_f64()
    );
    println!(
        "  providers: {files} files; {} addresses mailed, {email_extra} extra copies, {email_faults} SMTP faults answered; {chats} chats, {telegram_extra} extra copies; {telegram_faults} Telegram faults answered",
        mails.len()
    );
    println!(
        "  people: {answered_presses} presses answered, {telegram_acks} Telegram acknowledgements; {} link POSTs answered 200, {} recorded",
        posted.len(),
        posted.len() - missing.len()
    );
    if leftovers > 0 {
        println!(
            "  note: {leftovers} temporary files left in the file channel's folder by a kill mid-write (never read as messages)"
        );
    }
    if failures.len() > 12 {
        let more = failures.len() - 10;
        failures.truncate(10);
        failures.push(format!("... and {more} more"));
    }
    if failures.is_empty() {
        println!("soak passed: every check held");
    } else {
        println!("soak FAILED:");
        for failure in &failures {
            println!("  {failure}");
        }
        std::process::exit(1);
    }
}

/// Sent and open rows a channel.
async fn channel_progress(db: &sqlx::SqlitePool) -> String {
    let rows: Vec<(String, i64, i64)> = sqlx::query_as(
        "SELECT channel, SUM(state = 'sent'), SUM(state NOT IN ('sent', 'dead'))
           FROM outbox GROUP BY channel ORDER BY channel",
    )
    .fetch_all(db)
    .await
    .unwrap_or_default();
    rows.iter()
        .map(|(channel, sent, open)| format!("{channel} {sent} sent, {open} open"))
        .collect::<Vec<_>>()
        .join("; ")
}

async fn progress(db: &sqlx::SqlitePool) -> String {
    let rows: Vec<(String, i64)> =
        sqlx::query_as("SELECT state, COUNT(*) FROM outbox GROUP BY state ORDER BY state")
            .fetch_all(db)
            .await
            .unwrap_or_default();
    rows.iter()
        .map(|(state, n)| format!("{state} {n}"))
        .collect::<Vec<_>>()
        .join(", ")
}
