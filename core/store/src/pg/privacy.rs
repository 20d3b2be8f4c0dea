//! PostgreSQL implementation of [`Privacy`]: subject access, erasure and
//! the retention schedule, as `sqlite/privacy.rs` does them. Tables and
//! columns are read from the live schema (`information_schema`) and
//! classified by [`FIELDS`].
//!
//! Several processes share the database, so what SQLite's single writer
//! gave for free is made explicit here:
//! - an erasure, and a retention run that changes anything, take the
//!   evidence chain's lock first ([`super::chain::lock`]): every writer of
//!   evidence waits for them, so the evidence rows they read, rewrite and
//!   amend in the chain cannot change underneath them;
//! - the person's row and their queued deliveries are locked (`FOR
//!   UPDATE`) before the in-flight check, so a dispatcher cannot lease a
//!   delivery to them between the check and its cancelling (claims skip
//!   locked rows; a claim committed first is seen by the check);
//! - retention locks the inactive people it erases, so an import cannot
//!   bring one back in between.

use super::PgStore;
use crate::StoreError;
use crate::privacy::*;
use serde_json::Value;
use sqlx::PgConnection;
use std::collections::BTreeMap;

/// A table's columns as `information_schema` lists them.
struct Table {
    name: String,
    /// `(column, data_type)` in the table's order.
    columns: Vec<(String, String)>,
}

impl Table {
    fn names(&self) -> impl Iterator<Item = &str> {
        self.columns.iter().map(|(c, _)| c.as_str())
    }

    /// The columns that can hold text.
    fn text_columns(&self) -> Vec<&str> {
        self.columns
            .iter()
            .filter(|(_, ty)| ty == "text")
            .map(|(c, _)| c.as_str())
            .collect()
    }
}

/// The live schema: every table of the store and its columns, tables by
/// name. Left out: the store's internal tables, and the `rowid` columns
/// that stand for SQLite's implicit rowid on the four tables that need it
/// (see migrations-pg/README.md), so both stores list the same columns.
async fn schema(conn: &mut PgConnection) -> Result<Vec<Table>, StoreError> {
    let rows: Vec<(String, String, String)> = sqlx::query_as(
        "SELECT c.table_name::text, c.column_name::text, c.data_type::text
         FROM information_schema.columns c
         JOIN information_schema.tables t
           ON t.table_schema = c.table_schema AND t.table_name = c.table_name
         WHERE c.table_schema = current_schema() AND t.table_type = 'BASE TABLE'
           AND c.column_name <> 'rowid'
         ORDER BY c.table_name::text COLLATE \"C\", c.ordinal_position",
    )
    .fetch_all(&mut *conn)
    .await?;
    let mut tables: Vec<Table> = Vec::new();
    for (table, column, ty) in rows {
        if INTERNAL_TABLES.contains(&table.as_str()) {
            continue;
        }
        match tables.last_mut() {
            Some(last) if last.name == table => last.columns.push((column, ty)),
            _ => tables.push(Table {
                name: table,
                columns: vec![(column, ty)],
            }),
        }
    }
    Ok(tables)
}

/// `column ILIKE $n OR ...` for the placeholders `first..first+count`.
fn any_like(column: &str, first: usize, count: usize) -> String {
    (first..first + count)
        .map(|i| format!("{} ILIKE ${i} ESCAPE '\\'", quote(column)))
        .collect::<Vec<_>>()
        .join(" OR ")
}

/// Places (`table.column`) whose text contains any of `needles` without
/// (ASCII) case, in every table but `skip`: one pass over each table, and
/// a pass per column only over a table where something was found.
async fn places_containing(
    conn: &mut PgConnection,
    needles: &[&str],
    skip: &[&str],
) -> Result<Vec<String>, StoreError> {
    let mut places = Vec::new();
    if needles.is_empty() {
        return Ok(places);
    }
    let patterns: Vec<String> = needles.iter().map(|n| like_pattern(n)).collect();
    for table in schema(conn).await? {
        let columns = table.text_columns();
        if skip.contains(&table.name.as_str()) || columns.is_empty() {
            continue;
        }
        // The same placeholders for every column: $1..$n are the needles.
        let whole = columns
            .iter()
            .map(|c| any_like(c, 1, patterns.len()))
            .collect::<Vec<_>>()
            .join(" OR ");
        let sql = format!("SELECT count(*) FROM {} WHERE {whole}", quote(&table.name));
        let mut query = sqlx::query_scalar::<_, i64>(&sql);
        for pattern in &patterns {
            query = query.bind(pattern);
        }
        if query.fetch_one(&mut *conn).await? == 0 {
            continue;
        }
        for column in &columns {
            let sql = format!(
                "SELECT count(*) FROM {} WHERE {}",
                quote(&table.name),
                any_like(column, 1, patterns.len())
            );
            let mut query = sqlx::query_scalar::<_, i64>(&sql);
            for pattern in &patterns {
                query = query.bind(pattern);
            }
            let n = query.fetch_one(&mut *conn).await?;
            if n > 0 {
                places.push(format!("{}.{column} ({n} rows)", table.name));
            }
        }
    }
    Ok(places)
}

/// Places (`table.column`) holding exactly `value`, or holding it as a
/// segment of a delivery key or a string of a rollout's definition.
async fn places_equal(conn: &mut PgConnection, value: &str) -> Result<Vec<String>, StoreError> {
    let mut places = Vec::new();
    for table in schema(conn).await? {
        let columns = table.text_columns();
        if columns.is_empty() {
            continue;
        }
        let equal = |c: &&str| format!("{} = $1", quote(c));
        let whole = columns.iter().map(equal).collect::<Vec<_>>().join(" OR ");
        let n: i64 = sqlx::query_scalar(&format!(
            "SELECT count(*) FROM {} WHERE {whole}",
            quote(&table.name)
        ))
        .bind(value)
        .fetch_one(&mut *conn)
        .await?;
        if n == 0 {
            continue;
        }
        for column in &columns {
            let n: i64 = sqlx::query_scalar(&format!(
                "SELECT count(*) FROM {} WHERE {}",
                quote(&table.name),
                equal(column)
            ))
            .bind(value)
            .fetch_one(&mut *conn)
            .await?;
            if n > 0 {
                places.push(format!("{}.{column} ({n} rows)", table.name));
            }
        }
    }
    let n: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM outbox
         WHERE strpos('/' || idempotency_key || '/', '/' || $1 || '/') > 0",
    )
    .bind(value)
    .fetch_one(&mut *conn)
    .await?;
    if n > 0 {
        places.push(format!("outbox.idempotency_key ({n} rows)"));
    }
    for table in ["rollouts", "bulletins"] {
        let n: i64 = sqlx::query_scalar(&format!(
            "SELECT count(*) FROM {table} WHERE strpos(definition, '\"' || $1 || '\"') > 0"
        ))
        .bind(value)
        .fetch_one(&mut *conn)
        .await?;
        if n > 0 {
            places.push(format!("{table}.definition ({n} rows)"));
        }
    }
    Ok(places)
}

const ERASURE_COLUMNS: &str =
    "pseudonym, erased_by, reason, at, (forced <> 0) AS forced, removed FROM erasures";

async fn erasure_by_hash(
    conn: &mut PgConnection,
    person_id: &str,
) -> Result<Option<ErasureRecord>, StoreError> {
    Ok(
        sqlx::query_as(&format!("SELECT {ERASURE_COLUMNS} WHERE person_hash = $1"))
            .bind(person_hash(person_id))
            .fetch_optional(&mut *conn)
            .await?,
    )
}

async fn erasure_by_pseudonym(
    conn: &mut PgConnection,
    pseudonym: &str,
) -> Result<Option<ErasureRecord>, StoreError> {
    Ok(
        sqlx::query_as(&format!("SELECT {ERASURE_COLUMNS} WHERE pseudonym = $1"))
            .bind(pseudonym)
            .fetch_optional(&mut *conn)
            .await?,
    )
}

/// The column that names one row of `table` for an update: `id`, or the
/// `rowid` the PostgreSQL schema gives the tables without one.
fn row_key(table: &str) -> &'static str {
    if FIELDS.iter().any(|f| f.table == table && f.column == "id") {
        "id"
    } else {
        "rowid"
    }
}

/// Erases one person inside the caller's transaction, which holds the
/// evidence chain's lock.
pub(super) async fn erase_in(
    conn: &mut PgConnection,
    request: &EraseRequest,
) -> Result<Erased, EraseError> {
    let old = request.person_id.as_str();
    // Locked: an import changing them waits for the erasure.
    let person: Option<(String, String, Option<String>, Option<i64>)> = sqlx::query_as(
        "SELECT display_name, email, mobile, erased_at FROM people WHERE id = $1 FOR UPDATE",
    )
    .bind(old)
    .fetch_optional(&mut *conn)
    .await?;
    let Some((name, email, mobile, erased_at)) = person else {
        return Err(match erasure_by_hash(conn, old).await? {
            Some(record) => EraseError::AlreadyErased(old.to_owned(), Box::new(record)),
            None => EraseError::Unknown(old.to_owned()),
        });
    };
    if erased_at.is_some() {
        // The id typed is a pseudonym: that person is already erased.
        let record = erasure_by_pseudonym(conn, old)
            .await?
            .ok_or_else(|| StoreError::Database(sqlx::Error::RowNotFound))?;
        return Err(EraseError::AlreadyErased(old.to_owned(), Box::new(record)));
    }
    let reason = check_reason(&request.reason, &[&name, &email, old], mobile.as_deref())?;

    // Still being sent learning, reminders or escalations?
    let sending: Vec<String> = sqlx::query_scalar(
        "SELECT DISTINCT r.id FROM rollouts r
         WHERE r.state <> 'cancelled' AND (
            EXISTS (SELECT 1 FROM rollout_members m WHERE m.rollout_id = r.id
                    AND m.person_id = $1 AND m.next_due_at IS NOT NULL)
            OR EXISTS (SELECT 1 FROM outbox o WHERE o.rollout_id = r.id
                    AND (o.person_id = $1 OR o.recipient_id = $1) AND o.state IN ('due', 'leased')))
         ORDER BY r.id",
    )
    .bind(old)
    .fetch_all(&mut *conn)
    .await?;
    if !sending.is_empty() && !request.force {
        return Err(EraseError::StillSending {
            id: old.to_owned(),
            rollouts: sending,
        });
    }
    // Their queued deliveries, locked: a dispatcher can no longer lease
    // one before it is cancelled below (and one it leased first is seen
    // by the check that follows).
    sqlx::query(
        "SELECT id FROM outbox WHERE (person_id = $1 OR recipient_id = $1)
           AND state IN ('due', 'leased') ORDER BY id FOR UPDATE",
    )
    .bind(old)
    .execute(&mut *conn)
    .await?;
    // A send in flight would record its provider's answer after the
    // erasure: wait for it.
    let in_flight: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM outbox WHERE (person_id = $1 OR recipient_id = $1)
           AND state = 'leased' AND lease_until > $2",
    )
    .bind(old)
    .bind(request.now)
    .fetch_one(&mut *conn)
    .await?;
    if in_flight > 0 {
        return Err(EraseError::InFlight(old.to_owned()));
    }
    let cancelled = sqlx::query(
        "UPDATE outbox SET state = 'cancelled', lease_until = NULL, updated_at = $2
         WHERE (person_id = $1 OR recipient_id = $1) AND state IN ('due', 'leased')",
    )
    .bind(old)
    .bind(request.now)
    .execute(&mut *conn)
    .await?
    .rows_affected();
    sqlx::query("UPDATE rollout_members SET next_due_at = NULL WHERE person_id = $1")
        .bind(old)
        .execute(&mut *conn)
        .await?;

    let addresses: Vec<String> =
        sqlx::query_scalar("SELECT address FROM channel_identities WHERE person_id = $1")
            .bind(old)
            .fetch_all(&mut *conn)
            .await?;
    let console_users: Vec<String> = sqlx::query_scalar(
        "SELECT name FROM console_users WHERE person_id = $1 ORDER BY name COLLATE \"C\"",
    )
    .bind(old)
    .fetch_all(&mut *conn)
    .await?;

    let mut removed = BTreeMap::<&str, u64>::new();
    let mut count = |kind: &'static str, n: u64| {
        if n > 0 {
            *removed.entry(kind).or_default() += n;
        }
    };
    for (kind, sql) in [
        (
            "chat_and_email_identities",
            "DELETE FROM channel_identities WHERE person_id = $1",
        ),
        ("link_codes", "DELETE FROM link_codes WHERE person_id = $1"),
        (
            "follow_up_examples",
            "UPDATE follow_up_answers SET example = NULL
             WHERE person_id = $1 AND example IS NOT NULL",
        ),
        (
            "confirmation_notes",
            "UPDATE cascade_confirmations SET note = NULL
             WHERE champion_id = $1 AND note IS NOT NULL",
        ),
        (
            "provider_messages",
            "UPDATE outbox SET provider_id = NULL, last_error = NULL
             WHERE (person_id = $1 OR recipient_id = $1)
               AND (provider_id IS NOT NULL OR last_error IS NOT NULL)",
        ),
    ] {
        count(
            kind,
            sqlx::query(sql)
                .bind(old)
                .execute(&mut *conn)
                .await?
                .rows_affected(),
        );
    }

    // Their details cut out of everyone else's free text.
    let mut needles: Vec<&str> = vec![name.as_str(), email.as_str()];
    needles.extend(mobile.as_deref());
    needles.extend(addresses.iter().map(String::as_str));
    needles.retain(|n| n.chars().count() >= SHORTEST_NEEDLE);

    // Inbound events kept for crash recovery and what plugins and chat
    // conversations keep between restarts are about one exchange, not
    // evidence: any that mention the person go.
    {
        let mut mentions: Vec<&str> = needles.clone();
        mentions.push(old);
        for (table, columns, kind) in [
            ("inbox", &["event"][..], "stored_inbound_events"),
            (
                "plugin_state",
                &["key", "value"][..],
                "chat_and_plugin_state",
            ),
        ] {
            let any = columns
                .iter()
                .map(|c| any_like(c, 1, mentions.len()))
                .collect::<Vec<_>>()
                .join(" OR ");
            let sql = format!("DELETE FROM {} WHERE {any}", quote(table));
            let mut query = sqlx::query(&sql);
            for mention in &mentions {
                query = query.bind(like_pattern(mention));
            }
            count(kind, query.execute(&mut *conn).await?.rows_affected());
        }
    }
    // Rows of others whose free text loses their details: their links in
    // the evidence chain are amended.
    let mut cut_rows: Vec<(&str, i64)> = Vec::new();
    if !needles.is_empty() {
        for field in fields_of(|k| k == FieldKind::FreeText) {
            let key = row_key(field.table);
            let sql = format!(
                "SELECT {key}, {c} FROM {t} WHERE {any} ORDER BY {key} FOR UPDATE",
                t = quote(field.table),
                c = quote(field.column),
                any = any_like(field.column, 1, needles.len()),
            );
            let mut query = sqlx::query_as::<_, (i64, String)>(&sql);
            for needle in &needles {
                query = query.bind(like_pattern(needle));
            }
            let rows = query.fetch_all(&mut *conn).await?;
            count("details_in_others_free_text", rows.len() as u64);
            for (id, _) in &rows {
                cut_rows.push((field.table, *id));
            }
            for (id, text) in rows {
                let cut = needles
                    .iter()
                    .fold(text, |text, needle| cut_out(&text, needle));
                sqlx::query(&format!(
                    "UPDATE {t} SET {c} = $1 WHERE {key} = $2",
                    t = quote(field.table),
                    c = quote(field.column)
                ))
                .bind(cut)
                .bind(id)
                .execute(&mut *conn)
                .await?;
            }
        }
    }

    // The person's row, then their id everywhere, becomes the pseudonym;
    // the foreign keys to their row are checked at commit.
    let pseudonym = random_pseudonym()?;
    sqlx::query("SET CONSTRAINTS ALL DEFERRED")
        .execute(&mut *conn)
        .await?;
    sqlx::query(
        "UPDATE people SET display_name = $2, email = $2 || '@erased.invalid', mobile = NULL,
            time_zone = NULL, works = NULL, absent_until = NULL, active = 0, erased_at = $3
         WHERE id = $1",
    )
    .bind(old)
    .bind(&pseudonym)
    .bind(request.now)
    .execute(&mut *conn)
    .await?;
    // Also where free text is exactly their id (an audit entry's target).
    for field in fields_of(|k| matches!(k, FieldKind::PersonId { .. } | FieldKind::FreeText)) {
        sqlx::query(&format!(
            "UPDATE {t} SET {c} = $2 WHERE {c} = $1",
            t = quote(field.table),
            c = quote(field.column)
        ))
        .bind(old)
        .bind(&pseudonym)
        .execute(&mut *conn)
        .await?;
    }
    let keys: Vec<(i64, String)> = sqlx::query_as(
        "SELECT id, idempotency_key FROM outbox
         WHERE strpos('/' || idempotency_key || '/', '/' || $1 || '/') > 0",
    )
    .bind(old)
    .fetch_all(&mut *conn)
    .await?;
    for (id, key) in keys {
        sqlx::query("UPDATE outbox SET idempotency_key = $1 WHERE id = $2")
            .bind(rekey_segments(&key, old, &pseudonym))
            .bind(id)
            .execute(&mut *conn)
            .await?;
    }

    // A rollout's or a bulletin's audience may name them by id.
    for table in ["rollouts", "bulletins"] {
        sqlx::query(&format!(
            "UPDATE {table}
             SET definition = replace(definition, '\"' || $1 || '\"', '\"' || $2 || '\"')
             WHERE strpos(definition, '\"' || $1 || '\"') > 0"
        ))
        .bind(old)
        .bind(&pseudonym)
        .execute(&mut *conn)
        .await?;
    }

    let removed_json = serde_json::to_string(&removed).unwrap_or_else(|_| "{}".to_owned());
    let erasure_id: i64 = sqlx::query_scalar(
        "INSERT INTO erasures (pseudonym, person_hash, erased_by, reason, at, forced, removed)
         VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING id",
    )
    .bind(&pseudonym)
    .bind(person_hash(old))
    .bind(&request.by)
    .bind(reason)
    .bind(request.now)
    .bind(i64::from(request.force))
    .bind(&removed_json)
    .fetch_one(&mut *conn)
    .await?;

    // The evidence chain: the erasure is an event, and each event whose
    // personal fields it replaced gets an amend with their digest now, so
    // the chain still verifies and holds nothing of theirs.
    super::chain::chain_ids(conn, "erasure", &[erasure_id]).await?;
    for (kind, table, sql) in [
        (
            "delivery",
            "outbox",
            "SELECT id FROM outbox
             WHERE (person_id = $1 OR recipient_id = $1) AND sent_at IS NOT NULL",
        ),
        (
            "acknowledgement",
            "acknowledgements",
            "SELECT id FROM acknowledgements WHERE person_id = $1",
        ),
        (
            "answer",
            "follow_up_answers",
            "SELECT id FROM follow_up_answers WHERE person_id = $1",
        ),
        (
            "confirmation",
            "cascade_confirmations",
            "SELECT id FROM cascade_confirmations WHERE champion_id = $1",
        ),
        (
            "check-answer",
            "check_answers",
            "SELECT id FROM check_answers WHERE person_id = $1 AND acknowledgement_id IS NOT NULL",
        ),
    ] {
        let mut ids: Vec<i64> = sqlx::query_scalar(sql)
            .bind(&pseudonym)
            .fetch_all(&mut *conn)
            .await?;
        ids.extend(
            cut_rows
                .iter()
                .filter(|(t, _)| *t == table)
                .map(|(_, id)| *id),
        );
        let refs: Vec<String> = ids.iter().map(i64::to_string).collect();
        super::chain::amend(conn, kind, &refs, "erasure", request.now).await?;
    }

    // Nothing of theirs may be left: scan every column of every table.
    let mut left = places_equal(conn, old).await?;
    left.extend(places_containing(conn, &needles, &["items"]).await?);
    if !left.is_empty() {
        left.sort();
        left.dedup();
        return Err(EraseError::Left {
            id: old.to_owned(),
            places: left,
        });
    }
    let mut named_in_items: Vec<String> = Vec::new();
    for needle in &needles {
        let ids: Vec<String> = sqlx::query_scalar(
            "SELECT DISTINCT id FROM items WHERE strpos(lower(source), lower($1)) > 0",
        )
        .bind(needle)
        .fetch_all(&mut *conn)
        .await?;
        named_in_items.extend(ids);
    }
    named_in_items.sort();
    named_in_items.dedup();

    Ok(Erased {
        record: ErasureRecord {
            pseudonym,
            erased_by: request.by.clone(),
            reason: reason.to_owned(),
            at: request.now,
            forced: request.force,
            removed: removed_json,
        },
        console_users,
        cancelled_deliveries: cancelled,
        named_in_items,
    })
}

/// Rows of `table` where any of `keys` is `id` (none: the audit entries
/// made through a console account linked to the person), as JSON objects
/// without secrets, in the order of the table's primary key.
async fn rows_of(
    conn: &mut PgConnection,
    table: &Table,
    keys: &[&str],
    id: &str,
) -> Result<Vec<Value>, StoreError> {
    let shown: Vec<String> = table
        .names()
        .filter(|c| {
            !FIELDS
                .iter()
                .any(|f| f.table == table.name && f.column == *c && f.kind == FieldKind::Secret)
        })
        .map(|c| format!("'{}', {}", c.replace('\'', "''"), quote(c)))
        .collect();
    let filter = if keys.is_empty() {
        "user_id IN (SELECT id FROM console_users WHERE person_id = $1)".to_owned()
    } else {
        keys.iter()
            .map(|k| format!("{} = $1", quote(k)))
            .collect::<Vec<_>>()
            .join(" OR ")
    };
    let order: Vec<String> = sqlx::query_scalar(
        "SELECT a.attname::text FROM pg_index i
         JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = ANY(i.indkey)
         WHERE i.indrelid = to_regclass($1) AND i.indisprimary
         ORDER BY array_position(i.indkey::int2[], a.attnum)",
    )
    .bind(quote(&table.name))
    .fetch_all(&mut *conn)
    .await?;
    let order = if order.is_empty() {
        String::new()
    } else {
        let columns: Vec<String> = order.iter().map(|c| quote(c)).collect();
        format!(" ORDER BY {}", columns.join(", "))
    };
    // In the table's column order, as SQLite's json_object gives them.
    let rows: Vec<String> = sqlx::query_scalar(&format!(
        "SELECT json_build_object({})::text FROM {} WHERE {filter}{order}",
        shown.join(", "),
        quote(&table.name)
    ))
    .bind(id)
    .fetch_all(&mut *conn)
    .await?;
    rows.iter()
        .map(|row| {
            serde_json::from_str(row)
                .map_err(|e| StoreError::Database(sqlx::Error::Decode(Box::new(e))))
        })
        .collect()
}

impl Privacy for PgStore {
    async fn erase_person(&self, request: &EraseRequest) -> Result<Erased, EraseError> {
        let mut tx = self.pool.begin().await?;
        // Their sends not linked yet are linked as the lock is taken, so
        // the erasure amends them as it amends the rest.
        super::chain::lock(&mut tx).await?;
        let erased = erase_in(&mut tx, request).await?;
        tx.commit().await?;
        Ok(erased)
    }

    async fn subject_access(&self, person_id: &str) -> Result<Option<SubjectAccess>, StoreError> {
        // One snapshot for the whole export.
        let mut tx = self.pool.begin().await?;
        sqlx::query("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
            .execute(&mut *tx)
            .await?;
        if let Some(record) = erasure_by_hash(&mut tx, person_id).await? {
            return Ok(Some(SubjectAccess::Erased(record)));
        }
        if let Some(record) = erasure_by_pseudonym(&mut tx, person_id).await? {
            return Ok(Some(SubjectAccess::Erased(record)));
        }
        let schema = schema(&mut tx).await?;
        let Some(people) = schema.iter().find(|t| t.name == "people") else {
            return Ok(None);
        };
        let mut person = rows_of(&mut tx, people, &["id"], person_id).await?;
        let Some(mut person) = person.pop() else {
            return Ok(None);
        };
        let roles: Vec<String> = sqlx::query_scalar(
            "SELECT role FROM person_roles WHERE person_id = $1 ORDER BY role COLLATE \"C\"",
        )
        .bind(person_id)
        .fetch_all(&mut *tx)
        .await?;
        if let Value::Object(map) = &mut person {
            map.insert("roles".to_owned(), roles.into());
        }
        let mut records = Vec::new();
        for table in &schema {
            if table.name == "people" || table.name == "person_roles" {
                continue;
            }
            let keys: Vec<&str> = FIELDS
                .iter()
                .filter(|f| {
                    f.table == table.name && f.kind == (FieldKind::PersonId { subject: true })
                })
                .map(|f| f.column)
                .collect();
            if keys.is_empty() && table.name != "console_audit" {
                continue;
            }
            let rows = rows_of(&mut tx, table, &keys, person_id).await?;
            if !rows.is_empty() {
                records.push((table.name.clone(), rows));
            }
        }
        tx.commit().await?;
        Ok(Some(SubjectAccess::Held { person, records }))
    }

    async fn erasure_of(&self, person_id: &str) -> Result<Option<ErasureRecord>, StoreError> {
        let mut conn = self.pool.acquire().await?;
        erasure_by_hash(&mut conn, person_id).await
    }

    async fn apply_retention(
        &self,
        cutoffs: &RetentionCutoffs,
        run_by: &str,
        now: i64,
        dry_run: bool,
    ) -> Result<RetentionReport, StoreError> {
        let mut tx = self.pool.begin().await?;
        if !dry_run {
            // It amends the chain, and may erase: the chain's lock first,
            // which links the sends not linked yet before any is removed.
            super::chain::lock(&mut tx).await?;
        }
        let mut report = RetentionReport::default();
        // (cutoff, kind, rows it applies to, statement removing them)
        let simple: [(Option<i64>, &str, &str, &str); 6] = [
            (
                cutoffs.follow_up_examples,
                "follow_up_examples",
                "FROM follow_up_answers t WHERE example IS NOT NULL AND at < $1",
                "UPDATE follow_up_answers t SET example = NULL WHERE example IS NOT NULL AND at < $1",
            ),
            (
                cutoffs.confirmation_notes,
                "confirmation_notes",
                "FROM cascade_confirmations t WHERE note IS NOT NULL AND at < $1",
                "UPDATE cascade_confirmations t SET note = NULL WHERE note IS NOT NULL AND at < $1",
            ),
            (
                cutoffs.logs,
                "acknowledgement_log",
                "FROM acknowledgement_log t WHERE at < $1",
                "DELETE FROM acknowledgement_log t WHERE at < $1",
            ),
            (
                cutoffs.logs,
                "refusal_counts",
                "FROM refusal_counts t WHERE last_at < $1",
                "DELETE FROM refusal_counts t WHERE last_at < $1",
            ),
            (
                cutoffs.logs,
                "sign_in_failures",
                "FROM console_sign_in_failures t WHERE at < $1",
                "DELETE FROM console_sign_in_failures t WHERE at < $1",
            ),
            (
                cutoffs.audit_log,
                "audit_log",
                "FROM console_audit t WHERE at < $1",
                "DELETE FROM console_audit t WHERE at < $1",
            ),
        ];
        for (cutoff, kind, from, remove) in simple {
            let Some(cutoff) = cutoff else { continue };
            // What the evidence chain holds of the rows about to change.
            let chained: Option<(&str, &str)> = match kind {
                "follow_up_examples" => Some(("answer", "retention")),
                "confirmation_notes" => Some(("confirmation", "retention")),
                "refusal_counts" => Some(("refusals", "removed")),
                _ => None,
            };
            let n = if dry_run {
                let n: i64 = sqlx::query_scalar(&format!("SELECT count(*) {from}"))
                    .bind(cutoff)
                    .fetch_one(&mut *tx)
                    .await?;
                n as u64
            } else {
                // The rows changed, as the chain names them.
                let key = chained
                    .and_then(|(chain_kind, _)| super::chain::kind_sql(chain_kind))
                    .map_or("NULL::text", |k| k.key);
                let refs: Vec<Option<String>> =
                    sqlx::query_scalar(&format!("{remove} RETURNING {key}"))
                        .bind(cutoff)
                        .fetch_all(&mut *tx)
                        .await?;
                let n = refs.len() as u64;
                if let Some((chain_kind, why)) = chained
                    && n > 0
                {
                    let refs: Vec<String> = refs.into_iter().flatten().collect();
                    super::chain::amend(&mut tx, chain_kind, &refs, why, now).await?;
                }
                n
            };
            match kind {
                "follow_up_examples" => report.follow_up_examples = n,
                "confirmation_notes" => report.confirmation_notes = n,
                "acknowledgement_log" => report.acknowledgement_log = n,
                "refusal_counts" => report.refusal_counts = n,
                "sign_in_failures" => report.sign_in_failures = n,
                _ => report.audit_log = n,
            }
        }
        if let Some(cutoff) = cutoffs.inactive_people {
            // Locked when erasing: an import cannot bring one back meanwhile.
            let lock = if dry_run { "" } else { " FOR UPDATE" };
            let inactive: Vec<(String, String)> = sqlx::query_as(&format!(
                "SELECT id, updated_at FROM people WHERE active = 0 AND erased_at IS NULL
                 ORDER BY id COLLATE \"C\"{lock}"
            ))
            .fetch_all(&mut *tx)
            .await?;
            for (id, updated_at) in inactive {
                let left = crate::rows::parse_time(&updated_at).map(|t| t.timestamp_millis());
                if left.is_some_and(|left| left < cutoff) {
                    report.inactive_people.push(id);
                }
            }
            if !dry_run {
                let mut erased = Vec::new();
                for id in std::mem::take(&mut report.inactive_people) {
                    let request = EraseRequest {
                        person_id: id.clone(),
                        by: "retention".to_owned(),
                        reason: "retention schedule: [retention] inactive_people".to_owned(),
                        force: true,
                        now,
                    };
                    match erase_in(&mut tx, &request).await {
                        Ok(_) => erased.push(id),
                        // A send to them in flight: nothing of theirs was
                        // changed yet; the next run erases them.
                        Err(EraseError::InFlight(_)) => {}
                        Err(EraseError::Store(e)) => return Err(e),
                        Err(other) => {
                            return Err(StoreError::Database(sqlx::Error::Protocol(
                                other.to_string(),
                            )));
                        }
                    }
                }
                report.inactive_people = erased;
            }
        }
        if !dry_run && !report.is_empty() {
            let removed = serde_json::json!({
                "follow_up_examples": report.follow_up_examples,
                "confirmation_notes": report.confirmation_notes,
                "inactive_people": report.inactive_people.len(),
                "acknowledgement_log": report.acknowledgement_log,
                "refusal_counts": report.refusal_counts,
                "sign_in_failures": report.sign_in_failures,
                "audit_log": report.audit_log,
            });
            sqlx::query("INSERT INTO retention_runs (at, run_by, removed) VALUES ($1, $2, $3)")
                .bind(now)
                .bind(run_by)
                .bind(removed.to_string())
                .execute(&mut *tx)
                .await?;
        }
        if dry_run {
            tx.rollback().await?;
        } else {
            tx.commit().await?;
        }
        Ok(report)
    }

    async fn schema_columns(&self) -> Result<Vec<(String, String)>, StoreError> {
        let mut conn = self.pool.acquire().await?;
        Ok(schema(&mut conn)
            .await?
            .into_iter()
            .flat_map(|t| {
                let table = t.name;
                t.columns.into_iter().map(move |(c, _)| (table.clone(), c))
            })
            .collect())
    }

    async fn find_text(&self, needle: &str) -> Result<Vec<String>, StoreError> {
        let mut conn = self.pool.acquire().await?;
        places_containing(&mut conn, &[needle], &[]).await
    }
}
