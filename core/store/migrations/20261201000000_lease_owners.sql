-- Issue 21: claims fair per channel, and leases a restarted `serve` can
-- take back at once.
--
-- `lease_owner` names the dispatcher (one `cascade serve` process, a random
-- id for its life) that leased a row. A serve that holds the project's
-- serve lock knows no other serve is alive, so it takes back at start the
-- rows leased by any other owner (a serve killed mid-send) instead of
-- leaving them for the whole lease. NULL: leased before this column, or by
-- a caller without an owner; treated as an owner that is not alive.
ALTER TABLE outbox ADD COLUMN lease_owner TEXT;

-- Each channel's due rows in due order, so a claim takes each channel's
-- share without reading past the rows of the others.
CREATE INDEX outbox_claimable_by_channel ON outbox (channel, due_at)
    WHERE state IN ('due', 'leased');
