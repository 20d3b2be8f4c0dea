//! Chat commands, parsed once from what a plugin reports (`/link 123456`
//! arrives as the name `link` and the arguments `["123456"]`), so the
//! handlers match on a type rather than on strings.

/// A command a person sent in a chat.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ChatCommand {
    /// `/link CODE`, or `/start CODE` from a deep link: link this chat
    /// account to the person the one-time code was issued for. `None` when
    /// `/link` came without a code.
    Link { code: Option<String> },
    /// A bare `/start`, what Telegram's Start button sends to a bot the
    /// person has not talked to: a welcome, and how to link.
    Start,
    /// `/pending`: what is waiting for the person to acknowledge.
    Pending,
    /// `/ack ITEM`: acknowledge a pending item by its id (trimmed; empty
    /// when none was given).
    Ack { item: String },
    /// `/cancel`: stop the conversation in progress.
    Cancel,
    /// `/help`: what the bot does.
    Help,
    /// Any other command, by the name it came with.
    Unknown(String),
}

impl ChatCommand {
    /// The command a name (without the slash) and its arguments stand for.
    /// Names are matched exactly: the plugins lowercase them.
    pub fn parse(name: &str, args: &[String]) -> ChatCommand {
        match name {
            "start" if args.is_empty() => ChatCommand::Start,
            "start" | "link" => ChatCommand::Link {
                code: args.first().cloned(),
            },
            "pending" => ChatCommand::Pending,
            "ack" => ChatCommand::Ack {
                item: args
                    .first()
                    .map(|a| a.trim())
                    .unwrap_or_default()
                    .to_owned(),
            },
            "cancel" => ChatCommand::Cancel,
            "help" => ChatCommand::Help,
            other => ChatCommand::Unknown(other.to_owned()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(name: &str, args: &[&str]) -> ChatCommand {
        let args: Vec<String> = args.iter().map(|a| (*a).to_owned()).collect();
        ChatCommand::parse(name, &args)
    }

    #[test]
    fn start_and_link_both_link_with_the_first_argument_as_the_code() {
        for name in ["start", "link"] {
            assert_eq!(
                parse(name, &["123456", "extra"]),
                ChatCommand::Link {
                    code: Some("123456".to_owned())
                }
            );
        }
        assert_eq!(parse("link", &[]), ChatCommand::Link { code: None });
    }

    #[test]
    fn a_bare_start_is_a_welcome_not_a_code() {
        assert_eq!(parse("start", &[]), ChatCommand::Start);
    }

    #[test]
    fn ack_takes_the_first_argument_trimmed_or_nothing() {
        assert_eq!(
            parse("ack", &[" 7mb-neglect ", "x"]),
            ChatCommand::Ack {
                item: "7mb-neglect".to_owned()
            }
        );
        assert_eq!(
            parse("ack", &[]),
            ChatCommand::Ack {
                item: String::new()
            }
        );
    }

    #[test]
    fn commands_without_arguments_ignore_any_given() {
        assert_eq!(parse("pending", &["x"]), ChatCommand::Pending);
        assert_eq!(parse("cancel", &[]), ChatCommand::Cancel);
        assert_eq!(parse("help", &["me"]), ChatCommand::Help);
    }

    #[test]
    fn any_other_name_is_unknown_and_names_are_matched_exactly() {
        assert_eq!(parse("stop", &[]), ChatCommand::Unknown("stop".to_owned()));
        assert_eq!(parse("Help", &[]), ChatCommand::Unknown("Help".to_owned()));
        assert_eq!(parse("", &[]), ChatCommand::Unknown(String::new()));
    }
}
