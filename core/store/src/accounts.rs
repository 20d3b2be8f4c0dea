//! The web console's accounts: users with a role, their sessions, failed
//! sign-ins and the audit log of changes. The store keeps only hashes of
//! what would let someone in (argon2id for passwords, SHA-256 for set-up
//! tokens and session ids); the console makes and checks them.

use crate::StoreError;
use std::future::Future;

/// A console account as the store keeps it.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct ConsoleUser {
    pub id: i64,
    pub name: String,
    /// `admin`, `editor`, `approver`, `viewer` or `champion`.
    pub role: String,
    /// For a champion, the directory person they are.
    pub person_id: Option<String>,
    /// argon2id PHC string; `None` until the account is set up.
    pub password_hash: Option<String>,
    pub created_at: i64,
}

/// Why a single sign-on gets no account.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SsoRefusal {
    /// An administrator disabled the account.
    Disabled,
}

/// A session with its account.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConsoleSession {
    pub user: ConsoleUser,
    pub csrf: String,
    pub created_at: i64,
    pub last_seen_at: i64,
}

/// One change made through the console.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct AuditEntry {
    pub at: i64,
    pub user_id: Option<i64>,
    pub user_name: String,
    /// What was done, e.g. `item.approve`.
    pub action: String,
    /// What it was done to, e.g. an item id or a file name.
    pub target: String,
    pub before_hash: Option<String>,
    pub after_hash: Option<String>,
}

/// What the console keeps about its users.
pub trait Accounts: Send + Sync {
    /// Adds a user not yet set up, reachable through the set-up token whose
    /// hash is given until `setup_expires_at`. `None` when the name is taken.
    fn add_console_user(
        &self,
        name: &str,
        role: &str,
        person_id: Option<&str>,
        setup_hash: &str,
        setup_expires_at: i64,
        now: i64,
    ) -> impl Future<Output = Result<Option<i64>, StoreError>> + Send;

    /// Gives an existing user a new set-up token (their password, if any,
    /// stays until they use it). False when there is no such user.
    fn renew_console_setup(
        &self,
        name: &str,
        setup_hash: &str,
        setup_expires_at: i64,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;

    /// The user a set-up token (by hash) is for, while it is unexpired.
    fn console_user_by_setup(
        &self,
        setup_hash: &str,
        now: i64,
    ) -> impl Future<Output = Result<Option<ConsoleUser>, StoreError>> + Send;

    /// Sets a user's password hash, uses up their set-up token and ends
    /// all their sessions, in one transaction.
    fn set_console_password(
        &self,
        user_id: i64,
        password_hash: &str,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    fn console_user(
        &self,
        name: &str,
    ) -> impl Future<Output = Result<Option<ConsoleUser>, StoreError>> + Send;

    /// The account a single sign-on by `subject` (the provider's issuer
    /// and subject) signs in to, in one transaction: the account already
    /// linked to `subject`; else an account named `name` not yet linked to
    /// another subject, which it links; else a new account named `name`
    /// (or, when that name is taken, `name` with the start of the subject's
    /// hash). Its role becomes `role`. `Err(SsoRefusal::Disabled)` when the
    /// account was disabled by an administrator.
    fn sso_console_user(
        &self,
        subject: &str,
        name: &str,
        role: &str,
        now: i64,
    ) -> impl Future<Output = Result<Result<ConsoleUser, SsoRefusal>, StoreError>> + Send;

    fn console_users(&self) -> impl Future<Output = Result<Vec<ConsoleUser>, StoreError>> + Send;

    fn create_console_session(
        &self,
        id_hash: &str,
        user_id: i64,
        csrf: &str,
        now: i64,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    fn console_session(
        &self,
        id_hash: &str,
    ) -> impl Future<Output = Result<Option<ConsoleSession>, StoreError>> + Send;

    fn touch_console_session(
        &self,
        id_hash: &str,
        now: i64,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    fn end_console_session(
        &self,
        id_hash: &str,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// Disables a user: their password and any set-up token are removed
    /// and every session of theirs ends, in one transaction, so they can
    /// sign in again only through a new set-up link. False when there is
    /// no such user.
    fn disable_console_user(
        &self,
        name: &str,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;

    /// Ends every session of a user; returns how many there were.
    fn end_console_sessions_of(
        &self,
        user_id: i64,
    ) -> impl Future<Output = Result<u64, StoreError>> + Send;

    /// Records a failed sign-in for a name (by hash) and returns how many
    /// there were since `since`, this one included. Rows older than
    /// `since` are dropped.
    fn record_sign_in_failure(
        &self,
        name_hash: &str,
        now: i64,
        since: i64,
    ) -> impl Future<Output = Result<u64, StoreError>> + Send;

    /// Failed sign-ins for a name (by hash) since `since`.
    fn sign_in_failures(
        &self,
        name_hash: &str,
        since: i64,
    ) -> impl Future<Output = Result<u64, StoreError>> + Send;

    fn audit(&self, entry: &AuditEntry) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// The latest `limit` audit entries, newest first.
    fn audit_log(
        &self,
        limit: u32,
    ) -> impl Future<Output = Result<Vec<AuditEntry>, StoreError>> + Send;
}
