//! The ids of chat buttons. They travel through providers (Telegram callback
//! data, Discord custom ids) and come back from anyone who can press or
//! forge a button, so each carries a short HMAC under a key only the engine
//! knows, refers to a delivery by number, and holds no personal data. They
//! fit Telegram's 64 bytes.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, Mac};
use sha2::Sha256;

/// The name the store keeps the key under.
pub const KEY_NAME: &str = "action-ids";
/// Characters of the encoded MAC kept: 66 bits.
const MAC_CHARS: usize = 11;

/// What a button does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ActionRef {
    /// Acknowledge the item of this delivery.
    Ack(i64),
    /// Answer a follow-up delivery with its n-th answer (1-based).
    Answer(i64, usize),
    /// A champion says they cascaded the item of this delivery.
    Confirm(i64),
    /// A choice in a conversation the engine leads, e.g. `team:2`.
    Choice(String),
    /// Acknowledge, as a member of its team, the item of this team post
    /// (pressed by many people, each for themselves).
    Post(i64),
    /// Acknowledge the item of this delivery from a `/pending` list: the
    /// list keeps the other items' buttons.
    ListAck(i64),
    /// An answer to a check question of the item of this delivery:
    /// (delivery, question, option, tries seen), numbers 1-based. The
    /// option's words stay in the message, never in the id.
    Check(i64, u32, u32, u32),
    /// A follow-up delivery's n-th reason (1-based) for not using the
    /// learning, chosen after answering so.
    Reason(i64, usize),
    /// An answer to the check question a refresher delivery asked:
    /// (delivery, option, tries seen), numbers 1-based but `seen`.
    Refresh(i64, u32, u32),
}

impl ActionRef {
    fn body(&self) -> String {
        match self {
            ActionRef::Ack(d) => format!("ack:{d}"),
            ActionRef::Answer(d, n) => format!("answer:{d}:{n}"),
            ActionRef::Confirm(d) => format!("confirm:{d}"),
            ActionRef::Choice(c) => format!("c:{c}"),
            ActionRef::Post(p) => format!("post:{p}"),
            ActionRef::ListAck(d) => format!("list:{d}"),
            ActionRef::Check(d, q, o, seen) => format!("chk:{d}:{q}:{o}:{seen}"),
            ActionRef::Refresh(d, o, seen) => format!("rf:{d}:{o}:{seen}"),
            ActionRef::Reason(d, n) => format!("why:{d}:{n}"),
        }
    }

    fn parse(body: &str) -> Option<ActionRef> {
        let (kind, rest) = body.split_once(':')?;
        match kind {
            "ack" => rest.parse().ok().map(ActionRef::Ack),
            "confirm" => rest.parse().ok().map(ActionRef::Confirm),
            "answer" => {
                let (d, n) = rest.split_once(':')?;
                Some(ActionRef::Answer(d.parse().ok()?, n.parse().ok()?))
            }
            "why" => {
                let (d, n) = rest.split_once(':')?;
                Some(ActionRef::Reason(d.parse().ok()?, n.parse().ok()?))
            }
            "c" => Some(ActionRef::Choice(rest.to_owned())),
            "post" => rest.parse().ok().map(ActionRef::Post),
            "list" => rest.parse().ok().map(ActionRef::ListAck),
            "chk" => {
                let mut parts = rest.split(':');
                let check = ActionRef::Check(
                    parts.next()?.parse().ok()?,
                    parts.next()?.parse().ok()?,
                    parts.next()?.parse().ok()?,
                    parts.next()?.parse().ok()?,
                );
                parts.next().is_none().then_some(check)
            }
            "rf" => {
                let mut parts = rest.split(':');
                let refresh = ActionRef::Refresh(
                    parts.next()?.parse().ok()?,
                    parts.next()?.parse().ok()?,
                    parts.next()?.parse().ok()?,
                );
                parts.next().is_none().then_some(refresh)
            }
            _ => None,
        }
    }
}

/// Signs and checks action ids.
#[derive(Clone)]
pub struct ActionKey {
    key: Vec<u8>,
}

impl std::fmt::Debug for ActionKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ActionKey(..)")
    }
}

impl ActionKey {
    pub fn new(key: Vec<u8>) -> ActionKey {
        ActionKey { key }
    }

    fn mac(&self, body: &str) -> String {
        let mut mac = Hmac::<Sha256>::new_from_slice(&self.key).expect("HMAC takes any key length");
        mac.update(body.as_bytes());
        let mut encoded = URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes());
        encoded.truncate(MAC_CHARS);
        encoded
    }

    /// The id a button carries.
    pub fn sign(&self, action: &ActionRef) -> String {
        let body = action.body();
        let mac = self.mac(&body);
        format!("{body}.{mac}")
    }

    /// What a pressed button means, if this engine made it.
    pub fn open(&self, id: &str) -> Option<ActionRef> {
        let (body, mac) = id.rsplit_once('.')?;
        let expected = self.mac(body);
        // Constant time, so a forger learns nothing from timing.
        let same = mac.len() == expected.len()
            && mac
                .bytes()
                .zip(expected.bytes())
                .fold(0u8, |acc, (a, b)| acc | (a ^ b))
                == 0;
        same.then(|| ActionRef::parse(body)).flatten()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key() -> ActionKey {
        ActionKey::new(vec![7; 32])
    }

    #[test]
    fn a_signed_id_opens_to_what_was_signed() {
        for action in [
            ActionRef::Ack(12),
            ActionRef::Answer(9_999_999_999, 3),
            ActionRef::Confirm(4),
            ActionRef::Choice("method:briefing-session".to_owned()),
            ActionRef::Post(9_999_999_999),
            ActionRef::ListAck(9_999_999_999),
            ActionRef::Check(9_999_999_999_999, 3, 5, 4_294_967_295),
            ActionRef::Refresh(i64::MAX, 5, u32::MAX),
            ActionRef::Reason(i64::MAX, 5),
        ] {
            let id = key().sign(&action);
            assert!(id.len() <= 64, "{id} is longer than Telegram allows");
            assert!(id.is_ascii());
            assert_eq!(key().open(&id), Some(action));
        }
    }

    #[test]
    fn a_forged_or_altered_id_opens_to_nothing() {
        let id = key().sign(&ActionRef::Ack(12));
        let altered = id.replacen("12", "13", 1);
        assert_eq!(key().open(&altered), None);
        assert_eq!(key().open("ack:12"), None);
        assert_eq!(key().open("ack:12.AAAAAAAAAAA"), None);
        assert_eq!(ActionKey::new(vec![8; 32]).open(&id), None);
    }
}
