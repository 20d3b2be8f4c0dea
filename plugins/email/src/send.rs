//! One send's I/O and what its outcome means: the message goes through
//! lettre's pooled async SMTP transport, and the server's reply becomes a
//! `SendResult` (2xx delivered with the queue id when the reply names one,
//! 4xx and broken connections retried, 5xx failed with the server's words).

use cascade_plugin_api::SendResult;
use lettre::transport::smtp::Error as SmtpError;
use lettre::transport::smtp::response::Response;
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};

/// Sends one message and says how it went. `server` names the server in
/// reasons (host and port, never credentials).
pub async fn deliver(
    transport: &AsyncSmtpTransport<Tokio1Executor>,
    message: &Message,
    server: &str,
) -> SendResult {
    outcome(transport.send(message.clone()).await, server)
}

/// What a reply (or the lack of one) means for the delivery.
pub fn outcome(result: Result<Response, SmtpError>, server: &str) -> SendResult {
    match result {
        Ok(response) => SendResult::Delivered {
            provider_id: queue_id(&response),
        },
        Err(error) => match error.status() {
            Some(code) if error.is_permanent() => {
                let text = server_text(&error);
                SendResult::Failed {
                    unreachable: bad_mailbox(&text),
                    reason: format!("the SMTP server {server} refused the message: {code} {text}"),
                }
            }
            Some(code) => SendResult::Retry {
                reason: format!(
                    "the SMTP server {server} deferred the message: {code} {}",
                    server_text(&error)
                ),
                retry_after_ms: None,
            },
            // No reply code: the connection failed, broke or timed out, or
            // TLS failed. The message may or may not have landed; a retry
            // carries the same Message-ID, so a duplicate is recognisable.
            None => SendResult::Retry {
                reason: format!("could not complete the SMTP exchange with {server}: {error}"),
                retry_after_ms: None,
            },
        },
    }
}

/// The server's own words of a negative reply, one line.
fn server_text(error: &SmtpError) -> String {
    std::error::Error::source(error)
        .map(|source| source.to_string().replace(['\r', '\n'], " "))
        .unwrap_or_default()
}

/// An enhanced status code 5.1.x (RFC 3463: bad destination mailbox or
/// domain) says the address itself cannot be reached, not this message.
fn bad_mailbox(text: &str) -> bool {
    text.split_whitespace()
        .next()
        .is_some_and(|first| first.starts_with("5.1.") && first.len() > 4)
}

/// The queue id in a 2xx reply, as the common servers word it: Postfix
/// "queued as 4F1x2Y", Exim "OK id=1rAbCd-000123-AB", Sendmail
/// "Message accepted for delivery" (none), aiosmtpd-based relays as Postfix.
pub fn queue_id(response: &Response) -> Option<String> {
    let text: Vec<&str> = response.message().collect();
    let text = text.join(" ");
    let after = |marker: &str| {
        let start = text.find(marker)? + marker.len();
        let id: String = text[start..]
            .trim_start()
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | '@'))
            .collect();
        let id = id.trim_end_matches('.');
        (!id.is_empty()).then(|| id.to_owned())
    };
    after("queued as").or_else(|| after("id="))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A one-line reply as lettre parses it off the wire.
    fn reply(code: &str, text: &str) -> Response {
        format!("{code} {text}\r\n").parse().unwrap()
    }

    #[test]
    fn a_postfix_reply_gives_its_queue_id() {
        let response = reply("250", "2.0.0 Ok: queued as 4F1x2Y3Z");
        assert_eq!(queue_id(&response).as_deref(), Some("4F1x2Y3Z"));
        assert!(response.code().is_positive());
    }

    #[test]
    fn an_exim_reply_gives_its_message_id() {
        let response = reply("250", "OK id=1rAbCd-000123-AB");
        assert_eq!(queue_id(&response).as_deref(), Some("1rAbCd-000123-AB"));
    }

    #[test]
    fn a_reply_without_an_id_is_delivered_without_one() {
        let result = outcome(Ok(reply("250", "OK")), "smtp.example:587");
        assert_eq!(result, SendResult::Delivered { provider_id: None });
    }

    #[test]
    fn mailbox_codes_mark_the_address_unreachable() {
        assert!(bad_mailbox("5.1.1 <x@y>: Recipient address rejected"));
        assert!(!bad_mailbox("5.7.1 Message rejected as spam"));
        assert!(!bad_mailbox("Requested action not taken"));
    }
}
