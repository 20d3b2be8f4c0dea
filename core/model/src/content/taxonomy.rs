//! The partnership's theme taxonomy: which themes items, champions and
//! audiences may name. Defaults follow the themes partnerships use; a
//! project's `cascade.toml` can replace or extend them.

use serde::{Deserialize, Serialize};

/// One theme: a stable id used in files, and the label people read.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Theme {
    pub id: String,
    pub label: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Taxonomy {
    themes: Vec<Theme>,
}

const DEFAULT_THEMES: &[(&str, &str)] = &[
    ("neglect", "Neglect"),
    ("cse", "Child sexual exploitation"),
    ("child-criminal-exploitation", "Child criminal exploitation"),
    ("domestic-abuse", "Domestic abuse"),
    ("harmful-sexual-behaviour", "Harmful sexual behaviour"),
    ("missing-children", "Missing children"),
    ("mental-health", "Mental health"),
    ("voice-of-the-child", "Voice of the child"),
    ("professional-curiosity", "Professional curiosity"),
    ("escalation", "Escalation"),
    ("information-sharing", "Information sharing"),
    ("safer-sleep", "Safer sleep"),
    ("private-fostering", "Private fostering"),
    ("online-safety", "Online safety"),
    ("think-family", "Think family"),
    ("team-around-the-family", "Team around the family"),
];

impl Default for Taxonomy {
    fn default() -> Self {
        Taxonomy {
            themes: DEFAULT_THEMES
                .iter()
                .map(|(id, label)| Theme {
                    id: (*id).to_owned(),
                    label: (*label).to_owned(),
                })
                .collect(),
        }
    }
}

impl Taxonomy {
    pub fn new(themes: Vec<Theme>) -> Self {
        Taxonomy { themes }
    }

    pub fn themes(&self) -> &[Theme] {
        &self.themes
    }

    pub fn get(&self, id: &str) -> Option<&Theme> {
        self.themes.iter().find(|t| t.id == id)
    }

    /// The label of a theme id, or the id itself when unknown.
    pub fn label<'a>(&'a self, id: &'a str) -> &'a str {
        self.get(id).map(|t| t.label.as_str()).unwrap_or(id)
    }

    /// Checks a theme id; an unknown one yields a message with a
    /// "did you mean" hint when a known id is close.
    pub fn check(&self, id: &str) -> Result<(), UnknownTheme> {
        if self.get(id).is_some() {
            return Ok(());
        }
        let lowered = id.to_lowercase();
        let suggestion = self
            .themes
            .iter()
            .map(|t| {
                let by_id = strsim::jaro_winkler(&lowered, &t.id);
                let by_label = strsim::jaro_winkler(&lowered, &t.label.to_lowercase());
                (by_id.max(by_label), t)
            })
            .filter(|(score, _)| *score >= 0.8)
            .max_by(|a, b| a.0.total_cmp(&b.0))
            .map(|(_, t)| t.id.clone());
        Err(UnknownTheme {
            theme: id.to_owned(),
            suggestion,
        })
    }
}

/// A theme that is not in the taxonomy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnknownTheme {
    pub theme: String,
    pub suggestion: Option<String>,
}

impl UnknownTheme {
    pub fn message(&self) -> String {
        format!("unknown theme \"{}\"", self.theme)
    }

    pub fn help(&self) -> String {
        match &self.suggestion {
            Some(s) => {
                format!("did you mean \"{s}\"? Themes are the [[themes]] ids in cascade.toml")
            }
            None => {
                "use a theme id from [[themes]] in cascade.toml, or add this theme there".to_owned()
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_misspelt_theme_gets_a_did_you_mean_hint() {
        let err = Taxonomy::default().check("neglet").unwrap_err();
        assert_eq!(err.suggestion.as_deref(), Some("neglect"));
        assert!(err.help().contains("did you mean \"neglect\""));
    }

    #[test]
    fn a_theme_far_from_any_known_one_gets_no_guess() {
        let err = Taxonomy::default().check("astronomy").unwrap_err();
        assert_eq!(err.suggestion, None);
    }

    #[test]
    fn a_label_spelling_suggests_the_id() {
        let err = Taxonomy::default().check("Safer Sleep").unwrap_err();
        assert_eq!(err.suggestion.as_deref(), Some("safer-sleep"));
    }
}
