-- Rollouts, their members (one row per person, with the next step due), and
-- the outbox (one row per person x step x channel). Times are Unix
-- milliseconds (UTC).

CREATE TABLE rollouts (
    id            TEXT PRIMARY KEY NOT NULL,
    item_id       TEXT NOT NULL,
    item_version  TEXT NOT NULL,
    -- The rollout definition as JSON, exactly as it was started.
    definition    TEXT NOT NULL,
    state         TEXT NOT NULL CHECK (state IN ('active', 'paused', 'cancelled')),
    created_at    INTEGER NOT NULL,
    updated_at    INTEGER NOT NULL,
    FOREIGN KEY (item_id, item_version) REFERENCES items (id, version)
);

CREATE TABLE rollout_members (
    rollout_id       TEXT NOT NULL REFERENCES rollouts (id),
    person_id        TEXT NOT NULL,
    wave             INTEGER NOT NULL,
    -- Index into the wave's steps of the next step to materialise.
    next_step        INTEGER NOT NULL DEFAULT 0,
    -- When that step is due; NULL once every step is done.
    next_due_at      INTEGER,
    acknowledged_at  INTEGER,
    PRIMARY KEY (rollout_id, person_id)
) WITHOUT ROWID;

CREATE INDEX rollout_members_due ON rollout_members (next_due_at)
    WHERE next_due_at IS NOT NULL;

CREATE TABLE outbox (
    id               INTEGER PRIMARY KEY,
    -- rollout/person/step/recipient/channel rank: a step is never queued twice.
    idempotency_key  TEXT NOT NULL UNIQUE,
    rollout_id       TEXT NOT NULL REFERENCES rollouts (id),
    -- Whose learning this is, and who receives it (the same person, or their
    -- champion or manager for an escalation).
    person_id        TEXT NOT NULL,
    recipient_id     TEXT NOT NULL,
    wave             INTEGER NOT NULL,
    step_kind        TEXT NOT NULL,
    step_number      INTEGER NOT NULL,
    channel          TEXT NOT NULL,
    channel_rank     INTEGER NOT NULL,
    -- due: waiting (attempts > 0 means retrying); leased: claimed by a
    -- dispatcher until lease_until; sent; dead; cancelled.
    state            TEXT NOT NULL CHECK (state IN ('due', 'leased', 'sent', 'dead', 'cancelled')),
    attempts         INTEGER NOT NULL DEFAULT 0,
    due_at           INTEGER NOT NULL,
    lease_until      INTEGER,
    provider_id      TEXT,
    last_error       TEXT,
    sent_at          INTEGER,
    updated_at       INTEGER NOT NULL
);

CREATE INDEX outbox_claimable ON outbox (due_at) WHERE state IN ('due', 'leased');
CREATE INDEX outbox_by_rollout ON outbox (rollout_id, wave, channel, state);
