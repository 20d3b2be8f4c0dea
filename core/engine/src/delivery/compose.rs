//! Composing the message of one outbox row at dispatch time: the pinned item
//! rendered for each of the channel's formats (with "Reminder:" on a
//! reminder), a short chase for an escalation, a question with fixed answers
//! for a follow-up. An item the privacy guard blocks is never sent.

use super::champion_reminders;
use super::{ChannelRoute, Reading, RolloutRuntime, World};
use crate::ack::{AckConfig, AckKeys};
use crate::buttons::{confirm_action, item_actions, truncate};
use cascade_model::actions::{ActionKey, ActionRef};
use cascade_model::content::{Taxonomy, refresher_message, refresher_question};
use cascade_model::rollout::StepKind;
use cascade_plugin_api::{Action, MailingList, Message, MessagePart};
use cascade_render::{
    Channel, ConfirmLink, Notice, NoticeInput, RenderInput, Renderer, escape, mark, render_notice,
};
use cascade_store::ClaimedDelivery;
use chrono::{DateTime, Utc};
use std::collections::HashMap;
use std::sync::Arc;

/// Everything composing needs, shared by every dispatch.
pub struct Composer {
    pub renderer: Renderer,
    pub taxonomy: Taxonomy,
    pub partnership_name: String,
    /// Signs acknowledgement links for channels without buttons (email).
    pub ack_links: Option<(AckConfig, Arc<AckKeys>)>,
    /// Signs the ids of chat buttons.
    pub actions: ActionKey,
    /// The partnership's, for the date a confirmation form suggests.
    pub time_zone: chrono_tz::Tz,
    /// Item bodies rendered once per rollout and format, with stand-ins
    /// for what differs per person.
    pub bodies: Bodies,
}

/// Stand-ins rendered in place of the per-person values. Private-use
/// characters pass every channel's escaping unchanged and never occur in
/// real input.
const NAME_MARK: &str = "\u{E000}cascade:name\u{E001}";
const URL_MARK: &str = "https://example.invalid/\u{E000}cascade:url\u{E001}";
const TOKEN_MARK: &str = "\u{E000}cascade:token\u{E001}";
/// The longest label of a refresher answer's button, in characters:
/// Discord allows 80; the option's words are in full in the message.
const MAX_OPTION_LABEL_CHARS: usize = 80;
/// A name that shows whether templates escape it as the channel does.
const PROBE_NAME: &str = "Zoë O'Brien & <Co> \"Q\" = `x` *y* _z_";

/// Rendering the item's Markdown and templates is most of the cost of a
/// delivery, and for unsplit formats (email) only the person's name and
/// acknowledgement link differ between people; so the body is rendered once
/// with stand-ins and filled in per person. Used for a rollout and format
/// only after a check that filling in gives exactly what a direct render
/// gives, for a name full of characters that need escaping; otherwise (a
/// template that transforms the name, say) every person is rendered directly.
#[derive(Default)]
pub struct Bodies {
    by_rollout: std::sync::Mutex<HashMap<(String, Channel), Prepared>>,
}

/// A body's chunks with stand-ins, split where they stood, or `None` when
/// the rollout's template cannot be filled in exactly.
type Prepared = Option<Arc<Vec<Vec<Piece>>>>;

/// Part of a prepared chunk: text as rendered, or a stand-in's place.
#[derive(Debug, Clone, PartialEq)]
enum Piece {
    Text(String),
    Name,
    Url,
    Token,
}

/// Splits a chunk rendered with stand-ins at each stand-in, once per
/// rollout, so filling in per person copies text instead of searching it.
/// Where each kind of stand-in next occurs is remembered and looked for
/// again only once passed, so a stand-in that never occurs is looked for
/// once, not after every other one: the time is linear in the chunk.
fn split_marks(chunk: &str) -> Vec<Piece> {
    let marks = [
        (NAME_MARK, Piece::Name),
        (URL_MARK, Piece::Url),
        (TOKEN_MARK, Piece::Token),
    ];
    let find = |mark: &str, from: usize| chunk[from..].find(mark).map(|at| at + from);
    let mut next: Vec<Option<usize>> = marks.iter().map(|(mark, _)| find(mark, 0)).collect();
    let mut pieces = Vec::new();
    let mut at = 0;
    while let Some((k, found)) = next
        .iter()
        .enumerate()
        .filter_map(|(k, found)| found.map(|found| (k, found)))
        .min_by_key(|(_, found)| *found)
    {
        if found > at {
            pieces.push(Piece::Text(chunk[at..found].to_owned()));
        }
        let (mark, piece) = &marks[k];
        pieces.push(piece.clone());
        at = found + mark.len();
        for (j, found) in next.iter_mut().enumerate() {
            if found.is_some_and(|found| found < at) {
                *found = find(marks[j].0, at);
            }
        }
    }
    if at < chunk.len() {
        pieces.push(Piece::Text(chunk[at..].to_owned()));
    }
    pieces
}

fn fill(chunks: &[Vec<Piece>], format: Channel, input: &RenderInput) -> Vec<String> {
    let name = escape(format, &input.person_name);
    let url = input.ack_url.as_ref().map(|url| escape(format, url));
    let token = input.ack_token.as_ref().map(|token| escape(format, token));
    chunks
        .iter()
        .map(|pieces| {
            let mut out = String::with_capacity(
                pieces
                    .iter()
                    .map(|p| match p {
                        Piece::Text(text) => text.len(),
                        _ => 64,
                    })
                    .sum(),
            );
            for piece in pieces {
                match piece {
                    Piece::Text(text) => out.push_str(text),
                    Piece::Name => out.push_str(&name),
                    Piece::Url => out.push_str(url.as_deref().unwrap_or(URL_MARK)),
                    Piece::Token => out.push_str(token.as_deref().unwrap_or(TOKEN_MARK)),
                }
            }
            out
        })
        .collect()
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
        let address = world.address(&row.recipient_id, &route.instance);
        let reading = route.reading(item.classification, address.as_deref().unwrap_or_default());
        // Where the item may not go in full, the person gets a notice with
        // a signed link to read it on cascade's page.
        let notice = |prefix: &str| -> Result<(String, Vec<MessagePart>, Vec<Action>), String> {
            let Reading::Notice(reason) = reading else {
                unreachable!("a notice is made only for a notice reading");
            };
            let (config, keys) = self.ack_links.as_ref().ok_or_else(|| {
                format!(
                    "\"{}\" is {} and channel \"{}\" may not carry it, so it goes as a notice with a link to read it, and links need [ack] base_url in cascade.toml",
                    item.id,
                    item.classification.name().to_uppercase(),
                    route.instance
                )
            })?;
            let token = keys.sign(row.id, &row.recipient_id, now);
            let input = NoticeInput {
                person_name: recipient.display_name.clone(),
                read_url: config.link(&token),
                partnership_name: self.partnership_name.clone(),
                reason,
            };
            let notice = Notice::of(item);
            let parts = route
                .formats
                .iter()
                .map(|&format| MessagePart {
                    format: format.name().into(),
                    chunks: vec![render_notice(&notice, format, &input)],
                })
                .collect();
            Ok((format!("{prefix}{}", item.title), parts, Vec::new()))
        };
        let text_of = |text: String| with_links(&route.formats, &text, &[]);
        // Where a channel has no buttons, its choices go as signed links.
        let links = |labelled: Vec<(String, LinkTo)>| -> Vec<(String, String)> {
            match (&self.ack_links, route.buttons) {
                (Some((config, keys)), false) => {
                    let token = keys.sign(row.id, &row.recipient_id, now);
                    labelled
                        .into_iter()
                        .map(|(label, to)| {
                            let url = match to {
                                LinkTo::Ack => config.link(&token),
                                LinkTo::Answer(n) => config.answer_link(&token, n),
                                LinkTo::Confirm => config.confirm_link(&token),
                                LinkTo::Refresher => config.refresher_link(&token),
                            };
                            (label, url)
                        })
                        .collect()
                }
                _ => Vec::new(),
            }
        };
        // A champion's teams: on a channel without buttons their messages
        // about the item carry a signed link to the confirmation form.
        let champion_teams = world.champion_teams(&row.recipient_id);
        let reminder = if row.step_kind == StepKind::Reminder {
            "Reminder: "
        } else {
            ""
        };
        let (subject, mut parts, actions) = match row.step_kind {
            StepKind::Initial | StepKind::Reminder if matches!(reading, Reading::Notice(_)) => {
                if let Some(finding) = &rollout.privacy_block {
                    return Err(format!("the privacy guard blocked the item: {finding}"));
                }
                if rollout.definition.reacknowledge {
                    notice("Changed: ")?
                } else {
                    notice(reminder)?
                }
            }
            StepKind::Initial | StepKind::Reminder if rollout.definition.reacknowledge => {
                let changed = item.what_changed.as_deref().unwrap_or_default();
                let text = format!(
                    "\"{}\" has changed since you acknowledged it.\n\nWhat changed: {changed}\n\nPlease read the change and acknowledge it.",
                    item.title
                );
                let actions = vec![Action {
                    id: self.actions.sign(&ActionRef::Ack(row.id)),
                    label: "Acknowledge the change".to_owned(),
                    form: None,
                }];
                let mut labelled = vec![("Acknowledge the change".to_owned(), LinkTo::Ack)];
                if !champion_teams.is_empty() {
                    labelled.push(("Record a team briefing".to_owned(), LinkTo::Confirm));
                }
                let links = links(labelled);
                let parts = with_links(&route.formats, &text, &links);
                (format!("Changed: {}", item.title), parts, actions)
            }
            StepKind::Initial | StepKind::Reminder => {
                if let Some(finding) = &rollout.privacy_block {
                    return Err(format!("the privacy guard blocked the item: {finding}"));
                }
                let token = self
                    .ack_links
                    .as_ref()
                    .map(|(config, keys)| (config, keys.sign(row.id, &row.recipient_id, now)));
                // Chat channels carry the "I've cascaded this" button instead.
                let confirm = match &token {
                    Some((config, token)) if !route.buttons && !champion_teams.is_empty() => {
                        Some(ConfirmLink {
                            url: config.confirm_link(token),
                            teams: champion_teams.iter().map(|(_, n)| n.clone()).collect(),
                        })
                    }
                    _ => None,
                };
                let input = RenderInput {
                    person_name: recipient.display_name.clone(),
                    ack_url: token.as_ref().map(|(config, token)| config.link(token)),
                    ack_token: token.map(|(_, token)| token),
                    partnership_name: self.partnership_name.clone(),
                    carries: item.classification,
                    confirm,
                };
                let mut parts = Vec::new();
                for &format in &route.formats {
                    let chunks = self
                        .body(&row.rollout_id, item, format, &input)
                        .map_err(|e| format!("cannot render for {format}: {e}"))?;
                    parts.push(MessagePart {
                        format: format.name().into(),
                        chunks,
                    });
                }
                let today = now.with_timezone(&self.time_zone).date_naive();
                let actions = item_actions(
                    &self.actions,
                    row.id,
                    world.champion_teams(&row.recipient_id),
                    route.forms,
                    today,
                );
                (format!("{reminder}{}", item.title), parts, actions)
            }
            StepKind::Escalation => {
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
            StepKind::FollowUp => {
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
                        id: self.actions.sign(&ActionRef::Answer(row.id, i + 1)),
                        label: answer.clone(),
                        form: None,
                    })
                    .collect();
                let links = links(
                    follow_up
                        .answers
                        .iter()
                        .enumerate()
                        .map(|(i, answer)| (answer.clone(), LinkTo::Answer(i + 1)))
                        .collect(),
                );
                let parts = with_links(&route.formats, &text, &links);
                (format!("Follow-up: {}", item.title), parts, actions)
            }
            StepKind::Refresher => {
                let number = row.step_number;
                let (_, question) =
                    refresher_question(&item.check_questions, number).ok_or_else(|| {
                        format!("\"{}\" has no check questions for a refresher", item.id)
                    })?;
                // Where the item may not go in full, neither may its key
                // message or question: they are asked on cascade's page.
                if matches!(reading, Reading::Notice(_)) {
                    let (config, keys) = self.ack_links.as_ref().ok_or_else(|| {
                        format!(
                            "\"{}\" is {} and channel \"{}\" may not carry it, so its refresher is asked on cascade's page, and links need [ack] base_url in cascade.toml",
                            item.id,
                            item.classification.name().to_uppercase(),
                            route.instance
                        )
                    })?;
                    let token = keys.sign(row.id, &row.recipient_id, now);
                    let text = format!(
                        "A refresher on \"{}\", which you acknowledged a while ago: one quick question, on your partnership's page.",
                        item.title
                    );
                    let link = [(
                        "Answer the question".to_owned(),
                        config.refresher_link(&token),
                    )];
                    let parts = with_links(&route.formats, &text, &link);
                    (format!("Refresher: {}", item.title), parts, Vec::new())
                } else {
                    let message = refresher_message(item, number).unwrap_or_default();
                    let mut text = format!(
                        "A refresher on \"{}\", which you acknowledged a while ago.\n\nKey message: {message}\n\nA quick question: {}",
                        item.title, question.question
                    );
                    let actions: Vec<Action> = if route.buttons {
                        for (option, o) in question.options.iter().zip(1..) {
                            text.push_str(&format!("\n{o}. {option}"));
                        }
                        text.push_str("\n\nChoose your answer below.");
                        question
                            .options
                            .iter()
                            .zip(1u32..)
                            .map(|(option, o)| Action {
                                id: self.actions.sign(&ActionRef::Refresh(row.id, o, 0)),
                                label: truncate(&format!("{o}. {option}"), MAX_OPTION_LABEL_CHARS),
                                form: None,
                            })
                            .collect()
                    } else {
                        Vec::new()
                    };
                    let links = links(vec![("Answer the question".to_owned(), LinkTo::Refresher)]);
                    let parts = with_links(&route.formats, &text, &links);
                    (format!("Refresher: {}", item.title), parts, actions)
                }
            }
            // Composed from the store at dispatch (see `induction_digest`).
            StepKind::InductionDigest => {
                return Err("an induction digest is composed with its joiners' progress".to_owned());
            }
            StepKind::ChampionReminder => {
                let teams =
                    champion_reminders::teams_for_themes(world, &row.recipient_id, &item.themes);
                let text = champion_reminders::reminder_text(&item.title, &teams);
                let today = now.with_timezone(&self.time_zone).date_naive();
                let actions = confirm_action(&self.actions, row.id, &teams, route.forms, today)
                    .into_iter()
                    .collect();
                let links = match (&self.ack_links, route.buttons) {
                    (Some((config, keys)), false) => {
                        let token = keys.sign(row.id, &row.recipient_id, now);
                        vec![champion_reminders::confirm_link(config, &token)]
                    }
                    _ => Vec::new(),
                };
                let parts = with_links(&route.formats, &text, &links);
                (
                    format!("Team briefing not yet recorded: {}", item.title),
                    parts,
                    actions,
                )
            }
        };
        // Messages about the item that are not the item itself (a change
        // note, a chase, a follow-up) are marked as the item is; the item
        // and its notice were marked as they were rendered.
        let rendered = matches!(row.step_kind, StepKind::Initial | StepKind::Reminder)
            && (matches!(reading, Reading::Notice(_)) || !rollout.definition.reacknowledge);
        if !rendered {
            for part in &mut parts {
                if let Ok(format) = part.format.as_str().parse::<Channel>() {
                    for chunk in &mut part.chunks {
                        *chunk = mark(format, item.classification, chunk);
                    }
                }
            }
        }
        let subject = match item.classification.marking() {
            Some(marking) => format!("{marking}: {subject}"),
            None => subject,
        };
        // The person's signed token (in their links) is machine-made: its
        // ids and expiry can read as any number, so it is not scanned.
        let token = self
            .ack_links
            .as_ref()
            .map(|(_, keys)| keys.sign(row.id, &row.recipient_id, now));
        for part in &parts {
            rollout.check_outgoing(&format!("{} {}", row.step_kind, part.format), || {
                let text = format!("{subject}\n{}", part.chunks.concat());
                match &token {
                    Some(token) => text.replace(token.as_str(), ""),
                    None => text,
                }
            })?;
        }
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
    /// A champion's induction digest: `text` as each of the channel's
    /// formats. It names practitioners and key items only.
    pub fn induction_digest(&self, route: &ChannelRoute, text: &str) -> (Message, Vec<Action>) {
        (
            Message {
                subject: Some("Induction progress of your teams' joiners".to_owned()),
                parts: with_links(&route.formats, text, &[]),
            },
            Vec::new(),
        )
    }

    /// The item rendered for one person, from the rollout's prepared body
    /// where there is one.
    fn body(
        &self,
        rollout_id: &str,
        item: &cascade_model::content::LearningItem,
        format: Channel,
        input: &RenderInput,
    ) -> Result<Vec<String>, cascade_render::RenderError> {
        if format.limit().is_some() || input.confirm.is_some() {
            // Split formats: a longer name could move a chunk boundary. A
            // champion's email has their teams and confirmation link too:
            // champions are few, so theirs is rendered in full.
            return self.renderer.render(item, &self.taxonomy, format, input);
        }
        let key = (rollout_id.to_owned(), format);
        let prepared = self
            .bodies
            .by_rollout
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(&key)
            .cloned();
        let prepared = match prepared {
            Some(prepared) => prepared,
            None => {
                let prepared = self.prepare(item, format, input)?;
                self.bodies
                    .by_rollout
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .insert(key, prepared.clone());
                prepared
            }
        };
        match prepared {
            Some(chunks) => Ok(fill(&chunks, format, input)),
            None => self.renderer.render(item, &self.taxonomy, format, input),
        }
    }

    /// The body with stand-ins, if filling it in is exact.
    fn prepare(
        &self,
        item: &cascade_model::content::LearningItem,
        format: Channel,
        input: &RenderInput,
    ) -> Result<Prepared, cascade_render::RenderError> {
        let marked = RenderInput {
            person_name: NAME_MARK.to_owned(),
            ack_url: input.ack_url.as_ref().map(|_| URL_MARK.to_owned()),
            ack_token: input.ack_token.as_ref().map(|_| TOKEN_MARK.to_owned()),
            partnership_name: input.partnership_name.clone(),
            carries: input.carries,
            confirm: None,
        };
        let chunks: Vec<Vec<Piece>> = self
            .renderer
            .render(item, &self.taxonomy, format, &marked)?
            .iter()
            .map(|chunk| split_marks(chunk))
            .collect();
        let probe = RenderInput {
            person_name: PROBE_NAME.to_owned(),
            ..input.clone()
        };
        let direct = self.renderer.render(item, &self.taxonomy, format, &probe)?;
        if fill(&chunks, format, &probe) == direct {
            Ok(Some(Arc::new(chunks)))
        } else {
            tracing::debug!(%format, "the template transforms per-person values; rendering each message in full");
            Ok(None)
        }
    }

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
        if row.step_kind == StepKind::Escalation {
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
/// Where a signed link in a message without buttons leads.
enum LinkTo {
    Ack,
    /// A follow-up's n-th answer (1-based).
    Answer(usize),
    /// A champion's cascade confirmation form.
    Confirm,
    /// The page asking a refresher's question.
    Refresher,
}

/// Plain text as each format's paragraphs, then one link a line: a button
/// in HTML, "label: URL" elsewhere.
fn with_links(formats: &[Channel], text: &str, links: &[(String, String)]) -> Vec<MessagePart> {
    formats
        .iter()
        .map(|&format| {
            let mut body = paragraphs(format, text);
            for (label, url) in links {
                match format {
                    Channel::EmailHtml => body.push_str(&format!(
                        "\n<p><a href=\"{}\" style=\"display:inline-block; padding:10px 18px; background:#1d4ed8; color:#ffffff; text-decoration:underline; border-radius:6px;\">{}</a></p>",
                        escape(format, url),
                        escape(format, label)
                    )),
                    _ => body.push_str(&format!(
                        "\n\n{}: {}",
                        escape(format, label),
                        escape(format, url)
                    )),
                }
            }
            MessagePart {
                format: format.name().into(),
                chunks: vec![body],
            }
        })
        .collect()
}

pub fn paragraphs(format: Channel, text: &str) -> String {
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
    use super::*;
    use cascade_model::content::Classification;
    use cascade_render::{read_templates, sample_items};
    use std::path::Path;

    fn templates() -> Vec<(String, String)> {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../templates");
        let mut templates = Vec::new();
        read_templates(&dir, &dir, &mut templates).unwrap();
        templates
    }

    fn composer(templates: Vec<(String, String)>) -> Composer {
        Composer {
            renderer: Renderer::new(templates).unwrap(),
            taxonomy: Taxonomy::default(),
            partnership_name: "Northshire Safeguarding Partnership".to_owned(),
            ack_links: None,
            actions: ActionKey::new(vec![1; 32]),
            time_zone: chrono_tz::Europe::London,
            bodies: Bodies::default(),
        }
    }

    fn input(name: &str, url: Option<&str>) -> RenderInput {
        RenderInput {
            person_name: name.to_owned(),
            ack_url: url.map(str::to_owned),
            ack_token: url.map(|u| u.rsplit('/').next().unwrap().to_owned()),
            partnership_name: "Northshire Safeguarding Partnership".to_owned(),
            carries: Classification::Official,
            confirm: None,
        }
    }

    #[test]
    fn a_prepared_body_filled_in_is_exactly_the_direct_render() {
        let composer = composer(templates());
        for item in sample_items() {
            for format in [Channel::EmailHtml, Channel::EmailText] {
                for url in [
                    None,
                    Some("https://ack.example.org/ack/v1.k1.42.cC0x.1790000000.mAc-_"),
                ] {
                    let rollout = format!("{}-{}", item.id, url.is_some());
                    for name in ["Sam Patel", "Aoife O'Neill & <Partners>", "李 小龙 \"Lee\""] {
                        let input = input(name, url);
                        let composed = composer.body(&rollout, &item, format, &input).unwrap();
                        let direct = composer
                            .renderer
                            .render(&item, &composer.taxonomy, format, &input)
                            .unwrap();
                        assert_eq!(composed, direct, "{} {format} {name}", item.id);
                    }
                    let prepared = composer.bodies.by_rollout.lock().unwrap()
                        [&(rollout.clone(), format)]
                        .clone();
                    assert!(prepared.is_some(), "{rollout} {format} was not prepared");
                }
            }
        }
    }

    #[test]
    fn a_template_that_transforms_the_name_is_rendered_in_full_for_everyone() {
        let mut templates = templates();
        let (_, text) = templates
            .iter_mut()
            .find(|(path, _)| path == "seven-minute-briefing/email-text.hbs")
            .unwrap();
        *text = format!("Dear {{{{person.name}}}} ({{{{len person.name}}}} letters)\n{text}");
        let composer = composer(templates);
        let item = sample_items().remove(0);
        for name in ["Sam Patel", "Jo Li"] {
            let input = input(name, None);
            let composed = composer
                .body("r", &item, Channel::EmailText, &input)
                .unwrap();
            assert!(
                composed[0].starts_with(&format!("Dear {name} ({} letters)", name.len())),
                "{}",
                composed[0]
            );
        }
        let prepared = composer.bodies.by_rollout.lock().unwrap()
            [&("r".to_owned(), Channel::EmailText)]
            .clone();
        assert!(prepared.is_none());
    }

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

#[cfg(test)]
mod marks {
    use super::*;
    use cascade_model::content::Classification;

    #[test]
    fn a_chunk_splits_at_every_stand_in_and_fills_back_in_order() {
        let chunk =
            format!("Hello {NAME_MARK},\n<a href=\"{URL_MARK}\">ack</a> {TOKEN_MARK}{NAME_MARK}");
        let pieces = split_marks(&chunk);
        assert_eq!(
            pieces,
            [
                Piece::Text("Hello ".to_owned()),
                Piece::Name,
                Piece::Text(",\n<a href=\"".to_owned()),
                Piece::Url,
                Piece::Text("\">ack</a> ".to_owned()),
                Piece::Token,
                Piece::Name,
            ]
        );
        let input = RenderInput {
            person_name: "Zoë <O'Brien>".to_owned(),
            ack_url: Some("https://l.example/ack/t?a=1&b=2".to_owned()),
            ack_token: Some("t".to_owned()),
            partnership_name: String::new(),
            carries: Classification::Official,
            confirm: None,
        };
        assert_eq!(
            fill(&[pieces], Channel::EmailHtml, &input),
            [
                "Hello Zoë &lt;O&#x27;Brien&gt;,\n<a href=\"https://l.example/ack/t?a&#x3D;1&amp;b&#x3D;2\">ack</a> tZoë &lt;O&#x27;Brien&gt;"
            ]
        );
        assert_eq!(
            split_marks("no marks"),
            [Piece::Text("no marks".to_owned())]
        );
    }

    #[test]
    fn splitting_at_stand_ins_takes_time_in_proportion_to_the_text() {
        // No token stand-in: looking for it again after every name read
        // the rest of the text each time. Sixteen times the text takes
        // sixteen times as long when linear and 256 times when quadratic;
        // the bound sits between, far enough from both that a loaded
        // machine (the best of seven runs each) does not cross it.
        let seconds = |names: usize| {
            let chunk = format!("Dear {NAME_MARK}, a paragraph of text. ").repeat(names);
            (0..7)
                .map(|_| {
                    let start = std::time::Instant::now();
                    assert_eq!(split_marks(&chunk).len(), 2 * names + 1);
                    start.elapsed().as_secs_f64()
                })
                .fold(f64::INFINITY, f64::min)
        };
        let (small, large) = (seconds(1000), seconds(16000));
        assert!(
            large < 100.0 * small,
            "1,000 names: {small:.4} s; 16,000 names: {large:.4} s"
        );
    }
}
