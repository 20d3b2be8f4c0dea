//! What a running Teams channel keeps between calls: the app token, the
//! Bot Framework's signing keys, the pacing of each conversation, the
//! one-to-one conversation of each person, the cards sent (so a press can
//! show its status on the card it was on), the parts already posted for an
//! unfinished delivery, and the presses waiting for the host's answer.
//! Plain data behind locks, time as a parameter: no I/O here.

use jsonwebtoken::DecodingKey;
use serde_json::Value;
use std::collections::{HashMap, VecDeque};
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use crate::config::TeamsConfig;
use crate::format::PersonRef;

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// An app token is renewed this long before Entra ID says it expires.
pub const TOKEN_RENEW_BEFORE: Duration = Duration::from_secs(5 * 60);

/// The app token of the client-credentials grant, while it is good.
#[derive(Default)]
pub struct AppToken {
    token: Mutex<Option<(String, Instant)>>,
}

impl AppToken {
    /// The token, unless it expires within [`TOKEN_RENEW_BEFORE`] of `now`.
    pub fn current(&self, now: Instant) -> Option<String> {
        lock(&self.token)
            .as_ref()
            .filter(|(_, expires)| now + TOKEN_RENEW_BEFORE < *expires)
            .map(|(token, _)| token.clone())
    }

    pub fn keep(&self, token: String, expires: Instant) {
        *lock(&self.token) = Some((token, expires));
    }

    /// Forgets `token` after the Bot Connector refused it.
    pub fn forget(&self, token: &str) {
        let mut held = lock(&self.token);
        if held.as_ref().is_some_and(|(t, _)| t == token) {
            *held = None;
        }
    }
}

/// Signing keys are fetched again after this long even when none is
/// missing (the Bot Framework rotates them every few weeks).
pub const KEYS_MAX_AGE: Duration = Duration::from_secs(24 * 60 * 60);
/// An unknown key id makes the plugin fetch the keys again, at most this
/// often, so forged key ids cannot make it hammer the metadata endpoint.
pub const KEYS_REFRESH_SPACING: Duration = Duration::from_secs(1);

/// One published signing key.
#[derive(Clone)]
pub struct SigningKey {
    pub key: DecodingKey,
    /// The channels the key is endorsed for (`msteams`); empty: any.
    pub endorsements: Vec<String>,
}

/// The Bot Framework's signing keys by key id, and when they were fetched.
#[derive(Default)]
pub struct SigningKeys {
    keys: Mutex<(HashMap<String, SigningKey>, Option<Instant>)>,
    last_attempt: Mutex<Option<Instant>>,
}

impl SigningKeys {
    /// The key `kid`, if held and the set is not stale at `now`.
    pub fn get(&self, kid: &str, now: Instant) -> Option<SigningKey> {
        let held = lock(&self.keys);
        let fresh = held
            .1
            .is_some_and(|at| now.duration_since(at) < KEYS_MAX_AGE);
        fresh.then(|| held.0.get(kid).cloned()).flatten()
    }

    /// Whether a fetch may start now (at most one per spacing); counts
    /// this one as the last attempt when it may.
    pub fn may_refresh(&self, now: Instant) -> bool {
        let mut last = lock(&self.last_attempt);
        if last.is_some_and(|at| now.duration_since(at) < KEYS_REFRESH_SPACING) {
            return false;
        }
        *last = Some(now);
        true
    }

    pub fn replace(&self, keys: HashMap<String, SigningKey>, now: Instant) {
        *lock(&self.keys) = (keys, Some(now));
    }
}

/// When each recent operation on a conversation took place, against
/// Teams' windows (1 s, 2 s, 30 s, 1 h), and until when a 429 blocks it.
#[derive(Default)]
struct Window {
    times: VecDeque<Instant>,
    blocked_until: Option<Instant>,
}

/// A margin on each window: requests reach Teams a little after the
/// plugin reserves their slot, and not always in the same order.
const WINDOW_MARGIN: Duration = Duration::from_millis(10);
/// Conversations whose windows are kept before idle ones are forgotten.
const WINDOWS_KEPT: usize = 10_000;
/// The app-wide window, as a key no conversation id can be.
const APP: &str = "";

/// Teams' rate limits, kept per conversation and over the whole bot.
pub struct Pacing {
    limits: Vec<(Duration, usize)>,
    app_limit: usize,
    windows: Mutex<HashMap<String, Window>>,
}

impl Pacing {
    pub fn new(config: &TeamsConfig) -> Pacing {
        let n = |n: u32| usize::try_from(n).unwrap_or(usize::MAX);
        Pacing {
            limits: vec![
                (Duration::from_secs(1), n(config.per_second)),
                (Duration::from_secs(2), n(config.per_2_seconds)),
                (Duration::from_secs(30), n(config.per_30_seconds)),
                (Duration::from_secs(3600), n(config.per_hour)),
            ],
            app_limit: n(config.app_per_second),
            windows: Mutex::default(),
        }
    }

    /// Reserves the earliest slot for one operation on `conversation` at or
    /// after `now`, within every window and after any 429 block, and
    /// returns how long to wait for it. When the wait would exceed
    /// `at_most`, nothing is reserved and `Err(wait)` is returned.
    /// Operations on one conversation keep their order; over the bot, a
    /// slot is taken wherever the one-second window has room.
    pub fn reserve(
        &self,
        conversation: &str,
        now: Instant,
        at_most: Duration,
    ) -> Result<Duration, Duration> {
        let mut windows = lock(&self.windows);
        if windows.len() > WINDOWS_KEPT {
            // Forget conversations no window looks at any more.
            windows.retain(|_, w| {
                w.blocked_until.is_some_and(|until| until > now)
                    || w.times.back().is_some_and(|t| {
                        now.saturating_duration_since(*t)
                            < Duration::from_secs(3600) + WINDOW_MARGIN
                    })
            });
        }
        let conversation_at = in_order(
            windows.entry(conversation.to_owned()).or_default(),
            &self.limits,
            now,
        );
        let app = windows.entry(APP.to_owned()).or_default();
        let at = anywhere(
            &mut app.times,
            Duration::from_secs(1) + WINDOW_MARGIN,
            self.app_limit,
            conversation_at,
        );
        let wait = at.saturating_duration_since(now);
        if wait > at_most {
            return Err(wait);
        }
        for key in [conversation, APP] {
            let window = windows.entry(key.to_owned()).or_default();
            let position = window.times.partition_point(|t| *t <= at);
            window.times.insert(position, at);
        }
        Ok(wait)
    }

    /// Teams answered 429 at `answered`: nothing more on `conversation`
    /// until `retry_after` has passed from then.
    pub fn block(&self, conversation: &str, answered: Instant, retry_after: Duration) {
        let mut windows = lock(&self.windows);
        let window = windows.entry(conversation.to_owned()).or_default();
        let until = answered + retry_after;
        window.blocked_until = Some(window.blocked_until.map_or(until, |u| u.max(until)));
    }
}

/// The earliest time at or after `from`, and after every operation already
/// reserved, when one more fits each window of `limits`; forgets what no
/// window looks at any more.
fn in_order(window: &mut Window, limits: &[(Duration, usize)], from: Instant) -> Instant {
    let longest = limits.iter().map(|(d, _)| *d).max().unwrap_or_default() + WINDOW_MARGIN;
    while window
        .times
        .front()
        .is_some_and(|t| from.saturating_duration_since(*t) > longest)
    {
        window.times.pop_front();
    }
    let mut at = from
        .max(window.blocked_until.unwrap_or(from))
        .max(window.times.back().copied().unwrap_or(from));
    loop {
        let mut moved = false;
        for (span, limit) in limits {
            let span = *span + WINDOW_MARGIN;
            // Every reserved time is at or before `at`: those within
            // (at - span, at] count, and with `limit` of them the next
            // fits once the oldest of the last `limit` leaves the window.
            let inside: Vec<Instant> = window
                .times
                .iter()
                .copied()
                .filter(|t| at.saturating_duration_since(*t) < span)
                .collect();
            if *limit > 0 && inside.len() >= *limit {
                let next = inside[inside.len() - limit] + span;
                if next > at {
                    at = next;
                    moved = true;
                }
            }
        }
        if !moved {
            return at;
        }
    }
}

/// The earliest time at or after `from` when one more operation fits a
/// window of `span` holding at most `limit`, at least `span / limit` from
/// every other (so the bot's operations go out evenly, not in bursts that
/// arrive reordered), wherever the others are (some may be reserved later
/// than `from`).
fn anywhere(times: &mut VecDeque<Instant>, span: Duration, limit: usize, from: Instant) -> Instant {
    while times
        .front()
        .is_some_and(|t| from.saturating_duration_since(*t) > span)
    {
        times.pop_front();
    }
    let gap = span / u32::try_from(limit.max(1)).unwrap_or(u32::MAX);
    let mut candidates: Vec<Instant> = std::iter::once(from)
        .chain(times.iter().map(|t| *t + span))
        .chain(times.iter().map(|t| *t + gap))
        .filter(|c| *c >= from)
        .collect();
    candidates.sort();
    let fits = |at: Instant| {
        if times
            .iter()
            .any(|t| t.max(&at).saturating_duration_since(*t.min(&at)) < gap)
        {
            return false;
        }
        let mut near: Vec<Instant> = times
            .iter()
            .copied()
            .filter(|t| t.max(&at).saturating_duration_since(*t.min(&at)) < span)
            .collect();
        let position = near.partition_point(|t| *t <= at);
        near.insert(position, at);
        // Any `limit + 1` consecutive operations that include `at` must
        // spread over at least `span`.
        (0..near.len().saturating_sub(limit)).all(|first| {
            let last = first + limit;
            !(first..=last).contains(&position)
                || near[last].saturating_duration_since(near[first]) >= span
        })
    };
    candidates
        .into_iter()
        .find(|at| fits(*at))
        .unwrap_or(from + span)
}

/// Most people whose one-to-one conversation id is remembered.
const CONVERSATIONS_KEPT: usize = 100_000;

/// The bot's one-to-one conversation with each person, by user id, as
/// Teams gave it (from their own message, or from opening it).
#[derive(Default)]
pub struct Conversations {
    ids: Mutex<HashMap<String, String>>,
}

impl Conversations {
    pub fn get(&self, person: &PersonRef) -> Option<String> {
        lock(&self.ids).get(&person.user_id).cloned()
    }

    pub fn keep(&self, person: &PersonRef, conversation: String) {
        let mut ids = lock(&self.ids);
        if ids.len() >= CONVERSATIONS_KEPT {
            ids.clear();
        }
        ids.insert(person.user_id.clone(), conversation);
    }
}

/// Most cards remembered for status updates; beyond it the oldest are
/// forgotten, and a press on one is answered without the update.
const CARDS_KEPT: usize = 20_000;

/// The last card of each learning message sent, by activity id: Teams
/// replaces a whole activity on update, and a press carries only its id.
#[derive(Default)]
pub struct SentCards {
    cards: Mutex<(HashMap<String, Value>, VecDeque<String>)>,
}

impl SentCards {
    pub fn keep(&self, activity_id: &str, activity: Value) {
        let mut held = lock(&self.cards);
        if held.0.insert(activity_id.to_owned(), activity).is_none() {
            held.1.push_back(activity_id.to_owned());
        }
        while held.1.len() > CARDS_KEPT {
            if let Some(old) = held.1.pop_front() {
                held.0.remove(&old);
            }
        }
    }

    pub fn get(&self, activity_id: &str) -> Option<Value> {
        lock(&self.cards).0.get(activity_id).cloned()
    }
}

/// The activity ids posted so far for a delivery not yet complete, by
/// idempotency key, so a retry posts only the missing parts. With
/// [`Progress::kept_by`] they live in the host's plugin state, so a retry
/// after a restart posts only the missing parts too.
#[derive(Default)]
pub struct Progress {
    posted: Mutex<HashMap<String, Vec<String>>>,
    host: Option<cascade_plugin_api::Host>,
}

/// How long the posted parts of an unfinished delivery are kept: longer
/// than the host keeps retrying one delivery.
const PROGRESS_LIFETIME: Duration = Duration::from_secs(24 * 60 * 60);

/// Runs a blocking call to the host from async code without stalling the
/// runtime's other tasks.
fn blocking<T>(f: impl FnOnce() -> T) -> T {
    match tokio::runtime::Handle::try_current().map(|h| h.runtime_flavor()) {
        Ok(tokio::runtime::RuntimeFlavor::MultiThread) => tokio::task::block_in_place(f),
        _ => f(),
    }
}

impl Progress {
    /// Progress kept in `host`'s plugin state.
    pub fn kept_by(host: cascade_plugin_api::Host) -> Progress {
        Progress {
            posted: Mutex::default(),
            host: Some(host),
        }
    }

    pub fn posted(&self, key: &str) -> Vec<String> {
        if let Some(host) = &self.host
            && let Ok(Some(value)) = blocking(|| host.state_get(&format!("posted:{key}")))
        {
            return serde_json::from_value(value).unwrap_or_default();
        }
        lock(&self.posted).get(key).cloned().unwrap_or_default()
    }

    pub fn record(&self, key: &str, posted: Vec<String>) {
        if let Some(host) = &self.host {
            let value = serde_json::json!(posted);
            let kept = blocking(|| {
                host.state_put(&format!("posted:{key}"), &value, Some(PROGRESS_LIFETIME))
            });
            if kept.is_ok() {
                return;
            }
        }
        lock(&self.posted).insert(key.to_owned(), posted);
    }

    pub fn forget(&self, key: &str) {
        if let Some(host) = &self.host {
            let _ = blocking(|| host.state_delete(&format!("posted:{key}")));
        }
        lock(&self.posted).remove(key);
    }
}

/// A press or message waiting for the host's answer.
#[derive(Debug, Clone)]
pub struct Pending {
    pub service_url: String,
    pub conversation_id: String,
    /// The activity that asked (answers are replies to it).
    pub activity_id: String,
    /// The card the press was on, for the status update.
    pub pressed: Option<String>,
    /// Who asked, for an answer that must be private in a shared channel.
    pub person: PersonRef,
    pub personal: bool,
    pub since: Instant,
}

/// How long an event waits for its answer before it is forgotten.
pub const PENDING_FOR: Duration = Duration::from_secs(15 * 60);

/// Events waiting for the host's answer, by event id.
#[derive(Default)]
pub struct Waiting {
    events: Mutex<HashMap<String, Pending>>,
}

impl Waiting {
    pub fn keep(&self, event_id: String, pending: Pending) {
        let mut events = lock(&self.events);
        let now = pending.since;
        events.retain(|_, p| now.duration_since(p.since) < PENDING_FOR);
        events.insert(event_id, pending);
    }

    /// The event, once: a second answer to it finds none.
    pub fn take(&self, event_id: &str) -> Option<Pending> {
        lock(&self.events).remove(event_id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn pacing(per_second: u32, per_30: u32, app: u32) -> Pacing {
        let per_2 = per_second * 2;
        let mut config = TeamsConfig::from_json(&json!({
            "app_id": "6f1c2d3e-4a5b-4c6d-8e9f-0a1b2c3d4e5f",
            "tenant_id": "11111111-2222-4333-8444-555555555555",
            "app_password": "x",
        }))
        .unwrap();
        config.per_second = per_second;
        config.per_2_seconds = per_2;
        config.per_30_seconds = per_30;
        config.app_per_second = app;
        Pacing::new(&config)
    }

    #[test]
    fn seven_a_second_then_the_eighth_waits_for_the_window() {
        let pacing = pacing(7, 60, 10_000);
        let now = Instant::now();
        for _ in 0..7 {
            assert!(pacing.reserve("c", now, Duration::from_millis(5)).is_ok());
        }
        let wait = pacing.reserve("c", now, Duration::from_secs(5)).unwrap();
        assert_eq!(wait, Duration::from_secs(1) + WINDOW_MARGIN);
        assert!(
            pacing
                .reserve("other", now, Duration::from_millis(5))
                .is_ok(),
            "another conversation has its own window"
        );
    }

    #[test]
    fn a_wait_over_the_limit_reserves_nothing() {
        let pacing = pacing(1, 60, 50);
        let now = Instant::now();
        pacing.reserve("c", now, Duration::ZERO).unwrap();
        assert!(pacing.reserve("c", now, Duration::from_millis(10)).is_err());
        assert_eq!(
            pacing.reserve("c", now + Duration::from_secs(2), Duration::ZERO),
            Ok(Duration::ZERO)
        );
    }

    #[test]
    fn the_thirty_second_budget_holds_over_many_seconds() {
        let pacing = pacing(7, 10, 50);
        let now = Instant::now();
        let mut last = Duration::ZERO;
        for _ in 0..11 {
            last = pacing.reserve("c", now, Duration::from_secs(60)).unwrap();
        }
        assert_eq!(last, Duration::from_secs(30) + WINDOW_MARGIN);
    }

    #[test]
    fn a_429_blocks_the_conversation_from_when_teams_answered() {
        let pacing = pacing(7, 60, 50);
        let answered = Instant::now();
        pacing.block("c", answered, Duration::from_secs(3));
        let wait = pacing
            .reserve(
                "c",
                answered + Duration::from_secs(1),
                Duration::from_secs(5),
            )
            .unwrap();
        assert_eq!(wait, Duration::from_secs(2));
    }

    #[test]
    fn the_app_limit_spans_conversations_evenly() {
        let pacing = pacing(7, 60, 3);
        let now = Instant::now();
        let gap = (Duration::from_secs(1) + WINDOW_MARGIN) / 3;
        let waits: Vec<Duration> = ["a", "b", "c", "d"]
            .iter()
            .map(|c| pacing.reserve(c, now, Duration::from_secs(5)).unwrap())
            .collect();
        assert_eq!(waits[..3], [Duration::ZERO, gap, gap * 2]);
        assert_eq!(
            waits[3],
            Duration::from_secs(1) + WINDOW_MARGIN,
            "the window"
        );
        assert!(pacing.reserve("e", now, Duration::ZERO).is_err());
    }

    #[test]
    fn a_token_is_renewed_before_it_expires() {
        let token = AppToken::default();
        let now = Instant::now();
        token.keep("t".to_owned(), now + Duration::from_secs(3600));
        assert_eq!(token.current(now).as_deref(), Some("t"));
        assert_eq!(token.current(now + Duration::from_secs(3600 - 299)), None);
        token.forget("t");
        assert_eq!(token.current(now), None);
    }
}
