//! Classified items: the marking every message of an OFFICIAL-SENSITIVE
//! item carries, and the notice sent where a channel or an address may not
//! carry the item. A [`Notice`] is made from the item's title, summary and
//! classification only, so a notice cannot hold the item's text: the full
//! text comes only from [`crate::Renderer::render`], which refuses an item
//! above what the destination carries.

use crate::markup::escape_url;
use crate::{Channel, escape};
use cascade_model::content::{Classification, LearningItem};

/// What a notice may say about an item: nothing of its body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Notice {
    pub title: String,
    /// The item's one-line summary (required of OFFICIAL-SENSITIVE items).
    pub summary: Option<String>,
    pub classification: Classification,
}

impl Notice {
    pub fn of(item: &LearningItem) -> Notice {
        Notice {
            title: item.title.clone(),
            summary: item.summary.clone(),
            classification: item.classification,
        }
    }
}

/// Who a notice is for and where they read the item.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NoticeInput {
    pub person_name: String,
    /// The signed link to the item's page on cascade, where reading it and
    /// pressing its button acknowledges it.
    pub read_url: String,
    pub partnership_name: String,
    /// Why the item is not in the message: "on this channel" or "to this
    /// address".
    pub reason: NoticeReason,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NoticeReason {
    /// The channel instance may not carry the item.
    Channel,
    /// The channel may carry it, but not to this address's domain.
    Address,
}

/// The marking as the first line of a message in `format`'s markup, with
/// the blank line after it; empty for an unmarked classification.
pub fn marking_top(format: Channel, classification: Classification) -> String {
    let Some(marking) = classification.marking() else {
        return String::new();
    };
    match format {
        Channel::EmailHtml => format!(
            "<p style=\"margin:0 0 16px; font-weight:bold; letter-spacing:0.05em;\">{marking}</p>\n"
        ),
        Channel::EmailText => format!("{marking}\n\n"),
        Channel::Telegram => format!("<b>{marking}</b>\n\n"),
        Channel::Discord => format!("**{marking}**\n\n"),
    }
}

/// The marking at the bottom of an email (a document); chat messages are
/// marked at the top only, as each is short and read at once.
fn marking_bottom(format: Channel, classification: Classification) -> String {
    let Some(marking) = classification.marking() else {
        return String::new();
    };
    match format {
        Channel::EmailHtml => format!(
            "\n<p style=\"margin:16px 0 0; font-weight:bold; letter-spacing:0.05em;\">{marking}</p>"
        ),
        Channel::EmailText => format!("\n\n{marking}"),
        Channel::Telegram | Channel::Discord => String::new(),
    }
}

/// One message with the marking at its top (inside `<body>` for HTML) and,
/// for email, at its bottom.
pub fn mark(format: Channel, classification: Classification, text: &str) -> String {
    let (top, bottom) = (
        marking_top(format, classification),
        marking_bottom(format, classification),
    );
    if top.is_empty() {
        return text.to_owned();
    }
    if format == Channel::EmailHtml
        && let Some(open) = text.find("<body")
        && let Some(end) = text[open..].find('>')
        && let Some(close) = text.rfind("</body>")
    {
        let after_open = open + end + 1;
        if after_open <= close {
            return format!(
                "{}\n{top}{}{bottom}\n{}",
                &text[..after_open],
                text[after_open..close].trim_matches('\n'),
                &text[close..]
            );
        }
    }
    format!("{top}{text}{bottom}")
}

/// The notice for one person in one format: the marking, the title, the
/// summary, why the item is not here, and the link to read it.
pub fn render_notice(notice: &Notice, format: Channel, input: &NoticeInput) -> String {
    let marking = notice.classification.marking().unwrap_or("OFFICIAL");
    let why = match input.reason {
        NoticeReason::Channel => format!("{marking} items are not sent in full on this channel."),
        NoticeReason::Address => {
            format!("{marking} items are not sent in full to this email address.")
        }
    };
    let ask = "Read it on our secure page, and acknowledge it there when you have read it:";
    let summary = notice.summary.as_deref().unwrap_or_default();
    let body = match format {
        Channel::EmailHtml => {
            let url = escape_url(format, &input.read_url);
            format!(
                "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
                 <title>{title}</title>\n</head>\n\
                 <body style=\"margin:0; padding:0; background:#ffffff; color:#1f2937; font-family:Arial, Helvetica, sans-serif; font-size:16px; line-height:1.5;\">\n\
                 <div role=\"article\" aria-label=\"{title}\" style=\"max-width:640px; margin:0 auto; padding:24px;\">\n\
                 <h1 style=\"font-size:28px; color:#111827; margin:0 0 16px;\">{title}</h1>\n\
                 <p>Hello {name},</p>\n<p>{summary}</p>\n<p>{why} {ask}</p>\n\
                 <p><a href=\"{url}\" style=\"display:inline-block; background:#1d4ed8; color:#ffffff; font-weight:bold; text-decoration:underline; padding:12px 24px; border-radius:4px;\">Read &ldquo;{title}&rdquo;</a></p>\n\
                 <p style=\"font-size:14px; color:#4b5563; border-top:1px solid #d1d5db; padding-top:16px;\">Sent by {partnership} to {name}.</p>\n\
                 </div>\n</body>\n</html>",
                title = escape(format, &notice.title),
                name = escape(format, &input.person_name),
                summary = escape(format, summary),
                why = escape(format, &why),
                ask = escape(format, ask),
                partnership = escape(format, &input.partnership_name),
            )
        }
        Channel::EmailText => format!(
            "{title}\n\nHello {name},\n\n{summary}\n\n{why} {ask}\n{url}\n\n--\nSent by {partnership} to {name}.",
            title = notice.title,
            name = input.person_name,
            url = input.read_url,
            partnership = input.partnership_name,
        ),
        Channel::Telegram => format!(
            "<b>{title}</b>\n\n{summary}\n\n{why} {ask}\n<a href=\"{url}\">Read it</a>: {plain}",
            title = escape(format, &notice.title),
            summary = escape(format, summary),
            why = escape(format, &why),
            ask = escape(format, ask),
            url = escape_url(format, &input.read_url),
            plain = escape(format, &input.read_url),
        ),
        Channel::Discord => format!(
            "**{title}**\n\n{summary}\n\n{why} {ask}\n{url}",
            title = escape(format, &notice.title),
            summary = escape(format, summary),
            why = escape(format, &why),
            ask = escape(format, ask),
            url = input.read_url,
        ),
    };
    mark(format, notice.classification, &body)
}
