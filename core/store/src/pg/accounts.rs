//! PostgreSQL implementation of [`Accounts`].

use super::PgStore;
use crate::StoreError;
use crate::accounts::*;
use sqlx::Row;

const USER_COLUMNS: &str = "id, name, role, person_id, password_hash, created_at";

/// The advisory lock a single sign-on holds for its transaction: it reads
/// who is linked or named and then links or adds, which two sign-ins at
/// once (on two `cascade serve` processes) must not both do.
const SSO_LOCK: i64 = 0x0063_6173_6373_736f; // "cascsso"

impl Accounts for PgStore {
    async fn add_console_user(
        &self,
        name: &str,
        role: &str,
        person_id: Option<&str>,
        setup_hash: &str,
        setup_expires_at: i64,
        now: i64,
    ) -> Result<Option<i64>, StoreError> {
        let id: Option<i64> = sqlx::query_scalar(
            "INSERT INTO console_users (name, role, person_id, setup_hash, setup_expires_at, created_at)
             VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (name) DO NOTHING RETURNING id",
        )
        .bind(name)
        .bind(role)
        .bind(person_id)
        .bind(setup_hash)
        .bind(setup_expires_at)
        .bind(now)
        .fetch_optional(&self.pool)
        .await?;
        Ok(id)
    }

    async fn renew_console_setup(
        &self,
        name: &str,
        setup_hash: &str,
        setup_expires_at: i64,
    ) -> Result<bool, StoreError> {
        let done = sqlx::query(
            "UPDATE console_users SET setup_hash = $1, setup_expires_at = $2, disabled = 0
             WHERE name = $3",
        )
        .bind(setup_hash)
        .bind(setup_expires_at)
        .bind(name)
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    async fn console_user_by_setup(
        &self,
        setup_hash: &str,
        now: i64,
    ) -> Result<Option<ConsoleUser>, StoreError> {
        Ok(sqlx::query_as(&format!(
            "SELECT {USER_COLUMNS} FROM console_users WHERE setup_hash = $1 AND setup_expires_at > $2"
        ))
        .bind(setup_hash)
        .bind(now)
        .fetch_optional(&self.pool)
        .await?)
    }

    async fn set_console_password(
        &self,
        user_id: i64,
        password_hash: &str,
    ) -> Result<(), StoreError> {
        let mut tx = self.pool.begin().await?;
        sqlx::query(
            "UPDATE console_users SET password_hash = $1, setup_hash = NULL, setup_expires_at = NULL
             WHERE id = $2",
        )
        .bind(password_hash)
        .bind(user_id)
        .execute(&mut *tx)
        .await?;
        sqlx::query("DELETE FROM console_sessions WHERE user_id = $1")
            .bind(user_id)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(())
    }

    async fn sso_console_user(
        &self,
        subject: &str,
        name: &str,
        role: &str,
        now: i64,
    ) -> Result<Result<ConsoleUser, SsoRefusal>, StoreError> {
        let mut tx = self.pool.begin().await?;
        sqlx::query("SELECT pg_advisory_xact_lock($1)")
            .bind(SSO_LOCK)
            .execute(&mut *tx)
            .await?;
        let linked: Option<(i64, i64)> =
            sqlx::query_as("SELECT id, disabled FROM console_users WHERE sso_subject = $1")
                .bind(subject)
                .fetch_optional(&mut *tx)
                .await?;
        let named: Option<(i64, i64, Option<String>)> =
            sqlx::query_as("SELECT id, disabled, sso_subject FROM console_users WHERE name = $1")
                .bind(name)
                .fetch_optional(&mut *tx)
                .await?;
        let id = match (linked, named) {
            (Some((_, disabled)), _) | (None, Some((_, disabled, None))) if disabled != 0 => {
                return Ok(Err(SsoRefusal::Disabled));
            }
            (Some((id, _)), _) => id,
            (None, Some((id, _, None))) => {
                sqlx::query("UPDATE console_users SET sso_subject = $1 WHERE id = $2")
                    .bind(subject)
                    .bind(id)
                    .execute(&mut *tx)
                    .await?;
                id
            }
            (None, named) => {
                use sha2::{Digest, Sha256};
                let name = if named.is_some() {
                    let hash = format!("{:x}", Sha256::digest(subject.as_bytes()));
                    format!("{name} ({})", &hash[..8])
                } else {
                    name.to_owned()
                };
                sqlx::query_scalar(
                    "INSERT INTO console_users (name, role, sso_subject, created_at)
                     VALUES ($1, $2, $3, $4) RETURNING id",
                )
                .bind(&name)
                .bind(role)
                .bind(subject)
                .bind(now)
                .fetch_one(&mut *tx)
                .await?
            }
        };
        sqlx::query("UPDATE console_users SET role = $1 WHERE id = $2")
            .bind(role)
            .bind(id)
            .execute(&mut *tx)
            .await?;
        let user: ConsoleUser = sqlx::query_as(&format!(
            "SELECT {USER_COLUMNS} FROM console_users WHERE id = $1"
        ))
        .bind(id)
        .fetch_one(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(Ok(user))
    }

    async fn console_user(&self, name: &str) -> Result<Option<ConsoleUser>, StoreError> {
        Ok(sqlx::query_as(&format!(
            "SELECT {USER_COLUMNS} FROM console_users WHERE name = $1"
        ))
        .bind(name)
        .fetch_optional(&self.pool)
        .await?)
    }

    async fn disable_console_user(&self, name: &str) -> Result<bool, StoreError> {
        let mut tx = self.pool.begin().await?;
        let done = sqlx::query(
            "UPDATE console_users SET password_hash = NULL, setup_hash = NULL, setup_expires_at = NULL,
                 disabled = 1
             WHERE name = $1",
        )
        .bind(name)
        .execute(&mut *tx)
        .await?;
        sqlx::query(
            "DELETE FROM console_sessions WHERE user_id = (SELECT id FROM console_users WHERE name = $1)",
        )
        .bind(name)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(done.rows_affected() == 1)
    }

    async fn console_users(&self) -> Result<Vec<ConsoleUser>, StoreError> {
        Ok(sqlx::query_as(&format!(
            "SELECT {USER_COLUMNS} FROM console_users ORDER BY name COLLATE \"C\""
        ))
        .fetch_all(&self.pool)
        .await?)
    }

    async fn create_console_session(
        &self,
        id_hash: &str,
        user_id: i64,
        csrf: &str,
        now: i64,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO console_sessions (id_hash, user_id, csrf, created_at, last_seen_at)
             VALUES ($1, $2, $3, $4, $4)",
        )
        .bind(id_hash)
        .bind(user_id)
        .bind(csrf)
        .bind(now)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn console_session(&self, id_hash: &str) -> Result<Option<ConsoleSession>, StoreError> {
        let row = sqlx::query(
            "SELECT u.id, u.name, u.role, u.person_id, u.password_hash, u.created_at,
                    s.csrf, s.created_at AS s_created, s.last_seen_at
             FROM console_sessions s JOIN console_users u ON u.id = s.user_id
             WHERE s.id_hash = $1",
        )
        .bind(id_hash)
        .fetch_optional(&self.pool)
        .await?;
        Ok(row.map(|r| ConsoleSession {
            user: ConsoleUser {
                id: r.get("id"),
                name: r.get("name"),
                role: r.get("role"),
                person_id: r.get("person_id"),
                password_hash: r.get("password_hash"),
                created_at: r.get("created_at"),
            },
            csrf: r.get("csrf"),
            created_at: r.get("s_created"),
            last_seen_at: r.get("last_seen_at"),
        }))
    }

    async fn touch_console_session(&self, id_hash: &str, now: i64) -> Result<(), StoreError> {
        sqlx::query("UPDATE console_sessions SET last_seen_at = $1 WHERE id_hash = $2")
            .bind(now)
            .bind(id_hash)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    async fn end_console_session(&self, id_hash: &str) -> Result<(), StoreError> {
        sqlx::query("DELETE FROM console_sessions WHERE id_hash = $1")
            .bind(id_hash)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    async fn end_console_sessions_of(&self, user_id: i64) -> Result<u64, StoreError> {
        let done = sqlx::query("DELETE FROM console_sessions WHERE user_id = $1")
            .bind(user_id)
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected())
    }

    async fn record_sign_in_failure(
        &self,
        name_hash: &str,
        now: i64,
        since: i64,
    ) -> Result<u64, StoreError> {
        let mut tx = self.pool.begin().await?;
        sqlx::query("DELETE FROM console_sign_in_failures WHERE at < $1")
            .bind(since)
            .execute(&mut *tx)
            .await?;
        sqlx::query("INSERT INTO console_sign_in_failures (name_hash, at) VALUES ($1, $2)")
            .bind(name_hash)
            .bind(now)
            .execute(&mut *tx)
            .await?;
        let count: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM console_sign_in_failures WHERE name_hash = $1 AND at >= $2",
        )
        .bind(name_hash)
        .bind(since)
        .fetch_one(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(u64::try_from(count).unwrap_or(0))
    }

    async fn sign_in_failures(&self, name_hash: &str, since: i64) -> Result<u64, StoreError> {
        let count: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM console_sign_in_failures WHERE name_hash = $1 AND at >= $2",
        )
        .bind(name_hash)
        .bind(since)
        .fetch_one(&self.pool)
        .await?;
        Ok(u64::try_from(count).unwrap_or(0))
    }

    async fn audit(&self, entry: &AuditEntry) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO console_audit (at, user_id, user_name, action, target, before_hash, after_hash)
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(entry.at)
        .bind(entry.user_id)
        .bind(&entry.user_name)
        .bind(&entry.action)
        .bind(&entry.target)
        .bind(&entry.before_hash)
        .bind(&entry.after_hash)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn audit_log(&self, limit: u32) -> Result<Vec<AuditEntry>, StoreError> {
        Ok(sqlx::query_as(
            "SELECT at, user_id, user_name, action, target, before_hash, after_hash
             FROM console_audit ORDER BY id DESC LIMIT $1",
        )
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await?)
    }
}
