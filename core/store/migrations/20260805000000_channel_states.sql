-- Each channel's state as the running `cascade serve` last saw it, for
-- `cascade status` (another process). Written every few seconds by serve.
CREATE TABLE channel_states (
    channel  TEXT PRIMARY KEY,
    up       INTEGER NOT NULL CHECK (up IN (0, 1)),
    -- Why it is down, in words for a person; NULL while up.
    reason   TEXT,
    -- Since when it has been in this state (Unix ms).
    since    INTEGER NOT NULL,
    -- When serve last wrote it (Unix ms).
    seen_at  INTEGER NOT NULL
);
