//! The champion's cascade confirmation as a short guided exchange, for chat
//! channels without forms: the team (when they cover more than one), the
//! date of the session, the number present, the method, then a summary to
//! confirm. Pure: input in, the next question (or the finished
//! confirmation) out.

use crate::ack::{CASCADE_METHODS, CascadeForm, CheckedCascade, check_cascade};
use chrono::{Duration, NaiveDate};

/// A conversation left alone this long is forgotten.
pub const IDLE_LIMIT_MS: i64 = 60 * 60 * 1000;

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
enum Step {
    Team,
    Date,
    Present,
    Method,
    Check,
}

/// The guided confirmation asks for no note, so the built-in detectors are
/// all its check could use; built once.
static NO_NOTE_GUARD: std::sync::LazyLock<cascade_privacy::PrivacyGuard> =
    std::sync::LazyLock::new(|| {
        cascade_privacy::PrivacyGuard::new(&cascade_privacy::PrivacyConfig::default())
            .expect("the default privacy settings are valid")
    });

/// A confirmation being put together. Kept in the store between answers
/// (as JSON), so a restart does not lose it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Draft {
    pub delivery_id: i64,
    pub item_id: String,
    pub title: String,
    pub champion_id: String,
    /// The teams the champion covers: (id, name).
    pub teams: Vec<(String, String)>,
    team: Option<usize>,
    date: Option<NaiveDate>,
    present: Option<u32>,
    #[serde(with = "method")]
    method: Option<Method>,
    step: Step,
    pub touched_at: i64,
}

/// What the person said.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Said<'a> {
    /// A button of the last question, e.g. `team:1`, `date:0`, `ok`.
    Choice(&'a str),
    Text(&'a str),
}

/// A question: words and the choices offered as buttons (choice, label).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Question {
    pub text: String,
    pub choices: Vec<(String, String)>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Next {
    Ask(Question),
    Done(CheckedCascade),
    Cancelled,
}

/// One of [`CASCADE_METHODS`]' values.
type Method = &'static str;

/// A method kept as its value, read back as the one in [`CASCADE_METHODS`].
mod method {
    use super::CASCADE_METHODS;
    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    pub fn serialize<S: Serializer>(m: &Option<&'static str>, s: S) -> Result<S::Ok, S::Error> {
        m.serialize(s)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<&'static str>, D::Error> {
        Ok(Option::<String>::deserialize(d)?.and_then(|m| {
            CASCADE_METHODS
                .iter()
                .find(|(v, _)| *v == m)
                .map(|(v, _)| *v)
        }))
    }
}

impl Draft {
    pub fn new(
        delivery_id: i64,
        item_id: String,
        title: String,
        champion_id: String,
        teams: Vec<(String, String)>,
        now: i64,
    ) -> Draft {
        let team = (teams.len() == 1).then_some(0);
        Draft {
            delivery_id,
            item_id,
            title,
            champion_id,
            teams,
            team,
            date: None,
            present: None,
            method: None,
            step: if team.is_some() {
                Step::Date
            } else {
                Step::Team
            },
            touched_at: now,
        }
    }

    /// The question to ask now.
    pub fn question(&self, today: NaiveDate, problem: Option<&str>) -> Question {
        let mut text = problem.map(|p| format!("{p}\n\n")).unwrap_or_default();
        let choices = match self.step {
            Step::Team => {
                text.push_str(&format!(
                    "Which team did you cascade \"{}\" to?",
                    self.title
                ));
                self.teams
                    .iter()
                    .enumerate()
                    .map(|(i, (_, name))| (format!("team:{i}"), name.clone()))
                    .collect()
            }
            Step::Date => {
                text.push_str(
                    "When was the team meeting or session? Choose, or type the date as YYYY-MM-DD.",
                );
                vec![
                    ("date:0".to_owned(), format!("Today ({today})")),
                    (
                        "date:1".to_owned(),
                        format!("Yesterday ({})", today - Duration::days(1)),
                    ),
                ]
            }
            Step::Present => {
                text.push_str("How many people were present? Type the number.");
                Vec::new()
            }
            Step::Method => {
                text.push_str("How did you share it?");
                CASCADE_METHODS
                    .iter()
                    .map(|(value, label)| (format!("method:{value}"), (*label).to_owned()))
                    .collect()
            }
            Step::Check => {
                text.push_str(&format!(
                    "Please check, then confirm:\nItem: {}\nTeam: {}\nDate: {}\nPresent: {}\nMethod: {}",
                    self.title,
                    self.team.map(|i| self.teams[i].1.as_str()).unwrap_or_default(),
                    self.date.map(|d| d.to_string()).unwrap_or_default(),
                    self.present.unwrap_or_default(),
                    self.method
                        .and_then(|m| CASCADE_METHODS.iter().find(|(v, _)| *v == m))
                        .map(|(_, label)| *label)
                        .unwrap_or_default(),
                ));
                vec![
                    ("ok".to_owned(), "Confirm".to_owned()),
                    ("cancel".to_owned(), "Cancel".to_owned()),
                ]
            }
        };
        Question { text, choices }
    }

    /// Takes the person's answer to the current question.
    pub fn answer(&mut self, said: Said<'_>, today: NaiveDate, now: i64) -> Next {
        self.touched_at = now;
        if matches!(said, Said::Choice("cancel")) {
            return Next::Cancelled;
        }
        let problem = match (self.step, said) {
            (Step::Team, Said::Choice(c)) => match c
                .strip_prefix("team:")
                .and_then(|i| i.parse::<usize>().ok())
                .filter(|&i| i < self.teams.len())
            {
                Some(i) => {
                    self.team = Some(i);
                    self.step = Step::Date;
                    None
                }
                None => Some("Choose one of the teams below."),
            },
            (Step::Team, Said::Text(t)) => {
                let typed = t.trim().to_lowercase();
                match self
                    .teams
                    .iter()
                    .position(|(id, name)| name.to_lowercase() == typed || *id == typed)
                {
                    Some(i) => {
                        self.team = Some(i);
                        self.step = Step::Date;
                        None
                    }
                    None => Some("That is not one of the teams you cover. Choose one below."),
                }
            }
            (Step::Date, said) => {
                let date = match said {
                    Said::Choice("date:0") => Some(today),
                    Said::Choice("date:1") => Some(today - Duration::days(1)),
                    Said::Choice(_) => None,
                    Said::Text(t) => NaiveDate::parse_from_str(t.trim(), "%Y-%m-%d").ok(),
                };
                match date {
                    Some(d) if d > today => Some("The session date cannot be in the future."),
                    Some(d) => {
                        self.date = Some(d);
                        self.step = Step::Present;
                        None
                    }
                    None => Some("Type the date as YYYY-MM-DD, for example 2026-03-14."),
                }
            }
            (Step::Present, Said::Text(t)) => match t.trim().parse::<u32>() {
                Ok(n) => {
                    self.present = Some(n);
                    self.step = Step::Method;
                    None
                }
                Err(_) => Some("Type the number of people present as a whole number."),
            },
            (Step::Present, Said::Choice(_)) => {
                Some("Type the number of people present as a whole number.")
            }
            (Step::Method, Said::Choice(c)) => match c
                .strip_prefix("method:")
                .and_then(|m| CASCADE_METHODS.iter().find(|(v, _)| *v == m))
            {
                Some((value, _)) => {
                    self.method = Some(value);
                    self.step = Step::Check;
                    None
                }
                None => Some("Choose one of the ways below."),
            },
            (Step::Method, Said::Text(_)) => Some("Choose one of the ways below."),
            (Step::Check, Said::Choice("ok")) => {
                let form = CascadeForm {
                    team: self
                        .team
                        .map(|i| self.teams[i].0.clone())
                        .unwrap_or_default(),
                    session_date: self.date.map(|d| d.to_string()).unwrap_or_default(),
                    present: self.present.map(|n| n.to_string()).unwrap_or_default(),
                    method: self.method.unwrap_or_default().to_owned(),
                    note: String::new(),
                };
                match check_cascade(&form, &self.teams, today, &NO_NOTE_GUARD) {
                    Ok(checked) => return Next::Done(checked),
                    Err(problems) => {
                        // Only a date that was today when chosen and is
                        // checked after midnight can land here; start over.
                        self.step = Step::Date;
                        return Next::Ask(self.question(today, Some(&problems[0].message)));
                    }
                }
            }
            (Step::Check, _) => Some("Press Confirm to record it, or Cancel."),
        };
        Next::Ask(self.question(today, problem))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn today() -> NaiveDate {
        NaiveDate::from_ymd_opt(2026, 11, 20).unwrap()
    }

    fn teams(n: usize) -> Vec<(String, String)> {
        (1..=n)
            .map(|i| (format!("t{i}"), format!("Team {i}")))
            .collect()
    }

    fn draft(n: usize) -> Draft {
        Draft::new(
            5,
            "item".into(),
            "Spotting neglect".into(),
            "p-c".into(),
            teams(n),
            0,
        )
    }

    fn ask(next: Next) -> Question {
        match next {
            Next::Ask(q) => q,
            other => panic!("expected a question, got {other:?}"),
        }
    }

    #[test]
    fn a_champion_of_two_teams_is_walked_through_every_question() {
        let mut d = draft(2);
        let first = d.question(today(), None);
        assert!(first.text.contains("Which team"), "{}", first.text);
        assert_eq!(first.choices.len(), 2);
        let q = ask(d.answer(Said::Choice("team:1"), today(), 1));
        assert!(q.text.contains("When was"));
        let q = ask(d.answer(Said::Choice("date:1"), today(), 2));
        assert!(q.text.contains("How many"));
        let q = ask(d.answer(Said::Text(" 12 "), today(), 3));
        assert_eq!(q.choices.len(), CASCADE_METHODS.len());
        let q = ask(d.answer(Said::Choice("method:supervision"), today(), 4));
        assert!(q.text.contains("Team: Team 2"), "{}", q.text);
        assert!(q.text.contains("Date: 2026-11-19"), "{}", q.text);
        assert!(q.text.contains("Present: 12"), "{}", q.text);
        assert!(q.text.contains("Method: Supervision"), "{}", q.text);
        assert_eq!(
            d.answer(Said::Choice("ok"), today(), 5),
            Next::Done(CheckedCascade {
                team_id: "t2".into(),
                session_date: NaiveDate::from_ymd_opt(2026, 11, 19).unwrap(),
                present: 12,
                method: "supervision",
                note: None,
            })
        );
    }

    #[test]
    fn one_team_skips_the_team_question_and_bad_answers_are_asked_again() {
        let mut d = draft(1);
        assert!(d.question(today(), None).text.contains("When was"));
        let q = ask(d.answer(Said::Text("2026-12-01"), today(), 1));
        assert!(
            q.text
                .starts_with("The session date cannot be in the future")
        );
        let q = ask(d.answer(Said::Text("last week"), today(), 2));
        assert!(q.text.contains("YYYY-MM-DD"));
        ask(d.answer(Said::Text("2026-11-02"), today(), 3));
        let q = ask(d.answer(Said::Text("a dozen"), today(), 4));
        assert!(q.text.starts_with("Type the number"));
        ask(d.answer(Said::Text("0"), today(), 5));
        let q = ask(d.answer(Said::Choice("method:carrier-pigeon"), today(), 6));
        assert!(q.text.starts_with("Choose one of the ways"));
        assert_eq!(
            d.answer(Said::Choice("cancel"), today(), 7),
            Next::Cancelled
        );
    }

    #[test]
    fn a_draft_kept_as_json_carries_on_where_it_was() {
        let mut d = draft(2);
        ask(d.answer(Said::Choice("team:1"), today(), 1));
        ask(d.answer(Said::Choice("date:1"), today(), 2));
        ask(d.answer(Said::Text("12"), today(), 3));
        ask(d.answer(Said::Choice("method:supervision"), today(), 4));
        let json = serde_json::to_string(&d).unwrap();
        let mut back: Draft = serde_json::from_str(&json).unwrap();
        assert_eq!(back, d);
        assert!(matches!(
            back.answer(Said::Choice("ok"), today(), 5),
            Next::Done(_)
        ));
    }

    #[test]
    fn a_typed_team_must_be_one_the_champion_covers() {
        let mut d = draft(2);
        let q = ask(d.answer(Said::Text("Team 9"), today(), 1));
        assert!(q.text.starts_with("That is not one of the teams you cover"));
        let q = ask(d.answer(Said::Choice("team:7"), today(), 2));
        assert!(q.text.starts_with("Choose one of the teams"));
        let q = ask(d.answer(Said::Text("team 1"), today(), 3));
        assert!(q.text.contains("When was"));
    }
}
