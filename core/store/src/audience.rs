//! A rollout's audience as a query the store answers where the directory
//! lives: counted for the plan, written as members when the rollout starts,
//! without reading the directory's people into memory. The rules are
//! those of [`cascade_model::rollout::resolve`], which is the reference: a
//! property test holds the two to the same answers.

use super::StoreError;
use std::collections::BTreeSet;
use std::future::Future;

pub use cascade_model::rollout::{
    AudienceCounts, AudienceQuery, AudienceSource, TeamTally, TimingGroup, TimingRule, WaveQuery,
    WaveTally,
};

/// Audience queries, on top of [`super::Store`].
pub trait Audiences: Send + Sync {
    /// Counts the audience per wave and per first identity kind a person
    /// has among `kinds` (a kind named twice counts only at its first place).
    fn count_audience(
        &self,
        query: &AudienceQuery,
        kinds: &[String],
    ) -> impl Future<Output = Result<AudienceCounts, StoreError>> + Send;

    /// How many of the audience counted under `kinds[index]` (their first
    /// kind among `kinds`, as [`count_audience`](Self::count_audience)
    /// counts them) have an address there at one of `domains` or a domain
    /// under one (lower-case domain names): those an email channel with
    /// `secure_domains` sends an OFFICIAL-SENSITIVE item in full.
    fn count_at_domains(
        &self,
        query: &AudienceQuery,
        kinds: &[String],
        index: usize,
        domains: &[String],
    ) -> impl Future<Output = Result<usize, StoreError>> + Send;

    /// The ids of the audience counted under `kinds[index]`, in id order:
    /// for what differs per person on one channel (a text's length).
    fn people_under(
        &self,
        query: &AudienceQuery,
        kinds: &[String],
        index: usize,
    ) -> impl Future<Output = Result<Vec<String>, StoreError>> + Send;

    /// The audience's members per team, teams without members left out.
    fn audience_by_team(
        &self,
        query: &AudienceQuery,
    ) -> impl Future<Output = Result<Vec<TeamTally>, StoreError>> + Send;

    /// The audience's members whose time zone, working pattern or return
    /// from an absence after the query's `absences_after` is set, grouped
    /// by wave and those columns: what
    /// [`cascade_model::rollout::plan_timing`] times.
    fn timing_groups(
        &self,
        query: &AudienceQuery,
    ) -> impl Future<Output = Result<Vec<TimingGroup>, StoreError>> + Send;

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
