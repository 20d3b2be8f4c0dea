//! UK GDPR duties end to end, through the real `cascade` binary on a
//! scaffolded project: subject access export, erasure, the retention
//! schedule and the record of processing. Activity the binary records from
//! people (a linked chat account, acknowledgements, answers) is written
//! through the real store, as the server would.

use cascade_store::{AckMethod, Evidence, NewAcknowledgement, NewAnswer, Privacy, SqliteStore};
use std::path::Path;
use std::process::Command;

mod support;

use support::{cascade_in as cascade, ok, text};

const ROLLOUT: &str = "neglect-briefing-2026-12";
const DAVID: &str = "p-david-okonjo";
const TELEGRAM_ID: &str = "7000001234";

/// A demo project, imported, with the neglect briefing rolled out to all;
/// David has linked Telegram, acknowledged and answered the follow-up with
/// an example; Helen's example names him.
fn project_with_activity(tmp: &Path) -> std::path::PathBuf {
    ok(cascade(&["init", "demo"], tmp));
    ok(cascade(&["import", "--project", "demo"], tmp));
    ok(cascade(
        &[
            "rollout",
            "start",
            "--project",
            "demo",
            "demo/rollouts/neglect-briefing.toml",
        ],
        tmp,
    ));
    let db = tmp.join("demo/.cascade/cascade.db");
    runtime().block_on(async {
        let store = SqliteStore::open(db.to_str().unwrap()).await.unwrap();
        store
            .create_link_code(DAVID, "h", 0, i64::MAX)
            .await
            .unwrap();
        store
            .redeem_link_code("h", "l", "telegram", TELEGRAM_ID, 1)
            .await
            .unwrap()
            .unwrap();
        let version: String = cascade_store::Outbox::rollout(&store, ROLLOUT)
            .await
            .unwrap()
            .unwrap()
            .item_version;
        store
            .acknowledge_item(&NewAcknowledgement {
                person_id: DAVID.to_owned(),
                item_id: "7mb-neglect-seeing-the-child".to_owned(),
                item_version: version,
                rollout_id: Some(ROLLOUT.to_owned()),
                delivery_id: None,
                channel: "telegram".to_owned(),
                method: AckMethod::Button,
                at: 2,
            })
            .await
            .unwrap();
        for (person, example, at) in [
            (DAVID, "Tried the checklist at Wednesday duty", 3),
            ("p-helen-marsh", "David Okonjo walked us through it", 4),
        ] {
            store
                .answer_follow_up(&NewAnswer {
                    rollout_id: ROLLOUT.to_owned(),
                    person_id: person.to_owned(),
                    follow_up: 1,
                    answer: "Yes".to_owned(),
                    example: Some(example.to_owned()),
                    channel: "telegram".to_owned(),
                    at,
                })
                .await
                .unwrap();
        }
        store.close().await;
    });
    db
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

fn find(db: &Path, needle: &str) -> Vec<String> {
    runtime().block_on(async {
        let store = SqliteStore::open(db.to_str().unwrap()).await.unwrap();
        let found = store.find_text(needle).await.unwrap();
        store.close().await;
        found
    })
}

fn read_export(dir: &Path, ext: &str) -> String {
    let path = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.extension().is_some_and(|e| e == ext))
        .unwrap_or_else(|| panic!("no .{ext} in {}", dir.display()));
    std::fs::read_to_string(path).unwrap()
}

#[test]
fn erasure_leaves_no_detail_in_any_table_keeps_report_totals_and_exports_only_the_erasure() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path();
    let db = project_with_activity(root);
    let details = [
        "David Okonjo",
        "david.okonjo@northbridge-council.example",
        TELEGRAM_ID,
        DAVID,
    ];
    for needle in details {
        assert!(
            !find(&db, needle).is_empty(),
            "{needle} is held before erasure"
        );
    }
    let report = |format: &str| {
        ok(cascade(
            &["report", ROLLOUT, "--project", "demo", "--format", format],
            root,
        ))
    };
    let (csv_before, table_before) = (report("csv"), report("table"));

    // Subject access: everything, readable and machine-readable.
    ok(cascade(
        &[
            "people",
            "export",
            DAVID,
            "--project",
            "demo",
            "--out",
            "before",
        ],
        root,
    ));
    let json: serde_json::Value =
        serde_json::from_str(&read_export(&root.join("before"), "json")).unwrap();
    assert_eq!(json["status"], "held");
    assert_eq!(json["person"]["display_name"], "David Okonjo");
    for table in [
        "acknowledgements",
        "channel_identities",
        "follow_up_answers",
        "rollout_members",
    ] {
        assert!(
            json["records"][table].is_array(),
            "{table} missing: {json:#}"
        );
    }
    assert!(json.to_string().contains(TELEGRAM_ID));
    let html = read_export(&root.join("before"), "html");
    assert!(
        html.starts_with("<!DOCTYPE html>\n<html lang=\"en\">"),
        "{html}"
    );
    assert!(html.contains("<h1>What Northbridge Safeguarding Children Partnership holds about p-david-okonjo in cascade</h1>"));
    assert!(
        html.contains("Tried the checklist at Wednesday duty")
            && html.contains("<th scope=\"col\">")
    );
    assert!(
        !html.contains("<script") && !html.contains("src="),
        "self-contained, no scripts"
    );

    // Refused while the rollout is still sending to him; nothing changes.
    let refused = cascade(
        &[
            "people",
            "erase",
            DAVID,
            "--project",
            "demo",
            "--reason",
            "erasure request SAR-2026-041",
        ],
        root,
    );
    assert!(!refused.status.success());
    assert!(
        text(&refused.stderr).contains(&format!(
            "\"{DAVID}\" is still being sent learning in {ROLLOUT}; nothing was erased"
        )),
        "{}",
        text(&refused.stderr)
    );
    assert!(!find(&db, "David Okonjo").is_empty());

    let erased = ok(cascade(
        &[
            "people",
            "erase",
            DAVID,
            "--project",
            "demo",
            "--reason",
            "erasure request SAR-2026-041",
            "--force",
        ],
        root,
    ));
    assert!(erased.contains("recorded: by os:dpo-officer"), "{erased}");
    assert!(erased.contains("This cannot be undone."), "{erased}");
    assert!(
        erased.contains("now delete them from demo/directory/people.csv:3: it still names them"),
        "{erased}"
    );

    // Every table and column of the live schema, scanned for each detail.
    for needle in details {
        let left = find(&db, needle);
        assert!(left.is_empty(), "{needle} is still in {left:?}");
    }
    assert!(
        !find(&db, "walked us through it").is_empty(),
        "Helen's example stays, less his name"
    );
    assert_eq!(report("csv"), csv_before, "the report's totals changed");
    assert_eq!(report("table"), table_before);

    // Export of an erased person: only the erasure record.
    ok(cascade(
        &[
            "people",
            "export",
            DAVID,
            "--project",
            "demo",
            "--out",
            "after",
        ],
        root,
    ));
    let json: serde_json::Value =
        serde_json::from_str(&read_export(&root.join("after"), "json")).unwrap();
    let keys: Vec<&str> = json
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(
        keys,
        [
            "erasure",
            "format",
            "format_version",
            "generated_at",
            "partnership",
            "person_id",
            "status"
        ]
    );
    assert_eq!(json["status"], "erased");
    assert_eq!(json["erasure"]["erased_by"], "os:dpo-officer");
    assert_eq!(json["erasure"]["reason"], "erasure request SAR-2026-041");
    let html = read_export(&root.join("after"), "html");
    assert!(html.contains("You were erased") && !html.contains("Okonjo"));

    // The directory still lists him: import refuses his row, naming it.
    let import = cascade(&["import", "--project", "demo"], root);
    assert!(!import.status.success());
    assert!(
        text(&import.stderr).contains(&format!(
            "demo/directory/people.csv:3: column \"person_id\": \"{DAVID}\" was erased on"
        )),
        "{}",
        text(&import.stderr)
    );
    // Erasure cannot be repeated or undone.
    let again = cascade(
        &[
            "people",
            "erase",
            DAVID,
            "--project",
            "demo",
            "--reason",
            "again",
        ],
        root,
    );
    assert!(
        text(&again.stderr).contains("was already erased"),
        "{}",
        text(&again.stderr)
    );
}

#[test]
fn an_unknown_person_and_a_reason_naming_them_are_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path();
    let db = project_with_activity(root);
    let out = cascade(&["people", "export", "p-nobody", "--project", "demo"], root);
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).contains("no person \"p-nobody\" is held in the store"),
        "{}",
        text(&out.stderr)
    );
    assert!(!root.join("demo/exports").exists());
    let out = cascade(
        &[
            "people",
            "erase",
            DAVID,
            "--project",
            "demo",
            "--force",
            "--reason",
            "David Okonjo asked",
        ],
        root,
    );
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).contains("the reason names the person"),
        "{}",
        text(&out.stderr)
    );
    assert!(!find(&db, "David Okonjo").is_empty());
}

fn set_config(root: &Path, change: impl FnOnce(String) -> String) {
    let path = root.join("demo/cascade.toml");
    let text = std::fs::read_to_string(&path).unwrap();
    std::fs::write(&path, change(text)).unwrap();
}

#[test]
fn retention_is_listed_then_applied_and_the_record_of_processing_shows_it() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path();
    let db = project_with_activity(root);

    let out = ok(cascade(&["retention", "apply", "--project", "demo"], root));
    assert!(out.contains("nothing to do: [retention]"), "{out}");

    set_config(root, |t| {
        format!("{t}\n[retention]\nfollow_up_examples = \"2 yeers\"\n")
    });
    let bad = cascade(
        &["retention", "apply", "--dry-run", "--project", "demo"],
        root,
    );
    let lines = std::fs::read_to_string(root.join("demo/cascade.toml"))
        .unwrap()
        .lines()
        .count();
    assert!(
        text(&bad.stderr).contains(&format!(
            "cascade.toml:{lines}: \"yeers\" is not a unit of time; write a whole number and days, weeks, months or years"
        )),
        "{}",
        text(&bad.stderr)
    );
    set_config(root, |t| {
        t.replace("\"2 yeers\"", "\"2 years\"\nlogs = \"1 year\"\n")
            + "\n[[channels]]\nname = \"telegram\"\nplugin = \"telegram\"\nsecrets = { token = { env = \"CASCADE_TELEGRAM_TOKEN\" } }\n"
    });

    // Both examples were given in 1970: more than 2 years ago.
    let dry = ok(cascade(
        &["retention", "apply", "--dry-run", "--project", "demo"],
        root,
    ));
    assert!(
        dry.starts_with("would remove (nothing is changed):\n"),
        "{dry}"
    );
    assert!(dry.contains("       2 follow-up examples emptied"), "{dry}");
    assert!(
        !find(&db, "Wednesday duty").is_empty(),
        "a dry run removes nothing"
    );

    let applied = ok(cascade(&["retention", "apply", "--project", "demo"], root));
    assert!(
        applied.contains("removed:\n       2 follow-up examples emptied"),
        "{applied}"
    );
    assert!(find(&db, "Wednesday duty").is_empty() && find(&db, "walked us through it").is_empty());
    let again = ok(cascade(&["retention", "apply", "--project", "demo"], root));
    assert!(
        again.contains("       0 follow-up examples emptied"),
        "{again}"
    );

    let record = ok(cascade(&["privacy", "record", "--project", "demo"], root));
    for expected in [
        "# Record of processing: cascade for Northbridge Safeguarding Children Partnership",
        "| people | display_name | name | directory/people.csv (the partnership's HR export) | removed |",
        "| channel_identities | address |",
        "| follow_up_answers | example | example of practice, typed by the person |",
        "| telegram | telegram | Telegram (Telegram Messenger Inc., outside the UK) | Telegram chat id,",
        "| follow_up_examples | examples of practice typed in answer to follow-ups (emptied) | 2 years |",
        "| logs |",
        "| inactive_people | people no longer in people.csv, after they left (erased) | not set: kept until the person is erased |",
        "Lawful basis (Article 6): **TO FILL**",
    ] {
        assert!(
            record.contains(expected),
            "missing {expected:?} in:\n{record}"
        );
    }
    assert!(
        !record.contains("password_hash"),
        "secrets are not listed as data"
    );
}

#[test]
fn serve_applies_the_retention_schedule_as_it_starts() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path();
    let db = project_with_activity(root);
    let serve = |root: &Path| {
        let mut child = Command::new(env!("CARGO_BIN_EXE_cascade"))
            .args([
                "serve",
                "--project",
                "demo",
                "--listen",
                "127.0.0.1:0",
                "--until-idle",
            ])
            .current_dir(root)
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
        while child.try_wait().unwrap().is_none() {
            assert!(std::time::Instant::now() < deadline, "serve did not stop");
            std::thread::sleep(std::time::Duration::from_millis(200));
        }
        text(&child.wait_with_output().unwrap().stderr)
    };
    let log = serve(root);
    assert!(
        !log.contains("retention schedule applied"),
        "off unless configured: {log}"
    );
    assert!(!find(&db, "Wednesday duty").is_empty());

    set_config(root, |t| {
        format!("{t}\n[retention]\nfollow_up_examples = \"90 days\"\n")
    });
    let log = serve(root);
    assert!(
        log.contains("retention schedule applied") && log.contains("follow_up_examples=2"),
        "{log}"
    );
    assert!(
        !log.contains("Okonjo"),
        "logs carry counts, never names: {log}"
    );
    assert!(find(&db, "Wednesday duty").is_empty());
}

/// Both export pages (a person held, and one erased) in real headless
/// Chromium through chromedriver, checked with axe-core: no WCAG 2.2 AA
/// violation.
#[tokio::test(flavor = "multi_thread")]
async fn the_export_pages_pass_axe_core_wcag_2_2_aa_in_chromium() {
    use fantoccini::ClientBuilder;
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().to_owned();
    let pages = tokio::task::spawn_blocking(move || {
        project_with_activity(&root);
        ok(cascade(
            &[
                "people",
                "export",
                DAVID,
                "--project",
                "demo",
                "--out",
                "held",
            ],
            &root,
        ));
        ok(cascade(
            &[
                "people",
                "erase",
                DAVID,
                "--project",
                "demo",
                "--reason",
                "ref 7",
                "--force",
            ],
            &root,
        ));
        ok(cascade(
            &[
                "people",
                "export",
                DAVID,
                "--project",
                "demo",
                "--out",
                "erased",
            ],
            &root,
        ));
        ["held", "erased"].map(|dir| {
            std::fs::read_dir(root.join(dir))
                .unwrap()
                .map(|e| e.unwrap().path())
                .find(|p| p.extension().is_some_and(|e| e == "html"))
                .unwrap()
        })
    })
    .await
    .unwrap();

    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut driver = Command::new("chromedriver")
        .arg(format!("--port={port}"))
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("chromedriver runs (scripts/install-test-deps.sh installs chromium-driver)");
    let mut caps = serde_json::Map::new();
    caps.insert(
        "goog:chromeOptions".to_owned(),
        serde_json::json!({
            "binary": "/usr/bin/chromium",
            "args": ["--headless=new", "--no-sandbox", "--disable-gpu",
                     "--disable-dev-shm-usage", "--window-size=1280,1000"]
        }),
    );
    let mut client = None;
    for _ in 0..100 {
        match ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
            .capabilities(caps.clone())
            .connect(&format!("http://127.0.0.1:{port}"))
            .await
        {
            Ok(c) => {
                client = Some(c);
                break;
            }
            Err(_) => tokio::time::sleep(std::time::Duration::from_millis(100)).await,
        }
    }
    let client = client.expect("chromedriver answers");
    let npm = Command::new("npm").args(["root", "-g"]).output().unwrap();
    let axe = std::path::PathBuf::from(text(&npm.stdout).trim()).join("axe-core/axe.min.js");
    let axe = std::fs::read_to_string(&axe).unwrap_or_else(|e| {
        panic!(
            "{}: {e} (scripts/install-test-deps.sh installs axe-core)",
            axe.display()
        )
    });
    let mut failures = Vec::new();
    for page in &pages {
        client
            .goto(&format!("file://{}", page.display()))
            .await
            .unwrap();
        client
            .execute(&format!("{axe}\nreturn true;"), vec![])
            .await
            .unwrap();
        let found = client
            .execute_async(
                "const done = arguments[arguments.length - 1];
                 axe.run(document, { runOnly: { type: 'tag', values: ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa', 'wcag22aa'] } })
                   .then(r => done(r.violations.map(v => v.id + ': ' + v.help + ' at ' +
                         v.nodes.map(n => n.target.join(' ')).join(', '))))
                   .catch(e => done(['axe failed: ' + e]));",
                vec![],
            )
            .await
            .unwrap();
        let violations: Vec<String> = serde_json::from_value(found).unwrap();
        if !violations.is_empty() {
            failures.push(format!("{}: {violations:#?}", page.display()));
        }
    }
    let _ = client.close().await;
    let _ = driver.kill();
    let _ = driver.wait();
    assert!(failures.is_empty(), "{failures:#?}");
}
