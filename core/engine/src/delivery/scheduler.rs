//! The scheduler: members whose next step is due become outbox rows (one per
//! recipient, on their first reachable channel), and move on to their next
//! step, in one transaction per batch. A step already queued is never queued
//! twice: its idempotency key is unique.
//!
//! A joiner of an open rollout runs on their wave's timetable moved
//! `shift_days` whole local days later (see
//! [`cascade_model::rollout::joiner_shift`]), worked out once per wave and
//! shift in a batch.

use super::{DeliveryError, Rollouts, World, millis};
use cascade_model::rollout::{
    EscalationTarget, Step, StepKind, escalation_target, shifted_wave_steps,
};
use cascade_store::{MemberAdvance, NewDelivery, Outbox, Reports, Store};
use chrono::{DateTime, Utc};
use std::collections::HashMap;
use std::sync::Arc;

const BATCH: u32 = 2000;

/// Queues every step due at `now`. Returns the number of rows queued.
pub async fn schedule_due<S: Store + Outbox + Reports>(
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
