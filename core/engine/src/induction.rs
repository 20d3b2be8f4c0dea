//! The induction back catalogue (issue 23): `[induction]` in cascade.toml
//! names key items in order, a pace and a deadline. Setting it up
//! (`cascade induction start`) starts one open rollout per key item,
//! `induction-<item id>`, with no members: from then on every directory
//! import enrols the people new in it (never movers, never people who
//! acknowledged the item's version already) into each, on a timetable
//! counted from the day they joined in their own working days (see
//! [`cascade_model::rollout::induction_member_definition`]). Delivery,
//! acknowledgement, leavers and reports are those of any rollout.

use crate::config::{InductionConfig, InductionTiming};
use crate::delivery::millis;
use crate::planner::Planner;
use crate::problems::Problems;
use cascade_model::content;
use cascade_model::rollout::{Enrol, InductionStep, RolloutDefinition, Wave};
use cascade_store::{AllStores, NewRollout};
use chrono::{DateTime, NaiveDate, Utc};

/// Key items' rollouts are named after their item with this in front.
pub const ROLLOUT_PREFIX: &str = "induction-";

/// The id of the rollout that sends key item `item`.
pub fn rollout_id(item: &str) -> String {
    format!("{ROLLOUT_PREFIX}{item}")
}

/// Whether a rollout id is a key item's.
pub fn is_key_item_rollout(id: &str) -> bool {
    id.starts_with(ROLLOUT_PREFIX)
}

/// Each key item's rollout, set up on `today`: one wave that takes the
/// induction's audience, open to joiners with no end, its timetable made
/// per joiner from the item's place in the list.
pub fn key_item_definitions(
    config: &InductionConfig,
    timing: InductionTiming,
    today: NaiveDate,
) -> Vec<RolloutDefinition> {
    config
        .items
        .iter()
        .zip(0u32..)
        .map(|(item, position)| RolloutDefinition {
            id: rollout_id(item),
            item: item.clone(),
            digest: None,
            bulletin: None,
            start: today.and_time(timing.time),
            urgent: false,
            reacknowledge: false,
            channels: config.channels.clone(),
            fallback: true,
            ack_deadline_days: timing.deadline_days,
            reminder_days: config.reminder_days.clone(),
            escalation_days: config.escalation_days.clone(),
            champion_reminder_days: Vec::new(),
            max_attempts: 5,
            unsubscribe_url: None,
            audience: config.audience.to_audience(),
            team_posts: Vec::new(),
            waves: vec![Wave {
                name: "Joiners".to_owned(),
                after_days: 0,
                champions_of_item_themes: false,
                agencies: Vec::new(),
                teams: Vec::new(),
                roles: Vec::new(),
                people: Vec::new(),
            }],
            follow_ups: Vec::new(),
            refreshers: Vec::new(),
            enrol: Enrol::Joiners,
            open_until: None,
            induction: Some(InductionStep {
                position,
                pace_days: timing.pace_days,
                deadline_days: timing.deadline_days,
            }),
        })
        .collect()
}

/// What setting up the induction did: the key items' rollouts started
/// now, and those running already.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SetUp {
    pub started: Vec<String>,
    pub running: Vec<String>,
}

/// Starts the rollout of every key item of `[induction]` not started yet,
/// each checked as any rollout is (the item exists and may be sent, the
/// channels exist, the reminders fit the deadline). Nobody is a member
/// yet: people new in later imports join. Refuses a project without
/// `[induction]`.
pub async fn set_up<S: AllStores>(
    planner: &Planner<'_, S>,
    now: DateTime<Utc>,
) -> Result<SetUp, Problems> {
    let config_path = planner.project.root.join(crate::config::CONFIG_FILE);
    let Some(config) = &planner.project.config.induction else {
        return Err(Problems::one(format!(
            "{}: there is no [induction] to set up\n  help: add [induction] with items, pace, deadline and channels (see README, \"Induction\")",
            config_path.display()
        )));
    };
    let timing = config.timing().map_err(|problems| {
        Problems(
            problems
                .into_iter()
                .map(|(key, message, help)| {
                    format!(
                        "{}: [induction] {key}: {message}\n  help: {help}",
                        config_path.display()
                    )
                })
                .collect(),
        )
    })?;
    let today = now
        .with_timezone(&planner.calendar.time_zone())
        .date_naive();
    let mut done = SetUp::default();
    for definition in key_item_definitions(config, timing, today) {
        if planner.store.rollout(&definition.id).await?.is_some() {
            done.running.push(definition.id);
            continue;
        }
        let (items, content_errors) =
            content::load_dir(&planner.project.content_dir(), &planner.project.taxonomy);
        let planned = planner
            .plan_definition(&config_path, "", definition, items, content_errors, now)
            .await?;
        planner
            .store
            .save_item(&planned.item.item, &planned.item.text)
            .await?;
        let json = serde_json::to_string(&planned.definition).expect("definitions are plain data");
        planner
            .store
            .create_rollout(NewRollout {
                id: &planned.definition.id,
                item_id: &planned.item.item.id,
                item_version: &planned.item.item.version.0,
                definition: &json,
                members: &[],
                audience: None,
                team_posts: &[],
                now: millis(now),
            })
            .await?;
        tracing::info!(rollout = %planned.definition.id, "induction key item set up");
        done.started.push(planned.definition.id.clone());
    }
    Ok(done)
}
