//! Discord's rate limits as the responses announce them: per route
//! (`X-RateLimit-Remaining`, `X-RateLimit-Reset-After`, a 429's
//! `retry_after`) and global (a 429 with `global: true`). Pure: time is a
//! parameter, so the rules are tested without waiting.
//!
//! serenity has a ratelimiter of its own, but in 0.12 it builds every
//! request for discord.com itself, ignoring the configured API base
//! (`Ratelimiter::perform` passes no proxy), and it sleeps through every
//! 429 instead of letting the host reschedule. The plugin therefore keeps
//! the same bookkeeping here and decides per call: wait a short limit out,
//! or report a retry to the host.

use std::collections::HashMap;
use std::time::{Duration, Instant};

/// What a response said about rate limits.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Announced {
    /// `X-RateLimit-Remaining`: calls left in the current window.
    pub remaining: Option<u64>,
    /// `X-RateLimit-Reset-After`: seconds until the window resets.
    pub reset_after: Option<f64>,
    /// For a 429: how long to wait, in seconds (`retry_after` in the body,
    /// or the `Retry-After` header).
    pub retry_after: Option<f64>,
    /// A 429 for every route of the bot (`global: true` or
    /// `X-RateLimit-Global`).
    pub global: bool,
}

#[derive(Debug, Clone, Copy)]
struct Window {
    remaining: u64,
    reset_at: Instant,
}

/// The known windows, by route key (method, path template and the major
/// parameter, as Discord scopes its buckets), and the global block.
/// Beyond this many known windows, those already reset are dropped: every
/// interaction token is a route of its own, so the map would otherwise grow
/// with every button press.
const WINDOWS_KEPT: usize = 1_024;

#[derive(Debug, Default)]
pub struct RateLimits {
    routes: HashMap<String, Window>,
    global_until: Option<Instant>,
}

impl RateLimits {
    /// How long a call on `route` must wait before it may go out, if at all.
    pub fn wait_before(&self, route: &str, now: Instant) -> Option<Duration> {
        let global = self
            .global_until
            .filter(|until| *until > now)
            .map(|until| until - now);
        let route = self
            .routes
            .get(route)
            .filter(|w| w.remaining == 0 && w.reset_at > now)
            .map(|w| w.reset_at - now);
        global.max(route)
    }

    /// Records what a response on `route` announced; `limited` for a 429,
    /// which returns how long Discord asked to wait.
    pub fn observe(
        &mut self,
        route: &str,
        limited: bool,
        announced: &Announced,
        now: Instant,
    ) -> Option<Duration> {
        if self.routes.len() > WINDOWS_KEPT {
            self.routes.retain(|_, window| window.reset_at > now);
        }
        if limited {
            let wait = seconds(announced.retry_after.or(announced.reset_after));
            if announced.global {
                self.global_until = Some(now + wait);
            } else {
                self.routes.insert(
                    route.to_owned(),
                    Window {
                        remaining: 0,
                        reset_at: now + wait,
                    },
                );
            }
            return Some(wait);
        }
        if let (Some(remaining), Some(reset_after)) = (announced.remaining, announced.reset_after) {
            self.routes.insert(
                route.to_owned(),
                Window {
                    remaining,
                    reset_at: now + seconds(Some(reset_after)),
                },
            );
        }
        None
    }
}

/// Seconds as Discord gives them (fractions, possibly nonsense) to a
/// duration; one second when a 429 says nothing usable.
fn seconds(value: Option<f64>) -> Duration {
    value
        .and_then(|s| Duration::try_from_secs_f64(s).ok())
        .unwrap_or(Duration::from_secs(1))
}

#[cfg(test)]
mod tests {
    use super::*;

    const ROUTE: &str = "POST /channels/1/messages";
    const OTHER: &str = "POST /channels/2/messages";

    #[test]
    fn an_exhausted_window_holds_its_route_until_it_resets() {
        let now = Instant::now();
        let mut limits = RateLimits::default();
        let announced = Announced {
            remaining: Some(0),
            reset_after: Some(2.5),
            ..Announced::default()
        };
        limits.observe(ROUTE, false, &announced, now);
        assert_eq!(
            limits.wait_before(ROUTE, now),
            Some(Duration::from_millis(2500))
        );
        assert_eq!(limits.wait_before(OTHER, now), None);
        assert_eq!(
            limits.wait_before(ROUTE, now + Duration::from_secs(3)),
            None
        );
    }

    #[test]
    fn windows_that_have_reset_are_forgotten_once_there_are_many() {
        let now = Instant::now();
        let mut limits = RateLimits::default();
        let announced = Announced {
            remaining: Some(3),
            reset_after: Some(1.0),
            ..Announced::default()
        };
        for n in 0..=WINDOWS_KEPT {
            limits.observe(
                &format!("POST /webhooks/1/token-{n}"),
                false,
                &announced,
                now,
            );
        }
        limits.observe(ROUTE, false, &announced, now + Duration::from_secs(2));
        assert_eq!(limits.routes.len(), 1);
    }

    #[test]
    fn a_window_with_calls_left_holds_nothing() {
        let now = Instant::now();
        let mut limits = RateLimits::default();
        let announced = Announced {
            remaining: Some(4),
            reset_after: Some(1.0),
            ..Announced::default()
        };
        limits.observe(ROUTE, false, &announced, now);
        assert_eq!(limits.wait_before(ROUTE, now), None);
    }

    #[test]
    fn a_route_429_holds_that_route_and_a_global_one_holds_every_route() {
        let now = Instant::now();
        let mut limits = RateLimits::default();
        let per_route = Announced {
            retry_after: Some(0.75),
            ..Announced::default()
        };
        limits.observe(ROUTE, true, &per_route, now);
        assert_eq!(
            limits.wait_before(ROUTE, now),
            Some(Duration::from_millis(750))
        );
        assert_eq!(limits.wait_before(OTHER, now), None);
        let global = Announced {
            retry_after: Some(4.0),
            global: true,
            ..Announced::default()
        };
        limits.observe(OTHER, true, &global, now);
        assert_eq!(limits.wait_before(ROUTE, now), Some(Duration::from_secs(4)));
        assert_eq!(
            limits.wait_before("GET /x", now),
            Some(Duration::from_secs(4))
        );
    }
}
