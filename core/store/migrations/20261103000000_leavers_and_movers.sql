-- Leavers and movers (issue 23). A rollout member keeps the team and
-- agency they were in when the rollout reached them (its start), so
-- reports show them there even after they move; and a member whom an
-- import marks inactive ("left") or moves out of the rollout's audience
-- ("moved") stops being chased: their next step is put aside in
-- `out_next_due_at` (and given back if they come back into the audience)
-- and `next_due_at` is cleared, in the import's own transaction.

ALTER TABLE rollout_members ADD COLUMN team_id TEXT;
ALTER TABLE rollout_members ADD COLUMN agency_id TEXT;
-- NULL while the member is in the audience and chased as usual.
ALTER TABLE rollout_members ADD COLUMN out_reason TEXT CHECK (out_reason IN ('left', 'moved'));
-- When the import that took them out ran (Unix milliseconds).
ALTER TABLE rollout_members ADD COLUMN out_at INTEGER;
-- Their next step's due time when they went out, to resume from if they come back.
ALTER TABLE rollout_members ADD COLUMN out_next_due_at INTEGER;

-- Members already in the store: the directory's team and agency now is the
-- best record there is of where they were.
UPDATE rollout_members
SET team_id = (SELECT p.team_id FROM people p WHERE p.id = rollout_members.person_id),
    agency_id = (SELECT p.agency_id FROM people p WHERE p.id = rollout_members.person_id);

-- Members of running rollouts who already left the directory stop being
-- chased now, as an import from here on would have done.
UPDATE rollout_members
SET out_reason = 'left',
    out_at = CAST(strftime('%s', 'now') AS INTEGER) * 1000,
    out_next_due_at = next_due_at,
    next_due_at = NULL
WHERE person_id IN (SELECT id FROM people WHERE NOT active)
  AND rollout_id IN (SELECT id FROM rollouts WHERE state <> 'cancelled');

UPDATE outbox SET state = 'cancelled', lease_until = NULL,
    updated_at = CAST(strftime('%s', 'now') AS INTEGER) * 1000
WHERE state = 'due'
  AND rollout_id IN (SELECT id FROM rollouts WHERE state <> 'cancelled')
  AND (person_id IN (SELECT id FROM people WHERE NOT active)
       OR recipient_id IN (SELECT id FROM people WHERE NOT active));

-- Reports and the import read a rollout's members who are out.
CREATE INDEX rollout_members_out ON rollout_members (rollout_id, out_reason)
    WHERE out_reason IS NOT NULL;
