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

use super::PgStore;
use crate::StoreError;
use crate::chain::*;
use sqlx::postgres::{PgPool, PgRow};
use sqlx::{PgConnection, Postgres, QueryBuilder, Row};
use std::collections::HashMap;

/// The advisory lock key of the chain's head ("cascade chain" in ASCII,
/// folded into 63 bits): one for the whole database.
pub(crate) const CHAIN_LOCK: i64 = 0x6361_7363_6164_6563;

/// Takes the chain's lock for the rest of the transaction, then links every
/// send listed in `chain_pending` ([`link_listed`]) and returns how many:
/// whoever holds the lock (an acknowledgement, a confirmation, an
/// erasure, an export, the linking after a recording) first links the
/// sends that recordings listed because the lock was taken, so none waits
/// for a heartbeat while anything appends. Call it first in any
/// transaction that will append, before its other writes.
pub(crate) async fn lock(conn: &mut PgConnection) -> Result<u64, StoreError> {
    sqlx::query("SELECT pg_advisory_xact_lock($1)")
        .bind(CHAIN_LOCK)
        .execute(&mut *conn)
        .await?;
    link_listed(conn).await
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
    /// Columns the export adds that are not chained ([`EventKind`]'s
    /// `extra`), and the join that gives them.
    pub(crate) extra_columns: &'static str,
    pub(crate) extra_join: &'static str,
    pub(crate) at: &'static str,
    /// Rows that must be in the chain.
    pub(crate) chained: &'static str,
    pub(crate) order: &'static str,
}

// A ref that is not a number (only a tampered link has one) matches no
// row, as SQLite's CAST makes it, rather than failing the statement.
const BY_ID: &str = "t.id = CASE WHEN {r} ~ '^[0-9]{1,18}$' THEN CAST({r} AS BIGINT) END";

pub(crate) const KINDS: &[KindSql] = &[
    KindSql {
        kind: "delivery",
        table: "outbox",
        key: "CAST(t.id AS TEXT)",
        lookup: BY_ID,
        content: "json_build_array(t.rollout_id, t.wave, t.step_kind, t.step_number, t.channel, t.sent_at)::text",
        personal: "json_build_array(t.person_id, t.recipient_id)::text",
        extra_columns: "r.item_id, r.item_version",
        extra_join: "LEFT JOIN rollouts r ON r.id = t.rollout_id",
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
        extra_columns: "",
        extra_join: "",
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
        extra_columns: "",
        extra_join: "",
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
        extra_columns: "",
        extra_join: "",
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
        extra_columns: "",
        extra_join: "",
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
        // The minute (the primary key's first column) from the ref's text,
        // then the whole key: no JSON cast, which a tampered ref would fail.
        lookup: "t.minute = CASE WHEN {r} ~ '^\\[-?[0-9]{1,18},'
                     THEN CAST(substring({r} from '^\\[(-?[0-9]+),') AS BIGINT) END
                 AND '[' || t.minute || ',' || to_json(t.channel)::text || ',' || to_json(t.method)::text || ',' || to_json(t.reason)::text || ']' = {r}",
        content: "json_build_array(t.minute, t.channel, t.method, t.reason, t.count, t.last_at)::text",
        personal: "json_build_array()::text",
        extra_columns: "",
        extra_join: "",
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
        extra_columns: "",
        extra_join: "",
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
    let head = row
        .get::<Option<i64>, _>(1)
        .zip(row.get::<Option<String>, _>(2));
    let links = link(&salt, head, events);
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

pub(crate) fn pending_of(k: &'static KindSql, row: &PgRow) -> Result<Pending, StoreError> {
    Pending::from_row(
        k.kind,
        row.get(0),
        row.get::<&str, _>(1),
        row.get::<&str, _>(2),
        row.get::<Option<i64>, _>(3),
    )
    .map_err(decode)
}

/// The fields [`pending_of`] reads, in its order, of a row of `k`'s table
/// named `t`: for a `SELECT` or a `RETURNING`.
pub(crate) fn chained_fields(k: &KindSql) -> String {
    format!("{}, {}, {}, {}", k.key, k.content, k.personal, k.at)
}

/// Appends the rows `ids` of `kind` (by id, in id order) to the chain.
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
        "SELECT {} FROM {} t WHERE t.id = ANY($1) ORDER BY t.id",
        chained_fields(k),
        k.table,
    );
    let rows = sqlx::query(&sql).bind(ids).fetch_all(&mut *conn).await?;
    let pending = rows
        .iter()
        .map(|r| pending_of(k, r))
        .collect::<Result<Vec<_>, _>>()?;
    append(conn, pending).await
}

pub(crate) fn lookup(k: &KindSql, r: &str) -> String {
    k.lookup.replace("{r}", r)
}

async fn salt(conn: &mut PgConnection) -> Result<Vec<u8>, StoreError> {
    let salt: Option<Vec<u8>> =
        sqlx::query_scalar("SELECT value FROM engine_secrets WHERE name = 'evidence-salt'")
            .fetch_optional(&mut *conn)
            .await?;
    salt.ok_or_else(|| decode("the store has no evidence salt (engine_secrets 'evidence-salt')"))
}

/// Rows of `chain_pending` linked per statement by [`link_listed`]: the
/// transaction goes on until the list is empty.
const LINK_AT_ONCE: i64 = 5_000;

/// Links every delivery listed in `chain_pending` (see migration
/// `20261217000000_chain_pending.sql`), in id order, and empties the list;
/// returns how many it linked. Called holding the chain's lock (by
/// [`lock`], which every holder takes), so every row listed by a
/// transaction that committed before the lock was taken is linked here.
/// A listed row that is gone (the retention schedule, an erasure) or
/// already linked is dropped.
async fn link_listed(conn: &mut PgConnection) -> Result<u64, StoreError> {
    let k = kind_sql("delivery").expect("a known kind");
    // Every row taken from the list comes back, with the fields to link
    // when its delivery is there to link (`t.id` NULL when not).
    let sql = format!(
        "WITH taken AS (
             DELETE FROM chain_pending WHERE id IN
               (SELECT id FROM chain_pending ORDER BY id LIMIT $1)
             RETURNING outbox_id)
         SELECT {fields}, t.id FROM taken p
         LEFT JOIN {table} t ON t.id = p.outbox_id AND {chained}
           AND NOT EXISTS (SELECT 1 FROM evidence_chain c
                           WHERE c.kind = $2 AND c.ref = {key})
         ORDER BY p.outbox_id",
        fields = chained_fields(k),
        table = k.table,
        chained = k.chained,
        key = k.key,
    );
    let mut linked = 0;
    loop {
        let rows = sqlx::query(&sql)
            .bind(LINK_AT_ONCE)
            .bind(k.kind)
            .fetch_all(&mut *conn)
            .await?;
        let pending = rows
            .iter()
            .filter(|r| r.get::<Option<i64>, _>(4).is_some())
            .map(|r| pending_of(k, r))
            .collect::<Result<Vec<_>, _>>()?;
        linked += pending.len() as u64;
        append(conn, pending).await?;
        if (rows.len() as i64) < LINK_AT_ONCE {
            return Ok(linked);
        }
    }
}

/// Links the deliveries listed in `chain_pending` in a transaction of its
/// own. With `wait`, waits for the chain's lock; without, returns 0 at
/// once when another transaction holds it (that holder links what is
/// listed when it took the lock; what is listed after, the next holder or
/// a heartbeat within seconds).
///
/// The commit does not wait for the disk (`synchronous_commit = off`):
/// the sends are recorded durably already, and this transaction only
/// turns the list into links, all or nothing. Lost in a crash, it is lost
/// with everything after it in the write-ahead log (a later link's
/// durable commit flushes this one first), so the chain never forks: the
/// sends are listed again and linked by the next. A recording then waits
/// for the disk once, not twice.
pub(crate) async fn link_listed_now(pool: &PgPool, wait: bool) -> Result<u64, StoreError> {
    let mut tx = pool.begin().await?;
    sqlx::query("SET LOCAL synchronous_commit = off")
        .execute(&mut *tx)
        .await?;
    let linked = if wait {
        lock(&mut tx).await?
    } else {
        let taken: bool = sqlx::query_scalar("SELECT pg_try_advisory_xact_lock($1)")
            .bind(CHAIN_LOCK)
            .fetch_one(&mut *tx)
            .await?;
        if !taken {
            tx.rollback().await?;
            return Ok(0);
        }
        link_listed(&mut tx).await?
    };
    tx.commit().await?;
    Ok(linked)
}

/// The start of `at`'s minute.
pub(crate) fn minute_of(at: i64) -> i64 {
    at - at.rem_euclid(60_000)
}

/// Seals the refusal counts of every minute before `now`'s that is not
/// sealed yet into the chain, one link per row; returns the minute from
/// which counts are still open. Called holding [`lock`]. The chain state's
/// row is locked first, so a refusal counted without the chain's lock
/// (under a share lock of that row, see `Evidence::count_refusal`) is
/// either in the sealed count or counted after the seal, in an open minute.
pub(crate) async fn seal_refusals(conn: &mut PgConnection, now: i64) -> Result<i64, StoreError> {
    let minute_now = minute_of(now);
    let sealed_to: i64 = sqlx::query_scalar(
        "SELECT refusals_sealed_to FROM evidence_chain_state WHERE id = 1 FOR UPDATE",
    )
    .fetch_one(&mut *conn)
    .await?;
    if minute_now <= sealed_to {
        return Ok(sealed_to);
    }
    let k = kind_sql("refusals").expect("refusals");
    let sql = format!(
        "SELECT {key}, {content}, {personal}, {at} FROM refusal_counts t
         WHERE t.minute >= $1 AND t.minute < $2 ORDER BY {order}",
        key = k.key,
        content = k.content,
        personal = k.personal,
        at = k.at,
        order = k.order,
    );
    let rows = sqlx::query(&sql)
        .bind(sealed_to)
        .bind(minute_now)
        .fetch_all(&mut *conn)
        .await?;
    let pending = rows
        .iter()
        .map(|r| pending_of(k, r))
        .collect::<Result<Vec<_>, _>>()?;
    append(conn, pending).await?;
    sqlx::query("UPDATE evidence_chain_state SET refusals_sealed_to = $1 WHERE id = 1")
        .bind(minute_now)
        .execute(&mut *conn)
        .await?;
    Ok(minute_now)
}

/// The latest link of an event, and the version and digest its personal
/// fields should give now.
async fn current_personal(
    conn: &mut PgConnection,
    kind: &str,
    reference: &str,
) -> Result<Option<(i64, i64, String)>, StoreError> {
    let target: Option<(i64, String)> = sqlx::query_as(
        "SELECT seq, personal FROM evidence_chain WHERE kind = $1 AND ref = $2
         ORDER BY seq DESC LIMIT 1",
    )
    .bind(kind)
    .bind(reference)
    .fetch_optional(&mut *conn)
    .await?;
    let Some((seq, personal)) = target else {
        return Ok(None);
    };
    // Amends of `seq` have refs `seq:version:why`; ':' < ';' bounds them
    // byte-wise (COLLATE "C": a language's collation may not).
    let amend: Option<(String, String)> = sqlx::query_as(
        r#"SELECT ref, personal FROM evidence_chain
           WHERE kind = 'amend' AND ref COLLATE "C" >= $1 AND ref COLLATE "C" < $2
           ORDER BY seq DESC LIMIT 1"#,
    )
    .bind(format!("{seq}:"))
    .bind(format!("{seq};"))
    .fetch_optional(&mut *conn)
    .await?;
    Ok(Some(
        match amend.and_then(|(r, p)| Amend::parse(&r).map(|a| (a, p))) {
            Some((a, p)) => (seq, a.version, p),
            None => (seq, 0, personal),
        },
    ))
}

/// Records, for each row of `kind` named in `refs`, an `amend` link when its
/// personal fields no longer give the digest the chain holds for them (an
/// erasure, an example added, the retention schedule); or, with
/// `why = "removed"`, that the row was deleted. Rows the chain does not
/// hold are left alone. Called holding [`lock`].
pub(crate) async fn amend(
    conn: &mut PgConnection,
    kind: &str,
    refs: &[String],
    why: &str,
    at: i64,
) -> Result<(), StoreError> {
    if refs.is_empty() {
        return Ok(());
    }
    let k = kind_sql(kind).expect("a known kind");
    let salt = salt(conn).await?;
    let mut refs = refs.to_vec();
    refs.sort();
    refs.dedup();
    let select = format!(
        "SELECT {personal} FROM {table} t WHERE {lookup}",
        personal = k.personal,
        table = k.table,
        lookup = lookup(k, "$1"),
    );
    let mut pending = Vec::new();
    for reference in refs {
        let Some((seq, version, current)) = current_personal(conn, kind, &reference).await? else {
            continue;
        };
        let fields = if why == "removed" {
            None
        } else {
            let json: Option<String> = sqlx::query_scalar(&select)
                .bind(&reference)
                .fetch_optional(&mut *conn)
                .await?;
            let Some(json) = json else { continue };
            Some(fields_from_json(&json).map_err(decode)?)
        };
        pending.extend(Pending::amend(
            &salt,
            seq,
            version,
            &current,
            fields.as_deref(),
            why,
            at,
        ));
    }
    append(conn, pending).await
}

/// `CASE c.kind WHEN 'delivery' THEN (SELECT <part> FROM outbox t ...) ...
/// END`: for each link `c`, `part` of the row it names (NULL when gone),
/// with the kind's extra columns joined when `extra`.
fn case_of_kinds(part: impl Fn(&KindSql) -> String, extra: bool) -> String {
    let arms: String = KINDS
        .iter()
        .map(|k| {
            format!(
                " WHEN '{kind}' THEN (SELECT {expr} FROM {table} t {join} WHERE {lookup})",
                kind = k.kind,
                expr = part(k),
                table = k.table,
                join = if extra { k.extra_join } else { "" },
                lookup = lookup(k, "c.ref"),
            )
        })
        .collect();
    format!("CASE c.kind{arms} END")
}

/// For verify: links from `$1` (exclusive) on, at most `$2`, each with its
/// row's fields now (NULL when the row is gone) and whether it is the
/// latest link of its event.
fn links_sql() -> String {
    format!(
        "SELECT c.seq, c.kind, c.ref, c.at, c.content, c.personal, c.prev, c.hash,
                {content} AS live_content, {personal} AS live_personal,
                c.seq = (SELECT max(c2.seq) FROM evidence_chain c2
                         WHERE c2.kind = c.kind AND c2.ref = c.ref) AS latest
         FROM evidence_chain c WHERE c.seq > $1 ORDER BY c.seq LIMIT $2",
        content = case_of_kinds(|k| k.content.to_owned(), false),
        personal = case_of_kinds(|k| k.personal.to_owned(), false),
    )
}

/// The columns of a kind's row an export hands on, in [`EventKind`]'s order
/// (content, personal, extra), as texts: the fields `content` and
/// `personal` put in their `json_build_array`s (`tests` holds the lists
/// equal), each `::text` as SQLite gives a column's text.
fn export_fields(k: &KindSql) -> String {
    let e = event_kind(k.kind).expect("every kind the store reads is an event kind");
    let mut columns: Vec<String> = e
        .content
        .iter()
        .chain(e.personal)
        .map(|c| format!("t.{c}::text"))
        .collect();
    columns.extend(
        k.extra_columns
            .split(", ")
            .filter(|c| !c.is_empty())
            .map(|c| format!("{c}::text")),
    );
    format!("ARRAY[{}]::text[]", columns.join(", "))
}

/// For export: links `$1` (exclusive) to `$2` (inclusive), at most `$3`,
/// each with its row's fields as texts (NULL when the row is gone).
fn export_sql() -> String {
    format!(
        "SELECT c.seq, c.kind, c.ref, c.at, c.content, c.personal, c.prev, c.hash,
                {fields} AS fields
         FROM evidence_chain c WHERE c.seq > $1 AND c.seq <= $2 ORDER BY c.seq LIMIT $3",
        fields = case_of_kinds(export_fields, true),
    )
}

/// Links read at a time, by verify and export.
const LINKS_PER_READ: i64 = 10_000;

fn link_of(r: &PgRow) -> ChainLink {
    ChainLink {
        seq: r.get(0),
        kind: r.get(1),
        reference: r.get(2),
        at: r.get(3),
        content: r.get(4),
        personal: r.get(5),
        prev: r.get(6),
        hash: r.get(7),
    }
}

async fn read_links(
    conn: &mut PgConnection,
    sql: &str,
    after: i64,
) -> Result<Vec<LiveLink>, StoreError> {
    let rows = sqlx::query(sql)
        .bind(after)
        .bind(LINKS_PER_READ)
        .fetch_all(&mut *conn)
        .await?;
    Ok(rows
        .iter()
        .map(|r| LiveLink {
            link: link_of(r),
            content: r.get(8),
            personal: r.get(9),
            latest: r.get::<Option<bool>, _>(10).unwrap_or(false),
        })
        .collect())
}

/// The latest amend of each amended event: (version, digest, why).
async fn amends(
    conn: &mut PgConnection,
) -> Result<HashMap<i64, (i64, String, String)>, StoreError> {
    let rows: Vec<(String, String)> = sqlx::query_as(
        "SELECT ref, personal FROM evidence_chain WHERE kind = 'amend' ORDER BY seq",
    )
    .fetch_all(&mut *conn)
    .await?;
    Ok(latest_amends(rows))
}

/// A read-only transaction on one snapshot of the database, for verify and
/// export while `serve` processes go on writing.
async fn snapshot(pool: &PgPool) -> Result<sqlx::Transaction<'static, Postgres>, StoreError> {
    let mut tx = pool.begin().await?;
    sqlx::query("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
        .execute(&mut *tx)
        .await?;
    Ok(tx)
}

impl EvidenceChain for PgStore {
    async fn verify_chain(&self) -> Result<ChainReport, StoreError> {
        // Sends recorded and not linked yet are linked first; any recorded
        // after that are still listed in the snapshot below, and not named
        // as missing from the chain.
        if self.chained {
            link_listed_now(&self.pool, true).await?;
        }
        let mut tx = snapshot(&self.pool).await?;
        let salt = salt(&mut tx).await?;
        let amends = amends(&mut tx).await?;
        let sql = links_sql();
        let mut check = VerifyLinks::new(salt, &amends, |kind| kind_sql(kind).map(|k| k.table));
        let mut after = 0;
        loop {
            let links = read_links(&mut tx, &sql, after).await?;
            let Some(last) = links.last() else { break };
            after = last.link.seq;
            for live in links {
                check.link(live)?;
            }
        }
        let (mut report, keys) = check.finish();
        if let Some((i, what, detail)) = check_links(&keys, 1, GENESIS) {
            let expected = i as i64 + 1;
            let event = if what == Tamper::Missing {
                "removed from the chain".to_owned()
            } else {
                let named: Option<(String, String)> =
                    sqlx::query_as("SELECT kind, ref FROM evidence_chain WHERE seq = $1")
                        .bind(keys[i].seq)
                        .fetch_optional(&mut *tx)
                        .await?;
                named
                    .map(|(k, r)| event_name(&k, &r))
                    .unwrap_or_else(|| "unknown".to_owned())
            };
            report.problems.push(ChainProblem {
                seq: Some(if what == Tamper::Missing {
                    expected
                } else {
                    keys[i].seq
                }),
                event,
                what,
                detail,
            });
        }
        // Evidence rows the chain does not hold (sends still listed to be
        // linked are on their way).
        for k in KINDS {
            let listed = if k.kind == "delivery" {
                "AND NOT EXISTS (SELECT 1 FROM chain_pending p WHERE p.outbox_id = t.id)"
            } else {
                ""
            };
            let sql = format!(
                "SELECT {key} FROM {table} t WHERE {chained}
                   AND NOT EXISTS (SELECT 1 FROM evidence_chain c WHERE c.kind = $1 AND c.ref = {key})
                   {listed}
                 ORDER BY {order} LIMIT 20",
                key = k.key,
                table = k.table,
                chained = k.chained,
                order = k.order,
            );
            let refs: Vec<String> = sqlx::query_scalar(&sql)
                .bind(k.kind)
                .fetch_all(&mut *tx)
                .await?;
            for r in refs {
                report.problems.push(ChainProblem {
                    seq: None,
                    event: event_name(k.kind, &r),
                    what: Tamper::Inserted,
                    detail: format!("it is in {} but not in the chain", k.table),
                });
            }
        }
        tx.rollback().await?;
        sort_problems(&mut report.problems);
        Ok(report)
    }

    async fn chain_link(&self, seq: i64) -> Result<Option<ChainLink>, StoreError> {
        Ok(sqlx::query_as(
            "SELECT seq, kind, ref, at, content, personal, prev, hash FROM evidence_chain WHERE seq = $1",
        )
        .bind(seq)
        .fetch_optional(&self.pool)
        .await?)
    }

    async fn export_chain(
        &self,
        from: i64,
        to: i64,
        now: i64,
        sink: &mut (dyn EvidenceSink + Send),
    ) -> Result<ExportedRange, StoreError> {
        {
            let mut tx = self.pool.begin().await?;
            lock(&mut tx).await?;
            seal_refusals(&mut tx, now).await?;
            tx.commit().await?;
        }
        let mut tx = snapshot(&self.pool).await?;
        let (first, last): (Option<i64>, Option<i64>) = sqlx::query_as(
            "SELECT min(seq), max(seq) FROM evidence_chain WHERE at >= $1 AND at < $2",
        )
        .bind(from)
        .bind(to)
        .fetch_one(&mut *tx)
        .await?;
        let store_head: Option<(i64, String)> =
            sqlx::query_as("SELECT seq, hash FROM evidence_chain ORDER BY seq DESC LIMIT 1")
                .fetch_optional(&mut *tx)
                .await?;
        let mut range = ExportedRange {
            first_seq: first,
            last_seq: last,
            anchor: GENESIS.to_owned(),
            head: GENESIS.to_owned(),
            store_head,
            events: 0,
        };
        let (Some(first), Some(last)) = (first, last) else {
            tx.rollback().await?;
            return Ok(range);
        };
        range.anchor = sqlx::query_scalar("SELECT prev FROM evidence_chain WHERE seq = $1")
            .bind(first)
            .fetch_one(&mut *tx)
            .await?;
        let sink_error = |why: String| StoreError::Backup {
            path: "the evidence pack".to_owned(),
            why,
            fix: "check the folder is writable and has room".to_owned(),
        };
        let amends = amends(&mut tx).await?;
        let sql = export_sql();
        // Every link in order, each with its row, a page at a time (all
        // pages in the one snapshot).
        let mut after = first - 1;
        loop {
            let rows = sqlx::query(&sql)
                .bind(after)
                .bind(last)
                .bind(LINKS_PER_READ)
                .fetch_all(&mut *tx)
                .await?;
            let Some(end) = rows.last() else { break };
            after = end.get(0);
            for r in &rows {
                let fields: Option<Vec<Option<String>>> = r.get(8);
                export_link(r, fields.as_deref(), &amends, sink).map_err(sink_error)?;
                range.events += 1;
            }
            range.head = end.get(7);
        }
        tx.rollback().await?;
        Ok(range)
    }
}

/// Hands `sink` one link, and for a link of a kind its event with its
/// row's `fields` now (in [`EventKind`]'s order; `None` when the row is
/// gone).
fn export_link(
    r: &PgRow,
    fields: Option<&[Option<String>]>,
    amends: &HashMap<i64, (i64, String, String)>,
    sink: &mut (dyn EvidenceSink + Send),
) -> Result<(), String> {
    let link = LinkRef {
        seq: r.get(0),
        kind: r.get(1),
        reference: r.get(2),
        at: r.get(3),
        content: r.get(4),
        personal: r.get(5),
        prev: r.get(6),
        hash: r.get(7),
    };
    sink.link(&link)?;
    let Some(e) = kind_sql(link.kind).and_then(|k| event_kind(k.kind)) else {
        return Ok(());
    };
    let (n_content, n_personal) = (e.content.len(), e.personal.len());
    let n = n_content + n_personal + e.extra.len();
    let texts: Vec<Option<&str>> = match fields {
        Some(f) => f.iter().map(Option::as_deref).collect(),
        None => Vec::new(),
    };
    if fields.is_some() && texts.len() != n {
        return Err(format!(
            "the store gave {} fields for event {}, not {n}",
            texts.len(),
            link.seq
        ));
    }
    let (personal_version, personal_now) = match amends.get(&link.seq) {
        Some((v, d, _)) => (*v, d.as_str()),
        None => (0, link.personal),
    };
    let part = |from: usize, to: usize| fields.is_some().then(|| &texts[from..to]);
    sink.event(&ExportedEvent {
        link: &link,
        content: part(0, n_content),
        personal: part(n_content, n_content + n_personal),
        extra: part(n_content + n_personal, n),
        personal_now,
        personal_version,
    })
}

/// Test support: chains every row of `kind` (one kept by id) with an id
/// above the highest already chained, in id order, 50,000 at a time: for
/// benches that bulk-load evidence with SQL. Called holding [`lock`].
#[cfg(any(test, feature = "test-support"))]
pub(crate) async fn chain_all(conn: &mut PgConnection, kind: &str) -> Result<(), StoreError> {
    let k = kind_sql(kind).expect("a known kind");
    let mut after: i64 = sqlx::query_scalar(
        "SELECT COALESCE(max(CAST(ref AS BIGINT)), 0) FROM evidence_chain WHERE kind = $1",
    )
    .bind(k.kind)
    .fetch_one(&mut *conn)
    .await?;
    let sql = format!(
        "SELECT {key}, {content}, {personal}, {at}, t.id FROM {table} t
         WHERE {chained} AND t.id > $1 ORDER BY t.id LIMIT 50000",
        key = k.key,
        content = k.content,
        personal = k.personal,
        at = k.at,
        table = k.table,
        chained = k.chained,
    );
    loop {
        let rows = sqlx::query(&sql).bind(after).fetch_all(&mut *conn).await?;
        let Some(last) = rows.last() else {
            return Ok(());
        };
        after = last.get(4);
        let pending = rows
            .iter()
            .map(|r| pending_of(k, r))
            .collect::<Result<Vec<_>, _>>()?;
        append(conn, pending).await?;
    }
}

#[cfg(any(test, feature = "test-support"))]
impl PgStore {
    /// Test-only: this store without the evidence chain, so a benchmark can
    /// measure what appending to it costs. Evidence recorded through it is
    /// not chained, and `verify` names it as inserted.
    pub fn without_evidence_chain(mut self) -> PgStore {
        self.chained = false;
        self
    }

    /// Test-only: chains every row of `kind` not chained yet, in id order,
    /// for benches that bulk-load evidence with SQL.
    pub async fn chain_unchained(&self, kind: &str) -> Result<(), StoreError> {
        let mut tx = self.pool.begin().await?;
        lock(&mut tx).await?;
        chain_all(&mut tx, kind).await?;
        tx.commit().await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The export reads a kind's fields as plain columns
    /// (`export_fields`); they must be the fields, in the order, its
    /// digests are made from; and the kinds those of SQLite's store.
    #[test]
    fn the_exports_columns_are_the_fields_the_chain_digests() {
        let array = |names: &[&str]| {
            let columns: Vec<String> = names.iter().map(|c| format!("t.{c}")).collect();
            format!("json_build_array({})::text", columns.join(", "))
        };
        for k in KINDS {
            let e = event_kind(k.kind).expect("an event kind");
            assert_eq!(k.content, array(e.content), "{}", k.kind);
            assert_eq!(k.personal, array(e.personal), "{}", k.kind);
            let extra: Vec<String> = e.extra.iter().map(|c| format!("r.{c}")).collect();
            assert_eq!(k.extra_columns, extra.join(", "), "{}", k.kind);
        }
        let kinds: Vec<&str> = KINDS.iter().map(|k| k.kind).collect();
        let events: Vec<&str> = EVENT_KINDS.iter().map(|k| k.kind).collect();
        assert_eq!(kinds, events);
    }
}
