//! What people do in the bot's chats, as the host's inbound events: button
//! presses (callback queries), commands and typed text in private chats.
//! `event_of` is pure; `poll` (getUpdates long polling) and `receive_posted`
//! (posts to cascade serve's webhook route) bring the updates in.

use cascade_plugin_api::{
    Host, InboundEvent, InboundKind, LogLevel, PollTurn, WebhookRequest, WebhookResponse,
};
use std::time::{Duration, Instant};
use teloxide::prelude::*;
use teloxide::types::{AllowedUpdate, Update, UpdateKind};
use teloxide::utils::render::RenderMessageTextHelper;
use tokio::sync::watch;

use crate::state::{Press, PressedMessage, Presses};

/// The inbound event an update stands for, and for a button press what is
/// kept to answer it. `None` for updates the host has no use for (group
/// chats, stickers, edits).
pub fn event_of(channel: &str, update: &Update) -> Option<(InboundEvent, Option<Press>)> {
    match &update.kind {
        UpdateKind::CallbackQuery(query) => {
            let action_id = query.data.clone()?;
            let message = query.message.as_ref();
            // A private chat's id is the user's id, so a press whose message
            // Telegram no longer sends is still answered in the right chat.
            let chat = message.map_or(ChatId(query.from.id.0 as i64), |m| m.chat().id);
            let pressed = message
                .and_then(|m| m.regular_message())
                .map(|m| PressedMessage {
                    id: m.id,
                    html: m.html_text().unwrap_or_default(),
                    text: m.text().unwrap_or_default().to_owned(),
                });
            let event = InboundEvent {
                event_id: Some(update.id.0.to_string()),
                channel: channel.to_owned(),
                account: query.from.id.to_string(),
                id: Some(query.id.0.clone()),
                address: Some(chat.to_string()),
                kind: InboundKind::Action {
                    action_id,
                    delivery_id: None,
                },
            };
            let press = Press {
                query_id: query.id.clone(),
                chat,
                message: pressed,
            };
            Some((event, Some(press)))
        }
        UpdateKind::Message(message) if message.chat.is_private() => {
            let from = message.from.as_ref()?;
            let text = message.text()?.trim();
            let kind = match text.strip_prefix('/') {
                Some(command) => {
                    let mut words = command.split_whitespace();
                    // `/link@cascade_bot 123` names the bot after the command.
                    let name = words.next()?.split('@').next()?.to_lowercase();
                    InboundKind::Command {
                        name,
                        args: words.map(str::to_owned).collect(),
                    }
                }
                None if text.is_empty() => return None,
                None => InboundKind::Text {
                    text: text.to_owned(),
                },
            };
            let event = InboundEvent {
                event_id: Some(update.id.0.to_string()),
                channel: channel.to_owned(),
                account: from.id.to_string(),
                id: Some(format!("m{}.{}", message.chat.id, message.id)),
                address: Some(message.chat.id.to_string()),
                kind,
            };
            Some((event, None))
        }
        _ => None,
    }
}

/// Everything that handles an update, for both ways updates arrive.
#[derive(Clone)]
pub struct Receiver {
    pub channel: String,
    pub host: Host,
    pub bot: Bot,
    pub presses: Presses,
    pub answer_within: Duration,
}

impl Receiver {
    /// Stores the update's event with the host (keyed by its update_id),
    /// returning only once it is stored; a press is remembered for the
    /// answer, and answered empty if the host has not answered within
    /// `answer_within`. `Err`: not stored, so Telegram must send it again.
    /// Blocks on the host: call it off the host's threads.
    pub fn receive(&self, update: &Update) -> Result<(), String> {
        let Some((event, press)) = event_of(&self.channel, update) else {
            return Ok(());
        };
        // Kept before the event is stored: the host may answer at once.
        let query_id = press.as_ref().map(|p| p.query_id.clone());
        if let Some(press) = press {
            self.presses.insert(press);
        }
        self.host
            .emit_durable(&event)
            .map_err(|e| format!("update {} was not stored: {e}", update.id.0))?;
        if let Some(query_id) = query_id {
            let (bot, presses, host, wait) = (
                self.bot.clone(),
                self.presses.clone(),
                self.host.clone(),
                self.answer_within,
            );
            tokio::spawn(async move {
                tokio::time::sleep(wait).await;
                if presses.claim_answer(&query_id.0)
                    && let Err(error) = bot.answer_callback_query(query_id).await
                {
                    host.log(
                        LogLevel::Warn,
                        format!(
                            "could not stop the spinner of an unanswered button press: {error}"
                        ),
                    );
                }
            });
        }
        Ok(())
    }
}

/// How long one ask for a turn to poll waits for it.
const TURN_WAIT: Duration = Duration::from_secs(1);
/// What a poll leaves of its turn: Telegram's poll timeout is whole
/// seconds, and its answer must arrive before the turn ends, so a poll
/// held to the end of its turn is the rare exception.
const TURN_MARGIN: Duration = Duration::from_secs(1);
/// A turn ending sooner than this is let run out, and the next asked for.
const SHORTEST_POLL: Duration = Duration::from_secs(2);

/// getUpdates long polling until `stop` turns true, in the turns the host
/// gives ([`Host::may_poll`](cascade_plugin_api::Host::may_poll)): several
/// cascade processes may run this instance on one store, and Telegram
/// answers a second getUpdates with 409, so only the one holding the turn
/// polls. A poll ends with its turn, and nothing it brings after the turn
/// is stored (the next poller gets it from Telegram again). Each update is
/// stored with the host before the offset moves past it (the next
/// getUpdates confirms it to Telegram), so an update is never lost to a
/// crash: one fetched but not confirmed comes again and the host stores it
/// once. On errors the loop waits longer each time, up to a minute.
pub async fn poll(receiver: Receiver, timeout: Duration, mut stop: watch::Receiver<bool>) {
    let mut offset: i32 = 0;
    let mut backoff = Duration::from_secs(1);
    let mut had_turn = false;
    loop {
        if *stop.borrow() {
            return;
        }
        let turn = tokio::task::block_in_place(|| receiver.host.may_poll(TURN_WAIT));
        let ends = match turn {
            Ok(PollTurn::Poll { within }) => within.map(|within| Instant::now() + within),
            Ok(PollTurn::NotNow) => {
                if had_turn {
                    had_turn = false;
                    receiver.host.log(
                        LogLevel::Info,
                        "another cascade process polls Telegram now; this one stopped polling",
                    );
                }
                // The host waited for a turn already; a moment's pause keeps
                // a host that answers at once from spinning this loop.
                tokio::select! {
                    _ = stop.wait_for(|stopped| *stopped) => return,
                    _ = tokio::time::sleep(Duration::from_millis(50)) => {}
                }
                continue;
            }
            Err(error) => {
                receiver.host.log(
                    LogLevel::Warn,
                    format!(
                        "the host did not give a turn to poll ({error}); asking again in {}s",
                        backoff.as_secs()
                    ),
                );
                let wait = backoff;
                backoff = (backoff * 2).min(Duration::from_secs(60));
                tokio::select! {
                    _ = stop.wait_for(|stopped| *stopped) => return,
                    _ = tokio::time::sleep(wait) => {}
                }
                continue;
            }
        };
        if !had_turn && ends.is_some() {
            had_turn = true;
            receiver
                .host
                .log(LogLevel::Info, "this process polls Telegram now");
        }
        let timeout_seconds = match ends {
            Some(ends) => {
                let left = ends.saturating_duration_since(Instant::now());
                if left < SHORTEST_POLL {
                    // Too short to poll in: the turn is renewed meanwhile, or ends.
                    tokio::select! {
                        _ = stop.wait_for(|stopped| *stopped) => return,
                        _ = tokio::time::sleep(left.min(Duration::from_millis(200))) => {}
                    }
                    continue;
                }
                // Answered by Telegram before the turn ends.
                (left - TURN_MARGIN).min(timeout).as_secs().max(1)
            }
            None => timeout.as_secs().max(1),
        };
        let timeout_seconds = u32::try_from(timeout_seconds).unwrap_or(u32::MAX);
        let request = receiver
            .bot
            .get_updates()
            .offset(offset)
            .timeout(timeout_seconds)
            .allowed_updates([AllowedUpdate::Message, AllowedUpdate::CallbackQuery]);
        let turn_over = async {
            match ends {
                Some(ends) => tokio::time::sleep_until(ends.into()).await,
                None => std::future::pending().await,
            }
        };
        let updates = tokio::select! {
            _ = stop.wait_for(|stopped| *stopped) => return,
            // The turn ended first: the poll is dropped unanswered.
            _ = turn_over => continue,
            updates = request.into_future() => updates,
        };
        match updates {
            Ok(updates) => {
                let mut refused = None;
                for update in &updates {
                    if ends.is_some_and(|ends| Instant::now() >= ends) {
                        // The turn is over: whoever polls next stores the rest.
                        break;
                    }
                    let received = tokio::task::block_in_place(|| receiver.receive(update));
                    match received {
                        Ok(()) => offset = update.id.as_offset(),
                        Err(reason) => {
                            refused = Some(reason);
                            break;
                        }
                    }
                }
                match refused {
                    None => backoff = Duration::from_secs(1),
                    Some(reason) => {
                        receiver.host.log(
                            LogLevel::Warn,
                            format!(
                                "{reason}; asking Telegram for it again in {}s",
                                backoff.as_secs()
                            ),
                        );
                        let wait = backoff;
                        backoff = (backoff * 2).min(Duration::from_secs(60));
                        tokio::select! {
                            _ = stop.wait_for(|stopped| *stopped) => return,
                            _ = tokio::time::sleep(wait) => {}
                        }
                    }
                }
            }
            Err(error) => {
                let wait = match &error {
                    teloxide::RequestError::RetryAfter(after) => after.duration(),
                    _ => backoff,
                };
                receiver.host.log(
                    LogLevel::Warn,
                    format!(
                        "getUpdates failed, trying again in {}s: {error}",
                        wait.as_secs_f64()
                    ),
                );
                backoff = (backoff * 2).min(Duration::from_secs(60));
                tokio::select! {
                    _ = stop.wait_for(|stopped| *stopped) => return,
                    _ = tokio::time::sleep(wait) => {}
                }
            }
        }
    }
}

/// Webhook mode: tells Telegram to post updates (with the secret token) to
/// `url`, the public address of cascade serve's `/webhooks/{channel}`.
pub async fn set_webhook(bot: &Bot, url: url::Url, secret: &str) -> Result<(), String> {
    bot.set_webhook(url)
        .secret_token(secret.to_owned())
        .allowed_updates([AllowedUpdate::Message, AllowedUpdate::CallbackQuery])
        .await
        .map(|_| ())
        .map_err(|e| format!("Telegram refused the webhook (setWebhook): {e}"))
}

/// Webhook mode, until `stopped`: every `check`, asks Telegram whether the
/// webhook is still set (getWebhookInfo) and sets it again when there is
/// none. Each `cascade serve` stopping deletes the webhook, so that
/// Telegram keeps the updates while nobody receives them; with several
/// serves behind one URL the others then set it again within `check`, and
/// Telegram posts what it kept. A webhook set to another URL is someone
/// else's (another deployment with the same bot): it is named in the log,
/// not taken over.
pub async fn keep_webhook(
    bot: Bot,
    host: Host,
    url: url::Url,
    secret: String,
    check: Duration,
    mut stopped: watch::Receiver<bool>,
) {
    let mut warned_of: Option<String> = None;
    // Said once for a run of failed checks, not at every one.
    let mut failing = false;
    loop {
        tokio::select! {
            _ = stopped.wait_for(|stop| *stop) => return,
            () = tokio::time::sleep(check) => {}
        }
        let info = match bot.get_webhook_info().await {
            Ok(info) => info,
            Err(error) => {
                if !failing {
                    host.log(
                        LogLevel::Warn,
                        format!(
                            "could not check the webhook is still set (getWebhookInfo): {error}; tried again every {} s",
                            check.as_secs_f64()
                        ),
                    );
                    failing = true;
                }
                continue;
            }
        };
        if failing {
            host.log(LogLevel::Info, "the webhook can be checked again");
            failing = false;
        }
        match info.url {
            None => match set_webhook(&bot, url.clone(), &secret).await {
                Ok(()) => host.log(
                    LogLevel::Info,
                    format!(
                        "Telegram had no webhook (a serve that stopped deletes it); set it again to {url}"
                    ),
                ),
                Err(error) => host.log(LogLevel::Warn, error),
            },
            Some(set) if set != url => {
                if warned_of.as_deref() != Some(set.as_str()) {
                    host.log(
                        LogLevel::Warn,
                        format!(
                            "Telegram posts this bot's updates to {set}, not to this channel's webhook_url {url}: another deployment uses the same bot token; left as it is"
                        ),
                    );
                    warned_of = Some(set.to_string());
                }
            }
            Some(_) => warned_of = None,
        }
    }
}

/// An update Telegram posted to the webhook: refused unless it carries the
/// secret token; otherwise stored like a polled one, and answered 200 only
/// once the host has stored it (a 500 makes Telegram post it again). Runs
/// on a blocking thread of the plugin's runtime (a press spawns its answer
/// timer; storing blocks).
pub fn receive_posted(
    receiver: &Receiver,
    secret: &str,
    request: &WebhookRequest,
) -> WebhookResponse {
    // Checked again with the body: the host asks first only because the
    // manifest says so, and a host that does not would skip it.
    if let Err(refusal) = check_posted_headers(secret, request) {
        return refusal;
    }
    match serde_json::from_str::<Update>(&request.body) {
        Ok(update) => match receiver.receive(&update) {
            Ok(()) => WebhookResponse {
                status: 200,
                headers: Default::default(),
                body: String::new(),
            },
            Err(reason) => {
                receiver.host.log(LogLevel::Warn, reason);
                WebhookResponse::text(500, "the update could not be stored; send it again")
            }
        },
        Err(error) => {
            receiver.host.log(
                LogLevel::Warn,
                format!("the webhook received a post that is not an update: {error}"),
            );
            WebhookResponse::text(400, "not a Telegram update")
        }
    }
}

/// A post to the webhook is a POST carrying the secret token; the headers
/// alone tell, so the host asks before it reads the body.
pub fn check_posted_headers(secret: &str, request: &WebhookRequest) -> Result<(), WebhookResponse> {
    if request.method != "POST" {
        return Err(WebhookResponse::text(405, "only POST is accepted"));
    }
    let given = request.header("x-telegram-bot-api-secret-token");
    if !given.is_some_and(|given| same_secret(given, secret)) {
        return Err(WebhookResponse::text(401, "unauthorized"));
    }
    Ok(())
}

/// Compares secrets in time that depends only on their lengths.
fn same_secret(given: &str, secret: &str) -> bool {
    given.len() == secret.len()
        && given
            .bytes()
            .zip(secret.bytes())
            .fold(0u8, |differ, (a, b)| differ | (a ^ b))
            == 0
}

/// Bodies posted to the webhook (or polled), fed mutated: reading them as
/// updates and turning them into events never panics.
#[cfg(test)]
mod fuzz {
    use super::*;
    use proptest::prelude::*;

    const USER: &str = r#"{"id":7001,"is_bot":false,"first_name":"Sam","username":"sam_w"}"#;
    const CHAT: &str = r#"{"id":7001,"type":"private","first_name":"Sam"}"#;

    fn samples() -> Vec<String> {
        let message = format!(
            r#"{{"message_id":12,"from":{USER},"chat":{CHAT},"date":1774602000,"text":"/ack 42","entities":[{{"type":"bot_command","offset":0,"length":4}}]}}"#
        );
        vec![
            format!(r#"{{"update_id":500000,"message":{message}}}"#),
            format!(
                r#"{{"update_id":500001,"callback_query":{{"id":"4000000000000000001","from":{USER},"message":{message},"chat_instance":"-1","data":"a:1.2.AbC"}}}}"#
            ),
            format!(
                r#"{{"update_id":500002,"message":{{"message_id":13,"from":{USER},"chat":{CHAT},"date":1774602000,"text":"link ABCD-1234"}}}}"#
            ),
        ]
    }

    #[test]
    fn the_samples_are_updates_with_events() {
        for sample in samples() {
            let update: Update = serde_json::from_str(&sample).unwrap();
            assert!(event_of("telegram", &update).is_some(), "{sample}");
        }
    }

    proptest! {
        #[test]
        fn mutated_updates_never_panic(
            which in 0usize..3,
            edits in proptest::collection::vec((any::<usize>(), "[\\PC\"{}\\[\\]:,0-9-]{0,6}", 0usize..8), 1..5),
        ) {
            let mut body = samples()[which].clone();
            for (at, insert, delete) in edits {
                let mut at = at % (body.len() + 1);
                while !body.is_char_boundary(at) {
                    at -= 1;
                }
                let mut end = (at + delete).min(body.len());
                while !body.is_char_boundary(end) {
                    end += 1;
                }
                body.replace_range(at..end, &insert);
            }
            if let Ok(update) = serde_json::from_str::<Update>(&body) {
                let _ = event_of("telegram", &update);
            }
        }
    }
}
