use super::*;
use FindingKind::*;
use proptest::prelude::*;
use std::sync::LazyLock;

fn config() -> PrivacyConfig {
    PrivacyConfig {
        deny_names: vec![
            "Ann Smith".into(),
            "Kayden".into(),
            "Ann".into(),
            "Zoë".into(),
        ],
        allow_phone_numbers: vec!["0161 496 0000".into(), "+44 20 7946 0123".into()],
        personal_email_domains: vec!["gmail.com".into(), "@Hotmail.co.uk".into()],
    }
}

/// Built once: compiling the patterns dominates a debug-build test run.
static GUARD: LazyLock<PrivacyGuard> =
    LazyLock::new(|| PrivacyGuard::new(&config()).expect("test config is valid"));

fn guard() -> &'static PrivacyGuard {
    &GUARD
}

fn found(text: &str) -> Vec<(FindingKind, String)> {
    guard()
        .scan(text)
        .into_iter()
        .map(|finding| (finding.kind, finding.text))
        .collect()
}

/// Each text must yield exactly one finding, of the kind and text given.
fn assert_flagged(cases: &[(&str, FindingKind, &str)]) {
    for (text, kind, expected) in cases {
        assert_eq!(
            found(text),
            vec![(*kind, expected.to_string())],
            "in {text:?}"
        );
    }
}

fn assert_not_flagged(texts: &[&str]) {
    for text in texts {
        assert_eq!(found(text), vec![], "in {text:?}");
    }
}

fn allow(text: &str, reason: &str) -> PrivacyAllow {
    PrivacyAllow {
        text: text.into(),
        reason: reason.into(),
    }
}

#[test]
fn the_check_digit_accepts_the_published_test_number_and_rejects_its_neighbours() {
    assert!(detect::nhs_check_digit_is_valid("9434765919"));
    assert!(!detect::nhs_check_digit_is_valid("9434765918"));
    // Weighted sum 210 gives 11 - 1 = 10: no check digit can make it valid.
    for last in 0..=9 {
        assert!(!detect::nhs_check_digit_is_valid(&format!(
            "123456789{last}"
        )));
    }
    // Weighted sum 330 gives 11 - 0 = 11, which reads as 0.
    assert!(detect::nhs_check_digit_is_valid("9876543210"));
}

#[test]
fn valid_nhs_numbers_are_flagged_plain_spaced_and_hyphenated() {
    assert_flagged(&[
        ("NHS no. 9434765919 on file", NhsNumber, "9434765919"),
        ("NHS number 943 476 5919.", NhsNumber, "943 476 5919"),
        ("(943-476-5919)", NhsNumber, "943-476-5919"),
        ("ref 401 023 2137", NhsNumber, "401 023 2137"),
        ("4857773457", NhsNumber, "4857773457"),
        ("GP record: 450-557-7104", NhsNumber, "450-557-7104"),
        ("9876543210", NhsNumber, "9876543210"),
    ]);
}

#[test]
fn an_nhs_number_with_a_bad_check_digit_is_not_flagged() {
    assert_not_flagged(&[
        "9434765918",
        "943 476 5910",
        "401-023-2136",
        "1234567890",
        "1234567891",
    ]);
}

#[test]
fn a_valid_nhs_number_inside_a_longer_digit_run_is_not_flagged() {
    assert_not_flagged(&["19434765919", "94347659190", "case 943 476 59190"]);
}

#[test]
fn dates_near_a_birth_word_are_flagged() {
    assert_flagged(&[
        (
            "Child B was born on 3 March 2016.",
            DateOfBirth,
            "3 March 2016",
        ),
        ("DOB: 03/03/2016", DateOfBirth, "03/03/2016"),
        ("D.O.B. 03-03-2016", DateOfBirth, "03-03-2016"),
        ("date of birth 2016-03-03", DateOfBirth, "2016-03-03"),
        ("Date of Birth: 12th Mar 2015", DateOfBirth, "12th Mar 2015"),
        ("born March 12, 2015", DateOfBirth, "March 12, 2015"),
        (
            "birthday is 12th of March 2015",
            DateOfBirth,
            "12th of March 2015",
        ),
        (
            "born in Leeds General Infirmary on 12.03.15",
            DateOfBirth,
            "12.03.15",
        ),
        (
            "seen with mum (12 March 2015, DOB)",
            DateOfBirth,
            "12 March 2015",
        ),
    ]);
}

/// A year of birth alone still narrows a child down next to an initial
/// and a town; the attack review got "Child K (born 2016)" past the guard.
#[test]
fn a_year_alone_after_a_birth_word_is_flagged() {
    assert_flagged(&[
        ("Child K (born 2016) lived in", DateOfBirth, "2016"),
        ("Child K was born in 2016.", DateOfBirth, "2016"),
        ("Child K, born in 2016, lived", DateOfBirth, "2016"),
        ("a boy who is born in 2026", DateOfBirth, "2026"),
        ("Year of birth: 2016", DateOfBirth, "2016"),
        ("YOB 2016", DateOfBirth, "2016"),
        ("DOB: 2016", DateOfBirth, "2016"),
        ("D.O.B. 2016", DateOfBirth, "2016"),
        ("birth year 2009", DateOfBirth, "2009"),
        ("born in the summer of 2016", DateOfBirth, "2016"),
        ("born in early-2016", DateOfBirth, "2016"),
        ("born c. 2016", DateOfBirth, "2016"),
        // A full date at the same place is reported once, whole.
        ("born 2016-03-03", DateOfBirth, "2016-03-03"),
        ("born in March 2016", DateOfBirth, "March 2016"),
    ]);
}

#[test]
fn a_year_not_said_to_be_a_birth_year_is_not_flagged() {
    assert_not_flagged(&[
        "The 2016 review found that babies born prematurely need follow-up.",
        "Babies born in the 1990s",
        "Children born in 2012 are now in Year 9.",
        "Babies who were born in 2019 during lockdown",
        "born in 20 minutes",
        "The reborn 2016 protocol",
        "Learning born of the 2019 review",
    ]);
}

#[test]
fn a_date_without_a_birth_word_is_not_flagged() {
    assert_not_flagged(&[
        "the panel met on 12 March 2024",
        "Review published 2024-03-12 and shared 15/04/2024.",
        "Strategy meeting: March 12, 2024",
        "Data for 2019/20 and 2020-21 show a rise.",
        "The 2023 rapid review, 7 minutes to read.",
    ]);
}

#[test]
fn a_birth_word_claims_only_its_nearest_date() {
    assert_flagged(&[
        (
            "Child B was born on 3 March 2016 and the review met on 12 March 2024",
            DateOfBirth,
            "3 March 2016",
        ),
        (
            "Reviewed on 12 March 2024 (DOB 3 March 2016)",
            DateOfBirth,
            "3 March 2016",
        ),
    ]);
}

#[test]
fn a_birth_word_in_another_sentence_line_or_far_away_does_not_flag_a_date() {
    assert_not_flagged(&[
        "Child B was born prematurely. The panel met on 12 March 2024.",
        "Date of birth withheld\n12 March 2024: panel meeting",
        "Child B was born in hospital and much later the panel met on 12 March 2024",
        "Baby B is a newborn; review 12 March 2024",
    ]);
}

#[test]
fn full_postcodes_are_flagged_with_or_without_the_space_in_any_case() {
    assert_flagged(&[
        ("lives at M1 1AE with her mother", Postcode, "M1 1AE"),
        ("SW1A 1AA", Postcode, "SW1A 1AA"),
        ("moved to B33 8TH.", Postcode, "B33 8TH"),
        ("(ec1a1bb)", Postcode, "ec1a1bb"),
        ("w1a 0ax", Postcode, "w1a 0ax"),
        ("CR2 6XH", Postcode, "CR2 6XH"),
    ]);
}

#[test]
fn partial_postcodes_and_ordinals_are_not_flagged() {
    assert_not_flagged(&[
        "families across the M1 and B33 areas",
        "Y6 2nd term, the A1 3rd junction",
        "Q1 2AB",
        "<td style=\"border-top: 1px solid #d1d5db\">",
        "Section 47 enquiry, level 3 training",
    ]);
}

#[test]
fn mobile_landline_and_plus_44_numbers_are_flagged() {
    assert_flagged(&[
        ("mum's mobile 07700 900123", PhoneNumber, "07700 900123"),
        ("07700-900-123", PhoneNumber, "07700-900-123"),
        ("call 07700900123.", PhoneNumber, "07700900123"),
        ("home: 0113 496 0999", PhoneNumber, "0113 496 0999"),
        ("(020) 7946 0999", PhoneNumber, "(020) 7946 0999"),
        ("+44 7700 900123", PhoneNumber, "+44 7700 900123"),
        ("+44 (0)113 496 0999", PhoneNumber, "+44 (0)113 496 0999"),
        ("+447700900123", PhoneNumber, "+447700900123"),
        ("01697 73999", PhoneNumber, "01697 73999"),
    ]);
}

#[test]
fn agency_lines_on_the_allow_list_are_not_flagged_in_any_format() {
    assert_not_flagged(&[
        "Front door: 0161 496 0000",
        "Front door: 0161-4960000",
        "Front door: +44 161 496 0000",
        "Out of hours: 020 7946 0123",
        "Childline 0800 1111, NSPCC 0808 800 5000",
        // 03 and 08 numbers belong to organisations, never to a family.
        "MASH 0300 123 4567, Samaritans 0330 094 5717",
    ]);
}

#[test]
fn personal_email_addresses_are_flagged_when_their_domain_is_configured() {
    assert_flagged(&[
        (
            "mum: jo.bloggs88@gmail.com.",
            PersonalEmail,
            "jo.bloggs88@gmail.com",
        ),
        ("JB@HOTMAIL.CO.UK", PersonalEmail, "JB@HOTMAIL.CO.UK"),
        ("x+y@mail.gmail.com", PersonalEmail, "x+y@mail.gmail.com"),
    ]);
}

#[test]
fn professional_and_lookalike_email_addresses_are_not_flagged() {
    assert_not_flagged(&[
        "contact jo.bloggs@nhs.net",
        "pc.smith@merseyside.police.uk",
        "mash@leeds.gov.uk",
        "someone@notgmail.com",
    ]);
}

#[test]
fn no_email_address_is_flagged_when_no_personal_domains_are_configured() {
    let guard = PrivacyGuard::new(&PrivacyConfig::default()).expect("default config is valid");
    assert_eq!(guard.scan("jo.bloggs88@gmail.com"), vec![]);
}

#[test]
fn deny_listed_names_are_flagged_whole_word_in_any_case() {
    assert_flagged(&[
        ("Ann Smith attended", DeniedName, "Ann Smith"),
        ("KAYDEN was seen", DeniedName, "KAYDEN"),
        ("spoke to ann.", DeniedName, "ann"),
        ("named Ann  Smith", DeniedName, "Ann  Smith"),
        ("a note about Ann\nSmith", DeniedName, "Ann\nSmith"),
    ]);
}

#[test]
fn a_deny_listed_name_with_a_non_ascii_letter_is_matched_whole_word() {
    assert_flagged(&[
        ("ZOË, aged 4", DeniedName, "ZOË"),
        ("(Zoë)", DeniedName, "Zoë"),
    ]);
    assert_not_flagged(&["Zoëy and Zoëlla"]);
}

#[test]
fn names_not_on_the_deny_list_and_pseudonyms_are_not_flagged() {
    assert_not_flagged(&[
        "Child B lived with Mother and Mr X.",
        "Annual review, Annabel and Kaydens",
        "Sibling C and Child B were known to Children's Social Care.",
    ]);
}

#[test]
fn findings_come_in_text_order_and_overlaps_are_reported_once() {
    let text = "Kayden, DOB 03/03/2016, NHS 943 476 5919, M1 1AE, 07700 900123, ann@gmail.com";
    let kinds: Vec<FindingKind> = found(text).into_iter().map(|(kind, _)| kind).collect();
    assert_eq!(
        kinds,
        [
            DeniedName,
            DateOfBirth,
            NhsNumber,
            Postcode,
            PhoneNumber,
            PersonalEmail
        ]
    );
}

#[test]
fn a_finding_on_line_3_reports_its_line_and_character_column() {
    let text = "# Learning from Child B\n\nÉquipe noted: NHS 943 476 5919 was shared.\n";
    let findings = guard().scan(text);
    assert_eq!(
        findings,
        vec![Finding {
            kind: NhsNumber,
            text: "943 476 5919".into(),
            line: 3,
            column: 19,
        }]
    );
}

#[test]
fn the_message_names_the_file_position_kind_text_and_fix() {
    let finding = &guard().scan("\n\ncall 07700 900123")[0];
    assert_eq!(
        finding
            .in_file(Path::new("content/7mb-neglect.md"))
            .to_string(),
        "content/7mb-neglect.md:3:6: phone number \"07700 900123\" looks like a child's \
         identifying detail; remove it, or if it is safe (e.g. a public agency line) add a \
         [[privacy_allow]] entry with text and reason to the front matter"
    );
}

#[test]
fn an_allow_with_an_empty_reason_does_not_unblock() {
    let text = "Call the school office on 0113 496 0999.";
    let allows = [allow("0113 496 0999", "  ")];
    assert_eq!(guard().blocking(text, &allows).len(), 1);
}

#[test]
fn a_matching_allow_with_a_reason_unblocks_only_its_finding() {
    let text = "School office 0113 496 0999; mum 07700 900123.";
    let allows = [allow(" 0113 4960999 ", "public school switchboard")];
    let blocking = guard().blocking(text, &allows);
    assert_eq!(blocking.len(), 1);
    assert_eq!(blocking[0].text, "07700 900123");
}

#[test]
fn the_config_reads_from_toml_and_refuses_unknown_keys() {
    let config: PrivacyConfig =
        toml::from_str("deny_names = [\"Ann Smith\"]\n").expect("valid privacy table");
    assert_eq!(config.deny_names, ["Ann Smith"]);
    assert!(config.allow_phone_numbers.is_empty());
    assert!(toml::from_str::<PrivacyConfig>("deny_name = [\"Ann\"]\n").is_err());
}

#[test]
fn unusable_config_entries_are_refused_with_the_fix() {
    let refused = |config: PrivacyConfig| {
        PrivacyGuard::new(&config)
            .expect_err("config should be refused")
            .to_string()
    };
    assert!(
        refused(PrivacyConfig {
            deny_names: vec!["Ann".into(), " ".into()],
            ..PrivacyConfig::default()
        })
        .contains("deny_names has an empty entry")
    );
    assert!(
        refused(PrivacyConfig {
            allow_phone_numbers: vec!["front door".into()],
            ..PrivacyConfig::default()
        })
        .contains("\"front door\" has no digits")
    );
    assert!(
        refused(PrivacyConfig {
            personal_email_domains: vec!["jo@gmail.com".into()],
            ..PrivacyConfig::default()
        })
        .contains("write the part after the @")
    );
}

fn text_with_identifiers() -> impl Strategy<Value = String> {
    prop::collection::vec(
        prop_oneof![
            any::<String>(),
            Just("943 476 5919".to_string()),
            Just("born 3 March 2016".to_string()),
            Just("M1 1AE".to_string()),
            Just("+44 (0)7700 900123".to_string()),
            Just("Ann\nSmith".to_string()),
            "[0-9 /.()+\\-\n]{0,20}",
            "[A-Za-z0-9 éß日本😀\u{212A}\u{17F}]{0,20}",
        ],
        0..12,
    )
    .prop_map(|parts| parts.concat())
}

proptest! {
    #[test]
    fn scanning_arbitrary_text_never_panics(text in any::<String>()) {
        guard().scan(&text);
    }

    #[test]
    fn every_finding_points_at_its_own_text(text in text_with_identifiers()) {
        for finding in guard().scan(&text) {
            let line = text.split('\n').nth(finding.line - 1).expect("line exists");
            let line_start = line.as_ptr() as usize - text.as_ptr() as usize;
            let column_start: usize = line.chars().take(finding.column - 1).map(char::len_utf8).sum();
            prop_assert!(text[line_start + column_start..].starts_with(&finding.text));
        }
    }
}

/// Known identifiers as tokens: the guard must catch them however the
/// tokens are written and joined.
const KNOWN: &[(FindingKind, &[&str])] = &[
    (NhsNumber, &["943", "476", "5919"]),
    (NhsNumber, &["401", "023", "2137"]),
    (PhoneNumber, &["07700", "900123"]),
    (PhoneNumber, &["0113", "496", "0999"]),
    (Postcode, &["M1", "1AE"]),
    (Postcode, &["SW1A", "1AA"]),
    (DateOfBirth, &["DOB", "03/03/2016"]),
    (DateOfBirth, &["born", "3", "March", "2016"]),
    (DeniedName, &["Ann", "Smith"]),
    (DeniedName, &["Kayden"]),
    (PersonalEmail, &["jo.bloggs88@gmail.com"]),
];

/// Ways to write one character that a reader (or the renderer) reads as it.
fn encode_char(c: char, choice: u8) -> String {
    let look_alike = match c {
        'a' => Some('а'),
        'e' => Some('е'),
        'o' => Some('о'),
        'S' => Some('Ѕ'),
        'A' => Some('А'),
        'M' => Some('М'),
        _ => None,
    };
    match choice % 9 {
        1 => format!("&#{};", c as u32),
        2 => format!("&#x{:X};", c as u32),
        3 if c.is_ascii_punctuation() => format!("\\{c}"),
        4 => format!("{c}\u{200B}"),
        5 if c.is_ascii_digit() => char::from_u32(c as u32 + 0xFEE0).unwrap().to_string(),
        6 => look_alike.map_or(c.to_string(), String::from),
        7 => format!("{c}\u{00AD}"),
        _ => c.to_string(),
    }
}

/// What may join two tokens: spaces of every kind, dashes, dots, entities.
const JOINS: &[&str] = &[
    " ", "\u{00A0}", "&nbsp;", "&#32;", "\u{2009}", "  ", "\u{202F}", "&#160;",
];
const DIGIT_JOINS: &[&str] = &["-", ".", "", "\u{2013}", "\\-", "&#45;", "&ndash;"];

fn encoded_identifier() -> impl Strategy<Value = (FindingKind, String, bool)> {
    (
        0..KNOWN.len(),
        prop::collection::vec(any::<u8>(), 64),
        any::<bool>(),
        any::<bool>(),
    )
        .prop_map(|(which, choices, emphasis, in_markdown)| {
            let (kind, tokens) = KNOWN[which];
            let mut choices = choices.into_iter().cycle();
            let mut next = || choices.next().unwrap_or_default();
            let all_digits = tokens.iter().all(|t| t.chars().all(|c| c.is_ascii_digit()));
            let mut written = String::new();
            for (i, token) in tokens.iter().enumerate() {
                if i > 0 {
                    let joins = if all_digits && next() % 2 == 0 {
                        DIGIT_JOINS
                    } else {
                        JOINS
                    };
                    written.push_str(joins[usize::from(next()) % joins.len()]);
                }
                let word: String = token.chars().map(|c| encode_char(c, next())).collect();
                if emphasis && in_markdown && next() % 2 == 0 {
                    written.push_str(&format!("**{word}**"));
                } else {
                    written.push_str(&word);
                }
            }
            (kind, written, in_markdown)
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(400))]

    #[test]
    fn a_known_identifier_in_any_encoding_is_caught(
        (kind, written, in_markdown) in encoded_identifier(),
        before in prop::sample::select(vec!["", "Notes: ", "The panel heard that ", "(", "- "]),
        after in prop::sample::select(vec!["", ".", " was shared.", ")", ", then"]),
    ) {
        let text = format!("{before}{written}{after}");
        let findings = if in_markdown {
            guard().scan_item(&format!("+++\ntitle = \"t\"\n+++\n\n{text}\n"))
        } else {
            guard().scan(&text)
        };
        prop_assert!(
            findings.iter().any(|f| f.kind == kind),
            "{kind:?} not caught in {text:?}: {findings:?}"
        );
    }

    #[test]
    fn a_toml_escaped_identifier_in_front_matter_is_caught(
        which in 0..KNOWN.len(),
        escaped in prop::collection::vec(any::<bool>(), 32),
    ) {
        let (kind, tokens) = KNOWN[which];
        let mut escaped = escaped.into_iter().cycle();
        let value: String = tokens
            .join(" ")
            .chars()
            .map(|c| if escaped.next().unwrap_or_default() { format!("\\u{:04X}", c as u32) } else { c.to_string() })
            .collect();
        let findings = guard().scan_item(&format!("+++\ntitle = \"{value}\"\n+++\n\nBody.\n"));
        prop_assert!(findings.iter().any(|f| f.kind == kind), "{kind:?} not caught in {value:?}");
    }
}

#[test]
fn a_deny_listed_name_is_caught_in_the_forms_people_write_names() {
    for text in [
        "Smith, Ann",
        "SMITH Ann",
        "A. Smith",
        "Smith, A.",
        "ann.smith@school.example",
        "/ann-smith",
        "AnnSmith",
        "Ann \"Annie\" Smith",
        "Ann Louise Smith",
        "K a y d e n",
        "Kay-den",
        "<span title=\"Kayden\">x</span>",
        "Contact: <ann.smith@gmail.com>",
    ] {
        assert!(
            found(text)
                .iter()
                .any(|(kind, _)| matches!(kind, DeniedName | PersonalEmail)),
            "{text:?}: {:?}",
            found(text)
        );
    }
    assert_not_flagged(&["Smithy and Annabel", "Annsmithy", "an n-gram"]);
}

#[test]
fn ten_digits_in_any_grouping_with_a_valid_check_digit_are_an_nhs_number() {
    assert_flagged(&[
        ("94 34 76 59 19", NhsNumber, "94 34 76 59 19"),
        ("9434 765 919", NhsNumber, "9434 765 919"),
    ]);
    assert_not_flagged(&["0161 496 0000 is the front door", "94 34 76 59 18"]);
}

#[test]
fn an_identifier_split_by_a_comment_or_links_or_typed_in_other_digits_is_caught() {
    for source in [
        "Kay<!-- -->den was there",
        "[Ann](/a) [Smith](/b) was there",
        "mum: ٠٧٧٠٠ ٩٠٠١٢٣",
        "date-of-birth: 03/03/2016",
        "date_of_birth 03/03/2016",
        "born March the 3rd, 2016",
        "jo.bloggs88 @ gmail . com",
    ] {
        let findings = guard().scan_item(&format!("+++\ntitle = \"t\"\n+++\n\n{source}\n"));
        assert!(!findings.is_empty(), "{source:?}");
    }
}
