//! The admin's users page: every console account, adding one (its
//! one-time set-up link shown once, as `cascade users add` prints it),
//! a new set-up link (`cascade users reset`) and disabling an account
//! (its password and sessions gone). Every change is in the audit log
//! under the admin's name.

use crate::Console;
use crate::account::{SetupError, SetupLink, setup_link};
use crate::audit;
use crate::auth::Role;
use crate::html::{self, esc, page};
use crate::session::{self, Signed};
use axum::extract::{Form, Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use cascade_store::{Accounts, AllStores, ConsoleUser};
use serde::Deserialize;
use std::fmt::Write as _;
use std::sync::Arc;

#[derive(Debug, Default, Deserialize)]
pub(crate) struct AddForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    name: String,
    #[serde(default)]
    role: String,
    #[serde(default)]
    person: String,
}

fn list(
    signed: &Signed,
    users: &[ConsoleUser],
    form: &AddForm,
    errors: &[(String, String)],
) -> String {
    let mut body = html::error_summary(errors);
    body.push_str("<h1>Users</h1>\n<div class=\"table-wrap\"><table>\n<caption class=\"visually-hidden\">Console users</caption>\n\
        <thead><tr><th scope=\"col\">Name</th><th scope=\"col\">Role</th><th scope=\"col\">Directory person</th><th scope=\"col\">Can sign in</th><th scope=\"col\">Actions</th></tr></thead>\n<tbody>\n");
    for user in users {
        let _ = write!(
            body,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}",
            esc(&user.name),
            esc(&user.role),
            esc(user.person_id.as_deref().unwrap_or("")),
            if user.password_hash.is_some() {
                "Yes"
            } else {
                "No: waiting for set-up, or disabled"
            },
            html::button_form(
                &format!("/console/users/{}/reset", user.name),
                &signed.csrf,
                &format!("New set-up link for {}", user.name),
                true
            ),
        );
        if user.id != signed.user.id {
            body.push_str(&html::button_form(
                &format!("/console/users/{}/disable", user.name),
                &signed.csrf,
                &format!("Disable {}", user.name),
                true,
            ));
        }
        body.push_str("</td></tr>\n");
    }
    body.push_str("</tbody></table></div>\n<h2>Add a user</h2>\n<p>They get a one-time link to set their password. It is shown once, here, and works for 72 hours.</p>\n");
    let _ = write!(
        body,
        "<form method=\"post\" action=\"/console/users\" novalidate>\n{}\n\
         <div class=\"field\"><label for=\"name\">User name</label><p class=\"hint\" id=\"name-hint\">Letters, digits, dots, hyphens, underscores or @, for example sam.lee</p>{}<input class=\"input\" id=\"name\" name=\"name\" type=\"text\" spellcheck=\"false\" autocomplete=\"off\" aria-describedby=\"name-hint\" value=\"{}\"></div>\n\
         <div class=\"field\"><label for=\"role\">Role</label>{}<select class=\"input\" id=\"role\" name=\"role\">",
        html::csrf_field(&signed.csrf),
        html::field_error(errors, "name"),
        esc(&form.name),
        html::field_error(errors, "role"),
    );
    for role in Role::ALL {
        let _ = write!(
            body,
            "<option value=\"{0}\"{1}>{0}</option>",
            role.as_str(),
            if form.role == role.as_str() {
                " selected"
            } else {
                ""
            }
        );
    }
    let _ = write!(
        body,
        "</select></div>\n\
         <div class=\"field\"><label for=\"person\">Directory person (champions only)</label><p class=\"hint\" id=\"person-hint\">Their person_id in people.csv, for example p-amara-okafor</p>{}<input class=\"input\" id=\"person\" name=\"person\" type=\"text\" spellcheck=\"false\" aria-describedby=\"person-hint\" value=\"{}\"></div>\n\
         <button class=\"button\" type=\"submit\">Add the user</button>\n</form>",
        html::field_error(errors, "person"),
        esc(&form.person),
    );
    body
}

async fn listing<S: AllStores + Accounts>(
    console: &Console<S>,
    signed: &Signed,
    status: StatusCode,
    form: &AddForm,
    errors: &[(String, String)],
) -> Result<Response, Response> {
    let users = console
        .store
        .console_users()
        .await
        .map_err(|e| html::failed(Some(&signed.viewer()), "cannot read users", &e))?;
    Ok(page(
        status,
        "Users",
        Some(&signed.viewer()),
        &list(signed, &users, form, errors),
    ))
}

pub(crate) async fn users<S: AllStores + Accounts>(
    State(console): State<Arc<Console<S>>>,
    headers: HeaderMap,
) -> Result<Response, Response> {
    let signed = session::page_for(&console, &headers, Role::administers).await?;
    listing(&console, &signed, StatusCode::OK, &AddForm::default(), &[]).await
}

/// The page that shows a set-up link, once.
fn link_page(signed: &Signed, name: &str, link: &SetupLink, new: bool) -> Response {
    page(
        StatusCode::OK,
        "Set-up link",
        Some(&signed.viewer()),
        &format!(
            "<div class=\"notice\" role=\"status\"><h1>{}</h1>\n<p>Send this link to {} yourself, by a route only they read. It is shown only now, and works once, until {} UTC.</p></div>\n\
             <p><label for=\"link\">Set-up link for {}</label><input class=\"input\" id=\"link\" type=\"text\" readonly value=\"{}\"></p>\n<p><a href=\"/console/users\">Back to users</a></p>",
            if new {
                "User added"
            } else {
                "New set-up link made"
            },
            esc(name),
            link.expires_at.format("%Y-%m-%d %H:%M"),
            esc(name),
            esc(&link.url)
        ),
    )
}

pub(crate) async fn add<S: AllStores + Accounts>(
    State(console): State<Arc<Console<S>>>,
    headers: HeaderMap,
    Form(form): Form<AddForm>,
) -> Result<Response, Response> {
    let signed = session::for_post(&console, &headers, &form.csrf, Role::administers).await?;
    let viewer = signed.viewer();
    let name = form.name.trim();
    let person = form.person.trim();
    let mut errors = Vec::new();
    let role = Role::parse(&form.role);
    if role.is_none() {
        errors.push(("role".to_owned(), "Choose a role".to_owned()));
    }
    let person = if person.is_empty() {
        if role == Some(Role::Champion) {
            errors.push((
                "person".to_owned(),
                "Enter the directory person a champion account is for".to_owned(),
            ));
        }
        None
    } else {
        let known = console
            .store
            .person(person)
            .await
            .map_err(|e| html::failed(Some(&viewer), "cannot read the directory", &e))?;
        if known.is_none() {
            errors.push((
                "person".to_owned(),
                format!("There is nobody with the person_id \"{person}\" in the directory"),
            ));
        }
        Some(person)
    };
    if let (true, Some(role)) = (errors.is_empty(), role) {
        let made = setup_link(
            &*console.store,
            name,
            Some((role, person)),
            &console.settings.base_url,
            console.now(),
            Some((signed.user.id, &signed.user.name)),
        )
        .await;
        match made {
            Ok(link) => {
                tracing::info!(user = signed.user.id, "console user added by an admin");
                return Ok(link_page(&signed, name, &link, true));
            }
            Err(SetupError::Store(e)) => {
                return Err(html::failed(Some(&viewer), "cannot add a user", &e));
            }
            Err(e @ (SetupError::Exists(_) | SetupError::BadName(_))) => {
                let message = e.to_string();
                let first = message.lines().next().unwrap_or_default();
                errors.push(("name".to_owned(), capitalised(first)));
            }
            Err(e) => errors.push(("person".to_owned(), capitalised(&e.to_string()))),
        }
    }
    listing(
        &console,
        &signed,
        StatusCode::UNPROCESSABLE_ENTITY,
        &form,
        &errors,
    )
    .await
}

/// The first line of a CLI message as a sentence for a page.
fn capitalised(text: &str) -> String {
    let line = text.lines().next().unwrap_or_default();
    let mut chars = line.chars();
    chars
        .next()
        .map(|c| c.to_uppercase().chain(chars).collect())
        .unwrap_or_default()
}

pub(crate) async fn change<S: AllStores + Accounts>(
    State(console): State<Arc<Console<S>>>,
    Path((name, action)): Path<(String, String)>,
    headers: HeaderMap,
    Form(form): Form<crate::account::CsrfForm>,
) -> Result<Response, Response> {
    let signed = session::for_post(&console, &headers, &form.csrf, Role::administers).await?;
    let viewer = signed.viewer();
    match action.as_str() {
        "reset" => match setup_link(
            &*console.store,
            &name,
            None,
            &console.settings.base_url,
            console.now(),
            Some((signed.user.id, &signed.user.name)),
        )
        .await
        {
            Ok(link) => Ok(link_page(&signed, &name, &link, false)),
            Err(SetupError::NoSuchUser(_) | SetupError::BadName(_)) => Err(html::not_found(
                Some(&viewer),
                "There is no user with that name.",
            )),
            Err(e) => Err(html::failed(Some(&viewer), "cannot reset a user", &e)),
        },
        "disable" => {
            if name == signed.user.name {
                return Err(html::message(
                    StatusCode::CONFLICT,
                    "You cannot disable yourself",
                    Some(&viewer),
                    "Ask another admin, so the console always keeps one.",
                ));
            }
            let done = console
                .store
                .disable_console_user(&name)
                .await
                .map_err(|e| html::failed(Some(&viewer), "cannot disable a user", &e))?;
            if !done {
                return Err(html::not_found(
                    Some(&viewer),
                    "There is no user with that name.",
                ));
            }
            audit::record(&console, &signed, "user.disable", &name, None, None).await?;
            tracing::info!(user = signed.user.id, "console user disabled by an admin");
            Ok(html::see_other("/console/users"))
        }
        _ => Err(html::not_found(Some(&viewer), "There is no such action.")),
    }
}
