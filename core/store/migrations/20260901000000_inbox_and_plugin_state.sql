-- Durable inbound: every event a version-3 plugin reports is written here
-- before the provider is told it arrived, keyed by the provider's id, and
-- marked handled once the engine handled it. `serve` handles the rows
-- left unhandled by a crash first when it starts.
CREATE TABLE inbox (
    id          INTEGER PRIMARY KEY,
    -- The channel instance it came through, e.g. `telegram`.
    channel     TEXT NOT NULL,
    -- The provider's id (Telegram update_id, Discord interaction id), or
    -- one the host made.
    event_id    TEXT NOT NULL,
    -- The InboundEvent as the plugin's JSON.
    event       TEXT NOT NULL,
    received_at INTEGER NOT NULL,
    handled_at  INTEGER,
    UNIQUE (channel, event_id)
);
CREATE INDEX inbox_unhandled ON inbox (id) WHERE handled_at IS NULL;

-- Small values plugins (and the host's chat conversations) keep across
-- restarts, namespaced per channel instance, each with an optional expiry.
CREATE TABLE plugin_state (
    channel     TEXT NOT NULL,
    key         TEXT NOT NULL,
    -- JSON.
    value       TEXT NOT NULL,
    -- Unix ms; NULL: kept until deleted. Expired rows are ignored and swept.
    expires_at  INTEGER,
    PRIMARY KEY (channel, key)
);
CREATE INDEX plugin_state_expiry ON plugin_state (expires_at) WHERE expires_at IS NOT NULL;
