//! The SQLite store: one database file in WAL mode with foreign keys on, the
//! embedded default that needs nothing installed, readable only by its
//! owner. Directory imports live in `import`.

mod accounts;
mod annual;
mod audience;
pub mod backup;
mod bulletins;
mod chain;
mod channel_states;
mod evidence;
mod import;
mod inbox;
#[cfg(feature = "test-support")]
mod inspect;
mod leases;
mod membership;
mod outbox;
mod privacy;
mod raw;
mod reports;
mod team_posts;
#[cfg(any(test, feature = "test-support"))]
mod test_support;
mod wakeups;

use super::{Store, StoreError, StoredItem, StoredPerson};
use cascade_model::content::{LearningItem, Status, Taxonomy, Version};
use cascade_model::directory::{Agency, Champion, ChannelIdentity, DirectoryFile, Person, Team};
use chrono::{DateTime, NaiveDate, Utc};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions};
use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

/// How long a writer waits for another process's write to finish before
/// giving up.
const BUSY_TIMEOUT: Duration = Duration::from_secs(10);

/// How long a write waits for its turn on this process's write connection.
const WRITE_QUEUE_TIMEOUT: Duration = Duration::from_secs(30);

/// The store in one SQLite database.
#[derive(Debug, Clone)]
pub struct SqliteStore {
    /// Reads, on several connections (WAL lets them run beside a write).
    pool: SqlitePool,
    /// Writes, on one connection of their own: writers in this process
    /// queue for it in turn (the pool is fair) instead of each polling
    /// SQLite's write lock with ever longer sleeps, where under many
    /// writers some waited out the whole busy timeout while later ones
    /// went first, and held read connections while they slept. Another
    /// process's writers are still waited for by the busy timeout.
    writer: SqlitePool,
    /// Whether evidence is appended to the evidence chain: always, but
    /// for the benchmark that measures what the chain costs.
    chained: bool,
    /// Wakes this process's idle serve when this store (any clone of it)
    /// queues work or makes work due sooner (see [`crate::Wakeups`]).
    wake: std::sync::Arc<tokio::sync::Notify>,
}

impl SqliteStore {
    /// Opens (creating if needed, with its parent folders) the database at
    /// `location`, a file path or a `sqlite:` URL, and applies migrations.
    ///
    /// The database holds email addresses and the key that signs chat
    /// buttons, so it is its owner's only: a new file is created 0600 before
    /// SQLite opens it (SQLite gives its WAL and shared-memory files the
    /// database file's permissions), a new folder for it 0700, and an
    /// existing database, WAL or shared-memory file others could read is
    /// restricted, with a warning naming it.
    pub async fn open(location: &str) -> Result<Self, StoreError> {
        let options = if location.starts_with("sqlite:") {
            SqliteConnectOptions::from_str(location)?
        } else {
            SqliteConnectOptions::new().filename(location)
        };
        if !in_memory(location) {
            keep_private(options.get_filename())?;
        }
        let options = options
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .foreign_keys(true)
            .busy_timeout(BUSY_TIMEOUT);
        let pool = SqlitePoolOptions::new()
            .connect_with(options.clone())
            .await?;
        let writer = SqlitePoolOptions::new()
            .max_connections(1)
            .acquire_timeout(WRITE_QUEUE_TIMEOUT)
            .connect_lazy_with(options);
        Self::migrated(pool, Some(writer)).await
    }

    /// A private database in memory, for tests and dry runs.
    pub async fn open_in_memory() -> Result<Self, StoreError> {
        let options = SqliteConnectOptions::new()
            .in_memory(true)
            .foreign_keys(true);
        // Each connection to `:memory:` is its own database, so keep exactly one, forever.
        let pool = SqlitePoolOptions::new()
            .max_connections(1)
            .min_connections(1)
            .idle_timeout(None)
            .max_lifetime(None)
            .connect_with(options)
            .await?;
        Self::migrated(pool, None).await
    }

    /// Applies migrations; `writer` is the write connection's pool, or
    /// none to write through `pool` (a database in memory has one).
    async fn migrated(pool: SqlitePool, writer: Option<SqlitePool>) -> Result<Self, StoreError> {
        sqlx::migrate!().run(&pool).await?;
        let store = SqliteStore {
            writer: writer.unwrap_or_else(|| pool.clone()),
            pool,
            chained: true,
            wake: Default::default(),
        };
        chain::backfill(&store).await?;
        Ok(store)
    }

    /// The connection pool, for this crate's own tests: it is never handed
    /// out of the crate, so the store traits are the only way to the
    /// database.
    #[cfg(test)]
    pub(crate) fn pool(&self) -> &SqlitePool {
        &self.pool
    }

    /// The read pool, for the copy into PostgreSQL (`crate::copy`).
    pub(crate) fn pool_for_copy(&self) -> &SqlitePool {
        &self.pool
    }

    /// Closes every connection, waiting for those in use to be returned.
    /// The last connection to close checkpoints the WAL into the database
    /// file. Later calls on this store (or a clone) fail.
    pub async fn close(&self) {
        self.writer.close().await;
        self.pool.close().await;
    }
}

/// Whether a `sqlite:` URL names a database in memory rather than a file.
fn in_memory(location: &str) -> bool {
    let Some(rest) = location.strip_prefix("sqlite:") else {
        return false;
    };
    let rest = rest.trim_start_matches("//");
    let (database, query) = rest.split_once('?').unwrap_or((rest, ""));
    database == ":memory:" || query.split('&').any(|pair| pair == "mode=memory")
}

/// Makes the database's folder (0700 where new) and the database file
/// (0600) unless they exist, and restricts an existing database, WAL or
/// shared-memory file others could read.
fn keep_private(database: &Path) -> Result<(), StoreError> {
    if let Some(folder) = database.parent()
        && !folder.as_os_str().is_empty()
    {
        cascade_model::private_file::create_dir(folder).map_err(|source| {
            StoreError::CreateFolder {
                path: folder.display().to_string(),
                source,
            }
        })?;
    }
    let private = |path: &Path, result: std::io::Result<bool>| {
        result.map_err(|source| StoreError::KeepPrivate {
            path: path.display().to_string(),
            source,
        })
    };
    private(
        database,
        cascade_model::private_file::create_empty(database),
    )?;
    for suffix in ["", "-wal", "-shm"] {
        let mut path = database.as_os_str().to_owned();
        path.push(suffix);
        let path = Path::new(&path);
        private(path, cascade_model::private_file::restrict(path))?;
    }
    Ok(())
}

/// An `items` row.
#[derive(sqlx::FromRow)]
struct ItemRow {
    id: String,
    version: String,
    kind: String,
    title: String,
    status: String,
    embargoed_until: Option<NaiveDate>,
    source: String,
    first_seen_at: DateTime<Utc>,
}

const ITEM_COLUMNS: &str =
    "id, version, kind, title, status, embargoed_until, source, first_seen_at";

impl From<ItemRow> for StoredItem {
    fn from(row: ItemRow) -> StoredItem {
        StoredItem {
            id: row.id,
            version: Version(row.version),
            kind: row.kind,
            title: row.title,
            status: row.status,
            embargoed_until: row.embargoed_until,
            source: row.source,
            first_seen_at: row.first_seen_at,
        }
    }
}

/// A `people` row, without the person's roles.
#[derive(sqlx::FromRow)]
struct PersonRow {
    id: String,
    display_name: String,
    email: String,
    agency_id: String,
    team_id: String,
    manager_id: Option<String>,
    time_zone: Option<String>,
    mobile: Option<String>,
    works: Option<String>,
    absent_until: Option<String>,
    active: bool,
    updated_at: DateTime<Utc>,
}

pub(crate) use crate::rows::{ChampionTeamRow, parse_day, parse_time};

/// People read by one statement when the whole directory is loaded.
const PEOPLE_PER_READ: i64 = 20_000;

const PERSON_COLUMNS: &str = "id, display_name, email, agency_id, team_id, manager_id, time_zone, mobile, works, absent_until, active, updated_at";

fn stored_person(row: PersonRow, roles: Vec<String>) -> StoredPerson {
    StoredPerson {
        person: Person {
            id: row.id,
            display_name: row.display_name,
            email: row.email,
            agency_id: row.agency_id,
            team_id: row.team_id,
            roles,
            manager_id: row.manager_id,
            time_zone: row.time_zone,
            mobile: row.mobile,
            works: row.works,
            absent_until: row.absent_until.as_deref().and_then(parse_day),
        },
        active: row.active,
        updated_at: row.updated_at,
    }
}

impl SqliteStore {
    /// Every person (or every active one), read `per_read` at a time.
    pub(crate) async fn people_in_reads(
        &self,
        active_only: bool,
        per_read: i64,
    ) -> Result<Vec<StoredPerson>, StoreError> {
        // Chunks of people, each read back as one JSON array with the roles
        // folded in by SQLite: a statement returning a row per person hands
        // each row from sqlx's database thread to the async side on its own,
        // which for a million people (`cascade serve` loading its `World`)
        // cost seconds.
        type Json = (
            String,
            String,
            String,
            String,
            String,
            Option<String>,
            Option<String>,
            Option<String>,
            Option<String>,
            Option<String>,
            i64,
            String,
            Option<String>,
        );
        let mut people = Vec::new();
        let mut after = String::new();
        loop {
            let (json, last): (String, Option<String>) = sqlx::query_as(
                "SELECT json_group_array(json_array(id, display_name, email, agency_id, team_id,
                        manager_id, time_zone, mobile, works, absent_until, active, updated_at,
                        (SELECT group_concat(role, ';') FROM person_roles r WHERE r.person_id = p.id))),
                        max(id)
                 FROM (SELECT * FROM people WHERE (active OR NOT ?1) AND id > ?2 ORDER BY id LIMIT ?3) p",
            )
            .bind(active_only)
            .bind(&after)
            .bind(per_read)
            .fetch_one(&self.pool)
            .await?;
            let Some(last) = last else { break };
            let mut chunk: Vec<Json> = serde_json::from_str(&json)
                .map_err(|e| StoreError::Database(sqlx::Error::Decode(Box::new(e))))?;
            chunk.sort_unstable_by(|a, b| a.0.cmp(&b.0));
            for (
                id,
                display_name,
                email,
                agency_id,
                team_id,
                manager_id,
                time_zone,
                mobile,
                works,
                absent_until,
                active,
                at,
                roles,
            ) in chunk
            {
                let updated_at = parse_time(&at).ok_or_else(|| {
                    StoreError::Database(sqlx::Error::Decode(
                        format!("updated_at {at:?} of {id} is not a time").into(),
                    ))
                })?;
                let mut roles: Vec<String> = roles
                    .unwrap_or_default()
                    .split(';')
                    .filter(|r| !r.is_empty())
                    .map(str::to_owned)
                    .collect();
                roles.sort_unstable();
                let row = PersonRow {
                    id,
                    display_name,
                    email,
                    agency_id,
                    team_id,
                    manager_id,
                    time_zone,
                    mobile,
                    works,
                    absent_until,
                    active: active != 0,
                    updated_at,
                };
                people.push(stored_person(row, roles));
            }
            after = last;
        }
        Ok(people)
    }
}

impl Store for SqliteStore {
    async fn save_item(&self, item: &LearningItem, source: &str) -> Result<bool, StoreError> {
        insert_item(&self.writer, item, source, Utc::now()).await
    }

    async fn item_versions(&self, id: &str) -> Result<Vec<StoredItem>, StoreError> {
        let rows: Vec<ItemRow> = sqlx::query_as(&format!(
            "SELECT {ITEM_COLUMNS} FROM items WHERE id = ? ORDER BY seq"
        ))
        .bind(id)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows.into_iter().map(StoredItem::from).collect())
    }

    async fn latest_item(&self, id: &str) -> Result<Option<StoredItem>, StoreError> {
        let row: Option<ItemRow> = sqlx::query_as(&format!(
            "SELECT {ITEM_COLUMNS} FROM items WHERE id = ? ORDER BY seq DESC LIMIT 1"
        ))
        .bind(id)
        .fetch_optional(&self.pool)
        .await?;
        Ok(row.map(StoredItem::from))
    }

    async fn import(
        &self,
        file: &DirectoryFile,
        path: &Path,
        taxonomy: &Taxonomy,
    ) -> Result<super::ImportSummary, StoreError> {
        import::import(&self.writer, file, path, taxonomy).await
    }

    async fn import_directory(
        &self,
        files: &[(&Path, &DirectoryFile)],
        taxonomy: &Taxonomy,
        audiences: &[crate::RunningAudience],
        now: i64,
        dry_run: bool,
    ) -> Result<crate::DirectoryImport, StoreError> {
        import::import_directory(&self.writer, files, taxonomy, audiences, now, dry_run).await
    }

    async fn people(&self, active_only: bool) -> Result<Vec<StoredPerson>, StoreError> {
        self.people_in_reads(active_only, PEOPLE_PER_READ).await
    }

    async fn person(&self, id: &str) -> Result<Option<StoredPerson>, StoreError> {
        let row: Option<PersonRow> =
            sqlx::query_as(&format!("SELECT {PERSON_COLUMNS} FROM people WHERE id = ?"))
                .bind(id)
                .fetch_optional(&self.pool)
                .await?;
        let Some(row) = row else { return Ok(None) };
        let roles: Vec<String> =
            sqlx::query_scalar("SELECT role FROM person_roles WHERE person_id = ? ORDER BY role")
                .bind(id)
                .fetch_all(&self.pool)
                .await?;
        Ok(Some(stored_person(row, roles)))
    }

    async fn agencies(&self) -> Result<Vec<Agency>, StoreError> {
        Ok(
            sqlx::query_as("SELECT id, name, kind FROM agencies ORDER BY id")
                .fetch_all(&self.pool)
                .await?,
        )
    }

    async fn teams(&self) -> Result<Vec<Team>, StoreError> {
        Ok(
            sqlx::query_as("SELECT id, agency_id, name FROM teams ORDER BY id")
                .fetch_all(&self.pool)
                .await?,
        )
    }

    async fn champions(&self) -> Result<Vec<Champion>, StoreError> {
        let rows: Vec<ChampionTeamRow> = sqlx::query_as(
            "SELECT c.person_id, c.theme, t.team_id
             FROM champions c JOIN champion_teams t USING (person_id, theme)
             WHERE c.active
             ORDER BY c.person_id, c.theme, t.team_id",
        )
        .fetch_all(&self.pool)
        .await?;
        Ok(crate::rows::group_champions(rows))
    }

    async fn identities(&self, person_id: &str) -> Result<Vec<ChannelIdentity>, StoreError> {
        Ok(sqlx::query_as(
            "SELECT person_id, channel, address FROM channel_identities
             WHERE person_id = ? ORDER BY channel, address",
        )
        .bind(person_id)
        .fetch_all(&self.pool)
        .await?)
    }
}

/// Keeps one item version through `conn` (the pool, or a transaction's
/// connection); true when the version is new.
pub(super) async fn insert_item(
    conn: impl sqlx::SqliteExecutor<'_>,
    item: &LearningItem,
    source: &str,
    seen_at: DateTime<Utc>,
) -> Result<bool, StoreError> {
    let embargoed_until = match item.status {
        Status::Embargoed(until) => Some(until),
        _ => None,
    };
    let result = sqlx::query(
        "INSERT INTO items (id, version, kind, title, status, embargoed_until, source, first_seen_at)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?)
         ON CONFLICT (id, version) DO NOTHING",
    )
    .bind(&item.id)
    .bind(&item.version.0)
    .bind(item.kind_name())
    .bind(&item.title)
    .bind(item.status.name())
    .bind(embargoed_until)
    .bind(source)
    .bind(seen_at)
    .execute(conn)
    .await?;
    Ok(result.rows_affected() == 1)
}

#[cfg(test)]
mod tests {
    use super::in_memory;

    /// With several connections in WAL mode, a deferred transaction that
    /// reads and then writes fails at once with "database is locked" when
    /// another connection wrote in between (the busy timeout does not
    /// apply to the upgrade), so every write transaction takes the write
    /// lock when it begins. A read-only snapshot is marked `// read-only:`
    /// on the line before its begin.
    #[test]
    fn every_write_transaction_begins_immediate() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src/sqlite");
        let mut deferred = Vec::new();
        let mut on_readers = Vec::new();
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.extension().is_none_or(|e| e != "rs")
                || path.file_name().is_some_and(|n| n == "test_support.rs")
            {
                continue;
            }
            let text = std::fs::read_to_string(&path).unwrap();
            // Test modules come last in each file.
            let code = text.split("#[cfg(test)]\nmod ").next().unwrap();
            let lines: Vec<&str> = code.lines().collect();
            for (n, line) in lines.iter().enumerate() {
                // A read-only snapshot says so on the line before.
                let read_only = n > 0 && lines[n - 1].trim_start().starts_with("// read-only:");
                if line.contains(".begin()") && !read_only {
                    deferred.push(format!("{}:{}", path.display(), n + 1));
                }
                // Writes queue on the write connection (`SqliteStore::writer`).
                if line.contains("self.pool.begin_with") || line.contains("store.pool.begin_with") {
                    on_readers.push(format!("{}:{}", path.display(), n + 1));
                }
            }
        }
        assert!(
            deferred.is_empty(),
            "use begin_with(\"BEGIN IMMEDIATE\") at {deferred:?}"
        );
        assert!(
            on_readers.is_empty(),
            "begin write transactions on self.writer, not self.pool, at {on_readers:?}"
        );
    }

    #[test]
    fn only_urls_naming_memory_are_kept_off_disk() {
        assert!(in_memory("sqlite::memory:"));
        assert!(in_memory("sqlite://:memory:"));
        assert!(in_memory("sqlite://shared?mode=memory&cache=shared"));
        assert!(!in_memory("sqlite:///var/lib/cascade/cascade.db"));
        assert!(!in_memory("sqlite://cascade.db?mode=rwc"));
        assert!(!in_memory(".cascade/cascade.db"));
    }
}
