//! Recurring bulletins in the console: the list of bulletins with their
//! next occurrence (on the rollouts page), one bulletin's occurrences with
//! links to their issues' rollouts, and a bulletin file's plan, as
//! `cascade rollout plan` prints it. Bulletins are started with `cascade
//! rollout start`; `cascade serve` makes their issues.

use crate::Console;
use crate::html::{self, esc, multiline, page};
use crate::session::Signed;
use axum::http::StatusCode;
use axum::response::Response;
use cascade_engine::bulletins::{BulletinStatus, statuses};
use cascade_engine::engine::Engine;
use cascade_engine::project::Project;
use cascade_model::rollout::Calendar;
use cascade_store::{Accounts, AllStores};
use std::fmt::Write as _;

fn calendar(project: &Project) -> Option<Calendar> {
    Calendar::new(
        &project.config.partnership.time_zone,
        project.config.partnership.quiet_hours,
    )
    .ok()
}

/// Every bulletin started, with its next occurrence; empty when none.
pub(crate) async fn list<S: AllStores + Accounts>(
    console: &Console<S>,
    project: &Project,
) -> Result<(Vec<String>, String), String> {
    let Some(calendar) = calendar(project) else {
        return Ok((Vec::new(), String::new()));
    };
    let bulletins = statuses(&*console.store, &calendar, console.now())
        .await
        .map_err(|p| p.to_string())?;
    if bulletins.is_empty() {
        return Ok((Vec::new(), String::new()));
    }
    let mut body = String::from(
        "<h2>Recurring bulletins</h2>\n<div class=\"table-wrap\"><table>\n<caption class=\"visually-hidden\">Recurring bulletins started</caption>\n\
         <thead><tr><th scope=\"col\">Bulletin</th><th scope=\"col\">Schedule</th><th scope=\"col\">Next and so far</th></tr></thead>\n<tbody>\n",
    );
    for b in &bulletins {
        let _ = writeln!(
            body,
            "<tr><td><a href=\"/console/rollouts/{}\">{}</a></td><td>{}</td><td>{}</td></tr>",
            esc(&b.id),
            esc(&b.title),
            esc(&b.schedule),
            esc(&b.line(&calendar))
        );
    }
    body.push_str("</tbody></table></div>\n");
    Ok((bulletins.into_iter().map(|b| b.id).collect(), body))
}

/// One started bulletin's page: its schedule, next occurrence and every
/// occurrence made; `None` when `id` is no bulletin.
pub(crate) async fn started<S: AllStores + Accounts>(
    console: &Console<S>,
    signed: &Signed,
    id: &str,
) -> Option<Response> {
    let viewer = signed.viewer();
    let project = match Project::open(&console.root) {
        Ok(p) => p,
        Err(e) => return Some(html::failed(Some(&viewer), "cannot open the project", &e)),
    };
    let calendar = calendar(&project)?;
    let all = match statuses(&*console.store, &calendar, console.now()).await {
        Ok(all) => all,
        Err(p) => {
            return Some(html::failed(Some(&viewer), "cannot read the bulletins", &p));
        }
    };
    let b: &BulletinStatus = all.iter().find(|b| b.id == id)?;
    let mut body = format!(
        "<span class=\"caption\">Recurring bulletin</span>\n<h1>{}</h1>\n<dl class=\"summary\"><dt>Id</dt><dd><code>{}</code></dd><dt>Schedule</dt><dd>{}</dd><dt>State</dt><dd>{}</dd><dt>Next</dt><dd>{}</dd></dl>\n",
        esc(&b.title),
        esc(&b.id),
        esc(&b.schedule),
        b.state.as_str(),
        esc(&b.line(&calendar))
    );
    body.push_str("<h2>Occurrences</h2>\n");
    if b.occurrences.is_empty() {
        body.push_str("<p>No occurrence has fallen due yet.</p>\n");
    } else {
        body.push_str("<ul class=\"list\">\n");
        for o in &b.occurrences {
            let at = calendar.format_local(cascade_model::time::from_millis(o.occurrence_at));
            match &o.rollout_id {
                Some(rollout) => {
                    let _ = writeln!(
                        body,
                        "<li>{}: <a href=\"/console/rollouts/{}\">{}</a>, {} item{}</li>",
                        esc(&at),
                        esc(rollout),
                        esc(rollout),
                        o.items,
                        if o.items == 1 { "" } else { "s" }
                    );
                }
                None => {
                    let _ = writeln!(
                        body,
                        "<li>{}: skipped, nothing new was published</li>",
                        esc(&at)
                    );
                }
            }
        }
        body.push_str("</ul>\n");
    }
    body.push_str("<p class=\"hint\">Pause, resume or cancel it with <code>cascade rollout pause</code>, <code>resume</code> or <code>cancel</code> and its id; each issue is a rollout of its own.</p>\n");
    Some(page(StatusCode::OK, &b.title, Some(&viewer), &body))
}

/// The plan of `rollouts/<id>.toml` when it is a bulletin not started;
/// `None` when it is no bulletin.
pub(crate) async fn file<S: AllStores + Accounts>(
    console: &Console<S>,
    signed: &Signed,
    engine: &Engine<S>,
    id: &str,
) -> Option<Response> {
    let viewer = signed.viewer();
    let path = engine.project.rollouts_dir().join(format!("{id}.toml"));
    let planned = match engine.planner().plan_bulletin(&path, console.now()).await {
        Ok(None) => return None,
        Ok(Some(planned)) => Ok(planned),
        Err(problems) => Err(problems.0),
    };
    let mut body = format!("<span class=\"caption\">rollouts/{}.toml</span>\n", esc(id));
    match planned {
        Ok(planned) => {
            let _ = write!(
                body,
                "<h1>Check the bulletin's plan</h1>\n<p>This is what <code>cascade rollout plan rollouts/{}.toml</code> shows. Nothing has been sent.</p>\n<pre class=\"plan\" tabindex=\"0\">{}</pre>\n<p>Start it with <code>cascade rollout start rollouts/{}.toml</code>; <code>cascade serve</code> then makes each issue when it falls due.</p>\n",
                esc(id),
                esc(&planned.to_string()),
                esc(id)
            );
        }
        Err(problems) => {
            let _ = write!(
                body,
                "<h1>This bulletin cannot start</h1>\n<div class=\"warning\"><p>{} problem{}, as <code>cascade rollout plan</code> reports them:</p><ul>{}</ul></div>",
                problems.len(),
                if problems.len() == 1 { "" } else { "s" },
                problems
                    .iter()
                    .map(|p| format!("<li>{}</li>", multiline(p)))
                    .collect::<String>()
            );
        }
    }
    Some(page(
        StatusCode::OK,
        &format!("Plan of {id}"),
        Some(&viewer),
        &body,
    ))
}
