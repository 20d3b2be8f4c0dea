//! The `[bulletin]` table of a rollout file: a recurring bulletin's name,
//! schedule and what it gathers, each problem at its line with the fix.

use super::raw::RawDefinition;
use super::validate::Problems;
use crate::rollout::bulletin::{Bulletin, Every, On, parse_at};
use chrono::NaiveTime;

const EXAMPLE: &str = "[bulletin]\n    title = \"Practice bulletin\"\n    every = \"month\"\n    on = \"first Tuesday\"\n    at = \"09:00\"\n    themes = [\"neglect\"]";

impl Problems<'_> {
    /// A bulletin names no item: each occurrence's is built from what it
    /// gathers. Refuses `item`, `newsletter_issue` and a top-level
    /// `newsletter` beside `[bulletin]`.
    pub(super) fn bulletin_has_no_item(
        &mut self,
        raw: &RawDefinition,
    ) -> (Option<String>, Option<Option<super::Digest>>) {
        let mut clean = true;
        for (value, key) in [
            (&raw.item, "item"),
            (&raw.newsletter_issue, "newsletter_issue"),
            (&raw.newsletter, "newsletter"),
        ] {
            if let Some(v) = value {
                clean = false;
                self.at(
                    v.span(),
                    format!("a bulletin gathers its own items, so `{key}` does not belong beside [bulletin]"),
                    "remove it, and say what the bulletin gathers with themes = [...] or newsletter = \"...\" inside [bulletin]",
                );
            }
        }
        if clean {
            (Some(String::new()), Some(None))
        } else {
            (None, None)
        }
    }

    /// `[bulletin]`, when the file has one; `Some(None)` when it has none.
    pub(super) fn bulletin(&mut self, raw: &RawDefinition) -> Option<Option<Bulletin>> {
        let Some(table) = &raw.bulletin else {
            return Some(None);
        };
        let table_line = self.line(table.span().start);
        let b = table.get_ref();
        let mut ok = true;
        for (value, what) in [
            (&raw.reacknowledge, "a re-acknowledgement round"),
            (&raw.enrol, "enrolling joiners"),
            (&raw.open_until, "enrolling joiners"),
        ] {
            if let Some(v) = value
                && v.get_ref() != &toml::Value::Boolean(false)
            {
                ok = false;
                self.at(
                    v.span(),
                    format!("a bulletin cannot be {what}: each occurrence goes to the audience as it is that day"),
                    "remove it: people who join are in the audience of the next occurrence",
                );
            }
        }
        let title = match &b.title {
            Some(v) => self.string(v, "title", "\"Practice bulletin\""),
            None => {
                self.at_line(
                    table_line,
                    "the bulletin has no `title`",
                    "add e.g. title = \"Practice bulletin\": each issue is called by it and its date",
                );
                None
            }
        };
        let every = match &b.every {
            Some(v) => {
                let text = self.string(v, "every", "\"month\"");
                text.and_then(|text| match Every::parse(&text) {
                    Ok(every) => Some(every),
                    Err(help) => {
                        self.at(
                            v.span(),
                            format!("every = \"{text}\" is not a period cascade knows"),
                            help,
                        );
                        None
                    }
                })
            }
            None => {
                self.at_line(
                    table_line,
                    "the bulletin has no `every`",
                    format!("say how often it comes, e.g.\n    {EXAMPLE}"),
                );
                None
            }
        };
        let on = match (&b.on, every) {
            (Some(v), Some(every)) => {
                let text = match v.get_ref() {
                    toml::Value::Integer(n) => Some(n.to_string()),
                    _ => self.string(v, "on", "\"first Tuesday\""),
                };
                text.and_then(|text| match On::parse(&text, every) {
                    Ok(on) => Some(on),
                    Err(help) => {
                        self.at(
                            v.span(),
                            format!("on = \"{text}\" is not a day of a bulletin that comes every {every}"),
                            help,
                        );
                        None
                    }
                })
            }
            (None, Some(every)) => {
                let example = match every {
                    Every::Weeks(_) => "on = \"Monday\"",
                    Every::Months(_) => "on = \"first Tuesday\"",
                };
                self.at_line(
                    table_line,
                    "the bulletin has no `on`",
                    format!("say which day it comes, e.g. {example}"),
                );
                None
            }
            (_, None) => None,
        };
        let at = match &b.at {
            None => NaiveTime::from_hms_opt(9, 0, 0),
            Some(v) => {
                let text = self.string(v, "at", "\"09:00\"");
                text.and_then(|text| match parse_at(&text) {
                    Ok(at) => Some(at),
                    Err(help) => {
                        self.at(
                            v.span(),
                            format!("at = \"{text}\" is not a time of day"),
                            help,
                        );
                        None
                    }
                })
            }
        };
        let themes = self.ids(&b.themes, "themes");
        let newsletter = match &b.newsletter {
            None => Some(None),
            Some(v) => self
                .string(v, "newsletter", "\"Partnership Matters\"")
                .map(Some),
        };
        if b.themes.as_ref().is_none_or(|t| t.get_ref().is_empty()) && b.newsletter.is_none() {
            ok = false;
            self.at_line(
                table_line,
                "the bulletin gathers nothing: it has neither `themes` nor `newsletter`",
                "add themes = [\"neglect\"] to gather items with any of those themes, and or newsletter = \"Partnership Matters\" to gather that newsletter's articles",
            );
        }
        let bulletin = Bulletin {
            title: title?,
            every: every?,
            on: on?,
            at: at?,
            themes: themes?,
            newsletter: newsletter?,
        };
        ok.then_some(Some(bulletin))
    }
}

#[cfg(test)]
mod tests {
    use crate::rollout::{Every, On, parse_definition, to_toml};
    use chrono::Weekday;
    use std::path::Path;

    const FILE: &str = "rollouts/bulletin.toml";
    const BULLETIN: &str = "id = \"practice-bulletin\"\nstart = 2026-12-01T00:00:00\nchannels = [\"email\"]\nack_deadline_days = 14\n\n[bulletin]\ntitle = \"Practice bulletin\"\nevery = \"month\"\non = \"first Tuesday\"\nat = \"09:30\"\nthemes = [\"neglect\"]\n\n[[waves]]\nname = \"Everyone\"\n";

    fn errors(text: &str) -> Vec<String> {
        parse_definition(Path::new(FILE), text)
            .expect_err("refused")
            .iter()
            .map(ToString::to_string)
            .collect()
    }

    #[test]
    fn a_bulletin_file_reads_with_its_schedule_and_writes_back_the_same() {
        let def = parse_definition(Path::new(FILE), BULLETIN).expect("a bulletin");
        let b = def.bulletin.as_ref().expect("the [bulletin] table");
        assert_eq!(b.every, Every::Months(1));
        assert_eq!(b.on, On::Nth(Some(1), Weekday::Tue));
        assert_eq!(b.at.to_string(), "09:30:00");
        assert_eq!(
            def.item, "",
            "each occurrence's item is built when it falls"
        );
        let written = to_toml(&def);
        assert_eq!(
            parse_definition(Path::new(FILE), &written).expect("reads back"),
            def,
            "{written}"
        );
        let weekly = BULLETIN
            .replace("\"month\"", "\"2 weeks\"")
            .replace("\"first Tuesday\"", "\"Friday\"");
        let def = parse_definition(Path::new(FILE), &weekly).expect("weekly");
        assert_eq!(
            def.bulletin.expect("bulletin").on,
            On::Weekday(Weekday::Fri)
        );
    }

    #[test]
    fn each_schedule_problem_names_its_line_and_what_to_write() {
        let found = errors(&BULLETIN.replace("\"month\"", "\"3 days\""));
        assert!(
            found[0].starts_with(&format!(
                "{FILE}:8: every = \"3 days\" is not a period cascade knows"
            )),
            "{found:#?}"
        );
        assert!(
            found[0].contains("help: write every = \"week\""),
            "{found:#?}"
        );
        let found = errors(&BULLETIN.replace("\"first Tuesday\"", "31"));
        assert!(
            found[0].starts_with(&format!("{FILE}:9: on = \"31\""))
                && found[0].contains("last day"),
            "{found:#?}"
        );
        let found = errors(&BULLETIN.replace("at = \"09:30\"", "at = \"half nine\""));
        assert!(
            found[0].starts_with(&format!(
                "{FILE}:10: at = \"half nine\" is not a time of day"
            )),
            "{found:#?}"
        );
        let found = errors(&BULLETIN.replace("themes = [\"neglect\"]\n", ""));
        assert!(
            found[0].starts_with(&format!("{FILE}:6: the bulletin gathers nothing")),
            "{found:#?}"
        );
        let found = errors(&BULLETIN.replace("on = \"first Tuesday\"\n", ""));
        assert!(
            found[0].starts_with(&format!("{FILE}:6: the bulletin has no `on`"))
                && found[0].contains("first Tuesday"),
            "{found:#?}"
        );
    }

    #[test]
    fn an_item_or_joiners_beside_a_bulletin_are_refused_at_their_line() {
        let found = errors(&BULLETIN.replace(
            "channels",
            "item = \"7mb-x\"\nenrol = \"joiners\"\nchannels",
        ));
        assert!(
            found.iter().any(|e| e.starts_with(&format!(
                "{FILE}:3: a bulletin gathers its own items, so `item`"
            ))),
            "{found:#?}"
        );
        assert!(
            found.iter().any(
                |e| e.starts_with(&format!("{FILE}:4: a bulletin cannot be enrolling joiners"))
            ),
            "{found:#?}"
        );
        let found = errors(&BULLETIN.replace("at = ", "when = \"x\"\nat = "));
        assert!(
            found[0].contains("unknown key `when` in [bulletin]"),
            "{found:#?}"
        );
    }
}
