//! The practice feedback loop (issue 19) through the real binary: follow-up
//! answers with reasons and examples, in a real store, summed up by
//! `cascade feedback` per item and theme, and drafted as a "You said, we
//! did" newsletter item that `cascade check` passes and nothing sends.

mod support;

use cascade_model::time::millis;
use cascade_store::{Evidence, NewAnswer};
use cascade_test_support::utc;
use std::path::Path;
use std::process::{Command, Output};
use support::{OUTBOX, project, rollout_file, start};

/// The neglect briefing to Children's Social Care North, with a follow-up
/// whose answers that say "not used" carry a reason.
const NORTH: &str = r#"
id = "north"
item = "7mb-neglect-seeing-the-child"
start = 2026-12-01T09:00:00
channels = ["outbox"]
ack_deadline_days = 10
[audience]
teams = ["cs-north"]
[[waves]]
name = "Everyone"
after_days = 0
[[follow_ups]]
after_days = 90
question = "Have you used this in practice?"
answers = ["Used it in practice", "Not yet"]
reasons = ["Not relevant to my role", "No opportunity yet", "Need more training"]
"#;

fn cascade(args: &[&str], dir: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_cascade"))
        .args(args)
        .arg("--project")
        .arg(dir)
        .output()
        .unwrap()
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// Five answers in March 2027 (one a day from the 1st), one in April:
/// Tom and Jake used it (Tom with an example), Sofia needs more training
/// (with an example), David had no opportunity yet, Amara gave no reason;
/// Grace's answer in April is outside the period.
async fn answered(dir: &Path) {
    let path = rollout_file(dir, "north", NORTH);
    let runner = start(dir, &path, utc(2026, 11, 30, 12, 0)).await;
    let store = runner.store();
    let answers = [
        (
            "p-tom-reilly",
            "Used it in practice",
            None,
            Some("I asked to see where the children sleep."),
        ),
        ("p-jake-whitmore", "Used it in practice", None, None),
        (
            "p-sofia-marin",
            "Not yet",
            Some("Need more training"),
            Some("A session on GCP2 would help."),
        ),
        (
            "p-david-okonjo",
            "Not yet",
            Some("No opportunity yet"),
            None,
        ),
        ("p-amara-okafor", "Not yet", None, None),
    ];
    for (day, (person, answer, reason, example)) in (1..).zip(answers) {
        assert!(
            store
                .answer_follow_up(&NewAnswer {
                    rollout_id: "north".to_owned(),
                    person_id: person.to_owned(),
                    follow_up: 1,
                    answer: answer.to_owned(),
                    example: None,
                    channel: "outbox".to_owned(),
                    at: millis(utc(2027, 3, day, 10, 0)),
                })
                .await
                .unwrap()
        );
        if let Some(reason) = reason {
            assert!(
                store
                    .add_follow_up_reason("north", person, 1, reason)
                    .await
                    .unwrap()
            );
        }
        if let Some(example) = example {
            assert!(
                store
                    .add_follow_up_example("north", person, 1, example)
                    .await
                    .unwrap()
            );
        }
    }
    // A second reason does not replace the first.
    assert!(
        !store
            .add_follow_up_reason("north", "p-sofia-marin", 1, "No opportunity yet")
            .await
            .unwrap()
    );
    store
        .answer_follow_up(&NewAnswer {
            rollout_id: "north".to_owned(),
            person_id: "p-grace-lindqvist".to_owned(),
            follow_up: 1,
            answer: "Not yet".to_owned(),
            example: None,
            channel: "outbox".to_owned(),
            at: millis(utc(2027, 4, 2, 10, 0)),
        })
        .await
        .unwrap();
    runner.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn feedback_sums_up_use_reasons_and_examples_and_drafts_a_checked_newsletter_item() {
    let dir = project(OUTBOX);
    answered(dir.path()).await;

    let out = cascade(
        &["feedback", "--from", "2027-03-01", "--to", "2027-03-31"],
        dir.path(),
    );
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "{stdout}{}", text(&out.stderr));
    assert!(
        stdout.starts_with("Practice feedback, 2027-03-01 to 2027-03-31\n"),
        "{stdout}"
    );
    assert!(
        stdout.contains(
            "Neglect: seeing the child (7mb-neglect-seeing-the-child): 2 of 5 used it (40%)\n"
        ),
        "{stdout}"
    );
    for line in [
        "    Not used: Need more training: 1\n",
        "    Not used: No opportunity yet: 1\n",
        "    Not used: No reason given: 1\n",
        "    Example: \"I asked to see where the children sleep.\"\n",
        "    Example: \"A session on GCP2 would help.\"\n",
        "  Neglect: 2 of 5 used it (40%)\n",
    ] {
        assert!(stdout.contains(line), "{line} in {stdout}");
    }
    // Nothing is written without --draft.
    let draft = dir.path().join("content/nl-2027-04-you-said-we-did.md");
    assert!(!draft.exists());

    let out = cascade(
        &[
            "feedback",
            "--from",
            "2027-03-01",
            "--to",
            "2027-03-31",
            "--draft",
        ],
        dir.path(),
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let written = std::fs::read_to_string(&draft).unwrap();
    assert!(
        written.contains("title = \"You said, we did\""),
        "{written}"
    );
    assert!(written.contains("status = \"draft\""), "{written}");
    assert!(
        written.contains("newsletter = \"Partnership Matters\"\nissue = \"2027-04\""),
        "{written}"
    );
    assert!(
        written.contains("**Neglect: seeing the child**: 2 of 5 used it (40%)."),
        "{written}"
    );
    assert!(
        written.contains("> A session on GCP2 would help.\n"),
        "{written}"
    );
    assert!(
        written.contains("## We did\n\nBUSINESS UNIT TO WRITE"),
        "{written}"
    );
    let check = cascade(&["check"], dir.path());
    assert!(
        check.status.success(),
        "{}{}",
        text(&check.stdout),
        text(&check.stderr)
    );
    // A draft may not be rolled out until it is approved.
    let rollout = rollout_file(
        dir.path(),
        "said",
        &NORTH
            .replace("id = \"north\"", "id = \"said\"")
            .replace("7mb-neglect-seeing-the-child", "nl-2027-04-you-said-we-did"),
    );
    let plan = cascade(
        &["rollout", "plan", &rollout.display().to_string()],
        dir.path(),
    );
    assert!(!plan.status.success());
    assert!(
        text(&plan.stderr).contains("has status draft"),
        "{}",
        text(&plan.stderr)
    );

    // Again: the draft there is kept, not overwritten.
    let again = cascade(
        &[
            "feedback",
            "--from",
            "2027-03-01",
            "--to",
            "2027-03-31",
            "--draft",
        ],
        dir.path(),
    );
    assert!(!again.status.success());
    assert!(
        text(&again.stderr).contains("already exists; it was not changed"),
        "{}",
        text(&again.stderr)
    );
    assert_eq!(std::fs::read_to_string(&draft).unwrap(), written);

    // A period without answers has nothing to draft, and writes nothing.
    let none = cascade(
        &[
            "feedback",
            "--from",
            "2026-01-01",
            "--to",
            "2026-01-31",
            "--draft",
        ],
        dir.path(),
    );
    assert!(!none.status.success());
    assert!(text(&none.stdout).contains("No follow-up answers in this period."));
    assert!(
        !dir.path()
            .join("content/nl-2026-02-you-said-we-did.md")
            .exists()
    );
}
