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
use crate::send::Shared;
use crate::state::{Answer, PendingInteraction};

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
        let deferred = self
            .respond(
                &event_id,
                press.id,
                &press.token,
                &CreateInteractionResponse::Acknowledge,
            )
            .await;
        self.emit_and_wait(
            deferred,
            event_id,
            press.token,
            Answer::UpdateMessage,
            false,
            press.user.id.to_string(),
            press.channel_id.to_string(),
            InboundKind::Action {
                action_id,
                delivery_id: None,
            },
        );
    }

    async fn command(&self, command: CommandInteraction) {
        let event_id = command.id.to_string();
        let defer = CreateInteractionResponse::Defer(
            CreateInteractionResponseMessage::new().ephemeral(true),
        );
        let deferred = self
            .respond(&event_id, command.id, &command.token, &defer)
            .await;
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
        self.emit_and_wait(
            deferred,
            event_id,
            command.token,
            Answer::EditResponse,
            true,
            command.user.id.to_string(),
            command.channel_id.to_string(),
            InboundKind::Command {
                name: command.data.name.clone(),
                args,
            },
        );
    }

    async fn modal(&self, submission: ModalInteraction) {
        let event_id = submission.id.to_string();
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
        let deferred = self
            .respond(&event_id, submission.id, &submission.token, &response)
            .await;
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
        self.emit_and_wait(
            deferred,
            event_id,
            submission.token,
            answer,
            private,
            submission.user.id.to_string(),
            submission.channel_id.to_string(),
            InboundKind::Form {
                action_id: submission.data.custom_id.clone(),
                fields,
            },
        );
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
            Err(error) => {
                self.shared.host.log(
                    LogLevel::Warn,
                    format!("could not answer interaction {event_id} in time: {error}"),
                );
                false
            }
        }
    }

    /// Emits the event; when the interaction was deferred, keeps its token
    /// for the host's reply and arms the timeout that answers for the host
    /// if it stays silent.
    #[allow(clippy::too_many_arguments)]
    fn emit_and_wait(
        &self,
        deferred: bool,
        event_id: String,
        token: String,
        answer: Answer,
        private: bool,
        account: String,
        address: String,
        kind: InboundKind,
    ) {
        // Kept before emitting: the host may answer before `emit` returns.
        if deferred {
            self.shared.interactions.keep(
                event_id.clone(),
                PendingInteraction {
                    token,
                    answer,
                    private,
                },
            );
            let shared = Arc::clone(&self.shared);
            let id = event_id.clone();
            tokio::spawn(async move {
                tokio::time::sleep(shared.config.reply_timeout).await;
                if let Some(pending) = shared.interactions.take(&id) {
                    answer_for_a_silent_host(&shared, &id, pending).await;
                }
            });
        }
        self.shared.host.emit(&InboundEvent {
            event_id: None,
            channel: "discord".to_owned(),
            account,
            id: deferred.then_some(event_id),
            address: Some(address),
            kind,
        });
    }
}

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
