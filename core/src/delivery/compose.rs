//! Composing the message of one outbox row at dispatch time: the pinned item
//! rendered for each of the channel's formats (with "Reminder:" on a
//! reminder), a short chase for an escalation, a question with fixed answers
//! for a follow-up. An item the privacy guard blocks is never sent.

use super::{ChannelRoute, RolloutRuntime, World};
use crate::ack::{AckConfig, AckKeys};
use crate::content::Taxonomy;
use crate::render::{Channel, RenderInput, Renderer, escape};
use crate::store::ClaimedDelivery;
use cascade_plugin_api::{Action, MailingList, Message, MessagePart};
use chrono::{DateTime, Utc};
use std::sync::Arc;

/// Everything composing needs, shared by every dispatch.
pub struct Composer {
    pub renderer: Renderer,
    pub taxonomy: Taxonomy,
    pub partnership_name: String,
    /// Signs acknowledgement links for channels without buttons (email).
    pub ack_links: Option<(AckConfig, Arc<AckKeys>)>,
}

impl Composer {
    /// The message for a claimed row, or a reason it must not be sent.
    pub fn compose(
        &self,
        row: &ClaimedDelivery,
        rollout: &RolloutRuntime,
        world: &World,
        route: &ChannelRoute,
        now: DateTime<Utc>,
    ) -> Result<(Message, Vec<Action>), String> {
        let item = &rollout.item;
        let recipient = world
            .person(&row.recipient_id)
            .ok_or_else(|| format!("{} is no longer in the directory", row.recipient_id))?;
        let text_of = |text: String| -> Vec<MessagePart> {
            route
                .formats
                .iter()
                .map(|&format| MessagePart {
                    format: format.to_string(),
                    chunks: vec![paragraphs(format, &text)],
                })
                .collect()
        };
        let (subject, parts, actions) = match row.step_kind.as_str() {
            "initial" | "reminder" if rollout.definition.reacknowledge => {
                let changed = item.what_changed.as_deref().unwrap_or_default();
                let text = format!(
                    "\"{}\" has changed since you acknowledged it.\n\nWhat changed: {changed}\n\nPlease read the change and acknowledge it.",
                    item.title
                );
                let actions = vec![Action {
                    id: format!("ack:{}", row.id),
                    label: "Acknowledge the change".to_owned(),
                    form: None,
                }];
                (format!("Changed: {}", item.title), text_of(text), actions)
            }
            "initial" | "reminder" => {
                if let Some(finding) = &rollout.privacy_block {
                    return Err(format!("the privacy guard blocked the item: {finding}"));
                }
                let token = self
                    .ack_links
                    .as_ref()
                    .map(|(config, keys)| (config, keys.sign(row.id, &row.recipient_id, now)));
                let input = RenderInput {
                    person_name: recipient.display_name.clone(),
                    ack_url: token.as_ref().map(|(config, token)| config.link(token)),
                    ack_token: token.map(|(_, token)| token),
                    partnership_name: self.partnership_name.clone(),
                };
                let mut parts = Vec::new();
                for &format in &route.formats {
                    let chunks = self
                        .renderer
                        .render(item, &self.taxonomy, format, &input)
                        .map_err(|e| format!("cannot render for {format}: {e}"))?;
                    parts.push(MessagePart {
                        format: format.to_string(),
                        chunks,
                    });
                }
                let prefix = if row.step_kind == "reminder" {
                    "Reminder: "
                } else {
                    ""
                };
                let actions = vec![Action {
                    id: format!("ack:{}", row.id),
                    label: "Acknowledge".to_owned(),
                    form: None,
                }];
                (format!("{prefix}{}", item.title), parts, actions)
            }
            "escalation" => {
                let subject_person = world
                    .person(&row.person_id)
                    .map(|p| p.display_name.as_str())
                    .unwrap_or(row.person_id.as_str());
                let text = if row.idempotency_key.contains("/digest-") {
                    format!(
                        "Learning from \"{}\" is overdue for some people in rollout {}.\n\nRun `cascade status {}` to see who, by agency and team.",
                        item.title, row.rollout_id, row.rollout_id
                    )
                } else {
                    format!(
                        "{subject_person} has not yet acknowledged \"{}\", which was due by now.\n\nPlease check in with them and help them make time to read it.",
                        item.title
                    )
                };
                (
                    format!("Not yet acknowledged: {}", item.title),
                    text_of(text),
                    Vec::new(),
                )
            }
            "follow-up" => {
                let follow_up = rollout
                    .definition
                    .follow_ups
                    .get(row.step_number.saturating_sub(1) as usize)
                    .ok_or_else(|| {
                        format!("follow-up {} is not in the rollout", row.step_number)
                    })?;
                let text = format!(
                    "A while ago you read \"{}\".\n\n{}",
                    item.title, follow_up.question
                );
                let actions = follow_up
                    .answers
                    .iter()
                    .enumerate()
                    .map(|(i, answer)| Action {
                        id: format!("answer:{}:{}", row.id, i + 1),
                        label: answer.clone(),
                        form: None,
                    })
                    .collect();
                (format!("Follow-up: {}", item.title), text_of(text), actions)
            }
            other => return Err(format!("unknown step kind \"{other}\"")),
        };
        Ok((
            Message {
                subject: Some(subject),
                parts,
            },
            actions,
        ))
    }
}

impl Composer {
    /// The list a row's message belongs to when its rollout lets people opt
    /// out (it has an `unsubscribe_url`); `None` for mandatory learning and
    /// for escalations, which are about someone else's learning. Its id is
    /// the rollout's id under the domain of the opt-out URL (RFC 2919).
    pub fn mailing_list(
        &self,
        row: &ClaimedDelivery,
        rollout: &RolloutRuntime,
    ) -> Option<MailingList> {
        let url = rollout.definition.unsubscribe_url.as_ref()?;
        if row.step_kind == "escalation" {
            return None;
        }
        let domain = url_domain(url).unwrap_or("lists.invalid");
        Some(MailingList {
            id: format!("{}.{domain}", row.rollout_id),
            name: Some(format!("{}: {}", self.partnership_name, rollout.item.title)),
            unsubscribe_url: url.clone(),
        })
    }
}

/// The host of an `https:` URL or the domain of a `mailto:` one, when it is
/// a plain domain name.
fn url_domain(url: &str) -> Option<&str> {
    let rest = match url.strip_prefix("https://") {
        Some(rest) => rest,
        None => url.strip_prefix("mailto:")?.split_once('@')?.1,
    };
    let domain = rest.split(['/', ':', '?', '#', ',']).next()?;
    let plain = domain.contains('.')
        && domain
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-'));
    plain.then_some(domain)
}

/// Plain text as a channel's markup: escaped paragraphs.
fn paragraphs(format: Channel, text: &str) -> String {
    match format {
        Channel::EmailHtml => text
            .split("\n\n")
            .map(|p| format!("<p>{}</p>", escape(format, p)))
            .collect::<Vec<_>>()
            .join("\n"),
        _ => escape(format, text),
    }
}

#[cfg(test)]
mod tests {
    use super::url_domain;

    #[test]
    fn a_list_id_domain_comes_from_the_opt_out_url() {
        assert_eq!(
            url_domain("https://learning.northbridge.example/unsubscribe?x=1"),
            Some("learning.northbridge.example")
        );
        assert_eq!(
            url_domain("mailto:sbu@northbridge.example?subject=unsubscribe"),
            Some("northbridge.example")
        );
        assert_eq!(url_domain("https://localhost:8080/u"), None);
        assert_eq!(url_domain("mailto:nobody"), None);
    }
}
