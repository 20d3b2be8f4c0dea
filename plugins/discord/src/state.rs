//! What a running Discord channel keeps between calls: the interactions
//! waiting for the host's answer and how to give it, the forms of the
//! buttons sent, DM channel ids, the messages already posted for an
//! unfinished delivery, and (in `ratelimit`) Discord's rate limits.
//! Interactions, forms and posted messages live in the host's plugin state
//! (the store, on a version-3 host), so a restart loses none of them: a
//! button sent before it still opens its form, and a retried delivery
//! posts only its missing parts. The rest is plain data behind locks.

pub mod ratelimit;

use cascade_plugin_api::{Action, Form, Host, LogLevel};
use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

/// Runs a blocking call to the host from async code without stalling the
/// runtime's other tasks.
pub fn blocking<T>(f: impl FnOnce() -> T) -> T {
    match tokio::runtime::Handle::try_current().map(|h| h.runtime_flavor()) {
        Ok(tokio::runtime::RuntimeFlavor::MultiThread) => tokio::task::block_in_place(f),
        _ => f(),
    }
}

/// Reads `key` from the host's state; a failure is logged and read as none.
fn get<T: serde::de::DeserializeOwned>(host: &Host, key: &str) -> Option<T> {
    match blocking(|| host.state_get(key)) {
        Ok(value) => value.and_then(|v| serde_json::from_value(v).ok()),
        Err(error) => {
            host.log(
                LogLevel::Warn,
                format!("could not read the channel's kept state: {error}"),
            );
            None
        }
    }
}

fn put<T: serde::Serialize>(host: &Host, key: &str, value: &T, ttl: Duration) {
    let value = serde_json::to_value(value).expect("plain data");
    if let Err(error) = blocking(|| host.state_put(key, &value, Some(ttl))) {
        host.log(
            LogLevel::Warn,
            format!("could not keep the channel's state: {error}"),
        );
    }
}

fn delete(host: &Host, key: &str) {
    if let Err(error) = blocking(|| host.state_delete(key)) {
        host.log(
            LogLevel::Warn,
            format!("could not forget the channel's kept state: {error}"),
        );
    }
}

/// How to answer a deferred interaction once the host replies.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum Answer {
    /// Deferred with an update (type 6): the original is the message the
    /// button was on, edited to show the status.
    UpdateMessage,
    /// Deferred with a response (type 5): the original is that response,
    /// filled in with the host's text.
    EditResponse,
}

/// An interaction waiting for the host's reply.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct PendingInteraction {
    /// The interaction token: valid 15 minutes, for edits and follow-ups.
    pub token: String,
    pub answer: Answer,
    /// Deferred as ephemeral: its follow-ups stay ephemeral too.
    pub private: bool,
}

/// Interactions stored with the host whose first response to Discord is
/// still on its way: the host's answer to one waits for it, since Discord
/// refuses edits of an interaction it has not had a response to.
#[derive(Default)]
pub struct Responding(Mutex<std::collections::HashSet<String>>);

impl Responding {
    pub fn start(&self, event_id: &str) {
        self.lock().insert(event_id.to_owned());
    }

    pub fn finish(&self, event_id: &str) {
        self.lock().remove(event_id);
    }

    pub fn is_responding(&self, event_id: &str) -> bool {
        self.lock().contains(event_id)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, std::collections::HashSet<String>> {
        self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// How long an interaction token is valid, so how long one is kept.
const INTERACTION_LIFETIME: Duration = Duration::from_secs(15 * 60);

/// Interactions waiting for the host, by event id (the interaction id).
pub struct Interactions {
    host: Host,
}

impl Interactions {
    pub fn new(host: Host) -> Interactions {
        Interactions { host }
    }

    pub fn keep(&self, event_id: String, pending: PendingInteraction) {
        put(
            &self.host,
            &format!("interaction:{event_id}"),
            &pending,
            INTERACTION_LIFETIME,
        );
    }

    /// The interaction, once: a second reply to the same event finds none.
    pub fn take(&self, event_id: &str) -> Option<PendingInteraction> {
        let key = format!("interaction:{event_id}");
        let pending = get(&self.host, &key)?;
        delete(&self.host, &key);
        Some(pending)
    }
}

/// How long the form of a sent button is kept: as long as anyone may press
/// a button on a message (the host refuses presses for rollouts long over).
const FORM_LIFETIME: Duration = Duration::from_secs(180 * 24 * 60 * 60);

/// The forms of buttons the plugin has sent, by action id: a press carries
/// only the button's custom id, and the modal must open at once. Kept in
/// the host's state, so a button sent before a restart still opens it.
pub struct Forms {
    host: Host,
}

impl Forms {
    pub fn new(host: Host) -> Forms {
        Forms { host }
    }

    pub fn remember(&self, actions: &[Action]) {
        for action in actions {
            let Some(form) = &action.form else { continue };
            put(
                &self.host,
                &format!("form:{}", action.id),
                form,
                FORM_LIFETIME,
            );
        }
    }

    pub fn get(&self, action_id: &str) -> Option<Form> {
        get(&self.host, &format!("form:{action_id}"))
    }
}

/// DM channel ids by user id: Discord returns the same channel each time,
/// so one call per person is enough.
#[derive(Default)]
pub struct DmChannels(Mutex<HashMap<u64, u64>>);

impl DmChannels {
    pub fn get(&self, user: u64) -> Option<u64> {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(&user)
            .copied()
    }

    pub fn insert(&self, user: u64, channel: u64) {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(user, channel);
    }
}

/// How long the posted parts of an unfinished delivery are kept: longer
/// than the host keeps retrying one delivery.
const PROGRESS_LIFETIME: Duration = Duration::from_secs(24 * 60 * 60);

/// Message ids already posted for a delivery that has not finished, by
/// idempotency key, so its retry posts only the parts still missing, after
/// a restart too.
pub struct Progress {
    host: Host,
}

impl Progress {
    pub fn new(host: Host) -> Progress {
        Progress { host }
    }

    pub fn posted(&self, key: &str) -> Vec<String> {
        get(&self.host, &format!("posted:{key}")).unwrap_or_default()
    }

    pub fn record(&self, key: &str, posted: Vec<String>) {
        put(
            &self.host,
            &format!("posted:{key}"),
            &posted,
            PROGRESS_LIFETIME,
        );
    }

    pub fn forget(&self, key: &str) {
        delete(&self.host, &format!("posted:{key}"));
    }
}
