//! Acknowledgement by signed link: the tokens (`token`), the pages a person
//! sees (`pages`), what those pages say about an item, and the check of a
//! champion's confirmation form. The HTTP routes that use them live in
//! `cascade-server`; who may do what and the records it makes, in
//! `crate::respond`.

pub mod pages;
pub mod token;

pub use pages::{CASCADE_METHODS, CascadeForm, FieldProblem, Refusal};
pub use token::{AckConfig, AckKeys, Claims, KeyError, PreviousKey, TokenError};

use cascade_model::content::{CheckQuestion, Classification, LearningItem};
use cascade_privacy::PrivacyGuard;
use chrono::NaiveDate;

/// The longest note a champion may add to a confirmation, in characters.
pub const MAX_NOTE_CHARS: usize = 2000;

/// What the acknowledgement pages show of an item version.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ItemSummary {
    pub title: String,
    /// The list items of a 7-minute briefing's reflection section, as plain
    /// text; empty for other kinds.
    pub reflection_questions: Vec<String>,
    pub classification: Classification,
    /// The item to read on the page, as HTML sections (heading, body), for
    /// an item whose notice sends people here: OFFICIAL-SENSITIVE items.
    pub sections: Vec<(String, String)>,
    /// The item version's check questions (issue 19), asked before the
    /// acknowledgement is recorded.
    pub check_questions: Vec<CheckQuestion>,
    /// The sections the check questions point to, as (heading, HTML),
    /// shown with a question's explanation after a wrong answer.
    pub check_sections: Vec<(String, String)>,
}

impl ItemSummary {
    pub fn of(item: &LearningItem) -> ItemSummary {
        let reflection_questions = cascade_render::reflection_questions(item);
        let sections = if item.classification > Classification::Official {
            item.sections()
                .iter()
                .map(|s| {
                    (
                        s.title.clone(),
                        cascade_render::markdown_to(cascade_render::Channel::EmailHtml, &s.body),
                    )
                })
                .collect()
        } else {
            Vec::new()
        };
        let check_sections = item
            .sections()
            .iter()
            .filter(|s| item.check_questions.iter().any(|q| q.points_to(&s.title)))
            .map(|s| {
                (
                    s.title.clone(),
                    cascade_render::markdown_to(cascade_render::Channel::EmailHtml, &s.body),
                )
            })
            .collect();
        ItemSummary {
            title: item.title.clone(),
            reflection_questions,
            classification: item.classification,
            sections,
            check_questions: item.check_questions.clone(),
            check_sections,
        }
    }

    /// What a page shows of an item version the store cannot give.
    pub fn unknown(title: String) -> ItemSummary {
        ItemSummary {
            title,
            reflection_questions: Vec::new(),
            classification: Classification::Official,
            sections: Vec::new(),
            check_questions: Vec::new(),
            check_sections: Vec::new(),
        }
    }
}

/// A champion's confirmation as checked: a team they cover, a session not
/// in the future, a count of people present.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckedCascade {
    pub team_id: String,
    pub session_date: NaiveDate,
    pub present: u32,
    pub method: &'static str,
    pub note: Option<String>,
}

/// Checks the confirmation form against the teams the champion covers
/// (team id, team name) and today's date where the partnership is.
pub fn check_cascade(
    form: &CascadeForm,
    teams: &[(String, String)],
    today: NaiveDate,
    guard: &PrivacyGuard,
) -> Result<CheckedCascade, Vec<FieldProblem>> {
    let mut problems = Vec::new();
    let mut problem = |field, message: &str| {
        problems.push(FieldProblem {
            field,
            message: message.to_owned(),
        })
    };
    let team = teams.iter().find(|(id, _)| *id == form.team.trim());
    if team.is_none() {
        problem("team", "Choose one of the teams you cover");
    }
    let session_date = match NaiveDate::parse_from_str(form.session_date.trim(), "%Y-%m-%d") {
        Ok(date) if date > today => {
            problem("session_date", "The session date cannot be in the future");
            None
        }
        Ok(date) => Some(date),
        Err(_) => {
            problem(
                "session_date",
                "Enter the date of the session, for example 2026-03-14",
            );
            None
        }
    };
    let present = form.present.trim().parse::<u32>().ok();
    if present.is_none() {
        problem(
            "present",
            "Enter the number of people present as a whole number, 0 or more",
        );
    }
    let method = CASCADE_METHODS
        .iter()
        .find(|(value, _)| *value == form.method)
        .map(|(value, _)| *value);
    if method.is_none() {
        problem("method", "Choose how you shared it");
    }
    let note = form.note.trim();
    if note.chars().count() > MAX_NOTE_CHARS {
        problem("note", "Shorten the note to 2000 characters or fewer");
    } else if let Some(finding) = guard.scan(note).first() {
        problem(
            "note",
            &format!(
                "The note seems to hold a {}. Remove anything that could identify a child or family",
                finding.kind.label()
            ),
        );
    }
    match (team, session_date, present, method) {
        (Some((team_id, _)), Some(session_date), Some(present), Some(method))
            if problems.is_empty() =>
        {
            Ok(CheckedCascade {
                team_id: team_id.clone(),
                session_date,
                present,
                method,
                note: (!note.is_empty()).then(|| note.to_owned()),
            })
        }
        _ => Err(problems),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn form(team: &str, date: &str, present: &str, method: &str) -> CascadeForm {
        CascadeForm {
            team: team.to_owned(),
            session_date: date.to_owned(),
            present: present.to_owned(),
            method: method.to_owned(),
            note: "  ".to_owned(),
        }
    }

    fn guard() -> PrivacyGuard {
        PrivacyGuard::new(&cascade_privacy::PrivacyConfig {
            deny_names: vec!["Jayden Northwood".to_owned()],
            ..Default::default()
        })
        .unwrap()
    }

    #[test]
    fn a_note_with_a_childs_identifier_is_refused_in_any_encoding() {
        let teams = vec![("t1".to_owned(), "MASH".to_owned())];
        let today = NaiveDate::from_ymd_opt(2026, 3, 1).unwrap();
        for note in [
            "Talked about Jayden Northwood",
            "Talked about **Northwood**, Jayden",
            "NHS 943&nbsp;476&nbsp;5919",
            "his DOB:\n03/03/2016",
            "mum's mobile 07700.900.123",
        ] {
            let mut f = form("t1", "2026-03-01", "4", "supervision");
            f.note = note.to_owned();
            let problems = check_cascade(&f, &teams, today, &guard()).unwrap_err();
            assert_eq!(problems.len(), 1, "{note:?}");
            assert_eq!(problems[0].field, "note");
            assert!(problems[0].message.contains("identify a child"), "{note:?}");
        }
        let mut f = form("t1", "2026-03-01", "4", "supervision");
        f.note = "Shared at the MASH team meeting; 4 new starters".to_owned();
        assert!(check_cascade(&f, &teams, today, &guard()).is_ok());
    }

    #[test]
    fn a_confirmation_is_checked_field_by_field() {
        let teams = vec![("t1".to_owned(), "MASH".to_owned())];
        let today = NaiveDate::from_ymd_opt(2026, 3, 1).unwrap();
        let ok = check_cascade(
            &form("t1", "2026-03-01", "0", "supervision"),
            &teams,
            today,
            &guard(),
        );
        assert_eq!(
            ok,
            Ok(CheckedCascade {
                team_id: "t1".to_owned(),
                session_date: today,
                present: 0,
                method: "supervision",
                note: None,
            })
        );
        let fields = |f: CascadeForm| {
            check_cascade(&f, &teams, today, &guard())
                .unwrap_err()
                .iter()
                .map(|p| p.field)
                .collect::<Vec<_>>()
        };
        assert_eq!(
            fields(form("t2", "2026-03-02", "-1", "lunch")),
            ["team", "session_date", "present", "method"]
        );
        assert_eq!(
            fields(form("t1", "1 March", "3", "email")),
            ["session_date"]
        );
    }
}
