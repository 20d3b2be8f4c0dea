//! The home page: rollouts in progress with their counts, the team
//! briefings champions have not recorded for rollouts past their deadline,
//! and items waiting for approval; for a champion, their own teams only.

use crate::Console;
use crate::html::{self, bar, count, esc, page};
use crate::session;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use cascade_engine::project::Project;
use cascade_model::content::{LoadedItem, Status, load_dir};
use cascade_model::rollout::{Calendar, RolloutDefinition, rollout_deadline};
use cascade_store::{Accounts, AllStores, RolloutState, RolloutTotals, StoreError, StoredRollout};
use std::collections::HashMap;
use std::fmt::Write as _;
use std::sync::Arc;

/// Every rollout's totals by id, from one query.
pub(crate) async fn totals<S: AllStores>(
    store: &S,
) -> Result<HashMap<String, RolloutTotals>, StoreError> {
    Ok(store
        .rollout_totals()
        .await?
        .into_iter()
        .map(|t| (t.rollout_id.clone(), t))
        .collect())
}

fn n(count: i64) -> u64 {
    count.max(0) as u64
}

pub(crate) async fn home<S: AllStores + Accounts>(
    State(console): State<Arc<Console<S>>>,
    headers: HeaderMap,
) -> Response {
    let signed = match session::for_page(&console, &headers).await {
        Ok(s) => s,
        Err(r) => return r,
    };
    let viewer = signed.viewer();
    if !signed.role.reads_everything() {
        return crate::champion::home(&console, &signed)
            .await
            .unwrap_or_else(|page| page);
    }
    let rollouts = match console.store.rollouts().await {
        Ok(r) => r,
        Err(e) => return html::failed(Some(&viewer), "cannot read rollouts", &e),
    };
    let project = match Project::open(&console.root) {
        Ok(p) => p,
        Err(e) => return html::failed(Some(&viewer), "cannot open the project", &e),
    };
    let (items, _) = load_dir(&project.content_dir(), &project.taxonomy);
    // People read titles; an item no longer in the content folder shows its id.
    let titles: HashMap<&str, &str> = items
        .iter()
        .map(|l| (l.item.id.as_str(), l.item.title.as_str()))
        .collect();
    let mut body = String::from("<h1>Home</h1>\n<h2>Rollouts in progress</h2>\n");
    let live: Vec<_> = rollouts
        .iter()
        .filter(|r| r.state != RolloutState::Cancelled)
        .collect();
    if live.is_empty() {
        body.push_str("<p>No rollout is in progress.</p>\n");
    } else {
        body.push_str(
            "<div class=\"table-wrap\"><table>\n<caption class=\"visually-hidden\">Rollouts in progress</caption>\n\
             <thead><tr><th scope=\"col\">Rollout</th><th scope=\"col\">State</th><th scope=\"col\">Sent</th><th scope=\"col\">Acknowledged</th><th scope=\"col\">Dead letters</th></tr></thead>\n<tbody>\n",
        );
        let totals = match totals(&*console.store).await {
            Ok(t) => t,
            Err(e) => return html::failed(Some(&viewer), "cannot count rollouts", &e),
        };
        for r in &live {
            let t = totals.get(&r.id).cloned().unwrap_or_default();
            let (members, sent, acknowledged) = (n(t.members), n(t.sent), n(t.acknowledged));
            let _ = writeln!(
                body,
                "<tr><td><a href=\"/console/rollouts/{}\">{}</a><br><span class=\"hint\">{}</span></td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                esc(&r.id),
                esc(&r.id),
                esc(titles
                    .get(r.item_id.as_str())
                    .copied()
                    .unwrap_or(&r.item_id)),
                r.state.as_str(),
                bar(&format!("{} sent", r.id), sent, members),
                bar(&format!("{} acknowledged", r.id), acknowledged, members),
                count(n(t.dead)),
            );
        }
        body.push_str("</tbody></table></div>\n");
    }
    match briefings_due(&console, &project, &items, &live, &titles).await {
        Ok(section) => body.push_str(&section),
        Err(e) => return html::failed(Some(&viewer), "cannot read champions' briefings", &e),
    }
    body.push_str("<h2>Waiting for approval</h2>\n");
    let drafts: Vec<_> = items
        .iter()
        .filter(|l| l.item.status == Status::Draft)
        .collect();
    if drafts.is_empty() {
        body.push_str("<p>No item is waiting for approval.</p>\n");
    } else {
        body.push_str("<ul class=\"list\">\n");
        for l in drafts {
            let _ = writeln!(
                body,
                "<li><a href=\"/console/content/{}\">{}</a> ({})</li>",
                esc(&l.item.id),
                esc(&l.item.title),
                esc(l.item.kind_name())
            );
        }
        body.push_str("</ul>\n");
    }
    let _ = write!(body, "<p><a href=\"/console/account\">Your account</a></p>");
    page(StatusCode::OK, "Home", Some(&viewer), &body)
}

/// Team names listed for one rollout before "and N more".
const TEAMS_LISTED: usize = 8;

/// The teams awaiting a briefing, by rollout, with what they were read at:
/// the rollout's and the directory's report stamps (raised by every write
/// to a row the query reads: members, confirmations, people, champions and
/// their teams) and the item and themes asked about.
#[derive(Default)]
pub(crate) struct KeptBriefings(std::sync::Mutex<HashMap<String, Kept>>);

struct Kept {
    stamps: (i64, i64),
    item_id: String,
    themes: Vec<String>,
    teams: Vec<(String, String)>,
}

impl KeptBriefings {
    /// The teams `rollout` waits for, kept or read afresh.
    async fn teams<S: AllStores>(
        &self,
        store: &S,
        rollout: &StoredRollout,
        themes: &[String],
        stamps: (i64, i64),
    ) -> Result<Vec<(String, String)>, StoreError> {
        {
            let kept = self.0.lock().unwrap_or_else(|p| p.into_inner());
            if let Some(k) = kept.get(&rollout.id)
                && k.stamps == stamps
                && k.item_id == rollout.item_id
                && k.themes == themes
            {
                return Ok(k.teams.clone());
            }
        }
        let teams = store
            .teams_awaiting_briefing(&rollout.id, &rollout.item_id, themes)
            .await?;
        self.0.lock().unwrap_or_else(|p| p.into_inner()).insert(
            rollout.id.clone(),
            Kept {
                stamps,
                item_id: rollout.item_id.clone(),
                themes: themes.to_vec(),
                teams: teams.clone(),
            },
        );
        Ok(teams)
    }
}

/// "Team briefings due": for each rollout past its deadline, the teams a
/// champion of its item's themes covers that have people in it and no
/// cascade confirmation (what the champion reminders are about).
async fn briefings_due<S: AllStores + Accounts>(
    console: &Console<S>,
    project: &Project,
    items: &[LoadedItem],
    live: &[&StoredRollout],
    titles: &HashMap<&str, &str>,
) -> Result<String, StoreError> {
    let mut body = String::from("<h2>Team briefings due</h2>\n");
    let calendar = Calendar::new(
        &project.config.partnership.time_zone,
        project.config.partnership.quiet_hours,
    )
    .ok();
    let now = console.now();
    let mut rows = String::new();
    // Read before the rows: a write after this raises a stamp, so teams
    // read from newer rows are only ever kept under older stamps.
    let ids: Vec<String> = live.iter().map(|r| r.id.clone()).collect();
    let stamps: HashMap<String, i64> = console
        .store
        .report_stamps(&ids)
        .await?
        .into_iter()
        .collect();
    let directory = stamps.get("").copied().unwrap_or_default();
    for r in live.iter().filter(|r| r.state == RolloutState::Active) {
        let Some(item) = items.iter().find(|l| l.item.id == r.item_id) else {
            continue;
        };
        let (Some(calendar), Ok(def)) = (
            calendar.as_ref(),
            serde_json::from_str::<RolloutDefinition>(&r.definition),
        ) else {
            continue;
        };
        let deadline = rollout_deadline(&def, calendar);
        if deadline > now {
            continue;
        }
        let stamp = stamps.get(&r.id).copied().unwrap_or_default();
        let teams = console
            .briefings
            .teams(&*console.store, r, &item.item.themes, (stamp, directory))
            .await?;
        if teams.is_empty() {
            continue;
        }
        let mut names: Vec<String> = teams
            .iter()
            .take(TEAMS_LISTED)
            .map(|(_, name)| esc(name))
            .collect();
        if teams.len() > TEAMS_LISTED {
            names.push(format!("and {} more", teams.len() - TEAMS_LISTED));
        }
        let _ = writeln!(
            rows,
            "<tr><td><a href=\"/console/rollouts/{}\">{}</a><br><span class=\"hint\">{}</span></td><td>{}</td><td>{}</td><td>{}</td></tr>",
            esc(&r.id),
            esc(&r.id),
            esc(titles
                .get(r.item_id.as_str())
                .copied()
                .unwrap_or(&r.item_id)),
            deadline
                .with_timezone(&calendar.time_zone())
                .format("%-d %B %Y"),
            count(teams.len() as u64),
            names.join(", "),
        );
    }
    if rows.is_empty() {
        body.push_str("<p>No rollout past its deadline is waiting for a champion to record a team briefing.</p>\n");
    } else {
        body.push_str(
            "<p>These rollouts are past their deadline, and a team with a champion for the item's themes has no team briefing recorded yet. Champions are reminded if the rollout sets <code>champion_reminder_days</code>.</p>\n\
             <div class=\"table-wrap\"><table>\n<caption class=\"visually-hidden\">Team briefings due</caption>\n\
             <thead><tr><th scope=\"col\">Rollout</th><th scope=\"col\">Deadline</th><th scope=\"col\">Teams waiting</th><th scope=\"col\">Which teams</th></tr></thead>\n<tbody>\n",
        );
        body.push_str(&rows);
        body.push_str("</tbody></table></div>\n");
    }
    Ok(body)
}
