//! Who is signed in: the session cookie looked up in the store, ended when
//! idle or too old; and the checks every POST makes (a session, its CSRF
//! token, the role).

use crate::Console;
use crate::auth::{Role, SESSION_COOKIE, cookie, same, sha256_hex};
use crate::html::{self, Viewer};
use axum::http::HeaderMap;
use axum::response::Response;
use cascade_model::time::millis;
use cascade_store::{Accounts, AllStores, ConsoleUser};

/// A signed-in user and their session.
pub(crate) struct Signed {
    pub user: ConsoleUser,
    pub role: Role,
    pub csrf: String,
    /// The session id's hash, as the store keys it.
    pub id_hash: String,
}

impl Signed {
    pub fn viewer(&self) -> Viewer<'_> {
        Viewer {
            name: &self.user.name,
            role: self.role,
            csrf: &self.csrf,
        }
    }
}

/// The session the request's cookie names, if it is live: unknown, idle
/// past `idle` or older than `absolute` is none (and an expired one is
/// ended). A live session's last use is moved to now.
pub(crate) async fn current<S: AllStores + Accounts>(
    console: &Console<S>,
    headers: &HeaderMap,
) -> Result<Option<Signed>, Response> {
    lookup(console, headers, true).await
}

/// The session the request's cookie names, if it is live, without moving
/// its last use: for a page's own polling, so a page left open does not
/// keep an idle session alive.
pub(crate) async fn peek<S: AllStores + Accounts>(
    console: &Console<S>,
    headers: &HeaderMap,
) -> Result<Option<Signed>, Response> {
    lookup(console, headers, false).await
}

async fn lookup<S: AllStores + Accounts>(
    console: &Console<S>,
    headers: &HeaderMap,
    touch: bool,
) -> Result<Option<Signed>, Response> {
    let Some(id) = cookie(headers, SESSION_COOKIE) else {
        return Ok(None);
    };
    let id_hash = sha256_hex(&id);
    let session = match console.store.console_session(&id_hash).await {
        Ok(s) => s,
        Err(e) => return Err(html::failed(None, "cannot read a session", &e)),
    };
    let Some(session) = session else {
        return Ok(None);
    };
    let now = millis(console.now());
    let idle = now - session.last_seen_at > console.settings.idle.num_milliseconds();
    let old = now - session.created_at > console.settings.absolute.num_milliseconds();
    let role = Role::parse(&session.user.role);
    if idle || old || role.is_none() {
        if let Err(e) = console.store.end_console_session(&id_hash).await {
            return Err(html::failed(None, "cannot end an expired session", &e));
        }
        tracing::info!(user = session.user.id, idle, "console session expired");
        return Ok(None);
    }
    if touch && let Err(e) = console.store.touch_console_session(&id_hash, now).await {
        return Err(html::failed(None, "cannot record a session's use", &e));
    }
    Ok(Some(Signed {
        role: role.expect("checked above"),
        user: session.user,
        csrf: session.csrf,
        id_hash,
    }))
}

/// The signed-in user of a page (a GET), or the way to the sign-in page.
pub(crate) async fn for_page<S: AllStores + Accounts>(
    console: &Console<S>,
    headers: &HeaderMap,
) -> Result<Signed, Response> {
    match current(console, headers).await? {
        Some(signed) => Ok(signed),
        None => Err(html::see_other("/console/sign-in")),
    }
}

/// The signed-in user of a page only `allowed` roles may see; 403 for others.
pub(crate) async fn page_for<S: AllStores + Accounts>(
    console: &Console<S>,
    headers: &HeaderMap,
    allowed: fn(Role) -> bool,
) -> Result<Signed, Response> {
    let signed = for_page(console, headers).await?;
    if !allowed(signed.role) {
        return Err(html::forbidden(
            Some(&signed.viewer()),
            "Your role does not give you access to this page.",
        ));
    }
    Ok(signed)
}

/// The signed-in user of a form post (a POST), checked in this order: a
/// live session (403 without one), the form's CSRF token (403 when it is
/// missing or wrong), and the role (403 when it may not do this).
pub(crate) async fn for_post<S: AllStores + Accounts>(
    console: &Console<S>,
    headers: &HeaderMap,
    csrf: &str,
    allowed: fn(Role) -> bool,
) -> Result<Signed, Response> {
    let Some(signed) = current(console, headers).await? else {
        return Err(html::forbidden(
            None,
            "You are not signed in, or your session has ended. Sign in again and repeat what you were doing.",
        ));
    };
    if csrf.is_empty() || !same(csrf, &signed.csrf) {
        tracing::warn!(
            user = signed.user.id,
            "console form without its CSRF token refused"
        );
        return Err(html::forbidden(
            Some(&signed.viewer()),
            "This form has expired. Go back, reload the page and try again.",
        ));
    }
    if !allowed(signed.role) {
        tracing::warn!(
            user = signed.user.id,
            role = signed.role.as_str(),
            "console action refused for the role"
        );
        return Err(html::forbidden(
            Some(&signed.viewer()),
            "Your role does not allow this.",
        ));
    }
    Ok(signed)
}
