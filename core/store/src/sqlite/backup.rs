//! Backups of the SQLite store: a consistent copy taken while `cascade serve`
//! keeps writing (`VACUUM INTO` reads one snapshot and does not hold up
//! writers in WAL mode), checked before it is called done, and a restore
//! that checks the copy, refuses while the database is open elsewhere and
//! keeps the database it replaces.

use super::SqliteStore;
use crate::StoreError;
use sqlx::Row;
use sqlx::sqlite::{SqliteConnectOptions, SqlitePoolOptions};
use std::path::{Path, PathBuf};

/// What a checked backup holds, to tell the person who made or restores it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BackupSummary {
    /// The file's size.
    pub bytes: u64,
    /// The newest schema migration in it.
    pub schema_version: i64,
    /// Whether this cascade has migrations the backup has not had yet
    /// (they are applied when the restored store is next opened).
    pub older_schema: bool,
    pub people: i64,
    pub rollouts: i64,
    pub deliveries: i64,
    pub acknowledgements: i64,
}

/// Where a restore put things.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RestoreSummary {
    pub restored: BackupSummary,
    /// The database the backup replaced, kept beside it (none when there
    /// was no database yet).
    pub replaced_kept_at: Option<PathBuf>,
}

impl SqliteStore {
    /// Writes a consistent copy of the whole database to `out`, a file that
    /// must not exist yet. The copy is written beside `out` as
    /// `<out>.partial`, checked (integrity and schema) and only then renamed
    /// to `out`, so `out` is never a half-written backup. It is private to
    /// its owner, as the database is.
    pub async fn backup_to(&self, out: &Path) -> Result<BackupSummary, StoreError> {
        if out.exists() {
            return Err(backup_error(
                out,
                "already exists",
                "choose a new file name, or move the old backup away first",
            ));
        }
        let partial = with_suffix(out, ".partial");
        // A partial file is only ever left by a backup that was stopped.
        let _ = std::fs::remove_file(&partial);
        if let Some(folder) = out.parent()
            && !folder.as_os_str().is_empty()
        {
            cascade_model::private_file::create_dir(folder).map_err(|e| {
                backup_error(out, &e.to_string(), "choose a folder you can write to")
            })?;
        }
        // An empty file is allowed by VACUUM INTO; making it first makes
        // the copy 0600 from its first byte.
        cascade_model::private_file::create_empty(&partial)
            .map_err(|e| backup_error(out, &e.to_string(), "choose a folder you can write to"))?;
        let written = sqlx::query("VACUUM INTO ?")
            .bind(partial.to_string_lossy().into_owned())
            .execute(&self.pool)
            .await;
        if let Err(e) = written {
            let _ = std::fs::remove_file(&partial);
            return Err(e.into());
        }
        let summary = match check_backup(&partial).await {
            Ok(summary) => summary,
            Err(e) => {
                let _ = std::fs::remove_file(&partial);
                return Err(e);
            }
        };
        sync_file(&partial)
            .and_then(|()| std::fs::rename(&partial, out))
            .and_then(|()| sync_parent(out))
            .map_err(|e| {
                backup_error(out, &e.to_string(), "check the disk has room and try again")
            })?;
        Ok(summary)
    }
}

impl SqliteStore {
    /// SQLite's quick integrity check of the open database: what it found
    /// wrong, or nothing.
    pub async fn quick_check(&self) -> Result<Vec<String>, StoreError> {
        let answers: Vec<String> = sqlx::query_scalar("PRAGMA quick_check")
            .fetch_all(&self.pool)
            .await?;
        Ok(answers.into_iter().filter(|a| a != "ok").collect())
    }
}

/// Checks that `path` is a whole cascade database this cascade can open:
/// SQLite's integrity check passes and every migration in it is one this
/// cascade knows. Opens it read-only.
pub async fn check_backup(path: &Path) -> Result<BackupSummary, StoreError> {
    let not_a_backup = |why: &str| {
        backup_error(
            path,
            why,
            "give a file written by `cascade backup` (it is an SQLite database)",
        )
    };
    let bytes = std::fs::metadata(path)
        .map_err(|e| not_a_backup(&format!("cannot be read ({e})")))?
        .len();
    let options = SqliteConnectOptions::new()
        .filename(path)
        .read_only(true)
        .immutable(true);
    let pool = SqlitePoolOptions::new()
        .max_connections(1)
        .connect_with(options)
        .await
        .map_err(|e| not_a_backup(&unreadable(&e)))?;
    let result = summarise(&pool, path, bytes).await;
    pool.close().await;
    result
}

async fn summarise(
    pool: &sqlx::SqlitePool,
    path: &Path,
    bytes: u64,
) -> Result<BackupSummary, StoreError> {
    let not_a_backup = |why: &str| {
        backup_error(
            path,
            why,
            "give a file written by `cascade backup` (it is an SQLite database)",
        )
    };
    let integrity: Vec<String> = sqlx::query_scalar("PRAGMA integrity_check")
        .fetch_all(pool)
        .await
        .map_err(|e| not_a_backup(&unreadable(&e)))?;
    if integrity != ["ok"] {
        let first = integrity.first().cloned().unwrap_or_default();
        return Err(backup_error(
            path,
            &format!("is damaged (SQLite's integrity check: {first})"),
            "use an earlier backup",
        ));
    }
    let applied: Vec<i64> =
        sqlx::query_scalar("SELECT version FROM _sqlx_migrations WHERE success ORDER BY version")
            .fetch_all(pool)
            .await
            .map_err(|_| not_a_backup("is not a cascade database (it has no schema history)"))?;
    let known: Vec<i64> = sqlx::migrate!().iter().map(|m| m.version).collect();
    if let Some(unknown) = applied.iter().find(|v| !known.contains(v)) {
        return Err(backup_error(
            path,
            &format!("was made by a newer cascade (schema migration {unknown} is unknown here)"),
            "restore it with that cascade version or a later one",
        ));
    }
    let Some(&schema_version) = applied.last() else {
        return Err(not_a_backup(
            "is not a cascade database (no schema applied)",
        ));
    };
    let count = |table: &'static str| async move {
        sqlx::query(&format!("SELECT count(*) FROM {table}"))
            .fetch_one(pool)
            .await
            .map(|row| row.get::<i64, _>(0))
    };
    Ok(BackupSummary {
        bytes,
        schema_version,
        older_schema: applied.len() < known.len(),
        people: count("people").await?,
        rollouts: count("rollouts").await?,
        deliveries: count("outbox").await?,
        acknowledgements: count("acknowledgements").await?,
    })
}

/// Puts the backup at `backup` in place of the database at `database`,
/// after checking it. Refuses while any process has the database open (a
/// running `cascade serve`), since it would go on writing to the file that
/// was replaced. The replaced database is kept beside it as
/// `<database>.before-restore-<time>`; its WAL is checkpointed into it first.
pub async fn restore(database: &Path, backup: &Path) -> Result<RestoreSummary, StoreError> {
    let restored = check_backup(backup).await?;
    if open_elsewhere(database) {
        return Err(backup_error(
            database,
            "is open in another process",
            "stop `cascade serve` (and any other cascade command on this project) first, then restore again",
        ));
    }
    let incoming = with_suffix(database, ".restoring");
    let _ = std::fs::remove_file(&incoming);
    cascade_model::private_file::create_empty(&incoming)
        .and_then(|_| std::fs::copy(backup, &incoming).map(|_| ()))
        .and_then(|()| sync_file(&incoming))
        .map_err(|e| backup_error(database, &e.to_string(), "check the disk has room"))?;
    let replaced_kept_at = if database.exists() {
        // Fold the WAL into the file so the kept database is whole alone.
        let current = SqliteStore::open(&database.to_string_lossy()).await?;
        sqlx::query("PRAGMA wal_checkpoint(TRUNCATE)")
            .execute(&current.pool)
            .await?;
        current.close().await;
        let stamp = chrono::Utc::now().format("%Y%m%dT%H%M%SZ");
        let kept = with_suffix(database, &format!(".before-restore-{stamp}"));
        std::fs::rename(database, &kept)
            .map_err(|e| backup_error(database, &e.to_string(), "check the folder is writable"))?;
        for suffix in ["-wal", "-shm"] {
            let _ = std::fs::remove_file(with_suffix(database, suffix));
        }
        Some(kept)
    } else {
        None
    };
    std::fs::rename(&incoming, database)
        .and_then(|()| sync_parent(database))
        .map_err(|e| backup_error(database, &e.to_string(), "check the folder is writable"))?;
    Ok(RestoreSummary {
        restored,
        replaced_kept_at,
    })
}

/// Whether another process has the database open. Every SQLite connection
/// to a WAL database holds a read lock on one byte of its `-shm` file (the
/// "DMS" byte, offset 128 in SQLite's unix VFS) for as long as it is open;
/// a write lock there is refused while any other process holds it.
#[cfg(unix)]
fn open_elsewhere(database: &Path) -> bool {
    use std::os::fd::AsRawFd;
    let Ok(shm) = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(with_suffix(database, "-shm"))
    else {
        return false;
    };
    // SAFETY: `flock` is plain data, zeroed is a valid value, and `fd` is an
    // open descriptor for the duration of the call.
    let mut lock: libc::flock = unsafe { std::mem::zeroed() };
    lock.l_type = libc::F_WRLCK as _;
    lock.l_whence = libc::SEEK_SET as _;
    lock.l_start = 128;
    lock.l_len = 1;
    // SAFETY: as above; F_GETLK only reads and fills `lock`.
    let answered = unsafe { libc::fcntl(shm.as_raw_fd(), libc::F_GETLK, &mut lock) };
    answered == 0 && i32::from(lock.l_type) != libc::F_UNLCK
}

#[cfg(not(unix))]
fn open_elsewhere(_database: &Path) -> bool {
    false
}

/// SQLite's own words for why a file cannot be read, without sqlx's wrapping.
fn unreadable(error: &sqlx::Error) -> String {
    let why = match error {
        sqlx::Error::Database(e) => e.message().to_owned(),
        other => other.to_string(),
    };
    format!("cannot be read as a cascade database ({why})")
}

fn backup_error(path: &Path, why: &str, fix: &str) -> StoreError {
    StoreError::Backup {
        path: path.display().to_string(),
        why: why.to_owned(),
        fix: fix.to_owned(),
    }
}

fn with_suffix(path: &Path, suffix: &str) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(suffix);
    PathBuf::from(name)
}

fn sync_file(path: &Path) -> std::io::Result<()> {
    std::fs::File::open(path)?.sync_all()
}

fn sync_parent(path: &Path) -> std::io::Result<()> {
    #[cfg(unix)]
    if let Some(parent) = path.parent() {
        let parent = if parent.as_os_str().is_empty() {
            Path::new(".")
        } else {
            parent
        };
        std::fs::File::open(parent)?.sync_all()?;
    }
    #[cfg(not(unix))]
    let _ = path;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn store_in(dir: &Path) -> SqliteStore {
        SqliteStore::open(&dir.join("cascade.db").to_string_lossy())
            .await
            .unwrap()
    }

    /// Backups taken while writers commit pairs of rows: each backup holds
    /// whole transactions only (both rows of a pair or neither) and passes
    /// the check, and the writers were never refused.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_backup_under_concurrent_writes_is_one_consistent_snapshot() {
        let dir = tempfile::tempdir().unwrap();
        let store = store_in(dir.path()).await;
        for table in ["pair_a", "pair_b"] {
            sqlx::query(&format!(
                "CREATE TABLE {table} (id INTEGER PRIMARY KEY, filler BLOB)"
            ))
            .execute(&store.pool)
            .await
            .unwrap();
        }
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let mut writers = Vec::new();
        for writer in 0..2i64 {
            let (pool, stop) = (store.pool.clone(), stop.clone());
            writers.push(tokio::spawn(async move {
                let mut n = 0i64;
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    let id = writer * 1_000_000 + n;
                    let mut tx = pool.begin().await.unwrap();
                    for table in ["pair_a", "pair_b"] {
                        sqlx::query(&format!(
                            "INSERT INTO {table} (id, filler) VALUES (?, zeroblob(2000))"
                        ))
                        .bind(id)
                        .execute(&mut *tx)
                        .await
                        .unwrap();
                    }
                    tx.commit().await.unwrap();
                    n += 1;
                }
                n
            }));
        }
        let mut sizes = Vec::new();
        for round in 0..4 {
            tokio::time::sleep(std::time::Duration::from_millis(150)).await;
            let out = dir.path().join(format!("backups/round-{round}.db"));
            let summary = store.backup_to(&out).await.unwrap();
            assert!(!with_suffix(&out, ".partial").exists());
            let copy = SqlitePoolOptions::new()
                .connect_with(SqliteConnectOptions::new().filename(&out).read_only(true))
                .await
                .unwrap();
            let a: i64 = sqlx::query_scalar("SELECT count(*) FROM pair_a")
                .fetch_one(&copy)
                .await
                .unwrap();
            let b: i64 = sqlx::query_scalar("SELECT count(*) FROM pair_b")
                .fetch_one(&copy)
                .await
                .unwrap();
            copy.close().await;
            assert_eq!(a, b, "round {round}: a transaction was cut in two");
            sizes.push((a, summary.bytes));
        }
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
        let mut written = 0;
        for writer in writers {
            written += writer.await.unwrap();
        }
        assert!(written > 0);
        assert!(
            sizes.windows(2).all(|w| w[0].0 <= w[1].0) && sizes[3].0 > 0,
            "later backups hold at least what earlier ones did: {sizes:?}"
        );
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(dir.path().join("backups/round-0.db"))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600);
        }
    }

    #[tokio::test]
    async fn a_backup_never_overwrites_a_file() {
        let dir = tempfile::tempdir().unwrap();
        let store = store_in(dir.path()).await;
        let out = dir.path().join("taken.db");
        std::fs::write(&out, b"an earlier backup").unwrap();
        let error = store.backup_to(&out).await.unwrap_err().to_string();
        assert!(error.contains("already exists"), "{error}");
        assert_eq!(std::fs::read(&out).unwrap(), b"an earlier backup");
    }

    #[tokio::test]
    async fn damaged_foreign_and_newer_files_are_refused_with_what_to_do() {
        let dir = tempfile::tempdir().unwrap();
        let store = store_in(dir.path()).await;
        let good = dir.path().join("good.db");
        store.backup_to(&good).await.unwrap();
        store.close().await;

        let text = dir.path().join("notes.txt");
        std::fs::write(&text, "not a database at all, just some words ".repeat(200)).unwrap();
        let error = check_backup(&text).await.unwrap_err().to_string();
        assert!(
            error.contains("help: give a file written by `cascade backup`"),
            "{error}"
        );

        // A page in the middle overwritten: SQLite's own check finds it.
        let damaged = dir.path().join("damaged.db");
        let mut bytes = std::fs::read(&good).unwrap();
        let page = 4096;
        assert!(bytes.len() > 4 * page);
        for byte in &mut bytes[3 * page..3 * page + 200] {
            *byte = 0xA5;
        }
        std::fs::write(&damaged, bytes).unwrap();
        let error = check_backup(&damaged).await.unwrap_err().to_string();
        assert!(
            error.contains("damaged") || error.contains("not a"),
            "{error}"
        );

        let foreign = dir.path().join("foreign.db");
        let pool = SqlitePoolOptions::new()
            .connect_with(
                SqliteConnectOptions::new()
                    .filename(&foreign)
                    .create_if_missing(true),
            )
            .await
            .unwrap();
        sqlx::query("CREATE TABLE t (x)")
            .execute(&pool)
            .await
            .unwrap();
        pool.close().await;
        let error = check_backup(&foreign).await.unwrap_err().to_string();
        assert!(error.contains("not a cascade database"), "{error}");

        let newer = dir.path().join("newer.db");
        std::fs::copy(&good, &newer).unwrap();
        let pool = SqlitePoolOptions::new()
            .connect_with(SqliteConnectOptions::new().filename(&newer))
            .await
            .unwrap();
        sqlx::query(
            "INSERT INTO _sqlx_migrations (version, description, success, checksum, execution_time)
             VALUES (29991231000000, 'from the future', 1, x'00', 0)",
        )
        .execute(&pool)
        .await
        .unwrap();
        pool.close().await;
        let error = check_backup(&newer).await.unwrap_err().to_string();
        assert!(error.contains("newer cascade"), "{error}");

        assert!(check_backup(&good).await.is_ok());
    }

    #[tokio::test]
    async fn a_restore_keeps_the_database_it_replaces_and_reads_back_the_backup() {
        let dir = tempfile::tempdir().unwrap();
        let store = store_in(dir.path()).await;
        sqlx::query("CREATE TABLE marks (reason TEXT)")
            .execute(&store.pool)
            .await
            .unwrap();
        sqlx::query("INSERT INTO marks VALUES ('before')")
            .execute(&store.pool)
            .await
            .unwrap();
        let backup = dir.path().join("b.db");
        store.backup_to(&backup).await.unwrap();
        sqlx::query("INSERT INTO marks VALUES ('after')")
            .execute(&store.pool)
            .await
            .unwrap();
        store.close().await;

        let database = dir.path().join("cascade.db");
        let summary = restore(&database, &backup).await.unwrap();
        let kept = summary.replaced_kept_at.expect("the old database is kept");
        let reasons = |path: PathBuf| async move {
            let store = SqliteStore::open(&path.to_string_lossy()).await.unwrap();
            let r: Vec<String> = sqlx::query_scalar("SELECT reason FROM marks ORDER BY reason")
                .fetch_all(&store.pool)
                .await
                .unwrap();
            store.close().await;
            r
        };
        assert_eq!(reasons(database).await, ["before"]);
        assert_eq!(reasons(kept).await, ["after", "before"]);
    }
}
