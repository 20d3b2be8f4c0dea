//! Rollouts: a learning item sent to an audience in scheduled waves, with
//! reminders, escalation and follow-ups. Everything here is pure: definitions
//! are parsed from text handed in, and time is always a parameter.

mod audience;
mod bulletin;
mod calendar;
mod definition;
mod induction;
mod plan;
mod query;
mod steps;
mod team_posts;
mod timing;
mod validate;

pub use crate::works::{WORKS_HELP, WorkPattern};
pub use audience::{Member, Resolved, audience_query, count_resolved, resolve, tally_teams};
pub use bulletin::{Bulletin, Every, On};
pub use calendar::{Calendar, QuietHours};
pub use definition::{
    Audience, Digest, Enrol, FollowUp, RolloutDefinition, Selector, Wave, parse_definition, to_toml,
};
pub use induction::{
    InductionStep, induction_member_definition, induction_send_day, parse_deadline, parse_pace,
};
pub use plan::{PlanSummary, TimetableRow, WavePlan, summarise};
pub use query::{AudienceCounts, AudienceQuery, AudienceSource, TeamTally, WaveQuery, WaveTally};
pub use steps::{
    EscalationTarget, Step, StepKind, back_at, deadline, escalation_target, joiner_shift,
    member_start, open_from, open_until, person_calendar, refresher_due, rollout_deadline,
    shift_past, shifted_wave_steps, wave_send, wave_steps,
};
pub use team_posts::{
    PlannedTeamPost, TeamPostChannel, check_team_posts, count_line, plan_team_posts,
};
pub use timing::{TimingGroup, TimingMoves, TimingRule, person_start, plan_timing};
pub use validate::{Known, validate};

use crate::content::SourceLocation;

/// A problem with a rollout definition, naming the file, the line and the fix.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{at}: {message}\n  help: {help}")]
pub struct RolloutError {
    pub at: SourceLocation,
    pub message: String,
    pub help: String,
}

/// The candidate closest to a mistyped name, if any is close enough to guess.
fn closest<'a>(name: &str, candidates: impl Iterator<Item = &'a str>) -> Option<&'a str> {
    let lowered = name.to_lowercase();
    candidates
        .map(|c| (strsim::jaro_winkler(&lowered, &c.to_lowercase()), c))
        .filter(|(score, _)| *score >= 0.8)
        .max_by(|a, b| a.0.total_cmp(&b.0).then_with(|| b.1.cmp(a.1)))
        .map(|(_, c)| c)
}

#[cfg(test)]
mod tests;
