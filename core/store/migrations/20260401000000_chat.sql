-- Chat channels: identities a provider says can no longer be reached (the
-- person blocked the bot), and the engine's own secrets (the key that signs
-- the action ids carried by chat buttons).

ALTER TABLE channel_identities ADD COLUMN unreachable_at INTEGER;

CREATE TABLE engine_secrets (
    name  TEXT PRIMARY KEY NOT NULL,
    value BLOB NOT NULL
) WITHOUT ROWID;
