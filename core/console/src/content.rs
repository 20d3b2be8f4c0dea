//! Content: every item, one item with its previews for each channel (the
//! email in a sandboxed frame served with its own policy) and
//! the problems `cascade check` finds in it, creating and editing an item
//! (its whole file, front matter and Markdown), and approval. Every save
//! goes through `Project::check_item`, the code `cascade check` runs for
//! each file, and writes the file only when it has no problem.

use crate::auth::Role;
use crate::html::{self, csrf_field, error_summary, esc, multiline, page};
use crate::session::{self, Signed};
use crate::{Console, audit};
use axum::extract::{Form, Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use cascade_engine::project::Project;
use cascade_model::content::{LoadedItem, Status, load_dir};
use cascade_render::Channel;
use cascade_store::{Accounts, AllStores};
use serde::Deserialize;
use std::fmt::Write as _;
use std::path::PathBuf;
use std::sync::Arc;

/// Whether `id` is an item id the console will use in a path and a file
/// name: lower-case letters, digits and hyphens.
pub(crate) fn safe_id(id: &str) -> bool {
    (1..=120).contains(&id.len())
        && id
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        && !id.starts_with('-')
}

pub(crate) fn open_project<S>(console: &Console<S>, signed: &Signed) -> Result<Project, Response> {
    Project::open(&console.root)
        .map_err(|e| html::failed(Some(&signed.viewer()), "cannot open the project", &e))
}

pub(crate) fn find(project: &Project, id: &str) -> Option<LoadedItem> {
    let (items, _) = load_dir(&project.content_dir(), &project.taxonomy);
    items.into_iter().find(|l| l.item.id == id)
}

pub(crate) async fn list<S: AllStores + Accounts>(
    State(console): State<Arc<Console<S>>>,
    headers: HeaderMap,
) -> Response {
    let signed = match session::page_for(&console, &headers, Role::reads_everything).await {
        Ok(s) => s,
        Err(r) => return r,
    };
    let project = match open_project(&console, &signed) {
        Ok(p) => p,
        Err(r) => return r,
    };
    let (items, errors) = load_dir(&project.content_dir(), &project.taxonomy);
    let mut body = String::from("<h1>Content</h1>\n");
    if signed.role.edits() {
        body.push_str(
            "<p><a class=\"button\" href=\"/console/content/new/briefing\">Write a 7-minute briefing</a> <a class=\"button button-secondary\" href=\"/console/content/new\">Write any item as a whole file</a></p>\n",
        );
    }
    if !errors.is_empty() {
        let _ = writeln!(
            body,
            "<div class=\"warning\"><h2>Files that cannot be read</h2><ul>{}</ul></div>",
            errors
                .iter()
                .map(|e| format!("<li>{}</li>", multiline(&e.to_string())))
                .collect::<String>()
        );
    }
    body.push_str(
        "<div class=\"table-wrap\"><table>\n<caption class=\"visually-hidden\">Learning items</caption>\n\
         <thead><tr><th scope=\"col\">Item</th><th scope=\"col\">Kind</th><th scope=\"col\">Status</th><th scope=\"col\">Themes</th><th scope=\"col\">Versions</th></tr></thead>\n<tbody>\n",
    );
    for l in &items {
        let versions = match console.store.item_versions(&l.item.id).await {
            Ok(v) => v.len(),
            Err(e) => return html::failed(Some(&signed.viewer()), "cannot read item versions", &e),
        };
        let themes: Vec<&str> = l
            .item
            .themes
            .iter()
            .map(|t| project.taxonomy.label(t))
            .collect();
        let _ = writeln!(
            body,
            "<tr><td><a href=\"/console/content/{}\">{}</a></td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            esc(&l.item.id),
            esc(&l.item.title),
            esc(l.item.kind_name()),
            esc(l.item.status.name()),
            esc(&themes.join(", ")),
            versions
        );
    }
    body.push_str("</tbody></table></div>");
    page(StatusCode::OK, "Content", Some(&signed.viewer()), &body)
}

pub(crate) async fn item<S: AllStores + Accounts>(
    State(console): State<Arc<Console<S>>>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Response {
    let signed = match session::page_for(&console, &headers, Role::reads_everything).await {
        Ok(s) => s,
        Err(r) => return r,
    };
    let viewer = signed.viewer();
    let project = match open_project(&console, &signed) {
        Ok(p) => p,
        Err(r) => return r,
    };
    let Some(loaded) = find(&project, &id) else {
        return html::not_found(
            Some(&viewer),
            "There is no item with that id in the content folder.",
        );
    };
    let item = &loaded.item;
    let mut body = format!(
        "<span class=\"caption\">{}</span>\n<h1>{}</h1>\n<dl class=\"summary\"><dt>Id</dt><dd>{}</dd><dt>Status</dt><dd>{}</dd><dt>Version</dt><dd><code>{}</code></dd><dt>File</dt><dd>{}</dd></dl>\n",
        esc(item.kind_name()),
        esc(&item.title),
        esc(&item.id),
        esc(item.status.name()),
        esc(item.version.short()),
        esc(&loaded
            .path
            .strip_prefix(&project.root)
            .unwrap_or(&loaded.path)
            .display()
            .to_string()),
    );
    if signed.role.edits() {
        let _ = writeln!(
            body,
            "<p>{}<a class=\"button button-secondary\" href=\"/console/content/{}/edit\">Edit {}the whole file</a></p>",
            if item.kind_name() == "seven-minute-briefing" {
                format!(
                    "<a class=\"button\" href=\"/console/content/{}/edit/briefing\">Edit with the form</a> ",
                    esc(&item.id)
                )
            } else {
                String::new()
            },
            esc(&item.id),
            if item.kind_name() == "seven-minute-briefing" {
                ""
            } else {
                "this item: "
            }
        );
    }
    let problems = match project.check_item(&loaded.path, &loaded.text) {
        Ok(_) => Vec::new(),
        Err(problems) => problems,
    };
    body.push_str("<h2>Checks</h2>\n");
    if problems.is_empty() {
        body.push_str("<p>No problems: <code>cascade check</code> finds nothing wrong with this item, and the privacy guard finds nothing in it.</p>\n");
    } else {
        let _ = writeln!(
            body,
            "<div class=\"warning\"><p>{} problem{} (the same as <code>cascade check</code> reports), with the file and line of each:</p><ul>{}</ul></div>",
            problems.len(),
            if problems.len() == 1 { "" } else { "s" },
            problems
                .iter()
                .map(|p| format!("<li>{}</li>", multiline(p)))
                .collect::<String>()
        );
    }
    if item.status == Status::Draft {
        body.push_str("<h2>Approval</h2>\n");
        if may_approve(&console, signed.role) {
            if problems.is_empty() {
                body.push_str("<p>Approving makes this version of the item ready to roll out. The approval is recorded with its version.</p>\n");
                body.push_str(&html::button_form(
                    &format!("/console/content/{}/approve", item.id),
                    &signed.csrf,
                    "Approve this item",
                    false,
                ));
            } else {
                body.push_str("<p>Fix the problems above before approving this item.</p>\n");
            }
        } else {
            body.push_str("<p>This item is a draft. An approver must approve it before it can be rolled out.</p>\n");
        }
    }
    body.push_str("<h2>Previews</h2>\n<div class=\"previews\">\n");
    match project.renderer() {
        Ok(renderer) => {
            let input = project.sample_input(SAMPLE_PERSON);
            for channel in Channel::ALL {
                let _ = writeln!(body, "<section class=\"preview\"><h3>{channel}</h3>");
                match renderer.render(item, &project.taxonomy, channel, &input) {
                    // The email as a mail program shows it, in a frame of
                    // its own (see `email_preview`), then its HTML as text.
                    Ok(chunks) if channel == Channel::EmailHtml => {
                        let _ = writeln!(
                            body,
                            "<iframe class=\"email-preview\" sandbox=\"\" src=\"/console/content/{}/email-preview\" title=\"How this item looks by email, sent to {SAMPLE_PERSON}\"></iframe>\n<details><summary>The email's HTML</summary>\n<pre tabindex=\"0\">{}</pre>\n</details>",
                            esc(&item.id),
                            esc(&chunks.concat())
                        );
                    }
                    Ok(chunks) => {
                        for (n, chunk) in chunks.iter().enumerate() {
                            if chunks.len() > 1 {
                                let _ = writeln!(
                                    body,
                                    "<p class=\"hint\">Message {} of {}</p>",
                                    n + 1,
                                    chunks.len()
                                );
                            }
                            let _ = writeln!(body, "<pre tabindex=\"0\">{}</pre>", esc(chunk));
                        }
                    }
                    Err(e) => {
                        let _ = writeln!(
                            body,
                            "<p>Cannot render for {channel}: {}</p>",
                            esc(&e.to_string())
                        );
                    }
                }
                body.push_str("</section>\n");
            }
        }
        Err(problems) => {
            let _ = writeln!(
                body,
                "<p>The templates cannot be loaded: {}</p>",
                esc(&problems.join("; "))
            );
        }
    }
    body.push_str("</div>\n<h2>Versions</h2>\n<p class=\"hint\">Open a version to see what changed since the one before it.</p>\n");
    match console.store.item_versions(&item.id).await {
        Ok(versions) if !versions.is_empty() => {
            body.push_str("<ul class=\"list\">\n");
            for (n, v) in versions.iter().enumerate().rev() {
                let _ = writeln!(
                    body,
                    "<li><a href=\"/console/content/{}/versions/{}\"><code>{}</code><span class=\"visually-hidden\"> {}</span></a> ({}), first seen {}</li>",
                    esc(&item.id),
                    esc(v.version.short()),
                    esc(v.version.short()),
                    if n == 0 { "(its text)" } else { "(what changed)" },
                    esc(&v.status),
                    v.first_seen_at.format("%-d %B %Y %H:%M UTC")
                );
            }
            body.push_str("</ul>\n");
        }
        Ok(_) => body.push_str("<p>No version of this item is in the store yet (it is recorded when imported, saved here or rolled out).</p>\n"),
        Err(e) => return html::failed(Some(&viewer), "cannot read item versions", &e),
    }
    page(StatusCode::OK, &item.title, Some(&viewer), &body)
}

/// Who the previews are addressed to (a made-up person).
const SAMPLE_PERSON: &str = "Sam Example";

/// The rendered email's own policy: nothing may run, load or be sent from
/// it (no script, no remote image, font or stylesheet, no form), only its
/// inline styles apply, and `sandbox` gives it an origin of its own even
/// when opened outside the frame, so it can neither reach the console's
/// pages nor read its cookies. Only the console may frame it.
pub(crate) const EMAIL_PREVIEW_POLICY: &str = "default-src 'none'; style-src 'unsafe-inline'; img-src data:; form-action 'none'; base-uri 'none'; frame-ancestors 'self'; sandbox";

/// `/console/content/{id}/email-preview`: the item's email, rendered for
/// the sample person as it would be sent, as a page of its own for the
/// item page's sandboxed frame (the console's pages keep their policy
/// without 'unsafe-inline'; this page is kept apart by its own policy).
pub(crate) async fn email_preview<S: AllStores + Accounts>(
    State(console): State<Arc<Console<S>>>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Response {
    let signed = match session::page_for(&console, &headers, Role::reads_everything).await {
        Ok(s) => s,
        Err(r) => return r,
    };
    let viewer = signed.viewer();
    let project = match open_project(&console, &signed) {
        Ok(p) => p,
        Err(r) => return r,
    };
    let Some(loaded) = find(&project, &id) else {
        return html::not_found(
            Some(&viewer),
            "There is no item with that id in the content folder.",
        );
    };
    let rendered = project.renderer().map_err(|p| p.join("; ")).and_then(|r| {
        r.render(
            &loaded.item,
            &project.taxonomy,
            Channel::EmailHtml,
            &project.sample_input(SAMPLE_PERSON),
        )
        .map_err(|e| e.to_string())
    });
    let email = match rendered {
        Ok(chunks) => chunks.concat(),
        Err(e) => return html::failed(Some(&viewer), "cannot render the email preview", &e),
    };
    (
        [
            (header::CONTENT_TYPE, "text/html; charset=utf-8"),
            (header::CONTENT_SECURITY_POLICY, EMAIL_PREVIEW_POLICY),
            (header::X_FRAME_OPTIONS, "SAMEORIGIN"),
        ],
        email,
    )
        .into_response()
}

#[derive(Deserialize, Default)]
pub(crate) struct ItemForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    text: String,
}

const NEW_ITEM: &str = "+++\nkind = \"seven-minute-briefing\"\nid = \"\"\ntitle = \"\"\nthemes = []\nissued_by = \"\"\nstatus = \"draft\"\n+++\n\n## 1. Background\n\n## 2. Why it matters\n\n## 3. Information\n\n## 4. What to do\n\n## 5. Questions\n\n## 6. Resources\n\n## 7. Reflection\n";

fn editor_body(action: &str, csrf: &str, heading: &str, text: &str, problems: &[String]) -> String {
    let errors: Vec<(String, String)> = problems
        .iter()
        .map(|p| ("text".to_owned(), p.clone()))
        .collect();
    let error_line = if problems.is_empty() {
        String::new()
    } else {
        format!(
            "<p class=\"error-message\" id=\"text-error\"><span class=\"visually-hidden\">Error:</span> {} problem{}; see the list above</p>\n",
            problems.len(),
            if problems.len() == 1 { "" } else { "s" }
        )
    };
    format!(
        "{}<h1>{}</h1>\n<form method=\"post\" action=\"{}\" novalidate>\n{}\n\
         <div class=\"field\"><label for=\"text\">The item's file: front matter between the <code>+++</code> lines, then the Markdown</label>\n\
         <p class=\"hint\" id=\"text-hint\">Saving runs the same checks as <code>cascade check</code>, the privacy guard included, and shows every problem at once. Nothing is saved while there is a problem.</p>\n\
         {}<textarea id=\"text\" name=\"text\" rows=\"30\" spellcheck=\"true\" aria-describedby=\"text-hint{}\" class=\"textarea{}\">{}</textarea></div>\n\
         <button class=\"button\" type=\"submit\">Save</button>\n</form>",
        error_summary(&errors),
        esc(heading),
        esc(action),
        csrf_field(csrf),
        error_line,
        if problems.is_empty() {
            ""
        } else {
            " text-error"
        },
        if problems.is_empty() {
            ""
        } else {
            " textarea-error"
        },
        esc(text),
    )
}

pub(crate) async fn new_page<S: AllStores + Accounts>(
    State(console): State<Arc<Console<S>>>,
    headers: HeaderMap,
) -> Response {
    let signed = match session::page_for(&console, &headers, Role::edits).await {
        Ok(s) => s,
        Err(r) => return r,
    };
    page(
        StatusCode::OK,
        "Write a new item",
        Some(&signed.viewer()),
        &editor_body(
            "/console/content/new",
            &signed.csrf,
            "Write a new item",
            NEW_ITEM,
            &[],
        ),
    )
}

pub(crate) async fn edit_page<S: AllStores + Accounts>(
    State(console): State<Arc<Console<S>>>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Response {
    let signed = match session::page_for(&console, &headers, Role::edits).await {
        Ok(s) => s,
        Err(r) => return r,
    };
    let project = match open_project(&console, &signed) {
        Ok(p) => p,
        Err(r) => return r,
    };
    let Some(loaded) = find(&project, &id) else {
        return html::not_found(
            Some(&signed.viewer()),
            "There is no item with that id in the content folder.",
        );
    };
    page(
        StatusCode::OK,
        &format!("Edit {}", loaded.item.title),
        Some(&signed.viewer()),
        &editor_body(
            &format!("/console/content/{id}/edit"),
            &signed.csrf,
            &format!("Edit {}", loaded.item.title),
            &loaded.text,
            &[],
        ),
    )
}

/// The id a new item's front matter names, if it is plain enough to be a
/// file name: problems are then reported at the file it will be.
fn written_id(text: &str) -> Option<&str> {
    text.lines()
        .skip_while(|l| l.trim_end() != "+++")
        .skip(1)
        .take_while(|l| l.trim_end() != "+++")
        .find_map(|l| {
            let (key, value) = l.split_once('=')?;
            (key.trim() == "id").then(|| value.trim().trim_matches('"'))
        })
        .filter(|id| safe_id(id))
}

/// Writes a file whole or not at all: a temporary file beside it, renamed.
pub(crate) fn write_whole(path: &std::path::Path, text: &str) -> std::io::Result<()> {
    let mut temporary = path.as_os_str().to_owned();
    temporary.push(".console-tmp");
    let temporary = PathBuf::from(temporary);
    std::fs::write(&temporary, text)?;
    std::fs::rename(&temporary, path)
}

/// Browsers send a textarea's lines ending CR LF; files keep LF.
fn lf(text: &str) -> String {
    text.replace("\r\n", "\n")
}

pub(crate) async fn create<S: AllStores + Accounts>(
    State(console): State<Arc<Console<S>>>,
    headers: HeaderMap,
    Form(form): Form<ItemForm>,
) -> Response {
    let signed = match session::for_post(&console, &headers, &form.csrf, Role::edits).await {
        Ok(s) => s,
        Err(r) => return r,
    };
    let project = match open_project(&console, &signed) {
        Ok(p) => p,
        Err(r) => return r,
    };
    let text = lf(&form.text);
    let again = |problems: Vec<String>| {
        page(
            StatusCode::UNPROCESSABLE_ENTITY,
            "Write a new item",
            Some(&signed.viewer()),
            &editor_body(
                "/console/content/new",
                &signed.csrf,
                "Write a new item",
                &text,
                &problems,
            ),
        )
    };
    match create_checked(&console, &signed, &project, &text).await {
        Ok(response) => response,
        Err(problems) => again(problems),
    }
}

/// Checks a new item's whole text as `cascade check` would at the file it
/// will be, and writes and records it; every problem otherwise.
pub(crate) async fn create_checked<S: AllStores + Accounts>(
    console: &Console<S>,
    signed: &Signed,
    project: &Project,
    text: &str,
) -> Result<Response, Vec<String>> {
    // Parse once under a stand-in name to learn the id, then check the
    // file where it will be written.
    let stand_in = project
        .content_dir()
        .join(format!("{}.md", written_id(text).unwrap_or("new-item")));
    let id = cascade_model::content::parse_item(&stand_in, text, &project.taxonomy)
        .map_err(|errors| errors.iter().map(ToString::to_string).collect::<Vec<_>>())?
        .id;
    if !safe_id(&id) {
        return Err(vec![format!(
            "the id \"{id}\" cannot be a file name\n  help: use lower-case letters, digits and hyphens"
        )]);
    }
    let path = project.content_dir().join(format!("{id}.md"));
    if path.exists() || find(project, &id).is_some() {
        return Err(vec![format!(
            "an item with the id \"{id}\" already exists\n  help: give the new item its own id, or edit the existing one"
        )]);
    }
    let loaded = project.check_item(&path, text)?;
    Ok(saved(console, signed, &loaded, None, "item.create").await)
}

pub(crate) async fn save<S: AllStores + Accounts>(
    State(console): State<Arc<Console<S>>>,
    Path(id): Path<String>,
    headers: HeaderMap,
    Form(form): Form<ItemForm>,
) -> Response {
    let signed = match session::for_post(&console, &headers, &form.csrf, Role::edits).await {
        Ok(s) => s,
        Err(r) => return r,
    };
    let project = match open_project(&console, &signed) {
        Ok(p) => p,
        Err(r) => return r,
    };
    let Some(before) = find(&project, &id) else {
        return html::not_found(
            Some(&signed.viewer()),
            "There is no item with that id in the content folder.",
        );
    };
    let text = lf(&form.text);
    let title = format!("Edit {}", before.item.title);
    let again = |problems: Vec<String>| {
        page(
            StatusCode::UNPROCESSABLE_ENTITY,
            &title,
            Some(&signed.viewer()),
            &editor_body(
                &format!("/console/content/{id}/edit"),
                &signed.csrf,
                &title,
                &text,
                &problems,
            ),
        )
    };
    let loaded = match project.check_item(&before.path, &text) {
        Ok(l) => l,
        Err(problems) => return again(problems),
    };
    if loaded.item.id != id {
        return again(vec![format!(
            "{}: the id changed from \"{id}\" to \"{}\"\n  help: keep the id; to make another item, write a new one",
            before.path.display(),
            loaded.item.id
        )]);
    }
    saved(
        &console,
        &signed,
        &loaded,
        Some(before.item.version.0.clone()),
        "item.save",
    )
    .await
}

/// Writes a checked item to its file, records its version in the store and
/// the change in the audit log, and shows the item.
pub(crate) async fn saved<S: AllStores + Accounts>(
    console: &Console<S>,
    signed: &Signed,
    loaded: &LoadedItem,
    before: Option<String>,
    action: &str,
) -> Response {
    let viewer = signed.viewer();
    if let Err(e) = write_whole(&loaded.path, &loaded.text) {
        return html::failed(Some(&viewer), "cannot write a content file", &e);
    }
    if let Err(e) = console.store.save_item(&loaded.item, &loaded.text).await {
        return html::failed(Some(&viewer), "cannot record an item version", &e);
    }
    if let Err(r) = audit::record(
        console,
        signed,
        action,
        &loaded.item.id,
        before,
        Some(loaded.item.version.0.clone()),
    )
    .await
    {
        return r;
    }
    tracing::info!(user = signed.user.id, item = %loaded.item.id, version = loaded.item.version.short(), action, "console item saved");
    html::see_other(&format!("/console/content/{}", loaded.item.id))
}

/// Approvers approve; an editor may approve too (their own items
/// included) only where `[console] allow_self_approval = true`.
fn may_approve<S>(console: &Console<S>, role: Role) -> bool {
    role.approves() || (role.edits() && console.settings.allow_self_approval)
}

/// The text with its front matter's `status` set to approved, or `None`
/// when it has no such line.
fn approved_text(text: &str) -> Option<String> {
    let mut fences = 0;
    let mut changed = false;
    let mut out = String::with_capacity(text.len());
    for line in text.split_inclusive('\n') {
        if line.trim_end() == "+++" {
            fences += 1;
        }
        let key = line.split('=').next().unwrap_or("").trim();
        if fences == 1 && !changed && key == "status" && line.contains('=') {
            out.push_str("status = \"approved\"");
            if line.ends_with('\n') {
                out.push('\n');
            }
            changed = true;
        } else {
            out.push_str(line);
        }
    }
    changed.then_some(out)
}

pub(crate) async fn approve<S: AllStores + Accounts>(
    State(console): State<Arc<Console<S>>>,
    Path(id): Path<String>,
    headers: HeaderMap,
    Form(form): Form<crate::account::CsrfForm>,
) -> Response {
    let signed = match session::for_post(&console, &headers, &form.csrf, |_| true).await {
        Ok(s) => s,
        Err(r) => return r,
    };
    let viewer = signed.viewer();
    if !may_approve(&console, signed.role) {
        tracing::warn!(
            user = signed.user.id,
            role = signed.role.as_str(),
            "console approval refused for the role"
        );
        return html::forbidden(Some(&viewer), "Your role does not allow approving items.");
    }
    let project = match open_project(&console, &signed) {
        Ok(p) => p,
        Err(r) => return r,
    };
    let Some(before) = find(&project, &id) else {
        return html::not_found(
            Some(&viewer),
            "There is no item with that id in the content folder.",
        );
    };
    if before.item.status != Status::Draft {
        return html::message(
            StatusCode::CONFLICT,
            "This item is not a draft",
            Some(&viewer),
            "Only a draft can be approved; this item's status is already set.",
        );
    }
    if !console.settings.allow_self_approval {
        let log = match console.store.audit_log(10_000).await {
            Ok(l) => l,
            Err(e) => return html::failed(Some(&viewer), "cannot read the audit log", &e),
        };
        let last_writer = log
            .iter()
            .find(|e| e.target == id && (e.action == "item.save" || e.action == "item.create"))
            .and_then(|e| e.user_id);
        if last_writer == Some(signed.user.id) {
            tracing::warn!(user = signed.user.id, item = %id, "console self-approval refused");
            return html::forbidden(
                Some(&viewer),
                "You saved this version of the item, so someone else must approve it. (An administrator can allow self-approval with allow_self_approval = true under [console] in cascade.toml.)",
            );
        }
    }
    let Some(text) = approved_text(&before.text) else {
        return html::message(
            StatusCode::CONFLICT,
            "This item has no status line",
            Some(&viewer),
            "Add status = \"draft\" to its front matter first.",
        );
    };
    let loaded = match project.check_item(&before.path, &text) {
        Ok(l) => l,
        Err(problems) => {
            return page(
                StatusCode::UNPROCESSABLE_ENTITY,
                "This item cannot be approved",
                Some(&viewer),
                &format!(
                    "<h1>This item cannot be approved</h1>\n<ul>{}</ul>",
                    problems
                        .iter()
                        .map(|p| format!("<li>{}</li>", multiline(p)))
                        .collect::<String>()
                ),
            );
        }
    };
    saved(
        &console,
        &signed,
        &loaded,
        Some(before.item.version.0.clone()),
        "item.approve",
    )
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn approval_changes_only_the_front_matter_status() {
        let text = "+++\nid = \"x\"\nstatus = \"draft\"\n+++\n\nstatus = \"draft\" in the body\n";
        assert_eq!(
            approved_text(text).unwrap(),
            "+++\nid = \"x\"\nstatus = \"approved\"\n+++\n\nstatus = \"draft\" in the body\n"
        );
        assert_eq!(approved_text("+++\nid = \"x\"\n+++\n"), None);
    }

    #[test]
    fn only_plain_ids_become_file_names() {
        assert!(safe_id("7mb-neglect-2026"));
        assert!(!safe_id("../etc/passwd"));
        assert!(!safe_id("A"));
        assert!(!safe_id(""));
        assert!(!safe_id("-x"));
    }
}
