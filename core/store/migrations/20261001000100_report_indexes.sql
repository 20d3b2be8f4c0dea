-- Indexes for reports: each rollout's sent messages, and the
-- acknowledgements of one item version, read from one contiguous run of an
-- index each, with every column the report needs in it (no lookup of the
-- table row per member).

-- Only sent rows are in it, so queuing, claiming and retrying do not touch
-- it; a row is added once, when it is sent. `state` is in it only so that
-- SQLite can answer from the index alone.
CREATE INDEX outbox_sent_by_rollout ON outbox (rollout_id, step_kind, person_id, sent_at, state)
    WHERE state = 'sent';

CREATE INDEX acknowledgements_by_version ON acknowledgements (item_id, item_version, person_id, at);
