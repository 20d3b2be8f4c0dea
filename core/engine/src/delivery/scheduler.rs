//! The scheduler: members whose next step is due become outbox rows (one per
//! recipient, on their first reachable channel), and move on to their next
//! step, in one transaction per batch. A step already queued is never queued
//! twice: its idempotency key is unique.
//!
//! Refreshers (issue 19) run beside the wave timetables: an acknowledged
//! member's next refresher is due some calendar days after their own
//! acknowledgement ([`cascade_model::rollout::refresher_due`]), so the
//! store hands over members to look at and the time is worked out here.
//!
//! A joiner of an open rollout runs on their wave's timetable moved
//! `shift_days` whole local days later (see
//! [`cascade_model::rollout::joiner_shift`]), worked out once per wave and
//! shift in a batch.

use super::{DeliveryError, Rollouts, World, millis};
use cascade_model::rollout::{
    EscalationTarget, Step, StepKind, escalation_target, refresher_due, shifted_wave_steps,
};
use cascade_model::time::from_millis;
use cascade_store::{MemberAdvance, NewDelivery, Outbox, RefresherAdvance, Reports, Store};
use chrono::{DateTime, Utc};
use std::collections::HashMap;
use std::sync::Arc;

const BATCH: u32 = 2000;

/// Queues every step and refresher due at `now`. Returns the number of
/// rows queued.
pub async fn schedule_due<S: Store + Outbox + Reports>(
    store: &S,
    rollouts: &Rollouts,
    world: &World,
    now: DateTime<Utc>,
) -> Result<usize, DeliveryError> {
    let steps = schedule_steps(store, rollouts, world, now).await?;
    Ok(steps + schedule_refreshers(store, rollouts, world, now).await?)
}

/// Queues each acknowledged member's refresher due by `now`, on their
/// first reachable channel, and moves them on to the next. Where several
/// fell due while nothing ran (a stop, or a member back from being out),
/// only the latest goes: one nudge, not a burst. Nobody is chased about
/// a refresher: it is a step of its own kind, which no reminder or
/// escalation follows.
async fn schedule_refreshers<S: Store + Outbox + Reports>(
    store: &S,
    rollouts: &Rollouts,
    world: &World,
    now: DateTime<Utc>,
) -> Result<usize, DeliveryError> {
    let mut queued = 0;
    loop {
        let due = store.due_refreshers(millis(now), BATCH).await?;
        if due.is_empty() {
            return Ok(queued);
        }
        let mut deliveries = Vec::new();
        let mut advances = Vec::with_capacity(due.len());
        for member in &due {
            let rollout = rollouts.get(store, &member.rollout_id).await?;
            let definition = &rollout.definition;
            let acknowledged = from_millis(member.acknowledged_at);
            let mut next = member.refresher_next;
            let mut send = None;
            let next_due = loop {
                match refresher_due(definition, rollouts.calendar(), acknowledged, next) {
                    Some(due) if due <= now => {
                        send = Some(next);
                        next += 1;
                    }
                    other => break other,
                }
            };
            advances.push(RefresherAdvance {
                rollout_id: member.rollout_id.clone(),
                person_id: member.person_id.clone(),
                refresher_next: next,
                refresher_due_at: next_due.map(millis),
            });
            let Some(number) = send else {
                continue;
            };
            let person = &member.person_id;
            let Some(&(rank, channel)) = world.reachable(person, &definition.channels).first()
            else {
                tracing::warn!(rollout = %member.rollout_id, person = %person, "no reachable channel; the refresher is skipped");
                continue;
            };
            deliveries.push(NewDelivery {
                idempotency_key: format!(
                    "{}/{person}/{}-{number}/{person}/{rank}",
                    member.rollout_id,
                    StepKind::Refresher.as_str(),
                ),
                rollout_id: member.rollout_id.clone(),
                person_id: person.clone(),
                recipient_id: person.clone(),
                wave: member.wave,
                step_kind: StepKind::Refresher,
                step_number: number,
                channel: channel.to_owned(),
                channel_rank: rank,
                due_at: millis(now),
            });
        }
        queued += deliveries.len();
        store
            .materialise_refreshers(&deliveries, &advances, millis(now))
            .await?;
    }
}

/// Queues every wave step due at `now`. Returns the number of rows queued.
async fn schedule_steps<S: Store + Outbox + Reports>(
    store: &S,
    rollouts: &Rollouts,
    world: &World,
    now: DateTime<Utc>,
) -> Result<usize, DeliveryError> {
    let mut queued = 0;
    loop {
        let due = store.due_members(millis(now), BATCH).await?;
        if due.is_empty() {
            return Ok(queued);
        }
        let mut deliveries = Vec::new();
        let mut advances = Vec::with_capacity(due.len());
        let mut shifted: HashMap<(String, u32, u32), Arc<Vec<Step>>> = HashMap::new();
        for member in &due {
            let rollout = rollouts.get(store, &member.rollout_id).await?;
            let joiner_steps;
            let steps = if member.shift_days == 0 {
                &rollout.steps[member.wave as usize]
            } else {
                joiner_steps = shifted
                    .entry((member.rollout_id.clone(), member.wave, member.shift_days))
                    .or_insert_with(|| {
                        Arc::new(shifted_wave_steps(
                            &rollout.definition,
                            rollouts.calendar(),
                            member.wave as usize,
                            member.shift_days,
                        ))
                    })
                    .clone();
                joiner_steps.as_slice()
            };
            let index = member.next_step as usize;
            advances.push(MemberAdvance {
                rollout_id: member.rollout_id.clone(),
                person_id: member.person_id.clone(),
                next_step: member.next_step + 1,
                next_due_at: steps.get(index + 1).map(|s| millis(s.due_at)),
            });
            let Some(step) = steps.get(index) else {
                continue;
            };
            let chases = matches!(step.kind, StepKind::Reminder | StepKind::Escalation);
            if member.acknowledged && chases {
                continue;
            }
            let recipients: Vec<(String, String)> = match step.kind {
                StepKind::Escalation => {
                    match escalation_target(
                        step.number,
                        &member.person_id,
                        &rollout.item.themes,
                        &world.directory,
                    ) {
                        Some(EscalationTarget::Person(id)) => vec![(id, member.person_id.clone())],
                        // One digest a day per rollout and business-unit member.
                        Some(EscalationTarget::BusinessUnitDigest) => world
                            .business_unit()
                            .into_iter()
                            .map(|bu| (bu.to_owned(), format!("digest-{}", now.format("%Y-%m-%d"))))
                            .collect(),
                        None => Vec::new(),
                    }
                }
                StepKind::ChampionReminder => {
                    let open = super::champion_reminders::unconfirmed_teams(
                        store,
                        world,
                        &member.rollout_id,
                        &rollout.item.themes,
                        &member.person_id,
                    )
                    .await?;
                    if open.is_empty() {
                        Vec::new()
                    } else {
                        vec![(member.person_id.clone(), member.person_id.clone())]
                    }
                }
                _ => vec![(member.person_id.clone(), member.person_id.clone())],
            };
            for (recipient, about) in recipients {
                let Some(&(rank, channel)) = world
                    .reachable(&recipient, &rollout.definition.channels)
                    .first()
                else {
                    tracing::warn!(rollout = %member.rollout_id, person = %recipient, "no reachable channel; the step is skipped");
                    continue;
                };
                deliveries.push(NewDelivery {
                    idempotency_key: format!(
                        "{}/{}/{}-{}/{}/{}",
                        member.rollout_id,
                        about,
                        step.kind.as_str(),
                        step.number,
                        recipient,
                        rank
                    ),
                    rollout_id: member.rollout_id.clone(),
                    person_id: member.person_id.clone(),
                    recipient_id: recipient,
                    wave: member.wave,
                    step_kind: step.kind,
                    step_number: step.number,
                    channel: channel.to_owned(),
                    channel_rank: rank,
                    due_at: millis(now),
                });
            }
        }
        queued += deliveries.len();
        store
            .materialise(&deliveries, &advances, millis(now))
            .await?;
    }
}
