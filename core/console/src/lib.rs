//! The business unit's web console, served by `cascade serve` under
//! `/console`: server-rendered pages that work without JavaScript, over the
//! engine's own parsing, checks and planning, writing to the project
//! folder's files (the single source of truth), so the console and
//! `cascade check` / `cascade rollout plan` always agree.
//!
//! Every route but sign-in and set-up needs a session; every form carries
//! the session's CSRF token (a POST without it is refused with 403); every
//! role check is made here, on the server. Every change is written to the
//! audit log with the SHA-256 of what changed, before and after.
//!
//! Modules, lowest first: `auth` (passwords, tokens, cookies, roles),
//! `html` (escaping, the page frame, GOV.UK patterns), `session` (who is
//! signed in), then the pages: `account`, `champion`, `home`, `content`, `rollouts`,
//! `directory`, `people`, `reports`, `users`, `audit`.

// A handler answers with a page either way: its helpers return the page
// to show instead (`Result<_, Response>`), which is large but never copied
// more than once.
#![allow(clippy::result_large_err)]

pub mod auth;
pub mod html;
mod session;

mod account;
mod audit;
mod briefing_form;
mod bulletins;
mod champion;
mod content;
mod directory;
mod erase;
mod home;
mod people;
mod reports;
mod rollouts;
pub mod sso;
mod users;
mod versions;

pub use account::{SetupError, SetupLink, issue_setup_link};
pub use auth::Role;
pub use rollouts::plan_text;

use axum::Router;
use axum::http::header;
use axum::middleware;
use axum::response::IntoResponse;
use axum::routing::{get, post};
use cascade_store::{Accounts, AllStores};
use chrono::{DateTime, Duration, Utc};
use std::path::PathBuf;
use std::sync::Arc;

/// The console's notion of now; tests hold their own.
pub type Clock = Arc<dyn Fn() -> DateTime<Utc> + Send + Sync>;

/// How sessions and sign-ins are limited.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Where the console is reached: the start of the set-up links the
    /// users page hands out.
    pub base_url: String,
    /// Whether the console is served over https (cookies are `Secure`).
    pub secure: bool,
    /// Whether an approver may approve an item they saved themselves.
    pub allow_self_approval: bool,
    /// A session unused this long ends.
    pub idle: Duration,
    /// A session ends this long after sign-in, used or not.
    pub absolute: Duration,
    /// Failed sign-ins for one name counted over this long...
    pub failure_window: Duration,
    /// ...past this many, sign-in for that name is refused until they age out.
    pub max_failures: u64,
    /// Every failed sign-in is answered only after this long.
    pub failure_delay: std::time::Duration,
    /// Single sign-on through the partnership's identity provider, when
    /// `[console.sso]` sets it up.
    pub sso: Option<Arc<sso::Sso>>,
}

impl Settings {
    /// The defaults: 30 minutes idle, 12 hours at most, 5 failures in 15
    /// minutes, each answered after a second.
    pub fn new(base_url: &str, allow_self_approval: bool) -> Settings {
        Settings {
            base_url: base_url.to_owned(),
            secure: base_url.starts_with("https://"),
            allow_self_approval,
            idle: Duration::minutes(30),
            absolute: Duration::hours(12),
            failure_window: Duration::minutes(15),
            max_failures: 5,
            failure_delay: std::time::Duration::from_secs(1),
            sso: None,
        }
    }
}

/// What the console's routes share.
pub struct Console<S> {
    pub(crate) store: Arc<S>,
    /// The project folder; opened afresh for each page, so what is on disk
    /// is what the page shows.
    pub(crate) root: PathBuf,
    pub(crate) clock: Clock,
    pub(crate) settings: Settings,
    /// The acknowledgement service: a champion's teams and confirmations
    /// follow the same rules as the emailed links.
    pub(crate) responses: cascade_engine::respond::Responses<S>,
    /// Reports computed for the reports pages, kept until a row they were
    /// computed from changes or a wave's deadline passes.
    pub(crate) reports: cascade_engine::report::ReportCache,
    /// The home page's "Team briefings due", a rollout at a time, kept
    /// while the rows they were read from are unchanged.
    pub(crate) briefings: home::KeptBriefings,
}

impl<S: AllStores + Accounts> Console<S> {
    pub fn new(store: Arc<S>, root: PathBuf, clock: Clock, settings: Settings) -> Console<S> {
        Console {
            responses: cascade_engine::respond::Responses::new(store.clone()),
            reports: cascade_engine::report::ReportCache::new(),
            briefings: home::KeptBriefings::default(),
            store,
            root,
            clock,
            settings,
        }
    }

    pub(crate) fn now(&self) -> DateTime<Utc> {
        (self.clock)()
    }
}

/// The console's routes, all under `/console`, with its security headers.
pub fn router<S: AllStores + Accounts>(console: Console<S>) -> Router {
    let state = Arc::new(console);
    Router::new()
        .route("/console", get(home::home::<S>))
        .route("/console/", get(home::home::<S>))
        .route("/console/style.css", get(stylesheet))
        .route("/console/progress.js", get(progress_script))
        .route(
            "/console/sign-in",
            get(account::sign_in_page::<S>).post(account::sign_in::<S>),
        )
        .route(
            "/console/setup/{token}",
            get(account::setup_page::<S>).post(account::setup::<S>),
        )
        .route("/console/sso", get(sso::start::<S>))
        .route("/console/sso/callback", get(sso::callback::<S>))
        .route("/console/sign-out", post(account::sign_out::<S>))
        .route("/console/account", get(account::account_page::<S>))
        .route(
            "/console/sign-out-everywhere",
            post(account::sign_out_everywhere::<S>),
        )
        .route("/console/content", get(content::list::<S>))
        .route(
            "/console/content/new",
            get(content::new_page::<S>).post(content::create::<S>),
        )
        .route(
            "/console/content/new/briefing",
            get(briefing_form::new_page::<S>).post(briefing_form::create::<S>),
        )
        .route("/console/content/{id}", get(content::item::<S>))
        .route(
            "/console/content/{id}/edit/briefing",
            get(briefing_form::edit_page::<S>).post(briefing_form::save::<S>),
        )
        .route(
            "/console/content/{id}/versions/{version}",
            get(versions::version::<S>),
        )
        .route(
            "/console/content/{id}/email-preview",
            get(content::email_preview::<S>),
        )
        .route(
            "/console/content/{id}/edit",
            get(content::edit_page::<S>).post(content::save::<S>),
        )
        .route("/console/content/{id}/approve", post(content::approve::<S>))
        .route("/console/rollouts", get(rollouts::list::<S>))
        .route(
            "/console/rollouts/new",
            get(rollouts::new_page::<S>).post(rollouts::create::<S>),
        )
        .route("/console/rollouts/{id}", get(rollouts::rollout::<S>))
        .route("/console/rollouts/{id}/start", post(rollouts::start::<S>))
        .route("/console/rollouts/{id}/progress", get(rollouts::live::<S>))
        .route("/console/rollouts/{id}/retry", post(rollouts::retry::<S>))
        .route(
            "/console/rollouts/{id}/{action}",
            post(rollouts::change_state::<S>),
        )
        .route(
            "/console/directory",
            get(directory::directory::<S>)
                .post(directory::upload::<S>)
                .layer(axum::extract::DefaultBodyLimit::max(
                    directory::MAX_UPLOAD_BYTES,
                )),
        )
        .route("/console/champion/teams/{team}", get(champion::team::<S>))
        .route(
            "/console/champion/{rollout}/confirm",
            get(champion::confirm_page::<S>).post(champion::confirm::<S>),
        )
        .route("/console/reports", get(reports::reports::<S>))
        .route("/console/reports/{file}", get(reports::download::<S>))
        .route(
            "/console/users",
            get(users::users::<S>).post(users::add::<S>),
        )
        .route("/console/users/{name}/{action}", post(users::change::<S>))
        .route("/console/directory/people", get(people::search::<S>))
        .route("/console/directory/people/{id}", get(people::one::<S>))
        .route(
            "/console/directory/people/{id}/link-code",
            post(people::link_code::<S>),
        )
        .route(
            "/console/erase",
            get(erase::form::<S>).post(erase::erase::<S>),
        )
        .route("/console/audit", get(audit::audit::<S>))
        .route("/console/audit.csv", get(audit::audit_csv::<S>))
        .with_state(state)
        .layer(middleware::map_response(html::security_headers))
}

const STYLESHEET: &str = include_str!("style.css");
const PROGRESS_SCRIPT: &str = include_str!("progress.js");

/// The rollout page's live progress (the console's only script).
async fn progress_script() -> impl IntoResponse {
    (
        [
            (header::CONTENT_TYPE, "text/javascript; charset=utf-8"),
            (header::CACHE_CONTROL, "max-age=3600"),
        ],
        PROGRESS_SCRIPT,
    )
}

async fn stylesheet() -> impl IntoResponse {
    (
        [
            (header::CONTENT_TYPE, "text/css; charset=utf-8"),
            (header::CACHE_CONTROL, "max-age=3600"),
        ],
        STYLESHEET,
    )
}
