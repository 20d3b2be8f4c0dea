-- Issue 18: several `cascade serve` processes share the team posts as they
-- share the outbox. A post's lease (`lease_until`) covers posting it, or,
-- once sent, one edit of its count; `lease_owner` names the dispatcher (a
-- serve's random id) that holds it, so a serve taking back the leases of
-- serves that stopped (`take_back_leases`) leaves a live serve's alone.
-- NULL: leased before this column; treated as an owner that is not alive.
ALTER TABLE team_posts ADD COLUMN lease_owner TEXT;
