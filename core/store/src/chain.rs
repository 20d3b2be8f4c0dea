//! The tamper-evident evidence chain (issue 20).
//!
//! Every evidence event (a delivery sent, an acknowledgement, a champion's
//! confirmation, a follow-up answer, a sealed minute of refused attempts,
//! an erasure) is appended to `evidence_chain` in the transaction that
//! records it. Each link holds:
//!
//! - `content`: SHA-256 of the event's fields other than personal ones, as
//!   the JSON array of their texts (numbers in decimal, an empty text as
//!   `null`), after the kind: `["acknowledgement","7mb-...","ab12...",...]`;
//! - `personal`: HMAC-SHA-256 under the store's evidence salt of
//!   `[seq, version, personal fields...]` (person ids, a note, an example),
//!   so the chain never holds a name or an id, and without the salt a
//!   digest cannot be searched for a guess;
//! - `hash`: SHA-256 of `["cascade-evidence-1", seq, kind, ref, at, content,
//!   personal, prev]`, where `prev` is the link before's hash.
//!
//! An erasure replaces personal fields, never events: it is an `erasure`
//! event, followed by one `amend` event per event whose personal fields it
//! changed, carrying the digest of what is there now (version 1, 2, ...).
//! Adding an example to a follow-up answer, and the retention schedule
//! emptying notes and examples or removing refusal counts, are amends too.
//! So the chain still verifies after any of them.
//!
//! This module holds what needs no database: the digests, the kinds and
//! their fields, and the check of the links' order, shared by
//! `cascade evidence verify --store` and the check of an exported pack.

use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::fmt;
use std::future::Future;

use crate::StoreError;

/// The `prev` of the first link.
pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// Names the hashing scheme inside every link hash.
pub const SCHEME: &str = "cascade-evidence-1";

/// One link of the chain, as stored.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct ChainLink {
    pub seq: i64,
    pub kind: String,
    #[sqlx(rename = "ref")]
    pub reference: String,
    pub at: i64,
    pub content: String,
    pub personal: String,
    pub prev: String,
    pub hash: String,
}

impl ChainLink {
    /// The hash this link's fields give.
    pub fn computed_hash(&self) -> String {
        link_hash(
            self.seq,
            &self.kind,
            &self.reference,
            self.at,
            &self.content,
            &self.personal,
            &self.prev,
        )
    }

    /// How the link names its event: `acknowledgement 17`.
    pub fn event_name(&self) -> String {
        event_name(&self.kind, &self.reference)
    }
}

/// `acknowledgement 17`, `refusals [minute, ...]`, `amend of event 12`.
pub fn event_name(kind: &str, reference: &str) -> String {
    match kind {
        "amend" => match Amend::parse(reference) {
            Some(a) => format!("amend of event {} ({})", a.target, a.why),
            None => format!("amend {reference}"),
        },
        _ => format!("{kind} {reference}"),
    }
}

fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(DIGITS[(b >> 4) as usize] as char);
        s.push(DIGITS[(b & 15) as usize] as char);
    }
    s
}

/// The canonical text of a list of fields: a JSON array of texts, an empty
/// text written as `null` (so a CSV's empty cell reads back the same).
pub fn canonical(fields: &[Option<String>]) -> String {
    let normal: Vec<Option<&str>> = fields
        .iter()
        .map(|f| f.as_deref().filter(|s| !s.is_empty()))
        .collect();
    serde_json::to_string(&normal).expect("texts serialise")
}

/// SHA-256 (hex) of an event's non-personal fields.
pub fn content_digest(kind: &str, fields: &[Option<String>]) -> String {
    let fields: Vec<Option<&str>> = fields.iter().map(Option::as_deref).collect();
    content_digest_of(kind, &fields)
}

/// [`content_digest`] of borrowed fields.
pub fn content_digest_of(kind: &str, fields: &[Option<&str>]) -> String {
    let mut all = Vec::with_capacity(fields.len() + 1);
    all.push(Some(kind).filter(|s| !s.is_empty()));
    all.extend(fields.iter().map(|f| f.filter(|s| !s.is_empty())));
    hex(&Sha256::digest(
        serde_json::to_string(&all)
            .expect("texts serialise")
            .as_bytes(),
    ))
}

/// HMAC-SHA-256 (hex) under `salt` of an event's personal fields, bound to
/// the event's place and the version of its personal fields (0 as
/// recorded, 1 after the first amend, ...).
pub fn personal_digest(salt: &[u8], seq: i64, version: i64, fields: &[Option<String>]) -> String {
    let mut all = Vec::with_capacity(fields.len() + 2);
    all.push(Some(seq.to_string()));
    all.push(Some(version.to_string()));
    all.extend(fields.iter().cloned());
    let mut mac = Hmac::<Sha256>::new_from_slice(salt).expect("HMAC takes any key length");
    mac.update(canonical(&all).as_bytes());
    hex(&mac.finalize().into_bytes())
}

/// SHA-256 (hex) of a link.
pub fn link_hash(
    seq: i64,
    kind: &str,
    reference: &str,
    at: i64,
    content: &str,
    personal: &str,
    prev: &str,
) -> String {
    let text = serde_json::to_string(&(SCHEME, seq, kind, reference, at, content, personal, prev))
        .expect("texts serialise");
    hex(&Sha256::digest(text.as_bytes()))
}

/// A link about to be appended; its seq (and so its personal digest) is
/// known only then. Both stores make links only through this and
/// [`link`], so the same events hash the same in either.
pub(crate) struct Pending {
    kind: &'static str,
    reference: String,
    at: i64,
    content: String,
    personal: PendingPersonal,
}

enum PendingPersonal {
    /// The event's own personal fields, hashed as version 0.
    Fields(Vec<Option<String>>),
    /// An amend: the amended event's new digest.
    Digest(String),
}

impl Pending {
    /// An event read back from its row: its `ref`, its content and
    /// personal fields as the JSON arrays the store builds, and its time.
    pub(crate) fn from_row(
        kind: &'static str,
        reference: String,
        content: &str,
        personal: &str,
        at: Option<i64>,
    ) -> Result<Pending, String> {
        Ok(Pending {
            kind,
            reference,
            at: at.unwrap_or(0),
            content: content_digest(kind, &fields_from_json(content)?),
            personal: PendingPersonal::Fields(fields_from_json(personal)?),
        })
    }

    /// The link of an acknowledgement just inserted, from the values
    /// inserted (the same fields, in the same form, as its row gives).
    pub(crate) fn acknowledgement(id: i64, ack: &crate::NewAcknowledgement) -> Pending {
        let content = [
            Some(ack.item_id.clone()),
            Some(ack.item_version.clone()),
            ack.rollout_id.clone(),
            ack.delivery_id.map(|d| d.to_string()),
            Some(ack.channel.clone()),
            Some(ack.method.as_str().to_owned()),
            Some(ack.at.to_string()),
        ];
        Pending {
            kind: "acknowledgement",
            reference: id.to_string(),
            at: ack.at,
            content: content_digest("acknowledgement", &content),
            personal: PendingPersonal::Fields(vec![Some(ack.person_id.clone())]),
        }
    }

    /// The amend of event `target`, whose personal fields were at
    /// `version` with digest `current`: `fields` as they are now, or none
    /// when the row was removed. None when the fields still give
    /// `current` (nothing to amend).
    pub(crate) fn amend(
        salt: &[u8],
        target: i64,
        version: i64,
        current: &str,
        fields: Option<&[Option<String>]>,
        why: &str,
        at: i64,
    ) -> Option<Pending> {
        let new = match fields {
            None => String::new(),
            Some(fields) => {
                if personal_digest(salt, target, version, fields) == current {
                    return None;
                }
                personal_digest(salt, target, version + 1, fields)
            }
        };
        let a = Amend {
            target,
            version: version + 1,
            why: why.to_owned(),
        };
        Some(Pending {
            kind: "amend",
            reference: a.reference(),
            at,
            content: content_digest("amend", &a.fields()),
            personal: PendingPersonal::Digest(new),
        })
    }
}

/// The links for `events`, in order, after the head `(seq, hash)` (none:
/// the chain is empty), personal fields hashed under `salt`.
pub(crate) fn link(
    salt: &[u8],
    head: Option<(i64, String)>,
    events: Vec<Pending>,
) -> Vec<ChainLink> {
    let (mut seq, mut prev) = head.unwrap_or_else(|| (0, GENESIS.to_owned()));
    let mut links = Vec::with_capacity(events.len());
    for e in events {
        seq += 1;
        let personal = match e.personal {
            PendingPersonal::Fields(f) => personal_digest(salt, seq, 0, &f),
            PendingPersonal::Digest(d) => d,
        };
        let hash = link_hash(
            seq,
            e.kind,
            &e.reference,
            e.at,
            &e.content,
            &personal,
            &prev,
        );
        links.push(ChainLink {
            seq,
            kind: e.kind.to_owned(),
            reference: e.reference,
            at: e.at,
            content: e.content,
            personal,
            prev: std::mem::replace(&mut prev, hash.clone()),
            hash,
        });
    }
    links
}

/// Field values as SQLite's `json_array` gives them, as texts.
pub fn fields_from_json(json: &str) -> Result<Vec<Option<String>>, String> {
    let values: Vec<serde_json::Value> =
        serde_json::from_str(json).map_err(|e| format!("not a JSON array: {e}"))?;
    Ok(values
        .into_iter()
        .map(|v| match v {
            serde_json::Value::Null => None,
            serde_json::Value::String(s) => Some(s),
            serde_json::Value::Bool(b) => Some(u8::from(b).to_string()),
            other => Some(other.to_string()),
        })
        .collect())
}

/// What an `amend` link's `ref` says: `<target seq>:<version>:<why>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Amend {
    pub target: i64,
    pub version: i64,
    /// erasure, example-added, retention, or removed (the row was deleted
    /// by the retention schedule).
    pub why: String,
}

impl Amend {
    pub fn reference(&self) -> String {
        format!("{}:{}:{}", self.target, self.version, self.why)
    }

    pub fn parse(reference: &str) -> Option<Amend> {
        let mut parts = reference.splitn(3, ':');
        let target = parts.next()?.parse().ok()?;
        let version = parts.next()?.parse().ok()?;
        let why = parts.next()?.to_owned();
        Some(Amend {
            target,
            version,
            why,
        })
    }

    /// The fields its content digest covers.
    pub fn fields(&self) -> Vec<Option<String>> {
        vec![
            Some(self.target.to_string()),
            Some(self.version.to_string()),
            Some(self.why.clone()),
        ]
    }
}

/// The kinds of evidence event and their fields, in the order the content
/// and personal digests take them (and the export's columns).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EventKind {
    pub kind: &'static str,
    /// The export's CSV file.
    pub file: &'static str,
    pub content: &'static [&'static str],
    pub personal: &'static [&'static str],
    /// Columns the export adds that are not chained (the rollout's item).
    pub extra: &'static [&'static str],
}

pub const EVENT_KINDS: &[EventKind] = &[
    EventKind {
        kind: "delivery",
        file: "deliveries.csv",
        content: &[
            "rollout_id",
            "wave",
            "step_kind",
            "step_number",
            "channel",
            "sent_at",
        ],
        personal: &["person_id", "recipient_id"],
        extra: &["item_id", "item_version"],
    },
    EventKind {
        kind: "acknowledgement",
        file: "acknowledgements.csv",
        content: &[
            "item_id",
            "item_version",
            "rollout_id",
            "delivery_id",
            "channel",
            "method",
            "at",
        ],
        personal: &["person_id"],
        extra: &[],
    },
    EventKind {
        kind: "confirmation",
        file: "confirmations.csv",
        content: &[
            "item_id",
            "team_id",
            "session_date",
            "present",
            "method",
            "channel",
            "at",
        ],
        personal: &["champion_id", "note"],
        extra: &[],
    },
    EventKind {
        kind: "answer",
        file: "answers.csv",
        content: &["rollout_id", "follow_up", "answer", "channel", "at"],
        personal: &["person_id", "example"],
        extra: &[],
    },
    EventKind {
        kind: "check-answer",
        file: "check_answers.csv",
        content: &[
            "acknowledgement_id",
            "item_id",
            "item_version",
            "question",
            "question_digest",
            "first_answer",
            "right_first_time",
            "attempts",
            "answered_at",
        ],
        personal: &["person_id"],
        extra: &[],
    },
    EventKind {
        kind: "refusals",
        file: "refusals.csv",
        content: &["minute", "channel", "method", "reason", "count", "last_at"],
        personal: &[],
        extra: &[],
    },
    EventKind {
        kind: "erasure",
        file: "erasures.csv",
        content: &["pseudonym", "at", "forced"],
        personal: &["erased_by", "reason"],
        extra: &[],
    },
];

pub fn event_kind(kind: &str) -> Option<&'static EventKind> {
    EVENT_KINDS.iter().find(|k| k.kind == kind)
}

/// What was wrong with an event.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
/// Ordered so that, at one event, the cause comes before its effects (a
/// link moved also no longer gives its personal digest).
pub enum Tamper {
    OutOfOrder,
    Missing,
    Inserted,
    Edited,
}

impl Tamper {
    pub fn as_str(self) -> &'static str {
        match self {
            Tamper::Edited => "edited",
            Tamper::Missing => "missing",
            Tamper::Inserted => "inserted",
            Tamper::OutOfOrder => "out of order",
        }
    }
}

/// One problem verify found, at an event of the chain (`seq`) or at a row
/// of evidence the chain does not hold (`seq` is `None`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChainProblem {
    pub seq: Option<i64>,
    /// `acknowledgement 17`.
    pub event: String,
    pub what: Tamper,
    /// In plain words: what does not match.
    pub detail: String,
}

impl fmt::Display for ChainProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.seq {
            Some(seq) => write!(
                f,
                "event {seq} ({}): {}: {}",
                self.event,
                self.what.as_str(),
                self.detail
            ),
            None => write!(f, "{}: {}: {}", self.event, self.what.as_str(), self.detail),
        }
    }
}

/// Orders problems so the first event touched comes first; rows outside
/// the chain (inserted) after every event.
pub fn sort_problems(problems: &mut [ChainProblem]) {
    problems.sort_by_key(|p| (p.seq.is_none(), p.seq, p.what));
}

/// What `verify --store` found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ChainReport {
    /// Links read.
    pub events: u64,
    /// The last link's seq and hash.
    pub head: Option<(i64, String)>,
    /// Ordered: the first is the first event where anything was changed.
    pub problems: Vec<ChainProblem>,
}

/// The part of a link the order check keeps (48 bytes a link, so a chain
/// of millions fits in memory): its seq as stored, the first 16 bytes of
/// its hash and of its prev, and whether its fields give its hash.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LinkKey {
    pub seq: i64,
    pub hash: u128,
    pub prev: u128,
    pub fields_match: bool,
}

/// The first 16 bytes of a hex hash (0 for text that is not hex).
pub fn hash_key(hash: &str) -> u128 {
    hash.get(..32)
        .and_then(|h| u128::from_str_radix(h, 16).ok())
        .unwrap_or(0)
}

impl LinkKey {
    pub fn of(link: &ChainLink) -> LinkKey {
        LinkKey {
            seq: link.seq,
            hash: hash_key(&link.hash),
            prev: hash_key(&link.prev),
            fields_match: link.computed_hash() == link.hash,
        }
    }
}

/// Where the order of links first goes wrong, as (position in `links`,
/// what, detail). `first_seq` is the seq the first link should have and
/// `anchor` the hash it should follow ([`GENESIS`] for the whole chain).
pub fn check_links(
    links: &[LinkKey],
    first_seq: i64,
    anchor: &str,
) -> Option<(usize, Tamper, String)> {
    let anchor = hash_key(anchor);
    let ok = |i: usize| {
        let l = links[i];
        let prev = if i == 0 { anchor } else { links[i - 1].hash };
        l.fields_match && l.seq == first_seq + i as i64 && l.prev == prev
    };
    let i = (0..links.len()).find(|&i| !ok(i))?;
    let mut by_hash: HashMap<u128, usize> = HashMap::with_capacity(links.len());
    let mut by_seq: HashMap<i64, usize> = HashMap::with_capacity(links.len());
    for (j, l) in links.iter().enumerate() {
        by_hash.entry(l.hash).or_insert(j);
        by_seq.entry(l.seq).or_insert(j);
    }
    let l = links[i];
    let expected = first_seq + i as i64;
    let follows = |i: usize| i.checked_sub(1);
    if !l.fields_match {
        // Its prev names an event that is not the one before it: it was
        // moved here (its seq changed with the move, so its hash no longer
        // matches either).
        if let Some(&p) = by_hash.get(&l.prev)
            && Some(p) != follows(i)
        {
            return Some((
                i,
                Tamper::OutOfOrder,
                format!(
                    "it was recorded after event {}, but now stands in place {expected}",
                    links[p].seq
                ),
            ));
        }
        return Some((
            i,
            Tamper::Edited,
            "its fields no longer give the hash recorded for it".to_owned(),
        ));
    }
    if l.seq != expected {
        if l.seq < expected || by_seq.get(&expected).is_some_and(|&j| j > i) {
            return Some((
                i,
                Tamper::OutOfOrder,
                format!("event {} stands where event {expected} should", l.seq),
            ));
        }
        if l.seq > expected {
            let gap = if l.seq == expected + 1 {
                format!("event {expected} was removed")
            } else {
                format!("events {expected} to {} were removed", l.seq - 1)
            };
            return Some((
                i,
                Tamper::Missing,
                format!("{gap}: the chain goes on at event {}", l.seq),
            ));
        }
    }
    // Its own fields and seq hold, but it does not follow the link before.
    if let Some(&p) = by_hash.get(&l.prev) {
        if i >= 2 && p == i - 2 {
            return Some((
                i - 1,
                Tamper::Inserted,
                format!(
                    "it is not in the chain: the event after it follows event {}",
                    links[p].seq
                ),
            ));
        }
        if p > i {
            return Some((
                i,
                Tamper::OutOfOrder,
                format!("it was recorded after event {}", links[p].seq),
            ));
        }
    }
    if i == 0 {
        return Some((
            0,
            Tamper::Edited,
            "it does not follow the hash the chain was anchored at: an earlier event was changed or removed".to_owned(),
        ));
    }
    Some((
        i - 1,
        Tamper::Edited,
        format!(
            "its hash is not the one event {} records as coming before it: it was rewritten",
            l.seq
        ),
    ))
}

/// A link as verify reads it, with its row's fields now (`None` when the
/// row is gone) and whether it is the latest link of its event.
pub(crate) struct LiveLink {
    pub(crate) link: ChainLink,
    pub(crate) content: Option<String>,
    pub(crate) personal: Option<String>,
    pub(crate) latest: bool,
}

/// The latest amend of each amended event, (version, digest, why), from the
/// amend links' (ref, personal) in chain order.
pub(crate) fn latest_amends(
    rows: impl IntoIterator<Item = (String, String)>,
) -> HashMap<i64, (i64, String, String)> {
    let mut map = HashMap::new();
    for (reference, personal) in rows {
        if let Some(a) = Amend::parse(&reference) {
            map.insert(a.target, (a.version, personal, a.why));
        }
    }
    map
}

fn decode_error(e: impl fmt::Display) -> StoreError {
    StoreError::Database(sqlx::Error::Decode(e.to_string().into()))
}

/// What both stores' verify do with the links they read, in order: each
/// link checked against its row (through `table`, the table of a kind, or
/// `None` for a kind cascade does not record), then
/// [`VerifyLinks::finish`] names rows swapped or edited and gives the
/// report and the links' keys for [`check_links`].
pub(crate) struct VerifyLinks<'a> {
    salt: Vec<u8>,
    amends: &'a HashMap<i64, (i64, String, String)>,
    table: fn(&str) -> Option<&'static str>,
    report: ChainReport,
    keys: Vec<LinkKey>,
    /// (seq, event, kind, recorded content digest, content digest now)
    mismatched: Vec<(i64, String, String, String, String)>,
}

impl<'a> VerifyLinks<'a> {
    pub(crate) fn new(
        salt: Vec<u8>,
        amends: &'a HashMap<i64, (i64, String, String)>,
        table: fn(&str) -> Option<&'static str>,
    ) -> Self {
        VerifyLinks {
            salt,
            amends,
            table,
            report: ChainReport::default(),
            keys: Vec::new(),
            mismatched: Vec::new(),
        }
    }

    /// Checks the next link.
    pub(crate) fn link(&mut self, live: LiveLink) -> Result<(), StoreError> {
        let link = &live.link;
        self.keys.push(LinkKey::of(link));
        self.report.events += 1;
        self.report.head = Some((link.seq, link.hash.clone()));
        let problem = |what, detail: String| ChainProblem {
            seq: Some(link.seq),
            event: link.event_name(),
            what,
            detail,
        };
        if link.kind == "amend" {
            if Amend::parse(&link.reference).is_none() {
                self.report.problems.push(problem(
                    Tamper::Edited,
                    "its reference is not an amend's".to_owned(),
                ));
            }
            return Ok(());
        }
        let Some(table) = (self.table)(&link.kind) else {
            self.report.problems.push(problem(
                Tamper::Edited,
                "it is of no kind cascade records".to_owned(),
            ));
            return Ok(());
        };
        if !live.latest {
            // Recorded again later (a delivery sent again): the
            // later link is compared with the row.
            return Ok(());
        }
        let (version, expected, why) = match self.amends.get(&link.seq) {
            Some((v, d, why)) => (*v, d.as_str(), why.as_str()),
            None => (0, link.personal.as_str(), ""),
        };
        let Some(content) = &live.content else {
            if why != "removed" {
                self.report.problems.push(problem(
                    Tamper::Missing,
                    format!("its row is gone from {}", table),
                ));
            }
            return Ok(());
        };
        if why == "removed" {
            self.report.problems.push(problem(
                Tamper::Inserted,
                format!(
                    "its row was removed by the retention schedule, but {} holds one again",
                    table
                ),
            ));
            return Ok(());
        }
        let fields = fields_from_json(content).map_err(decode_error)?;
        let now = content_digest(&link.kind, &fields);
        if now != link.content {
            self.mismatched.push((
                link.seq,
                link.event_name(),
                link.kind.clone(),
                link.content.clone(),
                now,
            ));
        }
        let personal =
            fields_from_json(live.personal.as_deref().unwrap_or("[]")).map_err(decode_error)?;
        if personal_digest(&self.salt, link.seq, version, &personal) != expected {
            self.report.problems.push(problem(
                Tamper::Edited,
                format!(
                    "its personal fields in {} ({}) were changed, and no erasure or amend records it",
                    table,
                    event_kind(&link.kind)
                        .map(|e| e.personal.join(", "))
                        .unwrap_or_default()
                ),
            ));
        }
        Ok(())
    }

    /// The report so far (rows swapped or edited added) and the links' keys.
    pub(crate) fn finish(mut self) -> (ChainReport, Vec<LinkKey>) {
        // Rows whose fields are another event's: swapped.
        let recorded: HashMap<(&str, &str), i64> = self
            .mismatched
            .iter()
            .map(|(seq, _, kind, was, _)| ((kind.as_str(), was.as_str()), *seq))
            .collect();
        for (seq, event, kind, _, now) in &self.mismatched {
            let table = (self.table)(kind).unwrap_or("its table");
            self.report.problems.push(match recorded.get(&(kind.as_str(), now.as_str())) {
            Some(other) => ChainProblem {
                seq: Some(*seq),
                event: event.clone(),
                what: Tamper::OutOfOrder,
                detail: format!(
                    "its row in {table} now holds what event {other} recorded: the two were swapped"
                ),
            },
            None => ChainProblem {
                seq: Some(*seq),
                event: event.clone(),
                what: Tamper::Edited,
                detail: format!("its row in {table} no longer holds what was recorded"),
            },
        });
        }
        (self.report, self.keys)
    }
}

/// Reading and checking the chain in the store.
pub trait EvidenceChain: Send + Sync {
    /// Checks every link's hash and order, every evidence row against its
    /// link (personal fields through their salted digests, amends
    /// applied), and that no evidence row is missing from the chain.
    fn verify_chain(&self) -> impl Future<Output = Result<ChainReport, StoreError>> + Send;

    /// The link at `seq`, if the chain has one.
    fn chain_link(
        &self,
        seq: i64,
    ) -> impl Future<Output = Result<Option<ChainLink>, StoreError>> + Send;

    /// Seals refusal counts of minutes that are over, then hands `sink`
    /// every link from the first whose event happened at or after `from`
    /// to the last before `to` (Unix ms), in order, with the event's fields
    /// as the store holds them now.
    fn export_chain(
        &self,
        from: i64,
        to: i64,
        now: i64,
        sink: &mut (dyn EvidenceSink + Send),
    ) -> impl Future<Output = Result<ExportedRange, StoreError>> + Send;
}

/// One link as an export reads it: its fields borrowed from the store
/// until the next link.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LinkRef<'a> {
    pub seq: i64,
    pub kind: &'a str,
    pub reference: &'a str,
    pub at: i64,
    pub content: &'a str,
    pub personal: &'a str,
    pub prev: &'a str,
    pub hash: &'a str,
}

impl LinkRef<'_> {
    pub fn to_owned_link(&self) -> ChainLink {
        ChainLink {
            seq: self.seq,
            kind: self.kind.to_owned(),
            reference: self.reference.to_owned(),
            at: self.at,
            content: self.content.to_owned(),
            personal: self.personal.to_owned(),
            prev: self.prev.to_owned(),
            hash: self.hash.to_owned(),
        }
    }
}

/// One event handed to an export, with its row's fields now (in
/// [`EventKind`]'s order, each as the text `json_array` would give it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ExportedEvent<'a> {
    pub link: &'a LinkRef<'a>,
    /// `None` when the row is gone.
    pub content: Option<&'a [Option<&'a str>]>,
    pub personal: Option<&'a [Option<&'a str>]>,
    pub extra: Option<&'a [Option<&'a str>]>,
    /// The digest the personal fields should give now, and its version
    /// (the latest amend's, or the link's own with version 0).
    pub personal_now: &'a str,
    pub personal_version: i64,
}

/// Where an export's links go: every link in order, and right after each
/// link of a kind in [`EVENT_KINDS`] its event with the row's fields.
pub trait EvidenceSink {
    fn link(&mut self, link: &LinkRef<'_>) -> Result<(), String>;
    fn event(&mut self, event: &ExportedEvent<'_>) -> Result<(), String>;
}

/// The links an export covered.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ExportedRange {
    pub first_seq: Option<i64>,
    pub last_seq: Option<i64>,
    /// The hash the first link follows.
    pub anchor: String,
    /// The last exported link's hash.
    pub head: String,
    /// The whole chain's last link when the export was taken.
    pub store_head: Option<(i64, String)>,
    pub events: u64,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chain(n: i64) -> Vec<ChainLink> {
        let mut prev = GENESIS.to_owned();
        (1..=n)
            .map(|seq| {
                let content = content_digest("acknowledgement", &[Some(seq.to_string())]);
                let personal = personal_digest(b"salt", seq, 0, &[Some("p".into())]);
                let hash = link_hash(
                    seq,
                    "acknowledgement",
                    &seq.to_string(),
                    seq,
                    &content,
                    &personal,
                    &prev,
                );
                let link = ChainLink {
                    seq,
                    kind: "acknowledgement".into(),
                    reference: seq.to_string(),
                    at: seq,
                    content,
                    personal,
                    prev: prev.clone(),
                    hash: hash.clone(),
                };
                prev = hash;
                link
            })
            .collect()
    }

    fn check(links: &[ChainLink]) -> Option<(usize, Tamper)> {
        let keys: Vec<LinkKey> = links.iter().map(LinkKey::of).collect();
        check_links(&keys, 1, GENESIS).map(|(i, t, _)| (i, t))
    }

    #[test]
    fn an_intact_chain_passes() {
        assert_eq!(check(&chain(5)), None);
    }

    #[test]
    fn each_kind_of_tampering_is_named_at_its_first_event() {
        let mut edited = chain(5);
        edited[2].at += 1;
        assert_eq!(check(&edited), Some((2, Tamper::Edited)));

        let mut removed = chain(5);
        removed.remove(2);
        assert_eq!(check(&removed), Some((2, Tamper::Missing)));

        let mut swapped = chain(5);
        swapped.swap(1, 3);
        assert_eq!(check(&swapped), Some((1, Tamper::OutOfOrder)));

        // Reordered in a database: the rows swap seq numbers.
        let mut renumbered = chain(5);
        renumbered.swap(1, 3);
        renumbered[1].seq = 2;
        renumbered[3].seq = 4;
        assert_eq!(check(&renumbered), Some((1, Tamper::OutOfOrder)));

        // A well-formed link slipped in after event 2, those after it
        // renumbered and rehashed, but still following event 2.
        let mut inserted = chain(5);
        let fake = {
            let prev = inserted[1].hash.clone();
            let content = content_digest("acknowledgement", &[Some("x".into())]);
            let hash = link_hash(3, "acknowledgement", "99", 3, &content, "p", &prev);
            ChainLink {
                seq: 3,
                kind: "acknowledgement".into(),
                reference: "99".into(),
                at: 3,
                content,
                personal: "p".into(),
                prev,
                hash,
            }
        };
        inserted.insert(2, fake);
        for (i, l) in inserted.iter_mut().enumerate().skip(3) {
            l.seq = i as i64 + 1;
            l.hash = l.computed_hash();
        }
        assert_eq!(check(&inserted), Some((2, Tamper::Inserted)));
    }

    #[test]
    fn empty_texts_and_nulls_digest_alike() {
        assert_eq!(
            content_digest("answer", &[Some(String::new()), Some("a".into())]),
            content_digest("answer", &[None, Some("a".into())])
        );
        assert_ne!(
            personal_digest(b"salt", 1, 0, &[Some("p-1".into())]),
            personal_digest(b"other", 1, 0, &[Some("p-1".into())])
        );
        assert_ne!(
            personal_digest(b"salt", 1, 0, &[Some("p-1".into())]),
            personal_digest(b"salt", 1, 1, &[Some("p-1".into())])
        );
    }
}
