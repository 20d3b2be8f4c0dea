//! The acknowledgement service: the one home of the rules for what a
//! person does with a delivery, whichever way they reach it (a signed link
//! through the HTTP server, a button, form or command in chat). It says
//! whether a delivery was for the person and whether they may act on it,
//! and records the acknowledgement, the follow-up answer or the champion's
//! cascade confirmation. Each route authenticates the person its own way
//! (a token, a linked chat account) before it asks, and turns a
//! [`Refused`] into its own words, log line and refusal count.
//!
//! Writes go one at a time: SQLite has one writer, and concurrent write
//! transactions would collide and back off in its busy handler. With
//! [`Responses::with_group_commit`] acknowledgements are committed in
//! groups ([`group_commit`]), as the HTTP server does under load.

mod group_commit;
#[cfg(test)]
mod tests;

use crate::ack::CheckedCascade;
use cascade_model::content::CheckQuestion;
use cascade_model::rollout::{RolloutDefinition, StepKind};
use cascade_store::{
    AckMethod, AckOutcome, CheckAttempt, DeliveryInfo, Evidence, NewAcknowledgement, NewAnswer,
    NewConfirmation, Outbox, RefresherAttempt, Store, StoreError, TeamPosts,
};
use group_commit::GroupCommit;
use std::sync::Arc;

/// Why a person may not do what they asked with a delivery. Nothing is
/// recorded; the route says it in its own words.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refused {
    /// No delivery has that id.
    NoSuchDelivery,
    /// The delivery went to someone else.
    SomeoneElse,
    /// An escalation or digest about someone else's learning: its reader
    /// has nothing of their own to acknowledge through it.
    NotTheirLearning,
    /// Not a follow-up question to the reader's own learning.
    NotAFollowUp,
    /// The follow-up the delivery asked is not in its rollout.
    NoSuchFollowUp,
    /// The follow-up has no answer by that number.
    NoSuchAnswer,
    /// A cascade confirmation from someone who champions no team.
    NotAChampion,
    /// A team post's acknowledgement from someone not in that team's
    /// audience in the post's rollout.
    NotInTeam,
    /// Not a refresher to the reader's own learning, or its item has no
    /// check question to ask.
    NotARefresher,
}

/// The store failed or the group commit stopped; nothing was recorded.
#[derive(Debug, thiserror::Error)]
pub enum Unavailable {
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The group commit failed (its reason, shared by every request of the
    /// group) or its writer stopped.
    #[error("{0}")]
    Writer(String),
}

/// Why the service did not do what it was asked.
#[derive(Debug, thiserror::Error)]
pub enum Denied {
    #[error("refused: {0:?}")]
    Refused(Refused),
    #[error(transparent)]
    Unavailable(#[from] Unavailable),
}

impl From<Refused> for Denied {
    fn from(refused: Refused) -> Denied {
        Denied::Refused(refused)
    }
}

impl From<StoreError> for Denied {
    fn from(e: StoreError) -> Denied {
        Denied::Unavailable(Unavailable::Store(e))
    }
}

/// Whether a record is new or repeats one already kept (which stands).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Recorded {
    First,
    Repeat,
}

impl Recorded {
    fn of(first: bool) -> Recorded {
        if first {
            Recorded::First
        } else {
            Recorded::Repeat
        }
    }

    pub fn is_first(self) -> bool {
        self == Recorded::First
    }
}

/// An acknowledgement through a delivery, as recorded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Acknowledged {
    pub delivery: DeliveryInfo,
    pub outcome: AckOutcome,
}

/// An acknowledgement through a team post, as recorded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PostAcknowledged {
    pub rollout_id: String,
    pub outcome: AckOutcome,
}

/// A follow-up delivery's question and the answer chosen, not yet recorded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChosenAnswer {
    pub delivery: DeliveryInfo,
    pub question: String,
    pub answer: String,
    /// The answer says the learning was used.
    pub used: bool,
    /// The follow-up's reasons for not using it (none when it has none).
    pub reasons: Vec<String>,
}

/// A follow-up delivery's reason for not using the learning, chosen, not
/// yet recorded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChosenReason {
    pub delivery: DeliveryInfo,
    pub reason: String,
}

/// A person's answer to one check question.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CheckChoice {
    /// The question's number in the item version (1-based).
    pub question: u32,
    /// The option chosen (1-based).
    pub chosen: u32,
    /// The tries at the question the person had made when it was asked.
    pub seen: u32,
}

/// Where a person is with one check question.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QuestionState {
    /// 1-based.
    pub number: u32,
    /// The right answer has been given.
    pub answered: bool,
    pub right_first_time: bool,
    /// Answers given so far: what the next asking of it carries as `seen`.
    pub tries: u32,
    /// The answer just given to it was wrong.
    pub wrong_now: bool,
}

/// What came of answers to check questions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Checked {
    /// Every question had its right answer: the acknowledgement (or the
    /// one made before).
    Acknowledged(Acknowledged),
    /// Questions still to answer right, each as it stands.
    Ask(Vec<QuestionState>),
}

impl Checked {
    /// The first question still to answer right, if any.
    pub fn next_question(&self) -> Option<&QuestionState> {
        match self {
            Checked::Ask(states) => states.iter().find(|q| !q.answered),
            Checked::Acknowledged(_) => None,
        }
    }
}

/// Where a person is with the check question a refresher asked them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refreshed {
    pub delivery: DeliveryInfo,
    /// The question's number in the item version (1-based).
    pub question: u32,
    /// The right answer has been given.
    pub answered: bool,
    pub right_first_time: bool,
    /// Answers given so far: what the next asking carries as `seen`.
    pub tries: u32,
    /// The answer just given was wrong.
    pub wrong_now: bool,
    /// The answer just given was right and counted now (not a repeat).
    pub right_now: bool,
}

/// Where and when a response came: the channel it is recorded under.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Via<'a> {
    pub channel: &'a str,
    /// Unix milliseconds.
    pub at: i64,
}

/// The acknowledgement service over a store.
pub struct Responses<S> {
    store: Arc<S>,
    /// Held for every write.
    writes: Arc<tokio::sync::Mutex<()>>,
    /// Acknowledgements go through it when set.
    group: Option<GroupCommit>,
}

impl<S> Responses<S> {
    /// The service writing each record in its own transaction.
    pub fn new(store: Arc<S>) -> Responses<S> {
        Responses {
            store,
            writes: Arc::new(tokio::sync::Mutex::new(())),
            group: None,
        }
    }

    /// The service committing acknowledgements in groups: each call still
    /// returns only once its own acknowledgement is committed.
    pub fn with_group_commit(store: Arc<S>) -> Responses<S> {
        Responses {
            group: Some(GroupCommit::default()),
            ..Responses::new(store)
        }
    }

    pub fn store(&self) -> &Arc<S> {
        &self.store
    }
}

impl<S: Evidence + 'static> Responses<S> {
    /// Who a delivery is for and whether `person` may act on it: the
    /// delivery, if it went to them.
    pub async fn delivery_for(
        &self,
        person: &str,
        delivery_id: i64,
    ) -> Result<DeliveryInfo, Denied> {
        let delivery = self
            .store
            .delivery(delivery_id)
            .await?
            .ok_or(Refused::NoSuchDelivery)?;
        if delivery.recipient_id != person {
            return Err(Refused::SomeoneElse.into());
        }
        Ok(delivery)
    }

    /// Records `person`'s acknowledgement of the item version a delivery
    /// brought them (a repeat changes nothing and says when the first was).
    pub async fn acknowledge(
        &self,
        person: &str,
        delivery_id: i64,
        method: AckMethod,
        via: Via<'_>,
    ) -> Result<Acknowledged, Denied> {
        let delivery = self.delivery_for(person, delivery_id).await?;
        if delivery.person_id != delivery.recipient_id {
            return Err(Refused::NotTheirLearning.into());
        }
        let outcome = self
            .record_acknowledgement(NewAcknowledgement {
                person_id: delivery.recipient_id.clone(),
                item_id: delivery.item_id.clone(),
                item_version: delivery.item_version.clone(),
                rollout_id: Some(delivery.rollout_id.clone()),
                delivery_id: Some(delivery.id),
                channel: via.channel.to_owned(),
                method,
                at: via.at,
            })
            .await?;
        Ok(Acknowledged { delivery, outcome })
    }

    /// Where `person` is with the check questions of a delivery's item
    /// version, recording nothing (for a page a GET shows).
    pub async fn check_state(
        &self,
        person: &str,
        delivery_id: i64,
        questions: &[CheckQuestion],
    ) -> Result<Checked, Denied> {
        let delivery = self.delivery_for(person, delivery_id).await?;
        if delivery.person_id != delivery.recipient_id {
            return Err(Refused::NotTheirLearning.into());
        }
        let progress = self
            .store
            .check_progress(
                &delivery.recipient_id,
                &delivery.item_id,
                &delivery.item_version,
            )
            .await?;
        Ok(match progress.acknowledged_at {
            Some(at) => Checked::Acknowledged(Acknowledged {
                delivery,
                outcome: AckOutcome::AlreadyAcknowledged { at },
            }),
            None => Checked::Ask(question_states(questions, &progress, &[])),
        })
    }

    /// Check questions (issue 19): takes `person`'s answers to the check
    /// questions of the item version a delivery brought them, and when
    /// every question has had its right answer, records the
    /// acknowledgement, which takes the answers as its evidence in its own
    /// transaction. An answer counts as a try only while the store holds
    /// the tries the person saw when asked (`CheckChoice::seen`), so the
    /// same press or form handled twice counts once. Already acknowledged:
    /// nothing is asked or counted, and the first acknowledgement stands.
    pub async fn check_and_acknowledge(
        &self,
        person: &str,
        delivery_id: i64,
        questions: &[CheckQuestion],
        choices: &[CheckChoice],
        method: AckMethod,
        via: Via<'_>,
    ) -> Result<Checked, Denied> {
        let delivery = self.delivery_for(person, delivery_id).await?;
        if delivery.person_id != delivery.recipient_id {
            return Err(Refused::NotTheirLearning.into());
        }
        let progress = self
            .store
            .check_progress(
                &delivery.recipient_id,
                &delivery.item_id,
                &delivery.item_version,
            )
            .await?;
        if let Some(at) = progress.acknowledged_at {
            return Ok(Checked::Acknowledged(Acknowledged {
                delivery,
                outcome: AckOutcome::AlreadyAcknowledged { at },
            }));
        }
        let mut attempts = Vec::with_capacity(choices.len());
        let mut wrong = Vec::new();
        for choice in choices {
            let question = (choice.question as usize)
                .checked_sub(1)
                .and_then(|i| questions.get(i))
                .ok_or(Refused::NoSuchAnswer)?;
            if choice.chosen == 0 || choice.chosen as usize > question.options.len() {
                return Err(Refused::NoSuchAnswer.into());
            }
            let right = choice.chosen as usize == question.answer_number();
            if !right {
                wrong.push(choice.question);
            }
            attempts.push(CheckAttempt {
                person_id: delivery.recipient_id.clone(),
                item_id: delivery.item_id.clone(),
                item_version: delivery.item_version.clone(),
                question: choice.question,
                question_digest: question.digest(),
                chosen: choice.chosen,
                right,
                seen: choice.seen,
                at: via.at,
            });
        }
        let progress = if attempts.is_empty() {
            progress
        } else {
            {
                let _writer = self.writes.lock().await;
                self.store.record_check_attempts(&attempts).await?;
            }
            self.store
                .check_progress(
                    &delivery.recipient_id,
                    &delivery.item_id,
                    &delivery.item_version,
                )
                .await?
        };
        let states = question_states(questions, &progress, &wrong);
        if !states.iter().all(|q| q.answered) {
            return Ok(Checked::Ask(states));
        }
        let outcome = self
            .record_acknowledgement(NewAcknowledgement {
                person_id: delivery.recipient_id.clone(),
                item_id: delivery.item_id.clone(),
                item_version: delivery.item_version.clone(),
                rollout_id: Some(delivery.rollout_id.clone()),
                delivery_id: Some(delivery.id),
                channel: via.channel.to_owned(),
                method,
                at: via.at,
            })
            .await?;
        Ok(Checked::Acknowledged(Acknowledged { delivery, outcome }))
    }

    /// Records a champion's checked confirmation that they cascaded
    /// `item_id` to one of their teams.
    pub async fn confirm_cascade(
        &self,
        champion_id: &str,
        item_id: &str,
        checked: &CheckedCascade,
        via: Via<'_>,
    ) -> Result<Recorded, Unavailable> {
        let confirmation = NewConfirmation {
            champion_id: champion_id.to_owned(),
            item_id: item_id.to_owned(),
            team_id: checked.team_id.clone(),
            session_date: checked.session_date.to_string(),
            present: checked.present,
            method: checked.method.to_owned(),
            note: checked.note.clone(),
            channel: via.channel.to_owned(),
            at: via.at,
        };
        let _writer = self.writes.lock().await;
        let recorded = self.store.confirm_cascade(&confirmation).await?;
        metrics::counter!(crate::metrics::CONFIRMATIONS, "channel" => via.channel.to_owned())
            .increment(1);
        Ok(Recorded::of(recorded))
    }

    /// Records an acknowledgement, through the group commit when there is one.
    async fn record_acknowledgement(
        &self,
        ack: NewAcknowledgement,
    ) -> Result<AckOutcome, Unavailable> {
        let channel = ack.channel.clone();
        let outcome = match &self.group {
            Some(group) => group.acknowledge(&self.store, &self.writes, ack).await?,
            None => {
                let _writer = self.writes.lock().await;
                self.store.acknowledge_item(&ack).await?
            }
        };
        let counted = match outcome {
            AckOutcome::Recorded => "recorded",
            AckOutcome::AlreadyAcknowledged { .. } => "repeat",
        };
        metrics::counter!(crate::metrics::ACKNOWLEDGEMENTS, "channel" => channel, "outcome" => counted)
            .increment(1);
        Ok(outcome)
    }
}

impl<S: Evidence + 'static> Responses<S> {
    /// Spaced refreshers (issue 19): takes `person`'s answer (option,
    /// tries seen) to the check question a refresher delivery asked them,
    /// of the item version's `questions`, or with `None` only says where
    /// they are. An answer counts as a try only while the store holds the
    /// tries the person saw, so a press handled twice counts once; after
    /// the right answer nothing more counts. The answer is the refresher's,
    /// never an acknowledgement's, and nothing follows it.
    pub async fn refresher_answer(
        &self,
        person: &str,
        delivery_id: i64,
        questions: &[CheckQuestion],
        choice: Option<(u32, u32)>,
        via: Via<'_>,
    ) -> Result<Refreshed, Denied> {
        let delivery = self.delivery_for(person, delivery_id).await?;
        if delivery.step_kind != StepKind::Refresher || delivery.person_id != delivery.recipient_id
        {
            return Err(Refused::NotARefresher.into());
        }
        let (number, question) =
            cascade_model::content::refresher_question(questions, delivery.step_number)
                .ok_or(Refused::NotARefresher)?;
        let (rollout_id, refresher) = (delivery.rollout_id.clone(), delivery.step_number);
        let before = self
            .store
            .refresher_answer(&rollout_id, person, refresher)
            .await?;
        let mut wrong_now = false;
        let mut right_now = false;
        let after = match choice {
            Some((chosen, seen)) if before.as_ref().is_none_or(|a| a.answered_at.is_none()) => {
                if chosen == 0 || chosen as usize > question.options.len() {
                    return Err(Refused::NoSuchAnswer.into());
                }
                let right = chosen as usize == question.answer_number();
                let counted = {
                    let _writer = self.writes.lock().await;
                    self.store
                        .record_refresher_attempt(&RefresherAttempt {
                            rollout_id: delivery.rollout_id.clone(),
                            person_id: person.to_owned(),
                            refresher: delivery.step_number,
                            delivery_id: delivery.id,
                            item_id: delivery.item_id.clone(),
                            item_version: delivery.item_version.clone(),
                            question: number,
                            question_digest: question.digest(),
                            chosen,
                            right,
                            seen,
                            channel: via.channel.to_owned(),
                            at: via.at,
                        })
                        .await?
                };
                wrong_now = !right;
                right_now = right && counted;
                self.store
                    .refresher_answer(&rollout_id, person, refresher)
                    .await?
            }
            _ => before,
        };
        Ok(Refreshed {
            question: number,
            answered: after.as_ref().is_some_and(|a| a.answered_at.is_some()),
            right_first_time: after.as_ref().is_some_and(|a| a.right_first_time),
            tries: after.as_ref().map_or(0, |a| a.attempts),
            wrong_now,
            right_now,
            delivery,
        })
    }
}

impl<S: Evidence + Outbox + 'static> Responses<S> {
    /// The question a follow-up delivery to `person` asked and its `n`-th
    /// answer (1-based).
    pub async fn follow_up_answer(
        &self,
        person: &str,
        delivery_id: i64,
        n: usize,
    ) -> Result<ChosenAnswer, Denied> {
        let (delivery, question) = self.follow_up_of(person, delivery_id).await?;
        let answer = n
            .checked_sub(1)
            .and_then(|i| question.answers.get(i))
            .cloned()
            .ok_or(Refused::NoSuchAnswer)?;
        Ok(ChosenAnswer {
            delivery,
            used: question.says_used(&answer),
            reasons: question.reasons.clone(),
            question: question.question,
            answer,
        })
    }

    /// The follow-up a delivery to `person` asked, if it is theirs.
    async fn follow_up_of(
        &self,
        person: &str,
        delivery_id: i64,
    ) -> Result<(DeliveryInfo, cascade_model::rollout::FollowUp), Denied> {
        let delivery = self.delivery_for(person, delivery_id).await?;
        if delivery.step_kind != StepKind::FollowUp || delivery.person_id != delivery.recipient_id {
            return Err(Refused::NotAFollowUp.into());
        }
        let definition = self
            .store
            .rollout(&delivery.rollout_id)
            .await?
            .and_then(|stored| serde_json::from_str::<RolloutDefinition>(&stored.definition).ok());
        let question = definition
            .and_then(|d| {
                d.follow_ups
                    .get(delivery.step_number.saturating_sub(1) as usize)
                    .cloned()
            })
            .ok_or(Refused::NoSuchFollowUp)?;
        Ok((delivery, question))
    }

    /// The `n`-th reason (1-based) of the follow-up a delivery to `person`
    /// asked, for not using the learning.
    pub async fn follow_up_reason(
        &self,
        person: &str,
        delivery_id: i64,
        n: usize,
    ) -> Result<ChosenReason, Denied> {
        let (delivery, question) = self.follow_up_of(person, delivery_id).await?;
        let reason = n
            .checked_sub(1)
            .and_then(|i| question.reasons.get(i))
            .cloned()
            .ok_or(Refused::NoSuchAnswer)?;
        Ok(ChosenReason { delivery, reason })
    }

    /// Records the reason on the person's answer; the first reason stands,
    /// and an answer not yet given takes none.
    pub async fn reason(&self, chosen: &ChosenReason) -> Result<Recorded, Unavailable> {
        let _writer = self.writes.lock().await;
        Ok(Recorded::of(
            self.store
                .add_follow_up_reason(
                    &chosen.delivery.rollout_id,
                    &chosen.delivery.recipient_id,
                    chosen.delivery.step_number,
                    &chosen.reason,
                )
                .await?,
        ))
    }

    /// Records a follow-up answer; the first answer stands.
    pub async fn answer(
        &self,
        chosen: &ChosenAnswer,
        via: Via<'_>,
    ) -> Result<Recorded, Unavailable> {
        let answer = NewAnswer {
            rollout_id: chosen.delivery.rollout_id.clone(),
            person_id: chosen.delivery.recipient_id.clone(),
            follow_up: chosen.delivery.step_number,
            answer: chosen.answer.clone(),
            example: None,
            channel: via.channel.to_owned(),
            at: via.at,
        };
        let _writer = self.writes.lock().await;
        Ok(Recorded::of(self.store.answer_follow_up(&answer).await?))
    }
}

impl<S: Evidence + Store + 'static> Responses<S> {
    /// The teams `person` covers as a champion, (id, name) by name, as the
    /// store holds them now; refused when they cover none.
    pub async fn champion_teams(&self, person: &str) -> Result<Vec<(String, String)>, Denied> {
        let champions = self.store.champions().await?;
        let teams = self.store.teams().await?;
        let covered = cascade_model::directory::teams_covered(&champions, &teams)
            .remove(person)
            .unwrap_or_default();
        Ok(covering(covered)?)
    }
}

impl<S: Evidence + TeamPosts + 'static> Responses<S> {
    /// Records `person`'s acknowledgement through a team post, as their own
    /// button would, if they are in the post's team in its rollout.
    pub async fn acknowledge_team_post(
        &self,
        person: &str,
        post_id: i64,
        method: AckMethod,
        via: Via<'_>,
    ) -> Result<PostAcknowledged, Denied> {
        let member = self
            .store
            .team_post_member(post_id, person)
            .await?
            .ok_or(Refused::NotInTeam)?;
        let outcome = self
            .record_acknowledgement(NewAcknowledgement {
                person_id: person.to_owned(),
                item_id: member.item_id,
                item_version: member.item_version,
                rollout_id: Some(member.rollout_id.clone()),
                delivery_id: member.delivery_id,
                channel: via.channel.to_owned(),
                method,
                at: via.at,
            })
            .await?;
        Ok(PostAcknowledged {
            rollout_id: member.rollout_id,
            outcome,
        })
    }
}

/// Each question as the store's answers leave it; `wrong`: the questions
/// just answered wrong.
fn question_states(
    questions: &[CheckQuestion],
    progress: &cascade_store::CheckProgress,
    wrong: &[u32],
) -> Vec<QuestionState> {
    questions
        .iter()
        .zip(1u32..)
        .map(|(question, number)| {
            let kept = progress.answer(number, &question.digest());
            QuestionState {
                number,
                answered: kept.is_some_and(|a| a.answered_at.is_some()),
                right_first_time: kept.is_some_and(|a| a.right_first_time),
                tries: kept.map_or(0, |a| a.attempts),
                wrong_now: wrong.contains(&number),
            }
        })
        .collect()
}

/// The teams a champion covers, (id, name), from wherever the caller keeps
/// them: refused when there are none.
pub fn covering(teams: Vec<(String, String)>) -> Result<Vec<(String, String)>, Refused> {
    if teams.is_empty() {
        Err(Refused::NotAChampion)
    } else {
        Ok(teams)
    }
}

/// The name of the team with id `team_id` among a champion's teams; empty
/// when it is not one of them.
pub fn team_name<'t>(teams: &'t [(String, String)], team_id: &str) -> &'t str {
    teams
        .iter()
        .find(|(id, _)| id == team_id)
        .map(|(_, name)| name.as_str())
        .unwrap_or_default()
}
