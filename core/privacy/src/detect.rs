//! Detection: one compiled pattern per kind of identifier, plus the checks a
//! pattern cannot express (NHS check digit, a birth word nearby, the phone
//! allow list, personal domains). Yields byte spans; the parent locates them.

use super::view::View;
use super::{FindingKind, PrivacyConfig, PrivacyError};
use regex::{Match, Regex, RegexBuilder};
use std::cmp::Reverse;
use std::ops::Range;

/// A detection as a byte range of the scanned text.
pub(super) struct Span {
    pub kind: FindingKind,
    pub range: Range<usize>,
}

/// How far apart, in words, a birth word and its date may be.
const MAX_WORDS_FROM_BIRTH_WORD: usize = 5;
/// Caps the text between a birth word and its date, so a long run without
/// spaces cannot make the proximity check expensive.
const MAX_BYTES_FROM_BIRTH_WORD: usize = 100;

/// Whitespace that stays on one line. Views are normalised, so every other
/// space is a plain one.
const SPACE: &str = r"[ \t]";

/// What may stand between the digit groups of a number: a space, dot, dash
/// or slash, or a short run of them.
const DIGIT_GAP: &str = r"[ ./-]{0,3}";

/// `@`, or the ways people write it to dodge address harvesters:
/// "(at)", "[at]", " at ".
const EMAIL_AT: &str = r"(?:[ ]{0,2}@[ ]{0,2}|[ ]*[(\[][ ]*at[ ]*[)\]][ ]*|[ ]+at[ ]+)";
const EMAIL_DOT: &str = r"(?:[ ]{0,2}\.[ ]{0,2}|[ ]*[(\[][ ]*dot[ ]*[)\]][ ]*|[ ]+dot[ ]+)";

/// The words that say a date is someone's birth date ("born", "DOB",
/// "D.O.B", "date of birth", "birthday").
const BIRTH_WORD: &str = r"born|d[ \t]?\.?[ \t]?o[ \t]?\.?[ \t]?b|d/o/b|date[ ./-]*of[ ./-]*birth|birth[ ./-]*(?:date|day)s?";
/// [`BIRTH_WORD`] without "born", which says a birth date only of one
/// person ("was born", "(born") where a year alone follows.
const BIRTH_LABEL: &str =
    r"d[ \t]?\.?[ \t]?o[ \t]?\.?[ \t]?b|d/o/b|date[ ./-]*of[ ./-]*birth|birth[ ./-]*(?:date|day)s?";

/// An ASCII word boundary. Unicode boundaries would send the regex engine to
/// its slow path on any non-ASCII text (curly quotes, dashes), and every
/// pattern but names starts and ends with ASCII.
const WORD_EDGE: &str = r"(?-u:\b)";

#[derive(Debug)]
pub(super) struct Detectors {
    nhs_number: Regex,
    /// Ten digits in any grouping ("94 34 76 59 19"); one that reads as a
    /// phone number is left to the phone number detector.
    nhs_number_regrouped: Regex,
    date: Regex,
    birth_word: Regex,
    /// A year alone after a birth label ("year of birth: 2016", "DOB
    /// summer 2016") or after "born" said of one person ("Child K was born
    /// in 2016", "Child K (born 2016)"): with an initial and a town it
    /// narrows a child down as a full date does. "Children born in 2012"
    /// is a cohort and passes. The year is the first group.
    year_of_birth: Regex,
    postcode: Regex,
    phone_number: Regex,
    email: Regex,
    email_at: Regex,
    email_dot: Regex,
    denied_name: Option<Regex>,
    /// Digits of allowed lines, normalised by [`phone_digits`].
    allowed_phone_numbers: Vec<String>,
    /// Lowercase, without a leading `@`.
    personal_email_domains: Vec<String>,
}

impl Detectors {
    pub(super) fn new(config: &PrivacyConfig) -> Result<Detectors, PrivacyError> {
        Ok(Detectors {
            nhs_number: built_in(&format!(
                r"{WORD_EDGE}[0-9]{{3}}{DIGIT_GAP}[0-9]{{3}}{DIGIT_GAP}[0-9]{{4}}{WORD_EDGE}"
            )),
            nhs_number_regrouped: built_in(&format!(
                r"{WORD_EDGE}[0-9](?:[ .-]?[0-9]){{9}}{WORD_EDGE}"
            )),
            date: built_in(&date_pattern()),
            birth_word: built_in(&format!(r"(?i){WORD_EDGE}(?:{BIRTH_WORD}){WORD_EDGE}\.?")),
            year_of_birth: built_in(&format!(
                r"(?im)(?:{WORD_EDGE}(?:was|is|being){SPACE}+born|[(,;:]{SPACE}*born|^{SPACE}*born|{WORD_EDGE}(?:{BIRTH_LABEL}|year{SPACE}*of{SPACE}*birth|birth{SPACE}*year|yob)){WORD_EDGE}[.:,]?{SPACE}*(?:(?:in|during|around|about|circa|c\.){SPACE}*)?(?:(?:the{SPACE}+)?(?:early|late|mid|spring|summer|autumn|fall|winter)(?:{SPACE}+|{SPACE}*-{SPACE}*)(?:of{SPACE}+)?)?((?:19|20)[0-9]{{2}}){WORD_EDGE}"
            )),
            postcode: built_in(&format!(
                r"(?i){WORD_EDGE}(?:[A-PR-UWYZ][0-9][0-9A-HJKPS-UW]?|[A-PR-UWYZ][A-HK-Y][0-9][0-9ABEHMNPRV-Y]?|GIR)[ .-]{{0,2}}[0-9][ABD-HJLNP-UW-Z]{{2}}{WORD_EDGE}"
            )),
            phone_number: built_in(&format!(
                r"(?:(?:\+|{WORD_EDGE}00)[ .-]{{0,2}}44[ .-]{{0,2}}(?:\(0\)[ .-]{{0,2}}|0[ .-]{{0,2}})?[1-9](?:[ ./()-]{{0,2}}[0-9]){{8,9}}|(?:\(0|{WORD_EDGE}0)(?:[ ./)-]{{0,2}}[0-9]){{9,10}}){WORD_EDGE}"
            )),
            email: built_in(&format!(
                r"(?i)[A-Z0-9._%+-]+{EMAIL_AT}[A-Z0-9-]+(?:{EMAIL_DOT}[A-Z0-9-]+)+"
            )),
            email_at: built_in(EMAIL_AT),
            email_dot: built_in(EMAIL_DOT),
            denied_name: denied_name_pattern(&config.deny_names)?,
            allowed_phone_numbers: config
                .allow_phone_numbers
                .iter()
                .map(|number| allowed_phone_number(number))
                .collect::<Result<_, _>>()?,
            personal_email_domains: config
                .personal_email_domains
                .iter()
                .map(|domain| personal_email_domain(domain))
                .collect::<Result<_, _>>()?,
        })
    }

    /// All detections in text order, without overlaps.
    pub(super) fn spans(&self, text: &str) -> Vec<Span> {
        // Detectors run in priority order; the stable sort below keeps that
        // order for detections of the same span (an NHS number that also
        // reads as a phone number is reported as an NHS number).
        let mut spans = Vec::new();
        let mut push = |kind, m: Match<'_>| {
            spans.push(Span {
                kind,
                range: m.range(),
            })
        };
        let regrouped = self
            .nhs_number_regrouped
            .find_iter(text)
            .filter(|m| !is_uk_phone_number(&phone_digits(m.as_str())));
        for m in self.nhs_number.find_iter(text).chain(regrouped) {
            if nhs_check_digit_is_valid(m.as_str()) {
                push(FindingKind::NhsNumber, m);
            }
        }
        for m in self.dates_of_birth(text) {
            push(FindingKind::DateOfBirth, m);
        }
        // A full date at the same place wins below (the longer span).
        for captures in self.year_of_birth.captures_iter(text) {
            if let Some(year) = captures.get(1) {
                push(FindingKind::DateOfBirth, year);
            }
        }
        for m in self.postcode.find_iter(text) {
            // "#d1d5db" is a colour in a template's style, not a postcode.
            let colour = text[..m.start()].ends_with('#');
            if !reads_as_ordinal(m.as_str()) && !colour {
                push(FindingKind::Postcode, m);
            }
        }
        for m in self.phone_number.find_iter(text) {
            let digits = phone_digits(m.as_str());
            if is_uk_phone_number(&digits) && !self.allowed_phone_numbers.contains(&digits) {
                push(FindingKind::PhoneNumber, m);
            }
        }
        if !self.personal_email_domains.is_empty() {
            for m in self.email.find_iter(text) {
                if self.is_personal(m.as_str()) {
                    push(FindingKind::PersonalEmail, m);
                }
            }
        }
        if let Some(denied_name) = &self.denied_name {
            for m in denied_name.find_iter(text) {
                push(FindingKind::DeniedName, m);
            }
        }

        spans.sort_by_key(|span| (span.range.start, Reverse(span.range.end)));
        let mut covered_to = 0;
        spans.retain(|span| {
            let keep = span.range.start >= covered_to;
            if keep {
                covered_to = span.range.end;
            }
            keep
        });
        spans
    }

    /// Dates that a birth word points at. Each birth word claims at most one
    /// date, the next one if close enough ("born on 3 March 2016") else the
    /// previous one ("3 March 2016 (DOB)"), so a meeting date later in the
    /// same sentence is not dragged in.
    fn dates_of_birth<'t>(&self, text: &'t str) -> Vec<Match<'t>> {
        let dates: Vec<Match<'t>> = self.date.find_iter(text).collect();
        let mut claimed = Vec::new();
        for word in self.birth_word.find_iter(text) {
            let next = dates.partition_point(|date| date.start() < word.end());
            let after = dates
                .get(next)
                .filter(|date| text.get(word.end()..date.start()).is_some_and(near));
            let before = next
                .checked_sub(1)
                .map(|previous| dates[previous])
                .filter(|date| text.get(date.end()..word.start()).is_some_and(near));
            claimed.extend(after.copied().or(before));
        }
        claimed
    }

    fn is_personal(&self, address: &str) -> bool {
        let address = address.to_ascii_lowercase();
        let Some(at) = self.email_at.find_iter(&address).last() else {
            return false;
        };
        let domain = self.email_dot.replace_all(&address[at.end()..], ".");
        self.personal_email_domains.iter().any(|personal| {
            domain
                .strip_suffix(personal.as_str())
                .is_some_and(|rest| rest.is_empty() || rest.ends_with('.'))
        })
    }
}

fn allowed_phone_number(number: &str) -> Result<String, PrivacyError> {
    let digits = phone_digits(number);
    if digits.is_empty() {
        return Err(PrivacyError::PhoneNumberWithoutDigits(number.to_string()));
    }
    Ok(digits)
}

/// A configured domain, lowercased; a leading `@` is forgiven.
fn personal_email_domain(domain: &str) -> Result<String, PrivacyError> {
    let normalised = domain.trim().trim_start_matches('@').to_ascii_lowercase();
    let labels_ok = normalised.split('.').all(|label| {
        !label.is_empty() && label.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
    });
    if !labels_ok || !normalised.contains('.') {
        return Err(PrivacyError::NotADomain(domain.to_string()));
    }
    Ok(normalised)
}

/// Compiles a pattern written in this file; a failure is a bug here, caught
/// by any test that builds a guard.
fn built_in(pattern: &str) -> Regex {
    Regex::new(pattern).expect("built-in privacy patterns are valid")
}

/// Dates in the forms people write them: day-month-year (UK order, or
/// month-day) with any separator or none (12/03/2015, 12.03.15, 12032015),
/// year-month-day, written months with an optional ordinal and a two- or
/// four-digit year (12th of Mar 2015, 3 Mar 12, March 12, 2015), and the
/// partial dates that still narrow a child down next to a birth word (March
/// 2012, 3rd March, 03/2012).
fn date_pattern() -> String {
    let day = "(?:0?[1-9]|[12][0-9]|3[01])";
    let day2 = "(?:0[1-9]|[12][0-9]|3[01])";
    let month = "(?:0?[1-9]|1[0-2])";
    let month2 = "(?:0[1-9]|1[0-2])";
    let month_name = "(?:jan(?:uary)?|feb(?:ruary)?|mar(?:ch)?|apr(?:il)?|may|june?|july?\
                      |aug(?:ust)?|sep(?:t(?:ember)?)?|oct(?:ober)?|nov(?:ember)?|dec(?:ember)?)";
    let ordinal = "(?:st|nd|rd|th)?";
    let sep = "[ ]?[/.-][ ]?|[ ]";
    let year = "(?:(?:19|20)[0-9]{2}|'?[0-9]{2})";
    let long_year = "(?:19|20)[0-9]{2}";
    let gap = format!("(?:{SPACE}*[.,/-]?{SPACE}*)");
    let alternatives = [
        format!("{day}(?:{sep}){month}(?:{sep}){year}"),
        format!("{month}(?:{sep}){day}(?:{sep}){year}"),
        format!("{long_year}(?:{sep}){month}(?:{sep}){day}"),
        format!("{day2}{month2}(?:{long_year}|[0-9]{{2}})"),
        format!("{long_year}{month2}{day2}"),
        format!("{day}{ordinal}(?:{SPACE}+of)?{gap}{month_name}\\.?{gap}{year}"),
        format!("{month_name}\\.?{gap}(?:the{SPACE}+)?{day}{ordinal}{gap}{year}"),
        format!("{month_name}\\.?{gap}(?:of{SPACE}+)?{year}"),
        format!("{day}{ordinal}(?:{SPACE}+of)?{gap}{month_name}"),
        format!("{month_name}\\.?{SPACE}+{day}{ordinal}"),
        format!("{month}[/.-]{long_year}"),
    ];
    format!(r"(?i){WORD_EDGE}(?:{}){WORD_EDGE}", alternatives.join("|"))
}

/// Whether the text between a birth word and a date keeps them together:
/// same sentence, a few words apart, and on one line unless nothing but
/// punctuation stands between them (a label and its value on the next line,
/// or in the next table cell).
fn near(between: &str) -> bool {
    let words = between
        .split_whitespace()
        .filter(|word| word.chars().any(char::is_alphanumeric))
        .count();
    between.len() <= MAX_BYTES_FROM_BIRTH_WORD
        && (!between.contains('\n') || words == 0)
        && !starts_a_new_sentence(between)
        && words <= MAX_WORDS_FROM_BIRTH_WORD
}

/// A full stop, semicolon, `!` or `?` followed by space and then a letter.
/// "DOB. 03/03/2016" stays together; "born early. The panel met on" does not.
fn starts_a_new_sentence(between: &str) -> bool {
    between
        .match_indices(['.', ';', '!', '?'])
        .any(|(at, stop)| {
            let rest = &between[at + stop.len()..];
            let after_space = rest.trim_start();
            after_space.len() < rest.len() && after_space.starts_with(char::is_alphabetic)
        })
}

/// The NHS mod-11 check: weights 10 down to 2 over the first nine digits;
/// the check digit is 11 minus the sum mod 11, where 11 reads as 0 and 10
/// means no valid number.
pub(super) fn nhs_check_digit_is_valid(candidate: &str) -> bool {
    let digits: Vec<u32> = candidate.chars().filter_map(|c| c.to_digit(10)).collect();
    let [body @ .., check] = digits.as_slice() else {
        return false;
    };
    if body.len() != 9 {
        return false;
    }
    let sum: u32 = body
        .iter()
        .zip((2..=10).rev())
        .map(|(digit, weight)| digit * weight)
        .sum();
    match 11 - sum % 11 {
        11 => *check == 0,
        10 => false,
        expected => *check == expected,
    }
}

/// Whether a postcode-shaped match ends in a lowercase ordinal ("Y6 2nd",
/// "a1 3rd"): case-insensitive postcodes would otherwise flag school years
/// and list items. A postcode written in capitals is still flagged.
fn reads_as_ordinal(candidate: &str) -> bool {
    let mut last_three = candidate.chars().rev().take(3);
    let (Some(second), Some(first), Some(digit)) =
        (last_three.next(), last_three.next(), last_three.next())
    else {
        return false;
    };
    let suffix = match digit {
        '1' => ['s', 't'],
        '2' => ['n', 'd'],
        '3' => ['r', 'd'],
        _ => ['t', 'h'],
    };
    [first, second] == suffix
}

/// A phone number's digits, with an international `44` (after `+` or `00`)
/// read as a leading `0`, so "+44 (0)161 496 0000", "0044 161 496 0000" and
/// "0161-496-0000" compare equal.
fn phone_digits(number: &str) -> String {
    let digits: String = number.chars().filter(char::is_ascii_digit).collect();
    let digits = match digits.strip_prefix("0044") {
        Some(rest) => format!("44{rest}"),
        None => digits,
    };
    match digits.strip_prefix("44") {
        Some(national) if national.starts_with('0') => national.to_string(),
        Some(national) => format!("0{national}"),
        None => digits,
    }
}

/// Mobiles (07) and geographic lines (01, 02) have 11 digits; a few 01
/// areas still have 10. Numbers in 03 (which Ofcom keeps for public bodies
/// and charities) and 08 (freephone and service lines) belong to
/// organisations, not families, so they are not a child's detail.
fn is_uk_phone_number(digits: &str) -> bool {
    let prefix_ok = ["01", "02", "07"].iter().any(|p| digits.starts_with(p));
    prefix_ok && (digits.len() == 11 || (digits.len() == 10 && digits.starts_with("01")))
}

/// One pattern for all denied names, longest first so "Ann Smith" wins over
/// "Ann". Names are read as the text is (accents and look-alike letters
/// folded), split into their letters-and-digits parts; in the text the parts
/// may be joined by any short run of other characters or none (a space, the
/// line break of a hard-wrapped paragraph, "Smith-Jones", "ann.smith",
/// "/ann-smith", "AnnSmith"), and a name of several parts also matches
/// surname first ("Smith, Ann").
fn denied_name_pattern(names: &[String]) -> Result<Option<Regex>, PrivacyError> {
    // Each name as words (split at spaces), each word as its parts.
    let names: Vec<Vec<Vec<String>>> = names
        .iter()
        .map(|name| {
            View::raw(name)
                .normalised()
                .text
                .split_whitespace()
                .map(|word| {
                    word.split(|c: char| !c.is_alphanumeric())
                        .filter(|part| !part.is_empty())
                        .map(str::to_owned)
                        .collect::<Vec<_>>()
                })
                .filter(|parts| !parts.is_empty())
                .collect()
        })
        .collect();
    if names.iter().any(Vec::is_empty) {
        return Err(PrivacyError::EmptyDenyName);
    }
    if names.is_empty() {
        return Ok(None);
    }
    let mut alternatives: Vec<String> = Vec::new();
    for words in &names {
        // In a name of several words the others anchor each part, so even a
        // short part may be letter-spaced.
        let anchored = words.len() > 1;
        let word = |parts: &Vec<String>| -> String {
            parts
                .iter()
                .map(|part| part_pattern(part, anchored))
                .collect::<Vec<_>>()
                .join(NAME_GAP)
        };
        let edged = |pattern: String, first: &str, last: &str| {
            format!(
                "{}{pattern}{}",
                name_edge(first.chars().next()),
                name_edge(last.chars().next_back())
            )
        };
        let first_part = &words[0][0];
        let last_parts = &words[words.len() - 1];
        let last_part = &last_parts[last_parts.len() - 1];
        match words.as_slice() {
            [only] => alternatives.push(edged(word(only), first_part, last_part)),
            [given @ .., surname] => {
                let given: Vec<String> = given.iter().map(word).collect();
                let given = given.join(NAME_GAP);
                let surname_word = word(surname);
                let surname_first = &surname[0];
                let given_last = {
                    let parts = &words[words.len() - 2];
                    &parts[parts.len() - 1]
                };
                let initial = regex::escape(&first_part.chars().next().unwrap_or('?').to_string());
                alternatives.push(edged(
                    format!("{given}{MIDDLE_NAME}{NAME_GAP}{surname_word}"),
                    first_part,
                    last_part,
                ));
                alternatives.push(edged(
                    format!("{surname_word}{NAME_GAP}{given}"),
                    surname_first,
                    given_last,
                ));
                alternatives.push(edged(
                    format!(r"{initial}\.?[^\p{{L}}\p{{N}}]{{1,3}}{surname_word}"),
                    first_part,
                    last_part,
                ));
                alternatives.push(edged(
                    format!(r"{surname_word},?[^\p{{L}}\p{{N}}]{{1,3}}{initial}\.?"),
                    surname_first,
                    first_part,
                ));
            }
            [] => {}
        }
    }
    alternatives.sort_by_key(|pattern| Reverse(pattern.len()));
    RegexBuilder::new(&format!("(?:{})", alternatives.join("|")))
        .case_insensitive(true)
        .size_limit(64 << 20)
        .build()
        .map(Some)
        .map_err(PrivacyError::DenyNamesTooLarge)
}

/// What may join the parts of a name in text.
const NAME_GAP: &str = r"[^\p{L}\p{N}]{0,4}";

/// A middle name or nickname between given name and surname: one
/// capitalised word ("Jayden Lee Northwood") or a short quoted or bracketed
/// one ("Jayden \"JJ\" Northwood").
const MIDDLE_NAME: &str = r#"(?:[^\p{L}\p{N}]{1,3}(?-i:\p{Lu}\p{Ll}+)|[^\p{L}\p{N}"'(\u{201C}\u{2018}]{0,3}["'(\u{201C}\u{2018}][^"')\n\u{201D}\u{2019}]{1,20}["')\u{201D}\u{2019}])?"#;

/// One part of a name. Letters of a part may be spaced or split
/// ("J a y d e n", "Jay-den"), unless it is a short name standing alone:
/// "Ann" would turn up inside ordinary phrases.
fn part_pattern(part: &str, anchored: bool) -> String {
    if !anchored && part.chars().count() < 4 {
        return regex::escape(part);
    }
    part.chars()
        .map(|c| regex::escape(&c.to_string()))
        .collect::<Vec<_>>()
        .join("[-.' ]?")
}

/// The boundary beside a name's first or last letter: the fast ASCII one
/// where that letter is ASCII, so only names like "Zoë" pay for Unicode.
fn name_edge(letter: Option<char>) -> &'static str {
    match letter {
        Some(letter) if letter.is_ascii_alphanumeric() => WORD_EDGE,
        _ => r"\b",
    }
}
