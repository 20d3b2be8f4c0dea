//! A rollout's audience as a query the store answers where the directory
//! lives: counted for the plan, written as members when the rollout starts,
//! without reading the directory's people into memory. The rules are
//! those of [`crate::rollout::resolve`], which is the reference: a
//! property test holds the two to the same answers.

use super::StoreError;
use crate::rollout::Selector;
use std::collections::BTreeSet;
use std::future::Future;

/// Who a rollout reaches and in which wave.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AudienceQuery {
    pub source: AudienceSource,
    /// In order: each person goes in the first wave that takes them.
    pub waves: Vec<WaveQuery>,
    /// The item, to leave out people a rollout of it (not cancelled)
    /// already has. Not applied to a re-acknowledgement round.
    pub item_id: String,
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

/// Audience queries, on top of [`super::Store`].
pub trait Audiences: Send + Sync {
    /// Counts the audience per wave and per first identity kind a person
    /// has among `kinds` (a kind named twice counts only at its first place).
    fn count_audience(
        &self,
        query: &AudienceQuery,
        kinds: &[String],
    ) -> impl Future<Output = Result<AudienceCounts, StoreError>> + Send;

    /// The audience's members per team, teams without members left out.
    fn audience_by_team(
        &self,
        query: &AudienceQuery,
    ) -> impl Future<Output = Result<Vec<TeamTally>, StoreError>> + Send;

    /// Which of `ids` are active people, together with the active people
    /// whose ids sort next to each missing one (for a "did you mean").
    fn people_near(
        &self,
        ids: &[String],
    ) -> impl Future<Output = Result<BTreeSet<String>, StoreError>> + Send;

    /// Which of `named` an active person holds; every role an active
    /// person holds as well when one is missing (for a "did you mean").
    fn roles_near(
        &self,
        named: &[String],
    ) -> impl Future<Output = Result<BTreeSet<String>, StoreError>> + Send;

    /// Whether the store holds anyone at all.
    fn has_people(&self) -> impl Future<Output = Result<bool, StoreError>> + Send;
}
