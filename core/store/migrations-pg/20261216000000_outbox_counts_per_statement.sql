-- The outbox's sent/dead totals (rollout_counts) and the report stamp of
-- sent initial and escalation messages (report_stamps), kept per
-- statement instead of per row (issue 18). PostgreSQL only.
--
-- A serve records the outcomes of a group of sends (a hundred or more
-- rows of one rollout) with one UPDATE of the outbox, while it holds the
-- evidence chain's lock (see core/store/src/pg/chain.rs). Row triggers
-- then updated the rollout's one rollout_counts row and its one
-- report_stamps row once for every row: two hundred updates of two hot
-- rows inside the lock, each leaving a row version behind. These
-- statement triggers read the statement's rows as transition tables and
-- update each rollout's totals and stamp once, by the statement's sum,
-- so the totals and stamps come out exactly as the row triggers (and
-- SQLite's, which stay per row) left them: a stamp goes up by one for
-- every row that moved it.
--
-- An outbox row's rollout never changes (rollout_counts_outbox_moved, a
-- BEFORE row trigger, still raises first), so an updated row's old and
-- new versions pair up by id within one rollout.

DROP TRIGGER rollout_counts_outbox_added ON outbox;
DROP TRIGGER rollout_counts_outbox_state ON outbox;
DROP TRIGGER rollout_counts_outbox_removed ON outbox;
DROP TRIGGER report_stamps_send_added ON outbox;
DROP TRIGGER report_stamps_send_changed ON outbox;
DROP TRIGGER report_stamps_send_removed ON outbox;
DROP FUNCTION rollout_counts_outbox_added();
DROP FUNCTION rollout_counts_outbox_state();
DROP FUNCTION rollout_counts_outbox_removed();
DROP FUNCTION report_stamps_send_added();
DROP FUNCTION report_stamps_send_changed();
DROP FUNCTION report_stamps_send_removed();

-- Rows inserted sent or dead count; a sent initial or escalation moves the
-- stamp.
CREATE FUNCTION outbox_counts_inserted() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE rollout_counts c
    SET sent = c.sent + d.sent, dead = c.dead + d.dead
    FROM (SELECT rollout_id,
                 count(*) FILTER (WHERE state = 'sent') AS sent,
                 count(*) FILTER (WHERE state = 'dead') AS dead
          FROM new_rows WHERE state IN ('sent', 'dead')
          GROUP BY rollout_id) d
    WHERE c.rollout_id = d.rollout_id;
    UPDATE report_stamps s
    SET stamp = s.stamp + d.n
    FROM (SELECT rollout_id, count(*) AS n
          FROM new_rows
          WHERE state = 'sent' AND step_kind IN ('initial', 'escalation')
          GROUP BY rollout_id) d
    WHERE s.scope = d.rollout_id;
    RETURN NULL;
END $$;
CREATE TRIGGER outbox_counts_inserted AFTER INSERT ON outbox
    REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION outbox_counts_inserted();

-- A row whose state moves into or out of sent or dead moves the totals; a
-- sent initial or escalation (before or after) whose person, kind, state
-- or sent time changed moves the stamp.
CREATE FUNCTION outbox_counts_updated() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE rollout_counts c
    SET sent = c.sent + d.sent, dead = c.dead + d.dead
    FROM (SELECT n.rollout_id,
                 sum((n.state = 'sent')::int - (o.state = 'sent')::int) AS sent,
                 sum((n.state = 'dead')::int - (o.state = 'dead')::int) AS dead
          FROM old_rows o JOIN new_rows n ON n.id = o.id
          WHERE o.state <> n.state
            AND (o.state IN ('sent', 'dead') OR n.state IN ('sent', 'dead'))
          GROUP BY n.rollout_id) d
    WHERE c.rollout_id = d.rollout_id;
    UPDATE report_stamps s
    SET stamp = s.stamp + d.n
    FROM (SELECT n.rollout_id, count(*) AS n
          FROM old_rows o JOIN new_rows n ON n.id = o.id
          WHERE (o.state = 'sent' AND o.step_kind IN ('initial', 'escalation')
                 OR n.state = 'sent' AND n.step_kind IN ('initial', 'escalation'))
            AND (o.person_id IS DISTINCT FROM n.person_id
                 OR o.step_kind IS DISTINCT FROM n.step_kind
                 OR o.state IS DISTINCT FROM n.state
                 OR o.sent_at IS DISTINCT FROM n.sent_at)
          GROUP BY n.rollout_id) d
    WHERE s.scope = d.rollout_id;
    RETURN NULL;
END $$;
CREATE TRIGGER outbox_counts_updated AFTER UPDATE ON outbox
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION outbox_counts_updated();

-- Rows removed sent or dead count down; a sent initial or escalation
-- moves the stamp.
CREATE FUNCTION outbox_counts_deleted() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE rollout_counts c
    SET sent = c.sent - d.sent, dead = c.dead - d.dead
    FROM (SELECT rollout_id,
                 count(*) FILTER (WHERE state = 'sent') AS sent,
                 count(*) FILTER (WHERE state = 'dead') AS dead
          FROM old_rows WHERE state IN ('sent', 'dead')
          GROUP BY rollout_id) d
    WHERE c.rollout_id = d.rollout_id;
    UPDATE report_stamps s
    SET stamp = s.stamp + d.n
    FROM (SELECT rollout_id, count(*) AS n
          FROM old_rows
          WHERE state = 'sent' AND step_kind IN ('initial', 'escalation')
          GROUP BY rollout_id) d
    WHERE s.scope = d.rollout_id;
    RETURN NULL;
END $$;
CREATE TRIGGER outbox_counts_deleted AFTER DELETE ON outbox
    REFERENCING OLD TABLE AS old_rows
    FOR EACH STATEMENT EXECUTE FUNCTION outbox_counts_deleted();
