-- The outbox's share of a rollout's totals (sent, dead) and of its report
-- stamp, added by recordings as rows of their own and folded into
-- rollout_counts and report_stamps later (issue 18). PostgreSQL only.
--
-- Since 20261216000000_outbox_counts_per_statement a recording of sends
-- updated its rollout's one rollout_counts row and one report_stamps row
-- once a statement. Those rows stayed locked until the recording
-- committed, so the recordings of one rollout by several serves still
-- went one at a time, each waiting for the one before to reach its disk
-- (Lock:transactionid on rollout_counts in pg_stat_activity). Now each
-- statement's sums are inserted here: an insert locks no row another
-- recording wants. Every read of the totals or stamps adds what is here
-- (outbox_count_totals, outbox_count_stamps below), so they read exactly
-- as before; a serve folds the rows into rollout_counts and report_stamps
-- now and then (`Outbox::link_evidence`, `pg/outbox.rs`, fold_counts).
--
-- No foreign key (a key check would lock the rollout's row). A rollout's
-- rows go when its rollout_counts row goes, their stamps folded first so
-- a stamp never goes down.

CREATE TABLE outbox_count_deltas (
    rollout_id  TEXT NOT NULL,
    sent        BIGINT NOT NULL DEFAULT 0,
    dead        BIGINT NOT NULL DEFAULT 0,
    stamp       BIGINT NOT NULL DEFAULT 0
);
CREATE INDEX outbox_count_deltas_rollout ON outbox_count_deltas (rollout_id);

-- A rollout's sent and dead totals and its report stamp's outbox share
-- not folded yet.
CREATE VIEW outbox_count_pending AS
    SELECT rollout_id, sum(sent)::bigint AS sent, sum(dead)::bigint AS dead,
           sum(stamp)::bigint AS stamp
    FROM outbox_count_deltas GROUP BY rollout_id;

-- rollout_counts as it reads with what is not folded yet.
CREATE VIEW outbox_count_totals AS
    SELECT c.rollout_id, c.members, c.acknowledged,
           c.sent + COALESCE(p.sent, 0) AS sent, c.dead + COALESCE(p.dead, 0) AS dead
    FROM rollout_counts c LEFT JOIN outbox_count_pending p USING (rollout_id);

-- report_stamps as they read with what is not folded yet.
CREATE VIEW outbox_count_stamps AS
    SELECT s.scope, s.stamp + COALESCE(p.stamp, 0) AS stamp
    FROM report_stamps s LEFT JOIN outbox_count_pending p ON p.rollout_id = s.scope;

CREATE OR REPLACE FUNCTION outbox_counts_inserted() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO outbox_count_deltas (rollout_id, sent, dead, stamp)
    SELECT rollout_id,
           count(*) FILTER (WHERE state = 'sent'),
           count(*) FILTER (WHERE state = 'dead'),
           count(*) FILTER (WHERE state = 'sent' AND step_kind IN ('initial', 'escalation'))
    FROM new_rows WHERE state IN ('sent', 'dead')
    GROUP BY rollout_id;
    RETURN NULL;
END $$;

CREATE OR REPLACE FUNCTION outbox_counts_updated() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO outbox_count_deltas (rollout_id, sent, dead, stamp)
    SELECT rollout_id, sum(sent), sum(dead), sum(stamp)
    FROM (SELECT n.rollout_id,
                 CASE WHEN o.state <> n.state
                      THEN (n.state = 'sent')::int - (o.state = 'sent')::int ELSE 0 END AS sent,
                 CASE WHEN o.state <> n.state
                      THEN (n.state = 'dead')::int - (o.state = 'dead')::int ELSE 0 END AS dead,
                 ((o.state = 'sent' AND o.step_kind IN ('initial', 'escalation')
                   OR n.state = 'sent' AND n.step_kind IN ('initial', 'escalation'))
                  AND (o.person_id IS DISTINCT FROM n.person_id
                       OR o.step_kind IS DISTINCT FROM n.step_kind
                       OR o.state IS DISTINCT FROM n.state
                       OR o.sent_at IS DISTINCT FROM n.sent_at))::int AS stamp
          FROM old_rows o JOIN new_rows n ON n.id = o.id) d
    GROUP BY rollout_id
    HAVING sum(sent) <> 0 OR sum(dead) <> 0 OR sum(stamp) <> 0;
    RETURN NULL;
END $$;

CREATE OR REPLACE FUNCTION outbox_counts_deleted() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO outbox_count_deltas (rollout_id, sent, dead, stamp)
    SELECT rollout_id,
           -count(*) FILTER (WHERE state = 'sent'),
           -count(*) FILTER (WHERE state = 'dead'),
           count(*) FILTER (WHERE state = 'sent' AND step_kind IN ('initial', 'escalation'))
    FROM old_rows WHERE state IN ('sent', 'dead')
    GROUP BY rollout_id;
    RETURN NULL;
END $$;

-- A rollout's totals row removed: its rows here go too, their stamps
-- folded into its report stamp first.
CREATE FUNCTION outbox_count_deltas_rollout_removed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE report_stamps s SET stamp = s.stamp + d.stamp
    FROM (SELECT sum(stamp) AS stamp FROM outbox_count_deltas WHERE rollout_id = OLD.rollout_id) d
    WHERE s.scope = OLD.rollout_id AND d.stamp <> 0;
    DELETE FROM outbox_count_deltas WHERE rollout_id = OLD.rollout_id;
    RETURN NULL;
END $$;
CREATE TRIGGER outbox_count_deltas_rollout_removed AFTER DELETE ON rollout_counts
    FOR EACH ROW EXECUTE FUNCTION outbox_count_deltas_rollout_removed();

-- Folds the rows here into rollout_counts and report_stamps, in the
-- caller's transaction; returns how many rows it folded. Rows inserted by
-- transactions that commit meanwhile stay for the next fold. Readers see
-- the totals and stamps the same before and after (the views above).
CREATE FUNCTION fold_outbox_count_deltas() RETURNS bigint LANGUAGE plpgsql AS $$
DECLARE
    folded bigint;
BEGIN
    WITH taken AS (DELETE FROM outbox_count_deltas RETURNING *),
    sums AS (SELECT rollout_id, sum(sent) AS sent, sum(dead) AS dead,
                    sum(stamp) AS stamp, count(*) AS n
             FROM taken GROUP BY rollout_id),
    totals AS (UPDATE rollout_counts c SET sent = c.sent + s.sent, dead = c.dead + s.dead
               FROM sums s WHERE c.rollout_id = s.rollout_id AND (s.sent <> 0 OR s.dead <> 0)),
    stamps AS (UPDATE report_stamps r SET stamp = r.stamp + s.stamp
               FROM sums s WHERE r.scope = s.rollout_id AND s.stamp <> 0)
    SELECT COALESCE(sum(n), 0) INTO folded FROM sums;
    RETURN folded;
END $$;
