//! One handler for each kind of inbound event (a command, typed text, a
//! pressed button, a submitted form); [`Desk::handle`] only dispatches.

use super::conversation::{Draft, Said};
use super::{
    ACK_USAGE, ActionRef, Answer, ChatCommand, Conversation, Desk, HOW_TO_LINK, Handled,
    InboundOutcome, Refusal, help, legacy_hash,
};
use crate::ack::{CASCADE_METHODS, CascadeForm, FieldProblem, check_cascade};
use crate::buttons::truncate;
use crate::delivery::RolloutRuntime;
use crate::respond::{CheckChoice, Checked, Denied, Refused, Unavailable, Via, covering};
use cascade_plugin_api::Action;
use cascade_store::{AckMethod, AckOutcome, CodeRefusal, Evidence, Outbox, Store, TeamPosts};
use std::collections::BTreeMap;
use std::sync::Arc;

/// The longest part of a section quoted after a wrong answer, in
/// characters: a chat message stays well inside Telegram's 4,096.
const MAX_SECTION_CHARS: usize = 1500;

/// The longest label of an answer's button, in characters: Discord allows
/// 80; the option's words are in full in the message.
const MAX_CHECK_LABEL_CHARS: usize = 80;

/// Where an inbound event came from, and when it is handled.
#[derive(Debug, Clone, Copy)]
pub(super) struct Origin<'e> {
    /// The identity kind accounts are linked under (e.g. `telegram`).
    pub identity: &'e str,
    /// The chat account that sent the event.
    pub account: &'e str,
    /// The channel instance it came through.
    pub channel: &'e str,
    /// The event's id when it came through the store's inbox.
    pub event_id: Option<&'e str>,
    pub now: i64,
}

impl<S: Evidence + Outbox + Store + TeamPosts + 'static> Desk<'_, S> {
    /// A command, parsed once into a [`ChatCommand`].
    pub(super) async fn command(
        &self,
        command: ChatCommand,
        from: Origin<'_>,
    ) -> Result<Handled, Unavailable> {
        match command {
            ChatCommand::Link { code } => self.link(code.as_deref(), from).await,
            ChatCommand::Start => self.welcome(from).await,
            ChatCommand::Help => Ok(Handled {
                outcome: InboundOutcome::Ignored,
                answer: Answer::text(self.help(from)),
            }),
            ChatCommand::Cancel => Ok(self.cancel(from)),
            ChatCommand::Pending => self.pending(from).await,
            ChatCommand::Ack { item } => self.ack_command(&item, from).await,
            ChatCommand::Unknown(_) => Ok(Handled {
                outcome: InboundOutcome::Ignored,
                answer: Answer::text(format!("I don't know that command.\n\n{}", self.help(from))),
            }),
        }
    }

    /// The help for the channel the event came through.
    fn help(&self, from: Origin<'_>) -> String {
        help(
            self.world
                .routes
                .get(from.channel)
                .is_none_or(|route| !route.forms),
        )
    }

    /// A bare `/start`: a welcome, and how to link when this account is
    /// not linked yet.
    async fn welcome(&self, from: Origin<'_>) -> Result<Handled, Unavailable> {
        let linked = self
            .store
            .person_for_account(from.identity, from.account)
            .await?
            .is_some();
        let text = if linked {
            "Welcome back: this chat is linked to you, and learning from your partnership arrives here. Send /pending to see anything waiting for you, or /help.".to_owned()
        } else {
            format!(
                "Welcome. This bot brings you learning from your safeguarding partnership, which you can acknowledge with one tap.\n\n{HOW_TO_LINK}"
            )
        };
        Ok(Handled {
            outcome: InboundOutcome::Ignored,
            answer: Answer::text(text),
        })
    }

    /// Text typed outside a command: the next answer of a conversation in
    /// progress, if there is one.
    pub(super) async fn text(&self, text: &str, from: Origin<'_>) -> Result<Handled, Unavailable> {
        let Origin {
            account,
            channel,
            now,
            ..
        } = from;
        match self.conversations.take(channel, account, now) {
            Some(Conversation::Confirm(draft)) => {
                self.converse(draft, Said::Text(text), channel, account, now)
                    .await
            }
            Some(Conversation::Example {
                rollout_id,
                person_id,
                follow_up,
                ..
            }) => {
                self.example(
                    rollout_id, person_id, follow_up, text, channel, account, now,
                )
                .await
            }
            Some(Conversation::Check {
                delivery_id,
                question,
                seen,
                ..
            }) => match text.trim().trim_end_matches('.').parse::<u32>() {
                Ok(chosen) => {
                    let choice = CheckChoice {
                        question,
                        chosen,
                        seen,
                    };
                    self.check(delivery_id, Some(choice), AckMethod::Command, from)
                        .await
                }
                Err(_) => {
                    self.conversations.keep(
                        channel,
                        account,
                        Conversation::Check {
                            delivery_id,
                            question,
                            seen,
                            touched_at: now,
                        },
                    );
                    Ok(Handled {
                        outcome: InboundOutcome::Asked,
                        answer: Answer::text(
                            "Please answer with the number of your choice, for example 2, or use the buttons, or send /cancel.",
                        ),
                    })
                }
            },
            None => Ok(Handled {
                outcome: InboundOutcome::Ignored,
                answer: Answer::text(
                    "Use the buttons on a message, or send /pending to see what is waiting for you, or /help.",
                ),
            }),
        }
    }

    /// A pressed button, by what its signed id says it does.
    pub(super) async fn action(
        &self,
        action_id: &str,
        from: Origin<'_>,
    ) -> Result<Handled, Unavailable> {
        let Some(action) = self.keys.open(action_id) else {
            return self.forged(from).await;
        };
        match action {
            ActionRef::Choice(choice) => self.choice(&choice, from).await,
            ActionRef::Post(post_id) => self.acknowledge_post(post_id, from).await,
            ActionRef::Ack(delivery_id) => self.ack_button(delivery_id, from).await,
            ActionRef::ListAck(delivery_id) => self.list_ack_button(delivery_id, from).await,
            ActionRef::Confirm(delivery_id) => self.confirm_button(delivery_id, from).await,
            ActionRef::Answer(delivery_id, n) => self.answer_button(delivery_id, n, from).await,
            ActionRef::Check(delivery_id, question, chosen, seen) => {
                let choice = CheckChoice {
                    question,
                    chosen,
                    seen,
                };
                self.check(delivery_id, Some(choice), AckMethod::Button, from)
                    .await
            }
            ActionRef::Refresh(delivery_id, chosen, seen) => {
                self.refresher(delivery_id, (chosen, seen), from).await
            }
            ActionRef::Reason(delivery_id, n) => self.reason_button(delivery_id, n, from).await,
        }
    }

    /// A submitted cascade confirmation form: checked like the web form,
    /// recorded, or answered with its problems.
    pub(super) async fn form(
        &self,
        action_id: &str,
        fields: &BTreeMap<String, String>,
        from: Origin<'_>,
    ) -> Result<Handled, Unavailable> {
        let Some(ActionRef::Confirm(delivery_id)) = self.keys.open(action_id) else {
            return self.forged(from).await;
        };
        let (person, delivery) = match self.recipient(delivery_id, from).await? {
            Ok(found) => found,
            Err(refused) => return Ok(refused),
        };
        let teams = match self.champion_teams(&person, delivery_id, from).await? {
            Ok(teams) => teams,
            Err(refused) => return Ok(refused),
        };
        let form = cascade_form(fields, &teams);
        match check_cascade(&form, &teams, self.today(from.now), self.rollouts.guard()) {
            Ok(checked) => {
                let title = self.title(&delivery.rollout_id).await;
                self.record_cascade(
                    person,
                    delivery.item_id,
                    &title,
                    &teams,
                    checked,
                    from.channel,
                    from.now,
                )
                .await
            }
            Err(problems) => Ok(form_problems(&problems)),
        }
    }

    /// `/link CODE`: redeems the one-time code for this account.
    async fn link(&self, code: Option<&str>, from: Origin<'_>) -> Result<Handled, Unavailable> {
        let Origin {
            identity,
            account,
            channel,
            now,
            ..
        } = from;
        let Some(code) = code else {
            return Ok(Handled {
                outcome: InboundOutcome::Ignored,
                answer: Answer::text(HOW_TO_LINK),
            });
        };
        match self
            .store
            .redeem_link_code(
                &self.link_codes.hash(code),
                &legacy_hash(code),
                identity,
                account,
                now,
            )
            .await?
        {
            Ok(person_id) => {
                tracing::info!(channel, person = %person_id, "linked a chat account");
                self.world.link(identity, &person_id, account);
                let name = self
                    .world
                    .person(&person_id)
                    .map(|p| p.display_name.clone())
                    .unwrap_or_default();
                Ok(Handled {
                    outcome: InboundOutcome::Linked { person_id },
                    answer: Answer::text(format!(
                        "Thank you, {name}: this chat is now linked to you. Learning from your partnership will arrive here. Send /pending to see anything waiting for you."
                    )),
                })
            }
            Err(refusal) => {
                let reason = match refusal {
                    CodeRefusal::Unknown => Refusal::UnknownCode,
                    CodeRefusal::Expired => Refusal::ExpiredCode,
                    CodeRefusal::AlreadyUsed => Refusal::UsedCode,
                };
                tracing::warn!(channel, reason = reason.code(), "refused a link code");
                Ok(Handled::refused(reason))
            }
        }
    }

    /// `/cancel`: ends the conversation in progress, if any.
    fn cancel(&self, from: Origin<'_>) -> Handled {
        let text = match self
            .conversations
            .take(from.channel, from.account, from.now)
        {
            Some(Conversation::Confirm(_)) => "Cancelled. Nothing was recorded.",
            Some(Conversation::Example { .. }) => "Fine: your answer is kept without an example.",
            Some(Conversation::Check { .. }) => {
                "Stopped. Your acknowledgement is not recorded yet: press Acknowledge on the item, or send /ack with its id, to carry on."
            }
            None => "There was nothing to cancel.",
        };
        Handled {
            outcome: InboundOutcome::Cancelled,
            answer: Answer::text(text),
        }
    }

    /// `/pending`: lists what waits for the linked person.
    async fn pending(&self, from: Origin<'_>) -> Result<Handled, Unavailable> {
        let person = match self.linked_person(from).await? {
            Ok(person) => person,
            Err(refused) => return Ok(refused),
        };
        let pending = self.store.pending_items(&person).await?;
        self.list_pending(person, pending).await
    }

    /// `/ack ITEM`: acknowledges the latest pending delivery of that item.
    async fn ack_command(&self, wanted: &str, from: Origin<'_>) -> Result<Handled, Unavailable> {
        let method = AckMethod::Command;
        let Origin { channel, now, .. } = from;
        let person = match self.linked_person(from).await? {
            Ok(person) => person,
            Err(refused) => return Ok(refused),
        };
        if wanted.is_empty() {
            return Ok(Handled {
                outcome: InboundOutcome::Ignored,
                answer: Answer::text(ACK_USAGE),
            });
        }
        let pending = self.store.pending_items(&person).await?;
        // Not waiting, but sent and acknowledged before: acknowledging it
        // again records nothing and says when it was.
        let item = match pending.into_iter().rev().find(|p| p.item_id == wanted) {
            Some(item) => Some(item),
            None => self.store.delivered_item(&person, wanted).await?,
        };
        let Some(item) = item else {
            return self
                .refuse(
                    from,
                    Some(&person),
                    None,
                    method,
                    Refusal::NothingToAcknowledge,
                )
                .await;
        };
        if self.has_check_questions(&item.rollout_id).await {
            return self.check(item.delivery_id, None, method, from).await;
        }
        let via = Via { channel, at: now };
        match self
            .responses
            .acknowledge(&person, item.delivery_id, method, via)
            .await
        {
            Ok(acknowledged) => Ok(self.acknowledged(person, acknowledged, now).await),
            // The delivery of a pending item is gone: nothing to name.
            Err(Denied::Refused(Refused::NoSuchDelivery)) => {
                self.refuse(from, Some(&person), None, method, Refusal::UnknownDelivery)
                    .await
            }
            Err(denied) => {
                self.denied(denied, &person, Some(item.delivery_id), method, from)
                    .await
            }
        }
    }

    /// The person a command's account is linked to; otherwise the logged
    /// refusal.
    async fn linked_person(
        &self,
        from: Origin<'_>,
    ) -> Result<Result<String, Handled>, Unavailable> {
        match self
            .store
            .person_for_account(from.identity, from.account)
            .await?
        {
            Some(person) => Ok(Ok(person)),
            None => Ok(Err(self
                .refuse(
                    from,
                    None,
                    None,
                    AckMethod::Command,
                    Refusal::UnlinkedAccount,
                )
                .await?)),
        }
    }

    /// A button id this engine did not sign, refused and logged.
    async fn forged(&self, from: Origin<'_>) -> Result<Handled, Unavailable> {
        self.refuse(from, None, None, AckMethod::Button, Refusal::ForgedAction)
            .await
    }

    /// A choice button of a cascade confirmation in progress.
    async fn choice(&self, choice: &str, from: Origin<'_>) -> Result<Handled, Unavailable> {
        let Origin {
            account,
            channel,
            now,
            ..
        } = from;
        match self.conversations.take(channel, account, now) {
            Some(Conversation::Confirm(draft)) => {
                self.converse(draft, Said::Choice(choice), channel, account, now)
                    .await
            }
            Some(Conversation::Check {
                delivery_id,
                question,
                seen,
                touched_at,
            }) => {
                // Not this conversation's button: the question stays open.
                self.conversations.keep(
                    channel,
                    account,
                    Conversation::Check {
                        delivery_id,
                        question,
                        seen,
                        touched_at,
                    },
                );
                Ok(Handled {
                    outcome: InboundOutcome::Ignored,
                    answer: Answer {
                        notice: Some("That confirmation has ended.".to_owned()),
                        ..Answer::text(
                            "That confirmation has ended. Press \"I've cascaded this to my team\" on the item to start again.",
                        )
                    },
                })
            }
            Some(Conversation::Example { .. }) | None => Ok(Handled {
                outcome: InboundOutcome::Ignored,
                answer: Answer {
                    notice: Some("That confirmation has ended.".to_owned()),
                    ..Answer::text(
                        "That confirmation has ended. Press \"I've cascaded this to my team\" on the item to start again.",
                    )
                },
            }),
        }
    }

    /// "Acknowledge" on a delivery, pressed by its recipient.
    async fn ack_button(&self, delivery_id: i64, from: Origin<'_>) -> Result<Handled, Unavailable> {
        let method = AckMethod::Button;
        let person = match self.presser(Some(delivery_id), from).await? {
            Ok(person) => person,
            Err(refused) => return Ok(refused),
        };
        if let Some(delivery) = self.store.delivery(delivery_id).await?
            && self.has_check_questions(&delivery.rollout_id).await
        {
            return self.check(delivery_id, None, method, from).await;
        }
        let via = Via {
            channel: from.channel,
            at: from.now,
        };
        match self
            .responses
            .acknowledge(&person, delivery_id, method, via)
            .await
        {
            Ok(acknowledged) => Ok(self.acknowledged(person, acknowledged, from.now).await),
            Err(denied) => {
                self.denied(denied, &person, Some(delivery_id), method, from)
                    .await
            }
        }
    }

    /// One item's button in a `/pending` list: acknowledged as its own
    /// button would be; the list keeps the buttons of the items still
    /// waiting, and its status line names the item acknowledged.
    async fn list_ack_button(
        &self,
        delivery_id: i64,
        from: Origin<'_>,
    ) -> Result<Handled, Unavailable> {
        let mut handled = self.ack_button(delivery_id, from).await?;
        let InboundOutcome::Acknowledged { person_id, .. } = &handled.outcome else {
            return Ok(handled);
        };
        let still_waiting = self.store.pending_items(person_id).await?;
        handled.answer.keep_actions = self.list_actions(&still_waiting).await;
        if let (Some(status), Some(delivery)) = (
            &mut handled.answer.status,
            self.store.delivery(delivery_id).await?,
        ) {
            let title = self.title(&delivery.rollout_id).await;
            *status = format!(
                "\"{title}\": {}",
                status.replacen("Acknowledged", "acknowledged", 1)
            );
        }
        Ok(handled)
    }

    /// "I've cascaded this to my team" where the channel has no forms: the
    /// first question of a guided confirmation.
    async fn confirm_button(
        &self,
        delivery_id: i64,
        from: Origin<'_>,
    ) -> Result<Handled, Unavailable> {
        let (person, delivery) = match self.recipient(delivery_id, from).await? {
            Ok(found) => found,
            Err(refused) => return Ok(refused),
        };
        let teams = match self.champion_teams(&person, delivery_id, from).await? {
            Ok(teams) => teams,
            Err(refused) => return Ok(refused),
        };
        let title = self.title(&delivery.rollout_id).await;
        let draft = Draft::new(
            delivery_id,
            delivery.item_id,
            title,
            person,
            teams,
            from.now,
        );
        let question = draft.question(self.today(from.now), None);
        self.conversations
            .keep(from.channel, from.account, Conversation::Confirm(draft));
        Ok(self.ask(question))
    }

    /// The n-th answer (1-based) of a follow-up delivery.
    async fn answer_button(
        &self,
        delivery_id: i64,
        n: usize,
        from: Origin<'_>,
    ) -> Result<Handled, Unavailable> {
        let person = match self.presser(Some(delivery_id), from).await? {
            Ok(person) => person,
            Err(refused) => return Ok(refused),
        };
        match self
            .responses
            .follow_up_answer(&person, delivery_id, n)
            .await
        {
            Ok(chosen) => self.answer(person, chosen, from).await,
            Err(denied) => {
                self.denied(denied, &person, Some(delivery_id), AckMethod::Button, from)
                    .await
            }
        }
    }

    /// A reason for not using the learning, after a follow-up answer that
    /// said so: kept on the answer (the first stands), then the offer of
    /// an example, as after any first answer.
    async fn reason_button(
        &self,
        delivery_id: i64,
        n: usize,
        from: Origin<'_>,
    ) -> Result<Handled, Unavailable> {
        let person = match self.presser(Some(delivery_id), from).await? {
            Ok(person) => person,
            Err(refused) => return Ok(refused),
        };
        let chosen = match self
            .responses
            .follow_up_reason(&person, delivery_id, n)
            .await
        {
            Ok(chosen) => chosen,
            Err(denied) => {
                return self
                    .denied(denied, &person, Some(delivery_id), AckMethod::Button, from)
                    .await;
            }
        };
        let first = self.responses.reason(&chosen).await?.is_first();
        let text = if first {
            self.conversations.keep(
                from.channel,
                from.account,
                Conversation::Example {
                    rollout_id: chosen.delivery.rollout_id.clone(),
                    person_id: person.clone(),
                    follow_up: chosen.delivery.step_number,
                    touched_at: from.now,
                },
            );
            "Thank you. If you like, type a short example of what would help, or of the situation (no names or details of any child or family), or send /cancel."
        } else {
            "You had already given a reason; your first one stands."
        };
        Ok(Handled {
            outcome: InboundOutcome::Answered {
                person_id: person,
                answer: chosen.reason.clone(),
                first,
            },
            answer: Answer {
                notice: Some("Thank you".to_owned()),
                status: Some(format!("Reason: \"{}\"", chosen.reason)),
                ..Answer::text(text)
            },
        })
    }

    /// Who pressed a button on delivery `delivery_id`, and the rollout it
    /// belongs to (with the item version it pinned, so its check
    /// questions); or the answer refusing the press, recorded as refusals
    /// are.
    async fn pressed_rollout(
        &self,
        delivery_id: i64,
        method: AckMethod,
        from: Origin<'_>,
    ) -> Result<Result<(String, Arc<RolloutRuntime>), Handled>, Unavailable> {
        let person = match self.presser(Some(delivery_id), from).await? {
            Ok(person) => person,
            Err(refused) => return Ok(Err(refused)),
        };
        let delivery = match self.responses.delivery_for(&person, delivery_id).await {
            Ok(delivery) => delivery,
            Err(denied) => {
                return self
                    .denied(denied, &person, Some(delivery_id), method, from)
                    .await
                    .map(Err);
            }
        };
        match self.rollouts.get(self.store, &delivery.rollout_id).await {
            Ok(rollout) => Ok(Ok((person, rollout))),
            Err(e) => {
                tracing::warn!(rollout = %delivery.rollout_id, "the rollout of a pressed message cannot be read: {e}");
                self.refuse(
                    from,
                    Some(&person),
                    Some(delivery_id),
                    method,
                    Refusal::UnknownDelivery,
                )
                .await
                .map(Err)
            }
        }
    }

    /// Whether the item version a rollout pinned has check questions.
    async fn has_check_questions(&self, rollout_id: &str) -> bool {
        self.rollouts
            .get(self.store, rollout_id)
            .await
            .is_ok_and(|r| !r.item.check_questions.is_empty())
    }

    /// Check questions before an acknowledgement (issue 19): takes the
    /// answer given (none when Acknowledge was pressed or `/ack` sent), and
    /// asks the first question still to answer right, one button per
    /// option, the options' words in the message; after a wrong answer,
    /// with the question's explanation and the section it points to. Once
    /// every answer is right the acknowledgement is recorded. A typed
    /// number answers the question asked last.
    async fn check(
        &self,
        delivery_id: i64,
        choice: Option<CheckChoice>,
        method: AckMethod,
        from: Origin<'_>,
    ) -> Result<Handled, Unavailable> {
        let Origin {
            account,
            channel,
            now,
            ..
        } = from;
        let (person, rollout) = match self.pressed_rollout(delivery_id, method, from).await? {
            Ok(found) => found,
            Err(refused) => return Ok(refused),
        };
        let questions = &rollout.item.check_questions;
        let via = Via { channel, at: now };
        let checked = match self
            .responses
            .check_and_acknowledge(
                &person,
                delivery_id,
                questions,
                choice.as_slice(),
                method,
                via,
            )
            .await
        {
            Ok(checked) => checked,
            Err(denied) => {
                return self
                    .denied(denied, &person, Some(delivery_id), method, from)
                    .await;
            }
        };
        let states = match checked {
            Checked::Acknowledged(acknowledged) => {
                let first = acknowledged.outcome == AckOutcome::Recorded;
                let mut handled = self.acknowledged(person, acknowledged, now).await;
                if first && choice.is_some() {
                    handled.answer.text = format!("Right. {}", handled.answer.text);
                }
                tracing::info!(channel, delivery = delivery_id, "check questions answered");
                return Ok(handled);
            }
            Checked::Ask(states) => states,
        };
        let Some(next) = states.iter().find(|q| !q.answered) else {
            // Every answer right, the acknowledgement not taken: cannot be.
            return Ok(Handled::refused(Refusal::UnknownDelivery));
        };
        let total = questions.len();
        let mut text = String::new();
        if let Some(given) = choice {
            let just = states.iter().find(|q| q.number == given.question);
            let question = &questions[(given.question as usize).saturating_sub(1)];
            if just.is_some_and(|q| q.wrong_now) {
                text.push_str(&format!("Not quite. {}\n", question.explanation));
                if let Some(section) = rollout
                    .item
                    .sections()
                    .into_iter()
                    .find(|s| question.points_to(&s.title))
                {
                    let body = cascade_render::markdown_to(
                        cascade_render::Channel::EmailText,
                        &section.body,
                    );
                    text.push_str(&format!(
                        "\nFrom \"{}\":\n{}\n",
                        section.title,
                        truncate(&body, MAX_SECTION_CHARS)
                    ));
                }
                text.push_str("\nPlease try again.\n\n");
            } else if just.is_some_and(|q| q.answered) {
                text.push_str("Right.\n\n");
            }
        } else {
            text.push_str(&format!(
                "Before \"{}\" is recorded as acknowledged, please answer {} to check the main {}.\n\n",
                rollout.item.title,
                if total == 1 {
                    "one short question".to_owned()
                } else {
                    format!("{total} short questions")
                },
                if total == 1 { "point" } else { "points" },
            ));
        }
        let question = &questions[(next.number as usize).saturating_sub(1)];
        text.push_str(&format!(
            "Question {} of {total}: {}\n",
            next.number, question.question
        ));
        for (option, o) in question.options.iter().zip(1..) {
            text.push_str(&format!("\n{o}. {option}"));
        }
        text.push_str("\n\nChoose your answer below, or type its number.");
        let actions = question
            .options
            .iter()
            .zip(1u32..)
            .map(|(option, o)| Action {
                id: self
                    .keys
                    .sign(&ActionRef::Check(delivery_id, next.number, o, next.tries)),
                label: truncate(&format!("{o}. {option}"), MAX_CHECK_LABEL_CHARS),
                form: None,
            })
            .collect();
        self.conversations.keep(
            channel,
            account,
            Conversation::Check {
                delivery_id,
                question: next.number,
                seen: next.tries,
                touched_at: now,
            },
        );
        Ok(Handled {
            outcome: InboundOutcome::Asked,
            answer: Answer {
                notice: Some(
                    if choice.is_some_and(|c| {
                        states.iter().any(|q| q.number == c.question && q.wrong_now)
                    }) {
                        "Not quite: try again".to_owned()
                    } else {
                        "A quick check first".to_owned()
                    },
                ),
                actions,
                ..Answer::text(text)
            },
        })
    }

    /// An answer to a refresher's check question (issue 19): right, it is
    /// thanked with the explanation; wrong, the explanation and the section
    /// it points to, and the question again. Recorded as the refresher's
    /// answer; nothing is acknowledged and no chase follows.
    async fn refresher(
        &self,
        delivery_id: i64,
        choice: (u32, u32),
        from: Origin<'_>,
    ) -> Result<Handled, Unavailable> {
        let method = AckMethod::Button;
        let (person, rollout) = match self.pressed_rollout(delivery_id, method, from).await? {
            Ok(found) => found,
            Err(refused) => return Ok(refused),
        };
        let questions = &rollout.item.check_questions;
        let via = Via {
            channel: from.channel,
            at: from.now,
        };
        let refreshed = match self
            .responses
            .refresher_answer(&person, delivery_id, questions, Some(choice), via)
            .await
        {
            Ok(refreshed) => refreshed,
            Err(denied) => {
                return self
                    .denied(denied, &person, Some(delivery_id), method, from)
                    .await;
            }
        };
        let question = &questions[(refreshed.question as usize).saturating_sub(1)];
        if refreshed.answered {
            tracing::info!(
                channel = from.channel,
                delivery = delivery_id,
                "refresher answered"
            );
            let text = if refreshed.right_now {
                format!(
                    "Right. {}\n\nThank you: a minute like this keeps the learning fresh.",
                    question.explanation
                )
            } else {
                "You have answered this refresher already. Thank you.".to_owned()
            };
            return Ok(Handled {
                outcome: InboundOutcome::Answered {
                    person_id: person,
                    answer: question.answer.clone(),
                    first: refreshed.right_now,
                },
                answer: Answer {
                    notice: Some("Right".to_owned()),
                    status: Some(format!(
                        "Answered on {}",
                        super::long_date(self.today(from.now))
                    )),
                    ..Answer::text(text)
                },
            });
        }
        let mut text = format!("Not quite. {}\n", question.explanation);
        if let Some(section) = rollout
            .item
            .sections()
            .into_iter()
            .find(|s| question.points_to(&s.title))
        {
            let body =
                cascade_render::markdown_to(cascade_render::Channel::EmailText, &section.body);
            text.push_str(&format!(
                "\nFrom \"{}\":\n{}\n",
                section.title,
                truncate(&body, MAX_SECTION_CHARS)
            ));
        }
        text.push_str(&format!("\nPlease try again: {}\n", question.question));
        for (option, o) in question.options.iter().zip(1..) {
            text.push_str(&format!("\n{o}. {option}"));
        }
        let actions = question
            .options
            .iter()
            .zip(1u32..)
            .map(|(option, o)| Action {
                id: self
                    .keys
                    .sign(&ActionRef::Refresh(delivery_id, o, refreshed.tries)),
                label: truncate(&format!("{o}. {option}"), MAX_CHECK_LABEL_CHARS),
                form: None,
            })
            .collect();
        Ok(Handled {
            outcome: InboundOutcome::Asked,
            answer: Answer {
                notice: Some("Not quite: try again".to_owned()),
                actions,
                ..Answer::text(text)
            },
        })
    }

    /// The teams the person champions, as the directory loaded for
    /// serving has them; a logged refusal when none.
    async fn champion_teams(
        &self,
        person: &str,
        delivery_id: i64,
        from: Origin<'_>,
    ) -> Result<Result<Vec<(String, String)>, Handled>, Unavailable> {
        match covering(self.world.champion_teams(person).to_vec()) {
            Ok(teams) => Ok(Ok(teams)),
            Err(refused) => Ok(Err(self
                .denied(
                    refused.into(),
                    person,
                    Some(delivery_id),
                    AckMethod::Button,
                    from,
                )
                .await?)),
        }
    }
}

/// A submitted chat form as the cascade form the web page posts: the team
/// and the method typed as an id or a name, in any case, with or without
/// spaces, dashes or underscores; every field trimmed, a missing one empty.
fn cascade_form(fields: &BTreeMap<String, String>, teams: &[(String, String)]) -> CascadeForm {
    let field = |k: &str| {
        fields
            .get(k)
            .map(|v| v.trim().to_owned())
            .unwrap_or_default()
    };
    let normal = |s: &str| s.to_lowercase().replace([' ', '-', '_'], "");
    let typed_team = normal(&field("team"));
    let typed_method = normal(&field("method"));
    CascadeForm {
        team: teams
            .iter()
            .find(|(id, name)| normal(id) == typed_team || normal(name) == typed_team)
            .map(|(id, _)| id.clone())
            .unwrap_or_default(),
        session_date: field("session_date"),
        present: field("present"),
        method: CASCADE_METHODS
            .iter()
            .find(|(v, l)| normal(v) == typed_method || normal(l) == typed_method)
            .map(|(v, _)| (*v).to_owned())
            .unwrap_or_default(),
        note: field("note"),
    }
}

/// The answer to a form with problems: nothing recorded, each problem listed.
fn form_problems(problems: &[FieldProblem]) -> Handled {
    let list: Vec<String> = problems
        .iter()
        .map(|p| format!("- {}", p.message))
        .collect();
    Handled {
        outcome: InboundOutcome::Asked,
        answer: Answer {
            notice: Some("Not recorded yet: please check the form.".to_owned()),
            ..Answer::text(format!(
                "Nothing was recorded yet. Please press the button again and fix:\n{}",
                list.join("\n")
            ))
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn help_lists_cancel_only_where_confirmations_are_typed() {
        assert!(help(true).contains("/cancel"));
        assert!(!help(false).contains("/cancel"));
        for text in [help(true), help(false)] {
            for command in ["/link CODE", "/pending", "/ack ITEM", "/help"] {
                assert!(text.contains(command), "{command} in {text}");
            }
        }
    }

    fn fields(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    fn teams() -> Vec<(String, String)> {
        vec![
            (
                "t-public-protection".to_owned(),
                "Public Protection".to_owned(),
            ),
            ("t-early-help".to_owned(), "Early Help".to_owned()),
        ]
    }

    #[test]
    fn a_team_and_a_method_are_known_by_id_or_name_however_typed() {
        for (team, method) in [
            ("t-early-help", "briefing-session"),
            ("Early Help", "Briefing session"),
            ("  early_help ", "BRIEFING SESSION"),
            ("T EARLY-HELP", "briefingsession"),
        ] {
            let form = cascade_form(&fields(&[("team", team), ("method", method)]), &teams());
            assert_eq!(form.team, "t-early-help", "{team}");
            assert_eq!(form.method, "briefing-session", "{method}");
        }
    }

    #[test]
    fn an_unknown_team_or_method_and_missing_fields_are_left_empty() {
        let form = cascade_form(
            &fields(&[
                ("team", "Children's Services"),
                ("method", "carrier pigeon"),
                ("session_date", " 2026-12-01 "),
                ("note", "\n shared at the team meeting \n"),
            ]),
            &teams(),
        );
        assert_eq!(
            form,
            CascadeForm {
                team: String::new(),
                session_date: "2026-12-01".to_owned(),
                present: String::new(),
                method: String::new(),
                note: "shared at the team meeting".to_owned(),
            }
        );
    }

    #[test]
    fn a_form_with_problems_lists_each_and_records_nothing() {
        let problems = [
            FieldProblem {
                field: "present",
                message: "Give the number present.".to_owned(),
            },
            FieldProblem {
                field: "team",
                message: "Choose a team.".to_owned(),
            },
        ];
        let handled = form_problems(&problems);
        assert_eq!(handled.outcome, InboundOutcome::Asked);
        assert_eq!(
            handled.answer.text,
            "Nothing was recorded yet. Please press the button again and fix:\n- Give the number present.\n- Choose a team."
        );
        assert_eq!(
            handled.answer.notice.as_deref(),
            Some("Not recorded yet: please check the form.")
        );
    }
}
