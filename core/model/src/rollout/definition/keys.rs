//! Unknown keys: a serde visitor walks the file against the keys each
//! table may hold, so every unknown key is reported with its line and a
//! guess at the key meant, even when the typed parse stops early.

use super::Problems;
use crate::content::SourceLocation;
use crate::rollout::{RolloutError, closest};
use serde::Deserializer;
use serde::de::{DeserializeSeed, IgnoredAny, MapAccess, SeqAccess, Visitor};
use std::fmt;
use std::ops::Range;
use std::path::Path;
use toml::Spanned;

/// The keys each table of a rollout file may hold.
struct Table {
    name: &'static str,
    keys: &'static [&'static str],
    tables: &'static [(&'static str, &'static Table)],
    arrays: &'static [(&'static str, &'static Table)],
}

const SELECTOR_KEYS: &[&str] = &["agencies", "teams", "roles", "champion_themes", "people"];
const EXCLUDE: Table = Table {
    name: "[audience.exclude]",
    keys: SELECTOR_KEYS,
    tables: &[],
    arrays: &[],
};
const AUDIENCE: Table = Table {
    name: "[audience]",
    keys: SELECTOR_KEYS,
    tables: &[("exclude", &EXCLUDE)],
    arrays: &[],
};
const WAVE: Table = Table {
    name: "[[waves]]",
    keys: &[
        "name",
        "after_days",
        "champions_of_item_themes",
        "agencies",
        "teams",
        "roles",
        "people",
    ],
    tables: &[],
    arrays: &[],
};
const FOLLOW_UP: Table = Table {
    name: "[[follow_ups]]",
    keys: &["after_days", "question", "answers", "used", "reasons"],
    tables: &[],
    arrays: &[],
};
const BULLETIN: Table = Table {
    name: "[bulletin]",
    keys: &["title", "every", "on", "at", "themes", "newsletter"],
    tables: &[],
    arrays: &[],
};
const TOP: Table = Table {
    name: "the rollout",
    keys: &[
        "id",
        "item",
        "newsletter_issue",
        "newsletter",
        "start",
        "urgent",
        "reacknowledge",
        "channels",
        "fallback",
        "ack_deadline_days",
        "reminder_days",
        "escalation_days",
        "champion_reminder_days",
        "max_attempts",
        "unsubscribe_url",
        "team_posts",
        "enrol",
        "open_until",
        "refreshers",
    ],
    tables: &[("audience", &AUDIENCE), ("bulletin", &BULLETIN)],
    arrays: &[("waves", &WAVE), ("follow_ups", &FOLLOW_UP)],
};

/// Every key the file has that its table does not know, each at its line.
/// A file whose shape is wrong elsewhere yields what was found before that.
pub(super) fn unknown_keys(path: &Path, text: &str) -> Vec<RolloutError> {
    let mut found = Vec::new();
    // A shape error (say `waves = 3`) is reported by the typed parse instead.
    let _ = CheckKeys {
        table: &TOP,
        found: &mut found,
    }
    .deserialize(toml::Deserializer::new(text));
    let p = Problems::new(path, text);
    found
        .into_iter()
        .map(|(key, span, table)| {
            let all: Vec<&str> = table
                .keys
                .iter()
                .chain(table.tables.iter().map(|(k, _)| k))
                .chain(table.arrays.iter().map(|(k, _)| k))
                .copied()
                .collect();
            let guess = closest(&key, all.iter().copied());
            let known = all.join(", ");
            RolloutError {
                at: SourceLocation {
                    path: path.to_owned(),
                    line: p.line(span.start),
                },
                message: format!("unknown key `{key}` in {}", table.name),
                help: match guess {
                    Some(g) => format!("did you mean `{g}`? The keys here are {known}"),
                    None => format!("remove it; the keys here are {known}"),
                },
            }
        })
        .collect()
}

type Found = Vec<(String, Range<usize>, &'static Table)>;

struct CheckKeys<'a> {
    table: &'static Table,
    found: &'a mut Found,
}

impl<'de> DeserializeSeed<'de> for CheckKeys<'_> {
    type Value = ();
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for CheckKeys<'_> {
    type Value = ();
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        write!(f, "the table {}", self.table.name)
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        while let Some(key) = map.next_key::<Spanned<String>>()? {
            let name = key.get_ref().as_str();
            let sub = |list: &[(&str, &'static Table)]| {
                list.iter().find(|(k, _)| *k == name).map(|(_, t)| *t)
            };
            if let Some(table) = sub(self.table.tables) {
                map.next_value_seed(CheckKeys {
                    table,
                    found: &mut *self.found,
                })?;
            } else if let Some(table) = sub(self.table.arrays) {
                map.next_value_seed(CheckArray {
                    table,
                    found: &mut *self.found,
                })?;
            } else {
                if !self.table.keys.contains(&name) {
                    self.found.push((name.to_owned(), key.span(), self.table));
                }
                map.next_value::<IgnoredAny>()?;
            }
        }
        Ok(())
    }
}

struct CheckArray<'a> {
    table: &'static Table,
    found: &'a mut Found,
}

impl<'de> DeserializeSeed<'de> for CheckArray<'_> {
    type Value = ();
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_seq(self)
    }
}

impl<'de> Visitor<'de> for CheckArray<'_> {
    type Value = ();
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        write!(f, "an array of {} tables", self.table.name)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        while seq
            .next_element_seed(CheckKeys {
                table: self.table,
                found: &mut *self.found,
            })?
            .is_some()
        {}
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const FILE: &str = "rollouts/keys.toml";

    fn found(text: &str) -> Vec<String> {
        unknown_keys(Path::new(FILE), text)
            .iter()
            .map(ToString::to_string)
            .collect()
    }

    #[test]
    fn a_file_of_known_keys_in_every_table_has_none_unknown() {
        let text = "id = \"a\"\nitem = \"b\"\nteam_posts = [\"chat\"]\n\
            [audience]\nteams = [\"t\"]\n[audience.exclude]\npeople = [\"p\"]\n\
            [[waves]]\nname = \"W\"\nchampions_of_item_themes = true\n\
            [[follow_ups]]\nafter_days = 9\nquestion = \"Q\"\nanswers = [\"x\", \"y\"]\n";
        assert_eq!(found(text), Vec::<String>::new());
    }

    #[test]
    fn an_unknown_key_names_its_table_line_and_the_key_meant() {
        let errors =
            found("id = \"a\"\n[audience]\nagency = [\"x\"]\n[[follow_ups]]\nanswer = [\"x\"]\n");
        assert_eq!(errors.len(), 2, "{errors:#?}");
        assert!(
            errors[0].starts_with(&format!("{FILE}:3: unknown key `agency` in [audience]")),
            "{errors:#?}"
        );
        assert!(
            errors[0].contains("did you mean `agencies`?"),
            "{errors:#?}"
        );
        assert!(
            errors[1].starts_with(&format!("{FILE}:5: unknown key `answer` in [[follow_ups]]")),
            "{errors:#?}"
        );
    }

    #[test]
    fn a_key_like_none_known_is_to_be_removed_with_the_table_keys_listed() {
        let errors = found("[[follow_ups]]\nzzz = 1\n");
        assert_eq!(
            errors,
            [format!(
                "{FILE}:2: unknown key `zzz` in [[follow_ups]]\n  help: remove it; the keys here are after_days, question, answers, used, reasons"
            )]
        );
    }

    #[test]
    fn keys_before_a_wrong_shape_are_still_found() {
        let errors = found("urgnet = true\nwaves = 3\n");
        assert_eq!(errors.len(), 1, "{errors:#?}");
        assert!(
            errors[0].starts_with(&format!("{FILE}:1: unknown key `urgnet` in the rollout")),
            "{errors:#?}"
        );
    }
}
