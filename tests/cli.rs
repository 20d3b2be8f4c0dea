//! End-to-end tests of the `cascade` binary on a freshly scaffolded project.

use std::path::Path;
use std::process::{Command, Output};

fn cascade(args: &[&str], cwd: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_cascade"))
        .args(args)
        .current_dir(cwd)
        .output()
        .expect("the cascade binary runs")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn init_demo(tmp: &Path) {
    let out = cascade(&["init", "demo"], tmp);
    assert!(out.status.success(), "init failed: {}", text(&out.stderr));
}

#[test]
fn init_then_check_passes_on_a_fresh_project() {
    let tmp = tempfile::tempdir().unwrap();
    init_demo(tmp.path());
    let out = cascade(&["check", "--project", "demo"], tmp.path());
    assert!(out.status.success(), "check failed:\n{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    assert!(stdout.starts_with("ok: 9 items, 50 people"), "{stdout}");
}

#[test]
fn init_refuses_a_folder_that_is_not_empty() {
    let tmp = tempfile::tempdir().unwrap();
    init_demo(tmp.path());
    let out = cascade(&["init", "demo"], tmp.path());
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).contains("not empty"),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn check_reports_every_problem_with_its_file_and_line_and_fails() {
    let tmp = tempfile::tempdir().unwrap();
    init_demo(tmp.path());
    let demo = tmp.path().join("demo");
    let briefing = demo.join("content/7mb-safer-sleep.md");
    let original = std::fs::read_to_string(&briefing).unwrap();
    let broken = original
        .replacen("\"safer-sleep\"", "\"safer-slep\"", 1)
        .replacen(
            "## 3.",
            "Born on 03/03/2016, NHS number 943 476 5919.\n\n## 3.",
            1,
        );
    std::fs::write(&briefing, broken).unwrap();
    let people = demo.join("directory/people.csv");
    let csv = std::fs::read_to_string(&people).unwrap();
    std::fs::write(
        &people,
        csv.replacen("@northbridge-council.example", "-at-nowhere", 1),
    )
    .unwrap();

    let out = cascade(&["check", "--project", "demo"], tmp.path());
    let stderr = text(&out.stderr);
    assert!(!out.status.success(), "{stderr}");
    let themes_line = original
        .lines()
        .position(|l| l.starts_with("themes"))
        .unwrap()
        + 1;
    assert!(
        stderr.contains(&format!(
            "7mb-safer-sleep.md:{themes_line}: unknown theme \"safer-slep\""
        )),
        "{stderr}"
    );
    assert!(stderr.contains("did you mean \"safer-sleep\""), "{stderr}");
    assert!(stderr.contains("people.csv:2"), "{stderr}");
    assert!(stderr.contains("email"), "{stderr}");
}

#[test]
fn check_blocks_a_childs_identifying_details() {
    let tmp = tempfile::tempdir().unwrap();
    init_demo(tmp.path());
    let item = tmp.path().join("demo/content/lcspr-child-b-2026.md");
    let original = std::fs::read_to_string(&item).unwrap();
    std::fs::write(
        &item,
        format!("{original}\nChild B was born on 3 March 2016 at home in NB1 4QT.\n"),
    )
    .unwrap();
    let out = cascade(&["check", "--project", "demo"], tmp.path());
    let stderr = text(&out.stderr);
    assert!(!out.status.success(), "{stderr}");
    let line = original.lines().count() + 2;
    assert!(
        stderr.contains(&format!("lcspr-child-b-2026.md:{line}:")),
        "{stderr}"
    );
    assert!(stderr.contains("NB1 4QT"), "{stderr}");
    assert!(stderr.contains("3 March 2016"), "{stderr}");
}

#[test]
fn preview_prints_the_three_channels_for_an_example_briefing() {
    let tmp = tempfile::tempdir().unwrap();
    init_demo(tmp.path());
    let out = cascade(
        &[
            "preview",
            "--project",
            "demo",
            "7mb-neglect-seeing-the-child",
            "--person",
            "p-amara-okafor",
        ],
        tmp.path(),
    );
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "{}", text(&out.stderr));
    for channel in ["email-html", "email-text", "telegram", "discord"] {
        assert!(
            stdout.contains(&format!("──── {channel} · message 1 of")),
            "no {channel} in:\n{stdout}"
        );
    }
    assert!(stdout.contains("Amara Okafor"), "{stdout}");
    assert!(
        stdout.contains("<h1"),
        "the email-html render should have a heading"
    );
    assert!(
        stdout.contains("<b>"),
        "the telegram render should use its HTML subset"
    );
}

#[test]
fn preview_of_an_unknown_item_lists_the_known_ones() {
    let tmp = tempfile::tempdir().unwrap();
    init_demo(tmp.path());
    let out = cascade(&["preview", "--project", "demo", "7mb-nope"], tmp.path());
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).contains("7mb-safer-sleep"),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn importing_the_project_twice_changes_nothing_the_second_time() {
    let tmp = tempfile::tempdir().unwrap();
    init_demo(tmp.path());
    let first = cascade(&["import", "--project", "demo"], tmp.path());
    assert!(first.status.success(), "{}", text(&first.stderr));
    assert!(
        text(&first.stdout).contains("content: 9 items, 9 new versions"),
        "{}",
        text(&first.stdout)
    );
    let second = cascade(&["import", "--project", "demo"], tmp.path());
    let stdout = text(&second.stdout);
    assert!(second.status.success(), "{}", text(&second.stderr));
    assert!(
        stdout.contains("content: 9 items, 0 new versions"),
        "{stdout}"
    );
    assert!(stdout.contains("50 unchanged"), "{stdout}");
    assert!(tmp.path().join("demo/.cascade/cascade.db").exists());
}

#[test]
fn the_demo_runs_from_nothing_and_again_on_its_own_project() {
    let tmp = tempfile::tempdir().unwrap();
    let demo = ["demo", "--until-idle", "--listen", "127.0.0.1:0"];
    let first = cascade(&demo, tmp.path());
    let stdout = text(&first.stdout);
    assert!(first.status.success(), "{}", text(&first.stderr));
    assert!(
        stdout.contains("Started rollout \"demo-neglect-briefing\" for 50 people"),
        "{stdout}"
    );
    assert!(stdout.contains("outbox                0        0       47         0        0  [####################] 100% (47/47)"), "{stdout}");
    let outbox = tmp.path().join("cascade-demo/outbox");
    assert_eq!(std::fs::read_dir(&outbox).unwrap().count(), 50);

    let again = cascade(&demo, tmp.path());
    assert!(again.status.success(), "{}", text(&again.stderr));
    assert!(text(&again.stdout).contains("the demo rollout is already started"));
    assert_eq!(
        std::fs::read_dir(&outbox).unwrap().count(),
        50,
        "nothing is sent twice"
    );
}

#[test]
fn link_codes_are_printed_for_a_team_and_an_unknown_team_is_named() {
    let tmp = tempfile::tempdir().unwrap();
    init_demo(tmp.path());
    assert!(
        cascade(&["import", "--project", "demo"], tmp.path())
            .status
            .success()
    );
    let out = cascade(
        &["link-codes", "--project", "demo", "--team", "cs-north"],
        tmp.path(),
    );
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let codes: Vec<&str> = stdout
        .lines()
        .filter_map(|l| l.strip_prefix("Tom Reilly"))
        .map(str::trim)
        .collect();
    assert_eq!(codes.len(), 1, "{stdout}");
    assert_eq!(codes[0].len(), 8);
    assert_eq!(
        stdout
            .lines()
            .filter(|l| l.len() > 32 && l.ends_with(|c: char| c.is_ascii_alphanumeric()))
            .count(),
        5
    );
    let unknown = cascade(
        &["link-codes", "--project", "demo", "--team", "cs-nowhere"],
        tmp.path(),
    );
    assert!(!unknown.status.success());
    assert!(text(&unknown.stderr).contains("team \"cs-nowhere\" has no active people"));
}

#[test]
fn link_codes_sent_by_email_reach_each_person_and_are_not_printed() {
    let tmp = tempfile::tempdir().unwrap();
    init_demo(tmp.path());
    assert!(
        cascade(&["import", "--project", "demo"], tmp.path())
            .status
            .success()
    );
    let out = cascade(
        &[
            "link-codes",
            "--project",
            "demo",
            "--team",
            "cs-north",
            "--send",
            "outbox",
        ],
        tmp.path(),
    );
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "{}{stdout}", text(&out.stderr));
    assert!(
        stdout.contains("Sent 5 of 5 codes through \"outbox\"."),
        "{stdout}"
    );
    let outbox = tmp.path().join("demo").join("outbox");
    let mut codes = Vec::new();
    for entry in std::fs::read_dir(&outbox).unwrap() {
        let path = entry.unwrap().path();
        if !path
            .file_name()
            .unwrap()
            .to_string_lossy()
            .starts_with("link-code-")
        {
            continue;
        }
        let message: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        let body = message["parts"][1]["chunks"][0]
            .as_str()
            .unwrap()
            .to_owned();
        let code = body
            .split_whitespace()
            .skip_while(|w| *w != "/link")
            .nth(1)
            .unwrap()
            .to_owned();
        assert_eq!(code.len(), 8, "{body}");
        assert!(
            !stdout.contains(&code),
            "a sent code must not be printed: {stdout}"
        );
        if message["recipient"]["person_id"] == "p-tom-reilly" {
            assert_eq!(
                message["recipient"]["address"],
                "tom.reilly@northbridge-council.example"
            );
            assert!(body.starts_with("Hello Tom Reilly,"), "{body}");
        }
        codes.push(code);
    }
    codes.sort();
    codes.dedup();
    assert_eq!(codes.len(), 5);

    let unknown = cascade(
        &[
            "link-codes",
            "--project",
            "demo",
            "--team",
            "cs-north",
            "--send",
            "pigeon",
        ],
        tmp.path(),
    );
    assert!(!unknown.status.success());
    assert!(
        text(&unknown.stderr).contains("no channel \"pigeon\" is configured"),
        "{}",
        text(&unknown.stderr)
    );
}

#[test]
fn a_rollout_posting_to_a_channel_that_cannot_edit_buttons_is_refused_and_nothing_is_written() {
    let tmp = tempfile::tempdir().unwrap();
    init_demo(tmp.path());
    let demo = tmp.path().join("demo");
    let import = cascade(&["import"], &demo);
    assert!(import.status.success(), "{}", text(&import.stderr));
    let original = std::fs::read_to_string(demo.join("rollouts/neglect-briefing.toml")).unwrap();
    let with_posts = original.replacen(
        "channels = [\"outbox\"]",
        "channels = [\"outbox\"]\nteam_posts = [\"outbox\"]",
        1,
    );
    let line = with_posts
        .lines()
        .position(|l| l.starts_with("team_posts"))
        .unwrap()
        + 1;
    std::fs::write(demo.join("rollouts/team-posts.toml"), with_posts).unwrap();

    for action in ["plan", "start"] {
        let out = cascade(&["rollout", action, "rollouts/team-posts.toml"], &demo);
        let stderr = text(&out.stderr);
        assert!(!out.status.success(), "{stderr}");
        assert!(
            stderr.contains(&format!(
                "rollouts/team-posts.toml:{line}: team_posts names channel \"outbox\", whose plugin \"file\" cannot post in a team's channel with a button and edit the post"
            )),
            "{stderr}"
        );
        assert!(
            stderr.contains(
                "help: name a channel whose plugin has the `channel-posts`, `buttons` and `edit` capabilities"
            ),
            "{stderr}"
        );
    }
    let status = cascade(&["status"], &demo);
    assert!(
        text(&status.stdout).contains("no rollouts yet"),
        "{}",
        text(&status.stdout)
    );
}

/// The attack review's classes: identifiers hidden by encodings the renderer
/// decodes, and identifiers in text outside content files (templates,
/// rollout follow-ups), and an item allowing a deny-listed name.
#[test]
fn check_finds_a_childs_details_in_decoded_text_templates_rollouts_and_allows() {
    let tmp = tempfile::tempdir().unwrap();
    init_demo(tmp.path());
    let demo = tmp.path().join("demo");
    let item = demo.join("content/nl-2026-12-escalation-policy.md");
    let original = std::fs::read_to_string(&item).unwrap();
    let attacked = original
        .replacen(
            "title = \"New policy: resolving professional differences\"",
            "title = \"New policy for Tilly\\u0020Marchbank\"",
            1,
        )
        .replacen(
            "reason = \"The partnership's public professional advice line, published on its website\"",
            "reason = \"The partnership's public professional advice line, published on its website\"\n\n[[privacy_allow]]\ntext = \"Jayden Northwood\"\nreason = \"the family agreed to it being shared\"",
            1,
        )
        .replacen(
            "Professional disagreement is healthy.",
            "Professional disagreement is healthy. See **Jayden** **Northwood**, DOB 3 Mar 12, at &#77;1 1AE, NHS 943\\-476\\-5919.",
            1,
        );
    std::fs::write(&item, attacked).unwrap();
    let other = demo.join("content/nl-2026-12-safer-sleep-week.md");
    let original = std::fs::read_to_string(&other).unwrap();
    let (front, body) = original[3..].split_once("+++").unwrap();
    std::fs::write(
        &other,
        format!(
            "+++{front}\n[[privacy_allow]]\ntext = \"07700 900123\"\nreason = \"x\"\n+++{body}"
        ),
    )
    .unwrap();
    let template = demo.join("templates/newsletter-item/email-text.hbs");
    let mut written = std::fs::read_to_string(&template).unwrap();
    written.push_str("\nQuestions? Ring mum on 07700.900.123\n");
    std::fs::write(&template, written).unwrap();
    // A handlebars comment hides the name in the template's text; only the
    // rendered message shows it.
    let hidden = demo.join("templates/seven-minute-briefing/telegram.hbs");
    let mut written = std::fs::read_to_string(&hidden).unwrap();
    written.push_str("\nTil{{!-- a comment --}}ly Marchbank\n");
    std::fs::write(&hidden, written).unwrap();
    let rollout = demo.join("rollouts/neglect-briefing.toml");
    let written = std::fs::read_to_string(&rollout).unwrap().replacen(
        "Have you used the learning from this briefing in your practice?",
        "Have you used it with Northwood, Jayden?",
        1,
    );
    std::fs::write(&rollout, written).unwrap();

    let out = cascade(&["check", "--project", "demo"], tmp.path());
    assert!(!out.status.success());
    let stderr = text(&out.stderr);
    let item_path = Path::new("demo/content/nl-2026-12-escalation-policy.md");
    for expected in [
        format!("{}:4:", item_path.display()),
        "deny-listed name \"Tilly\\\\u0020Marchbank\"".to_owned(),
        "deny-listed name \"Jayden** **Northwood\"".to_owned(),
        "date of birth \"3 Mar 12\"".to_owned(),
        "postcode \"&#77;1 1AE\"".to_owned(),
        "NHS number \"943\\\\-476\\\\-5919\"".to_owned(),
        "privacy_allow names \"Jayden Northwood\"".to_owned(),
        "does not say why the text is safe to send".to_owned(),
        "email-text.hbs:".to_owned(),
        "phone number \"07700.900.123\"".to_owned(),
        "rollouts/neglect-briefing.toml:".to_owned(),
        "deny-listed name \"Northwood, Jayden\"".to_owned(),
        "rendered for telegram, the message holds a deny-listed name \"Tilly Marchbank\""
            .to_owned(),
    ] {
        assert!(
            stderr.contains(&expected),
            "missing {expected:?} in:\n{stderr}"
        );
    }
}

/// Runs the binary as a shell would under the usual umask, 022, which leaves
/// a file made without an explicit mode readable by every local user.
#[cfg(unix)]
fn under_umask_022(args: &[&str], cwd: &Path) -> Command {
    let mut command = Command::new("sh");
    command
        .arg("-c")
        .arg("umask 022; exec \"$0\" \"$@\"")
        .arg(env!("CARGO_BIN_EXE_cascade"))
        .args(args)
        .current_dir(cwd);
    command
}

/// The permission bits of a file, in octal as `ls` and `chmod` show them.
#[cfg(unix)]
fn mode(path: &Path) -> Option<String> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path)
        .ok()
        .map(|m| format!("{:o}", m.permissions().mode() & 0o777))
}

/// The store holds email addresses, the key that signs chat buttons and the
/// link codes' hashes; the keys sign links and hash codes. While `cascade
/// serve` runs on a project made and imported under umask 022, the
/// database, its WAL and shared-memory files and both keys are their
/// owner's only, and so is the folder holding them.
#[cfg(unix)]
#[test]
fn the_store_its_wal_and_shm_files_and_the_keys_are_owner_only_under_umask_022() {
    let tmp = tempfile::tempdir().unwrap();
    for args in [&["init", "demo"][..], &["import", "--project", "demo"][..]] {
        let out = under_umask_022(args, tmp.path()).output().unwrap();
        assert!(out.status.success(), "{args:?}: {}", text(&out.stderr));
    }
    let private = tmp.path().join("demo/.cascade");
    let files = [
        "cascade.db",
        "cascade.db-wal",
        "cascade.db-shm",
        "ack-signing.key",
        "link-code.key",
    ]
    .map(|name| private.join(name));
    let mut serve = under_umask_022(
        &["serve", "--project", "demo", "--listen", "127.0.0.1:0"],
        tmp.path(),
    )
    .stdout(std::process::Stdio::null())
    .stderr(std::process::Stdio::null())
    .spawn()
    .unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while !files.iter().all(|f| f.exists()) && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    let modes: Vec<(String, Option<String>)> = files
        .iter()
        .map(|f| {
            (
                f.file_name().unwrap().to_string_lossy().into_owned(),
                mode(f),
            )
        })
        .collect();
    serve.kill().unwrap();
    serve.wait().unwrap();
    for (name, mode) in &modes {
        assert_eq!(mode.as_deref(), Some("600"), "{name}: {modes:?}");
    }
    assert_eq!(mode(&private).as_deref(), Some("700"));
}

#[test]
fn check_refuses_an_ack_signing_key_too_short_for_serve() {
    let tmp = tempfile::tempdir().unwrap();
    init_demo(tmp.path());
    std::fs::write(tmp.path().join("demo/.cascade/ack-signing.key"), "abcd\n").unwrap();
    let out = cascade(&["check", "--project", "demo"], tmp.path());
    let stderr = text(&out.stderr);
    assert!(!out.status.success(), "{stderr}");
    assert!(
        stderr
            .contains("cascade.toml: [ack] key k1: a key must be at least 32 bytes written as hex"),
        "{stderr}"
    );
    assert!(!stderr.contains("abcd"), "{stderr}");
}

#[test]
fn a_configuration_error_is_printed_once() {
    let tmp = tempfile::tempdir().unwrap();
    init_demo(tmp.path());
    let config = tmp.path().join("demo/cascade.toml");
    let original = std::fs::read_to_string(&config).unwrap();
    std::fs::write(
        &config,
        original.replace("# link_days = 60", "link_days = 0"),
    )
    .unwrap();
    for command in ["check", "serve", "status"] {
        let out = cascade(&[command, "--project", "demo"], tmp.path());
        let stderr = text(&out.stderr);
        assert!(!out.status.success(), "{stderr}");
        assert_eq!(
            stderr
                .matches("link_days must be between 1 and 365, not 0")
                .count(),
            1,
            "{command}: {stderr}"
        );
    }
    std::fs::remove_file(&config).unwrap();
    let out = cascade(&["check", "--project", "demo"], tmp.path());
    let stderr = text(&out.stderr);
    assert_eq!(stderr.matches("No such file").count(), 1, "{stderr}");
}

#[test]
fn check_refuses_a_content_file_over_a_megabyte_naming_its_size() {
    let tmp = tempfile::tempdir().unwrap();
    init_demo(tmp.path());
    let big = tmp.path().join("demo/content/huge.md");
    std::fs::write(&big, "a".repeat(1024 * 1024 + 1)).unwrap();
    let out = cascade(&["check", "--project", "demo"], tmp.path());
    let stderr = text(&out.stderr);
    assert!(!out.status.success(), "{stderr}");
    assert!(
        stderr.contains("huge.md:1: the file is 1048577 bytes; a content file may be at most 1048576 bytes (1 MB)"),
        "{stderr}"
    );
}

#[test]
fn teams_manifest_names_the_bot_of_the_project_s_teams_channel() {
    let tmp = tempfile::tempdir().unwrap();
    init_demo(tmp.path());
    let out = cascade(&["teams", "manifest", "--project", "demo"], tmp.path());
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).contains("no Teams channel"),
        "{}",
        text(&out.stderr)
    );
    let config = tmp.path().join("demo/cascade.toml");
    let mut toml = std::fs::read_to_string(&config).unwrap();
    toml.push_str(
        "\n[[channels]]\nname = \"teams\"\nplugin = \"teams\"\nconfig = { app_id = \"6f1c2d3e-4a5b-4c6d-8e9f-0a1b2c3d4e5f\", tenant_id = \"11111111-2222-4333-8444-555555555555\" }\nsecrets = { app_password = { env = \"CASCADE_TEAMS_APP_PASSWORD\" } }\n",
    );
    std::fs::write(&config, toml).unwrap();
    let out = cascade(
        &[
            "teams",
            "manifest",
            "--project",
            "demo",
            "--out",
            "manifest.json",
        ],
        tmp.path(),
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let manifest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(tmp.path().join("manifest.json")).unwrap()).unwrap();
    assert_eq!(
        manifest["bots"][0]["botId"],
        "6f1c2d3e-4a5b-4c6d-8e9f-0a1b2c3d4e5f"
    );
    assert_eq!(
        manifest["bots"][0]["scopes"],
        serde_json::json!(["personal", "team"])
    );
    assert_eq!(
        manifest["bots"][0]["commandLists"][0]["commands"][0]["title"],
        "link"
    );
}

/// `cascade plugins check` started the file channel with its folder taken
/// from the current directory, leaving an `outbox/` wherever it was run.
#[test]
fn plugins_check_starts_channels_in_the_project_not_the_current_folder() {
    let tmp = tempfile::tempdir().unwrap();
    init_demo(tmp.path());
    let out = cascade(&["plugins", "check", "--project", "demo"], tmp.path());
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        text(&out.stdout).contains("started and stopped cleanly"),
        "{}",
        text(&out.stdout)
    );
    assert!(!tmp.path().join("outbox").exists());
}

/// With the bot's username in `cascade.toml`, each printed code comes with
/// the t.me link that opens the bot with the code filled in (what a bare
/// `/start` from the Start button lacks).
#[test]
fn link_codes_come_with_a_telegram_link_when_the_bot_is_named() {
    let tmp = tempfile::tempdir().unwrap();
    init_demo(tmp.path());
    let config = tmp.path().join("demo/cascade.toml");
    let mut toml = std::fs::read_to_string(&config).unwrap();
    toml.push_str(
        "\n[[channels]]\nname = \"telegram\"\nplugin = \"telegram\"\nsecrets = { token = { env = \"CASCADE_TEST_TELEGRAM_TOKEN\" } }\nconfig = { bot_username = \"@northbridge_learning_bot\" }\n",
    );
    std::fs::write(&config, toml).unwrap();
    assert!(
        cascade(&["import", "--project", "demo"], tmp.path())
            .status
            .success()
    );
    let out = cascade(
        &[
            "link-codes",
            "--project",
            "demo",
            "--person",
            "p-tom-reilly",
        ],
        tmp.path(),
    );
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let line = stdout
        .lines()
        .find(|l| l.starts_with("Tom Reilly"))
        .unwrap_or_else(|| panic!("{stdout}"));
    let fields: Vec<&str> = line.split_whitespace().collect();
    let code = fields[2];
    assert_eq!(
        fields[3],
        format!("https://t.me/northbridge_learning_bot?start={code}")
    );
}

#[test]
fn check_refuses_an_official_sensitive_item_without_a_summary_and_an_unknown_classification() {
    let tmp = tempfile::tempdir().unwrap();
    init_demo(tmp.path());
    let demo = tmp.path().join("demo");
    let sleep = demo.join("content/7mb-safer-sleep.md");
    let original = std::fs::read_to_string(&sleep).unwrap();
    let status_line = original
        .lines()
        .position(|l| l.starts_with("status"))
        .unwrap()
        + 1;
    std::fs::write(
        &sleep,
        original.replacen(
            "status = ",
            "classification = \"official-sensitive\"\nstatus = ",
            1,
        ),
    )
    .unwrap();
    let neglect = demo.join("content/7mb-neglect-seeing-the-child.md");
    let text_of = std::fs::read_to_string(&neglect).unwrap();
    std::fs::write(
        &neglect,
        text_of.replacen(
            "status = ",
            "classification = \"OFFICIAL SENSITIVE\"\nstatus = ",
            1,
        ),
    )
    .unwrap();

    let out = cascade(&["check", "--project", "demo"], tmp.path());
    let stderr = text(&out.stderr);
    assert!(!out.status.success(), "{stderr}");
    assert!(
        stderr.contains(&format!(
            "7mb-safer-sleep.md:{status_line}: an OFFICIAL-SENSITIVE item needs a one-line `summary`"
        )),
        "{stderr}"
    );
    assert!(stderr.contains("add summary = \""), "{stderr}");
    assert!(
        stderr.contains("unknown classification \"OFFICIAL SENSITIVE\""),
        "{stderr}"
    );
    assert!(
        stderr.contains("\"official\" (the default) or \"official-sensitive\""),
        "{stderr}"
    );
}

#[test]
fn check_names_a_single_sign_on_role_that_is_not_a_console_role() {
    let tmp = tempfile::tempdir().unwrap();
    init_demo(tmp.path());
    let config = tmp.path().join("demo/cascade.toml");
    let original = std::fs::read_to_string(&config).unwrap();
    let sso = |roles: &str| {
        format!(
            "{original}\n[console.sso]\nissuer = \"https://login.example.test/tenant/v2.0\"\nclient_id = \"cascade\"\nclient_secret = {{ env = \"CASCADE_SSO_SECRET\" }}\n[console.sso.roles]\n{roles}\n"
        )
    };
    std::fs::write(&config, sso("\"Cascade.Editor\" = \"editor\"")).unwrap();
    let out = cascade(&["check", "--project", "demo"], tmp.path());
    assert!(out.status.success(), "{}", text(&out.stderr));
    std::fs::write(
        &config,
        sso("\"Cascade.Editor\" = \"editor\"\n\"Cascade.Boss\" = \"superuser\""),
    )
    .unwrap();
    let out = cascade(&["check", "--project", "demo"], tmp.path());
    let stderr = text(&out.stderr);
    assert!(!out.status.success(), "{stderr}");
    assert!(
        stderr.contains("cascade.toml: [console.sso] roles: \"Cascade.Boss\" = \"superuser\" is not a console role")
            && stderr.contains("help: use one of admin, editor, approver, viewer, champion"),
        "{stderr}"
    );
}

#[test]
fn check_validates_check_questions_naming_the_file_line_and_fix() {
    let tmp = tempfile::tempdir().unwrap();
    init_demo(tmp.path());
    let demo = tmp.path().join("demo");
    let question = |answer: &str, section: &str, extra: &str| {
        format!(
            "[[check_questions]]\nquestion = \"What should you ask to see on a home visit?{extra}\"\n\
             options = [\"The kitchen\", \"Where the child sleeps\"]\nanswer = \"{answer}\"\n\
             explanation = \"Seeing where the child sleeps shows how they live.\"\nsection = \"{section}\"\n"
        )
    };
    let add = |file: &str, entry: &str| -> String {
        let path = demo.join("content").join(file);
        let original = std::fs::read_to_string(&path).unwrap();
        let end = original[3..].find("+++").unwrap() + 3;
        let text = format!("{}\n{entry}{}", &original[..end], &original[end..]);
        std::fs::write(&path, &text).unwrap();
        text
    };
    // A right one passes.
    add(
        "7mb-neglect-seeing-the-child.md",
        &question("Where the child sleeps", "What practitioners should do", ""),
    );
    let out = cascade(&["check", "--project", "demo"], tmp.path());
    assert!(out.status.success(), "{}", text(&out.stderr));

    // A wrong answer and a section the item does not have are each named
    // at their line; so is a child's NHS number in a question that is
    // otherwise right (the privacy guard reads the whole file).
    let sleep = add(
        "7mb-safer-sleep.md",
        &question("The garden", "Next steps", ""),
    );
    let lines = add(
        "7mb-cce-county-lines.md",
        &question("Where the child sleeps", "Background", " NHS 943 476 5919"),
    );
    let line =
        |text: &str, needle: &str| text.lines().position(|l| l.contains(needle)).unwrap() + 1;
    let out = cascade(&["check", "--project", "demo"], tmp.path());
    let stderr = text(&out.stderr);
    assert!(!out.status.success(), "{stderr}");
    for (file, at, said) in [
        (
            "7mb-safer-sleep.md",
            line(&sleep, "answer = \"The garden\""),
            "the answer \"The garden\" is not one of its options",
        ),
        (
            "7mb-safer-sleep.md",
            line(&sleep, "section = \"Next steps\""),
            "the item has no section \"Next steps\"",
        ),
        ("7mb-cce-county-lines.md", line(&lines, "943 476 5919"), ""),
    ] {
        assert!(
            stderr
                .lines()
                .any(|l| l.contains(&format!("{file}:{at}:")) && l.contains(said)),
            "{file}:{at}: {said}\n{stderr}"
        );
    }
    assert!(stderr.contains("943 476 5919"), "{stderr}");
    assert!(
        stderr.contains("help: make the answer one of the options"),
        "{stderr}"
    );
}

/// The example project's monthly bulletin: planned with its schedule and
/// next occurrences, started, shown by `status` with its next occurrence;
/// a schedule cascade does not know is refused at its line with the fix.
#[test]
fn the_example_monthly_bulletin_plans_starts_and_shows_its_next_occurrence() {
    let tmp = tempfile::tempdir().unwrap();
    init_demo(tmp.path());
    let demo = tmp.path().join("demo");
    let import = cascade(&["import"], &demo);
    assert!(import.status.success(), "{}", text(&import.stderr));
    let file = "rollouts/practice-bulletin.toml";
    let plan = cascade(&["rollout", "plan", file], &demo);
    let stdout = text(&plan.stdout);
    assert!(plan.status.success(), "{stdout}{}", text(&plan.stderr));
    assert!(
        stdout.contains("Bulletin \"practice-bulletin\" (Northbridge practice bulletin): every month on the first Tuesday at 09:00 (Europe/London time)."),
        "{stdout}"
    );
    assert!(
        stdout.contains("an occurrence with nothing new is skipped"),
        "{stdout}"
    );
    assert!(stdout.contains("Next occurrences:\n  Tue "), "{stdout}");

    let bad = std::fs::read_to_string(demo.join(file))
        .unwrap()
        .replace("every = \"month\"", "every = \"3 days\"");
    std::fs::write(demo.join("rollouts/bad-bulletin.toml"), bad).unwrap();
    let refused = cascade(&["rollout", "plan", "rollouts/bad-bulletin.toml"], &demo);
    let stderr = text(&refused.stderr);
    assert!(!refused.status.success());
    assert!(
        stderr.contains("rollouts/bad-bulletin.toml:32: every = \"3 days\" is not a period cascade knows\n  help: write every = \"week\", \"2 weeks\", \"month\" or \"3 months\""),
        "{stderr}"
    );

    let start = cascade(&["rollout", "start", file], &demo);
    assert!(start.status.success(), "{}", text(&start.stderr));
    assert!(text(&start.stdout).contains("Started bulletin \"practice-bulletin\""));
    let again = cascade(&["rollout", "start", file], &demo);
    assert!(!again.status.success(), "a bulletin starts once");
    let status = text(&cascade(&["status"], &demo).stdout);
    assert!(
        status.contains("bulletin practice-bulletin")
            && status.contains("every month on the first Tuesday at 09:00: next Tue "),
        "{status}"
    );
    assert!(
        status.contains("0 issues made, 0 skipped (nothing new)"),
        "{status}"
    );
    let paused = cascade(&["rollout", "pause", "practice-bulletin"], &demo);
    assert!(paused.status.success(), "{}", text(&paused.stderr));
    let status = text(&cascade(&["status", "practice-bulletin"], &demo).stdout);
    assert!(status.contains("paused; 0 issues made"), "{status}");
}
