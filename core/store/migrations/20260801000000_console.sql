-- The web console's accounts, sessions, failed sign-ins and audit log.
-- Nothing here is a secret in the clear: a password is kept only as its
-- argon2id hash, a set-up link and a session id only as their SHA-256.

CREATE TABLE console_users (
    id               INTEGER PRIMARY KEY,
    name             TEXT NOT NULL UNIQUE,
    role             TEXT NOT NULL
                     CHECK (role IN ('admin', 'editor', 'approver', 'viewer', 'champion')),
    -- The directory person a champion account speaks for.
    person_id        TEXT,
    -- argon2id, PHC string; NULL until the account is set up.
    password_hash    TEXT,
    -- SHA-256 (hex) of the one-time set-up token, while it is unused.
    setup_hash       TEXT UNIQUE,
    setup_expires_at INTEGER,
    created_at       INTEGER NOT NULL
);

CREATE TABLE console_sessions (
    -- SHA-256 (hex) of the session id the cookie carries.
    id_hash      TEXT PRIMARY KEY,
    user_id      INTEGER NOT NULL REFERENCES console_users (id) ON DELETE CASCADE,
    -- The token every form of the session carries.
    csrf         TEXT NOT NULL,
    created_at   INTEGER NOT NULL,
    last_seen_at INTEGER NOT NULL
) WITHOUT ROWID;
CREATE INDEX console_sessions_user ON console_sessions (user_id);

-- Failed sign-ins, keyed by SHA-256 of the name tried (which may be
-- anything a person typed), for slowing down guessing.
CREATE TABLE console_sign_in_failures (
    name_hash TEXT NOT NULL,
    at        INTEGER NOT NULL
);
CREATE INDEX console_sign_in_failures_name ON console_sign_in_failures (name_hash, at);

-- Every change made through the console: who, what, when, and the SHA-256
-- of what the changed thing was before and is after.
CREATE TABLE console_audit (
    id          INTEGER PRIMARY KEY,
    at          INTEGER NOT NULL,
    user_id     INTEGER,
    user_name   TEXT NOT NULL,
    action      TEXT NOT NULL,
    target      TEXT NOT NULL,
    before_hash TEXT,
    after_hash  TEXT
);
