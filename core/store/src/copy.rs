//! `cascade store copy --from sqlite --to postgres`: moves a partnership's
//! whole history from its SQLite file into an empty PostgreSQL database
//! (issue 18), table by table, in one PostgreSQL transaction: either every
//! row arrives or nothing does.
//!
//! Rows are copied as they are, ids included, with PostgreSQL's triggers
//! off for the copy (the counts and stamps they keep are copied too, so
//! firing them again would count twice) and its foreign keys checked at
//! the commit (every key is deferrable; members without their rollout,
//! which triggers check on PostgreSQL, are looked for then too), so the
//! order of tables does not matter. The evidence salt and chain come across unchanged, so the chain
//! verifies the same in the new store. Identity sequences then continue
//! after the highest id copied.

use crate::StoreError;
use crate::pg::PgStore;
use crate::sqlite::SqliteStore;
use futures_util::TryStreamExt;
use sqlx::{Column, Row, TypeInfo, ValueRef};

/// What was copied: each table's rows.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CopySummary {
    pub tables: Vec<(String, u64)>,
}

impl CopySummary {
    /// Rows copied in all.
    pub fn rows(&self) -> u64 {
        self.tables.iter().map(|(_, n)| n).sum()
    }
}

/// Tables that hold the partnership's data: if any has a row, the target
/// is not empty (the migration's own seed rows are in other tables).
const DATA_TABLES: &[&str] = &["items", "people", "rollouts", "outbox", "acknowledgements"];

/// (table, column, type) of every column of PostgreSQL's tables (not its
/// views), less sqlx's own, in column order, and `and` more conditions.
fn table_columns_sql(and: &str) -> String {
    format!(
        "SELECT c.table_name::text, c.column_name::text, c.data_type::text
         FROM information_schema.columns c
         JOIN information_schema.tables t
           ON t.table_schema = c.table_schema AND t.table_name = c.table_name
         WHERE c.table_schema = current_schema() AND t.table_type = 'BASE TABLE'
           AND c.table_name <> '_sqlx_migrations' {and}
         ORDER BY c.table_name, c.ordinal_position"
    )
}

/// Bytes gathered before each send to COPY.
const COPY_CHUNK: usize = 1 << 20;

/// Copies every table of `from` into `to`, which must be empty (freshly
/// migrated). `progress` hears each table's name and rows as it finishes.
pub async fn sqlite_to_postgres(
    from: &SqliteStore,
    to: &PgStore,
    mut progress: impl FnMut(&str, u64),
) -> Result<CopySummary, StoreError> {
    let pg = to.pool();
    for table in DATA_TABLES {
        let any: bool = sqlx::query_scalar(&format!("SELECT EXISTS (SELECT 1 FROM {table})"))
            .fetch_one(pg)
            .await?;
        if any {
            return Err(StoreError::Config(format!(
                "the PostgreSQL database already holds data (table {table} has rows); copy into a new, empty database: nothing was copied"
            )));
        }
    }
    let sqlite_version: Option<i64> =
        sqlx::query_scalar("SELECT max(version) FROM _sqlx_migrations WHERE success")
            .fetch_one(from.pool_for_copy())
            .await?;
    let pg_version: Option<i64> =
        sqlx::query_scalar("SELECT max(version) FROM _sqlx_migrations WHERE success")
            .fetch_one(pg)
            .await?;
    if sqlite_version.unwrap_or(0) > pg_version.unwrap_or(0) {
        return Err(StoreError::Config(format!(
            "the SQLite store is at schema version {} but this cascade's PostgreSQL schema is at {}; copy with the cascade that made the SQLite store's latest migration",
            sqlite_version.unwrap_or(0),
            pg_version.unwrap_or(0)
        )));
    }

    // Tables and columns as PostgreSQL has them, in column order.
    let columns: Vec<(String, String, String)> =
        sqlx::query_as(&table_columns_sql("")).fetch_all(pg).await?;
    let mut tables: Vec<(String, Vec<(String, String)>)> = Vec::new();
    for (table, column, kind) in columns {
        // The store's own (`chain_pending`: empty in a new database).
        if crate::privacy::INTERNAL_TABLES.contains(&table.as_str()) {
            continue;
        }
        match tables.last_mut() {
            Some((t, cols)) if *t == table => cols.push((column, kind)),
            _ => tables.push((table, vec![(column, kind)])),
        }
    }

    let mut tx = pg.begin().await?;
    sqlx::query("SET CONSTRAINTS ALL DEFERRED")
        .execute(&mut *tx)
        .await?;
    let names: Vec<&str> = tables.iter().map(|(t, _)| t.as_str()).collect();
    for table in &names {
        sqlx::query(&format!("ALTER TABLE {table} DISABLE TRIGGER USER"))
            .execute(&mut *tx)
            .await?;
    }
    // The migration's seed rows (the evidence salt among them) give way to
    // the SQLite store's own.
    sqlx::query(&format!("TRUNCATE {}", names.join(", ")))
        .execute(&mut *tx)
        .await?;

    let mut summary = CopySummary::default();
    for (table, cols) in &tables {
        let select: Vec<String> = cols.iter().map(|(c, _)| format!("\"{c}\"")).collect();
        let sql = format!("SELECT {} FROM \"{table}\"", select.join(", "));
        let mut rows = sqlx::query(&sql).fetch(from.pool_for_copy());
        let copy_sql = format!(
            "COPY {table} ({}) FROM STDIN",
            cols.iter()
                .map(|(c, _)| c.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        );
        let mut copy = tx.copy_in_raw(&copy_sql).await?;
        let mut buffer = Vec::with_capacity(COPY_CHUNK + 4096);
        let mut count: u64 = 0;
        while let Some(row) = rows.try_next().await? {
            for (i, (column, kind)) in cols.iter().enumerate() {
                if i > 0 {
                    buffer.push(b'\t');
                }
                copy_value(&row, i, kind, &mut buffer).map_err(|why| {
                    StoreError::Config(format!(
                        "{table}.{column}, row {}: {why}; nothing was copied",
                        count + 1
                    ))
                })?;
            }
            buffer.push(b'\n');
            count += 1;
            if buffer.len() >= COPY_CHUNK {
                copy.send(std::mem::take(&mut buffer)).await?;
                buffer.reserve(COPY_CHUNK + 4096);
            }
        }
        if !buffer.is_empty() {
            copy.send(buffer).await?;
        }
        copy.finish().await?;
        progress(table, count);
        summary.tables.push((table.clone(), count));
    }

    // Identity columns continue after the highest id copied.
    let identities: Vec<(String, String)> = sqlx::query_as(
        "SELECT table_name::text, column_name::text FROM information_schema.columns
         WHERE table_schema = current_schema() AND is_identity = 'YES'",
    )
    .fetch_all(&mut *tx)
    .await?;
    for (table, column) in identities {
        sqlx::query(&format!(
            "SELECT setval(pg_get_serial_sequence('{table}', '{column}'),
                           COALESCE((SELECT max({column}) FROM {table}), 0) + 1, false)"
        ))
        .execute(&mut *tx)
        .await?;
    }
    // The deferred key checks run now (an ALTER TABLE waits for none).
    sqlx::query("SET CONSTRAINTS ALL IMMEDIATE")
        .execute(&mut *tx)
        .await?;
    // rollout_members' key to rollouts is kept by triggers on PostgreSQL
    // (migration 20261218000000), which were off while loading.
    let orphan: Option<String> = sqlx::query_scalar(
        "SELECT m.rollout_id FROM rollout_members m
         WHERE NOT EXISTS (SELECT 1 FROM rollouts r WHERE r.id = m.rollout_id) LIMIT 1",
    )
    .fetch_optional(&mut *tx)
    .await?;
    if let Some(rollout) = orphan {
        return Err(StoreError::Config(format!(
            "rollout_members: members of rollout {rollout}, which is not in rollouts (the SQLite file breaks its own foreign key; run `PRAGMA foreign_key_check` on it); nothing was copied"
        )));
    }
    for table in &names {
        sqlx::query(&format!("ALTER TABLE {table} ENABLE TRIGGER USER"))
            .execute(&mut *tx)
            .await?;
    }
    tx.commit().await?;
    Ok(summary)
}

/// Writes column `i` of a SQLite row in COPY's text format for a
/// PostgreSQL column of type `kind`.
fn copy_value(
    row: &sqlx::sqlite::SqliteRow,
    i: usize,
    kind: &str,
    out: &mut Vec<u8>,
) -> Result<(), String> {
    let raw = row.try_get_raw(i).map_err(|e| e.to_string())?;
    if raw.is_null() {
        out.extend_from_slice(b"\\N");
        return Ok(());
    }
    let stored = raw.type_info().name().to_owned();
    let name = row.column(i).name().to_owned();
    match (kind, stored.as_str()) {
        ("bigint" | "integer" | "smallint", "INTEGER") => {
            let v: i64 = row.try_get(i).map_err(|e| e.to_string())?;
            out.extend_from_slice(v.to_string().as_bytes());
        }
        ("double precision" | "real" | "numeric", "INTEGER" | "REAL") => {
            let v: f64 = row.try_get(i).map_err(|e| e.to_string())?;
            out.extend_from_slice(format!("{v:?}").as_bytes());
        }
        ("bytea", "BLOB") => {
            let v: Vec<u8> = row.try_get(i).map_err(|e| e.to_string())?;
            out.extend_from_slice(b"\\\\x");
            for b in v {
                out.extend_from_slice(format!("{b:02x}").as_bytes());
            }
        }
        ("text", "TEXT") => {
            let v: &str = row.try_get(i).map_err(|e| e.to_string())?;
            escape(v, out);
        }
        // SQLite keeps what it is given: a number in a text column is
        // text to PostgreSQL.
        ("text", "INTEGER") => {
            let v: i64 = row.try_get(i).map_err(|e| e.to_string())?;
            out.extend_from_slice(v.to_string().as_bytes());
        }
        ("text", "REAL") => {
            let v: f64 = row.try_get(i).map_err(|e| e.to_string())?;
            out.extend_from_slice(v.to_string().as_bytes());
        }
        _ => {
            return Err(format!(
                "column {name} holds a SQLite {stored} value where PostgreSQL expects {kind}; correct the value in the SQLite store (cascade doctor names such rows) and copy again"
            ));
        }
    }
    Ok(())
}

/// COPY text format: backslash, tab, newline and carriage return escaped.
fn escape(text: &str, out: &mut Vec<u8>) {
    for b in text.bytes() {
        match b {
            b'\\' => out.extend_from_slice(b"\\\\"),
            b'\t' => out.extend_from_slice(b"\\t"),
            b'\n' => out.extend_from_slice(b"\\n"),
            b'\r' => out.extend_from_slice(b"\\r"),
            _ => out.push(b),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pg::PgSettings;
    use crate::pg::test_server::TestPostgres;
    use crate::tests::{Project, link_ack, newsletter_item};
    use crate::{
        DeliveryOutcome, Evidence, EvidenceChain, NewDelivery, NewMember, NewRollout, Outbox, Store,
    };

    /// Every row of `table` in each store, as texts, sorted: BLOBs in hex,
    /// numbers as PostgreSQL writes them.
    async fn rows(
        sqlite: &SqliteStore,
        pg: &PgStore,
        table: &str,
        cols: &[(String, String)],
    ) -> (Vec<Vec<Option<String>>>, Vec<Vec<Option<String>>>) {
        let list = |f: &dyn Fn(&str, &str) -> String| {
            cols.iter()
                .map(|(c, k)| f(c, k))
                .collect::<Vec<_>>()
                .join(", ")
        };
        let sqlite_sql = format!(
            "SELECT {} FROM {table}",
            list(&|c, k| if k == "bytea" {
                format!("lower(hex({c}))")
            } else {
                format!("CAST({c} AS TEXT)")
            })
        );
        let pg_sql = format!(
            "SELECT {} FROM {table}",
            list(&|c, k| if k == "bytea" {
                format!("encode({c}, 'hex')")
            } else {
                format!("{c}::text")
            })
        );
        let read_sqlite: Vec<sqlx::sqlite::SqliteRow> = sqlx::query(&sqlite_sql)
            .fetch_all(sqlite.pool_for_copy())
            .await
            .unwrap();
        let read_pg: Vec<sqlx::postgres::PgRow> =
            sqlx::query(&pg_sql).fetch_all(pg.pool()).await.unwrap();
        let mut a: Vec<Vec<Option<String>>> = read_sqlite
            .iter()
            .map(|r| (0..cols.len()).map(|i| r.get(i)).collect())
            .collect();
        let mut b: Vec<Vec<Option<String>>> = read_pg
            .iter()
            .map(|r| (0..cols.len()).map(|i| r.get(i)).collect())
            .collect();
        a.sort();
        b.sort();
        (a, b)
    }

    #[tokio::test]
    async fn a_partnership_moves_from_sqlite_to_postgresql_with_every_row_and_its_evidence_salt() {
        // A SQLite store with a directory, an item, a rollout with sent
        // deliveries (chained), and an acknowledgement.
        let project = Project::with_directory().await;
        let sqlite = &project.store;
        sqlite
            .save_item(
                &newsletter_item("nl-1", "Neglect", "v1"),
                "text\twith a tab\\ and a backslash\nand a line",
            )
            .await
            .unwrap();
        let member = |id: &str| NewMember {
            person_id: id.to_owned(),
            wave: 0,
            first_due_at: 1_000,
        };
        sqlite
            .create_rollout(NewRollout {
                id: "r-1",
                item_id: "nl-1",
                item_version: "v1",
                definition: "{}",
                members: &[member("p-1"), member("p-2")],
                audience: None,
                team_posts: &[],
                now: 0,
            })
            .await
            .unwrap();
        let delivery = |p: &str| NewDelivery {
            idempotency_key: format!("r-1:{p}"),
            rollout_id: "r-1".to_owned(),
            person_id: p.to_owned(),
            recipient_id: p.to_owned(),
            wave: 0,
            step_kind: cascade_model::rollout::StepKind::Initial,
            step_number: 0,
            channel: "email".to_owned(),
            channel_rank: 0,
            due_at: 1_000,
        };
        sqlite
            .materialise(&[delivery("p-1"), delivery("p-2")], &[], 1_000)
            .await
            .unwrap();
        let claimed = sqlite.claim(1_000, 10, 60_000, &[]).await.unwrap();
        let sent: Vec<(i64, DeliveryOutcome)> = claimed
            .iter()
            .map(|c| {
                (
                    c.id,
                    DeliveryOutcome::Sent {
                        provider_id: Some("m-1".to_owned()),
                    },
                )
            })
            .collect();
        sqlite.record(&sent, &[], 2_000).await.unwrap();
        sqlite
            .acknowledge_item(&link_ack("p-1", claimed[0].id, 3_000))
            .await
            .unwrap();
        assert!(sqlite.verify_chain().await.unwrap().problems.is_empty());

        let server = TestPostgres::shared().unwrap_or_else(|e| panic!("{e}"));
        let url = server.new_database().await.unwrap();
        let pg = PgStore::connect(&PgSettings::new(url)).await.unwrap();
        let mut heard = Vec::new();
        let summary = sqlite_to_postgres(sqlite, &pg, |t, n| heard.push((t.to_owned(), n)))
            .await
            .unwrap();
        assert_eq!(heard, summary.tables);
        assert!(summary.rows() > 20, "{summary:?}");

        // Every table holds the same rows, the salt and chain among them.
        let columns: Vec<(String, String, String)> = sqlx::query_as(&table_columns_sql(
            "AND NOT (c.column_name = 'rowid' AND c.table_name IN
                      ('people', 'channel_identities', 'channel_states', 'plugin_state'))",
        ))
        .fetch_all(pg.pool())
        .await
        .unwrap();
        let mut tables: Vec<(String, Vec<(String, String)>)> = Vec::new();
        for (t, c, k) in columns {
            if crate::privacy::INTERNAL_TABLES.contains(&t.as_str()) {
                continue;
            }
            match tables.last_mut() {
                Some((name, cols)) if *name == t => cols.push((c, k)),
                _ => tables.push((t, vec![(c, k)])),
            }
        }
        let mut compared = 0;
        for (table, cols) in &tables {
            let (a, b) = rows(sqlite, &pg, table, cols).await;
            assert_eq!(a, b, "table {table}");
            compared += a.len();
        }
        assert_eq!(compared as u64, summary.rows());
        for table in [
            "evidence_chain",
            "engine_secrets",
            "outbox",
            "acknowledgements",
            "items",
        ] {
            assert!(
                summary.tables.iter().any(|(t, n)| t == table && *n > 0),
                "{table} copied: {summary:?}"
            );
        }

        // Ids go on after the highest copied; the triggers are back on.
        let max_outbox: i64 = sqlx::query_scalar("SELECT max(id) FROM outbox")
            .fetch_one(pg.pool())
            .await
            .unwrap();
        let following: i64 =
            sqlx::query_scalar("SELECT nextval(pg_get_serial_sequence('outbox', 'id'))")
                .fetch_one(pg.pool())
                .await
                .unwrap();
        assert_eq!(following, max_outbox + 1);
        let enabled: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM pg_trigger WHERE NOT tgisinternal AND tgenabled = 'D'",
        )
        .fetch_one(pg.pool())
        .await
        .unwrap();
        assert_eq!(enabled, 0, "no trigger left disabled");

        // A second copy into a database with data refuses and changes nothing.
        let err = sqlite_to_postgres(sqlite, &pg, |_, _| {})
            .await
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("already holds data") && err.contains("nothing was copied"),
            "{err}"
        );
    }

    /// The key from members to their rollout, kept by triggers on
    /// PostgreSQL, holds for copied rows too although the triggers are off
    /// while loading: a SQLite file that breaks it copies nothing.
    #[tokio::test]
    async fn members_without_their_rollout_are_refused_and_nothing_is_copied() {
        let project = Project::with_directory().await;
        let sqlite = &project.store;
        let mut conn = sqlite.pool_for_copy().acquire().await.unwrap();
        sqlx::query("PRAGMA foreign_keys = OFF")
            .execute(&mut *conn)
            .await
            .unwrap();
        sqlx::query(
            "INSERT INTO rollout_members (rollout_id, person_id, wave) VALUES ('gone', 'p-1', 0)",
        )
        .execute(&mut *conn)
        .await
        .unwrap();
        sqlx::query("PRAGMA foreign_keys = ON")
            .execute(&mut *conn)
            .await
            .unwrap();
        drop(conn);

        let server = TestPostgres::shared().expect("PostgreSQL for the tests");
        let pg = PgStore::connect(&PgSettings::new(server.new_database().await.unwrap()))
            .await
            .unwrap();
        let err = sqlite_to_postgres(sqlite, &pg, |_, _| {})
            .await
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("rollout gone") && err.contains("nothing was copied"),
            "{err}"
        );
        for table in ["people", "rollout_members"] {
            let n: i64 = sqlx::query_scalar(&format!("SELECT count(*) FROM {table}"))
                .fetch_one(pg.pool())
                .await
                .unwrap();
            assert_eq!(n, 0, "{table} after a refused copy");
        }
    }
}
