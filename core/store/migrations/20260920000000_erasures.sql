-- UK GDPR: erasure of a person (right to erasure, Article 17) and the
-- retention schedule applied to what cascade keeps.
--
-- An erased person keeps their row under a pseudonym (so counts by agency,
-- team, role and champion theme stay true) with their name, addresses,
-- chat identities and free text removed. The erasure is recorded by the
-- pseudonym, never by the name: `person_hash` is the SHA-256 of the person
-- id as it was, kept so that a later import of the same row is refused and
-- a subject access request for that id is answered with the erasure record
-- (a suppression list, as the ICO describes it).
CREATE TABLE erasures (
    id           INTEGER PRIMARY KEY,
    pseudonym    TEXT NOT NULL UNIQUE,
    person_hash  TEXT NOT NULL UNIQUE,
    -- Who erased them: `os:<user>` (the command line), `console:<user>`,
    -- or `retention` (the retention schedule).
    erased_by    TEXT NOT NULL,
    reason       TEXT NOT NULL,
    at           INTEGER NOT NULL,
    -- Whether rollouts still sending to them were stopped (--force).
    forced       INTEGER NOT NULL CHECK (forced IN (0, 1)),
    -- What was removed, as counts per kind (JSON).
    removed      TEXT NOT NULL
);

-- When a person was erased (Unix ms); NULL for everyone else.
ALTER TABLE people ADD COLUMN erased_at INTEGER;

-- Each run of the retention schedule that removed something: when, who ran
-- it, and the counts per kind (JSON). Ids only, never names.
CREATE TABLE retention_runs (
    id       INTEGER PRIMARY KEY,
    at       INTEGER NOT NULL,
    run_by   TEXT NOT NULL,
    removed  TEXT NOT NULL
);
