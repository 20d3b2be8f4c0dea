//! The store: every learning item version and the imported directory, behind
//! the [`Store`] trait so that callers do not care which database holds them.
//! SQLite ([`SqliteStore`]) is the embedded default; migrations live in
//! `core/store/migrations/` and run on open.

mod accounts;
#[cfg(test)]
mod accounts_tests;
mod annual;
mod audience;
#[cfg(test)]
mod audience_tests;
#[cfg(test)]
mod both;
mod bulletins;
mod chain;
mod channel_states;
pub mod copy;
mod evidence;
mod inbox;
#[cfg(feature = "test-support")]
mod inspect;
mod leases;
#[cfg(test)]
mod leases_tests;
mod outbox;
pub mod pg;
mod privacy;
mod reports;
mod rows;
mod sqlite;
mod team_posts;
mod wakeups;

pub use accounts::*;
pub use annual::*;
pub use audience::*;
pub use bulletins::*;
pub use chain::*;
pub use channel_states::*;
pub use evidence::*;
pub use inbox::*;
#[cfg(feature = "test-support")]
pub use inspect::*;
pub use leases::*;
pub use outbox::*;
pub use privacy::*;
pub use reports::*;
pub use team_posts::*;
pub use wakeups::{WAKE_CHANNEL, Wake, Wakeups};

pub use sqlite::SqliteStore;
pub use sqlite::backup;

/// Every store trait at once: what the engine and the HTTP server ask of a
/// store. Implemented for any type that implements them all, so callers
/// write `S: AllStores` and a second store implements only the traits.
pub trait AllStores:
    Store
    + Outbox
    + Evidence
    + EvidenceChain
    + Audiences
    + TeamPosts
    + Reports
    + Privacy
    + Inbox
    + Bulletins
    + Leases
    + ChannelStates
    + Wakeups
    + 'static
{
}

impl<S> AllStores for S where
    S: Store
        + Outbox
        + Evidence
        + EvidenceChain
        + Audiences
        + TeamPosts
        + Reports
        + Privacy
        + Inbox
        + Bulletins
        + Leases
        + ChannelStates
        + Wakeups
        + 'static
{
}

use cascade_model::content::{LearningItem, Taxonomy, Version};
use cascade_model::directory::{
    Agency, Champion, ChannelIdentity, DirectoryError, DirectoryFile, Person, Team,
};
use chrono::{DateTime, NaiveDate, Utc};
use std::fmt;
use std::future::Future;
use std::path::Path;

/// What the engine keeps. Written with `impl Future + Send` rather than
/// `async fn` so callers on a multi-threaded runtime can rely on `Send`;
/// a PostgreSQL implementation implements the same trait and callers stay
/// generic over `S: Store`.
pub trait Store: Send + Sync {
    /// Keeps `item` with the source text it was parsed from. Returns true when
    /// this version is new; saving a version already kept changes nothing.
    fn save_item(
        &self,
        item: &LearningItem,
        source: &str,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;

    /// Every kept version of an item, oldest first.
    fn item_versions(
        &self,
        id: &str,
    ) -> impl Future<Output = Result<Vec<StoredItem>, StoreError>> + Send;

    /// The version of an item seen most recently for the first time.
    fn latest_item(
        &self,
        id: &str,
    ) -> impl Future<Output = Result<Option<StoredItem>, StoreError>> + Send;

    /// Imports one directory file in one transaction. References are checked
    /// against what the store holds; if any row is bad nothing is written and
    /// every problem is returned in [`StoreError::Rejected`]. Rows are upserted
    /// by id. People (and champions) missing from their file are marked
    /// inactive, never deleted.
    fn import(
        &self,
        file: &DirectoryFile,
        path: &Path,
        taxonomy: &Taxonomy,
    ) -> impl Future<Output = Result<ImportSummary, StoreError>> + Send;

    /// Imports directory files, in the order given, in one transaction,
    /// then brings every running rollout's members up to date in the same
    /// transaction: members marked inactive are "left" and members no
    /// longer in their rollout's audience (of `audiences`, the running
    /// rollouts' audiences as they are defined) are "moved"; both stop
    /// being chased (their next step is put aside and their queued
    /// messages cancelled). A member back in the audience is chased again
    /// from where they stopped. A rollout not in `audiences` has its
    /// leavers stopped only. With `dry_run` the transaction is rolled
    /// back: the answer is the same and nothing is written. If any file is
    /// rejected, nothing is written.
    fn import_directory(
        &self,
        files: &[(&Path, &DirectoryFile)],
        taxonomy: &Taxonomy,
        audiences: &[RunningAudience],
        now: i64,
        dry_run: bool,
    ) -> impl Future<Output = Result<DirectoryImport, StoreError>> + Send;

    /// People ordered by id; with `active_only`, those in the latest people import.
    fn people(
        &self,
        active_only: bool,
    ) -> impl Future<Output = Result<Vec<StoredPerson>, StoreError>> + Send;

    fn person(
        &self,
        id: &str,
    ) -> impl Future<Output = Result<Option<StoredPerson>, StoreError>> + Send;

    fn agencies(&self) -> impl Future<Output = Result<Vec<Agency>, StoreError>> + Send;

    fn teams(&self) -> impl Future<Output = Result<Vec<Team>, StoreError>> + Send;

    /// Active champions, ordered by person and theme.
    fn champions(&self) -> impl Future<Output = Result<Vec<Champion>, StoreError>> + Send;

    /// The channel identities of one person, ordered by channel and address.
    fn identities(
        &self,
        person_id: &str,
    ) -> impl Future<Output = Result<Vec<ChannelIdentity>, StoreError>> + Send;
}

/// One kept version of a learning item.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredItem {
    pub id: String,
    pub version: Version,
    /// As written in front matter, e.g. `seven-minute-briefing`.
    pub kind: String,
    pub title: String,
    /// The status name, e.g. `published`.
    pub status: String,
    pub embargoed_until: Option<NaiveDate>,
    /// The file text this version was parsed from.
    pub source: String,
    pub first_seen_at: DateTime<Utc>,
}

/// A person as the store holds them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredPerson {
    pub person: Person,
    /// False once a people import no longer lists them.
    pub active: bool,
    pub updated_at: DateTime<Utc>,
}

/// What an import did, row by row.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ImportSummary {
    pub added: usize,
    /// Changed rows, and people or champions who became active again.
    pub updated: usize,
    pub unchanged: usize,
    /// People or champions the file no longer lists.
    pub deactivated: usize,
}

/// A running rollout's audience as its definition has it, for an import
/// to hold the rollout's members against.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunningAudience {
    pub rollout_id: String,
    pub query: AudienceQuery,
    /// Set while the rollout is open to joiners (`enrol = "joiners"`,
    /// before the end of its `open_until` day).
    pub open: Option<OpenEnrolment>,
}

/// How an open rollout enrols the people who came into its audience
/// since it started, at the time of one import.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OpenEnrolment {
    /// The item version the rollout sends: someone who acknowledged it
    /// already is not enrolled.
    pub item_version: String,
    /// Per wave of the audience query, in order: how a joiner into that
    /// wave (the first whose rule takes them) is timed.
    pub waves: Vec<JoinerWave>,
    /// A key item of the induction: only people new in the import's people
    /// file join (not people moved into the audience, nor people back).
    pub new_people_only: bool,
}

/// A joiner's timetable in one wave: the wave's, moved whole days later.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct JoinerWave {
    /// Days later than the wave's own timetable (0 while its send is
    /// still to come).
    pub shift_days: u32,
    /// Their first send, the wave's moved (Unix ms).
    pub first_due_at: i64,
}

/// What an import did (or, in a dry run, would do) to one running
/// rollout's members.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MembershipChange {
    pub rollout_id: String,
    /// People who came into the audience and were enrolled; `None` while
    /// the rollout is not open to joiners (fixed at its start, or past
    /// its `open_until` day).
    pub joiners: Option<u64>,
    /// Members marked inactive by this import: no longer chased.
    pub left: u64,
    /// Members no longer in the audience (a move of team, agency or role):
    /// no longer chased, their acknowledgement kept.
    pub moved: u64,
    /// Members who had left or moved and are in the audience again: chased
    /// again from the step they had reached.
    pub back: u64,
}

impl MembershipChange {
    /// Whether the import changed anything for this rollout.
    pub fn is_empty(&self) -> bool {
        self.joiners.unwrap_or(0) == 0 && self.left == 0 && self.moved == 0 && self.back == 0
    }
}

/// What an import of directory files did, or would do.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DirectoryImport {
    /// One per file, in the order given.
    pub files: Vec<ImportSummary>,
    /// One per running rollout (active or paused), by id.
    pub rollouts: Vec<MembershipChange>,
    /// Queued messages cancelled because their person or recipient left or
    /// moved out of the audience.
    pub cancelled_messages: u64,
    /// What the import did for the induction; `None` when no key item's
    /// rollout is running (the induction is not set up).
    pub induction: Option<InductionEnrolment>,
}

/// The people an import enrolled in the induction.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct InductionEnrolment {
    /// Key items whose rollouts are running.
    pub key_items: usize,
    /// People new in the import enrolled in at least one key item.
    pub joiners: u64,
}

impl fmt::Display for ImportSummary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} added, {} updated, {} unchanged, {} deactivated",
            self.added, self.updated, self.unchanged, self.deactivated
        )
    }
}

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("cannot create the folder for the database {path}: {source}")]
    CreateFolder {
        path: String,
        source: std::io::Error,
    },
    #[error(
        "cannot keep the database file {path} to its owner only: {source}\n  help: run cascade as the user who owns {path}, or `chmod 600 {path}`"
    )]
    KeepPrivate {
        path: String,
        source: std::io::Error,
    },
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
    #[error("cannot bring the database schema up to date: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("{path} {why}\n  help: {fix}")]
    Backup {
        path: String,
        why: String,
        fix: String,
    },
    #[error("nothing was imported; fix these and import again:\n{}", list(.0))]
    Rejected(Vec<DirectoryError>),
    /// The store's settings are wrong or its server cannot be reached: the
    /// message names the setting and the fix.
    #[error("{0}")]
    Config(String),
}

fn list(errors: &[DirectoryError]) -> String {
    errors
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("\n")
}

#[cfg(test)]
mod bulletin_tests;
#[cfg(test)]
mod check_tests;
#[cfg(test)]
mod counts_tests;
#[cfg(test)]
mod evidence_tests;
#[cfg(test)]
mod inbox_tests;
#[cfg(test)]
mod membership_tests;
#[cfg(test)]
mod outbox_tests;
#[cfg(test)]
mod refresher_tests;
#[cfg(test)]
mod reports_tests;
#[cfg(test)]
mod team_posts_tests;
#[cfg(test)]
mod tests;
#[cfg(test)]
mod typed_tests;
#[cfg(test)]
mod wakeups_tests;
