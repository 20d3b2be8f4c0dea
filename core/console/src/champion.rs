//! The champion's view: the teams they cover, each rollout's
//! acknowledgement coverage in those teams, the cascade confirmations
//! still due, and the confirmation form. A champion sees only their own
//! teams: which teams those are is the engine's answer
//! (`Responses::champion_teams`), the form is checked with the same
//! `ack::check_cascade` as the emailed `/confirm` link and recorded with
//! the same `Responses::confirm_cascade`.

use crate::Console;
use crate::audit;
use crate::auth::Role;
use crate::html::{self, bar, esc, page};
use crate::session::{self, Signed};
use axum::extract::{Form, Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use cascade_engine::ack::{CASCADE_METHODS, CascadeForm, FieldProblem, check_cascade};
use cascade_engine::project::Project;
use cascade_engine::respond::{Denied, Refused, Via, team_name};
use cascade_model::rollout::Calendar;
use cascade_privacy::PrivacyGuard;
use cascade_store::{Accounts, AllStores, TeamCoverage};
use serde::Deserialize;
use std::fmt::Write as _;
use std::sync::Arc;

/// A champion's person id and the teams they cover (id, name), or the
/// page to show instead.
async fn my_teams<S: AllStores + Accounts>(
    console: &Console<S>,
    signed: &Signed,
) -> Result<(String, Vec<(String, String)>), Response> {
    let viewer = signed.viewer();
    let Some(person) = signed.user.person_id.clone() else {
        return Err(html::message(
            StatusCode::OK,
            "Your teams",
            Some(&viewer),
            "Your account is not linked to anyone in the directory. Ask an administrator to link it.",
        ));
    };
    match console.responses.champion_teams(&person).await {
        Ok(teams) => Ok((person, teams)),
        Err(Denied::Refused(Refused::NotAChampion)) => Err(html::message(
            StatusCode::OK,
            "Your teams",
            Some(&viewer),
            "You are not a champion for any team in the directory.",
        )),
        Err(e) => Err(html::failed(Some(&viewer), "cannot read champions", &e)),
    }
}

async fn coverage<S: AllStores + Accounts>(
    console: &Console<S>,
    signed: &Signed,
    teams: &[(String, String)],
) -> Result<Vec<TeamCoverage>, Response> {
    let ids: Vec<String> = teams.iter().map(|(id, _)| id.clone()).collect();
    console
        .store
        .team_coverage(&ids)
        .await
        .map_err(|e| html::failed(Some(&signed.viewer()), "cannot read coverage", &e))
}

/// The coverage table of `rows`, with a link to record a briefing.
fn coverage_table(rows: &[TeamCoverage], teams: &[(String, String)], caption: &str) -> String {
    let mut body = format!(
        "<div class=\"table-wrap\"><table>\n<caption class=\"visually-hidden\">{}</caption>\n\
         <thead><tr><th scope=\"col\">Rollout and item</th><th scope=\"col\">Team</th><th scope=\"col\">Acknowledged</th><th scope=\"col\">Team briefings recorded</th></tr></thead>\n<tbody>\n",
        esc(caption)
    );
    for row in rows {
        let team = team_name(teams, &row.team_id);
        let _ = writeln!(
            body,
            "<tr><td>{}<br><span class=\"hint\">{}</span></td><td>{}</td><td>{}</td><td>{} <a href=\"/console/champion/{}/confirm\">Record a briefing<span class=\"visually-hidden\"> of {} for {}</span></a></td></tr>",
            esc(&row.rollout_id),
            esc(&row.item_id),
            esc(team),
            bar(
                &format!("{} in {team}", row.rollout_id),
                row.acknowledged.max(0) as u64,
                row.members.max(0) as u64
            ),
            row.confirmations,
            esc(&row.rollout_id),
            esc(&row.item_id),
            esc(team),
        );
    }
    body.push_str("</tbody></table></div>\n");
    body
}

/// A champion's home: their teams, the briefings still to record, and
/// every rollout's coverage in their teams.
pub(crate) async fn home<S: AllStores + Accounts>(
    console: &Console<S>,
    signed: &Signed,
) -> Result<Response, Response> {
    let (_, teams) = my_teams(console, signed).await?;
    let rows = coverage(console, signed, &teams).await?;
    let mut body = String::from("<h1>Your teams</h1>\n<ul class=\"list\">\n");
    for (id, name) in &teams {
        let _ = writeln!(
            body,
            "<li><a href=\"/console/champion/teams/{}\">{}</a></li>",
            esc(id),
            esc(name)
        );
    }
    body.push_str("</ul>\n<h2>Team briefings to record</h2>\n");
    let due: Vec<&TeamCoverage> = rows.iter().filter(|r| r.confirmations == 0).collect();
    if due.is_empty() {
        body.push_str(
            "<p>Every rollout that reached your teams has a team briefing recorded.</p>\n",
        );
    } else {
        body.push_str("<ul class=\"list\" id=\"due\">\n");
        for row in due {
            let team = team_name(&teams, &row.team_id);
            let _ = writeln!(
                body,
                "<li><a href=\"/console/champion/{}/confirm\">{} for {}</a></li>",
                esc(&row.rollout_id),
                esc(&row.item_id),
                esc(team)
            );
        }
        body.push_str("</ul>\n");
    }
    body.push_str("<h2>Acknowledgements in your teams</h2>\n");
    if rows.is_empty() {
        body.push_str("<p>No rollout has reached your teams yet.</p>\n");
    } else {
        body.push_str(&coverage_table(&rows, &teams, "Rollouts in your teams"));
    }
    body.push_str("<p><a href=\"/console/account\">Your account</a></p>");
    Ok(page(
        StatusCode::OK,
        "Your teams",
        Some(&signed.viewer()),
        &body,
    ))
}

/// One of the champion's teams; any other team is not found.
pub(crate) async fn team<S: AllStores + Accounts>(
    State(console): State<Arc<Console<S>>>,
    Path(team_id): Path<String>,
    headers: HeaderMap,
) -> Result<Response, Response> {
    let signed = session::page_for(&console, &headers, Role::champions).await?;
    let (_, teams) = my_teams(&console, &signed).await?;
    let Some((id, name)) = teams.iter().find(|(id, _)| *id == team_id).cloned() else {
        return Err(html::not_found(
            Some(&signed.viewer()),
            "You are not a champion for a team with that id.",
        ));
    };
    let rows = coverage(&console, &signed, &[(id, name.clone())]).await?;
    let mut body = format!(
        "<span class=\"caption\">Your team</span>\n<h1>{}</h1>\n",
        esc(&name)
    );
    if rows.is_empty() {
        body.push_str("<p>No rollout has reached this team yet.</p>\n");
    } else {
        body.push_str(&coverage_table(
            &rows,
            &teams,
            &format!("Rollouts in {name}"),
        ));
    }
    Ok(page(StatusCode::OK, &name, Some(&signed.viewer()), &body))
}

/// The rollout's item and the champion's teams it reached, or not found.
async fn reached<S: AllStores + Accounts>(
    console: &Console<S>,
    signed: &Signed,
    rollout: &str,
) -> Result<(String, String, Vec<(String, String)>), Response> {
    let (person, teams) = my_teams(console, signed).await?;
    let rows = coverage(console, signed, &teams).await?;
    let reached: Vec<&TeamCoverage> = rows.iter().filter(|r| r.rollout_id == rollout).collect();
    let Some(item) = reached.first().map(|r| r.item_id.clone()) else {
        return Err(html::not_found(
            Some(&signed.viewer()),
            "No rollout with that id reached a team you cover.",
        ));
    };
    Ok((person, item, teams))
}

fn form_body(
    rollout: &str,
    item: &str,
    teams: &[(String, String)],
    form: &CascadeForm,
    problems: &[FieldProblem],
    csrf: &str,
    today: &str,
) -> String {
    let errors: Vec<(String, String)> = problems
        .iter()
        .map(|p| (p.field.to_owned(), p.message.clone()))
        .collect();
    let mut body = html::error_summary(&errors);
    let _ = write!(
        body,
        "<span class=\"caption\">{}</span>\n<h1>Record a team briefing</h1>\n<p>Tell us when you shared <strong>{}</strong> with a team you cover.</p>\n\
         <form method=\"post\" action=\"/console/champion/{}/confirm\" novalidate>\n{}\n\
         <div class=\"field\"><label for=\"team\">Team</label>{}<select class=\"input\" id=\"team\" name=\"team\">",
        esc(rollout),
        esc(item),
        esc(rollout),
        html::csrf_field(csrf),
        html::field_error(&errors, "team"),
    );
    if teams.len() > 1 {
        body.push_str("<option value=\"\">Choose a team</option>");
    }
    for (id, name) in teams {
        let _ = write!(
            body,
            "<option value=\"{}\"{}>{}</option>",
            esc(id),
            if *id == form.team { " selected" } else { "" },
            esc(name)
        );
    }
    let _ = write!(
        body,
        "</select></div>\n\
         <div class=\"field\"><label for=\"session_date\">Date of the session</label><p class=\"hint\" id=\"session_date-hint\">For example {today}.</p>{}<input class=\"input\" id=\"session_date\" name=\"session_date\" type=\"date\" max=\"{today}\" aria-describedby=\"session_date-hint\" value=\"{}\"></div>\n\
         <div class=\"field\"><label for=\"present\">Number of people present</label>{}<input class=\"input\" id=\"present\" name=\"present\" type=\"text\" inputmode=\"numeric\" value=\"{}\"></div>\n\
         <div class=\"field\"><label for=\"method\">How you shared it</label>{}<select class=\"input\" id=\"method\" name=\"method\"><option value=\"\">Choose how</option>",
        html::field_error(&errors, "session_date"),
        esc(&form.session_date),
        html::field_error(&errors, "present"),
        esc(&form.present),
        html::field_error(&errors, "method"),
    );
    for (value, label) in CASCADE_METHODS {
        let _ = write!(
            body,
            "<option value=\"{value}\"{}>{label}</option>",
            if form.method == value {
                " selected"
            } else {
                ""
            }
        );
    }
    let _ = write!(
        body,
        "</select></div>\n\
         <div class=\"field\"><label for=\"note\">Note (optional)</label><p class=\"hint\" id=\"note-hint\">For example, what the team will do differently. Do not include anything that could identify a child or family.</p>{}<textarea class=\"textarea\" id=\"note\" name=\"note\" rows=\"4\" maxlength=\"2000\" aria-describedby=\"note-hint\">{}</textarea></div>\n\
         <button class=\"button\" type=\"submit\">Record this briefing</button>\n</form>",
        html::field_error(&errors, "note"),
        esc(&form.note),
    );
    body
}

/// The day where the partnership is.
fn today<S: AllStores + Accounts>(
    console: &Console<S>,
    project: &Project,
) -> Result<chrono::NaiveDate, String> {
    let calendar = Calendar::new(
        &project.config.partnership.time_zone,
        project.config.partnership.quiet_hours,
    )?;
    Ok(console
        .now()
        .with_timezone(&calendar.time_zone())
        .date_naive())
}

pub(crate) async fn confirm_page<S: AllStores + Accounts>(
    State(console): State<Arc<Console<S>>>,
    Path(rollout): Path<String>,
    headers: HeaderMap,
) -> Result<Response, Response> {
    let signed = session::page_for(&console, &headers, Role::champions).await?;
    let (_, item, teams) = reached(&console, &signed, &rollout).await?;
    let project = Project::open(&console.root)
        .map_err(|e| html::failed(Some(&signed.viewer()), "cannot open the project", &e))?;
    let today = today(&console, &project)
        .map_err(|e| html::failed(Some(&signed.viewer()), "cannot read the time zone", &e))?
        .to_string();
    let form = CascadeForm {
        team: if teams.len() == 1 {
            teams[0].0.clone()
        } else {
            String::new()
        },
        session_date: today.clone(),
        ..CascadeForm::default()
    };
    Ok(page(
        StatusCode::OK,
        "Record a team briefing",
        Some(&signed.viewer()),
        &form_body(&rollout, &item, &teams, &form, &[], &signed.csrf, &today),
    ))
}

#[derive(Deserialize)]
pub(crate) struct ConfirmForm {
    #[serde(default)]
    csrf: String,
    #[serde(flatten)]
    form: CascadeForm,
}

pub(crate) async fn confirm<S: AllStores + Accounts>(
    State(console): State<Arc<Console<S>>>,
    Path(rollout): Path<String>,
    headers: HeaderMap,
    Form(posted): Form<ConfirmForm>,
) -> Result<Response, Response> {
    let signed = session::for_post(&console, &headers, &posted.csrf, Role::champions).await?;
    let viewer = signed.viewer();
    let (person, item, teams) = reached(&console, &signed, &rollout).await?;
    let project = Project::open(&console.root)
        .map_err(|e| html::failed(Some(&viewer), "cannot open the project", &e))?;
    let guard = PrivacyGuard::new(&project.config.privacy)
        .map_err(|e| html::failed(Some(&viewer), "cannot build the privacy guard", &e))?;
    let today = today(&console, &project)
        .map_err(|e| html::failed(Some(&viewer), "cannot read the time zone", &e))?;
    let checked = match check_cascade(&posted.form, &teams, today, &guard) {
        Ok(checked) => checked,
        Err(problems) => {
            return Ok(page(
                StatusCode::UNPROCESSABLE_ENTITY,
                "Record a team briefing",
                Some(&viewer),
                &form_body(
                    &rollout,
                    &item,
                    &teams,
                    &posted.form,
                    &problems,
                    &signed.csrf,
                    &today.to_string(),
                ),
            ));
        }
    };
    let now = console.now();
    let via = Via {
        channel: "console",
        at: cascade_model::time::millis(now),
    };
    let recorded = console
        .responses
        .confirm_cascade(&person, &item, &checked, via)
        .await
        .map_err(|e| html::failed(Some(&viewer), "cannot record a confirmation", &e))?;
    audit::record(
        &console,
        &signed,
        "cascade.confirm",
        &format!("{item} for {}", checked.team_id),
        None,
        Some(crate::auth::sha256_hex(&format!(
            "{}|{}|{}|{}|{}",
            checked.team_id,
            checked.session_date,
            checked.present,
            checked.method,
            checked.note.as_deref().unwrap_or_default()
        ))),
    )
    .await?;
    tracing::info!(user = signed.user.id, rollout = %rollout, "console cascade confirmation");
    let what = if recorded.is_first() {
        "Thank you, this briefing is recorded"
    } else {
        "This briefing was already recorded"
    };
    Ok(page(
        StatusCode::OK,
        what,
        Some(&viewer),
        &format!(
            "<div class=\"notice\" role=\"status\"><h1>{}</h1><p>You shared <strong>{}</strong> with <strong>{}</strong>.</p></div>\n<p><a href=\"/console\">Back to your teams</a></p>",
            esc(what),
            esc(&item),
            esc(team_name(&teams, &checked.team_id))
        ),
    ))
}
