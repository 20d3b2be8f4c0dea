-- Refused attempts (forged or invalid links, presses from the wrong
-- account) are counted per reason per minute instead of logged row by row:
-- a refused request is unauthenticated by definition, so one row each let
-- anyone grow the store without bound. The reasons are a fixed set, so the
-- table grows by at most a few rows a minute whatever arrives.
CREATE TABLE refusal_counts (
    -- The start of the minute, in Unix milliseconds (UTC).
    minute   INTEGER NOT NULL,
    channel  TEXT NOT NULL,
    method   TEXT NOT NULL,
    reason   TEXT NOT NULL,
    count    INTEGER NOT NULL CHECK (count > 0),
    -- The last refusal counted in the row.
    last_at  INTEGER NOT NULL,
    PRIMARY KEY (minute, channel, method, reason)
) WITHOUT ROWID;

-- The refusals logged row by row before, counted the same way.
INSERT INTO refusal_counts (minute, channel, method, reason, count, last_at)
    SELECT at - at % 60000, channel, method, substr(outcome, 10), COUNT(*), MAX(at)
    FROM acknowledgement_log WHERE outcome LIKE 'refused: %'
    GROUP BY at - at % 60000, channel, method, substr(outcome, 10);
DELETE FROM acknowledgement_log WHERE outcome LIKE 'refused: %';
