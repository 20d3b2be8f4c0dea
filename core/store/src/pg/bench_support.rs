//! Bench-only writes on PostgreSQL (test-support): the raw baselines the
//! store's own paths are measured against (issue 18's benchmarks).

use super::PgStore;
use crate::{NewMember, StoreError};
use cascade_model::directory::Person;

impl PgStore {
    /// The raw baseline for planning: `members` written into
    /// `rollout_members` of `rollout_id` by one `COPY ... FROM STDIN` in
    /// one transaction, from memory: no reading, no checks. Each member
    /// comes with the team and agency it is written with (`team_id`,
    /// `agency_id`), as planning writes them.
    pub async fn copy_members(
        &self,
        rollout_id: &str,
        members: &[(NewMember, &str, &str)],
    ) -> Result<(), StoreError> {
        let mut tx = self.pool().begin().await?;
        let mut copy = tx
            .copy_in_raw(
                "COPY rollout_members (rollout_id, person_id, wave, next_due_at, team_id, agency_id) FROM STDIN",
            )
            .await?;
        let mut buffer = Vec::with_capacity(1 << 20);
        for (m, team, agency) in members {
            buffer.extend_from_slice(
                format!(
                    "{rollout_id}\t{}\t{}\t{}\t{team}\t{agency}\n",
                    m.person_id, m.wave, m.first_due_at
                )
                .as_bytes(),
            );
            if buffer.len() >= 1 << 20 {
                copy.send(std::mem::take(&mut buffer)).await?;
            }
        }
        if !buffer.is_empty() {
            copy.send(buffer).await?;
        }
        copy.finish().await?;
        tx.commit().await?;
        Ok(())
    }

    /// The raw baseline for a people import: the `people` rows alone, by
    /// one `COPY ... FROM STDIN` in one transaction, from memory: no
    /// reading, no checks, no roles or identities.
    pub async fn copy_people(&self, people: &[Person]) -> Result<(), StoreError> {
        let mut tx = self.pool().begin().await?;
        sqlx::query("SET LOCAL statement_timeout = 0")
            .execute(&mut *tx)
            .await?;
        let mut copy = super::import::Copy::new();
        for p in people {
            copy.row(&[
                Some(&p.id),
                Some(&p.display_name),
                Some(&p.email),
                Some(&p.agency_id),
                Some(&p.team_id),
                p.manager_id.as_deref(),
                Some("2026-12-03T00:00:00+00:00"),
            ]);
        }
        copy.send(
            &mut tx,
            "COPY people (id, display_name, email, agency_id, team_id, manager_id, updated_at)
             FROM STDIN",
        )
        .await?;
        tx.commit().await?;
        Ok(())
    }
}

/// A connection of its own that watches a PostgreSQL store from outside
/// while `cascade serve` processes work on it (issue 18's dispatch bench):
/// how many deliveries are recorded as sent, and what cascade's backends
/// are doing (`pg_stat_activity`). It names itself `cascade-bench-probe`,
/// so it is not among the backends it samples, and gives its own backend's
/// process id so that its CPU can be left out of PostgreSQL's.
pub struct PgProbe {
    conn: sqlx::PgConnection,
    backend_pid: u32,
}

/// One backend of cascade's as `pg_stat_activity` showed it.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct ProbedBackend {
    pub pid: i32,
    /// `active`, or `idle in transaction` (between two statements of an
    /// open transaction, holding its locks).
    pub state: String,
    pub wait_event_type: Option<String>,
    pub wait_event: Option<String>,
    /// The statement it runs (or last ran), as PostgreSQL shows it.
    pub query: String,
    /// Whether it holds the evidence chain's advisory lock, which every
    /// transaction that appends to the chain takes first and keeps until
    /// it ends (`chain::lock`, which links listed sends first): a
    /// recording of sends does not (it lists them), the linking of listed
    /// sends after it does.
    pub holds_chain_lock: bool,
}

/// The outbox's sent rows: how many, the first and last `sent_at` (Unix
/// ms), and how many each dispatcher (`lease_owner`) recorded.
#[derive(Debug, Clone, Default)]
pub struct SentRows {
    pub count: u64,
    /// Distinct (`lease_owner`, `sent_at`): about how many transactions
    /// recorded them (a dispatcher records a group at one `now`).
    pub groups: u64,
    pub first_at: Option<i64>,
    pub last_at: Option<i64>,
    pub by_owner: Vec<(Option<String>, u64)>,
}

impl PgProbe {
    /// Connects to the database at `url` (no pool, no migrations).
    pub async fn connect(url: &str) -> Result<PgProbe, StoreError> {
        use sqlx::Connection;
        use std::str::FromStr;
        let options = sqlx::postgres::PgConnectOptions::from_str(url)?
            .application_name("cascade-bench-probe");
        let mut conn = sqlx::PgConnection::connect_with(&options).await?;
        let pid: i32 = sqlx::query_scalar("SELECT pg_backend_pid()")
            .fetch_one(&mut conn)
            .await?;
        Ok(PgProbe {
            conn,
            backend_pid: u32::try_from(pid).unwrap_or(0),
        })
    }

    /// The process id of this probe's own backend.
    pub fn backend_pid(&self) -> u32 {
        self.backend_pid
    }

    /// `SELECT count(*) FROM outbox WHERE state = 'sent'`.
    pub async fn sent(&mut self) -> Result<u64, StoreError> {
        let n: i64 = sqlx::query_scalar("SELECT count(*) FROM outbox WHERE state = 'sent'")
            .fetch_one(&mut self.conn)
            .await?;
        Ok(u64::try_from(n).unwrap_or(0))
    }

    /// Sends recorded but not linked into the evidence chain yet (rows of
    /// `chain_pending`).
    pub async fn waiting_to_link(&mut self) -> Result<u64, StoreError> {
        let n: i64 = sqlx::query_scalar("SELECT count(*) FROM chain_pending")
            .fetch_one(&mut self.conn)
            .await?;
        Ok(u64::try_from(n).unwrap_or(0))
    }

    /// The sent rows' count, first and last `sent_at`, and count by
    /// dispatcher.
    pub async fn sent_rows(&mut self) -> Result<SentRows, StoreError> {
        /// A dispatcher's sent rows: how many, first and last `sent_at`.
        type ByOwner = (Option<String>, i64, Option<i64>, Option<i64>);
        let rows: Vec<ByOwner> = sqlx::query_as(
            "SELECT lease_owner, count(*), min(sent_at), max(sent_at) FROM outbox
             WHERE state = 'sent' GROUP BY lease_owner ORDER BY lease_owner",
        )
        .fetch_all(&mut self.conn)
        .await?;
        let mut sent = SentRows::default();
        for (owner, n, first, last) in rows {
            let n = u64::try_from(n).unwrap_or(0);
            sent.count += n;
            sent.first_at = match (sent.first_at, first) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            };
            sent.last_at = sent.last_at.max(last);
            sent.by_owner.push((owner, n));
        }
        let groups: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM (SELECT DISTINCT lease_owner, sent_at FROM outbox
                                   WHERE state = 'sent') g",
        )
        .fetch_one(&mut self.conn)
        .await?;
        sent.groups = u64::try_from(groups).unwrap_or(0);
        Ok(sent)
    }

    /// The backends whose `application_name` is `application` and that
    /// are active or idle inside a transaction, at this moment.
    pub async fn backends(&mut self, application: &str) -> Result<Vec<ProbedBackend>, StoreError> {
        // A bigint advisory key shows as its high half in classid, its low
        // half in objid, with objsubid 1.
        Ok(sqlx::query_as(
            "WITH holder AS (SELECT pid FROM pg_locks
                             WHERE locktype = 'advisory' AND granted AND objsubid = 1
                               AND ((classid::bigint << 32) | objid::bigint) = $2)
             SELECT pid, state, wait_event_type, wait_event, query,
                    pid IN (SELECT pid FROM holder) AS holds_chain_lock
             FROM pg_stat_activity
             WHERE application_name = $1 AND state IN ('active', 'idle in transaction')",
        )
        .bind(application)
        .bind(super::chain::CHAIN_LOCK)
        .fetch_all(&mut self.conn)
        .await?)
    }

    /// Closes the connection.
    pub async fn close(self) {
        use sqlx::Connection;
        let _ = self.conn.close().await;
    }
}
