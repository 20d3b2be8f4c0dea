//! What people do on chat channels, turned into evidence and answered: a
//! one-time code links their chat account to them (`crate::link_code`, kept only
//! as a keyed hash); a button press or
//! command acknowledges, answers a follow-up or lists what is pending, but
//! only from the account linked to the person the delivery was for; a
//! champion confirms a cascade through a form or a short guided exchange
//! (`conversation`). Button ids are signed (`actions`). Every refusal is
//! logged, and nothing about any item is told to an unlinked account.

mod command;
pub mod conversation;
mod handlers;
pub mod inbox;
pub mod polls;

pub use crate::link_code::{
    CODE_LIFETIME_MS, LinkCodeKey, LinkCodeKeyError, issue_code, legacy_hash,
};
pub use cascade_model::actions::{self, ActionKey, ActionRef};
pub use command::ChatCommand;

use crate::ack::CheckedCascade;
use crate::buttons::{confirm_action, truncate};
use crate::delivery::{Rollouts, World, fallback_for, from_millis};
use crate::respond::{
    self, Acknowledged, ChosenAnswer, Denied, Responses, Unavailable, Via, team_name,
};
use cascade_plugin_api::{Action, InboundKind, ReceiptStatus};
use cascade_plugin_host::Inbound;
use cascade_store::{AckMethod, AckOutcome, DeliveryInfo, Evidence, Outbox, Store, TeamPosts};
use chrono::NaiveDate;
use chrono_tz::Tz;
use conversation::{Draft, Next, Said};
use handlers::Origin;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

/// What the bot does and its commands; `/cancel` only on a channel
/// whose confirmations are typed question by question (one without forms:
/// on a channel with forms, nothing is typed, and Discord does not register
/// the command).
fn help(typed_conversations: bool) -> String {
    let cancel = if typed_conversations {
        "/cancel: stop a confirmation you started\n"
    } else {
        ""
    };
    format!(
        "This bot brings you learning from your safeguarding partnership.\n\n\
/link CODE: link this chat to you, with the code your business unit gave you\n\
/pending: learning waiting for you to acknowledge\n\
/ack ITEM: acknowledge an item by its id\n\
{cancel}/help: this message"
    )
}

/// How to link, for a bare `/start` or a `/link` without a code.
const HOW_TO_LINK: &str = "To link this chat to you, send /link followed by the code your business unit gave you, for example /link 123456, or open the link they sent you. Until then this bot cannot send you anything.";

/// `/ack` without an item id.
const ACK_USAGE: &str = "Send /ack followed by the item's id, for example /ack 7mb-safer-sleep. Send /pending to see what is waiting for you and the ids.";

/// What came of an inbound event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InboundOutcome {
    Linked {
        person_id: String,
    },
    Acknowledged {
        person_id: String,
        first: bool,
    },
    Answered {
        person_id: String,
        answer: String,
        first: bool,
    },
    /// A champion's cascade confirmation was recorded (`first`: not a repeat).
    Confirmed {
        person_id: String,
        team_id: String,
        first: bool,
    },
    /// The person was shown their pending items.
    Listed {
        person_id: String,
        count: usize,
    },
    /// A question of a conversation was asked, or the form had problems.
    Asked,
    /// The example that followed a follow-up answer was kept.
    ExampleKept {
        person_id: String,
    },
    Cancelled,
    /// A provider's delivery receipt, for the person the address belongs to.
    Receipt {
        status: ReceiptStatus,
        person_id: Option<String>,
    },
    Refused {
        reason: Refusal,
    },
    /// Help, or nothing this handler deals with.
    Ignored,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    UnknownCode,
    ExpiredCode,
    UsedCode,
    /// The chat account is not linked to anyone.
    UnlinkedAccount,
    /// The account is linked to someone other than the delivery's recipient.
    DifferentPerson,
    UnknownDelivery,
    UnknownAnswer,
    /// A button id this engine did not sign.
    ForgedAction,
    /// A cascade confirmation from someone who champions no team.
    NotAChampion,
    /// `/ack` of an item not waiting for the person.
    NothingToAcknowledge,
    /// A team post's button pressed by someone not in that team's audience.
    NotInTeam,
}

impl Refusal {
    /// Words for the person; nothing about any item or other person.
    pub fn message(self) -> &'static str {
        match self {
            Refusal::UnknownCode => {
                "That code is not recognised. Check it, or ask your business unit for a new one."
            }
            Refusal::ExpiredCode => {
                "That code has expired (codes last 24 hours). Ask your business unit for a new one."
            }
            Refusal::UsedCode => {
                "That code has already been used. Ask your business unit for a new one."
            }
            Refusal::UnlinkedAccount => {
                "This chat account is not linked yet. Send /link followed by the code your business unit gave you."
            }
            Refusal::DifferentPerson => {
                "This message was sent to someone else, so it cannot be acknowledged from this account."
            }
            Refusal::UnknownDelivery | Refusal::ForgedAction => {
                "That message is no longer known. Use the buttons on the latest message, or send /pending."
            }
            Refusal::UnknownAnswer => {
                "That answer is not one of the choices. Use the buttons on the latest message."
            }
            Refusal::NotAChampion => {
                "Only a champion can confirm a cascade, for the teams they cover. Ask your business unit if you should be one."
            }
            Refusal::NothingToAcknowledge => {
                "Nothing by that id is waiting for you. Send /pending to see what is."
            }
            Refusal::NotInTeam => {
                "This post is for the members of one team, and you are not one of them here, so nothing was recorded."
            }
        }
    }

    /// What the acknowledgement service refused, as the chat says it.
    fn of(refused: respond::Refused) -> Refusal {
        use respond::Refused::*;
        match refused {
            NoSuchDelivery | NotTheirLearning => Refusal::UnknownDelivery,
            SomeoneElse => Refusal::DifferentPerson,
            NotAFollowUp | NoSuchFollowUp | NoSuchAnswer | NotARefresher => Refusal::UnknownAnswer,
            NotAChampion => Refusal::NotAChampion,
            NotInTeam => Refusal::NotInTeam,
        }
    }

    fn code(self) -> &'static str {
        match self {
            Refusal::UnknownCode => "unknown code",
            Refusal::ExpiredCode => "expired code",
            Refusal::UsedCode => "used code",
            Refusal::UnlinkedAccount => "unlinked account",
            Refusal::DifferentPerson => "account linked to a different person",
            Refusal::UnknownDelivery => "unknown delivery",
            Refusal::UnknownAnswer => "unknown answer",
            Refusal::ForgedAction => "forged action id",
            Refusal::NotAChampion => "not a champion",
            Refusal::NothingToAcknowledge => "nothing to acknowledge",
            Refusal::NotInTeam => "not in the post's team",
        }
    }
}

/// What to tell the person; the engine sends it as a reply to the event.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Answer {
    /// Plain text.
    pub text: String,
    /// A short notice for a pressed button.
    pub notice: Option<String>,
    /// Replaces the buttons of the message a pressed button was on.
    pub status: Option<String>,
    /// Buttons that stay on that message.
    pub keep_actions: Vec<Action>,
    /// Buttons under the reply.
    pub actions: Vec<Action>,
}

impl Answer {
    fn text(text: impl Into<String>) -> Answer {
        Answer {
            text: text.into(),
            ..Answer::default()
        }
    }
}

/// An outcome, and what to tell the person.
#[derive(Debug, Clone, PartialEq)]
pub struct Handled {
    pub outcome: InboundOutcome,
    pub answer: Answer,
}

impl Handled {
    fn refused(reason: Refusal) -> Handled {
        Handled {
            outcome: InboundOutcome::Refused { reason },
            answer: Answer {
                notice: Some(reason.message().to_owned()),
                ..Answer::text(reason.message())
            },
        }
    }
}

/// A conversation the engine leads with one chat account.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
enum Conversation {
    /// A champion's cascade confirmation, question by question.
    Confirm(Draft),
    /// After a follow-up answer: the optional example of using the learning.
    Example {
        rollout_id: String,
        person_id: String,
        follow_up: u32,
        touched_at: i64,
    },
    /// A check question asked before an acknowledgement (issue 19), which
    /// a typed number answers as its button would.
    Check {
        delivery_id: i64,
        question: u32,
        seen: u32,
        touched_at: i64,
    },
}

impl Conversation {
    fn touched_at(&self) -> i64 {
        match self {
            Conversation::Confirm(draft) => draft.touched_at,
            Conversation::Example { touched_at, .. } => *touched_at,
            Conversation::Check { touched_at, .. } => *touched_at,
        }
    }
}

/// The plugin-state namespace the host keeps conversations in, per
/// channel instance: `@host:` cannot begin a channel name.
fn conversations_namespace(instance: &str) -> String {
    format!("@host:{instance}")
}

/// Conversations in progress, by (channel instance, account): in memory
/// while serving, and written to the store (plugin state) after each
/// event, so a restart carries on with the question it had reached; one
/// idle for [`conversation::IDLE_LIMIT_MS`] is forgotten.
#[derive(Default)]
pub struct Conversations {
    open: Mutex<HashMap<(String, String), Conversation>>,
    /// Changed since the last [`Conversations::save`]: kept or ended.
    changed: Mutex<Vec<(String, String)>>,
}

impl Conversations {
    fn take(&self, instance: &str, account: &str, now: i64) -> Option<Conversation> {
        let mut open = self.open.lock().unwrap_or_else(|p| p.into_inner());
        open.retain(|_, c| now - c.touched_at() < conversation::IDLE_LIMIT_MS);
        let taken = open.remove(&(instance.to_owned(), account.to_owned()));
        if taken.is_some() {
            self.changed(instance, account);
        }
        taken
    }

    fn keep(&self, instance: &str, account: &str, conversation: Conversation) {
        self.open
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert((instance.to_owned(), account.to_owned()), conversation);
        self.changed(instance, account);
    }

    fn changed(&self, instance: &str, account: &str) {
        self.changed
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push((instance.to_owned(), account.to_owned()));
    }

    /// Writes the conversations changed since the last save to the store.
    pub async fn save<S: cascade_store::Inbox>(
        &self,
        store: &S,
        now: i64,
    ) -> Result<(), cascade_store::StoreError> {
        let changed = std::mem::take(&mut *self.changed.lock().unwrap_or_else(|p| p.into_inner()));
        for (instance, account) in changed {
            let open = self
                .open
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .get(&(instance.clone(), account.clone()))
                .cloned();
            let namespace = conversations_namespace(&instance);
            match open {
                Some(conversation) => {
                    let json = serde_json::to_string(&conversation).expect("plain data");
                    // No expiry in the table: it goes by the system clock,
                    // and conversations by the runner's. `load` forgets
                    // those idle too long.
                    store
                        .state_put(&namespace, &account, &json, None, now)
                        .await?
                }
                None => store.state_delete(&namespace, &account).await?,
            }
        }
        Ok(())
    }

    /// Forgets the conversations held in memory for `instance` and reads
    /// back those the store keeps: another process may have moved them on
    /// while it handled the instance's events.
    pub async fn reload<S: cascade_store::Inbox>(
        &self,
        store: &S,
        instance: &str,
        now: i64,
    ) -> Result<(), cascade_store::StoreError> {
        self.open
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .retain(|(kept, _), _| kept != instance);
        self.load(store, [instance], now).await
    }

    /// Reads back the conversations the store keeps for `instances`.
    pub async fn load<S: cascade_store::Inbox>(
        &self,
        store: &S,
        instances: impl IntoIterator<Item = &str>,
        now: i64,
    ) -> Result<(), cascade_store::StoreError> {
        for instance in instances {
            let namespace = conversations_namespace(instance);
            for (account, json) in store.state_list(&namespace, "", now).await? {
                match serde_json::from_str::<Conversation>(&json) {
                    Ok(conversation)
                        if now - conversation.touched_at() >= conversation::IDLE_LIMIT_MS =>
                    {
                        store.state_delete(&namespace, &account).await?;
                    }
                    Ok(conversation) => {
                        self.open
                            .lock()
                            .unwrap_or_else(|p| p.into_inner())
                            .insert((instance.to_owned(), account), conversation);
                    }
                    Err(e) => {
                        tracing::warn!(
                            channel = instance,
                            "a kept conversation could not be read, so it starts again: {e}"
                        )
                    }
                }
            }
        }
        Ok(())
    }
}

/// The longest example kept with a follow-up answer, in characters.
const MAX_EXAMPLE_CHARS: usize = 1000;

/// What handling inbound events needs.
pub struct Desk<'a, S> {
    pub store: &'a S,
    /// Checks and records acknowledgements, answers and confirmations.
    pub responses: &'a Responses<S>,
    /// The directory as it was when the event came; an import replaces it.
    pub world: Arc<World>,
    pub rollouts: &'a Rollouts,
    pub keys: &'a ActionKey,
    /// Hashes the link codes people send.
    pub link_codes: &'a LinkCodeKey,
    pub conversations: &'a Conversations,
}

fn long_date(day: NaiveDate) -> String {
    day.format("%-d %B %Y").to_string()
}

impl<S: Evidence + Outbox + Store + TeamPosts + 'static> Desk<'_, S> {
    fn today(&self, now: i64) -> NaiveDate {
        let tz: Tz = self.rollouts.calendar().time_zone();
        from_millis(now).with_timezone(&tz).date_naive()
    }

    async fn refuse(
        &self,
        from: Origin<'_>,
        person: Option<&str>,
        delivery: Option<i64>,
        method: AckMethod,
        reason: Refusal,
    ) -> Result<Handled, Unavailable> {
        let Origin { channel, now, .. } = from;
        // The store only counts refusals; who and which delivery go to the log.
        tracing::warn!(
            channel,
            person,
            delivery,
            reason = reason.code(),
            "refused an inbound event"
        );
        match from.event_id {
            // Counted and marked handled together, so an event handled
            // again after a crash is not counted twice.
            Some(event_id) => {
                self.store
                    .count_refusal_of_event(channel, event_id, method, reason.code(), now)
                    .await?;
            }
            None => {
                self.store
                    .count_refusal(channel, method, reason.code(), now)
                    .await?
            }
        }
        Ok(Handled::refused(reason))
    }

    /// What the acknowledgement service denied `person`, in the chat's
    /// words: a refusal logged and counted like any other, or the failure.
    async fn denied(
        &self,
        denied: Denied,
        person: &str,
        delivery: Option<i64>,
        method: AckMethod,
        from: Origin<'_>,
    ) -> Result<Handled, Unavailable> {
        match denied {
            Denied::Refused(refused) => {
                self.refuse(from, Some(person), delivery, method, Refusal::of(refused))
                    .await
            }
            Denied::Unavailable(e) => Err(e),
        }
    }

    async fn title(&self, rollout_id: &str) -> String {
        match self.rollouts.get(self.store, rollout_id).await {
            Ok(r) => r.item.title.clone(),
            Err(_) => "this learning".to_owned(),
        }
    }

    /// Handles one inbound event. `identity` is the identity kind of the
    /// instance it came through (e.g. `telegram`), under which accounts are
    /// linked.
    pub async fn handle(
        &self,
        event: &Inbound,
        identity: &str,
        now: i64,
    ) -> Result<Handled, Unavailable> {
        let from = Origin {
            identity,
            account: event.event.account.as_str(),
            channel: event.instance.as_str(),
            event_id: event.event.event_id.as_deref(),
            now,
        };
        let kind = match &event.event.kind {
            InboundKind::Command { .. } => "command",
            InboundKind::Text { .. } => "text",
            InboundKind::Action { .. } => "action",
            InboundKind::Form { .. } => "form",
            InboundKind::Receipt { .. } => "receipt",
        };
        metrics::counter!(crate::metrics::INBOUND_EVENTS, "channel" => event.instance.clone(), "kind" => kind)
            .increment(1);
        match &event.event.kind {
            InboundKind::Command { name, args } => {
                self.command(ChatCommand::parse(name, args), from).await
            }
            InboundKind::Text { text } => self.text(text, from).await,
            InboundKind::Action { action_id, .. } => self.action(action_id, from).await,
            InboundKind::Form { action_id, fields } => self.form(action_id, fields, from).await,
            InboundKind::Receipt {
                idempotency_key,
                status,
            } => self.receipt(idempotency_key, *status, from).await,
        }
    }

    /// A provider's delivery receipt for a message sent through this
    /// channel. A permanent failure marks the delivery dead and the address
    /// unreachable, and queues the step again on the person's next channel
    /// (when the rollout falls back); later steps skip this channel too.
    /// Receipts are never answered.
    async fn receipt(
        &self,
        idempotency_key: &str,
        status: ReceiptStatus,
        from: Origin<'_>,
    ) -> Result<Handled, Unavailable> {
        if status != ReceiptStatus::PermanentFailure {
            let person = self
                .store
                .person_for_account(from.identity, from.account)
                .await?;
            return Ok(Handled {
                outcome: InboundOutcome::Receipt {
                    status,
                    person_id: person,
                },
                answer: Answer::default(),
            });
        }
        let bounced = self
            .store
            .bounce(
                from.channel,
                idempotency_key,
                "the provider reports a permanent failure: the address does not exist or refuses messages",
                from.now,
            )
            .await?;
        let person = match &bounced {
            Some(row) => Some(row.recipient_id.clone()),
            None => {
                self.store
                    .person_for_account(from.identity, from.account)
                    .await?
            }
        };
        if let Some(person) = &person {
            // Before the fallback is chosen, so it skips this channel.
            self.world.unreachable(from.identity, person, from.account);
            self.store
                .mark_unreachable(from.identity, from.account, from.now)
                .await?;
            tracing::warn!(
                channel = %from.channel,
                person = %person,
                "the provider reports a permanent failure; using the person's next channel from now on"
            );
        }
        if let Some(row) = &bounced {
            match self.rollouts.get(self.store, &row.rollout_id).await {
                Ok(rollout) => {
                    if let Some(fallback) = fallback_for(&self.world, row, &rollout.definition) {
                        self.store.materialise(&[fallback], &[], from.now).await?;
                    }
                }
                Err(e) => {
                    tracing::warn!(rollout = %row.rollout_id, "no fallback for a bounced delivery: {e}");
                }
            }
        }
        Ok(Handled {
            outcome: InboundOutcome::Receipt {
                status,
                person_id: person,
            },
            answer: Answer::default(),
        })
    }

    /// The person the account that pressed a button is linked to;
    /// otherwise the logged refusal.
    async fn presser(
        &self,
        delivery: Option<i64>,
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
                    delivery,
                    AckMethod::Button,
                    Refusal::UnlinkedAccount,
                )
                .await?)),
        }
    }

    /// The person the account is linked to and the delivery, if it was
    /// sent to them; otherwise the logged refusal.
    async fn recipient(
        &self,
        delivery_id: i64,
        from: Origin<'_>,
    ) -> Result<Result<(String, DeliveryInfo), Handled>, Unavailable> {
        let person = match self.presser(Some(delivery_id), from).await? {
            Ok(person) => person,
            Err(refused) => return Ok(Err(refused)),
        };
        match self.responses.delivery_for(&person, delivery_id).await {
            Ok(delivery) => Ok(Ok((person, delivery))),
            Err(denied) => Ok(Err(self
                .denied(denied, &person, Some(delivery_id), AckMethod::Button, from)
                .await?)),
        }
    }

    /// The answer to an acknowledgement the service recorded: thanks, or
    /// when the first one was; the confirmation button stays for a champion.
    async fn acknowledged(&self, person: String, acknowledged: Acknowledged, now: i64) -> Handled {
        let Acknowledged { delivery, outcome } = acknowledged;
        let at = match outcome {
            AckOutcome::Recorded => now,
            AckOutcome::AlreadyAcknowledged { at } => at,
        };
        let day = long_date(
            from_millis(at)
                .with_timezone(&self.rollouts.calendar().time_zone())
                .date_naive(),
        );
        let title = self.title(&delivery.rollout_id).await;
        let teams = self.world.champion_teams(&person).to_vec();
        let keep_actions = confirm_action(self.keys, delivery.id, &teams, false, self.today(now))
            .into_iter()
            .collect();
        let first = outcome == AckOutcome::Recorded;
        Handled {
            outcome: InboundOutcome::Acknowledged {
                person_id: person,
                first,
            },
            answer: Answer {
                text: if first {
                    format!("Thank you: \"{title}\" is acknowledged.")
                } else {
                    format!("You had already acknowledged \"{title}\" on {day}.")
                },
                notice: Some("Acknowledged".to_owned()),
                status: Some(format!("Acknowledged on {day}")),
                keep_actions,
                actions: Vec::new(),
            },
        }
    }

    /// A press of a team post's button: acknowledges for the person linked
    /// to the account, if they are in that team in the post's rollout, as
    /// their own button would. The answer is for them alone and leaves the
    /// shared post as it is (its count moves by an edit of its own).
    async fn acknowledge_post(
        &self,
        post_id: i64,
        from: Origin<'_>,
    ) -> Result<Handled, Unavailable> {
        let Origin { channel, now, .. } = from;
        let method = AckMethod::Button;
        let person = match self.presser(None, from).await? {
            Ok(person) => person,
            Err(refused) => return Ok(refused),
        };
        let via = Via { channel, at: now };
        let acknowledged = match self
            .responses
            .acknowledge_team_post(&person, post_id, method, via)
            .await
        {
            Ok(acknowledged) => acknowledged,
            Err(denied) => return self.denied(denied, &person, None, method, from).await,
        };
        let title = self.title(&acknowledged.rollout_id).await;
        let text = match acknowledged.outcome {
            AckOutcome::Recorded => format!("Thank you: \"{title}\" is acknowledged."),
            AckOutcome::AlreadyAcknowledged { at } => format!(
                "You had already acknowledged \"{title}\" on {}.",
                long_date(
                    from_millis(at)
                        .with_timezone(&self.rollouts.calendar().time_zone())
                        .date_naive()
                )
            ),
        };
        tracing::info!(channel, person = %person, post = post_id, "acknowledged through a team post");
        Ok(Handled {
            outcome: InboundOutcome::Acknowledged {
                person_id: person,
                first: acknowledged.outcome == AckOutcome::Recorded,
            },
            answer: Answer {
                notice: Some("Acknowledged".to_owned()),
                ..Answer::text(text)
            },
        })
    }

    /// Records a follow-up answer the service found, and thanks; after a
    /// first answer, offers to keep an example.
    async fn answer(
        &self,
        person: String,
        chosen: ChosenAnswer,
        from: Origin<'_>,
    ) -> Result<Handled, Unavailable> {
        let Origin {
            account,
            channel,
            now,
            ..
        } = from;
        let via = Via { channel, at: now };
        let first = self.responses.answer(&chosen, via).await?.is_first();
        let ChosenAnswer {
            delivery,
            answer: label,
            used,
            reasons,
            ..
        } = chosen;
        // Not used: first, why not (the feedback loop), one button each.
        if first && !used && !reasons.is_empty() {
            let actions = reasons
                .iter()
                .enumerate()
                .map(|(i, reason)| Action {
                    id: self.keys.sign(&ActionRef::Reason(delivery.id, i + 1)),
                    label: truncate(reason, 80),
                    form: None,
                })
                .collect();
            return Ok(Handled {
                answer: Answer {
                    notice: Some("Thank you".to_owned()),
                    status: Some(format!(
                        "Answered \"{label}\" on {}",
                        long_date(self.today(now))
                    )),
                    actions,
                    ..Answer::text(
                        "Thank you for answering. What is the main reason? Your answer helps the partnership decide what to do next.",
                    )
                },
                outcome: InboundOutcome::Answered {
                    person_id: person,
                    answer: label,
                    first,
                },
            });
        }
        Ok(Handled {
            answer: Answer {
                notice: Some("Thank you".to_owned()),
                status: Some(format!(
                    "Answered \"{label}\" on {}",
                    long_date(self.today(now))
                )),
                ..Answer::text(if first {
                    self.conversations.keep(
                        channel,
                        account,
                        Conversation::Example {
                            rollout_id: delivery.rollout_id,
                            person_id: person.clone(),
                            follow_up: delivery.step_number,
                            touched_at: now,
                        },
                    );
                    "Thank you for answering. If you like, type a short example of how you used it (no names or details of any child or family), or send /cancel."
                } else {
                    "You had already answered this; your first answer stands."
                })
            },
            outcome: InboundOutcome::Answered {
                person_id: person,
                answer: label,
                first,
            },
        })
    }

    async fn list_pending(
        &self,
        person: String,
        pending: Vec<cascade_store::PendingItem>,
    ) -> Result<Handled, Unavailable> {
        let count = pending.len();
        if count == 0 {
            return Ok(Handled {
                outcome: InboundOutcome::Listed {
                    person_id: person,
                    count,
                },
                answer: Answer::text("Nothing is waiting for you: you are up to date. Thank you."),
            });
        }
        let mut lines = vec![format!(
            "{count} item{} waiting for you to acknowledge:",
            if count == 1 { "" } else { "s" }
        )];
        for item in &pending {
            let title = self.title(&item.rollout_id).await;
            lines.push(format!("- {title} (/ack {})", item.item_id));
        }
        let actions = self.list_actions(&pending).await;
        Ok(Handled {
            outcome: InboundOutcome::Listed {
                person_id: person,
                count,
            },
            answer: Answer {
                actions,
                ..Answer::text(lines.join("\n"))
            },
        })
    }

    /// The buttons of a `/pending` list: one per item.
    async fn list_actions(&self, pending: &[cascade_store::PendingItem]) -> Vec<Action> {
        let mut actions = Vec::new();
        for item in pending {
            let title = self.title(&item.rollout_id).await;
            actions.push(Action {
                id: self.keys.sign(&ActionRef::ListAck(item.delivery_id)),
                label: format!("Acknowledge: {}", truncate(&title, 40)),
                form: None,
            });
        }
        actions
    }

    /// Keeps the example that follows a follow-up answer, unless the privacy
    /// guard finds a likely identifier of a child in it.
    #[allow(clippy::too_many_arguments)]
    async fn example(
        &self,
        rollout_id: String,
        person_id: String,
        follow_up: u32,
        text: &str,
        channel: &str,
        account: &str,
        now: i64,
    ) -> Result<Handled, Unavailable> {
        let text = text.trim();
        if let Some(finding) = self.rollouts.guard().blocking(text, &[]).first() {
            tracing::warn!(
                channel,
                "refused a follow-up example the privacy guard blocked"
            );
            let problem = format!(
                "That example was not kept: it seems to hold a {}. Please type it again without any detail that could identify a child or family, or send /cancel.",
                finding.kind.label()
            );
            self.conversations.keep(
                channel,
                account,
                Conversation::Example {
                    rollout_id,
                    person_id,
                    follow_up,
                    touched_at: now,
                },
            );
            return Ok(Handled {
                outcome: InboundOutcome::Asked,
                answer: Answer::text(problem),
            });
        }
        let example: String = text.chars().take(MAX_EXAMPLE_CHARS).collect();
        self.store
            .add_follow_up_example(&rollout_id, &person_id, follow_up, &example)
            .await?;
        Ok(Handled {
            outcome: InboundOutcome::ExampleKept { person_id },
            answer: Answer::text("Thank you: your example is kept with your answer."),
        })
    }

    fn ask(&self, question: conversation::Question) -> Handled {
        let actions = question
            .choices
            .into_iter()
            .map(|(choice, label)| Action {
                id: self.keys.sign(&ActionRef::Choice(choice)),
                label,
                form: None,
            })
            .collect();
        Handled {
            outcome: InboundOutcome::Asked,
            answer: Answer {
                actions,
                ..Answer::text(question.text)
            },
        }
    }

    async fn converse(
        &self,
        mut draft: Draft,
        said: Said<'_>,
        channel: &str,
        account: &str,
        now: i64,
    ) -> Result<Handled, Unavailable> {
        match draft.answer(said, self.today(now), now) {
            Next::Ask(question) => {
                self.conversations
                    .keep(channel, account, Conversation::Confirm(draft));
                Ok(self.ask(question))
            }
            Next::Cancelled => Ok(Handled {
                outcome: InboundOutcome::Cancelled,
                answer: Answer::text("Cancelled. Nothing was recorded."),
            }),
            Next::Done(checked) => {
                self.record_cascade(
                    draft.champion_id,
                    draft.item_id,
                    &draft.title,
                    &draft.teams,
                    checked,
                    channel,
                    now,
                )
                .await
            }
        }
    }

    #[allow(clippy::too_many_arguments)]
    async fn record_cascade(
        &self,
        champion_id: String,
        item_id: String,
        title: &str,
        teams: &[(String, String)],
        checked: CheckedCascade,
        channel: &str,
        now: i64,
    ) -> Result<Handled, Unavailable> {
        let via = Via { channel, at: now };
        let first = self
            .responses
            .confirm_cascade(&champion_id, &item_id, &checked, via)
            .await?
            .is_first();
        let team = team_name(teams, &checked.team_id);
        let text = if first {
            format!(
                "Recorded: you cascaded \"{title}\" to {team} on {} ({} present). Thank you.",
                long_date(checked.session_date),
                checked.present
            )
        } else {
            format!("That cascade of \"{title}\" to {team} was already recorded.")
        };
        tracing::info!(channel, champion = %champion_id, team = %checked.team_id, "recorded a cascade confirmation");
        Ok(Handled {
            outcome: InboundOutcome::Confirmed {
                person_id: champion_id,
                team_id: checked.team_id,
                first,
            },
            answer: Answer {
                notice: Some("Cascade recorded".to_owned()),
                ..Answer::text(text)
            },
        })
    }
}
