//! What people do on chat channels, turned into evidence and answered: a
//! one-time code links their chat account to them (`link_code`, kept only
//! as a keyed hash); a button press or
//! command acknowledges, answers a follow-up or lists what is pending, but
//! only from the account linked to the person the delivery was for; a
//! champion confirms a cascade through a form or a short guided exchange
//! (`conversation`). Button ids are signed (`actions`). Every refusal is
//! logged, and nothing about any item is told to an unlinked account.

mod command;
pub mod conversation;
mod handlers;
mod link_code;

pub use cascade_model::actions::{self, ActionKey, ActionRef};
pub use command::ChatCommand;
pub use link_code::{CODE_LIFETIME_MS, LinkCodeKey, LinkCodeKeyError, issue_code, legacy_hash};

use crate::ack::CASCADE_METHODS;
use crate::delivery::{Rollouts, World, from_millis};
use cascade_model::rollout::{RolloutDefinition, StepKind};
use cascade_plugin_api::{Action, Form, FormField, InboundKind};
use cascade_plugin_host::Inbound;
use cascade_store::{
    AckMethod, AckOutcome, Evidence, NewAcknowledgement, NewAnswer, NewConfirmation, Outbox, Store,
    StoreError, TeamPosts,
};
use chrono::NaiveDate;
use chrono_tz::Tz;
use conversation::{Draft, Next, Said};
use handlers::Origin;
use std::collections::HashMap;
use std::sync::Mutex;

const HELP: &str = "This bot brings you learning from your safeguarding partnership.\n\n\
/link CODE: link this chat to you, with the code your business unit gave you\n\
/pending: learning waiting for you to acknowledge\n\
/ack ITEM: acknowledge an item by its id\n\
/cancel: stop a confirmation you started\n\
/help: this message";

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
}

impl Conversation {
    fn touched_at(&self) -> i64 {
        match self {
            Conversation::Confirm(draft) => draft.touched_at,
            Conversation::Example { touched_at, .. } => *touched_at,
        }
    }
}

/// Conversations in progress, by (channel instance, account). Kept in
/// memory: one lost to a restart is started again with a button press.
#[derive(Default)]
pub struct Conversations {
    open: Mutex<HashMap<(String, String), Conversation>>,
}

impl Conversations {
    fn take(&self, instance: &str, account: &str, now: i64) -> Option<Conversation> {
        let mut open = self.open.lock().unwrap_or_else(|p| p.into_inner());
        open.retain(|_, c| now - c.touched_at() < conversation::IDLE_LIMIT_MS);
        open.remove(&(instance.to_owned(), account.to_owned()))
    }

    fn keep(&self, instance: &str, account: &str, conversation: Conversation) {
        self.open
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert((instance.to_owned(), account.to_owned()), conversation);
    }
}

/// The longest example kept with a follow-up answer, in characters.
const MAX_EXAMPLE_CHARS: usize = 1000;

/// What handling inbound events needs.
pub struct Desk<'a, S> {
    pub store: &'a S,
    pub world: &'a World,
    pub rollouts: &'a Rollouts,
    pub keys: &'a ActionKey,
    /// Hashes the link codes people send.
    pub link_codes: &'a LinkCodeKey,
    pub conversations: &'a Conversations,
}

/// The buttons a delivery of an item carries: acknowledge, and for a
/// champion who covers teams, "I've cascaded this to my team" (opening a
/// form at once where the channel has forms).
pub fn item_actions(
    keys: &ActionKey,
    delivery_id: i64,
    champion_teams: &[(String, String)],
    forms: bool,
    today: NaiveDate,
) -> Vec<Action> {
    let mut actions = vec![Action {
        id: keys.sign(&ActionRef::Ack(delivery_id)),
        label: "Acknowledge".to_owned(),
        form: None,
    }];
    if let Some(action) = confirm_action(keys, delivery_id, champion_teams, forms, today) {
        actions.push(action);
    }
    actions
}

fn confirm_action(
    keys: &ActionKey,
    delivery_id: i64,
    champion_teams: &[(String, String)],
    forms: bool,
    today: NaiveDate,
) -> Option<Action> {
    if champion_teams.is_empty() {
        return None;
    }
    let field = |id: &str, label: &str| FormField {
        id: id.to_owned(),
        label: label.to_owned(),
        placeholder: None,
        value: None,
        required: true,
        max_length: Some(100),
        multiline: false,
    };
    let team_names: Vec<&str> = champion_teams.iter().map(|(_, n)| n.as_str()).collect();
    let form = forms.then(|| Form {
        title: "Confirm you cascaded this".to_owned(),
        fields: vec![
            FormField {
                placeholder: Some(truncate(&team_names.join(", "), 100)),
                value: (champion_teams.len() == 1).then(|| champion_teams[0].1.clone()),
                ..field("team", "Team")
            },
            FormField {
                value: Some(today.to_string()),
                max_length: Some(10),
                ..field("session_date", "Date of the session (YYYY-MM-DD)")
            },
            FormField {
                max_length: Some(6),
                ..field("present", "Number present")
            },
            FormField {
                placeholder: Some(
                    CASCADE_METHODS
                        .iter()
                        .map(|(_, l)| *l)
                        .collect::<Vec<_>>()
                        .join(", "),
                ),
                ..field("method", "How you shared it")
            },
            FormField {
                required: false,
                max_length: Some(crate::ack::MAX_NOTE_CHARS as u16),
                multiline: true,
                ..field("note", "Note (optional)")
            },
        ],
    });
    Some(Action {
        id: keys.sign(&ActionRef::Confirm(delivery_id)),
        label: "I've cascaded this to my team".to_owned(),
        form,
    })
}

fn truncate(text: &str, chars: usize) -> String {
    match text.char_indices().nth(chars.saturating_sub(1)) {
        Some((cut, _)) => format!("{}…", &text[..cut]),
        None => text.to_owned(),
    }
}

fn long_date(day: NaiveDate) -> String {
    day.format("%-d %B %Y").to_string()
}

impl<S: Evidence + Outbox + Store + TeamPosts> Desk<'_, S> {
    fn today(&self, now: i64) -> NaiveDate {
        let tz: Tz = self.rollouts.calendar().time_zone();
        from_millis(now).with_timezone(&tz).date_naive()
    }

    async fn refuse(
        &self,
        channel: &str,
        person: Option<&str>,
        delivery: Option<i64>,
        method: AckMethod,
        reason: Refusal,
        now: i64,
    ) -> Result<Handled, StoreError> {
        // The store only counts refusals; who and which delivery go to the log.
        tracing::warn!(
            channel,
            person,
            delivery,
            reason = reason.code(),
            "refused an inbound event"
        );
        self.store
            .count_refusal(channel, method, reason.code(), now)
            .await?;
        Ok(Handled::refused(reason))
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
    ) -> Result<Handled, StoreError> {
        let from = Origin {
            identity,
            account: event.event.account.as_str(),
            channel: event.instance.as_str(),
            now,
        };
        match &event.event.kind {
            InboundKind::Command { name, args } => {
                self.command(ChatCommand::parse(name, args), from).await
            }
            InboundKind::Text { text } => self.text(text, from).await,
            InboundKind::Action { action_id, .. } => self.action(action_id, from).await,
            InboundKind::Form { action_id, fields } => self.form(action_id, fields, from).await,
        }
    }

    /// The person the account is linked to, if they are the recipient of
    /// the delivery; otherwise the logged refusal.
    async fn recipient(
        &self,
        identity: &str,
        account: &str,
        delivery_id: i64,
        channel: &str,
        now: i64,
    ) -> Result<Result<(String, cascade_store::DeliveryInfo), Handled>, StoreError> {
        let method = AckMethod::Button;
        let d = Some(delivery_id);
        let Some(person) = self.store.person_for_account(identity, account).await? else {
            return Ok(Err(self
                .refuse(channel, None, d, method, Refusal::UnlinkedAccount, now)
                .await?));
        };
        let Some(delivery) = self.store.delivery(delivery_id).await? else {
            return Ok(Err(self
                .refuse(
                    channel,
                    Some(&person),
                    d,
                    method,
                    Refusal::UnknownDelivery,
                    now,
                )
                .await?));
        };
        if delivery.recipient_id != person {
            return Ok(Err(self
                .refuse(
                    channel,
                    Some(&person),
                    d,
                    method,
                    Refusal::DifferentPerson,
                    now,
                )
                .await?));
        }
        Ok(Ok((person, delivery)))
    }

    async fn acknowledge(
        &self,
        person: String,
        delivery: cascade_store::DeliveryInfo,
        channel: &str,
        method: AckMethod,
        now: i64,
    ) -> Result<Handled, StoreError> {
        if delivery.person_id != delivery.recipient_id {
            // An escalation about someone else's learning: nothing of the
            // reader's own to acknowledge.
            return self
                .refuse(
                    channel,
                    Some(&person),
                    Some(delivery.id),
                    method,
                    Refusal::UnknownDelivery,
                    now,
                )
                .await;
        }
        let outcome = self
            .store
            .acknowledge_item(&NewAcknowledgement {
                person_id: person.clone(),
                item_id: delivery.item_id.clone(),
                item_version: delivery.item_version.clone(),
                rollout_id: Some(delivery.rollout_id.clone()),
                delivery_id: Some(delivery.id),
                channel: channel.to_owned(),
                method,
                at: now,
            })
            .await?;
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
        Ok(Handled {
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
        })
    }

    /// A press of a team post's button: acknowledges for the person linked
    /// to the account, if they are in that team in the post's rollout, as
    /// their own button would. The answer is for them alone and leaves the
    /// shared post as it is (its count moves by an edit of its own).
    async fn acknowledge_post(
        &self,
        identity: &str,
        account: &str,
        post_id: i64,
        channel: &str,
        now: i64,
    ) -> Result<Handled, StoreError> {
        let method = AckMethod::Button;
        let Some(person) = self.store.person_for_account(identity, account).await? else {
            return self
                .refuse(channel, None, None, method, Refusal::UnlinkedAccount, now)
                .await;
        };
        let Some(member) = self.store.team_post_member(post_id, &person).await? else {
            return self
                .refuse(
                    channel,
                    Some(&person),
                    None,
                    method,
                    Refusal::NotInTeam,
                    now,
                )
                .await;
        };
        let outcome = self
            .store
            .acknowledge_item(&NewAcknowledgement {
                person_id: person.clone(),
                item_id: member.item_id,
                item_version: member.item_version,
                rollout_id: Some(member.rollout_id.clone()),
                delivery_id: member.delivery_id,
                channel: channel.to_owned(),
                method,
                at: now,
            })
            .await?;
        let title = self.title(&member.rollout_id).await;
        let text = match outcome {
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
                first: outcome == AckOutcome::Recorded,
            },
            answer: Answer {
                notice: Some("Acknowledged".to_owned()),
                ..Answer::text(text)
            },
        })
    }

    async fn answer(
        &self,
        person: String,
        delivery: cascade_store::DeliveryInfo,
        answer: Option<usize>,
        channel: &str,
        account: &str,
        now: i64,
    ) -> Result<Handled, StoreError> {
        let rollout = self.store.rollout(&delivery.rollout_id).await?;
        let label = rollout
            .and_then(|r| serde_json::from_str::<RolloutDefinition>(&r.definition).ok())
            .and_then(|d| {
                let follow_up = d
                    .follow_ups
                    .get(delivery.step_number.checked_sub(1)? as usize)?;
                follow_up.answers.get(answer?.checked_sub(1)?).cloned()
            });
        let Some(label) = label.filter(|_| delivery.step_kind == StepKind::FollowUp) else {
            return self
                .refuse(
                    channel,
                    Some(&person),
                    Some(delivery.id),
                    AckMethod::Button,
                    Refusal::UnknownAnswer,
                    now,
                )
                .await;
        };
        let first = self
            .store
            .answer_follow_up(&NewAnswer {
                rollout_id: delivery.rollout_id.clone(),
                person_id: person.clone(),
                follow_up: delivery.step_number,
                answer: label.clone(),
                example: None,
                channel: channel.to_owned(),
                at: now,
            })
            .await?;
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
    ) -> Result<Handled, StoreError> {
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
        let mut actions = Vec::new();
        for item in &pending {
            let title = self.title(&item.rollout_id).await;
            lines.push(format!("- {title} (/ack {})", item.item_id));
            actions.push(Action {
                id: self.keys.sign(&ActionRef::Ack(item.delivery_id)),
                label: format!("Acknowledge: {}", truncate(&title, 40)),
                form: None,
            });
        }
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
    ) -> Result<Handled, StoreError> {
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
    ) -> Result<Handled, StoreError> {
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
        checked: crate::ack::CheckedCascade,
        channel: &str,
        now: i64,
    ) -> Result<Handled, StoreError> {
        let first = self
            .store
            .confirm_cascade(&NewConfirmation {
                champion_id: champion_id.clone(),
                item_id,
                team_id: checked.team_id.clone(),
                session_date: checked.session_date.to_string(),
                present: checked.present,
                method: checked.method.to_owned(),
                note: checked.note.clone(),
                channel: channel.to_owned(),
                at: now,
            })
            .await?;
        let team = teams
            .iter()
            .find(|(id, _)| *id == checked.team_id)
            .map(|(_, name)| name.as_str())
            .unwrap_or_default();
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
