//! Recurring bulletins: what a started bulletin keeps (its definition, the
//! occurrences made, the items gathered) behind the [`Bulletins`] trait.
//! An occurrence is recorded once per bulletin and scheduled instant, and
//! an item once per bulletin, so a restart or a second tick never makes an
//! occurrence twice and no item goes in two issues.

use crate::{NewRollout, RolloutState, StoreError};
use cascade_model::content::LearningItem;
use std::future::Future;

/// A bulletin as started.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredBulletin {
    pub id: String,
    /// The rollout definition, `[bulletin]` and all, as JSON.
    pub definition: String,
    pub state: RolloutState,
    pub started_at: i64,
    /// The scheduled instant of the latest occurrence made, if any.
    pub last_occurrence_at: Option<i64>,
}

/// One occurrence made: an issue's rollout, or a skip.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct BulletinOccurrence {
    pub bulletin_id: String,
    /// The scheduled instant (Unix ms).
    pub occurrence_at: i64,
    /// The issue's rollout; `None` when nothing new was published.
    pub rollout_id: Option<String>,
    /// How many items the issue gathered.
    #[sqlx(try_from = "i64")]
    pub items: u32,
    pub made_at: i64,
}

/// The issue an occurrence sends: its item and rollout.
pub struct NewIssue<'a> {
    pub item: &'a LearningItem,
    /// The item's source text.
    pub source: &'a str,
    pub rollout: NewRollout<'a>,
}

/// An occurrence to record.
pub struct NewOccurrence<'a> {
    pub bulletin_id: &'a str,
    pub occurrence_at: i64,
    /// The items gathered, as (id, version).
    pub items: &'a [(String, String)],
    /// `None` to record a skip.
    pub issue: Option<NewIssue<'a>>,
    pub now: i64,
}

pub trait Bulletins: Send + Sync {
    /// Starts a bulletin; `published` are the items, as (id, version),
    /// already published that it would gather, which it never sends.
    /// False when a bulletin or rollout of that id exists already.
    fn start_bulletin(
        &self,
        id: &str,
        definition: &str,
        published: &[(String, String)],
        now: i64,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;

    /// Every bulletin, oldest first.
    fn bulletins(&self) -> impl Future<Output = Result<Vec<StoredBulletin>, StoreError>> + Send;

    fn bulletin(
        &self,
        id: &str,
    ) -> impl Future<Output = Result<Option<StoredBulletin>, StoreError>> + Send;

    /// The ids of the items the bulletin has gathered, or that were
    /// published when it started.
    fn bulletin_items(
        &self,
        id: &str,
    ) -> impl Future<Output = Result<Vec<String>, StoreError>> + Send;

    /// The occurrences made, oldest first.
    fn occurrences(
        &self,
        id: &str,
    ) -> impl Future<Output = Result<Vec<BulletinOccurrence>, StoreError>> + Send;

    /// Records an occurrence, its items and (unless it is a skip) its
    /// issue's item version and rollout, in one transaction. False, with
    /// nothing written, when that occurrence was recorded already.
    fn record_occurrence(
        &self,
        occurrence: NewOccurrence<'_>,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;

    /// Pauses, resumes or cancels a bulletin's future occurrences (its
    /// issues already made are rollouts of their own). False when there is
    /// no such bulletin or it was cancelled.
    fn set_bulletin_state(
        &self,
        id: &str,
        state: RolloutState,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;
}
