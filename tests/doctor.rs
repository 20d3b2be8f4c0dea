//! `cascade doctor` on the demo project: ready as made, and each kind of
//! problem it reports named with what to do.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn cascade(args: &[&str], cwd: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_cascade"))
        .args(args)
        .current_dir(cwd)
        .output()
        .expect("the cascade binary runs")
}

/// A demo project, imported unless `import` is false.
fn demo(import: bool) -> (tempfile::TempDir, PathBuf) {
    let tmp = tempfile::tempdir().unwrap();
    assert!(cascade(&["init", "demo"], tmp.path()).status.success());
    let project = tmp.path().join("demo");
    if import {
        assert!(
            cascade(&["import", "--project", "demo"], tmp.path())
                .status
                .success()
        );
    }
    (tmp, project)
}

fn append(project: &Path, file: &str, text: &str) {
    let path = project.join(file);
    let mut old = std::fs::read_to_string(&path).unwrap_or_default();
    old.push_str(text);
    std::fs::write(path, old).unwrap();
}

/// Runs doctor: whether it passed, and its report.
fn doctor(project: &Path) -> (bool, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_cascade"))
        .args(["doctor", "--project"])
        .arg(project)
        .env_remove("CASCADE_DOCTOR_TEST_UNSET")
        .output()
        .unwrap();
    let report = String::from_utf8_lossy(&out.stdout).into_owned();
    (out.status.success(), report)
}

/// The report says `problem` on a PROBLEM line, followed within its
/// next few lines by `fix`.
fn assert_problem(report: &str, problem: &str, fix: &str) {
    let lines: Vec<&str> = report.lines().collect();
    let at = lines
        .iter()
        .position(|l| l.starts_with("PROBLEM") && l.contains(problem))
        .unwrap_or_else(|| panic!("no problem {problem:?} in:\n{report}"));
    let said = lines[at..lines.len().min(at + 5)].join("\n");
    assert!(
        said.contains(fix),
        "no fix {fix:?} after {problem:?} in:\n{report}"
    );
}

#[test]
fn the_demo_project_is_ready() {
    let (_tmp, project) = demo(true);
    let (passed, report) = doctor(&project);
    assert!(passed, "{report}");
    for part in [
        "ok       config:",
        "ok       content and directory: 9 items, 50 people",
        "ok       store:",
        "ok       plugins: file",
        "ok       channel \"outbox\" (file): started",
    ] {
        assert!(report.contains(part), "no {part:?} in:\n{report}");
    }
    assert!(
        report.contains("warning  links: http://localhost:8080"),
        "{report}"
    );
    assert!(
        report
            .trim_end()
            .ends_with("cascade looks ready (1 warning above)")
    );
}

#[test]
fn a_broken_config_is_named_with_its_line() {
    let (_tmp, project) = demo(true);
    append(&project, "cascade.toml", "\n[[channels]\nname = 3\n");
    let (passed, report) = doctor(&project);
    assert!(!passed);
    assert_problem(&report, "cascade.toml", "correct");
    let at = report.find("cascade.toml:").unwrap() + "cascade.toml:".len();
    assert!(
        report[at..].starts_with(|c: char| c.is_ascii_digit()),
        "no line number in:\n{report}"
    );
}

#[test]
fn a_store_not_yet_imported_says_import() {
    let (_tmp, project) = demo(false);
    let (passed, report) = doctor(&project);
    assert!(!passed);
    assert_problem(&report, "does not exist yet", "run `cascade import`");
    // Doctor does not create it.
    assert!(!project.join(".cascade/cascade.db").exists());
}

#[test]
fn a_damaged_store_says_restore_a_backup() {
    let (_tmp, project) = demo(true);
    // The store as one file (what a backup is), then a page in its
    // middle overwritten: it opens, and SQLite's check finds the damage.
    let db = project.join(".cascade/cascade.db");
    let whole = project.join("whole.db");
    let out = Command::new(env!("CARGO_BIN_EXE_cascade"))
        .args(["backup", "--out"])
        .arg(&whole)
        .arg("--project")
        .arg(&project)
        .output()
        .unwrap();
    assert!(out.status.success());
    let mut bytes = std::fs::read(&whole).unwrap();
    let page = 4096;
    assert!(bytes.len() > 8 * page);
    for byte in &mut bytes[4 * page + 100..5 * page] {
        *byte = 0x5A;
    }
    for suffix in ["-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{suffix}", db.display()));
    }
    std::fs::write(&db, bytes).unwrap();
    let (passed, report) = doctor(&project);
    assert!(!passed);
    assert_problem(&report, "store", "cascade restore");
}

#[test]
fn a_missing_secret_names_its_variable_not_a_value() {
    let (_tmp, project) = demo(true);
    append(
        &project,
        "cascade.toml",
        "\n[[channels]]\nname = \"telegram\"\nplugin = \"telegram\"\nsecrets = { token = { env = \"CASCADE_DOCTOR_TEST_UNSET\" } }\n",
    );
    let (passed, report) = doctor(&project);
    assert!(!passed);
    assert_problem(
        &report,
        "channel \"telegram\" secret token: the environment variable CASCADE_DOCTOR_TEST_UNSET is not set",
        "set it in the environment",
    );
}

#[test]
fn a_plugin_whose_pin_does_not_match_is_a_problem() {
    let (_tmp, project) = demo(true);
    let wrong = "0".repeat(64);
    append(
        &project,
        "cascade.toml",
        &format!(
            "\n[plugins.sha256]\n\"{}cascade_plugin_file{}\" = \"{wrong}\"\n",
            std::env::consts::DLL_PREFIX,
            std::env::consts::DLL_SUFFIX
        ),
    );
    let (passed, report) = doctor(&project);
    assert!(!passed);
    let line = report
        .lines()
        .find(|l| l.starts_with("PROBLEM  plugins:"))
        .unwrap_or_else(|| panic!("{report}"));
    assert!(line.contains("cascade_plugin_file"), "{report}");
}

#[test]
fn a_channel_whose_provider_does_not_answer_is_a_problem() {
    let (_tmp, project) = demo(true);
    // A port nothing listens on: bound, then let go.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    append(
        &project,
        "cascade.toml",
        &format!(
            "\n[[channels]]\nname = \"mail\"\nplugin = \"email\"\nconfig = {{ host = \"127.0.0.1\", port = {port}, tls = \"none\", from = \"Learning <learning@northbridge.example>\", timeout_seconds = 5 }}\n"
        ),
    );
    let (passed, report) = doctor(&project);
    assert!(!passed);
    let line = report
        .lines()
        .find(|l| l.starts_with("PROBLEM  channel \"mail\" (email)"))
        .unwrap_or_else(|| panic!("{report}"));
    assert!(line.contains(&port.to_string()), "{line}");
}

#[test]
fn content_that_trips_the_privacy_guard_is_a_problem() {
    let (_tmp, project) = demo(true);
    let item = project.join("content/7mb-safer-sleep.md");
    let text = std::fs::read_to_string(&item).unwrap();
    std::fs::write(
        &item,
        format!("{text}\nThe baby (NHS number 943 476 5919) was seen.\n"),
    )
    .unwrap();
    let (passed, report) = doctor(&project);
    assert!(!passed);
    assert_problem(&report, "7mb-safer-sleep.md", "");
    assert!(
        report.contains("`cascade check` lists the same"),
        "{report}"
    );
}

#[test]
fn links_over_plain_http_to_another_machine_are_a_problem() {
    let (_tmp, project) = demo(true);
    let config = project.join("cascade.toml");
    let text = std::fs::read_to_string(&config).unwrap().replace(
        "base_url = \"http://localhost:8080\"",
        "base_url = \"http://cascade.northbridge.example\"",
    );
    std::fs::write(&config, text).unwrap();
    let (passed, report) = doctor(&project);
    assert!(!passed);
    assert_problem(&report, "is not https", "TLS reverse proxy");
}
