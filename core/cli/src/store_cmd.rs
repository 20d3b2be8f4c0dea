//! `cascade store migrate` and `cascade store copy --from sqlite --to
//! postgres` (issue 18): bring the configured store's schema up to date,
//! and move a partnership from its SQLite file into PostgreSQL.

use anyhow::{Context, Result, bail};
use cascade_engine::project::Project;
use cascade_store::SqliteStore;
use cascade_store::pg::PgStore;
use clap::{Subcommand, ValueEnum};
use std::process::ExitCode;

#[derive(Subcommand)]
pub enum StoreAction {
    /// Bring the store's schema up to date (SQLite, or PostgreSQL when
    /// `[store] url` is set); every other command does this too.
    Migrate,
    /// Copy the whole store, history and evidence chain included, into an
    /// empty PostgreSQL database named by `[store] url`, in one
    /// transaction: either everything arrives or nothing does.
    Copy {
        /// The store to copy from.
        #[arg(long, value_enum)]
        from: Kind,
        /// The store to copy into.
        #[arg(long, value_enum)]
        to: Kind,
    },
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Kind {
    /// The SQLite file at `[store] path`.
    Sqlite,
    /// The PostgreSQL database at `[store] url`.
    Postgres,
}

/// Connects to the PostgreSQL store `[store] url` names, or says how to
/// name one.
async fn postgres(project: &Project) -> Result<PgStore> {
    let settings = project
        .config
        .store
        .postgres(&project.root)
        .map_err(anyhow::Error::msg)?;
    let Some(settings) = settings else {
        bail!(
            "no PostgreSQL store is configured\n  help: add url = \"postgres://user@host:5432/database\" under [store] in cascade.toml, with the password in CASCADE_STORE_PASSWORD or a file named by password_file"
        );
    };
    Ok(PgStore::connect(&settings).await?)
}

pub async fn run(project: &Project, action: StoreAction) -> Result<ExitCode> {
    match action {
        StoreAction::Migrate => {
            if project.config.store.url.is_some() {
                let store = postgres(project).await?;
                store.close().await;
                println!("The PostgreSQL store's schema is up to date.");
            } else {
                let path = project.store_path();
                SqliteStore::open(&path.to_string_lossy())
                    .await?
                    .close()
                    .await;
                println!("The SQLite store {} is up to date.", path.display());
            }
            Ok(ExitCode::SUCCESS)
        }
        StoreAction::Copy { from, to } => {
            if !(from == Kind::Sqlite && to == Kind::Postgres) {
                bail!(
                    "only --from sqlite --to postgres is supported\n  help: to go back to SQLite, restore a `cascade backup` taken before the move"
                );
            }
            let path = project.store_path();
            if !path.exists() {
                bail!(
                    "{}: no SQLite store to copy\n  help: [store] path in cascade.toml names the SQLite file",
                    path.display()
                );
            }
            let target = postgres(project).await?;
            let source = SqliteStore::open(&path.to_string_lossy())
                .await
                .with_context(|| format!("opening {}", path.display()))?;
            eprintln!(
                "Copying {} into PostgreSQL, one table at a time:",
                path.display()
            );
            let started = std::time::Instant::now();
            let summary =
                cascade_store::copy::sqlite_to_postgres(&source, &target, |table, rows| {
                    eprintln!("  {table}: {rows} rows");
                })
                .await;
            source.close().await;
            target.close().await;
            let summary = summary?;
            println!(
                "Copied {} rows in {} tables into PostgreSQL in {:.1} s. The SQLite file is unchanged; keep it until you are sure.",
                summary.rows(),
                summary.tables.len(),
                started.elapsed().as_secs_f64()
            );
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// The project's store, whichever database `[store]` selects.
pub enum Opened {
    /// The SQLite file at `[store] path` (the default).
    Sqlite(SqliteStore),
    /// The PostgreSQL database at `[store] url`.
    Postgres(PgStore),
}

/// Opens the store `[store]` selects: PostgreSQL when `url` is set, else
/// the SQLite file at `path`. Migrations run on open.
pub async fn open(project: &Project) -> Result<Opened> {
    if project.config.store.url.is_some() {
        return Ok(Opened::Postgres(postgres(project).await?));
    }
    // Absolute: the pool opens connections as it needs them, and a command
    // may change the working folder meanwhile (`link-codes --send`).
    let path = std::path::absolute(project.store_path())
        .with_context(|| format!("cannot find {}", project.store_path().display()))?;
    Ok(Opened::Sqlite(
        SqliteStore::open(&path.to_string_lossy())
            .await
            .with_context(|| format!("opening the store {}", path.display()))?,
    ))
}

/// Where the project's store is, for messages: the SQLite file, or the
/// PostgreSQL URL (which never holds the password).
pub fn describe(project: &Project) -> String {
    match &project.config.store.url {
        Some(url) => format!("PostgreSQL at {url}"),
        None => project.store_path().display().to_string(),
    }
}

/// What the commands ask of a store: every trait, the console's accounts
/// and the annual report's too.
pub trait AnyStore:
    cascade_store::AllStores + cascade_store::Accounts + cascade_store::AnnualReports
{
}

impl<S> AnyStore for S where
    S: cascade_store::AllStores + cascade_store::Accounts + cascade_store::AnnualReports
{
}

/// Runs `$body` with `$store` bound to the opened store, whichever it is:
/// the body is compiled once for each store type, so the functions it
/// calls are generic over the store traits.
#[macro_export]
macro_rules! on_store {
    ($opened:expr, $store:ident => $body:expr) => {
        match $opened {
            $crate::store_cmd::Opened::Sqlite($store) => $body,
            $crate::store_cmd::Opened::Postgres($store) => $body,
        }
    };
}

/// `backup` and `restore` copy the SQLite file; they refuse while
/// `[store] url` selects PostgreSQL rather than quietly use that file.
pub fn refuse_postgres_for_now(project: &Project, command: &str) -> Result<()> {
    if project.config.store.url.is_some() {
        bail!(
            "[store] url selects PostgreSQL, and `cascade {command}` works on the SQLite file only\n  help: back up and restore a PostgreSQL store with PostgreSQL's own tools (pg_dump and pg_restore, or your provider's point-in-time recovery); see \"Running on PostgreSQL\" in the README"
        );
    }
    Ok(())
}
