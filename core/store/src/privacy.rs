//! UK GDPR duties of the store: what it holds about people (every column
//! classified in [`FIELDS`], so the record of processing is generated from
//! the schema and a new column cannot go unclassified), a subject access
//! export of everything held about one person, erasure (pseudonymise,
//! wipe, record, in one transaction) and the retention schedule.

use crate::StoreError;
use std::future::Future;

/// What a column holds, for erasure, export and the record of processing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FieldKind {
    /// A person's id (the key erasure re-keys to the pseudonym wherever it
    /// is an exact match). `subject` is false where the row is about someone
    /// else (a person's manager).
    PersonId { subject: bool },
    /// The person's own identifying detail on their own row (name, email
    /// address, mobile, chat account id): removed on erasure.
    Identifier,
    /// Other personal data about the person (their roles, time zone, the
    /// times they acknowledged): kept under the pseudonym for the counts.
    Personal,
    /// Text someone typed or a provider wrote (a follow-up example, a
    /// champion's note, an SMTP server's error): emptied on the erased
    /// person's rows, and their name, addresses and chat ids cut out of it
    /// on everyone else's.
    FreeText,
    /// A key built from person ids (`outbox.idempotency_key`): re-keyed
    /// segment by segment.
    CompositeKey,
    /// A secret or a hash of one: never exported.
    Secret,
    /// Not about a person.
    NotPersonal,
}

/// One column of the store and what it holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Field {
    pub table: &'static str,
    pub column: &'static str,
    pub kind: FieldKind,
    /// In plain words, for the record of processing.
    pub what: &'static str,
    /// Where it comes from.
    pub source: &'static str,
}

const fn f(
    table: &'static str,
    column: &'static str,
    kind: FieldKind,
    what: &'static str,
    source: &'static str,
) -> Field {
    Field {
        table,
        column,
        kind,
        what,
        source,
    }
}

use FieldKind::*;
const SUBJECT: FieldKind = PersonId { subject: true };
const DIRECTORY: &str = "directory/people.csv (the partnership's HR export)";
const CASCADE: &str = "cascade";
const PERSON: &str = "the person (a link page, a chat button, a form)";
const PROVIDER: &str = "the channel provider";
const CONTENT: &str = "content/, rollouts/ (the business unit)";
const CONSOLE: &str = "the web console";

/// Every column of every table the store keeps, and what it holds. A store
/// test compares this with the live schema: a migration that adds a column
/// fails it until the column is classified here.
pub const FIELDS: &[Field] = &[
    f("items", "seq", NotPersonal, "", CONTENT),
    f("items", "id", NotPersonal, "", CONTENT),
    f("items", "version", NotPersonal, "", CONTENT),
    f("items", "kind", NotPersonal, "", CONTENT),
    f("items", "title", NotPersonal, "", CONTENT),
    f("items", "status", NotPersonal, "", CONTENT),
    f("items", "embargoed_until", NotPersonal, "", CONTENT),
    f("items", "source", NotPersonal, "", CONTENT),
    f("items", "first_seen_at", NotPersonal, "", CONTENT),
    f("agencies", "id", NotPersonal, "", DIRECTORY),
    f("agencies", "name", NotPersonal, "", DIRECTORY),
    f("agencies", "kind", NotPersonal, "", DIRECTORY),
    f("agencies", "updated_at", NotPersonal, "", DIRECTORY),
    f("teams", "id", NotPersonal, "", DIRECTORY),
    f("teams", "agency_id", NotPersonal, "", DIRECTORY),
    f("teams", "name", NotPersonal, "", DIRECTORY),
    f("teams", "updated_at", NotPersonal, "", DIRECTORY),
    f("people", "id", SUBJECT, "person id", DIRECTORY),
    f("people", "display_name", Identifier, "name", DIRECTORY),
    f(
        "people",
        "email",
        Identifier,
        "work email address",
        DIRECTORY,
    ),
    f(
        "people",
        "agency_id",
        Personal,
        "agency (employer)",
        DIRECTORY,
    ),
    f("people", "team_id", Personal, "team", DIRECTORY),
    f(
        "people",
        "manager_id",
        PersonId { subject: false },
        "line manager's person id",
        DIRECTORY,
    ),
    f("people", "time_zone", Personal, "time zone", DIRECTORY),
    f(
        "people",
        "works",
        Personal,
        "working pattern (days and hours worked)",
        DIRECTORY,
    ),
    f(
        "people",
        "absent_until",
        Personal,
        "the day they are back from an absence",
        DIRECTORY,
    ),
    f(
        "people",
        "active",
        Personal,
        "still in the directory",
        DIRECTORY,
    ),
    f(
        "people",
        "updated_at",
        Personal,
        "when their row last changed",
        CASCADE,
    ),
    f(
        "people",
        "mobile",
        Identifier,
        "work mobile number",
        DIRECTORY,
    ),
    f(
        "people",
        "erased_at",
        Personal,
        "when they were erased",
        CASCADE,
    ),
    f("person_roles", "person_id", SUBJECT, "person id", DIRECTORY),
    f("person_roles", "role", Personal, "job roles", DIRECTORY),
    f(
        "champions",
        "person_id",
        SUBJECT,
        "person id",
        "directory/champions.csv",
    ),
    f(
        "champions",
        "theme",
        Personal,
        "champion's themes",
        "directory/champions.csv",
    ),
    f(
        "champions",
        "active",
        Personal,
        "still a champion",
        "directory/champions.csv",
    ),
    f(
        "champions",
        "updated_at",
        Personal,
        "when it changed",
        CASCADE,
    ),
    f(
        "champion_teams",
        "person_id",
        SUBJECT,
        "person id",
        "directory/champions.csv",
    ),
    f(
        "champion_teams",
        "theme",
        Personal,
        "champion's themes",
        "directory/champions.csv",
    ),
    f(
        "champion_teams",
        "team_id",
        Personal,
        "teams a champion covers",
        "directory/champions.csv",
    ),
    f(
        "channel_identities",
        "person_id",
        SUBJECT,
        "person id",
        DIRECTORY,
    ),
    f(
        "channel_identities",
        "channel",
        Personal,
        "kind of channel",
        CASCADE,
    ),
    f(
        "channel_identities",
        "address",
        Identifier,
        "email address, mobile number, or Telegram, Discord or Teams account id",
        "directory/people.csv (email, mobile); the person, linking a chat account with a one-time code",
    ),
    f(
        "channel_identities",
        "linked_at",
        Personal,
        "when linked",
        CASCADE,
    ),
    f(
        "channel_identities",
        "unreachable_at",
        Personal,
        "when the provider said the account cannot be reached",
        PROVIDER,
    ),
    f("rollouts", "id", NotPersonal, "", CONTENT),
    f("rollouts", "item_id", NotPersonal, "", CONTENT),
    f("rollouts", "item_version", NotPersonal, "", CONTENT),
    f(
        "rollouts",
        "definition",
        CompositeKey,
        "the rollout as started (its audience may list person ids)",
        CONTENT,
    ),
    f("rollouts", "state", NotPersonal, "", CONTENT),
    f("bulletins", "id", NotPersonal, "", CONTENT),
    f(
        "bulletins",
        "definition",
        CompositeKey,
        "the recurring bulletin as started (its audience may list person ids)",
        CONTENT,
    ),
    f("bulletins", "state", NotPersonal, "", CONTENT),
    f("bulletins", "started_at", NotPersonal, "", CASCADE),
    f("bulletins", "last_occurrence_at", NotPersonal, "", CASCADE),
    f(
        "bulletin_occurrences",
        "bulletin_id",
        NotPersonal,
        "",
        CONTENT,
    ),
    f(
        "bulletin_occurrences",
        "occurrence_at",
        NotPersonal,
        "",
        CASCADE,
    ),
    f(
        "bulletin_occurrences",
        "rollout_id",
        NotPersonal,
        "",
        CASCADE,
    ),
    f("bulletin_occurrences", "items", NotPersonal, "", CASCADE),
    f("bulletin_occurrences", "made_at", NotPersonal, "", CASCADE),
    f("bulletin_items", "bulletin_id", NotPersonal, "", CONTENT),
    f("bulletin_items", "item_id", NotPersonal, "", CONTENT),
    f("bulletin_items", "item_version", NotPersonal, "", CONTENT),
    f("bulletin_items", "occurrence_at", NotPersonal, "", CASCADE),
    f("rollouts", "refreshers", NotPersonal, "", CONTENT),
    f("rollouts", "created_at", NotPersonal, "", CONTENT),
    f("rollouts", "updated_at", NotPersonal, "", CONTENT),
    f(
        "rollout_members",
        "rollout_id",
        Personal,
        "rollouts they were in",
        CASCADE,
    ),
    f(
        "rollout_members",
        "person_id",
        SUBJECT,
        "person id",
        CASCADE,
    ),
    f("rollout_members", "wave", Personal, "wave", CASCADE),
    f(
        "rollout_members",
        "refresher_next",
        Personal,
        "next refresher",
        CASCADE,
    ),
    f(
        "rollout_members",
        "refresher_due_at",
        Personal,
        "when the next refresher is looked at",
        CASCADE,
    ),
    f(
        "rollout_members",
        "next_step",
        Personal,
        "next reminder or escalation",
        CASCADE,
    ),
    f(
        "rollout_members",
        "next_due_at",
        Personal,
        "when it is due",
        CASCADE,
    ),
    f(
        "rollout_members",
        "acknowledged_at",
        Personal,
        "when they acknowledged",
        PERSON,
    ),
    f(
        "rollout_members",
        "team_id",
        Personal,
        "the team they were in when the rollout reached them",
        DIRECTORY,
    ),
    f(
        "rollout_members",
        "agency_id",
        Personal,
        "the agency they were in when the rollout reached them",
        DIRECTORY,
    ),
    f(
        "rollout_members",
        "out_reason",
        Personal,
        "whether they left or moved out of the audience",
        DIRECTORY,
    ),
    f(
        "rollout_members",
        "out_at",
        Personal,
        "when they left or moved out",
        CASCADE,
    ),
    f(
        "rollout_members",
        "out_next_due_at",
        Personal,
        "when their next step was due before they left or moved",
        CASCADE,
    ),
    f(
        "rollout_members",
        "joined_at",
        Personal,
        "when they joined an open rollout after its start",
        CASCADE,
    ),
    f(
        "rollout_members",
        "shift_days",
        Personal,
        "how many days later than their wave their own timetable runs",
        CASCADE,
    ),
    f("outbox", "id", Personal, "delivery id", CASCADE),
    f(
        "outbox",
        "idempotency_key",
        CompositeKey,
        "delivery key (holds person ids)",
        CASCADE,
    ),
    f("outbox", "rollout_id", Personal, "rollout", CASCADE),
    f(
        "outbox",
        "person_id",
        SUBJECT,
        "whose learning a message was",
        CASCADE,
    ),
    f(
        "outbox",
        "recipient_id",
        SUBJECT,
        "who a message was sent to (them, or their champion or manager)",
        CASCADE,
    ),
    f("outbox", "wave", Personal, "wave", CASCADE),
    f(
        "outbox",
        "step_kind",
        Personal,
        "message kind (first, reminder, escalation)",
        CASCADE,
    ),
    f("outbox", "step_number", Personal, "message number", CASCADE),
    f("outbox", "channel", Personal, "channel used", CASCADE),
    f(
        "outbox",
        "channel_rank",
        Personal,
        "channel preference",
        CASCADE,
    ),
    f(
        "outbox",
        "state",
        Personal,
        "sent, failed or waiting",
        CASCADE,
    ),
    f("outbox", "attempts", Personal, "attempts", CASCADE),
    f("outbox", "due_at", Personal, "when due", CASCADE),
    f("outbox", "lease_until", NotPersonal, "", CASCADE),
    f("outbox", "lease_owner", NotPersonal, "", CASCADE),
    f(
        "outbox",
        "provider_id",
        Identifier,
        "the provider's message id (may hold a chat id)",
        PROVIDER,
    ),
    f(
        "outbox",
        "last_error",
        FreeText,
        "the provider's last error (may quote an address)",
        PROVIDER,
    ),
    f("outbox", "sent_at", Personal, "when sent", PROVIDER),
    f("outbox", "updated_at", Personal, "when it changed", CASCADE),
    f(
        "acknowledgements",
        "id",
        Personal,
        "acknowledgement id",
        CASCADE,
    ),
    f(
        "acknowledgements",
        "person_id",
        SUBJECT,
        "person id",
        PERSON,
    ),
    f(
        "acknowledgements",
        "item_id",
        Personal,
        "item acknowledged",
        PERSON,
    ),
    f(
        "acknowledgements",
        "item_version",
        Personal,
        "its version",
        PERSON,
    ),
    f(
        "acknowledgements",
        "rollout_id",
        Personal,
        "rollout",
        PERSON,
    ),
    f(
        "acknowledgements",
        "delivery_id",
        Personal,
        "delivery",
        PERSON,
    ),
    f("acknowledgements", "channel", Personal, "channel", PERSON),
    f(
        "acknowledgements",
        "method",
        Personal,
        "how (link, button, command)",
        PERSON,
    ),
    f("acknowledgements", "at", Personal, "when", PERSON),
    f("acknowledgement_log", "id", NotPersonal, "", CASCADE),
    f(
        "acknowledgement_log",
        "person_id",
        SUBJECT,
        "person id",
        PERSON,
    ),
    f(
        "acknowledgement_log",
        "delivery_id",
        Personal,
        "delivery",
        PERSON,
    ),
    f(
        "acknowledgement_log",
        "channel",
        Personal,
        "channel",
        PERSON,
    ),
    f("acknowledgement_log", "method", Personal, "how", PERSON),
    f(
        "acknowledgement_log",
        "outcome",
        Personal,
        "repeat acknowledgements",
        PERSON,
    ),
    f("acknowledgement_log", "at", Personal, "when", PERSON),
    f(
        "cascade_confirmations",
        "id",
        Personal,
        "confirmation id",
        CASCADE,
    ),
    f(
        "cascade_confirmations",
        "champion_id",
        SUBJECT,
        "champion's person id",
        PERSON,
    ),
    f(
        "cascade_confirmations",
        "item_id",
        Personal,
        "item cascaded",
        PERSON,
    ),
    f("cascade_confirmations", "team_id", Personal, "team", PERSON),
    f(
        "cascade_confirmations",
        "session_date",
        Personal,
        "session date",
        PERSON,
    ),
    f(
        "cascade_confirmations",
        "present",
        Personal,
        "number present",
        PERSON,
    ),
    f(
        "cascade_confirmations",
        "method",
        Personal,
        "how it was cascaded",
        PERSON,
    ),
    f(
        "cascade_confirmations",
        "note",
        FreeText,
        "champion's note",
        PERSON,
    ),
    f(
        "cascade_confirmations",
        "channel",
        Personal,
        "channel",
        PERSON,
    ),
    f("cascade_confirmations", "at", Personal, "when", PERSON),
    f("follow_up_answers", "id", Personal, "answer id", CASCADE),
    f(
        "follow_up_answers",
        "rollout_id",
        Personal,
        "rollout",
        PERSON,
    ),
    f(
        "follow_up_answers",
        "person_id",
        SUBJECT,
        "person id",
        PERSON,
    ),
    f(
        "follow_up_answers",
        "follow_up",
        Personal,
        "follow-up question",
        PERSON,
    ),
    f(
        "follow_up_answers",
        "answer",
        Personal,
        "answer chosen",
        PERSON,
    ),
    f(
        "follow_up_answers",
        "example",
        FreeText,
        "example of practice, typed by the person",
        PERSON,
    ),
    f("follow_up_answers", "channel", Personal, "channel", PERSON),
    f(
        "follow_up_answers",
        "reason",
        Personal,
        "reason chosen for not using the learning",
        PERSON,
    ),
    f("follow_up_answers", "at", Personal, "when", PERSON),
    f("check_answers", "id", Personal, "check answer id", CASCADE),
    f("check_answers", "person_id", SUBJECT, "person id", PERSON),
    f(
        "check_answers",
        "item_id",
        Personal,
        "item whose check questions were answered",
        PERSON,
    ),
    f(
        "check_answers",
        "item_version",
        Personal,
        "its version",
        PERSON,
    ),
    f(
        "check_answers",
        "question",
        Personal,
        "check question number",
        PERSON,
    ),
    f(
        "check_answers",
        "question_digest",
        Personal,
        "which check question",
        PERSON,
    ),
    f(
        "check_answers",
        "first_answer",
        Personal,
        "option chosen first",
        PERSON,
    ),
    f(
        "check_answers",
        "right_first_time",
        Personal,
        "whether the first answer was right",
        PERSON,
    ),
    f(
        "check_answers",
        "attempts",
        Personal,
        "answers given",
        PERSON,
    ),
    f(
        "check_answers",
        "answered_at",
        Personal,
        "when answered right",
        PERSON,
    ),
    f(
        "check_answers",
        "acknowledgement_id",
        Personal,
        "the acknowledgement it was recorded with",
        CASCADE,
    ),
    f(
        "refresher_answers",
        "id",
        Personal,
        "refresher answer id",
        CASCADE,
    ),
    f("refresher_answers", "rollout_id", NotPersonal, "", CONTENT),
    f(
        "refresher_answers",
        "person_id",
        SUBJECT,
        "person id",
        PERSON,
    ),
    f(
        "refresher_answers",
        "refresher",
        Personal,
        "which refresher",
        CASCADE,
    ),
    f(
        "refresher_answers",
        "delivery_id",
        Personal,
        "the message that asked it",
        CASCADE,
    ),
    f(
        "refresher_answers",
        "item_id",
        Personal,
        "item whose check question was answered",
        PERSON,
    ),
    f(
        "refresher_answers",
        "item_version",
        Personal,
        "its version",
        PERSON,
    ),
    f(
        "refresher_answers",
        "question",
        Personal,
        "check question number",
        PERSON,
    ),
    f(
        "refresher_answers",
        "question_digest",
        Personal,
        "which check question",
        PERSON,
    ),
    f(
        "refresher_answers",
        "first_answer",
        Personal,
        "option chosen first",
        PERSON,
    ),
    f(
        "refresher_answers",
        "right_first_time",
        Personal,
        "whether the first answer was right",
        PERSON,
    ),
    f(
        "refresher_answers",
        "attempts",
        Personal,
        "answers given",
        PERSON,
    ),
    f(
        "refresher_answers",
        "answered_at",
        Personal,
        "when answered right",
        PERSON,
    ),
    f("refresher_answers", "channel", Personal, "channel", PERSON),
    f(
        "refresher_answers",
        "at",
        Personal,
        "when first answered",
        PERSON,
    ),
    f(
        "link_codes",
        "code_hash",
        Secret,
        "hash of a one-time link code",
        CASCADE,
    ),
    f("link_codes", "person_id", SUBJECT, "person id", CASCADE),
    f("link_codes", "created_at", Personal, "when issued", CASCADE),
    f(
        "link_codes",
        "expires_at",
        Personal,
        "when it expires",
        CASCADE,
    ),
    f("link_codes", "used_at", Personal, "when used", PERSON),
    f("link_codes", "hash_kind", NotPersonal, "", CASCADE),
    f("engine_secrets", "name", NotPersonal, "", CASCADE),
    f("engine_secrets", "value", Secret, "", CASCADE),
    f("team_posts", "id", NotPersonal, "", CASCADE),
    f("team_posts", "rollout_id", NotPersonal, "", CASCADE),
    f("team_posts", "team_id", NotPersonal, "", CASCADE),
    f("team_posts", "channel", NotPersonal, "", CASCADE),
    f("team_posts", "address", NotPersonal, "", CASCADE),
    f("team_posts", "state", NotPersonal, "", CASCADE),
    f("team_posts", "attempts", NotPersonal, "", CASCADE),
    f("team_posts", "due_at", NotPersonal, "", CASCADE),
    f("team_posts", "lease_until", NotPersonal, "", CASCADE),
    f("team_posts", "provider_id", NotPersonal, "", PROVIDER),
    f("team_posts", "shown_acknowledged", NotPersonal, "", CASCADE),
    f("team_posts", "shown_total", NotPersonal, "", CASCADE),
    f("team_posts", "edit_due_at", NotPersonal, "", CASCADE),
    f(
        "team_posts",
        "last_error",
        FreeText,
        "the provider's last error",
        PROVIDER,
    ),
    f("team_posts", "sent_at", NotPersonal, "", CASCADE),
    f("team_posts", "updated_at", NotPersonal, "", CASCADE),
    f("team_posts", "lease_owner", NotPersonal, "", CASCADE),
    f("refusal_counts", "minute", NotPersonal, "", CASCADE),
    f("refusal_counts", "channel", NotPersonal, "", CASCADE),
    f("refusal_counts", "method", NotPersonal, "", CASCADE),
    f("refusal_counts", "reason", NotPersonal, "", CASCADE),
    f("refusal_counts", "count", NotPersonal, "", CASCADE),
    f("refusal_counts", "last_at", NotPersonal, "", CASCADE),
    f("console_users", "id", NotPersonal, "", CONSOLE),
    f(
        "console_users",
        "name",
        Personal,
        "console account name",
        CONSOLE,
    ),
    f("console_users", "role", Personal, "console role", CONSOLE),
    f(
        "console_users",
        "person_id",
        SUBJECT,
        "the directory person a champion account speaks for",
        CONSOLE,
    ),
    f("console_users", "password_hash", Secret, "", CONSOLE),
    f("console_users", "setup_hash", Secret, "", CONSOLE),
    f(
        "console_users",
        "sso_subject",
        Personal,
        "the account's identity at the partnership's sign-in provider",
        CONSOLE,
    ),
    f("console_users", "disabled", NotPersonal, "", CONSOLE),
    f(
        "console_users",
        "setup_expires_at",
        NotPersonal,
        "",
        CONSOLE,
    ),
    f(
        "console_users",
        "created_at",
        Personal,
        "when the account was made",
        CONSOLE,
    ),
    f("console_sessions", "id_hash", Secret, "", CONSOLE),
    f("console_sessions", "user_id", NotPersonal, "", CONSOLE),
    f("console_sessions", "csrf", Secret, "", CONSOLE),
    f("console_sessions", "created_at", NotPersonal, "", CONSOLE),
    f("console_sessions", "last_seen_at", NotPersonal, "", CONSOLE),
    f(
        "console_sign_in_failures",
        "name_hash",
        Secret,
        "hash of a name tried at sign-in",
        CONSOLE,
    ),
    f("console_sign_in_failures", "at", NotPersonal, "", CONSOLE),
    f("console_audit", "id", NotPersonal, "", CONSOLE),
    f(
        "console_audit",
        "at",
        Personal,
        "when a console user changed something",
        CONSOLE,
    ),
    f("console_audit", "user_id", NotPersonal, "", CONSOLE),
    f(
        "console_audit",
        "user_name",
        Personal,
        "console account name of who changed it",
        CONSOLE,
    ),
    f(
        "console_audit",
        "action",
        Personal,
        "what they did",
        CONSOLE,
    ),
    f(
        "console_audit",
        "target",
        FreeText,
        "what they changed (an item, a file, an account)",
        CONSOLE,
    ),
    f("console_audit", "before_hash", NotPersonal, "", CONSOLE),
    f("console_audit", "after_hash", NotPersonal, "", CONSOLE),
    f("channel_states", "channel", NotPersonal, "", CASCADE),
    f("channel_states", "up", NotPersonal, "", CASCADE),
    f(
        "channel_states",
        "reason",
        FreeText,
        "why a channel is down, in the provider's words",
        PROVIDER,
    ),
    f("channel_states", "since", NotPersonal, "", CASCADE),
    f("channel_states", "seen_at", NotPersonal, "", CASCADE),
    f("leases", "name", NotPersonal, "", CASCADE),
    f("leases", "owner", NotPersonal, "", CASCADE),
    f("leases", "until_ms", NotPersonal, "", CASCADE),
    f("rollout_counts", "rollout_id", NotPersonal, "", CASCADE),
    f("rollout_counts", "members", NotPersonal, "", CASCADE),
    f("rollout_counts", "acknowledged", NotPersonal, "", CASCADE),
    f("rollout_counts", "sent", NotPersonal, "", CASCADE),
    f("rollout_counts", "dead", NotPersonal, "", CASCADE),
    f(
        "report_stamps",
        "scope",
        NotPersonal,
        "a rollout id, or empty for the directory",
        CASCADE,
    ),
    f("report_stamps", "stamp", NotPersonal, "", CASCADE),
    f("inbox", "id", NotPersonal, "", CASCADE),
    f("inbox", "channel", NotPersonal, "", CASCADE),
    f(
        "inbox",
        "event_id",
        NotPersonal,
        "the provider's id of an inbound event",
        PROVIDER,
    ),
    f(
        "inbox",
        "event",
        FreeText,
        "an inbound event (a press, a command, a form, text typed to the bot, a delivery receipt) with the chat account it came from, kept until handled and for 30 days after; erasure deletes those that mention the person",
        PERSON,
    ),
    f("inbox", "received_at", NotPersonal, "", CASCADE),
    f("inbox", "handled_at", NotPersonal, "", CASCADE),
    f("plugin_state", "channel", NotPersonal, "", CASCADE),
    f(
        "plugin_state",
        "key",
        FreeText,
        "what a channel plugin or chat conversation keeps between restarts, by chat account or delivery",
        CASCADE,
    ),
    f(
        "plugin_state",
        "value",
        FreeText,
        "pending presses, message parts already posted, a guided confirmation's step and answers; erasure deletes those that mention the person",
        PERSON,
    ),
    f("plugin_state", "expires_at", NotPersonal, "", CASCADE),
    f("erasures", "id", NotPersonal, "", CASCADE),
    f(
        "erasures",
        "pseudonym",
        NotPersonal,
        "the pseudonym an erased person is kept under",
        CASCADE,
    ),
    f(
        "erasures",
        "person_hash",
        Secret,
        "SHA-256 of an erased person's id (so they are not imported again)",
        CASCADE,
    ),
    f(
        "erasures",
        "erased_by",
        Personal,
        "who erased them (operator or console account)",
        CASCADE,
    ),
    f("erasures", "reason", NotPersonal, "", CASCADE),
    f("erasures", "at", NotPersonal, "", CASCADE),
    f("erasures", "forced", NotPersonal, "", CASCADE),
    f("erasures", "removed", NotPersonal, "", CASCADE),
    f("retention_runs", "id", NotPersonal, "", CASCADE),
    f("retention_runs", "at", NotPersonal, "", CASCADE),
    f("retention_runs", "run_by", NotPersonal, "", CASCADE),
    f("retention_runs", "removed", NotPersonal, "", CASCADE),
    f("evidence_chain", "seq", NotPersonal, "", CASCADE),
    f("evidence_chain", "kind", NotPersonal, "", CASCADE),
    f("evidence_chain", "ref", NotPersonal, "", CASCADE),
    f("evidence_chain", "at", NotPersonal, "", CASCADE),
    f("evidence_chain", "content", NotPersonal, "", CASCADE),
    f(
        "evidence_chain",
        "personal",
        Secret,
        "a salted hash (HMAC-SHA-256) of an evidence event's personal fields, for the tamper-evident chain; erasure records a new one rather than keep the old",
        CASCADE,
    ),
    f("evidence_chain", "prev", NotPersonal, "", CASCADE),
    f("evidence_chain", "hash", NotPersonal, "", CASCADE),
    f("evidence_chain_state", "id", NotPersonal, "", CASCADE),
    f(
        "evidence_chain_state",
        "backfilled_at",
        NotPersonal,
        "",
        CASCADE,
    ),
    f(
        "evidence_chain_state",
        "refusals_sealed_to",
        NotPersonal,
        "",
        CASCADE,
    ),
];

/// Tables the store's own machinery keeps (not data): left out of the
/// schema check, export and scans. PostgreSQL only: `chain_pending` lists
/// outbox ids waiting to be linked into the evidence chain, and
/// `outbox_count_deltas` holds rollouts' totals not folded yet.
pub const INTERNAL_TABLES: &[&str] = &[
    "_sqlx_migrations",
    "sqlite_sequence",
    "chain_pending",
    "outbox_count_deltas",
];

/// Who is asking for an erasure, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EraseRequest {
    pub person_id: String,
    /// `os:<user>`, `console:<user>` or `retention`.
    pub by: String,
    pub reason: String,
    /// Stop rollouts still sending to them rather than refuse.
    pub force: bool,
    pub now: i64,
}

/// The record of an erasure: never the name or the old id.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow, serde::Serialize)]
pub struct ErasureRecord {
    pub pseudonym: String,
    pub erased_by: String,
    pub reason: String,
    /// Unix milliseconds.
    pub at: i64,
    pub forced: bool,
    /// Counts per kind of what was removed, as JSON.
    pub removed: String,
}

/// What an erasure did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Erased {
    pub record: ErasureRecord,
    /// Console accounts linked to the person (kept, now linked to the pseudonym).
    pub console_users: Vec<String>,
    /// Deliveries still queued that were cancelled (with `force`).
    pub cancelled_deliveries: u64,
    /// Items whose kept text still names the person: content the business
    /// unit wrote, to be edited in `content/`.
    pub named_in_items: Vec<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum EraseError {
    #[error(
        "no person \"{0}\" in the store\n  help: give the person_id from directory/people.csv (`cascade import` first if they were added since)"
    )]
    Unknown(String),
    #[error("\"{id}\" was already erased (as {pseudonym}); erasure cannot be undone or repeated", id = .0, pseudonym = .1.pseudonym)]
    AlreadyErased(String, Box<ErasureRecord>),
    #[error(
        "the reason {0}\n  help: say why in a few words without naming them, e.g. --reason \"erasure request ref 2026-041\""
    )]
    Reason(&'static str),
    #[error(
        "\"{id}\" is still being sent learning in {rollouts}; nothing was erased\n  help: wait for these rollouts to finish, or add --force to cancel what is still queued for them and erase now",
        rollouts = .rollouts.join(", ")
    )]
    StillSending { id: String, rollouts: Vec<String> },
    #[error(
        "a message to \"{0}\" is being sent at this moment; nothing was erased\n  help: try again in a few minutes (once its send is recorded)"
    )]
    InFlight(String),
    #[error(
        "erasure stopped: \"{id}\"'s details were still found in {places} after wiping; nothing was erased\n  help: this is a bug in cascade; report it (without the person's details)",
        places = .places.join(", ")
    )]
    Left { id: String, places: Vec<String> },
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<sqlx::Error> for EraseError {
    fn from(e: sqlx::Error) -> Self {
        EraseError::Store(StoreError::Database(e))
    }
}

/// A subject access export: everything the store holds about a person.
#[derive(Debug, Clone, PartialEq)]
pub enum SubjectAccess {
    /// Rows of every table that holds the person, as JSON objects keyed by
    /// column name (secrets left out), table by table.
    Held {
        person: serde_json::Value,
        records: Vec<(String, Vec<serde_json::Value>)>,
    },
    /// Only the record that they were erased.
    Erased(ErasureRecord),
}

/// When each kind of data is old enough to go: `None` keeps it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RetentionCutoffs {
    /// Follow-up examples given before this (Unix ms) are emptied.
    pub follow_up_examples: Option<i64>,
    /// Champions' notes on confirmations recorded before this are emptied.
    pub confirmation_notes: Option<i64>,
    /// People inactive (gone from people.csv) since before this are erased.
    pub inactive_people: Option<i64>,
    /// Repeat-acknowledgement log rows, refusal counts and failed sign-ins
    /// before this are deleted.
    pub logs: Option<i64>,
    /// Console audit log rows before this are deleted.
    pub audit_log: Option<i64>,
}

/// What the retention schedule removes (or would remove), per kind.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct RetentionReport {
    pub follow_up_examples: u64,
    pub confirmation_notes: u64,
    /// The ids of people erased (as they were; gone once applied).
    pub inactive_people: Vec<String>,
    pub acknowledgement_log: u64,
    pub refusal_counts: u64,
    pub sign_in_failures: u64,
    pub audit_log: u64,
}

impl RetentionReport {
    pub fn is_empty(&self) -> bool {
        *self == RetentionReport::default()
    }
}

/// The store's GDPR duties.
pub trait Privacy: Send + Sync {
    /// Erases a person in one transaction: re-keys them to a pseudonym
    /// everywhere, removes their name, addresses, chat identities, link
    /// codes and free text, cuts their details out of others' free text,
    /// records the erasure, then scans every table for what was removed and
    /// rolls everything back if anything is left.
    fn erase_person(
        &self,
        request: &EraseRequest,
    ) -> impl Future<Output = Result<Erased, EraseError>> + Send;

    /// Everything held about a person; `None` for an id never held.
    fn subject_access(
        &self,
        person_id: &str,
    ) -> impl Future<Output = Result<Option<SubjectAccess>, StoreError>> + Send;

    /// The erasure of the person who had this id, if they were erased.
    fn erasure_of(
        &self,
        person_id: &str,
    ) -> impl Future<Output = Result<Option<ErasureRecord>, StoreError>> + Send;

    /// Applies the retention schedule (one transaction), or with `dry_run`
    /// only says what it would remove.
    fn apply_retention(
        &self,
        cutoffs: &RetentionCutoffs,
        run_by: &str,
        now: i64,
        dry_run: bool,
    ) -> impl Future<Output = Result<RetentionReport, StoreError>> + Send;

    /// Every table and column of the live schema, the store's internal
    /// tables left out: from `sqlite_master` and `pragma_table_info` in
    /// SQLite; from `information_schema` in PostgreSQL, less the `rowid`
    /// columns that stand for SQLite's implicit rowid (see
    /// migrations-pg/README.md), so both list the same columns.
    fn schema_columns(
        &self,
    ) -> impl Future<Output = Result<Vec<(String, String)>, StoreError>> + Send;

    /// Every place (`table.column`, row id) whose text contains `needle`,
    /// compared without (ASCII) case, in every column of every table of the
    /// live schema that can hold text (PostgreSQL: its TEXT columns).
    fn find_text(
        &self,
        needle: &str,
    ) -> impl Future<Output = Result<Vec<String>, StoreError>> + Send;
}

/// SHA-256 (hex) of a person id, as erasures keep it.
pub fn person_hash(person_id: &str) -> String {
    use sha2::{Digest, Sha256};
    let digest = Sha256::digest(format!("cascade-erased-person:{person_id}").as_bytes());
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

// Helpers both stores' erasure uses (pure Rust, no SQL).

/// What an erased person's free text becomes where it named them.
pub(crate) const ERASED: &str = "[erased]";

/// Details shorter than this are not searched for in free text: a short
/// name cut out of every text would damage others' words.
pub(crate) const SHORTEST_NEEDLE: usize = 4;

/// `name` as a quoted SQL identifier.
pub(crate) fn quote(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// The fields of [`FIELDS`] of the kinds `kind` accepts.
pub(crate) fn fields_of(kind: impl Fn(FieldKind) -> bool) -> impl Iterator<Item = &'static Field> {
    FIELDS.iter().filter(move |f| kind(f.kind))
}

/// A LIKE pattern matching text that contains `needle`.
pub(crate) fn like_pattern(needle: &str) -> String {
    let escaped = needle
        .replace('\\', "\\\\")
        .replace('%', "\\%")
        .replace('_', "\\_");
    format!("%{escaped}%")
}

/// `text` with every occurrence of `needle` (ASCII case ignored) replaced.
pub(crate) fn cut_out(text: &str, needle: &str) -> String {
    let lower = text.to_ascii_lowercase();
    let needle = needle.to_ascii_lowercase();
    let mut out = String::with_capacity(text.len());
    let mut at = 0;
    while let Some(found) = lower[at..].find(&needle) {
        out.push_str(&text[at..at + found]);
        out.push_str(ERASED);
        at += found + needle.len();
    }
    out.push_str(&text[at..]);
    out
}

/// A new pseudonym: `erased-` and 16 random hex digits.
pub(crate) fn random_pseudonym() -> Result<String, StoreError> {
    let mut bytes = [0u8; 8];
    getrandom::fill(&mut bytes)
        .map_err(|e| StoreError::Database(sqlx::Error::Protocol(format!("no randomness: {e}"))))?;
    Ok(format!(
        "erased-{}",
        bytes.iter().map(|b| format!("{b:02x}")).collect::<String>()
    ))
}

/// The erasure's reason, trimmed, if it says something, is not too long
/// and does not name the person by any of `details` (their name, email,
/// id) or their `mobile`.
pub(crate) fn check_reason<'a>(
    reason: &'a str,
    details: &[&str],
    mobile: Option<&str>,
) -> Result<&'a str, EraseError> {
    let reason = reason.trim();
    if reason.is_empty() {
        return Err(EraseError::Reason("is empty"));
    }
    if reason.chars().count() > 500 {
        return Err(EraseError::Reason("is longer than 500 characters"));
    }
    let lower = reason.to_lowercase();
    if details
        .iter()
        .copied()
        .chain(mobile)
        .any(|d| d.chars().count() >= SHORTEST_NEEDLE && lower.contains(&d.to_lowercase()))
    {
        return Err(EraseError::Reason(
            "names the person (their name, email, mobile or id): the erasure record must not",
        ));
    }
    Ok(reason)
}

/// A delivery key (`/`-separated segments) with every segment that is
/// `old` replaced by `new`.
pub(crate) fn rekey_segments(key: &str, old: &str, new: &str) -> String {
    key.split('/')
        .map(|segment| if segment == old { new } else { segment })
        .collect::<Vec<_>>()
        .join("/")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn like_patterns_match_percent_and_underscore_literally() {
        assert_eq!(like_pattern("a_b%c\\d"), "%a\\_b\\%c\\\\d%");
    }

    #[test]
    fn details_are_cut_out_whatever_their_case() {
        assert_eq!(
            cut_out("Ask ANN EXAMPLE or ann example", "Ann Example"),
            "Ask [erased] or [erased]"
        );
        assert_eq!(cut_out("nothing here", "Ann Example"), "nothing here");
    }

    #[test]
    fn only_whole_segments_of_a_key_are_rekeyed() {
        assert_eq!(
            rekey_segments("r-1/p-2/initial-1/p-22/0", "p-2", "erased-1"),
            "r-1/erased-1/initial-1/p-22/0"
        );
    }
}
