//! SQLite implementation of [`Privacy`]: subject access, erasure and the
//! retention schedule. Tables and columns are read from the live schema
//! (`sqlite_master`, `pragma_table_info`) and classified by [`FIELDS`].

use super::{SqliteStore, parse_time};
use crate::StoreError;
use crate::privacy::*;
use serde_json::Value;
use sqlx::SqliteConnection;
use std::collections::BTreeMap;

/// The live schema: every table and its columns, in order.
async fn schema(conn: &mut SqliteConnection) -> Result<Vec<(String, Vec<String>)>, StoreError> {
    columns_of(conn, false).await
}

/// The live schema, with only the columns that can hold text (those not
/// declared INTEGER or REAL) when `text_only`.
async fn columns_of(
    conn: &mut SqliteConnection,
    text_only: bool,
) -> Result<Vec<(String, Vec<String>)>, StoreError> {
    let tables: Vec<String> = sqlx::query_scalar(
        "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name",
    )
    .fetch_all(&mut *conn)
    .await?;
    let mut out = Vec::new();
    for table in tables {
        if INTERNAL_TABLES.contains(&table.as_str()) {
            continue;
        }
        let columns: Vec<String> = sqlx::query_scalar(
            "SELECT name FROM pragma_table_info(?1)
                 WHERE NOT ?2 OR upper(type) NOT IN ('INTEGER', 'REAL') ORDER BY cid",
        )
        .bind(&table)
        .bind(text_only)
        .fetch_all(&mut *conn)
        .await?;
        out.push((table, columns));
    }
    Ok(out)
}

/// Places (`table.column`) whose text contains any of `needles` without
/// case, in every table but `skip`: one pass over each table, and a pass
/// per column only over a table where something was found.
async fn places_containing(
    conn: &mut SqliteConnection,
    needles: &[&str],
    skip: &[&str],
) -> Result<Vec<String>, StoreError> {
    let mut places = Vec::new();
    if needles.is_empty() {
        return Ok(places);
    }
    // LIKE ignores ASCII case, as lower() does, and is faster.
    let any_needle = |column: &str| {
        (1..=needles.len())
            .map(|i| format!("{} LIKE ?{i} ESCAPE '\\'", quote(column)))
            .collect::<Vec<_>>()
            .join(" OR ")
    };
    let patterns: Vec<String> = needles.iter().map(|n| like_pattern(n)).collect();
    let needles = &patterns;
    for (table, columns) in columns_of(conn, true).await? {
        if skip.contains(&table.as_str()) || columns.is_empty() {
            continue;
        }
        let whole = columns
            .iter()
            .map(|c| any_needle(c))
            .collect::<Vec<_>>()
            .join(" OR ");
        let sql = format!("SELECT count(*) FROM {} WHERE {whole}", quote(&table));
        let mut query = sqlx::query_scalar::<_, i64>(&sql);
        for needle in needles {
            query = query.bind(needle);
        }
        if query.fetch_one(&mut *conn).await? == 0 {
            continue;
        }
        for column in &columns {
            let sql = format!(
                "SELECT count(*) FROM {} WHERE {}",
                quote(&table),
                any_needle(column)
            );
            let mut query = sqlx::query_scalar::<_, i64>(&sql);
            for needle in needles {
                query = query.bind(needle);
            }
            let n = query.fetch_one(&mut *conn).await?;
            if n > 0 {
                places.push(format!("{table}.{column} ({n} rows)"));
            }
        }
    }
    Ok(places)
}

/// Places (`table.column`) holding exactly `value`, or holding it as a
/// segment of a delivery key or a string of a rollout's definition.
async fn places_equal(conn: &mut SqliteConnection, value: &str) -> Result<Vec<String>, StoreError> {
    let mut places = Vec::new();
    for (table, columns) in columns_of(conn, true).await? {
        if columns.is_empty() {
            continue;
        }
        let equal = |c: &String| format!("{} = ?1", quote(c));
        let whole = columns.iter().map(equal).collect::<Vec<_>>().join(" OR ");
        let n: i64 = sqlx::query_scalar(&format!(
            "SELECT count(*) FROM {} WHERE {whole}",
            quote(&table)
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
                quote(&table),
                equal(column)
            ))
            .bind(value)
            .fetch_one(&mut *conn)
            .await?;
            if n > 0 {
                places.push(format!("{table}.{column} ({n} rows)"));
            }
        }
    }
    let n: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM outbox WHERE instr('/' || idempotency_key || '/', '/' || ?1 || '/') > 0",
    )
    .bind(value)
    .fetch_one(&mut *conn)
    .await?;
    if n > 0 {
        places.push(format!("outbox.idempotency_key ({n} rows)"));
    }
    for table in ["rollouts", "bulletins"] {
        let n: i64 = sqlx::query_scalar(&format!(
            "SELECT count(*) FROM {table} WHERE instr(definition, '\"' || ?1 || '\"') > 0"
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

async fn erasure_by_hash(
    conn: &mut SqliteConnection,
    person_id: &str,
) -> Result<Option<ErasureRecord>, StoreError> {
    Ok(sqlx::query_as(
        "SELECT pseudonym, erased_by, reason, at, forced, removed FROM erasures WHERE person_hash = ?",
    )
    .bind(person_hash(person_id))
    .fetch_optional(&mut *conn)
    .await?)
}

/// Erases one person inside the caller's transaction.
pub(super) async fn erase_in(
    conn: &mut SqliteConnection,
    request: &EraseRequest,
) -> Result<Erased, EraseError> {
    let old = request.person_id.as_str();
    let person: Option<(String, String, Option<String>, Option<i64>)> =
        sqlx::query_as("SELECT display_name, email, mobile, erased_at FROM people WHERE id = ?")
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
        let record: ErasureRecord = sqlx::query_as(
            "SELECT pseudonym, erased_by, reason, at, forced, removed FROM erasures WHERE pseudonym = ?",
        )
        .bind(old)
        .fetch_one(&mut *conn)
        .await?;
        return Err(EraseError::AlreadyErased(old.to_owned(), Box::new(record)));
    }
    let reason = check_reason(&request.reason, &[&name, &email, old], mobile.as_deref())?;

    // Still being sent learning, reminders or escalations?
    let sending: Vec<String> = sqlx::query_scalar(
        "SELECT DISTINCT r.id FROM rollouts r
         WHERE r.state <> 'cancelled' AND (
            EXISTS (SELECT 1 FROM rollout_members m WHERE m.rollout_id = r.id
                    AND m.person_id = ?1 AND m.next_due_at IS NOT NULL)
            OR EXISTS (SELECT 1 FROM outbox o WHERE o.rollout_id = r.id
                    AND (o.person_id = ?1 OR o.recipient_id = ?1) AND o.state IN ('due', 'leased')))
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
    // A send in flight would record its provider's answer after the
    // erasure: wait for it.
    let in_flight: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM outbox WHERE (person_id = ?1 OR recipient_id = ?1)
           AND state = 'leased' AND lease_until > ?2",
    )
    .bind(old)
    .bind(request.now)
    .fetch_one(&mut *conn)
    .await?;
    if in_flight > 0 {
        return Err(EraseError::InFlight(old.to_owned()));
    }
    let cancelled = sqlx::query(
        "UPDATE outbox SET state = 'cancelled', lease_until = NULL, updated_at = ?2
         WHERE (person_id = ?1 OR recipient_id = ?1) AND state IN ('due', 'leased')",
    )
    .bind(old)
    .bind(request.now)
    .execute(&mut *conn)
    .await?
    .rows_affected();
    sqlx::query("UPDATE rollout_members SET next_due_at = NULL WHERE person_id = ?")
        .bind(old)
        .execute(&mut *conn)
        .await?;

    let addresses: Vec<String> =
        sqlx::query_scalar("SELECT address FROM channel_identities WHERE person_id = ?")
            .bind(old)
            .fetch_all(&mut *conn)
            .await?;
    let console_users: Vec<String> =
        sqlx::query_scalar("SELECT name FROM console_users WHERE person_id = ? ORDER BY name")
            .bind(old)
            .fetch_all(&mut *conn)
            .await?;

    let mut removed = BTreeMap::<&str, u64>::new();
    let mut count = |kind: &'static str, n: u64| {
        if n > 0 {
            *removed.entry(kind).or_default() += n;
        }
    };
    count(
        "chat_and_email_identities",
        sqlx::query("DELETE FROM channel_identities WHERE person_id = ?")
            .bind(old)
            .execute(&mut *conn)
            .await?
            .rows_affected(),
    );
    count(
        "link_codes",
        sqlx::query("DELETE FROM link_codes WHERE person_id = ?")
            .bind(old)
            .execute(&mut *conn)
            .await?
            .rows_affected(),
    );
    count(
        "follow_up_examples",
        sqlx::query(
            "UPDATE follow_up_answers SET example = NULL WHERE person_id = ? AND example IS NOT NULL",
        )
        .bind(old)
        .execute(&mut *conn)
        .await?
        .rows_affected(),
    );
    count(
        "confirmation_notes",
        sqlx::query(
            "UPDATE cascade_confirmations SET note = NULL WHERE champion_id = ? AND note IS NOT NULL",
        )
        .bind(old)
        .execute(&mut *conn)
        .await?
        .rows_affected(),
    );
    count(
        "provider_messages",
        sqlx::query(
            "UPDATE outbox SET provider_id = NULL, last_error = NULL
             WHERE (person_id = ?1 OR recipient_id = ?1)
               AND (provider_id IS NOT NULL OR last_error IS NOT NULL)",
        )
        .bind(old)
        .execute(&mut *conn)
        .await?
        .rows_affected(),
    );

    // Their details cut out of everyone else's free text.
    let mut needles: Vec<&str> = vec![name.as_str(), email.as_str()];
    needles.extend(mobile.as_deref());
    needles.extend(addresses.iter().map(String::as_str));
    needles.retain(|n| n.chars().count() >= SHORTEST_NEEDLE);

    // Inbound events kept for crash recovery and what plugins and chat
    // conversations keep between restarts (pending presses, posted parts, a
    // guided confirmation's step) are about one exchange, not evidence:
    // any that mention the person go, rather than be cut into JSON that no
    // longer parses.
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
                .flat_map(|c| {
                    (1..=mentions.len()).map(move |i| format!("{} LIKE ?{i} ESCAPE '\\'", quote(c)))
                })
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
            let any = (1..=needles.len())
                .map(|i| format!("{} LIKE ?{i} ESCAPE '\\'", quote(field.column)))
                .collect::<Vec<_>>()
                .join(" OR ");
            let sql = format!(
                "SELECT rowid, {c} FROM {t} WHERE {any}",
                t = quote(field.table),
                c = quote(field.column)
            );
            let mut query = sqlx::query_as::<_, (i64, String)>(&sql);
            for needle in &needles {
                query = query.bind(like_pattern(needle));
            }
            let rows = query.fetch_all(&mut *conn).await?;
            count("details_in_others_free_text", rows.len() as u64);
            for (rowid, _) in &rows {
                cut_rows.push((field.table, *rowid));
            }
            for (rowid, text) in rows {
                let cut = needles
                    .iter()
                    .fold(text, |text, needle| cut_out(&text, needle));
                sqlx::query(&format!(
                    "UPDATE {t} SET {c} = ? WHERE rowid = ?",
                    t = quote(field.table),
                    c = quote(field.column)
                ))
                .bind(cut)
                .bind(rowid)
                .execute(&mut *conn)
                .await?;
            }
        }
    }

    // The person's row, then their id everywhere, becomes the pseudonym.
    let pseudonym = random_pseudonym()?;
    sqlx::query("PRAGMA defer_foreign_keys = ON")
        .execute(&mut *conn)
        .await?;
    sqlx::query(
        "UPDATE people SET display_name = ?2, email = ?2 || '@erased.invalid', mobile = NULL,
            time_zone = NULL, works = NULL, absent_until = NULL, active = 0, erased_at = ?3 WHERE id = ?1",
    )
    .bind(old)
    .bind(&pseudonym)
    .bind(request.now)
    .execute(&mut *conn)
    .await?;
    // Also where free text is exactly their id (an audit entry's target).
    for field in fields_of(|k| matches!(k, FieldKind::PersonId { .. } | FieldKind::FreeText)) {
        sqlx::query(&format!(
            "UPDATE {t} SET {c} = ?2 WHERE {c} = ?1",
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
         WHERE instr('/' || idempotency_key || '/', '/' || ?1 || '/') > 0",
    )
    .bind(old)
    .fetch_all(&mut *conn)
    .await?;
    for (id, key) in keys {
        let rekeyed = rekey_segments(&key, old, &pseudonym);
        sqlx::query("UPDATE outbox SET idempotency_key = ? WHERE id = ?")
            .bind(rekeyed)
            .bind(id)
            .execute(&mut *conn)
            .await?;
    }

    // A rollout's or a bulletin's audience may name them by id.
    for table in ["rollouts", "bulletins"] {
        sqlx::query(&format!(
            "UPDATE {table} SET definition = replace(definition, '\"' || ?1 || '\"', '\"' || ?2 || '\"')
             WHERE instr(definition, '\"' || ?1 || '\"') > 0"
        ))
        .bind(old)
        .bind(&pseudonym)
        .execute(&mut *conn)
        .await?;
    }

    let removed_json = serde_json::to_string(&removed).unwrap_or_else(|_| "{}".to_owned());
    let erasure_id: i64 = sqlx::query_scalar(
        "INSERT INTO erasures (pseudonym, person_hash, erased_by, reason, at, forced, removed)
         VALUES (?, ?, ?, ?, ?, ?, ?) RETURNING id",
    )
    .bind(&pseudonym)
    .bind(person_hash(old))
    .bind(&request.by)
    .bind(reason)
    .bind(request.now)
    .bind(request.force)
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
            "SELECT id FROM outbox WHERE (person_id = ?1 OR recipient_id = ?1) AND sent_at IS NOT NULL",
        ),
        (
            "acknowledgement",
            "acknowledgements",
            "SELECT id FROM acknowledgements WHERE person_id = ?1",
        ),
        (
            "answer",
            "follow_up_answers",
            "SELECT id FROM follow_up_answers WHERE person_id = ?1",
        ),
        (
            "confirmation",
            "cascade_confirmations",
            "SELECT id FROM cascade_confirmations WHERE champion_id = ?1",
        ),
        (
            "check-answer",
            "check_answers",
            "SELECT id FROM check_answers WHERE person_id = ?1 AND acknowledgement_id IS NOT NULL",
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
            "SELECT DISTINCT id FROM items WHERE instr(lower(source), lower(?1)) > 0 ORDER BY id",
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

/// The erased person ids among `ids`, with when they were erased.
pub(super) async fn erased_among(
    conn: &mut SqliteConnection,
    ids: &[&str],
) -> Result<BTreeMap<String, i64>, StoreError> {
    let hashes: BTreeMap<String, i64> =
        sqlx::query_as::<_, (String, i64)>("SELECT person_hash, at FROM erasures")
            .fetch_all(&mut *conn)
            .await?
            .into_iter()
            .collect();
    let mut found = BTreeMap::new();
    if hashes.is_empty() {
        return Ok(found);
    }
    for id in ids {
        if let Some(at) = hashes.get(&person_hash(id)) {
            found.insert((*id).to_owned(), *at);
        }
    }
    Ok(found)
}

/// Rows of `table` where any of `columns` is `id`, as JSON objects without
/// secrets.
async fn rows_of(
    conn: &mut SqliteConnection,
    table: &str,
    columns: &[String],
    keys: &[&str],
    id: &str,
) -> Result<Vec<Value>, StoreError> {
    let shown: Vec<String> = columns
        .iter()
        .filter(|c| {
            !FIELDS
                .iter()
                .any(|f| f.table == table && f.column == c.as_str() && f.kind == FieldKind::Secret)
        })
        .map(|c| format!("'{}', {}", c.replace('\'', "''"), quote(c)))
        .collect();
    let filter = if keys.is_empty() {
        // Changes made through a console account linked to the person.
        "user_id IN (SELECT id FROM console_users WHERE person_id = ?1)".to_owned()
    } else {
        keys.iter()
            .map(|k| format!("{} = ?1", quote(k)))
            .collect::<Vec<_>>()
            .join(" OR ")
    };
    let json: String = sqlx::query_scalar(&format!(
        "SELECT coalesce(json_group_array(json(o)), '[]') FROM
         (SELECT json_object({}) AS o FROM {} WHERE {filter})",
        shown.join(", "),
        quote(table)
    ))
    .bind(id)
    .fetch_one(&mut *conn)
    .await?;
    serde_json::from_str(&json).map_err(|e| StoreError::Database(sqlx::Error::Decode(Box::new(e))))
}

impl Privacy for SqliteStore {
    async fn erase_person(&self, request: &EraseRequest) -> Result<Erased, EraseError> {
        let mut tx = self.writer.begin_with("BEGIN IMMEDIATE").await?;
        let erased = erase_in(&mut tx, request).await?;
        tx.commit().await?;
        Ok(erased)
    }

    async fn subject_access(&self, person_id: &str) -> Result<Option<SubjectAccess>, StoreError> {
        let mut conn = self.pool.acquire().await?;
        if let Some(record) = erasure_by_hash(&mut conn, person_id).await? {
            return Ok(Some(SubjectAccess::Erased(record)));
        }
        let record: Option<ErasureRecord> = sqlx::query_as(
            "SELECT pseudonym, erased_by, reason, at, forced, removed FROM erasures WHERE pseudonym = ?",
        )
        .bind(person_id)
        .fetch_optional(&mut *conn)
        .await?;
        if let Some(record) = record {
            return Ok(Some(SubjectAccess::Erased(record)));
        }
        let schema = schema(&mut conn).await?;
        let people_columns = schema
            .iter()
            .find(|(t, _)| t == "people")
            .map(|(_, c)| c.clone())
            .unwrap_or_default();
        let mut person = rows_of(&mut conn, "people", &people_columns, &["id"], person_id).await?;
        let Some(mut person) = person.pop() else {
            return Ok(None);
        };
        let roles: Vec<String> =
            sqlx::query_scalar("SELECT role FROM person_roles WHERE person_id = ? ORDER BY role")
                .bind(person_id)
                .fetch_all(&mut *conn)
                .await?;
        if let Value::Object(map) = &mut person {
            map.insert("roles".to_owned(), roles.into());
        }
        let mut records = Vec::new();
        for (table, columns) in &schema {
            if table == "people" || table == "person_roles" {
                continue;
            }
            let keys: Vec<&str> = FIELDS
                .iter()
                .filter(|f| f.table == table && f.kind == (FieldKind::PersonId { subject: true }))
                .map(|f| f.column)
                .collect();
            if keys.is_empty() && table != "console_audit" {
                continue;
            }
            let rows = rows_of(&mut conn, table, columns, &keys, person_id).await?;
            if !rows.is_empty() {
                records.push((table.clone(), rows));
            }
        }
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
        let mut tx = self.writer.begin_with("BEGIN IMMEDIATE").await?;
        let mut report = RetentionReport::default();
        // (kind, statement counting, statement removing)
        let simple: [(Option<i64>, &str, &str, &str); 6] = [
            (
                cutoffs.follow_up_examples,
                "follow_up_examples",
                "FROM follow_up_answers WHERE example IS NOT NULL AND at < ?1",
                "UPDATE follow_up_answers SET example = NULL WHERE example IS NOT NULL AND at < ?1",
            ),
            (
                cutoffs.confirmation_notes,
                "confirmation_notes",
                "FROM cascade_confirmations WHERE note IS NOT NULL AND at < ?1",
                "UPDATE cascade_confirmations SET note = NULL WHERE note IS NOT NULL AND at < ?1",
            ),
            (
                cutoffs.logs,
                "acknowledgement_log",
                "FROM acknowledgement_log WHERE at < ?1",
                "DELETE FROM acknowledgement_log WHERE at < ?1",
            ),
            (
                cutoffs.logs,
                "refusal_counts",
                "FROM refusal_counts WHERE last_at < ?1",
                "DELETE FROM refusal_counts WHERE last_at < ?1",
            ),
            (
                cutoffs.logs,
                "sign_in_failures",
                "FROM console_sign_in_failures WHERE at < ?1",
                "DELETE FROM console_sign_in_failures WHERE at < ?1",
            ),
            (
                cutoffs.audit_log,
                "audit_log",
                "FROM console_audit WHERE at < ?1",
                "DELETE FROM console_audit WHERE at < ?1",
            ),
        ];
        for (cutoff, kind, from, remove) in simple {
            let Some(cutoff) = cutoff else { continue };
            // What the evidence chain holds of the rows about to change.
            let chained: Option<(&str, &str, &str)> = match kind {
                "follow_up_examples" => Some(("answer", "CAST(id AS TEXT)", "retention")),
                "confirmation_notes" => Some(("confirmation", "CAST(id AS TEXT)", "retention")),
                "refusal_counts" => Some((
                    "refusals",
                    "json_array(minute, channel, method, reason)",
                    "removed",
                )),
                _ => None,
            };
            let chained_refs: Vec<String> = match chained {
                Some((_, key, _)) if !dry_run => {
                    sqlx::query_scalar(&format!("SELECT {key} {from}"))
                        .bind(cutoff)
                        .fetch_all(&mut *tx)
                        .await?
                }
                _ => Vec::new(),
            };
            let n: i64 = sqlx::query_scalar(&format!("SELECT count(*) {from}"))
                .bind(cutoff)
                .fetch_one(&mut *tx)
                .await?;
            let n = n as u64;
            match kind {
                "follow_up_examples" => report.follow_up_examples = n,
                "confirmation_notes" => report.confirmation_notes = n,
                "acknowledgement_log" => report.acknowledgement_log = n,
                "refusal_counts" => report.refusal_counts = n,
                "sign_in_failures" => report.sign_in_failures = n,
                _ => report.audit_log = n,
            }
            if !dry_run && n > 0 {
                sqlx::query(remove).bind(cutoff).execute(&mut *tx).await?;
                if let Some((chain_kind, _, why)) = chained {
                    super::chain::amend(&mut tx, chain_kind, &chained_refs, why, now).await?;
                }
            }
        }
        if let Some(cutoff) = cutoffs.inactive_people {
            let inactive: Vec<(String, String)> = sqlx::query_as(
                "SELECT id, updated_at FROM people WHERE active = 0 AND erased_at IS NULL ORDER BY id",
            )
            .fetch_all(&mut *tx)
            .await?;
            for (id, updated_at) in inactive {
                let left = parse_time(&updated_at).map(|t| t.timestamp_millis());
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
            sqlx::query("INSERT INTO retention_runs (at, run_by, removed) VALUES (?, ?, ?)")
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
            .flat_map(|(t, cs)| cs.into_iter().map(move |c| (t.clone(), c)))
            .collect())
    }

    async fn find_text(&self, needle: &str) -> Result<Vec<String>, StoreError> {
        let mut conn = self.pool.acquire().await?;
        places_containing(&mut conn, &[needle], &[]).await
    }
}
