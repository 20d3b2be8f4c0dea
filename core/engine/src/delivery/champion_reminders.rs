//! Reminders to champions after a rollout's deadline (its
//! `champion_reminder_days`): a champion of the item's themes in the
//! rollout is reminded while a team they cover for those themes, with
//! people in the rollout, has no cascade confirmation of the item. Kept
//! apart from the scheduler's other steps: the scheduler asks here whom a
//! champion reminder goes to, and composing asks here what it says.

use super::{DeliveryError, World};
use crate::ack::AckConfig;
use cascade_store::Reports;

/// The teams (id, name, by name) `champion` covers for any of `themes`:
/// empty when they champion none of them or are no longer active.
pub fn teams_for_themes(world: &World, champion: &str, themes: &[String]) -> Vec<(String, String)> {
    if world.person(champion).is_none() {
        return Vec::new();
    }
    let ids: Vec<&String> = world
        .directory
        .champions
        .iter()
        .filter(|c| c.person_id == champion && themes.contains(&c.theme))
        .flat_map(|c| &c.team_ids)
        .collect();
    world
        .champion_teams(champion)
        .iter()
        .filter(|(id, _)| ids.contains(&id))
        .cloned()
        .collect()
}

/// Those of the champion's teams for the item's themes that have people
/// in the rollout and no cascade confirmation of its item by anyone.
pub async fn unconfirmed_teams<S: Reports>(
    store: &S,
    world: &World,
    rollout_id: &str,
    themes: &[String],
    champion: &str,
) -> Result<Vec<(String, String)>, DeliveryError> {
    let teams = teams_for_themes(world, champion, themes);
    if teams.is_empty() {
        return Ok(Vec::new());
    }
    let ids: Vec<String> = teams.iter().map(|(id, _)| id.clone()).collect();
    let open: Vec<String> = store
        .team_coverage(&ids)
        .await?
        .into_iter()
        .filter(|c| c.rollout_id == rollout_id && c.members > 0 && c.confirmations == 0)
        .map(|c| c.team_id)
        .collect();
    Ok(teams
        .into_iter()
        .filter(|(id, _)| open.contains(id))
        .collect())
}

/// The reminder's text: which teams it is about, and what to do.
pub fn reminder_text(item_title: &str, teams: &[(String, String)]) -> String {
    let names: Vec<&str> = teams.iter().map(|(_, name)| name.as_str()).collect();
    let list = match names.as_slice() {
        [] => "the teams you cover".to_owned(),
        [one] => (*one).to_owned(),
        [rest @ .., last] => format!("{} and {last}", rest.join(", ")),
    };
    format!(
        "The deadline for \"{item_title}\" has passed. You are its champion for {list}, and at least one of these teams has no team briefing recorded yet.\n\n\
         If you have shared it with a team, please record the briefing: when it was, how many people were there and how you shared it. If you have not, please arrange one soon."
    )
}

/// The label and address of a champion's confirmation link.
pub fn confirm_link(config: &AckConfig, token: &str) -> (String, String) {
    (
        "Record a team briefing".to_owned(),
        config.confirm_link(token),
    )
}
