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
//!
//! Each member's timetable runs on their own clock: their time zone and
//! working pattern from the directory (see
//! [`cascade_model::rollout::person_calendar`]). A step due for someone
//! absent (the directory's `absent_until` still to come) is not sent:
//! their timetable moves by whole days until the step falls after their
//! return, so their deadline, reminders and any escalation about them move
//! with it. Every message is queued for its recipient's next open time
//! (a manager or champion escalated to, too). Urgent rollouts go at once.

use super::{DeliveryError, Rollouts, World, millis};
use cascade_model::rollout::{
    Calendar, EscalationTarget, RolloutDefinition, Step, StepKind, back_at, escalation_target,
    induction_member_definition, open_from, person_calendar, refresher_due, shift_past,
    shifted_wave_steps,
};
use cascade_model::time::from_millis;
use cascade_store::{MemberAdvance, NewDelivery, Outbox, RefresherAdvance, Reports, Store};
use chrono::{DateTime, Utc};
use std::collections::HashMap;
use std::sync::Arc;

const BATCH: u32 = 2000;

/// A person's clock for a rollout: (urgent, time zone, works).
type ClockKey = (bool, Option<String>, Option<String>);

/// The clocks and timetables a batch has worked out.
#[derive(Default)]
struct Clocks {
    calendars: HashMap<ClockKey, Arc<Calendar>>,
    /// (rollout, wave, shift, clock) to the member's timetable.
    steps: HashMap<(String, u32, u32, ClockKey), Arc<Vec<Step>>>,
}

impl Clocks {
    fn key(def: &RolloutDefinition, world: &World, person_id: &str) -> ClockKey {
        let person = world.person(person_id);
        if def.urgent {
            return (true, None, None);
        }
        (
            false,
            person.and_then(|p| p.time_zone.clone()),
            person.and_then(|p| p.works.clone()),
        )
    }

    fn calendar(
        &mut self,
        key: &ClockKey,
        def: &RolloutDefinition,
        partnership: &Calendar,
    ) -> Arc<Calendar> {
        self.calendars
            .entry(key.clone())
            .or_insert_with(|| {
                Arc::new(person_calendar(
                    def,
                    partnership,
                    key.1.as_deref(),
                    key.2.as_deref(),
                ))
            })
            .clone()
    }

    fn steps(
        &mut self,
        rollout_id: &str,
        def: &RolloutDefinition,
        calendar: &Calendar,
        key: &ClockKey,
        wave: u32,
        shift: u32,
    ) -> Arc<Vec<Step>> {
        self.steps
            .entry((rollout_id.to_owned(), wave, shift, key.clone()))
            .or_insert_with(|| Arc::new(shifted_wave_steps(def, calendar, wave as usize, shift)))
            .clone()
    }

    /// When a message to `recipient` may go, from `now`: their next open
    /// time, after their return if they are away. At once if urgent.
    fn recipient_due(
        &mut self,
        def: &RolloutDefinition,
        partnership: &Calendar,
        world: &World,
        recipient: &str,
        now: DateTime<Utc>,
    ) -> DateTime<Utc> {
        if def.urgent {
            return now;
        }
        let key = Self::key(def, world, recipient);
        let calendar = self.calendar(&key, def, partnership);
        let absent_until = world.person(recipient).and_then(|p| p.absent_until);
        open_from(&calendar, absent_until, false, now)
    }
}

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
        let mut clocks = Clocks::default();
        for member in &due {
            let rollout = rollouts.get(store, &member.rollout_id).await?;
            let definition = &rollout.definition;
            let acknowledged = from_millis(member.acknowledged_at);
            // Calendar days in the person's own zone and working time.
            let key = Clocks::key(definition, world, &member.person_id);
            let calendar = clocks.calendar(&key, definition, rollouts.calendar());
            let mut next = member.refresher_next;
            let mut send = None;
            let next_due = loop {
                match refresher_due(definition, &calendar, acknowledged, next) {
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
                // In the person's own open time, after any absence.
                due_at: millis(clocks.recipient_due(
                    definition,
                    rollouts.calendar(),
                    world,
                    person,
                    now,
                )),
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
        let mut clocks = Clocks::default();
        for member in &due {
            let rollout = rollouts.get(store, &member.rollout_id).await?;
            let partnership = rollouts.calendar();
            let key = Clocks::key(&rollout.definition, world, &member.person_id);
            let calendar = clocks.calendar(&key, &rollout.definition, partnership);
            // A key item of the induction runs for each joiner from the
            // day they joined, in their own working days.
            let own = match (rollout.definition.induction, member.joined_at) {
                (Some(_), Some(joined)) => Some(induction_member_definition(
                    &rollout.definition,
                    &calendar,
                    from_millis(joined),
                )),
                _ => None,
            };
            let def = own.as_ref().unwrap_or(&rollout.definition);
            let steps = if let Some(own) = &own {
                Arc::new(shifted_wave_steps(
                    own,
                    &calendar,
                    member.wave as usize,
                    member.shift_days,
                ))
            } else if key == (false, None, None) && member.shift_days == 0 {
                // The partnership's clock: the rollout's own timetable.
                Arc::new(rollout.steps[member.wave as usize].clone())
            } else {
                clocks.steps(
                    &member.rollout_id,
                    def,
                    &calendar,
                    &key,
                    member.wave,
                    member.shift_days,
                )
            };
            let index = member.next_step as usize;
            if let Some(step) = steps.get(index) {
                // Away: the timetable moves past their return.
                let back = world
                    .person(&member.person_id)
                    .and_then(|p| p.absent_until)
                    .map(|day| back_at(&calendar, day))
                    .filter(|back| *back > now && !def.urgent);
                if let Some(back) = back {
                    let shift = shift_past(
                        def,
                        &calendar,
                        member.wave as usize,
                        index,
                        member.shift_days,
                        back,
                    );
                    let moved = if own.is_some() {
                        Arc::new(shifted_wave_steps(
                            def,
                            &calendar,
                            member.wave as usize,
                            shift,
                        ))
                    } else {
                        clocks.steps(&member.rollout_id, def, &calendar, &key, member.wave, shift)
                    };
                    advances.push(MemberAdvance {
                        rollout_id: member.rollout_id.clone(),
                        person_id: member.person_id.clone(),
                        next_step: member.next_step,
                        next_due_at: moved.get(index).map(|s| millis(s.due_at)),
                        shift_days: Some(shift),
                    });
                    continue;
                }
                // Not yet due on their own clock (timed before the
                // directory gave their zone or pattern): wait for it.
                if step.due_at > now {
                    advances.push(MemberAdvance {
                        rollout_id: member.rollout_id.clone(),
                        person_id: member.person_id.clone(),
                        next_step: member.next_step,
                        next_due_at: Some(millis(step.due_at)),
                        shift_days: None,
                    });
                    continue;
                }
            }
            advances.push(MemberAdvance {
                rollout_id: member.rollout_id.clone(),
                person_id: member.person_id.clone(),
                next_step: member.next_step + 1,
                next_due_at: steps.get(index + 1).map(|s| millis(s.due_at)),
                shift_days: None,
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
                let due_at = millis(clocks.recipient_due(def, partnership, world, &recipient, now));
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
                    due_at,
                });
            }
        }
        queued += deliveries.len();
        store
            .materialise(&deliveries, &advances, millis(now))
            .await?;
    }
}
