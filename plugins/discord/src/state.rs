//! What a running Discord channel keeps between calls: the interactions
//! waiting for the host's answer and how to give it, the forms of the
//! buttons sent, DM channel ids, the messages already posted for an
//! unfinished delivery, and (in `ratelimit`) Discord's rate limits. Plain
//! data behind locks: no I/O here.

pub mod ratelimit;

use cascade_plugin_api::{Action, Form};
use std::collections::{HashMap, VecDeque};
use std::sync::{Mutex, PoisonError};

/// How to answer a deferred interaction once the host replies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Answer {
    /// Deferred with an update (type 6): the original is the message the
    /// button was on, edited to show the status.
    UpdateMessage,
    /// Deferred with a response (type 5): the original is that response,
    /// filled in with the host's text.
    EditResponse,
}

/// An interaction waiting for the host's reply.
#[derive(Debug, Clone)]
pub struct PendingInteraction {
    /// The interaction token: valid 15 minutes, for edits and follow-ups.
    pub token: String,
    pub answer: Answer,
    /// Deferred as ephemeral: its follow-ups stay ephemeral too.
    pub private: bool,
}

/// Interactions waiting for the host, by event id (the interaction id).
#[derive(Default)]
pub struct Interactions {
    waiting: Mutex<HashMap<String, PendingInteraction>>,
}

impl Interactions {
    pub fn keep(&self, event_id: String, pending: PendingInteraction) {
        self.lock().insert(event_id, pending);
    }

    /// The interaction, once: a second reply to the same event finds none.
    pub fn take(&self, event_id: &str) -> Option<PendingInteraction> {
        self.lock().remove(event_id)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, PendingInteraction>> {
        self.waiting.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// Most forms remembered; beyond it the oldest are forgotten, and their
/// buttons are reported as plain actions (the host then asks step by step).
const FORMS_KEPT: usize = 10_000;

/// The forms of buttons the plugin has sent, by action id: a press carries
/// only the button's custom id, and the modal must open at once.
#[derive(Default)]
pub struct Forms {
    known: Mutex<(HashMap<String, Form>, VecDeque<String>)>,
}

impl Forms {
    pub fn remember(&self, actions: &[Action]) {
        let mut known = self.known.lock().unwrap_or_else(PoisonError::into_inner);
        for action in actions {
            let Some(form) = &action.form else { continue };
            if known.0.insert(action.id.clone(), form.clone()).is_none() {
                known.1.push_back(action.id.clone());
            }
            while known.1.len() > FORMS_KEPT {
                if let Some(oldest) = known.1.pop_front() {
                    known.0.remove(&oldest);
                }
            }
        }
    }

    pub fn get(&self, action_id: &str) -> Option<Form> {
        let known = self.known.lock().unwrap_or_else(PoisonError::into_inner);
        known.0.get(action_id).cloned()
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

/// Message ids already posted for a delivery that has not finished, by
/// idempotency key, so its retry posts only the parts still missing.
#[derive(Default)]
pub struct Progress(Mutex<HashMap<String, Vec<String>>>);

impl Progress {
    pub fn posted(&self, key: &str) -> Vec<String> {
        self.lock().get(key).cloned().unwrap_or_default()
    }

    pub fn record(&self, key: &str, posted: Vec<String>) {
        self.lock().insert(key.to_owned(), posted);
    }

    pub fn forget(&self, key: &str) {
        self.lock().remove(key);
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Vec<String>>> {
        self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }
}
