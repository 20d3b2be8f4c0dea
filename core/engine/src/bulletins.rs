//! Recurring bulletins (issue 23): a rollout file with `[bulletin]` is
//! planned and started as a bulletin; at each occurrence of its schedule
//! the runner gathers the items published since it last gathered (those
//! with one of its themes, or articles of its newsletter, that no earlier
//! issue of it held), builds them into one issue (an item of its own) and
//! starts a rollout of that issue like any other, in one transaction with
//! the occurrence's row; with nothing new the occurrence is recorded as
//! skipped. The store keys an occurrence by bulletin and instant and an
//! item by bulletin, so a restart or a second tick never makes an
//! occurrence twice and no item goes in two issues.

use crate::delivery::{ChannelRoute, millis};
use crate::plan::Planned;
use crate::planner::Planner;
use crate::problems::Problems;
use crate::project::Project;
use cascade_model::content::{self, ItemKind, LearningItem, LoadedItem, Status, bulletin_issue};
use cascade_model::rollout::{Bulletin, Calendar, RolloutDefinition, parse_definition, to_toml};
use cascade_model::time::from_millis;
use cascade_plugin_host::PluginHost;
use cascade_store::{
    AllStores, BulletinOccurrence, NewIssue, NewOccurrence, NewRollout, RolloutState,
};
use chrono::{DateTime, NaiveDate, NaiveDateTime, Utc};
use std::collections::{BTreeSet, HashMap};
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

/// How long the runner waits before it tries again an occurrence that
/// could not be made (a problem in a gathered item, say), so a problem is
/// logged a few times an hour rather than every second.
const RETRY_AFTER_MS: i64 = 10 * 60 * 1000;

/// Whether an item counts as published on `today`: published, internal,
/// or past its embargo. Drafts and items only approved are not gathered.
pub fn is_published(status: Status, today: NaiveDate) -> bool {
    match status {
        Status::Published | Status::Internal => true,
        Status::Embargoed(until) => today >= until,
        Status::Draft | Status::Approved => false,
    }
}

/// Whether the bulletin gathers `item`: one of its themes, or an article
/// of its newsletter.
pub fn gathers(bulletin: &Bulletin, item: &LearningItem) -> bool {
    item.themes.iter().any(|t| bulletin.themes.contains(t))
        || match (&item.kind, &bulletin.newsletter) {
            (ItemKind::NewsletterItem(n), Some(wanted)) => &n.newsletter == wanted,
            _ => false,
        }
}

/// The items an occurrence on `today` gathers: published, gathered by the
/// bulletin, and not `taken` (held by an earlier issue, or already
/// published when the bulletin started), in id order.
pub fn gather<'a>(
    bulletin: &Bulletin,
    items: &'a [LoadedItem],
    taken: &BTreeSet<String>,
    today: NaiveDate,
) -> Vec<&'a LoadedItem> {
    let mut gathered: Vec<&LoadedItem> = items
        .iter()
        .filter(|l| {
            is_published(l.item.status, today)
                && gathers(bulletin, &l.item)
                && !taken.contains(&l.item.id)
        })
        .collect();
    gathered.sort_by(|a, b| a.item.id.cmp(&b.item.id));
    gathered
}

/// The rollout of one issue: the bulletin's audience, waves, channels and
/// chasing, starting at the occurrence's local time.
pub fn issue_definition(
    bulletin: &RolloutDefinition,
    issue_id: &str,
    at: NaiveDateTime,
) -> RolloutDefinition {
    RolloutDefinition {
        id: issue_id.to_owned(),
        item: issue_id.to_owned(),
        bulletin: None,
        start: at,
        ..bulletin.clone()
    }
}

/// A bulletin checked against the project, ready to start.
pub struct PlannedBulletin {
    pub definition: RolloutDefinition,
    pub bulletin: Bulletin,
    /// The next few occurrences.
    pub next: Vec<DateTime<Utc>>,
    /// Items it gathers that are published already, as (id, version): they
    /// are not new, so it never sends them.
    pub published: Vec<(String, String)>,
    /// The next issue as it would be if it fell now: the timetable, the
    /// audience, and the items it would gather so far.
    pub issue: Planned,
    /// Set when the bulletin is running already.
    pub started: bool,
    time_zone: String,
    calendar: Calendar,
}

impl fmt::Display for PlannedBulletin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let b = &self.bulletin;
        writeln!(
            f,
            "Bulletin \"{}\" ({}): {} ({} time).",
            self.definition.id,
            b.title,
            b.describe(),
            self.time_zone
        )?;
        let mut what = Vec::new();
        if !b.themes.is_empty() {
            what.push(format!("items with the themes {}", b.themes.join(", ")));
        }
        if let Some(n) = &b.newsletter {
            what.push(format!("articles of {n}"));
        }
        writeln!(
            f,
            "Each occurrence gathers the {} published since the last one into one issue, acknowledged as one; an occurrence with nothing new is skipped.",
            what.join(" and ")
        )?;
        if !self.started {
            writeln!(
                f,
                "{} already published {} left out: {} not new.",
                self.published.len(),
                if self.published.len() == 1 {
                    "item is"
                } else {
                    "items are"
                },
                if self.published.len() == 1 {
                    "it is"
                } else {
                    "they are"
                },
            )?;
        }
        writeln!(f, "Next occurrences:")?;
        for at in &self.next {
            writeln!(f, "  {}", self.calendar.format_local(*at))?;
        }
        let gathered = &self.issue.summary.articles;
        if gathered.is_empty() {
            writeln!(f, "Nothing new is published yet for the next issue.")?;
        } else {
            writeln!(f, "The next issue so far ({}):", gathered.len())?;
            for title in gathered {
                writeln!(f, "  {title}")?;
            }
        }
        writeln!(f, "\nEach issue, as the next would go now:")?;
        write!(f, "{}", self.issue.summary)
    }
}

/// Where an issue's messages say it comes from: the bulletin's file.
fn bulletin_path(project: &Project, id: &str) -> PathBuf {
    project.root.join("rollouts").join(format!("{id}.toml"))
}

impl<S: AllStores> Planner<'_, S> {
    /// Plans the bulletin in the rollout file at `path`: checks it, lists
    /// its next occurrences and plans its next issue as it would be now.
    /// `Ok(None)` when the file is not a bulletin. Writes nothing.
    pub async fn plan_bulletin(
        &self,
        path: &Path,
        now: DateTime<Utc>,
    ) -> Result<Option<PlannedBulletin>, Problems> {
        let text = std::fs::read_to_string(path).map_err(|e| {
            Problems::one(format!("{}: cannot read the rollout: {e}", path.display()))
        })?;
        let definition = match parse_definition(path, &text) {
            Ok(definition) => definition,
            // A rollout file's own problems are for `plan` to report.
            Err(_)
                if !text
                    .lines()
                    .any(|l| l.trim_start().starts_with("[bulletin]")) =>
            {
                return Ok(None);
            }
            Err(e) => return Err(Problems(e.iter().map(ToString::to_string).collect())),
        };
        let Some(bulletin) = definition.bulletin.clone() else {
            return Ok(None);
        };
        let (items, content_errors) =
            content::load_dir(&self.project.content_dir(), &self.project.taxonomy);
        let started = self.store.bulletin(&definition.id).await?.is_some();
        let today = now.with_timezone(&self.calendar.time_zone()).date_naive();
        let taken: BTreeSet<String> = if started {
            self.store
                .bulletin_items(&definition.id)
                .await?
                .into_iter()
                .collect()
        } else {
            BTreeSet::new()
        };
        let matching = gather(&bulletin, &items, &taken, today);
        // Before it starts, everything published is old news; once it
        // runs, what it has not gathered yet is the next issue.
        let (published, pending): (Vec<(String, String)>, Vec<&LoadedItem>) = if started {
            (Vec::new(), matching)
        } else {
            (
                matching
                    .iter()
                    .map(|l| (l.item.id.clone(), l.item.version.0.clone()))
                    .collect(),
                Vec::new(),
            )
        };
        // The occurrences still to come: every one after now (the first is
        // never before `start`, by the schedule's rule).
        let first = bulletin
            .last_due(definition.start, self.calendar, now)
            .map_or(0, |k| k + 1);
        let next: Vec<DateTime<Utc>> = (first..first + 3)
            .filter_map(|k| bulletin.occurrence_at(definition.start, k, self.calendar))
            .collect();
        let Some(&at) = next.first() else {
            return Err(Problems::one(format!(
                "{}: the bulletin has no occurrence left before the end of the calendar\n  help: give it a `start` this century",
                path.display()
            )));
        };
        let local = at.with_timezone(&self.calendar.time_zone()).naive_local();
        // With nothing new yet, the issue is planned with the bulletin's
        // themes, or a gathered article's, for its champions' wave.
        let themes = if bulletin.themes.is_empty() {
            gather(&bulletin, &items, &BTreeSet::new(), today)
                .first()
                .map(|l| l.item.themes.clone())
                .unwrap_or_default()
        } else {
            bulletin.themes.clone()
        };
        let issue = bulletin_issue(
            &definition.id,
            &bulletin.title,
            local.date(),
            &pending,
            &themes,
            &self.project.taxonomy,
            path,
        )
        .map_err(|e| Problems::one(format!("{}: cannot build the issue: {e}", path.display())))?;
        let child = issue_definition(&definition, &issue.item.id, local);
        let child_text = to_toml(&child);
        let mut all = items.clone();
        all.push(issue);
        let mut issue = self
            .plan_definition(path, &child_text, child, all, content_errors, now)
            .await?;
        issue.summary.articles = pending.iter().map(|l| l.item.title.clone()).collect();
        Ok(Some(PlannedBulletin {
            time_zone: self.project.config.partnership.time_zone.clone(),
            calendar: self.calendar.clone(),
            definition,
            bulletin,
            next,
            published,
            issue,
            started,
        }))
    }

    /// Starts a planned bulletin: its first occurrence is made by `cascade
    /// serve` when it falls due.
    pub async fn start_bulletin(
        &self,
        planned: &PlannedBulletin,
        now: DateTime<Utc>,
    ) -> Result<(), Problems> {
        let id = &planned.definition.id;
        let definition =
            serde_json::to_string(&planned.definition).expect("definitions are plain data");
        if planned.started
            || !self
                .store
                .start_bulletin(id, &definition, &planned.published, millis(now))
                .await?
        {
            return Err(Problems::one(format!(
                "a bulletin or rollout \"{id}\" already exists\n  help: give the new bulletin its own id, or see it with `cascade status`"
            )));
        }
        Ok(())
    }
}

/// Makes the occurrences of running bulletins as they fall due; kept by
/// the runner.
pub struct Issuer {
    calendar: Calendar,
    routes: Vec<ChannelRoute>,
    /// Per bulletin, the occurrence that could not be made and when to try
    /// it again.
    failed: Mutex<HashMap<String, (i64, i64)>>,
}

/// What making one occurrence did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Made {
    /// An issue's rollout, with how many items it gathered.
    Issue { rollout: String, items: usize },
    /// Nothing new was published.
    Skipped,
    /// Another runner (or an earlier tick) made it first.
    AlreadyMade,
}

impl Issuer {
    pub fn new(calendar: Calendar, routes: Vec<ChannelRoute>) -> Issuer {
        Issuer {
            calendar,
            routes,
            failed: Mutex::default(),
        }
    }

    /// Makes each running bulletin's latest occurrence due at `now` that is
    /// not made yet (an occurrence missed while nothing was serving is not
    /// made on its own: the next one gathers its items). Reads the project
    /// at `root` afresh, so an issue holds the content as it is now.
    /// Returns what was made, by bulletin.
    pub async fn make_due<S: AllStores>(
        &self,
        root: &Path,
        store: &S,
        host: &PluginHost,
        now: DateTime<Utc>,
    ) -> Result<Vec<(String, Made)>, Problems> {
        let mut made = Vec::new();
        let mut project = None;
        for stored in store.bulletins().await? {
            if stored.state != RolloutState::Active {
                continue;
            }
            // One bulletin an older or newer cascade stored differently
            // holds up no other, nor the rest of the tick.
            let definition: RolloutDefinition = match serde_json::from_str(&stored.definition) {
                Ok(definition) => definition,
                Err(e) => {
                    tracing::error!(bulletin = %stored.id, "the bulletin is stored in a form this cascade cannot read, so it makes no issue: {e}");
                    continue;
                }
            };
            let Some(bulletin) = &definition.bulletin else {
                continue;
            };
            let Some(k) = bulletin.last_due(definition.start, &self.calendar, now) else {
                continue;
            };
            let Some(at) = bulletin.occurrence_at(definition.start, k, &self.calendar) else {
                continue;
            };
            let at_ms = millis(at);
            // Occurrences before it was started, or made already.
            if at_ms < stored.started_at || stored.last_occurrence_at.is_some_and(|l| l >= at_ms) {
                continue;
            }
            if let Some(&(failed_at, retry)) = self.failed_lock().get(&stored.id)
                && failed_at == at_ms
                && millis(now) < retry
            {
                continue;
            }
            if project.is_none() {
                match Project::open(root) {
                    Ok(opened) => project = Some(opened),
                    Err(e) => {
                        tracing::error!(
                            "cannot read the project for the bulletins' issues; tried again at the next tick: {e}"
                        );
                        return Ok(made);
                    }
                }
            }
            let project = project.as_ref().expect("opened above");
            match self
                .make(project, store, host, &definition, bulletin, at, now)
                .await
            {
                Ok(outcome) => {
                    self.failed_lock().remove(&stored.id);
                    match &outcome {
                        Made::Issue { rollout, items } => tracing::info!(
                            bulletin = %stored.id,
                            rollout = %rollout,
                            items,
                            "made the bulletin's issue"
                        ),
                        Made::Skipped => tracing::info!(
                            bulletin = %stored.id,
                            "nothing new was published: the bulletin's occurrence is skipped"
                        ),
                        Made::AlreadyMade => {}
                    }
                    made.push((stored.id.clone(), outcome));
                }
                Err(problems) => {
                    // The problems may quote the items' text: the log names
                    // the bulletin and how to see them.
                    tracing::error!(
                        bulletin = %stored.id,
                        problems = problems.0.len(),
                        "the bulletin's issue cannot be made; `cascade rollout plan` on its file shows why, and it is tried again in {} minutes",
                        RETRY_AFTER_MS / 60_000
                    );
                    self.failed_lock()
                        .insert(stored.id.clone(), (at_ms, millis(now) + RETRY_AFTER_MS));
                }
            }
        }
        Ok(made)
    }

    fn failed_lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, (i64, i64)>> {
        self.failed.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Makes one occurrence: gathers, and records a skip or plans and
    /// records the issue's rollout.
    #[allow(clippy::too_many_arguments)]
    async fn make<S: AllStores>(
        &self,
        project: &Project,
        store: &S,
        host: &PluginHost,
        definition: &RolloutDefinition,
        bulletin: &Bulletin,
        at: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Result<Made, Problems> {
        let local = at.with_timezone(&self.calendar.time_zone()).naive_local();
        let (items, content_errors) = content::load_dir(&project.content_dir(), &project.taxonomy);
        let taken: BTreeSet<String> = store
            .bulletin_items(&definition.id)
            .await?
            .into_iter()
            .collect();
        let gathered = gather(bulletin, &items, &taken, local.date());
        let versions: Vec<(String, String)> = gathered
            .iter()
            .map(|l| (l.item.id.clone(), l.item.version.0.clone()))
            .collect();
        let mut occurrence = NewOccurrence {
            bulletin_id: &definition.id,
            occurrence_at: millis(at),
            items: &versions,
            issue: None,
            now: millis(now),
        };
        if gathered.is_empty() {
            return Ok(if store.record_occurrence(occurrence).await? {
                Made::Skipped
            } else {
                Made::AlreadyMade
            });
        }
        let path = bulletin_path(project, &definition.id);
        let issue = bulletin_issue(
            &definition.id,
            &bulletin.title,
            local.date(),
            &gathered,
            &bulletin.themes,
            &project.taxonomy,
            &path,
        )
        .map_err(Problems::one)?;
        let child = issue_definition(definition, &issue.item.id, local);
        let text = to_toml(&child);
        let mut all = items.clone();
        all.push(issue);
        let planner = Planner {
            project,
            store,
            host,
            routes: &self.routes,
            calendar: &self.calendar,
        };
        let planned = planner
            .plan_definition(&path, &text, child, all, content_errors, now)
            .await?;
        let rollout = planned.definition.id.clone();
        let json = serde_json::to_string(&planned.definition).expect("definitions are plain data");
        let team_posts: Vec<cascade_store::NewTeamPost> = planned
            .team_posts
            .iter()
            .map(|p| cascade_store::NewTeamPost {
                team_id: p.team_id.clone(),
                channel: p.channel.clone(),
                address: p.address.clone(),
                due_at: p.due_at,
            })
            .collect();
        occurrence.issue = Some(NewIssue {
            item: &planned.item.item,
            source: &planned.item.text,
            rollout: NewRollout {
                id: &rollout,
                item_id: &planned.item.item.id,
                item_version: &planned.item.item.version.0,
                definition: &json,
                members: &[],
                audience: Some(&planned.audience),
                team_posts: &team_posts,
                now: millis(now),
            },
        });
        Ok(if store.record_occurrence(occurrence).await? {
            Made::Issue {
                rollout,
                items: versions.len(),
            }
        } else {
            Made::AlreadyMade
        })
    }
}

/// A bulletin as `cascade status` shows it.
pub struct BulletinStatus {
    pub id: String,
    pub title: String,
    /// "every month on the first Tuesday at 09:00".
    pub schedule: String,
    pub state: RolloutState,
    /// The next occurrence, if it is running.
    pub next: Option<DateTime<Utc>>,
    pub occurrences: Vec<BulletinOccurrence>,
}

impl BulletinStatus {
    /// "Next: Tue 5 Jan 2027 09:00 GMT; 3 issues, 1 skipped (nothing new)".
    pub fn line(&self, calendar: &Calendar) -> String {
        let issues = self
            .occurrences
            .iter()
            .filter(|o| o.rollout_id.is_some())
            .count();
        let skipped = self.occurrences.len() - issues;
        let next = match (self.state, self.next) {
            (RolloutState::Active, Some(at)) => format!("next {}", calendar.format_local(at)),
            (RolloutState::Active, None) => "no occurrence left".to_owned(),
            (state, _) => state.as_str().to_owned(),
        };
        format!(
            "{next}; {issues} issue{} made, {skipped} skipped (nothing new)",
            if issues == 1 { "" } else { "s" }
        )
    }
}

/// Every bulletin with its next occurrence after `now`.
pub async fn statuses<S: AllStores>(
    store: &S,
    calendar: &Calendar,
    now: DateTime<Utc>,
) -> Result<Vec<BulletinStatus>, Problems> {
    let mut out = Vec::new();
    for stored in store.bulletins().await? {
        let definition: RolloutDefinition =
            serde_json::from_str(&stored.definition).map_err(|e| {
                Problems::one(format!(
                    "bulletin \"{}\" is stored unreadably: {e}",
                    stored.id
                ))
            })?;
        let Some(bulletin) = &definition.bulletin else {
            continue;
        };
        let after = now.max(from_millis(stored.started_at));
        out.push(BulletinStatus {
            next: bulletin.next_after(definition.start, calendar, after),
            schedule: bulletin.describe(),
            title: bulletin.title.clone(),
            state: stored.state,
            occurrences: store.occurrences(&stored.id).await?,
            id: stored.id,
        });
    }
    Ok(out)
}
