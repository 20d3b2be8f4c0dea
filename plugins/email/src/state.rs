//! What a running email channel keeps between sends: the SMTP connections
//! parked after a send, for the next one to reuse. Plain data behind a
//! lock: no I/O here (whether a parked connection still works is `send`'s
//! to find out).

use lettre::transport::smtp::client::AsyncSmtpConnection;
use std::sync::{Mutex, PoisonError};
use std::time::Instant;

/// Open connections not carrying a message, each with when it was parked.
/// The most recently parked is taken first.
#[derive(Default)]
pub struct Parked(Mutex<Vec<(AsyncSmtpConnection, Instant)>>);

impl Parked {
    pub fn park(&self, connection: AsyncSmtpConnection) {
        self.lock().push((connection, Instant::now()));
    }

    /// The most recently parked connection and when it was parked.
    pub fn take(&self) -> Option<(AsyncSmtpConnection, Instant)> {
        self.lock().pop()
    }

    /// Every parked connection, leaving none.
    pub fn take_all(&self) -> Vec<(AsyncSmtpConnection, Instant)> {
        std::mem::take(&mut *self.lock())
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<(AsyncSmtpConnection, Instant)>> {
        self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }
}
