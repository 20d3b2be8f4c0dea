-- Recurring bulletins (issue 23): a rollout file with a [bulletin] table is
-- started as a bulletin, which `cascade serve` turns into one rollout per
-- occurrence of its schedule, each of an issue built from the items
-- published since the last one.
--
--   bulletins             the bulletin as started (its definition as JSON,
--                         which may name person ids in its audience), and
--                         the scheduled instant of its latest occurrence;
--   bulletin_occurrences  each occurrence made, once: the key is the
--                         bulletin and the scheduled instant, so a restart
--                         or a second tick cannot make it again. rollout_id
--                         is the issue's rollout, NULL when nothing new was
--                         published and the occurrence was skipped;
--   bulletin_items        each item a bulletin has gathered, once per
--                         bulletin (the key), so no item goes in two issues;
--                         occurrence_at NULL for the items already published
--                         when the bulletin started, which it never sends.
--
-- An occurrence, its items, its issue's item version and its rollout are
-- written in one transaction.

CREATE TABLE bulletins (
    id                 TEXT PRIMARY KEY NOT NULL,
    definition         TEXT NOT NULL,
    state              TEXT NOT NULL DEFAULT 'active',
    started_at         INTEGER NOT NULL,
    last_occurrence_at INTEGER
);

CREATE TABLE bulletin_occurrences (
    bulletin_id   TEXT NOT NULL REFERENCES bulletins (id),
    occurrence_at INTEGER NOT NULL,
    rollout_id    TEXT REFERENCES rollouts (id),
    items         INTEGER NOT NULL,
    made_at       INTEGER NOT NULL,
    PRIMARY KEY (bulletin_id, occurrence_at)
);

CREATE TABLE bulletin_items (
    bulletin_id   TEXT NOT NULL REFERENCES bulletins (id),
    item_id       TEXT NOT NULL,
    item_version  TEXT NOT NULL,
    occurrence_at INTEGER,
    PRIMARY KEY (bulletin_id, item_id)
);
