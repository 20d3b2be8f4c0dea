//! What people do on chat channels, turned into evidence: a one-time code
//! links their chat account to them; a button press or command acknowledges
//! or answers a follow-up, but only from the account linked to the person
//! the delivery was for. Every refusal is logged.

use crate::plugins::Inbound;
use crate::rollout::RolloutDefinition;
use crate::store::{
    AckMethod, AckOutcome, CodeRefusal, Evidence, NewAcknowledgement, NewAnswer, Outbox, StoreError,
};
use cascade_plugin_api::InboundKind;
use sha2::{Digest, Sha256};

/// Link codes are short enough to type on a phone and avoid look-alikes.
const CODE_ALPHABET: &[u8] = b"ABCDEFGHJKMNPQRSTUVWXYZ23456789";
const CODE_LENGTH: usize = 8;
/// How long a link code may be used.
pub const CODE_LIFETIME_MS: i64 = 24 * 60 * 60 * 1000;

/// What came of an inbound event, for the plugin to tell the person.
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
    Refused {
        reason: Refusal,
    },
    /// Not something this handler deals with (e.g. `/help`).
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
            Refusal::UnknownDelivery => {
                "That message is no longer known. Use the buttons on the latest message."
            }
            Refusal::UnknownAnswer => {
                "That answer is not one of the choices. Use the buttons on the latest message."
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
        }
    }
}

/// A new random link code, and the hash the store keeps.
pub fn new_code() -> (String, String) {
    let mut bytes = [0u8; CODE_LENGTH];
    getrandom::fill(&mut bytes).expect("the operating system provides randomness");
    let code: String = bytes
        .iter()
        .map(|b| CODE_ALPHABET[usize::from(*b) % CODE_ALPHABET.len()] as char)
        .collect();
    let hash = code_hash(&code);
    (code, hash)
}

/// Codes are compared without case or spaces, as people type them.
pub fn code_hash(code: &str) -> String {
    let normal: String = code
        .chars()
        .filter(|c| !c.is_whitespace() && *c != '-')
        .collect::<String>()
        .to_uppercase();
    hex::encode(Sha256::digest(normal.as_bytes()))
}

/// Issues a code for a person, valid for 24 hours from `now`.
pub async fn issue_code<S: Evidence>(
    store: &S,
    person_id: &str,
    now: i64,
) -> Result<String, StoreError> {
    let (code, hash) = new_code();
    store
        .create_link_code(person_id, &hash, now, now + CODE_LIFETIME_MS)
        .await?;
    Ok(code)
}

/// Handles one inbound event. `identity` is the identity kind of the
/// instance it came through (e.g. `telegram`), under which accounts are linked.
pub async fn handle<S: Evidence + Outbox>(
    store: &S,
    event: &Inbound,
    identity: &str,
    now: i64,
) -> Result<InboundOutcome, StoreError> {
    let account = event.event.account.as_str();
    let channel = event.instance.as_str();
    match &event.event.kind {
        InboundKind::Command { name, args } if name == "start" || name == "link" => {
            let Some(code) = args.first() else {
                return Ok(InboundOutcome::Refused {
                    reason: Refusal::UnknownCode,
                });
            };
            Ok(
                match store
                    .redeem_link_code(&code_hash(code), identity, account, now)
                    .await?
                {
                    Ok(person_id) => {
                        tracing::info!(channel, person = %person_id, "linked a chat account");
                        InboundOutcome::Linked { person_id }
                    }
                    Err(refusal) => {
                        let reason = match refusal {
                            CodeRefusal::Unknown => Refusal::UnknownCode,
                            CodeRefusal::Expired => Refusal::ExpiredCode,
                            CodeRefusal::AlreadyUsed => Refusal::UsedCode,
                        };
                        tracing::warn!(channel, reason = reason.code(), "refused a link code");
                        InboundOutcome::Refused { reason }
                    }
                },
            )
        }
        InboundKind::Action { action_id, .. } => {
            let mut parts = action_id.split(':');
            let (kind, delivery) = (
                parts.next(),
                parts.next().and_then(|d| d.parse::<i64>().ok()),
            );
            let (method, answer) = match (kind, delivery) {
                (Some("ack"), Some(_)) => (AckMethod::Button, None),
                (Some("answer"), Some(_)) => (
                    AckMethod::Button,
                    parts.next().and_then(|n| n.parse::<usize>().ok()),
                ),
                _ => return Ok(InboundOutcome::Ignored),
            };
            let delivery_id = delivery.expect("matched above");
            let refuse = |person: Option<String>, reason: Refusal| async move {
                tracing::warn!(
                    channel,
                    delivery = delivery_id,
                    reason = reason.code(),
                    "refused a button press"
                );
                store
                    .log_refusal(
                        person.as_deref(),
                        Some(delivery_id),
                        channel,
                        method,
                        reason.code(),
                        now,
                    )
                    .await?;
                Ok::<_, StoreError>(InboundOutcome::Refused { reason })
            };
            let Some(person) = store.person_for_account(identity, account).await? else {
                return refuse(None, Refusal::UnlinkedAccount).await;
            };
            let Some(delivery) = store.delivery(delivery_id).await? else {
                return refuse(Some(person), Refusal::UnknownDelivery).await;
            };
            if delivery.recipient_id != person {
                return refuse(Some(person), Refusal::DifferentPerson).await;
            }
            match kind {
                Some("ack") => {
                    let outcome = store
                        .acknowledge_item(&NewAcknowledgement {
                            person_id: person.clone(),
                            item_id: delivery.item_id,
                            item_version: delivery.item_version,
                            rollout_id: Some(delivery.rollout_id),
                            delivery_id: Some(delivery_id),
                            channel: channel.to_owned(),
                            method,
                            at: now,
                        })
                        .await?;
                    Ok(InboundOutcome::Acknowledged {
                        person_id: person,
                        first: outcome == AckOutcome::Recorded,
                    })
                }
                _ => {
                    let rollout = store.rollout(&delivery.rollout_id).await?;
                    let label = rollout
                        .and_then(|r| serde_json::from_str::<RolloutDefinition>(&r.definition).ok())
                        .and_then(|d| {
                            let follow_up = d
                                .follow_ups
                                .get(delivery.step_number.checked_sub(1)? as usize)?;
                            follow_up.answers.get(answer?.checked_sub(1)?).cloned()
                        });
                    let Some(label) = label.filter(|_| delivery.step_kind == "follow-up") else {
                        return refuse(Some(person), Refusal::UnknownAnswer).await;
                    };
                    let first = store
                        .answer_follow_up(&NewAnswer {
                            rollout_id: delivery.rollout_id,
                            person_id: person.clone(),
                            follow_up: delivery.step_number,
                            answer: label.clone(),
                            example: None,
                            channel: channel.to_owned(),
                            at: now,
                        })
                        .await?;
                    Ok(InboundOutcome::Answered {
                        person_id: person,
                        answer: label,
                        first,
                    })
                }
            }
        }
        InboundKind::Command { .. } | InboundKind::Text { .. } | InboundKind::Form { .. } => {
            Ok(InboundOutcome::Ignored)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_eight_unambiguous_characters_and_differ() {
        let (a, hash_a) = new_code();
        let (b, _) = new_code();
        assert_eq!(a.len(), 8);
        assert!(a.bytes().all(|c| CODE_ALPHABET.contains(&c)));
        assert!(!a.contains('O') && !a.contains('0') && !a.contains('I') && !a.contains('1'));
        assert_ne!(a, b);
        assert_eq!(hash_a, code_hash(&a));
    }

    #[test]
    fn a_code_typed_in_lower_case_with_spaces_still_matches() {
        assert_eq!(code_hash("abcd efgh"), code_hash("ABCDEFGH"));
        assert_eq!(code_hash("ABCD-EFGH"), code_hash("ABCDEFGH"));
        assert_ne!(code_hash("ABCDEFGH"), code_hash("ABCDEFGJ"));
    }
}
