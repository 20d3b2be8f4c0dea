//! Keeping count of accepted sends, for plugins that answer them on their own
//! threads: `stop` must answer every send it accepted, so it waits until none
//! is in flight (or a grace period ends), and a send dropped unanswered (its
//! task cancelled when the plugin's runtime shuts down) answers with a retry.

use crate::{Completion, SendResult};
use std::sync::{Arc, Condvar, Mutex, PoisonError};
use std::time::Duration;

/// Counts accepted sends not yet answered, so `stop` can wait for them.
#[derive(Default)]
pub struct InFlight {
    count: Mutex<usize>,
    idle: Condvar,
}

impl InFlight {
    /// Takes a send in; `stopped` is the retry reason given if it is dropped
    /// unanswered.
    pub fn accept(self: &Arc<Self>, completion: Completion, stopped: &'static str) -> AcceptedSend {
        *self.count.lock().unwrap_or_else(PoisonError::into_inner) += 1;
        AcceptedSend {
            completion: Some(completion),
            in_flight: Arc::clone(self),
            stopped,
        }
    }

    /// Waits until no send is in flight or `timeout` passes; returns how many
    /// are still in flight.
    pub fn wait_until_idle(&self, timeout: Duration) -> usize {
        let count = self.count.lock().unwrap_or_else(PoisonError::into_inner);
        let (count, _) = self
            .idle
            .wait_timeout_while(count, timeout, |count| *count > 0)
            .unwrap_or_else(PoisonError::into_inner);
        *count
    }
}

/// A send handed to the plugin's threads. It is answered exactly once: with
/// its result, or with a retry if it is dropped first.
pub struct AcceptedSend {
    completion: Option<Completion>,
    in_flight: Arc<InFlight>,
    stopped: &'static str,
}

impl AcceptedSend {
    pub fn finish(mut self, result: SendResult) {
        if let Some(completion) = self.completion.take() {
            completion.complete(result);
        }
    }
}

impl Drop for AcceptedSend {
    fn drop(&mut self) {
        if let Some(completion) = self.completion.take() {
            completion.complete(SendResult::Retry {
                reason: self.stopped.to_owned(),
                retry_after_ms: None,
            });
        }
        // Counted down only after answering, so `stop` never returns before
        // an answer it waited for.
        let mut count = self
            .in_flight
            .count
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        *count -= 1;
        if *count == 0 {
            self.in_flight.idle.notify_all();
        }
    }
}
