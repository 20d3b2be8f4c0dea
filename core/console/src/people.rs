//! People in the directory, for editors: a search by name or id, one
//! person's channels (which they can be reached on, which they linked,
//! which a provider reported unreachable; never the addresses) and a
//! one-time link code for a chat account, made by the same
//! `link_code::issue_code` as `cascade link-codes` and shown once.

use crate::Console;
use crate::audit;
use crate::auth::Role;
use crate::html::{self, esc, page};
use crate::session;
use axum::extract::{Form, Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use cascade_engine::link_code::{CODE_LIFETIME_MS, issue_code};
use cascade_engine::project::Project;
use cascade_store::{Accounts, AllStores};
use serde::Deserialize;
use std::fmt::Write as _;
use std::sync::Arc;

/// How many people a search shows.
const FOUND_SHOWN: u32 = 50;

#[derive(Debug, Default, Deserialize)]
pub(crate) struct Search {
    #[serde(default)]
    q: String,
}

pub(crate) async fn search<S: AllStores + Accounts>(
    State(console): State<Arc<Console<S>>>,
    headers: HeaderMap,
    Query(search): Query<Search>,
) -> Result<Response, Response> {
    let signed = session::page_for(&console, &headers, Role::edits).await?;
    let viewer = signed.viewer();
    let text = search.q.trim();
    let mut body = format!(
        "<span class=\"caption\">Directory</span>\n<h1>Find a person</h1>\n\
         <form method=\"get\" action=\"/console/directory/people\" role=\"search\">\n\
         <div class=\"field\"><label for=\"q\">Name or person id</label><input class=\"input\" id=\"q\" name=\"q\" type=\"search\" value=\"{}\"></div>\n\
         <button class=\"button\" type=\"submit\">Search</button>\n</form>\n",
        esc(text)
    );
    if !text.is_empty() {
        let found = console
            .store
            .find_people(text, FOUND_SHOWN)
            .await
            .map_err(|e| html::failed(Some(&viewer), "cannot search the directory", &e))?;
        if found.is_empty() {
            let _ = writeln!(
                body,
                "<p id=\"found\">Nobody matches \"{}\".</p>",
                esc(text)
            );
        } else {
            let _ = write!(
                body,
                "<p id=\"found\">{}{} {} found.</p>\n<div class=\"table-wrap\"><table>\n<caption class=\"visually-hidden\">People found</caption>\n\
                 <thead><tr><th scope=\"col\">Name</th><th scope=\"col\">Team</th><th scope=\"col\">Agency</th></tr></thead>\n<tbody>\n",
                if found.len() as u32 == FOUND_SHOWN {
                    "The first "
                } else {
                    ""
                },
                found.len(),
                if found.len() == 1 { "person" } else { "people" }
            );
            for p in &found {
                let _ = writeln!(
                    body,
                    "<tr><td><a href=\"/console/directory/people/{}\">{}</a></td><td>{}</td><td>{}</td></tr>",
                    esc(&p.id),
                    esc(&p.name),
                    esc(&p.team),
                    esc(&p.agency)
                );
            }
            body.push_str("</tbody></table></div>\n");
        }
    }
    Ok(page(StatusCode::OK, "Find a person", Some(&viewer), &body))
}

/// The person with `id`, or not found.
async fn person<S: AllStores + Accounts>(
    console: &Console<S>,
    viewer: &html::Viewer<'_>,
    id: &str,
) -> Result<cascade_store::StoredPerson, Response> {
    match console.store.person(id).await {
        Ok(Some(p)) => Ok(p),
        Ok(None) => Err(html::not_found(
            Some(viewer),
            "There is nobody with that id in the directory.",
        )),
        Err(e) => Err(html::failed(Some(viewer), "cannot read a person", &e)),
    }
}

pub(crate) async fn one<S: AllStores + Accounts>(
    State(console): State<Arc<Console<S>>>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Result<Response, Response> {
    let signed = session::page_for(&console, &headers, Role::edits).await?;
    let viewer = signed.viewer();
    let stored = person(&console, &viewer, &id).await?;
    let project = Project::open(&console.root)
        .map_err(|e| html::failed(Some(&viewer), "cannot open the project", &e))?;
    let statuses = console
        .store
        .identity_statuses(&id)
        .await
        .map_err(|e| html::failed(Some(&viewer), "cannot read identities", &e))?;
    let p = &stored.person;
    let mut body = format!(
        "<span class=\"caption\">Directory</span>\n<h1>{}</h1>\n<dl class=\"summary\"><dt>Person id</dt><dd><code>{}</code></dd><dt>Team</dt><dd>{}</dd><dt>Agency</dt><dd>{}</dd><dt>In the latest people file</dt><dd>{}</dd></dl>\n\
         <h2>Channels</h2>\n<div class=\"table-wrap\"><table>\n<caption class=\"visually-hidden\">How {} can be reached</caption>\n\
         <thead><tr><th scope=\"col\">Channel</th><th scope=\"col\">Identity</th><th scope=\"col\">Status</th></tr></thead>\n<tbody>\n",
        esc(&p.display_name),
        esc(&p.id),
        esc(&p.team_id),
        esc(&p.agency_id),
        if stored.active { "Yes" } else { "No" },
        esc(&p.display_name),
    );
    for channel in &project.config.channels {
        let kind = channel.identity.as_deref().unwrap_or(&channel.plugin);
        let status = match statuses.iter().find(|s| s.channel == kind) {
            None => "Not linked",
            Some(s) if s.unreachable => "Linked, but the provider says it cannot be reached",
            Some(_) => "Linked",
        };
        let _ = writeln!(
            body,
            "<tr><td>{}</td><td>{}</td><td>{}</td></tr>",
            esc(&channel.name),
            esc(kind),
            status
        );
    }
    body.push_str("</tbody></table></div>\n<h2>Link a chat account</h2>\n<p>A one-time code the person sends to the bot (<code>/link</code> and the code) to link their chat account. It works once, for 24 hours, and is shown only once.</p>\n");
    body.push_str(&html::button_form(
        &format!("/console/directory/people/{id}/link-code"),
        &signed.csrf,
        "Make a link code",
        false,
    ));
    Ok(page(StatusCode::OK, &p.display_name, Some(&viewer), &body))
}

pub(crate) async fn link_code<S: AllStores + Accounts>(
    State(console): State<Arc<Console<S>>>,
    Path(id): Path<String>,
    headers: HeaderMap,
    Form(form): Form<crate::account::CsrfForm>,
) -> Result<Response, Response> {
    let signed = session::for_post(&console, &headers, &form.csrf, Role::edits).await?;
    let viewer = signed.viewer();
    let stored = person(&console, &viewer, &id).await?;
    let project = Project::open(&console.root)
        .map_err(|e| html::failed(Some(&viewer), "cannot open the project", &e))?;
    let key = project
        .link_code_key()
        .map_err(|e| html::failed(Some(&viewer), "cannot read the link-code key", &e))?;
    let now = console.now();
    let code = issue_code(&*console.store, &key, &id, cascade_model::time::millis(now))
        .await
        .map_err(|e| html::failed(Some(&viewer), "cannot make a link code", &e))?;
    audit::record(&console, &signed, "person.link-code", &id, None, None).await?;
    tracing::info!(user = signed.user.id, person = %id, "console link code made");
    let until = now + chrono::Duration::milliseconds(CODE_LIFETIME_MS);
    Ok(page(
        StatusCode::OK,
        "Link code",
        Some(&viewer),
        &format!(
            "<div class=\"notice\" role=\"status\"><h1>Link code for {}</h1>\n<p>Give it to them by a route only they read. They send the bot <code>/link {}</code>. It works once, until {} UTC, and is not shown again.</p></div>\n<p class=\"code\" id=\"code\">{}</p>\n<p><a href=\"/console/directory/people/{}\">Back to {}</a></p>",
            esc(&stored.person.display_name),
            esc(&code),
            until.format("%a %-d %b %H:%M"),
            esc(&code),
            esc(&id),
            esc(&stored.person.display_name),
        ),
    ))
}
