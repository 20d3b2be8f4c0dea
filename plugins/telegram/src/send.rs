//! One send's I/O: post the chunks of a message in order within Telegram's
//! rate limits, remember which went out so a retry does not post them
//! twice, answer button presses (answerCallbackQuery, the status edit), and
//! turn Bot API errors into the host's outcomes.

use cascade_plugin_api::{Host, LogLevel, Reply, SendRequest, SendResult};
use teloxide::prelude::*;
use teloxide::types::{InlineKeyboardMarkup, MessageId, ParseMode};
use teloxide::{ApiError, RequestError};

use crate::format::{html_chunks, keyboard, provider_id, with_status};
use crate::state::{Pacing, Press, PressedMessage, Presses};

/// How long the posted ids of a send are kept: longer than the host keeps
/// retrying one delivery.
const REMEMBER_POSTED: std::time::Duration = std::time::Duration::from_secs(24 * 60 * 60);

/// Runs a blocking call to the host from async code without stalling the
/// runtime's other tasks.
fn blocking<T>(f: impl FnOnce() -> T) -> T {
    match tokio::runtime::Handle::try_current().map(|h| h.runtime_flavor()) {
        Ok(tokio::runtime::RuntimeFlavor::MultiThread) => tokio::task::block_in_place(f),
        _ => f(),
    }
}

/// Sends messages and answers through one bot.
pub struct Sender {
    pub bot: Bot,
    pub pacing: Pacing,
    pub presses: Presses,
    pub host: Host,
}

impl Sender {
    pub fn new(bot: Bot, pacing: Pacing, presses: Presses, host: Host) -> Sender {
        Sender {
            bot,
            pacing,
            presses,
            host,
        }
    }

    /// The message ids already posted under `key`, kept in the host's
    /// plugin state so a retry after a restart posts only what is missing.
    fn posted(&self, key: &str) -> Result<Vec<i32>, String> {
        let value = blocking(|| self.host.state_get(&format!("posted:{key}")))
            .map_err(|e| format!("could not read which parts were already sent: {e}"))?;
        Ok(value
            .and_then(|v| serde_json::from_value(v).ok())
            .unwrap_or_default())
    }

    fn keep_posted(&self, key: &str, ids: &[i32]) -> Result<(), String> {
        let value = serde_json::json!(ids);
        blocking(|| {
            self.host
                .state_put(&format!("posted:{key}"), &value, Some(REMEMBER_POSTED))
        })
        .map_err(|e| format!("could not keep which parts were sent: {e}"))
    }

    /// Delivers one send request and says how it went.
    pub async fn deliver(&self, request: &SendRequest) -> SendResult {
        let Ok(chat) = request.recipient.address.trim().parse::<i64>().map(ChatId) else {
            return failed(format!(
                "the address \"{}\" is not a Telegram chat id (a whole number); the person should link their chat again with /link",
                request.recipient.address
            ));
        };
        let (mut chunks, buttons) = match (html_chunks(request), keyboard(&request.actions)) {
            (Ok(chunks), Ok(buttons)) => (chunks, buttons),
            (Err(reason), _) | (_, Err(reason)) => return failed(reason),
        };
        let mut edited = None;
        if let Some(reply) = &request.reply {
            match self.answer_press(reply).await {
                Ok((message, status_message)) => {
                    edited = message;
                    chunks.splice(0..0, status_message);
                }
                Err(reason) => return failed(reason),
            }
            chunks.retain(|chunk| !chunk.trim().is_empty());
        }
        if chunks.is_empty() {
            return SendResult::Delivered {
                provider_id: edited.map(|id: MessageId| id.0.to_string()),
            };
        }
        self.post(chat, &request.idempotency_key, &chunks, buttons)
            .await
    }

    /// Posts `chunks` in order, the last with `buttons`, skipping those a
    /// previous attempt under `key` already posted.
    async fn post(
        &self,
        chat: ChatId,
        key: &str,
        chunks: &[String],
        buttons: Option<InlineKeyboardMarkup>,
    ) -> SendResult {
        let mut ids = match self.posted(key) {
            Ok(ids) => ids,
            // Posting without knowing could post parts twice.
            Err(reason) => return retry(reason),
        };
        for (n, chunk) in chunks.iter().enumerate().skip(ids.len()) {
            self.pacing.wait(chat).await;
            let mut message = self
                .bot
                .send_message(chat, chunk)
                .parse_mode(ParseMode::Html);
            if n + 1 == chunks.len()
                && let Some(buttons) = &buttons
            {
                message = message.reply_markup(buttons.clone());
            }
            match message.await {
                Ok(sent) => {
                    ids.push(sent.id.0);
                    if let Err(reason) = self.keep_posted(key, &ids) {
                        self.host.log(LogLevel::Warn, reason);
                    }
                }
                Err(error) => {
                    let outcome = outcome_of(&error);
                    if n > 0 {
                        self.host.log(
                            LogLevel::Info,
                            format!(
                                "part {} of {} was not sent ({error}); the parts already sent are not sent again",
                                n + 1,
                                chunks.len()
                            ),
                        );
                    }
                    return outcome;
                }
            }
        }
        SendResult::Delivered {
            provider_id: Some(provider_id(&ids)),
        }
    }

    /// Answers the button press `reply` is for, if it is one: stops the
    /// spinner with the notice (unless the fallback already did) and puts
    /// the status below the pressed message in place of its buttons.
    /// Returns the edited message and, when the status did not fit in it,
    /// the status as a chunk to post.
    async fn answer_press(
        &self,
        reply: &Reply,
    ) -> Result<(Option<MessageId>, Option<String>), String> {
        let Some((press, needs_answer)) = blocking(|| self.presses.take(&reply.event_id)) else {
            return Ok((None, None));
        };
        if needs_answer {
            let mut answer = self.bot.answer_callback_query(press.query_id.clone());
            if let Some(notice) = &reply.notice {
                answer = answer.text(notice);
            }
            if let Err(error) = answer.await {
                self.host.log(
                    LogLevel::Warn,
                    format!("could not answer a button press: {error}"),
                );
            }
        }
        let (Some(status), Some(message)) = (&reply.status, &press.message) else {
            return Ok((None, None));
        };
        let keep = keyboard(&reply.keep_actions)?;
        Ok(self.edit_status(&press, message, status, keep).await)
    }

    async fn edit_status(
        &self,
        press: &Press,
        message: &PressedMessage,
        status: &str,
        keep: Option<InlineKeyboardMarkup>,
    ) -> (Option<MessageId>, Option<String>) {
        self.pacing.wait(press.chat).await;
        let (edit, overflow) = match with_status(&message.html, &message.text, status) {
            Some(text) => {
                let mut edit = self
                    .bot
                    .edit_message_text(press.chat, message.id, text)
                    .parse_mode(ParseMode::Html);
                edit.reply_markup = keep;
                (edit.await.map(drop), None)
            }
            None => {
                let mut edit = self.bot.edit_message_reply_markup(press.chat, message.id);
                edit.reply_markup = keep;
                let status = teloxide::utils::html::escape(status);
                (edit.await.map(drop), Some(status))
            }
        };
        match edit {
            Ok(()) => {}
            Err(RequestError::Api(ApiError::MessageNotModified)) => {}
            Err(error) => self.host.log(
                LogLevel::Warn,
                format!("could not show the status on the pressed message: {error}"),
            ),
        }
        (Some(message.id), overflow)
    }
}

fn failed(reason: String) -> SendResult {
    SendResult::Failed {
        reason,
        unreachable: false,
    }
}

fn retry(reason: impl Into<String>) -> SendResult {
    SendResult::Retry {
        reason: reason.into(),
        retry_after_ms: None,
    }
}

/// What a Bot API error means for the send. Telegram's own words are kept
/// in the reason; teloxide has already taken the token out of URLs.
pub fn outcome_of(error: &RequestError) -> SendResult {
    match error {
        RequestError::RetryAfter(after) => SendResult::Retry {
            reason: format!("Telegram asked to slow down (429), retry after {after}"),
            retry_after_ms: Some(u64::try_from(after.duration().as_millis()).unwrap_or(u64::MAX)),
        },
        RequestError::MigrateToChatId(to) => failed(format!(
            "the group became a supergroup with chat id {to}; link the chat again"
        )),
        RequestError::Network(error) if error.is_timeout() => {
            retry("the Bot API did not answer in time")
        }
        RequestError::Network(error) => retry(format!("could not reach the Bot API: {error}")),
        RequestError::InvalidJson { .. } => {
            retry("the Bot API answered with something other than its JSON (a proxy's error page?)")
        }
        RequestError::Io(error) => retry(format!("I/O error talking to the Bot API: {error}")),
        RequestError::Api(error) => {
            let description = match error {
                ApiError::Unknown(description) => description.clone(),
                known => known.to_string(),
            };
            let unreachable = matches!(
                error,
                ApiError::BotBlocked
                    | ApiError::BotKicked
                    | ApiError::BotKickedFromSupergroup
                    | ApiError::UserDeactivated
                    | ApiError::CantInitiateConversation
                    | ApiError::CantTalkWithBots
                    | ApiError::ChatNotFound
            ) || description.starts_with("Forbidden");
            if unreachable {
                SendResult::Failed {
                    reason: description,
                    unreachable: true,
                }
            } else if description.starts_with("Unauthorized") {
                failed(format!(
                    "Telegram refused the bot token ({description}): check the channel's token secret"
                ))
            } else if description.starts_with("Bad Request") || description.starts_with("Not Found")
            {
                failed(description)
            } else {
                // 5xx (Internal Server Error, Bad Gateway), 409 and others
                // Telegram does not document as final.
                retry(format!("the Bot API failed: {description}"))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use teloxide::types::Seconds;

    #[test]
    fn a_429_is_a_retry_after_telegram_s_seconds_in_milliseconds() {
        assert_eq!(
            outcome_of(&RequestError::RetryAfter(Seconds::from_seconds(7))),
            SendResult::Retry {
                reason: "Telegram asked to slow down (429), retry after 7s".to_owned(),
                retry_after_ms: Some(7000)
            }
        );
    }

    #[test]
    fn a_blocked_bot_means_the_person_is_unreachable_here() {
        assert_eq!(
            outcome_of(&RequestError::Api(ApiError::BotBlocked)),
            SendResult::Failed {
                reason: "Forbidden: bot was blocked by the user".to_owned(),
                unreachable: true
            }
        );
        assert!(matches!(
            outcome_of(&RequestError::Api(ApiError::Unknown(
                "Forbidden: some new reason".to_owned()
            ))),
            SendResult::Failed {
                unreachable: true,
                ..
            }
        ));
    }

    #[test]
    fn a_bad_request_fails_with_telegram_s_description() {
        assert_eq!(
            outcome_of(&RequestError::Api(ApiError::Unknown(
                "Bad Request: can't parse entities: Unsupported start tag \"h1\" at byte offset 0"
                    .to_owned()
            ))),
            failed(
                "Bad Request: can't parse entities: Unsupported start tag \"h1\" at byte offset 0"
                    .to_owned()
            )
        );
    }

    #[test]
    fn server_errors_are_retried() {
        for description in ["Internal Server Error", "Bad Gateway", "Gateway Timeout"] {
            assert!(matches!(
                outcome_of(&RequestError::Api(ApiError::Unknown(
                    description.to_owned()
                ))),
                SendResult::Retry {
                    retry_after_ms: None,
                    ..
                }
            ));
        }
    }

    #[test]
    fn a_refused_token_names_the_secret_to_check() {
        let outcome = outcome_of(&RequestError::Api(ApiError::Unknown(
            "Unauthorized".to_owned(),
        )));
        let SendResult::Failed { reason, .. } = outcome else {
            panic!("{outcome:?}")
        };
        assert!(reason.contains("token secret"), "{reason}");
    }
}
