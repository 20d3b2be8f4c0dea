//! Delivery: the scheduler turns due rollout steps into outbox rows, the
//! dispatcher claims rows under a lease, composes each message from the
//! pinned item version, sends it through the plugin host and records the
//! outcome. Both are restartable loops over the store: nothing that matters
//! lives only in memory, and every function takes `now` so tests drive a
//! clock by hand.

mod champion_reminders;
mod compose;
mod dispatcher;
pub mod induction_digest;
mod scheduler;
mod team_posts;
mod world;

pub use compose::{Composer, paragraphs};
pub use dispatcher::{
    DispatchSettings, Dispatcher, OVERDUE_WAIT, POLL_WAIT, backoff, fallback_for,
};
pub use scheduler::schedule_due;
pub use team_posts::{TeamPoster, next_edit_at};
pub use world::{ChannelRoute, Quota, Reading, RolloutRuntime, Rollouts, SharedWorld, World};

use cascade_store::StoreError;

#[derive(Debug, thiserror::Error)]
pub enum DeliveryError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("rollout \"{rollout}\": {message}")]
    Rollout { rollout: String, message: String },
}

pub use cascade_model::time::{from_millis, millis};
