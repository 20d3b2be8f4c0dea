//! What people do in Discord, from the gateway: button presses, slash
//! commands and submitted modals. Each interaction is answered at once
//! (Discord allows three seconds), by deferring it or by opening a modal,
//! then emitted to the host; the interaction token is kept, by the event id,
//! until the host's reply arrives through `send` or the reply timeout ends.

use cascade_plugin_api::{InboundEvent, InboundKind, LogLevel};
use serenity::all::{
    ActionRowComponent, CommandDataOptionValue, CommandInteraction, ComponentInteraction, Context,
    CreateInteractionResponse, CreateInteractionResponseMessage, EventHandler, Interaction,
    ModalInteraction, Ready, ResumedEvent,
};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use crate::format::{self, escape_markdown};
use crate::send::{ApiError, Shared};
use crate::state::{Answer, PendingInteraction, blocking};

/// serenity's event handler: turns gateway events into the host's events.
pub struct Gateway {
    pub shared: Arc<Shared>,
}

#[serenity::async_trait]
impl EventHandler for Gateway {
    async fn interaction_create(&self, _ctx: Context, interaction: Interaction) {
        match interaction {
            Interaction::Component(press) => self.button(press).await,
            Interaction::Command(command) => self.command(command).await,
            Interaction::Modal(submission) => self.modal(submission).await,
            _ => {}
        }
    }

    async fn ready(&self, _ctx: Context, ready: Ready) {
        self.shared.host.log(
            LogLevel::Info,
            format!(
                "connected to the Discord gateway as {} (session ready)",
                ready.user.name
            ),
        );
    }

    async fn resume(&self, _ctx: Context, _: ResumedEvent) {
        self.shared
            .host
            .log(LogLevel::Info, "resumed the Discord gateway session");
    }
}

impl Gateway {
    async fn button(&self, press: ComponentInteraction) {
        let action_id = press.data.custom_id.clone();
        let event_id = press.id.to_string();
        if let Some(form) = self.shared.forms.get(&action_id) {
            // A form opens at once; the host hears of it when it is sent.
            match format::modal(&action_id, &form) {
                Ok(modal) => {
                    let modal = CreateInteractionResponse::Modal(modal);
                    self.respond(&event_id, press.id, &press.token, &modal)
                        .await;
                    return;
                }
                Err(error) => self.shared.host.log(
                    LogLevel::Warn,
                    format!(
                        "the form of a button cannot be a Discord modal ({error}); reporting the press instead"
                    ),
                ),
            }
        }
        self.store_and_respond(
            press.id,
            &CreateInteractionResponse::Acknowledge,
            press.token,
            Answer::UpdateMessage,
            false,
            press.user.id.to_string(),
            press.channel_id.to_string(),
            InboundKind::Action {
                action_id,
                delivery_id: None,
            },
        )
        .await;
    }

    async fn command(&self, command: CommandInteraction) {
        let defer = CreateInteractionResponse::Defer(
            CreateInteractionResponseMessage::new().ephemeral(true),
        );
        let args = command
            .data
            .options
            .iter()
            .filter_map(|option| match &option.value {
                CommandDataOptionValue::String(text) => Some(text.trim().to_owned()),
                CommandDataOptionValue::Integer(n) => Some(n.to_string()),
                _ => None,
            })
            .collect();
        self.store_and_respond(
            command.id,
            &defer,
            command.token,
            Answer::EditResponse,
            true,
            command.user.id.to_string(),
            command.channel_id.to_string(),
            InboundKind::Command {
                name: command.data.name.clone(),
                args,
            },
        )
        .await;
    }

    async fn modal(&self, submission: ModalInteraction) {
        // A modal opened from a button updates that button's message, like
        // the press itself would have; any other modal gets a response.
        let (response, answer, private) = if submission.message.is_some() {
            (
                CreateInteractionResponse::Acknowledge,
                Answer::UpdateMessage,
                false,
            )
        } else {
            (
                CreateInteractionResponse::Defer(
                    CreateInteractionResponseMessage::new().ephemeral(true),
                ),
                Answer::EditResponse,
                true,
            )
        };
        let fields: BTreeMap<String, String> = submission
            .data
            .components
            .iter()
            .flat_map(|row| &row.components)
            .filter_map(|component| match component {
                ActionRowComponent::InputText(input) => Some((
                    input.custom_id.clone(),
                    input.value.clone().unwrap_or_default(),
                )),
                _ => None,
            })
            .collect();
        self.store_and_respond(
            submission.id,
            &response,
            submission.token,
            answer,
            private,
            submission.user.id.to_string(),
            submission.channel_id.to_string(),
            InboundKind::Form {
                action_id: submission.data.custom_id.clone(),
                fields,
            },
        )
        .await;
    }

    /// Sends the immediate interaction response; says whether Discord took it.
    async fn respond(
        &self,
        event_id: &str,
        id: serenity::all::InteractionId,
        token: &str,
        response: &CreateInteractionResponse,
    ) -> bool {
        match self.shared.rest.respond(id, token, response).await {
            Ok(()) => true,
            // Answered already: by another serve's gateway session, which
            // Discord gave the same interaction (a form opens at once, so
            // each session tries). The person sees the one answer.
            Err(ApiError::Rejected { code: 40060, .. }) => {
                self.shared.host.log(
                    LogLevel::Debug,
                    format!("interaction {event_id} was answered by another session"),
                );
                false
            }
            Err(error) => {
                self.shared.host.log(
                    LogLevel::Warn,
                    format!("could not answer interaction {event_id} in time: {error}"),
                );
                false
            }
        }
    }

    /// Stores the interaction with the host (keyed by its id) before
    /// Discord is answered, then keeps its token for the host's reply,
    /// answers it with `response` (a deferral) and arms the timeout that
    /// answers for the host if it stays silent; one another serve stored
    /// first is left to that serve. When it cannot be stored the
    /// person is told to try again instead: Discord never sends an
    /// interaction twice, so nothing must look recorded that is not.
    #[allow(clippy::too_many_arguments)]
    async fn store_and_respond(
        &self,
        id: serenity::all::InteractionId,
        response: &CreateInteractionResponse,
        token: String,
        answer: Answer,
        private: bool,
        account: String,
        address: String,
        kind: InboundKind,
    ) {
        let event_id = id.to_string();
        // The host may answer as soon as the event is stored; its answer
        // waits until Discord has the deferral, so the token is kept (once
        // the event is known to be this serve's) before that.
        self.shared.responding.start(&event_id);
        let event = InboundEvent {
            event_id: Some(event_id.clone()),
            channel: "discord".to_owned(),
            account,
            id: Some(event_id.clone()),
            address: Some(address),
            kind,
        };
        let stored = blocking(|| self.shared.host.emit_durable_new(&event));
        if let Ok(false) = stored {
            // Stored already: another serve's gateway session got it too
            // (Discord gives every session of a shard each interaction),
            // and that serve keeps its token, answers it, handles it and
            // arms the reply timeout. Here nothing more: a second answer
            // Discord refuses (400, code 40060), and the kept tokens are
            // the store's, shared with that serve, which takes its own.
            self.shared.responding.finish(&event_id);
            self.shared.host.log(
                LogLevel::Debug,
                format!(
                    "interaction {event_id} was stored already; the serve that stored it answers it"
                ),
            );
            return;
        }
        if let Err(error) = stored {
            self.shared.responding.finish(&event_id);
            self.shared.host.log(
                LogLevel::Warn,
                format!("interaction {event_id} was not stored, so the person is asked to try again: {error}"),
            );
            let sorry = CreateInteractionResponse::Message(
                CreateInteractionResponseMessage::new()
                    .content(escape_markdown(NOT_RECORDED))
                    .ephemeral(true),
            );
            self.respond(&event_id, id, &token, &sorry).await;
            return;
        }
        self.shared.interactions.keep(
            event_id.clone(),
            PendingInteraction {
                token: token.clone(),
                answer,
                private,
            },
        );
        self.respond(&event_id, id, &token, response).await;
        self.shared.responding.finish(&event_id);
        let shared = Arc::clone(&self.shared);
        tokio::spawn(async move {
            tokio::time::sleep(shared.config.reply_timeout).await;
            if let Some(pending) = shared.interactions.take(&event_id) {
                answer_for_a_silent_host(&shared, &event_id, pending).await;
            }
        });
    }
}

const NOT_RECORDED: &str =
    "Sorry, that could not be recorded just now. Please try again in a minute.";

const NOT_ANSWERED: &str =
    "Sorry, that could not be handled just now. Please try again in a minute.";

/// The host did not reply within the reply timeout: the person sees a
/// message rather than a spinner that never ends.
async fn answer_for_a_silent_host(shared: &Shared, event_id: &str, pending: PendingInteraction) {
    let text = escape_markdown(NOT_ANSWERED);
    let result = match pending.answer {
        Answer::EditResponse => match format::command_edit(&text, &[]) {
            Ok(edit) => shared.rest.edit_original(&pending.token, &edit).await,
            Err(_) => return,
        },
        Answer::UpdateMessage => match format::followup(&text, &[], true) {
            Ok(message) => shared.rest.follow_up(&pending.token, &message).await,
            Err(_) => return,
        },
    };
    let outcome = match result {
        Ok(()) => "told the person to try again".to_owned(),
        Err(error) => format!("could not tell the person either: {error}"),
    };
    shared.host.log(
        LogLevel::Warn,
        format!(
            "no reply from the engine to interaction {event_id} within {}s; {outcome}",
            shared.config.reply_timeout.as_secs()
        ),
    );
}

/// How long `stop` gives the gateway to close cleanly.
pub const GATEWAY_CLOSE_WAIT: Duration = Duration::from_secs(3);
