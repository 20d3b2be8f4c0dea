//! Writing a 7-minute briefing with a form: its front-matter fields as
//! form fields (title, id, themes from the partnership's taxonomy, who
//! issues it, its source and 60-minute briefing) and its Markdown in a
//! text area set out with the seven sections. The form only writes the
//! file's text: saving it goes through the same checks as writing the
//! whole file (`content::create_checked`, which is `cascade check`'s), and
//! each problem is shown at the field it is about.

use crate::Console;
use crate::auth::Role;
use crate::content::create_checked;
use crate::html::{self, csrf_field, error_summary, esc, field_error, page};
use crate::session::{self, Signed};
use axum::extract::{Form, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use cascade_engine::project::Project;
use cascade_store::{Accounts, AllStores};
use std::fmt::Write as _;
use std::sync::Arc;

/// The seven sections a briefing is set out in.
const SECTIONS: &str = "## 1. Background\n\n## 2. Why it matters\n\n## 3. Information\n\n## 4. What to do\n\n## 5. Questions\n\n## 6. Resources\n\n## 7. Reflection\n";

/// What the form sent. Themes come as repeated `themes` fields.
#[derive(Debug, Default, Clone)]
pub(crate) struct Briefing {
    csrf: String,
    title: String,
    id: String,
    themes: Vec<String>,
    issued_by: String,
    source: String,
    sixty_minute_briefing: String,
    body: String,
}

impl Briefing {
    fn from_pairs(pairs: Vec<(String, String)>) -> Briefing {
        let mut b = Briefing::default();
        for (key, value) in pairs {
            let value = value.replace("\r\n", "\n");
            match key.as_str() {
                "csrf" => b.csrf = value,
                "title" => b.title = value.trim().to_owned(),
                "id" => b.id = value.trim().to_owned(),
                "themes" => b.themes.push(value),
                "issued_by" => b.issued_by = value.trim().to_owned(),
                "source" => b.source = value.trim().to_owned(),
                "sixty_minute_briefing" => b.sixty_minute_briefing = value.trim().to_owned(),
                "body" => b.body = value,
                _ => {}
            }
        }
        b
    }

    /// The id: as given, else made from the title.
    fn id(&self) -> String {
        if !self.id.is_empty() {
            return self.id.clone();
        }
        let mut slug = String::from("7mb");
        for word in self
            .title
            .to_lowercase()
            .split(|c: char| !c.is_ascii_alphanumeric())
            .filter(|w| !w.is_empty())
            .take(8)
        {
            slug.push('-');
            slug.push_str(word);
        }
        slug
    }

    /// The item's file: front matter between `+++` lines, then the Markdown.
    fn text(&self) -> String {
        let quote = |s: &str| serde_json::to_string(s).expect("a string");
        let mut text = format!(
            "+++\nkind = \"seven-minute-briefing\"\nid = {}\ntitle = {}\nthemes = [{}]\nissued_by = {}\nstatus = \"draft\"\n",
            quote(&self.id()),
            quote(&self.title),
            self.themes
                .iter()
                .map(|t| quote(t))
                .collect::<Vec<_>>()
                .join(", "),
            quote(&self.issued_by),
        );
        if !self.source.is_empty() {
            let _ = writeln!(text, "source = {}", quote(&self.source));
        }
        if !self.sixty_minute_briefing.is_empty() {
            let _ = writeln!(
                text,
                "sixty_minute_briefing = {}",
                quote(&self.sixty_minute_briefing)
            );
        }
        text.push_str("+++\n\n");
        text.push_str(self.body.trim_start_matches('\n'));
        if !text.ends_with('\n') {
            text.push('\n');
        }
        text
    }
}

/// The field a problem is about, for its link and message; the body when
/// it names none of the form's fields.
fn field_of(problem: &str) -> &'static str {
    let said = problem.to_lowercase();
    for (needle, field) in [
        ("sixty_minute_briefing", "sixty_minute_briefing"),
        ("issued_by", "issued_by"),
        ("theme", "themes"),
        ("title", "title"),
        ("source", "source"),
        ("the id", "id"),
        ("\"id\"", "id"),
    ] {
        if said.contains(needle) {
            return field;
        }
    }
    "body"
}

fn form_body(
    project: &Project,
    signed: &Signed,
    b: &Briefing,
    problems: &[String],
    editing: Option<&str>,
) -> String {
    let errors: Vec<(String, String)> = problems
        .iter()
        .map(|p| (field_of(p).to_owned(), p.clone()))
        .collect();
    let input = |name: &str, label: &str, hint: &str, value: &str| {
        let error = field_error(&errors, name);
        let wrong = !error.is_empty();
        format!(
            "<div class=\"field\"><label for=\"{name}\">{label}</label>\n<p class=\"hint\" id=\"{name}-hint\">{hint}</p>\n{error}<input class=\"input{}\" id=\"{name}\" name=\"{name}\" type=\"text\" value=\"{}\" aria-describedby=\"{name}-hint{}\"></div>\n",
            if wrong { " input-error" } else { "" },
            esc(value),
            if wrong {
                format!(" {name}-error")
            } else {
                String::new()
            },
        )
    };
    let mut themes = String::new();
    for (n, theme) in project.taxonomy.themes().iter().enumerate() {
        let _ = writeln!(
            themes,
            "<div class=\"checkbox\"><input id=\"{}\" name=\"themes\" type=\"checkbox\" value=\"{}\"{}><label for=\"{}\">{}</label></div>",
            if n == 0 {
                "themes".to_owned()
            } else {
                format!("themes-{n}")
            },
            esc(&theme.id),
            if b.themes.contains(&theme.id) {
                " checked"
            } else {
                ""
            },
            if n == 0 {
                "themes".to_owned()
            } else {
                format!("themes-{n}")
            },
            esc(&theme.label),
        );
    }
    let body_error = field_error(&errors, "body");
    let issued_by = if b.issued_by.is_empty() && problems.is_empty() {
        project.config.partnership.name.clone()
    } else {
        b.issued_by.clone()
    };
    let body = if b.body.is_empty() && problems.is_empty() {
        SECTIONS.to_owned()
    } else {
        b.body.clone()
    };
    let (heading, intro, action, id_field) = match editing {
        None => (
            "Write a 7-minute briefing".to_owned(),
            "Fill in the details and write the briefing below. Saving runs the same checks as <code>cascade check</code>, the privacy guard included, and shows every problem at once; nothing is saved while there is a problem. The briefing is saved as a draft for an approver. To write another kind of item, or the whole file yourself, <a href=\"/console/content/new\">write the whole file</a>.".to_owned(),
            "/console/content/new/briefing".to_owned(),
            input("id", "Id (optional)", "Lower-case letters, digits and hyphens; it names the file. Left empty, it is made from the title.", &b.id),
        ),
        Some(id) => (
            format!("Edit {}", b.title),
            format!("Change the details or the briefing below. Saving runs the same checks as <code>cascade check</code> and shows every problem at once; nothing is saved while there is a problem. Everything else in the file (links, check questions, comments) is kept. To change those, <a href=\"/console/content/{}/edit\">edit the whole file</a>.", esc(id)),
            format!("/console/content/{}/edit/briefing", esc(id)),
            format!("<p>Id: <code>{}</code> (it names the file and does not change)</p>\n", esc(id)),
        ),
    };
    format!(
        "{}<h1>{}</h1>\n\
         <p>{}</p>\n\
         <form method=\"post\" action=\"{}\" novalidate>\n{}\n{}{}\
         <fieldset aria-describedby=\"themes-hint\"><legend>Themes</legend>\n<p class=\"hint\" id=\"themes-hint\">Choose at least one. Champions of these themes cascade it.</p>\n{}{}</fieldset>\n\
         {}{}{}\
         <div class=\"field\"><label for=\"body\">The briefing</label>\n<p class=\"hint\" id=\"body-hint\">In Markdown: keep the seven numbered sections and write under each. Never include a child's name, date of birth, address or NHS number.</p>\n{}<textarea class=\"textarea{}\" id=\"body\" name=\"body\" rows=\"24\" spellcheck=\"true\" aria-describedby=\"body-hint{}\">{}</textarea></div>\n\
         <button class=\"button\" type=\"submit\">{}</button>\n</form>",
        error_summary(&errors),
        esc(&heading),
        intro,
        action,
        csrf_field(&signed.csrf),
        input(
            "title",
            "Title",
            "What practitioners see first, e.g. \"Neglect: seeing the child\".",
            &b.title
        ),
        id_field,
        field_error(&errors, "themes"),
        themes,
        input(
            "issued_by",
            "Issued by",
            "Who the briefing is from.",
            &issued_by
        ),
        input(
            "source",
            "Source (optional)",
            "The review or audit it comes from, e.g. \"LCSPR Child B (2026)\".",
            &b.source
        ),
        input(
            "sixty_minute_briefing",
            "60-minute briefing (optional)",
            "A web address for the longer briefing, starting https://.",
            &b.sixty_minute_briefing
        ),
        body_error,
        if body_error.is_empty() {
            ""
        } else {
            " textarea-error"
        },
        if body_error.is_empty() {
            ""
        } else {
            " body-error"
        },
        esc(&body),
        if editing.is_some() {
            "Save"
        } else {
            "Save as a draft"
        },
    )
}

/// `GET /console/content/new/briefing`.
pub(crate) async fn new_page<S: AllStores + Accounts>(
    State(console): State<Arc<Console<S>>>,
    headers: HeaderMap,
) -> Response {
    let signed = match session::page_for(&console, &headers, Role::edits).await {
        Ok(s) => s,
        Err(r) => return r,
    };
    let project = match crate::content::open_project(&console, &signed) {
        Ok(p) => p,
        Err(r) => return r,
    };
    page(
        StatusCode::OK,
        "Write a 7-minute briefing",
        Some(&signed.viewer()),
        &form_body(&project, &signed, &Briefing::default(), &[], None),
    )
}

/// `POST /console/content/new/briefing`.
pub(crate) async fn create<S: AllStores + Accounts>(
    State(console): State<Arc<Console<S>>>,
    headers: HeaderMap,
    Form(pairs): Form<Vec<(String, String)>>,
) -> Response {
    let briefing = Briefing::from_pairs(pairs);
    let signed = match session::for_post(&console, &headers, &briefing.csrf, Role::edits).await {
        Ok(s) => s,
        Err(r) => return r,
    };
    let project = match crate::content::open_project(&console, &signed) {
        Ok(p) => p,
        Err(r) => return r,
    };
    let mut problems = Vec::new();
    if briefing.title.is_empty() {
        problems.push("Enter a title".to_owned());
    }
    if briefing.themes.is_empty() {
        problems.push("Choose at least one theme".to_owned());
    }
    if problems.is_empty() {
        match create_checked(&console, &signed, &project, &briefing.text()).await {
            Ok(response) => return response,
            Err(found) => problems = found,
        }
    }
    page(
        StatusCode::UNPROCESSABLE_ENTITY,
        "Write a 7-minute briefing",
        Some(&signed.viewer()),
        &form_body(&project, &signed, &briefing, &problems, None),
    )
}

/// The top-level keys the form edits, in the order a new one is added.
const FORM_KEYS: [&str; 5] = [
    "title",
    "themes",
    "issued_by",
    "source",
    "sixty_minute_briefing",
];

/// `original`'s file with the form's fields and Markdown in place of its
/// own: only the lines of those keys change (or are added before the first
/// table, or removed when an optional one is emptied), so links, check
/// questions and comments stay as written. `None` when the file has no
/// front matter between `+++` lines.
fn edited(original: &str, b: &Briefing) -> Option<String> {
    let quote = |s: &str| serde_json::to_string(s).expect("a string");
    let rest = original.strip_prefix("+++\n")?;
    let end = rest.find("\n+++")?;
    let mut lines: Vec<String> = rest[..end].lines().map(str::to_owned).collect();
    let value = |key: &str| -> Option<String> {
        match key {
            "title" => Some(quote(&b.title)),
            "themes" => Some(format!(
                "[{}]",
                b.themes
                    .iter()
                    .map(|t| quote(t))
                    .collect::<Vec<_>>()
                    .join(", ")
            )),
            "issued_by" => Some(quote(&b.issued_by)),
            "source" => (!b.source.is_empty()).then(|| quote(&b.source)),
            _ => (!b.sixty_minute_briefing.is_empty()).then(|| quote(&b.sixty_minute_briefing)),
        }
    };
    for key in FORM_KEYS {
        // Top-level keys come before the first table header.
        let tables = lines
            .iter()
            .position(|l| l.trim_start().starts_with('['))
            .unwrap_or(lines.len());
        let at = lines[..tables].iter().position(|l| {
            l.trim_start()
                .strip_prefix(key)
                .is_some_and(|r| r.trim_start().starts_with('='))
        });
        match (at, value(key)) {
            (Some(at), value) => {
                // A value over several lines (an array) ends at its `]`.
                let mut last = at;
                if lines[at].contains('[') && !lines[at].contains(']') {
                    while last + 1 < tables && !lines[last].contains(']') {
                        last += 1;
                    }
                }
                lines.drain(at..=last);
                if let Some(value) = value {
                    lines.insert(at, format!("{key} = {value}"));
                }
            }
            (None, Some(value)) => {
                let mut at = tables;
                // Before the blank lines and comments that lead into a table.
                while at > 0 && {
                    let l = lines[at - 1].trim();
                    l.is_empty() || l.starts_with('#')
                } {
                    at -= 1;
                }
                lines.insert(at, format!("{key} = {value}"));
            }
            (None, None) => {}
        }
    }
    let mut text = format!(
        "+++\n{}\n+++\n\n{}",
        lines.join("\n"),
        b.body.trim_start_matches('\n')
    );
    if !text.ends_with('\n') {
        text.push('\n');
    }
    Some(text)
}

/// The form's fields as the item's file has them.
fn from_item(loaded: &cascade_model::content::LoadedItem) -> Option<Briefing> {
    let cascade_model::content::ItemKind::SevenMinuteBriefing(brief) = &loaded.item.kind else {
        return None;
    };
    let rest = loaded.text.strip_prefix("+++\n")?;
    let end = rest.find("\n+++")?;
    let body = rest[end + 4..].trim_start_matches(['\r', '\n']).to_owned();
    Some(Briefing {
        csrf: String::new(),
        title: loaded.item.title.clone(),
        id: loaded.item.id.clone(),
        themes: loaded.item.themes.clone(),
        issued_by: brief.issued_by.clone(),
        source: brief.source.clone().unwrap_or_default(),
        sixty_minute_briefing: brief.sixty_minute_briefing.clone().unwrap_or_default(),
        body,
    })
}

/// `GET /console/content/{id}/edit/briefing`.
pub(crate) async fn edit_page<S: AllStores + Accounts>(
    State(console): State<Arc<Console<S>>>,
    axum::extract::Path(id): axum::extract::Path<String>,
    headers: HeaderMap,
) -> Response {
    let signed = match session::page_for(&console, &headers, Role::edits).await {
        Ok(s) => s,
        Err(r) => return r,
    };
    let project = match crate::content::open_project(&console, &signed) {
        Ok(p) => p,
        Err(r) => return r,
    };
    let Some(briefing) = crate::content::find(&project, &id)
        .as_ref()
        .and_then(from_item)
    else {
        return html::not_found(
            Some(&signed.viewer()),
            "There is no 7-minute briefing with that id. Other items are edited as their whole file.",
        );
    };
    page(
        StatusCode::OK,
        &format!("Edit {}", briefing.title),
        Some(&signed.viewer()),
        &form_body(&project, &signed, &briefing, &[], Some(&id)),
    )
}

/// `POST /console/content/{id}/edit/briefing`.
pub(crate) async fn save<S: AllStores + Accounts>(
    State(console): State<Arc<Console<S>>>,
    axum::extract::Path(id): axum::extract::Path<String>,
    headers: HeaderMap,
    Form(pairs): Form<Vec<(String, String)>>,
) -> Response {
    let mut briefing = Briefing::from_pairs(pairs);
    let signed = match session::for_post(&console, &headers, &briefing.csrf, Role::edits).await {
        Ok(s) => s,
        Err(r) => return r,
    };
    let project = match crate::content::open_project(&console, &signed) {
        Ok(p) => p,
        Err(r) => return r,
    };
    let Some(before) = crate::content::find(&project, &id).filter(|l| from_item(l).is_some())
    else {
        return html::not_found(
            Some(&signed.viewer()),
            "There is no 7-minute briefing with that id. Other items are edited as their whole file.",
        );
    };
    briefing.id = id.clone();
    let mut problems = Vec::new();
    if briefing.title.is_empty() {
        problems.push("Enter a title".to_owned());
    }
    if briefing.themes.is_empty() {
        problems.push("Choose at least one theme".to_owned());
    }
    if problems.is_empty() {
        let Some(text) = edited(&before.text, &briefing) else {
            return html::failed(
                Some(&signed.viewer()),
                "cannot find the item's front matter",
                &before.path.display(),
            );
        };
        match project.check_item(&before.path, &text) {
            Ok(loaded) if loaded.item.id == id => {
                return crate::content::saved(
                    &console,
                    &signed,
                    &loaded,
                    Some(before.item.version.0.clone()),
                    "item.save",
                )
                .await;
            }
            Ok(_) => problems.push(format!("the id of \"{id}\" cannot change here")),
            Err(found) => problems = found,
        }
    }
    page(
        StatusCode::UNPROCESSABLE_ENTITY,
        &format!("Edit {}", before.item.title),
        Some(&signed.viewer()),
        &form_body(&project, &signed, &briefing, &problems, Some(&id)),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_form_writes_front_matter_that_quotes_what_was_typed() {
        let b = Briefing::from_pairs(vec![
            ("title".into(), "Neglect: \"seeing\" the child\\now".into()),
            ("themes".into(), "neglect".into()),
            ("themes".into(), "voice-of-the-child".into()),
            ("issued_by".into(), "Northbridge".into()),
            ("body".into(), "## 1. Background\r\n\r\nText\r\n".into()),
        ]);
        assert_eq!(b.id(), "7mb-neglect-seeing-the-child-now");
        let text = b.text();
        assert!(
            text.contains("title = \"Neglect: \\\"seeing\\\" the child\\\\now\"\n"),
            "{text}"
        );
        assert!(text.contains("themes = [\"neglect\", \"voice-of-the-child\"]\n"));
        assert!(
            text.ends_with("+++\n\n## 1. Background\n\nText\n"),
            "{text:?}"
        );
        assert!(!text.contains("source ="));
    }

    #[test]
    fn editing_changes_only_the_forms_lines_and_keeps_tables_and_comments() {
        let original = "+++\nkind = \"seven-minute-briefing\"\nid = \"x\"\ntitle = \"Old\"\nthemes = [\n  \"neglect\",\n]\nissued_by = \"NB\"\nsource = \"Old source\"\nstatus = \"draft\"\n\n# A comment kept.\n[[links]]\ntitle = \"A link\"\nurl = \"https://example.org\"\n+++\n\n## 1. Old\n";
        let b = Briefing {
            title: "New \"title\"".into(),
            themes: vec!["cse".into(), "neglect".into()],
            issued_by: "NB".into(),
            source: String::new(),
            sixty_minute_briefing: "https://example.org/60".into(),
            body: "## 1. New\n".into(),
            ..Briefing::default()
        };
        let text = edited(original, &b).unwrap();
        assert_eq!(
            text,
            "+++\nkind = \"seven-minute-briefing\"\nid = \"x\"\ntitle = \"New \\\"title\\\"\"\nthemes = [\"cse\", \"neglect\"]\nissued_by = \"NB\"\nstatus = \"draft\"\nsixty_minute_briefing = \"https://example.org/60\"\n\n# A comment kept.\n[[links]]\ntitle = \"A link\"\nurl = \"https://example.org\"\n+++\n\n## 1. New\n"
        );
    }

    #[test]
    fn each_problem_goes_to_the_field_it_names() {
        assert_eq!(field_of("content/x.md:3: unknown theme \"nope\""), "themes");
        assert_eq!(field_of("Enter a title"), "title");
        assert_eq!(field_of("content/x.md:12: a date of birth (DOB)"), "body");
        assert_eq!(field_of("an item with the id \"x\" already exists"), "id");
    }
}
