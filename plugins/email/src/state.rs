//! What a running email channel keeps between sends: the SMTP connections
//! parked after a send, for the next one to reuse, and the OAuth access
//! token until shortly before it expires. Plain data behind locks: no I/O
//! here (whether a parked connection still works is `send`'s to find out).

use lettre::transport::smtp::client::AsyncSmtpConnection;
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

/// A token is fetched again this long before it expires, so one never
/// expires during an SMTP exchange.
pub const TOKEN_MARGIN: Duration = Duration::from_secs(5 * 60);

/// The OAuth access token and when it expires. Never printed.
#[derive(Default)]
pub struct AccessToken(Mutex<Option<(String, Instant)>>);

impl AccessToken {
    /// The token, unless there is none or it expires within the margin.
    pub fn current(&self, now: Instant) -> Option<String> {
        self.lock()
            .as_ref()
            .filter(|(_, expires)| now + TOKEN_MARGIN < *expires)
            .map(|(token, _)| token.clone())
    }

    pub fn keep(&self, token: String, expires: Instant) {
        *self.lock() = Some((token, expires));
    }

    /// Drops `token` (the server refused it), unless a newer one is kept.
    pub fn forget(&self, token: &str) {
        let mut held = self.lock();
        if held.as_ref().is_some_and(|(kept, _)| kept == token) {
            *held = None;
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Option<(String, Instant)>> {
        self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_token_is_kept_until_five_minutes_before_it_expires() {
        let tokens = AccessToken::default();
        let now = Instant::now();
        tokens.keep("t1".to_owned(), now + Duration::from_secs(3600));
        assert_eq!(tokens.current(now).as_deref(), Some("t1"));
        assert_eq!(
            tokens.current(now + Duration::from_secs(3290)),
            Some("t1".to_owned())
        );
        assert_eq!(tokens.current(now + Duration::from_secs(3300)), None);
        tokens.forget("other");
        assert!(tokens.current(now).is_some());
        tokens.forget("t1");
        assert!(tokens.current(now).is_none());
    }
}
