//! PostgreSQL side of the evidence chain (see [`crate::chain`] and
//! `sqlite/chain.rs`, whose rules this follows): appending links inside
//! the transactions that record evidence.
//!
//! Several processes may record evidence at once, so a transaction that
//! appends first takes [`lock`], a transaction-scoped advisory lock, before
//! any other write: the read of the head and the insert after it are then
//! one step for every process, as SQLite's write lock makes them, and no
//! two appenders can wait on each other's rows. Each kind's fields are read
//! from its row by the same SQL as SQLite's (`json_build_array` for
//! `json_array`), so a link made here verifies the same way.

// The store traits are being ported one by one (issue 18); until they all
// land, parts of this module are used only by some of them.
#![allow(dead_code)]

use crate::StoreError;
use crate::chain::*;
use sqlx::{PgConnection, Postgres, QueryBuilder, Row};

/// The advisory lock key of the chain's head ("cascade chain" in ASCII,
/// folded into 63 bits): one for the whole database.
pub(crate) const CHAIN_LOCK: i64 = 0x6361_7363_6164_6563;

/// Takes the chain's lock for the rest of the transaction. Call it first
/// in any transaction that will append, before its other writes.
pub(crate) async fn lock(conn: &mut PgConnection) -> Result<(), StoreError> {
    sqlx::query("SELECT pg_advisory_xact_lock($1)")
        .bind(CHAIN_LOCK)
        .execute(&mut *conn)
        .await?;
    Ok(())
}

/// How one kind of evidence event is read from its table. `{r}` in
/// `lookup` stands for the link's `ref`.
pub(crate) struct KindSql {
    pub(crate) kind: &'static str,
    pub(crate) table: &'static str,
    /// The row's `ref` as text.
    pub(crate) key: &'static str,
    /// Matches the row a `ref` names.
    pub(crate) lookup: &'static str,
    pub(crate) content: &'static str,
    pub(crate) personal: &'static str,
    pub(crate) at: &'static str,
    /// Rows that must be in the chain.
    pub(crate) chained: &'static str,
    pub(crate) order: &'static str,
}

const BY_ID: &str = "t.id = CAST({r} AS BIGINT)";

pub(crate) const KINDS: &[KindSql] = &[
    KindSql {
        kind: "delivery",
        table: "outbox",
        key: "CAST(t.id AS TEXT)",
        lookup: BY_ID,
        content: "json_build_array(t.rollout_id, t.wave, t.step_kind, t.step_number, t.channel, t.sent_at)::text",
        personal: "json_build_array(t.person_id, t.recipient_id)::text",
        at: "t.sent_at",
        chained: "t.sent_at IS NOT NULL",
        order: "t.sent_at, t.id",
    },
    KindSql {
        kind: "acknowledgement",
        table: "acknowledgements",
        key: "CAST(t.id AS TEXT)",
        lookup: BY_ID,
        content: "json_build_array(t.item_id, t.item_version, t.rollout_id, t.delivery_id, t.channel, t.method, t.at)::text",
        personal: "json_build_array(t.person_id)::text",
        at: "t.at",
        chained: "true",
        order: "t.at, t.id",
    },
    KindSql {
        kind: "confirmation",
        table: "cascade_confirmations",
        key: "CAST(t.id AS TEXT)",
        lookup: BY_ID,
        content: "json_build_array(t.item_id, t.team_id, t.session_date, t.present, t.method, t.channel, t.at)::text",
        personal: "json_build_array(t.champion_id, t.note)::text",
        at: "t.at",
        chained: "true",
        order: "t.at, t.id",
    },
    KindSql {
        kind: "answer",
        table: "follow_up_answers",
        key: "CAST(t.id AS TEXT)",
        lookup: BY_ID,
        content: "json_build_array(t.rollout_id, t.follow_up, t.answer, t.channel, t.at)::text",
        personal: "json_build_array(t.person_id, t.example)::text",
        at: "t.at",
        chained: "true",
        order: "t.at, t.id",
    },
    KindSql {
        kind: "check-answer",
        table: "check_answers",
        key: "CAST(t.id AS TEXT)",
        lookup: BY_ID,
        content: "json_build_array(t.acknowledgement_id, t.item_id, t.item_version, t.question, t.question_digest, t.first_answer, t.right_first_time, t.attempts, t.answered_at)::text",
        personal: "json_build_array(t.person_id)::text",
        at: "t.answered_at",
        chained: "t.acknowledgement_id IS NOT NULL",
        order: "t.answered_at, t.id",
    },
    KindSql {
        kind: "refusals",
        table: "refusal_counts",
        // The same text as SQLite's json_array gives (no spaces), so a
        // link's ref reads the same in both stores.
        key: "'[' || t.minute || ',' || to_json(t.channel)::text || ',' || to_json(t.method)::text || ',' || to_json(t.reason)::text || ']'",
        lookup: "t.minute = ({r}::jsonb->>0)::bigint AND t.channel = {r}::jsonb->>1
                 AND t.method = {r}::jsonb->>2 AND t.reason = {r}::jsonb->>3",
        content: "json_build_array(t.minute, t.channel, t.method, t.reason, t.count, t.last_at)::text",
        personal: "json_build_array()::text",
        at: "t.minute",
        chained: "t.minute < (SELECT refusals_sealed_to FROM evidence_chain_state)",
        order: "t.minute, t.channel, t.method, t.reason",
    },
    KindSql {
        kind: "erasure",
        table: "erasures",
        key: "CAST(t.id AS TEXT)",
        lookup: BY_ID,
        content: "json_build_array(t.pseudonym, t.at, t.forced)::text",
        personal: "json_build_array(t.erased_by, t.reason)::text",
        at: "t.at",
        chained: "true",
        order: "t.at, t.id",
    },
];

pub(crate) fn kind_sql(kind: &str) -> Option<&'static KindSql> {
    KINDS.iter().find(|k| k.kind == kind)
}

pub(crate) fn decode(e: impl std::fmt::Display) -> StoreError {
    StoreError::Database(sqlx::Error::Decode(e.to_string().into()))
}

/// A link about to be appended; its seq (and so its personal digest) is
/// known only then.
pub(crate) struct Pending {
    pub(crate) kind: &'static str,
    pub(crate) reference: String,
    pub(crate) at: i64,
    pub(crate) content: String,
    pub(crate) personal: PendingPersonal,
}

pub(crate) enum PendingPersonal {
    /// The event's own personal fields, hashed as version 0.
    Fields(Vec<Option<String>>),
    /// An amend: the amended event's new digest.
    #[allow(dead_code)]
    Digest(String),
}

/// Appends links for `events`, in order, after the chain's head. Called
/// inside a transaction that holds [`lock`].
pub(crate) async fn append(
    conn: &mut PgConnection,
    events: Vec<Pending>,
) -> Result<(), StoreError> {
    if events.is_empty() {
        return Ok(());
    }
    let row = sqlx::query(
        "SELECT (SELECT value FROM engine_secrets WHERE name = 'evidence-salt'),
                (SELECT seq FROM evidence_chain ORDER BY seq DESC LIMIT 1),
                (SELECT hash FROM evidence_chain ORDER BY seq DESC LIMIT 1)",
    )
    .fetch_one(&mut *conn)
    .await?;
    let salt: Vec<u8> = row
        .get::<Option<Vec<u8>>, _>(0)
        .ok_or_else(|| decode("the store has no evidence salt"))?;
    let mut seq: i64 = row.get::<Option<i64>, _>(1).unwrap_or(0);
    let mut prev: String = row
        .get::<Option<String>, _>(2)
        .unwrap_or_else(|| GENESIS.to_owned());
    let mut links = Vec::with_capacity(events.len());
    for e in events {
        seq += 1;
        let personal = match e.personal {
            PendingPersonal::Fields(f) => personal_digest(&salt, seq, 0, &f),
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
    for chunk in links.chunks(1000) {
        let mut insert: QueryBuilder<Postgres> = QueryBuilder::new(
            "INSERT INTO evidence_chain (seq, kind, ref, at, content, personal, prev, hash) ",
        );
        insert.push_values(chunk, |mut row, l| {
            row.push_bind(l.seq)
                .push_bind(&l.kind)
                .push_bind(&l.reference)
                .push_bind(l.at)
                .push_bind(&l.content)
                .push_bind(&l.personal)
                .push_bind(&l.prev)
                .push_bind(&l.hash);
        });
        insert.build().execute(&mut *conn).await?;
    }
    Ok(())
}

pub(crate) fn pending_of(
    k: &'static KindSql,
    row: &sqlx::postgres::PgRow,
) -> Result<Pending, StoreError> {
    let reference: String = row.get(0);
    let content = fields_from_json(row.get::<&str, _>(1)).map_err(decode)?;
    let personal = fields_from_json(row.get::<&str, _>(2)).map_err(decode)?;
    Ok(Pending {
        kind: k.kind,
        reference,
        at: row.get::<Option<i64>, _>(3).unwrap_or(0),
        content: content_digest(k.kind, &content),
        personal: PendingPersonal::Fields(personal),
    })
}

/// The link of an acknowledgement just inserted, from the values inserted
/// (the same fields, in the same form, as its row gives).
#[allow(dead_code)]
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

/// Appends the rows `ids` of `kind` (by id, in id order) to the chain.
#[allow(dead_code)]
pub(crate) async fn chain_ids(
    conn: &mut PgConnection,
    kind: &str,
    ids: &[i64],
) -> Result<(), StoreError> {
    if ids.is_empty() {
        return Ok(());
    }
    let k = kind_sql(kind).expect("a known kind");
    let sql = format!(
        "SELECT {key}, {content}, {personal}, {at} FROM {table} t
         WHERE t.id = ANY($1) ORDER BY t.id",
        key = k.key,
        content = k.content,
        personal = k.personal,
        at = k.at,
        table = k.table,
    );
    let rows = sqlx::query(&sql).bind(ids).fetch_all(&mut *conn).await?;
    let pending = rows
        .iter()
        .map(|r| pending_of(k, r))
        .collect::<Result<Vec<_>, _>>()?;
    append(conn, pending).await
}
