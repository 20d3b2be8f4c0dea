//! The PostgreSQL store (issue 18): for a regional or national programme,
//! and for several `cascade serve` processes sharing one database so that
//! losing a machine does not stop reminders and acknowledgements.
//! Selected by `[store] url = "postgres://..."`; its migrations live in
//! `core/store/migrations-pg/` (the same schema as SQLite's, in
//! PostgreSQL's types; see that folder's README).
//!
//! Every store trait is implemented here as in `sqlite/`, one module a
//! trait; the store's tests run against both (`on_both_stores!` in
//! `both.rs`).

#[cfg(any(test, feature = "test-support"))]
mod bench_support;
#[cfg(any(test, feature = "test-support"))]
pub use bench_support::{PgProbe, ProbedBackend, SentRows};
#[cfg(any(test, feature = "test-support"))]
pub mod test_server;

mod accounts;
mod annual;
mod audience;
mod audience_query;
mod bulletins;
pub(crate) mod chain;
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
mod reports;
mod store;
mod team_posts;
mod wakeups;

use super::StoreError;
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions, PgSslMode};
use std::str::FromStr;
use std::time::Duration;

/// How to reach the database: from `[store]` in cascade.toml, with the
/// password from the environment or a file (never from cascade.toml).
#[derive(Debug, Clone)]
pub struct PgSettings {
    /// `postgres://user@host:port/database`, without a password.
    pub url: String,
    /// The password, if the server asks for one.
    pub password: Option<String>,
    /// Connections this process keeps at most.
    pub max_connections: u32,
    /// How long one statement may run before the server cancels it.
    pub statement_timeout: Duration,
    /// How long to wait for a free connection (and, at start, for the
    /// server) before giving up with an error.
    pub connect_timeout: Duration,
    /// TLS to the server: `disable`, `prefer`, `require`, `verify-ca` or
    /// `verify-full` (libpq's names).
    pub tls: String,
    /// A CA certificate file for `verify-ca` and `verify-full`.
    pub tls_root_cert: Option<std::path::PathBuf>,
}

impl PgSettings {
    /// Settings with the defaults for `url`.
    pub fn new(url: impl Into<String>) -> Self {
        PgSettings {
            url: url.into(),
            password: None,
            max_connections: 10,
            statement_timeout: Duration::from_secs(60),
            connect_timeout: Duration::from_secs(10),
            tls: "prefer".to_owned(),
            tls_root_cert: None,
        }
    }

    /// Checks the URL without connecting: a PostgreSQL URL, and no
    /// password in it. The message names the fix (and never the password).
    pub fn check(&self) -> Result<(), String> {
        let not_postgres = |why: &str| {
            format!(
                "[store] url is not a PostgreSQL URL ({why}); write it as postgres://user@host:5432/database"
            )
        };
        if !(self.url.starts_with("postgres://") || self.url.starts_with("postgresql://")) {
            return Err(not_postgres("it must start with postgres://"));
        }
        let rest = self.url.split_once("://").map_or("", |(_, rest)| rest);
        let authority = rest.split(['/', '?']).next().unwrap_or("");
        if authority
            .rsplit_once('@')
            .is_some_and(|(user, _)| user.contains(':'))
        {
            return Err(
                "[store] url holds a password; take it out of cascade.toml and give it in the environment variable CASCADE_STORE_PASSWORD or in a file named by [store] password_file".to_owned(),
            );
        }
        PgConnectOptions::from_str(&self.url)
            .map(|_| ())
            .map_err(|e| not_postgres(&e.to_string()))
    }

    fn options(&self) -> Result<PgConnectOptions, StoreError> {
        self.check().map_err(StoreError::Config)?;
        let mut options = PgConnectOptions::from_str(&self.url)
            .map_err(|e| StoreError::Config(format!("[store] url: {e}")))?;
        if let Some(password) = &self.password {
            options = options.password(password);
        }
        let mode = PgSslMode::from_str(&self.tls).map_err(|_| {
            StoreError::Config(format!(
                "[store] tls = \"{}\" is not known; use disable, prefer, require, verify-ca or verify-full",
                self.tls
            ))
        })?;
        options = options.ssl_mode(mode);
        if let Some(ca) = &self.tls_root_cert {
            options = options.ssl_root_cert(ca);
        }
        let timeout_ms = self.statement_timeout.as_millis().to_string();
        Ok(options
            .application_name("cascade")
            .options([("statement_timeout", timeout_ms.as_str())]))
    }
}

/// The store in one PostgreSQL database.
#[derive(Debug, Clone)]
pub struct PgStore {
    pool: PgPool,
    /// Whether evidence is appended to the evidence chain: always, but
    /// for the benchmark that measures what the chain costs.
    #[allow(dead_code)]
    chained: bool,
    /// The `LISTEN` connection that wakes an idle serve (see
    /// [`crate::Wakeups`]), shared by clones.
    listener: std::sync::Arc<wakeups::Listener>,
}

impl PgStore {
    /// Connects and applies migrations. An unreachable server is an error
    /// naming the address and what to check.
    pub async fn connect(settings: &PgSettings) -> Result<Self, StoreError> {
        let options = settings.options()?;
        // A slow statement or a wait for a connection is normal under load
        // and its log line carries the statement: debug, not a warning.
        let options = sqlx::ConnectOptions::log_slow_statements(
            options,
            log::LevelFilter::Debug,
            Duration::from_secs(1),
        );
        let pool = PgPoolOptions::new()
            .max_connections(settings.max_connections)
            .acquire_timeout(settings.connect_timeout)
            .acquire_slow_level(log::LevelFilter::Debug)
            .connect_with(options.clone())
            .await
            .map_err(|e| {
                StoreError::Config(format!(
                    "cannot reach the PostgreSQL server at {}:{} ({e}); check that it is running, that [store] url names it, and the password in CASCADE_STORE_PASSWORD or [store] password_file",
                    options.get_host(),
                    options.get_port()
                ))
            })?;
        sqlx::migrate!("./migrations-pg").run(&pool).await?;
        // Its connection is made when a serve first waits for work.
        let listening = PgPoolOptions::new()
            .max_connections(1)
            .acquire_timeout(settings.connect_timeout)
            .idle_timeout(None)
            .max_lifetime(None)
            .connect_lazy_with(options);
        Ok(PgStore {
            pool,
            chained: true,
            listener: std::sync::Arc::new(wakeups::Listener::new(listening)),
        })
    }

    /// The connection pool, for this crate's own modules and tests.
    pub(crate) fn pool(&self) -> &PgPool {
        &self.pool
    }

    /// Closes every connection, waiting for those in use to be returned.
    pub async fn close(&self) {
        self.listener.close().await;
        self.pool.close().await;
    }
}

#[cfg(test)]
mod tests {
    use super::test_server::TestPostgres;
    use super::*;

    #[tokio::test]
    async fn migrations_apply_to_a_fresh_database_and_again() {
        let server = TestPostgres::shared().expect("PostgreSQL for the tests");
        let url = server.new_database().await.unwrap();
        let store = PgStore::connect(&PgSettings::new(&url)).await.unwrap();
        let tables: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM information_schema.tables WHERE table_schema = 'public'",
        )
        .fetch_one(store.pool())
        .await
        .unwrap();
        assert!(tables > 20, "{tables} tables");
        store.close().await;
        // A second start finds them applied.
        PgStore::connect(&PgSettings::new(&url)).await.unwrap();
    }

    /// Every trigger of the PostgreSQL schema does what its SQLite twin
    /// does: check-triggers.sql exercises each and raises, listing them,
    /// if any expectation fails.
    #[tokio::test]
    async fn the_schemas_triggers_keep_counts_stamps_and_refreshers_as_sqlite_does() {
        let server = TestPostgres::shared().expect("PostgreSQL for the tests");
        let url = server.new_database().await.unwrap();
        // The schema alone, as the migration leaves it (connecting also
        // marks the chain backfilled, which the seed checks would see).
        let pool = PgPool::connect(&url).await.unwrap();
        sqlx::migrate!("./migrations-pg").run(&pool).await.unwrap();
        sqlx::raw_sql(include_str!("../../migrations-pg/check-triggers.sql"))
            .execute(&pool)
            .await
            .unwrap_or_else(|e| panic!("{e}"));
    }

    /// The key from rollout_members to rollouts, kept per statement by
    /// triggers (migration 20261218000000), locks the rollouts it names as
    /// the foreign key did: a rollout cannot be deleted under members
    /// being added to it, and once they are committed its delete fails.
    #[tokio::test]
    async fn members_being_added_hold_their_rollout_against_a_delete() {
        let store = test_server::fresh_store().await;
        let pool = store.pool();
        for sql in test_server::ITEM_AND_ROLLOUT {
            sqlx::query(sql).execute(pool).await.unwrap();
        }
        let delete = async || {
            let mut tx = pool.begin().await.unwrap();
            sqlx::query("SET LOCAL lock_timeout = '300ms'")
                .execute(&mut *tx)
                .await
                .unwrap();
            // Its totals row has a key of its own; only members should hold it.
            sqlx::query("DELETE FROM rollout_counts WHERE rollout_id = 'r'")
                .execute(&mut *tx)
                .await
                .unwrap();
            let code = sqlx::query("DELETE FROM rollouts WHERE id = 'r'")
                .execute(&mut *tx)
                .await
                .err()
                .and_then(|e| {
                    e.as_database_error()
                        .and_then(|d| d.code())
                        .map(String::from)
                });
            tx.rollback().await.unwrap();
            code
        };

        let mut adding = pool.begin().await.unwrap();
        sqlx::query(
            "INSERT INTO rollout_members (rollout_id, person_id, wave)
             SELECT 'r', 'p' || n, 0 FROM generate_series(1, 100) n",
        )
        .execute(&mut *adding)
        .await
        .unwrap();
        assert_eq!(
            delete().await.as_deref(),
            Some("55P03"),
            "the delete waits for the members being added"
        );
        adding.commit().await.unwrap();
        assert_eq!(
            delete().await.as_deref(),
            Some("23503"),
            "members hold their rollout"
        );
        let err = sqlx::query("INSERT INTO rollout_members (rollout_id, person_id, wave) VALUES ('r', 'q', 0), ('nowhere', 'q', 0)")
            .execute(pool)
            .await
            .unwrap_err();
        assert_eq!(
            err.as_database_error().and_then(|d| d.code()).as_deref(),
            Some("23503"),
            "{err}"
        );
        let members: i64 = sqlx::query_scalar("SELECT count(*) FROM rollout_members")
            .fetch_one(pool)
            .await
            .unwrap();
        assert_eq!(members, 100);
    }

    #[tokio::test]
    async fn an_unreachable_server_is_a_clear_error() {
        // A port nothing listens on.
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let mut settings = PgSettings::new(format!("postgres://cascade@127.0.0.1:{port}/x"));
        settings.connect_timeout = Duration::from_secs(2);
        let err = PgStore::connect(&settings).await.unwrap_err().to_string();
        assert!(err.contains(&format!("127.0.0.1:{port}")), "{err}");
        assert!(err.contains("check that it is running"), "{err}");
    }

    #[test]
    fn a_password_in_the_url_is_refused_and_never_echoed() {
        let err = PgSettings::new("postgres://cascade:s3cret@db.example:5432/cascade")
            .options()
            .unwrap_err()
            .to_string();
        assert!(err.contains("CASCADE_STORE_PASSWORD"), "{err}");
        assert!(!err.contains("s3cret"), "{err}");
        // A user without a password, and an @ in the query, are fine.
        PgSettings::new("postgres://cascade@db.example/cascade?application_name=a@b")
            .options()
            .unwrap();
    }

    #[test]
    fn a_url_that_is_not_postgres_names_the_fix() {
        let err = PgSettings::new("mysql://x")
            .options()
            .unwrap_err()
            .to_string();
        assert!(err.contains("postgres://user@host:5432/database"), "{err}");
    }
}
