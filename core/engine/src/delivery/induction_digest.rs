//! Champions' weekly digest of their joiners' induction (issue 23): once
//! a week, on the induction's digest day, each active champion of a key
//! item's theme whose teams have joiners still in their induction is
//! queued one message, in their own open time, listing those joiners and
//! where each is with every key item (acknowledged, due by, overdue, not
//! sent yet). The list is read from the store when the message is sent,
//! so it is as fresh as the send. Logs carry ids only.

use super::{DeliveryError, Rollouts, World, millis};
use cascade_model::rollout::{RolloutDefinition, StepKind, open_from, person_calendar};
use cascade_model::time::from_millis;
use cascade_store::{NewDelivery, Outbox, Reports, RolloutState, Store};
use chrono::{DateTime, Datelike, NaiveDate, NaiveTime, Utc, Weekday};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::sync::Mutex;

/// A joiner is listed until this many days after their deadline, unless
/// they acknowledged every key item before.
const LISTED_AFTER_DEADLINE_DAYS: u32 = 28;

/// Where one joiner is with one key item.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Progress {
    Acknowledged(NaiveDate),
    /// Sent, not acknowledged, due by this day.
    DueBy(NaiveDate),
    /// Not acknowledged by this day, which has passed.
    Overdue(NaiveDate),
    NotSentYet,
    /// Not in their induction (they had acknowledged it already, or the
    /// item's audience does not take them).
    NotTheirs,
}

/// One joiner in a champion's digest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JoinerProgress {
    pub person_id: String,
    pub name: String,
    pub team: String,
    /// Per key item in order: its title and where they are with it.
    pub items: Vec<(String, Progress)>,
}

/// The digest's text: a paragraph per joiner.
pub fn digest_text(joiners: &[JoinerProgress]) -> String {
    if joiners.is_empty() {
        return "None of the joiners in the teams you cover has anything left in their induction."
            .to_owned();
    }
    let mut text = format!(
        "Induction progress of the {} joiner{} in the teams you cover, as of today.",
        joiners.len(),
        if joiners.len() == 1 { "" } else { "s" }
    );
    let day = |d: &NaiveDate| d.format("%-d %b %Y").to_string();
    for j in joiners {
        text.push_str(&format!("\n\n{} ({}):", j.name, j.team));
        for (title, progress) in &j.items {
            let state = match progress {
                Progress::Acknowledged(d) => format!("acknowledged {}", day(d)),
                Progress::DueBy(d) => format!("due by {}", day(d)),
                Progress::Overdue(d) => format!("OVERDUE (due by {})", day(d)),
                Progress::NotSentYet => "not sent yet".to_owned(),
                Progress::NotTheirs => "not part of their induction".to_owned(),
            };
            text.push_str(&format!("\n- {title}: {state}"));
        }
    }
    text.push_str("\n\nPlease check in with anyone overdue and help them make time to read it.");
    text
}

/// The key items' rollouts that are running, in the induction's order.
async fn key_items<S: Store + Outbox>(
    store: &S,
    rollouts: &Rollouts,
) -> Result<Vec<Arc<super::RolloutRuntime>>, DeliveryError> {
    let mut found = Vec::new();
    for stored in store.rollouts().await? {
        if stored.state == RolloutState::Cancelled {
            continue;
        }
        let runtime = rollouts.get(store, &stored.id).await?;
        if runtime.definition.induction.is_some() {
            found.push(runtime);
        }
    }
    found.sort_by_key(|r| r.definition.induction.map(|i| i.position));
    Ok(found)
}

/// The teams `champion` covers as a champion of a theme of one of `items`.
fn covered_teams(world: &World, champion: &str, themes: &BTreeSet<&str>) -> BTreeSet<String> {
    world
        .directory
        .champions
        .iter()
        .filter(|c| c.person_id == champion && themes.contains(c.theme.as_str()))
        .flat_map(|c| c.team_ids.iter().cloned())
        .collect()
}

/// The joiners in the teams `champion` covers, with their progress, at `now`.
pub async fn progress_for<S: Store + Outbox + Reports>(
    store: &S,
    rollouts: &Rollouts,
    world: &World,
    champion: &str,
    now: DateTime<Utc>,
) -> Result<Vec<JoinerProgress>, DeliveryError> {
    let items = key_items(store, rollouts).await?;
    let themes: BTreeSet<&str> = items
        .iter()
        .flat_map(|r| r.item.themes.iter().map(String::as_str))
        .collect();
    let teams = covered_teams(world, champion, &themes);
    let calendar = rollouts.calendar();
    let zone = calendar.time_zone();
    let today = now.with_timezone(&zone).date_naive();
    // Person to their joining and, per key item, their progress.
    let mut joiners: BTreeMap<String, (NaiveDate, Vec<Progress>)> = BTreeMap::new();
    for (i, runtime) in items.iter().enumerate() {
        let Some(rollout) = store.report_rollout(&runtime.stored.id).await? else {
            continue;
        };
        let deadline_days = runtime.definition.induction.map_or(0, |s| s.deadline_days);
        for m in &rollout.members {
            let (Some(joined), None) = (m.joined_at, &m.out_reason) else {
                continue;
            };
            let in_team = world
                .person(&m.person_id)
                .is_some_and(|p| p.id != champion && teams.contains(&p.team_id));
            if !in_team {
                continue;
            }
            let joined = from_millis(joined).with_timezone(&zone).date_naive();
            let deadline = joined
                .checked_add_days(chrono::Days::new(deadline_days.into()))
                .unwrap_or(joined);
            let ack = rollout
                .acknowledgements
                .iter()
                .find(|a| a.person_id == m.person_id)
                .map(|a| from_millis(a.at).with_timezone(&zone).date_naive());
            let sent = rollout
                .sends
                .iter()
                .any(|s| s.person_id == m.person_id && s.step_kind == StepKind::Initial);
            let progress = match ack {
                Some(day) => Progress::Acknowledged(day),
                None if today > deadline => Progress::Overdue(deadline),
                None if sent => Progress::DueBy(deadline),
                None => Progress::NotSentYet,
            };
            let entry = joiners
                .entry(m.person_id.clone())
                .or_insert_with(|| (joined, vec![Progress::NotTheirs; items.len()]));
            entry.1[i] = progress;
        }
    }
    let deadline_days = items
        .first()
        .and_then(|r| r.definition.induction)
        .map_or(0, |s| s.deadline_days);
    let mut listed: Vec<JoinerProgress> = joiners
        .into_iter()
        .filter(|(_, (joined, progress))| {
            let done = progress
                .iter()
                .all(|p| matches!(p, Progress::Acknowledged(_) | Progress::NotTheirs));
            let until = joined
                .checked_add_days(chrono::Days::new(
                    (deadline_days + LISTED_AFTER_DEADLINE_DAYS).into(),
                ))
                .unwrap_or(*joined);
            !done && today <= until
        })
        .map(|(person_id, (_, progress))| {
            let person = world.person(&person_id);
            let team_id = person.map(|p| p.team_id.as_str()).unwrap_or_default();
            JoinerProgress {
                name: person.map_or_else(|| person_id.clone(), |p| p.display_name.clone()),
                team: world
                    .directory
                    .teams
                    .iter()
                    .find(|t| t.id == team_id)
                    .map_or_else(|| team_id.to_owned(), |t| t.name.clone()),
                person_id,
                items: items
                    .iter()
                    .map(|r| r.item.title.clone())
                    .zip(progress)
                    .collect(),
            }
        })
        .collect();
    listed.sort_by(|a, b| (&a.team, &a.name, &a.person_id).cmp(&(&b.team, &b.name, &b.person_id)));
    Ok(listed)
}

/// When the digests go: the induction's digest day at its time of day
/// in the partnership's zone; each champion's is then held for their own
/// open time. Remembers the last week done, so a tick after it costs nothing.
pub struct DigestSchedule {
    pub day: Weekday,
    pub time: NaiveTime,
    done: Mutex<Option<(i32, u32)>>,
}

impl DigestSchedule {
    pub fn new(day: Weekday, time: NaiveTime) -> DigestSchedule {
        DigestSchedule {
            day,
            time,
            done: Mutex::new(None),
        }
    }
}

/// Queues this week's digest to every champion with joiners in progress
/// in the teams they cover, on the digest day from its time.
/// Returns the rows queued.
pub async fn schedule_digests<S: Store + Outbox + Reports>(
    store: &S,
    rollouts: &Rollouts,
    world: &World,
    schedule: &DigestSchedule,
    now: DateTime<Utc>,
) -> Result<usize, DeliveryError> {
    let calendar = rollouts.calendar();
    let local = now.with_timezone(&calendar.time_zone()).naive_local();
    let week = local.date().iso_week();
    let week = (week.year(), week.week());
    // On the digest day only: a week whose day passed while nothing ran
    // waits for the next, whose list is as fresh.
    if local.weekday() != schedule.day || local.time() < schedule.time {
        return Ok(0);
    }
    if *schedule.done.lock().unwrap_or_else(|p| p.into_inner()) == Some(week) {
        return Ok(0);
    }
    let items = key_items(store, rollouts).await?;
    let mut deliveries = Vec::new();
    let champions: BTreeSet<&str> = world
        .directory
        .champions
        .iter()
        .map(|c| c.person_id.as_str())
        .collect();
    for champion in champions {
        // The first key item of one of the champion's themes carries it.
        let Some(carrier) = items.iter().find(|r| {
            world
                .directory
                .champions
                .iter()
                .any(|c| c.person_id == champion && r.item.themes.contains(&c.theme))
        }) else {
            continue;
        };
        if progress_for(store, rollouts, world, champion, now)
            .await?
            .is_empty()
        {
            continue;
        }
        let definition: &RolloutDefinition = &carrier.definition;
        let Some(&(rank, channel)) = world.reachable(champion, &definition.channels).first() else {
            tracing::warn!(rollout = %carrier.stored.id, person = %champion, "no reachable channel; the induction digest is skipped");
            continue;
        };
        let person = world.person(champion);
        let own = person_calendar(
            definition,
            calendar,
            person.and_then(|p| p.time_zone.as_deref()),
            person.and_then(|p| p.works.as_deref()),
        );
        let due = open_from(&own, person.and_then(|p| p.absent_until), false, now);
        deliveries.push(NewDelivery {
            idempotency_key: format!(
                "{}/{champion}/{}-{}-w{:02}/{champion}/{rank}",
                carrier.stored.id,
                StepKind::InductionDigest.as_str(),
                week.0,
                week.1
            ),
            rollout_id: carrier.stored.id.clone(),
            person_id: champion.to_owned(),
            recipient_id: champion.to_owned(),
            wave: 0,
            step_kind: StepKind::InductionDigest,
            step_number: week.1,
            channel: channel.to_owned(),
            channel_rank: rank,
            due_at: millis(due),
        });
    }
    let queued = deliveries.len();
    if queued > 0 {
        store.materialise(&deliveries, &[], millis(now)).await?;
        tracing::info!(digests = queued, "induction digests queued for champions");
    }
    *schedule.done.lock().unwrap_or_else(|p| p.into_inner()) = Some(week);
    Ok(queued)
}
