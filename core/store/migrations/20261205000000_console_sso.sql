-- Single sign-on to the console (OpenID Connect): an account made or
-- linked by a sign-in through the partnership's identity provider keeps
-- the provider's subject (issuer and `sub`), and a disabled account is
-- marked as such, so signing in through the provider cannot bring back an
-- account an administrator disabled.
ALTER TABLE console_users ADD COLUMN sso_subject TEXT;
ALTER TABLE console_users ADD COLUMN disabled INTEGER NOT NULL DEFAULT 0;
CREATE UNIQUE INDEX console_users_sso_subject ON console_users (sso_subject)
    WHERE sso_subject IS NOT NULL;
-- Accounts disabled before this migration: no password and no set-up link.
UPDATE console_users SET disabled = 1
    WHERE password_hash IS NULL AND setup_hash IS NULL;
