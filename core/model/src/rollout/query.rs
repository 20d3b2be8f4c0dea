//! A rollout's audience as a query: what planning asks the store (counted
//! for the plan, written as members when the rollout starts) and the counts
//! it gets back. The store answers it where the directory lives; the rules
//! are those of [`super::resolve`], which a property test holds the store to.

use super::definition::Selector;
use super::timing::TimingRule;

/// Who a rollout reaches and in which wave.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AudienceQuery {
    pub source: AudienceSource,
    /// In order: each person goes in the first wave that takes them.
    pub waves: Vec<WaveQuery>,
    /// The item, to leave out people a rollout of it (not cancelled)
    /// already has. Not applied to a re-acknowledgement round.
    pub item_id: String,
    /// Returns from absence (`absent_until`, `YYYY-MM-DD`) on or before
    /// this day, the rollout's start, move nobody: such people are timed
    /// as if never absent.
    pub absences_after: String,
    /// The partnership's time zone: a person's `time_zone` equal to it
    /// moves nothing, so the store treats it as empty.
    pub home_zone: String,
    /// First sends of people whose zone, working pattern or absence moves
    /// them (see [`super::plan_timing`]); everyone else, and anyone no
    /// rule matches, has their wave's `first_due_at`.
    pub timing: Vec<TimingRule>,
}

// One per rollout planned: the variants' sizes do not matter.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AudienceSource {
    /// Active people whom `include` selects (everyone when it is empty)
    /// and `exclude` does not.
    Directory {
        include: Selector,
        exclude: Selector,
    },
    /// Active people who acknowledged a version of the item other than
    /// this one and have not acknowledged this one.
    Reacknowledge { version: String },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WaveQuery {
    /// Takes everyone not in an earlier wave; `takes` is then ignored.
    pub everyone: bool,
    /// Whom the wave takes: any one selector suffices.
    pub takes: Selector,
    /// When the wave's members are first sent the item (Unix ms).
    pub first_due_at: i64,
}

/// The audience counted for a plan.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AudienceCounts {
    /// One per wave of the query, in order.
    pub waves: Vec<WaveTally>,
    /// People in the audience whom no wave takes.
    pub unassigned: usize,
    /// People a wave takes but another rollout of the item already has.
    pub already_reached: usize,
}

impl AudienceCounts {
    /// Members: people in a wave and not already reached.
    pub fn members(&self) -> usize {
        self.waves.iter().map(|w| w.people).sum()
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WaveTally {
    pub people: usize,
    /// Per identity kind asked for, in order: people whose first kind,
    /// among those asked for, it is.
    pub by_kind: Vec<usize>,
    /// People with none of the kinds asked for.
    pub unreachable: usize,
}

/// A team's members in an audience, for its team post.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TeamTally {
    pub team_id: String,
    pub members: usize,
    /// The first send to any of them (Unix ms).
    pub first_due_at: i64,
}
