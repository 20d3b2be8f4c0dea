-- Team posts: a rollout's item posted once in a team's shared channel (a
-- Discord channel), with a live count of the team's acknowledgements that
-- is kept current by editing the post. Times are Unix milliseconds (UTC).

CREATE TABLE team_posts (
    id                  INTEGER PRIMARY KEY,
    rollout_id          TEXT NOT NULL REFERENCES rollouts (id),
    team_id             TEXT NOT NULL,
    -- The channel instance (from cascade.toml) and the team channel's
    -- address on it, as configured when the rollout started.
    channel             TEXT NOT NULL,
    address             TEXT NOT NULL,
    -- planned: not posted yet; retry: an attempt failed transiently (due_at
    -- is the next); sent: posted (provider_id set); dead: given up.
    state               TEXT NOT NULL CHECK (state IN ('planned', 'retry', 'sent', 'dead')),
    attempts            INTEGER NOT NULL DEFAULT 0,
    -- When the post (or its next attempt) is due.
    due_at              INTEGER NOT NULL,
    -- A post being sent is leased, as outbox rows are: one that crashed
    -- mid-send is tried again after the lease (at-least-once).
    lease_until         INTEGER,
    provider_id         TEXT,
    -- The count the post shows now; it needs an edit when the true count
    -- differs. NULL until posted.
    shown_acknowledged  INTEGER,
    shown_total         INTEGER,
    -- The earliest time of the next edit: edits are paced (several
    -- acknowledgements collapse into one edit) and wait out rate limits.
    edit_due_at         INTEGER,
    last_error          TEXT,
    sent_at             INTEGER,
    updated_at          INTEGER NOT NULL,
    UNIQUE (rollout_id, team_id, channel)
);

CREATE INDEX team_posts_due ON team_posts (due_at) WHERE state IN ('planned', 'retry');
CREATE INDEX team_posts_sent ON team_posts (state, edit_due_at);
