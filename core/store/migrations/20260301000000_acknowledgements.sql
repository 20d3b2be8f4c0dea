-- Evidence: acknowledgements, champion cascade confirmations, follow-up
-- answers, and one-time codes that link a chat account to a person.
-- Times are Unix milliseconds (UTC).

-- One acknowledgement per person per item version: the first counts.
CREATE TABLE acknowledgements (
    id            INTEGER PRIMARY KEY,
    person_id     TEXT NOT NULL,
    item_id       TEXT NOT NULL,
    item_version  TEXT NOT NULL,
    -- The rollout and outbox row it answered, when known.
    rollout_id    TEXT,
    delivery_id   INTEGER,
    -- The channel instance, or `web` for a signed link.
    channel       TEXT NOT NULL,
    method        TEXT NOT NULL CHECK (method IN ('link', 'button', 'command', 'on-behalf')),
    at            INTEGER NOT NULL,
    UNIQUE (person_id, item_id, item_version)
);

-- Every acknowledgement attempt after the first (repeats are idempotent,
-- and kept as a log), and every refused one, with why.
CREATE TABLE acknowledgement_log (
    id           INTEGER PRIMARY KEY,
    person_id    TEXT,
    delivery_id  INTEGER,
    channel      TEXT NOT NULL,
    method       TEXT NOT NULL,
    outcome      TEXT NOT NULL,
    at           INTEGER NOT NULL
);

-- A champion's record that an item was cascaded to one of their teams.
CREATE TABLE cascade_confirmations (
    id            INTEGER PRIMARY KEY,
    champion_id   TEXT NOT NULL,
    item_id       TEXT NOT NULL,
    team_id       TEXT NOT NULL,
    session_date  TEXT NOT NULL,
    present       INTEGER NOT NULL CHECK (present >= 0),
    method        TEXT NOT NULL CHECK (method IN ('team-meeting', 'supervision', 'briefing-session', 'email')),
    note          TEXT,
    channel       TEXT NOT NULL,
    at            INTEGER NOT NULL,
    UNIQUE (champion_id, item_id, team_id, session_date)
);

-- Answers to a rollout's follow-up questions: one per person per follow-up.
CREATE TABLE follow_up_answers (
    id           INTEGER PRIMARY KEY,
    rollout_id   TEXT NOT NULL REFERENCES rollouts (id),
    person_id    TEXT NOT NULL,
    follow_up    INTEGER NOT NULL,
    answer       TEXT NOT NULL,
    example      TEXT,
    channel      TEXT NOT NULL,
    at           INTEGER NOT NULL,
    UNIQUE (rollout_id, person_id, follow_up)
);

-- One-time codes a person sends to a bot to link their chat account.
-- Only a hash of the code is kept.
CREATE TABLE link_codes (
    code_hash   TEXT PRIMARY KEY NOT NULL,
    person_id   TEXT NOT NULL REFERENCES people (id),
    created_at  INTEGER NOT NULL,
    expires_at  INTEGER NOT NULL,
    used_at     INTEGER
);
