use super::*;
use crate::directory::{Agency, Champion, Directory, Person, Team};
use chrono::{DateTime, NaiveDate, NaiveDateTime, TimeZone, Utc};
use std::path::Path;

const FILE: &str = "rollouts/neglect.toml";

const FULL: &str = r#"id = "neglect-2026-12"
item = "7mb-neglect-seeing-the-child"
start = 2026-12-01T09:30:00
urgent = false
channels = ["email", "telegram"]
fallback = true
ack_deadline_days = 28
reminder_days = [7, 14]
escalation_days = [1, 7, 14]
max_attempts = 5

[audience]
agencies = ["nb-council"]
roles = ["practitioner", "manager"]
champion_themes = ["neglect"]
people = ["p-ivy-lane"]

[audience.exclude]
people = ["p-tom-reilly"]

[[waves]]
name = "Champions"
after_days = 0
champions_of_item_themes = true

[[waves]]
name = "Everyone else"
after_days = 4

[[follow_ups]]
after_days = 90
question = "Have you used this learning in practice?"
answers = ["Used it in practice", "Not yet", "Not relevant to my role"]
"#;

fn parse(text: &str) -> RolloutDefinition {
    parse_definition(Path::new(FILE), text).unwrap_or_else(|errors| {
        panic!(
            "{}",
            errors
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join("\n")
        )
    })
}

fn errors(text: &str) -> Vec<String> {
    parse_definition(Path::new(FILE), text)
        .expect_err("the file should be refused")
        .iter()
        .map(ToString::to_string)
        .collect()
}

/// The full example with one line replaced.
fn full_with(old: &str, new: &str) -> String {
    assert!(FULL.contains(old), "{old}");
    FULL.replacen(old, new, 1)
}

fn has(errors: &[String], start: &str, words: &str) -> bool {
    errors
        .iter()
        .any(|e| e.starts_with(start) && e.contains(words))
}

fn london() -> Calendar {
    Calendar::new("Europe/London", QuietHours::default()).unwrap()
}

fn local(y: i32, m: u32, d: u32, h: u32, min: u32) -> NaiveDateTime {
    NaiveDate::from_ymd_opt(y, m, d)
        .unwrap()
        .and_hms_opt(h, min, 0)
        .unwrap()
}

fn utc(y: i32, m: u32, d: u32, h: u32, min: u32) -> DateTime<Utc> {
    Utc.from_utc_datetime(&local(y, m, d, h, min))
}

fn person(id: &str, agency: &str, team: &str, roles: &[&str], manager: Option<&str>) -> Person {
    Person {
        id: id.to_owned(),
        display_name: id.trim_start_matches("p-").replace('-', " "),
        email: format!("{id}@example.org"),
        agency_id: agency.to_owned(),
        team_id: team.to_owned(),
        roles: roles.iter().map(|r| (*r).to_owned()).collect(),
        manager_id: manager.map(str::to_owned),
        time_zone: None,
        mobile: None,
        works: None,
        absent_until: None,
    }
}

fn champion(person_id: &str, theme: &str, teams: &[&str]) -> Champion {
    Champion {
        person_id: person_id.to_owned(),
        theme: theme.to_owned(),
        team_ids: teams.iter().map(|t| (*t).to_owned()).collect(),
    }
}

/// A small made-up partnership: a council, a police force and a health trust.
fn northbridge() -> Directory {
    let agency = |id: &str, kind: &str| Agency {
        id: id.to_owned(),
        name: id.to_owned(),
        kind: kind.to_owned(),
    };
    let team = |id: &str, agency: &str| Team {
        id: id.to_owned(),
        agency_id: agency.to_owned(),
        name: id.to_owned(),
    };
    Directory {
        agencies: vec![
            agency("nb-council", "local-authority"),
            agency("nb-police", "police"),
            agency("nb-health", "health"),
        ],
        teams: vec![
            team("t-children-social-care", "nb-council"),
            team("t-public-protection", "nb-police"),
            team("t-health-visiting", "nb-health"),
        ],
        people: vec![
            person(
                "p-amara-okafor",
                "nb-council",
                "t-children-social-care",
                &["practitioner"],
                Some("p-grace-hill"),
            ),
            person(
                "p-grace-hill",
                "nb-council",
                "t-children-social-care",
                &["manager"],
                None,
            ),
            person(
                "p-tom-reilly",
                "nb-council",
                "t-children-social-care",
                &["practitioner"],
                Some("p-grace-hill"),
            ),
            person(
                "p-lena-ford",
                "nb-health",
                "t-health-visiting",
                &["practitioner"],
                None,
            ),
            person(
                "p-sam-cole",
                "nb-police",
                "t-public-protection",
                &["practitioner"],
                Some("p-owen-price"),
            ),
            person(
                "p-owen-price",
                "nb-police",
                "t-public-protection",
                &["manager"],
                None,
            ),
            person(
                "p-ivy-lane",
                "nb-health",
                "t-health-visiting",
                &["health-visitor"],
                None,
            ),
            person(
                "p-rob-dean",
                "nb-police",
                "t-public-protection",
                &["detective"],
                Some("p-owen-price"),
            ),
        ],
        champions: vec![
            champion(
                "p-lena-ford",
                "neglect",
                &["t-children-social-care", "t-health-visiting"],
            ),
            champion(
                "p-sam-cole",
                "cse",
                &["t-children-social-care", "t-public-protection"],
            ),
        ],
    }
}

fn neglect() -> Vec<String> {
    vec!["neglect".to_owned()]
}

mod definition {
    use super::*;

    #[test]
    fn a_full_rollout_round_trips_through_to_toml() {
        let def = parse(FULL);
        assert_eq!(def.start, local(2026, 12, 1, 9, 30));
        assert_eq!(def.audience.exclude.people, ["p-tom-reilly"]);
        assert!(def.waves[0].champions_of_item_themes);
        assert!(def.waves[1].is_catch_all());
        assert_eq!(def.follow_ups[0].answers.len(), 3);
        let written = to_toml(&def);
        assert_eq!(parse(&written), def, "{written}");
        assert_eq!(written, FULL, "the example is already in canonical form");
    }

    #[test]
    fn a_rollout_with_every_option_set_otherwise_also_round_trips() {
        let mut def = parse(FULL);
        def.urgent = true;
        def.fallback = false;
        def.max_attempts = 20;
        def.start = local(2027, 1, 4, 8, 15) + chrono::TimeDelta::milliseconds(250);
        def.audience = Audience::default();
        def.waves[1].teams = vec!["t-public-protection".to_owned()];
        def.waves[1].roles = vec!["manager".to_owned()];
        def.waves[1].agencies = vec!["nb-health".to_owned()];
        def.waves[1].people = vec!["p-ivy-lane".to_owned()];
        def.reminder_days.clear();
        def.follow_ups.clear();
        def.unsubscribe_url =
            Some("mailto:learning@northbridge.example?subject=unsubscribe".to_owned());
        let written = to_toml(&def);
        assert_eq!(parse(&written), def, "{written}");
    }

    #[test]
    fn a_digest_names_a_newsletter_issue_instead_of_an_item() {
        let digest = parse(&full_with(
            "item = \"7mb-neglect-seeing-the-child\"\n",
            "newsletter_issue = \"2026-12\"\nnewsletter = \"Partnership Matters\"\n",
        ));
        assert_eq!(
            digest.digest,
            Some(Digest {
                issue: "2026-12".to_owned(),
                newsletter: Some("Partnership Matters".to_owned()),
            })
        );
        assert_eq!(digest.item, "", "filled in when planned");
        let written = to_toml(&digest);
        assert!(!written.contains("\nitem ="), "{written}");
        assert_eq!(parse(&written), digest, "{written}");

        let both = errors(&full_with(
            "item = \"7mb-neglect-seeing-the-child\"\n",
            "item = \"7mb-neglect-seeing-the-child\"\nnewsletter_issue = \"2026-12\"\n",
        ));
        assert!(
            has(&both, "rollouts/neglect.toml:2", "not an `item`"),
            "{both:?}"
        );
        let not_a_month = errors(&full_with(
            "item = \"7mb-neglect-seeing-the-child\"\n",
            "newsletter_issue = \"December\"\n",
        ));
        assert!(
            has(
                &not_a_month,
                "rollouts/neglect.toml:2",
                "is not a year and month"
            ),
            "{not_a_month:?}"
        );
        let stray = errors(&full_with(
            "urgent = false\n",
            "urgent = false\nnewsletter = \"Partnership Matters\"\n",
        ));
        assert!(
            has(
                &stray,
                "rollouts/neglect.toml:5",
                "applies only to a digest"
            ),
            "{stray:?}"
        );
        let neither = errors(&full_with("item = \"7mb-neglect-seeing-the-child\"\n", ""));
        assert!(
            has(&neither, "rollouts/neglect.toml:1", "`item` is missing")
                && neither[0].contains("newsletter_issue"),
            "{neither:?}"
        );
    }

    #[test]
    fn learning_is_mandatory_unless_the_rollout_gives_an_unsubscribe_url() {
        assert_eq!(parse(FULL).unsubscribe_url, None);
        let optional = parse(&full_with(
            "max_attempts = 5\n",
            "max_attempts = 5\nunsubscribe_url = \"https://learning.northbridge.example/newsletter/unsubscribe\"\n",
        ));
        assert_eq!(
            optional.unsubscribe_url.as_deref(),
            Some("https://learning.northbridge.example/newsletter/unsubscribe")
        );
        let errors = errors(&full_with(
            "max_attempts = 5\n",
            "max_attempts = 5\nunsubscribe_url = \"http://x.example/a b\"\n",
        ));
        assert!(
            has(
                &errors,
                "rollouts/neglect.toml:11",
                "must be an https: or mailto: URL"
            ),
            "{errors:?}"
        );
    }

    #[test]
    fn a_definition_survives_the_stores_json() {
        let def = parse(FULL);
        let json = serde_json::to_string(&def).unwrap();
        assert_eq!(
            serde_json::from_str::<RolloutDefinition>(&json).unwrap(),
            def
        );
    }

    #[test]
    fn a_minimal_rollout_gets_the_defaults_and_everyone() {
        let def = parse(
            "id = \"safer-sleep\"\nitem = \"7mb-safer-sleep\"\nstart = 2026-12-01T09:30:00\nchannels = [\"email\"]\nack_deadline_days = 14\n[[waves]]\nname = \"Everyone\"\n",
        );
        assert!(!def.urgent);
        assert!(def.fallback);
        assert_eq!(def.max_attempts, 5);
        assert!(def.audience.is_everyone());
        assert!(def.reminder_days.is_empty() && def.escalation_days.is_empty());
        assert_eq!(def.waves[0].after_days, 0);
    }

    #[test]
    fn unknown_keys_name_their_line_and_guess_the_key_meant() {
        let text = full_with("urgent = false", "urgnet = false")
            .replace("after_days = 4", "after_day = 4")
            .replace(
                "[audience.exclude]\n",
                "[audience.exclude]\nteam = [\"x\"]\n",
            );
        let errors = errors(&text);
        assert_eq!(errors.len(), 3, "{errors:#?}");
        assert!(
            has(
                &errors,
                &format!("{FILE}:4:"),
                "unknown key `urgnet` in the rollout"
            ),
            "{errors:#?}"
        );
        assert!(errors[0].contains("did you mean `urgent`?"), "{errors:#?}");
        assert!(
            has(
                &errors,
                &format!("{FILE}:19:"),
                "unknown key `team` in [audience.exclude]"
            ),
            "{errors:#?}"
        );
        assert!(
            has(
                &errors,
                &format!("{FILE}:29:"),
                "unknown key `after_day` in [[waves]]"
            ),
            "{errors:#?}"
        );
    }

    #[test]
    fn a_rollout_without_an_item_is_refused_at_the_top() {
        let errors = errors(&full_with("item = \"7mb-neglect-seeing-the-child\"\n", ""));
        assert!(
            has(&errors, &format!("{FILE}:1:"), "`item` is missing"),
            "{errors:#?}"
        );
        assert!(errors[0].contains("help: add e.g. item = "), "{errors:#?}");
    }

    #[test]
    fn an_empty_item_names_its_line() {
        let errors = errors(&full_with(
            "item = \"7mb-neglect-seeing-the-child\"",
            "item = \"  \"",
        ));
        assert!(
            has(&errors, &format!("{FILE}:2:"), "`item` is empty"),
            "{errors:#?}"
        );
    }

    #[test]
    fn a_reminder_on_or_after_the_deadline_names_its_line() {
        let errors = errors(&full_with(
            "reminder_days = [7, 14]",
            "reminder_days = [7, 28]",
        ));
        assert_eq!(errors.len(), 1, "{errors:#?}");
        assert!(
            has(
                &errors,
                &format!("{FILE}:8:"),
                "a reminder on day 28 comes after the deadline"
            ),
            "{errors:#?}"
        );
    }

    #[test]
    fn escalation_days_out_of_order_name_their_line() {
        let errors = errors(&full_with(
            "escalation_days = [1, 7, 14]",
            "escalation_days = [1, 14, 7]",
        ));
        assert!(
            has(
                &errors,
                &format!("{FILE}:9:"),
                "`escalation_days` must go up: 7 comes after 14"
            ),
            "{errors:#?}"
        );
    }

    #[test]
    fn a_fourth_escalation_rung_is_refused() {
        let errors = errors(&full_with(
            "escalation_days = [1, 7, 14]",
            "escalation_days = [1, 7, 14, 21]",
        ));
        assert!(
            has(
                &errors,
                &format!("{FILE}:9:"),
                "4 escalation rungs; there are at most 3"
            ),
            "{errors:#?}"
        );
    }

    #[test]
    fn a_wave_without_a_selector_must_be_the_last() {
        let text = full_with("champions_of_item_themes = true\n", "");
        let errors = errors(&text);
        assert_eq!(errors.len(), 1, "{errors:#?}");
        assert!(
            has(
                &errors,
                &format!("{FILE}:21:"),
                "wave \"Champions\" has no selector"
            ),
            "{errors:#?}"
        );
    }

    #[test]
    fn refreshers_are_days_or_weeks_after_the_acknowledgement() {
        let def = parse(&full_with(
            "max_attempts = 5",
            "max_attempts = 5\nrefreshers = [\"30d\", \"13w\", \"180d\"]",
        ));
        assert_eq!(def.refreshers, [30, 91, 180]);
        assert!(parse(FULL).refreshers.is_empty());
    }

    #[test]
    fn refreshers_that_are_not_days_go_down_or_pass_a_year_name_their_line() {
        for (written, words) in [
            (
                "[\"30\"]",
                "refresher \"30\" is not a number of days or weeks",
            ),
            (
                "[\"3m\"]",
                "refresher \"3m\" is not a number of days or weeks",
            ),
            (
                "[30]",
                "a refresher must be text such as \"30d\", not integer",
            ),
            (
                "[\"0d\"]",
                "refresher \"0d\" is 0 days; a refresher comes 1 to 365 days",
            ),
            ("[\"60w\"]", "refresher \"60w\" is 420 days"),
            (
                "[\"90d\", \"30d\"]",
                "`refreshers` must go up: \"30d\" (30 days) comes after 90 days",
            ),
            (
                "[\"1d\", \"2d\", \"3d\", \"4d\", \"5d\", \"6d\", \"7d\"]",
                "7 refreshers; a rollout has at most 6",
            ),
        ] {
            let errors = errors(&full_with(
                "max_attempts = 5",
                &format!("max_attempts = 5\nrefreshers = {written}"),
            ));
            assert!(
                has(&errors, &format!("{FILE}:11:"), words),
                "{written}: {errors:#?}"
            );
            assert!(
                errors.iter().any(|e| e.contains(
                    "help: write each as days or weeks after the person's acknowledgement"
                ) || e.contains("help: keep the few")),
                "{errors:#?}"
            );
        }
    }

    #[test]
    fn a_refresher_comes_calendar_days_after_the_acknowledgement_at_the_same_local_time() {
        let mut def = parse(FULL);
        def.refreshers = vec![28, 30];
        // Acknowledged Friday 27 March 2026, 10:00 GMT; the clocks go
        // forward on the 29th: 28 days on is 10:00 BST, 09:00 UTC.
        let acknowledged = utc(2026, 3, 27, 10, 0);
        assert_eq!(
            refresher_due(&def, &london(), acknowledged, 1),
            Some(utc(2026, 4, 24, 9, 0))
        );
        // 30 days on is a Sunday: held to Monday when quiet hours end.
        let second = refresher_due(&def, &london(), acknowledged, 2).unwrap();
        assert_eq!(
            second
                .with_timezone(&chrono_tz::Europe::London)
                .date_naive(),
            NaiveDate::from_ymd_opt(2026, 4, 27).unwrap()
        );
        assert_eq!(refresher_due(&def, &london(), acknowledged, 3), None);
        assert_eq!(refresher_due(&def, &london(), acknowledged, 0), None);
    }

    #[test]
    fn a_follow_up_needs_two_to_five_answers() {
        let one = errors(&full_with(
            "answers = [\"Used it in practice\", \"Not yet\", \"Not relevant to my role\"]",
            "answers = [\"Yes\"]",
        ));
        assert!(
            has(
                &one,
                &format!("{FILE}:33:"),
                "a follow-up has 1 answers; it needs 2 to 5"
            ),
            "{one:#?}"
        );
        let six = errors(&full_with(
            "answers = [\"Used it in practice\", \"Not yet\", \"Not relevant to my role\"]",
            "answers = [\"a\", \"b\", \"c\", \"d\", \"e\", \"f\"]",
        ));
        assert!(
            has(&six, &format!("{FILE}:33:"), "has 6 answers"),
            "{six:#?}"
        );
    }

    #[test]
    fn an_id_that_is_not_a_slug_is_refused_with_a_suggestion() {
        let errors = errors(&full_with(
            "id = \"neglect-2026-12\"",
            "id = \"Neglect Dec 2026\"",
        ));
        assert!(
            has(
                &errors,
                &format!("{FILE}:1:"),
                "id \"Neglect Dec 2026\" must be lowercase"
            ),
            "{errors:#?}"
        );
        assert!(
            errors[0].contains("id = \"neglect-dec-2026\""),
            "{errors:#?}"
        );
    }

    #[test]
    fn a_start_with_an_offset_or_in_quotes_is_refused() {
        for start in ["2026-12-01T09:30:00Z", "\"2026-12-01 09:30\"", "2026-12-01"] {
            let errors = errors(&full_with("2026-12-01T09:30:00", start));
            assert!(
                has(
                    &errors,
                    &format!("{FILE}:3:"),
                    "`start` must be a local date and time"
                ),
                "{errors:#?}"
            );
        }
    }

    #[test]
    fn wrong_types_are_reported_with_everything_else() {
        let text = full_with("urgent = false", "urgent = \"no\"")
            .replace("max_attempts = 5", "max_attempts = 50")
            .replace("channels = [\"email\", \"telegram\"]", "channels = []")
            .replace("after_days = 90", "after_days = \"ninety\"");
        let errors = errors(&text);
        assert_eq!(errors.len(), 4, "{errors:#?}");
        assert!(
            has(
                &errors,
                &format!("{FILE}:4:"),
                "`urgent` must be true or false"
            ),
            "{errors:#?}"
        );
        assert!(
            has(&errors, &format!("{FILE}:5:"), "`channels` is empty"),
            "{errors:#?}"
        );
        assert!(
            has(
                &errors,
                &format!("{FILE}:10:"),
                "max_attempts must be between 1 and 20, not 50"
            ),
            "{errors:#?}"
        );
        assert!(
            has(
                &errors,
                &format!("{FILE}:31:"),
                "`after_days` must be a whole number"
            ),
            "{errors:#?}"
        );
    }

    #[test]
    fn a_file_that_is_not_toml_names_the_line() {
        let errors = errors(&full_with("fallback = true", "fallback = "));
        assert!(
            has(&errors, &format!("{FILE}:6:"), "not a valid rollout file"),
            "{errors:#?}"
        );
    }

    #[test]
    fn a_misspelt_item_team_and_channel_get_a_did_you_mean() {
        let text = full_with(
            "item = \"7mb-neglect-seeing-the-child\"",
            "item = \"7mb-neglect-seeing-the-chld\"",
        )
        .replace(
            "channels = [\"email\", \"telegram\"]",
            "channels = [\"email\", \"telgram\"]",
        )
        .replace(
            "after_days = 4\n",
            "after_days = 4\nteams = [\"t-public-protecton\"]\n",
        );
        let def = parse(&text);
        let mut known = Known::from_directory(&northbridge());
        known
            .items
            .insert("7mb-neglect-seeing-the-child".to_owned());
        known
            .channels
            .extend(["email".to_owned(), "telegram".to_owned()]);
        known.themes.insert("neglect".to_owned());
        let errors: Vec<String> = validate(&def, Path::new(FILE), &text, &known)
            .iter()
            .map(ToString::to_string)
            .collect();
        assert_eq!(errors.len(), 3, "{errors:#?}");
        assert!(
            has(
                &errors,
                &format!("{FILE}:2:"),
                "did you mean \"7mb-neglect-seeing-the-child\"?"
            ),
            "{errors:#?}"
        );
        assert!(
            has(
                &errors,
                &format!("{FILE}:5:"),
                "no channel instance \"telgram\""
            ),
            "{errors:#?}"
        );
        assert!(
            errors[1].contains("did you mean \"telegram\"?"),
            "{errors:#?}"
        );
        assert!(
            has(
                &errors,
                &format!("{FILE}:29:"),
                "no team \"t-public-protecton\""
            ),
            "{errors:#?}"
        );
        assert!(
            errors[2].contains("did you mean \"t-public-protection\"?"),
            "{errors:#?}"
        );
    }

    #[test]
    fn a_rollout_naming_only_known_things_validates_cleanly() {
        let def = parse(FULL);
        let mut known = Known::from_directory(&northbridge());
        known.items.insert(def.item.clone());
        known.channels.extend(def.channels.iter().cloned());
        known.themes.insert("neglect".to_owned());
        assert_eq!(validate(&def, Path::new(FILE), FULL, &known), []);
    }
}

mod calendar {
    use super::*;

    #[test]
    fn quiet_hours_hold_a_friday_21_00_send_until_monday_08_00() {
        // Friday 4 December 2026, 21:00 GMT.
        let held = london().next_allowed(utc(2026, 12, 4, 21, 0), false);
        assert_eq!(held, utc(2026, 12, 7, 8, 0));
    }

    #[test]
    fn an_urgent_send_is_not_held() {
        let t = utc(2026, 12, 4, 21, 0);
        assert_eq!(london().next_allowed(t, true), t);
    }

    #[test]
    fn a_send_in_working_hours_is_not_moved_and_an_early_one_waits_for_08_00() {
        let cal = london();
        assert_eq!(
            cal.next_allowed(utc(2026, 12, 2, 9, 30), false),
            utc(2026, 12, 2, 9, 30)
        );
        assert_eq!(
            cal.next_allowed(utc(2026, 12, 2, 6, 0), false),
            utc(2026, 12, 2, 8, 0)
        );
    }

    #[test]
    fn without_quiet_weekends_a_saturday_send_goes() {
        let quiet = QuietHours {
            weekends: false,
            ..QuietHours::default()
        };
        let cal = Calendar::new("Europe/London", quiet).unwrap();
        assert_eq!(
            cal.next_allowed(utc(2026, 12, 5, 10, 0), false),
            utc(2026, 12, 5, 10, 0)
        );
    }

    #[test]
    fn a_09_00_wave_a_week_after_27_march_stays_at_09_00_bst() {
        let cal = london();
        let friday = cal.at_local(local(2026, 3, 27, 9, 0));
        assert_eq!(friday, utc(2026, 3, 27, 9, 0));
        assert_eq!(cal.add_days(friday, 7), utc(2026, 4, 3, 8, 0));
        assert_eq!(
            cal.format_local(cal.add_days(friday, 7)),
            "Fri 3 Apr 2026 09:00 BST"
        );
    }

    #[test]
    fn a_09_00_wave_a_week_before_25_october_stays_at_09_00_gmt() {
        let cal = london();
        let friday = cal.at_local(local(2026, 10, 23, 9, 0));
        assert_eq!(friday, utc(2026, 10, 23, 8, 0));
        assert_eq!(cal.add_days(friday, 7), utc(2026, 10, 30, 9, 0));
    }

    #[test]
    fn a_start_in_the_spring_forward_gap_becomes_the_first_valid_instant() {
        // 01:30 on 29 March 2026 does not exist in London: clocks go from 01:00 GMT to 02:00 BST.
        let cal = london();
        let t = cal.at_local(local(2026, 3, 29, 1, 30));
        assert_eq!(t, utc(2026, 3, 29, 1, 0));
        assert_eq!(cal.format_local(t), "Sun 29 Mar 2026 02:00 BST");
    }

    #[test]
    fn a_start_in_the_autumn_fold_takes_the_earlier_instant() {
        // 01:30 on 25 October 2026 happens twice: first in BST.
        assert_eq!(
            london().at_local(local(2026, 10, 25, 1, 30)),
            utc(2026, 10, 25, 0, 30)
        );
    }

    #[test]
    fn new_york_keeps_its_own_clock_and_quiet_hours() {
        let cal = Calendar::new("America/New_York", QuietHours::default()).unwrap();
        // Friday 6 March 2026 09:00 EST; US clocks go forward on Sunday 8 March.
        let friday = cal.at_local(local(2026, 3, 6, 9, 0));
        assert_eq!(friday, utc(2026, 3, 6, 14, 0));
        assert_eq!(cal.add_days(friday, 7), utc(2026, 3, 13, 13, 0));
        // Friday 21:00 EST is held to Monday 08:00 EDT.
        assert_eq!(
            cal.next_allowed(utc(2026, 3, 7, 2, 0), false),
            utc(2026, 3, 9, 12, 0)
        );
    }

    #[test]
    fn an_unknown_time_zone_is_named_with_a_hint() {
        let err = Calendar::new("Europe/Londn", QuietHours::default()).unwrap_err();
        assert!(err.contains("unknown time zone \"Europe/Londn\""), "{err}");
        assert!(err.contains("did you mean \"Europe/London\"?"), "{err}");
        let err = Calendar::new("Northbridge", QuietHours::default()).unwrap_err();
        assert!(err.contains("IANA"), "{err}");
    }

    #[test]
    fn quiet_hours_are_read_as_written_in_cascade_toml() {
        #[derive(serde::Deserialize)]
        struct Section {
            quiet: QuietHours,
        }
        let read = |text: &str| toml::from_str::<Section>(text).map(|s| s.quiet);
        let quiet =
            read("quiet = { start = \"21:30\", end = \"07:00\", weekends = false }").unwrap();
        assert_eq!(
            quiet.start,
            chrono::NaiveTime::from_hms_opt(21, 30, 0).unwrap()
        );
        assert_eq!(quiet.end, chrono::NaiveTime::from_hms_opt(7, 0, 0).unwrap());
        assert!(!quiet.weekends);
        assert_eq!(read("quiet = {}").unwrap(), QuietHours::default());
        assert!(read("quiet = { begin = \"21:30\" }").is_err());
        assert!(
            read("quiet = { start = \"9pm\" }")
                .unwrap_err()
                .to_string()
                .contains("write it as \"20:00\"")
        );
    }
}

mod audience {
    use super::*;

    fn ids(resolved: &Resolved, wave: usize) -> Vec<&str> {
        resolved
            .members
            .iter()
            .filter(|m| m.wave == wave)
            .map(|m| m.person_id.as_str())
            .collect()
    }

    #[test]
    fn a_person_matched_by_three_overlapping_selectors_appears_once() {
        // Amara is in nb-council, is a practitioner and is named in people.
        let def = parse(&full_with(
            "people = [\"p-ivy-lane\"]",
            "people = [\"p-amara-okafor\"]",
        ));
        let resolved = resolve(&def, &neglect(), &northbridge());
        let amara = resolved
            .members
            .iter()
            .filter(|m| m.person_id == "p-amara-okafor")
            .count();
        assert_eq!(amara, 1);
    }

    #[test]
    fn exclusion_wins_over_every_selector() {
        let resolved = resolve(&parse(FULL), &neglect(), &northbridge());
        assert!(
            resolved
                .members
                .iter()
                .all(|m| m.person_id != "p-tom-reilly")
        );
    }

    #[test]
    fn each_person_goes_in_the_first_wave_that_takes_them() {
        let resolved = resolve(&parse(FULL), &neglect(), &northbridge());
        assert_eq!(ids(&resolved, 0), ["p-lena-ford"]);
        assert_eq!(
            ids(&resolved, 1),
            [
                "p-amara-okafor",
                "p-grace-hill",
                "p-ivy-lane",
                "p-owen-price",
                "p-sam-cole"
            ]
        );
    }

    #[test]
    fn people_no_wave_takes_are_left_out_and_counted() {
        let def = parse(&full_with(
            "[[waves]]\nname = \"Everyone else\"",
            "[[waves]]\nname = \"Police\"\nagencies = [\"nb-police\"]",
        ));
        let resolved = resolve(&def, &neglect(), &northbridge());
        assert_eq!(ids(&resolved, 1), ["p-owen-price", "p-sam-cole"]);
        // Amara, Grace and Ivy are in the audience but in neither wave.
        assert_eq!(resolved.unassigned, 3);
    }

    #[test]
    fn an_audience_without_selectors_is_every_active_person() {
        let mut def = parse(FULL);
        def.audience = Audience::default();
        let resolved = resolve(&def, &neglect(), &northbridge());
        assert_eq!(resolved.members.len(), northbridge().people.len());
        assert_eq!(resolved.unassigned, 0);
    }

    #[test]
    fn a_person_listed_twice_in_the_directory_still_gets_one_message() {
        let mut directory = northbridge();
        directory.people.push(directory.people[0].clone());
        let resolved = resolve(&parse(FULL), &neglect(), &directory);
        let amara = resolved
            .members
            .iter()
            .filter(|m| m.person_id == "p-amara-okafor")
            .count();
        assert_eq!(amara, 1);
    }
}

mod steps {
    use super::*;

    fn at(steps: &[Step]) -> Vec<(StepKind, u32, DateTime<Utc>)> {
        steps.iter().map(|s| (s.kind, s.number, s.due_at)).collect()
    }

    #[test]
    fn wave_one_is_sent_reminded_escalated_and_followed_up_at_the_right_instants() {
        let (def, cal) = (parse(FULL), london());
        // Tuesday 1 December 2026, 09:30 GMT.
        assert_eq!(deadline(&def, &cal, 0), utc(2026, 12, 29, 9, 30));
        assert_eq!(
            at(&wave_steps(&def, &cal, 0)),
            [
                (StepKind::Initial, 1, utc(2026, 12, 1, 9, 30)),
                (StepKind::Reminder, 1, utc(2026, 12, 8, 9, 30)),
                (StepKind::Reminder, 2, utc(2026, 12, 15, 9, 30)),
                (StepKind::Escalation, 1, utc(2026, 12, 30, 9, 30)),
                (StepKind::Escalation, 2, utc(2027, 1, 5, 9, 30)),
                (StepKind::Escalation, 3, utc(2027, 1, 12, 9, 30)),
                (StepKind::FollowUp, 1, utc(2027, 3, 1, 9, 30)),
            ]
        );
    }

    #[test]
    fn wave_two_on_a_saturday_waits_for_monday_and_its_steps_follow_from_there() {
        let (def, cal) = (parse(FULL), london());
        // Day 4 is Saturday 5 December: held to Monday 7 December 08:00.
        assert_eq!(wave_send(&def, &cal, 1), utc(2026, 12, 7, 8, 0));
        assert_eq!(deadline(&def, &cal, 1), utc(2027, 1, 4, 8, 0));
        assert_eq!(
            at(&wave_steps(&def, &cal, 1)),
            [
                (StepKind::Initial, 1, utc(2026, 12, 7, 8, 0)),
                (StepKind::Reminder, 1, utc(2026, 12, 14, 8, 0)),
                (StepKind::Reminder, 2, utc(2026, 12, 21, 8, 0)),
                (StepKind::Escalation, 1, utc(2027, 1, 5, 8, 0)),
                (StepKind::Escalation, 2, utc(2027, 1, 11, 8, 0)),
                (StepKind::Escalation, 3, utc(2027, 1, 18, 8, 0)),
                // 90 days on is Sunday 7 March 2027: held to Monday.
                (StepKind::FollowUp, 1, utc(2027, 3, 8, 8, 0)),
            ]
        );
    }

    #[test]
    fn champion_reminders_fall_after_the_last_waves_deadline_in_every_wave() {
        let def = parse(&full_with(
            "escalation_days = [1, 7, 14]",
            "escalation_days = [1, 7, 14]\nchampion_reminder_days = [3, 10]",
        ));
        let cal = london();
        // Wave two's deadline is Monday 4 January 2027 08:00, after wave
        // one's (29 December): three days on is Thursday 7 January.
        assert_eq!(rollout_deadline(&def, &cal), utc(2027, 1, 4, 8, 0));
        for wave in 0..2 {
            let reminders: Vec<_> = at(&wave_steps(&def, &cal, wave))
                .into_iter()
                .filter(|(kind, _, _)| *kind == StepKind::ChampionReminder)
                .collect();
            assert_eq!(
                reminders,
                [
                    (StepKind::ChampionReminder, 1, utc(2027, 1, 7, 8, 0)),
                    (StepKind::ChampionReminder, 2, utc(2027, 1, 14, 8, 0)),
                ],
                "wave {wave}"
            );
        }
        assert!(
            wave_steps(&parse(FULL), &cal, 0)
                .iter()
                .all(|s| s.kind != StepKind::ChampionReminder),
            "none unless asked for"
        );
        let text = to_toml(&def);
        assert!(text.contains("champion_reminder_days = [3, 10]"), "{text}");
        assert_eq!(parse(&text), def);
    }

    #[test]
    fn champion_reminder_days_out_of_order_or_out_of_range_name_their_line() {
        let backwards = errors(&full_with(
            "escalation_days = [1, 7, 14]",
            "escalation_days = [1, 7, 14]\nchampion_reminder_days = [7, 3]",
        ));
        assert!(
            has(
                &backwards,
                &format!("{FILE}:10:"),
                "`champion_reminder_days` must go up: 3 comes after 7"
            ),
            "{backwards:#?}"
        );
        let zero = errors(&full_with(
            "escalation_days = [1, 7, 14]",
            "escalation_days = [1, 7, 14]\nchampion_reminder_days = [0]",
        ));
        assert!(
            has(&zero, &format!("{FILE}:10:"), "champion_reminder_days"),
            "{zero:#?}"
        );
    }

    #[test]
    fn an_urgent_rollout_sends_on_a_saturday() {
        let def = parse(&full_with("urgent = false", "urgent = true"));
        assert_eq!(wave_send(&def, &london(), 1), utc(2026, 12, 5, 9, 30));
        let steps = wave_steps(&def, &london(), 1);
        assert_eq!(steps.last().unwrap().due_at, utc(2027, 3, 5, 9, 30));
    }

    #[test]
    fn step_kinds_have_stable_names() {
        for (kind, name) in [
            (StepKind::Initial, "initial"),
            (StepKind::Reminder, "reminder"),
            (StepKind::Escalation, "escalation"),
            (StepKind::FollowUp, "follow-up"),
            (StepKind::ChampionReminder, "champion-reminder"),
        ] {
            assert_eq!(kind.as_str(), name);
            assert_eq!(kind.to_string(), name);
            assert_eq!(serde_json::to_string(&kind).unwrap(), format!("\"{name}\""));
        }
    }

    #[test]
    fn rung_one_is_the_champion_of_the_items_theme_who_covers_the_team() {
        let directory = northbridge();
        let target = escalation_target(1, "p-amara-okafor", &neglect(), &directory);
        assert_eq!(
            target,
            Some(EscalationTarget::Person("p-lena-ford".to_owned()))
        );
        let cse = escalation_target(1, "p-amara-okafor", &["cse".to_owned()], &directory);
        assert_eq!(cse, Some(EscalationTarget::Person("p-sam-cole".to_owned())));
    }

    #[test]
    fn rung_one_is_nobody_without_a_champion_for_the_theme_and_team() {
        let directory = northbridge();
        // The neglect champion does not cover public protection.
        assert_eq!(
            escalation_target(1, "p-rob-dean", &neglect(), &directory),
            None
        );
        assert_eq!(
            escalation_target(1, "p-amara-okafor", &["safer-sleep".to_owned()], &directory),
            None
        );
        // A champion is never escalated to about themself.
        assert_eq!(
            escalation_target(1, "p-lena-ford", &neglect(), &directory),
            None
        );
    }

    #[test]
    fn rung_two_is_the_persons_manager_when_they_have_one() {
        let directory = northbridge();
        assert_eq!(
            escalation_target(2, "p-amara-okafor", &neglect(), &directory),
            Some(EscalationTarget::Person("p-grace-hill".to_owned()))
        );
        assert_eq!(
            escalation_target(2, "p-ivy-lane", &neglect(), &directory),
            None
        );
    }

    #[test]
    fn rung_three_is_the_business_unit_digest_and_there_is_no_fourth() {
        let directory = northbridge();
        assert_eq!(
            escalation_target(3, "p-ivy-lane", &neglect(), &directory),
            Some(EscalationTarget::BusinessUnitDigest)
        );
        assert_eq!(
            escalation_target(4, "p-ivy-lane", &neglect(), &directory),
            None
        );
    }
}

mod plan {
    use super::*;

    fn summary() -> PlanSummary {
        let def = parse(FULL);
        let resolved = resolve(&def, &neglect(), &northbridge());
        let reachable = |id: &str| match id {
            "p-lena-ford" | "p-sam-cole" => vec!["telegram".to_owned(), "email".to_owned()],
            "p-ivy-lane" => Vec::new(),
            _ => vec!["email".to_owned()],
        };
        let counts = count_resolved(&resolved, def.waves.len(), &def.channels, &reachable);
        summarise(&def, &london(), &counts)
    }

    #[test]
    fn the_plan_says_when_refreshers_come_and_none_is_in_a_waves_timetable() {
        let mut def = parse(FULL);
        def.refreshers = vec![30, 90, 180];
        let resolved = resolve(&def, &neglect(), &northbridge());
        let counts = count_resolved(&resolved, def.waves.len(), &def.channels, &|_: &str| {
            vec!["email".to_owned()]
        });
        let plan = summarise(&def, &london(), &counts);
        let text = plan.to_string();
        assert!(
            text.contains("Refreshers 30, 90 and 180 days after each person's own acknowledgement"),
            "{text}"
        );
        assert!(
            plan.timetable
                .iter()
                .all(|r| r.kind != Some(StepKind::Refresher))
        );
        assert!(!summary().to_string().contains("Refreshers"));
    }

    #[test]
    fn the_plan_counts_people_per_wave_by_first_reachable_channel() {
        let plan = summary();
        assert_eq!(plan.channels, ["email", "telegram"]);
        let champions = &plan.waves[0];
        assert_eq!(
            (
                champions.people,
                champions.by_channel.as_slice(),
                champions.unreachable
            ),
            (1, &[0, 1][..], 0)
        );
        assert_eq!(champions.send_at, utc(2026, 12, 1, 9, 30));
        let rest = &plan.waves[1];
        assert_eq!(
            (rest.people, rest.by_channel.as_slice(), rest.unreachable),
            (5, &[3, 1][..], 1)
        );
        assert_eq!(rest.send_at_local, "Mon 7 Dec 2026 08:00 GMT");
    }

    #[test]
    fn the_plan_prints_a_table_and_timetable_in_local_time() {
        let text = summary().to_string();
        for line in [
            "Rollout neglect-2026-12 of 7mb-neglect-seeing-the-child",
            "Wave           First send                People  by email  by telegram  Unreachable",
            "Champions      Tue 1 Dec 2026 09:30 GMT       1         0            1            0",
            "Everyone else  Mon 7 Dec 2026 08:00 GMT       5         3            1            1",
            "Total                                         6         3            2            1",
            "  Tue 1 Dec 2026 09:30 GMT   Send to the wave",
            "  Tue 29 Dec 2026 09:30 GMT  Deadline to acknowledge",
            "  Wed 30 Dec 2026 09:30 GMT  Escalation 1: to the theme's champion for their team",
            "  Mon 1 Mar 2027 09:30 GMT   Follow-up 1: \"Have you used this learning in practice?\"",
        ] {
            assert!(
                text.lines().any(|l| l == line),
                "missing {line:?} in\n{text}"
            );
        }
    }

    #[test]
    fn the_plan_says_how_many_people_no_wave_takes() {
        let def = parse(&full_with(
            "[[waves]]\nname = \"Everyone else\"",
            "[[waves]]\nname = \"Police\"\nagencies = [\"nb-police\"]",
        ));
        let resolved = resolve(&def, &neglect(), &northbridge());
        let counts = count_resolved(&resolved, def.waves.len(), &def.channels, &|_| {
            vec!["email".to_owned()]
        });
        let text = summarise(&def, &london(), &counts).to_string();
        assert!(
            text.contains("3 people in the audience are in no wave and will receive nothing."),
            "{text}"
        );
    }
}

mod team_posts {
    use super::*;
    use std::collections::BTreeMap;

    const CONFIG: &str = "cascade.toml";
    /// cascade.toml with a Discord instance, its team channels on lines 10 and 11.
    const CONFIG_TEXT: &str = r#"[[channels]]
name = "outbox"
plugin = "file"

[[channels]]
name = "discord"
plugin = "discord"

[channels.team_channels]
"t-children-social-care" = "1200000000000000301"
"t-public-protektion" = "1200000000000000302"
"#;

    fn with_team_posts(list: &str) -> (String, RolloutDefinition) {
        let text = full_with(
            "channels = [\"email\", \"telegram\"]",
            &format!("channels = [\"email\", \"telegram\"]\nteam_posts = {list}"),
        );
        let def = parse(&text);
        (text, def)
    }

    fn channels<'a>(discord: &'a BTreeMap<String, String>) -> Vec<TeamPostChannel<'a>> {
        static NONE: BTreeMap<String, String> = BTreeMap::new();
        vec![
            TeamPostChannel {
                name: "outbox",
                plugin: "file",
                team_channels: &NONE,
                posts_in_channels: false,
            },
            TeamPostChannel {
                name: "email",
                plugin: "email",
                team_channels: &NONE,
                posts_in_channels: false,
            },
            TeamPostChannel {
                name: "discord",
                plugin: "discord",
                team_channels: discord,
                posts_in_channels: true,
            },
        ]
    }

    fn check(list: &str, discord: &BTreeMap<String, String>) -> Vec<String> {
        let (text, def) = with_team_posts(list);
        check_team_posts(
            &def,
            (Path::new(FILE), &text),
            (Path::new(CONFIG), CONFIG_TEXT),
            &channels(discord),
            &northbridge().teams,
        )
        .iter()
        .map(ToString::to_string)
        .collect()
    }

    fn team_channels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(t, a)| ((*t).to_owned(), (*a).to_owned()))
            .collect()
    }

    #[test]
    fn team_posts_parse_and_round_trip_through_to_toml() {
        let (_, def) = with_team_posts("[\"discord\"]");
        assert_eq!(def.team_posts, ["discord"]);
        assert_eq!(parse(&to_toml(&def)), def);
        assert!(parse(FULL).team_posts.is_empty());
        assert!(!to_toml(&parse(FULL)).contains("team_posts"));
    }

    #[test]
    fn a_channel_named_twice_in_team_posts_is_refused_at_its_line() {
        let text = full_with(
            "fallback = true",
            "fallback = true\nteam_posts = [\"discord\", \"discord\"]",
        );
        assert!(has(
            &errors(&text),
            "rollouts/neglect.toml:7:",
            "\"discord\" is listed twice in `team_posts`"
        ));
    }

    #[test]
    fn an_unknown_channel_in_team_posts_is_refused_with_a_guess() {
        let (text, def) = with_team_posts("[\"discrod\"]");
        let known = Known {
            channels: ["email", "telegram", "discord"].map(str::to_owned).into(),
            ..Known::from_directory(&northbridge())
        };
        let problems: Vec<String> = validate(&def, Path::new(FILE), &text, &known)
            .iter()
            .map(ToString::to_string)
            .collect();
        assert!(
            problems
                .iter()
                .any(|p| p.contains("discrod") && p.contains("did you mean \"discord\"")),
            "{problems:?}"
        );
    }

    #[test]
    fn a_channel_whose_plugin_cannot_edit_buttons_is_refused_naming_the_fix() {
        let problems = check("[\"outbox\"]", &BTreeMap::new());
        assert_eq!(problems.len(), 1, "{problems:?}");
        assert!(
            problems[0].starts_with("rollouts/neglect.toml:6: team_posts names channel \"outbox\", whose plugin \"file\" cannot post in a team's channel"),
            "{}",
            problems[0]
        );
        assert!(problems[0].contains(
            "help: name a channel whose plugin has the `channel-posts`, `buttons` and `edit` capabilities"
        ));
    }

    #[test]
    fn a_channel_without_team_channels_is_refused_naming_the_config_file() {
        let problems = check("[\"discord\"]", &BTreeMap::new());
        assert_eq!(
            problems,
            [
                "rollouts/neglect.toml:6: team_posts names channel \"discord\", which has no team_channels\n  help: add team_channels = { \"<team id>\" = \"<channel id>\" } to the [[channels]] entry named \"discord\" in cascade.toml, or remove \"discord\" from team_posts"
            ]
        );
    }

    #[test]
    fn an_unknown_team_in_team_channels_is_refused_at_its_line_in_cascade_toml() {
        let discord = team_channels(&[
            ("t-children-social-care", "1200000000000000301"),
            ("t-public-protektion", "1200000000000000302"),
        ]);
        let problems = check("[\"discord\"]", &discord);
        assert_eq!(
            problems,
            [
                "cascade.toml:11: channel \"discord\": team_channels names team \"t-public-protektion\", which is not in the directory\n  help: did you mean \"t-public-protection\"? use a team_id from directory/teams.csv (and run `cascade import` after adding a team)"
            ]
        );
        let blank = team_channels(&[("t-children-social-care", " ")]);
        let problems = check("[\"discord\"]", &blank);
        assert!(
            problems[0].starts_with("cascade.toml:10: channel \"discord\": team_channels gives team \"t-children-social-care\" an empty address"),
            "{problems:?}"
        );
        let good = team_channels(&[("t-children-social-care", "1200000000000000301")]);
        assert!(check("[\"discord\"]", &good).is_empty());
    }

    #[test]
    fn each_team_of_the_audience_with_a_channel_gets_one_post_at_its_first_send() {
        let (_, def) = with_team_posts("[\"discord\"]");
        let discord = team_channels(&[
            ("t-children-social-care", "301"),
            ("t-health-visiting", "302"),
            ("t-public-protection", "303"),
        ]);
        let members = [
            ("p-amara-okafor", 2_000),
            ("p-tom-reilly", 1_000),
            ("p-grace-hill", 3_000),
            ("p-lena-ford", 5_000),
        ];
        let posts = plan_team_posts(
            &def,
            &channels(&discord),
            &northbridge().teams,
            &tally_teams(&northbridge(), &members),
        );
        let summary: Vec<(&str, &str, usize, i64)> = posts
            .iter()
            .map(|p| (p.team_id.as_str(), p.address.as_str(), p.members, p.due_at))
            .collect();
        assert_eq!(
            summary,
            [
                ("t-children-social-care", "301", 3, 1_000),
                ("t-health-visiting", "302", 1, 5_000)
            ],
            "a team with nobody in the audience gets no post"
        );
        assert!(posts.iter().all(|p| p.channel == "discord"));
    }
}

mod numbers {
    use super::*;
    use crate::rollout::AudienceCounts;
    use proptest::prelude::*;

    #[test]
    fn every_count_of_days_past_a_year_names_its_line_and_the_fix() {
        let text = full_with("ack_deadline_days = 28", "ack_deadline_days = 100000")
            .replace("reminder_days = [7, 14]", "reminder_days = [7, 400]")
            .replace(
                "escalation_days = [1, 7, 14]",
                "escalation_days = [1, 7, 4294967296]",
            )
            .replace("after_days = 4", "after_days = 366")
            .replace("after_days = 90", "after_days = -90");
        let errors = errors(&text);
        for (line, message, fix) in [
            (
                7,
                "ack_deadline_days must be between 1 and 365, not 100000",
                "write e.g. ack_deadline_days = 14",
            ),
            (
                8,
                "reminder_days must be between 1 and 365, not 400",
                "write e.g. reminder_days = 7",
            ),
            (
                9,
                "escalation_days must be between 1 and 365, not 4294967296",
                "write e.g. escalation_days = 7",
            ),
            (
                28,
                "after_days must be between 0 and 365, not 366",
                "write e.g. after_days = 4",
            ),
            (
                31,
                "after_days must be between 1 and 365, not -90",
                "write e.g. after_days = 90",
            ),
        ] {
            assert!(
                errors
                    .iter()
                    .any(|e| e.starts_with(&format!("{FILE}:{line}: {message}\n  help: {fix}"))),
                "no {message:?} at line {line} in {errors:#?}"
            );
        }
        assert_eq!(errors.len(), 5, "{errors:#?}");
    }

    #[test]
    fn day_counts_that_bypassed_the_checks_plan_without_panicking() {
        let mut def = parse(FULL);
        def.ack_deadline_days = u32::MAX;
        def.reminder_days = vec![u32::MAX - 1];
        def.escalation_days = vec![1, u32::MAX];
        def.waves[1].after_days = u32::MAX;
        def.follow_ups[0].after_days = u32::MAX;
        for start in [def.start, NaiveDateTime::MAX, NaiveDateTime::MIN] {
            def.start = start;
            for calendar in [
                london(),
                Calendar::new("Pacific/Kiritimati", QuietHours::default()).unwrap(),
                Calendar::new("Pacific/Pago_Pago", QuietHours::default()).unwrap(),
            ] {
                let send = wave_send(&def, &calendar, 1);
                assert!(deadline(&def, &calendar, 1) >= send);
                let steps = wave_steps(&def, &calendar, 1);
                assert!(steps.windows(2).all(|w| w[0].due_at <= w[1].due_at));
                summarise(&def, &calendar, &AudienceCounts::default()).to_string();
            }
        }
    }

    /// A number as a rollout file might hold one: mostly plausible day
    /// counts, and the extremes of TOML's integers and floats.
    fn number() -> impl Strategy<Value = String> {
        prop_oneof![
            6 => (0i64..=30).prop_map(|n| n.to_string()),
            2 => (-2i64..=800).prop_map(|n| n.to_string()),
            2 => prop::sample::select(vec![
                i64::MIN,
                -1,
                0,
                365,
                366,
                i64::from(u32::MAX),
                i64::from(u32::MAX) + 1,
                i64::MAX,
            ])
            .prop_map(|n| n.to_string()),
            1 => any::<i64>().prop_map(|n| n.to_string()),
            1 => prop::sample::select(vec!["nan", "inf", "-inf", "1.5", "1e300", "-0.0"])
                .prop_map(str::to_owned),
        ]
    }

    fn start() -> impl Strategy<Value = String> {
        (0u32..=9999, 1u32..=12, 1u32..=28, 0u32..24, 0u32..60)
            .prop_map(|(y, m, d, h, min)| format!("{y:04}-{m:02}-{d:02}T{h:02}:{min:02}:00"))
    }

    fn calendar() -> impl Strategy<Value = Calendar> {
        (
            prop::sample::select(vec![
                "Europe/London",
                "Pacific/Kiritimati",
                "Pacific/Pago_Pago",
            ]),
            any::<bool>(),
        )
            .prop_map(|(zone, weekends)| {
                let quiet = QuietHours {
                    weekends,
                    ..QuietHours::default()
                };
                Calendar::new(zone, quiet).unwrap()
            })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]

        #[test]
        fn a_rollout_file_with_any_numbers_is_refused_or_planned(
            start in start(),
            days in prop::collection::vec(number(), 8),
            urgent in any::<bool>(),
            calendar in calendar(),
        ) {
            let text = format!(
                "id = \"r\"\nitem = \"i\"\nstart = {start}\nurgent = {urgent}\nchannels = [\"email\"]\n\
                 ack_deadline_days = {}\nreminder_days = [{}]\nescalation_days = [{}, {}]\nmax_attempts = {}\n\
                 [[waves]]\nname = \"One\"\nafter_days = {}\nchampions_of_item_themes = true\n\
                 [[waves]]\nname = \"Two\"\nafter_days = {}\n\
                 [[follow_ups]]\nafter_days = {}\nquestion = \"Q?\"\nanswers = [\"a\", \"b\"]\n",
                days[0], days[1], days[2], days[3], days[4], days[5], days[6], days[7],
            );
            if let Ok(def) = parse_definition(Path::new(FILE), &text) {
                let counts = [def.ack_deadline_days, def.waves[0].after_days, def.waves[1].after_days, def.follow_ups[0].after_days];
                prop_assert!(counts.into_iter().chain(def.reminder_days.iter().copied()).chain(def.escalation_days.iter().copied()).all(|d| d <= 365));
                for wave in 0..def.waves.len() {
                    let steps = wave_steps(&def, &calendar, wave);
                    prop_assert!(deadline(&def, &calendar, wave) >= steps[0].due_at);
                }
                summarise(&def, &calendar, &AudienceCounts::default()).to_string();
            }
        }

        #[test]
        fn a_definition_with_any_day_counts_plans_without_panicking(
            days in prop::collection::vec(any::<u32>(), 6),
            start_day in any::<i32>(),
            urgent in any::<bool>(),
            calendar in calendar(),
        ) {
            let mut def = parse(FULL);
            def.urgent = urgent;
            def.start = NaiveDate::from_num_days_from_ce_opt(start_day)
                .unwrap_or(NaiveDate::MAX)
                .and_time(def.start.time());
            def.ack_deadline_days = days[0];
            def.reminder_days = vec![days[1]];
            def.escalation_days = vec![days[2], days[3]];
            def.waves[1].after_days = days[4];
            def.follow_ups[0].after_days = days[5];
            for wave in 0..def.waves.len() {
                wave_steps(&def, &calendar, wave);
                deadline(&def, &calendar, wave);
            }
            summarise(&def, &calendar, &AudienceCounts::default()).to_string();
        }
    }
}

mod open {
    use super::*;

    fn open(extra: &str) -> String {
        FULL.replace("max_attempts = 5\n", &format!("max_attempts = 5\n{extra}"))
    }

    #[test]
    fn a_rollout_is_fixed_at_its_start_unless_it_enrols_joiners() {
        let fixed = parse(FULL);
        assert_eq!((fixed.enrol, fixed.open_until), (Enrol::Start, None));
        assert_eq!(open_until(&fixed, &london()), None);

        let def = parse(&open("enrol = \"joiners\"\nopen_until = 2027-03-31\n"));
        assert_eq!(def.enrol, Enrol::Joiners);
        assert_eq!(def.open_until, NaiveDate::from_ymd_opt(2027, 3, 31));
        // The end of 31 March, London time (BST from 28 March).
        assert_eq!(open_until(&def, &london()), Some(utc(2027, 3, 31, 23, 0)));
        let quoted = parse(&open("enrol = \"joiners\"\nopen_until = \"2027-03-31\"\n"));
        assert_eq!(quoted.open_until, def.open_until);
    }

    #[test]
    fn an_open_rollout_without_an_end_stays_open_to_the_end_of_its_deadline_day() {
        let def = parse(&open("enrol = \"joiners\"\n"));
        // The last wave sends Mon 7 Dec 08:00; 28 days later is Mon 4 Jan.
        assert_eq!(rollout_deadline(&def, &london()), utc(2027, 1, 4, 8, 0));
        assert_eq!(open_until(&def, &london()), Some(utc(2027, 1, 5, 0, 0)));
        let plan = summarise(&def, &london(), &AudienceCounts::default());
        assert_eq!(plan.open_until.as_deref(), Some("Mon 4 Jan 2027"));
        assert!(
            plan.to_string()
                .contains("Open to joiners until Mon 4 Jan 2027")
        );
        let fixed = summarise(&parse(FULL), &london(), &AudienceCounts::default());
        assert!(!fixed.to_string().contains("joiners"));
    }

    #[test]
    fn enrolment_mistakes_name_the_line_and_the_fix() {
        let errors = errors(&open("enrol = \"later\"\n"));
        assert_eq!(errors.len(), 1, "{errors:?}");
        assert!(
            errors[0].starts_with(&format!(
                "{FILE}:11: `enrol` must be \"start\" or \"joiners\", not \"later\""
            )),
            "{errors:?}"
        );
        let errors = self::errors(&open("open_until = 2027-03-31\n"));
        assert!(
            errors[0].contains(":11: `open_until` applies only to a rollout open to joiners")
                && errors[0].contains("add enrol = \"joiners\""),
            "{errors:?}"
        );
        let errors = self::errors(&open("enrol = \"joiners\"\nopen_until = \"31/03/2027\"\n"));
        assert!(
            errors[0].contains(":12: `open_until` must be a date"),
            "{errors:?}"
        );
        let errors = self::errors(&open("enrol = \"joiners\"\nopen_until = 2026-11-30\n"));
        assert!(
            errors[0].contains(":12: open_until 2026-11-30 must be from the start day 2026-12-01"),
            "{errors:?}"
        );
        let errors = self::errors(&open("enrol = \"joiners\"\nopen_until = 2028-01-01\n"));
        assert!(
            errors[0].contains("a year after it (2027-12-01)"),
            "{errors:?}"
        );
        let errors = self::errors(&open("enrol = \"joiners\"\nreacknowledge = true\n"));
        assert!(
            errors[0].contains(":11: a re-acknowledgement round cannot enrol joiners"),
            "{errors:?}"
        );
    }

    #[test]
    fn a_joiner_goes_with_their_wave_until_it_sends_then_a_whole_number_of_days_later() {
        let def = parse(&open("enrol = \"joiners\"\n"));
        let cal = london();
        // Before the second wave's send (Mon 7 Dec 08:00): no shift.
        assert_eq!(joiner_shift(&def, &cal, 1, utc(2026, 12, 3, 12, 0)), 0);
        assert_eq!(joiner_shift(&def, &cal, 1, utc(2026, 12, 7, 8, 0)), 0);
        // Joining Tue 8 Dec 10:00: the wave's day 4 (Sat 5th, held to
        // Monday) moves to day 8, Wed 9 Dec 09:30, the first send at the
        // start's local time after they joined.
        let shift = joiner_shift(&def, &cal, 1, utc(2026, 12, 8, 10, 0));
        assert_eq!(shift, 4);
        let steps = shifted_wave_steps(&def, &cal, 1, shift);
        assert_eq!(steps[0].kind, StepKind::Initial);
        assert_eq!(steps[0].due_at, utc(2026, 12, 9, 9, 30));
        assert!(steps.iter().all(|s| s.due_at >= utc(2026, 12, 8, 10, 0)));
        // The same intervals as the wave's own timetable.
        let wave = wave_steps(&def, &cal, 0);
        let reminder = |steps: &[Step]| {
            steps
                .iter()
                .find(|s| s.kind == StepKind::Reminder)
                .map(|s| s.due_at - steps[0].due_at)
        };
        assert_eq!(reminder(&steps), reminder(&wave));
        // Joining on a Saturday waits for Monday, like any send.
        let shift = joiner_shift(&def, &cal, 1, utc(2026, 12, 12, 10, 0));
        let steps = shifted_wave_steps(&def, &cal, 1, shift);
        assert_eq!(steps[0].due_at, utc(2026, 12, 14, 8, 0));
        assert_eq!(
            shifted_wave_steps(&def, &cal, 1, 0),
            wave_steps(&def, &cal, 1)
        );
    }
}
