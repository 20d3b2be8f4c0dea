//! What a running Telegram channel keeps between calls: the button presses
//! waiting for the host's answer, the pacing of messages within Telegram's
//! rate limits. Plain data behind locks: no I/O here (the messages already
//! posted for each send live in the host's plugin state, see `send`).
//! Pacing goes by tokio's clock (tests pause it); presses by the system's.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;
use teloxide::prelude::*;
use teloxide::types::{CallbackQueryId, MessageId};
use tokio::time::Instant;

/// A button press waiting for the host's answer: what answering it needs.
#[derive(Debug, Clone, PartialEq)]
pub struct Press {
    pub query_id: CallbackQueryId,
    pub chat: ChatId,
    /// The message the button was on, with its text as HTML and as shown,
    /// to put the status line below it. `None` when Telegram no longer
    /// shows the message to the bot (older than 48 hours).
    pub message: Option<PressedMessage>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct PressedMessage {
    pub id: MessageId,
    pub html: String,
    pub text: String,
}

/// Button presses waiting for the host's answer, by callback query id. In
/// memory, and (with [`Presses::kept_by`]) in the host's plugin state too,
/// so a press stored before a restart is still answered in place after it.
#[derive(Clone, Default)]
pub struct Presses {
    waiting: Arc<Mutex<HashMap<String, Waiting>>>,
    host: Option<cascade_plugin_api::Host>,
}

/// A press as the host's state keeps it.
#[derive(serde::Serialize, serde::Deserialize)]
struct KeptPress {
    chat: i64,
    message: Option<(i32, String, String)>,
}

struct Waiting {
    press: Press,
    /// Whether answerCallbackQuery was already called: a query is answered
    /// once, by the host's notice or empty when that came too late.
    answered: bool,
    at: std::time::Instant,
}

/// How long a press is remembered for an answer that comes late: the
/// spinner is stopped after `answer_within`, but the edit and the reply
/// text still go out when the host's answer arrives in this time.
const REMEMBER_PRESSES: Duration = Duration::from_secs(15 * 60);

impl Presses {
    /// Presses also kept in `host`'s plugin state.
    pub fn kept_by(host: cascade_plugin_api::Host) -> Presses {
        Presses {
            waiting: Arc::default(),
            host: Some(host),
        }
    }

    pub fn insert(&self, press: Press) {
        if let Some(host) = &self.host {
            let kept = KeptPress {
                chat: press.chat.0,
                message: press
                    .message
                    .as_ref()
                    .map(|m| (m.id.0, m.html.clone(), m.text.clone())),
            };
            let key = format!("press:{}", press.query_id.0);
            let value = serde_json::to_value(kept).expect("plain data");
            // A press not kept is still answered by this process.
            let _ = host.state_put(&key, &value, Some(REMEMBER_PRESSES));
        }
        let mut waiting = self.waiting.lock().unwrap_or_else(PoisonError::into_inner);
        waiting.retain(|_, w| w.at.elapsed() < REMEMBER_PRESSES);
        waiting.insert(
            press.query_id.0.clone(),
            Waiting {
                press,
                answered: false,
                at: std::time::Instant::now(),
            },
        );
    }

    /// Takes the press answered by the host. The flag says whether the
    /// callback query still needs answerCallbackQuery.
    pub fn take(&self, event_id: &str) -> Option<(Press, bool)> {
        let taken = {
            let mut waiting = self.waiting.lock().unwrap_or_else(PoisonError::into_inner);
            waiting.remove(event_id).map(|w| (w.press, !w.answered))
        };
        let Some(host) = &self.host else {
            return taken;
        };
        let key = format!("press:{event_id}");
        if taken.is_some() {
            let _ = host.state_delete(&key);
            return taken;
        }
        // Pressed before a restart: the spinner may still be turning.
        let kept: KeptPress = serde_json::from_value(host.state_get(&key).ok()??).ok()?;
        let _ = host.state_delete(&key);
        let press = Press {
            query_id: CallbackQueryId(event_id.to_owned()),
            chat: ChatId(kept.chat),
            message: kept.message.map(|(id, html, text)| PressedMessage {
                id: MessageId(id),
                html,
                text,
            }),
        };
        Some((press, true))
    }

    /// Marks a press as answered if it was not yet, saying whether it was
    /// this call that did: the timeout fallback answers only then.
    pub fn claim_answer(&self, query_id: &str) -> bool {
        let mut waiting = self.waiting.lock().unwrap_or_else(PoisonError::into_inner);
        match waiting.get_mut(query_id) {
            Some(w) if !w.answered => {
                w.answered = true;
                true
            }
            _ => false,
        }
    }
}

/// Spaces messages: at most one per `chat_interval` to a chat, and one per
/// `interval` over all chats. Slots are handed out in order of asking, so
/// a burst queues instead of meeting Telegram's 429s.
pub struct Pacing {
    interval: Duration,
    next: Mutex<Instant>,
    chat_interval: Duration,
    chats: Mutex<HashMap<ChatId, Instant>>,
}

impl Pacing {
    pub fn new(per_second: f64, chat_per_second: f64) -> Pacing {
        Pacing {
            interval: Duration::from_secs_f64(1.0 / per_second),
            next: Mutex::new(Instant::now()),
            chat_interval: Duration::from_secs_f64(1.0 / chat_per_second),
            chats: Mutex::new(HashMap::new()),
        }
    }

    /// Waits for this chat's turn, then for a turn over all chats. The two
    /// waits are taken one after the other so a chat that has to wait does
    /// not hold up the others.
    pub async fn wait(&self, chat: ChatId) {
        let now = Instant::now();
        let chat_slot = {
            let mut chats = self.chats.lock().unwrap_or_else(PoisonError::into_inner);
            if chats.len() > 10_000 {
                chats.retain(|_, next| *next > now);
            }
            let next = chats.entry(chat).or_insert(now);
            let slot = (*next).max(now);
            *next = slot + self.chat_interval;
            slot
        };
        tokio::time::sleep_until(chat_slot).await;
        let slot = {
            let mut next = self.next.lock().unwrap_or_else(PoisonError::into_inner);
            let slot = (*next).max(Instant::now());
            *next = slot + self.interval;
            slot
        };
        tokio::time::sleep_until(slot).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn pacing_spaces_messages_per_chat_and_overall() {
        let pacing = Pacing::new(10.0, 1.0);
        let start = Instant::now();
        pacing.wait(ChatId(1)).await;
        pacing.wait(ChatId(2)).await;
        assert_eq!(start.elapsed(), Duration::from_millis(100));
        pacing.wait(ChatId(1)).await;
        assert_eq!(start.elapsed(), Duration::from_secs(1));
    }
}
