//! Accounts: one-time set-up links (made by `cascade users add`), the
//! set-up and sign-in pages, signing out here and everywhere. Forms shown
//! before sign-in carry a token matched against a cookie (double submit);
//! a sign-in always starts a new session with a new id, so a session id
//! planted before sign-in is worth nothing. Failed sign-ins are answered
//! slowly, counted per name tried (kept only as a hash) and logged by
//! account id, never by what was typed.

use crate::auth::{
    self, FORM_COOKIE, Role, SESSION_COOKIE, clear_cookie, cookie, hash_password, password_problem,
    random_token, same, set_cookie, sha256_hex, verify_password,
};
use crate::html::{self, csrf_field, error_summary, esc, page};
use crate::session;
use crate::{Console, audit};
use axum::extract::{Form, Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::Response;
use cascade_model::time::millis;
use cascade_store::{Accounts, AllStores, StoreError};
use chrono::{DateTime, Duration, Utc};
use serde::Deserialize;
use std::sync::Arc;

/// How long a set-up link stays usable.
pub const SETUP_LINK_HOURS: i64 = 72;

/// A one-time set-up link: whoever opens it sets the account's password.
#[derive(Debug, Clone)]
pub struct SetupLink {
    pub url: String,
    pub expires_at: DateTime<Utc>,
}

/// Why a set-up link could not be made.
#[derive(Debug, thiserror::Error)]
pub enum SetupError {
    #[error(
        "a console user \"{0}\" already exists\n  help: choose another name, or give them a new set-up link with `cascade users reset {0}`"
    )]
    Exists(String),
    #[error(
        "there is no console user \"{0}\"\n  help: add them with `cascade users add {0} --role ...`"
    )]
    NoSuchUser(String),
    #[error(
        "\"{0}\" cannot be a user name\n  help: use 1 to 64 letters, digits, dots, hyphens, underscores or @"
    )]
    BadName(String),
    #[error(
        "a champion account needs the directory person it is for\n  help: add --person <person_id from people.csv>"
    )]
    ChampionWithoutPerson,
    #[error(transparent)]
    Store(#[from] StoreError),
}

fn valid_name(name: &str) -> bool {
    (1..=64).contains(&name.len())
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "._-@".contains(c))
}

/// Adds a console user (`role == Some`) or gives an existing one a new
/// set-up link (`None`), returning the link. Only the token's hash is kept.
pub async fn issue_setup_link<S: Accounts>(
    store: &S,
    name: &str,
    role: Option<(Role, Option<&str>)>,
    base_url: &str,
    now: DateTime<Utc>,
) -> Result<SetupLink, SetupError> {
    setup_link(store, name, role, base_url, now, None).await
}

/// [`issue_setup_link`], recorded in the audit log as done by `by` (a
/// console user's id and name), or by the `cascade users` command.
pub(crate) async fn setup_link<S: Accounts>(
    store: &S,
    name: &str,
    role: Option<(Role, Option<&str>)>,
    base_url: &str,
    now: DateTime<Utc>,
    by: Option<(i64, &str)>,
) -> Result<SetupLink, SetupError> {
    if !valid_name(name) {
        return Err(SetupError::BadName(name.to_owned()));
    }
    let token = random_token();
    let expires_at = now + Duration::hours(SETUP_LINK_HOURS);
    let hash = sha256_hex(&token);
    match role {
        Some((role, person)) => {
            if role == Role::Champion && person.is_none() {
                return Err(SetupError::ChampionWithoutPerson);
            }
            let added = store
                .add_console_user(
                    name,
                    role.as_str(),
                    person,
                    &hash,
                    millis(expires_at),
                    millis(now),
                )
                .await?;
            let Some(id) = added else {
                return Err(SetupError::Exists(name.to_owned()));
            };
            store
                .audit(&audit::entry(
                    now,
                    by.map(|(id, _)| id),
                    by.map_or("cascade users add", |(_, n)| n),
                    "user.add",
                    name,
                    None,
                    None,
                ))
                .await?;
            tracing::info!(user = id, role = role.as_str(), "console user added");
        }
        None => {
            if !store
                .renew_console_setup(name, &hash, millis(expires_at))
                .await?
            {
                return Err(SetupError::NoSuchUser(name.to_owned()));
            }
            store
                .audit(&audit::entry(
                    now,
                    by.map(|(id, _)| id),
                    by.map_or("cascade users reset", |(_, n)| n),
                    "user.reset",
                    name,
                    None,
                    None,
                ))
                .await?;
        }
    }
    Ok(SetupLink {
        url: format!("{}/console/setup/{token}", base_url.trim_end_matches('/')),
        expires_at,
    })
}

#[derive(Deserialize, Default)]
pub(crate) struct SignInForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    name: String,
    #[serde(default)]
    password: String,
}

#[derive(Deserialize, Default)]
pub(crate) struct SignInQuery {
    #[serde(default)]
    done: Option<String>,
}

/// A page with a fresh double-submit token in its form and its cookie.
fn with_form_cookie(mut response: Response, token: &str, secure: bool) -> Response {
    if let Ok(value) = HeaderValue::from_str(&set_cookie(FORM_COOKIE, token, secure)) {
        response.headers_mut().append(header::SET_COOKIE, value);
    }
    response
}

fn sign_in_body(
    token: &str,
    name: &str,
    errors: &[(String, String)],
    notice: Option<&str>,
    sso: Option<&str>,
) -> String {
    let error_for = |field: &str| html::field_error(errors, field);
    let described = |field: &str| {
        if errors.iter().any(|(f, _)| f == field) {
            format!(" aria-describedby=\"{field}-error\" class=\"input input-error\"")
        } else {
            " class=\"input\"".to_owned()
        }
    };
    format!(
        "{}{}<h1>Sign in to cascade</h1>\n\
         <form method=\"post\" action=\"/console/sign-in\" novalidate>\n{}\n\
         <div class=\"field\"><label for=\"name\">User name</label>\n{}<input id=\"name\" name=\"name\" type=\"text\" autocomplete=\"username\" spellcheck=\"false\" value=\"{}\"{}></div>\n\
         <div class=\"field\"><label for=\"password\">Password</label>\n{}<input id=\"password\" name=\"password\" type=\"password\" autocomplete=\"current-password\"{}></div>\n\
         <button class=\"button\" type=\"submit\">Sign in</button>\n</form>\n{}\
         <p>If you do not have an account, or have forgotten your password, ask your cascade administrator for a set-up link.</p>",
        notice
            .map(|n| format!(
                "<div class=\"notice\" role=\"status\"><p>{}</p></div>\n",
                esc(n)
            ))
            .unwrap_or_default(),
        error_summary(errors),
        csrf_field(token),
        error_for("name"),
        esc(name),
        described("name"),
        error_for("password"),
        described("password"),
        sso.map(|label| format!(
            "<h2>Or use your organisation's account</h2>\n<p><a class=\"button button-secondary\" href=\"/console/sso\">{}</a></p>\n",
            esc(label)
        ))
        .unwrap_or_default(),
    )
}

fn sso_label<S>(console: &Console<S>) -> Option<&str> {
    console.settings.sso.as_ref().map(|s| s.label.as_str())
}

pub(crate) async fn sign_in_page<S: AllStores + Accounts>(
    State(console): State<Arc<Console<S>>>,
    headers: HeaderMap,
    Query(query): Query<SignInQuery>,
) -> Response {
    if let Ok(Some(_)) = session::current(&console, &headers).await {
        return html::see_other("/console");
    }
    let token = random_token();
    let notice = query
        .done
        .is_some()
        .then_some("Your password is set. Sign in with it now.");
    with_form_cookie(
        page(
            StatusCode::OK,
            "Sign in",
            None,
            &sign_in_body(&token, "", &[], notice, sso_label(&console)),
        ),
        &token,
        console.settings.secure,
    )
}

pub(crate) async fn sign_in<S: AllStores + Accounts>(
    State(console): State<Arc<Console<S>>>,
    headers: HeaderMap,
    Form(form): Form<SignInForm>,
) -> Response {
    let expected = cookie(&headers, FORM_COOKIE).unwrap_or_default();
    if form.csrf.is_empty() || !same(&form.csrf, &expected) {
        tracing::warn!("console sign-in without its form token refused");
        return html::forbidden(
            None,
            "This form has expired. Open the sign-in page again and sign in.",
        );
    }
    let secure = console.settings.secure;
    let again = |errors: Vec<(String, String)>, status: StatusCode| {
        let token = random_token();
        with_form_cookie(
            page(
                status,
                "Sign in",
                None,
                &sign_in_body(&token, &form.name, &errors, None, sso_label(&console)),
            ),
            &token,
            secure,
        )
    };
    let mut errors = Vec::new();
    if form.name.trim().is_empty() {
        errors.push(("name".to_owned(), "Enter your user name".to_owned()));
    }
    if form.password.is_empty() {
        errors.push(("password".to_owned(), "Enter your password".to_owned()));
    }
    if !errors.is_empty() {
        return again(errors, StatusCode::OK);
    }
    let now = console.now();
    let name = form.name.trim();
    let name_hash = sha256_hex(&name.to_lowercase());
    let since = millis(now - console.settings.failure_window);
    let failures = match console.store.sign_in_failures(&name_hash, since).await {
        Ok(n) => n,
        Err(e) => return html::failed(None, "cannot count failed sign-ins", &e),
    };
    if failures >= console.settings.max_failures {
        tracing::warn!(
            failures,
            "console sign-in refused: too many failed attempts for the name"
        );
        tokio::time::sleep(console.settings.failure_delay).await;
        return again(
            vec![(
                "name".to_owned(),
                "There have been too many failed attempts to sign in with this name. Wait 15 minutes, then try again".to_owned(),
            )],
            StatusCode::TOO_MANY_REQUESTS,
        );
    }
    let user = match console.store.console_user(name).await {
        Ok(u) => u,
        Err(e) => return html::failed(None, "cannot read a console user", &e),
    };
    let password = form.password.clone();
    let hash = user.as_ref().and_then(|u| u.password_hash.clone());
    let matched = tokio::task::spawn_blocking(move || verify_password(hash.as_deref(), &password))
        .await
        .unwrap_or(false);
    let Some(user) = user.filter(|_| matched) else {
        if let Err(e) = console
            .store
            .record_sign_in_failure(&name_hash, millis(now), since)
            .await
        {
            return html::failed(None, "cannot record a failed sign-in", &e);
        }
        tracing::warn!(failures = failures + 1, "console sign-in failed");
        tokio::time::sleep(console.settings.failure_delay).await;
        return again(
            vec![(
                "name".to_owned(),
                "The user name or password is not right".to_owned(),
            )],
            StatusCode::OK,
        );
    };
    let id = match start_session(&console, &headers, user.id, now).await {
        Ok(id) => id,
        Err(r) => return r,
    };
    tracing::info!(user = user.id, "console sign-in");
    let mut response = html::see_other("/console");
    for value in [
        set_cookie(SESSION_COOKIE, &id, secure),
        clear_cookie(FORM_COOKIE, secure),
    ] {
        if let Ok(value) = HeaderValue::from_str(&value) {
            response.headers_mut().append(header::SET_COOKIE, value);
        }
    }
    response
}

/// Starts a session for `user_id` after a sign-in (by password or by
/// single sign-on); its id, for the cookie. Whatever session the browser
/// held before (a planted one included) is ended: the new one has a new id.
pub(crate) async fn start_session<S: AllStores + Accounts>(
    console: &Console<S>,
    headers: &HeaderMap,
    user_id: i64,
    now: DateTime<Utc>,
) -> Result<String, Response> {
    if let Some(old) = cookie(headers, SESSION_COOKIE) {
        console
            .store
            .end_console_session(&sha256_hex(&old))
            .await
            .map_err(|e| html::failed(None, "cannot end the previous session", &e))?;
    }
    let id = random_token();
    console
        .store
        .create_console_session(&sha256_hex(&id), user_id, &random_token(), millis(now))
        .await
        .map_err(|e| html::failed(None, "cannot start a session", &e))?;
    Ok(id)
}

#[derive(Deserialize, Default)]
pub(crate) struct SetupForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    password: String,
    #[serde(default)]
    confirm: String,
}

fn setup_body(token: &str, name: &str, action: &str, errors: &[(String, String)]) -> String {
    let error_for = |field: &str| html::field_error(errors, field);
    let described = |field: &str| {
        if errors.iter().any(|(f, _)| f == field) {
            format!(" aria-describedby=\"{field}-hint {field}-error\" class=\"input input-error\"")
        } else {
            format!(" aria-describedby=\"{field}-hint\" class=\"input\"")
        }
    };
    format!(
        "{}<h1>Set your password</h1>\n<p>You are setting the password for the cascade account <strong>{}</strong>.</p>\n\
         <form method=\"post\" action=\"{}\" novalidate>\n{}\n\
         <div class=\"field\"><label for=\"password\">Password</label>\n<p class=\"hint\" id=\"password-hint\">At least 12 characters. A few words you will remember make a good password.</p>\n{}<input id=\"password\" name=\"password\" type=\"password\" autocomplete=\"new-password\"{}></div>\n\
         <div class=\"field\"><label for=\"confirm\">Enter the password again</label>\n<p class=\"hint\" id=\"confirm-hint\">So that we know it was typed as you meant.</p>\n{}<input id=\"confirm\" name=\"confirm\" type=\"password\" autocomplete=\"new-password\"{}></div>\n\
         <button class=\"button\" type=\"submit\">Set password</button>\n</form>",
        error_summary(errors),
        esc(name),
        esc(action),
        csrf_field(token),
        error_for("password"),
        described("password"),
        error_for("confirm"),
        described("confirm"),
    )
}

fn setup_gone() -> Response {
    html::message(
        StatusCode::NOT_FOUND,
        "This set-up link cannot be used",
        None,
        "It has been used already or has expired. Ask your cascade administrator for a new one.",
    )
}

pub(crate) async fn setup_page<S: AllStores + Accounts>(
    State(console): State<Arc<Console<S>>>,
    Path(token): Path<String>,
) -> Response {
    let user = match console
        .store
        .console_user_by_setup(&sha256_hex(&token), millis(console.now()))
        .await
    {
        Ok(Some(user)) => user,
        Ok(None) => return setup_gone(),
        Err(e) => return html::failed(None, "cannot read a set-up link", &e),
    };
    let form_token = random_token();
    let action = format!("/console/setup/{token}");
    with_form_cookie(
        page(
            StatusCode::OK,
            "Set your password",
            None,
            &setup_body(&form_token, &user.name, &action, &[]),
        ),
        &form_token,
        console.settings.secure,
    )
}

pub(crate) async fn setup<S: AllStores + Accounts>(
    State(console): State<Arc<Console<S>>>,
    Path(token): Path<String>,
    headers: HeaderMap,
    Form(form): Form<SetupForm>,
) -> Response {
    let expected = cookie(&headers, FORM_COOKIE).unwrap_or_default();
    if form.csrf.is_empty() || !same(&form.csrf, &expected) {
        return html::forbidden(None, "This form has expired. Open your set-up link again.");
    }
    let now = console.now();
    let user = match console
        .store
        .console_user_by_setup(&sha256_hex(&token), millis(now))
        .await
    {
        Ok(Some(user)) => user,
        Ok(None) => return setup_gone(),
        Err(e) => return html::failed(None, "cannot read a set-up link", &e),
    };
    if let Some(problem) = password_problem(&form.password, &form.confirm) {
        let field = if form.password.chars().count() < auth::PASSWORD_MIN
            || form.password.chars().count() > auth::PASSWORD_MAX
        {
            "password"
        } else {
            "confirm"
        };
        let form_token = random_token();
        let action = format!("/console/setup/{token}");
        return with_form_cookie(
            page(
                StatusCode::OK,
                "Set your password",
                None,
                &setup_body(
                    &form_token,
                    &user.name,
                    &action,
                    &[(field.to_owned(), problem.to_owned())],
                ),
            ),
            &form_token,
            console.settings.secure,
        );
    }
    let password = form.password.clone();
    let Ok(hash) = tokio::task::spawn_blocking(move || hash_password(&password)).await else {
        return html::failed(None, "cannot hash a password", &"the hashing task stopped");
    };
    if let Err(e) = console.store.set_console_password(user.id, &hash).await {
        return html::failed(None, "cannot set a password", &e);
    }
    if let Err(e) = console
        .store
        .audit(&audit::entry(
            now,
            Some(user.id),
            &user.name,
            "user.set-password",
            &user.name,
            None,
            None,
        ))
        .await
    {
        return html::failed(None, "cannot write the audit log", &e);
    }
    tracing::info!(user = user.id, "console password set");
    html::see_other("/console/sign-in?done=1")
}

#[derive(Deserialize, Default)]
pub(crate) struct CsrfForm {
    #[serde(default)]
    pub csrf: String,
}

pub(crate) async fn sign_out<S: AllStores + Accounts>(
    State(console): State<Arc<Console<S>>>,
    headers: HeaderMap,
    Form(form): Form<CsrfForm>,
) -> Response {
    let signed = match session::for_post(&console, &headers, &form.csrf, |_| true).await {
        Ok(s) => s,
        Err(r) => return r,
    };
    if let Err(e) = console.store.end_console_session(&signed.id_hash).await {
        return html::failed(None, "cannot end a session", &e);
    }
    tracing::info!(user = signed.user.id, "console sign-out");
    signed_out(console.settings.secure)
}

fn signed_out(secure: bool) -> Response {
    let mut response = html::see_other("/console/sign-in");
    if let Ok(value) = HeaderValue::from_str(&clear_cookie(SESSION_COOKIE, secure)) {
        response.headers_mut().append(header::SET_COOKIE, value);
    }
    response
}

pub(crate) async fn account_page<S: AllStores + Accounts>(
    State(console): State<Arc<Console<S>>>,
    headers: HeaderMap,
) -> Response {
    let signed = match session::for_page(&console, &headers).await {
        Ok(s) => s,
        Err(r) => return r,
    };
    let body = format!(
        "<h1>Your account</h1>\n<dl class=\"summary\"><dt>User name</dt><dd>{}</dd><dt>Role</dt><dd>{}</dd></dl>\n\
         <h2>Sign out everywhere</h2>\n<p>This signs you out on every device and browser where you are signed in, this one included.</p>\n{}",
        esc(&signed.user.name),
        signed.role.as_str(),
        html::button_form(
            "/console/sign-out-everywhere",
            &signed.csrf,
            "Sign out everywhere",
            true
        )
    );
    page(
        StatusCode::OK,
        "Your account",
        Some(&signed.viewer()),
        &body,
    )
}

pub(crate) async fn sign_out_everywhere<S: AllStores + Accounts>(
    State(console): State<Arc<Console<S>>>,
    headers: HeaderMap,
    Form(form): Form<CsrfForm>,
) -> Response {
    let signed = match session::for_post(&console, &headers, &form.csrf, |_| true).await {
        Ok(s) => s,
        Err(r) => return r,
    };
    match console.store.end_console_sessions_of(signed.user.id).await {
        Ok(n) => tracing::info!(
            user = signed.user.id,
            sessions = n,
            "console sign-out everywhere"
        ),
        Err(e) => return html::failed(None, "cannot end sessions", &e),
    }
    signed_out(console.settings.secure)
}
