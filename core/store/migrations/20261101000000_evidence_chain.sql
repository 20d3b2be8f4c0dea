-- Tamper-evident evidence (issue 20): every evidence event (a delivery
-- sent, an acknowledgement, a champion's confirmation, a follow-up answer,
-- a minute of refused attempts, an erasure) is appended to a hash chain in
-- the same transaction that records it. Each link's hash covers the event's
-- fields and the previous link's hash, so an edit, a removal, an insertion
-- or a reordering shows at the first event it touches.
--
-- Personal fields (person ids, a champion's note, a follow-up example) enter
-- the chain only as an HMAC-SHA-256 under the store's evidence salt
-- (engine_secrets 'evidence-salt'), never as themselves: an erasure
-- replaces them and records, as an `amend` event, the digest of what is
-- there now, and the chain stays verifiable. Without the salt the digest
-- cannot be searched for a guessed name.
CREATE TABLE evidence_chain (
    -- 1, 2, 3, ... in the order the events were recorded.
    seq       INTEGER PRIMARY KEY,
    -- delivery, acknowledgement, confirmation, answer, refusals, erasure,
    -- amend.
    kind      TEXT NOT NULL,
    -- The evidence row: its id, or for refusals the JSON array
    -- [minute, channel, method, reason]; for amend the seq it amends.
    ref       TEXT NOT NULL,
    -- When the event happened (Unix ms, UTC).
    at        INTEGER NOT NULL,
    -- SHA-256 (hex) of the event's fields other than personal ones.
    content   TEXT NOT NULL,
    -- HMAC-SHA-256 (hex) of its personal fields under the evidence salt;
    -- for amend, the amended event's new digest.
    personal  TEXT NOT NULL,
    -- The previous link's hash (64 zeros for the first).
    prev      TEXT NOT NULL,
    -- SHA-256 (hex) over seq, kind, ref, at, content, personal and prev.
    hash      TEXT NOT NULL
);

-- An event's links (amends, a delivery sent again) and rows missing from
-- the chain are looked up by (kind, ref); an export reads each kind's
-- links in order by (kind, seq).
CREATE INDEX evidence_chain_ref ON evidence_chain (kind, ref);
CREATE INDEX evidence_chain_kind ON evidence_chain (kind, seq);

-- One row: whether evidence recorded before this migration has been
-- chained (the first open after the upgrade does it, once), and the minute
-- up to which refusal counts are sealed into the chain.
CREATE TABLE evidence_chain_state (
    id                  INTEGER PRIMARY KEY CHECK (id = 1),
    backfilled_at       INTEGER,
    refusals_sealed_to  INTEGER NOT NULL DEFAULT 0
);
INSERT INTO evidence_chain_state (id, backfilled_at, refusals_sealed_to) VALUES (1, NULL, 0);

-- The salt personal fields are hashed under: SQLite's randomblob draws on
-- the operating system's randomness.
INSERT OR IGNORE INTO engine_secrets (name, value) VALUES ('evidence-salt', randomblob(32));
