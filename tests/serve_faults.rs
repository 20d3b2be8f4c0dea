//! `cascade serve` as a child process when things around it go wrong: the
//! readers of its output go away or stop reading, a channel's sends never
//! come back, it is told to stop while sends hang, and messages wait to be
//! retried when it was asked to stop once idle.

#![cfg(unix)]

mod support;

use cascade_test_support::plugin_library;
use std::env::consts::{DLL_PREFIX, DLL_SUFFIX};
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::time::{Duration, Instant};

/// People in the demo directory, all with an email address.
const PEOPLE: usize = 50;

fn cascade(args: &[&str], project: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_cascade"))
        .args(args)
        .arg("--project")
        .arg(project)
        .output()
        .expect("the cascade binary runs")
}

fn succeed(args: &[&str], project: &Path) -> String {
    let out = cascade(args, project);
    assert!(
        out.status.success(),
        "cascade {} failed:\n{}\n{}",
        args.join(" "),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A rollout of the neglect briefing to everyone on `channel`, urgent,
/// started yesterday at noon.
fn rollout(project: &Path, id: &str, channel: &str) -> PathBuf {
    rollout_of(project, id, channel, "7mb-neglect-seeing-the-child")
}

/// As [`rollout`], of `item`.
fn rollout_of(project: &Path, id: &str, channel: &str, item: &str) -> PathBuf {
    let london = chrono::Utc::now().with_timezone(&chrono_tz::Europe::London);
    let start = (london.date_naive() - chrono::Days::new(1))
        .and_hms_opt(12, 0, 0)
        .unwrap();
    support::rollout_file(
        project,
        id,
        &format!(
            "id = \"{id}\"\nitem = \"{item}\"\nstart = {}\nurgent = true\nchannels = [\"{channel}\"]\nack_deadline_days = 28\n\n[[waves]]\nname = \"Everyone\"\nafter_days = 0\n",
            start.format("%Y-%m-%dT%H:%M:%S")
        ),
    )
}

/// The demo project with the file channel `outbox` and, when
/// `send_timeout` is given, the channel `stuck` whose sends are never
/// answered (the `test-hang` plugin) and that send timeout.
fn project(send_timeout: Option<u32>) -> tempfile::TempDir {
    project_with(send_timeout, "")
}

/// As [`project`], with `stuck_extra` (TOML) added to the `stuck` channel.
fn project_with(send_timeout: Option<u32>, stuck_extra: &str) -> tempfile::TempDir {
    let mut channels = support::OUTBOX.to_owned();
    if let Some(seconds) = send_timeout {
        channels = format!(
            "[plugins]\ndirs = [\"PLUGINS\"]\nsend_timeout_seconds = {seconds}\n{channels}\n[[channels]]\nname = \"stuck\"\nplugin = \"test-hang\"\nidentity = \"email\"\nformats = [\"email-text\"]\n{stuck_extra}\n"
        );
    }
    let plugins = tempfile::tempdir().unwrap().keep();
    std::fs::copy(
        plugin_library("cascade-testplugin-hang"),
        plugins.join(format!("{DLL_PREFIX}cascade_plugin_hang{DLL_SUFFIX}")),
    )
    .unwrap();
    support::project(&channels.replace("PLUGINS", &plugins.display().to_string()))
}

fn delivered(project: &Path) -> usize {
    std::fs::read_dir(project.join("outbox"))
        .map(|files| {
            files
                .filter(|f| {
                    f.as_ref()
                        .is_ok_and(|f| f.file_name().to_string_lossy().ends_with(".json"))
                })
                .count()
        })
        .unwrap_or(0)
}

fn serve(project: &Path, extra: &[&str], stdout: Stdio, stderr: Stdio) -> Child {
    Command::new(env!("CARGO_BIN_EXE_cascade"))
        .args(["serve", "--listen", "127.0.0.1:0", "--project"])
        .arg(project)
        .args(extra)
        .stdin(Stdio::null())
        .stdout(stdout)
        .stderr(stderr)
        .spawn()
        .expect("cascade serve starts")
}

/// Waits up to `limit` for the child to stop; kills it and fails if it
/// does not.
fn wait(child: &mut Child, limit: Duration, what: &str) -> ExitStatus {
    let started = Instant::now();
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        if started.elapsed() > limit {
            let _ = child.kill();
            let _ = child.wait();
            panic!("{what}: still running after {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// All a stopped child (started with its stderr piped) wrote to stderr.
fn stderr_of(child: &mut Child) -> String {
    let mut stderr = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut stderr)
        .unwrap();
    stderr
}

fn wait_until(limit: Duration, what: &str, mut done: impl FnMut() -> bool) {
    let started = Instant::now();
    while !done() {
        assert!(started.elapsed() < limit, "{what} within {limit:?}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// The counts on a channel's row of `cascade status <rollout>`: due,
/// sending, sent, retrying, dead.
fn status_counts(project: &Path, rollout: &str, channel: &str) -> [u64; 5] {
    let stdout = succeed(&["status", rollout], project);
    let Some(row) = stdout
        .lines()
        .find(|l| l.trim_start().starts_with(&format!("{channel} ")))
    else {
        return [0; 5];
    };
    let numbers: Vec<u64> = row
        .split_whitespace()
        .skip(1)
        .take(5)
        .map(|n| n.parse().unwrap_or_else(|_| panic!("{row}")))
        .collect();
    numbers.try_into().unwrap()
}

/// `cascade serve | head -1` exited 101 at start (a panic printing to a
/// closed stdout), and a stderr piped through a filter that exits made a
/// store thread panic. Both readers here go away before anything is
/// written, and the log is as talkative as it gets.
#[test]
fn serve_goes_on_when_the_readers_of_its_output_go_away() {
    let dir = project(None);
    let file = rollout(dir.path(), "now", "outbox");
    succeed(&["rollout", "start", file.to_str().unwrap()], dir.path());
    let mut child = Command::new(env!("CARGO_BIN_EXE_cascade"))
        .args([
            "serve",
            "--until-idle",
            "--listen",
            "127.0.0.1:0",
            "--project",
        ])
        .arg(dir.path())
        .env("RUST_LOG", "trace")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stdout.take());
    drop(child.stderr.take());
    let status = wait(&mut child, Duration::from_secs(120), "serve --until-idle");
    assert!(status.success(), "{status}");
    assert_eq!(delivered(dir.path()), PEOPLE);
}

/// A stderr nobody reads fills its pipe; logging must then drop lines
/// rather than stop the engine.
#[test]
fn serve_never_waits_for_a_log_reader_who_does_not_read() {
    let dir = project(None);
    let file = rollout(dir.path(), "now", "outbox");
    succeed(&["rollout", "start", file.to_str().unwrap()], dir.path());
    // A pipe of one page, held open and never read while serve runs: the
    // trace log (tens of kilobytes) fills it at once.
    let (mut unread, writer) = std::io::pipe().unwrap();
    // SAFETY: F_SETPIPE_SZ on a pipe we own.
    let size = unsafe {
        libc::fcntl(
            std::os::fd::AsRawFd::as_raw_fd(&writer),
            libc::F_SETPIPE_SZ,
            4096,
        )
    };
    assert!(size >= 4096, "{}", std::io::Error::last_os_error());
    let mut child = Command::new(env!("CARGO_BIN_EXE_cascade"))
        .args([
            "serve",
            "--until-idle",
            "--listen",
            "127.0.0.1:0",
            "--project",
        ])
        .arg(dir.path())
        .env("RUST_LOG", "trace")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(writer)
        .spawn()
        .unwrap();
    let status = wait(&mut child, Duration::from_secs(120), "serve --until-idle");
    assert!(status.success(), "{status}");
    assert_eq!(delivered(dir.path()), PEOPLE);
    let mut logged = Vec::new();
    unread.read_to_end(&mut logged).unwrap();
    assert!(logged.len() <= size as usize, "{} bytes", logged.len());
    assert!(!logged.contains(&0x1b), "colour codes in a pipe");
}

/// A command whose stdout closes before it prints stops quietly, as Unix
/// tools do, rather than panicking.
#[test]
fn a_command_whose_reader_has_gone_stops_without_a_panic() {
    let dir = project(None);
    let mut child = Command::new(env!("CARGO_BIN_EXE_cascade"))
        .args(["plugins", "--project"])
        .arg(dir.path())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stdout.take());
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_ne!(out.status.code(), Some(101), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
}

/// Found in an acceptance run: the sends of one rollout hung on a dead
/// SMTP server, nothing else was claimed, and SIGTERM never finished the
/// shutdown. Here one channel never answers (sends time out after ten
/// minutes): a rollout started later on another channel is still sent,
/// and SIGTERM ends `serve` within its --stop-within, leaving the hung
/// sends leased for a later run.
#[test]
fn a_channel_that_never_answers_holds_up_neither_other_rollouts_nor_shutdown() {
    let dir = project(Some(600));
    let file = rollout(dir.path(), "stuck", "stuck");
    succeed(&["rollout", "start", file.to_str().unwrap()], dir.path());
    let log = dir.path().join("serve.log");
    let file = std::fs::File::create(&log).unwrap();
    let mut child = serve(
        dir.path(),
        &["--stop-within", "2"],
        Stdio::from(file.try_clone().unwrap()),
        Stdio::from(file),
    );
    let read_log = || std::fs::read_to_string(&log).unwrap_or_default();
    wait_until(Duration::from_secs(60), "the stuck sends claimed", || {
        status_counts(dir.path(), "stuck", "stuck")[1] == PEOPLE as u64
    });

    let file = rollout_of(dir.path(), "later", "outbox", "7mb-safer-sleep");
    succeed(&["rollout", "start", file.to_str().unwrap()], dir.path());
    wait_until(
        Duration::from_secs(30),
        "the later rollout sent on its own channel",
        || delivered(dir.path()) == PEOPLE,
    );

    let stopping = Instant::now();
    // SAFETY: signalling our own child by its pid.
    unsafe {
        libc::kill(child.id() as libc::pid_t, libc::SIGTERM);
    }
    let status = wait(&mut child, Duration::from_secs(30), "serve after SIGTERM");
    assert!(status.success(), "{status}:\n{}", read_log());
    assert!(
        stopping.elapsed() < Duration::from_secs(20),
        "took {:?} to stop",
        stopping.elapsed()
    );
    assert!(
        read_log().contains("sent again once their lease runs out"),
        "{}",
        read_log()
    );
    assert_eq!(
        status_counts(dir.path(), "stuck", "stuck")[1],
        PEOPLE as u64,
        "the unanswered sends stay leased"
    );
}

/// Claims are fair per channel (issue 21's fault soak: Telegram waited
/// behind a faulty SMTP server). Three channels that never answer hold 50
/// sends each: less than half a batch (128) apiece, but 150 together,
/// which stopped every claim while claims were one batch for all
/// channels. A rollout started later on the file channel is sent at once.
#[test]
fn several_slow_channels_together_never_hold_back_another_channels_rows() {
    let mut channels = format!(
        "[plugins]\ndirs = [\"PLUGINS\"]\nsend_timeout_seconds = 600\n{}",
        support::OUTBOX
    );
    for name in ["stuck", "stuck-b", "stuck-c"] {
        channels.push_str(&format!(
            "\n[[channels]]\nname = \"{name}\"\nplugin = \"test-hang\"\nidentity = \"email\"\nformats = [\"email-text\"]\n"
        ));
    }
    let plugins = tempfile::tempdir().unwrap();
    std::fs::copy(
        plugin_library("cascade-testplugin-hang"),
        plugins
            .path()
            .join(format!("{DLL_PREFIX}cascade_plugin_hang{DLL_SUFFIX}")),
    )
    .unwrap();
    let dir = support::project(&channels.replace("PLUGINS", &plugins.path().display().to_string()));
    for (name, item) in [
        ("stuck", "7mb-neglect-seeing-the-child"),
        ("stuck-b", "7mb-cce-county-lines"),
        ("stuck-c", "lcspr-child-b-2026"),
    ] {
        let file = rollout_of(dir.path(), name, name, item);
        succeed(&["rollout", "start", file.to_str().unwrap()], dir.path());
    }
    let log = dir.path().join("serve.log");
    let file = std::fs::File::create(&log).unwrap();
    let mut child = serve(
        dir.path(),
        &[],
        Stdio::from(file.try_clone().unwrap()),
        Stdio::from(file),
    );
    wait_until(Duration::from_secs(60), "the stuck sends claimed", || {
        ["stuck", "stuck-b", "stuck-c"]
            .iter()
            .all(|name| status_counts(dir.path(), name, name)[1] == PEOPLE as u64)
    });

    let file = rollout_of(dir.path(), "later", "outbox", "7mb-safer-sleep");
    succeed(&["rollout", "start", file.to_str().unwrap()], dir.path());
    let started = Instant::now();
    let sent = (|| {
        while started.elapsed() < Duration::from_secs(30) {
            if delivered(dir.path()) == PEOPLE {
                return true;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        false
    })();
    let _ = child.kill();
    let _ = child.wait();
    assert!(
        sent,
        "the later rollout on the file channel: {} of {PEOPLE} sent within 30 s while three other channels hung\n{}",
        delivered(dir.path()),
        std::fs::read_to_string(&log).unwrap_or_default()
    );
}

/// One `cascade serve` per project, and a restart after a SIGKILL sends
/// what the killed one had claimed at once (issue 21: the leased rows used
/// to wait for the whole lease). A second serve while the first runs is
/// refused, naming the lock and the fix, and takes none of its rows; once
/// the first is killed, a new serve takes its leases back at start and
/// finishes long before the 600 s lease would have run out.
#[test]
fn a_second_serve_is_refused_and_a_restart_after_a_kill_sends_the_killed_ones_rows_at_once() {
    let dir = project(Some(600));
    let file = rollout(dir.path(), "stuck", "stuck");
    succeed(&["rollout", "start", file.to_str().unwrap()], dir.path());
    let log = dir.path().join("serve.log");
    let file = std::fs::File::create(&log).unwrap();
    let lease = ["--lease-seconds", "600"];
    let mut first = serve(
        dir.path(),
        &lease,
        Stdio::from(file.try_clone().unwrap()),
        Stdio::from(file),
    );
    wait_until(Duration::from_secs(60), "the stuck sends claimed", || {
        status_counts(dir.path(), "stuck", "stuck")[1] == PEOPLE as u64
    });

    let mut second = serve(dir.path(), &lease, Stdio::null(), Stdio::piped());
    let status = wait(&mut second, Duration::from_secs(60), "a second serve");
    let mut refusal = String::new();
    second
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut refusal)
        .unwrap();
    assert!(!status.success(), "{status}: {refusal}");
    assert!(
        refusal.contains("another cascade serve is already running")
            && refusal.contains(".serve-lock")
            && refusal.contains(&format!("process {}", first.id()))
            && refusal.contains("help: stop the other one first"),
        "{refusal}"
    );
    assert_eq!(
        status_counts(dir.path(), "stuck", "stuck")[1],
        PEOPLE as u64,
        "the running serve's claims are left alone"
    );
    assert!(
        first.try_wait().unwrap().is_none(),
        "the first serve runs on"
    );

    // SIGKILL: its 50 claims stay leased for 600 s unless taken back.
    first.kill().unwrap();
    first.wait().unwrap();
    assert_eq!(
        status_counts(dir.path(), "stuck", "stuck")[1],
        PEOPLE as u64
    );
    // The channel answers now (the file plugin under the same name).
    let config = dir.path().join("cascade.toml");
    let toml = std::fs::read_to_string(&config).unwrap();
    let answering = toml.replace(
        "name = \"stuck\"\nplugin = \"test-hang\"\n",
        "name = \"stuck\"\nplugin = \"file\"\nconfig = { dir = \"stuck-out\" }\n",
    );
    assert_ne!(answering, toml);
    std::fs::write(&config, answering).unwrap();
    let log = dir.path().join("restart.log");
    let file = std::fs::File::create(&log).unwrap();
    let started = Instant::now();
    let mut restart = serve(
        dir.path(),
        &["--lease-seconds", "600", "--until-idle"],
        Stdio::from(file.try_clone().unwrap()),
        Stdio::from(file),
    );
    let status = wait(
        &mut restart,
        Duration::from_secs(90),
        "the restart (the killed serve's rows waiting for their lease?)",
    );
    let restart_log = std::fs::read_to_string(&log).unwrap_or_default();
    assert!(status.success(), "{status}:\n{restart_log}");
    assert!(
        restart_log.contains("took back the messages an earlier serve had claimed"),
        "{restart_log}"
    );
    let [due, sending, sent, retrying, dead] = status_counts(dir.path(), "stuck", "stuck");
    assert_eq!(
        (due, sending, sent, retrying, dead),
        (0, 0, PEOPLE as u64, 0, 0)
    );
    let files = std::fs::read_dir(dir.path().join("stuck-out"))
        .unwrap()
        .filter(|f| {
            f.as_ref()
                .is_ok_and(|f| f.file_name().to_string_lossy().ends_with(".json"))
        })
        .count();
    assert_eq!(files, PEOPLE);
    println!(
        "restart sent the killed serve's rows in {:?}",
        started.elapsed()
    );
}

/// `--until-idle` stops once nothing is left to send now: messages
/// waiting to be retried later do not keep it running.
#[test]
fn until_idle_stops_with_retries_waiting_and_says_so_in_status() {
    let dir = project(Some(1));
    let file = rollout(dir.path(), "stuck", "stuck");
    succeed(&["rollout", "start", file.to_str().unwrap()], dir.path());
    let mut child = serve(dir.path(), &["--until-idle"], Stdio::null(), Stdio::piped());
    let status = wait(&mut child, Duration::from_secs(60), "serve --until-idle");
    let stderr = stderr_of(&mut child);
    assert!(status.success(), "{status}: {stderr}");
    let [due, sending, sent, retrying, dead] = status_counts(dir.path(), "stuck", "stuck");
    assert_eq!(
        (due, sending, sent, retrying, dead),
        (0, 0, 0, PEOPLE as u64, 0)
    );
    // With the reason, in the rollout's status and in the overview.
    let reason =
        format!("got no answer from the plugin within 1s ({PEOPLE} messages wait to be retried)");
    let detail = succeed(&["status", "stuck"], dir.path());
    assert!(detail.contains("last error per channel:"), "{detail}");
    assert!(detail.contains(&reason), "{detail}");
    let overview = succeed(&["status"], dir.path());
    assert!(overview.contains(&reason), "{overview}");
}

/// A round of work that fails while the store answers (a fault of the
/// round, not of the database) is tried again after a second, at most
/// `ROUND_FAULTS_AT_MOST` (3) times running; the next failure stops the
/// serve with the error and a failing exit, rather than spinning on it.
/// Here every claim fails: a trigger in the store refuses to lease a row.
#[test]
fn a_round_that_keeps_failing_while_the_store_answers_stops_the_serve_after_three_tries() {
    let dir = project(None);
    let file = rollout(dir.path(), "now", "outbox");
    succeed(&["rollout", "start", file.to_str().unwrap()], dir.path());
    let db = dir.path().join(".cascade/cascade.db");
    assert!(db.exists(), "{}", db.display());
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(async {
            let pool = sqlx::SqlitePool::connect(&format!("sqlite://{}", db.display()))
                .await
                .unwrap();
            sqlx::query(
                "CREATE TRIGGER test_refuses_leases BEFORE UPDATE OF state ON outbox
                 WHEN NEW.state = 'leased'
                 BEGIN SELECT RAISE(ABORT, 'the test refuses to lease this row'); END",
            )
            .execute(&pool)
            .await
            .unwrap();
            pool.close().await;
        });
    let mut child = serve(dir.path(), &[], Stdio::null(), Stdio::piped());
    let status = wait(
        &mut child,
        Duration::from_secs(60),
        "serve whose rounds fail",
    );
    let stderr = stderr_of(&mut child);
    assert!(!status.success(), "{status}: {stderr}");
    for n in 1..=3 {
        assert!(
            stderr.contains(&format!("tried again in 1 s ({n} of 3)")),
            "try {n}: {stderr}"
        );
    }
    assert!(!stderr.contains("(4 of 3)"), "{stderr}");
    assert!(
        stderr.contains("the test refuses to lease this row"),
        "{stderr}"
    );
    assert_eq!(delivered(dir.path()), 0);
}

/// The address `serve` (started with its stdout piped) says it listens on.
fn address_of(child: &mut Child) -> String {
    let mut first_line = Vec::new();
    let mut stdout = child.stdout.take().unwrap();
    let mut byte = [0];
    while stdout.read(&mut byte).unwrap() == 1 && byte[0] != b'\n' {
        first_line.push(byte[0]);
    }
    let first_line = String::from_utf8(first_line).unwrap();
    first_line
        .split("http://")
        .nth(1)
        .and_then(|rest| rest.split('/').next())
        .unwrap_or_else(|| panic!("no address in {first_line:?}"))
        .to_owned()
}

/// GET `path` from `address` (`127.0.0.1:port`): the status and body.
fn get(address: &str, path: &str) -> (u16, String) {
    request(address, "GET", path)
}

/// `method` `path` (no body) to `address`: the status and body.
fn request(address: &str, method: &str, path: &str) -> (u16, String) {
    use std::io::Write;
    let mut stream = std::net::TcpStream::connect(address).unwrap();
    write!(
        stream,
        "{method} {path} HTTP/1.0\r\nHost: cascade\r\nContent-Length: 0\r\n\r\n"
    )
    .unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    let status = response[9..12].parse().unwrap();
    let body = response
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_owned())
        .unwrap_or_default();
    (status, body)
}

/// Found against an independent Discord: a channel that could not start
/// (there, a 429 on registering commands) made `serve` exit with every
/// channel stopped. Here a file channel cannot start (its folder is a
/// file): `serve` runs the other channel, `/health` says which part is
/// down and why, and once the cause is gone the channel starts and its
/// messages go.
#[test]
fn a_channel_that_cannot_start_is_down_in_health_while_the_others_serve_and_starts_later() {
    let blocked = "\n[[channels]]\nname = \"blocked\"\nplugin = \"file\"\nidentity = \"email\"\nformats = [\"email-text\"]\nconfig = { dir = \"blocked\" }\n";
    let dir = support::project(&format!("{}{blocked}", support::OUTBOX));
    let blocker = dir.path().join("blocked");
    std::fs::write(&blocker, "a file where the channel's folder should be").unwrap();
    let file = rollout(dir.path(), "first", "outbox");
    succeed(&["rollout", "start", file.to_str().unwrap()], dir.path());
    let file = rollout_of(dir.path(), "second", "blocked", "7mb-safer-sleep");
    succeed(&["rollout", "start", file.to_str().unwrap()], dir.path());

    let mut child = serve(dir.path(), &[], Stdio::piped(), Stdio::null());
    let address = address_of(&mut child);

    wait_until(Duration::from_secs(60), "the working channel sent", || {
        delivered(dir.path()) == PEOPLE
    });
    let (status, body) = get(&address, "/health");
    assert_eq!(status, 503, "{body}");
    let health: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(health["status"], "degraded");
    assert_eq!(health["store"], "ok");
    assert_eq!(health["channels"]["outbox"]["state"], "up");
    assert_eq!(health["channels"]["blocked"]["state"], "down");
    assert!(
        health["channels"]["blocked"]["reason"]
            .as_str()
            .unwrap()
            .contains("blocked"),
        "{body}"
    );
    // `cascade status`, another process, says so too.
    let line_of = |stdout: &str, channel: &str| {
        stdout
            .lines()
            .find(|l| l.trim_start().starts_with(&format!("{channel} ")))
            .map(str::to_owned)
    };
    wait_until(Duration::from_secs(30), "status shows the channels", || {
        line_of(&succeed(&["status"], dir.path()), "blocked").is_some()
    });
    let overview = succeed(&["status"], dir.path());
    assert!(
        line_of(&overview, "outbox").is_some_and(|l| l.contains("up since")),
        "{overview}"
    );
    let blocked = line_of(&overview, "blocked").unwrap();
    assert!(
        blocked.contains("DOWN since")
            && blocked.contains("blocked")
            && blocked.contains("tries it again"),
        "{overview}"
    );

    std::fs::remove_file(&blocker).unwrap();
    let sent_later = || {
        std::fs::read_dir(&blocker)
            .map(|d| {
                d.filter(|f| {
                    f.as_ref()
                        .is_ok_and(|f| f.file_name().to_string_lossy().ends_with(".json"))
                })
                .count()
            })
            .unwrap_or(0)
    };
    wait_until(
        Duration::from_secs(90),
        "the channel started and sent",
        || sent_later() == PEOPLE,
    );
    let (status, body) = get(&address, "/health");
    assert_eq!(status, 200, "{body}");
    wait_until(
        Duration::from_secs(30),
        "status shows the channel up",
        || {
            line_of(&succeed(&["status"], dir.path()), "blocked")
                .is_some_and(|l| l.contains("up since"))
        },
    );
    // SAFETY: signalling our own child by its pid.
    unsafe {
        libc::kill(child.id() as libc::pid_t, libc::SIGTERM);
    }
    assert!(wait(&mut child, Duration::from_secs(30), "serve after SIGTERM").success());
}

/// A channel's own `retry` settings: with `max_attempts = 1`, a send that
/// got no answer is given up at once rather than retried.
#[test]
fn a_channels_own_retry_settings_decide_when_a_message_is_given_up() {
    let dir = project_with(Some(1), "retry = { max_attempts = 1 }");
    let file = rollout(dir.path(), "stuck", "stuck");
    succeed(&["rollout", "start", file.to_str().unwrap()], dir.path());
    let mut child = serve(dir.path(), &["--until-idle"], Stdio::null(), Stdio::null());
    assert!(wait(&mut child, Duration::from_secs(60), "serve --until-idle").success());
    let [_, _, sent, retrying, dead] = status_counts(dir.path(), "stuck", "stuck");
    assert_eq!((sent, retrying, dead), (0, 0, PEOPLE as u64));
}

/// `cascade backup` while `serve` sends a rollout; `restore` refuses while
/// `serve` has the store open, and once it has stopped puts the backup back
/// (keeping the replaced database), from which the next `serve` finishes
/// the rollout with every person sent to.
#[test]
fn a_backup_taken_while_serve_sends_is_restored_once_it_stops() {
    let dir = project(None);
    let file = rollout(dir.path(), "now", "outbox");
    succeed(&["rollout", "start", file.to_str().unwrap()], dir.path());
    let mut child = serve(dir.path(), &[], Stdio::null(), Stdio::null());
    let backups = tempfile::tempdir().unwrap();
    let early = backups.path().join("early.db");
    let out = succeed(&["backup", "--out", early.to_str().unwrap()], dir.path());
    assert!(out.contains("integrity checked"), "{out}");
    wait_until(Duration::from_secs(60), "every person sent to", || {
        delivered(dir.path()) == PEOPLE
    });
    let late = backups.path().join("late.db");
    succeed(&["backup", "--out", late.to_str().unwrap()], dir.path());
    let again = cascade(&["backup", "--out", late.to_str().unwrap()], dir.path());
    assert!(!again.status.success());
    assert!(String::from_utf8_lossy(&again.stderr).contains("already exists"));

    let refused = cascade(&["restore", early.to_str().unwrap()], dir.path());
    assert!(!refused.status.success());
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(
        stderr.contains("is open in another process") && stderr.contains("stop `cascade serve`"),
        "{stderr}"
    );

    // SAFETY: signalling our own child.
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    assert!(wait(&mut child, Duration::from_secs(60), "serve after SIGTERM").success());

    let out = succeed(&["restore", early.to_str().unwrap()], dir.path());
    assert!(out.contains("restored"), "{out}");
    assert!(out.contains("kept as"), "{out}");
    let [_, _, sent_in_backup, _, _] = status_counts(dir.path(), "now", "outbox");
    assert!(sent_in_backup <= PEOPLE as u64);
    let mut child = serve(dir.path(), &["--until-idle"], Stdio::null(), Stdio::null());
    assert!(wait(&mut child, Duration::from_secs(120), "serve --until-idle").success());
    assert_eq!(
        status_counts(dir.path(), "now", "outbox"),
        [0, 0, PEOPLE as u64, 0, 0]
    );

    // The late backup has the whole rollout sent.
    let out = succeed(&["restore", late.to_str().unwrap()], dir.path());
    assert!(out.contains(&format!("{PEOPLE} people")), "{out}");
    assert_eq!(
        status_counts(dir.path(), "now", "outbox"),
        [0, 0, PEOPLE as u64, 0, 0]
    );
}

/// `--log-format json`: every line on stderr is one JSON object with a
/// timestamp and level (and cascade's own a message), also the error that
/// ends a command, and none carries a colour code.
#[test]
fn json_logs_are_one_object_a_line() {
    let dir = project(None);
    let file = rollout(dir.path(), "now", "outbox");
    succeed(&["rollout", "start", file.to_str().unwrap()], dir.path());
    let out = Command::new(env!("CARGO_BIN_EXE_cascade"))
        .args([
            "--log-format",
            "json",
            "serve",
            "--until-idle",
            "--listen",
            "127.0.0.1:0",
            "--project",
        ])
        .arg(dir.path())
        .env("RUST_LOG", "debug")
        .output()
        .unwrap();
    assert!(out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    let lines: Vec<&str> = stderr.lines().collect();
    assert!(lines.len() > 3, "{stderr}");
    for line in &lines {
        let event: serde_json::Value =
            serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line}"));
        assert!(event["timestamp"].is_string(), "{line}");
        assert!(event["level"].is_string(), "{line}");
        assert!(!line.contains('\u{1b}'), "{line}");
    }
    let ours: Vec<serde_json::Value> = lines
        .iter()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .filter(|e| {
            e["target"]
                .as_str()
                .is_some_and(|t| t.starts_with("cascade"))
        })
        .collect();
    assert!(!ours.is_empty(), "{stderr}");
    assert!(ours.iter().all(|e| e["message"].is_string()), "{stderr}");

    let failed = Command::new(env!("CARGO_BIN_EXE_cascade"))
        .args(["backup", "--out"])
        .arg(&file)
        .arg("--project")
        .arg(dir.path())
        .env("CASCADE_LOG_FORMAT", "json")
        .output()
        .unwrap();
    assert!(!failed.status.success());
    let stderr = String::from_utf8_lossy(&failed.stderr);
    let last = stderr
        .lines()
        .last()
        .unwrap_or_else(|| panic!("nothing on stderr"));
    let event: serde_json::Value =
        serde_json::from_str(last).unwrap_or_else(|e| panic!("{e}: {stderr}"));
    assert_eq!(event["level"], "ERROR", "{last}");
    assert!(
        event["message"]
            .as_str()
            .unwrap()
            .contains("already exists"),
        "{last}"
    );
}

/// The sum of the samples of `name` on a Prometheus text page whose labels
/// include every one of `labels`.
fn sample(page: &str, name: &str, labels: &[(&str, &str)]) -> f64 {
    page.lines()
        .filter(|line| !line.starts_with('#'))
        .filter_map(|line| line.rsplit_once(' '))
        .filter(|(series, _)| {
            let (metric, rest) = series.split_once('{').unwrap_or((series, ""));
            metric == name
                && labels
                    .iter()
                    .all(|(k, v)| rest.contains(&format!("{k}=\"{v}\"")))
        })
        .map(|(_, value)| value.parse::<f64>().unwrap())
        .sum()
}

/// The acknowledgement link tokens in the file channel's messages.
fn ack_tokens(project: &Path) -> Vec<String> {
    let mut tokens = Vec::new();
    for file in std::fs::read_dir(project.join("outbox")).unwrap() {
        let text = std::fs::read_to_string(file.unwrap().path()).unwrap();
        if let Some((_, rest)) = text.split_once("/ack/") {
            let token: String = rest
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || "._-".contains(*c))
                .collect();
            tokens.push(token);
        }
    }
    tokens
}

/// `/metrics` while `serve` sends a rollout and people acknowledge: the
/// send, acknowledgement and plugin-latency figures move with them, the
/// queue gauges come back to 0, the channel is up, and no person is named.
#[test]
fn metrics_move_with_a_rollout_and_its_acknowledgements() {
    let dir = project(None);
    let file = rollout(dir.path(), "now", "outbox");
    succeed(&["rollout", "start", file.to_str().unwrap()], dir.path());
    let mut child = serve(dir.path(), &[], Stdio::piped(), Stdio::null());
    let address = address_of(&mut child);
    wait_until(Duration::from_secs(60), "every person sent to", || {
        let (_, page) = get(&address, "/metrics");
        sample(
            &page,
            "cascade_sends_total",
            &[("channel", "outbox"), ("outcome", "sent")],
        ) == PEOPLE as f64
    });
    let tokens = ack_tokens(dir.path());
    assert_eq!(tokens.len(), PEOPLE);
    for token in &tokens[..3] {
        assert_eq!(request(&address, "POST", &format!("/ack/{token}")).0, 200);
    }
    assert_eq!(
        request(&address, "POST", &format!("/ack/{}", tokens[0])).0,
        200
    );

    let (status, page) = get(&address, "/metrics");
    assert_eq!(status, 200);
    assert_eq!(
        sample(
            &page,
            "cascade_acknowledgements_total",
            &[("outcome", "recorded")]
        ),
        3.0,
        "{page}"
    );
    assert_eq!(
        sample(
            &page,
            "cascade_acknowledgements_total",
            &[("outcome", "repeat")]
        ),
        1.0
    );
    assert_eq!(
        sample(&page, "cascade_sends_total", &[("outcome", "dead")]),
        0.0
    );
    assert_eq!(
        sample(
            &page,
            "cascade_plugin_call_seconds_count",
            &[("channel", "outbox"), ("call", "send")]
        ),
        PEOPLE as f64
    );
    for gauge in [
        "cascade_queue_due",
        "cascade_queue_leased",
        "cascade_queue_retrying",
    ] {
        assert_eq!(
            sample(&page, gauge, &[("channel", "outbox")]),
            0.0,
            "{gauge}"
        );
    }
    assert!(
        page.contains("cascade_queue_due{channel=\"outbox\"} 0"),
        "{page}"
    );
    assert_eq!(
        sample(&page, "cascade_channel_up", &[("channel", "outbox")]),
        1.0
    );
    assert!(page.contains("# HELP cascade_sends_total"), "{page}");
    for name in ["Tom Reilly", "p-tom-reilly", "@"] {
        assert!(!page.contains(name), "{name} on /metrics");
    }
    // SAFETY: signalling our own child by its pid.
    unsafe {
        libc::kill(child.id() as libc::pid_t, libc::SIGTERM);
    }
    assert!(wait(&mut child, Duration::from_secs(30), "serve after SIGTERM").success());
}
