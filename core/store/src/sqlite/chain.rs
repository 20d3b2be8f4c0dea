//! SQLite side of the evidence chain (see [`crate::chain`]): appending links
//! inside the transactions that record evidence, amends for erasure and
//! retention, the one-time chaining of evidence recorded before the chain
//! existed, sealing refusal counts, verify and export.
//!
//! Each kind's fields are read back from its row by the same SQL when the
//! link is made, verified and exported, so the three cannot disagree.

use super::SqliteStore;
use super::raw;
use crate::StoreError;
use crate::chain::*;
use sqlx::{QueryBuilder, Row, Sqlite, SqliteConnection};
use std::collections::HashMap;

/// How one kind of evidence event is read from its table. `{r}` in
/// `lookup` stands for the link's `ref`.
struct KindSql {
    kind: &'static str,
    table: &'static str,
    /// The row's `ref` as text.
    key: &'static str,
    /// Matches the row a `ref` names.
    lookup: &'static str,
    content: &'static str,
    personal: &'static str,
    /// Columns the export adds that are not chained ([`EventKind`]'s
    /// `extra`), and the join that gives them.
    extra_columns: &'static str,
    extra_join: &'static str,
    at: &'static str,
    /// Rows that must be in the chain.
    chained: &'static str,
    order: &'static str,
}

const BY_ID: &str = "t.id = CAST({r} AS INTEGER)";

const KINDS: &[KindSql] = &[
    KindSql {
        kind: "delivery",
        table: "outbox",
        key: "CAST(t.id AS TEXT)",
        lookup: BY_ID,
        content: "json_array(t.rollout_id, t.wave, t.step_kind, t.step_number, t.channel, t.sent_at)",
        personal: "json_array(t.person_id, t.recipient_id)",
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
        content: "json_array(t.item_id, t.item_version, t.rollout_id, t.delivery_id, t.channel, t.method, t.at)",
        personal: "json_array(t.person_id)",
        extra_columns: "",
        extra_join: "",
        at: "t.at",
        chained: "1",
        order: "t.at, t.id",
    },
    KindSql {
        kind: "confirmation",
        table: "cascade_confirmations",
        key: "CAST(t.id AS TEXT)",
        lookup: BY_ID,
        content: "json_array(t.item_id, t.team_id, t.session_date, t.present, t.method, t.channel, t.at)",
        personal: "json_array(t.champion_id, t.note)",
        extra_columns: "",
        extra_join: "",
        at: "t.at",
        chained: "1",
        order: "t.at, t.id",
    },
    KindSql {
        kind: "answer",
        table: "follow_up_answers",
        key: "CAST(t.id AS TEXT)",
        lookup: BY_ID,
        content: "json_array(t.rollout_id, t.follow_up, t.answer, t.channel, t.at)",
        personal: "json_array(t.person_id, t.example)",
        extra_columns: "",
        extra_join: "",
        at: "t.at",
        chained: "1",
        order: "t.at, t.id",
    },
    KindSql {
        kind: "check-answer",
        table: "check_answers",
        key: "CAST(t.id AS TEXT)",
        lookup: BY_ID,
        content: "json_array(t.acknowledgement_id, t.item_id, t.item_version, t.question, t.question_digest, t.first_answer, t.right_first_time, t.attempts, t.answered_at)",
        personal: "json_array(t.person_id)",
        extra_columns: "",
        extra_join: "",
        at: "t.answered_at",
        chained: "t.acknowledgement_id IS NOT NULL",
        order: "t.answered_at, t.id",
    },
    KindSql {
        kind: "refusals",
        table: "refusal_counts",
        key: "json_array(t.minute, t.channel, t.method, t.reason)",
        lookup: "t.minute = json_extract({r}, '$[0]') AND t.channel = json_extract({r}, '$[1]')
                 AND t.method = json_extract({r}, '$[2]') AND t.reason = json_extract({r}, '$[3]')",
        content: "json_array(t.minute, t.channel, t.method, t.reason, t.count, t.last_at)",
        personal: "json_array()",
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
        content: "json_array(t.pseudonym, t.at, t.forced)",
        personal: "json_array(t.erased_by, t.reason)",
        extra_columns: "",
        extra_join: "",
        at: "t.at",
        chained: "1",
        order: "t.at, t.id",
    },
];

fn kind_sql(kind: &str) -> Option<&'static KindSql> {
    KINDS.iter().find(|k| k.kind == kind)
}

fn lookup(k: &KindSql, r: &str) -> String {
    k.lookup.replace("{r}", r)
}

fn decode(e: impl std::fmt::Display) -> StoreError {
    StoreError::Database(sqlx::Error::Decode(e.to_string().into()))
}

async fn salt(conn: &mut SqliteConnection) -> Result<Vec<u8>, StoreError> {
    let salt: Option<Vec<u8>> =
        sqlx::query_scalar("SELECT value FROM engine_secrets WHERE name = 'evidence-salt'")
            .fetch_optional(&mut *conn)
            .await?;
    salt.ok_or_else(|| decode("the store has no evidence salt (engine_secrets 'evidence-salt')"))
}

/// Appends links for `events`, in order, after the chain's head. Called
/// inside a transaction that has already written (so holds SQLite's write
/// lock, and no other writer can append between the read of the head and
/// the insert).
pub(crate) async fn append(
    conn: &mut SqliteConnection,
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
    for chunk in links.chunks(200) {
        let mut insert: QueryBuilder<Sqlite> = QueryBuilder::new(
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

fn pending_of(k: &'static KindSql, row: &sqlx::sqlite::SqliteRow) -> Result<Pending, StoreError> {
    Pending::from_row(
        k.kind,
        row.get(0),
        row.get::<&str, _>(1),
        row.get::<&str, _>(2),
        row.get::<Option<i64>, _>(3),
    )
    .map_err(decode)
}

/// Appends the rows `ids` of `kind` (by id, in id order) to the chain.
pub(crate) async fn chain_ids(
    conn: &mut SqliteConnection,
    kind: &str,
    ids: &[i64],
) -> Result<(), StoreError> {
    if ids.is_empty() {
        return Ok(());
    }
    let k = kind_sql(kind).expect("a known kind");
    let sql = format!(
        "SELECT {key}, {content}, {personal}, {at} FROM {table} t
         WHERE t.id IN (SELECT value FROM json_each(?1)) ORDER BY t.id",
        key = k.key,
        content = k.content,
        personal = k.personal,
        at = k.at,
        table = k.table,
    );
    let ids = serde_json::to_string(ids).expect("numbers serialise");
    let rows = sqlx::query(&sql).bind(ids).fetch_all(&mut *conn).await?;
    let pending = rows
        .iter()
        .map(|r| pending_of(k, r))
        .collect::<Result<Vec<_>, _>>()?;
    append(conn, pending).await
}

/// Seals the refusal counts of every minute before `now`'s that is not
/// sealed yet into the chain, one link per row; returns the minute from
/// which counts are still open. A refusal counted later for a sealed
/// minute is counted in the first open minute instead.
pub(crate) async fn seal_refusals(
    conn: &mut SqliteConnection,
    now: i64,
) -> Result<i64, StoreError> {
    let minute_now = now - now.rem_euclid(60_000);
    let sealed_to: i64 =
        sqlx::query_scalar("SELECT refusals_sealed_to FROM evidence_chain_state WHERE id = 1")
            .fetch_one(&mut *conn)
            .await?;
    if minute_now <= sealed_to {
        return Ok(sealed_to);
    }
    let k = kind_sql("refusals").expect("refusals");
    let sql = format!(
        "SELECT {key}, {content}, {personal}, {at} FROM refusal_counts t
         WHERE t.minute >= ?1 AND t.minute < ?2 ORDER BY {order}",
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
    sqlx::query("UPDATE evidence_chain_state SET refusals_sealed_to = ?1 WHERE id = 1")
        .bind(minute_now)
        .execute(&mut *conn)
        .await?;
    Ok(minute_now)
}

/// The latest link of an event, and the version and digest its personal
/// fields should give now.
async fn current_personal(
    conn: &mut SqliteConnection,
    kind: &str,
    reference: &str,
) -> Result<Option<(i64, i64, String)>, StoreError> {
    let target: Option<(i64, String)> = sqlx::query_as(
        "SELECT seq, personal FROM evidence_chain WHERE kind = ?1 AND ref = ?2
         ORDER BY seq DESC LIMIT 1",
    )
    .bind(kind)
    .bind(reference)
    .fetch_optional(&mut *conn)
    .await?;
    let Some((seq, personal)) = target else {
        return Ok(None);
    };
    // Amends of `seq` have refs `seq:version:why`; ':' < ';' bounds them.
    let amend: Option<(String, String)> = sqlx::query_as(
        "SELECT ref, personal FROM evidence_chain WHERE kind = 'amend' AND ref >= ?1 AND ref < ?2
         ORDER BY seq DESC LIMIT 1",
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
/// hold are left alone.
pub(crate) async fn amend(
    conn: &mut SqliteConnection,
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
        lookup = lookup(k, "?1"),
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

/// Chains, once, the evidence a store held before it had a chain (kind by
/// kind, each in time order).
pub(crate) async fn backfill(store: &SqliteStore) -> Result<(), StoreError> {
    let done: Option<i64> =
        sqlx::query_scalar("SELECT backfilled_at FROM evidence_chain_state WHERE id = 1")
            .fetch_one(&store.pool)
            .await?;
    if done.is_some() {
        return Ok(());
    }
    let now = chrono::Utc::now().timestamp_millis();
    let mut tx = store.writer.begin_with("BEGIN IMMEDIATE").await?;
    let done: Option<i64> =
        sqlx::query_scalar("SELECT backfilled_at FROM evidence_chain_state WHERE id = 1")
            .fetch_one(&mut *tx)
            .await?;
    if done.is_some() {
        return Ok(());
    }
    for k in KINDS.iter().filter(|k| k.kind != "refusals") {
        let sql = format!(
            "SELECT {key}, {content}, {personal}, {at} FROM {table} t
             WHERE {chained} ORDER BY {order}",
            key = k.key,
            content = k.content,
            personal = k.personal,
            at = k.at,
            table = k.table,
            chained = k.chained,
            order = k.order,
        );
        let rows = sqlx::query(&sql).fetch_all(&mut *tx).await?;
        let pending = rows
            .iter()
            .map(|r| pending_of(k, r))
            .collect::<Result<Vec<_>, _>>()?;
        append(&mut tx, pending).await?;
    }
    // Refusal counts already kept are sealed with the minutes that follow,
    // by the next count or export (sealing here, by the wall clock, would
    // move a clock that callers set, in tests and benches, under them).
    sqlx::query("UPDATE evidence_chain_state SET backfilled_at = ?1 WHERE id = 1")
        .bind(now)
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok(())
}

/// For verify: links from `?1` (exclusive) up to `?2` (inclusive), at most
/// `?3`, each with its row's fields now (NULL when the row is gone) and
/// whether it is the latest link of its event.
fn links_sql() -> String {
    let case = |part: fn(&KindSql) -> &'static str| {
        let arms: String = KINDS
            .iter()
            .map(|k| {
                format!(
                    " WHEN '{kind}' THEN (SELECT {expr} FROM {table} t WHERE {lookup})",
                    kind = k.kind,
                    expr = part(k),
                    table = k.table,
                    lookup = lookup(k, "c.ref"),
                )
            })
            .collect();
        format!("CASE c.kind{arms} END")
    };
    format!(
        "SELECT c.seq, c.kind, c.ref, c.at, c.content, c.personal, c.prev, c.hash,
                {content} AS live_content, {personal} AS live_personal,
                c.seq = (SELECT max(c2.seq) FROM evidence_chain c2
                         WHERE c2.kind = c.kind AND c2.ref = c.ref) AS latest
         FROM evidence_chain c WHERE c.seq > ?1 AND c.seq <= ?2 ORDER BY c.seq LIMIT ?3",
        content = case(|k| k.content),
        personal = case(|k| k.personal),
    )
}

/// Links read at a time.
const LINKS_PER_READ: i64 = 20_000;

async fn read_links(
    conn: &mut SqliteConnection,
    sql: &str,
    after: i64,
    last: i64,
) -> Result<Vec<LiveLink>, StoreError> {
    let rows = sqlx::query(sql)
        .bind(after)
        .bind(last)
        .bind(LINKS_PER_READ)
        .fetch_all(&mut *conn)
        .await?;
    Ok(rows
        .into_iter()
        .map(|r| LiveLink {
            link: ChainLink {
                seq: r.get(0),
                kind: r.get(1),
                reference: r.get(2),
                at: r.get(3),
                content: r.get(4),
                personal: r.get(5),
                prev: r.get(6),
                hash: r.get(7),
            },
            content: r.get(8),
            personal: r.get(9),
            latest: r.get::<Option<bool>, _>(10).unwrap_or(false),
        })
        .collect())
}

/// The latest amend of each amended event: (version, digest, why).
async fn amends(
    conn: &mut SqliteConnection,
) -> Result<HashMap<i64, (i64, String, String)>, StoreError> {
    let rows: Vec<(String, String)> = sqlx::query_as(
        "SELECT ref, personal FROM evidence_chain WHERE kind = 'amend' ORDER BY seq",
    )
    .fetch_all(&mut *conn)
    .await?;
    Ok(latest_amends(rows))
}

impl EvidenceChain for SqliteStore {
    async fn verify_chain(&self) -> Result<ChainReport, StoreError> {
        // read-only: one read transaction, a snapshot while `serve` goes on writing.
        let mut tx = self.pool.begin().await?;
        let salt = salt(&mut tx).await?;
        let amends = amends(&mut tx).await?;
        let sql = links_sql();
        let mut check = VerifyLinks::new(salt, &amends, |kind| kind_sql(kind).map(|k| k.table));
        let mut after = 0;
        loop {
            let links = read_links(&mut tx, &sql, after, i64::MAX).await?;
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
                let seq = keys[i].seq;
                let named: Option<(String, String)> =
                    sqlx::query_as("SELECT kind, ref FROM evidence_chain WHERE seq = ?")
                        .bind(seq)
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
        // Evidence rows the chain does not hold.
        for k in KINDS {
            let sql = format!(
                "SELECT {key} FROM {table} t WHERE {chained}
                   AND NOT EXISTS (SELECT 1 FROM evidence_chain c WHERE c.kind = ?1 AND c.ref = {key})
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
            "SELECT seq, kind, ref, at, content, personal, prev, hash FROM evidence_chain WHERE seq = ?",
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
            let mut tx = self.writer.begin_with("BEGIN IMMEDIATE").await?;
            seal_refusals(&mut tx, now).await?;
            tx.commit().await?;
        }
        // read-only: the export reads one snapshot of the chain.
        let mut tx = self.pool.begin().await?;
        let (first, last): (Option<i64>, Option<i64>) = sqlx::query_as(
            "SELECT min(seq), max(seq) FROM evidence_chain WHERE at >= ?1 AND at < ?2",
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
        range.anchor = sqlx::query_scalar("SELECT prev FROM evidence_chain WHERE seq = ?")
            .bind(first)
            .fetch_one(&mut *tx)
            .await?;
        let sink_error = |why: String| StoreError::Backup {
            path: "the evidence pack".to_owned(),
            why,
            fix: "check the folder is writable and has room".to_owned(),
        };
        // Every link in order, each with its row: read through SQLite's
        // own API (see `raw`), the rows borrowed, not copied.
        let amends = amends(&mut tx).await?;
        {
            let mut handle = tx.lock_handle().await?;
            let db = raw::Db::new(&mut handle);
            export_links(&db, first, last, &amends, sink, &mut range).map_err(|e| match e {
                Exported::Store(e) => e,
                Exported::Sink(why) => sink_error(why),
            })?;
        }
        tx.rollback().await?;
        Ok(range)
    }
}

/// What stopped an export: the store, or the sink (the pack's files).
enum Exported {
    Store(StoreError),
    Sink(String),
}

impl From<StoreError> for Exported {
    fn from(e: StoreError) -> Exported {
        Exported::Store(e)
    }
}

/// The columns of a kind's row the export reads, in [`EventKind`]'s order
/// (content, personal, extra): the fields `content` and `personal` put in
/// their `json_array`s (the link's digests), as plain columns, which
/// SQLite gives as the same texts (`tests` holds the two lists equal).
fn row_sql(k: &KindSql, e: &EventKind) -> String {
    let mut columns: Vec<String> = e
        .content
        .iter()
        .chain(e.personal)
        .map(|c| format!("t.{c}"))
        .collect();
    if !k.extra_columns.is_empty() {
        columns.push(k.extra_columns.to_owned());
    }
    format!(
        "SELECT {columns} FROM {table} t {join} WHERE {lookup}",
        columns = columns.join(", "),
        table = k.table,
        join = k.extra_join,
        lookup = lookup(k, "?1"),
    )
}

/// The most fields a kind's row has (content, personal and extra).
const MAX_FIELDS: usize = 16;

/// Hands `sink` the links `first..=last` in order, each link of a kind
/// followed by its event with its row's fields now: one pass over the
/// chain, one lookup of the row a link names (by id, or for refusals by
/// its key).
fn export_links(
    db: &raw::Db<'_>,
    first: i64,
    last: i64,
    amends: &HashMap<i64, (i64, String, String)>,
    sink: &mut (dyn EvidenceSink + Send),
    range: &mut ExportedRange,
) -> Result<(), Exported> {
    let mut links = db.prepare(
        "SELECT seq, kind, ref, at, content, personal, prev, hash FROM evidence_chain
         WHERE seq >= ?1 AND seq <= ?2 ORDER BY seq",
    )?;
    links.bind_i64(1, first)?;
    links.bind_i64(2, last)?;
    let mut rows = Vec::with_capacity(KINDS.len());
    for k in KINDS {
        let e = event_kind(k.kind).expect("every kind the store reads is an event kind");
        rows.push((db.prepare(&row_sql(k, e))?, e));
    }
    let mut head = String::new();
    while links.step()? {
        let link = LinkRef {
            seq: links.int(0),
            kind: links.text(1)?.unwrap_or(""),
            reference: links.text(2)?.unwrap_or(""),
            at: links.int(3),
            content: links.text(4)?.unwrap_or(""),
            personal: links.text(5)?.unwrap_or(""),
            prev: links.text(6)?.unwrap_or(""),
            hash: links.text(7)?.unwrap_or(""),
        };
        sink.link(&link).map_err(Exported::Sink)?;
        range.events += 1;
        head.clear();
        head.push_str(link.hash);
        let Some(i) = KINDS.iter().position(|k| k.kind == link.kind) else {
            continue;
        };
        let (row, e) = &mut rows[i];
        row.reset();
        row.bind_text(1, link.reference)?;
        let found = row.step()?;
        let (n_content, n_personal) = (e.content.len(), e.personal.len());
        let n = n_content + n_personal + e.extra.len();
        let mut fields: [Option<&str>; MAX_FIELDS] = [None; MAX_FIELDS];
        if found {
            for (c, field) in fields.iter_mut().take(n).enumerate() {
                *field = row.text(c as i32)?;
            }
        }
        let (personal_version, personal_now) = match amends.get(&link.seq) {
            Some((v, d, _)) => (*v, d.as_str()),
            None => (0, link.personal),
        };
        let part = |from: usize, to: usize| found.then(|| &fields[from..to]);
        let event = ExportedEvent {
            link: &link,
            content: part(0, n_content),
            personal: part(n_content, n_content + n_personal),
            extra: part(n_content + n_personal, n),
            personal_now,
            personal_version,
        };
        sink.event(&event).map_err(Exported::Sink)?;
    }
    if range.events > 0 {
        range.head = head;
    }
    Ok(())
}

/// Test support: chains every row of `kind` (one kept by id) with an id
/// above the highest already chained, in id order, 50,000 at a time: for
/// benches that bulk-load evidence with SQL.
#[cfg(any(test, feature = "test-support"))]
pub(crate) async fn chain_all(conn: &mut SqliteConnection, kind: &str) -> Result<(), StoreError> {
    let k = kind_sql(kind).expect("a known kind");
    let mut after: i64 = sqlx::query_scalar(
        "SELECT COALESCE(max(CAST(ref AS INTEGER)), 0) FROM evidence_chain WHERE kind = ?1",
    )
    .bind(k.kind)
    .fetch_one(&mut *conn)
    .await?;
    let sql = format!(
        "SELECT {key}, {content}, {personal}, {at}, t.id FROM {table} t
         WHERE {chained} AND t.id > ?1 ORDER BY t.id LIMIT 50000",
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

#[cfg(test)]
mod tests {
    use super::*;

    /// The export reads a kind's fields as plain columns (`row_sql`); they
    /// must be the fields, in the order, its digests are made from.
    #[test]
    fn the_exports_columns_are_the_fields_the_chain_digests() {
        let array = |names: &[&str]| {
            let columns: Vec<String> = names.iter().map(|c| format!("t.{c}")).collect();
            format!("json_array({})", columns.join(", "))
        };
        for k in KINDS {
            let e = event_kind(k.kind).expect("an event kind");
            assert_eq!(k.content, array(e.content), "{}", k.kind);
            assert_eq!(k.personal, array(e.personal), "{}", k.kind);
            let extra: Vec<String> = e.extra.iter().map(|c| format!("r.{c}")).collect();
            assert_eq!(k.extra_columns, extra.join(", "), "{}", k.kind);
            let n = e.content.len() + e.personal.len() + e.extra.len();
            assert!(n <= MAX_FIELDS, "{}", k.kind);
        }
    }
}
