//! Rollouts: the rollout files and the rollouts started; one rollout file's
//! plan, exactly as `cascade rollout plan` prints it (the same engine call
//! and the same text), started after that check; one rollout's progress by
//! wave and channel with its dead letters; pause, resume and cancel.

use crate::auth::Role;
use crate::content::safe_id;
use crate::home::totals;
use crate::html::{self, bar, count, esc, multiline, page};
use crate::session::{self, Signed};
use crate::{Console, audit};
use axum::extract::{Form, Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse as _, Response};
use cascade_engine::engine::{Engine, Planned};
use cascade_engine::project::Project;
use cascade_store::{Accounts, AllStores, RolloutState};
use std::fmt::Write as _;
use std::sync::Arc;

/// The rollout files' ids (file names without `.toml`), sorted.
fn files(project: &Project) -> Vec<String> {
    let mut ids: Vec<String> = std::fs::read_dir(project.rollouts_dir())
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let path = e.path();
            (path.extension().is_some_and(|x| x == "toml"))
                .then(|| path.file_stem().map(|s| s.to_string_lossy().into_owned()))
                .flatten()
        })
        .filter(|id| safe_id(id))
        .collect();
    ids.sort();
    ids
}

pub(crate) async fn list<S: AllStores + Accounts>(
    State(console): State<Arc<Console<S>>>,
    headers: HeaderMap,
) -> Response {
    let signed = match session::page_for(&console, &headers, Role::reads_everything).await {
        Ok(s) => s,
        Err(r) => return r,
    };
    let viewer = signed.viewer();
    let project = match Project::open(&console.root) {
        Ok(p) => p,
        Err(e) => return html::failed(Some(&viewer), "cannot open the project", &e),
    };
    let stored = match console.store.rollouts().await {
        Ok(r) => r,
        Err(e) => return html::failed(Some(&viewer), "cannot read rollouts", &e),
    };
    let mut body = String::from("<h1>Rollouts</h1>\n");
    if signed.role.edits() {
        body.push_str(
            "<p><a class=\"button\" href=\"/console/rollouts/new\">Plan a rollout</a></p>\n",
        );
    }
    body.push_str("<h2>Started</h2>\n");
    if stored.is_empty() {
        body.push_str("<p>No rollout has been started.</p>\n");
    } else {
        body.push_str(
            "<div class=\"table-wrap\"><table>\n<caption class=\"visually-hidden\">Rollouts started</caption>\n\
             <thead><tr><th scope=\"col\">Rollout</th><th scope=\"col\">Item</th><th scope=\"col\">State</th><th scope=\"col\">Acknowledged</th></tr></thead>\n<tbody>\n",
        );
        let totals = match totals(&*console.store).await {
            Ok(t) => t,
            Err(e) => return html::failed(Some(&viewer), "cannot count rollouts", &e),
        };
        for r in &stored {
            let t = totals.get(&r.id).cloned().unwrap_or_default();
            let _ = writeln!(
                body,
                "<tr><td><a href=\"/console/rollouts/{}\">{}</a></td><td>{}</td><td>{}</td><td>{}</td></tr>",
                esc(&r.id),
                esc(&r.id),
                esc(&r.item_id),
                r.state.as_str(),
                bar(
                    &format!("{} acknowledged", r.id),
                    t.acknowledged.max(0) as u64,
                    t.members.max(0) as u64
                )
            );
        }
        body.push_str("</tbody></table></div>\n");
    }
    let bulletins = match crate::bulletins::list(&console, &project).await {
        Ok((ids, html)) => {
            body.push_str(&html);
            ids
        }
        Err(e) => return html::failed(Some(&viewer), "cannot read the bulletins", &e),
    };
    let waiting: Vec<String> = files(&project)
        .into_iter()
        .filter(|id| !stored.iter().any(|r| &r.id == id) && !bulletins.contains(id))
        .collect();
    body.push_str("<h2>Rollout files not started</h2>\n");
    if waiting.is_empty() {
        body.push_str("<p>Every rollout file has been started.</p>\n");
    } else {
        body.push_str("<ul class=\"list\">\n");
        for id in waiting {
            let _ = writeln!(
                body,
                "<li><a href=\"/console/rollouts/{}\">rollouts/{}.toml</a>: check its plan</li>",
                esc(&id),
                esc(&id)
            );
        }
        body.push_str("</ul>\n");
    }
    page(StatusCode::OK, "Rollouts", Some(&viewer), &body)
}

/// The plan of `rollouts/<id>.toml`, or its problems, as the CLI has them.
async fn plan<S: AllStores + Accounts>(
    console: &Console<S>,
    signed: &Signed,
    id: &str,
) -> Result<(Engine<S>, Result<Planned, Vec<String>>), Response> {
    let viewer = signed.viewer();
    let project = Project::open(&console.root)
        .map_err(|e| html::failed(Some(&viewer), "cannot open the project", &e))?;
    let path = project.rollouts_dir().join(format!("{id}.toml"));
    if !path.is_file() {
        return Err(html::not_found(
            Some(&viewer),
            "There is no rollout or rollout file with that id.",
        ));
    }
    let engine = match Engine::with_store(project, console.store.clone(), false).await {
        Ok(e) => e,
        Err(problems) => {
            return Err(page(
                StatusCode::OK,
                "The project has problems",
                Some(&viewer),
                &format!(
                    "<h1>The project has problems</h1>\n<ul>{}</ul>",
                    problems
                        .0
                        .iter()
                        .map(|p| format!("<li>{}</li>", multiline(p)))
                        .collect::<String>()
                ),
            ));
        }
    };
    let planned = engine.plan(&path, console.now()).await.map_err(|p| p.0);
    Ok((engine, planned))
}

/// What `cascade rollout plan` prints first: the summary, and the people
/// left out because another rollout already reached them.
pub fn plan_text(planned: &Planned) -> String {
    let mut text = planned.summary.to_string();
    if let Some(marking) = planned.item.item.classification.marking() {
        let _ = write!(
            text,
            "\n{marking}: full text only where the channel (or the address's domain) may carry it; a notice with a link to read it elsewhere:\n"
        );
        for line in &planned.reading_lines {
            let _ = writeln!(text, "  {line}");
        }
    }
    if !planned.sms_lines.is_empty() {
        let _ = write!(
            text,
            "\nText messages (GOV.UK Notify bills each fragment):\n"
        );
        for line in &planned.sms_lines {
            let _ = writeln!(text, "  {line}");
        }
    }
    if planned.already_reached > 0 {
        let _ = write!(
            text,
            "\n{} people in this audience already have \"{}\" through another rollout and are left out, so nobody gets it twice.\n",
            planned.already_reached, planned.definition.item
        );
    }
    text
}

pub(crate) async fn rollout<S: AllStores + Accounts>(
    State(console): State<Arc<Console<S>>>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Response {
    let signed = match session::page_for(&console, &headers, Role::reads_everything).await {
        Ok(s) => s,
        Err(r) => return r,
    };
    let viewer = signed.viewer();
    if !safe_id(&id) {
        return html::not_found(Some(&viewer), "There is no rollout with that id.");
    }
    match console.store.rollout(&id).await {
        Ok(Some(stored)) => progress(&console, &signed, &stored).await,
        Ok(None) => {
            if let Some(page) = crate::bulletins::started(&console, &signed, &id).await {
                return page;
            }
            let (engine, planned) = match plan(&console, &signed, &id).await {
                Ok(p) => p,
                Err(r) => return r,
            };
            if let Some(page) = crate::bulletins::file(&console, &signed, &engine, &id).await {
                return page;
            }
            let mut body = format!(
                "<span class=\"caption\">rollouts/{}.toml</span>\n",
                esc(&id)
            );
            match planned {
                Ok(planned) => {
                    let _ = write!(
                        body,
                        "<h1>Check the plan</h1>\n<p>This is what <code>cascade rollout plan rollouts/{}.toml</code> shows. Nothing has been sent.</p>\n<pre class=\"plan\" tabindex=\"0\">{}</pre>\n",
                        esc(&id),
                        esc(&plan_text(&planned))
                    );
                    if signed.role.edits() {
                        let _ = write!(
                            body,
                            "<h2>Start the rollout</h2>\n<p>Starting records every person above and pins this version of the item. <code>cascade serve</code> then sends it on the timetable shown.</p>\n{}",
                            html::button_form(
                                &format!("/console/rollouts/{id}/start"),
                                &signed.csrf,
                                "Start this rollout",
                                false
                            )
                        );
                    }
                }
                Err(problems) => {
                    let _ = write!(
                        body,
                        "<h1>This rollout cannot start</h1>\n<div class=\"warning\"><p>{} problem{}, as <code>cascade rollout plan</code> reports them:</p><ul>{}</ul></div>",
                        problems.len(),
                        if problems.len() == 1 { "" } else { "s" },
                        problems
                            .iter()
                            .map(|p| format!("<li>{}</li>", multiline(p)))
                            .collect::<String>()
                    );
                }
            }
            page(
                StatusCode::OK,
                &format!("Plan of {id}"),
                Some(&viewer),
                &body,
            )
        }
        Err(e) => html::failed(Some(&viewer), "cannot read a rollout", &e),
    }
}

async fn progress<S: AllStores + Accounts>(
    console: &Console<S>,
    signed: &Signed,
    stored: &cascade_store::StoredRollout,
) -> Response {
    let viewer = signed.viewer();
    let id = &stored.id;
    let (waves, deliveries) = match (
        console.store.wave_counts(id).await,
        console.store.delivery_counts(id).await,
    ) {
        (Ok(w), Ok(d)) => (w, d),
        (Err(e), _) | (_, Err(e)) => {
            return html::failed(Some(&viewer), "cannot read a rollout's progress", &e);
        }
    };
    let mut body = format!(
        "<span class=\"caption\">Rollout</span>\n<h1>{}</h1>\n<dl class=\"summary\"><dt>Item</dt><dd><a href=\"/console/content/{}\">{}</a></dd><dt>Version</dt><dd><code>{}</code></dd><dt>State</dt><dd id=\"state\">{}</dd></dl>\n",
        esc(id),
        esc(&stored.item_id),
        esc(&stored.item_id),
        esc(&stored.item_version[..12.min(stored.item_version.len())]),
        stored.state.as_str()
    );
    if signed.role.edits() && stored.state != RolloutState::Cancelled {
        body.push_str("<div class=\"actions\">");
        if stored.state == RolloutState::Active {
            body.push_str(&html::button_form(
                &format!("/console/rollouts/{id}/pause"),
                &signed.csrf,
                "Pause",
                true,
            ));
        } else {
            body.push_str(&html::button_form(
                &format!("/console/rollouts/{id}/resume"),
                &signed.csrf,
                "Resume",
                false,
            ));
        }
        body.push_str(&html::button_form(
            &format!("/console/rollouts/{id}/cancel"),
            &signed.csrf,
            "Cancel for good",
            true,
        ));
        body.push_str("</div>\n");
    }
    let definition: Option<cascade_model::rollout::RolloutDefinition> =
        serde_json::from_str(&stored.definition).ok();
    // Live where JavaScript runs: progress.js asks for the waves again
    // while the rollout is sending; without it the page is as loaded.
    let live = stored.state == RolloutState::Active;
    if live {
        let _ = writeln!(
            body,
            "<div id=\"progress\" data-source=\"/console/rollouts/{}/progress\">",
            esc(id)
        );
    } else {
        body.push_str("<div id=\"progress\">\n");
    }
    body.push_str(&waves_html(&waves, &deliveries, definition.as_ref()));
    body.push_str("</div>\n");
    if live {
        body.push_str(
            "<p id=\"progress-updated\" class=\"hint\">These figures are as they were when the page loaded.</p>\n\
             <script src=\"/console/progress.js\" defer></script>\n",
        );
    }
    let dead_total: u64 = deliveries.iter().map(|c| c.dead).sum();
    match details(console, signed, stored, definition.as_ref(), dead_total).await {
        Ok(more) => body.push_str(&more),
        Err(r) => return r,
    }
    page(StatusCode::OK, id, Some(&viewer), &body)
}

/// Each wave's members and acknowledgements, and its messages by channel.
fn waves_html(
    waves: &[cascade_store::WaveCounts],
    deliveries: &[cascade_store::DeliveryCounts],
    definition: Option<&cascade_model::rollout::RolloutDefinition>,
) -> String {
    let mut body = String::new();
    for w in waves {
        let name = definition
            .and_then(|d| d.waves.get(w.wave as usize))
            .map(|wave| format!(": {}", wave.name))
            .unwrap_or_default();
        let _ = write!(
            body,
            "<h2>Wave {}{}</h2>\n<p>{} people. Acknowledged: {}</p>\n",
            w.wave + 1,
            esc(&name),
            count(w.members),
            bar(
                &format!("Wave {} acknowledged", w.wave + 1),
                w.acknowledged,
                w.members
            )
        );
        if w.left + w.moved > 0 {
            let _ = writeln!(
                body,
                "<p>No longer chased: {} left the directory, {} moved out of the audience. What they acknowledged still counts.</p>",
                count(w.left),
                count(w.moved)
            );
        }
        let rows: Vec<_> = deliveries.iter().filter(|c| c.wave == w.wave).collect();
        if rows.is_empty() {
            body.push_str("<p>Nothing queued yet.</p>\n");
            continue;
        }
        let _ = write!(
            body,
            "<div class=\"table-wrap\"><table>\n<caption class=\"visually-hidden\">Wave {} by channel</caption>\n<thead><tr><th scope=\"col\">Channel</th><th scope=\"col\">Waiting</th><th scope=\"col\">Sending</th><th scope=\"col\">Sent</th><th scope=\"col\">Retrying</th><th scope=\"col\">Dead</th></tr></thead>\n<tbody>\n",
            w.wave + 1
        );
        for c in rows {
            let _ = writeln!(
                body,
                "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                esc(&c.channel),
                count(c.due),
                count(c.leased),
                count(c.sent),
                count(c.retrying),
                count(c.dead)
            );
        }
        body.push_str("</tbody></table></div>\n");
    }
    body
}

/// A started rollout's waves as JSON for the page's own polling
/// (progress.js): `state` and `html`, the waves as the page shows them.
/// The session is checked but not moved on, so a page left open does not
/// keep it alive.
pub(crate) async fn live<S: AllStores + Accounts>(
    State(console): State<Arc<Console<S>>>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Response {
    let answer = |status: StatusCode, value: serde_json::Value| {
        (
            status,
            [(axum::http::header::CACHE_CONTROL, "no-store")],
            axum::Json(value),
        )
            .into_response()
    };
    let signed = match session::peek(&console, &headers).await {
        Ok(Some(signed)) => signed,
        Ok(None) => {
            return answer(
                StatusCode::UNAUTHORIZED,
                serde_json::json!({"error": "Sign in again to see this rollout."}),
            );
        }
        Err(response) => return response,
    };
    if !signed.role.reads_everything() {
        return answer(
            StatusCode::FORBIDDEN,
            serde_json::json!({"error": "Your role does not give you access to this page."}),
        );
    }
    let stored = if safe_id(&id) {
        console.store.rollout(&id).await
    } else {
        Ok(None)
    };
    let stored = match stored {
        Ok(Some(stored)) => stored,
        Ok(None) => {
            return answer(
                StatusCode::NOT_FOUND,
                serde_json::json!({"error": "There is no rollout with that id."}),
            );
        }
        Err(e) => {
            tracing::error!(error = %e, "cannot read a rollout");
            return answer(
                StatusCode::INTERNAL_SERVER_ERROR,
                serde_json::json!({"error": "The rollout cannot be read just now."}),
            );
        }
    };
    match (
        console.store.wave_counts(&stored.id).await,
        console.store.delivery_counts(&stored.id).await,
    ) {
        (Ok(waves), Ok(deliveries)) => {
            let definition: Option<cascade_model::rollout::RolloutDefinition> =
                serde_json::from_str(&stored.definition).ok();
            answer(
                StatusCode::OK,
                serde_json::json!({
                    "state": stored.state.as_str(),
                    "html": waves_html(&waves, &deliveries, definition.as_ref()),
                }),
            )
        }
        (Err(e), _) | (_, Err(e)) => {
            tracing::error!(error = %e, "cannot read a rollout's progress");
            answer(
                StatusCode::INTERNAL_SERVER_ERROR,
                serde_json::json!({"error": "The rollout's progress cannot be read just now."}),
            )
        }
    }
}

/// How many names of people still to acknowledge an editor sees.
const OUTSTANDING_SHOWN: u32 = 200;
/// How many dead letters an editor sees.
const DEAD_SHOWN: u32 = 50;

/// A started rollout's dead letters, who is outstanding, its team posts
/// and its follow-up answers. Names and reasons (which may hold an
/// address) only for editors; other roles see counts.
async fn details<S: AllStores + Accounts>(
    console: &Console<S>,
    signed: &Signed,
    stored: &cascade_store::StoredRollout,
    definition: Option<&cascade_model::rollout::RolloutDefinition>,
    dead_total: u64,
) -> Result<String, Response> {
    let viewer = signed.viewer();
    let failed =
        |e: cascade_store::StoreError| html::failed(Some(&viewer), "cannot read a rollout", &e);
    let id = &stored.id;
    let editor = signed.role.edits();
    let mut body = format!(
        "<h2>Dead letters</h2>\n<p id=\"dead\">{} message{} could not be delivered.</p>\n",
        count(dead_total),
        if dead_total == 1 { "" } else { "s" }
    );
    if editor && dead_total > 0 {
        let dead = console
            .store
            .dead_letters(id, DEAD_SHOWN)
            .await
            .map_err(failed)?;
        body.push_str(
            "<div class=\"table-wrap\"><table>\n<caption class=\"visually-hidden\">Latest dead letters</caption>\n\
             <thead><tr><th scope=\"col\">Person</th><th scope=\"col\">Channel</th><th scope=\"col\">Message</th><th scope=\"col\">Reason</th></tr></thead>\n<tbody>\n",
        );
        for d in &dead {
            let _ = writeln!(
                body,
                "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                esc(&d.person_id),
                esc(&d.channel),
                esc(&d.step_kind.to_string()),
                esc(&d.reason)
            );
        }
        body.push_str("</tbody></table></div>\n");
        if stored.state != RolloutState::Cancelled {
            body.push_str("<p>Retrying queues each dead letter again on the channel that failed first, unless that person has been sent the message some other way. Fix the reason first (for example the address in the directory).</p>\n");
            body.push_str(&html::button_form(
                &format!("/console/rollouts/{id}/retry"),
                &signed.csrf,
                "Retry the dead letters",
                true,
            ));
        }
    }

    let waves = console.store.wave_counts(id).await.map_err(failed)?;
    // Leavers and movers are not chased, so not listed as outstanding.
    let outstanding: u64 = waves.iter().map(|w| w.waiting).sum();
    let _ = write!(
        body,
        "<h2>Not yet acknowledged</h2>\n<p id=\"outstanding\">{} {} not acknowledged yet.</p>\n",
        count(outstanding),
        if outstanding == 1 {
            "person has"
        } else {
            "people have"
        }
    );
    if editor && outstanding > 0 {
        let people = console
            .store
            .outstanding_people(id, OUTSTANDING_SHOWN)
            .await
            .map_err(failed)?;
        body.push_str(
            "<div class=\"table-wrap\"><table>\n<caption class=\"visually-hidden\">People who have not acknowledged</caption>\n\
             <thead><tr><th scope=\"col\">Name</th><th scope=\"col\">Team</th></tr></thead>\n<tbody>\n",
        );
        for p in &people {
            let _ = writeln!(
                body,
                "<tr><td>{}</td><td>{}</td></tr>",
                esc(&p.name),
                esc(&p.team)
            );
        }
        body.push_str("</tbody></table></div>\n");
        if outstanding > people.len() as u64 {
            let _ = writeln!(
                body,
                "<p>And {} more; the report has every team's figures.</p>",
                count(outstanding - people.len() as u64)
            );
        }
    }

    let posts = console.store.team_posts(id).await.map_err(failed)?;
    if !posts.is_empty() {
        body.push_str(
            "<h2>Team posts</h2>\n<div class=\"table-wrap\"><table>\n<caption class=\"visually-hidden\">Posts in team channels</caption>\n\
             <thead><tr><th scope=\"col\">Team</th><th scope=\"col\">Channel</th><th scope=\"col\">State</th><th scope=\"col\">Acknowledged, as the post shows it</th></tr></thead>\n<tbody>\n",
        );
        for p in &posts {
            let shown = p.shown.map_or("not posted yet".to_owned(), |c| {
                format!(
                    "{} of {}",
                    count(u64::from(c.acknowledged)),
                    count(u64::from(c.total))
                )
            });
            let _ = writeln!(
                body,
                "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                esc(&p.team_id),
                esc(&p.channel),
                esc(&p.state),
                shown
            );
        }
        body.push_str("</tbody></table></div>\n");
    }

    if let Some(definition) = definition.filter(|d| !d.follow_ups.is_empty()) {
        let tallies = console.store.answer_tallies(id).await.map_err(failed)?;
        body.push_str("<h2>Follow-up answers</h2>\n");
        for (n, follow_up) in definition.follow_ups.iter().enumerate() {
            let number = n as u32 + 1;
            let _ = write!(
                body,
                "<h3>{}</h3>\n<ul class=\"list\">\n",
                esc(&follow_up.question)
            );
            for answer in &follow_up.answers {
                let given = tallies
                    .iter()
                    .find(|t| t.follow_up == number && &t.answer == answer)
                    .map_or(0, |t| t.count.max(0) as u64);
                let _ = writeln!(body, "<li>{}: {}</li>", esc(answer), count(given));
            }
            body.push_str("</ul>\n");
        }
    }
    Ok(body)
}

/// Queues the rollout's dead letters again (editors only; audited).
pub(crate) async fn retry<S: AllStores + Accounts>(
    State(console): State<Arc<Console<S>>>,
    Path(id): Path<String>,
    headers: HeaderMap,
    Form(form): Form<crate::account::CsrfForm>,
) -> Result<Response, Response> {
    let signed = session::for_post(&console, &headers, &form.csrf, Role::edits).await?;
    let viewer = signed.viewer();
    let stored = match console.store.rollout(&id).await {
        Ok(Some(r)) => r,
        Ok(None) => {
            return Err(html::not_found(
                Some(&viewer),
                "There is no rollout with that id.",
            ));
        }
        Err(e) => return Err(html::failed(Some(&viewer), "cannot read a rollout", &e)),
    };
    if stored.state == RolloutState::Cancelled {
        return Err(html::message(
            StatusCode::CONFLICT,
            "This rollout was cancelled",
            Some(&viewer),
            "A cancelled rollout's dead letters cannot be retried.",
        ));
    }
    let now = console.now();
    let queued = console
        .store
        .retry_dead_letters(&id, cascade_model::time::millis(now))
        .await
        .map_err(|e| html::failed(Some(&viewer), "cannot retry dead letters", &e))?;
    audit::record(
        &console,
        &signed,
        "rollout.retry",
        &id,
        None,
        Some(crate::auth::sha256_hex(&format!("{id} retried {queued}"))),
    )
    .await?;
    tracing::info!(user = signed.user.id, rollout = %id, queued, "console dead letters retried");
    Ok(html::see_other(&format!("/console/rollouts/{id}")))
}

pub(crate) async fn start<S: AllStores + Accounts>(
    State(console): State<Arc<Console<S>>>,
    Path(id): Path<String>,
    headers: HeaderMap,
    Form(form): Form<crate::account::CsrfForm>,
) -> Response {
    let signed = match session::for_post(&console, &headers, &form.csrf, Role::edits).await {
        Ok(s) => s,
        Err(r) => return r,
    };
    let viewer = signed.viewer();
    if !safe_id(&id) {
        return html::not_found(Some(&viewer), "There is no rollout file with that id.");
    }
    let (engine, planned) = match plan(&console, &signed, &id).await {
        Ok(p) => p,
        Err(r) => return r,
    };
    let problems = |problems: Vec<String>| {
        page(
            StatusCode::UNPROCESSABLE_ENTITY,
            "This rollout cannot start",
            Some(&viewer),
            &format!(
                "<h1>This rollout cannot start</h1>\n<p>Nothing was started and nothing was sent.</p><ul>{}</ul>",
                problems
                    .iter()
                    .map(|p| format!("<li>{}</li>", multiline(p)))
                    .collect::<String>()
            ),
        )
    };
    let planned = match planned {
        Ok(p) => p,
        Err(p) => return problems(p),
    };
    let written = match engine.start(&planned, console.now()).await {
        Ok(n) => n,
        Err(p) => return problems(p.0),
    };
    let file = engine.project.rollouts_dir().join(format!("{id}.toml"));
    let file_hash = std::fs::read_to_string(&file)
        .ok()
        .map(|t| crate::auth::sha256_hex(&t));
    if let Err(r) = audit::record(
        &console,
        &signed,
        "rollout.start",
        &planned.definition.id,
        None,
        file_hash,
    )
    .await
    {
        return r;
    }
    tracing::info!(user = signed.user.id, rollout = %planned.definition.id, members = written, "console rollout started");
    html::see_other(&format!("/console/rollouts/{}", planned.definition.id))
}

pub(crate) async fn change_state<S: AllStores + Accounts>(
    State(console): State<Arc<Console<S>>>,
    Path((id, action)): Path<(String, String)>,
    headers: HeaderMap,
    Form(form): Form<crate::account::CsrfForm>,
) -> Response {
    let signed = match session::for_post(&console, &headers, &form.csrf, Role::edits).await {
        Ok(s) => s,
        Err(r) => return r,
    };
    let viewer = signed.viewer();
    let state = match action.as_str() {
        "pause" => RolloutState::Paused,
        "resume" => RolloutState::Active,
        "cancel" => RolloutState::Cancelled,
        _ => return html::not_found(Some(&viewer), "There is no such action."),
    };
    let before = match console.store.rollout(&id).await {
        Ok(Some(r)) => r.state,
        Ok(None) => return html::not_found(Some(&viewer), "There is no rollout with that id."),
        Err(e) => return html::failed(Some(&viewer), "cannot read a rollout", &e),
    };
    if before == RolloutState::Cancelled {
        return html::message(
            StatusCode::CONFLICT,
            "This rollout was cancelled",
            Some(&viewer),
            "A cancelled rollout cannot be paused or resumed.",
        );
    }
    if let Err(e) = console
        .store
        .set_rollout_state(&id, state, cascade_model::time::millis(console.now()))
        .await
    {
        return html::failed(Some(&viewer), "cannot change a rollout's state", &e);
    }
    if let Err(r) = audit::record(
        &console,
        &signed,
        &format!("rollout.{action}"),
        &id,
        Some(crate::auth::sha256_hex(before.as_str())),
        Some(crate::auth::sha256_hex(state.as_str())),
    )
    .await
    {
        return r;
    }
    tracing::info!(user = signed.user.id, rollout = %id, state = state.as_str(), "console rollout state changed");
    html::see_other(&format!("/console/rollouts/{id}"))
}

/// A TOML basic string.
fn toml_string(text: &str) -> String {
    let mut out = String::from("\"");
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if c.is_control() => {
                let _ = write!(out, "\\u{:04X}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// What the new-rollout form offers: items that may be rolled out, the
/// agencies, and the configured channels.
struct Choices {
    items: Vec<(String, String)>,
    agencies: Vec<(String, String)>,
    channels: Vec<String>,
}

async fn choices<S: AllStores>(
    console: &Console<S>,
    project: &Project,
) -> Result<Choices, cascade_store::StoreError> {
    let (items, _) = cascade_model::content::load_dir(&project.content_dir(), &project.taxonomy);
    Ok(Choices {
        items: items
            .into_iter()
            .filter(|l| l.item.status != cascade_model::content::Status::Draft)
            .map(|l| (l.item.id, l.item.title))
            .collect(),
        agencies: console
            .store
            .agencies()
            .await?
            .into_iter()
            .map(|a| (a.id, a.name))
            .collect(),
        channels: project
            .config
            .channels
            .iter()
            .map(|c| c.name.clone())
            .collect(),
    })
}

fn form_body(
    csrf: &str,
    choices: &Choices,
    values: &[(String, String)],
    errors: &[(String, String)],
) -> String {
    let value = |key: &str| {
        values
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
            .unwrap_or("")
    };
    let checked = |key: &str, v: &str| {
        if values.iter().any(|(k, x)| k == key && x == v) {
            " checked"
        } else {
            ""
        }
    };
    let error_for = |field: &str| html::field_error(errors, field);
    let mut body = html::error_summary(errors);
    body.push_str("<h1>Plan a rollout</h1>\n<p>This writes a rollout file to the project's <code>rollouts</code> folder. Next you see its plan, exactly as <code>cascade rollout plan</code> shows it, and can start it from there.</p>\n");
    let _ = write!(
        body,
        "<form method=\"post\" action=\"/console/rollouts/new\" novalidate>\n{}\n\
         <div class=\"field\"><label for=\"id\">Rollout id</label><p class=\"hint\" id=\"id-hint\">Lower-case letters, digits and hyphens, for example neglect-briefing-2027-03. It names the file.</p>{}<input class=\"input\" id=\"id\" name=\"id\" type=\"text\" spellcheck=\"false\" aria-describedby=\"id-hint\" value=\"{}\"></div>\n\
         <div class=\"field\"><label for=\"item\">Learning item</label>{}<select class=\"input\" id=\"item\" name=\"item\">",
        html::csrf_field(csrf),
        error_for("id"),
        esc(value("id")),
        error_for("item"),
    );
    for (id, title) in &choices.items {
        let _ = write!(
            body,
            "<option value=\"{}\"{}>{}</option>",
            esc(id),
            if value("item") == id { " selected" } else { "" },
            esc(title)
        );
    }
    body.push_str("</select></div>\n<fieldset class=\"field\" aria-describedby=\"agencies-hint\"><legend>Who it goes to</legend><p class=\"hint\" id=\"agencies-hint\">Choose agencies, or none for everyone in the directory.</p>\n");
    for (n, (id, name)) in choices.agencies.iter().enumerate() {
        let _ = writeln!(
            body,
            "<div class=\"checkbox\"><input id=\"agency-{n}\" name=\"agencies\" type=\"checkbox\" value=\"{}\"{}><label for=\"agency-{n}\">{}</label></div>",
            esc(id),
            checked("agencies", id),
            esc(name)
        );
    }
    let _ = write!(
        body,
        "</fieldset>\n<fieldset class=\"field\" id=\"channels\"><legend>Channels, in the order to try them</legend>{}\n",
        error_for("channels")
    );
    for (n, name) in choices.channels.iter().enumerate() {
        let _ = writeln!(
            body,
            "<div class=\"checkbox\"><input id=\"channel-{n}\" name=\"channels\" type=\"checkbox\" value=\"{}\"{}><label for=\"channel-{n}\">{}</label></div>",
            esc(name),
            checked("channels", name),
            esc(name)
        );
    }
    let _ = write!(
        body,
        "</fieldset>\n\
         <div class=\"field\"><label for=\"start\">First send</label><p class=\"hint\" id=\"start-hint\">Date and time in the partnership's time zone, for example 2027-03-01T09:00.</p>{}<input class=\"input\" id=\"start\" name=\"start\" type=\"datetime-local\" aria-describedby=\"start-hint\" value=\"{}\"></div>\n\
         <div class=\"field\"><label for=\"deadline\">Days to acknowledge</label>{}<input class=\"input\" id=\"deadline\" name=\"deadline\" type=\"text\" inputmode=\"numeric\" value=\"{}\"></div>\n\
         <div class=\"field\"><label for=\"reminders\">Reminders, days after sending</label><p class=\"hint\" id=\"reminders-hint\">For example 7, 14. Leave empty for none.</p>{}<input class=\"input\" id=\"reminders\" name=\"reminders\" type=\"text\" aria-describedby=\"reminders-hint\" value=\"{}\"></div>\n\
         <div class=\"field checkbox\"><input id=\"urgent\" name=\"urgent\" type=\"checkbox\" value=\"yes\"{}><label for=\"urgent\">Urgent: send in quiet hours too</label></div>\n\
         <button class=\"button\" type=\"submit\">Write the rollout file and check its plan</button>\n</form>",
        error_for("start"),
        esc(value("start")),
        error_for("deadline"),
        esc(if value("deadline").is_empty() {
            "28"
        } else {
            value("deadline")
        }),
        error_for("reminders"),
        esc(value("reminders")),
        checked("urgent", "yes"),
    );
    body
}

pub(crate) async fn new_page<S: AllStores + Accounts>(
    State(console): State<Arc<Console<S>>>,
    headers: HeaderMap,
) -> Response {
    let signed = match session::page_for(&console, &headers, Role::edits).await {
        Ok(s) => s,
        Err(r) => return r,
    };
    let viewer = signed.viewer();
    let project = match Project::open(&console.root) {
        Ok(p) => p,
        Err(e) => return html::failed(Some(&viewer), "cannot open the project", &e),
    };
    let choices = match choices(&console, &project).await {
        Ok(c) => c,
        Err(e) => return html::failed(Some(&viewer), "cannot read the directory", &e),
    };
    page(
        StatusCode::OK,
        "Plan a rollout",
        Some(&viewer),
        &form_body(&signed.csrf, &choices, &[], &[]),
    )
}

/// The rollout file the form's answers make, or what is wrong with them
/// (by field).
fn rollout_toml(values: &[(String, String)]) -> Result<(String, String), Vec<(String, String)>> {
    let one = |key: &str| {
        values
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.trim().to_owned())
            .unwrap_or_default()
    };
    let all = |key: &str| -> Vec<String> {
        values
            .iter()
            .filter(|(k, _)| k == key)
            .map(|(_, v)| v.clone())
            .collect()
    };
    let mut errors = Vec::new();
    let id = one("id");
    if !safe_id(&id) {
        errors.push((
            "id".to_owned(),
            "Enter a rollout id of lower-case letters, digits and hyphens".to_owned(),
        ));
    }
    let channels = all("channels");
    if channels.is_empty() {
        errors.push((
            "channels".to_owned(),
            "Choose at least one channel".to_owned(),
        ));
    }
    let start = one("start");
    let start = chrono::NaiveDateTime::parse_from_str(&start, "%Y-%m-%dT%H:%M")
        .or_else(|_| chrono::NaiveDateTime::parse_from_str(&start, "%Y-%m-%dT%H:%M:%S"));
    if start.is_err() {
        errors.push((
            "start".to_owned(),
            "Enter the first send as a date and time, for example 2027-03-01T09:00".to_owned(),
        ));
    }
    let deadline = one("deadline").parse::<u32>();
    if deadline.is_err() {
        errors.push((
            "deadline".to_owned(),
            "Enter the days to acknowledge as a whole number, for example 28".to_owned(),
        ));
    }
    let reminders: Result<Vec<u32>, _> = one("reminders")
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::parse::<u32>)
        .collect();
    if reminders.is_err() {
        errors.push((
            "reminders".to_owned(),
            "Enter reminders as whole numbers of days separated by commas, for example 7, 14"
                .to_owned(),
        ));
    }
    if !errors.is_empty() {
        return Err(errors);
    }
    let list = |items: &[String]| {
        items
            .iter()
            .map(|s| toml_string(s))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let mut text = format!(
        "# Written by the cascade console.\nid = {}\nitem = {}\nstart = {}\nurgent = {}\nchannels = [{}]\nack_deadline_days = {}\nreminder_days = [{}]\n\n[audience]\n",
        toml_string(&id),
        toml_string(&one("item")),
        start.expect("checked above").format("%Y-%m-%dT%H:%M:%S"),
        one("urgent") == "yes",
        list(&channels),
        deadline.expect("checked above"),
        reminders
            .expect("checked above")
            .iter()
            .map(u32::to_string)
            .collect::<Vec<_>>()
            .join(", "),
    );
    let agencies = all("agencies");
    if !agencies.is_empty() {
        let _ = writeln!(text, "agencies = [{}]", list(&agencies));
    }
    text.push_str("\n[[waves]]\nname = \"Everyone\"\nafter_days = 0\n");
    Ok((id, text))
}

pub(crate) async fn create<S: AllStores + Accounts>(
    State(console): State<Arc<Console<S>>>,
    headers: HeaderMap,
    Form(values): Form<Vec<(String, String)>>,
) -> Response {
    let csrf = values
        .iter()
        .find(|(k, _)| k == "csrf")
        .map(|(_, v)| v.clone())
        .unwrap_or_default();
    let signed = match session::for_post(&console, &headers, &csrf, Role::edits).await {
        Ok(s) => s,
        Err(r) => return r,
    };
    let viewer = signed.viewer();
    let project = match Project::open(&console.root) {
        Ok(p) => p,
        Err(e) => return html::failed(Some(&viewer), "cannot open the project", &e),
    };
    let choices = match choices(&console, &project).await {
        Ok(c) => c,
        Err(e) => return html::failed(Some(&viewer), "cannot read the directory", &e),
    };
    let again = |errors: Vec<(String, String)>| {
        page(
            StatusCode::UNPROCESSABLE_ENTITY,
            "Plan a rollout",
            Some(&viewer),
            &form_body(&signed.csrf, &choices, &values, &errors),
        )
    };
    let (id, text) = match rollout_toml(&values) {
        Ok(t) => t,
        Err(errors) => return again(errors),
    };
    let path = project.rollouts_dir().join(format!("{id}.toml"));
    let exists = match console.store.rollout(&id).await {
        Ok(r) => r.is_some(),
        Err(e) => return html::failed(Some(&viewer), "cannot read a rollout", &e),
    };
    if path.exists() || exists {
        return again(vec![(
            "id".to_owned(),
            format!("A rollout \"{id}\" already exists; choose another id"),
        )]);
    }
    if let Err(errors) = cascade_model::rollout::parse_definition(&path, &text) {
        return again(
            errors
                .iter()
                .map(|e| ("id".to_owned(), e.to_string()))
                .collect(),
        );
    }
    if let Err(e) = std::fs::create_dir_all(project.rollouts_dir())
        .and_then(|()| crate::content::write_whole(&path, &text))
    {
        return html::failed(Some(&viewer), "cannot write a rollout file", &e);
    }
    if let Err(r) = audit::record(
        &console,
        &signed,
        "rollout.write",
        &format!("rollouts/{id}.toml"),
        None,
        Some(crate::auth::sha256_hex(&text)),
    )
    .await
    {
        return r;
    }
    tracing::info!(user = signed.user.id, rollout = %id, "console rollout file written");
    html::see_other(&format!("/console/rollouts/{id}"))
}
