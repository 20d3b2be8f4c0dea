-- Link codes are kept as an HMAC-SHA-256 under a key held outside the
-- database, so a copy of the database alone cannot be searched for them.
-- Rows written before were plain SHA-256 ('sha256'); they are still looked
-- up, by that hash only, until they expire a day after they were issued.

ALTER TABLE link_codes ADD COLUMN hash_kind TEXT NOT NULL DEFAULT 'sha256'
    CHECK (hash_kind IN ('sha256', 'hmac-sha256'));
